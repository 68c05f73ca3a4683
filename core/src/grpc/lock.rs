//! v3lockpb.Lock and v3electionpb.Election: etcd's concurrency recipes as services.

use crate::pb::v3electionpb::{
    election_server::Election, CampaignRequest, CampaignResponse, LeaderRequest, LeaderResponse,
    ProclaimRequest, ProclaimResponse, ResignRequest, ResignResponse,
};
use crate::pb::v3lockpb::{
    lock_server::Lock, LockRequest, LockResponse, UnlockRequest, UnlockResponse,
};
use crate::recipes;
use crate::server::Server;
use std::sync::Arc;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

pub(crate) struct LockService(pub Arc<Server>);

/// One unary call: the recipe's answer, or its error as etcd's services give it: they make
/// their calls as a client of the member, and pass a failed call's error on with its
/// message and code UNKNOWN.
macro_rules! recipe {
    ($server:expr, $r:ident, $call:ident) => {
        recipes::$call(&$server, $r.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| Status::unknown(e.message()))
    };
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, r: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        recipe!(self.0, r, lock)
    }

    async fn unlock(&self, r: Request<UnlockRequest>) -> Result<Response<UnlockResponse>, Status> {
        recipe!(self.0, r, unlock)
    }
}

pub(crate) struct ElectionService(pub Arc<Server>);

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        r: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        recipe!(self.0, r, campaign)
    }

    async fn proclaim(
        &self,
        r: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        recipe!(self.0, r, proclaim)
    }

    async fn leader(&self, r: Request<LeaderRequest>) -> Result<Response<LeaderResponse>, Status> {
        recipe!(self.0, r, leader)
    }

    /// Every proclamation, from the current leader's on, until the client goes.
    async fn observe(
        &self,
        r: Request<LeaderRequest>,
    ) -> Result<Response<BoxStream<LeaderResponse>>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let server = self.0.clone();
        let observer = tokio::spawn(recipes::observe(server.clone(), r.into_inner().name, tx));
        // The observer ends once nobody reads what it sends (the stream is dropped).
        let answers = futures_util::stream::unfold(
            (server, rx, AbortOnDrop(observer)),
            |(server, mut rx, observer)| async move {
                let kv = rx.recv().await?;
                let answer = LeaderResponse {
                    header: server.v3_header(None),
                    kv: Some(kv),
                };
                Some((Ok(answer), (server, rx, observer)))
            },
        );
        Ok(Response::new(Box::pin(answers)))
    }

    async fn resign(&self, r: Request<ResignRequest>) -> Result<Response<ResignResponse>, Status> {
        recipe!(self.0, r, resign)
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
