//! Raw wire helpers that need no client library: four-letter words and forced session expiry.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Error, Result};

/// Default answer timeout of [`four_letter`].
pub(crate) const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(5);
/// Overall limit of [`expire_session`].
const EXPIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame [`expire_session`] accepts.
const MAX_FRAME: usize = 1 << 20;
/// OpCode.closeSession.
const OP_CLOSE_SESSION: i32 = -11;

/// Sends a four-letter word (`srvr`, `stat`, `mntr`, `cons`, `wchc`, `wchp`, `dump`, `conf`, ...)
/// to `addr` and returns the answer, waiting at most 5 s. Blocking.
///
/// The word must be on the server's `4lw.commands.whitelist` (servers of this kit allow all);
/// otherwise the server answers `... is not executed because it is not in the whitelist.`
///
/// # Errors
///
/// Connection errors, or [`io::ErrorKind::WouldBlock`]/[`io::ErrorKind::TimedOut`] if the server
/// does not answer in time (for example while it is paused).
pub fn four_letter(addr: SocketAddr, cmd: &str) -> io::Result<String> {
    four_letter_timeout(addr, cmd, FOUR_LETTER_TIMEOUT)
}

/// [`four_letter`] with an explicit limit for connecting and for the whole answer. Blocking.
///
/// # Errors
///
/// As [`four_letter`]; [`io::ErrorKind::InvalidInput`] if `cmd` is not four ASCII letters.
pub fn four_letter_timeout(addr: SocketAddr, cmd: &str, timeout: Duration) -> io::Result<String> {
    crate::block_on(|| four_letter_async(addr, cmd, timeout))
}

/// [`four_letter_timeout`] without blocking: runs on the current tokio runtime.
///
/// # Errors
///
/// As [`four_letter_timeout`]; [`io::ErrorKind::TimedOut`] if the server does not answer
/// within `timeout`.
pub async fn four_letter_async(
    addr: SocketAddr,
    cmd: &str,
    timeout: Duration,
) -> io::Result<String> {
    if cmd.len() != 4 || !cmd.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{cmd:?} is not a four-letter word"),
        ));
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(cmd.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no complete answer to `{cmd}` from {addr} within {timeout:?}"),
            ))
        })
}

/// Forces the expiry of a live session, the way ZooKeeper's own tests do.
///
/// Opens a second raw connection to `server`, re-attaches to the session with its id and
/// password (which makes the server drop the connection of the real client), then sends
/// `closeSession` and waits for its reply. The session is gone: the real client's next
/// reconnect is answered with a negotiated timeout of 0, i.e. *session expired*. Ephemeral nodes
/// of the session are deleted and their watchers notified.
///
/// `server` may be any server of the ensemble that serves. Async: runs on the current tokio
/// runtime; gives up after 10 s.
///
/// A live client re-attaches as soon as it is dropped, and its re-attach in turn drops this
/// helper's connection; when the client wins that race before `closeSession` went out, the
/// helper simply tries again (and a session found gone after a `closeSession` was sent counts
/// as expired).
///
/// # Errors
///
/// [`Error::SessionNotFound`] if the server answers the re-attach with timeout 0 (the session is
/// unknown, already expired, or the password is wrong); [`Error::Timeout`] after 10 s;
/// [`Error::Io`] if the server cannot be reached, closes the connection, or answers
/// unexpectedly.
pub async fn expire_session(server: SocketAddr, session_id: i64, password: &[u8]) -> Result<()> {
    expire_session_io(server, session_id, password)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::SessionNotFound { session_id, server },
            io::ErrorKind::TimedOut => Error::Timeout(e.to_string()),
            _ => Error::io(format!("expiring session {session_id:#x} via {server}"), e),
        })
}

/// [`expire_session`] with the I/O error kinds it maps.
async fn expire_session_io(server: SocketAddr, session_id: i64, password: &[u8]) -> io::Result<()> {
    let work = async {
        let mut close_sent = false;
        loop {
            match expire_once(server, session_id, password, &mut close_sent).await {
                Ok(()) => return Ok(()),
                // our closeSession went out before we were cut off: the session is gone
                Err(e) if e.kind() == io::ErrorKind::NotFound && close_sent => return Ok(()),
                // the real client re-attached first and kicked us off: again
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                    ) =>
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(e),
            }
        }
    };
    tokio::time::timeout(EXPIRE_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "expiring session {session_id:#x} via {server} took over {EXPIRE_TIMEOUT:?}"
                ),
            ))
        })
}

/// One attempt of [`expire_session`].
async fn expire_once(
    server: SocketAddr,
    session_id: i64,
    password: &[u8],
    close_sent: &mut bool,
) -> io::Result<()> {
    {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        stream
            .write_all(&connect_request(session_id, password, 30_000))
            .await?;
        let response = read_frame(&mut stream).await?;
        // ConnectResponse: int protocolVersion, int timeOut, long sessionId, buffer passwd, [bool].
        if response.len() < 36 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{server} refused to re-attach session {session_id:#x}: answered {} bytes \
                     instead of a ConnectResponse (read-only server?)",
                    response.len()
                ),
            ));
        }
        let timeout = i32::from_be_bytes(response[4..8].try_into().expect("4 bytes"));
        if timeout <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "session {session_id:#x} is unknown to {server}, already expired, or the \
                     password is wrong"
                ),
            ));
        }
        // RequestHeader {xid 1, type closeSession}, no body.
        let mut close = Vec::with_capacity(12);
        close.extend_from_slice(&8i32.to_be_bytes());
        close.extend_from_slice(&1i32.to_be_bytes());
        close.extend_from_slice(&OP_CLOSE_SESSION.to_be_bytes());
        stream.write_all(&close).await?;
        *close_sent = true;
        // ReplyHeader {int xid, long zxid, int err}.
        let reply = read_frame(&mut stream).await?;
        if reply.len() < 16 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("short closeSession reply ({} bytes)", reply.len()),
            ));
        }
        let err = i32::from_be_bytes(reply[12..16].try_into().expect("4 bytes"));
        if err != 0 {
            return Err(io::Error::other(format!(
                "closeSession of {session_id:#x} failed with error code {err}"
            )));
        }
        Ok(())
    }
}

/// A framed ConnectRequest re-attaching to `session_id`.
fn connect_request(session_id: i64, password: &[u8], timeout_ms: i32) -> Vec<u8> {
    let password_len = i32::try_from(password.len()).expect("password length fits in an i32");
    let len = 4 + 8 + 4 + 8 + 4 + password.len() + 1;
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as i32).to_be_bytes());
    frame.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    frame.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    frame.extend_from_slice(&timeout_ms.to_be_bytes());
    frame.extend_from_slice(&session_id.to_be_bytes());
    frame.extend_from_slice(&password_len.to_be_bytes());
    frame.extend_from_slice(password);
    frame.push(0); // readOnly = false
    frame
}

async fn read_frame(stream: &mut tokio::net::TcpStream) -> io::Result<Vec<u8>> {
    let len = stream.read_i32().await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len <= MAX_FRAME)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad frame length {len}"),
            )
        })?;
    let mut frame = vec![0; len];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_layout() {
        let frame = connect_request(0x0102_0304_0506_0708, &[0xaa; 16], 30_000);
        assert_eq!(frame.len(), 49);
        assert_eq!(&frame[..4], &45i32.to_be_bytes());
        assert_eq!(&frame[4..8], &[0; 4]);
        assert_eq!(&frame[8..16], &[0; 8]);
        assert_eq!(&frame[16..20], &30_000i32.to_be_bytes());
        assert_eq!(&frame[20..28], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&frame[28..32], &16i32.to_be_bytes());
        assert_eq!(&frame[32..48], &[0xaa; 16]);
        assert_eq!(frame[48], 0);
    }

    #[test]
    fn rejects_bad_words() {
        let addr = "127.0.0.1:1".parse().unwrap();
        for bad in ["srv", "srvrr", "sr v", "ünï"] {
            let err = four_letter(addr, bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }
}
