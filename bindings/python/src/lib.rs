//! `etcdrs._native`: the Rust half of the Python package. It translates between Python and
//! etcdrs-core's `Node` and `Client`; the python-etcd-compatible surface (`etcdrs.Client`,
//! `EtcdResult`) is a thin Python layer over it, and no etcd semantics live in either.

mod client;
mod errors;
mod node;
mod runtime;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<node::Node>()?;
    m.add_class::<client::NativeClient>()?;
    m.add_class::<client::NativeV3Watch>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The core's error table, by name: etcdrs.errors maps names to exception classes.
    let codes = pyo3::types::PyDict::new(m.py());
    for code in etcdrs_core::ErrorCode::ALL {
        codes.set_item(code.name(), *code as u32)?;
    }
    m.add("ERROR_CODES", codes)?;
    Ok(())
}
