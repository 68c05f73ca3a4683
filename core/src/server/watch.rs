//! v3 watches as a member serves them: watchers registered with the store's hub, fed as
//! batches commit, caught up from the store when they fall behind.

use super::Server;
use crate::error::V3Error;
use crate::mvcc::{Delivery, WatchSpec};
use crate::pb::etcdserverpb::{
    watch_create_request::FilterType, ResponseHeader, WatchCreateRequest, WatchResponse,
};
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

    /// Progress notifications for the watchers that asked (a member clock).
    pub(crate) fn watch_progress(&self) {
        let current = self.read_mvcc().current_revision();
        self.watchers.notify_progress(current);
    }

    /// A watcher's delivery as the WatchResponses a client gets: one, or several when the
    /// watcher asked for fragments and the events pass --max-request-bytes (each then says
    /// `fragment` but the last).
    pub fn watch_responses(&self, d: Delivery) -> Vec<WatchResponse> {
        use prost::Message as _;
        let limit = self.v3_limits.max_request_bytes;
        let whole = self.watch_response(d);
        if !whole.fragment || whole.encoded_len() <= limit {
            return vec![WatchResponse {
                fragment: false,
                ..whole
            }];
        }
        let mut parts: Vec<WatchResponse> = Vec::new();
        let mut size = 0;
        for e in whole.events.iter().cloned() {
            let len = e.encoded_len();
            if parts.is_empty() || size + len > limit && !parts.last().unwrap().events.is_empty() {
                parts.push(WatchResponse {
                    events: Vec::new(),
                    fragment: true,
                    ..whole.clone()
                });
                size = 0;
            }
            size += len;
            parts.last_mut().expect("a part").events.push(e);
        }
        if let Some(last) = parts.last_mut() {
            last.fragment = false;
        }
        parts
    }

    /// A watcher's delivery as the WatchResponse a client gets (events whole; `fragment`
    /// says whether the watcher would take them in parts).
    pub fn watch_response(&self, d: Delivery) -> WatchResponse {
        let server = self;
        let header = |revision| {
            server.v3_header(Some(ResponseHeader {
                revision,
                ..Default::default()
            }))
        };
        match d {
            Delivery::Created { watch_id, revision } => WatchResponse {
                header: header(revision),
                watch_id,
                created: true,
                ..Default::default()
            },
            Delivery::Refused { revision } => WatchResponse {
                header: header(revision),
                watch_id: -1,
                created: true,
                canceled: true,
                cancel_reason: format!(
                    "rpc error: code = PermissionDenied desc = {}",
                    V3Error::PermissionDenied.message()
                ),
                ..Default::default()
            },
            Delivery::Canceled { watch_id, revision } => WatchResponse {
                header: header(revision),
                watch_id,
                canceled: true,
                ..Default::default()
            },
            Delivery::Events {
                watch_id,
                mut events,
                revision,
                prev_kv,
                fragment,
            } => {
                if prev_kv {
                    for e in &mut events {
                        if let Some(kv) = &e.kv {
                            e.prev_kv = server.value_before(&kv.key, kv.mod_revision);
                        }
                    }
                }
                WatchResponse {
                    header: header(revision),
                    watch_id,
                    events,
                    fragment,
                    ..Default::default()
                }
            }
            Delivery::Compacted {
                watch_id,
                compact_revision,
                revision,
            } => WatchResponse {
                header: header(revision),
                watch_id,
                compact_revision,
                canceled: true,
                ..Default::default()
            },
            Delivery::WatcherProgress { watch_id, revision } => WatchResponse {
                header: header(revision),
                watch_id,
                ..Default::default()
            },
            Delivery::Progress { revision } => WatchResponse {
                header: header(revision),
                watch_id: -1,
                ..Default::default()
            },
        }
    }
}

impl WatchSpec {
    /// What a create request asks for, under the watch id the stream gave it.
    pub fn from_request(watch_id: i64, c: WatchCreateRequest) -> WatchSpec {
        WatchSpec {
            watch_id,
            key: c.key,
            range_end: c.range_end,
            start_revision: c.start_revision,
            no_put: c.filters.contains(&(FilterType::Noput as i32)),
            no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
            prev_kv: c.prev_kv,
            progress_notify: c.progress_notify,
            fragment: c.fragment,
        }
    }
}
