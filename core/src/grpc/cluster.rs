//! etcdserverpb.Cluster: the same membership as /v2/members.

use super::{member_status, status};
use crate::error::V3Error;
use crate::identity::Member as ClusterMember;
use crate::pb::etcdserverpb::{
    cluster_server::Cluster, Member, MemberAddRequest, MemberAddResponse, MemberListRequest,
    MemberListResponse, MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest,
    MemberRemoveResponse, MemberUpdateRequest, MemberUpdateResponse, ResponseHeader,
};
use crate::server::Server;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub(crate) struct ClusterService(pub Arc<Server>);

fn member(m: ClusterMember) -> Member {
    Member {
        id: m.id,
        name: m.name,
        peer_ur_ls: m.peer_urls,
        client_ur_ls: m.client_urls,
        is_learner: false,
    }
}

impl ClusterService {
    /// etcd's cluster answers carry no revision: membership is not in the key space.
    fn header(&self) -> Option<ResponseHeader> {
        self.0
            .v3_header(None)
            .map(|h| ResponseHeader { revision: 0, ..h })
    }

    fn members(&self) -> Vec<Member> {
        self.0.members().into_iter().map(member).collect()
    }

    fn check_urls(urls: &[String]) -> Result<(), Status> {
        if urls.is_empty() || crate::membership::invalid_peer_url(urls).is_some() {
            return Err(status(V3Error::MemberBadUrls));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        r: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        self.0.authorize_admin().map_err(status)?;
        let r = r.into_inner();
        if r.is_learner {
            return Err(status(V3Error::Internal(
                "etcdserver: learner members are not supported by etcdrs".into(),
            )));
        }
        Self::check_urls(&r.peer_ur_ls)?;
        let added = self
            .0
            .add_member(r.peer_ur_ls)
            .await
            .map_err(member_status)?;
        Ok(Response::new(MemberAddResponse {
            header: self.header(),
            member: Some(member(added)),
            members: self.members(),
        }))
    }

    async fn member_remove(
        &self,
        r: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        self.0.authorize_admin().map_err(status)?;
        self.0
            .remove_member(r.into_inner().id)
            .await
            .map_err(member_status)?;
        Ok(Response::new(MemberRemoveResponse {
            header: self.header(),
            members: self.members(),
        }))
    }

    async fn member_update(
        &self,
        r: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        self.0.authorize_admin().map_err(status)?;
        let r = r.into_inner();
        Self::check_urls(&r.peer_ur_ls)?;
        self.0
            .update_member(r.id, r.peer_ur_ls)
            .await
            .map_err(member_status)?;
        Ok(Response::new(MemberUpdateResponse {
            header: self.header(),
            members: self.members(),
        }))
    }

    async fn member_list(
        &self,
        _: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members: self.members(),
        }))
    }

    /// Every etcdrs member votes; there is no learner to promote.
    async fn member_promote(
        &self,
        r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        self.0.authorize_admin().map_err(status)?;
        let id = r.into_inner().id;
        if self.0.members().iter().any(|m| m.id == id) {
            return Err(Status::failed_precondition(
                "etcdserver: can only promote a learner member",
            ));
        }
        Err(status(V3Error::MemberNotFound))
    }
}
