//! Review of issue 12's leases, SetPartitioner and PatientChildrenWatch (helper rev12c): each
//! test is named after the defect or the guarantee it pins, against a real server.

mod common;

use common::{bounded, children, client, eventually, shared_client, unique};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zk_core::Error;
use zk_recipes::{NonBlockingLease, PartitionState, PatientChildrenWatch, SetPartitioner};
use zk_testkit::{shared_server, FaultProxy};

/// ZooKeeper's opcode of `multi`, for `FaultProxy` traps.
const OP_MULTI: i32 = 14;

const BOUNDARY: Duration = Duration::from_millis(300);

/// 2026-11-30T10:25:00 UTC plus `s` seconds.
fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_034_300 + s)
}

fn items(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("item-{i:02}")).collect()
}

// ------------------------------------------------------------------------------ leases

/// `now + duration` on a `SystemTime` panics when it overflows: a lease for `Duration::MAX`
/// panicked in the caller's task (with the attempt's lock node left to the guard's drop).
#[tokio::test(flavor = "multi_thread")]
async fn lease_duration_that_overflows_the_clock_is_refused_not_a_panic() {
    let c = shared_client().await;
    let p = unique("r12c-lease-max");
    let lease = NonBlockingLease::new(&c, &p, Duration::MAX, "host-a").clock(|| at(0));
    let r = bounded("the attempt", lease.try_acquire()).await;
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "a lease end past what the clock can say is refused: {r:?}"
    );
    eventually("no lock node and no record left", || async {
        children(&c, &p).await.is_empty()
    })
    .await;
}

/// kazoo's record is `strftime("%Y-%m-%dT%H:%M:%S")` of a Python `datetime`, whose years end
/// at 9999: Python cannot compute such an end (`OverflowError`) nor parse one (`strptime`
/// refuses a five-digit year), so a record ending in year 10026 breaks every kazoo client of
/// the lease. It was written.
#[tokio::test(flavor = "multi_thread")]
async fn lease_end_past_year_9999_is_refused_since_kazoo_cannot_read_it() {
    let c = shared_client().await;
    let p = unique("r12c-lease-y10k");
    let eight_thousand_years = Duration::from_secs(8000 * 365 * 86_400);
    let lease = NonBlockingLease::new(&c, &p, eight_thousand_years, "host-a").clock(|| at(0));
    let r = bounded("the attempt", lease.try_acquire()).await;
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "an end past 9999-12-31T23:59:59 is refused: {r:?}"
    );
    assert!(
        lease.holder().await.unwrap().is_none(),
        "no record was written"
    );
    // the last second kazoo can say is fine
    let to_the_end =
        Duration::from_secs(253_402_300_799 - at(0).duration_since(UNIX_EPOCH).unwrap().as_secs());
    let lease = NonBlockingLease::new(&c, &p, to_the_end, "host-a").clock(|| at(0));
    let got = lease.try_acquire().await.unwrap().expect("obtained");
    let (raw, _) = c.get_data(&format!("{p}/lease_holder")).await.unwrap();
    assert!(
        String::from_utf8(raw)
            .unwrap()
            .ends_with(r#""end": "9999-12-31T23:59:59"}"#),
        "{got:?}"
    );
}

/// The record of a holder whose identifier escapes to more than the client's data limit
/// (each control character is six bytes of JSON) cannot be written: the transaction failed
/// with `DataTooLarge` before it was sent, and the attempt took that for "the lock was lost"
/// and went round again (lock, read, refuse, unlock) until its deadline, for ever without one.
#[tokio::test(flavor = "multi_thread")]
async fn lease_record_over_the_data_limit_fails_instead_of_retrying_for_ever() {
    let c = shared_client().await;
    let p = unique("r12c-lease-big");
    let id = "\u{1}".repeat(180_000); // 180 kB as node data, 1.08 MB as kazoo's JSON
    let lease = NonBlockingLease::new(&c, &p, Duration::from_secs(60), id).clock(|| at(0));
    let r = bounded(
        "the attempt",
        lease.try_acquire_timeout(Duration::from_secs(5)),
    )
    .await;
    assert!(
        matches!(r, Err(Error::DataTooLarge { .. })),
        "the write's own error, not a retry until the deadline: {r:?}"
    );
    eventually("the attempt's lock node is gone", || async {
        children(&c, &p).await.is_empty()
    })
    .await;
}

/// The lease's transaction applied, its reply was lost, and the client could not reconnect
/// before the attempt's deadline: the attempt answered `Ok(None)` ("not obtained; nothing
/// written") while the record names this holder for the whole duration.
#[tokio::test(flavor = "multi_thread")]
async fn lease_lost_reply_past_the_deadline_is_not_reported_as_nothing_written() {
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("r12c-lease-lost-reply");
    let lease = NonBlockingLease::new(&c, &p, Duration::from_secs(600), "host-a").clock(|| at(0));
    proxy.cut_after_request(OP_MULTI);
    proxy.reject_new(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let attempt = tokio::spawn(async move { lease.try_acquire_until(deadline).await });
    eventually("the transaction's reply was cut", || async {
        proxy.cuts_fired() == 1
    })
    .await;
    // stay cut off until the attempt's deadline has passed, then let it reconnect
    tokio::time::sleep_until(deadline + Duration::from_millis(500)).await;
    proxy.reject_new(false);
    let r = bounded("the attempt", attempt).await.unwrap();
    let record = NonBlockingLease::new(&direct, &p, Duration::from_secs(1), "reader")
        .holder()
        .await
        .unwrap()
        .expect("the transaction applied");
    assert_eq!(record.holder, "host-a");
    assert!(
        matches!(r, Err(Error::ConnectionLoss)),
        "the outcome is unknown to the attempt: it must not say nothing was written: {r:?}"
    );
}

/// Dropping `try_acquire` after any number of polls leaves no lock node, and the record is
/// either absent or this holder's whole record (HELD).
#[tokio::test(flavor = "multi_thread")]
async fn lease_attempt_dropped_at_every_poll_leaves_no_lock_node() {
    let c = shared_client().await;
    let p = unique("r12c-lease-drop");
    for i in 0.. {
        let lease =
            NonBlockingLease::new(&c, &p, Duration::from_secs(600), "host-a").clock(|| at(0));
        let mut fut = Box::pin(lease.try_acquire());
        let mut done = None;
        for _ in 0..i {
            if let std::task::Poll::Ready(r) = futures::poll!(fut.as_mut()) {
                done = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(fut);
        eventually(&format!("no lock node after {i} polls"), || async {
            children(&c, &p).await.iter().all(|n| n == "lease_holder")
        })
        .await;
        if let Ok((raw, _)) = c.get_data(&format!("{p}/lease_holder")).await {
            assert_eq!(
                String::from_utf8(raw).unwrap(),
                r#"{"version": 1, "holder": "host-a", "end": "2026-11-30T10:35:00"}"#
            );
        }
        if let Some(r) = done {
            assert!(r.unwrap().is_some(), "a completed attempt obtains");
            break;
        }
        assert!(i < 2000, "the attempt never completed");
    }
}

// ------------------------------------------------------------------ PatientChildrenWatch

/// `Instant::now() + time_boundary` panics when it overflows: a watch whose quiet time is
/// "for ever" panicked at its first read.
#[tokio::test(flavor = "multi_thread")]
async fn patient_watch_with_a_huge_time_boundary_waits_instead_of_panicking() {
    let c = shared_client().await;
    let p = unique("r12c-patient-max");
    c.create(&p, b"", zk_core::CreateMode::Persistent)
        .await
        .unwrap();
    let w = PatientChildrenWatch::new(&c, &p, Duration::MAX);
    let r = bounded("the wait", w.wait_timeout(Duration::from_secs(1))).await;
    assert!(
        matches!(r, Ok(None)),
        "never quiet for ever: the deadline answers"
    );
}

// ------------------------------------------------------------------------ SetPartitioner

/// The same overflow in the partitioner's stable-membership wait killed its task: the member
/// was stuck with `Err(Closed)` from every wait.
#[tokio::test(flavor = "multi_thread")]
async fn partitioner_with_a_huge_time_boundary_keeps_allocating_instead_of_its_task_dying() {
    let c = shared_client().await;
    let path = unique("r12c-part-max");
    let p = SetPartitioner::new(&c, &path, items(2), "w1")
        .unwrap()
        .time_boundary(Duration::MAX);
    let r = bounded(
        "the wait",
        p.wait_for_acquire_timeout(Duration::from_secs(2)),
    )
    .await;
    assert!(
        matches!(r, Ok(None)),
        "still allocating (the party is never stable for ever): {r:?}"
    );
    assert_eq!(p.state(), PartitionState::Allocating);
    p.finish().await.unwrap();
}

/// A partition function that names an item twice made the member take that item's lock
/// twice: the second acquisition queued behind the first, held by the same member, for ever.
#[tokio::test(flavor = "multi_thread")]
async fn partitioner_fn_naming_an_item_twice_does_not_deadlock_the_member() {
    let c = shared_client().await;
    let path = unique("r12c-part-dup");
    let set = items(3);
    let p = SetPartitioner::new(&c, &path, set.clone(), "w1")
        .unwrap()
        .time_boundary(BOUNDARY)
        .partition_fn(|_, _, items| items.iter().chain(items).cloned().collect());
    let r = bounded(
        "the wait",
        p.wait_for_acquire_timeout(Duration::from_secs(20)),
    )
    .await
    .unwrap();
    assert_eq!(r, Some(PartitionState::Acquired), "each item locked once");
    assert_eq!(p.partitions(), set);
    p.finish().await.unwrap();
}

/// A partition function that returns an item not in the set made the member lock
/// `P/locks/<that name>` and report it as its partition: an item nobody partitions.
#[tokio::test(flavor = "multi_thread")]
async fn partitioner_fn_items_outside_the_set_are_not_taken() {
    let c = shared_client().await;
    let path = unique("r12c-part-ghost");
    let set = items(2);
    let p = SetPartitioner::new(&c, &path, set.clone(), "w1")
        .unwrap()
        .time_boundary(BOUNDARY)
        .partition_fn(|_, _, items| {
            let mut v = vec!["ghost".to_string()];
            v.extend(items.iter().cloned());
            v
        });
    let r = bounded(
        "the wait",
        p.wait_for_acquire_timeout(Duration::from_secs(20)),
    )
    .await
    .unwrap();
    assert_eq!(r, Some(PartitionState::Acquired));
    assert_eq!(p.partitions(), set, "only items of the set");
    assert_eq!(children(&c, &format!("{path}/locks")).await, set);
    p.finish().await.unwrap();
}

/// Items ZooKeeper refuses as node names (`.`, `..`, control characters) passed `new` and
/// failed the partitioner at its first lock: refused up front, like `/` and the empty name.
#[tokio::test(flavor = "multi_thread")]
async fn partitioner_items_zookeeper_refuses_as_names_are_refused_by_new() {
    let c = shared_client().await;
    let path = unique("r12c-part-names");
    for bad in [".", "..", "a\u{0}b", "a\u{1f}b"] {
        let r = SetPartitioner::new(&c, &path, ["ok", bad], "w1");
        assert!(
            matches!(r, Err(Error::InvalidArgument(_))),
            "item {bad:?}: {r:?}"
        );
    }
    let r = SetPartitioner::new(&c, &path, ["ok"], "w\u{0}1");
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    // '.' inside a name is fine
    assert!(SetPartitioner::new(&c, &path, ["a.b", "..."], "w.1").is_ok());
}

/// `finish` before the partitioner was started did nothing, and the next wait started it:
/// "Failure for good" joined the party and took the set.
#[tokio::test(flavor = "multi_thread")]
async fn partitioner_finished_before_it_started_is_failure_for_good() {
    let c = shared_client().await;
    let path = unique("r12c-part-finish");
    let p = SetPartitioner::new(&c, &path, items(2), "w1")
        .unwrap()
        .time_boundary(BOUNDARY);
    p.finish().await.unwrap();
    assert_eq!(p.state(), PartitionState::Failure);
    let r = bounded(
        "the wait",
        p.wait_for_acquire_timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    assert_eq!(r, Some(PartitionState::Failure));
    p.release_set().await.unwrap();
    assert!(children(&c, &path).await.is_empty(), "nothing sent");
}

/// A partition function that panics killed the partitioner's task: every wait said
/// `Err(Closed)`, "the partitioner's task is gone", instead of the documented end of a
/// partitioner, `Failure` (left the party, locks released).
#[tokio::test(flavor = "multi_thread")]
async fn partitioner_fn_that_panics_is_a_failure_that_leaves_the_party() {
    let c = shared_client().await;
    let path = unique("r12c-part-panic");
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let calls2 = calls.clone();
    let p = SetPartitioner::new(&c, &path, items(2), "w1")
        .unwrap()
        .time_boundary(BOUNDARY)
        .partition_fn(move |_, _, _| {
            calls2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            panic!("a partition function bug")
        });
    let r = bounded("the wait", p.wait_for_acquire()).await;
    assert!(
        matches!(r, Ok(PartitionState::Failure)),
        "a Failure, not a dead task: {r:?}"
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    eventually("the member left the party", || async {
        children(&c, &format!("{path}/party")).await.is_empty()
    })
    .await;
}

/// Drives a partitioner like kazoo's documented loop until it fails or `stop` is set.
async fn drive(p: Arc<SetPartitioner>, stop: Arc<std::sync::atomic::AtomicBool>) -> PartitionState {
    use std::sync::atomic::Ordering;
    while !stop.load(Ordering::SeqCst) {
        match p
            .wait_for_acquire_timeout(Duration::from_millis(200))
            .await
            .unwrap()
        {
            None => {}
            Some(PartitionState::Acquired) => {
                tokio::select! {
                    _ = p.wait_while_acquired() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            Some(PartitionState::Release) => p.release_set().await.unwrap(),
            Some(s) => return s,
        }
    }
    p.state()
}

/// Items two members believe they own whose lock nodes both still exist on the server.
async fn live_double_owners(ps: &[Arc<SetPartitioner>], direct: &zk_core::Client) -> Vec<String> {
    let mut owners: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for p in ps {
        for item in p.owned() {
            if let Some(node) = p.lock_node(&item) {
                owners.entry(item).or_default().push(node);
            }
        }
    }
    let mut bad = Vec::new();
    for (item, nodes) in owners.into_iter().filter(|(_, n)| n.len() > 1) {
        let mut live = 0;
        for n in &nodes {
            if direct.exists(n).await.unwrap().is_some() {
                live += 1;
            }
        }
        if live > 1 {
            bad.push(item);
        }
    }
    bad
}

/// A member cut off by a silent partition (no RST: it learns only from its own timeouts)
/// stops owning at its suspension; the other member takes its items only once the server
/// expired its session (the lock nodes went), so no item has two live owners; after the heal
/// the cut-off member's partitioner is a Failure (HELD).
#[tokio::test(flavor = "multi_thread")]
async fn partitioner_member_behind_a_blackhole_never_shares_an_item_and_fails_after_the_heal() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let direct = shared_client().await;
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let cut = client(&proxy.connect_string()).await;
    let path = unique("r12c-part-blackhole");
    let set = items(6);
    let stop = Arc::new(AtomicBool::new(false));
    let ps: Vec<Arc<SetPartitioner>> = [(&direct, "m0"), (&cut, "m1")]
        .iter()
        .map(|(c, id)| {
            Arc::new(
                SetPartitioner::new(c, &path, set.clone(), *id)
                    .unwrap()
                    .time_boundary(BOUNDARY),
            )
        })
        .collect();
    let tasks: Vec<_> = ps
        .iter()
        .map(|p| tokio::spawn(drive(p.clone(), stop.clone())))
        .collect();
    eventually("both members own half the set", || async {
        ps.iter()
            .all(|p| p.state() == PartitionState::Acquired && p.owned().len() == 3)
    })
    .await;
    proxy.blackhole();
    let mut samples = 0u64;
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    while ps[0].owned() != set {
        let bad = live_double_owners(&ps, &direct).await;
        assert!(bad.is_empty(), "items owned by two live members: {bad:?}");
        samples += 1;
        assert!(
            tokio::time::Instant::now() < end,
            "m0 never owned the whole set"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ps[1].owned().is_empty(), "the cut-off member owns nothing");
    assert!(samples > 10, "the checker ran ({samples} samples)");
    proxy.heal();
    let r = bounded("m1's driver", tasks.into_iter().nth(1).unwrap()).await;
    assert_eq!(r.unwrap(), PartitionState::Failure, "m1's session expired");
    stop.store(true, Ordering::SeqCst);
    assert_eq!(ps[0].owned(), set);
}

/// A member joins while another member's lock create waits in the proxy: the allocation
/// starts over, the held create applies later and its node is removed by the dropped
/// acquisition's cleanup; both members end with their kazoo share and each item with one
/// lock node (HELD).
#[tokio::test(flavor = "multi_thread")]
async fn partitioner_member_joining_while_a_lock_create_is_on_the_wire_leaves_no_orphan_lock() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let direct = shared_client().await;
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let held = client(&proxy.connect_string()).await;
    let path = unique("r12c-part-held");
    let set = items(4);
    let stop = Arc::new(AtomicBool::new(false));
    let p0 = Arc::new(
        SetPartitioner::new(&held, &path, set.clone(), "m0")
            .unwrap()
            .time_boundary(BOUNDARY),
    );
    // m0's party node first, then its first lock create is held
    let t0 = tokio::spawn(drive(p0.clone(), stop.clone()));
    eventually("m0 joined", || async {
        children(&direct, &format!("{path}/party")).await.len() == 1
    })
    .await;
    proxy.hold_request(&[15]); // create2: the first item's lock node
    eventually("m0's lock create is held", || async {
        proxy.held_requests() == 1
    })
    .await;
    let p1 = Arc::new(
        SetPartitioner::new(&direct, &path, set.clone(), "m1")
            .unwrap()
            .time_boundary(BOUNDARY),
    );
    let t1 = tokio::spawn(drive(p1.clone(), stop.clone()));
    eventually("m1 joined", || async {
        children(&direct, &format!("{path}/party")).await.len() == 2
    })
    .await;
    proxy.release_held();
    let both = vec!["m0".to_string(), "m1".to_string()];
    eventually("both own their kazoo share", || async {
        [&p0, &p1].iter().all(|p| {
            p.state() == PartitionState::Acquired
                && p.owned() == zk_recipes::kazoo_partition(p.identifier(), &both, &set)
        })
    })
    .await;
    eventually("each item has exactly one lock node", || async {
        let mut one = true;
        for item in &set {
            one &= children(&direct, &format!("{path}/locks/{item}"))
                .await
                .len()
                == 1;
        }
        one
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for t in [t0, t1] {
        bounded("driver", t).await.unwrap();
    }
}

// ------------------------------------------------------------- loose ends (part 2)

/// `PersistentNode::set_data` with data over the client's limit was silent: the handle said
/// the new data (`data()`), the keeper's write failed with `DataTooLarge` in the background
/// (retried every second, for ever) and the node kept its old data.
#[tokio::test(flavor = "multi_thread")]
async fn persistent_node_set_data_over_the_data_limit_fails_clearly() {
    let c = shared_client().await;
    let p = unique("r12c-pnode-big");
    let node = zk_recipes::PersistentNode::new(&c, &p, zk_core::CreateMode::Persistent, "small");
    bounded("created", node.wait_for_initial_create())
        .await
        .unwrap();
    let big = vec![b'x'; zk_core::DEFAULT_MAX_DATA_LEN + 1];
    let r = node.set_data(big);
    assert!(
        matches!(r, Err(Error::DataTooLarge { len, max }) if len == max + 1 && max == c.max_data_len()),
        "refused as the client refuses it: {r:?}"
    );
    assert_eq!(node.data(), b"small", "the data is unchanged");
    // what fits is still written
    node.set_data("fits").unwrap();
    eventually("the node has the new data", || async {
        c.get_data(&p).await.unwrap().0 == b"fits"
    })
    .await;
    node.close().await.unwrap();
    // the other write paths: data too large at the first create is that create's error
    let p2 = unique("r12c-pnode-big-new");
    let node = zk_recipes::PersistentNode::new(
        &c,
        &p2,
        zk_core::CreateMode::Persistent,
        vec![b'x'; zk_core::DEFAULT_MAX_DATA_LEN + 1],
    );
    let r = bounded("the first create", node.wait_for_initial_create()).await;
    assert!(matches!(r, Err(Error::DataTooLarge { .. })), "{r:?}");
    node.close().await.unwrap();
    let m = zk_recipes::GroupMember::new(&c, &p2, "m")
        .unwrap()
        .data(vec![b'x'; zk_core::DEFAULT_MAX_DATA_LEN + 1]);
    let r = bounded("join", m.join()).await;
    assert!(matches!(r, Err(Error::DataTooLarge { .. })), "{r:?}");
    assert!(matches!(
        m.set_data(vec![b'x'; zk_core::DEFAULT_MAX_DATA_LEN + 1]),
        Err(Error::DataTooLarge { .. })
    ));
    m.leave().await.unwrap();
}

/// With Curator's layout every child of a lock path is in its queue (Curator's rule, kept for
/// interop), so a member lock nested under another member's path puts its parent node in the
/// outer lock's queue: a name sorting before the sequence numbers (`0`, `-x`) blocks the outer
/// lock for as long as that node exists (an empty container lives until the server's next
/// container sweep). `MultiLock` refuses such a set; with kazoo's layout (non-contender
/// children are ignored, as kazoo does) nesting is safe, and kept.
#[tokio::test(flavor = "multi_thread")]
async fn multi_lock_with_a_member_nested_under_a_curator_layout_member_is_refused() {
    use zk_recipes::{Layout, Lock, MultiLock};
    let c = shared_client().await;
    let p = unique("r12c-multi-nested");
    let inner = format!("{p}/0");
    let r = MultiLock::from_locks([
        Lock::new(&c, &p, "x").layout(Layout::Curator),
        Lock::new(&c, &inner, "x"),
    ]);
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "a member under a Curator-layout member: {r:?}"
    );
    let r = MultiLock::from_locks([
        Lock::new(&c, &inner, "x").layout(Layout::Curator),
        Lock::new(&c, &p, "x").layout(Layout::Curator),
    ]);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    // kazoo's layout: nested members are taken, released and taken again
    let m = MultiLock::new(&c, [p.as_str(), inner.as_str()], "x").unwrap();
    for _ in 0..2 {
        let g = bounded(
            "kazoo-layout nested acquire",
            m.acquire_timeout(Duration::from_secs(20)),
        )
        .await
        .unwrap()
        .expect("acquired");
        g.release().await.unwrap();
    }
    // a Curator-layout member next to (not above) another is fine
    let side = format!("{p}-side");
    assert!(MultiLock::from_locks([
        Lock::new(&c, &p, "x").layout(Layout::Curator),
        Lock::new(&c, &side, "x").layout(Layout::Curator),
    ])
    .is_ok());
}

/// Why the refusal (HELD as Curator's rule): a Curator-layout lock whose path has a child
/// sorting before the sequence numbers waits for that child.
#[tokio::test(flavor = "multi_thread")]
async fn curator_layout_lock_is_blocked_by_a_child_sorting_before_its_sequence() {
    use zk_recipes::{Layout, Lock};
    let c = shared_client().await;
    let p = unique("r12c-curator-child");
    c.create(&p, b"", zk_core::CreateMode::Persistent)
        .await
        .unwrap();
    c.create(&format!("{p}/0"), b"", zk_core::CreateMode::Persistent)
        .await
        .unwrap();
    let l = Lock::new(&c, &p, "x").layout(Layout::Curator);
    let g = l.acquire_timeout(Duration::from_secs(2)).await.unwrap();
    assert!(g.is_none(), "queued behind the child `0`");
    c.delete(&format!("{p}/0"), None).await.unwrap();
    let g = bounded("acquire once the child is gone", l.acquire())
        .await
        .unwrap();
    g.release().await.unwrap();
}

/// A LockingQueue take writes its own uuid4 into the taken node, fresh per take (so two
/// consumers sharing a client tell their takes apart): the handle id kazoo writes does not
/// exist here, and neither does the `id()` accessor that named nothing on the server.
#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_take_writes_a_fresh_id_per_take_not_a_handle_id() {
    let c = shared_client().await;
    let p = unique("r12c-lq-id");
    let q = zk_recipes::LockingQueue::new(&c, &p);
    q.put(b"a", 100).await.unwrap();
    q.put(b"b", 100).await.unwrap();
    let e1 = q.get().await.unwrap();
    let e2 = q.get().await.unwrap();
    let d1 = c
        .get_data(&format!("{p}/taken/{}", e1.name()))
        .await
        .unwrap()
        .0;
    let d2 = c
        .get_data(&format!("{p}/taken/{}", e2.name()))
        .await
        .unwrap()
        .0;
    assert_eq!(d1.len(), 32);
    assert!(d1.iter().chain(&d2).all(u8::is_ascii_hexdigit));
    assert_ne!(d1, d2, "one handle, two takes, two ids");
    e1.release().await.unwrap();
    e2.release().await.unwrap();
}

// ----------------------------------------------------------------- more of what HELD

/// Bad input that is fine: an empty set is acquired with nothing; duplicate items are one
/// item; an item with a dot or dash is a name like any other (HELD).
#[tokio::test(flavor = "multi_thread")]
async fn partitioner_empty_set_and_duplicate_items_are_acquired_as_sets() {
    let c = shared_client().await;
    let path = unique("r12c-part-empty");
    let p = SetPartitioner::new(&c, &path, Vec::<String>::new(), "w1")
        .unwrap()
        .time_boundary(BOUNDARY);
    let r = bounded("empty", p.wait_for_acquire()).await.unwrap();
    assert_eq!(r, PartitionState::Acquired);
    assert!(p.partitions().is_empty());
    p.finish().await.unwrap();
    let path = unique("r12c-part-dups");
    let p = SetPartitioner::new(&c, &path, ["b.1", "a-2", "b.1", "a-2"], "w1")
        .unwrap()
        .time_boundary(Duration::ZERO);
    let r = bounded("dups", p.wait_for_acquire()).await.unwrap();
    assert_eq!(r, PartitionState::Acquired);
    assert_eq!(p.partitions(), vec!["a-2", "b.1"]);
    p.finish().await.unwrap();
}

/// The clock contract, both ways (HELD): a lease of zero duration ends at once (its end is
/// now, to the second: the next claimant takes it); a claimant whose clock runs *behind* the
/// holder's is refused until its own clock reaches the holder's end (a gap, never an
/// overlap); the holder is told exactly the end the record says.
#[tokio::test(flavor = "multi_thread")]
async fn lease_clock_contract_zero_duration_and_a_claimant_running_behind() {
    let c = shared_client().await;
    let p = unique("r12c-lease-clock");
    let zero = NonBlockingLease::new(&c, &p, Duration::ZERO, "host-a").clock(|| at(0));
    let got = zero.try_acquire().await.unwrap().expect("obtained");
    assert_eq!(got.end, at(0));
    let b = NonBlockingLease::new(&c, &p, Duration::from_secs(60), "host-b")
        .clock(|| at(0) + Duration::from_millis(400));
    let got = b
        .try_acquire()
        .await
        .unwrap()
        .expect("a zero lease has ended");
    // the end is kept to the second, and the holder is told that one
    assert_eq!(got.end, at(60));
    assert_eq!(b.holder().await.unwrap().unwrap().end, at(60));
    // host-c's clock runs 100 s behind: refused until its clock says at(60)
    for (clock, obtained) in [
        (at(59) - Duration::from_secs(100), false),
        (at(59), false),
        (at(60), true),
    ] {
        let c2 =
            NonBlockingLease::new(&c, &p, Duration::from_secs(60), "host-c").clock(move || clock);
        assert_eq!(
            c2.try_acquire().await.unwrap().is_some(),
            obtained,
            "claimant at {clock:?}"
        );
    }
}

/// `MultiNonBlockingLease::new` built every slot up front: a huge count panicked ("capacity
/// overflow"; a merely large one would try to allocate it all). kazoo walks `range(count)`
/// lazily; so does this now: slot 0 is tried first, whatever the count.
#[tokio::test(flavor = "multi_thread")]
async fn multi_lease_with_a_huge_count_tries_its_slots_lazily() {
    let c = shared_client().await;
    let p = unique("r12c-multi-huge");
    let m = zk_recipes::MultiNonBlockingLease::new(
        &c,
        usize::MAX,
        &p,
        Duration::from_secs(60),
        "host-a",
    )
    .clock(|| at(0));
    let (slot, _) = m.try_acquire().await.unwrap().expect("slot 0 is free");
    assert_eq!(slot, 0);
    assert_eq!(children(&c, &p).await, vec!["0".to_string()]);
}

/// A silent partition shorter than the client's timeouts is no disconnect (HELD): a read held
/// in the silence is answered after it with what changed meanwhile, and a change made in the
/// silence after a report resolves the change future once the connection is back (the watch
/// event was held, not lost). While the silence lasts the quiet time runs on (the client
/// cannot know), so a report can be older than the server's state: a SetPartitioner's item
/// locks, not this wait, keep each item with one owner (the blackhole test above).
#[tokio::test(flavor = "multi_thread")]
async fn patient_watch_behind_an_undetected_blackhole_reports_then_resolves_after_the_heal() {
    let direct = shared_client().await;
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = client(&proxy.connect_string()).await;
    let p = unique("r12c-patient-blackhole");
    direct
        .create(&p, b"", zk_core::CreateMode::Persistent)
        .await
        .unwrap();
    let w = PatientChildrenWatch::new(&c, &p, BOUNDARY);
    proxy.blackhole();
    // the wait's first read is held in the silence; let it through after a change
    let waiting = tokio::spawn(async move { w.wait_timeout(Duration::from_secs(30)).await });
    direct
        .create(&format!("{p}/a"), b"", zk_core::CreateMode::Persistent)
        .await
        .unwrap();
    proxy.heal();
    let (kids, changed) = bounded("the report", waiting)
        .await
        .unwrap()
        .unwrap()
        .expect("stable");
    assert_eq!(kids, Some(vec!["a".to_string()]), "read after the change");
    // now the silence comes after the read: a change made during it is not in any report
    // until the connection is back, and then the change future says so
    proxy.blackhole();
    direct
        .create(&format!("{p}/b"), b"", zk_core::CreateMode::Persistent)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.heal();
    bounded("the change future after the heal", changed)
        .await
        .unwrap();
}
