//! The store's internal node tree. Nodes do not keep their own path (it is known while
//! walking), which keeps a million keys small.

use super::event::NodeExtern;
use super::path;
use serde::{Deserialize, Serialize};

/// A directory's children, in key order. A persistent map: cloning a whole tree is O(1),
/// so a snapshot can take an image of the store without stopping writes.
pub(crate) type Children = imbl::OrdMap<String, StoreNode>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum NodeKind {
    File(String),
    Dir(#[serde(deserialize_with = "children")] Children),
}

/// A directory's children from an image: read as a BTreeMap, which does not trust the
/// image's declared count (imbl's own reader reserves room for it first, and a damaged or
/// hostile image declaring 2^48 children aborted the member on allocation).
fn children<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Children, D::Error> {
    std::collections::BTreeMap::<String, StoreNode>::deserialize(d).map(Children::from)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoreNode {
    pub created_index: u64,
    pub modified_index: u64,
    /// Absolute expiration in nanoseconds since the epoch; None is permanent.
    pub expire_time: Option<i64>,
    pub kind: NodeKind,
}

impl StoreNode {
    pub fn new_file(value: String, index: u64, expire_time: Option<i64>) -> StoreNode {
        StoreNode {
            created_index: index,
            modified_index: index,
            expire_time,
            kind: NodeKind::File(value),
        }
    }

    pub fn new_dir(index: u64, expire_time: Option<i64>) -> StoreNode {
        StoreNode {
            created_index: index,
            modified_index: index,
            expire_time,
            kind: NodeKind::Dir(Children::new()),
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir(_))
    }

    /// The value of a file; a directory reads as "".
    pub fn value(&self) -> &str {
        match &self.kind {
            NodeKind::File(v) => v,
            NodeKind::Dir(_) => "",
        }
    }

    pub fn children(&self) -> Option<&Children> {
        match &self.kind {
            NodeKind::Dir(c) => Some(c),
            NodeKind::File(_) => None,
        }
    }

    pub fn children_mut(&mut self) -> Option<&mut Children> {
        match &mut self.kind {
            NodeKind::Dir(c) => Some(c),
            NodeKind::File(_) => None,
        }
    }

    /// etcd's expirationAndTTL: the TTL is the ceiling of the seconds left at `now`.
    pub fn expiration_and_ttl(&self, now: i64) -> (Option<i64>, i64) {
        match self.expire_time {
            None => (None, 0),
            Some(t) => {
                let left = t.saturating_sub(now);
                let mut ttl = left / 1_000_000_000;
                if left % 1_000_000_000 > 0 {
                    ttl += 1;
                }
                (Some(t), ttl)
            }
        }
    }

    /// The node as clients see it (etcd's Repr). Hidden children are never listed.
    pub fn repr(&self, key: &str, recursive: bool, now: i64) -> NodeExtern {
        let mut out = NodeExtern::new(key, self.modified_index, self.created_index);
        (out.expiration, out.ttl) = self.expiration_and_ttl(now);
        match &self.kind {
            NodeKind::File(v) => out.value = Some(v.clone()),
            NodeKind::Dir(children) => {
                out.dir = true;
                if recursive {
                    out.nodes = list(children, key, true, now);
                }
            }
        }
        out
    }

    /// The node as a get answers it: a directory always lists its children one level deep,
    /// all levels when recursive (etcd's loadInternalNode).
    pub fn load(&self, key: &str, recursive: bool, now: i64) -> NodeExtern {
        let mut out = self.repr(key, false, now);
        if let NodeKind::Dir(children) = &self.kind {
            out.nodes = list(children, key, recursive, now);
        }
        out
    }

    /// The hidden (`_`-prefixed) children of a directory, which a get leaves out: the
    /// dashboard shows them when asked.
    pub fn hidden_children(&self, key: &str, now: i64) -> Vec<NodeExtern> {
        match &self.kind {
            NodeKind::Dir(children) => children
                .iter()
                .filter(|(name, _)| name.starts_with('_'))
                .map(|(name, child)| child.repr(&path::join(key, name), false, now))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Post-order paths of this node and everything below it (children before parents),
    /// with the expiration of each, for watcher notification and TTL bookkeeping.
    pub fn walk_post_order(&self, key: &str, out: &mut Vec<(String, Option<i64>)>) {
        if let NodeKind::Dir(children) = &self.kind {
            for (name, child) in children {
                child.walk_post_order(&path::join(key, name), out);
            }
        }
        out.push((key.to_string(), self.expire_time));
    }
}

/// Children in key order (sorted=true asks for this order; etcd's unsorted order is
/// unspecified, so one order serves both).
fn list(children: &Children, key: &str, recursive: bool, now: i64) -> Vec<NodeExtern> {
    children
        .iter()
        .filter(|(name, _)| !name.starts_with('_'))
        .map(|(name, child)| child.repr(&path::join(key, name), recursive, now))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (core/src/fuzz.rs): a directory declaring 2^48 children made the
    /// map reader reserve room for them and the member abort on the allocation.
    #[test]
    fn a_directory_declaring_more_children_than_it_has_is_an_error() {
        let mut image = 1u32.to_le_bytes().to_vec(); // NodeKind::Dir
        image.extend_from_slice(&(1u64 << 48).to_le_bytes()); // its child count
        assert!(bincode::deserialize::<NodeKind>(&image).is_err());
    }
}
