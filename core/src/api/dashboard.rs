//! /mod/dashboard: the page an operator opens in a browser to see the cluster (members,
//! leader, health, live graphs from the stats endpoints, a keys browser for v2 and v3).
//! One self-contained HTML file compiled into the binary: every member serves it, and it
//! reads only the member's own public API (plus the other members' /health and the
//! leader's /v2/stats/leader, which etcd's CORS headers let a browser read).

use super::key_error;
use crate::http::{json, method_not_allowed, not_found, response, Body};
use crate::server::Server;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

pub const PREFIX: &str = "/mod/dashboard";
const PAGE: &str = include_str!("dashboard.html");

pub fn serve(req: &Request<Incoming>, server: &Server) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return method_not_allowed("GET");
    }
    match req.uri().path().trim_start_matches(PREFIX) {
        "" | "/" => {
            let mut r = response(200, "text/html; charset=utf-8", PAGE);
            r.headers_mut().insert(
                hyper::header::CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("no-cache"),
            );
            r
        }
        // The hidden children of a v2 directory, which a keys-API get leaves out.
        "/hidden" => {
            let key = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "key")
                .map_or_else(|| "/".to_string(), |(_, v)| v.into_owned());
            match server.hidden_keys(&key) {
                Ok(nodes) => json(200, &nodes, false),
                Err(e) => key_error(&e, server.cluster_id),
            }
        }
        _ => not_found(),
    }
}
