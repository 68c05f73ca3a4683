//! etcdserverpb.Watch: one bidirectional stream carries many watchers. Requests create and
//! cancel watchers and ask for progress; answers come in one ordered channel per stream, so
//! a watcher's "created" comes before its events and its events before its "canceled".

use crate::mvcc::{Delivery, WatchSpec};
use crate::pb::etcdserverpb::{
    watch_create_request::FilterType, watch_request::RequestUnion, watch_server::Watch,
    ResponseHeader, WatchRequest, WatchResponse,
};
use crate::server::Server;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

/// Answers buffered per stream before its watchers count as slow (etcd's chanBufLen).
const WATCH_BUFFER: usize = 128;

pub(crate) struct WatchService(pub Arc<Server>);

#[tonic::async_trait]
impl Watch for WatchService {
    async fn watch(
        &self,
        r: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<BoxStream<WatchResponse>>, Status> {
        let server = self.0.clone();
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        tokio::spawn(serve_requests(server.clone(), r.into_inner(), tx));
        let answers = futures_util::stream::unfold((server, rx), |(server, mut rx)| async move {
            let d = rx.recv().await?;
            Some((Ok(answer(&server, d)), (server, rx)))
        });
        Ok(Response::new(Box::pin(answers)))
    }
}

/// The watchers of one stream: they go when it ends.
struct StreamWatchers {
    server: Arc<Server>,
    by_id: HashMap<i64, u64>,
    next_id: i64,
}

impl Drop for StreamWatchers {
    fn drop(&mut self) {
        for key in self.by_id.values() {
            self.server.watch_cancel(*key);
        }
    }
}

async fn serve_requests(
    server: Arc<Server>,
    mut requests: Streaming<WatchRequest>,
    tx: mpsc::Sender<Delivery>,
) {
    let mut mine = StreamWatchers {
        server: server.clone(),
        by_id: HashMap::new(),
        next_id: 0,
    };
    while let Ok(Some(req)) = requests.message().await {
        let sent = match req.request_union {
            Some(RequestUnion::CreateRequest(c)) => {
                let watch_id = if c.watch_id != 0 {
                    c.watch_id
                } else {
                    while mine.by_id.contains_key(&mine.next_id) {
                        mine.next_id += 1;
                    }
                    mine.next_id
                };
                let revision = server.v3_revision();
                match mine.by_id.entry(watch_id) {
                    // etcd: a watch id already in use on this stream is refused.
                    Entry::Occupied(_) => tx.send(Delivery::Canceled { watch_id, revision }).await,
                    Entry::Vacant(slot) => {
                        let spec = WatchSpec {
                            watch_id,
                            key: c.key,
                            range_end: c.range_end,
                            start_revision: c.start_revision,
                            no_put: c.filters.contains(&(FilterType::Noput as i32)),
                            no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
                            prev_kv: c.prev_kv,
                        };
                        let Ok((key, revision)) = server.watch_create(spec, tx.clone()) else {
                            break;
                        };
                        slot.insert(key);
                        let created = tx.send(Delivery::Created { watch_id, revision }).await;
                        server.watch_ready(key);
                        created
                    }
                }
            }
            Some(RequestUnion::CancelRequest(c)) => match mine.by_id.remove(&c.watch_id) {
                Some(key) => {
                    server.watch_cancel(key);
                    tx.send(Delivery::Canceled {
                        watch_id: c.watch_id,
                        revision: server.v3_revision(),
                    })
                    .await
                }
                None => Ok(()),
            },
            Some(RequestUnion::ProgressRequest(_)) => {
                tx.send(Delivery::Progress {
                    revision: server.v3_revision(),
                })
                .await
            }
            None => Ok(()),
        };
        if sent.is_err() {
            break;
        }
    }
}

fn answer(server: &Server, d: Delivery) -> WatchResponse {
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
        Delivery::Progress { revision } => WatchResponse {
            header: header(revision),
            watch_id: -1,
            ..Default::default()
        },
    }
}
