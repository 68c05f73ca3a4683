//! The v3 API in clusters of real member processes, driven by etcdctl: writes through a
//! follower, a leader killed under v3 writes (no acknowledged write lost, no revision going
//! back), and members that catch up from a snapshot carrying the v3 store.

use etcdrs_tests::cluster::Cluster;
use etcdrs_tests::{etcdctl3, eventually, http};
use serde_json::Value;
use std::time::Duration;

/// etcdctl -w json, parsed; None when it fails.
fn v3_json(url: &str, args: &[&str]) -> Option<Value> {
    let mut all = vec!["-w", "json"];
    all.extend_from_slice(args);
    let ran = etcdctl3(url, &all, "");
    (ran.code == Some(0))
        .then(|| serde_json::from_str(&ran.stdout).ok())
        .flatten()
}

/// A key as a member holds it: key, value, create and mod revision, version.
type Held = (String, String, i64, i64, i64);

/// Every key with its value and revisions as member `url` holds it locally (serializable),
/// and the member's revision.
fn local_state(url: &str) -> Option<(Vec<Held>, i64)> {
    let v = v3_json(url, &["get", "", "--from-key", "--consistency", "s"])?;
    // etcdctl prints keys and values in base64.
    let text = |x: &Value| {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(x.as_str().unwrap_or_default())
            .unwrap_or_default();
        String::from_utf8_lossy(&raw).into_owned()
    };
    let kvs = v["kvs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|kv| {
                    (
                        text(&kv["key"]),
                        text(&kv["value"]),
                        kv["create_revision"].as_i64().unwrap_or(0),
                        kv["mod_revision"].as_i64().unwrap_or(0),
                        kv["version"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Some((kvs, v["header"]["revision"].as_i64()?))
}

/// Wait (bounded) until every running member serves the same v3 store; returns it.
fn v3_converged(c: &Cluster) -> Vec<Held> {
    let mut last = Vec::new();
    let same = eventually(Duration::from_secs(30), || {
        let all: Vec<_> = c.live().iter().map(|i| local_state(&c.url(*i))).collect();
        last = all.clone();
        (all.iter().all(Option::is_some) && all.windows(2).all(|w| w[0] == w[1]))
            .then(|| all[0].clone().unwrap().0)
    });
    same.unwrap_or_else(|| panic!("v3 stores differ: {last:?}\n{}", c.logs()))
}

#[test]
fn v3_writes_through_a_follower_survive_killing_the_leader() {
    let mut c = Cluster::start(3, &["--snapshot-count", "30"]);
    let l = c.wait_leader(Duration::from_secs(10));
    let f = (l + 1) % 3;
    let mut acked = Vec::new();
    let mut revisions = Vec::new();
    for i in 0..15 {
        let v = v3_json(&c.url(f), &["put", &format!("k{i}"), &format!("v{i}")])
            .expect("a put through a follower");
        revisions.push(v["header"]["revision"].as_i64().unwrap());
        acked.push(i);
    }
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    // Linearizable reads on every member see the last write.
    for i in 0..3 {
        let v = v3_json(&c.url(i), &["get", "k14"]).expect("get");
        assert_eq!(
            v["kvs"][0]["mod_revision"].as_i64(),
            revisions.last().copied()
        );
    }
    c.kill9(l);
    let l2 = c.wait_leader(Duration::from_secs(20));
    assert_ne!(l2, l);
    // Writes go on through the survivors (a put may fail while the election runs).
    for i in 15..30 {
        let w = c.live()[i % 2];
        if let Some(v) = v3_json(&c.url(w), &["put", &format!("k{i}"), &format!("v{i}")]) {
            let rev = v["header"]["revision"].as_i64().unwrap();
            assert!(
                rev > *revisions.last().unwrap(),
                "revision went back: {rev}"
            );
            revisions.push(rev);
            acked.push(i);
        }
    }
    assert!(acked.len() >= 25, "too few writes went through: {acked:?}");
    c.restart(l);
    let kvs = v3_converged(&c);
    for i in &acked {
        let k = format!("k{i}");
        assert!(
            kvs.iter().any(|kv| kv.0 == k && kv.1 == format!("v{i}")),
            "acknowledged {k} lost: {kvs:?}"
        );
    }
    // Revisions: one per write, in order, the same everywhere.
    let max = kvs.iter().map(|kv| kv.3).max().unwrap();
    assert_eq!(max, *revisions.last().unwrap());
    // And every member's store hashes alike (etcd's HashKV consistency check).
    let hashes: Vec<Value> = c
        .live()
        .iter()
        .map(|i| {
            let v = v3_json(&c.url(*i), &["endpoint", "hashkv"]).expect("hashkv");
            v[0]["HashKV"]["hash"].clone()
        })
        .collect();
    assert!(hashes[0].is_u64(), "{hashes:?}");
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
}

#[test]
fn a_member_added_later_gets_the_v3_store_with_its_snapshot() {
    let mut c = Cluster::start(3, &["--snapshot-count", "20"]);
    let l = c.wait_leader(Duration::from_secs(10));
    for i in 0..5 {
        v3_json(&c.url(l), &["put", &format!("early{i}"), "x"]).expect("put");
    }
    v3_json(&c.url(l), &["del", "early0"]).expect("del");
    // Enough log after them that a new member cannot catch up from the log alone.
    for n in 0..120 {
        let w = http(
            "PUT",
            &format!("{}/v2/keys/fill/{n}", c.url(l)),
            &[("value", "v")],
        );
        assert_eq!(w.status, 201, "{}", w.body);
    }
    let j = c.add_member(l);
    let kvs = v3_converged(&c);
    assert_eq!(kvs.len(), 4, "{kvs:?}");
    let log = c.members[j].as_ref().unwrap().log();
    assert!(
        log.contains("received a snapshot"),
        "caught up without a snapshot:\n{log}"
    );
    // It serves v3 writes too, and a restart keeps what it got.
    v3_json(&c.url(j), &["put", "late", "y"]).expect("put through the new member");
    c.restart(j);
    let kvs = v3_converged(&c);
    assert!(kvs.iter().any(|kv| kv.0 == "late"), "{kvs:?}");
}

#[test]
fn a_lease_outlives_a_leader_change_and_expires_once_nobody_keeps_it() {
    let mut c = Cluster::start(3, &[]);
    let l = c.wait_leader(Duration::from_secs(10));
    let f = (l + 1) % 3;
    // Granted and kept alive through a follower (which asks the leader).
    let granted = v3_json(&c.url(f), &["lease", "grant", "4"]).expect("grant");
    let id = granted["ID"].as_i64().unwrap();
    let hex = format!("{id:x}");
    v3_json(&c.url(f), &["put", "held", "v", "--lease", &hex]).expect("put with the lease");
    let kept = etcdctl3(&c.url(f), &["lease", "keep-alive", "--once", &hex], "");
    assert!(kept.stdout.contains("keepalived with TTL(4)"), "{kept:?}");
    c.kill9(l);
    let l2 = c.wait_leader(Duration::from_secs(20));
    // The new leader extends every lease before it expires any: still there.
    let ttl = v3_json(&c.url(l2), &["lease", "timetolive", &hex]).expect("timetolive");
    assert!(ttl["ttl"].as_i64().unwrap() > 0, "{ttl}");
    for i in c.live() {
        let v = v3_json(&c.url(i), &["get", "held"]).expect("get");
        assert_eq!(v["count"].as_i64(), Some(1), "m{i}: {v}");
    }
    // Nobody keeps it alive: it expires (TTL + election timeout + checks), on every member.
    let gone = eventually(Duration::from_secs(15), || {
        c.live()
            .iter()
            .all(|i| {
                v3_json(&c.url(*i), &["get", "held", "--consistency", "s"])
                    .is_some_and(|v| v.get("kvs").is_none())
            })
            .then_some(())
    });
    assert!(gone.is_some(), "the lease never expired:\n{}", c.logs());
    let ttl = v3_json(&c.url(l2), &["lease", "timetolive", &hex]).expect("timetolive");
    assert_eq!(ttl["ttl"].as_i64(), Some(-1), "{ttl}");
}

/// A watcher that moves to another member resumes from its last revision + 1 and sees
/// every later change once, in order, whatever member it started on; compaction behind it
/// does not disturb it.
#[test]
fn a_watch_resumed_on_another_member_sees_no_gap_and_no_duplicate() {
    let c = Cluster::start(3, &[]);
    let l = c.wait_leader(Duration::from_secs(10));
    let (a, b) = ((l + 1) % 3, (l + 2) % 3);
    let mut revisions = Vec::new();
    for i in 0..10 {
        let v = v3_json(&c.url(l), &["put", "w", &i.to_string()]).expect("put");
        revisions.push(v["header"]["revision"].as_i64().unwrap());
    }
    // Watched on one follower from the first write: every write, once, in order.
    let first = watch_revisions(&c.url(a), revisions[0], 10);
    assert_eq!(first, revisions, "member {a}");
    // Compaction up to the resume point, then resume on the other follower.
    let compacted = etcdctl3(&c.url(l), &["compaction", &revisions[4].to_string()], "");
    assert_eq!(compacted.code, Some(0), "{compacted:?}");
    let rest = watch_revisions(&c.url(b), revisions[4] + 1, 5);
    assert_eq!(rest, revisions[5..], "member {b}");
}

/// The mod revisions of the first `n` events of `etcdctl watch w --rev from` (bounded).
fn watch_revisions(url: &str, from: i64, n: usize) -> Vec<i64> {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", url, "-w", "json", "watch", "w", "--rev"])
        .arg(from.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("etcdctl");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < n && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            for e in v["Events"].as_array().into_iter().flatten() {
                seen.push(e["kv"]["mod_revision"].as_i64().unwrap_or(0));
            }
        }
    }
    // Anything more would be a duplicate.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        for e in v["Events"].as_array().into_iter().flatten() {
            seen.push(e["kv"]["mod_revision"].as_i64().unwrap_or(0));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

/// etcdctl member list / add / remove over the v3 Cluster service: the same membership as
/// /v2/members.
#[test]
fn etcdctl_member_add_and_remove_change_the_membership() {
    let mut c = Cluster::start(3, &[]);
    let l = c.wait_leader(Duration::from_secs(10));
    let gone = (l + 1) % 3;
    let ids = |url: &str| -> Vec<u64> {
        let v = v3_json(url, &["member", "list"]).expect("member list");
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["ID"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&c.url(l)).len(), 3);
    let gone_id = u64::from_str_radix(&c.ids[gone], 16).unwrap();
    c.kill9(gone);
    let removed = etcdctl3(&c.url(l), &["member", "remove", &c.ids[gone]], "");
    assert_eq!(removed.code, Some(0), "{removed:?}");
    assert!(
        removed.stdout.contains("removed from cluster"),
        "{removed:?}"
    );
    assert!(!ids(&c.url(l)).contains(&gone_id));
    let added = etcdctl3(
        &c.url(l),
        &[
            "member",
            "add",
            "newcomer",
            "--peer-urls",
            "http://127.0.0.1:1",
        ],
        "",
    );
    assert_eq!(added.code, Some(0), "{added:?}");
    assert!(
        added
            .stdout
            .contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""),
        "{added:?}"
    );
    let now = v3_json(&c.url(l), &["member", "list"]).expect("member list");
    let newcomer = now["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["peerURLs"][0] == "http://127.0.0.1:1")
        .cloned()
        .unwrap_or_else(|| panic!("{now}"));
    // Not started: no name, no client URLs yet, as etcd lists it.
    assert!(newcomer.get("name").is_none(), "{newcomer}");
    let again = etcdctl3(
        &c.url(l),
        &[
            "member",
            "add",
            "twice",
            "--peer-urls",
            "http://127.0.0.1:1",
        ],
        "",
    );
    assert!(
        again.stderr.contains("Peer URLs already exists"),
        "{again:?}"
    );
    let newcomer_hex = format!("{:x}", newcomer["ID"].as_u64().unwrap());
    let removed = etcdctl3(&c.url(l), &["member", "remove", &newcomer_hex], "");
    assert_eq!(removed.code, Some(0), "{removed:?}");
    let unknown = etcdctl3(&c.url(l), &["member", "remove", "1234"], "");
    assert!(unknown.stderr.contains("member not found"), "{unknown:?}");
}
