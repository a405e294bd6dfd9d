//! Barrier and DoubleBarrier against a real ZooKeeper: the basics, timeouts, disconnects,
//! server restarts, spurious wake-ups, cancellation at every await point, and interop with
//! kazoo processes on the same paths.

mod common;

use common::{bounded, children, eventually, unique, wait_state, wait_watched};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;
use zk_core::{Client, CreateMode, State};
use zk_recipes::barrier::{Barrier, DoubleBarrier, READY_NODE};
use zk_testkit::{shared_server, FaultProxy};

/// Participant nodes under a double barrier (children other than `ready`), sorted.
async fn members(c: &Client, path: &str) -> Vec<String> {
    children(c, path)
        .await
        .into_iter()
        .filter(|n| n != READY_NODE)
        .collect()
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ------------------------------------------------------------------------------ Barrier

#[tokio::test(flavor = "multi_thread")]
async fn barrier_wait_passes_when_the_barrier_is_removed() {
    let c = common::shared_client().await;
    let other = common::shared_client().await;
    let p = format!("{}/gate", unique("barrier"));
    let b = Barrier::new(&c, &p);
    bounded("absent", b.wait()).await.unwrap();
    b.create().await.unwrap();
    b.create().await.unwrap(); // already up: fine
    assert!(c.exists(&p).await.unwrap().is_some());

    let waiter = tokio::spawn({
        let b = b.clone();
        async move { b.wait().await }
    });
    wait_watched(shared_server().addr(), &p).await;
    assert!(!waiter.is_finished(), "passed while the barrier is up");
    assert!(Barrier::new(&other, &p).remove().await.unwrap());
    bounded("waiter", waiter).await.unwrap().unwrap();
    assert!(!b.remove().await.unwrap(), "nothing left to remove");
}

#[tokio::test(flavor = "multi_thread")]
async fn barrier_wait_times_out_with_none() {
    let c = common::shared_client().await;
    let p = unique("barrier-timeout");
    let b = Barrier::new(&c, &p);
    b.create().await.unwrap();
    let start = Instant::now();
    assert!(b
        .wait_timeout(Duration::from_millis(400))
        .await
        .unwrap()
        .is_none());
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert!(b.wait_until(Instant::now()).await.unwrap().is_none());
    assert!(
        b.try_wait().await.unwrap().is_none(),
        "up: try_wait is None"
    );
    assert!(
        c.exists(&p).await.unwrap().is_some(),
        "waiting changed nothing"
    );
    b.remove().await.unwrap();
    assert!(
        b.try_wait().await.unwrap().is_some(),
        "down: try_wait is Some"
    );
    // a generous bound: the barrier is down, so this returns after one round trip
    assert!(b
        .wait_timeout(Duration::from_secs(30))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn barrier_wait_sees_a_removal_made_while_it_was_disconnected() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let p = unique("barrier-disconnect");
    Barrier::new(&direct, &p).create().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let waiter = tokio::spawn({
        let b = Barrier::new(&c, &p);
        async move { b.wait().await }
    });
    wait_watched(server.addr(), &p).await;

    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    assert!(Barrier::new(&direct, &p).remove().await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "cannot know while cut off");
    proxy.reject_new(false);
    bounded("waiter after reconnect", waiter)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn barrier_wait_goes_on_through_a_session_expiry() {
    // the expiry ends every watch of the session: only looking again in the new session
    // can see that the barrier is gone
    let server = shared_server();
    let direct = common::shared_client().await;
    let p = unique("barrier-expiry");
    Barrier::new(&direct, &p).create().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let waiter = tokio::spawn({
        let b = Barrier::new(&c, &p);
        async move { b.wait().await }
    });
    wait_watched(server.addr(), &p).await;
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    let (sid, pw) = c.session_credentials();
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .unwrap();
    assert!(Barrier::new(&direct, &p).remove().await.unwrap());
    proxy.reject_new(false);
    bounded("waiter after expiry", waiter)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(c.session_id(), sid);
}

#[tokio::test]
async fn barrier_wait_survives_a_server_restart() {
    let server = common::restartable_server().await;
    let c = common::long_session_client(&server.connect_string()).await;
    let p = unique("barrier-restart");
    let b = Barrier::new(&c, &p);
    b.create().await.unwrap();
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { b.wait().await }
    });
    wait_watched(server.addr(), &p).await;
    server.restart_async().await.unwrap();
    assert!(!waiter.is_finished());
    let other = common::client(&server.connect_string()).await;
    assert!(Barrier::new(&other, &p).remove().await.unwrap());
    // on a timeout, say what the waiting client saw: its session's status and the node
    let mut waiter = waiter;
    match tokio::time::timeout(Duration::from_secs(60), &mut waiter).await {
        Ok(r) => r.unwrap().unwrap(),
        Err(_) => panic!(
            "waiter after restart: still pending after 60 s; the waiter's client: {:?}, \
             exists({p}) through it: {:?}, through another client: {:?}",
            c.status(),
            c.with_timeout(Duration::from_secs(5)).exists(&p).await,
            other.exists(&p).await,
        ),
    }
    assert_eq!(c.state(), State::Connected);
}

// ------------------------------------------------------------------------ DoubleBarrier

#[tokio::test(flavor = "multi_thread")]
async fn double_barrier_nobody_passes_enter_before_all_entered_and_all_leave() {
    let p = unique("db3");
    let observer = common::shared_client().await;
    let entries: Arc<Mutex<Vec<(usize, Instant, usize)>>> = Arc::default();
    let start = |i: usize| {
        let p = p.clone();
        let entries = entries.clone();
        tokio::spawn(async move {
            let c = common::shared_client().await;
            let mut b = DoubleBarrier::new(&c, &p, 3, format!("rust-{i}")).unwrap();
            b.enter().await.unwrap();
            let seen = members(&c, &p).await.len();
            entries.lock().unwrap().push((i, Instant::now(), seen));
            (c, b)
        })
    };
    let first = [start(0), start(1)];
    eventually("two participants", || async {
        members(&observer, &p).await.len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(entries.lock().unwrap().is_empty(), "entered with 2 of 3");
    assert!(first.iter().all(|h| !h.is_finished()));

    let third_started = Instant::now();
    let mut all = Vec::new();
    for h in first.into_iter().chain([start(2)]) {
        all.push(bounded("enter", h).await.unwrap());
    }
    let entries = entries.lock().unwrap().clone();
    assert_eq!(entries.len(), 3);
    for (i, at, seen) in entries {
        assert!(
            at >= third_started,
            "participant {i} entered before the third arrived"
        );
        assert_eq!(seen, 3, "participant {i} saw {seen} participants");
    }
    assert!(observer
        .exists(&format!("{p}/{READY_NODE}"))
        .await
        .unwrap()
        .is_some());

    let leaves: Vec<_> = all
        .into_iter()
        .map(|(c, mut b)| {
            tokio::spawn(async move {
                let r = b.leave().await;
                (r, c)
            })
        })
        .collect();
    for h in leaves {
        let (r, _c) = bounded("leave", h).await.unwrap();
        r.unwrap();
    }
    assert!(children(&observer, &p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn double_barrier_enter_timeout_returns_false_and_leaves_no_node() {
    let c = common::shared_client().await;
    let p = unique("db-timeout");
    let mut b = DoubleBarrier::new(&c, &p, 3, "lonely").unwrap();
    let start = Instant::now();
    assert!(b
        .enter_timeout(Duration::from_millis(500))
        .await
        .unwrap()
        .is_none());
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert!(
        children(&c, &p).await.is_empty(),
        "{:?}",
        children(&c, &p).await
    );
    assert!(b.node_path().is_none());
    assert!(c.get_ephemerals(&p).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn double_barrier_spurious_wake_ups_do_not_release_early() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let p = unique("db-spurious");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let a = common::client(&proxy.connect_string()).await;
    let b = common::shared_client().await;
    let spawn_enter = |c: Client, id: &str| {
        let mut db = DoubleBarrier::new(&c, &p, 3, id).unwrap();
        tokio::spawn(async move {
            let r = db.enter().await;
            (r, db)
        })
    };
    let ha = spawn_enter(a.clone(), "a");
    let hb = spawn_enter(b.clone(), "b");
    eventually("two participants", || async {
        members(&direct, &p).await.len() == 2
    })
    .await;
    let ready = format!("{p}/{READY_NODE}");
    wait_watched(server.addr(), &ready).await;

    // wake-ups that are not "ready exists": data changes of P, unrelated nodes, a
    // reconnection of one waiter
    direct.set_data(&p, b"noise", None).await.unwrap();
    let sibling = format!("{p}-sibling");
    direct
        .create(&sibling, b"", CreateMode::Persistent)
        .await
        .unwrap();
    direct.delete(&sibling, None).await.unwrap();
    let mut states = a.state_stream();
    proxy.reset();
    loop {
        if bounded("reconnect", futures::StreamExt::next(&mut states))
            .await
            .unwrap()
            .state
            == State::Connected
        {
            break;
        }
    }
    direct.set_data(&p, b"more noise", None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!ha.is_finished() && !hb.is_finished(), "released early");
    assert_eq!(members(&direct, &p).await.len(), 2);

    let hc = spawn_enter(common::shared_client().await, "c");
    for h in [ha, hb, hc] {
        let (r, _db) = bounded("enter", h).await.unwrap();
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn double_barrier_enter_completes_across_a_disconnect() {
    let server = shared_server();
    let p = unique("db-disconnect");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let a = common::client(&proxy.connect_string()).await;
    let direct = common::shared_client().await;
    let mut ba = DoubleBarrier::new(&a, &p, 2, "a").unwrap();
    let ha = tokio::spawn(async move {
        let r = ba.enter().await;
        (r, ba)
    });
    eventually("a joined", || async {
        members(&direct, &p).await.len() == 1
    })
    .await;
    wait_watched(server.addr(), &format!("{p}/{READY_NODE}")).await;

    proxy.reject_new(true);
    proxy.reset();
    wait_state(&a, State::Suspended).await;
    let mut bb = DoubleBarrier::new(&direct, &p, 2, "b").unwrap();
    bounded("b enters", bb.enter()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!ha.is_finished());
    proxy.reject_new(false);
    let (r, mut ba) = bounded("a after reconnect", ha).await.unwrap();
    r.unwrap();
    assert_eq!(members(&direct, &p).await.len(), 2);
    let (ra, rb) = tokio::join!(ba.leave(), bb.leave());
    ra.unwrap();
    rb.unwrap();
    assert!(children(&direct, &p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn double_barrier_enter_trusts_the_creation_of_ready_even_if_it_is_gone_again() {
    // a's connection goes silent; b completes the barrier and starts leaving at once, which
    // deletes `ready` again. The creation event reaches a late: a must pass on it.
    let server = shared_server();
    let p = unique("db-fast-leaver");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let a = common::client(&proxy.connect_string()).await;
    let b = common::shared_client().await;
    let mut ba = DoubleBarrier::new(&a, &p, 2, "slow").unwrap();
    let ha = tokio::spawn(async move {
        let r = ba.enter().await;
        (r, ba)
    });
    let ready = format!("{p}/{READY_NODE}");
    wait_watched(server.addr(), &ready).await;
    proxy.blackhole();
    let mut bb = DoubleBarrier::new(&b, &p, 2, "fast").unwrap();
    bounded("b enters", bb.enter()).await.unwrap();
    let lb = tokio::spawn(async move { bb.leave().await });
    eventually("ready deleted by the leaver", || async {
        b.exists(&ready).await.unwrap().is_none()
    })
    .await;
    proxy.heal();
    let (r, mut ba) = bounded("a enters", ha).await.unwrap();
    r.expect("a missed the barrier opening");
    bounded("a leaves", ba.leave()).await.unwrap();
    bounded("b leaves", lb).await.unwrap().unwrap();
    assert!(children(&b, &p).await.is_empty());
}

#[tokio::test]
async fn double_barrier_enter_and_leave_complete_across_a_server_restart() {
    let server = common::restartable_server().await;
    let p = unique("db-restart");
    let a = common::long_session_client(&server.connect_string()).await;
    let mut ba = DoubleBarrier::new(&a, &p, 2, "a").unwrap();
    let ha = tokio::spawn(async move {
        let r = ba.enter().await;
        (r, ba)
    });
    wait_watched(server.addr(), &format!("{p}/{READY_NODE}")).await;
    server.restart_async().await.unwrap();
    assert!(!ha.is_finished());

    let b = common::client(&server.connect_string()).await;
    let mut bb = DoubleBarrier::new(&b, &p, 2, "b").unwrap();
    bounded("b enters", bb.enter()).await.unwrap();
    let (r, mut ba) = bounded("a after restart", ha).await.unwrap();
    r.unwrap();

    // both leave; the lowest waits for the other, across another restart
    let la = tokio::spawn(async move { ba.leave().await });
    let lowest_is_a = {
        let m = members(&b, &p).await;
        m.len() == 2
            && a.get_ephemerals(&p)
                .await
                .unwrap()
                .iter()
                .any(|e| e.ends_with(&m[0]))
    };
    if lowest_is_a {
        // a waits for b to go: restart meanwhile
        wait_watched(server.addr(), &bb.node_path().unwrap()).await;
        server.restart_async().await.unwrap();
        assert!(!la.is_finished());
    }
    bounded("b leaves", bb.leave()).await.unwrap();
    bounded("a leaves", la).await.unwrap().unwrap();
    assert!(children(&b, &p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn double_barrier_adopts_its_node_after_a_lost_create_reply() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let p = unique("db-adopt");
    direct.ensure_path(&p).await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let mut b = DoubleBarrier::new(&c, &p, 1, "adopter").unwrap();
    proxy.cut_after_request(15); // create2: applied, reply lost
    bounded("enter", b.enter()).await.unwrap();
    assert_eq!(proxy.cuts_fired(), 1);
    let m = members(&direct, &p).await;
    assert_eq!(m.len(), 1, "exactly one node of ours: {m:?}");
    assert_eq!(b.node_path().unwrap(), format!("{p}/{}", m[0]));
    let stat = direct
        .exists(&b.node_path().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stat.ephemeral_owner, c.session_id());
    bounded("leave", b.leave()).await.unwrap();
    assert!(children(&direct, &p).await.is_empty());
}

/// Polls `fut` `polls` times (letting replies arrive between polls, not after the last one),
/// then drops it. `Some(output)` if it completed.
/// Polls `fut` up to `polls` times, each poll after the future asked to be woken (so the count
/// is the number of await points passed, whatever the machine's speed), then drops it.
/// `Some(output)` if it completed within those polls.
async fn poll_then_drop<F: std::future::Future>(fut: F, polls: usize) -> Option<F::Output> {
    struct Wake(tokio::sync::Notify);
    impl futures::task::ArcWake for Wake {
        fn wake_by_ref(me: &std::sync::Arc<Self>) {
            me.0.notify_one();
        }
    }
    let woken = std::sync::Arc::new(Wake(tokio::sync::Notify::new()));
    let waker = futures::task::waker(woken.clone());
    let mut fut = std::pin::pin!(fut);
    for k in 0..polls {
        if k > 0 {
            bounded("the future to ask for another poll", woken.0.notified()).await;
        }
        let mut cx = std::task::Context::from_waker(&waker);
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_enter_at_any_await_point_leaves_no_node() {
    let c = common::shared_client().await;
    let peer = common::shared_client().await;
    let p = unique("db-cancel-enter");
    peer.ensure_path(&p).await.unwrap();
    // a second "participant" so that our enter completes: 2 of 2
    peer.create(&format!("{p}/peer"), b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let mut b = DoubleBarrier::new(&c, &p, 2, "cancelled").unwrap();
    let ready = format!("{p}/{READY_NODE}");
    let mut completed_at = None;
    for i in 0..200 {
        match peer.delete(&ready, None).await {
            Ok(()) | Err(zk_core::Error::NoNode) => {}
            Err(e) => panic!("{e}"),
        }
        if let Some(r) = poll_then_drop(b.enter(), i).await {
            r.unwrap();
            completed_at = Some(i);
            break;
        }
        eventually(&format!("no node of ours after {i} polls"), || async {
            c.get_ephemerals(&p).await.unwrap().is_empty()
        })
        .await;
        assert_eq!(
            members(&peer, &p).await,
            vec!["peer".to_string()],
            "after {i} polls"
        );
    }
    let i = completed_at.expect("enter completed within 200 polls");
    assert!(i >= 3, "enter completed after only {i} polls");
    // completed: our node is there, and it is the only one of ours
    let mine = c.get_ephemerals(&p).await.unwrap();
    assert_eq!(mine, vec![b.node_path().unwrap()]);

    // dropped while waiting for participants that never come: poll until its node is there
    // (however long a loaded machine takes), then drop
    let mut waiting = DoubleBarrier::new(&c, &unique("db-cancel-wait"), 3, "w").unwrap();
    let path = waiting.path().to_owned();
    {
        let mut fut = std::pin::pin!(waiting.enter());
        let end = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                futures::poll!(fut.as_mut()).is_pending(),
                "enter completed with 1 of 3 participants"
            );
            if members(&c, &path).await.len() == 1 {
                break; // it is waiting with its node
            }
            assert!(
                tokio::time::Instant::now() < end,
                "the waiting participant's node: not there after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    eventually("no node of ours after a drop while waiting", || async {
        c.get_ephemerals(&path).await.unwrap().is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_leave_at_any_await_point_leaves_no_node() {
    let c = common::shared_client().await;
    let p = unique("db-cancel-leave");
    let mut b = DoubleBarrier::new(&c, &p, 1, "leaver").unwrap();
    let mut completed_at = None;
    for i in 0..200 {
        bounded("enter", b.enter()).await.unwrap();
        assert_eq!(c.get_ephemerals(&p).await.unwrap().len(), 1);
        if i == 0 {
            // never polled: it has not started, we are still in
            drop(b.leave());
            let node = b.node_path().expect("still a member");
            assert!(c.exists(&node).await.unwrap().is_some());
            // and entering again keeps that one node
            bounded("enter again", b.enter()).await.unwrap();
            assert_eq!(c.get_ephemerals(&p).await.unwrap(), vec![node]);
            continue;
        }
        if let Some(r) = poll_then_drop(b.leave(), i).await {
            r.unwrap();
            completed_at = Some(i);
            assert!(c.get_ephemerals(&p).await.unwrap().is_empty());
            break;
        }
        eventually(&format!("no node of ours after {i} polls"), || async {
            c.get_ephemerals(&p).await.unwrap().is_empty()
        })
        .await;
    }
    let i = completed_at.expect("leave completed within 200 polls");
    assert!(i >= 2, "leave completed after only {i} polls");
    assert!(children(&c, &p).await.is_empty());
}

// ---------------------------------------------------------------------------- interop

#[tokio::test(flavor = "multi_thread")]
async fn interop_kazoo_creates_and_removes_the_barrier_rust_waits() {
    let server = shared_server();
    let hosts = server.connect_string();
    let p = unique("interop-barrier-k");
    let out = common::python_run("barrier_simple.py", &[&hosts, &p, "create"]).await;
    assert_eq!(out.trim(), "created");
    let c = common::shared_client().await;
    let waiter = tokio::spawn({
        let b = Barrier::new(&c, &p);
        async move { b.wait().await }
    });
    wait_watched(server.addr(), &p).await;
    assert!(!waiter.is_finished(), "passed a barrier kazoo put up");
    let out = common::python_run("barrier_simple.py", &[&hosts, &p, "remove"]).await;
    assert_eq!(out.trim(), "removed True");
    bounded("rust waiter", waiter).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_rust_creates_and_removes_the_barrier_kazoo_waits() {
    let server = shared_server();
    let hosts = server.connect_string();
    let p = unique("interop-barrier-r");
    let c = common::shared_client().await;
    let b = Barrier::new(&c, &p);
    b.create().await.unwrap();
    let mut kazoo = common::python("barrier_simple.py", &[&hosts, &p, "wait", "60"]);
    let mut lines = BufReader::new(kazoo.stdout.take().unwrap()).lines();
    let first = bounded("kazoo starts", lines.next_line()).await.unwrap();
    assert_eq!(first.as_deref(), Some("waiting"));
    wait_watched(server.addr(), &p).await;
    assert!(b.remove().await.unwrap());
    let last = bounded("kazoo passes", lines.next_line()).await.unwrap();
    assert_eq!(last.as_deref(), Some("cleared True"));
    assert!(bounded("kazoo exits", kazoo.wait())
        .await
        .unwrap()
        .success());
}

/// One kazoo DoubleBarrier participant process.
struct KazooParticipant {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl KazooParticipant {
    fn start(hosts: &str, path: &str, n: usize, id: &str) -> KazooParticipant {
        let mut child = common::python("barrier_double.py", &[hosts, path, &n.to_string(), id]);
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        KazooParticipant { child, lines }
    }

    async fn line(&mut self, what: &str) -> String {
        bounded(what, self.lines.next_line())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: kazoo participant exited"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_double_barrier_with_two_rust_and_two_kazoo_participants() {
    let server = shared_server();
    let hosts = server.connect_string();
    let p = unique("interop-db");
    let observer = common::shared_client().await;

    // three participants first: two kazoo, one Rust
    let mut kazoo = [
        KazooParticipant::start(&hosts, &p, 4, "kazoo-1"),
        KazooParticipant::start(&hosts, &p, 4, "kazoo-2"),
    ];
    let rust_enter = |id: &'static str| {
        let p = p.clone();
        tokio::spawn(async move {
            let c = common::shared_client().await;
            let mut b = DoubleBarrier::new(&c, &p, 4, id).unwrap();
            b.enter().await.unwrap();
            let entered_at = epoch_ms();
            let seen = members(&c, &p).await.len();
            (b, c, entered_at, seen)
        })
    };
    let r1 = rust_enter("rust-1");
    eventually("three participants", || async {
        members(&observer, &p).await.len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!r1.is_finished(), "Rust passed enter with 3 of 4");
    for k in &mut kazoo {
        // nothing printed yet: a kazoo participant that passed would have said "entered"
        assert!(
            tokio::time::timeout(Duration::from_millis(10), k.lines.next_line())
                .await
                .is_err(),
            "kazoo passed enter with 3 of 4"
        );
    }

    // the fourth
    let r2 = rust_enter("rust-2");
    let (b1, c1, t1, seen1) = bounded("rust-1 enters", r1).await.unwrap();
    let (b2, c2, t2, seen2) = bounded("rust-2 enters", r2).await.unwrap();
    let mut entered = vec![(t1, seen1), (t2, seen2)];
    for (i, k) in kazoo.iter_mut().enumerate() {
        let line = k.line("kazoo enters").await;
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.first(), Some(&"entered"), "kazoo-{i}: {line}");
        entered.push((f[1].parse().unwrap(), f[2].parse().unwrap()));
    }
    // every participant node, with its creation time on the server's clock (same host)
    let nodes = members(&observer, &p).await;
    assert_eq!(nodes.len(), 4, "{nodes:?}");
    let mut last_created = 0;
    let mut ids = Vec::new();
    for n in &nodes {
        let (data, stat) = observer.get_data(&format!("{p}/{n}")).await.unwrap();
        assert_eq!(n.len(), 32, "kazoo's layout: 32 hex digits");
        assert!(n
            .chars()
            .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()));
        ids.push(String::from_utf8(data).unwrap());
        assert_ne!(stat.ephemeral_owner, 0, "participants are ephemeral");
        last_created = last_created.max(stat.ctime);
    }
    ids.sort();
    assert_eq!(ids, ["kazoo-1", "kazoo-2", "rust-1", "rust-2"]);
    for (at, seen) in &entered {
        assert!(
            *at >= last_created,
            "entered at {at} before the last node ({last_created})"
        );
        assert_eq!(
            *seen, 4,
            "a participant saw {seen} participants when it entered"
        );
    }

    // everyone leaves
    for k in &mut kazoo {
        let stdin = k.child.stdin.as_mut().unwrap();
        stdin.write_all(b"leave\n").await.unwrap();
        stdin.flush().await.unwrap();
    }
    let leave = |mut b: DoubleBarrier, c: Client| {
        tokio::spawn(async move {
            let r = b.leave().await;
            drop(c);
            r
        })
    };
    let (l1, l2) = (leave(b1, c1), leave(b2, c2));
    bounded("rust-1 leaves", l1).await.unwrap().unwrap();
    bounded("rust-2 leaves", l2).await.unwrap().unwrap();
    for k in &mut kazoo {
        let line = k.line("kazoo leaves").await;
        assert!(line.starts_with("left "), "{line}");
        assert!(bounded("kazoo exits", k.child.wait())
            .await
            .unwrap()
            .success());
    }
    assert!(children(&observer, &p).await.is_empty());
}

/// Issue 9, defect 8: a double barrier for zero participants is refused by its constructor
/// with a clear error, and nothing is created on the server.
#[tokio::test(flavor = "multi_thread")]
async fn double_barrier_for_zero_participants_is_refused() {
    let c = common::shared_client().await;
    let p = unique("db-zero");
    let r = DoubleBarrier::new(&c, &p, 0, "x");
    assert!(
        matches!(r, Err(zk_core::Error::InvalidArgument(_))),
        "0 participants: {r:?}"
    );
    assert!(c.exists(&p).await.unwrap().is_none());
}
