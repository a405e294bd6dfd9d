//! The session task: the one task that owns the socket.
//!
//! - [`connect`]: the connect phase: host ring, handshake (re-attaching with the session id and
//!   password after the first time), closing a session given up client-side, the read-only
//!   probe.
//! - [`conn`]: one established connection: priming (auth, SetWatches, queued requests), then
//!   pipelined requests matched to replies in xid order, pings, notifications, until it breaks.
//! - this file: the lifecycle (connect, serve, again; expiry; close) and state publication.
//!
//! Requests in flight when a connection breaks fail with [`Error::ConnectionLoss`]; requests
//! that arrive while disconnected wait in a queue for the next connection (or their deadline). A
//! server answering the handshake with timeout 0 means the session is gone: LOST. So does a whole
//! session timeout without any server (the client gives the session up; it re-attaches and
//! closes it as soon as a server answers, before it starts a new one). Every waiter and watcher
//! then gets [`Error::SessionExpired`], and (by default) a new session follows. When LOST is
//! final (`reconnect_after_expiry(false)`, or an auth failure, which a server answers by closing
//! only the connection) the task stays until a session the server may still hold is closed
//! ([`Session::stop`]), failing requests at once meanwhile.

pub(crate) mod conn;
pub(crate) mod connect;
pub(crate) mod hosts;
pub(crate) mod reply;
pub(crate) mod request;
pub(crate) mod sasl;
pub(crate) mod timers;
pub(crate) mod transport;

use crate::error::{Error, Result};
use crate::proto::{Chroot, KeeperState};
use crate::state::{State, Status, SubscriberQueue};
use crate::watch::Registry;
use hosts::{HostAddr, HostRing};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timers::Timers;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, info_span, warn, Instrument};
use transport::Connector;

pub(crate) use request::{request_frame, Body, PendingRequest, Reply};

pub(crate) enum Command {
    Request(PendingRequest),
    Auth {
        scheme: String,
        auth: Vec<u8>,
        /// Claimed when written, like a request's: an `add_auth` whose caller gave up before
        /// that is never sent (nor replayed).
        reply: reply::Sender<Result<()>>,
    },
    Close {
        reply: oneshot::Sender<Result<()>>,
    },
    /// Stop without closing the session (it lives on for another process to take over).
    Detach {
        reply: oneshot::Sender<()>,
    },
    /// A new host list (`update_server_list`): the ring is replaced and the client moves if
    /// the rebalancing rule says so ([`HostRing::update`]).
    UpdateHosts {
        hosts: Vec<HostAddr>,
        reply: oneshot::Sender<()>,
    },
}

/// An `add_auth` waiting for a connection: scheme, credential, reply (with its send state).
pub(crate) type PendingAuth = (String, Vec<u8>, reply::Sender<Result<()>>);

/// Someone waiting for the answer to an auth packet.
pub(crate) struct AuthWaiter {
    pub tx: reply::Sender<Result<()>>,
    /// The credential, when the waiter is to be handed on to the next connection's replay of
    /// it if this connection breaks first (the builder's credentials, which `connect()` waits
    /// for); `None`: the waiter gets `ConnectionLoss` then (`add_auth`).
    pub again: Option<(String, Vec<u8>)>,
}

impl AuthWaiter {
    /// A waiter for this connection's answer only (`add_auth`).
    pub fn once(tx: reply::Sender<Result<()>>) -> AuthWaiter {
        AuthWaiter { tx, again: None }
    }
}

/// Settings the session task runs with.
pub(crate) struct Config {
    pub hosts: Vec<HostAddr>,
    pub chroot: Chroot,
    pub session_timeout: Duration,
    pub can_be_read_only: bool,
    pub reconnect_after_expiry: bool,
    pub max_frame_len: usize,
    /// Largest request frame a server accepts (SetWatches packets are kept within it).
    pub max_request_len: usize,
    pub connector: Arc<dyn Connector>,
    /// Upper bound of the random pause before a reconnect.
    pub reconnect_jitter: Duration,
    /// Pause after every host failed in a row.
    pub cycle_pause: Duration,
    /// How long `close` may take to reach a server and have closeSession acknowledged.
    pub close_timeout: Duration,
    /// SASL credentials, used on every connection before anything else.
    pub sasl: Option<sasl::SaslConfig>,
    /// A session to re-attach to instead of starting one (id, password).
    pub resume: Option<(i64, Vec<u8>)>,
    /// What the servers' watch tables can do ([`Registry`]).
    pub server_version: crate::ServerVersion,
}

/// What handles share with the session task.
pub(crate) struct SharedState {
    pub subscribers: Mutex<Vec<Arc<SubscriberQueue>>>,
    /// Why the task ended, for requests sent after that.
    pub terminal: Mutex<Option<Error>>,
    /// Why the last connection attempt failed (for `connect()`'s error).
    pub last_connect_error: Mutex<Option<Error>>,
    /// Why SASL could not be done on the client's side (`Error::SaslFailed`), for `connect()`.
    pub auth_error: Mutex<Option<Error>>,
    /// What closing ended with, for `close()` calls after the task ended.
    pub close_result: Mutex<Option<Result<()>>>,
    /// How many watchers the registry holds (a test hook: `Client::registered_watchers`).
    pub watchers: Arc<std::sync::atomic::AtomicUsize>,
    /// The host list in force (`Client::server_list`).
    pub hosts: Mutex<Vec<HostAddr>>,
}

/// How one connection (or the connect phase) ended.
pub(crate) enum Outcome {
    /// Try again (same session).
    Disconnected(String),
    /// The server says the session is gone.
    Expired,
    /// No server for a whole session timeout: the client gives the session up.
    GivenUp,
    AuthFailed,
    /// Closed by the user (or every handle dropped); the close result is recorded.
    Closed,
}

/// A close in progress.
struct Closing {
    deadline: Instant,
    /// What `close()` returns: `Ok` once the server acknowledged closeSession (or there was no
    /// session to close).
    result: Result<()>,
    /// closeSession was written to some connection (so a timeout is `sent: true`).
    sent: bool,
}

pub(crate) struct Session {
    cfg: Arc<Config>,
    ring: HostRing,
    rx: mpsc::UnboundedReceiver<Command>,
    status_tx: watch::Sender<Status>,
    shared: Arc<SharedState>,

    session_id: i64,
    passwd: Vec<u8>,
    last_zxid: i64,
    negotiated: Duration,
    seen_rw: bool,
    generation: u64,
    /// A session given up client-side (no server for a whole session timeout, or an auth
    /// failure) that may still live on the server: re-attached and closed before a new session
    /// starts, or before the task ends.
    abandoned: Option<(i64, Vec<u8>)>,
    /// LOST is final (this error is what requests get): the task only stays to close the
    /// abandoned session.
    stopped: Option<Error>,

    queued: VecDeque<PendingRequest>,
    watches: Registry,
    /// Credentials re-sent on every connection, each once.
    auths: Vec<(String, Vec<u8>)>,
    pending_auth_cmds: Vec<PendingAuth>,
    /// Callers of `connect()` waiting for the builder's credentials: each waits for the answer
    /// to its credential on whichever connection gets one (a connection lost before the answer
    /// hands the waiter on to the next connection's replay).
    builder_auth_waiters: Vec<AuthWaiter>,
    close_waiters: Vec<oneshot::Sender<Result<()>>>,
    closing: Option<Closing>,
    /// Every handle was dropped (the command channel is closed).
    handles_gone: bool,
    /// `detach()` was called: stop without closing the session.
    detached: Option<oneshot::Sender<()>>,
    /// When the last connection of a live session broke.
    disconnected_since: Option<Instant>,
    /// A new host list says to leave the current server: the connection ends and the next
    /// attempt goes to the host the ring chose.
    rebalance: bool,
}

impl Session {
    pub(crate) fn new(
        cfg: Arc<Config>,
        rx: mpsc::UnboundedReceiver<Command>,
        status_tx: watch::Sender<Status>,
        shared: Arc<SharedState>,
    ) -> Session {
        let negotiated = cfg.session_timeout;
        let resume = cfg.resume.clone();
        let version = cfg.server_version;
        let mut s = Session {
            ring: HostRing::new(cfg.hosts.clone()),
            cfg,
            rx,
            status_tx,
            watches: Registry::new(shared.watchers.clone(), version),
            shared,
            session_id: 0,
            passwd: vec![0; 16],
            last_zxid: 0,
            negotiated,
            seen_rw: false,
            generation: 0,
            abandoned: None,
            stopped: None,
            queued: VecDeque::new(),
            auths: Vec::new(),
            pending_auth_cmds: Vec::new(),
            builder_auth_waiters: Vec::new(),
            close_waiters: Vec::new(),
            closing: None,
            handles_gone: false,
            detached: None,
            disconnected_since: None,
            rebalance: false,
        };
        if let Some((id, passwd)) = resume {
            s.session_id = id;
            s.passwd = passwd;
            // re-attach with these from the first handshake on
            s.seen_rw = true;
            s.generation = 1;
        }
        s
    }

    fn publish(&mut self, state: State, keeper_state: KeeperState, server: Option<String>) {
        if self.session_id != 0 {
            tracing::Span::current().record(
                "session_id",
                tracing::field::display(format_args!("{:#x}", self.session_id)),
            );
        }
        let st = Status {
            state,
            keeper_state,
            session_id: self.session_id,
            session_timeout: self.negotiated,
            generation: self.generation,
            server,
            password: self.passwd.clone(),
        };
        info!(
            state = %state,
            keeper_state = ?keeper_state,
            session_id = format_args!("{:#x}", self.session_id),
            "session state"
        );
        // Under the subscriber lock, so that a subscriber sees exactly the transitions after
        // the value `watch_status()` showed when it subscribed.
        let mut subs = self.shared.subscribers.lock().unwrap();
        self.status_tx.send_replace(st.clone());
        subs.retain(|s| s.push(&st));
    }

    /// Auth to send on every connection (from the builder, before the task starts); `reply`
    /// gets the first answer the server gives to it, on whichever connection that is.
    pub(crate) fn queue_auth(
        &mut self,
        scheme: String,
        auth: Vec<u8>,
        reply: reply::Sender<Result<()>>,
    ) {
        self.remember_auth(scheme.clone(), auth.clone());
        self.builder_auth_waiters.push(AuthWaiter {
            tx: reply,
            again: Some((scheme, auth)),
        });
    }

    /// Remembers a credential for replay after reconnects; the same one is kept once.
    fn remember_auth(&mut self, scheme: String, auth: Vec<u8>) {
        if !self.auths.iter().any(|(s, a)| *s == scheme && *a == auth) {
            self.auths.push((scheme, auth));
        }
    }

    fn timers(&self) -> Timers {
        Timers::new(self.negotiated, self.ring.len())
    }

    /// Whether the server may still hold a session of ours that a close must end.
    fn has_session_to_close(&self) -> bool {
        (self.seen_rw && self.session_id != 0) || self.abandoned.is_some()
    }

    pub(crate) async fn run(mut self) {
        // every line a client logs carries its number (unique in the process), its hosts and
        // its current session id, so the lines of two clients can be told apart
        static CLIENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let client = CLIENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hosts: Vec<String> = self
            .cfg
            .hosts
            .iter()
            .map(|h| format!("{}:{}", h.host, h.port))
            .collect();
        let span = info_span!(
            "zk_session",
            client,
            hosts = %hosts.join(","),
            session_id = tracing::field::Empty
        );
        if self.session_id != 0 {
            span.record(
                "session_id",
                tracing::field::display(format_args!("{:#x}", self.session_id)),
            );
        }
        async move {
            let end = self.run_inner().await;
            self.finish(end);
        }
        .instrument(span)
        .await
    }

    /// Runs until the client is closed or the session is lost for good; returns the error
    /// later requests get.
    async fn run_inner(&mut self) -> Error {
        let mut first_attempt = true;
        loop {
            let conn = match self.connect_phase(first_attempt).await {
                Ok(c) => c,
                Err(Outcome::Closed) => return Error::Closed,
                Err(Outcome::Expired) => {
                    if let Some(e) = self.on_expired(false) {
                        return self.stop(e).await;
                    }
                    continue;
                }
                Err(Outcome::GivenUp) => {
                    if let Some(e) = self.on_expired(true) {
                        return self.stop(e).await;
                    }
                    continue;
                }
                Err(Outcome::AuthFailed) => {
                    let e = self.on_auth_failed();
                    return self.stop(e).await;
                }
                Err(Outcome::Disconnected(_)) => unreachable!("connect_phase retries"),
            };
            first_attempt = false;
            let host = conn.host.clone();
            match self.serve(conn).await {
                // detach() and then the connection broke: stop, the session lives on
                Outcome::Disconnected(_) if self.detached.is_some() => return Error::Closed,
                Outcome::Disconnected(why) => {
                    warn!(server = %host, reason = %why, "disconnected");
                    // only a connection that was published CONNECTED (it broke after SASL and
                    // priming) ends a connected period; one that broke before that changes
                    // nothing: the client has been SUSPENDED (and counting towards giving the
                    // session up) since the last one broke
                    if self.status_tx.borrow().state == State::Connected {
                        self.disconnected_since = Some(Instant::now());
                        self.publish(State::Suspended, KeeperState::Disconnected, None);
                    }
                }
                Outcome::Expired => {
                    if let Some(e) = self.on_expired(false) {
                        return self.stop(e).await;
                    }
                }
                Outcome::GivenUp => unreachable!("only the connect phase gives up"),
                Outcome::AuthFailed => {
                    let e = self.on_auth_failed();
                    return self.stop(e).await;
                }
                Outcome::Closed => return Error::Closed,
            }
        }
    }

    /// The session is gone (`given_up`: by the client's own clock, so the server may still
    /// hold it). Returns the terminal error if the client stops here.
    fn on_expired(&mut self, given_up: bool) -> Option<Error> {
        warn!(
            session_id = format_args!("{:#x}", self.session_id),
            given_up, "session expired"
        );
        if given_up && self.seen_rw && self.session_id != 0 {
            self.abandoned = Some((self.session_id, self.passwd.clone()));
        }
        let err = Error::SessionExpired;
        self.fail_queued(&err);
        self.watches.fail_all(&err);
        self.publish(State::Lost, KeeperState::Expired, None);
        self.session_id = 0;
        self.passwd = vec![0; 16];
        self.negotiated = self.cfg.session_timeout;
        self.disconnected_since = None;
        self.seen_rw = false;
        if self.cfg.reconnect_after_expiry && self.closing.is_none() {
            info!("starting a new session");
            None
        } else {
            Some(err)
        }
    }

    /// The server refused a credential (AUTHFAILED) and closed the connection. A 3.8 server
    /// closes only the connection: the session and its ephemeral nodes live on until it times
    /// out. So the session is abandoned and closed (re-attached on a new connection without
    /// the refused credential, then closeSession), within the close timeout.
    fn on_auth_failed(&mut self) -> Error {
        warn!("authentication failed; the client closes the session and stops");
        let err = Error::AuthFailed;
        if self.seen_rw && self.session_id != 0 && self.detached.is_none() {
            self.abandoned = Some((self.session_id, self.passwd.clone()));
        }
        self.fail_queued(&err);
        self.watches.fail_all(&err);
        self.publish(State::Lost, KeeperState::AuthFailed, None);
        self.seen_rw = false;
        self.disconnected_since = None;
        self.begin_close(None);
        err
    }

    /// LOST is final (`err`). A session the servers may still hold (given up on the client's
    /// clock, or left by an auth failure) is closed before the task ends: it keeps reaching for
    /// a server to re-attach and send closeSession until that is done, or the server says the
    /// session is gone, or a close (`close()`, every handle dropped, an auth failure) runs out
    /// of its close timeout. Requests meanwhile fail with `err` at once.
    async fn stop(&mut self, err: Error) -> Error {
        if self.abandoned.is_none() || self.detached.is_some() {
            return err;
        }
        info!(
            session_id = format_args!("{:#x}", self.abandoned.as_ref().map_or(0, |a| a.0)),
            "closing the abandoned session before stopping"
        );
        self.stopped = Some(err.clone());
        if let Ok(conn) = self.connect_phase(false).await {
            // only abandoned sessions are attempted once stopped
            debug_assert!(false, "a stopped client connected a session to serve");
            drop(conn);
        }
        err
    }

    fn fail_queued(&mut self, err: &Error) {
        for p in self.queued.drain(..) {
            p.reply.send(Err(err.clone()));
        }
        for (_, _, tx) in self.pending_auth_cmds.drain(..) {
            tx.send(Err(err.clone()));
        }
        for w in self.builder_auth_waiters.drain(..) {
            w.tx.send(Err(err.clone()));
        }
    }

    fn finish(&mut self, err: Error) {
        *self.shared.terminal.lock().unwrap() = Some(err.clone());
        self.fail_queued(&err);
        self.watches.fail_all(&err);
        if matches!(err, Error::Closed) {
            self.publish(State::Lost, KeeperState::Closed, None);
        }
        self.rx.close();
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Request(p) => {
                    p.reply.send(Err(err.clone()));
                }
                Command::Auth { reply, .. } => {
                    reply.send(Err(err.clone()));
                }
                Command::Close { reply } => self.close_waiters.push(reply),
                Command::Detach { reply } | Command::UpdateHosts { reply, .. } => {
                    let _ = reply.send(());
                }
            }
        }
        let result = match self.closing.take() {
            // detached: the session lives on, nothing here closed it
            None if self.detached.is_some() => Err(Error::Closed),
            // closed, or nothing left to close (it expired, or there never was one)
            Some(c) if c.result.is_ok() || !self.has_session_to_close() => Ok(()),
            Some(Closing {
                result: Err(Error::Timeout { .. }),
                sent,
                ..
            }) => Err(Error::Timeout { sent }),
            Some(c) => c.result,
            // the session ended on its own (expired, auth failed)
            None => Ok(()),
        };
        *self.shared.close_result.lock().unwrap() = Some(result.clone());
        if let Some(d) = self.detached.take() {
            let _ = d.send(());
        }
        for w in self.close_waiters.drain(..) {
            let _ = w.send(result.clone());
        }
        for s in self.shared.subscribers.lock().unwrap().drain(..) {
            s.close();
        }
        debug!("session task ended");
    }

    /// Starts closing: `close()` was called or every handle is gone. The close has
    /// `close_timeout` to reach a server and have closeSession acknowledged.
    fn begin_close(&mut self, reply: Option<oneshot::Sender<Result<()>>>) {
        if let Some(r) = reply {
            self.close_waiters.push(r);
        }
        if self.closing.is_none() {
            let result = if self.has_session_to_close() {
                Err(Error::Timeout { sent: false })
            } else {
                Ok(())
            };
            self.closing = Some(Closing {
                deadline: Instant::now() + self.cfg.close_timeout,
                result,
                sent: false,
            });
        }
    }

    /// When the oldest queued request without a deadline of its own stops waiting (all wait as
    /// long, counted from when they were queued, so the first one with an expiry is the
    /// earliest).
    fn next_queue_expiry(&self) -> Option<Instant> {
        self.queued.iter().find_map(|p| p.queue_expiry)
    }

    /// Fails queued requests that waited for a connection as long as they may: they were never
    /// sent.
    fn expire_queued(&mut self) {
        let now = Instant::now();
        let mut keep = VecDeque::with_capacity(self.queued.len());
        for p in self.queued.drain(..) {
            if p.queue_expiry.is_some_and(|t| t <= now) {
                p.reply.send(Err(Error::Timeout { sent: false }));
            } else {
                keep.push_back(p);
            }
        }
        self.queued = keep;
    }

    /// A command received while no connection is up, in any of the waits of that time
    /// (connect attempts, closing a given-up session, a SASL exchange): marks the handles gone
    /// at the end of the channel, and lowers `queue_expiry` to a newly queued request's expiry
    /// when none was due (all queued requests wait as long, so an earlier one's comes first;
    /// no scan of the queue per command).
    fn offline_command(&mut self, cmd: Option<Command>, queue_expiry: &mut Option<Instant>) {
        if cmd.is_none() {
            self.handles_gone = true;
        }
        let queued = self.on_command_offline(cmd);
        if queue_expiry.is_none() {
            *queue_expiry = queued;
        }
    }

    /// Handles a command while no connection is up; the queue expiry of a request it queued.
    fn on_command_offline(&mut self, cmd: Option<Command>) -> Option<Instant> {
        if let Some(err) = &self.stopped {
            match cmd {
                Some(Command::Request(p)) => {
                    p.reply.send(Err(err.clone()));
                    return None;
                }
                Some(Command::Auth { reply, .. }) => {
                    reply.send(Err(err.clone()));
                    return None;
                }
                _ => {}
            }
        }
        match cmd {
            // close() was called: whatever is issued after it is never sent
            Some(Command::Request(p)) if self.closing.is_some() => {
                p.reply.send(Err(Error::Closed));
            }
            Some(Command::Auth { reply, .. }) if self.closing.is_some() => {
                reply.send(Err(Error::Closed));
            }
            Some(Command::Request(p)) if p.fail_fast => {
                p.reply.send(Err(Error::NotConnected));
            }
            Some(Command::Request(mut p)) => {
                p.queue_expiry = p.queue_timeout.and_then(|d| Instant::now().checked_add(d));
                // keep the queue free of requests whose callers gave up
                if self.queued.len() >= 64 && self.queued.len().is_power_of_two() {
                    self.queued.retain(|q| !q.is_abandoned());
                }
                let expiry = p.queue_expiry;
                self.queued.push_back(p);
                return expiry;
            }
            Some(Command::Auth {
                scheme,
                auth,
                reply,
            }) => {
                // likewise for credentials whose add_auth gave up
                let n = self.pending_auth_cmds.len();
                if n >= 64 && n.is_power_of_two() {
                    self.pending_auth_cmds.retain(|(_, _, r)| !r.is_abandoned());
                }
                self.pending_auth_cmds.push((scheme, auth, reply))
            }
            Some(Command::Close { reply }) => self.begin_close(Some(reply)),
            Some(Command::Detach { reply }) => self.detached = Some(reply),
            Some(Command::UpdateHosts { hosts, reply }) => {
                // not connected: nothing to leave
                self.update_hosts(hosts, None);
                let _ = reply.send(());
            }
            None => self.begin_close(None),
        }
        None
    }

    /// Replaces the host list; returns whether a client on `current` should move.
    pub(crate) fn update_hosts(
        &mut self,
        hosts: Vec<HostAddr>,
        current: Option<&HostAddr>,
    ) -> bool {
        let moving = self.ring.update(hosts, current);
        info!(
            hosts = %self.ring.hosts().iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","),
            moving,
            "server list updated"
        );
        *self.shared.hosts.lock().unwrap() = self.ring.hosts().to_vec();
        moving
    }
}

/// Sleeps until `at`, or forever without one. No timer exists until it is first polled: a
/// `select!` evaluates the future of a disabled branch too (it only does not poll it), and the
/// serve loop goes round once per frame read, so `sleep_until(far_future())` there made (and
/// dropped) a timer and read the clock per reply.
pub(crate) async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}

pub(crate) fn rand_duration(max: Duration) -> Duration {
    if max.is_zero() {
        return max;
    }
    use rand::Rng;
    Duration::from_micros(rand::thread_rng().gen_range(0..=max.as_micros() as u64))
}
