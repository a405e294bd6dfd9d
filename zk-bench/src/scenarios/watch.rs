//! `watch-reregister`: W one-shot watches on one session, connected through the test kit's
//! fault proxy; the proxy resets the connection; how long until the server holds all W again.
//!
//! The watches are `exists` watches on nodes that do not exist (creation watches), so no
//! nodes need creating; the server keeps them exactly like data watches, and the client
//! re-registers them in the same SetWatches packets.
//!
//! Two clocks, both started at the reset:
//! * server side: `wchs` ("Total watches") polled every few ms until it shows W again after
//!   having dropped (the server drops a connection's watches when it closes);
//! * client side: the client is CONNECTED again (it has queued its SetWatches packets by
//!   then), and a `sync` sent right after comes back (the server handles a connection's
//!   packets in order, so the SetWatches before it were applied).

use super::ServerCpu;
use crate::alloc;
use crate::report::{rss_kib, Clock, Obj};
use crate::target::{base_path, Target};
use crate::BoxError;
use futures::StreamExt;
use std::time::{Duration, Instant};
use zk_core::{Client, OneshotWatcher, State};
use zk_testkit::FaultProxy;

pub struct Params {
    pub watches: usize,
    pub concurrency: usize,
}

pub async fn run(t: &Target, p: Params) -> Result<Obj, BoxError> {
    let w = p.watches;
    let proxy = FaultProxy::start(t.addr).await?;
    let client = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await?;
    let base = base_path("watch-reregister");
    let baseline = t.total_watches().await?;

    let heap0 = alloc::live_bytes();
    let rss0 = rss_kib().0;
    let clock = Clock::start();
    // register: `concurrency` exists requests in flight
    let watchers: Vec<OneshotWatcher> = futures::stream::iter(0..w)
        .map(|i| {
            let c = client.clone();
            let path = format!("{base}/n{i:07}");
            async move { c.exists_watch(&path).await.map(|(_, watcher)| watcher) }
        })
        .buffer_unordered(p.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let (register_secs, register_cpu) = clock.elapsed();
    wait_for_watches(t, baseline + w as u64, Duration::from_secs(30)).await?;
    let heap1 = alloc::live_bytes();
    let (rss1, hwm1) = rss_kib();

    // the reconnect
    let mut states = client.state_stream();
    let server = ServerCpu::start(t);
    let cpu = Clock::start();
    let t0 = Instant::now();
    let server_side = {
        let target_count = baseline + w as u64;
        let addr = t.addr;
        tokio::task::spawn_blocking(move || poll_reregistered(addr, target_count, t0))
    };
    proxy.reset();
    let mut suspended = false;
    while let Some(s) = states.next().await {
        if s.state == State::Suspended {
            suspended = true;
        }
        if suspended && s.state == State::Connected {
            break;
        }
    }
    let t_connected = t0.elapsed();
    client.sync("/").await?;
    let t_synced = t0.elapsed();
    let (dropped, t_server) = server_side.await??;
    let (_, reregister_cpu) = cpu.elapsed();
    let heap2 = alloc::live_bytes();
    let (rss2, hwm) = rss_kib();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut o = Obj::new();
    o.set("scenario", "watch-reregister");
    o.set(
        "params",
        Obj::new()
            .with("watches", w)
            .with("concurrency", p.concurrency),
    );
    o.set("ops", w);
    o.set("seconds", t_server.map(|d| d.as_secs_f64()));
    o.set("register_seconds", register_secs);
    o.set("register_ops_per_sec", w as f64 / register_secs);
    o.set("register_cpu_us_per_watch", register_cpu * 1e6 / w as f64);
    o.set("reconnect_ms", ms(t_connected));
    o.set("client_reregistered_ms", ms(t_synced));
    o.set("server_reregistered_ms", t_server.map(ms));
    o.set("server_saw_watches_drop", dropped);
    o.set("cpu_seconds", reregister_cpu);
    o.set("cpu_us_per_op", reregister_cpu * 1e6 / w as f64);
    server.report(&mut o, w as u64);
    o.set("rss_kib_before", rss0);
    o.set("rss_kib_registered", rss1);
    o.set("rss_kib_after", rss2);
    o.set("peak_rss_kib_registered", hwm1);
    o.set("peak_rss_kib", hwm);
    o.set("heap_bytes_per_watch", (heap1 - heap0) / w as i64);
    o.set(
        "rss_bytes_per_watch",
        (rss1 as i64 - rss0 as i64) * 1024 / w as i64,
    );
    o.set(
        "heap_bytes_after_reregister_per_watch",
        (heap2 - heap0) / w as i64,
    );

    drop(watchers);
    client.close().await?;
    Ok(o)
}

async fn wait_for_watches(t: &Target, n: u64, within: Duration) -> Result<(), BoxError> {
    let until = Instant::now() + within;
    loop {
        let have = t.total_watches().await?;
        if have >= n {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!("the server shows {have} watches, expected {n}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `wchs` until the count has dropped below `n` and come back to `n`. Returns whether
/// the drop was seen, and the time from `t0` to the count being back (None: not within 30 s).
fn poll_reregistered(
    addr: std::net::SocketAddr,
    n: u64,
    t0: Instant,
) -> std::io::Result<(bool, Option<Duration>)> {
    let mut dropped = false;
    while t0.elapsed() < Duration::from_secs(30) {
        let out = zk_testkit::four_letter(addr, "wchs")?;
        let have = crate::target::parse_total_watches(&out).unwrap_or(0);
        if have < n {
            dropped = true;
        } else if dropped {
            return Ok((true, Some(t0.elapsed())));
        } else if t0.elapsed() > Duration::from_secs(5) {
            // never saw the drop: no figure (the count was back before any poll saw it)
            return Ok((false, None));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok((dropped, None))
}
