//! Durability: kill -9 under a write load loses no acknowledged write; a torn log tail is
//! cut and the member starts; damage in the middle of the log stops the start with the
//! file and offset; snapshots bound the log and survive restarts.

use etcdrs_tests::{get, http, Member};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn wal_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data_dir.join("member/wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// Writers that record every write the member acknowledged, until stopped.
fn load(
    url: &str,
    writers: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    round: usize,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..writers)
        .map(|w| {
            let (url, stop, acked) = (url.to_string(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(5))
                    .build();
                let mut i = 0u64;
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let key = format!("/load/r{round}-w{w}-{i}");
                    let value = format!("v{i}");
                    let ok = agent
                        .put(&format!("{url}/v2/keys{key}"))
                        .send_form(&[("value", &value)])
                        .map(|r| r.status() == 201)
                        .unwrap_or(false);
                    if ok {
                        acked.lock().unwrap().insert(key, value);
                    }
                    i += 1;
                }
            })
        })
        .collect()
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    // A small snapshot count so rounds cross snapshots and log release too.
    let mut m = Member::start(&dir.path().join("m"), &["--snapshot-count", "300"]);
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let writers = load(&m.url, 8, stop.clone(), acked.clone(), round);
        // Let the load make real progress, then kill mid-load (requests are in flight).
        let target = 300 * (round + 1);
        let progressed = etcdrs_tests::eventually(Duration::from_secs(15), || {
            (acked.lock().unwrap().len() >= target).then_some(())
        });
        assert!(progressed.is_some(), "round {round}: the load stalled");
        std::thread::sleep(Duration::from_millis(50));
        m.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        m.restart();
        let acked = acked.lock().unwrap();
        assert!(
            acked.len() > 50 * (round + 1),
            "the load made progress ({} acked)",
            acked.len()
        );
        let listing = get(&format!("{}/v2/keys/load?recursive=true", m.url)).json();
        let present: BTreeMap<String, String> = listing["node"]["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| {
                        (
                            n["key"].as_str().unwrap().to_string(),
                            n["value"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let missing: Vec<_> = acked
            .iter()
            .filter(|(k, v)| present.get(*k) != Some(v))
            .take(5)
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged writes lost, e.g. {missing:?}"
        );
    }
    let snaps = std::fs::read_dir(dir.path().join("m/member/snap"))
        .unwrap()
        .count();
    assert!(snaps >= 1, "snapshots were taken");
}

#[test]
fn torn_tail_is_truncated_and_the_member_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("m");
    let mut m = Member::start(&data, &[]);
    for i in 0..20 {
        assert_eq!(
            http("PUT", &format!("{}/v2/keys/k{i}", m.url), &[("value", "v")]).status,
            201
        );
    }
    m.kill9();
    // A crash in the middle of writing a record after the last one, into the zero-filled
    // space ahead of it: a header and its payload up to a sector boundary (a disk writes
    // whole sectors), then the zeros as they were.
    let wal = wal_files(&data).pop().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    let len_before = bytes.len();
    let end = records_end(&bytes);
    let rec_len: u32 = 2000;
    let mut torn = rec_len.to_le_bytes().to_vec();
    torn.extend_from_slice(&[0xAB; 4]);
    torn.extend_from_slice(&crc32_of(&rec_len.to_le_bytes()).to_le_bytes());
    let written = (end + 13).next_multiple_of(512) - end - 12;
    torn.extend_from_slice(&vec![7u8; written]);
    bytes.truncate(end);
    bytes.extend_from_slice(&torn);
    bytes.resize(bytes.len().max(len_before), 0);
    std::fs::write(&wal, &bytes).unwrap();
    m.restart();
    assert!(
        m.log().contains("torn"),
        "the truncation is logged:\n{}",
        m.log()
    );
    for i in 0..20 {
        assert_eq!(get(&format!("{}/v2/keys/k{i}", m.url)).status, 200, "k{i}");
    }
    assert_eq!(
        http(
            "PUT",
            &format!("{}/v2/keys/after", m.url),
            &[("value", "v")]
        )
        .status,
        201
    );
    assert!(std::fs::metadata(&wal).unwrap().len() >= len_before as u64);
}

/// Where a WAL segment's records end: the file is zero-filled ahead of them.
fn records_end(bytes: &[u8]) -> usize {
    // Walk the records by their length fields (a record may itself end in zero bytes); the
    // zero-filled space ahead starts with a zero length.
    let mut off = 0;
    while off + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        if len == 0 || off + 12 + len > bytes.len() {
            break;
        }
        off += 12 + len;
    }
    off
}

/// CRC-32 (IEEE), as the WAL frames use, computed here independently of the code under test.
fn crc32_of(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn flipped_bit_in_the_middle_refuses_to_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("m");
    let mut m = Member::start(&data, &[]);
    for i in 0..50 {
        http(
            "PUT",
            &format!("{}/v2/keys/k{i}", m.url),
            &[("value", "some value to take space")],
        );
    }
    m.kill9();
    let wal = wal_files(&data).pop().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    let mid = records_end(&bytes) / 2;
    bytes[mid] ^= 0x04;
    std::fs::write(&wal, &bytes).unwrap();
    let log = match Member::spawn(&data, m.args.clone()) {
        Ok(_) => panic!("a member with a damaged log must not start"),
        Err(log) => log,
    };
    assert!(
        log.contains(&wal.display().to_string()),
        "names the file:\n{log}"
    );
    assert!(log.contains("offset"), "names the offset:\n{log}");
    assert!(!log.contains("panicked"), "no panic:\n{log}");
}

#[test]
fn clean_shutdown_on_sigterm_and_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Member::start(&dir.path().join("m"), &["--snapshot-count", "50"]);
    for i in 0..200 {
        http(
            "PUT",
            &format!("{}/v2/keys/k{i}", m.url),
            &[("value", &i.to_string())],
        );
    }
    http(
        "PUT",
        &format!("{}/v2/keys/ttl", m.url),
        &[("value", "x"), ("ttl", "600")],
    );
    assert_eq!(
        m.terminate(),
        Some(0),
        "SIGTERM exits cleanly:\n{}",
        m.log()
    );
    let idx_before = 205u64; // 3 internal + 201 writes + 1 publish on restart after this
    m.restart();
    for i in (0..200).step_by(17) {
        assert_eq!(
            get(&format!("{}/v2/keys/k{i}", m.url)).json()["node"]["value"],
            i.to_string()
        );
    }
    let r = get(&format!("{}/v2/keys/ttl", m.url));
    assert!(
        r.json()["node"]["ttl"].as_u64().unwrap() > 500,
        "the TTL survives a restart"
    );
    let index: u64 = r.header("X-Etcd-Index").unwrap().parse().unwrap();
    assert_eq!(
        index, idx_before,
        "the store index continues (a restart publishes once, as etcd)"
    );
    assert!(
        wal_files(&dir.path().join("m")).len() <= 3,
        "released log segments are deleted"
    );
}

/// Damage to the last record that holds entries (synced, so its writes were acknowledged)
/// is not a torn tail: the member refuses to start, naming the file and offset, instead of
/// cutting the record and losing those writes. (A torn write leaves whole sectors of zeros;
/// one flipped byte does not.)
#[test]
fn a_flipped_byte_in_the_last_synced_record_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("m");
    let mut m = Member::start(&data, &[]);
    for i in 0..30 {
        assert_eq!(
            http(
                "PUT",
                &format!("{}/v2/keys/k{i}", m.url),
                &[("value", "an acknowledged value")]
            )
            .status,
            201
        );
    }
    m.kill9();
    let wal = wal_files(&data).pop().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    // Walk the records; keep the last one with entries, as if the commit-only records
    // after it (never synced) had not been written.
    let mut off = 0;
    let mut last_with_entries = None;
    while off + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        if len == 0 || off + 12 + len > bytes.len() {
            break;
        }
        let payload = &bytes[off + 12..off + 12 + len];
        let at = if payload[0] == 1 {
            5 + u32::from_le_bytes(payload[1..5].try_into().unwrap()) as usize
        } else {
            1
        };
        let count = u32::from_le_bytes(payload[at..at + 4].try_into().unwrap());
        if count > 0 {
            last_with_entries = Some((off, len));
        }
        off += 12 + len;
    }
    let (start, len) = last_with_entries.expect("a record with entries");
    let end = start + 12 + len;
    bytes[end..off].fill(0);
    bytes[start + 12 + len / 2] ^= 0x01;
    std::fs::write(&wal, &bytes).unwrap();
    let log = match Member::spawn(&data, m.args.clone()) {
        Ok(_) => panic!("a member whose last synced record is damaged must not start"),
        Err(log) => log,
    };
    assert!(
        log.contains(&wal.display().to_string()),
        "names the file:\n{log}"
    );
    assert!(
        log.contains(&format!("offset {start}")),
        "names the offset {start}:\n{log}"
    );
    assert!(!log.contains("truncated a torn record"), "{log}");
    assert!(!log.contains("panicked"), "no panic:\n{log}");
}
