//! Leases as a member serves them (etcd's lessor around the replicated lease records):
//! grant and revoke go through raft; keep-alive and time-to-live are answered by the leader
//! (a follower asks it through the peer API, as etcd's /leases), which alone decides expiry
//! and replicates it as a revoke. A member that becomes leader first extends every lease by
//! an election timeout, so a leader change never expires a lease early.

use super::Server;
use crate::apply::v3::V3Response;
use crate::error::V3Error;
use crate::pb::etcdrs::{v3_request::Request, V3Request};
use crate::pb::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use crate::raft::{RaftMsg, RaftRole};
use crate::request::{Op, RaftRequest};
use prost::Message as _;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// etcd's MaxLeaseTTL, seconds.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;
/// How soon the leader asks again to revoke an expired lease whose revoke did not apply.
const REVOKE_RETRY: Duration = Duration::from_secs(2);

/// The peer API paths a follower asks the leader on (etcd's).
pub const LEASE_RENEW_PATH: &str = "/leases";
pub const LEASE_TTL_PATH: &str = "/leases/internal";

/// How a follower reaches the leader with a lease question: a protobuf request to one of
/// the paths above, the protobuf answer back. The peer layer provides it.
pub trait LeaderLeases: Send + Sync {
    fn ask(
        &self,
        leader: u64,
        path: &'static str,
        body: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send>>;
}

/// When a lease expires, as the leader sees it.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    At(Instant),
    /// Expired: its revoke is proposed (again at this time if it did not apply). It can no
    /// longer be renewed.
    Revoking(Instant),
}

/// What only the leader's copy means: when each lease expires.
pub(crate) struct Lessor {
    expiry: Mutex<HashMap<i64, Expiry>>,
    /// The raft term in which this member last took the leases up as leader (0: never).
    promoted_term: AtomicU64,
    /// etcd's minimum TTL: 1.5 election timeouts, in whole seconds.
    pub min_ttl: i64,
    /// How long a new leader extends every lease by.
    extend: Duration,
    leader: OnceLock<Arc<dyn LeaderLeases>>,
}

impl Lessor {
    pub fn new(heartbeat: Duration, election_timeout: Duration) -> Lessor {
        let ticks = (election_timeout.as_millis() / heartbeat.as_millis().max(1)) as u32;
        let min = heartbeat * (3 * ticks / 2);
        Lessor {
            expiry: Mutex::new(HashMap::new()),
            promoted_term: AtomicU64::new(0),
            min_ttl: (min.as_millis() as i64 + 999) / 1000,
            extend: election_timeout,
            leader: OnceLock::new(),
        }
    }

    fn expiry(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Expiry>> {
        self.expiry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Server {
    /// Give the lease layer its way to the leader (set once, when the peer transport exists).
    pub(crate) fn set_leader_leases(&self, l: Arc<dyn LeaderLeases>) {
        let _ = self.lessor.leader.set(l);
    }

    fn is_leader(&self) -> bool {
        self.raft.role() == RaftRole::Leader
    }

    pub async fn lease_grant(&self, r: LeaseGrantRequest) -> Result<LeaseGrantResponse, V3Error> {
        if r.ttl > MAX_LEASE_TTL {
            return Err(V3Error::LeaseTtlTooLarge);
        }
        let mut id = r.id;
        while id == 0 {
            id = rand::random::<i64>() & i64::MAX;
        }
        let ttl = r.ttl.max(self.lessor.min_ttl);
        self.check_quota(super::v3::LEASE_COST).await?;
        let req = Request::LeaseGrant(LeaseGrantRequest { ttl, id });
        match self.propose_v3(req).await? {
            V3Response::LeaseGrant(mut resp) => {
                if self.is_leader() {
                    let at = Instant::now() + Duration::from_secs(ttl as u64);
                    self.lessor.expiry().insert(id, Expiry::At(at));
                }
                resp.header = self.v3_header(resp.header);
                Ok(resp)
            }
            other => Err(super::v3::unexpected(other)),
        }
    }

    pub async fn lease_revoke(&self, id: i64) -> Result<LeaseRevokeResponse, V3Error> {
        match self
            .propose_v3(Request::LeaseRevoke(LeaseRevokeRequest { id }))
            .await?
        {
            V3Response::LeaseRevoke(mut resp) => {
                self.lessor.expiry().remove(&id);
                resp.header = self.v3_header(resp.header);
                Ok(resp)
            }
            other => Err(super::v3::unexpected(other)),
        }
    }

    /// Renew a lease; its TTL. The leader renews, a follower asks the leader.
    pub async fn lease_keep_alive(&self, id: i64) -> Result<LeaseKeepAliveResponse, V3Error> {
        self.check_serving()?;
        self.authorize_user()?;
        let ttl = if self.is_leader() {
            self.renew_here(id).await?
        } else {
            let body = LeaseKeepAliveRequest { id }.encode_to_vec();
            let answer = self.ask_leader(LEASE_RENEW_PATH, body).await?;
            LeaseKeepAliveResponse::decode(&answer[..])
                .map_err(|e| V3Error::Internal(format!("etcdserver: the leader's answer: {e}")))?
                .ttl
        };
        Ok(LeaseKeepAliveResponse {
            header: self.v3_header(None),
            id,
            ttl,
        })
    }

    /// As leader: renew `id` for its whole TTL once everything committed is applied here
    /// (so a lease granted a moment ago is known).
    pub(crate) async fn renew_here(&self, id: i64) -> Result<i64, V3Error> {
        if !self.is_leader() {
            return Err(V3Error::NotLeader);
        }
        self.linearize().await?;
        let Some(ttl) = self.read_mvcc().leases().get(&id).map(|l| l.ttl) else {
            return Err(V3Error::LeaseNotFound);
        };
        let mut expiry = self.lessor.expiry();
        let now = Instant::now();
        match expiry.get(&id) {
            // Expired: its revoke is on the way; a renewal must not bring it back.
            Some(Expiry::Revoking(_)) => return Err(V3Error::LeaseNotFound),
            Some(Expiry::At(at)) if *at <= now => return Err(V3Error::LeaseNotFound),
            _ => {}
        }
        expiry.insert(id, Expiry::At(now + Duration::from_secs(ttl as u64)));
        Ok(ttl)
    }

    pub async fn lease_time_to_live(
        &self,
        r: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, V3Error> {
        self.check_serving()?;
        self.authorize_user()?;
        let mut resp = if self.is_leader() {
            self.time_to_live_here(&r).await?
        } else {
            let answer = self.ask_leader(LEASE_TTL_PATH, r.encode_to_vec()).await?;
            LeaseTimeToLiveResponse::decode(&answer[..])
                .map_err(|e| V3Error::Internal(format!("etcdserver: the leader's answer: {e}")))?
        };
        resp.header = self.v3_header(None);
        Ok(resp)
    }

    /// As leader: what is left of a lease (TTL -1 when there is no such lease, as etcd).
    pub(crate) async fn time_to_live_here(
        &self,
        r: &LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, V3Error> {
        if !self.is_leader() {
            return Err(V3Error::NotLeader);
        }
        self.linearize().await?;
        let mvcc = self.read_mvcc();
        let Some(lease) = mvcc.leases().get(&r.id) else {
            return Ok(LeaseTimeToLiveResponse {
                id: r.id,
                ttl: -1,
                ..Default::default()
            });
        };
        let now = Instant::now();
        let remaining = match self.lessor.expiry().get(&r.id) {
            None => lease.ttl,
            Some(Expiry::At(at)) => at.saturating_duration_since(now).as_secs() as i64,
            Some(Expiry::Revoking(_)) => 0,
        };
        Ok(LeaseTimeToLiveResponse {
            header: None,
            id: r.id,
            ttl: remaining,
            granted_ttl: lease.ttl,
            keys: if r.keys {
                lease.keys.iter().cloned().collect()
            } else {
                Vec::new()
            },
        })
    }

    /// Every lease this member holds.
    pub async fn lease_leases(&self) -> Result<LeaseLeasesResponse, V3Error> {
        self.check_serving()?;
        self.authorize_user()?;
        let leases = self
            .read_mvcc()
            .leases()
            .keys()
            .map(|id| LeaseStatus { id: *id })
            .collect();
        Ok(LeaseLeasesResponse {
            header: self.v3_header(None),
            leases,
        })
    }

    async fn ask_leader(&self, path: &'static str, body: Vec<u8>) -> Result<Vec<u8>, V3Error> {
        let leader = self.leader_id();
        if leader == 0 {
            return Err(V3Error::NoLeader);
        }
        let Some(ask) = self.lessor.leader.get() else {
            return Err(V3Error::NoLeader);
        };
        match tokio::time::timeout(self.request_timeout, ask.ask(leader, path, body)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) if e.contains("lease not found") => Err(V3Error::LeaseNotFound),
            Ok(Err(e)) => Err(V3Error::Internal(format!(
                "etcdserver: asking the leader: {e}"
            ))),
            Err(_) => Err(V3Error::Timeout),
        }
    }

    /// The leader's lease clock, run every half second (etcd's revokeExpiredLeases): take
    /// the leases up after becoming leader, then propose a revoke for each expired one.
    pub(crate) fn expire_leases(&self) {
        let term = self.raft_term();
        if !self.is_leader() || self.check_serving().is_err() {
            return;
        }
        let now = Instant::now();
        let leases: Vec<(i64, i64)> = self
            .read_mvcc()
            .leases()
            .iter()
            .map(|(id, l)| (*id, l.ttl))
            .collect();
        let mut expiry = self.lessor.expiry();
        if self.lessor.promoted_term.swap(term, Ordering::Relaxed) != term {
            // A new leader: nobody's expiry from before counts, every lease gets its TTL and
            // an election timeout more (its keep-alives may have gone to the old leader).
            expiry.clear();
            for (id, ttl) in &leases {
                let at = now + Duration::from_secs(*ttl as u64) + self.lessor.extend;
                expiry.insert(*id, Expiry::At(at));
            }
            return;
        }
        let live: std::collections::HashSet<i64> = leases.iter().map(|(id, _)| *id).collect();
        expiry.retain(|id, _| live.contains(id));
        let mut expired = Vec::new();
        for (id, ttl) in leases {
            let e = *expiry
                .entry(id)
                .or_insert_with(|| Expiry::At(now + Duration::from_secs(ttl as u64)));
            let due = match e {
                Expiry::At(at) | Expiry::Revoking(at) => at <= now,
            };
            if due {
                expired.push(id);
                // Asked again later if this revoke does not apply (a lost proposal).
                expiry.insert(id, Expiry::Revoking(now + REVOKE_RETRY));
            }
        }
        drop(expiry);
        for id in expired {
            tracing::info!(lease = format!("{id:016x}"), "lease expired; revoking it");
            // The member's own request: no client to check.
            let data = V3Request {
                request: Some(Request::LeaseRevoke(LeaseRevokeRequest { id })),
                auth: None,
            }
            .encode_to_vec();
            let req = RaftRequest {
                id: 0,
                op: Op::V3(data),
            };
            let _ = self.send(RaftMsg::Propose(req.encode()));
        }
    }
}
