//! A server restarted on the same data dir: the session survives and every watch is
//! re-registered (10,000 of them on long paths, so SetWatches is split into many packets).

mod common;

use common::{bounded, wait_state};
use futures::StreamExt;
use std::time::Duration;
use zk_core::{AddWatchMode, Client, CreateMode, EventType, Op, State};
use zk_testkit::ZkServer;

const WATCHES: usize = 10_000;

#[tokio::test(flavor = "multi_thread")]
async fn session_and_10000_watches_survive_a_server_restart() {
    common::init_tracing();
    // a restart on a loaded machine was seen to outlast a 30 s session (the client then gives
    // the session up and the test proves nothing about re-registration): the server grants
    // 120 s here
    let server = ZkServer::builder()
        .max_session_timeout(120_000)
        .start()
        .unwrap();
    let c = Client::builder(server.connect_string())
        .session_timeout(Duration::from_secs(120))
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    c.create("/w", b"", CreateMode::Persistent).await.unwrap();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let long = "x".repeat(110);
    let paths: Vec<String> = (0..WATCHES).map(|i| format!("/w/{long}-{i:05}")).collect();
    assert!(paths[0].len() > 100);
    // one exist watch per missing node, registered through one pipelined burst
    let futs: Vec<_> = paths.iter().map(|p| c.exists_watch(p)).collect();
    let watchers: Vec<_> = bounded("register", futures::future::join_all(futs))
        .await
        .into_iter()
        .map(|r| {
            let (stat, w) = r.unwrap();
            assert!(stat.is_none());
            w
        })
        .collect();
    let mut recursive = c
        .add_watch("/w", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    server.restart().unwrap();
    wait_state(&c, State::Connected, Duration::from_secs(120)).await;
    assert_eq!(
        c.session_id(),
        sid,
        "the session did not survive the restart"
    );
    assert!(c.exists("/eph").await.unwrap().is_some(), "ephemeral lost");

    // create every node from another client, 250 per transaction
    let other = Client::connect(&server.connect_string()).await.unwrap();
    for chunk in paths.chunks(250) {
        let ops = chunk
            .iter()
            .map(|p| Op::create(p.clone(), Vec::new(), CreateMode::Persistent))
            .collect();
        other.multi(ops).await.unwrap();
    }
    // every watch fires, once, with its own path
    let events = bounded("all watches", futures::future::join_all(watchers)).await;
    for (ev, p) in events.into_iter().zip(&paths) {
        let ev = ev.unwrap();
        assert_eq!(ev.event_type, EventType::NodeCreated);
        assert_eq!(&ev.path, p);
    }
    // the persistent recursive watch was re-registered too: it sees every create
    for p in &paths {
        let ev = bounded("recursive", recursive.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&ev.path, ev.event_type), (p, EventType::NodeCreated));
    }
    // one-shot: a second change to a node fires nothing on the old watchers (they are
    // consumed); the server's watch count for our session is down to the persistent one
    let wchc = server.four_letter("wchc").unwrap();
    let ours = format!("{sid:#x}");
    let our_section: String = wchc
        .split("0x")
        .filter(|s| ours.ends_with(s.lines().next().unwrap_or("").trim()))
        .collect();
    assert!(
        !our_section.contains(&paths[0]),
        "a fired one-shot watch is still registered: {our_section}"
    );
}

/// ZooKeeper 3.8.0 leaves a connection made while it starts (port bound, server not yet
/// running) open and unanswered: its close path throws a NullPointerException (`zkDb` is null in
/// `removeCnxn`), so the socket is never closed. A client that waits the Java client's
/// connect timeout (session timeout / hosts: 120 s here) for that handshake did not reconnect
/// for minutes after a restart (two under-load CI failures and a local repro). The stand-in
/// server here holds every connection made in its first 2 s silently open, then forwards new
/// ones to a real server: the client must give the silent attempt up and connect.
#[tokio::test(flavor = "multi_thread")]
async fn a_handshake_the_server_never_answers_is_given_up_before_the_session_timeout() {
    common::init_tracing();
    let server = ZkServer::builder()
        .max_session_timeout(120_000)
        .start()
        .unwrap();
    let upstream = server.addr();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent_until = tokio::time::Instant::now() + Duration::from_secs(2);
    let stand_in = tokio::spawn(async move {
        let mut silent = Vec::new();
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            if tokio::time::Instant::now() < silent_until {
                silent.push(conn);
                continue;
            }
            tokio::spawn(async move {
                let mut up = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
            });
        }
    });
    let connected = Client::builder(format!("127.0.0.1:{port}"))
        .session_timeout(Duration::from_secs(120))
        .connect_timeout(Duration::from_secs(60))
        .connect()
        .await;
    stand_in.abort();
    let c = connected.expect("a session within 60 s although the first handshake hangs");
    assert_eq!(c.state(), State::Connected);
}
