//! The client's HTTP transport: etcd's v2 wire protocol over hyper, with failover across
//! endpoints when one cannot be reached.

use crate::error::{Error, ErrorCode, Result};
use crate::request::{KeyRequest, Method};
use crate::server::KeyResponse;
use crate::v2store::Event;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::{HeaderMap, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Characters escaped in a key path (everything a URL path cannot carry as is).
const KEY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

pub struct HttpClient {
    endpoints: Vec<String>,
    current: AtomicUsize,
    client: HyperClient<super::Connector, Full<Bytes>>,
    timeout: Option<Duration>,
    /// HTTP Basic credentials for members with v2 auth enabled.
    authorization: Option<hyper::header::HeaderValue>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

fn header_u64(h: &HeaderMap, name: &str) -> u64 {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::BadResponse, e.to_string(), 0)
}

impl HttpClient {
    pub fn new<S: AsRef<str>>(
        endpoints: &[S],
        timeout: Option<Duration>,
        tls: Option<&rustls::ClientConfig>,
        credentials: Option<&super::Credentials>,
    ) -> Result<HttpClient> {
        let mut eps = Vec::new();
        for e in endpoints {
            let e = e.as_ref().trim().trim_end_matches('/');
            let u = url::Url::parse(e).map_err(|err| {
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!("endpoint {e:?}: {err}"),
                    0,
                )
            })?;
            match u.scheme() {
                "http" => {}
                "https" if tls.is_some() => {}
                "https" => {
                    return Err(Error::new(
                        ErrorCode::InvalidArgument,
                        format!("endpoint {e:?}: https needs a CA file (or insecure_skip_verify)"),
                        0,
                    ))
                }
                other => {
                    return Err(Error::new(
                        ErrorCode::InvalidArgument,
                        format!("endpoint {e:?}: unsupported scheme {other:?} (http or https)"),
                        0,
                    ))
                }
            }
            eps.push(e.to_string());
        }
        if eps.is_empty() {
            return Err(Error::new(ErrorCode::InvalidArgument, "no endpoints", 0));
        }
        let client = HyperClient::builder(TokioExecutor::new()).build(super::connector(tls, false));
        let authorization = credentials
            .map(|c| {
                use base64::Engine as _;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.user, c.password));
                hyper::header::HeaderValue::from_str(&format!("Basic {token}"))
            })
            .transpose()
            .map_err(|e| Error::new(ErrorCode::InvalidArgument, e.to_string(), 0))?;
        Ok(HttpClient {
            endpoints: eps,
            current: AtomicUsize::new(0),
            client,
            timeout,
            authorization,
        })
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        form_body: Option<String>,
        wait: bool,
    ) -> Result<Answer> {
        let n = self.endpoints.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for i in 0..n {
            let idx = (start + i) % n;
            let uri = format!("{}{}", self.endpoints[idx], path_and_query);
            let mut b = hyper::Request::builder().method(method.as_str()).uri(&uri);
            if form_body.is_some() {
                b = b.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
            }
            if let Some(a) = &self.authorization {
                b = b.header(hyper::header::AUTHORIZATION, a.clone());
            }
            let req = b
                .body(Full::new(Bytes::from(
                    form_body.clone().unwrap_or_default(),
                )))
                .map_err(|e| Error::new(ErrorCode::InvalidArgument, e.to_string(), 0))?;
            let call = async {
                let resp = self.client.request(req).await?;
                let (parts, body) = resp.into_parts();
                let body = body.collect().await.map_err(CallError::Body)?.to_bytes();
                Ok::<_, CallError>(Answer {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                })
            };
            let result = match self.timeout.filter(|_| !wait) {
                Some(t) => tokio::time::timeout(t, call).await.map_err(|_| {
                    Error::new(ErrorCode::Timeout, format!("{uri}: no answer in {t:?}"), 0)
                })?,
                None => call.await,
            };
            match result {
                Ok(a) => {
                    self.current.store(idx, Ordering::Relaxed);
                    return Ok(a);
                }
                // Nothing was sent: the next endpoint may answer.
                Err(CallError::Request(e)) if e.is_connect() => {
                    failures.push(format!("{}: {e}", self.endpoints[idx]))
                }
                Err(e) => {
                    return Err(Error::new(
                        ErrorCode::ConnectionFailed,
                        format!("{uri}: {e}"),
                        0,
                    ))
                }
            }
        }
        Err(Error::new(
            ErrorCode::ConnectionFailed,
            failures.join("; "),
            0,
        ))
    }

    /// Send form fields as etcd reads them: in the body of a PUT or POST, else in the query.
    async fn send_form(
        &self,
        method: Method,
        mut path: String,
        form: &[(&str, String)],
        wait: bool,
    ) -> Result<Answer> {
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let body = match method {
            Method::Put | Method::Post => Some(form),
            _ => {
                if !form.is_empty() {
                    path.push('?');
                    path.push_str(&form);
                }
                None
            }
        };
        self.send(method, &path, body, wait).await
    }

    pub async fn keys(&self, req: &KeyRequest) -> Result<KeyResponse> {
        let key = if req.key.starts_with('/') {
            req.key.clone()
        } else {
            format!("/{}", req.key)
        };
        let path = format!("/v2/keys{}", utf8_percent_encode(&key, KEY));
        let a = self
            .send_form(req.method, path, &req.to_form(), req.wait)
            .await?;
        if let Some(err) = Error::from_json(&String::from_utf8_lossy(&a.body)) {
            return Err(err);
        }
        if !a.status.is_success() {
            return Err(bad(format!(
                "HTTP {}: {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            )));
        }
        if a.body.is_empty() && req.wait {
            return Err(Error::new(
                ErrorCode::WatcherCleared,
                "the watch ended without an event",
                header_u64(&a.headers, "x-etcd-index"),
            ));
        }
        let event: Event = serde_json::from_slice(&a.body).map_err(bad)?;
        Ok(KeyResponse {
            event,
            etcd_index: header_u64(&a.headers, "x-etcd-index"),
            raft_index: header_u64(&a.headers, "x-raft-index"),
            raft_term: header_u64(&a.headers, "x-raft-term"),
        })
    }

    /// A call to a /mod/v2 module (`path` is its prefix, `name` the lock or leader name):
    /// the plain-text answer, or etcd's error. `wait`: the call may block (an acquire), so
    /// the client's timeout does not apply.
    pub async fn module(
        &self,
        method: Method,
        path: &str,
        name: &str,
        form: &[(&str, String)],
        wait: bool,
    ) -> Result<String> {
        let path = format!(
            "{path}{}",
            utf8_percent_encode(name.trim_start_matches('/'), KEY)
        );
        let a = self.send_form(method, path, form, wait).await?;
        let text = String::from_utf8_lossy(&a.body).into_owned();
        if a.status.is_success() {
            return Ok(text);
        }
        Err(Error::from_json(&text).unwrap_or_else(|| bad(format!("HTTP {}: {text}", a.status))))
    }

    /// GET a JSON document; etcd's `{"message":..}` errors become typed errors.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let a = self.send(Method::Get, path, None, false).await?;
        if a.status.is_success() {
            return serde_json::from_slice(&a.body).map_err(bad);
        }
        let message = serde_json::from_slice::<serde_json::Value>(&a.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&a.body).into_owned());
        let code = match a.status.as_u16() {
            403 => ErrorCode::NotLeader,
            503 => ErrorCode::LeaderElect,
            _ => ErrorCode::BadResponse,
        };
        Err(Error::new(code, message, 0))
    }

    pub async fn machines(&self) -> Result<Vec<String>> {
        let a = self.send(Method::Get, "/v2/machines", None, false).await?;
        if !a.status.is_success() {
            return Err(bad(format!("HTTP {}", a.status)));
        }
        Ok(String::from_utf8_lossy(&a.body)
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect())
    }
}

#[derive(Debug)]
enum CallError {
    Request(hyper_util::client::legacy::Error),
    Body(hyper::Error),
}

impl From<hyper_util::client::legacy::Error> for CallError {
    fn from(e: hyper_util::client::legacy::Error) -> Self {
        CallError::Request(e)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Request(e) => write!(f, "{e}"),
            CallError::Body(e) => write!(f, "{e}"),
        }
    }
}
