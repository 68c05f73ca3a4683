//! Members in the calling process: a config built flag by flag, then `etcdrs_node_start`.

use crate::{
    error, etcdrs_client, etcdrs_error, etcdrs_status, guard, handle, out_param, read, text,
};
use etcdrs_core::{Config, ErrorCode, Node};
use std::ffi::c_char;
use std::sync::Mutex;
use std::time::Duration;

/// A member's configuration: etcd's flags. Not shared between threads while being set.
pub struct etcdrs_config {
    config: Config,
}

/// A member running in this process (its own threads). Any thread may use it.
pub struct etcdrs_node {
    node: Mutex<Node>,
    member_id: u64,
    client_urls: String,
    peer_urls: String,
}

/// A new config for member `name` with its data in `data_dir`, serving clients and peers on
/// ephemeral ports of 127.0.0.1 (a library default; the server's are 2379/4001 and 2380).
/// Change any of etcd's flags with `etcdrs_config_set`. Free with `etcdrs_config_free`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_config_new(
    name: *const c_char,
    name_len: usize,
    data_dir: *const c_char,
    data_dir_len: usize,
    config_out: *mut *mut etcdrs_config,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(config_out, "config_out")?;
        // SAFETY: the caller passes `len` readable bytes at each pointer.
        let name = unsafe { text(name, name_len, "name")? };
        let data_dir = unsafe { text(data_dir, data_dir_len, "data_dir")? };
        let config = Config::ephemeral(name, data_dir);
        // SAFETY: checked non-NULL above.
        unsafe { *config_out = Box::into_raw(Box::new(etcdrs_config { config })) };
        Ok(())
    })
}

/// Set one of etcd's flags by name, without dashes, with the command line's syntax:
/// `name`, `data-dir`, `listen-client-urls`, `advertise-client-urls`, `listen-peer-urls`,
/// `initial-advertise-peer-urls` (comma-separated URLs), `initial-cluster`
/// (`name=peerURL,...`), `initial-cluster-state` (`new` or `existing`),
/// `initial-cluster-token`, `heartbeat-interval`, `election-timeout` (milliseconds),
/// `snapshot-count`, `request-timeout` (milliseconds a write may wait). An unknown flag or
/// a bad value is `ETCDRS_CODE_INVALID_CONFIG` and changes nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_config_set(
    config: *mut etcdrs_config,
    flag: *const c_char,
    flag_len: usize,
    value: *const c_char,
    value_len: usize,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        // SAFETY: NULL or a config from this library, not used by another thread now.
        let config =
            unsafe { config.as_mut() }.ok_or_else(|| error(ErrorCode::NullArgument, "config"))?;
        // SAFETY: the caller passes `len` readable bytes at each pointer.
        let flag = unsafe { text(flag, flag_len, "flag")? };
        let value = unsafe { text(value, value_len, "value")? };
        Ok(config.config.set(flag, value)?)
    })
}

/// Free a config. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_config_free(config: *mut etcdrs_config) {
    // SAFETY: NULL or a config from this library, freed once.
    unsafe { crate::free_box(config) }
}

/// Start a member in this process. Blocks until it serves: for a single member, until it
/// is leader and has published itself (well under a second on an empty data dir); for a
/// member of a larger cluster it returns at once, and `etcdrs_node_wait_ready` waits until
/// the cluster has it (until then the member's client API does not answer and its keys
/// calls wait, at most the request timeout). The config may be freed or reused afterwards. Free the node with
/// `etcdrs_node_free` (which stops it).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_node_start(
    config: *const etcdrs_config,
    node_out: *mut *mut etcdrs_node,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(node_out, "node_out")?;
        // SAFETY: NULL or a config from this library.
        let config = unsafe { handle(config, "config")? };
        let node = Node::start(config.config.clone())?;
        let n = etcdrs_node {
            member_id: node.member_id(),
            client_urls: node.client_urls().join(","),
            peer_urls: node.peer_urls().join(","),
            node: Mutex::new(node),
        };
        // SAFETY: checked non-NULL above.
        unsafe { *node_out = Box::into_raw(Box::new(n)) };
        Ok(())
    })
}

/// Wait at most `timeout_ms` until the member is part of its cluster and serves
/// (`ETCDRS_CODE_TIMEOUT` if not by then).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_node_wait_ready(
    node: *const etcdrs_node,
    timeout_ms: u64,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        // SAFETY: NULL or a node from this library.
        let node = unsafe { handle(node, "node")? };
        let n = node.node.lock().unwrap_or_else(|p| p.into_inner());
        if n.wait_ready(Duration::from_millis(timeout_ms)) {
            Ok(())
        } else {
            Err(error(
                ErrorCode::Timeout,
                format!("the member was not ready within {timeout_ms} ms"),
            )
            .into())
        }
    })
}

/// `ETCDRS_OK` while the member runs; once it has failed (its raft driver, log writer or
/// apply loop died, e.g. on a full disk), `ETCDRS_CODE_STOPPED` with the cause in the error.
/// A failed member serves nothing: its listeners are closed and its client's calls fail
/// with the same error. Free it and start a new one on the same data dir once the cause is
/// fixed.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_node_failure(
    node: *const etcdrs_node,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        // SAFETY: NULL or a node from this library.
        let node = unsafe { handle(node, "node")? };
        match node
            .node
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failure()
        {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    })
}

/// The member's id (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn etcdrs_node_member_id(node: *const etcdrs_node) -> u64 {
    // SAFETY: NULL or a node from this library.
    read(0, || unsafe { node.as_ref() }.map_or(0, |n| n.member_id))
}

/// The URLs the member serves clients on, comma-separated (actual ports when 0 was asked).
/// Borrowed from the node: valid until it is freed.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_node_client_urls(node: *const etcdrs_node) -> crate::etcdrs_str {
    // SAFETY: NULL or a node from this library.
    read(crate::etcdrs_str::none(), || {
        match unsafe { node.as_ref() } {
            Some(n) => crate::etcdrs_str::of(&n.client_urls),
            None => crate::etcdrs_str::none(),
        }
    })
}

/// The URLs the member serves its peers on, comma-separated. Borrowed from the node.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_node_peer_urls(node: *const etcdrs_node) -> crate::etcdrs_str {
    // SAFETY: NULL or a node from this library.
    read(crate::etcdrs_str::none(), || {
        match unsafe { node.as_ref() } {
            Some(n) => crate::etcdrs_str::of(&n.peer_urls),
            None => crate::etcdrs_str::none(),
        }
    })
}

/// A client that calls this member directly, without HTTP. It stays valid after the node
/// stops (its calls then fail with `ETCDRS_CODE_STOPPED`); free it with `etcdrs_client_free`.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_node_client(
    node: *const etcdrs_node,
    client_out: *mut *mut etcdrs_client,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        out_param(client_out, "client_out")?;
        // SAFETY: NULL or a node from this library.
        let node = unsafe { handle(node, "node")? };
        let client = node.node.lock().unwrap_or_else(|p| p.into_inner()).client();
        // SAFETY: checked non-NULL above.
        unsafe { *client_out = crate::client::new_client(client) };
        Ok(())
    })
}

/// Stop the member: it stops serving and its threads end (blocks until they have, about
/// a second at most). Acknowledged writes are already on disk. A second stop does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_node_stop(
    node: *const etcdrs_node,
    error_out: *mut *mut etcdrs_error,
) -> etcdrs_status {
    guard(error_out, || {
        // SAFETY: NULL or a node from this library.
        let node = unsafe { handle(node, "node")? };
        node.node.lock().unwrap_or_else(|p| p.into_inner()).stop();
        Ok(())
    })
}

/// Stop the member (if running) and free it. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcdrs_node_free(node: *mut etcdrs_node) {
    // SAFETY: NULL or a node from this library, freed once; dropping a Node stops it.
    unsafe { crate::free_box(node) }
}
