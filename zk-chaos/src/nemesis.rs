//! The nemesis: a schedule of faults drawn from the seed before the run starts, then played.

use crate::cluster::{ClientNet, Servers};
use crate::history::Recorder;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// RST every connection of one client.
    Reset,
    /// Silence one client's traffic for 0.1x-2x the session timeout.
    Blackhole,
    /// Delay with jitter on one client's traffic.
    Delay,
    /// The next write of one client is applied, then its connection is cut before the reply.
    Cut,
    /// Expire one client's session on the server.
    Expire,
    /// Expire the session of the client that holds the max-1 semaphore's admission lock while
    /// it waits for room (found from the server's state when the fault starts; semaphore
    /// workload only).
    ExpireAdmitted,
    /// The same waiter's next lease create is held on the wire (in its proxy) while the
    /// nemesis deletes its admission node, as an operator clearing a "stuck" lock would, and
    /// is let go [`HOLD_AFTER_DELETE`] later: the create reaches the server after another
    /// waiter was admitted (semaphore workload only).
    DeleteAdmission,
    /// SIGSTOP one server for 0.1x-2x the session timeout.
    Pause,
    /// SIGKILL one server, restart it later.
    Kill,
    /// SIGKILL the leader (ensemble only), restart it later.
    LeaderKill,
    /// Cut one member off from the other members (ensemble only); clients still reach it.
    Partition,
    /// Cut the leader off from the other members (ensemble only).
    PartitionLeader,
    /// Cut one member that follows at that moment off from the others (ensemble only): the
    /// leader keeps its quorum. Not in the default set (see [`FaultKind::DEFAULT`]).
    PartitionFollower,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 13] = [
        FaultKind::Reset,
        FaultKind::Blackhole,
        FaultKind::Delay,
        FaultKind::Cut,
        FaultKind::Expire,
        FaultKind::ExpireAdmitted,
        FaultKind::DeleteAdmission,
        FaultKind::Pause,
        FaultKind::Kill,
        FaultKind::LeaderKill,
        FaultKind::Partition,
        FaultKind::PartitionLeader,
        FaultKind::PartitionFollower,
    ];

    /// The kinds a run uses when none is given: every kind but `partition-follower` (a
    /// narrower `partition`).
    pub const DEFAULT: [FaultKind; 12] = [
        FaultKind::Reset,
        FaultKind::Blackhole,
        FaultKind::Delay,
        FaultKind::Cut,
        FaultKind::Expire,
        FaultKind::ExpireAdmitted,
        FaultKind::DeleteAdmission,
        FaultKind::Pause,
        FaultKind::Kill,
        FaultKind::LeaderKill,
        FaultKind::Partition,
        FaultKind::PartitionLeader,
    ];

    /// Its name on the command line and in the history.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Reset => "reset",
            FaultKind::Blackhole => "blackhole",
            FaultKind::Delay => "delay",
            FaultKind::Cut => "cut",
            FaultKind::Expire => "expire",
            FaultKind::ExpireAdmitted => "expire-admitted",
            FaultKind::DeleteAdmission => "delete-admission",
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
            FaultKind::LeaderKill => "leader-kill",
            FaultKind::Partition => "partition",
            FaultKind::PartitionLeader => "partition-leader",
            FaultKind::PartitionFollower => "partition-follower",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == s)
    }

    fn on_server(self) -> bool {
        matches!(
            self,
            FaultKind::Pause
                | FaultKind::Kill
                | FaultKind::LeaderKill
                | FaultKind::Partition
                | FaultKind::PartitionLeader
                | FaultKind::PartitionFollower
        )
    }

    /// Whether the fault needs an ensemble (a leader, members to cut apart).
    pub fn ensemble_only(self) -> bool {
        matches!(
            self,
            FaultKind::LeaderKill
                | FaultKind::Partition
                | FaultKind::PartitionLeader
                | FaultKind::PartitionFollower
        )
    }
}

/// What a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One client (index into the client list).
    Client(usize),
    /// One member.
    Member(usize),
    /// Whoever leads when the fault starts.
    Leader,
    /// The `k`-th (modulo their number) of the members that do not lead when the fault starts.
    Follower(usize),
    /// The client holding the max-1 semaphore's admission lock while it waits for room, when
    /// the fault starts.
    Admitted,
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Start, in milliseconds after the run started.
    pub at_ms: u64,
    /// Kind.
    pub kind: FaultKind,
    /// Target.
    pub target: Target,
    /// How long it lasts (0: instantaneous).
    pub dur_ms: u64,
    /// Kind-specific: the maximum delay (delay) or the trapped opcode (cut).
    pub param: u64,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match self.target {
            Target::Client(c) => format!("client#{c}"),
            Target::Member(m) => format!("member{m}"),
            Target::Leader => "leader".into(),
            Target::Follower(k) => format!("follower{k}"),
            Target::Admitted => "admitted".into(),
        };
        write!(
            f,
            "{:>7.1}s {:<11} {:<9} {:>6} ms",
            self.at_ms as f64 / 1000.0,
            self.kind.name(),
            target,
            self.dur_ms
        )?;
        match self.kind {
            FaultKind::Delay => write!(f, " (up to {} ms)", self.param),
            FaultKind::Cut => write!(f, " (opcode {})", self.param),
            _ => Ok(()),
        }
    }
}

/// Draws the schedule: faults start every 0.5-3 s during `[1 s, active_ms)`; client faults may
/// overlap each other, server faults never overlap each other; every fault ends by
/// `active_ms`. Only the kinds given are used (leader kill only with more than one member).
pub fn schedule(
    rng: &mut StdRng,
    kinds: &[FaultKind],
    clients: usize,
    members: usize,
    session_timeout_ms: u64,
    active_ms: u64,
) -> Vec<Fault> {
    let kinds: Vec<FaultKind> = kinds
        .iter()
        .copied()
        .filter(|k| !k.ensemble_only() || members > 1)
        .filter(|k| clients > 0 || k.on_server())
        .collect();
    let mut out = Vec::new();
    if kinds.is_empty() {
        return out;
    }
    let mut t = 1000 + rng.gen_range(0..1000u64);
    let mut server_free = 0u64;
    while t < active_ms {
        let kind = kinds[rng.gen_range(0..kinds.len())];
        let scale = |rng: &mut StdRng| (session_timeout_ms as f64 * rng.gen_range(0.1..2.0)) as u64;
        let (dur_ms, param) = match kind {
            FaultKind::Reset
            | FaultKind::Expire
            | FaultKind::ExpireAdmitted
            | FaultKind::DeleteAdmission => (0, 0),
            FaultKind::Blackhole | FaultKind::Pause => (scale(rng), 0),
            FaultKind::Delay => (rng.gen_range(1000..5000), rng.gen_range(20..300)),
            FaultKind::Cut => (3000, [15u64, 2, 5, 14][rng.gen_range(0..4)]),
            FaultKind::Kill | FaultKind::LeaderKill => (rng.gen_range(1000..5000), 0),
            FaultKind::Partition | FaultKind::PartitionLeader | FaultKind::PartitionFollower => (
                (session_timeout_ms as f64 * rng.gen_range(0.5..3.0)) as u64,
                0,
            ),
        };
        let target = match kind {
            FaultKind::LeaderKill | FaultKind::PartitionLeader => Target::Leader,
            FaultKind::PartitionFollower => Target::Follower(rng.gen_range(0..members - 1)),
            FaultKind::ExpireAdmitted | FaultKind::DeleteAdmission => Target::Admitted,
            k if k.on_server() => Target::Member(rng.gen_range(0..members)),
            _ => Target::Client(rng.gen_range(0..clients)),
        };
        let mut at = t;
        if kind.on_server() {
            at = at.max(server_free);
        }
        if at + dur_ms < active_ms {
            if kind.on_server() {
                // a restarted JVM needs a few seconds before the next server fault
                server_free = at + dur_ms + 3000;
            }
            out.push(Fault {
                at_ms: at,
                kind,
                target,
                dur_ms,
                param,
            });
        }
        t += rng.gen_range(500..3000);
    }
    out.sort_by_key(|f| f.at_ms);
    out
}

/// How long a member may take to serve again after its fault before the nemesis gives up on
/// it (it is past the heal then, and the heal waits for the quorum itself).
const SERVE_AGAIN_SLACK: Duration = Duration::from_secs(30);

/// Plays the schedule from `start`. Client faults start on schedule. Server faults run one at
/// a time: a server fault's slot ends when its member serves again (a restarted JVM, a resumed
/// or re-joined member), which may be well after its nominal end, so the next server fault is
/// delayed until then, or skipped if it would then not end before `heal`. The history says what
/// ran: a `fault` event when a fault starts (with `n`, its index in the schedule,
/// `delayed_ms`, and `started_ms` after `start`, the schedule's frame), a `fault-end` event
/// (`ended_ms`) when it ended (for a server fault: when its member served
/// again), a `fault-skipped` event with the reason for a fault that did not run. Returns when
/// all have ended.
pub async fn play(
    schedule: Vec<Fault>,
    start: Instant,
    heal: Instant,
    servers: Arc<Servers>,
    nets: Vec<Arc<ClientNet>>,
    rec: Arc<Recorder>,
    mut rng: StdRng,
) {
    let mut tasks = JoinSet::new();
    let mut server_faults = Vec::new();
    for (n, fault) in schedule.into_iter().enumerate() {
        // drawn for every fault in schedule order, so the seed decides each one's jitter
        let jitter_seed: u64 = rng.gen();
        if fault.kind.on_server() {
            server_faults.push((n, fault, jitter_seed));
            continue;
        }
        let servers = Arc::clone(&servers);
        let nets = nets.clone();
        let rec = Arc::clone(&rec);
        tasks.spawn(async move {
            tokio::time::sleep_until(start + Duration::from_millis(fault.at_ms)).await;
            let when = (start, heal);
            inject(n, &fault, 0, &servers, &nets, &rec, jitter_seed, when).await;
        });
    }
    tasks.spawn(async move {
        // when the member of the last server fault served again
        let mut free = start;
        for (n, fault, jitter_seed) in server_faults {
            let at = start + Duration::from_millis(fault.at_ms);
            let begin = at.max(free);
            let delayed_ms = (begin - at).as_millis() as u64;
            if begin + Duration::from_millis(fault.dur_ms) > heal {
                rec.info(
                    -1,
                    "nemesis",
                    "fault-skipped",
                    0,
                    json!({
                        "n": n,
                        "kind": fault.kind.name(),
                        "dur_ms": fault.dur_ms,
                        "param": fault.param,
                        "delayed_ms": delayed_ms,
                        "reason": format!(
                            "the previous server fault's member served again only at {:.1} s, so it would not end before the heal at {:.1} s",
                            (free - start).as_secs_f64(),
                            (heal - start).as_secs_f64()
                        ),
                    }),
                );
                continue;
            }
            tokio::time::sleep_until(begin).await;
            inject(
                n,
                &fault,
                delayed_ms,
                &servers,
                &nets,
                &rec,
                jitter_seed,
                (start, heal),
            )
            .await;
            free = Instant::now();
        }
    });
    while tasks.join_next().await.is_some() {}
}

#[allow(clippy::too_many_arguments)]
async fn inject(
    n: usize,
    f: &Fault,
    delayed_ms: u64,
    servers: &Arc<Servers>,
    nets: &[Arc<ClientNet>],
    rec: &Recorder,
    seed: u64,
    (start, heal): (Instant, Instant),
) {
    let dur = Duration::from_millis(f.dur_ms);
    // in the schedule's frame (ms after the run started), not the history's
    let since_start = || Instant::now().saturating_duration_since(start).as_millis() as u64;
    let mut details = json!({
        "n": n,
        "kind": f.kind.name(),
        "dur_ms": f.dur_ms,
        "param": f.param,
        "delayed_ms": delayed_ms,
    });
    let net = match f.target {
        Target::Client(c) => nets.get(c),
        _ => None,
    };
    if let Some(n) = net {
        details["client"] = json!(n.id);
    }
    let member = match f.target {
        Target::Member(m) => Some(m),
        Target::Leader => {
            let s = Arc::clone(servers);
            tokio::task::spawn_blocking(move || s.leader())
                .await
                .ok()
                .flatten()
        }
        Target::Follower(k) => {
            let s = Arc::clone(servers);
            tokio::task::spawn_blocking(move || s.follower(k))
                .await
                .ok()
                .flatten()
        }
        Target::Client(_) | Target::Admitted => None,
    };
    if let Some(m) = member {
        details["member"] = json!(m);
    }
    details["started_ms"] = json!(since_start());
    rec.info(-1, "nemesis", "fault", 0, details.clone());
    let began = Instant::now();
    let result: Result<(), String> = match (f.kind, net, member) {
        (FaultKind::Reset, Some(n), _) => {
            n.proxies.iter().for_each(|p| p.reset());
            Ok(())
        }
        (FaultKind::Blackhole, Some(n), _) => {
            n.proxies.iter().for_each(|p| p.blackhole());
            tokio::time::sleep(dur).await;
            n.proxies.iter().for_each(|p| p.heal());
            Ok(())
        }
        (FaultKind::Delay, Some(n), _) => {
            use rand::SeedableRng;
            let mut rng = StdRng::seed_from_u64(seed);
            let until = Instant::now() + dur;
            while Instant::now() < until {
                let d = Duration::from_millis(rng.gen_range(0..=f.param.max(1)));
                n.proxies.iter().for_each(|p| p.set_delay(d));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            n.proxies.iter().for_each(|p| p.set_delay(Duration::ZERO));
            Ok(())
        }
        (FaultKind::Cut, Some(n), _) => {
            // one trap shared by the client's proxies: one cut, through whichever member
            let before = n.cuts_fired();
            n.arm_cut(f.param as i32);
            tokio::time::sleep(dur).await;
            n.proxies.iter().for_each(|p| p.disarm_cut());
            details["cuts"] = json!(n.cuts_fired() - before);
            Ok(())
        }
        (FaultKind::Expire, Some(n), _) => match n.current() {
            Some(c) => {
                details["session"] = json!(c.session_id());
                expire(n, &c, servers).await
            }
            None => Err("client not connected yet".into()),
        },
        (FaultKind::ExpireAdmitted, _, _) => match nemesis_client(servers).await {
            Ok(zk) => {
                let r = match find_admitted(&zk, nets).await {
                    Ok((n, c, _, waited)) => {
                        details["client"] = json!(n.id);
                        details["session"] = json!(c.session_id());
                        details["found_after_ms"] = json!(waited.as_millis() as u64);
                        expire(n, &c, servers).await
                    }
                    Err(e) => Err(e),
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), zk.close()).await;
                r
            }
            Err(e) => Err(e),
        },
        (FaultKind::DeleteAdmission, _, _) => match nemesis_client(servers).await {
            Ok(zk) => {
                let r = match find_admitted(&zk, nets).await {
                    Ok((n, c, node, waited)) => {
                        details["client"] = json!(n.id);
                        details["session"] = json!(c.session_id());
                        details["found_after_ms"] = json!(waited.as_millis() as u64);
                        details["node"] = json!(node);
                        hold_and_delete(n, &zk, &node, &mut details).await
                    }
                    Err(e) => Err(e),
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), zk.close()).await;
                r
            }
            Err(e) => Err(e),
        },
        (FaultKind::Pause, _, Some(m)) => {
            let s = Arc::clone(servers);
            blocking(move || s.pause_for(m, dur)).await
        }
        (FaultKind::Kill | FaultKind::LeaderKill, _, Some(m)) => {
            let s = Arc::clone(servers);
            blocking(move || s.kill_restart(m, dur)).await
        }
        (
            FaultKind::Partition | FaultKind::PartitionLeader | FaultKind::PartitionFollower,
            _,
            Some(m),
        ) => {
            servers.isolate(m);
            tokio::time::sleep(dur).await;
            servers.heal_partition();
            Ok(())
        }
        _ => Err("no target".into()),
    };
    if let Err(e) = &result {
        details["error"] = json!(e);
    }
    if let Some(m) = member {
        // the slot ends when the member serves again
        let nominal_end = began + dur;
        let bound = (heal + SERVE_AGAIN_SLACK).saturating_duration_since(Instant::now());
        let s = Arc::clone(servers);
        let served = tokio::task::spawn_blocking(move || s.wait_serving(m, bound))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        details["serving"] = json!(served.is_ok());
        details["serving_after_ms"] = json!(Instant::now()
            .saturating_duration_since(nominal_end)
            .as_millis() as u64);
        if let Err(e) = served {
            details["serving_error"] = json!(e);
        }
    }
    details["ended_ms"] = json!(since_start());
    rec.info(-1, "nemesis", "fault-end", 0, details);
}

/// Expires client `c`'s session for real (zk-testkit's `expire_session`) through the member it
/// is connected to (else the first one).
async fn expire(n: &ClientNet, c: &zk_core::Client, servers: &Servers) -> Result<(), String> {
    let (id, pw) = c.session_credentials();
    let status = c.status();
    let addr = status
        .server
        .as_deref()
        .and_then(|s| {
            n.proxies
                .iter()
                .find(|p| p.connect_string() == s)
                .map(|p| p.upstream())
        })
        .unwrap_or_else(|| servers.member(0).addr());
    zk_testkit::expire_session(addr, id, &pw)
        .await
        .map_err(|e| e.to_string())
}

/// How long `expire-admitted` and `delete-admission` look for an admitted waiter before they
/// give up.
const FIND_ADMITTED_FOR: Duration = Duration::from_secs(3);
/// How long `delete-admission` waits for the admitted waiter's next create (it waits for room).
const HOLD_WAIT: Duration = Duration::from_secs(5);
/// How long `delete-admission` keeps the create held after the deletion: time for the next
/// waiter to be admitted and create its lease. Well below the read timeout of the workload's
/// sessions, since the held client's pings wait too.
pub const HOLD_AFTER_DELETE: Duration = Duration::from_millis(500);

/// The nemesis' own direct client (no proxy), for reading the server's state.
async fn nemesis_client(servers: &Servers) -> Result<zk_core::Client, String> {
    tokio::time::timeout(
        Duration::from_secs(5),
        zk_core::Client::builder(servers.connect_string())
            .session_timeout(Duration::from_secs(10))
            .request_timeout(Duration::from_secs(3))
            .connect(),
    )
    .await
    .map_err(|_| "the nemesis' own client did not connect within 5 s".to_owned())?
    .map_err(|e| format!("the nemesis' own client: {e}"))
}

/// The client (and its current session's handle) that holds the max-1 semaphore's admission
/// lock while it waits for room, with its admission node, looked for every 100 ms for at most
/// [`FIND_ADMITTED_FOR`] with the nemesis' own client; with how long that took.
async fn find_admitted<'a>(
    zk: &zk_core::Client,
    nets: &'a [Arc<ClientNet>],
) -> Result<(&'a ClientNet, zk_core::Client, String, Duration), String> {
    let began = Instant::now();
    let mut last = "no admitted waiter of the max-1 semaphore".to_owned();
    loop {
        match crate::workload::semaphore::admitted_waiter_node(zk).await {
            Ok(Some((session, node))) => {
                let net = nets.iter().find_map(|n| {
                    n.current()
                        .filter(|c| c.session_id() == session)
                        .map(|c| (n.as_ref(), c))
                });
                match net {
                    Some((n, c)) => return Ok((n, c, node, began.elapsed())),
                    None => last = format!("no client has session {session:#x} now"),
                }
            }
            Ok(None) => {}
            Err(e) => last = e.to_string(),
        }
        if began.elapsed() >= FIND_ADMITTED_FOR {
            return Err(format!("{last} within {FIND_ADMITTED_FOR:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `delete-admission`: holds client `n`'s next multi (14) or create2 (15) in its proxies (its
/// lease create, once there is room), deletes `node` (its admission node) meanwhile, and lets
/// the request go [`HOLD_AFTER_DELETE`] after the deletion.
async fn hold_and_delete(
    n: &ClientNet,
    zk: &zk_core::Client,
    node: &str,
    details: &mut serde_json::Value,
) -> Result<(), String> {
    let held = || n.proxies.iter().map(|p| p.held_requests()).sum::<u64>();
    let before = held();
    n.proxies.iter().for_each(|p| p.hold_request(&[14, 15]));
    let began = Instant::now();
    while held() == before && began.elapsed() < HOLD_WAIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // one request held at most: disarm the other proxies' traps (a request is counted when
    // it is caught, under the trap's lock, so no new count after the disarm means none is held)
    n.proxies.iter().for_each(|p| p.hold_request(&[]));
    if held() == before {
        return Err(format!(
            "no create of the admitted waiter within {HOLD_WAIT:?}"
        ));
    }
    details["held_after_ms"] = json!(began.elapsed().as_millis() as u64);
    let deleted = zk.delete(node, None).await;
    tokio::time::sleep(HOLD_AFTER_DELETE).await;
    n.proxies.iter().for_each(|p| p.release_held());
    deleted.map_err(|e| format!("delete {node}: {e}"))
}

async fn blocking<F>(f: F) -> Result<(), String>
where
    F: FnOnce() -> zk_testkit::Result<()> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn same_seed_same_schedule_and_server_faults_never_overlap() {
        let draw = |seed| {
            schedule(
                &mut StdRng::seed_from_u64(seed),
                &FaultKind::ALL,
                6,
                3,
                3000,
                100_000,
            )
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let server: Vec<&Fault> = a.iter().filter(|f| f.kind.on_server()).collect();
        for w in server.windows(2) {
            assert!(
                w[0].at_ms + w[0].dur_ms <= w[1].at_ms,
                "{} overlaps {}",
                w[0],
                w[1]
            );
        }
        assert!(a.iter().all(|f| f.at_ms + f.dur_ms < 100_000));
    }

    #[test]
    fn expire_admitted_is_aimed_at_run_time_and_a_default() {
        let s = schedule(
            &mut StdRng::seed_from_u64(5),
            &[FaultKind::ExpireAdmitted],
            8,
            1,
            3000,
            60_000,
        );
        assert!(!s.is_empty());
        assert!(s
            .iter()
            .all(|f| f.target == Target::Admitted && f.dur_ms == 0));
        assert!(FaultKind::DEFAULT.contains(&FaultKind::ExpireAdmitted));
        assert!(FaultKind::DEFAULT.contains(&FaultKind::DeleteAdmission));
        assert_eq!(
            FaultKind::parse("delete-admission"),
            Some(FaultKind::DeleteAdmission)
        );
        assert_eq!(
            FaultKind::parse("expire-admitted"),
            Some(FaultKind::ExpireAdmitted)
        );
    }

    #[test]
    fn standalone_has_no_leader_kill() {
        let s = schedule(
            &mut StdRng::seed_from_u64(1),
            &FaultKind::ALL,
            2,
            1,
            3000,
            60_000,
        );
        assert!(s.iter().all(|f| !f.kind.ensemble_only()));
    }

    #[test]
    fn partition_follower_targets_a_follower_and_is_not_a_default() {
        let s = schedule(
            &mut StdRng::seed_from_u64(3),
            &[FaultKind::PartitionFollower],
            2,
            3,
            3000,
            60_000,
        );
        assert!(!s.is_empty());
        assert!(s
            .iter()
            .all(|f| matches!(f.target, Target::Follower(k) if k < 2)));
        assert!(!FaultKind::DEFAULT.contains(&FaultKind::PartitionFollower));
        assert_eq!(
            FaultKind::parse("partition-follower"),
            Some(FaultKind::PartitionFollower)
        );
    }
}
