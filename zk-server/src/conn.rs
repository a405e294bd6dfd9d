//! One task per client connection: it owns the socket, splits frames off what arrives (or
//! answers a four-letter word), hands each frame to the core under the lock, and writes what
//! the core queued for this connection, in order.

use crate::core::{Core, Out};
use crate::watch::ConnId;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use zk_proto::frame::FrameCodec;

pub(crate) async fn serve(core: Arc<Mutex<Core>>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (id, max_frame) = {
        let mut c = core.lock().expect("core lock");
        (c.register(tx, peer), c.opts.max_frame_len)
    };
    if let Err(e) = run(&core, id, stream, &mut rx, max_frame).await {
        tracing::debug!(conn = id, error = %e, "connection ended");
    }
    core.lock().expect("core lock").conn_closed(id);
}

async fn run(
    core: &Mutex<Core>,
    id: ConnId,
    stream: TcpStream,
    rx: &mut mpsc::UnboundedReceiver<Out>,
    max_frame: usize,
) -> std::io::Result<()> {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(8 << 10);
    let mut codec = FrameCodec::new(max_frame);
    let mut handshaken = false;
    loop {
        tokio::select! {
            biased;
            out = rx.recv() => {
                let mut next = out;
                // write everything queued, then flush once
                loop {
                    match next {
                        Some(Out::Frame(b)) => wr.write_all(&b).await?,
                        Some(Out::Close) | None => {
                            wr.flush().await?;
                            let _ = wr.shutdown().await;
                            return Ok(());
                        }
                    }
                    match rx.try_recv() {
                        Ok(o) => next = Some(o),
                        Err(_) => break,
                    }
                }
                wr.flush().await?;
            }
            n = rd.read_buf(&mut buf) => {
                if n? == 0 {
                    return Ok(());
                }
                if !handshaken && buf.len() >= 4 {
                    if let Some(text) = four_letter(core, id, &buf[..4]) {
                        wr.write_all(text.as_bytes()).await?;
                        wr.flush().await?;
                        let _ = wr.shutdown().await;
                        return Ok(());
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
    }
}

/// The answer to a four-letter word asked on connection `id`, if `word` is one (counted as
/// a packet the connection received, as ZooKeeper counts it).
fn four_letter(core: &Mutex<Core>, id: ConnId, word: &[u8]) -> Option<String> {
    if !crate::fourlw::WORDS.iter().any(|w| w.as_bytes() == word) {
        return None;
    }
    let mut c = core.lock().expect("core lock");
    if let Some(conn) = c.conns.get_mut(&id) {
        conn.received += 1;
    }
    crate::fourlw::answer(&c, word, id)
}
