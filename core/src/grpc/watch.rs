//! etcdserverpb.Watch: one bidirectional stream carries many watchers. Requests create and
//! cancel watchers and ask for progress; answers come in one ordered channel per stream, so
//! a watcher's "created" comes before its events and its events before its "canceled".

use crate::auth::{Access, AuthInfo};
use crate::mvcc::{Delivery, WatchSpec};
use crate::pb::etcdserverpb::{
    watch_request::RequestUnion, watch_server::Watch, WatchRequest, WatchResponse,
};
use crate::server::Server;
use futures_util::{Stream, StreamExt as _};
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
        Ok(Response::new(watch_stream(self.0.clone(), r.into_inner())))
    }
}

/// The answers to one watch stream's requests (gRPC's, or the gateway's JSON ones).
pub(crate) fn watch_stream(
    server: Arc<Server>,
    requests: impl Stream<Item = Result<WatchRequest, Status>> + Send + Unpin + 'static,
) -> BoxStream<WatchResponse> {
    let (tx, rx) = mpsc::channel(WATCH_BUFFER);
    let who = crate::server::caller();
    tokio::spawn(serve_requests(server.clone(), who, requests, tx));
    let answers = futures_util::stream::unfold((server, rx), |(server, mut rx)| async move {
        let d = rx.recv().await?;
        let parts = server.watch_responses(d).into_iter().map(Ok);
        Some((futures_util::stream::iter(parts), (server, rx)))
    })
    .flatten();
    Box::pin(answers)
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

/// Serve one stream's requests. A client that closes its side (as a gateway request body
/// ends) keeps its watchers, as with etcd, until it stops reading the answers.
async fn serve_requests(
    server: Arc<Server>,
    who: Option<AuthInfo>,
    mut requests: impl Stream<Item = Result<WatchRequest, Status>> + Send + Unpin,
    tx: mpsc::Sender<Delivery>,
) {
    let mut mine = StreamWatchers {
        server: server.clone(),
        by_id: HashMap::new(),
        next_id: 0,
    };
    loop {
        let req = match requests.next().await {
            Some(Ok(req)) => req,
            Some(Err(_)) => return,
            None => {
                tx.closed().await;
                return;
            }
        };
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
                let permitted = server.authorize_as(who.as_ref(), |a, info| {
                    a.check_permitted(info, &c.key, &c.range_end, Access::Read)
                });
                match mine.by_id.entry(watch_id) {
                    // etcd 3.4: a watch the client may not read is refused, and the stream
                    // goes on.
                    _ if permitted.is_err() => tx.send(Delivery::Refused { revision }).await,
                    // etcd: a watch id already in use on this stream is refused.
                    Entry::Occupied(_) => tx.send(Delivery::Canceled { watch_id, revision }).await,
                    Entry::Vacant(slot) => {
                        let spec = WatchSpec::from_request(watch_id, c);
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
