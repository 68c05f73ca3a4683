//! etcd's v2 users and roles (etcd 2.1's auth, still in etcd 3.4's v2 API): the records as
//! they live in the v2 store under /2 (JSON, as etcd writes them, so a v2 store image holds
//! them and indices move as etcd's do), the merges a grant or revoke makes, and the key
//! patterns roles grant ("/pub/*" a prefix, anything else one key).

use serde::{Deserialize, Serialize};

/// Where the records live in the v2 store.
pub const PERMS_PREFIX: &str = "/2";
pub const ROOT: &str = "root";
pub const GUEST: &str = "guest";

/// An auth failure as etcd's v2 auth writes it: an HTTP status and `{"message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub status: u16,
    pub message: String,
}

/// etcd's authErr: every message starts with "auth: ".
pub fn auth_err(status: u16, message: impl AsRef<str>) -> AuthError {
    AuthError {
        status,
        message: format!("auth: {}", message.as_ref()),
    }
}

/// A user record; `password` is a bcrypt hash once stored. `grant` and `revoke` only come
/// in requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<Vec<String>>,
}

/// Read and write key patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RwPermission {
    #[serde(default)]
    pub read: Option<Vec<String>>,
    #[serde(default)]
    pub write: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    #[serde(default)]
    pub kv: RwPermission,
}

/// A role record. `grant` and `revoke` only come in requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub role: String,
    #[serde(default)]
    pub permissions: Permissions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Permissions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<Permissions>,
}

/// The root role: every key, read and write (never stored).
pub fn root_role() -> Role {
    Role {
        role: ROOT.into(),
        permissions: everything(),
        ..Role::default()
    }
}

/// What the guest role grants when enabling auth creates it: everything.
pub fn everything() -> Permissions {
    Permissions {
        kv: RwPermission {
            read: Some(vec!["/*".into()]),
            write: Some(vec!["/*".into()]),
        },
    }
}

impl RwPermission {
    fn list(&self, write: bool) -> &[String] {
        let l = if write { &self.write } else { &self.read };
        l.as_deref().unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.list(false).is_empty() && self.list(true).is_empty()
    }

    /// One key: a pattern ending in "*" grants every key it prefixes, any other exactly
    /// itself.
    pub fn has_access(&self, key: &str, write: bool) -> bool {
        self.list(write).iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => key == p,
        })
    }

    /// A recursive request: only a prefix pattern covers the keys under `key`.
    pub fn has_recursive_access(&self, key: &str, write: bool) -> bool {
        self.list(write).iter().any(|p| {
            p.strip_suffix('*')
                .is_some_and(|prefix| key.starts_with(prefix))
        })
    }

    /// Add patterns; one already granted is refused, as etcd refuses it.
    fn grant(&self, n: &RwPermission) -> Result<RwPermission, AuthError> {
        let mut out = RwPermission::default();
        for (write, what) in [(false, "read"), (true, "write")] {
            let mut current: Vec<String> = self.list(write).to_vec();
            for p in n.list(write) {
                if current.contains(p) {
                    return Err(auth_err(
                        409,
                        format!("Granting duplicate {what} permission {p}"),
                    ));
                }
                current.push(p.clone());
            }
            current.sort();
            *(if write { &mut out.write } else { &mut out.read }) = Some(current);
        }
        Ok(out)
    }

    /// Remove patterns; one not granted is passed over.
    fn revoke(&self, n: &RwPermission) -> RwPermission {
        let mut out = RwPermission::default();
        for write in [false, true] {
            let gone = n.list(write);
            let mut current: Vec<String> = self
                .list(write)
                .iter()
                .filter(|p| !gone.contains(p))
                .cloned()
                .collect();
            current.sort();
            *(if write { &mut out.write } else { &mut out.read }) = Some(current);
        }
        out
    }
}

impl Role {
    pub fn has_key_access(&self, key: &str, write: bool) -> bool {
        self.role == ROOT || self.permissions.kv.has_access(key, write)
    }

    pub fn has_recursive_access(&self, key: &str, write: bool) -> bool {
        self.role == ROOT || self.permissions.kv.has_recursive_access(key, write)
    }

    /// The role after a request's grant and revoke.
    pub fn merge(&self, n: &Role) -> Result<Role, AuthError> {
        let mut kv = self.permissions.kv.clone();
        if let Some(g) = &n.grant {
            kv = kv.grant(&g.kv)?;
        }
        if let Some(r) = &n.revoke {
            kv = kv.revoke(&r.kv);
        }
        Ok(Role {
            role: self.role.clone(),
            permissions: Permissions { kv },
            ..Role::default()
        })
    }
}

impl User {
    pub fn roles(&self) -> &[String] {
        self.roles.as_deref().unwrap_or_default()
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles().iter().any(|r| r == role)
    }

    /// The user after a request's new password (already hashed, if any), grants and
    /// revokes; a duplicate grant or a revoke of a role not held is refused.
    pub fn merge(&self, n: &User, new_hash: Option<String>) -> Result<User, AuthError> {
        let mut roles: Vec<String> = self.roles().to_vec();
        for g in n.grant.as_deref().unwrap_or_default() {
            if roles.contains(g) {
                return Err(auth_err(
                    409,
                    format!("Granting duplicate role {g} for user {}", n.user),
                ));
            }
            roles.push(g.clone());
        }
        for r in n.revoke.as_deref().unwrap_or_default() {
            let Some(at) = roles.iter().position(|x| x == r) else {
                return Err(auth_err(
                    409,
                    format!("Revoking ungranted role {r} for user {}", n.user),
                ));
            };
            roles.remove(at);
        }
        roles.sort();
        Ok(User {
            user: self.user.clone(),
            password: new_hash.unwrap_or_else(|| self.password.clone()),
            roles: Some(roles),
            ..User::default()
        })
    }
}

/// Store paths of the records.
pub fn user_path(name: &str) -> String {
    format!("{PERMS_PREFIX}/users/{name}")
}

pub fn role_path(name: &str) -> String {
    format!("{PERMS_PREFIX}/roles/{name}")
}

/// Whether v2 auth is on: "true" or "false", as etcd writes it.
pub const ENABLED_PATH: &str = "/2/enabled";

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(read: &[&str], write: &[&str]) -> RwPermission {
        RwPermission {
            read: Some(read.iter().map(|s| s.to_string()).collect()),
            write: Some(write.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn patterns_match_as_etcds() {
        let p = rw(&["/pub/*", "/one"], &["/w"]);
        assert!(p.has_access("/pub/x", false));
        assert!(p.has_access("/pub/", false));
        assert!(!p.has_access("/pub", false));
        assert!(p.has_access("/one", false));
        assert!(!p.has_access("/one/two", false));
        assert!(!p.has_access("/pub/x", true));
        assert!(p.has_access("/w", true));
        assert!(p.has_recursive_access("/pub/dir", false));
        assert!(!p.has_recursive_access("/one", false));
        assert!(root_role().has_recursive_access("/anything", true));
    }

    #[test]
    fn grants_and_revokes_merge_sorted_and_refuse_duplicates() {
        let r = Role {
            role: "r".into(),
            permissions: Permissions {
                kv: rw(&["/b"], &["/w"]),
            },
            ..Role::default()
        };
        let merged = r
            .merge(&Role {
                role: "r".into(),
                grant: Some(Permissions {
                    kv: rw(&["/a"], &[]),
                }),
                revoke: Some(Permissions {
                    kv: rw(&["/nope"], &["/w"]),
                }),
                ..Role::default()
            })
            .unwrap();
        assert_eq!(merged.permissions.kv, rw(&["/a", "/b"], &[]));
        let dup = r.merge(&Role {
            role: "r".into(),
            grant: Some(Permissions {
                kv: rw(&["/b"], &[]),
            }),
            ..Role::default()
        });
        assert_eq!(dup.unwrap_err().status, 409);
        let u = User {
            user: "u".into(),
            roles: Some(vec!["x".into()]),
            ..User::default()
        };
        let no = u.merge(
            &User {
                user: "u".into(),
                revoke: Some(vec!["y".into()]),
                ..User::default()
            },
            None,
        );
        assert_eq!(
            no.unwrap_err().message,
            "auth: Revoking ungranted role y for user u"
        );
    }
}
