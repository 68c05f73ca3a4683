#!/usr/bin/env bash
# Three members on loopback, etcdrs and then etcd 3.4 started with the same flags: v2 PUT
# and GET throughput through the leader (wrk), and the time to elect a new leader after
# kill -9 of the leader (several runs). Prints one block per server.
#
#   scripts/bench/cluster.sh [etcdrs-binary]    (needs wrk, etcd, curl; release build:
#                                                cargo build --release --bin etcdrs)
# A measurement, not a test: numbers depend on the machine.
set -euo pipefail
ETCDRS=${1:-$("$(dirname "$0")/../target-dir.sh")/release/etcdrs}
DURATION=${DURATION:-10s}
RUNS=${RUNS:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'pkill -9 -P $$ || true; rm -rf "$WORK"' EXIT

start() { # name binary member-index
    local name=$1 bin=$2 i=$3
    local ic="m0=http://127.0.0.1:42380,m1=http://127.0.0.1:42381,m2=http://127.0.0.1:42382"
    local extra=()
    [ "$bin" = etcd ] && extra=(--enable-v2=true)
    "$bin" "${extra[@]}" --name m$i --data-dir "$WORK/$name-m$i" \
        --listen-client-urls http://127.0.0.1:4237$i --advertise-client-urls http://127.0.0.1:4237$i \
        --listen-peer-urls http://127.0.0.1:4238$i --initial-advertise-peer-urls http://127.0.0.1:4238$i \
        --initial-cluster "$ic" --initial-cluster-token bench --snapshot-count 10000 \
        >"$WORK/$name-m$i.log" 2>&1 &
    echo $! >"$WORK/$name-m$i.pid"
}

leader() { # prints the leader's index (0..2) as the live members see it, or nothing
    for i in 0 1 2; do
        local id
        id=$(curl -s -m 1 http://127.0.0.1:4237$i/v2/members/leader 2>/dev/null | sed -n 's/.*"name":"m\([0-9]\)".*/\1/p')
        [ -n "$id" ] && { echo "$id"; return 0; }
    done
    return 0
}

wait_leader() {
    for _ in $(seq 1 200); do
        local l; l=$(leader); [ -n "$l" ] && { echo "$l"; return; }
        sleep 0.05
    done
    echo "no leader" >&2; exit 1
}

bench() { # name binary
    local name=$1 bin=$2
    rm -rf "$WORK"/$name-*
    for i in 0 1 2; do start "$name" "$bin" $i; done
    local l; l=$(wait_leader); sleep 1
    echo "== $name (3 members, leader m$l)"
    echo "-- put, 64 B values, distinct keys, wrk -t2 -c32 -d$DURATION"
    wrk -t2 -c32 -d"$DURATION" --latency -s "$HERE/put.lua" http://127.0.0.1:4237$l | grep -E "Requests/sec|50%|99%|Non-2xx"
    curl -s -XPUT http://127.0.0.1:4237$l/v2/keys/bench-get -d value=x >/dev/null
    echo "-- get of one key from the leader, wrk -t2 -c32 -d$DURATION"
    wrk -t2 -c32 -d"$DURATION" --latency http://127.0.0.1:4237$l/v2/keys/bench-get | grep -E "Requests/sec|50%|99%|Non-2xx"
    echo "-- new leader after kill -9 of the leader ($RUNS runs)"
    local times=()
    for _ in $(seq 1 "$RUNS"); do
        l=$(wait_leader)
        local t0; t0=$(date +%s.%N)
        kill -9 "$(cat "$WORK/$name-m$l.pid")"
        local n=""
        while [ -z "$n" ] || [ "$n" = "$l" ]; do n=$(leader); sleep 0.02; done
        times+=("$(echo "$(date +%s.%N) - $t0" | bc)")
        start "$name" "$bin" "$l"; sleep 2
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "   runs: %d  median %.2fs  min %.2fs  max %.2fs\n", NR, a[int((NR+1)/2)], a[1], a[NR]}'
    for i in 0 1 2; do kill -9 "$(cat "$WORK/$name-m$i.pid")" 2>/dev/null || true; done
    sleep 1
}

bench etcdrs "$ETCDRS"
bench etcd etcd
