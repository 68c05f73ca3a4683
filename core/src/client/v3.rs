//! The client's v3 API: KV, txn, compaction, leases, watches, locks and elections,
//! membership and maintenance, answered by the member in this process or over gRPC, with the
//! same results either way (both are etcdserverpb messages: bytes in, bytes out). Bindings
//! without protobuf reach the unary calls as etcd's gateway JSON (`call_json`).

use super::{Client, Via};
use crate::error::V3Error;
use crate::mvcc::{Delivery, WatchSpec};
use crate::pb::etcdserverpb::{
    cluster_server::Cluster as _, maintenance_server::Maintenance as _,
    watch_request::RequestUnion, AlarmRequest, AlarmResponse, AuthDisableRequest,
    AuthDisableResponse, AuthEnableRequest, AuthEnableResponse, AuthRoleAddRequest,
    AuthRoleAddResponse, AuthRoleDeleteRequest, AuthRoleDeleteResponse, AuthRoleGetRequest,
    AuthRoleGetResponse, AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionResponse,
    AuthRoleListRequest, AuthRoleListResponse, AuthRoleRevokePermissionRequest,
    AuthRoleRevokePermissionResponse, AuthUserAddRequest, AuthUserAddResponse,
    AuthUserChangePasswordRequest, AuthUserChangePasswordResponse, AuthUserDeleteRequest,
    AuthUserDeleteResponse, AuthUserGetRequest, AuthUserGetResponse, AuthUserGrantRoleRequest,
    AuthUserGrantRoleResponse, AuthUserListRequest, AuthUserListResponse,
    AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse, AuthenticateRequest,
    AuthenticateResponse, CompactionRequest, CompactionResponse, DefragmentRequest,
    DefragmentResponse, DeleteRangeRequest, DeleteRangeResponse, HashKvRequest, HashKvResponse,
    HashRequest, HashResponse, LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest,
    LeaseKeepAliveResponse, LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, MemberAddRequest,
    MemberAddResponse, MemberListRequest, MemberListResponse, MemberRemoveRequest,
    MemberRemoveResponse, MemberUpdateRequest, MemberUpdateResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
    TxnRequest, TxnResponse, WatchCreateRequest, WatchRequest, WatchResponse,
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

/// In-process, a Cluster or Maintenance call is the gRPC service's own method on the member
/// (one implementation of each).
macro_rules! local_service {
    ($service:ident, $s:ident, $method:ident, $r:ident) => {
        async {
            crate::grpc::$service($s.clone())
                .$method(tonic::Request::new($r))
                .await
                .map(tonic::Response::into_inner)
                .map_err(super::grpc::v3_error)
        }
    };
}

/// The Auth service's calls (users, roles, enabling auth): in-process, the member's own
/// (an embedding program administers its member); over the network, as the client's user.
macro_rules! auth_calls {
    ($($method:ident($req:ident) -> $resp:ident;)*) => {
        impl V3<'_> {
            $(pub async fn $method(&self, r: $req) -> Result<$resp, V3Error> {
                v3_call!(self, r, auth, $method)
            })*
        }
    };
}

crate::pb::for_auth_methods!(auth_calls);

/// The calls `call_json` knows, by their gateway path: request type, call.
macro_rules! json_calls {
    ($self:ident, $method:ident, $body:ident; $($path:literal => $call:ident,)*) => {
        match $method {
            $($path => {
                let r = serde_json::from_str(if $body.trim().is_empty() { "{}" } else { $body })
                    .map_err(|e| V3Error::Internal(format!("bad {} request: {e}", $path)))?;
                let answer = $self.$call(r).await?;
                Ok(serde_json::to_string(&answer).expect("json"))
            })*
            _ => Err(V3Error::Internal(format!("no v3 call {:?}", $method))),
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

    /// Every lease granted and not revoked.
    pub async fn lease_leases(&self) -> Result<LeaseLeasesResponse, V3Error> {
        let r = LeaseLeasesRequest {};
        v3_call!(self, r, lease, lease_leases, |s, _r| s.lease_leases())
    }

    async fn lease_leases_request(
        &self,
        _: LeaseLeasesRequest,
    ) -> Result<LeaseLeasesResponse, V3Error> {
        self.lease_leases().await
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

    pub async fn lease_revoke_request(
        &self,
        r: LeaseRevokeRequest,
    ) -> Result<LeaseRevokeResponse, V3Error> {
        self.lease_revoke(r.id).await
    }

    pub async fn lease_keep_alive_request(
        &self,
        r: LeaseKeepAliveRequest,
    ) -> Result<LeaseKeepAliveResponse, V3Error> {
        self.lease_keep_alive(r.id).await
    }

    pub async fn lock_request(&self, r: LockRequest) -> Result<LockResponse, V3Error> {
        self.lock(r.name, r.lease).await
    }

    pub async fn unlock_request(&self, r: UnlockRequest) -> Result<UnlockResponse, V3Error> {
        self.unlock(r.key).await
    }

    pub async fn member_list(&self, r: MemberListRequest) -> Result<MemberListResponse, V3Error> {
        v3_call!(self, r, cluster, member_list, |s, r| local_service!(
            ClusterService,
            s,
            member_list,
            r
        ))
    }

    pub async fn member_add(&self, r: MemberAddRequest) -> Result<MemberAddResponse, V3Error> {
        v3_call!(self, r, cluster, member_add, |s, r| local_service!(
            ClusterService,
            s,
            member_add,
            r
        ))
    }

    pub async fn member_remove(
        &self,
        r: MemberRemoveRequest,
    ) -> Result<MemberRemoveResponse, V3Error> {
        v3_call!(self, r, cluster, member_remove, |s, r| local_service!(
            ClusterService,
            s,
            member_remove,
            r
        ))
    }

    pub async fn member_update(
        &self,
        r: MemberUpdateRequest,
    ) -> Result<MemberUpdateResponse, V3Error> {
        v3_call!(self, r, cluster, member_update, |s, r| local_service!(
            ClusterService,
            s,
            member_update,
            r
        ))
    }

    /// The answering member's status (version, db size, leader, raft index and term).
    pub async fn status(&self, r: StatusRequest) -> Result<StatusResponse, V3Error> {
        v3_call!(self, r, maintenance, status, |s, r| local_service!(
            MaintenanceService,
            s,
            status,
            r
        ))
    }

    pub async fn hash(&self, r: HashRequest) -> Result<HashResponse, V3Error> {
        v3_call!(self, r, maintenance, hash, |s, r| local_service!(
            MaintenanceService,
            s,
            hash,
            r
        ))
    }

    pub async fn hash_kv(&self, r: HashKvRequest) -> Result<HashKvResponse, V3Error> {
        v3_call!(self, r, maintenance, hash_kv, |s, r| local_service!(
            MaintenanceService,
            s,
            hash_kv,
            r
        ))
    }

    pub async fn defragment(&self, r: DefragmentRequest) -> Result<DefragmentResponse, V3Error> {
        v3_call!(self, r, maintenance, defragment, |s, r| local_service!(
            MaintenanceService,
            s,
            defragment,
            r
        ))
    }

    pub async fn alarm(&self, r: AlarmRequest) -> Result<AlarmResponse, V3Error> {
        v3_call!(self, r, maintenance, alarm, |s, r| local_service!(
            MaintenanceService,
            s,
            alarm,
            r
        ))
    }

    /// The member's v3 store as `etcdctl snapshot save` writes it (the Maintenance service's
    /// Snapshot stream, joined): etcdrs's image with etcd's SHA-256 trailer.
    pub async fn snapshot(&self) -> Result<Vec<u8>, V3Error> {
        use futures_util::StreamExt as _;
        let mut chunks = match &*self.0.via {
            Via::Local(s) => crate::grpc::MaintenanceService(s.clone())
                .snapshot(tonic::Request::new(SnapshotRequest {}))
                .await
                .map_err(super::grpc::v3_error)?
                .into_inner(),
            Via::Http(h) => Box::pin(
                h.grpc
                    .maintenance(|mut c| async move { c.snapshot(SnapshotRequest {}).await })
                    .await?,
            ) as tonic::codegen::BoxStream<SnapshotResponse>,
        };
        let mut image = Vec::new();
        while let Some(chunk) = chunks.next().await {
            image.extend_from_slice(&chunk.map_err(super::grpc::v3_error)?.blob);
        }
        Ok(image)
    }

    /// One unary call given as etcd's gateway JSON (its path without /v3/, e.g. "kv/range",
    /// and its request object), answered as the gateway answers: for bindings that have JSON
    /// but not protobuf. The same calls as the typed methods.
    pub async fn call_json(&self, method: &str, body: &str) -> Result<String, V3Error> {
        json_calls!(self, method, body;
            "kv/range" => range,
            "kv/put" => put,
            "kv/deleterange" => delete_range,
            "kv/txn" => txn,
            "kv/compaction" => compact,
            "lease/grant" => lease_grant,
            "lease/revoke" => lease_revoke_request,
            "lease/keepalive" => lease_keep_alive_request,
            "lease/timetolive" => lease_time_to_live,
            "lease/leases" => lease_leases_request,
            "lock/lock" => lock_request,
            "lock/unlock" => unlock_request,
            "election/campaign" => campaign,
            "election/proclaim" => proclaim,
            "cluster/member/list" => member_list,
            "cluster/member/add" => member_add,
            "cluster/member/remove" => member_remove,
            "cluster/member/update" => member_update,
            "maintenance/status" => status,
            "maintenance/hash" => hash,
            "maintenance/hashkv" => hash_kv,
            "maintenance/defragment" => defragment,
            "maintenance/alarm" => alarm,
            "auth/enable" => auth_enable,
            "auth/disable" => auth_disable,
            "auth/user/add" => user_add,
            "auth/user/get" => user_get,
            "auth/user/list" => user_list,
            "auth/user/delete" => user_delete,
            "auth/user/changepw" => user_change_password,
            "auth/user/grant" => user_grant_role,
            "auth/user/revoke" => user_revoke_role,
            "auth/role/add" => role_add,
            "auth/role/get" => role_get,
            "auth/role/list" => role_list,
            "auth/role/delete" => role_delete,
            "auth/role/grant" => role_grant_permission,
            "auth/role/revoke" => role_revoke_permission,
        )
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
    ///
    /// (Boxed as a Send future here, where its lifetimes are known: callers that hand it to
    /// another thread, as the Python binding does, could not prove it Send themselves.)
    pub fn watch(
        &self,
        create: WatchCreateRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<V3Watch, V3Error>> + Send + '_>>
    {
        Box::pin(self.watch_inner(create))
    }

    async fn watch_inner(&self, create: WatchCreateRequest) -> Result<V3Watch, V3Error> {
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
                            let mut rx = rx;
                            let requests =
                                futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
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
