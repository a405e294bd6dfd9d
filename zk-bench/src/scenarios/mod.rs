//! The scenarios. Each returns the fields of its result line.

mod election;
mod lock;
mod ops;
mod watch;

use crate::args::Args;
use crate::report::Obj;
use crate::target::Target;
use crate::BoxError;

pub use ops::OpKind;

pub enum Scenario {
    Ops(ops::Params),
    LockHandoff(lock::HandoffParams),
    LockWaiters(lock::WaitersParams),
    WatchReregister(watch::Params),
    ElectionFailover(election::Params),
}

impl Scenario {
    pub fn from_args(a: &mut Args) -> Result<Scenario, String> {
        let name = a.scenario.clone();
        Ok(match name.as_str() {
            "get" | "set" | "exists" | "create-delete" => {
                let kind = match name.as_str() {
                    "get" => OpKind::Get,
                    "set" => OpKind::Set,
                    "exists" => OpKind::Exists,
                    _ => OpKind::CreateDelete,
                };
                let p = ops::Params {
                    kind,
                    ops: a.take("ops", 20_000)?,
                    concurrency: a.take("concurrency", 64)?,
                    size: a.take("size", 100)?,
                    sessions: a.take("sessions", 1)?,
                    warmup: a.take("warmup", 2_000)?,
                    nodes: a.take("nodes", 16)?,
                };
                if p.concurrency == 0 || p.sessions == 0 || p.nodes == 0 {
                    return Err("--concurrency, --sessions and --nodes must be positive".into());
                }
                Scenario::Ops(p)
            }
            "lock-handoff" => {
                let p = lock::HandoffParams {
                    contenders: a.take("contenders", 100)?,
                    rounds: a.take("rounds", 5)?,
                };
                if p.contenders < 2 || p.rounds == 0 {
                    return Err("lock-handoff needs --contenders >= 2 and --rounds >= 1".into());
                }
                Scenario::LockHandoff(p)
            }
            "lock-waiters" => {
                let p = lock::WaitersParams {
                    contenders: a.take("contenders", 1000)?,
                };
                if p.contenders < 2 {
                    return Err("lock-waiters needs --contenders >= 2".into());
                }
                Scenario::LockWaiters(p)
            }
            "watch-reregister" => Scenario::WatchReregister(watch::Params {
                watches: a.take("watches", 100_000)?,
                concurrency: a.take::<usize>("concurrency", 1000)?.max(1),
            }),
            "election-failover" => {
                let p = election::Params {
                    candidates: a.take("candidates", 10)?,
                    rounds: a.take("rounds", 20)?,
                };
                if p.candidates < 2 || p.rounds == 0 {
                    return Err(
                        "election-failover needs --candidates >= 2 and --rounds >= 1".into(),
                    );
                }
                Scenario::ElectionFailover(p)
            }
            other => return Err(format!("unknown scenario {other:?}")),
        })
    }

    /// Whether the scenario reports heap bytes (the counting allocator must be on from the
    /// start).
    pub fn counts_memory(&self) -> bool {
        matches!(
            self,
            Scenario::LockHandoff(_) | Scenario::LockWaiters(_) | Scenario::WatchReregister(_)
        )
    }

    pub async fn run(self, t: &Target) -> Result<Obj, BoxError> {
        match self {
            Scenario::Ops(p) => ops::run(t, p).await,
            Scenario::LockHandoff(p) => lock::handoff(t, p).await,
            Scenario::LockWaiters(p) => lock::waiters(t, p).await,
            Scenario::WatchReregister(p) => watch::run(t, p).await,
            Scenario::ElectionFailover(p) => election::run(t, p).await,
        }
    }
}

/// Measures the server's CPU over a window, if its pid is known.
pub struct ServerCpu<'a> {
    t: &'a Target,
    start: Option<std::time::Duration>,
}

impl<'a> ServerCpu<'a> {
    pub fn start(t: &'a Target) -> ServerCpu<'a> {
        ServerCpu {
            t,
            start: t.server_cpu(),
        }
    }

    /// Adds `server_cpu_seconds` and `server_cpu_us_per_op` (nulls if unknown).
    pub fn report(&self, o: &mut Obj, ops: u64) {
        let d = match (self.start, self.t.server_cpu()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
            _ => None,
        };
        o.set("server_cpu_seconds", d);
        o.set(
            "server_cpu_us_per_op",
            d.filter(|_| ops > 0).map(|s| s * 1e6 / ops as f64),
        );
    }
}
