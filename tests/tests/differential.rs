//! Differential tests: the same requests to real etcd 3.4 (Debian's etcd-server, v2 API
//! enabled) and to etcdrs, both fresh; answers compared after normalising times. Indices are
//! compared exactly: both start with the same three internal writes.

use etcdrs_tests::{etcdctl, http, wait_for_watchers, Etcd, Member, Reply};
use serde_json::Value;
use std::time::Duration;

/// Replace what legitimately differs: wall-clock times, TTLs counted down by reads, the
/// order of unsorted listings (Go map order).
fn normalize(mut v: Value) -> Value {
    fn walk(v: &mut Value, countdown: bool) {
        match v {
            Value::Object(m) => {
                if m.contains_key("expiration") {
                    m.insert("expiration".into(), Value::String("<time>".into()));
                }
                if countdown && m.contains_key("ttl") {
                    m.insert("ttl".into(), Value::String("<ttl>".into()));
                }
                for (k, child) in m.iter_mut() {
                    if k == "nodes" {
                        if let Value::Array(a) = child {
                            a.sort_by(|x, y| x["key"].as_str().cmp(&y["key"].as_str()));
                        }
                    }
                    walk(child, countdown);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, countdown)),
            _ => {}
        }
    }
    let countdown = matches!(v["action"].as_str(), Some("get") | Some("expire") | None);
    walk(&mut v, countdown);
    v
}

#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    body: Value,
    etcd_index: Option<String>,
    has_raft_headers: (bool, bool),
    content_type: Option<String>,
    cors: Option<String>,
}

fn seen(r: &Reply) -> Seen {
    let body = serde_json::from_str(&r.body)
        .map(normalize)
        .unwrap_or(Value::String(r.body.clone()));
    Seen {
        status: r.status,
        body,
        etcd_index: r.header("X-Etcd-Index").map(String::from),
        has_raft_headers: (
            r.header("X-Raft-Index").is_some(),
            r.header("X-Raft-Term").is_some(),
        ),
        content_type: r.header("Content-Type").map(String::from),
        cors: r.header("Access-Control-Allow-Methods").map(String::from),
    }
}

type Step = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The spec's examples, then etcd's error cases.
const STEPS: &[Step] = &[
    ("PUT", "/v2/keys/message", &[("value", "Hello world")]),
    ("GET", "/v2/keys/message", &[]),
    ("PUT", "/v2/keys/message", &[("value", "Hello etcd")]),
    ("HEAD", "/v2/keys/message", &[]),
    ("DELETE", "/v2/keys/message", &[]),
    ("PUT", "/v2/keys/foo", &[("value", "bar"), ("ttl", "5")]),
    ("GET", "/v2/keys/foo", &[]),
    (
        "PUT",
        "/v2/keys/foo",
        &[("value", "bar"), ("ttl", ""), ("prevExist", "true")],
    ),
    (
        "GET",
        "/v2/keys/foo",
        &[("wait", "true"), ("waitIndex", "7")],
    ),
    (
        "GET",
        "/v2/keys/foo",
        &[("wait", "true"), ("waitIndex", "8")],
    ),
    ("POST", "/v2/keys/queue", &[("value", "Job1")]),
    ("POST", "/v2/keys/queue", &[("value", "Job2")]),
    (
        "GET",
        "/v2/keys/queue",
        &[("recursive", "true"), ("sorted", "true")],
    ),
    ("PUT", "/v2/keys/dir", &[("ttl", "30"), ("dir", "true")]),
    (
        "PUT",
        "/v2/keys/dir",
        &[("ttl", "30"), ("dir", "true"), ("prevExist", "true")],
    ),
    (
        "PUT",
        "/v2/keys/dir",
        &[("prevExist", "true"), ("dir", "true")],
    ),
    ("GET", "/v2/keys/dir", &[]),
    ("PUT", "/v2/keys/foo", &[("value", "one")]),
    ("PUT", "/v2/keys/foo?prevExist=false", &[("value", "three")]),
    ("PUT", "/v2/keys/foo?prevValue=two", &[("value", "three")]),
    (
        "PUT",
        "/v2/keys/foo?prevValue=two&prevIndex=3",
        &[("value", "three")],
    ),
    ("PUT", "/v2/keys/foo?prevValue=one", &[("value", "two")]),
    ("PUT", "/v2/keys/foo", &[("value", "one")]),
    ("DELETE", "/v2/keys/foo?prevValue=two", &[]),
    ("DELETE", "/v2/keys/foo?prevIndex=1", &[]),
    ("DELETE", "/v2/keys/foo?prevValue=one", &[]),
    ("PUT", "/v2/keys/dir2", &[("dir", "true")]),
    ("PUT", "/v2/keys/foo_dir/foo", &[("value", "bar")]),
    ("GET", "/v2/keys/", &[]),
    ("GET", "/v2/keys/", &[("recursive", "true")]),
    ("DELETE", "/v2/keys/foo_dir?dir=true", &[]),
    ("DELETE", "/v2/keys/foo_dir", &[]),
    ("DELETE", "/v2/keys/foo_dir?recursive=true", &[]),
    ("DELETE", "/v2/keys/dir2?dir=true", &[]),
    (
        "PUT",
        "/v2/keys/_message",
        &[("value", "Hello hidden world")],
    ),
    ("PUT", "/v2/keys/message", &[("value", "Hello world")]),
    ("GET", "/v2/keys/", &[]),
    ("GET", "/v2/keys/_message", &[]),
    ("PUT", "/v2/keys/afile", &[("value", "Hello\nWorld\n")]),
    ("PUT", "/v2/keys/r", &[("value", "v"), ("ttl", "10")]),
    (
        "PUT",
        "/v2/keys/r",
        &[("refresh", "true"), ("ttl", "20"), ("prevExist", "true")],
    ),
    ("PUT", "/v2/keys/r", &[("refresh", "true"), ("ttl", "20")]),
    (
        "PUT",
        "/v2/keys/nv",
        &[("value", "x"), ("noValueOnSuccess", "true")],
    ),
    (
        "PUT",
        "/v2/keys/dir2",
        &[("dir", "true"), ("value", "ignored")],
    ),
    ("PUT", "/v2/keys/dir2", &[("value", "x")]),
    (
        "PUT",
        "/v2/keys/dir2",
        &[("value", "x"), ("prevExist", "true")],
    ),
    ("PUT", "/v2/keys/dir2?prevValue=a", &[("value", "x")]),
    ("DELETE", "/v2/keys/dir2?prevValue=a", &[]),
    (
        "PUT",
        "/v2/keys/dir2",
        &[("dir", "true"), ("prevExist", "false")],
    ),
    (
        "PUT",
        "/v2/keys/missing",
        &[("value", "x"), ("prevExist", "true")],
    ),
    ("PUT", "/v2/keys/message/child", &[("value", "x")]),
    ("GET", "/v2/keys/message/child", &[]),
    ("GET", "/v2/keys/nope/deeper", &[]),
    ("PUT", "/v2/keys/", &[("value", "x")]),
    ("DELETE", "/v2/keys/", &[]),
    ("POST", "/v2/keys/message", &[("value", "x")]),
    ("PUT", "/v2/keys/foo", &[("value", "v"), ("ttl", "abc")]),
    (
        "PUT",
        "/v2/keys/foo",
        &[("value", "v"), ("prevIndex", "abc")],
    ),
    ("GET", "/v2/keys/foo", &[("recursive", "maybe")]),
    ("PUT", "/v2/keys/foo", &[("wait", "true")]),
    ("PUT", "/v2/keys/foo?prevValue=", &[("value", "v")]),
    (
        "PUT",
        "/v2/keys/foo",
        &[("refresh", "true"), ("value", "1")],
    ),
    ("PUT", "/v2/keys/foo", &[("refresh", "true")]),
    ("PUT", "/v2/keys/foo", &[("prevExist", "maybe")]),
    (
        "GET",
        "/v2/keys/foo",
        &[("wait", "true"), ("waitIndex", "x")],
    ),
    ("DELETE", "/v2/keys/message?recursive=true", &[]),
    ("GET", "/v2/keys/message", &[("quorum", "true")]),
    ("PUT", "/v2/keys/x/y/z", &[("value", "deep")]),
    ("GET", "/v2/keys/x", &[("recursive", "true")]),
    (
        "DELETE",
        "/v2/keys/x/y",
        &[("dir", "true"), ("recursive", "true")],
    ),
    ("PATCH", "/v2/keys/foo", &[]),
    ("GET", "/v2/nothing", &[]),
];

fn run(base: &str, step: &Step) -> Reply {
    http(step.0, &format!("{base}{}", step.1), step.2)
}

#[test]
fn keys_api_matches_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(&dir.path().join("m"), &[]);
    let mut mismatches = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        let (a, b) = (seen(&run(&etcd.url, step)), seen(&run(&ours.url, step)));
        if a != b {
            mismatches.push(format!(
                "step {i} {step:?}\n  etcd:   {a:?}\n  etcdrs: {b:?}"
            ));
        }
    }
    // A blocking watch answered by a later write.
    let w = |base: String| {
        std::thread::spawn(move || http("GET", &format!("{base}/v2/keys/w?wait=true"), &[]))
    };
    let (wa, wb) = (w(etcd.url.clone()), w(ours.url.clone()));
    wait_for_watchers(&etcd.url, 1);
    wait_for_watchers(&ours.url, 1);
    for base in [&etcd.url, &ours.url] {
        http("PUT", &format!("{base}/v2/keys/w"), &[("value", "1")]);
    }
    let (a, b) = (seen(&wa.join().unwrap()), seen(&wb.join().unwrap()));
    if a != b {
        mismatches.push(format!("blocking watch\n  etcd:   {a:?}\n  etcdrs: {b:?}"));
    }
    // History runs out after 1000 events.
    for base in [&etcd.url, &ours.url] {
        for i in 0..1000 {
            http(
                "PUT",
                &format!("{base}/v2/keys/many"),
                &[("value", &i.to_string())],
            );
        }
    }
    let step: Step = (
        "GET",
        "/v2/keys/foo",
        &[("wait", "true"), ("waitIndex", "7")],
    );
    let (a, b) = (seen(&run(&etcd.url, &step)), seen(&run(&ours.url, &step)));
    if a != b {
        mismatches.push(format!("cleared history\n  etcd:   {a:?}\n  etcdrs: {b:?}"));
    }
    // The same fields in every stats and membership document.
    for p in [
        "/v2/stats/store",
        "/v2/stats/self",
        "/v2/stats/leader",
        "/v2/members",
        "/version",
        "/health",
    ] {
        let (a, b) = (
            http("GET", &format!("{}{p}", etcd.url), &[]),
            http("GET", &format!("{}{p}", ours.url), &[]),
        );
        let keys = |r: &Reply| -> Vec<String> {
            match serde_json::from_str::<Value>(&r.body) {
                Ok(Value::Object(m)) => m.keys().cloned().collect(),
                _ => vec![r.body.clone()],
            }
        };
        if (a.status, keys(&a), a.header("Content-Type"))
            != (b.status, keys(&b), b.header("Content-Type"))
        {
            mismatches.push(format!(
                "{p}\n  etcd:   {} {}\n  etcdrs: {} {}",
                a.status, a.body, b.status, b.body
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} differences from etcd:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn etcdctl_v2_works_as_against_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(&dir.path().join("m"), &[]);
    let script: &[&[&str]] = &[
        &["set", "/a/b", "hello"],
        &["get", "/a/b"],
        &["mk", "/a/c", "v"],
        &["mk", "/a/c", "v"],
        &["mkdir", "/d"],
        &["ls", "-r", "/"],
        &["ls", "--recursive", "-p", "/a"],
        &["update", "/a/b", "bye"],
        &["update", "/nope", "x"],
        &["get", "/a/b"],
        &["set", "--ttl", "100", "/t", "v"],
        &["rm", "/a/b"],
        &["rm", "/a/b"],
        &["rmdir", "/d"],
        &["rm", "--recursive", "/a"],
        &["ls", "/"],
        &["-o", "json", "get", "/t"],
    ];
    let mut diffs = Vec::new();
    for args in script {
        let (a, b) = (etcdctl(&etcd.url, args), etcdctl(&ours.url, args));
        // etcd lists a directory in Go map order (random) unless asked to sort.
        let norm = |s: &str| {
            let s = s.split("\"expiration\":").next().unwrap_or(s);
            let mut lines: Vec<&str> = s.lines().collect();
            if args[0] == "ls" {
                lines.sort_unstable();
            }
            lines.join("\n")
        };
        if (a.0, norm(&a.1)) != (b.0, norm(&b.1)) {
            diffs.push(format!(
                "etcdctl {args:?}\n  etcd:   {a:?}\n  etcdrs: {b:?}"
            ));
        }
    }
    // etcdctl watch returns on the first change.
    let watch = |url: String| std::thread::spawn(move || etcdctl(&url, &["watch", "/w"]));
    let (wa, wb) = (watch(etcd.url.clone()), watch(ours.url.clone()));
    wait_for_watchers(&etcd.url, 1);
    wait_for_watchers(&ours.url, 1);
    etcdctl(&etcd.url, &["set", "/w", "changed"]);
    etcdctl(&ours.url, &["set", "/w", "changed"]);
    let (a, b) = (wa.join().unwrap(), wb.join().unwrap());
    if a != b {
        diffs.push(format!("etcdctl watch\n  etcd:   {a:?}\n  etcdrs: {b:?}"));
    }
    let (code, text) = etcdctl(&ours.url, &["cluster-health"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("cluster is healthy"), "{text}");
    let (code, text) = etcdctl(&ours.url, &["member", "list"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("isLeader=true"), "{text}");
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Read `n` lines of a streaming watch at `url` (bounded).
fn stream_lines(url: String, n: usize) -> std::thread::JoinHandle<Vec<Value>> {
    std::thread::spawn(move || {
        let resp = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build()
            .get(&url)
            .call()
            .unwrap();
        let mut reader = std::io::BufReader::new(resp.into_reader());
        (0..n)
            .map(|_| {
                let mut line = String::new();
                std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
                normalize(serde_json::from_str(&line).unwrap())
            })
            .collect()
    })
}

#[test]
fn expiry_and_stream_watches_match_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(&dir.path().join("m"), &[]);
    let mut results = Vec::new();
    for base in [&etcd.url, &ours.url] {
        let k = |p: &str| format!("{base}/v2/keys{p}");
        // The spec's directory TTL example: a watcher of a child sees the directory expire.
        http("PUT", &k("/dir"), &[("ttl", "1"), ("dir", "true")]);
        let set = http("PUT", &k("/dir/asdf"), &[("value", "v")]);
        let next = set.json()["node"]["modifiedIndex"].as_u64().unwrap() + 1;
        let expired = http(
            "GET",
            &k(&format!("/dir/asdf?wait=true&waitIndex={next}")),
            &[],
        );
        let after = http("GET", &k("/dir"), &[]);
        // A live stream of three changes.
        let lines = stream_lines(k("/s?wait=true&stream=true"), 3);
        wait_for_watchers(base, 1);
        for i in 0..3 {
            http("PUT", &k("/s"), &[("value", &i.to_string())]);
        }
        let streamed = lines.join().unwrap();
        let stats = http("GET", &format!("{base}/v2/stats/store"), &[]).json();
        results.push((
            seen(&expired),
            seen(&after),
            streamed,
            stats["expireCount"].clone(),
        ));
    }
    assert_eq!(
        results[0], results[1],
        "etcd (left) and etcdrs (right) differ"
    );
}

/// A raw answer as compared with etcd's: the status line, the headers as a sorted set
/// (Date dropped; the cluster id and raft indices by presence; Content-Length dropped for
/// HEAD, which Go leaves out and hyper does not) and the body.
fn raw_answer(base: &str, request: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let text = etcdrs_tests::raw(addr, request.as_bytes(), Duration::from_secs(5));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("").to_string();
    let head_request = request.starts_with("HEAD ");
    let mut headers: Vec<String> = lines
        .filter(|l| !l.starts_with("Date:"))
        .filter(|l| !(head_request && l.to_ascii_lowercase().starts_with("content-length:")))
        .map(|l| {
            let (name, value) = l.split_once(':').unwrap_or((l, ""));
            let name = name.to_ascii_lowercase();
            match name.as_str() {
                "x-etcd-cluster-id" | "x-raft-index" | "x-raft-term" => format!("{name}: <n>"),
                _ => format!("{name}:{value}"),
            }
        })
        .collect();
    headers.sort();
    format!("{status}\n{}\n\n{body}", headers.join("\n"))
}

/// What etcd's router does before its handlers, and its answers on the paths beside the
/// keys: an unclean path (`.`, `..`, `//`, also percent-encoded) is a 301 to the clean one
/// for every method; quorum reads do not wait; 405s carry no cluster id; OPTIONS has no
/// content type; unknown paths under /v2/members are JSON 404s. Byte for byte with etcd 3.4.
#[test]
fn router_answers_match_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let m = Member::start(&dir.path().join("m"), &[]);
    for base in [&etcd.url, &m.url] {
        http("PUT", &format!("{base}/v2/keys/a/b"), &[("value", "1")]);
    }
    let form =
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=2";
    let requests = [
        format!("PUT /v2/keys/a/./b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{form}"),
        format!("POST /v2/keys/a//q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{form}"),
        "GET /v2/keys/a//b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "HEAD /v2/keys/a//b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "DELETE /v2/keys/a/x/../b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /v2/keys/a/./b?recursive=true HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /v2/keys/a/../../b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /v2/keys/%2Fa%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /v2/keys/a%3Fb/./c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /v2/keys/a/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET //v2/stats/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /mod/v2/lock/a//b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /v2/keys/zz?wait=true&quorum=true HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            .into(),
        "PATCH /v2/keys/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "OPTIONS /v2/keys/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "OPTIONS /v2/members HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "OPTIONS /v2/stats/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /v2/members/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /v2/members/leader/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "HEAD /v2/members HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "PATCH /v2/members HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "DELETE /v2/members/zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "POST /v2/stats/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            .into(),
        "GET /v2/stats/self/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /v2/stats/foo?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        "GET /v2/machines/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    ];
    for req in &requests {
        assert_eq!(
            raw_answer(&m.url, req),
            raw_answer(&etcd.url, req),
            "{}",
            req.lines().next().unwrap()
        );
    }
    // Nothing was written by the redirected writes.
    let r = http("GET", &format!("{}/v2/keys/a/b", m.url), &[]);
    assert_eq!(r.json()["node"]["value"], "1");
}

/// etcd writes JSON with Go's encoding/json: `<`, `>`, `&`, U+2028/9 and control characters
/// escaped its way. Byte for byte (indices aside) in answers, errors and watch events.
#[test]
fn json_is_escaped_as_etcd_escapes_it() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(&dir.path().join("m"), &[]);
    let value = "v<1>&2\u{2028}\u{2029}\u{8}\u{c}\u{1}\"é";
    let indices = |s: &str| {
        let mut out = String::new();
        for part in s.split("Index\":") {
            if !out.is_empty() {
                out.push_str("Index\":<n>");
                out.push_str(part.trim_start_matches(|c: char| c.is_ascii_digit()));
            } else {
                out.push_str(part);
            }
        }
        out
    };
    let answers = |base: &str| {
        let key = format!("{base}/v2/keys/esc%3Ca%3E%26b");
        [
            http("PUT", &key, &[("value", value)]).body,
            http("GET", &key, &[]).body,
            http("GET", &format!("{base}/v2/keys/no%3Cpe%3E"), &[]).body,
            http("GET", &key, &[("wait", "true"), ("waitIndex", "1")]).body,
        ]
        .iter()
        .map(|b| indices(b))
        .collect::<Vec<_>>()
    };
    let (a, b) = (answers(&etcd.url), answers(&ours.url));
    assert!(a[0].contains("\\u003ca\\u003e\\u0026b"), "{}", a[0]);
    assert_eq!(a, b, "etcd (left) and etcdrs (right)");
}

/// The member records a member writes itself count in /v2/stats/store as etcd's do: a
/// boot is 2 sets (version, attributes) and 1 create (the member), a peer URL update one
/// update. (Gets are left out: etcd reads its v2 auth flag through the counted path.)
#[test]
fn member_records_count_in_the_store_stats_as_etcds() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(dir.path(), &[]);
    let counters = |base: &str| -> Vec<(String, Value)> {
        let stats = http("GET", &format!("{base}/v2/stats/store"), &[]).json();
        stats
            .as_object()
            .expect("stats")
            .iter()
            .filter(|(k, _)| !k.starts_with("gets"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    // Both publish their attributes and the cluster version soon after they serve.
    let booted = |base: &str| {
        etcdrs_tests::eventually(Duration::from_secs(10), || {
            let c = counters(base);
            c.iter()
                .any(|(k, v)| k == "setsSuccess" && v == 2)
                .then_some(c)
        })
        .unwrap_or_else(|| panic!("{base}: no boot writes: {:?}", counters(base)))
    };
    assert_eq!(booted(&etcd.url), booted(&ours.url), "after boot");
    for base in [&etcd.url, &ours.url] {
        let members = http("GET", &format!("{base}/v2/members"), &[]).json();
        let me = &members["members"][0];
        let update = ureq::put(&format!("{base}/v2/members/{}", me["id"].as_str().unwrap()))
            .set("Content-Type", "application/json")
            .send_string(&serde_json::json!({ "peerURLs": me["peerURLs"] }).to_string())
            .expect("the update");
        assert_eq!(update.status(), 204);
    }
    assert_eq!(
        counters(&etcd.url),
        counters(&ours.url),
        "after a peer URL update"
    );
}
