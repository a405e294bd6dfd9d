//! A stub ZooKeeper server that answers at once, for measuring what a *client* costs when the
//! server is not the bottleneck (`zk-bench stub-serve`). It keeps no data: every request
//! succeeds with a canned reply of the right shape (getData returns `size` bytes, exists and
//! setData a Stat, create the requested path, getChildren nothing). One thread per connection,
//! blocking I/O; all replies to what one read brought are sent with one write.
//!
//! Not a ZooKeeper: ordering, watches, sessions and errors are not modelled. Only the
//! request/reply shapes the throughput scenarios use.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

const STAT_LEN: usize = 68;

/// Serves on `listener` forever, one thread per connection.
pub fn serve(listener: TcpListener, size: usize) -> io::Result<()> {
    for conn in listener.incoming() {
        let conn = conn?;
        std::thread::spawn(move || {
            let _ = connection(conn, size);
        });
    }
    Ok(())
}

fn connection(mut s: TcpStream, size: usize) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut have = 0usize;
    let mut out = Vec::with_capacity(256 * 1024);
    let mut handshake = true;
    let data = vec![b'x'; size];
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = s.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let mut at = 0;
        let mut close = false;
        while have - at >= 4 {
            let len = i32::from_be_bytes(buf[at..at + 4].try_into().unwrap()).max(0) as usize;
            if have - at < 4 + len {
                break;
            }
            let frame = &buf[at + 4..at + 4 + len];
            at += 4 + len;
            if handshake {
                handshake = false;
                // ConnectResponse: protocol 0, timeout, session id, password, read-only
                let start = begin(&mut out);
                put_i32(&mut out, 0);
                put_i32(&mut out, 20_000);
                out.extend_from_slice(&0x5eed_0000_0001i64.to_be_bytes());
                put_i32(&mut out, 16);
                out.extend_from_slice(&[7u8; 16]);
                out.push(0);
                end(&mut out, start);
                continue;
            }
            if frame.len() < 8 {
                return Ok(());
            }
            let xid = i32::from_be_bytes(frame[0..4].try_into().unwrap());
            let op = i32::from_be_bytes(frame[4..8].try_into().unwrap());
            let start = begin(&mut out);
            put_i32(&mut out, xid);
            out.extend_from_slice(&1i64.to_be_bytes()); // zxid
            put_i32(&mut out, 0); // err
            match op {
                // getData: data + Stat
                4 => {
                    put_i32(&mut out, data.len() as i32);
                    out.extend_from_slice(&data);
                    stat(&mut out, data.len());
                }
                // exists, setData, setACL: Stat
                3 | 5 | 7 => stat(&mut out, data.len()),
                // create: the path; create2 / container / TTL: the path and a Stat
                1 | 15 | 19 | 21 => {
                    let path = request_path(frame);
                    put_i32(&mut out, path.len() as i32);
                    out.extend_from_slice(path);
                    if op != 1 {
                        stat(&mut out, data.len());
                    }
                }
                // getChildren: no children; getChildren2: none and a Stat
                8 => put_i32(&mut out, 0),
                12 => {
                    put_i32(&mut out, 0);
                    stat(&mut out, 0);
                }
                // closeSession
                -11 => close = true,
                // delete, ping, sync (path), others: header only (sync echoes the path)
                9 => {
                    let path = request_path(frame);
                    put_i32(&mut out, path.len() as i32);
                    out.extend_from_slice(path);
                }
                _ => {}
            }
            end(&mut out, start);
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if !out.is_empty() {
            s.write_all(&out)?;
            out.clear();
        }
        if close {
            return Ok(());
        }
    }
}

/// The path of a request whose body starts with one (after xid and opcode).
fn request_path(frame: &[u8]) -> &[u8] {
    let Some(len) = frame.get(8..12) else {
        return b"/";
    };
    let len = i32::from_be_bytes(len.try_into().unwrap()).max(0) as usize;
    frame.get(12..12 + len).unwrap_or(b"/")
}

fn begin(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    at
}

fn end(out: &mut [u8], start: usize) {
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn stat(out: &mut Vec<u8>, data_len: usize) {
    let mut s = [0u8; STAT_LEN];
    // dataLength sits after czxid, mzxid, ctime, mtime (8 each) and version, cversion,
    // aversion (4 each), ephemeralOwner (8)
    s[52..56].copy_from_slice(&(data_len as i32).to_be_bytes());
    out.extend_from_slice(&s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_runs_against_the_stub() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener, 10));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = zk_core::Client::connect(&addr.to_string()).await.unwrap();
            let (data, stat) = c.get_data("/a").await.unwrap();
            assert_eq!(data, b"xxxxxxxxxx");
            assert_eq!(stat.data_length, 10);
            assert!(c.exists("/a").await.unwrap().is_some());
            c.set_data("/a", b"y", None).await.unwrap();
            let p = c
                .create("/b/c", b"", zk_core::CreateMode::Persistent)
                .await
                .unwrap();
            assert_eq!(p, "/b/c");
            c.delete("/b/c", None).await.unwrap();
            assert!(c.get_children("/b").await.unwrap().is_empty());
            c.close().await.unwrap();
        });
    }
}
