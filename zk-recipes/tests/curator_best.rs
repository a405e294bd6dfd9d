//! Curator's best where kazoo has nothing, against a real server: MultiLock (all or nothing,
//! no deadlock, one deadline), PersistentNode / PersistentTtlNode / GroupMember, and
//! DistributedAtomicLong.

mod common;

use common::{bounded, children, eventually, shared_client, unique};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, Op};
use zk_recipes::{GuardError, Lock, LostReason, MultiLock, ReadLock};

// ------------------------------------------------------------------------------ MultiLock

/// Reads the counter at `path` (ASCII decimal), or 0.
async fn read_count(c: &Client, path: &str) -> (u64, Option<i32>) {
    match c.get_data(path).await {
        Ok((d, st)) => (
            String::from_utf8(d).unwrap().parse().unwrap(),
            Some(st.version),
        ),
        Err(Error::NoNode) => (0, None),
        Err(e) => panic!("read {path}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_locks_over_opposite_orders_never_deadlock_nor_overlap() {
    let (c1, c2) = (shared_client().await, shared_client().await);
    let base = unique("multi-order");
    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    let counter = format!("{base}/count");
    c1.ensure_path(&base).await.unwrap();
    // given in opposite orders: both take `a` first
    let m1 = MultiLock::new(&c1, [&a, &b], "one").unwrap();
    let m2 = MultiLock::new(&c2, [&b, &a], "two").unwrap();
    assert_eq!(m1.paths(), vec![a.as_str(), b.as_str()]);
    assert_eq!(m2.paths(), vec![a.as_str(), b.as_str()]);

    const ROUNDS: u64 = 15;
    let inside = Arc::new(AtomicBool::new(false));
    let worker = |m: MultiLock, c: Client| {
        let (inside, counter) = (inside.clone(), counter.clone());
        tokio::spawn(async move {
            for _ in 0..ROUNDS {
                let g = m.acquire().await.expect("acquire both");
                assert_eq!(g.members().len(), 2);
                assert!(
                    !inside.swap(true, Ordering::SeqCst),
                    "two multi-lock holders at once"
                );
                let (n, version) = read_count(&c, &counter).await;
                let op = match version {
                    Some(v) => Op::set_data(counter.clone(), (n + 1).to_string(), Some(v)),
                    None => Op::create(counter.clone(), b"1".to_vec(), CreateMode::Persistent),
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
                g.fenced_multi(vec![op]).await.expect("fenced increment");
                inside.store(false, Ordering::SeqCst);
                g.release().await.expect("release");
            }
        })
    };
    let t1 = worker(m1, c1.clone());
    let t2 = worker(m2, c2.clone());
    bounded("multi-lock worker one (a deadlock?)", t1)
        .await
        .unwrap();
    bounded("multi-lock worker two (a deadlock?)", t2)
        .await
        .unwrap();
    assert_eq!(read_count(&c1, &counter).await.0, 2 * ROUNDS);
    assert!(children(&c1, &a).await.is_empty(), "a node left under a");
    assert!(children(&c1, &b).await.is_empty(), "a node left under b");
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_lock_deadline_with_a_member_held_elsewhere_releases_what_it_took() {
    let (c1, c2) = (shared_client().await, shared_client().await);
    let base = unique("multi-deadline");
    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    // someone else holds b; the multi-lock takes a first (sorted), then waits for b
    let other = Lock::new(&c2, &b, "other").acquire().await.unwrap();
    let m = MultiLock::new(&c1, [&b, &a], "multi").unwrap();

    let took_a = async {
        eventually("the multi-lock took a", || async {
            children(&c2, &a).await.len() == 1
        })
        .await
    };
    let (r, ()) = tokio::join!(m.acquire_timeout(Duration::from_secs(2)), took_a);
    assert!(r.unwrap().is_none(), "the deadline is Ok(None)");
    eventually("a released after the deadline", || async {
        children(&c2, &a).await.is_empty()
    })
    .await;
    eventually("our queue node on b gone after the deadline", || async {
        children(&c2, &b).await.len() == 1
    })
    .await;

    assert!(m.try_acquire().await.unwrap().is_none(), "b is taken");
    eventually("nothing of ours left after try_acquire", || async {
        children(&c2, &a).await.is_empty() && children(&c2, &b).await.len() == 1
    })
    .await;

    other.release().await.unwrap();
    let g = m.try_acquire().await.unwrap().expect("both free now");
    assert!(g.is_held());
    g.release().await.unwrap();
    assert!(children(&c1, &a).await.is_empty() && children(&c1, &b).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_lock_losing_one_member_marks_the_whole_lost() {
    let (c1, c2) = (shared_client().await, shared_client().await);
    let base = unique("multi-lost");
    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    // any side: a read lock and an exclusive lock
    let m = MultiLock::from_locks([
        Lock::new(&c1, &a, "multi"),
        ReadLock::new(&c1, &b, "multi").into(),
    ])
    .unwrap();
    let g = m.acquire().await.unwrap();
    assert!(g.is_held());
    let fences = g.fences();
    assert_eq!(fences.len(), 2);
    g.fenced_multi(vec![Op::create(
        format!("{base}/w1"),
        b"".to_vec(),
        CreateMode::Persistent,
    )])
    .await
    .expect("fenced write while held");

    // someone deletes the node of member b
    let b_node = g.members()[1].path().to_owned();
    assert!(b_node.starts_with(&format!("{b}/")));
    c2.delete(&b_node, None).await.unwrap();
    let reason = bounded("the multi-guard is lost", g.lost()).await;
    assert_eq!(reason, LostReason::NodeDeleted);
    assert!(!g.is_held());
    assert!(g.members()[0].is_held(), "member a itself is still held");
    match g
        .fenced_multi(vec![Op::create(
            format!("{base}/w2"),
            b"".to_vec(),
            CreateMode::Persistent,
        )])
        .await
    {
        Err(GuardError::Lost(LostReason::NodeDeleted)) => {}
        other => panic!("a fenced write after the loss: {other:?}"),
    }
    assert!(c1.exists(&format!("{base}/w2")).await.unwrap().is_none());
    g.release().await.unwrap();
    assert!(children(&c1, &a).await.is_empty(), "member a released");
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_lock_refuses_no_paths_and_a_path_twice() {
    let c = shared_client().await;
    let p = unique("multi-args");
    let none: [&str; 0] = [];
    assert!(matches!(
        MultiLock::new(&c, none, "x"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        MultiLock::new(&c, [&p, &p], "x"),
        Err(Error::InvalidArgument(_))
    ));
}
