//! libetcdrs: the C ABI of etcdrs. C programs, the Julia package and anything else that
//! speaks C start members in their own process (`etcdrs_node`) and talk to clusters
//! (`etcdrs_client`, over HTTP or to an in-process member) through it. The header
//! include/etcdrs.h is generated from this crate by cbindgen.
//!
//! Conventions (the header's preamble says the same to C users):
//! - Every fallible function returns an `etcdrs_status`: 0 (`ETCDRS_OK`) on success, else an
//!   `etcdrs_code`: etcd's errorCode (100, 101, 105, ...), a library code from 1000 up, or
//!   for a v3 call etcd's gRPC status code (1 to 16) with etcd's message.
//! - Its last parameter is `etcdrs_error **error_out`: NULL, or where a failure stores a new
//!   error object (code, message, cause, index) that the caller frees with
//!   `etcdrs_error_free`. Other out-parameters are written only on success.
//! - Strings and keys go in as pointer + length and must be UTF-8; NULL (where not
//!   documented as optional) and invalid UTF-8 are errors, never crashes.
//! - No panic crosses the ABI: every export runs behind one panic boundary.
//! - One free function per type; every `_free(NULL)` does nothing.

#![allow(non_camel_case_types)]
// Each export's safety contract is its doc comment, which the header carries.
#![allow(clippy::missing_safety_doc)]

mod client;
mod node;
mod response;
mod v3;
mod watch;

pub use client::*;
pub use node::*;
pub use response::*;
pub use v3::*;
pub use watch::*;

use etcdrs_core::{Error, ErrorCode, V3Error};
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What every fallible function returns: `ETCDRS_OK` or an `etcdrs_code`.
pub type etcdrs_status = u32;

/// Success.
pub const ETCDRS_OK: etcdrs_status = 0;

/// A `ttl` argument meaning "no TTL": the key never expires.
pub const ETCDRS_NO_TTL: i64 = -1;

/// Borrowed text: `len` bytes of UTF-8 at `data`, not NUL-terminated. `data` is NULL (and
/// `len` 0) when there is no text, e.g. the value of a directory. Valid as long as the
/// object it came from.
#[repr(C)]
pub struct etcdrs_str {
    pub data: *const c_char,
    pub len: usize,
}

impl etcdrs_str {
    pub(crate) fn of(s: &str) -> etcdrs_str {
        etcdrs_str {
            data: s.as_ptr().cast(),
            len: s.len(),
        }
    }

    pub(crate) fn none() -> etcdrs_str {
        etcdrs_str {
            data: std::ptr::null(),
            len: 0,
        }
    }
}

/// An error: etcd's errorCode (or a library code), message, cause and index; or a v3 call's
/// gRPC code and etcd's message. Read it from any thread; free it once with
/// `etcdrs_error_free`.
pub struct etcdrs_error {
    failure: Failure,
    message: String,
    json: String,
}

/// What failed: a v2 or library error, or a v3 call.
pub(crate) enum Failure {
    V2(Error),
    V3(V3Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::V2(e)
    }
}

impl From<V3Error> for Failure {
    fn from(e: V3Error) -> Failure {
        Failure::V3(e)
    }
}

impl Failure {
    fn code(&self) -> etcdrs_status {
        match self {
            Failure::V2(e) => e.code(),
            Failure::V3(e) => e.grpc_code() as etcdrs_status,
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::V2(e) => e.message().to_string(),
            Failure::V3(e) => e.message().into_owned(),
        }
    }

    /// etcd's JSON for it: the v2 error object, or the gateway's `{"error","message","code"}`.
    fn to_json(&self) -> String {
        match self {
            Failure::V2(e) => e.to_json(),
            Failure::V3(e) => serde_json::json!({
                "error": e.message(),
                "message": e.message(),
                "code": e.grpc_code(),
            })
            .to_string(),
        }
    }
}

pub(crate) fn error(code: ErrorCode, cause: impl Into<String>) -> Error {
    Error::new(code, cause, 0)
}

/// The panic boundary: run `f`, turn an error or a panic into a status and (when the caller
/// asked for it) an error object.
pub(crate) fn guard(
    error_out: *mut *mut etcdrs_error,
    f: impl FnOnce() -> Result<(), Failure>,
) -> etcdrs_status {
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = etcdrs_core::panic_message(panic.as_ref());
        Err(Failure::V2(error(
            ErrorCode::Panic,
            format!("panic in libetcdrs: {what}"),
        )))
    });
    match result {
        Ok(()) => ETCDRS_OK,
        Err(failure) => {
            let code = failure.code();
            if !error_out.is_null() {
                let e = etcdrs_error {
                    message: failure.message(),
                    json: failure.to_json(),
                    failure,
                };
                // SAFETY: the caller passes NULL or a writable etcdrs_error pointer.
                unsafe { *error_out = Box::into_raw(Box::new(e)) };
            }
            code
        }
    }
}

/// A value-returning accessor behind the panic boundary (a panic answers `default`).
pub(crate) fn read<T>(default: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(default)
}

/// Check that an out-parameter can be written, before anything happens.
pub(crate) fn out_param<T>(p: *mut T, what: &str) -> Result<(), Error> {
    if p.is_null() {
        return Err(error(ErrorCode::NullArgument, what));
    }
    Ok(())
}

/// Borrow a handle; NULL is an error naming it.
pub(crate) unsafe fn handle<'a, T>(p: *const T, what: &str) -> Result<&'a T, Error> {
    // SAFETY: non-NULL handles come from this library and live until freed.
    unsafe { p.as_ref() }.ok_or_else(|| error(ErrorCode::NullArgument, what))
}

/// Required text given as pointer + length.
pub(crate) unsafe fn text<'a>(p: *const c_char, len: usize, what: &str) -> Result<&'a str, Error> {
    // SAFETY: forwarded as given.
    let bytes = unsafe { raw_bytes(p.cast(), len, what)? };
    std::str::from_utf8(bytes).map_err(|_| error(ErrorCode::InvalidUtf8, what))
}

/// `len` bytes at `p`: NULL is an error, and so is a length no buffer can have (more than
/// isize::MAX: a negative number passed as a size), which would be undefined behaviour to
/// read.
pub(crate) unsafe fn raw_bytes<'a>(
    p: *const std::ffi::c_void,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Error> {
    if p.is_null() {
        return Err(error(ErrorCode::NullArgument, what));
    }
    if len > isize::MAX as usize {
        return Err(error(
            ErrorCode::InvalidArgument,
            format!("{what}: a length of {len} bytes"),
        ));
    }
    // SAFETY: the caller promises `len` readable bytes at `p`; `len` fits a slice.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// Optional text: NULL is None.
pub(crate) unsafe fn opt_text<'a>(
    p: *const c_char,
    len: usize,
    what: &str,
) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: as for `text`.
    unsafe { text(p, len, what) }.map(Some)
}

/// A TTL argument: `ETCDRS_NO_TTL` (any negative number) for none.
pub(crate) fn ttl(ttl: i64) -> Option<u64> {
    u64::try_from(ttl).ok()
}

/// Hand an owned, NUL-terminated string to the caller (freed with `etcdrs_string_free`).
pub(crate) fn give_string(s: String, out: *mut *mut c_char) -> Result<(), Error> {
    let c = CString::new(s).map_err(|_| {
        error(
            ErrorCode::InvalidArgument,
            "the text contains a NUL byte; read it with etcdrs_client_get",
        )
    })?;
    // SAFETY: `out` was checked with `out_param` by the caller.
    unsafe { *out = c.into_raw() };
    Ok(())
}

/// Drop an object the library handed out as `Box::into_raw` (the `_free` functions). NULL
/// does nothing; a panic in a destructor stays on this side.
pub(crate) unsafe fn free_box<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: `p` came from Box::into_raw in this library and is freed once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(p) })));
    }
}

/// Free a string the library returned (`char **` out-parameters). NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from CString::into_raw in this library and is freed once.
        let _ = catch_unwind(|| drop(unsafe { CString::from_raw(s) }));
    }
}

/// The library's version, e.g. "0.1.0" (static, NUL-terminated; do not free).
#[no_mangle]
pub extern "C" fn etcdrs_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The fixed message of a status code (etcd's text for etcd codes); empty for an unknown
/// code and for `ETCDRS_OK`. Static: do not free.
#[no_mangle]
pub extern "C" fn etcdrs_code_message(code: etcdrs_status) -> etcdrs_str {
    read(etcdrs_str::none(), || match ErrorCode::from_code(code) {
        Some(c) => etcdrs_str::of(c.message()),
        None => etcdrs_str::of(""),
    })
}

/// The error's code: etcd's errorCode, a library code, or a v3 call's gRPC code (0 for
/// NULL).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_error_code(e: *const etcdrs_error) -> etcdrs_status {
    // SAFETY: NULL or an error from this library.
    read(0, || unsafe { e.as_ref() }.map_or(0, |e| e.failure.code()))
}

/// The error's message: etcd's fixed text for its code ("Key not found", ...), or for a v3
/// call etcd's message ("etcdserver: mvcc: required revision has been compacted", ...).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_error_message(e: *const etcdrs_error) -> etcdrs_str {
    // SAFETY: NULL or an error from this library.
    read(etcdrs_str::none(), || match unsafe { e.as_ref() } {
        Some(e) => etcdrs_str::of(&e.message),
        None => etcdrs_str::none(),
    })
}

/// The error's cause: what it is about (a key, an argument's name, ...), possibly empty
/// (always for a v3 call's error: its message says it all).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_error_cause(e: *const etcdrs_error) -> etcdrs_str {
    // SAFETY: NULL or an error from this library.
    read(etcdrs_str::none(), || {
        match unsafe { e.as_ref() }.map(|e| &e.failure) {
            Some(Failure::V2(e)) => etcdrs_str::of(&e.cause),
            Some(Failure::V3(_)) => etcdrs_str::of(""),
            None => etcdrs_str::none(),
        }
    })
}

/// The etcd index at the time of the error (0 when not from the v2 store).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_error_index(e: *const etcdrs_error) -> u64 {
    // SAFETY: NULL or an error from this library.
    read(0, || match unsafe { e.as_ref() }.map(|e| &e.failure) {
        Some(Failure::V2(e)) => e.index,
        _ => 0,
    })
}

/// The error as etcd's JSON: `{"errorCode":..,"message":..,"cause":..,"index":..}`, or for a
/// v3 call the gateway's `{"error":..,"message":..,"code":..}`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_error_json(e: *const etcdrs_error) -> etcdrs_str {
    // SAFETY: NULL or an error from this library.
    read(etcdrs_str::none(), || match unsafe { e.as_ref() } {
        Some(e) => etcdrs_str::of(&e.json),
        None => etcdrs_str::none(),
    })
}

/// Free an error. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_error_free(e: *mut etcdrs_error) {
    // SAFETY: NULL or an error from this library, freed once.
    unsafe { free_box(e) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_an_error_object() {
        let mut err: *mut etcdrs_error = std::ptr::null_mut();
        let status = guard(&mut err, || panic!("boom"));
        assert_eq!(status, ErrorCode::Panic as u32);
        // SAFETY: the guard stored a live error object.
        unsafe {
            assert_eq!(etcdrs_error_code(err), status);
            let cause = etcdrs_error_cause(err);
            let cause = std::slice::from_raw_parts(cause.data.cast::<u8>(), cause.len);
            assert!(std::str::from_utf8(cause).unwrap().contains("boom"));
            etcdrs_error_free(err);
        }
        // Without an error_out the status alone tells.
        assert_eq!(
            guard(std::ptr::null_mut(), || Err(
                error(ErrorCode::Timeout, "t").into()
            )),
            ErrorCode::Timeout as u32
        );
        assert_eq!(guard(std::ptr::null_mut(), || Ok(())), ETCDRS_OK);
    }
}
