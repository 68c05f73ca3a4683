#!/usr/bin/env bash
# Node clients side by side, in one run: etcdrs's in-process client (a member inside the
# Node process; its Promise API and node-etcd's API over it) against node-etcd 7 over HTTP
# to real etcd 3.4, and, to tell client from server, node-etcd and etcdrs's Client over
# HTTP to an etcdrs member process.
#
#   scripts/bench/node.sh        (release builds; needs etcd and npm; OPS=5000 per operation)
# A measurement, not a test: numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=$(scripts/target-dir.sh)
WORK=$(mktemp -d)
trap '{ pkill -9 -P $$; wait; } 2>/dev/null || true; rm -rf "$WORK"' EXIT
(cd bindings/node && ETCDRS_NODE_PROFILE=release npm install --no-audit --no-fund --silent)
cargo build -q --release --bin etcdrs

. scripts/bench/serve.sh

serve etcd etcd 43790
serve etcdrs "$TARGET/release/etcdrs" 43890
JS="node scripts/bench/node_ops.js"
{
    $JS etcdrs-in-process
    $JS node-etcd-to-etcd 127.0.0.1:43790
    $JS etcd-api-in-process
    $JS node-etcd-to-etcdrs 127.0.0.1:43890
    $JS etcdrs-http-to-etcdrs 127.0.0.1:43890
} | node -e '
const rows = require("fs").readFileSync(0, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const base = rows[1];
console.log(`| client | set ops/s | set p50 / p99 µs | get ops/s | get p50 / p99 µs | set, get vs ${base.client} |`);
console.log("|---|---|---|---|---|---|");
for (const r of rows) {
  const s = r.set, g = r.get;
  console.log(`| ${r.client} | ${s.ops_per_s} | ${s.p50_us} / ${s.p99_us} | ${g.ops_per_s} | ${g.p50_us} / ${g.p99_us} | ` +
    `${(s.ops_per_s / base.set.ops_per_s).toFixed(1)}×, ${(g.ops_per_s / base.get.ops_per_s).toFixed(1)}× |`);
}'
