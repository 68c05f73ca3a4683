//! What a member serves its peers on --listen-peer-urls: the raft message stream, snapshots,
//! and the member list a joining member reads. A peer from another cluster (another
//! --initial-cluster-token, or another cluster's data dir) or a removed member is refused with
//! a clear log line instead of being heard.

use super::{cluster_id_header, full, http_error, json, not_found, response, Body};
use crate::member::format_id;
use crate::raft::transport::{
    FrameDecoder, HEADER_CLUSTER_ID, HEADER_FROM, HEADER_TO, SNAPSHOT_PATH, STREAM_PATH,
};
use crate::server::Server;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use protobuf::Message as _;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A snapshot larger than this is refused (the whole store travels in one).
const MAX_SNAPSHOT_BYTES: usize = 8 << 30;

pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    super::accept(listener, server, shutdown, |req, server| async move {
        route(req, &server).await
    })
    .await
}

fn hex_header(req: &Request<Incoming>, name: &str) -> Option<u64> {
    let v = req.headers().get(name)?.to_str().ok()?;
    u64::from_str_radix(v, 16).ok()
}

/// Whether messages from this peer are for us to hear.
fn check_peer(req: &Request<Incoming>, server: &Server) -> Result<u64, (u16, &'static str)> {
    let from = hex_header(req, HEADER_FROM).unwrap_or(0);
    let cluster = hex_header(req, HEADER_CLUSTER_ID);
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

async fn route(req: Request<Incoming>, server: &Server) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (hyper::Method::POST, STREAM_PATH) => {
            let from = match check_peer(&req, server) {
                Ok(f) => f,
                Err((status, text)) => return response(status, "text/plain; charset=utf-8", text),
            };
            let mut body = req.into_body();
            let mut frames = FrameDecoder::default();
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.map(|f| f.into_data()) else {
                    break;
                };
                let Ok(data) = data else { continue };
                match frames.push(&data) {
                    Ok(msgs) => msgs.into_iter().for_each(|m| server.step(m)),
                    Err(e) => {
                        tracing::warn!(peer = %format_id(from), error = %e, "closing a broken raft stream");
                        return http_error(400, &e);
                    }
                }
            }
            Response::new(full(Bytes::new()))
        }
        (hyper::Method::POST, SNAPSHOT_PATH) => {
            let from = match check_peer(&req, server) {
                Ok(f) => f,
                Err((status, text)) => return response(status, "text/plain; charset=utf-8", text),
            };
            let bytes = match Limited::new(req.into_body(), MAX_SNAPSHOT_BYTES)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(e) => return http_error(400, &e.to_string()),
            };
            match raft::eraftpb::Message::parse_from_bytes(&bytes) {
                Ok(m) => {
                    tracing::info!(peer = %format_id(from), index = m.get_snapshot().get_metadata().index, bytes = bytes.len(), "received a snapshot");
                    server.step(m);
                    response(204, "", Bytes::new())
                }
                Err(e) => http_error(400, &format!("bad snapshot message: {e}")),
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
