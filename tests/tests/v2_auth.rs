//! v2 auth against real etcd 3.4 (v2 API enabled): the same /v2/auth and /v2/keys requests,
//! as anonymous, as users and as root, to a fresh etcd and a fresh etcdrs; status, body,
//! X-Etcd-Index and the headers compared exactly (auth records live in the v2 store, so
//! indices move alike). Then etcdctl v2's user, role and auth commands.

use etcdrs_tests::{etcdctl, Etcd, Member};
use std::time::Duration;

/// One request: method, path, body (JSON for /v2/auth, a form for /v2/keys), user:password.
struct Step(
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    body: String,
    etcd_index: Option<String>,
    content_type: Option<String>,
    allow: Option<String>,
    has_cluster_id: bool,
    has_raft_index: bool,
}

fn send(base: &str, step: &Step) -> Seen {
    use base64::Engine as _;
    let Step(method, path, body, user) = step;
    let mut req = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
        .request(method, &format!("{base}{path}"));
    if let Some(u) = user {
        let token = base64::engine::general_purpose::STANDARD.encode(u);
        req = req.set("Authorization", &format!("Basic {token}"));
    }
    if (path.starts_with("/v2/keys") || path.starts_with("/mod/")) && !body.is_empty() {
        req = req.set("Content-Type", "application/x-www-form-urlencoded");
    }
    let r = match if body.is_empty() {
        req.call()
    } else {
        req.send_string(body)
    } {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    Seen {
        status: r.status(),
        etcd_index: r.header("X-Etcd-Index").map(String::from),
        content_type: r.header("Content-Type").map(String::from),
        allow: r.header("Allow").map(String::from),
        has_cluster_id: r.header("X-Etcd-Cluster-Id").is_some(),
        has_raft_index: r.header("X-Raft-Index").is_some(),
        body: r.into_string().unwrap_or_default(),
    }
}

const ROOT: Option<&str> = Some("root:rootpw");
const ALICE: Option<&str> = Some("alice:alicepw");

const STEPS: &[Step] = &[
    Step("GET", "/v2/auth/enable", "", None),
    Step("PUT", "/v2/auth/enable", "", None),
    Step("GET", "/v2/auth/users", "", None),
    Step("GET", "/v2/auth/roles", "", None),
    Step("POST", "/v2/auth/roles", "", None),
    Step("PUT", "/v2/auth/users/root", r#"{"user":"root"}"#, None),
    Step(
        "PUT",
        "/v2/auth/users/root",
        r#"{"user":"other","password":"x"}"#,
        None,
    ),
    Step("PUT", "/v2/auth/users/root", "not json", None),
    Step(
        "PUT",
        "/v2/auth/users/root",
        r#"{"user":"root","password":"rootpw"}"#,
        None,
    ),
    Step(
        "PUT",
        "/v2/auth/users/root",
        r#"{"user":"root","password":"rootpw"}"#,
        None,
    ),
    Step("GET", "/v2/auth/users/root", "", None),
    Step("GET", "/v2/auth/users/nobody", "", None),
    Step("GET", "/v2/auth/roles/root", "", None),
    Step("GET", "/v2/auth/roles/guest", "", None),
    Step("PUT", "/v2/auth/roles/root", r#"{"role":"root"}"#, None),
    Step("PUT", "/v2/keys/a", "value=1", None),
    Step("PUT", "/v2/auth/enable", "", None),
    Step("GET", "/v2/auth/enable", "", None),
    Step("PUT", "/v2/auth/enable", "", ROOT),
    Step("GET", "/v2/auth/roles", "", None),
    Step("GET", "/v2/auth/roles", "", ROOT),
    Step("GET", "/v2/auth/roles", "", Some("root:wrong")),
    Step("GET", "/v2/keys/a", "", None),
    Step("PUT", "/v2/keys/a", "value=2", ROOT),
    Step("PUT", "/v2/keys/a", "value=3", Some("root:wrong")),
    Step("PUT", "/v2/keys/a", "value=3", Some("nobody:x")),
    Step(
        "PUT",
        "/v2/auth/roles/reader",
        r#"{"role":"reader","permissions":{"kv":{"read":["/pub/*"],"write":["/w"]}}}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/roles/reader",
        r#"{"role":"reader","permissions":{"kv":{"read":["/pub/*"]}}}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/roles/reader",
        r#"{"role":"reader","grant":{"kv":{"read":["/x"]}},"revoke":{"kv":{"write":["/w"]}}}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/roles/reader",
        r#"{"role":"reader","grant":{"kv":{"read":["/x"]}}}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/roles/reader",
        r#"{"role":"reader","revoke":{"kv":{"read":["/nope"]}}}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/roles/nosuch",
        r#"{"role":"nosuch","grant":{"kv":{"read":["/x"]}}}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/roles/reader",
        r#"{"role":"reader","permissions":{"kv":{"read":["/y"]}},"grant":{"kv":{"read":["/z"]}}}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/users/alice",
        r#"{"user":"alice","password":"alicepw","roles":["reader"]}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/users/bob",
        r#"{"user":"bob","password":"bobpw","grant":["reader"]}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/users/bob",
        r#"{"user":"bob","password":"bobpw"}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/users/bob",
        r#"{"user":"bob","grant":["reader"]}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/users/bob",
        r#"{"user":"bob","grant":["reader"]}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/users/bob",
        r#"{"user":"bob","revoke":["nosuch"]}"#,
        ROOT,
    ),
    Step(
        "PUT",
        "/v2/auth/users/bob",
        r#"{"user":"bob","roles":["x"],"revoke":["reader"]}"#,
        ROOT,
    ),
    Step("PUT", "/v2/auth/users/bob", r#"{"user":"bob"}"#, ROOT),
    Step(
        "PUT",
        "/v2/auth/users/bob",
        r#"{"user":"bob","revoke":["reader"]}"#,
        ROOT,
    ),
    Step("PUT", "/v2/keys/pub/x", "value=1", ROOT),
    Step("GET", "/v2/keys/pub/x", "", ALICE),
    Step("GET", "/v2/keys/pub", "", ALICE),
    Step("GET", "/v2/keys/pub?recursive=true", "", ALICE),
    Step("GET", "/v2/keys/x", "", ALICE),
    Step("PUT", "/v2/keys/pub/x", "value=2", ALICE),
    Step("GET", "/v2/keys/pub/x", "", Some("bob:bobpw")),
    Step("GET", "/v2/auth/users", "", ROOT),
    Step("GET", "/v2/auth/users/alice", "", ALICE),
    Step("GET", "/v2/auth/users/alice", "", ROOT),
    Step("GET", "/v2/auth/users/alice/extra", "", ROOT),
    Step("PATCH", "/v2/auth/users/alice", "", ROOT),
    Step("DELETE", "/v2/auth/users/bob", "", ROOT),
    Step("DELETE", "/v2/auth/users/bob", "", ROOT),
    Step("DELETE", "/v2/auth/users/root", "", ROOT),
    Step("DELETE", "/v2/auth/roles/root", "", ROOT),
    Step("DELETE", "/v2/auth/roles/nosuch", "", ROOT),
    Step("PUT", "/v2/auth/roles/reader", r#"{"role":"reader"}"#, ROOT),
    // Guest: what a request without credentials may do.
    Step("DELETE", "/v2/auth/roles/guest", "", ROOT),
    Step("GET", "/v2/keys/pub/x", "", None),
    Step(
        "PUT",
        "/v2/auth/roles/guest",
        r#"{"role":"guest","permissions":{"kv":{"read":["/pub/*"],"write":[]}}}"#,
        ROOT,
    ),
    Step("GET", "/v2/keys/pub/x", "", None),
    Step("GET", "/v2/keys/pub?recursive=true", "", None),
    Step("GET", "/v2/keys/a", "", None),
    Step("PUT", "/v2/members/1234", r#"{"peerURLs":[]}"#, None),
    Step("DELETE", "/v2/auth/enable", "", ALICE),
    Step("DELETE", "/v2/auth/enable", "", ROOT),
    Step("DELETE", "/v2/auth/enable", "", ROOT),
    Step("GET", "/v2/keys/a", "", None),
    Step("DELETE", "/v2/auth/users/root", "", None),
    Step("GET", "/v2/auth/users", "", None),
];

#[test]
fn v2_auth_answers_as_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(dir.path(), &[]);
    let mut differ = Vec::new();
    for step in STEPS {
        let (a, b) = (send(&etcd.url, step), send(&ours.url, step));
        if a != b {
            differ.push(format!(
                "{} {} {:?} as {:?}\n  etcd:   {a:?}\n  etcdrs: {b:?}",
                step.0, step.1, step.2, step.3
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

/// etcdctl v2's user, role and auth commands, and its --username, against both.
#[test]
fn etcdctl_v2_auth_works_as_against_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(dir.path(), &[]);
    let steps: &[&[&str]] = &[
        &["auth", "enable"],
        &["user", "add", "root:rootpw"],
        &["auth", "enable"],
        &["set", "/k", "v"],
        &["--username", "root:rootpw", "set", "/k", "v"],
        &["--username", "root:rootpw", "role", "add", "app"],
        &[
            "--username",
            "root:rootpw",
            "role",
            "grant",
            "app",
            "--path",
            "/app/*",
            "--readwrite",
        ],
        &["--username", "root:rootpw", "role", "get", "app"],
        &["--username", "root:rootpw", "user", "add", "ann:annpw"],
        &[
            "--username",
            "root:rootpw",
            "user",
            "grant",
            "ann",
            "--roles",
            "app",
        ],
        &["--username", "root:rootpw", "user", "get", "ann"],
        &["--username", "root:rootpw", "user", "list"],
        &["--username", "root:rootpw", "role", "list"],
        &["--username", "ann:annpw", "set", "/app/x", "1"],
        &["--username", "ann:annpw", "get", "/app/x"],
        &["--username", "ann:annpw", "set", "/other", "1"],
        &["--username", "ann:wrong", "get", "/app/x"],
        &[
            "--username",
            "root:rootpw",
            "role",
            "revoke",
            "app",
            "--path",
            "/app/*",
            "--write",
        ],
        &["--username", "ann:annpw", "set", "/app/x", "2"],
        &[
            "--username",
            "root:rootpw",
            "user",
            "revoke",
            "ann",
            "--roles",
            "app",
        ],
        &["--username", "root:rootpw", "user", "remove", "ann"],
        &["--username", "root:rootpw", "role", "remove", "app"],
        &["--username", "root:rootpw", "auth", "disable"],
        &["get", "/k"],
    ];
    let mut differ = Vec::new();
    for args in steps {
        let (a, b) = (etcdctl(&etcd.url, args), etcdctl(&ours.url, args));
        let b = (b.0, b.1.replace(&ours.url, &etcd.url));
        if a != b {
            differ.push(format!(
                "etcdctl {args:?}\n  etcd:   {a:?}\n  etcdrs: {b:?}"
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

/// Every HTTP route with v2 auth on and no guest role, as a client without credentials, as
/// a user whose role grants only /app/*, and as root: the status each gets.
#[test]
fn every_http_route_answers_anonymous_a_user_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let m = Member::start(dir.path(), &[]);
    let url = m.url.clone();
    let root = Some("root:rootpw");
    for step in [
        Step(
            "PUT",
            "/v2/auth/users/root",
            r#"{"user":"root","password":"rootpw"}"#,
            None,
        ),
        Step("PUT", "/v2/auth/enable", "", root),
        Step(
            "PUT",
            "/v2/auth/roles/app",
            r#"{"role":"app","permissions":{"kv":{"read":["/app/*"],"write":["/app/*"]}}}"#,
            root,
        ),
        Step(
            "PUT",
            "/v2/auth/users/ann",
            r#"{"user":"ann","password":"annpw","roles":["app"]}"#,
            root,
        ),
        Step("DELETE", "/v2/auth/roles/guest", "", root),
        Step("PUT", "/v2/keys/secret", "value=s", root),
    ] {
        let s = send(&url, &step);
        assert!(
            matches!(s.status, 200 | 201),
            "{} {}: {s:?}",
            step.0,
            step.1
        );
    }
    // (method, path, form, [anonymous, ann, root]).
    let routes: &[(&str, &str, &str, [u16; 3])] = &[
        ("GET", "/v2/keys/secret", "", [401, 401, 200]),
        ("PUT", "/v2/keys/secret", "value=t", [401, 401, 200]),
        ("GET", "/v2/keys/app/x", "", [401, 404, 404]),
        ("PUT", "/v2/keys/app/x", "value=1", [401, 201, 200]),
        // A recursive read needs a prefix pattern that covers the directory's own key.
        ("GET", "/v2/keys/app?recursive=true", "", [401, 401, 200]),
        ("GET", "/v2/keys/app/?recursive=true", "", [401, 200, 200]),
        ("GET", "/v2/keys/?recursive=true", "", [401, 401, 200]),
        ("DELETE", "/v2/keys/app/x", "", [401, 200, 404]),
        ("GET", "/v2/stats/self", "", [200, 200, 200]),
        ("GET", "/v2/stats/store", "", [200, 200, 200]),
        ("GET", "/v2/stats/leader", "", [200, 200, 200]),
        ("GET", "/v2/members", "", [200, 200, 200]),
        (
            "PUT",
            "/v2/members/1234",
            r#"{"peerURLs":["http://127.0.0.1:1"]}"#,
            [401, 401, 415],
        ),
        ("GET", "/v2/machines", "", [200, 200, 200]),
        ("GET", "/version", "", [200, 200, 200]),
        ("GET", "/health", "", [200, 200, 200]),
        ("GET", "/metrics", "", [200, 200, 200]),
        ("GET", "/mod/dashboard/", "", [200, 200, 200]),
        ("GET", "/mod/v2/lock/l?field=index", "", [200, 200, 200]),
        ("POST", "/mod/v2/lock/l", "ttl=5&timeout=1", [401, 401, 200]),
        ("PUT", "/mod/v2/leader/c", "ttl=5&name=me", [401, 401, 200]),
        ("GET", "/v2/auth/enable", "", [200, 200, 200]),
        ("GET", "/v2/auth/users", "", [401, 401, 200]),
        ("GET", "/v2/auth/roles/app", "", [401, 401, 200]),
        (
            "PUT",
            "/v2/auth/roles/more",
            r#"{"role":"more"}"#,
            [401, 401, 201],
        ),
        ("DELETE", "/v2/auth/enable", "", [401, 401, 200]),
    ];
    let mut wrong = Vec::new();
    for (method, path, form, want) in routes {
        // Auth is on for every route but the last, which turns it off as root.
        for (i, who) in [None, Some("ann:annpw"), root].into_iter().enumerate() {
            let got = send(&url, &Step(method, path, form, who));
            if got.status != want[i] {
                wrong.push(format!(
                    "{method} {path} as {who:?}: want {}, got {} {}",
                    want[i], got.status, got.body
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
