//! v3 behaviour of one member that has no counterpart to compare with in a fresh etcd
//! run: auto-compaction and the space quota (NOSPACE alarm), through etcdctl.

use etcdrs_tests::{etcdctl3, eventually, Member};
use std::time::Duration;

/// --auto-compaction-mode periodic with a short retention: history older than it goes,
/// by itself, as a compaction through raft.
#[test]
fn periodic_auto_compaction_compacts_behind_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(
        dir.path(),
        &[
            "--auto-compaction-mode",
            "periodic",
            "--auto-compaction-retention",
            "1s",
        ],
    );
    for v in ["1", "2", "3"] {
        assert_eq!(etcdctl3(&ours.url, &["put", "a", v], "").code, Some(0));
    }
    let compacted = eventually(Duration::from_secs(15), || {
        let ran = etcdctl3(&ours.url, &["get", "a", "--rev", "2"], "");
        ran.stderr
            .contains("required revision has been compacted")
            .then_some(ran)
    });
    assert!(
        compacted.is_some(),
        "nothing was compacted:\n{}",
        ours.log()
    );
    // The newest value is still there.
    let now = etcdctl3(&ours.url, &["get", "a", "--print-value-only"], "");
    assert_eq!(now.stdout.trim(), "3");
    let bad = Member::spawn(
        &dir.path().join("other"),
        vec!["--auto-compaction-retention".into(), "soon".into()],
    );
    assert!(bad.is_err(), "a retention that is not one is refused");
}

/// Past --quota-backend-bytes: the NOSPACE alarm goes up, writes are refused with etcd's
/// error while reads and deletes go on; compaction, defragment and alarm disarm bring
/// writes back.
#[test]
fn past_the_quota_writes_stop_until_space_is_freed_and_the_alarm_disarmed() {
    let dir = tempfile::tempdir().unwrap();
    let m = Member::start(dir.path(), &["--quota-backend-bytes", "400000"]);
    let value = "x".repeat(20_000);
    let mut refused = None;
    for i in 0..100 {
        let ran = etcdctl3(&m.url, &["put", &format!("k{i}"), &value], "");
        if ran.code != Some(0) {
            refused = Some(ran);
            break;
        }
    }
    let refused = refused.expect("a put past the quota is refused");
    assert!(
        refused
            .stderr
            .contains("code = ResourceExhausted desc = etcdserver: mvcc: database space exceeded"),
        "{refused:?}"
    );
    let alarms = etcdctl3(&m.url, &["alarm", "list"], "");
    assert!(alarms.stdout.contains("alarm:NOSPACE"), "{alarms:?}");
    let status = etcdctl3(&m.url, &["endpoint", "status"], "");
    assert!(status.stdout.contains("alarm:NOSPACE"), "{status:?}");
    // Reads and deletes go on; a put is refused even though the space is there again.
    assert_eq!(
        etcdctl3(&m.url, &["get", "k0", "--print-value-only"], "")
            .stdout
            .len(),
        20_001
    );
    assert_eq!(
        etcdctl3(&m.url, &["del", "k", "--prefix"], "").code,
        Some(0)
    );
    let capped = etcdctl3(&m.url, &["put", "small", "x"], "");
    assert!(
        capped.stderr.contains("database space exceeded"),
        "{capped:?}"
    );
    let txn = etcdctl3(&m.url, &["txn"], "\nput t 1\n\n\n");
    assert!(txn.stderr.contains("database space exceeded"), "{txn:?}");
    // Free the space, disarm: writes come back.
    let json = etcdctl3(&m.url, &["-w", "json", "get", "k0"], "");
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let rev = v["header"]["revision"].as_i64().unwrap().to_string();
    assert_eq!(etcdctl3(&m.url, &["compaction", &rev], "").code, Some(0));
    assert_eq!(etcdctl3(&m.url, &["defrag"], "").code, Some(0));
    let disarmed = etcdctl3(&m.url, &["alarm", "disarm"], "");
    assert!(disarmed.stdout.contains("alarm:NOSPACE"), "{disarmed:?}");
    assert_eq!(etcdctl3(&m.url, &["alarm", "list"], "").stdout, "");
    assert_eq!(etcdctl3(&m.url, &["put", "small", "x"], "").code, Some(0));
}
