//! v3 from C: KV (range, put, delete range, txn, compact), leases (grant, revoke, time to
//! live, keep-alive) and watches, through the same `Client::v3()` as the Rust API, in-process
//! or over gRPC. Keys and values are bytes (pointer + length, any content). Every answer is
//! an `etcdrs_v3_response`: its header, key-values and events by accessor, everything else
//! in its JSON (etcd's gateway JSON). A failed call returns etcd's gRPC code with etcd's
//! message (`ETCDRS_GRPC_*`), or a library code for what never reached a member.

use crate::client::{block, etcdrs_client, millis};
use crate::{
    error, etcdrs_error, etcdrs_status, give_string, guard, handle, out_param, raw_bytes, read,
    text, Failure,
};
use bytes::Bytes;
use etcdrs_core::pb::etcdserverpb::{
    compare, request_op, response_op, watch_create_request, CompactionRequest, CompactionResponse,
    Compare, DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest, LeaseGrantResponse,
    LeaseKeepAliveResponse, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
    PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseHeader, TxnRequest,
    TxnResponse, WatchCreateRequest, WatchResponse,
};
use etcdrs_core::pb::mvccpb::{Event, KeyValue};
use etcdrs_core::{Client, ErrorCode, V3Error};
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// etcd's gRPC status codes, as a failed v3 call returns them.
/// The request is wrong (no key, a duplicate key in a txn, too many ops, ...).
pub const ETCDRS_GRPC_INVALID_ARGUMENT: etcdrs_status = 3;
/// No such lease or member.
pub const ETCDRS_GRPC_NOT_FOUND: etcdrs_status = 5;
/// The user's roles do not allow the call (auth enabled).
pub const ETCDRS_GRPC_PERMISSION_DENIED: etcdrs_status = 7;
/// Over the backend quota (NOSPACE alarm).
pub const ETCDRS_GRPC_RESOURCE_EXHAUSTED: etcdrs_status = 8;
/// E.g. a lease ID already granted.
pub const ETCDRS_GRPC_FAILED_PRECONDITION: etcdrs_status = 9;
/// A revision compacted away, or not yet written.
pub const ETCDRS_GRPC_OUT_OF_RANGE: etcdrs_status = 11;
/// No leader, or the member stopped or timed out.
pub const ETCDRS_GRPC_UNAVAILABLE: etcdrs_status = 14;
/// A token the members do not know (auth enabled).
pub const ETCDRS_GRPC_UNAUTHENTICATED: etcdrs_status = 16;

// Compare targets and results for `etcdrs_txn_compare` (etcd's CompareTarget/CompareResult).
pub const ETCDRS_COMPARE_VERSION: u32 = 0;
pub const ETCDRS_COMPARE_CREATE: u32 = 1;
pub const ETCDRS_COMPARE_MOD: u32 = 2;
pub const ETCDRS_COMPARE_VALUE: u32 = 3;
pub const ETCDRS_COMPARE_LEASE: u32 = 4;
pub const ETCDRS_COMPARE_EQUAL: u32 = 0;
pub const ETCDRS_COMPARE_GREATER: u32 = 1;
pub const ETCDRS_COMPARE_LESS: u32 = 2;
pub const ETCDRS_COMPARE_NOT_EQUAL: u32 = 3;

// Event types (etcd's mvccpb.Event.EventType).
pub const ETCDRS_EVENT_PUT: u32 = 0;
pub const ETCDRS_EVENT_DELETE: u32 = 1;

/// Borrowed bytes: `len` bytes at `data` (any content, not NUL-terminated); `data` is NULL
/// when `len` is 0. Valid as long as the object it came from.
#[repr(C)]
pub struct etcdrs_bytes {
    pub data: *const u8,
    pub len: usize,
}

impl etcdrs_bytes {
    fn of(b: &[u8]) -> etcdrs_bytes {
        if b.is_empty() {
            return etcdrs_bytes::none();
        }
        etcdrs_bytes {
            data: b.as_ptr(),
            len: b.len(),
        }
    }

    fn none() -> etcdrs_bytes {
        etcdrs_bytes {
            data: std::ptr::null(),
            len: 0,
        }
    }
}

/// The header of every v3 answer.
#[repr(C)]
pub struct etcdrs_v3_header {
    pub cluster_id: u64,
    pub member_id: u64,
    /// The store's revision when the answer was made.
    pub revision: i64,
    pub raft_term: u64,
}

/// A key-value, borrowed from its response.
#[repr(C)]
pub struct etcdrs_kv {
    pub key: etcdrs_bytes,
    pub value: etcdrs_bytes,
    /// The revision of the key's creation (since its last delete).
    pub create_revision: i64,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// Changes since its creation (1 when created; a delete resets it to 0).
    pub version: i64,
    /// The lease it is attached to, or 0.
    pub lease: i64,
}

impl etcdrs_kv {
    fn of(kv: Option<&KeyValue>) -> etcdrs_kv {
        match kv {
            Some(kv) => etcdrs_kv {
                key: etcdrs_bytes::of(&kv.key),
                value: etcdrs_bytes::of(&kv.value),
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
                version: kv.version,
                lease: kv.lease,
            },
            None => etcdrs_kv {
                key: etcdrs_bytes::none(),
                value: etcdrs_bytes::none(),
                create_revision: 0,
                mod_revision: 0,
                version: 0,
                lease: 0,
            },
        }
    }
}

/// A watch event, borrowed from its response.
#[repr(C)]
pub struct etcdrs_v3_event {
    /// `ETCDRS_EVENT_PUT` or `ETCDRS_EVENT_DELETE`.
    pub event_type: u32,
    /// The key after the change (for a delete: its key and the delete's mod_revision).
    pub kv: etcdrs_kv,
    /// Whether `prev_kv` holds the key before the change (the watch asked for it).
    pub has_prev_kv: bool,
    pub prev_kv: etcdrs_kv,
}

/// A v3 answer. Read-only: any thread may read it; free it once with
/// `etcdrs_v3_response_free` (a txn's sub-responses go with it).
pub struct etcdrs_v3_response {
    header: Option<ResponseHeader>,
    /// Range: the keys found; put: the previous key-value (prev_kv); delete range: the
    /// deleted key-values (prev_kv).
    kvs: Vec<KeyValue>,
    events: Vec<Event>,
    /// A txn's answers to its ops, in order.
    ops: Vec<etcdrs_v3_response>,
    /// Range: count; delete range: deleted.
    count: i64,
    more: bool,
    succeeded: bool,
    canceled: bool,
    /// Lease answers: the lease's ID and TTL (and granted TTL for time to live).
    lease_id: i64,
    ttl: i64,
    granted_ttl: i64,
    /// Watch: the compaction that canceled it.
    compact_revision: i64,
    json: String,
}

impl etcdrs_v3_response {
    fn new<T: serde::Serialize>(header: Option<ResponseHeader>, whole: &T) -> etcdrs_v3_response {
        etcdrs_v3_response {
            header,
            kvs: Vec::new(),
            events: Vec::new(),
            ops: Vec::new(),
            count: 0,
            more: false,
            succeeded: false,
            canceled: false,
            lease_id: 0,
            ttl: 0,
            granted_ttl: 0,
            compact_revision: 0,
            json: serde_json::to_string(whole).unwrap_or_default(),
        }
    }
}

impl From<RangeResponse> for etcdrs_v3_response {
    fn from(r: RangeResponse) -> Self {
        let mut out = etcdrs_v3_response::new(r.header, &r);
        out.count = r.count;
        out.more = r.more;
        out.kvs = r.kvs;
        out
    }
}

impl From<PutResponse> for etcdrs_v3_response {
    fn from(r: PutResponse) -> Self {
        let mut out = etcdrs_v3_response::new(r.header, &r);
        out.kvs = r.prev_kv.into_iter().collect();
        out
    }
}

impl From<DeleteRangeResponse> for etcdrs_v3_response {
    fn from(r: DeleteRangeResponse) -> Self {
        let mut out = etcdrs_v3_response::new(r.header, &r);
        out.count = r.deleted;
        out.kvs = r.prev_kvs;
        out
    }
}

impl From<TxnResponse> for etcdrs_v3_response {
    fn from(r: TxnResponse) -> Self {
        let mut out = etcdrs_v3_response::new(r.header, &r);
        out.succeeded = r.succeeded;
        out.ops = r
            .responses
            .into_iter()
            .filter_map(|op| op.response)
            .map(|op| match op {
                response_op::Response::ResponseRange(r) => r.into(),
                response_op::Response::ResponsePut(r) => r.into(),
                response_op::Response::ResponseDeleteRange(r) => r.into(),
                response_op::Response::ResponseTxn(r) => r.into(),
            })
            .collect();
        out
    }
}

impl From<CompactionResponse> for etcdrs_v3_response {
    fn from(r: CompactionResponse) -> Self {
        etcdrs_v3_response::new(r.header, &r)
    }
}

impl From<LeaseGrantResponse> for etcdrs_v3_response {
    fn from(r: LeaseGrantResponse) -> Self {
        let mut out = etcdrs_v3_response::new(r.header, &r);
        out.lease_id = r.id;
        out.ttl = r.ttl;
        out
    }
}

impl From<LeaseRevokeResponse> for etcdrs_v3_response {
    fn from(r: LeaseRevokeResponse) -> Self {
        etcdrs_v3_response::new(r.header, &r)
    }
}

impl From<LeaseKeepAliveResponse> for etcdrs_v3_response {
    fn from(r: LeaseKeepAliveResponse) -> Self {
        let mut out = etcdrs_v3_response::new(r.header, &r);
        out.lease_id = r.id;
        out.ttl = r.ttl;
        out
    }
}

impl From<LeaseTimeToLiveResponse> for etcdrs_v3_response {
    fn from(r: LeaseTimeToLiveResponse) -> Self {
        let mut out = etcdrs_v3_response::new(r.header, &r);
        out.lease_id = r.id;
        out.ttl = r.ttl;
        out.granted_ttl = r.granted_ttl;
        // The lease's keys, as key-values with only their key.
        out.kvs = r
            .keys
            .into_iter()
            .map(|key| KeyValue {
                key,
                ..Default::default()
            })
            .collect();
        out
    }
}

impl From<WatchResponse> for etcdrs_v3_response {
    fn from(r: WatchResponse) -> Self {
        let mut out = etcdrs_v3_response::new(r.header, &r);
        out.canceled = r.canceled;
        out.compact_revision = r.compact_revision;
        out.events = r.events;
        out
    }
}

/// Bytes given as pointer + length: NULL with a length is an error; NULL with length 0 is
/// empty.
unsafe fn bytes_in(p: *const c_void, len: usize, what: &str) -> Result<Bytes, Failure> {
    if p.is_null() && len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the caller promises `len` readable bytes at `p`.
    Ok(Bytes::copy_from_slice(unsafe { raw_bytes(p, len, what)? }))
}

/// A required key: NULL is an error (an empty key reaches the member, which refuses it).
unsafe fn key_in(p: *const c_void, len: usize) -> Result<Bytes, Failure> {
    if p.is_null() {
        return Err(error(ErrorCode::NullArgument, "key").into());
    }
    // SAFETY: as for `bytes_in`.
    unsafe { bytes_in(p, len, "key") }
}

/// The common shape of a v3 call: check the handle and the out-parameter, run `f` on the
/// client, hand over the answer.
unsafe fn v3_call<T: Into<etcdrs_v3_response>>(
    client: *const etcdrs_client,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
    f: impl FnOnce(&Client) -> Result<T, Failure>,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(response_out, "response_out")?;
        // SAFETY: NULL or a client from this library.
        let c = unsafe { handle(client, "client")? };
        let r = f(&c.client)?;
        // SAFETY: checked non-NULL above.
        unsafe { *response_out = Box::into_raw(Box::new(r.into())) };
        Ok::<(), Failure>(())
    })
}

/// Range options; all zero (or a NULL pointer) is etcd's default: no limit, the latest
/// revision, no sorting, a linearizable read of keys and values.
#[repr(C)]
pub struct etcdrs_range_options {
    /// At most this many keys (0: no limit).
    pub limit: i64,
    /// Read at this revision (0: the latest).
    pub revision: i64,
    /// 0 none, 1 ascending, 2 descending (etcd's SortOrder).
    pub sort_order: u32,
    /// 0 key, 1 version, 2 create, 3 mod, 4 value (etcd's SortTarget).
    pub sort_target: u32,
    /// Read the member's own store, without asking the leader.
    pub serializable: bool,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: i64,
    pub max_mod_revision: i64,
    pub min_create_revision: i64,
    pub max_create_revision: i64,
}

unsafe fn range_request(
    key: Bytes,
    range_end: Bytes,
    options: *const etcdrs_range_options,
) -> RangeRequest {
    let mut r = RangeRequest {
        key,
        range_end,
        ..Default::default()
    };
    // SAFETY: NULL or a readable etcdrs_range_options.
    if let Some(o) = unsafe { options.as_ref() } {
        r.limit = o.limit;
        r.revision = o.revision;
        r.sort_order = o.sort_order as i32;
        r.sort_target = o.sort_target as i32;
        r.serializable = o.serializable;
        r.keys_only = o.keys_only;
        r.count_only = o.count_only;
        r.min_mod_revision = o.min_mod_revision;
        r.max_mod_revision = o.max_mod_revision;
        r.min_create_revision = o.min_create_revision;
        r.max_create_revision = o.max_create_revision;
    }
    r
}

/// Read `key`, or the range [key, range_end) (`range_end` NULL: the key alone; "\0" with
/// key "\0": every key; key + 1 in its last byte: every key with key as prefix).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_range(
    client: *const etcdrs_client,
    key: *const c_void,
    key_len: usize,
    range_end: *const c_void,
    range_end_len: usize,
    options: *const etcdrs_range_options,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `v3_call`, `key_in`, `bytes_in`.
    unsafe {
        v3_call(client, response_out, error_out, |c| {
            let key = key_in(key, key_len)?;
            let end = bytes_in(range_end, range_end_len, "range_end")?;
            Ok(block(c.v3().range(range_request(key, end, options)))?)
        })
    }
}

/// Put options; all zero (or NULL) is a plain put.
#[repr(C)]
pub struct etcdrs_put_options {
    /// Attach the key to this lease (0: none).
    pub lease: i64,
    /// Answer the key-value as it was before.
    pub prev_kv: bool,
    /// Keep the current value (the key must exist).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist).
    pub ignore_lease: bool,
}

unsafe fn put_request(key: Bytes, value: Bytes, options: *const etcdrs_put_options) -> PutRequest {
    let mut r = PutRequest {
        key,
        value,
        ..Default::default()
    };
    // SAFETY: NULL or a readable etcdrs_put_options.
    if let Some(o) = unsafe { options.as_ref() } {
        r.lease = o.lease;
        r.prev_kv = o.prev_kv;
        r.ignore_value = o.ignore_value;
        r.ignore_lease = o.ignore_lease;
    }
    r
}

/// Put `value` (NULL with length 0: empty) under `key`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_put(
    client: *const etcdrs_client,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
    options: *const etcdrs_put_options,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `v3_call`, `key_in`, `bytes_in`.
    unsafe {
        v3_call(client, response_out, error_out, |c| {
            let key = key_in(key, key_len)?;
            let value = bytes_in(value, value_len, "value")?;
            Ok(block(c.v3().put(put_request(key, value, options)))?)
        })
    }
}

/// Delete `key`, or the range [key, range_end); `prev_kv`: answer the deleted key-values.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_delete_range(
    client: *const etcdrs_client,
    key: *const c_void,
    key_len: usize,
    range_end: *const c_void,
    range_end_len: usize,
    prev_kv: bool,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `v3_call`, `key_in`, `bytes_in`.
    unsafe {
        v3_call(client, response_out, error_out, |c| {
            let r = DeleteRangeRequest {
                key: key_in(key, key_len)?,
                range_end: bytes_in(range_end, range_end_len, "range_end")?,
                prev_kv,
            };
            Ok(block(c.v3().delete_range(r))?)
        })
    }
}

/// Any unary v3 call as etcd's gateway JSON: `method` is its gateway path without "/v3/"
/// ("kv/range", "auth/user/add", "auth/enable", "maintenance/status", ...) and `request`
/// the request object; `json_out` gets the response object (free with
/// `etcdrs_string_free`). For calls without a typed function here, such as users and roles.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_call_json(
    client: *const etcdrs_client,
    method: *const c_char,
    method_len: usize,
    request: *const c_char,
    request_len: usize,
    json_out: *mut *mut c_char,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(json_out, "json_out")?;
        // SAFETY: NULL or a client from this library; `*_len` readable bytes at each text.
        let (c, method, request) = unsafe {
            (
                handle(client, "client")?,
                text(method, method_len, "method")?,
                text(request, request_len, "request")?,
            )
        };
        let answer = block(c.client.v3().call_json(method, request))?;
        give_string(answer, json_out)?;
        Ok::<(), Failure>(())
    })
}

/// Compact the history up to `revision`; `physical`: answer once the space is reclaimed.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_compact(
    client: *const etcdrs_client,
    revision: i64,
    physical: bool,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: see `v3_call`.
    unsafe {
        v3_call(client, response_out, error_out, |c| {
            let r = CompactionRequest { revision, physical };
            Ok(block(c.v3().compact(r))?)
        })
    }
}

/// A transaction being built: compares, then the ops to run when all hold (success) or when
/// any fails (failure). Build it from one thread; `etcdrs_client_v3_txn` may send it any
/// number of times. Free with `etcdrs_txn_free`.
pub struct etcdrs_txn {
    txn: Mutex<TxnRequest>,
}

/// A new, empty transaction (never NULL).
#[no_mangle]
pub extern "C" fn etcdrs_txn_new() -> *mut etcdrs_txn {
    read(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(etcdrs_txn {
            txn: Mutex::new(TxnRequest::default()),
        }))
    })
}

/// Free a transaction. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_txn_free(txn: *mut etcdrs_txn) {
    // SAFETY: NULL or a txn from this library, freed once.
    unsafe { crate::free_box(txn) }
}

unsafe fn txn_edit(
    txn: *const etcdrs_txn,
    error_out: *mut *mut etcdrs_error,
    f: impl FnOnce(&mut TxnRequest) -> Result<(), Failure>,
) -> etcdrs_status {
    guard(error_out, || {
        // SAFETY: NULL or a txn from this library.
        let t = unsafe { handle(txn, "txn")? };
        let mut t = t.txn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut t)
    })
}

fn add_op(t: &mut TxnRequest, on_success: bool, op: request_op::Request) {
    let op = RequestOp { request: Some(op) };
    if on_success {
        t.success.push(op);
    } else {
        t.failure.push(op);
    }
}

/// Add a compare of `key` (or of every key in [key, range_end)): its `target`
/// (`ETCDRS_COMPARE_VERSION`, `_CREATE`, `_MOD`, `_VALUE`, `_LEASE`) against `number` (for
/// version, create and mod revisions and lease) or `value` (for value), with `result`
/// (`ETCDRS_COMPARE_EQUAL`, `_GREATER`, `_LESS`, `_NOT_EQUAL`).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_txn_compare(
    txn: *const etcdrs_txn,
    key: *const c_void,
    key_len: usize,
    range_end: *const c_void,
    range_end_len: usize,
    target: u32,
    result: u32,
    number: i64,
    value: *const c_void,
    value_len: usize,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `txn_edit`, `key_in`, `bytes_in`.
    unsafe {
        txn_edit(txn, error_out, |t| {
            use compare::TargetUnion;
            let target_union = match target {
                ETCDRS_COMPARE_VERSION => TargetUnion::Version(number),
                ETCDRS_COMPARE_CREATE => TargetUnion::CreateRevision(number),
                ETCDRS_COMPARE_MOD => TargetUnion::ModRevision(number),
                ETCDRS_COMPARE_VALUE => TargetUnion::Value(bytes_in(value, value_len, "value")?),
                ETCDRS_COMPARE_LEASE => TargetUnion::Lease(number),
                _ => return Err(error(ErrorCode::InvalidArgument, "target").into()),
            };
            if result > ETCDRS_COMPARE_NOT_EQUAL {
                return Err(error(ErrorCode::InvalidArgument, "result").into());
            }
            t.compare.push(Compare {
                result: result as i32,
                target: target as i32,
                key: key_in(key, key_len)?,
                range_end: bytes_in(range_end, range_end_len, "range_end")?,
                target_union: Some(target_union),
            });
            Ok(())
        })
    }
}

/// Add a put to the success ops (`on_success`) or the failure ops.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_txn_put(
    txn: *const etcdrs_txn,
    on_success: bool,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
    options: *const etcdrs_put_options,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `txn_edit`, `key_in`, `bytes_in`.
    unsafe {
        txn_edit(txn, error_out, |t| {
            let key = key_in(key, key_len)?;
            let value = bytes_in(value, value_len, "value")?;
            let put = put_request(key, value, options);
            add_op(t, on_success, request_op::Request::RequestPut(put));
            Ok(())
        })
    }
}

/// Add a delete of `key` (or [key, range_end)) to the success or failure ops.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_txn_delete_range(
    txn: *const etcdrs_txn,
    on_success: bool,
    key: *const c_void,
    key_len: usize,
    range_end: *const c_void,
    range_end_len: usize,
    prev_kv: bool,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `txn_edit`, `key_in`, `bytes_in`.
    unsafe {
        txn_edit(txn, error_out, |t| {
            let d = DeleteRangeRequest {
                key: key_in(key, key_len)?,
                range_end: bytes_in(range_end, range_end_len, "range_end")?,
                prev_kv,
            };
            add_op(t, on_success, request_op::Request::RequestDeleteRange(d));
            Ok(())
        })
    }
}

/// Add a read of `key` (or [key, range_end)) to the success or failure ops.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_txn_range(
    txn: *const etcdrs_txn,
    on_success: bool,
    key: *const c_void,
    key_len: usize,
    range_end: *const c_void,
    range_end_len: usize,
    options: *const etcdrs_range_options,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: forwarded as given; see `txn_edit`, `key_in`, `bytes_in`.
    unsafe {
        txn_edit(txn, error_out, |t| {
            let key = key_in(key, key_len)?;
            let end = bytes_in(range_end, range_end_len, "range_end")?;
            let r = range_request(key, end, options);
            add_op(t, on_success, request_op::Request::RequestRange(r));
            Ok(())
        })
    }
}

/// Run a transaction: the answer says whether the compares held
/// (`etcdrs_v3_response_succeeded`) and has one sub-response per op that ran
/// (`etcdrs_v3_response_op`).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_txn(
    client: *const etcdrs_client,
    txn: *const etcdrs_txn,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: see `v3_call`; NULL or a txn from this library.
    unsafe {
        v3_call(client, response_out, error_out, |c| {
            let t = handle(txn, "txn")?;
            let request = t.txn.lock().unwrap_or_else(|p| p.into_inner()).clone();
            Ok(block(c.v3().txn(request))?)
        })
    }
}

/// Grant a lease of `ttl` seconds (at least etcd's minimum); `id` 0 lets the member choose
/// its ID (`etcdrs_v3_response_lease_id`).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_lease_grant(
    client: *const etcdrs_client,
    ttl: i64,
    id: i64,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: see `v3_call`.
    unsafe {
        v3_call(client, response_out, error_out, |c| {
            Ok(block(c.v3().lease_grant(LeaseGrantRequest { ttl, id }))?)
        })
    }
}

/// Revoke a lease: every key attached to it is deleted.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_lease_revoke(
    client: *const etcdrs_client,
    id: i64,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: see `v3_call`.
    unsafe {
        v3_call(client, response_out, error_out, |c| {
            Ok(block(c.v3().lease_revoke(id))?)
        })
    }
}

/// A lease's remaining TTL (-1 when it is gone) and granted TTL; `keys`: its keys too, as
/// key-values with only their key.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_lease_time_to_live(
    client: *const etcdrs_client,
    id: i64,
    keys: bool,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: see `v3_call`.
    unsafe {
        v3_call(client, response_out, error_out, |c| {
            let r = LeaseTimeToLiveRequest { id, keys };
            Ok(block(c.v3().lease_time_to_live(r))?)
        })
    }
}

/// Renew a lease once: the answer's TTL is its new time to live, 0 when it is gone.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_lease_keep_alive_once(
    client: *const etcdrs_client,
    id: i64,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    // SAFETY: see `v3_call`.
    unsafe {
        v3_call(client, response_out, error_out, |c| {
            Ok(block(c.v3().lease_keep_alive(id))?)
        })
    }
}

/// A lease kept alive in the background (renewed at a third of its TTL, as etcd's clients
/// do) until `etcdrs_lease_keeper_free`. Any thread may read it.
pub struct etcdrs_lease_keeper {
    ttl: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

/// Keep lease `id` alive until the keeper is freed. The first renewal happens before this
/// returns: a lease that is gone is `ETCDRS_GRPC_NOT_FOUND`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_lease_keep_alive(
    client: *const etcdrs_client,
    id: i64,
    keeper_out: *mut *mut etcdrs_lease_keeper,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(keeper_out, "keeper_out")?;
        // SAFETY: NULL or a client from this library.
        let c = unsafe { handle(client, "client")? };
        let first = block(c.client.v3().lease_keep_alive(id))?;
        if first.ttl <= 0 {
            return Err(Failure::V3(V3Error::LeaseNotFound));
        }
        let ttl = Arc::new(AtomicI64::new(first.ttl));
        let (client, seen) = (c.client.clone(), ttl.clone());
        let task = etcdrs_core::blocking::runtime().spawn(async move {
            let mut every = renew_every(first.ttl);
            loop {
                tokio::time::sleep(every).await;
                match client.v3().lease_keep_alive(id).await {
                    Ok(r) => {
                        seen.store(r.ttl.max(0), Ordering::Relaxed);
                        if r.ttl <= 0 {
                            return;
                        }
                        every = renew_every(r.ttl);
                    }
                    // The member may be away for a moment: try again soon.
                    Err(_) => every = Duration::from_millis(500),
                }
            }
        });
        let keeper = etcdrs_lease_keeper { ttl, task };
        // SAFETY: checked non-NULL above.
        unsafe { *keeper_out = Box::into_raw(Box::new(keeper)) };
        Ok(())
    })
}

fn renew_every(ttl: i64) -> Duration {
    Duration::from_millis((ttl.max(1) as u64 * 1000 / 3).max(100))
}

/// The TTL the last renewal granted; 0 once the lease is gone (revoked or expired).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_lease_keeper_ttl(keeper: *const etcdrs_lease_keeper) -> i64 {
    // SAFETY: NULL or a keeper from this library.
    read(0, || {
        unsafe { keeper.as_ref() }.map_or(0, |k| k.ttl.load(Ordering::Relaxed))
    })
}

/// Stop renewing and free the keeper (the lease then lives out its TTL). NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_lease_keeper_free(keeper: *mut etcdrs_lease_keeper) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: NULL or a keeper from this library.
        if let Some(k) = unsafe { keeper.as_ref() } {
            k.task.abort();
        }
    });
    // SAFETY: NULL or a keeper from this library, freed once.
    unsafe { crate::free_box(keeper) }
}

/// Watch options; all zero (or NULL): changes from now on, without previous key-values.
#[repr(C)]
pub struct etcdrs_v3_watch_options {
    /// Replay the history from this revision (0: from now on).
    pub start_revision: i64,
    /// Events carry the key-value before the change.
    pub prev_kv: bool,
    /// Empty answers now and then say up to which revision the watch has seen.
    pub progress_notify: bool,
    /// Leave out puts.
    pub no_put: bool,
    /// Leave out deletes.
    pub no_delete: bool,
}

/// A v3 watch, polled by the caller (no callbacks from library threads).
/// `etcdrs_v3_watch_next` is called by one thread at a time; `etcdrs_v3_watch_cancel` may
/// be called from any thread at any time. Free with `etcdrs_v3_watch_free` once no call is
/// running.
pub struct etcdrs_v3_watch {
    watch: tokio::sync::Mutex<Option<etcdrs_core::V3Watch>>,
    cancelled: AtomicBool,
    wake: tokio::sync::Notify,
}

/// How long the watch's creation may take before it counts as failed.
const WATCH_CREATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Watch `key`, or [key, range_end). The watcher exists on the member when this returns:
/// from then on (or from `start_revision`) no change is missed between calls to
/// `etcdrs_v3_watch_next`, however long the caller takes.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_v3_watch(
    client: *const etcdrs_client,
    key: *const c_void,
    key_len: usize,
    range_end: *const c_void,
    range_end_len: usize,
    options: *const etcdrs_v3_watch_options,
    watch_out: *mut *mut etcdrs_v3_watch,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(watch_out, "watch_out")?;
        // SAFETY: NULL or a client from this library; the bytes as `key_in`, `bytes_in`.
        let c = unsafe { handle(client, "client")? };
        let mut create = WatchCreateRequest {
            key: unsafe { key_in(key, key_len)? },
            range_end: unsafe { bytes_in(range_end, range_end_len, "range_end")? },
            ..Default::default()
        };
        // SAFETY: NULL or a readable etcdrs_v3_watch_options.
        if let Some(o) = unsafe { options.as_ref() } {
            create.start_revision = o.start_revision;
            create.prev_kv = o.prev_kv;
            create.progress_notify = o.progress_notify;
            if o.no_put {
                create
                    .filters
                    .push(watch_create_request::FilterType::Noput as i32);
            }
            if o.no_delete {
                create
                    .filters
                    .push(watch_create_request::FilterType::Nodelete as i32);
            }
        }
        let watch = block(async {
            let created = async {
                let mut w = c.client.v3().watch(create).await?;
                // The first answer says the watcher exists.
                match w.next().await? {
                    Some(r) if r.created => Ok(w),
                    _ => Err(V3Error::Internal("the watch was not created".into())),
                }
            };
            match tokio::time::timeout(WATCH_CREATE_TIMEOUT, created).await {
                Ok(r) => r.map_err(Failure::V3),
                Err(_) => Err(Failure::V2(error(
                    ErrorCode::Timeout,
                    "the member did not confirm the watch",
                ))),
            }
        })?;
        let w = etcdrs_v3_watch {
            watch: tokio::sync::Mutex::new(Some(watch)),
            cancelled: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        };
        // SAFETY: checked non-NULL above.
        unsafe { *watch_out = Box::into_raw(Box::new(w)) };
        Ok(())
    })
}

/// The next answer (events, a progress notification, or a cancel with the compaction that
/// caused it), waiting at most `timeout_ms` (0: no limit). Returns `ETCDRS_OK` with a
/// response, `ETCDRS_CODE_TIMEOUT` when nothing came in time (call again: nothing is lost),
/// or `ETCDRS_CODE_CANCELLED` once the watch is cancelled or has ended.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_watch_next(
    watch: *const etcdrs_v3_watch,
    timeout_ms: u64,
    response_out: *mut *mut etcdrs_v3_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(response_out, "response_out")?;
        // SAFETY: NULL or a watch from this library.
        let w = unsafe { handle(watch, "watch")? };
        let cancelled = || error(ErrorCode::Cancelled, "the watch was cancelled");
        let next = async {
            let mut slot = w.watch.lock().await;
            if w.cancelled.load(Ordering::Acquire) {
                *slot = None;
            }
            let Some(stream) = slot.as_mut() else {
                return Err(Failure::V2(cancelled()));
            };
            tokio::select! {
                r = stream.next() => match r {
                    // A cancel (a compacted start revision) is the watch's last answer.
                    Ok(Some(r)) if r.canceled => {
                        *slot = None;
                        Ok(r)
                    }
                    Ok(Some(r)) => Ok(r),
                    Ok(None) => {
                        *slot = None;
                        Err(Failure::V2(error(ErrorCode::Cancelled, "the watch has ended")))
                    }
                    Err(e) => Err(Failure::V3(e)),
                },
                _ = w.wake.notified() => {
                    // Cancelled: the watcher goes now.
                    *slot = None;
                    Err(Failure::V2(cancelled()))
                }
            }
        };
        let answer = block(async {
            match millis(timeout_ms) {
                Some(t) => tokio::time::timeout(t, next).await.unwrap_or_else(|_| {
                    Err(Failure::V2(error(
                        ErrorCode::Timeout,
                        format!("no change within {t:?}"),
                    )))
                }),
                None => next.await,
            }
        })?;
        // SAFETY: checked non-NULL above.
        unsafe { *response_out = Box::into_raw(Box::new(answer.into())) };
        Ok(())
    })
}

/// Cancel the watch: a waiting `etcdrs_v3_watch_next` returns `ETCDRS_CODE_CANCELLED` at
/// once, and so does every later one. Any thread; NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_watch_cancel(watch: *const etcdrs_v3_watch) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: NULL or a watch from this library.
        if let Some(w) = unsafe { watch.as_ref() } {
            w.cancelled.store(true, Ordering::Release);
            // A permit for a waiting (or the next) call.
            w.wake.notify_one();
        }
    }));
}

/// Free a watch (its watcher goes with it). NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_watch_free(watch: *mut etcdrs_v3_watch) {
    // SAFETY: NULL or a watch from this library, freed once, no call running on it. The
    // watcher's stream is dropped inside the runtime it belongs to.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if !watch.is_null() {
            let w = unsafe { Box::from_raw(watch) };
            let _entered = etcdrs_core::blocking::runtime().enter();
            drop(w);
        }
    }));
}

unsafe fn v3_response<'a>(r: *const etcdrs_v3_response) -> Option<&'a etcdrs_v3_response> {
    // SAFETY: NULL or a response from this library that has not been freed.
    unsafe { r.as_ref() }
}

/// The answer's header (all zero when it has none, as a txn's sub-responses may not).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_header(
    r: *const etcdrs_v3_response,
) -> etcdrs_v3_header {
    let zero = || etcdrs_v3_header {
        cluster_id: 0,
        member_id: 0,
        revision: 0,
        raft_term: 0,
    };
    // SAFETY: see `v3_response`.
    read(zero(), || {
        match unsafe { v3_response(r) }.and_then(|r| r.header.as_ref()) {
            Some(h) => etcdrs_v3_header {
                cluster_id: h.cluster_id,
                member_id: h.member_id,
                revision: h.revision,
                raft_term: h.raft_term,
            },
            None => zero(),
        }
    })
}

/// The answer as etcd's gateway JSON (bytes in base64, 64-bit numbers as strings).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_json(
    r: *const etcdrs_v3_response,
) -> crate::etcdrs_str {
    // SAFETY: see `v3_response`.
    read(crate::etcdrs_str::none(), || {
        match unsafe { v3_response(r) } {
            Some(r) => crate::etcdrs_str::of(&r.json),
            None => crate::etcdrs_str::none(),
        }
    })
}

/// How many key-values the answer holds: a range's keys, a put's previous key-value
/// (prev_kv), a delete's deleted ones (prev_kv), a lease's keys.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_kv_count(r: *const etcdrs_v3_response) -> usize {
    // SAFETY: see `v3_response`.
    read(0, || unsafe { v3_response(r) }.map_or(0, |r| r.kvs.len()))
}

/// Key-value `i` (0-based; all zero past the end).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_kv(
    r: *const etcdrs_v3_response,
    i: usize,
) -> etcdrs_kv {
    // SAFETY: see `v3_response`.
    read(etcdrs_kv::of(None), || {
        etcdrs_kv::of(unsafe { v3_response(r) }.and_then(|r| r.kvs.get(i)))
    })
}

/// How many events a watch answer holds.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_event_count(r: *const etcdrs_v3_response) -> usize {
    // SAFETY: see `v3_response`.
    read(0, || {
        unsafe { v3_response(r) }.map_or(0, |r| r.events.len())
    })
}

/// Event `i` of a watch answer (0-based; all zero past the end).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_event(
    r: *const etcdrs_v3_response,
    i: usize,
) -> etcdrs_v3_event {
    let of = |e: Option<&Event>| etcdrs_v3_event {
        event_type: e.map_or(0, |e| e.r#type as u32),
        kv: etcdrs_kv::of(e.and_then(|e| e.kv.as_ref())),
        has_prev_kv: e.is_some_and(|e| e.prev_kv.is_some()),
        prev_kv: etcdrs_kv::of(e.and_then(|e| e.prev_kv.as_ref())),
    };
    // SAFETY: see `v3_response`.
    read(of(None), || {
        of(unsafe { v3_response(r) }.and_then(|r| r.events.get(i)))
    })
}

/// A range's count of keys in the range (whatever the limit), or a delete's count of keys
/// deleted.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_count(r: *const etcdrs_v3_response) -> i64 {
    // SAFETY: see `v3_response`.
    read(0, || unsafe { v3_response(r) }.map_or(0, |r| r.count))
}

/// A range's "more": keys past the limit remain.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_more(r: *const etcdrs_v3_response) -> bool {
    // SAFETY: see `v3_response`.
    read(false, || unsafe { v3_response(r) }.is_some_and(|r| r.more))
}

/// A txn's "succeeded": its compares held and its success ops ran.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_succeeded(r: *const etcdrs_v3_response) -> bool {
    // SAFETY: see `v3_response`.
    read(false, || {
        unsafe { v3_response(r) }.is_some_and(|r| r.succeeded)
    })
}

/// A watch answer that ends the watch (a compacted start revision, or the member's cancel).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_canceled(r: *const etcdrs_v3_response) -> bool {
    // SAFETY: see `v3_response`.
    read(false, || {
        unsafe { v3_response(r) }.is_some_and(|r| r.canceled)
    })
}

/// How many ops of a txn ran (one sub-response each).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_op_count(r: *const etcdrs_v3_response) -> usize {
    // SAFETY: see `v3_response`.
    read(0, || unsafe { v3_response(r) }.map_or(0, |r| r.ops.len()))
}

/// A txn's sub-response `i` (a range, put, delete range or txn answer), borrowed from it;
/// NULL past the end.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_op(
    r: *const etcdrs_v3_response,
    i: usize,
) -> *const etcdrs_v3_response {
    // SAFETY: see `v3_response`.
    read(std::ptr::null(), || {
        match unsafe { v3_response(r) }.and_then(|r| r.ops.get(i)) {
            Some(op) => op as *const etcdrs_v3_response,
            None => std::ptr::null(),
        }
    })
}

/// A lease answer's lease ID.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_lease_id(r: *const etcdrs_v3_response) -> i64 {
    // SAFETY: see `v3_response`.
    read(0, || unsafe { v3_response(r) }.map_or(0, |r| r.lease_id))
}

/// A lease answer's TTL in seconds: granted, renewed, or remaining (-1 or 0 when the lease
/// is gone).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_ttl(r: *const etcdrs_v3_response) -> i64 {
    // SAFETY: see `v3_response`.
    read(0, || unsafe { v3_response(r) }.map_or(0, |r| r.ttl))
}

/// A time-to-live answer's granted TTL.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_granted_ttl(r: *const etcdrs_v3_response) -> i64 {
    // SAFETY: see `v3_response`.
    read(0, || unsafe { v3_response(r) }.map_or(0, |r| r.granted_ttl))
}

/// A watch answer that ended the watch because its start revision was compacted: the
/// oldest revision it could have started from (0 otherwise).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_compact_revision(r: *const etcdrs_v3_response) -> i64 {
    // SAFETY: see `v3_response`.
    read(0, || {
        unsafe { v3_response(r) }.map_or(0, |r| r.compact_revision)
    })
}

/// Free a v3 answer. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_v3_response_free(r: *mut etcdrs_v3_response) {
    // SAFETY: NULL or a response from this library, freed once (never a sub-response).
    unsafe { crate::free_box(r) }
}
