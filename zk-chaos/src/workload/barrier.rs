//! Barrier (one coordinator raises and removes it, the others wait) and double barrier (every
//! client enters and leaves rounds of `n`). See [`crate::checker::barrier`].

use super::{Ctx, ROOT};
use serde_json::{json, Value};
use std::time::Duration;
use zk_recipes::barrier::{Barrier, DoubleBarrier};

fn barrier_path() -> String {
    format!("{ROOT}/barrier")
}

/// One barrier client: index 0 coordinates, the others wait.
pub async fn run_barrier(mut ctx: Ctx) {
    let b = Barrier::new(&ctx.zk, &barrier_path());
    while ctx.running() {
        if ctx.index == 0 {
            let _ = ctx
                .call("create", json!({}), b.create(), |_| Value::Null)
                .await;
            ctx.pause(800).await;
            let _ = ctx
                .call(
                    "remove",
                    json!({}),
                    b.remove(),
                    |r: &bool| json!({ "removed": r }),
                )
                .await;
            ctx.pause(400).await;
        } else {
            // sync first: reads may be served stale by a follower (sequential consistency),
            // and a stale "no barrier" is allowed by ZooKeeper's model; after a sync the
            // server has caught up with the leader as of the sync, so a pass means the
            // barrier was absent at some moment of this operation
            let wait = async {
                ctx.zk.sync(&barrier_path()).await?;
                Ok(b.wait_timeout(Duration::from_secs(3)).await?.is_some())
            };
            let _ = ctx
                .call("wait", json!({}), wait, |r: &bool| json!({ "passed": r }))
                .await;
            ctx.pause(100).await;
        }
    }
    ctx.close().await;
}

/// One double-barrier client: rounds of `n` (all the workload's clients).
pub async fn run_double(mut ctx: Ctx, n: usize) {
    let mut round = 0u64;
    while ctx.running() {
        let path = format!("{ROOT}/dbarrier/r{round}");
        let mut b = match DoubleBarrier::new(&ctx.zk, &path, n, format!("c{}", ctx.id)) {
            Ok(b) => b,
            Err(_) => return ctx.close().await,
        };
        let entered = ctx
            .call(
                "enter",
                json!({ "round": round, "n": n }),
                async { Ok(b.enter_timeout(Duration::from_secs(5)).await?.is_some()) },
                |r: &bool| json!({ "passed": r }),
            )
            .await;
        if let Ok(true) = entered {
            ctx.pause(200).await;
            let _ = ctx
                .call(
                    "leave",
                    json!({ "round": round, "n": n }),
                    async { Ok(b.leave_timeout(Duration::from_secs(5)).await?.is_some()) },
                    |r: &bool| json!({ "left": r }),
                )
                .await;
        }
        round += 1;
    }
    ctx.close().await;
}
