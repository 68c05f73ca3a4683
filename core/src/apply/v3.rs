//! What v3 requests mean (etcd's applierV3backend): Range, Put, DeleteRange, Txn and
//! Compaction, LeaseGrant and LeaseRevoke over the mvcc store. Writes run here as raft entries are applied; reads (and
//! read-only txns) run on the committed store, the same code either way.

use crate::auth::{Access, AuthInfo, AuthStore};
use crate::error::V3Error;
use crate::mvcc::{KeyRange, Mvcc, MvccError, RangeOptions, ReadView, WriteTxn};
use crate::pb::etcdrs::{v3_request::Request, AuthHeader};
use crate::pb::etcdserverpb::{
    alarm_request::AlarmAction, compare, range_request, request_op, response_op, AlarmMember,
    AlarmResponse, AlarmType, CompactionResponse, Compare, DeleteRangeRequest, DeleteRangeResponse,
    LeaseGrantResponse, LeaseRevokeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use crate::pb::mvccpb::{Event, KeyValue};

/// The result of a v3 write, as applied.
#[derive(Debug, Clone, PartialEq)]
pub enum V3Response {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compaction(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    Alarm(AlarmResponse),
    /// Any auth change (each answers with a header alone).
    Auth(Option<ResponseHeader>),
}

impl From<MvccError> for V3Error {
    fn from(e: MvccError) -> V3Error {
        match e {
            MvccError::Compacted => V3Error::Compacted,
            MvccError::FutureRev => V3Error::FutureRev,
            MvccError::Backend(m) => V3Error::Backend(m),
        }
    }
}

pub(crate) fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

/// A range read, with etcd's sorting, filters, limit and `more`.
pub fn range(view: &impl ReadView, r: &RangeRequest) -> Result<RangeResponse, V3Error> {
    use range_request::{SortOrder, SortTarget};
    let filtered = r.min_mod_revision != 0
        || r.max_mod_revision != 0
        || r.min_create_revision != 0
        || r.max_create_revision != 0;
    // Sorting or filtering needs every key first; otherwise one past the limit says `more`.
    let limit = if r.sort_order != SortOrder::None as i32 || filtered || r.limit <= 0 {
        0
    } else {
        r.limit as usize + 1
    };
    let rr = view.range(
        KeyRange::new(&r.key, &r.range_end),
        RangeOptions {
            limit,
            rev: r.revision,
            count_only: r.count_only,
        },
    )?;
    let mut kvs = rr.kvs;
    if filtered {
        kvs.retain(|kv| {
            !(r.max_mod_revision != 0 && kv.mod_revision > r.max_mod_revision
                || r.min_mod_revision != 0 && kv.mod_revision < r.min_mod_revision
                || r.max_create_revision != 0 && kv.create_revision > r.max_create_revision
                || r.min_create_revision != 0 && kv.create_revision < r.min_create_revision)
        });
    }
    let target = SortTarget::try_from(r.sort_target).unwrap_or(SortTarget::Key);
    let mut order = SortOrder::try_from(r.sort_order).unwrap_or(SortOrder::None);
    // The store returns keys ascending; any other target sorts ascending by default.
    if target != SortTarget::Key && order == SortOrder::None {
        order = SortOrder::Ascend;
    }
    if order != SortOrder::None {
        let key = |kv: &KeyValue| -> (i64, bytes::Bytes) {
            match target {
                SortTarget::Key => (0, kv.key.clone()),
                SortTarget::Version => (kv.version, bytes::Bytes::new()),
                SortTarget::Create => (kv.create_revision, bytes::Bytes::new()),
                SortTarget::Mod => (kv.mod_revision, bytes::Bytes::new()),
                SortTarget::Value => (0, kv.value.clone()),
            }
        };
        kvs.sort_by_key(key);
        if order == SortOrder::Descend {
            kvs.reverse();
        }
    }
    let mut more = false;
    if r.limit > 0 && kvs.len() > r.limit as usize {
        kvs.truncate(r.limit as usize);
        more = true;
    }
    if r.keys_only {
        for kv in &mut kvs {
            kv.value = bytes::Bytes::new();
        }
    }
    Ok(RangeResponse {
        header: header(rr.rev),
        kvs,
        more,
        count: rr.count as i64,
    })
}

/// Whether a txn only reads (it is then served without raft).
pub fn txn_is_read_only(t: &TxnRequest) -> bool {
    t.success
        .iter()
        .chain(&t.failure)
        .all(|op| match &op.request {
            Some(request_op::Request::RequestRange(_)) => true,
            Some(request_op::Request::RequestTxn(t)) => txn_is_read_only(t),
            _ => false,
        })
}

/// A read-only txn on the committed store.
pub fn read_txn(view: &impl ReadView, t: &TxnRequest) -> Result<TxnResponse, V3Error> {
    let path = txn_path(view, t);
    check_ranges(view, t, &path)?;
    let mut resp = TxnResponse::default();
    run_txn(&mut ReadOnly(view), t, &path, &mut 0, &mut resp)?;
    resp.header = header(view.current_revision());
    Ok(resp)
}

/// Apply one replicated write; the events are its changes, for watchers.
pub fn apply(
    mvcc: &mut Mvcc,
    req: Request,
    who: Option<&AuthHeader>,
) -> (Result<V3Response, V3Error>, Vec<Event>) {
    let mut txn = match mvcc.write() {
        Ok(t) => t,
        Err(e) => return (Err(e.into()), Vec::new()),
    };
    let r = match who {
        Some(who) => authorize(&txn, who, &req),
        None => Ok(()),
    }
    .and_then(|()| apply_in(&mut txn, req));
    (r, txn.end())
}

/// Whether the client behind a request may make it, against the auth state as this entry
/// finds it (etcd's authApplierV3): every member decides alike. Requests without a client
/// (the member's own) need nothing.
fn authorize(txn: &WriteTxn<'_>, who: &AuthHeader, req: &Request) -> Result<(), V3Error> {
    let auth = txn.auth();
    if !auth.enabled() {
        return Ok(());
    }
    let info = AuthInfo {
        username: who.username.clone(),
        revision: who.auth_revision,
    };
    match req {
        Request::Put(p) => auth.check_put(&info, p),
        Request::DeleteRange(d) => auth.check_delete(&info, d),
        Request::Txn(t) => auth.check_txn(&info, t),
        // Revoking a lease deletes its keys: it needs write on each (and, as every lease
        // call here, a user even when there are none).
        Request::LeaseRevoke(r) => {
            auth.check_user(&info)?;
            txn.lease_keys(r.id)
                .iter()
                .try_for_each(|k| auth.check_permitted(&info, k, &[], Access::Write))
        }
        // etcd checks none of these; etcdrs wants at least a user.
        Request::Compaction(_) | Request::LeaseGrant(_) | Request::Alarm(_) => {
            auth.check_user(&info).map(|_| ())
        }
        // A token was earned with a password.
        Request::Authenticate(_) => Ok(()),
        // Enabling again (a no-op) is for root, as every other auth change.
        Request::AuthEnable(_)
        | Request::AuthDisable(_)
        | Request::UserAdd(_)
        | Request::UserDelete(_)
        | Request::UserChangePassword(_)
        | Request::UserGrantRole(_)
        | Request::UserRevokeRole(_)
        | Request::RoleAdd(_)
        | Request::RoleDelete(_)
        | Request::RoleGrantPermission(_)
        | Request::RoleRevokePermission(_) => auth.check_admin(&info),
    }
}

/// Apply one auth change to a copy of the auth state, which replaces it if it succeeds.
fn auth_change(
    txn: &mut WriteTxn<'_>,
    change: impl FnOnce(&mut AuthStore) -> Result<(), V3Error>,
) -> Result<V3Response, V3Error> {
    let mut auth = txn.auth().clone();
    change(&mut auth)?;
    txn.set_auth(auth)?;
    Ok(V3Response::Auth(header(txn.current_revision())))
}

/// Whether a txn puts anything, on either branch (etcd counts its cost).
fn txn_puts(t: &TxnRequest) -> bool {
    t.success
        .iter()
        .chain(&t.failure)
        .any(|op| match &op.request {
            Some(request_op::Request::RequestPut(_)) => true,
            Some(request_op::Request::RequestTxn(t)) => txn_puts(t),
            _ => false,
        })
}

fn apply_in(txn: &mut WriteTxn<'_>, req: Request) -> Result<V3Response, V3Error> {
    // With a NOSPACE alarm raised, nothing that takes space is applied (etcd's capped
    // applier): deletes, compaction and revokes still are, so space can be freed.
    let capped = txn.has_alarm(AlarmType::Nospace as i32);
    if capped {
        match &req {
            Request::Put(_) | Request::LeaseGrant(_) => return Err(V3Error::NoSpace),
            Request::Txn(t) if txn_puts(t) => return Err(V3Error::NoSpace),
            _ => {}
        }
    }
    Ok(match req {
        Request::Put(p) => {
            check_put(txn, &p)?;
            V3Response::Put(put(txn, &p)?)
        }
        Request::DeleteRange(d) => V3Response::DeleteRange(delete_range(txn, &d)?),
        Request::Txn(t) => {
            let path = txn_path(&*txn, &t);
            check_puts(txn, &t, &path)?;
            check_ranges(&*txn, &t, &path)?;
            let mut resp = TxnResponse::default();
            run_txn(&mut Writable(txn), &t, &path, &mut 0, &mut resp)?;
            resp.header = header(txn.current_revision());
            V3Response::Txn(resp)
        }
        Request::Compaction(c) => {
            txn.compact(c.revision)?;
            V3Response::Compaction(CompactionResponse {
                header: header(txn.current_revision()),
            })
        }
        Request::LeaseGrant(g) => {
            if !txn.grant_lease(g.id, g.ttl)? {
                return Err(V3Error::LeaseExist);
            }
            V3Response::LeaseGrant(LeaseGrantResponse {
                header: header(txn.current_revision()),
                id: g.id,
                ttl: g.ttl,
                error: String::new(),
            })
        }
        Request::Alarm(a) => {
            let on = match AlarmAction::try_from(a.action) {
                Ok(AlarmAction::Activate) => true,
                Ok(AlarmAction::Deactivate) => false,
                _ => {
                    return Err(V3Error::Internal(
                        "etcdserver: an alarm get in the log".into(),
                    ))
                }
            };
            let changed = txn.set_alarm(a.member_id, a.alarm, on)?;
            V3Response::Alarm(AlarmResponse {
                header: header(txn.current_revision()),
                alarms: if changed {
                    vec![AlarmMember {
                        member_id: a.member_id,
                        alarm: a.alarm,
                    }]
                } else {
                    Vec::new()
                },
            })
        }
        Request::LeaseRevoke(r) => {
            if !txn.revoke_lease(r.id)? {
                return Err(V3Error::LeaseNotFound);
            }
            V3Response::LeaseRevoke(LeaseRevokeResponse {
                header: header(txn.current_revision()),
            })
        }
        Request::AuthEnable(_) => auth_change(txn, AuthStore::enable)?,
        Request::AuthDisable(_) => auth_change(txn, |a| {
            a.disable();
            Ok(())
        })?,
        Request::Authenticate(a) => {
            txn.auth()
                .add_token(&a.name, &a.simple_token, txn.token_ttl())?;
            V3Response::Auth(header(txn.current_revision()))
        }
        Request::UserAdd(r) => auth_change(txn, |a| a.user_add(r))?,
        Request::UserDelete(r) => auth_change(txn, |a| a.user_delete(&r.name))?,
        Request::UserChangePassword(r) => auth_change(txn, |a| a.user_change_password(r))?,
        Request::UserGrantRole(r) => auth_change(txn, |a| a.user_grant_role(r))?,
        Request::UserRevokeRole(r) => auth_change(txn, |a| a.user_revoke_role(r))?,
        Request::RoleAdd(r) => auth_change(txn, |a| a.role_add(&r.name))?,
        Request::RoleDelete(r) => auth_change(txn, |a| a.role_delete(&r.role))?,
        Request::RoleGrantPermission(r) => auth_change(txn, |a| a.role_grant_permission(r))?,
        Request::RoleRevokePermission(r) => auth_change(txn, |a| a.role_revoke_permission(r))?,
    })
}

/// The put's preconditions: what ignore_value and ignore_lease need, and the lease.
fn check_put(view: &impl ReadView, p: &PutRequest) -> Result<(), V3Error> {
    if p.lease != 0 && !view.has_lease(p.lease) {
        return Err(V3Error::LeaseNotFound);
    }
    if (p.ignore_value || p.ignore_lease) && current(view, &p.key)?.is_none() {
        return Err(V3Error::KeyNotFound);
    }
    Ok(())
}

fn current(view: &impl ReadView, key: &[u8]) -> Result<Option<KeyValue>, V3Error> {
    Ok(view
        .range(KeyRange::Key(key), RangeOptions::default())?
        .kvs
        .into_iter()
        .next())
}

fn put(txn: &mut WriteTxn<'_>, p: &PutRequest) -> Result<PutResponse, V3Error> {
    let prev = if p.ignore_value || p.ignore_lease || p.prev_kv {
        current(&*txn, &p.key)?
    } else {
        None
    };
    let value = match (&prev, p.ignore_value) {
        (Some(prev), true) => prev.value.clone(),
        _ => p.value.clone(),
    };
    let lease = match (&prev, p.ignore_lease) {
        (Some(prev), true) => prev.lease,
        _ => p.lease,
    };
    txn.put(p.key.clone(), value, lease)?;
    Ok(PutResponse {
        header: header(txn.current_revision()),
        prev_kv: if p.prev_kv { prev } else { None },
    })
}

fn delete_range(
    txn: &mut WriteTxn<'_>,
    d: &DeleteRangeRequest,
) -> Result<DeleteRangeResponse, V3Error> {
    let keys = KeyRange::new(&d.key, &d.range_end);
    let prev_kvs = if d.prev_kv {
        txn.range(keys, RangeOptions::default())?.kvs
    } else {
        Vec::new()
    };
    let deleted = txn.delete_range(keys)?;
    Ok(DeleteRangeResponse {
        header: header(txn.current_revision()),
        deleted,
        prev_kvs,
    })
}

/// Whether every key in a compare's range passes it (etcd's applyCompare).
fn compare(view: &impl ReadView, c: &Compare) -> bool {
    use compare::{CompareResult, CompareTarget, TargetUnion};
    let Ok(rr) = view.range(KeyRange::new(&c.key, &c.range_end), RangeOptions::default()) else {
        return false;
    };
    let target = CompareTarget::try_from(c.target).unwrap_or(CompareTarget::Version);
    if rr.kvs.is_empty() && target == CompareTarget::Value {
        // A missing key has no value to compare, not even an empty one.
        return false;
    }
    let absent = [KeyValue::default()];
    let kvs = if rr.kvs.is_empty() {
        &absent[..]
    } else {
        &rr.kvs[..]
    };
    kvs.iter().all(|kv| {
        let ord = match (target, &c.target_union) {
            (CompareTarget::Value, Some(TargetUnion::Value(v))) => kv.value[..].cmp(&v[..]),
            (CompareTarget::Value, _) => kv.value[..].cmp(&[][..]),
            (CompareTarget::Version, u) => kv.version.cmp(&int_target(u, target)),
            (CompareTarget::Create, u) => kv.create_revision.cmp(&int_target(u, target)),
            (CompareTarget::Mod, u) => kv.mod_revision.cmp(&int_target(u, target)),
            (CompareTarget::Lease, u) => kv.lease.cmp(&int_target(u, target)),
        };
        match CompareResult::try_from(c.result) {
            Ok(CompareResult::Equal) => ord.is_eq(),
            Ok(CompareResult::NotEqual) => ord.is_ne(),
            Ok(CompareResult::Greater) => ord.is_gt(),
            Ok(CompareResult::Less) => ord.is_lt(),
            Err(_) => true,
        }
    })
}

/// The number a compare holds for its target; 0 when it holds another kind.
fn int_target(u: &Option<compare::TargetUnion>, target: compare::CompareTarget) -> i64 {
    use compare::{CompareTarget as T, TargetUnion as U};
    match (target, u) {
        (T::Version, Some(U::Version(v)))
        | (T::Create, Some(U::CreateRevision(v)))
        | (T::Mod, Some(U::ModRevision(v)))
        | (T::Lease, Some(U::Lease(v))) => *v,
        _ => 0,
    }
}

/// Which branch each txn takes, outer first then nested ones in order, all decided on the
/// store as it was before the txn (etcd's compareToPath).
fn txn_path(view: &impl ReadView, t: &TxnRequest) -> Vec<bool> {
    let ok = t.compare.iter().all(|c| compare(view, c));
    let mut path = vec![ok];
    for op in branch(t, ok) {
        if let Some(request_op::Request::RequestTxn(nested)) = &op.request {
            path.extend(txn_path(view, nested));
        }
    }
    path
}

fn branch(t: &TxnRequest, ok: bool) -> &[RequestOp] {
    if ok {
        &t.success
    } else {
        &t.failure
    }
}

/// Visit every operation on the taken path, nested txns' included, in order.
fn on_path(
    t: &TxnRequest,
    path: &[bool],
    at: &mut usize,
    visit: &mut impl FnMut(&request_op::Request) -> Result<(), V3Error>,
) -> Result<(), V3Error> {
    for op in branch(t, path[*at]) {
        match &op.request {
            Some(request_op::Request::RequestTxn(nested)) => {
                *at += 1;
                on_path(nested, path, at, visit)?;
            }
            Some(other) => visit(other)?,
            None => {}
        }
    }
    Ok(())
}

/// Every put on the taken path meets its preconditions (nothing is written otherwise).
fn check_puts(view: &impl ReadView, t: &TxnRequest, path: &[bool]) -> Result<(), V3Error> {
    on_path(t, path, &mut 0, &mut |op| match op {
        request_op::Request::RequestPut(p) => check_put(view, p),
        _ => Ok(()),
    })
}

/// Every range on the taken path reads a revision the store has.
fn check_ranges(view: &impl ReadView, t: &TxnRequest, path: &[bool]) -> Result<(), V3Error> {
    on_path(t, path, &mut 0, &mut |op| match op {
        request_op::Request::RequestRange(r) if r.revision > view.current_revision() => {
            Err(V3Error::FutureRev)
        }
        request_op::Request::RequestRange(r)
            if r.revision > 0 && r.revision < view.compacted_revision() =>
        {
            Err(V3Error::Compacted)
        }
        _ => Ok(()),
    })
}

/// What a txn's operations run on: a write txn, or the committed store for read-only ones.
trait TxnTarget<'b> {
    type View: ReadView;
    fn view(&self) -> &Self::View;
    fn write(&mut self) -> Option<&mut WriteTxn<'b>>;
}

struct ReadOnly<'a, V>(&'a V);
struct Writable<'a, 'b>(&'a mut WriteTxn<'b>);

impl<'b, V: ReadView> TxnTarget<'b> for ReadOnly<'_, V> {
    type View = V;
    fn view(&self) -> &V {
        self.0
    }
    fn write(&mut self) -> Option<&mut WriteTxn<'b>> {
        None
    }
}

impl<'b> TxnTarget<'b> for Writable<'_, 'b> {
    type View = WriteTxn<'b>;
    fn view(&self) -> &WriteTxn<'b> {
        self.0
    }
    fn write(&mut self) -> Option<&mut WriteTxn<'b>> {
        Some(&mut *self.0)
    }
}

fn run_txn<'b>(
    target: &mut impl TxnTarget<'b>,
    t: &TxnRequest,
    path: &[bool],
    at: &mut usize,
    resp: &mut TxnResponse,
) -> Result<(), V3Error> {
    use request_op::Request as Op;
    use response_op::Response as Out;
    let ok = path[*at];
    resp.succeeded = ok;
    for op in branch(t, ok) {
        let out = match &op.request {
            Some(Op::RequestRange(r)) => Out::ResponseRange(range(target.view(), r)?),
            Some(Op::RequestPut(p)) => match target.write() {
                Some(w) => Out::ResponsePut(put(w, p)?),
                None => return Err(V3Error::Internal("a put in a read-only txn".into())),
            },
            Some(Op::RequestDeleteRange(d)) => match target.write() {
                Some(w) => Out::ResponseDeleteRange(delete_range(w, d)?),
                None => return Err(V3Error::Internal("a delete in a read-only txn".into())),
            },
            Some(Op::RequestTxn(nested)) => {
                *at += 1;
                // A nested txn's header carries nothing; only the outer one is filled in.
                let mut inner = TxnResponse {
                    header: Some(ResponseHeader::default()),
                    ..Default::default()
                };
                run_txn(target, nested, path, at, &mut inner)?;
                Out::ResponseTxn(inner)
            }
            None => continue,
        };
        resp.responses.push(ResponseOp {
            response: Some(out),
        });
    }
    Ok(())
}
