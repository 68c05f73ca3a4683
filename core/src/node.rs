//! `Node`: one etcd member running inside the calling process, with its own threads and
//! runtime. Many nodes may live in one process.

use crate::apply::{Applier, CLUSTER_VERSION};
use crate::client::Client;
use crate::config::{ClusterState, Config};
use crate::error::{Error, ErrorCode, Result};
use crate::member::{cluster_id, member_id, parse_initial_cluster};
use crate::raft::{NoPeers, RaftDriver, RaftStatus};
use crate::request::Op;
use crate::server::Server;
use crate::storage::{DataDir, MemberMeta, RaftStorage, Snapshotter, Wal};
use crate::v2store::Store;
use crate::wait::Wait;
use raft::eraftpb::{ConfState, Snapshot};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the leader proposes its clock for TTL expiry (etcd: 500 ms).
const SYNC_INTERVAL: Duration = Duration::from_millis(500);

pub struct Node {
    server: Arc<Server>,
    runtime: Option<tokio::runtime::Runtime>,
    threads: Vec<JoinHandle<()>>,
    shutdown: tokio::sync::watch::Sender<bool>,
    client_urls: Vec<String>,
    published: Arc<AtomicBool>,
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

fn conf_state(voters: Vec<u64>) -> ConfState {
    ConfState {
        voters,
        ..Default::default()
    }
}

impl Node {
    /// Start a member and return once it serves (bounded by a few election timeouts when
    /// its cluster has no leader yet).
    pub fn start(config: Config) -> Result<Node> {
        config.validate()?;
        let initial = parse_initial_cluster(&config.initial_cluster_or_self())?;
        if initial.len() > 1 {
            return Err(Error::new(
                ErrorCode::InvalidConfig,
                "a cluster of more than one member needs the peer transport, which this build does not have yet",
                0,
            ));
        }
        let Some((_, my_peer_urls)) = initial.iter().find(|(n, _)| *n == config.name).cloned()
        else {
            return Err(Error::new(
                ErrorCode::InvalidConfig,
                format!("--initial-cluster has no member named {:?}", config.name),
                0,
            ));
        };
        let ids: Vec<(u64, String, Vec<String>)> = initial
            .iter()
            .map(|(n, urls)| {
                (
                    member_id(urls, &config.initial_cluster_token),
                    n.clone(),
                    urls.clone(),
                )
            })
            .collect();
        let listeners = config
            .listen_client_urls
            .iter()
            .map(|u| bind(u))
            .collect::<Result<Vec<_>>>()?;

        let dd = DataDir::new(&config.data_dir);
        let data_dir_lock = dd.lock()?;
        let snapshotter = Arc::new(Snapshotter::new(&dd.snap_dir())?);
        let (wal, replay) = Wal::open(&dd.wal_dir())?;
        let (meta, snapshot) = match (dd.read_meta()?, snapshotter.load_newest()?) {
            (Some(meta), Some(snap)) => (meta, snap),
            (existing, _) => {
                if config.initial_cluster_state == ClusterState::Existing {
                    return Err(Error::new(
                        ErrorCode::InvalidConfig,
                        "--initial-cluster-state=existing needs the peer transport to join, which this build does not have yet",
                        0,
                    ));
                }
                let me = member_id(&my_peer_urls, &config.initial_cluster_token);
                let meta = existing.unwrap_or(MemberMeta {
                    member_id: me,
                    cluster_id: cluster_id(&ids.iter().map(|m| m.0).collect::<Vec<_>>()),
                });
                // The bootstrap snapshot: an empty store and the initial voters.
                let mut snap = Snapshot {
                    data: Store::new().save().into(),
                    ..Default::default()
                };
                snap.mut_metadata()
                    .set_conf_state(conf_state(ids.iter().map(|m| m.0).collect()));
                snapshotter.save(&snap)?;
                dd.write_meta(&meta)?;
                tracing::info!(member = %crate::member::format_id(meta.member_id), cluster = %crate::member::format_id(meta.cluster_id), data_dir = %config.data_dir.display(), "bootstrapped a new member");
                (meta, snap)
            }
        };
        let snap_index = snapshot.get_metadata().index;
        let mut store = Store::new();
        if !snapshot.data.is_empty() {
            store.recover(&snapshot.data)?;
        }
        let storage = RaftStorage::restore(snapshot.clone(), &replay)?;
        if replay.truncated_bytes > 0 {
            tracing::warn!(
                bytes = replay.truncated_bytes,
                "recovered from a torn write-ahead log tail"
            );
        }
        let voters = storage.conf_state().voters;
        let raft_config = raft::Config {
            id: meta.member_id,
            election_tick: (config.election_timeout_ms / config.heartbeat_interval_ms) as usize,
            heartbeat_tick: 1,
            applied: snap_index,
            pre_vote: true,
            check_quorum: true,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            ..Default::default()
        };
        let mut raw = raft::RawNode::new(&raft_config, storage.clone(), &crate::raft::logger())
            .map_err(|e| Error::new(ErrorCode::RaftInternal, e.to_string(), 0))?;
        if voters == [meta.member_id] {
            // Alone in the group: no need to wait an election timeout to lead.
            let _ = raw.campaign();
        }

        let store = Arc::new(RwLock::new(store));
        let status = Arc::new(RaftStatus::new(snap_index));
        let wait = Arc::new(Wait::default());
        let (raft_tx, raft_rx) = mpsc::channel();
        let (apply_tx, apply_rx) = mpsc::channel();
        let server = Arc::new(Server::new(
            store.clone(),
            raft_tx.clone(),
            wait.clone(),
            status.clone(),
            meta.member_id,
            meta.cluster_id,
            config.name.clone(),
            ids,
            Duration::from_millis(config.request_timeout_ms),
        ));

        let applier = Applier {
            store,
            wait,
            status: status.clone(),
            snapshotter: snapshotter.clone(),
            raft_tx,
            snapshot_count: config.snapshot_count,
            applied: snap_index,
            applied_term: snapshot.get_metadata().term,
            last_snapshot: snap_index,
            conf_state: snapshot.get_metadata().get_conf_state().clone(),
        };
        let driver = RaftDriver {
            node: raw,
            storage,
            wal,
            snapshotter,
            rx: raft_rx,
            apply_tx,
            transport: Box::new(NoPeers),
            status,
            tick: Duration::from_millis(config.heartbeat_interval_ms),
            sync_interval: SYNC_INTERVAL,
        };
        let name = config.name.clone();
        let threads = vec![
            std::thread::Builder::new()
                .name(format!("etcdrs-raft-{name}"))
                .spawn(move || driver.run())
                .map_err(|e| Error::io("spawn raft thread", e))?,
            std::thread::Builder::new()
                .name(format!("etcdrs-apply-{name}"))
                .spawn(move || applier.run(apply_rx))
                .map_err(|e| Error::io("spawn apply thread", e))?,
        ];

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("etcdrs-{name}"))
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let mut client_urls = Vec::new();
        for l in listeners {
            let addr = l.local_addr().map_err(|e| Error::io("listener", e))?;
            client_urls.push(format!("http://{addr}"));
            let _guard = runtime.enter();
            let listener =
                tokio::net::TcpListener::from_std(l).map_err(|e| Error::io("listener", e))?;
            runtime.spawn(crate::api::serve(
                listener,
                server.clone(),
                shutdown_rx.clone(),
            ));
        }
        let advertised = if config.advertise_client_urls.is_empty() {
            client_urls.clone()
        } else {
            config.advertise_client_urls.clone()
        };
        server.set_client_urls(advertised);
        let published = Arc::new(AtomicBool::new(false));
        runtime.spawn(publish(server.clone(), published.clone(), shutdown_rx));

        let node = Node {
            server,
            runtime: Some(runtime),
            threads,
            shutdown,
            client_urls,
            published,
            data_dir_lock: Some(data_dir_lock),
        };
        // Return once the member serves: its attributes are applied (bounded).
        let deadline = Instant::now() + Duration::from_millis(config.election_timeout_ms * 3);
        while !node.published.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::info!(name = %node.server.name, client_urls = ?node.client_urls, "member is serving");
        Ok(node)
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
        self.data_dir_lock = None;
        tracing::info!(name = %self.server.name, "member stopped");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Record this member in the cluster's own records, as etcd does on every start: the
/// initial members and cluster version by the leader, this member's attributes by itself.
async fn publish(
    server: Arc<Server>,
    published: Arc<AtomicBool>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut attributes_done = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let leader = server.leader_id();
        if leader != 0 {
            let me = leader == server.member_id;
            if me && !server.has_store_key(&crate::apply::members_dir()) {
                let members = server
                    .initial_members()
                    .iter()
                    .map(|(id, _, urls)| (*id, urls.clone()))
                    .collect();
                let _ = server.propose(Op::ClusterInit { members }).await;
            }
            if !attributes_done {
                let op = Op::Publish {
                    member_id: server.member_id,
                    attributes: server.attributes(),
                };
                attributes_done = server.propose(op).await.is_ok();
            }
            if me && !server.has_store_key(&crate::apply::version_key()) {
                let _ = server
                    .propose(Op::ClusterVersion {
                        version: CLUSTER_VERSION.to_string(),
                    })
                    .await;
            }
            if attributes_done {
                published.store(true, Ordering::Release);
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = shutdown.changed() => {}
        }
    }
}
