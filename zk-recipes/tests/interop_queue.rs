//! Queue and LockingQueue against real kazoo 2.11 processes (`tests/interop/kazoo_queue.py`): a
//! kazoo producer and a Rust consumer and the other way round, for both queues, in kazoo's
//! order (priority, then creation); and kazoo and Rust LockingQueue consumers racing on one
//! queue, checked by a shared critical-section node per entry.

mod common;

use common::{bounded, python, python_run, shared_client, unique};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use zk_core::{CreateMode, Error};
use zk_recipes::{LockingQueue, Queue};
use zk_testkit::shared_server;

/// `prefix-0 .. prefix-(n-1)` in the order a queue hands them out when `prefix-i` was put
/// with priority `(i % 3) * 100` in index order.
fn expected_order(prefix: &str, n: usize) -> Vec<String> {
    let mut v: Vec<(usize, usize)> = (0..n).map(|i| (i % 3, i)).collect();
    v.sort();
    v.into_iter()
        .map(|(_, i)| format!("{prefix}-{i}"))
        .collect()
}

/// The values of the `GOT` lines, in order.
fn got(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("GOT "))
        .map(str::to_owned)
        .collect()
}

async fn rust_put(p: &str, locking: bool, n: usize, prefix: &str) {
    let c = shared_client().await;
    for i in 0..n {
        let v = format!("{prefix}-{i}");
        let prio = (i % 3) as u16 * 100;
        if locking {
            LockingQueue::new(&c, p)
                .put(v.as_bytes(), prio)
                .await
                .unwrap();
        } else {
            Queue::new(&c, p).put(v.as_bytes(), prio).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_queue_kazoo_producer_rust_consumer_and_back() {
    let hosts = shared_server().connect_string();
    let p = unique("interop-queue");
    python_run("kazoo_queue.py", &[&hosts, "put", "plain", &p, "30", "k"]).await;
    let c = shared_client().await;
    let q = Queue::new(&c, &p);
    let mut taken = Vec::new();
    while let Some(v) = q.get_timeout(Duration::from_secs(5)).await.unwrap() {
        taken.push(String::from_utf8(v).unwrap());
    }
    assert_eq!(
        taken,
        expected_order("k", 30),
        "kazoo's entries, kazoo's order"
    );

    rust_put(&p, false, 30, "r").await;
    let out = python_run("kazoo_queue.py", &[&hosts, "get", &p, "30"]).await;
    assert_eq!(
        got(&out),
        expected_order("r", 30),
        "our entries, as kazoo takes them"
    );
    assert!(q.is_empty().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_locking_queue_kazoo_producer_rust_consumer_and_back() {
    let hosts = shared_server().connect_string();
    let p = unique("interop-lqueue");
    python_run("kazoo_queue.py", &[&hosts, "put", "locking", &p, "30", "k"]).await;
    let c = shared_client().await;
    let q = LockingQueue::new(&c, &p);
    let mut taken = Vec::new();
    while let Some(e) = q.get_timeout(Duration::from_secs(5)).await.unwrap() {
        taken.push(String::from_utf8(e.data().to_vec()).unwrap());
        assert!(e.consume().await.unwrap());
    }
    // put, then put_all per priority: within a priority still creation order = index order
    assert_eq!(
        taken,
        expected_order("k", 30),
        "kazoo's entries, kazoo's order"
    );

    rust_put(&p, true, 30, "r").await;
    let out = python_run("kazoo_queue.py", &[&hosts, "lget", &p, "30"]).await;
    assert_eq!(got(&out), expected_order("r", 30));
    assert!(q.is_empty().await.unwrap());
    assert!(c
        .get_children(&format!("{p}/taken"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_locking_queue_kazoo_and_rust_consumers_never_hold_one_entry_at_once() {
    const N: usize = 200;
    let hosts = shared_server().connect_string();
    let p = unique("interop-lqueue-race");
    let check = format!("{p}-check");
    let c = shared_client().await;
    c.ensure_path(&check).await.unwrap();
    let values: Vec<Vec<u8>> = (0..N).map(|i| format!("e{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    LockingQueue::new(&c, &p).put_all(&refs, 100).await.unwrap();

    let kazoo: Vec<_> = (0..2)
        .map(|_| python("kazoo_queue.py", &[&hosts, "lconsume", &p, &check]))
        .collect();
    let mut rust = Vec::new();
    for _ in 0..2 {
        let c = shared_client().await;
        let (p, check) = (p.clone(), check.clone());
        rust.push(tokio::spawn(async move {
            let q = LockingQueue::new(&c, &p);
            // start once kazoo has consumed an entry: on a loaded machine its start can take
            // longer than Rust needs for all of them, and the test is about both taking
            let entries = format!("{p}/entries");
            let start = tokio::time::Instant::now();
            while c.get_children(&entries).await.unwrap().len() == N {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "kazoo consumed nothing in 60 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut log = Vec::new();
            while let Some(e) = q.get_timeout(Duration::from_secs(5)).await.unwrap() {
                let name = String::from_utf8(e.data().to_vec()).unwrap();
                let mark = format!("{check}/{name}");
                match c.create(&mark, b"rust", CreateMode::Ephemeral).await {
                    Ok(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        c.delete(&mark, None).await.unwrap();
                    }
                    Err(Error::NodeExists) => log.push(format!("VIOLATION {name}")),
                    Err(e) => panic!("{e}"),
                }
                let ok = e.consume().await.unwrap();
                log.push(format!("{} {name}", if ok { "CONSUMED" } else { "LOST" }));
            }
            log
        }));
    }
    let mut lines = Vec::new();
    let (mut rust_n, mut kazoo_n) = (0, 0);
    for t in rust {
        let l = bounded("a rust consumer", t).await.unwrap();
        rust_n += l.iter().filter(|l| l.starts_with("CONSUMED")).count();
        lines.extend(l);
    }
    for mut child in kazoo {
        let mut stdout = child.stdout.take().unwrap();
        let mut out = String::new();
        bounded("a kazoo consumer", stdout.read_to_string(&mut out))
            .await
            .unwrap();
        let status = bounded("a kazoo consumer exits", child.wait())
            .await
            .unwrap();
        assert!(status.success(), "kazoo consumer failed:\n{out}");
        kazoo_n += out.lines().filter(|l| l.starts_with("CONSUMED")).count();
        lines.extend(out.lines().map(str::to_owned));
    }
    eprintln!("consumed: {rust_n} by Rust, {kazoo_n} by kazoo");
    let violations: Vec<_> = lines
        .iter()
        .filter(|l| l.starts_with("VIOLATION"))
        .collect();
    assert!(violations.is_empty(), "held at once: {violations:?}");
    let mut consumed: BTreeMap<String, usize> = BTreeMap::new();
    for l in &lines {
        if let Some(v) = l.strip_prefix("CONSUMED ") {
            *consumed.entry(v.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(consumed.len(), N, "every entry consumed");
    assert!(consumed.values().all(|n| *n == 1), "once each");
    assert!(rust_n > 0 && kazoo_n > 0, "both sides took entries");
    assert!(LockingQueue::new(&c, &p).is_empty().await.unwrap());
}
