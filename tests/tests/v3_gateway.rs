//! etcd's JSON gateway (POST /v3/...) against real etcd 3.4: the same requests to a fresh
//! etcd and a fresh etcdrs, answers compared by status, content type and body after leaving
//! out what names the member (ids, raft term). Both stores start empty at revision 1, so
//! revisions compare exactly; leases are granted with chosen ids.

use etcdrs_tests::{post, try_http, Etcd, Member, Reply};
use serde_json::Value;
use std::io::BufRead;

/// How two answers must agree.
#[derive(Clone, Copy)]
enum Check {
    /// Status, content type and the whole (normalized) body.
    Same,
    /// Status, content type and the error's gRPC code: the message is Go's JSON decoder's
    /// own wording.
    Code,
    /// As Same, without these fields wherever they are (values that differ by nature:
    /// TTLs counting down, member URLs, versions and sizes).
    Without(&'static [&'static str]),
}

struct Step {
    path: &'static str,
    body: &'static str,
    check: Check,
}

const fn step(path: &'static str, body: &'static str) -> Step {
    Step {
        path,
        body,
        check: Check::Same,
    }
}

const fn code(path: &'static str, body: &'static str) -> Step {
    Step {
        path,
        body,
        check: Check::Code,
    }
}

const fn without(path: &'static str, body: &'static str, drop: &'static [&'static str]) -> Step {
    Step {
        path,
        body,
        check: Check::Without(drop),
    }
}

// Keys and values are base64: a=YQ==, b=Yg==, c=Yw==, 1=MQ==, 2=Mg==, 3=Mw==.
const STEPS: &[Step] = &[
    step("/v3/kv/put", r#"{"key":"YQ==","value":"MQ=="}"#),
    step(
        "/v3/kv/put",
        r#"{"key":"YQ==","value":"Mg==","prev_kv":true}"#,
    ),
    // camelCase names and numbers for 64-bit integers are accepted too.
    step(
        "/v3/kv/put",
        r#"{"key":"Yg==","value":"Mw==","prevKv":true}"#,
    ),
    step("/v3/kv/put", r#"{"key":"YWI=","value":"MQ==","lease":0}"#),
    step("/v3/kv/put", r#"{"value":"MQ=="}"#),
    step(
        "/v3/kv/put",
        r#"{"key":"YQ==","value":"MQ==","lease":"12345"}"#,
    ),
    step("/v3/kv/range", r#"{"key":"YQ=="}"#),
    step(
        "/v3/kv/range",
        r#"{"key":"YQ==","range_end":"Yw==","sort_order":"DESCEND","sort_target":"KEY"}"#,
    ),
    step(
        "/v3/kv/range",
        r#"{"key":"YQ==","rangeEnd":"Yw==","sortOrder":1,"sortTarget":3,"limit":"1"}"#,
    ),
    step(
        "/v3/kv/range",
        r#"{"key":"AA==","range_end":"AA==","keys_only":true}"#,
    ),
    step(
        "/v3/kv/range",
        r#"{"key":"YQ==","range_end":"Yw==","count_only":true}"#,
    ),
    step("/v3/kv/range", r#"{"key":"YQ==","revision":"2"}"#),
    step("/v3/kv/range", r#"{"key":"YQ==","revision":1000}"#),
    step(
        "/v3/kv/range",
        r#"{"key":"YQ==","min_mod_revision":"3","range_end":"Yw=="}"#,
    ),
    step("/v3beta/kv/range", r#"{"key":"Yg==","serializable":true}"#),
    step("/v3/kv/deleterange", r#"{"key":"Yg==","prev_kv":true}"#),
    step("/v3/kv/deleterange", r#"{"key":"enp6"}"#),
    // Transactions: a compare that holds, one that fails, a duplicate key.
    step(
        "/v3/kv/txn",
        r#"{"compare":[{"key":"YQ==","target":"VALUE","result":"EQUAL","value":"Mg=="}],
            "success":[{"request_put":{"key":"Yw==","value":"MQ=="}},{"request_range":{"key":"YQ=="}}],
            "failure":[{"request_delete_range":{"key":"YQ=="}}]}"#,
    ),
    step(
        "/v3/kv/txn",
        r#"{"compare":[{"key":"YQ==","target":"VERSION","result":"GREATER","version":"10"}],
            "success":[{"request_put":{"key":"Yw==","value":"Mg=="}}],
            "failure":[{"request_delete_range":{"key":"Yw==","prev_kv":true}}]}"#,
    ),
    step(
        "/v3/kv/txn",
        r#"{"success":[{"request_put":{"key":"ZA==","value":"MQ=="}},{"request_put":{"key":"ZA==","value":"Mg=="}}]}"#,
    ),
    step(
        "/v3/kv/txn",
        r#"{"compare":[{"key":"bm9uZQ==","target":"CREATE","result":"EQUAL","create_revision":"0"}],
            "success":[{"request_txn":{"success":[{"request_put":{"key":"bg==","value":"MQ=="}}]}}]}"#,
    ),
    // Compaction, then reads below it.
    step("/v3/kv/compaction", r#"{"revision":"4","physical":true}"#),
    step("/v3/kv/range", r#"{"key":"YQ==","revision":"3"}"#),
    step("/v3/kv/compaction", r#"{"revision":"4"}"#),
    step("/v3/kv/compaction", r#"{"revision":"1000"}"#),
    // Leases, under both spellings of the older paths.
    step("/v3/lease/grant", r#"{"TTL":"60","ID":"1234"}"#),
    step("/v3/lease/grant", r#"{"TTL":60,"ID":1234}"#),
    step(
        "/v3/kv/put",
        r#"{"key":"bA==","value":"MQ==","lease":"1234"}"#,
    ),
    without(
        "/v3/lease/timetolive",
        r#"{"ID":"1234","keys":true}"#,
        &["TTL"],
    ),
    without("/v3/kv/lease/timetolive", r#"{"ID":1234}"#, &["TTL"]),
    step("/v3/lease/timetolive", r#"{"ID":"999"}"#),
    step("/v3/lease/leases", ""),
    step("/v3/kv/lease/leases", "{}"),
    step("/v3/lease/revoke", r#"{"ID":"1234"}"#),
    step("/v3/kv/lease/revoke", r#"{"ID":"1234"}"#),
    step("/v3/kv/range", r#"{"key":"bA=="}"#),
    // Lock and election with a lease of the caller's, and a lock without one (etcd gives
    // it a lease of its own).
    step("/v3/lease/grant", r#"{"TTL":"60","ID":"99"}"#),
    step("/v3/lock/lock", r#"{"name":"bG9jaw==","lease":"99"}"#),
    step("/v3/lock/unlock", r#"{"key":"bG9jay82Mw=="}"#),
    step("/v3/lock/unlock", "{}"),
    without("/v3/lock/lock", r#"{"name":"bm8tbGVhc2U="}"#, &["key"]),
    without("/v3/lease/leases", "", &["ID"]),
    step(
        "/v3/election/campaign",
        r#"{"name":"ZWxlY3Rpb24=","lease":"99","value":"djE="}"#,
    ),
    step("/v3/election/leader", r#"{"name":"ZWxlY3Rpb24="}"#),
    step(
        "/v3/election/proclaim",
        r#"{"leader":{"name":"ZWxlY3Rpb24=","key":"ZWxlY3Rpb24vNjM=","rev":"27","lease":"99"},"value":"djI="}"#,
    ),
    step("/v3/election/leader", r#"{"name":"ZWxlY3Rpb24="}"#),
    step("/v3/election/proclaim", "{}"),
    step(
        "/v3/election/resign",
        r#"{"leader":{"name":"ZWxlY3Rpb24=","key":"ZWxlY3Rpb24vNjM=","rev":"27","lease":"99"}}"#,
    ),
    step("/v3/election/leader", r#"{"name":"ZWxlY3Rpb24="}"#),
    // Cluster and maintenance: what does not name the member compares.
    without(
        "/v3/cluster/member/list",
        "",
        &["ID", "name", "peerURLs", "clientURLs"],
    ),
    step("/v3/cluster/member/remove", r#"{"ID":"1"}"#),
    step("/v3/cluster/member/add", r#"{"peerURLs":["not a url"]}"#),
    step("/v3/maintenance/alarm", r#"{"action":"GET"}"#),
    without(
        "/v3/maintenance/status",
        "",
        &[
            "version",
            "dbSize",
            "dbSizeInUse",
            "leader",
            "raftIndex",
            "raftAppliedIndex",
            "raftTerm",
        ],
    ),
    without("/v3/maintenance/defragment", "", &[]),
    // Bad requests: etcd's status and code; unknown fields are ignored.
    step("/v3/kv/range", r#"{"key":"YQ==","no_such_field":1}"#),
    step("/v3/kv/range", ""),
    code("/v3/kv/range", "{nope"),
    code("/v3/kv/range", "[]"),
    code("/v3/kv/range", r#"{"key":"not base64!"}"#),
    code("/v3/kv/range", r#"{"key":"YQ==","sort_order":"SIDEWAYS"}"#),
    code("/v3/kv/range", r#"{"key":"YQ==","limit":"x"}"#),
    // Paths: unknown under /v3/, and prefixes etcd 3.4 does not serve.
    step("/v3/kv/nope", "{}"),
    step("/v3/maintenance/hashkv", "{}"),
    step("/v3alpha/kv/range", r#"{"key":"YQ=="}"#),
];

/// Drop the fields that name the cluster, the member and the raft term, and `drop`.
fn normalize(v: &mut Value, drop: &[&str]) {
    match v {
        Value::Object(m) => {
            for k in ["cluster_id", "member_id", "raft_term"].iter().chain(drop) {
                m.remove(*k);
            }
            m.values_mut().for_each(|v| normalize(v, drop));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| normalize(v, drop)),
        _ => {}
    }
}

/// What must agree of an answer, under `check`.
fn essence(r: &Reply, check: Check) -> String {
    let content_type = r.header("content-type").unwrap_or_default();
    let grpc = r.header("grpc-metadata-content-type").unwrap_or_default();
    let body = match serde_json::from_str::<Value>(&r.body) {
        Ok(mut v) => match check {
            Check::Code => v["code"].to_string(),
            Check::Same => {
                normalize(&mut v, &[]);
                v.to_string()
            }
            Check::Without(drop) => {
                normalize(&mut v, drop);
                v.to_string()
            }
        },
        Err(_) => r.body.clone(),
    };
    format!("{} [{content_type}] [{grpc}] {body}", r.status)
}

#[test]
fn the_json_gateway_answers_as_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("m"), &[]);
    let mut diffs = Vec::new();
    for (i, s) in STEPS.iter().enumerate() {
        let theirs = essence(&post(&format!("{}{}", etcd.url, s.path), s.body), s.check);
        let ours = essence(&post(&format!("{}{}", member.url, s.path), s.body), s.check);
        if theirs != ours {
            diffs.push(format!(
                "step {i}: POST {} {}\n  etcd:   {theirs}\n  etcdrs: {ours}",
                s.path, s.body
            ));
        }
    }
    // Size limits are the gRPC message's (not the JSON body's): a value over
    // --max-request-bytes is etcd's "request is too large", a message over the gRPC limit
    // the gRPC server's own refusal (429).
    for value_len in [1_600_000usize, 3_000_000] {
        use base64::Engine as _;
        let value = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; value_len]);
        let body = format!(r#"{{"key":"Ymln","value":"{value}"}}"#);
        let theirs = essence(
            &post(&format!("{}/v3/kv/put", etcd.url), &body),
            Check::Same,
        );
        let ours = essence(
            &post(&format!("{}/v3/kv/put", member.url), &body),
            Check::Same,
        );
        if theirs != ours {
            diffs.push(format!(
                "a {value_len}-byte value\n  etcd:   {theirs}\n  etcdrs: {ours}"
            ));
        }
    }
    // Another method on a gateway path: 405, as etcd.
    for url in [&etcd.url, &member.url] {
        let r = try_http("GET", &format!("{url}/v3/kv/range"), &[]).unwrap();
        assert_eq!(r.status, 405, "{url}: {r:?}");
        assert_eq!(r.body, "Method Not Allowed\n");
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// The first `n` lines of a streamed answer (a watch or keep-alive), normalized.
fn stream_lines(url: &str, body: &str, n: usize) -> Vec<String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_read(std::time::Duration::from_secs(10))
        .build();
    let resp = agent
        .post(url)
        .send_string(body)
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(resp.into_reader()).lines() {
        let line = line.unwrap_or_else(|e| panic!("{url}: after {lines:?}: {e}"));
        let mut v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{url}: {line:?}: {e}"));
        normalize(&mut v, &[]);
        lines.push(v.to_string());
        if lines.len() == n {
            break;
        }
    }
    lines
}

/// A watch stream's answers by watch id, in order: the order of different watchers'
/// answers is the server's own (etcd sends a replayed history after the next requests'
/// answers, etcdrs before).
fn by_watch(lines: &[String]) -> std::collections::BTreeMap<i64, Vec<String>> {
    let mut by = std::collections::BTreeMap::<i64, Vec<String>>::new();
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["result"]["watch_id"]
            .as_str()
            .map_or(0, |s| s.parse().unwrap());
        by.entry(id).or_default().push(line.clone());
    }
    by
}

#[test]
fn gateway_streams_answer_as_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("m"), &[]);
    let mut seen = Vec::new();
    for url in [&etcd.url, &member.url] {
        // History to replay: revisions 2 to 4.
        post(
            &format!("{url}/v3/kv/put"),
            r#"{"key":"dw==","value":"MQ=="}"#,
        );
        post(
            &format!("{url}/v3/kv/put"),
            r#"{"key":"dw==","value":"Mg=="}"#,
        );
        post(&format!("{url}/v3/kv/deleterange"), r#"{"key":"dw=="}"#);
        post(
            &format!("{url}/v3/lease/grant"),
            r#"{"TTL":"60","ID":"77"}"#,
        );
        // Two watchers in one body (one by id, one from an old revision with prev_kv), a
        // progress request; then the keep-alive stream, and a lease that is gone (TTL 0).
        let watch = stream_lines(
            &format!("{url}/v3/watch"),
            r#"{"create_request":{"key":"dw==","start_revision":"2","prev_kv":true}}
               {"create_request":{"key":"eA==","watch_id":"7"}} {"progress_request":{}}"#,
            4,
        );
        let keep = stream_lines(
            &format!("{url}/v3/lease/keepalive"),
            r#"{"ID":"77"}{"ID":77}{"ID":"78"}"#,
            3,
        );
        let beta = stream_lines(
            &format!("{url}/v3beta/watch"),
            r#"{"create_request":{"key":"dw==","start_revision":"4"}}"#,
            2,
        );
        seen.push((by_watch(&watch), keep, beta));
    }
    assert_eq!(seen[0], seen[1], "etcd (left) and etcdrs (right) differ");
    // The history replayed in one answer, after the request body had ended.
    assert!(seen[1].0[&0][1].contains("DELETE"), "{:?}", seen[1].0);
}

#[test]
fn a_gateway_watch_sees_writes_made_after_it_started() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("m"), &[]);
    let url = member.url.clone();
    let seen = std::sync::Arc::new(AtomicBool::new(false));
    let done = seen.clone();
    // Writes until the watch has seen one (at most 10 s): the watch may start after any of
    // them.
    let writer = std::thread::spawn(move || {
        for _ in 0..200 {
            if done.load(Ordering::Relaxed) {
                return;
            }
            post(
                &format!("{url}/v3/kv/put"),
                r#"{"key":"bGl2ZQ==","value":"MQ=="}"#,
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    let lines = stream_lines(
        &format!("{}/v3/watch", member.url),
        r#"{"create_request":{"key":"bGl2ZQ=="}}"#,
        2,
    );
    seen.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(lines[0].contains(r#""created":true"#), "{lines:?}");
    assert!(lines[1].contains(r#""key":"bGl2ZQ==""#), "{lines:?}");
}

/// examples/curl/gateway.sh (the README's gateway walkthrough) runs through against a member.
#[test]
fn the_gateway_walkthrough_runs() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("m"), &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/curl/gateway.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(&member.url)
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = [
        r#""kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}]"#,
        r#""succeeded":true"#,
        r#""TTL":"30""#,
        r#""created":true"#,
        r#""events":[{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"4"}}]"#,
        r#""raftIndex""#,
    ];
    for expected in expected {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
}
