#!/usr/bin/env bash
# Builds the Node package the way users install it (npm install in bindings/node runs
# cargo; here the dev profile, sharing cargo's target dir with the workspace), with its
# test dependencies (node-etcd 7, typescript, @types/node from npm), and runs its
# `node --test` suites: a member in-process, the in-process and HTTP clients, errors, a
# 3-member cluster in one process, node-etcd compatibility (node-etcd itself against real
# etcd 3.4, and etcdrs's Etcd against etcdrs), and the TypeScript declarations.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(scripts/target-dir.sh)
(cd bindings/node && ETCDRS_NODE_PROFILE=dev npm install --no-audit --no-fund --silent)
ETCDRS_BIN="$target/debug/etcdrs" node --test --test-concurrency=1 bindings/node/test/
