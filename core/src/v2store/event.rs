//! Events and the external form of nodes, rendered exactly as etcd's v2 JSON.

use crate::time::{format_rfc3339_nano, parse_rfc3339};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The action of an event, in etcd's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "get")]
    Get,
    #[serde(rename = "create")]
    Create,
    #[serde(rename = "set")]
    Set,
    #[serde(rename = "update")]
    Update,
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "compareAndSwap")]
    CompareAndSwap,
    #[serde(rename = "compareAndDelete")]
    CompareAndDelete,
    #[serde(rename = "expire")]
    Expire,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::Create => "create",
            Action::Set => "set",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::CompareAndSwap => "compareAndSwap",
            Action::CompareAndDelete => "compareAndDelete",
            Action::Expire => "expire",
        }
    }
}

/// A node as clients see it (etcd's NodeExtern). Field order and omissions follow etcd.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeExtern {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dir: bool,
    /// Absolute expiration, nanoseconds since the Unix epoch (RFC3339Nano on the wire).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_expiration",
        deserialize_with = "de_expiration"
    )]
    pub expiration: Option<i64>,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub ttl: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeExtern>,
    #[serde(rename = "modifiedIndex", default, skip_serializing_if = "is_zero_u64")]
    pub modified_index: u64,
    #[serde(rename = "createdIndex", default, skip_serializing_if = "is_zero_u64")]
    pub created_index: u64,
}

impl NodeExtern {
    pub fn new(key: &str, modified_index: u64, created_index: u64) -> NodeExtern {
        NodeExtern {
            key: key.to_string(),
            modified_index,
            created_index,
            ..Default::default()
        }
    }

    pub(crate) fn trim_prefix(&mut self, prefix: &str) {
        if self.key.starts_with(prefix) {
            self.key.drain(..prefix.len());
        }
        for n in &mut self.nodes {
            n.trim_prefix(prefix);
        }
    }
}

/// A change (or a read) of the store. `etcd_index` is the store index when the event was
/// produced (the X-Etcd-Index header); it is not part of the JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub action: Action,
    #[serde(default)]
    pub node: NodeExtern,
    #[serde(rename = "prevNode", default, skip_serializing_if = "Option::is_none")]
    pub prev_node: Option<NodeExtern>,
    #[serde(skip)]
    pub etcd_index: u64,
    /// A TTL refresh: recorded in history, never delivered to watchers.
    #[serde(skip)]
    pub refresh: bool,
}

impl Event {
    pub fn new(action: Action, key: &str, modified_index: u64, created_index: u64) -> Event {
        Event {
            action,
            node: NodeExtern::new(key, modified_index, created_index),
            prev_node: None,
            etcd_index: 0,
            refresh: false,
        }
    }

    /// The index of the change this event records.
    pub fn index(&self) -> u64 {
        self.node.modified_index
    }

    /// etcd answers 201 Created for these.
    pub fn is_created(&self) -> bool {
        self.action == Action::Create || (self.action == Action::Set && self.prev_node.is_none())
    }

    /// A copy with `prefix` removed from every key (the store keeps user keys under a
    /// namespace; clients never see it).
    pub fn trimmed(&self, prefix: &str) -> Event {
        self.clone().into_trimmed(prefix)
    }

    /// `trimmed`, in place.
    pub fn into_trimmed(mut self, prefix: &str) -> Event {
        self.node.trim_prefix(prefix);
        if let Some(p) = &mut self.prev_node {
            p.trim_prefix(prefix);
        }
        self
    }

    pub fn to_json(&self) -> String {
        crate::go_json::to_string(self)
    }

    /// The JSON and a newline, as etcd writes an event to the wire.
    pub fn to_json_line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(256);
        crate::go_json::write(&mut line, self);
        line.push(b'\n');
        line
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn ser_expiration<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => s.serialize_str(&format_rfc3339_nano(*n)),
        None => s.serialize_none(),
    }
}

fn de_expiration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s {
        None => Ok(None),
        Some(t) => parse_rfc3339(&t)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("bad expiration {t}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_layout_matches_etcd() {
        let mut e = Event::new(Action::Set, "/message", 5, 5);
        e.node.value = Some("Hello etcd".into());
        let mut p = NodeExtern::new("/message", 4, 4);
        p.value = Some("Hello world".into());
        e.prev_node = Some(p);
        assert_eq!(
            e.to_json(),
            r#"{"action":"set","node":{"key":"/message","value":"Hello etcd","modifiedIndex":5,"createdIndex":5},"prevNode":{"key":"/message","value":"Hello world","modifiedIndex":4,"createdIndex":4}}"#
        );
        let back: Event = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn expiration_and_ttl() {
        let mut n = NodeExtern::new("/foo", 6, 6);
        n.value = Some("bar".into());
        n.expiration = Some(1_795_396_634_594_204_952);
        n.ttl = 5;
        let j = serde_json::to_string(&n).unwrap();
        assert_eq!(
            j,
            r#"{"key":"/foo","value":"bar","expiration":"2026-11-23T01:17:14.594204952Z","ttl":5,"modifiedIndex":6,"createdIndex":6}"#
        );
        assert_eq!(serde_json::from_str::<NodeExtern>(&j).unwrap(), n);
    }
}
