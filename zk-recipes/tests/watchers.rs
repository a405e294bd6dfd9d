//! DataWatch and ChildrenWatch against a real ZooKeeper: snapshots, changes, missing nodes,
//! reconnects, session expiry, close.

mod common;

use common::{bounded, unique, wait_state};
use futures::{Stream, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;
use zk_core::{CreateMode, Error, State};
use zk_recipes::watchers::{ChildrenWatch, DataWatch};
use zk_testkit::{expire_session, shared_server, FaultProxy};

/// Polls `s` continuously in a task, forwarding every item (so the stream reacts to wake-ups
/// while the test is busy elsewhere).
fn forward<S>(s: S) -> mpsc::UnboundedReceiver<S::Item>
where
    S: Stream + Send + Unpin + 'static,
    S::Item: Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut s = s;
        while let Some(item) = s.next().await {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    rx
}

async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> Option<T> {
    bounded(what, rx.recv()).await
}

type DataItem = zk_core::Result<Option<(Vec<u8>, zk_core::Stat)>>;

/// The data of the next DataWatch item (`None` = node missing).
async fn next_data(rx: &mut mpsc::UnboundedReceiver<DataItem>, what: &str) -> Option<Vec<u8>> {
    recv(rx, what)
        .await
        .unwrap_or_else(|| panic!("{what}: stream ended"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .map(|(d, _)| d)
}

async fn next_children(
    rx: &mut mpsc::UnboundedReceiver<zk_core::Result<Option<Vec<String>>>>,
    what: &str,
) -> Option<Vec<String>> {
    recv(rx, what)
        .await
        .unwrap_or_else(|| panic!("{what}: stream ended"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn names(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

/// Asserts that nothing arrives within `d`.
async fn quiet<T: std::fmt::Debug>(rx: &mut mpsc::UnboundedReceiver<T>, d: Duration) {
    if let Ok(item) = tokio::time::timeout(d, rx.recv()).await {
        panic!("unexpected item {item:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn data_watch_starts_with_the_current_state_and_sees_every_spaced_change() {
    let c = common::shared_client().await;
    let p = unique("dw-changes");
    c.create(&p, b"v0", CreateMode::Persistent).await.unwrap();
    let mut w = DataWatch::new(&c, &p);
    let (d, s) = bounded("first", w.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((d.as_slice(), s.version), (&b"v0"[..], 0));
    for i in 1..=5 {
        let v = format!("v{i}");
        c.set_data(&p, v.as_bytes(), None).await.unwrap();
        let (d, s) = bounded("change", w.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(d, v.as_bytes());
        assert_eq!(s.version, i);
    }
    // same data written again is a change too (new version)
    c.set_data(&p, b"v5", None).await.unwrap();
    let (d, s) = bounded("rewrite", w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((d.as_slice(), s.version), (&b"v5"[..], 6));
}

#[tokio::test(flavor = "multi_thread")]
async fn data_watch_reports_a_missing_node_its_creation_and_deletion() {
    let c = common::shared_client().await;
    let p = unique("dw-missing");
    let mut rx = forward(DataWatch::new(&c, &p));
    assert_eq!(next_data(&mut rx, "missing").await, None);
    c.create(&p, b"born", CreateMode::Persistent).await.unwrap();
    assert_eq!(
        next_data(&mut rx, "created").await.as_deref(),
        Some(&b"born"[..])
    );
    c.delete(&p, None).await.unwrap();
    assert_eq!(next_data(&mut rx, "deleted").await, None);
    // re-created with the same data: a new node, reported again
    c.create(&p, b"born", CreateMode::Persistent).await.unwrap();
    assert_eq!(
        next_data(&mut rx, "re-created").await.as_deref(),
        Some(&b"born"[..])
    );
    c.delete(&p, None).await.unwrap();
    assert_eq!(next_data(&mut rx, "deleted again").await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn children_watch_sees_every_spaced_change_and_waits_for_a_missing_node() {
    let c = common::shared_client().await;
    let p = unique("cw");
    let mut rx = forward(ChildrenWatch::new(&c, &p));
    assert_eq!(next_children(&mut rx, "missing").await, None);
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(next_children(&mut rx, "created").await, names(&[]));
    // created out of order: reported sorted
    for (child, want) in [
        ("b", vec!["b"]),
        ("a", vec!["a", "b"]),
        ("c", vec!["a", "b", "c"]),
    ] {
        c.create(&format!("{p}/{child}"), b"", CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(next_children(&mut rx, child).await, names(&want));
    }
    // a data change of the parent is not a children change
    c.set_data(&p, b"x", None).await.unwrap();
    c.delete(&format!("{p}/a"), None).await.unwrap();
    assert_eq!(next_children(&mut rx, "-a").await, names(&["b", "c"]));
    c.delete(&format!("{p}/b"), None).await.unwrap();
    assert_eq!(next_children(&mut rx, "-b").await, names(&["c"]));
    c.delete(&format!("{p}/c"), None).await.unwrap();
    assert_eq!(next_children(&mut rx, "-c").await, names(&[]));
    c.delete(&p, None).await.unwrap();
    assert_eq!(next_children(&mut rx, "parent deleted").await, None);
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(next_children(&mut rx, "parent back").await, names(&[]));
    c.create(&format!("{p}/z"), b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    assert_eq!(next_children(&mut rx, "+z").await, names(&["z"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_survive_a_disconnect_and_report_what_changed_meanwhile_once() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let p = unique("w-reset");
    direct
        .create(&p, b"v0", CreateMode::Persistent)
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let mut data = forward(DataWatch::new(&c, &p));
    let mut kids = forward(ChildrenWatch::new(&c, &p));
    assert_eq!(
        next_data(&mut data, "first").await.as_deref(),
        Some(&b"v0"[..])
    );
    assert_eq!(next_children(&mut kids, "first").await, names(&[]));

    // changes made while the watcher's client is cut off
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    direct.set_data(&p, b"v1", None).await.unwrap();
    direct
        .create(&format!("{p}/k"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    quiet(&mut data, Duration::from_millis(300)).await;
    proxy.reject_new(false);
    assert_eq!(
        next_data(&mut data, "after reconnect").await.as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(
        next_children(&mut kids, "after reconnect").await,
        names(&["k"])
    );

    // a reconnect without a change: nothing is emitted again
    let mut states = c.state_stream();
    proxy.reset();
    loop {
        let s = bounded("reconnect", states.next()).await.unwrap();
        if s.state == State::Connected {
            break;
        }
    }
    quiet(&mut data, Duration::from_millis(500)).await;
    quiet(&mut kids, Duration::from_millis(1)).await;
    direct.set_data(&p, b"v2", None).await.unwrap();
    assert_eq!(
        next_data(&mut data, "after idle reconnect")
            .await
            .as_deref(),
        Some(&b"v2"[..])
    );
    direct.delete(&format!("{p}/k"), None).await.unwrap();
    assert_eq!(next_children(&mut kids, "-k").await, names(&[]));
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_survive_a_real_session_expiry_by_default() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let p = unique("w-expiry");
    direct
        .create(&p, b"v0", CreateMode::Persistent)
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let old_sid = c.session_id();
    let mut data = forward(DataWatch::new(&c, &p));
    let mut kids = forward(ChildrenWatch::new(&c, &p));
    assert_eq!(
        next_data(&mut data, "first").await.as_deref(),
        Some(&b"v0"[..])
    );
    assert_eq!(next_children(&mut kids, "first").await, names(&[]));

    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    let (sid, pw) = c.session_credentials();
    expire_session(server.addr(), sid, &pw).await.unwrap();
    direct.set_data(&p, b"v1", None).await.unwrap();
    direct
        .create(&format!("{p}/k"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    proxy.reject_new(false);

    // the client learns of the expiry, starts a new session, and the streams go on
    assert_eq!(
        next_data(&mut data, "after expiry").await.as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(
        next_children(&mut kids, "after expiry").await,
        names(&["k"])
    );
    assert_ne!(c.session_id(), old_sid);
    // watches are armed in the new session
    direct.set_data(&p, b"v2", None).await.unwrap();
    assert_eq!(
        next_data(&mut data, "in the new session").await.as_deref(),
        Some(&b"v2"[..])
    );
    direct.delete(&format!("{p}/k"), None).await.unwrap();
    assert_eq!(
        next_children(&mut kids, "in the new session").await,
        names(&[])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_survive_session_loss_the_streams_end_with_session_expired() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let p = unique("w-expiry-end");
    direct
        .create(&p, b"v0", CreateMode::Persistent)
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let mut data = forward(DataWatch::new(&c, &p).survive_session_loss(false));
    let mut kids = forward(ChildrenWatch::new(&c, &p).survive_session_loss(false));
    assert!(next_data(&mut data, "first").await.is_some());
    assert!(next_children(&mut kids, "first").await.is_some());

    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    let (sid, pw) = c.session_credentials();
    expire_session(server.addr(), sid, &pw).await.unwrap();
    direct.set_data(&p, b"v1", None).await.unwrap();
    proxy.reject_new(false);

    assert!(matches!(
        recv(&mut data, "data end").await,
        Some(Err(Error::SessionExpired))
    ));
    assert!(recv(&mut data, "data none").await.is_none());
    assert!(matches!(
        recv(&mut kids, "children end").await,
        Some(Err(Error::SessionExpired))
    ));
    assert!(recv(&mut kids, "children none").await.is_none());
    // the client itself went on with a new session
    wait_state(&c, State::Connected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_end_when_the_client_is_closed() {
    let c = common::shared_client().await;
    let p = unique("w-close");
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    let mut data = forward(DataWatch::new(&c, &p));
    let mut missing = forward(DataWatch::new(&c, &format!("{p}/missing")));
    let mut kids = forward(ChildrenWatch::new(&c, &p));
    assert!(next_data(&mut data, "first").await.is_some());
    assert!(next_data(&mut missing, "first").await.is_none());
    assert!(next_children(&mut kids, "first").await.is_some());
    c.close().await.unwrap();
    assert!(recv(&mut data, "data").await.is_none());
    assert!(recv(&mut missing, "missing").await.is_none());
    assert!(recv(&mut kids, "children").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_path_is_one_error_then_the_end() {
    let c = common::shared_client().await;
    let mut w = DataWatch::new(&c, "no-leading-slash");
    assert!(matches!(
        bounded("bad path", w.next()).await,
        Some(Err(Error::BadPath(_)))
    ));
    assert!(bounded("end", w.next()).await.is_none());
}
