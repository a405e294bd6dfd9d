//! `Barrier::remove` (and `Barrier::create`, the last test) must not claim "nothing was done"
//! after an attempt that may have deleted (created) the barrier (zk-chaos, seed 2026, barrier workload: a waiter passed the barrier "although it
//! stood during its whole wait").
//!
//! In the campaign the coordinator's `remove` was invoked at 69.04 s, the leader was
//! partitioned off at 69.14 s, and the call returned "session expired" at 72.59 s: a `fail`,
//! the client's promise that nothing was applied. A waiter in a new session passed at 73.74 s,
//! before the coordinator's next `create` completed (73.90 s): the barrier was down, so the
//! remove had been applied after all. The recipe retries a delete whose reply was lost; when
//! the retry meets the expired session, it returned `SessionExpired`, which
//! `may_have_been_applied()` says was not applied.
//!
//! Replayed here against one standalone server: the delete is applied and the connection cut
//! before its reply, the client cannot reconnect until its session has been expired, and it
//! does not start a new one (`reconnect_after_expiry(false)`), so every retry meets the expiry.

mod common;

use common::{bounded, unique, wait_state};
use std::time::Duration;
use zk_core::{Client, State};
use zk_recipes::barrier::Barrier;
use zk_testkit::{FaultProxy, ZkServer};

/// zk-core sends a delete as opcode 2.
const DELETE: i32 = 2;
/// zk-core sends a create as create2 (opcode 15).
const CREATE2: i32 = 15;

/// Which barrier call the replay makes.
#[derive(Clone, Copy, PartialEq)]
enum Call {
    Remove,
    Create,
}

/// Runs `call` on a client behind a proxy that applies the call's request and cuts the reply;
/// the client cannot come back until its session is gone (and will not start a new one). Checks
/// the cut request was applied, then that the call's answer, if an error, admits it may have been.
async fn replay_applied_then_expired(call: Call) {
    let server = ZkServer::start().expect("start ZooKeeper");
    let direct = common::client(&server.connect_string()).await;
    let (p, opcode, what) = match call {
        Call::Remove => (unique("barrier-remove-expired"), DELETE, "delete"),
        Call::Create => (unique("barrier-create-expired"), CREATE2, "create"),
    };
    if call == Call::Remove {
        Barrier::new(&direct, &p)
            .create()
            .await
            .expect("raise the barrier");
    }

    let proxy = FaultProxy::start(server.addr())
        .await
        .expect("start the proxy");
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(10))
        .reconnect_after_expiry(false)
        .connect()
        .await
        .expect("connect through the proxy");
    // the request reaches the server, its reply does not reach the client, and the client
    // cannot come back until its session is gone
    proxy.reject_new(true);
    proxy.cut_after_request(opcode);
    let task = tokio::spawn({
        let b = Barrier::new(&c, &p);
        async move {
            match call {
                Call::Remove => b.remove().await.map(|_| ()),
                Call::Create => b.create().await,
            }
        }
    });
    wait_state(&c, State::Suspended).await;
    assert_eq!(proxy.cuts_fired(), 1, "the cut on the {what} fired");
    let up = direct
        .exists(&p)
        .await
        .expect("look for the barrier")
        .is_some();
    match call {
        Call::Remove => assert!(!up, "the cut delete was applied: the barrier is down"),
        Call::Create => assert!(up, "the cut create was applied: the barrier is up"),
    }
    let (sid, pw) = c.session_credentials();
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .expect("expire the caller's session");
    proxy.reject_new(false);

    let r = bounded(&format!("the {what} after the expiry"), task)
        .await
        .expect("the barrier task");
    // `Ok(_)` is fine (whichever attempt did it); an error must admit it may have been applied
    if let Err(e) = &r {
        let claim = match call {
            Call::Remove => "remove deleted the barrier",
            Call::Create => "create put the barrier up",
        };
        assert!(
            e.may_have_been_applied(),
            "{claim}, yet returned {e:?}, an error that says nothing was applied"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_remove_applied_then_session_expired_is_not_reported_as_not_applied() {
    replay_applied_then_expired(Call::Remove).await;
}

/// The same for `Barrier::create`: the campaign's coordinator's `create` also returned
/// "session expired" three times (seed 2026, 54.99, 80.66 and 100.56 s), an error that says the
/// barrier was not put up, after attempts whose replies were lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_create_applied_then_session_expired_is_not_reported_as_not_applied() {
    replay_applied_then_expired(Call::Create).await;
}
