//! The write-ahead log: raft entries and hard state in checksummed records, one record (one
//! write, one fsync) per batch of Readies.
//!
//! Segment files `<seq:016x>.wal` in `<data-dir>/member/wal`. A record is
//! `len: u32 LE | crc32(payload): u32 LE | crc32(len bytes): u32 LE | payload`.
//! Only the last record of the last segment can be torn by a crash (records are appended and
//! synced one at a time): a record that runs past the end of the file, or one followed by
//! nothing but zeros, is truncated away. Any other damage stops the start with the file and
//! offset.
//!
//! The file is kept zero-filled a little ahead of the last record (`PREALLOC_BYTES`), so an
//! fdatasync flushes only the record: a file that grew with every append also had its size
//! (the inode) written out by every sync, which here nearly doubled its cost. A segment's
//! records therefore end where only zeros follow.

use crate::error::{Error, ErrorCode, Result};
use protobuf::Message as _;
use raft::eraftpb::{Entry, HardState};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const HEADER: usize = 12;
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// How far ahead of the last record the file is zero-filled. Extending it costs one slower
/// sync per this many bytes of log; much more makes that sync a latency spike.
const PREALLOC_BYTES: u64 = 1024 * 1024;
/// The largest record we ever write or accept (a batch of entries).
const MAX_RECORD: usize = 512 * 1024 * 1024;

struct Segment {
    seq: u64,
    path: PathBuf,
    /// The highest entry index written into this segment (0: none).
    last_index: u64,
}

pub struct Wal {
    dir: PathBuf,
    file: File,
    /// Where the records of the current segment end (the next one is written there).
    size: u64,
    /// The current segment's file length: records, then zeros.
    allocated: u64,
    segments: Vec<Segment>,
    hard_state: HardState,
    fsync_seconds: Option<prometheus_client::metrics::histogram::Histogram>,
}

/// etcd warns about an fsync slower than this.
const SLOW_FSYNC: std::time::Duration = std::time::Duration::from_secs(1);

/// What replaying the log found.
#[derive(Default)]
pub struct Replay {
    pub hard_state: Option<HardState>,
    pub entries: Vec<Entry>,
    /// Bytes cut from a torn tail (0 when the log was clean).
    pub truncated_bytes: u64,
    /// Where the last hard state was read: its segment file and record offset.
    pub hard_state_at: Option<(PathBuf, u64)>,
    /// There was no log: `open` made a new, empty one.
    pub created: bool,
}

fn segment_name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}

fn corrupt(path: &Path, offset: u64, what: &str) -> Error {
    Error::new(
        ErrorCode::Corrupt,
        format!(
            "write-ahead log {} is damaged at offset {offset}: {what}; refusing to start (restore the data dir from a backup or a healthy member)",
            path.display()
        ),
        0,
    )
}

fn encode_record(hs: Option<&HardState>, entries: &[Entry]) -> Vec<u8> {
    let mut payload =
        Vec::with_capacity(64 + entries.iter().map(|e| e.data.len() + 32).sum::<usize>());
    match hs {
        Some(hs) => {
            let b = hs.write_to_bytes().expect("hard state encodes");
            payload.push(1);
            payload.extend_from_slice(&(b.len() as u32).to_le_bytes());
            payload.extend_from_slice(&b);
        }
        None => payload.push(0),
    }
    payload.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        let b = e.write_to_bytes().expect("entry encodes");
        payload.extend_from_slice(&(b.len() as u32).to_le_bytes());
        payload.extend_from_slice(&b);
    }
    let len = (payload.len() as u32).to_le_bytes();
    let mut rec = Vec::with_capacity(HEADER + payload.len());
    rec.extend_from_slice(&len);
    rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    rec.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    rec.extend_from_slice(&payload);
    rec
}

fn decode_payload(p: &[u8]) -> Option<(Option<HardState>, Vec<Entry>)> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if p.len() < n {
            return None;
        }
        let (a, b) = p.split_at(n);
        *p = b;
        Some(a)
    }
    fn u32_at(p: &mut &[u8]) -> Option<usize> {
        Some(u32::from_le_bytes(take(p, 4)?.try_into().ok()?) as usize)
    }
    let mut p = p;
    let hs = match take(&mut p, 1)?[0] {
        0 => None,
        1 => {
            let n = u32_at(&mut p)?;
            Some(HardState::parse_from_bytes(take(&mut p, n)?).ok()?)
        }
        _ => return None,
    };
    let count = u32_at(&mut p)?;
    let mut entries = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let n = u32_at(&mut p)?;
        entries.push(Entry::parse_from_bytes(take(&mut p, n)?).ok()?);
    }
    p.is_empty().then_some((hs, entries))
}

/// The unit a disk writes atomically: a torn write leaves whole sectors unwritten.
const SECTOR: usize = 512;

/// Whether some sector-aligned piece of `record` (which starts at file offset `at`) is all
/// zeros: the mark of a write that did not complete.
fn has_zero_sector(record: &[u8], at: usize) -> bool {
    let mut start = 0;
    while start < record.len() {
        let end = ((at + start) / SECTOR + 1) * SECTOR - at;
        let end = end.min(record.len());
        if record[start..end].iter().all(|b| *b == 0) {
            return true;
        }
        start = end;
    }
    false
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir.display(), e))
}

impl Wal {
    /// Apply a batch of entries to a log in index order: later entries replace conflicting
    /// ones (what replaying the log does, and what joining Readies into one record does).
    pub fn merge(log: &mut Vec<Entry>, batch: Vec<Entry>) {
        let Some(first) = batch.first().map(|e| e.index) else {
            return;
        };
        // Find the overwritten suffix by binary search (a linear scan per record made
        // replay quadratic in the log's length).
        let keep = log.partition_point(|e| e.index < first);
        log.truncate(keep);
        log.extend(batch);
    }

    /// Open (or create) the log in `dir` and replay it.
    pub fn open(dir: &Path) -> Result<(Wal, Replay)> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        let mut seqs: Vec<u64> = fs::read_dir(dir)
            .map_err(|e| Error::io(dir.display(), e))?
            .filter_map(|d| d.ok())
            .filter_map(|d| {
                let name = d.file_name().into_string().ok()?;
                u64::from_str_radix(name.strip_suffix(".wal")?, 16).ok()
            })
            .collect();
        seqs.sort_unstable();
        let mut replay = Replay::default();
        let mut segments = Vec::new();
        let count = seqs.len();
        let mut size = 0;
        for (i, seq) in seqs.into_iter().enumerate() {
            let path = dir.join(segment_name(seq));
            let last = i + 1 == count;
            let last_index;
            (last_index, size) = Self::replay_segment(&path, last, &mut replay)?;
            segments.push(Segment {
                seq,
                path,
                last_index,
            });
        }
        if segments.is_empty() {
            replay.created = true;
            let path = dir.join(segment_name(1));
            File::create(&path).map_err(|e| Error::io(path.display(), e))?;
            sync_dir(dir)?;
            segments.push(Segment {
                seq: 1,
                path,
                last_index: 0,
            });
        }
        let tail = &segments[segments.len() - 1].path;
        let file = OpenOptions::new()
            .write(true)
            .open(tail)
            .map_err(|e| Error::io(tail.display(), e))?;
        let allocated = file
            .metadata()
            .map_err(|e| Error::io(tail.display(), e))?
            .len();
        let wal = Wal {
            dir: dir.to_path_buf(),
            file,
            size,
            allocated,
            segments,
            hard_state: replay.hard_state.clone().unwrap_or_default(),
            fsync_seconds: None,
        };
        Ok((wal, replay))
    }

    /// Read one segment into `replay`; returns the highest entry index seen in it and where
    /// its records end.
    fn replay_segment(path: &Path, last: bool, replay: &mut Replay) -> Result<(u64, u64)> {
        let mut buf = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| Error::io(path.display(), e))?;
        let mut off = 0usize;
        let mut last_index = 0;
        let mut torn_at = None;
        // A bad record is a torn tail only at the end of the last segment.
        let mut torn = |off: usize, what: &str| {
            if last {
                torn_at = Some(off);
                Ok(())
            } else {
                Err(corrupt(path, off as u64, what))
            }
        };
        let zeros = |b: &[u8]| b.iter().all(|b| *b == 0);
        while off < buf.len() {
            let rest = &buf[off..];
            // Preallocated space: the records end here.
            if zeros(rest) {
                break;
            }
            if rest.len() < HEADER {
                torn(off, "incomplete record header")?;
                break;
            }
            let len_bytes: [u8; 4] = rest[0..4].try_into().expect("4 bytes");
            let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
            let len_crc = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
            let len = u32::from_le_bytes(len_bytes) as usize;
            if crc32fast::hash(&len_bytes) != len_crc || len > MAX_RECORD {
                // An interrupted write of a header leaves nothing written after it.
                if zeros(&rest[HEADER..]) {
                    torn(off, "torn record header")?;
                    break;
                }
                return Err(corrupt(path, off as u64, "record header checksum mismatch"));
            }
            let end = off + HEADER + len;
            if end > buf.len() {
                torn(off, "record runs past the end of the file")?;
                break;
            }
            let payload = &buf[off + HEADER..end];
            if crc32fast::hash(payload) != crc {
                // A write cut short by a crash leaves whole sectors of the record as they
                // were (zeros); a record written whole and damaged since does not, and may
                // hold acknowledged writes: that is damage, never a torn tail (etcd's rule).
                if zeros(&buf[end..]) && has_zero_sector(&buf[off..end], off) {
                    torn(off, "last record checksum mismatch")?;
                    break;
                }
                return Err(corrupt(path, off as u64, "record checksum mismatch"));
            }
            let Some((hs, entries)) = decode_payload(payload) else {
                return Err(corrupt(path, off as u64, "record does not decode"));
            };
            if let Some(hs) = hs {
                replay.hard_state = Some(hs);
                replay.hard_state_at = Some((path.to_path_buf(), off as u64));
            }
            if let Some(e) = entries.last() {
                last_index = last_index.max(e.index);
            }
            Wal::merge(&mut replay.entries, entries);
            off = end;
        }
        if torn_at.is_some() {
            // Cut the torn tail so new records follow the last good one.
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| Error::io(path.display(), e))?;
            f.set_len(off as u64)
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::io(path.display(), e))?;
            replay.truncated_bytes += (buf.len() - off) as u64;
            tracing::warn!(file = %path.display(), offset = off, bytes = buf.len() - off, "truncated a torn record at the end of the write-ahead log");
        }
        Ok((last_index, off as u64))
    }

    /// Append the hard state (if changed) and entries as one record, fsynced when `sync`.
    /// An unsynced record (raft's must_sync is false: only the commit index moved) is made
    /// durable by the next synced one; a crash can only tear it at the tail.
    pub fn save(&mut self, hs: Option<&HardState>, entries: &[Entry], sync: bool) -> Result<()> {
        if hs.is_none() && entries.is_empty() {
            return Ok(());
        }
        if self.size >= SEGMENT_BYTES {
            self.rotate()?;
        }
        let rec = encode_record(hs, entries);
        let path = &self.segments[self.segments.len() - 1].path;
        let end = self.size + rec.len() as u64;
        self.file
            .write_all_at(&rec, self.size)
            .map_err(|e| Error::io(path.display(), e))?;
        if end > self.allocated {
            // Zero-fill ahead, flushed by this record's sync.
            self.file
                .write_all_at(&vec![0; PREALLOC_BYTES as usize], end)
                .map_err(|e| Error::io(path.display(), e))?;
            self.allocated = end + PREALLOC_BYTES;
        }
        if sync {
            self.sync()?;
        }
        self.size += rec.len() as u64;
        if let Some(hs) = hs {
            self.hard_state = hs.clone();
        }
        if let Some(e) = entries.last() {
            let seg = self.segments.last_mut().expect("a segment");
            seg.last_index = seg.last_index.max(e.index);
        }
        Ok(())
    }

    /// fsync the segment being written; timed for etcd_disk_wal_fsync_duration_seconds,
    /// and a slow one is logged as etcd does (a disk too slow for raft's heartbeats).
    fn sync(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        let path = &self.segments[self.segments.len() - 1].path;
        self.file
            .sync_data()
            .map_err(|e| Error::io(path.display(), e))?;
        let took = started.elapsed();
        if let Some(h) = &self.fsync_seconds {
            h.observe(took.as_secs_f64());
        }
        if took > SLOW_FSYNC {
            tracing::warn!(file = %path.display(), took = ?took, expected = ?SLOW_FSYNC, "slow fdatasync");
        }
        Ok(())
    }

    /// Time every fsync into `h` from now on.
    pub fn observe_fsync(&mut self, h: prometheus_client::metrics::histogram::Histogram) {
        self.fsync_seconds = Some(h);
    }

    /// Start a new segment that begins with the current hard state, so older segments can
    /// be deleted without losing it.
    fn rotate(&mut self) -> Result<()> {
        // An unsynced last record of this segment must not be lost behind the next one.
        if !self.segments.is_empty() {
            self.sync()?;
        }
        let seq = self.segments.last().map_or(1, |s| s.seq + 1);
        let path = self.dir.join(segment_name(seq));
        self.file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(path.display(), e))?;
        sync_dir(&self.dir)?;
        self.size = 0;
        self.allocated = 0;
        self.segments.push(Segment {
            seq,
            path,
            last_index: 0,
        });
        let hs = self.hard_state.clone();
        self.save(Some(&hs), &[], true)
    }

    /// Release the log up to `index` (covered by a durable snapshot): segments whose entries
    /// are all at or below it are deleted. The segment being written is rotated first.
    pub fn release_to(&mut self, index: u64) -> Result<()> {
        if self
            .segments
            .last()
            .is_some_and(|s| s.last_index > 0 && s.last_index <= index)
        {
            self.rotate()?;
        }
        let keep_from = self
            .segments
            .iter()
            .position(|s| s.last_index > index || s.last_index == 0)
            .unwrap_or(self.segments.len() - 1);
        let last = self.segments.len() - 1;
        let mut removed = 0;
        for s in self.segments.drain(..keep_from.min(last)) {
            fs::remove_file(&s.path).map_err(|e| Error::io(s.path.display(), e))?;
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    #[cfg(test)]
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &str) -> Entry {
        Entry {
            index,
            term,
            data: data.as_bytes().to_vec().into(),
            ..Default::default()
        }
    }

    fn hs(term: u64, commit: u64) -> HardState {
        HardState {
            term,
            commit,
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_and_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, r) = Wal::open(dir.path()).unwrap();
            assert!(r.entries.is_empty());
            w.save(
                Some(&hs(1, 0)),
                &[entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")],
                true,
            )
            .unwrap();
            // only the commit index moved: written, not synced
            w.save(Some(&hs(1, 1)), &[], false).unwrap();
            // a new leader overwrites the uncommitted tail
            w.save(Some(&hs(2, 2)), &[entry(3, 2, "C"), entry(4, 2, "d")], true)
                .unwrap();
        }
        let (_w, r) = Wal::open(dir.path()).unwrap();
        let got: Vec<_> = r.entries.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(got, [(1, 1), (2, 1), (3, 2), (4, 2)]);
        assert_eq!(r.hard_state.unwrap().commit, 2);
    }

    fn only_segment(dir: &Path) -> PathBuf {
        dir.join(segment_name(1))
    }

    /// Where the records of a segment end: after them come only zeros.
    fn records_end(p: &Path) -> u64 {
        let bytes = fs::read(p).unwrap();
        (bytes.len() - bytes.iter().rev().take_while(|b| **b == 0).count()) as u64
    }

    #[test]
    fn torn_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, _) = Wal::open(dir.path()).unwrap();
            w.save(Some(&hs(1, 1)), &[entry(1, 1, "a")], true).unwrap();
            w.save(None, &[entry(2, 1, "bbbbbbbb")], true).unwrap();
        }
        let p = only_segment(dir.path());
        // The file ends inside the last record (as a log written without preallocation can).
        let len = records_end(&p);
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (mut w, r) = Wal::open(dir.path()).unwrap();
        assert_eq!(r.entries.len(), 1);
        assert!(r.truncated_bytes > 0);
        w.save(None, &[entry(2, 1, "again")], true).unwrap();
        drop(w);
        let (_, r) = Wal::open(dir.path()).unwrap();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.truncated_bytes, 0);
    }

    /// The records of the only segment: (index, data) in order.
    fn replayed(dir: &Path) -> Vec<(u64, String)> {
        let (_, r) = Wal::open(dir).unwrap();
        r.entries
            .iter()
            .map(|e| (e.index, String::from_utf8_lossy(&e.data).into_owned()))
            .collect()
    }

    #[test]
    fn preallocated_zeros_end_the_records_and_writing_resumes_after_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, _) = Wal::open(dir.path()).unwrap();
            w.save(Some(&hs(1, 1)), &[entry(1, 1, "a")], true).unwrap();
        }
        let p = only_segment(dir.path());
        // The file is zero-filled ahead of its one record.
        assert!(fs::metadata(&p).unwrap().len() >= PREALLOC_BYTES);
        {
            let (mut w, r) = Wal::open(dir.path()).unwrap();
            assert_eq!(r.truncated_bytes, 0);
            w.save(None, &[entry(2, 1, "b")], true).unwrap();
        }
        assert_eq!(replayed(dir.path()), [(1, "a".into()), (2, "b".into())]);
    }

    #[test]
    fn a_record_torn_inside_preallocated_space_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, _) = Wal::open(dir.path()).unwrap();
            w.save(Some(&hs(1, 1)), &[entry(1, 1, "a")], true).unwrap();
            w.save(None, &[entry(2, 1, &"b".repeat(2000))], true)
                .unwrap();
        }
        let p = only_segment(dir.path());
        let mut bytes = fs::read(&p).unwrap();
        let end = records_end(&p) as usize;
        // The last record's later sectors never reached the disk: zeros, as the
        // preallocation left them (a disk writes whole sectors, the page cache whole pages).
        let cut = (end - 1000).next_multiple_of(SECTOR);
        bytes[cut..end].fill(0);
        fs::write(&p, &bytes).unwrap();
        let (mut w, r) = Wal::open(dir.path()).unwrap();
        assert_eq!(r.entries.len(), 1);
        assert!(r.truncated_bytes > 0);
        w.save(None, &[entry(2, 1, "again")], true).unwrap();
        drop(w);
        assert_eq!(replayed(dir.path()), [(1, "a".into()), (2, "again".into())]);

        // Only the first bytes of a header written: torn as well.
        let mut bytes = fs::read(&p).unwrap();
        let end = records_end(&p) as usize;
        bytes[end..end + 3].copy_from_slice(&[7, 0, 1]);
        fs::write(&p, &bytes).unwrap();
        assert_eq!(replayed(dir.path()), [(1, "a".into()), (2, "again".into())]);
    }

    /// A last record written whole (synced, so possibly acknowledged) and damaged since is
    /// not a torn tail: truncating it would drop acknowledged writes.
    #[test]
    fn a_flipped_bit_in_the_last_record_refuses_with_offset() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, _) = Wal::open(dir.path()).unwrap();
            w.save(Some(&hs(1, 1)), &[entry(1, 1, "a")], true).unwrap();
            w.save(None, &[entry(2, 1, &"b".repeat(700))], true)
                .unwrap();
        }
        // 300 bytes before the end of the last record.
        flip_and_expect_refusal(dir.path(), |end| end - 300);
    }

    #[test]
    fn zero_sectors_mark_a_torn_write() {
        assert!(has_zero_sector(&[0; 10], 5));
        assert!(!has_zero_sector(&[1; 600], 0));
        // A record from offset 500: its piece in sector 0 is 12 bytes, then 512, then 76.
        let mut r = vec![1u8; 600];
        assert!(!has_zero_sector(&r, 500));
        r[12..524].fill(0);
        assert!(has_zero_sector(&r, 500));
        r[12] = 1;
        assert!(!has_zero_sector(&r, 500));
        r[524..].fill(0);
        assert!(has_zero_sector(&r, 500));
    }

    #[test]
    fn rotated_segments_keep_their_zero_tails() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, _) = Wal::open(dir.path()).unwrap();
            w.save(Some(&hs(1, 1)), &[entry(1, 1, "a")], true).unwrap();
            w.rotate().unwrap();
            w.save(None, &[entry(2, 1, "b")], false).unwrap();
            w.rotate().unwrap();
            w.save(None, &[entry(3, 1, "c")], true).unwrap();
            assert_eq!(w.segment_count(), 3);
        }
        assert_eq!(
            replayed(dir.path()),
            [(1, "a".into()), (2, "b".into()), (3, "c".into())]
        );
        // Damage before a zero tail of an older segment is still damage.
        let first = only_segment(dir.path());
        let mut bytes = fs::read(&first).unwrap();
        bytes[HEADER + 2] ^= 0x10;
        fs::write(&first, &bytes).unwrap();
        let err = Wal::open(dir.path()).err().expect("refuses");
        assert_eq!(err.code, ErrorCode::Corrupt);
    }

    #[test]
    fn flipped_bit_in_the_middle_refuses_with_offset() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, _) = Wal::open(dir.path()).unwrap();
            for i in 1..=10 {
                w.save(None, &[entry(i, 1, "some value bytes")], true)
                    .unwrap();
            }
        }
        flip_and_expect_refusal(dir.path(), |end| end / 2);
    }

    /// Flip a bit of the only segment at `at(where its records end)`: opening the log must
    /// refuse, naming the file and an offset.
    fn flip_and_expect_refusal(dir: &Path, at: impl FnOnce(usize) -> usize) {
        let p = only_segment(dir);
        let mut bytes = fs::read(&p).unwrap();
        bytes[at(records_end(&p) as usize)] ^= 0x10;
        fs::write(&p, &bytes).unwrap();
        let err = Wal::open(dir).err().expect("refuses");
        assert_eq!(err.code, ErrorCode::Corrupt);
        let file = p.display().to_string();
        assert!(err.cause.contains(&file), "{}", err.cause);
        assert!(err.cause.contains("offset"), "{}", err.cause);
    }

    #[test]
    fn release_deletes_old_segments_but_keeps_hard_state() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, _) = Wal::open(dir.path()).unwrap();
            w.save(Some(&hs(3, 2)), &[entry(1, 3, "a"), entry(2, 3, "b")], true)
                .unwrap();
            w.release_to(2).unwrap();
            assert_eq!(w.segment_count(), 1);
            w.save(None, &[entry(3, 3, "c")], true).unwrap();
        }
        let (_, r) = Wal::open(dir.path()).unwrap();
        assert_eq!(r.hard_state.unwrap().term, 3);
        assert_eq!(r.entries.iter().map(|e| e.index).collect::<Vec<_>>(), [3]);
    }
}
