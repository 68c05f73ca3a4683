//! Operating a member: backup and restore (`etcdrs backup` + `--force-new-cluster`,
//! `etcdctl snapshot save` + `etcdrs snapshot restore|status`) and the JSON log.

use base64::Engine as _;
use etcdrs_tests::cluster::Cluster;
use etcdrs_tests::{etcdctl3, etcdrs_bin, eventually, free_ports, get, http, post, Member};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn v3_put(url: &str, key: &str, value: &str) {
    let r = post(
        &format!("{url}/v3/kv/put"),
        &json!({"key": b64(key), "value": b64(value)}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Both key spaces as this member holds them: the v2 tree, every v3 key-value, the
/// v3 revision.
fn keyspaces(url: &str) -> (Value, Value, i64) {
    let v2 = get(&format!("{url}/v2/keys/?recursive=true&sorted=true")).json()["node"].clone();
    let v3 = post(
        &format!("{url}/v3/kv/range"),
        r#"{"key":"AA==","range_end":"AA==","serializable":true}"#,
    )
    .json();
    let revision = v3["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("a revision");
    (v2, v3["kvs"].clone(), revision)
}

fn members(url: &str) -> usize {
    get(&format!("{url}/v2/members")).json()["members"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Run `etcdrs` with these arguments (a subcommand): exit code, stdout, stderr.
fn etcdrs(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(etcdrs_bin())
        .args(args)
        .output()
        .expect("run etcdrs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn a_backup_taken_under_load_restores_every_acknowledged_write_as_a_cluster_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("member");
    let backup = dir.path().join("backup");
    // Snapshots (and log releases) happen during the copy.
    let mut m = Member::start(&data, &["--snapshot-count", "40"]);
    let cluster_before = get(&format!("{}/v2/members", m.url))
        .header("X-Etcd-Cluster-Id")
        .map(String::from);
    for i in 0..60 {
        http(
            "PUT",
            &format!("{}/v2/keys/before/{i:03}", m.url),
            &[("value", &format!("v{i}"))],
        );
        v3_put(&m.url, &format!("before/{i:03}"), &format!("v{i}"));
    }
    let before = keyspaces(&m.url);

    // One writer goes on through the backup: its acknowledged writes before the backup
    // began must all be in it, and what it holds of the rest is a prefix.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (url, stop, acked) = (m.url.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && acked.load(Ordering::Relaxed) < 20_000 {
                let n = acked.load(Ordering::Relaxed);
                let r = etcdrs_tests::try_http(
                    "PUT",
                    &format!("{url}/v2/keys/during/{n:05}"),
                    &[("value", "x")],
                );
                if r.is_ok_and(|r| r.status == 201) {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    assert!(
        eventually(Duration::from_secs(10), || (acked.load(Ordering::Relaxed)
            > 50)
            .then_some(()))
        .is_some()
    );
    let acked_before = acked.load(Ordering::Relaxed);
    let (code, out, err) = etcdrs(&[
        "backup",
        "--data-dir",
        path(&data),
        "--backup-dir",
        path(&backup),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("--force-new-cluster"), "{out}");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let acked_all = acked.load(Ordering::Relaxed);

    // A second backup into the same place is refused.
    let (code, _, err) = etcdrs(&[
        "backup",
        "--data-dir",
        path(&data),
        "--backup-dir",
        path(&backup),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("exists"), "{err}");

    // The member and its data are gone; the backup serves as a cluster of one.
    m.kill9();
    std::fs::remove_dir_all(&data).unwrap();
    let restored = Member::start(&backup, &["--force-new-cluster"]);
    let after = keyspaces(&restored.url);
    let before_keys = |tree: &Value| {
        tree["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["key"] == "/before")
            .cloned()
    };
    assert_eq!(before_keys(&after.0), before_keys(&before.0));
    assert_eq!(
        (&after.1, after.2),
        (&before.1, before.2),
        "the v3 keyspace"
    );
    let during = get(&format!("{}/v2/keys/during?sorted=true", restored.url)).json();
    let held: Vec<usize> = during["node"]["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| n["key"].as_str().unwrap()[8..].parse().unwrap())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        held,
        (0..held.len()).collect::<Vec<_>>(),
        "a prefix of the writer's writes"
    );
    assert!(
        (acked_before..=acked_all).contains(&held.len()),
        "{} writes held; {acked_before} acknowledged before the backup, {acked_all} in all",
        held.len()
    );
    eprintln!(
        "held {} of {acked_all}; {acked_before} before the backup",
        held.len()
    );
    assert_eq!(members(&restored.url), 1);
    let cluster_after = get(&format!("{}/v2/members", restored.url))
        .header("X-Etcd-Cluster-Id")
        .map(String::from);
    assert!(cluster_after.is_some() && cluster_after != cluster_before);
    // It takes writes, and stays a cluster of one without the flag.
    v3_put(&restored.url, "after", "restore");
    let mut restored = restored;
    assert_eq!(restored.terminate(), Some(0));
    let again = Member::start(&backup, &[]);
    assert_eq!(members(&again.url), 1);
    v3_put(&again.url, "after", "restart");
    assert_eq!(keyspaces(&again.url).2, before.2 + 2);
}

#[test]
fn a_cluster_restores_from_a_backup_into_one_member_and_from_a_snapshot_into_three() {
    let out = tempfile::tempdir().unwrap();
    let c = Cluster::start(3, &[]);
    let url = c.url(0);
    for i in 0..30 {
        http(
            "PUT",
            &format!("{url}/v2/keys/dir/k{i}"),
            &[("value", &format!("v{i}"))],
        );
        v3_put(&url, &format!("k{i:02}"), &format!("v{i}"));
    }
    v3_put(&url, "k00", "overwritten");
    let r = post(
        &format!("{url}/v3/kv/deleterange"),
        &json!({"key": b64("k01")}).to_string(),
    );
    assert_eq!(r.status, 200);
    assert!(c.converged(Duration::from_secs(20)), "{}", c.logs());
    let before = keyspaces(&url);

    // etcdctl's snapshot, and what `snapshot status` says of it.
    let snap = out.path().join("snapshot.db");
    let saved = etcdctl3(&url, &["snapshot", "save", path(&snap)], "");
    assert_eq!(saved.code, Some(0), "{saved:?}");
    let (code, status, err) = etcdrs(&["snapshot", "status", path(&snap), "-w", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let status: Value = serde_json::from_str(status.trim()).unwrap();
    assert_eq!(status["revision"], before.2);
    assert_eq!(status["totalSize"], std::fs::metadata(&snap).unwrap().len());
    let (_, table, _) = etcdrs(&["snapshot", "status", path(&snap), "-w", "table"]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 5, "{table}");
    assert!(
        rows[1].contains("HASH") && rows[1].ends_with("| REVISION | TOTAL KEYS | TOTAL SIZE |"),
        "{table}"
    );
    assert!(rows[3].contains(&format!(" {} |", before.2)), "{table}");

    // A follower's data dir, backed up while the cluster runs.
    let leader = c.wait_leader(Duration::from_secs(10));
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let backup = out.path().join("backup");
    let follower_data = c.dir.path().join(format!("m{follower}"));
    let (code, msg, err) = etcdrs(&[
        "backup",
        "--data-dir",
        path(&follower_data),
        "--backup-dir",
        path(&backup),
    ]);
    assert_eq!(code, Some(0), "{msg}{err}");
    drop(c);

    // The backup, as a cluster of one.
    let one = Member::start(&backup, &["--force-new-cluster"]);
    assert_eq!(keyspaces(&one.url), before);
    assert_eq!(members(&one.url), 1);
    drop(one);

    // The snapshot, as a new cluster of three.
    let ports = free_ports(3);
    let peer = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    let initial = (0..3)
        .map(|i| format!("r{i}={}", peer(i)))
        .collect::<Vec<_>>()
        .join(",");
    let data = |i: usize| out.path().join(format!("r{i}"));
    let restore = |i: usize| {
        etcdrs(&[
            "snapshot",
            "restore",
            path(&snap),
            "--name",
            &format!("r{i}"),
            "--data-dir",
            path(&data(i)),
            "--initial-cluster",
            &initial,
            "--initial-cluster-token",
            "restored",
            "--initial-advertise-peer-urls",
            &peer(i),
        ])
    };
    for i in 0..3 {
        let (code, msg, err) = restore(i);
        assert_eq!(code, Some(0), "{msg}{err}");
        assert!(msg.contains(&format!("revision {}", before.2)), "{msg}");
    }
    // Restoring over a data dir is refused, and so is a damaged file (nothing is written).
    let (code, _, err) = restore(0);
    assert_eq!((code, err.contains("exists")), (Some(1), true), "{err}");
    let damaged = out.path().join("damaged.db");
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    let (code, _, err) = etcdrs(&[
        "snapshot",
        "restore",
        path(&damaged),
        "--name",
        "x",
        "--data-dir",
        path(&out.path().join("x")),
        "--initial-cluster",
        "x=http://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("does not match its SHA-256") && err.contains("damaged.db"),
        "{err}"
    );
    assert!(!out.path().join("x").exists());

    let members3: Vec<Member> = (0..3)
        .map(|i| {
            let args: Vec<String> = [
                "--name",
                &format!("r{i}"),
                "--data-dir",
                path(&data(i)),
                "--listen-client-urls",
                "http://127.0.0.1:0",
                "--listen-peer-urls",
                &peer(i),
                "--initial-advertise-peer-urls",
                &peer(i),
                "--initial-cluster",
                &initial,
                "--initial-cluster-token",
                "restored",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            Member::spawn(&data(i), args).unwrap_or_else(|log| panic!("r{i}:\n{log}"))
        })
        .collect();
    for m in &members3 {
        let got = eventually(Duration::from_secs(20), || {
            let r = etcdrs_tests::try_http("GET", &format!("{}/v2/keys/", m.url), &[]).ok()?;
            (r.status == 200).then(|| keyspaces(&m.url))
        })
        .expect("serves");
        assert_eq!(
            (&got.1, got.2),
            (&before.1, before.2),
            "the v3 keyspace on {}",
            m.url
        );
        assert_eq!(
            got.0["nodes"],
            Value::Null,
            "the v2 keyspace starts empty, as etcd's"
        );
        assert_eq!(members(&m.url), 3);
    }
    v3_put(&members3[1].url, "new", "cluster");
    for m in &members3 {
        let rev = eventually(Duration::from_secs(10), || {
            let r = keyspaces(&m.url).2;
            (r == before.2 + 1).then_some(r)
        });
        assert_eq!(rev, Some(before.2 + 1), "{}", m.log());
    }
}

#[test]
fn json_logs_carry_zaps_fields_and_the_level_flag_filters() {
    let dir = tempfile::tempdir().unwrap();
    let run = |level: &str, data: &str| {
        let mut child = Command::new(etcdrs_bin())
            .args([
                "--data-dir",
                path(&dir.path().join(data)),
                "--listen-client-urls",
                "http://127.0.0.1:0",
                "--listen-peer-urls",
                "http://127.0.0.1:0",
                "--log-format",
                "json",
                "--log-level",
                level,
            ])
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The member runs for a moment, then is stopped (SIGTERM logs at info).
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut lines = Vec::new();
        while Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(50)) {
                lines.push(l);
            }
        }
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
        lines.extend(rx.try_iter());
        lines
    };
    let lines = run("info", "a");
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    for v in &parsed {
        for field in ["level", "ts", "caller", "msg"] {
            assert!(v[field].is_string(), "{field} in {v}");
        }
    }
    let started = parsed
        .iter()
        .find(|v| v["msg"] == "member started")
        .expect("a start line");
    assert!(
        started["client_urls"][0]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{started}"
    );
    assert!(started["snapshot_count"].is_u64(), "{started}");
    let leader = parsed
        .iter()
        .find(|v| v["msg"] == "became the leader")
        .expect("a leader line");
    assert!(leader["term"].as_u64().unwrap() >= 1);
    assert!(parsed.iter().any(|v| v["level"] == "info"));

    let quiet = run("warn", "b");
    assert!(
        quiet.iter().all(|l| !l.contains(r#""level":"info""#)),
        "{quiet:?}"
    );
    let (code, _, err) = etcdrs(&["--log-level", "loud"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--log-level"), "{err}");
}

/// examples/operating.sh (the README's "Operating" commands) runs through against a member.
#[test]
fn the_operating_walkthrough_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("member");
    let m = Member::start(&data, &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/operating.sh");
    let bin_dir = etcdrs_bin().parent().unwrap().to_path_buf();
    let path_var = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(script)
        .args([&m.url, path(&data), path(&dir.path().join("ops"))])
        .env("PATH", path_var)
        .output()
        .expect("bash");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for expected in [
        "etcd_server_has_leader 1",
        "<title>etcdrs dashboard</title>",
        "backed up",
        "Snapshot saved at",
        "| REVISION | TOTAL KEYS | TOTAL SIZE |",
        "restored snapshot",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
}
