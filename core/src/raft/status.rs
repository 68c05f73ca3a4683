//! What the raft driver tells the rest of the member (term, commit index, leader, role),
//! without locks on the hot path.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

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
    /// When the current leader was first seen, for leaderInfo.uptime.
    leader_since: Mutex<(u64, Instant, SystemTime)>,
}

impl Default for RaftStatus {
    fn default() -> Self {
        RaftStatus {
            term: AtomicU64::new(0),
            commit: AtomicU64::new(0),
            leader: AtomicU64::new(0),
            role: AtomicU8::new(0),
            leader_since: Mutex::new((0, Instant::now(), SystemTime::now())),
        }
    }
}

impl RaftStatus {
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
}
