//! Timer logic of the session task under paused tokio time: ping cadence, disconnect
//! detection, connect timeout. The peer is a scripted byte stream speaking just enough of the
//! protocol (handshake and ping replies); correctness against ZooKeeper itself is tested with a
//! real server in the workspace's `tests/` crate.

use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use zk_core::{Client, ConnectFuture, Connector, HostAddr, State, Transport};
use zk_proto::{ConnectRequest, ConnectResponse, Record, ReplyHeader, RequestHeader};

/// Hands each new connection's server side to the test.
struct PipeConnector {
    tx: mpsc::UnboundedSender<DuplexStream>,
    refuse: Arc<Mutex<bool>>,
}

impl Connector for PipeConnector {
    fn connect<'a>(&'a self, _addr: &'a HostAddr) -> ConnectFuture<'a> {
        Box::pin(async move {
            if *self.refuse.lock().unwrap() {
                // a host that never answers
                std::future::pending::<()>().await;
            }
            let (client, server) = tokio::io::duplex(1 << 16);
            self.tx.send(server).unwrap();
            Ok(Box::new(client) as Box<dyn Transport>)
        })
    }
}

async fn read_frame(s: &mut DuplexStream) -> Option<Vec<u8>> {
    let len = s.read_i32().await.ok()?;
    let mut b = vec![0; len as usize];
    s.read_exact(&mut b).await.ok()?;
    Some(b)
}

async fn write_record(s: &mut DuplexStream, r: &impl Record, extra: Option<&ReplyHeader>) {
    let mut body = BytesMut::new();
    if let Some(h) = extra {
        body.extend_from_slice(&h.to_bytes());
    }
    body.extend_from_slice(&r.to_bytes());
    let mut f = BytesMut::new();
    f.put_i32(body.len() as i32);
    f.extend_from_slice(&body);
    s.write_all(&f).await.unwrap();
}

/// Accepts the handshake with the given negotiated timeout.
async fn handshake(s: &mut DuplexStream, timeout_ms: i32, session_id: i64) -> ConnectRequest {
    let req = ConnectRequest::from_bytes(&read_frame(s).await.unwrap()).unwrap();
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms,
        session_id,
        passwd: vec![7; 16],
        read_only: false,
    };
    write_record(s, &resp, None).await;
    req
}

struct Empty;
impl Record for Empty {
    fn write(&self, _: &mut zk_proto::Writer<'_>) {}
    fn read(_: &mut zk_proto::Reader<'_>) -> Result<Self, zk_proto::DecodeError> {
        Ok(Empty)
    }
}

async fn setup(
    timeout: Duration,
) -> (
    tokio::task::JoinHandle<zk_core::Result<Client>>,
    mpsc::UnboundedReceiver<DuplexStream>,
    Arc<Mutex<bool>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let refuse = Arc::new(Mutex::new(false));
    let conn = PipeConnector {
        tx,
        refuse: refuse.clone(),
    };
    let h = tokio::spawn(
        Client::builder("pipe:1")
            .session_timeout(timeout)
            .reconnect_jitter(Duration::ZERO)
            .connector(conn)
            .connect(),
    );
    (h, rx, refuse)
}

#[tokio::test(start_paused = true)]
async fn pings_at_a_third_of_the_session_timeout_when_idle() {
    let (h, mut servers, _) = setup(Duration::from_secs(3)).await;
    let mut s = servers.recv().await.unwrap();
    handshake(&mut s, 3000, 0x42).await;
    let client = h.await.unwrap().unwrap();
    assert_eq!(client.session_id(), 0x42);
    let start = Instant::now();
    let mut at = Vec::new();
    while at.len() < 5 {
        let f = read_frame(&mut s).await.unwrap();
        let hdr = RequestHeader::from_bytes(&f).unwrap();
        assert_eq!((hdr.xid, hdr.op), (-2, 11), "only pings expected");
        at.push(start.elapsed());
        let reply = ReplyHeader {
            xid: -2,
            zxid: 1,
            err: 0,
        };
        write_record(&mut s, &Empty, Some(&reply)).await;
    }
    for (i, t) in at.iter().enumerate() {
        let expected = Duration::from_millis(1000 * (i as u64 + 1));
        let diff = t.abs_diff(expected);
        assert!(
            diff < Duration::from_millis(20),
            "ping {i} at {t:?}, expected {expected:?}"
        );
    }
    assert_eq!(client.state(), State::Connected);
}

#[tokio::test(start_paused = true)]
async fn silent_server_is_dropped_at_two_thirds_and_session_reattached() {
    let (h, mut servers, _) = setup(Duration::from_secs(3)).await;
    let mut s = servers.recv().await.unwrap();
    handshake(&mut s, 3000, 0x42).await;
    let client = h.await.unwrap().unwrap();
    let mut states = client.state_stream();
    let start = Instant::now();
    // read (and ignore) pings, answer nothing
    let drain = tokio::spawn(async move { while read_frame(&mut s).await.is_some() {} });
    let st = states.next().await.unwrap();
    assert_eq!(st.state, State::Suspended);
    let t = start.elapsed();
    assert!(
        t.abs_diff(Duration::from_millis(2000)) < Duration::from_millis(20),
        "suspended after {t:?}, expected 2 s"
    );
    drain.await.unwrap();
    // the client comes back with the same session id and password
    let mut s2 = servers.recv().await.unwrap();
    let req = handshake(&mut s2, 3000, 0x42).await;
    assert_eq!(req.session_id, 0x42);
    assert_eq!(req.passwd, vec![7; 16]);
    assert_eq!(states.next().await.unwrap().state, State::Connected);
}

#[tokio::test(start_paused = true)]
async fn no_server_for_a_whole_session_timeout_means_lost() {
    let (h, mut servers, refuse) = setup(Duration::from_secs(3)).await;
    let mut s = servers.recv().await.unwrap();
    handshake(&mut s, 3000, 0x42).await;
    let client = h.await.unwrap().unwrap();
    let mut states = client.state_stream();
    *refuse.lock().unwrap() = true;
    let start = Instant::now();
    drop(s); // connection closed by the "server"
    assert_eq!(states.next().await.unwrap().state, State::Suspended);
    let lost = states.next().await.unwrap();
    assert_eq!(lost.state, State::Lost);
    assert_eq!(lost.keeper_state, zk_core::KeeperState::Expired);
    let t = start.elapsed();
    assert!(
        t.abs_diff(Duration::from_secs(3)) < Duration::from_millis(50),
        "lost after {t:?}, expected 3 s"
    );
}

#[tokio::test(start_paused = true)]
async fn request_deadline_while_disconnected_is_a_not_sent_timeout() {
    let (h, mut servers, refuse) = setup(Duration::from_secs(30)).await;
    let mut s = servers.recv().await.unwrap();
    handshake(&mut s, 30000, 0x42).await;
    let client = h.await.unwrap().unwrap();
    *refuse.lock().unwrap() = true;
    drop(s);
    client
        .wait_for_state(State::Suspended, Some(Duration::from_secs(1)))
        .await
        .unwrap();
    let err = client
        .with_timeout(Duration::from_millis(500))
        .exists("/x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, zk_core::Error::Timeout { sent: false }),
        "{err:?}"
    );
    assert!(!err.may_have_been_applied());
}

#[tokio::test(start_paused = true)]
async fn out_of_order_reply_closes_the_connection_and_fails_the_caller() {
    let (h, mut servers, _) = setup(Duration::from_secs(30)).await;
    let mut s = servers.recv().await.unwrap();
    handshake(&mut s, 30000, 0x42).await;
    let client = h.await.unwrap().unwrap();
    let req = tokio::spawn({
        let c = client.clone();
        async move { c.exists("/x").await }
    });
    let f = read_frame(&mut s).await.unwrap();
    let hdr = RequestHeader::from_bytes(&f).unwrap();
    assert_eq!(hdr.op, 3);
    // answer with somebody else's xid
    let reply = ReplyHeader {
        xid: hdr.xid + 5,
        zxid: 9,
        err: 0,
    };
    write_record(&mut s, &Empty, Some(&reply)).await;
    let err = req.await.unwrap().unwrap_err();
    assert!(matches!(err, zk_core::Error::ConnectionLoss), "{err:?}");
    // the connection was dropped; the client comes back on the same session
    assert!(read_frame(&mut s).await.is_none());
    let mut s2 = servers.recv().await.unwrap();
    assert_eq!(handshake(&mut s2, 30000, 0x42).await.session_id, 0x42);
}
