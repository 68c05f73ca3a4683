//! The lock and leader modules (/mod/v2/lock, /mod/v2/leader): the spec's answers over real
//! HTTP, the same through the in-process and HTTP clients, mutual exclusion, FIFO order, TTL
//! hand-over, renew, timeouts, and a 3-member cluster across a kill -9 of its leader.
//! Every wait is bounded.

use etcdrs_core::{Client, Config, ErrorCode, GetOptions, LockField, LockHolder, Node};
use etcdrs_tests::cluster::Cluster;
use etcdrs_tests::{eventually, get, http};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn node(dir: &tempfile::TempDir) -> Node {
    Node::start(Config::ephemeral("lock", dir.path().join("lock"))).expect("start")
}

fn http_client(n: &Node) -> Client {
    Client::http(n.client_urls(), Some(Duration::from_secs(10))).unwrap()
}

/// An async wait that must end within `secs`.
async fn within<T>(secs: u64, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {secs}s"))
}

/// How many requests (held or waiting) lock `name` has, as the store shows them.
async fn requests(c: &Client, name: &str) -> usize {
    match c
        .get_with(
            &format!("/_etcd/mod/lock/{name}"),
            GetOptions {
                quorum: true,
                ..Default::default()
            },
        )
        .await
    {
        Ok(r) => r.event.node.nodes.len(),
        Err(e) if e.code == ErrorCode::KeyNotFound => 0,
        Err(e) => panic!("listing lock {name}: {e}"),
    }
}

/// Wait until lock `name` has `n` requests.
async fn wait_requests(c: &Client, name: &str, n: usize) {
    within(10, "lock requests", async {
        while requests(c, name).await != n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

fn assert_error(r: &etcdrs_tests::Reply, status: u16, code: u64, cause: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    let j = r.json();
    assert_eq!(j["errorCode"], code, "{}", r.body);
    assert_eq!(
        j["message"].as_str().unwrap(),
        ErrorCode::from_code(code as u32).unwrap().message()
    );
    assert_eq!(j["cause"].as_str(), cause, "{}", r.body);
}

#[test]
fn the_spec_curl_examples_give_the_spec_answers() {
    let dir = tempfile::tempdir().unwrap();
    let n = node(&dir);
    let lock = format!("{}/mod/v2/lock/mylock", n.client_urls()[0]);

    // Acquire: the lock index as plain text.
    let r = http("POST", &lock, &[("ttl", "20")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let index: u64 = r.body.parse().expect("a lock index");
    assert_error(&http("POST", &lock, &[]), 400, 202, Some("Acquire"));
    assert_error(
        &http("POST", &lock, &[("ttl", "x")]),
        400,
        202,
        Some("Acquire"),
    );
    assert_error(
        &http("POST", &lock, &[("ttl", "5"), ("timeout", "soon")]),
        400,
        205,
        Some("Acquire"),
    );

    // Retrieve: value by default, index on request, 209 for anything else.
    let idx = index.to_string();
    assert_eq!(http("GET", &lock, &[("field", "index")]).body, idx);
    assert_eq!(http("GET", &lock, &[]).body, "");
    assert_error(
        &http("GET", &lock, &[("field", "ttl")]),
        400,
        209,
        Some("Get"),
    );

    // Renew.
    let r = http("PUT", &lock, &[("index", &idx), ("ttl", "20")]);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_error(
        &http("PUT", &lock, &[("ttl", "20")]),
        400,
        207,
        Some("Renew"),
    );
    let missing = http("PUT", &lock, &[("index", "999999"), ("ttl", "20")]);
    assert_error(&missing, 404, 100, None);
    assert!(missing.json()["index"].as_u64().unwrap() >= index);
    assert_error(
        &http("PUT", &lock, &[("index", &idx)]),
        400,
        202,
        Some("Renew"),
    );
    assert_error(
        &http("PUT", &lock, &[("index", &idx), ("ttl", "soon")]),
        400,
        202,
        Some("Renew"),
    );

    // Release.
    assert_error(&http("DELETE", &lock, &[]), 400, 207, Some("Release"));
    assert_error(
        &http("DELETE", &lock, &[("index", &idx), ("value", "x")]),
        400,
        208,
        Some("Release"),
    );
    assert_error(
        &http("DELETE", &lock, &[("index", "999999")]),
        404,
        100,
        None,
    );
    assert_error(
        &http("DELETE", &lock, &[("value", "nobody")]),
        404,
        100,
        None,
    );
    let r = http("DELETE", &lock, &[("index", &idx)]);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(http("GET", &lock, &[("field", "index")]).body, "");
    assert_error(&http("DELETE", &lock, &[("index", &idx)]), 404, 100, None);
    assert_eq!(http("PATCH", &lock, &[]).status, 405);

    // The leader module.
    let leader = format!("{}/mod/v2/leader/myclustername", n.client_urls()[0]);
    let r = http(
        "PUT",
        &leader,
        &[("ttl", "300"), ("name", "foo.mydomain.com")],
    );
    assert_eq!(r.status, 200);
    let leader_index: u64 = r.body.parse().expect("a lock index");
    assert!(leader_index > index);
    // Setting it again keeps the leadership (and its index).
    let again = http(
        "PUT",
        &leader,
        &[("ttl", "300"), ("name", "foo.mydomain.com")],
    );
    assert_eq!((again.status, again.body.clone()), (200, r.body.clone()));
    assert_eq!(http("GET", &leader, &[]).body, "foo.mydomain.com");
    assert_error(
        &http("PUT", &leader, &[("ttl", "300")]),
        400,
        206,
        Some("Set"),
    );
    assert_error(
        &http("PUT", &leader, &[("name", "bar")]),
        400,
        202,
        Some("Acquire"),
    );
    assert_error(&http("DELETE", &leader, &[]), 400, 206, Some("Set"));
    assert_error(&http("DELETE", &leader, &[("name", "bar")]), 404, 100, None);
    let r = http("DELETE", &leader, &[("name", "foo.mydomain.com")]);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let r = http("GET", &leader, &[]);
    assert_eq!((r.status, r.body.as_str()), (200, ""));

    // The requests live in a hidden directory: a listing of / does not show them.
    let root = get(&format!("{}/v2/keys/", n.client_urls()[0])).json();
    assert!(root["node"]["nodes"].is_null(), "{root}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_and_http_clients_answer_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let n = node(&dir);
    for (i, c) in [n.client(), http_client(&n)].into_iter().enumerate() {
        let name = format!("same{i}");
        let first = c.lock_acquire(&name, 20, Some("me"), None).await.unwrap();
        // Acquiring again with the holder's value renews it and answers the same index.
        assert_eq!(
            c.lock_acquire(&name, 20, Some("me"), Some(0))
                .await
                .unwrap(),
            first
        );
        assert_eq!(
            c.lock_retrieve(&name, LockField::Index).await.unwrap(),
            first.to_string()
        );
        assert_eq!(
            c.lock_retrieve(&name, LockField::Value).await.unwrap(),
            "me"
        );
        c.lock_renew(&name, LockHolder::Index(first), 30)
            .await
            .unwrap();
        c.lock_renew(&name, LockHolder::Value("me"), 30)
            .await
            .unwrap();
        let codes = [
            c.lock_renew(&name, LockHolder::Index(first + 1000), 5)
                .await,
            c.lock_renew(&name, LockHolder::Value(""), 5).await,
            c.lock_release(&name, LockHolder::Value("someone")).await,
            c.lock_acquire(&name, 5, None, Some(0)).await.map(|_| ()),
            c.lock_acquire("", 5, None, None).await.map(|_| ()),
            c.set_leader(&name, "", 5, None).await.map(|_| ()),
            c.delete_leader(&name, "").await,
        ]
        .map(|r| r.unwrap_err().code);
        assert_eq!(
            codes,
            [
                ErrorCode::KeyNotFound,
                ErrorCode::IndexOrValueRequired,
                ErrorCode::KeyNotFound,
                ErrorCode::Timeout,
                ErrorCode::InvalidArgument,
                ErrorCode::NameRequired,
                ErrorCode::NameRequired,
            ],
            "client {i}"
        );
        c.lock_release(&name, LockHolder::Value("me"))
            .await
            .unwrap();
        assert_eq!(c.lock_retrieve(&name, LockField::Index).await.unwrap(), "");

        let leader = format!("cluster{i}");
        let idx = c.set_leader(&leader, "a", 30, None).await.unwrap();
        assert_eq!(c.set_leader(&leader, "a", 30, None).await.unwrap(), idx);
        assert_eq!(c.get_leader(&leader).await.unwrap(), "a");
        // Another candidate waits while "a" leads, and takes over when it steps down.
        let other = c.clone();
        let leader2 = leader.clone();
        let b = tokio::spawn(async move { other.set_leader(&leader2, "b", 30, None).await });
        wait_requests(&c, &leader, 2).await;
        assert_eq!(c.get_leader(&leader).await.unwrap(), "a");
        c.delete_leader(&leader, "a").await.unwrap();
        let b_idx = within(10, "b becomes leader", b).await.unwrap().unwrap();
        assert!(b_idx > idx);
        assert_eq!(c.get_leader(&leader).await.unwrap(), "b");
        c.delete_leader(&leader, "b").await.unwrap();
        assert_eq!(c.get_leader(&leader).await.unwrap(), "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_two_clients_ever_hold_the_lock_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let n = node(&dir);
    n.client().set("/counter", "0", None).await.unwrap();
    let holders = Arc::new(AtomicUsize::new(0));
    let last_index = Arc::new(Mutex::new(0u64));
    const CLIENTS: usize = 6;
    const ROUNDS: usize = 5;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            // Half in-process, half over HTTP: both contend for the same lock.
            let c = if i % 2 == 0 {
                n.client()
            } else {
                http_client(&n)
            };
            let (holders, last_index) = (holders.clone(), last_index.clone());
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    let index = c.lock_acquire("counter", 30, None, None).await.unwrap();
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    {
                        // The lock index is a fencing token: every holder's is larger.
                        let mut last = last_index.lock().unwrap();
                        assert!(index > *last, "index {index} after {}", *last);
                        *last = index;
                    }
                    // Read, pause, write back: a second holder in between would make the
                    // compare-and-swap fail or a count go missing.
                    let r = c.get("/counter").await.unwrap();
                    let v: u64 = r.event.node.value.unwrap().parse().unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    c.compare_and_swap(
                        "/counter",
                        &(v + 1).to_string(),
                        None,
                        Some(r.event.node.modified_index),
                        None,
                    )
                    .await
                    .unwrap();
                    assert_eq!(holders.fetch_sub(1, Ordering::SeqCst), 1);
                    c.lock_release("counter", LockHolder::Index(index))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        within(60, "contending clients", t).await.unwrap();
    }
    let total = n.client().get("/counter").await.unwrap().event.node.value;
    assert_eq!(total, Some((CLIENTS * ROUNDS).to_string()));
    assert_eq!(requests(&n.client(), "counter").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_get_the_lock_in_order_of_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let n = node(&dir);
    let c = n.client();
    let holder = c.lock_acquire("fifo", 30, None, None).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for w in 0..4usize {
        // Alternate transports; each waiter arrives after the previous one is queued.
        let wc = if w % 2 == 0 {
            http_client(&n)
        } else {
            c.clone()
        };
        let order = order.clone();
        waiters.push(tokio::spawn(async move {
            let index = wc.lock_acquire("fifo", 30, None, None).await.unwrap();
            order.lock().unwrap().push((w, index));
            tokio::time::sleep(Duration::from_millis(20)).await;
            wc.lock_release("fifo", LockHolder::Index(index))
                .await
                .unwrap();
        }));
        wait_requests(&c, "fifo", w + 2).await;
    }
    assert!(order.lock().unwrap().is_empty(), "nobody gets a held lock");
    c.lock_release("fifo", LockHolder::Index(holder))
        .await
        .unwrap();
    for w in waiters {
        within(20, "waiters", w).await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    assert_eq!(
        order.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert!(order.windows(2).all(|p| p[0].1 < p[1].1), "{order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_holder_loses_the_lock_to_the_next_waiter_and_renew_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let n = node(&dir);
    let c = n.client();
    // A holder that renews keeps the lock past its TTL: a waiter with a timeout gives up.
    let kept = c
        .lock_acquire("ttl", 2, Some("renewer"), None)
        .await
        .unwrap();
    // The waiter's own TTL (1 s) is kept alive while it waits: it keeps its place.
    let waiter = http_client(&n);
    let w = tokio::spawn(async move { waiter.lock_acquire("ttl", 1, None, Some(4)).await });
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        c.lock_renew("ttl", LockHolder::Value("renewer"), 2)
            .await
            .unwrap();
        if !w.is_finished() {
            assert_eq!(requests(&c, "ttl").await, 2, "the waiter is still queued");
        }
    }
    let err = within(10, "timed-out waiter", w)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout);
    assert_eq!(
        c.lock_retrieve("ttl", LockField::Index).await.unwrap(),
        kept.to_string()
    );

    // Now it stops renewing: its TTL runs out and the waiter gets the lock.
    let started = Instant::now();
    let waiter = http_client(&n);
    let w = tokio::spawn(async move { waiter.lock_acquire("ttl", 30, Some("next"), None).await });
    let next = within(15, "hand-over by expiry", w).await.unwrap().unwrap();
    assert!(next > kept);
    assert!(started.elapsed() < Duration::from_secs(12));
    assert_eq!(
        c.lock_retrieve("ttl", LockField::Value).await.unwrap(),
        "next"
    );
    // The old holder has lost it: its renew is refused.
    let lost = c
        .lock_renew("ttl", LockHolder::Index(kept), 2)
        .await
        .unwrap_err();
    assert_eq!(lost.code, ErrorCode::KeyNotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_acquire_times_out_and_withdraws_its_request() {
    let dir = tempfile::tempdir().unwrap();
    let n = node(&dir);
    let c = n.client();
    let held = c.lock_acquire("t", 30, None, None).await.unwrap();
    for client in [c.clone(), http_client(&n)] {
        let started = Instant::now();
        let err = within(
            10,
            "acquire with timeout",
            client.lock_acquire("t", 30, None, Some(1)),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::Timeout);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(5),
            "{took:?}"
        );
        // The abandoned request is deleted, so it never takes the lock for nobody.
        wait_requests(&c, "t", 1).await;
    }
    // A client that goes away while waiting withdraws too.
    let gone = http_client(&n);
    let w = tokio::spawn(async move { gone.lock_acquire("t", 30, None, None).await });
    wait_requests(&c, "t", 2).await;
    w.abort();
    wait_requests(&c, "t", 1).await;
    c.lock_release("t", LockHolder::Index(held)).await.unwrap();
    let next = within(5, "free lock", c.lock_acquire("t", 30, None, Some(0)))
        .await
        .unwrap();
    assert!(next > held);
}

/// The lock on a real 3-member cluster: a holder that vanishes with the leader (kill -9)
/// loses the lock by TTL, and a waiter on another member gets it once a new leader is
/// elected. Every member then agrees on the holder, also the restarted one.
#[test]
fn the_lock_passes_on_across_a_kill_of_the_leader() {
    let mut c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(20));
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let lock = |c: &Cluster, i: usize| format!("{}/mod/v2/lock/db", c.url(i));
    let r = http("POST", &lock(&c, leader), &[("ttl", "2"), ("value", "old")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let held: u64 = r.body.parse().unwrap();
    // The holder keeps its lock alive through the leader until the leader dies.
    let renew_url = lock(&c, leader);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renewer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ =
                    etcdrs_tests::try_http("PUT", &renew_url, &[("value", "old"), ("ttl", "2")]);
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let waiter_url = lock(&c, followers[0]);
    let waiter = std::thread::spawn(move || {
        http(
            "POST",
            &waiter_url,
            &[("ttl", "30"), ("value", "new"), ("timeout", "40")],
        )
    });
    let mut listing = String::new();
    let queued = eventually(Duration::from_secs(10), || {
        let r = get(&format!(
            "{}/v2/keys/_etcd/mod/lock/db?quorum=true",
            c.url(followers[1])
        ));
        listing = r.body.clone();
        (r.json()["node"]["nodes"].as_array().map(Vec::len) == Some(2)).then_some(())
    });
    if queued.is_none() {
        let r = waiter.join().unwrap();
        panic!(
            "the waiter is not queued: {listing}\nwaiter: {} {}\n{}",
            r.status,
            r.body,
            c.logs()
        );
    }
    // Longer than the TTL: only renewals keep the lock with the old holder.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        http("GET", &lock(&c, followers[1]), &[("field", "value")]).body,
        "old"
    );

    c.kill9(leader);
    let r = waiter.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    renewer.join().unwrap();
    assert_eq!(r.status, 200, "{}\n{}", r.body, c.logs());
    let next: u64 = r.body.parse().unwrap();
    assert!(next > held, "{next} after {held}");
    for i in &followers {
        let r = http("GET", &lock(&c, *i), &[("field", "index")]);
        assert_eq!(r.body, next.to_string(), "member {i}");
    }
    c.restart(leader);
    let agreed = eventually(Duration::from_secs(15), || {
        let r = etcdrs_tests::try_http("GET", &lock(&c, leader), &[("field", "value")]).ok()?;
        (r.body == "new").then_some(())
    });
    assert!(
        agreed.is_some(),
        "the restarted member agrees:\n{}",
        c.logs()
    );
}
