//! Adversarial review of zk-core (issue 8) against a real ZooKeeper 3.8: each test pins down
//! one finding (a documented promise that did not hold) and failed on the code it was written
//! against; each is named after the finding.

mod common;

use common::{bounded, wait_state};
use futures::StreamExt;
use std::time::Duration;
use zk_core::{AddWatchMode, Client, CreateMode, CreateOptions, Error, State};
use zk_testkit::{FaultProxy, ZkServer};

/// `close()` is documented to return `Timeout` "when the session could not be closed in time".
/// A close that timed out stops the client without closing the session; a second `close()`
/// (from any clone) then finds the command channel closed and answers `Ok(())`, although the
/// session and its ephemeral nodes are still alive on the server.
#[tokio::test(flavor = "multi_thread")]
async fn close_after_a_timed_out_close_says_ok_while_the_session_lives() {
    let (proxy, direct, via_proxy) = common::behind_proxy("close-twice").await;
    let c = Client::builder(via_proxy)
        .session_timeout(Duration::from_secs(30))
        .close_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended, Duration::from_secs(10)).await;
    let first = bounded("first close", c.close()).await;
    assert!(
        matches!(first, Err(Error::Timeout { sent: false })),
        "no server reachable: expected Timeout {{ sent: false }}, got {first:?}"
    );
    let clone = c.clone();
    let second = bounded("second close", clone.close()).await;
    let eph = direct.exists("/eph").await.unwrap();
    assert!(
        second.is_err() || eph.is_none(),
        "second close() said {second:?}, but the session's ephemeral /eph is still there \
         ({eph:?}): the session was never closed"
    );
}

/// Review findings 11 and 12: with `max_frame_len(1024)` a create whose reply echoes an
/// 1100-byte path came back `ReplyTooLarge` though applied (and `may_have_been_applied()` said
/// false), and a watch notification for such a path was a protocol error the client reconnected
/// into forever. Now `max_frame_len` must leave room for anything a request can make the server
/// echo (at least `max_request_len` + 1 KiB), so neither can happen; a `ReplyTooLarge` (only a
/// big data or children reply now) counts as maybe applied.
#[tokio::test(flavor = "multi_thread")]
async fn max_frame_len_below_what_a_request_can_echo_is_refused() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let e = Client::builder(server.connect_string())
        .max_frame_len(1024)
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("max_request_len")),
        "{e:?}"
    );
    // a smaller request limit allows a smaller frame limit
    let c = Client::builder(server.connect_string())
        .max_request_len(1024)
        .max_frame_len(2048)
        .connect()
        .await
        .unwrap();
    let long = format!("/{}", "n".repeat(1100));
    let e = c
        .create(&long, b"", CreateMode::Persistent)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RequestTooLarge { .. }), "{e:?}");
    let e = c.exists_watch(&long).await.unwrap_err();
    assert!(matches!(e, Error::RequestTooLarge { .. }), "{e:?}");
    assert!(Error::ReplyTooLarge { len: 1, max: 0 }.may_have_been_applied());
}

/// "the first server that answers gets a re-attach with the old id and password followed by
/// `closeSession`, before any new session starts; its ephemeral nodes never outlive the LOST
/// into the next session" (lib.rs, Session expiry). When the closeSession of the given-up
/// session is lost (the connection resets after the re-attach handshake, before closeSession
/// reached the server), the client logs a warning, forgets the old session anyway and starts
/// the new one: the old session's ephemeral is still there once the new session is CONNECTED.
#[tokio::test(flavor = "multi_thread")]
async fn lost_close_of_a_given_up_session_lets_its_ephemeral_live_into_the_new_session() {
    common::init_tracing();
    let server = ZkServer::builder().tick_time(500).start().unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(8))
        .reconnect_jitter(Duration::from_millis(10))
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
    // the server comes back: it restarts session timers on load, the old session is alive
    server.start_again().unwrap();
    // every chunk takes 1 s through the proxy: the re-attach handshake completes at ~2 s after
    // the connection is accepted, closeSession leaves the client then and would reach the
    // server at ~3 s. Reset in between.
    proxy.set_delay(Duration::from_secs(1));
    let accepted = proxy.connections_accepted();
    proxy.reject_new(false);
    bounded("the re-attach connection", async {
        while proxy.connections_accepted() == accepted {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.reset();
    proxy.set_delay(Duration::ZERO);
    loop {
        let s = bounded("new session", states.next()).await.unwrap();
        if s.state == State::Connected {
            assert_ne!(s.session_id, old, "expected a new session");
            break;
        }
    }
    let direct = Client::connect(&server.connect_string()).await.unwrap();
    let left = direct.exists("/eph").await.unwrap();
    assert!(
        left.is_none(),
        "the new session {:#x} is CONNECTED while the ephemeral of the given-up session \
         {old:#x} is still there: {left:?}",
        c.session_id()
    );
}

/// `close()`: "[`Error::Timeout`] when the session could not be closed in time: `sent: false`
/// if no server was reached, `sent: true` if closeSession was sent but not acknowledged." Here
/// closeSession reaches the server and is applied (the session and its ephemeral are gone), the
/// reply is lost with the connection, no server can be reached again within the close timeout:
/// `close()` answers `Timeout { sent: false }`, which says the session was never told to close.
#[tokio::test(flavor = "multi_thread")]
async fn close_whose_close_session_reached_the_server_reports_not_sent() {
    let (proxy, direct, via_proxy) = common::behind_proxy("close-cut").await;
    let c = Client::builder(via_proxy)
        .session_timeout(Duration::from_secs(20))
        .close_timeout(Duration::from_secs(3))
        .connect()
        .await
        .unwrap();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    proxy.reject_new(true);
    proxy.cut_after_request(-11); // closeSession
    let r = bounded("close", c.close()).await;
    assert_eq!(proxy.cuts_fired(), 1, "closeSession was not trapped");
    let eph = direct.exists("/eph").await.unwrap();
    assert!(eph.is_none(), "closeSession was applied: /eph must be gone");
    assert!(
        matches!(r, Err(Error::Timeout { sent: true })),
        "closeSession reached the server (and closed the session), but close() said {r:?}"
    );
}

/// `close()` during the replacement of a session given up client-side: "When disconnected, the
/// client first reaches a server and re-attaches, within the close timeout; `close()` returns
/// [`Error::Timeout`] if it could not." The client re-attaches to the given-up session, its
/// closeSession is lost with the connection, and `close()` answers `Ok(())` while the old
/// session and its ephemeral live on.
#[tokio::test(flavor = "multi_thread")]
async fn close_after_lost_says_ok_though_the_given_up_session_was_not_closed() {
    common::init_tracing();
    let server = ZkServer::builder().tick_time(500).start().unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(8))
        .close_timeout(Duration::from_secs(20))
        .reconnect_jitter(Duration::from_millis(10))
        .connect()
        .await
        .unwrap();
    let old = c.session_id();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    proxy.reject_new(true);
    server.stop().unwrap();
    wait_state(&c, State::Lost, Duration::from_secs(30)).await;
    let closing = tokio::spawn({
        let c = c.clone();
        async move { c.close().await }
    });
    server.start_again().unwrap();
    proxy.set_delay(Duration::from_secs(1));
    let accepted = proxy.connections_accepted();
    proxy.reject_new(false);
    bounded("the re-attach connection", async {
        while proxy.connections_accepted() == accepted {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.reset();
    proxy.set_delay(Duration::ZERO);
    let r = bounded("close", closing).await.unwrap();
    let direct = Client::connect(&server.connect_string()).await.unwrap();
    let left = direct.exists("/eph").await.unwrap();
    assert!(
        r.is_err() || left.is_none(),
        "close() said {r:?}, but the given-up session {old:#x} still holds /eph: {left:?}"
    );
}

/// Input checks: "the size of the whole encoded request (default at most 1 MiB - 1 ...) ... [is]
/// checked before anything is sent ...; nothing else on the connection notices." `add_auth`
/// skips the check: a 2 MiB credential is written, the server drops the connection (its
/// `jute.maxbuffer`), and since the credential was stored for replay before any answer, every
/// later connection replays it and is dropped too: the client flaps between SUSPENDED and
/// CONNECTED for good.
#[tokio::test(flavor = "multi_thread")]
async fn add_auth_over_the_request_limit_is_sent_and_replayed_on_every_connection() {
    common::init_tracing();
    let c = common::shared("huge-auth").await;
    let mut states = c.state_stream();
    let credential = format!("user:{}", "p".repeat(2 << 20));
    let r = bounded("add_auth", c.add_auth("digest", credential.as_bytes())).await;
    let mut suspended = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(s)) = tokio::time::timeout_at(until, states.next()).await {
        if s.state == State::Suspended {
            suspended += 1;
        }
    }
    assert!(
        matches!(r, Err(Error::RequestTooLarge { .. })) && suspended == 0,
        "a 2 MiB credential: add_auth said {r:?} and the connection was dropped {suspended} \
         times in the next 5 s; expected RequestTooLarge before sending and no disconnect"
    );
}

/// Reconnect: "re-registers every watch ... a new packet whenever the running sum of path
/// lengths reaches 128 KiB". A packet's size is never checked against the server's
/// `jute.maxbuffer`: a watch on a path whose own `exists` request fit the limit makes a
/// SetWatches frame over it (SetWatches has more framing than `exists`). After any reconnect
/// the server drops every connection at its first packet, for good: the client never gets
/// its session back.
#[tokio::test(flavor = "multi_thread")]
async fn set_watches_over_jute_maxbuffer_after_a_reconnect_makes_the_client_flap_forever() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("big-setwatches");
    let _direct = common::chroot_client(&server.connect_string(), &root).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(format!("{}{root}", proxy.connect_string()))
        .session_timeout(Duration::from_secs(10))
        .reconnect_jitter(Duration::from_millis(10))
        .connect()
        .await
        .unwrap();
    // exists frame: xid + opcode + path (4 + len) + watch flag = len + 13, just under 1 MiB - 1
    let server_path_len = 0xfffff - 13 - 15;
    let name = "x".repeat(server_path_len - root.len() - 1);
    // such a watch could never be re-registered: refused before sending
    let e = c.exists_watch(&format!("/{name}")).await.unwrap_err();
    assert!(matches!(e, Error::RequestTooLarge { .. }), "{e:?}");
    // the longest path whose SetWatches packet fits: xid, opcode, zxid, 5 counts, 4 + len
    let fits = "x".repeat(0xfffff - 40 - 4 - root.len() - 1);
    let (stat, _w) = c.exists_watch(&format!("/{fits}")).await.unwrap();
    assert!(stat.is_none());
    // and one more watch, so that the packets must be split by size as well
    let (_, _w2) = c.exists_watch("/short").await.unwrap();
    let mut states = c.state_stream();
    proxy.reset();
    let mut suspended = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    while let Ok(Some(s)) = tokio::time::timeout_at(until, states.next()).await {
        if s.state == State::Suspended {
            suspended += 1;
        }
    }
    let r = c
        .with_timeout(Duration::from_secs(2))
        .get_children("/")
        .await;
    assert!(
        suspended <= 1 && r.is_ok(),
        "one reset: the connection was dropped {suspended} times in 6 s, get_children now \
         says {r:?}"
    );
}

/// Builder checks: "Every [`ClientBuilder`] setting is checked by [`ClientBuilder::connect`]
/// before anything starts", "[`Error::InvalidArgument`] for a setting out of range (nothing is
/// started): a zero timeout, ...". A session timeout under a millisecond is zero on the wire
/// (an int of milliseconds) and as the default connect timeout: it is not refused, the client
/// starts, and `connect()` fails with `ConnectFailed` "within 0 ms".
#[tokio::test(flavor = "multi_thread")]
async fn sub_millisecond_session_timeout_is_not_refused_as_out_of_range() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let r = Client::builder(server.connect_string())
        .session_timeout(Duration::from_micros(500))
        .connect()
        .await;
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "a 500 µs session timeout (0 ms on the wire): expected InvalidArgument, got {:?}",
        r.map(|c| c.status())
    );
}

/// Input checks: "Paths ..., data sizes ..., the size of the whole encoded request ... and
/// ACLs are checked before anything is sent, with ... [`Error::InvalidArgument`]". Only an
/// empty ACL is refused locally: an ACL the server's rules reject (`world:nobody`) is sent
/// and fails with the server's `InvalidAcl`; one with no permissions at all is sent and
/// creates a node nobody can ever read or delete.
#[tokio::test(flavor = "multi_thread")]
async fn acls_the_server_refuses_are_sent_instead_of_checked_before_sending() {
    use zk_core::{Acl, Id, Perms};
    let c = common::shared("bad-acl").await;
    let bad = vec![Acl {
        perms: Perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "nobody".into(),
        },
    }];
    let r = c
        .create_with(
            "/bad",
            b"",
            &CreateOptions::new(CreateMode::Persistent).with_acl(bad),
        )
        .await;
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "ACL world:nobody: expected InvalidArgument before sending, got {r:?}"
    );
}

/// "Every request resolves within a bound. With default settings, whatever the servers do ...
/// a request waiting for a connection fails ... with `Timeout { sent: false }` after twice the
/// session timeout ... A deadline of its own ([`Client::with_timeout`], ...) bounds it
/// further". `add_auth` honours neither: issued while no server is reachable after a LOST,
/// with a 1 s deadline of its own, it is still pending three session timeouts later.
#[tokio::test(flavor = "multi_thread")]
async fn add_auth_ignores_its_deadline_and_the_default_bound_while_disconnected() {
    common::init_tracing();
    let server = ZkServer::builder().tick_time(500).start().unwrap();
    let session = Duration::from_secs(3);
    let c = Client::builder(server.connect_string())
        .session_timeout(session)
        .connect()
        .await
        .unwrap();
    server.stop().unwrap();
    wait_state(&c, State::Lost, Duration::from_secs(30)).await;
    let r = tokio::time::timeout(
        3 * session,
        c.with_timeout(Duration::from_secs(1))
            .add_auth("digest", b"user:password"),
    )
    .await;
    assert!(
        matches!(r, Ok(Err(Error::Timeout { sent: false }))),
        "add_auth with a 1 s deadline, no server reachable: expected Timeout {{ sent: false }} \
         after ~1 s, got {} after {:?}",
        match &r {
            Ok(r) => format!("{r:?}"),
            Err(_) => "still pending".to_owned(),
        },
        3 * session
    );
}

/// Cancel safety: "Watches are registered only when the reply is read, so a dropped
/// `get_data_watch` leaves at most a server-side watch that fires into nothing", and
/// "Dropping the last persistent watcher on a path removes the server-side watch too". An
/// `add_watch` whose deadline passes after it was sent (`Timeout { sent: true }`) leaves a
/// persistent watch on the server that nothing ever releases (until a reconnect): no watcher
/// exists for it, and every change of the path is sent to the client for nothing, forever.
/// (A `PersistentWatcher` dropped the ordinary way is released: compare `wchc` below.)
#[tokio::test(flavor = "multi_thread")]
async fn add_watch_timed_out_after_sending_leaves_a_persistent_watch_nobody_holds() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("add-watch-timeout");
    let direct = common::chroot_client(&server.connect_string(), &root).await;
    direct
        .create("/p", b"", CreateMode::Persistent)
        .await
        .unwrap();
    direct
        .create("/q", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(format!("{}{root}", proxy.connect_string()))
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    // the ordinary way: a watcher taken and dropped is released on the server
    let w = c.add_watch("/q", AddWatchMode::Persistent).await.unwrap();
    drop(w);
    proxy.set_delay(Duration::from_millis(400));
    let r = c
        .with_timeout(Duration::from_millis(300))
        .add_watch("/p", AddWatchMode::Persistent)
        .await;
    assert!(
        matches!(r, Err(Error::Timeout { sent: true })),
        "expected Timeout {{ sent: true }}, got {r:?}"
    );
    proxy.set_delay(Duration::ZERO);
    // the reply arrives (after 800 ms of round trip) and is thrown away
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.get_data("/p").await.unwrap();
    let watches = |path: &str| {
        let wchp = server.four_letter("wchp").unwrap();
        let mut lines = wchp.lines().skip_while(|l| l.trim() != path);
        lines.next().is_some()
            && lines
                .take_while(|l| l.starts_with(char::is_whitespace) || l.starts_with("\t"))
                .any(|l| l.contains(&format!("{sid:#x}")))
    };
    assert!(
        !watches(&format!("{root}/q")),
        "control: the dropped watcher on /q was not released"
    );
    assert!(
        !watches(&format!("{root}/p")),
        "nobody holds a watcher on /p, but session {sid:#x} still has a server-side watch \
         there: {}",
        server.four_letter("wchp").unwrap()
    );
}

/// With `reconnect_after_expiry(false)` a session given up client-side (no server for a whole
/// session timeout) is never closed: the task ends at LOST, so "the first server that answers
/// gets a re-attach with the old id and password followed by `closeSession`" never happens.
/// A server restarted meanwhile restarts the session's timer, and `close()` then answers
/// `Ok(())` ("Closes the session (its ephemeral nodes are deleted at once)") while the session
/// and its ephemeral live on.
#[tokio::test(flavor = "multi_thread")]
async fn given_up_session_is_never_closed_when_lost_is_final_yet_close_says_ok() {
    common::init_tracing();
    let server = ZkServer::builder().tick_time(500).start().unwrap();
    let c = Client::builder(server.connect_string())
        .session_timeout(Duration::from_secs(6))
        .reconnect_after_expiry(false)
        .connect()
        .await
        .unwrap();
    let old = c.session_id();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    server.stop().unwrap();
    wait_state(&c, State::Lost, Duration::from_secs(30)).await;
    server.start_again().unwrap();
    let r = bounded("close", c.close()).await;
    let direct = Client::connect(&server.connect_string()).await.unwrap();
    let left = direct.exists("/eph").await.unwrap();
    assert!(
        r.is_err() || left.is_none(),
        "close() said {r:?}, but the given-up session {old:#x} still holds /eph: {left:?}"
    );
}

/// `add_auth`: "[`Error::AuthFailed`] (the server then closes the session, and the client
/// stops)"; `Error::is_session_dead`: "Whether the session is gone (expired, auth failed, or
/// the client closed): ephemeral nodes and watches of the session are gone." A 3.8 server
/// answers an unknown scheme with AUTHFAILED and closes the *connection* only: the session and
/// its ephemerals live until the session times out. The client stops without closing it, and
/// `close()` then answers `Ok(())`.
#[tokio::test(flavor = "multi_thread")]
async fn auth_failed_leaves_the_session_and_its_ephemerals_alive() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("auth-failed-eph");
    let direct = common::chroot_client(&server.connect_string(), &root).await;
    let c = Client::builder(format!("{}{root}", server.connect_string()))
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let e = c.add_auth("no-such-scheme", b"x").await.unwrap_err();
    assert!(matches!(e, Error::AuthFailed), "{e:?}");
    assert!(e.is_session_dead());
    let closed = c.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = direct.exists("/eph").await.unwrap();
    assert!(
        left.is_none(),
        "AuthFailed (is_session_dead() = true), close() said {closed:?}, but session {sid:#x} \
         still holds its ephemeral /eph: {left:?}"
    );
}

/// The stronger form of the finding above: with LOST final, the given-up session is still
/// closed for real. The server comes back after the LOST, restarting the session's timer (24
/// s); `close()` (close timeout 18 s, shorter than that) must answer `Ok(())` because the client
/// re-attached and closed the session, not because the server expired it, and the ephemeral is
/// gone at once. Requests issued meanwhile fail with `SessionExpired` instead of waiting. (The
/// close timeout leaves room for one handshake the restarting server never answers, given up
/// after `MAX_HANDSHAKE_WAIT`, 10 s: with 12 s / 10 s the test failed twice under load.)
#[tokio::test(flavor = "multi_thread")]
async fn given_up_session_is_closed_by_close_when_lost_is_final() {
    common::init_tracing();
    let server = ZkServer::builder()
        .max_session_timeout(60_000)
        .start()
        .unwrap();
    let c = Client::builder(server.connect_string())
        .session_timeout(Duration::from_secs(24))
        .close_timeout(Duration::from_secs(18))
        .reconnect_after_expiry(false)
        .connect()
        .await
        .unwrap();
    let old = c.session_id();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    server.stop().unwrap();
    wait_state(&c, State::Lost, Duration::from_secs(60)).await;
    let r = bounded("get_data after a final LOST", c.get_data("/eph")).await;
    assert!(
        matches!(r, Err(Error::SessionExpired)),
        "a request after a final LOST: expected SessionExpired, got {r:?}"
    );
    server.start_again().unwrap();
    let closed = bounded("close", c.close()).await;
    let direct = Client::connect(&server.connect_string()).await.unwrap();
    let left = direct.exists("/eph").await.unwrap();
    assert!(
        closed.is_ok() && left.is_none(),
        "the server is back: close() should have closed the given-up session {old:#x}; it said \
         {closed:?}, and /eph is {left:?}"
    );
}

/// The stronger form of the auth finding: the client closes the session on an auth failure by
/// itself (re-attach without the refused credential, then closeSession), without waiting for
/// `close()`: the ephemeral goes long before the server would expire the session (30 s), and a
/// later `close()` says `Ok(())` because the session was closed.
#[tokio::test(flavor = "multi_thread")]
async fn auth_failed_closes_the_session_without_waiting_for_close() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("auth-failed-closes");
    let direct = common::chroot_client(&server.connect_string(), &root).await;
    let c = Client::builder(format!("{}{root}", server.connect_string()))
        .session_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let e = c.add_auth("no-such-scheme", b"x").await.unwrap_err();
    assert!(matches!(e, Error::AuthFailed), "{e:?}");
    let gone = tokio::time::timeout(Duration::from_secs(20), async {
        while direct.exists("/eph").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "20 s after AuthFailed the ephemeral /eph of session {sid:#x} is still there: the client \
         did not close the session"
    );
    let closed = bounded("close", c.close()).await;
    assert!(
        closed.is_ok(),
        "the session was closed, yet close() said {closed:?}"
    );
    let r = bounded("a request after AuthFailed", c.exists("/eph")).await;
    assert!(r.is_err(), "a request after the client stopped: {r:?}");
}
