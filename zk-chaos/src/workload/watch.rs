//! A writer and watchers (persistent recursive, persistent, one-shot re-armed). See
//! [`crate::checker::watch`].

use super::{Ctx, ROOT};
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;
use zk_core::{AddWatchMode, Client, CreateMode, Error};
use zk_recipes::watchers::{ChildrenWatch, DataWatch};

fn dir() -> String {
    format!("{ROOT}/watch")
}

fn data_path() -> String {
    format!("{ROOT}/watch/data")
}

/// Creates the watched nodes (harness).
pub async fn setup(zk: &Client) -> zk_core::Result<()> {
    zk.ensure_path(&dir()).await?;
    match zk
        .create(&data_path(), b"start", CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads the data and the created children after the heal (harness): their number and
/// their indices (so the checker can tell a lost acknowledged create from a stale read).
pub async fn finish(zk: &Client) -> zk_core::Result<Value> {
    zk.sync(&data_path()).await?;
    let (d, _) = zk.get_data(&data_path()).await?;
    let children = zk.get_children(&dir()).await?;
    let mut indices: Vec<i64> = children
        .iter()
        .filter_map(|c| c.strip_prefix("e-")?.parse().ok())
        .collect();
    indices.sort_unstable();
    Ok(json!({
        "data": String::from_utf8_lossy(&d),
        "children": children_count(&children),
        "indices": indices,
    }))
}

/// How many `e-*` children a listing holds.
fn children_count(children: &[String]) -> usize {
    children.iter().filter(|c| c.starts_with("e-")).count()
}

/// Records every item of a DataWatch / ChildrenWatch stream until the end.
async fn snapshots<S, T>(ctx: &Ctx, mut w: S, mode: &str, show: impl Fn(&T) -> Value)
where
    S: futures::Stream<Item = zk_core::Result<T>> + Unpin,
{
    loop {
        match tokio::time::timeout_at(ctx.phases.end, w.next()).await {
            Ok(Some(Ok(item))) => {
                let mut args = show(&item);
                args["mode"] = json!(mode);
                ctx.info("snapshot", args);
            }
            Ok(Some(Err(e))) => {
                ctx.info("watch-ended", json!({"mode": mode, "error": e.to_string()}));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(None) => {
                ctx.info(
                    "watch-ended",
                    json!({"mode": mode, "error": "stream ended"}),
                );
                return;
            }
            Err(_) => return,
        }
    }
}

/// The role of the watch client with this index.
pub fn role(index: usize) -> &'static str {
    match index {
        0 => "writer",
        i => match (i - 1) % 5 {
            0 => "recursive",
            1 => "persistent",
            2 => "oneshot",
            3 => "datawatch",
            _ => "childrenwatch",
        },
    }
}

/// One watch client.
pub async fn run(mut ctx: Ctx) {
    match role(ctx.index) {
        "writer" => writer(&mut ctx).await,
        "recursive" => {
            persistent(&ctx, &dir(), AddWatchMode::PersistentRecursive, "recursive").await
        }
        "persistent" => {
            persistent(&ctx, &data_path(), AddWatchMode::Persistent, "persistent").await
        }
        "oneshot" => oneshot(&ctx).await,
        "datawatch" => {
            let w = DataWatch::new(&ctx.zk, &data_path());
            snapshots(&ctx, w, "datawatch", |s| match s {
                Some((d, stat)) => {
                    json!({"value": String::from_utf8_lossy(d), "version": stat.version})
                }
                None => json!({ "value": null }),
            })
            .await
        }
        _ => {
            let w = ChildrenWatch::new(&ctx.zk, &dir());
            snapshots(
                &ctx,
                w,
                "childrenwatch",
                // the newest child too: a snapshot that lost its newest child (a stale read)
                // and one that lost an older one (a lost write) look alike by count alone
                |s| {
                    json!({
                        "count": s.as_ref().map(|c| children_count(c)),
                        "last": s.as_ref().and_then(|c| c.iter().filter(|c| c.starts_with("e-")).max()),
                    })
                },
            )
            .await
        }
    }
    ctx.close().await;
}

async fn writer(ctx: &mut Ctx) {
    let mut i = 0i64;
    while Instant::now() < ctx.phases.quiesce {
        let child = format!("{}/e-{i:06}", dir());
        let _ = ctx
            .call(
                "create",
                json!({ "child": i }),
                ctx.zk.create(&child, b"", CreateMode::Persistent),
                |_| Value::Null,
            )
            .await;
        let v = i.to_string();
        let _ = ctx
            .call(
                "set",
                json!({ "value": v }),
                ctx.zk.set_data(&data_path(), v.as_bytes(), None),
                |_| Value::Null,
            )
            .await;
        i += 1;
        ctx.pause(150).await;
    }
}

async fn persistent(ctx: &Ctx, path: &str, mode: AddWatchMode, name: &str) {
    let mut pokes = 0u64;
    while ctx.running() {
        let w = ctx
            .call(
                "add-watch",
                json!({ "path": path, "mode": name }),
                ctx.zk.add_watch(path, mode),
                |_| Value::Null,
            )
            .await;
        let Ok(mut w) = w else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        loop {
            let next = tokio::time::timeout_at(ctx.phases.end, w.next()).await;
            match next {
                Ok(Some(Ok(ev))) => {
                    ctx.info(
                        "event",
                        json!({"mode": name, "type": format!("{:?}", ev.event_type), "path": ev.path}),
                    );
                    // now and then the same session also sets one-shot watches on paths its
                    // persistent watch covers (ZOOKEEPER-4466: on 3.8 a one-shot firing on a
                    // path can remove a persistent watch of the same connection on it; the
                    // client must not let that happen)
                    let next = ev
                        .path
                        .rsplit('/')
                        .next()
                        .and_then(|n| n.strip_prefix("e-"))
                        .and_then(|i| i.parse::<i64>().ok());
                    match (mode, next) {
                        (AddWatchMode::PersistentRecursive, Some(i)) if i % 3 == 0 => {
                            let p = format!("{}/e-{:06}", dir(), i + 1);
                            let _ = ctx
                                .call(
                                    "poke",
                                    json!({ "path": p }),
                                    ctx.zk.exists_watch(&p),
                                    |_| Value::Null,
                                )
                                .await;
                            let p = dir();
                            let _ = ctx
                                .call(
                                    "poke",
                                    json!({ "path": p, "children": true }),
                                    ctx.zk.get_children_watch(&p),
                                    |_| Value::Null,
                                )
                                .await;
                        }
                        (AddWatchMode::Persistent, _) if pokes.is_multiple_of(3) => {
                            let _ = ctx
                                .call(
                                    "poke",
                                    json!({ "path": path }),
                                    ctx.zk.get_data_watch(path),
                                    |_| Value::Null,
                                )
                                .await;
                        }
                        _ => {}
                    }
                    pokes += 1;
                }
                Ok(Some(Err(e))) => {
                    ctx.info("watch-ended", json!({"mode": name, "error": e.to_string()}));
                    break;
                }
                Ok(None) => {
                    ctx.info(
                        "watch-ended",
                        json!({"mode": name, "error": "stream ended"}),
                    );
                    break;
                }
                Err(_) => break,
            }
        }
    }
    ctx.info("watcher-done", json!({ "mode": name }));
}

async fn oneshot(ctx: &Ctx) {
    while ctx.running() {
        let r = ctx
            .call(
                "observe",
                json!({}),
                ctx.zk.get_data_watch(&data_path()),
                |(d, s, _)| json!({"value": String::from_utf8_lossy(d), "version": s.version}),
            )
            .await;
        let Ok((_, _, watcher)) = r else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        match tokio::time::timeout_at(ctx.phases.end, watcher).await {
            Ok(Ok(ev)) => ctx.info(
                "event",
                json!({"mode": "oneshot", "type": format!("{:?}", ev.event_type), "path": ev.path}),
            ),
            Ok(Err(e)) => ctx.info(
                "watch-ended",
                json!({"mode": "oneshot", "error": e.to_string()}),
            ),
            Err(_) => return,
        }
    }
}
