#!/usr/bin/env bash
# The README's "Operating" commands against a running member: its client URL (default
# http://127.0.0.1:2379) and its data dir (default default.etcd); what they write goes
# into a new directory (default ./ops). Needs etcdrs on PATH (cargo install --path
# server), curl and etcdctl. Stops at the first command that fails.
set -euo pipefail
E=${1:-http://127.0.0.1:2379}
D=${2:-default.etcd}
W=${3:-ops}
mkdir -p "$W"
run() { echo "\$ $*"; "$@"; }
run curl -s "$E/metrics" -o "$W/metrics.txt"
grep -E '^etcd_server_(has_leader|is_leader|proposals_committed_total) ' "$W/metrics.txt"
run curl -s "$E/mod/dashboard" -o "$W/dashboard.html"
grep -o '<title>[^<]*</title>' "$W/dashboard.html"
run etcdrs backup --data-dir "$D" --backup-dir "$W/backup.etcd"
run env ETCDCTL_API=3 etcdctl --endpoints "$E" snapshot save "$W/snapshot.db"
run etcdrs snapshot status "$W/snapshot.db" -w table
run etcdrs snapshot restore "$W/snapshot.db" --name m0 --data-dir "$W/m0.etcd" \
  --initial-cluster m0=http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380
