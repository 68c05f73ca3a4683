#!/usr/bin/env bash
# User-space instructions per request of one etcdrs member, under valgrind's callgrind: a
# count that does not move with the machine's noise, for telling a small change in the
# request path from none. Runs N and then 2N requests of one workload against a fresh
# member each time and prints (Ir(2N) - Ir(N)) / N, so start-up does not count. The kernel's
# share (TCP, fsync) is not in it.
#
#   scripts/bench/instructions.sh [put|get|mixed|cas] [N]     (default: put 20000; needs
#   valgrind; builds release binaries; a few minutes)
#   ETCDRS=/path/to/etcdrs scripts/bench/instructions.sh get  (another build of the member)
# A measurement, not a test.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORKLOAD=${1:-put}
N=${2:-20000}
PORT=${PORT:-23790}
cargo build -q --release --bin etcdrs --bin etcdrs-bench
TARGET=$(scripts/target-dir.sh)
ETCDRS=${ETCDRS:-$TARGET/release/etcdrs}
WORK=$(mktemp -d)
trap '{ pkill -9 -P $$; wait; } 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Prints the instructions a member ran while serving $1 requests.
instructions() {
    local out="$WORK/callgrind.$1" data="$WORK/data.$1"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$ETCDRS" --name m0 \
        --data-dir "$data" \
        --listen-client-urls "http://127.0.0.1:$PORT" \
        --advertise-client-urls "http://127.0.0.1:$PORT" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((PORT + 1))" \
        --initial-cluster "m0=http://127.0.0.1:$((PORT + 1))" >"$WORK/member.$1.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 300); do
        curl -sf "http://127.0.0.1:$PORT/v2/keys/" >/dev/null && break
        sleep 0.1
    done
    "$TARGET/release/etcdrs-bench" --endpoints "http://127.0.0.1:$PORT" --workload "$WORKLOAD" \
        --requests "$1" --warmup 0 >/dev/null
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    sed -n 's/^summary: //p' "$out"
}

one=$(instructions "$N")
two=$(instructions "$((2 * N))")
echo "$WORKLOAD: $(((two - one) / N)) user instructions per request ($ETCDRS)"
