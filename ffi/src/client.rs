//! Clients: over HTTP to a list of endpoints, or attached to an in-process member
//! (`etcdrs_node_client`). Every operation of the v2 keys API, the Etcd.jl client API, and
//! the lock and leader modules. Each call blocks the calling thread until the answer: at
//! most the client's timeout over HTTP, or the member's request timeout (5 s) in-process,
//! except where a call says it waits longer.

use crate::response::{etcdrs_response, new_response};
use crate::{
    error, etcdrs_error, etcdrs_status, give_string, guard, handle, opt_text, out_param, text, ttl,
};
use etcdrs_core::within;
use etcdrs_core::{
    Client, Error, ErrorCode, GetOptions, KeyResponse, LockField, LockHolder, WatchOptions,
};
use std::ffi::c_char;
use std::future::Future;
use std::time::Duration;

/// A client. Thread-safe: many threads may call it at once. Free with `etcdrs_client_free`
/// once no call is running.
pub struct etcdrs_client {
    pub(crate) client: Client,
}

pub(crate) fn new_client(client: Client) -> *mut etcdrs_client {
    Box::into_raw(Box::new(etcdrs_client { client }))
}

/// `etcdrs_client_lock_retrieve`: the holder's value.
pub const ETCDRS_LOCK_FIELD_VALUE: u32 = 0;
/// `etcdrs_client_lock_retrieve`: the holder's lock index.
pub const ETCDRS_LOCK_FIELD_INDEX: u32 = 1;

pub(crate) fn block<F: Future>(f: F) -> F::Output {
    etcdrs_core::blocking::block_on(f)
}

/// The common shape of a keys-API call: check the handle, the key and the out-parameter,
/// run `f`, hand over the response.
unsafe fn key_op(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
    f: impl FnOnce(&Client, &str) -> Result<KeyResponse, Error>,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(response_out, "response_out")?;
        // SAFETY: NULL or a client from this library; `key_len` readable bytes at `key`.
        let c = unsafe { handle(client, "client")? };
        let key = unsafe { text(key, key_len, "key")? };
        let r = f(&c.client, key)?;
        // SAFETY: checked non-NULL above.
        unsafe { *response_out = new_response(r) };
        Ok(())
    })
}

/// A call that answers text (freed by the caller with `etcdrs_string_free`).
unsafe fn text_op(
    client: *const etcdrs_client,
    text_out: *mut *mut c_char,
    error_out: *mut *mut etcdrs_error,
    f: impl FnOnce(&Client) -> Result<String, Error>,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(text_out, "text_out")?;
        // SAFETY: NULL or a client from this library.
        let c = unsafe { handle(client, "client")? };
        Ok(give_string(f(&c.client)?, text_out)?)
    })
}

use etcdrs_core::blocking::to_json as json;

/// A client over HTTP. `endpoints`: comma-separated URLs (`http://127.0.0.1:2379,...`); a
/// call goes to the next endpoint when one cannot be reached. `timeout_ms` bounds every call
/// except watches and lock acquires (0: no bound). No connection is made until the first
/// call. Free with `etcdrs_client_free`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_new(
    endpoints: *const c_char,
    endpoints_len: usize,
    timeout_ms: u64,
    client_out: *mut *mut etcdrs_client,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; no TLS material.
    unsafe {
        etcdrs_client_new_tls(
            endpoints,
            endpoints_len,
            timeout_ms,
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            false,
            client_out,
            error_out,
        )
    }
}

/// `etcdrs_client_new` with TLS for `https://` endpoints: `ca_file` (the CA that signed the
/// members' certificates), `cert_file` and `key_file` (this client's, for members that
/// require one) are paths, each NULL when not given; `insecure_skip_verify` checks no
/// member certificate (self-signed, --auto-tls). Without a CA file or
/// `insecure_skip_verify`, https endpoints are refused (InvalidArgument).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn etcdrs_client_new_tls(
    endpoints: *const c_char,
    endpoints_len: usize,
    timeout_ms: u64,
    ca_file: *const c_char,
    ca_file_len: usize,
    cert_file: *const c_char,
    cert_file_len: usize,
    key_file: *const c_char,
    key_file_len: usize,
    insecure_skip_verify: bool,
    client_out: *mut *mut etcdrs_client,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; no user.
    unsafe {
        etcdrs_client_new_auth(
            endpoints,
            endpoints_len,
            timeout_ms,
            ca_file,
            ca_file_len,
            cert_file,
            cert_file_len,
            key_file,
            key_file_len,
            insecure_skip_verify,
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            client_out,
            error_out,
        )
    }
}

/// `etcdrs_client_new_tls` with a user and password for members with auth enabled (v3
/// calls carry the token the members hand out for them): `user` NULL for none, `password`
/// NULL for an empty one; both UTF-8.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn etcdrs_client_new_auth(
    endpoints: *const c_char,
    endpoints_len: usize,
    timeout_ms: u64,
    ca_file: *const c_char,
    ca_file_len: usize,
    cert_file: *const c_char,
    cert_file_len: usize,
    key_file: *const c_char,
    key_file_len: usize,
    insecure_skip_verify: bool,
    user: *const c_char,
    user_len: usize,
    password: *const c_char,
    password_len: usize,
    client_out: *mut *mut etcdrs_client,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(client_out, "client_out")?;
        // SAFETY: `endpoints_len` readable bytes at `endpoints`.
        let endpoints = unsafe { text(endpoints, endpoints_len, "endpoints")? };
        // SAFETY: each NULL or `*_len` readable bytes.
        let (ca_file, cert_file, key_file) = unsafe {
            (
                optional_path(ca_file, ca_file_len, "ca_file")?,
                optional_path(cert_file, cert_file_len, "cert_file")?,
                optional_path(key_file, key_file_len, "key_file")?,
            )
        };
        let tls = etcdrs_core::ClientTls {
            ca_file,
            cert_file,
            key_file,
            insecure_skip_verify,
        };
        let list = etcdrs_core::split_urls(endpoints);
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
        // SAFETY: each NULL or `*_len` readable bytes.
        let credentials = unsafe {
            match optional_text(user, user_len, "user")? {
                Some(user) => Some(etcdrs_core::Credentials {
                    user: user.to_string(),
                    password: optional_text(password, password_len, "password")?
                        .unwrap_or_default()
                        .to_string(),
                }),
                None => None,
            }
        };
        let client = etcdrs_core::blocking::http_client_with(&list, timeout, &tls, credentials)?;
        // SAFETY: checked non-NULL above.
        unsafe { *client_out = new_client(client) };
        Ok(())
    })
}

/// A path that may be left out: NULL is none.
unsafe fn optional_path(
    p: *const c_char,
    len: usize,
    what: &str,
) -> Result<Option<std::path::PathBuf>, Error> {
    // SAFETY: forwarded as given.
    Ok(unsafe { optional_text(p, len, what)? }.map(Into::into))
}

/// Text that may be absent (NULL).
unsafe fn optional_text<'a>(
    p: *const c_char,
    len: usize,
    what: &str,
) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded as given.
    Ok(Some(unsafe { text(p, len, what)? }))
}

/// Free a client. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_free(client: *mut etcdrs_client) {
    // SAFETY: NULL or a client from this library, freed once, no call running on it.
    unsafe { crate::free_box(client) }
}

/// Read a key or directory. `recursive`: all levels below a directory; `sorted`: children in
/// key order; `quorum`: a linearizable read through raft.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_get(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    recursive: bool,
    sorted: bool,
    quorum: bool,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    let o = GetOptions {
        recursive,
        sorted,
        quorum,
    };
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            block(c.get_with(key, o))
        })
    }
}

/// Set a key's value, creating or replacing it. `ttl`: seconds to live, or `ETCDRS_NO_TTL`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_set(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    ttl_seconds: i64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            let value = text(value, value_len, "value")?;
            block(c.set(key, value, ttl(ttl_seconds)))
        })
    }
}

/// Create or replace a directory. `ttl`: seconds to live, or `ETCDRS_NO_TTL`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_set_dir(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    ttl_seconds: i64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            block(c.set_dir(key, ttl(ttl_seconds)))
        })
    }
}

/// Create a key that must not exist yet (`ETCDRS_CODE_NODE_EXIST` if it does).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_create(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    ttl_seconds: i64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            let value = text(value, value_len, "value")?;
            block(c.create(key, value, ttl(ttl_seconds)))
        })
    }
}

/// Create a directory that must not exist yet.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_create_dir(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    ttl_seconds: i64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            block(c.create_dir(key, ttl(ttl_seconds)))
        })
    }
}

/// Create a key in directory `key` named by the etcd index (in-order keys, etcd's POST).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_create_in_order(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    ttl_seconds: i64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            let value = text(value, value_len, "value")?;
            block(c.create_in_order(key, value, ttl(ttl_seconds)))
        })
    }
}

/// Change an existing key (`ETCDRS_CODE_KEY_NOT_FOUND` if missing). Without a TTL
/// (`ETCDRS_NO_TTL`) the key becomes permanent.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_update(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    ttl_seconds: i64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            let value = text(value, value_len, "value")?;
            block(c.update(key, value, ttl(ttl_seconds)))
        })
    }
}

/// Change an existing directory's TTL.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_update_dir(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    ttl_seconds: i64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            block(c.update_dir(key, ttl(ttl_seconds)))
        })
    }
}

/// Set `value` only if the key's value is `prev_value` (optional: NULL) and/or its
/// modifiedIndex is `prev_index` (0: not compared); at least one must be given.
/// `ETCDRS_CODE_TEST_FAILED` when the comparison fails.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_compare_and_swap(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    prev_value: *const c_char,
    prev_value_len: usize,
    prev_index: u64,
    ttl_seconds: i64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            let value = text(value, value_len, "value")?;
            let prev_value = opt_text(prev_value, prev_value_len, "prev_value")?;
            let prev_index = (prev_index > 0).then_some(prev_index);
            block(c.compare_and_swap(key, value, prev_value, prev_index, ttl(ttl_seconds)))
        })
    }
}

/// Delete a key only if its value is `prev_value` (optional: NULL) and/or its modifiedIndex
/// is `prev_index` (0: not compared); at least one must be given.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_compare_and_delete(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    prev_value: *const c_char,
    prev_value_len: usize,
    prev_index: u64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            let prev_value = opt_text(prev_value, prev_value_len, "prev_value")?;
            let prev_index = (prev_index > 0).then_some(prev_index);
            block(c.compare_and_delete(key, prev_value, prev_index))
        })
    }
}

/// Delete a key (not a directory: see `etcdrs_client_delete_dir`).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_delete(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            block(c.delete(key))
        })
    }
}

/// Delete a directory: an empty one, or with everything below it when `recursive`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_delete_dir(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    recursive: bool,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            block(c.delete_dir(key, recursive))
        })
    }
}

/// Whether a key or directory exists (`*exists_out`).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_exists(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    exists_out: *mut bool,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(exists_out, "exists_out")?;
        // SAFETY: NULL or a client from this library; `key_len` readable bytes at `key`.
        let c = unsafe { handle(client, "client")? };
        let key = unsafe { text(key, key_len, "key")? };
        let exists = block(c.client.exists(key))?;
        // SAFETY: checked non-NULL above.
        unsafe { *exists_out = exists };
        Ok(())
    })
}

/// Wait for the next change of `key` (or below it, when `recursive`) from `wait_index` on
/// (0: the next change from now); an index that left etcd's 1000-event history is
/// `ETCDRS_CODE_EVENT_INDEX_CLEARED`. Blocks until the change, or for at most `timeout_ms`
/// (0: no limit), then `ETCDRS_CODE_TIMEOUT`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_watch(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    wait_index: u64,
    recursive: bool,
    timeout_ms: u64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    let o = WatchOptions {
        wait_index,
        recursive,
    };
    // SAFETY: forwarded as given; see `key_op`.
    unsafe {
        key_op(client, key, key_len, response_out, error_out, |c, key| {
            block(within(millis(timeout_ms), c.watch(key, o)))
        })
    }
}

/// A timeout in milliseconds: 0 for none.
pub(crate) fn millis(timeout_ms: u64) -> Option<Duration> {
    (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms))
}

/// The cluster's client URLs, as etcd's /v2/machines answers them ("http://a, http://b").
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_machines(
    client: *const etcdrs_client,
    text_out: *mut *mut c_char,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `text_op`.
    unsafe {
        text_op(client, text_out, error_out, |c| {
            Ok(block(c.machines())?.join(", "))
        })
    }
}

/// The cluster's members as etcd's /v2/members JSON (`{"members":[...]}`).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_members(
    client: *const etcdrs_client,
    json_out: *mut *mut c_char,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `text_op`.
    unsafe {
        text_op(client, json_out, error_out, |c| {
            json(&serde_json::json!({ "members": block(c.members())? }))
        })
    }
}

/// The current leader as etcd's /v2/members/leader JSON.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_leader(
    client: *const etcdrs_client,
    json_out: *mut *mut c_char,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `text_op`.
    unsafe { text_op(client, json_out, error_out, |c| json(&block(c.leader())?)) }
}

/// Statistics as etcd's JSON: `kind` is "store", "self" or "leader" (the leader's view of
/// its followers; other members answer `ETCDRS_CODE_NOT_LEADER`).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_stats(
    client: *const etcdrs_client,
    kind: *const c_char,
    kind_len: usize,
    json_out: *mut *mut c_char,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `text_op`.
    unsafe {
        text_op(client, json_out, error_out, |c| {
            match text(kind, kind_len, "kind")? {
                "store" => json(&block(c.stats_store())?),
                "self" => json(&block(c.stats_self())?),
                "leader" => json(&block(c.stats_leader())?),
                other => Err(error(
                    ErrorCode::InvalidArgument,
                    format!("stats kind must be store, self or leader, not {other:?}"),
                )),
            }
        })
    }
}

/// The request a renew or release is about: by lock index (0: none) or by value (NULL:
/// none), exactly one.
unsafe fn holder<'a>(
    index: u64,
    value: *const c_char,
    value_len: usize,
    cause: &str,
) -> Result<LockHolder<'a>, Error> {
    // SAFETY: NULL or `value_len` readable bytes at `value`.
    let value = unsafe { opt_text(value, value_len, "value")? };
    LockHolder::from_parts((index > 0).then_some(index), value, cause)
}

/// A lock or leader name.
unsafe fn name<'a>(name: *const c_char, name_len: usize) -> Result<&'a str, Error> {
    // SAFETY: `name_len` readable bytes at `name`.
    unsafe { text(name, name_len, "name") }
}

/// A timeout in seconds: negative for none.
fn timeout(seconds: i64) -> Option<u64> {
    u64::try_from(seconds).ok()
}

/// Acquire lock `name`, waiting behind earlier requests in order of arrival, and store the
/// lock index in `*index_out`. The index is a fencing token: it only grows, and a holder
/// that did not renew within its `ttl_seconds` (0: until released) has lost the lock even
/// if nobody told it. `value` (optional: NULL) names the request for renew and release.
/// Blocks until held, or for at most `timeout_seconds` (negative: no limit; 0: only if
/// free now), then `ETCDRS_CODE_TIMEOUT`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_lock_acquire(
    client: *const etcdrs_client,
    name_ptr: *const c_char,
    name_len: usize,
    ttl_seconds: u64,
    value: *const c_char,
    value_len: usize,
    timeout_seconds: i64,
    index_out: *mut u64,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(index_out, "index_out")?;
        // SAFETY: NULL or a client from this library; lengths as given.
        let c = unsafe { handle(client, "client")? };
        let name = unsafe { name(name_ptr, name_len)? };
        let value = unsafe { opt_text(value, value_len, "value")? };
        let index =
            block(
                c.client
                    .lock_acquire(name, ttl_seconds, value, timeout(timeout_seconds)),
            )?;
        // SAFETY: checked non-NULL above.
        unsafe { *index_out = index };
        Ok(())
    })
}

/// The holder of lock `name`: its value (`ETCDRS_LOCK_FIELD_VALUE`) or lock index
/// (`ETCDRS_LOCK_FIELD_INDEX`) as text; empty when nobody holds it.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_lock_retrieve(
    client: *const etcdrs_client,
    name_ptr: *const c_char,
    name_len: usize,
    field: u32,
    text_out: *mut *mut c_char,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `text_op`.
    unsafe {
        text_op(client, text_out, error_out, |c| {
            let name = name(name_ptr, name_len)?;
            let field = match field {
                ETCDRS_LOCK_FIELD_VALUE => LockField::Value,
                ETCDRS_LOCK_FIELD_INDEX => LockField::Index,
                _ => return Err(error(ErrorCode::InvalidField, "Get")),
            };
            block(c.lock_retrieve(name, field))
        })
    }
}

/// Give a request for lock `name` (held or waiting) a new TTL. Name it by `index` (0: not
/// by index) or by `value` (NULL: not by value), exactly one of the two.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_lock_renew(
    client: *const etcdrs_client,
    name_ptr: *const c_char,
    name_len: usize,
    index: u64,
    value: *const c_char,
    value_len: usize,
    ttl_seconds: u64,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        // SAFETY: NULL or a client from this library; lengths as given.
        let c = unsafe { handle(client, "client")? };
        let name = unsafe { name(name_ptr, name_len)? };
        let holder = unsafe { holder(index, value, value_len, "Renew")? };
        Ok(block(c.client.lock_renew(name, holder, ttl_seconds))?)
    })
}

/// Release lock `name` (or withdraw a waiting request), named by `index` or `value` as for
/// `etcdrs_client_lock_renew`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_lock_release(
    client: *const etcdrs_client,
    name_ptr: *const c_char,
    name_len: usize,
    index: u64,
    value: *const c_char,
    value_len: usize,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        // SAFETY: NULL or a client from this library; lengths as given.
        let c = unsafe { handle(client, "client")? };
        let name = unsafe { name(name_ptr, name_len)? };
        let holder = unsafe { holder(index, value, value_len, "Release")? };
        Ok(block(c.client.lock_release(name, holder))?)
    })
}

/// Become (or stay) the leader of `name` as `leader` for `ttl_seconds` unless set again;
/// blocks while another leads (at most `timeout_seconds`, negative: no limit). Stores the
/// lock index in `*index_out`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_set_leader(
    client: *const etcdrs_client,
    name_ptr: *const c_char,
    name_len: usize,
    leader: *const c_char,
    leader_len: usize,
    ttl_seconds: u64,
    timeout_seconds: i64,
    index_out: *mut u64,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(index_out, "index_out")?;
        // SAFETY: NULL or a client from this library; lengths as given.
        let c = unsafe { handle(client, "client")? };
        let name = unsafe { name(name_ptr, name_len)? };
        let leader = unsafe { text(leader, leader_len, "leader")? };
        let index =
            block(
                c.client
                    .set_leader(name, leader, ttl_seconds, timeout(timeout_seconds)),
            )?;
        // SAFETY: checked non-NULL above.
        unsafe { *index_out = index };
        Ok(())
    })
}

/// The current leader's name of `name`; empty when there is none.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_get_leader(
    client: *const etcdrs_client,
    name_ptr: *const c_char,
    name_len: usize,
    text_out: *mut *mut c_char,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `text_op`.
    unsafe {
        text_op(client, text_out, error_out, |c| {
            block(c.get_leader(name(name_ptr, name_len)?))
        })
    }
}

/// Give up the leadership of `name` held (or waited for) as `leader`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_delete_leader(
    client: *const etcdrs_client,
    name_ptr: *const c_char,
    name_len: usize,
    leader: *const c_char,
    leader_len: usize,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        // SAFETY: NULL or a client from this library; lengths as given.
        let c = unsafe { handle(client, "client")? };
        let name = unsafe { name(name_ptr, name_len)? };
        let leader = unsafe { text(leader, leader_len, "leader")? };
        Ok(block(c.client.delete_leader(name, leader))?)
    })
}
