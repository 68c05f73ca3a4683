//! Answers of the keys API: the event (action, node, previous node), the indices etcd sends
//! as headers, and the answer as etcd's exact v2 JSON.

use crate::{etcdrs_str, read};
use etcdrs_core::{KeyResponse, NodeExtern};

/// An answer of the keys API. Read-only: any thread may read it; free it once with
/// `etcdrs_response_free`, which also ends every `etcdrs_key_node` taken from it.
pub struct etcdrs_response {
    response: KeyResponse,
    json: String,
}

/// A node of a response (a key or a directory), borrowed from its response. Only ever
/// handed out as a pointer to the response's own node.
pub struct etcdrs_key_node {
    _opaque: [u8; 0],
}

impl etcdrs_key_node {
    fn of(n: &NodeExtern) -> *const etcdrs_key_node {
        (n as *const NodeExtern).cast()
    }
}

pub(crate) fn new_response(response: KeyResponse) -> *mut etcdrs_response {
    let json = response.event.to_json();
    Box::into_raw(Box::new(etcdrs_response { response, json }))
}

unsafe fn response<'a>(r: *const etcdrs_response) -> Option<&'a KeyResponse> {
    // SAFETY: NULL or a response from this library that has not been freed.
    unsafe { r.as_ref() }.map(|r| &r.response)
}

unsafe fn key_node<'a>(n: *const etcdrs_key_node) -> Option<&'a NodeExtern> {
    // SAFETY: NULL or a pointer made by `etcdrs_key_node::of` from a live response's node.
    unsafe { n.cast::<NodeExtern>().as_ref() }
}

/// The action: "get", "set", "create", "update", "delete", "compareAndSwap",
/// "compareAndDelete" or "expire".
#[no_mangle]
pub unsafe extern "C" fn etcdrs_response_action(r: *const etcdrs_response) -> etcdrs_str {
    // SAFETY: see `response`.
    read(etcdrs_str::none(), || match unsafe { response(r) } {
        Some(r) => etcdrs_str::of(r.event.action.as_str()),
        None => etcdrs_str::none(),
    })
}

/// The node the answer is about (never NULL for a non-NULL response).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_response_node(r: *const etcdrs_response) -> *const etcdrs_key_node {
    // SAFETY: see `response`.
    read(std::ptr::null(), || match unsafe { response(r) } {
        Some(r) => etcdrs_key_node::of(&r.event.node),
        None => std::ptr::null(),
    })
}

/// The node as it was before the change (set, update, delete, ...); NULL when there is none.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_response_prev_node(
    r: *const etcdrs_response,
) -> *const etcdrs_key_node {
    // SAFETY: see `response`.
    read(std::ptr::null(), || {
        match unsafe { response(r) }.and_then(|r| r.event.prev_node.as_ref()) {
            Some(n) => etcdrs_key_node::of(n),
            None => std::ptr::null(),
        }
    })
}

/// X-Etcd-Index: the store's index when the answer was made.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_response_etcd_index(r: *const etcdrs_response) -> u64 {
    // SAFETY: see `response`.
    read(0, || unsafe { response(r) }.map_or(0, |r| r.etcd_index))
}

/// X-Raft-Index: the raft commit index.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_response_raft_index(r: *const etcdrs_response) -> u64 {
    // SAFETY: see `response`.
    read(0, || unsafe { response(r) }.map_or(0, |r| r.raft_index))
}

/// X-Raft-Term: the raft term.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_response_raft_term(r: *const etcdrs_response) -> u64 {
    // SAFETY: see `response`.
    read(0, || unsafe { response(r) }.map_or(0, |r| r.raft_term))
}

/// The answer as etcd's v2 JSON body, byte for byte (without the trailing newline).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_response_json(r: *const etcdrs_response) -> etcdrs_str {
    // SAFETY: NULL or a live response from this library.
    read(etcdrs_str::none(), || match unsafe { r.as_ref() } {
        Some(r) => etcdrs_str::of(&r.json),
        None => etcdrs_str::none(),
    })
}

/// Free a response and every node taken from it. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_response_free(r: *mut etcdrs_response) {
    // SAFETY: NULL or a response from this library, freed once.
    unsafe { crate::free_box(r) }
}

/// The node's key, e.g. "/foo/bar" ("/" for the root).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_key_node_key(n: *const etcdrs_key_node) -> etcdrs_str {
    // SAFETY: see `key_node`.
    read(etcdrs_str::none(), || match unsafe { key_node(n) } {
        Some(n) => etcdrs_str::of(&n.key),
        None => etcdrs_str::none(),
    })
}

/// The node's value; `data` is NULL when it has none (a directory, or a deleted key).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_key_node_value(n: *const etcdrs_key_node) -> etcdrs_str {
    // SAFETY: see `key_node`.
    read(etcdrs_str::none(), || {
        match unsafe { key_node(n) }.and_then(|n| n.value.as_deref()) {
            Some(v) => etcdrs_str::of(v),
            None => etcdrs_str::none(),
        }
    })
}

/// Whether the node is a directory.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_key_node_is_dir(n: *const etcdrs_key_node) -> bool {
    // SAFETY: see `key_node`.
    read(false, || unsafe { key_node(n) }.is_some_and(|n| n.dir))
}

/// Seconds left to live; 0 when the node has no TTL.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_key_node_ttl(n: *const etcdrs_key_node) -> i64 {
    // SAFETY: see `key_node`.
    read(0, || unsafe { key_node(n) }.map_or(0, |n| n.ttl))
}

/// Whether the node expires; if so and `unix_nanos_out` is not NULL, when (nanoseconds since
/// the Unix epoch; the JSON shows it as RFC 3339).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_key_node_expiration(
    n: *const etcdrs_key_node,
    unix_nanos_out: *mut i64,
) -> bool {
    read(false, || {
        // SAFETY: see `key_node`.
        match unsafe { key_node(n) }.and_then(|n| n.expiration) {
            Some(t) => {
                if !unix_nanos_out.is_null() {
                    // SAFETY: NULL or writable, as documented.
                    unsafe { *unix_nanos_out = t };
                }
                true
            }
            None => false,
        }
    })
}

/// The index of the change that created the node.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_key_node_created_index(n: *const etcdrs_key_node) -> u64 {
    // SAFETY: see `key_node`.
    read(0, || unsafe { key_node(n) }.map_or(0, |n| n.created_index))
}

/// The index of the node's last change.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_key_node_modified_index(n: *const etcdrs_key_node) -> u64 {
    // SAFETY: see `key_node`.
    read(0, || unsafe { key_node(n) }.map_or(0, |n| n.modified_index))
}

/// How many children a directory node has in this answer (all levels below come with a
/// recursive get).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_key_node_children_count(n: *const etcdrs_key_node) -> usize {
    // SAFETY: see `key_node`.
    read(0, || unsafe { key_node(n) }.map_or(0, |n| n.nodes.len()))
}

/// Child `i` (from 0) of a directory node; NULL when out of range. Borrowed from the same
/// response.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_key_node_child(
    n: *const etcdrs_key_node,
    i: usize,
) -> *const etcdrs_key_node {
    // SAFETY: see `key_node`.
    read(std::ptr::null(), || {
        match unsafe { key_node(n) }.and_then(|n| n.nodes.get(i)) {
            Some(c) => etcdrs_key_node::of(c),
            None => std::ptr::null(),
        }
    })
}
