#!/usr/bin/env bash
# The C prime counter as a wasm job against the built-in primes task, on a
# 2-worker loopback mesh (one slot each, mDNS off), REPS runs each,
# alternated; prints each run's result and wall seconds. The wasm runs
# include fetching and compiling the module on each worker (first run) or
# not (later runs: cached).
#
#   REPS=5 benches/wasm_vs_native.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPS="${REPS:-3}"
cargo build --release -q -p meshwork --manifest-path "$ROOT/Cargo.toml"
B="${CARGO_TARGET_DIR:-$ROOT/target}/release/meshwork"
D="$(mktemp -d)"
clang --target=wasm32-wasi -O2 -o "$D/primes.wasm" "$ROOT/examples/wasm/primes.c"
clang --target=wasm32-wasi -O2 -o "$D/sum.wasm" "$ROOT/examples/wasm/sum.c"
node() { "$B" node --json --no-mdns --listen /ip4/127.0.0.1/tcp/0 --slots 1 --identity "$D/$1.key" --cache-dir "$D/cache-$1" "${@:2}" > "$D/$1.out" 2>/dev/null & }
node n1
P1=$!
# The first node's address, once it prints it.
until A=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["addr"])' "$D/n1.out" 2>/dev/null); do :; done
node n2 --join "$A"
P2=$!
trap 'kill $P1 $P2; rm -rf "$D"' EXIT
run() { "$B" run --no-mdns --listen /ip4/127.0.0.1/tcp/0 --join "$A" --slots 0 --json --min-peers 2 --wait 30 "$@" 2>/dev/null; }
for r in $(seq "$REPS"); do
  run primes --to 20000000 --pieces 64 \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print("native", d["result"]["count"], d["summary"]["wall_s"])'
  run wasm "$D/primes.wasm" --range 0..20000000 --pieces 64 --reduce "$D/sum.wasm" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print("wasm  ", d["result"]["output"], d["summary"]["wall_s"])'
done
