//! etcdserverpb.KV.

use super::status;
use crate::pb::etcdserverpb::{
    kv_server::Kv, CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
    PutRequest, PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use crate::server::Server;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub(crate) struct KvService(pub Arc<Server>);

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, r: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        self.0
            .range(r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn put(&self, r: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.0
            .put(r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn delete_range(
        &self,
        r: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        self.0
            .delete_range(r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn txn(&self, r: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        self.0
            .txn(r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn compact(
        &self,
        r: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        self.0
            .compact(r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }
}
