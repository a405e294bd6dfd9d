//! A service mirrors its configuration subtree with a `TreeCache` and prints every change; an
//! operator edits the tree meanwhile. When running on the local server the example starts, the
//! service reaches it through a fault proxy and is cut off for a moment while the operator
//! keeps editing: the edits made meanwhile are not lost (the cache re-syncs on reconnect), and
//! the mirror ends equal to the server.
//!
//! `cargo run -p zk-examples --example tree_cache [-- --hosts H]`

use futures::StreamExt;
use std::time::Duration;
use zk_core::{Client, CreateMode, State};
use zk_examples::{hosts, Timeline};
use zk_recipes::{TreeCache, TreeCacheEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Timeline::start();
    let (hosts, server) = hosts().await?;
    let root = format!("/example-tree-cache-{}", std::process::id());

    let operator = Client::connect(&hosts).await?;
    operator
        .create(&root, b"v1", CreateMode::Persistent)
        .await?;
    for (p, d) in [
        ("db", "postgres://db1"),
        ("features", ""),
        ("features/beta", "on"),
    ] {
        operator
            .create(&format!("{root}/{p}"), d.as_bytes(), CreateMode::Persistent)
            .await?;
    }

    // the service: through a fault proxy when the server is ours
    let proxy = match &server {
        Some(s) => Some(zk_testkit::FaultProxy::start(s.addr()).await?),
        None => None,
    };
    let via = proxy.as_ref().map_or(hosts.clone(), |p| p.connect_string());
    let service = Client::connect(&via).await?;
    let cache = TreeCache::new(&service, &root);
    let mut events = cache.events();
    let printer = tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            let line = match ev {
                TreeCacheEvent::NodeAdded { path, node } => {
                    format!("+ {path} = {:?}", String::from_utf8_lossy(node.data()))
                }
                TreeCacheEvent::NodeUpdated { path, node } => format!(
                    "~ {path} = {:?} (version {})",
                    String::from_utf8_lossy(node.data()),
                    node.stat().version
                ),
                TreeCacheEvent::NodeRemoved { path, .. } => format!("- {path}"),
                other => format!("{other:?}"),
            };
            t.say(format!("service sees: {line}"));
        }
    });
    cache
        .wait_initialized_timeout(Duration::from_secs(30))
        .await?;
    t.say(format!(
        "mirror ready: {} nodes, children of the root {:?}",
        cache.len(),
        cache.children(&root).unwrap_or_default()
    ));

    t.say("operator: switches the database, adds a feature flag");
    operator
        .set_data(&format!("{root}/db"), b"postgres://db2", None)
        .await?;
    operator
        .create(
            &format!("{root}/features/dark-mode"),
            b"off",
            CreateMode::Persistent,
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    if let Some(proxy) = &proxy {
        t.say("the service is cut off; the operator keeps editing");
        proxy.reject_new(true);
        proxy.reset();
        service
            .wait_for_state(State::Suspended, Some(Duration::from_secs(30)))
            .await?;
        operator
            .delete(&format!("{root}/features/beta"), None)
            .await?;
        operator
            .set_data(&format!("{root}/features/dark-mode"), b"on", None)
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        t.say("the service is back");
        proxy.reject_new(false);
        service
            .wait_for_state(State::Connected, Some(Duration::from_secs(30)))
            .await?;
    }

    // wait until the mirror has caught up with the operator's last edit
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while cache
        .get(&format!("{root}/features/dark-mode"))
        .map(|n| n.data().to_vec())
        != Some(if proxy.is_some() {
            b"on".to_vec()
        } else {
            b"off".to_vec()
        })
        || !cache.is_synced()
    {
        if tokio::time::Instant::now() > end {
            return Err("the mirror did not catch up within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (path, node) in cache.snapshot() {
        let (data, stat) = operator.get_data(&path).await?;
        assert_eq!((node.data(), node.stat().mzxid), (&data[..], stat.mzxid));
    }
    t.say(format!(
        "mirror equals the server: {} nodes; {:?}",
        cache.len(),
        cache.stats()
    ));

    cache.close().await;
    let _ = printer.await;
    operator.delete_recursive(&root).await?;
    service.close().await?;
    operator.close().await?;
    Ok(())
}
