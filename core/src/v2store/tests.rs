use super::watcher::WATCHER_BUFFER;
use super::*;

const NOW: i64 = 1_800_000_000_000_000_000;
const SEC: i64 = 1_000_000_000;

fn k(p: &str) -> String {
    format!("{STORE_KEYS_PREFIX}{p}")
}

fn store() -> Store {
    Store::new()
}

#[test]
fn set_get_and_prev_node() {
    let mut s = store();
    let e = s
        .set(&k("/message"), false, "Hello world", None, false, NOW)
        .unwrap();
    assert_eq!(e.action, Action::Set);
    assert!(e.is_created());
    assert_eq!(
        (e.node.created_index, e.node.modified_index, e.etcd_index),
        (1, 1, 1)
    );
    let e = s
        .set(&k("/message"), false, "Hello etcd", None, false, NOW)
        .unwrap();
    assert!(!e.is_created());
    let t = e.trimmed(STORE_KEYS_PREFIX);
    assert_eq!(
        t.to_json(),
        r#"{"action":"set","node":{"key":"/message","value":"Hello etcd","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/message","value":"Hello world","modifiedIndex":1,"createdIndex":1}}"#
    );
    let g = s.get(&k("/message"), false, false, NOW).unwrap();
    assert_eq!(g.node.value.as_deref(), Some("Hello etcd"));
    assert_eq!(s.stats().sets_success, 2);
    assert_eq!(s.stats().gets_success, 1);
}

#[test]
fn errors_carry_etcd_causes() {
    let mut s = store();
    s.set(&k("/foo"), false, "one", None, false, NOW).unwrap();
    let e = s.get(&k("/nope/deeper"), false, false, NOW).unwrap_err();
    assert_eq!(
        (e.code, e.cause.as_str(), e.index),
        (ErrorCode::KeyNotFound, "/1/nope", 1)
    );
    let e = s
        .set(&k("/foo/bar"), false, "x", None, false, NOW)
        .unwrap_err();
    assert_eq!((e.code, e.cause.as_str()), (ErrorCode::NotDir, "/1/foo"));
    let e = s.get(&k("/foo/bar"), false, false, NOW).unwrap_err();
    assert_eq!((e.code, e.cause.as_str()), (ErrorCode::NotDir, "/1/foo"));
    let e = s
        .set(STORE_KEYS_PREFIX, false, "x", None, false, NOW)
        .unwrap_err();
    assert_eq!((e.code, e.cause.as_str()), (ErrorCode::RootReadOnly, "/"));
    let e = s
        .create(&k("/foo"), false, "x", false, None, NOW)
        .unwrap_err();
    assert_eq!((e.code, e.cause.as_str()), (ErrorCode::NodeExist, "/1/foo"));
    let e = s
        .create(&k("/foo/bar"), false, "x", false, None, NOW)
        .unwrap_err();
    assert_eq!((e.code, e.cause.as_str()), (ErrorCode::NotDir, "/1/foo"));
    assert_eq!(s.index(), 1, "failed writes change nothing");
    let foo = s.get(&k("/foo"), false, false, NOW).unwrap();
    assert_eq!(
        (foo.node.value.as_deref(), foo.node.modified_index),
        (Some("one"), 1),
        "a refused create leaves the node as it was"
    );
    // As etcd counts them: a set that fails its walk (or is refused) is one failed set; a
    // create that fails its walk is a failed create and a failed set.
    let st = s.stats();
    assert_eq!((st.sets_fail, st.create_fail), (3, 2));
}

#[test]
fn compare_and_swap_causes() {
    let mut s = store();
    s.set(&k("/foo"), false, "one", None, false, NOW).unwrap();
    let e = s
        .compare_and_swap(&k("/foo"), "two", 0, "three", None, false, NOW)
        .unwrap_err();
    assert_eq!(
        (e.code, e.cause.as_str()),
        (ErrorCode::TestFailed, "[two != one]")
    );
    let e = s
        .compare_and_swap(&k("/foo"), "two", 3, "three", None, false, NOW)
        .unwrap_err();
    assert_eq!(e.cause, "[two != one] [3 != 1]");
    let e = s.compare_and_delete(&k("/foo"), "", 7, NOW).unwrap_err();
    assert_eq!(e.cause, "[7 != 1]");
    let e = s
        .compare_and_swap(&k("/foo"), "one", 1, "two", None, false, NOW)
        .unwrap();
    assert_eq!(e.action, Action::CompareAndSwap);
    assert_eq!((e.node.created_index, e.node.modified_index), (1, 2));
    let e = s.compare_and_delete(&k("/foo"), "two", 0, NOW).unwrap();
    assert_eq!(e.action, Action::CompareAndDelete);
    assert_eq!(e.node.value, None);
    assert!(s.get(&k("/foo"), false, false, NOW).is_err());
    let st = s.stats();
    assert_eq!(
        (st.compare_and_swap_fail, st.compare_and_swap_success),
        (2, 1)
    );
    assert_eq!(
        (st.compare_and_delete_fail, st.compare_and_delete_success),
        (1, 1)
    );
}

#[test]
fn directories() {
    let mut s = store();
    s.set(&k("/dir"), true, "ignored", None, false, NOW)
        .unwrap();
    let e = s.set(&k("/dir"), false, "x", None, false, NOW).unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFile);
    assert!(
        s.get(&k("/dir"), false, false, NOW).unwrap().node.dir,
        "a refused set leaves the directory in place"
    );
    s.set(&k("/dir/a"), false, "1", None, false, NOW).unwrap();
    s.set(&k("/dir/_hidden"), false, "h", None, false, NOW)
        .unwrap();
    s.set(&k("/dir/sub/b"), false, "2", None, false, NOW)
        .unwrap();
    let g = s
        .get(&k("/dir"), false, false, NOW)
        .unwrap()
        .trimmed(STORE_KEYS_PREFIX);
    let keys: Vec<_> = g.node.nodes.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys, ["/dir/a", "/dir/sub"]);
    assert!(g.node.nodes[1].nodes.is_empty(), "not recursive");
    let g = s
        .get(&k("/dir"), true, true, NOW)
        .unwrap()
        .trimmed(STORE_KEYS_PREFIX);
    assert_eq!(g.node.nodes[1].nodes[0].key, "/dir/sub/b");
    assert_eq!(
        s.get(&k("/dir/_hidden"), false, false, NOW)
            .unwrap()
            .node
            .value
            .as_deref(),
        Some("h")
    );
    assert_eq!(
        s.delete(&k("/dir"), false, false, NOW).unwrap_err().code,
        ErrorCode::NotFile
    );
    assert_eq!(
        s.delete(&k("/dir"), true, false, NOW).unwrap_err().code,
        ErrorCode::DirNotEmpty
    );
    let e = s.delete(&k("/dir"), false, true, NOW).unwrap();
    assert!(e.node.dir);
    assert!(s.get(&k("/dir/sub/b"), false, false, NOW).is_err());
}

#[test]
fn update_of_directory_keeps_modified_index() {
    let mut s = store();
    s.set(&k("/dir"), true, "", Some(NOW + 30 * SEC), false, NOW)
        .unwrap();
    let e = s
        .update(&k("/dir"), "", Some(NOW + 20 * SEC), false, NOW)
        .unwrap();
    assert_eq!((e.node.modified_index, e.node.ttl), (2, 20));
    assert_eq!(e.prev_node.as_ref().unwrap().ttl, 30);
    let g = s.get(&k("/dir"), false, false, NOW).unwrap();
    assert_eq!(g.node.modified_index, 1);
    assert_eq!(
        s.update(&k("/dir"), "x", None, false, NOW)
            .unwrap_err()
            .code,
        ErrorCode::NotFile
    );
}

#[test]
fn in_order_keys() {
    let mut s = store();
    let a = s
        .create(&k("/queue"), false, "Job1", true, None, NOW)
        .unwrap();
    let b = s
        .create(&k("/queue"), false, "Job2", true, None, NOW)
        .unwrap();
    assert_eq!(
        a.trimmed(STORE_KEYS_PREFIX).node.key,
        "/queue/00000000000000000001"
    );
    assert_eq!(
        b.trimmed(STORE_KEYS_PREFIX).node.key,
        "/queue/00000000000000000002"
    );
}

#[test]
fn ttl_expiry_and_unset() {
    let mut s = store();
    let e = s
        .set(&k("/foo"), false, "bar", Some(NOW + 5 * SEC), false, NOW)
        .unwrap();
    assert_eq!(e.node.ttl, 5);
    assert_eq!(
        s.get(&k("/foo"), false, false, NOW + SEC / 2)
            .unwrap()
            .node
            .ttl,
        5
    );
    assert_eq!(s.delete_expired_keys(NOW + 4 * SEC), 0);
    // update without a TTL makes the key permanent (ttl= with prevExist=true)
    s.set(&k("/bar"), false, "x", Some(NOW + 5 * SEC), false, NOW)
        .unwrap();
    let u = s.update(&k("/bar"), "x", None, false, NOW).unwrap();
    assert_eq!(u.node.ttl, 0);
    assert!(u.node.expiration.is_none());
    assert_eq!(s.delete_expired_keys(NOW + 5 * SEC), 1);
    assert!(s.get(&k("/foo"), false, false, NOW).is_err());
    assert!(s.get(&k("/bar"), false, false, NOW).is_ok());
    assert_eq!(s.stats().expire_count, 1);
    assert!(!s.has_ttl_keys());
}

#[test]
fn directory_expiry_reaches_child_watcher() {
    let mut s = store();
    s.set(&k("/dir"), true, "", Some(NOW + SEC), false, NOW)
        .unwrap();
    s.set(&k("/dir/asdf"), false, "v", None, false, NOW)
        .unwrap();
    let mut w = s.watch(&k("/dir/asdf"), false, false, 0).unwrap();
    assert_eq!(s.hub().count(), 1);
    assert_eq!(s.delete_expired_keys(NOW + SEC), 1);
    let e = w
        .try_recv()
        .expect("child watcher sees the directory expire");
    assert_eq!(e.action, Action::Expire);
    assert_eq!(e.trimmed(STORE_KEYS_PREFIX).node.key, "/dir");
    assert!(e.prev_node.as_ref().unwrap().dir);
    assert_eq!(s.hub().count(), 0);
}

#[test]
fn refresh_keeps_value_and_wakes_no_watcher() {
    let mut s = store();
    s.set(&k("/foo"), false, "v", Some(NOW + SEC), false, NOW)
        .unwrap();
    let mut w = s.watch(&k("/foo"), false, false, 0).unwrap();
    let e = s
        .set(&k("/foo"), false, "", Some(NOW + 10 * SEC), true, NOW)
        .unwrap();
    assert_eq!(e.node.value.as_deref(), Some("v"));
    assert_eq!(e.node.ttl, 10);
    assert!(w.try_recv().is_none());
    let e = s
        .update(&k("/foo"), "", Some(NOW + 20 * SEC), true, NOW)
        .unwrap();
    assert_eq!(e.node.value.as_deref(), Some("v"));
    assert!(w.try_recv().is_none());
    assert_eq!(
        s.set(&k("/missing"), false, "", Some(NOW), true, NOW)
            .unwrap_err()
            .code,
        ErrorCode::KeyNotFound
    );
}

#[test]
fn watch_history_and_cleared_index() {
    let mut s = store();
    for i in 0..1005 {
        s.set(&k("/foo"), false, &i.to_string(), None, false, NOW)
            .unwrap();
    }
    let mut w = s.watch(&k("/foo"), false, false, 1000).unwrap();
    let e = w.try_recv().unwrap();
    assert_eq!(e.node.modified_index, 1000);
    assert_eq!(
        e.etcd_index, 1005,
        "a historic event carries the current index"
    );
    let err = s.watch(&k("/foo"), false, false, 5).err().unwrap();
    assert_eq!(err.code, ErrorCode::EventIndexCleared);
    assert_eq!(err.cause, "the requested history has been cleared [6/5]");
    assert_eq!(err.index, 1005);
}

#[test]
fn recursive_and_hidden_watch() {
    let mut s = store();
    let mut rec = s.watch(&k("/a"), true, false, 0).unwrap();
    let mut plain = s.watch(&k("/a"), false, false, 0).unwrap();
    s.set(&k("/a/_h"), false, "x", None, false, NOW).unwrap();
    assert!(
        rec.try_recv().is_none(),
        "hidden keys do not wake a parent watcher"
    );
    s.set(&k("/a/b"), false, "x", None, false, NOW).unwrap();
    assert_eq!(
        rec.try_recv().unwrap().trimmed(STORE_KEYS_PREFIX).node.key,
        "/a/b"
    );
    assert!(plain.try_recv().is_none());
    drop(plain);
    assert_eq!(s.hub().count(), 0);
}

#[test]
fn stream_watcher_keeps_going_and_slow_one_is_dropped() {
    let mut s = store();
    let mut w = s.watch(&k("/x"), false, true, 0).unwrap();
    for i in 0..WATCHER_BUFFER + 1 {
        s.set(&k("/x"), false, &i.to_string(), None, false, NOW)
            .unwrap();
    }
    assert_eq!(s.hub().count(), 0, "a watcher that fell behind is dropped");
    let mut n = 0;
    while w.try_recv().is_some() {
        n += 1;
    }
    assert_eq!(n, WATCHER_BUFFER);
}

#[test]
fn save_and_recover() {
    let mut s = store();
    s.set(&k("/a/b"), false, "1", Some(NOW + SEC), false, NOW)
        .unwrap();
    s.set(&k("/c"), false, "2", None, false, NOW).unwrap();
    let bytes = s.save();
    let mut r = Store::new();
    r.recover(&bytes).unwrap();
    assert_eq!(r.index(), 2);
    assert_eq!(
        r.get(&k("/a/b"), false, false, NOW)
            .unwrap()
            .node
            .value
            .as_deref(),
        Some("1")
    );
    assert_eq!(r.stats().sets_success, 2);
    let mut w = r.watch(&k("/c"), false, false, 2).unwrap();
    assert_eq!(w.try_recv().unwrap().node.value.as_deref(), Some("2"));
    assert_eq!(r.delete_expired_keys(NOW + SEC), 1);
    assert!(r.recover(b"garbage").is_err());
}

#[test]
fn an_event_is_rendered_once_for_all_its_watchers() {
    let mut s = store();
    let mut a = s.watch(&k("/w"), false, true, 0).unwrap();
    let mut b = s.watch(&k("/w"), true, true, 0).unwrap();
    s.set(&k("/w"), false, "v", None, false, NOW).unwrap();
    let (ea, eb) = (a.try_recv().unwrap(), b.try_recv().unwrap());
    let renders = std::cell::Cell::new(0);
    let render = |e: &Event| {
        renders.set(renders.get() + 1);
        bytes::Bytes::from(e.trimmed(STORE_KEYS_PREFIX).to_json_line())
    };
    let (la, lb) = (ea.wire(render), eb.wire(render));
    assert_eq!(
        renders.get(),
        1,
        "the second watcher reuses the first one's bytes"
    );
    assert_eq!(la, lb);
    assert!(la.starts_with(br#"{"action":"set","node":{"key":"/w","value":"v""#));
    // A one-shot watch answered from history carries its own index, so its own bytes.
    let mut h = s.watch(&k("/w"), false, false, 1).unwrap();
    h.try_recv().unwrap().wire(render);
    assert_eq!(renders.get(), 2);
}
