#!/usr/bin/env python3
"""Regenerates docs/benchmarks.md's exec table from docs/bench-data/exec.jsonl.

Each line there is one run of `meshwork bench exec --n 10000` (append more
with `target/release/meshwork bench exec >> docs/bench-data/exec.jsonl`).
The table between the `exec:begin` and `exec:end` markers gives medians
over every run, failed runs included (a failed run's figures count too,
and the table says how many failed).
"""
import json
import pathlib
import statistics

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "docs/bench-data/exec.jsonl"
DOC = ROOT / "docs/benchmarks.md"
BEGIN, END = "<!-- exec:begin -->", "<!-- exec:end -->"


def table(rows):
    med = lambda key: statistics.median(r[key] for r in rows)
    failed = sum(1 for r in rows if not r.get("ok"))
    lines = [
        f"Medians of {len(rows)} runs ({failed} failed):",
        "",
        "| | runs/s | µs per run (wall / runs) |",
        "|---|---|---|",
        f"| meshwork, 2 workers | {med('runs_per_s'):.0f} | {med('us_per_run'):.0f} |",
        f"| GNU parallel -j2 | {med('parallel_runs_per_s'):.0f} | {med('parallel_us_per_run'):.0f} |",
        f"| xargs -P2 | {med('xargs_runs_per_s'):.0f} | {med('xargs_us_per_run'):.0f} |",
        "",
        f"The mesh takes {med('ratio_to_parallel'):.2f}× the wall time of local `parallel` "
        f"and reaches {med('runs_per_s') / med('xargs_runs_per_s'):.2f}× the throughput of `xargs`; "
        f"its wall time per command beyond xargs' is {med('us_per_run') - med('xargs_us_per_run'):.0f} µs.",
    ]
    return "\n".join(lines)


def main():
    rows = [json.loads(l) for l in DATA.read_text().splitlines() if l.strip()]
    doc = DOC.read_text()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + table(rows) + "\n" + doc[end:])


if __name__ == "__main__":
    main()
