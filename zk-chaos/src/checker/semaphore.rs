//! Semaphore checker.
//!
//! A holder proves it holds a lease with a fenced write: `multi([check(lease node),
//! create(P-in/<client>-<n>, EPHEMERAL)])` (`enter`). The marker is ephemeral in the same
//! session as the lease, so it can only exist while the lease node does (both vanish together
//! when the session ends; a holder deletes its marker before releasing). While inside, a holder
//! lists `P-in` (`observe` `{sem, max}` → `{holders: [..]}`): any listing is a consistent
//! snapshot of some server state, so a listing with more than `max` markers means more than
//! `max` fenced holders at once.

use super::CheckResult;
use crate::history::{History, Outcome};

/// Checks the `semaphore` workload.
pub fn check(h: &History) -> CheckResult {
    let mut r = CheckResult::new("semaphore");
    let mut worst: Vec<(String, i64, usize)> = Vec::new();
    for o in h.ops_of("semaphore") {
        r.checked += 1;
        if o.op != "observe" || o.outcome != Outcome::Ok {
            continue;
        }
        let (Some(sem), Some(max)) = (o.arg_str("sem"), o.arg_i64("max")) else {
            continue;
        };
        let holders: Vec<String> = o
            .result
            .get("holders")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        match worst.iter_mut().find(|(s, _, _)| s == sem) {
            Some(w) => w.2 = w.2.max(holders.len()),
            None => worst.push((sem.to_owned(), max, holders.len())),
        }
        if holders.len() as i64 > max {
            r.violation(
                format!(
                    "semaphore {sem} (max {max}) had {} fenced holders at once: {holders:?}",
                    holders.len()
                ),
                vec![o.id],
                o.end_us(),
            );
        }
    }
    for (sem, max, n) in worst {
        r.notes
            .push(format!("{sem}: at most {n} holders observed (max {max})"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testutil::Builder;
    use serde_json::json;

    fn observe(b: &mut Builder, holders: &[&str]) {
        b.op(
            "semaphore",
            1,
            1,
            "observe",
            json!({"sem": "/s2", "max": 2}),
            10,
            Some(20),
            Outcome::Ok,
            json!({ "holders": holders }),
        );
    }

    #[test]
    fn at_most_max_passes() {
        let mut b = Builder::default();
        observe(&mut b, &["a", "b"]);
        observe(&mut b, &["a"]);
        assert!(check(&b.build()).violations.is_empty());
    }

    #[test]
    fn more_than_max_is_flagged() {
        let mut b = Builder::default();
        observe(&mut b, &["a", "b", "c"]);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1);
        assert!(r.violations[0].message.contains("3 fenced holders"));
    }
}
