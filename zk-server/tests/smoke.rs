//! zk-server through zk-core and raw sockets: the client connects, creates, watches, a
//! recipes Lock works; sessions expire, re-attach, survive a refused frame and a restart.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_core::{Client, CreateMode, EventType, State};
use zk_proto::{ConnectRequest, ConnectResponse, Record};
use zk_server::Server;

async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still pending after 30 s"))
}

#[tokio::test(flavor = "multi_thread")]
async fn zk_core_connects_creates_watches_and_a_recipes_lock_works() {
    let t0 = Instant::now();
    let srv = Server::start().await.unwrap();
    let started = t0.elapsed();
    let c = Client::connect(&srv.connect_string()).await.unwrap();
    eprintln!(
        "zk-server start-up: {started:?}; with a first zk-core session: {:?}",
        t0.elapsed()
    );
    let other = Client::connect(&srv.connect_string()).await.unwrap();

    c.create("/app", b"v0", CreateMode::Persistent)
        .await
        .unwrap();
    let (data, stat, w) = c.get_data_watch("/app").await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"v0"[..], 0));
    other.set_data("/app", b"v1", Some(0)).await.unwrap();
    let ev = bounded("data watch on /app", w).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/app")
    );

    // a lock, contended by two sessions
    let l1 = zk_recipes::Lock::new(&c, "/locks/job", "one");
    let l2 = zk_recipes::Lock::new(&other, "/locks/job", "two");
    let g1 = bounded("first lock", l1.acquire()).await.unwrap();
    assert!(l2.try_acquire().await.unwrap().is_none(), "lock held twice");
    let waiter = tokio::spawn(async move {
        let g = l2.acquire().await.unwrap();
        g.release().await.unwrap();
    });
    g1.release().await.unwrap();
    bounded("second lock after release", waiter).await.unwrap();
    c.close().await.unwrap();
    other.close().await.unwrap();
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_hook_removes_ephemerals_and_fires_watches() {
    let srv = Server::start().await.unwrap();
    let owner = Client::connect(&srv.connect_string()).await.unwrap();
    let watcher = Client::connect(&srv.connect_string()).await.unwrap();
    owner
        .create("/eph", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let (stat, w) = watcher.exists_watch("/eph").await.unwrap();
    assert_eq!(stat.unwrap().ephemeral_owner, owner.session_id());
    assert!(srv
        .sessions()
        .iter()
        .any(|s| s.id == owner.session_id() && s.ephemerals == vec!["/eph".to_owned()]));
    let mut states = owner.state_stream();
    assert!(srv.expire_session(owner.session_id()));
    let ev = bounded("NodeDeleted for the expired session's ephemeral", w)
        .await
        .unwrap();
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    // the owner's client learns it on reconnecting (the expired answer): its session is lost
    loop {
        let st = bounded(
            "the owner's next state",
            futures::StreamExt::next(&mut states),
        )
        .await
        .expect("state stream ended");
        if st.state == State::Lost {
            break;
        }
    }
    assert!(watcher.exists("/eph").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_session_expires_by_ticks() {
    let srv = Server::builder()
        .tick_time(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    // raw session with the smallest timeout (2 ticks), then silence
    let (mut s, resp) = raw_connect(&srv.connect_string(), 0, &[0; 16], 1).await;
    assert_eq!(resp.timeout_ms, 400, "requested 1 ms, clamped to 2 ticks");
    let id = resp.session_id;
    let deadline = Instant::now() + Duration::from_secs(20);
    while srv.sessions().iter().any(|x| x.id == id) {
        assert!(Instant::now() < deadline, "session {id:#x} never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut b = [0u8; 1];
    assert_eq!(s.read(&mut b).await.unwrap_or(0), 0, "socket closed");
    // re-attaching to it now gets the expired answer
    let (_, resp) = raw_connect(&srv.connect_string(), id, &resp.passwd, 4000).await;
    assert_eq!((resp.timeout_ms, resp.session_id), (0, 0));
}

async fn raw_connect(
    addr: &str,
    session_id: i64,
    passwd: &[u8],
    timeout_ms: i32,
) -> (TcpStream, ConnectResponse) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms,
        session_id,
        passwd: passwd.to_vec(),
        read_only: Some(false),
    };
    s.write_all(&zk_proto::record_frame(&req)).await.unwrap();
    let len = s.read_i32().await.unwrap();
    let mut b = vec![0; len as usize];
    s.read_exact(&mut b).await.unwrap();
    (s, ConnectResponse::from_bytes(&b).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_frame_drops_the_connection_not_the_session() {
    let srv = Server::start().await.unwrap();
    let (mut s, resp) = raw_connect(&srv.connect_string(), 0, &[0; 16], 10_000).await;
    // one byte over jute.maxbuffer: the connection is closed at once
    s.write_all(&(0x10_0000i32).to_be_bytes()).await.unwrap();
    let mut b = [0u8; 16];
    assert_eq!(
        bounded("close after an oversized length", s.read(&mut b))
            .await
            .unwrap_or(0),
        0
    );
    let (_, again) =
        raw_connect(&srv.connect_string(), resp.session_id, &resp.passwd, 10_000).await;
    assert_eq!(again.session_id, resp.session_id, "session survives");
    assert_eq!(again.timeout_ms, 10_000);
    // a wrong password is the expired answer
    let (_, bad) = raw_connect(&srv.connect_string(), resp.session_id, &[1; 16], 10_000).await;
    assert_eq!((bad.timeout_ms, bad.session_id), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_data_and_sessions_on_the_same_port() {
    let srv = Server::start().await.unwrap();
    let c = Client::connect(&srv.connect_string()).await.unwrap();
    c.create("/kept", b"x", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/mine", b"", CreateMode::Ephemeral).await.unwrap();
    let sid = c.session_id();
    let port = srv.port();
    let mut states = c.state_stream();
    srv.restart().await.unwrap();
    assert_eq!(srv.port(), port);
    // the restart closed the connection: wait for the client to see it and come back (a
    // request sent meanwhile would rightly fail with ConnectionLoss)
    let mut saw_suspended = false;
    loop {
        let st = bounded(
            "the client's next state",
            futures::StreamExt::next(&mut states),
        )
        .await
        .expect("state stream ended");
        match st.state {
            State::Suspended => saw_suspended = true,
            State::Connected if saw_suspended => break,
            State::Lost => panic!("session lost across a restart: {st:?}"),
            _ => {}
        }
    }
    let (d, _) = bounded("read after restart", c.get_data("/kept"))
        .await
        .unwrap();
    assert_eq!(d, b"x");
    assert_eq!(c.session_id(), sid, "same session after restart");
    assert!(c.exists("/mine").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn four_letter_words_answer() {
    let srv = Server::start().await.unwrap();
    let addr = srv.addr();
    let ruok = tokio::task::spawn_blocking(move || zk_testkit::four_letter(addr, "ruok"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ruok, "imok");
    let srvr = tokio::task::spawn_blocking(move || zk_testkit::four_letter(addr, "srvr"))
        .await
        .unwrap()
        .unwrap();
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert!(
        srvr.contains("Node count: 5"),
        "fresh tree counts 5: {srvr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_on_the_port_it_prints() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .args(["--port", "0", "--tick-time", "500"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn zk-server");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = bounded("the binary's first line", lines.next_line())
        .await
        .unwrap()
        .expect("a line on stdout");
    let addr = line
        .rsplit(' ')
        .next()
        .expect("an address at the end")
        .to_owned();
    let c = Client::connect(&addr).await.unwrap();
    c.create("/from-binary", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert!(c.exists("/from-binary").await.unwrap().is_some());
    c.close().await.unwrap();
    child.kill().await.unwrap();
}
