//! Safety under churn: connections reset and blackholed, sessions expired for real, while
//! clients take a lock and make fenced writes, or run for leader.

mod common;

use common::bounded;
use rand::Rng;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zk_core::{Client, CreateMode, Op};
use zk_recipes::{Election, Lock};
use zk_testkit::{expire_session, FaultProxy, ZkServer};

const CLIENTS: usize = 10;
const ITERATIONS: usize = 100;

/// Resets, blackholes (some long enough for the session to expire) and real expiries, one
/// after another, until `stop`.
async fn inject_faults(
    server: std::net::SocketAddr,
    proxies: Arc<Vec<FaultProxy>>,
    clients: Arc<Vec<Client>>,
    stop: Arc<AtomicBool>,
) -> [usize; 3] {
    let mut counts = [0; 3];
    while !stop.load(Ordering::SeqCst) {
        let (k, action, hold) = {
            let mut rng = rand::thread_rng();
            (
                rng.gen_range(0..proxies.len()),
                rng.gen_range(0..3),
                rng.gen_range(300..2600),
            )
        };
        match action {
            0 => proxies[k].reset(),
            1 => {
                proxies[k].blackhole();
                tokio::time::sleep(Duration::from_millis(hold)).await;
                proxies[k].heal();
            }
            _ => {
                let (sid, pw) = clients[k].session_credentials();
                let _ = expire_session(server, sid, &pw).await;
            }
        }
        counts[action] += 1;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_exclusion_with_fenced_writes_under_churn() {
    common::init_tracing();
    let server = ZkServer::builder().tick_time(500).start().unwrap();
    let admin = Client::connect(&server.connect_string()).await.unwrap();
    let path = "/churn-lock";
    let counter = "/churn-counter";
    admin
        .create(counter, b"0", CreateMode::Persistent)
        .await
        .unwrap();
    // one marker per applied fenced write, created in the same transaction: the server's count
    let markers = "/churn-writes";
    admin
        .create(markers, b"", CreateMode::Persistent)
        .await
        .unwrap();

    let mut proxies = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let p = FaultProxy::start(server.addr()).await.unwrap();
        let c = Client::builder(p.connect_string())
            .session_timeout(Duration::from_secs(3))
            // the session is short for what the test does; the first one may take longer to get
            .connect_timeout(Duration::from_secs(60))
            .connect()
            .await
            .unwrap();
        proxies.push(p);
        clients.push(c);
    }
    let proxies = Arc::new(proxies);
    let clients = Arc::new(clients);
    let stop = Arc::new(AtomicBool::new(false));
    let faults = tokio::spawn(inject_faults(
        server.addr(),
        proxies.clone(),
        clients.clone(),
        stop.clone(),
    ));

    let successes = Arc::new(AtomicUsize::new(0));
    let ambiguous = Arc::new(AtomicUsize::new(0));
    let lost_then_written = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for (i, c) in clients.iter().cloned().enumerate() {
        let successes = successes.clone();
        let ambiguous = ambiguous.clone();
        let lost_then_written = lost_then_written.clone();
        workers.push(tokio::spawn(async move {
            let lock = Lock::new(&c, path, format!("c{i}"));
            let mut done = 0;
            while done < ITERATIONS {
                let guard = match lock.acquire_timeout(Duration::from_secs(30)).await {
                    Ok(Some(g)) => g,
                    Ok(None) | Err(_) => continue,
                };
                done += 1;
                // read, then a blind write of value + 1: if two holders overlapped, an
                // increment would be lost and the final count would not match
                if let Ok((d, _)) = c.fail_if_disconnected().get_data(counter).await {
                    let v: u64 = String::from_utf8_lossy(&d).parse().unwrap();
                    let held_before = guard.is_held();
                    let r = guard
                        .fenced_multi(vec![
                            Op::set_data(counter, (v + 1).to_string().into_bytes(), None),
                            Op::create(
                                format!("{markers}/w-"),
                                Vec::new(),
                                CreateMode::PersistentSequential,
                            ),
                        ])
                        .await;
                    match r {
                        Ok(_) => {
                            successes.fetch_add(1, Ordering::SeqCst);
                            if !held_before {
                                lost_then_written.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(e) if e.may_have_been_applied() => {
                            ambiguous.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => {}
                    }
                }
                // once lost, a fenced write must fail
                if !guard.is_held() {
                    let r = guard
                        .fenced_multi(vec![Op::set_data(counter, b"999999".to_vec(), None)])
                        .await;
                    assert!(r.is_err(), "a fenced write succeeded after the loss signal");
                }
                let _ = guard.release().await;
            }
            done
        }));
    }
    // every fault on the holder stalls all workers, so allow minutes (a hang still fails)
    for w in workers {
        let done = tokio::time::timeout(Duration::from_secs(240), w)
            .await
            .expect("a worker is stuck")
            .unwrap();
        assert_eq!(done, ITERATIONS);
    }
    stop.store(true, Ordering::SeqCst);
    let counts = bounded("faults", faults).await.unwrap();
    let (d, _) = admin.get_data(counter).await.unwrap();
    let final_count: usize = String::from_utf8_lossy(&d).parse().unwrap();
    let ok = successes.load(Ordering::SeqCst);
    let unknown = ambiguous.load(Ordering::SeqCst);
    let applied = admin.get_children(markers).await.unwrap().len();
    eprintln!(
        "churn: {CLIENTS} clients x {ITERATIONS} iterations; faults: {} resets, {} blackholes, {} expiries; \
         {applied} fenced writes applied ({ok} acknowledged, {unknown} with an unknown outcome)",
        counts[0], counts[1], counts[2]
    );
    assert_eq!(final_count, applied, "lost update: two holders overlapped");
    assert!(
        ok <= applied && applied <= ok + unknown,
        "{ok} acknowledged, {applied} applied, {unknown} unknown"
    );
    assert_eq!(lost_then_written.load(Ordering::SeqCst), 0);
    assert!(ok > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn leaders_never_overlap_while_leaders_are_expired() {
    common::init_tracing();
    let server = ZkServer::builder().tick_time(500).start().unwrap();
    let path = "/election";
    let mut proxies = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..10 {
        let p = FaultProxy::start(server.addr()).await.unwrap();
        let c = Client::builder(p.connect_string())
            .session_timeout(Duration::from_secs(2))
            // the session is short for what the test does; the first one may take longer to get
            .connect_timeout(Duration::from_secs(60))
            .connect()
            .await
            .unwrap();
        proxies.push(p);
        clients.push(c);
    }
    // (candidate, start, end) of every period a candidate believed it led
    let history: Arc<Mutex<Vec<(usize, Instant, Instant)>>> = Arc::default();
    let leader_now: Arc<Mutex<Option<usize>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let phases: Arc<Mutex<Vec<&'static str>>> = Arc::new(Mutex::new(vec!["start"; 10]));
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().cloned().enumerate() {
        let phases = phases.clone();
        let history = history.clone();
        let leader_now = leader_now.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let election = Election::new(&c, path, format!("cand-{i}"));
            let phase = |p: &'static str| phases.lock().unwrap()[i] = p;
            while !stop.load(Ordering::SeqCst) {
                phase("campaign");
                let Ok(Some(lead)) = election.acquire_timeout(Duration::from_secs(2)).await else {
                    continue;
                };
                phase("leading");
                let start = Instant::now();
                *leader_now.lock().unwrap() = Some(i);
                tokio::select! {
                    _ = lead.lost() => {}
                    _ = async { while !stop.load(Ordering::SeqCst) { tokio::time::sleep(Duration::from_millis(20)).await } } => {}
                }
                // the last instant this candidate could have believed it leads
                let end = Instant::now();
                {
                    let mut l = leader_now.lock().unwrap();
                    if *l == Some(i) {
                        *l = None;
                    }
                }
                history.lock().unwrap().push((i, start, end));
                phase("release");
                let _ = lead.release().await;
            }
            phase("done");
        }));
    }
    // partition the current leader until its session expires, five times
    let mut expired = 0;
    let t0 = Instant::now();
    // (a hang detector: five expiries take about 25 s on an idle machine)
    while expired < 5 && t0.elapsed() < Duration::from_secs(300) {
        let leader = *leader_now.lock().unwrap();
        let Some(k) = leader else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        proxies[k].blackhole();
        tokio::time::sleep(Duration::from_millis(3500)).await; // > session timeout + a tick
        proxies[k].heal();
        expired += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .is_err()
        {
            panic!(
                "a candidate is stuck; phases: {:?}; states: {:?}",
                phases.lock().unwrap(),
                clients.iter().map(|c| c.status()).collect::<Vec<_>>()
            );
        }
    }
    let mut h = history.lock().unwrap().clone();
    h.sort_by_key(|x| x.1);
    eprintln!("leadership periods: {}", h.len());
    assert!(
        expired == 5 && h.len() >= 6,
        "too few hand-overs: {} periods",
        h.len()
    );
    for w in h.windows(2) {
        let ((a, _, a_end), (b, b_start, _)) = (w[0], w[1]);
        assert!(
            a_end <= b_start,
            "candidate {b} led from {b_start:?} while {a} still believed it led until {a_end:?}"
        );
    }
}

/// Total semaphore iterations (leases taken) across all clients: `ZK_CHURN_SEMAPHORE_ITERATIONS`,
/// default 300 (about a minute); the acceptance run is 1,000.
fn semaphore_iterations() -> usize {
    std::env::var("ZK_CHURN_SEMAPHORE_ITERATIONS")
        .ok()
        .map(|v| {
            v.parse()
                .expect("ZK_CHURN_SEMAPHORE_ITERATIONS is a number")
        })
        .unwrap_or(300)
}

/// Issue 9, defect 1: a semaphore never has more than `max` holders, with faults. Every holder
/// enters a *fenced set* (a node listing the leases inside, updated by compare-and-set in a
/// transaction fenced by the holder's lease): on entering it reads the set, keeps the entries
/// whose lease still exists, and records a violation if `max` of them are live besides itself.
/// An entry was added while its lease existed and leases are never recreated, so a live entry
/// existed when the set was read, and so did our lease (created before, still there when our
/// fenced write applied): `max + 1` leases at one instant. A sampler lists the leases too.
#[tokio::test(flavor = "multi_thread")]
async fn semaphore_never_exceeds_max_holders_under_churn() {
    const MAX: usize = 2;
    common::init_tracing();
    let total = semaphore_iterations();
    let per_client = total.div_ceil(CLIENTS);
    let server = ZkServer::builder().tick_time(500).start().unwrap();
    let admin = Client::connect(&server.connect_string()).await.unwrap();
    let path = "/churn-sem";
    let inside = "/churn-sem-inside";
    admin
        .create(inside, b"", CreateMode::Persistent)
        .await
        .unwrap();
    let mut proxies = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let p = FaultProxy::start(server.addr()).await.unwrap();
        let c = Client::builder(p.connect_string())
            .session_timeout(Duration::from_secs(3))
            // the session is short for what the test does; the first one may take longer to get
            .connect_timeout(Duration::from_secs(60))
            .connect()
            .await
            .unwrap();
        proxies.push(p);
        clients.push(c);
    }
    let proxies = Arc::new(proxies);
    let clients = Arc::new(clients);
    let stop = Arc::new(AtomicBool::new(false));
    let faults = tokio::spawn(inject_faults(
        server.addr(),
        proxies.clone(),
        clients.clone(),
        stop.clone(),
    ));
    // the server's own view: no listing of the leases ever shows more than MAX
    let sampler = tokio::spawn({
        let (admin, stop) = (admin.clone(), stop.clone());
        async move {
            let (mut peak, mut samples) = (0, 0u64);
            while !stop.load(Ordering::SeqCst) {
                if let Ok(c) = admin.get_children(path).await {
                    peak = peak.max(c.len());
                    samples += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (peak, samples)
        }
    });
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let entered = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for (i, c) in clients.iter().cloned().enumerate() {
        let (violations, entered) = (violations.clone(), entered.clone());
        workers.push(tokio::spawn(async move {
            let sem = zk_recipes::Semaphore::new(&c, path, format!("c{i}"), MAX as u32).unwrap();
            let mut done = 0;
            while done < per_client {
                let lease = match sem.acquire_timeout(Duration::from_secs(30)).await {
                    Ok(Some(g)) => g,
                    Ok(None) | Err(_) => continue,
                };
                done += 1;
                let ours = lease.path().rsplit('/').next().unwrap().to_owned();
                let fc = c.fail_if_disconnected();
                // enter the fenced set (a few tries: the compare-and-set races other holders)
                for _ in 0..20 {
                    let Ok((d, st)) = fc.get_data(inside).await else {
                        break;
                    };
                    let mut live = Vec::new();
                    let mut unsure = false;
                    for name in String::from_utf8_lossy(&d).split_whitespace() {
                        match fc.exists(&format!("{path}/{name}")).await {
                            Ok(Some(_)) => live.push(name.to_owned()),
                            Ok(None) => {}
                            Err(_) => unsure = true,
                        }
                    }
                    if unsure {
                        break;
                    }
                    let over = live.len() >= MAX;
                    let before = live.join(" ");
                    live.push(ours.clone());
                    let r = lease
                        .fenced_multi(vec![Op::set_data(
                            inside,
                            live.join(" ").into_bytes(),
                            Some(st.version),
                        )])
                        .await;
                    match r {
                        Ok(_) => {
                            entered.fetch_add(1, Ordering::SeqCst);
                            if over {
                                violations
                                    .lock()
                                    .unwrap()
                                    .push(format!("c{i} ({ours}) entered beside {before}"));
                            }
                            break;
                        }
                        Err(zk_recipes::GuardError::Zk(zk_core::Error::TransactionFailed {
                            index: 1,
                            ..
                        })) => continue,
                        Err(_) => break,
                    }
                }
                let hold = rand::thread_rng().gen_range(0..30);
                tokio::time::sleep(Duration::from_millis(hold)).await;
                // leave the set (best effort: a dead lease's entry is pruned by the next holder)
                for _ in 0..20 {
                    let Ok((d, st)) = fc.get_data(inside).await else {
                        break;
                    };
                    let text = String::from_utf8_lossy(&d).into_owned();
                    if !text.split_whitespace().any(|n| n == ours) {
                        break;
                    }
                    let rest: Vec<&str> = text.split_whitespace().filter(|n| *n != ours).collect();
                    match fc
                        .set_data(inside, rest.join(" ").as_bytes(), Some(st.version))
                        .await
                    {
                        Err(zk_core::Error::BadVersion) => continue,
                        _ => break,
                    }
                }
                let _ = lease.release().await;
            }
            done
        }));
    }
    for w in workers {
        let done = tokio::time::timeout(Duration::from_secs(300), w)
            .await
            .expect("a worker is stuck")
            .unwrap();
        assert_eq!(done, per_client);
    }
    stop.store(true, Ordering::SeqCst);
    let counts = bounded("faults", faults).await.unwrap();
    let (peak, samples) = bounded("sampler", sampler).await.unwrap();
    let entered = entered.load(Ordering::SeqCst);
    eprintln!(
        "semaphore churn: {CLIENTS} clients x {per_client} leases (max {MAX}); faults: {} resets, \
         {} blackholes, {} expiries; {entered} fenced entries; {samples} listings, peak {peak} leases",
        counts[0], counts[1], counts[2]
    );
    let v = violations.lock().unwrap();
    assert!(v.is_empty(), "more than {MAX} holders: {v:?}");
    assert!(peak <= MAX, "a listing showed {peak} leases");
    assert!(entered > 0);
}
