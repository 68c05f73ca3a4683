//! etcdrs-core: one etcd member — raft driver, durable log, v2 store, HTTP API — and the
//! client and embedding API that the server binary, the C ABI and the bindings build on.

pub mod error;
pub mod member;
pub mod request;
pub mod storage;
pub mod time;
pub mod v2store;

pub use error::{Error, ErrorCode, Result};
