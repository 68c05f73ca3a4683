//! Running etcdrs calls from Python: on a private runtime, with the GIL released, and
//! interruptible by Ctrl-C (signals are checked every 100 ms while a call waits).

use crate::errors::to_py;
use etcdrs_core::Error;
use pyo3::prelude::*;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The runtime of this process. A child made by fork() does not inherit the parent's
/// threads, so it gets a runtime of its own.
pub fn runtime() -> Arc<tokio::runtime::Runtime> {
    static RUNTIME: Mutex<Option<(u32, Arc<tokio::runtime::Runtime>)>> = Mutex::new(None);
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    match &*slot {
        Some((owner, rt)) if *owner == pid => rt.clone(),
        _ => {
            let rt = Arc::new(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("etcdrs-py")
                    .enable_all()
                    .build()
                    .expect("etcdrs runtime"),
            );
            *slot = Some((pid, rt.clone()));
            rt
        }
    }
}

/// Run `fut` to completion without holding the GIL, on the calling thread (no hop to a
/// worker for the common, quick call). A KeyboardInterrupt (or any exception a signal
/// handler raises) while it waits abandons the call and propagates.
pub fn block_on<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
{
    let rt = runtime();
    let mut fut = Box::pin(fut);
    loop {
        let done = py.detach(|| {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(100), &mut fut)
                    .await
                    .ok()
            })
        });
        match done {
            Some(result) => return result.map_err(to_py),
            None => py.check_signals()?,
        }
    }
}
