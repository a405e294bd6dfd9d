//! Adversarial review 9: promises of zk-recipes that the code does not keep, each shown
//! against a real ZooKeeper (and kazoo where it matters). Every test here failed on the code it
//! was written against; the report of review 9 lists the failing lines.

mod common;

use common::{bounded, children, shared_client, unique, wait_state};
use std::time::Duration;
use zk_core::{Client, Op, State};
use zk_recipes::retry::{retry, KazooRetry};
use zk_recipes::{Election, Lock, LostReason, Semaphore};
use zk_testkit::FaultProxy;

/// `Lock::acquire` "waits until the lock is held, however long it takes (through reconnects;
/// after a session loss it queues again in the new session)", and its errors are "server
/// errors other than connection loss, and the client being closed or its session lost for
/// good". An outage longer than the client's queue timeout (twice the session timeout, after
/// the client gave the session up by its own clock) must not end it with a timeout.
#[tokio::test(flavor = "multi_thread")]
async fn blocking_acquire_waits_through_an_outage_longer_than_the_queue_timeout() {
    let server = zk_testkit::shared_server();
    let c = shared_client().await;
    let path = unique("r9-outage");
    let holder = Lock::new(&c, &path, "holder").acquire().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    common::init_tracing();
    let session = Duration::from_secs(4);
    let pc = Client::builder(proxy.connect_string())
        .session_timeout(session)
        .connect()
        .await
        .expect("connect");
    let lock = Lock::new(&pc, &path, "waiter");
    let waiting = tokio::spawn({
        let lock = lock.clone();
        async move { lock.acquire().await }
    });
    common::eventually("the waiter queued", || async {
        children(&c, &path).await.len() == 2
    })
    .await;
    // the server is unreachable: connections are refused, the current one is reset
    proxy.reject_new(true);
    proxy.reset();
    // the client gives the session up by its own clock ...
    wait_state(&pc, State::Lost).await;
    // ... and requests queued after that wait twice the session timeout for a connection
    tokio::time::sleep(session * 2 + Duration::from_secs(6)).await;
    if waiting.is_finished() {
        let r = waiting.await.unwrap();
        panic!(
            "Lock::acquire() (no deadline) gave up during an outage instead of waiting \
             however long it takes: {r:?}"
        );
    }
    proxy.reject_new(false);
    wait_state(&pc, State::Connected).await;
    holder.release().await.unwrap();
    let g = bounded("the waiter acquires after the outage", waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(g.is_held());
    g.release().await.unwrap();
}

/// `try_acquire` "takes the lock if nobody is ahead; `Ok(None)` otherwise". On a handle whose
/// own guard is held, something is ahead: it must answer `Ok(None)`, not wait (locally, on the
/// handle's gate) until that guard is released. The same for `Election::try_acquire` ("leads if
/// no other candidate is queued; `Ok(None)` otherwise").
#[tokio::test(flavor = "multi_thread")]
async fn try_acquire_on_a_handle_whose_guard_is_held_answers_instead_of_waiting() {
    let c = shared_client().await;
    let path = unique("r9-try-own");
    let lock = Lock::new(&c, &path, "me");
    let g = lock.acquire().await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(20), lock.try_acquire()).await;
    assert!(
        matches!(r, Ok(Ok(None))),
        "Lock::try_acquire on a handle whose guard is held: {r:?} (Err(Elapsed): still \
         waiting after 20 s for the handle's own guard to be released)"
    );
    g.release().await.unwrap();

    let epath = unique("r9-try-own-election");
    let e = Election::new(&c, &epath, "me");
    let leading = e.acquire().await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(20), e.try_acquire()).await;
    assert!(
        matches!(r, Ok(Ok(None))),
        "Election::try_acquire on a candidate that leads: {r:?} (Err(Elapsed): still \
         waiting after 20 s)"
    );
    leading.release().await.unwrap();
}

/// `Guard::fence`: "put it first in a `Client::multi` and the transaction only applies while
/// the node exists (our session is alive and nobody deleted it)"; the `Lock` docs show
/// `client.multi(vec![guard.fence(), ..])` as the way to make writes conditional on still
/// holding the lock. A guard lost because its node was deleted must not pass its fence again:
/// but once the lock's (empty) parent is deleted too (an operator tidying up, a container
/// node, `lock_parent_deleted_between_acquisitions_is_created_again`), the parent's sequence
/// counter starts again at 0 and the handle's next guard gets the very same path, per-handle
/// uuid included.
#[tokio::test(flavor = "multi_thread")]
async fn fence_of_a_guard_lost_to_deletion_does_not_pass_after_its_path_is_reused() {
    let c = shared_client().await;
    let path = unique("r9-fence-reuse");
    let target = format!("{path}-data");
    c.create(&target, b"", zk_core::CreateMode::Persistent)
        .await
        .unwrap();
    let lock = Lock::new(&c, &path, "me");
    let g1 = bounded("first acquire", lock.acquire()).await.unwrap();
    // someone deletes the holder's node, then the empty lock directory
    c.delete(g1.path(), None).await.unwrap();
    c.delete(&path, None).await.unwrap();
    assert_eq!(bounded("g1 lost", g1.lost()).await, LostReason::NodeDeleted);
    // the handle acquires again (another task on it, or the same after the loss)
    let g2 = bounded("second acquire", lock.acquire()).await.unwrap();
    assert!(g2.is_held());
    let stale = c
        .multi(vec![
            g1.fence(),
            Op::set_data(target.clone(), b"stale".to_vec(), None),
        ])
        .await;
    assert!(
        stale.is_err(),
        "the fence of a guard lost to the deletion of its node passed: its path {} is the \
         path of the handle's new guard {}; the write under the lost guard applied: {stale:?}",
        g1.path(),
        g2.path()
    );
    g2.release().await.unwrap();
}

/// What a spawned call came to: its output, or the panic message.
async fn outcome<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    tokio::spawn(f).await.map_err(|e| {
        let p = e.into_panic();
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}

/// The `*_timeout(d)` forms are "one total deadline" with "a passed deadline is always
/// `Ok(None)`, never an error" (crate docs); the barriers saturate a huge timeout to a far
/// future (`deadline_after`). `Lock`, `Election` and `Semaphore` compute `now + timeout` and
/// panic on overflow instead: `acquire_timeout(Duration::MAX)` on a free lock must take it.
#[tokio::test(flavor = "multi_thread")]
async fn acquire_timeout_with_a_huge_timeout_takes_a_free_lock_instead_of_panicking() {
    let c = shared_client().await;
    let mut wrong = Vec::new();
    let lock = Lock::new(&c, &unique("r9-huge-lock"), "me");
    match outcome(async move { lock.acquire_timeout(Duration::MAX).await }).await {
        Ok(Ok(Some(g))) => g.release().await.unwrap(),
        other => wrong.push(format!("Lock::acquire_timeout(Duration::MAX): {other:?}")),
    }
    let e = Election::new(&c, &unique("r9-huge-election"), "me");
    match outcome(async move { e.acquire_timeout(Duration::MAX).await }).await {
        Ok(Ok(Some(g))) => g.release().await.unwrap(),
        other => wrong.push(format!(
            "Election::acquire_timeout(Duration::MAX): {other:?}"
        )),
    }
    let s = Semaphore::new(&c, &unique("r9-huge-sem"), "me", 1).unwrap();
    match outcome(async move { s.acquire_timeout(Duration::MAX).await }).await {
        Ok(Ok(Some(g))) => g.release().await.unwrap(),
        other => wrong.push(format!(
            "Semaphore::acquire_timeout(Duration::MAX): {other:?}"
        )),
    }
    // the barriers do it right (the reference)
    let b = zk_recipes::Barrier::new(&c, &unique("r9-huge-barrier"));
    match outcome(async move { b.wait_timeout(Duration::MAX).await }).await {
        Ok(Ok(Some(()))) => {}
        other => wrong.push(format!("Barrier::wait_timeout(Duration::MAX): {other:?}")),
    }
    assert!(wrong.is_empty(), "huge timeouts: {wrong:#?}");
}

/// `KazooRetry::deadline`: "overall time limit, counted from the start of the first
/// attempt"; a limit too far away to matter must not panic the runner (`Instant + Duration`
/// overflow in `begin`).
#[tokio::test]
async fn kazoo_retry_with_a_huge_deadline_runs_instead_of_panicking() {
    let policy = KazooRetry::single_attempt().deadline(Some(Duration::MAX));
    let r =
        outcome(async move { retry(&policy, || async { Ok::<_, zk_core::Error>(7) }).await }).await;
    assert!(
        matches!(r, Ok(Ok(7))),
        "retry under KazooRetry::deadline(Some(Duration::MAX)): {r:?}"
    );
}

/// The same path reuse, worse: a lost guard that is dropped deletes "its" node in the
/// background, which by then is the node of the handle's next guard, held by someone else
/// (another task on the handle). That guard is lost through no fault of its own, and a peer
/// can take the lock. A `Guard` promises that it is lost only "when the session is lost, when
/// the node is deleted [by someone else: `LostReason::NodeDeleted`], and ... when the
/// connection is suspended"; dropping an already lost guard is none of these.
#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_lost_guard_does_not_delete_the_next_guard_of_its_handle() {
    let c = shared_client().await;
    let path = unique("r9-drop-reuse");
    let lock = Lock::new(&c, &path, "me");
    let g1 = bounded("first acquire", lock.acquire()).await.unwrap();
    c.delete(g1.path(), None).await.unwrap();
    c.delete(&path, None).await.unwrap();
    assert_eq!(bounded("g1 lost", g1.lost()).await, LostReason::NodeDeleted);
    let g2 = bounded("second acquire", lock.acquire()).await.unwrap();
    assert!(g2.is_held());
    // the task that held g1 is done with it
    drop(g1);
    if let Ok(reason) = tokio::time::timeout(Duration::from_secs(10), g2.lost()).await {
        panic!(
            "dropping an already lost guard took the lock from the handle's next guard {}: \
             lost ({reason:?}); children now {:?}",
            g2.path(),
            children(&c, &path).await
        );
    }
    g2.release().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Added with the fixes (branch fix9): the guard side of the path reuse, seen with a handle whose
// uuid is pinned (so its paths do come back), and the lost signal outliving its guard.

/// A guard lost to the deletion of its node knows its node is gone: whatever is at its path
/// later is someone else's. Releasing it, or dropping it, must delete nothing, even when the
/// path came back (here: a handle with a pinned uuid, whose next node after the parent was
/// re-created has the very same path).
#[tokio::test(flavor = "multi_thread")]
async fn a_guard_lost_to_deletion_deletes_nothing_on_release_or_drop_even_on_a_reused_path() {
    let c = shared_client().await;
    for how in ["release", "drop"] {
        let path = unique("r9-lost-deletes-nothing");
        let lock = Lock::new(&c, &path, "me").with_uuid(uuid::Uuid::new_v4());
        let g1 = bounded("first acquire", lock.acquire()).await.unwrap();
        c.delete(g1.path(), None).await.unwrap();
        c.delete(&path, None).await.unwrap();
        assert_eq!(bounded("g1 lost", g1.lost()).await, LostReason::NodeDeleted);
        let g2 = bounded("second acquire", lock.acquire()).await.unwrap();
        assert_eq!(g1.path(), g2.path(), "the staging did not reuse the path");
        if how == "release" {
            // returns once the lost guard is given up: its deletion, if any, is done
            bounded("releasing the lost guard", g1.release())
                .await
                .unwrap();
            assert!(
                c.exists(g2.path()).await.unwrap().is_some(),
                "releasing a guard lost to deletion deleted the node now at its path"
            );
        } else {
            drop(g1);
            if let Ok(reason) = tokio::time::timeout(Duration::from_secs(10), g2.lost()).await {
                panic!("dropping a guard lost to deletion took the next guard: {reason:?}");
            }
        }
        assert!(g2.is_held(), "{how}: {:?}", g2.lost_signal().reason());
        g2.release().await.unwrap();
    }
}

/// `LostReason::Suspended` is "refined to `SessionLost` if the client later learns that the
/// session expired". A `LostSignal` clone handed to a worker must be refined too after the
/// guard itself was dropped (the worker's task may outlive the guard's owner).
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_signal_clone_is_refined_after_its_guard_is_dropped() {
    let server = zk_testkit::shared_server();
    let path = unique("r9-refine-after-drop");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let pc = common::client(&proxy.connect_string()).await;
    let g = Lock::new(&pc, &path, "holder").acquire().await.unwrap();
    let signal = g.lost_signal();
    let sid = pc.session_id();
    proxy.blackhole();
    assert_eq!(bounded("lost", g.lost()).await, LostReason::Suspended);
    drop(g);
    let (_, pw) = pc.session_credentials();
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .unwrap();
    proxy.heal();
    common::eventually("the client is in a new session", || async {
        pc.state() == State::Connected && pc.session_id() != sid
    })
    .await;
    common::eventually(
        "the dropped guard's signal says the session was lost",
        || async { signal.reason() == Some(LostReason::SessionLost) },
    )
    .await;
}

/// `try_acquire` answers `Ok(None)` only when something is ahead. A free lock whose server
/// cannot be reached (the client's queue timeout fails the try's requests) is no such answer:
/// the try must fail with the error, not say "taken".
#[tokio::test(flavor = "multi_thread")]
async fn try_acquire_while_the_server_is_unreachable_fails_instead_of_answering_taken() {
    let server = zk_testkit::shared_server();
    let path = unique("r9-try-outage");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let pc = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(4))
        // the session is short for what the test does; the first one may take longer to get
        .connect_timeout(Duration::from_secs(60))
        .connect()
        .await
        .expect("connect");
    let lock = Lock::new(&pc, &path, "me");
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&pc, State::Lost).await;
    let r = bounded("try_acquire during the outage", lock.try_acquire()).await;
    assert!(
        r.is_err(),
        "Lock::try_acquire on a free lock whose server is unreachable: {r:?}"
    );
    proxy.reject_new(false);
    wait_state(&pc, State::Connected).await;
    let g = bounded("try_acquire after the outage", lock.try_acquire())
        .await
        .unwrap()
        .expect("the free lock");
    g.release().await.unwrap();
}

/// The same as the outage, for a client built with `request_timeout`: a slow server times
/// each request out; a blocking acquire (Lock, Semaphore) waits that out instead of ending
/// with `Err(Timeout)`.
#[tokio::test(flavor = "multi_thread")]
async fn blocking_acquire_waits_through_request_timeouts() {
    let server = zk_testkit::shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let pc = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(20))
        .request_timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect("connect");
    proxy.set_delay(Duration::from_millis(800));
    let lock = Lock::new(&pc, &unique("r9-slow-lock"), "me");
    let sem = Semaphore::new(&pc, &unique("r9-slow-sem"), "me", 1).unwrap();
    let l = tokio::spawn(async move { lock.acquire().await });
    let s = tokio::spawn(async move { sem.acquire().await });
    // long enough for several request timeouts
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (what, t) in [("Lock::acquire", &l), ("Semaphore::acquire", &s)] {
        assert!(
            !t.is_finished(),
            "{what} ended while every request timed out (it cannot have succeeded)"
        );
    }
    proxy.set_delay(Duration::ZERO);
    let gl = bounded("the lock after the slow phase", l).await.unwrap();
    let gs = bounded("the lease after the slow phase", s).await.unwrap();
    gl.expect("Lock::acquire").release().await.unwrap();
    gs.expect("Semaphore::acquire").release().await.unwrap();
}
