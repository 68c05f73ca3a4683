//! etcdrs-core: one etcd member — raft driver, durable log, v2 store, HTTP API — and the
//! client and embedding API that the server binary, the C ABI and the bindings build on.
//!
//! Layers, each using only the ones below it:
//! - `storage`: the write-ahead log and snapshots in the data dir.
//! - `raft`: the consensus driver around raft-rs. It sends messages through a `Transport`
//!   it is given and hands committed entries out (`raft::ToApply`); it knows nothing of
//!   what they mean.
//! - `v2store`, `membership` and `apply`: the state machine. `status` is what the member
//!   tells its parts (applied index, stopped, removed, failed); `identity` holds member and
//!   cluster ids, which every layer names.
//! - `server`: what a member answers, for HTTP and in-process clients alike; `lock` builds
//!   the lock and leader modules on it.
//! - `api` (the client HTTP API), `peer` (the peer protocol, both halves: the transport
//!   that sends raft messages and the peer API that receives them), both served by `http`;
//!   `client` (HTTP or in-process).
//! - `node`: a member in the calling process; `blocking` runs client calls for callers
//!   without an async runtime (the C ABI and the bindings).
//!
//! Only what those callers need is public, re-exported here; the layers are crate-private.

mod api;
mod apply;
mod auth;
mod backup;
pub mod blocking;
mod client;
mod config;
mod error;
#[cfg(test)]
mod fuzz;
mod go_json;
mod grpc;
mod http;
mod identity;
pub mod jwt;
mod lock;
mod membership;
mod metrics;
mod mvcc;
mod node;
pub mod pb;
mod peer;
mod raft;
mod recipes;
mod request;
mod server;
pub mod sigpipe;
mod status;
mod storage;
mod time;
mod tls;
mod v2auth;
mod v2store;
mod wait;

pub use backup::{backup, snapshot_restore, snapshot_status, Restored, SnapshotStatus};
pub use client::{
    within, Client, ClientTls, Credentials, GetOptions, V3Observe, V3Watch, WatchCanceller,
    WatchOptions, WatchStream, V3,
};
pub use config::{
    split_urls, AutoCompaction, AutoCompactionMode, ClusterState, Config, DEFAULT_SNAPSHOT_COUNT,
};
pub use error::{grpc_code, panic_message, Error, ErrorCode, Result, V3Error};
pub use identity::{format_id, member_id, Member};
pub use lock::{LockField, LockHolder};
pub use node::Node;
pub use request::{KeyRequest, Method};
pub use server::{KeyResponse, LeaderStats, SelfStats, Version};
pub use tls::TlsFiles;
pub use v2store::{Action, Event, NodeExtern, StoreStats};
