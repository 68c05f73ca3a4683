//! `etcdrs._native.Node`: a member running inside the Python process.

use crate::client::NativeClient;
use crate::errors::IntoPy;
use etcdrs_core::Config;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[pyclass(module = "etcdrs._native", frozen)]
pub struct Node {
    node: Mutex<etcdrs_core::Node>,
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    member_id: u64,
    #[pyo3(get)]
    client_urls: Vec<String>,
    #[pyo3(get)]
    peer_urls: Vec<String>,
}

#[pymethods]
impl Node {
    /// Start member `name` with its data in `data_dir`; `flags` are etcd's flags by name
    /// (`listen-client-urls`, `initial-cluster`, ...) with their command-line text.
    #[new]
    #[pyo3(signature = (name, data_dir, flags = HashMap::new()))]
    fn new(
        py: Python<'_>,
        name: &str,
        data_dir: &str,
        flags: HashMap<String, String>,
    ) -> PyResult<Node> {
        let mut config = Config::ephemeral(name, data_dir);
        for (flag, value) in &flags {
            config.set(flag, value).py_err()?;
        }
        let node = py.detach(|| etcdrs_core::Node::start(config)).py_err()?;
        Ok(Node {
            name: node.name().to_string(),
            member_id: node.member_id(),
            client_urls: node.client_urls().to_vec(),
            peer_urls: node.peer_urls().to_vec(),
            node: Mutex::new(node),
        })
    }

    /// Wait at most `timeout` seconds until the member is part of its cluster.
    fn wait_ready(&self, py: Python<'_>, timeout: f64) -> bool {
        let node = self.node.lock().unwrap_or_else(|p| p.into_inner());
        py.detach(|| node.wait_ready(Duration::from_secs_f64(timeout.max(0.0))))
    }

    /// Why the member failed and serves no more (its raft driver, log writer or apply loop
    /// died, e.g. on a full disk), or None while it runs.
    #[getter]
    fn failure(&self) -> Option<String> {
        let node = self.node.lock().unwrap_or_else(|p| p.into_inner());
        node.failure().map(|e| e.cause)
    }

    /// Stop the member (idempotent).
    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.node.lock().unwrap_or_else(|p| p.into_inner()).stop());
    }

    /// An in-process client of this member.
    fn client(&self) -> NativeClient {
        NativeClient::new(self.node.lock().unwrap_or_else(|p| p.into_inner()).client())
    }
}
