//! What a member's state machine and its parts tell the rest of the member, without locks
//! on the hot path: how far it has applied, whether it has TTL keys to expire, and whether
//! it still serves (stopped, removed from the cluster, or failed). Raft's own state (term,
//! leader, role) is `raft::RaftStatus`.

use crate::error::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::watch;

pub struct MemberStatus {
    /// Read on every request: an atomic, not the watch below.
    failed: AtomicBool,
    /// Why the member failed (the first cause reported), and a wake-up for whoever stops it.
    failure: Mutex<Option<String>>,
    failed_tx: watch::Sender<bool>,
    removed: AtomicBool,
    stopped: AtomicBool,
    has_ttl_keys: AtomicBool,
    applied_tx: watch::Sender<u64>,
    pub start_time: SystemTime,
}

impl MemberStatus {
    pub fn new(applied: u64) -> MemberStatus {
        MemberStatus {
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            failed_tx: watch::channel(false).0,
            removed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            has_ttl_keys: AtomicBool::new(false),
            applied_tx: watch::channel(applied).0,
            start_time: SystemTime::now(),
        }
    }

    /// A part the member cannot run without (raft driver, log writer, apply loop) died: the
    /// member must stop serving (fail-stop), never answer from a store that no longer moves.
    /// The first cause is kept.
    pub fn set_failed(&self, cause: impl Into<String>) {
        {
            let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            if f.is_none() {
                *f = Some(cause.into());
            }
        }
        self.failed.store(true, Ordering::Release);
        self.failed_tx.send_replace(true);
    }
    #[inline]
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
    /// Why the member failed; None while it has not.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    /// Run a part the member cannot live without (raft driver, apply loop) on `runtime`: if
    /// it panics, returns an error, or ends while the member still runs, the member fails.
    pub fn spawn_vital(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Handle,
        part: &'static str,
        task: impl std::future::Future<Output = Result<()>> + Send + 'static,
    ) {
        let handle = runtime.spawn(task);
        let status = self.clone();
        runtime.spawn(async move {
            let cause = match handle.await {
                Ok(Ok(())) if status.stopped() || status.removed() => return,
                Ok(Ok(())) => format!("the {part} ended"),
                Ok(Err(e)) => e.cause,
                Err(e) if e.is_panic() => format!(
                    "the {part} panicked: {}",
                    crate::error::panic_message(e.into_panic().as_ref())
                ),
                // Cancelled: the runtime is shutting down.
                Err(_) => return,
            };
            status.set_failed(cause);
        });
    }

    /// Wait until the member fails.
    pub async fn wait_failed(&self) {
        let _ = self.failed_tx.subscribe().wait_for(|f| *f).await;
    }

    /// The member was stopped (Node::stop): in-process clients get no more answers.
    pub fn set_stopped(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// This member was removed from the cluster: it serves no more.
    pub fn set_removed(&self) {
        self.removed.store(true, Ordering::Relaxed);
    }
    pub fn removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// Whether the store holds keys with a TTL (then the leader proposes its clock).
    pub fn has_ttl_keys(&self) -> bool {
        self.has_ttl_keys.load(Ordering::Relaxed)
    }
    pub fn set_has_ttl_keys(&self, v: bool) {
        self.has_ttl_keys.store(v, Ordering::Relaxed);
    }

    pub fn set_applied(&self, index: u64) {
        self.applied_tx.send_replace(index);
    }

    /// The last raft index applied.
    pub fn applied(&self) -> u64 {
        *self.applied_tx.borrow()
    }
    /// Wait until everything up to `index` is applied.
    pub async fn wait_applied(&self, index: u64) {
        let mut rx = self.applied_tx.subscribe();
        let _ = rx.wait_for(|a| *a >= index).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorCode};
    use std::time::{Duration, Instant};

    fn wait_failed(status: &MemberStatus) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(cause) = status.failure() {
                return Some(cause);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    #[test]
    fn a_vital_part_that_panics_fails_or_ends_fails_the_member() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let status = Arc::new(MemberStatus::new(0));
        status.spawn_vital(rt.handle(), "apply loop", async { panic!("boom") });
        let cause = wait_failed(&status).expect("the member failed");
        assert_eq!(cause, "the apply loop panicked: boom");

        let status = Arc::new(MemberStatus::new(0));
        status.spawn_vital(rt.handle(), "raft driver", async {
            Err(Error::new(
                ErrorCode::Io,
                "cannot persist the raft log: disk full",
                0,
            ))
        });
        assert_eq!(
            wait_failed(&status).as_deref(),
            Some("cannot persist the raft log: disk full")
        );

        let status = Arc::new(MemberStatus::new(0));
        status.spawn_vital(rt.handle(), "raft driver", async { Ok(()) });
        assert_eq!(
            wait_failed(&status).as_deref(),
            Some("the raft driver ended")
        );

        // Ending because the member was stopped is no failure.
        let status = Arc::new(MemberStatus::new(0));
        status.set_stopped();
        status.spawn_vital(rt.handle(), "raft driver", async { Ok(()) });
        std::thread::sleep(Duration::from_millis(100));
        assert!(status.failure().is_none());
    }
}
