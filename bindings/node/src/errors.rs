//! The one conversion of a core error into a JS error, and the one way a core call reaches
//! JS. The JS half (lib/errors.js) turns the error payload into an `EtcdError`; the table
//! of kinds is the core's `ErrorCode`.

use etcdrs_core::Error;
use napi::bindgen_prelude::{Either, Object, ToNapiValue};
use napi::Env;
use std::future::Future;
use std::task::{Context, Poll, Waker};

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

/// A call's answer as JS sees it: the value, when the call finished without waiting, or a
/// Promise of it.
pub type Answer<'env, T> = Either<T, Object<'env>>;

/// Run a core call. One step runs on the JS thread (in the core runtime's context): a call
/// that needs no waiting (an in-process read of the member's store) answers then and there.
/// Anything that waits (a write through raft, a watch, a lock, the network) goes on on the
/// core's client runtime, and its Promise is settled from there: the JS thread never waits.
pub fn run<'env, T, F>(env: &'env Env, call: F) -> napi::Result<Answer<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
{
    let runtime = etcdrs_core::blocking::runtime();
    let mut call = Box::pin(call);
    {
        let _entered = runtime.enter();
        if let Poll::Ready(result) = call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return result.map(Either::A).js();
        }
    }
    let (deferred, promise) = env.create_deferred::<T, _>()?;
    runtime.spawn(async move {
        match call.await {
            Ok(v) => deferred.resolve(move |_| Ok(v)),
            Err(e) => deferred.reject(to_js(e)),
        }
    });
    Ok(Either::B(promise))
}
