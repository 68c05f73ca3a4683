//! etcdserverpb.Maintenance: what `etcdctl endpoint status` and friends ask.

use super::status;
use crate::pb::etcdserverpb::{
    maintenance_server::Maintenance, AlarmRequest, AlarmResponse, DefragmentRequest,
    DefragmentResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse, SnapshotRequest,
    SnapshotResponse, StatusRequest, StatusResponse,
};
use tonic::codegen::BoxStream;

/// Snapshot chunks, as etcd sends them.
const SNAPSHOT_CHUNK: usize = 32 * 1024;
use crate::error::V3Error;
use crate::server::Server;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub(crate) struct MaintenanceService(pub Arc<Server>);

/// A call only root may make, refused as etcd 3.4's maintenance server refuses it: with
/// its auth package's own error text and code UNKNOWN.
fn refused(e: V3Error) -> Status {
    match e {
        V3Error::UserEmpty => Status::unknown("auth: user name is empty"),
        V3Error::PermissionDenied => Status::unknown("auth: permission denied"),
        V3Error::AuthOldRevision => Status::unknown("auth: revision in header is old"),
        other => status(other),
    }
}

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
            errors: server.alarm_errors(),
            db_size_in_use: db_size as i64,
            is_learner: false,
        }))
    }

    /// List alarms (etcdctl alarm list), or raise or disarm one (alarm disarm).
    async fn alarm(&self, r: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        self.0
            .alarm(r.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn defragment(
        &self,
        _: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.0.authorize_admin().map_err(refused)?;
        let server = self.0.clone();
        tokio::task::spawn_blocking(move || server.defragment())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(status)?;
        // etcd 3.4 answers a defragment without a header.
        Ok(Response::new(DefragmentResponse { header: None }))
    }

    async fn hash(&self, _: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        self.0.authorize_admin().map_err(refused)?;
        let (hash, _) = self.0.hash_kv(0).map_err(status)?;
        Ok(Response::new(HashResponse {
            header: self.0.v3_header(None),
            hash,
        }))
    }

    async fn hash_kv(&self, r: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        self.0.authorize_admin().map_err(refused)?;
        let (hash, compacted) = self.0.hash_kv(r.into_inner().revision).map_err(status)?;
        Ok(Response::new(HashKvResponse {
            header: self.0.v3_header(None),
            hash,
            // etcd says -1 before the first compaction.
            compact_revision: if compacted == 0 { -1 } else { compacted },
        }))
    }

    /// The v3 store's image (etcdrs's format, not a bbolt file) followed by its SHA-256,
    /// in chunks that say how much is left.
    async fn snapshot(
        &self,
        _: Request<SnapshotRequest>,
    ) -> Result<Response<BoxStream<SnapshotResponse>>, Status> {
        self.0.authorize_admin().map_err(refused)?;
        let server = self.0.clone();
        let image = tokio::task::spawn_blocking(move || server.v3_snapshot())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(status)?;
        let image = bytes::Bytes::from(image);
        let header = self.0.v3_header(None);
        let total = image.len();
        let chunks: Vec<Result<SnapshotResponse, Status>> = (0..total)
            .step_by(SNAPSHOT_CHUNK)
            .map(|at| {
                let end = (at + SNAPSHOT_CHUNK).min(total);
                Ok(SnapshotResponse {
                    header,
                    remaining_bytes: (total - end) as u64,
                    blob: image.slice(at..end),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures_util::stream::iter(chunks))))
    }
}
