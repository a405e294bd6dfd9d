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

/// `item-<token>-<10-digit sequence>` → token.
fn token_of(name: &str) -> &str {
    name.strip_prefix("item-")
        .and_then(|r| r.rsplit_once('-'))
        .map(|(t, _)| t)
        .unwrap_or("")
}

/// Lists every item with its token after the heal (harness).
pub async fn finish(zk: &Client) -> zk_core::Result<Value> {
    zk.sync(&dir()).await?;
    let mut items = Vec::new();
    for name in zk.get_children(&dir()).await? {
        if name.starts_with("big-") {
            // a client's directory of large creates
            for child in zk.get_children(&format!("{}/{name}", dir())).await? {
                items.push(json!({"name": format!("{name}/{child}"), "token": token_of(&child)}));
            }
        } else {
            items.push(json!({"name": name, "token": token_of(&name)}));
        }
    }
    Ok(json!({ "items": items }))
}

/// The retry policies, both with `idempotent(false)`.
struct Policies {
    kazoo: KazooRetry,
    curator: ExponentialBackoffRetry,
}

/// One sequence client.
pub async fn run(mut ctx: Ctx) {
    let policies = Policies {
        kazoo: KazooRetry::single_attempt()
            .max_tries(Some(4))
            .delay(Duration::from_millis(50))
            .max_delay(Duration::from_millis(500))
            .deadline(Some(Duration::from_secs(5)))
            .idempotent(false),
        curator: ExponentialBackoffRetry::new(
            Duration::from_millis(50),
            4,
            Duration::from_millis(500),
        )
        .idempotent(false),
    };
    let mut n = 0u64;
    let mut last_big = tokio::time::Instant::now();
    let big_dir = format!("{}/big-c{}", dir(), ctx.id);
    let mut shrunk = std::collections::HashSet::new();
    let _ = tokio::time::timeout(super::OP_TIMEOUT, ctx.zk.ensure_path(&big_dir)).await;
    while ctx.running() {
        // a quarter of the time: a burst of 6 concurrent large creates (64..96 KiB, so copying
        // a frame out takes a while and the others queue behind it) with deadlines of
        // 0.2..4 ms, the shape that once made `Timeout { sent: false }` lie; otherwise one
        // small create, half of them with a 1..100 ms deadline
        let big = last_big.elapsed() > Duration::from_secs(1) && ctx.rng.gen_bool(0.25);
        if big {
            last_big = tokio::time::Instant::now();
        }
        let burst = if big { 4 } else { 1 };
        let mut specs = Vec::new();
        for _ in 0..burst {
            n += 1;
            let token = format!("c{}-{n}", ctx.id);
            let use_kazoo = ctx.rng.gen_bool(0.5);
            let (zk, deadline_us) = if big {
                let us = ctx.rng.gen_range(200..4000);
                (ctx.zk.with_timeout(Duration::from_micros(us)), Some(us))
            } else if ctx.rng.gen_bool(0.5) {
                let ms = ctx.rng.gen_range(1..100);
                (
                    ctx.zk.with_timeout(Duration::from_millis(ms)),
                    Some(ms * 1000),
                )
            } else {
                (ctx.zk.clone(), None)
            };
            let mut data = token.clone().into_bytes();
            if big {
                data.resize(ctx.rng.gen_range(64..96) * 1024, b'.');
            }
            specs.push((zk, token, data, use_kazoo, deadline_us));
        }
        let creates = specs
            .into_iter()
            .map(|(zk, token, data, use_kazoo, deadline_us)| {
                let parent = if big { big_dir.clone() } else { dir() };
                let spec = Spec {
                    zk,
                    parent,
                    token,
                    data,
                    use_kazoo,
                    deadline_us,
                };
                create(&ctx, &policies, spec)
            });
        futures::future::join_all(creates).await;
        if big {
            // keep the server's memory small: empty every large node of ours, acknowledged or
            // not (the nodes themselves stay for the final listing)
            if let Ok(children) = ctx.zk.get_children(&big_dir).await {
                for c in children {
                    if shrunk.contains(&c) {
                        continue;
                    }
                    let path = format!("{big_dir}/{c}");
                    let r = ctx
                        .call(
                            "shrink",
                            json!({ "path": path }),
                            ctx.zk.set_data(&path, b"", None),
                            |_| Value::Null,
                        )
                        .await;
                    if r.is_ok() {
                        shrunk.insert(c);
                    }
                }
            }
        }
        ctx.pause(40).await;
    }
    ctx.close().await;
}

/// One create to make.
struct Spec {
    zk: Client,
    parent: String,
    token: String,
    data: Vec<u8>,
    use_kazoo: bool,
    deadline_us: Option<u64>,
}

/// One recorded create through a retry policy; the path if it was acknowledged.
async fn create(ctx: &Ctx, policies: &Policies, spec: Spec) -> Option<String> {
    let Spec {
        zk,
        parent,
        token,
        data,
        use_kazoo,
        deadline_us,
    } = spec;
    // the token is in the name, so the final listing needs no reads
    let prefix = format!("{parent}/item-{token}-");
    let attempt = || zk.create(&prefix, &data, CreateMode::PersistentSequential);
    let fut = async {
        if use_kazoo {
            retry(&policies.kazoo, attempt).await
        } else {
            retry(&policies.curator, attempt).await
        }
    };
    let args = json!({
        "token": token,
        "policy": if use_kazoo { "kazoo" } else { "exponential" },
        "deadline_us": deadline_us,
        "bytes": data.len(),
    });
    let r = ctx
        .call_with(
            "create",
            args,
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
    r.and_then(Result::ok)
}
