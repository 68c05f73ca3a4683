//! The peer transport: raft messages to the other members over HTTP on their peer URLs.
//!
//! Each peer gets one long-lived streaming POST (`/raft/stream`) that carries every message
//! as a length-prefixed protobuf frame; whatever queued while the previous write was in
//! flight goes out as one batch, and nothing waits for a per-message answer. Snapshots go in a
//! POST of their own (`/raft/snapshot`) so a big one never holds up heartbeats. Every peer
//! has its own task: one that cannot be reached is retried with backoff and never blocks the
//! raft driver or the other peers (its queue is bounded; raft resends what was dropped).

use super::{encode_frame, HEADER_FROM, HEADER_TO, SNAPSHOT_PATH, STREAM_PATH};
use crate::http::X_ETCD_CLUSTER_ID;
use crate::identity::{format_id, Member};
use crate::membership::PeerDirectory;
use crate::raft::{RaftMsg, RaftSender, Transport};
use crate::storage::SnapshotData;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Messages waiting for one peer at most; beyond it they are dropped (raft resends).
const PEER_QUEUE: usize = 4096;
/// Bytes put into one write at most.
const MAX_WRITE: usize = 1 << 20;
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What every peer task needs.
struct Shared {
    me: u64,
    cluster_id: u64,
    peers: Arc<PeerDirectory>,
    raft_tx: RaftSender,
    /// Called when a peer says this member was removed from the cluster.
    on_removed: Box<dyn Fn() + Send + Sync>,
    /// The v3 store's image as it stands, sent along with every snapshot.
    v3_image: Box<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync>,
    metrics: Arc<crate::metrics::Metrics>,
    /// TLS towards https peer URLs.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Shared {
    fn tell_raft(&self, m: RaftMsg) {
        let _ = self.raft_tx.send(m);
    }
}

pub struct PeerTransport {
    shared: Arc<Shared>,
    queues: HashMap<u64, mpsc::Sender<Message>>,
    runtime: tokio::runtime::Handle,
}

impl PeerTransport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        me: u64,
        cluster_id: u64,
        peers: Arc<PeerDirectory>,
        raft_tx: RaftSender,
        on_removed: impl Fn() + Send + Sync + 'static,
        v3_image: impl Fn() -> Result<Vec<u8>, String> + Send + Sync + 'static,
        metrics: Arc<crate::metrics::Metrics>,
        tls: Option<Arc<rustls::ClientConfig>>,
        runtime: tokio::runtime::Handle,
    ) -> PeerTransport {
        PeerTransport {
            shared: Arc::new(Shared {
                me,
                cluster_id,
                peers,
                raft_tx,
                on_removed: Box::new(on_removed),
                v3_image: Box::new(v3_image),
                metrics,
                tls,
            }),
            queues: HashMap::new(),
            runtime,
        }
    }

    fn queue(&mut self, to: u64) -> &mpsc::Sender<Message> {
        let stale = self.queues.get(&to).is_none_or(|q| q.is_closed());
        if stale {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            self.runtime
                .spawn(stream_to_peer(self.shared.clone(), to, rx));
            self.queues.insert(to, tx);
        }
        &self.queues[&to]
    }
}

impl Transport for PeerTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let to = m.to;
            if m.get_msg_type() == MessageType::MsgSnapshot {
                self.runtime.spawn(send_snapshot(self.shared.clone(), m));
                continue;
            }
            if self.queue(to).try_send(m).is_err() {
                tracing::trace!(peer = %format_id(to), "peer queue full; dropped a raft message");
            }
        }
    }
}

/// A request body fed from a channel: each item is one write on the connection.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// Open an HTTP/1 connection to the first reachable URL of a peer.
async fn connect(
    urls: &[String],
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<ChannelBodyOrFull>,
        String,
    ),
    String,
> {
    let mut last = String::from("no peer URLs");
    for u in urls {
        let Ok(url) = url::Url::parse(u) else {
            last = format!("bad peer URL {u:?}");
            continue;
        };
        let host = url.host_str().unwrap_or("127.0.0.1").to_string();
        let port = url.port_or_known_default().unwrap_or(2380);
        let conn = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)),
        )
        .await;
        let stream = match conn {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                last = format!("{u}: {e}");
                continue;
            }
            Err(_) => {
                last = format!("{u}: connect timed out");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = if url.scheme() == "https" {
            let Some(tls) = tls else {
                last = format!("{u}: an https peer URL, but no peer TLS (--peer-cert-file, --peer-key-file or --peer-auto-tls)");
                continue;
            };
            let name = match rustls_pki_types::ServerName::try_from(
                host.trim_matches(['[', ']']).to_string(),
            ) {
                Ok(n) => n,
                Err(e) => {
                    last = format!("{u}: {e}");
                    continue;
                }
            };
            let handshake = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, stream);
            match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
                Ok(Ok(s)) => tokio_util::either::Either::Right(s),
                Ok(Err(e)) => {
                    last = format!("{u}: TLS: {e}");
                    continue;
                }
                Err(_) => {
                    last = format!("{u}: TLS handshake timed out");
                    continue;
                }
            }
        } else {
            tokio_util::either::Either::Left(stream)
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{u}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        return Ok((sender, format!("{host}:{port}")));
    }
    Err(last)
}

type ChannelBodyOrFull = http_body_util::Either<ChannelBody, Full<Bytes>>;

fn request(
    shared: &Shared,
    host: &str,
    path: &str,
    to: u64,
    body: ChannelBodyOrFull,
) -> hyper::Request<ChannelBodyOrFull> {
    hyper::Request::post(path)
        .header(hyper::header::HOST, host)
        .header(X_ETCD_CLUSTER_ID, format_id(shared.cluster_id))
        .header(HEADER_FROM, format_id(shared.me))
        .header(HEADER_TO, format_id(to))
        .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .expect("raft request")
}

/// Why a connection to a peer ended.
enum StreamEnd {
    /// The raft side is gone (member stopping): stop this task.
    Closed,
    Broken(String),
}

/// What a peer's refusal means for us; logged clearly because it never heals by retrying.
async fn refusal(shared: &Shared, to: u64, resp: hyper::Response<hyper::body::Incoming>) -> String {
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
        .unwrap_or_default();
    if status == 410 {
        tracing::error!(peer = %format_id(to), "a peer says this member was removed from the cluster");
        (shared.on_removed)();
    }
    format!("peer answered {status}: {body}")
}

/// Keep a message stream open to one peer for as long as the member runs.
async fn stream_to_peer(shared: Arc<Shared>, to: u64, mut rx: mpsc::Receiver<Message>) {
    let mut backoff = MIN_BACKOFF;
    let mut last_error = String::new();
    let sent = shared.metrics.peer_sent(to);
    loop {
        let Some(urls) = shared.peers.get(to) else {
            // Not (or no longer) a member: nothing to send to.
            return;
        };
        let opened = Instant::now();
        let end = match connect(&urls, shared.tls.as_ref()).await {
            Ok((mut sender, host)) => {
                if !last_error.is_empty() {
                    tracing::info!(peer = %format_id(to), "peer became active again");
                    last_error.clear();
                }
                let (body_tx, body_rx) = mpsc::channel::<Bytes>(16);
                let req = request(
                    &shared,
                    &host,
                    STREAM_PATH,
                    to,
                    http_body_util::Either::Left(ChannelBody(body_rx)),
                );
                let mut resp = Box::pin(sender.send_request(req));
                loop {
                    tokio::select! {
                        r = &mut resp => break StreamEnd::Broken(match r {
                            Ok(resp) => refusal(&shared, to, resp).await,
                            Err(e) => e.to_string(),
                        }),
                        m = rx.recv() => {
                            let Some(m) = m else { break StreamEnd::Closed };
                            let mut buf = Vec::with_capacity(256);
                            encode_frame(&m, &mut buf);
                            while buf.len() < MAX_WRITE {
                                let Ok(m) = rx.try_recv() else { break };
                                encode_frame(&m, &mut buf);
                            }
                            sent.inc_by(buf.len() as u64);
                            if body_tx.send(Bytes::from(buf)).await.is_err() {
                                break StreamEnd::Broken("connection closed".into());
                            }
                        }
                    }
                }
            }
            Err(e) => StreamEnd::Broken(e),
        };
        let reason = match end {
            StreamEnd::Closed => return,
            StreamEnd::Broken(reason) => reason,
        };
        if reason != last_error {
            tracing::warn!(peer = %format_id(to), reason = %reason, "lost the connection to a peer (peer became inactive); retrying");
            last_error = reason;
        }
        shared.tell_raft(RaftMsg::Unreachable(to));
        if opened.elapsed() > MAX_BACKOFF {
            backoff = MIN_BACKOFF;
        }
        // What queued meanwhile is stale; raft resends what still matters.
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The snapshot raft sends carries the v2 store's image; the v3 store's goes with it, as it
/// stands now (at or after the snapshot's index: the receiver skips the v3 entries its
/// image already holds when the log after the snapshot replays).
fn merge_v3(shared: &Shared, m: &mut Message) -> Result<(), String> {
    let v3 = (shared.v3_image)()?;
    let snap = m.mut_snapshot();
    let merged = {
        let data = SnapshotData::split(&snap.data).map_err(|e| e.cause)?;
        SnapshotData::merge(data.v2, &v3)
    };
    snap.data = merged.into();
    Ok(())
}

/// A follower's way to the leader for lease questions (etcd's /leases peer endpoints).
pub struct LeaseQuestions(Arc<Shared>);

impl PeerTransport {
    pub fn lease_questions(&self) -> LeaseQuestions {
        LeaseQuestions(self.shared.clone())
    }
}

impl crate::server::LeaderLeases for LeaseQuestions {
    fn ask(
        &self,
        leader: u64,
        path: &'static str,
        body: Vec<u8>,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, String>> + Send>> {
        let shared = self.0.clone();
        Box::pin(async move {
            let urls = shared
                .peers
                .get(leader)
                .ok_or("the leader is not a member")?;
            let (mut sender, host) = connect(&urls, shared.tls.as_ref()).await?;
            let req = request(
                &shared,
                &host,
                path,
                leader,
                http_body_util::Either::Right(Full::new(Bytes::from(body))),
            );
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            match status {
                200 => Ok(bytes.to_vec()),
                _ => Err(String::from_utf8_lossy(&bytes).into_owned()),
            }
        })
    }
}

/// Send a snapshot in a request of its own and tell raft how it went.
async fn send_snapshot(shared: Arc<Shared>, mut m: Message) {
    let to = m.to;
    let index = m.get_snapshot().get_metadata().index;
    let merged = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || merge_v3(&shared, &mut m).map(|()| m)).await
    };
    let m = match merged {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            tracing::error!(peer = %format_id(to), error = %e, "could not read the v3 store for a snapshot");
            shared.tell_raft(RaftMsg::SnapshotStatus { to, ok: false });
            return;
        }
        Err(_) => return,
    };
    let body = Bytes::from(m.write_to_bytes().expect("snapshot message encodes"));
    let size = body.len();
    let result = async {
        let urls = shared.peers.get(to).ok_or("not a member")?;
        let (mut sender, host) = connect(&urls, shared.tls.as_ref()).await?;
        let req = request(
            &shared,
            &host,
            SNAPSHOT_PATH,
            to,
            http_body_util::Either::Right(Full::new(body)),
        );
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(refusal(&shared, to, resp).await)
        }
    }
    .await;
    match &result {
        Ok(()) => {
            shared.metrics.peer_sent(to).inc_by(size as u64);
            tracing::info!(peer = %format_id(to), index, bytes = size, "sent a snapshot")
        }
        Err(e) => {
            tracing::warn!(peer = %format_id(to), index, error = %e, "could not send a snapshot")
        }
    }
    shared.tell_raft(RaftMsg::SnapshotStatus {
        to,
        ok: result.is_ok(),
    });
}

/// Ask a member of an existing cluster (at one of its peer URLs) for the cluster id and the
/// member list, as a member joining with --initial-cluster-state existing must.
pub async fn fetch_members(
    peer_urls: &[String],
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(u64, Vec<Member>), String> {
    let (mut sender, host) = connect(peer_urls, tls.as_ref()).await?;
    let req = hyper::Request::get("/members")
        .header(hyper::header::HOST, host)
        .body(http_body_util::Either::Right(Full::new(Bytes::new())))
        .expect("members request");
    let resp = tokio::time::timeout(CONNECT_TIMEOUT * 5, sender.send_request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let cluster = resp
        .headers()
        .get(X_ETCD_CLUSTER_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .ok_or("no cluster id in the answer")?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let members = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok((cluster, members))
}
