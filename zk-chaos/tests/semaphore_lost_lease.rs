//! The campaign's "semaphore over-admission" (`/chaos/sem2 (max 2) had 3 fenced holders at
//! once`), replayed deterministically against one real server with no server fault at all.
//!
//! Holder A's `enter` (its marker create, fenced by its lease) is applied by the server and the
//! connection is cut before the reply (the nemesis's `cut` on opcode 14). A's client is
//! SUSPENDED, so A's guard is lost (the semaphore's default `LostPolicy::Suspended`), and once
//! the client is back in the same session the guard's monitor gives the lease up: it deletes
//! the lease node. A's marker is in the same session but nobody deletes it yet (A's workload
//! is still between `enter` and `exit`). Two others take the two free leases and enter: the
//! marker directory now holds three markers while the semaphore never had more than two
//! leases. A's marker is not a fenced holder any more: its lease is gone.

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use zk_chaos::checker::semaphore;
use zk_chaos::cluster::ClientNet;
use zk_chaos::history::{Outcome, Recorder};
use zk_chaos::workload::semaphore as workload;
use zk_chaos::workload::{Ctx, Phases};
use zk_recipes::Semaphore;
use zk_testkit::ZkServer;

/// zk-core sends a `multi` as opcode 14.
const MULTI: i32 = 14;

/// Polls `cond` every 50 ms until it holds, at most 30 s.
async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marker_of_a_holder_whose_lease_was_given_up_is_not_a_fenced_holder() {
    let server = ZkServer::start().expect("start ZooKeeper");
    let rec = Arc::new(Recorder::new(None).expect("in-memory history"));
    let start = Instant::now();
    let end = start + Duration::from_secs(600);
    let phases = Phases {
        start,
        heal: end,
        quiesce: end,
        end,
    };
    let mut nets = Vec::new();
    let mut ctxs = Vec::new();
    for id in 0..3i64 {
        let net = ClientNet::start(id, "semaphore", &[server.addr()])
            .await
            .expect("start the client's proxy");
        let idx = usize::try_from(id).expect("small id");
        let ctx = Ctx::connect(
            Arc::clone(&rec),
            &net,
            (idx, 3),
            StdRng::seed_from_u64(idx as u64),
            phases,
        )
        .await
        .expect("connect through the proxy");
        nets.push(net);
        ctxs.push(ctx);
    }
    workload::setup(&ctxs[0].zk)
        .await
        .expect("create the marker directories");
    let (sem, max) = workload::semaphores()
        .into_iter()
        .find(|(_, max)| *max == 2)
        .expect("the workload has a max-2 semaphore");
    let (a, b, c) = (&ctxs[0], &ctxs[1], &ctxs[2]);

    // A holds a lease; its enter is applied, then its connection is cut before the reply
    let sem_a = Semaphore::new(&a.zk, &sem, "c0", max).expect("semaphore handle");
    let guard_a = sem_a
        .acquire_timeout(Duration::from_secs(30))
        .await
        .expect("A's acquisition")
        .expect("A gets a lease");
    // as the workload does: the guard's lost signal goes into the history
    zk_chaos::workload::record_lost(a, &guard_a);
    let marker_a = format!("{sem}-in/c0-1");
    nets[0].proxies[0].cut_after_request(MULTI);
    let entered = workload::enter(a, &sem, &guard_a, &marker_a).await;
    assert!(
        entered.is_err(),
        "A's enter was cut before its reply, yet it returned {entered:?}"
    );
    assert_eq!(
        nets[0].proxies[0].cuts_fired(),
        1,
        "the cut on A's multi fired"
    );
    tokio::time::timeout(Duration::from_secs(30), guard_a.lost())
        .await
        .expect("A's guard reported lost after the suspension");
    // back in the same session, the lost guard's monitor deletes the lease; the marker stays
    let lease_a = guard_a.path().to_owned();
    wait_for("A's lost guard to give its lease up", || async {
        matches!(b.zk.exists(&lease_a).await, Ok(None))
    })
    .await;
    assert_eq!(
        a.zk.session_id(),
        guard_a.session_id(),
        "A kept its session"
    );
    assert!(
        b.zk.exists(&marker_a)
            .await
            .expect("look for A's marker")
            .is_some(),
        "A's marker was applied before the cut and outlives A's lease"
    );

    // B and C take the two free leases and enter; B looks at the markers
    let sem_b = Semaphore::new(&b.zk, &sem, "c1", max).expect("semaphore handle");
    let sem_c = Semaphore::new(&c.zk, &sem, "c2", max).expect("semaphore handle");
    let guard_b = sem_b
        .acquire_timeout(Duration::from_secs(30))
        .await
        .expect("B's acquisition")
        .expect("B gets a lease");
    let guard_c = sem_c
        .acquire_timeout(Duration::from_secs(30))
        .await
        .expect("C's acquisition")
        .expect("C gets a lease");
    workload::enter(b, &sem, &guard_b, &format!("{sem}-in/c1-1"))
        .await
        .expect("B enters");
    workload::enter(c, &sem, &guard_c, &format!("{sem}-in/c2-1"))
        .await
        .expect("C enters");
    workload::observe(b, &sem, max).await;

    let history = rec.history();
    let observe = history
        .ops_of("semaphore")
        .rfind(|o| o.op == "observe")
        .expect("B's observe was recorded");
    assert_eq!(observe.outcome, Outcome::Ok, "B's observe: {observe:?}");
    let markers = observe.result["holders"]
        .as_array()
        .expect("the markers listed")
        .len();
    assert_eq!(markers, 3, "A's stale marker and B's and C's: {observe:?}");
    let result = semaphore::check(&history);
    assert!(
        result.violations.is_empty(),
        "a marker whose lease was given up counted as a fenced holder: {:?}",
        result
            .violations
            .iter()
            .map(|v| &v.message)
            .collect::<Vec<_>>()
    );
    // the recipe itself never had more than max leases: the same snapshot lists them
    let leases = observe.result["leases"]
        .as_array()
        .expect("the leases listed in the same snapshot")
        .len();
    assert_eq!(leases, 2, "B's and C's leases only: {observe:?}");
    drop(guard_a);
    for g in [guard_b, guard_c] {
        g.release().await.expect("release");
    }
}
