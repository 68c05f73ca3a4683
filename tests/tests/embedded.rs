//! The embedding API: members inside this process, and a Client that gives the same answers
//! in-process and over HTTP.

use etcdrs_core::{Client, Config, ErrorCode, GetOptions, KeyResponse, Node, WatchOptions};
use std::time::Duration;

fn node(dir: &tempfile::TempDir, name: &str) -> Node {
    Node::start(Config::ephemeral(name, dir.path().join(name))).expect("start")
}

/// Run the Etcd.jl-style API through a client and record every answer (or error code).
async fn exercise(c: &Client) -> Vec<String> {
    fn show(r: etcdrs_core::Result<KeyResponse>) -> String {
        match r {
            Ok(r) => format!("{} etcd_index={}", r.event.to_json(), r.etcd_index),
            Err(e) => format!("error {} {} index={}", e.code(), e.cause, e.index),
        }
    }
    let mut out = vec![
        show(c.set("/foo/bar", "Hello World", None).await),
        show(
            c.compare_and_swap("/foo/bar", "Goodbye", Some("Hello World"), None, None)
                .await,
        ),
        show(
            c.compare_and_swap("/foo/bar", "x", Some("nope"), None, None)
                .await,
        ),
        show(c.create("/foo/boo", "Hello World", None).await),
        show(c.create("/foo/boo", "again", None).await),
        show(c.create_dir("/fooDir", None).await),
        show(c.update("/foo/boo", "Merhaba", None).await),
        show(c.update("/missing", "x", None).await),
        show(c.update_dir("/fooDir", None).await),
        show(c.get("/foo/bar").await),
        show(
            c.get_with(
                "/foo",
                GetOptions {
                    recursive: true,
                    sorted: true,
                    quorum: true,
                },
            )
            .await,
        ),
        show(c.create_in_order("/queue", "job", None).await),
        show(c.delete("/foo/boo").await),
        show(c.delete_dir("/fooDir", false).await),
        show(c.create("/foo/qux", "bar value", None).await),
        show(
            c.compare_and_delete("/foo/qux", Some("bar value"), None)
                .await,
        ),
        show(c.delete_dir("/foo", true).await),
        show(c.get("/foo").await),
        show(
            c.watch(
                "/foo/bar",
                WatchOptions {
                    wait_index: 4,
                    recursive: false,
                },
            )
            .await,
        ),
        format!(
            "exists={:?}",
            c.exists("/queue").await.map_err(|e| e.code())
        ),
        format!(
            "exists={:?}",
            c.exists("/nothing").await.map_err(|e| e.code())
        ),
    ];
    let ttl = c.set("/t", "v", Some(30)).await.unwrap();
    out.push(format!(
        "ttl={} has_expiration={}",
        ttl.event.node.ttl,
        ttl.event.node.expiration.is_some()
    ));
    let stats = c.stats_store().await.unwrap();
    out.push(format!(
        "sets={} creates={}",
        stats.sets_success, stats.create_success
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_and_http_clients_answer_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (node(&dir, "a"), node(&dir, "b"));
    let local = a.client();
    let remote = Client::http(b.client_urls(), Some(Duration::from_secs(5))).unwrap();
    let (x, y) = (exercise(&local).await, exercise(&remote).await);
    assert_eq!(x.len(), y.len());
    for (l, r) in x.iter().zip(&y) {
        assert_eq!(l, r);
    }
    assert!(x[2].starts_with("error 101 [nope != Goodbye]"), "{}", x[2]);
    assert!(x[17].starts_with("error 100 /foo"), "{}", x[17]);
    assert_eq!(local.machines().await.unwrap(), a.client_urls().to_vec());
    assert_eq!(remote.machines().await.unwrap(), b.client_urls().to_vec());
    assert_eq!(remote.members().await.unwrap()[0].id, b.member_id());
    assert_eq!(local.leader().await.unwrap().id, a.member_id());
    assert_eq!(remote.stats_self().await.unwrap().state, "StateLeader");
    assert_eq!(
        local.stats_leader().await.unwrap().leader,
        format!("{:x}", a.member_id())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_watch_sees_every_change_and_cancels_from_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let n = node(&dir, "w");
    for client in [n.client(), Client::http(n.client_urls(), None).unwrap()] {
        // Start right after the current index so no write can slip in before the first wait.
        let from = client.get("/").await.unwrap().etcd_index + 1;
        let mut stream = client.watch_stream(
            "/jobs",
            WatchOptions {
                wait_index: from,
                recursive: true,
            },
        );
        let cancel = stream.canceller();
        let writer = client.clone();
        let w = tokio::spawn(async move {
            for i in 0..5 {
                writer.set(&format!("/jobs/{i}"), "x", None).await.unwrap();
            }
        });
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let r = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            seen.push(r.event.node.key);
        }
        w.await.unwrap();
        let expected: Vec<String> = (0..5).map(|i| format!("/jobs/{i}")).collect();
        assert_eq!(seen, expected);
        // Cancel from another task while the stream waits.
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.cancel();
        });
        let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap();
        assert!(end.is_none(), "cancelled");
        t.join().unwrap();
        client.delete_dir("/jobs", true).await.unwrap();
    }
}

/// A watch from "now" polled with a timeout (as the C ABI and the Julia package poll it):
/// a poll that gives up keeps the wait, so a change made before the next poll is seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_polled_with_timeouts_misses_no_change_between_polls() {
    let dir = tempfile::tempdir().unwrap();
    let n = node(&dir, "p");
    for (i, client) in [n.client(), Client::http(n.client_urls(), None).unwrap()]
        .into_iter()
        .enumerate()
    {
        let key = format!("/polled/{i}");
        let mut stream = client.watch_stream(&key, WatchOptions::default());
        for _ in 0..3 {
            let idle = tokio::time::timeout(Duration::from_millis(20), stream.next()).await;
            assert!(idle.is_err(), "no change yet");
        }
        client.set(&key, "between polls", None).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("the change made between polls")
            .unwrap()
            .unwrap();
        assert_eq!(r.event.node.value.as_deref(), Some("between polls"));
    }
}

#[test]
fn stop_is_idempotent_and_a_restart_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut n = node(&dir, "s");
    rt.block_on(n.client().set("/k", "v", None)).unwrap();
    let c = n.client();
    n.stop();
    n.stop();
    let err = rt
        .block_on(c.get_with(
            "/k",
            GetOptions {
                quorum: true,
                ..Default::default()
            },
        ))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Stopped);
    // A local read does not serve the stopped member's stale store either.
    let err = rt.block_on(c.get("/k")).unwrap_err();
    assert_eq!(err.code, ErrorCode::Stopped);
    let n2 = node(&dir, "s");
    assert_eq!(
        rt.block_on(n2.client().get("/k"))
            .unwrap()
            .event
            .node
            .value
            .as_deref(),
        Some("v")
    );
    // A second member on a data dir in use is refused; other dirs run side by side.
    let e = Node::start(Config::ephemeral("s", dir.path().join("s")))
        .err()
        .expect("refused");
    assert!(e.cause.contains("in use"), "{}", e.cause);
    let other = node(&dir, "t");
    assert_ne!(other.client_urls(), n2.client_urls());
}

#[test]
fn bad_configs_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::ephemeral("x", dir.path().join("x"));
    c.election_timeout_ms = 200;
    let e = Node::start(c).err().unwrap();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    assert!(e.cause.contains("--election-timeout"), "{}", e.cause);
    let mut c = Config::ephemeral("x", dir.path().join("x"));
    c.listen_client_urls = vec!["not a url".into()];
    assert_eq!(Node::start(c).err().unwrap().code, ErrorCode::InvalidConfig);
    let mut c = Config::ephemeral("x", dir.path().join("x"));
    c.initial_cluster = "other=http://127.0.0.1:2380".into();
    assert!(Node::start(c)
        .err()
        .unwrap()
        .cause
        .contains("no member named"));
    // Listed with other peer URLs than it advertises, or two members on one URL: refused
    // with etcd's words.
    let mut c = Config::ephemeral("x", dir.path().join("x"));
    c.initial_cluster = "x=http://127.0.0.1:9999".into();
    c.initial_advertise_peer_urls = vec!["http://127.0.0.1:33380".into()];
    let e = Node::start(c).err().unwrap();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    assert!(
        e.cause.contains("--initial-cluster has x=http://127.0.0.1:9999 but missing from --initial-advertise-peer-urls=http://127.0.0.1:33380"),
        "{}",
        e.cause
    );
    let mut c = Config::ephemeral("x", dir.path().join("x"));
    c.initial_cluster = "x=http://127.0.0.1:2380,y=http://127.0.0.1:2380".into();
    let e = Node::start(c).err().unwrap();
    assert!(e.cause.contains("has duplicate url"), "{}", e.cause);
}

/// Three members in this one process form a cluster through their peer URLs (each behind a
/// proxy, so every port is ephemeral) and replicate what in-process clients write.
#[test]
fn a_three_member_cluster_runs_inside_one_process() {
    use etcdrs_tests::cluster::{member_hex, Network, PeerProxy, TOKEN};
    let dir = tempfile::tempdir().unwrap();
    let net = Network::default();
    let proxies: Vec<PeerProxy> = (0..3).map(|_| PeerProxy::start(&net)).collect();
    let initial = (0..3)
        .map(|i| format!("n{i}={}", proxies[i].url))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| {
            proxies[i].front(&member_hex(&proxies[i].url));
            let mut c = Config::ephemeral(&format!("n{i}"), dir.path().join(format!("n{i}")));
            c.initial_advertise_peer_urls = vec![proxies[i].url.clone()];
            c.initial_cluster = initial.clone();
            c.initial_cluster_token = TOKEN.into();
            let n = Node::start(c).expect("start");
            proxies[i].set_target(&n.peer_urls()[0]);
            n
        })
        .collect();
    for n in &nodes {
        assert!(
            n.wait_ready(Duration::from_secs(20)),
            "{} never joined",
            n.name()
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let w = nodes[0]
            .client()
            .set("/shared", "from n0", None)
            .await
            .unwrap();
        for n in &nodes {
            let got = n
                .client()
                .get_with(
                    "/shared",
                    GetOptions {
                        quorum: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(got.event.node.value.as_deref(), Some("from n0"));
            assert_eq!(got.etcd_index, w.etcd_index);
        }
        let members = nodes[2].client().members().await.unwrap();
        assert_eq!(members.len(), 3);
        assert!(members.iter().all(|m| m.name.starts_with('n')));
    });
    for n in &mut nodes {
        n.stop();
    }
}
