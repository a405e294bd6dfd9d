//! Semaphore holders proving their lease with fenced ephemeral markers. See
//! [`crate::checker::semaphore`].
//!
//! Half of the clients (the first half by index) share a max-1 semaphore: they hold it long
//! (0.5..2 s) and wait for it up to [`SEM1_WAIT`], longer than a session loss plus a reconnect,
//! so that one of them always holds the admission lock while it waits for room, and keeps
//! waiting after its session is expired (the nemesis' `expire-admitted` aims at it: see
//! [`admitted_waiter`]). The others share a max-2 and a max-3 one with short holds and 5 s waits.

use super::{Ctx, ROOT};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, Op, ReadOp, ReadResult};
use zk_recipes::{Guard, Semaphore};

/// The semaphores: (path, max).
pub fn semaphores() -> [(String, u32); 3] {
    [
        (format!("{ROOT}/sem1"), 1),
        (format!("{ROOT}/sem2"), 2),
        (format!("{ROOT}/sem3"), 3),
    ]
}

/// The max-1 semaphore, whose admitted waiter the nemesis' `expire-admitted` aims at.
pub fn sem1() -> String {
    format!("{ROOT}/sem1")
}

/// How long a client of the max-1 semaphore waits for it: longer than a session loss (3 s
/// without an answer) plus a reconnect, so that a waiter whose session is expired while it
/// holds the admission lock is still waiting when the next waiter is admitted (below
/// [`super::OP_TIMEOUT`]).
pub const SEM1_WAIT: Duration = Duration::from_secs(10);

/// The semaphore workload has at least this many clients: four on the max-1 semaphore, four
/// on the others.
pub const MIN_CLIENTS: usize = 8;

/// The session that holds the admission lock of the max-1 semaphore while it waits for room:
/// the owner of the first node of its admission queue, when the semaphore is full and none of
/// its leases belongs to that session (read from the server; `None` if there is no such
/// waiter now). This is the recipe's layout (kazoo's: admission by an exclusive lock on
/// `P-__lock__`), read by the nemesis to aim an expiry, never by a checker.
pub async fn admitted_waiter(zk: &Client) -> zk_core::Result<Option<i64>> {
    Ok(admitted_waiter_node(zk).await?.map(|(owner, _)| owner))
}

/// [`admitted_waiter`] with the path of its admission node (what `delete-admission` deletes).
pub async fn admitted_waiter_node(zk: &Client) -> zk_core::Result<Option<(i64, String)>> {
    let sem = sem1();
    let lock = format!("{sem}-__lock__");
    zk.sync(&lock).await?;
    let queue = match zk.get_children(&lock).await {
        Ok(q) => q,
        Err(Error::NoNode) => return Ok(None),
        Err(e) => return Err(e),
    };
    // the queue's order: the sequence number after the mark (`<uuid>__lock__<10 digits>`; the
    // counter does not wrap in a run)
    let seq = |n: &String| {
        n.rfind("__lock__")
            .and_then(|i| n[i + "__lock__".len()..].parse::<i64>().ok())
    };
    let Some(first) = queue
        .iter()
        .filter(|n| seq(n).is_some())
        .min_by_key(|n| seq(n))
    else {
        return Ok(None);
    };
    let node = format!("{lock}/{first}");
    let Some(stat) = zk.exists(&node).await? else {
        return Ok(None);
    };
    let owner = stat.ephemeral_owner;
    let leases = match zk.get_children(&sem).await {
        Ok(l) => l,
        Err(Error::NoNode) => return Ok(None),
        Err(e) => return Err(e),
    };
    if leases.is_empty() {
        return Ok(None); // room: it is not waiting
    }
    for l in &leases {
        if let Some(s) = zk.exists(&format!("{sem}/{l}")).await? {
            if s.ephemeral_owner == owner {
                return Ok(None); // it holds a lease already
            }
        }
    }
    Ok((owner != 0).then_some((owner, node)))
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
    // the first half by index share the max-1 semaphore
    let single = ctx.index < ctx.clients / 2;
    while ctx.running() {
        // the others: mostly the max-2 one, so that there are waiters queued for admission
        // when a fault hits
        let (path, max) = if single {
            semaphores()[0].clone()
        } else {
            semaphores()[1 + usize::from(ctx.rng.gen_bool(0.25))].clone()
        };
        let (wait, observations, pause_ms) = if single {
            (SEM1_WAIT, ctx.rng.gen_range(3..8), 300)
        } else {
            (Duration::from_secs(5), 2, 150)
        };
        let sem = Semaphore::new(&ctx.zk, &path, ident.clone(), max)
            .expect("the workload's semaphores have max 1, 2 or 3");
        let got = ctx
            .call(
                "acquire",
                json!({ "sem": path, "max": max, "timeout_ms": wait.as_millis() as u64 }),
                sem.acquire_timeout(wait),
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
        // a max-1 holder holds long (0.5..2 s): its waiters queue up behind it
        for _ in 0..observations {
            observe(&ctx, &path, max).await;
            ctx.pause(pause_ms).await;
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
