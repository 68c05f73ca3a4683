//! One robustness run: a cluster of real member processes behind peer proxies, clients
//! writing, reading and swapping a few keys through different members while faults are
//! injected at random times from a seed, then the checkers' verdicts on the history.

use super::linearizability::{check, lost_write, minimal_failing, Check, Op, OpKind, State};
use crate::cluster::Cluster;
use crate::eventually;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
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
    ];

    /// Whether the fault means anything for a cluster of `n`.
    fn applies(self, n: usize) -> bool {
        match self {
            FaultKind::KillFollower | FaultKind::IsolateMinority | FaultKind::IsolateLeader => {
                n > 1
            }
            _ => true,
        }
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
    /// A small --snapshot-count, so snapshots and catch-up from them happen all the time.
    pub snapshot_count: u64,
    pub election_timeout_ms: u64,
}

impl Config {
    /// A random configuration from `seed`: 1, 3 or 5 members and a random mix of faults.
    pub fn random(seed: u64, duration: Duration) -> Config {
        let mut rng = StdRng::seed_from_u64(seed);
        let members = [1, 3, 3, 5][rng.gen_range(0..4)];
        let mut faults: Vec<FaultKind> = FaultKind::ALL
            .iter()
            .copied()
            .filter(|f| f.applies(members) && rng.gen_bool(0.6))
            .collect();
        if faults.is_empty() {
            faults.push(if members > 1 {
                FaultKind::KillLeader
            } else {
                FaultKind::PauseLeader
            });
        }
        Config {
            members,
            clients: rng.gen_range(3..=6),
            keys: rng.gen_range(1..=3),
            duration,
            faults,
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
            "seed {} members {} clients {} keys {} snapshot-count {} faults [{}] ops {} (ok {}, failed {}, unknown {}, resolved by the watch {}) watch events {}{} {}",
            self.seed,
            self.config.members,
            self.config.clients,
            self.config.keys,
            self.config.snapshot_count,
            self.faults.join(", "),
            self.ops,
            self.ok,
            self.failed,
            self.unknown,
            self.resolved,
            self.watch_events,
            if self.watch_whole { "" } else { " (with a gap)" },
            verdicts.join(" ")
        )
    }
}

/// An operation and the X-Etcd-Index of its answer, as a client recorded it.
struct Recorded {
    key: usize,
    op: Op,
    index: Option<u64>,
    /// For an acknowledged write or swap: the modifiedIndex it was given.
    modified: Option<u64>,
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
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

/// One client: operations on random keys through member `client % n`, one at a time.
fn client_loop(
    client: usize,
    seed: u64,
    cfg: Config,
    urls: Urls,
    start: Instant,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Recorded>>>,
) {
    let mut rng =
        StdRng::seed_from_u64(seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(client as u64 + 1)));
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(1500))
        .build();
    let member = client % cfg.members;
    let mut n = 0u64;
    // What this client last saw in each key: the expected value of its next swap.
    let mut last: Vec<Option<String>> = vec![None; cfg.keys];
    while !stop.load(Ordering::SeqCst) {
        let Some(base) = urls.read().unwrap()[member].clone() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let key = rng.gen_range(0..cfg.keys);
        let url = format!("{base}/v2/keys/robustness/k{key}");
        let roll: f64 = rng.gen();
        n += 1;
        let value = format!("c{client}-{n}");
        let invoke = start.elapsed().as_nanos() as u64;
        let (kind, reply) = if roll < 0.4 {
            let r = crate::try_http_via(&agent, "GET", &url, &[("quorum", "true")]);
            (OpKind::Read { value: None }, r)
        } else if roll < 0.8 || last[key].is_none() {
            let r = crate::try_http_via(&agent, "PUT", &url, &[("value", &value)]);
            (
                OpKind::Write {
                    value: value.clone(),
                },
                r,
            )
        } else {
            let expect = last[key].clone().unwrap();
            let r = crate::try_http_via(
                &agent,
                "PUT",
                &url,
                &[("value", &value), ("prevValue", &expect)],
            );
            (
                OpKind::Cas {
                    expect,
                    value: value.clone(),
                    swapped: None,
                },
                r,
            )
        };
        let complete = Some(start.elapsed().as_nanos() as u64);
        let reply = match answer(reply) {
            Answer::Reply(r) => Some(r),
            // Never sent: nothing happened, nothing to record.
            Answer::NotSent => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Answer::Lost => None,
        };
        let index = reply
            .as_ref()
            .and_then(|r| r.header("X-Etcd-Index"))
            .and_then(|v| v.parse().ok());
        let modified = |r: &crate::Reply| r.json()["node"]["modifiedIndex"].as_u64();
        let (op, modified) = match (kind, reply) {
            (OpKind::Read { .. }, Some(r)) if r.status == 200 || r.status == 404 => {
                let body = r.json();
                let seen = if r.status == 200 {
                    body["node"]["value"].as_str().map(String::from)
                } else if body["errorCode"] == 100 {
                    None
                } else {
                    continue;
                };
                last[key] = seen.clone();
                let kind = OpKind::Read { value: seen };
                (
                    Op {
                        client,
                        kind,
                        invoke,
                        complete,
                    },
                    None,
                )
            }
            // A read without an answer says nothing.
            (OpKind::Read { .. }, _) => continue,
            (OpKind::Write { value }, Some(r)) if r.status == 200 || r.status == 201 => {
                last[key] = Some(value.clone());
                let kind = OpKind::Write { value };
                (
                    Op {
                        client,
                        kind,
                        invoke,
                        complete,
                    },
                    modified(&r),
                )
            }
            (OpKind::Cas { expect, value, .. }, Some(r))
                if r.status == 200 || (r.status == 412 && r.json()["errorCode"] == 101) =>
            {
                let swapped = r.status == 200;
                last[key] = swapped.then(|| value.clone());
                let at = if swapped { modified(&r) } else { None };
                let swapped = Some(swapped);
                let kind = OpKind::Cas {
                    expect,
                    value,
                    swapped,
                };
                (
                    Op {
                        client,
                        kind,
                        invoke,
                        complete,
                    },
                    at,
                )
            }
            // Anything else (a timeout, a dropped connection, an error from a member that
            // may still apply the proposal): the write may or may not have happened.
            (kind, _) => {
                if let OpKind::Cas { .. } = kind {
                    last[key] = None;
                }
                std::thread::sleep(Duration::from_millis(20));
                let complete = None;
                (
                    Op {
                        client,
                        kind,
                        invoke,
                        complete,
                    },
                    None,
                )
            }
        };
        out.lock().unwrap().push(Recorded {
            key,
            op,
            index,
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

/// Inject one fault; answers what was done and how to undo it.
fn inject(cluster: &mut Cluster, urls: &Urls, kind: FaultKind, rng: &mut StdRng) -> (String, Undo) {
    let n = cluster.members.len();
    let leader = cluster.leader();
    let pick_other = |rng: &mut StdRng, not: Option<usize>| loop {
        let i = rng.gen_range(0..n);
        if Some(i) != not || n == 1 {
            return i;
        }
    };
    let majority = n / 2 + 1;
    let some = |rng: &mut StdRng, count: usize| {
        let mut all: Vec<usize> = (0..n).collect();
        for i in (1..all.len()).rev() {
            all.swap(i, rng.gen_range(0..=i));
        }
        all.truncate(count);
        all
    };
    let (what, undo) = match kind {
        FaultKind::KillFollower => {
            let i = pick_other(rng, leader);
            cluster.kill9(i);
            (format!("kill -9 m{i} (a follower)"), Undo::Restart(vec![i]))
        }
        FaultKind::KillLeader => {
            let i = leader.unwrap_or_else(|| pick_other(rng, None));
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
            let i = leader.unwrap_or_else(|| pick_other(rng, None));
            let pid = cluster.members[i].as_ref().map(|m| m.child.id());
            if let Some(pid) = pid {
                signal(pid, "STOP");
            }
            (format!("SIGSTOP m{i} (the leader)"), Undo::Continue(pid))
        }
        FaultKind::IsolateLeader => {
            let i = leader.unwrap_or_else(|| pick_other(rng, None));
            cluster.net.isolate(&cluster.ids[i]);
            (format!("isolate m{i} (the leader)"), Undo::Heal(vec![i]))
        }
        FaultKind::IsolateMinority => {
            let set = some(rng, (n - 1) / 2);
            for &i in &set {
                cluster.net.isolate(&cluster.ids[i]);
            }
            (
                format!("isolate {} (a minority)", names(&set)),
                Undo::Heal(set),
            )
        }
        FaultKind::IsolateMajority => {
            let set = some(rng, majority);
            for &i in &set {
                cluster.net.isolate(&cluster.ids[i]);
            }
            (
                format!("isolate {} (a majority)", names(&set)),
                Undo::Heal(set),
            )
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
    Continue(Option<u32>),
    Heal(Vec<usize>),
}

fn undo(cluster: &mut Cluster, urls: &Urls, u: Undo) {
    match u {
        Undo::Restart(set) => {
            // Restart together: a majority restarted one by one could not elect anyone
            // until the last one is up, which is fine, but slower.
            for i in set {
                cluster.restart(i);
            }
        }
        Undo::Continue(pid) => {
            if let Some(pid) = pid {
                signal(pid, "CONT");
            }
        }
        Undo::Heal(set) => {
            for i in set {
                cluster.net.heal(&cluster.ids[i]);
            }
        }
    }
    publish(cluster, urls);
}

/// A quorum read of key `key` through member `i`: (value, index) or None.
fn final_read(cluster: &Cluster, i: usize, key: usize) -> Option<(State, u64)> {
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
    let mut cluster = Cluster::start(
        cfg.members,
        &[
            "--election-timeout",
            &election,
            "--heartbeat-interval",
            &heartbeat,
            "--snapshot-count",
            &snapshots,
        ],
    );
    let urls: Urls = Arc::new(RwLock::new(Vec::new()));
    publish(&cluster, &urls);
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..cfg.clients)
        .map(|c| {
            let (cfg, urls, stop, out) =
                (cfg.clone(), urls.clone(), stop.clone(), recorded.clone());
            std::thread::spawn(move || client_loop(c, seed, cfg, urls, start, stop, out))
        })
        .collect();
    let watch_stop = Arc::new(AtomicBool::new(false));
    let watch_log = Arc::new(Mutex::new(WatchLog::default()));
    let watcher = {
        let (urls, stop, log) = (urls.clone(), watch_stop.clone(), watch_log.clone());
        std::thread::spawn(move || watch_loop(urls, start, stop, log))
    };

    // Faults at random times until the duration is over; each ends before the next starts.
    let mut faults = Vec::new();
    while start.elapsed() < cfg.duration {
        std::thread::sleep(Duration::from_millis(rng.gen_range(200..800)));
        let kind = cfg.faults[rng.gen_range(0..cfg.faults.len())];
        if !kind.applies(cfg.members) {
            continue;
        }
        let (what, u) = inject(&mut cluster, &urls, kind, &mut rng);
        let at = start.elapsed();
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..1500)));
        undo(&mut cluster, &urls, u);
        faults.push(format!("{what} at {:.1}s", at.as_secs_f64()));
    }
    // Everything healed: a leader within a bound from the election timeout, and every
    // member serving again.
    let mut verdicts = Vec::new();
    let bound = Duration::from_millis(cfg.election_timeout_ms * 20);
    let healed_at = Instant::now();
    let leader = eventually(bound, || cluster.leader());
    verdicts.push(Verdict {
        check: "recovery",
        violation: match leader {
            None => Some(format!(
                "no leader within {bound:?} after the last fault ended"
            )),
            Some(_) => {
                let serving = (0..cfg.members).all(|i| {
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
            let all: Vec<String> = (0..cfg.members)
                .map(|i| format!("m{i}: {:?}", cluster.contents(i)))
                .collect();
            format!("members differ after healing:\n{}", all.join("\n"))
        }),
    });

    let mut recorded = std::mem::take(&mut *recorded.lock().unwrap());
    // Final quorum reads through every member, after everything else.
    let mut finals: Vec<Option<State>> = vec![None; cfg.keys];
    for key in 0..cfg.keys {
        for i in 0..cfg.members {
            let invoke = start.elapsed().as_nanos() as u64;
            if let Some((value, index)) = final_read(&cluster, i, key) {
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
                    index: Some(index),
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

    // Indices a client sees never go back.
    let mut by_client: BTreeMap<usize, Vec<&Recorded>> = BTreeMap::new();
    for r in &recorded {
        by_client.entry(r.op.client).or_default().push(r);
    }
    let mut regress = None;
    for (client, rs) in &by_client {
        let mut last = 0;
        for r in rs {
            if let Some(i) = r.index {
                if i < last && regress.is_none() {
                    regress = Some(format!(
                        "client {client} saw index {i} after {last}: {}",
                        r.op
                    ));
                }
                last = last.max(i);
            }
        }
    }
    verdicts.push(Verdict {
        check: "indices-monotonic",
        violation: regress,
    });

    verdicts.push(Verdict {
        check: "watch",
        violation: watch_violation(&recorded, &watched, &finals),
    });
    let whole = watched.gap.is_none() && watched.caught_up;
    let resolved = if whole {
        resolve_unknowns(&mut recorded, &watched)
    } else {
        0
    };

    // Per key: linearizable, and no acknowledged write lost.
    let mut history = String::new();
    let mut nonlinear = None;
    let mut lost = None;
    for key in 0..cfg.keys {
        let ops: Vec<Op> = recorded
            .iter()
            .filter(|r| r.key == key)
            .map(|r| r.op.clone())
            .collect();
        let _ = writeln!(history, "key k{key}: {} operations", ops.len());
        let mut sorted = ops.clone();
        sorted.sort_by_key(|o| o.invoke);
        for o in &sorted {
            let _ = writeln!(history, "  {o}");
        }
        if nonlinear.is_none() {
            nonlinear = match check(&ops, &None, SEARCH_BUDGET) {
                Check::Linearizable => None,
                Check::Undecided => Some(format!(
                    "key k{key}: undecided after {SEARCH_BUDGET} search states"
                )),
                Check::NotLinearizable => {
                    let min = minimal_failing(&ops, &None, 2000);
                    let lines: Vec<String> = min.iter().map(|o| format!("  {o}")).collect();
                    Some(format!(
                        "key k{key} is not linearizable; a smallest failing part:\n{}",
                        lines.join("\n")
                    ))
                }
            };
        }
        if lost.is_none() {
            if let Some(final_value) = &finals[key] {
                lost = lost_write(&ops, final_value).map(|w| format!("key k{key}: {w}"));
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
fn resolve_unknowns(recorded: &mut Vec<Recorded>, watched: &WatchLog) -> usize {
    let seen: HashMap<(usize, &str), u64> = watched
        .events
        .iter()
        .filter_map(|e| e.value.as_deref().map(|v| ((e.key, v), e.at)))
        .collect();
    let before = recorded.iter().filter(|r| r.op.complete.is_none()).count();
    recorded.retain_mut(|r| {
        if r.op.complete.is_some() {
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
