//! The state machine: committed entries, in order, into the v2 store; results to whoever
//! waits for them; a snapshot every `snapshot_count` applied entries. Nothing here reads a
//! clock: times come from the entries. It runs as a task on the member's runtime, so the
//! proposers it wakes are woken from inside the runtime, not across threads.

pub mod v3;

use crate::error::{Error, ErrorCode, Result, V3Error};
use crate::membership;
use crate::membership::PeerDirectory;
use crate::mvcc::{Mvcc, WatchHub};
use crate::raft::{RaftMsg, RaftSender, ToApply};
use crate::request::{Method, Op, RaftRequest, V2Request};
use crate::status::MemberStatus;
use crate::storage::{SnapshotData, Snapshotter};
use crate::v2store::{Event, Store, StoreImage};
use crate::wait::{Applied, Outcome, Wait};
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, Snapshot, SnapshotMetadata,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, RwLock};

/// The etcd cluster version recorded in the store (the v2 API level etcdrs speaks).
pub const CLUSTER_VERSION: &str = "3.4.0";

/// Apply one keys-API mutation the way etcd's applierV2store does.
pub fn apply_v2(store: &mut Store, r: &V2Request) -> Result<Event> {
    let now = r.time;
    match r.method {
        Method::Post => store.create(&r.path, r.dir, &r.value, true, r.expiration, now),
        Method::Delete if r.prev_index > 0 || !r.prev_value.is_empty() => {
            store.compare_and_delete(&r.path, &r.prev_value, r.prev_index, now)
        }
        Method::Delete => store.delete(&r.path, r.dir, r.recursive, now),
        Method::Put => {
            let compare = r.prev_index > 0 || !r.prev_value.is_empty();
            match r.prev_exist {
                Some(false) => store.create(&r.path, r.dir, &r.value, false, r.expiration, now),
                Some(true) if !compare => {
                    store.update(&r.path, &r.value, r.expiration, r.refresh, now)
                }
                // prevExist=true with a condition, or a plain condition
                _ if compare => store.compare_and_swap(
                    &r.path,
                    &r.prev_value,
                    r.prev_index,
                    &r.value,
                    r.expiration,
                    r.refresh,
                    now,
                ),
                _ => store.set(&r.path, r.dir, &r.value, r.expiration, r.refresh, now),
            }
        }
        // Reads never become entries.
        Method::Get | Method::Head => store.get(&r.path, r.recursive, false, now),
    }
}

/// Apply one replicated request to the store.
pub fn apply_op(store: &mut Store, op: &Op) -> Applied {
    match op {
        Op::V2(r) => apply_v2(store, r).map(Some),
        Op::Sync { time } => {
            store.delete_expired_keys(*time);
            Ok(None)
        }
        Op::Publish {
            member_id,
            attributes,
        } => membership::publish(store, *member_id, attributes).map(|_| None),
        Op::MemberUpdate {
            member_id,
            peer_urls,
        } => membership::update_member(store, *member_id, peer_urls).map(|_| None),
        Op::ClusterVersion { version } => membership::set_version(store, version).map(|_| None),
        // v3 writes go to the v3 store (`Applier::apply_v3`).
        Op::V3(_) => Ok(None),
    }
}

/// Apply one v3 entry's request; its changes join `events`.
fn apply_v3(
    mvcc: &mut Mvcc,
    data: &[u8],
    events: &mut Vec<crate::pb::mvccpb::Event>,
) -> std::result::Result<v3::V3Response, V3Error> {
    use prost::Message as _;
    let undecodable = || V3Error::Internal("etcdserver: a v3 entry that does not decode".into());
    let entry = crate::pb::etcdrs::V3Request::decode(data).map_err(|_| undecodable())?;
    let req = entry.request.ok_or_else(undecodable)?;
    let (result, changes) = v3::apply(mvcc, req, entry.auth.as_ref());
    events.extend(changes);
    result
}

fn v3_failed(e: crate::mvcc::MvccError) -> Error {
    Error::new(ErrorCode::Corrupt, format!("the v3 store failed: {e:?}"), 0)
}

pub struct Applier {
    pub store: Arc<RwLock<Store>>,
    /// The v3 store: entries it already holds (up to its consistent index) are not
    /// applied to it again when the log replays.
    pub mvcc: Arc<RwLock<Mvcc>>,
    /// v3 watchers, told of each batch's changes once they commit.
    pub watchers: Arc<WatchHub>,
    pub wait: Arc<Wait>,
    pub status: Arc<MemberStatus>,
    pub snapshotter: Arc<Snapshotter>,
    pub raft_tx: RaftSender,
    pub snapshot_count: u64,
    pub applied: u64,
    pub applied_term: u64,
    pub last_snapshot: u64,
    pub conf_state: ConfState,
    pub member_id: u64,
    /// Where peers are reached; kept equal to the applied member records.
    pub peers: Arc<PeerDirectory>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// etcd warns when applying takes longer than this (its warning-apply-duration).
const SLOW_APPLY: std::time::Duration = std::time::Duration::from_millis(100);

impl Applier {
    /// Apply what raft commits, as a task on `runtime`, until told to stop. Snapshots are
    /// encoded and fsynced on their own thread (returned, to be joined after the stop) so
    /// applying never waits for them.
    pub fn start(
        self,
        rx: tokio::sync::mpsc::UnboundedReceiver<ToApply>,
        runtime: &tokio::runtime::Handle,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let (snap_tx, snap_rx) = std::sync::mpsc::channel::<(StoreImage, SnapshotMetadata)>();
        let busy = Arc::new(AtomicBool::new(false));
        let (snapshotter, raft_tx, writer_busy) =
            (self.snapshotter.clone(), self.raft_tx.clone(), busy.clone());
        let writer = std::thread::Builder::new()
            .name("etcdrs-snapshot".into())
            .spawn(move || {
                for (image, meta) in snap_rx {
                    let mut snap = Snapshot {
                        data: image.encode().into(),
                        metadata: Some(meta).into(),
                        ..Default::default()
                    };
                    match snapshotter.save(&snap) {
                        Ok(()) => {
                            let _ = raft_tx.send(RaftMsg::Snapshotted(snap.take_metadata()));
                        }
                        Err(e) => tracing::error!(
                            error = %e,
                            "could not save a snapshot; the log keeps growing"
                        ),
                    }
                    writer_busy.store(false, Ordering::Release);
                }
            })?;
        let status = self.status.clone();
        status.spawn_vital(runtime, "apply loop", self.run(rx, snap_tx, busy));
        Ok(writer)
    }

    async fn run(
        mut self,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<ToApply>,
        snap_tx: Sender<(StoreImage, SnapshotMetadata)>,
        busy: Arc<AtomicBool>,
    ) -> Result<()> {
        while let Some(msg) = rx.recv().await {
            match msg {
                ToApply::Entries(entries) => {
                    let (started, count) = (std::time::Instant::now(), entries.len());
                    self.apply_entries(entries)?;
                    let took = started.elapsed();
                    if took > SLOW_APPLY {
                        self.metrics.slow_applies.inc();
                        tracing::warn!(took = ?took, expected = ?SLOW_APPLY, entries = count, "apply request took too long");
                    }
                    self.maybe_snapshot(&snap_tx, &busy, false)?;
                }
                // Decoding a whole store takes a while: let the worker's other tasks move.
                ToApply::Snapshot(snap) => tokio::task::block_in_place(|| self.restore(snap))?,
                ToApply::SnapshotWanted => self.maybe_snapshot(&snap_tx, &busy, true)?,
                ToApply::Stop => break,
            }
        }
        Ok(())
    }

    /// Apply a batch of committed entries. An error means the v3 store failed: the member
    /// can no longer apply, and fails.
    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<()> {
        let mut results: Vec<(u64, Outcome)> = Vec::with_capacity(entries.len());
        let mut members_changed = false;
        {
            let store = self.store.clone();
            let mut store = store.write().unwrap_or_else(|p| p.into_inner());
            let mvcc = self.mvcc.clone();
            let mut mvcc = mvcc.write().unwrap_or_else(|p| p.into_inner());
            let mut v3_applied = false;
            let mut v3_events = Vec::new();
            for e in entries {
                if e.index <= self.applied {
                    // Already in the store; raft still waits to hear of a conf change.
                    if e.get_entry_type() == EntryType::EntryConfChange {
                        let _ = self.raft_tx.send(RaftMsg::ConfChangeApplied {
                            index: e.index,
                            change: None,
                        });
                    }
                    continue;
                }
                self.applied = e.index;
                self.applied_term = e.term;
                if e.get_entry_type() == EntryType::EntryConfChange {
                    members_changed = true;
                    let (id, r, change) = self.apply_conf_change(&mut store, &e);
                    // Raft hears of every conf change entry, taken or refused, in order.
                    let _ = self.raft_tx.send(RaftMsg::ConfChangeApplied {
                        index: e.index,
                        change,
                    });
                    if id != 0 {
                        results.push((id, Outcome::V2(r)));
                    }
                    continue;
                }
                if e.data.is_empty() || e.get_entry_type() != EntryType::EntryNormal {
                    continue;
                }
                match RaftRequest::decode(&e.data) {
                    Ok(RaftRequest {
                        id,
                        op: Op::V3(data),
                    }) => {
                        if e.index <= mvcc.consistent_index() {
                            continue; // the v3 store has it from before a restart
                        }
                        v3_applied = true;
                        let r = apply_v3(&mut mvcc, &data, &mut v3_events);
                        if let Err(V3Error::Backend(why)) = &r {
                            return Err(Error::new(
                                ErrorCode::Corrupt,
                                format!("the v3 store failed at index {}: {why}", e.index),
                                0,
                            ));
                        }
                        if id != 0 {
                            results.push((id, Outcome::V3(r)));
                        }
                    }
                    Ok(req) => {
                        members_changed |=
                            matches!(req.op, Op::Publish { .. } | Op::MemberUpdate { .. });
                        let r = apply_op(&mut store, &req.op);
                        if req.id != 0 {
                            results.push((req.id, Outcome::V2(r)));
                        }
                    }
                    Err(err) => {
                        tracing::error!(index = e.index, error = %err, "skipping an entry that does not decode")
                    }
                }
            }
            if v3_applied {
                mvcc.finish_batch(self.applied, false).map_err(v3_failed)?;
                // Still under the store's write lock: no catch-up pass sees half of it.
                if !v3_events.is_empty() {
                    self.watchers.notify(&v3_events, mvcc.current_revision());
                }
            }
            self.status.set_has_ttl_keys(store.has_ttl_keys());
            if members_changed {
                self.peers.replace(&membership::read_members(&store));
            }
        }
        self.status.set_applied(self.applied);
        // On the runtime: proposers' tasks are woken without crossing threads.
        for (id, r) in results {
            self.wait.trigger(id, r);
        }
        Ok(())
    }

    /// Validate and record a conf change: the proposer's wait id, its result, and the change
    /// raft's configuration is to follow (None when refused).
    fn apply_conf_change(
        &mut self,
        store: &mut Store,
        e: &Entry,
    ) -> (u64, Applied, Option<ConfChange>) {
        let cc = match ConfChange::parse_from_bytes(&e.data) {
            Ok(cc) => cc,
            Err(err) => {
                tracing::error!(index = e.index, error = %err, "skipping a conf change that does not decode");
                return (0, Ok(None), None);
            }
        };
        if let Err(err) = membership::apply_conf_change(store, &cc) {
            tracing::info!(index = e.index, error = %err, "rejected a membership change");
            return (cc.id, Err(err), None);
        }
        let voters = &mut self.conf_state.voters;
        match cc.get_change_type() {
            ConfChangeType::RemoveNode => {
                voters.retain(|v| *v != cc.node_id);
                tracing::info!(member = %crate::identity::format_id(cc.node_id), "removed a member");
                if cc.node_id == self.member_id {
                    tracing::warn!("this member has been permanently removed from the cluster");
                    self.status.set_removed();
                }
            }
            _ => {
                if !voters.contains(&cc.node_id) {
                    voters.push(cc.node_id);
                }
                tracing::info!(member = %crate::identity::format_id(cc.node_id), "added a member");
            }
        }
        (cc.id, Ok(None), Some(cc))
    }

    fn maybe_snapshot(
        &mut self,
        snap_tx: &Sender<(StoreImage, SnapshotMetadata)>,
        busy: &AtomicBool,
        now: bool,
    ) -> Result<()> {
        let due = now || self.applied >= self.last_snapshot + self.snapshot_count;
        if !due || busy.load(Ordering::Acquire) {
            return Ok(());
        }
        // The snapshot lets the log before it go: the v3 store must hold it durably first.
        self.mvcc
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .commit_durable(self.applied)
            .map_err(v3_failed)?;
        let image = self
            .store
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .freeze();
        let mut meta = SnapshotMetadata {
            index: self.applied,
            term: self.applied_term,
            ..Default::default()
        };
        meta.set_conf_state(self.conf_state.clone());
        busy.store(true, Ordering::Release);
        self.last_snapshot = self.applied;
        if snap_tx.send((image, meta)).is_err() {
            busy.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// The store becomes the leader's snapshot. The snapshot was checked when it arrived; a
    /// store that cannot take it no longer matches the log: an error, and the member fails.
    fn restore(&mut self, snap: Snapshot) -> Result<()> {
        let meta = snap.get_metadata();
        let data = SnapshotData::split(&snap.data)?;
        if let Some(v3) = data.v3 {
            let mut mvcc = self.mvcc.write().unwrap_or_else(|p| p.into_inner());
            self.watchers.unsync_all();
            mvcc.restore(v3).map_err(|e| {
                Error::new(
                    ErrorCode::Corrupt,
                    format!("could not restore the v3 store from the leader's snapshot: {e:?}"),
                    0,
                )
            })?;
        }
        {
            let mut store = self.store.write().unwrap_or_else(|p| p.into_inner());
            store.recover(data.v2).map_err(|e| {
                Error::new(
                    ErrorCode::Corrupt,
                    format!(
                        "could not restore the store from the leader's snapshot: {}",
                        e.cause
                    ),
                    0,
                )
            })?;
            self.peers.replace(&membership::read_members(&store));
        }
        self.applied = meta.index;
        self.applied_term = meta.term;
        self.last_snapshot = meta.index;
        self.conf_state = meta.get_conf_state().clone();
        self.status.set_applied(self.applied);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::MemberAttributes;

    const T: i64 = 1_800_000_000_000_000_000;
    const S: i64 = 1_000_000_000;

    fn put(path: &str, value: &str, ttl_s: Option<i64>, time: i64) -> Op {
        Op::V2(V2Request {
            method: Method::Put,
            path: format!("/1{path}"),
            value: value.into(),
            dir: false,
            prev_value: String::new(),
            prev_index: 0,
            prev_exist: None,
            expiration: ttl_s.map(|t| time + t * S),
            refresh: false,
            recursive: false,
            time,
        })
    }

    /// Replicas applying the same entries reach the same state, whatever their clocks.
    #[test]
    fn apply_is_deterministic() {
        let ops = [
            Op::Publish {
                member_id: 7,
                attributes: MemberAttributes {
                    name: "a".into(),
                    client_urls: vec![],
                },
            },
            Op::ClusterVersion {
                version: CLUSTER_VERSION.into(),
            },
            put("/a", "1", Some(5), T),
            put("/b", "2", None, T + S),
            Op::Sync { time: T + 3 * S },
            put("/a", "3", Some(1), T + 4 * S),
            Op::Sync { time: T + 6 * S },
            Op::V2(V2Request {
                method: Method::Post,
                ..match put("/q", "job", None, T + 7 * S) {
                    Op::V2(r) => r,
                    _ => unreachable!(),
                }
            }),
        ];
        let boot = || membership::bootstrap_store(&[(7, vec!["http://a:2380".into()])]);
        let (mut x, mut y) = (boot(), boot());
        let rx: Vec<_> = ops
            .iter()
            .map(|op| apply_op(&mut x, op).map(|e| e.map(|e| e.to_json())))
            .collect();
        // A read on one replica in between must not change what the other computes.
        let _ = y.get("/1/a", false, false, 0);
        let ry: Vec<_> = ops
            .iter()
            .map(|op| apply_op(&mut y, op).map(|e| e.map(|e| e.to_json())))
            .collect();
        assert_eq!(rx, ry);
        assert_eq!(
            x.peek("/1/a"),
            None,
            "expired by the second sync, not by a clock"
        );
        assert_eq!(x.index(), y.index());
        // The whole tree (counters aside: reads are local and counted where they happen).
        let tree = |s: &Store| s.get("/", true, true, T).unwrap().to_json();
        assert_eq!(tree(&x), tree(&y));
        assert!(tree(&x).contains("/1/q/"), "{}", tree(&x));
        assert_eq!(
            x.peek("/0/version").and_then(|n| n.value).as_deref(),
            Some(CLUSTER_VERSION)
        );
        // The cluster version is recorded once: a second one changes nothing.
        let before = x.index();
        apply_op(&mut x, &ops[1]).unwrap();
        assert_eq!(x.index(), before);
    }
}
