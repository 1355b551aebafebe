//! Frames: a 4-byte big-endian header, then the payload.
//!
//! The header's top bit tells a binary frame (raw file bytes, issue 7) from a JSON frame; the
//! other 31 bits are the payload length. The length is checked against the limit before any
//! buffer is reserved, so a hostile header cannot make us allocate.

use std::sync::{Arc, Mutex, Weak};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Default largest payload accepted: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;
const BINARY_FLAG: u32 = 0x8000_0000;
const HEADER_LEN: usize = 4;

/// One frame off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A UTF-8 JSON object (not yet checked: decoding the payload is the next layer's job).
    Json(Bytes),
    /// Raw bytes that belong to the JSON header frame sent just before it.
    Binary(Bytes),
}

impl Frame {
    /// The payload, whatever the kind.
    pub fn payload(&self) -> &Bytes {
        match self {
            Frame::Json(b) | Frame::Binary(b) => b,
        }
    }
}

/// Errors of the framing layer; after any of them the stream cannot be resynchronised.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The header announced more than the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Announced payload length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The peer closed the stream in the middle of a frame.
    #[error("connection closed in the middle of a frame ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes that were buffered when the stream ended.
        buffered: usize,
    },
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Binary payloads from this size on go into pooled buffers (with a pool).
const POOLED_MIN: usize = 64 * 1024;
/// Buffers a pool keeps: about what a download has in flight between socket and disk.
const POOL_KEEP: usize = 16;
/// Larger buffers are not kept (a peer's odd 16 MiB frame must not stay in memory).
const POOL_BUFFER_MAX: usize = 2 * 1024 * 1024;

type Spare = Mutex<Vec<Vec<u8>>>;

/// Recycled buffers for large binary payloads (file pieces). Splitting each megabyte off the
/// read buffer instead leaves that buffer to be allocated anew for every frame, and the
/// allocator hands back fresh pages: on a fast download the page faults cost more CPU than
/// copying the piece into a buffer that was used before.
#[derive(Debug, Clone, Default)]
pub struct PayloadPool(Arc<Spare>);

/// A pooled buffer inside a [`Bytes`]; goes back to its pool when the last clone is dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: Weak<Spare>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if self.buf.capacity() > POOL_BUFFER_MAX {
            return;
        }
        if let Some(pool) = self.pool.upgrade() {
            let mut spare = pool.lock().unwrap_or_else(|p| p.into_inner());
            if spare.len() < POOL_KEEP {
                spare.push(std::mem::take(&mut self.buf));
            }
        }
    }
}

impl PayloadPool {
    /// `bytes` copied into a pooled buffer.
    fn copy(&self, bytes: &[u8]) -> Bytes {
        let reused = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut buf = match reused {
            Some(buf) if buf.capacity() >= bytes.len() => buf,
            _ => Vec::with_capacity(bytes.len()),
        };
        buf.clear();
        buf.extend_from_slice(bytes);
        Bytes::from_owner(Pooled {
            buf,
            pool: Arc::downgrade(&self.0),
        })
    }
}

/// tokio-util codec for [`Frame`]s with a maximum payload size.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_len: usize,
    pool: Option<PayloadPool>,
}

impl FrameCodec {
    /// A codec that refuses payloads over `max_len` bytes (capped at 2^31 - 1 by the header).
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len: max_len.min((BINARY_FLAG - 1) as usize),
            pool: None,
        }
    }

    /// Decodes large binary payloads into recycled buffers (see [`PayloadPool`]); for the side
    /// of a connection that receives file pieces and hands them on to a writer.
    pub fn with_payload_pool(mut self, pool: PayloadPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// The configured maximum payload size.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        let is_binary = header & BINARY_FLAG != 0;
        let len = (header & !BINARY_FLAG) as usize;
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        if src.len() < HEADER_LEN + len {
            src.reserve(HEADER_LEN + len - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let payload = match &self.pool {
            Some(pool) if is_binary && len >= POOLED_MIN => {
                // The read buffer stays whole and is reused for the next frame.
                let payload = pool.copy(&src[..len]);
                src.advance(len);
                payload
            }
            _ => src.split_to(len).freeze(),
        };
        Ok(Some(if is_binary {
            Frame::Binary(payload)
        } else {
            Frame::Json(payload)
        }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

impl FrameCodec {
    /// The header of a binary frame of `len` bytes, for a writer that sends the payload itself
    /// (straight from its buffer, without copying it into the codec's).
    pub fn binary_header(&self, len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        // The cast cannot truncate: max_len is below 2^31.
        Ok((BINARY_FLAG | len as u32).to_be_bytes())
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let (flag, payload) = match &frame {
            Frame::Json(b) => (0, b),
            Frame::Binary(b) => (BINARY_FLAG, b),
        };
        if payload.len() > self.max_len {
            return Err(FrameError::TooLarge {
                len: payload.len(),
                max: self.max_len,
            });
        }
        dst.reserve(HEADER_LEN + payload.len());
        // The cast cannot truncate: max_len is below 2^31.
        dst.put_u32(flag | payload.len() as u32);
        dst.extend_from_slice(payload);
        Ok(())
    }
}

/// Encodes one frame into a fresh buffer (header included); for tests and raw-socket tools.
pub fn frame_bytes(frame: &Frame) -> Vec<u8> {
    let (flag, payload) = match frame {
        Frame::Json(b) => (0, b),
        Frame::Binary(b) => (BINARY_FLAG, b),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&(flag | payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(bin, v)| {
                if bin {
                    Frame::Binary(Bytes::from(v))
                } else {
                    Frame::Json(Bytes::from(v))
                }
            })
    }

    proptest! {
        /// Any sequence of frames, cut into arbitrary read sizes, decodes back to itself.
        #[test]
        fn frames_survive_arbitrary_splits(
            frames in proptest::collection::vec(arb_frame(), 0..20),
            cuts in proptest::collection::vec(1usize..64, 1..50),
        ) {
            let wire: Vec<u8> = frames.iter().flat_map(frame_bytes).collect();
            let mut codec = FrameCodec::new(1024);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let mut pos = 0;
            let mut cut = cuts.iter().cycle();
            while pos < wire.len() {
                let n = (*cut.next().expect("cycle of a non-empty vec")).min(wire.len() - pos);
                buf.extend_from_slice(&wire[pos..pos + n]);
                pos += n;
                while let Some(f) = codec.decode(&mut buf).expect("valid wire") {
                    out.push(f);
                }
            }
            prop_assert_eq!(codec.decode_eof(&mut buf).expect("clean end"), None);
            prop_assert_eq!(out, frames);
        }

        /// Encoder and frame_bytes agree byte for byte.
        #[test]
        fn encoder_matches_frame_bytes(frame in arb_frame()) {
            let mut codec = FrameCodec::new(1024);
            let mut dst = BytesMut::new();
            codec.encode(frame.clone(), &mut dst).expect("within limit");
            prop_assert_eq!(&dst[..], &frame_bytes(&frame)[..]);
        }
    }

    #[test]
    fn oversize_header_is_refused_before_allocating() {
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::from(&0x7fff_fff0u32.to_be_bytes()[..]);
        let err = codec.decode(&mut buf).expect_err("too large");
        assert!(matches!(
            err,
            FrameError::TooLarge {
                len: 0x7fff_fff0,
                max: 100
            }
        ));
        assert!(
            buf.capacity() < 1024,
            "no buffer was reserved for the bogus length"
        );
    }

    #[test]
    fn truncated_stream_is_an_error_at_eof() {
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::from(&frame_bytes(&Frame::Json(Bytes::from_static(b"{}")))[..3]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(FrameError::Truncated { buffered: 3 })
        ));
    }

    #[test]
    fn pooled_payloads_decode_alike_and_their_buffers_come_back() {
        let pool = PayloadPool::default();
        let mut codec = FrameCodec::default().with_payload_pool(pool.clone());
        let big = Bytes::from(vec![7u8; POOLED_MIN]);
        let mut wire = BytesMut::new();
        for frame in [
            Frame::Binary(big.clone()),
            Frame::Json(Bytes::from_static(b"{}")),
            Frame::Binary(big.clone()),
        ] {
            wire.extend_from_slice(&frame_bytes(&frame));
        }
        let first = codec.decode(&mut wire).expect("ok").expect("a frame");
        assert_eq!(first, Frame::Binary(big.clone()));
        assert!(pool.0.lock().expect("lock").is_empty(), "in use");
        drop(first);
        assert_eq!(pool.0.lock().expect("lock").len(), 1, "back in the pool");
        let json = codec.decode(&mut wire).expect("ok").expect("a frame");
        assert_eq!(json, Frame::Json(Bytes::from_static(b"{}")));
        let second = codec.decode(&mut wire).expect("ok").expect("a frame");
        assert_eq!(second, Frame::Binary(big));
        assert!(
            pool.0.lock().expect("lock").is_empty(),
            "the buffer was reused"
        );
        assert!(wire.is_empty());
    }

    #[test]
    fn a_binary_header_matches_the_encoded_frame() {
        let codec = FrameCodec::new(10);
        let frame = frame_bytes(&Frame::Binary(Bytes::from_static(b"abc")));
        assert_eq!(
            codec.binary_header(3).expect("fits")[..],
            frame[..HEADER_LEN]
        );
        assert!(codec.binary_header(11).is_err());
    }

    #[test]
    fn encoder_refuses_oversize_payload() {
        let mut codec = FrameCodec::new(2);
        let mut dst = BytesMut::new();
        assert!(codec
            .encode(Frame::Json(Bytes::from_static(b"{ }")), &mut dst)
            .is_err());
    }
}
