//! Read batching (issue 8, cost per request): while many replies are owed, zk-core raises the
//! socket's receive low-water mark (`SO_RCVLOWAT`) so the kernel wakes it once per several
//! replies. The mark must never ask for more bytes than the replies owed must bring: one
//! reply counted that never comes, and the session task sleeps on bytes that are never sent.
//! These bursts make that as likely as it gets: replies as small as replies get (a bare error
//! header), failing multis, notifications, auth and pings between them, bursts that end while
//! the mark is raised, and a close with a full pipeline.

mod common;

use common::bounded;
use futures::future::join_all;
use futures::StreamExt;
use std::time::Duration;
use zk_core::{AddWatchMode, Client, CreateMode, Error, EventType, Op};

/// What one request of a burst returned, reduced to what the test checks.
#[derive(Debug, PartialEq)]
enum Got {
    Ok,
    NoNode,
    Missing,
    MultiFailed,
}

/// One request of kind `i % 9`; every kind has a known answer.
async fn one(c: &Client, round: usize, i: usize) -> (usize, Result<Got, Error>) {
    let kind = i % 9;
    let r = match kind {
        // the smallest replies there are: a 16-byte header with an error, nothing else
        0 => c.get_data("/missing").await.map(|_| Got::Ok),
        1 => c
            .exists("/missing")
            .await
            .map(|s| if s.is_none() { Got::Missing } else { Got::Ok }),
        2 => c.delete("/missing", None).await.map(|_| Got::Ok),
        3 => c.set_data("/n", &[i as u8; 8], None).await.map(|_| Got::Ok),
        4 => c
            .create(&format!("/n/c-{round}-{i}"), b"", CreateMode::Ephemeral)
            .await
            .map(|_| Got::Ok),
        5 => c.get_children("/n").await.map(|_| Got::Ok),
        6 => c.sync("/n").await.map(|_| Got::Ok),
        7 => match c
            .multi(vec![Op::check("/n", None), Op::delete("/missing", None)])
            .await
        {
            Err(_) => Ok(Got::MultiFailed),
            Ok(_) => Ok(Got::Ok),
        },
        _ => c.get_data("/n").await.map(|_| Got::Ok),
    };
    let r = match r {
        Err(Error::NoNode) => Ok(Got::NoNode),
        other => other,
    };
    (kind, r)
}

fn expected(kind: usize) -> Got {
    match kind {
        0 | 2 => Got::NoNode,
        1 => Got::Missing,
        7 => Got::MultiFailed,
        _ => Got::Ok,
    }
}

/// Bursts of 1 to 400 pipelined requests of nine kinds (a third of them failing with bare
/// error replies), with a recursive watch turning every set and create into a notification,
/// credentials added mid-burst, and pings (idle spells past a ping interval). Every request
/// must get its own answer, with no connection loss (a low-water mark counting one reply too
/// many would leave a burst's last replies unread until the read timeout drops the
/// connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_bursts_of_small_and_failing_replies_all_resolve_with_read_batching() {
    let direct = common::shared("read-batching").await;
    direct
        .create("/n", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let root = direct.chroot().unwrap().to_owned();
    let server = zk_testkit::shared_server();
    // plain TCP to the server (read batching is for plain TCP only). Pings every third of the
    // session timeout; 9 s rather than the server's 4 s minimum, so that a loaded machine
    // (a slow burst, a late ping reply) does not lose the connection or the session, which
    // the test would report as a read-batching failure
    let session_timeout = Duration::from_secs(9);
    let ping_interval = session_timeout / 3;
    let c = Client::builder(format!("{}{root}", server.connect_string()))
        .session_timeout(session_timeout)
        // the close below waits behind 200 pipelined gets: bounded, but not by the default 2 s
        .close_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let session = c.session_id();
    let mut events = c
        .add_watch("/n", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let mut notified = 0usize;
    let mut changes = 0usize;
    let sizes = [1usize, 7, 9, 10, 17, 33, 64, 65, 129, 400, 250, 3, 100];
    for (round, &n) in sizes.iter().enumerate() {
        if round % 4 == 1 {
            // an auth reply in the middle of the burst (answered out of order by the server)
            let c2 = c.clone();
            tokio::spawn(async move { c2.add_auth("digest", b"u:p").await });
        }
        let results = bounded(
            &format!("burst {round} of {n} pipelined requests"),
            join_all((0..n).map(|i| one(&c, round, i))),
        )
        .await;
        for (i, (kind, r)) in results.into_iter().enumerate() {
            match r {
                Ok(g) => assert_eq!(
                    g,
                    expected(kind),
                    "burst {round}, request {i} (kind {kind})"
                ),
                Err(e) => panic!("burst {round}, request {i} (kind {kind}): {e}"),
            }
            if kind == 3 || kind == 4 {
                changes += 1;
            }
        }
        // the notifications of this burst, interleaved with its replies, all arrive
        while notified < changes {
            let ev = bounded(
                &format!("notification {} of {changes}", notified + 1),
                events.next(),
            )
            .await
            .expect("watch stream ended")
            .expect("watch event");
            assert!(
                matches!(
                    ev.event_type,
                    EventType::NodeDataChanged | EventType::NodeCreated
                ),
                "{ev:?}"
            );
            notified += 1;
        }
        if round % 5 == 4 {
            // idle past a ping interval with nothing owed, then burst again
            tokio::time::sleep(ping_interval + Duration::from_millis(500)).await;
        }
    }
    assert_eq!(c.session_id(), session, "the session was kept");
    // a close behind a full pipeline: every request before it is answered, then the close
    let gets: Vec<_> = (0..200).map(|_| c.get_data("/missing")).collect();
    let (results, closed) = bounded(
        "200 gets and a close",
        futures::future::join(join_all(gets), async {
            tokio::task::yield_now().await;
            c.close().await
        }),
    )
    .await;
    closed.expect("close");
    for r in results {
        assert!(
            matches!(r, Err(Error::NoNode) | Err(Error::Closed)),
            "a get before the close: {r:?}"
        );
    }
}
