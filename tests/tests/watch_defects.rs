//! Regression tests for the watch defects of issue 8, against the real server. Each test
//! name starts with the defect number (d3: a one-shot watch kills a persistent one, d4:
//! remove_watches half-removes a persistent watch, d10: dropped one-shot watchers accumulate).

mod common;

use common::{bounded, shared, wait_state};
use futures::{FutureExt, StreamExt};
use std::time::Duration;
use zk_core::{
    AddWatchMode, Client, CreateMode, Error, EventType, OneshotWatcher, PersistentWatcher, State,
    WatchedEvent, WatcherType,
};

fn ev(t: EventType, p: &str) -> WatchedEvent {
    WatchedEvent::new(t, p)
}

#[derive(Debug, Clone, Copy)]
enum OneShot {
    Data,
    Exists,
    Children,
}

#[derive(Debug, Clone, Copy)]
enum Order {
    /// add_watch answered, then the one-shot read.
    PersistentFirst,
    /// the one-shot read answered, then add_watch.
    OneShotFirst,
    /// both in flight at once (add_watch sent first).
    Pipelined,
}

async fn one_shot(c: &Client, kind: OneShot, path: &str) -> OneshotWatcher {
    match kind {
        OneShot::Data => c.get_data_watch(path).await.unwrap().2,
        OneShot::Exists => c.exists_watch(path).await.unwrap().1,
        OneShot::Children => c.get_children_watch(path).await.unwrap().1,
    }
}

/// Every event the stream holds once a round trip made after the changes is answered (the
/// server sends a change's notification before the reply to any later request).
async fn drain(c: &Client, s: &mut PersistentWatcher) -> Vec<WatchedEvent> {
    c.exists("/").await.unwrap();
    let mut v = Vec::new();
    while let Some(Some(e)) = s.next().now_or_never() {
        v.push(e.unwrap());
    }
    v
}

/// Three data changes and three child creations on `/p`, and what a stream of `mode` on `/p`
/// must see of them.
async fn six_changes(c: &Client, mode: AddWatchMode, round: u32) -> Vec<WatchedEvent> {
    let mut expected = Vec::new();
    for i in 0..3 {
        c.set_data("/p", format!("{round}-{i}").as_bytes(), None)
            .await
            .unwrap();
        expected.push(ev(EventType::NodeDataChanged, "/p"));
    }
    for i in 0..3 {
        let child = format!("/p/c{round}-{i}");
        c.create(&child, b"", CreateMode::Persistent).await.unwrap();
        expected.push(match mode {
            AddWatchMode::PersistentRecursive => ev(EventType::NodeCreated, &child),
            _ => ev(EventType::NodeChildrenChanged, "/p"),
        });
    }
    expected
}

async fn persistent_survives_one_shot(mode: AddWatchMode, kind: OneShot, order: Order) {
    let c = shared("d3").await;
    c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    let (mut s, w) = match order {
        Order::PersistentFirst => {
            let s = c.add_watch("/p", mode).await.unwrap();
            (s, one_shot(&c, kind, "/p").await)
        }
        Order::OneShotFirst => {
            let w = one_shot(&c, kind, "/p").await;
            (c.add_watch("/p", mode).await.unwrap(), w)
        }
        Order::Pipelined => {
            let (s, w) = tokio::join!(c.add_watch("/p", mode), one_shot(&c, kind, "/p"));
            (s.unwrap(), w)
        }
    };
    let what = format!("{mode:?} watch next to a {kind:?} one-shot ({order:?})");
    let expected = six_changes(&c, mode, 1).await;
    assert_eq!(drain(&c, &mut s).await, expected, "{what}: first round");
    let fired = bounded(&format!("{what}: the one-shot watch"), w)
        .await
        .unwrap();
    let want = match kind {
        OneShot::Children => ev(EventType::NodeChildrenChanged, "/p"),
        _ => ev(EventType::NodeDataChanged, "/p"),
    };
    assert_eq!(fired, want, "{what}: the one-shot");
    // after the one-shot fired, the persistent watch is still whole
    let expected = six_changes(&c, mode, 2).await;
    assert_eq!(drain(&c, &mut s).await, expected, "{what}: second round");
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn d3_one_shot_watch_does_not_kill_a_persistent_watch_on_the_same_path() {
    for kind in [OneShot::Data, OneShot::Exists, OneShot::Children] {
        for order in [
            Order::PersistentFirst,
            Order::OneShotFirst,
            Order::Pipelined,
        ] {
            persistent_survives_one_shot(AddWatchMode::Persistent, kind, order).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn d3_one_shot_watch_does_not_kill_a_recursive_watch_on_the_same_path() {
    for kind in [OneShot::Data, OneShot::Exists, OneShot::Children] {
        for order in [
            Order::PersistentFirst,
            Order::OneShotFirst,
            Order::Pipelined,
        ] {
            persistent_survives_one_shot(AddWatchMode::PersistentRecursive, kind, order).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn d3_exists_watch_on_a_missing_node_next_to_persistent_watches_fires_on_creation() {
    for mode in [AddWatchMode::Persistent, AddWatchMode::PersistentRecursive] {
        let c = shared("d3missing").await;
        let mut s = c.add_watch("/m", mode).await.unwrap();
        let (stat, w) = c.exists_watch("/m").await.unwrap();
        assert!(stat.is_none());
        c.create("/m", b"", CreateMode::Persistent).await.unwrap();
        assert_eq!(
            bounded("exists watch", w).await.unwrap(),
            ev(EventType::NodeCreated, "/m")
        );
        for i in 0..3 {
            c.set_data("/m", format!("{i}").as_bytes(), None)
                .await
                .unwrap();
        }
        let mut expected = vec![ev(EventType::NodeCreated, "/m")];
        expected.extend((0..3).map(|_| ev(EventType::NodeDataChanged, "/m")));
        assert_eq!(drain(&c, &mut s).await, expected, "{mode:?}");
        c.close().await.unwrap();
    }
}

/// Waits for the client to drop its connection and re-attach to the same session.
async fn reconnect_through(c: &Client, proxy: &zk_testkit::FaultProxy) {
    let id = c.session_id();
    let mut states = c.state_stream();
    proxy.reset();
    loop {
        let st = bounded(
            "SUSPENDED after the proxy cut the connection",
            states.next(),
        )
        .await
        .expect("state stream ended");
        if st.state == State::Suspended {
            break;
        }
    }
    wait_state(c, State::Connected, Duration::from_secs(30)).await;
    assert_eq!(c.session_id(), id, "the session changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn d3_persistent_watches_stay_whole_after_reconnect_with_one_shots_on_the_same_path() {
    let server = zk_testkit::shared_server();
    let proxy = zk_testkit::FaultProxy::start(server.addr()).await.unwrap();
    let root = common::unique_root("d3reconnect");
    let c = common::chroot_client(&proxy.connect_string(), &root).await;
    for mode in [AddWatchMode::Persistent, AddWatchMode::PersistentRecursive] {
        c.create("/p", b"", CreateMode::Persistent).await.unwrap();
        let mut s = c.add_watch("/p", mode).await.unwrap();
        let wd = one_shot(&c, OneShot::Data, "/p").await;
        let we = one_shot(&c, OneShot::Exists, "/p").await;
        let wc = one_shot(&c, OneShot::Children, "/p").await;
        reconnect_through(&c, &proxy).await;
        let expected = six_changes(&c, mode, 1).await;
        assert_eq!(drain(&c, &mut s).await, expected, "{mode:?}: first round");
        for (name, w, t) in [
            ("data", wd, EventType::NodeDataChanged),
            ("exists", we, EventType::NodeDataChanged),
            ("children", wc, EventType::NodeChildrenChanged),
        ] {
            assert_eq!(bounded(name, w).await.unwrap(), ev(t, "/p"), "{mode:?}");
        }
        let expected = six_changes(&c, mode, 2).await;
        assert_eq!(drain(&c, &mut s).await, expected, "{mode:?}: second round");
        c.remove_watches("/p", WatcherType::Any).await.unwrap();
        c.delete_recursive("/p").await.unwrap();
    }
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn d3_persistent_and_recursive_watches_on_the_same_path_both_stay_whole() {
    let server = zk_testkit::shared_server();
    let proxy = zk_testkit::FaultProxy::start(server.addr()).await.unwrap();
    let root = common::unique_root("d3both");
    let c = common::chroot_client(&proxy.connect_string(), &root).await;
    for recursive_first in [false, true] {
        c.create("/p", b"", CreateMode::Persistent).await.unwrap();
        let (mut sp, mut sr) = if recursive_first {
            let sr = c.add_watch("/p", AddWatchMode::PersistentRecursive);
            let sr = sr.await.unwrap();
            (
                c.add_watch("/p", AddWatchMode::Persistent).await.unwrap(),
                sr,
            )
        } else {
            let sp = c.add_watch("/p", AddWatchMode::Persistent).await.unwrap();
            let sr = c.add_watch("/p", AddWatchMode::PersistentRecursive);
            (sp, sr.await.unwrap())
        };
        for round in 1..=2 {
            let what = format!("recursive first: {recursive_first}, round {round}");
            let expected_p = six_changes(&c, AddWatchMode::Persistent, round).await;
            let grandchild = format!("/p/c{round}-0/g");
            c.create(&grandchild, b"", CreateMode::Persistent)
                .await
                .unwrap();
            let mut expected_r = Vec::new();
            for (i, e) in expected_p.iter().enumerate() {
                expected_r.push(match e.event_type {
                    EventType::NodeChildrenChanged => {
                        ev(EventType::NodeCreated, &format!("/p/c{round}-{}", i - 3))
                    }
                    _ => e.clone(),
                });
            }
            expected_r.push(ev(EventType::NodeCreated, &grandchild));
            assert_eq!(drain(&c, &mut sp).await, expected_p, "persistent, {what}");
            assert_eq!(drain(&c, &mut sr).await, expected_r, "recursive, {what}");
            if round == 1 {
                reconnect_through(&c, &proxy).await;
            }
        }
        c.remove_watches("/p", WatcherType::Any).await.unwrap();
        c.delete_recursive("/p").await.unwrap();
    }
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn d4_remove_watches_of_one_kind_never_half_removes_a_persistent_watch() {
    let cases = [
        (AddWatchMode::Persistent, WatcherType::Data, true),
        (AddWatchMode::Persistent, WatcherType::Children, true),
        (AddWatchMode::PersistentRecursive, WatcherType::Data, true),
        // the server drops the recursive watch's child-table entry, which delivers nothing
        // (a recursive watch gets no NodeChildrenChanged): nothing to cripple
        (
            AddWatchMode::PersistentRecursive,
            WatcherType::Children,
            false,
        ),
    ];
    for (mode, kind, refused) in cases {
        let c = shared("d4").await;
        c.create("/p", b"", CreateMode::Persistent).await.unwrap();
        let mut s = c.add_watch("/p", mode).await.unwrap();
        let (_, _, w) = c.get_data_watch("/p").await.unwrap();
        let r = c.remove_watches("/p", kind).await;
        if refused {
            assert!(
                matches!(r, Err(Error::InvalidArgument(_))),
                "remove_watches({kind:?}) next to a {mode:?} watch: {r:?}"
            );
        } else {
            assert!(r.is_ok(), "{r:?}");
        }
        let expected = six_changes(&c, mode, 1).await;
        assert_eq!(
            drain(&c, &mut s).await,
            expected,
            "{mode:?} after remove_watches({kind:?})"
        );
        assert_eq!(
            bounded("one-shot", w).await.unwrap(),
            ev(EventType::NodeDataChanged, "/p")
        );
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn d4_remove_watches_any_ends_the_persistent_stream_cleanly() {
    for mode in [AddWatchMode::Persistent, AddWatchMode::PersistentRecursive] {
        let c = shared("d4any").await;
        c.create("/p", b"", CreateMode::Persistent).await.unwrap();
        let mut s = c.add_watch("/p", mode).await.unwrap();
        let (_, _, w) = c.get_data_watch("/p").await.unwrap();
        c.remove_watches("/p", WatcherType::Any).await.unwrap();
        assert_eq!(
            bounded("removal event", s.next()).await.unwrap().unwrap(),
            ev(EventType::PersistentWatchRemoved, "/p")
        );
        let end = bounded("end of the stream", s.next()).await;
        assert!(end.is_none(), "{mode:?}: after the removal event: {end:?}");
        assert_eq!(c.state(), State::Connected);
        assert_eq!(
            bounded("one-shot", w).await.unwrap(),
            ev(EventType::DataWatchRemoved, "/p")
        );
        // nothing is left on the server
        assert!(matches!(
            c.remove_watches("/p", WatcherType::Any).await,
            Err(Error::NoWatcher)
        ));
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn suspected_a_dropped_persistent_watcher_releases_its_server_side_watch() {
    let c = shared("dropped").await;
    c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    for mode in [AddWatchMode::Persistent, AddWatchMode::PersistentRecursive] {
        // alone: dropping it removes the server-side watch (a round trip later it is gone)
        drop(c.add_watch("/p", mode).await.unwrap());
        c.exists("/").await.unwrap();
        let r = c.remove_watches("/p", WatcherType::Any).await;
        assert!(matches!(r, Err(Error::NoWatcher)), "{mode:?}: {r:?}");

        // next to another stream on the path: that one keeps everything
        let mut kept = c.add_watch("/p", mode).await.unwrap();
        drop(c.add_watch("/p", mode).await.unwrap());
        let expected = six_changes(&c, mode, 1).await;
        assert_eq!(
            drain(&c, &mut kept).await,
            expected,
            "{mode:?}: kept stream"
        );
        // next to a one-shot the client completes from it: kept until that one fired
        let (_, _, w) = c.get_data_watch("/p").await.unwrap();
        drop(kept);
        c.set_data("/p", b"x", None).await.unwrap();
        assert_eq!(
            bounded("one-shot next to a dropped stream", w)
                .await
                .unwrap(),
            ev(EventType::NodeDataChanged, "/p")
        );
        c.remove_watches("/p", WatcherType::Any).await.unwrap();
        c.delete_recursive("/p").await.unwrap();
        c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    }
    c.close().await.unwrap();

    // a live stream does not keep the session open once every client handle is dropped
    let c = shared("dropped-owner").await;
    c.create("/e", b"", CreateMode::Ephemeral).await.unwrap();
    let stream = c.add_watch("/e", AddWatchMode::Persistent).await.unwrap();
    let server = zk_testkit::shared_server();
    let observer = Client::connect(&format!(
        "{}{}",
        server.connect_string(),
        c.chroot().unwrap()
    ))
    .await
    .unwrap();
    let (_, gone) = observer.exists_watch("/e").await.unwrap();
    drop(c);
    assert_eq!(
        bounded(
            "the ephemeral of a session whose handles are all dropped",
            gone
        )
        .await
        .unwrap(),
        ev(EventType::NodeDeleted, "/e")
    );
    drop(stream);
    observer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn d10_dropped_one_shot_watchers_do_not_accumulate() {
    let c = shared("d10").await;
    c.create("/n", b"", CreateMode::Persistent).await.unwrap();
    let mut live = Vec::new();
    for _ in 0..100 {
        live.push(c.get_data_watch("/n").await.unwrap().2);
    }
    for round in 0..50 {
        let reads = (0..100).map(|_| c.get_data_watch("/n"));
        for r in futures::future::join_all(reads).await {
            drop(r.unwrap());
        }
        let n = c.registered_watchers();
        assert!(
            n <= 100 + 2 * 1024 + 100,
            "{n} watchers registered after {} dropped ones",
            (round + 1) * 100
        );
    }
    c.set_data("/n", b"x", None).await.unwrap();
    for w in live {
        assert_eq!(
            bounded("a watcher that was kept", w).await.unwrap(),
            ev(EventType::NodeDataChanged, "/n")
        );
    }
    c.close().await.unwrap();
}
