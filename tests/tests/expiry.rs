//! Real, server-side session expiry (the test kit re-attaches to the session and closes it).

mod common;

use common::{bounded, wait_state};
use futures::StreamExt;
use std::time::Duration;
use zk_core::{AddWatchMode, Client, CreateMode, Error, KeeperState, State};
use zk_testkit::{expire_session, FaultProxy};

#[tokio::test(flavor = "multi_thread")]
async fn expiry_is_lost_and_everything_waiting_learns_it_then_a_new_session() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("expiry");
    let direct = common::chroot_client(&server.connect_string(), &root).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(format!("{}{root}", proxy.connect_string()))
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    let (sid, passwd) = c.session_credentials();
    assert_eq!(c.status().generation, 1);
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    c.create("/x", b"", CreateMode::Persistent).await.unwrap();
    let (_, _, data_w) = c.get_data_watch("/x").await.unwrap();
    let (_, exist_w) = c.exists_watch("/missing").await.unwrap();
    let mut pers = c
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let mut states = c.state_stream();

    // cut the client off and keep it off, then queue a request
    proxy.reject_new(true);
    proxy.reset();
    assert_eq!(
        bounded("suspend", states.next()).await.unwrap().state,
        State::Suspended
    );
    let pending = tokio::spawn({
        let c = c.clone();
        async move { c.get_data("/x").await }
    });

    // the server expires the session: its ephemeral is gone at once
    expire_session(server.addr(), sid, &passwd).await.unwrap();
    assert_eq!(direct.exists("/eph").await.unwrap(), None);

    // the client learns it when it reaches the server again
    proxy.reject_new(false);
    let lost = bounded("lost", states.next()).await.unwrap();
    assert_eq!(
        (lost.state, lost.keeper_state),
        (State::Lost, KeeperState::Expired)
    );
    assert!(matches!(
        bounded("pending", pending).await.unwrap(),
        Err(Error::SessionExpired)
    ));
    assert!(matches!(
        bounded("data watch", data_w).await,
        Err(Error::SessionExpired)
    ));
    assert!(matches!(
        bounded("exist watch", exist_w).await,
        Err(Error::SessionExpired)
    ));
    assert!(matches!(
        bounded("stream", pers.next()).await,
        Some(Err(Error::SessionExpired))
    ));
    assert!(pers.next().await.is_none());

    // default: a new session follows
    let new = bounded("new session", states.next()).await.unwrap();
    assert_eq!(new.state, State::Connected);
    assert_ne!(new.session_id, sid);
    assert_eq!(new.generation, 2);
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    assert_eq!(
        direct
            .exists("/eph")
            .await
            .unwrap()
            .unwrap()
            .ephemeral_owner,
        c.session_id()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_while_connected_and_lost_as_a_terminal_state() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let c = Client::builder(server.connect_string())
        .session_timeout(Duration::from_secs(20))
        .reconnect_after_expiry(false)
        .connect()
        .await
        .unwrap();
    let (sid, passwd) = c.session_credentials();
    let (_, w) = c.exists_watch("/never-created-here").await.unwrap();
    // kicks the connected client off; it reconnects and hears "expired"
    expire_session(server.addr(), sid, &passwd).await.unwrap();
    wait_state(&c, State::Lost, Duration::from_secs(20)).await;
    assert_eq!(c.status().keeper_state, KeeperState::Expired);
    assert!(matches!(
        bounded("watch", w).await,
        Err(Error::SessionExpired)
    ));
    // terminal: new requests fail with SessionExpired, and no new session is made
    assert!(matches!(c.exists("/").await, Err(Error::SessionExpired)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.state(), State::Lost);
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_helper_wins_against_a_client_that_reattaches_at_once() {
    // the client re-attaches immediately after being kicked off, which in turn kicks the test
    // kit's connection off: expire_session must still get its closeSession through
    let server = zk_testkit::shared_server();
    let c = Client::builder(server.connect_string())
        .session_timeout(Duration::from_secs(20))
        .reconnect_jitter(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    for round in 1..=5u64 {
        let mut states = c.state_stream();
        let (sid, passwd) = c.session_credentials();
        expire_session(server.addr(), sid, &passwd).await.unwrap();
        loop {
            let s = bounded("new session", states.next()).await.unwrap();
            if s.state == State::Connected && s.session_id != sid {
                assert_eq!(s.generation, round + 1);
                break;
            }
        }
    }
}
