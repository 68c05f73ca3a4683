//! `etcdrs._native.NativeClient`: core's `Client` (over HTTP or in-process). Keys-API calls
//! take etcd's form fields and are parsed by core exactly as the HTTP API parses them.

use crate::errors::IntoPy;
use crate::runtime::block_on;
use etcdrs_core::within;
use etcdrs_core::{Client, Error, ErrorCode, LockField, LockHolder};
use etcdrs_core::{KeyRequest, Method};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

#[pyclass(module = "etcdrs._native", frozen)]
pub struct NativeClient {
    client: Client,
}

impl NativeClient {
    pub fn new(client: Client) -> NativeClient {
        NativeClient { client }
    }
}

use etcdrs_core::blocking::to_json as json;

#[pymethods]
impl NativeClient {
    /// A client over HTTP to `endpoints`; `timeout` (seconds) bounds calls but watches.
    #[staticmethod]
    #[pyo3(signature = (endpoints, timeout = None))]
    fn http(endpoints: Vec<String>, timeout: Option<f64>) -> PyResult<NativeClient> {
        let timeout = timeout.filter(|t| *t > 0.0).map(Duration::from_secs_f64);
        Ok(NativeClient::new(
            etcdrs_core::blocking::http_client(&endpoints, timeout).py_err()?,
        ))
    }

    /// One keys-API request: `method` and `fields` as over HTTP (value, ttl, dir,
    /// prevValue, prevIndex, prevExist, refresh, recursive, sorted, quorum, wait,
    /// waitIndex). Answers (event JSON, created, etcd index, raft index, raft term).
    #[pyo3(signature = (method, key, fields, timeout = None))]
    fn request(
        &self,
        py: Python<'_>,
        method: &str,
        key: &str,
        fields: HashMap<String, String>,
        timeout: Option<f64>,
    ) -> PyResult<(String, bool, u64, u64, u64)> {
        let method = Method::parse(method)
            .ok_or_else(|| PyValueError::new_err(format!("unknown method {method:?}")))?;
        let req =
            KeyRequest::from_form(method, key, &|name: &str| fields.get(name).cloned()).py_err()?;
        let client = self.client.clone();
        block_on(py, async move {
            let timeout = timeout.filter(|t| *t > 0.0).map(Duration::from_secs_f64);
            let r = within(timeout, client.request(req)).await?;
            Ok((
                r.event.to_json(),
                r.event.is_created(),
                r.etcd_index,
                r.raft_index,
                r.raft_term,
            ))
        })
    }

    /// The cluster's client URLs.
    /// (etcd server version, cluster version), as GET /version answers.
    fn version(&self, py: Python<'_>) -> PyResult<(String, String)> {
        let c = self.client.clone();
        block_on(py, async move {
            c.version().await.map(|v| (v.server, v.cluster))
        })
    }

    fn machines(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let c = self.client.clone();
        block_on(py, async move { c.machines().await })
    }

    /// The members as etcd's JSON list.
    fn members(&self, py: Python<'_>) -> PyResult<String> {
        let c = self.client.clone();
        block_on(py, async move { json(&c.members().await?) })
    }

    /// The leader as etcd's member JSON.
    fn leader(&self, py: Python<'_>) -> PyResult<String> {
        let c = self.client.clone();
        block_on(py, async move { json(&c.leader().await?) })
    }

    /// /v2/stats/<kind> as JSON: "self", "store" or "leader".
    fn stats(&self, py: Python<'_>, kind: &str) -> PyResult<String> {
        let c = self.client.clone();
        let kind = kind.to_string();
        block_on(py, async move {
            match kind.as_str() {
                "self" => json(&c.stats_self().await?),
                "store" => json(&c.stats_store().await?),
                "leader" => json(&c.stats_leader().await?),
                other => Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("stats kind must be self, store or leader, not {other:?}"),
                    0,
                )),
            }
        })
    }

    #[pyo3(signature = (name, ttl, value = None, timeout = None))]
    fn lock_acquire(
        &self,
        py: Python<'_>,
        name: String,
        ttl: u64,
        value: Option<String>,
        timeout: Option<u64>,
    ) -> PyResult<u64> {
        let c = self.client.clone();
        block_on(py, async move {
            c.lock_acquire(&name, ttl, value.as_deref(), timeout).await
        })
    }

    /// `field`: "value" or "index".
    fn lock_retrieve(&self, py: Python<'_>, name: String, field: &str) -> PyResult<String> {
        let field = match field {
            "value" => LockField::Value,
            "index" => LockField::Index,
            _ => return Err(Error::new(ErrorCode::InvalidField, "Get", 0)).py_err(),
        };
        let c = self.client.clone();
        block_on(py, async move { c.lock_retrieve(&name, field).await })
    }

    #[pyo3(signature = (name, ttl, index = None, value = None))]
    fn lock_renew(
        &self,
        py: Python<'_>,
        name: String,
        ttl: u64,
        index: Option<u64>,
        value: Option<String>,
    ) -> PyResult<()> {
        let c = self.client.clone();
        block_on(py, async move {
            let holder = LockHolder::from_parts(index, value.as_deref(), "Renew")?;
            c.lock_renew(&name, holder, ttl).await
        })
    }

    #[pyo3(signature = (name, index = None, value = None))]
    fn lock_release(
        &self,
        py: Python<'_>,
        name: String,
        index: Option<u64>,
        value: Option<String>,
    ) -> PyResult<()> {
        let c = self.client.clone();
        block_on(py, async move {
            let holder = LockHolder::from_parts(index, value.as_deref(), "Release")?;
            c.lock_release(&name, holder).await
        })
    }

    #[pyo3(signature = (name, leader, ttl, timeout = None))]
    fn set_leader(
        &self,
        py: Python<'_>,
        name: String,
        leader: String,
        ttl: u64,
        timeout: Option<u64>,
    ) -> PyResult<u64> {
        let c = self.client.clone();
        block_on(py, async move {
            c.set_leader(&name, &leader, ttl, timeout).await
        })
    }

    fn get_leader(&self, py: Python<'_>, name: String) -> PyResult<String> {
        let c = self.client.clone();
        block_on(py, async move { c.get_leader(&name).await })
    }

    fn delete_leader(&self, py: Python<'_>, name: String, leader: String) -> PyResult<()> {
        let c = self.client.clone();
        block_on(py, async move { c.delete_leader(&name, &leader).await })
    }
}
