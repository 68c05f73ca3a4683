//! What a member answers to the v3 Auth service, and who the client of a v3 call is.
//!
//! A call from a client runs inside `CALLER`'s scope with the user its token names (as
//! etcd carries AuthInfo in the request context); a call outside any scope is the member's
//! own (lease expiry, recipes' housekeeping) and is checked against nothing. Reads are
//! checked here against the local auth state; writes carry the caller through raft and are
//! checked as every member applies them.

use super::Server;
use crate::apply::v3::V3Response;
use crate::auth::{Access, AuthInfo, AuthStore};
use crate::error::V3Error;
use crate::pb::etcdrs::{v3_request::Request, Authenticate};
use crate::pb::etcdserverpb::{
    AuthDisableRequest, AuthDisableResponse, AuthEnableRequest, AuthEnableResponse,
    AuthRoleAddRequest, AuthRoleAddResponse, AuthRoleDeleteRequest, AuthRoleDeleteResponse,
    AuthRoleGetRequest, AuthRoleGetResponse, AuthRoleGrantPermissionRequest,
    AuthRoleGrantPermissionResponse, AuthRoleListRequest, AuthRoleListResponse,
    AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse, AuthUserAddRequest,
    AuthUserAddResponse, AuthUserChangePasswordRequest, AuthUserChangePasswordResponse,
    AuthUserDeleteRequest, AuthUserDeleteResponse, AuthUserGetRequest, AuthUserGetResponse,
    AuthUserGrantRoleRequest, AuthUserGrantRoleResponse, AuthUserListRequest, AuthUserListResponse,
    AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse, AuthenticateRequest,
    AuthenticateResponse, ResponseHeader,
};

/// Auth changes that go through raft as they come: each answers with a header alone.
macro_rules! auth_changes {
    ($($method:ident($req:ident) -> $resp:ident as $variant:ident;)*) => {
        impl Server {
            $(pub async fn $method(&self, r: $req) -> Result<$resp, V3Error> {
                let header = self.propose_auth(Request::$variant(r)).await?;
                Ok($resp { header })
            })*
        }
    };
}

auth_changes! {
    user_delete(AuthUserDeleteRequest) -> AuthUserDeleteResponse as UserDelete;
    user_grant_role(AuthUserGrantRoleRequest) -> AuthUserGrantRoleResponse as UserGrantRole;
    user_revoke_role(AuthUserRevokeRoleRequest) -> AuthUserRevokeRoleResponse as UserRevokeRole;
    role_add(AuthRoleAddRequest) -> AuthRoleAddResponse as RoleAdd;
    role_delete(AuthRoleDeleteRequest) -> AuthRoleDeleteResponse as RoleDelete;
    role_grant_permission(AuthRoleGrantPermissionRequest) -> AuthRoleGrantPermissionResponse
        as RoleGrantPermission;
    role_revoke_permission(AuthRoleRevokePermissionRequest) -> AuthRoleRevokePermissionResponse
        as RoleRevokePermission;
}

tokio::task_local! {
    /// The client a v3 call serves.
    pub(crate) static CALLER: AuthInfo;
}

/// The client of the call under way; None for the member's own calls.
pub(crate) fn caller() -> Option<AuthInfo> {
    CALLER.try_with(|c| c.clone()).ok()
}

impl Server {
    /// Who a call comes from, by the token it carries (none: a client without a user).
    pub fn auth_info(&self, token: Option<&str>) -> Result<AuthInfo, V3Error> {
        if let (Some(jwt), Some(token)) = (&self.auth_config.jwt, token) {
            if self.read_mvcc().auth().enabled() {
                // A JWT names its user and the auth revision it was signed at (a later
                // change to auth makes it stale: ErrAuthOldRevision, as etcd). Its signature
                // is checked without holding the store, which applies wait for.
                return jwt.info(token).ok_or(V3Error::InvalidAuthToken);
            }
        }
        self.read_mvcc()
            .auth()
            .auth_info(token, self.auth_config.token_ttl)
    }

    /// Who a call comes from when its client certificate names them (no token).
    pub fn auth_info_from_cert(&self, common_name: &str) -> AuthInfo {
        let mvcc = self.read_mvcc();
        let auth = mvcc.auth();
        AuthInfo {
            username: if auth.enabled() {
                common_name.to_string()
            } else {
                String::new()
            },
            revision: auth.revision(),
        }
    }

    /// Check the caller (if a client's call is under way) against the auth state.
    pub(crate) fn authorize(
        &self,
        check: impl FnOnce(&AuthStore, &AuthInfo) -> Result<(), V3Error>,
    ) -> Result<(), V3Error> {
        self.authorize_as(caller().as_ref(), check)
    }

    /// The same for a client known by other means (a stream's, captured when it began).
    pub(crate) fn authorize_as(
        &self,
        who: Option<&AuthInfo>,
        check: impl FnOnce(&AuthStore, &AuthInfo) -> Result<(), V3Error>,
    ) -> Result<(), V3Error> {
        match who {
            Some(info) => check(self.read_mvcc().auth(), info),
            None => Ok(()),
        }
    }

    pub(crate) fn authorize_read(&self, key: &[u8], range_end: &[u8]) -> Result<(), V3Error> {
        self.authorize(|a, info| a.check_permitted(info, key, range_end, Access::Read))
    }

    /// Calls that need a known user once auth is on, and nothing more.
    pub(crate) fn authorize_user(&self) -> Result<(), V3Error> {
        self.authorize(|a, info| a.check_user(info).map(|_| ()))
    }

    /// Calls for the root role alone once auth is on.
    pub(crate) fn authorize_admin(&self) -> Result<(), V3Error> {
        self.authorize(AuthStore::check_admin)
    }

    async fn propose_auth(&self, req: Request) -> Result<Option<ResponseHeader>, V3Error> {
        match self.propose_v3(req).await? {
            V3Response::Auth(header) => Ok(self.v3_header(header)),
            other => Err(super::v3::unexpected(other)),
        }
    }

    pub async fn auth_enable(&self, _: AuthEnableRequest) -> Result<AuthEnableResponse, V3Error> {
        let header = self
            .propose_auth(Request::AuthEnable(AuthEnableRequest {}))
            .await?;
        tracing::info!("enabled authentication");
        Ok(AuthEnableResponse { header })
    }

    pub async fn auth_disable(
        &self,
        _: AuthDisableRequest,
    ) -> Result<AuthDisableResponse, V3Error> {
        let header = self
            .propose_auth(Request::AuthDisable(AuthDisableRequest {}))
            .await?;
        tracing::info!("disabled authentication");
        Ok(AuthDisableResponse { header })
    }

    /// Check a password here, then hand out a token every member learns through raft.
    pub async fn authenticate(
        &self,
        r: AuthenticateRequest,
    ) -> Result<AuthenticateResponse, V3Error> {
        self.v3_serving(false).await?;
        let hash = self.read_mvcc().auth().password_hash(&r.name)?;
        let password = r.password;
        tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
            .await
            .map_err(|e| V3Error::Internal(e.to_string()))??;
        if let Some(jwt) = &self.auth_config.jwt {
            // Signed here, at the auth revision a linearizable read sees (etcd signs it as
            // the request applies): no member needs to learn of it.
            self.v3_serving(true).await?;
            let revision = self.read_mvcc().auth().revision();
            let token = jwt
                .assign(&r.name, revision)
                .map_err(|e| V3Error::Internal(format!("etcdserver: {e}")))?;
            tracing::info!(user = %r.name, "authenticated a user (JWT)");
            return Ok(AuthenticateResponse {
                header: self.v3_header(None),
                token,
            });
        }
        use rand::distributions::{Alphanumeric, DistString as _};
        let simple_token = format!(
            "{}.{}",
            Alphanumeric.sample_string(&mut rand::thread_rng(), 16),
            self.applied_index()
        );
        let header = self
            .propose_auth(Request::Authenticate(Authenticate {
                name: r.name.clone(),
                simple_token: simple_token.clone(),
            }))
            .await?;
        tracing::info!(user = %r.name, "authenticated a user");
        Ok(AuthenticateResponse {
            header,
            token: simple_token,
        })
    }

    /// A bcrypt hash of a password, made off the runtime's threads.
    async fn hash_password(&self, password: String) -> Result<String, V3Error> {
        let cost = self.auth_config.bcrypt_cost;
        tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
            .await
            .map_err(|e| V3Error::Internal(e.to_string()))?
            .map_err(|e| V3Error::Internal(format!("etcdserver: {e}")))
    }

    pub async fn user_add(
        &self,
        mut r: AuthUserAddRequest,
    ) -> Result<AuthUserAddResponse, V3Error> {
        // Hashing is slow on purpose: only an administrator may make a member do it.
        self.authorize_admin()?;
        let no_password = r.options.as_ref().is_some_and(|o| o.no_password);
        if !no_password {
            r.hashed_password = self.hash_password(std::mem::take(&mut r.password)).await?;
        }
        r.password.clear();
        let header = self.propose_auth(Request::UserAdd(r)).await?;
        Ok(AuthUserAddResponse { header })
    }

    pub async fn user_change_password(
        &self,
        mut r: AuthUserChangePasswordRequest,
    ) -> Result<AuthUserChangePasswordResponse, V3Error> {
        self.authorize_admin()?;
        r.hashed_password = self.hash_password(std::mem::take(&mut r.password)).await?;
        let header = self.propose_auth(Request::UserChangePassword(r)).await?;
        Ok(AuthUserChangePasswordResponse { header })
    }

    // Reads of the auth state: linearizable, served here. A user may read their own record
    // and the roles they hold; everything else is for root.

    pub async fn user_get(&self, r: AuthUserGetRequest) -> Result<AuthUserGetResponse, V3Error> {
        self.v3_serving(true).await?;
        self.authorize(|a, info| match a.check_admin(info) {
            Err(V3Error::PermissionDenied) if info.username == r.name => Ok(()),
            other => other,
        })?;
        let roles = self.read_mvcc().auth().user(&r.name)?.roles.clone();
        Ok(AuthUserGetResponse {
            header: self.v3_header(None),
            roles,
        })
    }

    pub async fn user_list(&self, _: AuthUserListRequest) -> Result<AuthUserListResponse, V3Error> {
        self.v3_serving(true).await?;
        self.authorize_admin()?;
        Ok(AuthUserListResponse {
            header: self.v3_header(None),
            users: self.read_mvcc().auth().user_names(),
        })
    }

    pub async fn role_get(&self, r: AuthRoleGetRequest) -> Result<AuthRoleGetResponse, V3Error> {
        self.v3_serving(true).await?;
        self.authorize(|a, info| match a.check_admin(info) {
            Err(V3Error::PermissionDenied)
                if a.user(&info.username)
                    .is_ok_and(|u| u.roles.contains(&r.role)) =>
            {
                Ok(())
            }
            other => other,
        })?;
        let perm = self
            .read_mvcc()
            .auth()
            .role(&r.role)?
            .key_permission
            .clone();
        Ok(AuthRoleGetResponse {
            header: self.v3_header(None),
            perm,
        })
    }

    pub async fn role_list(&self, _: AuthRoleListRequest) -> Result<AuthRoleListResponse, V3Error> {
        self.v3_serving(true).await?;
        self.authorize_admin()?;
        Ok(AuthRoleListResponse {
            header: self.v3_header(None),
            roles: self.read_mvcc().auth().role_names(),
        })
    }
}
