//! etcd's /v2/auth API (users, roles, enable) and the checks v2 auth puts on the other v2
//! routes: HTTP Basic credentials (or, with --client-cert-auth, the client certificate's
//! common name), checked against the users and roles in the v2 store. Status codes, bodies
//! and headers are etcd 3.4's.

use crate::http::{cluster_id_header, http_error, json, method_not_allowed, Body};
use crate::server::Server;
use crate::v2auth::{AuthError, Role, User, ROOT};
use base64::Engine as _;
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response};

pub(super) const PREFIX: &str = "/v2/auth";

/// Who a request says it is: HTTP Basic credentials, or a verified certificate's name.
enum Claim {
    None,
    Basic(String, String),
    Certificate(String),
    /// An Authorization header that is not Basic credentials.
    Unreadable,
}

fn claim(headers: &HeaderMap, cert: Option<&crate::http::ClientCertName>) -> Claim {
    let Some(value) = headers.get(hyper::header::AUTHORIZATION) else {
        return match cert {
            Some(c) => Claim::Certificate(c.0.to_string()),
            None => Claim::None,
        };
    };
    // Go's Request.BasicAuth: "Basic " in any case, then base64 of user:password.
    let basic = value.to_str().ok().and_then(|v| {
        let (scheme, rest) = v.split_at_checked(6)?;
        if !scheme.eq_ignore_ascii_case("basic ") {
            return None;
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, password) = text.split_once(':')?;
        Some((user.to_string(), password.to_string()))
    });
    match basic {
        Some((u, p)) => Claim::Basic(u, p),
        None => Claim::Unreadable,
    }
}

/// The user a request proves to be (a password that matches, or a certificate that names
/// a user); None for none, a wrong password or an unknown user.
async fn user_of(server: &Server, claim: &Claim) -> Option<User> {
    match claim {
        Claim::Basic(name, password) => {
            let user = server.v2_user(name).ok()?;
            server
                .v2_check_password(&user, password)
                .await
                .then_some(user)
        }
        Claim::Certificate(name) => server.v2_user(name).ok(),
        Claim::None | Claim::Unreadable => None,
    }
}

/// What the access checks look at in a request (kept apart from its body).
pub(super) struct Asker<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub cert: Option<&'a crate::http::ClientCertName>,
}

impl<'a> Asker<'a> {
    pub fn of(req: &'a Request<Incoming>) -> Asker<'a> {
        Asker {
            method: req.method(),
            headers: req.headers(),
            cert: req.extensions().get(),
        }
    }

    fn claim(&self) -> Claim {
        claim(self.headers, self.cert)
    }

    fn writes(&self) -> bool {
        self.method != Method::GET && self.method != Method::HEAD
    }
}

/// etcd's hasRootAccess: with auth on, only a user holding the root role.
pub(super) async fn has_root_access(server: &Server, req: &Asker<'_>) -> bool {
    if !server.v2_auth_enabled() {
        return true;
    }
    user_of(server, &req.claim())
        .await
        .is_some_and(|u| u.has_role(ROOT))
}

/// etcd's hasWriteRootAccess: reads are anyone's, changes root's.
pub(super) async fn has_write_root_access(server: &Server, req: &Asker<'_>) -> bool {
    !req.writes() || has_root_access(server, req).await
}

/// etcd's hasKeyPrefixAccess: with auth on, a request without credentials gets what the
/// guest role grants; one with them what the user's roles grant (a recursive request needs
/// a prefix pattern).
pub(super) async fn has_key_access(
    server: &Server,
    req: &Asker<'_>,
    key: &str,
    recursive: bool,
) -> bool {
    if !server.v2_auth_enabled() {
        return true;
    }
    let write = req.writes();
    let claim = req.claim();
    let user = match claim {
        Claim::None => None,
        _ => match user_of(server, &claim).await {
            Some(u) => Some(u),
            // A certificate naming no user is a client without credentials.
            None if matches!(claim, Claim::Certificate(_)) => None,
            None => return false,
        },
    };
    let Some(user) = user else {
        return server
            .v2_role(crate::v2auth::GUEST)
            .is_ok_and(|g| g.has_key_access(key, write));
    };
    user.roles().iter().any(|name| {
        server.v2_role(name).is_ok_and(|role| {
            if recursive {
                role.has_recursive_access(key, write)
            } else {
                role.has_key_access(key, write)
            }
        })
    })
}

/// etcd's writeNoAuth.
pub(super) fn no_auth() -> Response<Body> {
    http_error(401, "Insufficient credentials")
}

fn auth_error(e: AuthError, cluster_id: u64) -> Response<Body> {
    let mut r = http_error(e.status, &e.message);
    cluster_id_header(&mut r, cluster_id);
    r
}

/// A user as GET shows it: the roles in full (none: no "roles" at all).
#[derive(serde::Serialize)]
struct UserWithRoles {
    user: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<Role>,
}

fn with_roles(server: &Server, user: &User) -> Result<UserWithRoles, AuthError> {
    let roles = user
        .roles()
        .iter()
        .map(|n| server.v2_role(n))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UserWithRoles {
        user: user.user.clone(),
        roles,
    })
}

async fn json_body<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    deadline: std::time::Duration,
) -> Result<T, AuthError> {
    let invalid = || AuthError {
        status: 400,
        message: "Invalid JSON in request body.".into(),
    };
    let body = crate::http::collect_body(req.into_body(), super::MAX_FORM_BYTES, deadline)
        .await
        .map_err(|_| invalid())?;
    serde_json::from_slice(&body).map_err(|_| invalid())
}

/// Answer a /v2/auth request.
pub(super) async fn serve(req: Request<Incoming>, server: &Server) -> Response<Body> {
    let cluster_id = server.cluster_id;
    let sub = crate::v2store::path::clean(&req.uri().path()[PREFIX.len()..]);
    let pieces: Vec<&str> = sub.split('/').collect();
    let answer = match pieces.as_slice() {
        ["", "enable"] => enable(req, server).await,
        ["", "users"] => all_users(req, server).await,
        ["", "roles"] => all_roles(req, server).await,
        ["", "users", name] => {
            let name = name.to_string();
            user(req, server, &name).await
        }
        ["", "roles", name] => {
            let name = name.to_string();
            role(req, server, &name).await
        }
        // Before the cluster header is set.
        ["", "users" | "roles", ..] => return http_error(400, "Invalid path"),
        _ => return crate::http::not_found(),
    };
    answer.unwrap_or_else(|e| auth_error(e, cluster_id))
}

/// The method check, then the access check, then the cluster header (etcd's order).
async fn admitted(
    req: &Request<Incoming>,
    server: &Server,
    methods: &str,
    write_only: bool,
) -> Result<(), Response<Body>> {
    if !methods.split(',').any(|m| m == req.method().as_str()) {
        return Err(method_not_allowed(methods));
    }
    let asker = Asker::of(req);
    let ok = if write_only {
        has_write_root_access(server, &asker).await
    } else {
        has_root_access(server, &asker).await
    };
    if !ok {
        return Err(no_auth());
    }
    Ok(())
}

fn ok_json<T: serde::Serialize>(status: u16, v: &T, cluster_id: u64) -> Response<Body> {
    let mut r = json(status, v, true);
    cluster_id_header(&mut r, cluster_id);
    r
}

fn ok_empty(cluster_id: u64) -> Response<Body> {
    let mut r = crate::http::response(200, "application/json", bytes::Bytes::new());
    cluster_id_header(&mut r, cluster_id);
    r
}

async fn enable(req: Request<Incoming>, server: &Server) -> Result<Response<Body>, AuthError> {
    if let Err(r) = admitted(&req, server, "GET,PUT,DELETE", true).await {
        return Ok(r);
    }
    let id = server.cluster_id;
    match *req.method() {
        Method::GET => Ok(ok_json(
            200,
            &serde_json::json!({ "enabled": server.v2_auth_enabled() }),
            id,
        )),
        Method::PUT => server.v2_enable_auth().await.map(|()| ok_empty(id)),
        _ => server.v2_disable_auth().await.map(|()| ok_empty(id)),
    }
}

async fn all_users(req: Request<Incoming>, server: &Server) -> Result<Response<Body>, AuthError> {
    if let Err(r) = admitted(&req, server, "GET", false).await {
        return Ok(r);
    }
    let mut users: Option<Vec<UserWithRoles>> = None;
    for name in server.v2_user_names() {
        let u = server.v2_user(&name)?;
        users
            .get_or_insert_with(Vec::new)
            .push(with_roles(server, &u)?);
    }
    Ok(ok_json(
        200,
        &serde_json::json!({ "users": users }),
        server.cluster_id,
    ))
}

async fn all_roles(req: Request<Incoming>, server: &Server) -> Result<Response<Body>, AuthError> {
    if let Err(r) = admitted(&req, server, "GET", false).await {
        return Ok(r);
    }
    let roles = server
        .v2_role_names()
        .iter()
        .map(|n| server.v2_role(n))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok_json(
        200,
        &serde_json::json!({ "roles": roles }),
        server.cluster_id,
    ))
}

async fn user(
    req: Request<Incoming>,
    server: &Server,
    name: &str,
) -> Result<Response<Body>, AuthError> {
    if let Err(r) = admitted(&req, server, "GET,PUT,DELETE", false).await {
        return Ok(r);
    }
    let id = server.cluster_id;
    match *req.method() {
        Method::GET => {
            let u = server.v2_user(name)?;
            Ok(ok_json(200, &with_roles(server, &u)?, id))
        }
        Method::PUT => {
            let u: User = json_body(req, server.header_read_timeout).await?;
            if u.user != name {
                return Err(AuthError {
                    status: 400,
                    message: "User JSON name does not match the name in the URL".into(),
                });
            }
            let (mut out, created) = if u.grant.is_none() && u.revoke.is_none()
                || u.grant.as_deref().unwrap_or_default().is_empty()
                    && u.revoke.as_deref().unwrap_or_default().is_empty()
            {
                if u.roles().is_empty() {
                    server.v2_create_or_update_user(u).await?
                } else {
                    // etcd creates a user given with roles, and answers 200.
                    (server.v2_create_user(u).await?, false)
                }
            } else {
                if !u.roles().is_empty() {
                    return Err(AuthError {
                        status: 400,
                        message: "User JSON contains both roles and grant/revoke".into(),
                    });
                }
                (server.v2_update_user(u).await?, false)
            };
            out.password.clear();
            Ok(ok_json(if created { 201 } else { 200 }, &out, id))
        }
        _ => server.v2_delete_user(name).await.map(|()| ok_empty(id)),
    }
}

async fn role(
    req: Request<Incoming>,
    server: &Server,
    name: &str,
) -> Result<Response<Body>, AuthError> {
    if let Err(r) = admitted(&req, server, "GET,PUT,DELETE", false).await {
        return Ok(r);
    }
    let id = server.cluster_id;
    match *req.method() {
        Method::GET => Ok(ok_json(200, &server.v2_role(name)?, id)),
        Method::PUT => {
            let r: Role = json_body(req, server.header_read_timeout).await?;
            if r.role != name {
                return Err(AuthError {
                    status: 400,
                    message: "Role JSON name does not match the name in the URL".into(),
                });
            }
            let empty =
                |p: &Option<crate::v2auth::Permissions>| p.as_ref().is_none_or(|p| p.kv.is_empty());
            if empty(&r.grant) && empty(&r.revoke) {
                // etcd answers with the request as it read it.
                let out = r.clone();
                server.v2_create_role(r).await?;
                Ok(ok_json(201, &out, id))
            } else {
                if !r.permissions.kv.is_empty() {
                    return Err(AuthError {
                        status: 400,
                        message: "Role JSON contains both permissions and grant/revoke".into(),
                    });
                }
                Ok(ok_json(200, &server.v2_update_role(r).await?, id))
            }
        }
        _ => server.v2_delete_role(name).await.map(|()| ok_empty(id)),
    }
}
