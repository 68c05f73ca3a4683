//! /mod/v2/lock/<name> and /mod/v2/leader/<name>, as the v2 spec describes them: answers are
//! plain text (a lock index, a value, a leader's name, or nothing), errors are etcd's JSON
//! with the spec's codes and causes.

use super::{key_error, read_form, Form};
use crate::error::{Error, ErrorCode};
use crate::http::{method_not_allowed, response, Body};
use crate::lock::Locks;
use crate::lock::{LockField, LockHolder};
use crate::request::Method;
use crate::server::Server;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::sync::Arc;

pub const LOCK_PREFIX: &str = "/mod/v2/lock/";
pub const LEADER_PREFIX: &str = "/mod/v2/leader/";

/// A form field, absent when missing or empty (as Go's FormValue sees it).
fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.get(name).filter(|v| !v.is_empty())
}

fn ttl(form: &Form, cause: &str) -> Result<u64, Error> {
    field(form, "ttl")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::new(ErrorCode::TtlNan, cause, 0))
}

/// Seconds to wait for the lock; absent or negative: as long as it takes.
fn timeout(form: &Form) -> Result<Option<u64>, Error> {
    match field(form, "timeout") {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(|t| u64::try_from(t).ok())
            .map_err(|_| Error::new(ErrorCode::TimeoutNan, "Acquire", 0)),
    }
}

/// The request a renew or release names: by index or by value, not both.
fn holder<'a>(form: &'a Form, cause: &str) -> Result<LockHolder<'a>, Error> {
    let index = field(form, "index")
        .map(|i| {
            i.parse()
                .map_err(|_| Error::new(ErrorCode::IndexNan, cause, 0))
        })
        .transpose()?;
    LockHolder::from_parts(index, field(form, "value"), cause)
}

fn text(body: String) -> Response<Body> {
    if body.is_empty() {
        response(200, "", Bytes::new())
    } else {
        response(200, "text/plain; charset=utf-8", body)
    }
}

/// The lock or leader name from the path, percent-decoded.
fn name(path: &str, prefix: &str) -> Result<String, Error> {
    percent_encoding::percent_decode_str(&path[prefix.len()..])
        .decode_utf8()
        .map(|n| n.into_owned())
        .map_err(|_| Error::new(ErrorCode::InvalidForm, "name is not valid UTF-8", 0))
}

/// /mod/v2/lock/<name>: POST acquire, PUT renew, DELETE release, GET retrieve.
pub async fn lock(req: Request<Incoming>, server: &Arc<Server>) -> Response<Body> {
    let Some(method) = Method::parse(req.method().as_str()).filter(|m| *m != Method::Head) else {
        return method_not_allowed("GET,POST,PUT,DELETE");
    };
    let result = async {
        let name = name(req.uri().path(), LOCK_PREFIX)?;
        let form = read_form(req, method, server.header_read_timeout).await?;
        match method {
            Method::Post => {
                let timeout = timeout(&form)?;
                let ttl = ttl(&form, "Acquire")?;
                let value = field(&form, "value").unwrap_or("");
                let index = Locks::new(server)
                    .lock_acquire(&name, value, ttl, timeout)
                    .await?;
                Ok(index.to_string())
            }
            Method::Put => {
                let ttl = ttl(&form, "Renew")?;
                let holder = holder(&form, "Renew")?;
                Locks::new(server).lock_renew(&name, holder, ttl).await?;
                Ok(String::new())
            }
            Method::Delete => {
                let holder = holder(&form, "Release")?;
                Locks::new(server).lock_release(&name, holder).await?;
                Ok(String::new())
            }
            _ => {
                let field = match field(&form, "field") {
                    None | Some("value") => LockField::Value,
                    Some("index") => LockField::Index,
                    Some(_) => return Err(Error::new(ErrorCode::InvalidField, "Get", 0)),
                };
                Locks::new(server).lock_retrieve(&name, field).await
            }
        }
    }
    .await;
    match result {
        Ok(body) => text(body),
        Err(e) => key_error(&e, server.cluster_id),
    }
}

/// /mod/v2/leader/<name>: PUT set (or keep) the leader, GET it, DELETE relinquish.
pub async fn leader(req: Request<Incoming>, server: &Arc<Server>) -> Response<Body> {
    let method = match Method::parse(req.method().as_str()) {
        Some(m @ (Method::Get | Method::Put | Method::Delete)) => m,
        _ => return method_not_allowed("GET,PUT,DELETE"),
    };
    let result = async {
        let name = name(req.uri().path(), LEADER_PREFIX)?;
        let form = read_form(req, method, server.header_read_timeout).await?;
        let leader =
            || field(&form, "name").ok_or_else(|| Error::new(ErrorCode::NameRequired, "Set", 0));
        match method {
            Method::Put => {
                let leader = leader()?;
                let timeout = timeout(&form)?;
                let ttl = ttl(&form, "Acquire")?;
                let index = Locks::new(server)
                    .leader_set(&name, leader, ttl, timeout)
                    .await?;
                Ok(index.to_string())
            }
            Method::Delete => {
                Locks::new(server).leader_delete(&name, leader()?).await?;
                Ok(String::new())
            }
            _ => Locks::new(server).leader_get(&name).await,
        }
    }
    .await;
    match result {
        Ok(body) => text(body),
        Err(e) => key_error(&e, server.cluster_id),
    }
}
