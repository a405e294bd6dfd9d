//! Reads, writes and versioned writes on a few registers. See [`crate::checker::register`].

use super::{classify, Ctx, ROOT};
use crate::history::Outcome;
use rand::Rng;
use serde_json::{json, Map, Value};
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, Stat};

/// How many registers.
pub const KEYS: usize = 3;
/// Their initial value.
pub const INIT: &str = "init";

fn key_path(k: usize) -> String {
    format!("{ROOT}/reg/k{k}")
}

/// Creates the registers (harness).
pub async fn setup(zk: &Client) -> zk_core::Result<()> {
    zk.ensure_path(&format!("{ROOT}/reg")).await?;
    for k in 0..KEYS {
        match zk
            .create(&key_path(k), INIT.as_bytes(), CreateMode::Persistent)
            .await
        {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads every register after the heal, through `sync` (harness).
pub async fn finish(zk: &Client) -> zk_core::Result<Value> {
    let mut keys = Map::new();
    for k in 0..KEYS {
        zk.sync(&key_path(k)).await?;
        let (d, s) = zk.get_data(&key_path(k)).await?;
        keys.insert(
            format!("k{k}"),
            json!({"value": String::from_utf8_lossy(&d), "version": s.version}),
        );
    }
    Ok(json!({ "keys": keys }))
}

fn ok_version(s: &Stat) -> Value {
    json!({ "version": s.version })
}

/// One register client.
pub async fn run(mut ctx: Ctx) {
    let mut known = [0i32; KEYS];
    let mut n = 0u64;
    while ctx.running() {
        n += 1;
        let k = ctx.rng.gen_range(0..KEYS);
        let key = format!("k{k}");
        let path = key_path(k);
        let value = format!("c{}-{n}", ctx.id);
        // a third of the operations get a deadline short enough to expire around the moment
        // the request is written: the client must then know whether it was sent
        let zk = if ctx.rng.gen_bool(0.3) {
            let ms = ctx.rng.gen_range(1..200);
            ctx.zk.with_timeout(Duration::from_millis(ms))
        } else {
            ctx.zk.clone()
        };
        match ctx.rng.gen_range(0..10) {
            0..=3 => {
                if let Ok((d, s)) = ctx
                    .call(
                        "read",
                        json!({ "key": key }),
                        ctx.zk.get_data(&path),
                        |(d, s)| json!({"value": String::from_utf8_lossy(d), "version": s.version}),
                    )
                    .await
                {
                    let _ = d;
                    known[k] = s.version;
                }
            }
            4..=6 => {
                if let Ok(s) = ctx
                    .call(
                        "write",
                        json!({ "key": key, "value": value }),
                        zk.set_data(&path, value.as_bytes(), None),
                        ok_version,
                    )
                    .await
                {
                    known[k] = s.version;
                }
            }
            _ => {
                let expect = known[k];
                let r = ctx
                    .call_with(
                        "cas",
                        json!({ "key": key, "expect": expect, "value": value }),
                        zk.set_data(&path, value.as_bytes(), Some(expect)),
                        |r: &zk_core::Result<Stat>| match r {
                            Ok(s) => (Outcome::Ok, ok_version(s), None),
                            Err(Error::BadVersion) => (
                                Outcome::Fail,
                                json!({ "bad_version": true }),
                                Some(Error::BadVersion.to_string()),
                            ),
                            Err(e) => (classify(e), Value::Null, Some(e.to_string())),
                        },
                    )
                    .await;
                if let Some(Ok(s)) = r {
                    known[k] = s.version;
                }
            }
        }
        ctx.pause(30).await;
    }
    ctx.close().await;
}
