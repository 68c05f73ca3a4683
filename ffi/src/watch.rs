//! A continuous watch, polled by the caller: no callbacks from library threads (Julia and
//! Node cannot take them safely).

use crate::client::{block, etcdrs_client, millis};
use crate::response::{etcdrs_response, new_response};
use crate::{error, etcdrs_error, etcdrs_status, guard, handle, out_param, text};
use etcdrs_core::within;
use etcdrs_core::{ErrorCode, WatchCanceller, WatchOptions, WatchStream};
use std::ffi::c_char;
use std::sync::Mutex;

/// A continuous watch. `etcdrs_watch_next` is called by one thread at a time (a second
/// caller waits for the first); `etcdrs_watch_cancel` may be called from any thread at any
/// time. Free with `etcdrs_watch_free` once no call is running.
pub struct etcdrs_watch {
    stream: Mutex<WatchStream>,
    canceller: WatchCanceller,
}

/// Watch every change of `key` (or below it, when `recursive`) from `wait_index` on (0: from
/// now), until cancelled. No change is missed between calls to `etcdrs_watch_next`, however
/// long the caller takes (within etcd's 1000-event history).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_client_watch_stream(
    client: *const etcdrs_client,
    key: *const c_char,
    key_len: usize,
    wait_index: u64,
    recursive: bool,
    watch_out: *mut *mut etcdrs_watch,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(watch_out, "watch_out")?;
        // SAFETY: NULL or a client from this library; `key_len` readable bytes at `key`.
        let c = unsafe { handle(client, "client")? };
        let key = unsafe { text(key, key_len, "key")? };
        let stream = c.client.watch_stream(
            key,
            WatchOptions {
                wait_index,
                recursive,
            },
        );
        let w = etcdrs_watch {
            canceller: stream.canceller(),
            stream: Mutex::new(stream),
        };
        // SAFETY: checked non-NULL above.
        unsafe { *watch_out = Box::into_raw(Box::new(w)) };
        Ok(())
    })
}

/// The next change, waiting at most `timeout_ms` (0: no limit). Returns `ETCDRS_OK` with a
/// response, `ETCDRS_CODE_TIMEOUT` when nothing changed in time (call again: nothing is
/// lost), `ETCDRS_CODE_CANCELLED` once the watch is cancelled, or an etcd error (e.g.
/// `ETCDRS_CODE_EVENT_INDEX_CLEARED`), after which the watch may still go on.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_watch_next(
    watch: *const etcdrs_watch,
    timeout_ms: u64,
    response_out: *mut *mut etcdrs_response,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(response_out, "response_out")?;
        // SAFETY: NULL or a watch from this library.
        let w = unsafe { handle(watch, "watch")? };
        let mut stream = w.stream.lock().unwrap_or_else(|p| p.into_inner());
        let next = async {
            match stream.next().await {
                Some(r) => r,
                None => Err(error(ErrorCode::Cancelled, "the watch was cancelled")),
            }
        };
        let r = block(within(millis(timeout_ms), next))?;
        // SAFETY: checked non-NULL above.
        unsafe { *response_out = new_response(r) };
        Ok(())
    })
}

/// Cancel the watch: a waiting `etcdrs_watch_next` returns `ETCDRS_CODE_CANCELLED` at once,
/// and so does every later one. Any thread; NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_watch_cancel(watch: *const etcdrs_watch) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: NULL or a watch from this library.
        if let Some(w) = unsafe { watch.as_ref() } {
            w.canceller.cancel();
        }
    });
}

/// Free a watch. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_watch_free(watch: *mut etcdrs_watch) {
    // SAFETY: NULL or a watch from this library, freed once, no call running on it. Its
    // stream ends with it; nothing else refers to the canceller.
    unsafe { crate::free_box(watch) }
}
