//! A member's configuration: etcd's flags, with etcd's defaults.

use crate::error::{Error, ErrorCode, Result};
use std::path::PathBuf;

pub use crate::tls::TlsFiles;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterState {
    #[default]
    New,
    Existing,
}

impl std::fmt::Display for ClusterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        })
    }
}

impl ClusterState {
    /// etcd's `--initial-cluster-state` value: `new` or `existing`.
    pub fn parse(s: &str) -> Result<ClusterState> {
        match s {
            "new" => Ok(ClusterState::New),
            "existing" => Ok(ClusterState::Existing),
            other => Err(Error::new(
                ErrorCode::InvalidConfig,
                format!("--initial-cluster-state must be new or existing, not {other:?}"),
                0,
            )),
        }
    }
}

/// A comma-separated URL list as etcd's flags take it.
pub fn split_urls(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect()
}

#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen_client_urls: Vec<String>,
    /// Client URLs told to others (/v2/machines, /v2/members); defaults to the listen URLs.
    pub advertise_client_urls: Vec<String>,
    pub listen_peer_urls: Vec<String>,
    /// etcd's --listen-metrics-urls: more URLs that answer only /metrics and /health.
    pub listen_metrics_urls: Vec<String>,
    pub initial_advertise_peer_urls: Vec<String>,
    /// `name=peerURL,...`; empty means this member alone (`name=initial-advertise-peer-urls`).
    pub initial_cluster: String,
    pub initial_cluster_state: ClusterState,
    pub initial_cluster_token: String,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub snapshot_count: u64,
    /// How long a write waits for its entry to apply before answering a timeout.
    pub request_timeout_ms: u64,
    /// How long an HTTP connection (client or peer) may take to send a request's headers,
    /// and may stay idle between requests. A long-poll watch in progress is not idle.
    pub header_read_timeout_ms: u64,
    /// etcd's --max-request-bytes: the largest v3 request a client may send (1.5 MiB).
    pub max_request_bytes: u64,
    /// etcd's --max-txn-ops: the most operations in one v3 txn.
    pub max_txn_ops: u64,
    /// etcd's --experimental-watch-progress-notify-interval: how often watchers that asked
    /// for progress notifications hear the store's revision.
    pub watch_progress_notify_interval_ms: u64,
    /// etcd's --quota-backend-bytes: past this v3 store size the NOSPACE alarm is raised
    /// and writes refused until space is freed. 0: etcd's default (2 GiB); negative: none.
    pub quota_backend_bytes: i64,
    /// etcd's --auto-compaction-mode: `periodic` (keep a span of time) or `revision` (keep
    /// a number of revisions).
    pub auto_compaction_mode: AutoCompactionMode,
    /// etcd's --auto-compaction-retention: "0" is off; periodic takes a duration ("30m",
    /// "1h", or a number of hours), revision a number of revisions.
    pub auto_compaction_retention: String,
    /// etcd's --force-new-cluster: start this member's data as a cluster of one (disaster
    /// recovery, or a restore from `etcdrs backup`).
    pub force_new_cluster: bool,
    /// TLS for https client (and metrics) URLs: --cert-file, --key-file, --trusted-ca-file,
    /// --client-cert-auth, --auto-tls.
    pub client_tls: TlsFiles,
    /// TLS for https peer URLs, both as server and as client of the other members:
    /// --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth,
    /// --peer-auto-tls.
    pub peer_tls: TlsFiles,
    /// etcd's --cipher-suites (Go's names); empty: rustls's defaults.
    pub cipher_suites: Vec<String>,
    /// Connections one client (remote IP) may hold on the client port (0: no cap).
    pub max_connections_per_client: u64,
    /// Long polls one client may hold: v2 waits and v3 watch, keep-alive and observe
    /// streams (0: no cap).
    pub max_long_polls_per_client: u64,
    /// etcd's --bcrypt-cost: the work of each password hash (4 to 31; etcd's default 10).
    pub bcrypt_cost: u32,
    /// etcd's --auth-token-ttl: seconds an unused v3 simple token lives.
    pub auth_token_ttl_secs: u64,
    /// etcd's --auth-token: simple tokens (None) or JWT tokens with these options.
    pub auth_token_jwt: Option<crate::jwt::JwtOptions>,
    /// etcd's --host-whitelist: the Host names plain-HTTP requests may name (DNS rebinding
    /// protection); empty or `*`: any.
    pub host_whitelist: Vec<String>,
    /// etcd's --cors: the origins answered with CORS headers; empty or `*`: any.
    pub cors: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoCompactionMode {
    #[default]
    Periodic,
    Revision,
}

impl AutoCompactionMode {
    pub fn parse(s: &str) -> Result<AutoCompactionMode> {
        match s {
            "periodic" => Ok(AutoCompactionMode::Periodic),
            "revision" => Ok(AutoCompactionMode::Revision),
            other => Err(Error::new(
                ErrorCode::InvalidConfig,
                format!("unknown auto-compaction mode {other:?} (periodic or revision)"),
                0,
            )),
        }
    }
}

/// What --auto-compaction-mode and --auto-compaction-retention ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    Off,
    /// Keep this much history.
    Periodic(std::time::Duration),
    /// Keep this many revisions.
    Revision(i64),
}

/// etcd's DefaultQuotaBytes.
pub const DEFAULT_QUOTA_BACKEND_BYTES: u64 = 2 << 30;

impl Config {
    /// The v3 store's quota in bytes; None for no quota.
    pub fn quota_backend_bytes(&self) -> Option<u64> {
        match self.quota_backend_bytes {
            q if q < 0 => None,
            0 => Some(DEFAULT_QUOTA_BACKEND_BYTES),
            q => Some(q as u64),
        }
    }

    pub fn auto_compaction(&self) -> Result<AutoCompaction> {
        let r = self.auto_compaction_retention.trim();
        let bad = || {
            Error::new(
                ErrorCode::InvalidConfig,
                format!("--auto-compaction-retention {r:?} is not a retention"),
                0,
            )
        };
        if r.is_empty() || r == "0" {
            return Ok(AutoCompaction::Off);
        }
        Ok(match self.auto_compaction_mode {
            AutoCompactionMode::Revision => {
                AutoCompaction::Revision(r.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(bad)?)
            }
            // A bare number is hours, as etcd reads it.
            AutoCompactionMode::Periodic => AutoCompaction::Periodic(match r.parse::<u64>() {
                Ok(hours) => std::time::Duration::from_secs(hours * 3600),
                Err(_) => humantime::parse_duration(r).map_err(|_| bad())?,
            }),
        })
    }
}

/// etcd 3.4's --snapshot-count: entries applied between snapshots of the whole store.
pub const DEFAULT_SNAPSHOT_COUNT: u64 = 100_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "default".into(),
            data_dir: PathBuf::from("default.etcd"),
            listen_client_urls: vec![
                "http://127.0.0.1:2379".into(),
                "http://127.0.0.1:4001".into(),
            ],
            advertise_client_urls: Vec::new(),
            listen_peer_urls: vec!["http://127.0.0.1:2380".into()],
            listen_metrics_urls: Vec::new(),
            initial_advertise_peer_urls: vec!["http://127.0.0.1:2380".into()],
            initial_cluster: String::new(),
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: "etcd-cluster".into(),
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
            snapshot_count: DEFAULT_SNAPSHOT_COUNT,
            request_timeout_ms: 5_000,
            header_read_timeout_ms: 120_000,
            max_request_bytes: 1536 * 1024,
            max_txn_ops: 128,
            quota_backend_bytes: 0,
            watch_progress_notify_interval_ms: 10 * 60 * 1000,
            auto_compaction_mode: AutoCompactionMode::Periodic,
            auto_compaction_retention: "0".into(),
            force_new_cluster: false,
            client_tls: TlsFiles::default(),
            peer_tls: TlsFiles::default(),
            cipher_suites: Vec::new(),
            bcrypt_cost: 10,
            max_connections_per_client: 4096,
            max_long_polls_per_client: 4096,
            auth_token_ttl_secs: 300,
            auth_token_jwt: None,
            host_whitelist: Vec::new(),
            cors: Vec::new(),
        }
    }
}

impl Config {
    /// A config for an embedded single member on ephemeral loopback ports (its advertised
    /// peer URL stays the default; nobody needs to reach a member that is alone).
    pub fn ephemeral(name: &str, data_dir: impl Into<PathBuf>) -> Config {
        Config {
            name: name.to_string(),
            data_dir: data_dir.into(),
            listen_client_urls: vec!["http://127.0.0.1:0".into()],
            listen_peer_urls: vec!["http://127.0.0.1:0".into()],
            ..Config::default()
        }
    }

    /// Set one of etcd's flags by name (without dashes, e.g. `listen-client-urls`) from its
    /// command-line text: how the C ABI and the bindings configure a member.
    pub fn set(&mut self, flag: &str, value: &str) -> Result<()> {
        let boolean = |v: &str| match v.trim() {
            "" | "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            v => Err(Error::new(
                ErrorCode::InvalidConfig,
                format!("--{flag} must be true or false, not {v:?}"),
                0,
            )),
        };
        let path = |v: &str| (!v.trim().is_empty()).then(|| PathBuf::from(v.trim()));
        let number = |v: &str| {
            v.trim().parse::<u64>().map_err(|_| {
                Error::new(
                    ErrorCode::InvalidConfig,
                    format!("--{flag} must be a number, not {v:?}"),
                    0,
                )
            })
        };
        match flag.trim_start_matches('-') {
            "name" => self.name = value.to_string(),
            "data-dir" => self.data_dir = PathBuf::from(value),
            "listen-client-urls" => self.listen_client_urls = split_urls(value),
            "advertise-client-urls" => self.advertise_client_urls = split_urls(value),
            "listen-peer-urls" => self.listen_peer_urls = split_urls(value),
            "listen-metrics-urls" => self.listen_metrics_urls = split_urls(value),
            "initial-advertise-peer-urls" => self.initial_advertise_peer_urls = split_urls(value),
            "initial-cluster" => self.initial_cluster = value.to_string(),
            "initial-cluster-state" => self.initial_cluster_state = ClusterState::parse(value)?,
            "initial-cluster-token" => self.initial_cluster_token = value.to_string(),
            "heartbeat-interval" => self.heartbeat_interval_ms = number(value)?,
            "election-timeout" => self.election_timeout_ms = number(value)?,
            "snapshot-count" => self.snapshot_count = number(value)?,
            "request-timeout" => self.request_timeout_ms = number(value)?,
            "max-request-bytes" => self.max_request_bytes = number(value)?,
            "max-txn-ops" => self.max_txn_ops = number(value)?,
            "experimental-watch-progress-notify-interval" => {
                self.watch_progress_notify_interval_ms = humantime::parse_duration(value.trim())
                    .map_err(|e| {
                        Error::new(
                            ErrorCode::InvalidConfig,
                            format!("--{flag} {value:?}: {e}"),
                            0,
                        )
                    })?
                    .as_millis() as u64
            }
            "quota-backend-bytes" => {
                self.quota_backend_bytes = value.trim().parse::<i64>().map_err(|_| {
                    Error::new(
                        ErrorCode::InvalidConfig,
                        format!("--quota-backend-bytes must be a number, not {value:?}"),
                        0,
                    )
                })?
            }
            "auto-compaction-mode" => self.auto_compaction_mode = AutoCompactionMode::parse(value)?,
            "auto-compaction-retention" => self.auto_compaction_retention = value.to_string(),
            "force-new-cluster" => self.force_new_cluster = boolean(value)?,
            "cert-file" => self.client_tls.cert_file = path(value),
            "key-file" => self.client_tls.key_file = path(value),
            "trusted-ca-file" => self.client_tls.trusted_ca_file = path(value),
            "client-cert-auth" => self.client_tls.client_cert_auth = boolean(value)?,
            "auto-tls" => self.client_tls.auto_tls = boolean(value)?,
            "peer-cert-file" => self.peer_tls.cert_file = path(value),
            "peer-key-file" => self.peer_tls.key_file = path(value),
            "peer-trusted-ca-file" => self.peer_tls.trusted_ca_file = path(value),
            "peer-client-cert-auth" => self.peer_tls.client_cert_auth = boolean(value)?,
            "peer-auto-tls" => self.peer_tls.auto_tls = boolean(value)?,
            "client-crl-file" => self.client_tls.crl_file = path(value),
            "peer-crl-file" => self.peer_tls.crl_file = path(value),
            "peer-cert-allowed-cn" => {
                self.peer_tls.allowed_cn = Some(value.trim().to_string()).filter(|v| !v.is_empty())
            }
            "cipher-suites" => self.cipher_suites = split_urls(value),
            "bcrypt-cost" => {
                self.bcrypt_cost = match number(value)? {
                    c @ 4..=31 => c as u32,
                    c => {
                        return Err(Error::new(
                            ErrorCode::InvalidConfig,
                            format!("--bcrypt-cost must be between 4 and 31, not {c}"),
                            0,
                        ))
                    }
                }
            }
            "auth-token-ttl" => self.auth_token_ttl_secs = number(value)?.max(1),
            "max-connections-per-client" => self.max_connections_per_client = number(value)?,
            "max-long-polls-per-client" => self.max_long_polls_per_client = number(value)?,
            "auth-token" => {
                let (kind, options) = value.trim().split_once(',').unwrap_or((value.trim(), ""));
                self.auth_token_jwt = match kind {
                    "simple" => None,
                    "jwt" => Some(crate::jwt::JwtOptions::parse(options).map_err(|e| {
                        Error::new(ErrorCode::InvalidConfig, format!("--auth-token: {e}"), 0)
                    })?),
                    _ => {
                        return Err(Error::new(
                            ErrorCode::InvalidConfig,
                            format!("--auth-token {value:?}: the kinds are simple and jwt"),
                            0,
                        ))
                    }
                };
            }
            "host-whitelist" => self.host_whitelist = split_urls(value),
            "cors" => self.cors = split_urls(value),
            "enable-v2" => {}
            other => {
                return Err(Error::new(
                    ErrorCode::InvalidConfig,
                    format!("unknown flag --{other}"),
                    0,
                ))
            }
        }
        Ok(())
    }

    pub fn initial_cluster_or_self(&self) -> String {
        if self.initial_cluster.trim().is_empty() {
            self.initial_advertise_peer_urls
                .iter()
                .map(|u| format!("{}={u}", self.name))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            self.initial_cluster.clone()
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::new(ErrorCode::InvalidConfig, m, 0));
        if self.name.is_empty() {
            return bad("--name must not be empty".into());
        }
        if self.listen_client_urls.is_empty() {
            return bad("--listen-client-urls must name at least one URL".into());
        }
        self.auto_compaction()?;
        let client = self
            .listen_client_urls
            .iter()
            .chain(&self.listen_metrics_urls);
        let urls = client
            .map(|u| {
                (
                    u,
                    &self.client_tls,
                    "--cert-file and --key-file (or --auto-tls)",
                )
            })
            .chain(self.listen_peer_urls.iter().map(|u| {
                (
                    u,
                    &self.peer_tls,
                    "--peer-cert-file and --peer-key-file (or --peer-auto-tls)",
                )
            }));
        for (u, tls, flags) in urls {
            let url = url::Url::parse(u)
                .map_err(|e| Error::new(ErrorCode::InvalidConfig, format!("URL {u:?}: {e}"), 0))?;
            match url.scheme() {
                "http" => {}
                "https" if tls.enabled() => {}
                "https" => return bad(format!("URL {u:?}: https needs {flags}")),
                other => {
                    return bad(format!(
                        "URL {u:?}: unsupported scheme {other:?} (http or https)"
                    ))
                }
            }
        }
        if self.heartbeat_interval_ms == 0 {
            return bad("--heartbeat-interval must be positive".into());
        }
        if self.election_timeout_ms < 5 * self.heartbeat_interval_ms {
            return bad(format!(
                "--election-timeout[{}ms] should be at least 5 times as --heartbeat-interval[{}ms]",
                self.election_timeout_ms, self.heartbeat_interval_ms
            ));
        }
        if self.snapshot_count == 0 {
            return bad("--snapshot-count must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_set_by_name() {
        let mut c = Config::ephemeral("a", "/tmp/a");
        c.set(
            "initial-cluster",
            "a=http://127.0.0.1:1,b=http://127.0.0.1:2",
        )
        .unwrap();
        c.set(
            "--listen-client-urls",
            "http://127.0.0.1:0, http://127.0.0.1:5",
        )
        .unwrap();
        c.set("initial-cluster-state", "existing").unwrap();
        c.set("snapshot-count", "100").unwrap();
        assert_eq!(c.listen_client_urls.len(), 2);
        assert_eq!(c.initial_cluster_state, ClusterState::Existing);
        assert_eq!(c.snapshot_count, 100);
        for (flag, value) in [
            ("snapshot-count", "many"),
            ("initial-cluster-state", "old"),
            ("no-such-flag", "x"),
        ] {
            let e = c.set(flag, value).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidConfig, "{flag}");
            assert!(e.cause.contains(flag), "{}", e.cause);
        }
    }
}
