//! What the raft driver tells the rest of the member (term, commit index, leader, role),
//! without locks on the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
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
    /// This member leads a cluster where it is the only voter.
    sole_voter: AtomicBool,
    /// When the current leader was first seen, for leaderInfo.uptime.
    leader_since: Mutex<(u64, Instant, SystemTime)>,
    /// How many times a leader was newly seen (etcd_server_leader_changes_seen_total).
    leader_changes: AtomicU64,
}

impl Default for RaftStatus {
    fn default() -> Self {
        RaftStatus {
            term: AtomicU64::new(0),
            commit: AtomicU64::new(0),
            leader: AtomicU64::new(0),
            role: AtomicU8::new(0),
            sole_voter: AtomicBool::new(false),
            leader_since: Mutex::new((0, Instant::now(), SystemTime::now())),
            leader_changes: AtomicU64::new(0),
        }
    }
}

impl RaftStatus {
    pub fn update(&self, term: u64, commit: u64, leader: u64, role: RaftRole, sole_voter: bool) {
        self.sole_voter
            .store(sole_voter && role == RaftRole::Leader, Relaxed);
        self.term.store(term, Relaxed);
        self.commit.store(commit, Relaxed);
        let prev = self.leader.swap(leader, Relaxed);
        let prev_role = self.role.swap(role as u8, Relaxed);
        if prev != leader {
            *self.leader_since.lock().unwrap_or_else(|p| p.into_inner()) =
                (leader, Instant::now(), SystemTime::now());
            if leader != 0 {
                self.leader_changes.fetch_add(1, Relaxed);
            }
            // What operators look for first in a member's log.
            let id = crate::identity::format_id;
            match (role, leader) {
                (RaftRole::Leader, _) => tracing::info!(term, "became the leader"),
                (_, 0) => tracing::warn!(term, previous_leader = %id(prev), "lost the leader"),
                _ => tracing::info!(term, leader = %id(leader), "following a new leader"),
            }
        } else if prev_role != role as u8 && matches!(role, RaftRole::Candidate) {
            tracing::info!(term, "no leader heard; campaigning");
        }
    }

    /// Whether this member is the leader of a cluster where it is the only voter: nobody
    /// else can commit, and its own store already holds every write it acknowledged.
    pub fn sole_voter(&self) -> bool {
        self.sole_voter.load(Relaxed)
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
    pub fn leader_changes(&self) -> u64 {
        self.leader_changes.load(Relaxed)
    }
    pub fn leader_since(&self) -> (u64, Instant, SystemTime) {
        *self.leader_since.lock().unwrap_or_else(|p| p.into_inner())
    }
}
