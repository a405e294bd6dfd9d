//! Semaphore and election against a real server.

mod common;

use common::{bounded, children, client, shared_client, unique};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use zk_recipes::{Election, LostReason, RunOutcome, Semaphore};
use zk_testkit::FaultProxy;

#[tokio::test(flavor = "multi_thread")]
async fn semaphore_never_admits_more_than_max() {
    let path = unique("sem");
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let c = shared_client().await;
        let sem = Semaphore::new(&c, &path, format!("s{i}"), 2).unwrap();
        let (inside, peak) = (inside.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..8 {
                let lease = sem.acquire().await.unwrap();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                assert!(n <= 2, "{n} holders");
                assert!(sem.lease_holders().await.unwrap().len() <= 2);
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                lease.release().await.unwrap();
            }
        }));
    }
    for t in tasks {
        bounded("semaphore users", t).await.unwrap();
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "the semaphore never had two holders at once"
    );
    let c = shared_client().await;
    assert!(children(&c, &path).await.is_empty());
    assert!(children(&c, &format!("{path}-__lock__")).await.is_empty());
    // the maximum is stored as kazoo stores it
    assert_eq!(c.get_data(&path).await.unwrap().0, b"2");
}

#[tokio::test(flavor = "multi_thread")]
async fn semaphore_timeout_and_cancellation_leave_nothing_behind() {
    let c = shared_client().await;
    let path = unique("semcancel");
    let full = Semaphore::new(&c, &path, "holder", 1).unwrap();
    let lease = full.acquire().await.unwrap();
    let other = Semaphore::new(&c, &path, "waiter", 1).unwrap();
    assert!(other
        .acquire_timeout(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    assert_eq!(children(&c, &path).await.len(), 1);
    // after a timeout the admission node is removed in the background
    wait_until_empty(&c, &format!("{path}-__lock__")).await;
    // try_acquire does not wait and leaves nothing
    assert!(other.try_acquire().await.unwrap().is_none());
    assert_eq!(children(&c, &path).await.len(), 1);
    wait_until_empty(&c, &format!("{path}-__lock__")).await;
    let wide = Semaphore::new(&c, &format!("{path}-wide"), "a", 2).unwrap();
    let l1 = wide.try_acquire().await.unwrap().expect("a free lease");
    let l2 = Semaphore::new(&c, &format!("{path}-wide"), "b", 2)
        .unwrap()
        .try_acquire()
        .await
        .unwrap()
        .expect("a second free lease");
    assert!(Semaphore::new(&c, &format!("{path}-wide"), "c", 2)
        .unwrap()
        .try_acquire()
        .await
        .unwrap()
        .is_none());
    l1.release().await.unwrap();
    l2.release().await.unwrap();
    // a dropped waiting acquire leaves nothing either
    assert!(
        tokio::time::timeout(Duration::from_millis(300), other.acquire())
            .await
            .is_err()
    );
    wait_until_empty(&c, &format!("{path}-__lock__")).await;
    assert_eq!(children(&c, &path).await.len(), 1);
    lease.release().await.unwrap();

    // sweep: drop after i polls, for every i until it completes
    let sem = Semaphore::new(&c, &path, "sweep", 1).unwrap();
    let mut i = 0;
    loop {
        let mut fut = Box::pin(sem.acquire());
        let mut done = None;
        for _ in 0..i {
            match futures::poll!(&mut fut) {
                Poll::Ready(r) => {
                    done = Some(r);
                    break;
                }
                Poll::Pending => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
        drop(fut);
        if let Some(r) = done {
            r.unwrap().release().await.unwrap();
            break;
        }
        wait_until_empty(&c, &path).await;
        wait_until_empty(&c, &format!("{path}-__lock__")).await;
        i += 1;
        assert!(i < 1000, "acquire never completed");
    }
    wait_until_empty(&c, &path).await;
}

async fn wait_until_empty(c: &zk_core::Client, path: &str) {
    common::eventually(&format!("{path} has no children"), || async {
        children(c, path).await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn election_leader_then_hand_over_in_sequence_order() {
    let path = unique("elect");
    let ca = shared_client().await;
    let cb = shared_client().await;
    let a = Election::new(&ca, &path, "a");
    let b = Election::new(&cb, &path, "b");
    let lead_a = a.acquire().await.unwrap();
    assert!(lead_a.has_leadership());
    let b_task = tokio::spawn(async move { b.acquire().await.map(|g| (b, g)) });
    common::eventually("b is a candidate", || async {
        a.participants().await.unwrap().len() == 2
    })
    .await;
    let ids: Vec<(String, bool)> = a
        .participants()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.id, p.is_leader))
        .collect();
    assert_eq!(ids, vec![("a".to_owned(), true), ("b".to_owned(), false)]);
    assert_eq!(a.leader().await.unwrap().as_deref(), Some("a"));
    assert!(a
        .acquire_timeout(Duration::from_millis(10))
        .await
        .unwrap()
        .is_none());
    lead_a.release().await.unwrap(); // resign
    let (b, lead_b) = bounded("b leads", b_task).await.unwrap().unwrap();
    assert!(lead_b.is_held());
    // a's timed-out candidacy is removed (in the background, past the cleanup slack)
    common::eventually("only b is a candidate", || async {
        b.leader().await.unwrap().as_deref() == Some("b")
            && b.participants().await.unwrap().len() == 1
    })
    .await;
    lead_b.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn run_is_cancelled_when_leadership_is_lost() {
    let server = zk_testkit::shared_server();
    let path = unique("elect-run");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let election = Election::new(&c, &path, "leader");
    let started = Arc::new(tokio::sync::Notify::new());
    let run = tokio::spawn({
        let started = started.clone();
        let election = election.clone();
        async move {
            election
                .run(|_lost| {
                    let started = started.clone();
                    async move {
                        started.notify_one();
                        std::future::pending::<()>().await
                    }
                })
                .await
        }
    });
    bounded("leading", started.notified()).await;
    proxy.blackhole();
    let outcome = bounded("run ends", run).await.unwrap().unwrap();
    assert_eq!(outcome, RunOutcome::Lost(LostReason::Suspended));
    proxy.heal();
    // and a task that finishes: Finished, then resigned
    let c2 = shared_client().await;
    let e2 = Election::new(&c2, &path, "second");
    let out = bounded("second run", e2.run(|_| async { 7 }))
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished(7));
    common::wait_no_child_with_prefix(&c2, &path, "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_campaign_leaves_no_node() {
    let c = shared_client().await;
    let path = unique("elect-cancel");
    let leader = Election::new(&c, &path, "leader").acquire().await.unwrap();
    let hopeful = Election::new(&c, &path, "hopeful");
    for i in 0..40 {
        let mut fut = Box::pin(hopeful.acquire());
        for _ in 0..i {
            assert!(futures::poll!(&mut fut).is_pending());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(fut);
        common::eventually(
            &format!("only the leader left after dropping at poll {i}"),
            || async { children(&c, &path).await.len() == 1 },
        )
        .await;
    }
    assert!(leader.is_held());
    leader.release().await.unwrap();
}

/// Issue 9, defect 1: a waiter that lost the admission lock (its session expired while it
/// waited for room, and it came back in a new session) must not create a lease. Scenario: H
/// holds the only lease; A holds admission and waits for room; B queues for admission; A is cut
/// off and cannot reconnect; A's session is expired (its admission node goes) and B takes
/// admission; A comes back in a new session; H releases. Only one of A and B may hold.
#[tokio::test(flavor = "multi_thread")]
async fn semaphore_waiter_that_lost_admission_does_not_take_a_second_lease() {
    let server = zk_testkit::shared_server();
    let path = unique("sem-admission");
    let admission = format!("{path}-__lock__");
    let hc = shared_client().await;
    let h = Semaphore::new(&hc, &path, "H", 1)
        .unwrap()
        .acquire()
        .await
        .unwrap();

    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let ac = zk_core::Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(4))
        // the session is short for what the test does; the first one may take longer to get
        .connect_timeout(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    let bc = shared_client().await;
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let hold = |name: &'static str, sem: Semaphore| {
        let (inside, peak) = (inside.clone(), peak.clone());
        tokio::spawn(async move {
            let lease = sem.acquire().await.unwrap();
            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            eprintln!("{name} holds a lease ({n} holder(s))");
            // hold long enough for a second holder to show up, if the recipe lets one in
            tokio::time::sleep(Duration::from_secs(1)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            lease.release().await.unwrap();
        })
    };
    // A takes admission and waits for room
    let a = hold("A", Semaphore::new(&ac, &path, "A", 1).unwrap());
    common::eventually("A holds admission", || async {
        children(&hc, &admission).await.len() == 1
    })
    .await;
    // B queues behind A for admission
    let b = hold("B", Semaphore::new(&bc, &path, "B", 1).unwrap());
    common::eventually("B queued for admission", || async {
        children(&hc, &admission).await.len() == 2
    })
    .await;
    // A's re-list (woken by a foreign child) is cut in flight, and A cannot reconnect; then
    // its session is expired for real
    let (a_sid, a_pw) = ac.session_credentials();
    proxy.reject_new(true);
    proxy.cut_after_request(8); // getChildren
    let foreign = format!("{path}/wake-up");
    hc.create(&foreign, b"", zk_core::CreateMode::Ephemeral)
        .await
        .unwrap();
    common::eventually("A's re-list was cut", || async { proxy.cuts_fired() == 1 }).await;
    hc.delete(&foreign, None).await.unwrap();
    common::wait_state(&ac, zk_core::State::Suspended).await;
    zk_testkit::expire_session(server.addr(), a_sid, &a_pw)
        .await
        .unwrap();
    common::eventually("B took admission", || async {
        children(&hc, &admission).await.len() == 1
    })
    .await;
    // A comes back in a new session
    proxy.reject_new(false);
    common::eventually("A reconnected in a new session", || async {
        ac.state() == zk_core::State::Connected && ac.session_id() != a_sid
    })
    .await;
    h.release().await.unwrap();
    bounded("B", b).await.unwrap();
    bounded("A", a).await.unwrap();
    assert_eq!(
        peak.load(Ordering::SeqCst),
        1,
        "two holders of a 1-lease semaphore"
    );
    assert!(children(&hc, &path).await.is_empty());
}

/// Issue 9, defect 3 (semaphore): a deadline passing while the client is cut off returns at the
/// deadline; the admission release and lease cleanup run in the background.
#[tokio::test(flavor = "multi_thread")]
async fn semaphore_deadline_is_honoured_while_disconnected() {
    let server = zk_testkit::shared_server();
    let path = unique("sem-deadline");
    let hc = shared_client().await;
    let h = Semaphore::new(&hc, &path, "H", 1)
        .unwrap()
        .acquire()
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let ac = zk_core::Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    let sem = Semaphore::new(&ac, &path, "A", 1).unwrap();
    let timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let a = tokio::spawn(async move { sem.acquire_timeout(timeout).await });
    let admission = format!("{path}-__lock__");
    common::eventually("A holds admission, waiting for room", || async {
        children(&hc, &admission).await.len() == 1
    })
    .await;
    proxy.blackhole();
    let r = bounded("acquire_timeout", a).await.unwrap().unwrap();
    let took = started.elapsed();
    assert!(r.is_none());
    // the stated slack is 500 ms; allow more on a loaded machine (the defect took > 6 s)
    assert!(
        took < timeout + Duration::from_secs(3),
        "acquire_timeout({timeout:?}) returned after {took:?}"
    );
    proxy.heal();
    common::wait_no_child_with_prefix(&hc, &format!("{path}-__lock__"), "").await;
    h.release().await.unwrap();
}

/// Issue 9, defect 2: `Election::run` must not return `Lost(Suspended)` while we lead, after a
/// blip during the campaign (reconnected in the same session).
#[tokio::test(flavor = "multi_thread")]
async fn run_does_not_report_lost_after_a_blip_during_campaign() {
    let server = zk_testkit::shared_server();
    let path = unique("elect-blip");
    let c0 = shared_client().await;
    c0.ensure_path(&path).await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    proxy.cut_after_request(8); // the first getChildren after our create
    let election = Election::new(&c, &path, "leader");
    let out = bounded(
        "run",
        election.run(|lost| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            lost.reason()
        }),
    )
    .await
    .unwrap();
    assert_eq!(proxy.cuts_fired(), 1, "the blip did not happen");
    assert_eq!(out, RunOutcome::Finished(None));
}

/// Issue 9, defect 4: `Election::run` returns as soon as leadership is lost; resigning (the
/// node's deletion) goes on in the background instead of waiting for a reconnect or expiry.
#[tokio::test(flavor = "multi_thread")]
async fn run_returns_at_once_after_losing_leadership() {
    let server = zk_testkit::shared_server();
    let path = unique("elect-late");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = zk_core::Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(6))
        .connect()
        .await
        .unwrap();
    let election = Election::new(&c, &path, "leader");
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel();
    let started = Arc::new(tokio::sync::Notify::new());
    let mut lost_tx = Some(lost_tx);
    let run = tokio::spawn({
        let started = started.clone();
        async move {
            let out = election
                .run(|lost| {
                    let lost_tx = lost_tx.take();
                    let started = started.clone();
                    async move {
                        // note the loss from a task of its own (this one is dropped on the loss)
                        tokio::spawn(async move {
                            lost.lost().await;
                            if let Some(tx) = lost_tx {
                                let _ = tx.send(std::time::Instant::now());
                            }
                        });
                        started.notify_one();
                        std::future::pending::<()>().await
                    }
                })
                .await;
            (out, std::time::Instant::now())
        }
    });
    bounded("leading", started.notified()).await;
    proxy.blackhole();
    let (out, returned) = bounded("run returns", run).await.unwrap();
    assert_eq!(out.unwrap(), RunOutcome::Lost(LostReason::Suspended));
    let lost_at = bounded("the loss was noted", lost_rx).await.unwrap();
    let late = returned.saturating_duration_since(lost_at);
    // "at once": generous for a loaded machine; the defect waited for the session to end (~6 s)
    assert!(
        late < Duration::from_secs(3),
        "run returned {late:?} after the loss"
    );
    proxy.heal();
    let c0 = shared_client().await;
    common::wait_no_child_with_prefix(&c0, &path, "").await;
}

/// Issue 9, defect 8: a semaphore with no leases is refused by its constructor with a clear
/// error, and nothing is created on the server.
#[tokio::test(flavor = "multi_thread")]
async fn semaphore_with_zero_leases_is_refused() {
    let c = shared_client().await;
    let path = unique("sem-zero");
    let r = Semaphore::new(&c, &path, "x", 0);
    assert!(
        matches!(r, Err(zk_core::Error::InvalidArgument(_))),
        "max 0 leases: {r:?}"
    );
    assert!(c.exists(&path).await.unwrap().is_none());
}

/// Issue 9, defect 1, second hole: A's lease create is applied but its reply is lost, A cannot
/// reconnect and its session is expired (the lease and A's admission node go with it); B takes
/// admission and a lease, C takes admission and waits for room; A comes back in a new session.
/// When B releases, only one of A and C may take the lease.
#[tokio::test(flavor = "multi_thread")]
async fn semaphore_lease_create_reply_lost_then_expiry_does_not_take_a_second_lease() {
    let server = zk_testkit::shared_server();
    let path = unique("sem-create-lost");
    let admission = format!("{path}-__lock__");
    let hc = shared_client().await;
    let h = Semaphore::new(&hc, &path, "H", 1)
        .unwrap()
        .acquire()
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let ac = zk_core::Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(4))
        // the session is short for what the test does; the first one may take longer to get
        .connect_timeout(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (b_release_tx, b_release_rx) = tokio::sync::oneshot::channel::<()>();
    let hold =
        |name: &'static str, sem: Semaphore, until: Option<tokio::sync::oneshot::Receiver<()>>| {
            let (inside, peak) = (inside.clone(), peak.clone());
            tokio::spawn(async move {
                let lease = sem.acquire().await.unwrap();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                eprintln!("{name} holds a lease ({n} holder(s))");
                match until {
                    Some(rx) => {
                        let _ = rx.await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(1)).await,
                }
                inside.fetch_sub(1, Ordering::SeqCst);
                lease.release().await.unwrap();
            })
        };
    // A holds admission and waits for room
    let a = hold("A", Semaphore::new(&ac, &path, "A", 1).unwrap(), None);
    common::eventually("A holds admission", || async {
        children(&hc, &admission).await.len() == 1
    })
    .await;
    // A's lease create (a fenced multi, 14) will be applied but its reply lost, and A cannot
    // reconnect
    proxy.reject_new(true);
    proxy.cut_after_request(14);
    h.release().await.unwrap();
    common::eventually("A's lease create was cut", || async {
        proxy.cuts_fired() == 1
    })
    .await;
    common::wait_state(&ac, zk_core::State::Suspended).await;
    // B queues for admission; A's session is expired for real
    let bc = shared_client().await;
    let b = hold(
        "B",
        Semaphore::new(&bc, &path, "B", 1).unwrap(),
        Some(b_release_rx),
    );
    common::eventually("B queued for admission", || async {
        children(&hc, &admission).await.len() == 2
    })
    .await;
    let (a_sid, a_pw) = ac.session_credentials();
    zk_testkit::expire_session(server.addr(), a_sid, &a_pw)
        .await
        .unwrap();
    common::eventually("B holds a lease", || async {
        inside.load(Ordering::SeqCst) == 1 && children(&hc, &admission).await.is_empty()
    })
    .await;
    // C takes admission and waits for room
    let cc = shared_client().await;
    let c = hold("C", Semaphore::new(&cc, &path, "C", 1).unwrap(), None);
    common::eventually("C holds admission", || async {
        children(&hc, &admission).await.len() == 1
    })
    .await;
    // A comes back in a new session
    proxy.reject_new(false);
    common::eventually("A reconnected in a new session", || async {
        ac.state() == zk_core::State::Connected && ac.session_id() != a_sid
    })
    .await;
    let _ = b_release_tx.send(());
    bounded("B", b).await.unwrap();
    bounded("C", c).await.unwrap();
    bounded("A", a).await.unwrap();
    assert_eq!(
        peak.load(Ordering::SeqCst),
        1,
        "two holders of a 1-lease semaphore"
    );
    assert!(children(&hc, &path).await.is_empty());
}

/// The lease create is fenced by the admission node on the server, not only by the waiter's own
/// belief that it is admitted: the admitted waiter A lists the leases, sees room and sends its
/// create; while that create is on the wire (held in A's proxy), A's admission node is deleted
/// by someone else (an operator clearing a "stuck" lock), B is admitted and takes the one lease.
/// A's create must then fail on the server. A plain create (A judged admission in memory just
/// before sending it) would land as a second lease of a 1-lease semaphore. Issue 10's unfenced
/// lease create mutation, which no fault of a black-box campaign can aim at.
#[tokio::test(flavor = "multi_thread")]
async fn semaphore_lease_create_sent_before_admission_was_deleted_is_refused_by_the_fence() {
    use futures::StreamExt;
    let server = zk_testkit::shared_server();
    let path = unique("sem-fence");
    let admission = format!("{path}-__lock__");
    let hc = shared_client().await;
    // every lease node created or deleted, in zxid order: the most that existed at once
    let leases_now = Arc::new(AtomicUsize::new(0));
    let leases_peak = Arc::new(AtomicUsize::new(0));
    let mut events = hc
        .add_watch(&path, zk_core::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let counter = {
        let (now, peak) = (leases_now.clone(), leases_peak.clone());
        let prefix = format!("{path}/");
        tokio::spawn(async move {
            while let Some(Ok(ev)) = events.next().await {
                if !ev.path.starts_with(&prefix) {
                    continue;
                }
                match ev.event_type {
                    zk_core::EventType::NodeCreated => {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                    }
                    zk_core::EventType::NodeDeleted => {
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
        })
    };
    let h = Semaphore::new(&hc, &path, "H", 1)
        .unwrap()
        .acquire()
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let ac = zk_core::Client::builder(proxy.connect_string())
        // A's pings wait behind its held create: a session long enough for the hold
        .session_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    let bc = shared_client().await;
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (b_release_tx, b_release_rx) = tokio::sync::oneshot::channel::<()>();
    let hold =
        |name: &'static str, sem: Semaphore, until: Option<tokio::sync::oneshot::Receiver<()>>| {
            let (inside, peak) = (inside.clone(), peak.clone());
            tokio::spawn(async move {
                let lease = sem.acquire().await.unwrap();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                eprintln!("{name} holds a lease ({n} holder(s))");
                match until {
                    Some(rx) => {
                        let _ = rx.await;
                    }
                    None => tokio::time::sleep(Duration::from_millis(300)).await,
                }
                inside.fetch_sub(1, Ordering::SeqCst);
                lease.release().await.unwrap();
            })
        };
    // A takes admission and waits for room; B queues behind it for admission
    let a = hold("A", Semaphore::new(&ac, &path, "A", 1).unwrap(), None);
    common::eventually("A holds admission", || async {
        children(&hc, &admission).await.len() == 1
    })
    .await;
    let a_node = format!("{admission}/{}", children(&hc, &admission).await[0]);
    assert_eq!(hc.get_data(&a_node).await.unwrap().0, b"A");
    let b = hold(
        "B",
        Semaphore::new(&bc, &path, "B", 1).unwrap(),
        Some(b_release_rx),
    );
    common::eventually("B queued for admission", || async {
        children(&hc, &admission).await.len() == 2
    })
    .await;
    // A's lease create (multi 14 when fenced, create2 15 when not) will wait in the proxy
    proxy.hold_request(&[14, 15]);
    h.release().await.unwrap();
    common::eventually("A's lease create is held in its proxy", || async {
        proxy.held_requests() == 1
    })
    .await;
    // the world moves while A's create is on the wire
    hc.delete(&a_node, None).await.unwrap();
    common::eventually("B holds the lease", || async {
        inside.load(Ordering::SeqCst) == 1
    })
    .await;
    proxy.release_held();
    // A's create reaches the server now; A goes back to the admission queue and waits for room
    common::eventually("A queued for admission again (a new node)", || async {
        for child in children(&hc, &admission).await {
            let node = format!("{admission}/{child}");
            if node != a_node && matches!(hc.get_data(&node).await, Ok((d, _)) if d == b"A") {
                return true;
            }
        }
        false
    })
    .await;
    let _ = b_release_tx.send(());
    bounded("B", b).await.unwrap();
    bounded("A", a).await.unwrap();
    assert_eq!(
        peak.load(Ordering::SeqCst),
        1,
        "two holders of a 1-lease semaphore"
    );
    common::eventually("the last lease deletion seen", || async {
        leases_now.load(Ordering::SeqCst) == 0
    })
    .await;
    assert_eq!(
        leases_peak.load(Ordering::SeqCst),
        1,
        "two lease nodes of a 1-lease semaphore existed at once"
    );
    counter.abort();
    assert!(children(&hc, &path).await.is_empty());
}

/// Issue 9 (one recipe API): `Election::leader` names the current leader, `None` when there is
/// none.
#[tokio::test(flavor = "multi_thread")]
async fn election_leader_names_the_current_leader() {
    let c = shared_client().await;
    let path = unique("elect-leader");
    let a = Election::new(&c, &path, "a");
    assert_eq!(a.leader().await.unwrap(), None);
    let lead = a.acquire().await.unwrap();
    let b = Election::new(&c, &path, "b");
    let b_task = tokio::spawn(async move { b.acquire().await });
    common::eventually("b is a candidate", || async {
        a.participants().await.unwrap().len() == 2
    })
    .await;
    assert_eq!(a.leader().await.unwrap().as_deref(), Some("a"));
    lead.release().await.unwrap();
    let lead_b = bounded("b leads", b_task).await.unwrap().unwrap();
    assert_eq!(a.leader().await.unwrap().as_deref(), Some("b"));
    lead_b.release().await.unwrap();
}

/// Issue 9, one recipe API: `Election::run` with `auto_requeue(true)` queues again after losing
/// leadership and runs the task again once it leads (Curator's autoRequeue); without it, the
/// loss is returned (see `run_is_cancelled_when_leadership_is_lost`).
#[tokio::test(flavor = "multi_thread")]
async fn election_run_with_auto_requeue_rejoins_after_losing_leadership() {
    let server = zk_testkit::shared_server();
    let path = unique("elect-requeue");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let election = Election::new(&c, &path, "requeued").auto_requeue(true);
    let calls = Arc::new(AtomicUsize::new(0));
    let leading = Arc::new(tokio::sync::Notify::new());
    let run = tokio::spawn({
        let (calls, leading) = (calls.clone(), leading.clone());
        async move {
            election
                .run(|_lost| {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    let leading = leading.clone();
                    async move {
                        if n == 1 {
                            leading.notify_one();
                            std::future::pending::<()>().await;
                        }
                        n
                    }
                })
                .await
        }
    });
    bounded("first leadership", leading.notified()).await;
    proxy.blackhole();
    // the suspension takes the first leadership away; the candidate queues again, and leads
    // again once the connection is back
    common::eventually("the client is suspended", || async {
        c.state() != zk_core::State::Connected
    })
    .await;
    proxy.heal();
    let out = bounded("run after requeue", run).await.unwrap().unwrap();
    assert_eq!(out, RunOutcome::Finished(2));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let c0 = shared_client().await;
    common::wait_no_child_with_prefix(&c0, &path, "").await;
}

/// Issue 9, one recipe API: every recipe that hands out a guard has the same `run`.
#[tokio::test(flavor = "multi_thread")]
async fn lock_and_semaphore_run_hold_while_the_task_runs() {
    let c = shared_client().await;
    let lock_path = unique("lock-run");
    let lock = zk_recipes::Lock::new(&c, &lock_path, "runner");
    let c2 = c.clone();
    let p2 = lock_path.clone();
    let out = bounded(
        "lock run",
        lock.run(|lost| async move {
            assert!(lost.reason().is_none());
            c2.get_children(&p2).await.unwrap().len()
        }),
    )
    .await
    .unwrap();
    assert_eq!(out, RunOutcome::Finished(1), "our node while running");
    assert!(children(&c, &lock_path).await.is_empty(), "released after");

    let sem_path = unique("sem-run");
    let sem = Semaphore::new(&c, &sem_path, "runner", 2).unwrap();
    let out = bounded("semaphore run", sem.run(|_| async { 5 }))
        .await
        .unwrap();
    assert_eq!(out, RunOutcome::Finished(5));
    assert!(sem.lease_holders().await.unwrap().is_empty());
}
