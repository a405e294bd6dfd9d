//! The workloads: client loops that do real work and record it. Every loop is bounded by the
//! run's end time and every request by [`OP_TIMEOUT`].

pub mod barrier;
pub mod election;
pub mod lock;
pub mod register;
pub mod semaphore;
pub mod sequence;
pub mod watch;

use crate::cluster::ClientNet;
use crate::history::{Outcome, Recorder};
use futures::StreamExt;
use rand::rngs::StdRng;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use zk_core::{Client, Error};

/// A fenced write as a plain zk-core result: a guard already lost refused it before sending,
/// which the history records as a failure that was not applied (`NotConnected`).
pub async fn fenced<T>(
    fut: impl Future<Output = Result<T, zk_recipes::GuardError>>,
) -> Result<T, Error> {
    match fut.await {
        Ok(v) => Ok(v),
        Err(zk_recipes::GuardError::Zk(e)) => Err(e),
        Err(zk_recipes::GuardError::Lost(_)) => Err(Error::NotConnected),
        Err(e) => Err(Error::InvalidArgument(e.to_string())),
    }
}

/// Records the guard's lost signal as an info `lost` `{guard, reason}` of the client's workload
/// when it fires (not for a release), under the guard's session.
pub fn record_lost(ctx: &Ctx, guard: &zk_recipes::Guard) {
    let lost = guard.lost_signal();
    let (rec, id, workload) = (Arc::clone(&ctx.rec), ctx.id, ctx.workload);
    let (g, session) = (guard.path().to_owned(), guard.session_id());
    tokio::spawn(async move {
        let reason = lost.lost().await;
        if reason != zk_recipes::LostReason::Released {
            rec.info(
                id,
                workload,
                "lost",
                session,
                json!({"guard": g, "reason": format!("{reason:?}")}),
            );
        }
    });
}

/// Session timeout every client asks for.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(3);
/// Per-request deadline inside the client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Outer bound on any recorded operation (recipes loop over several requests).
pub const OP_TIMEOUT: Duration = Duration::from_secs(15);

/// Root of every workload's nodes.
pub const ROOT: &str = "/chaos";

/// Where the run is in time.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    /// The run's start.
    pub start: Instant,
    /// Faults stop (everything is healed) here.
    pub heal: Instant,
    /// Writers stop here (watch); the rest is for watchers to converge.
    pub quiesce: Instant,
    /// The workloads stop here.
    pub end: Instant,
}

/// One client's context.
pub struct Ctx {
    /// The history.
    pub rec: Arc<Recorder>,
    /// The client's id.
    pub id: i64,
    /// The workload's name.
    pub workload: &'static str,
    /// The ZooKeeper client (through the proxies).
    pub zk: Client,
    /// The client's random generator (from the seed).
    pub rng: StdRng,
    /// The run's phases.
    pub phases: Phases,
    /// The client's index among the clients of its workload.
    pub index: usize,
    /// How many clients its workload has.
    pub clients: usize,
    states: tokio::task::JoinHandle<()>,
}

impl Ctx {
    /// Connects the client through its proxies (bounded retries) and starts recording its
    /// session state changes.
    pub async fn connect(
        rec: Arc<Recorder>,
        net: &Arc<ClientNet>,
        (index, clients): (usize, usize),
        rng: StdRng,
        phases: Phases,
    ) -> Option<Ctx> {
        let mut last = None;
        for _ in 0..10 {
            let c = Client::builder(net.connect_string())
                .session_timeout(SESSION_TIMEOUT)
                .request_timeout(REQUEST_TIMEOUT)
                .connect();
            match tokio::time::timeout(OP_TIMEOUT, c).await {
                Ok(Ok(zk)) => {
                    *net.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(zk.clone());
                    let mut states = zk.state_stream();
                    let (r, id, w) = (Arc::clone(&rec), net.id, net.workload);
                    // which member a CONNECTED is to: the index of the proxy it went through
                    let proxies: Vec<String> =
                        net.proxies.iter().map(|p| p.connect_string()).collect();
                    let states = tokio::spawn(async move {
                        while let Some(s) = states.next().await {
                            let member = s
                                .server
                                .as_ref()
                                .and_then(|a| proxies.iter().position(|p| p == a));
                            r.info(
                                id,
                                w,
                                "state",
                                s.session_id,
                                json!({"state": s.state.to_string(), "generation": s.generation, "member": member}),
                            );
                        }
                    });
                    rec.info(
                        net.id,
                        net.workload,
                        "connected",
                        zk.session_id(),
                        json!({}),
                    );
                    return Some(Ctx {
                        rec,
                        id: net.id,
                        workload: net.workload,
                        zk,
                        rng,
                        phases,
                        index,
                        clients,
                        states,
                    });
                }
                Ok(Err(e)) => last = Some(e.to_string()),
                Err(_) => last = Some("connect timed out".into()),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        rec.info(
            net.id,
            net.workload,
            "connect-failed",
            0,
            json!({ "error": last }),
        );
        None
    }

    /// Whether the workload should go on.
    pub fn running(&self) -> bool {
        Instant::now() < self.phases.end
    }

    /// Records an operation around `fut`; the outcome follows the client's own claim
    /// (`ok`; `unknown` if the error says it may have been applied or [`OP_TIMEOUT`] passed;
    /// `fail` otherwise).
    pub async fn call<T, F>(
        &self,
        op: &str,
        args: Value,
        fut: F,
        ok: impl FnOnce(&T) -> Value,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        self.call_with(op, args, fut, |r| match r {
            Ok(v) => (Outcome::Ok, ok(v), None),
            Err(e) => (classify(e), Value::Null, Some(e.to_string())),
        })
        .await
        .unwrap_or(Err(Error::Timeout { sent: true }))
    }

    /// Records an operation with a custom classification; `None` if [`OP_TIMEOUT`] passed
    /// (recorded as unknown).
    pub async fn call_with<R, F>(
        &self,
        op: &str,
        args: Value,
        fut: F,
        classify: impl FnOnce(&R) -> (Outcome, Value, Option<String>),
    ) -> Option<R>
    where
        F: Future<Output = R>,
    {
        let id = self
            .rec
            .invoke(self.id, self.workload, op, self.zk.session_id(), args);
        match tokio::time::timeout(OP_TIMEOUT, fut).await {
            Ok(r) => {
                let (outcome, result, error) = classify(&r);
                self.rec.complete(
                    id,
                    self.id,
                    self.workload,
                    op,
                    self.zk.session_id(),
                    outcome,
                    result,
                    error,
                );
                Some(r)
            }
            Err(_) => {
                self.rec.complete(
                    id,
                    self.id,
                    self.workload,
                    op,
                    self.zk.session_id(),
                    Outcome::Unknown,
                    Value::Null,
                    Some(format!("no answer within {OP_TIMEOUT:?}")),
                );
                None
            }
        }
    }

    /// Records an info event for this client.
    pub fn info(&self, op: &str, args: Value) {
        self.rec
            .info(self.id, self.workload, op, self.zk.session_id(), args);
    }

    /// Stops recording states and closes the session (bounded; recorded as `close`, whose
    /// session is the one closed).
    pub async fn close(self) {
        self.states.abort();
        let close = async {
            tokio::time::timeout(Duration::from_secs(5), self.zk.close())
                .await
                .unwrap_or(Err(Error::Timeout { sent: true }))
        };
        let _ = self.call("close", json!({}), close, |_| Value::Null).await;
    }

    /// Sleeps a random time below `max_ms`.
    pub async fn pause(&mut self, max_ms: u64) {
        use rand::Rng;
        let ms = self.rng.gen_range(0..max_ms.max(1));
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// The client's claim about an error: maybe applied, or not applied.
pub fn classify(e: &Error) -> Outcome {
    if e.may_have_been_applied() {
        Outcome::Unknown
    } else {
        Outcome::Fail
    }
}

/// Parses a counter stored as decimal text (missing or garbage: 0).
pub fn parse_i64(data: &[u8]) -> i64 {
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}
