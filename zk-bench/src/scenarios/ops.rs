//! `get`, `set`, `exists`, `create-delete`: closed-loop pipelined requests. Each of S sessions
//! runs C tasks; each task issues one request, waits for its reply, issues the next. So C
//! requests are in flight on every session, pipelined on its one connection.

use super::ServerCpu;
use crate::report::{throughput, Clock, Latencies, Obj};
use crate::target::{base_path, Target};
use crate::BoxError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use zk_core::{Client, CreateMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Get,
    Set,
    Exists,
    CreateDelete,
}

impl OpKind {
    fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Set => "set",
            OpKind::Exists => "exists",
            OpKind::CreateDelete => "create-delete",
        }
    }
}

pub struct Params {
    pub kind: OpKind,
    pub ops: u64,
    pub concurrency: usize,
    pub size: usize,
    pub sessions: usize,
    pub warmup: u64,
    pub nodes: usize,
}

pub async fn run(t: &Target, p: Params) -> Result<Obj, BoxError> {
    let mut clients = Vec::with_capacity(p.sessions);
    for _ in 0..p.sessions {
        clients.push(t.client().await?);
    }
    let base = base_path(p.kind.name());
    clients[0].ensure_path(&base).await?;
    let data: Arc<[u8]> = vec![b'x'; p.size].into();
    let paths: Arc<[String]> = (0..p.nodes).map(|i| format!("{base}/n{i}")).collect();
    if p.kind != OpKind::CreateDelete {
        for path in paths.iter() {
            clients[0]
                .create(path, &data, CreateMode::Persistent)
                .await?;
        }
    }
    let w = Work {
        kind: p.kind,
        concurrency: p.concurrency,
        base: base.clone().into(),
        data,
        paths,
    };
    if p.warmup > 0 {
        drive(&clients, &w, p.warmup, "w").await?;
    }
    let server = ServerCpu::start(t);
    let clock = Clock::start();
    let samples = drive(&clients, &w, p.ops, "m").await?;
    let (secs, cpu) = clock.elapsed_usage();
    // Into the histogram after the clock stops: the window measures the requests only.
    let lat = Latencies::from_micros(&samples);
    let mut o = Obj::new();
    o.set("scenario", p.kind.name());
    o.set(
        "params",
        Obj::new()
            .with("ops", p.ops)
            .with("concurrency", p.concurrency)
            .with("size", p.size)
            .with("sessions", p.sessions)
            .with("nodes", p.nodes),
    );
    let n = lat.len() as u64;
    throughput(&mut o, n, secs, cpu);
    lat.report(&mut o, "");
    server.report(&mut o, n);

    clients[0].delete_recursive(&base).await?;
    for c in clients {
        c.close().await?;
    }
    Ok(o)
}

struct Work {
    kind: OpKind,
    concurrency: usize,
    base: Arc<str>,
    data: Arc<[u8]>,
    paths: Arc<[String]>,
}

/// Runs `total` requests with `concurrency` in flight on each client; returns every latency.
/// Latency samples in microseconds, one per request (cheap to take inside the measured window).
fn micros(d: std::time::Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

async fn drive(
    clients: &[Client],
    w: &Work,
    total: u64,
    tag: &'static str,
) -> Result<Vec<u32>, BoxError> {
    let next = Arc::new(AtomicU64::new(0));
    let per_task = total as usize / (clients.len() * w.concurrency) + 2;
    let mut tasks = Vec::new();
    for (si, c) in clients.iter().enumerate() {
        for wi in 0..w.concurrency {
            let c = c.clone();
            let next = next.clone();
            let (kind, base, data, paths) =
                (w.kind, w.base.clone(), w.data.clone(), w.paths.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::<u32>::with_capacity(per_task);
                let step = if kind == OpKind::CreateDelete { 2 } else { 1 };
                loop {
                    let i = next.fetch_add(step, Ordering::Relaxed);
                    if i + step > total {
                        break;
                    }
                    let path = &paths[i as usize % paths.len()];
                    let t0 = Instant::now();
                    match kind {
                        OpKind::Get => {
                            c.get_data(path).await?;
                        }
                        OpKind::Set => {
                            c.set_data(path, &data, None).await?;
                        }
                        OpKind::Exists => {
                            c.exists(path).await?;
                        }
                        OpKind::CreateDelete => {
                            let p = format!("{base}/{tag}{si}-{wi}-{i}");
                            c.create(&p, &data, CreateMode::Persistent).await?;
                            let t1 = Instant::now();
                            lat.push(micros(t1 - t0));
                            c.delete(&p, None).await?;
                            lat.push(micros(t1.elapsed()));
                            continue;
                        }
                    }
                    lat.push(micros(t0.elapsed()));
                }
                Ok::<_, zk_core::Error>(lat)
            }));
        }
    }
    let mut all = Vec::with_capacity(total as usize);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}
