//! The v3 API against real etcd 3.4: the same etcdctl (ETCDCTL_API=3) commands to a fresh
//! etcd and a fresh etcdrs, outputs compared after leaving out what names the member (ids,
//! raft term). Both stores start empty at revision 1, so revisions compare exactly.

use etcdrs_tests::{etcdctl3, Etcd, Member, Ran};
use serde_json::Value;

/// Drop the fields that name the cluster, the member and the raft term.
fn normalize(text: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(text) else {
        return text.to_string();
    };
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in ["cluster_id", "member_id", "raft_term"] {
                    m.remove(k);
                }
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v.to_string()
}

/// One step: etcdctl arguments and what goes to its stdin.
struct Step(&'static [&'static str], &'static str);

fn run(endpoint: &str, args: &[&str], stdin: &str) -> Ran {
    let mut ran = etcdctl3(endpoint, args, stdin);
    ran.stdout = normalize(&ran.stdout).replace(endpoint, "{endpoint}");
    ran.stderr = client_log(&ran.stderr).replace(endpoint, "{endpoint}");
    ran
}

/// etcdctl's stderr without times and connection names: its log lines reduced to the gRPC
/// error they report (code and message), other lines as they are.
fn client_log(stderr: &str) -> String {
    stderr
        .lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(v) => v["error"].as_str().unwrap_or_default().to_string(),
            Err(_) => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const TXN_CAS: &str = "mod(\"foo\") > \"0\"\nvalue(\"foo\") = \"baz\"\n\nput foo txn1\nget foo\nget a --prefix\n\nput bar fail\n\n";
const TXN_FAILS: &str =
    "version(\"foo\") = \"99\"\n\nput foo never\n\nget foo\ndel zz\nput failed yes\n\n";
const TXN_NO_KEY: &str = "create(\"missing\") = \"0\"\n\nput created 1\n\n\n";
const TXN_VALUE_MISSING: &str = "value(\"missing\") = \"\"\n\nput never 1\n\nget missing\n\n";
const TXN_DUPLICATE: &str = "\nput dup 1\nput dup 2\n\n\n";
const TXN_PUT_IN_DELETE: &str = "\ndel d0 d9\nput d5 x\n\n\n";
const TXN_BAD_LEASE: &str = "\nput leased 1 --lease=1234\n\n\n";

/// The etcdctl commands of the v3 KV API, each flag of get, and the errors etcd gives.
const STEPS: &[Step] = &[
    Step(&["put", "foo", "bar"], ""),
    Step(&["-w", "json", "put", "foo", "baz", "--prev-kv"], ""),
    Step(&["put", "foo", "baz", "--prev-kv"], ""),
    Step(&["put", "a", "1"], ""),
    Step(&["put", "b", "22"], ""),
    Step(&["put", "c", "333"], ""),
    Step(&["put", "a", "0"], ""),
    Step(&["put", "d", "4444"], ""),
    Step(&["-w", "json", "get", "foo"], ""),
    Step(&["get", "foo"], ""),
    Step(&["-w", "json", "get", "a", "d"], ""),
    Step(&["-w", "json", "get", "", "--from-key"], ""),
    Step(
        &["-w", "json", "get", "b", "--from-key", "--limit", "2"],
        "",
    ),
    Step(&["-w", "json", "get", "", "--prefix", "--keys-only"], ""),
    Step(&["get", "", "--prefix", "--keys-only"], ""),
    Step(
        &["-w", "json", "get", "a", "--prefix", "--print-value-only"],
        "",
    ),
    Step(
        &["-w", "json", "get", "", "--prefix", "--order", "DESCEND"],
        "",
    ),
    Step(
        &["-w", "json", "get", "", "--prefix", "--sort-by", "MODIFY"],
        "",
    ),
    Step(
        &[
            "-w",
            "json",
            "get",
            "",
            "--prefix",
            "--sort-by",
            "CREATE",
            "--order",
            "DESCEND",
            "--limit",
            "3",
        ],
        "",
    ),
    Step(
        &[
            "-w",
            "json",
            "get",
            "",
            "--prefix",
            "--sort-by",
            "VALUE",
            "--order",
            "ASCEND",
        ],
        "",
    ),
    Step(
        &[
            "-w",
            "json",
            "get",
            "",
            "--prefix",
            "--sort-by",
            "KEY",
            "--order",
            "DESCEND",
            "--limit",
            "2",
        ],
        "",
    ),
    Step(
        &[
            "-w",
            "json",
            "get",
            "",
            "--prefix",
            "--min-mod-rev",
            "4",
            "--max-mod-rev",
            "6",
        ],
        "",
    ),
    Step(
        &[
            "-w",
            "json",
            "get",
            "",
            "--prefix",
            "--min-create-rev",
            "5",
            "--max-create-rev",
            "6",
        ],
        "",
    ),
    Step(&["-w", "json", "get", "foo", "--rev", "2"], ""),
    Step(&["-w", "json", "get", "foo", "--rev", "100"], ""),
    Step(&["-w", "json", "get", "foo", "--consistency", "s"], ""),
    Step(&["-w", "json", "get", "nothing"], ""),
    Step(&["get", ""], ""),
    Step(&["put", "", "x"], ""),
    Step(&["-w", "json", "put", "foo", "--ignore-value"], ""),
    Step(&["put", "nokey", "--ignore-value"], ""),
    Step(&["put", "foo", "v", "--ignore-lease"], ""),
    Step(&["put", "foo", "x", "--lease", "1234"], ""),
    Step(&["put", "foo", "x", "--ignore-value"], ""),
    Step(&["-w", "json", "txn"], TXN_CAS),
    Step(&["txn"], TXN_CAS),
    Step(&["-w", "json", "txn"], TXN_FAILS),
    Step(&["-w", "json", "txn"], TXN_NO_KEY),
    Step(&["-w", "json", "txn"], TXN_VALUE_MISSING),
    Step(&["-w", "json", "txn"], TXN_DUPLICATE),
    Step(&["-w", "json", "txn"], TXN_PUT_IN_DELETE),
    Step(&["-w", "json", "txn"], TXN_BAD_LEASE),
    Step(&["-w", "json", "del", "a", "--prev-kv"], ""),
    Step(&["del", "b", "d", "--prev-kv"], ""),
    Step(&["-w", "json", "del", "nothing"], ""),
    Step(&["del", ""], ""),
    Step(&["-w", "json", "get", "a", "--rev", "7"], ""),
    Step(&["put", "a", "again"], ""),
    Step(&["-w", "json", "get", "a"], ""),
    Step(&["compaction", "100"], ""),
    Step(&["compaction", "5"], ""),
    Step(&["-w", "json", "get", "foo", "--rev", "4"], ""),
    Step(&["-w", "json", "get", "", "--prefix", "--rev", "5"], ""),
    Step(&["compaction", "5"], ""),
    Step(&["compaction", "3"], ""),
    Step(&["compaction", "--physical", "8"], ""),
    Step(&["-w", "json", "get", "", "--prefix", "--rev", "8"], ""),
    Step(&["-w", "json", "txn"], "\n\nget foo --rev=2\n\n\n"),
    Step(&["-w", "json", "del", "", "--from-key", "--prev-kv"], ""),
    Step(&["-w", "json", "get", "", "--from-key"], ""),
];

#[test]
fn etcdctl_v3_kv_answers_as_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(dir.path(), &[]);
    assert_same(&etcd.url, &ours.url, STEPS);
}

/// Run `steps` against both servers in turn; every step must answer alike.
fn assert_same(etcd: &str, ours: &str, steps: &[Step]) {
    let mut differ = Vec::new();
    for step in steps {
        let (a, b) = (run(etcd, step.0, step.1), run(ours, step.0, step.1));
        if a != b {
            differ.push(format!(
                "etcdctl {:?} <<< {:?}\n  etcd:   {a:?}\n  etcdrs: {b:?}",
                step.0, step.1
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} differences:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

const ROOT: &str = "--user=root:rootpw";
const ALICE: &str = "--user=alice:alicepw";

/// Users, roles and permissions: etcdctl's user, role and auth commands, each refusal, and
/// what a user with a role may read and write once auth is on.
const AUTH_STEPS: &[Step] = &[
    Step(&["auth", "enable"], ""),
    Step(&["user", "add", "root", "--new-user-password=rootpw"], ""),
    // etcdctl adds the root role and grants it to root when enabling needs it.
    Step(&["auth", "enable"], ""),
    Step(&["role", "add", "root"], ""),
    Step(&["user", "grant-role", "root", "root"], ""),
    Step(&["auth", "enable"], ""),
    Step(&["put", "a", "b"], ""),
    Step(&["get", "a"], ""),
    Step(&[ROOT, "put", "a", "b"], ""),
    Step(&[ROOT, "-w", "json", "get", "a"], ""),
    Step(&["--user=root:wrong", "get", "a"], ""),
    Step(&["--user=nobody:x", "get", "a"], ""),
    Step(
        &[ROOT, "user", "add", "alice", "--new-user-password=alicepw"],
        "",
    ),
    Step(
        &[ROOT, "user", "add", "alice", "--new-user-password=alicepw"],
        "",
    ),
    Step(&[ROOT, "user", "add", "", "--new-user-password=x"], ""),
    Step(&[ROOT, "role", "add", "reader"], ""),
    Step(&[ROOT, "role", "add", ""], ""),
    Step(
        &[
            ROOT,
            "role",
            "grant-permission",
            "reader",
            "read",
            "/a/",
            "--prefix=true",
        ],
        "",
    ),
    Step(
        &[ROOT, "role", "grant-permission", "reader", "write", "/w"],
        "",
    ),
    Step(
        &[
            ROOT,
            "role",
            "grant-permission",
            "reader",
            "readwrite",
            "/z",
            "--from-key",
        ],
        "",
    ),
    Step(
        &[ROOT, "role", "grant-permission", "nosuch", "read", "/x"],
        "",
    ),
    Step(&[ROOT, "user", "grant-role", "alice", "reader"], ""),
    Step(&[ROOT, "user", "grant-role", "alice", "nosuch"], ""),
    Step(&[ROOT, "user", "grant-role", "nosuch", "reader"], ""),
    Step(&[ROOT, "role", "get", "reader"], ""),
    Step(&[ROOT, "-w", "json", "role", "get", "reader"], ""),
    Step(&[ROOT, "role", "get", "nosuch"], ""),
    Step(&[ROOT, "role", "get", "root"], ""),
    Step(&[ROOT, "user", "get", "alice"], ""),
    Step(&[ROOT, "user", "get", "nosuch"], ""),
    Step(&[ALICE, "get", "/a/x"], ""),
    Step(&[ALICE, "put", "/a/x", "y"], ""),
    Step(&[ALICE, "put", "/w", "v"], ""),
    Step(&[ALICE, "put", "/w", "v", "--prev-kv"], ""),
    Step(&[ALICE, "get", "/w"], ""),
    Step(&[ALICE, "put", "/zz", "v"], ""),
    Step(&[ALICE, "-w", "json", "get", "/zz"], ""),
    Step(&[ALICE, "get", "/a/", "--prefix"], ""),
    Step(&[ALICE, "get", "/a", "--prefix"], ""),
    Step(&[ALICE, "get", "/z", "--from-key"], ""),
    Step(&[ALICE, "del", "/w"], ""),
    Step(&[ALICE, "del", "/z", "--from-key"], ""),
    Step(&[ALICE, "txn"], "\nput /w 1\n\n\n"),
    Step(&[ALICE, "txn"], "value(\"/a/x\") = \"1\"\n\nput /w 2\n\n\n"),
    Step(&[ALICE, "txn"], "value(\"a\") = \"b\"\n\nput /w 2\n\n\n"),
    Step(&[ALICE, "txn"], "\n\nput /w 3\n\nput /a/x 3\n\n"),
    Step(&[ALICE, "user", "list"], ""),
    Step(&[ALICE, "user", "get", "alice"], ""),
    Step(&[ALICE, "user", "get", "root"], ""),
    Step(&[ALICE, "role", "get", "reader"], ""),
    Step(&[ALICE, "role", "get", "root"], ""),
    Step(&[ALICE, "role", "list"], ""),
    Step(
        &[ALICE, "user", "add", "mallory", "--new-user-password=x"],
        "",
    ),
    Step(
        &[
            ALICE,
            "role",
            "grant-permission",
            "reader",
            "readwrite",
            "",
            "--from-key",
        ],
        "",
    ),
    Step(&[ALICE, "compaction", "1"], ""),
    Step(&[ALICE, "defrag"], ""),
    Step(&["defrag"], ""),
    Step(&[ALICE, "auth", "disable"], ""),
    Step(&[ALICE, "auth", "enable"], ""),
    Step(&[ROOT, "auth", "enable"], ""),
    Step(&[ROOT, "user", "list"], ""),
    Step(&[ROOT, "role", "list"], ""),
    Step(&[ROOT, "role", "revoke-permission", "reader", "/w"], ""),
    Step(&[ROOT, "role", "revoke-permission", "reader", "/w"], ""),
    Step(
        &[
            ROOT,
            "role",
            "revoke-permission",
            "reader",
            "/a/",
            "--prefix=true",
        ],
        "",
    ),
    Step(&[ROOT, "role", "revoke-permission", "nosuch", "/a/"], ""),
    Step(&[ROOT, "role", "get", "reader"], ""),
    Step(&[ALICE, "get", "/a/x"], ""),
    Step(&[ROOT, "user", "revoke-role", "alice", "reader"], ""),
    Step(&[ROOT, "user", "revoke-role", "alice", "reader"], ""),
    Step(&[ROOT, "user", "revoke-role", "nosuch", "reader"], ""),
    Step(&[ROOT, "user", "revoke-role", "root", "root"], ""),
    Step(&[ROOT, "user", "delete", "root"], ""),
    Step(&[ROOT, "role", "delete", "root"], ""),
    Step(
        &[ROOT, "user", "passwd", "alice", "--interactive=false"],
        "newpw\n",
    ),
    Step(&[ALICE, "get", "/zz"], ""),
    Step(&["--user=alice:newpw", "get", "/zz"], ""),
    Step(&[ROOT, "user", "grant-role", "alice", "reader"], ""),
    Step(&[ROOT, "role", "delete", "reader"], ""),
    Step(&[ROOT, "role", "delete", "reader"], ""),
    Step(&[ROOT, "user", "get", "alice"], ""),
    Step(&[ROOT, "user", "delete", "alice"], ""),
    Step(&[ROOT, "user", "delete", "alice"], ""),
    Step(&[ROOT, "auth", "disable"], ""),
    Step(&["get", "a"], ""),
    Step(&["auth", "disable"], ""),
    Step(&["user", "revoke-role", "root", "root"], ""),
    Step(&["role", "delete", "root"], ""),
    Step(&["user", "delete", "root"], ""),
    Step(&["user", "list"], ""),
    Step(&["auth", "enable"], ""),
];

#[test]
fn etcdctl_v3_auth_answers_as_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(dir.path(), &[]);
    assert_same(&etcd.url, &ours.url, AUTH_STEPS);
}

/// The same steps with JWT tokens (--auth-token jwt, ES256 keys made here) on both.
#[test]
fn etcdctl_v3_auth_with_jwt_answers_as_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let token = etcdrs_tests::jwt_auth_token(dir.path(), "5m");
    let etcd = Etcd::start_with(&["--auth-token", &token]);
    let ours = Member::start(&dir.path().join("ours"), &["--auth-token", &token]);
    assert_same(&etcd.url, &ours.url, AUTH_STEPS);
}

/// Leases: each server picks its own lease ids, so the steps name "{id}" and each server's
/// answers have its id replaced by "{id}"; remaining TTLs tick, so they are left out.
#[test]
fn etcdctl_v3_leases_answer_as_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(dir.path(), &[]);
    let lease_steps: &[&[&str]] = &[
        &["lease", "timetolive", "{id}"],
        &["-w", "json", "lease", "timetolive", "{id}", "--keys"],
        &["put", "leased", "v", "--lease", "{id}"],
        &["put", "leased2", "v", "--lease", "{id}"],
        &["-w", "json", "get", "leased"],
        &["-w", "json", "lease", "timetolive", "{id}", "--keys"],
        &["lease", "list"],
        &["lease", "keep-alive", "--once", "{id}"],
        &["put", "leased", "moved"],
        &["-w", "json", "lease", "timetolive", "{id}", "--keys"],
        &["lease", "revoke", "{id}"],
        &["-w", "json", "get", "leased", "--from-key"],
        &["lease", "revoke", "{id}"],
        &["lease", "timetolive", "{id}"],
        &["lease", "keep-alive", "--once", "{id}"],
        &["put", "x", "v", "--lease", "{id}"],
        &["lease", "grant", "9000000001"],
        &["lease", "list"],
    ];
    let session = |url: &str| -> Vec<Ran> {
        let granted = etcdctl3(url, &["-w", "json", "lease", "grant", "1"], "");
        let v: Value = serde_json::from_str(&granted.stdout).expect("lease grant json");
        let id = v["ID"].as_i64().expect("an ID");
        let hex = format!("{id:x}");
        let mut seen = vec![Ran {
            stdout: format!("TTL {}", v["TTL"]),
            ..granted
        }];
        for step in lease_steps {
            let args: Vec<String> = step.iter().map(|a| a.replace("{id}", &hex)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut ran = run(url, &args, "");
            for text in [&mut ran.stdout, &mut ran.stderr] {
                // While it is JSON: the remaining TTL ticks, keys come in map order.
                *text = without_remaining_ttl(text);
                *text = text
                    .replace(&format!("{id:016x}"), "{id}")
                    .replace(&hex, "{id}")
                    .replace(&id.to_string(), "{id}");
            }
            seen.push(ran);
        }
        seen
    };
    let (a, b) = (session(&etcd.url), session(&ours.url));
    let differ: Vec<String> = a
        .iter()
        .zip(&b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| format!("step {i}\n  etcd:   {x:?}\n  etcdrs: {y:?}"))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// "remaining(12s)" and "ttl":12 tick down; the granted TTL stays. A lease's keys come
/// in Go map order from etcd: sorted here.
fn without_remaining_ttl(text: &str) -> String {
    let mut v = match serde_json::from_str::<Value>(text) {
        Ok(v) => v,
        Err(_) => {
            let Some(start) = text.find("remaining(") else {
                return text.to_string();
            };
            let end = text[start..]
                .find(')')
                .map_or(text.len(), |e| start + e + 1);
            return format!("{}remaining(..){}", &text[..start], &text[end..]);
        }
    };
    if let Some(m) = v.as_object_mut() {
        if m.contains_key("ttl") && m.contains_key("granted-ttl") {
            m.insert("ttl".into(), Value::String("..".into()));
        }
        if let Some(Value::Array(keys)) = m.get_mut("keys") {
            keys.sort_by_key(|k| k.to_string());
        }
    }
    v.to_string()
}

/// Run `etcdctl watch ...` until it has printed `events` events (bounded), then stop it.
fn watch_events(url: &str, args: &[&str], events: usize) -> String {
    use std::io::Read;
    let mut child = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(url)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("etcdctl");
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let count = |t: &str| {
        t.lines().filter(|l| *l == "PUT" || *l == "DELETE").count() + t.matches("\"kv\":").count()
    };
    while count(&text) < events && std::time::Instant::now() < deadline {
        if let Ok(chunk) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    // The rest of the last event's lines, and anything that should not have come.
    while let Ok(chunk) = rx.recv_timeout(std::time::Duration::from_millis(300)) {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let _ = child.kill();
    let _ = child.wait();
    text
}

/// The events of `etcdctl -w json watch` output, one JSON array, whatever the grouping
/// into responses (which follows batching, not the API).
fn watch_json_events(text: &str) -> Value {
    Value::Array(
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .flat_map(|v| v["Events"].as_array().cloned().unwrap_or_default())
            .collect(),
    )
}

#[test]
fn etcdctl_v3_watch_answers_as_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(dir.path(), &[]);
    let session = |url: &str| -> Vec<String> {
        etcdctl3(url, &["put", "a", "1"], "");
        etcdctl3(url, &["put", "a", "2"], "");
        // Watchers from a revision, so when they start does not matter.
        let watchers: Vec<(Vec<&str>, usize)> = vec![
            (vec!["watch", "a", "--prefix", "--prev-kv", "--rev", "2"], 6),
            (vec!["watch", "a", "--rev", "3"], 3),
            (vec!["watch", "a", "c", "--rev", "4"], 5),
            (
                vec!["-w", "json", "watch", "a", "--rev", "1", "--prev-kv"],
                5,
            ),
        ];
        let url2 = url.to_string();
        let running: Vec<_> = watchers
            .into_iter()
            .map(|(args, n)| {
                let url = url2.clone();
                let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
                std::thread::spawn(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    watch_events(&url, &args, n)
                })
            })
            .collect();
        etcdctl3(url, &["put", "a", "3"], "");
        etcdctl3(url, &["put", "ab", "x"], "");
        etcdctl3(url, &["del", "a"], "");
        etcdctl3(url, &["put", "b", "y"], "");
        etcdctl3(url, &["txn"], "\nput a 5\nput c z\n\n\n");
        let mut seen: Vec<String> = running.into_iter().map(|h| h.join().unwrap()).collect();
        let last = seen.len() - 1;
        seen[last] = watch_json_events(&seen[last]).to_string();
        // A watch from a compacted revision is refused with the compaction point.
        etcdctl3(url, &["compaction", "5"], "");
        let compacted = etcdctl3(url, &["watch", "a", "--rev", "2"], "");
        seen.push(format!("{:?} {}", compacted.code, compacted.stdout));
        seen
    };
    let (a, b) = (session(&etcd.url), session(&ours.url));
    assert_eq!(a, b);
}

/// examples/etcdctl-v3.sh (the README's walkthrough) runs through against a member.
#[test]
fn the_etcdctl_v3_walkthrough_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(dir.path(), &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/etcdctl-v3.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        // A URL, not host:port: etcdctl then sends it whole as the HTTP/2 authority for
        // per-endpoint commands (endpoint status, defrag), which etcd accepts.
        .arg(&ours.url)
        .output()
        .expect("bash");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let expected = [
        "Hello txn",
        "is healthy",
        "compacted revision",
        "Finished defragmenting",
        "Snapshot saved at",
        "holding mylock",
        "myelection/",
    ];
    for expected in expected {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
}
