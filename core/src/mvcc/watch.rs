//! Watchers of the v3 store (etcd's watchableStore): a synced group, fed each applied
//! batch's events as it commits, and an unsynced group, caught up from the store's records
//! in the background. A watcher whose stream does not keep up (its buffer full) drops to the
//! unsynced group instead of holding back writes or other watchers, and catches up from
//! where it stopped: events come in revision order, none missed, none twice.

use super::{KeyRange, Mvcc, MvccResult};
use crate::pb::mvccpb::{event::EventType, Event};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// At most this many revisions are read for one unsynced watcher per catch-up pass.
const CATCH_UP_REVISIONS: i64 = 1000;

/// What a watch stream is sent for one of its watchers.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Created {
        watch_id: i64,
        revision: i64,
    },
    Canceled {
        watch_id: i64,
        revision: i64,
    },
    /// A watch the client may not read, refused as it is created.
    Refused {
        revision: i64,
    },
    Events {
        watch_id: i64,
        events: Vec<Event>,
        /// The store's revision when they were sent.
        revision: i64,
        prev_kv: bool,
        /// Split into answers of at most the request limit (the watcher asked for it).
        fragment: bool,
    },
    /// The watcher's next revision was compacted away: it ends.
    Compacted {
        watch_id: i64,
        compact_revision: i64,
        revision: i64,
    },
    /// The answer to a progress request (watch id -1).
    Progress {
        revision: i64,
    },
    /// A synced watcher that asked for progress notifications hears the revision.
    WatcherProgress {
        watch_id: i64,
        revision: i64,
    },
}

/// What one watcher asks for.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub watch_id: i64,
    pub key: Bytes,
    pub range_end: Bytes,
    /// The first revision to send; 0 for "after the current one".
    pub start_revision: i64,
    pub no_put: bool,
    pub no_delete: bool,
    pub prev_kv: bool,
    pub progress_notify: bool,
    pub fragment: bool,
}

struct Watcher {
    spec: WatchSpec,
    /// The next revision this watcher has not been sent.
    next: i64,
    /// Fed by `notify` as batches commit; otherwise caught up by `sync`.
    synced: bool,
    /// Not caught up until its stream has sent the "created" answer.
    ready: bool,
    tx: mpsc::Sender<Delivery>,
}

impl Watcher {
    fn wants(&self, e: &Event) -> bool {
        let kv = e.kv.as_ref().expect("events carry their key");
        if kv.mod_revision < self.next {
            return false;
        }
        let put = e.r#type == EventType::Put as i32;
        if put && self.spec.no_put || !put && self.spec.no_delete {
            return false;
        }
        KeyRange::new(&self.spec.key, &self.spec.range_end).contains(&kv.key)
    }
}

#[derive(Default)]
pub struct WatchHub {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_key: u64,
    watchers: HashMap<u64, Watcher>,
}

impl WatchHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watchers registered now.
    pub fn count(&self) -> u64 {
        self.lock().watchers.len() as u64
    }

    /// Register a watcher (not yet fed: see `ready`); its key in the hub.
    pub fn add(&self, spec: WatchSpec, current: i64, tx: mpsc::Sender<Delivery>) -> u64 {
        let next = if spec.start_revision > 0 {
            spec.start_revision
        } else {
            current + 1
        };
        let mut inner = self.lock();
        inner.next_key += 1;
        let key = inner.next_key;
        inner.watchers.insert(
            key,
            Watcher {
                spec,
                next,
                synced: false,
                ready: false,
                tx,
            },
        );
        key
    }

    /// The stream has answered "created": the watcher may be fed.
    pub fn ready(&self, key: u64) {
        if let Some(w) = self.lock().watchers.get_mut(&key) {
            w.ready = true;
        }
    }

    pub fn remove(&self, key: u64) {
        self.lock().watchers.remove(&key);
    }

    /// A batch committed with these events; the store is now at `current`. Called with
    /// the store locked for writing, so no catch-up pass runs meanwhile.
    pub fn notify(&self, events: &[Event], current: i64) {
        let mut inner = self.lock();
        let mut closed = Vec::new();
        for (key, w) in inner.watchers.iter_mut().filter(|(_, w)| w.synced) {
            let mine: Vec<Event> = events.iter().filter(|e| w.wants(e)).cloned().collect();
            if mine.is_empty() {
                w.next = w.next.max(current + 1);
                continue;
            }
            let delivery = Delivery::Events {
                watch_id: w.spec.watch_id,
                events: mine,
                revision: current,
                prev_kv: w.spec.prev_kv,
                fragment: w.spec.fragment,
            };
            match w.tx.try_send(delivery) {
                Ok(()) => w.next = current + 1,
                // A slow stream: caught up later from the store, from `next` on.
                Err(mpsc::error::TrySendError::Full(_)) => w.synced = false,
                Err(mpsc::error::TrySendError::Closed(_)) => closed.push(*key),
            }
        }
        for key in closed {
            inner.watchers.remove(&key);
        }
    }

    /// Catch unsynced watchers up from the store's records; called with the store locked
    /// for reading (no batch commits meanwhile). Watchers that reach the store's revision
    /// join the synced group.
    pub fn sync(&self, mvcc: &Mvcc) -> MvccResult<()> {
        let current = mvcc.current_revision();
        let compacted = mvcc.compacted;
        let mut inner = self.lock();
        let mut done = Vec::new();
        for (key, w) in inner
            .watchers
            .iter_mut()
            .filter(|(_, w)| !w.synced && w.ready)
        {
            if w.next <= compacted {
                let d = Delivery::Compacted {
                    watch_id: w.spec.watch_id,
                    compact_revision: compacted,
                    revision: current,
                };
                if w.tx.try_send(d).is_ok() || w.tx.is_closed() {
                    done.push(*key);
                }
                continue;
            }
            if w.next > current {
                w.synced = true;
                continue;
            }
            let until = current.min(w.next + CATCH_UP_REVISIONS - 1);
            let events: Vec<Event> = mvcc
                .events(w.next, until)?
                .into_iter()
                .filter(|e| w.wants(e))
                .collect();
            let sent = events.is_empty()
                || match w.tx.try_send(Delivery::Events {
                    watch_id: w.spec.watch_id,
                    events,
                    revision: current,
                    prev_kv: w.spec.prev_kv,
                    fragment: w.spec.fragment,
                }) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => false,
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        done.push(*key);
                        false
                    }
                };
            if sent {
                w.next = until + 1;
                w.synced = w.next > current;
            }
        }
        for key in done {
            inner.watchers.remove(&key);
        }
        Ok(())
    }

    /// Tell every synced watcher that asked for progress notifications the store's
    /// revision (etcd sends these every --experimental-watch-progress-notify-interval).
    /// A watcher whose stream is full hears it next time.
    pub fn notify_progress(&self, current: i64) {
        for w in self.lock().watchers.values() {
            if w.synced && w.spec.progress_notify {
                let _ = w.tx.try_send(Delivery::WatcherProgress {
                    watch_id: w.spec.watch_id,
                    revision: current,
                });
            }
        }
    }

    /// The store was replaced (a snapshot from the leader): every watcher catches up from
    /// the new store, or learns its revision was compacted.
    pub fn unsync_all(&self) {
        for w in self.lock().watchers.values_mut() {
            w.synced = false;
        }
    }

    /// Whether some watcher still catches up.
    pub fn has_unsynced(&self) -> bool {
        self.lock().watchers.values().any(|w| !w.synced && w.ready)
    }
}

impl Mvcc {
    /// The changes of revisions `from..=to`, in order, as watch events.
    pub fn events(&self, from: i64, to: i64) -> MvccResult<Vec<Event>> {
        use super::{Revision, KEYS};
        use prost::Message as _;
        use redb::{ReadableDatabase, ReadableTable};
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(KEYS)?;
        let start = Revision::new(from, 0).to_key(false);
        let end = Revision::new(to, i64::MAX).to_key(true);
        let mut out = Vec::new();
        for entry in table.range(&start[..]..=&end[..])? {
            let (k, v) = entry?;
            let Some((rev, tombstone)) = Revision::from_key(k.value()) else {
                continue;
            };
            let mut kv = crate::pb::mvccpb::KeyValue::decode(v.value())
                .map_err(|e| super::MvccError::Backend(format!("record {rev:?}: {e}")))?;
            let r#type = if tombstone {
                kv.mod_revision = rev.main;
                EventType::Delete
            } else {
                EventType::Put
            };
            out.push(Event {
                r#type: r#type as i32,
                kv: Some(kv),
                prev_kv: None,
            });
        }
        Ok(out)
    }
}
