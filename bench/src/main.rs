//! `etcdrs-bench`: a load generator for etcd's v2 HTTP API, for etcdrs and etcd alike.
//!
//! A fixed number of HTTP/1 connections (spread over the endpoints in turn) carries the
//! requests of a fixed number of clients, each waiting for its answer before the next
//! request. After a warm-up, it runs for a duration or a request count and reports
//! throughput, latency percentiles and errors, on stdout and as JSON (`--json FILE`).
//!
//! Workloads: `put` (distinct keys), `get` (existing keys; `--quorum`), `mixed` (90% get,
//! 10% put), `cas` (compare-and-swap contention on one key), `watch` (long-poll watchers on
//! one prefix; delivery latency from a write's acknowledgment to each watcher's event).
//!
//! v3 workloads speak etcd's gRPC API (a light h2 client of its own, `grpc.rs`, one HTTP/2
//! connection per `--conns`): `v3-put` (distinct keys), `v3-range` (existing keys;
//! linearizable, or `--serializable`), `v3-txn` (a compare on a key's mod revision, then a
//! put of it), `v3-watch` (watch fan-out, as `watch`), `v3-keep-alive` (lease renewals on
//! keep-alive streams).
//!
//! Gateway workloads send v3 requests as JSON over HTTP/1.1 (etcd's grpc-gateway):
//! `gw-put` and `gw-range` (as v3-put and v3-range).

mod grpc;

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use rand::Rng;
use serde::Serialize;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, ValueEnum, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Workload {
    Put,
    Get,
    Mixed,
    Cas,
    Watch,
    V3Put,
    V3Range,
    V3Txn,
    V3Watch,
    V3KeepAlive,
    GwPut,
    GwRange,
}

impl Workload {
    fn is_v3(self) -> bool {
        matches!(self, Workload::V3Put | Workload::V3Range | Workload::V3Txn)
    }

    /// v3 through etcd's JSON gateway (HTTP/1.1, POST /v3/kv/...).
    fn is_gateway(self) -> bool {
        matches!(self, Workload::GwPut | Workload::GwRange)
    }
}

#[derive(Parser, Debug)]
#[command(name = "etcdrs-bench", about = "Load generator for etcd's v2 HTTP API")]
struct Args {
    /// What to run.
    #[arg(long, value_enum)]
    workload: Workload,
    /// Comma-separated client URLs; connections go to them in turn.
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    endpoints: String,
    /// HTTP connections (for watch: watchers, one connection each).
    #[arg(long, default_value_t = 32)]
    conns: usize,
    /// Concurrent clients sharing the connections (default: one per connection).
    #[arg(long)]
    clients: Option<usize>,
    /// Measured run time in seconds (ignored when --requests is given).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Measure exactly this many requests (operations) instead of a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// Keys preloaded for get and mixed.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Linearizable reads (quorum=true) for get and mixed.
    #[arg(long)]
    quorum: bool,
    /// v3-range, gw-range: serializable reads (the member's own store) instead of
    /// linearizable ones.
    #[arg(long)]
    serializable: bool,
    /// watch: writes to make while the watchers wait.
    #[arg(long, default_value_t = 100)]
    writes: u64,
    /// A name for this run in the JSON (e.g. "etcdrs" or "etcd").
    #[arg(long, default_value = "")]
    target: String,
    /// Write the result as JSON to this file.
    #[arg(long)]
    json: Option<String>,
    /// Threads of the generator's runtime (it shares the machine with the server it measures).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Key prefix (each run should use its own).
    #[arg(long, default_value = "/bench")]
    prefix: String,
}

#[derive(Serialize)]
struct Latency {
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    max_us: u64,
}

#[derive(Serialize)]
struct Report {
    workload: Workload,
    target: String,
    endpoints: Vec<String>,
    conns: usize,
    clients: usize,
    value_size: usize,
    quorum: bool,
    seconds: f64,
    operations: u64,
    errors: u64,
    /// cas: compare failures (412), which are not errors.
    conflicts: u64,
    throughput: f64,
    latency: Latency,
    /// watch: events every watcher should get, and those delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    events_expected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events_delivered: Option<u64>,
}

/// One HTTP/1.1 keep-alive connection; clients sharing it take turns. Requests are written
/// as one preformatted buffer and answers read with httparse, so the generator spends a few
/// microseconds per request and leaves the machine's cores to the server it measures.
struct Conn {
    io: tokio::sync::Mutex<ConnIo>,
    host: String,
}

struct ConnIo {
    stream: TcpStream,
    /// Bytes read and not yet consumed (the start of the next answer).
    buf: Vec<u8>,
    req: Vec<u8>,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// How an answer's body is framed.
enum Framing {
    Length(usize),
    Chunked,
}

impl Conn {
    async fn open(endpoint: &str) -> Result<Conn, String> {
        let url = url::Url::parse(endpoint).map_err(|e| format!("{endpoint}: {e}"))?;
        let host = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port_or_known_default().unwrap_or(80)
        );
        let stream = TcpStream::connect(&host)
            .await
            .map_err(|e| format!("{host}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            io: tokio::sync::Mutex::new(ConnIo {
                stream,
                buf: Vec::with_capacity(16 * 1024),
                req: Vec::with_capacity(1024),
            }),
            host,
        })
    }

    async fn call(&self, method: &str, path: &str, form: Option<String>) -> Result<Answer, String> {
        self.send(method, path, "application/x-www-form-urlencoded", form)
            .await
    }

    /// POST a JSON body (a gateway request).
    async fn post_json(&self, path: &str, body: String) -> Result<Answer, String> {
        self.send("POST", path, "application/json", Some(body))
            .await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<String>,
    ) -> Result<Answer, String> {
        let mut io = self.io.lock().await;
        let io = &mut *io;
        io.req.clear();
        let _ = write!(
            io.req,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
            self.host
        );
        match &body {
            Some(f) => {
                let _ = write!(
                    io.req,
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{f}",
                    f.len()
                );
            }
            None => io.req.extend_from_slice(b"\r\n"),
        }
        io.stream
            .write_all(&io.req)
            .await
            .map_err(|e| e.to_string())?;
        let (status, framing) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut head = httparse::Response::new(&mut headers);
            match head.parse(&io.buf).map_err(|e| e.to_string())? {
                httparse::Status::Complete(n) => {
                    let status = head.code.unwrap_or(0);
                    let mut framing = Framing::Length(0);
                    for h in head.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let len = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok())
                                .ok_or("bad Content-Length")?;
                            framing = Framing::Length(len);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                            && h.value.eq_ignore_ascii_case(b"chunked")
                        {
                            framing = Framing::Chunked;
                        }
                    }
                    if method == "HEAD" || status == 204 || status == 304 {
                        framing = Framing::Length(0);
                    }
                    io.buf.drain(..n);
                    break (status, framing);
                }
                httparse::Status::Partial => io.fill().await?,
            }
        };
        let body = match framing {
            Framing::Length(len) => {
                while io.buf.len() < len {
                    io.fill().await?;
                }
                io.buf.drain(..len).collect()
            }
            Framing::Chunked => {
                let mut body = Vec::new();
                loop {
                    let (start, size) = loop {
                        match httparse::parse_chunk_size(&io.buf) {
                            Ok(httparse::Status::Complete((start, size))) => break (start, size),
                            Ok(httparse::Status::Partial) => io.fill().await?,
                            Err(_) => return Err("bad chunk size".into()),
                        }
                    };
                    let size = usize::try_from(size).map_err(|_| "chunk too large")?;
                    // The chunk and its CRLF (the last, empty chunk: just the CRLF).
                    while io.buf.len() < start + size + 2 {
                        io.fill().await?;
                    }
                    body.extend_from_slice(&io.buf[start..start + size]);
                    io.buf.drain(..start + size + 2);
                    if size == 0 {
                        break body;
                    }
                }
            }
        };
        Ok(Answer { status, body })
    }
}

impl ConnIo {
    /// Read more of the answer; the connection closing before it is complete is an error.
    async fn fill(&mut self) -> Result<(), String> {
        self.buf.reserve(16 * 1024);
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err("connection closed".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Bytes as the gateway's JSON carries them.
fn b64(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn value_form(value: &str) -> String {
    format!("value={value}")
}

/// The modifiedIndex of a v2 answer's node.
fn modified_index(body: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["node"]["modifiedIndex"].as_u64()
}

/// What the measured phase has seen so far.
struct Tally {
    hist: Mutex<Histogram<u64>>,
    ops: AtomicU64,
    errors: AtomicU64,
    conflicts: AtomicU64,
    measuring: AtomicBool,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            hist: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram")),
            ops: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
        }
    }

    /// Record an operation that was `counted` (began in the measured phase).
    fn record(&self, took: Duration, counted: bool) {
        if counted {
            self.ops.fetch_add(1, Ordering::Relaxed);
            let us = took.as_micros().clamp(1, 600_000_000) as u64;
            let _ = self.hist.lock().unwrap().record(us);
        }
    }

    fn error(&self, counted: bool) {
        if counted {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How a client reaches the server: v2 over its own HTTP/1 loop, v3 over gRPC.
enum Link {
    Http(Arc<Conn>),
    Grpc(grpc::GrpcConn),
}

/// One operation of a client of the put/get/mixed/cas and v3 workloads.
async fn operation(
    args: &Args,
    link: &Link,
    client: usize,
    seq: u64,
    value: &str,
    tally: &Tally,
    counted: bool,
) {
    match link {
        Link::Http(conn) => v2_operation(args, conn, client, seq, value, tally, counted).await,
        Link::Grpc(c) => {
            let started = Instant::now();
            match v3_operation(args, c, client, seq, value).await {
                Ok(()) => tally.record(started.elapsed(), counted),
                Err(_) => tally.error(counted),
            }
        }
    }
}

async fn v3_operation(
    args: &Args,
    c: &grpc::GrpcConn,
    client: usize,
    seq: u64,
    value: &str,
) -> Result<(), String> {
    use etcdrs_core::pb::etcdserverpb::{
        compare, request_op, Compare, PutRequest, RangeRequest, RequestOp, TxnRequest,
    };
    let p = &args.prefix;
    let bytes = |s: String| bytes::Bytes::from(s.into_bytes());
    let put = |key: String| PutRequest {
        key: bytes(key),
        value: bytes(value.to_string()),
        ..Default::default()
    };
    match args.workload {
        Workload::V3Put => {
            let r = put(format!("{p}/c{client}-{seq}"));
            c.unary("/etcdserverpb.KV/Put", &r).await.map(|_| ())
        }
        Workload::V3Range => {
            let k = rand::thread_rng().gen_range(0..args.keys);
            let r = RangeRequest {
                key: bytes(format!("{p}/k{k}")),
                serializable: args.serializable,
                ..Default::default()
            };
            c.unary("/etcdserverpb.KV/Range", &r).await.map(|_| ())
        }
        Workload::V3Txn => {
            let key = format!("{p}/k{}", rand::thread_rng().gen_range(0..args.keys));
            let t = TxnRequest {
                compare: vec![Compare {
                    key: bytes(key.clone()),
                    target: compare::CompareTarget::Mod as i32,
                    result: compare::CompareResult::Greater as i32,
                    target_union: Some(compare::TargetUnion::ModRevision(0)),
                    ..Default::default()
                }],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(put(key))),
                }],
                failure: vec![],
            };
            c.unary("/etcdserverpb.KV/Txn", &t).await.map(|_| ())
        }
        other => unreachable!("{other:?} is not a v3 workload"),
    }
}

/// One operation of a client of the v2 put/get/mixed/cas workloads.
async fn v2_operation(
    args: &Args,
    conn: &Conn,
    client: usize,
    seq: u64,
    value: &str,
    tally: &Tally,
    counted: bool,
) {
    let started = Instant::now();
    let q = if args.quorum { "?quorum=true" } else { "" };
    let p = &args.prefix;
    let result = match args.workload {
        Workload::Put => {
            let path = format!("{p}/c{client}-{seq}");
            conn.call("PUT", &format!("/v2/keys{path}"), Some(value_form(value)))
                .await
        }
        Workload::Get => {
            let k = rand::thread_rng().gen_range(0..args.keys);
            conn.call("GET", &format!("/v2/keys{p}/k{k}{q}"), None)
                .await
        }
        Workload::Mixed => {
            let k = rand::thread_rng().gen_range(0..args.keys);
            if rand::thread_rng().gen_ratio(1, 10) {
                conn.call("PUT", &format!("/v2/keys{p}/k{k}"), Some(value_form(value)))
                    .await
            } else {
                conn.call("GET", &format!("/v2/keys{p}/k{k}{q}"), None)
                    .await
            }
        }
        Workload::Cas => {
            let key = format!("/v2/keys{p}/cas");
            match conn.call("GET", &key, None).await {
                Ok(a) if is_success(a.status) => match modified_index(&a.body) {
                    Some(i) => {
                        let form = format!("value={client}-{seq}&prevIndex={i}");
                        conn.call("PUT", &key, Some(form)).await
                    }
                    None => Err("no modifiedIndex".into()),
                },
                other => other,
            }
        }
        Workload::GwPut => {
            let key = b64(format!("{p}/c{client}-{seq}"));
            let value = b64(value);
            conn.post_json(
                "/v3/kv/put",
                format!(r#"{{"key":"{key}","value":"{value}"}}"#),
            )
            .await
        }
        Workload::GwRange => {
            let k = rand::thread_rng().gen_range(0..args.keys);
            let key = b64(format!("{p}/k{k}"));
            let serializable = args.serializable;
            conn.post_json(
                "/v3/kv/range",
                format!(r#"{{"key":"{key}","serializable":{serializable}}}"#),
            )
            .await
        }
        Workload::Watch | Workload::V3Watch | Workload::V3KeepAlive => {
            unreachable!("{:?} has its own driver", args.workload)
        }
        v3 => unreachable!("{v3:?} goes over gRPC"),
    };
    match result {
        Ok(a) if is_success(a.status) => tally.record(started.elapsed(), counted),
        Ok(a) if a.status == 412 && args.workload == Workload::Cas => {
            if counted {
                tally.conflicts.fetch_add(1, Ordering::Relaxed);
            }
        }
        _ => tally.error(counted),
    }
}

async fn open_conns(endpoints: &[String], n: usize) -> Vec<Arc<Conn>> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let ep = &endpoints[i % endpoints.len()];
        match Conn::open(ep).await {
            Ok(c) => conns.push(Arc::new(c)),
            Err(e) => {
                eprintln!("etcdrs-bench: cannot connect: {e}");
                std::process::exit(1);
            }
        }
    }
    conns
}

/// Load the keys that get, mixed, v3-range and v3-txn read.
async fn preload(args: &Args, conns: &[Arc<Link>], value: &str) {
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = conns
        .iter()
        .map(|link| {
            let (link, next, value) = (link.clone(), next.clone(), value.to_string());
            let (keys, prefix) = (args.keys, args.prefix.clone());
            let gateway = args.workload.is_gateway();
            tokio::spawn(async move {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= keys {
                        return;
                    }
                    let path = format!("/v2/keys{prefix}/k{k}");
                    let ok = match &*link {
                        Link::Http(c) if gateway => c
                            .post_json(
                                "/v3/kv/put",
                                format!(
                                    r#"{{"key":"{}","value":"{}"}}"#,
                                    b64(format!("{prefix}/k{k}")),
                                    b64(&value)
                                ),
                            )
                            .await
                            .is_ok_and(|a| is_success(a.status)),
                        Link::Http(c) => c
                            .call("PUT", &path, Some(value_form(&value)))
                            .await
                            .is_ok_and(|a| is_success(a.status)),
                        Link::Grpc(c) => {
                            let put = etcdrs_core::pb::etcdserverpb::PutRequest {
                                key: format!("{prefix}/k{k}").into_bytes().into(),
                                value: value.clone().into_bytes().into(),
                                ..Default::default()
                            };
                            c.unary("/etcdserverpb.KV/Put", &put).await.is_ok()
                        }
                    };
                    if !ok {
                        eprintln!("etcdrs-bench: preload of {path} failed");
                        std::process::exit(1);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn run_requests(args: Arc<Args>, conns: Vec<Link>) -> (Tally, f64) {
    let conns: Vec<Arc<Link>> = conns.into_iter().map(Arc::new).collect();
    let value = "x".repeat(args.value_size);
    if matches!(
        args.workload,
        Workload::Get | Workload::Mixed | Workload::V3Range | Workload::V3Txn | Workload::GwRange
    ) {
        preload(&args, &conns, &value).await;
    }
    if args.workload == Workload::Cas {
        let key = format!("/v2/keys{}/cas", args.prefix);
        if let Link::Http(c) = &*conns[0] {
            let _ = c.call("PUT", &key, Some(value_form("0"))).await;
        }
    }
    let tally = Arc::new(Tally::new());
    let stop = Arc::new(AtomicBool::new(false));
    let remaining = Arc::new(AtomicU64::new(args.requests.unwrap_or(u64::MAX)));
    let clients = args.clients.unwrap_or(conns.len()).max(1);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let conn = conns[i % conns.len()].clone();
            let (args, tally, stop, remaining, value) = (
                args.clone(),
                tally.clone(),
                stop.clone(),
                remaining.clone(),
                value.clone(),
            );
            tokio::spawn(async move {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // An operation counts if it begins in the measured phase.
                    let counted = tally.measuring.load(Ordering::Relaxed);
                    if counted
                        && remaining
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                                r.checked_sub(1)
                            })
                            .is_err()
                    {
                        return;
                    }
                    operation(&args, &conn, i, seq, &value, &tally, counted).await;
                    seq += 1;
                    // A dead server fails every call at once, without a pending await: the
                    // timer that ends the run must still get the thread (this yields once
                    // in a while, not per call).
                    tokio::task::consume_budget().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    tally.measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    if args.requests.is_none() {
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
        stop.store(true, Ordering::SeqCst);
    }
    for t in tasks {
        let _ = t.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let tally = Arc::try_unwrap(tally).unwrap_or_else(|_| panic!("clients still running"));
    (tally, seconds)
}

/// Watch fan-out: every connection is a watcher of the prefix (recursive long polls,
/// re-armed from the next index); one more connection writes `writes` keys in sequence.
/// Latency: from a write's acknowledgment to a watcher's receipt of its event.
async fn run_watch(args: Arc<Args>, endpoints: &[String]) -> (Tally, f64, u64, u64) {
    let writer = open_conns(endpoints, 1).await.remove(0);
    let dir = format!("/v2/keys{}/watch", args.prefix);
    let start = writer
        .call("PUT", &format!("{dir}/start"), Some(value_form("0")))
        .await
        .ok()
        .and_then(|a| modified_index(&a.body))
        .expect("first write")
        + 1;
    let watchers = open_conns(endpoints, args.conns).await;
    let acked: Arc<Mutex<std::collections::HashMap<u64, Instant>>> = Default::default();
    let tally = Arc::new(Tally::new());
    tally.measuring.store(true, Ordering::SeqCst);
    let delivered = Arc::new(AtomicU64::new(0));
    let armed = Arc::new(AtomicU64::new(0));
    let value = "x".repeat(args.value_size);
    let tasks: Vec<_> = watchers
        .into_iter()
        .map(|c| {
            let (acked, tally, delivered, armed, dir) = (
                acked.clone(),
                tally.clone(),
                delivered.clone(),
                armed.clone(),
                dir.clone(),
            );
            let writes = args.writes;
            tokio::spawn(async move {
                let mut next = start;
                let mut seen = 0;
                let mut first = true;
                while seen < writes {
                    let path = format!("{dir}?wait=true&recursive=true&waitIndex={next}");
                    if first {
                        armed.fetch_add(1, Ordering::SeqCst);
                        first = false;
                    }
                    let a = match c.call("GET", &path, None).await {
                        Ok(a) if is_success(a.status) => a,
                        _ => {
                            tally.error(true);
                            return;
                        }
                    };
                    let got = Instant::now();
                    let Some(index) = modified_index(&a.body) else {
                        tally.error(true);
                        return;
                    };
                    let acked_at = acked_at(&acked, index).await;
                    tally.record(got.saturating_duration_since(acked_at), true);
                    delivered.fetch_add(1, Ordering::Relaxed);
                    seen += 1;
                    next = index + 1;
                }
            })
        })
        .collect();
    // Let every watcher send its first long poll before the writes start.
    while armed.load(Ordering::SeqCst) < args.conns as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup.min(2.0))).await;
    let started = Instant::now();
    for i in 0..args.writes {
        match writer
            .call("PUT", &format!("{dir}/k{i}"), Some(value_form(&value)))
            .await
        {
            Ok(a) if is_success(a.status) => {
                if let Some(index) = modified_index(&a.body) {
                    acked.lock().unwrap().insert(index, Instant::now());
                }
            }
            _ => tally.error(true),
        }
    }
    finish_watch(&args, tasks, started, &delivered, tally).await
}

/// The end of a watch run: wait (at most two minutes) for the watchers; the tally, the
/// seconds since the writes started, and the events expected and delivered.
async fn finish_watch(
    args: &Args,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
    delivered: &AtomicU64,
    tally: Arc<Tally>,
) -> (Tally, f64, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    for t in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, t).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let expected = args.writes * args.conns as u64;
    (
        take_tally(tally),
        seconds,
        expected,
        delivered.load(Ordering::SeqCst),
    )
}

/// When the write of `rev` was acknowledged: an event may arrive before the writer has its
/// answer, so this waits for it.
async fn acked_at<K: std::hash::Hash + Eq>(
    acked: &Mutex<std::collections::HashMap<K, Instant>>,
    rev: K,
) -> Instant {
    loop {
        if let Some(t) = acked.lock().unwrap().get(&rev) {
            return *t;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// The tally, from tasks that may still hold it (watchers still waiting when not
/// everything was delivered): what was recorded.
fn take_tally(tally: Arc<Tally>) -> Tally {
    Arc::try_unwrap(tally).unwrap_or_else(|t| {
        let fresh = Tally::new();
        *fresh.hist.lock().unwrap() = t.hist.lock().unwrap().clone();
        fresh
            .ops
            .store(t.ops.load(Ordering::SeqCst), Ordering::SeqCst);
        fresh
            .errors
            .store(t.errors.load(Ordering::SeqCst), Ordering::SeqCst);
        fresh
    })
}

/// v3-watch: `conns` watchers (one HTTP/2 connection and Watch stream each) on one prefix
/// from the first write's revision; one writer; delivery latency from each write's
/// acknowledgment to each watcher's event, as the v2 watch workload measures.
async fn run_v3_watch(args: Arc<Args>, endpoints: &[String]) -> (Tally, f64, u64, u64) {
    use etcdrs_core::pb::etcdserverpb::{
        watch_request::RequestUnion, PutRequest, PutResponse, WatchCreateRequest, WatchRequest,
        WatchResponse,
    };
    use prost::Message as _;
    let fail = |e: String| -> ! {
        eprintln!("etcdrs-bench: {e}");
        std::process::exit(1)
    };
    let writer = grpc::GrpcConn::open(&endpoints[0])
        .await
        .unwrap_or_else(|e| fail(e));
    let prefix = format!("{}/watch/", args.prefix);
    let put = |key: String, value: String| PutRequest {
        key: key.into_bytes().into(),
        value: value.into_bytes().into(),
        ..Default::default()
    };
    let revision_of = |answer: bytes::Bytes| {
        PutResponse::decode(answer)
            .ok()
            .and_then(|r| r.header)
            .map(|h| h.revision)
    };
    let first = writer
        .unary(
            "/etcdserverpb.KV/Put",
            &put(format!("{prefix}start"), "0".into()),
        )
        .await
        .unwrap_or_else(|e| fail(e));
    let start = revision_of(first).unwrap_or_else(|| fail("no revision".into())) + 1;
    let mut end = prefix.clone().into_bytes();
    *end.last_mut().unwrap() += 1; // '/' + 1: the prefix's range end
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: prefix.clone().into_bytes().into(),
            range_end: end.into(),
            start_revision: start,
            ..Default::default()
        })),
    };
    let acked: Arc<Mutex<std::collections::HashMap<i64, Instant>>> = Default::default();
    let tally = Arc::new(Tally::new());
    tally.measuring.store(true, Ordering::SeqCst);
    let delivered = Arc::new(AtomicU64::new(0));
    let armed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..args.conns {
        let conn = grpc::GrpcConn::open(&endpoints[i % endpoints.len()])
            .await
            .unwrap_or_else(|e| fail(e));
        let (acked, tally, delivered, armed, create) = (
            acked.clone(),
            tally.clone(),
            delivered.clone(),
            armed.clone(),
            create.clone(),
        );
        let writes = args.writes;
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = conn.stream("/etcdserverpb.Watch/Watch", &create).await else {
                tally.error(true);
                return;
            };
            let mut seen = 0;
            while seen < writes {
                let answer = match stream.recv::<WatchResponse>().await {
                    Ok(Some(a)) => a,
                    _ => {
                        tally.error(true);
                        return;
                    }
                };
                if answer.created {
                    armed.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let got = Instant::now();
                for e in answer.events {
                    let rev = e.kv.map_or(0, |kv| kv.mod_revision);
                    let acked_at = acked_at(&acked, rev).await;
                    tally.record(got.saturating_duration_since(acked_at), true);
                    delivered.fetch_add(1, Ordering::Relaxed);
                    seen += 1;
                }
            }
        }));
    }
    // Every watcher created before the writes start.
    while armed.load(Ordering::SeqCst) < args.conns as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup.min(2.0))).await;
    let value = "x".repeat(args.value_size);
    let started = Instant::now();
    for i in 0..args.writes {
        let answer = writer
            .unary(
                "/etcdserverpb.KV/Put",
                &put(format!("{prefix}k{i}"), value.clone()),
            )
            .await;
        match answer.ok().and_then(revision_of) {
            Some(rev) => {
                acked.lock().unwrap().insert(rev, Instant::now());
            }
            None => tally.error(true),
        }
    }
    finish_watch(&args, tasks, started, &delivered, tally).await
}

/// v3-keep-alive: `conns` clients, each with a lease of its own and a LeaseKeepAlive
/// stream on its own connection, renewing as fast as the answers come; the latency of
/// each renewal.
async fn run_v3_keep_alive(args: Arc<Args>, endpoints: &[String]) -> (Tally, f64) {
    use etcdrs_core::pb::etcdserverpb::{
        LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    };
    use prost::Message as _;
    let tally = Arc::new(Tally::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..args.conns.max(1) {
        let conn = match grpc::GrpcConn::open(&endpoints[i % endpoints.len()]).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("etcdrs-bench: cannot connect: {e}");
                std::process::exit(1);
            }
        };
        let (tally, stop) = (tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let grant = LeaseGrantRequest { ttl: 60, id: 0 };
            let granted = conn.unary("/etcdserverpb.Lease/LeaseGrant", &grant).await;
            let Some(id) = granted
                .ok()
                .and_then(|a| LeaseGrantResponse::decode(a).ok())
            else {
                tally.error(true);
                return;
            };
            let renew = LeaseKeepAliveRequest { id: id.id };
            let mut sent = Instant::now();
            let Ok(mut stream) = conn
                .stream("/etcdserverpb.Lease/LeaseKeepAlive", &renew)
                .await
            else {
                tally.error(true);
                return;
            };
            while !stop.load(Ordering::Relaxed) {
                let counted = tally.measuring.load(Ordering::Relaxed);
                match stream.recv::<LeaseKeepAliveResponse>().await {
                    Ok(Some(a)) if a.ttl > 0 => tally.record(sent.elapsed(), counted),
                    _ => {
                        tally.error(counted);
                        return;
                    }
                }
                sent = Instant::now();
                if stream.send(&renew).is_err() {
                    tally.error(counted);
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    tally.measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    stop.store(true, Ordering::SeqCst);
    let seconds = started.elapsed().as_secs_f64();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    (take_tally(tally), seconds)
}

fn main() {
    let args = Arc::new(Args::parse());
    let endpoints: Vec<String> = args
        .endpoints
        .split(',')
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");
    let (tally, seconds, expected, delivered) = rt.block_on(async {
        if args.workload == Workload::Watch {
            let (t, s, e, d) = run_watch(args.clone(), &endpoints).await;
            (t, s, Some(e), Some(d))
        } else if args.workload == Workload::V3Watch {
            let (t, s, e, d) = run_v3_watch(args.clone(), &endpoints).await;
            (t, s, Some(e), Some(d))
        } else if args.workload == Workload::V3KeepAlive {
            let (t, s) = run_v3_keep_alive(args.clone(), &endpoints).await;
            (t, s, None, None)
        } else if args.workload.is_v3() {
            let mut links = Vec::new();
            for i in 0..args.conns.max(1) {
                let ep = &endpoints[i % endpoints.len()];
                match grpc::GrpcConn::open(ep).await {
                    Ok(c) => links.push(Link::Grpc(c)),
                    Err(e) => {
                        eprintln!("etcdrs-bench: cannot connect: {e}");
                        std::process::exit(1);
                    }
                }
            }
            let (t, s) = run_requests(args.clone(), links).await;
            (t, s, None, None)
        } else {
            let conns = open_conns(&endpoints, args.conns.max(1)).await;
            let links = conns.into_iter().map(Link::Http).collect();
            let (t, s) = run_requests(args.clone(), links).await;
            (t, s, None, None)
        }
    });
    let hist = tally.hist.lock().unwrap();
    let ops = tally.ops.load(Ordering::SeqCst);
    let report = Report {
        workload: args.workload,
        target: args.target.clone(),
        endpoints,
        conns: args.conns,
        clients: args.clients.unwrap_or(args.conns),
        value_size: args.value_size,
        quorum: args.quorum,
        seconds,
        operations: ops,
        errors: tally.errors.load(Ordering::SeqCst),
        conflicts: tally.conflicts.load(Ordering::SeqCst),
        throughput: if matches!(args.workload, Workload::Watch | Workload::V3Watch) {
            delivered.unwrap_or(0) as f64 / seconds
        } else {
            ops as f64 / seconds
        },
        latency: Latency {
            p50_us: hist.value_at_quantile(0.50),
            p90_us: hist.value_at_quantile(0.90),
            p99_us: hist.value_at_quantile(0.99),
            max_us: hist.max(),
        },
        events_expected: expected,
        events_delivered: delivered,
    };
    let json = serde_json::to_string_pretty(&report).expect("json");
    println!(
        "{} {}: {:.0} ops/s, p50 {} µs, p90 {} µs, p99 {} µs, max {} µs, {} errors{}",
        report.target,
        serde_json::to_string(&report.workload).unwrap_or_default(),
        report.throughput,
        report.latency.p50_us,
        report.latency.p90_us,
        report.latency.p99_us,
        report.latency.max_us,
        report.errors,
        match (expected, delivered) {
            (Some(e), Some(d)) => format!(", {d}/{e} events delivered"),
            _ => String::new(),
        }
    );
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("etcdrs-bench: {path}: {e}");
            std::process::exit(1);
        }
    }
    if report.errors > 0 || expected.is_some_and(|e| Some(e) != delivered) {
        std::process::exit(3);
    }
}
