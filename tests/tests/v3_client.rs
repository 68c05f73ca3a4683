//! The Rust client's v3 API gives the same answers in-process and over gRPC: the same
//! sequence against two fresh members, one through each, compared after leaving out the
//! ids that name the member.

use etcdrs_core::pb::etcdserverpb::{
    compare, request_op, CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest,
    LeaseTimeToLiveRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, WatchCreateRequest,
};
use etcdrs_core::{Client, Config, Node, V3Error};

fn b(s: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(s.as_bytes())
}

/// A response with the member's ids and term left out.
fn shown<T: std::fmt::Debug>(r: Result<T, V3Error>) -> String {
    let text = match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {} {}", e.grpc_code(), e.message()),
    };
    let mut out = text;
    for field in ["cluster_id: ", "member_id: ", "raft_term: "] {
        let mut rest = out.as_str();
        let mut kept = String::new();
        while let Some(at) = rest.find(field) {
            let value = &rest[at + field.len()..];
            let digits = value.len() - value.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            kept.push_str(&rest[..at + field.len()]);
            kept.push('_');
            rest = &value[digits..];
        }
        kept.push_str(rest);
        out = kept;
    }
    out
}

async fn exercise(c: &Client) -> Vec<String> {
    let v3 = c.v3();
    let put = |k: &str, v: &str| PutRequest {
        key: b(k),
        value: b(v),
        ..Default::default()
    };
    let mut out = vec![
        shown(v3.put(put("a", "1")).await),
        shown(
            v3.put(PutRequest {
                prev_kv: true,
                ..put("a", "2")
            })
            .await,
        ),
        shown(v3.put(put("b", "3")).await),
        shown(v3.put(put("", "x")).await),
        shown(
            v3.range(RangeRequest {
                key: b("a"),
                range_end: b("z"),
                ..Default::default()
            })
            .await,
        ),
        shown(
            v3.range(RangeRequest {
                key: b("a"),
                revision: 2,
                ..Default::default()
            })
            .await,
        ),
        shown(
            v3.range(RangeRequest {
                key: b("a"),
                range_end: b("z"),
                count_only: true,
                ..Default::default()
            })
            .await,
        ),
        shown(
            v3.range(RangeRequest {
                key: b("a"),
                revision: 99,
                ..Default::default()
            })
            .await,
        ),
    ];
    let cas = TxnRequest {
        compare: vec![Compare {
            key: b("a"),
            target: compare::CompareTarget::Value as i32,
            result: compare::CompareResult::Equal as i32,
            target_union: Some(compare::TargetUnion::Value(b("2"))),
            ..Default::default()
        }],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestPut(put("a", "txn"))),
        }],
        failure: vec![],
    };
    out.push(shown(v3.txn(cas.clone()).await));
    out.push(shown(v3.txn(cas).await));
    let lease = v3.lease_grant(LeaseGrantRequest { ttl: 30, id: 7 }).await;
    out.push(shown(lease));
    out.push(shown(
        v3.lease_grant(LeaseGrantRequest { ttl: 30, id: 7 }).await,
    ));
    out.push(shown(
        v3.put(PutRequest {
            lease: 7,
            ..put("leased", "v")
        })
        .await,
    ));
    out.push(shown(
        v3.lease_time_to_live(LeaseTimeToLiveRequest { id: 7, keys: true })
            .await
            .map(|mut r| {
                r.ttl = 0; // ticks down
                r
            }),
    ));
    out.push(shown(v3.lease_keep_alive(7).await));
    out.push(shown(v3.lease_revoke(7).await));
    out.push(shown(v3.lease_keep_alive(7).await));
    out.push(shown(
        v3.delete_range(DeleteRangeRequest {
            key: b("b"),
            prev_kv: true,
            ..Default::default()
        })
        .await,
    ));
    // A watch from revision 2: the created answer, then the history in order.
    let mut w = v3
        .watch(WatchCreateRequest {
            key: b("a"),
            range_end: b("b"),
            start_revision: 2,
            prev_kv: true,
            ..Default::default()
        })
        .await
        .expect("watch");
    let mut events = 0;
    while events < 3 {
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), w.next())
            .await
            .expect("an answer in time");
        let answer = answer.expect("no error").expect("open");
        events += answer.events.len();
        let mut answer = answer;
        answer.header = None; // its revision follows batching
        out.push(format!("{answer:?}"));
    }
    out.push(shown(
        v3.compact(CompactionRequest {
            revision: 3,
            physical: true,
        })
        .await,
    ));
    out.push(shown(
        v3.compact(CompactionRequest {
            revision: 3,
            physical: false,
        })
        .await,
    ));
    out
}

#[test]
fn v3_in_process_and_over_grpc_answer_alike() {
    let dir = tempfile::tempdir().unwrap();
    let local = Node::start(Config::ephemeral("l", dir.path().join("l"))).expect("start");
    let remote = Node::start(Config::ephemeral("r", dir.path().join("r"))).expect("start");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let over_grpc = Client::http(
        remote.client_urls(),
        Some(std::time::Duration::from_secs(5)),
    )
    .expect("client");
    let (a, b) =
        runtime.block_on(async { (exercise(&local.client()).await, exercise(&over_grpc).await) });
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    // And the answers are the ones etcd gives.
    assert!(a[3].contains("etcdserver: key is not provided"), "{}", a[3]);
    assert!(
        a[6].contains("kvs: [], more: false, count: 2"),
        "count only: {}",
        a[6]
    );
    assert!(
        a[7].contains("required revision is a future revision"),
        "{}",
        a[7]
    );
    assert!(a[8].contains("succeeded: true"), "{}", a[8]);
    assert!(a[9].contains("succeeded: false"), "{}", a[9]);
    assert!(a[11].contains("lease already exists"), "{}", a[11]);
    assert!(
        a[16].contains("ttl: 0"),
        "keep-alive of a revoked lease: {}",
        a[16]
    );
    assert!(
        a.last().unwrap().contains("has been compacted"),
        "{}",
        a.last().unwrap()
    );
}

/// The README's v3 example, as written there.
#[test]
fn the_readme_v3_example_runs() {
    async fn example() -> Result<(), Box<dyn std::error::Error>> {
        use etcdrs_core::pb::etcdserverpb::{PutRequest, RangeRequest};
        use etcdrs_core::{Client, Config, Node};
        let dir = tempfile::tempdir()?;
        let node = Node::start(Config::ephemeral("v3", dir.path().join("v3.etcd")))?;
        let local = node.client(); // in-process
        let put = PutRequest {
            key: "k".into(),
            value: "v".into(),
            ..Default::default()
        };
        let rev = local.v3().put(put).await?.header.unwrap().revision;
        let remote = Client::http(node.client_urls(), None)?; // the same over gRPC
        let got = remote
            .v3()
            .range(RangeRequest {
                key: "k".into(),
                ..Default::default()
            })
            .await?;
        assert_eq!(got.kvs[0].mod_revision, rev);
        Ok(())
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(example()).expect("the example runs");
}

/// A watcher that asks for fragments gets events past --max-request-bytes in parts (each
/// but the last marked `fragment`), in-process and over gRPC alike; one that does not
/// gets them whole.
#[test]
fn large_watch_answers_come_in_fragments_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::ephemeral("f", dir.path().join("f"));
    config.max_request_bytes = 4096;
    let node = Node::start(config).expect("start");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let remote = Client::http(node.client_urls(), None).expect("client");
    runtime.block_on(async {
        let local = node.client();
        for k in ["a", "b", "c"] {
            let put = PutRequest {
                key: b(k),
                value: bytes::Bytes::from(vec![b'x'; 3000]),
                ..Default::default()
            };
            local.v3().put(put).await.expect("put");
        }
        for client in [&local, &remote] {
            for fragment in [true, false] {
                let mut w = client
                    .v3()
                    .watch(WatchCreateRequest {
                        key: b("a"),
                        range_end: b("z"),
                        start_revision: 2,
                        fragment,
                        ..Default::default()
                    })
                    .await
                    .expect("watch");
                let created = w.next().await.unwrap().unwrap();
                assert!(created.created);
                let mut shape = Vec::new();
                let mut events = 0;
                while events < 3 {
                    let r = tokio::time::timeout(std::time::Duration::from_secs(5), w.next())
                        .await
                        .expect("in time")
                        .unwrap()
                        .unwrap();
                    events += r.events.len();
                    shape.push((r.events.len(), r.fragment));
                }
                if fragment {
                    assert_eq!(shape, [(1, true), (1, true), (1, false)]);
                } else {
                    assert_eq!(shape, [(3, false)]);
                }
            }
        }
    });
}

/// A watcher that asks for progress notifications hears the store's revision every
/// --experimental-watch-progress-notify-interval while nothing happens; one that does not
/// hears nothing.
#[test]
fn watchers_that_ask_hear_progress() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::ephemeral("p", dir.path().join("p"));
    config.watch_progress_notify_interval_ms = 200;
    let node = Node::start(config).expect("start");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let remote = Client::http(node.client_urls(), None).expect("client");
    runtime.block_on(async {
        let put = PutRequest {
            key: b("p"),
            value: b("1"),
            ..Default::default()
        };
        remote.v3().put(put).await.expect("put");
        for progress_notify in [true, false] {
            let mut w = remote
                .v3()
                .watch(WatchCreateRequest {
                    key: b("p"),
                    progress_notify,
                    ..Default::default()
                })
                .await
                .expect("watch");
            assert!(w.next().await.unwrap().unwrap().created);
            let mut heard = Vec::new();
            let until = tokio::time::Instant::now() + std::time::Duration::from_millis(900);
            while let Ok(r) = tokio::time::timeout_at(until, w.next()).await {
                heard.push(r.unwrap().unwrap());
            }
            if progress_notify {
                assert!(heard.len() >= 2, "{heard:?}");
                for r in &heard {
                    assert!(r.events.is_empty() && r.watch_id == 0, "{r:?}");
                    assert_eq!(r.header.as_ref().map(|h| h.revision), Some(2));
                }
            } else {
                assert!(heard.is_empty(), "{heard:?}");
            }
        }
    });
}

/// The v3 Lock and Election services (etcd's recipes in the member), in-process and over
/// gRPC: a second locker waits for the first's unlock; the oldest campaigner leads, its
/// proclamations are what `leader` says, and resigning hands over to the next.
#[test]
fn v3_lock_and_election_services() {
    use etcdrs_core::pb::v3electionpb::{CampaignRequest, ProclaimRequest};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(Config::ephemeral("le", dir.path().join("le"))).expect("start");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let remote = Client::http(node.client_urls(), None).expect("client");
    let local = node.client();
    runtime.block_on(async {
        for (first, second) in [(&local, &remote), (&remote, &local)] {
            let lease = |c: &Client| {
                let c = c.clone();
                async move {
                    let grant = LeaseGrantRequest { ttl: 60, id: 0 };
                    c.v3().lease_grant(grant).await.expect("lease").id
                }
            };
            let (l1, l2) = (lease(first).await, lease(second).await);
            let held = first.v3().lock(b("job"), l1).await.expect("lock");
            assert!(held.key.starts_with(b"job/"), "{:?}", held.key);
            let waiting = {
                let second = second.clone();
                tokio::spawn(async move { second.v3().lock(b("job"), l2).await })
            };
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!waiting.is_finished(), "the second locker must wait");
            first.v3().unlock(held.key.clone()).await.expect("unlock");
            let got = tokio::time::timeout(Duration::from_secs(5), waiting)
                .await
                .expect("the second gets the lock")
                .unwrap()
                .expect("lock");
            assert_ne!(got.key, held.key);
            second.v3().unlock(got.key).await.expect("unlock");

            // Election.
            let campaign = |c: &Client, lease: i64, value: &'static str| {
                let c = c.clone();
                async move {
                    c.v3()
                        .campaign(CampaignRequest {
                            name: b("boss"),
                            lease,
                            value: b(value),
                        })
                        .await
                }
            };
            let a = campaign(first, l1, "a")
                .await
                .expect("elected")
                .leader
                .unwrap();
            let mut observer = second.v3().observe(b("boss")).await.expect("observe");
            let mut observed = Vec::new();
            let b_campaign = tokio::spawn(campaign(second, l2, "b"));
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!b_campaign.is_finished(), "b waits while a leads");
            let led = second
                .v3()
                .leader(b("boss"))
                .await
                .expect("leader")
                .kv
                .unwrap();
            assert_eq!(&led.value[..], b"a");
            first
                .v3()
                .proclaim(ProclaimRequest {
                    leader: Some(a.clone()),
                    value: b("a2"),
                })
                .await
                .expect("proclaim");
            let led = second
                .v3()
                .leader(b("boss"))
                .await
                .expect("leader")
                .kv
                .unwrap();
            assert_eq!(&led.value[..], b"a2");
            first.v3().resign(a.clone()).await.expect("resign");
            // The observer saw a, its new value, then b.
            while observed.len() < 3 {
                let r = tokio::time::timeout(Duration::from_secs(5), observer.next())
                    .await
                    .expect("a proclamation in time")
                    .expect("no error")
                    .expect("open");
                observed.push(String::from_utf8_lossy(&r.kv.unwrap().value).into_owned());
            }
            assert_eq!(observed, ["a", "a2", "b"]);
            let b_leads = tokio::time::timeout(Duration::from_secs(5), b_campaign)
                .await
                .expect("b is elected")
                .unwrap()
                .expect("campaign")
                .leader
                .unwrap();
            let stale = first
                .v3()
                .proclaim(ProclaimRequest {
                    leader: Some(a),
                    value: b("late"),
                })
                .await;
            assert_eq!(stale.unwrap_err(), V3Error::ElectionNotLeader);
            second.v3().resign(b_leads).await.expect("resign");
            let none = first.v3().leader(b("boss")).await;
            assert_eq!(none.unwrap_err(), V3Error::ElectionNoLeader);
        }
    });
}

/// The same sequence through the Rust gRPC client against real etcd 3.4 and against
/// etcdrs: etcd is the reference for every answer, error and revision.
#[test]
fn the_grpc_client_gets_from_etcdrs_what_it_gets_from_etcd() {
    let etcd = etcdrs_tests::Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let ours = etcdrs_tests::Member::start(dir.path(), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let timeout = Some(std::time::Duration::from_secs(5));
    let to_etcd = Client::http(&[&etcd.url], timeout).expect("client");
    let to_ours = Client::http(&[&ours.url], timeout).expect("client");
    let (a, b) = runtime.block_on(async { (exercise(&to_etcd).await, exercise(&to_ours).await) });
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "etcd, then etcdrs");
    }
}

/// --max-long-polls-per-client caps the streams one client keeps open (watch, keep-alive,
/// observe; over gRPC and through the gateway) as it caps v2 long polls: one more is
/// refused with RESOURCE_EXHAUSTED (429 through the gateway), and one that ends gives its
/// permit back.
#[test]
fn a_client_keeps_no_more_streams_open_than_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::ephemeral("c", dir.path().join("c"));
    config.max_long_polls_per_client = 2;
    let node = Node::start(config).expect("start");
    let url = node.client_urls()[0].clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let remote = Client::http(node.client_urls(), None).expect("client");
    let watch = || WatchCreateRequest {
        key: b("w"),
        ..Default::default()
    };
    runtime.block_on(async {
        let v3 = remote.v3();
        let first = v3.watch(watch()).await.expect("first stream");
        let _second = v3.watch(watch()).await.expect("second stream");
        let refused = match v3.watch(watch()).await {
            Err(e) => e,
            Ok(_) => panic!("a third stream was let in"),
        };
        assert_eq!(refused.grpc_code(), 8, "{}", refused.message()); // RESOURCE_EXHAUSTED
        assert_eq!(
            refused.message(),
            "etcdserver: too many open streams from this client"
        );
        // A keep-alive stream is one too.
        let keep_alive = v3.lease_keep_alive(1).await.expect_err("no room for it");
        assert_eq!(keep_alive.grpc_code(), 8, "{}", keep_alive.message());
        // Through the gateway: grpc-gateway's mapping of the same status.
        let gateway = ureq::post(&format!("{url}/v3/watch"))
            .send_string(r#"{"create_request":{"key":"dw=="}}"#);
        match gateway {
            Err(ureq::Error::Status(code, r)) => {
                assert_eq!(code, 429);
                assert!(r.into_string().unwrap().contains("too many open streams"));
            }
            other => panic!("the gateway let a third stream in: {other:?}"),
        }
        // The first ends: its permit comes back.
        drop(first);
        let mut again = None;
        for _ in 0..100 {
            if let Ok(w) = v3.watch(watch()).await {
                again = Some(w);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(again.is_some(), "a stream that ended kept its permit");
    });
    // The member's own client has no address to count: its streams are not capped.
    runtime.block_on(async {
        let local = node.client();
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(local.v3().watch(watch()).await.expect("in-process stream"));
        }
    });
}
