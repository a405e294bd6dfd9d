//! `zk watch`: event lines, --children, --recursive, --count, and the watch kept across a
//! server restart, the death of the ensemble member it is connected to, and session expiry.

mod common;

use common::*;
use std::time::Duration;
use zk_core::{Client, CreateMode};

#[tokio::test(flavor = "multi_thread")]
async fn watch_prints_one_line_per_event_and_exits_after_count() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("watch");
    let mut z = Proc::start(&h, &["watch", &p, "--count", "3"]);
    z.wait_stderr("state CONNECTED").await;
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    z.wait_stdout("NodeCreated").await;
    c.set_data(&p, b"x", None).await.unwrap();
    z.wait_stdout("NodeDataChanged").await;
    c.delete(&p, None).await.unwrap();
    assert_eq!(z.exit().await, 0);
    assert_eq!(
        z.stdout(),
        vec![
            format!("NodeCreated {p}"),
            format!("NodeDataChanged {p}"),
            format!("NodeDeleted {p}")
        ]
    );
    assert_eq!(z.stderr(), vec!["state CONNECTED".to_owned()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn children_events_only_with_children() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("watch-children");
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();

    let mut plain = Proc::start(&h, &["watch", &p, "--count", "1"]);
    let mut kids = Proc::start(&h, &["watch", &p, "--children", "--count", "2"]);
    plain.wait_stderr("state CONNECTED").await;
    kids.wait_stderr("state CONNECTED").await;
    c.create(&format!("{p}/child"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    kids.wait_stdout("NodeChildrenChanged").await;
    c.set_data(&p, b"x", None).await.unwrap();
    assert_eq!(plain.exit().await, 0);
    assert_eq!(kids.exit().await, 0);
    assert_eq!(
        plain.stdout(),
        vec![format!("NodeDataChanged {p}")],
        "no child event without --children"
    );
    assert_eq!(
        kids.stdout(),
        vec![
            format!("NodeChildrenChanged {p}"),
            format!("NodeDataChanged {p}")
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn recursive_watch_sees_the_subtree() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("watch-rec");
    let mut z = Proc::start(&h, &["watch", &p, "--recursive", "--count", "4"]);
    z.wait_stderr("state CONNECTED").await;
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    c.create(&format!("{p}/a"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.create(&format!("{p}/a/b"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.set_data(&format!("{p}/a/b"), b"x", None).await.unwrap();
    assert_eq!(z.exit().await, 0);
    assert_eq!(
        z.stdout(),
        vec![
            format!("NodeCreated {p}"),
            format!("NodeCreated {p}/a"),
            format!("NodeCreated {p}/a/b"),
            format!("NodeDataChanged {p}/a/b"),
        ]
    );
}

#[tokio::test]
async fn watch_survives_a_server_restart() {
    let server = zk_testkit::ZkServer::builder()
        .max_session_timeout(120_000)
        .start_async()
        .await
        .expect("start a server");
    let h = server.connect_string();
    let c = client(&h).await;
    let p = unique("watch-restart");
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    // a restart on a loaded machine can take longer than the default 10 s session, and even
    // than 40 s (the default maximum, which this server raises to 120 s); the test is about
    // the watch, not the session timeout
    let mut z = Proc::start(
        &h,
        &["--session-timeout", "120s", "watch", &p, "--count", "2"],
    );
    z.wait_stderr("state CONNECTED").await;
    c.set_data(&p, b"before", None).await.unwrap();
    z.wait_stdout("NodeDataChanged").await;

    server.restart_async().await.unwrap();
    z.wait_stderr("state SUSPENDED").await;
    z.wait_stderr_n("state CONNECTED", 2).await;

    // after the reconnect: a change made by another client is printed
    let c2 = client(&h).await;
    c2.delete(&p, None).await.unwrap();
    assert_eq!(z.exit().await, 0);
    assert_eq!(
        z.stdout(),
        vec![format!("NodeDataChanged {p}"), format!("NodeDeleted {p}")]
    );
    assert_eq!(
        z.stderr(),
        vec!["state CONNECTED", "state SUSPENDED", "state CONNECTED"]
    );
}

#[tokio::test]
async fn watch_survives_killing_the_ensemble_member_it_is_connected_to() {
    let ensemble = zk_testkit::Ensemble::start_async(3)
        .await
        .expect("start an ensemble");
    let h = ensemble.connect_string();
    let p = unique("watch-failover");
    let mut z = Proc::start(&h, &["-v", "watch", &p, "--count", "2"]);
    z.wait_stderr("state CONNECTED").await;
    // which member: -v logs the server of every state change
    let line = z.wait_stderr("state CONNECTED session=").await;
    let server = line
        .split("server=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("server in the log")
        .to_owned();
    let member = ensemble
        .members()
        .iter()
        .position(|m| m.connect_string() == server)
        .expect("one of the members");
    let others: Vec<String> = (0..3)
        .filter(|&i| i != member)
        .map(|i| ensemble.member(i).connect_string())
        .collect();
    let c = client(&others.join(",")).await;
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    z.wait_stdout("NodeCreated").await;

    ensemble.kill_async(member).await.unwrap();
    z.wait_stderr("state SUSPENDED").await;
    let reconnected = z.wait_stderr_n("state CONNECTED session=", 2).await;
    assert!(
        !reconnected.contains(&server),
        "moved to another member: {reconnected}"
    );
    // zk's own line: the watch is armed again
    z.wait_stderr_line_n("state CONNECTED", 2).await;
    ensemble
        .wait_for_quorum_async(Duration::from_secs(60))
        .await
        .unwrap();
    let c = reconnect_if_needed(c, &others.join(",")).await;
    set_until_ok(&c, &p).await;
    assert_eq!(z.exit().await, 0, "{:?}", z.stderr());
    assert_eq!(
        z.stdout(),
        vec![format!("NodeCreated {p}"), format!("NodeDataChanged {p}")]
    );
}

async fn reconnect_if_needed(c: Client, hosts: &str) -> Client {
    if c.state() == zk_core::State::Connected {
        c
    } else {
        client(hosts).await
    }
}

/// One data change, retried through the connection loss a failover may cause.
async fn set_until_ok(c: &Client, p: &str) {
    for _ in 0..60 {
        match c
            .with_timeout(Duration::from_secs(5))
            .set_data(p, b"after", None)
            .await
        {
            Ok(_) => return,
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(e) => panic!("set {p}: {e}"),
        }
    }
    panic!("set {p}: no success within a minute");
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_is_set_again_after_session_expiry() {
    let server = zk_testkit::shared_server();
    let h = server.connect_string();
    let c = client(&h).await;
    let p = unique("watch-expiry");
    let dir = TempDir::new();
    let file = dir.join("session");
    let mut cmd = zk(&["--hosts", &h, "watch", &p, "--count", "2"]);
    cmd.env("ZK_DEBUG_SESSION_FILE", &file);
    let mut z = Proc::spawn(cmd);
    z.wait_stderr("state CONNECTED").await;
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    z.wait_stdout("NodeCreated").await;
    let (sid, password) = debug_session(&file).await;

    std::fs::remove_file(&file).unwrap();
    zk_testkit::expire_session(server.addr(), sid, &password)
        .await
        .expect("expire");
    z.wait_stderr("state LOST").await;
    z.wait_stderr_n("state CONNECTED", 2).await;
    let (new_sid, _) = debug_session(&file).await;
    assert_ne!(new_sid, sid, "a new session");

    c.delete(&p, None).await.unwrap();
    assert_eq!(z.exit().await, 0);
    assert_eq!(
        z.stdout(),
        vec![format!("NodeCreated {p}"), format!("NodeDeleted {p}")]
    );
}

/// SIGINT ends `zk watch` (exit 0) at any point once it catches signals, also while the watch
/// is being set: the addWatch held in a proxy, Ctrl-C waited for that request, which ended
/// only when the connection was declared dead (two thirds of the session timeout) with exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn sigint_while_the_watch_is_being_set_exits_0() {
    let server = zk_testkit::shared_server();
    let proxy = zk_testkit::FaultProxy::start(server.addr()).await.unwrap();
    const ADD_WATCH: i32 = 106;
    proxy.hold_request(&[ADD_WATCH]);
    let p = unique("watch-sigint");
    let mut z = Proc::start(
        &proxy.connect_string(),
        &["watch", &p, "--session-timeout", "30s"],
    );
    eventually("the addWatch is held in the proxy", || async {
        proxy.held_requests() >= 1
    })
    .await;
    z.signal(libc::SIGINT);
    assert_eq!(z.exit().await, 0, "{}", z.stderr().join("\n"));
    proxy.release_held();
}
