//! A running member's shared state and what it answers: the one implementation of every
//! request, used by the HTTP API and by in-process clients alike.

use crate::error::{Error, ErrorCode, Result};
use crate::identity::{format_id, Member};
use crate::membership;
use crate::membership::PeerDirectory;
use crate::metrics::{Metrics, Sample};
use crate::mvcc::{Mvcc, ReadView};
use crate::raft::{PeerStats, RaftMsg, RaftRole, RaftSender, RaftStatus};
use crate::request::{KeyRequest, MemberAttributes, Method, Op, RaftRequest, V2Request};
use crate::status::MemberStatus;
use crate::time::{format_go_duration, format_rfc3339_nano, now_nanos};
use crate::v2store::{path, Event, Store, StoreStats, Watcher, STORE_KEYS_PREFIX};
use crate::wait::{Outcome, Wait};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, UNIX_EPOCH};

/// The answer to a keys-API request: the event (keys as the client named them) and the
/// indices etcd sends as headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyResponse {
    pub event: Event,
    /// X-Etcd-Index: the store index when the answer was made.
    pub etcd_index: u64,
    /// X-Raft-Index: the raft commit index.
    pub raft_index: u64,
    /// X-Raft-Term.
    pub raft_term: u64,
}

/// A registered watch with the headers etcd sends before its first event.
pub struct KeyWatch {
    pub watcher: Watcher,
    pub etcd_index: u64,
    pub raft_index: u64,
    pub raft_term: u64,
}

impl KeyWatch {
    /// The next event, keys as the client named them; None when the watch ended.
    pub fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Event>> {
        self.watcher
            .poll_recv(cx)
            .map(|e| e.map(|e| e.trimmed(STORE_KEYS_PREFIX)))
    }

    /// The next event as a client's watch receives it: its JSON line, keys as the client
    /// named them. Rendered once per event, whichever watcher asks first.
    pub fn poll_next_json_line(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<bytes::Bytes>> {
        self.watcher.poll_recv(cx).map(|e| {
            e.map(|e| e.wire(|e| bytes::Bytes::from(e.trimmed(STORE_KEYS_PREFIX).to_json_line())))
        })
    }

    pub async fn next(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// A stream watch keeps delivering; a plain one ends after its first event.
    pub fn is_stream(&self) -> bool {
        self.watcher.is_stream()
    }
}

pub enum KeyResult {
    Event(KeyResponse),
    Watch(KeyWatch),
}

/// /version: the member's and the cluster's etcd versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    #[serde(rename = "etcdserver")]
    pub server: String,
    #[serde(rename = "etcdcluster")]
    pub cluster: String,
}

/// The etcd version a member reports: the v2 API level etcdrs speaks.
const SERVER_VERSION: &str = "3.4.0";

/// /v2/stats/self.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfStats {
    pub name: String,
    pub id: String,
    pub state: String,
    pub start_time: String,
    pub leader_info: LeaderInfo,
    pub recv_append_request_cnt: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recv_pkg_rate: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recv_bandwidth_rate: f64,
    pub send_append_request_cnt: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub send_pkg_rate: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub send_bandwidth_rate: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderInfo {
    pub leader: String,
    pub uptime: String,
    pub start_time: String,
}

/// /v2/stats/leader (only the leader answers it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderStats {
    pub leader: String,
    pub followers: std::collections::BTreeMap<String, FollowerStatsJson>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowerStatsJson {
    pub latency: LatencyJson,
    pub counts: CountsJson,
}

/// Round-trip times to a follower, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyJson {
    pub current: f64,
    pub average: f64,
    pub standard_deviation: f64,
    pub minimum: f64,
    pub maximum: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountsJson {
    pub fail: u64,
    pub success: u64,
}

mod auth;
mod v2auth;
pub(crate) use auth::{caller, CALLER};
mod compactor;
mod lease;
mod v3;
mod watch;

pub(crate) use compactor::Compactor;
pub(crate) use lease::Lessor;
pub use lease::{LeaderLeases, LEASE_RENEW_PATH, LEASE_TTL_PATH};
pub use v3::V3Limits;

pub struct Server {
    pub(crate) store: Arc<RwLock<Store>>,
    /// The v3 store.
    mvcc: Arc<RwLock<Mvcc>>,
    v3_limits: V3Limits,
    /// --bcrypt-cost and --auth-token-ttl.
    auth_config: crate::auth::AuthConfig,
    /// What one client may hold at once on the client port.
    pub(crate) client_limits: Arc<crate::http::ClientLimits>,
    /// The v2 auth directories are known to exist (made before the first record).
    v2_auth_dirs_ensured: std::sync::atomic::AtomicBool,
    lessor: Lessor,
    watchers: Arc<crate::mvcc::WatchHub>,
    compactor: Compactor,
    raft_tx: RaftSender,
    wait: Arc<Wait>,
    /// Raft's term, leader and role.
    raft: Arc<RaftStatus>,
    /// This member's own state: applied index, stopped, removed, failed.
    pub(crate) status: Arc<MemberStatus>,
    peer_stats: Arc<PeerStats>,
    /// What /metrics reports that is recorded as it happens.
    pub(crate) metrics: Arc<Metrics>,
    /// The current members, by id: only they are heard on the peer API.
    peers: Arc<PeerDirectory>,
    pub member_id: u64,
    pub cluster_id: u64,
    pub name: String,
    /// --initial-cluster-token: part of the id of a member added at runtime.
    token: String,
    client_urls: RwLock<Vec<String>>,
    next_id: AtomicU64,
    request_timeout: Duration,
    /// See `Config::header_read_timeout_ms`.
    pub(crate) header_read_timeout: Duration,
    /// --host-whitelist and --cors, as given (the client API applies them).
    pub(crate) host_whitelist: Vec<String>,
    pub(crate) cors: Vec<String>,
    /// Set once this member's own publish entry is applied (etcd's ReadyNotify).
    ready: tokio::sync::watch::Sender<bool>,
}

fn stopped() -> Error {
    Error::new(ErrorCode::Stopped, "member stopped", 0)
}

/// Map a store path back to the client's key space (etcd's trimErrorPrefix).
fn trim_error(mut e: Error) -> Error {
    if let Some(rest) = e.cause.strip_prefix(STORE_KEYS_PREFIX) {
        e.cause = rest.to_string();
    }
    e
}

/// The store path of a client key.
pub fn store_path(key: &str) -> String {
    let clean = path::clean(key);
    if clean == "/" {
        return STORE_KEYS_PREFIX.to_string();
    }
    let mut p = String::with_capacity(STORE_KEYS_PREFIX.len() + clean.len());
    p.push_str(STORE_KEYS_PREFIX);
    p.push_str(&clean);
    p
}

impl Server {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: Arc<RwLock<Store>>,
        mvcc: Arc<RwLock<Mvcc>>,
        v3_limits: V3Limits,
        lessor: Lessor,
        watchers: Arc<crate::mvcc::WatchHub>,
        compactor: Compactor,
        raft_tx: RaftSender,
        wait: Arc<Wait>,
        raft: Arc<RaftStatus>,
        status: Arc<MemberStatus>,
        peer_stats: Arc<PeerStats>,
        metrics: Arc<Metrics>,
        peers: Arc<PeerDirectory>,
        member_id: u64,
        cluster_id: u64,
        name: String,
        token: String,
        request_timeout: Duration,
        header_read_timeout: Duration,
        (host_whitelist, cors): (Vec<String>, Vec<String>),
        auth_config: crate::auth::AuthConfig,
        client_limits: Arc<crate::http::ClientLimits>,
    ) -> Server {
        Server {
            client_limits,
            auth_config,
            v2_auth_dirs_ensured: Default::default(),
            store,
            mvcc,
            v3_limits,
            lessor,
            watchers,
            compactor,
            raft_tx,
            wait,
            raft,
            status,
            peer_stats,
            metrics,
            peers,
            member_id,
            cluster_id,
            name,
            token,
            client_urls: RwLock::new(Vec::new()),
            next_id: AtomicU64::new(rand::random::<u64>() >> 16 | 1),
            request_timeout,
            header_read_timeout,
            host_whitelist,
            cors,
            ready: tokio::sync::watch::channel(false).0,
        }
    }

    /// This member's attributes are applied here, and so is everything committed before
    /// them: what it answers from its store includes every write acknowledged before a
    /// restart. Clients are served from then on, as etcd serves them after ReadyNotify.
    pub(crate) fn set_ready(&self) {
        self.ready.send_replace(true);
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Wait until the member is ready (see `set_ready`).
    pub async fn ready(&self) {
        let _ = self.ready.subscribe().wait_for(|r| *r).await;
    }

    pub(crate) fn set_client_urls(&self, urls: Vec<String>) {
        *self.client_urls.write().unwrap_or_else(|p| p.into_inner()) = urls;
    }

    pub fn client_urls(&self) -> Vec<String> {
        self.client_urls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn send(&self, msg: RaftMsg) -> Result<()> {
        self.raft_tx.send(msg).map_err(|_| stopped())
    }

    fn read_store(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn raft_term(&self) -> u64 {
        self.raft.term()
    }

    pub fn raft_index(&self) -> u64 {
        self.raft.commit()
    }

    /// The last raft index this member applied.
    pub fn applied_index(&self) -> u64 {
        self.status.applied()
    }

    pub fn leader_id(&self) -> u64 {
        self.raft.leader()
    }

    fn check_serving(&self) -> Result<()> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        if self.status.stopped() {
            return Err(stopped());
        }
        if self.status.removed() {
            return Err(Error::new(
                ErrorCode::MemberRemoved,
                "the member has been permanently removed from the cluster",
                0,
            ));
        }
        Ok(())
    }

    /// Why this member failed (its raft driver, log writer or apply loop died) and serves no
    /// more; None while it runs.
    #[inline]
    pub fn failure(&self) -> Option<Error> {
        if !self.status.failed() {
            return None;
        }
        self.failure_error()
    }

    #[cold]
    fn failure_error(&self) -> Option<Error> {
        let cause = self.status.failure().unwrap_or_default();
        Some(Error::new(
            ErrorCode::Stopped,
            format!("member failed: {cause}"),
            0,
        ))
    }

    /// Resolves once this member has failed.
    pub async fn failed(&self) {
        self.status.wait_failed().await
    }

    /// Put a request through raft and wait until it is applied here.
    pub async fn propose(&self, op: Op) -> Result<Option<Event>> {
        self.replicate(|id| RaftMsg::Propose(RaftRequest { id, op }.encode()))
            .await
            .and_then(Outcome::into_v2)
    }

    /// Send what `msg` builds (given its wait id) to raft; wait until applied here.
    async fn replicate(&self, msg: impl FnOnce(u64) -> RaftMsg) -> Result<Outcome> {
        self.check_serving()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let rx = self.wait.register(id);
        if let Err(e) = self.send(msg(id)) {
            self.wait.cancel(id);
            return Err(e);
        }
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(stopped()),
            Err(_) => {
                self.wait.cancel(id);
                self.metrics.proposals_failed.inc();
                // What etcd answers when an entry does not commit in time.
                Err(Error::new(
                    ErrorCode::RaftInternal,
                    "etcdserver: request timed out",
                    0,
                ))
            }
        }
    }

    /// Wait until this member has applied everything a quorum had committed when the read
    /// arrived (raft ReadIndex), so the read that follows is linearizable.
    pub async fn linearize(&self) -> Result<()> {
        // The only voter, leading: every write it acknowledged is in its store already
        // (writes answer once applied) and no other member can commit one. raft's own
        // ReadIndex answers such a leader at once too; this saves the round through the
        // raft task (most of an in-process linearizable read).
        if self.raft.sole_voter() {
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(RaftMsg::ReadIndex(tx))?;
        let index = match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => return Err(stopped()),
            Err(_) => {
                return Err(Error::new(
                    ErrorCode::RaftInternal,
                    "etcdserver: request timed out",
                    0,
                ))
            }
        };
        tokio::time::timeout(self.request_timeout, self.status.wait_applied(index))
            .await
            .map_err(|_| Error::new(ErrorCode::RaftInternal, "etcdserver: request timed out", 0))
    }

    /// Answer one keys-API request.
    pub async fn handle(&self, req: KeyRequest) -> Result<KeyResult> {
        self.handle_inner(req).await.map_err(trim_error)
    }

    async fn handle_inner(&self, req: KeyRequest) -> Result<KeyResult> {
        req.validate()?;
        self.check_serving()?;
        if !self.is_ready() {
            tokio::time::timeout(self.request_timeout, self.ready())
                .await
                .map_err(|_| {
                    Error::new(ErrorCode::RaftInternal, "etcdserver: request timed out", 0)
                })?;
        }
        let p = store_path(&req.key);
        match req.method {
            // A quorum read answers at once, wait or not (etcd turns it into a QGET).
            Method::Get if req.wait && !req.quorum => {
                let watcher =
                    self.read_store()
                        .watch(&p, req.recursive, req.stream, req.wait_index)?;
                Ok(KeyResult::Watch(KeyWatch {
                    etcd_index: watcher.start_index(),
                    watcher,
                    raft_index: self.raft_index(),
                    raft_term: self.raft_term(),
                }))
            }
            Method::Get | Method::Head => {
                if req.quorum && req.method == Method::Get {
                    self.linearize().await?;
                }
                let event = self
                    .read_store()
                    .get(&p, req.recursive, req.sorted, now_nanos())?;
                Ok(KeyResult::Event(self.respond(event)))
            }
            Method::Put | Method::Post | Method::Delete => {
                let now = now_nanos();
                let v2 = V2Request {
                    method: req.method,
                    path: p,
                    value: req.value.unwrap_or_default(),
                    dir: req.dir,
                    prev_value: req.prev_value.unwrap_or_default(),
                    prev_index: req.prev_index,
                    prev_exist: req.prev_exist,
                    expiration: req.ttl.map(|t| {
                        now.saturating_add(
                            i64::try_from(t)
                                .unwrap_or(i64::MAX)
                                .saturating_mul(1_000_000_000),
                        )
                    }),
                    refresh: req.refresh == Some(true),
                    recursive: req.recursive,
                    time: now,
                };
                let event = self.propose(Op::V2(v2)).await?.ok_or_else(|| {
                    Error::new(
                        ErrorCode::RaftInternal,
                        "received response with no Event",
                        0,
                    )
                })?;
                Ok(KeyResult::Event(self.respond(event)))
            }
        }
    }

    fn respond(&self, event: Event) -> KeyResponse {
        KeyResponse {
            etcd_index: event.etcd_index,
            event: event.into_trimmed(STORE_KEYS_PREFIX),
            raft_index: self.raft_index(),
            raft_term: self.raft_term(),
        }
    }

    pub fn version(&self) -> Version {
        Version {
            server: SERVER_VERSION.to_string(),
            cluster: crate::apply::CLUSTER_VERSION.to_string(),
        }
    }

    /// /metrics: what is recorded as it happens, and the rest read now.
    pub fn metrics_text(&self) -> String {
        let st = self.store_stats();
        let mut sample = Sample {
            has_leader: self.raft.leader() != 0,
            is_leader: self.raft.role() == RaftRole::Leader,
            leader_changes: self.raft.leader_changes(),
            committed_index: self.raft.commit(),
            applied_index: self.applied_index(),
            pending_proposals: self.wait.pending(),
            server_version: SERVER_VERSION.to_string(),
            cluster_version: crate::apply::CLUSTER_VERSION.to_string(),
            member_id: self.member_id,
            // etcd's action names.
            store_reads: vec![("get", st.gets_success, st.gets_fail)],
            store_writes: vec![
                ("set", st.sets_success, st.sets_fail),
                ("create", st.create_success, st.create_fail),
                ("update", st.update_success, st.update_fail),
                ("delete", st.delete_success, st.delete_fail),
                (
                    "compareAndSwap",
                    st.compare_and_swap_success,
                    st.compare_and_swap_fail,
                ),
                (
                    "compareAndDelete",
                    st.compare_and_delete_success,
                    st.compare_and_delete_fail,
                ),
            ],
            store_expires: st.expire_count,
            store_watchers: st.watchers,
            v3_watchers: self.watchers.count(),
            ..Sample::default()
        };
        {
            let mvcc = self.read_mvcc();
            sample.db_size = mvcc.db_size();
            sample.current_revision = ReadView::current_revision(&*mvcc);
            sample.compact_revision = mvcc.compacted_revision();
            sample.keys = mvcc.key_count();
            sample.leases = mvcc.leases().len() as u64;
        }
        crate::metrics::render(&self.metrics, sample)
    }

    /// The hidden children of a v2 directory, for the dashboard's keys browser.
    pub fn hidden_keys(&self, key: &str) -> Result<Vec<crate::v2store::NodeExtern>> {
        let mut nodes = self
            .read_store()
            .hidden_children(&store_path(key), now_nanos())
            .map_err(trim_error)?;
        for n in &mut nodes {
            n.trim_prefix(STORE_KEYS_PREFIX);
        }
        Ok(nodes)
    }

    pub fn store_stats(&self) -> StoreStats {
        self.read_store().stats()
    }

    pub fn self_stats(&self) -> SelfStats {
        let (leader, since, since_wall) = self.raft.leader_since();
        let nanos = |t: std::time::SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64)
        };
        let counts = self.peer_stats.append_counts();
        SelfStats {
            name: self.name.clone(),
            id: format_id(self.member_id),
            state: self.raft.role().etcd_name().to_string(),
            start_time: format_rfc3339_nano(nanos(self.status.start_time)),
            leader_info: LeaderInfo {
                leader: if leader == 0 {
                    String::new()
                } else {
                    format_id(leader)
                },
                uptime: format_go_duration(since.elapsed().as_nanos()),
                start_time: format_rfc3339_nano(nanos(since_wall)),
            },
            recv_append_request_cnt: counts.recv_append,
            recv_pkg_rate: counts.recv_pkg_rate,
            recv_bandwidth_rate: counts.recv_bandwidth_rate,
            send_append_request_cnt: counts.send_append,
            send_pkg_rate: counts.send_pkg_rate,
            send_bandwidth_rate: counts.send_bandwidth_rate,
        }
    }

    /// Leader statistics; members that are not the leader answer etcd's "not current leader".
    pub fn leader_stats(&self) -> Option<LeaderStats> {
        if self.raft.role() != RaftRole::Leader {
            return None;
        }
        let ids: Vec<u64> = self.members().iter().map(|m| m.id).collect();
        let followers = self
            .peer_stats
            .followers(&ids, self.member_id)
            .into_iter()
            .map(|(id, f)| {
                let json = FollowerStatsJson {
                    latency: LatencyJson {
                        current: f.latency_current,
                        average: f.latency_average(),
                        standard_deviation: f.latency_stddev(),
                        minimum: f.latency_min,
                        maximum: f.latency_max,
                    },
                    counts: CountsJson {
                        fail: f.fail,
                        success: f.success,
                    },
                };
                (format_id(id), json)
            })
            .collect();
        Some(LeaderStats {
            leader: format_id(self.member_id),
            followers,
        })
    }

    /// The cluster's members, from the replicated records.
    pub fn members(&self) -> Vec<Member> {
        membership::read_members(&self.read_store())
    }

    /// Add a member with these peer URLs (etcd's POST /v2/members); it then starts with
    /// --initial-cluster-state existing and catches up.
    pub async fn add_member(&self, peer_urls: Vec<String>) -> Result<Member> {
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let member = Member {
            // As etcd: unique even when the same URLs come back after a removal.
            id: crate::identity::member_id(&peer_urls, &format!("{}{now}", self.token)),
            name: String::new(),
            peer_urls,
            client_urls: Vec::new(),
        };
        self.replicate(|id| RaftMsg::ProposeConfChange(membership::add_change(id, &member)))
            .await?
            .into_v2()?;
        Ok(member)
    }

    pub async fn remove_member(&self, id: u64) -> Result<()> {
        self.replicate(|wait| RaftMsg::ProposeConfChange(membership::remove_change(wait, id)))
            .await?
            .into_v2()
            .map(|_| ())
    }

    pub async fn update_member(&self, id: u64, peer_urls: Vec<String>) -> Result<()> {
        self.propose(Op::MemberUpdate {
            member_id: id,
            peer_urls,
        })
        .await
        .map(|_| ())
    }

    /// Whether `id` was removed from the cluster (its messages are refused).
    pub fn is_removed_member(&self, id: u64) -> bool {
        membership::is_removed(&self.read_store(), id)
    }

    /// Whether `id` is another current member of this cluster (whose messages are heard).
    pub fn is_peer(&self, id: u64) -> bool {
        id != self.member_id && self.peers.contains(id)
    }

    /// A raft message from a peer.
    pub fn step(&self, msg: raft::eraftpb::Message) {
        let _ = self.send(RaftMsg::Step(msg));
    }

    pub fn is_removed(&self) -> bool {
        self.status.removed()
    }

    pub fn leader(&self) -> Option<Member> {
        let id = self.leader_id();
        if id == 0 {
            return None;
        }
        self.members().into_iter().find(|m| m.id == id)
    }

    /// Every member's client URLs (/v2/machines).
    pub fn machines(&self) -> Vec<String> {
        self.members()
            .into_iter()
            .flat_map(|m| m.client_urls)
            .collect()
    }

    /// Healthy: a leader is known, the log is writable and a quorum read gets through in
    /// time (so the cluster's index can move).
    pub async fn healthy(&self) -> bool {
        if self.leader_id() == 0 || self.check_serving().is_err() {
            return false;
        }
        tokio::time::timeout(Duration::from_secs(1), self.linearize())
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub(crate) fn has_store_key(&self, p: &str) -> bool {
        self.read_store().peek(p).is_some()
    }

    pub(crate) fn attributes(&self) -> MemberAttributes {
        MemberAttributes {
            name: self.name.clone(),
            client_urls: self.client_urls(),
        }
    }

    /// How often the auto-compactor looks; None when it is off.
    pub(crate) fn auto_compaction_period(&self) -> Option<Duration> {
        self.compactor.period()
    }

    /// The leader's clock, replicated (etcd's EtcdServer.sync): every replica expires TTL
    /// keys when it applies the entry, so expiry follows one clock and a partitioned
    /// minority expires nothing. Only the leader proposes, only when there are TTL keys;
    /// nobody waits for it.
    pub(crate) fn sync_ttl(&self) {
        if self.raft.role() != RaftRole::Leader
            || !self.status.has_ttl_keys()
            || self.check_serving().is_err()
        {
            return;
        }
        let req = RaftRequest {
            id: 0,
            op: Op::Sync { time: now_nanos() },
        };
        let _ = self.send(RaftMsg::Propose(req.encode()));
    }

    pub(crate) fn stop_raft(&self) {
        self.status.set_stopped();
        let _ = self.send(RaftMsg::Stop);
    }
}
