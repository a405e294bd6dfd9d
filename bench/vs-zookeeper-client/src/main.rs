//! CPU per request, zk-core vs the `zookeeper-client` crate, side by side.
//!
//! `cargo run --release -- [--hosts H] [--ops N] [--concurrency C] [--reps R] [--threads T]`
//!
//! Starts one ZooKeeper through zk-testkit unless `--hosts` is given, creates a 100-byte node,
//! then alternates the two clients R times (ours, theirs, ours, ...): each run is C tasks on one
//! session doing N pipelined `get_data` in total, on a tokio runtime of T worker threads (1: a
//! current-thread runtime). Per run it prints one JSON line: ops/s, p50 and p99 latency, and this
//! process's CPU per op (user + system, from getrusage) with the context switches per op; at the
//! end, the medians and the ratio ours / theirs. `--only zk-core` (or `zookeeper-client`) runs
//! one side only, e.g. under `strace -c` or `perf`.

use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Default)]
struct Usage {
    user: f64,
    sys: f64,
    switches: f64,
}

fn usage() -> Usage {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        user: s(ru.ru_utime),
        sys: s(ru.ru_stime),
        switches: (ru.ru_nvcsw + ru.ru_nivcsw) as f64,
    }
}

struct Run {
    ops_per_sec: f64,
    cpu_us_per_op: f64,
    user_us: f64,
    sys_us: f64,
    ctx_per_op: f64,
    p50_us: f64,
    p99_us: f64,
}

async fn measure<F, Fut>(ops: usize, conc: usize, one: F) -> Run
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let one = Arc::new(one);
    let u0 = usage();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let one = one.clone();
        let n = ops / conc;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                one().await;
                lat.push(t.elapsed().as_micros() as u64);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = t0.elapsed().as_secs_f64();
    let u1 = usage();
    lat.sort_unstable();
    let n = lat.len() as f64;
    Run {
        ops_per_sec: n / secs,
        cpu_us_per_op: ((u1.user - u0.user) + (u1.sys - u0.sys)) * 1e6 / n,
        user_us: (u1.user - u0.user) * 1e6 / n,
        sys_us: (u1.sys - u0.sys) * 1e6 / n,
        ctx_per_op: (u1.switches - u0.switches) / n,
        p50_us: lat[lat.len() / 2] as f64,
        p99_us: lat[lat.len() * 99 / 100] as f64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut hosts, mut ops, mut conc, mut reps, mut threads) =
        (None, 20_000usize, 64usize, 5usize, 1usize);
    let mut only: Option<String> = None;
    while let Some(a) = args.next() {
        let v = args.next().expect("option value");
        match a.as_str() {
            "--hosts" => hosts = Some(v),
            "--ops" => ops = v.parse().unwrap(),
            "--concurrency" => conc = v.parse().unwrap(),
            "--reps" => reps = v.parse().unwrap(),
            "--threads" => threads = v.parse().unwrap(),
            "--only" => only = Some(v),
            o => panic!("unknown option {o}"),
        }
    }
    let server = match hosts {
        Some(_) => None,
        None => Some(zk_testkit::ZkServer::start().expect("start ZooKeeper")),
    };
    let hosts = hosts.unwrap_or_else(|| server.as_ref().unwrap().connect_string());
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap()
    };
    rt.block_on(async move {
        let ours = zk_core::Client::connect(&hosts).await.expect("zk-core connect");
        let _ = ours.create("/vs-bench", &[b'x'; 100], zk_core::CreateMode::Persistent).await;
        let theirs = zookeeper_client::Client::connect(&hosts).await.expect("zookeeper-client connect");
        // warm-up
        for _ in 0..2 {
            if only.as_deref() != Some("zookeeper-client") {
                let c = ours.clone();
                measure(5000, conc, move || { let c = c.clone(); async move { c.get_data("/vs-bench").await.unwrap(); } }).await;
            }
            if only.as_deref() != Some("zk-core") {
                let c = theirs.clone();
                measure(5000, conc, move || { let c = c.clone(); async move { c.get_data("/vs-bench").await.unwrap(); } }).await;
            }
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for rep in 1..=reps {
            for who in ["zk-core", "zookeeper-client"] {
                if only.as_deref().is_some_and(|o| o != who) {
                    continue;
                }
                let r = if who == "zk-core" {
                    let c = ours.clone();
                    measure(ops, conc, move || { let c = c.clone(); async move { c.get_data("/vs-bench").await.unwrap(); } }).await
                } else {
                    let c = theirs.clone();
                    measure(ops, conc, move || { let c = c.clone(); async move { c.get_data("/vs-bench").await.unwrap(); } }).await
                };
                println!(
                    "{{\"client\":\"{who}\",\"scenario\":\"get\",\"rep\":{rep},\"ops\":{ops},\"concurrency\":{conc},\"threads\":{threads},\"ops_per_sec\":{:.0},\"cpu_us_per_op\":{:.2},\"cpu_user_us_per_op\":{:.2},\"cpu_sys_us_per_op\":{:.2},\"ctx_switches_per_op\":{:.3},\"p50_us\":{:.0},\"p99_us\":{:.0}}}",
                    r.ops_per_sec, r.cpu_us_per_op, r.user_us, r.sys_us, r.ctx_per_op, r.p50_us, r.p99_us
                );
                if who == "zk-core" { a.push(r) } else { b.push(r) }
            }
        }
        if a.is_empty() || b.is_empty() {
            return;
        }
        let med = |v: &Vec<Run>, f: fn(&Run) -> f64| median(v.iter().map(f).collect());
        let (ca, cb) = (med(&a, |r| r.cpu_us_per_op), med(&b, |r| r.cpu_us_per_op));
        eprintln!(
            "medians of {reps}: zk-core {:.0} ops/s, {ca:.2} us CPU/op, p50 {:.0} us | zookeeper-client {:.0} ops/s, {cb:.2} us CPU/op, p50 {:.0} us | CPU ratio {:.2}",
            med(&a, |r| r.ops_per_sec), med(&a, |r| r.p50_us),
            med(&b, |r| r.ops_per_sec), med(&b, |r| r.p50_us), ca / cb
        );
        let _ = ours.delete("/vs-bench", None).await;
        let _ = ours.close().await;
        drop(theirs);
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
}
