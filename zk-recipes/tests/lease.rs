//! NonBlockingLease / MultiNonBlockingLease (kazoo's layout, clock-judged) and FencedLease
//! (an ephemeral node, no clock) against a real server, and against real kazoo 2.11 processes
//! (`tests/interop/lease.py`).

mod common;

use common::{bounded, children, eventually, python_run, shared_client, unique, wait_state};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zk_core::State;
use zk_recipes::{FencedLease, LostReason, MultiNonBlockingLease, NonBlockingLease};
use zk_testkit::{shared_server, FaultProxy};

/// 2026-11-30T10:25:00 UTC plus `s` seconds.
fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_034_300 + s)
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_writes_kazoo_json_and_is_taken_over_only_after_its_end() {
    let c = shared_client().await;
    let p = unique("lease-layout");
    let hour = Duration::from_secs(3600);
    let a = NonBlockingLease::new(&c, &p, hour, "host-a").clock(|| at(0));
    let got = a
        .try_acquire()
        .await
        .unwrap()
        .expect("a free lease is obtained");
    assert_eq!(got.holder, "host-a");
    assert_eq!(got.end, at(3600));
    let (raw, _) = c.get_data(&format!("{p}/lease_holder")).await.unwrap();
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        r#"{"version": 1, "holder": "host-a", "end": "2026-11-30T11:25:00"}"#,
        "the bytes kazoo's json.dumps writes"
    );
    // only lease_holder is left: the attempt's lock node is gone
    assert_eq!(children(&c, &p).await, vec!["lease_holder".to_string()]);

    // another holder, one second before the end by its clock: refused
    let b = NonBlockingLease::new(&c, &p, hour, "host-b").clock(|| at(3599));
    assert_eq!(b.try_acquire().await.unwrap(), None);
    assert_eq!(b.holder().await.unwrap().unwrap().holder, "host-a");
    // the holder renews before its end: the end moves
    let a2 = NonBlockingLease::new(&c, &p, hour, "host-a").clock(|| at(1800));
    assert_eq!(a2.try_acquire().await.unwrap().unwrap().end, at(5400));
    // at the end (now >= end): taken over
    let b = NonBlockingLease::new(&c, &p, hour, "host-b").clock(|| at(5400));
    let got = b
        .try_acquire()
        .await
        .unwrap()
        .expect("an ended lease is taken over");
    assert_eq!((got.holder.as_str(), got.end), ("host-b", at(9000)));
    assert_eq!(children(&c, &p).await, vec!["lease_holder".to_string()]);

    // another layout version is never taken over
    c.set_data(
        &format!("{p}/lease_holder"),
        br#"{"version": 2, "holder": "x", "end": "2000-01-01T00:00:00"}"#,
        None,
    )
    .await
    .unwrap();
    assert_eq!(a.try_acquire().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_two_hosts_with_skewed_clocks_both_hold_it_as_documented() {
    // the clock assumption, shown: host b's clock runs 61 s ahead of host a's
    let c = shared_client().await;
    let p = unique("lease-skew");
    let min = Duration::from_secs(60);
    let a = NonBlockingLease::new(&c, &p, min, "host-a").clock(|| at(0));
    let b = NonBlockingLease::new(&c, &p, min, "host-b").clock(|| at(61));
    let a_holds = a.try_acquire().await.unwrap().expect("a obtains");
    // at the same real moment, by a's clock a holds it until at(60) ...
    assert!(at(0) < a_holds.end);
    // ... and b, whose clock says at(61), takes it over
    assert!(b.try_acquire().await.unwrap().is_some(), "b takes it over");
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_lease_fills_slots_in_order_in_kazoo_layout() {
    let c = shared_client().await;
    let p = unique("multi-lease");
    let d = Duration::from_secs(600);
    let m = |id: &str| MultiNonBlockingLease::new(&c, 2, &p, d, id).clock(|| at(0));
    assert_eq!(m("a").try_acquire().await.unwrap().unwrap().0, 0);
    assert_eq!(m("b").try_acquire().await.unwrap().unwrap().0, 1);
    assert_eq!(m("c").try_acquire().await.unwrap(), None, "both slots held");
    // a renews its own slot
    assert_eq!(m("a").try_acquire().await.unwrap().unwrap().0, 0);
    assert_eq!(
        children(&c, &p).await,
        vec!["0".to_string(), "1".to_string()]
    );
    assert_eq!(
        children(&c, &format!("{p}/1")).await,
        vec!["lease_holder".to_string()]
    );
    let later = MultiNonBlockingLease::new(&c, 2, &p, d, "c").clock(|| at(600));
    assert_eq!(later.try_acquire().await.unwrap().unwrap().0, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn fenced_lease_is_taken_only_after_the_holders_session_really_expired() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let holder_client = common::client(&proxy.connect_string()).await;
    let other = shared_client().await;
    let p = unique("fenced-lease");
    let a = FencedLease::new(&holder_client, &p, "host-a");
    let b = FencedLease::new(&other, &p, "host-b");
    let guard = a.try_acquire().await.unwrap().expect("a free lease");
    assert!(b.try_acquire().await.unwrap().is_none(), "held by a");

    // a is cut off: it hears it at once; b still cannot take it while a's session lives
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&holder_client, State::Suspended).await;
    assert_eq!(
        bounded("a's lost signal", guard.lost()).await,
        LostReason::Suspended
    );
    assert!(
        b.try_acquire().await.unwrap().is_none(),
        "a's session still lives"
    );
    // the server expires a's session: now b may
    let (sid, pw) = holder_client.session_credentials();
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .unwrap();
    let g = bounded("b obtains after the expiry", async {
        loop {
            if let Some(g) = b.try_acquire().await.unwrap() {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    proxy.reject_new(false);
    // a fenced write of a's fails; b's applies
    assert!(guard
        .fenced_multi(vec![zk_core::Op::check(&p, None)])
        .await
        .is_err());
    g.fenced_multi(vec![zk_core::Op::check(&p, None)])
        .await
        .unwrap();
    let ran = b
        .hold_for(Duration::from_secs(60), async { 7 })
        .await
        .unwrap();
    assert_eq!(
        ran, None,
        "b already holds it through g: another attempt is refused"
    );
    g.release().await.unwrap();
    let ran = b
        .hold_for(Duration::from_millis(200), std::future::pending::<()>())
        .await
        .unwrap();
    assert_eq!(
        ran,
        Some(Err(LostReason::Released)),
        "ended by its duration"
    );
    assert!(children(&other, &p).await.is_empty(), "released");
}

/// Runs one kazoo attempt: (obtained, raw lease_holder text).
async fn kazoo_obtain(p: &str, secs: &str, id: &str) -> (bool, String) {
    let hosts = shared_server().connect_string();
    let out = python_run("lease.py", &[&hosts, "obtain", p, secs, id]).await;
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in:\n{out}"))
            .to_owned()
    };
    (field("OBTAINED ") == "True", field("RAW "))
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_lease_kazoo_and_rust_see_each_others_lease_and_take_it_after_its_end() {
    let c = shared_client().await;
    let p = unique("interop-lease");
    // kazoo obtains for 3 s
    let (ok, raw) = kazoo_obtain(&p, "3", "py-host").await;
    assert!(ok, "kazoo obtains a free lease");
    let rust = NonBlockingLease::new(&c, &p, Duration::from_secs(3), "rust-host");
    let h = rust.holder().await.unwrap().expect("kazoo's holder record");
    assert_eq!(h.holder, "py-host");
    assert!(
        raw.starts_with(r#"{"version": 1, "holder": "py-host", "end": ""#),
        "{raw}"
    );
    assert!(
        rust.try_acquire().await.unwrap().is_none(),
        "kazoo holds it"
    );
    // after its end, Rust takes it over
    eventually("rust obtains the lease after kazoo's end", || async {
        rust.try_acquire().await.unwrap().is_some()
    })
    .await;
    // now kazoo sees Rust's lease (its JSON parses in Python) and is refused ...
    let (ok, raw) = kazoo_obtain(&p, "3", "py-host").await;
    assert!(!ok, "kazoo is refused while rust holds it: {raw}");
    assert!(raw.contains(r#""holder": "rust-host""#), "{raw}");
    // ... until its end
    let mut tries = 0;
    loop {
        tries += 1;
        let (ok, raw) = kazoo_obtain(&p, "3", "py-host").await;
        if ok {
            assert!(raw.contains(r#""holder": "py-host""#), "{raw}");
            break;
        }
        assert!(tries < 30, "kazoo never obtained after rust's end: {raw}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // kazoo's multi lease and Rust's share slots: P2/0 taken by kazoo, Rust gets P2/1
    let p2 = unique("interop-multi-lease");
    let hosts = shared_server().connect_string();
    let out = python_run("lease.py", &[&hosts, "multi", "2", &p2, "600", "py"]).await;
    assert!(out.contains("OBTAINED True"), "{out}");
    let m = MultiNonBlockingLease::new(&c, 2, &p2, Duration::from_secs(600), "rust");
    assert_eq!(m.try_acquire().await.unwrap().unwrap().0, 1);
    let out = python_run("lease.py", &[&hosts, "multi", "2", &p2, "600", "py2"]).await;
    assert!(out.contains("OBTAINED False"), "both slots held: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_whose_write_reply_is_lost_is_obtained_once_and_leaves_no_lock_node() {
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("lease-lost-reply");
    let lease = NonBlockingLease::new(&c, &p, Duration::from_secs(600), "host-a").clock(|| at(0));
    proxy.cut_after_request(14); // multi: applied, its reply lost
    let got = bounded("the attempt", lease.try_acquire())
        .await
        .unwrap()
        .expect("the applied write is recognised as ours");
    assert_eq!(proxy.cuts_fired(), 1, "the reply was lost");
    assert_eq!(got.end, at(600));
    eventually(
        "only lease_holder is left (the attempt's lock node is gone)",
        || async { children(&direct, &p).await == vec!["lease_holder".to_string()] },
    )
    .await;
    // written once: P's children changed 3 times (lock node created, lease_holder created,
    // lock node deleted); a second write would add 4 (lock, delete, create, unlock)
    let stat = direct.exists(&p).await.unwrap().unwrap();
    assert_eq!(stat.cversion, 3, "the lease was written once");
    let other =
        NonBlockingLease::new(&direct, &p, Duration::from_secs(600), "host-b").clock(|| at(1));
    assert_eq!(other.try_acquire().await.unwrap(), None, "host-a holds it");
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_lease_record_bytes_equal_kazoos_for_a_non_ascii_holder() {
    let c = shared_client().await;
    let p = unique("interop-lease-bytes");
    let (ok, _) = kazoo_obtain(&p, "600", "py-h\u{f4}st \u{1f600}").await;
    assert!(ok);
    let (raw, _) = c.get_data(&format!("{p}/lease_holder")).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let h = NonBlockingLease::new(&c, &p, Duration::from_secs(1), "x")
        .holder()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.holder, "py-h\u{f4}st \u{1f600}");
    // what Rust writes for the same record, byte for byte
    let end = raw
        .rsplit_once("\"end\": \"")
        .unwrap()
        .1
        .trim_end_matches("\"}");
    assert_eq!(
        raw,
        format!(r#"{{"version": 1, "holder": "py-h\u00f4st \ud83d\ude00", "end": "{end}"}}"#)
    );
    // and Rust's own record for that holder is the same bytes: renew it from Rust with an end
    // one second later, then compare
    let rust = NonBlockingLease::new(&c, &p, Duration::from_secs(600), "py-h\u{f4}st \u{1f600}");
    let mine = rust.try_acquire().await.unwrap().expect("a renewal");
    let (raw2, _) = c.get_data(&format!("{p}/lease_holder")).await.unwrap();
    let raw2 = String::from_utf8(raw2).unwrap();
    let end2 = raw2
        .rsplit_once("\"end\": \"")
        .unwrap()
        .1
        .trim_end_matches("\"}");
    assert_eq!(raw2, raw.replace(end, end2), "same layout as kazoo's bytes");
    assert!(mine.end >= h.end);
}
