//! etcd's v3 Lock and Election services: its concurrency recipes (a mutex and an election
//! over keys under a prefix, one per lease, ordered by create revision), run inside the
//! member over its own v3 API, as etcd's v3lock and v3election servers run them.

use crate::error::V3Error;
use crate::mvcc::{Delivery, WatchSpec};
use crate::pb::etcdserverpb::{
    compare, range_request, request_op, response_op, Compare, DeleteRangeRequest,
    LeaseGrantRequest, PutRequest, RangeRequest, RequestOp, ResponseHeader, TxnRequest,
};
use crate::pb::mvccpb::{event::EventType, KeyValue};
use crate::pb::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use crate::pb::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use crate::server::Server;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

/// `name/`: the prefix every contender's key lives under.
fn prefix(name: &[u8]) -> Bytes {
    let mut p = name.to_vec();
    p.push(b'/');
    p.into()
}

/// The first key after every key starting with `p` (etcd's GetPrefixRangeEnd).
fn prefix_end(p: &[u8]) -> Bytes {
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end.into();
        }
    }
    Bytes::from_static(b"\0")
}

/// A contender's key: the prefix and its lease in hex, as etcd names them.
fn contender_key(name: &[u8], lease: i64) -> Bytes {
    let mut k = prefix(name).to_vec();
    k.extend_from_slice(format!("{lease:x}").as_bytes());
    k.into()
}

fn range_op(r: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(r)),
    }
}

fn put_op(key: Bytes, value: Bytes, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key,
            value,
            lease,
            ..Default::default()
        })),
    }
}

fn created_at(key: &Bytes, rev: i64) -> Compare {
    Compare {
        key: key.clone(),
        target: compare::CompareTarget::Create as i32,
        result: compare::CompareResult::Equal as i32,
        target_union: Some(compare::TargetUnion::CreateRevision(rev)),
        ..Default::default()
    }
}

/// The oldest (`first`) or newest contender under `name`, up to a create revision.
fn contender(name: &[u8], first: bool, max_create_revision: i64) -> RangeRequest {
    let p = prefix(name);
    RangeRequest {
        range_end: prefix_end(&p),
        key: p,
        sort_target: range_request::SortTarget::Create as i32,
        sort_order: if first {
            range_request::SortOrder::Ascend
        } else {
            range_request::SortOrder::Descend
        } as i32,
        limit: 1,
        max_create_revision,
        ..Default::default()
    }
}

fn ranged(r: Option<&crate::pb::etcdserverpb::ResponseOp>) -> Option<KeyValue> {
    match r?.response.as_ref()? {
        response_op::Response::ResponseRange(r) => r.kvs.first().cloned(),
        _ => None,
    }
}

/// Take a place under `name` with `lease`: the contender's key, its create revision and
/// the value it holds (a contender already there keeps its place).
async fn claim(
    server: &Server,
    name: &[u8],
    lease: i64,
    value: Bytes,
) -> Result<(Bytes, i64, Bytes, Option<ResponseHeader>), V3Error> {
    let key = contender_key(name, lease);
    let txn = TxnRequest {
        compare: vec![created_at(&key, 0)],
        success: vec![put_op(key.clone(), value.clone(), lease)],
        failure: vec![range_op(RangeRequest {
            key: key.clone(),
            ..Default::default()
        })],
    };
    let resp = server.txn(txn).await?;
    let (rev, held) = if resp.succeeded {
        (resp.header.as_ref().map_or(0, |h| h.revision), value)
    } else {
        let kv = ranged(resp.responses.first()).ok_or(V3Error::KeyNotFound)?;
        (kv.create_revision, kv.value)
    };
    Ok((key, rev, held, resp.header))
}

/// Wait until no key under `name` was created before revision `rev` (etcd's waitDeletes).
async fn wait_older_gone(server: &Server, name: &[u8], rev: i64) -> Result<(), V3Error> {
    loop {
        let older = server.range(contender(name, false, rev - 1)).await?;
        let Some(kv) = older.kvs.first() else {
            return Ok(());
        };
        let at = older.header.as_ref().map_or(0, |h| h.revision);
        wait_event(server, kv.key.clone(), at, |t| t == EventType::Delete).await?;
    }
}

/// Watch `key` from revision `from` until an event of a kind `wanted` takes; that event.
async fn wait_event(
    server: &Server,
    key: Bytes,
    from: i64,
    wanted: impl Fn(EventType) -> bool,
) -> Result<KeyValue, V3Error> {
    let (tx, mut rx) = mpsc::channel(16);
    let spec = WatchSpec {
        watch_id: 0,
        key,
        range_end: Bytes::new(),
        start_revision: from,
        no_put: false,
        no_delete: false,
        prev_kv: false,
        progress_notify: false,
        fragment: false,
    };
    let (watcher, _) = server.watch_create(spec, tx)?;
    struct Cancel<'a>(&'a Server, u64);
    impl Drop for Cancel<'_> {
        fn drop(&mut self) {
            self.0.watch_cancel(self.1);
        }
    }
    let _cancel = Cancel(server, watcher);
    server.watch_ready(watcher);
    while let Some(d) = rx.recv().await {
        match d {
            Delivery::Events { events, .. } => {
                for e in events {
                    let kind = EventType::try_from(e.r#type).unwrap_or(EventType::Put);
                    if wanted(kind) {
                        return e.kv.ok_or(V3Error::KeyNotFound);
                    }
                }
            }
            Delivery::Compacted { .. } => return Err(V3Error::Compacted),
            _ => {}
        }
    }
    Err(V3Error::Stopped)
}

/// Deletes the contender's key unless disarmed: a caller that goes away while it waits
/// leaves nobody queued behind a key nobody will release (as etcd's mutex does).
struct Withdraw {
    server: Arc<Server>,
    key: Option<Bytes>,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let server = self.server.clone();
            tokio::spawn(async move {
                let _ = server.delete_range(key_only(key)).await;
            });
        }
    }
}

fn key_only(key: Bytes) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key,
        ..Default::default()
    }
}

/// Lock `name` for `lease`: the key that holds it once every older contender is gone.
async fn acquire_lock(
    server: &Arc<Server>,
    name: Bytes,
    lease: i64,
) -> Result<(Bytes, Option<ResponseHeader>), V3Error> {
    let (key, rev, _, header) = claim(server, &name, lease, Bytes::new()).await?;
    let mut withdraw = Withdraw {
        server: server.clone(),
        key: Some(key.clone()),
    };
    wait_older_gone(server, &name, rev).await?;
    withdraw.key = None;
    Ok((key, header))
}

/// Campaign for `name` with `lease` and `value`: the leader key once elected.
async fn elect(
    server: &Arc<Server>,
    name: Bytes,
    lease: i64,
    value: Bytes,
) -> Result<LeaderKey, V3Error> {
    let (key, rev, held, _) = claim(server, &name, lease, value.clone()).await?;
    let leader = LeaderKey {
        name: name.clone(),
        key: key.clone(),
        rev,
        lease,
    };
    let mut withdraw = Withdraw {
        server: server.clone(),
        key: Some(key),
    };
    if held != value {
        proclaim_as(server, &leader, value).await?;
    }
    wait_older_gone(server, &name, rev).await?;
    withdraw.key = None;
    Ok(leader)
}

/// A new value from the leader `leader`; refused when it no longer leads.
async fn proclaim_as(server: &Server, leader: &LeaderKey, value: Bytes) -> Result<(), V3Error> {
    let txn = TxnRequest {
        compare: vec![created_at(&leader.key, leader.rev)],
        success: vec![put_op(leader.key.clone(), value, leader.lease)],
        failure: vec![],
    };
    if server.txn(txn).await?.succeeded {
        Ok(())
    } else {
        Err(V3Error::ElectionNotLeader)
    }
}

/// Give up leadership (nothing happens when `leader` no longer leads).
async fn resign_as(server: &Server, leader: &LeaderKey) -> Result<(), V3Error> {
    let txn = TxnRequest {
        compare: vec![created_at(&leader.key, leader.rev)],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(key_only(
                leader.key.clone(),
            ))),
        }],
        failure: vec![],
    };
    server.txn(txn).await.map(|_| ())
}

/// The leader of `name`: the oldest contender's key and value.
async fn leader_of(server: &Server, name: &[u8]) -> Result<KeyValue, V3Error> {
    let first = server.range(contender(name, true, 0)).await?;
    first
        .kvs
        .into_iter()
        .next()
        .ok_or(V3Error::ElectionNoLeader)
}

/// Every proclamation of `name`'s leaders, as it happens, into `tx` until it closes.
pub async fn observe(server: Arc<Server>, name: Bytes, tx: mpsc::Sender<KeyValue>) {
    let p = prefix(&name);
    // What was sent last: a new leader, or a new value of the same one, is news.
    let mut last: Option<(Bytes, i64)> = None;
    loop {
        let current = match leader_of(&server, &name).await {
            Ok(kv) => kv,
            Err(V3Error::ElectionNoLeader) => {
                // Wait for the first contender.
                let at = match server.range(contender(&name, true, 0)).await {
                    Ok(r) => r.header.map_or(0, |h| h.revision) + 1,
                    Err(_) => return,
                };
                let spec_key = p.clone();
                match wait_prefix_put(&server, spec_key, at).await {
                    Ok(()) => continue,
                    Err(_) => return,
                }
            }
            Err(_) => return,
        };
        let news = last
            .as_ref()
            .is_none_or(|(key, rev)| *key != current.key || current.mod_revision > *rev);
        if news {
            last = Some((current.key.clone(), current.mod_revision));
            if tx.send(current.clone()).await.is_err() {
                return;
            }
        }
        // Follow that leader's key: new values, until it goes.
        let mut at = current.mod_revision + 1;
        loop {
            match wait_event(&server, current.key.clone(), at, |_| true).await {
                Ok(kv) if kv.create_revision != 0 => {
                    at = kv.mod_revision + 1;
                    last = Some((kv.key.clone(), kv.mod_revision));
                    if tx.send(kv).await.is_err() {
                        return;
                    }
                }
                Ok(_) => break, // deleted: the next leader
                Err(_) => return,
            }
        }
    }
}

/// Wait for any put under the prefix `p` from revision `from`.
async fn wait_prefix_put(server: &Server, p: Bytes, from: i64) -> Result<(), V3Error> {
    let (tx, mut rx) = mpsc::channel(16);
    let spec = WatchSpec {
        watch_id: 0,
        range_end: prefix_end(&p),
        key: p,
        start_revision: from,
        no_put: false,
        no_delete: true,
        prev_kv: false,
        progress_notify: false,
        fragment: false,
    };
    let (watcher, _) = server.watch_create(spec, tx)?;
    server.watch_ready(watcher);
    let r = loop {
        match rx.recv().await {
            Some(Delivery::Events { .. }) => break Ok(()),
            Some(Delivery::Compacted { .. }) => break Err(V3Error::Compacted),
            Some(_) => continue,
            None => break Err(V3Error::Stopped),
        }
    };
    server.watch_cancel(watcher);
    r
}

// The services' calls, request in, response out: one implementation for the gRPC
// services and for in-process clients.

/// etcd's concurrency sessions last this long when nobody keeps them alive (seconds).
const SESSION_TTL: i64 = 60;

/// The lease a lock or campaign holds: the one given, or (lease 0) a new one of a session's
/// TTL that nobody renews, as etcd's services make for a request without a lease.
async fn session_lease(server: &Arc<Server>, lease: i64) -> Result<i64, V3Error> {
    if lease != 0 {
        return Ok(lease);
    }
    let granted = server
        .lease_grant(LeaseGrantRequest {
            ttl: SESSION_TTL,
            id: 0,
        })
        .await?;
    Ok(granted.id)
}

pub async fn lock(server: &Arc<Server>, r: LockRequest) -> Result<LockResponse, V3Error> {
    let lease = session_lease(server, r.lease).await?;
    let (key, header) = acquire_lock(server, r.name, lease).await?;
    Ok(LockResponse {
        header: server.v3_header(header),
        key,
    })
}

pub async fn unlock(server: &Arc<Server>, r: UnlockRequest) -> Result<UnlockResponse, V3Error> {
    server.delete_range(key_only(r.key)).await?;
    Ok(UnlockResponse {
        header: server.v3_header(None),
    })
}

pub async fn campaign(
    server: &Arc<Server>,
    r: CampaignRequest,
) -> Result<CampaignResponse, V3Error> {
    let lease = session_lease(server, r.lease).await?;
    let leader = elect(server, r.name, lease, r.value).await?;
    Ok(CampaignResponse {
        header: server.v3_header(None),
        leader: Some(leader),
    })
}

pub async fn proclaim(
    server: &Arc<Server>,
    r: ProclaimRequest,
) -> Result<ProclaimResponse, V3Error> {
    let leader = r.leader.ok_or(V3Error::MissingLeaderKey)?;
    proclaim_as(server, &leader, r.value).await?;
    Ok(ProclaimResponse {
        header: server.v3_header(None),
    })
}

pub async fn leader(server: &Arc<Server>, r: LeaderRequest) -> Result<LeaderResponse, V3Error> {
    let kv = leader_of(server, &r.name).await?;
    Ok(LeaderResponse {
        header: server.v3_header(None),
        kv: Some(kv),
    })
}

pub async fn resign(server: &Arc<Server>, r: ResignRequest) -> Result<ResignResponse, V3Error> {
    let leader = r.leader.ok_or(V3Error::MissingLeaderKey)?;
    resign_as(server, &leader).await?;
    Ok(ResignResponse {
        header: server.v3_header(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_prefixes_as_etcd_names_them() {
        assert_eq!(&contender_key(b"mylock", 0x694d)[..], b"mylock/694d");
        assert_eq!(&prefix_end(b"ab/")[..], b"ab0");
        assert_eq!(&prefix_end(b"a\xff")[..], b"b");
        assert_eq!(&prefix_end(b"\xff\xff")[..], b"\0");
    }
}
