#!/usr/bin/env python3
"""The simulator and `--real` side by side: the same scenario run both ways
for a few seeds, one markdown table (simulations/README.md, "`--real` and
the simulator, side by side").

Usage: sim_vs_real.py [--meshwork PATH] [--seeds 1,2,3] [-- simulate options...]
The default scenario is the README's: 50 nodes, 200 pieces of 2-4 s.
"""
import argparse
import json
import subprocess
import sys

DEFAULT = ["--nodes", "50", "--pieces", "200", "--piece-cost", "uniform:2s..4s", "--speeds", "uniform:0.5..2"]


def simulate(meshwork, words, real):
    cmd = [meshwork, "simulate", "--json", *words] + (["--real", "--no-mdns"] if real else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]}
    return json.loads(out.stdout)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshwork", default="target/release/meshwork")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("options", nargs="*")
    a = ap.parse_args(argv)
    words = a.options or DEFAULT
    print(f"`meshwork simulate {' '.join(words)} --seed S [--real]`\n")
    print("| seed | makespan virtual s | makespan real s | real / virtual | judged down falsely: virtual | real | retried: virtual | real |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in a.seeds.split(","):
        w = words + ["--seed", seed]
        v, r = simulate(a.meshwork, w, False), simulate(a.meshwork, w, True)
        if "error" in v or "error" in r:
            print(f"| {seed} | {v.get('error', '')} | {r.get('error', '')} | | | | | |")
            continue
        ratio = r["makespan_s"] / v["makespan_s"] if v["makespan_s"] else float("nan")
        print(f"| {seed} | {v['makespan_s']:.3f} | {r['makespan_s']:.3f} | {ratio:.3f} "
              f"| {v['faults']['false_downs']} | {r['faults']['false_downs']} "
              f"| {v['pieces_retried']} | {r['pieces_retried']} |")


if __name__ == "__main__":
    main(sys.argv[1:])
