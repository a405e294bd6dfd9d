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
        c.sync("/").await.unwrap();
        let (cfg, _) = c.get_config().await.unwrap();
        if server_lines(cfg.text()) == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "config never listed members {ids:?}; last: {:?}",
            cfg.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_config_lists_the_members_the_testkit_started_and_reconfig_changes_them() {
    let ens = reconfig_ensemble().await;
    // a chrooted client reads the same config node: it is never under the chroot
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
