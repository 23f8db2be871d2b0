#!/usr/bin/env python3
"""One table, meshwork against each peer, from the JSON lines of
`meshwork bench` and of the peers' run_all.sh (same fields as their
summarize.py reads). Medians over runs that were ok and clean (other
processes used <= 0.05 core; all runs if none was clean, marked *).

Usage: compare.py [--svg plot.svg] meshwork.jsonl peers.jsonl
"""
import json
import statistics
import sys

CLEAN_MAX = 0.05


def load(paths):
    rows = []
    for p in paths:
        with open(p) as fh:
            rows += [json.loads(l) for l in fh if l.strip().startswith("{")]
    return rows


def runs(rows, system, workload):
    ok = [r for r in rows if r.get("system") == system and r.get("workload") == workload and r.get("ok")]
    clean = [r for r in ok if r.get("foreign_load") is None or r["foreign_load"] <= CLEAN_MAX]
    return (clean, "") if clean else (ok, "*")


def med(rows, key):
    xs = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    return "—" if x is None else f"{x:,.{nd}f}"


def main(argv):
    svg = None
    if argv[:1] == ["--svg"]:
        svg, argv = argv[1], argv[2:]
    rows = load(argv)
    systems = ["meshwork", "celery", "dask", "ray"]
    m = {}
    for s in systems:
        noop, mn = runs(rows, s, "noop")
        primes, mp = runs(rows, s, "primes")
        fault, mf = runs(rows, s, "fault")
        single_sys = "meshwork-single" if s == "meshwork" else "single"
        single, ms = runs(rows, single_sys, "primes")
        t_single, t_par = med(single, "wall_s"), med(primes, "wall_s")
        m[s] = {
            "tps": med(noop, "tasks_per_s"), "p50": med(noop, "lat_p50_ms"), "p99": med(noop, "lat_p99_ms"),
            "b3": t_par, "eff": (t_single / (2 * t_par)) if t_single and t_par else None,
            "b4_ok": f"{sum(1 for r in fault if r.get('completed') and r.get('correct'))}/{len(fault)}" if fault else "—",
            "b4_extra": med([{"x": r["fault_s"] - r["nofault_s"]} for r in fault if "fault_s" in r and "nofault_s" in r], "x"),
            "mark": mn + mp + mf + ms, "n": len(noop),
        }
    mw = m["meshwork"]
    print("| system | B1 pieces/s | B2 p50 ms | B2 p99 ms | B3 wall s | B3 efficiency | B4 ok | B4 extra s |")
    print("|---|---|---|---|---|---|---|---|")
    for s in systems:
        r = m[s]
        print(f"| {s}{r['mark'] and ' *'} | {fmt(r['tps'], 0)} | {fmt(r['p50'], 3)} | {fmt(r['p99'], 3)} | {fmt(r['b3'])} "
              f"| {fmt(r['eff'])} | {r['b4_ok']} | {fmt(r['b4_extra'])} |")
    print()
    print("| meshwork vs | B1 throughput × | B2 p50 × faster | B2 p99 × faster | B3 efficiency Δ |")
    print("|---|---|---|---|---|")
    ratio = lambda a, b: None if a is None or b is None or b == 0 else a / b
    for s in systems[1:]:
        r = m[s]
        d = None if mw["eff"] is None or r["eff"] is None else mw["eff"] - r["eff"]
        print(f"| {s} | {fmt(ratio(mw['tps'], r['tps']), 1)} | {fmt(ratio(r['p50'], mw['p50']), 1)} "
              f"| {fmt(ratio(r['p99'], mw['p99']), 1)} | {fmt(d, 3)} |")
    if svg:
        write_svg(svg, m, systems)


def write_svg(path, m, systems):
    """Two bar charts (log-scale B1 throughput, B3 efficiency) without plotting libraries."""
    import html
    import math
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

    tps = {s: m[s]["tps"] for s in systems}
    top = max([v for v in tps.values() if v] or [10]) * 3
    chart(pad, "B1: no-op pieces/s (log scale)", tps, top, lambda v: f"{v:,.0f}", log=True)
    chart(w / 2 + pad, "B3: parallel efficiency (primes below 20M, 2 workers)", {s: m[s]["eff"] for s in systems}, 1.0,
          lambda v: f"{v:.2f}")
    parts.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(parts))


if __name__ == "__main__":
    main(sys.argv[1:])
