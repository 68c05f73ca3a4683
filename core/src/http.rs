//! HTTP/1 serving shared by the client API (`api`) and the peer API (`peer`): the accept
//! loop with what Go's server refuses before etcd sees a request, and the response helpers
//! both use.

use crate::identity::format_id;
use crate::server::Server;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::either::Either as IoEither;

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

/// Accept connections until shutdown (which a member's failure sends too). HTTP/1.1 and
/// HTTP/2 (h2c) are both heard, as etcd's cmux hears them on one port: a request whose
/// content-type is `application/grpc...` goes to `grpc` (the v3 API) when there is one,
/// never to `route`; every other request is answered by `route`. Open connections
/// (watches, peer streams) end with the member.
pub(crate) async fn accept<S, F, Fut>(
    listener: TcpListener,
    state: Arc<S>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    route: F,
    grpc: Option<Arc<crate::grpc::Routes>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Option<Arc<ClientLimits>>,
) where
    S: Served,
    F: Fn(Request<Incoming>, Arc<S>) -> Fut + Copy + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        // One client may hold so many connections; more are closed as they come.
        let permit = match &limits {
            None => None,
            Some(l) => match l.admit(remote.ip(), Hold::Connection) {
                Some(p) => Some(p),
                None => {
                    tracing::debug!(remote = %remote, "refused a connection: the client holds its cap of connections");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let grpc = grpc.clone();
        let mut shutdown = shutdown.clone();
        let idle_timeout = state.member().header_read_timeout;
        let secure = tls.is_some();
        // The common name of the client's certificate, once the handshake checked it.
        let client_cert: Arc<std::sync::OnceLock<Arc<str>>> = Arc::default();
        let client_cert_seen = client_cert.clone();
        let activity = Arc::new(Activity::default());
        let io_activity = activity.clone();
        let tls = tls.clone();
        let serving = activity.clone();
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ClientAddr(remote.ip()));
            if secure {
                req.extensions_mut().insert(OverTls);
                if let Some(cn) = client_cert_seen.get() {
                    req.extensions_mut().insert(ClientCertName(cn.clone()));
                }
            }
            let state = state.clone();
            let grpc = grpc.clone();
            serving.requests.fetch_add(1, Ordering::Relaxed);
            let busy = Busy::new(&serving);
            let serving = serving.clone();
            // The handlers' futures are boxed: inline, every request's future was as large
            // as the largest v2 handler's (5.4 KB), copied as hyper spawned it; boxed, 336 B.
            async move {
                let _busy = busy;
                if let Some(grpc) = grpc.filter(|_| is_grpc(&req)) {
                    // A gRPC client keeps its connection open between calls and streams
                    // for long: the idle watchdog leaves it be.
                    serving.grpc.store(true, Ordering::Relaxed);
                    return Ok::<_, Infallible>(Box::pin(grpc.call(req)).await.map(Either::Right));
                }
                if let Some(r) = malformed(&req) {
                    return Ok(r.map(Either::Left));
                }
                Ok(Box::pin(route(req, state)).await.map(Either::Left))
            }
        });
        let connection = tokio::spawn(CONNECTION.scope(activity.clone(), async move {
            let _permit = permit;
            // An https URL: the handshake first (the idle watchdog bounds a slow one).
            let io = match tls {
                None => IoEither::Left(stream),
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => {
                        let name = s.get_ref().1.peer_certificates().and_then(|chain| {
                            crate::tls::common_name(chain.first()?)
                        });
                        if let Some(name) = name {
                            let _ = client_cert.set(name.into());
                        }
                        IoEither::Right(s)
                    }
                    Err(e) => {
                        tracing::warn!(remote = %remote, error = %e, "refused a connection: TLS handshake failed");
                        return;
                    }
                },
            };
            let counted = Counted {
                io: TokioIo::new(io),
                activity: io_activity,
            };
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            // hyper's header-read timer is off: the watchdog below covers slow headers and
            // idle connections at a fraction of the cost.
            builder
                .http1()
                .title_case_headers(true)
                .header_read_timeout(None);
            let conn = builder.serve_connection(counted, svc);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended");
                },
                _ = shutdown.changed() => {}
            }
        }));
        watch_idle(activity, connection.abort_handle(), idle_timeout);
    }
}

/// etcd's cmux rule: gRPC is an HTTP/2 request whose content-type starts with
/// application/grpc.
fn is_grpc(req: &Request<Incoming>) -> bool {
    req.version() == hyper::Version::HTTP_2
        && req
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

tokio::task_local! {
    /// The activity of the connection whose task is running: a response body that stays
    /// open (a watch) marks it busy through `busy`.
    static CONNECTION: Arc<Activity>;
}

/// What a connection's watchdog looks at, counted as requests and writes happen (a few
/// atomic adds a request: hyper's own header-read timer armed a timer per request, 1,400
/// instructions of a 27,000-instruction GET).
#[derive(Default)]
struct Activity {
    /// Requests handed to the service.
    requests: AtomicU64,
    /// Requests whose answer is still being made, and open response bodies (watches).
    busy: AtomicU64,
    /// Writes to the client.
    written: AtomicU64,
    /// The connection carries gRPC: it is never cut as idle.
    grpc: std::sync::atomic::AtomicBool,
}

/// Holds a connection busy while it lives.
pub(crate) struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: &Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::Relaxed);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Keep the current connection from being cut as idle while the returned guard lives: for
/// a response body that stays open with nothing to write for a long time (a watch). None
/// outside a connection (in-process clients).
pub(crate) fn busy() -> Option<Busy> {
    CONNECTION.try_with(Busy::new).ok()
}

/// Cut a connection that has sent no request for `timeout`, with nothing in progress and
/// nothing written meanwhile: an idle keep-alive connection, or one that trickles a
/// request's headers (and never finishes them). Checked every quarter of the timeout, so
/// the cut comes between 1 and 1.25 timeouts late. The watchdog ends with the connection.
fn watch_idle(activity: Arc<Activity>, connection: tokio::task::AbortHandle, timeout: Duration) {
    let every = (timeout / 4).max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut seen = (u64::MAX, u64::MAX);
        let mut quiet = Duration::ZERO;
        while !connection.is_finished() {
            tokio::time::sleep(every).await;
            if activity.grpc.load(Ordering::Relaxed) {
                return;
            }
            let now = (
                activity.requests.load(Ordering::Relaxed),
                activity.written.load(Ordering::Relaxed),
            );
            if now == seen && activity.busy.load(Ordering::Relaxed) == 0 {
                quiet += every;
                if quiet >= timeout {
                    tracing::debug!("closing a connection idle for {timeout:?}");
                    connection.abort();
                    return;
                }
            } else {
                quiet = Duration::ZERO;
            }
            seen = now;
        }
    });
}

/// The connection's socket, counting writes for its watchdog.
struct Counted<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(_))) {
            self.activity.written.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(_))) {
            self.activity.written.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What Go's HTTP server refuses before any handler sees the request (etcd answers with
/// it): an HTTP/1.1 request without exactly one Host header, and a transfer coding other
/// than plain chunked, whose body would otherwise be read as something it is not. The
/// connection is closed after the answer: its framing cannot be trusted.
pub(crate) fn malformed(req: &Request<Incoming>) -> Option<Response<Body>> {
    let refuse = |status: u16, reason: &'static str, body: &'static str| {
        let mut r = response(status, "text/plain; charset=utf-8", body);
        r.headers_mut()
            .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        r.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(reason.as_bytes()));
        Some(r)
    };
    // One pass over the few headers a request has costs less than two map look-ups.
    let (mut hosts, mut codings, mut plain_chunked) = (0, 0, true);
    for (name, value) in req.headers() {
        if name == hyper::header::HOST {
            hosts += 1;
        } else if name == hyper::header::TRANSFER_ENCODING {
            codings += 1;
            plain_chunked &= value.as_bytes().eq_ignore_ascii_case(b"chunked");
        }
    }
    // HTTP/2 names the host in its :authority instead.
    if hosts == 0 && req.version() == hyper::Version::HTTP_11 {
        let text = "400 Bad Request: missing required Host header";
        return refuse(400, &text[4..], text);
    }
    if hosts > 1 {
        return refuse(400, "Bad Request", "400 Bad Request");
    }
    if codings > 1 || !plain_chunked {
        return refuse(501, "Not Implemented", "Unsupported transfer encoding");
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
    let mut s = crate::go_json::to_string(v);
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

/// Go's http.Error: plain text, nosniff, the message and a newline.
pub(crate) fn text_error(status: u16, message: &str) -> Response<Body> {
    let mut r = response(status, "text/plain; charset=utf-8", format!("{message}\n"));
    header(&mut r, X_CONTENT_TYPE_OPTIONS, "nosniff");
    r
}

/// The address a request's connection comes from (per-client limits count by its IP).
#[derive(Clone, Copy)]
pub(crate) struct ClientAddr(pub std::net::IpAddr);

/// What one client (a remote IP) may hold at once on the client port: connections, and
/// long-poll watches. A flood from one address is refused instead of exhausting the member.
#[derive(Debug)]
pub(crate) struct ClientLimits {
    /// 0: no cap.
    max_connections: usize,
    max_long_polls: usize,
    held: std::sync::Mutex<std::collections::HashMap<(std::net::IpAddr, Hold), usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Hold {
    Connection,
    LongPoll,
}

/// One thing a client holds; given back when dropped.
pub(crate) struct Permit {
    limits: Arc<ClientLimits>,
    key: (std::net::IpAddr, Hold),
}

impl ClientLimits {
    pub fn new(max_connections: usize, max_long_polls: usize) -> Arc<ClientLimits> {
        Arc::new(ClientLimits {
            max_connections,
            max_long_polls,
            held: Default::default(),
        })
    }

    /// A permit for one more, or None when the client holds its cap already.
    pub fn admit(self: &Arc<Self>, ip: std::net::IpAddr, hold: Hold) -> Option<Permit> {
        let cap = match hold {
            Hold::Connection => self.max_connections,
            Hold::LongPoll => self.max_long_polls,
        };
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry((ip, hold)).or_insert(0);
        if cap > 0 && *n >= cap {
            return None;
        }
        *n += 1;
        Some(Permit {
            limits: self.clone(),
            key: (ip, hold),
        })
    }

    /// A long-poll permit for the client a request came from (a v2 wait, a v3 watch or
    /// keep-alive stream): None for a request from no address (the member's own client).
    pub fn admit_long_poll(
        self: &Arc<Self>,
        client: Option<&ClientAddr>,
    ) -> Result<Option<Permit>, TooManyLongPolls> {
        match client {
            None => Ok(None),
            Some(a) => self
                .admit(a.0, Hold::LongPoll)
                .map(Some)
                .ok_or(TooManyLongPolls),
        }
    }
}

/// A client at its cap of long-lived requests.
#[derive(Debug)]
pub(crate) struct TooManyLongPolls;

impl Drop for Permit {
    fn drop(&mut self) {
        let mut held = self.limits.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// Why a request body could not be read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// More than the limit.
    TooLarge,
    /// Not all there within the member's read timeout (a client trickling it).
    TooSlow,
    Failed(String),
}

/// A request body, whole: at most `limit` bytes, within the member's header-read timeout
/// (Go's ReadTimeout bounds a slow body the same way), so a slow client holds nothing long.
pub(crate) async fn collect_body(
    body: Incoming,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, BodyError> {
    let read = http_body_util::Limited::new(body, limit).collect();
    match tokio::time::timeout(deadline, read).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(e)) => Err(BodyError::Failed(e.to_string())),
        Ok(Ok(b)) => Ok(b.to_bytes()),
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge => f.write_str("http: request body too large"),
            BodyError::TooSlow => f.write_str("http: request body not received in time"),
            BodyError::Failed(e) => f.write_str(e),
        }
    }
}

/// Marks a request that came over TLS (etcd's host whitelist leaves those alone).
#[derive(Clone, Copy)]
pub(crate) struct OverTls;

/// The common name of the certificate a client presented, checked against the trusted CA
/// (--client-cert-auth): etcd takes it as the user of a gRPC call without a token.
#[derive(Clone)]
pub(crate) struct ClientCertName(pub Arc<str>);

pub(crate) fn not_found() -> Response<Body> {
    let mut r = response(404, "text/plain; charset=utf-8", "404 page not found\n");
    header(&mut r, X_CONTENT_TYPE_OPTIONS, "nosniff");
    r
}

/// etcd's httptypes.HTTPError: `{"message":...}`, with no newline after it.
pub(crate) fn http_error(status: u16, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "message": message }), false)
}

/// Go's path escaping for a URL path (url.URL.EscapedPath): unreserved characters and
/// `$&+,/:;=@` stay as they are.
const GO_PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b',')
    .remove(b'/')
    .remove(b':')
    .remove(b';')
    .remove(b'=')
    .remove(b'@');

/// Whether a raw path has `%`, `//` or `/.`. This runs on every request: eight bytes at a
/// time (a byte loop cost ~230 instructions on a 20-byte key path).
fn maybe_unclean(path: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The high bit of each byte of `x` that equals `b`, exactly.
    fn equal(x: u64, b: u8) -> u64 {
        let y = x ^ (LO * u64::from(b));
        !(((y & LOW7) + LOW7) | y | LOW7)
    }
    let mut carry = 0u64; // a '/' ending the previous word, at byte 0's high bit
    let mut check = |word: u64| {
        let slash = equal(word, b'/');
        let next = slash | equal(word, b'.');
        let pair = ((slash << 8) | carry) & next;
        carry = (slash >> 56) & 0x80;
        equal(word, b'%') | pair != 0
    };
    let mut chunks = path.chunks_exact(8);
    for c in &mut chunks {
        if check(u64::from_le_bytes(c.try_into().expect("8 bytes"))) {
            return true;
        }
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    check(u64::from_le_bytes(tail))
}

/// Go's ServeMux (etcd's router) answers a request whose path is not clean (`.` or `..`
/// segments, `//`, also when percent-encoded) with a 301 to the clean path, whatever the
/// method, before any handler sees it. None for a clean path (the common case costs one
/// scan for `//`, `/.` and `%`).
pub(crate) fn redirect_unclean(req: &Request<Incoming>) -> Option<Response<Body>> {
    let raw = req.uri().path();
    if !maybe_unclean(raw.as_bytes()) {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    // Go's cleanPath: path.Clean, keeping a trailing slash.
    let mut clean = crate::v2store::path::clean(&decoded);
    if decoded.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    if clean == decoded {
        return None;
    }
    let mut location = percent_encoding::utf8_percent_encode(&clean, GO_PATH).to_string();
    if let Some(q) = req.uri().query() {
        location.push('?');
        location.push_str(q);
    }
    // http.Redirect: an HTML note for GET (and its content type for HEAD), nothing else.
    let method = req.method();
    let mut r = if method == hyper::Method::GET || method == hyper::Method::HEAD {
        let escaped = location
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        let note = format!("<a href=\"{escaped}\">Moved Permanently</a>.\n\n");
        response(301, "text/html; charset=utf-8", note)
    } else {
        response(301, "", Bytes::new())
    };
    header(&mut r, hyper::header::LOCATION, &location);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::maybe_unclean;

    #[test]
    fn unclean_paths_are_spotted_at_any_offset() {
        let naive = |p: &[u8]| {
            p.contains(&b'%')
                || p.windows(2)
                    .any(|w| w[0] == b'/' && matches!(w[1], b'/' | b'.'))
        };
        let pieces = [
            "/", "a", "bc", ".", "..", "%2F", "//", "/.", "k.json", "x/y", "éé",
        ];
        let mut n = 0;
        // Every path of up to four pieces: marks at every offset and across word ends.
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        let p = format!("/v2/keys{a}{b}{c}{d}");
                        assert_eq!(maybe_unclean(p.as_bytes()), naive(p.as_bytes()), "{p}");
                        n += 1;
                    }
                }
            }
        }
        assert!(n > 10_000);
        assert!(!maybe_unclean(b"/v2/keys/bench/k123"));
        assert!(!maybe_unclean(b"/v2/keys/bench/k123/"));
        assert!(maybe_unclean(b"/v2/keys/bench//k123"));
        assert!(!maybe_unclean(b""));
    }
}
