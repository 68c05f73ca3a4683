//! Proposals wait for their result by request id (etcd's wait registry), not by position.

use crate::error::Result;
use crate::v2store::Event;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// What applying an entry produced: an event for keys-API requests, nothing for internal
/// ones, or the etcd error the store answered.
pub type Applied = Result<Option<Event>>;

#[derive(Default)]
pub struct Wait {
    waiters: Mutex<HashMap<u64, oneshot::Sender<Applied>>>,
}

impl Wait {
    pub fn register(&self, id: u64) -> oneshot::Receiver<Applied> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        rx
    }

    pub fn trigger(&self, id: u64, result: Applied) {
        let tx = self
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(result);
        }
    }

    pub fn cancel(&self, id: u64) {
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}
