//! The house rules with `Layout::Curator` (no Java here; `interop_curator.rs` has the real
//! Curator): protected-create recovery, no adoption of another session's node, one deadline
//! with nothing left behind, cancel safety (drop after i polls, every i), the lost signal and
//! the fence, and SemaphoreV2's lease fenced by (and given back with) the `P/locks` mutex.

mod common;

use common::{bounded, children, client, eventually, shared_client, unique};
use std::task::Poll;
use std::time::Duration;
use zk_core::{Client, CreateMode, Op};
use zk_recipes::{Election, Layout, Lock, LostReason, ReadLock, Semaphore, WriteLock};
use zk_testkit::FaultProxy;

fn curator_lock(c: &Client, path: &str, id: &str) -> Lock {
    Lock::new(c, path, id).layout(Layout::Curator)
}

fn curator_sem(c: &Client, path: &str, id: &str, max: u32) -> Semaphore {
    Semaphore::new(c, path, id, max)
        .unwrap()
        .layout(Layout::Curator)
}

/// Every node under `path`, recursively (relative paths), sorted.
async fn tree(c: &Client, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![String::new()];
    while let Some(rel) = todo.pop() {
        for k in children(c, &format!("{path}{rel}")).await {
            let r = format!("{rel}/{k}");
            out.push(r.clone());
            todo.push(r);
        }
    }
    out.sort();
    out
}

/// Waits (bounded) until the only nodes under `path` are `keep` (relative paths).
async fn wait_tree(c: &Client, path: &str, keep: &[&str]) {
    let want: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    eventually(&format!("{path} holds only {keep:?}"), || {
        let want = want.clone();
        async move { tree(c, path).await == want }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn curator_create_applied_but_reply_lost_leaves_exactly_one_node() {
    let server = zk_testkit::shared_server();
    let c = shared_client().await;
    let path = unique("ccut");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let pc = client(&proxy.connect_string()).await;
    // the parent, a container, is created with opcode 19: the cut hits the contender create
    let lock = curator_lock(&pc, &path, "me");
    proxy.cut_after_request(15);
    let g = bounded("acquire", lock.acquire()).await.unwrap();
    assert_eq!(proxy.cuts_fired(), 1);
    let ch = children(&c, &path).await;
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert!(ch[0].starts_with(lock.prefix()), "{ch:?}");
    assert_eq!(format!("{path}/{}", ch[0]), g.path());
    g.release().await.unwrap();

    // the semaphore's lease is created in a multi (opcode 14): recovered by its prefix too
    let sem = curator_sem(&pc, &path, "me", 1);
    proxy.cut_after_request(14);
    let lease = bounded("lease", sem.acquire()).await.unwrap();
    assert_eq!(proxy.cuts_fired(), 2);
    let leases = children(&c, &format!("{path}/leases")).await;
    assert_eq!(leases.len(), 1, "one lease: {leases:?}");
    assert_eq!(format!("{path}/leases/{}", leases[0]), lease.path());
    lease.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn curator_stale_node_of_an_old_session_with_our_prefix_is_not_adopted() {
    let server = zk_testkit::shared_server();
    let c = shared_client().await;
    let path = unique("cstale");
    c.ensure_path(&path).await.unwrap();
    let id = uuid::Uuid::new_v4();
    let old = shared_client().await;
    let stale = old
        .create(
            &format!("{path}/_c_{}-lock-", id.hyphenated()),
            b"old",
            CreateMode::EphemeralSequential,
        )
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let pc = client(&proxy.connect_string()).await;
    let lock = curator_lock(&pc, &path, "new").with_uuid(id);
    proxy.cut_after_request(15);
    let g = bounded("acquire", lock.acquire()).await.unwrap();
    assert_ne!(g.path(), stale, "adopted a node of another session");
    assert!(c.exists(&stale).await.unwrap().is_none(), "stale node left");
    let st = c.exists(g.path()).await.unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, pc.session_id());
    g.release().await.unwrap();
}

/// One deadline, `Ok(None)` at it, and nothing of the waiter left, for each recipe.
#[tokio::test(flavor = "multi_thread")]
async fn curator_timeouts_answer_none_and_leave_nothing() {
    let c = shared_client().await;
    let t = Duration::from_millis(400);
    // mutex
    let p = unique("cto-lock");
    let holder = curator_lock(&c, &p, "h").acquire().await.unwrap();
    let w = curator_lock(&c, &p, "w");
    assert!(w.acquire_timeout(t).await.unwrap().is_none());
    assert!(w.try_acquire().await.unwrap().is_none());
    wait_tree(&c, &p, &[&holder.path()[p.len()..]]).await;
    holder.release().await.unwrap();
    // a reader behind a writer
    let p = unique("cto-rw");
    let writer = WriteLock::new(&c, &p, "w").layout(Layout::Curator);
    let holder = writer.acquire().await.unwrap();
    let r = ReadLock::new(&c, &p, "r").layout(Layout::Curator);
    assert!(r.acquire_timeout(t).await.unwrap().is_none());
    wait_tree(&c, &p, &[&holder.path()[p.len()..]]).await;
    holder.release().await.unwrap();
    // a full semaphore: no lease and no mutex node of the waiter stays
    let p = unique("cto-sem");
    let lease = curator_sem(&c, &p, "h", 1).acquire().await.unwrap();
    let w = curator_sem(&c, &p, "w", 1);
    assert!(w.acquire_timeout(t).await.unwrap().is_none());
    let lease_rel = &lease.path()[p.len()..];
    wait_tree(&c, &p, &["/leases", lease_rel, "/locks"]).await;
    assert!(w.try_acquire().await.unwrap().is_none());
    wait_tree(&c, &p, &["/leases", lease_rel, "/locks"]).await;
    lease.release().await.unwrap();
    // an election
    let p = unique("cto-elect");
    let leader = Election::new(&c, &p, "l")
        .layout(Layout::Curator)
        .acquire()
        .await
        .unwrap();
    let cand = Election::new(&c, &p, "c").layout(Layout::Curator);
    assert!(cand.acquire_timeout(t).await.unwrap().is_none());
    wait_tree(&c, &p, &[&leader.path()[p.len()..]]).await;
    leader.release().await.unwrap();
}

/// Dropping an acquire future after i polls, for every i until it completes, leaves nothing.
#[tokio::test(flavor = "multi_thread")]
async fn curator_dropping_acquire_at_any_point_leaves_nothing() {
    let c = shared_client().await;
    let p = unique("ccancel");
    let lock = curator_lock(&c, &p, "me");
    let sem = curator_sem(&c, &format!("{p}-sem"), "me", 1);
    for what in ["lock", "semaphore"] {
        let mut i = 0;
        loop {
            let mut fut = match what {
                "lock" => Box::pin(lock.acquire())
                    as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>,
                _ => Box::pin(sem.acquire()),
            };
            let mut done = None;
            for _ in 0..i {
                match futures::poll!(&mut fut) {
                    Poll::Ready(r) => {
                        done = Some(r);
                        break;
                    }
                    Poll::Pending => tokio::time::sleep(Duration::from_millis(2)).await,
                }
            }
            drop(fut);
            if let Some(r) = done {
                r.unwrap().release().await.unwrap();
                eprintln!("{what}: acquire completed after {i} polls");
                break;
            }
            match what {
                "lock" => wait_tree(&c, &p, &[]).await,
                _ => {
                    let s = format!("{p}-sem");
                    eventually("no lease and no mutex node", || async {
                        tree(&c, &s)
                            .await
                            .iter()
                            .all(|n| n == "/locks" || n == "/leases")
                    })
                    .await
                }
            }
            i += 1;
            assert!(i < 1000, "{what}: acquire never completed");
        }
    }
}

/// A deleted node is a loss (`NodeDeleted`), and the guard's fence fails on the server.
#[tokio::test(flavor = "multi_thread")]
async fn curator_guards_are_lost_when_their_node_goes_and_fence_on_it() {
    let c = shared_client().await;
    let p = unique("clost");
    let guards = vec![
        curator_lock(&c, &p, "a").acquire().await.unwrap(),
        ReadLock::new(&c, &format!("{p}-r"), "r")
            .layout(Layout::Curator)
            .acquire()
            .await
            .unwrap(),
        curator_sem(&c, &format!("{p}-s"), "s", 2)
            .acquire()
            .await
            .unwrap(),
        Election::new(&c, &format!("{p}-e"), "e")
            .layout(Layout::Curator)
            .acquire()
            .await
            .unwrap(),
    ];
    let other = shared_client().await;
    for g in guards {
        let fence_target = format!("{}-fenced", g.path());
        other.delete(g.path(), None).await.unwrap();
        assert_eq!(bounded("lost", g.lost()).await, LostReason::NodeDeleted);
        // the server's fence: a multi with it does not apply
        let r = c
            .multi(vec![
                g.fence(),
                Op::create(fence_target.clone(), b"x".to_vec(), CreateMode::Ephemeral),
            ])
            .await;
        assert!(r.is_err(), "a fenced write applied after the loss");
        assert!(c.exists(&fence_target).await.unwrap().is_none());
    }
}

/// SemaphoreV2: a waiter creates its lease while holding the `P/locks` mutex and counts it; if
/// the mutex node goes (someone deleted it), it gives its lease back and queues again, and
/// takes a lease once there is room.
#[tokio::test(flavor = "multi_thread")]
async fn curator_semaphore_waiter_gives_its_lease_back_when_its_mutex_node_goes() {
    let c = shared_client().await;
    let p = unique("csemfence");
    let held = curator_sem(&c, &p, "h", 1).acquire().await.unwrap();
    let w = curator_sem(&c, &p, "w", 1);
    let waiter = tokio::spawn(async move { w.acquire().await });
    // admitted and waiting: its mutex node and its (counted) lease exist
    let locks = format!("{p}/locks");
    let leases = format!("{p}/leases");
    eventually("the waiter's lease beside the holder's", || async {
        children(&c, &leases).await.len() == 2 && children(&c, &locks).await.len() == 1
    })
    .await;
    let mutex_node = children(&c, &locks).await.remove(0);
    let held_name = held.path().rsplit('/').next().unwrap().to_owned();
    let old_lease = children(&c, &leases)
        .await
        .into_iter()
        .find(|n| *n != held_name)
        .unwrap();
    c.delete(&format!("{locks}/{mutex_node}"), None)
        .await
        .unwrap();
    // it gives that lease back and queues again: a new mutex node (and, admitted again at
    // once, a new lease that waits for room)
    eventually("the waiter requeued, its lease given back", || async {
        let m = children(&c, &locks).await;
        !children(&c, &leases).await.contains(&old_lease) && m.len() == 1 && m[0] != mutex_node
    })
    .await;
    assert!(children(&c, &leases).await.len() <= 2);
    held.release().await.unwrap();
    let g = bounded("the waiter's lease", waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(children(&c, &leases).await.len(), 1);
    // the mutex was released once the lease was taken
    eventually("the mutex released", || async {
        children(&c, &locks).await.is_empty()
    })
    .await;
    g.release().await.unwrap();
}
