//! The aim of the nemesis' `expire-admitted`: [`admitted_waiter`] names the session that holds
//! the max-1 semaphore's admission lock while it waits for room, and nobody else (not the
//! holder, not a waiter still queued for admission, nobody while there is room). Against one
//! real server.

use std::time::Duration;
use tokio::time::Instant;
use zk_chaos::workload::semaphore::{admitted_waiter, sem1};
use zk_core::Client;
use zk_recipes::Semaphore;
use zk_testkit::ZkServer;

async fn client(server: &ZkServer) -> Client {
    Client::builder(server.connect_string())
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

/// Polls the aim every 50 ms until it is `want`, at most 30 s.
async fn aim_becomes(zk: &Client, want: Option<i64>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = admitted_waiter(zk).await.expect("read the admission queue");
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: the aim is {got:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_admitted_aims_at_the_waiter_holding_admission_and_at_nobody_else() {
    let server = ZkServer::start().expect("start ZooKeeper");
    let nemesis = client(&server).await;
    let (holder, first, second) = (
        client(&server).await,
        client(&server).await,
        client(&server).await,
    );
    let sem = |c: &Client, who: &str| Semaphore::new(c, &sem1(), who, 1).expect("max 1");

    // nobody there yet, then a holder alone: room, or nobody waiting
    assert_eq!(admitted_waiter(&nemesis).await.expect("read"), None);
    let lease = sem(&holder, "holder")
        .acquire_timeout(Duration::from_secs(20))
        .await
        .expect("acquire")
        .expect("the holder takes the free lease");
    aim_becomes(&nemesis, None, "no aim while nobody waits").await;

    // the first waiter is admitted and waits for room; the second queues behind it
    let s1 = sem(&first, "first");
    let w1 = tokio::spawn(async move { s1.acquire_timeout(Duration::from_secs(60)).await });
    aim_becomes(
        &nemesis,
        Some(first.session_id()),
        "the first waiter, admitted and waiting for room",
    )
    .await;
    let s2 = sem(&second, "second");
    let w2 = tokio::spawn(async move { s2.acquire_timeout(Duration::from_secs(60)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        admitted_waiter(&nemesis).await.expect("read"),
        Some(first.session_id()),
        "the aim moved off the admitted waiter when another queued behind it"
    );

    // the holder leaves: the first waiter takes the lease, the second is admitted and waits
    lease.release().await.expect("release");
    let g1 = w1
        .await
        .expect("join")
        .expect("acquire")
        .expect("the first waiter takes the lease");
    aim_becomes(
        &nemesis,
        Some(second.session_id()),
        "the second waiter, admitted once the first took the lease",
    )
    .await;
    g1.release().await.expect("release");
    let g2 = w2
        .await
        .expect("join")
        .expect("acquire")
        .expect("the second waiter takes the lease");
    aim_becomes(&nemesis, None, "no aim once nobody waits").await;
    g2.release().await.expect("release");
}
