//! Robustness: faults injected on purpose into clusters of real members, histories of what
//! clients saw, and checkers (linearizability, lost writes, monotonic indices, convergence,
//! recovery). `scripts/robustness.sh` runs a randomized campaign; tests/tests/robustness.rs
//! a short fixed-seed one in CI.

pub mod campaign;
pub mod linearizability;
