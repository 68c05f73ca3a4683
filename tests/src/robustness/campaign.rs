//! One robustness run: a cluster of real member processes behind peer proxies, clients
//! writing, reading and swapping a few keys through different members while faults are
//! injected at random times from a seed, then the checkers' verdicts on the history.

use super::linearizability::{check, lost_write, minimal_failing, Check, Op, OpKind, State};
use crate::cluster::Cluster;
use crate::eventually;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// kill -9 a follower, restart it after a while.
    KillFollower,
    /// kill -9 the leader, restart it after a while.
    KillLeader,
    /// kill -9 a majority at once, restart them after a while.
    KillMajority,
    /// SIGSTOP the leader, SIGCONT it after a while.
    PauseLeader,
    /// Cut the leader off the network, heal after a while.
    IsolateLeader,
    /// Cut a minority (one member of three, two of five) off.
    IsolateMinority,
    /// Cut a majority off: the rest cannot make progress until healed.
    IsolateMajority,
    /// Two sides that cannot talk, and one member that talks to both (Jepsen's bridge).
    Bridge,
    /// Nothing the leader sends arrives; what others send it still does.
    LeaderSendsNothing,
    /// 20–150 ms of latency on every chunk to and from one member.
    SlowMember,
    /// Peer connections of one member dropped at random.
    FlakyMember,
    /// Remove a member (the leader or not) and add a new one, under load.
    ReplaceMember,
    /// Fill one member's disk, then free it (and restart the member if it stopped).
    FullDisk,
}

impl FaultKind {
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::KillFollower,
        FaultKind::KillLeader,
        FaultKind::KillMajority,
        FaultKind::PauseLeader,
        FaultKind::IsolateLeader,
        FaultKind::IsolateMinority,
        FaultKind::IsolateMajority,
        FaultKind::Bridge,
        FaultKind::LeaderSendsNothing,
        FaultKind::SlowMember,
        FaultKind::FlakyMember,
        FaultKind::ReplaceMember,
        FaultKind::FullDisk,
    ];

    /// Its name on the command line (kebab case of the variant).
    pub fn name(self) -> String {
        let debug = format!("{self:?}");
        let mut name = String::new();
        for (i, c) in debug.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                name.push('-');
            }
            name.push(c.to_ascii_lowercase());
        }
        name
    }

    /// The kind with this `name`.
    pub fn named(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Whether the fault means anything for a cluster of `n`.
    fn applies(self, n: usize) -> bool {
        match self {
            FaultKind::KillFollower
            | FaultKind::IsolateMinority
            | FaultKind::IsolateLeader
            | FaultKind::LeaderSendsNothing
            | FaultKind::SlowMember
            | FaultKind::FlakyMember => n > 1,
            FaultKind::Bridge | FaultKind::ReplaceMember => n >= 3,
            _ => true,
        }
    }

    /// Whether another fault may run at the same time (membership changes and full disks
    /// run alone, so what they leave behind is theirs).
    fn mixes(self) -> bool {
        !matches!(self, FaultKind::ReplaceMember | FaultKind::FullDisk)
    }
}

/// What a run does.
#[derive(Clone, Debug)]
pub struct Config {
    pub members: usize,
    pub clients: usize,
    pub keys: usize,
    /// How long faults are injected (the clients run a little longer).
    pub duration: Duration,
    pub faults: Vec<FaultKind>,
    /// v3 keys too (put, linearizable range and txn swaps through the JSON gateway).
    pub v3: bool,
    /// Chance that a second fault starts while one is on.
    pub mix: f64,
    /// A small --snapshot-count, so snapshots and catch-up from them happen all the time.
    pub snapshot_count: u64,
    pub election_timeout_ms: u64,
}

impl Config {
    /// A random configuration from `seed`: 1, 3 or 5 members and a random mix of the
    /// `allowed` faults.
    pub fn random(seed: u64, duration: Duration, allowed: &[FaultKind]) -> Config {
        let mut rng = StdRng::seed_from_u64(seed);
        let members = [1, 3, 3, 5][rng.gen_range(0..4)];
        let mut faults: Vec<FaultKind> = allowed
            .iter()
            .copied()
            .filter(|f| f.applies(members) && rng.gen_bool(0.5))
            .collect();
        if faults.is_empty() {
            let fits: Vec<FaultKind> = allowed
                .iter()
                .copied()
                .filter(|f| f.applies(members))
                .collect();
            faults.push(*fits.first().unwrap_or(&FaultKind::PauseLeader));
        }
        Config {
            members,
            clients: rng.gen_range(3..=6),
            keys: rng.gen_range(1..=3),
            duration,
            faults,
            v3: rng.gen_bool(0.5),
            mix: [0.0, 0.3, 0.6][rng.gen_range(0..3)],
            snapshot_count: [20, 50, 200][rng.gen_range(0..3)],
            election_timeout_ms: 500,
        }
    }
}

/// A checker's verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub check: &'static str,
    /// None: it held; Some: what broke it.
    pub violation: Option<String>,
}

/// What a run did and found.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub config: Config,
    pub faults: Vec<String>,
    pub ops: usize,
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Unknown outcomes settled by the watch record (it saw the write, or it never happened).
    pub resolved: usize,
    /// Events the history watcher saw, and whether its record has no hole.
    pub watch_events: usize,
    pub watch_whole: bool,
    /// Items acknowledged into the queue.
    pub queued: usize,
    /// The longest a leader took to be back after a fault ended.
    pub slowest_recovery: Duration,
    pub verdicts: Vec<Verdict>,
    /// The whole history, one operation per line, per key (kept for replay on failure).
    pub history: String,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.violation.is_none())
    }

    /// One line: seed, cluster, faults, operations and each verdict.
    pub fn summary(&self) -> String {
        let verdicts: Vec<String> = self
            .verdicts
            .iter()
            .map(|v| {
                format!(
                    "{}={}",
                    v.check,
                    if v.violation.is_none() {
                        "ok"
                    } else {
                        "VIOLATED"
                    }
                )
            })
            .collect();
        format!(
            "seed {} members {} clients {} keys {}{} snapshot-count {} faults [{}] ops {} (ok {}, failed {}, unknown {}, resolved by the watch {}) queued {} watch events {}{} leader back within {} ms {}",
            self.seed,
            self.config.members,
            self.config.clients,
            self.config.keys,
            if self.config.v3 { " (v2 and v3)" } else { " (v2)" },
            self.config.snapshot_count,
            self.faults.join(", "),
            self.ops,
            self.ok,
            self.failed,
            self.unknown,
            self.resolved,
            self.queued,
            self.watch_events,
            if self.watch_whole { "" } else { " (with a gap)" },
            self.slowest_recovery.as_millis(),
            verdicts.join(" ")
        )
    }
}

/// An operation and the X-Etcd-Index of its answer, as a client recorded it.
struct Recorded {
    key: usize,
    op: Op,
    index: Option<u64>,
    /// The header revision of its answer (v3 keys).
    revision: Option<u64>,
    /// For an acknowledged write or swap: the modifiedIndex it was given.
    modified: Option<u64>,
}

fn signal(pid: u32, sig: &str) {
    // A member killed while paused is gone: the signal to it fails, quietly.
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status();
}

/// The client URLs of the members, updated as they restart.
type Urls = Arc<RwLock<Vec<Option<String>>>>;

fn publish(cluster: &Cluster, urls: &Urls) {
    let now: Vec<Option<String>> = cluster
        .members
        .iter()
        .map(|m| m.as_ref().map(|m| m.url.clone()))
        .collect();
    *urls.write().unwrap() = now;
}

/// What became of a request.
enum Answer {
    Reply(crate::Reply),
    /// No connection was made: the member never saw it.
    NotSent,
    /// Sent, but no answer came (a timeout, a dropped connection): it may have happened.
    Lost,
}

fn answer(r: Result<crate::Reply, Box<ureq::Transport>>) -> Answer {
    match r {
        Ok(reply) => Answer::Reply(reply),
        Err(t) if t.kind() == ureq::ErrorKind::ConnectionFailed => Answer::NotSent,
        Err(_) => Answer::Lost,
    }
}

/// What a client last saw in a key: its value and, from the v2 API, its modifiedIndex (the
/// expected value, or index, of its next swap).
type Seen = Option<(String, Option<u64>)>;

/// An operation as planned: the register operation, with no outcome yet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plan {
    Read,
    Write,
    Swap,
}

/// What came of one operation.
enum Step {
    /// Nothing to record: never sent, or a read without an answer.
    Skip,
    Done {
        kind: OpKind,
        /// The outcome is known.
        known: bool,
        /// The X-Etcd-Index (v2) or header revision (v3) of an answer that took effect.
        position: Option<u64>,
        /// For an acknowledged v2 write or swap: the modifiedIndex it was given.
        modified: Option<u64>,
        /// What the client now knows of the key (None: nothing).
        seen: Seen,
    },
}

/// One v2 operation on `/robustness/k<key>` through `base`.
fn v2_step(
    agent: &ureq::Agent,
    base: &str,
    key: usize,
    plan: Plan,
    value: &str,
    last: &Seen,
    by_index: bool,
) -> Step {
    let url = format!("{base}/v2/keys/robustness/k{key}");
    let (kind, reply) = match (plan, last) {
        (Plan::Read, _) => (
            OpKind::Read { value: None },
            crate::try_http_via(agent, "GET", &url, &[("quorum", "true")]),
        ),
        (Plan::Swap, Some((expect, index))) => {
            // By prevIndex or by prevValue: the same swap, as every value is written once.
            let index = index.filter(|_| by_index).map(|i| i.to_string());
            let cond = match &index {
                Some(i) => ("prevIndex", i.as_str()),
                None => ("prevValue", expect.as_str()),
            };
            (
                OpKind::Cas {
                    expect: expect.clone(),
                    value: value.to_string(),
                    swapped: None,
                },
                crate::try_http_via(agent, "PUT", &url, &[("value", value), cond]),
            )
        }
        _ => (
            OpKind::Write {
                value: value.to_string(),
            },
            crate::try_http_via(agent, "PUT", &url, &[("value", value)]),
        ),
    };
    let r = match answer(reply) {
        Answer::NotSent => return Step::Skip,
        Answer::Lost => None,
        Answer::Reply(r) => Some(r),
    };
    let position = || {
        r.as_ref()
            .and_then(|r| r.header("X-Etcd-Index"))
            .and_then(|v| v.parse().ok())
    };
    let modified = |r: &crate::Reply| r.json()["node"]["modifiedIndex"].as_u64();
    match (kind, &r) {
        (OpKind::Read { .. }, Some(r)) if r.status == 200 || r.status == 404 => {
            let body = r.json();
            let seen = match r.status {
                200 => body["node"]["value"]
                    .as_str()
                    .map(|v| (v.to_string(), modified(r))),
                _ if body["errorCode"] == 100 => None,
                _ => return Step::Skip,
            };
            Step::Done {
                kind: OpKind::Read {
                    value: seen.as_ref().map(|s| s.0.clone()),
                },
                known: true,
                position: position(),
                modified: None,
                seen,
            }
        }
        // A read without an answer says nothing.
        (OpKind::Read { .. }, _) => Step::Skip,
        (OpKind::Write { value }, Some(r)) if r.status == 200 || r.status == 201 => Step::Done {
            seen: Some((value.clone(), modified(r))),
            kind: OpKind::Write { value },
            known: true,
            position: position(),
            modified: modified(r),
        },
        (OpKind::Cas { expect, value, .. }, Some(r))
            if r.status == 200 || (r.status == 412 && r.json()["errorCode"] == 101) =>
        {
            let swapped = r.status == 200;
            Step::Done {
                seen: swapped.then(|| (value.clone(), modified(r))),
                modified: if swapped { modified(r) } else { None },
                kind: OpKind::Cas {
                    expect,
                    value,
                    swapped: Some(swapped),
                },
                known: true,
                position: position(),
            }
        }
        // Anything else (a timeout, a dropped connection, an error from a member that may
        // still apply the proposal): the write may or may not have happened. An error's
        // X-Etcd-Index is where the answering member's store was (a new member catching up
        // is behind): it does not count.
        (kind, _) => Step::Done {
            kind,
            known: false,
            position: None,
            modified: None,
            seen: None,
        },
    }
}

/// One v3 operation on key `robustness/k<key>` through `base`'s JSON gateway: a linearizable
/// range, a put, or a txn that puts if the value is the expected one.
fn v3_step(
    agent: &ureq::Agent,
    base: &str,
    key: usize,
    plan: Plan,
    value: &str,
    last: &Seen,
) -> Step {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let k = b64(&format!("robustness/k{key}"));
    let post = |path: &str, body: serde_json::Value| {
        answer(crate::try_reply(
            agent
                .post(&format!("{base}/v3/{path}"))
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
        ))
    };
    let (kind, r) = match (plan, last) {
        (Plan::Read, _) => (
            OpKind::Read { value: None },
            post("kv/range", serde_json::json!({ "key": k })),
        ),
        (Plan::Swap, Some((expect, _))) => (
            OpKind::Cas {
                expect: expect.clone(),
                value: value.to_string(),
                swapped: None,
            },
            post(
                "kv/txn",
                serde_json::json!({
                    "compare": [{"key": k, "result": "EQUAL", "target": "VALUE", "value": b64(expect)}],
                    "success": [{"request_put": {"key": k, "value": b64(value)}}],
                }),
            ),
        ),
        _ => (
            OpKind::Write {
                value: value.to_string(),
            },
            post(
                "kv/put",
                serde_json::json!({ "key": k, "value": b64(value) }),
            ),
        ),
    };
    let r = match r {
        Answer::NotSent => return Step::Skip,
        Answer::Lost => None,
        Answer::Reply(r) if r.status == 200 => {
            serde_json::from_str::<serde_json::Value>(&r.body).ok()
        }
        Answer::Reply(_) => None,
    };
    let revision = |body: &serde_json::Value| {
        body["header"]["revision"]
            .as_str()
            .and_then(|v| v.parse().ok())
    };
    match (kind, r) {
        (OpKind::Read { .. }, Some(body)) => {
            let value = body["kvs"][0]["value"].as_str().map(|v| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .unwrap_or_default();
                String::from_utf8_lossy(&bytes).into_owned()
            });
            Step::Done {
                seen: value.clone().map(|v| (v, None)),
                kind: OpKind::Read { value },
                known: true,
                position: revision(&body),
                modified: None,
            }
        }
        (OpKind::Read { .. }, None) => Step::Skip,
        (OpKind::Write { value }, Some(body)) => Step::Done {
            seen: Some((value.clone(), None)),
            kind: OpKind::Write { value },
            known: true,
            position: revision(&body),
            modified: None,
        },
        (OpKind::Cas { expect, value, .. }, Some(body)) => {
            let swapped = body["succeeded"] == true;
            Step::Done {
                seen: swapped.then(|| (value.clone(), None)),
                kind: OpKind::Cas {
                    expect,
                    value,
                    swapped: Some(swapped),
                },
                known: true,
                position: revision(&body),
                modified: None,
            }
        }
        (kind, None) => Step::Done {
            kind,
            known: false,
            position: None,
            modified: None,
            seen: None,
        },
    }
}

/// What the clients of a run share.
#[derive(Clone)]
struct Shared {
    urls: Urls,
    start: Instant,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Recorded>>>,
    queue: Arc<Mutex<Queue>>,
}

/// What clients put in the queue `/robustness/queue` (v2 create-in-order).
#[derive(Default)]
pub struct Queue {
    /// Acknowledged: (value, the key it was given, its createdIndex).
    acknowledged: Vec<(String, String, u64)>,
    /// Every value sent, acknowledged or not.
    sent: HashSet<String>,
}

/// POST a unique value to the queue and record what came of it.
fn enqueue(agent: &ureq::Agent, base: &str, client: usize, n: u64, queue: &Mutex<Queue>) {
    let value = format!("q{client}-{n}");
    let url = format!("{base}/v2/keys/robustness/queue");
    queue.lock().unwrap().sent.insert(value.clone());
    if let Answer::Reply(r) = answer(crate::try_http_via(
        agent,
        "POST",
        &url,
        &[("value", &value)],
    )) {
        if r.status == 201 {
            let node = &r.json()["node"];
            if let (Some(key), Some(index)) = (node["key"].as_str(), node["createdIndex"].as_u64())
            {
                queue
                    .lock()
                    .unwrap()
                    .acknowledged
                    .push((value, key.to_string(), index));
            }
        }
    }
}

/// The queue's guarantees, against what a quorum read finds at the end: every acknowledged
/// item is there under the key it was given; every item there was sent, and once; keys in
/// order are items in creation order.
fn queue_violation(cluster: &Cluster, queue: &Queue) -> Option<String> {
    let url = format!(
        "{}/v2/keys/robustness/queue",
        cluster.url(*cluster.live().first()?)
    );
    let r = crate::try_http(
        "GET",
        &url,
        &[
            ("recursive", "true"),
            ("sorted", "true"),
            ("quorum", "true"),
        ],
    )
    .ok()?;
    if r.status == 404 && queue.acknowledged.is_empty() {
        return None;
    }
    if r.status != 200 {
        return Some(format!(
            "the queue could not be read: {} {}",
            r.status, r.body
        ));
    }
    let body = r.json();
    let empty = Vec::new();
    let items = body["node"]["nodes"].as_array().unwrap_or(&empty);
    let mut found: HashMap<&str, (&str, u64)> = HashMap::new();
    let mut last: Option<(&str, u64)> = None;
    for item in items {
        let (Some(key), Some(value), Some(created)) = (
            item["key"].as_str(),
            item["value"].as_str(),
            item["createdIndex"].as_u64(),
        ) else {
            return Some(format!("a queue item without key, value or index: {item}"));
        };
        if !queue.sent.contains(value) {
            return Some(format!("{key} = {value:?}: nobody sent it"));
        }
        if found.insert(value, (key, created)).is_some() {
            return Some(format!("{value:?} is in the queue twice"));
        }
        if let Some((k, c)) = last {
            if created <= c {
                return Some(format!(
                    "{key} (created at {created}) sorts after {k} (created at {c})"
                ));
            }
        }
        last = Some((key, created));
    }
    for (value, key, created) in &queue.acknowledged {
        if found.get(value.as_str()) != Some(&(key.as_str(), *created)) {
            return Some(format!(
                "acknowledged {value:?} as {key} at {created}; the queue has {:?}",
                found.get(value.as_str())
            ));
        }
    }
    None
}

/// One client: operations on random keys (v2, and v3 when the run has it) through its own
/// member, one at a time, and now and then an item for the queue.
fn client_loop(client: usize, seed: u64, cfg: Config, shared: Shared) {
    let Shared {
        urls,
        start,
        stop,
        out,
        queue,
    } = shared;
    let mut rng =
        StdRng::seed_from_u64(seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(client as u64 + 1)));
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(1500))
        .build();
    let mut n = 0u64;
    // v2 keys first, then v3 keys.
    let keys = if cfg.v3 { 2 * cfg.keys } else { cfg.keys };
    let mut last: Vec<Seen> = vec![None; keys];
    while !stop.load(Ordering::SeqCst) {
        // Its own member, or the next one that runs (members restart, leave and join).
        let base = {
            let all = urls.read().unwrap();
            (0..all.len()).find_map(|k| all[(client + k) % all.len()].clone())
        };
        let Some(base) = base else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        n += 1;
        if rng.gen_bool(0.1) {
            enqueue(&agent, &base, client, n, &queue);
            continue;
        }
        let key = rng.gen_range(0..keys);
        let roll: f64 = rng.gen();
        let plan = if roll < 0.4 {
            Plan::Read
        } else if roll < 0.8 || last[key].is_none() {
            Plan::Write
        } else {
            Plan::Swap
        };
        let value = format!("c{client}-{n}");
        let by_index = rng.gen_bool(0.5);
        let invoke = start.elapsed().as_nanos() as u64;
        let step = if key < cfg.keys {
            v2_step(&agent, &base, key, plan, &value, &last[key], by_index)
        } else {
            v3_step(&agent, &base, key - cfg.keys, plan, &value, &last[key])
        };
        let complete = start.elapsed().as_nanos() as u64;
        let Step::Done {
            kind,
            known,
            position,
            modified,
            seen,
        } = step
        else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        if !known {
            std::thread::sleep(Duration::from_millis(20));
        }
        // A swap whose outcome is unknown leaves the value unknown too.
        if known || plan == Plan::Swap {
            last[key] = seen;
        }
        let (index, revision) = if key < cfg.keys {
            (position, None)
        } else {
            (None, position)
        };
        out.lock().unwrap().push(Recorded {
            key,
            op: Op {
                client,
                kind,
                invoke,
                complete: known.then_some(complete),
            },
            index,
            revision,
            modified,
        });
    }
}

/// A change to a key as a watcher saw it, and when.
#[derive(Clone, Debug)]
struct Observed {
    index: u64,
    key: usize,
    value: Option<String>,
    at: u64,
}

/// What the history watcher saw.
#[derive(Default)]
struct WatchLog {
    events: Vec<Observed>,
    /// Why the record is not whole (the history it asked for was cleared), if it is not.
    gap: Option<String>,
    /// It waited a while after the last write and nothing more came.
    caught_up: bool,
    /// Times it resumed from its next index on another member or connection.
    resumed: usize,
}

/// One watcher over every key (`?wait=true&recursive=true`), resuming from the index after
/// its last event on whichever member answers, through every fault. After `stop` it ends
/// when a wait of a second brings nothing (it has seen every change).
fn watch_loop(urls: Urls, start: Instant, stop: Arc<AtomicBool>, log: Arc<Mutex<WatchLog>>) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(1000))
        .build();
    let mut next = 1u64;
    let mut member = 0usize;
    let mut give_up = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            let deadline = *give_up.get_or_insert_with(|| Instant::now() + Duration::from_secs(30));
            if Instant::now() > deadline {
                return;
            }
        }
        let all = urls.read().unwrap().clone();
        let Some(base) = all[member % all.len()].clone() else {
            member += 1;
            continue;
        };
        let url = format!("{base}/v2/keys/robustness");
        let next_s = next.to_string();
        let q = [
            ("wait", "true"),
            ("recursive", "true"),
            ("waitIndex", next_s.as_str()),
        ];
        let r = crate::try_http_via(&agent, "GET", &url, &q);
        let at = start.elapsed().as_nanos() as u64;
        // The member answers a wait with its headers at once and the event when it comes;
        // a body that is not JSON is a wait that timed out or a member that went away.
        let answered = r.ok().and_then(|r| {
            let body: serde_json::Value = serde_json::from_str(&r.body).ok()?;
            Some((r.status, body))
        });
        match answered {
            Some((200, body)) => {
                let node = &body["node"];
                let Some(index) = node["modifiedIndex"].as_u64() else {
                    continue;
                };
                let key = node["key"]
                    .as_str()
                    .and_then(|k| k.strip_prefix("/robustness/k"))
                    .and_then(|k| k.parse().ok());
                let mut log = log.lock().unwrap();
                if let Some(key) = key {
                    let value = node["value"].as_str().map(String::from);
                    log.events.push(Observed {
                        index,
                        key,
                        value,
                        at,
                    });
                }
                next = index.max(next) + 1;
            }
            Some((400, body)) if body["errorCode"] == 401 => {
                // Fell more than the event history behind: the record has a hole.
                let mut log = log.lock().unwrap();
                log.gap
                    .get_or_insert_with(|| format!("history cleared at waitIndex {next}: {body}"));
                next = body["index"].as_u64().unwrap_or(next) + 1;
            }
            None if stop.load(Ordering::SeqCst) => {
                // A second without a change after the clients stopped: caught up.
                log.lock().unwrap().caught_up = true;
                return;
            }
            _ => {
                // Another member, from the same index.
                member += 1;
                log.lock().unwrap().resumed += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Inject one fault; answers what was done and how to undo it. `busy` are members another
/// fault holds (they are not picked again).
fn inject(
    cluster: &mut Cluster,
    urls: &Urls,
    kind: FaultKind,
    busy: &[usize],
    rng: &mut StdRng,
) -> (String, Undo) {
    let active = cluster.active();
    let n = active.len();
    let leader = cluster.leader();
    // Members in a random order, those another fault holds last.
    let shuffled = |rng: &mut StdRng| {
        let mut all = active.clone();
        for i in (1..all.len()).rev() {
            all.swap(i, rng.gen_range(0..=i));
        }
        all.sort_by_key(|i| busy.contains(i));
        all
    };
    let some = |rng: &mut StdRng, count: usize| {
        let mut all = shuffled(rng);
        all.truncate(count);
        all
    };
    let follower = |rng: &mut StdRng| {
        let all = shuffled(rng);
        all.iter()
            .copied()
            .find(|i| Some(*i) != leader)
            .unwrap_or(all[0])
    };
    let the_leader = |rng: &mut StdRng| leader.unwrap_or_else(|| some(rng, 1)[0]);
    let majority = n / 2 + 1;
    let id = |i: usize| cluster.ids[i].clone();
    let (what, undo) = match kind {
        FaultKind::KillFollower => {
            let i = follower(rng);
            cluster.kill9(i);
            (format!("kill -9 m{i} (a follower)"), Undo::Restart(vec![i]))
        }
        FaultKind::KillLeader => {
            let i = the_leader(rng);
            cluster.kill9(i);
            (format!("kill -9 m{i} (the leader)"), Undo::Restart(vec![i]))
        }
        FaultKind::KillMajority => {
            let set = some(rng, majority);
            for &i in &set {
                cluster.kill9(i);
            }
            (format!("kill -9 {}", names(&set)), Undo::Restart(set))
        }
        FaultKind::PauseLeader => {
            let i = the_leader(rng);
            let pid = cluster.members[i].as_ref().map(|m| m.child.id());
            if let Some(pid) = pid {
                signal(pid, "STOP");
            }
            (format!("SIGSTOP m{i} (the leader)"), Undo::Continue(i, pid))
        }
        FaultKind::IsolateLeader => {
            let i = the_leader(rng);
            cluster.net.isolate(&id(i));
            (format!("isolate m{i} (the leader)"), Undo::Heal)
        }
        FaultKind::IsolateMinority => {
            let set = some(rng, (n - 1) / 2);
            for &i in &set {
                cluster.net.isolate(&id(i));
            }
            (format!("isolate {} (a minority)", names(&set)), Undo::Heal)
        }
        FaultKind::IsolateMajority => {
            let set = some(rng, majority);
            for &i in &set {
                cluster.net.isolate(&id(i));
            }
            (format!("isolate {} (a majority)", names(&set)), Undo::Heal)
        }
        FaultKind::Bridge => {
            let all = shuffled(rng);
            let (bridge, rest) = all.split_first().expect("members");
            let (a, b) = rest.split_at(rest.len() / 2);
            let side = |s: &[usize]| s.iter().map(|i| id(*i)).collect::<Vec<_>>();
            cluster.net.partition(&side(a), &side(b));
            (
                format!("bridge m{bridge} between {} and {}", names(a), names(b)),
                Undo::Heal,
            )
        }
        FaultKind::LeaderSendsNothing => {
            let i = the_leader(rng);
            for &j in &active {
                if j != i {
                    cluster.net.cut_one_way(&id(i), &id(j));
                }
            }
            (format!("m{i} (the leader) sends nothing"), Undo::Heal)
        }
        FaultKind::SlowMember => {
            let i = some(rng, 1)[0];
            let ms = rng.gen_range(20..150);
            cluster.net.slow_down(&id(i), Duration::from_millis(ms));
            (format!("m{i} {ms} ms slow"), Undo::Heal)
        }
        FaultKind::FlakyMember => {
            let i = some(rng, 1)[0];
            let chance = [0.05, 0.2, 0.5][rng.gen_range(0..3)];
            cluster.net.make_flaky(&id(i), chance);
            (
                format!("m{i} drops {:.0}% of its peer chunks", chance * 100.0),
                Undo::Heal,
            )
        }
        FaultKind::ReplaceMember => {
            let out = some(rng, 1)[0];
            let via = active.iter().copied().find(|i| *i != out).unwrap_or(out);
            let what = match cluster.try_remove_member(out, via) {
                Err(e) => format!("remove m{out}: {e}"),
                Ok(()) => {
                    // The cluster must have its leader again before it takes a new member.
                    let _ = eventually(Duration::from_secs(10), || cluster.leader());
                    let via = cluster.leader().unwrap_or(via);
                    match cluster.try_add_member(via) {
                        Ok(new) => format!(
                            "replace m{out}{} with m{new}",
                            if Some(out) == leader {
                                " (the leader)"
                            } else {
                                ""
                            }
                        ),
                        Err(e) => format!("removed m{out}; add failed: {e}"),
                    }
                }
            };
            (what, Undo::Nothing)
        }
        FaultKind::FullDisk => {
            // Members that joined later have no small disk of their own.
            let on_disk: Vec<usize> = shuffled(rng)
                .into_iter()
                .filter(|i| *i < cluster.disks.len())
                .collect();
            match on_disk.first() {
                Some(&i) => {
                    cluster.disks[i].fill();
                    (format!("m{i}'s disk full"), Undo::FreeDisk(i))
                }
                None => (
                    "(no full disk: no member on a small disk)".into(),
                    Undo::Nothing,
                ),
            }
        }
    };
    publish(cluster, urls);
    (what, undo)
}

fn names(set: &[usize]) -> String {
    set.iter()
        .map(|i| format!("m{i}"))
        .collect::<Vec<_>>()
        .join("+")
}

/// How to end a fault.
enum Undo {
    Restart(Vec<usize>),
    Continue(usize, Option<u32>),
    /// Every link fault healed (faults on links do not overlap members another link fault
    /// holds, so healing all ends just this one's... and any other's, which is fine: the
    /// other's end comes early).
    Heal,
    FreeDisk(usize),
    Nothing,
}

/// The members a fault holds until it ends.
fn held_by(u: &Undo) -> Vec<usize> {
    match u {
        Undo::Restart(set) => set.clone(),
        Undo::Continue(i, _) | Undo::FreeDisk(i) => vec![*i],
        Undo::Heal | Undo::Nothing => Vec::new(),
    }
}

/// End a fault; an Err when a member does not come back.
fn undo(cluster: &mut Cluster, urls: &Urls, u: Undo) -> Result<(), String> {
    let mut result = Ok(());
    match u {
        Undo::Restart(set) => {
            for i in set {
                if let Err(e) = cluster.try_restart(i) {
                    result = Err(e);
                }
            }
        }
        Undo::Continue(_, pid) => {
            if let Some(pid) = pid {
                signal(pid, "CONT");
            }
        }
        Undo::Heal => cluster.net.heal_all(),
        Undo::FreeDisk(i) => {
            cluster.disks[i].free();
            // A member that could not write stops (fail-stop); it must come back on its data.
            let stopped = cluster.members[i]
                .as_mut()
                .is_some_and(|m| !matches!(m.child.try_wait(), Ok(None)));
            if stopped {
                result = cluster.try_restart(i);
            }
        }
        Undo::Nothing => {}
    }
    publish(cluster, urls);
    result
}

/// A linearizable read of key `key` (v2 keys first, then v3 keys) through member `i`:
/// (value, index or revision) or None.
fn final_read(cluster: &Cluster, i: usize, key: usize, v2_keys: usize) -> Option<(State, u64)> {
    if key >= v2_keys {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        let Step::Done {
            kind: OpKind::Read { value },
            known: true,
            position: Some(revision),
            ..
        } = v3_step(
            &agent,
            &cluster.url(i),
            key - v2_keys,
            Plan::Read,
            "",
            &None,
        )
        else {
            return None;
        };
        return Some((value, revision));
    }
    let url = format!("{}/v2/keys/robustness/k{key}", cluster.url(i));
    let r = crate::try_http("GET", &url, &[("quorum", "true")]).ok()?;
    let index = r.header("X-Etcd-Index")?.parse().ok()?;
    match r.status {
        200 => Some((r.json()["node"]["value"].as_str().map(String::from), index)),
        404 if r.json()["errorCode"] == 100 => Some((None, index)),
        _ => None,
    }
}

/// Run once with `cfg` and `seed`.
#[allow(clippy::needless_range_loop)] // keys are numbers in URLs and in the history
pub fn run(seed: u64, cfg: &Config) -> Report {
    let mut rng = StdRng::seed_from_u64(seed);
    let election = cfg.election_timeout_ms.to_string();
    let heartbeat = (cfg.election_timeout_ms / 10).max(10).to_string();
    let snapshots = cfg.snapshot_count.to_string();
    let small_disks = cfg.faults.contains(&FaultKind::FullDisk);
    let mut cluster = Cluster::start_on(
        cfg.members,
        &[
            "--election-timeout",
            &election,
            "--heartbeat-interval",
            &heartbeat,
            "--snapshot-count",
            &snapshots,
        ],
        small_disks,
    );
    let urls: Urls = Arc::new(RwLock::new(Vec::new()));
    publish(&cluster, &urls);
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let queue = Arc::new(Mutex::new(Queue::default()));
    let shared = Shared {
        urls: urls.clone(),
        start,
        stop: stop.clone(),
        out: recorded.clone(),
        queue: queue.clone(),
    };
    let clients: Vec<_> = (0..cfg.clients)
        .map(|c| {
            let (cfg, shared) = (cfg.clone(), shared.clone());
            std::thread::spawn(move || client_loop(c, seed, cfg, shared))
        })
        .collect();
    let watch_stop = Arc::new(AtomicBool::new(false));
    let watch_log = Arc::new(Mutex::new(WatchLog::default()));
    let watcher = {
        let (urls, stop, log) = (urls.clone(), watch_stop.clone(), watch_log.clone());
        std::thread::spawn(move || watch_loop(urls, start, stop, log))
    };

    // Faults at random times until the duration is over; sometimes a second one starts
    // while the first is on (then both end together, the later one first).
    let mut faults = Vec::new();
    let mut broken = None;
    // How long a leader may take to be back after a fault ends: twenty election timeouts
    // (randomized elections, pre-vote, a restarted member replaying its log).
    let bound = Duration::from_millis(cfg.election_timeout_ms * 20);
    let mut slowest = Duration::ZERO;
    while start.elapsed() < cfg.duration {
        std::thread::sleep(Duration::from_millis(rng.gen_range(200..800)));
        let active = cluster.active().len();
        let kind = cfg.faults[rng.gen_range(0..cfg.faults.len())];
        if !kind.applies(active) {
            continue;
        }
        let mut on = Vec::new();
        let (what, u) = inject(&mut cluster, &urls, kind, &[], &mut rng);
        faults.push(format!("{what} at {:.1}s", start.elapsed().as_secs_f64()));
        on.push((u, kind));
        if kind.mixes() && rng.gen_bool(cfg.mix) {
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..500)));
            let second = cfg.faults[rng.gen_range(0..cfg.faults.len())];
            if second.mixes() && second != kind && second.applies(active) {
                let held = held_by(&on[0].0);
                let (what, u) = inject(&mut cluster, &urls, second, &held, &mut rng);
                faults.push(format!("{what} at {:.1}s", start.elapsed().as_secs_f64()));
                on.push((u, second));
            }
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..1500)));
        while let Some((u, _)) = on.pop() {
            if let Err(e) = undo(&mut cluster, &urls, u) {
                broken.get_or_insert(e);
            }
        }
        // After every fault: a leader again within the bound.
        let ended = Instant::now();
        match eventually(bound, || cluster.leader()) {
            Some(_) => slowest = slowest.max(ended.elapsed()),
            None => {
                let last = faults.last().cloned().unwrap_or_default();
                broken.get_or_insert(format!("no leader within {bound:?} after: {last}"));
            }
        }
    }
    // Everything healed: a leader within a bound from the election timeout, and every
    // member serving again.
    let mut verdicts = Vec::new();
    let healed_at = Instant::now();
    let leader = eventually(bound, || cluster.leader());
    verdicts.push(Verdict {
        check: "recovery",
        violation: match leader {
            _ if broken.is_some() => broken,
            None => Some(format!(
                "no leader within {bound:?} after the last fault ended"
            )),
            Some(_) => {
                let serving = cluster.live().into_iter().all(|i| {
                    let url = cluster.url(i);
                    crate::cluster::health_becomes(&url, 200, bound)
                });
                (!serving)
                    .then(|| format!("not every member serves within {bound:?} after healing"))
            }
        },
    });
    let recovered_in = healed_at.elapsed();
    // The clients go on a moment against the healed cluster, then stop.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        let _ = c.join();
    }

    // Every member holds the same store.
    let converged = cluster.converged(Duration::from_secs(20));
    verdicts.push(Verdict {
        check: "convergence",
        violation: (!converged).then(|| {
            let all: Vec<String> = cluster
                .live()
                .into_iter()
                .map(|i| format!("m{i}: {:?}", cluster.contents(i)))
                .collect();
            format!("members differ after healing:\n{}", all.join("\n"))
        }),
    });

    let mut recorded = std::mem::take(&mut *recorded.lock().unwrap());
    // Final quorum reads through every member, after everything else.
    let keys = if cfg.v3 { 2 * cfg.keys } else { cfg.keys };
    let mut finals: Vec<Option<State>> = vec![None; keys];
    for key in 0..keys {
        for i in cluster.live() {
            let invoke = start.elapsed().as_nanos() as u64;
            if let Some((value, index)) = final_read(&cluster, i, key, cfg.keys) {
                let (index, revision) = if key < cfg.keys {
                    (Some(index), None)
                } else {
                    (None, Some(index))
                };
                let complete = start.elapsed().as_nanos() as u64;
                finals[key] = Some(value.clone());
                recorded.push(Recorded {
                    key,
                    op: Op {
                        client: cfg.clients + i,
                        kind: OpKind::Read { value },
                        invoke,
                        complete: Some(complete),
                    },
                    index,
                    revision,
                    modified: None,
                });
            }
        }
    }
    watch_stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    let watched = std::mem::take(&mut *watch_log.lock().unwrap());

    let ops = recorded.len();
    let acknowledged = |o: &Op| {
        o.complete.is_some()
            && !matches!(
                o.kind,
                OpKind::Cas {
                    swapped: Some(false),
                    ..
                }
            )
    };
    let ok = recorded.iter().filter(|r| acknowledged(&r.op)).count();
    let failed = recorded
        .iter()
        .filter(|r| {
            matches!(
                r.op.kind,
                OpKind::Cas {
                    swapped: Some(false),
                    ..
                }
            )
        })
        .count();
    let unknown = ops - ok - failed;

    // Indices (v2) and revisions (v3) a client sees never go back.
    let mut by_client: BTreeMap<usize, Vec<&Recorded>> = BTreeMap::new();
    for r in &recorded {
        by_client.entry(r.op.client).or_default().push(r);
    }
    let mut regress = None;
    for (client, rs) in &by_client {
        let (mut last_index, mut last_revision) = (0, 0);
        for r in rs {
            for (seen, last, what) in [
                (r.index, &mut last_index, "index"),
                (r.revision, &mut last_revision, "revision"),
            ] {
                if let Some(i) = seen {
                    if i < *last && regress.is_none() {
                        regress = Some(format!(
                            "client {client} saw {what} {i} after {last}: {}",
                            r.op
                        ));
                    }
                    *last = (*last).max(i);
                }
            }
        }
    }
    verdicts.push(Verdict {
        check: "indices-monotonic",
        violation: regress,
    });

    let queued = queue.lock().unwrap().acknowledged.len();
    verdicts.push(Verdict {
        check: "queue",
        violation: queue_violation(&cluster, &queue.lock().unwrap()),
    });
    verdicts.push(Verdict {
        check: "watch",
        violation: watch_violation(&recorded, &watched, &finals[..cfg.keys]),
    });
    let whole = watched.gap.is_none() && watched.caught_up;
    let resolved = if whole {
        resolve_unknowns(&mut recorded, &watched, cfg.keys)
    } else {
        0
    };

    // Per key: linearizable, and no acknowledged write lost.
    let mut history = String::new();
    let mut nonlinear = None;
    let mut lost = None;
    for key in 0..keys {
        let name = if key < cfg.keys {
            format!("v2 k{key}")
        } else {
            format!("v3 k{}", key - cfg.keys)
        };
        let ops: Vec<Op> = recorded
            .iter()
            .filter(|r| r.key == key)
            .map(|r| r.op.clone())
            .collect();
        let _ = writeln!(history, "key {name}: {} operations", ops.len());
        let mut sorted = ops.clone();
        sorted.sort_by_key(|o| o.invoke);
        for o in &sorted {
            let _ = writeln!(history, "  {o}");
        }
        if nonlinear.is_none() {
            nonlinear = match check(&ops, &None, SEARCH_BUDGET) {
                Check::Linearizable => None,
                Check::Undecided => Some(format!(
                    "key {name}: undecided after {SEARCH_BUDGET} search states"
                )),
                Check::NotLinearizable => {
                    let min = minimal_failing(&ops, &None, 2000);
                    let lines: Vec<String> = min.iter().map(|o| format!("  {o}")).collect();
                    Some(format!(
                        "key {name} is not linearizable; a smallest failing part:\n{}",
                        lines.join("\n")
                    ))
                }
            };
        }
        if lost.is_none() {
            if let Some(final_value) = &finals[key] {
                lost = lost_write(&ops, final_value).map(|w| format!("key {name}: {w}"));
            }
        }
    }
    verdicts.push(Verdict {
        check: "linearizable",
        violation: nonlinear,
    });
    verdicts.push(Verdict {
        check: "no-lost-writes",
        violation: lost,
    });
    let _ = writeln!(history, "recovered in {recovered_in:?}");
    let _ = writeln!(
        history,
        "watch: {} events, resumed {} times, {}",
        watched.events.len(),
        watched.resumed,
        watched.gap.as_deref().unwrap_or("no gap")
    );
    if verdicts.iter().any(|v| v.violation.is_some()) {
        let _ = writeln!(history, "logs:\n{}", cluster.logs());
    }
    Report {
        seed,
        config: cfg.clone(),
        faults,
        ops,
        ok,
        failed,
        unknown,
        resolved,
        watch_events: watched.events.len(),
        watch_whole: whole,
        queued,
        slowest_recovery: slowest,
        verdicts,
        history,
    }
}

/// States the linearizability search may visit per key before it calls the key undecided.
const SEARCH_BUDGET: usize = 5_000_000;

/// The watch guarantees over what the history watcher saw: events in index order, none
/// twice; every event a change some client asked for; and, when the record is whole, no
/// acknowledged write or swap missing (at the modifiedIndex its client was given) and each
/// key's last event its final value.
fn watch_violation(
    recorded: &[Recorded],
    watched: &WatchLog,
    finals: &[Option<State>],
) -> Option<String> {
    for w in watched.events.windows(2) {
        if w[1].index <= w[0].index {
            return Some(format!(
                "event at index {} came after index {}",
                w[1].index, w[0].index
            ));
        }
    }
    let mut asked: BTreeMap<(usize, &str), &Recorded> = BTreeMap::new();
    for r in recorded {
        if let OpKind::Write { value } | OpKind::Cas { value, .. } = &r.op.kind {
            asked.insert((r.key, value.as_str()), r);
        }
    }
    for e in &watched.events {
        let Some(v) = &e.value else {
            return Some(format!(
                "k{} deleted at index {}: nobody deletes",
                e.key, e.index
            ));
        };
        let Some(r) = asked.get(&(e.key, v.as_str())) else {
            return Some(format!(
                "k{} = {v:?} at index {}: nobody wrote it",
                e.key, e.index
            ));
        };
        if e.at < r.op.invoke {
            return Some(format!(
                "k{} = {v:?} seen at index {} before it was written: {}",
                e.key, e.index, r.op
            ));
        }
    }
    if watched.gap.is_some() || !watched.caught_up {
        return None;
    }
    let seen: HashMap<u64, &Observed> = watched.events.iter().map(|e| (e.index, e)).collect();
    for r in recorded {
        let (Some(index), OpKind::Write { value } | OpKind::Cas { value, .. }) =
            (r.modified, &r.op.kind)
        else {
            continue;
        };
        match seen.get(&index) {
            Some(e) if e.key == r.key && e.value.as_deref() == Some(value) => {}
            other => {
                return Some(format!(
                    "acknowledged at index {index}: {} (k{}); the watcher saw {other:?}",
                    r.op, r.key
                ))
            }
        }
    }
    for (key, last) in finals.iter().enumerate() {
        let Some(last) = last else { continue };
        let event = watched.events.iter().rev().find(|e| e.key == key);
        if event.map(|e| &e.value) != Some(last) && !(event.is_none() && last.is_none()) {
            return Some(format!(
                "k{key}: final value {last:?}, last event {event:?}"
            ));
        }
    }
    None
}

/// With a whole watch record, an operation whose outcome its client never learned is known:
/// a write or swap whose value the watcher saw took effect before the watcher saw it (its
/// completion becomes that time, and a swap is known to have swapped); one whose value
/// never appeared never took effect and is dropped. Answers how many were resolved.
fn resolve_unknowns(recorded: &mut Vec<Recorded>, watched: &WatchLog, v2_keys: usize) -> usize {
    let seen: HashMap<(usize, &str), u64> = watched
        .events
        .iter()
        .filter_map(|e| e.value.as_deref().map(|v| ((e.key, v), e.at)))
        .collect();
    let before = recorded
        .iter()
        .filter(|r| r.op.complete.is_none() && r.key < v2_keys)
        .count();
    recorded.retain_mut(|r| {
        // The watcher sees v2 keys only.
        if r.op.complete.is_some() || r.key >= v2_keys {
            return true;
        }
        let (OpKind::Write { value } | OpKind::Cas { value, .. }) = &r.op.kind else {
            return true;
        };
        let Some(&at) = seen.get(&(r.key, value.as_str())) else {
            return false;
        };
        r.op.complete = Some(at.max(r.op.invoke));
        if let OpKind::Cas { swapped, .. } = &mut r.op.kind {
            *swapped = Some(true);
        }
        true
    });
    before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: usize, value: &str, index: u64, at: u64) -> Recorded {
        Recorded {
            key,
            op: Op {
                client: 0,
                kind: OpKind::Write {
                    value: value.into(),
                },
                invoke: at,
                complete: Some(at + 10),
            },
            index: Some(index),
            revision: None,
            modified: Some(index),
        }
    }

    fn event(key: usize, value: &str, index: u64, at: u64) -> Observed {
        Observed {
            index,
            key,
            value: Some(value.into()),
            at,
        }
    }

    fn whole(events: Vec<Observed>) -> WatchLog {
        WatchLog {
            events,
            gap: None,
            caught_up: true,
            resumed: 0,
        }
    }

    #[test]
    fn the_watch_checker_accepts_a_faithful_record() {
        let recorded = vec![write(0, "a", 5, 100), write(0, "b", 7, 200)];
        let watched = whole(vec![event(0, "a", 5, 105), event(0, "b", 7, 205)]);
        assert_eq!(
            watch_violation(&recorded, &watched, &[Some(Some("b".into()))]),
            None
        );
    }

    #[test]
    fn the_watch_checker_rejects_duplicated_reordered_missed_and_phantom_events() {
        let recorded = vec![write(0, "a", 5, 100), write(0, "b", 7, 200)];
        let finals = [Some(Some("b".to_string()))];
        let cases = [
            // An event delivered twice.
            vec![
                event(0, "a", 5, 105),
                event(0, "a", 5, 106),
                event(0, "b", 7, 205),
            ],
            // Out of order.
            vec![event(0, "b", 7, 205), event(0, "a", 5, 206)],
            // An acknowledged write missing.
            vec![event(0, "b", 7, 205)],
            // A change nobody made.
            vec![
                event(0, "a", 5, 105),
                event(0, "zzz", 6, 150),
                event(0, "b", 7, 205),
            ],
            // Seen before it was written.
            vec![event(0, "a", 5, 105), event(0, "b", 7, 150)],
            // The last event is not the final value.
            vec![event(0, "b", 7, 205), event(0, "a", 8, 300)],
        ];
        for events in cases {
            let why = watch_violation(&recorded, &whole(events.clone()), &finals);
            assert!(why.is_some(), "accepted {events:?}");
        }
    }

    #[test]
    fn resolving_keeps_what_the_watch_saw_and_drops_what_never_happened() {
        let lost = |value: &str| Recorded {
            key: 0,
            op: Op {
                client: 1,
                kind: OpKind::Write {
                    value: value.into(),
                },
                invoke: 50,
                complete: None,
            },
            index: None,
            revision: None,
            modified: None,
        };
        let mut recorded = vec![write(0, "a", 5, 100), lost("seen"), lost("never")];
        let watched = whole(vec![event(0, "a", 5, 105), event(0, "seen", 6, 120)]);
        assert_eq!(resolve_unknowns(&mut recorded, &watched, 1), 2);
        let values: Vec<(String, Option<u64>)> = recorded
            .iter()
            .map(|r| match &r.op.kind {
                OpKind::Write { value } => (value.clone(), r.op.complete),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            values,
            [
                ("a".to_string(), Some(110)),
                ("seen".to_string(), Some(120))
            ]
        );
    }
}
