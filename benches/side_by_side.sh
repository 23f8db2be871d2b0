#!/usr/bin/env bash
# How much slower B3's kernel runs when both vCPUs run it at once, with no
# mesh at all: `meshwork bench single` alone, then two copies side by side,
# REPS times. This is the ceiling on B3's work efficiency on this machine
# (docs/benchmarks.md, "Where B3's time goes").
#
#   benches/side_by_side.sh > docs/bench-data/side_by_side.jsonl
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release -q --workspace --bin meshwork --manifest-path "$ROOT/Cargo.toml"
MW="${CARGO_TARGET_DIR:-$ROOT/target}/release/meshwork"
wall() { python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["wall_s"]) for l in sys.stdin if l.startswith("{")))'; }
for _ in $(seq 1 "${REPS:-5}"); do
  alone="$("$MW" bench single 2>/dev/null | wall)"
  pair="$( ( "$MW" bench single 2>/dev/null & "$MW" bench single 2>/dev/null; wait ) | wall)"
  python3 -c 'import json,sys; a=float(sys.argv[1]); p=[float(x) for x in sys.argv[2:]]
print(json.dumps({"alone_s": a, "side_by_side_s": p, "slowdown": round(sum(p) / len(p) / a, 4)}))' $alone $pair
done
