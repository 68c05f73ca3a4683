//! Auto-compaction (etcd's --auto-compaction-mode and --auto-compaction-retention): the
//! leader compacts the v3 store's history behind a retention, through raft as a client's
//! Compact goes, so every member compacts at the same revision.

use super::Server;
use crate::config::AutoCompaction;
use crate::pb::etcdserverpb::CompactionRequest;
use crate::raft::RaftRole;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often revision mode looks (etcd's).
const REVISION_CHECK: Duration = Duration::from_secs(5 * 60);

pub(crate) struct Compactor {
    policy: AutoCompaction,
    /// Periodic mode: the store's revision at past ticks, oldest first.
    samples: Mutex<VecDeque<(Instant, i64)>>,
}

impl Compactor {
    pub fn new(policy: AutoCompaction) -> Compactor {
        Compactor {
            policy,
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// How often the member looks; None when auto-compaction is off.
    pub fn period(&self) -> Option<Duration> {
        match self.policy {
            AutoCompaction::Off => None,
            AutoCompaction::Revision(_) => Some(REVISION_CHECK),
            // Ten looks per retention (at most an hour apart), so history is kept for
            // between one and 1.1 retentions.
            AutoCompaction::Periodic(retention) => Some(
                (retention.min(Duration::from_secs(3600)) / 10).max(Duration::from_millis(100)),
            ),
        }
    }

    /// The revision to compact to now, given the store's revision.
    fn target(&self, current: i64) -> Option<i64> {
        match self.policy {
            AutoCompaction::Off => None,
            AutoCompaction::Revision(keep) => Some(current - keep),
            AutoCompaction::Periodic(retention) => {
                let now = Instant::now();
                let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
                samples.push_back((now, current));
                // The newest revision that is at least `retention` old.
                let mut target = None;
                while let Some((at, rev)) = samples.front().copied() {
                    if now.duration_since(at) < retention {
                        break;
                    }
                    target = Some(rev);
                    samples.pop_front();
                }
                target
            }
        }
    }
}

impl Server {
    /// One look of the auto-compactor: the leader proposes a compaction when history older
    /// than the retention is still there. Every member samples; only the leader proposes.
    pub(crate) fn auto_compact(self: &Arc<Self>) {
        let (current, compacted) = {
            let m = self.read_mvcc();
            (
                m.current_revision(),
                crate::mvcc::ReadView::compacted_revision(&*m),
            )
        };
        let Some(target) = self.compactor.target(current) else {
            return;
        };
        if target <= compacted || self.raft.role() != RaftRole::Leader {
            return;
        }
        let server = self.clone();
        tokio::spawn(async move {
            let r = server
                .compact(CompactionRequest {
                    revision: target,
                    physical: false,
                })
                .await;
            match r {
                Ok(_) => tracing::info!(revision = target, "auto-compacted the v3 store"),
                Err(e) => tracing::warn!(revision = target, error = %e, "auto-compaction failed"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_mode_keeps_that_many_revisions() {
        let c = Compactor::new(AutoCompaction::Revision(100));
        assert_eq!(c.period(), Some(REVISION_CHECK));
        assert_eq!(c.target(1000), Some(900));
        assert_eq!(Compactor::new(AutoCompaction::Off).period(), None);
    }

    #[test]
    fn periodic_mode_compacts_to_the_newest_revision_a_retention_old() {
        let c = Compactor::new(AutoCompaction::Periodic(Duration::from_millis(200)));
        assert_eq!(c.period(), Some(Duration::from_millis(100)));
        assert_eq!(c.target(10), None, "nothing is a retention old yet");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(c.target(20), None);
        std::thread::sleep(Duration::from_millis(120));
        // The first sample (revision 10) is now more than 200 ms old, the second not.
        assert_eq!(c.target(30), Some(10));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(c.target(40), Some(30));
    }
}
