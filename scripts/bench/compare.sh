#!/usr/bin/env bash
# etcdrs against etcd 3.4, side by side in one run, with one load generator (etcdrs-bench):
# every workload on a fresh single member of each (alternating), put/get on fresh 3-member
# clusters (through the leader and through all members), peak RSS after loading keys and
# the time to restart with them, and the start-up time of an empty member. Prints a table
# with etcdrs/etcd ratios; JSON results stay in $OUT (default: bench-results in cargo's target dir).
#
#   scripts/bench/compare.sh            (needs etcd 3.4 and curl; builds release binaries)
#   DURATION=10 KEYS_RSS=1000000 scripts/bench/compare.sh
#   ROUNDS=3 scripts/bench/compare.sh   (each workload 3 times, alternating; medians reported)
#   QUICK=1 scripts/bench/compare.sh    (short runs, small counts: to check that it works)
#   ONLY='^v3' scripts/bench/compare.sh   (only the v3 workloads over gRPC)
#   ONLY='^gw' scripts/bench/compare.sh   (only v3 through the JSON gateway)
#   ONLY='^cluster' scripts/bench/compare.sh   (only the workloads whose names match;
#                                               'memory' names the 1M-key rows)
# A measurement, not a test: numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
KEYS_RSS=${KEYS_RSS:-1000000}
WATCHERS=${WATCHERS:-"100 1000 10000"}
# This machine's runs minutes apart differ by up to 2x: several rounds, medians in the table.
ROUNDS=${ROUNDS:-1}
if [ -n "${QUICK:-}" ]; then DURATION=1; WARMUP=0.5; KEYS_RSS=20000; WATCHERS="100 1000"; ROUNDS=1; fi
TARGET=$(scripts/target-dir.sh)
OUT=${OUT:-$TARGET/bench-results}
WORK=$(mktemp -d)
trap '{ pkill -9 -P $$; wait; } 2>/dev/null || true; rm -rf "$WORK"' EXIT
cargo build -q --release --bin etcdrs --bin etcdrs-bench
ETCDRS=$TARGET/release/etcdrs
BENCH=$TARGET/release/etcdrs-bench
# A partial run (ONLY=...) adds to the results of the last full one.
[ -n "${ONLY:-}" ] || rm -rf "$OUT"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

bin_of() { [ "$1" = etcd ] && echo etcd || echo "$ETCDRS"; }
# etcd has no per-client caps; the load generator is one client with up to 10000
# watchers, so etcdrs runs without its own.
flags_of() {
  if [ "$1" = etcd ]; then echo "--enable-v2=true"
  else echo "--max-connections-per-client 0 --max-long-polls-per-client 0"; fi
}

now_ms() { date +%s%3N; }

# Members are not children of this shell (they start in a subshell), so `wait` cannot
# wait for them: poll until PID is gone (at most a minute).
gone() {
    local _
    for _ in $(seq 1 1200); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.05
    done
    echo "process $1 did not exit" >&2
    exit 1
}

# start SERVER N: N members on 127.0.0.1:2237i (clients) / 2238i (peers), below the
# ephemeral range (10000 watcher connections must not take a port a member needs); echoes the
# client URLs (comma-separated) once every member answers.
start() {
    local server=$1 n=$2 ic="" i
    for i in $(seq 0 $((n - 1))); do
        ic="$ic${ic:+,}m$i=http://127.0.0.1:2238$i"
        # Something else on our ports would be measured instead: refuse.
        if curl -s -m 1 "http://127.0.0.1:2237$i/version" >/dev/null 2>&1; then
            echo "port 2237$i is in use: stop whatever serves it first" >&2
            exit 1
        fi
    done
    for i in $(seq 0 $((n - 1))); do
        # shellcheck disable=SC2046
        $(bin_of "$server") $(flags_of "$server") --name "m$i" --data-dir "$WORK/$server-m$i" \
            --listen-client-urls "http://127.0.0.1:2237$i" --advertise-client-urls "http://127.0.0.1:2237$i" \
            --listen-peer-urls "http://127.0.0.1:2238$i" --initial-advertise-peer-urls "http://127.0.0.1:2238$i" \
            --initial-cluster "$ic" --initial-cluster-token bench >"$WORK/$server-m$i.log" 2>&1 &
        echo $! >"$WORK/$server-m$i.pid"
    done
    local urls="" ok
    for i in $(seq 0 $((n - 1))); do
        urls="$urls${urls:+,}http://127.0.0.1:2237$i"
        ok=""
        for _ in $(seq 1 300); do
            curl -sf -m 1 -XPUT "http://127.0.0.1:2237$i/v2/keys/_ready" -d value=1 >/dev/null 2>&1 && { ok=1; break; }
            sleep 0.05
        done
        if [ -z "$ok" ]; then
            echo "$server member m$i did not serve; its log:" >&2
            tail -20 "$WORK/$server-m$i.log" >&2
            exit 1
        fi
    done
    echo "$urls"
}

stop() { # SERVER N
    local i
    for i in $(seq 0 $(($2 - 1))); do
        kill -9 "$(cat "$WORK/$1-m$i.pid")" 2>/dev/null || true
        gone "$(cat "$WORK/$1-m$i.pid")"
        rm -rf "$WORK/$1-m$i"
    done
}

leader_url() { # the client URL of the current leader, among URLS
    local u
    for u in ${1//,/ }; do
        if curl -sf -m 1 "$u/v2/stats/self" | grep -q '"state":"StateLeader"'; then
            echo "$u"
            return
        fi
    done
    echo "${1%%,*}"
}

# run NAME SERVER MEMBERS ENDPOINT-CHOICE ROUND -- etcdrs-bench args
run() {
    local name=$1 server=$2 members=$3 choice=$4 round=$5
    shift 6
    local urls endpoints
    urls=$(start "$server" "$members")
    endpoints=$urls
    [ "$choice" = leader ] && endpoints=$(leader_url "$urls")
    "$BENCH" --endpoints "$endpoints" --target "$server" --duration "$DURATION" \
        --warmup "$WARMUP" --json "$OUT/$name.$server.$round.json" "$@" || true
    stop "$server" "$members"
}

workload() { # NAME MEMBERS CHOICE -- args: alternate etcdrs and etcd
    local name=$1 members=$2 choice=$3
    shift 4
    [[ "$name" =~ ${ONLY:-.} ]] || return 0
    rm -f "$OUT/$name".*.json
    local r
    for r in $(seq 1 "$ROUNDS"); do
        run "$name" etcdrs "$members" "$choice" "$r" -- "$@"
        run "$name" etcd "$members" "$choice" "$r" -- "$@"
    done
}

workload put-64 1 all -- --workload put --conns 32 --value-size 64
workload put-256 1 all -- --workload put --conns 32 --value-size 256
workload get 1 all -- --workload get --conns 32
workload get-quorum 1 all -- --workload get --conns 32 --quorum
workload mixed 1 all -- --workload mixed --conns 32
workload cas 1 all -- --workload cas --conns 32
for w in $WATCHERS; do
    writes=$((w >= 10000 ? 20 : w >= 1000 ? 50 : 100))
    workload "watch-$w" 1 all -- --workload watch --conns "$w" --writes "$writes"
done
workload cluster-put-leader 3 leader -- --workload put --conns 32
workload cluster-put-all 3 all -- --workload put --conns 32
workload cluster-get-leader 3 leader -- --workload get --conns 32
workload cluster-get-all 3 all -- --workload get --conns 32
# v3 over gRPC: the same generator (etcdrs-core's gRPC client) against both.
workload v3-put 1 all -- --workload v3-put --conns 32
workload v3-range 1 all -- --workload v3-range --conns 32
workload v3-range-serializable 1 all -- --workload v3-range --conns 32 --serializable
workload v3-txn 1 all -- --workload v3-txn --conns 32
workload v3-keep-alive 1 all -- --workload v3-keep-alive --conns 32
for w in $WATCHERS; do
    writes=$((w >= 10000 ? 20 : w >= 1000 ? 50 : 100))
    workload "v3-watch-$w" 1 all -- --workload v3-watch --conns "$w" --writes "$writes"
done
workload cluster-v3-put-all 3 all -- --workload v3-put --conns 32
# v3 through etcd's JSON gateway (HTTP/1.1, POST /v3/kv/...).
workload gw-put 1 all -- --workload gw-put --conns 32
workload gw-range 1 all -- --workload gw-range --conns 32
workload gw-range-serializable 1 all -- --workload gw-range --conns 32 --serializable

# Memory and restart with KEYS_RSS keys (64-byte values), and an empty start: v2 keys
# ("memory") and v3 keys over gRPC ("memory-v3"). CHECK succeeds once the restarted member
# serves the first key loaded.
memory() { # NAME WORKLOAD PREFIX CHECK
    local name=$1 workload=$2 prefix=$3 check=$4 server urls pid rss t0 restart restart_rss startup epid
    [[ "$name" =~ ${ONLY:-.} ]] || return 0
    for server in etcdrs etcd; do
        urls=$(start "$server" 1)
        pid=$(cat "$WORK/$server-m0.pid")
        "$BENCH" --endpoints "$urls" --target "$server" --workload "$workload" --conns 32 --warmup 0 \
            --requests "$KEYS_RSS" --prefix "$prefix" >/dev/null || true
        rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
        kill -TERM "$pid"
        gone "$pid"
        t0=$(now_ms)
        # shellcheck disable=SC2046
        $(bin_of "$server") $(flags_of "$server") --name m0 --data-dir "$WORK/$server-m0" \
            --listen-client-urls http://127.0.0.1:22370 --advertise-client-urls http://127.0.0.1:22370 \
            --listen-peer-urls http://127.0.0.1:22380 --initial-advertise-peer-urls http://127.0.0.1:22380 \
            --initial-cluster m0=http://127.0.0.1:22380 --initial-cluster-token bench >>"$WORK/$server-m0.log" 2>&1 &
        echo $! >"$WORK/$server-m0.pid"
        restart=-1
        for _ in $(seq 1 60000); do # at most 10 minutes
            if eval "$check" >/dev/null 2>&1; then
                restart=$(($(now_ms) - t0))
                break
            fi
            sleep 0.01
        done
        restart_rss=$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$WORK/$server-m0.pid")/status" 2>/dev/null || echo 0)
        stop "$server" 1
        t0=$(now_ms)
        # shellcheck disable=SC2046
        $(bin_of "$server") $(flags_of "$server") --name m0 --data-dir "$WORK/$server-empty-$name" \
            --listen-client-urls http://127.0.0.1:22370 --advertise-client-urls http://127.0.0.1:22370 \
            --listen-peer-urls http://127.0.0.1:22380 --initial-advertise-peer-urls http://127.0.0.1:22380 \
            --initial-cluster m0=http://127.0.0.1:22380 >"$WORK/$server-empty.log" 2>&1 &
        epid=$!
        startup=-1
        for _ in $(seq 1 6000); do # at most a minute
            if curl -sf -m 1 -XPUT http://127.0.0.1:22370/v2/keys/up -d value=1 >/dev/null 2>&1; then
                startup=$(($(now_ms) - t0))
                break
            fi
            sleep 0.005
        done
        kill -9 "$epid"
        gone "$epid"
        printf '{"target":"%s","keys":%s,"peak_rss_kib":%s,"restart_ms":%s,"restart_rss_kib":%s,"empty_start_ms":%s}\n' \
            "$server" "$KEYS_RSS" "$rss" "$restart" "$restart_rss" "$startup" >"$OUT/$name.$server.json"
    done
}
memory memory put /rss 'curl -sf -m 1 http://127.0.0.1:22370/v2/keys/rss/c0-0'
memory memory-v3 v3-put /rss3 'ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:22370 --dial-timeout=1s --command-timeout=1s get /rss3/c0-0 | grep -q c0-0'

python3 - "$OUT" <<'EOF'
import glob, json, os, statistics, sys
out = sys.argv[1]
def load(name, server):
    p = os.path.join(out, "%s.%s.json" % (name, server))
    return json.load(open(p)) if os.path.exists(p) else None
def rounds(name, server):
    return [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, "%s.%s.*.json" % (name, server))))]
names = sorted({os.path.basename(p).split(".")[0] for p in glob.glob(os.path.join(out, "*.etcdrs.*.json"))})
order = ["put-64", "put-256", "get", "get-quorum", "mixed", "cas"]
names.sort(key=lambda n: (order.index(n) if n in order else len(order), n.startswith("cluster"), n))
med = lambda rs, f: statistics.median(f(r) for r in rs)
n_rounds = max([len(rounds(n, "etcdrs")) for n in names] or [1])
if n_rounds > 1:
    print("Medians of %d alternating rounds; ops/s ranges are min-max over the rounds." % n_rounds)
    print()
print("| workload | etcdrs ops/s | etcd ops/s | ratio | etcdrs p50/p99 ms | etcd p50/p99 ms | p99 ratio | errors (etcdrs/etcd) |")
print("|---|---|---|---|---|---|---|---|")
for n in names:
    a, b = rounds(n, "etcdrs"), rounds(n, "etcd")
    if not a or not b:
        continue
    ta, tb = med(a, lambda r: r["throughput"]), med(b, lambda r: r["throughput"])
    def ops(rs, t):
        if len(rs) == 1:
            return "%.0f" % t
        return "%.0f (%.0f-%.0f)" % (t, min(r["throughput"] for r in rs), max(r["throughput"] for r in rs))
    p50a, p99a = med(a, lambda r: r["latency"]["p50_us"]), med(a, lambda r: r["latency"]["p99_us"])
    p50b, p99b = med(b, lambda r: r["latency"]["p50_us"]), med(b, lambda r: r["latency"]["p99_us"])
    extra = ""
    if "events_expected" in a[0]:
        extra = " (events %d/%d, %d/%d)" % (sum(r["events_delivered"] for r in a), sum(r["events_expected"] for r in a),
                                           sum(r["events_delivered"] for r in b), sum(r["events_expected"] for r in b))
    print("| %s | %s | %s | %.2f× | %.2f / %.2f | %.2f / %.2f | %.2f | %d / %d%s |" % (
        n, ops(a, ta), ops(b, tb), ta / max(tb, 1e-9), p50a / 1000, p99a / 1000, p50b / 1000, p99b / 1000,
        p99a / max(p99b, 1), sum(r["errors"] for r in a), sum(r["errors"] for r in b), extra))
for name in ("memory", "memory-v3"):
    m = {s: load(name, s) for s in ("etcdrs", "etcd")}
    if not m["etcdrs"] or not m["etcd"]:
        continue
    print()
    api = "v3 over gRPC" if name == "memory-v3" else "v2"
    print("| %d keys (%s), 64 B values | etcdrs | etcd | ratio |" % (m["etcdrs"]["keys"], api))
    print("|---|---|---|---|")
    for k, label in (("peak_rss_kib", "peak RSS while loading (MiB)"), ("restart_rss_kib", "RSS after restart (MiB)")):
        print("| %s | %.0f | %.0f | %.2f× |" % (label, m["etcdrs"][k] / 1024, m["etcd"][k] / 1024, m["etcdrs"][k] / m["etcd"][k]))
    print("| restart to serving (ms) | %d | %d | %.2f× |" % (m["etcdrs"]["restart_ms"], m["etcd"]["restart_ms"], m["etcdrs"]["restart_ms"] / max(m["etcd"]["restart_ms"], 1)))
    print("| empty member, start to first write (ms) | %d | %d | %.2f× |" % (m["etcdrs"]["empty_start_ms"], m["etcd"]["empty_start_ms"], m["etcdrs"]["empty_start_ms"] / max(m["etcd"]["empty_start_ms"], 1)))
EOF
