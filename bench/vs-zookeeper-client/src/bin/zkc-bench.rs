//! The `zookeeper-client` crate's side of `bench/compare.sh`: zk-bench's scenarios on that
//! crate's public API, with zk-bench's parameters and JSON fields (one object per line), so
//! `bench/table.py` and `bench/plots.py` read its lines unchanged.
//!
//! ```text
//! zkc-bench --hosts H [--server-pid P] [--label L] [--threads T] SCENARIO [options]
//!   get | set | exists | create-delete   --ops N --concurrency C --size B --sessions S
//!                                        --warmup N --nodes K
//!   lock-handoff                         --contenders N --rounds M
//! ```
//!
//! * `get`, `set`, `exists`, `create-delete`: as zk-bench's (`zk-bench/src/scenarios/ops.rs`):
//!   on each of S sessions C tasks, each issuing one request and awaiting its reply before the
//!   next (`get_data`, `set_data`, `check_stat`, `create` + `delete`), so C requests are
//!   pipelined on every session's connection; spread over K nodes of B bytes; a warm-up of N
//!   requests first, not measured.
//! * `lock-handoff`: N sessions queue on one lock through the crate's own lock recipe
//!   (`Client::lock` with a `LockPrefix::new_shared` prefix: each contender watches its
//!   predecessor's node); the first holder keeps it until every other contender is queued,
//!   then each acquires and releases it M times. A release is dropping the `LockClient` (the
//!   crate deletes the node in the background); the handoff latency runs from that drop to the
//!   next contender's `lock()` returning, as zk-bench's runs from `release()` to `acquire()`.
//!   The herd figures zk-bench and kazoo take from their sockets (notifications per release)
//!   are not taken here: the crate has no hook on its connection (they are left out of the
//!   line); the server's view (`wchp`: sessions watching each lock node) is.
//!
//! CPU is this process's (user + system, `getrusage`), latencies go into an HDR histogram as in
//! zk-bench (3 significant digits; `value_at_quantile`, nearest rank), the server's CPU is read
//! from `/proc/PID/stat` over the measured window. The runtime is a current-thread tokio
//! runtime by default (`--threads 1`), as zk-bench's.

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zookeeper_client::{Acls, Client, CreateMode, LockClient, LockOptions, LockPrefix};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: zkc-bench --hosts H [--server-pid P] [--label L] [--threads T] \
    get|set|exists|create-delete|lock-handoff [--ops N] [--concurrency C] [--size B] \
    [--sessions S] [--warmup N] [--nodes K] [--contenders N] [--rounds M]";

struct Args {
    hosts: String,
    server_pid: Option<u32>,
    label: Option<String>,
    threads: usize,
    scenario: String,
    ops: u64,
    concurrency: usize,
    size: usize,
    sessions: usize,
    warmup: u64,
    nodes: usize,
    contenders: usize,
    rounds: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        hosts: String::new(),
        server_pid: None,
        label: None,
        threads: 1,
        scenario: String::new(),
        ops: 20_000,
        concurrency: 64,
        size: 100,
        sessions: 1,
        warmup: 2_000,
        nodes: 16,
        contenders: 100,
        rounds: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--help" || arg == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if !arg.starts_with("--") {
            if !a.scenario.is_empty() {
                return Err(format!("two scenarios: {} and {arg}", a.scenario));
            }
            a.scenario = arg;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let v = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        let num = |v: &str| -> Result<u64, String> {
            v.parse()
                .map_err(|e| format!("{name}: {v:?} is not a whole number: {e}"))
        };
        match name.as_str() {
            "--hosts" => a.hosts = v,
            "--server-pid" => a.server_pid = Some(num(&v)? as u32),
            "--label" => a.label = Some(v),
            "--threads" => a.threads = num(&v)? as usize,
            "--ops" => a.ops = num(&v)?,
            "--concurrency" => a.concurrency = num(&v)? as usize,
            "--size" => a.size = num(&v)? as usize,
            "--sessions" => a.sessions = num(&v)? as usize,
            "--warmup" => a.warmup = num(&v)?,
            "--nodes" => a.nodes = num(&v)? as usize,
            "--contenders" => a.contenders = num(&v)? as usize,
            "--rounds" => a.rounds = num(&v)? as usize,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.hosts.is_empty() {
        return Err("--hosts is required (bench/compare.sh starts the server)".into());
    }
    if !matches!(
        a.scenario.as_str(),
        "get" | "set" | "exists" | "create-delete" | "lock-handoff"
    ) {
        return Err(format!("unknown or missing scenario {:?}", a.scenario));
    }
    if a.concurrency < 1 || a.sessions < 1 || a.nodes < 1 || a.contenders < 2 || a.rounds < 1 {
        return Err("--concurrency, --sessions, --nodes, --rounds >= 1; --contenders >= 2".into());
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("zkc-bench: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .expect("a tokio runtime");
    let result = rt.block_on(async {
        if args.scenario == "lock-handoff" {
            lock_handoff(&args).await
        } else {
            run_ops(&args).await
        }
    });
    let out = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("zkc-bench: {} failed: {e}", args.scenario);
            std::process::exit(1);
        }
    };
    let mut line = Map::new();
    line.insert("client".into(), json!("zookeeper-client"));
    line.insert("threads".into(), json!(args.threads));
    if let Some(l) = &args.label {
        line.insert("label".into(), json!(l));
    }
    line.extend(out);
    println!("{}", Value::Object(line));
    // the sessions' background tasks end with the runtime
    drop(rt);
}

// ------------------------------------------------------------------ measuring

#[derive(Clone, Copy, Default)]
struct Usage {
    user: f64,
    sys: f64,
    switches: u64,
}

fn usage() -> Usage {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Usage::default();
    }
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        user: s(ru.ru_utime),
        sys: s(ru.ru_stime),
        switches: (ru.ru_nvcsw + ru.ru_nivcsw) as u64,
    }
}

/// utime + stime of process `pid` in seconds, from /proc/PID/stat.
fn process_cpu(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let f: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 })
}

fn r3(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 1000.0).round() / 1000.0 + 0.0)
    } else {
        Value::Null
    }
}

/// zk-bench's common fields (`report::throughput`).
fn throughput(o: &mut Map<String, Value>, ops: u64, secs: f64, u0: Usage, u1: Usage) {
    let (user, sys) = (u1.user - u0.user, u1.sys - u0.sys);
    let per_op = |x: f64| if ops > 0 { x / ops as f64 } else { 0.0 };
    o.insert("ops".into(), json!(ops));
    o.insert("seconds".into(), r3(secs));
    o.insert(
        "ops_per_sec".into(),
        r3(if secs > 0.0 { ops as f64 / secs } else { 0.0 }),
    );
    o.insert("cpu_seconds".into(), r3(user + sys));
    o.insert("cpu_us_per_op".into(), r3(per_op((user + sys) * 1e6)));
    o.insert("cpu_user_us_per_op".into(), r3(per_op(user * 1e6)));
    o.insert("cpu_sys_us_per_op".into(), r3(per_op(sys * 1e6)));
    o.insert(
        "ctx_switches_per_op".into(),
        r3(per_op(u1.switches.saturating_sub(u0.switches) as f64)),
    );
}

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits are supported")
}

fn record(h: &mut Histogram<u64>, us: u64) {
    if h.record(us).is_err() {
        h.saturating_record(us);
    }
}

/// zk-bench's latency fields (`report::Latencies::report`), nulls without samples.
fn latency_fields(o: &mut Map<String, Value>, h: &Histogram<u64>) {
    let q = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
    o.insert("p50_us".into(), json!(q(0.50)));
    o.insert("p90_us".into(), json!(q(0.90)));
    o.insert("p99_us".into(), json!(q(0.99)));
    o.insert("p999_us".into(), json!(q(0.999)));
    o.insert("max_us".into(), json!((!h.is_empty()).then(|| h.max())));
}

fn server_fields(o: &mut Map<String, Value>, pid: Option<u32>, cpu0: Option<f64>, ops: u64) {
    let d = match (cpu0, process_cpu(pid)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    o.insert("server_cpu_seconds".into(), d.map_or(Value::Null, r3));
    o.insert(
        "server_cpu_us_per_op".into(),
        d.filter(|_| ops > 0)
            .map_or(Value::Null, |s| r3(s * 1e6 / ops as f64)),
    );
}

fn base_path(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    format!("/zk-bench/{what}-zkc-{}-{nanos}", std::process::id())
}

async fn connect(hosts: &str) -> Result<Client, BoxError> {
    Ok(Client::connector()
        .with_session_timeout(Duration::from_secs(20))
        .connect(hosts)
        .await?)
}

fn persistent() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

/// Creates `path` and its missing parents.
async fn ensure_path(c: &Client, path: &str) -> Result<(), BoxError> {
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match c.create(&at, &[], &persistent()).await {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Deletes `path` and everything under it.
async fn delete_recursive(c: &Client, path: &str) -> Result<(), BoxError> {
    let mut stack = vec![path.to_owned()];
    let mut order = Vec::new();
    while let Some(p) = stack.pop() {
        for child in c.list_children(&p).await? {
            stack.push(format!("{p}/{child}"));
        }
        order.push(p);
    }
    for p in order.iter().rev() {
        match c.delete(p, None).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ get / set / ...

struct Work {
    kind: String,
    concurrency: usize,
    base: Arc<str>,
    data: Arc<[u8]>,
    paths: Arc<[String]>,
}

/// `total` requests, `concurrency` in flight on each client; every latency in µs.
async fn drive(
    clients: &[Client],
    w: &Work,
    total: u64,
    tag: &'static str,
) -> Result<Vec<u32>, BoxError> {
    let next = Arc::new(AtomicU64::new(0));
    let per_task = total as usize / (clients.len() * w.concurrency) + 2;
    let create_delete = w.kind == "create-delete";
    let mut tasks = Vec::new();
    for (si, c) in clients.iter().enumerate() {
        for wi in 0..w.concurrency {
            let c = c.clone();
            let next = next.clone();
            let (kind, base, data, paths) = (
                w.kind.clone(),
                w.base.clone(),
                w.data.clone(),
                w.paths.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::<u32>::with_capacity(per_task);
                let micros = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
                let step = if create_delete { 2 } else { 1 };
                loop {
                    let i = next.fetch_add(step, Ordering::Relaxed);
                    if i + step > total {
                        break;
                    }
                    let path = &paths[i as usize % paths.len()];
                    let t0 = Instant::now();
                    match kind.as_str() {
                        "get" => {
                            c.get_data(path).await?;
                        }
                        "set" => {
                            c.set_data(path, &data, None).await?;
                        }
                        "exists" => {
                            c.check_stat(path).await?;
                        }
                        _ => {
                            let p = format!("{base}/{tag}{si}-{wi}-{i}");
                            c.create(&p, &data, &persistent()).await?;
                            let t1 = Instant::now();
                            lat.push(micros(t1 - t0));
                            c.delete(&p, None).await?;
                            lat.push(micros(t1.elapsed()));
                            continue;
                        }
                    }
                    lat.push(micros(t0.elapsed()));
                }
                Ok::<_, zookeeper_client::Error>(lat)
            }));
        }
    }
    let mut all = Vec::with_capacity(total as usize);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

async fn run_ops(a: &Args) -> Result<Map<String, Value>, BoxError> {
    let mut clients = Vec::with_capacity(a.sessions);
    for _ in 0..a.sessions {
        clients.push(connect(&a.hosts).await?);
    }
    let base = base_path(&a.scenario);
    ensure_path(&clients[0], &base).await?;
    let data: Arc<[u8]> = vec![b'x'; a.size].into();
    let paths: Arc<[String]> = (0..a.nodes).map(|i| format!("{base}/n{i}")).collect();
    if a.scenario != "create-delete" {
        for p in paths.iter() {
            clients[0].create(p, &data, &persistent()).await?;
        }
    }
    let w = Work {
        kind: a.scenario.clone(),
        concurrency: a.concurrency,
        base: base.clone().into(),
        data,
        paths,
    };
    if a.warmup > 0 {
        drive(&clients, &w, a.warmup, "w").await?;
    }
    let server0 = process_cpu(a.server_pid);
    let u0 = usage();
    let t0 = Instant::now();
    let samples = drive(&clients, &w, a.ops, "m").await?;
    let secs = t0.elapsed().as_secs_f64();
    let u1 = usage();
    let mut h = histogram();
    for &us in &samples {
        record(&mut h, u64::from(us));
    }
    let mut o = Map::new();
    o.insert("scenario".into(), json!(a.scenario));
    o.insert(
        "params".into(),
        json!({"concurrency": a.concurrency, "nodes": a.nodes, "ops": a.ops,
               "sessions": a.sessions, "size": a.size}),
    );
    let n = samples.len() as u64;
    throughput(&mut o, n, secs, u0, u1);
    latency_fields(&mut o, &h);
    server_fields(&mut o, a.server_pid, server0, n);
    delete_recursive(&clients[0], &base).await?;
    drop(clients);
    Ok(o)
}

// ------------------------------------------------------------------ lock-handoff

struct Shared {
    epoch: Instant,
    /// ns since `epoch` at which the last holder started its release (0: none yet).
    last_release: AtomicU64,
    latencies: Mutex<Histogram<u64>>,
    acquisitions: Mutex<Vec<Instant>>,
}

impl Shared {
    fn acquired(&self) {
        let now = Instant::now();
        let prev = self.last_release.load(Ordering::Acquire);
        if prev != 0 {
            let since = now.duration_since(self.epoch).as_nanos() as u64;
            record(
                &mut self.latencies.lock().unwrap(),
                since.saturating_sub(prev) / 1000,
            );
        }
        self.acquisitions.lock().unwrap().push(now);
    }

    fn releasing(&self) {
        let ns = (self.epoch.elapsed().as_nanos() as u64).max(1);
        self.last_release.store(ns, Ordering::Release);
    }
}

/// `wchp` of the server: sessions watching each node whose path starts with `prefix`.
async fn watchers_under(hosts: &str, prefix: &str) -> Result<HashMap<String, usize>, BoxError> {
    let first = hosts.split(',').next().unwrap_or(hosts);
    let first = first.split('/').next().unwrap_or(first).to_owned();
    let addr = tokio::net::lookup_host(first)
        .await?
        .next()
        .ok_or("--hosts names no server")?;
    let out = tokio::task::spawn_blocking(move || zk_testkit::four_letter(addr, "wchp")).await??;
    let mut m = HashMap::new();
    let mut cur: Option<String> = None;
    for line in out.lines() {
        if line.starts_with(char::is_whitespace) {
            if let (Some(p), false) = (&cur, line.trim().is_empty()) {
                *m.entry(p.clone()).or_default() += 1;
            }
        } else {
            let p = line.trim();
            cur = p.starts_with(prefix).then(|| p.to_owned());
        }
    }
    Ok(m)
}

/// One acquisition of the crate's lock recipe (ephemeral sequential `{prefix}N`, watching the
/// predecessor); the lock is held until the returned `LockClient` is dropped.
async fn take_lock<'a>(
    c: &'a Client,
    prefix: &str,
    data: &[u8],
) -> Result<LockClient<'a>, zookeeper_client::Error> {
    c.lock(
        LockPrefix::new_shared(prefix)?,
        data,
        LockOptions::new(Acls::anyone_all()),
    )
    .await
}

async fn lock_handoff(a: &Args) -> Result<Map<String, Value>, BoxError> {
    let (n, rounds) = (a.contenders, a.rounds);
    let mut clients = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let batch = chunk.iter().map(|_| connect(&a.hosts));
        clients.extend(futures::future::try_join_all(batch).await?);
    }
    let base = base_path("lock-handoff");
    let path = format!("{base}/lock");
    ensure_path(&clients[0], &path).await?;

    let mut rtt = histogram();
    for _ in 0..200 {
        let t = Instant::now();
        clients[0].check_stat(&path).await?;
        record(&mut rtt, t.elapsed().as_micros() as u64);
    }
    let rtt_p50 = rtt.value_at_quantile(0.5);

    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        last_release: AtomicU64::new(0),
        latencies: Mutex::new(histogram()),
        acquisitions: Mutex::new(Vec::with_capacity(n * rounds)),
    });
    let (held_tx, held_rx) = tokio::sync::watch::channel(false);
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let prefix: Arc<str> = format!("{path}/lock-").into();
    let mut tasks = Vec::with_capacity(n);
    for (i, c) in clients.iter().enumerate() {
        let c = c.clone();
        let shared = shared.clone();
        let prefix = prefix.clone();
        let (held_tx, mut held_rx, mut go_rx) = (held_tx.clone(), held_rx.clone(), go_rx.clone());
        tasks.push(tokio::spawn(async move {
            let data = format!("contender-{i}");
            let lock = || take_lock(&c, &prefix, data.as_bytes());
            for r in 0..rounds {
                if r == 0 {
                    if i == 0 {
                        let g = lock().await?;
                        let _ = held_tx.send(true);
                        let _ = go_rx.wait_for(|g| *g).await;
                        shared.releasing();
                        drop(g);
                        continue;
                    }
                    let _ = held_rx.wait_for(|h| *h).await;
                }
                let g = lock().await?;
                shared.acquired();
                shared.releasing();
                drop(g);
            }
            Ok::<_, zookeeper_client::Error>(())
        }));
    }
    drop(held_tx);
    let _ = held_rx.clone().wait_for(|h| *h).await;
    let until = Instant::now() + Duration::from_secs(120);
    let watchers = loop {
        let children = clients[0].list_children(&path).await?.len();
        let w = watchers_under(&a.hosts, &format!("{path}/")).await?;
        // N nodes; N-1 waiters each watching its predecessor
        if children == n && w.values().sum::<usize>() >= n - 1 {
            break w;
        }
        if Instant::now() > until {
            return Err(
                format!("{n} contenders did not queue within 120 s ({children} nodes)").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let server0 = process_cpu(a.server_pid);
    let u0 = usage();
    let go_at = Instant::now();
    let _ = go_tx.send(true);
    for t in tasks {
        t.await??;
    }
    let u1 = usage();
    let acq = shared.acquisitions.lock().unwrap().clone();
    let handoffs = acq.len() as u64;
    let secs = acq
        .iter()
        .max()
        .map_or(0.0, |last| last.duration_since(go_at).as_secs_f64());
    let lat = shared.latencies.lock().unwrap().clone();

    let mut o = Map::new();
    o.insert("scenario".into(), json!("lock-handoff"));
    o.insert("params".into(), json!({"contenders": n, "rounds": rounds}));
    throughput(&mut o, handoffs, secs, u0, u1);
    latency_fields(&mut o, &lat);
    server_fields(&mut o, a.server_pid, server0, handoffs);
    o.insert("releases".into(), json!(n * rounds));
    o.insert(
        "server_max_watchers_per_node".into(),
        json!(watchers.values().copied().max().unwrap_or(0)),
    );
    o.insert("rtt_p50_us".into(), json!(rtt_p50));
    if !lat.is_empty() {
        let r = rtt_p50.max(1) as f64;
        o.insert(
            "handoff_p50_in_rtts".into(),
            r3(lat.value_at_quantile(0.5) as f64 / r),
        );
        o.insert(
            "handoff_p90_in_rtts".into(),
            r3(lat.value_at_quantile(0.9) as f64 / r),
        );
    }
    // the last releases' background deletes: wait for them before removing the tree
    let until = Instant::now() + Duration::from_secs(30);
    while !clients[0].list_children(&path).await?.is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    delete_recursive(&clients[0], &base).await?;
    drop(clients);
    Ok(o)
}
