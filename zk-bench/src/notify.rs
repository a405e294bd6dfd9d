//! A [`Connector`] that records every watch notification the server sends to a session: the
//! herd measure of `lock-handoff` counts what actually arrives on each contender's socket, not
//! what the recipe says it asked for.
//!
//! It wraps plain TCP and splits the server→client byte stream into frames (4-byte length,
//! then the payload). The first frame of a connection is the ConnectResponse; after it, a frame
//! whose reply header has xid -1 is a notification `{type, state, path}`.

use bytes::{Buf, BytesMut};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use zk_core::{ConnectFuture, Connector, HostAddr, TcpConnector, Transport};

/// One notification: event type code and server-side path.
pub type Notification = (i32, String);

/// Notifications received by one session (across its connections).
#[derive(Debug, Default)]
pub struct NotifyLog {
    events: Mutex<Vec<Notification>>,
}

impl NotifyLog {
    pub fn take(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

/// Plain TCP, recording notifications into `log`.
#[derive(Debug, Clone, Default)]
pub struct CountingConnector {
    pub log: Arc<NotifyLog>,
}

impl Connector for CountingConnector {
    fn connect<'a>(&'a self, addr: &'a HostAddr) -> ConnectFuture<'a> {
        let log = self.log.clone();
        Box::pin(async move {
            let inner = TcpConnector.connect(addr).await?;
            Ok(Box::new(Counting {
                inner,
                log,
                acc: BytesMut::new(),
                handshake_done: false,
            }) as Box<dyn Transport>)
        })
    }
}

struct Counting {
    inner: Box<dyn Transport>,
    log: Arc<NotifyLog>,
    /// Bytes of the frame being received.
    acc: BytesMut,
    handshake_done: bool,
}

impl Counting {
    fn scan(&mut self, new: &[u8]) {
        self.acc.extend_from_slice(new);
        loop {
            if self.acc.len() < 4 {
                return;
            }
            let len = i32::from_be_bytes([self.acc[0], self.acc[1], self.acc[2], self.acc[3]]);
            let len = len.max(0) as usize;
            if self.acc.len() < 4 + len {
                return;
            }
            self.acc.advance(4);
            let frame = self.acc.split_to(len);
            if !self.handshake_done {
                self.handshake_done = true;
                continue;
            }
            if let Some(n) = parse_notification(&frame) {
                self.log.events.lock().unwrap().push(n);
            }
        }
    }
}

/// `{xid -1, zxid, err}{type, state, path}` → `(type, path)`.
pub fn parse_notification(frame: &[u8]) -> Option<Notification> {
    let i32_at = |at: usize| -> Option<i32> {
        frame
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if i32_at(0)? != -1 {
        return None;
    }
    let event_type = i32_at(16)?;
    let len = usize::try_from(i32_at(24)?).ok()?;
    let path = frame.get(28..28 + len)?;
    Some((event_type, String::from_utf8_lossy(path).into_owned()))
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let new = buf.filled()[before..].to_vec();
            self.scan(&new);
        }
        res
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    fn notification(t: i32, path: &str) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&(-1i32).to_be_bytes());
        p.extend_from_slice(&7i64.to_be_bytes());
        p.extend_from_slice(&0i32.to_be_bytes());
        p.extend_from_slice(&t.to_be_bytes());
        p.extend_from_slice(&3i32.to_be_bytes());
        p.extend_from_slice(&(path.len() as i32).to_be_bytes());
        p.extend_from_slice(path.as_bytes());
        frame(&p)
    }

    #[tokio::test]
    async fn notifications_are_found_at_any_split() {
        let mut stream = frame(&[0u8; 36]); // ConnectResponse
        let mut reply = vec![0, 0, 0, 5];
        reply.extend_from_slice(&[0u8; 12]);
        stream.extend(frame(&reply));
        stream.extend(notification(2, "/lock/a"));
        stream.extend(notification(3, "/x"));
        for split in 0..stream.len() {
            let log = Arc::new(NotifyLog::default());
            let (client, mut server) = tokio::io::duplex(4096);
            let mut c = Counting {
                inner: Box::new(client),
                log: log.clone(),
                acc: BytesMut::new(),
                handshake_done: false,
            };
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            server.write_all(&stream[..split]).await.unwrap();
            server.write_all(&stream[split..]).await.unwrap();
            drop(server);
            let mut sink = Vec::new();
            c.read_to_end(&mut sink).await.unwrap();
            assert_eq!(
                log.take(),
                vec![(2, "/lock/a".to_owned()), (3, "/x".to_owned())],
                "split {split}"
            );
        }
    }
}
