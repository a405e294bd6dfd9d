//! Watches against a real server: each one-shot kind fires exactly once with the right event;
//! persistent and recursive watches fire for every change; chroot paths; ordering; pipelining.

mod common;

use common::{bounded, shared};
use futures::{FutureExt, StreamExt};
use std::time::Duration;
use zk_core::{AddWatchMode, CreateMode, CreateOptions, EventType, Op, WatchedEvent};

fn ev(t: EventType, p: &str) -> WatchedEvent {
    WatchedEvent::new(t, p)
}

/// A one-shot watch must not fire again: after its event, a further change leaves it pending.
async fn assert_fires_once(w: zk_core::OneshotWatcher, expected: WatchedEvent) {
    let got = bounded("watch", w).await.unwrap();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_shot_watches_fire_once_with_the_right_event() {
    let c = shared("oneshot").await;
    // exists on a missing node: fires on creation
    let (st, w_exist) = c.exists_watch("/n").await.unwrap();
    assert!(st.is_none());
    c.create("/n", b"", CreateMode::Persistent).await.unwrap();
    assert_fires_once(w_exist, ev(EventType::NodeCreated, "/n")).await;

    // exists on an existing node: data change
    let (_, w_exists_data) = c.exists_watch("/n").await.unwrap();
    // getData: data change
    let (_, _, w_data) = c.get_data_watch("/n").await.unwrap();
    // getChildren: child change, not data change
    let (_, w_child) = c.get_children_watch("/n").await.unwrap();
    let (_, _, w_child2) = c.get_children_with_stat_watch("/n").await.unwrap();
    c.set_data("/n", b"1", None).await.unwrap();
    assert_fires_once(w_exists_data, ev(EventType::NodeDataChanged, "/n")).await;
    assert_fires_once(w_data, ev(EventType::NodeDataChanged, "/n")).await;
    let mut w_child = w_child;
    assert!(
        (&mut w_child).now_or_never().is_none(),
        "child watch fired on a data change"
    );
    c.create("/n/k", b"", CreateMode::Persistent).await.unwrap();
    assert_fires_once(w_child, ev(EventType::NodeChildrenChanged, "/n")).await;
    assert_fires_once(w_child2, ev(EventType::NodeChildrenChanged, "/n")).await;

    // deletion fires data and child watches
    let (_, _, w_data) = c.get_data_watch("/n/k").await.unwrap();
    let (_, w_child) = c.get_children_watch("/n/k").await.unwrap();
    c.delete("/n/k", None).await.unwrap();
    assert_fires_once(w_data, ev(EventType::NodeDeleted, "/n/k")).await;
    assert_fires_once(w_child, ev(EventType::NodeDeleted, "/n/k")).await;

    // fired once: a second change does not reach an already fired watch's replacement twice
    let (_, _, w) = c.get_data_watch("/n").await.unwrap();
    c.set_data("/n", b"2", None).await.unwrap();
    c.set_data("/n", b"3", None).await.unwrap();
    assert_fires_once(w, ev(EventType::NodeDataChanged, "/n")).await;

    // no watch is left by a failed getData
    assert!(c.get_data_watch("/missing").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_watch_fires_for_every_change() {
    let c = shared("persistent").await;
    c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    let mut w = c.add_watch("/p", AddWatchMode::Persistent).await.unwrap();
    for i in 0..5 {
        c.set_data("/p", format!("{i}").as_bytes(), None)
            .await
            .unwrap();
    }
    c.create("/p/c", b"", CreateMode::Persistent).await.unwrap();
    c.create("/p/c/deeper", b"", CreateMode::Persistent)
        .await
        .unwrap(); // not ours: not /p's child
    c.delete("/p/c/deeper", None).await.unwrap();
    c.delete("/p/c", None).await.unwrap();
    c.delete("/p", None).await.unwrap();
    c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..9 {
        got.push(bounded("persistent", w.next()).await.unwrap().unwrap());
    }
    let mut expected = vec![ev(EventType::NodeDataChanged, "/p"); 5];
    expected.push(ev(EventType::NodeChildrenChanged, "/p"));
    expected.push(ev(EventType::NodeChildrenChanged, "/p"));
    expected.push(ev(EventType::NodeDeleted, "/p"));
    expected.push(ev(EventType::NodeCreated, "/p"));
    assert_eq!(got, expected);
    // nothing else (a round trip later, every event of those changes has arrived)
    c.sync("/").await.unwrap();
    assert!(w.next().now_or_never().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn recursive_watch_sees_the_whole_subtree() {
    let c = shared("recursive").await;
    c.create("/r", b"", CreateMode::Persistent).await.unwrap();
    let mut w = c
        .add_watch("/r", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    c.create("/r/a", b"", CreateMode::Persistent).await.unwrap();
    c.create("/r/a/b", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.set_data("/r/a/b", b"x", None).await.unwrap();
    c.delete("/r/a/b", None).await.unwrap();
    c.create("/elsewhere", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.set_data("/r", b"y", None).await.unwrap();
    let expected = vec![
        ev(EventType::NodeCreated, "/r/a"),
        ev(EventType::NodeCreated, "/r/a/b"),
        ev(EventType::NodeDataChanged, "/r/a/b"),
        ev(EventType::NodeDeleted, "/r/a/b"),
        ev(EventType::NodeDataChanged, "/r"),
    ];
    for e in expected {
        assert_eq!(bounded("recursive", w.next()).await.unwrap().unwrap(), e);
    }
    // no NodeChildrenChanged ever, nothing from outside the subtree
    assert!(w.next().now_or_never().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn chroot_applies_to_watch_paths() {
    let server = zk_testkit::shared_server();
    let root = common::unique_root("chrootw");
    let c = common::chroot_client(&server.connect_string(), &root).await;
    let raw = zk_core::Client::connect(&server.connect_string())
        .await
        .unwrap();
    let (_, w) = c.exists_watch("/x").await.unwrap();
    let mut pw = c
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    raw.create(&format!("{root}/x"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        bounded("w", w).await.unwrap(),
        ev(EventType::NodeCreated, "/x")
    );
    assert_eq!(
        bounded("pw", pw.next()).await.unwrap().unwrap(),
        ev(EventType::NodeCreated, "/x")
    );
    assert_eq!(
        c.create("/y", b"", CreateMode::Persistent).await.unwrap(),
        "/y"
    );
    assert!(raw.exists(&format!("{root}/y")).await.unwrap().is_some());
    assert_eq!(c.chroot(), Some(root.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_event_comes_before_the_reply_that_follows_the_change() {
    // ZooKeeper's ordering promise: a client sees the watch event for a change before it sees
    // the new data.
    let c = shared("order").await;
    let other = shared_other(&c).await;
    c.create("/o", b"0", CreateMode::Persistent).await.unwrap();
    for i in 1..=20 {
        let (_, _, mut w) = c.get_data_watch("/o").await.unwrap();
        other
            .set_data("/o", format!("{i}").as_bytes(), None)
            .await
            .unwrap();
        // poll until we read the new value; by then the watch must have fired
        loop {
            let (d, _) = c.get_data("/o").await.unwrap();
            if d == format!("{i}").as_bytes() {
                break;
            }
        }
        assert!(
            (&mut w).now_or_never().is_some(),
            "read the new data before the watch event (round {i})"
        );
    }
}

async fn shared_other(c: &zk_core::Client) -> zk_core::Client {
    let server = zk_testkit::shared_server();
    zk_core::Client::connect(&format!(
        "{}{}",
        server.connect_string(),
        c.chroot().unwrap()
    ))
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn thousand_concurrent_requests_each_get_their_own_answer_in_order() {
    let c = shared("pipeline").await;
    // issued in order on one connection (join_all polls them in order, so they are sent in
    // order); each create's answer is its own path, and the server applied them in that order
    let futs: Vec<_> = (0..1000)
        .map(|i| {
            let c = c.clone();
            async move {
                c.create_with(
                    &format!("/n{i:04}"),
                    format!("{i}").as_bytes(),
                    &CreateOptions::new(CreateMode::Persistent),
                )
                .await
            }
        })
        .collect();
    let results = bounded("1000 creates", futures::future::join_all(futs)).await;
    let mut last = 0;
    for (i, r) in results.into_iter().enumerate() {
        let (path, stat) = r.unwrap();
        assert_eq!(path, format!("/n{i:04}"));
        assert!(stat.czxid > last, "create {i} applied out of order");
        last = stat.czxid;
    }
    // and 1000 mixed reads, each with its own data
    let futs: Vec<_> = (0..1000)
        .map(|i| {
            let c = c.clone();
            async move { c.get_data(&format!("/n{i:04}")).await }
        })
        .collect();
    for (i, r) in futures::future::join_all(futs)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.unwrap().0, format!("{i}").as_bytes());
    }
    assert_eq!(c.get_all_children_number("/").await.unwrap(), 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn fencing_check_in_multi() {
    // the primitive the recipes' fencing rests on: a write conditional on a node we own
    let c = shared("fence").await;
    let other = shared_other(&c).await;
    let me = c
        .create("/lock-", b"", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    c.create("/counter", b"0", CreateMode::Persistent)
        .await
        .unwrap();
    c.multi(vec![
        Op::check(&me, None),
        Op::set_data("/counter", b"1".to_vec(), None),
    ])
    .await
    .unwrap();
    other.delete(&me, None).await.unwrap();
    let r = c
        .multi(vec![
            Op::check(&me, None),
            Op::set_data("/counter", b"2".to_vec(), None),
        ])
        .await;
    assert!(matches!(
        r,
        Err(zk_core::Error::TransactionFailed { index: 0, .. })
    ));
    assert_eq!(c.get_data("/counter").await.unwrap().0, b"1");
    let _ = Duration::ZERO;
}
