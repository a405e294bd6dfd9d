//! One campaign: start the servers, the proxies and the clients, play the nemesis, heal, read
//! the final state, and hand the history to the checkers.

use crate::cluster::{ClientNet, Servers};
use crate::history::{History, Recorder};
use crate::nemesis::{self, FaultKind};
use crate::workload::{self, Ctx, Phases, OP_TIMEOUT};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use zk_core::Client;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed of every random choice.
    pub seed: u64,
    /// Length of the run.
    pub duration: Duration,
    /// Workloads (names from [`crate::checker::WORKLOADS`]).
    pub workloads: Vec<String>,
    /// Fault kinds the nemesis may use.
    pub nemeses: Vec<FaultKind>,
    /// One server instead of three.
    pub standalone: bool,
    /// Clients per workload (the watch workload has at least 6: a writer and five watchers).
    pub clients: usize,
    /// Output directory.
    pub out: PathBuf,
}

impl Config {
    /// The quiet period at the end: faults stop `heal_window` before the end.
    pub fn heal_window(&self) -> Duration {
        (self.duration / 4).clamp(Duration::from_secs(5), Duration::from_secs(20))
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Output {
    /// The history.
    pub history: History,
    /// Where it was written.
    pub path: PathBuf,
    /// Harness trouble that leaves the checkers less to judge (a restart that failed, a final
    /// read that did not succeed, clients that did not stop, ...): a run with any is not a
    /// pass (exit 2 unless a violation was found).
    pub problems: Vec<String>,
    /// Harness trouble that does not touch the verdict (a member's log not copied).
    pub notes: Vec<String>,
}

fn workload_fn(
    name: &str,
) -> fn(Ctx) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    match name {
        "lock" => |c| Box::pin(workload::lock::run(c)),
        "semaphore" => |c| Box::pin(workload::semaphore::run(c)),
        "sequence" => |c| Box::pin(workload::sequence::run(c)),
        "register" => |c| Box::pin(workload::register::run(c)),
        "election" => |c| Box::pin(workload::election::run(c)),
        "barrier" => |c| Box::pin(workload::barrier::run_barrier(c)),
        "double-barrier" => |c| {
            let n = c.clients;
            Box::pin(workload::barrier::run_double(c, n))
        },
        _ => |c| Box::pin(workload::watch::run(c)),
    }
}

async fn setup(zk: &Client, w: &str) -> zk_core::Result<()> {
    match w {
        "lock" => workload::lock::setup(zk).await,
        "semaphore" => workload::semaphore::setup(zk).await,
        "sequence" => workload::sequence::setup(zk).await,
        "election" => workload::election::setup(zk).await,
        "barrier" | "double-barrier" => Ok(()),
        "register" => workload::register::setup(zk).await,
        _ => workload::watch::setup(zk).await,
    }
}

async fn finish(zk: &Client, w: &str) -> zk_core::Result<Option<serde_json::Value>> {
    Ok(Some(match w {
        "lock" => workload::lock::finish(zk).await?,
        "sequence" => workload::sequence::finish(zk).await?,
        "register" => workload::register::finish(zk).await?,
        "watch" => workload::watch::finish(zk).await?,
        _ => return Ok(None),
    }))
}

/// Runs a campaign; `log` gets the progress lines (the schedule first).
///
/// # Errors
/// If the servers, the proxies or the harness's own client cannot be started.
pub async fn run(cfg: &Config, log: &(dyn Fn(&str) + Sync)) -> Result<Output, String> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| format!("{}: {e}", cfg.out.display()))?;
    let path = cfg.out.join("history.jsonl");
    let standalone = cfg.standalone;
    let servers = tokio::task::spawn_blocking(move || Servers::start(standalone))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("starting ZooKeeper: {e}"))?;
    let servers = Arc::new(servers);
    log(&format!(
        "servers: {} ({})",
        servers.connect_string(),
        if standalone { "standalone" } else { "ensemble" }
    ));
    let rec = Arc::new(Recorder::new(Some(&path)).map_err(|e| format!("{}: {e}", path.display()))?);
    let admin = admin_client(&servers.connect_string()).await?;
    for w in &cfg.workloads {
        setup(&admin, w)
            .await
            .map_err(|e| format!("setting up {w}: {e}"))?;
    }

    let mut master = StdRng::seed_from_u64(cfg.seed);
    let addrs = servers.addrs();
    let mut nets = Vec::new();
    let mut next_id = 0i64;
    for w in &cfg.workloads {
        let w: &'static str = crate::checker::WORKLOADS
            .iter()
            .copied()
            .find(|k| k == w)
            .ok_or_else(|| format!("unknown workload {w}"))?;
        let n = match w {
            "watch" => cfg.clients.max(6),
            "semaphore" => cfg.clients.max(workload::semaphore::MIN_CLIENTS),
            _ => cfg.clients,
        };
        for i in 0..n {
            let net = ClientNet::start(next_id, w, &addrs)
                .await
                .map_err(|e| format!("starting a proxy: {e}"))?;
            nets.push(((i, n), net));
            next_id += 1;
        }
    }

    let heal_window = cfg.heal_window();
    let active = cfg.duration.saturating_sub(heal_window);
    let mut nemesis_rng = StdRng::seed_from_u64(master.gen());
    // `expire-admitted` and `delete-admission` aim at the semaphore workload's max-1 semaphore
    let kinds: Vec<FaultKind> = cfg
        .nemeses
        .iter()
        .copied()
        .filter(|k| {
            !matches!(k, FaultKind::ExpireAdmitted | FaultKind::DeleteAdmission)
                || cfg.workloads.iter().any(|w| w == "semaphore")
        })
        .collect();
    let schedule = nemesis::schedule(
        &mut nemesis_rng,
        &kinds,
        nets.len(),
        servers.len(),
        workload::SESSION_TIMEOUT.as_millis() as u64,
        active.as_millis() as u64,
    );
    log(&format!(
        "schedule: {} faults in the first {:?}, then {:?} healed",
        schedule.len(),
        active,
        heal_window
    ));
    for f in &schedule {
        let who = match f.target {
            nemesis::Target::Client(c) => format!(" -> client {}", nets[c].1.id),
            _ => String::new(),
        };
        log(&format!("  {f}{who}"));
    }
    rec.meta(json!({
        "seed": cfg.seed,
        "duration_s": cfg.duration.as_secs(),
        "workloads": cfg.workloads,
        "nemeses": cfg.nemeses.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "standalone": cfg.standalone,
        "clients": cfg.clients,
        "schedule": schedule.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        "clients_by_id": nets.iter().map(|(_, n)| json!({"id": n.id, "workload": n.workload})).collect::<Vec<_>>(),
    }));
    // the register's initial value, right after the meta line (the history's first)
    if cfg.workloads.iter().any(|w| w == "register") {
        rec.info(
            -1,
            "register",
            "init",
            0,
            json!({"value": workload::register::INIT}),
        );
    }

    let start = Instant::now();
    let phases = Phases {
        start,
        heal: start + active,
        quiesce: start + active + heal_window / 2,
        end: start + cfg.duration,
    };
    let mut clients = JoinSet::new();
    for (i, net) in &nets {
        let rng = StdRng::seed_from_u64(master.gen());
        let (rec, net, i) = (Arc::clone(&rec), Arc::clone(net), *i);
        let f = workload_fn(net.workload);
        clients.spawn(async move {
            if let Some(ctx) = Ctx::connect(rec, &net, i, rng, phases).await {
                f(ctx).await;
            }
        });
    }
    let only_nets: Vec<Arc<ClientNet>> = nets.iter().map(|(_, n)| Arc::clone(n)).collect();
    let nemesis_task = tokio::spawn(nemesis::play(
        schedule,
        start,
        phases.heal,
        Arc::clone(&servers),
        only_nets.clone(),
        Arc::clone(&rec),
        nemesis_rng,
    ));

    // the heal: every fault ends by itself before `heal`; then make sure
    let mut problems = Vec::new();
    tokio::time::sleep_until(phases.heal).await;
    if tokio::time::timeout(Duration::from_secs(60), nemesis_task)
        .await
        .is_err()
    {
        problems.push("the nemesis did not finish within 60 s of the heal".to_owned());
    }
    only_nets.iter().for_each(|n| n.heal());
    let s = Arc::clone(&servers);
    let healed = tokio::task::spawn_blocking(move || s.heal())
        .await
        .unwrap_or_else(|e| vec![e.to_string()]);
    problems.extend(healed);
    rec.info(-1, "nemesis", "healed", 0, json!({}));
    log("healed; workloads continue until the end");

    let bound = phases.end + OP_TIMEOUT + Duration::from_secs(30);
    while let Ok(Some(_)) = tokio::time::timeout_at(bound, clients.join_next()).await {}
    if !clients.is_empty() {
        problems.push(format!("{} clients did not stop in time", clients.len()));
        clients.abort_all();
    }

    // every client has closed its session: no ephemeral node of theirs may remain
    match tokio::time::timeout(Duration::from_secs(60), ephemerals(&admin)).await {
        Ok(Ok(nodes)) => rec.info(-1, "sessions", "ephemerals", 0, json!({ "nodes": nodes })),
        Ok(Err(e)) => problems.push(format!("listing ephemerals: {e}")),
        Err(_) => problems.push("listing ephemerals: timed out".into()),
    }

    for w in &cfg.workloads {
        let mut last = None;
        for _ in 0..5 {
            match tokio::time::timeout(OP_TIMEOUT, finish(&admin, w)).await {
                Ok(Ok(Some(v))) => {
                    rec.info(-1, w, "final", 0, v);
                    last = None;
                    break;
                }
                Ok(Ok(None)) => {
                    last = None;
                    break;
                }
                Ok(Err(e)) => last = Some(e.to_string()),
                Err(_) => last = Some("timed out".into()),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Some(e) = last {
            problems.push(format!("final read of {w}: {e}"));
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), admin.close()).await;
    rec.flush();
    // the servers' own logs (elections, syncs, truncations) next to the history: the fixtures
    // delete theirs on drop
    let mut notes = Vec::new();
    for i in 0..servers.len() {
        let to = cfg.out.join(format!("member-{i}.log"));
        if let Err(e) = std::fs::copy(servers.member(i).log_path(), &to) {
            notes.push(format!("copying the log of member {i}: {e}"));
        }
    }
    Ok(Output {
        history: rec.history(),
        path,
        problems,
        notes,
    })
}

/// Every ephemeral node under the workloads' roots (the sequence and watch trees hold only
/// persistent nodes and are skipped), with its owner.
async fn ephemerals(zk: &Client) -> zk_core::Result<Vec<serde_json::Value>> {
    let root = workload::ROOT;
    zk.sync(root).await?;
    let mut out = Vec::new();
    let mut todo: Vec<String> = match zk.get_children(root).await {
        Ok(c) => c
            .into_iter()
            .filter(|c| c != "seq" && c != "watch")
            .map(|c| format!("{root}/{c}"))
            .collect(),
        Err(zk_core::Error::NoNode) => return Ok(out),
        Err(e) => return Err(e),
    };
    while let Some(path) = todo.pop() {
        match zk.exists(&path).await? {
            Some(stat) if stat.ephemeral_owner != 0 => {
                out.push(json!({"path": path, "owner": stat.ephemeral_owner}));
            }
            Some(stat) if stat.num_children > 0 => match zk.get_children(&path).await {
                Ok(c) => todo.extend(c.into_iter().map(|c| format!("{path}/{c}"))),
                Err(zk_core::Error::NoNode) => {}
                Err(e) => return Err(e),
            },
            _ => {}
        }
    }
    Ok(out)
}

async fn admin_client(connect: &str) -> Result<Client, String> {
    let mut last = String::new();
    for _ in 0..5 {
        let c = Client::builder(connect)
            .session_timeout(Duration::from_secs(10))
            .request_timeout(Duration::from_secs(10))
            .connect();
        match tokio::time::timeout(Duration::from_secs(20), c).await {
            Ok(Ok(c)) => return Ok(c),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("harness client: {last}"))
}
