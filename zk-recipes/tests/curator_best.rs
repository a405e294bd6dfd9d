//! Curator's best where kazoo has nothing, against a real server: MultiLock (all or nothing,
//! no deadlock, one deadline), PersistentNode / PersistentTtlNode / GroupMember, and
//! DistributedAtomicLong.

mod common;

use common::{bounded, children, client, eventually, shared_client, unique, wait_state};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, Op, State};
use zk_recipes::{
    DistributedAtomicLong, GroupMember, GuardError, Lock, LostReason, MultiLock, PersistentNode,
    PersistentTtlNode, ReadLock, ServiceDiscovery, ServiceInstance, ServiceType,
};
use zk_testkit::{shared_server, FaultProxy};

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
async fn multi_lock_member_lost_while_waiting_for_the_next_starts_over() {
    // the multi-lock holds a and waits for b; its node on a is deleted meanwhile: it gives
    // everything back and starts over, so the guard it hands out is whole (not lost at birth)
    let (c1, c2) = (shared_client().await, shared_client().await);
    let base = unique("multi-restart");
    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    let other = Lock::new(&c2, &b, "other").acquire().await.unwrap();
    let m = MultiLock::new(&c1, [&a, &b], "multi").unwrap();
    let task = tokio::spawn(async move { m.acquire().await });
    eventually("the multi-lock holds a and queues on b", || async {
        children(&c2, &a).await.len() == 1 && children(&c2, &b).await.len() == 2
    })
    .await;
    let first_a = children(&c2, &a).await.remove(0);
    c2.delete(&format!("{a}/{first_a}"), None).await.unwrap();
    eventually("a taken again after the loss", || async {
        let ch = children(&c2, &a).await;
        ch.len() == 1 && ch[0] != first_a
    })
    .await;
    assert!(!task.is_finished(), "it must still wait for b");
    other.release().await.unwrap();
    let g = bounded("the multi-lock", task).await.unwrap().unwrap();
    assert!(g.is_held(), "handed out whole");
    assert!(g.members().iter().all(|m| m.is_held()));
    assert_ne!(g.members()[0].path(), format!("{a}/{first_a}"));
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_lock_guard_is_lost_at_a_disconnect_and_gives_its_nodes_up() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let base = unique("multi-suspend");
    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    let g = MultiLock::new(&c, [&a, &b], "m")
        .unwrap()
        .acquire()
        .await
        .unwrap();
    proxy.reset(); // the connection breaks; the session lives
    let reason = bounded("lost at the disconnect", g.lost()).await;
    assert_eq!(reason, LostReason::Suspended);
    assert!(matches!(
        g.fenced_multi(vec![]).await,
        Err(GuardError::Lost(LostReason::Suspended))
    ));
    // back in the same session, every member gives its node up
    eventually("both member nodes given up", || async {
        children(&direct, &a).await.is_empty() && children(&direct, &b).await.is_empty()
    })
    .await;
    g.release().await.unwrap();
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

// ---------------------------------------------------------- PersistentNode / GroupMember

/// Waits until `path` exists with `data`, owned by `owner` (0: persistent).
async fn wait_node(c: &Client, path: &str, data: &[u8], owner: i64) {
    eventually(&format!("{path} present with {data:?}"), || async {
        match c.get_data(path).await {
            Ok((d, st)) => d == data && st.ephemeral_owner == owner,
            Err(_) => false,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_node_comes_back_after_a_real_session_expiry_and_a_deletion() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = format!("{}/deep/er/node", unique("pnode"));
    let node = PersistentNode::new(&c, &p, CreateMode::Ephemeral, "v1");
    node.start();
    bounded("initial create", node.wait_for_initial_create())
        .await
        .unwrap();
    assert_eq!(node.actual_path().as_deref(), Some(p.as_str()));
    wait_node(&direct, &p, b"v1", c.session_id()).await;
    assert!(node.is_present());

    // a real expiry: the ephemeral node goes with the session and comes back in the new one
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    eventually("not present while suspended", || async {
        !node.is_present()
    })
    .await;
    let (sid, pw) = c.session_credentials();
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .unwrap();
    eventually("the node gone with the old session", || async {
        direct.exists(&p).await.unwrap().is_none()
    })
    .await;
    node.set_data("v2").unwrap(); // while away: used by the re-creation
    proxy.reject_new(false);
    wait_state(&c, State::Connected).await;
    assert_ne!(c.session_id(), sid);
    wait_node(&direct, &p, b"v2", c.session_id()).await;
    eventually("present again", || async { node.is_present() }).await;

    // someone deletes it: it comes back, with the data
    direct.delete(&p, None).await.unwrap();
    wait_node(&direct, &p, b"v2", c.session_id()).await;
    node.set_data("v3").unwrap();
    wait_node(&direct, &p, b"v3", c.session_id()).await;

    node.close().await.unwrap();
    assert!(
        direct.exists(&p).await.unwrap().is_none(),
        "close deletes it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_node_protected_create_with_a_lost_reply_leaves_exactly_one_node() {
    let server = shared_server();
    let direct = shared_client().await;
    let base = unique("pnode-cut");
    direct.ensure_path(&base).await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    // sequential: a blind second create would leave a duplicate
    let node = PersistentNode::new(
        &c,
        &format!("{base}/member-"),
        CreateMode::EphemeralSequential,
        "x",
    )
    .protected(true);
    proxy.cut_after_request(15); // create2: applied, the reply lost
    bounded("initial create", node.wait_for_initial_create())
        .await
        .unwrap();
    assert_eq!(proxy.cuts_fired(), 1, "the cut did not happen");
    let ch = children(&direct, &base).await;
    assert_eq!(ch.len(), 1, "exactly one node: {ch:?}");
    assert!(
        ch[0].starts_with("_c_") && ch[0][3..].len() > 37 && ch[0].contains("-member-"),
        "Curator's protected name: {ch:?}"
    );
    assert_eq!(
        node.actual_path().unwrap(),
        format!("{base}/{}", ch[0]),
        "the node found again is the one it keeps"
    );
    let st = direct
        .exists(&node.actual_path().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st.ephemeral_owner, c.session_id());
    node.close().await.unwrap();
    assert!(children(&direct, &base).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_node_closed_while_its_create_is_in_flight_leaves_no_node() {
    // the keeper stops with its create sent but unanswered: close must still find and delete
    // what that create makes (a fixed path; a protected sequential name)
    let server = shared_server();
    let direct = shared_client().await;
    for protected in [false, true] {
        let base = unique("pnode-inflight");
        direct.ensure_path(&base).await.unwrap();
        let proxy = FaultProxy::start(server.addr()).await.unwrap();
        let c = client(&proxy.connect_string()).await;
        let (path, mode) = if protected {
            (format!("{base}/m-"), CreateMode::EphemeralSequential)
        } else {
            (format!("{base}/n"), CreateMode::Ephemeral)
        };
        let node = PersistentNode::new(&c, &path, mode, "x").protected(protected);
        proxy.hold_request(&[15]); // create2: held in the proxy, with all that follows
        node.start();
        eventually("the create is held", || async {
            proxy.held_requests() >= 1
        })
        .await;
        let close = tokio::spawn(node.close());
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.release_held(); // the create applies, then close's requests
        bounded("close", close).await.unwrap().unwrap();
        let left = children(&direct, &base).await;
        assert!(left.is_empty(), "protected {protected}: left {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_node_closed_while_waiting_out_anothers_node_leaves_it_alone() {
    // another session's ephemeral node holds our fixed path: we wait for it, and closing must
    // not delete it (it is not ours)
    let (c, other) = (shared_client().await, shared_client().await);
    let p = format!("{}/member", unique("pnode-foreign"));
    other.ensure_path(common_parent(&p)).await.unwrap();
    other
        .create(&p, b"theirs", CreateMode::Ephemeral)
        .await
        .unwrap();
    let node = PersistentNode::new(&c, &p, CreateMode::Ephemeral, "ours");
    assert!(node
        .wait_for_initial_create_timeout(Duration::from_millis(500))
        .await
        .unwrap()
        .is_none());
    assert!(!node.is_present());
    node.close().await.unwrap();
    let (d, st) = other.get_data(&p).await.expect("their node is still there");
    assert_eq!(
        (d.as_slice(), st.ephemeral_owner),
        (&b"theirs"[..], other.session_id())
    );
}

fn common_parent(p: &str) -> &str {
    &p[..p.rfind('/').unwrap()]
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_node_adopts_a_persistent_node_and_recreates_a_sequential_one_at_its_path() {
    let (c, other) = (shared_client().await, shared_client().await);
    let base = unique("pnode-modes");
    // a persistent node already there is adopted and given our data (Curator's rule)
    let fixed = format!("{base}/config");
    other.ensure_path(&base).await.unwrap();
    other
        .create(&fixed, b"old", CreateMode::Persistent)
        .await
        .unwrap();
    let node = PersistentNode::new(&c, &fixed, CreateMode::Persistent, "new");
    node.wait_for_initial_create().await.unwrap();
    wait_node(&other, &fixed, b"new", 0).await;
    node.close().await.unwrap();
    assert!(
        other.exists(&fixed).await.unwrap().is_none(),
        "close deletes it"
    );

    // sequential, unprotected: re-created at the path it got, without a new sequence
    let seq = PersistentNode::new(
        &c,
        &format!("{base}/job-"),
        CreateMode::PersistentSequential,
        "j",
    );
    seq.wait_for_initial_create().await.unwrap();
    let at = seq.actual_path().unwrap();
    assert!(at.starts_with(&format!("{base}/job-")) && at.len() == base.len() + 15);
    other.delete(&at, None).await.unwrap();
    wait_node(&other, &at, b"j", 0).await;
    assert_eq!(seq.actual_path().unwrap(), at);
    assert_eq!(
        children(&other, &base).await.len(),
        1,
        "one node, at the same path"
    );
    seq.close().await.unwrap();
    assert!(children(&other, &base).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_ttl_node_uses_curators_layout_and_expires_after_close() {
    let c = shared_client().await;
    let p = unique("ttl-node");
    let ttl = Duration::from_millis(1500);
    let node = PersistentTtlNode::new(&c, &p, ttl, "payload");
    bounded("initial create", node.wait_for_initial_create())
        .await
        .unwrap();
    let touch = node.touch_path();
    assert_eq!(touch, format!("{p}/touch"));
    eventually("the TTL child exists", || async {
        c.exists(&touch).await.unwrap().is_some()
    })
    .await;
    let (data, _) = c.get_data(&p).await.unwrap();
    assert_eq!(data, b"payload");
    // the server's Stat shows no node type (ephemeralOwner is 0 for both): that P is a
    // container and the child a TTL node is shown by the end, where both go by themselves
    let tst = c.exists(&touch).await.unwrap().unwrap();
    // kept alive well past its TTL while touched
    let touched = tst.version;
    tokio::time::sleep(ttl * 3).await;
    let again = c
        .exists(&touch)
        .await
        .unwrap()
        .expect("still there while touched");
    assert!(again.version > touched, "touched");
    // deleted by someone: the container comes back, then the child
    c.delete(&touch, None).await.unwrap();
    eventually("the child touched again", || async {
        c.exists(&touch).await.unwrap().is_some()
    })
    .await;

    node.close().await;
    eventually(
        "the child expired and the container went after close",
        || async { c.exists(&p).await.unwrap().is_none() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn group_member_sees_joins_and_leaves_and_rejoins_after_a_deletion() {
    let (c1, c2, c3) = (
        shared_client().await,
        shared_client().await,
        shared_client().await,
    );
    let g = unique("group");
    let a = GroupMember::new(&c1, &g, "a").unwrap().data("alpha");
    let b = GroupMember::new(&c2, &g, "b").unwrap().data("beta");
    assert!(matches!(
        GroupMember::new(&c3, &g, "x/y"),
        Err(Error::InvalidArgument(_))
    ));
    bounded("a joins", a.join()).await.unwrap();
    let want_a: std::collections::BTreeMap<String, Vec<u8>> =
        [("a".to_string(), b"alpha".to_vec())].into();
    assert_eq!(a.members().await.unwrap(), want_a);
    b.join_timeout(Duration::from_secs(30))
        .await
        .unwrap()
        .expect("b joined");
    let mut want = want_a.clone();
    want.insert("b".into(), b"beta".to_vec());
    assert_eq!(a.members().await.unwrap(), want);
    // Curator's layout: P/<id>, ephemeral, data = payload
    let st = c3.exists(&format!("{g}/b")).await.unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, c2.session_id());

    b.set_data("beta-2").unwrap();
    want.insert("b".into(), b"beta-2".to_vec());
    eventually("b's new data seen", || async {
        a.members().await.unwrap() == want
    })
    .await;

    // a's node deleted by someone: it joins again by itself
    c3.delete(&format!("{g}/a"), None).await.unwrap();
    eventually("a back", || async { b.members().await.unwrap() == want }).await;

    b.leave().await.unwrap();
    assert_eq!(a.members().await.unwrap(), want_a, "b left");
    a.leave().await.unwrap();
    assert!(children(&c3, &g).await.is_empty());
}

// ---------------------------------------------------------------- DistributedAtomicLong

#[tokio::test(flavor = "multi_thread")]
async fn atomic_long_uses_curators_8_byte_layout_and_its_operations() {
    let c = shared_client().await;
    let p = format!("{}/counters/n", unique("atomic"));
    let n = DistributedAtomicLong::new(&c, &p);
    let r = n.get().await.unwrap();
    assert!(
        r.succeeded && r.pre_value == 0 && r.post_value == 0,
        "missing reads 0"
    );
    let r = n.compare_and_set(0, 1).await.unwrap();
    assert!(
        !r.succeeded,
        "Curator: a missing node never matches, not even 0"
    );
    c.ensure_path(&p).await.unwrap(); // empty data: reads 0, matches nothing
    assert_eq!(n.get().await.unwrap().pre_value, 0);
    assert!(!n.compare_and_set(0, 1).await.unwrap().succeeded);
    c.delete(&p, None).await.unwrap();
    assert!(n.try_initialize(5).await.unwrap());
    assert!(!n.try_initialize(7).await.unwrap(), "already there");
    assert_eq!(c.get_data(&p).await.unwrap().0, 5i64.to_be_bytes());

    let r = n.increment().await.unwrap();
    assert!(r.succeeded);
    assert_eq!((r.pre_value, r.post_value), (5, 6));
    assert_eq!(r.stats.optimistic_tries, 1);
    let r = n.add(10).await.unwrap();
    assert_eq!((r.pre_value, r.post_value), (6, 16));
    let r = n.subtract(4).await.unwrap();
    assert_eq!((r.pre_value, r.post_value), (16, 12));
    let r = n.decrement().await.unwrap();
    assert_eq!(r.post_value, 11);
    let r = n.compare_and_set(3, 4).await.unwrap();
    assert!(!r.succeeded);
    assert_eq!((r.pre_value, r.post_value), (11, 11), "nothing written");
    let r = n.compare_and_set(11, -2).await.unwrap();
    assert!(r.succeeded);
    assert_eq!(c.get_data(&p).await.unwrap().0, (-2i64).to_be_bytes());
    let r = n.try_set(40).await.unwrap();
    assert!(r.succeeded && r.post_value == 40);
    // Java's long arithmetic: wraps
    n.force_set(i64::MAX).await.unwrap();
    assert_eq!(n.increment().await.unwrap().post_value, i64::MIN);

    c.set_data(&p, b"abc", None).await.unwrap();
    assert!(matches!(n.get().await, Err(Error::InvalidArgument(_))));
    assert!(matches!(
        n.increment().await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn atomic_long_contended_increments_sum_exactly_with_promotion() {
    let base = unique("atomic-contended");
    let (p, lock) = (format!("{base}/n"), format!("{base}/n-lock"));
    const CLIENTS: i64 = 4;
    const EACH: i64 = 25;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let c = shared_client().await;
        let n = DistributedAtomicLong::new(&c, &p)
            .optimistic_tries(1)
            .promote_to_lock(&lock, Duration::from_secs(30));
        tasks.push(tokio::spawn(async move {
            let (mut failed, mut promoted) = (0u32, 0u32);
            let mut done = 0;
            while done < EACH {
                let r = n.increment().await.expect("increment");
                promoted += r.stats.promoted_lock_tries;
                if r.succeeded {
                    assert_eq!(r.post_value, r.pre_value + 1);
                    done += 1;
                } else {
                    failed += 1;
                }
            }
            (failed, promoted)
        }));
    }
    let mut promoted = 0;
    for t in tasks {
        let (_, p) = bounded("incrementing", t).await.unwrap();
        promoted += p;
    }
    let c = shared_client().await;
    let r = DistributedAtomicLong::new(&c, &p).get().await.unwrap();
    assert_eq!(r.pre_value, CLIENTS * EACH, "every increment exactly once");
    eprintln!(
        "{} increments, {promoted} attempts under the promotion lock",
        CLIENTS * EACH
    );
    // (how often they promote depends on timing: the next test makes a promotion certain)
}

#[tokio::test(flavor = "multi_thread")]
async fn atomic_long_promotes_to_the_lock_after_a_lost_race() {
    // the optimistic write is held in a proxy while someone else increments: it fails on the
    // version, and the increment is made again holding the promotion lock
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let base = unique("atomic-promote");
    let (p, lock) = (format!("{base}/n"), format!("{base}/n-lock"));
    let other = DistributedAtomicLong::new(&direct, &p);
    assert!(other.try_initialize(10).await.unwrap());
    let n = DistributedAtomicLong::new(&c, &p)
        .optimistic_tries(1)
        .promote_to_lock(&lock, Duration::from_secs(30));
    proxy.hold_request(&[5]); // our setData, and what follows it
    let ours = tokio::spawn(async move { n.increment().await });
    eventually("our write is held", || async { proxy.held_requests() >= 1 }).await;
    assert_eq!(other.increment().await.unwrap().post_value, 11);
    proxy.release_held();
    let r = bounded("the promoted increment", ours)
        .await
        .unwrap()
        .unwrap();
    assert!(r.succeeded, "{r:?}");
    assert_eq!((r.pre_value, r.post_value), (11, 12));
    assert_eq!(
        (r.stats.optimistic_tries, r.stats.promoted_lock_tries),
        (1, 1)
    );
    assert_eq!(other.get().await.unwrap().pre_value, 12);
    // the promotion lock (a Curator mutex) was released
    assert!(children(&direct, &lock).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn atomic_long_lost_write_reply_is_never_applied_twice() {
    let server = shared_server();
    let direct = shared_client().await;
    let p = unique("atomic-cut");
    DistributedAtomicLong::new(&direct, &p)
        .try_initialize(41)
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let n = DistributedAtomicLong::new(&c, &p);
    proxy.cut_after_request(5); // setData: applied on the server, the reply lost
    let r = bounded("increment with a lost reply", n.increment()).await;
    assert_eq!(proxy.cuts_fired(), 1, "the cut did not happen");
    match r {
        Err(e) => assert!(e.may_have_been_applied(), "{e}"),
        Ok(r) => panic!("a lost write reported as {r:?}"),
    }
    let now = DistributedAtomicLong::new(&direct, &p).get().await.unwrap();
    assert_eq!(now.pre_value, 42, "applied once, not twice");
    // the next increment through the same handle goes on normally
    let r = n.increment().await.unwrap();
    assert_eq!((r.pre_value, r.post_value), (42, 43));
}

// ------------------------------------------------------------------- service discovery

/// What Curator 5.4's `JsonInstanceSerializer<String>` wrote for these values (run once
/// against Debian's curator-x-discovery 5.4.0 jar).
const CURATOR_JSON: &str = "{\"name\":\"api\",\"id\":\"host-7\",\"address\":\"10.0.0.7\",\"port\":8080,\"sslPort\":null,\"payload\":\"hello\",\"registrationTimeUTC\":1700000000000,\"serviceType\":\"DYNAMIC\",\"uriSpec\":null}";
const CURATOR_JSON_URI: &str = "{\"name\":\"api\",\"id\":\"x\",\"address\":\"a\",\"port\":null,\"sslPort\":null,\"payload\":null,\"registrationTimeUTC\":5,\"serviceType\":\"DYNAMIC\",\"uriSpec\":{\"parts\":[{\"value\":\"scheme\",\"variable\":true},{\"value\":\"://foo.com:\",\"variable\":false},{\"value\":\"port\",\"variable\":true}]}}";

#[test]
fn service_instance_json_is_curators_byte_for_byte() {
    let mut i = ServiceInstance::new("api", "host-7");
    i.address = Some("10.0.0.7".into());
    i.port = Some(8080);
    i.payload = "hello".into();
    i.registration_time_utc = 1_700_000_000_000;
    assert_eq!(String::from_utf8(i.to_json()).unwrap(), CURATOR_JSON);
    assert_eq!(
        ServiceInstance::from_json(CURATOR_JSON.as_bytes()).unwrap(),
        i
    );
    let u = ServiceInstance::from_json(CURATOR_JSON_URI.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(u.to_json()).unwrap(), CURATOR_JSON_URI);
    // Curator reads `enabled` and unknown members
    let e = ServiceInstance::from_json(br#"{"name":"a","id":"b","enabled":false,"x":1}"#).unwrap();
    assert!(!e.enabled && e.service_type == ServiceType::Dynamic);
    assert!(ServiceInstance::from_json(b"[1]").is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn service_registration_is_kept_through_a_real_session_expiry_and_found_by_name() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let base = format!("{}/services", unique("discovery"));
    let ours = ServiceDiscovery::new(&c, &base);
    let theirs = ServiceDiscovery::new(&direct, &base);

    // a stale registration of the same id from another session is replaced (Curator's rule)
    let stale = format!("{base}/api/host-1");
    direct.ensure_path(&format!("{base}/api")).await.unwrap();
    direct
        .create(&stale, b"stale", CreateMode::Ephemeral)
        .await
        .unwrap();
    let mut one = ServiceInstance::new("api", "host-1");
    one.port = Some(1);
    let reg = bounded("register", ours.register(one.clone()))
        .await
        .unwrap();
    assert_eq!(reg.path().as_deref(), Some(stale.as_str()));
    let st = direct.exists(&stale).await.unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, c.session_id(), "ours now, ephemeral");
    let mut two = ServiceInstance::new("api", "host-2");
    two.service_type = ServiceType::Permanent;
    let reg2 = ours.register(two.clone()).await.unwrap();
    assert_eq!(
        direct
            .exists(&format!("{base}/api/host-2"))
            .await
            .unwrap()
            .unwrap()
            .ephemeral_owner,
        0,
        "a PERMANENT instance is persistent"
    );
    assert_eq!(theirs.query_for_names().await.unwrap(), vec!["api"]);
    let found = theirs.query_for_instances("api").await.unwrap();
    assert_eq!(found, vec![one.clone(), two.clone()]);

    // a real session expiry: the DYNAMIC instance goes, and comes back in the new session
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    let (sid, pw) = c.session_credentials();
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .unwrap();
    eventually("the dynamic instance gone with the session", || async {
        theirs
            .query_for_instance("api", "host-1")
            .await
            .unwrap()
            .is_none()
    })
    .await;
    proxy.reject_new(false);
    eventually("the dynamic instance registered again", || async {
        theirs
            .query_for_instance("api", "host-1")
            .await
            .unwrap()
            .as_ref()
            == Some(&one)
    })
    .await;
    assert_ne!(c.session_id(), sid);
    // deleted by someone: back again
    direct.delete(&stale, None).await.unwrap();
    eventually("registered again after a deletion", || async {
        theirs
            .query_for_instance("api", "host-1")
            .await
            .unwrap()
            .is_some()
    })
    .await;

    reg.unregister().await.unwrap();
    reg2.unregister().await.unwrap();
    assert!(theirs.query_for_instances("api").await.unwrap().is_empty());
}

// ------------------------------------------------------------------------ cancel safety

/// Polls a fresh `make()` future i times (2 ms apart) and drops it, for i = 0, 1, 2, … until
/// it completes; after each drop, waits until `clean()` holds. Returns the completed output.
async fn drop_at_every_point<T, F, Fut, C, CFut>(what: &str, make: F, clean: C) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
    C: Fn() -> CFut,
    CFut: std::future::Future<Output = bool>,
{
    let mut i = 0;
    loop {
        let mut fut = Box::pin(make());
        for _ in 0..i {
            if let std::task::Poll::Ready(out) = futures::poll!(&mut fut) {
                eprintln!("{what} completed after {i} polls");
                return out;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(fut);
        eventually(
            &format!("nothing left after dropping {what} at poll {i}"),
            &clean,
        )
        .await;
        i += 1;
        assert!(i < 500, "{what} never completed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_multi_lock_acquire_or_a_registration_at_any_point_leaves_no_node() {
    let c = shared_client().await;
    let base = unique("cancel-best");
    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    let m = MultiLock::new(&c, [&a, &b], "me").unwrap();
    let empty = || async { children(&c, &a).await.is_empty() && children(&c, &b).await.is_empty() };
    let g = drop_at_every_point("a multi-lock acquire", || m.acquire(), empty)
        .await
        .unwrap();
    g.release().await.unwrap();
    assert!(empty().await);

    let d = ServiceDiscovery::new(&c, &format!("{base}/services"));
    let api = format!("{base}/services/api");
    let reg = drop_at_every_point(
        "a registration",
        || d.register(ServiceInstance::new("api", "i-1")),
        || async { children(&c, &api).await.is_empty() },
    )
    .await
    .unwrap();
    reg.unregister().await.unwrap();
    assert!(children(&c, &api).await.is_empty());
}
