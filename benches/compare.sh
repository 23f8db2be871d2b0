#!/usr/bin/env bash
# meshwork against Celery, Dask and Ray on the same four workloads, measured
# in one run on this machine, printed as one table of ratios.
#
#   benches/compare.sh                 # REPS=3 (peers take 15-35 min)
#   REPS=7 SKIP_PEERS=1 benches/compare.sh   # meshwork only (the peers' committed runs)
#   python3 benches/compare.py --md docs/benchmarks.md --svg docs/benchmarks.svg \
#       docs/bench-data/meshwork.jsonl docs/bench-data/peers.jsonl   # tables again, no run
#
# Every run's JSON line is kept in docs/bench-data/ (meshwork.jsonl, and
# peers.jsonl for the peers), and docs/benchmarks.md's tables and plot are
# regenerated from those files only.
#
# Every run (meshwork's too) goes through the peers' runner.py: a private
# network namespace with only loopback, a wait for a quiet machine, and the
# CPU load of other processes recorded so contended runs are left out.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS="${PEERS:-$ROOT/../shared/bench/peers}"
OUT="${OUT:-$ROOT/target/bench}"
DATA="$ROOT/docs/bench-data"
REPS="${REPS:-3}"
PEERS_DIR="${PEERS_DIR:-$HOME/.cache/bench-peers}"
mkdir -p "$OUT"

# --workspace, as the tests build it: the same features, so no rebuild back and forth.
cargo build --release -q --workspace --bin meshwork --manifest-path "$ROOT/Cargo.toml"
MW="${CARGO_TARGET_DIR:-$ROOT/target}/release/meshwork"
# runner.py needs only the standard library: the peers' venv only when they run.
PY=python3
if [ "${SKIP_PEERS:-0}" != 1 ]; then
  [ -x "$PEERS_DIR/venv/bin/python" ] || bash "$PEERS/setup.sh"
  PY="$PEERS_DIR/venv/bin/python"
fi

RAW="$OUT/meshwork.jsonl"
: > "$RAW"
for rep in $(seq 1 "$REPS"); do
  for w in noop noop-remote single primes "fault --restart none" "fault --restart supervisor"; do
    echo "== rep $rep meshwork $w" >&2
    # A failed run still gets its line (ok: false), named after the row it
    # belongs to even when meshwork printed nothing: it stays in the data.
    # shellcheck disable=SC2086 # $w is the workload and its options
    "$PY" "$PEERS/runner.py" --timeout 300 --netns --quiet-wait "${QUIET_WAIT:-60}" -- "$MW" bench $w \
      | python3 "$ROOT/benches/compare.py" --name "$w" | tee -a "$RAW" || true
  done
done
mkdir -p "$DATA"
cp "$RAW" "$DATA/meshwork.jsonl"

if [ "${SKIP_PEERS:-0}" != 1 ]; then
  OUT="$OUT/peers" REPS="$REPS" PEERS_DIR="$PEERS_DIR" bash "$PEERS/run_all.sh" >&2
  cp "$OUT/peers/raw.jsonl" "$DATA/peers.jsonl"
fi
python3 "$ROOT/benches/compare.py" --md "$ROOT/docs/benchmarks.md" --svg "$ROOT/docs/benchmarks.svg" \
  "$DATA/meshwork.jsonl" "$DATA/peers.jsonl"
echo "tables: docs/benchmarks.md; plot: docs/benchmarks.svg; data: docs/bench-data/" >&2
