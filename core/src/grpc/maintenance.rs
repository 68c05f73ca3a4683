//! etcdserverpb.Maintenance: what `etcdctl endpoint status` and friends ask.

use super::status;
use crate::pb::etcdserverpb::{
    maintenance_server::Maintenance, AlarmRequest, AlarmResponse, StatusRequest, StatusResponse,
};
use crate::server::Server;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub(crate) struct MaintenanceService(pub Arc<Server>);

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let server = &self.0;
        if let Some(e) = server.failure() {
            return Err(super::member_status(e));
        }
        let (db_size, _) = server.v3_store_stats();
        Ok(Response::new(StatusResponse {
            header: server.v3_header(None),
            version: server.version().server,
            db_size: db_size as i64,
            leader: server.leader_id(),
            raft_index: server.raft_index(),
            raft_term: server.raft_term(),
            raft_applied_index: server.applied_index(),
            errors: Vec::new(),
            db_size_in_use: db_size as i64,
            is_learner: false,
        }))
    }

    /// No alarm is raised yet (the space quota comes with --quota-backend-bytes): the list
    /// is empty and disarming changes nothing; raising one by hand is not served.
    async fn alarm(&self, r: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        use crate::pb::etcdserverpb::alarm_request::AlarmAction;
        if r.get_ref().action == AlarmAction::Activate as i32 {
            return Err(Status::unimplemented(
                "etcdrs does not raise alarms on request yet",
            ));
        }
        let server = &self.0;
        if let Some(e) = server.failure() {
            return Err(status(e.into()));
        }
        Ok(Response::new(AlarmResponse {
            header: server.v3_header(None),
            alarms: Vec::new(),
        }))
    }
}
