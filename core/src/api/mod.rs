//! etcd's client HTTP API over hyper: /v2/keys, /v2/stats, /v2/machines, /v2/members,
//! /version, /health, and the spec's /mod/v2 lock and leader modules. Status codes, headers
//! (etcd's casing) and bodies follow etcd 3.4. What members serve each other is `peer`.

mod dashboard;
mod modules;
mod v2auth;
mod watch_body;

use crate::error::{Error, ErrorCode};
use crate::http::{
    accept, cluster_id_header, collect_body, http_error, json, method_not_allowed, not_found,
    response, Body, BodyError,
};
use crate::request::{KeyRequest, Method};
use crate::server::{KeyResponse, KeyResult, Server};
use crate::v2store::Action;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{
    HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE,
};
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use tokio::net::TcpListener;
use watch_body::WatchBody;

/// Go's ParseForm reads at most this much of a form body.
pub const MAX_FORM_BYTES: usize = 10 << 20;
const KEYS_PATH: &str = "/v2/keys";
// Parsed once, not per response.
const X_ETCD_INDEX: HeaderName = HeaderName::from_static("x-etcd-index");
const X_RAFT_INDEX: HeaderName = HeaderName::from_static("x-raft-index");
const X_RAFT_TERM: HeaderName = HeaderName::from_static("x-raft-term");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Serve etcd's client API until shutdown, from the moment the member is ready (as etcd:
/// until then connections wait in the listen backlog).
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    tokio::select! {
        _ = server.ready() => {}
        _ = shutdown.changed() => return,
    }
    let grpc = Arc::new(crate::grpc::Routes::new(server.clone()));
    let limits = Some(server.client_limits.clone());
    accept(
        listener,
        server,
        shutdown,
        |req, server| async move { route(req, &server).await },
        Some(grpc),
        tls,
        limits,
    )
    .await
}

/// etcd's --listen-metrics-urls: /metrics and /health, nothing else (no gRPC either).
pub async fn serve_metrics(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    accept(
        listener,
        server,
        shutdown,
        |req, server| async move {
            match req.uri().path() {
                "/metrics" | "/health" => route(req, &server).await,
                _ => not_found(),
            }
        },
        None,
        tls,
        None,
    )
    .await
}

async fn route(req: Request<Incoming>, server: &Arc<Server>) -> Response<Body> {
    // A failed member answers nothing from its store, which no longer moves.
    if let Some(e) = server.failure() {
        return key_error(&e, server.cluster_id);
    }
    // DNS rebinding: a plain-HTTP request must name a whitelisted host.
    if let Some(refused) = unlisted_host(&req, &server.host_whitelist) {
        return refused;
    }
    let origin = req
        .headers()
        .get(hyper::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(String::from);
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    // etcd's CORS handler answers OPTIONS before its mux sees the path.
    let mut resp = if method == hyper::Method::OPTIONS {
        response(200, "", Bytes::new())
    } else if let Some(r) = crate::http::redirect_unclean(&req) {
        r
    } else if crate::grpc::gateway::handles(&path) {
        crate::grpc::gateway::serve(req, server).await
    } else if path == v2auth::PREFIX || path.starts_with("/v2/auth/") {
        v2auth::serve(req, server).await
    } else if path == KEYS_PATH || path.starts_with("/v2/keys/") {
        keys(req, server).await
    } else if (path.starts_with(modules::LOCK_PREFIX) || path.starts_with(modules::LEADER_PREFIX))
        && !v2auth::has_write_root_access(server, &v2auth::Asker::of(&req)).await
    {
        // With v2 auth on, the modules' changes are root's (their keys are not the keys
        // API's, so roles cannot name them).
        v2auth::no_auth()
    } else if path.starts_with(modules::LOCK_PREFIX) {
        modules::lock(req, server).await
    } else if path.starts_with(modules::LEADER_PREFIX) {
        modules::leader(req, server).await
    } else if path == dashboard::PREFIX || path.starts_with("/mod/dashboard/") {
        dashboard::serve(&req, server)
    } else if path == "/health" {
        if method != hyper::Method::GET && method != hyper::Method::HEAD {
            method_not_allowed("GET")
        } else if server.healthy().await {
            response(200, "text/plain; charset=utf-8", r#"{"health":"true"}"#)
        } else {
            response(503, "text/plain; charset=utf-8", r#"{"health":"false"}"#)
        }
    } else if path == "/v2/members" || path.starts_with("/v2/members/") {
        let mut r = if !["GET", "POST", "DELETE", "PUT"].contains(&method.as_str()) {
            method_not_allowed("GET,POST,DELETE,PUT")
        } else if !v2auth::has_write_root_access(server, &v2auth::Asker::of(&req)).await {
            return v2auth::no_auth();
        } else {
            members(req, server).await
        };
        // etcd checks the method before it sets the header.
        if r.status() != StatusCode::METHOD_NOT_ALLOWED {
            cluster_id_header(&mut r, server.cluster_id);
        }
        r
    } else {
        let get_only = |f: &dyn Fn() -> Response<Body>| {
            if method == hyper::Method::GET || method == hyper::Method::HEAD {
                f()
            } else {
                method_not_allowed("GET")
            }
        };
        match path.as_str() {
            "/v2/stats/store" => get_only(&|| json(200, &server.store_stats(), false)),
            "/v2/stats/self" => get_only(&|| json(200, &server.self_stats(), false)),
            "/v2/stats/leader" => get_only(&|| match server.leader_stats() {
                Some(s) => json(200, &s, false),
                None => http_error(403, "not current leader"),
            }),
            "/v2/machines" | "/v2/machines/" => get_only(&|| {
                response(
                    200,
                    "text/plain; charset=utf-8",
                    server.machines().join(", "),
                )
            }),
            "/version" => get_only(&|| json(200, &server.version(), false)),
            "/metrics" => {
                get_only(&|| response(200, crate::metrics::CONTENT_TYPE, server.metrics_text()))
            }
            _ => not_found(),
        }
    };
    // etcd's CORS: every origin by default ("*"); with --cors, only a listed Origin is
    // answered (with itself), and others get no CORS headers at all.
    let allow_origin = if allows_all(&server.cors) {
        Some(HeaderValue::from_static("*"))
    } else {
        origin
            .filter(|o| server.cors.iter().any(|c| c == o))
            .and_then(|o| HeaderValue::from_str(&o).ok())
    };
    if let Some(allow_origin) = allow_origin {
        let h = resp.headers_mut();
        h.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("accept, content-type, authorization"),
        );
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
        );
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    }
    resp
}

/// etcd's "empty or * means allow all".
fn allows_all(list: &[String]) -> bool {
    list.is_empty() || list.iter().any(|e| e == "*")
}

/// Go's URL.Hostname: the port and an IPv6 literal's brackets go.
fn hostname(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.split_once(':') {
        Some((name, port)) if !port.contains(':') => name,
        _ => host,
    }
}

/// etcd 3.4's --host-whitelist: over plain HTTP, a request whose Host (without the port)
/// is not listed gets 421 with etcd's explanation; requests over TLS are not checked.
fn unlisted_host(req: &Request<Incoming>, whitelist: &[String]) -> Option<Response<Body>> {
    if allows_all(whitelist) || req.extensions().get::<crate::http::OverTls>().is_some() {
        return None;
    }
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("");
    let name = hostname(host);
    if whitelist.iter().any(|w| w == name) {
        return None;
    }
    Some(crate::http::text_error(
        421,
        &format!(
            "\netcd received your request, but the Host header was unrecognized.\n\nTo fix this, choose one of the following options:\n- Enable TLS, then any HTTPS request will be allowed.\n- Add the hostname you want to use to the whitelist in settings.\n  - e.g. etcd --host-whitelist {name:?}\n\nThis requirement has been added to help prevent \"DNS Rebinding\" attacks (CVE-2018-5702).\n"
        ),
    ))
}

/// etcd's /v2/members: list, add (POST), remove (DELETE), update peer URLs (PUT), leader.
async fn members(req: Request<Incoming>, server: &Server) -> Response<Body> {
    let method = req.method().clone();
    let sub = req
        .uri()
        .path()
        .trim_start_matches("/v2/members")
        .trim_start_matches('/')
        .to_string();
    let fail = |e: Error| http_error(e.code.http_status(), &e.cause);
    match (&method, sub.as_str()) {
        (&hyper::Method::GET, "") => json(
            200,
            &serde_json::json!({ "members": server.members() }),
            true,
        ),
        (&hyper::Method::GET, "leader") => match server.leader() {
            Some(m) => json(200, &m, true),
            None => http_error(503, "During election"),
        },
        (&hyper::Method::POST, "") => match peer_urls_body(req, server.header_read_timeout).await {
            Err(r) => r,
            Ok(urls) => match server.add_member(urls).await {
                Ok(m) => json(201, &m, true),
                Err(e) => fail(e),
            },
        },
        (&hyper::Method::DELETE, id) | (&hyper::Method::PUT, id) if !id.is_empty() => {
            let Ok(id_num) = u64::from_str_radix(id, 16) else {
                return http_error(404, &format!("No such member: {id}"));
            };
            let result = if method == hyper::Method::DELETE {
                server.remove_member(id_num).await.map(|_| ())
            } else {
                match peer_urls_body(req, server.header_read_timeout).await {
                    Err(r) => return r,
                    Ok(urls) => server.update_member(id_num, urls).await,
                }
            };
            match result {
                Ok(()) => response(204, "", Bytes::new()),
                Err(e) => fail(e),
            }
        }
        (&hyper::Method::GET, _) => http_error(404, "Not found"),
        // HEAD included: etcd's members handler allows these four only.
        _ => method_not_allowed("GET,POST,DELETE,PUT"),
    }
}

/// The `{"peerURLs": [...]}` body of a member add or update, checked as etcd checks it.
async fn peer_urls_body(
    req: Request<Incoming>,
    deadline: std::time::Duration,
) -> Result<Vec<String>, Response<Body>> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if content_type.split(';').next().unwrap_or("").trim() != "application/json" {
        return Err(http_error(
            415,
            &format!("Bad Content-Type {content_type}, accept application/json"),
        ));
    }
    let body = collect_body(req.into_body(), MAX_FORM_BYTES, deadline)
        .await
        .map_err(|e| http_error(400, &e.to_string()))?;
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(rename = "peerURLs", default)]
        peer_urls: Vec<String>,
    }
    let parsed: Body =
        serde_json::from_slice(&body).map_err(|e| http_error(400, &e.to_string()))?;
    if parsed.peer_urls.is_empty() {
        return Err(http_error(400, "no valid URLs given"));
    }
    if let Some(u) = crate::membership::invalid_peer_url(&parsed.peer_urls) {
        return Err(http_error(
            400,
            &format!("URL scheme must be http, https, unix, or unixs: {u}"),
        ));
    }
    Ok(parsed.peer_urls)
}

fn key_error(err: &Error, cluster_id: u64) -> Response<Body> {
    let mut r = response(
        err.code.http_status(),
        "application/json",
        format!("{}\n", err.to_json()),
    );
    cluster_id_header(&mut r, cluster_id);
    r.headers_mut().insert(X_ETCD_INDEX, err.index.into());
    r
}

fn raft_headers(
    r: &mut Response<Body>,
    cluster_id: u64,
    etcd_index: u64,
    raft_index: u64,
    raft_term: u64,
) {
    cluster_id_header(r, cluster_id);
    let h = r.headers_mut();
    h.insert(X_ETCD_INDEX, etcd_index.into());
    h.insert(X_RAFT_INDEX, raft_index.into());
    h.insert(X_RAFT_TERM, raft_term.into());
}

fn key_event(resp: &KeyResponse, cluster_id: u64, no_value_on_success: bool) -> Response<Body> {
    let e = &resp.event;
    let body = if no_value_on_success
        && matches!(
            e.action,
            Action::Set | Action::CompareAndSwap | Action::Create | Action::Update
        ) {
        format!("{{\"action\":\"{}\"}}\n", e.action.as_str()).into_bytes()
    } else {
        e.to_json_line()
    };
    let mut r = response(
        if e.is_created() { 201 } else { 200 },
        "application/json",
        body,
    );
    raft_headers(
        &mut r,
        cluster_id,
        resp.etcd_index,
        resp.raft_index,
        resp.raft_term,
    );
    r
}

/// A request's form fields in arrival order: the body's (when it is a form), then the query
/// string's. The first of a name wins, as with Go's Request.FormValue. A form has a handful
/// of fields, so a scan costs less than hashing each name.
#[derive(Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn add(&mut self, pairs: form_urlencoded::Parse<'_>) {
        self.0
            .extend(pairs.map(|(k, v)| (k.into_owned(), v.into_owned())));
    }
}

/// Form fields from the body (when it is a form) and the query string.
async fn read_form(
    req: Request<Incoming>,
    method: Method,
    deadline: std::time::Duration,
) -> Result<Form, Error> {
    let mut form = Form::default();
    let query = req.uri().query().unwrap_or("").to_string();
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if matches!(method, Method::Put | Method::Post) && is_form {
        let body = collect_body(req.into_body(), MAX_FORM_BYTES, deadline)
            .await
            .map_err(|e| {
                let cause = match e {
                    BodyError::TooLarge => "http: POST too large".to_string(),
                    e => e.to_string(),
                };
                Error::new(ErrorCode::InvalidForm, cause, 0)
            })?;
        form.add(form_urlencoded::parse(&body));
    }
    form.add(form_urlencoded::parse(query.as_bytes()));
    Ok(form)
}

async fn keys(req: Request<Incoming>, server: &Server) -> Response<Body> {
    let cluster_id = server.cluster_id;
    // etcd checks the method before it sets X-Etcd-Cluster-Id.
    let Some(method) = Method::parse(req.method().as_str()) else {
        return method_not_allowed("HEAD,GET,PUT,POST,DELETE");
    };
    let raw_key = req.uri().path()[KEYS_PATH.len()..].to_string();
    let key = match percent_encoding::percent_decode_str(&raw_key).decode_utf8() {
        Ok(k) => k.into_owned(),
        Err(_) => {
            return key_error(
                &Error::new(ErrorCode::InvalidForm, "key is not valid UTF-8", 0),
                cluster_id,
            )
        }
    };
    let headers = req.headers().clone();
    let cert = req
        .extensions()
        .get::<crate::http::ClientCertName>()
        .cloned();
    let http_method = req.method().clone();
    let client = req.extensions().get::<crate::http::ClientAddr>().copied();
    let form = match read_form(req, method, server.header_read_timeout).await {
        Ok(f) => f,
        Err(e) => return key_error(&e, cluster_id),
    };
    let request = match KeyRequest::from_form(method, &key, &|name: &str| {
        form.get(name).map(str::to_string)
    }) {
        Ok(r) => r,
        Err(e) => return key_error(&e, cluster_id),
    };
    // etcd checks access once the request parses.
    if !v2auth::has_key_access(
        server,
        &v2auth::Asker {
            method: &http_method,
            headers: &headers,
            cert: cert.as_ref(),
        },
        &key,
        request.recursive,
    )
    .await
    {
        return key_error(
            &Error::new(ErrorCode::Unauthorized, "Insufficient credentials", 0),
            cluster_id,
        );
    }
    let no_value = request.no_value_on_success;
    // A long poll holds one of the client's few long-poll permits while it waits.
    let long_poll = if request.wait && !request.quorum {
        match server.client_limits.admit_long_poll(client.as_ref()) {
            Err(_) => {
                let mut r = http_error(429, "too many long-poll watches from this client");
                cluster_id_header(&mut r, cluster_id);
                return r;
            }
            Ok(permit) => permit,
        }
    } else {
        None
    };
    match server.handle(request).await {
        Err(e) => key_error(&e, cluster_id),
        Ok(KeyResult::Event(resp)) => key_event(&resp, cluster_id, no_value),
        Ok(KeyResult::Watch(w)) => {
            let (etcd_index, raft_index, raft_term) = (w.etcd_index, w.raft_index, w.raft_term);
            let mut r = Response::new(WatchBody::new(w, long_poll).boxed());
            r.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON);
            raft_headers(&mut r, cluster_id, etcd_index, raft_index, raft_term);
            r
        }
    }
}
