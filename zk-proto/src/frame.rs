//! Framing: every message, both directions, is a 4-byte big-endian length and that many bytes.
//!
//! Pure: the decoders take a buffer of bytes read so far and split whole frames off it;
//! zk-core wraps [`ReplyDecoder`] in a `tokio_util::codec::Decoder` for its socket.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;

/// Default largest frame accepted from a server: 16 MiB. The server itself caps what it
/// *accepts* at `jute.maxbuffer` (1 MiB - 1) but not what it sends (a 1 MiB node plus its Stat
/// is a little over that, a large `getChildren` can be more).
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 << 20;

/// At most this much is reserved ahead of bytes actually arriving, whatever length a frame
/// claims: a garbage length below the maximum cannot make the client allocate it up front.
const MAX_RESERVE: usize = 64 << 10;

/// Length-prefixed frame codec. Decoding yields the payload without its length; encoding
/// prepends the length.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_len: usize,
}

/// A frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is negative or above the limit.
    BadLength {
        /// The claimed length.
        len: i64,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadLength { len, max } => write!(f, "frame length {len} outside 0..={max}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl FrameCodec {
    /// A codec refusing frames longer than `max_len`.
    pub fn new(max_len: usize) -> Self {
        FrameCodec { max_len }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameCodec {
    /// Splits the next whole frame's payload off `src`; `None` until one is complete.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if len < 0 || len as usize > self.max_len {
            return Err(FrameError::BadLength {
                len: len as i64,
                max: self.max_len,
            });
        }
        let len = len as usize;
        if src.len() < 4 + len {
            let missing = 4 + len - src.len();
            src.reserve(missing.min(MAX_RESERVE));
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len)))
    }

    /// Appends `item` to `dst` as a frame (length prefix and payload).
    pub fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        if item.len() > self.max_len {
            return Err(FrameError::BadLength {
                len: item.len() as i64,
                max: self.max_len,
            });
        }
        dst.reserve(4 + item.len());
        dst.put_i32(item.len() as i32);
        dst.put_slice(&item);
        Ok(())
    }
}

/// What a [`ReplyDecoder`] yields: a whole frame, or the head of a frame over the limit (whose
/// rest is then read and thrown away as it arrives), so one oversized reply fails only its own
/// request.
#[derive(Debug)]
pub enum InFrame {
    /// A whole frame's payload.
    Frame(BytesMut),
    /// The first [`OVERSIZED_HEAD`] bytes of the frame (a reply header) and its claimed length.
    /// Yielded as soon as the head is in, so a garbage length with a head that matches no
    /// request is refused at once.
    Oversized {
        /// The frame's first [`OVERSIZED_HEAD`] bytes.
        head: BytesMut,
        /// Its claimed length.
        len: usize,
    },
}

/// How much of an oversized frame is kept: a reply header (xid, zxid, err).
pub const OVERSIZED_HEAD: usize = 16;

/// The decoder for a client's socket: like [`FrameCodec`], but a frame above the limit is skipped as it
/// arrives (never buffered whole) after its head was reported as [`InFrame::Oversized`]. A
/// negative length is still an error: the stream cannot be trusted after it.
#[derive(Debug)]
pub struct ReplyDecoder {
    max_len: usize,
    /// Bytes of an oversized frame still to skip.
    skipping: usize,
}

impl ReplyDecoder {
    /// A decoder skipping frames longer than `max_len` (at least [`OVERSIZED_HEAD`]).
    pub fn new(max_len: usize) -> Self {
        ReplyDecoder {
            max_len: max_len.max(OVERSIZED_HEAD),
            skipping: 0,
        }
    }

    /// Splits the next frame (or an oversized frame's head) off `src`; `None` until one is in.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<InFrame>, FrameError> {
        if self.skipping > 0 {
            let n = self.skipping.min(src.len());
            src.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return Ok(None);
            }
        }
        if src.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if len < 0 {
            return Err(FrameError::BadLength {
                len: len as i64,
                max: self.max_len,
            });
        }
        let len = len as usize;
        if len > self.max_len {
            if src.len() < 4 + OVERSIZED_HEAD {
                return Ok(None);
            }
            src.advance(4);
            let head = src.split_to(OVERSIZED_HEAD);
            self.skipping = len - OVERSIZED_HEAD;
            let n = self.skipping.min(src.len());
            src.advance(n);
            self.skipping -= n;
            return Ok(Some(InFrame::Oversized { head, len }));
        }
        if src.len() < 4 + len {
            let missing = 4 + len - src.len();
            src.reserve(missing.min(MAX_RESERVE));
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(InFrame::Frame(src.split_to(len))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(stream: &[u8], split: usize) -> Vec<Vec<u8>> {
        let mut c = FrameCodec::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in [&stream[..split], &stream[split..]] {
            buf.extend_from_slice(chunk);
            while let Some(f) = c.decode(&mut buf).unwrap() {
                out.push(f.to_vec());
            }
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn every_split_point_decodes_the_same() {
        let mut c = FrameCodec::default();
        let mut s = BytesMut::new();
        for p in [&b"hello"[..], b"", b"\x00\x01\x02"] {
            c.encode(Bytes::copy_from_slice(p), &mut s).unwrap();
        }
        let whole = frames(&s, s.len());
        assert_eq!(whole, vec![b"hello".to_vec(), vec![], vec![0, 1, 2]]);
        for i in 0..=s.len() {
            assert_eq!(frames(&s, i), whole, "split at {i}");
        }
    }

    #[test]
    fn oversized_and_negative_lengths_are_errors() {
        let mut c = FrameCodec::new(10);
        let mut b = BytesMut::from(&[0u8, 0, 0, 11][..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(FrameError::BadLength { len: 11, .. })
        ));
        let mut b = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert!(c.decode(&mut b).is_err());
    }

    #[test]
    fn claimed_length_is_not_reserved_up_front() {
        let mut c = FrameCodec::default();
        let mut b = BytesMut::from(&[0x00u8, 0xf0, 0x00, 0x00, 1][..]); // claims 15 MiB
        assert!(c.decode(&mut b).unwrap().is_none());
        assert!(b.capacity() < 1 << 20, "reserved {}", b.capacity());
    }

    #[test]
    fn reply_codec_skips_an_oversized_frame_at_every_split_point() {
        let mut stream = BytesMut::new();
        let mut enc = FrameCodec::default();
        let big: Vec<u8> = (0..100u8).collect();
        for p in [&b"small-before-xxxxxx"[..], &big, b"after-after-after"] {
            enc.encode(Bytes::copy_from_slice(p), &mut stream).unwrap();
        }
        for split in 0..=stream.len() {
            let mut c = ReplyDecoder::new(32);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for chunk in [&stream[..split], &stream[split..]] {
                buf.extend_from_slice(chunk);
                while let Some(f) = c.decode(&mut buf).unwrap() {
                    out.push(match f {
                        InFrame::Frame(b) => format!("F{}", b.len()),
                        InFrame::Oversized { head, len } => {
                            assert_eq!(&head[..], &big[..OVERSIZED_HEAD]);
                            format!("O{len}")
                        }
                    });
                }
            }
            assert_eq!(out, ["F19", "O100", "F17"], "split at {split}");
            assert!(buf.is_empty());
        }
    }
}
