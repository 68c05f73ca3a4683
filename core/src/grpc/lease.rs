//! etcdserverpb.Lease.

use super::status;
use crate::pb::etcdserverpb::{
    lease_server::Lease, LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest,
    LeaseKeepAliveResponse, LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use crate::server::Server;
use futures_util::{Stream, StreamExt as _};
use std::sync::Arc;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

pub(crate) struct LeaseService(pub Arc<Server>);

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        r: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        self.0
            .lease_grant(r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn lease_revoke(
        &self,
        r: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        self.0
            .lease_revoke(r.into_inner().id)
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn lease_keep_alive(
        &self,
        r: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<BoxStream<LeaseKeepAliveResponse>>, Status> {
        Ok(Response::new(keep_alive_stream(
            self.0.clone(),
            r.into_inner(),
        )))
    }

    async fn lease_time_to_live(
        &self,
        r: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        self.0
            .lease_time_to_live(r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn lease_leases(
        &self,
        _: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.0
            .lease_leases()
            .await
            .map(Response::new)
            .map_err(status)
    }
}

/// One answer per keep-alive request, in order; a lease that is gone answers TTL 0 (as etcd)
/// and the stream goes on. The stream ends when the client closes its side.
pub(crate) fn keep_alive_stream(
    server: Arc<Server>,
    requests: impl Stream<Item = Result<LeaseKeepAliveRequest, Status>> + Send + Unpin + 'static,
) -> BoxStream<LeaseKeepAliveResponse> {
    // The stream's client, for each renewal it asks for.
    let who = crate::server::caller();
    Box::pin(futures_util::stream::unfold(
        (server, requests, who),
        |(server, mut requests, who)| async move {
            let req = match requests.next().await? {
                Ok(req) => req,
                Err(e) => return Some((Err(e), (server, requests, who))),
            };
            let renewed = match &who {
                Some(w) => {
                    crate::server::CALLER
                        .scope(w.clone(), server.lease_keep_alive(req.id))
                        .await
                }
                None => server.lease_keep_alive(req.id).await,
            };
            let answer = match renewed {
                Ok(resp) => Ok(resp),
                Err(crate::error::V3Error::LeaseNotFound) => Ok(LeaseKeepAliveResponse {
                    header: server.v3_header(None),
                    id: req.id,
                    ttl: 0,
                }),
                Err(e) => Err(status(e)),
            };
            Some((answer, (server, requests, who)))
        },
    ))
}
