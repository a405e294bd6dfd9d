//! Network faults between the client and a real server, through the test kit's proxy.

mod common;

use common::{bounded, wait_state};
use futures::StreamExt;
use std::time::{Duration, Instant};
use zk_core::{AddWatchMode, Client, CreateMode, Error, EventType, State};
use zk_testkit::FaultProxy;

/// A client through a proxy to the shared server, in a fresh chroot, plus a direct client on the
/// same chroot to make changes with.
async fn setup(name: &str, timeout: Duration) -> (FaultProxy, Client, Client) {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root(name);
    let direct = common::chroot_client(&server.connect_string(), &root).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(format!("{}{root}", proxy.connect_string()))
        .session_timeout(timeout)
        .connect()
        .await
        .unwrap();
    (proxy, c, direct)
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_with_100_requests_in_flight() {
    let (proxy, c, direct) = setup("reset", Duration::from_secs(10)).await;
    c.create("/n", b"", CreateMode::Persistent).await.unwrap();
    let sid = c.session_id();
    let (_, _, one_shot) = c.get_data_watch("/n").await.unwrap();
    let (_, child_watch) = c.get_children_watch("/n").await.unwrap();
    let mut persistent = c.add_watch("/n", AddWatchMode::Persistent).await.unwrap();

    let futs: Vec<_> = (0..100)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.create(&format!("/n/k{i}"), b"", CreateMode::Persistent)
                    .await
            })
        })
        .collect();
    tokio::task::yield_now().await;
    proxy.reset();
    let (mut ok, mut lost) = (0, 0);
    for f in futs {
        match bounded("in-flight request", f).await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) if e.may_have_been_applied() => {
                assert!(matches!(e, Error::ConnectionLoss), "{e:?}");
                lost += 1
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok + lost, 100);
    eprintln!("after reset: {ok} answered, {lost} connection loss");

    wait_state(&c, State::Connected, Duration::from_secs(10)).await;
    assert_eq!(c.session_id(), sid, "session changed across a reset");
    // changes after the reset reach the watches set before it
    direct.set_data("/n", b"after", None).await.unwrap();
    assert_eq!(
        bounded("one-shot", one_shot).await.unwrap().event_type,
        EventType::NodeDataChanged
    );
    // the child watch may have fired already (creates that got through before the reset)
    direct
        .create("/n/after", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        bounded("child", child_watch).await.unwrap().event_type,
        EventType::NodeChildrenChanged
    );
    // the persistent watch saw (some of) the creates, then the changes after the reset
    let mut seen_data_change = false;
    while !seen_data_change {
        let e = bounded("persistent", persistent.next())
            .await
            .unwrap()
            .unwrap();
        seen_data_change = e.event_type == EventType::NodeDataChanged;
    }
    // every create that reported success exists; none that failed is duplicated
    let children = c.get_children("/n").await.unwrap();
    assert!(
        children.len() > ok,
        "a create that reported success is missing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_while_disconnected_fire_one_shot_watches_on_reconnect() {
    let (proxy, c, direct) = setup("offline", Duration::from_secs(10)).await;
    c.create("/d", b"", CreateMode::Persistent).await.unwrap();
    let sid = c.session_id();
    let (_, _, data_w) = c.get_data_watch("/d").await.unwrap();
    let (_, exist_w) = c.exists_watch("/later").await.unwrap();
    let (_, child_w) = c.get_children_watch("/d").await.unwrap();
    let mut pers = c
        .add_watch("/d", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended, Duration::from_secs(30)).await;
    // change everything while the client cannot see it
    direct.set_data("/d", b"x", None).await.unwrap();
    direct
        .create("/later", b"", CreateMode::Persistent)
        .await
        .unwrap();
    direct
        .create("/d/k", b"", CreateMode::Persistent)
        .await
        .unwrap();
    proxy.reject_new(false);
    wait_state(&c, State::Connected, Duration::from_secs(10)).await;
    assert_eq!(c.session_id(), sid);

    // SetWatches with the last zxid seen makes the server fire what changed meanwhile
    assert_eq!(
        bounded("data", data_w).await.unwrap().event_type,
        EventType::NodeDataChanged
    );
    assert_eq!(
        bounded("exist", exist_w).await.unwrap().event_type,
        EventType::NodeCreated
    );
    assert_eq!(
        bounded("child", child_w).await.unwrap().event_type,
        EventType::NodeChildrenChanged
    );
    // persistent watches are re-added: the next change arrives. (They get no replay of their
    // own, but a catch-up notification fired for a one-shot watch on the same path, here the
    // data change of /d, reaches them too: one notification per path, as in the Java client.)
    direct
        .create("/d/k2", b"", CreateMode::Persistent)
        .await
        .unwrap();
    loop {
        let e = bounded("recursive", pers.next()).await.unwrap().unwrap();
        if (e.event_type, e.path.as_str()) == (EventType::NodeCreated, "/d/k2") {
            break;
        }
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDataChanged, "/d")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn blackhole_suspends_before_the_timeout_and_heal_resumes_the_session() {
    let timeout = Duration::from_secs(6);
    let (proxy, c, _direct) = setup("blackhole", timeout).await;
    let sid = c.session_id();
    let mut states = c.state_stream();
    let t0 = Instant::now();
    proxy.blackhole();
    let s = bounded("suspended", states.next()).await.unwrap();
    assert_eq!(s.state, State::Suspended);
    let took = t0.elapsed();
    eprintln!("suspended after {took:?} (session timeout {timeout:?})");
    assert!(took < timeout, "noticed the silence only after {took:?}");
    // a request made now waits for the reconnection
    let pending = tokio::spawn({
        let c = c.clone();
        async move {
            c.create("/made-while-suspended", b"", CreateMode::Persistent)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.heal();
    let s = bounded("connected", states.next()).await.unwrap();
    assert_eq!(s.state, State::Connected);
    assert_eq!(s.session_id, sid, "healed before expiry: same session");
    assert_eq!(
        bounded("pending", pending).await.unwrap().unwrap(),
        "/made-while-suspended"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reply_lost_after_the_server_applied_the_request() {
    let (proxy, c, direct) = setup("cut", Duration::from_secs(10)).await;
    proxy.cut_after_request(15); // create2
    let err = bounded(
        "cut create",
        c.create("/applied", b"", CreateMode::Persistent),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::ConnectionLoss), "{err:?}");
    assert!(err.may_have_been_applied());
    assert_eq!(proxy.cuts_fired(), 1);
    assert!(
        direct.exists("/applied").await.unwrap().is_some(),
        "the server applied it"
    );
    wait_state(&c, State::Connected, Duration::from_secs(10)).await;
    assert!(matches!(
        c.create("/applied", b"", CreateMode::Persistent).await,
        Err(Error::NodeExists)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_from_the_server_is_a_protocol_error_not_a_panic() {
    // a "server" that completes the handshake and then sends a frame claiming 2 GiB whose
    // head answers no request (a reply over max_frame_len is skipped only when its head matches
    // the oldest request in flight)
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut req = [0u8; 49];
                if s.read_exact(&mut req).await.is_err() {
                    return;
                }
                let mut resp = vec![0, 0, 0, 37, 0, 0, 0, 0, 0, 0, 0x27, 0x10];
                resp.extend_from_slice(&0x77i64.to_be_bytes());
                resp.extend_from_slice(&[0, 0, 0, 16]);
                resp.extend_from_slice(&[1; 16]);
                resp.push(0);
                s.write_all(&resp).await.unwrap();
                let mut garbage = vec![0x7f, 0xff, 0xff, 0xff];
                garbage.extend_from_slice(&[7; 16]);
                let _ = s.write_all(&garbage).await;
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink).await;
            });
        }
    });
    let c = Client::builder(addr.to_string())
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    // the bad frame drops the connection; the client keeps going (suspended, reconnecting)
    wait_state(&c, State::Suspended, Duration::from_secs(30)).await;
    let r = c
        .with_timeout(Duration::from_millis(300))
        .exists("/x")
        .await;
    assert!(r.is_err());
}
