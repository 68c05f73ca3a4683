#!/usr/bin/env bash
# A randomized robustness campaign (not run in CI; CI runs tests/tests/robustness.rs):
#   scripts/robustness.sh [RUNS] [FIRST_SEED] [SECONDS]     (default 10 runs from seed 1, 10 s)
# Each run: a random cluster size (1, 3 or 5 members), fault mix (kill -9 of a follower, the
# leader or a majority; SIGSTOP of the leader; isolating the leader, a minority or a
# majority), workload and --snapshot-count; then linearizability, lost writes, monotonic
# indices, convergence and recovery are checked. A failed run keeps its history and logs in
# robustness-failures/seed-<seed>.txt; `scripts/robustness.sh 1 <seed>` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --bin etcdrs --bin robustness
target=$(scripts/target-dir.sh)
ETCDRS_BIN="$target/debug/etcdrs" exec "$target/debug/robustness" "$@"
