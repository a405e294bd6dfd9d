//! Review of issue 12's Curator recipes (helper rev12a): each test is named after the defect
//! or the guarantee it pins, against a real server.

mod common;

use common::{bounded, children, client, eventually, shared_client, unique, wait_state};
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, State};
use zk_recipes::{
    DistributedAtomicLong, Election, GroupMember, Layout, Lock, LostPolicy, LostReason, MultiLock,
    PersistentNode, PersistentTtlNode, ReadLock, Semaphore, ServiceDiscovery, ServiceInstance,
    WriteLock,
};
use zk_testkit::{shared_server, FaultProxy};

/// ZooKeeper opcodes, for `FaultProxy` traps.
const OP_EXISTS: i32 = 3;
const OP_SET_DATA: i32 = 5;
const OP_MULTI: i32 = 14;
const OP_CREATE2: i32 = 15;

fn curator_sem(c: &Client, path: &str, id: &str, max: u32) -> Semaphore {
    Semaphore::new(c, path, id, max)
        .unwrap()
        .layout(Layout::Curator)
}

/// SemaphoreV2's lease create is `multi([check our P/locks node, create lease])`. Here the
/// waiter's mutex node is deleted (and the mutex taken by someone else) while that multi is
/// on the wire: the fence must refuse the lease, so no lease is ever created by a waiter that
/// does not hold the mutex. With the check op removed the lease is created (and `P/leases`'
/// child version moves).
#[tokio::test(flavor = "multi_thread")]
async fn semaphore_v2_lease_create_is_fenced_by_the_mutex_node() {
    let server = shared_server();
    let direct = shared_client().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let p = unique("r12a-semfence");
    let (locks, leases) = (format!("{p}/locks"), format!("{p}/leases"));
    let sem = curator_sem(&c, &p, "a", 1);
    proxy.hold_request(&[OP_MULTI]); // the lease create, fenced by the mutex node
    let waiter = tokio::spawn(async move { sem.acquire_timeout(Duration::from_secs(60)).await });
    eventually("the lease multi held in the proxy", || async {
        proxy.held_requests() == 1
    })
    .await;
    let mine = children(&direct, &locks).await;
    assert_eq!(mine.len(), 1, "only the waiter's mutex node: {mine:?}");
    direct
        .delete(&format!("{locks}/{}", mine[0]), None)
        .await
        .unwrap();
    // someone else (a Curator peer) is admitted meanwhile
    let other = Lock::new(&direct, &locks, "b")
        .layout(Layout::Curator)
        .acquire()
        .await
        .unwrap();
    let before = direct.exists(&leases).await.unwrap().expect("P/leases");
    proxy.release_held();
    // the waiter finds out it lost the mutex and queues again behind the other holder
    eventually("the waiter queued again (or finished)", || async {
        waiter.is_finished() || children(&direct, &locks).await.len() == 2
    })
    .await;
    assert!(
        !waiter.is_finished(),
        "the waiter took a lease without the mutex"
    );
    let after = direct.exists(&leases).await.unwrap();
    assert_eq!(
        after.map(|s| s.cversion),
        Some(before.cversion),
        "a lease was created by a waiter whose mutex node was gone"
    );
    assert!(children(&direct, &leases).await.is_empty());
    other.release().await.unwrap();
    let g = bounded("the waiter's lease", waiter)
        .await
        .unwrap()
        .unwrap()
        .expect("a lease before the deadline");
    assert_eq!(children(&direct, &leases).await.len(), 1);
    g.release().await.unwrap();
}

/// `DistributedAtomicLong` on a missing node creates it; if that create's reply is lost and
/// someone else writes before we can look, the node shows a later version with other data.
/// That must not be read as "our create did not apply" (it may well have, and the other
/// writer built on it): an error saying it may have been applied, never a second increment.
#[tokio::test(flavor = "multi_thread")]
async fn atomic_long_lost_create_reply_then_a_foreign_write_is_not_applied_twice() {
    let server = shared_server();
    let direct = shared_client().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let p = unique("r12a-atomic-create");
    let n = DistributedAtomicLong::new(&c, &p);
    // the create reaches the server, its reply does not reach us, and we cannot come back yet
    proxy.reject_new(true);
    proxy.cut_after_request(OP_CREATE2);
    let task = tokio::spawn(async move { n.increment().await });
    eventually("the create's reply cut", || async {
        proxy.cuts_fired() == 1
    })
    .await;
    let theirs = DistributedAtomicLong::new(&direct, &p)
        .increment()
        .await
        .unwrap();
    assert_eq!(
        (theirs.succeeded, theirs.pre_value, theirs.post_value),
        (true, 1, 2),
        "our create applied, theirs built on it"
    );
    proxy.reject_new(false);
    let r = bounded("increment with a lost create reply", task)
        .await
        .unwrap();
    let now = DistributedAtomicLong::new(&direct, &p).get().await.unwrap();
    assert_eq!(
        now.pre_value, 2,
        "our increment applied twice (result {r:?})"
    );
    match r {
        Err(e) => assert!(e.may_have_been_applied(), "{e}"),
        Ok(r) => panic!("a lost create reported as {r:?}"),
    }
}

/// A `PersistentTtlNode` with a TTL the server cannot take (zero, below 1 ms) must say so from
/// `wait_for_initial_create`, not report success while its toucher fails every millisecond.
#[tokio::test(flavor = "multi_thread")]
async fn persistent_ttl_node_with_an_invalid_ttl_reports_it_instead_of_touching_every_ms() {
    let c = shared_client().await;
    for ttl in [Duration::ZERO, Duration::from_micros(500), Duration::MAX] {
        let p = unique("r12a-ttl-zero");
        let node = PersistentTtlNode::new(&c, &p, ttl, "x");
        let r = bounded(
            "initial create",
            node.wait_for_initial_create_timeout(Duration::from_secs(20)),
        )
        .await;
        assert!(
            matches!(r, Err(Error::InvalidArgument(_))),
            "ttl {ttl:?}: {r:?}"
        );
        node.close().await;
        assert_eq!(c.exists(&p).await.unwrap(), None, "nothing created");
    }
}

/// A protected create whose reply was lost is settled by listing the parent and looking at
/// the node found. The keeper forgot the create in doubt before that look: a `close` while the
/// look was on the wire left the node behind (for ever, for a persistent node).
#[tokio::test(flavor = "multi_thread")]
async fn persistent_node_closed_while_settling_a_lost_protected_create_leaves_no_node() {
    let server = shared_server();
    let direct = shared_client().await;
    let base = unique("r12a-pnode-settle");
    direct.ensure_path(&base).await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let node =
        PersistentNode::new(&c, &format!("{base}/n"), CreateMode::Persistent, "x").protected(true);
    proxy.cut_after_request(OP_CREATE2); // applied, the reply lost
    proxy.hold_request(&[OP_EXISTS]); // the look at the node found again
    node.start();
    eventually("the settling look held", || async {
        proxy.held_requests() == 1
    })
    .await;
    assert_eq!(proxy.cuts_fired(), 1);
    assert_eq!(
        children(&direct, &base).await.len(),
        1,
        "the create applied"
    );
    let mut close = tokio::spawn(node.close());
    // let close stop the keeper (its own requests, if any, queue behind the held one)
    let early = tokio::time::timeout(Duration::from_secs(2), &mut close).await;
    proxy.release_held();
    match early {
        Ok(r) => r.unwrap().unwrap(),
        Err(_) => bounded("close", close).await.unwrap().unwrap(),
    }
    let left = children(&direct, &base).await;
    assert!(left.is_empty(), "a protected node left behind: {left:?}");
}

/// Two live sessions registering one instance id (a duplicate deployment, or an old process
/// still up): the registration that comes second replaces the first one's node (Curator's
/// `NodeExists` → delete → create), once. Each keeper deleted the other's node whenever it
/// found one at its path, so the two replaced each other for ever, as fast as the server
/// answered.
#[tokio::test(flavor = "multi_thread")]
async fn service_registrations_of_one_id_in_two_live_sessions_do_not_replace_each_other_for_ever() {
    let (c1, c2, direct) = (
        shared_client().await,
        shared_client().await,
        shared_client().await,
    );
    let base = unique("r12a-disc-dup");
    let r1 = ServiceDiscovery::new(&c1, &base)
        .register(ServiceInstance::new("api", "dup"))
        .await
        .unwrap();
    let r2 = ServiceDiscovery::new(&c2, &base)
        .register(ServiceInstance::new("api", "dup"))
        .await
        .unwrap();
    let service = format!("{base}/api");
    let cversion = |c: Client| {
        let service = service.clone();
        async move { c.exists(&service).await.unwrap().unwrap().cversion }
    };
    let before = cversion(direct.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let changes = cversion(direct.clone()).await - before;
    assert!(
        changes <= 2,
        "{changes} creates and deletes of {service}/dup in 2 s: the registrations fight"
    );
    let st = direct
        .exists(&format!("{service}/dup"))
        .await
        .unwrap()
        .expect("one registration stays");
    assert_eq!(st.ephemeral_owner, c2.session_id(), "the later one wins");
    r2.unregister().await.unwrap();
    // the earlier one comes back once the later one is gone
    eventually("the first registration back", || async {
        direct
            .exists(&format!("{service}/dup"))
            .await
            .unwrap()
            .is_some_and(|st| st.ephemeral_owner == c1.session_id())
    })
    .await;
    r1.unregister().await.unwrap();
}

/// `lock_tries` set before `promote_to_lock` was dropped (the promotion took the default 10):
/// the builder's order must not matter. One optimistic attempt and one attempt under the lock
/// both lose their race (a write lands between our read and our conditional write): the
/// answer is "not applied" after exactly one promoted attempt.
#[tokio::test(flavor = "multi_thread")]
async fn atomic_long_lock_tries_set_before_promote_to_lock_is_not_dropped() {
    let server = shared_server();
    let direct = shared_client().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let p = unique("r12a-atomic-tries");
    let lock_path = format!("{p}-lock");
    let theirs = DistributedAtomicLong::new(&direct, &p);
    theirs.try_initialize(0).await.unwrap();
    let n = DistributedAtomicLong::new(&c, &p)
        .optimistic_tries(1)
        .lock_tries(1)
        .promote_to_lock(&lock_path, Duration::from_secs(60));
    // the promotion lock is ours for now: the promotion waits for it
    let blocker = Lock::new(&direct, &lock_path, "t")
        .layout(Layout::Curator)
        .acquire()
        .await
        .unwrap();
    proxy.hold_request(&[OP_SET_DATA]);
    let task = tokio::spawn(async move { n.increment().await });
    eventually("the optimistic write held", || async {
        proxy.held_requests() == 1
    })
    .await;
    theirs.force_set(7).await.unwrap();
    proxy.release_held();
    eventually("the promotion waiting for the lock", || async {
        children(&direct, &lock_path).await.len() == 2
    })
    .await;
    proxy.hold_request(&[OP_SET_DATA]);
    blocker.release().await.unwrap();
    eventually("the promoted write held", || async {
        proxy.held_requests() == 2
    })
    .await;
    theirs.force_set(8).await.unwrap();
    proxy.release_held();
    let r = bounded("increment", task).await.unwrap().unwrap();
    assert_eq!(
        (
            r.succeeded,
            r.stats.optimistic_tries,
            r.stats.promoted_lock_tries
        ),
        (false, 1, 1),
        "{r:?}"
    );
    assert_eq!(theirs.get().await.unwrap().pre_value, 8, "not applied");
}

/// Polls `fut` i times (2 ms apart) and drops it unless it completed: whether it completed.
async fn poll_then_drop<F: std::future::Future>(fut: F, i: usize) -> bool {
    let mut fut = Box::pin(fut);
    for _ in 0..i {
        if futures::poll!(&mut fut).is_ready() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

/// Dropping `PersistentNode::close` (or `GroupMember::leave`, `Registration::unregister`)
/// after it was polled once left the node for good: the keeper was taken out of the handle,
/// so the handle's drop had nothing to clean up, and the removal never ran.
#[tokio::test(flavor = "multi_thread")]
async fn persistent_node_close_dropped_at_any_point_leaves_no_node() {
    let c = shared_client().await;
    let base = unique("r12a-close-cancel");
    c.ensure_path(&base).await.unwrap();
    for what in ["persistent node", "group member", "registration"] {
        let mut i = 0;
        loop {
            let done = match what {
                "persistent node" => {
                    let n =
                        PersistentNode::new(&c, &format!("{base}/n"), CreateMode::Persistent, "x");
                    n.wait_for_initial_create().await.unwrap();
                    poll_then_drop(n.close(), i).await
                }
                "group member" => {
                    let m = GroupMember::new(&c, &base, "m").unwrap();
                    m.join().await.unwrap();
                    poll_then_drop(m.leave(), i).await
                }
                _ => {
                    let r = ServiceDiscovery::new(&c, &base)
                        .register(ServiceInstance::new("api", "r"))
                        .await
                        .unwrap();
                    poll_then_drop(r.unregister(), i).await
                }
            };
            let leaf = match what {
                "persistent node" => format!("{base}/n"),
                "group member" => format!("{base}/m"),
                _ => format!("{base}/api/r"),
            };
            let c2 = c.clone();
            eventually(
                &format!("no {leaf} after dropping the {what}'s close at poll {i}"),
                || {
                    let (c, leaf) = (c2.clone(), leaf.clone());
                    async move { c.exists(&leaf).await.unwrap().is_none() }
                },
            )
            .await;
            if done {
                break;
            }
            i += 1;
            assert!(i < 500, "the {what}'s close never completed");
        }
    }
}

/// A protected `PersistentNode` on a path ZooKeeper refuses ("rel", "", "/a/") made up a
/// path instead (`/_c_<uuid>-rel`, `/_c_<uuid>-`, `/a/_c_<uuid>-`) and reported success; the
/// same node unprotected answers `BadPath`. So must the protected one, creating nothing.
#[tokio::test(flavor = "multi_thread")]
async fn persistent_node_protected_on_a_bad_path_is_refused_not_created_elsewhere() {
    let c = shared_client().await;
    let dir = unique("r12a-pnode-badpath");
    for p in ["rel".to_owned(), String::new(), format!("{dir}/")] {
        for protected in [false, true] {
            let n = PersistentNode::new(&c, &p, CreateMode::Ephemeral, "x").protected(protected);
            let r = bounded(
                "initial create",
                n.wait_for_initial_create_timeout(Duration::from_secs(20)),
            )
            .await;
            assert!(
                matches!(r, Err(Error::BadPath(_))),
                "{p:?} (protected {protected}): {r:?}, at {:?}",
                n.actual_path()
            );
            n.close().await.unwrap();
        }
    }
}

/// `ServiceDiscovery` with an empty base path registered its instances at the root
/// (`/<service>/<id>`) where no Curator peer looks, while `query_for_names` failed with
/// `BadPath`: a base ZooKeeper refuses is refused by every call.
#[tokio::test(flavor = "multi_thread")]
async fn service_discovery_on_a_bad_base_path_is_refused_not_registered_at_the_root() {
    let c = shared_client().await;
    let service = unique("r12a-disc-root");
    let name = &service[1..];
    let d = ServiceDiscovery::new(&c, "");
    let r = bounded(
        "register",
        d.register_timeout(ServiceInstance::new(name, "i"), Duration::from_secs(20)),
    )
    .await
    .map(|r| r.map(|r| r.path()));
    assert!(
        c.exists(&service).await.unwrap().is_none(),
        "registered at {service}"
    );
    assert!(matches!(r, Err(Error::BadPath(_))), "{r:?}");
    let q = d.query_for_instances(name).await;
    assert!(matches!(q, Err(Error::BadPath(_))), "{q:?}");
    assert!(matches!(d.query_for_names().await, Err(Error::BadPath(_))));
}

/// Cuts `c` off (through `proxy`) and expires its session on the server for real; `c` is
/// connected again, in a new session, when this returns.
async fn expire_for_real(proxy: &FaultProxy, c: &Client) {
    proxy.reject_new(true);
    proxy.reset();
    wait_state(c, State::Suspended).await;
    let (sid, pw) = c.session_credentials();
    zk_testkit::expire_session(proxy.upstream(), sid, &pw)
        .await
        .unwrap();
    proxy.reject_new(false);
    wait_state(c, State::Connected).await;
    assert_ne!(c.session_id(), sid, "a new session");
}

/// A multi-lock (lost only with the session) holding `a` and waiting for `b` when its session
/// really expires starts over in the new session: the guard it hands out once `b` is free is
/// whole and every member node is of the new session; a held multi-guard whose session
/// expires is lost with `SessionLost`, and its nodes are gone.
#[tokio::test(flavor = "multi_thread")]
async fn multi_lock_through_a_real_session_expiry_starts_over_in_the_new_session() {
    let server = shared_server();
    let direct = shared_client().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let base = unique("r12a-multi-expiry");
    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    let other = Lock::new(&direct, &b, "other").acquire().await.unwrap();
    let m = MultiLock::from_locks([
        Lock::new(&c, &a, "m").layout(Layout::Curator),
        Lock::new(&c, &b, "m"),
    ])
    .unwrap()
    .lost_policy(LostPolicy::SessionLost);
    let task = tokio::spawn({
        let m = m.clone();
        async move { m.acquire().await }
    });
    eventually("the multi-lock holds a and queues on b", || async {
        children(&direct, &a).await.len() == 1 && children(&direct, &b).await.len() == 2
    })
    .await;
    let old_sid = c.session_id();
    expire_for_real(&proxy, &c).await;
    eventually(
        "the multi-lock back in the queue in the new session",
        || async {
            children(&direct, &a).await.len() == 1 && children(&direct, &b).await.len() == 2
        },
    )
    .await;
    assert!(!task.is_finished(), "b is still taken");
    other.release().await.unwrap();
    let g = bounded("the multi-lock", task).await.unwrap().unwrap();
    assert!(g.is_held());
    for node in g.paths() {
        let st = direct.exists(node).await.unwrap().expect("member node");
        assert_eq!(st.ephemeral_owner, c.session_id(), "{node}");
        assert_ne!(st.ephemeral_owner, old_sid);
    }
    assert_eq!(children(&direct, &a).await.len(), 1);
    assert_eq!(children(&direct, &b).await.len(), 1);

    expire_for_real(&proxy, &c).await;
    assert_eq!(
        bounded("lost with the session", g.lost()).await,
        LostReason::SessionLost
    );
    assert_eq!(g.lost_reason(), Some(LostReason::SessionLost));
    assert!(children(&direct, &a).await.is_empty() && children(&direct, &b).await.is_empty());
    g.release().await.unwrap();
    // and it can be taken again
    let g = bounded("again", m.acquire()).await.unwrap();
    g.release().await.unwrap();
}

/// Protected-name recovery after a lost create reply, for the Curator-layout sides not
/// covered elsewhere (a read/write lock's writer and reader, a LeaderLatch candidate): the
/// create applies, the reply is cut, and exactly one node of ours (Curator's protected name,
/// our session) is what the guard holds. Then the same with the parent container reaped
/// between the guard's release and the next create.
#[tokio::test(flavor = "multi_thread")]
async fn curator_layout_rw_and_latch_recover_a_lost_create_reply_with_one_node() {
    let server = shared_server();
    let direct = shared_client().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    for (what, mark) in [
        ("writer", "__WRIT__"),
        ("reader", "__READ__"),
        ("latch", "latch-"),
    ] {
        let p = unique("r12a-cut");
        // one handle per side for both rounds: the second finds its parent gone
        let writer = WriteLock::new(&c, &p, "w").layout(Layout::Curator);
        let reader = ReadLock::new(&c, &p, "r").layout(Layout::Curator);
        let latch = Election::new(&c, &p, "l").layout(Layout::Curator);
        for round in 0..2 {
            proxy.cut_after_request(OP_CREATE2);
            let cuts = proxy.cuts_fired();
            let g = match what {
                "writer" => bounded(what, writer.acquire()).await.unwrap(),
                "reader" => bounded(what, reader.acquire()).await.unwrap(),
                _ => bounded(what, latch.acquire()).await.unwrap(),
            };
            assert_eq!(
                proxy.cuts_fired(),
                cuts + 1,
                "{what}: the cut did not happen"
            );
            let ch = children(&direct, &p).await;
            assert_eq!(ch.len(), 1, "{what} round {round}: {ch:?}");
            assert!(
                ch[0].starts_with("_c_") && ch[0].contains(&format!("-{mark}")),
                "{what}: {ch:?}"
            );
            assert_eq!(g.path(), format!("{p}/{}", ch[0]));
            let st = direct.exists(g.path()).await.unwrap().unwrap();
            assert_eq!(st.ephemeral_owner, c.session_id(), "{what}");
            g.release().await.unwrap();
            // the container parent is reaped once empty: the next round creates it again
            eventually(&format!("{p} reaped"), || async {
                direct.exists(&p).await.unwrap().is_none()
            })
            .await;
        }
    }
}

/// `GroupMember::new` with an empty group path joined at the root (`/<id>`), while
/// `members()` failed with `BadPath`: a group path ZooKeeper refuses is refused by `new`.
#[tokio::test(flavor = "multi_thread")]
async fn group_member_on_a_bad_group_path_is_refused_not_joined_at_the_root() {
    let c = shared_client().await;
    let id = unique("r12a-group-root");
    for group in ["", "rel", "/a/"] {
        match GroupMember::new(&c, group, &id[1..]) {
            Err(Error::BadPath(_)) => {}
            Err(e) => panic!("{group:?}: {e}"),
            Ok(m) => {
                let r = bounded("join", m.join_timeout(Duration::from_secs(20))).await;
                let at_root = c.exists(&id).await.unwrap().is_some();
                m.leave().await.unwrap();
                panic!("{group:?}: accepted; join {r:?}, joined at {id}: {at_root}");
            }
        }
    }
}

/// A Curator-layout semaphore on an empty path put its mutex and leases at the root
/// (`/locks`, `/leases`: `P/locks` with `P` empty) and handed out a lease; with kazoo's layout
/// the same path is `BadPath`. A path ZooKeeper refuses is refused by `new`.
#[tokio::test(flavor = "multi_thread")]
async fn semaphore_on_a_bad_path_is_refused_not_placed_at_the_root() {
    let c = shared_client().await;
    for layout in [Layout::Kazoo, Layout::Curator] {
        let sem = match Semaphore::new(&c, "", "i", 1) {
            Err(Error::BadPath(_)) => continue,
            Err(e) => panic!("{layout:?}: {e}"),
            Ok(s) => s.layout(layout),
        };
        let r = bounded("acquire", sem.acquire_timeout(Duration::from_secs(20))).await;
        let at = r
            .as_ref()
            .ok()
            .and_then(|g| g.as_ref())
            .map(|g| g.path().to_owned());
        if let Ok(Some(g)) = r {
            g.release().await.unwrap();
        }
        assert!(at.is_none(), "{layout:?}: a lease at {at:?}");
    }
}

/// Dropping a `DistributedAtomicLong` update after i polls, for every i until one completes,
/// on a contended value (every optimistic attempt loses: a write lands between read and
/// write, through a held request), so the drop points include the promotion: each dropped
/// increment applied at most once, and no promotion-lock node is left.
#[tokio::test(flavor = "multi_thread")]
async fn atomic_long_increment_dropped_at_any_point_applies_at_most_once_and_leaves_no_lock_node() {
    let c = shared_client().await;
    let p = unique("r12a-atomic-drop");
    let lock_path = format!("{p}-lock");
    let n = DistributedAtomicLong::new(&c, &p)
        .optimistic_tries(1)
        .promote_to_lock(&lock_path, Duration::from_secs(30));
    n.try_initialize(0).await.unwrap();
    let mut i = 0;
    loop {
        let before = n.get().await.unwrap().pre_value;
        let done = poll_then_drop(n.increment(), i).await;
        let after = n.get().await.unwrap().pre_value;
        assert!(
            after == before || after == before + 1,
            "dropped at poll {i}: {before} -> {after}"
        );
        let c2 = c.clone();
        let lp = lock_path.clone();
        eventually(&format!("no promotion-lock node after poll {i}"), || {
            let (c, lp) = (c2.clone(), lp.clone());
            async move { children(&c, &lp).await.is_empty() }
        })
        .await;
        if done {
            break;
        }
        i += 1;
        assert!(i < 500, "the increment never completed");
    }
    // and under promotion: a held optimistic write loses its race each time
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let pc = client(&proxy.connect_string()).await;
    let m = DistributedAtomicLong::new(&pc, &p)
        .optimistic_tries(1)
        .promote_to_lock(&lock_path, Duration::from_secs(30));
    let theirs = DistributedAtomicLong::new(&c, &p);
    for i in 0..40 {
        proxy.hold_request(&[OP_SET_DATA]);
        let mut fut = Box::pin(m.increment());
        let mut done = false;
        // let it reach its optimistic write, then make that write lose
        loop {
            if futures::poll!(&mut fut).is_ready() {
                done = true;
                break;
            }
            if proxy.held_requests() > i {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(!done, "finished without its optimistic write");
        theirs.force_set(1000 * (i as i64 + 1)).await.unwrap();
        let before = theirs.get().await.unwrap().pre_value;
        proxy.release_held();
        // now in the promotion; drop it after a varying number of polls
        for _ in 0..(i % 8) {
            if futures::poll!(&mut fut).is_ready() {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        drop(fut);
        let after = theirs.get().await.unwrap().pre_value;
        assert!(
            after == before || after == before + 1,
            "round {i} (done {done}): {before} -> {after}"
        );
        let c2 = c.clone();
        let lp = lock_path.clone();
        eventually(&format!("no promotion-lock node after round {i}"), || {
            let (c, lp) = (c2.clone(), lp.clone());
            async move { children(&c, &lp).await.is_empty() }
        })
        .await;
    }
}

/// `try_initialize` whose create applied but whose reply was lost, the node then changed by
/// someone else before we could look: it answered `Ok(false)` ("this call did not create
/// it"), though it did. The outcome cannot be told: an error saying it may have applied.
#[tokio::test(flavor = "multi_thread")]
async fn atomic_long_try_initialize_with_a_lost_reply_then_a_change_does_not_deny_its_create() {
    let server = shared_server();
    let direct = shared_client().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let p = unique("r12a-atomic-init");
    let n = DistributedAtomicLong::new(&c, &p);
    proxy.reject_new(true);
    proxy.cut_after_request(OP_CREATE2);
    let task = tokio::spawn(async move { n.try_initialize(5).await });
    eventually("the create's reply cut", || async {
        proxy.cuts_fired() == 1
    })
    .await;
    let theirs = DistributedAtomicLong::new(&direct, &p);
    assert_eq!(
        theirs.get().await.unwrap().pre_value,
        5,
        "our create applied"
    );
    theirs.increment().await.unwrap();
    proxy.reject_new(false);
    let r = bounded("try_initialize", task).await.unwrap();
    match r {
        Err(e) => assert!(e.may_have_been_applied(), "{e}"),
        Ok(created) => panic!("a lost create reported as created = {created}"),
    }
}
