//! The body of a long-poll or streaming watch: headers go out at once (as etcd flushes
//! them), events follow as they happen. When the client goes away hyper drops the body,
//! and dropping the watcher unregisters it.

use crate::server::KeyWatch;
use bytes::Bytes;
use hyper::body::{Body, Frame};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct WatchBody {
    watch: Option<KeyWatch>,
    /// A watch may wait long with nothing to write: its connection is not idle meanwhile.
    _busy: Option<crate::http::Busy>,
    /// One of its client's long-poll permits, held until the watch ends.
    _permit: Option<crate::http::Permit>,
}

impl WatchBody {
    pub fn new(watch: KeyWatch, permit: Option<crate::http::Permit>) -> WatchBody {
        WatchBody {
            watch: Some(watch),
            _busy: crate::http::busy(),
            _permit: permit,
        }
    }
}

impl Body for WatchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(w) = self.watch.as_mut() else {
            return Poll::Ready(None);
        };
        match w.poll_next_json_line(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.watch = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(line)) => {
                if !w.is_stream() {
                    self.watch = None;
                }
                Poll::Ready(Some(Ok(Frame::data(line))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.watch.is_none()
    }
}
