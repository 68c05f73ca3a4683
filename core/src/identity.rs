//! Member and cluster identities, derived as etcd derives them (so that members started
//! with the same flags agree and match etcd's ids), the member record, --initial-cluster.

use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// A member as /v2/members shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    #[serde(with = "hex_id")]
    pub id: u64,
    pub name: String,
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs")]
    pub client_urls: Vec<String>,
}

/// etcd's member id: the first 8 bytes (big endian) of sha1(sorted peer URLs + token).
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut h = Sha1::new();
    h.update(urls.concat().as_bytes());
    h.update(token.as_bytes());
    first_u64(&h.finalize())
}

/// etcd's cluster id: sha1 over the sorted member ids (8 bytes each, big endian).
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    first_u64(&h.finalize())
}

fn first_u64(d: &[u8]) -> u64 {
    u64::from_be_bytes(d[..8].try_into().expect("sha1 has 20 bytes"))
}

/// Parse `--initial-cluster` (`name=url,name=url2,...`) into (name, peer URLs) in order of
/// first appearance.
pub fn parse_initial_cluster(s: &str) -> Result<Vec<(String, Vec<String>)>> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, url) = part.split_once('=').ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidConfig,
                format!("--initial-cluster entry {part:?} is not name=url"),
                0,
            )
        })?;
        url::Url::parse(url).map_err(|e| {
            Error::new(
                ErrorCode::InvalidConfig,
                format!("--initial-cluster URL {url:?}: {e}"),
                0,
            )
        })?;
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, urls)) => urls.push(url.to_string()),
            None => out.push((name.to_string(), vec![url.to_string()])),
        }
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidConfig,
            "--initial-cluster is empty",
            0,
        ));
    }
    // One URL is one member (etcd's checkDuplicateURL).
    let mut urls: Vec<&String> = out.iter().flat_map(|(_, u)| u).collect();
    urls.sort();
    if urls.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::new(
            ErrorCode::InvalidConfig,
            format!("initial cluster {s} has duplicate url"),
            0,
        ));
    }
    Ok(out)
}

pub fn format_id(id: u64) -> String {
    format!("{id:x}")
}

mod hex_id {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_id(*id))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        u64::from_str_radix(&s, 16).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_etcd() {
        // Measured on etcd 3.4: default member on http://127.0.0.1:12380, token etcd-cluster.
        let id = member_id(&["http://127.0.0.1:12380".to_string()], "etcd-cluster");
        assert_eq!(format_id(id), "ddd67b312462fd7b");
        assert_eq!(format_id(cluster_id(&[id])), "a7ef944b95711739");
    }

    #[test]
    fn initial_cluster_parsing() {
        let c = parse_initial_cluster("a=http://1:2380,b=http://2:2380,a=http://1:2381").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].1.len(), 2);
        assert!(parse_initial_cluster("nourl").is_err());
        let dup = parse_initial_cluster("a=http://1:2380,b=http://1:2380").unwrap_err();
        assert!(dup.cause.contains("has duplicate url"), "{}", dup.cause);
        assert!(parse_initial_cluster("").is_err());
    }
}
