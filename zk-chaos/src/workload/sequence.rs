//! Non-idempotent sequential creates through the retry policies. See
//! [`crate::checker::sequence`].

use super::{Ctx, ROOT};
use crate::history::Outcome;
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;
use zk_core::{Client, CreateMode};
use zk_recipes::retry::{retry, ExponentialBackoffRetry, KazooRetry, RetryError};

fn dir() -> String {
    format!("{ROOT}/seq")
}

/// Creates the directory (harness).
pub async fn setup(zk: &Client) -> zk_core::Result<()> {
    zk.ensure_path(&dir()).await
}

/// Lists every item with its token after the heal (harness).
pub async fn finish(zk: &Client) -> zk_core::Result<Value> {
    zk.sync(&dir()).await?;
    let mut items = Vec::new();
    for name in zk.get_children(&dir()).await? {
        let (d, _) = zk.get_data(&format!("{}/{name}", dir())).await?;
        items.push(json!({"name": name, "token": String::from_utf8_lossy(&d)}));
    }
    Ok(json!({ "items": items }))
}

/// One sequence client.
pub async fn run(mut ctx: Ctx) {
    let kazoo = KazooRetry::new()
        .max_tries(Some(4))
        .delay(Duration::from_millis(50))
        .max_delay(Duration::from_millis(500))
        .deadline(Some(Duration::from_secs(5)))
        .idempotent(false);
    let curator =
        ExponentialBackoffRetry::new(Duration::from_millis(50), 4, Duration::from_millis(500))
            .idempotent(false);
    let prefix = format!("{}/item-", dir());
    let mut n = 0u64;
    while ctx.running() {
        n += 1;
        let token = format!("c{}-{n}", ctx.id);
        let use_kazoo = ctx.rng.gen_bool(0.5);
        let zk = ctx.zk.clone();
        let create = || zk.create(&prefix, token.as_bytes(), CreateMode::PersistentSequential);
        let fut = async {
            if use_kazoo {
                retry(&kazoo, create).await
            } else {
                retry(&curator, create).await
            }
        };
        let policy = if use_kazoo { "kazoo" } else { "exponential" };
        ctx.call_with(
            "create",
            json!({ "token": token, "policy": policy }),
            fut,
            |r: &Result<String, RetryError>| match r {
                Ok(p) => (Outcome::Ok, json!({ "path": p }), None),
                Err(e @ RetryError::OutcomeUnknown { .. }) => {
                    (Outcome::Unknown, Value::Null, Some(e.to_string()))
                }
                Err(e) if e.zk_error().is_some_and(|z| z.may_have_been_applied()) => {
                    (Outcome::Unknown, Value::Null, Some(e.to_string()))
                }
                Err(e) => (Outcome::Fail, Value::Null, Some(e.to_string())),
            },
        )
        .await;
        ctx.pause(40).await;
    }
    ctx.close().await;
}
