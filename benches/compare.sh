#!/usr/bin/env bash
# meshwork against Celery, Dask and Ray on the same four workloads, measured
# in one run on this machine, printed as one table of ratios.
#
#   benches/compare.sh                 # REPS=3 (peers take 15-35 min)
#   REPS=1 benches/compare.sh          # quicker
#   SKIP_PEERS=1 benches/compare.sh    # meshwork only (table uses the peers' last results)
#
# Every run (meshwork's too) goes through the peers' runner.py: a private
# network namespace with only loopback, a wait for a quiet machine, and the
# CPU load of other processes recorded so contended runs are left out.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS="${PEERS:-$ROOT/../shared/bench/peers}"
OUT="${OUT:-$ROOT/target/bench}"
REPS="${REPS:-3}"
PEERS_DIR="${PEERS_DIR:-$HOME/.cache/bench-peers}"
mkdir -p "$OUT"

cargo build --release -q -p meshwork --manifest-path "$ROOT/Cargo.toml"
MW="$ROOT/target/release/meshwork"
[ -x "$PEERS_DIR/venv/bin/python" ] || bash "$PEERS/setup.sh"
PY="$PEERS_DIR/venv/bin/python"

RAW="$OUT/meshwork.jsonl"
: > "$RAW"
for rep in $(seq 1 "$REPS"); do
  for w in noop single primes fault; do
    echo "== rep $rep meshwork $w" >&2
    "$PY" "$PEERS/runner.py" --timeout 300 --netns --quiet-wait "${QUIET_WAIT:-60}" -- "$MW" bench "$w" | tee -a "$RAW"
  done
done

PEER_RAW="$PEERS/results/raw.jsonl"
if [ "${SKIP_PEERS:-0}" != 1 ]; then
  OUT="$OUT/peers" REPS="$REPS" PEERS_DIR="$PEERS_DIR" bash "$PEERS/run_all.sh" >&2
  PEER_RAW="$OUT/peers/raw.jsonl"
fi
python3 "$ROOT/benches/compare.py" --svg "$OUT/benchmarks.svg" "$RAW" "$PEER_RAW" | tee "$OUT/table.md"
echo "plot: $OUT/benchmarks.svg" >&2
