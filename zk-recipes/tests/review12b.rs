//! Review of issue 12's TreeCache, Queue and LockingQueue (helper rev12b): each test is named
//! after the defect or the guarantee it pins, against a real server.

mod common;

use common::{bounded, children, client, eventually, shared_client, unique};
use std::time::Duration;
use zk_core::{CreateMode, Error};
use zk_recipes::{LockingQueue, Queue};
use zk_testkit::{shared_server, FaultProxy};

/// ZooKeeper opcodes, for `FaultProxy` traps.
const OP_GET_DATA: i32 = 4;
const OP_MULTI: i32 = 14;

/// One client shared by two consumers (two tasks, or two handles, of one process) is one
/// session: a taken node of that session is not necessarily the one this take created. Here
/// the take's transaction fails (the entry is held by the other consumer of the session: its
/// taken node, created while our take was between its read and its transaction) and the
/// reply is lost: settling by the taken node's owner alone adopted the other consumer's hold,
/// and handed the entry out a second time while it was held.
#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_lost_take_reply_does_not_adopt_a_hold_of_another_consumer_of_the_session() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("r12b-sibling");
    let q = LockingQueue::new(&c, &p);
    let entry = q.put(b"one", 100).await.unwrap();
    let name = entry.rsplit('/').next().unwrap().to_owned();
    let taken = format!("{p}/taken/{name}");
    // our take has listed the entry as free; its read of the entry waits in the proxy
    proxy.hold_request(&[OP_GET_DATA]);
    let qb = q.clone();
    let b = tokio::spawn(async move { qb.try_get().await });
    eventually("the take's read held in the proxy", || async {
        proxy.held_requests() == 1
    })
    .await;
    // meanwhile the other consumer of this session takes the entry (what its take leaves:
    // the taken node, an ephemeral of the session), sent behind our read
    let c2 = c.clone();
    let t2 = taken.clone();
    let other = tokio::spawn(async move {
        c2.create(&t2, b"the other consumer", CreateMode::Ephemeral)
            .await
    });
    // (a moment for the create to reach the proxy, behind our read: were it late, it would
    // fail with the cut below and the test with it, never pass wrongly)
    tokio::time::sleep(Duration::from_millis(300)).await;
    // our take's transaction then fails (the entry is held) and its reply is lost
    proxy.cut_after_request(OP_MULTI);
    proxy.release_held();
    // (its reply may be lost with the cut too: the server's state below tells)
    let _ = bounded("the other consumer's take", other).await.unwrap();
    let got = bounded("the take that lost its reply", b)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(proxy.cuts_fired(), 1, "the take's reply was cut");
    assert!(
        got.is_none(),
        "the entry was handed out while another consumer of the session held it: {:?}",
        got.as_ref().map(|e| e.name().to_owned())
    );
    let (data, st) = direct
        .get_data(&taken)
        .await
        .expect("the other consumer's taken node");
    assert_eq!(data, b"the other consumer");
    assert_eq!(st.ephemeral_owner, c.session_id());
    direct.delete(&taken, None).await.unwrap();
}

/// The same hold, and our take dropped while its transaction is in flight: the background
/// release of a take that may have applied must not delete the other consumer's taken node
/// (the entry would be free for a third consumer while the other one works on it).
#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_dropped_take_does_not_release_a_hold_of_another_consumer_of_the_session() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("r12b-sibling-drop");
    let q = LockingQueue::new(&c, &p);
    let entry = q.put(b"one", 100).await.unwrap();
    let name = entry.rsplit('/').next().unwrap().to_owned();
    let taken = format!("{p}/taken/{name}");
    proxy.hold_request(&[OP_GET_DATA]);
    let qb = q.clone();
    let b = tokio::spawn(async move { qb.try_get().await });
    eventually("the take's read held in the proxy", || async {
        proxy.held_requests() == 1
    })
    .await;
    let c2 = c.clone();
    let t2 = taken.clone();
    let other = tokio::spawn(async move {
        c2.create(&t2, b"the other consumer", CreateMode::Ephemeral)
            .await
    });
    // the reply of our take's transaction is lost: the take waits for the connection to
    // settle it; the connection is kept from coming back until our take is dropped
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.reject_new(true);
    proxy.cut_after_request(OP_MULTI);
    proxy.release_held();
    // (its reply may be lost with the cut too: the server's state below tells)
    let _ = bounded("the other consumer's take", other).await.unwrap();
    eventually("the take's reply cut", || async { proxy.cuts_fired() == 1 }).await;
    b.abort();
    let _ = b.await;
    proxy.reject_new(false);
    common::wait_state(&c, zk_core::State::Connected).await;
    let (data, st) = direct
        .get_data(&taken)
        .await
        .expect("the other consumer's taken node");
    assert_eq!(data, b"the other consumer");
    assert_eq!(st.ephemeral_owner, c.session_id());
    // the background release (if any) runs once connected: give it time to act (this checks
    // that something does not happen)
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        direct.exists(&taken).await.unwrap().is_some(),
        "the other consumer's taken node was deleted by the dropped take's background release"
    );
    direct.delete(&taken, None).await.unwrap();
}

/// `Queue::new(c, "")` / `LockingQueue::new(c, "")`: an empty path is not one ZooKeeper takes,
/// but the entry path built from it (`/entry-100-`, `/entries`, `/taken`) is: the queue
/// silently put its entries at the root. Refused with `BadPath`, nothing sent.
#[tokio::test(flavor = "multi_thread")]
async fn queue_with_an_empty_path_is_refused_not_put_at_the_root() {
    let c = shared_client().await;
    let before = children(&c, "/").await;
    let q = Queue::new(&c, "");
    let r = q.put(b"x", 100).await;
    if let Ok(p) = &r {
        let _ = c.delete(p, None).await;
    }
    assert!(
        matches!(r, Err(Error::BadPath(_))),
        "Queue with an empty path: {r:?}"
    );
    let lq = LockingQueue::new(&c, "");
    let r = lq.put(b"x", 100).await;
    if let Ok(p) = &r {
        let _ = c.delete(p, None).await;
    }
    assert!(
        matches!(r, Err(Error::BadPath(_))),
        "LockingQueue with an empty path: {r:?}"
    );
    let r = lq.try_get().await.map(|e| e.map(|e| e.name().to_owned()));
    assert!(
        matches!(r, Err(Error::BadPath(_))),
        "LockingQueue::try_get with an empty path: {r:?}"
    );
    let after = children(&c, "/").await;
    for n in after.iter().filter(|n| !before.contains(n)) {
        if n.starts_with("entry-") || n == "entries" || n == "taken" {
            let _ = c.delete(&format!("/{n}"), None).await;
        }
    }
}
