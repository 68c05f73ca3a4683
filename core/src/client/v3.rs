//! The client's v3 API: KV, txn, compaction, leases and watches, answered by the member in
//! this process or over gRPC, with the same results either way (both are etcdserverpb
//! messages: bytes in, bytes out).

use super::{Client, Via};
use crate::error::V3Error;
use crate::mvcc::{Delivery, WatchSpec};
use crate::pb::etcdserverpb::{
    watch_request::RequestUnion, CompactionRequest, CompactionResponse, DeleteRangeRequest,
    DeleteRangeResponse, LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest,
    LeaseKeepAliveResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, TxnRequest,
    TxnResponse, WatchCreateRequest, WatchRequest, WatchResponse,
};
use crate::pb::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use crate::pb::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use crate::recipes;
use crate::server::Server;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One v3 call: in-process, the member's method (or the given local call, for the Lock
/// and Election recipes); over the network, the gRPC service's.
macro_rules! v3_call {
    ($self:ident, $req:ident, $service:ident, $method:ident) => {
        v3_call!($self, $req, $service, $method, |s, r| s.$method(r))
    };
    ($self:ident, $req:ident, $service:ident, $method:ident, |$s:ident, $r:ident| $local:expr) => {
        match &*$self.0.via {
            Via::Local($s) => {
                let $r = $req;
                $local.await
            }
            Via::Http(h) => {
                h.grpc
                    .$service(move |mut c| {
                        let r = $req.clone();
                        async move { c.$method(r).await }
                    })
                    .await
            }
        }
    };
}

impl Client {
    /// The v3 API of this client (etcd's KV, Lease and Watch services).
    pub fn v3(&self) -> V3<'_> {
        V3(self)
    }
}

/// The v3 calls of a `Client`.
pub struct V3<'a>(&'a Client);

impl V3<'_> {
    pub async fn range(&self, r: RangeRequest) -> Result<RangeResponse, V3Error> {
        v3_call!(self, r, kv, range)
    }

    pub async fn put(&self, r: PutRequest) -> Result<PutResponse, V3Error> {
        v3_call!(self, r, kv, put)
    }

    pub async fn delete_range(
        &self,
        r: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, V3Error> {
        v3_call!(self, r, kv, delete_range)
    }

    pub async fn txn(&self, r: TxnRequest) -> Result<TxnResponse, V3Error> {
        v3_call!(self, r, kv, txn)
    }

    pub async fn compact(&self, r: CompactionRequest) -> Result<CompactionResponse, V3Error> {
        v3_call!(self, r, kv, compact)
    }

    pub async fn lease_grant(&self, r: LeaseGrantRequest) -> Result<LeaseGrantResponse, V3Error> {
        v3_call!(self, r, lease, lease_grant)
    }

    pub async fn lease_revoke(&self, id: i64) -> Result<LeaseRevokeResponse, V3Error> {
        match &*self.0.via {
            Via::Local(s) => s.lease_revoke(id).await,
            Via::Http(h) => {
                h.grpc
                    .lease(
                        move |mut c| async move { c.lease_revoke(LeaseRevokeRequest { id }).await },
                    )
                    .await
            }
        }
    }

    pub async fn lease_time_to_live(
        &self,
        r: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, V3Error> {
        v3_call!(self, r, lease, lease_time_to_live)
    }

    /// Renew a lease once; TTL 0 when it is gone (as etcd's keep-alive stream answers).
    pub async fn lease_keep_alive(&self, id: i64) -> Result<LeaseKeepAliveResponse, V3Error> {
        match &*self.0.via {
            Via::Local(s) => match s.lease_keep_alive(id).await {
                Err(V3Error::LeaseNotFound) => Ok(LeaseKeepAliveResponse {
                    header: s.v3_header(None),
                    id,
                    ttl: 0,
                }),
                r => r,
            },
            Via::Http(h) => {
                let mut answers = h
                    .grpc
                    .lease(move |mut c| async move {
                        let one = futures_util::stream::iter([LeaseKeepAliveRequest { id }]);
                        c.lease_keep_alive(one).await
                    })
                    .await?;
                answers
                    .message()
                    .await
                    .map_err(super::grpc::v3_error)?
                    .ok_or(V3Error::Stopped)
            }
        }
    }

    /// Hold the lock `name` for `lease` (waits for it); the key that holds it.
    pub async fn lock(&self, name: Bytes, lease: i64) -> Result<LockResponse, V3Error> {
        let r = LockRequest { name, lease };
        v3_call!(self, r, lock, lock, |s, r| recipes::lock(s, r))
    }

    pub async fn unlock(&self, key: Bytes) -> Result<UnlockResponse, V3Error> {
        let r = UnlockRequest { key };
        v3_call!(self, r, lock, unlock, |s, r| recipes::unlock(s, r))
    }

    /// Campaign to lead the election `name` (waits until elected); the leader key.
    pub async fn campaign(&self, r: CampaignRequest) -> Result<CampaignResponse, V3Error> {
        v3_call!(self, r, election, campaign, |s, r| recipes::campaign(s, r))
    }

    pub async fn proclaim(&self, r: ProclaimRequest) -> Result<ProclaimResponse, V3Error> {
        v3_call!(self, r, election, proclaim, |s, r| recipes::proclaim(s, r))
    }

    /// The current leader of the election `name`: its key and value.
    pub async fn leader(&self, name: Bytes) -> Result<LeaderResponse, V3Error> {
        let r = LeaderRequest { name };
        v3_call!(self, r, election, leader, |s, r| recipes::leader(s, r))
    }

    pub async fn resign(&self, leader: LeaderKey) -> Result<ResignResponse, V3Error> {
        let r = ResignRequest {
            leader: Some(leader),
        };
        v3_call!(self, r, election, resign, |s, r| recipes::resign(s, r))
    }

    /// Every proclamation of the election `name`'s leaders, from the current one's on.
    pub async fn observe(&self, name: Bytes) -> Result<V3Observe, V3Error> {
        match &*self.0.via {
            Via::Local(s) => {
                let (tx, rx) = mpsc::channel(16);
                let task = tokio::spawn(recipes::observe(s.clone(), name, tx));
                Ok(V3Observe(Observing::Local {
                    server: s.clone(),
                    rx,
                    task,
                }))
            }
            Via::Http(h) => {
                let r = LeaderRequest { name };
                let answers = h
                    .grpc
                    .election(move |mut c| {
                        let r = r.clone();
                        async move { c.observe(r).await }
                    })
                    .await?;
                Ok(V3Observe(Observing::Remote(Box::new(answers))))
            }
        }
    }

    /// Watch: the first answer says the watcher was created, then events come as they
    /// happen (from `start_revision` when given).
    pub async fn watch(&self, create: WatchCreateRequest) -> Result<V3Watch, V3Error> {
        match &*self.0.via {
            Via::Local(s) => {
                let (tx, rx) = mpsc::channel(128);
                let spec = WatchSpec::from_request(0, create);
                let (key, revision) = s.watch_create(spec, tx.clone())?;
                tx.send(Delivery::Created {
                    watch_id: 0,
                    revision,
                })
                .await
                .map_err(|_| V3Error::Stopped)?;
                s.watch_ready(key);
                Ok(V3Watch(Watching::Local {
                    server: s.clone(),
                    key,
                    rx,
                    parts: std::collections::VecDeque::new(),
                }))
            }
            Via::Http(h) => {
                let (tx, rx) = mpsc::channel::<WatchRequest>(4);
                tx.send(WatchRequest {
                    request_union: Some(RequestUnion::CreateRequest(create)),
                })
                .await
                .map_err(|_| V3Error::Stopped)?;
                let rx = std::sync::Mutex::new(Some(rx));
                let answers = h
                    .grpc
                    .watch(|mut c| {
                        let rx = rx.lock().unwrap_or_else(|p| p.into_inner()).take();
                        async move {
                            let Some(rx) = rx else {
                                return Err(tonic::Status::unavailable("watch already opened"));
                            };
                            let requests = futures_util::stream::unfold(rx, |mut rx| async {
                                rx.recv().await.map(|r| (r, rx))
                            });
                            c.watch(requests).await
                        }
                    })
                    .await?;
                Ok(V3Watch(Watching::Remote {
                    answers: Box::new(answers),
                    _requests: tx,
                }))
            }
        }
    }
}

/// An open observation of an election; it ends when this is dropped.
pub struct V3Observe(Observing);

enum Observing {
    Local {
        server: Arc<Server>,
        rx: mpsc::Receiver<crate::pb::mvccpb::KeyValue>,
        task: tokio::task::JoinHandle<()>,
    },
    Remote(Box<tonic::Streaming<LeaderResponse>>),
}

impl V3Observe {
    /// The next proclamation; None once the observation has ended.
    pub async fn next(&mut self) -> Result<Option<LeaderResponse>, V3Error> {
        match &mut self.0 {
            Observing::Local { server, rx, .. } => Ok(rx.recv().await.map(|kv| LeaderResponse {
                header: server.v3_header(None),
                kv: Some(kv),
            })),
            Observing::Remote(answers) => answers.message().await.map_err(super::grpc::v3_error),
        }
    }
}

impl Drop for V3Observe {
    fn drop(&mut self) {
        if let Observing::Local { task, .. } = &self.0 {
            task.abort();
        }
    }
}

/// An open v3 watch; the watcher goes when this is dropped.
pub struct V3Watch(Watching);

enum Watching {
    Local {
        server: Arc<Server>,
        key: u64,
        rx: mpsc::Receiver<Delivery>,
        /// The rest of a delivery answered in fragments.
        parts: std::collections::VecDeque<WatchResponse>,
    },
    Remote {
        answers: Box<tonic::Streaming<WatchResponse>>,
        _requests: mpsc::Sender<WatchRequest>,
    },
}

impl V3Watch {
    /// The next answer; None once the watch has ended.
    pub async fn next(&mut self) -> Result<Option<WatchResponse>, V3Error> {
        match &mut self.0 {
            Watching::Local {
                server, rx, parts, ..
            } => {
                if parts.is_empty() {
                    if let Some(d) = rx.recv().await {
                        parts.extend(server.watch_responses(d));
                    }
                }
                Ok(parts.pop_front())
            }
            Watching::Remote { answers, .. } => {
                answers.message().await.map_err(super::grpc::v3_error)
            }
        }
    }
}

impl Drop for V3Watch {
    fn drop(&mut self) {
        if let Watching::Local { server, key, .. } = &self.0 {
            server.watch_cancel(*key);
        }
    }
}
