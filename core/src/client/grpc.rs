//! The client's v3 transport: etcd's gRPC services over HTTP/2 (hyper), trying the next
//! endpoint when one cannot be reached.

use crate::error::V3Error;
use crate::pb::etcdserverpb::{
    auth_client::AuthClient, cluster_client::ClusterClient, kv_client::KvClient,
    lease_client::LeaseClient, maintenance_client::MaintenanceClient, watch_client::WatchClient,
    AuthenticateRequest,
};
use crate::pb::v3electionpb::election_client::ElectionClient;
use crate::pb::v3lockpb::lock_client::LockClient;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::{interceptor::InterceptedService, Interceptor};

pub(crate) type Channel = HyperClient<super::Connector, tonic::body::Body>;

/// The channel with the client's token, when it has one, on every call.
pub(crate) type Authed = InterceptedService<Channel, AddToken>;

/// A user and password a client authenticates with (etcdctl's --user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

#[derive(Clone)]
pub(crate) struct AddToken(Option<MetadataValue<Ascii>>);

impl Interceptor for AddToken {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            r.metadata_mut().insert("token", t.clone());
        }
        Ok(r)
    }
}

pub struct GrpcClient {
    endpoints: Vec<hyper::Uri>,
    current: AtomicUsize,
    channel: Channel,
    timeout: Option<Duration>,
    credentials: Option<Credentials>,
    /// The token `Authenticate` gave for `credentials`, until a member refuses it.
    token: Mutex<Option<MetadataValue<Ascii>>>,
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
        credentials: Option<Credentials>,
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
            credentials,
            token: Mutex::new(None),
        })
    }

    fn token(&self) -> std::sync::MutexGuard<'_, Option<MetadataValue<Ascii>>> {
        self.token.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token to send: none without credentials; with them, the one held or a new one.
    async fn current_token(&self) -> Result<AddToken, V3Error> {
        let Some(c) = &self.credentials else {
            return Ok(AddToken(None));
        };
        if let Some(t) = self.token().clone() {
            return Ok(AddToken(Some(t)));
        }
        let r = AuthenticateRequest {
            name: c.user.clone(),
            password: c.password.clone(),
        };
        let token = self
            .attempt(|ch, uri| {
                let r = r.clone();
                async move {
                    AuthClient::with_origin(ch, uri)
                        .authenticate(r)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await?
            .token;
        let token = MetadataValue::try_from(token)
            .map_err(|e| V3Error::Internal(format!("a token that is not ASCII: {e}")))?;
        *self.token() = Some(token.clone());
        Ok(AddToken(Some(token)))
    }

    /// Run `call` with the client's token; a token the members no longer take (expired, or
    /// from before an auth change) is replaced once, as etcd's clients do.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, V3Error>
    where
        F: Fn(Authed, hyper::Uri) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        for retry in [true, false] {
            let token = self.current_token().await?;
            let answer = self
                .attempt(|ch, uri| call(InterceptedService::new(ch, token.clone()), uri))
                .await;
            match answer {
                Err(V3Error::InvalidAuthToken | V3Error::AuthOldRevision)
                    if retry && self.credentials.is_some() =>
                {
                    *self.token() = None;
                }
                other => return other,
            }
        }
        unreachable!("the second try returns")
    }

    /// Run `call` against the current endpoint, moving on to the next one while an
    /// endpoint cannot be reached.
    async fn attempt<T, F, Fut>(&self, call: F) -> Result<T, V3Error>
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
                    F: Fn($client<Authed>) -> Fut,
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
    auth: AuthClient,
    kv: KvClient,
    lease: LeaseClient,
    watch: WatchClient,
    lock: LockClient,
    election: ElectionClient,
    cluster: ClusterClient,
    maintenance: MaintenanceClient,
);
