//! Party and ShallowParty (kazoo's layouts) against a real server: join/leave/len/members,
//! the membership stream, re-joining after a real session expiry and after a deletion,
//! deadlines while cut off, and no node left by a timed-out or dropped join.

mod common;

use common::{bounded, children, eventually, shared_client, unique, wait_state};
use futures::StreamExt;
use std::time::Duration;
use zk_core::{CreateMode, Error, State};
use zk_recipes::{Members, Party, ShallowParty};
use zk_testkit::{shared_server, FaultProxy};

fn is_uuid_hex(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The next list of the stream (bounded).
async fn next_members(s: &mut Members) -> Vec<String> {
    bounded("the next membership list", s.next())
        .await
        .expect("the stream goes on")
        .expect("no error")
}

/// Reads the stream until it yields `want`.
async fn until_members(s: &mut Members, want: &[&str]) {
    loop {
        let m = next_members(s).await;
        if m == want {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn party_uses_kazoo_layout_and_counts_members() {
    let c1 = shared_client().await;
    let c2 = shared_client().await;
    let p = unique("party-basic");
    let a = Party::new(&c1, &p, "alpha");
    let b = Party::new(&c2, &p, "beta");
    assert_eq!(a.len().await.unwrap(), 0, "a missing party is empty");
    assert!(!a.is_joined());
    a.join().await.unwrap();
    a.join().await.unwrap(); // again: nothing more
    b.join().await.unwrap();
    assert!(a.is_joined() && a.is_present());

    let names = children(&c1, &p).await;
    assert_eq!(names.len(), 2, "{names:?}");
    for n in &names {
        let uuid = n
            .strip_suffix("__party__")
            .expect("kazoo's `<uuid>__party__`");
        assert!(is_uuid_hex(uuid), "{n}");
        let (data, stat) = c1.get_data(&format!("{p}/{n}")).await.unwrap();
        assert!(data == b"alpha" || data == b"beta", "{data:?}");
        assert_ne!(stat.ephemeral_owner, 0, "EPHEMERAL");
    }
    let own = a.node_path().unwrap();
    let (_, stat) = c1.get_data(&own).await.unwrap();
    assert_eq!(stat.ephemeral_owner, c1.session_id());

    // a child without the mark is not a member (kazoo filters the same way)
    c1.create(&format!("{p}/not-a-member"), b"x", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(a.len().await.unwrap(), 2);
    let mut m = a.members().await.unwrap();
    m.sort();
    assert_eq!(m, ["alpha", "beta"]);

    assert!(b.leave().await.unwrap(), "deleted its node");
    assert!(!b.leave().await.unwrap(), "not a member any more");
    assert!(!b.is_joined());
    assert_eq!(a.members().await.unwrap(), ["alpha"]);
    assert!(a.leave().await.unwrap());
    assert_eq!(a.len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn shallow_party_uses_kazoo_layout() {
    let c = shared_client().await;
    let p = unique("shallow-basic");
    let a = ShallowParty::new(&c, &p, "worker-1").unwrap();
    let b = ShallowParty::new(&c, &p, "worker-2").unwrap();
    a.join().await.unwrap();
    b.join().await.unwrap();
    for n in children(&c, &p).await {
        let (uuid, id) = n.split_once('-').expect("kazoo's `<uuid>-<identifier>`");
        assert!(is_uuid_hex(uuid), "{n}");
        assert!(id == "worker-1" || id == "worker-2", "{n}");
        let (data, stat) = c.get_data(&format!("{p}/{n}")).await.unwrap();
        assert_eq!(data, id.as_bytes());
        assert_ne!(stat.ephemeral_owner, 0);
    }
    let mut m = a.members().await.unwrap();
    m.sort();
    assert_eq!(m, ["worker-1", "worker-2"]);
    assert_eq!(b.len().await.unwrap(), 2);
    assert!(matches!(
        ShallowParty::new(&c, &p, "a/b"),
        Err(Error::InvalidArgument(_))
    ));
    // an identifier with '-' comes back whole (what follows the first '-')
    let d = ShallowParty::new(&c, &p, "eu-west-1").unwrap();
    d.join().await.unwrap();
    assert!(a.members().await.unwrap().contains(&"eu-west-1".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn party_members_stream_follows_joins_and_leaves() {
    let c = shared_client().await;
    let p = unique("party-stream");
    let watcher = Party::new(&c, &p, "watcher-not-joined");
    let mut s = watcher.members_stream();
    assert_eq!(next_members(&mut s).await, Vec::<String>::new());
    let a = Party::new(&c, &p, "a");
    a.join().await.unwrap();
    until_members(&mut s, &["a"]).await;
    let b = Party::new(&shared_client().await, &p, "b");
    b.join().await.unwrap();
    let m = next_members(&mut s).await;
    assert_eq!(m.len(), 2, "{m:?}");
    a.leave().await.unwrap();
    until_members(&mut s, &["b"]).await;
    drop(b); // dropping the handle leaves
    until_members(&mut s, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn party_member_rejoins_after_a_real_session_expiry() {
    // kazoo's Party does not: after an expiry its member is gone for good, though it still
    // says it participates
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("party-expiry");
    let member = Party::new(&c, &p, "phoenix");
    member.join().await.unwrap();
    let observer = Party::new(&direct, &p, "observer");
    let mut s = observer.members_stream();
    until_members(&mut s, &["phoenix"]).await;
    let old_node = member.node_path().unwrap();

    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    let (sid, pw) = c.session_credentials();
    zk_testkit::expire_session(server.addr(), sid, &pw)
        .await
        .unwrap();
    // the member's node vanished with its session, and the stream shows it
    until_members(&mut s, &[]).await;
    assert!(direct.exists(&old_node).await.unwrap().is_none());
    assert!(member.is_joined(), "still joined: it will come back");

    proxy.reject_new(false);
    until_members(&mut s, &["phoenix"]).await;
    wait_state(&c, State::Connected).await;
    assert_ne!(c.session_id(), sid, "a new session");
    let (_, stat) = direct.get_data(&old_node).await.unwrap();
    assert_eq!(
        stat.ephemeral_owner,
        c.session_id(),
        "re-created in the new session"
    );
    eventually("the member sees itself present", || async {
        member.is_present()
    })
    .await;
    assert!(member.leave().await.unwrap());
    until_members(&mut s, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn party_member_node_deleted_by_someone_else_is_recreated() {
    let c = shared_client().await;
    let direct = shared_client().await;
    let p = unique("party-deleted");
    let member = ShallowParty::new(&c, &p, "stubborn").unwrap();
    member.join().await.unwrap();
    let node = member.node_path().unwrap();
    direct.delete(&node, None).await.unwrap();
    eventually("the member node is back", || async {
        direct.exists(&node).await.unwrap().is_some()
    })
    .await;
    // ... and so is the whole party node, should someone remove it
    member.leave().await.unwrap();
    member.join().await.unwrap();
    direct.delete_recursive(&p).await.unwrap();
    eventually("the party and member are back", || async {
        member.len().await.unwrap() == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn party_join_timeout_while_cut_off_is_none_and_leaves_nothing() {
    let server = shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let direct = shared_client().await;
    let p = unique("party-deadline");
    direct.ensure_path(&p).await.unwrap();
    let member = Party::new(&c, &p, "late");
    proxy.blackhole();
    let t0 = tokio::time::Instant::now();
    let r = bounded(
        "join_timeout while blackholed",
        member.join_timeout(Duration::from_millis(1500)),
    )
    .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "returned early"
    );
    assert!(!member.is_joined());
    proxy.heal();
    wait_state(&c, State::Connected).await;
    // the cut-off create may still be in the proxy's buffer of a connection that outlived the
    // blackhole; a round trip on the same session puts it behind us (the server answers a
    // session's requests in order) before we look
    c.sync(&p).await.unwrap();
    // whatever the cut-off create did, nothing stays
    common::wait_no_child_with_prefix(&direct, &p, "").await;
    assert_eq!(member.len().await.unwrap(), 0);
    // and a later join works
    member.join().await.unwrap();
    assert_eq!(member.members().await.unwrap(), ["late"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn party_join_dropped_at_every_await_point_leaves_no_node() {
    let c = shared_client().await;
    let p = unique("party-cancel");
    c.ensure_path(&p).await.unwrap();
    let mut i = 0;
    loop {
        let member = Party::new(&c, &p, format!("m{i}"));
        let mut fut = Box::pin(member.join());
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
            // completed: a member now; leaving removes it
            assert!(member.leave().await.unwrap());
            break;
        }
        drop(member);
        common::wait_no_child_with_prefix(&c, &p, "").await;
        i += 1;
        assert!(i < 10_000, "join never completed");
    }
    eprintln!("join completed after {i} drops at successive await points");
    assert!(i > 0, "the join never was dropped half-way");
    assert!(children(&c, &p).await.is_empty());
}
