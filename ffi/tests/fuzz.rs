//! The C ABI fed what a C caller can get wrong (property tests; `scripts/fuzz.sh` runs more
//! cases): NULL where text belongs, bytes that are not UTF-8, lengths no buffer has (a
//! negative size), and arbitrary keys and values, against a member in this process. Every
//! call answers a status that is a library code, with an error object that agrees with it;
//! a call that fails changes nothing in the store; nothing panics across the boundary.

use etcdrs::*;
use etcdrs_core::ErrorCode;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::ffi::{c_char, c_void};
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

/// How an argument's pointer and length are passed.
#[derive(Debug, Clone, Copy)]
enum Pass {
    /// The bytes, as they are.
    Bytes,
    /// NULL with the bytes' length.
    Null,
    /// NULL and 0.
    NullEmpty,
    /// The bytes' pointer with a length above isize::MAX (-1 passed as a size_t).
    Huge,
}

fn pass() -> impl Strategy<Value = Pass> {
    prop_oneof![
        6 => Just(Pass::Bytes),
        1 => Just(Pass::Null),
        1 => Just(Pass::NullEmpty),
        1 => Just(Pass::Huge),
    ]
}

impl Pass {
    fn args(self, b: &[u8]) -> (*const u8, usize) {
        match self {
            Pass::Bytes => (b.as_ptr(), b.len()),
            Pass::Null => (null(), b.len().max(1)),
            Pass::NullEmpty => (null(), 0),
            Pass::Huge => (b.as_ptr(), usize::MAX),
        }
    }
}

/// Keys and values: printable, any UTF-8, or any bytes at all.
fn text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z/]{0,12}".prop_map(String::into_bytes),
        ".{0,16}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..24),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Call {
    Set,
    Get,
    Create,
    Delete,
    CompareAndSwap,
    V3Put,
    V3Range,
    ClientNew,
    ConfigSet,
}

fn call() -> impl Strategy<Value = Call> {
    prop::sample::select(vec![
        Call::Set,
        Call::Get,
        Call::Create,
        Call::Delete,
        Call::CompareAndSwap,
        Call::V3Put,
        Call::V3Range,
        Call::ClientNew,
        Call::ConfigSet,
    ])
}

struct Member {
    node: *mut etcdrs_node,
    client: *mut etcdrs_client,
    _dir: tempfile::TempDir,
}

// SAFETY: the handles are the library's, made for use from any thread.
unsafe impl Send for Member {}
unsafe impl Sync for Member {}

/// One in-process member for every case.
fn member() -> &'static Member {
    static MEMBER: OnceLock<Member> = OnceLock::new();
    MEMBER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data").display().to_string();
        let mut config = null_mut();
        let mut node = null_mut();
        let mut client = null_mut();
        // SAFETY: valid pointers and lengths; out-parameters are live locals.
        unsafe {
            let name = "fuzz";
            ok(etcdrs_config_new(
                name.as_ptr().cast(),
                name.len(),
                data.as_ptr().cast(),
                data.len(),
                &mut config,
                null_mut(),
            ));
            ok(etcdrs_node_start(config, &mut node, null_mut()));
            etcdrs_config_free(config);
            ok(etcdrs_node_wait_ready(node, 20_000, null_mut()));
            ok(etcdrs_node_client(node, &mut client, null_mut()));
        }
        Member {
            node,
            client,
            _dir: dir,
        }
    })
}

fn ok(status: etcdrs_status) {
    assert_eq!(status, 0, "{:?}", ErrorCode::from_code(status));
}

/// (v2 etcd index, v3 revision): what a failed call must leave alone.
fn store_position(client: *const etcdrs_client) -> (u64, i64) {
    let mut r = null_mut();
    let mut r3 = null_mut();
    // SAFETY: a live client, valid key pointers, live out-parameters; responses freed.
    unsafe {
        ok(etcdrs_client_get(
            client,
            "/".as_ptr().cast(),
            1,
            false,
            false,
            true,
            &mut r,
            null_mut(),
        ));
        let index = etcdrs_response_etcd_index(r);
        etcdrs_response_free(r);
        ok(etcdrs_client_v3_range(
            client,
            [0u8].as_ptr().cast(),
            1,
            null(),
            0,
            null(),
            &mut r3,
            null_mut(),
        ));
        let rev = etcdrs_v3_response_header(r3).revision;
        etcdrs_v3_response_free(r3);
        (index, rev)
    }
}

fn as_str(s: etcdrs_str) -> String {
    if s.data.is_null() {
        return String::new();
    }
    // SAFETY: the library hands out `len` readable UTF-8 bytes at `data`.
    String::from_utf8(unsafe { std::slice::from_raw_parts(s.data.cast::<u8>(), s.len) }.to_vec())
        .expect("the library's text is UTF-8")
}

/// Make the call; answers its status and its error object (freed), checked to agree.
fn make(call: Call, key: (*const u8, usize), value: (*const u8, usize)) -> etcdrs_status {
    let c = member().client;
    let mut err: *mut etcdrs_error = null_mut();
    let (k, kl) = (key.0.cast::<c_char>(), key.1);
    let (v, vl) = (value.0.cast::<c_char>(), value.1);
    // SAFETY: every pointer is NULL or has its length readable, except a `Huge` length,
    // which the library must refuse before reading; out-parameters are live locals.
    let status = unsafe {
        let mut r = null_mut();
        let mut r3 = null_mut();
        let status = match call {
            Call::Set => etcdrs_client_set(c, k, kl, v, vl, -1, &mut r, &mut err),
            Call::Get => etcdrs_client_get(c, k, kl, false, false, false, &mut r, &mut err),
            Call::Create => etcdrs_client_create(c, k, kl, v, vl, -1, &mut r, &mut err),
            Call::Delete => etcdrs_client_delete(c, k, kl, &mut r, &mut err),
            Call::CompareAndSwap => etcdrs_client_compare_and_swap(
                c,
                k,
                kl,
                v,
                vl,
                "x".as_ptr().cast(),
                1,
                0,
                -1,
                &mut r,
                &mut err,
            ),
            Call::V3Put => etcdrs_client_v3_put(
                c,
                k.cast::<c_void>(),
                kl,
                v.cast::<c_void>(),
                vl,
                null(),
                &mut r3,
                &mut err,
            ),
            Call::V3Range => etcdrs_client_v3_range(
                c,
                k.cast::<c_void>(),
                kl,
                v.cast::<c_void>(),
                vl,
                null(),
                &mut r3,
                &mut err,
            ),
            Call::ClientNew => {
                let mut client = null_mut();
                let s = etcdrs_client_new(k, kl, 1, &mut client, &mut err);
                etcdrs_client_free(client);
                s
            }
            Call::ConfigSet => {
                let mut config = null_mut();
                ok(etcdrs_config_new(
                    "n".as_ptr().cast(),
                    1,
                    "/nonexistent".as_ptr().cast(),
                    12,
                    &mut config,
                    null_mut(),
                ));
                let s = etcdrs_config_set(config, k, kl, v, vl, &mut err);
                etcdrs_config_free(config);
                s
            }
        };
        etcdrs_response_free(r);
        etcdrs_v3_response_free(r3);
        status
    };
    if status == 0 {
        assert!(err.is_null(), "an error object with status 0");
    } else {
        // A library or etcd v2 code; or, from a v3 call the member refused, a gRPC code.
        let grpc = matches!(call, Call::V3Put | Call::V3Range) && (1..=16).contains(&status);
        assert!(
            grpc || ErrorCode::from_code(status).is_some(),
            "status {status} is no library code"
        );
        assert!(!err.is_null(), "status {status} without an error object");
        // SAFETY: a live error object, freed once.
        unsafe {
            assert_eq!(etcdrs_error_code(err), status);
            let json: serde_json::Value = serde_json::from_str(&as_str(etcdrs_error_json(err)))
                .expect("the error's JSON parses");
            let field = if grpc { "code" } else { "errorCode" };
            assert_eq!(json[field], status, "{json}");
            etcdrs_error_free(err);
        }
    }
    status
}

proptest! {
    // Failing cases are kept beside the test (proptest finds no lib.rs for a file in tests/).
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/fuzz.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_arguments_get_a_status_and_a_failed_call_changes_nothing(
        call in call(),
        key in text(),
        value in text(),
        kp in pass(),
        vp in pass(),
    ) {
        let before = store_position(member().client);
        let status = make(call, kp.args(&key), vp.args(&value));
        let code = ErrorCode::from_code(status);
        // What the library itself must say about its arguments, before any member sees
        // them: v2 takes text (key first, then value); v3 takes bytes, where only the key
        // is required (a NULL value of length 0 is empty).
        let refusal = |p: Pass, b: &[u8], required: bool, utf8: bool| match p {
            Pass::Null => Some(ErrorCode::NullArgument),
            Pass::NullEmpty if required => Some(ErrorCode::NullArgument),
            Pass::Huge => Some(ErrorCode::InvalidArgument),
            Pass::Bytes if utf8 && std::str::from_utf8(b).is_err() => Some(ErrorCode::InvalidUtf8),
            _ => None,
        };
        let expected = match call {
            Call::V3Put | Call::V3Range => {
                refusal(kp, &key, true, false).or_else(|| refusal(vp, &value, false, false))
            }
            Call::Get | Call::Delete | Call::ClientNew => refusal(kp, &key, true, true),
            _ => refusal(kp, &key, true, true).or_else(|| refusal(vp, &value, true, true)),
        };
        if let Some(e) = expected {
            prop_assert_eq!(code, Some(e), "{:?} key {:?} value {:?}", call, kp, vp);
        }
        if status != 0 {
            prop_assert_eq!(store_position(member().client), before, "a failed call changed the store");
        }
        // The member is still fine.
        // SAFETY: a live node.
        prop_assert_eq!(unsafe { etcdrs_node_failure(member().node, null_mut()) }, 0);
    }
}
