//! etcd's v3 gRPC API: the services (tonic, generated from core/proto) over the member's
//! `Server`, and the router that the client listener hands every gRPC request to (`http`
//! tells them from HTTP/1 and JSON requests by content-type, as etcd's cmux does).

mod auth;
mod cluster;
pub(crate) mod gateway;
mod kv;
mod lease;
mod lock;
mod maintenance;
mod watch;

// The services an in-process client calls for Cluster and Maintenance (one implementation).
pub(crate) use cluster::ClusterService;
pub(crate) use maintenance::MaintenanceService;

use crate::error::V3Error;
use crate::pb::etcdserverpb::{
    auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
    lease_server::LeaseServer, maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use crate::pb::v3electionpb::election_server::ElectionServer;
use crate::pb::v3lockpb::lock_server::LockServer;
use crate::server::{Server, CALLER};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::sync::Arc;
use tower_service::Service as _;

/// gRPC's allowance for framing on top of --max-request-bytes (etcd's grpcOverheadBytes).
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// The v3 services of one member, by gRPC service name.
#[derive(Clone)]
pub(crate) struct Routes {
    server: Arc<Server>,
    auth: AuthServer<auth::AuthService>,
    kv: KvServer<kv::KvService>,
    maintenance: MaintenanceServer<maintenance::MaintenanceService>,
    cluster: ClusterServer<cluster::ClusterService>,
    lease: LeaseServer<lease::LeaseService>,
    watch: WatchServer<watch::WatchService>,
    lock: LockServer<lock::LockService>,
    election: ElectionServer<lock::ElectionService>,
}

impl Routes {
    pub fn new(server: Arc<Server>) -> Routes {
        let max_recv = server
            .v3_limits()
            .max_request_bytes
            .saturating_add(GRPC_OVERHEAD_BYTES);
        Routes {
            auth: AuthServer::new(auth::AuthService(server.clone()))
                .max_decoding_message_size(max_recv),
            kv: KvServer::new(kv::KvService(server.clone())).max_decoding_message_size(max_recv),
            maintenance: MaintenanceServer::new(maintenance::MaintenanceService(server.clone()))
                .max_decoding_message_size(max_recv),
            cluster: ClusterServer::new(cluster::ClusterService(server.clone()))
                .max_decoding_message_size(max_recv),
            lease: LeaseServer::new(lease::LeaseService(server.clone()))
                .max_decoding_message_size(max_recv),
            watch: WatchServer::new(watch::WatchService(server.clone()))
                .max_decoding_message_size(max_recv),
            lock: LockServer::new(lock::LockService(server.clone()))
                .max_decoding_message_size(max_recv),
            election: ElectionServer::new(lock::ElectionService(server.clone()))
                .max_decoding_message_size(max_recv),
            server,
        }
    }

    /// Answer one gRPC request (`/package.Service/Method`), as the client its token names.
    pub async fn call(&self, req: Request<Incoming>) -> Response<tonic::body::Body> {
        // A token names the user; without one, a verified client certificate's common name
        // does (etcd's AuthInfoFromTLS).
        let who = match token(req.headers()) {
            None => match req.extensions().get::<crate::http::ClientCertName>() {
                Some(cn) => Ok(self.server.auth_info_from_cert(&cn.0)),
                None => self.server.auth_info(None),
            },
            token => self.server.auth_info(token),
        };
        let who = match who {
            Ok(who) => who,
            Err(e) => return status(e).into_http(),
        };
        // A call that stays open as long as its client likes holds one of the client's
        // long-poll permits (--max-long-polls-per-client) until it ends.
        let permit = if LONG_LIVED.contains(&req.uri().path()) {
            let client = req.extensions().get::<crate::http::ClientAddr>();
            match self.server.client_limits.admit_long_poll(client) {
                Ok(p) => p,
                Err(_) => return too_many_streams().into_http(),
            }
        } else {
            None
        };
        let answer = CALLER.scope(who, self.dispatch(req)).await;
        match permit {
            None => answer,
            Some(permit) => answer.map(|body| {
                tonic::body::Body::new(http_body_util::BodyExt::map_frame(body, move |f| {
                    let _held = &permit;
                    f
                }))
            }),
        }
    }

    async fn dispatch(&self, req: Request<Incoming>) -> Response<tonic::body::Body> {
        let service = req.uri().path().trim_start_matches('/');
        let service = service.split('/').next().unwrap_or_default();
        let answer = match service {
            "etcdserverpb.Auth" => self.auth.clone().call(req).await,
            "etcdserverpb.KV" => self.kv.clone().call(req).await,
            "etcdserverpb.Maintenance" => self.maintenance.clone().call(req).await,
            "etcdserverpb.Cluster" => self.cluster.clone().call(req).await,
            "etcdserverpb.Lease" => self.lease.clone().call(req).await,
            "etcdserverpb.Watch" => self.watch.clone().call(req).await,
            "v3lockpb.Lock" => self.lock.clone().call(req).await,
            "v3electionpb.Election" => self.election.clone().call(req).await,
            _ => Ok(tonic::Status::unimplemented(format!("unknown service {service}")).into_http()),
        };
        match answer {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}

/// The streaming calls a client keeps open for as long as it likes.
const LONG_LIVED: &[&str] = &[
    "/etcdserverpb.Watch/Watch",
    "/etcdserverpb.Lease/LeaseKeepAlive",
    "/v3electionpb.Election/Observe",
];

/// A client at its cap of open streams.
pub(crate) fn too_many_streams() -> tonic::Status {
    status(V3Error::TooManyStreams)
}

/// The token a client's call carries: etcd's clients send it as gRPC metadata "token",
/// the gateway's as the Authorization header.
pub(crate) fn token(headers: &hyper::HeaderMap) -> Option<&str> {
    headers
        .get("token")
        .or_else(|| headers.get(hyper::header::AUTHORIZATION))
        .and_then(|v| v.to_str().ok())
}

/// A v3 error as its gRPC status: etcd's code and exact message.
pub(crate) fn status(e: V3Error) -> tonic::Status {
    tonic::Status::new(tonic::Code::from(e.grpc_code()), e.message())
}

/// A member-level failure (stopped, timed out) as its gRPC status.
pub(crate) fn member_status(e: crate::error::Error) -> tonic::Status {
    status(V3Error::from(e))
}
