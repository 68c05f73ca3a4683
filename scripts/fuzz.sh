#!/usr/bin/env bash
# The fuzz targets (property tests over arbitrary and damaged input), run long:
#   scripts/fuzz.sh [CASES]        (default 20000 cases per target; CI runs 256)
# Targets: core's decoders (peer frames, raft entries, snapshot data, v2 store images, v3
# dumps, WAL segments and snapshot files with damage, v2 forms), the C ABI's arguments,
# and the client port over a socket. Prints each target's cases and time. A failing case
# is shrunk and saved under proptest-regressions/ (commit it with the fix): every later
# run, CI's too, replays it first.
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-20000}
export PROPTEST_CASES=$cases
run() {
  local name=$1; shift
  local start=$SECONDS
  cargo test -q "$@" 2>&1 | grep -E "test result|panicked|minimal failing" || true
  echo "$name: $PROPTEST_CASES cases per property in $((SECONDS - start)) s"
}
cargo build -q -p etcdrs-core -p etcdrs-ffi -p etcdrs-tests --tests
run "core decoders (9 properties; WAL and snapshot files a quarter of the cases)" -p etcdrs-core --lib fuzz
run "C ABI arguments" -p etcdrs-ffi --test fuzz
# Every case here is a request over a socket and two quorum reads: a tenth of the cases.
PROPTEST_CASES=$((cases / 10)) run "client port (HTTP)" -p etcdrs-tests --test fuzz_http
