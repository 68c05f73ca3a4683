//! v3 auth, route by route: every v3 call the Rust client makes (each gRPC method of KV,
//! Lease, Watch, Lock, Election, Cluster, Maintenance and Auth) and the gateway, as a client
//! without a user, as a user whose role grants nothing there, and as root, against a member
//! with auth enabled; then the HTTP routes v3 auth leaves open (as etcd's do), and auth state
//! surviving a restart.

use etcdrs_core::pb::authpb::{permission::Type as PermType, Permission};
use etcdrs_core::pb::etcdserverpb::*;
use etcdrs_core::pb::v3electionpb::{CampaignRequest, LeaderKey, ProclaimRequest};
use etcdrs_core::{Client, ClientTls, Credentials, V3Error};
use etcdrs_tests::Member;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

fn b(s: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(s.as_bytes())
}

/// What a call must come to for one client.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// Served: any answer that is not an auth refusal (an absent member is still served).
    Served,
    /// Refused: no user (etcd's "user name is empty").
    NoUser,
    /// Refused: the user's roles do not allow it.
    Denied,
}

fn verdict(r: &Result<(), V3Error>) -> Want {
    match r {
        Err(V3Error::UserEmpty) => Want::NoUser,
        Err(V3Error::PermissionDenied) => Want::Denied,
        // etcd 3.4's maintenance server passes its auth package's own errors on.
        Err(V3Error::Internal(m)) if m == "auth: user name is empty" => Want::NoUser,
        Err(V3Error::Internal(m)) if m == "auth: permission denied" => Want::Denied,
        Err(e @ (V3Error::InvalidAuthToken | V3Error::AuthOldRevision | V3Error::AuthFailed)) => {
            panic!("an auth failure that is not a refusal: {e:?}")
        }
        _ => Want::Served,
    }
}

type Call = for<'a> fn(&'a Client, i64) -> Pin<Box<dyn Future<Output = Result<(), V3Error>> + 'a>>;

/// Every route: name, what anonymous, alice (read on /pub/ only) and root get, the call.
/// `i64` is a lease id root granted, with /secret attached.
fn routes() -> Vec<(&'static str, [Want; 3], Call)> {
    use Want::*;
    let kv: [Want; 3] = [NoUser, Denied, Served];
    let user: [Want; 3] = [NoUser, Served, Served];
    let open: [Want; 3] = [Served, Served, Served];
    vec![
        ("KV.Range secret", kv, |c, _| {
            Box::pin(async move {
                c.v3()
                    .range(RangeRequest {
                        key: b("/secret"),
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            })
        }),
        ("KV.Range pub", user, |c, _| {
            Box::pin(async move {
                c.v3()
                    .range(RangeRequest {
                        key: b("/pub/"),
                        range_end: b("/pub0"),
                        serializable: true,
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            })
        }),
        ("KV.Put", kv, |c, _| {
            Box::pin(async move {
                c.v3()
                    .put(PutRequest {
                        key: b("/secret/put"),
                        value: b("x"),
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            })
        }),
        ("KV.Put pub (read only)", kv, |c, _| {
            Box::pin(async move {
                c.v3()
                    .put(PutRequest {
                        key: b("/pub/x"),
                        value: b("x"),
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            })
        }),
        ("KV.DeleteRange", kv, |c, _| {
            Box::pin(async move {
                c.v3()
                    .delete_range(DeleteRangeRequest {
                        key: b("/secret/none"),
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            })
        }),
        ("KV.Txn read", kv, |c, _| {
            Box::pin(async move {
                let read = RequestOp {
                    request: Some(request_op::Request::RequestRange(RangeRequest {
                        key: b("/secret"),
                        ..Default::default()
                    })),
                };
                c.v3()
                    .txn(TxnRequest {
                        success: vec![read],
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            })
        }),
        ("KV.Txn compare", kv, |c, _| {
            Box::pin(async move {
                c.v3()
                    .txn(TxnRequest {
                        compare: vec![Compare {
                            key: b("/secret"),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            })
        }),
        ("KV.Compact", user, |c, _| {
            Box::pin(async move {
                c.v3()
                    .compact(CompactionRequest {
                        revision: 1,
                        physical: false,
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Lease.LeaseGrant", user, |c, _| {
            Box::pin(async move {
                c.v3()
                    .lease_grant(LeaseGrantRequest { ttl: 60, id: 0 })
                    .await
                    .map(drop)
            })
        }),
        ("Lease.LeaseKeepAlive", user, |c, id| {
            Box::pin(async move { c.v3().lease_keep_alive(id).await.map(drop) })
        }),
        ("Lease.LeaseTimeToLive", user, |c, id| {
            Box::pin(async move {
                c.v3()
                    .lease_time_to_live(LeaseTimeToLiveRequest { id, keys: true })
                    .await
                    .map(drop)
            })
        }),
        ("Lease.LeaseLeases", user, |c, _| {
            Box::pin(async move { c.v3().lease_leases().await.map(drop) })
        }),
        // Revoking deletes the lease's keys: alice may not write /secret.
        ("Lease.LeaseRevoke", [NoUser, Denied, Served], |c, id| {
            Box::pin(async move { c.v3().lease_revoke(id).await.map(drop) })
        }),
        // etcd refuses a watch it may not serve in the stream, for no user as for a user
        // without permission.
        ("Watch.Watch", [Denied, Denied, Served], |c, _| {
            Box::pin(async move {
                let mut w = c
                    .v3()
                    .watch(WatchCreateRequest {
                        key: b("/secret"),
                        ..Default::default()
                    })
                    .await?;
                let created = w.next().await?.expect("a created answer");
                if created.canceled {
                    assert!(
                        created.cancel_reason.contains("permission denied"),
                        "{created:?}"
                    );
                    return Err(V3Error::PermissionDenied);
                }
                Ok(())
            })
        }),
        ("Lock.Lock", kv, |c, _| {
            Box::pin(async move {
                let lease = c
                    .v3()
                    .lease_grant(LeaseGrantRequest { ttl: 30, id: 0 })
                    .await
                    .map(|l| l.id)
                    .unwrap_or(0);
                let locked = c.v3().lock(b("/secret/lock"), lease).await?;
                c.v3().unlock(locked.key).await.map(drop)
            })
        }),
        ("Election.Campaign", kv, |c, _| {
            Box::pin(async move {
                let lease = c
                    .v3()
                    .lease_grant(LeaseGrantRequest { ttl: 30, id: 0 })
                    .await
                    .map(|l| l.id)
                    .unwrap_or(0);
                let won = c
                    .v3()
                    .campaign(CampaignRequest {
                        name: b("/secret/election"),
                        lease,
                        value: b("me"),
                    })
                    .await?;
                let leader: LeaderKey = won.leader.expect("a leader key");
                c.v3()
                    .proclaim(ProclaimRequest {
                        leader: Some(leader.clone()),
                        value: b("still me"),
                    })
                    .await?;
                c.v3().resign(leader).await.map(drop)
            })
        }),
        ("Election.Leader", kv, |c, _| {
            Box::pin(async move {
                c.v3()
                    .leader(b("/secret/election"))
                    .await
                    .map(drop)
                    // No leader now: the call was served.
                    .or_else(|e| match e {
                        V3Error::ElectionNoLeader => Ok(()),
                        e => Err(e),
                    })
            })
        }),
        ("Cluster.MemberList", open, |c, _| {
            Box::pin(async move { c.v3().member_list(MemberListRequest {}).await.map(drop) })
        }),
        ("Cluster.MemberAdd", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .member_add(MemberAddRequest {
                        peer_ur_ls: vec!["not a url".into()],
                        is_learner: false,
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Cluster.MemberRemove", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .member_remove(MemberRemoveRequest { id: 1 })
                    .await
                    .map(drop)
            })
        }),
        ("Cluster.MemberUpdate", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .member_update(MemberUpdateRequest {
                        id: 1,
                        peer_ur_ls: vec!["http://127.0.0.1:1".into()],
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Maintenance.Status", open, |c, _| {
            Box::pin(async move { c.v3().status(StatusRequest {}).await.map(drop) })
        }),
        ("Maintenance.Alarm", user, |c, _| {
            Box::pin(async move { c.v3().alarm(AlarmRequest::default()).await.map(drop) })
        }),
        ("Maintenance.Hash", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move { c.v3().hash(HashRequest {}).await.map(drop) })
        }),
        ("Maintenance.HashKV", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .hash_kv(HashKvRequest { revision: 0 })
                    .await
                    .map(drop)
            })
        }),
        (
            "Maintenance.Defragment",
            [NoUser, Denied, Served],
            |c, _| Box::pin(async move { c.v3().defragment(DefragmentRequest {}).await.map(drop) }),
        ),
        ("Maintenance.Snapshot", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move { c.v3().snapshot().await.map(drop) })
        }),
        ("Auth.AuthEnable", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move { c.v3().auth_enable(AuthEnableRequest {}).await.map(drop) })
        }),
        ("Auth.UserAdd", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .user_add(AuthUserAddRequest {
                        name: "bob".into(),
                        password: "bobpw".into(),
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Auth.UserGet self", [NoUser, Served, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .user_get(AuthUserGetRequest {
                        name: "alice".into(),
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Auth.UserGet other", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .user_get(AuthUserGetRequest {
                        name: "root".into(),
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Auth.UserList", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move { c.v3().user_list(AuthUserListRequest {}).await.map(drop) })
        }),
        (
            "Auth.UserChangePassword",
            [NoUser, Denied, Served],
            |c, _| {
                Box::pin(async move {
                    c.v3()
                        .user_change_password(AuthUserChangePasswordRequest {
                            name: "bob".into(),
                            password: "bobpw2".into(),
                            ..Default::default()
                        })
                        .await
                        .map(drop)
                })
            },
        ),
        ("Auth.UserGrantRole", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .user_grant_role(AuthUserGrantRoleRequest {
                        user: "root".into(),
                        role: "reader".into(),
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Auth.UserRevokeRole", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .user_revoke_role(AuthUserRevokeRoleRequest {
                        name: "root".into(),
                        role: "reader".into(),
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Auth.UserDelete", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .user_delete(AuthUserDeleteRequest { name: "bob".into() })
                    .await
                    .map(drop)
            })
        }),
        ("Auth.RoleAdd", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .role_add(AuthRoleAddRequest {
                        name: "writer".into(),
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Auth.RoleGet own", [NoUser, Served, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .role_get(AuthRoleGetRequest {
                        role: "reader".into(),
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Auth.RoleGet other", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .role_get(AuthRoleGetRequest {
                        role: "root".into(),
                    })
                    .await
                    .map(drop)
            })
        }),
        ("Auth.RoleList", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move { c.v3().role_list(AuthRoleListRequest {}).await.map(drop) })
        }),
        (
            "Auth.RoleGrantPermission",
            [NoUser, Denied, Served],
            |c, _| {
                Box::pin(async move {
                    c.v3()
                        .role_grant_permission(AuthRoleGrantPermissionRequest {
                            name: "writer".into(),
                            perm: Some(Permission {
                                perm_type: PermType::Readwrite as i32,
                                key: b("/"),
                                range_end: b("\0"),
                            }),
                        })
                        .await
                        .map(drop)
                })
            },
        ),
        (
            "Auth.RoleRevokePermission",
            [NoUser, Denied, Served],
            |c, _| {
                Box::pin(async move {
                    c.v3()
                        .role_revoke_permission(AuthRoleRevokePermissionRequest {
                            role: "writer".into(),
                            key: b("/"),
                            range_end: b("\0"),
                        })
                        .await
                        .map(drop)
                })
            },
        ),
        ("Auth.RoleDelete", [NoUser, Denied, Served], |c, _| {
            Box::pin(async move {
                c.v3()
                    .role_delete(AuthRoleDeleteRequest {
                        role: "writer".into(),
                    })
                    .await
                    .map(drop)
            })
        }),
    ]
}

fn client(url: &str, credentials: Option<(&str, &str)>) -> Client {
    Client::http_with(
        &[url],
        Some(Duration::from_secs(10)),
        &ClientTls::default(),
        credentials.map(|(user, password)| Credentials {
            user: user.into(),
            password: password.into(),
        }),
    )
    .unwrap()
}

/// Root and its role, alice with role "reader" (read on /pub/), keys, auth on.
async fn set_up(admin: &Client) -> i64 {
    let v3 = admin.v3();
    for (name, password) in [("root", "rootpw"), ("alice", "alicepw")] {
        v3.user_add(AuthUserAddRequest {
            name: name.into(),
            password: password.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    for (user, role) in [("root", "root"), ("alice", "reader")] {
        v3.role_add(AuthRoleAddRequest { name: role.into() })
            .await
            .unwrap();
        v3.user_grant_role(AuthUserGrantRoleRequest {
            user: user.into(),
            role: role.into(),
        })
        .await
        .unwrap();
    }
    v3.role_grant_permission(AuthRoleGrantPermissionRequest {
        name: "reader".into(),
        perm: Some(Permission {
            perm_type: PermType::Read as i32,
            key: b("/pub/"),
            range_end: b("/pub0"),
        }),
    })
    .await
    .unwrap();
    let lease = v3
        .lease_grant(LeaseGrantRequest { ttl: 600, id: 0 })
        .await
        .unwrap()
        .id;
    for key in ["/secret", "/pub/x"] {
        v3.put(PutRequest {
            key: b(key),
            value: b("v"),
            lease: if key == "/secret" { lease } else { 0 },
            ..Default::default()
        })
        .await
        .unwrap();
    }
    v3.auth_enable(AuthEnableRequest {}).await.unwrap();
    lease
}

#[test]
fn every_v3_route_answers_anonymous_a_user_and_root_as_etcd_would() {
    let dir = tempfile::tempdir().unwrap();
    let mut member = Member::start(dir.path(), &[]);
    let url = member.url.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lease = runtime.block_on(set_up(&client(&url, None)));
    let clients = [
        client(&url, None),
        client(&url, Some(("alice", "alicepw"))),
        client(&url, Some(("root", "rootpw"))),
    ];
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (name, want, call) in routes() {
        for (who, c) in ["anonymous", "alice", "root"].iter().zip(&clients) {
            let i = ["anonymous", "alice", "root"]
                .iter()
                .position(|w| w == who)
                .unwrap();
            let got = runtime.block_on(call(c, lease));
            checked += 1;
            if verdict(&got) != want[i] {
                wrong.push(format!("{name} as {who}: want {:?}, got {got:?}", want[i]));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(checked, routes().len() * 3);

    // A wrong password, and no such user: refused before any call.
    for creds in [("root", "nope"), ("nobody", "x")] {
        let c = client(&url, Some(creds));
        let got = runtime.block_on(c.v3().status(StatusRequest {}));
        assert_eq!(got.err(), Some(V3Error::AuthFailed), "{creds:?}");
    }

    // The gateway: the token from /v3/auth/authenticate as the Authorization header.
    let gateway = |path: &str, body: &str, token: Option<&str>| {
        let mut r = ureq::post(&format!("{url}/v3/{path}"));
        if let Some(t) = token {
            r = r.set("Authorization", t);
        }
        match r.send_string(body) {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let range = r#"{"key":"L3B1Yi94"}"#;
    let (code, body) = gateway("kv/range", range, None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("etcdserver: user name is empty"), "{body}");
    let (code, body) = gateway("kv/range", range, Some("not-a-token"));
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("etcdserver: invalid auth token"), "{body}");
    let (code, body) = gateway(
        "auth/authenticate",
        r#"{"name":"root","password":"rootpw"}"#,
        None,
    );
    assert_eq!(code, 200, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, body) = gateway("kv/range", range, Some(&token));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"count\":\"1\""), "{body}");

    // What v3 auth does not cover stays open, as with etcd: the v2 API (its own auth),
    // health, version, metrics and the dashboard.
    for path in [
        "/v2/keys/",
        "/v2/stats/self",
        "/v2/stats/store",
        "/v2/members",
        "/v2/machines",
        "/version",
        "/health",
        "/metrics",
        "/mod/dashboard/",
    ] {
        let r = etcdrs_tests::get(&format!("{url}{path}"));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }

    // Auth state is in the v3 store: after a restart users, roles and the switch are there;
    // tokens are not (clients authenticate again, as with etcd).
    drop(clients);
    member.restart();
    let after = [
        client(&member.url, None),
        client(&member.url, Some(("alice", "alicepw"))),
    ];
    let read = |c: &Client, key: &str| {
        runtime
            .block_on(c.v3().range(RangeRequest {
                key: b(key),
                ..Default::default()
            }))
            .map(|r| r.count)
    };
    assert_eq!(read(&after[0], "/pub/x"), Err(V3Error::UserEmpty));
    assert_eq!(read(&after[1], "/pub/x"), Ok(1));
    assert_eq!(read(&after[1], "/secret"), Err(V3Error::PermissionDenied));
}

/// --auth-token-ttl: a token unused that long is refused (etcd's invalid auth token), and a
/// client with a password gets a new one without its caller noticing.
#[test]
fn tokens_expire_after_the_ttl_and_clients_authenticate_again() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(dir.path(), &["--auth-token-ttl", "1", "--bcrypt-cost", "4"]);
    let url = member.url.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(set_up(&client(&url, None)));
    let authenticate = || {
        let r = ureq::post(&format!("{url}/v3/auth/authenticate"))
            .send_string(r#"{"name":"alice","password":"alicepw"}"#)
            .unwrap()
            .into_string()
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&r).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let range_with = |token: &str| match ureq::post(&format!("{url}/v3/kv/range"))
        .set("Authorization", token)
        .send_string(r#"{"key":"L3B1Yi94"}"#)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    let token = authenticate();
    assert_eq!(range_with(&token), 200);
    // Used, it lives on; unused for longer than the TTL, it is gone.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(range_with(&token), 200);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(range_with(&token), 401);

    let alice = client(&url, Some(("alice", "alicepw")));
    let read = || {
        runtime
            .block_on(alice.v3().range(RangeRequest {
                key: b("/pub/x"),
                ..Default::default()
            }))
            .map(|r| r.count)
    };
    assert_eq!(read(), Ok(1));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(read(), Ok(1));
}

/// examples/auth.sh (the README's users and roles) runs through against a fresh member.
#[test]
fn the_auth_walkthrough_runs() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(dir.path(), &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/auth.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(&member.url)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Authentication Enabled"), "{text}");
    assert!(text.contains("hello"), "{text}");
    assert!(
        text.contains("Error: etcdserver: permission denied"),
        "{text}"
    );
}

/// JWT tokens (--auth-token jwt): a token is good on any member with the key, outlives a
/// restart, expires after its ttl however much it is used, and goes stale (ErrAuthOldRevision)
/// once auth changes; bad options or keys refuse the start.
#[test]
fn jwt_tokens_outlive_a_restart_and_go_stale_when_auth_changes() {
    let dir = tempfile::tempdir().unwrap();
    let token_flag = etcdrs_tests::jwt_auth_token(dir.path(), "3s");
    let mut m = Member::start(&dir.path().join("m"), &["--auth-token", &token_flag]);
    let root = client(&m.url, None);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let v3 = root.v3();
        v3.user_add(AuthUserAddRequest {
            name: "root".into(),
            password: "rootpw".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        v3.role_add(AuthRoleAddRequest {
            name: "root".into(),
        })
        .await
        .unwrap();
        v3.user_grant_role(AuthUserGrantRoleRequest {
            user: "root".into(),
            role: "root".into(),
        })
        .await
        .unwrap();
        v3.auth_enable(AuthEnableRequest {}).await.unwrap();
    });
    let gateway = |url: &str, path: &str, token: Option<&str>, body: &str| {
        let mut req = ureq::post(&format!("{url}/v3/{path}"));
        if let Some(t) = token {
            req = req.set("Authorization", t);
        }
        match req.send_string(body) {
            Ok(r) => (200, r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let login = |url: &str| {
        let (code, body) = gateway(
            url,
            "auth/authenticate",
            None,
            r#"{"name":"root","password":"rootpw"}"#,
        );
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["token"].as_str().expect("a token").to_string()
    };
    let range = r#"{"key":"aw=="}"#;
    let token = login(&m.url);
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert_eq!(gateway(&m.url, "kv/range", Some(&token), range).0, 200);

    // A restart forgets simple tokens; a JWT is still good.
    m.restart();
    assert_eq!(gateway(&m.url, "kv/range", Some(&token), range).0, 200);

    // Expired after its ttl, used or not (exp is in whole seconds: one more for that).
    std::thread::sleep(Duration::from_millis(4200));
    let (code, body) = gateway(&m.url, "kv/range", Some(&token), range);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("invalid auth token"), "{body}");

    // A change to auth makes earlier tokens stale.
    let token = login(&m.url);
    let (code, body) = gateway(
        &m.url,
        "auth/user/add",
        Some(&token),
        r#"{"name":"u","password":"p"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = gateway(&m.url, "kv/range", Some(&token), range);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("revision of auth store is old"), "{body}");
    assert_eq!(
        gateway(&m.url, "kv/range", Some(&login(&m.url)), range).0,
        200
    );

    // A token signed with another key is not one.
    let other = tempfile::tempdir().unwrap();
    let other_flag = etcdrs_tests::jwt_auth_token(other.path(), "5m");
    let stranger = Member::start(&other.path().join("s"), &["--auth-token", &other_flag]);
    let (code, body) = gateway(&stranger.url, "kv/range", Some(&token), range);
    assert_eq!(code, 200, "auth is off there: {body}");
    let (code, _) = gateway(&m.url, "kv/range", Some("a.b.c"), range);
    assert_eq!(code, 401);

    // Bad options and keys refuse the start, naming what is wrong.
    for (flag, says) in [
        ("jwt,sign-method=XX256".to_string(), "unknown sign-method"),
        (
            "jwt,sign-method=ES256,colour=red".to_string(),
            "unknown token option",
        ),
        (
            token_flag.replace("jwt-es256.pub", "missing.pub"),
            "missing.pub",
        ),
        ("bearer".to_string(), "the kinds are simple and jwt"),
    ] {
        let refused = Member::spawn(
            &dir.path().join("refused"),
            vec!["--auth-token".into(), flag.clone()],
        );
        match refused {
            Err(log) => assert!(log.contains(says), "{flag}: {log}"),
            Ok(_) => panic!("--auth-token {flag} was taken"),
        }
    }
}
