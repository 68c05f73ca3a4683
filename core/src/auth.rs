//! v3 users, roles and permissions (etcd's auth store): the replicated state every member
//! applies from the log and keeps in the v3 store, the permission checks made against it,
//! and the simple tokens `Authenticate` hands out (held in memory, as etcd's).

use crate::error::V3Error;
use crate::pb::authpb::{permission::Type as PermType, Permission, Role, User, UserAddOptions};
use crate::pb::etcdrs::AuthState;
use crate::pb::etcdserverpb::{
    request_op, AuthRoleGrantPermissionRequest, AuthRoleRevokePermissionRequest,
    AuthUserAddRequest, AuthUserChangePasswordRequest, AuthUserGrantRoleRequest,
    AuthUserRevokeRoleRequest, DeleteRangeRequest, PutRequest, TxnRequest,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The user that may enable auth, and the role that may do everything.
pub const ROOT: &str = "root";

/// What an operation needs on a key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Who made a request, as the member that took it resolved its token (etcd's AuthInfo):
/// an empty name is a client that sent no token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    pub username: String,
    /// The auth store's revision when the token was checked.
    pub revision: u64,
}

/// The replicated auth state, and the tokens this member knows.
#[derive(Debug, Default)]
pub struct AuthStore {
    enabled: bool,
    /// Moves on with every change to users, roles or the enabled flag.
    revision: u64,
    users: BTreeMap<String, User>,
    roles: BTreeMap<String, Role>,
    tokens: Mutex<HashMap<String, Token>>,
}

#[derive(Debug, Clone)]
struct Token {
    username: String,
    expires: Instant,
}

/// How long a simple token lives without use (etcd's --auth-token-ttl default).
pub const TOKEN_TTL: Duration = Duration::from_secs(300);

/// A member's own auth settings (not replicated): etcd's --bcrypt-cost, --auth-token-ttl
/// and --auth-token.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub bcrypt_cost: u32,
    pub token_ttl: Duration,
    /// JWT tokens instead of simple ones.
    pub jwt: Option<std::sync::Arc<crate::jwt::JwtTokens>>,
}

impl Clone for AuthStore {
    fn clone(&self) -> AuthStore {
        AuthStore {
            enabled: self.enabled,
            revision: self.revision,
            users: self.users.clone(),
            roles: self.roles.clone(),
            tokens: Mutex::new(self.tokens().clone()),
        }
    }
}

impl AuthStore {
    pub fn from_state(s: AuthState) -> AuthStore {
        AuthStore {
            enabled: s.enabled,
            revision: s.revision,
            users: s.users.into_iter().map(|u| (name(&u.name), u)).collect(),
            roles: s.roles.into_iter().map(|r| (name(&r.name), r)).collect(),
            tokens: Mutex::default(),
        }
    }

    pub fn state(&self) -> AuthState {
        AuthState {
            enabled: self.enabled,
            revision: self.revision,
            users: self.users.values().cloned().collect(),
            roles: self.roles.values().cloned().collect(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, Token>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user a token names, its life renewed (etcd's simple tokens); None when it is
    /// unknown or expired.
    pub fn token_user(&self, token: &str, ttl: Duration) -> Option<String> {
        let mut tokens = self.tokens();
        let now = Instant::now();
        let t = tokens.get_mut(token)?;
        if t.expires <= now {
            tokens.remove(token);
            return None;
        }
        t.expires = now + ttl;
        Some(t.username.clone())
    }

    /// Who a request comes from: its token's user, or no one (an empty name).
    pub fn auth_info(&self, token: Option<&str>, ttl: Duration) -> Result<AuthInfo, V3Error> {
        let username = match token {
            Some(t) if self.enabled => self.token_user(t, ttl).ok_or(V3Error::InvalidAuthToken)?,
            _ => String::new(),
        };
        Ok(AuthInfo {
            username,
            revision: self.revision,
        })
    }

    /// For the password check `Authenticate` makes before a token goes through raft: the
    /// hash the user's password must match, taken out so the slow check runs without
    /// holding the store.
    pub fn password_hash(&self, name: &str) -> Result<String, V3Error> {
        if !self.enabled {
            return Err(V3Error::AuthNotEnabled);
        }
        let user = self.users.get(name).ok_or(V3Error::AuthFailed)?;
        if user.options.as_ref().is_some_and(|o| o.no_password) {
            return Err(V3Error::AuthFailed);
        }
        String::from_utf8(user.password.to_vec()).map_err(|_| V3Error::AuthFailed)
    }

    /// Whether `info` may touch keys [key, range_end) (etcd's range_end conventions).
    pub fn check_permitted(
        &self,
        info: &AuthInfo,
        key: &[u8],
        range_end: &[u8],
        access: Access,
    ) -> Result<(), V3Error> {
        let user = self.check_user(info)?;
        let Some(user) = user else { return Ok(()) };
        if user.roles.iter().any(|r| r == ROOT) {
            return Ok(());
        }
        let mut granted: Vec<Interval> = user
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .flat_map(|r| &r.key_permission)
            .filter(|p| grants(p, access))
            .map(|p| Interval::new(&p.key, &p.range_end))
            .collect();
        granted.sort_by(|a, b| a.from.cmp(&b.from));
        // What the roles grant, merged into disjoint intervals: the request must fall into
        // one of them.
        let want = Interval::new(key, range_end);
        let mut merged: Option<Interval> = None;
        for next in granted {
            merged = match merged {
                Some(mut cur) if cur.reaches(&next.from) => {
                    cur.end = match (cur.end, next.end) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                    Some(cur)
                }
                Some(cur) if cur.holds(&want) => return Ok(()),
                _ => Some(next),
            };
        }
        match merged {
            Some(cur) if cur.holds(&want) => Ok(()),
            _ => Err(V3Error::PermissionDenied),
        }
    }

    /// What a put needs: write on its key, and read when it asks for the previous value.
    pub fn check_put(&self, info: &AuthInfo, p: &PutRequest) -> Result<(), V3Error> {
        self.check_permitted(info, &p.key, &[], Access::Write)?;
        if p.prev_kv {
            self.check_permitted(info, &p.key, &[], Access::Read)?;
        }
        Ok(())
    }

    pub fn check_delete(&self, info: &AuthInfo, d: &DeleteRangeRequest) -> Result<(), V3Error> {
        self.check_permitted(info, &d.key, &d.range_end, Access::Write)?;
        if d.prev_kv {
            self.check_permitted(info, &d.key, &d.range_end, Access::Read)?;
        }
        Ok(())
    }

    /// What a txn needs: read on what it compares, and what each operation of either
    /// branch needs (etcd's checkTxnAuth).
    pub fn check_txn(&self, info: &AuthInfo, t: &TxnRequest) -> Result<(), V3Error> {
        for c in &t.compare {
            self.check_permitted(info, &c.key, &c.range_end, Access::Read)?;
        }
        for op in t.success.iter().chain(&t.failure) {
            match &op.request {
                Some(request_op::Request::RequestRange(r)) => {
                    self.check_permitted(info, &r.key, &r.range_end, Access::Read)?
                }
                Some(request_op::Request::RequestPut(p)) => self.check_put(info, p)?,
                Some(request_op::Request::RequestDeleteRange(d)) => self.check_delete(info, d)?,
                Some(request_op::Request::RequestTxn(t)) => self.check_txn(info, t)?,
                None => {}
            }
        }
        Ok(())
    }

    /// Whether `info` may administer the cluster (holds the root role).
    pub fn check_admin(&self, info: &AuthInfo) -> Result<(), V3Error> {
        match self.check_user(info)? {
            Some(u) if !u.roles.iter().any(|r| r == ROOT) => Err(V3Error::PermissionDenied),
            _ => Ok(()),
        }
    }

    /// With auth on, the user `info` names (refused when none or unknown); None with it off.
    pub fn check_user(&self, info: &AuthInfo) -> Result<Option<&User>, V3Error> {
        if !self.enabled {
            return Ok(None);
        }
        if info.username.is_empty() {
            return Err(V3Error::UserEmpty);
        }
        if info.revision < self.revision {
            return Err(V3Error::AuthOldRevision);
        }
        self.users
            .get(&info.username)
            .map(Some)
            .ok_or(V3Error::PermissionDenied)
    }

    pub fn user(&self, name: &str) -> Result<&User, V3Error> {
        self.users.get(name).ok_or(V3Error::UserNotFound)
    }

    pub fn user_names(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    pub fn role(&self, name: &str) -> Result<&Role, V3Error> {
        self.roles.get(name).ok_or(V3Error::RoleNotFound)
    }

    pub fn role_names(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    // The changes, as applied from the log on every member. Each moves the revision on.

    pub fn enable(&mut self) -> Result<(), V3Error> {
        if self.enabled {
            return Ok(());
        }
        let root = self.users.get(ROOT).ok_or(V3Error::RootUserNotExist)?;
        if !root.roles.iter().any(|r| r == ROOT) {
            return Err(V3Error::RootRoleNotExist);
        }
        self.enabled = true;
        self.changed();
        Ok(())
    }

    pub fn disable(&mut self) {
        if self.enabled {
            self.enabled = false;
            self.tokens().clear();
            self.changed();
        }
    }

    /// Register a token `Authenticate` handed out (the password was checked by the member
    /// that took the request).
    pub fn add_token(&self, username: &str, token: &str, ttl: Duration) -> Result<(), V3Error> {
        if !self.enabled {
            return Err(V3Error::AuthNotEnabled);
        }
        if !self.users.contains_key(username) {
            return Err(V3Error::AuthFailed);
        }
        let mut tokens = self.tokens();
        // Expired tokens go as new ones come, not on every call that shows one.
        let now = Instant::now();
        tokens.retain(|_, t| t.expires > now);
        tokens.insert(
            token.to_string(),
            Token {
                username: username.to_string(),
                expires: now + ttl,
            },
        );
        Ok(())
    }

    pub fn user_add(&mut self, r: AuthUserAddRequest) -> Result<(), V3Error> {
        if r.name.is_empty() {
            return Err(V3Error::UserEmpty);
        }
        if self.users.contains_key(&r.name) {
            return Err(V3Error::UserAlreadyExist);
        }
        let no_password = r.options.as_ref().is_some_and(|o| o.no_password);
        let user = User {
            name: r.name.clone().into_bytes().into(),
            password: if no_password {
                Default::default()
            } else {
                r.hashed_password.into_bytes().into()
            },
            roles: Vec::new(),
            options: Some(UserAddOptions { no_password }),
        };
        self.users.insert(r.name, user);
        self.changed();
        Ok(())
    }

    pub fn user_delete(&mut self, name: &str) -> Result<(), V3Error> {
        if self.enabled && name == ROOT {
            return Err(V3Error::InvalidAuthMgmt);
        }
        self.users.remove(name).ok_or(V3Error::UserNotFound)?;
        self.tokens().retain(|_, t| t.username != name);
        self.changed();
        Ok(())
    }

    pub fn user_change_password(
        &mut self,
        r: AuthUserChangePasswordRequest,
    ) -> Result<(), V3Error> {
        let user = self.users.get_mut(&r.name).ok_or(V3Error::UserNotFound)?;
        user.password = r.hashed_password.into_bytes().into();
        self.tokens().retain(|_, t| t.username != r.name);
        self.changed();
        Ok(())
    }

    pub fn user_grant_role(&mut self, r: AuthUserGrantRoleRequest) -> Result<(), V3Error> {
        if !self.users.contains_key(&r.user) {
            return Err(V3Error::UserNotFound);
        }
        if !self.roles.contains_key(&r.role) {
            return Err(V3Error::RoleNotFound);
        }
        let user = self.users.get_mut(&r.user).expect("checked above");
        if let Err(at) = user.roles.binary_search(&r.role) {
            user.roles.insert(at, r.role);
            self.changed();
        }
        Ok(())
    }

    pub fn user_revoke_role(&mut self, r: AuthUserRevokeRoleRequest) -> Result<(), V3Error> {
        if self.enabled && r.name == ROOT && r.role == ROOT {
            return Err(V3Error::InvalidAuthMgmt);
        }
        let user = self.users.get_mut(&r.name).ok_or(V3Error::UserNotFound)?;
        let at = user
            .roles
            .iter()
            .position(|x| *x == r.role)
            .ok_or(V3Error::RoleNotGranted)?;
        user.roles.remove(at);
        self.changed();
        Ok(())
    }

    pub fn role_add(&mut self, name: &str) -> Result<(), V3Error> {
        if name.is_empty() {
            return Err(V3Error::RoleEmpty);
        }
        if self.roles.contains_key(name) {
            return Err(V3Error::RoleAlreadyExist);
        }
        let role = Role {
            name: name.to_string().into_bytes().into(),
            key_permission: Vec::new(),
        };
        self.roles.insert(name.to_string(), role);
        self.changed();
        Ok(())
    }

    pub fn role_delete(&mut self, name: &str) -> Result<(), V3Error> {
        if self.enabled && name == ROOT {
            return Err(V3Error::InvalidAuthMgmt);
        }
        self.roles.remove(name).ok_or(V3Error::RoleNotFound)?;
        for user in self.users.values_mut() {
            user.roles.retain(|r| r != name);
        }
        self.changed();
        Ok(())
    }

    pub fn role_grant_permission(
        &mut self,
        r: AuthRoleGrantPermissionRequest,
    ) -> Result<(), V3Error> {
        let role = self.roles.get_mut(&r.name).ok_or(V3Error::RoleNotFound)?;
        let perm = r.perm.unwrap_or_default();
        let same = |p: &Permission| p.key == perm.key && p.range_end == perm.range_end;
        match role.key_permission.iter_mut().find(|p| same(p)) {
            Some(p) => p.perm_type = perm.perm_type,
            None => {
                let at = role
                    .key_permission
                    .partition_point(|p| (&p.key, &p.range_end) < (&perm.key, &perm.range_end));
                role.key_permission.insert(at, perm);
            }
        }
        self.changed();
        Ok(())
    }

    pub fn role_revoke_permission(
        &mut self,
        r: AuthRoleRevokePermissionRequest,
    ) -> Result<(), V3Error> {
        let role = self.roles.get_mut(&r.role).ok_or(V3Error::RoleNotFound)?;
        let at = role
            .key_permission
            .iter()
            .position(|p| p.key == r.key && p.range_end == r.range_end)
            .ok_or(V3Error::PermissionNotGranted)?;
        role.key_permission.remove(at);
        self.changed();
        Ok(())
    }

    fn changed(&mut self) {
        self.revision += 1;
    }
}

/// bcrypt's check of a password against its hash.
pub fn verify_password(password: &str, hash: &str) -> Result<(), V3Error> {
    match bcrypt::verify(password, hash) {
        Ok(true) => Ok(()),
        _ => Err(V3Error::AuthFailed),
    }
}

fn name(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn grants(p: &Permission, access: Access) -> bool {
    matches!(
        (PermType::try_from(p.perm_type), access),
        (Ok(PermType::Readwrite), _)
            | (Ok(PermType::Read), Access::Read)
            | (Ok(PermType::Write), Access::Write)
    )
}

/// Keys [from, end) as a key and range_end name them: no range_end is the key alone (up
/// to the key with a zero byte appended), "\0" is every key from `from` on (`end` None).
struct Interval {
    from: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Interval {
    fn new(key: &[u8], range_end: &[u8]) -> Interval {
        let end = match range_end {
            [] => Some([key, &[0]].concat()),
            [0] => None,
            e => Some(e.to_vec()),
        };
        Interval {
            from: key.to_vec(),
            end,
        }
    }

    /// Whether `key` is in this interval or right after it (the two merge).
    fn reaches(&self, key: &[u8]) -> bool {
        self.end.as_deref().is_none_or(|e| key <= e)
    }

    fn holds(&self, other: &Interval) -> bool {
        other.from >= self.from
            && match (&self.end, &other.end) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(e), Some(o)) => o <= e && other.from < *e,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(t: PermType, key: &str, end: &str) -> Permission {
        Permission {
            perm_type: t as i32,
            key: key.as_bytes().to_vec().into(),
            range_end: end.as_bytes().to_vec().into(),
        }
    }

    fn store() -> AuthStore {
        let mut a = AuthStore::default();
        for u in [ROOT, "alice"] {
            a.user_add(AuthUserAddRequest {
                name: u.into(),
                hashed_password: bcrypt::hash("pw", 4).unwrap(),
                ..Default::default()
            })
            .unwrap();
        }
        for r in [ROOT, "reader"] {
            a.role_add(r).unwrap();
        }
        a.user_grant_role(AuthUserGrantRoleRequest {
            user: ROOT.into(),
            role: ROOT.into(),
        })
        .unwrap();
        a.user_grant_role(AuthUserGrantRoleRequest {
            user: "alice".into(),
            role: "reader".into(),
        })
        .unwrap();
        for p in [
            perm(PermType::Read, "/a/", "/a0"),
            perm(PermType::Readwrite, "/a0", "/b"),
            perm(PermType::Write, "k", ""),
            perm(PermType::Read, "z", "\0"),
        ] {
            a.role_grant_permission(AuthRoleGrantPermissionRequest {
                name: "reader".into(),
                perm: Some(p),
            })
            .unwrap();
        }
        a.enable().unwrap();
        a
    }

    #[test]
    fn permissions_cover_keys_ranges_and_merged_grants() {
        let a = store();
        let alice = AuthInfo {
            username: "alice".into(),
            revision: a.revision(),
        };
        let ok = |k: &str, e: &str, acc| a.check_permitted(&alice, k.as_bytes(), e.as_bytes(), acc);
        assert_eq!(ok("/a/x", "", Access::Read), Ok(()));
        // Two grants that touch ([/a/, /a0) and [/a0, /b)) cover a range across both.
        assert_eq!(ok("/a/", "/b", Access::Read), Ok(()));
        assert_eq!(
            ok("/a/", "/b\0", Access::Read),
            Err(V3Error::PermissionDenied)
        );
        assert_eq!(
            ok("/a/x", "", Access::Write),
            Err(V3Error::PermissionDenied)
        );
        assert_eq!(ok("/a0", "", Access::Write), Ok(()));
        assert_eq!(ok("k", "", Access::Write), Ok(()));
        assert_eq!(ok("k", "", Access::Read), Err(V3Error::PermissionDenied));
        assert_eq!(ok("ka", "", Access::Write), Err(V3Error::PermissionDenied));
        assert_eq!(ok("zzz", "\0", Access::Read), Ok(()));
        assert_eq!(ok("y", "\0", Access::Read), Err(V3Error::PermissionDenied));
        let root = AuthInfo {
            username: ROOT.into(),
            revision: a.revision(),
        };
        assert_eq!(
            a.check_permitted(&root, b"any", b"\0", Access::Write),
            Ok(())
        );
        assert_eq!(a.check_admin(&alice), Err(V3Error::PermissionDenied));
        assert_eq!(a.check_admin(&root), Ok(()));
        let anonymous = AuthInfo {
            username: String::new(),
            revision: a.revision(),
        };
        assert_eq!(
            a.check_permitted(&anonymous, b"/a/x", b"", Access::Read),
            Err(V3Error::UserEmpty)
        );
        let stale = AuthInfo {
            revision: a.revision() - 1,
            ..alice
        };
        assert_eq!(
            a.check_permitted(&stale, b"/a/x", b"", Access::Read),
            Err(V3Error::AuthOldRevision)
        );
    }

    #[test]
    fn enable_needs_root_with_the_root_role_and_root_stays() {
        let mut a = AuthStore::default();
        assert_eq!(a.enable(), Err(V3Error::RootUserNotExist));
        a.user_add(AuthUserAddRequest {
            name: ROOT.into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(a.enable(), Err(V3Error::RootRoleNotExist));
        let a = store();
        let mut b = a.clone();
        assert_eq!(b.user_delete(ROOT), Err(V3Error::InvalidAuthMgmt));
        assert_eq!(b.role_delete(ROOT), Err(V3Error::InvalidAuthMgmt));
        let hash = b.password_hash("alice").unwrap();
        assert_eq!(verify_password("pw", &hash), Ok(()));
        assert_eq!(verify_password("no", &hash), Err(V3Error::AuthFailed));
        assert_eq!(b.password_hash("nobody"), Err(V3Error::AuthFailed));
        b.add_token("alice", "t.1", TOKEN_TTL).unwrap();
        assert_eq!(b.token_user("t.1", TOKEN_TTL).as_deref(), Some("alice"));
        b.user_delete("alice").unwrap();
        assert_eq!(b.token_user("t.1", TOKEN_TTL), None);
        let restored = AuthStore::from_state(a.state());
        assert_eq!(restored.state(), a.state());
    }
}
