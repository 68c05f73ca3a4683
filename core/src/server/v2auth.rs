//! The v2 auth records in the v2 store, read here and written through raft as v2 requests
//! on /2 paths (etcd's v2auth store does the same, so every member applies them alike and
//! the store's index moves as etcd's does).

use super::Server;
use crate::error::{Error, ErrorCode};
use crate::request::{Method, Op, V2Request};
use crate::time::now_nanos;
use crate::v2auth::{
    auth_err, everything, role_path, root_role, user_path, AuthError, Role, User, ENABLED_PATH,
    GUEST, PERMS_PREFIX, ROOT,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A store failure (not an auth refusal) as the auth API reports it.
fn store_failure(e: Error) -> AuthError {
    AuthError {
        status: e.code.http_status(),
        message: e.cause.clone(),
    }
}

/// The root role is never stored: it cannot be made, changed or deleted.
fn not_root_role(name: &str) -> Result<(), AuthError> {
    if name == ROOT {
        return Err(auth_err(
            403,
            format!("Cannot modify role {ROOT}: is root role."),
        ));
    }
    Ok(())
}

impl Server {
    /// A record, or None when the store has no such node.
    fn v2_record<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, AuthError> {
        let event = match self.read_store().get(path, false, false, now_nanos()) {
            Ok(e) => e,
            Err(e) if e.code == ErrorCode::KeyNotFound => return Ok(None),
            Err(e) => return Err(store_failure(e)),
        };
        let value = event.node.value.unwrap_or_default();
        serde_json::from_str(&value)
            .map(Some)
            .map_err(|e| auth_err(500, format!("{path}: a record that does not decode: {e}")))
    }

    /// The names under a records directory, sorted.
    fn v2_names(&self, dir: &str) -> Vec<String> {
        let Ok(event) =
            self.read_store()
                .get(&format!("{PERMS_PREFIX}/{dir}"), false, true, now_nanos())
        else {
            return Vec::new();
        };
        let mut names: Vec<String> = event
            .node
            .nodes
            .iter()
            .filter_map(|n| n.key.rsplit('/').next().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// Asked on every v2 request: a lookup, no read event, no allocation but the path.
    pub fn v2_auth_enabled(&self) -> bool {
        self.read_store().file_value(ENABLED_PATH) == Some("true")
    }

    pub fn v2_user(&self, name: &str) -> Result<User, AuthError> {
        self.v2_record(&user_path(name))?
            .ok_or_else(|| auth_err(404, format!("User {name} does not exist.")))
    }

    pub fn v2_role(&self, name: &str) -> Result<Role, AuthError> {
        if name == ROOT {
            return Ok(root_role());
        }
        self.v2_record(&role_path(name))?
            .ok_or_else(|| auth_err(404, format!("Role {name} does not exist.")))
    }

    pub fn v2_user_names(&self) -> Vec<String> {
        self.v2_names("users")
    }

    /// Every role, root included (it is never stored).
    pub fn v2_role_names(&self) -> Vec<String> {
        let mut names = self.v2_names("roles");
        names.push(ROOT.into());
        names.sort();
        names
    }

    /// Whether `password` is the user's (bcrypt, off the runtime's threads).
    pub async fn v2_check_password(&self, user: &User, password: &str) -> bool {
        let (hash, password) = (user.password.clone(), password.to_string());
        tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash).is_ok())
            .await
            .unwrap_or(false)
    }

    async fn v2_hash(&self, password: String) -> Result<String, AuthError> {
        let cost = self.auth_config.bcrypt_cost;
        tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
            .await
            .map_err(|e| auth_err(500, e.to_string()))?
            .map_err(|e| auth_err(500, e.to_string()))
    }

    /// One write of the auth records through raft.
    async fn v2_write(
        &self,
        method: Method,
        path: String,
        value: String,
        dir: bool,
        prev_exist: Option<bool>,
    ) -> Result<(), Error> {
        let time = now_nanos();
        self.propose(Op::V2(V2Request {
            method,
            path,
            value,
            dir,
            prev_value: String::new(),
            prev_index: 0,
            prev_exist,
            expiration: None,
            refresh: false,
            recursive: false,
            time,
        }))
        .await
        .map(drop)
    }

    /// The directories and the enabled flag, made before the first record is written (as
    /// etcd does; ones already there are left alone).
    async fn v2_ensure_auth_directories(&self) -> Result<(), AuthError> {
        if self
            .v2_auth_dirs_ensured
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(());
        }
        let exists = |r: Result<(), Error>| match r {
            Err(e) if e.code == ErrorCode::NodeExist => Ok(()),
            other => other.map_err(store_failure),
        };
        for dir in [
            PERMS_PREFIX.to_string(),
            format!("{PERMS_PREFIX}/users/"),
            format!("{PERMS_PREFIX}/roles/"),
        ] {
            exists(
                self.v2_write(Method::Put, dir, String::new(), true, Some(false))
                    .await,
            )?;
        }
        exists(
            self.v2_write(
                Method::Put,
                ENABLED_PATH.to_string(),
                "false".into(),
                false,
                Some(false),
            )
            .await,
        )?;
        self.v2_auth_dirs_ensured
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Write a record: create (prev_exist false) or replace (true).
    async fn v2_put<T: Serialize>(
        &self,
        path: String,
        record: &T,
        prev_exist: bool,
    ) -> Result<(), Error> {
        self.v2_ensure_auth_directories()
            .await
            .map_err(|e| Error::new(ErrorCode::RaftInternal, e.message, 0))?;
        let value = serde_json::to_string(record).expect("auth records serialize");
        self.v2_write(Method::Put, path, value, false, Some(prev_exist))
            .await
    }

    async fn v2_delete(&self, path: String) -> Result<(), Error> {
        self.v2_ensure_auth_directories()
            .await
            .map_err(|e| Error::new(ErrorCode::RaftInternal, e.message, 0))?;
        self.v2_write(Method::Delete, path, String::new(), false, None)
            .await
    }

    pub async fn v2_create_user(&self, mut user: User) -> Result<User, AuthError> {
        if user.user == ROOT && !user.has_role(ROOT) {
            user.roles.get_or_insert_with(Vec::new).push(ROOT.into());
        }
        if user.password.is_empty() {
            return Err(auth_err(
                400,
                format!("Cannot create user {} with an empty password", user.user),
            ));
        }
        user.password = self.v2_hash(std::mem::take(&mut user.password)).await?;
        match self.v2_put(user_path(&user.user), &user, false).await {
            Err(e) if e.code == ErrorCode::NodeExist => {
                Err(auth_err(409, format!("User {} already exists.", user.user)))
            }
            Err(e) => Err(store_failure(e)),
            Ok(()) => Ok(user),
        }
    }

    /// A request naming a user that may exist: an update if it does; whether it was made.
    pub async fn v2_create_or_update_user(&self, user: User) -> Result<(User, bool), AuthError> {
        if self.v2_user(&user.user).is_ok() {
            return Ok((self.v2_update_user(user).await?, false));
        }
        Ok((self.v2_create_user(user).await?, true))
    }

    pub async fn v2_update_user(&self, user: User) -> Result<User, AuthError> {
        let old = self.v2_user(&user.user)?;
        let hash = if user.password.is_empty() {
            None
        } else {
            Some(self.v2_hash(user.password.clone()).await?)
        };
        let new = old.merge(&user, hash)?;
        if new == old {
            return Err(auth_err(
                400,
                "User not updated. Use grant/revoke/password to update the user.",
            ));
        }
        self.v2_put(user_path(&user.user), &new, true)
            .await
            .map_err(store_failure)?;
        Ok(new)
    }

    pub async fn v2_delete_user(&self, name: &str) -> Result<(), AuthError> {
        if self.v2_auth_enabled() && name == ROOT {
            return Err(auth_err(
                403,
                "Cannot delete root user while auth is enabled.",
            ));
        }
        match self.v2_delete(user_path(name)).await {
            Err(e) if e.code == ErrorCode::KeyNotFound => {
                Err(auth_err(404, format!("User {name} does not exist")))
            }
            other => other.map_err(store_failure),
        }
    }

    pub async fn v2_create_role(&self, role: Role) -> Result<(), AuthError> {
        not_root_role(&role.role)?;
        match self.v2_put(role_path(&role.role), &role, false).await {
            Err(e) if e.code == ErrorCode::NodeExist => {
                Err(auth_err(409, format!("Role {} already exists.", role.role)))
            }
            other => other.map_err(store_failure),
        }
    }

    pub async fn v2_update_role(&self, role: Role) -> Result<Role, AuthError> {
        not_root_role(&role.role)?;
        let old = self.v2_role(&role.role)?;
        let new = old.merge(&role)?;
        if new == old {
            return Err(auth_err(
                400,
                "Role not updated. Use grant/revoke to update the role.",
            ));
        }
        self.v2_put(role_path(&role.role), &new, true)
            .await
            .map_err(store_failure)?;
        Ok(new)
    }

    pub async fn v2_delete_role(&self, name: &str) -> Result<(), AuthError> {
        not_root_role(name)?;
        match self.v2_delete(role_path(name)).await {
            Err(e) if e.code == ErrorCode::KeyNotFound => {
                Err(auth_err(404, format!("Role {name} doesn't exist.")))
            }
            other => other.map_err(store_failure),
        }
    }

    /// Turn v2 auth on: root must exist; a guest role that may do everything is made if
    /// there is none (as etcd does, so nothing changes for clients without a user).
    pub async fn v2_enable_auth(&self) -> Result<(), AuthError> {
        if self.v2_auth_enabled() {
            return Err(auth_err(409, "already enabled"));
        }
        if self.v2_user(ROOT).is_err() {
            return Err(auth_err(409, "No root user available, please create one"));
        }
        if self.v2_role(GUEST).is_err() {
            self.v2_create_role(Role {
                role: GUEST.into(),
                permissions: everything(),
                ..Role::default()
            })
            .await?;
        }
        self.v2_put(ENABLED_PATH.to_string(), &true, true)
            .await
            .map_err(store_failure)?;
        tracing::info!("enabled v2 authentication");
        Ok(())
    }

    pub async fn v2_disable_auth(&self) -> Result<(), AuthError> {
        if !self.v2_auth_enabled() {
            return Err(auth_err(409, "already disabled"));
        }
        self.v2_put(ENABLED_PATH.to_string(), &false, true)
            .await
            .map_err(store_failure)?;
        tracing::info!("disabled v2 authentication");
        Ok(())
    }
}
