//! The load generator works (a short run of each workload against a real member); never a
//! timing assertion — the numbers are for scripts/bench/compare.sh.

use etcdrs_tests::{etcdrs_bin, Member};
use std::process::Command;

fn bench(member: &Member, dir: &std::path::Path, name: &str, args: &[&str]) -> serde_json::Value {
    let json = dir.join(format!("{name}.json"));
    let out = Command::new(etcdrs_bin().with_file_name("etcdrs-bench"))
        .args([
            "--endpoints",
            &member.url,
            "--warmup",
            "0",
            "--target",
            "smoke",
        ])
        .args(["--prefix", &format!("/{name}")])
        .arg("--json")
        .arg(&json)
        .args(args)
        .output()
        .expect("run etcdrs-bench (cargo build builds it)");
    assert!(
        out.status.success(),
        "etcdrs-bench {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

#[test]
fn every_workload_runs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let m = Member::start(&dir.path().join("m"), &[]);
    for (name, args) in [
        (
            "put",
            vec!["--workload", "put", "--conns", "4", "--requests", "200"],
        ),
        (
            "get",
            vec![
                "--workload",
                "get",
                "--conns",
                "4",
                "--requests",
                "200",
                "--keys",
                "50",
            ],
        ),
        (
            "quorum",
            vec![
                "--workload",
                "get",
                "--quorum",
                "--conns",
                "2",
                "--requests",
                "50",
                "--keys",
                "10",
            ],
        ),
        (
            "mixed",
            vec![
                "--workload",
                "mixed",
                "--conns",
                "4",
                "--requests",
                "200",
                "--keys",
                "50",
            ],
        ),
        (
            "v3put",
            vec!["--workload", "v3-put", "--conns", "4", "--requests", "200"],
        ),
        (
            "v3range",
            vec![
                "--workload",
                "v3-range",
                "--conns",
                "4",
                "--requests",
                "200",
                "--keys",
                "50",
            ],
        ),
        (
            "v3serial",
            vec![
                "--workload",
                "v3-range",
                "--serializable",
                "--conns",
                "4",
                "--requests",
                "200",
                "--keys",
                "50",
            ],
        ),
        (
            "v3txn",
            vec![
                "--workload",
                "v3-txn",
                "--conns",
                "4",
                "--requests",
                "200",
                "--keys",
                "50",
            ],
        ),
        (
            "gwput",
            vec!["--workload", "gw-put", "--conns", "4", "--requests", "200"],
        ),
        (
            "gwrange",
            vec![
                "--workload",
                "gw-range",
                "--conns",
                "4",
                "--requests",
                "200",
                "--keys",
                "50",
            ],
        ),
    ] {
        let r = bench(&m, dir.path(), name, &args);
        assert_eq!(
            r["operations"],
            200 - 150 * (name == "quorum") as u64,
            "{name}: {r}"
        );
        assert_eq!(r["errors"], 0, "{name}: {r}");
        assert!(r["throughput"].as_f64().unwrap() > 0.0, "{name}: {r}");
        assert!(
            r["latency"]["p99_us"].as_u64().unwrap() >= r["latency"]["p50_us"].as_u64().unwrap()
        );
    }
    // The keys really were written: 200 distinct ones by put, v2, v3 and the gateway.
    let listing = etcdrs_tests::get(&format!("{}/v2/keys/put", m.url)).json();
    assert!(listing["node"]["nodes"].as_array().unwrap().len() >= 200);
    let v3 = etcdrs_tests::etcdctl3(
        &m.url,
        &["-w", "json", "get", "/v3put/", "--prefix", "--keys-only"],
        "",
    );
    let v3: serde_json::Value = serde_json::from_str(&v3.stdout).expect("etcdctl json");
    assert!(v3["count"].as_u64().unwrap() >= 200, "{v3}");
    let gw = etcdrs_tests::etcdctl3(
        &m.url,
        &["-w", "json", "get", "/gwput/", "--prefix", "--keys-only"],
        "",
    );
    let gw: serde_json::Value = serde_json::from_str(&gw.stdout).expect("etcdctl json");
    assert!(gw["count"].as_u64().unwrap() >= 200, "{gw}");

    let cas = bench(
        &m,
        dir.path(),
        "cas",
        &["--workload", "cas", "--conns", "4", "--requests", "40"],
    );
    let tried = cas["operations"].as_u64().unwrap() + cas["conflicts"].as_u64().unwrap();
    assert!(
        tried >= 40 && cas["operations"].as_u64().unwrap() > 0,
        "{cas}"
    );

    let watch = bench(
        &m,
        dir.path(),
        "watch",
        &["--workload", "watch", "--conns", "5", "--writes", "10"],
    );
    assert_eq!(watch["events_expected"], 50, "{watch}");
    assert_eq!(watch["events_delivered"], 50, "{watch}");

    let v3_watch = bench(
        &m,
        dir.path(),
        "v3watch",
        &["--workload", "v3-watch", "--conns", "5", "--writes", "10"],
    );
    assert_eq!(v3_watch["events_expected"], 50, "{v3_watch}");
    assert_eq!(v3_watch["events_delivered"], 50, "{v3_watch}");
    assert_eq!(v3_watch["errors"], 0, "{v3_watch}");

    let keep_alive = bench(
        &m,
        dir.path(),
        "v3keepalive",
        &[
            "--workload",
            "v3-keep-alive",
            "--conns",
            "4",
            "--duration",
            "0.5",
        ],
    );
    assert_eq!(keep_alive["errors"], 0, "{keep_alive}");
    assert!(
        keep_alive["operations"].as_u64().unwrap() > 0,
        "{keep_alive}"
    );
}
