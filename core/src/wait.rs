//! Proposals wait for their result by request id (etcd's wait registry), not by position.

use crate::apply::v3::V3Response;
use crate::error::{Result, V3Error};
use crate::v2store::Event;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// What applying an entry produced: an event for keys-API requests, nothing for internal
/// ones, or the etcd error the store answered.
pub type Applied = Result<Option<Event>>;

/// What a proposer learns when its entry is applied.
#[derive(Debug)]
pub enum Outcome {
    V2(Applied),
    V3(std::result::Result<V3Response, V3Error>),
}

impl Outcome {
    /// The result of a v2 (or internal) request.
    pub fn into_v2(self) -> Applied {
        match self {
            Outcome::V2(r) => r,
            Outcome::V3(_) => Err(crate::error::Error::new(
                crate::error::ErrorCode::RaftInternal,
                "a v3 result for a v2 request",
                0,
            )),
        }
    }
}

#[derive(Default)]
pub struct Wait {
    waiters: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
}

impl Wait {
    pub fn register(&self, id: u64) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        rx
    }

    pub fn trigger(&self, id: u64, result: Outcome) {
        let tx = self
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(result);
        }
    }

    /// Proposals waiting for their entry to be applied.
    pub fn pending(&self) -> u64 {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).len() as u64
    }

    pub fn cancel(&self, id: u64) {
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}
