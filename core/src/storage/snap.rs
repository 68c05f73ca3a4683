//! Snapshot files: `<term:016x>-<index:016x>.snap` in `<data-dir>/member/snap`, each
//! `magic | crc32 | len | raft Snapshot (protobuf)`, written to a temporary file, synced and
//! renamed so a crash never leaves a half snapshot under a real name.

use crate::error::{Error, ErrorCode, Result};
use protobuf::Message as _;
use raft::eraftpb::{Snapshot, SnapshotMetadata};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"ETCDRSSN";
/// Older snapshots kept besides the newest.
const KEEP_OLDER: usize = 1;

pub struct Snapshotter {
    dir: PathBuf,
}

impl Snapshotter {
    pub fn new(dir: &Path) -> Result<Snapshotter> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        // A crash while writing a snapshot leaves only a temporary file: it never counted.
        for entry in fs::read_dir(dir)
            .map_err(|e| Error::io(dir.display(), e))?
            .flatten()
        {
            if entry.file_name().to_string_lossy().ends_with(".snap.tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Snapshotter {
            dir: dir.to_path_buf(),
        })
    }

    fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map_err(|e| Error::io(self.dir.display(), e))?
            .filter_map(|d| d.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".snap"))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Durably write a snapshot and drop the ones older than the newest few.
    pub fn save(&self, snap: &Snapshot) -> Result<()> {
        let name = file_name(snap.get_metadata());
        let body = snap
            .write_to_bytes()
            .map_err(|e| Error::new(ErrorCode::Io, e.to_string(), 0))?;
        let tmp = self.dir.join(format!("{name}.tmp"));
        let path = self.dir.join(&name);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&crc32fast::hash(&body).to_le_bytes())?;
            f.write_all(&(body.len() as u64).to_le_bytes())?;
            f.write_all(&body)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| Error::io(path.display(), e))?;
        let names = self.names()?;
        if names.len() > KEEP_OLDER + 1 {
            for old in &names[..names.len() - KEEP_OLDER - 1] {
                let _ = fs::remove_file(self.dir.join(old));
            }
        }
        Ok(())
    }

    /// The saved snapshots' files, newest first. Start-up takes the newest one that reads
    /// back whole and that the log still reaches back to, as etcd falls back past a damaged
    /// snapshot; see `read`.
    pub fn newest_first(&self) -> Result<Vec<PathBuf>> {
        Ok(self
            .names()?
            .into_iter()
            .rev()
            .map(|n| self.dir.join(n))
            .collect())
    }

    /// The newest snapshot, if any (an Err when it is damaged).
    #[cfg(test)]
    pub fn load_newest(&self) -> Result<Option<Snapshot>> {
        match self.newest_first()?.first() {
            Some(path) => self.read(path).map(Some),
            None => Ok(None),
        }
    }

    /// Where a snapshot being received from the leader is written until it is checked (a
    /// temporary name: one left by a crash is removed at the next start).
    pub fn incoming_path(&self) -> PathBuf {
        self.dir.join("incoming.snap.tmp")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The saved snapshot with this metadata's term and index (for a peer that needs it).
    pub fn load(&self, meta: &SnapshotMetadata) -> Result<Snapshot> {
        self.read(&self.dir.join(file_name(meta)))
    }

    /// Read a snapshot file; damage is an error naming the file.
    pub fn read(&self, path: &Path) -> Result<Snapshot> {
        let bytes = bytes::Bytes::from(fs::read(path).map_err(|e| Error::io(path.display(), e))?);
        let bad = |what: &str| {
            Error::new(
                ErrorCode::Corrupt,
                format!("snapshot {} is damaged: {what}", path.display()),
                0,
            )
        };
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(bad("bad header"));
        }
        let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")) as usize;
        let body = bytes.slice(20..);
        if body.len() != len || crc32fast::hash(&body) != crc {
            return Err(bad("checksum mismatch"));
        }
        // The snapshot's data shares the file's buffer instead of copying it (a whole store).
        Snapshot::parse_from_carllerche_bytes(&body).map_err(|e| bad(&e.to_string()))
    }
}

/// A snapshot's data: the v2 store's image, and in a snapshot sent to a peer the v3 store's
/// image too (etcd likewise sends its backend with the raft snapshot). Local snapshots
/// carry the v2 image alone: the v3 store is durable in its own file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotData<'a> {
    pub v2: &'a [u8],
    pub v3: Option<&'a [u8]>,
}

/// Starts a merged image; never the start of a v2 image (whose first 8 bytes are its
/// index, little-endian: this one would be index 9.7e14).
const MERGED_MAGIC: &[u8; 8] = b"etcdrs\x03\x00";

impl<'a> SnapshotData<'a> {
    pub fn split(data: &'a [u8]) -> Result<SnapshotData<'a>> {
        let Some(rest) = data.strip_prefix(MERGED_MAGIC) else {
            return Ok(SnapshotData { v2: data, v3: None });
        };
        let bad = || Error::new(ErrorCode::Corrupt, "snapshot data: a truncated image", 0);
        let len = rest.get(..8).ok_or_else(bad)?;
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        let rest = &rest[8..];
        if rest.len() < len {
            return Err(bad());
        }
        Ok(SnapshotData {
            v2: &rest[..len],
            v3: Some(&rest[len..]),
        })
    }

    pub fn merge(v2: &[u8], v3: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + v2.len() + v3.len());
        out.extend_from_slice(MERGED_MAGIC);
        out.extend_from_slice(&(v2.len() as u64).to_le_bytes());
        out.extend_from_slice(v2);
        out.extend_from_slice(v3);
        out
    }
}

fn file_name(meta: &SnapshotMetadata) -> String {
    format!("{:016x}-{:016x}.snap", meta.term, meta.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(term: u64, index: u64, data: &str) -> Snapshot {
        let mut s = Snapshot::default();
        s.mut_metadata().term = term;
        s.mut_metadata().index = index;
        s.data = data.as_bytes().to_vec().into();
        s
    }

    #[test]
    fn merged_data_splits_back_and_plain_data_is_v2() {
        let merged = SnapshotData::merge(b"v2 image", b"v3 image");
        assert_eq!(
            SnapshotData::split(&merged).unwrap(),
            SnapshotData {
                v2: b"v2 image",
                v3: Some(b"v3 image")
            }
        );
        assert_eq!(SnapshotData::split(b"plain").unwrap().v3, None);
        assert!(SnapshotData::split(&merged[..12]).is_err());
    }

    #[test]
    fn newest_wins_and_old_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path()
                .join("0000000000000001-0000000000000009.snap.tmp"),
            b"half",
        )
        .unwrap();
        let s = Snapshotter::new(dir.path()).unwrap();
        assert!(
            s.load_newest().unwrap().is_none(),
            "a half-written snapshot does not count"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "and is cleaned up"
        );
        for i in 1..=4 {
            s.save(&snap(1, i * 10, &format!("state {i}"))).unwrap();
        }
        let got = s.load_newest().unwrap().unwrap();
        assert_eq!(got.get_metadata().index, 40);
        assert_eq!(&got.data[..], b"state 4");
        assert_eq!(s.names().unwrap().len(), 2);
        let newest = dir.path().join(s.names().unwrap().pop().unwrap());
        let mut b = fs::read(&newest).unwrap();
        let n = b.len();
        b[n - 2] ^= 1;
        fs::write(&newest, b).unwrap();
        assert_eq!(s.load_newest().unwrap_err().code, ErrorCode::Corrupt);
    }
}
