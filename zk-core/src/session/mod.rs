//! The session task: the one task that owns the socket.
//!
//! It runs a loop over hosts: connect, handshake (re-attaching to the same session id and
//! password after the first time), re-send auth, re-register watches, flush queued requests,
//! then serve the connection (pipelined requests matched to replies in xid order, pings,
//! notifications) until it breaks; then do it again with the next host. Requests that were in
//! flight when a connection broke fail with [`Error::ConnectionLoss`]; requests that arrive while
//! disconnected wait in a queue for the next connection. A server answering the handshake with
//! timeout 0, or no server reachable for a whole session timeout, means the session is gone:
//! state LOST, every waiter and watcher gets [`Error::SessionExpired`], and (by default) a new
//! session is started.

pub(crate) mod hosts;
pub(crate) mod timers;
pub(crate) mod transport;

use crate::codec::FrameCodec;
use crate::error::{Error, Result};
use crate::proto::{
    classify_connect_frame, xid, AuthPacket, Chroot, ConnectRequest, ConnectResponse, EventType,
    KeeperState, OpCode, Reader, Record, ReplyHeader, WatcherEvent, Writer, REPLY_HEADER_LEN,
};
use crate::state::{State, Status};
use crate::watch::{Registry, WatchKind, WatchRequest};
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use hosts::{HostAddr, HostRing};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timers::Timers;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::codec::FramedRead;
use tracing::{debug, info, info_span, warn, Instrument};
use transport::{Connector, Transport};

/// A reply as the session task hands it back: header and raw body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub header: ReplyHeader,
    pub body: Bytes,
}

pub(crate) type ReplySender = oneshot::Sender<Result<Reply>>;

/// Initial size of a connection's output buffer.
const OUT_INITIAL: usize = 8 * 1024;
/// An output buffer that grew past this is replaced once drained.
const OUT_SHRINK_ABOVE: usize = 1 << 20;

/// A request on its way to the session task: a complete frame (length prefix and header
/// included, xid to be patched in), plus what to do with the reply.
pub(crate) struct PendingRequest {
    pub frame: BytesMut,
    pub op: OpCode,
    pub watch: Option<WatchRequest>,
    pub reply: ReplySender,
    /// Set when the frame is handed to the socket, so a timed-out caller knows whether the
    /// request may have been applied.
    pub sent: Option<Arc<AtomicBool>>,
    /// Fail with [`Error::NotConnected`] instead of waiting while disconnected.
    pub fail_fast: bool,
}

/// Builds a request frame: `len, xid (patched later), op, body`.
pub(crate) fn request_frame(op: OpCode, body: &impl Record) -> BytesMut {
    let mut b = BytesMut::with_capacity(64);
    b.put_i32(0);
    b.put_i32(0);
    b.put_i32(op.code());
    body.write(&mut Writer::new(&mut b));
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b
}

fn frame_of(body: &impl Record) -> BytesMut {
    let mut b = BytesMut::with_capacity(64);
    b.put_i32(0);
    body.write(&mut Writer::new(&mut b));
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b
}

fn special_frame(xid: i32, op: OpCode, body: Option<&dyn Fn(&mut Writer<'_>)>) -> BytesMut {
    let mut b = BytesMut::with_capacity(32);
    b.put_i32(0);
    b.put_i32(xid);
    b.put_i32(op.code());
    if let Some(f) = body {
        f(&mut Writer::new(&mut b));
    }
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b
}

pub(crate) enum Command {
    Request(PendingRequest),
    Auth {
        scheme: String,
        auth: Vec<u8>,
        reply: oneshot::Sender<Result<()>>,
    },
    Close {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// Settings the session task runs with.
pub(crate) struct Config {
    pub hosts: Vec<HostAddr>,
    pub chroot: Chroot,
    pub session_timeout: Duration,
    pub can_be_read_only: bool,
    pub reconnect_after_expiry: bool,
    pub max_frame_len: usize,
    pub connector: Arc<dyn Connector>,
    /// Upper bound of the random pause before a reconnect.
    pub reconnect_jitter: Duration,
    /// Pause after every host failed in a row.
    pub cycle_pause: Duration,
    /// How long `close` waits for the server to acknowledge closeSession.
    pub close_timeout: Duration,
}

/// What handles share with the session task.
pub(crate) struct SharedState {
    pub subscribers: Mutex<Vec<mpsc::UnboundedSender<Status>>>,
    /// Why the task ended, for requests sent after that.
    pub terminal: Mutex<Option<Error>>,
    /// How many watchers the registry holds (a test hook: `Client::registered_watchers`).
    pub watchers: Arc<std::sync::atomic::AtomicUsize>,
}

struct InFlight {
    xid: i32,
    op: OpCode,
    reply: Option<ReplySender>,
    watch: Option<WatchRequest>,
}

/// How one connection ended.
enum Outcome {
    /// Try again (same session).
    Disconnected(String),
    /// The server says the session is gone.
    Expired,
    AuthFailed,
    /// Closed by the user (or every handle dropped).
    Closed,
}

struct Conn {
    reader: FramedRead<ReadHalf<Box<dyn Transport>>, FrameCodec>,
    writer: WriteHalf<Box<dyn Transport>>,
    resp: ConnectResponse,
    host: HostAddr,
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

    queued: VecDeque<PendingRequest>,
    watches: Registry,
    auths: Vec<(String, Vec<u8>)>,
    pending_auth_cmds: Vec<(String, Vec<u8>, oneshot::Sender<Result<()>>)>,
    close_waiters: Vec<oneshot::Sender<Result<()>>>,
    closing: bool,
    /// When the last connection of a live session broke.
    disconnected_since: Option<Instant>,
    next_xid: i32,
}

impl Session {
    pub(crate) fn new(
        cfg: Arc<Config>,
        rx: mpsc::UnboundedReceiver<Command>,
        status_tx: watch::Sender<Status>,
        shared: Arc<SharedState>,
    ) -> Session {
        let negotiated = cfg.session_timeout;
        Session {
            ring: HostRing::new(cfg.hosts.clone()),
            cfg,
            rx,
            status_tx,
            watches: Registry::new(shared.watchers.clone()),
            shared,
            session_id: 0,
            passwd: vec![0; 16],
            last_zxid: 0,
            negotiated,
            seen_rw: false,
            generation: 0,
            queued: VecDeque::new(),
            auths: Vec::new(),
            pending_auth_cmds: Vec::new(),
            close_waiters: Vec::new(),
            closing: false,
            disconnected_since: None,
            next_xid: 1,
        }
    }

    fn publish(&mut self, state: State, keeper_state: KeeperState, server: Option<String>) {
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
        subs.retain(|s| s.send(st.clone()).is_ok());
    }

    /// Auth to send once connected (from the builder, before the task starts).
    pub(crate) fn queue_auth(
        &mut self,
        scheme: String,
        auth: Vec<u8>,
        reply: oneshot::Sender<Result<()>>,
    ) {
        self.pending_auth_cmds.push((scheme, auth, reply));
    }

    fn timers(&self) -> Timers {
        Timers::new(self.negotiated, self.ring.len())
    }

    pub(crate) async fn run(mut self) {
        let span = info_span!("zk_session");
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
            if self.closing {
                return Error::Closed;
            }
            let conn = match self.connect_phase(first_attempt).await {
                Ok(c) => c,
                Err(Outcome::Closed) => return Error::Closed,
                Err(Outcome::Expired) => {
                    if let Some(e) = self.on_expired() {
                        return e;
                    }
                    continue;
                }
                Err(Outcome::AuthFailed) => return self.on_auth_failed(),
                Err(Outcome::Disconnected(_)) => unreachable!("connect_phase retries"),
            };
            first_attempt = false;
            let host = conn.host.clone();
            match self.serve(conn).await {
                Outcome::Disconnected(why) => {
                    warn!(server = %host, reason = %why, "disconnected");
                    self.disconnected_since = Some(Instant::now());
                    self.publish(State::Suspended, KeeperState::Disconnected, None);
                }
                Outcome::Expired => {
                    if let Some(e) = self.on_expired() {
                        return e;
                    }
                }
                Outcome::AuthFailed => return self.on_auth_failed(),
                Outcome::Closed => return Error::Closed,
            }
        }
    }

    /// The session is gone. Returns the terminal error if the client stops here.
    fn on_expired(&mut self) -> Option<Error> {
        warn!(
            session_id = format_args!("{:#x}", self.session_id),
            "session expired"
        );
        let err = Error::SessionExpired;
        self.fail_queued(&err);
        self.watches.fail_all(&err);
        self.publish(State::Lost, KeeperState::Expired, None);
        self.session_id = 0;
        self.passwd = vec![0; 16];
        self.negotiated = self.cfg.session_timeout;
        self.disconnected_since = None;
        self.seen_rw = false;
        if self.cfg.reconnect_after_expiry && !self.closing {
            info!("starting a new session");
            None
        } else {
            Some(err)
        }
    }

    fn on_auth_failed(&mut self) -> Error {
        warn!("authentication failed; the client stops");
        let err = Error::AuthFailed;
        self.fail_queued(&err);
        self.watches.fail_all(&err);
        self.publish(State::Lost, KeeperState::AuthFailed, None);
        err
    }

    fn fail_queued(&mut self, err: &Error) {
        for p in self.queued.drain(..) {
            let _ = p.reply.send(Err(err.clone()));
        }
        for (_, _, tx) in self.pending_auth_cmds.drain(..) {
            let _ = tx.send(Err(err.clone()));
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
                    let _ = p.reply.send(Err(err.clone()));
                }
                Command::Auth { reply, .. } => {
                    let _ = reply.send(Err(err.clone()));
                }
                Command::Close { reply } => self.close_waiters.push(reply),
            }
        }
        for w in self.close_waiters.drain(..) {
            let _ = w.send(Ok(()));
        }
        self.shared.subscribers.lock().unwrap().clear();
        debug!("session task ended");
    }

    /// Handles a command while no connection is up.
    fn on_command_offline(&mut self, cmd: Option<Command>) {
        match cmd {
            Some(Command::Request(p)) if p.fail_fast => {
                let _ = p.reply.send(Err(Error::NotConnected));
            }
            Some(Command::Request(p)) => self.queued.push_back(p),
            Some(Command::Auth {
                scheme,
                auth,
                reply,
            }) => self.pending_auth_cmds.push((scheme, auth, reply)),
            Some(Command::Close { reply }) => {
                self.close_waiters.push(reply);
                self.closing = true;
            }
            None => self.closing = true,
        }
    }

    /// Connects to the next hosts until one completes the handshake.
    async fn connect_phase(&mut self, first_attempt: bool) -> Result<Conn, Outcome> {
        let mut first = first_attempt;
        loop {
            if self.closing {
                // Not connected: nothing to tell a server. The session (if any) expires
                // on its own after its timeout.
                return Err(Outcome::Closed);
            }
            let (host, cycle_done) = self.ring.next_host();
            let mut pause = Duration::ZERO;
            if !first {
                pause += rand_duration(self.cfg.reconnect_jitter);
            }
            if cycle_done {
                pause += self.cfg.cycle_pause;
            }
            first = false;
            let lost_at = self.disconnected_since.map(|t| t + self.negotiated);

            let req = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: self.last_zxid,
                timeout_ms: self.cfg.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                session_id: if self.seen_rw { self.session_id } else { 0 },
                passwd: if self.seen_rw {
                    self.passwd.clone()
                } else {
                    vec![0; 16]
                },
                read_only: Some(self.cfg.can_be_read_only),
            };
            let attempt = attempt(
                self.cfg.clone(),
                host.clone(),
                req,
                pause,
                self.timers().connect_timeout,
            );
            tokio::pin!(attempt);
            let res = loop {
                tokio::select! {
                    cmd = self.rx.recv() => {
                        self.on_command_offline(cmd);
                        if self.closing {
                            return Err(Outcome::Closed);
                        }
                    }
                    _ = sleep_until(lost_at.unwrap_or_else(far_future)), if lost_at.is_some() => {
                        warn!(
                            timeout_ms = self.negotiated.as_millis() as u64,
                            "no server reachable for the whole session timeout; the session is considered expired"
                        );
                        return Err(Outcome::Expired);
                    }
                    r = &mut attempt => break r,
                }
            };
            match res {
                Ok(conn) => {
                    // the server answered: whatever it said, the host works
                    self.ring.connected();
                    if conn.resp.timeout_ms <= 0 {
                        info!(server = %host, "server reports the session expired");
                        return Err(Outcome::Expired);
                    }
                    return Ok(conn);
                }
                Err(e) => {
                    debug!(server = %host, error = %e, "connect attempt failed");
                }
            }
        }
    }

    /// Serves one established connection until it ends.
    async fn serve(&mut self, conn: Conn) -> Outcome {
        let Conn {
            mut reader,
            mut writer,
            resp,
            host,
        } = conn;
        let new_session = resp.session_id != self.session_id || self.session_id == 0;
        self.session_id = resp.session_id;
        self.passwd = resp.passwd.clone();
        self.negotiated = Duration::from_millis(resp.timeout_ms as u64);
        if !resp.read_only {
            self.seen_rw = true;
        }
        if new_session {
            self.generation += 1;
        }
        self.disconnected_since = None;
        self.ring.connected();
        let keeper = if resp.read_only {
            KeeperState::ConnectedReadOnly
        } else {
            KeeperState::SyncConnected
        };
        info!(
            server = %host,
            session_id = format_args!("{:#x}", self.session_id),
            timeout_ms = resp.timeout_ms,
            read_only = resp.read_only,
            new_session,
            "connected"
        );

        let timers = self.timers();
        // small to start: a session is cheap until it has something to say
        let mut out = BytesMut::with_capacity(OUT_INITIAL);
        let mut inflight: VecDeque<InFlight> = VecDeque::new();
        // auth replies are not ordered with the others: the server answers them at once
        let mut auth_waiters: VecDeque<Option<oneshot::Sender<Result<()>>>> = VecDeque::new();

        // Prime: auth, then watches, then queued requests.
        for (scheme, auth) in &self.auths {
            push_auth(&mut out, scheme, auth);
            auth_waiters.push_back(None);
        }
        for (scheme, auth, reply) in std::mem::take(&mut self.pending_auth_cmds) {
            push_auth(&mut out, &scheme, &auth);
            self.auths.push((scheme, auth));
            auth_waiters.push_back(Some(reply));
        }
        let batches = self.watches.set_watches_batches(self.last_zxid);
        if !batches.is_empty() {
            info!(
                watches = self.watches.len(),
                packets = batches.len(),
                "re-registering watches"
            );
        }
        for b in &batches {
            let op = if b.v2 {
                OpCode::SetWatches2
            } else {
                OpCode::SetWatches
            };
            out.extend_from_slice(&special_frame(
                xid::SET_WATCHES,
                op,
                Some(&|w: &mut Writer<'_>| b.write(w)),
            ));
        }
        // the encoded packets hold a second copy of every watched path: let it go
        drop(batches);
        while let Some(p) = self.queued.pop_front() {
            self.enqueue(p, &mut out, &mut inflight);
        }
        self.publish(State::Connected, keeper, Some(host.to_string()));

        let mut last_recv = Instant::now();
        let mut last_send = Instant::now();
        let mut close_deadline: Option<Instant> = None;
        let mut probe = if resp.read_only && self.ring.len() > 1 {
            Some(spawn_rw_probe(self.cfg.clone(), self.ring.others(&host)))
        } else {
            None
        };
        if self.closing {
            self.start_close(&mut out, &mut inflight);
            close_deadline = Some(Instant::now() + self.cfg.close_timeout);
        }

        let never = far_future();
        let outcome = loop {
            let ping_at = last_send + timers.ping_interval;
            let read_deadline = last_recv + timers.read_timeout;
            tokio::select! {
                biased;
                frame = reader.next() => match frame {
                    Some(Ok(f)) => {
                        last_recv = Instant::now();
                        match self.on_frame(f, &mut inflight, &mut auth_waiters) {
                            Ok(None) => {}
                            Ok(Some(o)) => break o,
                            Err(e) => {
                                warn!(server = %host, error = %e, "protocol error; closing the connection");
                                break Outcome::Disconnected(e.to_string());
                            }
                        }
                    }
                    Some(Err(e)) => break Outcome::Disconnected(format!("read: {e}")),
                    None => break Outcome::Disconnected("server closed the connection".into()),
                },
                res = writer.write_buf(&mut out), if !out.is_empty() => match res {
                    Ok(_) => {
                        last_send = Instant::now();
                        if out.is_empty() && out.capacity() > OUT_SHRINK_ABOVE {
                            // a burst (say, re-registering 100k watches) is over: give it back
                            out = BytesMut::with_capacity(OUT_INITIAL);
                        }
                    }
                    Err(e) => break Outcome::Disconnected(format!("write: {e}")),
                },
                cmd = self.rx.recv(), if !self.closing => {
                    self.on_command_online(cmd, &mut out, &mut inflight, &mut auth_waiters);
                    // take whatever else is ready, to batch writes
                    let mut n = 0;
                    while !self.closing && n < 256 {
                        match self.rx.try_recv() {
                            Ok(c) => self.on_command_online(Some(c), &mut out, &mut inflight, &mut auth_waiters),
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                self.on_command_online(None, &mut out, &mut inflight, &mut auth_waiters);
                            }
                        }
                        n += 1;
                    }
                    if self.closing && close_deadline.is_none() {
                        close_deadline = Some(Instant::now() + self.cfg.close_timeout);
                    }
                }
                _ = sleep_until(ping_at), if out.is_empty() => {
                    out.extend_from_slice(&special_frame(xid::PING, OpCode::Ping, None));
                    // counts as a send for the next ping's schedule even before it is written
                    last_send = Instant::now();
                }
                _ = sleep_until(read_deadline) => {
                    break Outcome::Disconnected(format!(
                        "nothing received for {} ms",
                        timers.read_timeout.as_millis()
                    ));
                }
                _ = sleep_until(close_deadline.unwrap_or(never)), if close_deadline.is_some() => {
                    warn!("server did not acknowledge closeSession in time");
                    break Outcome::Closed;
                }
                rw = async { probe.as_mut().unwrap().await }, if probe.is_some() => {
                    probe = None;
                    if let Ok(Some(h)) = rw {
                        info!(server = %h, "found a read-write server; leaving the read-only one");
                        self.ring.prefer(&h);
                        break Outcome::Disconnected("switching to a read-write server".into());
                    }
                }
            }
        };
        if let Some(p) = probe {
            p.abort();
        }
        // Whatever was in flight has an unknown outcome now.
        for f in inflight.drain(..) {
            if let Some(r) = f.reply {
                let err = if f.op == OpCode::CloseSession {
                    Ok(Reply {
                        header: ReplyHeader {
                            xid: f.xid,
                            zxid: 0,
                            err: 0,
                        },
                        body: Bytes::new(),
                    })
                } else {
                    Err(Error::ConnectionLoss)
                };
                let _ = r.send(err);
            }
        }
        for w in auth_waiters.drain(..).flatten() {
            let _ = w.send(Err(Error::ConnectionLoss));
        }
        let _ = writer.shutdown().await;
        if self.closing && matches!(outcome, Outcome::Disconnected(_)) {
            return Outcome::Closed;
        }
        outcome
    }

    fn start_close(&mut self, out: &mut BytesMut, inflight: &mut VecDeque<InFlight>) {
        info!(
            session_id = format_args!("{:#x}", self.session_id),
            "closing session"
        );
        let x = self.take_xid();
        out.extend_from_slice(&special_frame(x, OpCode::CloseSession, None));
        inflight.push_back(InFlight {
            xid: x,
            op: OpCode::CloseSession,
            reply: None,
            watch: None,
        });
    }

    fn take_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    fn enqueue(
        &mut self,
        mut p: PendingRequest,
        out: &mut BytesMut,
        inflight: &mut VecDeque<InFlight>,
    ) {
        if p.reply.is_closed() {
            // the caller gave up (deadline or drop) before it was sent: never send it
            return;
        }
        if let Err(e) = self.watches.on_send(&mut p.frame, &mut p.watch) {
            return drop(p.reply.send(Err(e)));
        }
        let x = self.take_xid();
        p.frame[4..8].copy_from_slice(&x.to_be_bytes());
        out.extend_from_slice(&p.frame);
        if let Some(s) = &p.sent {
            s.store(true, Ordering::Release);
        }
        inflight.push_back(InFlight {
            xid: x,
            op: p.op,
            reply: Some(p.reply),
            watch: p.watch,
        });
    }

    fn on_command_online(
        &mut self,
        cmd: Option<Command>,
        out: &mut BytesMut,
        inflight: &mut VecDeque<InFlight>,
        auth_waiters: &mut VecDeque<Option<oneshot::Sender<Result<()>>>>,
    ) {
        match cmd {
            Some(Command::Request(p)) => self.enqueue(p, out, inflight),
            Some(Command::Auth {
                scheme,
                auth,
                reply,
            }) => {
                push_auth(out, &scheme, &auth);
                self.auths.push((scheme, auth));
                auth_waiters.push_back(Some(reply));
            }
            Some(Command::Close { reply }) => {
                self.close_waiters.push(reply);
                if !self.closing {
                    self.closing = true;
                    self.start_close(out, inflight);
                }
            }
            None => {
                if !self.closing {
                    self.closing = true;
                    self.start_close(out, inflight);
                }
            }
        }
    }

    /// Handles one frame from the server. `Ok(Some(_))` ends the connection.
    fn on_frame(
        &mut self,
        frame: BytesMut,
        inflight: &mut VecDeque<InFlight>,
        auth_waiters: &mut VecDeque<Option<oneshot::Sender<Result<()>>>>,
    ) -> Result<Option<Outcome>> {
        let mut frame = frame;
        if frame.len() < REPLY_HEADER_LEN {
            return Err(Error::Protocol(format!(
                "frame of {} bytes is shorter than a reply header",
                frame.len()
            )));
        }
        let header = ReplyHeader::read(&mut Reader::new(&frame))?;
        let body = frame.split_off(REPLY_HEADER_LEN).freeze();
        match header.xid {
            xid::NOTIFICATION => {
                let ev = WatcherEvent::read(&mut Reader::new(&body))?;
                match EventType::from_code(ev.event_type) {
                    Some(t) => {
                        let n = self.watches.dispatch(t, &ev.path, &self.cfg.chroot);
                        debug!(event = ?t, path = %ev.path, delivered = n, "watch event");
                    }
                    None => warn!(code = ev.event_type, "unknown watch event type"),
                }
            }
            xid::PING => {}
            xid::AUTH => {
                let res = if header.err == 0 {
                    Ok(())
                } else {
                    Err(Error::from_code(header.err))
                };
                if let Some(Some(w)) = auth_waiters.pop_front() {
                    let _ = w.send(res.clone());
                }
                if header.err == Error::AuthFailed.code().unwrap_or(-115) {
                    return Ok(Some(Outcome::AuthFailed));
                }
            }
            xid::SET_WATCHES => {
                if header.err != 0 {
                    warn!(err = header.err, "SetWatches failed");
                }
            }
            x => {
                let Some(f) = inflight.pop_front() else {
                    return Err(Error::Protocol(format!(
                        "reply xid {x} with no request pending"
                    )));
                };
                if f.xid != x {
                    // put it back so it gets ConnectionLoss like the others
                    let expected = f.xid;
                    inflight.push_front(f);
                    return Err(Error::Protocol(format!(
                        "reply xid {x} out of order (expected {expected})"
                    )));
                }
                if header.zxid > self.last_zxid {
                    self.last_zxid = header.zxid;
                }
                if f.op == OpCode::CloseSession {
                    return Ok(Some(Outcome::Closed));
                }
                if let Some(w) = f.watch {
                    if let WatchKind::Remove(t) = w.kind {
                        if header.err == 0 {
                            self.watches.remove(t, &w.path, &self.cfg.chroot);
                        }
                    } else {
                        let exists_miss = w.kind == WatchKind::Exists
                            && header.err == Error::NoNode.code().unwrap();
                        if header.err == 0 || exists_miss {
                            self.watches.register(w, header.err == 0);
                        }
                    }
                }
                if let Some(r) = f.reply {
                    let _ = r.send(Ok(Reply { header, body }));
                }
            }
        }
        Ok(None)
    }
}

fn push_auth(out: &mut BytesMut, scheme: &str, auth: &[u8]) {
    let pkt = AuthPacket {
        auth_type: 0,
        scheme: scheme.to_owned(),
        auth: auth.to_vec(),
    };
    out.extend_from_slice(&special_frame(
        xid::AUTH,
        OpCode::Auth,
        Some(&|w: &mut Writer<'_>| pkt.write(w)),
    ));
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}

fn rand_duration(max: Duration) -> Duration {
    if max.is_zero() {
        return max;
    }
    use rand::Rng;
    Duration::from_micros(rand::thread_rng().gen_range(0..=max.as_micros() as u64))
}

/// One connection attempt: pause, open the stream, send the ConnectRequest, read the answer.
async fn attempt(
    cfg: Arc<Config>,
    host: HostAddr,
    req: ConnectRequest,
    pause: Duration,
    connect_timeout: Duration,
) -> Result<Conn> {
    if !pause.is_zero() {
        sleep(pause).await;
    }
    debug!(server = %host, session_id = format_args!("{:#x}", req.session_id), "connecting");
    let fut = async {
        let stream = cfg.connector.connect(&host).await.map_err(Error::io)?;
        let (rd, mut wr) = tokio::io::split(stream);
        wr.write_all(&frame_of(&req)).await.map_err(Error::io)?;
        wr.flush().await.map_err(Error::io)?;
        let mut reader = FramedRead::new(rd, FrameCodec::new(cfg.max_frame_len));
        let frame = match reader.next().await {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(Error::Protocol(e.to_string())),
            // a member without quorum, or one behind our zxid, closes without answering
            None => {
                return Err(Error::ConnectFailed(format!(
                    "{host} closed the connection during the handshake"
                )))
            }
        };
        match classify_connect_frame(&frame) {
            Ok(resp) => Ok(Conn {
                reader,
                writer: wr,
                resp,
                host: host.clone(),
            }),
            Err(Some(code)) => Err(Error::ConnectFailed(format!(
                "{host} refused the session: {}",
                Error::from_code(code)
            ))),
            Err(None) => Err(Error::Protocol(format!(
                "{host} sent a {}-byte frame that is not a ConnectResponse",
                frame.len()
            ))),
        }
    };
    match timeout(connect_timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::ConnectFailed(format!(
            "{host}: no handshake within {} ms",
            connect_timeout.as_millis()
        ))),
    }
}

/// While connected to a read-only server, looks for a read-write one (`isro` answers `rw`),
/// backing off from 100 ms to 60 s.
fn spawn_rw_probe(
    cfg: Arc<Config>,
    others: Vec<HostAddr>,
) -> tokio::task::JoinHandle<Option<HostAddr>> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            sleep(backoff).await;
            for h in &others {
                if probe_isro(&*cfg.connector, h).await.as_deref() == Some("rw") {
                    return Some(h.clone());
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    })
}

async fn probe_isro(connector: &dyn Connector, host: &HostAddr) -> Option<String> {
    let fut = async {
        let mut s = connector.connect(host).await.ok()?;
        s.write_all(b"isro").await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(String::from_utf8_lossy(&buf).trim().to_owned())
    };
    timeout(Duration::from_secs(1), fut).await.ok().flatten()
}
