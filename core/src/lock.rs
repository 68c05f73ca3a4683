//! The lock and leader modules of the v2 spec (/mod/v2/lock, /mod/v2/leader), built on the
//! replicated keys store the way etcd 0.4 built them: every acquire request is an in-order
//! key under the hidden directory `/_etcd/mod/lock/<name>`, with the requester's TTL. The
//! lowest index holds the lock; every other request watches the one just before it, so the
//! lock passes in order of arrival. Because the state is in the store, it survives a leader
//! change, and a holder that vanishes loses the lock when its key expires.
//!
//! The lock index is a fencing token: it is the etcd index at which the request was made, so
//! a later holder always has a larger one. A holder whose key expired (it did not renew in
//! time) has lost the lock even if it was never told; it must not act on the lock any more,
//! and whatever it guards should reject requests carrying an index lower than the highest
//! it has seen.

use crate::error::{Error, ErrorCode, Result};
use crate::request::{KeyRequest, Method};
use crate::server::{KeyResponse, KeyResult, Server};
use crate::v2store::{path, NodeExtern};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Where the lock module keeps its requests (hidden from listings of `/`).
pub const LOCK_DIR: &str = "/_etcd/mod/lock";

/// How a renew or release names the request it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockHolder<'a> {
    /// The lock index that acquire answered.
    Index(u64),
    /// The value given at acquire (the leader module uses the leader's name).
    Value(&'a str),
}

impl<'a> LockHolder<'a> {
    /// The request a renew or release names, from an index and a value of which exactly one
    /// must be given (an empty value counts as none). `cause` names the operation, as the
    /// spec's errors do ("Renew", "Release").
    pub fn from_parts(index: Option<u64>, value: Option<&'a str>, cause: &str) -> Result<Self> {
        match (index, value.filter(|v| !v.is_empty())) {
            (None, None) => Err(Error::new(ErrorCode::IndexOrValueRequired, cause, 0)),
            (Some(_), Some(_)) => Err(Error::new(ErrorCode::IndexValueMutex, cause, 0)),
            (Some(i), None) => Ok(LockHolder::Index(i)),
            (None, Some(v)) => Ok(LockHolder::Value(v)),
        }
    }
}

/// What a lock retrieve answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockField {
    Index,
    #[default]
    Value,
}

/// One request for a lock: its key's index and value.
struct LockRequest {
    index: u64,
    value: String,
}

/// The directory of lock `name`. The name is cleaned first, so `..` cannot leave the lock
/// module's directory.
fn dir_of(name: &str) -> String {
    format!("{LOCK_DIR}{}", path::clean(&format!("/{name}")))
}

/// The key of request `index`: an in-order key, named as etcd names them (20 digits).
fn request_key(name: &str, index: u64) -> String {
    format!("{}/{index:020}", dir_of(name))
}

fn check_name(name: &str) -> Result<()> {
    if path::clean(&format!("/{name}")) == "/" {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            "a lock needs a name",
            0,
        ));
    }
    Ok(())
}

/// A renew or release must say which request it means (`cause` is the operation).
fn check_holder(holder: LockHolder<'_>, cause: &str) -> Result<()> {
    match holder {
        LockHolder::Value("") => Err(Error::new(ErrorCode::IndexOrValueRequired, cause, 0)),
        _ => Ok(()),
    }
}

/// Errors a retry can get past: no leader yet, or raft did not answer in time.
fn is_transient(e: &Error) -> bool {
    matches!(
        e.code,
        ErrorCode::RaftInternal | ErrorCode::LeaderElect | ErrorCode::Timeout
    )
}

/// The next tick of a keepalive, or never when there is none.
async fn tick(keepalive: Option<&mut tokio::time::Interval>) {
    match keepalive {
        Some(k) => {
            k.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// etcd's "Key not found" for a lock request that does not exist (no cause, as the spec).
fn not_found(index: u64) -> Error {
    Error::new(ErrorCode::KeyNotFound, "", index)
}

fn event(r: KeyResult) -> Result<KeyResponse> {
    match r {
        KeyResult::Event(e) => Ok(e),
        KeyResult::Watch(_) => Err(Error::new(
            ErrorCode::RaftInternal,
            "a watch where an event was expected",
            0,
        )),
    }
}

/// Deletes a request's key if the acquire that made it is abandoned (timeout, error, or a
/// client that went away), so it never takes the lock for nobody.
struct AbandonGuard {
    server: Arc<Server>,
    key: Option<String>,
}

impl AbandonGuard {
    fn disarm(mut self) {
        self.key = None;
    }

    /// Withdraw the request now, before the failed acquire answers, so the caller's next
    /// operation cannot see it (Drop's spawned delete is only for a cancelled acquire).
    async fn withdraw(mut self) {
        if let Some(key) = self.key.take() {
            withdraw_request(&self.server, &key).await;
        }
    }
}

/// Delete an abandoned request's key, retrying past an election for a few seconds: a request
/// left behind would take the lock for nobody (for ever, with ttl 0).
async fn withdraw_request(server: &Server, key: &str) {
    for _ in 0..50 {
        match server.handle(delete_request(key)).await {
            Err(e) if is_transient(&e) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) if e.code != ErrorCode::KeyNotFound => {
                tracing::warn!(error = %e, key, "could not withdraw an abandoned lock request");
                return;
            }
            _ => return,
        }
    }
    tracing::warn!(
        key,
        "could not withdraw an abandoned lock request: no leader"
    );
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let server = self.server.clone();
        // Without a runtime the key still goes when its TTL runs out.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { withdraw_request(&server, &key).await });
        }
    }
}

fn delete_request(key: &str) -> KeyRequest {
    KeyRequest {
        method: Method::Delete,
        key: key.to_string(),
        ..Default::default()
    }
}

/// The lock and leader modules of one member, built on its keys API.
pub(crate) struct Locks<'a> {
    server: &'a Arc<Server>,
}

impl<'a> Locks<'a> {
    pub(crate) fn new(server: &'a Arc<Server>) -> Locks<'a> {
        Locks { server }
    }

    /// The requests for lock `name` in order of arrival (linearizable: read through raft).
    /// The store index of the read comes with them.
    async fn lock_requests(&self, name: &str) -> Result<(Vec<LockRequest>, u64)> {
        let listing = self
            .server
            .handle(KeyRequest {
                key: dir_of(name),
                sorted: true,
                quorum: true,
                ..Default::default()
            })
            .await;
        let resp = match listing {
            Ok(r) => event(r)?,
            Err(e) if e.code == ErrorCode::KeyNotFound => return Ok((Vec::new(), e.index)),
            Err(e) => return Err(e),
        };
        let mut requests: Vec<LockRequest> = resp
            .event
            .node
            .nodes
            .iter()
            .filter(|n| !n.dir)
            .filter_map(|n: &NodeExtern| {
                let index = n.key.rsplit('/').next()?.parse().ok()?;
                Some(LockRequest {
                    index,
                    value: n.value.clone().unwrap_or_default(),
                })
            })
            .collect();
        requests.sort_by_key(|r| r.index);
        Ok((requests, resp.etcd_index))
    }

    /// The index of the request named by `holder`, or etcd's 100.
    async fn find_lock_request(&self, name: &str, holder: LockHolder<'_>) -> Result<u64> {
        let (requests, etcd_index) = self.lock_requests(name).await?;
        requests
            .iter()
            .find(|r| match holder {
                LockHolder::Index(i) => r.index == i,
                LockHolder::Value(v) => r.value == v,
            })
            .map(|r| r.index)
            .ok_or_else(|| not_found(etcd_index))
    }

    /// Reset a request's TTL (0: no TTL) without waking its watchers or changing its value.
    async fn refresh_lock_request(&self, key: &str, value: &str, ttl: u64) -> Result<()> {
        let req = if ttl == 0 {
            // A refresh needs a TTL; making the key permanent is an update.
            KeyRequest {
                method: Method::Put,
                key: key.to_string(),
                value: Some(value.to_string()),
                prev_exist: Some(true),
                ..Default::default()
            }
        } else {
            KeyRequest {
                method: Method::Put,
                key: key.to_string(),
                ttl: Some(ttl),
                refresh: Some(true),
                prev_exist: Some(true),
                ..Default::default()
            }
        };
        self.server.handle(req).await.map(|_| ())
    }

    /// Acquire lock `name`, waiting behind earlier requests (FIFO) for at most `timeout`
    /// seconds (None: as long as it takes; 0: only if it is free now). Answers the lock
    /// index. `ttl` is how long the lock lasts once held unless renewed (0: until released);
    /// while waiting, the request's TTL is kept alive here. An acquire with a `value` that
    /// an earlier request still has takes over that request: if it holds the lock, its TTL
    /// is renewed and its index answered at once.
    pub async fn lock_acquire(
        &self,
        name: &str,
        value: &str,
        ttl: u64,
        timeout: Option<u64>,
    ) -> Result<u64> {
        check_name(name)?;
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t));
        if !value.is_empty() {
            let (requests, _) = self.lock_requests(name).await?;
            if let Some(pos) = requests.iter().position(|r| r.value == value) {
                let index = requests[pos].index;
                if pos == 0 {
                    self.refresh_lock_request(&request_key(name, index), value, ttl)
                        .await?;
                    return Ok(index);
                }
                self.wait_for_lock(name, index, value, ttl, deadline)
                    .await?;
                return Ok(index);
            }
        }
        let created = event(
            self.server
                .handle(KeyRequest {
                    method: Method::Post,
                    key: dir_of(name),
                    value: Some(value.to_string()),
                    ttl: (ttl > 0).then_some(ttl),
                    ..Default::default()
                })
                .await?,
        )?;
        let index = created.event.node.created_index;
        let guard = AbandonGuard {
            server: self.server.clone(),
            key: Some(created.event.node.key.clone()),
        };
        match self.wait_for_lock(name, index, value, ttl, deadline).await {
            Ok(()) => {
                guard.disarm();
                Ok(index)
            }
            Err(e) => {
                guard.withdraw().await;
                Err(e)
            }
        }
    }

    /// Wait until request `index` is the first of lock `name`, watching the request just
    /// before it and keeping this one's TTL alive meanwhile.
    async fn wait_for_lock(
        &self,
        name: &str,
        index: u64,
        value: &str,
        ttl: u64,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let own_key = request_key(name, index);
        let timed_out = || {
            Error::new(
                ErrorCode::Timeout,
                "Acquire: the lock was not free within the timeout",
                0,
            )
        };
        let until_deadline = || async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        // Half the TTL, so one lost refresh still leaves time for the next.
        let mut keepalive = (ttl > 0).then(|| {
            let period = Duration::from_millis((ttl * 500).max(200));
            let mut i = tokio::time::interval_at(Instant::now() + period, period);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        loop {
            // Not raced against the deadline: with timeout 0 a free lock is still granted.
            // The read itself is bounded by the member's request timeout.
            let (requests, etcd_index) = match self.lock_requests(name).await {
                Ok(l) => l,
                Err(e) if is_transient(&e) => {
                    if deadline.is_some_and(|d| d <= Instant::now()) {
                        return Err(timed_out());
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        _ = until_deadline() => return Err(timed_out()),
                    }
                }
                Err(e) => return Err(e),
            };
            if !requests.iter().any(|r| r.index == index) {
                // Our request expired or was released while waiting: it cannot be granted.
                return Err(Error::new(
                    ErrorCode::KeyNotFound,
                    format!("Acquire: lock request {index} is gone"),
                    etcd_index,
                ));
            }
            let Some(prev) = requests.iter().rev().find(|r| r.index < index) else {
                return Ok(());
            };
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Err(timed_out());
            }
            let watch = self.next_change(request_key(name, prev.index), etcd_index + 1);
            tokio::pin!(watch);
            loop {
                tokio::select! {
                    r = &mut watch => {
                        if let Err(e) = r {
                            if !is_transient(&e) && e.code != ErrorCode::EventIndexCleared {
                                return Err(e);
                            }
                        }
                        break;
                    }
                    _ = tick(keepalive.as_mut()) => {
                        if let Err(e) = self.refresh_lock_request(&own_key, value, ttl).await {
                            if !is_transient(&e) {
                                tracing::debug!(error = %e, key = %own_key, "lock keepalive failed");
                            }
                        }
                    }
                    _ = until_deadline() => return Err(timed_out()),
                }
            }
        }
    }

    /// The first change of `key` from store index `since` on.
    async fn next_change(&self, key: String, since: u64) -> Result<()> {
        let r = self
            .server
            .handle(KeyRequest {
                key,
                wait: true,
                wait_index: since,
                ..Default::default()
            })
            .await?;
        if let KeyResult::Watch(mut w) = r {
            w.next().await;
        }
        Ok(())
    }

    /// Give the request named by `holder` a new TTL (0: none), whether it holds the lock or
    /// waits for it.
    pub async fn lock_renew(&self, name: &str, holder: LockHolder<'_>, ttl: u64) -> Result<()> {
        check_name(name)?;
        check_holder(holder, "Renew")?;
        let index = match holder {
            LockHolder::Index(i) => i,
            LockHolder::Value(_) => self.find_lock_request(name, holder).await?,
        };
        let key = request_key(name, index);
        let value = match holder {
            LockHolder::Value(v) => v.to_string(),
            // Keep the value as it is when it has to be restated (ttl 0).
            LockHolder::Index(_) if ttl == 0 => self
                .lock_requests(name)
                .await?
                .0
                .into_iter()
                .find(|r| r.index == index)
                .map(|r| r.value)
                .unwrap_or_default(),
            LockHolder::Index(_) => String::new(),
        };
        self.refresh_lock_request(&key, &value, ttl)
            .await
            .map_err(|e| match e.code {
                ErrorCode::KeyNotFound => not_found(e.index),
                _ => e,
            })
    }

    /// Release the lock (or withdraw a waiting request) named by `holder`.
    pub async fn lock_release(&self, name: &str, holder: LockHolder<'_>) -> Result<()> {
        check_name(name)?;
        check_holder(holder, "Release")?;
        let index = match holder {
            LockHolder::Index(i) => i,
            LockHolder::Value(_) => self.find_lock_request(name, holder).await?,
        };
        match self
            .server
            .handle(delete_request(&request_key(name, index)))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::KeyNotFound => Err(not_found(e.index)),
            Err(e) => Err(e),
        }
    }

    /// The current holder's index or value; empty when nobody holds the lock.
    pub async fn lock_retrieve(&self, name: &str, field: LockField) -> Result<String> {
        check_name(name)?;
        let (requests, _) = self.lock_requests(name).await?;
        Ok(match (requests.into_iter().next(), field) {
            (None, _) => String::new(),
            (Some(r), LockField::Index) => r.index.to_string(),
            (Some(r), LockField::Value) => r.value,
        })
    }

    /// Become (or stay) the leader of `name` as `leader`: the lock `name` acquired with the
    /// leader's name as its value. Waits while someone else leads. Answers the lock index.
    pub async fn leader_set(
        &self,
        name: &str,
        leader: &str,
        ttl: u64,
        timeout: Option<u64>,
    ) -> Result<u64> {
        if leader.is_empty() {
            return Err(Error::new(ErrorCode::NameRequired, "Set", 0));
        }
        self.lock_acquire(name, leader, ttl, timeout).await
    }

    /// The name of the current leader of `name`; empty when there is none.
    pub async fn leader_get(&self, name: &str) -> Result<String> {
        self.lock_retrieve(name, LockField::Value).await
    }

    /// Give up leadership of `name` (or the wait for it) as `leader`.
    pub async fn leader_delete(&self, name: &str, leader: &str) -> Result<()> {
        if leader.is_empty() {
            return Err(Error::new(ErrorCode::NameRequired, "Set", 0));
        }
        self.lock_release(name, LockHolder::Value(leader)).await
    }
}
