//! /metrics: the member's numbers in the Prometheus text format, under etcd's metric names
//! so the dashboards and alerts written for etcd work unchanged.
//!
//! Most numbers already exist (raft's commit index, the v2 store's counters, the v3 store's
//! size) and are read when Prometheus scrapes, so recording them costs the write path
//! nothing. Only what has no other home is recorded as it happens: durations (WAL fsync,
//! backend commit, peer round trips), peer traffic in bytes and failed proposals.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The Content-Type etcd's /metrics answers with (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A peer in a label: etcd's `To` or `From` with the member id in hex.
pub type PeerLabel = Vec<(&'static str, String)>;
type HistogramFamily = Family<PeerLabel, Histogram, fn() -> Histogram>;

/// etcd's buckets for disk durations: 1 ms to 8 s.
fn disk_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// etcd's buckets for peer round trips: 0.1 ms to 0.8 s.
fn rtt_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 14))
}

/// What is recorded as it happens; shared by the parts that record it.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub wal_fsync: Histogram,
    pub backend_commit: Histogram,
    peer_sent: Family<PeerLabel, Counter>,
    peer_received: Family<PeerLabel, Counter>,
    peer_rtt: HistogramFamily,
    pub proposals_failed: Counter,
    pub slow_applies: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            wal_fsync: disk_buckets(),
            backend_commit: disk_buckets(),
            peer_sent: Family::default(),
            peer_received: Family::default(),
            peer_rtt: Family::new_with_constructor(rtt_buckets),
            proposals_failed: Counter::default(),
            slow_applies: Counter::default(),
        }
    }
}

fn peer(direction: &'static str, id: u64) -> PeerLabel {
    vec![(direction, crate::identity::format_id(id))]
}

impl Metrics {
    /// The counter of bytes sent to one peer: a stream holds it, so a send adds to an
    /// atomic and looks nothing up.
    pub fn peer_sent(&self, to: u64) -> Counter {
        self.peer_sent.get_or_create_owned(&peer("To", to))
    }
    pub fn peer_received(&self, from: u64) -> Counter {
        self.peer_received.get_or_create_owned(&peer("From", from))
    }
    pub fn observe_peer_rtt(&self, to: u64, seconds: f64) {
        self.peer_rtt
            .get_or_create(&peer("To", to))
            .observe(seconds);
    }
}

/// One scrape's worth of the numbers that live elsewhere.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    pub has_leader: bool,
    pub is_leader: bool,
    pub leader_changes: u64,
    pub committed_index: u64,
    pub applied_index: u64,
    pub pending_proposals: u64,
    pub server_version: String,
    pub cluster_version: String,
    pub member_id: u64,
    /// The v2 store's counters: (action, successes, failures) for reads and for writes.
    pub store_reads: Vec<(&'static str, u64, u64)>,
    pub store_writes: Vec<(&'static str, u64, u64)>,
    pub store_expires: u64,
    pub store_watchers: u64,
    pub db_size: u64,
    pub current_revision: i64,
    pub compact_revision: i64,
    pub keys: u64,
    pub leases: u64,
    pub v3_watchers: u64,
}

#[derive(Debug)]
struct SampleCollector(Sample);

/// Every gauge here counts something: integers, as etcd prints them.
fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

/// A counter family labelled by etcd's `action`.
fn by_action(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (&'static str, u64)>,
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (action, v) in values {
        ConstCounter::new(v).encode(m.encode_family(&[("action", action)])?)?;
    }
    Ok(())
}

fn info(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: (&str, &str),
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(1i64).encode(m.encode_family(&[label])?)
}

impl Collector for SampleCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.0;
        let b = i64::from;
        gauge(
            &mut e,
            "etcd_server_has_leader",
            "Whether or not a leader exists. 1 is existence, 0 is not.",
            b(s.has_leader),
        )?;
        gauge(
            &mut e,
            "etcd_server_is_leader",
            "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            b(s.is_leader),
        )?;
        counter(
            &mut e,
            "etcd_server_leader_changes_seen",
            "The number of leader changes seen.",
            s.leader_changes,
        )?;
        // etcd exports these two as gauges under counter-like names; so do we.
        gauge(
            &mut e,
            "etcd_server_proposals_committed_total",
            "The total number of consensus proposals committed.",
            s.committed_index as i64,
        )?;
        gauge(
            &mut e,
            "etcd_server_proposals_applied_total",
            "The total number of consensus proposals applied.",
            s.applied_index as i64,
        )?;
        gauge(
            &mut e,
            "etcd_server_proposals_pending",
            "The current number of pending proposals to commit.",
            s.pending_proposals as i64,
        )?;
        info(
            &mut e,
            "etcd_server_version",
            "Which version is running. 1 for 'server_version' label with current version.",
            ("server_version", &s.server_version),
        )?;
        info(
            &mut e,
            "etcd_cluster_version",
            "Which version is running. 1 for 'cluster_version' label with current cluster version",
            ("cluster_version", &s.cluster_version),
        )?;
        info(
            &mut e,
            "etcd_server_id",
            "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
            ("server_id", &crate::identity::format_id(s.member_id)),
        )?;
        by_action(
            &mut e,
            "etcd_debugging_store_reads",
            "Total number of reads action by (get/getRecursive), local to this member.",
            s.store_reads.iter().map(|(a, ok, fail)| (*a, ok + fail)),
        )?;
        by_action(
            &mut e,
            "etcd_debugging_store_reads_failed",
            "Failed read actions by (get/getRecursive), local to this member.",
            s.store_reads.iter().map(|(a, _, fail)| (*a, *fail)),
        )?;
        by_action(
            &mut e,
            "etcd_debugging_store_writes",
            "Total number of writes (e.g. set/compareAndDelete) seen by this member.",
            s.store_writes.iter().map(|(a, ok, fail)| (*a, ok + fail)),
        )?;
        by_action(
            &mut e,
            "etcd_debugging_store_writes_failed",
            "Failed write actions (e.g. set/compareAndDelete), seen by this member.",
            s.store_writes.iter().map(|(a, _, fail)| (*a, *fail)),
        )?;
        counter(
            &mut e,
            "etcd_debugging_store_expires",
            "Total number of expired keys.",
            s.store_expires,
        )?;
        gauge(
            &mut e,
            "etcd_debugging_store_watchers",
            "Count of currently active watchers.",
            s.store_watchers as i64,
        )?;
        gauge(
            &mut e,
            "etcd_mvcc_db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes.",
            s.db_size as i64,
        )?;
        gauge(
            &mut e,
            "etcd_debugging_mvcc_db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes.",
            s.db_size as i64,
        )?;
        gauge(
            &mut e,
            "etcd_debugging_mvcc_current_revision",
            "The current revision of store.",
            s.current_revision,
        )?;
        gauge(
            &mut e,
            "etcd_debugging_mvcc_compact_revision",
            "The revision of the last compaction in store.",
            s.compact_revision,
        )?;
        gauge(
            &mut e,
            "etcd_debugging_mvcc_keys_total",
            "Total number of keys.",
            s.keys as i64,
        )?;
        gauge(
            &mut e,
            "etcd_debugging_mvcc_watcher_total",
            "Total number of watchers.",
            s.v3_watchers as i64,
        )?;
        gauge(
            &mut e,
            "etcd_debugging_lease_total",
            "The number of leases granted and not revoked.",
            s.leases as i64,
        )?;
        Ok(())
    }
}

/// process_* as Prometheus's Go client exports them (etcd's come from there), from /proc.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    #[cfg(target_os = "linux")]
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let Ok(me) = procfs::process::Process::myself() else {
            return Ok(());
        };
        let tick = procfs::ticks_per_second() as f64;
        let page = procfs::page_size();
        if let Ok(stat) = me.stat() {
            let cpu = (stat.utime + stat.stime) as f64 / tick;
            let c = ConstCounter::new(cpu);
            c.encode(e.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                c.metric_type(),
            )?)?;
            gauge(
                &mut e,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stat.vsize as i64,
            )?;
            gauge(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                (stat.rss * page) as i64,
            )?;
            if let Ok(boot) = procfs::boot_time_secs() {
                let start = boot as f64 + stat.starttime as f64 / tick;
                let g = ConstGauge::new(start);
                g.encode(e.encode_descriptor(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    None,
                    g.metric_type(),
                )?)?;
            }
        }
        if let Ok(n) = me.fd_count() {
            gauge(
                &mut e,
                "process_open_fds",
                "Number of open file descriptors.",
                n as i64,
            )?;
        }
        if let Ok(limits) = me.limits() {
            if let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit {
                gauge(
                    &mut e,
                    "process_max_fds",
                    "Maximum number of open file descriptors.",
                    max as i64,
                )?;
            }
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    fn encode(&self, _: DescriptorEncoder) -> std::fmt::Result {
        Ok(())
    }
}

/// The text Prometheus scrapes.
pub fn render(m: &Metrics, sample: Sample) -> String {
    let mut r = Registry::default();
    r.register_collector(Box::new(SampleCollector(sample)));
    r.register(
        "etcd_server_proposals_failed",
        "The total number of failed proposals seen.",
        m.proposals_failed.clone(),
    );
    r.register(
        "etcd_server_slow_apply",
        "The total number of slow apply requests (likely overloaded from slow disk).",
        m.slow_applies.clone(),
    );
    r.register(
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL.",
        m.wal_fsync.clone(),
    );
    r.register(
        "etcd_disk_backend_commit_duration_seconds",
        "The latency distributions of commit called by backend.",
        m.backend_commit.clone(),
    );
    r.register(
        "etcd_network_peer_sent_bytes",
        "The total number of bytes sent to peers.",
        m.peer_sent.clone(),
    );
    r.register(
        "etcd_network_peer_received_bytes",
        "The total number of bytes received from peers.",
        m.peer_received.clone(),
    );
    r.register(
        "etcd_network_peer_round_trip_time_seconds",
        "Round-Trip-Time histogram between peers",
        m.peer_rtt.clone(),
    );
    r.register_collector(Box::new(ProcessCollector));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &r);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcds_names_types_and_labels() {
        let m = Metrics::default();
        m.wal_fsync.observe(0.003);
        m.peer_sent(0x8e9e05c52164694d).inc_by(10);
        m.observe_peer_rtt(2, 0.0005);
        m.proposals_failed.inc();
        let text = render(
            &m,
            Sample {
                has_leader: true,
                leader_changes: 2,
                committed_index: 9,
                store_writes: vec![("set", 3, 1)],
                server_version: "3.4.0".into(),
                ..Default::default()
            },
        );
        for line in [
            "# TYPE etcd_server_has_leader gauge",
            "etcd_server_has_leader 1",
            "etcd_server_is_leader 0",
            "# TYPE etcd_server_leader_changes_seen_total counter",
            "etcd_server_leader_changes_seen_total 2",
            "# TYPE etcd_server_proposals_committed_total gauge",
            "etcd_server_proposals_committed_total 9",
            "etcd_server_proposals_failed_total 1",
            "etcd_debugging_store_writes_total{action=\"set\"} 4",
            "etcd_debugging_store_writes_failed_total{action=\"set\"} 1",
            "etcd_server_version{server_version=\"3.4.0\"} 1",
            "# TYPE etcd_disk_wal_fsync_duration_seconds histogram",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.004\"} 1",
            "etcd_disk_wal_fsync_duration_seconds_count 1",
            "etcd_network_peer_sent_bytes_total{To=\"8e9e05c52164694d\"} 10",
            "etcd_network_peer_round_trip_time_seconds_count{To=\"2\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        #[cfg(target_os = "linux")]
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
    }
}
