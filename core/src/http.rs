//! HTTP/1 serving shared by the client API (`api`) and the peer API (`peer`): the accept
//! loop with what Go's server refuses before etcd sees a request, and the response helpers
//! both use.

use crate::identity::format_id;
use crate::server::Server;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

pub(crate) type Body = BoxBody<Bytes, Infallible>;

pub(crate) const X_ETCD_CLUSTER_ID: HeaderName = HeaderName::from_static("x-etcd-cluster-id");

/// What a listener serves for: a member (its failure closes the listener, its config gives
/// the timeouts), with whatever else its routes need.
pub(crate) trait Served: Send + Sync + 'static {
    fn member(&self) -> &Server;
}

impl Served for Server {
    fn member(&self) -> &Server {
        self
    }
}

/// Accept HTTP/1 connections until shutdown or until the member fails, answering each
/// request with `route`; open connections (watches, peer streams) end with the member.
pub(crate) async fn accept<S, F, Fut>(
    listener: TcpListener,
    state: Arc<S>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    route: F,
) where
    S: Served,
    F: Fn(Request<Incoming>, Arc<S>) -> Fut + Copy + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
            _ = state.member().failed() => return,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut shutdown = shutdown.clone();
        // Both the time to send a request's headers and the time a connection may idle
        // between requests (hyper's one timer is both); Config::header_read_timeout_ms.
        let header_read_timeout = state.member().header_read_timeout;
        tokio::spawn(async move {
            let failed = state.clone();
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move {
                    if let Some(r) = malformed(&req) {
                        return Ok::<_, Infallible>(r);
                    }
                    Ok(route(req, state).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .title_case_headers(true)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended");
                },
                _ = shutdown.changed() => {}
                _ = failed.member().failed() => {}
            }
        });
    }
}

/// What Go's HTTP server refuses before any handler sees the request (etcd answers with
/// it): an HTTP/1.1 request without exactly one Host header, and a transfer coding other
/// than plain chunked, whose body would otherwise be read as something it is not. The
/// connection is closed after the answer: its framing cannot be trusted.
pub(crate) fn malformed(req: &Request<Incoming>) -> Option<Response<Body>> {
    let hosts = req.headers().get_all(hyper::header::HOST).iter().count();
    let refuse = |status: u16, reason: &'static str, body: &'static str| {
        let mut r = response(status, "text/plain; charset=utf-8", body);
        r.headers_mut()
            .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        r.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(reason.as_bytes()));
        Some(r)
    };
    if hosts == 0 && req.version() >= hyper::Version::HTTP_11 {
        let text = "400 Bad Request: missing required Host header";
        return refuse(400, &text[4..], text);
    }
    if hosts > 1 {
        return refuse(400, "Bad Request", "400 Bad Request");
    }
    let mut codings = req
        .headers()
        .get_all(hyper::header::TRANSFER_ENCODING)
        .iter();
    if let Some(first) = codings.next() {
        let plain_chunked = first.as_bytes().eq_ignore_ascii_case(b"chunked");
        if !plain_chunked || codings.next().is_some() {
            return refuse(501, "Not Implemented", "Unsupported transfer encoding");
        }
    }
    None
}

pub(crate) fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

pub(crate) fn response(
    status: u16,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !content_type.is_empty() {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    r
}

pub(crate) fn json<T: serde::Serialize>(status: u16, v: &T, newline: bool) -> Response<Body> {
    let mut s = serde_json::to_string(v).expect("json");
    if newline {
        s.push('\n');
    }
    response(status, "application/json", s)
}

pub(crate) fn header(r: &mut Response<Body>, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

pub(crate) fn cluster_id_header(r: &mut Response<Body>, cluster_id: u64) {
    header(r, X_ETCD_CLUSTER_ID, &format_id(cluster_id));
}

/// Go's http.Error for a disallowed method.
pub(crate) fn method_not_allowed(allowed: &str) -> Response<Body> {
    let mut r = response(405, "text/plain; charset=utf-8", "Method Not Allowed\n");
    header(&mut r, ALLOW, allowed);
    header(&mut r, X_CONTENT_TYPE_OPTIONS, "nosniff");
    r
}

pub(crate) fn not_found() -> Response<Body> {
    let mut r = response(404, "text/plain; charset=utf-8", "404 page not found\n");
    header(&mut r, X_CONTENT_TYPE_OPTIONS, "nosniff");
    r
}

/// etcd's httptypes.HTTPError: `{"message":...}`.
pub(crate) fn http_error(status: u16, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "message": message }), true)
}
