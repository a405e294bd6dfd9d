//! Adversarial review of zk-core (round 8d: the newest "cost per request" changes of issue 8:
//! the reply channel that carries the pending -> sent / abandoned state in one allocation
//! (`session/reply.rs`), the 20-byte receive low-water mark, queue timeouts stamped by the
//! session task, and the serve loop's fairness pass) against a real ZooKeeper 3.8. A test that
//! pins down a finding (a documented promise that does not hold) fails on the code it was
//! written against and says so in its doc; the others are regression coverage for angles that
//! held.

mod common;

use common::{bounded, wait_state};
use std::collections::HashSet;
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, Op, State};

/// The memory tests read the process's resident size: they run one at a time, and none of
/// this file's other tests beside them.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Resident memory of this process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("resident pages in /proc/self/statm");
    pages * 4096
}

const MIB: usize = 1024 * 1024;

/// A client through a fault proxy with a session timeout long enough that it stays SUSPENDED
/// (never LOST) for the whole test while the proxy refuses it.
async fn suspended_client(name: &str) -> (zk_testkit::FaultProxy, Client, Client) {
    let (proxy, direct, via) = common::behind_proxy(name).await;
    let c = Client::builder(via)
        .session_timeout(Duration::from_secs(40))
        .reconnect_jitter(Duration::from_millis(10))
        .connect()
        .await
        .expect("connect through the proxy");
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended, Duration::from_secs(20)).await;
    (proxy, direct, c)
}

/// `Client::add_auth`: "With a deadline (or after twice the session timeout while
/// disconnected) [`Error::Timeout`]: `sent: false` means the credential was never sent and
/// will not be replayed"; session/reply.rs: dropping or timing out before the claim abandons
/// the request, and the session task keeps its queue "free of requests whose callers gave
/// up" (`on_command_offline`). Not for `add_auth`: while disconnected every `add_auth`
/// command goes into `Session::pending_auth_cmds`, which nothing prunes until the next
/// connection (`prime` skips the abandoned ones only then). A caller that retries `add_auth`
/// with a short deadline while the link is down (each try `Timeout { sent: false }`) makes the
/// session task keep every credential it gave up on: memory grows with the number of tries,
/// without bound, for as long as the outage lasts (here 300 tries of a 256 KiB credential:
/// the 75 MiB they hold stay resident).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_add_auth_calls_while_disconnected_are_kept_until_the_next_connection() {
    let _serial = SERIAL.lock().await;
    let (proxy, _direct, c) = suspended_client("auth-pile").await;
    let mut credential = b"ghost:".to_vec();
    credential.resize(256 * 1024, b'x');
    let quick = c.with_timeout(Duration::from_millis(1));
    let tries = |n: usize| {
        let quick = quick.clone();
        let credential = credential.clone();
        async move {
            for i in 0..n {
                match bounded("add_auth", quick.add_auth("digest", &credential)).await {
                    Err(Error::Timeout { sent: false }) => {}
                    other => panic!("try {i}: expected Timeout {{ sent: false }}, got {other:?}"),
                }
            }
        }
    };
    // warm-up: the allocator's pools and the channel reach their working size
    tries(50).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss();
    tries(300).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let grown = rss().saturating_sub(before);
    // the outage ends: the abandoned credentials are dropped at last (and never sent)
    proxy.reject_new(false);
    wait_state(&c, State::Connected, Duration::from_secs(30)).await;
    let ids = bounded("who_am_i", c.who_am_i()).await.unwrap();
    assert!(
        ids.iter().all(|i| i.user != "ghost"),
        "an abandoned credential was sent: {ids:?}"
    );
    bounded("close", c.close()).await.unwrap();
    assert!(
        grown < 24 * MIB,
        "300 add_auth calls that each timed out before sending (Timeout {{ sent: false }}) while \
         disconnected grew the resident memory by {} MiB: the session task keeps every \
         abandoned credential (256 KiB each) in pending_auth_cmds until the next connection",
        grown / MIB
    );
}

/// Regression coverage (held): the same loop with requests instead of `add_auth`: 300 creates
/// of 256 KiB each with a 1 ms deadline while disconnected (each `Timeout { sent: false }`),
/// then 300 whose futures are dropped while queued, grow the resident memory by far less than
/// they carry (the queue is pruned of abandoned requests), and none of them is ever applied
/// once the link is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_while_disconnected_do_not_pile_up_and_are_never_sent() {
    let _serial = SERIAL.lock().await;
    let (proxy, direct, c) = suspended_client("req-pile").await;
    let data = vec![5u8; 256 * 1024];
    let quick = c.with_timeout(Duration::from_millis(1));
    for i in 0..50 {
        let r = bounded(
            "create",
            quick.create(&format!("/w{i}"), &data, CreateMode::Persistent),
        )
        .await;
        assert!(matches!(r, Err(Error::Timeout { sent: false })), "{r:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss();
    for i in 0..300 {
        let r = bounded(
            "create",
            quick.create(&format!("/t{i}"), &data, CreateMode::Persistent),
        )
        .await;
        assert!(matches!(r, Err(Error::Timeout { sent: false })), "{r:?}");
    }
    // no deadline of their own: dropped while they wait in the queue
    for i in 0..300 {
        let path = format!("/d{i}");
        let f = c.create(&path, &data, CreateMode::Persistent);
        let r = tokio::time::timeout(Duration::from_millis(1), f).await;
        assert!(r.is_err(), "create {i} resolved while disconnected: {r:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let grown = rss().saturating_sub(before);
    proxy.reject_new(false);
    wait_state(&c, State::Connected, Duration::from_secs(30)).await;
    // answered in order: everything written before this was applied or refused
    bounded("sync", c.sync("/")).await.unwrap();
    let children = bounded("list", direct.get_children("/")).await.unwrap();
    bounded("close", c.close()).await.unwrap();
    assert!(
        children.is_empty(),
        "abandoned creates were applied: {:?}",
        &children[..children.len().min(5)]
    );
    assert!(
        grown < 40 * MIB,
        "600 abandoned 256 KiB creates grew the resident memory by {} MiB",
        grown / MIB
    );
}

/// Regression coverage (held): issue 8 defect 1 through a delayed link. 2,000 concurrent
/// creates with 0.02-60 ms deadlines through a proxy adding 3 ms each way (so deadlines run out
/// on both sides of the claim, before and after the frame reaches the socket, while the
/// session task is busy with earlier replies): every create reported `Timeout { sent: false }`
/// is absent on the server; every caller resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_not_sent_through_a_delayed_link_were_never_applied() {
    let (proxy, direct, via) = common::behind_proxy("delayed-claims").await;
    let c = Client::builder(via)
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    proxy.set_delay(Duration::from_millis(3));
    let data = vec![9u8; 2048];
    let mut not_sent = Vec::new();
    let (mut ok, mut unknown) = (0, 0);
    for round in 0..2u32 {
        let mut tasks = Vec::new();
        for i in 0..1000u32 {
            // half of them tiny (taken or not as the session task gets to them), half around the
            // round trip (answered, or timed out after sending)
            let t = if i % 2 == 0 {
                Duration::from_micros(20 + (i as u64 * 37) % 500)
            } else {
                Duration::from_micros(1000 + (i as u64 * 3571) % 60_000)
            };
            let c = c.with_timeout(t);
            let data = data.clone();
            tasks.push(tokio::spawn(async move {
                let path = format!("/r{round}-{i}");
                let r = c.create(&path, &data, CreateMode::Persistent).await;
                (path, r)
            }));
        }
        for t in tasks {
            let (path, r) = bounded("create", t).await.unwrap();
            match r {
                Ok(_) => ok += 1,
                Err(Error::Timeout { sent: false }) => not_sent.push(path),
                Err(Error::Timeout { sent: true }) => unknown += 1,
                Err(e) => panic!("{path}: unexpected {e:?}"),
            }
        }
    }
    proxy.set_delay(Duration::ZERO);
    bounded("sync", c.sync("/")).await.unwrap();
    let children: HashSet<String> = bounded("list", direct.get_children("/"))
        .await
        .unwrap()
        .into_iter()
        .map(|n| format!("/{n}"))
        .collect();
    bounded("close", c.close()).await.unwrap();
    eprintln!(
        "{ok} applied, {unknown} sent then timed out, {} not sent",
        not_sent.len()
    );
    assert!(
        !not_sent.is_empty(),
        "precondition: some deadlines ran out before sending"
    );
    let applied: Vec<_> = not_sent.iter().filter(|p| children.contains(*p)).collect();
    assert!(
        applied.is_empty(),
        "{} of {} creates reported Timeout {{ sent: false }} were applied: {:?}",
        applied.len(),
        not_sent.len(),
        &applied[..applied.len().min(5)]
    );
}

/// A request's result judged by `want`; `None` if it failed with `Closed` (issued after the
/// `close()` it raced with).
fn judge<T>(r: zk_core::Result<T>, want: impl Fn(&zk_core::Result<T>) -> bool) -> Option<bool> {
    match r {
        Err(Error::Closed) => None,
        r => Some(want(&r)),
    }
}

/// Regression coverage (held): the 20-byte low-water mark against bursts whose replies are
/// mostly bare error headers (20-byte frames: delete and setData of missing nodes, a bad
/// version), with syncs, failing multis and `add_auth` (answered out of order) among them, and
/// a `close()` issued while the burst's tail is still owed: every request gets its own answer,
/// the connection is never given up (a reply left to the read timeout would SUSPEND it) and
/// the close is acknowledged. The session timeout is long, so a reply that waited for the
/// read timeout would fail the `bounded` wait rather than pass slowly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_bare_error_replies_then_close_all_resolve_without_a_disconnect() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("bare-burst");
    let admin = Client::connect(&server.connect_string()).await.unwrap();
    admin.ensure_path(&root).await.unwrap();
    admin
        .create(&format!("{root}/x"), b"v", CreateMode::Persistent)
        .await
        .unwrap();
    admin.close().await.unwrap();
    for round in 0..3usize {
        let c = Client::builder(format!("{}{root}", server.connect_string()))
            .session_timeout(Duration::from_secs(60))
            .connect()
            .await
            .unwrap();
        let mut states = c.state_stream();
        let n = 150 + round * 97;
        let mut tasks = Vec::new();
        for i in 0..n {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                match i % 6 {
                    0 => judge(c.delete(&format!("/missing{i}"), None).await, |r| {
                        matches!(r, Err(Error::NoNode))
                    }),
                    1 => judge(c.set_data("/x", b"w", Some(1_000_000)).await, |r| {
                        matches!(r, Err(Error::BadVersion))
                    }),
                    2 => judge(c.set_data("/gone", b"w", None).await, |r| {
                        matches!(r, Err(Error::NoNode))
                    }),
                    3 => judge(c.sync("/").await, |r| r.is_ok()),
                    4 => judge(
                        c.multi(vec![Op::check("/x", Some(7)), Op::delete("/x", None)])
                            .await,
                        |r| r.is_err(),
                    ),
                    _ => judge(
                        c.add_auth("digest", format!("u{i}:p").as_bytes()).await,
                        |r| r.is_ok(),
                    ),
                }
            }));
        }
        // while the tail is owed
        tokio::task::yield_now().await;
        let closing = tokio::spawn({
            let c = c.clone();
            async move { c.close().await }
        });
        let mut bad = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            if bounded("a request of the burst", t).await.unwrap() == Some(false) {
                bad.push(i);
            }
        }
        // requests issued before close() are taken before it; a few that lost the race to the
        // command channel fail with Closed, which is allowed: they are judged only if answered
        let closed = bounded("close", closing).await.unwrap();
        assert!(closed.is_ok(), "round {round}: close: {closed:?}");
        let mut seen = Vec::new();
        while let Some(s) = bounded("state stream", futures::StreamExt::next(&mut states)).await {
            seen.push(s.state);
        }
        assert!(
            !seen.contains(&State::Suspended),
            "round {round}: the connection was given up during a burst of {n}: {seen:?}"
        );
        assert!(
            bad.is_empty(),
            "round {round}: {} of {n} requests got a wrong answer (first {:?})",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
    }
}

/// Regression coverage (held): the session task ending while callers wait. 400 requests
/// without a deadline are written to a blackholed link, 200 more queue behind them once the
/// client gave the connection up, and then `close()` runs out of its close timeout: every
/// caller resolves (the written ones with ConnectionLoss, the queued ones with Closed), none
/// reports success, and `close()` says the session was not closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_requests_in_flight_on_a_dead_link_and_queued_resolves_every_caller() {
    let (proxy, _direct, via) = common::behind_proxy("end-while-waiting").await;
    let c = Client::builder(via)
        .session_timeout(Duration::from_secs(6))
        .close_timeout(Duration::from_millis(800))
        .reconnect_jitter(Duration::from_millis(10))
        .connect()
        .await
        .unwrap();
    proxy.blackhole();
    let spawn = |range: std::ops::Range<u32>| {
        range
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { c.exists(&format!("/e{i}")).await })
            })
            .collect::<Vec<_>>()
    };
    let written = spawn(0..400);
    wait_state(&c, State::Suspended, Duration::from_secs(20)).await;
    proxy.reject_new(true);
    proxy.reset();
    proxy.heal();
    let queued = spawn(400..600);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let closed = bounded("close", c.close()).await;
    assert!(
        matches!(closed, Err(Error::Timeout { sent: false })),
        "close with no server reachable: {closed:?}"
    );
    for (i, t) in written.into_iter().enumerate() {
        let r = bounded("a request written to the dead link", t)
            .await
            .unwrap();
        assert!(
            matches!(r, Err(Error::ConnectionLoss)),
            "written request {i}: {r:?}"
        );
    }
    for (i, t) in queued.into_iter().enumerate() {
        let r = bounded("a queued request", t).await.unwrap();
        assert!(matches!(r, Err(Error::Closed)), "queued request {i}: {r:?}");
    }
}
