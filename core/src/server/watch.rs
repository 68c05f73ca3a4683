//! v3 watches as a member serves them: watchers registered with the store's hub, fed as
//! batches commit, caught up from the store when they fall behind.

use super::Server;
use crate::error::V3Error;
use crate::mvcc::{Delivery, WatchSpec};
use tokio::sync::mpsc;

impl Server {
    /// Register a watcher sending to `tx`; its key and the store's revision now. It is fed
    /// once `watch_ready` says its "created" answer has gone out.
    pub fn watch_create(
        &self,
        spec: WatchSpec,
        tx: mpsc::Sender<Delivery>,
    ) -> Result<(u64, i64), V3Error> {
        self.check_serving()?;
        let mvcc = self.read_mvcc();
        let current = mvcc.current_revision();
        Ok((self.watchers.add(spec, current, tx), current))
    }

    pub fn watch_ready(&self, key: u64) {
        self.watchers.ready(key);
        self.sync_watchers();
    }

    pub fn watch_cancel(&self, key: u64) {
        self.watchers.remove(key);
    }

    /// The key as it was just before revision `rev` (a watch event's prev_kv); None when it
    /// did not exist or that revision is compacted.
    pub fn value_before(&self, key: &[u8], rev: i64) -> Option<crate::pb::mvccpb::KeyValue> {
        let opts = crate::mvcc::RangeOptions {
            rev: rev - 1,
            ..Default::default()
        };
        self.read_mvcc()
            .range(crate::mvcc::KeyRange::Key(key), opts)
            .ok()?
            .kvs
            .into_iter()
            .next()
    }

    /// The store's revision (for progress answers).
    pub fn v3_revision(&self) -> i64 {
        self.read_mvcc().current_revision()
    }

    /// Catch lagging watchers up from the store (run every 100 ms, and when one is ready).
    pub(crate) fn sync_watchers(&self) {
        if !self.watchers.has_unsynced() {
            return;
        }
        let mvcc = self.read_mvcc();
        if let Err(e) = self.watchers.sync(&mvcc) {
            tracing::error!(error = ?e, "watchers could not catch up from the v3 store");
        }
    }
}
