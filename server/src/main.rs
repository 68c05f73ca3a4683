//! `etcdrs`: an etcd member. Takes etcd's flags (also spelled with one dash, and as ETCD_*
//! environment variables); with none it serves 127.0.0.1:2379 and :4001 with data in
//! ./default.etcd.

mod log;

use clap::Parser;
use etcdrs_core::split_urls;
use etcdrs_core::{AutoCompactionMode, ClusterState, Config, Node};
use std::path::PathBuf;

/// glibc's malloc took ~18% of a put's CPU here (consolidating and unlinking chunks);
/// jemalloc made puts ~12% and gets ~7% faster and holds less memory after a restart with
/// 1M keys (335-350 against 377 MiB). See docs/benchmarks.md.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The library's defaults are etcd's; the flags take theirs from it, so they live once.
fn defaults() -> Config {
    Config::default()
}

#[derive(Parser, Debug)]
#[command(
    name = "etcdrs",
    version,
    about = "An etcd-compatible, Raft-replicated key-value store",
    // Go's flag package (etcd's): a flag given twice takes its last value.
    args_override_self = true
)]
struct Flags {
    /// Human-readable name for this member.
    #[arg(long, env = "ETCD_NAME", default_value_t = defaults().name)]
    name: String,
    /// Path to the data directory [default: <name>.etcd].
    #[arg(long, env = "ETCD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// URLs to listen on for client traffic.
    #[arg(long, env = "ETCD_LISTEN_CLIENT_URLS", default_value_t = defaults().listen_client_urls.join(","))]
    listen_client_urls: String,
    /// Client URLs to advertise to the rest of the cluster [default: the listen URLs].
    #[arg(long, env = "ETCD_ADVERTISE_CLIENT_URLS")]
    advertise_client_urls: Option<String>,
    /// URLs to listen on for peer traffic.
    #[arg(long, env = "ETCD_LISTEN_PEER_URLS", default_value_t = defaults().listen_peer_urls.join(","))]
    listen_peer_urls: String,
    /// More URLs that answer only /metrics and /health.
    #[arg(long, env = "ETCD_LISTEN_METRICS_URLS", default_value = "")]
    listen_metrics_urls: String,
    /// This member's peer URLs to advertise to the rest of the cluster.
    #[arg(long, env = "ETCD_INITIAL_ADVERTISE_PEER_URLS", default_value_t = defaults().initial_advertise_peer_urls.join(","))]
    initial_advertise_peer_urls: String,
    /// Initial cluster configuration for bootstrapping (name=peerURL,...).
    #[arg(long, env = "ETCD_INITIAL_CLUSTER", default_value_t = defaults().initial_cluster)]
    initial_cluster: String,
    /// new or existing.
    #[arg(long, env = "ETCD_INITIAL_CLUSTER_STATE", default_value_t = defaults().initial_cluster_state.to_string())]
    initial_cluster_state: String,
    /// Initial cluster token for the cluster during bootstrap.
    #[arg(long, env = "ETCD_INITIAL_CLUSTER_TOKEN", default_value_t = defaults().initial_cluster_token)]
    initial_cluster_token: String,
    /// Time (in milliseconds) of a heartbeat interval.
    #[arg(long, env = "ETCD_HEARTBEAT_INTERVAL", default_value_t = defaults().heartbeat_interval_ms)]
    heartbeat_interval: u64,
    /// Time (in milliseconds) for an election to timeout.
    #[arg(long, env = "ETCD_ELECTION_TIMEOUT", default_value_t = defaults().election_timeout_ms)]
    election_timeout: u64,
    /// Number of committed transactions to trigger a snapshot to disk.
    #[arg(long, env = "ETCD_SNAPSHOT_COUNT", default_value_t = defaults().snapshot_count)]
    snapshot_count: u64,
    /// Maximum client request size in bytes the server will accept.
    #[arg(long, env = "ETCD_MAX_REQUEST_BYTES", default_value_t = defaults().max_request_bytes)]
    max_request_bytes: u64,
    /// Raise alarms when backend size exceeds the given quota. 0 means use the default
    /// quota (2 GiB); a negative number means no quota.
    #[arg(long, env = "ETCD_QUOTA_BACKEND_BYTES", default_value_t = defaults().quota_backend_bytes, allow_hyphen_values = true)]
    quota_backend_bytes: i64,
    /// Duration of periodic watch progress notifications (e.g. 10m, 5s).
    #[arg(
        long,
        env = "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL",
        default_value = "10m"
    )]
    experimental_watch_progress_notify_interval: String,
    /// Maximum number of operations permitted in a transaction.
    #[arg(long, env = "ETCD_MAX_TXN_OPS", default_value_t = defaults().max_txn_ops)]
    max_txn_ops: u64,
    /// Interpret 'auto-compaction-retention' as a span of time (periodic) or a number of
    /// revisions (revision).
    #[arg(long, env = "ETCD_AUTO_COMPACTION_MODE", default_value = "periodic")]
    auto_compaction_mode: String,
    /// Auto compaction retention: for periodic, a duration ("1h", "30m") or hours; for
    /// revision, revisions to keep. 0 means disable auto compaction.
    #[arg(long, env = "ETCD_AUTO_COMPACTION_RETENTION", default_value = "0")]
    auto_compaction_retention: String,
    /// Log level: debug, info, warn or error (RUST_LOG, when set, takes precedence).
    #[arg(long, env = "ETCD_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format: json (zap's fields: level, ts, caller, msg, context) or text.
    #[arg(long, env = "ETCD_LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// Start this member's data as a cluster of one: what was committed stays, every
    /// other member is removed (disaster recovery, or serving a backup).
    #[arg(long, env = "ETCD_FORCE_NEW_CLUSTER", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    force_new_cluster: String,
    /// Path to the client server TLS cert file.
    #[arg(long, env = "ETCD_CERT_FILE")]
    cert_file: Option<String>,
    /// Path to the client server TLS key file.
    #[arg(long, env = "ETCD_KEY_FILE")]
    key_file: Option<String>,
    /// Path to the client server TLS trusted CA cert file.
    #[arg(long, env = "ETCD_TRUSTED_CA_FILE")]
    trusted_ca_file: Option<String>,
    /// Enable client cert authentication.
    #[arg(long, env = "ETCD_CLIENT_CERT_AUTH", num_args = 0..=1, default_missing_value = "true")]
    client_cert_auth: Option<String>,
    /// Client TLS using generated certificates.
    #[arg(long, env = "ETCD_AUTO_TLS", num_args = 0..=1, default_missing_value = "true")]
    auto_tls: Option<String>,
    /// Path to the peer server TLS cert file.
    #[arg(long, env = "ETCD_PEER_CERT_FILE")]
    peer_cert_file: Option<String>,
    /// Path to the peer server TLS key file.
    #[arg(long, env = "ETCD_PEER_KEY_FILE")]
    peer_key_file: Option<String>,
    /// Path to the peer server TLS trusted CA file.
    #[arg(long, env = "ETCD_PEER_TRUSTED_CA_FILE")]
    peer_trusted_ca_file: Option<String>,
    /// Enable peer client cert authentication.
    #[arg(long, env = "ETCD_PEER_CLIENT_CERT_AUTH", num_args = 0..=1, default_missing_value = "true")]
    peer_client_cert_auth: Option<String>,
    /// Peer TLS using generated certificates.
    #[arg(long, env = "ETCD_PEER_AUTO_TLS", num_args = 0..=1, default_missing_value = "true")]
    peer_auto_tls: Option<String>,
    /// Comma-separated list of supported TLS cipher suites between client/server and peers
    /// (empty will be auto-populated by rustls).
    #[arg(long, env = "ETCD_CIPHER_SUITES")]
    cipher_suites: Option<String>,
    /// Acceptable hostnames from HTTP client requests, if server is not secure (empty or *
    /// means allow all).
    #[arg(long, env = "ETCD_HOST_WHITELIST")]
    host_whitelist: Option<String>,
    /// Comma-separated whitelist of origins for CORS, or cross-origin resource sharing
    /// (empty or * means allow all).
    #[arg(long, env = "ETCD_CORS")]
    cors: Option<String>,
    /// Path to the client certificate revocation list file.
    #[arg(long, env = "ETCD_CLIENT_CRL_FILE")]
    client_crl_file: Option<String>,
    /// Path to the peer certificate revocation list file.
    #[arg(long, env = "ETCD_PEER_CRL_FILE")]
    peer_crl_file: Option<String>,
    /// Allowed CN for inter peer authentication.
    #[arg(long, env = "ETCD_PEER_CERT_ALLOWED_CN")]
    peer_cert_allowed_cn: Option<String>,
    /// Specify auth token specific options: "simple" (the default) or
    /// "jwt,pub-key=F,priv-key=F,sign-method=RS256|ES256|HS256|..,ttl=5m".
    #[arg(long, env = "ETCD_AUTH_TOKEN")]
    auth_token: Option<String>,
    /// Specify bcrypt algorithm cost factor for auth password hashing (default 10).
    #[arg(long, env = "ETCD_BCRYPT_COST")]
    bcrypt_cost: Option<String>,
    /// The lifetime in seconds of the auth token (default 300).
    #[arg(long, env = "ETCD_AUTH_TOKEN_TTL")]
    auth_token_ttl: Option<String>,
    /// Connections one client (remote IP) may hold on the client port; more are closed as
    /// they come (0: no cap). etcdrs's own.
    #[arg(long, env = "ETCD_MAX_CONNECTIONS_PER_CLIENT")]
    max_connections_per_client: Option<String>,
    /// Long polls one client may hold at once (v2 waits; v3 watch, keep-alive and observe
    /// streams); more get 429 or RESOURCE_EXHAUSTED (0: no cap).
    /// etcdrs's own.
    #[arg(long, env = "ETCD_MAX_LONG_POLLS_PER_CLIENT")]
    max_long_polls_per_client: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
    /// Accepted for etcd compatibility: the v2 API is always served.
    #[arg(long, env = "ETCD_ENABLE_V2", default_value = "true", num_args = 0..=1, default_missing_value = "true")]
    enable_v2: String,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// v3 snapshot files, as `etcdctl snapshot save` writes them from etcdrs.
    Snapshot {
        #[command(subcommand)]
        action: SnapshotAction,
    },
    /// Copy a member's data dir (it may be running) into a backup that starts with
    /// --force-new-cluster as a cluster of one (etcd's v2 backup).
    Backup {
        /// The member's data dir.
        #[arg(long)]
        data_dir: PathBuf,
        /// Where the backup goes (must not exist, or be empty).
        #[arg(long)]
        backup_dir: PathBuf,
    },
}

#[derive(clap::Subcommand, Debug)]
enum SnapshotAction {
    /// Make a new member's data dir from a snapshot file (run once per member).
    Restore {
        /// The snapshot file.
        file: PathBuf,
        /// Human-readable name for this member.
        #[arg(long, default_value_t = defaults().name)]
        name: String,
        /// Path to the data directory [default: <name>.etcd].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Initial cluster configuration for restore bootstrap.
        #[arg(long, default_value_t = defaults().initial_cluster)]
        initial_cluster: String,
        /// Initial cluster token for the etcd cluster during restore bootstrap.
        #[arg(long, default_value_t = defaults().initial_cluster_token)]
        initial_cluster_token: String,
        /// List of this member's peer URLs to advertise to the rest of the cluster.
        #[arg(long, default_value_t = defaults().initial_advertise_peer_urls.join(","))]
        initial_advertise_peer_urls: String,
        /// Ignore the snapshot's integrity hash value.
        #[arg(long)]
        skip_hash_check: bool,
    },
    /// Show a snapshot file's hash, revision, total keys and size.
    Status {
        /// The snapshot file.
        file: PathBuf,
        /// Output format: simple, table or json.
        #[arg(short = 'w', long, default_value = "simple")]
        write_out: String,
    },
}

/// go-humanize's Bytes, which etcdctl prints sizes with.
fn humanize_bytes(n: u64) -> String {
    if n < 10 {
        return format!("{n} B");
    }
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let e = ((n as f64).ln() / 1000f64.ln()).floor() as usize;
    let e = e.min(units.len() - 1);
    let val = ((n as f64) / 1000f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", units[e])
    } else {
        format!("{val:.0} {}", units[e])
    }
}

/// What a subcommand prints on success, or why it failed.
fn run_command(command: Command) -> Result<String, String> {
    let failed = |e: etcdrs_core::Error| e.cause;
    match command {
        Command::Backup {
            data_dir,
            backup_dir,
        } => {
            let r = etcdrs_core::backup(&data_dir, &backup_dir).map_err(failed)?;
            Ok(format!(
                "backed up {} to {} (member {}, new cluster {}, revision {}); serve it with: etcdrs --data-dir {} --force-new-cluster",
                data_dir.display(),
                backup_dir.display(),
                etcdrs_core::format_id(r.member_id),
                etcdrs_core::format_id(r.cluster_id),
                r.revision,
                backup_dir.display()
            ))
        }
        Command::Snapshot {
            action:
                SnapshotAction::Restore {
                    file,
                    name,
                    data_dir,
                    initial_cluster,
                    initial_cluster_token,
                    initial_advertise_peer_urls,
                    skip_hash_check,
                },
        } => {
            let cfg = Config {
                data_dir: data_dir.unwrap_or_else(|| PathBuf::from(format!("{name}.etcd"))),
                name,
                initial_cluster,
                initial_cluster_token,
                initial_advertise_peer_urls: split_urls(&initial_advertise_peer_urls),
                ..Config::default()
            };
            let r = etcdrs_core::snapshot_restore(&file, &cfg, skip_hash_check).map_err(failed)?;
            Ok(format!(
                "restored snapshot {} to {} (member {}, cluster {}, revision {})",
                file.display(),
                r.data_dir.display(),
                etcdrs_core::format_id(r.member_id),
                etcdrs_core::format_id(r.cluster_id),
                r.revision
            ))
        }
        Command::Snapshot {
            action: SnapshotAction::Status { file, write_out },
        } => {
            let s = etcdrs_core::snapshot_status(&file).map_err(failed)?;
            let size = humanize_bytes(s.total_size);
            match write_out.as_str() {
                "simple" => Ok(format!(
                    "{:x}, {}, {}, {size}",
                    s.hash, s.revision, s.total_key
                )),
                "json" => Ok(format!(
                    r#"{{"hash":{},"revision":{},"totalKey":{},"totalSize":{}}}"#,
                    s.hash, s.revision, s.total_key, s.total_size
                )),
                "table" => {
                    let row = [
                        format!("{:x}", s.hash),
                        s.revision.to_string(),
                        s.total_key.to_string(),
                        size,
                    ];
                    Ok(ascii_table(
                        &["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"],
                        &row,
                    ))
                }
                other => Err(format!(
                    "unknown output format {other:?} (simple, table or json)"
                )),
            }
        }
    }
}

/// etcdctl's table (tablewriter, centred headers, right-aligned numbers as etcdctl sets).
fn ascii_table(header: &[&str], row: &[String]) -> String {
    let widths: Vec<usize> = header
        .iter()
        .zip(row)
        .map(|(h, c)| h.len().max(c.len()))
        .collect();
    let line = widths
        .iter()
        .map(|w| "-".repeat(w + 2))
        .collect::<Vec<_>>()
        .join("+");
    let line = format!("+{line}+");
    let centre = |s: &str, w: usize| {
        let left = (w - s.len()) / 2;
        format!(
            " {}{s}{} ",
            " ".repeat(left),
            " ".repeat(w - s.len() - left)
        )
    };
    let head = header
        .iter()
        .zip(&widths)
        .map(|(h, w)| centre(h, *w))
        .collect::<Vec<_>>()
        .join("|");
    let cells = row
        .iter()
        .zip(&widths)
        .map(|(c, w)| format!(" {c:>w$} "))
        .collect::<Vec<_>>()
        .join("|");
    format!("{line}\n|{head}|\n{line}\n|{cells}|\n{line}")
}

/// etcd accepts `-name x` as well as `--name x`.
fn normalize_args() -> Vec<String> {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let single_dash_long =
                i > 0 && a.starts_with('-') && !a.starts_with("--") && a.len() > 2;
            if single_dash_long && a.as_bytes()[1].is_ascii_alphabetic() {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

fn config(mut f: Flags) -> Result<Config, String> {
    // These flags are parsed by the library (one parser for the binary and the bindings).
    let by_library = [
        ("cert-file", f.cert_file.take()),
        ("key-file", f.key_file.take()),
        ("trusted-ca-file", f.trusted_ca_file.take()),
        ("client-cert-auth", f.client_cert_auth.take()),
        ("auto-tls", f.auto_tls.take()),
        ("peer-cert-file", f.peer_cert_file.take()),
        ("peer-key-file", f.peer_key_file.take()),
        ("peer-trusted-ca-file", f.peer_trusted_ca_file.take()),
        ("peer-client-cert-auth", f.peer_client_cert_auth.take()),
        ("peer-auto-tls", f.peer_auto_tls.take()),
        ("cipher-suites", f.cipher_suites.take()),
        ("host-whitelist", f.host_whitelist.take()),
        ("cors", f.cors.take()),
        ("client-crl-file", f.client_crl_file.take()),
        ("peer-crl-file", f.peer_crl_file.take()),
        ("peer-cert-allowed-cn", f.peer_cert_allowed_cn.take()),
        ("auth-token", f.auth_token.take()),
        ("bcrypt-cost", f.bcrypt_cost.take()),
        ("auth-token-ttl", f.auth_token_ttl.take()),
        (
            "max-connections-per-client",
            f.max_connections_per_client.take(),
        ),
        (
            "max-long-polls-per-client",
            f.max_long_polls_per_client.take(),
        ),
    ];
    let mut cfg = plain_config(f)?;
    for (flag, value) in by_library {
        if let Some(v) = value {
            cfg.set(flag, &v).map_err(|e| e.cause)?;
        }
    }
    Ok(cfg)
}

fn plain_config(f: Flags) -> Result<Config, String> {
    let initial_cluster_state =
        ClusterState::parse(&f.initial_cluster_state).map_err(|e| e.cause)?;
    Ok(Config {
        data_dir: f
            .data_dir
            .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", f.name))),
        name: f.name,
        listen_client_urls: split_urls(&f.listen_client_urls),
        advertise_client_urls: f
            .advertise_client_urls
            .as_deref()
            .map(split_urls)
            .unwrap_or_default(),
        listen_peer_urls: split_urls(&f.listen_peer_urls),
        listen_metrics_urls: split_urls(&f.listen_metrics_urls),
        initial_advertise_peer_urls: split_urls(&f.initial_advertise_peer_urls),
        initial_cluster: f.initial_cluster,
        initial_cluster_state,
        initial_cluster_token: f.initial_cluster_token,
        heartbeat_interval_ms: f.heartbeat_interval,
        election_timeout_ms: f.election_timeout,
        snapshot_count: f.snapshot_count,
        max_request_bytes: f.max_request_bytes,
        max_txn_ops: f.max_txn_ops,
        quota_backend_bytes: f.quota_backend_bytes,
        watch_progress_notify_interval_ms: humantime::parse_duration(
            &f.experimental_watch_progress_notify_interval,
        )
        .map_err(|e| format!("--experimental-watch-progress-notify-interval: {e}"))?
        .as_millis() as u64,
        auto_compaction_mode: AutoCompactionMode::parse(&f.auto_compaction_mode)
            .map_err(|e| e.cause)?,
        auto_compaction_retention: f.auto_compaction_retention,
        force_new_cluster: match f.force_new_cluster.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            v => return Err(format!("--force-new-cluster: {v:?} is not true or false")),
        },
        ..Config::default()
    })
}

/// Logs go to stderr. Once nobody reads it (a closed pipe), a line is dropped: a failed
/// write must not panic the thread that logged it (tracing-subscriber reports a writer's
/// error with `eprintln!`, which panics on a closed stderr), which could be the raft driver.
struct LogOut;

impl std::io::Write for LogOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Logs at `--log-level` in `--log-format`; RUST_LOG, when set, picks levels per module.
fn init_log(level: &str, format: &str) -> Result<(), String> {
    let level = log::parse_level(level)?;
    let format = log::LogFormat::parse(format)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogOut);
    match format {
        log::LogFormat::Json => builder.event_format(log::ZapJson).init(),
        log::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    Ok(())
}

fn main() {
    let mut flags = Flags::parse_from(normalize_args());
    if let Err(e) = init_log(&flags.log_level, &flags.log_format) {
        eprintln!("etcdrs: {e}");
        std::process::exit(2);
    }
    if let Some(command) = flags.command.take() {
        match run_command(command) {
            Ok(out) => println!("{out}"),
            Err(e) => {
                eprintln!("Error: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let cfg = match config(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("etcdrs: {e}");
            std::process::exit(2);
        }
    };
    let mut node = match Node::start(cfg) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("cannot start: {} ({})", e.message(), e.cause);
            std::process::exit(1);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("signal runtime");
    let failure = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        let every = std::time::Duration::from_millis(100);
        let removed = async {
            while !node.is_removed() {
                tokio::time::sleep(every).await;
            }
        };
        // Fail-stop: a member whose raft, log or apply has died exits, so a supervisor
        // restarts it, instead of answering from a store that no longer moves.
        let failed = async {
            loop {
                if let Some(e) = node.failure() {
                    return e;
                }
                tokio::time::sleep(every).await;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT, shutting down"),
            _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
            _ = removed => tracing::warn!("the member has been permanently removed from the cluster; shutting down"),
            e = failed => return Some(e),
        }
        None
    });
    node.stop();
    if let Some(e) = failure {
        tracing::error!("exiting: {}", e.cause);
        std::process::exit(1);
    }
}
