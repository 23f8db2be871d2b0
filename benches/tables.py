#!/usr/bin/env python3
"""Regenerates docs/benchmarks.md's tables from docs/bench-data/*.jsonl.

Each table lives between `<!-- NAME:begin -->` and `<!-- NAME:end -->`
markers and is made from docs/bench-data/NAME.jsonl, one line per run of a
`meshwork bench` workload (append more with e.g.
`target/release/meshwork bench exec >> docs/bench-data/exec.jsonl`).
Tables give medians over every run, failed runs included (a failed run's
figures count too, and the table says how many failed).
"""
import json
import pathlib
import statistics

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs/benchmarks.md"


def exec_table(rows, med):
    """`meshwork bench exec --n 10000`: the mesh against parallel and xargs."""
    return [
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


def api_table(rows, med):
    """`meshwork bench api --n 10000 --lat 500`: jobs through the service's API."""
    return [
        "| | B1: 10,000 pieces, pieces/s | B2: one-piece job, p50 ms | B2 p99 ms |",
        "|---|---|---|---|",
        f"| given to the node directly | {med('direct_tasks_per_s'):,.0f} | {med('direct_lat_p50_ms'):.2f} "
        f"| {med('direct_lat_p99_ms'):.2f} |",
        f"| through `POST /api/jobs` | {med('api_tasks_per_s'):,.0f} | {med('api_lat_p50_ms'):.2f} "
        f"| {med('api_lat_p99_ms'):.2f} |",
        "",
        f"The service costs {med('store_us_per_piece'):.1f} µs per piece in B1 (the job, its inputs and "
        f"every output in the store, the events, HTTP), and {med('api_lat_p50_ms') - med('direct_lat_p50_ms'):.2f} ms "
        "per one-piece job in B2.",
    ]


TABLES = {"exec": exec_table, "api": api_table}


def render(name, make):
    data = ROOT / f"docs/bench-data/{name}.jsonl"
    rows = [json.loads(l) for l in data.read_text().splitlines() if l.strip()]
    med = lambda key: statistics.median(r[key] for r in rows)
    failed = sum(1 for r in rows if not r.get("ok"))
    return "\n".join([f"Medians of {len(rows)} runs ({failed} failed):", ""] + make(rows, med))


def main():
    doc = DOC.read_text()
    for name, make in TABLES.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        start, stop = doc.index(begin) + len(begin), doc.index(end)
        doc = doc[:start] + "\n" + render(name, make) + "\n" + doc[stop:]
    DOC.write_text(doc)


if __name__ == "__main__":
    main()
