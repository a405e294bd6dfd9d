//! Adversarial review 8: probes of documented promises that HELD UP against a real ZooKeeper
//! 3.8 when written (coverage evidence for the review; the findings are in review8.rs).

mod common;

use common::{bounded, wait_state};
use futures::StreamExt;
use std::time::Duration;
use zk_core::{AddWatchMode, Client, CreateMode, Error, State};
use zk_testkit::FaultProxy;

/// Coverage (held up when written): creates with tiny deadlines, creates dropped at a random
/// moment, and creates without a deadline, 300 at a time, while the proxy resets, blackholes
/// and heals the link. Every create reported `Timeout { sent: false }` (or dropped before the
/// session task took it, which the test cannot tell apart, so only the timeouts are judged)
/// must be absent; every caller resolves; no watcher leaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_not_sent_under_resets_and_blackholes_were_never_applied() {
    let (proxy, direct, via_proxy) = common::behind_proxy("cancel-storm").await;
    let c = Client::builder(via_proxy)
        .session_timeout(Duration::from_secs(6))
        .reconnect_jitter(Duration::from_millis(10))
        .connect()
        .await
        .unwrap();
    let mut not_sent = Vec::new();
    for round in 0..4u32 {
        // cut off first, so that requests queue and some deadlines pass before sending
        // whatever the machine's speed; then the fault below hits whatever is in flight
        proxy.reject_new(true);
        proxy.reset();
        wait_state(&c, State::Suspended, Duration::from_secs(20)).await;
        let mut tasks = Vec::new();
        for i in 0..300u32 {
            let c = c.clone();
            let path = format!("/n-{round}-{i}");
            tasks.push(tokio::spawn(async move {
                let ms = 1 + (i as u64 * 7) % 200;
                let r = match i % 3 {
                    0 => {
                        c.with_timeout(Duration::from_millis(ms))
                            .create(&path, &[1u8; 512], CreateMode::Persistent)
                            .await
                    }
                    1 => {
                        match tokio::time::timeout(
                            Duration::from_millis(ms),
                            c.create(&path, &[1u8; 512], CreateMode::Persistent),
                        )
                        .await
                        {
                            Ok(r) => r,
                            Err(_) => Err(Error::Closed), // dropped: not judged
                        }
                    }
                    _ => c.create(&path, &[1u8; 512], CreateMode::Persistent).await,
                };
                (path, r)
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.reject_new(false);
        tokio::time::sleep(Duration::from_millis(20)).await;
        match round % 2 {
            0 => proxy.reset(),
            _ => {
                proxy.blackhole();
                tokio::time::sleep(Duration::from_millis(300)).await;
                proxy.heal();
            }
        }
        for t in tasks {
            let (path, r) = bounded("a create", t).await.unwrap();
            if matches!(r, Err(Error::Timeout { sent: false })) {
                not_sent.push(path);
            }
        }
        wait_state(&c, State::Connected, Duration::from_secs(20)).await;
    }
    assert!(!not_sent.is_empty(), "no create timed out before sending");
    let mut applied = Vec::new();
    for p in &not_sent {
        if direct.exists(p).await.unwrap().is_some() {
            applied.push(p.clone());
        }
    }
    assert!(
        applied.is_empty(),
        "{} of {} creates reported Timeout {{ sent: false }} exist: {:?}",
        applied.len(),
        not_sent.len(),
        &applied[..applied.len().min(5)]
    );
    assert_eq!(c.registered_watchers(), 0);
}

/// Session expiry while requests wait: 200 creates queued while disconnected (with and without
/// deadlines) and a one-shot watcher; the session is expired on the server; on reconnect every
/// queued create fails with SessionExpired, none is applied, the watcher ends with
/// SessionExpired, the state stream shows SUSPENDED, LOST, CONNECTED (generation + 1), nothing
/// stays registered.
#[tokio::test(flavor = "multi_thread")]
async fn expiry_with_queued_requests_fails_them_all_and_applies_none() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("expiry-queued");
    let direct = common::chroot_client(&server.connect_string(), &root).await;
    direct
        .create("/w", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(format!("{}{root}", proxy.connect_string()))
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    let gen = c.status().generation;
    let (_, _, watcher) = c.get_data_watch("/w").await.unwrap();
    let (sid, pw) = c.session_credentials();
    let mut states = c.state_stream();
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended, Duration::from_secs(10)).await;
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let c = if i % 2 == 0 {
            c.clone()
        } else {
            c.with_timeout(Duration::from_secs(50))
        };
        tasks.push(tokio::spawn(async move {
            c.create(&format!("/q-{i}"), b"", CreateMode::Persistent)
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .unwrap();
    proxy.reject_new(false);
    for t in tasks {
        let r = bounded("queued create", t).await.unwrap();
        assert!(matches!(r, Err(Error::SessionExpired)), "{r:?}");
    }
    let w = bounded("watcher", watcher).await;
    assert!(matches!(w, Err(Error::SessionExpired)), "{w:?}");
    let mut seen = Vec::new();
    while let Some(s) = bounded("states", states.next()).await {
        seen.push(s.state);
        if s.state == State::Connected {
            assert_eq!(s.generation, gen + 1);
            break;
        }
    }
    assert_eq!(
        seen,
        vec![State::Suspended, State::Lost, State::Connected],
        "{seen:?}"
    );
    assert!(direct
        .get_children("/")
        .await
        .unwrap()
        .iter()
        .all(|n| n == "w"));
    assert_eq!(c.registered_watchers(), 0);
    c.create("/after", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
}

/// Dropping every handle (while SUSPENDED, a server reachable again) closes the session: the
/// ephemeral goes, and a state stream ends.
#[tokio::test(flavor = "multi_thread")]
async fn dropping_every_handle_while_suspended_closes_the_session_and_ends_streams() {
    let (proxy, direct, via_proxy) = common::behind_proxy("drop-all").await;
    let c = Client::builder(via_proxy)
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let mut states = c.state_stream();
    let w = c
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended, Duration::from_secs(10)).await;
    let clones: Vec<Client> = (0..10).map(|_| c.clone()).collect();
    drop(clones);
    drop(c);
    proxy.reject_new(false);
    let mut last = None;
    while let Some(s) = bounded("state stream end", states.next()).await {
        last = Some(s.state);
    }
    assert_eq!(last, Some(State::Lost));
    let mut w = w;
    let end = bounded("watch stream", async {
        let mut items = Vec::new();
        while let Some(i) = w.next().await {
            items.push(i);
        }
        items
    })
    .await;
    assert!(matches!(end.last(), Some(Err(Error::Closed))), "{end:?}");
    assert!(direct.exists("/eph").await.unwrap().is_none());
}

/// close() from 20 clones at once while connected: all answer Ok, the ephemeral is gone, later
/// requests fail with Closed.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_close_from_many_clones_is_ok_everywhere() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("close-many");
    let direct = common::chroot_client(&server.connect_string(), &root).await;
    let c = Client::builder(format!("{}{root}", server.connect_string()))
        .connect()
        .await
        .unwrap();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.close().await })
        })
        .collect();
    for t in tasks {
        let r = bounded("close", t).await.unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
    assert!(direct.exists("/eph").await.unwrap().is_none());
    assert!(matches!(c.get_data("/").await, Err(Error::Closed)));
}

/// 500 requests in flight when the link is blackholed: every one fails with ConnectionLoss
/// once the connection is declared dead (2/3 of the session timeout), none hangs; after the
/// heal the session is the same and a watching read whose reply was too large (mixed into the
/// pipeline) failed alone.
#[tokio::test(flavor = "multi_thread")]
async fn blackhole_with_500_in_flight_fails_them_within_the_read_timeout() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("blackhole-500");
    let direct = common::chroot_client(&server.connect_string(), &root).await;
    // a children list over the 2 KiB frame limit below
    for i in 0..60 {
        direct
            .create(
                &format!("/k-{i:03}-{}", "c".repeat(40)),
                b"",
                CreateMode::Persistent,
            )
            .await
            .unwrap();
    }
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(format!("{}{root}", proxy.connect_string()))
        .session_timeout(Duration::from_secs(6))
        .max_request_len(1024)
        .max_frame_len(2048)
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    let big = c.get_children_watch("/").await;
    assert!(matches!(big, Err(Error::ReplyTooLarge { .. })), "{big:?}");
    assert_eq!(c.registered_watchers(), 0);
    proxy.set_delay(Duration::from_millis(50));
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.get_data(&format!("/k-{:03}-{}", i % 40, "c".repeat(40)))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    proxy.blackhole();
    let start = std::time::Instant::now();
    let (mut ok, mut lost) = (0, 0);
    for t in tasks {
        match bounded("in-flight get", t).await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::ConnectionLoss) => lost += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(lost > 0, "ok {ok}");
    assert!(
        start.elapsed() < Duration::from_secs(4 + 5),
        "{:?}",
        start.elapsed()
    );
    proxy.set_delay(Duration::ZERO);
    proxy.heal();
    wait_state(&c, State::Connected, Duration::from_secs(20)).await;
    assert_eq!(c.session_id(), sid);
    c.get_data("/").await.unwrap();
}

/// A multi of 200 setData ops whose whole frame is exactly `max_request_len` (1 MiB - 1) goes
/// through without the connection noticing; one byte more is refused before sending.
#[tokio::test(flavor = "multi_thread")]
async fn multi_of_many_ops_exactly_at_the_request_limit_goes_through() {
    use zk_core::Op;
    let c = common::shared("multi-limit").await;
    for i in 0..200 {
        c.create(&format!("/m{i:03}"), b"", CreateMode::Persistent)
            .await
            .unwrap();
    }
    let ops = |extra: usize, each: usize| -> Vec<Op> {
        (0..200)
            .map(|i| {
                let n = each + usize::from(i == 0) * extra;
                Op::set_data(format!("/m{i:03}"), vec![3u8; n], None)
            })
            .collect()
    };
    // learn the frame length of 200 ops of 5000 bytes (over the limit: refused, length named)
    let len = match c.multi(ops(0, 6000)).await {
        Err(Error::RequestTooLarge { len, .. }) => len,
        r => panic!("{r:?}"),
    };
    let base = len - 200 * 6000;
    let each = (0xfffff - base) / 200;
    let extra = 0xfffff - base - each * 200;
    let mut states = c.state_stream();
    let r = c.multi(ops(extra, each)).await;
    assert!(r.is_ok(), "{r:?}");
    let r = c.multi(ops(extra + 1, each)).await;
    assert!(
        matches!(r, Err(Error::RequestTooLarge { len: 0x100000, .. })),
        "{r:?}"
    );
    c.sync("/").await.unwrap();
    let seen = tokio::time::timeout(Duration::from_millis(300), states.next()).await;
    assert!(seen.is_err(), "{seen:?}");
}

/// 20 resets in a row: the state stream alternates SUSPENDED / CONNECTED without skipping one
/// (never the same state twice in a row), the session stays the same, and after close() the
/// stream yields LOST and ends.
#[tokio::test(flavor = "multi_thread")]
async fn state_stream_sees_every_flap_and_ends_after_close() {
    let (proxy, _direct, via_proxy) = common::behind_proxy("flaps").await;
    let c = Client::builder(via_proxy)
        .session_timeout(Duration::from_secs(20))
        .reconnect_jitter(Duration::from_millis(1))
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    let mut states = c.state_stream();
    let mut seen = Vec::new();
    for _ in 0..20 {
        proxy.reset();
        loop {
            let s = bounded("reconnect", states.next()).await.unwrap();
            seen.push(s.state);
            if s.state == State::Connected {
                assert_eq!(s.session_id, sid);
                break;
            }
        }
    }
    c.close().await.unwrap();
    while let Some(s) = bounded("state stream", states.next()).await {
        if s.state == State::Connected {
            assert_eq!(s.session_id, sid);
        }
        seen.push(s.state);
    }
    assert_eq!(seen.last(), Some(&State::Lost), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:?}");
    let flaps = seen.iter().filter(|s| **s == State::Suspended).count();
    assert_eq!(flaps, 20, "{seen:?}");
}
