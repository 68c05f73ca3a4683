//! Durable state of one member in `--data-dir`: the write-ahead log, snapshots, and the
//! member's identity; plus the raft `Storage` view of them.

mod snap;
mod wal;

pub use snap::{SnapshotData, Snapshotter};
pub use wal::{Replay, Wal};

use crate::error::{Error, ErrorCode, Result};
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// The identity a member is created with; kept so a restart rejoins the same cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberMeta {
    pub member_id: u64,
    pub cluster_id: u64,
}

pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: &Path) -> DataDir {
        DataDir {
            root: root.to_path_buf(),
        }
    }
    pub fn wal_dir(&self) -> PathBuf {
        self.root.join("member").join("wal")
    }
    pub fn snap_dir(&self) -> PathBuf {
        self.root.join("member").join("snap")
    }
    /// The v3 store's file (where etcd keeps its bbolt db).
    pub fn v3_store_path(&self) -> PathBuf {
        self.snap_dir().join("db")
    }
    pub fn meta_path(&self) -> PathBuf {
        self.root.join("member").join("meta.json")
    }

    /// Take the data dir for this process: a second member on the same dir would corrupt it.
    pub fn lock(&self) -> Result<std::fs::File> {
        let dir = self.root.join("member");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display(), e))?;
        let p = dir.join("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io(p.display(), e))?;
        f.try_lock().map_err(|_| {
            Error::new(
                ErrorCode::InvalidConfig,
                format!(
                    "data dir {} is in use by another member",
                    self.root.display()
                ),
                0,
            )
        })?;
        Ok(f)
    }

    pub fn read_meta(&self) -> Result<Option<MemberMeta>> {
        let p = self.meta_path();
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::new(ErrorCode::Corrupt, format!("{}: {e}", p.display()), 0)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p.display(), e)),
        }
    }

    pub fn write_meta(&self, meta: &MemberMeta) -> Result<()> {
        let p = self.meta_path();
        let dir = p.parent().expect("member dir");
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        let tmp = p.with_extension("json.tmp");
        let body = serde_json::to_vec(meta).expect("meta json");
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, &body)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &p)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| Error::io(p.display(), e))
    }
}

/// raft-rs's view of the log: entries in memory (raft's MemStorage), every one of them
/// already durable in the WAL, plus which saved snapshot serves lagging peers. Its data is
/// read from the snapshot file when a peer needs it: kept in memory, it would hold a second
/// copy of the whole store (~100 MB per million keys) for a rare event.
#[derive(Clone)]
pub struct RaftStorage {
    mem: MemStorage,
    snapshot: Arc<RwLock<SnapshotMetadata>>,
    snapshotter: Arc<Snapshotter>,
    /// A peer asked for a snapshot the saved one cannot serve.
    snapshot_wanted: Arc<AtomicBool>,
}

impl RaftStorage {
    /// Rebuild from the newest snapshot (saved by `snapshotter`, unless it is a joining
    /// member's empty one) and the replayed log.
    pub fn restore(
        snapshot: &SnapshotMetadata,
        snapshotter: Arc<Snapshotter>,
        replay: &Replay,
    ) -> Result<RaftStorage> {
        let mem = MemStorage::new();
        let snap_index = snapshot.index;
        {
            let mut core = mem.wl();
            if snap_index == 0 {
                // A member joining an existing cluster has no snapshot until the leader sends one.
                core.set_conf_state(snapshot.get_conf_state().clone());
            } else {
                core.apply_snapshot(Snapshot {
                    metadata: Some(snapshot.clone()).into(),
                    ..Default::default()
                })
                .map_err(raft_err)?;
            }
            let entries: Vec<Entry> = replay
                .entries
                .iter()
                .filter(|e| e.index > snap_index)
                .cloned()
                .collect();
            if let Some(first) = entries.first() {
                if first.index != snap_index + 1 {
                    return Err(Error::new(
                        ErrorCode::Corrupt,
                        format!("write-ahead log starts at index {} but the snapshot ends at {snap_index}", first.index),
                        0,
                    ));
                }
            }
            let last_index = entries.last().map_or(snap_index, |e| e.index);
            core.append(&entries).map_err(raft_err)?;
            if let Some(hs) = &replay.hard_state {
                let mut hs = hs.clone();
                hs.commit = hs.commit.max(snap_index);
                // raft-rs would panic on it; a log that lost entries it had committed cannot
                // be served from.
                if hs.commit > last_index {
                    let at = replay
                        .hard_state_at
                        .as_ref()
                        .map_or(String::new(), |(p, off)| {
                            format!(" (hard state in {} at offset {off})", p.display())
                        });
                    return Err(Error::new(
                        ErrorCode::Corrupt,
                        format!("the log says entries up to index {} are committed but ends at index {last_index}{at}: entries are missing", hs.commit),
                        0,
                    ));
                }
                core.set_hardstate(hs);
            }
        }
        Ok(RaftStorage {
            mem,
            snapshot: Arc::new(RwLock::new(snapshot.clone())),
            snapshotter,
            snapshot_wanted: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn append(&self, entries: &[Entry]) -> Result<()> {
        self.mem.wl().append(entries).map_err(raft_err)
    }

    pub fn set_hard_state(&self, hs: HardState) {
        self.mem.wl().set_hardstate(hs);
    }

    pub fn set_conf_state(&self, cs: ConfState) {
        self.mem.wl().set_conf_state(cs);
    }

    /// A snapshot received from the leader, already saved, replaces the log.
    pub fn apply_snapshot(&self, snap: Snapshot) -> Result<()> {
        let meta = snap.get_metadata().clone();
        self.mem.wl().apply_snapshot(snap).map_err(raft_err)?;
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = meta;
        Ok(())
    }

    /// A local snapshot was saved: it serves peers from now on; drop the in-memory log
    /// before `compact_to` (keeping some entries so slow followers can catch up from it).
    pub fn compact(&self, snap: SnapshotMetadata, compact_to: u64) -> Result<()> {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = snap;
        self.mem.wl().compact(compact_to).map_err(raft_err)
    }

    /// Whether a peer needed a newer snapshot since the last call.
    pub fn take_snapshot_wanted(&self) -> bool {
        self.snapshot_wanted.swap(false, Ordering::AcqRel)
    }

    pub fn conf_state(&self) -> ConfState {
        self.mem
            .initial_state()
            .map(|s| s.conf_state)
            .unwrap_or_default()
    }
}

fn raft_err(e: raft::Error) -> Error {
    Error::new(ErrorCode::RaftInternal, e.to_string(), 0)
}

impl Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }
    /// The saved snapshot, unless it is too old or predates the peer joining (a member can
    /// only restore a snapshot whose configuration includes it); then a fresh one is asked
    /// for and raft retries.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let meta = self
            .snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let unavailable = || {
            self.snapshot_wanted.store(true, Ordering::Release);
            Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            ))
        };
        if meta.index < request_index || !meta.get_conf_state().voters.contains(&to) {
            return unavailable();
        }
        // Raft asks from the driver's task on the member's runtime; reading a whole store
        // from disk must not hold up the other tasks of that worker.
        match tokio::task::block_in_place(|| self.snapshotter.load(&meta)) {
            Ok(snap) => Ok(snap),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the snapshot a peer needs; taking a new one");
                unavailable()
            }
        }
    }
}
