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
