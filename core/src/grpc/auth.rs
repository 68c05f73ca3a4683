//! etcdserverpb.Auth.

use super::status;
use crate::pb::etcdserverpb::{auth_server::Auth, *};
use crate::server::Server;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub(crate) struct AuthService(pub Arc<Server>);

/// Each method: the member's own, its error as etcd's status.
macro_rules! methods {
    ($($method:ident($req:ty) -> $resp:ty;)*) => {
        #[tonic::async_trait]
        impl Auth for AuthService {
            $(async fn $method(&self, r: Request<$req>) -> Result<Response<$resp>, Status> {
                self.0
                    .$method(r.into_inner())
                    .await
                    .map(Response::new)
                    .map_err(status)
            })*
        }
    };
}

crate::pb::for_auth_methods!(methods);
