//! Adversarial review of zk-core (round 8b) against a real ZooKeeper 3.8: each test pins down
//! one finding (a documented promise that does not hold) and fails on the code it was written
//! against; each is named after the finding.

mod common;

use common::{bounded, wait_state};
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, State};
use zk_testkit::{FaultProxy, ZkServer};

/// `Client::detach`: "Stops the client **without** closing its session ... Every clone fails
/// with [`Error::Closed`] afterwards". The session task only checks for a detach right after
/// the first command of a wake-up; a `Detach` taken in the same batch as a request before it
/// is recorded and then ignored: the client keeps serving (and pinging) the session, `detach()`
/// never returns, and a clone's requests still succeed.
///
/// A current-thread runtime makes the batch certain: both commands are on the channel before
/// the session task runs.
#[tokio::test]
async fn detach_queued_behind_a_request_never_stops_the_client() {
    let c = common::shared("detach-batch").await;
    let clone = c.clone();
    let mut req = Box::pin(clone.exists("/"));
    assert!(futures::poll!(&mut req).is_pending());
    let mut det = Box::pin(c.detach());
    assert!(futures::poll!(&mut det).is_pending());
    let r = bounded("the request ahead of detach", &mut req).await;
    assert!(r.is_ok(), "{r:?}");
    let detached = tokio::time::timeout(Duration::from_secs(20), &mut det).await;
    let later = clone
        .with_timeout(Duration::from_secs(10))
        .exists("/")
        .await;
    assert!(
        detached.is_ok() && matches!(later, Err(Error::Closed)),
        "detach() queued right behind a request: returned within 20 s: {}; a clone's exists \
         afterwards: {later:?} (expected detach() to return and Closed)",
        detached.is_ok()
    );
}

/// `Client::fail_if_disconnected`: "issued while the client is disconnected, they fail at once
/// with [`Error::NotConnected`] (not sent, not applied). A success therefore always comes from
/// a connection that was up when the request was issued, before any SUSPENDED was reported for
/// it". With SASL, the session task runs the SASL exchange of a new connection without reading
/// commands; a fail-fast request issued then (the state is SUSPENDED) waits for the exchange
/// and is sent on the new connection: a success for a request issued while SUSPENDED.
#[tokio::test(flavor = "multi_thread")]
async fn fail_fast_request_issued_while_suspended_during_sasl_is_sent_on_the_next_connection() {
    let (server, proxy) = sasl_server_behind_proxy().await;
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(40))
        .reconnect_jitter(Duration::from_millis(10))
        .sasl_digest_md5("bob", "bob-secret")
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    // every chunk takes 2 s through the proxy: the handshake of the next connection completes
    // ~4 s after it is accepted, the SASL exchange (two round trips) takes ~8 s more
    proxy.set_delay(Duration::from_secs(2));
    let accepted = proxy.connections_accepted();
    proxy.reset();
    wait_state(&c, State::Suspended, Duration::from_secs(30)).await;
    bounded("the reconnect connection", async {
        while proxy.connections_accepted() == accepted {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // the handshake is done, the SASL exchange is under way
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before = c.status();
    assert_eq!(
        before.state,
        State::Suspended,
        "precondition: still SUSPENDED while SASL runs"
    );
    let r = bounded(
        "fail-fast create",
        c.fail_if_disconnected()
            .create("/issued-while-suspended", b"", CreateMode::Persistent),
    )
    .await;
    let after = c.status();
    proxy.set_delay(Duration::ZERO);
    let direct = Client::connect(&server.connect_string()).await.unwrap();
    let applied = direct.exists("/issued-while-suspended").await.unwrap();
    assert!(
        matches!(r, Err(Error::NotConnected)) && applied.is_none(),
        "a fail_if_disconnected create issued while {:?} (session {sid:#x}): got {r:?}, node \
         applied: {}; status after: {:?}; expected NotConnected, not applied",
        before.state,
        applied.is_some(),
        after.state
    );
}

/// `Client::close`: "Closes the session ... and stops the client; every clone fails with
/// [`Error::Closed`] afterwards"; architecture.md: "sends `closeSession` after whatever is
/// already queued ... Later requests fail with `Closed`." While connected that holds (the
/// session task stops reading commands once closing). While disconnected it does not: a
/// request a clone issues after `close()` was called is queued like any other, written on the
/// connection the close re-attaches with, ahead of closeSession, and applied: a persistent
/// node created after `close()` was called, and the create reports success.
#[tokio::test(flavor = "multi_thread")]
async fn request_issued_after_close_while_disconnected_is_applied_before_close_session() {
    let (proxy, direct, via_proxy) = common::behind_proxy("after-close").await;
    let c = Client::builder(via_proxy)
        .session_timeout(Duration::from_secs(40))
        .close_timeout(Duration::from_secs(30))
        .reconnect_jitter(Duration::from_millis(10))
        .connect()
        .await
        .unwrap();
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended, Duration::from_secs(30)).await;
    let mut closing = Box::pin(c.close());
    assert!(futures::poll!(&mut closing).is_pending());
    // issued after close() was called: its first poll puts it behind the Close command on the
    // channel, while no server can be reached. On a multi-thread runtime the session task may
    // refuse it before that poll returns (Ready with the answer): either way it was issued
    // after close() and while disconnected, which is all the finding needs.
    let late = c.clone();
    let mut create = Box::pin(late.create("/created-after-close", b"", CreateMode::Persistent));
    let first_poll = futures::poll!(&mut create);
    proxy.reject_new(false);
    let closed = bounded("close", &mut closing).await;
    let created = match first_poll {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => bounded("the create issued after close()", &mut create).await,
    };
    let applied = direct.exists("/created-after-close").await.unwrap();
    assert!(
        matches!(created, Err(Error::Closed)) && applied.is_none(),
        "a create issued after close() (close said {closed:?}): got {created:?}, node applied: \
         {}; expected Closed and nothing applied",
        applied.is_some()
    );
}

/// `ClientBuilder::close_timeout`: "How long [`Client::close`] ... may take to reach a server and
/// have the session closed (default 2 s)"; lib.rs: "`close()` returns [`Error::Timeout`] if it
/// could not" (within the close timeout). While the SASL exchange of a new connection runs,
/// the session task reads no commands: a close issued then, on a link that went silent, waits
/// for the SASL exchange's own timeout (two thirds of the session timeout, ~27 s here), far past
/// the 2 s close timeout.
#[tokio::test(flavor = "multi_thread")]
async fn close_during_a_stalled_sasl_exchange_overruns_the_close_timeout() {
    let (_server, proxy) = sasl_server_behind_proxy().await;
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(40))
        .close_timeout(Duration::from_secs(2))
        .reconnect_jitter(Duration::from_millis(10))
        .sasl_digest_md5("bob", "bob-secret")
        .connect()
        .await
        .unwrap();
    // the handshake of the next connection completes ~4 s after it is accepted, then the link
    // goes silent in the middle of the SASL exchange
    proxy.set_delay(Duration::from_secs(2));
    let accepted = proxy.connections_accepted();
    proxy.reset();
    wait_state(&c, State::Suspended, Duration::from_secs(30)).await;
    bounded("the reconnect connection", async {
        while proxy.connections_accepted() == accepted {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    proxy.blackhole();
    let started = tokio::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(15), c.close()).await;
    assert!(
        r.is_ok(),
        "close() with a 2 s close timeout, issued during a stalled SASL exchange: still pending \
         after {:?} (it waits for the SASL exchange's own timeout)",
        started.elapsed()
    );
}

/// `ClientBuilder::connect`: "Connects, waiting for the first session. # Errors: A bad connect
/// string; [`Error::InvalidArgument`] ...; [`Error::ConnectFailed`] if no server answered within
/// the connect timeout; [`Error::AuthFailed`]." With a builder `auth`, a connection that breaks
/// after the handshake but before the auth reply makes `connect()` fail at once with
/// `ConnectionLoss` (not a documented error, and well within the connect timeout), although the
/// client would reconnect and replay the credential: the session it had is then closed.
#[tokio::test(flavor = "multi_thread")]
async fn connect_with_auth_fails_with_connection_loss_when_the_first_connection_breaks() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    // the auth packet (opcode 100) reaches the server, the connection is cut before its reply
    proxy.cut_after_request(100);
    let r = bounded(
        "connect",
        Client::builder(proxy.connect_string())
            .session_timeout(Duration::from_secs(20))
            .reconnect_jitter(Duration::from_millis(10))
            .auth("digest", "user:password")
            .connect(),
    )
    .await;
    assert_eq!(proxy.cuts_fired(), 1, "the auth packet was not trapped");
    assert!(
        r.is_ok(),
        "connect() with a 20 s connect timeout, one connection cut after the auth packet: got \
         {:?}; expected a session (the client reconnects and replays the credential)",
        r.map(|c| c.status())
    );
}

/// lib.rs, Session expiry: "the client gives the session up *and* closes it: the first server
/// that answers gets a re-attach with the old id and password followed by `closeSession`,
/// before any new session starts; its ephemeral nodes never outlive the LOST into the next
/// session." The closing connection skips the SASL exchange. A server enforcing SASL
/// (`enforce.auth.enabled`) answers that unauthenticated closeSession with
/// `SESSIONCLOSEDREQUIRESASLAUTH` and drops the connection without closing the session; the
/// client reads the error reply as the acknowledgement ("given-up session closed"), starts the
/// new session, and the old session's ephemeral is still there.
#[tokio::test(flavor = "multi_thread")]
async fn given_up_session_is_closed_without_sasl_and_lives_on_under_enforced_auth() {
    use futures::StreamExt;
    common::init_tracing();
    let server = ZkServer::builder()
        .tick_time(500)
        .sasl_digest_users(&[("bob", "bob-secret")])
        .cfg("enforce.auth.enabled", "true")
        .cfg("enforce.auth.schemes", "sasl")
        .start()
        .expect("SASL server");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(8))
        .reconnect_jitter(Duration::from_millis(10))
        .sasl_digest_md5("bob", "bob-secret")
        .connect()
        .await
        .unwrap();
    let old = c.session_id();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let mut states = c.state_stream();
    proxy.reject_new(true);
    server.stop().unwrap();
    loop {
        let s = bounded("LOST", states.next()).await.unwrap();
        if s.state == State::Lost {
            break;
        }
    }
    // the restarted server restarts every session's timer: the old session is alive
    server.start_again().unwrap();
    proxy.reject_new(false);
    loop {
        let s = bounded("new session", states.next()).await.unwrap();
        if s.state == State::Connected {
            assert_ne!(s.session_id, old, "expected a new session");
            break;
        }
    }
    let direct = Client::builder(server.connect_string())
        .sasl_digest_md5("bob", "bob-secret")
        .connect()
        .await
        .unwrap();
    let left = direct.exists("/eph").await.unwrap();
    assert!(
        left.is_none(),
        "the new session {:#x} is CONNECTED while the ephemeral of the given-up session \
         {old:#x} is still there (owner {:#x})",
        c.session_id(),
        left.map(|s| s.ephemeral_owner).unwrap_or_default()
    );
}

/// `StateStream`: "Every state transition from the moment of subscription, none skipped";
/// the stream alternates SUSPENDED / CONNECTED (held in review8_held.rs without SASL). With
/// SASL, a connection that breaks during its SASL exchange (after the handshake, before
/// CONNECTED was published) publishes SUSPENDED again: the stream yields SUSPENDED twice in a
/// row, a "transition" that did not happen.
#[tokio::test(flavor = "multi_thread")]
async fn connection_lost_during_sasl_publishes_suspended_twice_in_a_row() {
    use futures::StreamExt;
    let (_server, proxy) = sasl_server_behind_proxy().await;
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(40))
        .reconnect_jitter(Duration::from_millis(10))
        .sasl_digest_md5("bob", "bob-secret")
        .connect()
        .await
        .unwrap();
    let mut states = c.state_stream();
    proxy.set_delay(Duration::from_secs(2));
    let accepted = proxy.connections_accepted();
    proxy.reset();
    wait_state(&c, State::Suspended, Duration::from_secs(30)).await;
    bounded("the reconnect connection", async {
        while proxy.connections_accepted() == accepted {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // the handshake is done (~4 s), the SASL exchange is under way: break this one too
    tokio::time::sleep(Duration::from_secs(6)).await;
    proxy.reset();
    proxy.set_delay(Duration::ZERO);
    let mut seen = Vec::new();
    loop {
        let s = bounded("CONNECTED again", states.next()).await.unwrap();
        seen.push(s.state);
        if s.state == State::Connected {
            break;
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] != w[1]),
        "state stream after a reset and a second reset during SASL: {seen:?} (the same state \
         twice in a row)"
    );
}

/// `Client::detach`: "Stops the client **without** closing its session ... Every clone fails
/// with [`Error::Closed`] afterwards"; `Client::close`: "Closes the session (its ephemeral nodes
/// are deleted at once)", failing with `Timeout` "when the session could not be closed". After
/// a detach, `close()` on a clone answers `Ok(())`: the caller is told its session is closed
/// while it and its ephemeral live on (as the detach intended).
#[tokio::test(flavor = "multi_thread")]
async fn close_on_a_clone_after_detach_says_ok_while_the_session_lives() {
    let (_proxy, direct, via_proxy) = common::behind_proxy("detach-close").await;
    let c = Client::builder(via_proxy)
        .session_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let clone = c.clone();
    let (sid, _) = bounded("detach", c.detach()).await;
    let r = bounded("close on a clone", clone.close()).await;
    let eph = direct.exists("/eph").await.unwrap();
    assert!(
        !matches!(r, Ok(())) || eph.is_none(),
        "close() on a clone after detach() said {r:?} while session {sid:#x} still holds /eph \
         (owner {:#x}); expected Err(Closed)",
        eph.map(|s| s.ephemeral_owner).unwrap_or_default()
    );
}

/// A server that knows user `bob` (SASL DIGEST-MD5), and a fault proxy in front of it (the
/// server is returned to keep it running).
async fn sasl_server_behind_proxy() -> (ZkServer, FaultProxy) {
    common::init_tracing();
    let server = ZkServer::builder()
        .sasl_digest_users(&[("bob", "bob-secret")])
        .start()
        .expect("SASL server");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    (server, proxy)
}
