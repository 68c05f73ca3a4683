//! `Node`: one etcd member running inside the calling process, with its own threads and
//! runtime. Many nodes may live in one process.

use crate::apply::{Applier, CLUSTER_VERSION};
use crate::client::Client;
use crate::config::{ClusterState, Config};
use crate::error::{Error, ErrorCode, Result};
use crate::identity::{cluster_id, format_id, member_id, parse_initial_cluster, Member};
use crate::membership;
use crate::membership::PeerDirectory;
use crate::mvcc::{Mvcc, WatchHub};
use crate::peer::{PeerService, PeerTransport};
use crate::raft::{PeerStats, RaftDriver, RaftMsg, RaftStatus};
use crate::request::Op;
use crate::server::{Compactor, Lessor, Server, V3Limits};
use crate::status::MemberStatus;
use crate::storage::{DataDir, MemberMeta, RaftStorage, Replay, SnapshotData, Snapshotter, Wal};
use crate::v2store::Store;
use crate::wait::Wait;
use raft::eraftpb::{ConfState, Snapshot, SnapshotMetadata};
use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the leader proposes its clock for TTL expiry (etcd: 500 ms).
const SYNC_INTERVAL: Duration = Duration::from_millis(500);

pub struct Node {
    server: Arc<Server>,
    runtime: Option<tokio::runtime::Runtime>,
    threads: Vec<JoinHandle<()>>,
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    client_urls: Vec<String>,
    peer_urls: Vec<String>,
    /// Held while the member runs; released on stop.
    data_dir_lock: Option<std::fs::File>,
}

fn bind(url: &str) -> Result<TcpListener> {
    let u = url::Url::parse(url)
        .map_err(|e| Error::new(ErrorCode::InvalidConfig, format!("URL {url:?}: {e}"), 0))?;
    let host = u
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(|c| c == '[' || c == ']');
    let port = u.port_or_known_default().unwrap_or(2379);
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .or_else(|_| {
            std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(())
        })
        .map_err(|_| {
            Error::new(
                ErrorCode::InvalidConfig,
                format!("cannot resolve {url:?}"),
                0,
            )
        })?;
    let l = TcpListener::bind(addr).map_err(|e| {
        Error::new(
            ErrorCode::InvalidConfig,
            format!("cannot listen on {url}: {e}"),
            0,
        )
    })?;
    l.set_nonblocking(true)
        .map_err(|e| Error::io("listener", e))?;
    Ok(l)
}

/// How this member's identity and first state are found.
struct Origin {
    meta: MemberMeta,
    /// The state the log replays onto, and where it stands (index, term, voters).
    store: Store,
    snapshot: SnapshotMetadata,
    /// The v3 store's image when the snapshot carries one (it came from the leader).
    v3_image: Option<bytes::Bytes>,
    /// Where the other members are reached, for a joining member (its store is empty until
    /// the leader's snapshot arrives); otherwise the snapshot's records say it.
    joined_members: Option<Vec<Member>>,
}

fn corrupt(cause: String) -> Error {
    Error::new(
        ErrorCode::Corrupt,
        format!("{cause}; refusing to start (restore the data dir from a backup, or remove this member and add it again so it catches up from the others)"),
        0,
    )
}

/// The first index after `snapshot_index` that the replayed log lacks although a later
/// entry is there: replaying onto that snapshot would skip writes.
fn log_gap(entries: &[raft::eraftpb::Entry], snapshot_index: u64) -> Option<u64> {
    let after = entries.iter().filter(|e| e.index > snapshot_index);
    (snapshot_index + 1..)
        .zip(after)
        .find(|(want, e)| e.index != *want)
        .map(|(want, _)| want)
}

/// The newest saved snapshot that reads back whole, decodes as a store and that the log
/// still reaches back to. A damaged newer one is passed over, loudly, for an older one (as
/// etcd does): the log is kept from the older snapshot on for this (see the raft driver's
/// `compact`), so nothing acknowledged is lost. None when there is no snapshot at all.
pub(crate) fn load_snapshot(
    snapshotter: &Snapshotter,
    replay: &Replay,
) -> Result<Option<(Store, SnapshotMetadata, Option<bytes::Bytes>)>> {
    let files = snapshotter.newest_first()?;
    if files.is_empty() {
        return Ok(None);
    }
    let mut refused = Vec::new();
    for path in files {
        let loaded = snapshotter.read(&path).and_then(|mut snap| {
            let meta = snap.take_metadata();
            if let Some(gap) = log_gap(&replay.entries, meta.index) {
                return Err(Error::new(
                    ErrorCode::Corrupt,
                    format!(
                        "snapshot {} ends at index {} but the write-ahead log has no entry {gap}",
                        path.display(),
                        meta.index,
                    ),
                    0,
                ));
            }
            let mut store = Store::new();
            let data = SnapshotData::split(&snap.data)?;
            store.recover(data.v2).map_err(|e| {
                Error::new(
                    ErrorCode::Corrupt,
                    format!(
                        "snapshot {} does not decode as a store: {}",
                        path.display(),
                        e.cause
                    ),
                    0,
                )
            })?;
            let v3 = data.v3.map(|v3| snap.data.slice_ref(v3));
            Ok((store, meta, v3))
        });
        match loaded {
            Ok((store, meta, v3)) => {
                if !refused.is_empty() {
                    tracing::warn!(snapshot = %path.display(), index = meta.index, "started from an older snapshot; the write-ahead log replays everything after it");
                }
                return Ok(Some((store, meta, v3)));
            }
            Err(e) => {
                tracing::error!(error = %e.cause, "cannot use this snapshot; trying an older one");
                refused.push(e.cause);
            }
        }
    }
    Err(corrupt(format!(
        "no usable snapshot in {}: {}",
        snapshotter.dir().display(),
        refused.join("; ")
    )))
}

/// Open the v3 store. It holds at least everything up to the snapshot (a durable commit
/// comes before every local snapshot), unless the snapshot came from the leader and the
/// member stopped before the v3 store became the leader's: the snapshot's image then says
/// what it is.
fn open_v3_store(
    dd: &DataDir,
    snap_index: u64,
    v3_image: Option<&[u8]>,
) -> Result<Arc<RwLock<Mvcc>>> {
    let path = dd.v3_store_path();
    let failed = |e: crate::mvcc::MvccError| {
        corrupt(format!(
            "the v3 store {} cannot be used: {e:?}",
            path.display()
        ))
    };
    let mut mvcc = Mvcc::open(&path).map_err(failed)?;
    if let Some(image) = v3_image {
        if mvcc.consistent_index() < snap_index {
            tracing::info!(
                index = snap_index,
                "restoring the v3 store from the leader's snapshot"
            );
            mvcc.restore(image).map_err(failed)?;
        }
    }
    Ok(Arc::new(RwLock::new(mvcc)))
}

/// TLS towards other members' https peer URLs, when this member has peer TLS.
fn peer_client_tls(config: &Config) -> Result<Option<Arc<rustls::ClientConfig>>> {
    if !config.peer_tls.enabled() {
        return Ok(None);
    }
    let hosts = crate::tls::hosts_of(&config.initial_advertise_peer_urls);
    crate::tls::peer_client_config(&config.peer_tls, &hosts, &config.cipher_suites).map(Some)
}

/// The TLS acceptor for those of `urls` that are https (None when none is).
fn acceptor(
    urls: &[String],
    files: &crate::tls::TlsFiles,
    cipher_suites: &[String],
) -> Result<Option<tokio_rustls::TlsAcceptor>> {
    if !urls.iter().any(|u| u.starts_with("https://")) {
        return Ok(None);
    }
    let config = crate::tls::server_config(files, &crate::tls::hosts_of(urls), cipher_suites)?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(config)))
}

/// A member joining a running cluster: ask the members named in --initial-cluster for the
/// cluster id and find ourselves (added with `member add` first) by our peer URLs.
fn join_existing(
    config: &Config,
    initial: &[(String, Vec<String>)],
    my_peer_urls: &[String],
    runtime: &tokio::runtime::Runtime,
) -> Result<(u64, u64, Vec<Member>)> {
    let mut mine = my_peer_urls.to_vec();
    mine.sort();
    let mut errors = Vec::new();
    for (name, urls) in initial.iter().filter(|(n, _)| *n != config.name) {
        let (tx, rx) = mpsc::channel();
        let urls2 = urls.clone();
        let tls = peer_client_tls(config)?;
        runtime.spawn(async move {
            let _ = tx.send(crate::peer::fetch_members(&urls2, tls).await);
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok((cluster, members))) => {
                let me = members.iter().find(|m| {
                    let mut p = m.peer_urls.clone();
                    p.sort();
                    p == mine
                });
                return match me {
                    Some(m) => Ok((m.id, cluster, members)),
                    None => Err(Error::new(
                        ErrorCode::InvalidConfig,
                        format!(
                            "the cluster has no member with peer URLs {my_peer_urls:?}; add it first (etcdctl member add {} --peer-urls=...)",
                            config.name
                        ),
                        0,
                    )),
                };
            }
            Ok(Err(e)) => errors.push(format!("{name}: {e}")),
            Err(_) => errors.push(format!("{name}: timed out")),
        }
    }
    Err(Error::new(
        ErrorCode::InvalidConfig,
        format!(
            "--initial-cluster-state=existing: could not reach any other member ({})",
            errors.join("; ")
        ),
        0,
    ))
}

fn find_origin(
    config: &Config,
    dd: &DataDir,
    snapshotter: &Snapshotter,
    replay: &Replay,
    runtime: &tokio::runtime::Runtime,
) -> Result<Origin> {
    let initial = parse_initial_cluster(&config.initial_cluster_or_self())?;
    let Some((_, my_peer_urls)) = initial.iter().find(|(n, _)| *n == config.name).cloned() else {
        return Err(Error::new(
            ErrorCode::InvalidConfig,
            format!("--initial-cluster has no member named {:?}", config.name),
            0,
        ));
    };
    // A log with nothing in it: a new member, or one that never got past joining.
    let empty_log = replay.entries.is_empty() && replay.hard_state.is_none();
    match (dd.read_meta()?, load_snapshot(snapshotter, replay)?) {
        (Some(meta), Some((store, snapshot, v3_image))) => {
            // A restart: the flags no longer matter, the data dir says who we are.
            if replay.created {
                return Err(corrupt(format!(
                    "the write-ahead log {} is missing, but the data dir has a snapshot at index {}: the writes after it would be lost",
                    dd.wal_dir().display(),
                    snapshot.index
                )));
            }
            Ok(Origin {
                meta,
                store,
                snapshot,
                v3_image,
                joined_members: None,
            })
        }
        (Some(_), None) if !empty_log => Err(corrupt(format!(
            "the data dir has no snapshot in {}, but its write-ahead log {} holds entries{}: the snapshot files were removed or lost",
            snapshotter.dir().display(),
            dd.wal_dir().display(),
            match (replay.entries.first(), replay.entries.last()) {
                (Some(f), Some(l)) => format!(" {} to {}", f.index, l.index),
                _ => String::new(),
            }
        ))),
        (None, Some(_)) if !empty_log => Err(corrupt(format!(
            "the data dir has snapshots and a write-ahead log but no member identity ({} is missing)",
            dd.meta_path().display()
        ))),
        // A new member (a start cut short between the first snapshot and the identity
        // starts over: the log was still empty).
        (None, _) if config.initial_cluster_state == ClusterState::New => {
            check_advertised(config, &my_peer_urls)?;
            let ids: Vec<(u64, Vec<String>)> = initial
                .iter()
                .map(|(_, urls)| (member_id(urls, &config.initial_cluster_token), urls.clone()))
                .collect();
            let meta = MemberMeta {
                member_id: member_id(&my_peer_urls, &config.initial_cluster_token),
                cluster_id: cluster_id(&ids.iter().map(|m| m.0).collect::<Vec<_>>()),
            };
            // Every initial member computes the same first snapshot: the initial members'
            // records at index n (etcd's n bootstrap conf changes), term 1.
            let store = membership::bootstrap_store(&ids);
            let mut snapshot = Snapshot {
                data: store.save().into(),
                ..Default::default()
            };
            let m = snapshot.mut_metadata();
            m.index = ids.len() as u64;
            m.term = 1;
            m.set_conf_state(ConfState {
                voters: ids.iter().map(|m| m.0).collect(),
                ..Default::default()
            });
            snapshotter.save(&snapshot)?;
            dd.write_meta(&meta)?;
            tracing::info!(member = %format_id(meta.member_id), cluster = %format_id(meta.cluster_id), data_dir = %config.data_dir.display(), "bootstrapped a new member");
            Ok(Origin {
                meta,
                store,
                snapshot: snapshot.take_metadata(),
                v3_image: None,
                joined_members: None,
            })
        }
        // Joining, or joined but the leader's snapshot never arrived before a restart.
        (old, _) => {
            let (id, cluster, members) = join_existing(config, &initial, &my_peer_urls, runtime)
                .map_err(|mut e| {
                    if old.is_some() {
                        e.cause = format!(
                            "data dir {} belongs to a member that joined a cluster but never received the leader's snapshot, so it must reach the cluster again: {}",
                            config.data_dir.display(),
                            e.cause
                        );
                    }
                    e
                })?;
            let meta = MemberMeta {
                member_id: id,
                cluster_id: cluster,
            };
            if let Some(old) = old {
                if old != meta {
                    return Err(Error::new(
                        ErrorCode::InvalidConfig,
                        format!("data dir {} belongs to member {} of cluster {}, not to member {} of cluster {}", config.data_dir.display(), format_id(old.member_id), format_id(old.cluster_id), format_id(id), format_id(cluster)),
                        0,
                    ));
                }
            }
            dd.write_meta(&meta)?;
            tracing::info!(member = %format_id(id), cluster = %format_id(cluster), "joining an existing cluster; waiting for the leader's snapshot");
            Ok(Origin {
                meta,
                store: Store::new(),
                snapshot: SnapshotMetadata::default(),
                v3_image: None,
                joined_members: Some(members),
            })
        }
    }
}

/// etcd's --force-new-cluster: this member goes on alone. Entries that remove every other
/// voter are appended and committed at once (durably, so a restart without the flag keeps
/// the single-member cluster); applying them updates membership and raft's configuration
/// as any member removal does.
///
/// Everything in this member's log counts as committed, not only what its hard state says
/// (etcd drops the rest): the commit index is written after a write is applied and may be
/// acknowledged, so a copy of the data dir (a backup) can hold an acknowledged write past
/// it. An entry kept that the old cluster never committed is a write whose client was
/// never told it succeeded; that is allowed, losing an acknowledged one is not.
fn force_new_cluster(
    wal: &mut Wal,
    replay: &mut Replay,
    snapshot: &SnapshotMetadata,
    me: u64,
) -> Result<()> {
    use protobuf::Message as _;
    use raft::eraftpb::{ConfChange, ConfChangeType, Entry, EntryType};
    let mut hs = replay.hard_state.clone().unwrap_or_default();
    let last = replay.entries.last().map_or(0, |e| e.index);
    let commit = hs.commit.max(snapshot.index).max(last);
    let committed = replay.entries.iter();
    let mut voters = snapshot.get_conf_state().voters.clone();
    for e in committed
        .clone()
        .filter(|e| e.index > snapshot.index && e.get_entry_type() == EntryType::EntryConfChange)
    {
        let Ok(cc) = ConfChange::parse_from_bytes(&e.data) else {
            continue;
        };
        match cc.get_change_type() {
            ConfChangeType::RemoveNode => voters.retain(|v| *v != cc.node_id),
            ConfChangeType::AddNode if !voters.contains(&cc.node_id) => voters.push(cc.node_id),
            _ => {}
        }
    }
    if !voters.contains(&me) {
        return Err(Error::new(
            ErrorCode::InvalidConfig,
            format!(
                "--force-new-cluster: member {} is not a voting member in its own data, so it cannot go on alone",
                format_id(me)
            ),
            0,
        ));
    }
    let others: Vec<u64> = voters.into_iter().filter(|v| *v != me).collect();
    if others.is_empty() {
        return Ok(());
    }
    let term = committed
        .map(|e| e.term)
        .max()
        .unwrap_or(0)
        .max(hs.term)
        .max(snapshot.term);
    let removals: Vec<Entry> = others
        .iter()
        .zip(commit + 1..)
        .map(|(id, index)| Entry {
            entry_type: EntryType::EntryConfChange,
            term,
            index,
            data: ConfChange {
                change_type: ConfChangeType::RemoveNode,
                node_id: *id,
                ..Default::default()
            }
            .write_to_bytes()
            .expect("conf change encodes")
            .into(),
            ..Default::default()
        })
        .collect();
    hs.term = term;
    hs.commit = commit + removals.len() as u64;
    wal.save(Some(&hs), &removals, true)?;
    replay.entries.extend(removals);
    replay.hard_state = Some(hs);
    tracing::warn!(
        removed = %others.iter().map(|id| format_id(*id)).collect::<Vec<_>>().join(","),
        commit,
        "--force-new-cluster: this member goes on as a cluster of one; the other members are removed"
    );
    Ok(())
}

/// A new member must be listed in --initial-cluster with exactly the peer URLs it
/// advertises (etcd's advertiseMatchesCluster), or its peers would dial an address it does
/// not answer on.
pub(crate) fn check_advertised(config: &Config, listed: &[String]) -> Result<()> {
    let mut listed = listed.to_vec();
    let mut advertised = config.initial_advertise_peer_urls.clone();
    listed.sort();
    advertised.sort();
    if listed == advertised {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::InvalidConfig,
        format!(
            "--initial-cluster has {}={} but missing from --initial-advertise-peer-urls={} (resolved urls: {:?} != {:?})",
            config.name,
            listed.join(","),
            advertised.join(","),
            advertised.join(","),
            listed.join(",")
        ),
        0,
    ))
}

/// Bind every URL of a flag; port 0 picks a free port. Returns listeners and actual URLs.
fn bind_all(urls: &[String]) -> Result<Vec<(TcpListener, String)>> {
    urls.iter()
        .map(|u| {
            let l = bind(u)?;
            let addr = l.local_addr().map_err(|e| Error::io("listener", e))?;
            let scheme = if u.starts_with("https://") {
                "https"
            } else {
                "http"
            };
            Ok((l, format!("{scheme}://{addr}")))
        })
        .collect()
}

impl Node {
    /// Start a member. A member alone in its cluster returns once it serves; a member of a
    /// larger cluster returns once it listens (its cluster may still be electing a leader:
    /// see `wait_ready`).
    pub fn start(config: Config) -> Result<Node> {
        config.validate()?;
        // The JWT keys are read before anything else: a bad one refuses the start.
        let jwt = match &config.auth_token_jwt {
            None => None,
            Some(o) => Some(Arc::new(crate::jwt::JwtTokens::load(o).map_err(|e| {
                Error::new(ErrorCode::InvalidConfig, format!("--auth-token: {e}"), 0)
            })?)),
        };
        let client_listeners = bind_all(&config.listen_client_urls)?;
        let peer_listeners = bind_all(&config.listen_peer_urls)?;
        let metrics_listeners = bind_all(&config.listen_metrics_urls)?;
        let client_urls_all: Vec<String> = config
            .listen_client_urls
            .iter()
            .chain(&config.advertise_client_urls)
            .chain(&config.listen_metrics_urls)
            .cloned()
            .collect();
        let client_tls = acceptor(&client_urls_all, &config.client_tls, &config.cipher_suites)?;
        let peer_urls_all: Vec<String> = config
            .listen_peer_urls
            .iter()
            .chain(&config.initial_advertise_peer_urls)
            .cloned()
            .collect();
        let peer_tls = acceptor(&peer_urls_all, &config.peer_tls, &config.cipher_suites)?;
        let peer_client = peer_client_tls(&config)?;
        let name = config.name.clone();
        let runtime = member_runtime(&name).map_err(|e| Error::io("tokio runtime", e))?;

        let dd = DataDir::new(&config.data_dir);
        let data_dir_lock = dd.lock()?;
        let snapshotter = Arc::new(Snapshotter::new(&dd.snap_dir())?);
        let incoming_snapshot = snapshotter.incoming_path();
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let (mut wal, mut replay) = Wal::open(&dd.wal_dir())?;
        wal.observe_fsync(metrics.wal_fsync.clone());
        let Origin {
            meta,
            store,
            snapshot,
            v3_image,
            joined_members,
        } = find_origin(&config, &dd, &snapshotter, &replay, &runtime)?;
        if config.force_new_cluster {
            if snapshot.index == 0 {
                return Err(Error::new(
                    ErrorCode::InvalidConfig,
                    format!(
                        "--force-new-cluster needs the data of a member; {} has none",
                        config.data_dir.display()
                    ),
                    0,
                ));
            }
            force_new_cluster(&mut wal, &mut replay, &snapshot, meta.member_id)?;
        }
        let snap_index = snapshot.index;
        let mvcc = open_v3_store(&dd, snap_index, v3_image.as_deref())?;
        mvcc.write()
            .unwrap_or_else(|p| p.into_inner())
            .observe_commit(metrics.backend_commit.clone());
        let watchers = Arc::new(WatchHub::default());
        let members = joined_members.unwrap_or_else(|| membership::read_members(&store));
        let storage = RaftStorage::restore(&snapshot, snapshotter.clone(), &replay)?;
        if replay.truncated_bytes > 0 {
            tracing::warn!(
                bytes = replay.truncated_bytes,
                "recovered from a torn write-ahead log tail"
            );
        }
        let voters = storage.conf_state().voters;
        let election_tick = (config.election_timeout_ms / config.heartbeat_interval_ms) as usize;
        let raft_config = raft::Config {
            id: meta.member_id,
            election_tick,
            heartbeat_tick: 1,
            applied: snap_index,
            pre_vote: true,
            check_quorum: true,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            ..Default::default()
        };
        // raft-rs panics on a state it finds impossible; the checks above should leave none,
        // and a member must never panic on its own data dir.
        let raw = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            raft::RawNode::new(&raft_config, storage.clone(), &crate::raft::logger())
        }))
        .map_err(|p| {
            corrupt(format!(
                "raft cannot start from the data dir {}: {}",
                config.data_dir.display(),
                crate::error::panic_message(p.as_ref())
            ))
        })?;
        let mut raw = raw.map_err(|e| Error::new(ErrorCode::RaftInternal, e.to_string(), 0))?;
        let alone = voters == [meta.member_id];
        if alone {
            // No one to wait for: lead at once.
            let _ = raw.campaign();
        } else {
            // As etcd: skip most of the first election timeout so a fresh cluster elects
            // soon (PreVote keeps this from disturbing a cluster that has a leader).
            for _ in 1..election_tick {
                raw.tick();
            }
        }

        let store = Arc::new(RwLock::new(store));
        let raft_status = Arc::new(RaftStatus::default());
        let status = Arc::new(MemberStatus::new(snap_index));
        let peer_stats = Arc::new(PeerStats::new(metrics.clone()));
        let peers = Arc::new(PeerDirectory::new(&members));
        let wait = Arc::new(Wait::default());
        let (raft_tx, raft_rx) = tokio::sync::mpsc::unbounded_channel();
        // The log writer tells the driver what is durable.
        let persisted_tx = raft_tx.clone();
        let (apply_tx, apply_rx) = tokio::sync::mpsc::unbounded_channel();
        let auth_config = crate::auth::AuthConfig {
            bcrypt_cost: config.bcrypt_cost,
            token_ttl: Duration::from_secs(config.auth_token_ttl_secs),
            jwt,
        };
        mvcc.write()
            .unwrap_or_else(|p| p.into_inner())
            .set_token_ttl(auth_config.token_ttl);
        let server = Arc::new(Server::new(
            store.clone(),
            mvcc.clone(),
            V3Limits {
                max_request_bytes: usize::try_from(config.max_request_bytes).unwrap_or(usize::MAX),
                max_txn_ops: usize::try_from(config.max_txn_ops).unwrap_or(usize::MAX),
                quota_backend_bytes: config.quota_backend_bytes(),
            },
            Lessor::new(
                Duration::from_millis(config.heartbeat_interval_ms),
                Duration::from_millis(config.election_timeout_ms),
            ),
            watchers.clone(),
            Compactor::new(config.auto_compaction()?),
            raft_tx.clone(),
            wait.clone(),
            raft_status.clone(),
            status.clone(),
            peer_stats.clone(),
            metrics.clone(),
            peers.clone(),
            meta.member_id,
            meta.cluster_id,
            config.name.clone(),
            config.initial_cluster_token.clone(),
            Duration::from_millis(config.request_timeout_ms),
            Duration::from_millis(config.header_read_timeout_ms),
            (config.host_whitelist.clone(), config.cors.clone()),
            auth_config,
            crate::http::ClientLimits::new(
                usize::try_from(config.max_connections_per_client).unwrap_or(usize::MAX),
                usize::try_from(config.max_long_polls_per_client).unwrap_or(usize::MAX),
            ),
        ));

        let transport = PeerTransport::new(
            meta.member_id,
            meta.cluster_id,
            peers.clone(),
            raft_tx.clone(),
            {
                let status = status.clone();
                move || status.set_removed()
            },
            {
                let mvcc = mvcc.clone();
                move || {
                    mvcc.read()
                        .unwrap_or_else(|p| p.into_inner())
                        .dump()
                        .map_err(|e| format!("{e:?}"))
                }
            },
            metrics.clone(),
            peer_client,
            runtime.handle().clone(),
        );
        server.set_leader_leases(Arc::new(transport.lease_questions()));
        let applier = Applier {
            store,
            mvcc: mvcc.clone(),
            watchers,
            wait,
            status: status.clone(),
            snapshotter: snapshotter.clone(),
            raft_tx,
            snapshot_count: config.snapshot_count,
            applied: snap_index,
            applied_term: snapshot.term,
            last_snapshot: snap_index,
            conf_state: snapshot.get_conf_state().clone(),
            member_id: meta.member_id,
            peers,
            metrics,
        };
        let (log_tx, log_rx) = mpsc::channel();
        let log_writer = crate::raft::log_writer::spawn(
            format!("etcdrs-wal-{name}"),
            wal,
            snapshotter,
            log_rx,
            move |p| {
                let _ = persisted_tx.send(RaftMsg::Persisted(p));
            },
        )
        .map_err(|e| Error::io("spawn log writer thread", e))?;
        let driver = RaftDriver {
            node: raw,
            storage,
            log: log_tx,
            rx: raft_rx,
            apply_tx,
            transport: Box::new(transport),
            status: raft_status,
            stats: peer_stats,
            tick: Duration::from_millis(config.heartbeat_interval_ms),
            catch_up_entries: crate::raft::CATCH_UP_ENTRIES.min(config.snapshot_count),
            previous_snapshot: snap_index,
        };
        // The log writer ends once the raft driver (its only sender) has.
        status.spawn_vital(runtime.handle(), "raft driver", driver.run());
        let threads = vec![
            log_writer,
            applier
                .start(apply_rx, runtime.handle())
                .map_err(|e| Error::io("spawn snapshot thread", e))?,
        ];

        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let shutdown = Arc::new(shutdown);
        runtime.spawn(fail_stop(server.clone(), shutdown.clone()));
        let mut client_urls = Vec::new();
        let mut peer_urls = Vec::new();
        {
            let _guard = runtime.enter();
            for (l, url) in client_listeners {
                let listener =
                    tokio::net::TcpListener::from_std(l).map_err(|e| Error::io("listener", e))?;
                runtime.spawn(crate::api::serve(
                    listener,
                    server.clone(),
                    shutdown_rx.clone(),
                    client_tls.clone().filter(|_| url.starts_with("https://")),
                ));
                client_urls.push(url);
            }
            for (l, url) in metrics_listeners {
                let listener =
                    tokio::net::TcpListener::from_std(l).map_err(|e| Error::io("listener", e))?;
                runtime.spawn(crate::api::serve_metrics(
                    listener,
                    server.clone(),
                    shutdown_rx.clone(),
                    client_tls.clone().filter(|_| url.starts_with("https://")),
                ));
            }
            let peer_service = Arc::new(PeerService::new(server.clone(), incoming_snapshot));
            for (l, url) in peer_listeners {
                let listener =
                    tokio::net::TcpListener::from_std(l).map_err(|e| Error::io("listener", e))?;
                runtime.spawn(crate::peer::serve(
                    listener,
                    peer_service.clone(),
                    shutdown_rx.clone(),
                    peer_tls.clone().filter(|_| url.starts_with("https://")),
                ));
                peer_urls.push(url);
            }
        }
        let advertised = if config.advertise_client_urls.is_empty() {
            client_urls.clone()
        } else {
            config.advertise_client_urls.clone()
        };
        server.set_client_urls(advertised);
        // The member's clocks: the leader's TTL sync, its lease expiry, the catch-up of
        // lagging watchers and the auto-compactor.
        let mut clocks: Vec<(Duration, Tick)> = vec![
            (SYNC_INTERVAL, |s| s.sync_ttl()),
            (Duration::from_millis(500), |s| s.expire_leases()),
            (Duration::from_millis(100), |s| s.sync_watchers()),
            (
                Duration::from_millis(config.watch_progress_notify_interval_ms.max(100)),
                |s| s.watch_progress(),
            ),
        ];
        if let Some(period) = server.auto_compaction_period() {
            clocks.push((period, Server::auto_compact));
        }
        for (period, tick) in clocks {
            runtime.spawn(every(period, server.clone(), shutdown_rx.clone(), tick));
        }
        runtime.spawn(publish(server.clone(), shutdown_rx));

        let node = Node {
            server,
            runtime: Some(runtime),
            threads,
            shutdown,
            client_urls,
            peer_urls,
            data_dir_lock: Some(data_dir_lock),
        };
        tracing::info!(
            // Tests and tools read the first two URL lists off this line: they stay first.
            name = %node.server.name,
            client_urls = ?node.client_urls,
            peer_urls = ?node.peer_urls,
            member = %format_id(node.server.member_id),
            cluster = %format_id(node.server.cluster_id),
            data_dir = %config.data_dir.display(),
            listen_metrics_urls = %config.listen_metrics_urls.join(","),
            initial_cluster = %config.initial_cluster_or_self(),
            initial_cluster_state = %config.initial_cluster_state,
            heartbeat_interval_ms = config.heartbeat_interval_ms,
            election_timeout_ms = config.election_timeout_ms,
            snapshot_count = config.snapshot_count,
            quota_backend_bytes = config.quota_backend_bytes,
            max_request_bytes = config.max_request_bytes,
            auto_compaction_mode = ?config.auto_compaction_mode,
            auto_compaction_retention = %config.auto_compaction_retention,
            "member started"
        );
        if alone {
            node.wait_ready(Duration::from_millis(config.election_timeout_ms * 3));
        }
        Ok(node)
    }

    /// Wait (at most `timeout`) until this member has joined its cluster's records: a leader
    /// exists and this member's name and client URLs are applied, and so is everything
    /// committed before them. True when it has. Until then its client API does not answer
    /// (connections wait, as with etcd) and in-process keys requests wait too.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.server.is_ready() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// The URLs this member's peer API listens on (actual ports, when 0 was asked).
    pub fn peer_urls(&self) -> &[String] {
        &self.peer_urls
    }

    /// Why this member failed and serves no more (its raft driver, log writer or apply loop
    /// died: a full disk, a panic); None while it runs. A failed member answers nothing: its
    /// listeners are closed and in-process calls get this error. Stop it and start it again
    /// on the same data dir once the cause is fixed.
    pub fn failure(&self) -> Option<Error> {
        self.server.failure()
    }

    /// This member was removed from its cluster and serves no more.
    pub fn is_removed(&self) -> bool {
        self.server.is_removed()
    }

    /// The URLs this member's client API listens on (actual ports, when 0 was asked).
    pub fn client_urls(&self) -> &[String] {
        &self.client_urls
    }

    pub fn member_id(&self) -> u64 {
        self.server.member_id
    }

    pub fn cluster_id(&self) -> u64 {
        self.server.cluster_id
    }

    pub fn name(&self) -> &str {
        &self.server.name
    }

    /// A client that talks to this member directly, without HTTP.
    pub fn client(&self) -> Client {
        Client::local(self.server.clone())
    }

    /// Stop serving and shut down cleanly: acknowledged writes are already durable.
    /// Calling it again does nothing.
    pub fn stop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let _ = self.shutdown.send(true);
        self.server.stop_raft();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside someone's async context we may not block on the runtime's tasks.
            runtime.shutdown_background();
        } else {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
        self.server.close_v3_store();
        self.data_dir_lock = None;
        tracing::info!(name = %self.server.name, "member stopped");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One look of a member's clock.
type Tick = fn(&Arc<Server>);

/// Run `tick` on the member every `period` until it stops: the leader's TTL clock
/// (etcd's EtcdServer.sync), its lease clock (revokeExpiredLeases, every half second), the
/// catch-up of lagging watchers (syncWatchersLoop, every 100 ms) and the auto-compactor.
async fn every(
    period: Duration,
    server: Arc<Server>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    tick: Tick,
) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => tick(&server),
            _ = shutdown.changed() => return,
        }
    }
}

/// Fail-stop: once a vital part has died, the member stops serving (its listeners close,
/// in-process calls get the failure) and its raft driver stops, so it neither answers from
/// a store that no longer moves nor takes part in the cluster half-alive.
async fn fail_stop(server: Arc<Server>, shutdown: Arc<tokio::sync::watch::Sender<bool>>) {
    server.failed().await;
    let cause = server.failure().map(|e| e.cause).unwrap_or_default();
    tracing::error!(name = %server.name, cause = %cause, "this member has failed and stops serving");
    // The listeners and their connections end on the shutdown signal (one signal to watch
    // per connection, not two: each is polled on every wake-up of the connection).
    shutdown.send_replace(true);
    server.stop_raft();
}

/// The runtime a member runs on: HTTP, gRPC, the raft driver, apply, peers.
pub(crate) fn member_runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(runtime_workers())
        .thread_name(format!("etcdrs-{name}"))
        // A recursive read of a key 1000 levels deep (the most the store takes) recurses
        // as deep: 2 MiB (tokio's default) was within a few frames of overflowing in a
        // debug build. Untouched stack pages cost nothing.
        .thread_stack_size(RUNTIME_STACK_BYTES)
        // Embedded in a C host, a write to a client or peer that has gone must not kill it.
        .on_thread_start(crate::sigpipe::block_in_this_thread)
        .enable_all()
        .build()
}

/// Each member runtime thread's stack.
const RUNTIME_STACK_BYTES: usize = 8 << 20;

/// Workers of a member's runtime: one per core but the one the log writer's fsyncs keep
/// busy. On 2 cores one worker served GETs 7% faster than two (fewer cross-thread wake-ups)
/// and PUTs as fast (measured again with the raft driver on the runtime: the same).
fn runtime_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// Record this member in the cluster's own records, as etcd does on every start: the
/// initial members and cluster version by the leader, this member's attributes by itself.
async fn publish(server: Arc<Server>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut attributes_done = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let leader = server.leader_id();
        if leader != 0 {
            let me = leader == server.member_id;
            if !attributes_done {
                let op = Op::Publish {
                    member_id: server.member_id,
                    attributes: server.attributes(),
                };
                attributes_done = server.propose(op).await.is_ok();
            }
            if me && !server.has_store_key(&membership::version_key()) {
                let _ = server
                    .propose(Op::ClusterVersion {
                        version: CLUSTER_VERSION.to_string(),
                    })
                    .await;
            }
            if attributes_done {
                server.set_ready();
                // Logged here, not at start: only now do clients get answers.
                tracing::info!(name = %server.name, client_urls = %server.client_urls().join(","), "member is serving");
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_failed_member_stops_serving_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut node = Node::start(Config::ephemeral("f", dir.path().join("f"))).unwrap();
        let client = node.client();
        let rt = runtime();
        rt.block_on(client.set("/k", "v", None)).unwrap();
        let url = node.client_urls()[0].clone();
        let addr = url.trim_start_matches("http://").to_string();
        assert!(std::net::TcpStream::connect(&addr).is_ok());
        assert!(node.failure().is_none());

        node.server
            .status
            .set_failed("the log writer died (injected by the test)");

        let e = node.failure().expect("reported to the host");
        assert_eq!(e.code, ErrorCode::Stopped);
        assert!(e.cause.contains("injected by the test"), "{}", e.cause);
        // In-process reads and writes get the failure, not the frozen store.
        let read = rt.block_on(client.get("/k")).unwrap_err();
        assert_eq!(read.code, ErrorCode::Stopped);
        assert!(
            read.cause.contains("injected by the test"),
            "{}",
            read.cause
        );
        assert!(rt.block_on(client.set("/k", "w", None)).is_err());
        // The client port closes.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(&addr).is_ok() {
            assert!(Instant::now() < deadline, "{url} still accepts connections");
            std::thread::sleep(Duration::from_millis(20));
        }
        node.stop();
        assert!(node.failure().is_some(), "the failure stays reported");
    }

    /// A connection that sends no complete request headers is closed after the header-read
    /// timeout; a long-poll watch outlives it.
    #[test]
    fn slow_headers_are_cut_but_long_polls_are_not() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::ephemeral("t", dir.path().join("t"));
        config.header_read_timeout_ms = 300;
        let node = Node::start(config).unwrap();
        let addr = node.client_urls()[0]
            .trim_start_matches("http://")
            .to_string();

        let mut slow = std::net::TcpStream::connect(&addr).unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        slow.write_all(b"GET /v2/keys/ HTTP/1.1\r\nHo").unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        let _ = slow.read_to_end(&mut buf);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "closed by the timeout"
        );

        let mut watch = std::net::TcpStream::connect(&addr).unwrap();
        watch
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        watch
            .write_all(b"GET /v2/keys/w?wait=true HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(900));
        runtime()
            .block_on(node.client().set("/w", "woken", None))
            .unwrap();
        let mut got = String::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !got.contains("woken") && Instant::now() < deadline {
            let mut chunk = [0u8; 1024];
            match watch.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.push_str(&String::from_utf8_lossy(&chunk[..n])),
            }
        }
        assert!(got.contains("woken"), "{got}");
    }

    /// What a raw connection reads within `limit` (until the member closes it or the time
    /// is up).
    fn read_for(s: &mut std::net::TcpStream, limit: Duration) -> String {
        use std::io::Read;
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// One client may hold so many connections and long polls; past them it is refused,
    /// and what it gives back it may take again. A body trickled slower than the read
    /// timeout is refused and changes nothing.
    #[test]
    fn one_client_cannot_hold_more_than_its_share() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::ephemeral("t", dir.path().join("t"));
        config.max_connections_per_client = 4;
        config.max_long_polls_per_client = 2;
        let node = Node::start(config).unwrap();
        let addr = node.client_urls()[0]
            .trim_start_matches("http://")
            .to_string();
        let connect = || std::net::TcpStream::connect(&addr).unwrap();
        let version = b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n";

        // Two long polls, then a third refused with 429 on a connection of its own.
        let mut polls: Vec<_> = (0..2).map(|_| connect()).collect();
        for p in &mut polls {
            p.write_all(b"GET /v2/keys/w?wait=true HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut third = connect();
        third
            .write_all(b"GET /v2/keys/w?wait=true HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let refused = read_for(&mut third, Duration::from_secs(1));
        assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
        assert!(refused.contains("too many long-poll watches"), "{refused}");

        // Four connections held (two polls, the third, one more): a fifth is closed unread.
        let mut fourth = connect();
        fourth.write_all(version).unwrap();
        assert!(read_for(&mut fourth, Duration::from_millis(500)).contains("200 OK"));
        let mut fifth = connect();
        let _ = fifth.write_all(version);
        assert_eq!(read_for(&mut fifth, Duration::from_secs(1)), "");

        // The polls end (their key is set): their permits come back, and so do their
        // connections once closed.
        runtime()
            .block_on(node.client().set("/w", "done", None))
            .unwrap();
        for p in &mut polls {
            assert!(read_for(p, Duration::from_secs(1)).contains("done"));
        }
        drop(polls);
        std::thread::sleep(Duration::from_millis(200));
        let mut again = connect();
        again
            .write_all(b"GET /v2/keys/w?wait=true&waitIndex=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert!(read_for(&mut again, Duration::from_secs(1)).contains("200 OK"));
        drop((third, fourth, fifth, again));
        std::thread::sleep(Duration::from_millis(200));

        // A body trickled past the read timeout: refused, nothing written (a member of
        // its own: its idle connections go as fast).
        let slow_dir = tempfile::tempdir().unwrap();
        let mut config = Config::ephemeral("s", slow_dir.path().join("s"));
        config.header_read_timeout_ms = 400;
        let node = Node::start(config).unwrap();
        let addr = node.client_urls()[0]
            .trim_start_matches("http://")
            .to_string();
        let mut slow = std::net::TcpStream::connect(&addr).unwrap();
        slow.write_all(
            b"PUT /v2/keys/slow HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\nvalue=",
        )
        .unwrap();
        let answer = read_for(&mut slow, Duration::from_secs(2));
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("not received in time"), "{answer}");
        assert!(runtime().block_on(node.client().get("/slow")).is_err());
    }
}
