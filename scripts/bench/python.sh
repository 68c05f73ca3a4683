#!/usr/bin/env bash
# Python clients side by side, in one run: etcdrs's in-process client (a member inside the
# Python process) against python-etcd over HTTP to real etcd 3.4, and, to tell client from
# server, python-etcd and etcdrs.Client over HTTP to an etcdrs member process. Then v3:
# etcdrs.v3 in-process against python-etcd3 over gRPC to etcd 3.4, and both over gRPC to
# an etcdrs member.
#
#   scripts/bench/python.sh        (release builds; needs etcd; OPS=5000 per operation)
# A measurement, not a test: numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=$(scripts/target-dir.sh)
VENV=$TARGET/bench-venv
WORK=$(mktemp -d)
trap '{ pkill -9 -P $$; wait; } 2>/dev/null || true; rm -rf "$WORK"' EXIT
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q ./bindings/python python-etcd==0.4.5 etcd3==0.12.0 tenacity==6.3.1
# python-etcd3's generated protobuf modules need the pure-Python protobuf runtime.
export PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python
cargo build -q --release --bin etcdrs

. scripts/bench/serve.sh

serve etcd etcd 43790
serve etcdrs "$TARGET/release/etcdrs" 43890
PY="$VENV/bin/python scripts/bench/python_ops.py"
table() { # rows on stdin, the second row is the base
    "$VENV/bin/python" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
base = {op: rows[1][op]["ops_per_s"] for op in ("set", "get")}
print("| client | %s ops/s | p50/p99 µs | get ops/s | get p50/p99 µs | %s, get vs %s |" % (
    sys.argv[1], sys.argv[1], rows[1]["client"]))
print("|---|---|---|---|---|---|")
for r in rows:
    s, g = r["set"], r["get"]
    print("| %s | %d | %d / %d | %d | %d / %d | %.1f×, %.1f× |" % (r["client"], s["ops_per_s"], s["p50_us"], s["p99_us"],
          g["ops_per_s"], g["p50_us"], g["p99_us"], s["ops_per_s"] / base["set"], g["ops_per_s"] / base["get"]))
' "$1"
}
{
    $PY etcdrs-in-process
    $PY python-etcd-to-etcd 127.0.0.1:43790
    $PY python-etcd-to-etcdrs 127.0.0.1:43890
    $PY etcdrs-http-to-etcdrs 127.0.0.1:43890
} | table set
echo
{
    $PY etcdrs-v3-in-process
    $PY python-etcd3-to-etcd 127.0.0.1:43790
    $PY python-etcd3-to-etcdrs 127.0.0.1:43890
    $PY etcdrs-v3-grpc-to-etcdrs 127.0.0.1:43890
} | table put
