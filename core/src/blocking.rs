//! Client calls for callers without an async runtime of their own: the C ABI and the
//! Python, Node and Julia bindings. They share one runtime per process (a member keeps its
//! own). A child made by fork() has none of its parent's threads, so it gets a new runtime;
//! the parent's is forgotten, never shut down, in the child.

use crate::client::Client;
use crate::error::{Error, ErrorCode, Result};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Runtime;

/// The runtime of this process.
pub fn runtime() -> Arc<Runtime> {
    static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    if let Some((owner, rt)) = &*slot {
        if *owner == pid {
            return rt.clone();
        }
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("etcdrs-client")
            .on_thread_start(crate::sigpipe::block_in_this_thread)
            .enable_all()
            .build()
            .expect("the client runtime"),
    );
    // Inherited from the parent by fork(): its threads are not here to shut down.
    if let Some(inherited) = slot.replace((pid, rt.clone())) {
        std::mem::forget(inherited);
    }
    rt
}

/// Run `fut` to completion on the calling thread, with the process's runtime driving it
/// (no hop to a worker for a quick call). The call's writes cannot raise SIGPIPE in a host
/// that left it at its default.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let _sigpipe = crate::sigpipe::Blocked::new();
    runtime().block_on(fut)
}

/// A client of `endpoints` over HTTP whose connections live on the process's runtime.
pub fn http_client<S: AsRef<str>>(endpoints: &[S], timeout: Option<Duration>) -> Result<Client> {
    http_client_with(endpoints, timeout, &crate::ClientTls::default(), None)
}

/// `http_client`, with TLS material for `https://` endpoints and a user for members with
/// auth enabled.
pub fn http_client_with<S: AsRef<str>>(
    endpoints: &[S],
    timeout: Option<Duration>,
    tls: &crate::ClientTls,
    credentials: Option<crate::Credentials>,
) -> Result<Client> {
    let rt = runtime();
    let _entered = rt.enter();
    Client::http_with(endpoints, timeout, tls, credentials)
}

/// A result as the JSON text a binding hands over.
pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::new(ErrorCode::BadResponse, e.to_string(), 0))
}
