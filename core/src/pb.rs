//! etcd's v3 messages and gRPC services, generated from core/proto at build time, with
//! serde in the protobuf JSON mapping (pbjson) for the JSON gateway.
#![allow(clippy::all, missing_docs)]

pub mod mvccpb {
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

pub mod authpb {
    include!(concat!(env!("OUT_DIR"), "/authpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

pub mod v3lockpb {
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.serde.rs"));
}

pub mod v3electionpb {
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.serde.rs"));
}

/// Calls `$m! { method(Request) -> Response; ... }` with the Auth service's methods: the
/// one list the gRPC service and the client both expand.
macro_rules! for_auth_methods {
    ($m:ident) => {
        $m! {
            auth_enable(AuthEnableRequest) -> AuthEnableResponse;
            auth_disable(AuthDisableRequest) -> AuthDisableResponse;
            authenticate(AuthenticateRequest) -> AuthenticateResponse;
            user_add(AuthUserAddRequest) -> AuthUserAddResponse;
            user_get(AuthUserGetRequest) -> AuthUserGetResponse;
            user_list(AuthUserListRequest) -> AuthUserListResponse;
            user_delete(AuthUserDeleteRequest) -> AuthUserDeleteResponse;
            user_change_password(AuthUserChangePasswordRequest) -> AuthUserChangePasswordResponse;
            user_grant_role(AuthUserGrantRoleRequest) -> AuthUserGrantRoleResponse;
            user_revoke_role(AuthUserRevokeRoleRequest) -> AuthUserRevokeRoleResponse;
            role_add(AuthRoleAddRequest) -> AuthRoleAddResponse;
            role_get(AuthRoleGetRequest) -> AuthRoleGetResponse;
            role_list(AuthRoleListRequest) -> AuthRoleListResponse;
            role_delete(AuthRoleDeleteRequest) -> AuthRoleDeleteResponse;
            role_grant_permission(AuthRoleGrantPermissionRequest) -> AuthRoleGrantPermissionResponse;
            role_revoke_permission(AuthRoleRevokePermissionRequest) -> AuthRoleRevokePermissionResponse;
        }
    };
}
pub(crate) use for_auth_methods;

/// What v3 writes carry through the raft log.
pub mod etcdrs {
    include!(concat!(env!("OUT_DIR"), "/etcdrs.rs"));
}
