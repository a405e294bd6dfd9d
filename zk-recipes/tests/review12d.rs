//! Review of issue 12's Counter, Party / ShallowParty and the plain Queue (helper rev12d): each
//! test is named after the defect or the guarantee it pins, against a real server.

mod common;

use common::{bounded, children, eventually, shared_client, unique, wait_state};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, State};
use zk_recipes::{Counter, Party, Queue, ShallowParty};
use zk_testkit::{shared_server, FaultProxy};

const OP_DELETE: i32 = 2;
const OP_SET_DATA: i32 = 5;

/// Cuts `c` off, expires its session on the server, lets it reconnect (a new session).
async fn expire(c: &Client, proxy: &FaultProxy) {
    proxy.reject_new(true);
    proxy.reset();
    wait_state(c, State::Suspended).await;
    let (sid, pw) = c.session_credentials();
    zk_testkit::expire_session(shared_server().addr(), sid, &pw)
        .await
        .unwrap();
    proxy.reject_new(false);
    eventually("a new session", || async {
        c.state() == State::Connected && c.session_id() != sid
    })
    .await;
}

/// Waits until `proxy` holds a request.
async fn wait_held(proxy: &FaultProxy) {
    eventually("a held request", || async { proxy.held_requests() >= 1 }).await;
}

// ------------------------------------------------------------------------------- party

/// `leave` took the keeper out of the handle, then stopped it and deleted the node across
/// await points: dropped in between, the keeper stopped but the node stayed (for the whole
/// session) while the handle said "not joined", and a second `leave` had nothing to delete.
#[tokio::test(flavor = "multi_thread")]
async fn party_leave_dropped_at_every_await_point_still_removes_the_node() {
    let c = shared_client().await;
    let p = unique("r12d-party-leave-drop");
    c.ensure_path(&p).await.unwrap();
    let mut i = 1;
    loop {
        let member = Party::new(&c, &p, format!("m{i}"));
        member.join().await.unwrap();
        assert_eq!(children(&c, &p).await.len(), 1);
        let mut fut = Box::pin(member.leave());
        let mut done = false;
        for _ in 0..i {
            if futures::poll!(fut.as_mut()).is_ready() {
                done = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(fut);
        if done {
            break;
        }
        // the member's node goes, although the leave was dropped half-way (the handle is
        // kept alive: its own drop would clean up and hide the defect)
        common::wait_no_child_with_prefix(&c, &p, "").await;
        drop(member);
        i += 1;
        assert!(i < 10_000, "leave never completed");
    }
    eprintln!("leave completed after {i} drops at successive await points");
    assert!(i > 1, "the leave never was dropped half-way");
    assert!(children(&c, &p).await.is_empty());
}

/// Identifiers ZooKeeper cannot take (too large for a request, a control character in a
/// shallow member's node name) end the join with an error, promptly: no join retrying forever,
/// no node left. An empty identifier is a member like any other (kazoo's `"<uuid>-"`).
#[tokio::test(flavor = "multi_thread")]
async fn party_identifiers_empty_huge_or_unnameable_join_or_fail_without_hanging() {
    let c = shared_client().await;
    let p = unique("r12d-party-ids");
    let huge = "x".repeat(2 << 20);
    let deep = Party::new(&c, &p, huge.clone());
    let r = bounded("a join with a 2 MiB identifier", deep.join()).await;
    assert!(r.is_err(), "{r:?}");
    let shallow = ShallowParty::new(&c, &p, huge).unwrap();
    let r = bounded("a shallow join with a 2 MiB identifier", shallow.join()).await;
    assert!(r.is_err(), "{r:?}");
    let shallow = ShallowParty::new(&c, &p, "a\u{1}b").unwrap();
    let r = bounded("a shallow join with a control character", shallow.join()).await;
    assert!(r.is_err(), "{r:?}");
    assert!(children(&c, &p).await.is_empty());
    let empty = ShallowParty::new(&c, &p, "").unwrap();
    bounded("a shallow join with an empty identifier", empty.join())
        .await
        .unwrap();
    assert_eq!(empty.members().await.unwrap(), [""]);
    let deep_empty = Party::new(&c, &p, "");
    bounded("a join with an empty identifier", deep_empty.join())
        .await
        .unwrap();
    assert_eq!(deep_empty.members().await.unwrap(), [""]);
    assert_eq!(empty.len().await.unwrap(), 2);
}

// ----------------------------------------------------------------------------- counter

/// The integer decoding stripped one leading '+' and then let Rust's parser take a sign of
/// its own: "+-3" read as -3 and "++3" as 3, where Python's `int()` (kazoo's
/// `default_type(data)`) refuses both; an add then wrote over the garbage.
#[tokio::test(flavor = "multi_thread")]
async fn counter_int_refuses_two_signs_as_python_does() {
    let c = shared_client().await;
    for text in ["+-3", "++3", "-+3", "--3"] {
        let p = unique("r12d-counter-signs");
        c.create(&p, text.as_bytes(), CreateMode::Persistent)
            .await
            .unwrap();
        let counter = Counter::new(&c, &p, 0i64);
        let v = counter.value().await;
        assert!(
            matches!(v, Err(Error::InvalidArgument(_))),
            "{text:?} is not a Python int: {v:?}"
        );
        let r = counter.add(1).await;
        assert!(
            matches!(r, Err(Error::InvalidArgument(_))),
            "no add over {text:?}: {r:?}"
        );
        assert_eq!(
            c.get_data(&p).await.unwrap().0,
            text.as_bytes(),
            "untouched"
        );
    }
}

/// In Curator's layout the counter created a missing node with *empty* data (kazoo's
/// `ensure_path`), which is not a `SharedCount` value: Curator's `SharedCount` reads it with
/// `ByteBuffer.getInt()` and throws until a write lands, and nothing lands when the add fails
/// after the create (here an overflow of the 4-byte range; a deadline, `NoAuth` on the write).
/// Curator creates the node with its seed value; so does the counter now (its default).
#[tokio::test(flavor = "multi_thread")]
async fn counter_curator_layout_creates_its_node_with_the_4_byte_default_not_empty_data() {
    let c = shared_client().await;
    let p = unique("r12d-counter-curator-seed");
    let counter = Counter::new(&c, &p, 7i64).curator_layout();
    let r = counter.add(i64::from(i32::MAX)).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let (data, _) = c.get_data(&p).await.expect("the add created the node");
    assert_eq!(
        data,
        7i32.to_be_bytes(),
        "a SharedCount value (the default), not empty"
    );
    assert_eq!(counter.add(1).await.unwrap().post_value, 8);
    assert_eq!(c.get_data(&p).await.unwrap().0, 8i32.to_be_bytes());
}

/// The write of an add held on the wire while another client's add takes its version, then
/// the connection reset (the held write never reaches the server): version `n + 1` with other
/// data means ours failed, and the add goes on, once.
#[tokio::test(flavor = "multi_thread")]
async fn counter_write_held_while_another_add_takes_its_version_goes_on_exactly_once() {
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("r12d-counter-held");
    let counter = Counter::new(&c, &p, 0i64);
    counter.add(1).await.unwrap();
    proxy.hold_request(&[OP_SET_DATA]);
    let add = tokio::spawn({
        let counter = counter.clone();
        async move { counter.add(1).await }
    });
    wait_held(&proxy).await;
    Counter::new(&direct, &p, 0i64).add(5).await.unwrap();
    proxy.reset();
    let change = bounded("the held add", add).await.unwrap().unwrap();
    assert_eq!((change.pre_value, change.post_value), (6, 7));
    assert_eq!(counter.value().await.unwrap(), 7);
}

/// The write of an add held on the wire across a real session expiry (it never reaches the
/// server): the add goes on in the new session and applies once.
#[tokio::test(flavor = "multi_thread")]
async fn counter_write_held_across_a_real_session_expiry_applies_once() {
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("r12d-counter-expiry");
    let counter = Counter::new(&c, &p, 0i64);
    counter.add(1).await.unwrap();
    proxy.hold_request(&[OP_SET_DATA]);
    let add = tokio::spawn({
        let counter = counter.clone();
        async move { counter.add(1).await }
    });
    wait_held(&proxy).await;
    expire(&c, &proxy).await;
    let r = bounded("the held add", add).await.unwrap();
    let direct = shared_client().await;
    let v = Counter::new(&direct, &p, 0i64).value().await.unwrap();
    match r {
        Ok(change) => assert_eq!((change.post_value, v), (2, 2)),
        Err(e) => assert!(e.may_have_been_applied() && v <= 2, "{e:?}, value {v}"),
    }
    assert!(v <= 2, "never twice: {v}");
}

// ------------------------------------------------------------------------------- queue

/// A waiting `get` lists the empty queue, then lists it again with a watch; the queue's node
/// deleted between the two (someone cleaning up, a kazoo `Queue` on a fresh path) made the
/// second listing's `NoNode` the caller's error instead of "the queue is empty": the first
/// listing re-creates a missing node, the second did not.
#[tokio::test(flavor = "multi_thread")]
async fn queue_get_while_the_queue_node_is_deleted_is_not_a_nonode_error() {
    let c = shared_client().await;
    let other = shared_client().await;
    let p = unique("r12d-queue-node-churn");
    c.ensure_path(&p).await.unwrap();
    let q = Queue::new(&c, &p);
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (other, p, stop) = (other.clone(), p.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let _ = other.delete(&p, None).await;
                let _ = other.create(&p, b"", CreateMode::Persistent).await;
                n += 1;
            }
            n
        })
    };
    let mut errors = Vec::new();
    for _ in 0..300 {
        match q.get_timeout(Duration::from_millis(20)).await {
            Ok(None) => {}
            other => errors.push(format!("{other:?}")),
        }
    }
    stop.store(true, Ordering::SeqCst);
    let cycles = churn.await.unwrap();
    eprintln!("{cycles} delete/create cycles of the queue node");
    assert!(
        errors.is_empty(),
        "an empty queue whose node comes and goes is empty, not an error: {errors:?}"
    );
}

/// A get's delete held on the wire, then the connection reset (it never reaches the server):
/// the entry still there, the get takes it again; once, and nothing is left.
#[tokio::test(flavor = "multi_thread")]
async fn queue_delete_held_then_reset_takes_the_entry_once() {
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("r12d-queue-held");
    let q = Queue::new(&c, &p);
    q.put(b"one", 100).await.unwrap();
    proxy.hold_request(&[OP_DELETE]);
    let get = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    wait_held(&proxy).await;
    proxy.reset();
    let got = bounded("the held get", get).await.unwrap().unwrap();
    assert_eq!(got, b"one");
    assert!(q.try_get().await.unwrap().is_none());
}

/// A get's delete held on the wire while another consumer takes the same entry: the get
/// cannot tell who took it and says so (never hands it out a second time).
#[tokio::test(flavor = "multi_thread")]
async fn queue_delete_held_while_another_consumer_takes_the_entry_is_never_handed_twice() {
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("r12d-queue-held2");
    let q = Queue::new(&c, &p);
    q.put(b"one", 100).await.unwrap();
    q.put(b"two", 100).await.unwrap();
    proxy.hold_request(&[OP_DELETE]);
    let get = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    wait_held(&proxy).await;
    assert_eq!(Queue::new(&direct, &p).get().await.unwrap(), b"one");
    proxy.reset();
    let r = bounded("the held get", get).await.unwrap();
    match r {
        Ok(v) => assert_eq!(v, b"two", "the next entry, not \"one\" again"),
        Err(e) => assert!(e.may_have_been_applied(), "{e:?}"),
    }
}

/// The same across a real session expiry: a held delete that never reached the server is
/// not a lost entry.
#[tokio::test(flavor = "multi_thread")]
async fn queue_delete_held_across_a_real_session_expiry_takes_the_entry_once() {
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("r12d-queue-expiry");
    let q = Queue::new(&c, &p);
    q.put(b"one", 100).await.unwrap();
    proxy.hold_request(&[OP_DELETE]);
    let get = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    wait_held(&proxy).await;
    expire(&c, &proxy).await;
    let got = bounded("the held get", get).await.unwrap().unwrap();
    assert_eq!(got, b"one");
    assert!(q.try_get().await.unwrap().is_none());
}

/// `get` dropped at every await point, over and over on one handle (its listing cache
/// shared): what later gets hand out is never an entry twice, nor out of order.
#[tokio::test(flavor = "multi_thread")]
async fn queue_get_dropped_at_every_await_point_never_hands_out_twice_nor_out_of_order() {
    let c = shared_client().await;
    let p = unique("r12d-queue-drop");
    let q = Queue::new(&c, &p);
    for i in 0..40u32 {
        q.put(format!("{i:03}").as_bytes(), 100).await.unwrap();
    }
    let mut got: Vec<String> = Vec::new();
    let mut dropped = 0;
    for i in 0..200 {
        let mut fut = Box::pin(q.get_timeout(Duration::from_millis(200)));
        let mut out = None;
        for _ in 0..(i % 12) {
            if let std::task::Poll::Ready(r) = futures::poll!(fut.as_mut()) {
                out = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_micros(200 * (i % 5))).await;
        }
        match out {
            Some(r) => match r.unwrap() {
                Some(v) => got.push(String::from_utf8(v).unwrap()),
                None => break,
            },
            None => dropped += 1,
        }
        drop(fut);
    }
    while let Some(v) = q.try_get().await.unwrap() {
        got.push(String::from_utf8(v).unwrap());
    }
    eprintln!("{} handed out, {dropped} gets dropped", got.len());
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, got, "in order and never twice");
}

/// The membership stream of an observer whose own session expires: the changes made while it
/// was cut off show up once its new session is there (nothing missed), and the list it
/// already had is not yielded again (nothing duplicated).
#[tokio::test(flavor = "multi_thread")]
async fn party_stream_across_its_own_session_expiry_neither_misses_nor_repeats() {
    use futures::StreamExt;
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("r12d-party-stream-expiry");
    let a = Party::new(&direct, &p, "a");
    a.join().await.unwrap();
    let observer = Party::new(&c, &p, "observer");
    let mut s = observer.members_stream();
    let first = bounded("the first list", s.next()).await.unwrap().unwrap();
    assert_eq!(first, ["a"]);
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    a.leave().await.unwrap();
    let b = Party::new(&direct, &p, "b");
    b.join().await.unwrap();
    let (sid, pw) = c.session_credentials();
    zk_testkit::expire_session(shared_server().addr(), sid, &pw)
        .await
        .unwrap();
    proxy.reject_new(false);
    let next = bounded("the list after the expiry", s.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        next,
        ["b"],
        "the change made while cut off, not the old list again"
    );
    b.leave().await.unwrap();
    let last = bounded("the list after b left", s.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last, Vec::<String>::new());
}

/// kazoo's watcher leak (issue 175) on the plain queue: waiting gets that time out on a quiet
/// queue do not pile up watchers (one-shot watches dropped with the call).
#[tokio::test(flavor = "multi_thread")]
async fn queue_get_timeouts_do_not_pile_up_watchers() {
    let c = shared_client().await;
    let p = unique("r12d-queue-watchers");
    let q = Queue::new(&c, &p);
    let before = c.registered_watchers();
    for _ in 0..1500 {
        assert!(q
            .get_timeout(Duration::from_millis(1))
            .await
            .unwrap()
            .is_none());
    }
    let after = c.registered_watchers();
    eprintln!("registered watchers: {before} before, {after} after 1500 empty gets");
    // zk-core forgets dropped one-shot watchers in batches of 1024
    assert!(after <= before + 1100, "{after} watchers kept");
}

/// An add whose write is held on the wire past its deadline (and then released, so it applies
/// late) says "in doubt" (`Timeout { sent: true }`), never `Ok(None)` ("nothing applied").
#[tokio::test(flavor = "multi_thread")]
async fn counter_write_held_past_the_deadline_then_applied_is_in_doubt_not_none() {
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("r12d-counter-late");
    let counter = Counter::new(&c, &p, 0i64);
    counter.add(1).await.unwrap();
    proxy.hold_request(&[OP_SET_DATA]);
    let r = bounded(
        "an add with a 1 s deadline",
        counter.add_timeout(1, Duration::from_secs(1)),
    )
    .await;
    assert!(proxy.held_requests() >= 1, "the write was held");
    proxy.release_held();
    assert!(
        matches!(r, Err(Error::Timeout { sent: true })),
        "in doubt, not nothing: {r:?}"
    );
    let direct = shared_client().await;
    let d = Counter::new(&direct, &p, 0i64);
    eventually("the late write applied", || async {
        d.value().await.unwrap() == 2
    })
    .await;
    assert_eq!(
        counter.post_value(),
        Some(1),
        "the add in doubt recorded nothing"
    );
}

/// The same for a queue get: its delete held past the deadline, then released (the entry is
/// taken late): "in doubt", not `Ok(None)`; and the entry is not handed out again.
#[tokio::test(flavor = "multi_thread")]
async fn queue_delete_held_past_the_deadline_then_applied_is_in_doubt_not_none() {
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("r12d-queue-late");
    let q = Queue::new(&c, &p);
    q.put(b"one", 100).await.unwrap();
    proxy.hold_request(&[OP_DELETE]);
    let r = bounded(
        "a get with a 1 s deadline",
        q.get_timeout(Duration::from_secs(1)),
    )
    .await;
    assert!(proxy.held_requests() >= 1, "the delete was held");
    proxy.release_held();
    assert!(
        matches!(r, Err(Error::Timeout { sent: true })),
        "in doubt, not nothing: {r:?}"
    );
    let direct = shared_client().await;
    eventually("the late delete applied", || async {
        children(&direct, &p).await.is_empty()
    })
    .await;
    assert!(q.try_get().await.unwrap().is_none());
}

/// The listing cache took "the parent's `cversion` is what we listed at" as "the children
/// are what we listed". A queue node deleted and created again starts its `cversion` (and so
/// its sequence numbers) at 0: once the new node's `cversion` reached the old listing's, a
/// name of the old listing existed again and was taken, while a better entry of the new node
/// waited. The listing is for one incarnation of the node (its `czxid`) too now.
#[tokio::test(flavor = "multi_thread")]
async fn queue_listing_of_a_deleted_and_recreated_queue_node_is_not_trusted() {
    let c = shared_client().await;
    let direct = shared_client().await;
    let p = unique("r12d-queue-recreated");
    let q = Queue::new(&c, &p);
    for v in ["a0", "a1", "a2"] {
        q.put(v.as_bytes(), 100).await.unwrap();
    }
    assert_eq!(q.get().await.unwrap(), b"a0"); // listed at cversion 3, now 4, [a1, a2] left
    direct.delete_recursive(&p).await.unwrap();
    let other = Queue::new(&direct, &p);
    let best = other.put(b"best", 0).await.unwrap(); // cversion 1
    let x1 = other.put(b"x1", 100).await.unwrap(); // cversion 2
    assert!(best.ends_with("entry-000-0000000000"), "{best}");
    assert!(x1.ends_with("entry-100-0000000001"), "{x1}");
    let junk = format!("{p}/junk");
    direct
        .create(&junk, b"", CreateMode::Persistent)
        .await
        .unwrap(); // cversion 3
    direct.delete(&junk, None).await.unwrap(); // cversion 4: the old listing's
    assert_eq!(
        q.get().await.unwrap(),
        b"best",
        "priority 0 first, not a name of the old node's listing"
    );
}

/// `add` dropped at every await point: each dropped add applied at most once, each completed
/// one exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn counter_add_dropped_at_every_await_point_applies_at_most_once() {
    let c = shared_client().await;
    let p = unique("r12d-counter-drop");
    let counter = Counter::new(&c, &p, 0i64);
    let mut value = 0;
    let mut completed = 0;
    for i in 0..150u64 {
        let mut fut = Box::pin(counter.add(1));
        let mut done = false;
        for _ in 0..(i % 10) {
            if let std::task::Poll::Ready(r) = futures::poll!(fut.as_mut()) {
                let change = r.unwrap();
                assert_eq!(change.pre_value, value, "the add read the value");
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_micros(150 * (i % 4))).await;
        }
        drop(fut);
        if done {
            completed += 1;
        }
        // a write sent before the drop lands before this read (one session, in order)
        let now = counter.value().await.unwrap();
        assert!(
            now == value + 1 || (!done && now == value),
            "after a {} add: {value} -> {now}",
            if done { "completed" } else { "dropped" }
        );
        value = now;
    }
    eprintln!("{completed} adds completed, value {value}");
    assert!(completed > 0 && value >= completed);
}

/// `ensure` (creating a missing queue node) retried timeouts as transient with no deadline of
/// its own, through the call's deadline-bounded client: once the call's deadline passed inside
/// it, every request failed at once with `Timeout` and `ensure` tried again, forever (a hot
/// loop; `get_timeout` on a missing queue never returned).
#[tokio::test(flavor = "multi_thread")]
async fn queue_get_timeout_whose_deadline_passes_while_creating_the_queue_node_returns() {
    let proxy = Arc::new(FaultProxy::start(shared_server().addr()).await.unwrap());
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("r12d-queue-ensure-deadline");
    let q = Queue::new(&c, &p);
    // create, create2, createContainer, createTTL
    proxy.hold_request(&[1, 15, 19, 21]);
    let release = tokio::spawn({
        let proxy = proxy.clone();
        async move {
            eventually("the create held", || async { proxy.held_requests() >= 1 }).await;
            tokio::time::sleep(Duration::from_millis(4000)).await;
            proxy.release_held();
        }
    });
    let start = std::time::Instant::now();
    let r = bounded(
        "get_timeout(1 s) on a missing queue whose create is held",
        q.get_timeout(Duration::from_secs(1)),
    )
    .await;
    let took = start.elapsed();
    release.await.unwrap();
    eprintln!("get_timeout(1 s) returned after {took:?}: {r:?}");
    assert!(matches!(r, Ok(None)), "{r:?}");
}

/// Values at and past the ends: an `i64` add that overflows is refused with nothing written;
/// a Python int beyond `i64` (kazoo writes any size) is not a value of this counter; floats
/// take `inf`, `nan` and what overflows to `inf` as Python does; Curator's 4 bytes of
/// `i32::MIN`; 8 bytes (Curator's `DistributedAtomicLong`) are another layout.
#[tokio::test(flavor = "multi_thread")]
async fn counter_values_at_and_past_the_ends() {
    let c = shared_client().await;
    let p = unique("r12d-counter-ends");
    c.create(&p, i64::MAX.to_string().as_bytes(), CreateMode::Persistent)
        .await
        .unwrap();
    let int = Counter::new(&c, &p, 0i64);
    assert!(matches!(int.add(1).await, Err(Error::InvalidArgument(_))));
    assert_eq!(int.add(-1).await.unwrap().post_value, i64::MAX - 1);
    c.set_data(&p, b"9223372036854775808", None).await.unwrap();
    assert!(matches!(int.value().await, Err(Error::InvalidArgument(_))));

    let f = Counter::new(&c, &p, 0.0f64);
    c.set_data(&p, b"1e400", None).await.unwrap();
    assert_eq!(f.value().await.unwrap(), f64::INFINITY);
    let ch = f.add(f64::NEG_INFINITY).await.unwrap();
    assert!(ch.post_value.is_nan());
    assert_eq!(c.get_data(&p).await.unwrap().0, b"nan");
    assert!(f.add(1.0).await.unwrap().post_value.is_nan());

    let cur = Counter::new(&c, &p, 0i64).curator_layout();
    c.set_data(&p, &i32::MIN.to_be_bytes(), None).await.unwrap();
    assert_eq!(cur.value().await.unwrap(), i64::from(i32::MIN));
    assert!(matches!(cur.add(-1).await, Err(Error::InvalidArgument(_))));
    assert_eq!(c.get_data(&p).await.unwrap().0, i32::MIN.to_be_bytes());
    c.set_data(&p, &5i64.to_be_bytes(), None).await.unwrap();
    assert!(matches!(cur.value().await, Err(Error::InvalidArgument(_))));
    assert!(matches!(cur.add(1).await, Err(Error::InvalidArgument(_))));
}

/// The same `ensure` in `LockingQueue`'s take (its `entries` and `taken` nodes).
#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_get_timeout_whose_deadline_passes_while_creating_its_nodes_returns() {
    let proxy = Arc::new(FaultProxy::start(shared_server().addr()).await.unwrap());
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("r12d-lqueue-ensure-deadline");
    let q = zk_recipes::LockingQueue::new(&c, &p);
    // create, create2, createContainer, createTTL
    proxy.hold_request(&[1, 15, 19, 21]);
    let release = tokio::spawn({
        let proxy = proxy.clone();
        async move {
            eventually("the create held", || async { proxy.held_requests() >= 1 }).await;
            tokio::time::sleep(Duration::from_millis(4000)).await;
            proxy.release_held();
        }
    });
    let r = bounded(
        "get_timeout(1 s) on a missing locking queue whose create is held",
        q.get_timeout(Duration::from_secs(1)),
    )
    .await;
    release.await.unwrap();
    assert!(matches!(r, Ok(None)), "{r:?}");
}

/// The counter's own node creation inside an add keeps the add's deadline (the queue's did
/// not): `add_timeout` on a missing node whose create is held returns `Ok(None)`.
#[tokio::test(flavor = "multi_thread")]
async fn counter_add_timeout_whose_deadline_passes_while_creating_its_node_returns() {
    let proxy = Arc::new(FaultProxy::start(shared_server().addr()).await.unwrap());
    let c = common::client(&proxy.connect_string()).await;
    let p = format!("{}/deeper/counter", unique("r12d-counter-ensure-deadline"));
    let counter = Counter::new(&c, &p, 0i64);
    // create, create2, createContainer, createTTL
    proxy.hold_request(&[1, 15, 19, 21]);
    let release = tokio::spawn({
        let proxy = proxy.clone();
        async move {
            eventually("the create held", || async { proxy.held_requests() >= 1 }).await;
            tokio::time::sleep(Duration::from_millis(4000)).await;
            proxy.release_held();
        }
    });
    let r = bounded(
        "add_timeout(1 s) on a missing counter whose create is held",
        counter.add_timeout(1, Duration::from_secs(1)),
    )
    .await;
    release.await.unwrap();
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert_eq!(counter.value().await.unwrap(), 0, "nothing added");
}

/// A party join whose creates are held past its deadline: `Ok(None)`, and once the held
/// creates go through, no member node stays.
#[tokio::test(flavor = "multi_thread")]
async fn party_join_timeout_whose_creates_are_held_returns_and_leaves_no_node() {
    let proxy = Arc::new(FaultProxy::start(shared_server().addr()).await.unwrap());
    let c = common::client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("r12d-party-held-create");
    direct.ensure_path(&p).await.unwrap();
    let member = Party::new(&c, &p, "slow");
    // create, create2, createContainer, createTTL
    proxy.hold_request(&[1, 15, 19, 21]);
    let release = tokio::spawn({
        let proxy = proxy.clone();
        async move {
            eventually("the create held", || async { proxy.held_requests() >= 1 }).await;
            tokio::time::sleep(Duration::from_millis(4000)).await;
            proxy.release_held();
        }
    });
    let r = bounded(
        "join_timeout(1 s) whose create is held",
        member.join_timeout(Duration::from_secs(1)),
    )
    .await;
    release.await.unwrap();
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(!member.is_joined());
    common::wait_no_child_with_prefix(&direct, &p, "").await;
}
