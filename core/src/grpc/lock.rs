//! v3lockpb.Lock and v3electionpb.Election: etcd's concurrency recipes as services.

use super::status;
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

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, r: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let r = r.into_inner();
        let (key, header) = recipes::lock(&self.0, r.name, r.lease)
            .await
            .map_err(status)?;
        Ok(Response::new(LockResponse {
            header: self.0.v3_header(header),
            key,
        }))
    }

    async fn unlock(&self, r: Request<UnlockRequest>) -> Result<Response<UnlockResponse>, Status> {
        recipes::unlock(&self.0, r.into_inner().key)
            .await
            .map_err(status)?;
        Ok(Response::new(UnlockResponse {
            header: self.0.v3_header(None),
        }))
    }
}

pub(crate) struct ElectionService(pub Arc<Server>);

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        r: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        let r = r.into_inner();
        let leader = recipes::campaign(&self.0, r.name, r.lease, r.value)
            .await
            .map_err(status)?;
        Ok(Response::new(CampaignResponse {
            header: self.0.v3_header(None),
            leader: Some(leader),
        }))
    }

    async fn proclaim(
        &self,
        r: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        let r = r.into_inner();
        let leader = r.leader.unwrap_or_default();
        recipes::proclaim(&self.0, &leader, r.value)
            .await
            .map_err(status)?;
        Ok(Response::new(ProclaimResponse {
            header: self.0.v3_header(None),
        }))
    }

    async fn leader(&self, r: Request<LeaderRequest>) -> Result<Response<LeaderResponse>, Status> {
        let kv = recipes::leader(&self.0, &r.into_inner().name)
            .await
            .map_err(status)?;
        Ok(Response::new(LeaderResponse {
            header: self.0.v3_header(None),
            kv: Some(kv),
        }))
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
        let leader = r.into_inner().leader.unwrap_or_default();
        recipes::resign(&self.0, &leader).await.map_err(status)?;
        Ok(Response::new(ResignResponse {
            header: self.0.v3_header(None),
        }))
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
