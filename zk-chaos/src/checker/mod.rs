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

/// What the history shows the run did not do, although its verdict relies on it: clients that
/// never connected (their workload's checker judges fewer clients, or does not run at all),
/// and workloads the `meta` line lists that recorded no operation. A run with any is not a
/// pass (`zk-chaos` prints `INCOMPLETE` and exits 2 unless a violation was found).
pub fn incomplete(h: &History) -> Vec<String> {
    let mut out: Vec<String> = h
        .infos
        .iter()
        .filter(|e| e.op == "connect-failed")
        .map(|e| {
            let error = e.args.get("error").and_then(|v| v.as_str()).unwrap_or("?");
            format!(
                "client {} ({}) never connected: {error}",
                e.client, e.workload
            )
        })
        .collect();
    let listed = h
        .meta()
        .and_then(|m| m.get("workloads"))
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str());
    for w in listed {
        if !h.ops.iter().any(|o| o.workload == w) {
            out.push(format!("no operation of {w} was recorded"));
        }
    }
    out
}

#[cfg(test)]
mod incomplete_tests {
    use super::testutil::Builder;
    use super::*;
    use crate::history::{Event, Kind, Outcome};
    use serde_json::json;

    /// Clients that failed to connect left only a `connect-failed` line, which nothing read:
    /// a run whose every lock client failed to connect had no lock operation, so the lock
    /// checker did not run, and the run printed PASS.
    #[test]
    fn clients_that_never_connected_and_silent_workloads_are_reported() {
        let mut b = Builder::default();
        b.op(
            "lock",
            0,
            1,
            "acquire",
            json!({}),
            10,
            Some(20),
            Outcome::Ok,
            json!({}),
        );
        b.info(
            "barrier",
            5,
            "connect-failed",
            30,
            json!({"error": "connect timed out"}),
        );
        let mut h = b.build();
        h.events.push(Event {
            kind: Kind::Meta,
            id: 0,
            t_us: 0,
            client: -1,
            workload: "harness".into(),
            op: "meta".into(),
            args: json!({"workloads": ["lock", "barrier"]}),
            outcome: None,
            result: serde_json::Value::Null,
            error: None,
            session: 0,
        });
        let found = incomplete(&h);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("client 5 (barrier) never connected: connect timed out"),
            "{found:?}"
        );
        assert!(found[1].contains("no operation of barrier"), "{found:?}");
        // a complete run: nothing
        let mut b = Builder::default();
        b.op(
            "lock",
            0,
            1,
            "acquire",
            json!({}),
            10,
            Some(20),
            Outcome::Ok,
            json!({}),
        );
        assert!(incomplete(&b.build()).is_empty());
    }
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
            self.info_in(workload, client, 0, op, t, args);
        }

        /// An info event recorded in `session`.
        pub fn info_in(
            &mut self,
            workload: &str,
            client: i64,
            session: i64,
            op: &str,
            t: u64,
            args: Value,
        ) {
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
                session,
            });
        }

        pub fn build(self) -> History {
            History::from_events(self.events)
        }
    }
}
