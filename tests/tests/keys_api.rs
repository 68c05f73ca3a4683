//! The v2 keys API of a real member process over HTTP: the spec's examples and etcd's
//! behaviour for errors, directories, TTLs and watches.

use etcdrs_tests::{eventually, get, http, wait_for_watchers, Member};
use serde_json::json;
use std::time::Duration;

fn member() -> (tempfile::TempDir, Member) {
    let dir = tempfile::tempdir().unwrap();
    let m = Member::start(&dir.path().join("m"), &[]);
    (dir, m)
}

#[test]
fn set_get_update_delete_with_headers() {
    let (_d, m) = member();
    let k = format!("{}/v2/keys/message", m.url);
    let r = http("PUT", &k, &[("value", "Hello world")]);
    assert_eq!(r.status, 201);
    assert_eq!(
        r.json(),
        json!({"action":"set","node":{"key":"/message","value":"Hello world","modifiedIndex":4,"createdIndex":4}})
    );
    assert_eq!(r.header("X-Etcd-Index"), Some("4"));
    assert!(r.header("X-Raft-Index").unwrap().parse::<u64>().unwrap() >= 4);
    assert!(r.header("X-Raft-Term").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(r.header("X-Etcd-Cluster-Id").is_some());
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));

    let r = http("PUT", &k, &[("value", "Hello etcd")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["prevNode"]["value"], "Hello world");
    assert_eq!(get(&k).json()["node"]["value"], "Hello etcd");

    let r = http("DELETE", &k, &[]);
    assert_eq!(
        r.json(),
        json!({"action":"delete","node":{"key":"/message","modifiedIndex":6,"createdIndex":5},"prevNode":{"key":"/message","value":"Hello etcd","modifiedIndex":5,"createdIndex":5}})
    );
    let r = get(&k);
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"errorCode":100,"message":"Key not found","cause":"/message","index":6})
    );
    assert_eq!(r.header("X-Etcd-Index"), Some("6"));
}

#[test]
fn compare_and_swap_and_delete_like_the_spec() {
    let (_d, m) = member();
    let k = format!("{}/v2/keys/foo", m.url);
    http("PUT", &k, &[("value", "one")]);
    let r = http(
        "PUT",
        &format!("{k}?prevExist=false"),
        &[("value", "three")],
    );
    assert_eq!(
        (
            r.status,
            r.json()["errorCode"].clone(),
            r.json()["cause"].clone()
        ),
        (412, json!(105), json!("/foo"))
    );
    let r = http("PUT", &format!("{k}?prevValue=two"), &[("value", "three")]);
    assert_eq!(r.status, 412);
    assert_eq!(
        r.json(),
        json!({"errorCode":101,"message":"Compare failed","cause":"[two != one]","index":4})
    );
    let r = http("PUT", &format!("{k}?prevValue=one"), &[("value", "two")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["action"], "compareAndSwap");
    assert_eq!(r.json()["node"]["modifiedIndex"], 5);
    let r = http("DELETE", &k, &[("prevIndex", "1")]);
    assert_eq!(r.json()["cause"], "[1 != 5]");
    let r = http("DELETE", &k, &[("prevValue", "two")]);
    assert_eq!(r.json()["action"], "compareAndDelete");
    // prevIndex=0 always passes
    http("PUT", &k, &[("value", "x")]);
    assert_eq!(
        http("PUT", &k, &[("prevIndex", "0"), ("value", "y")]).status,
        200
    );
}

#[test]
fn directories_hidden_and_in_order_keys() {
    let (_d, m) = member();
    let base = format!("{}/v2/keys", m.url);
    assert_eq!(
        http("PUT", &format!("{base}/dir"), &[("dir", "true")]).json()["node"]["dir"],
        true
    );
    http("PUT", &format!("{base}/foo_dir/foo"), &[("value", "bar")]);
    http(
        "PUT",
        &format!("{base}/_message"),
        &[("value", "Hello hidden world")],
    );
    let root = get(&format!("{base}/")).json();
    assert!(
        root["node"].get("key").is_none(),
        "the root has no key, as in etcd"
    );
    let keys: Vec<_> = root["node"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].clone())
        .collect();
    assert_eq!(keys, [json!("/dir"), json!("/foo_dir")]);
    let rec = get(&format!("{base}/?recursive=true")).json();
    assert_eq!(rec["node"]["nodes"][1]["nodes"][0]["key"], "/foo_dir/foo");
    assert_eq!(
        get(&format!("{base}/_message")).json()["node"]["value"],
        "Hello hidden world"
    );

    let r = http("DELETE", &format!("{base}/foo_dir"), &[("dir", "true")]);
    assert_eq!((r.status, r.json()["errorCode"].clone()), (403, json!(108)));
    let r = http("DELETE", &format!("{base}/foo_dir"), &[]);
    assert_eq!((r.status, r.json()["errorCode"].clone()), (403, json!(102)));
    assert_eq!(
        http(
            "DELETE",
            &format!("{base}/foo_dir"),
            &[("recursive", "true")]
        )
        .status,
        200
    );

    let a = http("POST", &format!("{base}/queue"), &[("value", "Job1")]);
    let b = http("POST", &format!("{base}/queue"), &[("value", "Job2")]);
    assert_eq!(a.status, 201);
    let (ka, kb) = (
        a.json()["node"]["key"].as_str().unwrap().to_string(),
        b.json()["node"]["key"].as_str().unwrap().to_string(),
    );
    assert_eq!(ka.len(), "/queue/".len() + 20);
    assert!(ka < kb);
    let sorted = get(&format!("{base}/queue?recursive=true&sorted=true")).json();
    assert_eq!(sorted["node"]["nodes"][0]["value"], "Job1");
    assert_eq!(sorted["node"]["nodes"][1]["value"], "Job2");

    let r = http("PUT", &format!("{base}/"), &[("value", "x")]);
    assert_eq!(
        (
            r.status,
            r.json()["errorCode"].clone(),
            r.json()["cause"].clone()
        ),
        (400, json!(107), json!("/"))
    );
    let r = http("PUT", &format!("{base}/dir/x/y"), &[("value", "1")]);
    assert_eq!(r.status, 201, "intermediate directories are created");
    let r = http("PUT", &format!("{base}/dir/x/y/z"), &[("value", "1")]);
    assert_eq!(
        (
            r.status,
            r.json()["errorCode"].clone(),
            r.json()["cause"].clone()
        ),
        (400, json!(104), json!("/dir/x/y"))
    );
}

#[test]
fn bad_input_gets_etcd_errors_and_changes_nothing() {
    let (_d, m) = member();
    let k = format!("{}/v2/keys/foo", m.url);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u64, &'a str);
    let cases: &[Case] = &[
        (
            "PUT",
            &[("value", "v"), ("ttl", "abc")],
            202,
            "invalid value for \"ttl\"",
        ),
        (
            "PUT",
            &[("value", "v"), ("prevIndex", "x")],
            203,
            "invalid value for \"prevIndex\"",
        ),
        (
            "GET",
            &[("recursive", "maybe")],
            209,
            "invalid value for \"recursive\"",
        ),
        (
            "PUT",
            &[("wait", "true")],
            209,
            "\"wait\" can only be used with GET requests",
        ),
        (
            "PUT",
            &[("value", "v"), ("prevValue", "")],
            201,
            "\"prevValue\" cannot be empty",
        ),
        (
            "PUT",
            &[("refresh", "true"), ("value", "1")],
            211,
            "A value was provided on a refresh",
        ),
        ("PUT", &[("refresh", "true")], 212, "No TTL value set"),
        (
            "GET",
            &[("wait", "true"), ("waitIndex", "-1")],
            203,
            "invalid value for \"waitIndex\"",
        ),
    ];
    for (method, form, code, cause) in cases {
        let r = http(method, &k, form);
        assert_eq!(r.status, 400, "{method} {form:?}: {}", r.body);
        assert_eq!(r.json()["errorCode"], json!(code), "{method} {form:?}");
        assert_eq!(r.json()["cause"], json!(cause));
        assert_eq!(r.json()["index"], 0);
    }
    assert_eq!(get(&k).status, 404, "nothing was written");
    // Methods and paths etcd does not serve.
    assert_eq!(http("PATCH", &k, &[]).status, 405);
    assert_eq!(get(&format!("{}/nowhere", m.url)).status, 404);
    // A body over etcd's form limit gets etcd's error, not a dropped connection.
    let big = "x".repeat(11 << 20);
    let r = http("PUT", &k, &[("value", &big)]);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"errorCode":210,"message":"Invalid POST form","cause":"http: POST too large","index":0})
    );
    assert_eq!(get(&k).status, 404);
    // and the member still serves
    assert_eq!(http("PUT", &k, &[("value", "ok")]).status, 201);
}

#[test]
fn value_from_a_file_keeps_newlines() {
    let (_d, m) = member();
    // what `curl --data-urlencode value@afile.txt` sends
    let r = http(
        "PUT",
        &format!("{}/v2/keys/afile", m.url),
        &[("value", "Hello\nWorld\n")],
    );
    assert_eq!(r.json()["node"]["value"], "Hello\nWorld\n");
    // query-string values work too, and a form body wins over the query
    let r = http("PUT", &format!("{}/v2/keys/q?value=fromquery", m.url), &[]);
    assert_eq!(r.json()["node"]["value"], "fromquery");
    let r = http(
        "PUT",
        &format!("{}/v2/keys/q?value=fromquery", m.url),
        &[("value", "frombody")],
    );
    assert_eq!(r.json()["node"]["value"], "frombody");
}

#[test]
fn ttl_expiry_is_replicated_and_unset_works() {
    let (_d, m) = member();
    let base = format!("{}/v2/keys", m.url);
    let r = http(
        "PUT",
        &format!("{base}/foo"),
        &[("value", "bar"), ("ttl", "1")],
    );
    assert_eq!(r.json()["node"]["ttl"], 1);
    assert!(r.json()["node"]["expiration"].is_string());
    http(
        "PUT",
        &format!("{base}/keep"),
        &[("value", "bar"), ("ttl", "1")],
    );
    let r = http(
        "PUT",
        &format!("{base}/keep"),
        &[("value", "bar"), ("ttl", ""), ("prevExist", "true")],
    );
    assert_eq!(r.json()["action"], "update");
    assert!(r.json()["node"].get("ttl").is_none());
    assert_eq!(r.json()["prevNode"]["ttl"], 1);
    let gone = eventually(Duration::from_secs(5), || {
        (get(&format!("{base}/foo")).status == 404).then_some(())
    });
    assert!(gone.is_some(), "the key expired");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        get(&format!("{base}/keep")).status,
        200,
        "a key whose TTL was unset stays"
    );
    let stats = get(&format!("{}/v2/stats/store", m.url)).json();
    assert_eq!(stats["expireCount"], 1);
}

#[test]
fn watch_long_poll_wait_index_and_history() {
    let (_d, m) = member();
    let k = format!("{}/v2/keys/foo", m.url);
    let kw = k.clone();
    let waiter = std::thread::spawn(move || get(&format!("{kw}?wait=true")));
    wait_for_watchers(&m.url, 1);
    http("PUT", &k, &[("value", "bar")]);
    let r = waiter.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"action":"set","node":{"key":"/foo","value":"bar","modifiedIndex":4,"createdIndex":4}})
    );
    assert_eq!(
        r.header("X-Etcd-Index"),
        Some("3"),
        "a watch answers the index it started at"
    );

    http("PUT", &k, &[("value", "baz")]);
    let r = get(&format!("{k}?wait=true&waitIndex=4"));
    assert_eq!(
        r.json()["node"]["value"],
        "bar",
        "waitIndex replays history"
    );
    assert_eq!(r.header("X-Etcd-Index"), Some("5"));

    // recursive watch of a directory
    let base = format!("{}/v2/keys", m.url);
    let b2 = base.clone();
    let w = std::thread::spawn(move || get(&format!("{b2}/dir?wait=true&recursive=true")));
    wait_for_watchers(&m.url, 1);
    http("PUT", &format!("{base}/dir/a/b"), &[("value", "1")]);
    assert_eq!(w.join().unwrap().json()["node"]["key"], "/dir/a/b");

    for i in 0..1000 {
        http("PUT", &format!("{base}/many"), &[("value", &i.to_string())]);
    }
    let r = get(&format!("{k}?wait=true&waitIndex=4"));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errorCode"], 401);
    assert!(r.json()["cause"]
        .as_str()
        .unwrap()
        .starts_with("the requested history has been cleared"));
}

#[test]
fn stream_watch_refresh_and_watcher_release() {
    let (_d, m) = member();
    let base = format!("{}/v2/keys", m.url);
    http(
        "PUT",
        &format!("{base}/s"),
        &[("value", "0"), ("ttl", "100")],
    );
    let stats = format!("{}/v2/stats/store", m.url);
    // a streaming watch, read as lines while it stays open
    let url = format!("{base}/s?wait=true&stream=true");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let resp = ureq::get(&url).call().unwrap();
        let mut reader = std::io::BufReader::new(resp.into_reader());
        loop {
            let mut line = String::new();
            if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
                break;
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert!(
        eventually(Duration::from_secs(5), || (get(&stats).json()["watchers"]
            == 1)
            .then_some(()))
        .is_some()
    );
    // a refresh notifies no watcher
    let r = http(
        "PUT",
        &format!("{base}/s"),
        &[("refresh", "true"), ("ttl", "50"), ("prevExist", "true")],
    );
    assert_eq!(r.json()["node"]["value"], "0");
    for i in 1..=3 {
        http("PUT", &format!("{base}/s"), &[("value", &i.to_string())]);
    }
    let got: Vec<serde_json::Value> = (0..3)
        .map(|_| serde_json::from_str(&rx.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap())
        .collect();
    let values: Vec<_> = got.iter().map(|e| e["node"]["value"].clone()).collect();
    assert_eq!(values, [json!("1"), json!("2"), json!("3")]);
    drop(rx);

    // a client that goes away releases its watcher
    let dead = std::net::TcpStream::connect(m.url.trim_start_matches("http://")).unwrap();
    std::io::Write::write_all(
        &mut &dead,
        b"GET /v2/keys/nothing?wait=true HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || (get(&stats).json()["watchers"]
            == 2)
            .then_some(()))
        .is_some()
    );
    drop(dead);
    assert!(
        eventually(Duration::from_secs(5), || (get(&stats).json()["watchers"]
            .as_u64()
            < Some(2))
        .then_some(()))
        .is_some(),
        "the watcher of a closed connection is released"
    );
}

#[test]
fn directory_ttl_expiry_reaches_a_child_watcher() {
    let (_d, m) = member();
    let base = format!("{}/v2/keys", m.url);
    let r = http(
        "PUT",
        &format!("{base}/dir"),
        &[("ttl", "1"), ("dir", "true")],
    );
    assert_eq!(r.json()["node"]["ttl"], 1);
    let r = http(
        "PUT",
        &format!("{base}/dir"),
        &[("ttl", "1"), ("dir", "true"), ("prevExist", "true")],
    );
    assert_eq!(r.json()["action"], "update");
    let set = http("PUT", &format!("{base}/dir/asdf"), &[("value", "v")]);
    // From the next index on: the expiry is seen even if it happens before the wait begins.
    let next = set.json()["node"]["modifiedIndex"].as_u64().unwrap() + 1;
    let r = get(&format!(
        "{base}/dir/asdf?consistent=true&wait=true&waitIndex={next}"
    ));
    let e = r.json();
    assert_eq!(e["action"], "expire");
    assert_eq!(e["node"]["key"], "/dir");
    assert_eq!(e["prevNode"]["dir"], true);
    assert_eq!(get(&format!("{base}/dir/asdf")).status, 404);
}

#[test]
fn quorum_reads_and_other_endpoints() {
    let (_d, m) = member();
    http("PUT", &format!("{}/v2/keys/q", m.url), &[("value", "1")]);
    assert_eq!(
        get(&format!("{}/v2/keys/q?quorum=true", m.url)).json()["node"]["value"],
        "1"
    );
    let me = get(&format!("{}/v2/stats/self", m.url)).json();
    assert_eq!(me["state"], "StateLeader");
    assert_eq!(me["leaderInfo"]["leader"], me["id"]);
    let leader = get(&format!("{}/v2/stats/leader", m.url)).json();
    assert_eq!(leader["leader"], me["id"]);
    assert_eq!(get(&format!("{}/v2/machines", m.url)).body, m.url);
    let members = get(&format!("{}/v2/members", m.url)).json();
    assert_eq!(members["members"][0]["id"], me["id"]);
    assert_eq!(members["members"][0]["clientURLs"], json!([m.url]));
    assert_eq!(
        get(&format!("{}/v2/members/leader", m.url)).json()["id"],
        me["id"]
    );
    assert_eq!(
        get(&format!("{}/health", m.url)).json(),
        json!({"health":"true"})
    );
    assert!(get(&format!("{}/version", m.url)).json()["etcdserver"].is_string());
    let store = get(&format!("{}/v2/stats/store", m.url)).json();
    for field in [
        "getsSuccess",
        "setsSuccess",
        "compareAndDeleteFail",
        "expireCount",
        "watchers",
    ] {
        assert!(store[field].is_u64(), "{field}");
    }
    let opt = http("OPTIONS", &format!("{}/v2/keys/q", m.url), &[]);
    assert_eq!(opt.status, 200);
    assert_eq!(
        opt.header("Access-Control-Allow-Methods"),
        Some("POST, GET, OPTIONS, PUT, DELETE")
    );
    let head = http("HEAD", &format!("{}/v2/keys/q", m.url), &[]);
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(head.header("X-Etcd-Index"), Some("4"));
}

#[test]
fn hostile_keys_and_ttls_do_not_hurt_the_member() {
    let (_d, m) = member();
    let base = format!("{}/v2/keys", m.url);
    // Very deep keys are refused before they reach the store.
    let deep = "/a".repeat(5000);
    let r = http("PUT", &format!("{base}{deep}"), &[("value", "x")]);
    assert_eq!((r.status, r.json()["errorCode"].clone()), (400, json!(210)));
    // A deep but accepted key lists and deletes recursively.
    let ok = "/d".repeat(999);
    assert_eq!(
        http("PUT", &format!("{base}{ok}"), &[("value", "x")]).status,
        201
    );
    assert_eq!(get(&format!("{base}/d?recursive=true")).status, 200);
    assert_eq!(
        http("DELETE", &format!("{base}/d?recursive=true"), &[]).status,
        200
    );
    // A TTL too large for nanoseconds saturates instead of wrapping into the past.
    let r = http(
        "PUT",
        &format!("{base}/forever"),
        &[("value", "x"), ("ttl", "18446744073709551615")],
    );
    assert_eq!(r.status, 201);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(get(&format!("{base}/forever")).status, 200);
    // Percent-encoded and unusual keys round-trip.
    let r = http(
        "PUT",
        &format!("{base}/sp%20ace%2Fslash"),
        &[("value", "ü")],
    );
    assert_eq!(r.json()["node"]["key"], "/sp ace/slash");
    let g = get(&format!("{base}/sp%20ace/slash"));
    assert_eq!(g.json()["node"]["value"], "ü", "{g:?}");
    let r = http("PUT", &format!("{base}/bad%ff"), &[("value", "x")]);
    assert_eq!((r.status, r.json()["errorCode"].clone()), (400, json!(210)));
    assert_eq!(get(&format!("{}/health", m.url)).status, 200);
}

#[test]
fn flags_single_dash_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("m");
    // A flag given twice takes its last value, as with Go's flag package (python-etcd's
    // test helper appends the cluster flags again on every start).
    let args = vec![
        "-name".to_string(),
        "first".into(),
        "-name".into(),
        "machine0".into(),
        "-data-dir".into(),
        data.display().to_string(),
        "-listen-client-urls=http://127.0.0.1:1".into(),
        "-listen-client-urls=http://127.0.0.1:0".into(),
    ];
    let m = Member::spawn(&data, args).unwrap_or_else(|log| panic!("{log}"));
    assert_eq!(
        get(&format!("{}/v2/stats/self", m.url)).json()["name"],
        "machine0"
    );
    drop(m);
    // ETCD_* variables, and the data dir defaulting to <name>.etcd in the working directory.
    let mut child = std::process::Command::new(etcdrs_tests::etcdrs_bin())
        .current_dir(dir.path())
        .env("ETCD_NAME", "envname")
        .env("ETCD_LISTEN_CLIENT_URLS", "http://127.0.0.1:0")
        .env("ETCD_SNAPSHOT_COUNT", "5")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let line = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .find(|l| l.contains("member started"))
        .expect("serves");
    let url = line
        .split('"')
        .find(|s| s.starts_with("http://"))
        .unwrap()
        .to_string();
    assert_eq!(
        get(&format!("{url}/v2/stats/self")).json()["name"],
        "envname"
    );
    for i in 0..10 {
        http("PUT", &format!("{url}/v2/keys/k{i}"), &[("value", "v")]);
    }
    let snaps = std::fs::read_dir(dir.path().join("envname.etcd/member/snap"))
        .unwrap()
        .count();
    assert!(
        snaps >= 2,
        "ETCD_SNAPSHOT_COUNT=5 took a snapshot beyond the bootstrap one"
    );
    let _ = child.kill();
    let _ = child.wait();
}
