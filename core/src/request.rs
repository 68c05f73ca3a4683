//! Requests of the v2 keys API, as the HTTP layer parses them and the client builds them
//! (etcd's pb.Request), and what actually goes through raft.

use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

/// The deepest key accepted, in path components.
pub const MAX_KEY_DEPTH: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Method {
    #[default]
    Get,
    Head,
    Put,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
}

/// One request of the keys API. `key` is the client's key (`/foo`), without the store's
/// internal namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRequest {
    pub method: Method,
    pub key: String,
    /// The `value` field; `Some("")` when present but empty.
    pub value: Option<String>,
    pub dir: bool,
    pub prev_value: Option<String>,
    pub prev_index: u64,
    pub prev_exist: Option<bool>,
    /// Seconds to live; None when absent or empty (`ttl=` unsets a TTL on update).
    pub ttl: Option<u64>,
    pub refresh: Option<bool>,
    pub wait: bool,
    pub wait_index: u64,
    pub recursive: bool,
    pub sorted: bool,
    pub quorum: bool,
    pub stream: bool,
    pub no_value_on_success: bool,
}

fn invalid(code: ErrorCode, cause: &str) -> Error {
    Error::new(code, cause, 0)
}

/// etcd's getUint64: absent is 0, present must parse.
fn form_u64(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<u64> {
    match get(name) {
        None => Ok(0),
        Some(v) => v.parse::<u64>().map_err(|_| {
            invalid(
                ErrorCode::IndexNan,
                &format!("invalid value for \"{name}\""),
            )
        }),
    }
}

/// Go's strconv.ParseBool.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn form_bool(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<bool> {
    match get(name) {
        None => Ok(false),
        Some(v) => parse_bool(&v).ok_or_else(|| {
            invalid(
                ErrorCode::InvalidField,
                &format!("invalid value for \"{name}\""),
            )
        }),
    }
}

impl KeyRequest {
    /// Build from form fields (query string and body merged, first value wins), checking
    /// them in etcd's order so the first error reported is etcd's.
    pub fn from_form(
        method: Method,
        key: &str,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<KeyRequest> {
        let prev_index = form_u64(get, "prevIndex")?;
        let wait_index = form_u64(get, "waitIndex")?;
        let recursive = form_bool(get, "recursive")?;
        let sorted = form_bool(get, "sorted")?;
        let wait = form_bool(get, "wait")?;
        let dir = form_bool(get, "dir")?;
        let quorum = form_bool(get, "quorum")?;
        let stream = form_bool(get, "stream")?;
        let no_value_on_success = form_bool(get, "noValueOnSuccess")?;
        let ttl = match get("ttl") {
            Some(v) if !v.is_empty() => Some(
                v.parse::<u64>()
                    .map_err(|_| invalid(ErrorCode::TtlNan, "invalid value for \"ttl\""))?,
            ),
            _ => None,
        };
        let prev_exist =
            match get("prevExist") {
                None => None,
                Some(v) => Some(parse_bool(&v).ok_or_else(|| {
                    invalid(ErrorCode::InvalidField, "invalid value for prevExist")
                })?),
            };
        let refresh = match get("refresh") {
            None => None,
            Some(v) => Some(
                parse_bool(&v)
                    .ok_or_else(|| invalid(ErrorCode::InvalidField, "invalid value for refresh"))?,
            ),
        };
        let req = KeyRequest {
            method,
            key: key.to_string(),
            value: get("value"),
            dir,
            prev_value: get("prevValue"),
            prev_index,
            prev_exist,
            ttl,
            refresh,
            wait,
            wait_index,
            recursive,
            sorted,
            quorum,
            stream,
            no_value_on_success,
        };
        req.validate()?;
        Ok(req)
    }

    /// The checks etcd makes on a well-formed request before it reaches the store, plus a
    /// bound on key depth (the node tree is walked recursively; etcd has no such bound).
    pub fn validate(&self) -> Result<()> {
        if self
            .key
            .split('/')
            .filter(|c| !c.is_empty())
            .nth(MAX_KEY_DEPTH)
            .is_some()
        {
            return Err(invalid(
                ErrorCode::InvalidForm,
                &format!("key has more than {MAX_KEY_DEPTH} path components"),
            ));
        }
        if self.wait && self.method != Method::Get {
            return Err(invalid(
                ErrorCode::InvalidField,
                "\"wait\" can only be used with GET requests",
            ));
        }
        if self.prev_value.as_deref() == Some("") {
            return Err(invalid(
                ErrorCode::PrevValueRequired,
                "\"prevValue\" cannot be empty",
            ));
        }
        if self.refresh == Some(true) {
            if self.value.as_deref().is_some_and(|v| !v.is_empty()) {
                return Err(invalid(
                    ErrorCode::RefreshValue,
                    "A value was provided on a refresh",
                ));
            }
            if self.ttl.is_none() {
                return Err(invalid(ErrorCode::RefreshTtlRequired, "No TTL value set"));
            }
        }
        Ok(())
    }

    /// The form fields that express this request (the HTTP client sends these).
    pub fn to_form(&self) -> Vec<(&'static str, String)> {
        let mut f = Vec::new();
        if let Some(v) = &self.value {
            f.push(("value", v.clone()));
        }
        let flags = [
            ("dir", self.dir),
            ("wait", self.wait),
            ("recursive", self.recursive),
            ("sorted", self.sorted),
            ("quorum", self.quorum),
            ("stream", self.stream),
            ("noValueOnSuccess", self.no_value_on_success),
        ];
        for (name, on) in flags {
            if on {
                f.push((name, "true".into()));
            }
        }
        if let Some(v) = &self.prev_value {
            f.push(("prevValue", v.clone()));
        }
        if self.prev_index > 0 {
            f.push(("prevIndex", self.prev_index.to_string()));
        }
        if let Some(v) = self.prev_exist {
            f.push(("prevExist", v.to_string()));
        }
        if let Some(t) = self.ttl {
            f.push(("ttl", t.to_string()));
        }
        if let Some(r) = self.refresh {
            f.push(("refresh", r.to_string()));
        }
        if self.wait_index > 0 {
            f.push(("waitIndex", self.wait_index.to_string()));
        }
        f
    }
}

/// A keys-API mutation as replicated: everything the state machine needs, with absolute
/// times from the proposer's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Request {
    pub method: Method,
    /// Store path, including the keys namespace.
    pub path: String,
    pub value: String,
    pub dir: bool,
    pub prev_value: String,
    pub prev_index: u64,
    pub prev_exist: Option<bool>,
    pub expiration: Option<i64>,
    pub refresh: bool,
    pub recursive: bool,
    /// The proposer's clock when it built the request (for TTLs shown in the result).
    pub time: i64,
}

/// A member's published attributes (etcd's membership.Attributes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAttributes {
    pub name: String,
    #[serde(rename = "clientURLs")]
    pub client_urls: Vec<String>,
}

/// What goes into a raft entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    V2(V2Request),
    /// The leader's clock: expire every key whose time has come.
    Sync {
        time: i64,
    },
    /// A member announces its name and client URLs.
    Publish {
        member_id: u64,
        attributes: MemberAttributes,
    },
    /// A member's new peer URLs (PUT /v2/members/<id>).
    MemberUpdate {
        member_id: u64,
        peer_urls: Vec<String>,
    },
    ClusterVersion {
        version: String,
    },
    /// A v3 write: an `etcdrs.V3Request`, protobuf-encoded (etcd's InternalRaftRequest).
    V3(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftRequest {
    pub id: u64,
    pub op: Op,
}

impl RaftRequest {
    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("request encodes")
    }

    pub fn decode(data: &[u8]) -> Result<RaftRequest> {
        bincode::deserialize(data)
            .map_err(|e| Error::new(ErrorCode::Corrupt, format!("raft entry: {e}"), 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn form(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn etcd_error_order_and_causes() {
        let e = KeyRequest::from_form(Method::Put, "/foo", &form(&[("ttl", "abc")])).unwrap_err();
        assert_eq!(
            (e.code, e.cause.as_str()),
            (ErrorCode::TtlNan, "invalid value for \"ttl\"")
        );
        let e = KeyRequest::from_form(Method::Get, "/foo", &form(&[("recursive", "maybe")]))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidField);
        let e = KeyRequest::from_form(Method::Put, "/foo", &form(&[("wait", "true")])).unwrap_err();
        assert_eq!(e.cause, "\"wait\" can only be used with GET requests");
        let e = KeyRequest::from_form(
            Method::Put,
            "/foo",
            &form(&[("refresh", "true"), ("value", "1")]),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::RefreshValue);
        let e =
            KeyRequest::from_form(Method::Put, "/foo", &form(&[("refresh", "true")])).unwrap_err();
        assert_eq!(e.code, ErrorCode::RefreshTtlRequired);
        let e =
            KeyRequest::from_form(Method::Put, "/foo", &form(&[("prevValue", "")])).unwrap_err();
        assert_eq!(e.code, ErrorCode::PrevValueRequired);
        let e = KeyRequest::from_form(Method::Delete, "/foo", &form(&[("prevIndex", "x")]))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::IndexNan);
    }

    #[test]
    fn form_round_trip() {
        let r = KeyRequest::from_form(
            Method::Put,
            "/foo",
            &form(&[
                ("value", "v"),
                ("ttl", "5"),
                ("prevExist", "true"),
                ("prevIndex", "3"),
                ("dir", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (r.ttl, r.prev_exist, r.prev_index),
            (Some(5), Some(true), 3)
        );
        let pairs: Vec<(String, String)> = r
            .to_form()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let m: HashMap<_, _> = pairs.into_iter().collect();
        let back =
            KeyRequest::from_form(Method::Put, "/foo", &|k: &str| m.get(k).cloned()).unwrap();
        assert_eq!(back, r);
        let empty_ttl = KeyRequest::from_form(Method::Put, "/foo", &form(&[("ttl", "")])).unwrap();
        assert_eq!(empty_ttl.ttl, None);
    }
}
