//! The fault-injecting proxy in front of the shared server.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use zk_testkit::{four_letter, shared_server, FaultProxy};

async fn proxy() -> FaultProxy {
    let upstream = tokio::task::spawn_blocking(|| shared_server().addr())
        .await
        .unwrap();
    FaultProxy::start(upstream).await.unwrap()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forwards_sessions_and_four_letter_words() {
    let proxy = proxy().await;
    assert_eq!(proxy.connect_string(), proxy.addr().to_string());
    assert_eq!(proxy.upstream(), shared_server().addr());
    let (mut stream, response) = connect(proxy.addr()).await.unwrap();
    assert!(response.timeout > 0);
    assert_eq!(response.password.len(), 16);
    assert_eq!(
        call(&mut stream, &exists_request(1, "/")).await.unwrap(),
        OK
    );
    assert_eq!(
        call(&mut stream, &exists_request(2, "/nope-x"))
            .await
            .unwrap(),
        NONODE
    );
    assert_eq!(proxy.connections_accepted(), 1);
    assert_eq!(proxy.active_connections(), 1);

    let addr = proxy.addr();
    let srvr = tokio::task::spawn_blocking(move || four_letter(addr, "srvr").unwrap())
        .await
        .unwrap();
    assert!(srvr.contains("Mode: standalone"), "{srvr}");

    drop(stream);
    eventually("the closed connection to go away", || {
        proxy.active_connections() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_aborts_current_connections_only() {
    let proxy = proxy().await;
    let (mut first, _) = connect(proxy.addr()).await.unwrap();
    let (mut second, _) = connect(proxy.addr()).await.unwrap();
    assert_eq!(proxy.active_connections(), 2);
    proxy.reset();
    assert_eq!(proxy.active_connections(), 0);
    for stream in [&mut first, &mut second] {
        let mut buf = [0u8; 16];
        let read = timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap();
        assert_eq!(
            read.unwrap_err().kind(),
            std::io::ErrorKind::ConnectionReset,
            "expected a RST"
        );
    }
    let (mut third, _) = connect(proxy.addr()).await.unwrap();
    assert_eq!(call(&mut third, &exists_request(1, "/")).await.unwrap(), OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn blackhole_is_silent_and_heal_delivers_what_was_held() {
    let proxy = proxy().await;
    let (mut old, _) = connect(proxy.addr()).await.unwrap();
    proxy.blackhole();
    assert!(proxy.is_blackholed());

    // An existing connection: the request goes nowhere, the socket stays open.
    old.write_all(&exists_request(1, "/")).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        timeout(Duration::from_millis(700), old.read(&mut buf))
            .await
            .is_err(),
        "expected silence, not a reply or a close"
    );

    // A new connection is accepted, but its handshake is not answered.
    let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
    new.write_all(&connect_request(0, &[0; 16], 30_000, false))
        .await
        .unwrap();
    assert!(timeout(Duration::from_millis(500), new.read(&mut buf))
        .await
        .is_err());
    assert_eq!(proxy.active_connections(), 2);

    proxy.heal();
    assert!(!proxy.is_blackholed());
    // What was held is delivered: the reply on the old connection, the handshake on the new one.
    let reply = timeout(Duration::from_secs(5), read_frame(&mut old))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply_header(&reply), (1, reply_header(&reply).1, OK));
    let response = timeout(Duration::from_secs(5), read_frame(&mut new))
        .await
        .unwrap()
        .unwrap();
    assert!(parse_connect_response(&response).timeout > 0);
    // And fresh connections work.
    let (mut fresh, _) = connect(proxy.addr()).await.unwrap();
    assert_eq!(call(&mut fresh, &exists_request(1, "/")).await.unwrap(), OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_after_request_applies_the_request_but_hides_the_reply() {
    let proxy = proxy().await;
    let path = unique_path("cut-test");
    let (mut stream, _) = connect(proxy.addr()).await.unwrap();
    // Reads before the trap are untouched.
    proxy.cut_after_request(1);
    assert_eq!(
        call(&mut stream, &exists_request(1, &path)).await.unwrap(),
        NONODE
    );

    stream
        .write_all(&create_request(2, &path, b"data", 0))
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(
        read.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );
    assert_eq!(proxy.cuts_fired(), 1);

    // The server applied it: a direct connection finds the node.
    assert_eq!(exists(shared_server().addr(), &path).await.unwrap(), OK);

    // The trap was one-shot.
    let (mut stream, _) = connect(proxy.addr()).await.unwrap();
    let second = format!("{path}-2");
    assert_eq!(
        call(&mut stream, &create_request(1, &second, b"", 0))
            .await
            .unwrap(),
        OK
    );
    assert_eq!(
        call(&mut stream, &create_request(2, &path, b"", 0))
            .await
            .unwrap(),
        NODEEXISTS
    );
    assert_eq!(proxy.cuts_fired(), 1);

    // Disarming works.
    proxy.cut_after_request(1);
    proxy.disarm_cut();
    let third = format!("{path}-3");
    assert_eq!(
        call(&mut stream, &create_request(3, &third, b"", 0))
            .await
            .unwrap(),
        OK
    );
    assert_eq!(proxy.cuts_fired(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_request_waits_in_the_proxy_until_released_while_replies_flow() {
    let proxy = proxy().await;
    let path = unique_path("hold-test");
    let (mut stream, _) = connect(proxy.addr()).await.unwrap();
    proxy.hold_request(&[OP_CREATE]);
    // Requests before the held one go through and are answered.
    assert_eq!(
        call(&mut stream, &exists_request(1, &path)).await.unwrap(),
        NONODE
    );
    // The create and the exists after it stop in the proxy.
    let mut two = create_request(2, &path, b"data", 0);
    two.extend(exists_request(3, &path));
    stream.write_all(&two).await.unwrap();
    eventually("the create to be held", || proxy.held_requests() == 1).await;
    let mut buf = [0u8; 64];
    assert!(
        timeout(Duration::from_millis(300), stream.read(&mut buf))
            .await
            .is_err(),
        "no reply while the create is held"
    );
    // The server has not seen it: the world can move meanwhile.
    assert_eq!(exists(shared_server().addr(), &path).await.unwrap(), NONODE);
    proxy.release_held();
    let (xid, _, err) = reply_header(&read_frame(&mut stream).await.unwrap());
    assert_eq!((xid, err), (2, OK), "the create, applied once released");
    let (xid, _, err) = reply_header(&read_frame(&mut stream).await.unwrap());
    assert_eq!(
        (xid, err),
        (3, OK),
        "the exists queued behind it finds the node"
    );
    // One-shot: the next create passes.
    let second = format!("{path}-2");
    assert_eq!(
        call(&mut stream, &create_request(4, &second, b"", 0))
            .await
            .unwrap(),
        OK
    );
    assert_eq!(proxy.held_requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_cut_trap_is_sprung_once_for_every_proxy_sharing_it() {
    let first = proxy().await;
    let second = proxy().await;
    second.share_cut_trap(&first.cut_trap());
    let path = unique_path("shared-cut");
    // armed through the first proxy, sprung by a request through the second
    first.cut_after_request(1);
    let (mut stream, _) = connect(second.addr()).await.unwrap();
    stream
        .write_all(&create_request(1, &path, b"", 0))
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(
        read.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );
    assert_eq!((first.cuts_fired(), second.cuts_fired()), (0, 1));
    // sprung for both: the same request through the first proxy is answered
    let (mut stream, _) = connect(first.addr()).await.unwrap();
    assert_eq!(
        call(
            &mut stream,
            &create_request(1, &format!("{path}-2"), b"", 0)
        )
        .await
        .unwrap(),
        OK
    );
    assert_eq!((first.cuts_fired(), second.cuts_fired()), (0, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn delay_adds_latency_in_both_directions() {
    let proxy = proxy().await;
    let (mut stream, _) = connect(proxy.addr()).await.unwrap();
    // A delay far above any loopback round trip, so that the bounds below hold however loaded
    // the machine is: each way 1 s, a round trip at least 2 s.
    proxy.set_delay(Duration::from_secs(1));
    let started = Instant::now();
    assert_eq!(
        call(&mut stream, &exists_request(1, "/")).await.unwrap(),
        OK
    );
    let slow = started.elapsed();
    assert!(slow >= Duration::from_millis(1990), "{slow:?}");

    // Pipelined requests keep their order and share the latency.
    let mut batch = Vec::new();
    for xid in 2..12 {
        batch.extend(exists_request(xid, "/"));
    }
    let started = Instant::now();
    stream.write_all(&batch).await.unwrap();
    for xid in 2..12 {
        let reply = read_frame(&mut stream).await.unwrap();
        assert_eq!(reply_header(&reply).0, xid);
    }
    // one after the other they would take 10 round trips (20 s)
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not pipelined: {:?}",
        started.elapsed()
    );

    proxy.set_delay(Duration::ZERO);
    let started = Instant::now();
    assert_eq!(
        call(&mut stream, &exists_request(20, "/")).await.unwrap(),
        OK
    );
    assert!(
        started.elapsed() < Duration::from_millis(1990),
        "still delayed: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reject_new_closes_new_connections() {
    let proxy = proxy().await;
    let (mut existing, _) = connect(proxy.addr()).await.unwrap();
    proxy.reject_new(true);
    let mut rejected = TcpStream::connect(proxy.addr()).await.unwrap();
    let _ = rejected
        .write_all(&connect_request(0, &[0; 16], 30_000, false))
        .await;
    assert!(timeout(Duration::from_secs(10), is_closed(&mut rejected))
        .await
        .unwrap());
    assert_eq!(
        call(&mut existing, &exists_request(1, "/")).await.unwrap(),
        OK
    );
    assert_eq!(proxy.connections_accepted(), 2);
    assert_eq!(proxy.active_connections(), 1);

    proxy.reject_new(false);
    let (mut accepted, _) = connect(proxy.addr()).await.unwrap();
    assert_eq!(
        call(&mut accepted, &exists_request(1, "/")).await.unwrap(),
        OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_proxy_closes_everything() {
    let proxy = proxy().await;
    let addr = proxy.addr();
    let (mut stream, _) = connect(addr).await.unwrap();
    drop(proxy);
    assert!(timeout(Duration::from_secs(10), is_closed(&mut stream))
        .await
        .unwrap());
    // the listener goes with the proxy's task: wait for it, not for a fixed time
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the dropped proxy still accepts connections after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
