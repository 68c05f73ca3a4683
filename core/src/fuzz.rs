//! Property tests that feed every decoder of untrusted bytes arbitrary and damaged input
//! (stable Rust's answer to fuzzing): what a peer sends (raft message frames, log entries,
//! snapshot images of both stores), what a disk hands back (WAL segments and snapshot
//! files with random damage), and v2 request forms. Each must answer a clear error or the
//! right value, never panic, and never hand back data that differs from what was written.
//!
//! CI runs proptest's default number of cases; `scripts/fuzz.sh` runs many more
//! (PROPTEST_CASES). A failing case is kept in proptest-regressions/ next to this file and
//! replayed first on every later run: commit it with its fix.

use crate::mvcc::Mvcc;
use crate::peer::{encode_frame, FrameDecoder};
use crate::request::{KeyRequest, Method, RaftRequest};
use crate::storage::{SnapshotData, Snapshotter, Wal};
use crate::v2store::Store;
use bytes::Bytes;
use proptest::prelude::*;
use raft::eraftpb::{Entry, HardState, Message, MessageType, Snapshot};
use std::path::Path;

/// Cases for a property whose case touches the disk: a quarter of the usual.
fn disk_config() -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: (base.cases / 4).max(16),
        ..base
    }
}

/// Damage as a disk, a crash or a bad cable does it.
#[derive(Debug, Clone)]
enum Damage {
    /// One bit flipped.
    Flip { at: prop::sample::Index, bit: u8 },
    /// The file cut short.
    Truncate { at: prop::sample::Index },
    /// A run of bytes zeroed (a lost sector).
    Zero { at: prop::sample::Index, len: usize },
    /// A run of bytes overwritten with garbage.
    Garbage {
        at: prop::sample::Index,
        bytes: Vec<u8>,
    },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip { at, bit }),
        any::<prop::sample::Index>().prop_map(|at| Damage::Truncate { at }),
        (any::<prop::sample::Index>(), 1usize..600).prop_map(|(at, len)| Damage::Zero { at, len }),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..64)
        )
            .prop_map(|(at, bytes)| Damage::Garbage { at, bytes }),
    ]
}

impl Damage {
    /// Apply to `data`, within its first `span` bytes; answers whether anything changed.
    fn apply(&self, data: &mut Vec<u8>, span: usize) -> bool {
        let span = span.min(data.len()).max(1);
        let before = data.clone();
        match self {
            Damage::Flip { at, bit } => {
                let i = at.index(span);
                if i < data.len() {
                    data[i] ^= 1 << bit;
                }
            }
            Damage::Truncate { at } => data.truncate(at.index(span)),
            Damage::Zero { at, len } => {
                let i = at.index(span);
                let end = (i + len).min(data.len());
                data[i.min(end)..end].fill(0);
            }
            Damage::Garbage { at, bytes } => {
                let i = at.index(span);
                for (k, b) in bytes.iter().enumerate() {
                    if let Some(d) = data.get_mut(i + k) {
                        *d = *b;
                    }
                }
            }
        }
        *data != before
    }
}

fn message() -> impl Strategy<Value = Message> {
    (
        0i32..20,
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..4),
    )
        .prop_map(|(t, to, from, term, entries)| Message {
            msg_type: <MessageType as protobuf::ProtobufEnum>::from_i32(t)
                .unwrap_or(MessageType::MsgHup),
            to,
            from,
            term,
            entries: entries
                .into_iter()
                .enumerate()
                .map(|(i, data)| Entry {
                    index: i as u64 + 1,
                    term,
                    data: data.into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
}

/// Feed `data` to a decoder in chunks cut at `cuts`.
fn chunks<'a>(data: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
    at.push(0);
    at.push(data.len());
    at.sort_unstable();
    at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

proptest! {
    /// Whatever bytes a peer's stream carries, in whatever pieces: messages or an error.
    #[test]
    fn peer_frames_of_any_bytes_decode_or_fail(
        data in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut d = FrameDecoder::default();
        for piece in chunks(&data, &cuts) {
            if d.push(piece).is_err() {
                break;
            }
        }
    }

    /// Real messages, split anywhere, come out whole and equal; garbage after them is an
    /// error, not a message.
    #[test]
    fn peer_frames_round_trip_through_any_split(
        msgs in prop::collection::vec(message(), 1..6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut bytes = Vec::new();
        for m in &msgs {
            encode_frame(m, &mut bytes);
        }
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for piece in chunks(&bytes, &cuts) {
            got.extend(d.push(piece).expect("frames decode"));
        }
        prop_assert_eq!(got, msgs);
    }

    /// A log entry's data from a leader (or a damaged log): a request or an error.
    #[test]
    fn raft_entries_of_any_bytes_decode_or_fail(data in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = RaftRequest::decode(&data) {
            // What decodes encodes back to something that decodes the same.
            prop_assert_eq!(RaftRequest::decode(&r.encode()).unwrap(), r);
        }
    }

    /// A snapshot's data from a peer: split into its images, or an error.
    #[test]
    fn snapshot_data_of_any_bytes_splits_or_fails(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut with_magic = b"etcdrs\x03\x00".to_vec();
        with_magic.extend_from_slice(&data);
        for d in [&data, &with_magic] {
            if let Ok(s) = SnapshotData::split(d) {
                prop_assert!(s.v2.len() + s.v3.map_or(0, |v| v.len()) <= d.len());
            }
        }
    }

    /// A v2 store image from a peer's snapshot, arbitrary or a real one damaged: the store
    /// recovers it or refuses it.
    #[test]
    fn v2_store_images_recover_or_fail(
        data in prop::collection::vec(any::<u8>(), 0..512),
        d in damage(),
    ) {
        let _ = Store::new().recover(&data);
        let mut s = Store::new();
        s.set("/a/b", false, "value", None, false, 0).unwrap();
        s.set("/dir", true, "", Some(1_000), false, 0).unwrap();
        let mut image = s.freeze().encode();
        let len = image.len();
        d.apply(&mut image, len);
        let _ = Store::new().recover(&image);
    }

    /// A v3 store dump from a peer's snapshot, arbitrary or a real one damaged.
    #[test]
    fn v3_store_dumps_check_or_fail(
        data in prop::collection::vec(any::<u8>(), 0..512),
        d in damage(),
    ) {
        let _ = Mvcc::check_dump(&data);
        let dump = real_dump();
        let mut damaged = dump.clone();
        let len = damaged.len();
        d.apply(&mut damaged, len);
        let _ = Mvcc::check_dump(&damaged);
    }

    /// Any form a v2 client sends, with any key: a request, or an etcd error.
    #[test]
    fn v2_forms_parse_or_fail(
        method in prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"]),
        key in ".{0,40}",
        fields in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "value", "ttl", "dir", "prevValue", "prevIndex", "prevExist", "recursive",
                    "sorted", "wait", "waitIndex", "quorum", "stream", "refresh",
                    "noValueOnSuccess", "other",
                ]),
                prop_oneof![
                    Just(String::new()),
                    Just("true".to_string()),
                    Just("0".to_string()),
                    Just("-1".to_string()),
                    Just("18446744073709551616".to_string()),
                    ".{0,12}",
                ],
            ),
            0..6,
        ),
    ) {
        if let Some(m) = Method::parse(method) {
            let get = |name: &str| {
                fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
            };
            if let Ok(r) = KeyRequest::from_form(m, &key, &get) {
                let _ = r.validate();
            }
        }
    }
}

proptest! {
    #![proptest_config(disk_config())]

    /// A WAL segment damaged anywhere: the log refuses to open, naming the file, or it
    /// replays exactly what was written, less at most the last record (a torn tail: the
    /// one write a crash can leave half done). Never different entries, never a panic.
    #[test]
    fn a_damaged_wal_is_refused_or_replays_a_prefix(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..200), 1..8),
        d in damage(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut written: Vec<Entry> = Vec::new();
        let mut last_record = 0;
        {
            let (mut w, _) = Wal::open(dir.path()).unwrap();
            for (i, data) in records.iter().enumerate() {
                let e = Entry {
                    index: i as u64 + 1,
                    term: 1,
                    data: data.clone().into(),
                    ..Default::default()
                };
                let hs = HardState { term: 1, commit: i as u64 + 1, ..Default::default() };
                w.save(Some(&hs), std::slice::from_ref(&e), true).unwrap();
                last_record = written.len();
                written.push(e);
            }
        }
        let seg = only_segment(dir.path());
        let mut bytes = std::fs::read(&seg).unwrap();
        // Damage where the records are (and a little of the zeros after them).
        let end = bytes.len() - bytes.iter().rev().take_while(|b| **b == 0).count();
        let original = bytes.clone();
        let changed = d.apply(&mut bytes, end + 16);
        std::fs::write(&seg, &bytes).unwrap();
        // Damage that leaves nothing but zeros (or no file) from where it starts to where
        // the records ended looks exactly like a crash in the middle of a write: no format
        // can tell what was there, so the log may keep any prefix of its entries.
        let first = original.iter().zip(&bytes).position(|(a, b)| a != b).unwrap_or(bytes.len());
        let like_a_tear =
            !matches!(bytes.get(first..end), Some(rest) if rest.iter().any(|b| *b != 0));
        match Wal::open(dir.path()) {
            Err(e) => {
                prop_assert!(changed, "an undamaged log was refused: {e}");
                let name = seg.file_name().unwrap().to_string_lossy().into_owned();
                prop_assert!(e.cause.contains(&name), "the error names no file: {}", e.cause);
            }
            Ok((_, replay)) => {
                let got = &replay.entries;
                prop_assert!(
                    got.len() <= written.len() && got[..] == written[..got.len()],
                    "replayed entries that differ from those written"
                );
                prop_assert!(
                    got.len() >= last_record || like_a_tear,
                    "replayed {} of {} entries: more than a torn last record lost",
                    got.len(),
                    written.len()
                );
            }
        }
    }

    /// A snapshot file damaged anywhere: an error naming it, or the very snapshot saved.
    #[test]
    fn a_damaged_snapshot_file_is_refused_or_read_whole(
        data in prop::collection::vec(any::<u8>(), 0..300),
        d in damage(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::new(dir.path()).unwrap();
        let mut snap = Snapshot::default();
        snap.mut_metadata().term = 3;
        snap.mut_metadata().index = 42;
        snap.data = data.into();
        s.save(&snap).unwrap();
        let path = s.newest_first().unwrap().remove(0);
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        let changed = d.apply(&mut bytes, len);
        std::fs::write(&path, &bytes).unwrap();
        match s.read(&path) {
            Ok(read) => prop_assert_eq!(read, snap),
            Err(e) => {
                prop_assert!(changed, "an undamaged snapshot was refused: {e}");
                prop_assert!(e.cause.contains(&*path.to_string_lossy()), "{}", e.cause);
            }
        }
    }
}

fn only_segment(dir: &Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    assert_eq!(segs.len(), 1, "one segment");
    segs.remove(0)
}

/// A real v3 store's dump (made once).
fn real_dump() -> Vec<u8> {
    static DUMP: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DUMP.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Mvcc::open(&dir.path().join("db")).unwrap();
        for (k, v) in [("a", "1"), ("b", "2"), ("a", "3")] {
            let mut w = m.write().unwrap();
            w.put(Bytes::from(k), Bytes::from(v), 0).unwrap();
            w.end();
        }
        m.commit_durable(3).unwrap();
        m.dump().unwrap()
    })
    .clone()
}
