//! `etcdrs._native.NativeClient`: core's `Client` (over HTTP or in-process). Keys-API calls
//! take etcd's form fields and are parsed by core exactly as the HTTP API parses them.

use crate::errors::{v3_to_py, IntoPy};
use crate::runtime::{block_on, block_on_with};
use etcdrs_core::pb::etcdserverpb::{RangeRequest, WatchCreateRequest};
use etcdrs_core::within;
use etcdrs_core::{Client, Error, ErrorCode, LockField, LockHolder, V3Error, V3Watch};
use etcdrs_core::{KeyRequest, Method};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
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

/// A user and its password (an absent password is an empty one), or nobody.
fn credentials(user: Option<String>, password: Option<String>) -> Option<etcdrs_core::Credentials> {
    user.map(|user| etcdrs_core::Credentials {
        user,
        password: password.unwrap_or_default(),
    })
}

#[pymethods]
impl NativeClient {
    /// A client over HTTP to `endpoints`; `timeout` (seconds) bounds calls but watches.
    /// For `https://` endpoints: `ca_file` checks the members' certificates (or
    /// `insecure_skip_verify` checks none), `cert_file` and `key_file` are this client's.
    #[staticmethod]
    /// `user` and `password`: for members with auth enabled (v3 calls carry the token
    /// they hand out).
    #[pyo3(signature = (endpoints, timeout = None, ca_file = None, cert_file = None, key_file = None, insecure_skip_verify = false, user = None, password = None))]
    #[allow(clippy::too_many_arguments)]
    fn http(
        endpoints: Vec<String>,
        timeout: Option<f64>,
        ca_file: Option<String>,
        cert_file: Option<String>,
        key_file: Option<String>,
        insecure_skip_verify: bool,
        user: Option<String>,
        password: Option<String>,
    ) -> PyResult<NativeClient> {
        let timeout = timeout.filter(|t| *t > 0.0).map(Duration::from_secs_f64);
        let tls = etcdrs_core::ClientTls {
            ca_file: ca_file.map(Into::into),
            cert_file: cert_file.map(Into::into),
            key_file: key_file.map(Into::into),
            insecure_skip_verify,
        };
        Ok(NativeClient::new(
            etcdrs_core::blocking::http_client_with(
                &endpoints,
                timeout,
                &tls,
                credentials(user, password),
            )
            .py_err()?,
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
        v3_call(py, timeout, async move {
            c.v3().call_json(&method, &request).await
        })
    }

    /// A v3 range without JSON (the common read): (header as (cluster_id, member_id,
    /// revision, raft_term), [(key, value, create_revision, mod_revision, version, lease)],
    /// count, more). Sort order and target are etcd's numbers.
    #[pyo3(signature = (key, range_end = None, limit = 0, revision = 0, sort_order = 0,
        sort_target = 0, serializable = false, keys_only = false, count_only = false,
        timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn v3_range<'py>(
        &self,
        py: Python<'py>,
        key: Vec<u8>,
        range_end: Option<Vec<u8>>,
        limit: i64,
        revision: i64,
        sort_order: i32,
        sort_target: i32,
        serializable: bool,
        keys_only: bool,
        count_only: bool,
        timeout: Option<f64>,
    ) -> PyResult<(RangeHeader, Vec<RangeKv<'py>>, i64, bool)> {
        let r = RangeRequest {
            key: key.into(),
            range_end: range_end.unwrap_or_default().into(),
            limit,
            revision,
            sort_order,
            sort_target,
            serializable,
            keys_only,
            count_only,
            ..Default::default()
        };
        let c = self.client.clone();
        let resp = v3_call(py, timeout, async move { c.v3().range(r).await })?;
        let h = resp.header.unwrap_or_default();
        let kvs = resp
            .kvs
            .iter()
            .map(|kv| {
                (
                    PyBytes::new(py, &kv.key),
                    PyBytes::new(py, &kv.value),
                    kv.create_revision,
                    kv.mod_revision,
                    kv.version,
                    kv.lease,
                )
            })
            .collect();
        Ok((
            (h.cluster_id, h.member_id, h.revision, h.raft_term),
            kvs,
            resp.count,
            resp.more,
        ))
    }

    /// The member's v3 snapshot (what `etcdctl snapshot save` writes), as bytes.
    #[pyo3(signature = (timeout = None))]
    fn v3_snapshot<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let c = self.client.clone();
        let image = v3_call(py, timeout, async move { c.v3().snapshot().await })?;
        Ok(PyBytes::new(py, &image))
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

type RangeHeader = (u64, u64, i64, u64);
type RangeKv<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, i64, i64, i64, i64);

/// How a v3 call failed: the member's error, or no answer within the caller's timeout.
enum CallError {
    V3(V3Error),
    Timeout,
}

impl CallError {
    fn raise(self) -> PyErr {
        match self {
            CallError::V3(e) => v3_to_py(e),
            // python-etcd3's class for an expired deadline.
            CallError::Timeout => crate::errors::v3_code_to_py(4, "deadline exceeded"),
        }
    }
}

/// Run a v3 call from Python, bounded by `timeout` seconds (None or 0: unbounded).
fn v3_call<T: Send + 'static>(
    py: Python<'_>,
    timeout: Option<f64>,
    call: impl std::future::Future<Output = Result<T, V3Error>> + Send + 'static,
) -> PyResult<T> {
    let timeout = timeout.filter(|t| *t > 0.0).map(Duration::from_secs_f64);
    block_on_with(
        py,
        async move {
            let call = async { call.await.map_err(CallError::V3) };
            match timeout {
                Some(t) => tokio::time::timeout(t, call)
                    .await
                    .unwrap_or(Err(CallError::Timeout)),
                None => call.await,
            }
        },
        CallError::raise,
    )
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
