//! The v2 store: etcd's hierarchical key space with TTLs, watchers, event history and
//! counters. Every mutation takes the time it should consider "now" from its caller (the
//! raft entry), never from a clock, so every replica computes the same state.

mod event;
mod node;
pub mod path;
mod stats;
mod watcher;

pub use event::{Action, Event, NodeExtern};
pub use stats::{StatKind, Stats, StoreStats};
pub use watcher::{Watcher, WatcherHub};

use crate::error::{Error, ErrorCode, Result};
use node::{Children, NodeKind, StoreNode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Where the cluster's own records live (members, version); clients never see it.
pub const CLUSTER_PREFIX: &str = "/0";
/// Where the keys of /v2/keys live.
pub const STORE_KEYS_PREFIX: &str = "/1";
/// Expirations before 2000-01-01 are treated as permanent (etcd's minExpireTime).
const MIN_EXPIRE_TIME: i64 = 946_684_800_000_000_000;

pub struct Store {
    root: StoreNode,
    current_index: u64,
    stats: Stats,
    /// (expiration, path) of every node with a TTL, soonest first.
    ttl_keys: BTreeSet<(i64, String)>,
    hub: Arc<WatcherHub>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

/// A frozen copy of a store's state (see `Store::freeze`).
pub struct StoreImage {
    current_index: u64,
    root: StoreNode,
    stats: Vec<u64>,
    history: Vec<Event>,
}

impl StoreImage {
    pub fn encode(self) -> Vec<u8> {
        let history = self
            .history
            .into_iter()
            .map(|e| {
                let flags = e.etcd_index << 1 | u64::from(e.refresh);
                (e.to_json(), flags)
            })
            .collect();
        let saved = SavedStore {
            current_index: self.current_index,
            root: self.root,
            stats: self.stats,
            history,
        };
        bincode::serialize(&saved).expect("store serializes")
    }
}

#[derive(Serialize, Deserialize)]
struct SavedStore {
    current_index: u64,
    root: StoreNode,
    stats: Vec<u64>,
    /// The event history as etcd JSON events with their index (a small, bounded list).
    history: Vec<(String, u64)>,
}

impl Store {
    pub fn new() -> Store {
        let mut root = StoreNode::new_dir(0, None);
        if let Some(c) = root.children_mut() {
            c.insert(CLUSTER_PREFIX[1..].to_string(), StoreNode::new_dir(0, None));
            c.insert(
                STORE_KEYS_PREFIX[1..].to_string(),
                StoreNode::new_dir(0, None),
            );
        }
        Store {
            root,
            current_index: 0,
            stats: Stats::default(),
            ttl_keys: BTreeSet::new(),
            hub: Arc::new(WatcherHub::default()),
        }
    }

    /// The store's index: the index of its latest change.
    #[cfg(test)]
    pub fn index(&self) -> u64 {
        self.current_index
    }

    #[cfg(test)]
    pub fn hub(&self) -> &Arc<WatcherHub> {
        &self.hub
    }

    pub fn stats(&self) -> StoreStats {
        self.stats.snapshot(self.hub.count())
    }

    pub fn has_ttl_keys(&self) -> bool {
        !self.ttl_keys.is_empty()
    }

    /// The clean path of a node a mutation may change: never the root or a namespace.
    fn writable_path(&self, p: &str) -> Result<String> {
        let p = path::clean(p);
        if p == "/" || p == CLUSTER_PREFIX || p == STORE_KEYS_PREFIX {
            return Err(Error::new(ErrorCode::RootReadOnly, "/", self.current_index));
        }
        Ok(p)
    }

    fn count(&self, ok: bool, success: StatKind, fail: StatKind) {
        self.stats.inc(if ok { success } else { fail });
    }

    fn lookup(&self, p: &str) -> Result<&StoreNode> {
        let mut cur = &self.root;
        let mut cur_path = "/";
        for (comp, comp_path) in path::prefixes(p) {
            let Some(children) = cur.children() else {
                return Err(Error::new(ErrorCode::NotDir, cur_path, self.current_index));
            };
            match children.get(comp) {
                Some(c) => cur = c,
                None => {
                    return Err(Error::new(
                        ErrorCode::KeyNotFound,
                        comp_path,
                        self.current_index,
                    ))
                }
            }
            cur_path = comp_path;
        }
        Ok(cur)
    }

    /// The value of the file at `p` (a clean path), without the event a read builds and
    /// without counting as a read: for the member's own lookups on hot paths.
    pub fn file_value(&self, p: &str) -> Option<&str> {
        self.lookup(p)
            .ok()
            .filter(|n| !n.is_dir())
            .map(StoreNode::value)
    }

    fn lookup_mut(&mut self, p: &str) -> Option<&mut StoreNode> {
        let mut cur = &mut self.root;
        for comp in path::components(p) {
            cur = cur.children_mut()?.get_mut(comp)?;
        }
        Some(cur)
    }

    /// The directory at `dir_path`, creating missing directories with `index` (etcd's
    /// walk with checkDir).
    fn ensure_dir(&mut self, dir_path: &str, index: u64) -> Result<&mut Children> {
        let err_index = self.current_index;
        let mut cur = &mut self.root;
        let mut cur_path = "/";
        for (comp, comp_path) in path::prefixes(dir_path) {
            let Some(children) = cur.children_mut() else {
                return Err(Error::new(ErrorCode::NotDir, cur_path, err_index));
            };
            // The name is copied only for a directory that is new.
            if !children.contains_key(comp) {
                children.insert(comp.to_string(), StoreNode::new_dir(index, None));
            }
            let child = children.get_mut(comp).expect("present or just inserted");
            if !child.is_dir() {
                return Err(Error::new(ErrorCode::NotDir, comp_path, err_index));
            }
            cur = child;
            cur_path = comp_path;
        }
        match cur.children_mut() {
            Some(c) => Ok(c),
            None => Err(Error::new(ErrorCode::NotDir, cur_path, err_index)),
        }
    }

    /// Detach the node at `p` (which must exist and not be the root) and forget the TTLs
    /// of everything in it. Returns the removed paths, children before parents.
    fn detach(&mut self, p: &str) -> Vec<String> {
        let (parent, name) = path::split(p);
        let removed = self
            .lookup_mut(parent)
            .and_then(|n| n.children_mut())
            .and_then(|c| c.remove(name));
        let mut walked = Vec::new();
        if let Some(n) = removed {
            n.walk_post_order(p, &mut walked);
        }
        walked
            .into_iter()
            .map(|(path, expire)| {
                if let Some(t) = expire {
                    self.ttl_keys.remove(&(t, path.clone()));
                }
                path
            })
            .collect()
    }

    fn retime(&mut self, p: &str, old: Option<i64>, new: Option<i64>) {
        if let Some(t) = old {
            self.ttl_keys.remove(&(t, p.to_string()));
        }
        if let Some(t) = new {
            self.ttl_keys.insert((t, p.to_string()));
        }
    }

    fn publish(&self, e: &Event, refresh: bool) {
        if refresh {
            let mut e = e.clone();
            e.refresh = true;
            self.hub.add(e);
        } else {
            self.hub.notify(e.clone());
        }
    }

    /// Read a node. `now` is used only for the TTLs shown.
    pub fn get(&self, p: &str, recursive: bool, _sorted: bool, now: i64) -> Result<Event> {
        let p = path::clean(p);
        let r = self.lookup(&p).map(|n| {
            let mut e = Event::new(Action::Get, &p, n.modified_index, n.created_index);
            e.node = n.load(&p, recursive, now);
            e.etcd_index = self.current_index;
            e
        });
        self.count(r.is_ok(), StatKind::GetSuccess, StatKind::GetFail);
        r
    }

    /// The hidden children of directory `p` (none for a key); counts no read.
    pub fn hidden_children(&self, p: &str, now: i64) -> Result<Vec<NodeExtern>> {
        let p = path::clean(p);
        self.lookup(&p).map(|n| n.hidden_children(&p, now))
    }

    /// Read a node for the member's own bookkeeping: no counters move, no TTLs shown.
    pub fn peek(&self, p: &str) -> Option<NodeExtern> {
        let p = path::clean(p);
        self.lookup(&p).ok().map(|n| n.load(&p, false, 0))
    }

    /// Create a node that must not exist; `unique` appends a 20-digit in-order name.
    pub fn create(
        &mut self,
        p: &str,
        dir: bool,
        value: &str,
        unique: bool,
        expire: Option<i64>,
        now: i64,
    ) -> Result<Event> {
        let r = self.internal_create(p, dir, value, unique, false, expire, Action::Create, now);
        // etcd counts a failed walk (a file where the path needs a directory) as a failed set
        // as well, whatever the action.
        if r.as_ref().is_err_and(|e| e.code == ErrorCode::NotDir) {
            self.stats.inc(StatKind::SetFail);
        }
        self.count(r.is_ok(), StatKind::CreateSuccess, StatKind::CreateFail);
        let e = r?;
        self.publish(&e, false);
        Ok(e)
    }

    /// Create or replace a node; `refresh` keeps the value, resets the TTL and wakes no one.
    pub fn set(
        &mut self,
        p: &str,
        dir: bool,
        value: &str,
        expire: Option<i64>,
        refresh: bool,
        now: i64,
    ) -> Result<Event> {
        let r = (|| -> Result<Event> {
            // A refresh keeps the value of a node that must exist; internal_create reports
            // the node it replaces and fails a walk through a file as etcd's lookup would.
            let kept = if refresh {
                Some(self.lookup(&path::clean(p))?.value().to_string())
            } else {
                None
            };
            let value = kept.as_deref().unwrap_or(value);
            let e = self.internal_create(p, dir, value, false, true, expire, Action::Set, now)?;
            self.publish(&e, refresh);
            Ok(e)
        })();
        self.count(r.is_ok(), StatKind::SetSuccess, StatKind::SetFail);
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn internal_create(
        &mut self,
        p: &str,
        dir: bool,
        value: &str,
        unique: bool,
        replace: bool,
        expire: Option<i64>,
        action: Action,
        now: i64,
    ) -> Result<Event> {
        let curr = self.current_index;
        let next = curr + 1;
        let p = if unique {
            self.writable_path(&format!("{p}/{next:020}"))?
        } else {
            self.writable_path(p)?
        };
        let expire = expire.filter(|t| *t >= MIN_EXPIRE_TIME);
        let (dir_name, name) = path::split(&p);
        let parent = self.ensure_dir(dir_name, next)?;
        let node = if dir {
            StoreNode::new_dir(next, expire)
        } else {
            StoreNode::new_file(value.to_string(), next, expire)
        };
        let (expiration, ttl) = node.expiration_and_ttl(now);
        // One walk of a directory that may hold a million keys: insert, and put the node
        // back in the rare case it may not be replaced.
        let mut prev = None;
        let mut replaced_expire = None;
        if let Some(existing) = parent.insert(name.to_string(), node) {
            let refused = if !replace {
                Some(ErrorCode::NodeExist)
            } else if existing.is_dir() {
                Some(ErrorCode::NotFile)
            } else {
                None
            };
            if let Some(code) = refused {
                parent.insert(name.to_string(), existing);
                return Err(Error::new(code, p, curr));
            }
            prev = Some(existing.repr(&p, false, now));
            replaced_expire = existing.expire_time;
        }
        let mut e = Event::new(action, &p, next, next);
        if dir {
            e.node.dir = true;
        } else {
            e.node.value = Some(value.to_string());
        }
        (e.node.expiration, e.node.ttl) = (expiration, ttl);
        self.retime(&p, replaced_expire, expire);
        self.current_index = next;
        e.etcd_index = next;
        e.prev_node = prev;
        Ok(e)
    }

    /// Change the value (or, for a directory, only the TTL) of an existing node. A missing
    /// `expire` makes the node permanent.
    pub fn update(
        &mut self,
        p: &str,
        value: &str,
        expire: Option<i64>,
        refresh: bool,
        now: i64,
    ) -> Result<Event> {
        let r = (|| -> Result<Event> {
            let p = self.writable_path(p)?;
            let curr = self.current_index;
            let n = self.lookup(&p)?;
            if n.is_dir() && !value.is_empty() {
                return Err(Error::new(ErrorCode::NotFile, p, curr));
            }
            let value = if refresh {
                n.value().to_string()
            } else {
                value.to_string()
            };
            self.rewrite(&p, Action::Update, value, expire, refresh, now)
        })();
        self.count(r.is_ok(), StatKind::UpdateSuccess, StatKind::UpdateFail);
        r
    }

    /// Give the existing node at `p` a new value and expiration as one change of `action`,
    /// and publish it. A directory keeps its children and (as in etcd) its modifiedIndex.
    fn rewrite(
        &mut self,
        p: &str,
        action: Action,
        value: String,
        expire: Option<i64>,
        refresh: bool,
        now: i64,
    ) -> Result<Event> {
        let curr = self.current_index;
        let next = curr + 1;
        let expire = expire.filter(|t| *t >= MIN_EXPIRE_TIME);
        let n = self.lookup(p)?;
        let mut e = Event::new(action, p, next, n.created_index);
        e.etcd_index = next;
        e.prev_node = Some(n.repr(p, false, now));
        let old_expire = n.expire_time;
        let Some(n) = self.lookup_mut(p) else {
            return Err(Error::new(ErrorCode::KeyNotFound, p, curr));
        };
        match &mut n.kind {
            NodeKind::File(v) => {
                *v = value.clone();
                n.modified_index = next;
                e.node.value = Some(value);
            }
            NodeKind::Dir(_) => e.node.dir = true,
        }
        n.expire_time = expire;
        (e.node.expiration, e.node.ttl) = n.expiration_and_ttl(now);
        self.retime(p, old_expire, expire);
        self.current_index = next;
        self.publish(&e, refresh);
        Ok(e)
    }

    /// etcd's compare: an empty prev_value and a zero prev_index always match.
    fn compare(
        n: &StoreNode,
        prev_value: &str,
        prev_index: u64,
    ) -> std::result::Result<(), String> {
        let index_ok = prev_index == 0 || n.modified_index == prev_index;
        let value_ok = prev_value.is_empty() || n.value() == prev_value;
        match (value_ok, index_ok) {
            (true, true) => Ok(()),
            (false, true) => Err(format!("[{} != {}]", prev_value, n.value())),
            (true, false) => Err(format!("[{} != {}]", prev_index, n.modified_index)),
            (false, false) => Err(format!(
                "[{} != {}] [{} != {}]",
                prev_value,
                n.value(),
                prev_index,
                n.modified_index
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn compare_and_swap(
        &mut self,
        p: &str,
        prev_value: &str,
        prev_index: u64,
        value: &str,
        expire: Option<i64>,
        refresh: bool,
        now: i64,
    ) -> Result<Event> {
        let r = (|| -> Result<Event> {
            let p = self.writable_path(p)?;
            let curr = self.current_index;
            let n = self.lookup(&p)?;
            if n.is_dir() {
                return Err(Error::new(ErrorCode::NotFile, p, curr));
            }
            Self::compare(n, prev_value, prev_index)
                .map_err(|cause| Error::new(ErrorCode::TestFailed, cause, curr))?;
            let value = if refresh {
                n.value().to_string()
            } else {
                value.to_string()
            };
            self.rewrite(&p, Action::CompareAndSwap, value, expire, refresh, now)
        })();
        self.count(
            r.is_ok(),
            StatKind::CompareAndSwapSuccess,
            StatKind::CompareAndSwapFail,
        );
        r
    }

    /// Delete a node; a directory needs `dir` (and `recursive` when not empty).
    pub fn delete(&mut self, p: &str, dir: bool, recursive: bool, now: i64) -> Result<Event> {
        let r = (|| -> Result<Event> {
            // recursive implies dir, as in etcd
            let dir = dir || recursive;
            let p = self.writable_path(p)?;
            let curr = self.current_index;
            let n = self.lookup(&p)?;
            if let Some(children) = n.children() {
                if !dir {
                    return Err(Error::new(ErrorCode::NotFile, p, curr));
                }
                if !children.is_empty() && !recursive {
                    return Err(Error::new(ErrorCode::DirNotEmpty, p, curr));
                }
            }
            let next = curr + 1;
            let mut e = Event::new(Action::Delete, &p, next, n.created_index);
            e.etcd_index = next;
            e.node.dir = n.is_dir();
            e.prev_node = Some(n.repr(&p, false, now));
            self.remove_and_notify(&p, next, e)
        })();
        self.count(r.is_ok(), StatKind::DeleteSuccess, StatKind::DeleteFail);
        r
    }

    fn remove_and_notify(&mut self, p: &str, next: u64, e: Event) -> Result<Event> {
        let removed = self.detach(p);
        self.hub.notify_deleted(&e, &removed);
        self.current_index = next;
        self.hub.notify(e.clone());
        Ok(e)
    }

    pub fn compare_and_delete(
        &mut self,
        p: &str,
        prev_value: &str,
        prev_index: u64,
        now: i64,
    ) -> Result<Event> {
        let r = (|| -> Result<Event> {
            let p = path::clean(p);
            let curr = self.current_index;
            let n = self.lookup(&p)?;
            if n.is_dir() {
                return Err(Error::new(ErrorCode::NotFile, p, curr));
            }
            Self::compare(n, prev_value, prev_index)
                .map_err(|cause| Error::new(ErrorCode::TestFailed, cause, curr))?;
            let next = curr + 1;
            let mut e = Event::new(Action::CompareAndDelete, &p, next, n.created_index);
            e.etcd_index = next;
            e.prev_node = Some(n.repr(&p, false, now));
            self.remove_and_notify(&p, next, e)
        })();
        self.count(
            r.is_ok(),
            StatKind::CompareAndDeleteSuccess,
            StatKind::CompareAndDeleteFail,
        );
        r
    }

    /// Watch `p` from index `since` (0: from the next change).
    pub fn watch(&self, p: &str, recursive: bool, stream: bool, since: u64) -> Result<Watcher> {
        let p = path::clean(p);
        let since = if since == 0 {
            self.current_index + 1
        } else {
            since
        };
        self.hub
            .watch(&p, recursive, stream, since, self.current_index)
    }

    /// Expire every node whose expiration is at or before `cutoff` (the time carried by a
    /// replicated sync entry). Returns how many expired.
    pub fn delete_expired_keys(&mut self, cutoff: i64) -> usize {
        let mut expired = 0;
        while let Some((t, p)) = self.ttl_keys.first().cloned() {
            if t > cutoff {
                break;
            }
            self.ttl_keys.pop_first();
            let Ok(n) = self.lookup(&p) else { continue };
            let next = self.current_index + 1;
            let mut e = Event::new(Action::Expire, &p, next, n.created_index);
            e.etcd_index = next;
            e.node.dir = n.is_dir();
            e.prev_node = Some(n.repr(&p, false, cutoff));
            let _ = self.remove_and_notify(&p, next, e);
            self.stats.inc(StatKind::ExpireCount);
            expired += 1;
        }
        expired
    }

    /// An image of the store's state for a snapshot, taken in O(1) (the tree is shared,
    /// not copied); encoding it can happen elsewhere while writes go on.
    pub fn freeze(&self) -> StoreImage {
        StoreImage {
            current_index: self.current_index,
            root: self.root.clone(),
            stats: self.stats.to_vec(),
            history: self.hub.history_snapshot(),
        }
    }

    /// The store's state, encoded (watchers are not saved; history and counters are, as in
    /// etcd).
    pub fn save(&self) -> Vec<u8> {
        self.freeze().encode()
    }

    /// Replace this store's state with a saved one. Current watchers are closed.
    pub fn recover(&mut self, bytes: &[u8]) -> Result<()> {
        let saved: SavedStore = bincode::deserialize(bytes)
            .map_err(|e| Error::new(ErrorCode::Corrupt, format!("store snapshot: {e}"), 0))?;
        let mut history = Vec::with_capacity(saved.history.len());
        for (json, flags) in saved.history {
            let mut e: Event = serde_json::from_str(&json).map_err(|e| {
                Error::new(
                    ErrorCode::Corrupt,
                    format!("store snapshot history: {e}"),
                    0,
                )
            })?;
            e.etcd_index = flags >> 1;
            e.refresh = flags & 1 == 1;
            history.push(e);
        }
        let mut walked = Vec::new();
        saved.root.walk_post_order("/", &mut walked);
        self.ttl_keys = walked
            .into_iter()
            .filter_map(|(p, t)| t.map(|t| (t, p)))
            .collect();
        self.root = saved.root;
        self.current_index = saved.current_index;
        self.stats = Stats::from_vec(&saved.stats);
        self.hub.clear_watchers();
        self.hub.restore_history(history);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
