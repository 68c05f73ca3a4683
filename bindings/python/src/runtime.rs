//! Running etcdrs calls from Python: on the core's blocking runtime (one per process, made
//! again after fork), with the GIL released, and interruptible by Ctrl-C (signals are
//! checked every 100 ms while a call waits).

use crate::errors::to_py;
use etcdrs_core::Error;
use pyo3::prelude::*;
use std::future::Future;
use std::time::Duration;

/// Run `fut` to completion without holding the GIL, on the calling thread (no hop to a
/// worker for the common, quick call). A KeyboardInterrupt (or any exception a signal
/// handler raises) while it waits abandons the call and propagates.
pub fn block_on<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
{
    block_on_with(py, fut, to_py)
}

/// As `block_on`, for calls whose errors `raise` turns into Python exceptions (v3 calls).
pub fn block_on_with<T, E, F>(py: Python<'_>, fut: F, raise: fn(E) -> PyErr) -> PyResult<T>
where
    T: Send + 'static,
    E: Send + 'static,
    F: Future<Output = Result<T, E>> + Send + 'static,
{
    let mut fut = Box::pin(fut);
    loop {
        let done = py.detach(|| {
            etcdrs_core::blocking::block_on(async {
                tokio::time::timeout(Duration::from_millis(100), &mut fut)
                    .await
                    .ok()
            })
        });
        match done {
            Some(result) => return result.map_err(raise),
            None => py.check_signals()?,
        }
    }
}
