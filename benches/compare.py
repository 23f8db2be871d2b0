#!/usr/bin/env python3
"""The tables of docs/benchmarks.md, from the JSON lines of `meshwork bench`
(docs/bench-data/meshwork.jsonl) and of the peers' run_all.sh
(docs/bench-data/peers.jsonl).

Every run counts. A figure is the median over all runs of a row, failed runs
included at their worst (a failed run's time is infinite, its rate zero), so
a row where half the runs failed shows "failed", never the median of the
survivors; each row says how many of its runs succeeded. Runs with other
processes busy (foreign_load > 0.05 core) are left out only when the row
also has clean runs (a row of contended runs only is marked *).

Usage: compare.py [--svg plot.svg] [--md docs/benchmarks.md] meshwork.jsonl peers.jsonl
With --md, the text between <!-- tables:begin --> and <!-- tables:end -->
in that file is replaced; otherwise the tables are printed.
       compare.py --name "fault --restart none" < runner-output
copies the last JSON line of one meshwork run, filling in the row it
belongs to when the run died before printing its own.
"""
import json
import math
import statistics
import sys

CLEAN_MAX = 0.05
PEERS = ["celery", "dask", "ray"]
BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"


def load(paths):
    rows = []
    for p in paths:
        with open(p) as fh:
            rows += [json.loads(l) for l in fh if l.strip().startswith("{")]
    return rows


class Runs:
    """The runs of one row: every attempt, and the clean ones the medians use."""

    def __init__(self, rows):
        clean = [r for r in rows if r.get("foreign_load") is None or r["foreign_load"] <= CLEAN_MAX]
        self.mark = "" if clean or not rows else " *"
        self.rows = clean or rows

    def ok(self):
        return [r for r in self.rows if r.get("ok")]

    def count(self):
        return f"{len(self.ok())}/{len(self.rows)}" if self.rows else "—"

    def med(self, key, worst):
        """Median of `key`, a failed run (or one without the figure) counting
        as `worst`; NaN when the row has no runs at all, None when it failed."""
        if not self.rows:
            return math.nan
        xs = [r[key] if r.get("ok") and isinstance(r.get(key), (int, float)) else worst for r in self.rows]
        m = statistics.median(xs)
        return None if m in (math.inf, -math.inf) else m

    def time(self, key):
        return self.med(key, math.inf)

    def rate(self, key):
        m = self.med(key, 0.0)
        return None if m == 0.0 and not self.ok() else m


def select(rows, system, workload, **fields):
    return Runs([r for r in rows if r.get("system") == system and r.get("workload") == workload
                 and all(r.get(k) == v for k, v in fields.items())])


def fmt(x, nd=2, failed="failed"):
    """A figure; `failed` for a row whose runs failed, — for one never run."""
    if x is None:
        return failed
    return "—" if math.isnan(x) else f"{x:,.{nd}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def tables(rows):
    out = []
    p = out.append
    mixed, remote = select(rows, "meshwork", "noop"), select(rows, "meshwork", "noop-remote")
    peers_noop = {s: select(rows, s, "noop") for s in PEERS}

    p("### B1 and B2: no-op pieces\n")
    p("| system | runs ok | B1 one job of 10,000 pieces, pieces/s | local | B1 10,000 one-piece tasks, tasks/s | local "
      "| B2 round trip p50 ms | p99 ms | local |")
    p("|---|---|---|---|---|---|---|---|---|")
    p(f"| meshwork, submitter runs pieces too{mixed.mark} | {mixed.count()} | {fmt(mixed.rate('tasks_per_s'), 0)} "
      f"| {fmt(mixed.med('local_fraction', None), 2, '—')} | — | — | {fmt(mixed.time('lat_p50_ms'), 3)} "
      f"| {fmt(mixed.time('lat_p99_ms'), 3)} | {fmt(mixed.med('lat_local_fraction', None), 2, '—')} |")
    p(f"| **meshwork, every piece on another process**{remote.mark} | {remote.count()} "
      f"| {fmt(remote.rate('tasks_per_s'), 0)} | {fmt(remote.med('local_fraction', None), 2, '—')} "
      f"| {fmt(remote.rate('jobs_per_s'), 0)} | {fmt(remote.med('jobs_local_fraction', None), 2, '—')} "
      f"| {fmt(remote.time('lat_p50_ms'), 3)} | {fmt(remote.time('lat_p99_ms'), 3)} "
      f"| {fmt(remote.med('lat_local_fraction', None), 2, '—')} |")
    for s in PEERS:
        r = peers_noop[s]
        p(f"| {s}{r.mark} | {r.count()} | — | — | {fmt(r.rate('tasks_per_s'), 0)} | 0 | {fmt(r.time('lat_p50_ms'), 3)} "
          f"| {fmt(r.time('lat_p99_ms'), 3)} | 0 |")
    p("")
    p("The peers' B1 submits 10,000 separate tasks and every task runs in a worker process, so their like for like "
      "on meshwork is the remote row's one-piece tasks (local 0). "
      f"meshwork's transport alone (a `Status` request and its answer between two processes, no job): "
      f"p50 {fmt(remote.time('status_p50_ms'), 3)} ms, p99 {fmt(remote.time('status_p99_ms'), 3)} ms.\n")

    p("### B3 and B4: primes below 20,000,000 in 64 pieces on 2 workers\n")
    p("| system | B3 runs ok | B3 wall s | single process s | B3 efficiency | B4 restart by | B4 runs ok "
      "| B4 wall s (no fault) | B4 wall s (killed) | B4 extra s |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    eff = {}
    for s in ["meshwork"] + PEERS:
        par = select(rows, s, "primes")
        single = select(rows, "meshwork-single" if s == "meshwork" else "single", "primes")
        t_par, t_single = par.time("wall_s"), single.time("wall_s")
        eff[s] = ratio(t_single, 2 * t_par) if t_par else None
        variants = [("none", "nobody: finishes on the survivor"), ("supervisor", "README's restart loop")] \
            if s == "meshwork" else [(None, "its own supervisor")]
        for i, (restart, who) in enumerate(variants):
            f = select(rows, s, "fault", **({"restart": restart} if restart else {}))
            for r in f.rows:
                r["extra_s"] = r["fault_s"] - r["nofault_s"] if "fault_s" in r and "nofault_s" in r else None
            head = (f"| {s}{par.mark} | {par.count()} | {fmt(t_par)} | {fmt(t_single)} | {fmt(eff[s], 3)} "
                    if i == 0 else "| | | | | ")
            p(head + f"| {who} | {f.count()} | {fmt(f.time('nofault_s'))} | {fmt(f.time('fault_s'))} "
              f"| {fmt(f.time('extra_s'))} |")
    p("")
    p(b3_breakdown(select(rows, "meshwork", "primes"), select(rows, "meshwork-single", "primes").time("wall_s")))

    p("### meshwork against each peer\n")
    p("| meshwork vs | B1 one-piece tasks/s × | B2 p50 × faster | B2 p99 × faster | B3 efficiency Δ |")
    p("|---|---|---|---|---|")
    for s in PEERS:
        r = peers_noop[s]
        d = None if eff["meshwork"] is None or eff[s] is None else eff["meshwork"] - eff[s]
        p(f"| {s} | {fmt(ratio(remote.rate('jobs_per_s'), r.rate('tasks_per_s')), 1, '—')} "
          f"| {fmt(ratio(r.time('lat_p50_ms'), remote.time('lat_p50_ms')), 1, '—')} "
          f"| {fmt(ratio(r.time('lat_p99_ms'), remote.time('lat_p99_ms')), 1, '—')} | {fmt(d, 3, '—')} |")
    p("\n(meshwork's remote rows: every piece crosses a process boundary, as every peer task does.)\n")

    p("### Targets (issue 10), every run of each row\n")
    p("| target | runs | min | median | max | |")
    p("|---|---|---|---|---|---|")

    def target(name, runs, key, ok, worst, nd=0, scale=1.0):
        xs = sorted(r[key] * scale for r in runs.ok() if isinstance(r.get(key), (int, float)))
        m = runs.med(key, worst)
        m = None if m is None else m * scale
        verdict = "—" if m is not None and math.isnan(m) else ("met" if m is not None and ok(m) else "**missed**")
        lo, hi = (fmt(xs[0], nd), fmt(xs[-1], nd)) if xs else ("—", "—")
        p(f"| {name} | {runs.count()} | {lo} | {fmt(m, nd)} | {hi} | {verdict} |")

    target("B1 remote, one job: ≥ 300,000 pieces/s", remote, "tasks_per_s", lambda v: v >= 300_000, 0.0)
    target("B1 remote, one-piece jobs: ≥ 20,000 jobs/s", remote, "jobs_per_s", lambda v: v >= 20_000, 0.0)
    target("B2 remote p50 ≤ 150 µs", remote, "lat_p50_ms", lambda v: v <= 150, math.inf, 0, 1000)
    target("B2 remote p99 ≤ 400 µs", remote, "lat_p99_ms", lambda v: v <= 400, math.inf, 0, 1000)
    primes = select(rows, "meshwork", "primes")
    single = select(rows, "meshwork-single", "primes").time("wall_s")
    if single:
        for r in primes.rows:
            r["efficiency"] = single / (2 * r["wall_s"]) if r.get("wall_s") else None
    target("B3 efficiency ≥ 0.97 (single-process median / 2 × each run)", primes, "efficiency", lambda v: v >= 0.97, 0.0, 3)
    for r in mixed.rows:
        if isinstance(r.get("worker_idle_rss_kib"), (int, float)):
            r["idle_rss_mb"] = r["worker_idle_rss_kib"] / 1024
    target("idle `meshwork node` RSS ≤ 15 MB (bench worker before B1)", mixed, "idle_rss_mb", lambda v: v <= 15, math.inf, 1)
    anon = [r["worker_idle_anon_kib"] / 1024 for r in mixed.ok() if isinstance(r.get("worker_idle_anon_kib"), (int, float))]
    if anon:
        p("")
        p(f"Of that idle RSS, the node's own memory (anonymous: heap and stacks) is {statistics.median(anon):.1f} MB "
          f"(median of {len(anon)} runs); the rest is pages mapped from the `meshwork` binary, shared by every "
          "meshwork process on the machine (see [Idle memory](#idle-memory)).")
    return "\n".join(out)


def b3_breakdown(par, single):
    """meshwork's B3 efficiency as the product of two measured shares: the
    slots' time spent computing (the workers' reported execution time over
    2 × wall) and the single-process time over that execution time (the
    work the split and two busy vCPUs add). Runs without the figures (older
    data) are left out of these medians only."""
    runs = [r for r in par.ok() if isinstance(r.get("exec_s"), (int, float))]
    if not runs or not single:
        return "(No B3 run records the workers' execution time yet: no breakdown.)\n"
    med = lambda f: statistics.median(f(r) for r in runs)  # noqa: E731
    util = med(lambda r: r["exec_s"] / (2 * r["wall_s"]))
    work = med(lambda r: single / r["exec_s"])
    start = med(lambda r: r.get("first_placed_s") or 0.0)
    idle = med(lambda r: 2 * r["wall_s"] - r["exec_s"])
    return (f"Where meshwork's B3 efficiency goes ({len(runs)} runs, medians): efficiency = "
            f"slot utilisation × work efficiency. The two slots compute **{util:.3f}** of the wall time "
            f"(idle {idle:.3f} slot-seconds a run, of which {start * 1000:.1f} ms before the first piece is placed, "
            f"the rest round trips and the tail), and the pieces take "
            f"**{1 / work:.3f}×** the single-process time to compute (work efficiency {work:.3f}: the split's "
            f"extra sieving and both vCPUs busy at once).\n")


def splice(path, text):
    with open(path) as fh:
        doc = fh.read()
    a, b = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    with open(path, "w") as fh:
        fh.write(doc[:a] + "\n" + text + "\n" + doc[b:])


def name_run(workload_args):
    """The last JSON line on stdin, with system/workload/restart set if missing."""
    words = workload_args.split()
    lines = [l for l in sys.stdin if l.strip().startswith("{")]
    rec = json.loads(lines[-1]) if lines else {"ok": False, "error": "no output"}
    rec.setdefault("system", "meshwork-single" if words[0] == "single" else "meshwork")
    rec.setdefault("workload", "primes" if words[0] == "single" else words[0])
    if "--restart" in words:
        rec.setdefault("restart", words[words.index("--restart") + 1])
    print(json.dumps(rec))


def main(argv):
    if argv[:1] == ["--name"]:
        return name_run(argv[1])
    svg = md = None
    while argv[:1] in (["--svg"], ["--md"]):
        if argv[0] == "--svg":
            svg = argv[1]
        else:
            md = argv[1]
        argv = argv[2:]
    rows = load(argv)
    text = tables(rows)
    if md:
        splice(md, text)
    else:
        print(text)
    if svg:
        write_svg(svg, rows)


def write_svg(path, rows):
    """Two bar charts (log-scale one-piece tasks/s, B3 efficiency) without plotting libraries."""
    import html
    systems = ["meshwork"] + PEERS
    tps = {s: select(rows, s, "noop").rate("tasks_per_s") for s in PEERS}
    tps["meshwork"] = select(rows, "meshwork", "noop-remote").rate("jobs_per_s")
    eff = {}
    for s in systems:
        t_par = select(rows, s, "primes").time("wall_s")
        t_single = select(rows, "meshwork-single" if s == "meshwork" else "single", "primes").time("wall_s")
        eff[s] = ratio(t_single, 2 * t_par) if t_par else None
    w, h, pad = 800, 300, 40
    colors = {"meshwork": "#2b7a4b", "celery": "#8c6d31", "dask": "#3b6ea8", "ray": "#a83b3b"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>']

    def chart(x0, title, values, top, label, log=False):
        cw, ch = w / 2 - 2 * pad, h - 3 * pad
        title = html.escape(title)
        parts.append(f'<text x="{x0 + cw / 2}" y="{pad - 15}" text-anchor="middle" font-weight="bold">{title}</text>')
        bw = cw / len(systems)
        for i, s in enumerate(systems):
            v = values.get(s)
            if v is None:
                continue
            frac = (math.log10(max(v, 1)) / math.log10(top)) if log else v / top
            bh = max(1, ch * min(frac, 1))
            x, y = x0 + i * bw + 8, pad + ch - bh
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 16:.1f}" height="{bh:.1f}" fill="{colors[s]}"/>')
            parts.append(f'<text x="{x + (bw - 16) / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{label(v)}</text>')
            parts.append(f'<text x="{x + (bw - 16) / 2:.1f}" y="{pad + ch + 16:.1f}" text-anchor="middle">{s}</text>')
        parts.append(f'<line x1="{x0}" y1="{pad + ch}" x2="{x0 + cw}" y2="{pad + ch}" stroke="black"/>')

    top = max([v for v in tps.values() if v] or [10]) * 3
    chart(pad, "B1: 10,000 one-piece tasks, tasks/s (log)", tps, top, lambda v: f"{v:,.0f}", log=True)
    chart(w / 2 + pad, "B3: parallel efficiency (primes below 20M, 2 workers)", eff, 1.0, lambda v: f"{v:.2f}")
    parts.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(parts))


if __name__ == "__main__":
    main(sys.argv[1:])
