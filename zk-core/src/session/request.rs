//! What travels from a handle to the session task: a complete request frame, the channel its
//! reply goes back on, and the one atomic that decides whether it was sent.

use crate::error::Result;
use crate::proto::{OpCode, PathModeRequest, Record, ReplyHeader, WatcherType, Writer};
use crate::watch::WatchRequest;
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A reply as the session task hands it back: header and raw body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub header: ReplyHeader,
    pub body: Bytes,
}

pub(crate) type ReplySender = oneshot::Sender<Result<Reply>>;

/// Whether a request reached the socket, decided exactly once.
///
/// The session task moves `PENDING -> SENT` right before it copies the frame into the
/// connection's output buffer; a caller that gives up (deadline, or its future dropped) moves
/// `PENDING -> ABANDONED`. Both are compare-and-swap, so exactly one side wins and both know the
/// outcome: an abandoned request is never written, and a caller that lost the race knows its
/// request may have been applied.
#[derive(Debug, Default)]
pub(crate) struct SendState(AtomicU8);

const PENDING: u8 = 0;
const SENT: u8 = 1;
const ABANDONED: u8 = 2;

impl SendState {
    /// Session task: claims the request for sending. `false`: the caller gave up first; drop it.
    pub(crate) fn claim(&self) -> bool {
        self.0
            .compare_exchange(PENDING, SENT, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Caller: gives up on the request. `true`: it was never sent and never will be;
    /// `false`: it was (or is being) sent, so it may have been applied.
    pub(crate) fn abandon(&self) -> bool {
        match self
            .0
            .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == ABANDONED,
        }
    }
}

/// Abandons the request when the caller's future is dropped before it was sent.
pub(crate) struct AbandonOnDrop(pub Arc<SendState>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// A request on its way to the session task: a complete frame (length prefix and header
/// included, xid patched in when it is sent), plus what to do with the reply.
pub(crate) struct PendingRequest {
    pub frame: BytesMut,
    pub op: OpCode,
    pub watch: Option<WatchRequest>,
    pub reply: ReplySender,
    pub state: Arc<SendState>,
    /// Fail with [`Error::NotConnected`](crate::Error::NotConnected) instead of waiting while
    /// disconnected.
    pub fail_fast: bool,
    /// For a request without a deadline of its own: when it stops waiting for a connection
    /// (the session task fails it with `Timeout { sent: false }`).
    pub queue_expiry: Option<Instant>,
}

impl PendingRequest {
    /// The release of a server-side persistent watch on `server_path` nobody holds any more (a
    /// dropped [`PersistentWatcher`](crate::PersistentWatcher), or an `add_watch` whose caller
    /// gave up after it was sent): a removeWatches(Any) nobody awaits, written only if nothing
    /// of this client on the path still needs the watch (see
    /// [`Registry::on_send`](crate::watch::Registry::on_send)).
    pub(crate) fn release(server_path: String) -> PendingRequest {
        let req = PathModeRequest {
            path: server_path.clone(),
            mode: WatcherType::Any.code(),
        };
        let (reply, rx) = oneshot::channel();
        PendingRequest {
            frame: request_frame(OpCode::RemoveWatches, &req),
            op: OpCode::RemoveWatches,
            watch: Some(WatchRequest::release(server_path, Box::new(rx))),
            reply,
            state: Arc::new(SendState::default()),
            queue_expiry: None,
            // while disconnected there is nothing to release: the next connection does not
            // re-register a watch nobody listens to
            fail_fast: true,
        }
    }

    /// Whether nobody waits for it any more (caller gone or gave up): it must not be sent.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.reply.is_closed()
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
    fn exactly_one_side_wins() {
        let s = SendState::default();
        assert!(s.claim());
        assert!(
            !s.abandon(),
            "sent: the caller must learn it may be applied"
        );
        let s = SendState::default();
        assert!(s.abandon());
        assert!(!s.claim(), "abandoned: never sent");
        assert!(s.abandon(), "abandoning twice keeps the answer");
    }

    #[test]
    fn threads_racing_agree() {
        for _ in 0..2000 {
            let s = Arc::new(SendState::default());
            let s2 = s.clone();
            let t = std::thread::spawn(move || s2.claim());
            let abandoned = s.abandon();
            let claimed = t.join().unwrap();
            assert_ne!(abandoned, claimed);
        }
    }
}
