//! TLS on client and peer URLs, started with etcd's flags, against etcd's own etcdctl (v2
//! and v3) and curl. Every certificate is made here, at test time (rcgen); no key is
//! committed.

use etcdrs_tests::{etcdctl3, eventually, free_ports, Member};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A CA, a certificate for members (server and client use, for 127.0.0.1), one for a
/// client, and one from another CA.
struct Pki {
    ca: PathBuf,
    member: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
    stranger: (PathBuf, PathBuf),
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn leaf(
    dir: &Path,
    name: &str,
    issuer: &Issuer<'_, KeyPair>,
    usages: Vec<ExtendedKeyUsagePurpose>,
    serial: u64,
) -> (PathBuf, PathBuf) {
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.serial_number = Some(SerialNumber::from(serial));
    params.extended_key_usages = usages;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (
        write(dir, &format!("{name}.pem"), &cert.pem()),
        write(dir, &format!("{name}-key.pem"), &key.serialize_pem()),
    )
}

fn pki(dir: &Path) -> Pki {
    use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let (params, key, pem) = ca("etcdrs test CA");
    let ca_path = write(dir, "ca.pem", &pem);
    let issuer = Issuer::new(params, key);
    let member = leaf(dir, "member", &issuer, vec![ServerAuth, ClientAuth], 1);
    let client = leaf(dir, "client", &issuer, vec![ClientAuth], 2);
    let (other_params, other_key, _) = ca("another CA");
    let stranger = leaf(
        dir,
        "stranger",
        &Issuer::new(other_params, other_key),
        vec![ServerAuth, ClientAuth],
        3,
    );
    Pki {
        ca: ca_path,
        member,
        client,
        stranger,
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// etcdctl v3 with the client certificate.
fn ctl(pki: &Pki, endpoint: &str, args: &[&str]) -> etcdrs_tests::Ran {
    let (ca, cert, key) = (s(&pki.ca), s(&pki.client.0), s(&pki.client.1));
    let mut all = vec!["--cacert", &ca, "--cert", &cert, "--key", &key];
    all.extend_from_slice(args);
    etcdctl3(endpoint, &all, "")
}

/// Three members on fixed free ports, client URLs with `client_scheme`, peer URLs https,
/// with `flags`; their client and peer URLs.
fn cluster(
    dir: &Path,
    client_scheme: &str,
    flags: &[String],
) -> (
    Vec<Member>,
    impl Fn(usize) -> String,
    impl Fn(usize) -> String,
) {
    let ports = free_ports(6);
    let (scheme, peer_ports) = (client_scheme.to_string(), ports.clone());
    let client = move |i: usize| format!("{scheme}://127.0.0.1:{}", ports[i]);
    let peer = move |i: usize| format!("https://127.0.0.1:{}", peer_ports[3 + i]);
    let initial = (0..3)
        .map(|i| format!("m{i}={}", peer(i)))
        .collect::<Vec<_>>()
        .join(",");
    let members = (0..3)
        .map(|i| {
            let data = dir.join(format!("m{i}"));
            let mut args: Vec<String> = [
                "--name",
                &format!("m{i}"),
                "--data-dir",
                &s(&data),
                "--listen-client-urls",
                &client(i),
                "--advertise-client-urls",
                &client(i),
                "--listen-peer-urls",
                &peer(i),
                "--initial-advertise-peer-urls",
                &peer(i),
                "--initial-cluster",
                &initial,
                "--initial-cluster-token",
                "tls",
            ]
            .iter()
            .map(|a| a.to_string())
            .collect();
            args.extend(flags.iter().cloned());
            Member::spawn(&data, args).unwrap_or_else(|log| panic!("m{i}:\n{log}"))
        })
        .collect();
    (members, client, peer)
}

#[test]
fn peer_auto_tls_carries_raft_between_members() {
    let dir = tempfile::tempdir().unwrap();
    let (members, client, _) = cluster(dir.path(), "http", &["--peer-auto-tls".to_string()]);
    let put = eventually(Duration::from_secs(30), || {
        let r = etcdctl3(&client(0), &["put", "over", "auto-tls"], "");
        (r.code == Some(0)).then_some(r)
    });
    assert!(
        put.is_some(),
        "{}",
        members.iter().map(Member::log).collect::<String>()
    );
    let got = eventually(Duration::from_secs(10), || {
        let r = etcdctl3(&client(2), &["get", "over", "--print-value-only"], "");
        (r.stdout.trim() == "auto-tls").then_some(())
    });
    assert!(got.is_some(), "{}", members[2].log());
}

#[test]
fn a_cluster_with_client_and_peer_tls_and_auth_serves_etcdctl_with_certificates_and_users() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let member_flags: Vec<String> = [
        "--cert-file",
        &s(&pki.member.0),
        "--key-file",
        &s(&pki.member.1),
        "--trusted-ca-file",
        &s(&pki.ca),
        "--client-cert-auth",
        "--peer-cert-file",
        &s(&pki.member.0),
        "--peer-key-file",
        &s(&pki.member.1),
        "--peer-trusted-ca-file",
        &s(&pki.ca),
        "--peer-client-cert-auth",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let (members, client, peer) = cluster(dir.path(), "https", &member_flags);
    let endpoints = (0..3).map(&client).collect::<Vec<_>>().join(",");
    let healthy = eventually(Duration::from_secs(30), || {
        let r = ctl(&pki, &endpoints, &["endpoint", "health"]);
        (r.code == Some(0)).then_some(r)
    });
    assert!(
        healthy.is_some(),
        "{}",
        members.iter().map(Member::log).collect::<String>()
    );

    // v3 through one member, read through another: raft ran over TLS between them.
    let put = ctl(&pki, &client(0), &["put", "secure", "yes"]);
    assert_eq!(put.code, Some(0), "{put:?}");
    let got = ctl(&pki, &client(2), &["get", "secure", "--print-value-only"]);
    assert_eq!(got.stdout.trim(), "yes", "{got:?}");
    let listed = ctl(&pki, &client(1), &["member", "list"]);
    assert_eq!(
        listed.stdout.matches("https://127.0.0.1:").count(),
        6,
        "{listed:?}"
    );

    // The Rust client (v2 over HTTPS, v3 over gRPC on TLS) with the same material.
    let tls = etcdrs_core::ClientTls {
        ca_file: Some(pki.ca.clone()),
        cert_file: Some(pki.client.0.clone()),
        key_file: Some(pki.client.1.clone()),
        insecure_skip_verify: false,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let rust = etcdrs_core::Client::http_tls(&[client(1)], Some(Duration::from_secs(10)), &tls)
        .expect("a TLS client");
    runtime.block_on(async {
        rust.set("/from-rust", "over https", None)
            .await
            .expect("v2 set");
        let got = rust
            .v3()
            .range(etcdrs_core::pb::etcdserverpb::RangeRequest {
                key: b"secure".to_vec().into(),
                ..Default::default()
            })
            .await
            .expect("v3 range over TLS");
        assert_eq!(&got.kvs[0].value[..], b"yes");
    });
    // Without the CA, https is refused before any connection; without a certificate the
    // member refuses the handshake.
    assert!(etcdrs_core::Client::http(&[client(1)], None).is_err());
    let no_cert = etcdrs_core::ClientTls {
        ca_file: Some(pki.ca.clone()),
        ..Default::default()
    };
    let anonymous_rust =
        etcdrs_core::Client::http_tls(&[client(1)], Some(Duration::from_secs(5)), &no_cert)
            .unwrap();
    assert!(runtime.block_on(anonymous_rust.get("/from-rust")).is_err());

    // Without a client certificate, or with one from another CA: refused.
    let ca = s(&pki.ca);
    let anonymous = etcdctl3(
        &client(0),
        &[
            "--cacert",
            &ca,
            "--dial-timeout=2s",
            "--command-timeout=3s",
            "get",
            "secure",
        ],
        "",
    );
    assert_ne!(anonymous.code, Some(0), "{anonymous:?}");
    let (sc, sk) = (s(&pki.stranger.0), s(&pki.stranger.1));
    let stranger = etcdctl3(
        &client(0),
        &[
            "--cacert",
            &ca,
            "--cert",
            &sc,
            "--key",
            &sk,
            "--dial-timeout=2s",
            "--command-timeout=3s",
            "get",
            "secure",
        ],
        "",
    );
    assert_ne!(stranger.code, Some(0), "{stranger:?}");

    // The v2 API on the same TLS port, with etcdctl v2's flags.
    let v2 = |args: &[&str]| {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "2")
            .args(["--endpoints", &client(1), "--ca-file", &ca])
            .args([
                "--cert-file",
                &s(&pki.client.0),
                "--key-file",
                &s(&pki.client.1),
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let set = v2(&["set", "/v2key", "over tls"]);
    assert!(set.status.success(), "{set:?}");
    let get = v2(&["get", "/v2key"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "over tls");

    // A peer with a certificate from another CA is refused, and the log says why.
    let curl = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "--cacert",
            &ca,
            "--cert",
            &sc,
            "--key",
            &sk,
        ])
        .arg(format!("{}/members", peer(0)))
        .output()
        .unwrap();
    assert!(!curl.status.success(), "{curl:?}");
    let logged = eventually(Duration::from_secs(5), || {
        members[0]
            .log()
            .contains("TLS handshake failed")
            .then_some(())
    });
    assert!(logged.is_some(), "{}", members[0].log());

    // Auth on the same cluster, set up as an operator would with etcdctl. Then a call
    // needs a user: a password (--user), or, without one, the client certificate's common
    // name ("client") names the user, as etcd's AuthInfoFromTLS does.
    let root = "--user=root:rootpw";
    for args in [
        &["user", "add", "root", "--new-user-password=rootpw"][..],
        &["auth", "enable"],
    ] {
        let r = ctl(&pki, &client(0), args);
        assert_eq!(r.code, Some(0), "{args:?}: {r:?}");
    }
    let got = ctl(
        &pki,
        &client(1),
        &[root, "get", "secure", "--print-value-only"],
    );
    assert_eq!(got.stdout.trim(), "yes", "{got:?}");
    let refused = ctl(&pki, &client(2), &["get", "secure"]);
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert!(
        refused.stderr.contains("etcdserver: permission denied"),
        "{refused:?}"
    );
    let wrong = ctl(&pki, &client(2), &["--user=root:nope", "get", "secure"]);
    assert!(wrong.stderr.contains("authentication failed"), "{wrong:?}");
    for args in [
        &[root, "user", "add", "client", "--no-password"][..],
        &[root, "role", "add", "app"],
        &[
            root,
            "role",
            "grant-permission",
            "app",
            "readwrite",
            "secure",
        ],
        &[root, "user", "grant-role", "client", "app"],
    ] {
        let r = ctl(&pki, &client(0), args);
        assert_eq!(r.code, Some(0), "{args:?}: {r:?}");
    }
    let by_cert = eventually(Duration::from_secs(10), || {
        let r = ctl(&pki, &client(2), &["get", "secure", "--print-value-only"]);
        (r.stdout.trim() == "yes").then_some(())
    });
    assert!(by_cert.is_some(), "the certificate's user could not read");
    let outside = ctl(&pki, &client(2), &["put", "elsewhere", "x"]);
    assert!(
        outside.stderr.contains("etcdserver: permission denied"),
        "{outside:?}"
    );
    // The Rust client with TLS material and a password.
    let as_root = etcdrs_core::Client::http_with(
        &[client(1)],
        Some(Duration::from_secs(10)),
        &tls,
        Some(etcdrs_core::Credentials {
            user: "root".into(),
            password: "rootpw".into(),
        }),
    )
    .unwrap();
    let put = runtime.block_on(as_root.v3().put(etcdrs_core::pb::etcdserverpb::PutRequest {
        key: b"elsewhere".to_vec().into(),
        value: b"root may".to_vec().into(),
        ..Default::default()
    }));
    assert!(put.is_ok(), "{put:?}");

    // v2 auth on the same cluster with etcdctl v2 (separate from v3's, as in etcd): with
    // the guest role gone, a request without credentials is refused.
    for args in [
        &["user", "add", "root:rootpw"][..],
        &["auth", "enable"],
        &["--username", "root:rootpw", "role", "remove", "guest"],
    ] {
        let r = v2(args);
        assert!(r.status.success(), "{args:?}: {r:?}");
    }
    let refused = v2(&["set", "/v2key", "anonymous"]);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Insufficient credentials"),
        "{refused:?}"
    );
    let set = v2(&["--username", "root:rootpw", "set", "/v2key", "as root"]);
    assert!(set.status.success(), "{set:?}");
}

#[test]
fn auto_tls_serves_https_with_a_generated_certificate_and_https_needs_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("auto");
    let m = Member::start(
        &data,
        &["--listen-client-urls", "https://127.0.0.1:0", "--auto-tls"],
    );
    assert!(m.url.starts_with("https://"), "{}", m.url);
    // etcdctl 3.4 applies --insecure-skip-tls-verify only with --insecure-transport=false.
    let put = etcdctl3(
        &m.url,
        &[
            "--insecure-transport=false",
            "--insecure-skip-tls-verify",
            "put",
            "k",
            "v",
        ],
        "",
    );
    assert_eq!(put.code, Some(0), "{put:?}");
    // Without skipping verification, a self-signed certificate is not trusted.
    let strict = etcdctl3(
        &m.url,
        &["--dial-timeout=2s", "--command-timeout=3s", "get", "k"],
        "",
    );
    assert_ne!(strict.code, Some(0), "{strict:?}");

    let out = Command::new(etcdrs_tests::etcdrs_bin())
        .args(["--data-dir", &s(&dir.path().join("refused"))])
        .args(["--listen-client-urls", "https://127.0.0.1:0"])
        .args(["--listen-peer-urls", "http://127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("https needs --cert-file and --key-file"),
        "{err}"
    );
}

/// --host-whitelist and --cors answer as etcd 3.4's: 421 with etcd's explanation for an
/// unlisted Host over plain HTTP; CORS headers only for a listed Origin.
#[test]
fn host_whitelist_and_cors_answer_as_etcd() {
    let flags = [
        "--host-whitelist",
        "example.com,127.0.0.1",
        "--cors",
        "http://a.example:80",
    ];
    let etcd = etcdrs_tests::Etcd::start_with(&flags);
    let dir = tempfile::tempdir().unwrap();
    let ours = Member::start(dir.path(), &flags);
    // Status line, the headers that matter here, and the body of one exchange.
    let exchange = |url: &str, method: &str, headers: &str| {
        let addr = url.trim_start_matches("http://");
        let req = format!("{method} /v2/keys/ HTTP/1.1\r\n{headers}Connection: close\r\n\r\n");
        let text = etcdrs_tests::raw(addr, req.as_bytes(), Duration::from_secs(5));
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines.next().unwrap_or("").to_string();
        let mut kept: Vec<String> = lines
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("access-control-")
                    || l.starts_with("content-type")
                    || l.starts_with("x-content-type")
            })
            .map(String::from)
            .collect();
        kept.sort();
        // A JSON body names indices that differ; the refusal's text must be etcd's.
        let body = if status.contains(" 421 ") {
            body.to_string()
        } else {
            String::new()
        };
        (status, kept, body)
    };
    let cases = [
        ("GET", "Host: evil.com:999\r\n".to_string()),
        ("GET", "Host: localhost\r\n".to_string()),
        ("GET", "Host: example.com\r\n".to_string()),
        (
            "GET",
            "Host: 127.0.0.1\r\nOrigin: http://a.example:80\r\n".to_string(),
        ),
        (
            "GET",
            "Host: 127.0.0.1\r\nOrigin: http://b.example:80\r\n".to_string(),
        ),
        (
            "OPTIONS",
            "Host: 127.0.0.1\r\nOrigin: http://a.example:80\r\n".to_string(),
        ),
    ];
    for (method, headers) in &cases {
        let want = exchange(&etcd.url, method, headers);
        let got = exchange(&ours.url, method, headers);
        assert_eq!(got, want, "{method} with {headers:?}");
    }
    assert!(exchange(&ours.url, "GET", "Host: evil.com\r\n")
        .0
        .contains(" 421 "));
    // gRPC is not subject to the whitelist (as etcd's): etcdctl still works by IP.
    let put = etcdctl3(&ours.url, &["put", "k", "v"], "");
    assert_eq!(put.code, Some(0), "{put:?}");
}

/// examples/tls.sh (the README's Security commands) runs through in a directory holding
/// the CA and certificates, with etcdrs on PATH.
#[test]
fn the_tls_walkthrough_runs() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    // pki() names its files as the script expects.
    for (file, name) in [
        (&pki.ca, "ca.pem"),
        (&pki.member.0, "member.pem"),
        (&pki.member.1, "member-key.pem"),
        (&pki.client.0, "client.pem"),
        (&pki.client.1, "client-key.pem"),
    ] {
        assert_eq!(file, &dir.path().join(name));
    }
    let ports = free_ports(2);
    let bin_dir = etcdrs_tests::etcdrs_bin().parent().unwrap().to_path_buf();
    let path_var = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tls.sh");
    let out = Command::new("bash")
        .arg(script)
        .current_dir(dir.path())
        .env("PATH", path_var)
        .env("CLIENT_PORT", ports[0].to_string())
        .env("PEER_PORT", ports[1].to_string())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK") && text.contains("hello"), "{text}");
}

/// --client-crl-file: a client certificate the CA revoked is refused at the handshake,
/// others get in. --peer-cert-allowed-cn: a peer connection whose certificate has another
/// common name is refused, and the log says why.
#[test]
fn revoked_clients_and_peers_with_another_name_are_refused() {
    use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (params, key, pem) = ca("revoking CA");
    let ca_path = write(d, "ca.pem", &pem);
    let issuer = Issuer::new(params, key);
    let member = leaf(d, "member", &issuer, vec![ServerAuth, ClientAuth], 1);
    let good = leaf(d, "client", &issuer, vec![ClientAuth], 2);
    let revoked = leaf(d, "revoked", &issuer, vec![ClientAuth], 3);
    let crl = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2020, 1, 1),
        next_update: rcgen::date_time_ymd(2100, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(3u64),
            revocation_time: rcgen::date_time_ymd(2020, 1, 1),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap();
    let crl_path = write(d, "crl.pem", &crl.pem().unwrap());
    let (ca, mc, mk, crl) = (s(&ca_path), s(&member.0), s(&member.1), s(&crl_path));
    let m = Member::start(
        &d.join("data"),
        &[
            "--listen-client-urls",
            "https://127.0.0.1:0",
            "--listen-peer-urls",
            "https://127.0.0.1:0",
            "--cert-file",
            &mc,
            "--key-file",
            &mk,
            "--trusted-ca-file",
            &ca,
            "--client-cert-auth",
            "--client-crl-file",
            &crl,
            "--peer-cert-file",
            &mc,
            "--peer-key-file",
            &mk,
            "--peer-trusted-ca-file",
            &ca,
            "--peer-client-cert-auth",
            "--peer-cert-allowed-cn",
            "member",
        ],
    );
    let with = |cert: &(PathBuf, PathBuf), args: &[&str]| {
        let (c, k) = (s(&cert.0), s(&cert.1));
        let mut all = vec![
            "--cacert",
            &ca,
            "--cert",
            &c,
            "--key",
            &k,
            "--dial-timeout=2s",
            "--command-timeout=3s",
        ];
        all.extend_from_slice(args);
        etcdctl3(&m.url, &all, "")
    };
    let ok = with(&good, &["put", "k", "v"]);
    assert_eq!(ok.code, Some(0), "{ok:?}");
    let refused = with(&revoked, &["get", "k"]);
    assert_ne!(refused.code, Some(0), "{refused:?}");
    let logged = eventually(Duration::from_secs(5), || {
        let log = m.log();
        (log.contains("TLS handshake failed") && log.to_lowercase().contains("revoked"))
            .then_some(())
    });
    assert!(logged.is_some(), "{}", m.log());

    let peer = m.peer_url.clone().expect("the member names its peer URL");
    let curl = |cert: &(PathBuf, PathBuf)| {
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .args(["--cacert", &ca, "--cert", &s(&cert.0), "--key", &s(&cert.1)])
            .arg(format!("{peer}/members"))
            .output()
            .unwrap()
    };
    let as_member = curl(&member);
    assert_eq!(
        String::from_utf8_lossy(&as_member.stdout),
        "200",
        "{as_member:?}"
    );
    let as_client = curl(&good);
    assert!(!as_client.status.success(), "{as_client:?}");
    let logged = eventually(Duration::from_secs(5), || {
        m.log()
            .contains("is not the allowed \"member\"")
            .then_some(())
    });
    assert!(logged.is_some(), "{}", m.log());
}
