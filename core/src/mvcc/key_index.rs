//! The history of one key (etcd's keyIndex): its generations, each from a creation to a
//! deletion (the tombstone), each holding the revisions that changed the key. The index
//! answers "which revision holds this key as of revision r" without touching the backend.

use super::revision::Revision;
use smallvec::SmallVec;
use std::collections::HashSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Generation {
    /// The key's version at the last revision of this generation.
    version: i64,
    created: Revision,
    revs: SmallVec<[Revision; 1]>,
}

/// The history of one key. Most keys of a large store were written once and never
/// touched since: they take one revision's room in the index (`Once`), a million of them
/// a few tens of MiB; any other history lives behind a pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyIndex {
    /// Created at this revision, nothing since (version 1).
    Once(Revision),
    History(Box<History>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    modified: Revision,
    /// The last one is the live generation, empty while the key is deleted.
    generations: SmallVec<[Generation; 1]>,
}

/// What the index knows of a key at a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAt {
    pub modified: Revision,
    pub created: Revision,
    pub version: i64,
}

impl KeyIndex {
    /// A key created at `rev`.
    pub fn new(rev: Revision) -> KeyIndex {
        KeyIndex::Once(rev)
    }

    /// The key's full history, made explicit for a change.
    fn history(&mut self) -> &mut History {
        if let KeyIndex::Once(rev) = *self {
            let mut h = History::default();
            h.put(rev);
            *self = KeyIndex::History(Box::new(h));
        }
        match self {
            KeyIndex::History(h) => h,
            KeyIndex::Once(_) => unreachable!("made a history above"),
        }
    }

    pub fn put(&mut self, rev: Revision) {
        self.history().put(rev)
    }

    /// Delete the key at `rev`; false (nothing changed) when it is not live.
    pub fn tombstone(&mut self, rev: Revision) -> bool {
        self.history().tombstone(rev)
    }

    /// Restore a tombstone read back from the backend (where it may start a key's record
    /// after compaction removed the generation it ended).
    pub fn restore_tombstone(&mut self, rev: Revision) {
        let h = self.history();
        if !h.tombstone(rev) {
            h.modified = rev;
        }
    }

    /// A key known only by a tombstone (read back from the backend).
    pub fn deleted(rev: Revision) -> KeyIndex {
        KeyIndex::History(Box::new(History {
            modified: rev,
            ..Default::default()
        }))
    }

    /// The key as of revision `at`.
    pub fn get(&self, at: i64) -> Option<KeyAt> {
        match self {
            KeyIndex::Once(rev) => (rev.main <= at).then_some(KeyAt {
                modified: *rev,
                created: *rev,
                version: 1,
            }),
            KeyIndex::History(h) => h.get(at),
        }
    }

    /// Drop the history before `at`, keeping the revision that holds the key as of `at`
    /// (recorded in `keep`, with every later one untouched). Returns whether the key is
    /// left without history at all (the index may forget it).
    pub fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) -> bool {
        match self {
            KeyIndex::Once(rev) => {
                if rev.main <= at {
                    keep.insert(*rev);
                }
                false
            }
            KeyIndex::History(h) => h.compact(at, keep),
        }
    }
}

impl History {
    fn put(&mut self, rev: Revision) {
        if self.generations.is_empty() {
            self.generations.push(Generation::default());
        }
        let g = self.generations.last_mut().expect("a generation");
        if g.revs.is_empty() {
            g.created = rev;
        }
        g.revs.push(rev);
        g.version += 1;
        self.modified = rev;
    }

    fn tombstone(&mut self, rev: Revision) -> bool {
        if self.generations.last().is_none_or(|g| g.revs.is_empty()) {
            return false;
        }
        self.put(rev);
        self.generations.push(Generation::default());
        true
    }

    fn is_empty(&self) -> bool {
        self.generations.len() <= 1 && self.generations.first().is_none_or(|g| g.revs.is_empty())
    }

    /// The generation live at `at`: None when the key did not exist then.
    fn generation_at(&self, at: i64) -> Option<&Generation> {
        let last = self.generations.len().checked_sub(1)?;
        for (i, g) in self.generations.iter().enumerate().rev() {
            let Some(first) = g.revs.first() else {
                continue;
            };
            if i != last {
                // A closed generation ends with its tombstone: at or after it, no key.
                let tomb = g.revs.last().expect("non-empty");
                if tomb.main <= at {
                    return None;
                }
            }
            if first.main <= at {
                return Some(g);
            }
        }
        None
    }

    fn get(&self, at: i64) -> Option<KeyAt> {
        let g = self.generation_at(at)?;
        let n = g.revs.iter().rposition(|r| r.main <= at)?;
        Some(KeyAt {
            modified: g.revs[n],
            created: g.created,
            version: g.version - (g.revs.len() - n - 1) as i64,
        })
    }

    fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) -> bool {
        if self.generations.is_empty() {
            return true;
        }
        let last = self.generations.len() - 1;
        // Closed generations whose tombstone is at or before `at` go whole.
        let mut first_kept = 0;
        while first_kept < last {
            let tomb = self.generations[first_kept].revs.last().expect("closed");
            if tomb.main > at {
                break;
            }
            first_kept += 1;
        }
        let g = &mut self.generations[first_kept];
        if let Some(n) = g.revs.iter().rposition(|r| r.main <= at) {
            keep.insert(g.revs[n]);
            g.revs.drain(..n);
        }
        // A closed generation left with only its tombstone: nothing to read there.
        if first_kept != last && g.revs.len() == 1 {
            keep.remove(&g.revs[0]);
            first_kept += 1;
        }
        self.generations.drain(..first_kept);
        self.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    /// put@2, put@4, del@6, put@8, put@10: what each revision sees.
    fn history() -> KeyIndex {
        let mut k = KeyIndex::new(r(2));
        k.put(r(4));
        assert!(k.tombstone(r(6)));
        k.put(r(8));
        k.put(r(10));
        k
    }

    #[test]
    fn reads_at_every_revision() {
        let k = history();
        let at = |rev| {
            k.get(rev)
                .map(|a| (a.modified.main, a.created.main, a.version))
        };
        assert_eq!(at(1), None);
        assert_eq!(at(2), Some((2, 2, 1)));
        assert_eq!(at(3), Some((2, 2, 1)));
        assert_eq!(at(5), Some((4, 2, 2)));
        assert_eq!(at(6), None, "deleted at 6");
        assert_eq!(at(7), None);
        assert_eq!(
            at(8),
            Some((8, 8, 1)),
            "a new generation starts at version 1"
        );
        assert_eq!(at(100), Some((10, 8, 2)));
        let mut d = KeyIndex::deleted(r(1));
        assert!(!d.tombstone(r(2)), "nothing to delete");
        let once = KeyIndex::new(r(3));
        assert_eq!(once.get(2), None);
        assert_eq!(
            once.get(9).map(|a| (a.modified.main, a.version)),
            Some((3, 1))
        );
    }

    #[test]
    fn compaction_keeps_what_later_reads_need() {
        let mut k = history();
        let mut keep = HashSet::new();
        assert!(!k.compact(5, &mut keep));
        assert_eq!(keep, HashSet::from([r(4)]));
        assert_eq!(k.get(5).map(|a| a.modified.main), Some(4));
        assert_eq!(k.get(9).map(|a| a.version), Some(1));
        // Past the tombstone: the closed generation goes.
        keep.clear();
        assert!(!k.compact(7, &mut keep));
        assert!(keep.is_empty(), "{keep:?}");
        assert_eq!(k.get(7), None);
        assert_eq!(k.get(10).map(|a| a.modified.main), Some(10));
        // A deleted key compacted past its tombstone is forgotten.
        let mut d = KeyIndex::new(r(1));
        d.tombstone(r(2));
        let mut keep = HashSet::new();
        assert!(d.compact(3, &mut keep));
        assert!(keep.is_empty());
    }
}
