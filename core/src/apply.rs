//! The state machine: committed entries, in order, into the v2 store; results to whoever
//! waits for them; a snapshot every `snapshot_count` applied entries. Nothing here reads a
//! clock: times come from the entries.

use crate::error::Result;
use crate::raft::{RaftMsg, RaftStatus};
use crate::request::{Method, Op, RaftRequest, V2Request};
use crate::storage::Snapshotter;
use crate::v2store::{Event, Store, StoreImage, CLUSTER_PREFIX};
use crate::wait::{Applied, Wait};
use raft::eraftpb::{ConfState, Entry, Snapshot, SnapshotMetadata};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, RwLock};

pub enum ApplyMsg {
    Entries {
        entries: Vec<Entry>,
        conf_state: ConfState,
    },
    /// The leader sent a snapshot: the store becomes its state.
    Restore(Snapshot),
    Stop,
}

/// The etcd cluster version recorded in the store (the v2 API level etcdrs speaks).
pub const CLUSTER_VERSION: &str = "3.4.0";

pub fn members_dir() -> String {
    format!("{CLUSTER_PREFIX}/members")
}

pub fn member_key(id: u64, leaf: &str) -> String {
    format!("{}/{}/{leaf}", members_dir(), crate::member::format_id(id))
}

pub fn version_key() -> String {
    format!("{CLUSTER_PREFIX}/version")
}

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

/// Write one of the cluster's own records (permanent, under /0).
fn set_record(store: &mut Store, key: &str, value: &str) -> Result<()> {
    store.set(key, false, value, None, false, 0).map(|_| ())
}

/// Apply one replicated request to the store.
pub fn apply_op(store: &mut Store, op: &Op) -> Applied {
    match op {
        Op::V2(r) => apply_v2(store, r).map(Some),
        Op::Sync { time } => {
            store.delete_expired_keys(*time);
            Ok(None)
        }
        Op::ClusterInit { members } => {
            if store.peek(&members_dir()).is_none() {
                for (id, peer_urls) in members {
                    let attrs = serde_json::json!({ "peerURLs": peer_urls }).to_string();
                    set_record(store, &member_key(*id, "raftAttributes"), &attrs)?;
                }
            }
            Ok(None)
        }
        Op::Publish {
            member_id,
            attributes,
        } => {
            let attrs = serde_json::to_string(attributes).expect("attributes json");
            set_record(store, &member_key(*member_id, "attributes"), &attrs)?;
            Ok(None)
        }
        Op::ClusterVersion { version } => {
            if store.peek(&version_key()).is_none() {
                set_record(store, &version_key(), version)?;
            }
            Ok(None)
        }
    }
}

pub struct Applier {
    pub store: Arc<RwLock<Store>>,
    pub wait: Arc<Wait>,
    pub status: Arc<RaftStatus>,
    pub snapshotter: Arc<Snapshotter>,
    pub raft_tx: Sender<RaftMsg>,
    pub snapshot_count: u64,
    pub applied: u64,
    pub applied_term: u64,
    pub last_snapshot: u64,
    pub conf_state: ConfState,
}

impl Applier {
    pub fn run(mut self, rx: Receiver<ApplyMsg>) {
        // Snapshots are encoded and fsynced on their own thread so applying never waits.
        let (snap_tx, snap_rx) = std::sync::mpsc::channel::<(StoreImage, SnapshotMetadata)>();
        let busy = Arc::new(AtomicBool::new(false));
        let writer = {
            let (snapshotter, raft_tx, busy) =
                (self.snapshotter.clone(), self.raft_tx.clone(), busy.clone());
            std::thread::Builder::new()
                .name("etcdrs-snapshot".into())
                .spawn(move || {
                    for (image, meta) in snap_rx {
                        let snap = Snapshot { data: image.encode().into(), metadata: Some(meta).into(), ..Default::default() };
                        match snapshotter.save(&snap) {
                            Ok(()) => {
                                let _ = raft_tx.send(RaftMsg::Snapshotted(snap));
                            }
                            Err(e) => tracing::error!(error = %e, "could not save a snapshot; the log keeps growing"),
                        }
                        busy.store(false, Ordering::Release);
                    }
                })
                .expect("spawn snapshot thread")
        };
        while let Ok(msg) = rx.recv() {
            match msg {
                ApplyMsg::Entries {
                    entries,
                    conf_state,
                } => {
                    self.conf_state = conf_state;
                    self.apply_entries(entries);
                    self.maybe_snapshot(&snap_tx, &busy);
                }
                ApplyMsg::Restore(snap) => self.restore(snap),
                ApplyMsg::Stop => break,
            }
        }
        drop(snap_tx);
        let _ = writer.join();
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) {
        let mut results: Vec<(u64, Applied)> = Vec::with_capacity(entries.len());
        {
            let mut store = self.store.write().unwrap_or_else(|p| p.into_inner());
            for e in entries {
                if e.index <= self.applied {
                    continue;
                }
                self.applied = e.index;
                self.applied_term = e.term;
                if e.data.is_empty() || e.get_entry_type() != raft::eraftpb::EntryType::EntryNormal
                {
                    continue;
                }
                match RaftRequest::decode(&e.data) {
                    Ok(req) => {
                        let r = apply_op(&mut store, &req.op);
                        if req.id != 0 {
                            results.push((req.id, r));
                        }
                    }
                    Err(err) => {
                        tracing::error!(index = e.index, error = %err, "skipping an entry that does not decode")
                    }
                }
            }
            self.status.set_has_ttl_keys(store.has_ttl_keys());
        }
        self.status.set_applied(self.applied);
        for (id, r) in results {
            self.wait.trigger(id, r);
        }
    }

    fn maybe_snapshot(
        &mut self,
        snap_tx: &Sender<(StoreImage, SnapshotMetadata)>,
        busy: &AtomicBool,
    ) {
        if self.applied < self.last_snapshot + self.snapshot_count || busy.load(Ordering::Acquire) {
            return;
        }
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
    }

    fn restore(&mut self, snap: Snapshot) {
        let meta = snap.get_metadata();
        if let Err(e) = self
            .store
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .recover(&snap.data)
        {
            tracing::error!(error = %e, "could not restore the store from the leader's snapshot");
            return;
        }
        self.applied = meta.index;
        self.applied_term = meta.term;
        self.last_snapshot = meta.index;
        self.conf_state = meta.get_conf_state().clone();
        self.status.set_applied(self.applied);
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
        let ops = vec![
            Op::ClusterInit {
                members: vec![(7, vec!["http://a:2380".into()])],
            },
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
        let (mut x, mut y) = (Store::new(), Store::new());
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
        // Idempotent cluster records: a second init or version changes nothing.
        let before = x.index();
        apply_op(&mut x, &ops[0]).unwrap();
        apply_op(&mut x, &ops[2]).unwrap();
        assert_eq!(x.index(), before);
    }
}
