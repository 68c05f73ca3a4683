//! The consensus driver around raft-rs's RawNode, a task on the member's runtime: it batches
//! everything waiting into one round, hands each Ready to the log writer thread (which makes
//! it durable while the next round is gathered), sends messages through a `Transport`, and
//! hands committed entries to whatever state machine it was given, as `ToApply` over a
//! channel (etcd's raftNode hands out `toApply` the same way). It knows nothing of what the
//! entries mean. It never waits on the disk or the state machine, and requests, peer
//! messages and applies reach it without crossing threads: on this machine each hop between
//! threads cost more than the work it carried.

mod log;
pub mod log_writer;
mod stats;
mod status;

pub use log::logger;
pub use stats::PeerStats;
pub use status::{RaftRole, RaftStatus};

use crate::error::{Error, ErrorCode, Result};
use crate::storage::RaftStorage;
use log_writer::{LogTask, Persist, Persisted};
use raft::eraftpb::{
    ConfChange, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata,
};
use raft::{RawNode, SnapshotStatus, StateRole};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Entries kept in memory after a snapshot so a slow follower can catch up from the log
/// (etcd's SnapshotCatchUpEntries); fewer when snapshots are more frequent than that.
pub const CATCH_UP_ENTRIES: u64 = 5000;
/// Messages taken into one round at most.
const MAX_BATCH: usize = 4096;
/// Proposals held while no leader is known.
const MAX_PENDING_PROPOSALS: usize = 100_000;
/// A read-index round that got no answer in this long is failed.
const READ_INDEX_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends raft messages to peers (`PeerTransport` over the peer URLs); never blocks.
pub trait Transport: Send {
    fn send(&mut self, msgs: Vec<Message>);
}

/// How requests, peers, the apply loop and the log writer reach the raft driver.
pub type RaftSender = tokio::sync::mpsc::UnboundedSender<RaftMsg>;

pub enum RaftMsg {
    /// An encoded `RaftRequest`; its result reaches the proposer through the wait registry.
    Propose(Vec<u8>),
    /// Ask for a linearizable read point (the commit index confirmed by a quorum).
    ReadIndex(oneshot::Sender<Result<u64>>),
    /// A membership change to replicate (its `id` is the proposer's wait id).
    ProposeConfChange(ConfChange),
    /// The state machine is done with the conf change entry at `index`: raft's
    /// configuration follows `change`, or stays as it is when the change was refused (None).
    ConfChangeApplied {
        index: u64,
        change: Option<ConfChange>,
    },
    /// A message from a peer.
    Step(Message),
    /// The transport could not reach this peer.
    Unreachable(u64),
    /// How sending a snapshot to a peer went.
    SnapshotStatus {
        to: u64,
        ok: bool,
    },
    /// The state machine saved a snapshot durably: the log before it can go.
    Snapshotted(SnapshotMetadata),
    /// The log writer made Readies durable, or could not.
    Persisted(Result<Persisted>),
    Stop,
}

/// What the driver hands the state machine, in log order.
pub enum ToApply {
    /// Committed entries, durable on this member.
    Entries(Vec<Entry>),
    /// The leader sent a snapshot: the state machine becomes its state.
    Snapshot(Snapshot),
    /// A peer needs a snapshot newer than the latest saved one: take one now.
    SnapshotWanted,
    /// The driver stopped.
    Stop,
}

pub struct RaftDriver {
    pub node: RawNode<RaftStorage>,
    pub storage: RaftStorage,
    /// The log writer's queue.
    pub log: std::sync::mpsc::Sender<LogTask>,
    pub rx: tokio::sync::mpsc::UnboundedReceiver<RaftMsg>,
    pub apply_tx: tokio::sync::mpsc::UnboundedSender<ToApply>,
    pub transport: Box<dyn Transport>,
    pub status: Arc<RaftStatus>,
    pub stats: Arc<PeerStats>,
    pub tick: Duration,
    /// Entries kept behind a snapshot for followers that lag a little.
    pub catch_up_entries: u64,
    /// The index of the snapshot before the newest: the log on disk is kept from it on, so
    /// a start can fall back to it if the newest one is damaged.
    pub previous_snapshot: u64,
}

/// The context of read-index round `round` of member `id`. The leader keys pending reads by
/// context and ignores a second read with a context it already holds, so contexts must be
/// unique across the cluster, not only within one member.
fn read_ctx(id: u64, round: u64) -> Vec<u8> {
    let mut ctx = id.to_be_bytes().to_vec();
    ctx.extend_from_slice(&round.to_be_bytes());
    ctx
}

/// The round of a read-index context made by `read_ctx(id, ..)`; None for anyone else's.
fn read_round(id: u64, ctx: &[u8]) -> Option<u64> {
    let (member, round) = ctx.split_at_checked(8)?;
    if member != id.to_be_bytes() {
        return None;
    }
    round.try_into().ok().map(u64::from_be_bytes)
}

/// Reads waiting for one read-index round, by the round's context.
type ReadRounds = HashMap<u64, (Instant, Vec<oneshot::Sender<Result<u64>>>)>;

struct Loop {
    pending_proposals: Vec<bytes::Bytes>,
    pending_reads: Vec<oneshot::Sender<Result<u64>>>,
    read_rounds: ReadRounds,
    next_read_ctx: u64,
    last_tick: Instant,
    /// The number of a Ready with a snapshot that the log writer has not yet made durable.
    snapshot_ready: Option<u64>,
    /// Conf change entries handed to the state machine that it has not yet reported done,
    /// by index. raft counts entries as applied only up to the first of them: raft-rs lets
    /// a leader append a new conf change once the previous one is applied, and until the
    /// state machine is done with it raft's configuration is still the old one. A second
    /// change appended meanwhile would be committed by the old configuration's quorum.
    conf_changes: VecDeque<u64>,
}

impl RaftDriver {
    /// Run until told to stop; an error when the log cannot be written (then nothing more is
    /// acknowledged: the member must fail rather than go on without a durable log).
    pub async fn run(mut self) -> Result<()> {
        let mut l = Loop {
            pending_proposals: Vec::new(),
            pending_reads: Vec::new(),
            read_rounds: HashMap::new(),
            // Not 1: a restarted member must not repeat a context the leader may still hold.
            next_read_ctx: rand::random(),
            last_tick: Instant::now(),
            snapshot_ready: None,
            conf_changes: VecDeque::new(),
        };
        let result = self.run_rounds(&mut l).await;
        for (_, (_, waiters)) in l.read_rounds.drain() {
            for w in waiters {
                let _ = w.send(Err(Error::new(ErrorCode::Stopped, "member stopped", 0)));
            }
        }
        let _ = self.apply_tx.send(ToApply::Stop);
        result
    }

    async fn run_rounds(&mut self, l: &mut Loop) -> Result<()> {
        self.publish_status();
        loop {
            let next_tick = tokio::time::Instant::from_std(l.last_tick + self.tick);
            let mut stop = false;
            tokio::select! {
                biased;
                m = self.rx.recv() => match m {
                    Some(m) => {
                        stop |= self.handle(m, l)?;
                        // Let the requests and peer messages already readable on this
                        // worker reach the queue first, so they join this round.
                        tokio::task::yield_now().await;
                    }
                    None => stop = true,
                },
                _ = tokio::time::sleep_until(next_tick) => {}
            }
            // Everything already waiting joins this round (bounded, to keep latency steady
            // under a flood).
            for _ in 0..MAX_BATCH {
                let Ok(m) = self.rx.try_recv() else { break };
                stop |= self.handle(m, l)?;
            }
            if stop {
                return Ok(());
            }
            if l.last_tick.elapsed() >= self.tick {
                self.node.tick();
                l.last_tick = Instant::now();
            }
            self.flush_pending(l);
            self.on_ready(l).map_err(|e| persist_error(&e))?;
            self.publish_status();
        }
    }

    /// Handle one message; true when the driver is to stop.
    fn handle(&mut self, m: RaftMsg, l: &mut Loop) -> Result<bool> {
        match m {
            RaftMsg::Propose(data) => {
                if l.pending_proposals.len() < MAX_PENDING_PROPOSALS {
                    l.pending_proposals.push(data.into());
                }
            }
            RaftMsg::ReadIndex(reply) => l.pending_reads.push(reply),
            RaftMsg::ProposeConfChange(cc) => {
                if let Err(e) = self.node.propose_conf_change(Vec::new(), cc) {
                    tracing::info!(error = %e, "membership change dropped; it will time out");
                }
            }
            RaftMsg::ConfChangeApplied { index, change } => {
                // A change handed out before a leader's snapshot may report after it: the
                // snapshot's configuration already includes it, or supersedes it.
                if l.conf_changes.front() != Some(&index) {
                    return Ok(false);
                }
                l.conf_changes.pop_front();
                if let Some(cc) = change {
                    match self.node.apply_conf_change(&cc) {
                        Ok(cs) => self.storage.set_conf_state(cs),
                        Err(e) => {
                            tracing::error!(error = %e, "raft refused an applied conf change")
                        }
                    }
                }
                // Now, so that a conf change proposed next in this round is taken.
                self.advance_applied(l);
            }
            RaftMsg::Step(msg) => {
                if let Err(why) = self.check_peer_message(&msg) {
                    tracing::warn!(peer = %crate::identity::format_id(msg.from), kind = ?msg.get_msg_type(), term = msg.term, why, "dropped a raft message that no correct leader or peer sends");
                    return Ok(false);
                }
                self.stats.on_recv(&msg);
                if let Err(e) = self.node.step(msg) {
                    tracing::debug!(error = %e, "dropped a raft message");
                }
            }
            RaftMsg::Unreachable(id) => {
                self.stats.on_unreachable(id);
                self.node.report_unreachable(id);
            }
            RaftMsg::SnapshotStatus { to, ok } => {
                let status = if ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.node.report_snapshot(to, status);
            }
            RaftMsg::Snapshotted(snap) => self.compact(snap),
            RaftMsg::Persisted(Ok(p)) => {
                self.send(p.messages);
                self.node.on_persist_ready(p.number);
                // A snapshot from the leader counts as applied once it is durable.
                if l.snapshot_ready.is_some_and(|n| n <= p.number) {
                    l.snapshot_ready = None;
                    self.advance_applied(l);
                }
            }
            RaftMsg::Persisted(Err(e)) => return Err(persist_error(&e)),
            RaftMsg::Stop => return Ok(true),
        }
        Ok(false)
    }

    /// Tell raft what the state machine has: everything handed to it, but no further than
    /// just before the first conf change it has not reported done (see `conf_changes`), and
    /// nothing while a leader's snapshot is not yet durable (raft may not count it applied).
    fn advance_applied(&mut self, l: &Loop) {
        if l.snapshot_ready.is_some() {
            return;
        }
        match l.conf_changes.front() {
            None => self.node.advance_apply(),
            Some(index) => {
                let to = index - 1;
                if to > self.node.raft.raft_log.applied {
                    self.node.advance_apply_to(to);
                }
            }
        }
    }

    /// Refuse a peer's message that raft-rs would panic on, or that only a broken or forged
    /// peer sends: raft-rs treats them as fatal bugs (`commit_to ... out of range`, a
    /// conflict with a committed entry), and a panic would take the member down. A correct
    /// leader never sends a commit index beyond what this member has acknowledged, sends
    /// entries in index order, and hears acknowledgements only of entries it has.
    fn check_peer_message(&self, m: &Message) -> std::result::Result<(), &'static str> {
        let log = &self.node.raft.raft_log;
        match m.get_msg_type() {
            MessageType::MsgHeartbeat if m.commit > log.last_index() => {
                Err("heartbeat commits beyond this member's log")
            }
            // Entries that do not follow their index would let raft-rs find a "conflict" at
            // or below its commit index.
            MessageType::MsgAppend
                if m.entries
                    .iter()
                    .enumerate()
                    .any(|(i, e)| e.index != m.index + 1 + i as u64) =>
            {
                Err("append entries out of order")
            }
            MessageType::MsgAppendResponse if !m.reject && m.index > log.last_index() => {
                Err("acknowledges entries the leader does not have")
            }
            // What a member makes for itself, never receives.
            MessageType::MsgHup
            | MessageType::MsgBeat
            | MessageType::MsgUnreachable
            | MessageType::MsgSnapStatus
            | MessageType::MsgCheckQuorum => Err("a local message from a peer"),
            _ => Ok(()),
        }
    }

    /// Propose everything queued as one raft message: the leader appends the batch and sends
    /// each follower one append for it (a follower forwards it to the leader as one message),
    /// instead of one append per request.
    fn propose_pending(&mut self, l: &mut Loop) {
        if self.node.raft.leader_id == raft::INVALID_ID || l.pending_proposals.is_empty() {
            return;
        }
        let entries: Vec<Entry> = l
            .pending_proposals
            .iter()
            .map(|data| Entry {
                data: data.clone(),
                ..Default::default()
            })
            .collect();
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = self.node.raft.id;
        m.set_entries(entries.into());
        match self.node.step(m) {
            Ok(()) => l.pending_proposals.clear(),
            // Kept for when a leader is known again.
            Err(e) => {
                tracing::debug!(error = %e, "proposals dropped; will retry when a leader is known")
            }
        }
    }

    fn flush_pending(&mut self, l: &mut Loop) {
        self.propose_pending(l);
        if !l.pending_reads.is_empty() {
            // One read-index round serves every read queued at this moment.
            let ctx = l.next_read_ctx;
            l.next_read_ctx = l.next_read_ctx.wrapping_add(1);
            self.node.read_index(read_ctx(self.node.raft.id, ctx));
            l.read_rounds
                .insert(ctx, (Instant::now(), std::mem::take(&mut l.pending_reads)));
        }
        l.read_rounds.retain(|_, (since, waiters)| {
            if since.elapsed() < READ_INDEX_TIMEOUT {
                return true;
            }
            for w in waiters.drain(..) {
                let _ = w.send(Err(Error::new(
                    ErrorCode::Timeout,
                    "read index timed out",
                    0,
                )));
            }
            false
        });
    }

    fn on_ready(&mut self, l: &mut Loop) -> Result<()> {
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut rd = self.node.ready();
        // A leader's messages go out before its own log is durable (raft thesis 10.2.1);
        // everyone else's wait for the log writer (persisted messages).
        self.send(rd.take_messages());
        let snapshot = if rd.snapshot().is_empty() {
            None
        } else {
            let snap = rd.snapshot().clone();
            self.storage.apply_snapshot(snap.clone())?;
            let _ = self.apply_tx.send(ToApply::Snapshot(snap.clone()));
            l.snapshot_ready = Some(rd.number());
            // What was handed out before it is superseded.
            l.conf_changes.clear();
            Some(snap)
        };
        // Only entries this member has persisted are ever committed to it (raft-rs applies
        // up to min(commit, persisted)), so these may be applied now.
        self.handle_committed(rd.take_committed_entries(), l);
        let entries = rd.take_entries();
        let hard_state = rd.hs().cloned();
        // raft reads its log from storage before the writer is done with it.
        self.storage.append(&entries)?;
        if let Some(hs) = &hard_state {
            self.storage.set_hard_state(hs.clone());
        }
        for rs in rd.take_read_states() {
            let Some(ctx) = read_round(self.node.raft.id, &rs.request_ctx) else {
                continue;
            };
            if let Some((_, waiters)) = l.read_rounds.remove(&ctx) {
                for w in waiters {
                    let _ = w.send(Ok(rs.index));
                }
            }
        }
        let p = Persist {
            number: rd.number(),
            snapshot,
            hard_state,
            entries,
            // Entries, term and vote must be durable before anyone hears of them; a commit
            // index alone need not be (raft recomputes it), as in etcd.
            sync: rd.must_sync(),
            messages: rd.take_persisted_messages(),
        };
        let empty = p.snapshot.is_none()
            && p.hard_state.is_none()
            && p.entries.is_empty()
            && p.messages.is_empty();
        if !empty && self.log.send(LogTask::Persist(p)).is_err() {
            return Err(Error::new(
                ErrorCode::RaftInternal,
                "the log writer stopped",
                0,
            ));
        }
        self.node.advance_append_async(rd);
        self.advance_applied(l);
        if self.storage.take_snapshot_wanted() {
            let _ = self.apply_tx.send(ToApply::SnapshotWanted);
        }
        Ok(())
    }

    fn send(&mut self, msgs: Vec<Message>) {
        if !msgs.is_empty() {
            self.stats.on_send(&msgs);
            self.transport.send(msgs);
        }
    }

    fn handle_committed(&mut self, entries: Vec<Entry>, l: &mut Loop) {
        if entries.is_empty() {
            return;
        }
        l.conf_changes.extend(
            entries
                .iter()
                .filter(|e| e.get_entry_type() == EntryType::EntryConfChange)
                .map(|e| e.index),
        );
        let _ = self.apply_tx.send(ToApply::Entries(entries));
    }

    fn compact(&mut self, snap: SnapshotMetadata) {
        let index = snap.index;
        let compact_to = index.saturating_sub(self.catch_up_entries).max(1);
        if let Err(e) = self.storage.compact(snap, compact_to) {
            tracing::warn!(error = %e, "could not compact the in-memory log");
        }
        let release_to = std::mem::replace(&mut self.previous_snapshot, index);
        let _ = self.log.send(LogTask::ReleaseTo(release_to));
    }

    fn publish_status(&self) {
        let r = &self.node.raft;
        let role = match r.state {
            StateRole::Leader => RaftRole::Leader,
            StateRole::Candidate => RaftRole::Candidate,
            StateRole::PreCandidate => RaftRole::PreCandidate,
            StateRole::Follower => RaftRole::Follower,
        };
        let conf = r.prs().conf();
        let sole_voter = conf.voters().ids().len() == 1 && conf.learners().is_empty();
        self.status
            .update(r.term, r.raft_log.committed, r.leader_id, role, sole_voter);
    }
}

fn persist_error(e: &Error) -> Error {
    Error::new(
        e.code,
        format!("cannot persist the raft log: {}", e.cause),
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::{read_ctx, read_round};

    #[test]
    fn read_contexts_name_their_member() {
        let ctx = read_ctx(7, 42);
        assert_eq!(read_round(7, &ctx), Some(42));
        // The same round of another member is not ours.
        assert_eq!(read_round(8, &ctx), None);
        assert_ne!(read_ctx(8, 42), ctx);
        assert_eq!(read_round(7, &ctx[..12]), None);
    }
}
