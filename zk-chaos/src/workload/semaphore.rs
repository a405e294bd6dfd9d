//! Semaphore holders (max 2 and max 3) proving their lease with fenced ephemeral markers.
//! See [`crate::checker::semaphore`].

use super::{Ctx, ROOT};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, Op, ReadOp, ReadResult};
use zk_recipes::{Guard, Semaphore};

/// The semaphores: (path, max).
pub fn semaphores() -> [(String, u32); 2] {
    [(format!("{ROOT}/sem2"), 2), (format!("{ROOT}/sem3"), 3)]
}

/// Creates the marker directories (harness).
pub async fn setup(zk: &Client) -> zk_core::Result<()> {
    for (p, _) in semaphores() {
        zk.ensure_path(&format!("{p}-in")).await?;
    }
    Ok(())
}

/// One semaphore client.
pub async fn run(mut ctx: Ctx) {
    let ident = format!("c{}", ctx.id);
    let mut n = 0u64;
    while ctx.running() {
        // mostly the max-2 one, so that there are waiters queued for admission when a fault
        // hits (the admission hole needs a waiter that loses its session while it waits)
        let (path, max) = semaphores()[usize::from(ctx.rng.gen_bool(0.25))].clone();
        let sem = Semaphore::new(&ctx.zk, &path, ident.clone(), max)
            .expect("the workload's semaphores have max 2 or 3");
        let got = ctx
            .call(
                "acquire",
                json!({ "sem": path, "max": max }),
                sem.acquire_timeout(Duration::from_secs(5)),
                |g: &Option<Guard>| json!({ "guard": g.as_ref().map(|g| g.path().to_owned()) }),
            )
            .await;
        let Ok(Some(guard)) = got else {
            ctx.pause(100).await;
            continue;
        };
        n += 1;
        super::record_lost(&ctx, &guard);
        let marker = format!("{path}-in/c{}-{n}", ctx.id);
        let g = guard.path().to_owned();
        let _ = enter(&ctx, &path, &guard, &marker).await;
        for _ in 0..2 {
            observe(&ctx, &path, max).await;
            ctx.pause(150).await;
        }
        if !exit(&ctx, &path, &marker).await {
            // the marker may outlive a released lease: end the session instead, which removes
            // the marker and the lease together, and stop this client
            ctx.info("exit-unconfirmed", json!({ "marker": marker }));
            ctx.close().await;
            // not dropped: dropping would release the lease while the marker may remain
            std::mem::forget(guard);
            return;
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

/// The holder proves its lease: it creates its marker in a transaction fenced by the lease
/// (recorded as `enter` `{sem, guard, marker}`).
///
/// # Errors
/// Those of the fenced transaction; a guard already lost is `NotConnected` (nothing sent).
pub async fn enter(ctx: &Ctx, sem: &str, guard: &Guard, marker: &str) -> Result<(), Error> {
    ctx.call(
        "enter",
        json!({ "sem": sem, "guard": guard.path(), "marker": marker }),
        super::fenced(guard.fenced_multi(vec![Op::create(
            marker.to_owned(),
            Vec::new(),
            CreateMode::Ephemeral,
        )])),
        |_| Value::Null,
    )
    .await
    .map(|_| ())
}

/// Lists the leases and the markers of semaphore `sem` in one read-only transaction
/// (recorded as `observe` `{sem, max}` → `{leases, holders}`): both lists come from the same
/// server state, so the checker can tell a fenced holder (its lease is listed) from a marker
/// that outlived its lease (a lost guard gives its lease up while its holder has not deleted
/// its marker yet).
pub async fn observe(ctx: &Ctx, sem: &str, max: u32) {
    let read = async {
        let mut r = ctx
            .zk
            .multi_read(vec![
                ReadOp::GetChildren(sem.to_owned()),
                ReadOp::GetChildren(format!("{sem}-in")),
            ])
            .await?
            .into_iter();
        let mut children = || match r.next() {
            Some(Ok(ReadResult::Children(c))) => Ok(c),
            Some(Err(e)) => Err(e),
            _ => Err(Error::Protocol("multi_read: not a child list".into())),
        };
        Ok::<_, Error>((children()?, children()?))
    };
    let _ = ctx
        .call(
            "observe",
            json!({ "sem": sem, "max": max }),
            read,
            |(leases, markers): &(Vec<String>, Vec<String>)| {
                json!({ "leases": leases, "holders": markers })
            },
        )
        .await;
}

/// Deletes the marker until that is known to have happened (bounded).
async fn exit(ctx: &Ctx, sem: &str, marker: &str) -> bool {
    for _ in 0..20 {
        let r = ctx
            .call(
                "exit",
                json!({ "sem": sem, "marker": marker }),
                ctx.zk.delete(marker, None),
                |_| Value::Null,
            )
            .await;
        match r {
            // not SessionExpired: a client declares its session lost on its own after a
            // session timeout without any server, but a server that was down restores the
            // session (and the marker) when it comes back, for up to one more session timeout;
            // the next attempt runs on the client's new session, and ZooKeeper lets any session
            // delete an ephemeral node
            Ok(()) | Err(Error::NoNode) => return true,
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    false
}
