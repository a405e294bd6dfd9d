//! Raw ZooKeeper wire helpers for the tests (no client library).
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const OP_CREATE: i32 = 1;
pub const OP_EXISTS: i32 = 3;
pub const OK: i32 = 0;
pub const NONODE: i32 = -101;
pub const NODEEXISTS: i32 = -110;

/// A path no other test (or earlier run) uses.
pub fn unique_path(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("/{name}-{}-{nanos}", std::process::id())
}

/// ConnectResponse fields.
#[derive(Debug)]
pub struct ConnectResponse {
    pub timeout: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: Option<bool>,
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

fn put_string(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as i32).to_be_bytes());
    buf.extend_from_slice(s);
}

pub fn connect_request(
    session_id: i64,
    password: &[u8],
    timeout_ms: i32,
    read_only: bool,
) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&0i32.to_be_bytes());
    p.extend_from_slice(&0i64.to_be_bytes());
    p.extend_from_slice(&timeout_ms.to_be_bytes());
    p.extend_from_slice(&session_id.to_be_bytes());
    put_string(&mut p, password);
    p.push(read_only as u8);
    frame(&p)
}

pub async fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let len = stream.read_i32().await?;
    assert!((0..=1 << 20).contains(&len), "bad frame length {len}");
    let mut buf = vec![0; len as usize];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

pub fn parse_connect_response(p: &[u8]) -> ConnectResponse {
    assert!(p.len() >= 36, "not a ConnectResponse: {} bytes", p.len());
    let timeout = i32::from_be_bytes(p[4..8].try_into().unwrap());
    let session_id = i64::from_be_bytes(p[8..16].try_into().unwrap());
    let len = i32::from_be_bytes(p[16..20].try_into().unwrap()) as usize;
    ConnectResponse {
        timeout,
        session_id,
        password: p[20..20 + len].to_vec(),
        read_only: p.get(20 + len).map(|b| *b != 0),
    }
}

/// Sends a ConnectRequest on `stream` and reads the ConnectResponse.
pub async fn handshake(
    stream: &mut TcpStream,
    session_id: i64,
    password: &[u8],
    timeout_ms: i32,
) -> io::Result<ConnectResponse> {
    stream
        .write_all(&connect_request(session_id, password, timeout_ms, false))
        .await?;
    Ok(parse_connect_response(&read_frame(stream).await?))
}

/// A new session on `addr`.
pub async fn connect(addr: SocketAddr) -> io::Result<(TcpStream, ConnectResponse)> {
    let mut stream = TcpStream::connect(addr).await?;
    let response = handshake(&mut stream, 0, &[0; 16], 30_000).await?;
    assert!(response.timeout > 0, "{response:?}");
    Ok((stream, response))
}

pub fn request(xid: i32, opcode: i32, body: &[u8]) -> Vec<u8> {
    let mut p = xid.to_be_bytes().to_vec();
    p.extend_from_slice(&opcode.to_be_bytes());
    p.extend_from_slice(body);
    frame(&p)
}

/// CreateRequest {path, data, [{31, world, anyone}], flags}.
pub fn create_request(xid: i32, path: &str, data: &[u8], flags: i32) -> Vec<u8> {
    let mut body = Vec::new();
    put_string(&mut body, path.as_bytes());
    put_string(&mut body, data);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&31i32.to_be_bytes());
    put_string(&mut body, b"world");
    put_string(&mut body, b"anyone");
    body.extend_from_slice(&flags.to_be_bytes());
    request(xid, OP_CREATE, &body)
}

/// ExistsRequest {path, watch false}.
pub fn exists_request(xid: i32, path: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_string(&mut body, path.as_bytes());
    body.push(0);
    request(xid, OP_EXISTS, &body)
}

/// ReplyHeader {xid, zxid, err} of a reply frame.
pub fn reply_header(p: &[u8]) -> (i32, i64, i32) {
    assert!(p.len() >= 16, "not a reply: {} bytes", p.len());
    (
        i32::from_be_bytes(p[0..4].try_into().unwrap()),
        i64::from_be_bytes(p[4..12].try_into().unwrap()),
        i32::from_be_bytes(p[12..16].try_into().unwrap()),
    )
}

/// Sends `frame` and returns the reply's error code (checking the xid).
pub async fn call(stream: &mut TcpStream, frame: &[u8]) -> io::Result<i32> {
    let xid = i32::from_be_bytes(frame[4..8].try_into().unwrap());
    stream.write_all(frame).await?;
    let reply = read_frame(stream).await?;
    let (reply_xid, _, err) = reply_header(&reply);
    assert_eq!(reply_xid, xid);
    Ok(err)
}

/// exists(path) on a fresh session to `addr`: the error code (0 = exists, -101 = no node).
pub async fn exists(addr: SocketAddr, path: &str) -> io::Result<i32> {
    let (mut stream, _) = connect(addr).await?;
    call(&mut stream, &exists_request(1, path)).await
}

/// Whether `stream` was closed or reset: reads until EOF or error (panics on data).
pub async fn is_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf).await {
        Ok(0) | Err(_) => true,
        Ok(n) => panic!("unexpected {n} bytes: {:?}", &buf[..n]),
    }
}
