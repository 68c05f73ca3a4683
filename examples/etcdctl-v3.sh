#!/usr/bin/env bash
# The v3 API with etcd's own etcdctl, against a running member (default
# http://127.0.0.1:2379; host:port works too).
# Stops at the first command that fails.
set -euo pipefail
export ETCDCTL_API=3
E=${1:-http://127.0.0.1:2379}
run() { echo "\$ etcdctl $*"; etcdctl --endpoints "$E" "$@"; }
run put greeting "Hello v3"
run get greeting
run get greeting -w json
run put greeting "Hello again" --prev-kv
run get greeting --rev 0 --print-value-only
run txn <<'TXN'
value("greeting") = "Hello again"

put greeting "Hello txn"

get greeting

TXN
LEASE=$(etcdctl --endpoints "$E" lease grant 30 | awk '{print $2}')
run put session alive --lease "$LEASE"
run lease timetolive "$LEASE" --keys
run lease keep-alive --once "$LEASE"
run lease revoke "$LEASE"
run get session
run del greeting --prev-kv
REV=$(etcdctl --endpoints "$E" -w json get x | sed 's/.*"revision":\([0-9]*\).*/\1/')
run compaction "$REV"
run defrag
run endpoint hashkv -w table
SNAP=$(mktemp -d)/snapshot.db
run snapshot save "$SNAP"
run lock mylock echo "holding mylock"
# A candidate that wins at once prints its key and proposal, then holds on until stopped.
echo "\$ etcdctl elect myelection leader-1"
timeout 3 etcdctl --endpoints "$E" elect myelection leader-1 || [ $? = 124 ]
run member list -w table
run endpoint status -w table
run endpoint health
