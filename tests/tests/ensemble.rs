//! A 3-node ensemble: failover with the same session and its watches; read-only mode.

mod common;

use common::{bounded, wait_state};
use futures::StreamExt;
use std::time::Duration;
use zk_core::{AddWatchMode, Client, CreateMode, Error, EventType, KeeperState, State};
use zk_testkit::Ensemble;

fn member_of(ens: &Ensemble, server: &str) -> usize {
    (0..ens.len())
        .find(|&i| ens.member(i).connect_string() == server)
        .unwrap_or_else(|| panic!("{server} is not a member"))
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_keeps_the_session_and_its_watches() {
    common::init_tracing();
    let ens = Ensemble::start(3).unwrap();
    let c = Client::builder(ens.connect_string())
        .session_timeout(Duration::from_secs(15))
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    c.create("/f", b"", CreateMode::Persistent).await.unwrap();
    c.create("/f/eph", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, _, data_w) = c.get_data_watch("/f").await.unwrap();
    let mut pers = c
        .add_watch("/f", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    let first = c.status().server.unwrap();
    let victim = member_of(&ens, &first);
    let was_leader = ens.leader() == Some(victim);
    ens.kill(victim).unwrap();
    wait_state(&c, State::Suspended, Duration::from_secs(15)).await;
    wait_state(&c, State::Connected, Duration::from_secs(30)).await;
    let st = c.status();
    assert_eq!(st.session_id, sid, "failover changed the session");
    assert_ne!(st.server.as_deref(), Some(first.as_str()));
    eprintln!(
        "killed member {victim} (leader: {was_leader}); now on {:?}",
        st.server
    );

    assert!(c.exists("/f/eph").await.unwrap().is_some());
    let other = Client::connect(&ens.connect_string()).await.unwrap();
    other.set_data("/f", b"after", None).await.unwrap();
    assert_eq!(
        bounded("data", data_w).await.unwrap().event_type,
        EventType::NodeDataChanged
    );
    let e = bounded("recursive", pers.next()).await.unwrap().unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDataChanged, "/f")
    );
    other
        .create("/f/new", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let e = bounded("recursive", pers.next()).await.unwrap().unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeCreated, "/f/new")
    );

    // bring it back; the session lives on
    ens.restart(victim).unwrap();
    assert_eq!(c.session_id(), sid);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_member_serves_reads_until_quorum_returns() {
    common::init_tracing();
    let ens = Ensemble::builder()
        .size(3)
        .read_only_mode(true)
        .tick_time(500)
        .start()
        .unwrap();
    {
        let c = Client::connect(&ens.connect_string()).await.unwrap();
        c.create("/ro", b"data", CreateMode::Persistent)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    ens.kill(1).unwrap();
    ens.kill(2).unwrap();
    ens.wait_for_mode(0, "read-only", Duration::from_secs(30))
        .unwrap();

    // a client that accepts read-only servers connects to the survivor
    let c = Client::builder(ens.connect_string())
        .read_only(true)
        .session_timeout(Duration::from_secs(6))
        .connect_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    let st = c.status();
    assert_eq!(st.keeper_state, KeeperState::ConnectedReadOnly);
    assert!(st.is_read_only());
    assert_eq!(c.get_data("/ro").await.unwrap().0, b"data");
    assert!(matches!(
        c.create("/nope", b"", CreateMode::Persistent).await,
        Err(Error::NotReadOnly)
    ));
    // a client that does not accept read-only servers cannot connect
    let strict = Client::builder(ens.connect_string())
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert!(strict.is_err());

    // quorum returns: the client ends up on a read-write server and can write
    let mut states = c.state_stream();
    ens.restart(1).unwrap();
    ens.restart(2).unwrap();
    ens.wait_for_quorum(Duration::from_secs(30)).unwrap();
    loop {
        let s = bounded("read-write", states.next()).await.unwrap();
        if s.state == State::Connected && s.keeper_state == KeeperState::SyncConnected {
            break;
        }
    }
    c.create("/now-writable", b"", CreateMode::Persistent)
        .await
        .unwrap();
}
