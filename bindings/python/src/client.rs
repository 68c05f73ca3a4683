//! `etcdrs._native.NativeClient`: core's `Client` (over HTTP or in-process). Keys-API calls
//! take etcd's form fields and are parsed by core exactly as the HTTP API parses them.

use crate::errors::{v3_to_py, IntoPy};
use crate::runtime::{block_on, block_on_with};
use etcdrs_core::pb::etcdserverpb::WatchCreateRequest;
use etcdrs_core::within;
use etcdrs_core::{Client, Error, ErrorCode, LockField, LockHolder, V3Error, V3Watch};
use etcdrs_core::{KeyRequest, Method};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
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

    /// One v3 call as etcd's gateway JSON: `method` is its path without /v3/ ("kv/range",
    /// "lease/grant", ...), `request` its JSON object; answers the response's JSON.
    /// `timeout` (seconds) bounds it.
    #[pyo3(signature = (method, request, timeout = None))]
    fn v3(
        &self,
        py: Python<'_>,
        method: String,
        request: String,
        timeout: Option<f64>,
    ) -> PyResult<String> {
        let c = self.client.clone();
        let call = async move { c.v3().call_json(&method, &request).await };
        match timeout.filter(|t| *t > 0.0).map(Duration::from_secs_f64) {
            None => block_on_with(py, call, v3_to_py),
            Some(t) => block_on_with(
                py,
                async move {
                    tokio::time::timeout(t, call).await.unwrap_or_else(|_| {
                        Err(etcdrs_core::V3Error::Internal(
                            "deadline exceeded".to_string(),
                        ))
                    })
                },
                v3_to_py,
            ),
        }
    }

    /// A v3 watch from a WatchCreateRequest as gateway JSON. The watcher exists on the
    /// member when this returns.
    fn v3_watch(&self, py: Python<'_>, create: String) -> PyResult<NativeV3Watch> {
        let watch = block_on_with(py, open_watch(self.client.clone(), create), v3_to_py)?;
        Ok(NativeV3Watch {
            watch: Arc::new(tokio::sync::Mutex::new(Some(watch))),
            cancelled: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

/// Open a watch and wait for the member to say it exists.
async fn open_watch(c: Client, create: String) -> Result<V3Watch, V3Error> {
    let create: WatchCreateRequest = serde_json::from_str(&create)
        .map_err(|e| V3Error::Internal(format!("bad watch request: {e}")))?;
    let mut w = c.v3().watch(create).await?;
    match w.next().await? {
        Some(r) if r.created => Ok(w),
        _ => Err(V3Error::Internal("the watch was not created".into())),
    }
}

/// The next answer of a watch: None when cancelled or ended.
async fn next_answer(
    watch: Arc<tokio::sync::Mutex<Option<V3Watch>>>,
    cancelled: Arc<tokio::sync::Notify>,
    timeout: Option<Duration>,
) -> Result<Option<String>, V3Error> {
    let mut slot = watch.lock().await;
    let Some(w) = slot.as_mut() else {
        return Ok(None);
    };
    let next = async {
        tokio::select! {
            r = w.next() => r,
            _ = cancelled.notified() => Ok(None),
        }
    };
    let answer = match timeout {
        Some(t) => match tokio::time::timeout(t, next).await {
            Ok(r) => r?,
            // Nothing yet: the watch goes on.
            Err(_) => return Ok(None),
        },
        None => next.await?,
    };
    match answer {
        Some(r) => {
            // A cancel (a compacted start revision) is the watch's last answer.
            if r.canceled {
                *slot = None;
            }
            Ok(Some(serde_json::to_string(&r).expect("json")))
        }
        None => {
            *slot = None;
            Ok(None)
        }
    }
}

/// An open v3 watch, read with `next` (from one thread at a time) and ended with `cancel`
/// (from any thread).
#[pyclass(module = "etcdrs._native", frozen)]
pub struct NativeV3Watch {
    watch: Arc<tokio::sync::Mutex<Option<V3Watch>>>,
    cancelled: Arc<tokio::sync::Notify>,
}

#[pymethods]
impl NativeV3Watch {
    /// The next answer as gateway JSON; None when nothing came within `timeout` seconds
    /// (nothing is lost: call again) or once the watch has ended (`ended`).
    #[pyo3(signature = (timeout = None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<String>> {
        let (watch, cancelled) = (self.watch.clone(), self.cancelled.clone());
        let timeout = timeout.filter(|t| *t > 0.0).map(Duration::from_secs_f64);
        block_on_with(py, next_answer(watch, cancelled, timeout), v3_to_py)
    }

    /// Whether the watch has ended (cancelled, or ended by the member).
    #[getter]
    fn ended(&self) -> bool {
        self.watch.try_lock().is_ok_and(|w| w.is_none())
    }

    /// End the watch: a waiting `next` returns None at once, and so do later ones.
    fn cancel(&self) {
        self.cancelled.notify_one();
        if let Ok(mut w) = self.watch.try_lock() {
            let _entered = etcdrs_core::blocking::runtime().enter();
            *w = None;
        }
    }
}
