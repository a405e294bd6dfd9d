//! `election-failover`: N candidates (one session each) in a `zk_recipes::Election`; the
//! leader's session is closed; the time from the close until the next candidate's `acquire()`
//! returns. After each round a new candidate joins at the back, so there are always N.

use super::ServerCpu;
use crate::report::{Clock, Latencies, Obj};
use crate::target::{base_path, Target};
use crate::BoxError;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use zk_core::Client;
use zk_recipes::Election;

pub struct Params {
    pub candidates: usize,
    pub rounds: usize,
}

pub async fn run(t: &Target, p: Params) -> Result<Obj, BoxError> {
    let base = base_path("election-failover");
    let path = format!("{base}/election");
    let admin = t.client().await?;
    admin.ensure_path(&path).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut clients: HashMap<usize, Client> = HashMap::new();
    let mut next_id = 0;

    let join = |id: usize, c: Client, tx: mpsc::UnboundedSender<(usize, Instant)>| {
        let path = path.clone();
        tokio::spawn(async move {
            let e = Election::new(&c, &path, format!("candidate-{id}"));
            if let Ok(g) = e.acquire().await {
                let _ = tx.send((id, Instant::now()));
                g.lost().await;
            }
        });
    };
    for _ in 0..p.candidates {
        let c = t.client().await?;
        join(next_id, c.clone(), tx.clone());
        clients.insert(next_id, c);
        next_id += 1;
        wait_candidates(&admin, &path, next_id).await?;
    }
    let (mut leader, _) = rx.recv().await.ok_or("no leader")?;

    let mut lat = Latencies::new();
    let mut close = Latencies::new();
    let server = ServerCpu::start(t);
    let clock = Clock::start();
    let mut busy = Duration::ZERO;
    for _ in 0..p.rounds {
        let c = clients.remove(&leader).ok_or("leader without client")?;
        let t0 = Instant::now();
        c.close().await?;
        close.push(t0.elapsed());
        let (id, at) = rx.recv().await.ok_or("no next leader")?;
        lat.push(at - t0);
        busy += at - t0;
        leader = id;
        // refill: a new candidate at the back
        let c = t.client().await?;
        join(next_id, c.clone(), tx.clone());
        clients.insert(next_id, c);
        next_id += 1;
        wait_candidates(&admin, &path, p.candidates).await?;
    }
    let (_, cpu) = clock.elapsed();

    let mut o = Obj::new();
    o.set("scenario", "election-failover");
    o.set(
        "params",
        Obj::new()
            .with("candidates", p.candidates)
            .with("rounds", p.rounds),
    );
    o.set("ops", p.rounds);
    o.set("seconds", busy.as_secs_f64());
    o.set("failovers_per_sec", p.rounds as f64 / busy.as_secs_f64());
    lat.report(&mut o, "");
    close.report(&mut o, "close_");
    o.set("cpu_seconds_whole_loop", cpu);
    server.report(&mut o, p.rounds as u64);

    for (_, c) in clients {
        c.close().await?;
    }
    admin.delete_recursive(&base).await?;
    admin.close().await?;
    Ok(o)
}

/// Waits until `n` candidates are queued under `path`.
async fn wait_candidates(admin: &Client, path: &str, n: usize) -> Result<(), BoxError> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if admin.get_children(path).await?.len() == n {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!("{n} candidates did not queue within 30 s").into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
