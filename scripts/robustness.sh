#!/usr/bin/env bash
# A randomized robustness campaign (CI runs the fixed-seed suite, tests/tests/robustness.rs):
#   scripts/robustness.sh [RUNS] [FIRST_SEED] [SECONDS]     (default 10 runs from seed 1, 10 s)
# Each run: a random cluster size (1, 3 or 5 member processes, each peer link behind a
# proxy), a random mix of faults (`robustness --faults` lists them; ROBUSTNESS_FAULTS=a,b
# limits them), sometimes two at once, a random --snapshot-count (20, 50 or 200), and
# clients reading, writing and swapping v2 (and in half the runs v3) keys and filling a v2
# queue, with a watcher recording every change; then every checker: linearizability per
# key, no lost acknowledged write, indices and revisions never going back, the queue, the
# watch guarantees, convergence of both key spaces, recovery. A failed run keeps its
# history and the members' logs in robustness-failures/seed-<seed>.txt; `scripts/robustness.sh
# 1 <seed> <seconds>` replays it. The full-disk fault needs to mount a tmpfs (root).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --bin etcdrs --bin robustness
target=$(scripts/target-dir.sh)
ETCDRS_BIN="$target/debug/etcdrs" exec "$target/debug/robustness" "$@"
