//! The short fixed-seed robustness suite CI runs on every change: clusters of real members
//! under kill -9, SIGSTOP and partitions while clients write, read and swap, then every
//! checker (linearizability, no lost writes, monotonic indices, the watch guarantees,
//! convergence, recovery).
//! `scripts/robustness.sh` runs the long randomized campaign.

use etcdrs_tests::robustness::campaign::{run, Config, FaultKind};
use std::time::Duration;

fn assert_passes(seed: u64, cfg: Config) {
    let report = run(seed, &cfg);
    println!("{}", report.summary());
    let why: Vec<String> = report
        .verdicts
        .iter()
        .filter_map(|v| v.violation.as_ref().map(|w| format!("{}: {w}", v.check)))
        .collect();
    assert!(
        report.passed(),
        "{}\n{}\nfaults: {:?}\n{}",
        report.summary(),
        why.join("\n"),
        report.faults,
        report.history
    );
    // The run did something: faults, and operations that completed.
    assert!(!report.faults.is_empty(), "{}", report.summary());
    assert!(report.ok > 20, "{}", report.summary());
    assert!(report.watch_events > 20, "{}", report.summary());
    assert!(report.queued > 0, "{}", report.summary());
}

#[test]
fn three_members_under_kills_pauses_and_partitions_stay_linearizable() {
    assert_passes(
        7,
        Config {
            members: 3,
            clients: 4,
            keys: 2,
            duration: Duration::from_secs(8),
            faults: vec![
                FaultKind::KillLeader,
                FaultKind::KillFollower,
                FaultKind::PauseLeader,
                FaultKind::IsolateLeader,
                FaultKind::IsolateMinority,
            ],
            v3: true,
            mix: 0.3,
            snapshot_count: 20,
            election_timeout_ms: 500,
        },
    );
}

#[test]
fn five_members_losing_a_majority_or_bridged_stay_linearizable() {
    assert_passes(
        11,
        Config {
            members: 5,
            clients: 5,
            keys: 1,
            duration: Duration::from_secs(6),
            faults: vec![
                FaultKind::KillMajority,
                FaultKind::IsolateMajority,
                FaultKind::Bridge,
            ],
            v3: false,
            mix: 0.0,
            snapshot_count: 50,
            election_timeout_ms: 500,
        },
    );
}

#[test]
fn a_single_member_killed_paused_and_out_of_disk_keeps_every_acknowledged_write() {
    assert_passes(
        3,
        Config {
            members: 1,
            clients: 3,
            keys: 2,
            duration: Duration::from_secs(5),
            // A full disk where tmpfs can be mounted (the run says when it cannot).
            faults: vec![
                FaultKind::KillLeader,
                FaultKind::PauseLeader,
                FaultKind::FullDisk,
            ],
            v3: true,
            mix: 0.0,
            snapshot_count: 20,
            election_timeout_ms: 500,
        },
    );
}

#[test]
fn three_members_with_one_way_cuts_slow_and_flaky_links_and_a_member_replaced() {
    assert_passes(
        5,
        Config {
            members: 3,
            clients: 4,
            keys: 2,
            duration: Duration::from_secs(8),
            faults: vec![
                FaultKind::LeaderSendsNothing,
                FaultKind::SlowMember,
                FaultKind::FlakyMember,
                FaultKind::ReplaceMember,
            ],
            v3: true,
            mix: 0.3,
            snapshot_count: 20,
            election_timeout_ms: 500,
        },
    );
}
