//! A light gRPC client for the v3 workloads: unary calls over one HTTP/2 connection each
//! (h2 directly, no client framework), the request encoded with prost, the answer checked
//! for grpc-status 0 and not decoded. A few microseconds per call, so the generator leaves
//! the machine's cores to the server it measures, as the v2 generator does.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use tokio::net::TcpStream;

pub struct GrpcConn {
    send: h2::client::SendRequest<Bytes>,
    authority: String,
}

impl GrpcConn {
    pub async fn open(endpoint: &str) -> Result<GrpcConn, String> {
        let url = url::Url::parse(endpoint).map_err(|e| format!("{endpoint}: {e}"))?;
        let authority = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port_or_known_default().unwrap_or(80)
        );
        let tcp = TcpStream::connect(&authority)
            .await
            .map_err(|e| format!("{authority}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let (send, connection) = h2::client::handshake(tcp)
            .await
            .map_err(|e| format!("{authority}: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(GrpcConn { send, authority })
    }

    /// One unary call to `path` (`/package.Service/Method`); the answer's message bytes.
    pub async fn unary(&self, path: &str, msg: &impl Message) -> Result<Bytes, String> {
        let (answer, _) = self.call(path, msg, true).await?;
        // An error comes as a trailers-only answer: its status in the headers.
        if let Some(status) = answer.headers().get("grpc-status") {
            if status != "0" {
                return Err(format!("grpc-status {status:?}"));
            }
        }
        let mut body = answer.into_body();
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(|e| e.to_string())?;
        match trailers.as_ref().and_then(|t| t.get("grpc-status")) {
            Some(s) if s == "0" => {
                let skip = 5.min(data.len());
                Ok(data.freeze().split_off(skip))
            }
            other => Err(format!("grpc-status {other:?}")),
        }
    }
}

/// A bidirectional gRPC stream (Watch, LeaseKeepAlive) on a `GrpcConn`.
pub struct GrpcStream {
    send: h2::SendStream<Bytes>,
    recv: h2::RecvStream,
    /// Bytes received and not yet taken as messages.
    buf: BytesMut,
}

fn framed(msg: &impl Message) -> Result<Bytes, String> {
    let len = msg.encoded_len();
    let mut framed = BytesMut::with_capacity(5 + len);
    framed.put_u8(0);
    framed.put_u32(len as u32);
    msg.encode(&mut framed).map_err(|e| e.to_string())?;
    Ok(framed.freeze())
}

impl GrpcConn {
    /// Start a call to `path` with its first message (the only one when `last`): the
    /// answer's head and the stream to send more on.
    async fn call(
        &self,
        path: &str,
        first: &impl Message,
        last: bool,
    ) -> Result<(http::Response<h2::RecvStream>, h2::SendStream<Bytes>), String> {
        let req = http::Request::post(format!("http://{}{path}", self.authority))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .map_err(|e| e.to_string())?;
        let mut send = self.send.clone().ready().await.map_err(|e| e.to_string())?;
        let (answer, mut stream) = send.send_request(req, false).map_err(|e| e.to_string())?;
        stream
            .send_data(framed(first)?, last)
            .map_err(|e| e.to_string())?;
        let answer = answer.await.map_err(|e| e.to_string())?;
        Ok((answer, stream))
    }

    /// Open a stream to `path` with its first message.
    pub async fn stream(&self, path: &str, first: &impl Message) -> Result<GrpcStream, String> {
        let (answer, stream) = self.call(path, first, false).await?;
        Ok(GrpcStream {
            send: stream,
            recv: answer.into_body(),
            buf: BytesMut::new(),
        })
    }
}

impl GrpcStream {
    pub fn send(&mut self, msg: &impl Message) -> Result<(), String> {
        self.send
            .send_data(framed(msg)?, false)
            .map_err(|e| e.to_string())
    }

    /// The next message; None when the server ended the stream.
    pub async fn recv<M: Message + Default>(&mut self) -> Result<Option<M>, String> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes(self.buf[1..5].try_into().expect("4 bytes")) as usize;
                if self.buf.len() >= 5 + len {
                    let frame = self.buf.split_to(5 + len);
                    return M::decode(&frame[5..]).map(Some).map_err(|e| e.to_string());
                }
            }
            match self.recv.data().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| e.to_string())?;
                    let _ = self.recv.flow_control().release_capacity(chunk.len());
                    self.buf.extend_from_slice(&chunk);
                }
                None => return Ok(None),
            }
        }
    }
}
