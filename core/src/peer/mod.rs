//! The peer protocol: how members send each other raft messages over HTTP on their peer
//! URLs, both halves of it. `transport` sends (one long-lived stream per peer, snapshots on
//! their own); `serve` receives on --listen-peer-urls, hearing only current members. This
//! module holds what both halves agree on: paths, headers, the frame format and its limit.

mod serve;
mod transport;

pub(crate) use serve::{serve, PeerService};
pub(crate) use transport::{fetch_members, PeerTransport};

use protobuf::Message as _;
use raft::eraftpb::Message;

pub(crate) const STREAM_PATH: &str = "/raft/stream";
pub(crate) const SNAPSHOT_PATH: &str = "/raft/snapshot";
pub(crate) const HEADER_FROM: &str = "x-server-from";
pub(crate) const HEADER_TO: &str = "x-raft-to";

/// The largest raft message a peer may send in one frame (etcd's limit too): a frame is
/// buffered until it is whole, so its declared length must be bounded.
pub(crate) const MAX_MESSAGE_BYTES: usize = 512 << 20;

/// Append one message as a frame: 4-byte big-endian length, then the protobuf bytes.
pub(crate) fn encode_frame(m: &Message, out: &mut Vec<u8>) {
    let bytes = m.write_to_bytes().expect("raft message encodes");
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
}

/// Reassembles frames from a byte stream that may split them anywhere.
#[derive(Default)]
pub(crate) struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// The complete messages now available; an error when the stream is not frames or
    /// declares a message larger than `MAX_MESSAGE_BYTES`.
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<Vec<Message>, String> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut at = 0;
        while self.buf.len() - at >= 4 {
            let len =
                u32::from_be_bytes(self.buf[at..at + 4].try_into().expect("4 bytes")) as usize;
            if len > MAX_MESSAGE_BYTES {
                return Err(format!(
                    "a raft message of {len} bytes is over the limit of {MAX_MESSAGE_BYTES}"
                ));
            }
            if self.buf.len() - at - 4 < len {
                break;
            }
            let m = Message::parse_from_bytes(&self.buf[at + 4..at + 4 + len])
                .map_err(|e| format!("bad raft message frame: {e}"))?;
            out.push(m);
            at += 4 + len;
        }
        self.buf.drain(..at);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::MessageType;

    #[test]
    fn frames_survive_any_split() {
        let msgs: Vec<Message> = (1..=3)
            .map(|i| Message {
                msg_type: MessageType::MsgHeartbeat,
                to: i,
                from: 9,
                term: i * 10,
                ..Default::default()
            })
            .collect();
        let mut bytes = Vec::new();
        for m in &msgs {
            encode_frame(m, &mut bytes);
        }
        for split in 0..bytes.len() {
            let mut d = FrameDecoder::default();
            let mut got = d.push(&bytes[..split]).unwrap();
            got.extend(d.push(&bytes[split..]).unwrap());
            assert_eq!(got, msgs, "split at {split}");
        }
        let mut d = FrameDecoder::default();
        assert!(d.push(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).is_err());
        // A declared length over the limit is refused before anything is buffered for it.
        let mut d = FrameDecoder::default();
        let too_big = (MAX_MESSAGE_BYTES as u32 + 1).to_be_bytes();
        assert!(d.push(&too_big).unwrap_err().contains("over the limit"));
    }
}
