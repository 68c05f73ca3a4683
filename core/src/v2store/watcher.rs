//! The watcher hub: watchers keyed by path and the store-wide history of recent events
//! (etcd's watcher_hub.go / event_history.go semantics).

use super::event::{Action, Event};
use super::path;
use crate::error::{Error, ErrorCode, Result};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::mpsc;

/// An event as watchers receive it: one copy shared by every watcher and the history, with
/// room for the bytes its clients are sent, so that an event delivered to thousands of
/// watchers is rendered once rather than once per watcher.
#[derive(Debug)]
pub struct WatchEvent {
    pub event: Event,
    wire: OnceLock<bytes::Bytes>,
}

impl WatchEvent {
    fn new(event: Event) -> Arc<WatchEvent> {
        Arc::new(WatchEvent {
            event,
            wire: OnceLock::new(),
        })
    }

    /// The wire form of this event, made by `render` the first time anyone asks.
    pub fn wire(&self, render: impl FnOnce(&Event) -> bytes::Bytes) -> bytes::Bytes {
        self.wire.get_or_init(|| render(&self.event)).clone()
    }
}

impl std::ops::Deref for WatchEvent {
    type Target = Event;
    fn deref(&self) -> &Event {
        &self.event
    }
}

/// How many events etcd keeps for `waitIndex` (older ones answer errorCode 401).
pub const HISTORY_CAPACITY: usize = 1000;
/// A watcher this many undelivered events behind is dropped (etcd's channel size).
pub const WATCHER_BUFFER: usize = 100;

/// The most recent events, oldest first; their indices are consecutive.
#[derive(Debug, Default)]
pub struct EventHistory {
    events: VecDeque<Arc<WatchEvent>>,
}

impl EventHistory {
    pub fn start_index(&self) -> u64 {
        self.events.front().map_or(0, |e| e.index())
    }

    pub fn last_index(&self) -> u64 {
        self.events.back().map_or(0, |e| e.index())
    }

    fn add(&mut self, e: Arc<WatchEvent>) {
        if self.events.len() == HISTORY_CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// The events from `index` on that a watcher of `key` would see, in order.
    fn matching(&self, key: &str, recursive: bool, index: u64) -> Result<Vec<Arc<WatchEvent>>> {
        let start = self.start_index();
        if index < start {
            return Err(Error::new(
                ErrorCode::EventIndexCleared,
                format!("the requested history has been cleared [{start}/{index}]"),
                0,
            ));
        }
        if index > self.last_index() {
            return Ok(Vec::new());
        }
        let offset = (index - start) as usize;
        let prefix = if key.ends_with('/') {
            key.to_string()
        } else {
            format!("{key}/")
        };
        Ok(self
            .events
            .iter()
            .skip(offset)
            .filter(|e| !e.refresh && event_concerns(e, key, recursive, &prefix))
            .cloned()
            .collect())
    }

    pub fn events(&self) -> impl Iterator<Item = &Arc<WatchEvent>> {
        self.events.iter()
    }

    pub fn restore(events: Vec<Event>) -> EventHistory {
        let mut h = EventHistory::default();
        for e in events {
            h.add(WatchEvent::new(e));
        }
        h
    }
}

/// Does a watcher of `key` care about this historic event (etcd's scan rule)?
fn event_concerns(e: &Event, key: &str, recursive: bool, prefix: &str) -> bool {
    let mut ok = e.node.key == key || (recursive && e.node.key.starts_with(prefix));
    if matches!(e.action, Action::Delete | Action::Expire) {
        if let Some(p) = &e.prev_node {
            ok = ok || (p.dir && key.starts_with(&p.key));
        }
    }
    ok
}

struct Slot {
    id: u64,
    recursive: bool,
    stream: bool,
    since: u64,
    tx: mpsc::Sender<Arc<WatchEvent>>,
}

#[derive(Default)]
struct HubInner {
    watchers: HashMap<String, Vec<Slot>>,
    history: EventHistory,
    next_id: u64,
}

/// All watchers of one store.
#[derive(Default)]
pub struct WatcherHub {
    inner: Mutex<HubInner>,
    count: AtomicU64,
}

impl WatcherHub {
    /// The number of watchers waiting now (the `watchers` gauge of /v2/stats/store).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a watcher. Must be called under the store's read lock so that no event is
    /// applied between the history scan and the registration.
    pub fn watch(
        self: &Arc<Self>,
        key: &str,
        recursive: bool,
        stream: bool,
        since: u64,
        store_index: u64,
    ) -> Result<Watcher> {
        let mut inner = self.lock();
        let found = inner
            .history
            .matching(key, recursive, since)
            .map_err(|mut e| {
                e.index = store_index;
                e
            })?;
        let (tx, rx) = mpsc::channel(WATCHER_BUFFER);
        let mut watcher = Watcher {
            rx,
            start_index: store_index,
            stream,
            hub: Weak::new(),
            key: key.to_string(),
            id: 0,
        };
        let mut since = since;
        if let Some(first) = found.first() {
            // etcd answers a one-shot watch from history without registering it.
            if !stream {
                let mut e = first.event.clone();
                e.etcd_index = store_index;
                let _ = tx.try_send(WatchEvent::new(e));
                return Ok(watcher);
            }
            // A stream gets every matching historic event, then the live ones after them.
            for e in &found {
                if tx.try_send(e.clone()).is_err() {
                    return Ok(watcher); // too far behind: the stream ends after the buffer
                }
            }
            since = inner.history.last_index() + 1;
        }
        inner.next_id += 1;
        let id = inner.next_id;
        inner
            .watchers
            .entry(key.to_string())
            .or_default()
            .push(Slot {
                id,
                recursive,
                stream,
                since,
                tx,
            });
        self.count.fetch_add(1, Ordering::Relaxed);
        watcher.hub = Arc::downgrade(self);
        watcher.id = id;
        Ok(watcher)
    }

    /// Record an event in history without waking anyone (TTL refreshes).
    pub fn add(&self, e: Event) {
        self.lock().history.add(WatchEvent::new(e));
    }

    /// Record an event and wake the watchers of its key and of every ancestor.
    pub fn notify(&self, e: Event) {
        let e = WatchEvent::new(e);
        let mut inner = self.lock();
        inner.history.add(e.clone());
        if inner.watchers.is_empty() {
            return; // no one to wake: the usual case under a write load
        }
        let key = e.node.key.clone();
        self.notify_locked(&mut inner, &e, "/", false);
        for (i, b) in key.bytes().enumerate().skip(1) {
            if b == b'/' {
                self.notify_locked(&mut inner, &e, &key[..i], false);
            }
        }
        if key.len() > 1 {
            self.notify_locked(&mut inner, &e, &key, false);
        }
    }

    /// Wake the watchers of paths removed by a delete or expire (they see the event even
    /// when they watch a child of the deleted directory).
    pub fn notify_deleted(&self, e: &Event, paths: &[String]) {
        if paths.is_empty() {
            return;
        }
        let e = WatchEvent::new(e.clone());
        let mut inner = self.lock();
        for p in paths {
            self.notify_locked(&mut inner, &e, p, true);
        }
    }

    fn notify_locked(
        &self,
        inner: &mut HubInner,
        e: &Arc<WatchEvent>,
        watch_path: &str,
        deleted: bool,
    ) {
        let Some(list) = inner.watchers.get_mut(watch_path) else {
            return;
        };
        let original = e.node.key == watch_path;
        if !original && path::is_hidden_from(watch_path, &e.node.key) {
            return;
        }
        let before = list.len();
        list.retain(|w| {
            if !((w.recursive || original || deleted) && e.index() >= w.since) {
                return true;
            }
            // Never block the apply loop: a watcher with a full buffer is dropped.
            let delivered = w.tx.try_send(e.clone()).is_ok();
            delivered && w.stream
        });
        let removed = before - list.len();
        if list.is_empty() {
            inner.watchers.remove(watch_path);
        }
        self.count.fetch_sub(removed as u64, Ordering::Relaxed);
    }

    fn remove(&self, key: &str, id: u64) {
        let mut inner = self.lock();
        if let Some(list) = inner.watchers.get_mut(key) {
            let before = list.len();
            list.retain(|w| w.id != id);
            let removed = before - list.len();
            if list.is_empty() {
                inner.watchers.remove(key);
            }
            self.count.fetch_sub(removed as u64, Ordering::Relaxed);
        }
    }

    pub fn history_snapshot(&self) -> Vec<Event> {
        self.lock()
            .history
            .events()
            .map(|e| e.event.clone())
            .collect()
    }

    pub fn restore_history(&self, events: Vec<Event>) {
        self.lock().history = EventHistory::restore(events);
    }

    /// Close every watcher (the store was replaced by a snapshot); they see the end of
    /// their stream.
    pub fn clear_watchers(&self) {
        let mut inner = self.lock();
        let n: usize = inner.watchers.values().map(Vec::len).sum();
        inner.watchers.clear();
        self.count.fetch_sub(n as u64, Ordering::Relaxed);
    }
}

/// A registered watch. Events arrive on `recv`; `None` means the watch ended (delivered
/// its one event, fell too far behind, or the store was reset). Dropping it unregisters.
pub struct Watcher {
    rx: mpsc::Receiver<Arc<WatchEvent>>,
    start_index: u64,
    stream: bool,
    hub: Weak<WatcherHub>,
    key: String,
    id: u64,
}

impl Watcher {
    /// The store index when the watch was created (etcd's X-Etcd-Index for a watch).
    pub fn start_index(&self) -> u64 {
        self.start_index
    }

    /// A stream watcher keeps delivering; a plain one ends after its first event.
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    pub fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Arc<WatchEvent>>> {
        self.rx.poll_recv(cx)
    }

    pub fn try_recv(&mut self) -> Option<Arc<WatchEvent>> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.remove(&self.key, self.id);
        }
    }
}
