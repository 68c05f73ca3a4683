//! Clusters of real member processes for tests, each member behind a small TCP proxy on its
//! peer link (as etcd's own tests do it), so a test can cut a member off the network and
//! heal it. Every port is ephemeral: members listen on port 0 and advertise their proxy's
//! URL, which the proxy forwards to wherever the member listens now (also after a restart).

use crate::{eventually, get, try_http, Member};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "etcdrs-test-cluster";

/// The network between the proxies: which members are cut off.
#[derive(Clone, Default)]
pub struct Network {
    inner: Arc<NetInner>,
}

#[derive(Default)]
struct NetInner {
    isolated: Mutex<HashSet<String>>,
    conns: Mutex<Vec<ProxiedConn>>,
}

/// A live proxied connection.
struct ProxiedConn {
    /// The member it reaches and the member it comes from (ids, hex; "" when unknown).
    to: String,
    from: String,
    client: TcpStream,
    upstream: TcpStream,
    /// The URL of the proxy that carries it.
    via: String,
}

impl ProxiedConn {
    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

impl Network {
    fn blocked(&self, to: &str, from: &str) -> bool {
        let cut = self.inner.isolated.lock().unwrap();
        cut.contains(to) || cut.contains(from)
    }

    /// Close the connections `hit` picks.
    fn close_where(&self, hit: impl Fn(&ProxiedConn) -> bool) {
        self.inner.conns.lock().unwrap().retain(|c| {
            if hit(c) {
                c.close();
                return false;
            }
            true
        });
    }

    /// Cut member `id` (hex) off: nothing reaches it, nothing it sends arrives.
    pub fn isolate(&self, id: &str) {
        self.inner.isolated.lock().unwrap().insert(id.to_string());
        self.close_where(|c| c.to == id || c.from == id);
    }

    /// Close every connection that went through the proxy at `url`.
    fn sever(&self, url: &str) {
        self.close_where(|c| c.via == url);
    }

    pub fn heal(&self, id: &str) {
        self.inner.isolated.lock().unwrap().remove(id);
    }
}

/// A TCP proxy in front of one member's peer listener.
pub struct PeerProxy {
    pub url: String,
    net: Network,
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
        let (t, st, me, via) = (target.clone(), stop.clone(), member.clone(), url.clone());
        let (proxy_net, net) = (net.clone(), net.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Acquire) {
                    break;
                }
                let Ok(mut client) = conn else { continue };
                let (t, net, via) = (t.clone(), net.clone(), via.clone());
                let member = me.lock().unwrap().clone();
                std::thread::spawn(move || {
                    let Some(head) = read_head(&mut client) else {
                        return;
                    };
                    let from = sender_of(&head);
                    let port = t.load(Ordering::Acquire);
                    if port == 0 || net.blocked(&member, &from) {
                        return; // dropped: the connection closes
                    }
                    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)) else {
                        return;
                    };
                    if upstream.write_all(&head).is_err() {
                        return;
                    }
                    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                        return;
                    };
                    if let (Ok(c3), Ok(u3)) = (client.try_clone(), upstream.try_clone()) {
                        net.inner.conns.lock().unwrap().push(ProxiedConn {
                            to: member.clone(),
                            from,
                            client: c3,
                            upstream: u3,
                            via,
                        });
                    }
                    let pump = |mut r: TcpStream, mut w: TcpStream| {
                        let _ = std::io::copy(&mut r, &mut w);
                        let _ = r.shutdown(Shutdown::Both);
                        let _ = w.shutdown(Shutdown::Both);
                    };
                    let back = std::thread::spawn(move || pump(u2, c2));
                    pump(client, upstream);
                    let _ = back.join();
                });
            }
        });
        PeerProxy {
            url,
            net: proxy_net,
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
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        self.net.sever(&self.url);
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
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Cluster {
    /// Start `n` members with these extra flags and wait (bounded) for a leader.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
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
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
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
        self.dir.path().join(format!("m{i}"))
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
        self.kill9(i);
        let initial = self.initial_cluster();
        let m = Member::spawn(&self.data_dir(i), self.args(i, &initial, "new"))
            .unwrap_or_else(|log| panic!("m{i} did not restart:\n{log}"));
        self.proxies[i].set_target(m.peer_url.as_deref().expect("peer url in log"));
        self.members[i] = Some(m);
    }

    fn initial_cluster(&self) -> String {
        (0..self.proxies.len())
            .map(|i| format!("m{i}={}", self.proxies[i].url))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Add a member through `via` (POST /v2/members) and start it to join; returns its index.
    pub fn add_member(&mut self, via: usize) -> usize {
        let i = self.proxies.len();
        let p = PeerProxy::start(&self.net);
        let body = format!(r#"{{"peerURLs":["{}"]}}"#, p.url);
        let resp = ureq::post(&format!("{}/v2/members", self.url(via)))
            .set("Content-Type", "application/json")
            .send_string(&body)
            .unwrap_or_else(|e| panic!("member add: {e}"));
        assert_eq!(resp.status(), 201);
        let added: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
        let id = added["id"].as_str().unwrap().to_string();
        p.front(&id);
        self.proxies.push(p);
        self.ids.push(id);
        let initial = self.initial_cluster();
        let m = Member::spawn(&self.data_dir(i), self.args(i, &initial, "existing"))
            .unwrap_or_else(|log| panic!("m{i} did not join:\n{log}"));
        self.proxies[i].set_target(m.peer_url.as_deref().expect("peer url in log"));
        self.members.push(Some(m));
        i
    }

    /// The whole key space as member i serves it locally (sorted), with its X-Etcd-Index.
    pub fn contents(&self, i: usize) -> Option<(String, String)> {
        let r = try_http(
            "GET",
            &format!("{}/v2/keys/?recursive=true&sorted=true", self.url(i)),
            &[],
        )
        .ok()?;
        let node = r.json()["node"].to_string();
        Some((node, r.header("X-Etcd-Index")?.to_string()))
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
