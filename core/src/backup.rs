//! Backup and restore, as etcd's tools do them:
//! - `backup`: a consistent copy of a member's data dir, taken while it runs (or not),
//!   that starts with `--force-new-cluster` as a cluster of one (etcd's v2 backup);
//! - `snapshot_restore`: new members' data dirs from a v3 snapshot file (what
//!   `etcdctl snapshot save` wrote), as etcd's `snapshot restore`;
//! - `snapshot_status`: what such a file holds.

use crate::config::Config;
use crate::error::{Error, ErrorCode, Result};
use crate::identity::{cluster_id, format_id, member_id, parse_initial_cluster};
use crate::membership;
use crate::mvcc::Mvcc;
use crate::storage::{DataDir, MemberMeta, SnapshotData, Snapshotter, Wal};
use raft::eraftpb::{ConfState, HardState, Snapshot};
use std::path::{Path, PathBuf};

const SHA256_LEN: usize = 32;

fn invalid(cause: String) -> Error {
    Error::new(ErrorCode::InvalidConfig, cause, 0)
}

fn corrupt(cause: String) -> Error {
    Error::new(ErrorCode::Corrupt, cause, 0)
}

/// The v3 store image in a snapshot file: the file less its SHA-256, which must match
/// (unless `skip_hash_check`: then the whole file is the image, as etcd's flag means).
fn snapshot_image<'a>(file: &Path, bytes: &'a [u8], skip_hash_check: bool) -> Result<&'a [u8]> {
    use sha2::Digest as _;
    if skip_hash_check {
        return Ok(bytes);
    }
    if bytes.len() < SHA256_LEN {
        return Err(corrupt(format!(
            "snapshot file {} is {} bytes: too short to hold its SHA-256",
            file.display(),
            bytes.len()
        )));
    }
    let (image, sum) = bytes.split_at(bytes.len() - SHA256_LEN);
    if sha2::Sha256::digest(image).as_slice() != sum {
        return Err(corrupt(format!(
            "snapshot file {} does not match its SHA-256 (the hash at offset {}): the file is damaged",
            file.display(),
            image.len()
        )));
    }
    Ok(image)
}

fn read_snapshot_file(file: &Path) -> Result<Vec<u8>> {
    std::fs::read(file).map_err(|e| Error::io(file.display(), e))
}

/// What `etcdctl snapshot status` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// CRC-32 of the image.
    pub hash: u32,
    pub revision: i64,
    /// Records in the image: one per key revision kept, one per lease.
    pub total_key: u64,
    pub total_size: u64,
}

pub fn snapshot_status(file: &Path) -> Result<SnapshotStatus> {
    let bytes = read_snapshot_file(file)?;
    let image = snapshot_image(file, &bytes, false)?;
    let summary = Mvcc::dump_summary(image)
        .map_err(|e| corrupt(format!("snapshot file {}: {e:?}", file.display())))?;
    Ok(SnapshotStatus {
        hash: crc32fast::hash(image),
        revision: summary.revision,
        total_key: summary.revisions + summary.leases,
        total_size: bytes.len() as u64,
    })
}

/// The members a restore or backup made: ids as etcd prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub member_id: u64,
    pub cluster_id: u64,
    pub data_dir: PathBuf,
    /// The v3 revision the data starts from.
    pub revision: i64,
}

/// Write a data dir under a temporary name, then move it into place: an interrupted
/// restore or backup leaves nothing a member would start from.
fn build_dir(target: &Path, build: impl Fn(&Path) -> Result<()>) -> Result<()> {
    let name = target
        .file_name()
        .ok_or_else(|| invalid(format!("{} is not a directory name", target.display())))?;
    let staging = target.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(staging.display(), e))?;
    let built = build(&staging).and_then(|()| {
        std::fs::rename(&staging, target).map_err(|e| Error::io(target.display(), e))?;
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty());
        let parent = parent.unwrap_or(Path::new("."));
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(parent.display(), e))
    });
    if built.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    built
}

fn refuse_existing(dir: &Path, flag: &str) -> Result<()> {
    let used = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if used {
        return Err(invalid(format!(
            "{flag} {:?} exists",
            dir.display().to_string()
        )));
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// etcd's `snapshot restore`: the data dir of member `config.name` of a new cluster
/// (`--initial-cluster`, `--initial-cluster-token`) whose v3 keyspace is the snapshot's.
/// Run it once per member with the same file and cluster flags; the v2 keyspace starts
/// empty but for the members, as etcd's does.
pub fn snapshot_restore(file: &Path, config: &Config, skip_hash_check: bool) -> Result<Restored> {
    let bytes = read_snapshot_file(file)?;
    let image = snapshot_image(file, &bytes, skip_hash_check)?;
    let summary = Mvcc::dump_summary(image)
        .map_err(|e| corrupt(format!("snapshot file {}: {e:?}", file.display())))?;
    let initial = parse_initial_cluster(&config.initial_cluster_or_self())?;
    let Some((_, my_urls)) = initial.iter().find(|(n, _)| *n == config.name) else {
        return Err(invalid(format!(
            "--initial-cluster has no member named {:?}",
            config.name
        )));
    };
    crate::node::check_advertised(config, my_urls)?;
    refuse_existing(&config.data_dir, "data-dir")?;
    let token = &config.initial_cluster_token;
    let ids: Vec<(u64, Vec<String>)> = initial
        .iter()
        .map(|(_, urls)| (member_id(urls, token), urls.clone()))
        .collect();
    let meta = MemberMeta {
        member_id: member_id(my_urls, token),
        cluster_id: cluster_id(&ids.iter().map(|m| m.0).collect::<Vec<_>>()),
    };
    // The new log starts as a bootstrapped one does (the members' records at index n, term
    // 1); the v3 image is the state as of that index.
    let index = ids.len() as u64;
    let v3 = Mvcc::rebase_dump(image, index)
        .map_err(|e| corrupt(format!("snapshot file {}: {e:?}", file.display())))?;
    let v2 = membership::bootstrap_store(&ids).save();
    let mut snapshot = Snapshot {
        data: SnapshotData::merge(&v2, &v3).into(),
        ..Default::default()
    };
    let m = snapshot.mut_metadata();
    m.index = index;
    m.term = 1;
    m.set_conf_state(ConfState {
        voters: ids.iter().map(|m| m.0).collect(),
        ..Default::default()
    });
    build_dir(&config.data_dir, |staging| {
        let dd = DataDir::new(staging);
        Snapshotter::new(&dd.snap_dir())?.save(&snapshot)?;
        let (mut wal, _) = Wal::open(&dd.wal_dir())?;
        let hs = HardState {
            term: 1,
            commit: index,
            ..Default::default()
        };
        wal.save(Some(&hs), &[], true)?;
        dd.write_meta(&meta)
    })?;
    tracing::info!(
        member = %format_id(meta.member_id),
        cluster = %format_id(meta.cluster_id),
        data_dir = %config.data_dir.display(),
        revision = summary.revision,
        "restored a snapshot"
    );
    Ok(Restored {
        member_id: meta.member_id,
        cluster_id: meta.cluster_id,
        data_dir: config.data_dir.clone(),
        revision: summary.revision,
    })
}

/// How often `backup` copies again when the member changed its files under the copy.
const BACKUP_ATTEMPTS: usize = 10;

/// etcd's v2 `backup`: copy a member's data dir (the member may be running) into
/// `backup_dir`, checked to start: the newest snapshot reads back, the write-ahead log
/// reaches back to it, and the v3 store is at least as new as the snapshot. The copy keeps
/// the member's id under a new cluster id, so it can never talk to the cluster it came
/// from; start it with `--force-new-cluster` to serve it as a cluster of one.
pub fn backup(data_dir: &Path, backup_dir: &Path) -> Result<Restored> {
    let src = DataDir::new(data_dir);
    let meta = src.read_meta()?.ok_or_else(|| {
        invalid(format!(
            "{} holds no member's data ({} is missing)",
            data_dir.display(),
            src.meta_path().display()
        ))
    })?;
    refuse_existing(backup_dir, "backup-dir")?;
    let new_meta = MemberMeta {
        member_id: meta.member_id,
        cluster_id: rand::random::<u64>() | 1,
    };
    let revision = std::cell::Cell::new(0);
    let mut last = None;
    for attempt in 1..=BACKUP_ATTEMPTS {
        let copied = build_dir(backup_dir, |staging| {
            revision.set(copy_checked(&src, &DataDir::new(staging))?);
            DataDir::new(staging).write_meta(&new_meta)
        });
        match copied {
            Ok(()) => {
                tracing::info!(
                    member = %format_id(new_meta.member_id),
                    cluster = %format_id(new_meta.cluster_id),
                    backup_dir = %backup_dir.display(),
                    attempt,
                    "backed up the data dir"
                );
                return Ok(Restored {
                    member_id: new_meta.member_id,
                    cluster_id: new_meta.cluster_id,
                    data_dir: backup_dir.to_path_buf(),
                    revision: revision.get(),
                });
            }
            // Only a copy that raced the member is taken again; anything else is final.
            Err(e) if e.code == ErrorCode::Corrupt => {
                tracing::info!(attempt, error = %e.cause, "the data dir changed under the copy; copying again");
                last = Some(e);
                std::thread::sleep(std::time::Duration::from_millis(50 * attempt as u64));
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// Copy every regular file of `from` into `to` (made), each fsynced.
fn copy_files(from: &Path, to: &Path, keep: impl Fn(&str) -> bool) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to.display(), e))?;
    let entries = std::fs::read_dir(from).map_err(|e| Error::io(from.display(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(from.display(), e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if !keep(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        copy_file(&entry.path(), &to.join(&name))?;
    }
    std::fs::File::open(to)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(to.display(), e))
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    match std::fs::copy(from, to) {
        Ok(_) => {}
        // Released by the member while we copied: the check below decides.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(from.display(), e)),
    }
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(to.display(), e))
}

/// Copy the v3 store first, then the snapshots, then the log: each later copy reaches at
/// least as far as the one before, so together they hold one state or the check says not.
/// Returns the v3 revision of the copy.
fn copy_checked(src: &DataDir, dst: &DataDir) -> Result<i64> {
    let db = src.v3_store_path();
    std::fs::create_dir_all(dst.snap_dir()).map_err(|e| Error::io(dst.snap_dir().display(), e))?;
    if db.exists() {
        copy_file(&db, &dst.v3_store_path())?;
    }
    copy_files(&src.snap_dir(), &dst.snap_dir(), |n| n.ends_with(".snap"))?;
    copy_files(&src.wal_dir(), &dst.wal_dir(), |n| !n.ends_with(".tmp"))?;

    let snapshotter = Snapshotter::new(&dst.snap_dir())?;
    // A record being written as it was copied is a torn tail here, and is cut.
    let (wal, replay) = Wal::open(&dst.wal_dir())?;
    drop(wal);
    if replay.created {
        return Err(corrupt(format!(
            "{} has no write-ahead log",
            src.wal_dir().display()
        )));
    }
    let (_, snapshot, v3_image) = crate::node::load_snapshot(&snapshotter, &replay)?
        .ok_or_else(|| corrupt(format!("{} has no snapshot", src.snap_dir().display())))?;
    let backend_failed = |e: crate::mvcc::MvccError| {
        corrupt(format!(
            "the copy of the v3 store {} cannot be opened: {e:?}",
            db.display()
        ))
    };
    let mut mvcc = Mvcc::open(&dst.v3_store_path()).map_err(backend_failed)?;
    let (v3_index, revision) = (
        mvcc.consistent_index(),
        crate::mvcc::ReadView::current_revision(&mvcc),
    );
    mvcc.close().map_err(backend_failed)?;
    // The log replays v3 entries only after the snapshot: the store must hold them up to
    // it (a snapshot taken after the store was copied fails this; the next copy passes).
    // Unless the snapshot carries the v3 store itself (one from the leader, or restored),
    // or is the bootstrap one: term 1 holds only the initial members, no v3 entry.
    let holds_v3_entries = v3_image.is_none() && snapshot.term > 1;
    if holds_v3_entries && v3_index < snapshot.index {
        return Err(corrupt(format!(
            "the copied v3 store holds index {v3_index}, older than the copied snapshot at {}",
            snapshot.index
        )));
    }
    Ok(revision)
}
