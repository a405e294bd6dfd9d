//! Counter (kazoo `Counter`, Curator `SharedCount` layout) against a real server: the layouts
//! byte for byte, deadlines, a lost reply (never added twice), and concurrent adds with and
//! without connection resets (no `Ok` add lost or doubled).

mod common;

use common::{bounded, shared_client, unique, wait_state};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use zk_core::{CreateMode, Error, State};
use zk_recipes::Counter;
use zk_testkit::{shared_server, FaultProxy};

/// ZooKeeper's setData opcode, for `FaultProxy::cut_after_request`.
const OP_SET_DATA: i32 = 5;

#[tokio::test(flavor = "multi_thread")]
async fn counter_int_uses_kazoo_ascii_layout_and_reports_pre_and_post() {
    let c = shared_client().await;
    let p = format!("{}/hits", unique("counter-int"));
    let counter = Counter::new(&c, &p, 0);
    assert_eq!(
        counter.value().await.unwrap(),
        0,
        "a missing node is the default"
    );
    assert!(
        c.exists(&p).await.unwrap().is_none(),
        "value() writes nothing"
    );
    assert_eq!(counter.pre_value(), None);

    let ch = counter.add(2).await.unwrap();
    assert_eq!((ch.pre_value, ch.post_value), (0, 2));
    let ch = counter.add(-1).await.unwrap();
    assert_eq!((ch.pre_value, ch.post_value), (2, 1));
    assert_eq!(
        (counter.pre_value(), counter.post_value()),
        (Some(2), Some(1))
    );
    assert_eq!(counter.value().await.unwrap(), 1);
    let (data, stat) = c.get_data(&p).await.unwrap();
    assert_eq!(data, b"1", "kazoo's repr(int) as ASCII");
    assert_eq!(stat.ephemeral_owner, 0, "a persistent node");

    // empty data (kazoo's ensure_path) is the default
    let q = format!("{}/empty", unique("counter-empty"));
    c.ensure_path(&q).await.unwrap();
    let from_ten = Counter::new(&c, &q, 10);
    assert_eq!(from_ten.value().await.unwrap(), 10);
    assert_eq!(from_ten.add(5).await.unwrap().post_value, 15);
    assert_eq!(c.get_data(&q).await.unwrap().0, b"15");

    // data of the wrong type is an error, not a guess, and nothing is written
    c.set_data(&q, b"3.5", None).await.unwrap();
    assert!(matches!(
        from_ten.add(1).await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(c.get_data(&q).await.unwrap().0, b"3.5");
    // overflow is refused too
    c.set_data(&q, i64::MAX.to_string().as_bytes(), None)
        .await
        .unwrap();
    assert!(matches!(
        from_ten.add(1).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_float_writes_python_repr() {
    let c = shared_client().await;
    let p = unique("counter-float");
    let counter = Counter::new(&c, &p, 1.0);
    let ch = counter.add(2.0).await.unwrap();
    assert_eq!((ch.pre_value, ch.post_value), (1.0, 3.0));
    assert_eq!(c.get_data(&p).await.unwrap().0, b"3.0");
    counter.add(1e16).await.unwrap();
    assert_eq!(c.get_data(&p).await.unwrap().0, b"1.0000000000000004e+16");
    // an int counter's text reads as a float, as Python's float("42") does
    c.set_data(&p, b"42", None).await.unwrap();
    assert_eq!(counter.add(0.5).await.unwrap().post_value, 42.5);
    assert_eq!(c.get_data(&p).await.unwrap().0, b"42.5");
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_curator_layout_is_a_4_byte_big_endian_int() {
    let c = shared_client().await;
    let p = unique("counter-curator");
    let counter = Counter::new(&c, &p, 0).curator_layout();
    counter.add(258).await.unwrap();
    assert_eq!(c.get_data(&p).await.unwrap().0, vec![0, 0, 1, 2]);
    counter.add(-259).await.unwrap();
    assert_eq!(c.get_data(&p).await.unwrap().0, vec![0xff; 4], "-1");
    assert_eq!(counter.value().await.unwrap(), -1);
    // leaving i32 is refused, nothing written
    let err = counter.add(i64::from(i32::MIN)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(counter.value().await.unwrap(), -1);
    // ASCII data is not a SharedCount
    c.set_data(&p, b"12", None).await.unwrap();
    assert!(matches!(
        counter.value().await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_add_timeout_while_cut_off_is_none_and_adds_nothing() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("counter-deadline");
    let counter = Counter::new(&c, &p, 0);
    counter.add(1).await.unwrap();
    proxy.blackhole();
    let t0 = tokio::time::Instant::now();
    let r = bounded(
        "add_timeout while blackholed",
        counter.add_timeout(1, Duration::from_millis(1500)),
    )
    .await;
    let took = t0.elapsed();
    // the read is what hangs: nothing was written, so the deadline is `Ok(None)`
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "returned before its deadline: {took:?}"
    );
    proxy.heal();
    wait_state(&c, State::Connected).await;
    assert_eq!(Counter::new(&direct, &p, 0).value().await.unwrap(), 1);
    assert_eq!(counter.add(1).await.unwrap().post_value, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_lost_reply_of_an_applied_add_is_never_added_twice() {
    // kazoo retries the whole add after a lost reply: the counter goes up twice
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("counter-lost-reply");
    let counter = Counter::new(&c, &p, 0);
    counter.add(1).await.unwrap();
    proxy.cut_after_request(OP_SET_DATA);
    let r = bounded("add with its reply cut", counter.add(1)).await;
    assert_eq!(proxy.cuts_fired(), 1, "the setData's reply was cut");
    let err = r.expect_err("the outcome cannot be told: an error, not a guess");
    assert!(err.may_have_been_applied(), "{err:?}");
    let direct = shared_client().await;
    assert_eq!(
        Counter::new(&direct, &p, 0).value().await.unwrap(),
        2,
        "applied exactly once"
    );
    assert_eq!(
        counter.post_value(),
        Some(1),
        "the failed add recorded nothing"
    );

    // with a deadline, the same: an error saying it may have applied, never Ok(None)
    proxy.cut_after_request(OP_SET_DATA);
    let r = bounded(
        "add_timeout with its reply cut",
        counter.add_timeout(1, Duration::from_secs(20)),
    )
    .await;
    assert!(r.as_ref().is_err_and(Error::may_have_been_applied), "{r:?}");
    assert_eq!(Counter::new(&direct, &p, 0).value().await.unwrap(), 3);
}

/// 10 tasks x 100 adds of 1 through `hosts`; returns (ok post values, errors that may have
/// applied).
async fn hammer(hosts: &str, p: &str) -> (Vec<i64>, usize) {
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let c = common::client(hosts).await;
        let counter = Counter::new(&c, p, 0);
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut unknown) = (Vec::new(), 0usize);
            while ok.len() + unknown < 100 {
                match counter.add(1).await {
                    Ok(ch) => ok.push(ch.post_value),
                    Err(e) if e.may_have_been_applied() => unknown += 1,
                    Err(e) => panic!("an add failed for good: {e:?}"),
                }
            }
            (ok, unknown)
        }));
    }
    let (mut all, mut unknown) = (Vec::new(), 0);
    for t in tasks {
        let (ok, u) = bounded("10 x 100 adds", t).await.unwrap();
        all.extend(ok);
        unknown += u;
    }
    (all, unknown)
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_ten_tasks_times_hundred_adds_is_exactly_thousand() {
    let server = shared_server();
    let p = unique("counter-concurrent");
    let (oks, unknown) = hammer(&server.connect_string(), &p).await;
    assert_eq!(unknown, 0, "no fault, no doubt");
    let direct = shared_client().await;
    assert_eq!(Counter::new(&direct, &p, 0).value().await.unwrap(), 1000);
    // every add wrote its own value: 1..=1000, each once
    let distinct: BTreeSet<i64> = oks.iter().copied().collect();
    assert_eq!(distinct.len(), 1000);
    assert_eq!(distinct, (1..=1000).collect());
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_concurrent_adds_with_connection_resets_lose_and_double_nothing() {
    let server = shared_server();
    let proxy = Arc::new(FaultProxy::start(server.addr()).await.unwrap());
    let p = unique("counter-resets");
    let resets = tokio::spawn({
        let proxy = proxy.clone();
        async move {
            let mut n = 0u32;
            loop {
                tokio::time::sleep(Duration::from_millis(150)).await;
                proxy.reset();
                n += 1;
                if n == 40 {
                    return n;
                }
            }
        }
    });
    let (oks, unknown) = hammer(&proxy.connect_string(), &p).await;
    resets.abort();
    let direct = shared_client().await;
    let total = Counter::new(&direct, &p, 0).value().await.unwrap();
    let ok = oks.len() as i64;
    eprintln!("resets during the run; ok adds {ok}, unknown outcome {unknown}, counter {total}");
    assert_eq!(ok as usize + unknown, 1000);
    // no Ok add lost: each wrote a distinct value, and all of them count
    let distinct: BTreeSet<i64> = oks.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        oks.len(),
        "two Ok adds wrote the same value"
    );
    assert!(total >= ok, "an Ok add was lost: {total} < {ok}");
    // none doubled: at most the Ok ones plus those reported as maybe applied
    assert!(
        total <= ok + unknown as i64,
        "an add was applied twice: {total} > {ok} + {unknown}"
    );
    assert!(
        proxy.connections_accepted() > 10,
        "the resets did cut connections"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_recreates_a_deleted_node_and_its_parents() {
    let c = shared_client().await;
    let base = unique("counter-deleted");
    let p = format!("{base}/a/b");
    let counter = Counter::new(&c, &p, 5);
    assert_eq!(counter.add(1).await.unwrap().post_value, 6);
    c.delete_recursive(&base).await.unwrap();
    assert_eq!(
        counter.add(1).await.unwrap().post_value,
        6,
        "from the default again"
    );
    // a node someone created empty is the default too
    c.delete(&p, None).await.unwrap();
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(counter.value().await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_deadline_with_an_applied_write_in_doubt_is_an_error_not_none() {
    // the write applied, its reply was cut, and the client cannot get back before the
    // deadline: `Ok(None)` would claim nothing was added
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("counter-deadline-doubt");
    let counter = Counter::new(&c, &p, 0);
    counter.add(1).await.unwrap();
    proxy.reject_new(true);
    proxy.cut_after_request(OP_SET_DATA);
    let r = bounded(
        "add_timeout with its reply cut and no way back",
        counter.add_timeout(1, Duration::from_secs(2)),
    )
    .await;
    assert_eq!(proxy.cuts_fired(), 1);
    assert!(
        matches!(r, Err(Error::Timeout { sent: true })),
        "in doubt at the deadline: {r:?}"
    );
    let direct = shared_client().await;
    assert_eq!(Counter::new(&direct, &p, 0).value().await.unwrap(), 2);
    proxy.reject_new(false);
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_add_goes_on_through_a_real_session_expiry() {
    // a counter is not tied to a session: an add waiting while its session expires finishes
    // in the new one, once
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("counter-expiry");
    let counter = Counter::new(&c, &p, 0);
    counter.add(1).await.unwrap();
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    let add = tokio::spawn({
        let counter = counter.clone();
        async move { counter.add(1).await }
    });
    let (sid, pw) = c.session_credentials();
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .unwrap();
    proxy.reject_new(false);
    let ch = bounded("the add after the expiry", add)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ch.pre_value, ch.post_value), (1, 2));
    assert_ne!(c.session_id(), sid);
    assert_eq!(Counter::new(&direct, &p, 0).value().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_add_timeout_while_disconnected_is_none() {
    // the deadline passes while the add waits for the connection (not inside a request)
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("counter-disconnected");
    let counter = Counter::new(&c, &p, 0);
    counter.add(1).await.unwrap();
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    let r = bounded(
        "add_timeout while disconnected",
        counter.add_timeout(1, Duration::from_millis(1500)),
    )
    .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    proxy.reject_new(false);
    wait_state(&c, State::Connected).await;
    assert_eq!(counter.value().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_add_timeout_after_a_connection_loss_of_its_read_is_none() {
    // the read fails with ConnectionLoss, then the deadline passes while waiting for the
    // connection: nothing was written, so `Ok(None)`, not an error
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let p = unique("counter-loss-then-deadline");
    let counter = Counter::new(&c, &p, 0);
    counter.add(1).await.unwrap();
    proxy.blackhole();
    let add = tokio::spawn({
        let counter = counter.clone();
        async move { counter.add_timeout(1, Duration::from_secs(3)).await }
    });
    // let the read go out into the blackhole (if it has not yet, the test is weaker, not wrong)
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.reject_new(true);
    proxy.reset();
    let r = bounded("add_timeout", add).await.unwrap();
    assert!(matches!(r, Ok(None)), "{r:?}");
    proxy.heal();
    proxy.reject_new(false);
    wait_state(&c, State::Connected).await;
    assert_eq!(counter.value().await.unwrap(), 1);
}
