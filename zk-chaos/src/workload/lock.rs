//! Lock / WriteLock / ReadLock holders doing fenced read-modify-write on a counter.
//! See [`crate::checker::lock`] for the history it writes and what is checked.

use super::{parse_i64, Ctx, ROOT};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, Op};
use zk_recipes::{Guard, Lock, ReadLock, WriteLock};

/// The lock's path.
pub fn lock_path() -> String {
    format!("{ROOT}/lock/lock")
}

/// The counter's path.
pub fn counter_path() -> String {
    format!("{ROOT}/lock/counter")
}

/// Creates the counter (harness, before the run).
pub async fn setup(zk: &Client) -> zk_core::Result<()> {
    zk.ensure_path(&format!("{ROOT}/lock")).await?;
    match zk
        .create(&counter_path(), b"0", CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads the counter after the heal (harness).
pub async fn finish(zk: &Client) -> zk_core::Result<Value> {
    zk.sync(&counter_path()).await?;
    let (d, _) = zk.get_data(&counter_path()).await?;
    Ok(json!({ "counter": parse_i64(&d) }))
}

/// One lock client.
pub async fn run(mut ctx: Ctx) {
    let ident = format!("c{}", ctx.id);
    let path = lock_path();
    while ctx.running() {
        let kind = ["lock", "write", "read"][ctx.rng.gen_range(0..3)];
        // a third of the acquisitions are impatient (20..300 ms): waiters that give up while
        // someone ahead holds the lock, so a waiter's predecessor is deleted while the lock is
        // taken (a waiter must look again then, not take the lock)
        let t = if ctx.rng.gen_range(0..3) == 0 {
            Duration::from_millis(ctx.rng.gen_range(20..300))
        } else {
            Duration::from_secs(5)
        };
        let zk = ctx.zk.clone();
        let acquire = async {
            match kind {
                "lock" => {
                    Lock::new(&zk, &path, ident.clone())
                        .acquire_timeout(t)
                        .await
                }
                "write" => {
                    WriteLock::new(&zk, &path, ident.clone())
                        .acquire_timeout(t)
                        .await
                }
                _ => {
                    ReadLock::new(&zk, &path, ident.clone())
                        .acquire_timeout(t)
                        .await
                }
            }
        };
        let got = ctx
            .call(
                "acquire",
                json!({ "kind": kind, "timeout_ms": t.as_millis() as u64 }),
                acquire,
                |g: &Option<Guard>| json!({ "guard": g.as_ref().map(|g| g.path().to_owned()) }),
            )
            .await;
        let Ok(Some(guard)) = got else {
            ctx.pause(100).await;
            continue;
        };
        let g = guard.path().to_owned();
        super::record_lost(&ctx, &guard);
        if kind == "read" {
            hold_read(&mut ctx, &guard, &g).await;
        } else {
            hold_write(&mut ctx, &guard, &g).await;
        }
        let _ = ctx
            .call("release", json!({ "guard": g }), guard.release(), |_| {
                Value::Null
            })
            .await;
        ctx.pause(20).await;
    }
    ctx.close().await;
}

async fn read(ctx: &Ctx, g: &str) -> Option<i64> {
    ctx.call(
        "read",
        json!({ "guard": g }),
        ctx.zk.get_data(&counter_path()),
        |(d, _)| json!({ "value": parse_i64(d) }),
    )
    .await
    .ok()
    .map(|(d, _)| parse_i64(&d))
}

async fn hold_write(ctx: &mut Ctx, guard: &Guard, g: &str) {
    for _ in 0..ctx.rng.gen_range(1..=2) {
        let Some(r) = read(ctx, g).await else { return };
        ctx.pause(15).await;
        let value = r + 1;
        let set = Op::set_data(counter_path(), value.to_string().into_bytes(), None);
        let res = ctx
            .call(
                "fenced-write",
                json!({ "guard": g, "value": value }),
                super::fenced(guard.fenced_multi(vec![set])),
                |_| Value::Null,
            )
            .await;
        if res.is_err() {
            return;
        }
    }
}

async fn hold_read(ctx: &mut Ctx, guard: &Guard, g: &str) {
    let Some(r1) = read(ctx, g).await else { return };
    ctx.pause(30).await;
    let Some(r2) = read(ctx, g).await else { return };
    let _ = ctx
        .call(
            "fenced-check",
            json!({ "guard": g, "r1": r1, "r2": r2 }),
            super::fenced(guard.fenced_multi(vec![])),
            |_| Value::Null,
        )
        .await;
}
