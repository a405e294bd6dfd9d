//! Regression tests for the watch defects of issue 8, against the real server. Each test
//! name starts with the defect number (d3: a one-shot watch kills a persistent one, d4:
//! remove_watches half-removes a persistent watch, d10: dropped one-shot watchers accumulate).

mod common;

use common::{bounded, shared};
use zk_core::{CreateMode, EventType, WatchedEvent};

fn ev(t: EventType, p: &str) -> WatchedEvent {
    WatchedEvent {
        event_type: t,
        path: p.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn d10_dropped_one_shot_watchers_do_not_accumulate() {
    let c = shared("d10").await;
    c.create("/n", b"", CreateMode::Persistent).await.unwrap();
    let mut live = Vec::new();
    for _ in 0..100 {
        live.push(c.get_data_watch("/n").await.unwrap().2);
    }
    for round in 0..50 {
        let reads = (0..100).map(|_| c.get_data_watch("/n"));
        for r in futures::future::join_all(reads).await {
            drop(r.unwrap());
        }
        let n = c.registered_watchers();
        assert!(
            n <= 100 + 2 * 1024 + 100,
            "{n} watchers registered after {} dropped ones",
            (round + 1) * 100
        );
    }
    c.set_data("/n", b"x", None).await.unwrap();
    for w in live {
        assert_eq!(
            bounded("a watcher that was kept", w).await.unwrap(),
            ev(EventType::NodeDataChanged, "/n")
        );
    }
    c.close().await.unwrap();
}
