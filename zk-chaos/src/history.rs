//! The recorded history: one JSON object per line, written as the run goes.
//!
//! Every operation a client performs is an `invoke` event followed (usually) by a `complete`
//! event with the same `id` and an [`Outcome`]. An operation without a `complete` (the run was
//! interrupted) counts as [`Outcome::Unknown`]. `info` events carry what is not an operation:
//! session state changes, a guard's lost signal, watch deliveries, nemesis faults and the final
//! server state read after the heal. The first line is a `meta` event with the run's settings.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How an operation ended, as far as the client could tell.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Applied (a write) or answered (a read).
    Ok,
    /// The client said it was not applied.
    Fail,
    /// Maybe applied: connection loss, a timeout after sending, no completion at all.
    Unknown,
}

/// What a line is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The run's settings (first line).
    Meta,
    /// An operation starts.
    Invoke,
    /// An operation ends.
    Complete,
    /// Anything else worth knowing.
    Info,
}

/// One line of the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// What the line is.
    pub kind: Kind,
    /// Pairs an invoke with its complete; unique otherwise.
    pub id: u64,
    /// Microseconds since the run started (one monotonic clock for every client).
    pub t_us: u64,
    /// The client (>= 0), or -1 for the harness and the nemesis.
    pub client: i64,
    /// The workload ("lock", "register", ..., "nemesis", "harness").
    pub workload: String,
    /// The operation or info name.
    pub op: String,
    /// Arguments (invoke) or details (info).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub args: Value,
    /// How it ended (complete only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// What it returned (complete only).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub result: Value,
    /// The error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The client's session id when the line was written (0 if none).
    #[serde(default)]
    pub session: i64,
}

/// An invoke paired with its complete.
#[derive(Debug, Clone)]
pub struct Op {
    /// Operation id.
    pub id: u64,
    /// Client.
    pub client: i64,
    /// Workload.
    pub workload: String,
    /// Operation name.
    pub op: String,
    /// Arguments.
    pub args: Value,
    /// Outcome ([`Outcome::Unknown`] if it never completed).
    pub outcome: Outcome,
    /// Result.
    pub result: Value,
    /// Error text.
    pub error: Option<String>,
    /// Invoke time.
    pub invoke_us: u64,
    /// Completion time (`None`: never completed).
    pub complete_us: Option<u64>,
    /// Session at invoke.
    pub session: i64,
    /// Session at completion.
    pub session_after: i64,
}

impl Op {
    /// The completion time, or "never" as `u64::MAX`.
    pub fn end_us(&self) -> u64 {
        self.complete_us.unwrap_or(u64::MAX)
    }

    /// `args[key]` as an i64.
    pub fn arg_i64(&self, key: &str) -> Option<i64> {
        self.args.get(key).and_then(Value::as_i64)
    }

    /// `args[key]` as a string.
    pub fn arg_str(&self, key: &str) -> Option<&str> {
        self.args.get(key).and_then(Value::as_str)
    }

    /// `result[key]` as an i64.
    pub fn res_i64(&self, key: &str) -> Option<i64> {
        self.result.get(key).and_then(Value::as_i64)
    }
}

/// A history split into operations and info events, each in time order.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Every line, in the order written.
    pub events: Vec<Event>,
    /// Paired operations, by invoke time.
    pub ops: Vec<Op>,
    /// Info events, by time.
    pub infos: Vec<Event>,
}

impl History {
    /// Pairs invokes with completes.
    pub fn from_events(events: Vec<Event>) -> History {
        let mut ops: Vec<Op> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut infos = Vec::new();
        for e in &events {
            match e.kind {
                Kind::Meta => {}
                Kind::Info => infos.push(e.clone()),
                Kind::Invoke => {
                    index.insert(e.id, ops.len());
                    ops.push(Op {
                        id: e.id,
                        client: e.client,
                        workload: e.workload.clone(),
                        op: e.op.clone(),
                        args: e.args.clone(),
                        outcome: Outcome::Unknown,
                        result: Value::Null,
                        error: None,
                        invoke_us: e.t_us,
                        complete_us: None,
                        session: e.session,
                        session_after: e.session,
                    });
                }
                Kind::Complete => {
                    if let Some(&i) = index.get(&e.id) {
                        let op = &mut ops[i];
                        op.outcome = e.outcome.unwrap_or(Outcome::Unknown);
                        op.result = e.result.clone();
                        op.error = e.error.clone();
                        op.complete_us = Some(e.t_us);
                        op.session_after = e.session;
                    }
                }
            }
        }
        ops.sort_by_key(|o| (o.invoke_us, o.id));
        infos.sort_by_key(|e| (e.t_us, e.id));
        History { events, ops, infos }
    }

    /// Reads a history file written by a run.
    ///
    /// # Errors
    /// I/O errors; a line that is not an event, an id used by two invokes (or an invoke and
    /// an info), a `complete` with no earlier `invoke` of its id or a second one (each with its
    /// line number); a file without events. A run writes none of these, so each is a damaged
    /// or foreign file: judged anyway, it would pass with operations missing or made up.
    pub fn load(path: &Path) -> io::Result<History> {
        let bad = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
        let f = io::BufReader::new(File::open(path)?);
        let mut events = Vec::new();
        // id -> (line of its invoke or info, an invoke, completed); meta lines (id 0) are not
        // operations
        let mut seen: HashMap<u64, (usize, bool, bool)> = HashMap::new();
        for (n, line) in f.lines().enumerate() {
            let n = n + 1;
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let e: Event =
                serde_json::from_str(&line).map_err(|e| bad(format!("line {n}: {e}")))?;
            match e.kind {
                Kind::Meta => {}
                Kind::Invoke | Kind::Info => {
                    let invoke = e.kind == Kind::Invoke;
                    if let Some((first, ..)) = seen.insert(e.id, (n, invoke, false)) {
                        return Err(bad(format!(
                            "line {n}: id {} is already used by line {first}",
                            e.id
                        )));
                    }
                }
                Kind::Complete => match seen.get_mut(&e.id) {
                    Some((_, true, done @ false)) => *done = true,
                    Some((first, true, true)) => {
                        return Err(bad(format!(
                            "line {n}: id {} was completed before (its invoke: line {first})",
                            e.id
                        )))
                    }
                    _ => {
                        return Err(bad(format!(
                            "line {n}: a complete of id {}, which no earlier line invoked",
                            e.id
                        )))
                    }
                },
            }
            events.push(e);
        }
        if events.is_empty() {
            return Err(bad(format!(
                "no events: {} is empty, not a history",
                path.display()
            )));
        }
        Ok(History::from_events(events))
    }

    /// The `meta` line's arguments, if any.
    pub fn meta(&self) -> Option<&Value> {
        self.events
            .iter()
            .find(|e| e.kind == Kind::Meta)
            .map(|e| &e.args)
    }

    /// Operations of one workload.
    pub fn ops_of<'a>(&'a self, workload: &'a str) -> impl DoubleEndedIterator<Item = &'a Op> + 'a {
        self.ops.iter().filter(move |o| o.workload == workload)
    }

    /// Info events of one workload.
    pub fn infos_of<'a>(
        &'a self,
        workload: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a Event> + 'a {
        self.infos.iter().filter(move |e| e.workload == workload)
    }
}

/// Writes events to the history file as they happen and keeps them in memory for the checkers.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    next_id: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: Option<BufWriter<File>>,
    events: Vec<Event>,
}

impl Recorder {
    /// A recorder writing to `path` (or only to memory with `None`).
    ///
    /// # Errors
    /// If the file cannot be created.
    pub fn new(path: Option<&Path>) -> io::Result<Recorder> {
        let file = match path {
            Some(p) => Some(BufWriter::new(File::create(p)?)),
            None => None,
        };
        Ok(Recorder {
            start: Instant::now(),
            next_id: AtomicU64::new(1),
            inner: Mutex::new(Inner {
                file,
                events: Vec::new(),
            }),
        })
    }

    /// Microseconds since the recorder was made.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// A fresh event id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Appends an event (its time is taken now unless already set).
    pub fn push(&self, mut e: Event) {
        if e.t_us == 0 {
            e.t_us = self.now_us();
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = inner.file.as_mut() {
            // a failed write must not stop the run; the in-memory copy is checked anyway
            if serde_json::to_writer(&mut *f, &e).is_ok() {
                let _ = f.write_all(b"\n");
            }
        }
        inner.events.push(e);
    }

    /// Records an info event.
    pub fn info(&self, client: i64, workload: &str, op: &str, session: i64, args: Value) {
        self.push(Event {
            kind: Kind::Info,
            id: self.next_id(),
            t_us: 0,
            client,
            workload: workload.to_owned(),
            op: op.to_owned(),
            args,
            outcome: None,
            result: Value::Null,
            error: None,
            session,
        });
    }

    /// Records the meta line.
    pub fn meta(&self, args: Value) {
        self.push(Event {
            kind: Kind::Meta,
            id: 0,
            t_us: 0,
            client: -1,
            workload: "harness".into(),
            op: "meta".into(),
            args,
            outcome: None,
            result: Value::Null,
            error: None,
            session: 0,
        });
    }

    /// Records an invoke; returns its id.
    pub fn invoke(&self, client: i64, workload: &str, op: &str, session: i64, args: Value) -> u64 {
        let id = self.next_id();
        self.push(Event {
            kind: Kind::Invoke,
            id,
            t_us: 0,
            client,
            workload: workload.to_owned(),
            op: op.to_owned(),
            args,
            outcome: None,
            result: Value::Null,
            error: None,
            session,
        });
        id
    }

    /// Records a completion.
    #[allow(clippy::too_many_arguments)]
    pub fn complete(
        &self,
        id: u64,
        client: i64,
        workload: &str,
        op: &str,
        session: i64,
        outcome: Outcome,
        result: Value,
        error: Option<String>,
    ) {
        self.push(Event {
            kind: Kind::Complete,
            id,
            t_us: 0,
            client,
            workload: workload.to_owned(),
            op: op.to_owned(),
            args: Value::Null,
            outcome: Some(outcome),
            result,
            error,
            session,
        });
    }

    /// Flushes the file.
    pub fn flush(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = inner.file.as_mut() {
            let _ = f.flush();
        }
    }

    /// A copy of everything recorded so far, as a [`History`].
    pub fn history(&self) -> History {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        History::from_events(inner.events.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> io::Result<History> {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        History::load(f.path())
    }

    const INVOKE_1: &str = r#"{"kind":"invoke","id":1,"t_us":10,"client":0,"workload":"lock","op":"read","args":{},"session":5}"#;
    const COMPLETE_1: &str = r#"{"kind":"complete","id":1,"t_us":20,"client":0,"workload":"lock","op":"read","outcome":"ok","result":{"value":0},"session":5}"#;

    #[test]
    fn a_well_formed_history_loads() {
        let h = load_str(&format!("{INVOKE_1}\n{COMPLETE_1}\n")).expect("loads");
        assert_eq!(h.ops.len(), 1);
        assert_eq!(h.ops[0].outcome, Outcome::Ok);
    }

    /// `zk-chaos check` judged these as a history and printed `PASS` (exit 0): an empty file
    /// (no checker runs, so none can object), a completion nothing invoked (dropped without a
    /// word), and a reused id (the second invoke hid the first, which then counted as an
    /// operation of unknown outcome). Each is a damaged or foreign file, not a run's history.
    #[test]
    fn malformed_histories_are_refused_with_the_line() {
        let cases = [
            ("", "no events"),
            ("\n\n", "no events"),
            (&format!("{COMPLETE_1}\n") as &str, "line 1"),
            (&format!("{INVOKE_1}\n{INVOKE_1}\n{COMPLETE_1}\n"), "line 2"),
            (
                &format!("{INVOKE_1}\n{COMPLETE_1}\n{COMPLETE_1}\n"),
                "line 3",
            ),
            (&format!("{INVOKE_1}\n{COMPLETE_1}\n{INVOKE_1}\n"), "line 3"),
        ];
        for (text, want) in cases {
            match load_str(text) {
                Ok(h) => panic!(
                    "{text:?} loaded ({} ops), expected an error naming {want:?}",
                    h.ops.len()
                ),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{text:?}: {e}");
                    assert!(
                        e.to_string().contains(want),
                        "{text:?}: {e} (want {want:?})"
                    );
                }
            }
        }
    }
}
