//! `NativeClient`: core's `Client` (over HTTP or in-process). Keys-API calls take etcd's
//! form fields and are parsed by core exactly as the HTTP API parses them.

use crate::errors::{run, Answer, IntoJs};
use etcdrs_core::blocking::to_json as json;
use etcdrs_core::{
    within, Client, Error, ErrorCode, KeyRequest, KeyResponse, LockField, LockHolder, Method,
    WatchCanceller, WatchOptions, WatchStream,
};
use napi::Env;
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[napi]
pub struct NativeClient {
    client: Client,
}

impl NativeClient {
    pub fn new(client: Client) -> NativeClient {
        NativeClient { client }
    }
}

/// A keys-API answer: etcd's event JSON and the index headers.
#[napi(object)]
pub struct KeyAnswer {
    pub event: String,
    /// The write created the key (etcd answers 201).
    pub created: bool,
    pub etcd_index: f64,
    pub raft_index: f64,
    pub raft_term: f64,
}

impl From<KeyResponse> for KeyAnswer {
    fn from(r: KeyResponse) -> KeyAnswer {
        KeyAnswer {
            event: r.event.to_json(),
            created: r.event.is_created(),
            etcd_index: r.etcd_index as f64,
            raft_index: r.raft_index as f64,
            raft_term: r.raft_term as f64,
        }
    }
}

fn timeout(ms: Option<f64>) -> Option<Duration> {
    ms.filter(|t| *t > 0.0)
        .map(|t| Duration::from_secs_f64(t / 1000.0))
}

fn key_request(
    method: &str,
    key: &str,
    fields: &HashMap<String, String>,
) -> Result<KeyRequest, Error> {
    let method = Method::parse(method).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidArgument,
            format!("unknown method {method:?}"),
            0,
        )
    })?;
    KeyRequest::from_form(method, key, &|name: &str| fields.get(name).cloned())
}

/// An index or a count from JS: a whole number, not negative.
fn index(n: f64, what: &str) -> Result<u64, Error> {
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
        Ok(n as u64)
    } else {
        Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("{what} must be a whole number >= 0, not {n}"),
            0,
        ))
    }
}

#[napi]
impl NativeClient {
    /// A client over HTTP to `endpoints`, trying the next one when one cannot be reached;
    /// `timeoutMs` bounds every call but watches.
    /// For `https://` endpoints: `ca_file` checks the members' certificates (or
    /// `insecure_skip_verify` checks none); `cert_file` and `key_file` are this client's.
    /// `user` and `password`: for members with auth enabled.
    #[napi(factory)]
    #[allow(clippy::too_many_arguments)]
    pub fn http(
        endpoints: Vec<String>,
        timeout_ms: Option<f64>,
        ca_file: Option<String>,
        cert_file: Option<String>,
        key_file: Option<String>,
        insecure_skip_verify: Option<bool>,
        user: Option<String>,
        password: Option<String>,
    ) -> napi::Result<NativeClient> {
        let tls = etcdrs_core::ClientTls {
            ca_file: ca_file.map(Into::into),
            cert_file: cert_file.map(Into::into),
            key_file: key_file.map(Into::into),
            insecure_skip_verify: insecure_skip_verify.unwrap_or(false),
        };
        Ok(NativeClient::new(
            etcdrs_core::blocking::http_client_with(
                &endpoints,
                timeout(timeout_ms),
                &tls,
                user.map(|user| etcdrs_core::Credentials {
                    user,
                    password: password.unwrap_or_default(),
                }),
            )
            .js()?,
        ))
    }

    /// One keys-API request: `method` (GET, PUT, POST, DELETE) and `fields` as over HTTP
    /// (value, ttl, dir, prevValue, prevIndex, prevExist, refresh, recursive, sorted,
    /// quorum, wait, waitIndex).
    #[napi]
    pub fn request<'env>(
        &self,
        env: &'env Env,
        method: String,
        key: String,
        fields: HashMap<String, String>,
        timeout_ms: Option<f64>,
    ) -> napi::Result<Answer<'env, KeyAnswer>> {
        let req = key_request(&method, &key, &fields).js()?;
        let c = self.client.clone();
        run(env, async move {
            within(timeout(timeout_ms), c.request(req))
                .await
                .map(KeyAnswer::from)
        })
    }

    /// `request`, waiting on the calling (JS) thread: node-etcd's *Sync calls.
    #[napi]
    pub fn request_sync(
        &self,
        method: String,
        key: String,
        fields: HashMap<String, String>,
        timeout_ms: Option<f64>,
    ) -> napi::Result<KeyAnswer> {
        let req = key_request(&method, &key, &fields).js()?;
        etcdrs_core::blocking::block_on(within(timeout(timeout_ms), self.client.request(req)))
            .map(KeyAnswer::from)
            .js()
    }

    /// Cluster facts as etcd's JSON: "version", "machines", "members", "leader",
    /// "stats/self", "stats/store" or "stats/leader".
    #[napi]
    pub fn info<'env>(&self, env: &'env Env, what: String) -> napi::Result<Answer<'env, String>> {
        let c = self.client.clone();
        run(env, async move {
            match what.as_str() {
                "version" => json(&c.version().await?),
                "machines" => json(&c.machines().await?),
                "members" => json(&c.members().await?),
                "leader" => json(&c.leader().await?),
                "stats/self" => json(&c.stats_self().await?),
                "stats/store" => json(&c.stats_store().await?),
                "stats/leader" => json(&c.stats_leader().await?),
                other => Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("unknown cluster fact {other:?}"),
                    0,
                )),
            }
        })
    }

    /// Every change of `key` from `waitIndex` on (0: the next one).
    #[napi]
    pub fn watch(
        &self,
        key: String,
        wait_index: f64,
        recursive: bool,
    ) -> napi::Result<NativeWatch> {
        let options = WatchOptions {
            wait_index: index(wait_index, "waitIndex").js()?,
            recursive,
        };
        let stream = self.client.watch_stream(&key, options);
        Ok(NativeWatch {
            canceller: stream.canceller(),
            stream: Arc::new(tokio::sync::Mutex::new(stream)),
        })
    }

    /// Acquire lock `name` (waiting for it; `timeoutS` seconds at most); answers the
    /// holder's index.
    #[napi]
    pub fn lock_acquire<'env>(
        &self,
        env: &'env Env,
        name: String,
        ttl: f64,
        value: Option<String>,
        timeout_s: Option<f64>,
    ) -> napi::Result<Answer<'env, f64>> {
        let ttl = index(ttl, "ttl").js()?;
        let wait = timeout_s.map(|t| index(t, "timeout")).transpose().js()?;
        let c = self.client.clone();
        run(env, async move {
            c.lock_acquire(&name, ttl, value.as_deref(), wait)
                .await
                .map(|i| i as f64)
        })
    }

    /// `field`: "value" or "index".
    #[napi]
    pub fn lock_retrieve<'env>(
        &self,
        env: &'env Env,
        name: String,
        field: String,
    ) -> napi::Result<Answer<'env, String>> {
        let field = match field.as_str() {
            "value" => LockField::Value,
            "index" => LockField::Index,
            _ => return Err(Error::new(ErrorCode::InvalidField, "Get", 0)).js(),
        };
        let c = self.client.clone();
        run(env, async move { c.lock_retrieve(&name, field).await })
    }

    #[napi]
    pub fn lock_renew<'env>(
        &self,
        env: &'env Env,
        name: String,
        ttl: f64,
        index_: Option<f64>,
        value: Option<String>,
    ) -> napi::Result<Answer<'env, ()>> {
        let ttl = index(ttl, "ttl").js()?;
        let held = index_.map(|i| index(i, "index")).transpose().js()?;
        let c = self.client.clone();
        run(env, async move {
            let holder = LockHolder::from_parts(held, value.as_deref(), "Renew")?;
            c.lock_renew(&name, holder, ttl).await
        })
    }

    #[napi]
    pub fn lock_release<'env>(
        &self,
        env: &'env Env,
        name: String,
        index_: Option<f64>,
        value: Option<String>,
    ) -> napi::Result<Answer<'env, ()>> {
        let held = index_.map(|i| index(i, "index")).transpose().js()?;
        let c = self.client.clone();
        run(env, async move {
            let holder = LockHolder::from_parts(held, value.as_deref(), "Release")?;
            c.lock_release(&name, holder).await
        })
    }

    /// Campaign as `leader` of `name` (waiting `timeoutS` seconds at most); answers the
    /// leadership's index.
    #[napi]
    pub fn set_leader<'env>(
        &self,
        env: &'env Env,
        name: String,
        leader: String,
        ttl: f64,
        timeout_s: Option<f64>,
    ) -> napi::Result<Answer<'env, f64>> {
        let ttl = index(ttl, "ttl").js()?;
        let wait = timeout_s.map(|t| index(t, "timeout")).transpose().js()?;
        let c = self.client.clone();
        run(env, async move {
            c.set_leader(&name, &leader, ttl, wait)
                .await
                .map(|i| i as f64)
        })
    }

    #[napi]
    pub fn get_leader<'env>(
        &self,
        env: &'env Env,
        name: String,
    ) -> napi::Result<Answer<'env, String>> {
        let c = self.client.clone();
        run(env, async move { c.get_leader(&name).await })
    }

    #[napi]
    pub fn delete_leader<'env>(
        &self,
        env: &'env Env,
        name: String,
        leader: String,
    ) -> napi::Result<Answer<'env, ()>> {
        let c = self.client.clone();
        run(env, async move { c.delete_leader(&name, &leader).await })
    }
}

/// A continuous v2 watch: `next` answers every change in order (an error does not end it),
/// null once cancelled.
#[napi]
pub struct NativeWatch {
    stream: Arc<tokio::sync::Mutex<WatchStream>>,
    canceller: WatchCanceller,
}

#[napi]
impl NativeWatch {
    #[napi]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<Answer<'env, Option<KeyAnswer>>> {
        let stream = self.stream.clone();
        run(env, async move {
            match stream.lock().await.next().await {
                None => Ok(None),
                Some(r) => r.map(|r| Some(KeyAnswer::from(r))),
            }
        })
    }

    /// End the watch: a waiting `next` answers null at once, and so do later ones.
    #[napi]
    pub fn cancel(&self) {
        self.canceller.cancel();
    }
}
