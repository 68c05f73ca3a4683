//! What /v2/stats/self and /v2/stats/leader report about raft traffic, counted by the raft
//! thread as messages leave and arrive.

use crate::metrics::Metrics;
use raft::eraftpb::{Message, MessageType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Append requests per second and bytes per second over the last second, in ten buckets.
#[derive(Debug)]
struct RateWindow {
    buckets: [(u64, u64); 10],
    current: usize,
    bucket_start: Instant,
}

const BUCKET: Duration = Duration::from_millis(100);

impl RateWindow {
    fn new() -> RateWindow {
        RateWindow {
            buckets: [(0, 0); 10],
            current: 0,
            bucket_start: Instant::now(),
        }
    }

    fn advance(&mut self) {
        let elapsed = self.bucket_start.elapsed();
        let steps = (elapsed.as_millis() / BUCKET.as_millis()) as usize;
        for _ in 0..steps.min(self.buckets.len()) {
            self.current = (self.current + 1) % self.buckets.len();
            self.buckets[self.current] = (0, 0);
        }
        if steps > 0 {
            self.bucket_start += BUCKET * steps as u32;
        }
    }

    fn record(&mut self, bytes: u64) {
        self.advance();
        let b = &mut self.buckets[self.current];
        b.0 += 1;
        b.1 += bytes;
    }

    /// (packages per second, bytes per second).
    fn rates(&mut self) -> (f64, f64) {
        self.advance();
        let (n, b) = self
            .buckets
            .iter()
            .fold((0, 0), |(n, b), (bn, bb)| (n + bn, b + bb));
        (n as f64, b as f64)
    }
}

/// One follower as the leader sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowerStats {
    pub success: u64,
    pub fail: u64,
    /// Heartbeat round trips in milliseconds.
    pub latency_current: f64,
    pub latency_min: f64,
    pub latency_max: f64,
    latency_sum: f64,
    latency_sum_sq: f64,
    latency_count: u64,
}

impl FollowerStats {
    fn record_latency(&mut self, ms: f64) {
        if self.latency_count == 0 || ms < self.latency_min {
            self.latency_min = ms;
        }
        self.latency_max = self.latency_max.max(ms);
        self.latency_current = ms;
        self.latency_sum += ms;
        self.latency_sum_sq += ms * ms;
        self.latency_count += 1;
    }

    pub fn latency_average(&self) -> f64 {
        if self.latency_count == 0 {
            0.0
        } else {
            self.latency_sum / self.latency_count as f64
        }
    }

    pub fn latency_stddev(&self) -> f64 {
        if self.latency_count == 0 {
            return 0.0;
        }
        let avg = self.latency_average();
        (self.latency_sum_sq / self.latency_count as f64 - avg * avg)
            .max(0.0)
            .sqrt()
    }
}

/// Append traffic of this member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendCounts {
    pub send_append: u64,
    pub recv_append: u64,
    pub send_pkg_rate: f64,
    pub send_bandwidth_rate: f64,
    pub recv_pkg_rate: f64,
    pub recv_bandwidth_rate: f64,
}

struct Inner {
    followers: HashMap<u64, FollowerStats>,
    heartbeat_sent: HashMap<u64, Instant>,
    send_append: u64,
    recv_append: u64,
    send_rate: RateWindow,
    recv_rate: RateWindow,
}

pub struct PeerStats {
    inner: Mutex<Inner>,
    /// Heartbeat round trips also go to etcd_network_peer_round_trip_time_seconds.
    metrics: Arc<Metrics>,
}

impl Default for PeerStats {
    fn default() -> Self {
        PeerStats::new(Arc::default())
    }
}

impl PeerStats {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        PeerStats {
            metrics,
            inner: Mutex::new(Inner {
                followers: HashMap::new(),
                heartbeat_sent: HashMap::new(),
                send_append: 0,
                recv_append: 0,
                send_rate: RateWindow::new(),
                recv_rate: RateWindow::new(),
            }),
        }
    }
}

fn entry_bytes(m: &Message) -> u64 {
    m.entries.iter().map(|e| e.data.len() as u64 + 24).sum()
}

impl PeerStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn on_send(&self, msgs: &[Message]) {
        if msgs.is_empty() {
            return;
        }
        let mut s = self.lock();
        let now = Instant::now();
        for m in msgs {
            match m.get_msg_type() {
                MessageType::MsgAppend => {
                    s.send_append += 1;
                    s.send_rate.record(entry_bytes(m));
                }
                MessageType::MsgHeartbeat => {
                    s.heartbeat_sent.entry(m.to).or_insert(now);
                }
                _ => {}
            }
        }
    }

    pub fn on_recv(&self, m: &Message) {
        let mut s = self.lock();
        match m.get_msg_type() {
            MessageType::MsgAppend => {
                s.recv_append += 1;
                s.recv_rate.record(entry_bytes(m));
            }
            MessageType::MsgHeartbeatResponse => {
                let sent = s.heartbeat_sent.remove(&m.from);
                let f = s.followers.entry(m.from).or_default();
                f.success += 1;
                if let Some(sent) = sent {
                    let rtt = sent.elapsed().as_secs_f64();
                    f.record_latency(rtt * 1000.0);
                    self.metrics.observe_peer_rtt(m.from, rtt);
                }
            }
            MessageType::MsgAppendResponse => {
                let f = s.followers.entry(m.from).or_default();
                if m.reject {
                    f.fail += 1;
                } else {
                    f.success += 1;
                }
            }
            _ => {}
        }
    }

    pub fn on_unreachable(&self, id: u64) {
        let mut s = self.lock();
        s.heartbeat_sent.remove(&id);
        s.followers.entry(id).or_default().fail += 1;
    }

    /// The followers among `members` (the leader itself excluded).
    pub fn followers(&self, members: &[u64], me: u64) -> Vec<(u64, FollowerStats)> {
        let s = self.lock();
        members
            .iter()
            .filter(|id| **id != me)
            .map(|id| (*id, s.followers.get(id).cloned().unwrap_or_default()))
            .collect()
    }

    pub fn append_counts(&self) -> AppendCounts {
        let mut s = self.lock();
        let (send_pkg_rate, send_bandwidth_rate) = s.send_rate.rates();
        let (recv_pkg_rate, recv_bandwidth_rate) = s.recv_rate.rates();
        AppendCounts {
            send_append: s.send_append,
            recv_append: s.recv_append,
            send_pkg_rate,
            send_bandwidth_rate,
            recv_pkg_rate,
            recv_bandwidth_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_round_trips_become_latency() {
        let s = PeerStats::default();
        let hb = Message {
            msg_type: MessageType::MsgHeartbeat,
            to: 2,
            ..Default::default()
        };
        s.on_send(std::slice::from_ref(&hb));
        std::thread::sleep(Duration::from_millis(2));
        s.on_recv(&Message {
            msg_type: MessageType::MsgHeartbeatResponse,
            from: 2,
            ..Default::default()
        });
        s.on_unreachable(3);
        let f = s.followers(&[1, 2, 3], 1);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].1.success, f[0].1.fail), (1, 0));
        assert!(f[0].1.latency_current >= 2.0, "{:?}", f[0].1);
        assert_eq!(f[0].1.latency_min, f[0].1.latency_max);
        assert_eq!((f[1].1.success, f[1].1.fail), (0, 1));
        let app = Message {
            msg_type: MessageType::MsgAppend,
            to: 2,
            ..Default::default()
        };
        s.on_send(&[app.clone(), app]);
        let c = s.append_counts();
        assert_eq!((c.send_append, c.recv_append), (2, 0));
        assert_eq!(c.send_pkg_rate, 2.0);
    }
}
