//! The one conversion of a core error into a JS error. The JS half (lib/errors.js) turns
//! the payload into an `EtcdError`; the table of kinds is the core's `ErrorCode`.

use etcdrs_core::Error;
use std::future::Future;

/// What starts the message of an error that carries an etcd error payload.
const MARK: &str = "ETCDRS_ERROR ";

/// The error as a JS Error whose message is MARK + etcd's JSON payload plus the kind.
pub fn to_js(e: Error) -> napi::Error {
    let payload = serde_json::json!({
        "errorCode": e.code(),
        "message": e.message(),
        "cause": e.cause,
        "index": e.index,
        "code": e.code.name(),
    });
    napi::Error::from_reason(format!("{MARK}{payload}"))
}

pub trait IntoJs<T> {
    fn js(self) -> napi::Result<T>;
}

impl<T> IntoJs<T> for Result<T, Error> {
    fn js(self) -> napi::Result<T> {
        self.map_err(to_js)
    }
}

/// Run a core call on the core's client runtime (its connections and timers live there)
/// and hand its result to the awaiting Promise.
pub async fn on_core<T, F>(call: F) -> napi::Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
{
    match etcdrs_core::blocking::runtime().spawn(call).await {
        Ok(result) => result.js(),
        Err(e) => Err(napi::Error::from_reason(format!(
            "etcdrs: the call did not finish: {e}"
        ))),
    }
}
