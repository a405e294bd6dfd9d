//! The connect phase: try hosts in turn until one completes the handshake; close a session the
//! client gave up before starting a new one; look for a read-write server while on a read-only
//! one.

use super::conn::Conn;
use super::hosts::HostAddr;
use super::request::put_frame;
use super::transport::RecvLowat;
use super::{far_future, rand_duration, Config, Outcome, Session};
use crate::codec::{InFrame, ReplyCodec};
use crate::error::{DecodeExt, Error, Result};
use crate::proto::{
    classify_connect_frame, code, ConnectRequest, OpCode, Reader, Record, ReplyHeader,
};
use bytes::BytesMut;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

impl Session {
    /// Connects to the next hosts until one completes the handshake for the session to serve.
    /// Returns `Err` when the session is gone (expired, given up), or the client is closed.
    pub(super) async fn connect_phase(&mut self, first_attempt: bool) -> Result<Conn, Outcome> {
        let mut first = first_attempt;
        loop {
            if self.stopped.is_some() && self.abandoned.is_none() {
                // LOST was final and the abandoned session is closed (or gone): done
                return Err(Outcome::Closed);
            }
            if let Some(c) = &self.closing {
                if !self.has_session_to_close() {
                    return Err(Outcome::Closed);
                }
                if Instant::now() >= c.deadline {
                    warn!("no server reached within the close timeout; the session was not closed");
                    return Err(Outcome::Closed);
                }
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
            // while closing, the session is closed rather than given up
            let lost_at = match self.closing {
                None => self.disconnected_since.map(|t| t + self.negotiated),
                Some(_) => None,
            };

            // the session to re-attach to: an abandoned one first (to close it), else ours
            let (closing_abandoned, session_id, passwd) = match &self.abandoned {
                Some((id, pw)) => (true, *id, pw.clone()),
                None if self.seen_rw => (false, self.session_id, self.passwd.clone()),
                None => (false, 0, vec![0; 16]),
            };
            let req = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: self.last_zxid,
                timeout_ms: self.cfg.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                session_id,
                passwd,
                read_only: Some(self.cfg.can_be_read_only),
            };
            let connect_timeout = self.timers().connect_timeout;
            let attempt = attempt(self.cfg.clone(), host.clone(), req, pause, connect_timeout);
            tokio::pin!(attempt);
            let mut queue_expiry = self.next_queue_expiry();
            let res = loop {
                // a close() issued during the attempt bounds it too
                let close_at = self.closing.as_ref().map(|c| c.deadline);
                tokio::select! {
                    cmd = self.rx.recv(), if !self.handles_gone => {
                        self.offline_command(cmd, &mut queue_expiry);
                        if self.detached.is_some()
                            || (self.closing.is_some() && !self.has_session_to_close())
                        {
                            return Err(Outcome::Closed);
                        }
                    }
                    _ = sleep_until(lost_at.unwrap_or_else(far_future)), if lost_at.is_some() => {
                        warn!(
                            timeout_ms = self.negotiated.as_millis() as u64,
                            "no server reachable for the whole session timeout; the session is given up"
                        );
                        return Err(Outcome::GivenUp);
                    }
                    _ = sleep_until(queue_expiry.unwrap_or_else(far_future)), if queue_expiry.is_some() => {
                        self.expire_queued();
                        queue_expiry = self.next_queue_expiry();
                    }
                    _ = sleep_until(close_at.unwrap_or_else(far_future)), if close_at.is_some() => {
                        warn!("no server reached within the close timeout; the session was not closed");
                        return Err(Outcome::Closed);
                    }
                    r = &mut attempt => break r,
                }
            };
            match res {
                Ok(conn) => {
                    // The server answered the handshake. That alone does not make the host
                    // one that works: what must follow (SASL) may fail on every connection,
                    // and a host reset here would be tried again after the jitter only, never
                    // the cycle pause. The ring counts the host as working once the connection
                    // is CONNECTED (`serve`), or the handshake's answer is final (below).
                    *self.shared.last_connect_error.lock().unwrap() = None;
                    if closing_abandoned {
                        self.close_abandoned(conn, connect_timeout).await?;
                        if self.abandoned.is_none() {
                            // done with it: the next attempt starts the new session at once
                            self.ring.connected();
                            first = true;
                        }
                        continue;
                    }
                    if conn.resp.timeout_ms <= 0 {
                        // a final answer: the new session it leads to is no retry
                        self.ring.connected();
                        info!(server = %host, "server reports the session expired");
                        return Err(Outcome::Expired);
                    }
                    return Ok(conn);
                }
                Err(e) => {
                    debug!(server = %host, error = %e, "connect attempt failed");
                    *self.shared.last_connect_error.lock().unwrap() = Some(e);
                }
            }
        }
    }

    /// Ends a session the client gave up (on its own clock, or after an auth failure): the
    /// server answered its handshake, so it may still hold the session and its ephemeral
    /// nodes. Sends closeSession (after the SASL exchange if the client uses SASL; no `add_auth`
    /// credential is replayed) and waits at most `within` for the answer; the session stays
    /// abandoned, to be tried again, unless it was closed, the server said it is gone, or SASL
    /// itself was refused (it is left to expire). Meanwhile commands are served as in the rest
    /// of the connect phase (fail-fast requests fail at once, queued ones at their queue
    /// timeout), and a close in progress bounds the wait: `Err(Outcome::Closed)` at its
    /// deadline, or on detach.
    async fn close_abandoned(&mut self, conn: Conn, within: Duration) -> Result<(), Outcome> {
        let Some((id, _)) = self.abandoned else {
            return Ok(());
        };
        if conn.resp.timeout_ms <= 0 {
            debug!(
                session_id = format_args!("{id:#x}"),
                "the given-up session had expired on the server"
            );
            self.abandoned = None;
            return Ok(());
        }
        info!(
            session_id = format_args!("{id:#x}"),
            "the given-up session was still alive on the server; closing it"
        );
        let sasl = self.cfg.sasl.clone();
        let mut written = false;
        let res = {
            let close = timeout(within, close_on(conn, sasl.as_ref(), &mut written));
            tokio::pin!(close);
            let mut queue_expiry = self.next_queue_expiry();
            loop {
                let close_at = self.closing.as_ref().map(|c| c.deadline);
                tokio::select! {
                    r = &mut close => break Some(r),
                    cmd = self.rx.recv(), if !self.handles_gone => {
                        self.offline_command(cmd, &mut queue_expiry);
                        if self.detached.is_some() {
                            break None;
                        }
                    }
                    _ = super::sleep_until_opt(queue_expiry), if queue_expiry.is_some() => {
                        self.expire_queued();
                        queue_expiry = self.next_queue_expiry();
                    }
                    _ = super::sleep_until_opt(close_at), if close_at.is_some() => {
                        warn!("closing the given-up session did not end within the close timeout");
                        break None;
                    }
                }
            }
        };
        if written {
            if let Some(c) = &mut self.closing {
                c.sent = true;
            }
        }
        match res {
            None => return Err(Outcome::Closed),
            Some(Ok(Ok(()))) => {
                info!(
                    session_id = format_args!("{id:#x}"),
                    "given-up session closed"
                );
                self.abandoned = None;
            }
            Some(Ok(Err(Error::AuthFailed | Error::SaslFailed { .. }))) => {
                // the credentials are refused: a new session would be too, and says so
                warn!(
                    session_id = format_args!("{id:#x}"),
                    "SASL refused while closing the given-up session; it is left to expire"
                );
                self.abandoned = None;
            }
            Some(Ok(Err(e))) => {
                warn!(error = %e, "closing the given-up session failed; trying again");
            }
            Some(Err(_)) => {
                warn!("closing the given-up session timed out; trying again");
            }
        }
        Ok(())
    }
}

/// Sends closeSession on a fresh connection (after the SASL exchange, when the client uses SASL:
/// a server that enforces it refuses anything else) and waits for its reply; `written` tells
/// whether closeSession reached the socket.
async fn close_on(
    mut conn: Conn,
    sasl: Option<&super::sasl::SaslConfig>,
    written: &mut bool,
) -> Result<()> {
    if let Some(sasl) = sasl {
        super::sasl::authenticate(&mut conn, sasl).await?;
    }
    let xid = conn.take_xid();
    let Conn {
        mut reader,
        mut writer,
        ..
    } = conn;
    let mut out = BytesMut::new();
    put_frame(&mut out, Some((xid, OpCode::CloseSession)), |_| {});
    *written = true;
    writer.write_all(&out).await.map_err(Error::io)?;
    writer.flush().await.map_err(Error::io)?;
    while let Some(f) = reader.next().await {
        match f {
            Ok(InFrame::Frame(f)) => {
                let h = ReplyHeader::read(&mut Reader::new(&f)).or_protocol()?;
                if h.xid == xid {
                    // closed, or already gone; any other answer (say, from a read-only
                    // server) leaves the session as it was
                    return match h.err {
                        code::OK | code::SESSION_EXPIRED => Ok(()),
                        e => Err(Error::from_code(e)),
                    };
                }
            }
            Ok(InFrame::Oversized { .. }) => {}
            Err(e) => return Err(Error::Protocol(e.to_string())),
        }
    }
    // the connection ended before the server acknowledged closeSession
    Err(Error::ConnectionLoss)
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
        let stream = cfg
            .connector
            .connect(&host)
            .await
            .map_err(|e| Error::ConnectFailed {
                message: format!("{host}: {e}"),
                source: Some(Box::new(Error::io(e))),
            })?;
        // taken from the stream itself, before it is split (see RecvLowat::of)
        let lowat = RecvLowat::of(&*stream);
        let (rd, mut wr) = tokio::io::split(stream);
        let mut hello = BytesMut::with_capacity(64);
        put_frame(&mut hello, None, |w| req.write(w));
        wr.write_all(&hello).await.map_err(Error::io)?;
        wr.flush().await.map_err(Error::io)?;
        let mut reader = FramedRead::new(rd, ReplyCodec::new(cfg.max_frame_len));
        let frame = match reader.next().await {
            Some(Ok(InFrame::Frame(f))) => f,
            Some(Ok(InFrame::Oversized { len, .. })) => {
                return Err(Error::Protocol(format!(
                    "{host} answered the handshake with a {len}-byte frame"
                )))
            }
            Some(Err(e)) => return Err(Error::Protocol(e.to_string())),
            // a member without quorum, or one behind our zxid, closes without answering
            None => {
                return Err(Error::connect_failed(format!(
                    "{host} closed the connection during the handshake"
                )))
            }
        };
        match classify_connect_frame(&frame) {
            Ok(resp) => Ok(Conn::new(reader, wr, lowat, resp, host.clone())),
            Err(Some(code)) => Err(Error::connect_failed(format!(
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
        Err(_) => Err(Error::connect_failed(format!(
            "{host}: no handshake within {} ms",
            connect_timeout.as_millis()
        ))),
    }
}

/// While connected to a read-only server, looks for a read-write one (`isro` answers `rw`),
/// backing off from 100 ms to 60 s.
pub(super) fn spawn_rw_probe(
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

async fn probe_isro(
    connector: &dyn super::transport::Connector,
    host: &HostAddr,
) -> Option<String> {
    let fut = async {
        let mut s = connector.connect(host).await.ok()?;
        s.write_all(b"isro").await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(String::from_utf8_lossy(&buf).trim().to_owned())
    };
    timeout(Duration::from_secs(1), fut).await.ok().flatten()
}
