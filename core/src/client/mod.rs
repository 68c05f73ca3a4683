//! The Rust client: the same operations over HTTP (a list of endpoints, with failover) or
//! directly against a `Node` in this process. Both give the same results: the in-process
//! path calls the very code that serves HTTP.

mod grpc;
mod http;
mod v3;

pub use grpc::Credentials;
pub use v3::{V3Observe, V3Watch, V3};

use crate::error::{Error, ErrorCode, Result};
use crate::identity::Member;
use crate::lock::Locks;
use crate::lock::{LockField, LockHolder};
use crate::request::{KeyRequest, Method};
use crate::server::{KeyResponse, KeyResult, LeaderStats, SelfStats, Server, Version};
pub use crate::tls::ClientTls;
use crate::v2store::StoreStats;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub use http::HttpClient;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetOptions {
    pub recursive: bool,
    pub sorted: bool,
    /// Linearizable read through raft (etcd's quorum=true).
    pub quorum: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// Start from this index (0: the next change).
    pub wait_index: u64,
    pub recursive: bool,
}

/// How a client reaches its member: directly in this process, or over HTTP.
enum Via {
    Local(Arc<Server>),
    Http(Box<Remote>),
}

/// A cluster reached over the network: v2 over HTTP/1.1, v3 over gRPC.
struct Remote {
    http: HttpClient,
    grpc: grpc::GrpcClient,
}

impl std::ops::Deref for Remote {
    type Target = HttpClient;
    fn deref(&self) -> &HttpClient {
        &self.http
    }
}

/// A client of an etcd cluster (or of an in-process member). Cheap to clone; usable from
/// many tasks at once.
/// The clients' connector: plain TCP for http endpoints, rustls for https ones.
pub(crate) type Connector =
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

pub(crate) fn connector(tls: Option<&rustls::ClientConfig>, http2: bool) -> Connector {
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(Duration::from_secs(3)));
    // Without TLS material https endpoints are refused before any connection, so an empty
    // trust store is never consulted.
    let config = tls.cloned().unwrap_or_else(|| {
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("rustls's default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
    });
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    if http2 {
        builder.enable_http2().wrap_connector(tcp)
    } else {
        builder.enable_http1().wrap_connector(tcp)
    }
}

#[derive(Clone)]
pub struct Client {
    via: Arc<Via>,
}

impl Client {
    pub fn local(server: Arc<Server>) -> Client {
        Client {
            via: Arc::new(Via::Local(server)),
        }
    }

    /// A client over HTTP to these endpoints (`http://host:port`), trying the next one when
    /// one cannot be reached. `timeout` bounds every call except watches.
    pub fn http<S: AsRef<str>>(endpoints: &[S], timeout: Option<Duration>) -> Result<Client> {
        Client::http_tls(endpoints, timeout, &ClientTls::default())
    }

    /// `http`, with `https://` endpoints reached over TLS (a CA to check the members'
    /// certificates, or none checked; a client certificate for members that ask for one).
    pub fn http_tls<S: AsRef<str>>(
        endpoints: &[S],
        timeout: Option<Duration>,
        tls: &ClientTls,
    ) -> Result<Client> {
        Client::http_with(endpoints, timeout, tls, None)
    }

    /// `http_tls`, with a user and password for members with auth enabled: v3 calls carry
    /// the token the members hand out for them, v2 requests HTTP Basic credentials.
    pub fn http_with<S: AsRef<str>>(
        endpoints: &[S],
        timeout: Option<Duration>,
        tls: &ClientTls,
        credentials: Option<Credentials>,
    ) -> Result<Client> {
        let tls = crate::tls::client_config(tls)?;
        Ok(Client {
            via: Arc::new(Via::Http(Box::new(Remote {
                http: HttpClient::new(endpoints, timeout, tls.as_ref(), credentials.as_ref())?,
                grpc: grpc::GrpcClient::new(
                    &endpoints
                        .iter()
                        .map(|e| e.as_ref().to_string())
                        .collect::<Vec<_>>(),
                    timeout,
                    tls.as_ref(),
                    credentials,
                )
                .map_err(|e| Error::new(ErrorCode::InvalidConfig, e, 0))?,
            }))),
        })
    }

    /// Any keys-API request. A watch (`wait`) answers with its first event.
    pub async fn request(&self, req: KeyRequest) -> Result<KeyResponse> {
        match &*self.via {
            Via::Http(h) => h.keys(&req).await,
            Via::Local(s) => match s.handle(req).await? {
                KeyResult::Event(r) => Ok(r),
                KeyResult::Watch(mut w) => {
                    let event = w.next().await.ok_or_else(|| {
                        Error::new(
                            ErrorCode::WatcherCleared,
                            "the watch ended without an event",
                            w.etcd_index,
                        )
                    })?;
                    Ok(KeyResponse {
                        event,
                        etcd_index: w.etcd_index,
                        raft_index: w.raft_index,
                        raft_term: w.raft_term,
                    })
                }
            },
        }
    }

    fn put_request(key: &str) -> KeyRequest {
        KeyRequest {
            method: Method::Put,
            key: key.to_string(),
            ..Default::default()
        }
    }

    /// Set a key's value (creating or replacing it).
    pub async fn set(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<KeyResponse> {
        self.request(KeyRequest {
            value: Some(value.into()),
            ttl,
            ..Self::put_request(key)
        })
        .await
    }

    /// Create or replace a directory.
    pub async fn set_dir(&self, key: &str, ttl: Option<u64>) -> Result<KeyResponse> {
        self.request(KeyRequest {
            dir: true,
            ttl,
            ..Self::put_request(key)
        })
        .await
    }

    pub async fn get(&self, key: &str) -> Result<KeyResponse> {
        self.get_with(key, GetOptions::default()).await
    }

    pub async fn get_with(&self, key: &str, o: GetOptions) -> Result<KeyResponse> {
        self.request(KeyRequest {
            key: key.to_string(),
            recursive: o.recursive,
            sorted: o.sorted,
            quorum: o.quorum,
            ..Default::default()
        })
        .await
    }

    /// Create a key that must not exist yet.
    pub async fn create(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<KeyResponse> {
        self.request(KeyRequest {
            value: Some(value.into()),
            ttl,
            prev_exist: Some(false),
            ..Self::put_request(key)
        })
        .await
    }

    pub async fn create_dir(&self, key: &str, ttl: Option<u64>) -> Result<KeyResponse> {
        self.request(KeyRequest {
            dir: true,
            ttl,
            prev_exist: Some(false),
            ..Self::put_request(key)
        })
        .await
    }

    /// POST: a new key in `dir` named by the etcd index (in-order keys).
    pub async fn create_in_order(
        &self,
        dir: &str,
        value: &str,
        ttl: Option<u64>,
    ) -> Result<KeyResponse> {
        self.request(KeyRequest {
            method: Method::Post,
            value: Some(value.into()),
            ttl,
            ..Self::put_request(dir)
        })
        .await
    }

    /// Change an existing key (a missing ttl makes it permanent).
    pub async fn update(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<KeyResponse> {
        self.request(KeyRequest {
            value: Some(value.into()),
            ttl,
            prev_exist: Some(true),
            ..Self::put_request(key)
        })
        .await
    }

    pub async fn update_dir(&self, key: &str, ttl: Option<u64>) -> Result<KeyResponse> {
        self.request(KeyRequest {
            dir: true,
            ttl,
            prev_exist: Some(true),
            ..Self::put_request(key)
        })
        .await
    }

    /// Reset a key's TTL without changing its value or waking watchers.
    pub async fn refresh(&self, key: &str, ttl: u64) -> Result<KeyResponse> {
        self.request(KeyRequest {
            ttl: Some(ttl),
            refresh: Some(true),
            prev_exist: Some(true),
            ..Self::put_request(key)
        })
        .await
    }

    /// Set `value` only if the key's value is `prev_value` and/or its modifiedIndex is
    /// `prev_index` (at least one must be given).
    pub async fn compare_and_swap(
        &self,
        key: &str,
        value: &str,
        prev_value: Option<&str>,
        prev_index: Option<u64>,
        ttl: Option<u64>,
    ) -> Result<KeyResponse> {
        if prev_value.is_none() && prev_index.is_none() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "compare_and_swap needs prev_value or prev_index",
                0,
            ));
        }
        self.request(KeyRequest {
            value: Some(value.into()),
            ttl,
            prev_value: prev_value.map(String::from),
            prev_index: prev_index.unwrap_or(0),
            ..Self::put_request(key)
        })
        .await
    }

    pub async fn compare_and_delete(
        &self,
        key: &str,
        prev_value: Option<&str>,
        prev_index: Option<u64>,
    ) -> Result<KeyResponse> {
        if prev_value.is_none() && prev_index.is_none() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "compare_and_delete needs prev_value or prev_index",
                0,
            ));
        }
        self.request(KeyRequest {
            method: Method::Delete,
            key: key.to_string(),
            prev_value: prev_value.map(String::from),
            prev_index: prev_index.unwrap_or(0),
            ..Default::default()
        })
        .await
    }

    pub async fn delete(&self, key: &str) -> Result<KeyResponse> {
        self.request(KeyRequest {
            method: Method::Delete,
            key: key.to_string(),
            ..Default::default()
        })
        .await
    }

    pub async fn delete_dir(&self, key: &str, recursive: bool) -> Result<KeyResponse> {
        self.request(KeyRequest {
            method: Method::Delete,
            key: key.to_string(),
            dir: true,
            recursive,
            ..Default::default()
        })
        .await
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.get(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.code == ErrorCode::KeyNotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Wait for the next change of `key` (or below it, when recursive).
    pub async fn watch(&self, key: &str, o: WatchOptions) -> Result<KeyResponse> {
        self.request(KeyRequest {
            key: key.to_string(),
            wait: true,
            wait_index: o.wait_index,
            recursive: o.recursive,
            ..Default::default()
        })
        .await
    }

    /// Every change of `key` from `o.wait_index` on, until cancelled. No change is missed
    /// between events: each wait starts after the last event seen.
    pub fn watch_stream(&self, key: &str, o: WatchOptions) -> WatchStream {
        WatchStream {
            client: self.clone(),
            key: key.to_string(),
            options: o,
            cancel: WatchCanceller {
                inner: Arc::new((AtomicBool::new(false), Notify::new())),
            },
            pending: None,
        }
    }

    /// The member's and the cluster's etcd versions (GET /version).
    pub async fn version(&self) -> Result<Version> {
        match &*self.via {
            Via::Http(h) => h.get_json("/version").await,
            Via::Local(s) => Ok(s.version()),
        }
    }

    pub async fn machines(&self) -> Result<Vec<String>> {
        match &*self.via {
            Via::Http(h) => h.machines().await,
            Via::Local(s) => Ok(s.machines()),
        }
    }

    pub async fn members(&self) -> Result<Vec<Member>> {
        match &*self.via {
            Via::Http(h) => h
                .get_json::<serde_json::Value>("/v2/members")
                .await
                .and_then(|v| {
                    serde_json::from_value(v["members"].clone())
                        .map_err(|e| Error::new(ErrorCode::BadResponse, e.to_string(), 0))
                }),
            Via::Local(s) => Ok(s.members()),
        }
    }

    /// The current leader (errors during an election).
    pub async fn leader(&self) -> Result<Member> {
        match &*self.via {
            Via::Http(h) => h.get_json("/v2/members/leader").await,
            Via::Local(s) => s
                .leader()
                .ok_or_else(|| Error::new(ErrorCode::LeaderElect, "During election", 0)),
        }
    }

    pub async fn stats_store(&self) -> Result<StoreStats> {
        match &*self.via {
            Via::Http(h) => h.get_json("/v2/stats/store").await,
            Via::Local(s) => Ok(s.store_stats()),
        }
    }

    pub async fn stats_self(&self) -> Result<SelfStats> {
        match &*self.via {
            Via::Http(h) => h.get_json("/v2/stats/self").await,
            Via::Local(s) => Ok(s.self_stats()),
        }
    }

    pub async fn stats_leader(&self) -> Result<LeaderStats> {
        match &*self.via {
            Via::Http(h) => h.get_json("/v2/stats/leader").await,
            Via::Local(s) => s
                .leader_stats()
                .ok_or_else(|| Error::new(ErrorCode::NotLeader, "", 0)),
        }
    }
}

/// The lock and leader modules (/mod/v2/lock, /mod/v2/leader); see `crate::lock` for what
/// they guarantee, and why the lock index is a fencing token.
impl Client {
    const LOCK: &'static str = "/mod/v2/lock/";
    const LEADER: &'static str = "/mod/v2/leader/";

    /// Acquire lock `name`, waiting in order of arrival; answers the lock index. `ttl`:
    /// seconds the lock lasts unless renewed (0: until released). `value`: what a retrieve
    /// of the value answers, and a handle for renew/release (an acquire with the value of
    /// an earlier request takes that request over). `timeout`: seconds to wait at most
    /// (None: as long as it takes); when it passes, the error is `ErrorCode::Timeout`.
    pub async fn lock_acquire(
        &self,
        name: &str,
        ttl: u64,
        value: Option<&str>,
        timeout: Option<u64>,
    ) -> Result<u64> {
        match &*self.via {
            Via::Local(s) => {
                Locks::new(s)
                    .lock_acquire(name, value.unwrap_or(""), ttl, timeout)
                    .await
            }
            Via::Http(h) => {
                let mut form = vec![("ttl", ttl.to_string())];
                if let Some(v) = value {
                    form.push(("value", v.to_string()));
                }
                if let Some(t) = timeout {
                    form.push(("timeout", t.to_string()));
                }
                let text = h
                    .module(Method::Post, Self::LOCK, name, &form, true)
                    .await?;
                parse_index(&text)
            }
        }
    }

    /// The holder's lock index or value; empty when nobody holds lock `name`.
    pub async fn lock_retrieve(&self, name: &str, field: LockField) -> Result<String> {
        match &*self.via {
            Via::Local(s) => Locks::new(s).lock_retrieve(name, field).await,
            Via::Http(h) => {
                let field = match field {
                    LockField::Index => "index",
                    LockField::Value => "value",
                };
                let form = [("field", field.to_string())];
                h.module(Method::Get, Self::LOCK, name, &form, false).await
            }
        }
    }

    /// Give the request named by `holder` (held or waiting) a new TTL in seconds.
    pub async fn lock_renew(&self, name: &str, holder: LockHolder<'_>, ttl: u64) -> Result<()> {
        match &*self.via {
            Via::Local(s) => Locks::new(s).lock_renew(name, holder, ttl).await,
            Via::Http(h) => {
                let mut form = holder_form(holder);
                form.push(("ttl", ttl.to_string()));
                h.module(Method::Put, Self::LOCK, name, &form, false)
                    .await
                    .map(|_| ())
            }
        }
    }

    /// Release lock `name` (or withdraw a waiting request) named by `holder`.
    pub async fn lock_release(&self, name: &str, holder: LockHolder<'_>) -> Result<()> {
        match &*self.via {
            Via::Local(s) => Locks::new(s).lock_release(name, holder).await,
            Via::Http(h) => h
                .module(
                    Method::Delete,
                    Self::LOCK,
                    name,
                    &holder_form(holder),
                    false,
                )
                .await
                .map(|_| ()),
        }
    }

    /// Become or stay the leader of `name` as `leader`, for `ttl` seconds unless set again;
    /// waits while another leads (at most `timeout` seconds). Answers the lock index.
    pub async fn set_leader(
        &self,
        name: &str,
        leader: &str,
        ttl: u64,
        timeout: Option<u64>,
    ) -> Result<u64> {
        match &*self.via {
            Via::Local(s) => Locks::new(s).leader_set(name, leader, ttl, timeout).await,
            Via::Http(h) => {
                let mut form = vec![("name", leader.to_string()), ("ttl", ttl.to_string())];
                if let Some(t) = timeout {
                    form.push(("timeout", t.to_string()));
                }
                let text = h
                    .module(Method::Put, Self::LEADER, name, &form, true)
                    .await?;
                parse_index(&text)
            }
        }
    }

    /// The current leader's name of `name`; empty when there is none.
    pub async fn get_leader(&self, name: &str) -> Result<String> {
        match &*self.via {
            Via::Local(s) => Locks::new(s).leader_get(name).await,
            Via::Http(h) => h.module(Method::Get, Self::LEADER, name, &[], false).await,
        }
    }

    /// Give up the leadership of `name` held (or waited for) as `leader`.
    pub async fn delete_leader(&self, name: &str, leader: &str) -> Result<()> {
        match &*self.via {
            Via::Local(s) => Locks::new(s).leader_delete(name, leader).await,
            Via::Http(h) => {
                let form = [("name", leader.to_string())];
                h.module(Method::Delete, Self::LEADER, name, &form, false)
                    .await
                    .map(|_| ())
            }
        }
    }
}

fn holder_form(holder: LockHolder<'_>) -> Vec<(&'static str, String)> {
    match holder {
        LockHolder::Index(i) => vec![("index", i.to_string())],
        LockHolder::Value(v) => vec![("value", v.to_string())],
    }
}

fn parse_index(text: &str) -> Result<u64> {
    text.trim().parse().map_err(|_| {
        Error::new(
            ErrorCode::BadResponse,
            format!("expected a lock index, got {text:?}"),
            0,
        )
    })
}

/// Run a client call for at most `timeout` (None: no bound); when it runs out, the error is
/// `ErrorCode::Timeout`. For callers that bound one call (a watch, a poll) themselves.
pub async fn within<T>(
    timeout: Option<Duration>,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let Some(t) = timeout else {
        return call.await;
    };
    tokio::time::timeout(t, call).await.unwrap_or_else(|_| {
        Err(Error::new(
            ErrorCode::Timeout,
            format!("no answer within {t:?}"),
            0,
        ))
    })
}

/// Cancels a `WatchStream` from anywhere (another task or thread).
#[derive(Clone)]
pub struct WatchCanceller {
    inner: Arc<(AtomicBool, Notify)>,
}

impl WatchCanceller {
    pub fn cancel(&self) {
        self.inner.0.store(true, Ordering::SeqCst);
        self.inner.1.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.0.load(Ordering::SeqCst)
    }
}

/// A wait for the next change, kept while nobody polls it.
type PendingWatch =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<KeyResponse>> + Send>>;

/// A continuous watch. `next` gives every change in order; None once cancelled.
pub struct WatchStream {
    client: Client,
    key: String,
    options: WatchOptions,
    cancel: WatchCanceller,
    /// The wait in flight. A `next` given up by its caller (a poll with a timeout) leaves it
    /// here and the following `next` goes on with it: a wait from "now" (index 0) is not
    /// started again later, which would miss a change made in between.
    pending: Option<PendingWatch>,
}

impl WatchStream {
    pub fn canceller(&self) -> WatchCanceller {
        self.cancel.clone()
    }

    /// The next change. An error (e.g. 401, the index fell out of history) does not end the
    /// stream; the caller decides whether to go on. Dropping the returned future before it
    /// answers loses nothing: the next call resumes the same wait.
    pub async fn next(&mut self) -> Option<Result<KeyResponse>> {
        let notified = self.cancel.inner.1.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.cancel.is_cancelled() {
            self.pending = None;
            return None;
        }
        let watch = self.pending.get_or_insert_with(|| {
            let (client, key, options) = (self.client.clone(), self.key.clone(), self.options);
            Box::pin(async move { client.watch(&key, options).await })
        });
        tokio::select! {
            r = watch => {
                self.pending = None;
                if let Ok(resp) = &r {
                    self.options.wait_index = resp.event.node.modified_index + 1;
                }
                Some(r)
            }
            _ = notified => {
                self.pending = None;
                None
            }
        }
    }
}
