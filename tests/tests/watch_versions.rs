//! ZooKeeper 3.9's watcher types (`WatcherType::Persistent` 4, `PersistentRecursive` 5,
//! ZOOKEEPER-4472) and the declared server version (`ClientBuilder::server_version`), against
//! the real 3.8 server here: the 3.8 default refuses the 3.9 types before sending, what a 3.8
//! server does with them when a client wrongly declares 3.9, `check_watches` (opcode 17), and
//! the 3.8 behaviour of one-shot and persistent watches on one path left as it was. The 3.9
//! paths themselves are unit-tested at the wire level in zk-core (`watch.rs`: `v39_*`).

mod common;

use common::{bounded, chroot_client, init_tracing, shared, unique_root};
use futures::StreamExt;
use zk_core::{
    AddWatchMode, Client, CreateMode, Error, EventType, ServerVersion, WatchedEvent, WatcherType,
};

async fn next_event(s: &mut zk_core::PersistentWatcher) -> WatchedEvent {
    bounded("a persistent watch event", s.next())
        .await
        .expect("stream ended")
        .expect("stream failed")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_3_8_default_refuses_the_3_9_watcher_types_before_sending() {
    let c = shared("v38-refuses").await;
    c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    let mut s = c.add_watch("/p", AddWatchMode::Persistent).await.unwrap();
    for kind in [WatcherType::Persistent, WatcherType::PersistentRecursive] {
        for (op, r) in [
            ("remove_watches", c.remove_watches("/p", kind).await),
            ("check_watches", c.check_watches("/p", kind).await),
        ] {
            // a 3.8 server would have answered MarshallingError (see below): this is the
            // client's own refusal, naming the version it was set for
            match r {
                Err(Error::InvalidArgument(m)) => assert!(
                    m.contains("3.9") && m.contains("version 3.8") && m.contains(op),
                    "{op}({kind:?}): {m}"
                ),
                r => panic!("{op}({kind:?}) on the 3.8 default: {r:?}"),
            }
        }
    }
    // nothing happened to the watch
    c.set_data("/p", b"1", None).await.unwrap();
    assert_eq!(
        next_event(&mut s).await,
        WatchedEvent::new(EventType::NodeDataChanged, "/p")
    );
    c.close().await.unwrap();
}

/// Fact: ZooKeeper 3.8.0's `Watcher.WatcherType.fromInt` throws ("Invalid integer value for
/// conversion to WatcherType") for 4 and 5, and FinalRequestProcessor answers any such
/// exception with MARSHALLINGERROR (-5) and logs "Failed to process": the connection and the
/// session stay, the watches too.
#[tokio::test(flavor = "multi_thread")]
async fn a_3_8_server_answers_the_3_9_watcher_types_with_marshalling_error() {
    init_tracing();
    let server = zk_testkit::shared_server();
    let root = unique_root("v39-on-38");
    chroot_client(&server.connect_string(), &root)
        .await
        .close()
        .await
        .unwrap();
    // wrongly declared: the servers here run 3.8
    let c = Client::builder(format!("{}{root}", server.connect_string()))
        .server_version(ServerVersion::V3_9)
        .connect()
        .await
        .unwrap();
    c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    let mut s = c.add_watch("/p", AddWatchMode::Persistent).await.unwrap();
    let mut r = c
        .add_watch("/p", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let session = c.session_id();
    for kind in [WatcherType::Persistent, WatcherType::PersistentRecursive] {
        let got = c.check_watches("/p", kind).await;
        assert!(
            matches!(got, Err(Error::MarshallingError)),
            "check_watches({kind:?}): {got:?}"
        );
        let got = c.remove_watches("/p", kind).await;
        assert!(
            matches!(got, Err(Error::MarshallingError)),
            "remove_watches({kind:?}): {got:?}"
        );
    }
    assert_eq!(c.state(), zk_core::State::Connected);
    assert_eq!(c.session_id(), session);
    // both streams still there (the client removed nothing on an error)
    c.set_data("/p", b"1", None).await.unwrap();
    let changed = WatchedEvent::new(EventType::NodeDataChanged, "/p");
    assert_eq!(next_event(&mut s).await, changed);
    assert_eq!(next_event(&mut r).await, changed);
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn check_watches_finds_what_the_server_holds() {
    let c = shared("check-watches").await;
    c.create("/n", b"", CreateMode::Persistent).await.unwrap();
    let no = |r: zk_core::Result<()>, what: &str| {
        assert!(matches!(r, Err(Error::NoWatcher)), "{what}: {r:?}");
    };
    no(c.check_watches("/n", WatcherType::Any).await, "none yet");
    let (_, _, w) = c.get_data_watch("/n").await.unwrap();
    c.check_watches("/n", WatcherType::Data).await.unwrap();
    c.check_watches("/n", WatcherType::Any).await.unwrap();
    no(
        c.check_watches("/n", WatcherType::Children).await,
        "children next to a data watch",
    );
    let (_, cw) = c.get_children_watch("/n").await.unwrap();
    c.check_watches("/n", WatcherType::Children).await.unwrap();
    // an exists watch on a missing node is a data watch too
    let (st, ew) = c.exists_watch("/missing").await.unwrap();
    assert!(st.is_none());
    c.check_watches("/missing", WatcherType::Data)
        .await
        .unwrap();
    // fired: gone
    c.set_data("/n", b"1", None).await.unwrap();
    bounded("data watch", w).await.unwrap();
    no(
        c.check_watches("/n", WatcherType::Data).await,
        "a fired data watch",
    );
    c.check_watches("/n", WatcherType::Children).await.unwrap();
    c.create("/n/k", b"", CreateMode::Persistent).await.unwrap();
    bounded("child watch", cw).await.unwrap();
    no(c.check_watches("/n", WatcherType::Any).await, "all fired");
    // a persistent watch sits in both of a 3.8 server's tables
    let _p = c.add_watch("/n", AddWatchMode::Persistent).await.unwrap();
    c.check_watches("/n", WatcherType::Data).await.unwrap();
    c.check_watches("/n", WatcherType::Children).await.unwrap();
    // checking changes nothing
    c.create("/missing", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        bounded("exists watch", ew).await.unwrap(),
        WatchedEvent::new(EventType::NodeCreated, "/missing")
    );
    // bad paths are checked before sending
    assert!(matches!(
        c.check_watches("no-slash", WatcherType::Any).await,
        Err(Error::BadPath(_))
    ));
    c.close().await.unwrap();
}

/// With the default (3.8) declaration, one-shot and persistent watches on one path behave as
/// before: the one-shot read is completed from the persistent watch, a removal that would
/// half-remove the persistent watch is refused, `Any` removes both.
#[tokio::test(flavor = "multi_thread")]
async fn the_3_8_default_keeps_one_shots_and_persistent_watches_on_one_path_as_before() {
    let c = shared("v38-unchanged").await;
    c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    let mut s = c.add_watch("/p", AddWatchMode::Persistent).await.unwrap();
    let (_, _, w) = c.get_data_watch("/p").await.unwrap();
    // the one-shot read left no standard watch on the server: the persistent one is intact
    // and answers for both tables
    c.check_watches("/p", WatcherType::Children).await.unwrap();
    for kind in [WatcherType::Data, WatcherType::Children] {
        assert!(
            matches!(
                c.remove_watches("/p", kind).await,
                Err(Error::InvalidArgument(_))
            ),
            "{kind:?}"
        );
    }
    c.create("/p/c", b"", CreateMode::Persistent).await.unwrap();
    c.set_data("/p", b"1", None).await.unwrap();
    assert_eq!(
        next_event(&mut s).await,
        WatchedEvent::new(EventType::NodeChildrenChanged, "/p")
    );
    assert_eq!(
        next_event(&mut s).await,
        WatchedEvent::new(EventType::NodeDataChanged, "/p")
    );
    assert_eq!(
        bounded("one-shot", w).await.unwrap(),
        WatchedEvent::new(EventType::NodeDataChanged, "/p")
    );
    c.remove_watches("/p", WatcherType::Any).await.unwrap();
    assert_eq!(
        next_event(&mut s).await,
        WatchedEvent::new(EventType::PersistentWatchRemoved, "/p")
    );
    assert!(bounded("end of stream", s.next()).await.is_none());
    assert!(matches!(
        c.check_watches("/p", WatcherType::Any).await,
        Err(Error::NoWatcher)
    ));
    c.close().await.unwrap();
}
