//! PatientChildrenWatch against a real ZooKeeper: a report only after the children were stable
//! for the boundary, one total deadline, a missing node, the change future, a disconnect and
//! a session expiry.

mod common;

use common::{bounded, unique, wait_state};
use futures::FutureExt;
use std::time::Duration;
use tokio::time::Instant;
use zk_core::{CreateMode, Error, State};
use zk_recipes::PatientChildrenWatch;
use zk_testkit::{expire_session, shared_server, FaultProxy};

fn names(n: &[&str]) -> Option<Vec<String>> {
    Some(n.iter().map(|s| s.to_string()).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn patient_children_watch_reports_the_children_once_stable_for_the_boundary() {
    let c = common::shared_client().await;
    let p = unique("patient");
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    c.create(&format!("{p}/first"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    let boundary = Duration::from_secs(2);
    let watch = PatientChildrenWatch::new(&c, &p, boundary);
    let waiter = tokio::spawn(async move {
        let r = watch.wait().await;
        (r, Instant::now())
    });
    // ten changes 100 ms apart: none of the lists in between lasts the boundary
    let c2 = c.clone();
    let p2 = p.clone();
    let writer = tokio::spawn(async move {
        let mut last_start = Instant::now();
        for i in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            last_start = Instant::now();
            c2.create(&format!("{p2}/k{i}"), b"", CreateMode::Persistent)
                .await
                .unwrap();
        }
        last_start
    });
    let last_write = bounded("writer", writer).await.unwrap();
    let (r, reported_at) = bounded("report", waiter).await.unwrap();
    let (children, changed) = r.unwrap();
    let mut want = vec!["first".to_owned()];
    want.extend((0..10).map(|i| format!("k{i}")));
    want.sort();
    assert_eq!(
        children,
        Some(want),
        "the list after the last change (a list in between would need a 2 s writer stall)"
    );
    assert!(
        reported_at >= last_write + boundary,
        "reported {:?} after the last write started, before the boundary",
        reported_at - last_write
    );

    // the change future: pending while nothing changes, resolved by the next change
    let mut changed = Box::pin(changed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        (&mut changed).now_or_never().is_none(),
        "nothing changed yet"
    );
    c.delete(&format!("{p}/k3"), None).await.unwrap();
    bounded("changed", changed).await.unwrap();
    c.delete_recursive(&p).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn patient_children_watch_deadline_passes_as_ok_none_and_a_missing_node_is_none() {
    let c = common::shared_client().await;
    let p = unique("patient-missing");
    // a boundary longer than the whole deadline: never stable in time
    let slow = PatientChildrenWatch::new(&c, &p, Duration::from_secs(5));
    let start = Instant::now();
    let r = slow.wait_timeout(Duration::from_millis(700)).await.unwrap();
    assert!(r.is_none(), "Ok(None) at the deadline");
    assert!(start.elapsed() >= Duration::from_millis(700));

    // a node that stays missing is stable too: None, and its creation is the change
    let watch = PatientChildrenWatch::new(&c, &p, Duration::from_millis(300));
    let (children, changed) = bounded("missing", watch.wait_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("stable within 30 s");
    assert_eq!(children, None);
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    bounded("created", changed).await.unwrap();
    let (children, _) = bounded("created list", watch.wait()).await.unwrap();
    assert_eq!(children, names(&[]));
    // a data change is not a children change
    let (_, changed) = bounded("again", watch.wait()).await.unwrap();
    let mut changed = Box::pin(changed);
    c.set_data(&p, b"x", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        (&mut changed).now_or_never().is_none(),
        "data is not children"
    );
    c.delete(&p, None).await.unwrap();
    bounded("deleted", changed).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn patient_children_watch_starts_over_after_a_disconnect_and_sees_what_changed() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let p = unique("patient-reset");
    direct
        .create(&p, b"", CreateMode::Persistent)
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let boundary = Duration::from_millis(1500);
    let watch = PatientChildrenWatch::new(&c, &p, boundary);
    let waiter = tokio::spawn(async move { (watch.wait().await, Instant::now()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // cut off; a child appears meanwhile
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    direct
        .create(&format!("{p}/while-away"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.reject_new(false);
    wait_state(&c, State::Connected).await;
    let back = Instant::now();
    let (r, reported_at) = bounded("report", waiter).await.unwrap();
    let (children, _) = r.unwrap();
    assert_eq!(
        children,
        names(&["while-away"]),
        "the change made while away"
    );
    assert!(
        reported_at + Duration::from_millis(200) >= back + boundary,
        "the wait started over after the reconnect"
    );
    direct.delete_recursive(&p).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn patient_children_watch_change_future_says_session_expired_when_the_watch_is_lost() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let p = unique("patient-expiry");
    direct
        .create(&p, b"", CreateMode::Persistent)
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let watch = PatientChildrenWatch::new(&c, &p, Duration::from_millis(200));
    let (children, changed) = bounded("stable", watch.wait()).await.unwrap();
    assert_eq!(children, names(&[]));
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    let (sid, pw) = c.session_credentials();
    expire_session(server.addr(), sid, &pw).await.unwrap();
    proxy.reject_new(false);
    assert!(matches!(
        bounded("changed", changed).await,
        Err(Error::SessionExpired)
    ));
    // and the watch works in the new session
    direct
        .create(&format!("{p}/new"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    let (children, _) = bounded("new session", watch.wait()).await.unwrap();
    assert_eq!(children, names(&["new"]));
    direct.delete_recursive(&p).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_patient_children_watch_reports_what_kazoos_reports() {
    use tokio::io::AsyncBufReadExt;
    let server = shared_server();
    let c = common::shared_client().await;
    let p = unique("patient-interop");
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    let boundary = Duration::from_secs(2);
    let mut kazoo = common::python(
        "tree_cache.py",
        &[&server.connect_string(), "patient", &p, "2.0"],
    );
    let mut lines = tokio::io::BufReader::new(kazoo.stdout.take().unwrap()).lines();
    let started = bounded("kazoo started", lines.next_line()).await.unwrap();
    assert_eq!(started.as_deref(), Some("STARTED"));
    let watch = PatientChildrenWatch::new(&c, &p, boundary);
    let ours = tokio::spawn(async move { watch.wait().await });
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.create(&format!("{p}/k{i}"), b"", CreateMode::Persistent)
            .await
            .unwrap();
    }
    let theirs = bounded("kazoo reports", lines.next_line())
        .await
        .unwrap()
        .expect("a STABLE line");
    let (ours, _) = bounded("ours", ours).await.unwrap().unwrap();
    let want: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    assert_eq!(theirs, format!("STABLE {}", want.join(",")));
    assert_eq!(ours, Some(want));
    c.delete_recursive(&p).await.unwrap();
}
