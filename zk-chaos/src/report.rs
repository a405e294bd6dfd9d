//! The summary: per-checker results, the first violation with its slice of history, and the
//! final JSON line.

use crate::checker::{CheckResult, Violation};
use crate::history::{Event, History, Kind, Outcome};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Figures of a run, computed from its history alone.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Client operations invoked.
    pub ops: usize,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// LOST transitions seen by the clients (expired sessions).
    pub sessions_expired: u64,
    /// The longest stretch in which no client operation completed ok, in ms.
    pub max_unavailable_ms: u64,
}

/// Computes the figures.
pub fn figures(h: &History) -> Figures {
    let ops = h.ops.iter().filter(|o| o.client >= 0).count();
    let mut faults = BTreeMap::new();
    for e in h.infos.iter().filter(|e| e.op == "fault") {
        if let Some(k) = e.args.get("kind").and_then(|v| v.as_str()) {
            *faults.entry(k.to_owned()).or_insert(0) += 1;
        }
    }
    let sessions_expired = h
        .infos
        .iter()
        .filter(|e| e.op == "state" && e.args.get("state").and_then(|v| v.as_str()) == Some("LOST"))
        .count() as u64;
    let mut oks: Vec<u64> = h
        .ops
        .iter()
        .filter(|o| o.client >= 0 && o.outcome == Outcome::Ok)
        .filter_map(|o| o.complete_us)
        .collect();
    oks.sort_unstable();
    let max_unavailable_ms = oks.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0) / 1000;
    Figures {
        ops,
        faults,
        sessions_expired,
        max_unavailable_ms,
    }
}

/// The final line: one JSON object.
pub fn json_line(
    seed: u64,
    duration_s: u64,
    workloads: &[String],
    f: &Figures,
    violations: usize,
) -> String {
    json!({
        "seed": seed,
        "duration_s": duration_s,
        "workloads": workloads,
        "ops": f.ops,
        "faults": f.faults,
        "sessions_expired": f.sessions_expired,
        "violations": violations,
        "max_unavailable_ms": f.max_unavailable_ms,
    })
    .to_string()
}

/// The schedule as it ran, from the history: every scheduled fault's line (as printed at the
/// start) with when it actually ran, `delayed` when a server fault waited for the previous one's
/// member to serve again, `SKIPPED` with the reason when it did not run, and any error. Empty for
/// histories written before faults carried their schedule index.
pub fn executed(h: &History) -> Vec<String> {
    let Some(schedule) = h
        .meta()
        .and_then(|m| m.get("schedule"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let nemesis: Vec<_> = h.infos_of("nemesis").collect();
    if !nemesis.iter().any(|e| e.args.get("n").is_some()) {
        return Vec::new();
    }
    let of = |n: usize, op: &str| {
        nemesis
            .iter()
            .find(|e| e.op == op && e.args.get("n").and_then(Value::as_u64) == Some(n as u64))
    };
    let secs = |us: u64| us as f64 / 1e6;
    schedule
        .iter()
        .enumerate()
        .map(|(n, line)| {
            let line = line.as_str().unwrap_or("?");
            if let Some(e) = of(n, "fault-skipped") {
                let reason = e.args.get("reason").and_then(Value::as_str).unwrap_or("");
                return format!("{line}  SKIPPED: {reason}");
            }
            let Some(started) = of(n, "fault") else {
                return format!("{line}  did not start (the run ended first)");
            };
            // times in the schedule's frame (ms after the run started) where recorded
            let at = |e: &Event, key: &str| {
                e.args
                    .get(key)
                    .and_then(Value::as_u64)
                    .map_or(secs(e.t_us), |ms| ms as f64 / 1000.0)
            };
            let mut s = format!("{line}  ran {:.1}..", at(started, "started_ms"));
            match of(n, "fault-end") {
                Some(end) => {
                    let _ = write!(s, "{:.1} s", at(end, "ended_ms"));
                    if let Some(ms) = end
                        .args
                        .get("serving_after_ms")
                        .and_then(Value::as_u64)
                        .filter(|&ms| ms >= 100)
                    {
                        let _ = write!(
                            s,
                            ", member serving again {:.1} s after the nominal end",
                            ms as f64 / 1000.0
                        );
                    }
                    if end.args.get("serving") == Some(&Value::Bool(false)) {
                        s.push_str(", member NOT SERVING AGAIN");
                    }
                    if let Some(c) = end.args.get("cuts").and_then(Value::as_u64) {
                        let _ = write!(s, ", {c} cut");
                    }
                    if let Some(err) = end.args.get("error").and_then(Value::as_str) {
                        let _ = write!(s, ", error: {err}");
                    }
                }
                None => s.push_str("? (no end recorded)"),
            }
            if let Some(d) = started
                .args
                .get("delayed_ms")
                .and_then(Value::as_u64)
                .filter(|&d| d > 0)
            {
                let _ = write!(s, "; DELAYED {:.1} s", d as f64 / 1000.0);
            }
            s
        })
        .collect()
}

/// Human-readable results of the checkers.
pub fn summary(results: &[CheckResult]) -> String {
    let mut s = String::new();
    for r in results {
        let verdict = if r.violations.is_empty() {
            "ok"
        } else {
            "VIOLATED"
        };
        let _ = writeln!(
            s,
            "checker {:<10} {verdict:<8} {} ops, {} violations",
            r.checker,
            r.checked,
            r.violations.len()
        );
        for n in &r.notes {
            let _ = writeln!(s, "    {n}");
        }
        // the earliest first, each with its time in the run (how long the checker took to catch it)
        let mut first: Vec<&Violation> = r.violations.iter().collect();
        first.sort_by_key(|v| v.t_us);
        for v in first.into_iter().take(5) {
            let _ = writeln!(s, "    ! [{:.3} s] {}", v.t_us as f64 / 1e6, v.message);
        }
        if r.violations.len() > 5 {
            let _ = writeln!(s, "    ! ... and {} more", r.violations.len() - 5);
        }
    }
    s
}

/// The events that show a violation: its operations, and the workload's events in the
/// second before it (at most `max` lines).
pub fn slice(h: &History, v: &Violation, max: usize) -> Vec<String> {
    let t = if v.t_us == u64::MAX {
        h.events.iter().map(|e| e.t_us).max().unwrap_or(0)
    } else {
        v.t_us
    };
    let from = t.saturating_sub(1_000_000);
    let mut lines: Vec<String> = h
        .events
        .iter()
        .filter(|e| e.kind != Kind::Meta)
        .filter(|e| {
            v.ops.contains(&e.id)
                || (e.workload == v.checker && e.t_us >= from && e.t_us <= t)
                || (e.workload == "nemesis"
                    && e.t_us >= from.saturating_sub(5_000_000)
                    && e.t_us <= t)
        })
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect();
    if lines.len() > max {
        // keep the violation's own operations, then the latest context
        let (own, ctx): (Vec<String>, Vec<String>) = lines.into_iter().partition(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|e| e.get("id").and_then(Value::as_u64))
                .is_some_and(|id| v.ops.contains(&id))
        });
        let room = max.saturating_sub(own.len());
        lines = own;
        lines.extend(
            ctx.into_iter()
                .rev()
                .take(room)
                .collect::<Vec<_>>()
                .into_iter()
                .rev(),
        );
    }
    lines
}
