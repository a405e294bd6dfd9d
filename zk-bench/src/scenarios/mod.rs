//! The scenarios. Each returns the fields of its result line.

mod election;
mod lock;
mod ops;
mod watch;

use crate::args::{Command, OpsArgs};
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
    /// The scenario of a parsed command line; `None` for `serve` and `stub-serve`. Ranges are
    /// checked by the parser ([`crate::args`]).
    pub fn from_command(c: Command) -> Option<Scenario> {
        let ops = |kind: OpKind, a: OpsArgs| {
            Scenario::Ops(ops::Params {
                kind,
                ops: a.ops,
                concurrency: a.concurrency,
                size: a.size,
                sessions: a.sessions,
                warmup: a.warmup,
                nodes: a.nodes,
            })
        };
        Some(match c {
            Command::Get(a) => ops(OpKind::Get, a),
            Command::Set(a) => ops(OpKind::Set, a),
            Command::Exists(a) => ops(OpKind::Exists, a),
            Command::CreateDelete(a) => ops(OpKind::CreateDelete, a),
            Command::LockHandoff { contenders, rounds } => {
                Scenario::LockHandoff(lock::HandoffParams { contenders, rounds })
            }
            Command::LockWaiters { contenders } => {
                Scenario::LockWaiters(lock::WaitersParams { contenders })
            }
            Command::WatchReregister {
                watches,
                concurrency,
            } => Scenario::WatchReregister(watch::Params {
                watches,
                concurrency,
            }),
            Command::ElectionFailover { candidates, rounds } => {
                Scenario::ElectionFailover(election::Params { candidates, rounds })
            }
            Command::Serve | Command::StubServe { .. } => return None,
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
