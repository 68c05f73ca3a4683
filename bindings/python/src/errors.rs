//! The one conversion of an etcdrs error into a Python exception. The classes and the
//! errorCode → class table are declared once, in etcdrs/errors.py.

use etcdrs_core::{Error, V3Error};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Raise the exception class etcdrs.errors assigns to the error's code, with python-etcd's
/// message (`"<message> : <cause>"`) and payload (errorCode, message, cause, index).
pub fn to_py(e: Error) -> PyErr {
    Python::attach(|py| match build(py, &e) {
        Ok(err) => err,
        Err(failed) => failed,
    })
}

fn build(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let errors = py.import("etcdrs.errors")?;
    let payload = PyDict::new(py);
    payload.set_item("errorCode", e.code())?;
    payload.set_item("message", e.message())?;
    payload.set_item("cause", &e.cause)?;
    payload.set_item("index", e.index)?;
    // python-etcd adds the HTTP status to every error payload.
    payload.set_item("status", e.code.http_status())?;
    let exc = errors.call_method1("exception_for", (e.code(), payload))?;
    Ok(PyErr::from_value(exc))
}

pub trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, Error> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// A v3 call's error as the exception python-etcd3 raises for its gRPC code (the classes
/// and the table live in etcdrs/v3/exceptions.py).
pub fn v3_to_py(e: V3Error) -> PyErr {
    v3_code_to_py(e.grpc_code(), &e.message())
}

/// The exception for gRPC `code` with `message`.
pub fn v3_code_to_py(code: i32, message: &str) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            let exceptions = py.import("etcdrs.v3.exceptions")?;
            let exc = exceptions.call_method1("exception_for", (code, message))?;
            Ok(PyErr::from_value(exc))
        };
        build().unwrap_or_else(|failed| failed)
    })
}
