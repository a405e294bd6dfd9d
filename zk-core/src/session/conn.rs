//! One established connection: its socket halves, output buffer, in-flight queue and auth
//! waiters, and the loop that serves it until it breaks.

use super::connect::spawn_rw_probe;
use super::hosts::HostAddr;
use super::request::{put_frame, PendingRequest, Reply, ReplySender};
use super::transport::{RecvLowat, Transport};
use super::{AuthWaiter, Command, Outcome, Session};
use crate::codec::{InFrame, ReplyCodec};
use crate::error::{DecodeExt, Error, Result};
use crate::proto::{
    code, xid, AuthPacket, ConnectResponse, EventType, KeeperState, OpCode, Reader, Record,
    ReplyHeader, WatcherEvent, REPLY_HEADER_LEN,
};
use crate::state::State;
use crate::watch::{Registry, WatchRequest};
use bytes::BytesMut;
use futures_util::{FutureExt, StreamExt};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

/// Initial size of a connection's output buffer.
const OUT_INITIAL: usize = 8 * 1024;
/// A buffer (output, or the reader's input) that grew past this is replaced once drained: a
/// burst (re-registering 100k watches; a thousand lock contenders joining, each listing the
/// thousand others) should not keep its memory for the life of the connection.
const SHRINK_ABOVE: usize = 64 * 1024;
/// What the reader's input buffer is replaced with (`FramedRead`'s own initial size).
const IN_INITIAL: usize = 8 * 1024;
/// How long a closing connection may take to flush and shut down its write side (a blackholed
/// link must not freeze the session task).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(200);
/// Commands taken in one go after a wake-up, so that many requests share one write.
const BATCH: usize = 256;
/// Write coalescing: with fewer requests than this written and unanswered, new ones are
/// written at once (a lone caller never waits).
const HOLD_MIN_INFLIGHT: usize = 8;
/// Write coalescing: requests are held back while fewer than one per this many written and
/// unanswered ones wait in the buffer, so the server always has at least this share of the
/// requests in flight (4: 80 % of them).
const HOLD_SHARE: usize = 4;
/// Write coalescing: never more requests or bytes than this held back.
const HOLD_MAX: usize = 64;
const HOLD_MAX_BYTES: usize = 64 * 1024;

/// Whether to write the output buffer now. Requests are written at once unless many are
/// already at the server: then they gather into fewer, larger writes (fewer syscalls and
/// wake-ups per request on both ends). A held request waits only while at least
/// [`HOLD_MIN_INFLIGHT`] earlier ones are unanswered: the server answers in order, so it could
/// not have answered it before those anyway; each of their replies re-checks this.
/// `written`: requests written and unanswered; `held`: requests in the buffer; `urgent`:
/// something else is in the buffer (ping, auth, closeSession, SetWatches, a partly written
/// frame), which goes at once.
fn should_flush(out_len: usize, written: usize, held: usize, urgent: bool) -> bool {
    out_len > 0
        && (urgent
            || written < HOLD_MIN_INFLIGHT
            || held * HOLD_SHARE >= written
            || held >= HOLD_MAX
            || out_len >= HOLD_MAX_BYTES)
}

/// Frames handled in one pass of the serve loop when they are ready one after another. Also
/// the bound on frames handled in a row in passes where only the reader ran: then one pass
/// lets writes, commands and timers go first.
const FRAMES_PER_PASS: usize = 64;

/// Slots of the in-flight queue kept however empty it gets.
const INFLIGHT_KEEP: usize = 64;

/// Read batching: the receive low-water mark is raised only while at least this many replies
/// are owed beyond the one being read (fewer: every byte wakes the task, as without it).
const LOWAT_MIN_OWED: usize = 8;
/// Read batching: at most this many owed replies are counted into the low-water mark.
const LOWAT_MAX_OWED: usize = 64;
/// Read batching: replies read without a stall before the connection counts
/// [`LOWAT_GROW_STEP`] more owed replies into the mark again (after a stall halved it).
const LOWAT_GROW_EVERY: usize = 16_384;
/// Read batching: see [`LOWAT_GROW_EVERY`].
const LOWAT_GROW_STEP: usize = 8;
/// Read batching: after this long without a frame, the low-water mark is dropped until the
/// next frame, so replies that arrived stay unread no longer than this when the server pauses
/// mid-burst.
const LOWAT_MAX_WAIT: Duration = Duration::from_millis(5);

/// Read batching: bytes counted per further reply owed, the smallest reply frame there is (a
/// 4-byte length and a bare reply header, as an error reply is).
const MIN_REPLY_FRAME: usize = 4 + REPLY_HEADER_LEN;

/// The receive low-water mark for `owed` replies owed (requests written and unanswered), of
/// which at most `cap` are counted (the connection's [`LowatLimit`]). Every
/// reply is a frame of at least [`MIN_REPLY_FRAME`] (20) bytes; the oldest one may be partly
/// read already (its head in the reader's buffer, or the head of an oversized frame whose rest
/// is being skipped), but at least one byte of it is still to come. So the kernel must still
/// deliver more than 20 * (owed - 1) bytes, which this never exceeds: it counts 20 bytes per
/// further reply, the count rounded down to its two highest bits (8, 12, 16, 24, 32, 48, 64
/// replies), so it changes only when the count crosses one of those (not a system call per
/// reply).
fn recv_lowat(owed: usize, cap: usize) -> usize {
    let n = owed.saturating_sub(1).min(cap.min(LOWAT_MAX_OWED));
    if n < LOWAT_MIN_OWED {
        1
    } else {
        let top = usize::BITS - 1 - n.leading_zeros();
        (n & (0b11 << (top - 1))) * MIN_REPLY_FRAME
    }
}

/// How many owed replies a connection counts into its low-water mark: halved at every stall,
/// grown back slowly.
///
/// Why a mark can be out of reach although every reply owed is on its way: the server's TCP
/// sends each small reply as its own segment, and only so many segments may be unacknowledged
/// at once (its congestion window, counted in segments: a few dozen on loopback, as few as 4
/// at times); the client's kernel delays its acknowledgements while it holds fewer bytes than
/// the mark. A mark of 48 replies' worth of bytes that arrive as 48 segments then waits for
/// the [`LOWAT_MAX_WAIT`] fallback at every burst. The window is not known here, but a stall
/// shows the mark was beyond it: the limit halves (down to off, below [`LOWAT_MIN_OWED`]) and
/// grows back by [`LOWAT_GROW_STEP`] per [`LOWAT_GROW_EVERY`] replies read without a stall, so
/// a connection settles just under what its server's TCP delivers, and one whose replies grew
/// larger (fewer segments per byte) recovers its batching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LowatLimit {
    cap: usize,
    /// Replies read since the last stall or growth.
    good: usize,
}

impl LowatLimit {
    const fn new() -> LowatLimit {
        LowatLimit {
            cap: LOWAT_MAX_OWED,
            good: 0,
        }
    }

    /// The mark was not reached within [`LOWAT_MAX_WAIT`].
    fn stalled(&mut self) {
        self.cap /= 2;
        self.good = 0;
    }

    /// `n` replies were read.
    fn read(&mut self, n: usize) {
        self.good += n;
        if self.good >= LOWAT_GROW_EVERY {
            self.good = 0;
            self.cap = (self.cap + LOWAT_GROW_STEP).min(LOWAT_MAX_OWED);
        }
    }
}

/// A request written to the connection, waiting for its reply.
struct InFlight {
    xid: i32,
    op: OpCode,
    reply: Option<ReplySender>,
    watch: Option<WatchRequest>,
}

pub(crate) struct Conn {
    pub(super) reader: FramedRead<ReadHalf<Box<dyn Transport>>, ReplyCodec>,
    pub(super) writer: WriteHalf<Box<dyn Transport>>,
    /// The socket's receive low-water mark (plain TCP on Linux only).
    lowat: Option<RecvLowat>,
    /// Read batching is off until the next frame (the server paused mid-burst).
    lowat_paused: bool,
    /// How many owed replies count into the low-water mark.
    lowat_limit: LowatLimit,
    pub(super) resp: ConnectResponse,
    pub(super) host: HostAddr,
    /// Bytes waiting to be written.
    out: BytesMut,
    /// Requests in `out` (not yet written, or written only in part).
    held: usize,
    /// `out` holds something other than requests, or a partly written frame: write it now.
    urgent: bool,
    /// Requests written (or in `out`), in xid order: ZooKeeper answers in order.
    inflight: VecDeque<InFlight>,
    /// Auth replies are not ordered with the others (the server answers them at once); `None`
    /// for a replayed credential nobody waits for.
    auth_waiters: VecDeque<Option<AuthWaiter>>,
    next_xid: i32,
    /// Whether closeSession was written.
    close_sent: bool,
}

impl Conn {
    pub(super) fn new(
        reader: FramedRead<ReadHalf<Box<dyn Transport>>, ReplyCodec>,
        writer: WriteHalf<Box<dyn Transport>>,
        lowat: Option<RecvLowat>,
        resp: ConnectResponse,
        host: HostAddr,
    ) -> Conn {
        Conn {
            reader,
            writer,
            lowat,
            lowat_paused: false,
            lowat_limit: LowatLimit::new(),
            resp,
            host,
            // small to start: a session is cheap until it has something to say
            out: BytesMut::with_capacity(OUT_INITIAL),
            held: 0,
            urgent: false,
            inflight: VecDeque::new(),
            auth_waiters: VecDeque::new(),
            next_xid: 1,
            close_sent: false,
        }
    }

    /// Whether the output buffer should be written now (see [`should_flush`]).
    fn should_flush(&self) -> bool {
        let written = self.inflight.len() - self.held.min(self.inflight.len());
        should_flush(self.out.len(), written, self.held, self.urgent)
    }

    /// Replies the server still owes: requests written in full and unanswered. Requests still
    /// in the output buffer are not counted (`held` counts every request added since the
    /// buffer was last empty, so a partly written buffer undercounts), nor is a closeSession
    /// while anything is unwritten. Pings, auth and SetWatches are not counted either: their
    /// replies, like notifications, only add bytes. Undercounting is safe (an earlier wake-up);
    /// overcounting would leave the task asleep waiting for bytes that never come.
    fn owed(&self) -> usize {
        let mut n = self.inflight.len() - self.held.min(self.inflight.len());
        if self.close_sent && !self.out.is_empty() {
            n = n.saturating_sub(1);
        }
        n
    }

    /// Brings the receive low-water mark in line with the replies owed (see [`recv_lowat`]).
    /// Called before every wait, so the task never sleeps on a mark set for more replies than
    /// are owed. Returns whether the mark is raised (above 1). A mark that could not be
    /// raised is given up (the connection reads as without it); one that could not be lowered
    /// is an error: the connection must end, it could wait for bytes that never come.
    fn sync_lowat(&mut self) -> std::io::Result<bool> {
        if self.lowat.is_none() {
            return Ok(false);
        }
        let want = if self.lowat_paused {
            1
        } else {
            recv_lowat(self.owed(), self.lowat_limit.cap)
        };
        let Some(l) = &mut self.lowat else {
            return Ok(false);
        };
        if let Err(e) = l.set(want) {
            if l.current() > 1 {
                return Err(e);
            }
            debug!(error = %e, "SO_RCVLOWAT refused; reading without it");
            self.lowat = None;
            return Ok(false);
        }
        Ok(l.current() > 1)
    }

    /// After a write: a partly written buffer is finished at once.
    fn wrote(&mut self) {
        if self.out.is_empty() {
            self.held = 0;
            self.urgent = false;
        } else {
            self.urgent = true;
        }
    }

    pub(super) fn take_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    /// Writes a request to the output buffer, unless its caller gave up: the send state is
    /// claimed first, so a caller that timed out before this point knows it was never sent.
    /// The watch registry may adjust the frame (see [`Registry::on_send`]) or refuse it.
    fn enqueue(&mut self, mut p: PendingRequest, watches: &mut Registry) {
        if !p.reply.claim() {
            return;
        }
        let mut watch = p.watch.map(|w| *w);
        if let Err(e) = watches.on_send(&mut p.frame, &mut watch) {
            p.reply.send(Err(e));
            return;
        }
        let x = self.take_xid();
        p.frame[4..8].copy_from_slice(&x.to_be_bytes());
        self.out.extend_from_slice(&p.frame);
        self.held += 1;
        self.inflight.push_back(InFlight {
            xid: x,
            op: p.op,
            reply: Some(p.reply),
            watch,
        });
    }

    fn push_auth(&mut self, scheme: &str, auth: &[u8], waiter: Option<AuthWaiter>) {
        let pkt = AuthPacket {
            auth_type: 0,
            scheme: scheme.to_owned(),
            auth: auth.to_vec(),
        };
        put_frame(&mut self.out, Some((xid::AUTH, OpCode::Auth)), |w| {
            pkt.write(w)
        });
        self.urgent = true;
        self.auth_waiters.push_back(waiter);
    }

    fn start_close(&mut self, session_id: i64) {
        if self.close_sent {
            return;
        }
        info!(
            session_id = format_args!("{session_id:#x}"),
            "closing session"
        );
        let x = self.take_xid();
        put_frame(&mut self.out, Some((x, OpCode::CloseSession)), |_| {});
        self.urgent = true;
        self.inflight.push_back(InFlight {
            xid: x,
            op: OpCode::CloseSession,
            reply: None,
            watch: None,
        });
        self.close_sent = true;
    }

    /// Whatever was in flight has an unknown outcome now. Returns the auth waiters that wait
    /// for the next connection's replay instead (see [`AuthWaiter::again`]).
    fn fail_inflight(&mut self) -> Vec<AuthWaiter> {
        for f in self.inflight.drain(..) {
            if let Some(r) = f.reply {
                r.send(Err(Error::ConnectionLoss));
            }
        }
        let mut again = Vec::new();
        for w in self.auth_waiters.drain(..).flatten() {
            if w.again.is_some() {
                again.push(w);
            } else {
                w.tx.send(Err(Error::ConnectionLoss));
            }
        }
        again
    }

    /// The reply for the oldest request in flight, which must have xid `x`.
    fn pop_inflight(&mut self, x: i32) -> Result<InFlight> {
        let Some(f) = self.inflight.pop_front() else {
            return Err(Error::Protocol(format!(
                "reply xid {x} with no request pending"
            )));
        };
        if f.xid != x {
            // put it back so it gets ConnectionLoss like the others
            let expected = f.xid;
            self.inflight.push_front(f);
            return Err(Error::Protocol(format!(
                "reply xid {x} out of order (expected {expected})"
            )));
        }
        // a burst of requests in flight (a thousand lock contenders joining at once) grew the
        // queue; give the memory back once it is mostly empty (amortized: a shrink follows
        // at least as many pops as it frees slots)
        let cap = self.inflight.capacity();
        if cap > INFLIGHT_KEEP && self.inflight.len() * 8 < cap {
            self.inflight.shrink_to(self.inflight.len() * 2);
        }
        Ok(f)
    }
}

impl Session {
    /// Serves one established connection until it ends.
    pub(super) async fn serve(&mut self, mut conn: Conn) -> Outcome {
        let resp = conn.resp.clone();
        let host = conn.host.clone();
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
        if let Some(sasl) = self.cfg.sasl.clone() {
            if let Err(o) = self.sasl_phase(&mut conn, &sasl, timers.read_timeout).await {
                self.end_conn(conn).await;
                return o;
            }
        }
        self.prime(&mut conn);
        self.disconnected_since = None;
        // only now does the host count as working: a failure before this point (a SASL exchange
        // cut, an unexpected SASL error) was a failed attempt, and a cycle of them pauses
        self.ring.connected();
        self.publish(State::Connected, keeper, Some(host.to_string()));

        let mut probe = if resp.read_only && self.ring.len() > 1 {
            Some(spawn_rw_probe(self.cfg.clone(), self.ring.others(&host)))
        } else {
            None
        };
        if self.closing.is_some() {
            conn.start_close(self.session_id);
        }

        let mut last_recv = Instant::now();
        let mut last_send = Instant::now();
        // One timer each, re-armed only when it fires early: no timer is created or reset per
        // frame.
        let ping = tokio::time::sleep(timers.ping_interval);
        let read_deadline = tokio::time::sleep(timers.read_timeout);
        // while the receive low-water mark is raised: checks that frames keep coming
        let lowat_check = tokio::time::sleep(LOWAT_MAX_WAIT);
        let mut lowat_armed = false;
        tokio::pin!(ping, read_deadline, lowat_check);

        // detach(): no new commands; what was issued before it is written and answered (within
        // the close timeout), then the task stops without closing the session
        let mut detach_at: Option<Instant> = None;
        // frames handled in passes where only the reader ran: past FRAMES_PER_PASS, the next
        // pass lets the other branches go first (a steady stream of frames must not starve
        // writes, commands, pings and the close deadline)
        let mut frames_in_a_row = 0;
        let outcome = loop {
            if self.detached.is_some() {
                if conn.out.is_empty() && conn.inflight.is_empty() {
                    break Outcome::Closed;
                }
                detach_at.get_or_insert_with(|| Instant::now() + self.cfg.close_timeout);
            }
            let raised = match conn.sync_lowat() {
                Ok(r) => r,
                Err(e) => break Outcome::Disconnected(format!("SO_RCVLOWAT: {e}")),
            };
            if raised && !lowat_armed {
                lowat_check
                    .as_mut()
                    .reset(last_recv.max(Instant::now()) + LOWAT_MAX_WAIT);
            }
            lowat_armed = raised;
            let after_others = frames_in_a_row >= FRAMES_PER_PASS;
            if after_others {
                frames_in_a_row = 0;
            }
            let mut read_this_pass = false;
            tokio::select! {
                biased;
                frame = next_frame(&mut conn.reader, after_others) => match frame {
                    Some(Ok(f)) => {
                        last_recv = Instant::now();
                        conn.lowat_paused = false;
                        // The frames that are ready follow in this pass (up to a bound): one
                        // clock read, low-water-mark check and select per group of replies,
                        // not per reply. Polling without this task's waker is fine: the next
                        // select polls the reader again with it before the task sleeps.
                        // Only while bytes are buffered (a partial frame may read the socket).
                        let mut frame = f;
                        let mut more = FRAMES_PER_PASS;
                        let end = loop {
                            match self.on_frame(&mut conn, frame) {
                                Ok(None) => {}
                                Ok(Some(o)) => break Some(o),
                                Err(e) => {
                                    warn!(server = %host, error = %e, "protocol error; closing the connection");
                                    break Some(Outcome::Disconnected(e.to_string()));
                                }
                            }
                            more -= 1;
                            // nothing buffered: the socket is polled in the next pass anyway
                            // (a lone caller's reply costs no extra poll)
                            if more == 0 || conn.reader.read_buffer().is_empty() {
                                break None;
                            }
                            match conn.reader.next().now_or_never() {
                                Some(Some(Ok(f))) => frame = f,
                                Some(Some(Err(e))) => break Some(Outcome::Disconnected(format!("read: {e}"))),
                                Some(None) => break Some(Outcome::Disconnected("server closed the connection".into())),
                                None => break None,
                            }
                        };
                        if let Some(o) = end {
                            break o;
                        }
                        read_this_pass = true;
                        frames_in_a_row += FRAMES_PER_PASS - more;
                        conn.lowat_limit.read(FRAMES_PER_PASS - more);
                        let buf = conn.reader.read_buffer_mut();
                        if buf.is_empty() && buf.capacity() > SHRINK_ABOVE {
                            *buf = BytesMut::with_capacity(IN_INITIAL);
                        }
                    }
                    Some(Err(e)) => break Outcome::Disconnected(format!("read: {e}")),
                    None => break Outcome::Disconnected("server closed the connection".into()),
                },
                res = conn.writer.write_buf(&mut conn.out), if conn.should_flush() => match res {
                    Ok(_) => {
                        last_send = Instant::now();
                        conn.wrote();
                        if conn.out.is_empty() && conn.out.capacity() > SHRINK_ABOVE {
                            // a burst (say, re-registering 100k watches) is over: give it back
                            conn.out = BytesMut::with_capacity(OUT_INITIAL);
                        }
                    }
                    Err(e) => break Outcome::Disconnected(format!("write: {e}")),
                },
                cmd = self.rx.recv(), if self.closing.is_none() && self.detached.is_none() => {
                    self.on_command_online(&mut conn, cmd);
                    // take whatever else is ready, to batch writes
                    for _ in 0..BATCH {
                        if self.closing.is_some() || self.detached.is_some() {
                            break;
                        }
                        match self.rx.try_recv() {
                            Ok(c) => self.on_command_online(&mut conn, Some(c)),
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                self.on_command_online(&mut conn, None)
                            }
                        }
                    }
                    if std::mem::take(&mut self.rebalance) && self.closing.is_none() {
                        info!(server = %host, "the server list changed: moving to another server");
                        break Outcome::Disconnected("the server list changed".into());
                    }
                }
                () = &mut ping => {
                    let now = Instant::now();
                    // whatever is held back goes now
                    conn.urgent |= !conn.out.is_empty();
                    if conn.out.is_empty() && now >= last_send + timers.ping_interval {
                        put_frame(&mut conn.out, Some((xid::PING, OpCode::Ping)), |_| {});
                        // a ping is never held back behind unanswered requests
                        conn.urgent = true;
                        // counts as a send for the next ping's schedule even before it is written
                        last_send = now;
                    }
                    // while a write is pending, the next ping is a whole interval away
                    let next = if conn.out.is_empty() { last_send } else { now } + timers.ping_interval;
                    ping.as_mut().reset(next.max(now + Duration::from_millis(1)));
                }
                () = &mut lowat_check, if lowat_armed => {
                    let due = last_recv + LOWAT_MAX_WAIT;
                    if Instant::now() >= due {
                        // the server paused mid-burst, or its TCP cannot send the mark's bytes
                        // before this end acknowledges: read what came, byte by byte as
                        // before, and lower the mark from now on
                        conn.lowat_paused = true;
                        conn.lowat_limit.stalled();
                        debug!(
                            owed = conn.owed(),
                            mark = conn.lowat.as_ref().map_or(1, |l| l.current()),
                            counted = conn.lowat_limit.cap,
                            "read batching stalled: the receive low-water mark was not reached within {} ms; reading every byte until the next reply, then counting at most the given number of owed replies into the mark",
                            LOWAT_MAX_WAIT.as_millis()
                        );
                    } else {
                        lowat_check.as_mut().reset(due);
                    }
                }
                () = &mut read_deadline => {
                    let due = last_recv + timers.read_timeout;
                    if Instant::now() >= due {
                        break Outcome::Disconnected(format!(
                            "nothing received for {} ms",
                            timers.read_timeout.as_millis()
                        ));
                    }
                    read_deadline.as_mut().reset(due);
                }
                _ = super::sleep_until_opt(self.closing.as_ref().map(|c| c.deadline)), if self.closing.is_some() => {
                    warn!("server did not acknowledge closeSession in time");
                    if let Some(c) = &mut self.closing {
                        c.result = Err(Error::Timeout { sent: conn.close_sent });
                    }
                    break Outcome::Closed;
                }
                _ = super::sleep_until_opt(detach_at), if detach_at.is_some() => {
                    warn!("requests issued before detach() not answered within the close timeout");
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
            if !read_this_pass {
                frames_in_a_row = 0;
            }
        };
        if let Some(p) = probe {
            p.abort();
        }
        if conn.close_sent {
            if let Some(c) = &mut self.closing {
                c.sent = true;
            }
        }
        self.end_conn(conn).await;
        outcome
    }

    /// Fails what is in flight on a connection that ends, and shuts its write side (bounded).
    async fn end_conn(&mut self, mut conn: Conn) {
        let again = conn.fail_inflight();
        self.builder_auth_waiters.extend(again);
        let _ = timeout(SHUTDOWN_TIMEOUT, conn.writer.shutdown()).await;
    }

    /// The SASL exchange of a new connection, before anything else (the server answers SASL
    /// packets out of band). Commands are served meanwhile as while disconnected (the client is
    /// not CONNECTED yet): requests queue (fail-fast ones fail with `NotConnected`), and a
    /// close or detach ends the exchange, a close at its deadline at the latest.
    async fn sasl_phase(
        &mut self,
        conn: &mut Conn,
        sasl: &super::sasl::SaslConfig,
        within: Duration,
    ) -> std::result::Result<(), Outcome> {
        let host = conn.host.clone();
        // what connect() reports if it gives up meanwhile: the handshake succeeded, but no
        // session is usable before SASL ends (and until then the attempt counts as failed in
        // the host ring)
        let shared = self.shared.clone();
        let note = |what: String| {
            *shared.last_connect_error.lock().unwrap() =
                Some(Error::connect_failed(format!("{host}: {what}")));
        };
        note("the SASL exchange has not ended".into());
        let exchange = timeout(within, super::sasl::authenticate(conn, sasl));
        tokio::pin!(exchange);
        let mut queue_expiry = self.next_queue_expiry();
        loop {
            let close_at = self.closing.as_ref().map(|c| c.deadline);
            tokio::select! {
                r = &mut exchange => return match r {
                    Ok(Ok(())) => {
                        debug!(server = %host, "SASL authentication done");
                        *self.shared.last_connect_error.lock().unwrap() = None;
                        Ok(())
                    }
                    Ok(Err(Error::AuthFailed)) => Err(Outcome::AuthFailed),
                    Ok(Err(e @ Error::SaslFailed { .. })) => {
                        // the client's side failed (no credentials, no service ticket): as the
                        // Java client, final; connect() reports why
                        warn!(server = %host, error = %e, "SASL authentication could not be done");
                        *self.shared.auth_error.lock().unwrap() = Some(e);
                        Err(Outcome::AuthFailed)
                    }
                    Ok(Err(e)) => {
                        note(format!("SASL: {e}"));
                        Err(Outcome::Disconnected(format!("SASL: {e}")))
                    }
                    Err(_) => {
                        note("SASL: the server did not answer".into());
                        Err(Outcome::Disconnected("SASL: the server did not answer".into()))
                    }
                },
                cmd = self.rx.recv(), if !self.handles_gone => {
                    self.offline_command(cmd, &mut queue_expiry);
                    if self.detached.is_some() {
                        return Err(Outcome::Closed);
                    }
                }
                // requests queued for lack of a connection still fail at their queue timeout
                _ = super::sleep_until_opt(queue_expiry), if queue_expiry.is_some() => {
                    self.expire_queued();
                    queue_expiry = self.next_queue_expiry();
                }
                _ = sleep_until(close_at.unwrap_or_else(super::far_future)), if close_at.is_some() => {
                    warn!("the SASL exchange did not end within the close timeout; the session was not closed");
                    return Err(Outcome::Closed);
                }
            }
        }
    }

    /// Fills a new connection's output: auth, then watches, then queued requests.
    fn prime(&mut self, conn: &mut Conn) {
        for (scheme, auth) in &self.auths {
            // a builder credential's waiter (connect()) takes the answer to this replay
            let waiter = self
                .builder_auth_waiters
                .iter()
                .position(|w| {
                    w.again
                        .as_ref()
                        .is_some_and(|(s, a)| s == scheme && a == auth)
                })
                .map(|i| self.builder_auth_waiters.swap_remove(i));
            conn.push_auth(scheme, auth, waiter);
        }
        for (scheme, auth, reply) in std::mem::take(&mut self.pending_auth_cmds) {
            if !reply.claim() {
                continue;
            }
            let waiter = AuthWaiter::once(reply);
            conn.push_auth(&scheme, &auth, Some(waiter));
            self.remember_auth(scheme, auth);
        }
        let batches = self
            .watches
            .set_watches_batches_within(self.last_zxid, self.cfg.max_request_len);
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
            put_frame(&mut conn.out, Some((xid::SET_WATCHES, op)), |w| b.write(w));
        }
        // a new connection's first packets go at once
        conn.urgent = true;
        // the encoded packets hold a second copy of every watched path: let it go
        drop(batches);
        while let Some(p) = self.queued.pop_front() {
            conn.enqueue(p, &mut self.watches);
        }
    }

    fn on_command_online(&mut self, conn: &mut Conn, cmd: Option<Command>) {
        match cmd {
            Some(Command::Request(p)) => conn.enqueue(p, &mut self.watches),
            Some(Command::Auth {
                scheme,
                auth,
                reply,
            }) => {
                if reply.claim() {
                    let waiter = AuthWaiter::once(reply);
                    conn.push_auth(&scheme, &auth, Some(waiter));
                    self.remember_auth(scheme, auth);
                }
            }
            Some(Command::Detach { reply }) => self.detached = Some(reply),
            Some(Command::UpdateHosts { hosts, reply }) => {
                if self.update_hosts(hosts, Some(&conn.host)) {
                    self.rebalance = true;
                }
                let _ = reply.send(());
            }
            Some(Command::Close { reply }) => {
                self.begin_close(Some(reply));
                conn.start_close(self.session_id);
            }
            None => {
                self.handles_gone = true;
                self.begin_close(None);
                conn.start_close(self.session_id);
            }
        }
    }

    /// Handles one frame from the server. `Ok(Some(_))` ends the connection.
    fn on_frame(&mut self, conn: &mut Conn, frame: InFrame) -> Result<Option<Outcome>> {
        let mut frame = match frame {
            InFrame::Frame(f) => f,
            InFrame::Oversized { head, len } => return self.on_oversized(conn, &head, len),
        };
        if frame.len() < REPLY_HEADER_LEN {
            return Err(Error::Protocol(format!(
                "frame of {} bytes is shorter than a reply header",
                frame.len()
            )));
        }
        let header = ReplyHeader::read(&mut Reader::new(&frame)).or_protocol()?;
        let body = frame.split_off(REPLY_HEADER_LEN).freeze();
        match header.xid {
            xid::NOTIFICATION => {
                let ev = WatcherEvent::read(&mut Reader::new(&body)).or_protocol()?;
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
                let res = if header.err == code::OK {
                    Ok(())
                } else {
                    Err(Error::from_code(header.err))
                };
                if let Some(Some(w)) = conn.auth_waiters.pop_front() {
                    w.tx.send(res);
                }
                if header.err == code::AUTH_FAILED {
                    return Ok(Some(Outcome::AuthFailed));
                }
            }
            xid::SET_WATCHES => {
                if header.err != code::OK {
                    warn!(err = header.err, "SetWatches failed");
                }
            }
            x => {
                let f = conn.pop_inflight(x)?;
                self.saw_zxid(header.zxid);
                if f.op == OpCode::CloseSession {
                    if let Some(c) = &mut self.closing {
                        c.result = Ok(());
                    }
                    return Ok(Some(Outcome::Closed));
                }
                if let Some(w) = f.watch {
                    if let Some((path, mode)) =
                        self.watches.on_reply(w, header.err, &self.cfg.chroot)
                    {
                        debug!(path = %path, "releasing a persistent watch its caller gave up on");
                        conn.enqueue(PendingRequest::release(path, mode), &mut self.watches);
                    }
                }
                if let Some(r) = f.reply {
                    r.send(Ok(Reply { header, body }));
                }
            }
        }
        Ok(None)
    }

    /// A reply over `max_frame_len` was skipped: only its own request fails.
    fn on_oversized(
        &mut self,
        conn: &mut Conn,
        head: &[u8],
        len: usize,
    ) -> Result<Option<Outcome>> {
        let header = ReplyHeader::read(&mut Reader::new(head)).or_protocol()?;
        if header.xid < 0 {
            return Err(Error::Protocol(format!(
                "a {len}-byte frame with special xid {}",
                header.xid
            )));
        }
        let f = conn.pop_inflight(header.xid)?;
        self.saw_zxid(header.zxid);
        warn!(
            len,
            max = self.cfg.max_frame_len,
            op = ?f.op,
            "reply larger than max_frame_len discarded"
        );
        if let Some(r) = f.reply {
            r.send(Err(Error::ReplyTooLarge {
                len,
                max: self.cfg.max_frame_len,
            }));
        }
        Ok(None)
    }

    fn saw_zxid(&mut self, zxid: i64) {
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
    }
}

/// The reader's next frame. With `after_others`, first yields once (waking the task at once):
/// in the serve loop's biased `select!` that lets every other ready branch go first for one
/// pass, and if none is ready the task is polled again right away and reads.
async fn next_frame<R>(reader: &mut R, after_others: bool) -> Option<R::Item>
where
    R: futures_util::Stream + Unpin,
{
    if after_others {
        tokio::task::yield_now().await;
    }
    reader.next().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_in_flight_write_at_once() {
        assert!(!should_flush(0, 0, 0, false), "nothing to write");
        assert!(should_flush(40, 0, 1, false), "a lone request goes at once");
        assert!(should_flush(400, HOLD_MIN_INFLIGHT - 1, 10, false));
    }

    #[test]
    fn recv_lowat_never_waits_for_more_than_owed() {
        for owed in 0..=LOWAT_MIN_OWED {
            assert_eq!(
                recv_lowat(owed, LOWAT_MAX_OWED),
                1,
                "{owed} owed: every byte wakes"
            );
        }
        let mut marks = std::collections::BTreeSet::new();
        for owed in LOWAT_MIN_OWED + 1..10_000 {
            let l = recv_lowat(owed, LOWAT_MAX_OWED);
            // the oldest reply may be all but one byte read; every other one is >= 20 bytes
            assert!(
                l <= MIN_REPLY_FRAME * (owed - 1),
                "{owed} owed: mark {l} too high"
            );
            assert!(l <= LOWAT_MAX_OWED * MIN_REPLY_FRAME);
            assert!(l > 1, "{owed} owed: raised");
            // and at least half of what is owed beyond the oldest (up to the cap)
            let n = (owed - 1).min(LOWAT_MAX_OWED);
            assert!(2 * l > MIN_REPLY_FRAME * n, "{owed} owed: mark {l} too low");
            marks.insert(l / MIN_REPLY_FRAME);
        }
        assert_eq!(
            marks.into_iter().collect::<Vec<_>>(),
            [8, 12, 16, 24, 32, 48, 64],
            "few distinct marks: few system calls"
        );
        assert_eq!(recv_lowat(9, LOWAT_MAX_OWED), 8 * MIN_REPLY_FRAME);
        assert_eq!(recv_lowat(40, LOWAT_MAX_OWED), 32 * MIN_REPLY_FRAME);
        assert_eq!(recv_lowat(50, LOWAT_MAX_OWED), 48 * MIN_REPLY_FRAME);
    }

    #[test]
    fn recv_lowat_counts_at_most_the_learned_limit() {
        // the limit caps the count of further replies; below the minimum the mark is off
        assert_eq!(recv_lowat(65, 32), 32 * MIN_REPLY_FRAME);
        assert_eq!(recv_lowat(65, 20), 16 * MIN_REPLY_FRAME);
        assert_eq!(
            recv_lowat(65, LOWAT_MIN_OWED),
            LOWAT_MIN_OWED * MIN_REPLY_FRAME
        );
        assert_eq!(recv_lowat(65, LOWAT_MIN_OWED - 1), 1);
        assert_eq!(recv_lowat(65, 0), 1);
        for cap in 0..=LOWAT_MAX_OWED + 10 {
            for owed in 0..200 {
                assert!(recv_lowat(owed, cap) <= recv_lowat(owed, LOWAT_MAX_OWED));
                assert!(recv_lowat(owed, cap) <= MIN_REPLY_FRAME * cap.max(1));
            }
        }
    }

    #[test]
    fn lowat_limit_halves_at_a_stall_and_grows_back_slowly() {
        let mut l = LowatLimit::new();
        assert_eq!(l.cap, LOWAT_MAX_OWED);
        l.stalled();
        assert_eq!(l.cap, 32);
        for _ in 0..3 {
            l.stalled();
        }
        assert_eq!(recv_lowat(65, l.cap), 1, "four stalls in a row: off");
        l.read(LOWAT_GROW_EVERY - 1);
        assert_eq!(l.cap, 4);
        l.read(1);
        assert_eq!(l.cap, 4 + LOWAT_GROW_STEP);
        l.read(LOWAT_GROW_EVERY - 1);
        l.stalled();
        l.read(LOWAT_GROW_EVERY - 1);
        assert_eq!(l.cap, 6, "a stall restarts the count");
        for _ in 0..100 {
            l.read(LOWAT_GROW_EVERY);
        }
        assert_eq!(l.cap, LOWAT_MAX_OWED, "never above the maximum");
        l.stalled();
        l.stalled();
        l.stalled();
        l.stalled();
        l.stalled();
        l.stalled();
        l.stalled();
        assert_eq!(l.cap, 0);
        l.stalled();
        assert_eq!(l.cap, 0);
    }

    #[test]
    fn many_in_flight_gather() {
        assert!(
            !should_flush(40, 60, 1, false),
            "one new request behind 60 waits"
        );
        assert!(!should_flush(40 * 14, 60, 14, false));
        assert!(
            should_flush(40 * 15, 60, 15, false),
            "a quarter of those in flight goes"
        );
        assert!(should_flush(40, 60, 1, true), "a ping or auth goes at once");
        assert!(
            should_flush(HOLD_MAX_BYTES, 1000, 1, false),
            "bytes bounded"
        );
        assert!(
            should_flush(40 * HOLD_MAX, 1000, HOLD_MAX, false),
            "count bounded"
        );
    }
}
