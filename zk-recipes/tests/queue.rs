//! Queue and LockingQueue (kazoo `Queue`, `LockingQueue`) against a real server: the layouts
//! byte for byte, priorities, the listing cache (kazoo's stale list), a lost delete reply, the
//! watchers a waiting get leaves, and the locking queue under connection resets and real
//! session expiries (every entry consumed exactly once, never held by two consumers).

mod common;

use common::{bounded, children, shared_client, unique, wait_state};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zk_core::{Client, Error, State};
use zk_recipes::{LockingQueue, Queue, DEFAULT_PRIORITY};
use zk_testkit::{shared_server, FaultProxy};

/// ZooKeeper's delete and multi opcodes, for `FaultProxy::cut_after_request`.
const OP_DELETE: i32 = 2;
const OP_MULTI: i32 = 14;

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_uses_kazoo_layout_and_takes_by_priority_then_order() {
    let c = shared_client().await;
    let p = unique("queue-layout");
    let q = Queue::new(&c, &p);
    assert_eq!(q.len().await.unwrap(), 0, "a missing queue is empty");
    assert_eq!(q.try_get().await.unwrap(), None);
    let first = q.put(b"a", DEFAULT_PRIORITY).await.unwrap();
    q.put(b"b", DEFAULT_PRIORITY).await.unwrap();
    q.put(b"urgent", 0).await.unwrap();
    q.put_all(&[b"late-1".as_slice(), b"late-2".as_slice()], 999)
        .await
        .unwrap();
    assert!(matches!(
        q.put(b"x", 1000).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(
        first.starts_with(&format!("{p}/entry-100-")),
        "kazoo's name: {first}"
    );
    let names = children(&c, &p).await;
    assert_eq!(names.len(), 5);
    for n in &names {
        let (prio, seq) = n
            .strip_prefix("entry-")
            .and_then(|r| r.split_once('-'))
            .unwrap();
        assert!(["000", "100", "999"].contains(&prio), "{n}");
        assert_eq!(seq.len(), 10, "{n}");
    }
    let (data, stat) = c.get_data(&first).await.unwrap();
    assert_eq!(data, b"a");
    assert_eq!(stat.ephemeral_owner, 0, "persistent");
    assert_eq!(q.len().await.unwrap(), 5);
    let mut got = Vec::new();
    while let Some(v) = q.try_get().await.unwrap() {
        got.push(s(&v));
    }
    assert_eq!(got, ["urgent", "a", "b", "late-1", "late-2"]);
    assert!(q.is_empty().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_takes_a_better_priority_put_after_its_listing() {
    // kazoo's Queue lists once and drains that list: an entry put meanwhile with priority 0
    // waits until every older priority-100 entry is gone
    let c = shared_client().await;
    let other = shared_client().await;
    let p = unique("queue-stale-listing");
    let q = Queue::new(&c, &p);
    for i in 0..5 {
        q.put(format!("normal-{i}").as_bytes(), 100).await.unwrap();
    }
    assert_eq!(s(&q.get().await.unwrap()), "normal-0"); // the listing is cached now
    Queue::new(&other, &p).put(b"urgent", 0).await.unwrap();
    assert_eq!(s(&q.get().await.unwrap()), "urgent");
    // another consumer took the next one behind our back: we move on, nothing twice
    assert_eq!(s(&Queue::new(&other, &p).get().await.unwrap()), "normal-1");
    let rest: Vec<String> = [q.get().await, q.get().await, q.get().await]
        .into_iter()
        .map(|r| s(&r.unwrap()))
        .collect();
    assert_eq!(rest, ["normal-2", "normal-3", "normal-4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_get_waits_for_a_put_and_times_out_with_none() {
    let c = shared_client().await;
    let p = unique("queue-wait");
    let q = Queue::new(&c, &p);
    assert_eq!(
        q.get_timeout(Duration::from_millis(300)).await.unwrap(),
        None
    );
    let w = shared_client().await;
    let waiter = tokio::spawn({
        let q = Queue::new(&w, &p);
        async move { q.get_timeout(Duration::from_secs(60)).await }
    });
    // (`wchp` lists data watches only: the client's count shows the children watch)
    common::eventually("the waiting get's children watch", || async {
        w.registered_watchers() >= 1
    })
    .await;
    Queue::new(&shared_client().await, &p)
        .put(b"late", 5)
        .await
        .unwrap();
    let got = bounded("the waiting get", waiter).await.unwrap().unwrap();
    assert_eq!(got.as_deref(), Some(b"late".as_slice()));
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_concurrent_consumers_take_every_entry_exactly_once() {
    let p = unique("queue-concurrent");
    let producer = shared_client().await;
    let values: Vec<Vec<u8>> = (0..300).map(|i| format!("v{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    for chunk in refs.chunks(100) {
        Queue::new(&producer, &p).put_all(chunk, 100).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let c = shared_client().await;
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let q = Queue::new(&c, &p);
            let mut got = Vec::new();
            while let Some(v) = q.try_get().await.unwrap() {
                got.push(s(&v));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(bounded("a consumer", t).await.unwrap());
    }
    let distinct: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 300, "nothing taken twice");
    assert_eq!(distinct.len(), 300, "every entry taken");
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_consumers_under_resets_never_take_twice_and_lose_only_what_they_report() {
    // at most once, and every loss is an error that says the entry may have been taken
    const N: usize = 300;
    const CONSUMERS: usize = 4;
    let server = shared_server();
    let p = unique("queue-resets");
    let producer = shared_client().await;
    let values: Vec<Vec<u8>> = (0..N).map(|i| format!("v{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    for chunk in refs.chunks(100) {
        Queue::new(&producer, &p).put_all(chunk, 100).await.unwrap();
    }
    let mut proxies = Vec::new();
    for _ in 0..CONSUMERS {
        proxies.push(Arc::new(FaultProxy::start(server.addr()).await.unwrap()));
    }
    let resets = tokio::spawn({
        let proxies = proxies.clone();
        async move {
            let mut n = 0usize;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                proxies[n % proxies.len()].reset();
                n += 1;
            }
        }
    });
    let mut tasks = Vec::new();
    for proxy in &proxies {
        let c = common::client(&proxy.connect_string()).await;
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let q = Queue::new(&c, &p);
            let (mut got, mut in_doubt) = (Vec::new(), 0usize);
            loop {
                match q.get_timeout(Duration::from_millis(500)).await {
                    Ok(Some(v)) => got.push(s(&v)),
                    // (a get cut off until its deadline is not the end of the queue)
                    Ok(None) if q.is_empty().await.unwrap() => return (got, in_doubt),
                    Ok(None) => {}
                    Err(e) if e.may_have_been_applied() => in_doubt += 1,
                    Err(e) => panic!("get: {e}"),
                }
            }
        }));
    }
    let (mut all, mut in_doubt) = (Vec::new(), 0);
    for t in tasks {
        let (g, d) = bounded("a consumer", t).await.unwrap();
        all.extend(g);
        in_doubt += d;
    }
    resets.abort();
    let distinct: BTreeSet<_> = all.iter().cloned().collect();
    eprintln!(
        "{} taken, {in_doubt} in doubt, {} proxy connections",
        all.len(),
        proxies
            .iter()
            .map(|p| p.connections_accepted())
            .sum::<u64>()
    );
    assert_eq!(distinct.len(), all.len(), "an entry taken twice");
    assert!(
        all.len() + in_doubt >= N,
        "{} entries missing, only {in_doubt} reported",
        N - all.len()
    );
    assert!(children(&producer, &p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_lost_delete_reply_is_an_error_not_a_silent_skip() {
    // kazoo retries after a lost delete reply, finds the entry gone and returns the next one:
    // the first is lost without a word
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("queue-lost-delete");
    let q = Queue::new(&c, &p);
    q.put(b"one", 100).await.unwrap();
    q.put(b"two", 100).await.unwrap();
    proxy.cut_after_request(OP_DELETE);
    let r = bounded("get with its delete reply cut", q.get()).await;
    assert_eq!(proxy.cuts_fired(), 1, "the delete's reply was cut");
    let e = r.expect_err("the outcome is unknown: said so");
    assert!(e.may_have_been_applied(), "{e:?}");
    assert_eq!(s(&q.get().await.unwrap()), "two", "the next one, once");
    assert_eq!(q.try_get().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_get_timeouts_do_not_pile_up_watchers() {
    // kazoo issue 175: every LockingQueue.get(timeout) on a quiet queue registers callbacks
    // that stay forever (gigabytes a day); ours are one-shot watches dropped with the call
    let c = shared_client().await;
    let p = unique("lqueue-watchers");
    let q = LockingQueue::new(&c, &p);
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
    q.put(b"x", 100).await.unwrap();
    let e = q
        .get_timeout(Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert!(e.consume().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_uses_kazoo_layout_release_and_consume() {
    let c = shared_client().await;
    let p = unique("lqueue-layout");
    let q = LockingQueue::new(&c, &p);
    q.put(b"a", 100).await.unwrap();
    q.put_all(&[b"b".as_slice(), b"c".as_slice()], 100)
        .await
        .unwrap();
    q.put(b"first", 1).await.unwrap();
    assert_eq!(children(&c, &p).await, ["entries", "taken"]);
    assert_eq!(q.len().await.unwrap(), 4);

    let e = q.get().await.unwrap();
    assert_eq!(e.data(), b"first");
    assert!(e.name().starts_with("entry-001-"), "{}", e.name());
    let taken = format!("{p}/taken/{}", e.name());
    let (data, stat) = c.get_data(&taken).await.unwrap();
    // kazoo's taken node: data = a uuid4 as 32 hex digits (fresh per take: review12b.rs)
    assert_eq!(data.len(), 32, "{data:?}");
    assert!(data.iter().all(|b| b.is_ascii_hexdigit()), "{data:?}");
    assert_eq!(stat.ephemeral_owner, c.session_id(), "ephemeral");
    assert!(e.holds_lock().await.unwrap());

    // another handle skips the taken entry
    let q2 = LockingQueue::new(&shared_client().await, &p);
    let e2 = q2.try_get().await.unwrap().unwrap();
    assert_eq!(e2.data(), b"a");
    assert!(e.release().await.unwrap(), "released");
    assert!(c.exists(&taken).await.unwrap().is_none());
    assert_eq!(q.len().await.unwrap(), 4, "released, not consumed");

    let e = q.get().await.unwrap();
    assert_eq!(e.data(), b"first", "free again");
    let entry = e.path().to_owned();
    assert!(e.consume().await.unwrap());
    assert!(c.exists(&entry).await.unwrap().is_none());
    assert!(c.exists(&taken).await.unwrap().is_none());
    assert!(e2.consume().await.unwrap());
    // dropping an entry releases it
    let e = q.get().await.unwrap();
    assert_eq!(e.data(), b"b");
    let name = e.name().to_owned();
    drop(e);
    common::wait_no_child_with_prefix(&c, &format!("{p}/taken"), &name).await;
    let rest: Vec<String> = [q.get().await.unwrap(), q.get().await.unwrap()]
        .iter()
        .map(|e| s(e.data()))
        .collect();
    assert_eq!(rest, ["b", "c"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_entry_of_an_expired_consumer_goes_to_another_and_only_it_consumes() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let a = common::client(&proxy.connect_string()).await;
    let b = shared_client().await;
    let p = unique("lqueue-expiry");
    LockingQueue::new(&b, &p).put(b"job", 100).await.unwrap();
    let held = LockingQueue::new(&a, &p).get().await.unwrap();
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&a, State::Suspended).await;
    let (sid, pw) = a.session_credentials();
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .unwrap();
    let qb = LockingQueue::new(&b, &p);
    let other = bounded("b takes the entry freed by the expiry", qb.get())
        .await
        .unwrap();
    assert_eq!(other.data(), b"job");
    proxy.reject_new(false);
    wait_state(&a, State::Connected).await;
    assert_ne!(a.session_id(), sid);
    assert!(!held.holds_lock().await.unwrap());
    assert!(!held.consume().await.unwrap(), "not ours any more");
    assert_eq!(
        qb.len().await.unwrap(),
        1,
        "the stale consume changed nothing"
    );
    assert!(other.holds_lock().await.unwrap());
    assert!(other.consume().await.unwrap());
    assert_eq!(qb.len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_lost_consume_reply_is_settled_as_consumed() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("lqueue-lost-consume");
    let q = LockingQueue::new(&c, &p);
    q.put(b"one", 100).await.unwrap();
    let e = q.get().await.unwrap();
    let entry = e.path().to_owned();
    proxy.cut_after_request(OP_MULTI);
    let r = bounded("consume with its reply cut", e.consume()).await;
    assert_eq!(proxy.cuts_fired(), 1);
    assert!(r.unwrap(), "same session, entry gone: consumed by us");
    assert!(c.exists(&entry).await.unwrap().is_none());
    assert_eq!(q.len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_get_dropped_at_every_await_point_leaves_no_taken_node() {
    let c = shared_client().await;
    let p = unique("lqueue-cancel");
    let q = LockingQueue::new(&c, &p);
    q.put(b"only", 100).await.unwrap();
    let taken = format!("{p}/taken");
    let mut i = 0;
    loop {
        let mut fut = Box::pin(q.get());
        let mut done = None;
        for _ in 0..i {
            if let std::task::Poll::Ready(r) = futures::poll!(fut.as_mut()) {
                done = Some(r.unwrap());
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(fut);
        if let Some(e) = done {
            assert_eq!(e.data(), b"only");
            assert!(e.consume().await.unwrap());
            break;
        }
        common::wait_no_child_with_prefix(&c, &taken, "").await;
        i += 1;
        assert!(i < 10_000, "get never completed");
    }
    eprintln!("get completed after {i} drops at successive await points");
    assert!(i > 0, "the get never was dropped half-way");
    assert!(children(&c, &taken).await.is_empty());
    assert!(q.is_empty().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_lost_consume_reply_then_session_expiry_is_unknown_not_a_guess() {
    // the consume applied, its reply was lost, and the session expired before the client
    // could look: the entry is gone, but so is the taken node that proved it was ours (another
    // consumer could have taken and consumed it meanwhile): an error, not `true` or `false`
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("lqueue-consume-expiry");
    let q = LockingQueue::new(&c, &p);
    q.put(b"one", 100).await.unwrap();
    let e = q.get().await.unwrap();
    let entry = e.path().to_owned();
    let (sid, pw) = c.session_credentials();
    proxy.reject_new(true);
    proxy.cut_after_request(OP_MULTI);
    let consume = tokio::spawn(e.consume());
    common::eventually("the consume's reply cut", || async {
        proxy.cuts_fired() == 1
    })
    .await;
    wait_state(&c, State::Suspended).await;
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .unwrap();
    proxy.reject_new(false);
    let r = bounded("the consume", consume).await.unwrap();
    let err = r.expect_err("unknown: said so");
    assert!(err.may_have_been_applied(), "{err:?}");
    assert!(shared_client()
        .await
        .exists(&entry)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_lost_take_reply_is_adopted_by_its_owner() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("lqueue-lost-take");
    let q = LockingQueue::new(&c, &p);
    q.put(b"one", 100).await.unwrap();
    proxy.cut_after_request(OP_MULTI);
    let e = bounded("get with its take's reply cut", q.get())
        .await
        .unwrap();
    assert_eq!(proxy.cuts_fired(), 1, "the take's reply was cut");
    assert_eq!(e.data(), b"one");
    let (_, stat) = c
        .get_data(&format!("{p}/taken/{}", e.name()))
        .await
        .unwrap();
    assert_eq!(stat.ephemeral_owner, c.session_id(), "one taken node, ours");
    assert!(e.holds_lock().await.unwrap());
    assert!(e.consume().await.unwrap());
    assert!(q.is_empty().await.unwrap());
}

/// What the consumers of the fault test saw.
#[derive(Default)]
struct Log {
    /// item -> consumers that got it (in order)
    handed: BTreeMap<String, Vec<usize>>,
    /// item -> consumers whose consume returned Ok(true)
    consumed: BTreeMap<String, Vec<usize>>,
    /// item -> consumers whose consume's outcome was unknown
    unknown: BTreeMap<String, Vec<usize>>,
    lost_takes: usize,
    expiries: usize,
}

#[tokio::test(flavor = "multi_thread")]
async fn locking_queue_under_resets_and_expiries_consumes_every_item_exactly_once() {
    const PRODUCERS: usize = 3;
    const PER_PRODUCER: usize = 100;
    const CONSUMERS: usize = 4;
    let server = shared_server();
    let p = unique("lqueue-faults");
    let mut proxies = Vec::new();
    for _ in 0..PRODUCERS + CONSUMERS {
        proxies.push(Arc::new(FaultProxy::start(server.addr()).await.unwrap()));
    }
    let resets = tokio::spawn({
        let proxies = proxies.clone();
        async move {
            let mut n = 0usize;
            loop {
                tokio::time::sleep(Duration::from_millis(150)).await;
                proxies[n % proxies.len()].reset();
                n += 1;
            }
        }
    });
    // producers: an item whose put's outcome is unknown is "maybe put"
    let maybe = Arc::new(Mutex::new(BTreeSet::new()));
    let mut producers = Vec::new();
    for (i, proxy) in proxies.iter().enumerate().take(PRODUCERS) {
        let c = common::client(&proxy.connect_string()).await;
        let (p, maybe) = (p.clone(), maybe.clone());
        producers.push(tokio::spawn(async move {
            let q = LockingQueue::new(&c, &p);
            let mut put = Vec::new();
            for j in 0..PER_PRODUCER {
                let item = format!("p{i}-{j}");
                match q.put(item.as_bytes(), (j % 3) as u16 * 100).await {
                    Ok(_) => put.push(item),
                    Err(e) if e.may_have_been_applied() => {
                        maybe.lock().unwrap().insert(item);
                    }
                    Err(e) => panic!("put {item}: {e}"),
                }
            }
            put
        }));
    }
    let log = Arc::new(Mutex::new(Log::default()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut consumers = Vec::new();
    for k in 0..CONSUMERS {
        let proxy = proxies[PRODUCERS + k].clone();
        let c = common::client(&proxy.connect_string()).await;
        let (p, log, done) = (p.clone(), log.clone(), done.clone());
        consumers.push(tokio::spawn(async move {
            let q = LockingQueue::new(&c, &p);
            let mut taken = 0usize;
            loop {
                let Some(e) = q.get_timeout(Duration::from_millis(500)).await.unwrap() else {
                    if done.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    continue;
                };
                taken += 1;
                let item = s(e.data());
                log.lock()
                    .unwrap()
                    .handed
                    .entry(item.clone())
                    .or_default()
                    .push(k);
                // consumers 0 and 1 lose their session while holding their 15th item
                if k < 2 && taken == 15 {
                    expire(&c, &proxy, server.addr()).await;
                    log.lock().unwrap().expiries += 1;
                }
                match e.consume().await {
                    Ok(true) => log
                        .lock()
                        .unwrap()
                        .consumed
                        .entry(item)
                        .or_default()
                        .push(k),
                    Ok(false) => log.lock().unwrap().lost_takes += 1,
                    Err(e) if e.may_have_been_applied() => {
                        log.lock().unwrap().unknown.entry(item).or_default().push(k)
                    }
                    Err(e) => panic!("consume {item}: {e}"),
                }
            }
        }));
    }
    let mut put = BTreeSet::new();
    for t in producers {
        put.extend(bounded("a producer", t).await.unwrap());
    }
    let checker = shared_client().await;
    let entries = format!("{p}/entries");
    common::eventually("the queue drained", || {
        let (c, e) = (checker.clone(), entries.clone());
        async move { children(&c, &e).await.is_empty() }
    })
    .await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in consumers {
        bounded("a consumer", t).await.unwrap();
    }
    resets.abort();
    assert!(children(&checker, &format!("{p}/taken")).await.is_empty());
    let maybe = maybe.lock().unwrap().clone();
    let log = log.lock().unwrap();
    let redelivered = log.handed.values().filter(|v| v.len() > 1).count();
    eprintln!(
        "{} items put, {} maybe put; {} handed out ({} more than once), {} consumed, {} \
         consumes unknown, {} takes lost, {} expiries, {} proxy connections",
        put.len(),
        maybe.len(),
        log.handed.len(),
        redelivered,
        log.consumed.len(),
        log.unknown.len(),
        log.lost_takes,
        log.expiries,
        proxies
            .iter()
            .map(|p| p.connections_accepted())
            .sum::<u64>()
    );
    assert_eq!(log.expiries, 2);
    for (item, who) in &log.consumed {
        assert_eq!(who.len(), 1, "{item} consumed by {who:?}");
        assert!(
            put.contains(item) || maybe.contains(item),
            "{item} was never put"
        );
    }
    for item in &put {
        let ok = log.consumed.contains_key(item) || log.unknown.contains_key(item);
        assert!(ok, "{item} was put but never consumed");
    }
    // an unknown consume is one that may have applied: its item was consumed by it or by
    // one other consumer, never by two
    for (item, who) in &log.unknown {
        let confirmed = log.consumed.get(item).map_or(0, |v| v.len());
        assert!(confirmed + who.len() >= 1 && confirmed <= 1, "{item}");
    }
    assert!(
        log.lost_takes >= 2,
        "the expired consumers' takes were lost"
    );
}

/// Cuts `c` off, expires its session on the server, lets it reconnect (a new session).
async fn expire(c: &Client, proxy: &FaultProxy, server: std::net::SocketAddr) {
    proxy.reject_new(true);
    proxy.reset();
    wait_state(c, State::Suspended).await;
    let (sid, pw) = c.session_credentials();
    zk_testkit::expire_session(server, sid, &pw).await.unwrap();
    proxy.reject_new(false);
    common::eventually("a new session", || async {
        c.state() == State::Connected && c.session_id() != sid
    })
    .await;
}
