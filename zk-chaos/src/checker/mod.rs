//! The checkers: the oracle. They read only the history (operations, what they returned, what
//! the harness read from the servers after the heal); they never call recipe code.

pub mod barrier;
pub mod election;
pub mod guards;
pub mod lock;
pub mod register;
pub mod semaphore;
pub mod sequence;
pub mod sessions;
pub mod watch;

use crate::history::History;
use serde::Serialize;

/// One broken guarantee.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// The checker that found it.
    pub checker: String,
    /// What was broken, in words.
    pub message: String,
    /// The operations (ids) that show it.
    pub ops: Vec<u64>,
    /// When it shows (microseconds since the start).
    pub t_us: u64,
}

/// What one checker made of a history.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckResult {
    /// The checker's name.
    pub checker: String,
    /// How many operations it examined.
    pub checked: usize,
    /// Remarks that are not violations (e.g. how the unknown operations resolved).
    pub notes: Vec<String>,
    /// What it found.
    pub violations: Vec<Violation>,
}

impl CheckResult {
    pub(crate) fn new(checker: &str) -> CheckResult {
        CheckResult {
            checker: checker.to_owned(),
            ..CheckResult::default()
        }
    }

    pub(crate) fn violation(&mut self, message: impl Into<String>, ops: Vec<u64>, t_us: u64) {
        self.violations.push(Violation {
            checker: self.checker.clone(),
            message: message.into(),
            ops,
            t_us,
        });
    }
}

/// Every workload the campaign knows, in the order they are checked.
pub const WORKLOADS: &[&str] = &[
    "lock",
    "semaphore",
    "sequence",
    "register",
    "watch",
    "election",
    "barrier",
    "double-barrier",
];

/// Runs the checker of every workload that appears in the history.
pub fn check_all(h: &History) -> Vec<CheckResult> {
    let present = |w: &str| h.ops.iter().any(|o| o.workload == w);
    let mut out = Vec::new();
    if h.ops.iter().any(|o| o.op == "close") {
        out.push(sessions::check(h));
    }
    if present("lock") {
        out.push(lock::check(h));
    }
    if present("semaphore") {
        out.push(semaphore::check(h));
    }
    if present("sequence") {
        out.push(sequence::check(h));
    }
    if present("register") {
        out.push(register::check(h));
    }
    if present("watch") {
        out.push(watch::check(h));
    }
    if present("election") {
        out.push(election::check(h));
    }
    if present("barrier") {
        out.push(barrier::check_barrier(h));
    }
    if present("double-barrier") {
        out.push(barrier::check_double(h));
    }
    out
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Hand-made histories for the checkers' unit tests.
    use crate::history::{Event, History, Kind, Outcome};
    use serde_json::Value;

    #[derive(Default)]
    pub struct Builder {
        events: Vec<Event>,
        next: u64,
    }

    impl Builder {
        #[allow(clippy::too_many_arguments)]
        pub fn op(
            &mut self,
            workload: &str,
            client: i64,
            session: i64,
            op: &str,
            args: Value,
            t0: u64,
            t1: Option<u64>,
            outcome: Outcome,
            result: Value,
        ) -> u64 {
            self.next += 1;
            let id = self.next;
            self.events.push(Event {
                kind: Kind::Invoke,
                id,
                t_us: t0,
                client,
                workload: workload.into(),
                op: op.into(),
                args,
                outcome: None,
                result: Value::Null,
                error: None,
                session,
            });
            if let Some(t1) = t1 {
                self.events.push(Event {
                    kind: Kind::Complete,
                    id,
                    t_us: t1,
                    client,
                    workload: workload.into(),
                    op: op.into(),
                    args: Value::Null,
                    outcome: Some(outcome),
                    result,
                    error: None,
                    session,
                });
            }
            id
        }

        pub fn info(&mut self, workload: &str, client: i64, op: &str, t: u64, args: Value) {
            self.next += 1;
            self.events.push(Event {
                kind: Kind::Info,
                id: self.next,
                t_us: t,
                client,
                workload: workload.into(),
                op: op.into(),
                args,
                outcome: None,
                result: Value::Null,
                error: None,
                session: 0,
            });
        }

        pub fn build(self) -> History {
            History::from_events(self.events)
        }
    }
}
