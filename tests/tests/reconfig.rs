//! Dynamic ensembles: `get_config` and `reconfig` against a real reconfig-enabled ensemble.

mod common;

use common::bounded;
use std::time::Duration;
use zk_core::{Client, EventType, ReconfigOptions, ServerRole};
use zk_testkit::{Ensemble, SUPER_USER};

const SUPER_PASSWORD: &str = "super-secret";

async fn reconfig_ensemble() -> Ensemble {
    common::init_tracing();
    Ensemble::builder()
        .size(3)
        .reconfig_enabled(true)
        .super_user(SUPER_PASSWORD)
        .start_async()
        .await
        .unwrap()
}

async fn superuser(connect_string: &str) -> Client {
    Client::builder(connect_string)
        .session_timeout(Duration::from_secs(15))
        .auth("digest", format!("{SUPER_USER}:{SUPER_PASSWORD}"))
        .connect()
        .await
        .unwrap()
}

/// The `server.N=...` lines of the config, sorted.
fn server_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("server."))
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

fn expected_lines(ens: &Ensemble, ids: &[usize]) -> Vec<String> {
    ids.iter()
        .map(|&i| format!("server.{}={}", i + 1, ens.server_spec(i)))
        .collect()
}

/// Waits (bounded) until a fresh read of the config lists exactly the members `ids`.
async fn wait_config(c: &Client, ens: &Ensemble, ids: &[usize]) {
    let want = expected_lines(ens, ids);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        // a removed leader makes the others elect a new one: connections break meanwhile
        let read = match c.sync("/").await {
            Ok(()) => c.get_config().await.map(|(cfg, _)| cfg.text().to_owned()),
            Err(e) => Err(e),
        };
        match &read {
            Ok(text) if server_lines(text) == want => return,
            Ok(_) => {}
            Err(e) if e.is_retryable() => {}
            Err(e) => panic!("reading the config: {e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "config never listed members {ids:?}; last read: {read:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_config_lists_the_members_the_testkit_started_and_reconfig_changes_them() {
    let ens = reconfig_ensemble().await;
    // the member to remove is a follower (removing the leader makes the others elect a new
    // one, dropping every client), and the clients are on the others: a removed member drops
    // its clients
    let leader = ens.leader_async().await.expect("a leader");
    let gone = (leader + 1) % 3;
    let kept: Vec<usize> = (0..3).filter(|&i| i != gone).collect();
    let stay = format!(
        "{},{}",
        ens.member(kept[0]).connect_string(),
        ens.member(kept[1]).connect_string()
    );
    let admin = superuser(&stay).await;
    admin.ensure_path("/app").await.unwrap();
    // a chrooted client reads the same config node: it is never under the chroot
    let c = superuser(&format!("{stay}/app")).await;

    let (cfg, stat) = c.get_config().await.unwrap();
    assert_eq!(server_lines(cfg.text()), expected_lines(&ens, &[0, 1, 2]));
    assert_eq!(cfg.servers().len(), 3);
    for (i, s) in cfg.servers().iter().enumerate() {
        assert_eq!(s.id, i as u64 + 1);
        assert_eq!(s.role, ServerRole::Participant);
        assert_eq!(
            s.client.as_ref().unwrap().to_string(),
            ens.member(i).connect_string()
        );
    }
    assert!(cfg.version() > 0, "no version line in {:?}", cfg.text());
    assert_eq!(stat.data_length as usize, cfg.text().len());

    // incremental: remove a member; the watch of the
    // chrooted client fires with the config node's path
    let (_, _, watch) = c.get_config_watch().await.unwrap();
    let v0 = cfg.version();
    let (after, _) = c
        .reconfig(
            &ReconfigOptions::incremental()
                .leaving(gone as u64 + 1)
                .from_config_version(v0),
        )
        .await
        .unwrap();
    assert_eq!(server_lines(after.text()), expected_lines(&ens, &kept));
    assert!(after.version() > v0);
    let ev = bounded("config watch", watch).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/zookeeper/config")
    );

    // a stale from_config_version: BadVersion, nothing changed
    let stale = c
        .reconfig(
            &ReconfigOptions::incremental()
                .joining(format!("server.{}={}", gone + 1, ens.server_spec(gone)))
                .from_config_version(v0),
        )
        .await;
    assert!(
        matches!(stale, Err(zk_core::Error::BadVersion)),
        "a reconfig from the old version: {stale:?}"
    );

    // and back: the member joins again (it still runs)
    let c2 = superuser(&stay).await;
    let (back, _) = c2
        .reconfig(
            &ReconfigOptions::incremental()
                .joining(format!("server.{}={}", gone + 1, ens.server_spec(gone)))
                .from_config_version(after.version()),
        )
        .await
        .unwrap();
    assert_eq!(server_lines(back.text()), expected_lines(&ens, &[0, 1, 2]));
    wait_config(&c, &ens, &[0, 1, 2]).await;

    // non-incremental: the whole membership named, without that member
    let members: Vec<String> = expected_lines(&ens, &kept);
    let (non_inc, _) = c2
        .reconfig(&ReconfigOptions::new_members(members.clone()))
        .await
        .unwrap();
    assert_eq!(server_lines(non_inc.text()), members);
    // and all three again
    let (all, _) = c2
        .reconfig(&ReconfigOptions::new_members(expected_lines(
            &ens,
            &[0, 1, 2],
        )))
        .await
        .unwrap();
    assert_eq!(server_lines(all.text()), expected_lines(&ens, &[0, 1, 2]));
    wait_config(&c, &ens, &[0, 1, 2]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reconfig_without_the_superuser_is_no_auth() {
    let ens = reconfig_ensemble().await;
    let c = Client::connect(&ens.connect_string()).await.unwrap();
    let r = c.reconfig(&ReconfigOptions::incremental().leaving(3)).await;
    assert!(matches!(r, Err(zk_core::Error::NoAuth)), "{r:?}");
    // and nothing changed
    let (cfg, _) = c.get_config().await.unwrap();
    assert_eq!(server_lines(cfg.text()), expected_lines(&ens, &[0, 1, 2]));
}

#[tokio::test(flavor = "multi_thread")]
async fn reconfig_on_a_default_server_is_reconfig_disabled() {
    let c = common::shared("reconfig-disabled").await;
    let r = c.reconfig(&ReconfigOptions::incremental().leaving(3)).await;
    assert!(matches!(r, Err(zk_core::Error::ReconfigDisabled)), "{r:?}");
    // a standalone server's config node is there (under no chroot), listing no member
    let (cfg, _) = c.get_config().await.unwrap();
    assert!(cfg.servers().is_empty(), "{:?}", cfg.text());
}

/// Waits (bounded) until `cond` holds for `c`, naming `what` on failure.
async fn wait_until(c: &Client, what: &str, cond: impl Fn(&Client) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cond(c) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 60 s; status {:?}, server list {:?}",
            c.status(),
            c.server_list()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn listed(c: &Client, server: &str) -> bool {
    c.server_list().iter().any(|h| h.to_string() == server)
}

fn on(c: &Client) -> Option<String> {
    let s = c.status();
    (s.state == zk_core::State::Connected)
        .then_some(s.server)
        .flatten()
}

#[tokio::test(flavor = "multi_thread")]
async fn ensemble_tracker_moves_the_client_off_a_removed_member_with_its_session() {
    let ens = reconfig_ensemble().await;
    // the client knows one member; the tracker teaches it the rest (and, the list growing from
    // 1 to 3, it moves with probability 2/3 to a member it learned: the rebalancing rule)
    let c = Client::builder(ens.member(0).connect_string())
        .session_timeout(Duration::from_secs(15))
        .ensemble_tracker(true)
        .connect()
        .await
        .unwrap();
    wait_until(&c, "the tracker learned the 3 members", |c| {
        c.server_list().len() == 3 && on(c).is_some()
    })
    .await;
    let sid = c.session_id();
    // the member the client is on is removed (if it is the leader, the others elect a new one)
    let gone_addr = on(&c).unwrap();
    let gone = (0..3)
        .find(|&i| ens.member(i).connect_string() == gone_addr)
        .unwrap();
    let kept: Vec<usize> = (0..3).filter(|&i| i != gone).collect();
    let was_leader = ens.leader_async().await == Some(gone);
    let admin = superuser(&format!(
        "{},{}",
        ens.member(kept[0]).connect_string(),
        ens.member(kept[1]).connect_string()
    ))
    .await;
    match admin
        .reconfig(&ReconfigOptions::incremental().leaving(gone as u64 + 1))
        .await
    {
        Ok(_) => {}
        // removing the leader may end the admin's connection before the reply: the config
        // then tells whether it was applied
        Err(zk_core::Error::ConnectionLoss) if was_leader => {}
        Err(e) => panic!("reconfig: {e}"),
    }
    wait_config(&admin, &ens, &kept).await;
    wait_until(
        &c,
        "the client left the removed member and dropped it from its list",
        |c| !listed(c, &gone_addr) && on(c).is_some_and(|s| s != gone_addr),
    )
    .await;
    eprintln!(
        "removed member {gone} (leader: {was_leader}); the client is on {:?}",
        on(&c)
    );
    assert_eq!(c.session_id(), sid, "the move changed the session");
    assert_eq!(c.server_list().len(), 2);
    assert!(c.exists("/zookeeper").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_given_one_host_learns_the_others_and_fails_over_to_them() {
    let ens = reconfig_ensemble().await;
    let leader = ens.leader_async().await.expect("a leader");
    let victim = (leader + 1) % 3;
    let victim_addr = ens.member(victim).connect_string();
    let others: Vec<String> = (0..3)
        .filter(|&i| i != victim)
        .map(|i| ens.member(i).connect_string())
        .collect();

    // update_server_list by hand: a client on the victim given a list without it moves
    let moved = Client::builder(&victim_addr)
        .session_timeout(Duration::from_secs(15))
        .connect()
        .await
        .unwrap();
    let moved_sid = moved.session_id();
    moved.update_server_list(&others.join(",")).await.unwrap();
    wait_until(&moved, "update_server_list moved the client", |c| {
        on(c).is_some_and(|s| others.contains(&s))
    })
    .await;
    assert_eq!(moved.session_id(), moved_sid);
    assert_eq!(moved.server_list().len(), 2);
    assert!(matches!(
        moved.update_server_list("a:1/chroot").await,
        Err(zk_core::Error::InvalidArgument(_))
    ));

    let c = Client::builder(&victim_addr)
        .session_timeout(Duration::from_secs(15))
        .ensemble_tracker(true)
        .connect()
        .await
        .unwrap();
    wait_until(&c, "the tracker learned the 3 members", |c| {
        c.server_list().len() == 3
    })
    .await;
    wait_until(&c, "connected after learning", |c| on(c).is_some()).await;
    let sid = c.session_id();
    // the member the client is on dies (the list growing from 1 to 3 may already have moved
    // the client to a member it learned; either way it must now reach another one)
    let current = on(&c).unwrap();
    let dead = (0..3)
        .find(|&i| ens.member(i).connect_string() == current)
        .unwrap();
    ens.kill_async(dead).await.unwrap();
    wait_until(&c, "failover to a member learned from the config", |c| {
        on(c).is_some_and(|s| s != current)
    })
    .await;
    eprintln!(
        "given {victim_addr}, on {current} (member {dead}) when it was killed, now on {:?}",
        on(&c)
    );
    assert_eq!(c.session_id(), sid, "failover changed the session");
    assert!(c.exists("/zookeeper").await.unwrap().is_some());
}

/// A chrooted client's config watch (`get_config_watch`) lives on `/zookeeper/config` outside
/// the chroot; `check_watches` and `remove_watches` on `CONFIG_NODE` must address that node,
/// not `<chroot>/zookeeper/config`, as the watch's events do.
#[tokio::test(flavor = "multi_thread")]
async fn a_chrooted_client_checks_and_removes_its_config_watch_on_the_real_config_node() {
    use zk_core::{Error, WatcherType};
    const CONFIG_NODE: &str = "/zookeeper/config";
    let ens = reconfig_ensemble().await;
    let admin = superuser(&ens.connect_string()).await;
    admin.ensure_path("/app").await.unwrap();
    let c = superuser(&format!("{}/app", ens.connect_string())).await;
    for kind in [WatcherType::Data, WatcherType::Any] {
        let (_, _, watch) = c.get_config_watch().await.unwrap();
        let checked = c.check_watches(CONFIG_NODE, WatcherType::Data).await;
        assert!(
            checked.is_ok(),
            "check_watches on the config node: {checked:?}"
        );
        let removed = c.remove_watches(CONFIG_NODE, kind).await;
        assert!(
            removed.is_ok(),
            "remove_watches({kind:?}) on the config node: {removed:?}"
        );
        let ev = bounded("the removed config watch", watch).await.unwrap();
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::DataWatchRemoved, CONFIG_NODE)
        );
        // gone on the server too
        assert!(matches!(
            c.check_watches(CONFIG_NODE, WatcherType::Any).await,
            Err(Error::NoWatcher)
        ));
    }
    // a reconfig fires no config watch of this client any more: a new one sees only its own
    let (cfg, _, watch) = c.get_config_watch().await.unwrap();
    let leader = ens.leader_async().await.expect("a leader");
    let gone = (leader + 1) % 3;
    c.reconfig(
        &ReconfigOptions::incremental()
            .leaving(gone as u64 + 1)
            .from_config_version(cfg.version()),
    )
    .await
    .unwrap();
    let ev = bounded("config watch", watch).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, CONFIG_NODE)
    );
    c.close().await.unwrap();
    admin.close().await.unwrap();
}
