//! etcd's JSON gateway (grpc-gateway in etcd 3.4): every v3 service as JSON over plain HTTP
//! on the client port, `POST /v3/<service>/<method>` (and the `/v3beta/` spelling 3.4 still
//! answers). Each request is parsed into its protobuf message and handed to the same service
//! the gRPC server calls, so there is one implementation of each method; only the encoding
//! differs: proto field names, bytes as base64, 64-bit integers as strings, zero fields left
//! out (pbjson, configured in build.rs), streams as one `{"result": ...}` object per line.

use super::auth::AuthService;
use super::cluster::ClusterService;
use super::kv::KvService;
use super::lease::{keep_alive_stream, LeaseService};
use super::lock::{ElectionService, LockService};
use super::maintenance::MaintenanceService;
use super::watch::watch_stream;
use crate::http::{header, response, Body};
use crate::pb::etcdserverpb::{
    auth_server::Auth, cluster_server::Cluster, kv_server::Kv, lease_server::Lease,
    maintenance_server::Maintenance,
};
use crate::pb::v3electionpb::election_server::Election;
use crate::pb::v3lockpb::lock_server::Lock;
use crate::server::Server;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use hyper::{Method, Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use tonic::Status;

const GRPC_METADATA_CONTENT_TYPE: HeaderName =
    HeaderName::from_static("grpc-metadata-content-type");

/// The gateway's path prefixes in etcd 3.4.
const PREFIXES: [&str; 2] = ["/v3/", "/v3beta/"];

/// True for the paths the gateway answers (every other path is the v2 API's).
pub(crate) fn handles(path: &str) -> bool {
    PREFIXES.iter().any(|p| path.starts_with(p))
}

/// How a method's messages travel.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// One request object, one response object.
    Unary,
    /// One request object, a stream of response objects.
    ServerStream,
    /// Request objects one after another in the body, response objects as they come.
    Bidi,
}

/// Answer one gateway request, as the client its Authorization header's token names.
pub(crate) async fn serve(req: Request<Incoming>, server: &Arc<Server>) -> Response<Body> {
    let who = match server.auth_info(super::token(req.headers())) {
        Ok(who) => who,
        Err(e) => return error(&super::status(e)),
    };
    crate::server::CALLER
        .scope(who, serve_as_caller(req, server))
        .await
}

async fn serve_as_caller(req: Request<Incoming>, server: &Arc<Server>) -> Response<Body> {
    let path = req.uri().path();
    let method = PREFIXES
        .iter()
        .find_map(|p| path.strip_prefix(p))
        .unwrap_or_default()
        .to_string();
    let Some(shape) = shape(&method) else {
        return not_found();
    };
    if req.method() != Method::POST {
        // grpc-gateway: a known path asked with another method.
        let mut r = response(405, "text/plain; charset=utf-8", "Method Not Allowed\n");
        header(&mut r, X_CONTENT_TYPE_OPTIONS, "nosniff");
        return r;
    }
    let limit = server
        .v3_limits()
        .max_request_bytes
        .saturating_add(super::GRPC_OVERHEAD_BYTES);
    if shape == Shape::Bidi {
        // Held as long as the stream is open, as a gRPC stream's (grpc::Routes::call).
        let client = req.extensions().get::<crate::http::ClientAddr>();
        let permit = match server.client_limits.admit_long_poll(client) {
            Ok(p) => p,
            Err(_) => return error(&super::too_many_streams()),
        };
        let body = req.into_body();
        return match method.as_str() {
            "watch" => stream_answer(Ok(holding(
                watch_stream(server.clone(), body_messages(body, limit)),
                permit,
            ))),
            _ => stream_answer(Ok(holding(
                keep_alive_stream(server.clone(), body_messages(body, limit)),
                permit,
            ))),
        };
    }
    let body = match read_body(req.into_body(), limit, server.header_read_timeout).await {
        Ok(b) => b,
        Err(s) => return error(&s),
    };
    macro_rules! call {
        ($service:expr, $method:ident) => {
            match first_message(&body, limit) {
                Err(s) => error(&s),
                Ok(r) => unary_answer($service.$method(tonic::Request::new(r)).await),
            }
        };
    }
    macro_rules! stream {
        ($service:expr, $method:ident) => {
            match first_message(&body, limit) {
                Err(s) => error(&s),
                Ok(r) => stream_answer(
                    $service
                        .$method(tonic::Request::new(r))
                        .await
                        .map(tonic::Response::into_inner),
                ),
            }
        };
    }
    let s = server.clone();
    match method.as_str() {
        "kv/range" => call!(KvService(s), range),
        "kv/put" => call!(KvService(s), put),
        "kv/deleterange" => call!(KvService(s), delete_range),
        "kv/txn" => call!(KvService(s), txn),
        "kv/compaction" => call!(KvService(s), compact),
        "lease/grant" => call!(LeaseService(s), lease_grant),
        "lease/revoke" | "kv/lease/revoke" => call!(LeaseService(s), lease_revoke),
        "lease/timetolive" | "kv/lease/timetolive" => {
            call!(LeaseService(s), lease_time_to_live)
        }
        "lease/leases" | "kv/lease/leases" => call!(LeaseService(s), lease_leases),
        "cluster/member/add" => call!(ClusterService(s), member_add),
        "cluster/member/remove" => call!(ClusterService(s), member_remove),
        "cluster/member/update" => call!(ClusterService(s), member_update),
        "cluster/member/list" => call!(ClusterService(s), member_list),
        "cluster/member/promote" => call!(ClusterService(s), member_promote),
        "maintenance/alarm" => call!(MaintenanceService(s), alarm),
        "maintenance/status" => call!(MaintenanceService(s), status),
        "maintenance/defragment" => call!(MaintenanceService(s), defragment),
        "maintenance/hash" => call!(MaintenanceService(s), hash),
        "maintenance/snapshot" => stream!(MaintenanceService(s), snapshot),
        "maintenance/transfer-leadership" => call!(MaintenanceService(s), move_leader),
        "lock/lock" => call!(LockService(s), lock),
        "lock/unlock" => call!(LockService(s), unlock),
        "election/campaign" => call!(ElectionService(s), campaign),
        "election/proclaim" => call!(ElectionService(s), proclaim),
        "election/leader" => call!(ElectionService(s), leader),
        "election/observe" => stream!(ElectionService(s), observe),
        "election/resign" => call!(ElectionService(s), resign),
        "auth/enable" => call!(AuthService(s), auth_enable),
        "auth/disable" => call!(AuthService(s), auth_disable),
        "auth/authenticate" => call!(AuthService(s), authenticate),
        "auth/user/add" => call!(AuthService(s), user_add),
        "auth/user/get" => call!(AuthService(s), user_get),
        "auth/user/list" => call!(AuthService(s), user_list),
        "auth/user/delete" => call!(AuthService(s), user_delete),
        "auth/user/changepw" => call!(AuthService(s), user_change_password),
        "auth/user/grant" => call!(AuthService(s), user_grant_role),
        "auth/user/revoke" => call!(AuthService(s), user_revoke_role),
        "auth/role/add" => call!(AuthService(s), role_add),
        "auth/role/get" => call!(AuthService(s), role_get),
        "auth/role/list" => call!(AuthService(s), role_list),
        "auth/role/delete" => call!(AuthService(s), role_delete),
        "auth/role/grant" => call!(AuthService(s), role_grant_permission),
        "auth/role/revoke" => call!(AuthService(s), role_revoke_permission),
        _ => not_found(),
    }
}

/// The paths etcd 3.4's gateway serves, without their prefix. (3.4 has no gateway path for
/// HashKV, and AuthStatus came in 3.5.)
fn shape(method: &str) -> Option<Shape> {
    Some(match method {
        "watch" | "lease/keepalive" => Shape::Bidi,
        "maintenance/snapshot" | "election/observe" => Shape::ServerStream,
        "kv/range"
        | "kv/put"
        | "kv/deleterange"
        | "kv/txn"
        | "kv/compaction"
        | "lease/grant"
        | "lease/revoke"
        | "kv/lease/revoke"
        | "lease/timetolive"
        | "kv/lease/timetolive"
        | "lease/leases"
        | "kv/lease/leases"
        | "cluster/member/add"
        | "cluster/member/remove"
        | "cluster/member/update"
        | "cluster/member/list"
        | "cluster/member/promote"
        | "maintenance/alarm"
        | "maintenance/status"
        | "maintenance/defragment"
        | "maintenance/hash"
        | "maintenance/transfer-leadership"
        | "lock/lock"
        | "lock/unlock"
        | "election/campaign"
        | "election/proclaim"
        | "election/leader"
        | "election/resign" => Shape::Unary,
        "auth/enable" | "auth/disable" | "auth/authenticate" | "auth/user/add"
        | "auth/user/get" | "auth/user/list" | "auth/user/delete" | "auth/user/changepw"
        | "auth/user/grant" | "auth/user/revoke" | "auth/role/add" | "auth/role/get"
        | "auth/role/list" | "auth/role/delete" | "auth/role/grant" | "auth/role/revoke" => {
            Shape::Unary
        }
        _ => return None,
    })
}

/// grpc-gateway's answer to a path it does not know.
fn not_found() -> Response<Body> {
    let mut r = response(404, "text/plain; charset=utf-8", "Not Found\n");
    header(&mut r, X_CONTENT_TYPE_OPTIONS, "nosniff");
    r
}

/// The whole body, refused when it cannot hold a message the gRPC server would take:
/// JSON carries bytes as base64 and names every field, so the body may be a few times the
/// message, whose own size (`limit`) is checked once it is parsed.
async fn read_body(
    body: Incoming,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<Bytes, Status> {
    crate::http::collect_body(body, limit.saturating_mul(4), deadline)
        .await
        .map_err(|e| match e {
            crate::http::BodyError::TooLarge => Status::resource_exhausted(format!(
                "grpc: received message larger than max (more than {} vs. {limit})",
                limit.saturating_mul(4)
            )),
            e => Status::invalid_argument(e.to_string()),
        })
}

/// A body's first JSON object as a request message; an empty body is the empty message, and
/// what follows the first object is not read (as grpc-gateway's decoder). A message larger
/// than `limit` encoded is refused as the gRPC server refuses it.
fn first_message<T: DeserializeOwned + Default + prost::Message>(
    body: &[u8],
    limit: usize,
) -> Result<T, Status> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    match serde_json::Deserializer::from_slice(body)
        .into_iter::<T>()
        .next()
    {
        Some(Ok(m)) => within_limit(m, limit),
        Some(Err(e)) => Err(Status::invalid_argument(e.to_string())),
        None => Ok(T::default()),
    }
}

/// etcd's gateway hands the message to its gRPC server, which refuses one over its limit.
fn within_limit<T: prost::Message>(m: T, limit: usize) -> Result<T, Status> {
    let len = m.encoded_len();
    if len > limit {
        return Err(Status::resource_exhausted(format!(
            "grpc: received message larger than max ({len} vs. {limit})"
        )));
    }
    Ok(m)
}

/// The request objects of a streaming call, parsed as the body arrives. The stream ends with
/// the body, or at the first object that does not parse (grpc-gateway stops sending then).
fn body_messages<T: DeserializeOwned + prost::Message + Send + 'static>(
    body: Incoming,
    limit: usize,
) -> impl Stream<Item = Result<T, Status>> + Send + Unpin + 'static {
    let frames = BodyStream::new(body);
    Box::pin(futures_util::stream::unfold(
        (frames, BytesMut::new(), false),
        move |(mut frames, mut buf, mut ended)| async move {
            loop {
                let mut objects = serde_json::Deserializer::from_slice(&buf).into_iter::<T>();
                match objects.next() {
                    Some(Ok(m)) => {
                        let used = objects.byte_offset();
                        let _ = buf.split_to(used);
                        return Some((within_limit(m, limit), (frames, buf, ended)));
                    }
                    // A partial object waits for more of the body; anything else ends it.
                    Some(Err(e)) if !e.is_eof() || ended => return None,
                    None if ended => return None,
                    _ => {}
                }
                if buf.len() > limit.saturating_mul(4) {
                    return None;
                }
                match frames.next().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            buf.extend_from_slice(&data);
                        }
                    }
                    Some(Err(_)) => return None,
                    None => ended = true,
                }
            }
        },
    ))
}

fn json_answer(status: u16, body: Vec<u8>) -> Response<Body> {
    let mut r = response(status, "application/json", body);
    r.headers_mut().insert(
        GRPC_METADATA_CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    r
}

fn unary_answer<T: Serialize>(answer: Result<tonic::Response<T>, Status>) -> Response<Body> {
    match answer {
        Ok(r) => json_answer(200, serde_json::to_vec(r.get_ref()).expect("json")),
        Err(s) => error(&s),
    }
}

/// `answers`, holding `permit` for as long as the stream lives.
fn holding<S: Stream>(
    answers: S,
    permit: Option<crate::http::Permit>,
) -> impl Stream<Item = S::Item> {
    answers.map(move |answer| {
        let _held = &permit;
        answer
    })
}

/// A streamed answer: one `{"result": ...}` per line; an error after the first answer ends
/// the stream with grpc-gateway's `{"error": ...}` line.
fn stream_answer<T, S>(answers: Result<S, Status>) -> Response<Body>
where
    T: Serialize,
    S: Stream<Item = Result<T, Status>> + Send + 'static,
{
    let answers = match answers {
        Ok(a) => a,
        Err(s) => return error(&s),
    };
    // A watch may wait long with nothing to write: its connection is not idle meanwhile.
    let busy = crate::http::busy();
    let lines = answers
        .scan(false, |failed, answer| {
            if *failed {
                return std::future::ready(None);
            }
            let line = match answer {
                Ok(m) => serde_json::json!({ "result": m }),
                Err(s) => {
                    *failed = true;
                    let (code, text) = http_status(s.code());
                    serde_json::json!({ "error": {
                        "grpc_code": s.code() as i32,
                        "http_code": code,
                        "message": s.message(),
                        "http_status": text,
                    }})
                }
            };
            let mut bytes = serde_json::to_vec(&line).expect("json");
            bytes.push(b'\n');
            std::future::ready(Some(Ok::<_, Infallible>(Frame::data(Bytes::from(bytes)))))
        })
        .map(move |frame| {
            let _keep = &busy;
            frame
        });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(
        sync_wrapper::SyncStream::new(lines),
    )));
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        GRPC_METADATA_CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    r
}

/// grpc-gateway's error object and the HTTP status it gives each gRPC code.
fn error(s: &Status) -> Response<Body> {
    let (status, _) = http_status(s.code());
    let body = serde_json::json!({
        "error": s.message(),
        "message": s.message(),
        "code": s.code() as i32,
    });
    response(
        status,
        "application/json",
        serde_json::to_vec(&body).expect("json"),
    )
}

/// grpc-gateway v1's HTTPStatusFromCode, with the status text Go gives each.
fn http_status(code: tonic::Code) -> (u16, &'static str) {
    use tonic::Code::*;
    match code {
        Ok => (200, "OK"),
        Cancelled => (408, "Request Timeout"),
        InvalidArgument | OutOfRange => (400, "Bad Request"),
        DeadlineExceeded => (504, "Gateway Timeout"),
        NotFound => (404, "Not Found"),
        AlreadyExists | Aborted => (409, "Conflict"),
        PermissionDenied => (403, "Forbidden"),
        Unauthenticated => (401, "Unauthorized"),
        ResourceExhausted => (429, "Too Many Requests"),
        FailedPrecondition => (412, "Precondition Failed"),
        Unimplemented => (501, "Not Implemented"),
        Unavailable => (503, "Service Unavailable"),
        Unknown | Internal | DataLoss => (500, "Internal Server Error"),
    }
}
