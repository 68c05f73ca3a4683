use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn put(m: &mut Mvcc, k: &str, v: &str) {
    let mut w = m.write().unwrap();
    w.put(b(k), b(v), 0).unwrap();
    w.end();
}

fn get(m: &Mvcc, k: &str, rev: i64) -> MvccResult<Option<(String, i64, i64, i64)>> {
    let r = m.range(
        KeyRange::Key(k.as_bytes()),
        RangeOptions {
            rev,
            ..Default::default()
        },
    )?;
    Ok(r.kvs.first().map(|kv| {
        (
            String::from_utf8_lossy(&kv.value).into_owned(),
            kv.create_revision,
            kv.mod_revision,
            kv.version,
        )
    }))
}

#[test]
fn revisions_versions_and_reads_in_the_past() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Mvcc::open(&dir.path().join("db")).unwrap();
    assert_eq!(
        m.current_revision(),
        1,
        "an empty store is at revision 1, as etcd"
    );
    put(&mut m, "a", "1");
    put(&mut m, "a", "2");
    {
        let mut w = m.write().unwrap();
        assert_eq!(w.delete_range(KeyRange::Key(b"a")).unwrap(), 1);
        assert_eq!(w.delete_range(KeyRange::Key(b"zz")).unwrap(), 0);
        w.end();
    }
    put(&mut m, "a", "3");
    m.finish_batch(7, false).unwrap();
    assert_eq!(get(&m, "a", 0).unwrap(), Some(("3".into(), 5, 5, 1)));
    assert_eq!(get(&m, "a", 3).unwrap(), Some(("2".into(), 2, 3, 2)));
    assert_eq!(get(&m, "a", 4).unwrap(), None, "deleted at 4");
    assert_eq!(get(&m, "a", 6), Err(MvccError::FutureRev));
    // Compaction: reads before it fail, the record holding each key stays.
    {
        let mut w = m.write().unwrap();
        w.compact(3).unwrap();
        assert_eq!(w.compact(2), Err(MvccError::Compacted));
        w.end();
    }
    m.commit_durable(8).unwrap();
    assert_eq!(get(&m, "a", 2), Err(MvccError::Compacted));
    assert_eq!(get(&m, "a", 3).unwrap(), Some(("2".into(), 2, 3, 2)));
    // A restart rebuilds the same index from the records.
    drop(m);
    let m = Mvcc::open(&dir.path().join("db")).unwrap();
    assert_eq!((m.current_revision(), m.compacted_revision()), (5, 3));
    assert_eq!(m.consistent_index(), 8);
    assert_eq!(get(&m, "a", 0).unwrap(), Some(("3".into(), 5, 5, 1)));
    assert_eq!(get(&m, "a", 3).unwrap(), Some(("2".into(), 2, 3, 2)));
}

#[test]
fn ranges_limits_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Mvcc::open(&dir.path().join("db")).unwrap();
    for k in ["a", "b", "c", "d"] {
        put(&mut m, k, k);
    }
    m.finish_batch(1, false).unwrap();
    let keys = |r: RangeResult| {
        r.kvs
            .iter()
            .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
            .collect::<Vec<_>>()
    };
    let all = m
        .range(KeyRange::From(b"b"), RangeOptions::default())
        .unwrap();
    assert_eq!(all.count, 3);
    assert_eq!(keys(all), ["b", "c", "d"]);
    let r = m
        .range(
            KeyRange::Between(b"a", b"c"),
            RangeOptions {
                limit: 1,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((r.count, r.rev), (2, 5));
    assert_eq!(keys(r), ["a"]);
    let r = m
        .range(KeyRange::Between(b"c", b"a"), RangeOptions::default())
        .unwrap();
    assert_eq!(r.count, 0);
}

#[test]
fn a_batch_not_committed_durably_is_lost_whole_and_the_index_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut m = Mvcc::open(&path).unwrap();
    put(&mut m, "a", "1");
    m.commit_durable(3).unwrap();
    put(&mut m, "a", "2");
    m.finish_batch(4, false).unwrap();
    let dump = m.dump().unwrap();
    drop(m);
    let m = Mvcc::open(&path).unwrap();
    // Whatever survived, the consistent index matches the records.
    match m.consistent_index() {
        3 => assert_eq!(get(&m, "a", 0).unwrap().unwrap().0, "1"),
        4 => assert_eq!(get(&m, "a", 0).unwrap().unwrap().0, "2"),
        i => panic!("consistent index {i}"),
    }
    // A dump restores elsewhere to the same store.
    let mut other = Mvcc::open(&dir.path().join("other")).unwrap();
    Mvcc::check_dump(&dump).unwrap();
    assert!(Mvcc::check_dump(&dump[..dump.len() - 1]).is_err());
    other.restore(&dump).unwrap();
    assert_eq!(other.consistent_index(), 4);
    assert_eq!(get(&other, "a", 0).unwrap(), Some(("2".into(), 2, 3, 2)));
}
