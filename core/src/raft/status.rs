//! What the raft driver and apply loop tell the rest of the member, without locks on the
//! hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftRole {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl RaftRole {
    /// etcd's names in /v2/stats/self.
    pub fn etcd_name(self) -> &'static str {
        match self {
            RaftRole::Follower => "StateFollower",
            RaftRole::PreCandidate => "StatePreCandidate",
            RaftRole::Candidate => "StateCandidate",
            RaftRole::Leader => "StateLeader",
        }
    }
}

pub struct RaftStatus {
    term: AtomicU64,
    commit: AtomicU64,
    leader: AtomicU64,
    role: AtomicU8,
    failed: AtomicBool,
    /// Why the member failed (the first cause reported), and a wake-up for whoever stops it.
    failure: Mutex<Option<String>>,
    failed_tx: watch::Sender<bool>,
    removed: AtomicBool,
    stopped: AtomicBool,
    has_ttl_keys: AtomicBool,
    applied_tx: watch::Sender<u64>,
    /// When the current leader was first seen, for leaderInfo.uptime.
    leader_since: Mutex<(u64, Instant, SystemTime)>,
    pub start_time: SystemTime,
}

impl RaftStatus {
    pub fn new(applied: u64) -> RaftStatus {
        RaftStatus {
            term: AtomicU64::new(0),
            commit: AtomicU64::new(0),
            leader: AtomicU64::new(0),
            role: AtomicU8::new(0),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            failed_tx: watch::channel(false).0,
            removed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            has_ttl_keys: AtomicBool::new(false),
            applied_tx: watch::channel(applied).0,
            leader_since: Mutex::new((0, Instant::now(), SystemTime::now())),
            start_time: SystemTime::now(),
        }
    }

    pub fn update(&self, term: u64, commit: u64, leader: u64, role: RaftRole) {
        self.term.store(term, Relaxed);
        self.commit.store(commit, Relaxed);
        let prev = self.leader.swap(leader, Relaxed);
        self.role.store(role as u8, Relaxed);
        if prev != leader {
            *self.leader_since.lock().unwrap_or_else(|p| p.into_inner()) =
                (leader, Instant::now(), SystemTime::now());
        }
    }

    pub fn term(&self) -> u64 {
        self.term.load(Relaxed)
    }
    pub fn commit(&self) -> u64 {
        self.commit.load(Relaxed)
    }
    /// The leader's id, 0 when none is known.
    pub fn leader(&self) -> u64 {
        self.leader.load(Relaxed)
    }
    pub fn role(&self) -> RaftRole {
        match self.role.load(Relaxed) {
            3 => RaftRole::Leader,
            2 => RaftRole::Candidate,
            1 => RaftRole::PreCandidate,
            _ => RaftRole::Follower,
        }
    }
    pub fn leader_since(&self) -> (u64, Instant, SystemTime) {
        *self.leader_since.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// A part the member cannot run without (raft driver, log writer, apply loop) died: the
    /// member must stop serving (fail-stop), never answer from a store that no longer moves.
    /// The first cause is kept.
    pub fn set_failed(&self, cause: impl Into<String>) {
        {
            let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            if f.is_none() {
                *f = Some(cause.into());
            }
        }
        self.failed
            .store(true, std::sync::atomic::Ordering::Release);
        self.failed_tx.send_replace(true);
    }
    pub fn failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::Acquire)
    }
    /// Why the member failed; None while it has not.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    /// Wait until the member fails.
    pub async fn wait_failed(&self) {
        let _ = self.failed_tx.subscribe().wait_for(|f| *f).await;
    }
    /// The member was stopped (Node::stop): in-process clients get no more answers.
    pub fn set_stopped(&self) {
        self.stopped.store(true, Relaxed);
    }
    pub fn stopped(&self) -> bool {
        self.stopped.load(Relaxed)
    }

    /// This member was removed from the cluster: it serves no more.
    pub fn set_removed(&self) {
        self.removed.store(true, Relaxed);
    }
    pub fn removed(&self) -> bool {
        self.removed.load(Relaxed)
    }
    pub fn has_ttl_keys(&self) -> bool {
        self.has_ttl_keys.load(Relaxed)
    }
    pub fn set_has_ttl_keys(&self, v: bool) {
        self.has_ttl_keys.store(v, Relaxed);
    }
    pub fn applied(&self) -> u64 {
        *self.applied_tx.borrow()
    }
    pub fn set_applied(&self, index: u64) {
        self.applied_tx.send_replace(index);
    }
    /// Wait until everything up to `index` is applied.
    pub async fn wait_applied(&self, index: u64) {
        let mut rx = self.applied_tx.subscribe();
        let _ = rx.wait_for(|a| *a >= index).await;
    }
}
