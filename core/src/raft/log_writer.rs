//! The log writer: a thread that makes raft's Readies durable (raft-rs's asynchronous
//! persistence), so the raft loop goes on stepping messages and proposals while the disk
//! syncs. The Readies that queue up during one sync become one WAL record with one fsync:
//! the sync is the slow part, and batching, not skipping it, is what makes writes fast.
//!
//! A Ready's persisted messages (a follower's append and vote responses) go back with its
//! completion: they may only be sent once what they acknowledge is on disk.

use crate::error::Result;
use crate::storage::{Snapshotter, Wal};
use raft::eraftpb::{Entry, HardState, Message, Snapshot};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// Tasks taken into one record at most.
const MAX_BATCH: usize = 1024;

/// What one Ready asks to make durable.
#[derive(Default)]
pub struct Persist {
    /// The Ready's number (raft-rs's `Ready::number`).
    pub number: u64,
    /// A snapshot from the leader, saved before the entries that follow it.
    pub snapshot: Option<Snapshot>,
    pub hard_state: Option<HardState>,
    pub entries: Vec<Entry>,
    /// raft's must_sync: false when only the commit index moved.
    pub sync: bool,
    /// Sent once this is durable.
    pub messages: Vec<Message>,
}

pub enum LogTask {
    Persist(Persist),
    /// A snapshot covers the log up to this index: its segments can go.
    ReleaseTo(u64),
}

/// A completion: every Ready up to `number` is durable; send `messages`.
#[derive(Default)]
pub struct Persisted {
    pub number: u64,
    pub messages: Vec<Message>,
}

/// Run the writer until every sender of `tasks` is gone; `done` hears of each completed
/// batch, or of the error after which nothing more is written.
pub fn spawn(
    name: String,
    mut wal: Wal,
    snapshotter: Arc<Snapshotter>,
    tasks: Receiver<LogTask>,
    mut done: impl FnMut(Result<Persisted>) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(move || {
        while let Ok(first) = tasks.recv() {
            let batch = std::iter::once(first).chain(tasks.try_iter().take(MAX_BATCH));
            // A panic here must reach the driver as a failure, not end the thread silently.
            let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                write(&mut wal, &snapshotter, batch)
            }))
            .unwrap_or_else(|p| {
                Err(crate::error::Error::new(
                    crate::error::ErrorCode::Panic,
                    format!(
                        "the log writer panicked: {}",
                        crate::error::panic_message(p.as_ref())
                    ),
                    0,
                ))
            });
            match written {
                Ok(Some(p)) => done(Ok(p)),
                Ok(None) => {}
                Err(e) => {
                    done(Err(e));
                    return;
                }
            }
        }
    })
}

/// One WAL record being gathered from consecutive Readies.
#[derive(Default)]
struct Record {
    hard_state: Option<HardState>,
    entries: Vec<Entry>,
    sync: bool,
}

impl Record {
    fn add(&mut self, p: &mut Persist) {
        if let Some(hs) = p.hard_state.take() {
            self.hard_state = Some(hs);
        }
        // A later Ready may replace the tail of an earlier one (a follower's log
        // conflicting with its new leader's): the same rule as replaying the log.
        Wal::merge(&mut self.entries, std::mem::take(&mut p.entries));
        self.sync |= p.sync;
    }

    fn flush(&mut self, wal: &mut Wal) -> Result<()> {
        let r = std::mem::take(self);
        wal.save(r.hard_state.as_ref(), &r.entries, r.sync)
    }
}

fn write(
    wal: &mut Wal,
    snapshotter: &Snapshotter,
    batch: impl Iterator<Item = LogTask>,
) -> Result<Option<Persisted>> {
    let mut record = Record::default();
    let mut done: Option<Persisted> = None;
    for task in batch {
        match task {
            LogTask::Persist(mut p) => {
                if let Some(snap) = p.snapshot.take() {
                    record.flush(wal)?;
                    snapshotter.save(&snap)?;
                }
                record.add(&mut p);
                let d = done.get_or_insert_with(Persisted::default);
                d.number = p.number;
                d.messages.append(&mut p.messages);
            }
            LogTask::ReleaseTo(index) => {
                record.flush(wal)?;
                match wal.release_to(index) {
                    Ok(()) => tracing::info!(index, "snapshot saved; released the log before it"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not release write-ahead log segments")
                    }
                }
            }
        }
    }
    record.flush(wal)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8].into(),
            ..Default::default()
        }
    }

    fn persist(number: u64, entries: Vec<Entry>, commit: u64) -> LogTask {
        LogTask::Persist(Persist {
            number,
            hard_state: Some(HardState {
                term: 2,
                commit,
                ..Default::default()
            }),
            entries,
            sync: true,
            ..Default::default()
        })
    }

    #[test]
    fn readies_queued_together_become_one_record_that_replays_like_them() {
        let dir = tempfile::tempdir().unwrap();
        let snapshotter = Snapshotter::new(&dir.path().join("snap")).unwrap();
        let (mut wal, _) = Wal::open(&dir.path().join("wal")).unwrap();
        let batch = vec![
            persist(1, vec![entry(1, 1), entry(2, 1), entry(3, 1)], 1),
            // The new leader's log replaces entry 3 onwards.
            persist(2, vec![entry(3, 2), entry(4, 2)], 2),
            persist(3, vec![], 4),
        ];
        let done = write(&mut wal, &snapshotter, batch.into_iter())
            .unwrap()
            .unwrap();
        assert_eq!(done.number, 3);
        drop(wal);
        let (_, replay) = Wal::open(&dir.path().join("wal")).unwrap();
        let got: Vec<(u64, u64)> = replay.entries.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(got, vec![(1, 1), (2, 1), (3, 2), (4, 2)]);
        assert_eq!(replay.hard_state.unwrap().commit, 4);
    }

    #[test]
    fn a_snapshot_from_the_leader_is_saved_with_the_entries_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let snapshotter = Snapshotter::new(&dir.path().join("snap")).unwrap();
        let (mut wal, _) = Wal::open(&dir.path().join("wal")).unwrap();
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 10;
        snap.mut_metadata().term = 2;
        let batch = vec![
            LogTask::Persist(Persist {
                number: 4,
                snapshot: Some(snap),
                ..Default::default()
            }),
            persist(5, vec![entry(11, 2)], 11),
        ];
        let done = write(&mut wal, &snapshotter, batch.into_iter())
            .unwrap()
            .unwrap();
        assert_eq!(done.number, 5);
        assert_eq!(
            snapshotter
                .load_newest()
                .unwrap()
                .unwrap()
                .get_metadata()
                .index,
            10
        );
        drop(wal);
        let (_, replay) = Wal::open(&dir.path().join("wal")).unwrap();
        assert_eq!(
            replay.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![11]
        );
    }
}
