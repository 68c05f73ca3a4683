//! etcdrs-core: one etcd member — raft driver, durable log, v2 store, HTTP API — and the
//! client and embedding API that the server binary, the C ABI and the bindings build on.
//!
//! Layers, each using only the ones below it: `storage` (WAL, snapshots) → `raft` (the
//! consensus driver and peer transport) → `v2store` + `membership` + `apply` (the state
//! machine) → `server` (what a member answers; `lock` builds the lock and leader modules on
//! it) → `api` (HTTP, client and peer) and `client` (HTTP or in-process) → `node`
//! (embedding).

pub mod api;
pub mod apply;
pub mod client;
pub mod config;
pub mod error;
pub mod lock;
pub mod member;
pub mod membership;
pub mod node;
pub mod raft;
pub mod request;
pub mod server;
pub mod status;
pub mod storage;
pub mod time;
pub mod v2store;
mod wait;

pub use client::{Client, GetOptions, WatchCanceller, WatchOptions, WatchStream};
pub use config::{ClusterState, Config};
pub use error::{Error, ErrorCode, Result};
pub use lock::{LockField, LockHolder};
pub use node::Node;
pub use server::{KeyResponse, LeaderStats, SelfStats};
pub use v2store::{Action, Event, NodeExtern, StoreStats};
