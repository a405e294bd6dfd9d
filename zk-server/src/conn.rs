//! One task per client connection: it owns the socket. Reading and writing run side by side,
//! as ZooKeeper's selector does them: the reader splits frames off what arrives (or answers a
//! four-letter word) and hands each to the core under the lock; the writer writes what the
//! core queued for this connection, in order. A client that does not read its replies does
//! not stop its requests (pings included) from being read. The core can also kill the
//! connection at once (session expiry, a re-attach elsewhere), whatever is still queued or
//! half written, as ZooKeeper closes the socket.

use crate::core::{Core, Out};
use crate::watch::ConnId;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use zk_proto::frame::FrameCodec;

pub(crate) async fn serve(core: Arc<Mutex<Core>>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (tx, rx) = mpsc::unbounded_channel();
    let kill = Arc::new(Notify::new());
    let (id, max_frame) = {
        let mut c = core.lock().expect("core lock");
        (c.register(tx, kill.clone(), peer), c.opts.max_frame_len)
    };
    let (rd, wr) = stream.into_split();
    let ended = tokio::select! {
        r = read(&core, id, rd, max_frame) => r,
        r = write(wr, rx) => r,
        () = kill.notified() => Ok(()),
    };
    if let Err(e) = ended {
        tracing::debug!(conn = id, error = %e, "connection ended");
    }
    core.lock().expect("core lock").conn_closed(id);
}

/// At most this many bytes gathered into one write.
const WRITE_BATCH: usize = 256 << 10;

/// Writes what the core queued, in order, until told to close (after what was queued
/// before). What is queued when the writer wakes goes out in one write (up to
/// [`WRITE_BATCH`] bytes), as ZooKeeper's selector writes a connection's queued replies
/// together: one system call and as few segments as the bytes need, instead of a segment per
/// reply (a client reading with a receive low-water mark waits for bytes; a segment per small
/// reply fills the sender's congestion window long before it has them).
async fn write(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
) -> std::io::Result<()> {
    let mut batch = BytesMut::new();
    let mut closing = false;
    while let Some(out) = rx.recv().await {
        let mut next = Some(out);
        while let Some(out) = next.take() {
            match out {
                Out::Frame(b) => {
                    if batch.is_empty() && b.len() >= WRITE_BATCH {
                        wr.write_all(&b).await?;
                    } else {
                        batch.extend_from_slice(&b);
                    }
                }
                Out::Close => {
                    closing = true;
                    break;
                }
            }
            if batch.len() >= WRITE_BATCH {
                wr.write_all(&batch).await?;
                batch.clear();
            }
            next = rx.try_recv().ok();
        }
        if !batch.is_empty() {
            wr.write_all(&batch).await?;
            batch.clear();
            if batch.capacity() > 4 * WRITE_BATCH {
                batch = BytesMut::new();
            }
        }
        if closing {
            break;
        }
    }
    wr.flush().await?;
    let _ = wr.shutdown().await;
    Ok(())
}

/// Reads frames and hands them to the core; returns when the client is gone or broke the
/// framing (the connection is then dropped, the session stays).
async fn read(
    core: &Mutex<Core>,
    id: ConnId,
    mut rd: OwnedReadHalf,
    max_frame: usize,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(8 << 10);
    let mut codec = FrameCodec::new(max_frame);
    let mut handshaken = false;
    loop {
        if rd.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        if !handshaken && buf.len() >= 4 {
            if &buf[..4] == b"stmk" && buf.len() < 12 {
                continue; // the new trace mask (a long) follows the word
            }
            if four_letter(core, id, &buf[..buf.len().min(12)]) {
                // the answer and a close are queued: the writer ends the connection
                return std::future::pending().await;
            }
        }
        loop {
            let frame = match codec.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    // over jute.maxbuffer: the connection is dropped, the session stays
                    tracing::debug!(conn = id, error = %e, "frame refused");
                    return Ok(());
                }
            };
            let mut c = core.lock().expect("core lock");
            if handshaken {
                c.request(id, &frame);
            } else {
                c.connect(id, &frame);
                handshaken = true;
            }
        }
    }
}

/// Whether the connection's first four bytes spell a four-letter word; if so its answer and a
/// close are queued for the writer (a packet received and one sent, as ZooKeeper counts them).
fn four_letter(core: &Mutex<Core>, id: ConnId, head: &[u8]) -> bool {
    let (word, arg) = head.split_at(4);
    if !crate::fourlw::WORDS.iter().any(|w| w.as_bytes() == word) {
        return false;
    }
    let mut c = core.lock().expect("core lock");
    c.packets_received += 1;
    if let Some(conn) = c.conns.get_mut(&id) {
        conn.received += 1;
    }
    if word == b"stmk" {
        c.trace_mask = i64::from_be_bytes(arg.try_into().expect("stmk and a long"));
    }
    let text = crate::fourlw::answer(&mut c, word, id).unwrap_or_default();
    c.packets_sent += 1; // the answer, counted once it is made (srst's too)
    c.send_to(id, Out::Frame(bytes::Bytes::from(text)));
    c.send_to(id, Out::Close);
    true
}
