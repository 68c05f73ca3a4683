//! Helpers for integration tests: real `etcdrs` processes (and real etcd, for differential
//! tests) on ephemeral 127.0.0.1 ports, and a small HTTP client. Every wait is bounded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod cluster;
pub mod robustness;

/// The `etcdrs` binary of this workspace (built by the test script before the tests run).
pub fn etcdrs_bin() -> PathBuf {
    if let Ok(p) = std::env::var("ETCDRS_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test> -> target/<profile>/etcdrs
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("etcdrs");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bin etcdrs` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A member process. Killed when dropped.
pub struct Member {
    pub child: Child,
    pub url: String,
    /// Where its peer API listens (when the log line names it).
    pub peer_url: Option<String>,
    pub data_dir: PathBuf,
    pub args: Vec<String>,
    pub log: Arc<Mutex<String>>,
}

fn drain_stderr(child: &mut Child, log: Arc<Mutex<String>>) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log.lock().unwrap().push_str(&line);
            log.lock().unwrap().push('\n');
            let _ = tx.send(line);
        }
    });
    rx
}

impl Member {
    /// Start a member with its data in `data_dir`, serving clients on an ephemeral port.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Member {
        let mut args: Vec<String> = vec![
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen-client-urls".into(),
            "http://127.0.0.1:0".into(),
            "--listen-peer-urls".into(),
            "http://127.0.0.1:0".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(data_dir, args).unwrap_or_else(|log| panic!("member did not start:\n{log}"))
    }

    /// Start with exactly these arguments; Err(log) when it exits or does not serve in time.
    pub fn spawn(data_dir: &Path, args: Vec<String>) -> Result<Member, String> {
        let mut child = Command::new(etcdrs_bin())
            .args(&args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn etcdrs");
        let log = Arc::new(Mutex::new(String::new()));
        let lines = drain_stderr(&mut child, log.clone());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("member started") => {
                    let is_url = |s: &&str| s.starts_with("http://") || s.starts_with("https://");
                    let url = line
                        .split('"')
                        .find(is_url)
                        .expect("start line names a URL")
                        .to_string();
                    let peer_url = line
                        .split("peer_urls=")
                        .nth(1)
                        .and_then(|rest| rest.split('"').find(is_url).map(String::from));
                    return Ok(Member {
                        child,
                        url,
                        peer_url,
                        data_dir: data_dir.to_path_buf(),
                        args,
                        log,
                    });
                }
                Ok(_) => {}
                Err(_) => {
                    if let Ok(Some(_)) = child.try_wait() {
                        std::thread::sleep(Duration::from_millis(100));
                        return Err(log.lock().unwrap().clone());
                    }
                }
            }
        }
        let _ = child.kill();
        Err(format!(
            "timed out waiting for the member to serve:\n{}",
            log.lock().unwrap()
        ))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        unsafe_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        None
    }

    /// Start again on the same data dir (a new ephemeral port).
    pub fn restart(&mut self) {
        self.kill9();
        let m = Self::spawn(&self.data_dir, self.args.clone())
            .unwrap_or_else(|log| panic!("restart failed:\n{log}"));
        *self = m;
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Real etcd 3.4 with the v2 API, on ephemeral ports, for differential tests.
pub struct Etcd {
    pub child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

/// `n` distinct ports of 127.0.0.1 free right now, for a server whose URLs must be known
/// before it starts (real etcd, members that list each other in --initial-cluster). They
/// come from below the kernel's ephemeral range: a port 0 bound and released would be
/// handed again to any other test's port-0 listener or outgoing connection before the
/// server binds it (seen under valgrind, which takes seconds to start).
pub fn free_ports(n: usize) -> Vec<u16> {
    use std::hash::{BuildHasher, Hasher};
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let span = u64::from(low.saturating_sub(1024).clamp(1, 10_000));
    let seed = std::collections::hash_map::RandomState::new();
    let mut held = Vec::new();
    let mut attempt = 0u64;
    while held.len() < n {
        attempt += 1;
        assert!(attempt < 10_000, "no free ports below {low}");
        let mut h = seed.build_hasher();
        h.write_u64(attempt);
        let port = low - 1 - (h.finish() % span) as u16;
        // Held until all are found, so the n ports differ.
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Etcd {
    pub fn start() -> Etcd {
        Etcd::start_with(&[])
    }

    /// Real etcd with more flags.
    pub fn start_with(extra: &[&str]) -> Etcd {
        let which = Command::new("sh")
            .arg("-c")
            .arg("command -v etcd")
            .output()
            .expect("sh");
        assert!(
            which.status.success(),
            "real etcd is needed for differential tests: apt-get install etcd-server (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        for _attempt in 0..5 {
            let [cp, pp] = free_ports(2)[..] else {
                unreachable!("two ports")
            };
            let client = format!("http://127.0.0.1:{cp}");
            let peer = format!("http://127.0.0.1:{pp}");
            let mut child = Command::new("etcd")
                .args(["--enable-v2=true", "--name", "default", "--data-dir"])
                .arg(dir.path().join(format!("d{cp}")))
                .args([
                    "--listen-client-urls",
                    &client,
                    "--advertise-client-urls",
                    &client,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer,
                    "--initial-advertise-peer-urls",
                    &peer,
                ])
                .args(["--initial-cluster", &format!("default={peer}")])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn etcd");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                // Ready once the cluster version is set (the first user write gets index 4).
                if let Ok(r) = ureq::get(&format!("{client}/version")).call() {
                    let v = r.into_string().unwrap_or_default();
                    if v.contains("\"etcdcluster\":\"3.") {
                        return Etcd {
                            child,
                            url: client,
                            _dir: dir,
                        };
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("etcd did not start");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

fn try_reply(r: Result<ureq::Response, ureq::Error>) -> Result<Reply, Box<ureq::Transport>> {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => return Err(Box::new(t)),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| {
            resp.header(&n)
                .map(|v| (n.to_ascii_lowercase(), v.to_string()))
        })
        .collect();
    let body = resp.into_string().unwrap_or_default();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// `method url` with form fields in the body (PUT/POST) or the query (others).
pub fn http(method: &str, url: &str, form: &[(&str, &str)]) -> Reply {
    try_http(method, url, form).unwrap_or_else(|e| panic!("HTTP transport error: {e}"))
}

/// As `http`, but a member that cannot be reached is an Err, not a panic.
pub fn try_http(method: &str, url: &str, form: &[(&str, &str)]) -> Result<Reply, String> {
    try_http_via(&agent(), method, url, form).map_err(|e| e.to_string())
}

/// `try_http` through a given agent (its own timeouts).
pub fn try_http_via(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Reply, Box<ureq::Transport>> {
    if matches!(method, "PUT" | "POST") {
        try_reply(a.request(method, url).send_form(form))
    } else {
        let mut req = a.request(method, url);
        for (k, v) in form {
            req = req.query(k, v);
        }
        try_reply(req.call())
    }
}

/// `POST url` with `body` as it is (a JSON gateway request), on a connection of its own. A
/// chunked answer comes back joined, without its trailers (etcd's gateway sends some on
/// errors, which ureq does not read).
pub fn post(url: &str, body: &str) -> Reply {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let text = raw(addr, request.as_bytes(), Duration::from_secs(30));
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer from {url}: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line from {url}: {text:?}"));
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        rest.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A raw HTTP/1.1 exchange with `addr` (host:port): send `request` as it is, read until the
/// server closes or `limit` passes.
pub fn raw(addr: &str, request: &[u8], limit: Duration) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(limit)).expect("read timeout");
    s.write_all(request).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub fn get(url: &str) -> Reply {
    http("GET", url, &[])
}

/// Poll `f` until it returns Some, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Wait (bounded) until the member at `base` has `n` watchers registered, so that a write
/// made next is certainly seen by them.
pub fn wait_for_watchers(base: &str, n: u64) {
    let ok = eventually(Duration::from_secs(10), || {
        (get(&format!("{base}/v2/stats/store")).json()["watchers"].as_u64() == Some(n))
            .then_some(())
    });
    assert!(ok.is_some(), "{base} never had {n} watchers");
}

/// Run real etcdctl (v2 API) against `endpoint`: exit code and stdout+stderr.
pub fn etcdctl(endpoint: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "2")
        .arg("--endpoints")
        .arg(endpoint)
        .args(args)
        .output()
        .expect("etcdctl (apt-get install etcd-client; scripts/test.sh does)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run real etcdctl with the v3 API against `endpoint` (host:port or URL), with `stdin`.
pub fn etcdctl3(endpoint: &str, args: &[&str], stdin: &str) -> Ran {
    use std::io::Write;
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(endpoint)
        .arg("--command-timeout=10s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl (apt-get install etcd-client; scripts/test.sh does)");
    let mut input = child.stdin.take().expect("stdin piped");
    input.write_all(stdin.as_bytes()).expect("etcdctl stdin");
    drop(input);
    let out = child.wait_with_output().expect("etcdctl output");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An ES256 key pair written into `dir`, and the `--auth-token` value that uses it (etcd's
/// syntax, for etcd and etcdrs alike).
pub fn jwt_auth_token(dir: &Path, ttl: &str) -> String {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key pair");
    let (public, private) = (dir.join("jwt-es256.pub"), dir.join("jwt-es256.key"));
    std::fs::write(&public, pair.public_key_pem()).expect("write the public key");
    std::fs::write(&private, pair.serialize_pem()).expect("write the private key");
    format!(
        "jwt,pub-key={},priv-key={},sign-method=ES256,ttl={ttl}",
        public.display(),
        private.display()
    )
}
