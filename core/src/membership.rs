//! The cluster's membership as replicated state (etcd's RaftCluster): member records under
//! /0/members and /0/removed_members in the v2 store, written only by applied entries so every
//! member validates a change against the same state, in log order.

use crate::error::{Error, ErrorCode, Result};
use crate::identity::{format_id, Member};
use crate::request::MemberAttributes;
use crate::v2store::{Store, CLUSTER_PREFIX};
use raft::eraftpb::{ConfChange, ConfChangeType};
use std::collections::HashMap;
use std::sync::RwLock;

pub fn members_dir() -> String {
    format!("{CLUSTER_PREFIX}/members")
}

fn removed_dir() -> String {
    format!("{CLUSTER_PREFIX}/removed_members")
}

fn member_key(id: u64, leaf: &str) -> String {
    format!("{}/{}/{leaf}", members_dir(), format_id(id))
}

pub fn version_key() -> String {
    format!("{CLUSTER_PREFIX}/version")
}

/// Write one of the cluster's own records (permanent; the time does not matter).
fn set_record(store: &mut Store, key: &str, value: &str) -> Result<()> {
    store.set(key, false, value, None, false, 0).map(|_| ())
}

// etcd creates a member's records and updates its peer URLs (its store counts them so).

fn create_record(store: &mut Store, key: &str, value: &str) -> Result<()> {
    store.create(key, false, value, false, None, 0).map(|_| ())
}

fn update_record(store: &mut Store, key: &str, value: &str) -> Result<()> {
    store.update(key, value, None, false, 0).map(|_| ())
}

fn read_json(store: &Store, key: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&store.peek(key)?.value?).ok()
}

fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Every current member, ordered by id.
pub fn read_members(store: &Store) -> Vec<Member> {
    let Some(dir) = store.peek(&members_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<Member> = dir
        .nodes
        .iter()
        .filter_map(|n| u64::from_str_radix(n.key.rsplit('/').next()?, 16).ok())
        .map(|id| {
            let raft = read_json(store, &member_key(id, "raftAttributes"));
            let attrs = read_json(store, &member_key(id, "attributes"));
            Member {
                id,
                name: attrs
                    .as_ref()
                    .and_then(|a| a["name"].as_str())
                    .unwrap_or_default()
                    .to_string(),
                peer_urls: strings(raft.as_ref().map(|r| &r["peerURLs"])),
                client_urls: strings(attrs.as_ref().map(|a| &a["clientURLs"])),
            }
        })
        .collect();
    out.sort_by_key(|m| m.id);
    out
}

pub fn is_removed(store: &Store, id: u64) -> bool {
    store
        .peek(&format!("{}/{}", removed_dir(), format_id(id)))
        .is_some()
}

fn exists(store: &Store, id: u64) -> bool {
    store.peek(&member_key(id, "raftAttributes")).is_some()
}

/// etcd's check: no two members share a peer URL.
fn check_peer_urls(store: &Store, id: u64, peer_urls: &[String]) -> Result<()> {
    for m in read_members(store) {
        if m.id != id && m.peer_urls.iter().any(|u| peer_urls.contains(u)) {
            return Err(Error::new(
                ErrorCode::ExistingPeerAddr,
                "membership: peerURL exists",
                0,
            ));
        }
    }
    Ok(())
}

fn not_found(id: u64) -> Error {
    Error::new(
        ErrorCode::MemberNotFound,
        format!("No such member: {}", format_id(id)),
        0,
    )
}

fn removed(id: u64) -> Error {
    Error::new(
        ErrorCode::MemberRemoved,
        format!("Member permanently removed: {}", format_id(id)),
        0,
    )
}

fn raft_attributes(peer_urls: &[String]) -> String {
    serde_json::json!({ "peerURLs": peer_urls }).to_string()
}

fn save_raft_attributes(store: &mut Store, id: u64, peer_urls: &[String]) -> Result<()> {
    let key = member_key(id, "raftAttributes");
    create_record(store, &key, &raft_attributes(peer_urls))
}

/// The store every member of a new cluster starts from: the initial members' records, written
/// in id order as etcd's bootstrap conf changes write them (so store indices match etcd's).
pub fn bootstrap_store(members: &[(u64, Vec<String>)]) -> Store {
    let mut store = Store::new();
    let mut sorted = members.to_vec();
    sorted.sort_by_key(|m| m.0);
    for (id, urls) in &sorted {
        save_raft_attributes(&mut store, *id, urls).expect("fresh store takes records");
    }
    store
}

/// The conf change that adds `member`; its context carries the member's peer URLs.
pub fn add_change(wait_id: u64, member: &Member) -> ConfChange {
    ConfChange {
        id: wait_id,
        change_type: ConfChangeType::AddNode,
        node_id: member.id,
        context: serde_json::to_vec(member).expect("member json").into(),
        ..Default::default()
    }
}

pub fn remove_change(wait_id: u64, id: u64) -> ConfChange {
    ConfChange {
        id: wait_id,
        change_type: ConfChangeType::RemoveNode,
        node_id: id,
        ..Default::default()
    }
}

/// Validate and record a committed conf change. Only when this succeeds does raft's
/// configuration change too (an invalid one is a no-op on every member alike).
pub fn apply_conf_change(store: &mut Store, cc: &ConfChange) -> Result<()> {
    let id = cc.node_id;
    if is_removed(store, id) {
        return Err(removed(id));
    }
    match cc.get_change_type() {
        ConfChangeType::AddNode => {
            let m: Member = serde_json::from_slice(&cc.context).map_err(|e| {
                Error::new(ErrorCode::Corrupt, format!("conf change context: {e}"), 0)
            })?;
            if exists(store, id) {
                return Err(Error::new(
                    ErrorCode::ExistingPeerAddr,
                    "membership: ID exists",
                    0,
                ));
            }
            check_peer_urls(store, id, &m.peer_urls)?;
            save_raft_attributes(store, id, &m.peer_urls)
        }
        ConfChangeType::RemoveNode => {
            if !exists(store, id) {
                return Err(not_found(id));
            }
            let dir = format!("{}/{}", members_dir(), format_id(id));
            store.delete(&dir, true, true, 0)?;
            create_record(store, &format!("{}/{}", removed_dir(), format_id(id)), "")
        }
        ConfChangeType::AddLearnerNode => Err(Error::new(
            ErrorCode::InvalidArgument,
            "learners are not supported",
            0,
        )),
    }
}

/// A member's new peer URLs.
/// The first URL a member could not be reached at (etcd accepts these schemes only).
pub fn invalid_peer_url(urls: &[String]) -> Option<&String> {
    urls.iter().find(|u| {
        !url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https" | "unix" | "unixs"))
    })
}

pub fn update_member(store: &mut Store, id: u64, peer_urls: &[String]) -> Result<()> {
    if is_removed(store, id) {
        return Err(removed(id));
    }
    if !exists(store, id) {
        return Err(not_found(id));
    }
    check_peer_urls(store, id, peer_urls)?;
    let key = member_key(id, "raftAttributes");
    update_record(store, &key, &raft_attributes(peer_urls))
}

/// A member's name and client URLs, as it announces them after starting.
pub fn publish(store: &mut Store, id: u64, attributes: &MemberAttributes) -> Result<()> {
    if is_removed(store, id) {
        return Err(removed(id));
    }
    let attrs = serde_json::to_string(attributes).expect("attributes json");
    set_record(store, &member_key(id, "attributes"), &attrs)
}

/// Record the cluster version once.
pub fn set_version(store: &mut Store, version: &str) -> Result<()> {
    if store.peek(&version_key()).is_none() {
        set_record(store, &version_key(), version)?;
    }
    Ok(())
}

/// Where each member is reached: its peer URLs, from the applied member records.
#[derive(Default)]
pub(crate) struct PeerDirectory {
    urls: RwLock<HashMap<u64, Vec<String>>>,
}

impl PeerDirectory {
    pub fn new(members: &[Member]) -> PeerDirectory {
        let d = PeerDirectory::default();
        d.replace(members);
        d
    }

    pub fn replace(&self, members: &[Member]) {
        *self.urls.write().unwrap_or_else(|p| p.into_inner()) = members
            .iter()
            .map(|m| (m.id, m.peer_urls.clone()))
            .collect();
    }

    /// Whether `id` is a member of the cluster now.
    pub fn contains(&self, id: u64) -> bool {
        self.urls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&id)
    }

    pub fn get(&self, id: u64) -> Option<Vec<String>> {
        self.urls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, url: &str) -> Member {
        Member {
            id,
            name: String::new(),
            peer_urls: vec![url.into()],
            client_urls: vec![],
        }
    }

    #[test]
    fn add_remove_update_are_validated_in_order() {
        let mut s = bootstrap_store(&[(2, vec!["http://b".into()]), (1, vec!["http://a".into()])]);
        assert_eq!(s.index(), 2);
        assert_eq!(
            read_members(&s).iter().map(|m| m.id).collect::<Vec<_>>(),
            [1, 2]
        );
        let dup = apply_conf_change(&mut s, &add_change(9, &member(3, "http://a")));
        assert_eq!(dup.unwrap_err().code, ErrorCode::ExistingPeerAddr);
        apply_conf_change(&mut s, &add_change(9, &member(3, "http://c"))).unwrap();
        assert_eq!(read_members(&s).len(), 3);
        apply_conf_change(&mut s, &remove_change(9, 3)).unwrap();
        assert!(is_removed(&s, 3));
        assert_eq!(read_members(&s).len(), 2);
        let again = apply_conf_change(&mut s, &remove_change(9, 3)).unwrap_err();
        assert_eq!(
            (again.code, again.cause.as_str()),
            (ErrorCode::MemberRemoved, "Member permanently removed: 3")
        );
        let back = apply_conf_change(&mut s, &add_change(9, &member(3, "http://c"))).unwrap_err();
        assert_eq!(back.code, ErrorCode::MemberRemoved);
        let unknown = apply_conf_change(&mut s, &remove_change(9, 0xabc)).unwrap_err();
        assert_eq!(
            (unknown.code, unknown.cause.as_str()),
            (ErrorCode::MemberNotFound, "No such member: abc")
        );
        update_member(&mut s, 1, &["http://a2".into()]).unwrap();
        assert_eq!(read_members(&s)[0].peer_urls, ["http://a2"]);
        assert_eq!(
            update_member(&mut s, 1, &["http://b".into()])
                .unwrap_err()
                .code,
            ErrorCode::ExistingPeerAddr
        );
        assert_eq!(
            update_member(&mut s, 7, &[]).unwrap_err().code,
            ErrorCode::MemberNotFound
        );
    }
}
