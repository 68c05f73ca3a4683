//! What a member answers to the v3 KV API, for gRPC and in-process clients alike: requests
//! checked as etcd's gRPC layer checks them, writes through raft, linearizable reads after
//! a ReadIndex, serializable ones from the local store.

use super::Server;
use crate::apply::v3::{self as semantics, V3Response};
use crate::error::V3Error;
use crate::mvcc::KeyRange;
use crate::pb::etcdrs::{v3_request::Request, AuthHeader, V3Request};
use crate::pb::etcdserverpb::{
    alarm_request::AlarmAction, request_op, AlarmMember, AlarmRequest, AlarmResponse, AlarmType,
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseHeader, TxnRequest, TxnResponse,
};
use crate::raft::RaftMsg;
use crate::request::{Op, RaftRequest};
use crate::wait::Outcome;
use prost::Message as _;
use std::collections::HashSet;

/// etcd's --max-request-bytes, --max-txn-ops and --quota-backend-bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V3Limits {
    pub max_request_bytes: usize,
    pub max_txn_ops: usize,
    /// None: no quota.
    pub quota_backend_bytes: Option<u64>,
}

/// What etcd counts for a key-value beyond its key and value, and for a lease.
const KV_OVERHEAD: u64 = 256;
pub(super) const LEASE_COST: u64 = 64;

fn put_cost(p: &PutRequest) -> u64 {
    KV_OVERHEAD + p.key.len() as u64 + p.value.len() as u64
}

fn txn_cost(t: &TxnRequest) -> u64 {
    t.success
        .iter()
        .chain(&t.failure)
        .map(|op| match &op.request {
            Some(request_op::Request::RequestPut(p)) => put_cost(p),
            Some(request_op::Request::RequestTxn(t)) => txn_cost(t),
            _ => 0,
        })
        .sum()
}

impl Server {
    /// A response header: this member, this cluster, raft's term, and the store's revision
    /// unless the request's own result set one.
    pub fn v3_header(&self, header: Option<ResponseHeader>) -> Option<ResponseHeader> {
        let mut h = header.unwrap_or_default();
        h.cluster_id = self.cluster_id;
        h.member_id = self.member_id;
        h.raft_term = self.raft_term();
        if h.revision == 0 {
            h.revision = self.read_mvcc().current_revision();
        }
        Some(h)
    }

    pub(super) fn read_mvcc(&self) -> std::sync::RwLockReadGuard<'_, crate::mvcc::Mvcc> {
        self.mvcc.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The v3 store's file size and revision.
    pub fn v3_store_stats(&self) -> (u64, i64) {
        let m = self.read_mvcc();
        (m.db_size(), m.current_revision())
    }

    /// Close the v3 store's file once the member has stopped applying.
    pub(crate) fn close_v3_store(&self) {
        let mut m = self.mvcc.write().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = m.close() {
            tracing::error!(error = ?e, "could not close the v3 store cleanly; the log replays what it lacks");
        }
    }

    /// Defragment the v3 store's file (this member only, as etcd's).
    pub fn defragment(&self) -> Result<(), V3Error> {
        self.check_serving()?;
        let mut m = self.mvcc.write().unwrap_or_else(|p| p.into_inner());
        Ok(m.defragment()?)
    }

    /// The v3 store's checksum up to `revision` (0: all) and its compaction point.
    pub fn hash_kv(&self, revision: i64) -> Result<(u32, i64), V3Error> {
        self.check_serving()?;
        Ok(self.read_mvcc().hash(revision)?)
    }

    /// A consistent copy of the v3 store (its image), zero-padded to 512-byte pages and
    /// followed by its SHA-256, the layout etcdctl checks in a snapshot it saves.
    pub fn v3_snapshot(&self) -> Result<Vec<u8>, V3Error> {
        use sha2::Digest as _;
        self.check_serving()?;
        let mut image = self.read_mvcc().dump()?;
        image.resize(image.len().div_ceil(512) * 512, 0);
        let sum = sha2::Sha256::digest(&image);
        image.extend_from_slice(&sum);
        Ok(image)
    }

    pub fn v3_limits(&self) -> V3Limits {
        self.v3_limits
    }

    pub(super) async fn v3_serving(&self, linearizable: bool) -> Result<(), V3Error> {
        self.check_serving()?;
        if !self.is_ready() {
            tokio::time::timeout(self.request_timeout, self.ready())
                .await
                .map_err(|_| V3Error::Timeout)?;
        }
        if linearizable {
            self.linearize().await?;
        }
        Ok(())
    }

    pub async fn range(&self, r: RangeRequest) -> Result<RangeResponse, V3Error> {
        check_range(&r)?;
        self.authorize_read(&r.key, &r.range_end)?;
        self.v3_serving(!r.serializable).await?;
        let mut resp = semantics::range(&*self.read_mvcc(), &r)?;
        resp.header = self.v3_header(resp.header);
        Ok(resp)
    }

    pub async fn put(&self, r: PutRequest) -> Result<PutResponse, V3Error> {
        check_put(&r)?;
        self.check_quota(put_cost(&r)).await?;
        match self.propose_v3(Request::Put(r)).await? {
            V3Response::Put(mut resp) => {
                resp.header = self.v3_header(resp.header);
                Ok(resp)
            }
            other => Err(unexpected(other)),
        }
    }

    pub async fn delete_range(
        &self,
        r: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, V3Error> {
        check_delete(&r)?;
        match self.propose_v3(Request::DeleteRange(r)).await? {
            V3Response::DeleteRange(mut resp) => {
                resp.header = self.v3_header(resp.header);
                Ok(resp)
            }
            other => Err(unexpected(other)),
        }
    }

    /// A txn: read-only ones are served here (linearizable unless every range in them is
    /// serializable), the others go through raft.
    pub async fn txn(&self, r: TxnRequest) -> Result<TxnResponse, V3Error> {
        check_txn(&r, self.v3_limits.max_txn_ops)?;
        check_intervals(&r.success)?;
        check_intervals(&r.failure)?;
        let mut resp = if semantics::txn_is_read_only(&r) {
            self.authorize(|a, info| a.check_txn(info, &r))?;
            self.v3_serving(!txn_is_serializable(&r)).await?;
            semantics::read_txn(&*self.read_mvcc(), &r)?
        } else {
            let cost = txn_cost(&r);
            if cost > 0 {
                self.check_quota(cost).await?;
            }
            match self.propose_v3(Request::Txn(r)).await? {
                V3Response::Txn(resp) => resp,
                other => return Err(unexpected(other)),
            }
        };
        resp.header = self.v3_header(resp.header);
        Ok(resp)
    }

    pub async fn compact(&self, r: CompactionRequest) -> Result<CompactionResponse, V3Error> {
        match self.propose_v3(Request::Compaction(r)).await? {
            V3Response::Compaction(mut resp) => {
                resp.header = self.v3_header(resp.header);
                Ok(resp)
            }
            other => Err(unexpected(other)),
        }
    }

    /// etcd's quota check before a write that takes space: past the quota the NOSPACE
    /// alarm is raised (for every member, through raft) and the write refused.
    pub(super) async fn check_quota(&self, cost: u64) -> Result<(), V3Error> {
        let Some(quota) = self.v3_limits.quota_backend_bytes else {
            return Ok(());
        };
        if self.read_mvcc().db_size() + cost <= quota {
            return Ok(());
        }
        tracing::warn!(
            quota,
            "the v3 store is past its quota; raising the NOSPACE alarm"
        );
        let raise = AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: self.member_id,
            alarm: AlarmType::Nospace as i32,
        };
        let _ = self.propose_v3(Request::Alarm(raise)).await;
        Err(V3Error::NoSpace)
    }

    /// List alarms, or raise or disarm one (through raft).
    pub async fn alarm(&self, r: AlarmRequest) -> Result<AlarmResponse, V3Error> {
        let mut resp = match AlarmAction::try_from(r.action) {
            Ok(AlarmAction::Get) | Err(_) => {
                self.check_serving()?;
                self.authorize_user()?;
                let alarms = self
                    .read_mvcc()
                    .alarms()
                    .iter()
                    .filter(|(m, a)| {
                        (r.member_id == 0 || *m == r.member_id)
                            && (r.alarm == AlarmType::None as i32 || *a == r.alarm)
                    })
                    .map(|(m, a)| AlarmMember {
                        member_id: *m,
                        alarm: *a,
                    })
                    .collect();
                AlarmResponse {
                    header: None,
                    alarms,
                }
            }
            Ok(_) => match self.propose_v3(Request::Alarm(r)).await? {
                V3Response::Alarm(resp) => resp,
                other => return Err(unexpected(other)),
            },
        };
        // etcd 3.4 answers alarm requests without a header.
        resp.header = None;
        Ok(resp)
    }

    /// The alarms raised, as etcd lists them in a status answer.
    pub fn alarm_errors(&self) -> Vec<String> {
        self.read_mvcc()
            .alarms()
            .iter()
            .map(|(m, a)| {
                let name = AlarmType::try_from(*a).map_or("UNKNOWN", |t| t.as_str_name());
                format!("memberID:{m} alarm:{name} ")
            })
            .collect()
    }

    /// Put a v3 write through raft; its result as applied here.
    pub(super) async fn propose_v3(&self, req: Request) -> Result<V3Response, V3Error> {
        let auth = super::auth::caller().map(|c| AuthHeader {
            username: c.username,
            auth_revision: c.revision,
        });
        let data = V3Request {
            request: Some(req),
            auth,
        }
        .encode_to_vec();
        if data.len() > self.v3_limits.max_request_bytes {
            return Err(V3Error::RequestTooLarge);
        }
        self.v3_serving(false).await?;
        let outcome = self
            .replicate(|id| {
                RaftMsg::Propose(
                    RaftRequest {
                        id,
                        op: Op::V3(data),
                    }
                    .encode(),
                )
            })
            .await?;
        match outcome {
            Outcome::V3(r) => r,
            Outcome::V2(_) => Err(V3Error::Internal(
                "etcdserver: a v2 result for a v3 request".into(),
            )),
        }
    }
}

pub(super) fn unexpected(r: V3Response) -> V3Error {
    V3Error::Internal(format!("etcdserver: unexpected result {r:?}"))
}

fn txn_is_serializable(t: &TxnRequest) -> bool {
    t.success
        .iter()
        .chain(&t.failure)
        .all(|op| match &op.request {
            Some(request_op::Request::RequestRange(r)) => r.serializable,
            Some(request_op::Request::RequestTxn(t)) => txn_is_serializable(t),
            _ => true,
        })
}

// etcd's checks in its gRPC layer (v3rpc/key.go), before anything reaches raft.

fn check_range(r: &RangeRequest) -> Result<(), V3Error> {
    if r.key.is_empty() {
        return Err(V3Error::EmptyKey);
    }
    Ok(())
}

fn check_put(r: &PutRequest) -> Result<(), V3Error> {
    if r.key.is_empty() {
        return Err(V3Error::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(V3Error::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(V3Error::LeaseProvided);
    }
    Ok(())
}

fn check_delete(r: &DeleteRangeRequest) -> Result<(), V3Error> {
    if r.key.is_empty() {
        return Err(V3Error::EmptyKey);
    }
    Ok(())
}

fn check_txn(t: &TxnRequest, max_ops: usize) -> Result<(), V3Error> {
    let ops = t.compare.len().max(t.success.len()).max(t.failure.len());
    if ops > max_ops {
        return Err(V3Error::TooManyOps);
    }
    if t.compare.iter().any(|c| c.key.is_empty()) {
        return Err(V3Error::EmptyKey);
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.request {
            Some(request_op::Request::RequestRange(r)) => check_range(r)?,
            Some(request_op::Request::RequestPut(r)) => check_put(r)?,
            Some(request_op::Request::RequestDeleteRange(r)) => check_delete(r)?,
            Some(request_op::Request::RequestTxn(t)) => check_txn(t, max_ops - ops)?,
            // An empty operation.
            None => return Err(V3Error::KeyNotFound),
        }
    }
    Ok(())
}

/// No key is put twice, or put and deleted, on one path through a txn (etcd's
/// checkIntervals): the puts of one branch, and the deletes they could collide with.
fn check_intervals(ops: &[RequestOp]) -> Result<(HashSet<&[u8]>, Vec<KeyRange<'_>>), V3Error> {
    let mut dels: Vec<KeyRange<'_>> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(request_op::Request::RequestDeleteRange(d)) => Some(deleted_keys(d)),
            _ => None,
        })
        .collect();
    let mut puts: HashSet<&[u8]> = HashSet::new();
    let deleted = |dels: &[KeyRange<'_>], k: &[u8]| dels.iter().any(|d| d.contains(k));
    for op in ops {
        let Some(request_op::Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (then_puts, then_dels) = check_intervals(&t.success)?;
        let (else_puts, else_dels) = check_intervals(&t.failure)?;
        for k in &then_puts {
            if puts.contains(k) || deleted(&dels, k) {
                return Err(V3Error::DuplicateKey);
            }
            puts.insert(k);
        }
        for k in &else_puts {
            // The two branches exclude each other: the same key in both is fine.
            if puts.contains(k) && !then_puts.contains(k) || deleted(&dels, k) {
                return Err(V3Error::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.extend(then_dels);
        dels.extend(else_dels);
    }
    for op in ops {
        let Some(request_op::Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.contains(&p.key[..]) || deleted(&dels, &p.key) {
            return Err(V3Error::DuplicateKey);
        }
        puts.insert(&p.key);
    }
    Ok((puts, dels))
}

/// The keys a delete names, as etcd's interval check sees them: "\0" as range_end is the
/// literal interval [key, "\0"), not "every key from key on".
fn deleted_keys(d: &DeleteRangeRequest) -> KeyRange<'_> {
    if d.range_end.is_empty() {
        KeyRange::Key(&d.key)
    } else {
        KeyRange::Between(&d.key, &d.range_end)
    }
}
