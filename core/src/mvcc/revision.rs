//! A revision names one change of the v3 store: `main` counts the store's write
//! transactions, `sub` the changes within one. On disk a revision is the key of the change's
//! record: main and sub big-endian around a '_' (so byte order is revision order), with a
//! trailing 't' for a tombstone, as etcd lays out its key bucket.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

/// The length of a revision's key; a tombstone's key has one more byte.
pub const REVISION_KEY_LEN: usize = 17;

const TOMBSTONE_MARK: u8 = b't';

impl Revision {
    pub fn new(main: i64, sub: i64) -> Revision {
        Revision { main, sub }
    }

    /// The backend key of the record this revision wrote.
    pub fn to_key(self, tombstone: bool) -> RevisionKey {
        let mut b = [0u8; REVISION_KEY_LEN + 1];
        b[..8].copy_from_slice(&self.main.to_be_bytes());
        b[8] = b'_';
        b[9..17].copy_from_slice(&self.sub.to_be_bytes());
        let len = if tombstone {
            b[REVISION_KEY_LEN] = TOMBSTONE_MARK;
            REVISION_KEY_LEN + 1
        } else {
            REVISION_KEY_LEN
        };
        RevisionKey { bytes: b, len }
    }

    /// The revision and tombstone mark of a backend key; None for a key that is not one.
    pub fn from_key(b: &[u8]) -> Option<(Revision, bool)> {
        let tombstone = match b.len() {
            REVISION_KEY_LEN => false,
            n if n == REVISION_KEY_LEN + 1 && b[REVISION_KEY_LEN] == TOMBSTONE_MARK => true,
            _ => return None,
        };
        if b[8] != b'_' {
            return None;
        }
        let main = i64::from_be_bytes(b[..8].try_into().ok()?);
        let sub = i64::from_be_bytes(b[9..17].try_into().ok()?);
        Some((Revision { main, sub }, tombstone))
    }
}

/// A revision's backend key, without allocating.
#[derive(Clone, Copy)]
pub struct RevisionKey {
    bytes: [u8; REVISION_KEY_LEN + 1],
    len: usize,
}

impl std::ops::Deref for RevisionKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_revisions_and_read_back() {
        let revs = [
            Revision::new(1, 0),
            Revision::new(1, 1),
            Revision::new(2, 0),
            Revision::new(256, 3),
        ];
        for w in revs.windows(2) {
            assert!(w[0].to_key(false)[..] < w[1].to_key(true)[..]);
        }
        for r in revs {
            assert_eq!(Revision::from_key(&r.to_key(false)), Some((r, false)));
            assert_eq!(Revision::from_key(&r.to_key(true)), Some((r, true)));
        }
        assert_eq!(Revision::from_key(b"not a revision"), None);
    }
}
