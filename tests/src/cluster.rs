//! Clusters of real member processes for tests, each member behind a small TCP proxy on its
//! peer link (as etcd's own tests do it), so a test can cut a member off the network and
//! heal it. Every port is ephemeral: members listen on port 0 and advertise their proxy's
//! URL, which the proxy forwards to wherever the member listens now (also after a restart).

use crate::{eventually, get, try_http, Member};
use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "etcdrs-test-cluster";

/// The network between the proxies: which links are cut, slow or flaky. A cut link stalls
/// (its bytes wait, as TCP's do behind a partition) rather than failing fast; healing lets
/// them through.
#[derive(Clone, Default)]
pub struct Network {
    inner: Arc<NetInner>,
}

#[derive(Default)]
struct NetInner {
    faults: Mutex<LinkFaults>,
}

/// Faults on the links between members (ids, hex).
#[derive(Default)]
struct LinkFaults {
    /// Members cut off from everyone.
    isolated: HashSet<String>,
    /// One-way cuts: bytes from the first member to the second wait.
    cut: HashSet<(String, String)>,
    /// Latency added to every chunk a member sends or receives.
    slow: HashMap<String, Duration>,
    /// Chance that a chunk to or from a member ends its connection instead.
    flaky: HashMap<String, f64>,
}

impl LinkFaults {
    fn blocked(&self, from: &str, to: &str) -> bool {
        self.isolated.contains(from)
            || self.isolated.contains(to)
            || self.cut.contains(&(from.to_string(), to.to_string()))
    }
}

impl Network {
    fn faults(&self) -> std::sync::MutexGuard<'_, LinkFaults> {
        self.inner.faults.lock().unwrap()
    }

    /// Cut member `id` (hex) off: nothing reaches it, nothing it sends arrives.
    pub fn isolate(&self, id: &str) {
        self.faults().isolated.insert(id.to_string());
    }

    /// Undo `isolate`.
    pub fn heal(&self, id: &str) {
        self.faults().isolated.remove(id);
    }

    /// Nothing `from` sends reaches `to` (the other way still works).
    pub fn cut_one_way(&self, from: &str, to: &str) {
        self.faults().cut.insert((from.to_string(), to.to_string()));
    }

    /// Every link between the two sides cut both ways.
    pub fn partition(&self, side: &[String], other: &[String]) {
        let mut f = self.faults();
        for a in side {
            for b in other {
                f.cut.insert((a.clone(), b.clone()));
                f.cut.insert((b.clone(), a.clone()));
            }
        }
    }

    /// Every chunk to or from member `id` waits `delay` first.
    pub fn slow_down(&self, id: &str, delay: Duration) {
        self.faults().slow.insert(id.to_string(), delay);
    }

    /// Each chunk to or from member `id` ends its connection with probability `chance`.
    pub fn make_flaky(&self, id: &str, chance: f64) {
        self.faults().flaky.insert(id.to_string(), chance);
    }

    /// Every link whole, fast and reliable again.
    pub fn heal_all(&self) {
        *self.faults() = LinkFaults::default();
    }

    /// Copy `r` to `w` (bytes `from` sends `to`), subject to the link's faults; ends when
    /// either side closes, a flaky link drops it, or `stop` is set.
    fn pump(&self, mut r: TcpStream, mut w: TcpStream, from: &str, to: &str, stop: &AtomicBool) {
        let mut buf = vec![0u8; 64 * 1024];
        let _ = r.set_read_timeout(Some(Duration::from_millis(100)));
        'pump: while !stop.load(Ordering::Acquire) {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(_) => break,
            };
            loop {
                let (blocked, delay, chance) = {
                    let f = self.faults();
                    let delay = f.slow.get(from).or(f.slow.get(to)).copied();
                    let chance = f.flaky.get(from).or(f.flaky.get(to)).copied();
                    (f.blocked(from, to), delay, chance)
                };
                if stop.load(Ordering::Acquire) {
                    break 'pump;
                }
                if blocked {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                if chance.is_some_and(|c| rand::random::<f64>() < c) {
                    break 'pump;
                }
                if let Some(d) = delay {
                    std::thread::sleep(d);
                }
                break;
            }
            if w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = r.shutdown(Shutdown::Both);
        let _ = w.shutdown(Shutdown::Both);
    }
}

/// A TCP proxy in front of one member's peer listener.
pub struct PeerProxy {
    pub url: String,
    /// The id (hex) of the member it fronts, known once the member's URL (ours) is.
    member: Arc<Mutex<String>>,
    target: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
}

/// The X-Server-From header of a raft request, if the head has one.
fn sender_of(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines()
        .find_map(|l| l.strip_prefix("x-server-from:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn read_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut byte).ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&byte[..n]);
    }
    s.set_read_timeout(None).ok()?;
    Some(head)
}

impl PeerProxy {
    /// A proxy on a fresh port; it forwards nothing until told its member and target.
    pub fn start(net: &Network) -> PeerProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listens");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let member = Arc::new(Mutex::new(String::new()));
        let target = Arc::new(AtomicU16::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, st, me) = (target.clone(), stop.clone(), member.clone());
        let net = net.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Acquire) {
                    break;
                }
                let Ok(mut client) = conn else { continue };
                let (t, net, st) = (t.clone(), net.clone(), st.clone());
                let member = me.lock().unwrap().clone();
                std::thread::spawn(move || {
                    let Some(head) = read_head(&mut client) else {
                        return;
                    };
                    let from = sender_of(&head);
                    let port = t.load(Ordering::Acquire);
                    if port == 0 {
                        return; // nobody to forward to yet: the connection closes
                    }
                    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)) else {
                        return;
                    };
                    // The head waits behind a cut like any other bytes.
                    while net.faults().blocked(&from, &member) {
                        if st.load(Ordering::Acquire) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    if upstream.write_all(&head).is_err() {
                        return;
                    }
                    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                        return;
                    };
                    let back = {
                        let (net, from, member, st) =
                            (net.clone(), from.clone(), member.clone(), st.clone());
                        std::thread::spawn(move || net.pump(u2, c2, &member, &from, &st))
                    };
                    net.pump(client, upstream, &from, &member, &st);
                    let _ = back.join();
                });
            }
        });
        PeerProxy {
            url,
            member,
            target,
            stop,
        }
    }

    /// Front the member with this id (hex).
    pub fn front(&self, id: &str) {
        *self.member.lock().unwrap() = id.to_string();
    }

    /// Forward to the member's peer listener at `peer_url` (its actual port).
    pub fn set_target(&self, peer_url: &str) {
        let port = url_port(peer_url);
        self.target.store(port, Ordering::Release);
    }
}

fn url_port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

impl Drop for PeerProxy {
    fn drop(&mut self) {
        // The accept loop sees it at its next connection (this one); every pump within its
        // read timeout, and closes both sides.
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// The id etcd (and etcdrs) gives a member with these peer URLs in a cluster with our token.
pub fn member_hex(peer_url: &str) -> String {
    etcdrs_core::format_id(etcdrs_core::member_id(&[peer_url.to_string()], TOKEN))
}

/// A cluster of member processes, member i named `m{i}`.
pub struct Cluster {
    pub net: Network,
    pub members: Vec<Option<Member>>,
    pub proxies: Vec<PeerProxy>,
    pub ids: Vec<String>,
    /// Members taken out of the cluster (their slots stay, empty).
    pub removed: Vec<bool>,
    /// Each member's data on a disk of its own that a test can fill (when tmpfs mounts are
    /// allowed: root, or a container that permits it).
    pub disks: Vec<SmallDisk>,
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
}

/// A small tmpfs holding one member's data dir, unmounted on drop.
pub struct SmallDisk {
    pub root: PathBuf,
}

impl SmallDisk {
    /// Mount a tmpfs of `mib` MiB at `root`; None where mounting is not allowed.
    pub fn mount(root: &std::path::Path, mib: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(root).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(root)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk {
            root: root.to_path_buf(),
        })
    }

    fn filler(&self) -> PathBuf {
        self.root.join("filler")
    }

    /// Fill what is left of the disk.
    pub fn fill(&self) {
        let Ok(mut f) = std::fs::File::create(self.filler()) else {
            return;
        };
        let chunk = vec![1u8; 1 << 20];
        for size in [1 << 20, 4096, 1] {
            while f.write_all(&chunk[..size]).is_ok() {}
        }
    }

    /// Make room again.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.filler());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.root)
            .status();
    }
}

impl Cluster {
    /// Start `n` members with these extra flags and wait (bounded) for a leader.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_on(n, extra, false)
    }

    /// `start`, each member's data on a small disk of its own when `small_disks` and the
    /// machine allows mounting (see `disks`).
    pub fn start_on(n: usize, extra: &[&str], small_disks: bool) -> Cluster {
        let net = Network::default();
        let proxies: Vec<PeerProxy> = (0..n).map(|_| PeerProxy::start(&net)).collect();
        // A member's id follows from its advertised peer URL: the proxy's.
        let ids: Vec<String> = proxies.iter().map(|p| member_hex(&p.url)).collect();
        for (p, id) in proxies.iter().zip(&ids) {
            p.front(id);
        }
        let initial = (0..n)
            .map(|i| format!("m{i}={}", proxies[i].url))
            .collect::<Vec<_>>()
            .join(",");
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cluster {
            net,
            members: Vec::new(),
            proxies,
            ids,
            removed: vec![false; n],
            disks: Vec::new(),
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        if small_disks {
            let disks: Option<Vec<SmallDisk>> = (0..n)
                .map(|i| SmallDisk::mount(&c.dir.path().join(format!("disk{i}")), 256))
                .collect();
            c.disks = disks.unwrap_or_default();
        }
        let spawned: Vec<_> = (0..n)
            .map(|i| {
                let args = c.args(i, &initial, "new");
                let data = c.data_dir(i);
                std::thread::spawn(move || Member::spawn(&data, args))
            })
            .collect();
        for (i, h) in spawned.into_iter().enumerate() {
            let m = h
                .join()
                .unwrap()
                .unwrap_or_else(|log| panic!("m{i} did not start:\n{log}"));
            c.proxies[i].set_target(m.peer_url.as_deref().expect("peer url in log"));
            c.members.push(Some(m));
        }
        c.wait_leader(Duration::from_secs(20));
        c
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        match self.disks.get(i) {
            Some(d) => d.root.join("data"),
            None => self.dir.path().join(format!("m{i}")),
        }
    }

    fn args(&self, i: usize, initial: &str, state: &str) -> Vec<String> {
        let mut a: Vec<String> = [
            "--name",
            &format!("m{i}"),
            "--data-dir",
            &self.data_dir(i).display().to_string(),
            "--listen-client-urls",
            "http://127.0.0.1:0",
            "--listen-peer-urls",
            "http://127.0.0.1:0",
            "--initial-advertise-peer-urls",
            &self.proxies[i].url,
            "--initial-cluster",
            initial,
            "--initial-cluster-state",
            state,
            "--initial-cluster-token",
            TOKEN,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(self.extra.iter().cloned());
        a
    }

    pub fn url(&self, i: usize) -> String {
        self.members[i]
            .as_ref()
            .expect("member running")
            .url
            .clone()
    }

    /// Client URLs of the members that run.
    pub fn live(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| self.members[*i].is_some())
            .collect()
    }

    /// The leader's index, as the running members agree on it.
    pub fn leader(&self) -> Option<usize> {
        let mut seen = None;
        for i in self.live() {
            let r = try_http("GET", &format!("{}/v2/members/leader", self.url(i)), &[]).ok()?;
            if r.status != 200 {
                return None;
            }
            let id = r.json()["id"].as_str()?.to_string();
            let idx = self.ids.iter().position(|x| *x == id)?;
            if seen.is_some_and(|s| s != idx) {
                return None;
            }
            seen = Some(idx);
        }
        seen.filter(|l| self.members[*l].is_some())
    }

    pub fn wait_leader(&self, limit: Duration) -> usize {
        eventually(limit, || self.leader())
            .unwrap_or_else(|| panic!("no leader within {limit:?}:\n{}", self.logs()))
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(mut m) = self.members[i].take() {
            m.kill9();
        }
    }

    /// Start member i again on its data dir.
    pub fn restart(&mut self, i: usize) {
        self.try_restart(i).unwrap_or_else(|e| panic!("{e}"));
    }

    /// `restart`, an Err (with the member's log) when it does not come up.
    pub fn try_restart(&mut self, i: usize) -> Result<(), String> {
        self.kill9(i);
        let initial = self.initial_cluster();
        let m = Member::spawn(&self.data_dir(i), self.args(i, &initial, "new"))
            .map_err(|log| format!("m{i} did not restart:\n{log}"))?;
        self.proxies[i].set_target(m.peer_url.as_deref().expect("peer url in log"));
        self.members[i] = Some(m);
        Ok(())
    }

    fn initial_cluster(&self) -> String {
        (0..self.proxies.len())
            .filter(|i| !self.removed[*i])
            .map(|i| format!("m{i}={}", self.proxies[i].url))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Add a member through `via` (POST /v2/members) and start it to join; returns its index.
    pub fn add_member(&mut self, via: usize) -> usize {
        self.try_add_member(via).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `add_member`, an Err when the cluster refuses or the member does not start.
    pub fn try_add_member(&mut self, via: usize) -> Result<usize, String> {
        let i = self.proxies.len();
        let p = PeerProxy::start(&self.net);
        let body = format!(r#"{{"peerURLs":["{}"]}}"#, p.url);
        let resp = ureq::post(&format!("{}/v2/members", self.url(via)))
            .timeout(Duration::from_secs(10))
            .set("Content-Type", "application/json")
            .send_string(&body)
            .map_err(|e| format!("member add: {e}"))?;
        if resp.status() != 201 {
            return Err(format!("member add answered {}", resp.status()));
        }
        let added: serde_json::Value =
            serde_json::from_str(&resp.into_string().unwrap_or_default())
                .map_err(|e| format!("member add answer: {e}"))?;
        let id = added["id"]
            .as_str()
            .ok_or("no id in the answer")?
            .to_string();
        p.front(&id);
        self.proxies.push(p);
        self.ids.push(id);
        self.removed.push(false);
        self.members.push(None);
        let initial = self.initial_cluster();
        let m = Member::spawn(&self.data_dir(i), self.args(i, &initial, "existing"))
            .map_err(|log| format!("m{i} did not join:\n{log}"))?;
        self.proxies[i].set_target(m.peer_url.as_deref().expect("peer url in log"));
        self.members[i] = Some(m);
        Ok(i)
    }

    /// Remove member i through `via` (DELETE /v2/members/<id>); it stops, its slot stays empty.
    pub fn try_remove_member(&mut self, i: usize, via: usize) -> Result<(), String> {
        let url = format!("{}/v2/members/{}", self.url(via), self.ids[i]);
        let resp = ureq::delete(&url)
            .timeout(Duration::from_secs(10))
            .call()
            .map_err(|e| format!("member remove: {e}"))?;
        if resp.status() != 204 {
            return Err(format!("member remove answered {}", resp.status()));
        }
        self.removed[i] = true;
        // A removed member shuts itself down; do not wait on it for long.
        if let Some(m) = self.members[i].as_mut() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(m.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.kill9(i);
        Ok(())
    }

    /// Indices of the members in the cluster (running or not).
    pub fn active(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| !self.removed[*i])
            .collect()
    }

    /// Both key spaces as member i serves them locally: the v2 tree (sorted) and every v3
    /// key-value with the revision; and its X-Etcd-Index.
    pub fn contents(&self, i: usize) -> Option<(String, String)> {
        let r = try_http(
            "GET",
            &format!("{}/v2/keys/?recursive=true&sorted=true", self.url(i)),
            &[],
        )
        .ok()?;
        let node = r.json()["node"].to_string();
        // Every v3 key ("\0" to "\0"), from this member's own store.
        let v3 = ureq::post(&format!("{}/v3/kv/range", self.url(i)))
            .timeout(Duration::from_secs(5))
            .send_string(r#"{"key":"AA==","range_end":"AA==","serializable":true}"#)
            .ok()?
            .into_string()
            .ok()?;
        let v3: serde_json::Value = serde_json::from_str(&v3).ok()?;
        let v3 = format!("{} at revision {}", v3["kvs"], v3["header"]["revision"]);
        Some((
            format!("v2 {node}\nv3 {v3}"),
            r.header("X-Etcd-Index")?.to_string(),
        ))
    }

    /// Wait (bounded) until every running member holds identical contents.
    pub fn converged(&self, limit: Duration) -> bool {
        eventually(limit, || {
            let all: Vec<_> = self.live().iter().map(|i| self.contents(*i)).collect();
            (all.iter().all(|c| c.is_some()) && all.windows(2).all(|w| w[0] == w[1])).then_some(())
        })
        .is_some()
    }

    pub fn logs(&self) -> String {
        self.members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().map(|m| format!("--- m{i}\n{}", m.log())))
            .collect()
    }
}

/// Wait until `url` answers /health with `status` (bounded).
pub fn health_becomes(url: &str, status: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if get(&format!("{url}/health")).status == status {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
