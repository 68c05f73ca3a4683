//! The client port fed arbitrary requests over a real socket (property tests;
//! `scripts/fuzz.sh` runs more cases): methods, paths with any characters, query strings
//! and form bodies with etcd's field names and odd values, JSON bodies for the v3 gateway,
//! odd content types. Every request gets an HTTP answer (or, when it is not HTTP, a closed
//! connection); no answer is a 5xx; a v2 keys error is etcd's JSON; a refused request
//! changes nothing; and the member stays healthy.

use etcdrs_core::{Config, Node};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::sync::OnceLock;
use std::time::Duration;

struct Member {
    node: Node,
    addr: String,
    _dir: tempfile::TempDir,
}

fn member() -> &'static Member {
    static MEMBER: OnceLock<Member> = OnceLock::new();
    MEMBER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(Config::ephemeral("fuzz", dir.path().join("fuzz"))).unwrap();
        assert!(node.wait_ready(Duration::from_secs(20)));
        let addr = node.client_urls()[0]
            .trim_start_matches("http://")
            .to_string();
        Member {
            node,
            addr,
            _dir: dir,
        }
    })
}

/// Paths: etcd's routes (only those that cannot change the membership), with junk after.
fn path() -> impl Strategy<Value = String> {
    let route = prop::sample::select(vec![
        "/v2/keys",
        "/v2/keys/",
        "/v2/keys/fuzz/",
        "/v2/keys/fuzz/a",
        "/v2/keys/_hidden",
        "/v2/stats/self",
        "/v2/stats/store",
        "/v2/stats/leader",
        "/v2/machines",
        "/v2/members",
        "/version",
        "/health",
        "/mod/v2/lock/fuzz",
        "/mod/v2/leader/fuzz",
        "/v3/kv/range",
        "/v3/kv/put",
        "/v3/kv/deleterange",
        "/v3/kv/txn",
        "/v3/lease/grant",
        "/v3/lease/timetolive",
        "/v3/maintenance/status",
        "/v3/watch",
        "/nowhere",
        "",
    ]);
    let tail = prop_oneof![
        Just(String::new()),
        "[a-z0-9/._-]{0,16}",
        "(%[0-9A-Fa-f]{2}|%|[a-z]|/|\\.\\.|//){0,8}",
        "\\PC{0,8}",
    ];
    (route, tail).prop_map(|(r, t)| format!("{r}{t}"))
}

/// Form fields with etcd's names and values that are right, wrong or odd. A TTL, when
/// valid, is long: an expiry during a later case would move the index under it.
fn form() -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        "value",
        "ttl",
        "dir",
        "prevValue",
        "prevIndex",
        "prevExist",
        "recursive",
        "sorted",
        "wait",
        "waitIndex",
        "quorum",
        "stream",
        "refresh",
        "noValueOnSuccess",
        "index",
        "timeout",
        "junk",
    ]);
    let value = prop_oneof![
        Just(String::new()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("0".to_string()),
        Just("1".to_string()),
        Just("99999999".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        "[a-zA-Z0-9%+&=]{0,10}",
    ];
    prop::collection::vec((field, value), 0..5).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| {
                // A wait or a stream would hold the request open; the case is about parsing.
                let v = if matches!(*k, "wait" | "stream") && v.starts_with('t') {
                    "false"
                } else {
                    v.as_str()
                };
                let v = if *k == "ttl" && v.parse::<i64>().is_ok_and(|n| (0..99999999).contains(&n))
                {
                    "99999999"
                } else {
                    v
                };
                format!("{k}={v}")
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn json_body() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{}".to_string()),
        Just(r#"{"key":"Zm9v"}"#.to_string()),
        Just(r#"{"key":"Zm9v","value":"YmFy"}"#.to_string()),
        Just(r#"{"key":"","range_end":"AA=="}"#.to_string()),
        Just(r#"{"key":"!!","limit":"-5"}"#.to_string()),
        Just(r#"{"TTL":"-1"}"#.to_string()),
        Just(r#"{"compare":[{"key":"Zm9v","target":"NOPE"}]}"#.to_string()),
        "\\PC{0,40}",
    ]
}

#[derive(Debug, Clone)]
struct Request {
    method: &'static str,
    path: String,
    query: String,
    content_type: &'static str,
    body: String,
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(vec![
            "GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS",
        ]),
        path(),
        form(),
        prop::sample::select(vec![
            "application/x-www-form-urlencoded",
            "application/json",
            "text/plain",
            "",
        ]),
        prop_oneof![form(), json_body()],
    )
        .prop_map(|(method, path, query, content_type, body)| Request {
            method,
            path,
            query,
            content_type,
            body,
        })
}

impl Request {
    fn bytes(&self, host: &str) -> Vec<u8> {
        let mut head = format!("{} {}", self.method, self.path);
        if !self.query.is_empty() {
            head.push('?');
            head.push_str(&self.query);
        }
        head.push_str(&format!(
            " HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.body.len()
        ));
        if !self.content_type.is_empty() {
            head.push_str(&format!("Content-Type: {}\r\n", self.content_type));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

/// Whether the request target has what HTTP parsers refuse, Go's as well as hyper's: a
/// control byte, a space or DEL (hyper answers a bare 400, Go a 400 with a line of text).
/// `<`, `>`, the backtick and `"` are accepted, as Go accepts them (vendor/http).
fn refused_by_http_parsers(req: &Request) -> bool {
    let bad = |b: u8| b <= 0x20 || b == 0x7f;
    req.path.bytes().any(bad) || req.query.bytes().any(bad)
}

/// The v2 index a quorum read sees.
fn etcd_index(addr: &str) -> u64 {
    let r = etcdrs_tests::http(
        "GET",
        &format!("http://{addr}/v2/keys/"),
        &[("quorum", "true")],
    );
    r.header("X-Etcd-Index").unwrap().parse().unwrap()
}

proptest! {
    // Failing cases are kept beside the test (proptest finds no lib.rs for a file in tests/).
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/fuzz_http.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_request_gets_an_answer_in_etcds_format_and_a_refusal_changes_nothing(req in request()) {
        let m = member();
        let before = etcd_index(&m.addr);
        let text = etcdrs_tests::raw(&m.addr, &req.bytes(&m.addr), Duration::from_secs(5));
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            // Not HTTP enough to answer (hyper closes such a connection); still alive below.
            prop_assert!(text.is_empty(), "a partial answer: {text:?}");
            prop_assert!(m.node.failure().is_none());
            return Ok(());
        };
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        prop_assert!(status < 500, "{status} for {req:?}:\n{text}");
        let keys = req.path == "/v2/keys" || req.path.starts_with("/v2/keys/");
        if status == 400 && body.is_empty() && refused_by_http_parsers(&req) {
            prop_assert_eq!(etcd_index(&m.addr), before);
            return Ok(());
        }
        if keys && (400..500).contains(&status) && status != 405 && req.method != "HEAD" {
            // Chunked or not, the error object is the one JSON line in the body.
            let json = body
                .lines()
                .find(|l| l.starts_with('{'))
                .unwrap_or_else(|| panic!("no JSON in {status} for {req:?}:\n{text}"));
            let e: serde_json::Value = serde_json::from_str(json).unwrap();
            prop_assert!(e["errorCode"].is_u64() && e["message"].is_string(), "{e}");
        }
        if status >= 400 {
            prop_assert_eq!(etcd_index(&m.addr), before, "a refused request changed the store: {:?}", req);
        }
        prop_assert!(m.node.failure().is_none());
    }
}

#[test]
fn the_member_is_healthy_after_the_fuzzing() {
    let m = member();
    let r = etcdrs_tests::get(&format!("http://{}/health", m.addr));
    assert_eq!(r.status, 200, "{}", r.body);
}
