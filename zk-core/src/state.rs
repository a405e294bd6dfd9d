//! Connection and session state, as users observe it.

use crate::proto::KeeperState;
use futures_util::task::AtomicWaker;
use futures_util::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// The three states kazoo users know.
///
/// With the `serde` feature: `"Connected"`, `"Suspended"`, `"Lost"` (the variant names, not the
/// upper-case [`Display`](std::fmt::Display) form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum State {
    /// Connected to a server; the session is alive (possibly on a read-only server: see
    /// [`Status::keeper_state`]).
    Connected,
    /// The connection is gone but the session may still be alive: ephemeral nodes and watches
    /// may survive if the client reconnects before the session timeout. A lock holder should
    /// treat its lock as doubtful.
    Suspended,
    /// There is no session: it expired, the client was closed, authentication failed, or no
    /// session was ever established. When a server reported the expiry, the old session's
    /// ephemeral nodes are gone. When the client gave the session up itself (no server for a
    /// whole session timeout), the servers may still hold it for a while; the client re-attaches
    /// and closes it at the first server that answers, before it starts a new session, so its
    /// ephemeral nodes are gone by the time a new session is CONNECTED. When LOST is final
    /// ([`ClientBuilder::reconnect_after_expiry`](crate::ClientBuilder::reconnect_after_expiry)
    /// `(false)`) the client keeps trying that close in the background until it is done or
    /// [`Client::close`](crate::Client::close) runs out of time (and says so). After an auth
    /// failure (`KeeperState::AuthFailed`) the session may also still be alive on the server
    /// (a server closes only the connection); the client closes it within the close timeout.
    Lost,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Connected => "CONNECTED",
            State::Suspended => "SUSPENDED",
            State::Lost => "LOST",
        })
    }
}

/// A snapshot of the session: the coarse [`State`] and the details behind it.
///
/// With the `serde` feature a `Status` can be serialized (to log or export it), never with the
/// session password, and not deserialized: a status is an observation of a client, and one
/// read back without its password would not be the status it was written from.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Status {
    /// Coarse state.
    pub state: State,
    /// Detailed state: `SyncConnected`, `ConnectedReadOnly`, `Disconnected`, `Expired`,
    /// `AuthFailed` or `Closed`.
    pub keeper_state: KeeperState,
    /// Current (or last) session id; 0 before the first session.
    pub session_id: i64,
    /// Session timeout the server granted (the requested one before the first connect).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_duration::serialize")
    )]
    pub session_timeout: Duration,
    /// Counts sessions: 1 for the first, +1 each time a new session replaces a lost one.
    pub generation: u64,
    /// The server this status refers to (`host:port`), when connected.
    pub server: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) password: Vec<u8>,
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the session password is left out on purpose
        f.debug_struct("Status")
            .field("state", &self.state)
            .field("keeper_state", &self.keeper_state)
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .field("session_timeout", &self.session_timeout)
            .field("generation", &self.generation)
            .field("server", &self.server)
            .finish()
    }
}

impl Status {
    pub(crate) fn initial(timeout: Duration) -> Status {
        Status {
            state: State::Lost,
            keeper_state: KeeperState::Disconnected,
            session_id: 0,
            session_timeout: timeout,
            generation: 0,
            server: None,
            password: vec![0; 16],
        }
    }

    /// Whether the client is connected to a read-only server.
    pub fn is_read_only(&self) -> bool {
        self.keeper_state == KeeperState::ConnectedReadOnly
    }
}

/// Every state transition from the moment of subscription, none skipped (unlike a `watch`
/// channel, a brief SUSPENDED between two CONNECTED is always seen). Ends when the client's
/// session task ends.
///
/// A stream costs one small allocation until a transition is queued for it (recipes hold one
/// per waiting contender); transitions not yet read are kept in order.
#[derive(Debug)]
pub struct StateStream {
    pub(crate) queue: Arc<SubscriberQueue>,
}

/// The queue behind one [`StateStream`], shared with the session task.
#[derive(Debug, Default)]
pub(crate) struct SubscriberQueue {
    items: Mutex<VecDeque<Status>>,
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl SubscriberQueue {
    /// Queues a transition; `false` if the stream was dropped (forget this subscriber).
    pub(crate) fn push(self: &Arc<Self>, st: &Status) -> bool {
        if Arc::strong_count(self) == 1 {
            return false;
        }
        self.items.lock().unwrap().push_back(st.clone());
        self.waker.wake();
        true
    }

    /// The session task ended: the stream ends after what is queued.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
    }
}

impl Stream for StateStream {
    type Item = Status;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Status>> {
        let q = &self.queue;
        if let Some(st) = q.items.lock().unwrap().pop_front() {
            return Poll::Ready(Some(st));
        }
        q.waker.register(cx.waker());
        // re-check after registering, so a push in between is not missed
        if let Some(st) = q.items.lock().unwrap().pop_front() {
            return Poll::Ready(Some(st));
        }
        if q.closed.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}
