//! `lock-handoff`: N sessions take turns on one `zk_recipes::Lock`; `lock-waiters`: what a
//! waiting contender costs the client.

use super::ServerCpu;
use crate::alloc;
use crate::notify::CountingConnector;
use crate::report::{rss_kib, throughput, Clock, Latencies, Obj};
use crate::target::{base_path, Target};
use crate::BoxError;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use zk_core::{Client, EventType};
use zk_recipes::Lock;

pub struct HandoffParams {
    pub contenders: usize,
    pub rounds: usize,
}

pub struct WaitersParams {
    pub contenders: usize,
}

/// What the contenders share: when the last release started, and the handoff latencies.
struct Shared {
    epoch: Instant,
    /// Nanoseconds since `epoch` at which the last holder started its release (0: none yet).
    last_release: AtomicU64,
    latencies: Mutex<Latencies>,
    acquisitions: Mutex<Vec<Instant>>,
}

impl Shared {
    fn acquired(&self) {
        let now = Instant::now();
        let prev = self.last_release.load(Ordering::Acquire);
        if prev != 0 {
            let since = now.duration_since(self.epoch).as_nanos() as u64;
            self.latencies
                .lock()
                .unwrap()
                .push(Duration::from_nanos(since.saturating_sub(prev)));
        }
        self.acquisitions.lock().unwrap().push(now);
    }

    fn releasing(&self) {
        let ns = (self.epoch.elapsed().as_nanos() as u64).max(1);
        self.last_release.store(ns, Ordering::Release);
    }
}

pub async fn handoff(t: &Target, p: HandoffParams) -> Result<Obj, BoxError> {
    let n = p.contenders;
    let heap0 = alloc::live_bytes();
    let connectors: Vec<CountingConnector> = (0..n).map(|_| CountingConnector::default()).collect();
    let mut clients = Vec::with_capacity(n);
    // connect in small batches: 100 handshakes at once would just queue on the server
    for chunk in connectors.chunks(10) {
        let batch = chunk.iter().map(|c| {
            Client::builder(t.connect.as_str())
                .session_timeout(Duration::from_secs(20))
                .connector(c.clone())
                .connect()
        });
        clients.extend(futures::future::try_join_all(batch).await?);
    }
    let heap_sessions = alloc::live_bytes() - heap0;

    let base = base_path("lock-handoff");
    let path = format!("{base}/lock");
    clients[0].ensure_path(&path).await?;
    let rtt = round_trip(&clients[0], &path).await?;

    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        last_release: AtomicU64::new(0),
        latencies: Mutex::new(Latencies::new()),
        acquisitions: Mutex::new(Vec::with_capacity(n * p.rounds)),
    });
    let (held_tx, held_rx) = watch::channel(false);
    let (go_tx, go_rx) = watch::channel(false);
    let heap_before_queue = alloc::live_bytes();
    let mut tasks = Vec::with_capacity(n);
    for (i, c) in clients.iter().enumerate() {
        let lock = Lock::new(c, &path, format!("contender-{i}"));
        let shared = shared.clone();
        let (held_tx, mut held_rx, mut go_rx) = (held_tx.clone(), held_rx.clone(), go_rx.clone());
        let rounds = p.rounds;
        tasks.push(tokio::spawn(async move {
            let mut owned = Vec::with_capacity(rounds);
            for r in 0..rounds {
                if r == 0 {
                    if i == 0 {
                        // the first holder holds until every other contender queued up
                        let g = lock.acquire().await?;
                        owned.push(g.path().to_owned());
                        let _ = held_tx.send(true);
                        let _ = go_rx.wait_for(|g| *g).await;
                        shared.releasing();
                        g.release().await?;
                        continue;
                    }
                    let _ = held_rx.wait_for(|h| *h).await;
                }
                let g = lock.acquire().await?;
                shared.acquired();
                owned.push(g.path().to_owned());
                shared.releasing();
                g.release().await?;
            }
            Ok::<_, zk_core::Error>(owned)
        }));
    }
    drop(held_tx);
    let _ = held_rx.clone().wait_for(|h| *h).await;
    // Everyone queued: N nodes, and N watches under the lock (N-1 waiters on their
    // predecessor, the holder's exists watch on its own node).
    let until = Instant::now() + QUEUE_TIMEOUT;
    let snapshot = loop {
        let children = clients[0].get_children(&path).await?.len();
        let w = watchers_under(t, &path).await?;
        let total: usize = w.values().sum();
        if children == n && total >= n {
            break w;
        }
        if Instant::now() > until {
            return Err(not_queued(n, children, total));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let heap_queued = alloc::live_bytes() - heap_before_queue;
    let holder_node = first_node(&clients[0], &path).await?;
    let snapshot_max = snapshot
        .iter()
        .map(|(node, k)| if *node == holder_node { k - 1 } else { *k })
        .max()
        .unwrap_or(0);

    let server = ServerCpu::start(t);
    let clock = Clock::start();
    let go_at = Instant::now();
    let _ = go_tx.send(true);
    let mut owned: Vec<HashSet<String>> = Vec::with_capacity(n);
    for task in tasks {
        owned.push(task.await??.into_iter().collect());
    }
    let (_, cpu) = clock.elapsed_usage();
    let acq = shared.acquisitions.lock().unwrap().clone();
    // every acquisition after the go is a handoff (the first holder's release started it)
    let handoffs = acq.len() as u64;
    let secs = acq
        .iter()
        .max()
        .map_or(0.0, |last| last.duration_since(go_at).as_secs_f64());

    // Herd measure: notifications that reached each session. NodeDeleted of a session's own
    // node is the holder's exists watch (its guard watches its own node): a self-notification,
    // counted apart. Every other notification about a lock node counts against the release of
    // that node.
    let all_nodes: HashSet<&String> = owned.iter().flatten().collect();
    let mut per_node: HashMap<String, u64> = HashMap::new();
    let (mut self_n, mut foreign, mut other) = (0u64, 0u64, 0u64);
    for (conn, own) in connectors.iter().zip(&owned) {
        for (ty, node) in conn.log.take() {
            if own.contains(&node) {
                self_n += 1;
            } else if all_nodes.contains(&node) {
                foreign += 1;
                *per_node.entry(node).or_default() += 1;
                if ty != EventType::NodeDeleted as i32 {
                    other += 1;
                }
            } else {
                other += 1;
            }
        }
    }
    let releases = all_nodes.len() as u64;

    let mut o = Obj::new();
    o.set("scenario", "lock-handoff");
    o.set(
        "params",
        Obj::new().with("contenders", n).with("rounds", p.rounds),
    );
    throughput(&mut o, handoffs, secs, cpu);
    shared.latencies.lock().unwrap().report(&mut o, "");
    server.report(&mut o, handoffs);
    o.set("releases", releases);
    o.set(
        "notifications_per_release",
        foreign as f64 / releases.max(1) as f64,
    );
    o.set(
        "max_notifications_per_release",
        per_node.values().copied().max().unwrap_or(0),
    );
    o.set(
        "self_notifications_per_release",
        self_n as f64 / releases.max(1) as f64,
    );
    o.set("other_notifications", other);
    o.set("server_max_watchers_per_node", snapshot_max);
    o.set("rtt_p50_us", rtt);
    let summary = shared.latencies.lock().unwrap().summary();
    if let Some(s) = summary {
        o.set("handoff_p50_in_rtts", s.p50 as f64 / rtt.max(1) as f64);
        o.set("handoff_p90_in_rtts", s.p90 as f64 / rtt.max(1) as f64);
    }
    o.set("heap_bytes_per_session", heap_sessions / n as i64);
    o.set("heap_bytes_per_queued_contender", heap_queued / n as i64);

    clients[0].delete_recursive(&base).await?;
    for c in clients {
        c.close().await?;
    }
    Ok(o)
}

/// How long the contenders may take to queue up before the run is given up.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(120);

fn not_queued(n: usize, children: usize, watches: usize) -> BoxError {
    format!(
        "{n} contenders did not queue within {} s ({children} nodes, {watches} watches)",
        QUEUE_TIMEOUT.as_secs()
    )
    .into()
}

/// Median of 200 sequential `exists` round trips, µs.
async fn round_trip(c: &Client, path: &str) -> Result<u64, BoxError> {
    let mut l = Latencies::new();
    for _ in 0..200 {
        let t0 = Instant::now();
        c.exists(path).await?;
        l.push(t0.elapsed());
    }
    Ok(l.summary().map_or(0, |s| s.p50))
}

/// The lowest contender node under `path`.
async fn first_node(c: &Client, path: &str) -> Result<String, BoxError> {
    let children = c.get_children(path).await?;
    let first = zk_recipes::sorted_contenders(&children)
        .into_iter()
        .next()
        .ok_or("no contender")?;
    Ok(format!("{path}/{}", first.name))
}

/// `wchp`: how many sessions watch each node below `prefix`.
async fn watchers_under(t: &Target, prefix: &str) -> Result<HashMap<String, usize>, BoxError> {
    let out = t.four_letter("wchp").await?;
    Ok(parse_wchp(&out, &format!("{prefix}/")))
}

fn parse_wchp(out: &str, prefix: &str) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    let mut cur: Option<String> = None;
    for line in out.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some(p) = &cur {
                if !line.trim().is_empty() {
                    *m.entry(p.clone()).or_default() += 1;
                }
            }
        } else {
            let p = line.trim();
            cur = p.starts_with(prefix).then(|| p.to_owned());
        }
    }
    m
}

pub async fn waiters(t: &Target, p: WaitersParams) -> Result<Obj, BoxError> {
    let n = p.contenders;
    let c = t.client().await?;
    let base = base_path("lock-waiters");
    let path = format!("{base}/lock");
    c.ensure_path(&path).await?;
    let holder = Lock::new(&c, &path, "holder").acquire().await?;
    // let the holder's monitor settle, then measure
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Parts of a waiter's cost, measured one by one: a state stream (every acquisition
    // subscribes one), a lock handle, and the acquire future (its size before it first runs).
    let per = |before: i64, k: usize| (alloc::live_bytes() - before) / k as i64;
    let h0 = alloc::live_bytes();
    let streams: Vec<_> = (0..1000).map(|_| c.state_stream()).collect();
    let state_stream_bytes = per(h0, streams.len());
    drop(streams);
    let h0 = alloc::live_bytes();
    let handles: Vec<_> = (0..1000)
        .map(|i| Lock::new(&c, &path, format!("probe-{i}")))
        .collect();
    let lock_handle_bytes = per(h0, handles.len());
    let acquire_future_bytes = std::mem::size_of_val(&handles[0].acquire());
    drop(handles);

    let heap0 = alloc::live_bytes();
    let rss0 = rss_kib().0;
    let clock = Clock::start();
    let mut tasks = Vec::with_capacity(n - 1);
    let waiter = |lock: Lock| async move { lock.acquire().await.map(drop) };
    let task_future_bytes = std::mem::size_of_val(&waiter(Lock::new(&c, &path, "probe")));
    for i in 1..n {
        let lock = Lock::new(&c, &path, format!("waiter-{i}"));
        tasks.push(tokio::spawn(waiter(lock)));
    }
    // spawned, not yet run (a current-thread runtime): the handles and the tasks
    let heap_spawned = alloc::live_bytes();
    // all queued, all watching: N-1 predecessor watches (the server keeps one watch per path
    // and connection, so the holder's own exists watch and its successor's data watch on the
    // holder's node, both from this session, are one)
    let until = Instant::now() + QUEUE_TIMEOUT;
    loop {
        let children = c.get_children(&path).await?.len();
        let w: usize = watchers_under(t, &path).await?.values().sum();
        if children == n && w >= n - 1 {
            break;
        }
        if Instant::now() > until {
            return Err(not_queued(n, children, w));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (secs, cpu) = clock.elapsed();
    // one more pause so transient buffers (children lists) are gone
    tokio::time::sleep(Duration::from_millis(200)).await;
    let heap1 = alloc::live_bytes();
    let (rss1, hwm) = rss_kib();
    let waiting = (n - 1) as i64;

    let mut o = Obj::new();
    o.set("scenario", "lock-waiters");
    o.set("params", Obj::new().with("contenders", n));
    o.set("ops", waiting);
    o.set("seconds_to_queue", secs);
    o.set("cpu_seconds", cpu);
    o.set("heap_bytes_per_waiter", (heap1 - heap0) / waiting);
    o.set("heap_bytes_per_state_stream", state_stream_bytes);
    o.set("heap_bytes_per_lock_handle", lock_handle_bytes);
    o.set("acquire_future_bytes", acquire_future_bytes);
    o.set("task_future_bytes", task_future_bytes);
    o.set(
        "heap_bytes_per_spawned_waiter",
        (heap_spawned - heap0) / waiting,
    );
    o.set("rss_kib_before", rss0);
    o.set("rss_kib_after", rss1);
    o.set(
        "rss_bytes_per_waiter",
        (rss1 as i64 - rss0 as i64) * 1024 / waiting,
    );
    o.set("peak_rss_kib", hwm);

    for task in &tasks {
        task.abort();
    }
    drop(holder);
    c.close().await?;
    let c = t.client().await?;
    c.delete_recursive(&base).await?;
    c.close().await?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wchp_is_parsed_per_node() {
        let out = "/b/lock/x__lock__0000000001\n\t0x100\n\t0x101\n/other\n\t0x1\n/b/lock/y__lock__0000000002\n\t0x102\n";
        let m = parse_wchp(out, "/b/lock/");
        assert_eq!(m.len(), 2);
        assert_eq!(m["/b/lock/x__lock__0000000001"], 2);
        assert_eq!(m["/b/lock/y__lock__0000000002"], 1);
    }
}
