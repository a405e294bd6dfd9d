//! The session's clock arithmetic, kept apart so it can be checked on its own.

use std::time::Duration;

/// The Java client never lets a connection idle longer than this without a ping.
pub(crate) const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);

/// The longest wait for one server's handshake answer. A server answers a ConnectRequest in
/// milliseconds or not at all: ZooKeeper 3.8.0 leaves a connection made while it starts (port
/// bound, server not yet running) open and unanswered (its close path throws), and closes a
/// connection without a session itself after 10 s. Waiting the Java client's session timeout /
/// hosts instead (120 s for a 120 s session on one host) kept clients from reconnecting for
/// minutes after a restart.
pub(crate) const MAX_HANDSHAKE_WAIT: Duration = Duration::from_secs(10);

/// Timer settings derived from a session timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timers {
    /// Send a ping when nothing was sent for this long: a third of the session timeout.
    pub ping_interval: Duration,
    /// Declare the connection dead when nothing was received for this long: two thirds of the
    /// session timeout (so the client reconnects before the server expires the session).
    pub read_timeout: Duration,
    /// Give up on one host after this long: the session timeout divided by the number of
    /// hosts, so one full round fits in a session timeout, and at most
    /// [`MAX_HANDSHAKE_WAIT`].
    pub connect_timeout: Duration,
}

impl Timers {
    pub(crate) fn new(session_timeout: Duration, hosts: usize) -> Timers {
        let t = session_timeout.max(Duration::from_millis(30));
        Timers {
            ping_interval: (t / 3).min(MAX_PING_INTERVAL),
            read_timeout: t * 2 / 3,
            connect_timeout: (t / hosts.max(1) as u32).min(MAX_HANDSHAKE_WAIT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_from_the_session_timeout() {
        let t = Timers::new(Duration::from_secs(6), 3);
        assert_eq!(t.ping_interval, Duration::from_secs(2));
        assert_eq!(t.read_timeout, Duration::from_secs(4));
        assert_eq!(t.connect_timeout, Duration::from_secs(2));
        let t = Timers::new(Duration::from_secs(60), 1);
        assert_eq!(t.ping_interval, MAX_PING_INTERVAL);
        assert_eq!(t.read_timeout, Duration::from_secs(40));
        assert_eq!(t.connect_timeout, MAX_HANDSHAKE_WAIT);
    }
}
