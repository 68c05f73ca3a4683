//! The v3 store (etcd's mvcc): every change is a record keyed by its revision in an
//! embedded ordered store on disk (redb, as etcd uses bbolt), and an in-memory index of each
//! key's revisions, rebuilt from the records at start. Reads at any revision not compacted.
//!
//! Writes come from applying raft entries, many entries to one backend transaction (a
//! batch): the WAL already holds every entry durably, so a batch commits without fsync and
//! records the raft index it reached (the consistent index) with the data. A crash loses at
//! most the batches since the last durable commit, which the WAL replays; a durable commit
//! comes before any snapshot lets the WAL go (`commit_durable`).

mod key_index;
mod revision;
mod watch;

use crate::auth::AuthStore;
use crate::pb::etcdrs::AuthState;
use crate::pb::mvccpb::{event::EventType, Event, KeyValue};
use bytes::Bytes;
use key_index::KeyIndex;
use prost::Message as _;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
pub use revision::Revision;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
pub use watch::{Delivery, WatchHub, WatchSpec};

/// Every change, keyed by revision: the KeyValue as etcd encodes it.
const KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("key");
/// Leases granted and not revoked: id -> granted TTL in seconds.
const LEASES: TableDefinition<i64, i64> = TableDefinition::new("lease");
/// Alarms raised and not disarmed: (member id, alarm type) -> ().
const ALARMS: TableDefinition<(u64, i32), ()> = TableDefinition::new("alarm");
/// Users, roles and whether auth is on: one record (etcd's auth buckets).
const AUTH: TableDefinition<&str, &[u8]> = TableDefinition::new("auth");
const AUTH_STATE: &str = "state";
/// The consistent index and the compaction point.
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const CONSISTENT_INDEX: &str = "consistent_index";
/// redb's own page cache.
const BACKEND_CACHE_BYTES: usize = 32 << 20;
const COMPACTED: &str = "finished_compact_rev";

/// What the store refuses, by etcd's mvcc errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MvccError {
    /// The revision asked for was compacted away.
    Compacted,
    /// The revision asked for is newer than the store.
    FutureRev,
    /// The backend failed: the member can no longer trust its store.
    Backend(String),
}

impl From<redb::Error> for MvccError {
    fn from(e: redb::Error) -> MvccError {
        MvccError::Backend(e.to_string())
    }
}

macro_rules! backend_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for MvccError {
            fn from(e: $t) -> MvccError {
                MvccError::from(redb::Error::from(e))
            }
        }
    )*};
}
backend_errors!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError
);

pub type MvccResult<T> = std::result::Result<T, MvccError>;

/// Which keys a request names (etcd's key and range_end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRange<'a> {
    /// `key` alone (an empty range_end).
    Key(&'a [u8]),
    /// Every key from `key` on (range_end "\0").
    From(&'a [u8]),
    /// Keys in [key, end).
    Between(&'a [u8], &'a [u8]),
}

/// A key range as `BTreeMap::range` takes it.
type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

impl<'a> KeyRange<'a> {
    pub fn new(key: &'a [u8], range_end: &'a [u8]) -> KeyRange<'a> {
        match range_end {
            [] => KeyRange::Key(key),
            [0] => KeyRange::From(key),
            end => KeyRange::Between(key, end),
        }
    }

    fn bounds(self) -> Option<KeyBounds<'a>> {
        Some(match self {
            KeyRange::Key(k) => (Bound::Included(k), Bound::Included(k)),
            KeyRange::From(k) => (Bound::Included(k), Bound::Unbounded),
            KeyRange::Between(k, end) if k < end => (Bound::Included(k), Bound::Excluded(end)),
            KeyRange::Between(..) => return None,
        })
    }

    pub fn contains(self, key: &[u8]) -> bool {
        match self {
            KeyRange::Key(k) => k == key,
            KeyRange::From(k) => key >= k,
            KeyRange::Between(k, end) => key >= k && key < end,
        }
    }
}

/// What a range read found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RangeResult {
    /// At most `limit` of them, in key order.
    pub kvs: Vec<KeyValue>,
    /// How many keys matched, the limit aside.
    pub count: usize,
    /// The store's revision at the read.
    pub rev: i64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RangeOptions {
    /// 0: no limit.
    pub limit: usize,
    /// <= 0: the newest revision.
    pub rev: i64,
    pub count_only: bool,
}

/// Keys as boxed slices: half a `Bytes` in every index entry.
type Index = BTreeMap<Box<[u8]>, KeyIndex>;

/// What reads need of the store: its committed state (`Mvcc`) or, while an entry is
/// applied, that entry's view including its own changes (`WriteTxn`).
pub trait ReadView {
    fn range(&self, keys: KeyRange<'_>, opts: RangeOptions) -> MvccResult<RangeResult>;
    fn current_revision(&self) -> i64;
    fn compacted_revision(&self) -> i64;
    fn has_lease(&self, id: i64) -> bool;
}

impl ReadView for Mvcc {
    fn range(&self, keys: KeyRange<'_>, opts: RangeOptions) -> MvccResult<RangeResult> {
        Mvcc::range(self, keys, opts)
    }
    fn current_revision(&self) -> i64 {
        self.current
    }
    fn compacted_revision(&self) -> i64 {
        self.compacted
    }
    fn has_lease(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }
}

impl ReadView for WriteTxn<'_> {
    fn range(&self, keys: KeyRange<'_>, opts: RangeOptions) -> MvccResult<RangeResult> {
        WriteTxn::range(self, keys, opts)
    }
    fn current_revision(&self) -> i64 {
        WriteTxn::current_revision(self)
    }
    fn compacted_revision(&self) -> i64 {
        self.mvcc.compacted
    }
    fn has_lease(&self, id: i64) -> bool {
        self.mvcc.leases.contains_key(&id)
    }
}

pub struct Mvcc {
    index: Index,
    /// None once closed (the member stopped; an embedded member may start again on the
    /// same file in the same process).
    db: Option<redb::Database>,
    path: PathBuf,
    /// The newest revision (1 for an empty store, as etcd).
    current: i64,
    /// Revisions before this are gone.
    compacted: i64,
    /// The last raft index whose changes are in the backend.
    consistent_index: u64,
    /// The backend transaction of the apply batch under way.
    batch: Option<redb::WriteTransaction>,
    /// Leases granted and not revoked, with the keys attached to each.
    leases: BTreeMap<i64, Lease>,
    /// The lease each leased key is attached to.
    key_leases: HashMap<Bytes, i64>,
    /// Alarms raised and not disarmed: (member id, etcd's AlarmType).
    alarms: BTreeSet<(u64, i32)>,
    /// Users, roles and permissions.
    auth: AuthStore,
    /// How long a token this member registers lives unused (its --auth-token-ttl).
    token_ttl: std::time::Duration,
    /// The backend file's size after the last commit.
    db_size: u64,
    /// etcd_disk_backend_commit_duration_seconds, once a member observes it.
    commit_seconds: Option<prometheus_client::metrics::histogram::Histogram>,
}

/// A lease as every member holds it (its expiry is the leader's business: `server`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// Granted TTL, seconds.
    pub ttl: i64,
    pub keys: BTreeSet<Bytes>,
}

impl Mvcc {
    /// Open (or create) the store at `path` and rebuild the key index from its records.
    pub fn open(path: &Path) -> MvccResult<Mvcc> {
        // redb caches pages itself (1 GiB by default); the kernel's page cache keeps the
        // file's hot pages anyway, outside the member's RSS (as etcd's mmapped bbolt).
        let db = redb::Database::builder()
            .set_cache_size(BACKEND_CACHE_BYTES)
            .create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(KEYS)?;
        txn.open_table(LEASES)?;
        txn.open_table(ALARMS)?;
        txn.open_table(AUTH)?;
        txn.open_table(META)?;
        txn.commit()?;
        let mut mvcc = Mvcc {
            index: Index::new(),
            db: Some(db),
            path: path.to_path_buf(),
            current: 1,
            compacted: 0,
            consistent_index: 0,
            batch: None,
            leases: BTreeMap::new(),
            key_leases: HashMap::new(),
            alarms: BTreeSet::new(),
            auth: AuthStore::default(),
            token_ttl: crate::auth::TOKEN_TTL,
            db_size: 0,
            commit_seconds: None,
        };
        mvcc.rebuild()?;
        mvcc.measure_db_size();
        Ok(mvcc)
    }

    fn rebuild(&mut self) -> MvccResult<()> {
        let txn = self.db()?.begin_read()?;
        let keys = txn.open_table(KEYS)?;
        let meta = txn.open_table(META)?;
        let read_meta =
            |name: &str| -> MvccResult<i64> { Ok(meta.get(name)?.map(|v| v.value()).unwrap_or(0)) };
        self.consistent_index = read_meta(CONSISTENT_INDEX)? as u64;
        self.compacted = read_meta(COMPACTED)?;
        self.current = self.compacted.max(1);
        self.index.clear();
        self.leases.clear();
        self.key_leases.clear();
        self.alarms.clear();
        for entry in txn.open_table(ALARMS)?.iter()? {
            self.alarms.insert(entry?.0.value());
        }
        self.auth = match txn.open_table(AUTH)?.get(AUTH_STATE)? {
            Some(v) => AuthStore::from_state(AuthState::decode(v.value()).map_err(|e| {
                MvccError::Backend(format!(
                    "{}: the auth record does not decode: {e}",
                    self.path.display()
                ))
            })?),
            None => AuthStore::default(),
        };
        for entry in txn.open_table(LEASES)?.iter()? {
            let (id, ttl) = entry?;
            self.leases.insert(
                id.value(),
                Lease {
                    ttl: ttl.value(),
                    keys: BTreeSet::new(),
                },
            );
        }
        for entry in keys.iter()? {
            let (k, v) = entry?;
            let (rev, tombstone) = Revision::from_key(k.value()).ok_or_else(|| {
                MvccError::Backend(format!(
                    "{}: a record key that is not a revision: {:?}",
                    self.path.display(),
                    k.value()
                ))
            })?;
            let kv = KeyValue::decode(v.value()).map_err(|e| {
                MvccError::Backend(format!(
                    "{}: the record of revision {}_{} does not decode: {e}",
                    self.path.display(),
                    rev.main,
                    rev.sub
                ))
            })?;
            self.current = self.current.max(rev.main);
            // Records come in revision order: the last one of a key says its lease.
            if tombstone || kv.lease == 0 {
                self.key_leases.remove(&kv.key);
            } else {
                self.key_leases.insert(kv.key.clone(), kv.lease);
            }
            match self.index.get_mut(&kv.key[..]) {
                Some(ki) if tombstone => ki.restore_tombstone(rev),
                Some(ki) => ki.put(rev),
                None if tombstone => {
                    self.index.insert(kv.key[..].into(), KeyIndex::deleted(rev));
                }
                None => {
                    self.index.insert(kv.key[..].into(), KeyIndex::new(rev));
                }
            }
        }
        for (key, id) in &self.key_leases {
            match self.leases.get_mut(id) {
                Some(lease) => {
                    lease.keys.insert(key.clone());
                }
                None => {
                    return Err(MvccError::Backend(format!(
                        "{}: key {:?} is attached to lease {id:x}, which the store does not hold",
                        self.path.display(),
                        String::from_utf8_lossy(key)
                    )))
                }
            }
        }
        Ok(())
    }

    /// Leases granted and not revoked.
    pub fn leases(&self) -> &BTreeMap<i64, Lease> {
        &self.leases
    }

    /// Alarms raised and not disarmed: (member id, etcd's AlarmType).
    pub fn alarms(&self) -> &BTreeSet<(u64, i32)> {
        &self.alarms
    }

    /// Users, roles and permissions, and the tokens this member handed out.
    pub fn auth(&self) -> &AuthStore {
        &self.auth
    }

    pub fn set_token_ttl(&mut self, ttl: std::time::Duration) {
        self.token_ttl = ttl;
    }

    pub(crate) fn db(&self) -> MvccResult<&redb::Database> {
        self.db
            .as_ref()
            .ok_or_else(|| MvccError::Backend(format!("{} is closed", self.path.display())))
    }

    /// Commit what is applied durably and close the file.
    pub fn close(&mut self) -> MvccResult<()> {
        if self.db.is_none() {
            return Ok(());
        }
        let r = self.finish_batch(self.consistent_index, true);
        self.db = None;
        r
    }

    pub fn current_revision(&self) -> i64 {
        self.current
    }

    pub fn consistent_index(&self) -> u64 {
        self.consistent_index
    }

    /// Keys in the index, deleted ones whose history is not compacted away included
    /// (etcd's keys_total).
    pub fn key_count(&self) -> u64 {
        self.index.len() as u64
    }

    /// The backend file's size in bytes (etcd's dbSize).
    /// As of the last commit (a file system call per commit, not per question: the quota
    /// check asks before every write).
    pub fn db_size(&self) -> u64 {
        self.db_size
    }

    fn measure_db_size(&mut self) {
        self.db_size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
    }

    /// Read at a revision, as of the last committed batch.
    pub fn range(&self, keys: KeyRange<'_>, opts: RangeOptions) -> MvccResult<RangeResult> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(KEYS)?;
        range(
            &self.index,
            &table,
            self.current,
            self.compacted,
            keys,
            opts,
        )
    }

    /// Start the changes of one raft entry (etcd's write txn); the batch's backend
    /// transaction opens with the first of them.
    pub fn write(&mut self) -> MvccResult<WriteTxn<'_>> {
        if self.batch.is_none() {
            let mut txn = self.db()?.begin_write()?;
            txn.set_durability(redb::Durability::None)?;
            self.batch = Some(txn);
        }
        let begin = self.current;
        Ok(WriteTxn {
            mvcc: self,
            begin,
            changes: Vec::new(),
        })
    }

    /// End the batch: its changes and the raft index they reach become one commit, durable
    /// or not (the WAL holds the entries either way).
    pub fn finish_batch(&mut self, consistent_index: u64, durable: bool) -> MvccResult<()> {
        if self.batch.is_none() && !durable {
            return Ok(());
        }
        let mut txn = match self.batch.take() {
            Some(t) => t,
            None => self.db()?.begin_write()?,
        };
        if durable {
            txn.set_durability(redb::Durability::Immediate)?;
        }
        {
            let mut meta = txn.open_table(META)?;
            let index = consistent_index.max(self.consistent_index);
            meta.insert(CONSISTENT_INDEX, index as i64)?;
            meta.insert(COMPACTED, self.compacted)?;
            self.consistent_index = index;
        }
        let started = std::time::Instant::now();
        txn.commit()?;
        if let Some(h) = &self.commit_seconds {
            h.observe(started.elapsed().as_secs_f64());
        }
        self.measure_db_size();
        Ok(())
    }

    /// Time every backend commit into `h` from now on.
    pub fn observe_commit(&mut self, h: prometheus_client::metrics::histogram::Histogram) {
        self.commit_seconds = Some(h);
    }

    /// Make everything applied up to raft index `applied` durable: before a snapshot at
    /// that index lets the WAL before it go.
    pub fn commit_durable(&mut self, applied: u64) -> MvccResult<()> {
        self.finish_batch(applied, true)
    }

    /// Give the backend's free pages back to the file system (etcd's defragment), after
    /// making what is applied durable.
    pub fn defragment(&mut self) -> MvccResult<()> {
        self.finish_batch(self.consistent_index, true)?;
        let path = self.path.display().to_string();
        let db = self
            .db
            .as_mut()
            .ok_or_else(|| MvccError::Backend(format!("{path} is closed")))?;
        db.compact(redb::CompactionMode::Balanced)
            .map_err(|e| MvccError::Backend(format!("{path}: defragment: {e}")))?;
        self.measure_db_size();
        Ok(())
    }

    /// A checksum of every record up to revision `upto` (0: all), and the compaction point:
    /// members holding the same store give the same hash (etcd's HashKV).
    pub fn hash(&self, upto: i64) -> MvccResult<(u32, i64)> {
        if upto > self.current {
            return Err(MvccError::FutureRev);
        }
        if upto > 0 && upto < self.compacted {
            return Err(MvccError::Compacted);
        }
        let txn = self.db()?.begin_read()?;
        let keys = txn.open_table(KEYS)?;
        let mut h = crc32fast::Hasher::new();
        for entry in keys.iter()? {
            let (k, v) = entry?;
            let within =
                Revision::from_key(k.value()).is_some_and(|(rev, _)| upto <= 0 || rev.main <= upto);
            if within {
                h.update(k.value());
                h.update(v.value());
            }
        }
        Ok((h.finalize(), self.compacted))
    }

    /// Every record and the store's meta, for a member catching up from a snapshot.
    pub fn dump(&self) -> MvccResult<Vec<u8>> {
        let txn = self.db()?.begin_read()?;
        let keys = txn.open_table(KEYS)?;
        let mut out = Vec::with_capacity(keys.len()? as usize * 64 + 24);
        out.extend_from_slice(&self.consistent_index.to_le_bytes());
        out.extend_from_slice(&self.compacted.to_le_bytes());
        out.extend_from_slice(&self.current.to_le_bytes());
        let mut record = |table: u8, k: &[u8], v: &[u8]| {
            out.push(table);
            for part in [k, v] {
                out.extend_from_slice(&(part.len() as u32).to_le_bytes());
                out.extend_from_slice(part);
            }
        };
        for entry in txn.open_table(LEASES)?.iter()? {
            let (id, ttl) = entry?;
            record(
                DUMP_LEASE,
                &id.value().to_le_bytes(),
                &ttl.value().to_le_bytes(),
            );
        }
        for entry in txn.open_table(ALARMS)?.iter()? {
            let (member, alarm) = entry?.0.value();
            record(
                DUMP_ALARM,
                &member.to_le_bytes(),
                &i64::from(alarm).to_le_bytes(),
            );
        }
        if let Some(v) = txn.open_table(AUTH)?.get(AUTH_STATE)? {
            record(DUMP_AUTH, AUTH_STATE.as_bytes(), v.value());
        }
        for entry in keys.iter()? {
            let (k, v) = entry?;
            record(DUMP_KEY, k.value(), v.value());
        }
        Ok(out)
    }

    /// What an image holds (for `snapshot status`), checking all of it.
    pub fn dump_summary(dump: &[u8]) -> MvccResult<DumpSummary> {
        let (mut keys, mut leases) = (0, 0);
        let (consistent_index, compacted, revision) = parse_dump(dump, |r| {
            match r {
                DumpRecord::Key(..) => keys += 1,
                DumpRecord::Lease(..) => leases += 1,
                DumpRecord::Alarm(..) | DumpRecord::Auth(_) => {}
            }
            Ok(())
        })?;
        Ok(DumpSummary {
            consistent_index,
            compacted,
            revision,
            revisions: keys,
            leases,
        })
    }

    /// The image as the first state of a new cluster whose log starts after raft index
    /// `consistent_index` (etcd's snapshot restore): entries of the new log must not be
    /// mistaken for ones the image already holds.
    pub fn rebase_dump(dump: &[u8], consistent_index: u64) -> MvccResult<Vec<u8>> {
        Mvcc::check_dump(dump)?;
        let mut out = dump.to_vec();
        out[..8].copy_from_slice(&consistent_index.to_le_bytes());
        Ok(out)
    }

    /// Check that `dump` reads back as a store, without touching this one.
    pub fn check_dump(dump: &[u8]) -> MvccResult<()> {
        parse_dump(dump, |_| Ok(())).map(|_| ())
    }

    /// Become the store `dump` holds (the leader's, from a snapshot), durably.
    pub fn restore(&mut self, dump: &[u8]) -> MvccResult<()> {
        self.batch = None;
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)?;
        txn.delete_table(KEYS)?;
        txn.delete_table(LEASES)?;
        txn.delete_table(ALARMS)?;
        txn.delete_table(AUTH)?;
        txn.delete_table(META)?;
        {
            let mut keys = txn.open_table(KEYS)?;
            let mut leases = txn.open_table(LEASES)?;
            let mut alarms = txn.open_table(ALARMS)?;
            let mut auth = txn.open_table(AUTH)?;
            let (consistent_index, compacted, _) = parse_dump(dump, |record| {
                match record {
                    DumpRecord::Key(k, v) => keys.insert(k, v).map(|_| ()),
                    DumpRecord::Lease(id, ttl) => leases.insert(id, ttl).map(|_| ()),
                    DumpRecord::Alarm(member, alarm) => {
                        alarms.insert((member, alarm), ()).map(|_| ())
                    }
                    DumpRecord::Auth(state) => auth.insert(AUTH_STATE, state).map(|_| ()),
                }?;
                Ok(())
            })?;
            let mut meta = txn.open_table(META)?;
            meta.insert(CONSISTENT_INDEX, consistent_index as i64)?;
            meta.insert(COMPACTED, compacted)?;
        }
        txn.commit()?;
        self.measure_db_size();
        self.rebuild()
    }
}

/// An image's header and record counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpSummary {
    /// The raft index the image is as of.
    pub consistent_index: u64,
    pub compacted: i64,
    /// The store's revision.
    pub revision: i64,
    /// Key records (one per revision kept).
    pub revisions: u64,
    pub leases: u64,
}

const DUMP_KEY: u8 = b'k';
const DUMP_LEASE: u8 = b'l';
const DUMP_ALARM: u8 = b'a';
const DUMP_AUTH: u8 = b'u';

enum DumpRecord<'a> {
    Key(&'a [u8], &'a [u8]),
    /// The encoded AuthState.
    Auth(&'a [u8]),
    Lease(i64, i64),
    Alarm(u64, i32),
}

fn parse_dump(
    mut b: &[u8],
    mut record: impl FnMut(DumpRecord<'_>) -> MvccResult<()>,
) -> MvccResult<(u64, i64, i64)> {
    let bad = |what: &str| MvccError::Backend(format!("v3 store image: {what}"));
    let take = |n: usize, b: &mut &[u8]| -> MvccResult<Vec<u8>> {
        if b.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head.to_vec())
    };
    let word = |v: Vec<u8>| u64::from_le_bytes(v.try_into().expect("8 bytes"));
    let consistent_index = word(take(8, &mut b)?);
    let compacted = word(take(8, &mut b)?) as i64;
    let current = word(take(8, &mut b)?) as i64;
    while !b.is_empty() {
        if b.iter().all(|x| *x == 0) {
            break; // padding (a snapshot saved by etcdctl is padded to 512-byte pages)
        }
        let table = take(1, &mut b)?[0];
        let klen = u32::from_le_bytes(take(4, &mut b)?.try_into().expect("4 bytes")) as usize;
        let k = take(klen, &mut b)?;
        let vlen = u32::from_le_bytes(take(4, &mut b)?.try_into().expect("4 bytes")) as usize;
        let v = take(vlen, &mut b)?;
        match table {
            DUMP_KEY => {
                if Revision::from_key(&k).is_none() || KeyValue::decode(&v[..]).is_err() {
                    return Err(bad("a record that is not a revision and a KeyValue"));
                }
                record(DumpRecord::Key(&k, &v))?;
            }
            DUMP_AUTH => {
                if AuthState::decode(&v[..]).is_err() {
                    return Err(bad("an auth record that does not decode"));
                }
                record(DumpRecord::Auth(&v))?;
            }
            DUMP_LEASE | DUMP_ALARM => {
                let (Ok(a), Ok(b)) = (<[u8; 8]>::try_from(&k[..]), <[u8; 8]>::try_from(&v[..]))
                else {
                    return Err(bad("a lease or alarm record that is not two numbers"));
                };
                let (a, b) = (i64::from_le_bytes(a), i64::from_le_bytes(b));
                record(if table == DUMP_LEASE {
                    DumpRecord::Lease(a, b)
                } else {
                    DumpRecord::Alarm(a as u64, b as i32)
                })?;
            }
            _ => return Err(bad("a record of an unknown table")),
        }
    }
    Ok((consistent_index, compacted, current))
}

/// The one range read, over committed records or a batch's own.
fn range<T: ReadableTable<&'static [u8], &'static [u8]>>(
    index: &Index,
    table: &T,
    current: i64,
    compacted: i64,
    keys: KeyRange<'_>,
    opts: RangeOptions,
) -> MvccResult<RangeResult> {
    if opts.rev > current {
        return Err(MvccError::FutureRev);
    }
    let at = if opts.rev <= 0 { current } else { opts.rev };
    if at < compacted {
        return Err(MvccError::Compacted);
    }
    let mut result = RangeResult {
        rev: current,
        ..Default::default()
    };
    let Some(bounds) = keys.bounds() else {
        return Ok(result);
    };
    let limit = if opts.limit == 0 {
        usize::MAX
    } else {
        opts.limit
    };
    for (_, ki) in index.range::<[u8], _>(bounds) {
        let Some(found) = ki.get(at) else { continue };
        result.count += 1;
        if opts.count_only || result.kvs.len() >= limit {
            continue;
        }
        result.kvs.push(read_record(table, found.modified)?);
    }
    Ok(result)
}

fn read_record<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    rev: Revision,
) -> MvccResult<KeyValue> {
    let key = rev.to_key(false);
    let v = table.get(&key[..])?.ok_or_else(|| {
        MvccError::Backend(format!(
            "the index names revision {}_{} but the backend has no record of it",
            rev.main, rev.sub
        ))
    })?;
    KeyValue::decode(v.value()).map_err(|e| {
        MvccError::Backend(format!(
            "the record of revision {}_{} does not decode: {e}",
            rev.main, rev.sub
        ))
    })
}

fn detach(leases: &mut BTreeMap<i64, Lease>, key_leases: &mut HashMap<Bytes, i64>, key: &Bytes) {
    if let Some(old) = key_leases.remove(key) {
        if let Some(l) = leases.get_mut(&old) {
            l.keys.remove(key);
        }
    }
}

/// The changes of one raft entry: one main revision (if anything changes), a sub revision
/// per change. Reads see the entry's own changes, as etcd's write txn does.
pub struct WriteTxn<'a> {
    mvcc: &'a mut Mvcc,
    begin: i64,
    changes: Vec<Event>,
}

impl WriteTxn<'_> {
    fn batch(&self) -> &redb::WriteTransaction {
        self.mvcc.batch.as_ref().expect("a batch is open")
    }

    /// The revision this entry's changes get.
    fn rev(&self) -> i64 {
        self.begin + 1
    }

    /// The store's revision as this entry sees it.
    pub fn current_revision(&self) -> i64 {
        if self.changes.is_empty() {
            self.begin
        } else {
            self.begin + 1
        }
    }

    pub fn range(&self, keys: KeyRange<'_>, opts: RangeOptions) -> MvccResult<RangeResult> {
        let table = self.batch().open_table(KEYS)?;
        let current = self.current_revision();
        range(
            &self.mvcc.index,
            &table,
            current,
            self.mvcc.compacted,
            keys,
            opts,
        )
    }

    pub fn put(&mut self, key: Bytes, value: Bytes, lease: i64) -> MvccResult<()> {
        let rev = self.rev();
        let at = Revision::new(rev, self.changes.len() as i64);
        // One walk of the index per put (it is most of a put's cost after the backend's).
        let m = &mut *self.mvcc;
        let known = m.index.get_mut(&key[..]);
        let (create_revision, version) = match known.as_deref().and_then(|k| k.get(rev)) {
            Some(found) => (found.created.main, found.version + 1),
            None => (rev, 1),
        };
        let kv = KeyValue {
            key,
            create_revision,
            mod_revision: rev,
            version,
            value,
            lease,
        };
        m.batch
            .as_ref()
            .expect("a batch is open")
            .open_table(KEYS)?
            .insert(&at.to_key(false)[..], &kv.encode_to_vec()[..])?;
        match known {
            Some(ki) => ki.put(at),
            None => {
                m.index.insert(kv.key[..].into(), KeyIndex::new(at));
            }
        }
        self.attach(&kv.key, kv.lease);
        self.changes.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: None,
        });
        Ok(())
    }

    /// Delete the keys live in `keys`; how many there were.
    pub fn delete_range(&mut self, keys: KeyRange<'_>) -> MvccResult<i64> {
        let Some(bounds) = keys.bounds() else {
            return Ok(0);
        };
        let rev = self.rev();
        let live: Vec<Bytes> = self
            .mvcc
            .index
            .range::<[u8], _>(bounds)
            .filter(|(_, ki)| ki.get(rev).is_some())
            .map(|(k, _)| Bytes::copy_from_slice(k))
            .collect();
        let batch = self.mvcc.batch.as_ref().expect("a batch is open");
        let mut table = batch.open_table(KEYS)?;
        for key in &live {
            let at = Revision::new(rev, self.changes.len() as i64);
            let tomb = KeyValue {
                key: key.clone(),
                ..Default::default()
            };
            table.insert(&at.to_key(true)[..], &tomb.encode_to_vec()[..])?;
            if let Some(ki) = self.mvcc.index.get_mut(&key[..]) {
                ki.tombstone(at);
            }
            detach(&mut self.mvcc.leases, &mut self.mvcc.key_leases, key);
            self.changes.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(KeyValue {
                    mod_revision: rev,
                    ..tomb
                }),
                prev_kv: None,
            });
        }
        Ok(live.len() as i64)
    }

    /// Attach `key` to `lease` (0: none), leaving the lease it had.
    fn attach(&mut self, key: &Bytes, lease: i64) {
        let m = &mut *self.mvcc;
        if m.key_leases.get(key) == Some(&lease) {
            return;
        }
        detach(&mut m.leases, &mut m.key_leases, key);
        if let Some(l) = m.leases.get_mut(&lease) {
            l.keys.insert(key.clone());
            m.key_leases.insert(key.clone(), lease);
        }
    }

    /// Grant a lease; false when one with this id exists.
    pub fn grant_lease(&mut self, id: i64, ttl: i64) -> MvccResult<bool> {
        if self.mvcc.leases.contains_key(&id) {
            return Ok(false);
        }
        self.batch().open_table(LEASES)?.insert(id, ttl)?;
        self.mvcc.leases.insert(
            id,
            Lease {
                ttl,
                keys: BTreeSet::new(),
            },
        );
        Ok(true)
    }

    /// Revoke a lease, deleting its keys; false when there is no such lease.
    pub fn revoke_lease(&mut self, id: i64) -> MvccResult<bool> {
        let Some(lease) = self.mvcc.leases.get(&id) else {
            return Ok(false);
        };
        let keys: Vec<Bytes> = lease.keys.iter().cloned().collect();
        for key in &keys {
            self.delete_range(KeyRange::Key(key))?;
        }
        self.batch().open_table(LEASES)?.remove(id)?;
        self.mvcc.leases.remove(&id);
        Ok(true)
    }

    /// Whether an alarm of this type is raised, by any member.
    pub fn has_alarm(&self, alarm: i32) -> bool {
        self.mvcc.alarms.iter().any(|(_, a)| *a == alarm)
    }

    /// Raise (`on`) or disarm an alarm; whether anything changed.
    pub fn set_alarm(&mut self, member: u64, alarm: i32, on: bool) -> MvccResult<bool> {
        let m = &mut *self.mvcc;
        let mut table = m
            .batch
            .as_ref()
            .expect("a batch is open")
            .open_table(ALARMS)?;
        let changed = if on {
            table.insert((member, alarm), ())?;
            m.alarms.insert((member, alarm))
        } else {
            table.remove((member, alarm))?;
            m.alarms.remove(&(member, alarm))
        };
        Ok(changed)
    }

    pub fn auth(&self) -> &AuthStore {
        &self.mvcc.auth
    }

    pub fn token_ttl(&self) -> std::time::Duration {
        self.mvcc.token_ttl
    }

    /// The keys attached to a lease (none when there is no such lease).
    pub fn lease_keys(&self, id: i64) -> Vec<Bytes> {
        self.mvcc
            .leases
            .get(&id)
            .map(|l| l.keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Replace the auth state (an auth change being applied), in memory and in the batch.
    pub fn set_auth(&mut self, auth: AuthStore) -> MvccResult<()> {
        let state = auth.state().encode_to_vec();
        self.batch()
            .open_table(AUTH)?
            .insert(AUTH_STATE, &state[..])?;
        self.mvcc.auth = auth;
        Ok(())
    }

    /// Forget the history before `at` (the record holding each key as of `at` stays).
    pub fn compact(&mut self, at: i64) -> MvccResult<()> {
        if at <= self.mvcc.compacted {
            return Err(MvccError::Compacted);
        }
        if at > self.current_revision() {
            return Err(MvccError::FutureRev);
        }
        let started = std::time::Instant::now();
        let mut keep = HashSet::new();
        let keys_before = self.mvcc.index.len();
        self.mvcc.index.retain(|_, ki| !ki.compact(at, &mut keep));
        let end = Revision::new(at, i64::MAX).to_key(true);
        self.batch()
            .open_table(KEYS)?
            .retain_in(..=&end[..], |k, _| {
                Revision::from_key(k).is_some_and(|(rev, _)| keep.contains(&rev))
            })?;
        self.mvcc.compacted = at;
        tracing::info!(
            compact_revision = at,
            keys_removed = keys_before - self.mvcc.index.len(),
            took = ?started.elapsed(),
            "finished scheduled compaction"
        );
        Ok(())
    }

    /// The entry is done: its changes move the store's revision on, and are handed out
    /// (for watchers).
    pub fn end(self) -> Vec<Event> {
        if !self.changes.is_empty() {
            self.mvcc.current = self.begin + 1;
        }
        self.changes
    }
}

#[cfg(test)]
mod tests;
