//! The client's v3 transport: etcd's gRPC services over HTTP/2 (hyper), trying the next
//! endpoint when one cannot be reached.

use crate::error::V3Error;
use crate::pb::etcdserverpb::{
    cluster_client::ClusterClient, kv_client::KvClient, lease_client::LeaseClient,
    maintenance_client::MaintenanceClient, watch_client::WatchClient,
};
use crate::pb::v3electionpb::election_client::ElectionClient;
use crate::pb::v3lockpb::lock_client::LockClient;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) type Channel = HyperClient<super::Connector, tonic::body::Body>;

pub struct GrpcClient {
    endpoints: Vec<hyper::Uri>,
    current: AtomicUsize,
    channel: Channel,
    timeout: Option<Duration>,
}

/// A gRPC status as etcd's error.
pub(crate) fn v3_error(s: tonic::Status) -> V3Error {
    V3Error::from_status(s.code() as i32, s.message())
}

/// A status that means "this endpoint cannot be reached": the next one is tried.
fn unreachable(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::Unavailable && !s.message().starts_with("etcdserver:")
        || s.code() == tonic::Code::Unknown && s.message().contains("transport")
}

impl GrpcClient {
    pub fn new(
        endpoints: &[String],
        timeout: Option<Duration>,
        tls: Option<&rustls::ClientConfig>,
    ) -> Result<GrpcClient, String> {
        let endpoints = endpoints
            .iter()
            .map(|e| e.parse::<hyper::Uri>().map_err(|err| format!("{e}: {err}")))
            .collect::<Result<Vec<_>, _>>()?;
        let channel = HyperClient::builder(TokioExecutor::new())
            .http2_only(true)
            .build(super::connector(tls, true));
        Ok(GrpcClient {
            endpoints,
            current: AtomicUsize::new(0),
            channel,
            timeout,
        })
    }

    /// Run `call` against the current endpoint, moving on to the next one while an
    /// endpoint cannot be reached.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, V3Error>
    where
        F: Fn(Channel, hyper::Uri) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..self.endpoints.len() {
            let at = (start + i) % self.endpoints.len();
            let attempt = call(self.channel.clone(), self.endpoints[at].clone());
            let result = match self.timeout {
                Some(t) => match tokio::time::timeout(t, attempt).await {
                    Ok(r) => r,
                    Err(_) => return Err(V3Error::Timeout),
                },
                None => attempt.await,
            };
            match result {
                Err(s) if unreachable(&s) => last = Some(s),
                other => {
                    self.current.store(at, Ordering::Relaxed);
                    return other.map_err(v3_error);
                }
            }
        }
        Err(last.map_or(V3Error::NoLeader, |s| {
            V3Error::Internal(format!("no endpoint answers: {}", s.message()))
        }))
    }
}

/// `GrpcClient::<service>(|client| call)`: one call of that service's generated client,
/// through `call` (endpoints, failover, timeout).
macro_rules! services {
    ($($name:ident: $client:ident),* $(,)?) => {
        impl GrpcClient {
            $(
                pub async fn $name<T, F, Fut>(&self, f: F) -> Result<T, V3Error>
                where
                    F: Fn($client<Channel>) -> Fut,
                    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
                {
                    self.call(|c, uri| {
                        let fut = f($client::with_origin(c, uri));
                        async move { fut.await.map(tonic::Response::into_inner) }
                    })
                    .await
                }
            )*
        }
    };
}

services!(
    kv: KvClient,
    lease: LeaseClient,
    watch: WatchClient,
    lock: LockClient,
    election: ElectionClient,
    cluster: ClusterClient,
    maintenance: MaintenanceClient,
);
