//! `NativeNode`: a member running inside the Node process.

use crate::client::NativeClient;
use crate::errors::{run, Answer, IntoJs};
use etcdrs_core::{format_id, Config, Error, ErrorCode};
use napi::Env;
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[napi]
pub struct NativeNode {
    /// The configuration until the member starts.
    config: Mutex<Option<Config>>,
    node: Arc<Mutex<Option<etcdrs_core::Node>>>,
}

/// What a started member is.
#[napi(object)]
pub struct NodeInfo {
    pub name: String,
    /// etcd's hex spelling of the member id.
    pub member_id: String,
    pub client_urls: Vec<String>,
    pub peer_urls: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `f` on a thread that may block (starting, stopping, waiting for a member).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorCode::Panic, e.to_string(), 0))
}

fn not_running() -> Error {
    Error::new(ErrorCode::Stopped, "the member is not running", 0)
}

#[napi]
impl NativeNode {
    /// Member `name` with its data in `dataDir`; `flags` are etcd's flags by name
    /// (`listen-client-urls`, `initial-cluster`, ...) with their command-line text. A bad
    /// flag throws here; nothing starts until `start`.
    #[napi(constructor)]
    pub fn new(
        name: String,
        data_dir: String,
        flags: HashMap<String, String>,
    ) -> napi::Result<NativeNode> {
        let mut config = Config::ephemeral(&name, &data_dir);
        for (flag, value) in &flags {
            config.set(flag, value).js()?;
        }
        Ok(NativeNode {
            config: Mutex::new(Some(config)),
            node: Arc::new(Mutex::new(None)),
        })
    }

    /// Start the member (opening its log, binding its ports) off the JS thread.
    #[napi]
    pub fn start<'env>(&self, env: &'env Env) -> napi::Result<Answer<'env, NodeInfo>> {
        let config = lock(&self.config).take().ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArgument,
                "the member was started already",
                0,
            )
        });
        let slot = self.node.clone();
        run(env, async move {
            let config = config?;
            let node = blocking(move || etcdrs_core::Node::start(config)).await??;
            let info = NodeInfo {
                name: node.name().to_string(),
                member_id: format_id(node.member_id()),
                client_urls: node.client_urls().to_vec(),
                peer_urls: node.peer_urls().to_vec(),
            };
            *lock(&slot) = Some(node);
            Ok(info)
        })
    }

    /// Wait at most `timeoutMs` until the member is part of its cluster.
    #[napi]
    pub fn wait_ready<'env>(
        &self,
        env: &'env Env,
        timeout_ms: f64,
    ) -> napi::Result<Answer<'env, bool>> {
        let slot = self.node.clone();
        let timeout = Duration::from_secs_f64(timeout_ms.max(0.0) / 1000.0);
        run(env, async move {
            blocking(move || match &*lock(&slot) {
                Some(node) => Ok(node.wait_ready(timeout)),
                None => Err(not_running()),
            })
            .await?
        })
    }

    /// Why the member failed and serves no more (its raft driver, log writer or apply loop
    /// died, e.g. on a full disk), or null while it runs.
    #[napi]
    pub fn failure(&self) -> Option<String> {
        lock(&self.node)
            .as_ref()
            .and_then(|n| n.failure())
            .map(|e| e.to_string())
    }

    /// An in-process client of this member.
    #[napi]
    pub fn client(&self) -> napi::Result<NativeClient> {
        match &*lock(&self.node) {
            Some(node) => Ok(NativeClient::new(node.client())),
            None => Err(not_running()).js(),
        }
    }

    /// Stop the member off the JS thread (idempotent).
    #[napi]
    pub fn stop<'env>(&self, env: &'env Env) -> napi::Result<Answer<'env, ()>> {
        let slot = self.node.clone();
        run(env, async move {
            let node = lock(&slot).take();
            if let Some(mut node) = node {
                blocking(move || node.stop()).await?;
            }
            Ok(())
        })
    }

    /// Stop the member on the calling thread: for process exit, when no Promise can be
    /// awaited any more.
    #[napi]
    pub fn stop_sync(&self) {
        let node = lock(&self.node).take();
        if let Some(mut node) = node {
            node.stop();
        }
    }
}
