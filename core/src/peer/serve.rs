//! What a member serves its peers on --listen-peer-urls: the raft message stream, snapshots,
//! and the member list a joining member reads. A peer from another cluster (another
//! --initial-cluster-token, or another cluster's data dir) or a removed member is refused with
//! a clear log line instead of being heard.

use super::{FrameDecoder, HEADER_FROM, HEADER_TO, SNAPSHOT_PATH, STREAM_PATH};
use crate::http::{
    accept, cluster_id_header, full, http_error, json, not_found, response, Body, Served,
    X_ETCD_CLUSTER_ID,
};
use crate::identity::format_id;
use crate::server::{Server, LEASE_RENEW_PATH, LEASE_TTL_PATH};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use protobuf::Message as _;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A snapshot larger than this is refused (the whole store travels in one). It is written
/// to a file as it arrives, never buffered in memory before its sender is known to be the
/// leader.
const MAX_SNAPSHOT_BYTES: u64 = 8 << 30;

/// The peer API of one member: its server, and what its peers are sending it right now.
pub(crate) struct PeerService {
    server: Arc<Server>,
    inbound: Inbound,
}

impl PeerService {
    /// `snapshot_path`: where a snapshot being received is written (a temporary name in the
    /// snap dir, so an interrupted one is cleaned up at the next start).
    pub(crate) fn new(server: Arc<Server>, snapshot_path: std::path::PathBuf) -> PeerService {
        PeerService {
            server,
            inbound: Inbound::new(snapshot_path),
        }
    }
}

impl Served for PeerService {
    fn member(&self) -> &Server {
        &self.server
    }
}

/// Serve the peer API on `listener` until shutdown or until the member fails.
pub(crate) async fn serve(
    listener: TcpListener,
    service: Arc<PeerService>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    accept(
        listener,
        service,
        shutdown,
        |req, service| async move { route(req, &service).await },
        None,
        tls,
        // Peers are members of this cluster: not capped as clients are.
        None,
    )
    .await
}

fn hex_header(req: &Request<Incoming>, name: &str) -> Option<u64> {
    let v = req.headers().get(name)?.to_str().ok()?;
    u64::from_str_radix(v, 16).ok()
}

fn text(status: u16, body: &'static str) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", body)
}

/// Whether messages from this peer are for us to hear: it must be another current member
/// of this cluster (as etcd checks), writing to this member.
fn check_peer(req: &Request<Incoming>, server: &Server) -> Result<u64, (u16, &'static str)> {
    let from = hex_header(req, HEADER_FROM).unwrap_or(0);
    let cluster = hex_header(req, X_ETCD_CLUSTER_ID.as_str());
    if cluster != Some(server.cluster_id) {
        tracing::error!(
            peer = %format_id(from),
            remote_cluster = %cluster.map(format_id).unwrap_or_default(),
            local_cluster = %format_id(server.cluster_id),
            "refused raft messages from a member of another cluster (cluster ID mismatch; check --initial-cluster and --initial-cluster-token)"
        );
        return Err((412, "cluster ID mismatch\n"));
    }
    if server.is_removed_member(from) {
        tracing::warn!(peer = %format_id(from), "refused raft messages from a removed member");
        return Err((
            410,
            "the member has been permanently removed from the cluster\n",
        ));
    }
    if !server.is_peer(from) {
        tracing::warn!(peer = %format_id(from), "refused raft messages from a sender that is not a member of this cluster");
        return Err((404, "error sender not found\n"));
    }
    let to = hex_header(req, HEADER_TO);
    if to != Some(server.member_id) {
        tracing::error!(
            peer = %format_id(from),
            to = %to.map(format_id).unwrap_or_default(),
            local = %format_id(server.member_id),
            "refused raft messages meant for another member id"
        );
        return Err((412, "raft To mismatch\n"));
    }
    Ok(from)
}

async fn route(req: Request<Incoming>, service: &PeerService) -> Response<Body> {
    let server = &*service.server;
    let inbound = &service.inbound;
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (hyper::Method::POST, STREAM_PATH) => match check_peer(&req, server) {
            Ok(from) => stream(req, server, inbound, from).await,
            Err((status, why)) => text(status, why),
        },
        (hyper::Method::POST, SNAPSHOT_PATH) => match check_peer(&req, server) {
            Ok(from) => snapshot(req, server, inbound, from).await,
            Err((status, why)) => text(status, why),
        },
        (hyper::Method::POST, LEASE_RENEW_PATH) | (hyper::Method::POST, LEASE_TTL_PATH) => {
            match check_peer(&req, server) {
                Ok(_) => lease(req, server, &path).await,
                Err((status, why)) => text(status, why),
            }
        }
        (hyper::Method::GET, "/members") => {
            let mut r = json(200, &server.members(), false);
            cluster_id_header(&mut r, server.cluster_id);
            r
        }
        _ => not_found(),
    }
}

/// A follower asks the leader (this member) to renew a lease or say what is left of it:
/// a protobuf request, the protobuf answer; 404 for a lease that does not exist, 503 when
/// this member is not the leader (any more).
async fn lease(req: Request<Incoming>, server: &Server, path: &str) -> Response<Body> {
    use crate::error::V3Error;
    use crate::pb::etcdserverpb::{
        LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest,
    };
    use prost::Message as _;
    let body = match http_body_util::Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return http_error(400, &e.to_string()),
    };
    let answer = if path == LEASE_RENEW_PATH {
        match LeaseKeepAliveRequest::decode(body) {
            Ok(r) => server.renew_here(r.id).await.map(|ttl| {
                LeaseKeepAliveResponse {
                    header: None,
                    id: r.id,
                    ttl,
                }
                .encode_to_vec()
            }),
            Err(e) => return http_error(400, &e.to_string()),
        }
    } else {
        match LeaseTimeToLiveRequest::decode(body) {
            Ok(r) => server
                .time_to_live_here(&r)
                .await
                .map(|resp| resp.encode_to_vec()),
            Err(e) => return http_error(400, &e.to_string()),
        }
    };
    match answer {
        Ok(bytes) => response(200, "application/protobuf", bytes),
        Err(V3Error::LeaseNotFound) => http_error(404, "lease not found"),
        Err(e) => http_error(503, &e.message()),
    }
}

/// A peer's message stream: every frame to raft, until the peer closes it or opens a newer
/// one. A message that claims another sender or recipient, or a snapshot (they come by
/// /raft/snapshot, where they are checked), ends the stream.
async fn stream(
    req: Request<Incoming>,
    server: &Server,
    inbound: &Inbound,
    from: u64,
) -> Response<Body> {
    let mut attached = inbound.attach(from);
    let mut body = req.into_body();
    let mut frames = FrameDecoder::default();
    let received = server.metrics.peer_received(from);
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = &mut attached.replaced => {
                tracing::debug!(peer = %format_id(from), "a newer raft stream from this peer replaced this one");
                break;
            }
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame.map(|f| f.into_data()) else {
            break;
        };
        let Ok(data) = data else { continue };
        received.inc_by(data.len() as u64);
        let msgs = match frames.push(&data) {
            Ok(msgs) => msgs,
            Err(e) => {
                tracing::warn!(peer = %format_id(from), error = %e, "closing a broken raft stream");
                return http_error(400, &e);
            }
        };
        for m in msgs {
            let wrong = if m.from != from || m.to != server.member_id {
                Some("a message whose sender or recipient is not this stream's")
            } else if m.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot {
                Some("a snapshot on the message stream")
            } else {
                None
            };
            if let Some(why) = wrong {
                tracing::warn!(peer = %format_id(from), why, "closing a raft stream");
                return http_error(400, why);
            }
            server.step(m);
        }
    }
    Response::new(full(Bytes::new()))
}

/// A snapshot from the leader: written to a file as it arrives, then checked (it comes
/// from the leader this member follows in the current term, names this member and its
/// sender as voters, and its data is a store image) before raft hears of it. Raft saves and
/// acknowledges only what passed.
async fn snapshot(
    req: Request<Incoming>,
    server: &Server,
    inbound: &Inbound,
    from: u64,
) -> Response<Body> {
    let Ok(_receiving) = inbound.snapshot.try_lock() else {
        return http_error(503, "a snapshot is already being received");
    };
    if server.leader_id() != from {
        tracing::warn!(peer = %format_id(from), leader = %format_id(server.leader_id()), "refused a snapshot from a member that is not the leader");
        return http_error(403, "snapshot sender is not the leader");
    }
    let path = &inbound.snapshot_path;
    let received = receive_to_file(req.into_body(), path).await;
    let bytes = match received {
        Ok(()) => tokio::task::block_in_place(|| std::fs::read(path)),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(path);
    let bytes = match bytes {
        Ok(b) => Bytes::from(b),
        Err(e) => return http_error(400, &format!("cannot receive the snapshot: {e}")),
    };
    server
        .metrics
        .peer_received(from)
        .inc_by(bytes.len() as u64);
    let m = match raft::eraftpb::Message::parse_from_carllerche_bytes(&bytes) {
        Ok(m) => m,
        Err(e) => return http_error(400, &format!("bad snapshot message: {e}")),
    };
    if let Err(why) = tokio::task::block_in_place(|| check_snapshot(server, from, &m)) {
        tracing::warn!(peer = %format_id(from), why = %why, "refused a snapshot");
        return http_error(400, &why);
    }
    tracing::info!(peer = %format_id(from), index = m.get_snapshot().get_metadata().index, bytes = bytes.len(), "received a snapshot");
    drop(bytes);
    server.step(m);
    response(204, "", Bytes::new())
}

async fn receive_to_file(mut body: Incoming, path: &std::path::Path) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await?;
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(std::io::Error::other)?;
        if let Ok(data) = frame.into_data() {
            size += data.len() as u64;
            if size > MAX_SNAPSHOT_BYTES {
                return Err(std::io::Error::other(format!(
                    "over the limit of {MAX_SNAPSHOT_BYTES} bytes"
                )));
            }
            file.write_all(&data).await?;
        }
    }
    file.flush().await
}

fn check_snapshot(server: &Server, from: u64, m: &raft::eraftpb::Message) -> Result<(), String> {
    use raft::eraftpb::MessageType;
    if m.get_msg_type() != MessageType::MsgSnapshot || m.from != from || m.to != server.member_id {
        return Err("not a snapshot from its sender to this member".into());
    }
    if m.term != server.raft_term() || server.leader_id() != from {
        return Err(format!(
            "snapshot of term {} from {}, but this member follows {} in term {}",
            m.term,
            format_id(from),
            format_id(server.leader_id()),
            server.raft_term()
        ));
    }
    let snap = m.get_snapshot();
    let meta = snap.get_metadata();
    let voters = &meta.get_conf_state().voters;
    if meta.index == 0 || !voters.contains(&from) || !voters.contains(&server.member_id) {
        return Err(format!(
            "snapshot at index {} with voters {voters:?} does not name its sender and this member",
            meta.index
        ));
    }
    let data = crate::storage::SnapshotData::split(&snap.data).map_err(|e| e.cause)?;
    crate::v2store::Store::new()
        .recover(data.v2)
        .map_err(|e| format!("snapshot data is not a store image: {}", e.cause))?;
    let v3 = data
        .v3
        .ok_or("the snapshot carries no v3 store image (a leader older than v3?)")?;
    crate::mvcc::Mvcc::check_dump(v3).map_err(|e| format!("snapshot's v3 store image: {e:?}"))
}

/// What a member accepts from its peers at a time: one message stream per peer (a newer
/// one replaces it, as when a peer reconnects), so no sender can hold more than one
/// message's worth of buffer per member id; and one snapshot, received into a file.
struct Inbound {
    streams: std::sync::Mutex<HashMap<u64, (u64, tokio::sync::oneshot::Sender<()>)>>,
    next_stream: std::sync::atomic::AtomicU64,
    /// Held while a snapshot is being received.
    snapshot: tokio::sync::Mutex<()>,
    /// Where a snapshot being received is written (a temporary name in the snap dir, so an
    /// interrupted one is cleaned up at the next start).
    snapshot_path: std::path::PathBuf,
}

/// A stream of messages from one peer, attached to `Inbound`; `replaced` resolves when the
/// peer opens a newer one.
struct InboundStream<'a> {
    inbound: &'a Inbound,
    from: u64,
    id: u64,
    replaced: tokio::sync::oneshot::Receiver<()>,
}

impl Inbound {
    fn new(snapshot_path: std::path::PathBuf) -> Inbound {
        Inbound {
            streams: Default::default(),
            next_stream: Default::default(),
            snapshot: tokio::sync::Mutex::new(()),
            snapshot_path,
        }
    }

    /// Attach a new stream from `from`, ending the one it had.
    fn attach(&self, from: u64) -> InboundStream<'_> {
        let id = self
            .next_stream
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, replaced) = tokio::sync::oneshot::channel();
        // Dropping the old sender ends the old stream.
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(from, (id, tx));
        InboundStream {
            inbound: self,
            from,
            id,
            replaced,
        }
    }
}

impl Drop for InboundStream<'_> {
    fn drop(&mut self) {
        let mut streams = self
            .inbound
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if streams
            .get(&self.from)
            .is_some_and(|(id, _)| *id == self.id)
        {
            streams.remove(&self.from);
        }
    }
}
