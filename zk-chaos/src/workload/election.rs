//! Candidates campaign, lead for a few fenced writes, resign. See [`crate::checker::election`].

use super::{Ctx, ROOT};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, Op, OpResult, State};
use zk_recipes::{Election, Guard};

fn log_path() -> String {
    format!("{ROOT}/election/log")
}

/// Creates the log node (harness).
pub async fn setup(zk: &Client) -> zk_core::Result<()> {
    zk.ensure_path(&format!("{ROOT}/election")).await?;
    match zk.create(&log_path(), b"", CreateMode::Persistent).await {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One candidate.
pub async fn run(mut ctx: Ctx) {
    let dir = format!("{ROOT}/election/leader");
    let election = Election::new(&ctx.zk, &dir, format!("c{}", ctx.id));
    while ctx.running() {
        let got = ctx
            .call(
                "campaign",
                json!({}),
                election.acquire_timeout(Duration::from_secs(5)),
                |g: &Option<Guard>| json!({ "guard": g.as_ref().map(|g| g.path().to_owned()) }),
            )
            .await;
        let Ok(Some(guard)) = got else {
            if matches!(got, Ok(None)) && ctx.zk.state() == State::Connected {
                // the campaign waited in vain: record the candidates' nodes (after a sync), so
                // that a node the server listed after acknowledging its delete (a resign) can
                // be named as what blocked the election
                let list = async {
                    ctx.zk.sync(&dir).await?;
                    ctx.zk.get_children(&dir).await
                };
                let _ = ctx
                    .call("list", json!({}), list, |c| json!({ "children": c }))
                    .await;
            }
            ctx.pause(100).await;
            continue;
        };
        let g = guard.path().to_owned();
        for _ in 0..ctx.rng.gen_range(2..6) {
            let set = Op::set_data(log_path(), g.clone().into_bytes(), None);
            let r = ctx
                .call(
                    "fenced-write",
                    json!({ "guard": g }),
                    super::fenced(guard.fenced_multi(vec![set])),
                    |res: &Vec<OpResult>| match res.first() {
                        Some(OpResult::SetData { stat }) => json!({ "version": stat.version }),
                        _ => Value::Null,
                    },
                )
                .await;
            if r.is_err() {
                break;
            }
            ctx.pause(60).await;
        }
        let _ = ctx
            .call(
                "resign",
                json!({ "guard": g, "held": guard.is_held() }),
                guard.release(),
                |_| Value::Null,
            )
            .await;
        ctx.pause(50).await;
    }
    ctx.close().await;
}
