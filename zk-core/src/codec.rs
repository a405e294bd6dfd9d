//! The session's reader: zk-proto's pure [`ReplyDecoder`] as a `tokio_util` decoder, so the
//! socket's bytes are split into frames by [`tokio_util::codec::FramedRead`].

use bytes::BytesMut;
use tokio_util::codec::Decoder;
use zk_proto::frame::{FrameError, ReplyDecoder};
pub(crate) use zk_proto::frame::{InFrame, DEFAULT_MAX_FRAME_LEN};

/// Why the reader stopped: a refused frame, or the transport failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// [`ReplyDecoder`] for `FramedRead`.
#[derive(Debug)]
pub(crate) struct ReplyCodec(ReplyDecoder);

impl ReplyCodec {
    pub(crate) fn new(max_len: usize) -> Self {
        ReplyCodec(ReplyDecoder::new(max_len))
    }
}

impl Decoder for ReplyCodec {
    type Item = InFrame;
    type Error = ReadError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<InFrame>, ReadError> {
        Ok(self.0.decode(src)?)
    }
}
