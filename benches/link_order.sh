#!/usr/bin/env bash
# Regenerates node/link-order.txt: the functions an idle `meshwork node`
# runs (starting, joining a peer, then idle), which node/build.rs asks the
# linker to lay out side by side. The kernel maps a binary's code a block of
# pages at a time around each page a process runs; with these functions
# spread over the whole 21 MB of code, an idle node had 12.6 MB of it
# resident, with them together 3.5 MB (docs/benchmarks.md, "Idle memory").
#
#   benches/link_order.sh        # needs valgrind; about two minutes
#
# Run it again after a rustc or dependency upgrade: the file names symbols
# with their hashes, and the linker skips names it does not find, so a stale
# file costs memory, never a build.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release -q --workspace --bin meshwork --manifest-path "$ROOT/Cargo.toml"
MW="$(realpath "${CARGO_TARGET_DIR:-$ROOT/target}/release/meshwork")"
tmp="$(mktemp -d)"
trap 'kill "$peer" 2>/dev/null; rm -rf "$tmp"' EXIT
"$MW" node --no-mdns --no-http --slots 1 --listen /ip4/127.0.0.1/tcp/0 --cache-dir "$tmp/modules" \
  --identity "$tmp/peer.key" > "$tmp/peer.out" 2> "$tmp/peer.log" &
peer=$!
for _ in $(seq 100); do grep -q '^listening' "$tmp/peer.out" && break; sleep 0.1; done
addr="$(grep -m1 -o '/ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*' "$tmp/peer.out")"

# The profiled node: under callgrind it takes ~10 s to start; it then joins
# the peer and idles until the timeout's SIGINT stops it (exit 124).
RUST_LOG=warn timeout -s INT "${PROFILE_SECONDS:-60}" valgrind --tool=callgrind --demangle=no \
  --callgrind-out-file="$tmp/callgrind.out" "$MW" node --no-mdns --no-http --slots 1 \
  --listen /ip4/127.0.0.1/tcp/0 --cache-dir "$tmp/modules" --identity "$tmp/profiled.key" --join "$addr" \
  > "$tmp/profiled.out" 2> "$tmp/valgrind.log" || [ $? = 124 ]
grep -q '^peer-up' "$tmp/profiled.out" || { echo "the profiled node never saw its peer" >&2; exit 1; }
python3 "$ROOT/benches/link_order.py" "$tmp/callgrind.out" "$MW" > "$ROOT/node/link-order.txt"
echo "node/link-order.txt: $(wc -l < "$ROOT/node/link-order.txt") functions" >&2
