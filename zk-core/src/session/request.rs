//! What travels from a handle to the session task: a complete request frame and the channel its
//! reply goes back on, which also holds the one atomic that decides whether it was sent
//! ([`reply`](super::reply)).

use super::reply;
use crate::error::Result;
use crate::proto::{
    AddWatchMode, OpCode, PathModeRequest, Record, ReplyHeader, WatcherType, Writer,
};
use crate::watch::WatchRequest;
use bytes::{BufMut, Bytes, BytesMut};
use std::time::Duration;
use tokio::time::Instant;

/// A reply as the session task hands it back: header and raw body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub header: ReplyHeader,
    pub body: Bytes,
}

/// The session task's half of a request's reply channel (with its send state).
pub(crate) type ReplySender = reply::Sender<Result<Reply>>;

/// A request on its way to the session task: a complete frame (length prefix and header
/// included, xid patched in when it is sent), plus what to do with the reply.
pub(crate) struct PendingRequest {
    pub frame: BytesMut,
    pub op: OpCode,
    /// Boxed: few requests carry one, and a small `PendingRequest` moves through the command
    /// channel without a `memcpy` call.
    pub watch: Option<Box<WatchRequest>>,
    /// The reply channel; claimed ([`reply::Sender::claim`]) right before the frame is
    /// copied into the output buffer, so a caller that gave up first is never sent.
    pub reply: ReplySender,
    /// Fail with [`Error::NotConnected`](crate::Error::NotConnected) instead of waiting while
    /// disconnected.
    pub fail_fast: bool,
    /// For a request without a deadline of its own: how long it may wait for a connection
    /// (then the session task fails it with `Timeout { sent: false }`), counted from when the
    /// session task queues it (so no clock read per request while connected).
    pub queue_timeout: Option<Duration>,
    /// When a queued request stops waiting: set by the session task when it queues it.
    pub queue_expiry: Option<Instant>,
}

impl PendingRequest {
    /// The release of a server-side persistent watch on `server_path` nobody holds any more (a
    /// dropped [`PersistentWatcher`](crate::PersistentWatcher), or an `add_watch` whose caller
    /// gave up after it was sent): a removeWatches(Any) nobody awaits (of `mode` alone on a
    /// 3.9 server), written only if nothing of this client on the path still needs the watch
    /// (see
    /// [`Registry::on_send`](crate::watch::Registry::on_send)).
    pub(crate) fn release(server_path: String, mode: AddWatchMode) -> PendingRequest {
        let req = PathModeRequest {
            path: server_path.clone(),
            mode: WatcherType::Any.code(),
        };
        let (reply, rx) = reply::channel();
        PendingRequest {
            frame: request_frame(OpCode::RemoveWatches, &req),
            op: OpCode::RemoveWatches,
            watch: Some(Box::new(WatchRequest::release(
                server_path,
                mode,
                Box::new(rx),
            ))),
            reply,
            queue_timeout: None,
            queue_expiry: None,
            // while disconnected there is nothing to release: the next connection does not
            // re-register a watch nobody listens to
            fail_fast: true,
        }
    }

    /// Whether nobody waits for it any more (caller gone or gave up): it must not be sent.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.reply.is_abandoned()
    }
}

/// Appends one frame to `out`: the 4-byte length, then (for requests) the xid and opcode, then
/// the body. The one frame encoder of the crate.
pub(crate) fn put_frame(
    out: &mut BytesMut,
    head: Option<(i32, OpCode)>,
    body: impl FnOnce(&mut Writer<'_>),
) {
    let start = out.len();
    out.put_i32(0);
    if let Some((xid, op)) = head {
        out.put_i32(xid);
        out.put_i32(op.code());
    }
    body(&mut Writer::new(out));
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// A request body: any [`Record`], or a type that only encodes (written straight from the
/// caller's arguments, with no owned copy of them per request).
pub(crate) trait Body {
    fn write_body(&self, w: &mut Writer<'_>);
}

impl<T: Record> Body for T {
    fn write_body(&self, w: &mut Writer<'_>) {
        self.write(w)
    }
}

/// A request frame `len, xid (0, patched later), op, body`.
pub(crate) fn request_frame(op: OpCode, body: &impl Body) -> BytesMut {
    let mut b = BytesMut::with_capacity(64);
    put_frame(&mut b, Some((0, op)), |w| body.write_body(w));
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_request_moves_without_a_memcpy_call() {
        // a move of a larger value becomes a `memcpy` call (three or four per request through
        // the command channel); keep the common fields small, the rare ones boxed
        assert!(
            std::mem::size_of::<PendingRequest>() <= 96,
            "PendingRequest grew to {} bytes",
            std::mem::size_of::<PendingRequest>()
        );
    }
}
