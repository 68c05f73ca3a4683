//! Proposals wait for their result by request id (etcd's wait registry), not by position.

use crate::error::Result;
use crate::v2store::Event;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// What applying an entry produced: an event for keys-API requests, nothing for internal
/// ones, or the etcd error the store answered.
pub type Applied = Result<Option<Event>>;

/// The results of one applied batch of entries, by proposal id.
pub type AppliedBatch = Vec<(u64, Applied)>;

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

    /// Hand the results of applied batches to their proposers, run as a task on the
    /// member's runtime: the apply thread then wakes the runtime once per batch, and the
    /// proposers' tasks are woken from inside it, instead of one cross-thread wake-up per
    /// proposer (~90 us less per write on a 2-core machine). Ends when the sender is gone.
    pub async fn wake_proposers(
        self: Arc<Self>,
        mut batches: mpsc::UnboundedReceiver<AppliedBatch>,
    ) {
        while let Some(batch) = batches.recv().await {
            for (id, result) in batch {
                self.trigger(id, result);
            }
        }
    }
}
