//! A linearizability checker for histories of single-key registers (etcd v2 keys): the
//! Wing & Gong search with memoization of (operations linearized, register state) as
//! porcupine does it, run per key. An operation whose outcome the client never learned (a
//! timeout, a dropped connection) may have taken effect at any point after its invocation,
//! or never: it is given no return, so the search may place it anywhere after its call,
//! including after everything else.

use std::collections::HashSet;
use std::fmt;

/// The register's value: None while the key does not exist.
pub type State = Option<String>;

/// What an operation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// A linearizable (quorum) read that answered `value`.
    Read { value: State },
    /// A write of `value` (acknowledged, or with an unknown outcome).
    Write { value: String },
    /// A compare-and-swap from `expect` to `value`: `swapped` Some(true) acknowledged,
    /// Some(false) refused (compare failed), None unknown.
    Cas {
        expect: String,
        value: String,
        swapped: Option<bool>,
    },
}

/// One operation as a client saw it. Times are nanoseconds from the start of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub client: usize,
    pub kind: OpKind,
    pub invoke: u64,
    /// None: the outcome is unknown.
    pub complete: Option<u64>,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |t: u64| t as f64 / 1e9;
        let done = match self.complete {
            Some(t) => format!("{:.6}s", secs(t)),
            None => "?".into(),
        };
        let what = match &self.kind {
            OpKind::Read { value } => format!("read -> {value:?}"),
            OpKind::Write { value } => format!("write {value:?}"),
            OpKind::Cas {
                expect,
                value,
                swapped,
            } => format!(
                "cas {expect:?} -> {value:?}: {}",
                match swapped {
                    Some(true) => "swapped",
                    Some(false) => "compare failed",
                    None => "unknown",
                }
            ),
        };
        write!(
            f,
            "client {} [{:.6}s .. {done}] {what}",
            self.client,
            secs(self.invoke)
        )
    }
}

/// The register's next state if `op` can take effect in state `s`.
fn step(s: &State, op: &OpKind) -> Option<State> {
    match op {
        OpKind::Read { value } => (s == value).then(|| s.clone()),
        OpKind::Write { value } => Some(Some(value.clone())),
        OpKind::Cas {
            expect,
            value,
            swapped,
        } => {
            let matches = s.as_deref() == Some(expect.as_str());
            match swapped {
                Some(true) => matches.then(|| Some(value.clone())),
                Some(false) => (!matches).then(|| s.clone()),
                None => Some(if matches {
                    Some(value.clone())
                } else {
                    s.clone()
                }),
            }
        }
    }
}

const NIL: usize = usize::MAX;

/// The history's events as a doubly linked list (porcupine's `entry` list): node 0 is the
/// head; then one call and one return node per operation, in time order.
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For a node: its operation and whether it is the call.
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// The call node's return node and back.
    other: Vec<usize>,
}

impl Events {
    fn new(ops: &[Op]) -> Events {
        // (time, calls before returns at equal times, op, is_call)
        let mut ev: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            ev.push((o.invoke, 0, i, true));
            ev.push((o.complete.unwrap_or(u64::MAX), 1, i, false));
        }
        ev.sort();
        let n = ev.len() + 1;
        let mut e = Events {
            next: vec![NIL; n],
            prev: vec![NIL; n],
            op: vec![NIL; n],
            is_call: vec![false; n],
            other: vec![NIL; n],
        };
        let mut call_node = vec![NIL; ops.len()];
        for (k, (_, _, i, is_call)) in ev.iter().enumerate() {
            let node = k + 1;
            e.prev[node] = k;
            e.next[k] = node;
            e.op[node] = *i;
            e.is_call[node] = *is_call;
            if *is_call {
                call_node[*i] = node;
            } else {
                e.other[node] = call_node[*i];
                e.other[call_node[*i]] = node;
            }
        }
        e
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NIL {
            self.prev[n] = node;
        }
    }

    /// Take an operation (its call and its return) out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.other[call]);
    }

    /// Put it back (the reverse of `lift`).
    fn unlift(&mut self, call: usize) {
        self.relink(self.other[call]);
        self.relink(call);
    }
}

/// What the search found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Linearizable,
    NotLinearizable,
    /// It gave up after visiting its budget of (operations placed, state) pairs: many
    /// operations with unknown outcomes make the search exponential.
    Undecided,
}

/// Whether the register history `ops` is linearizable from state `init`.
pub fn linearizable(ops: &[Op], init: &State) -> bool {
    check(ops, init, usize::MAX) == Check::Linearizable
}

/// `linearizable`, giving up after `budget` distinct search states.
pub fn check(ops: &[Op], init: &State, budget: usize) -> Check {
    let mut ev = Events::new(ops);
    let words = ops.len().div_ceil(64).max(1);
    let mut done = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = init.clone();
    let mut node = ev.next[0];
    while ev.next[0] != NIL {
        if node != NIL && ev.is_call[node] {
            let i = ev.op[node];
            if let Some(next) = step(&state, &ops[i].kind) {
                done[i / 64] |= 1 << (i % 64);
                if seen.insert((done.clone(), next.clone())) {
                    if seen.len() > budget {
                        return Check::Undecided;
                    }
                    stack.push((node, std::mem::replace(&mut state, next)));
                    ev.lift(node);
                    node = ev.next[0];
                    continue;
                }
                done[i / 64] &= !(1 << (i % 64));
            }
            node = ev.next[node];
            continue;
        }
        // The return of an operation not placed yet (nothing after it can come first), or
        // the end of the list: undo the last placement and try the next call after it.
        let Some((call, before)) = stack.pop() else {
            return Check::NotLinearizable;
        };
        let i = ev.op[call];
        done[i / 64] &= !(1 << (i % 64));
        state = before;
        ev.unlift(call);
        node = ev.next[call];
    }
    Check::Linearizable
}

/// A smallest non-linearizable part of a non-linearizable history: operations are dropped
/// one by one while what is left still fails (at most `budget` checks). A write stays as
/// long as a kept operation saw or expected its value, so the part explains itself.
pub fn minimal_failing(ops: &[Op], init: &State, budget: usize) -> Vec<Op> {
    let mut keep: Vec<Op> = ops.to_vec();
    let mut checks = 0;
    let mut i = 0;
    while i < keep.len() && checks < budget {
        if let OpKind::Write { value } | OpKind::Cas { value, .. } = &keep[i].kind {
            let needed = keep.iter().any(|o| match &o.kind {
                OpKind::Read { value: Some(v) } => v == value,
                OpKind::Cas { expect, .. } => expect == value,
                _ => false,
            });
            if needed {
                i += 1;
                continue;
            }
        }
        let mut without = keep.clone();
        without.remove(i);
        checks += 1;
        if !linearizable(&without, init) {
            keep = without;
        } else {
            i += 1;
        }
    }
    keep
}

/// A write acknowledged and then lost: the register's final value came from a write that
/// completed before another acknowledged write (or swap) was even invoked. `final_value`
/// is what every member answers once the cluster has healed.
pub fn lost_write(ops: &[Op], final_value: &State) -> Option<String> {
    let Some(v) = final_value else {
        // The key is gone though something was acknowledged as written.
        return ops
            .iter()
            .find(|o| acknowledged_write(o).is_some())
            .map(|o| format!("the key does not exist, but this was acknowledged: {o}"));
    };
    let source = ops.iter().find(|o| match &o.kind {
        OpKind::Write { value } | OpKind::Cas { value, .. } => value == v,
        OpKind::Read { .. } => false,
    })?;
    let source_done = source.complete?;
    ops.iter()
        .find(|o| acknowledged_write(o).is_some() && o.invoke > source_done)
        .map(|later| format!("final value {v:?} from {source}, but later acknowledged: {later}"))
}

fn acknowledged_write(o: &Op) -> Option<&str> {
    match &o.kind {
        OpKind::Write { value } if o.complete.is_some() => Some(value),
        OpKind::Cas {
            value,
            swapped: Some(true),
            ..
        } => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn op(client: usize, kind: OpKind, invoke: u64, complete: Option<u64>) -> Op {
        Op {
            client,
            kind,
            invoke: invoke * MS,
            complete: complete.map(|t| t * MS),
        }
    }

    fn write(c: usize, v: &str, a: u64, b: Option<u64>) -> Op {
        op(c, OpKind::Write { value: v.into() }, a, b)
    }

    fn read(c: usize, v: Option<&str>, a: u64, b: u64) -> Op {
        op(
            c,
            OpKind::Read {
                value: v.map(String::from),
            },
            a,
            Some(b),
        )
    }

    fn cas(c: usize, from: &str, to: &str, swapped: Option<bool>, a: u64, b: Option<u64>) -> Op {
        op(
            c,
            OpKind::Cas {
                expect: from.into(),
                value: to.into(),
                swapped,
            },
            a,
            b,
        )
    }

    #[test]
    fn sequential_and_concurrent_histories_that_are_linearizable_pass() {
        let h = vec![
            write(0, "a", 0, Some(10)),
            read(1, Some("a"), 11, 20),
            // Concurrent write and read: the read may see either value.
            write(0, "b", 21, Some(40)),
            read(1, Some("a"), 22, 30),
            read(2, Some("b"), 25, 35),
            cas(1, "b", "c", Some(true), 41, Some(50)),
            cas(2, "b", "d", Some(false), 51, Some(60)),
            read(0, Some("c"), 61, 70),
        ];
        assert!(linearizable(&h, &None));
    }

    #[test]
    fn a_stale_read_is_rejected() {
        let h = vec![
            write(0, "a", 0, Some(10)),
            write(0, "b", 11, Some(20)),
            // Invoked after "b" was acknowledged, yet it saw "a".
            read(1, Some("a"), 21, 30),
        ];
        assert!(!linearizable(&h, &None));
        // The smallest failing part keeps the write the read saw and the one it missed.
        let min = minimal_failing(&h, &None, 100);
        assert_eq!(min, h);
    }

    #[test]
    fn a_lost_write_is_rejected() {
        let h = vec![
            write(0, "a", 0, Some(10)),
            // Acknowledged, then a read long after sees the key absent.
            read(1, None, 20, 30),
        ];
        assert!(!linearizable(&h, &None));
        // And the lost-write check names it from the final state.
        let h = vec![write(0, "a", 0, Some(10)), write(1, "b", 20, Some(30))];
        assert!(lost_write(&h, &Some("a".into())).is_some());
        assert!(lost_write(&h, &Some("b".into())).is_none());
        assert!(lost_write(&h, &None).is_some());
    }

    #[test]
    fn a_duplicated_cas_is_rejected() {
        // Two clients swap from the same value and both are told they won.
        let h = vec![
            write(0, "a", 0, Some(10)),
            cas(1, "a", "b", Some(true), 11, Some(20)),
            cas(2, "a", "c", Some(true), 12, Some(21)),
        ];
        assert!(!linearizable(&h, &None));
        // One winner and one refused is fine.
        let ok = vec![
            write(0, "a", 0, Some(10)),
            cas(1, "a", "b", Some(true), 11, Some(20)),
            cas(2, "a", "c", Some(false), 12, Some(21)),
        ];
        assert!(linearizable(&ok, &None));
    }

    #[test]
    fn a_refused_cas_that_should_have_swapped_is_rejected() {
        let h = vec![
            write(0, "a", 0, Some(10)),
            cas(1, "a", "b", Some(false), 11, Some(20)),
        ];
        assert!(!linearizable(&h, &None));
    }

    #[test]
    fn unknown_outcomes_may_have_happened_late_or_never() {
        // A write that timed out may take effect after later operations...
        let late = vec![
            write(0, "a", 0, None),
            read(1, None, 5, 8),
            read(1, Some("a"), 100, 110),
        ];
        assert!(linearizable(&late, &None));
        // ...or never.
        let never = vec![write(0, "a", 0, None), read(1, None, 100, 110)];
        assert!(linearizable(&never, &None));
        // But not before it was invoked.
        let early = vec![read(1, Some("a"), 0, 5), write(0, "a", 10, None)];
        assert!(!linearizable(&early, &None));
        // An unknown CAS may or may not have swapped.
        let c = vec![
            write(0, "a", 0, Some(1)),
            cas(1, "a", "b", None, 2, None),
            read(2, Some("a"), 3, 4),
            read(2, Some("b"), 5, 6),
        ];
        assert!(linearizable(&c, &None));
    }

    #[test]
    fn a_search_over_its_budget_is_undecided_not_passed() {
        // Twelve writes that may each have happened or not, then a read no write explains:
        // the search tries every subset before it can say no.
        let mut h: Vec<Op> = (0..12)
            .map(|c| write(c, &format!("v{c}"), c as u64, None))
            .collect();
        h.push(read(99, Some("never written"), 100, 110));
        assert_eq!(check(&h, &None, 100), Check::Undecided);
        assert_eq!(check(&h, &None, usize::MAX), Check::NotLinearizable);
    }

    #[test]
    fn a_long_concurrent_history_is_checked_quickly() {
        // 4 clients, 400 operations, each client's write followed by its read of it.
        let mut h = Vec::new();
        for n in 0..100u64 {
            for c in 0..4usize {
                let t = n * 100 + c as u64 * 3;
                h.push(write(c, &format!("{c}-{n}"), t, Some(t + 50)));
            }
        }
        let t0 = std::time::Instant::now();
        assert!(linearizable(&h, &None));
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    }
}
