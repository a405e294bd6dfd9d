//! Semaphore checker.
//!
//! A holder proves it holds a lease with a fenced write: `multi([check(lease node),
//! create(P-in/<client>-<n>, EPHEMERAL)])` (`enter` `{sem, guard, marker}`). While inside, a
//! holder reads the leases and the markers in one read-only transaction (`observe` `{sem, max}`
//! → `{leases: [..], holders: [..]}`), so both lists are one snapshot of one server state.
//!
//! A marker is a *fenced holder* in a snapshot only while the lease its `enter` was fenced by
//! is in the same snapshot. A marker can outlive its lease: a guard that is lost (with the
//! default policy, when its client is SUSPENDED) gives its lease up, deleting the lease node
//! once the client is back in the same session, while its holder deletes the marker only at
//! its `exit`; and an `enter` cut after it was applied leaves a marker whose holder never
//! learnt it entered. Such a marker is noted, not counted: its lease was free for others. Its
//! holder must have been told, though: the workload records each guard's lost signal (`lost`
//! `{guard, reason}`), and a marker whose lease vanished from under a guard that never
//! reported itself lost is a violation (a lease removed behind its holder's back).
//! Violations: a snapshot with more than `max` leases (the semaphore's own invariant), with
//! more than `max` fenced holders, or with a marker whose lease vanished untold.
//!
//! Histories written before `observe` listed the leases (no `leases` field) are judged the old
//! way: every marker counts.

use super::CheckResult;
use crate::history::{History, Op, Outcome};
use std::collections::{BTreeSet, HashMap};

/// The last component of a path.
fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A list of names in an operation's result.
fn names(o: &Op, key: &str) -> Option<Vec<String>> {
    o.result.get(key).and_then(|v| v.as_array()).map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    })
}

/// Checks the `semaphore` workload.
pub fn check(h: &History) -> CheckResult {
    let mut r = CheckResult::new("semaphore");
    // marker name -> the name of the lease node its enter was fenced by
    let lease_of: HashMap<&str, &str> = h
        .ops_of("semaphore")
        .filter(|o| o.op == "enter")
        .filter_map(|o| Some((name(o.arg_str("marker")?), name(o.arg_str("guard")?))))
        .collect();
    // lease node names whose guard reported itself lost
    let lost: BTreeSet<&str> = h
        .infos_of("semaphore")
        .filter(|e| e.op == "lost")
        .filter_map(|e| e.args.get("guard").and_then(|g| g.as_str()).map(name))
        .collect();
    let mut untold: BTreeSet<String> = BTreeSet::new();
    let mut worst: Vec<(String, i64, usize)> = Vec::new();
    let mut stale_listings = 0usize;
    let mut stale: BTreeSet<String> = BTreeSet::new();
    for o in h.ops_of("semaphore") {
        r.checked += 1;
        if o.op != "observe" || o.outcome != Outcome::Ok {
            continue;
        }
        let (Some(sem), Some(max)) = (o.arg_str("sem"), o.arg_i64("max")) else {
            continue;
        };
        let markers = names(o, "holders").unwrap_or_default();
        let leases = names(o, "leases");
        let holders: Vec<&String> = markers
            .iter()
            .filter(|m| match (&leases, lease_of.get(m.as_str())) {
                (Some(l), Some(lease)) => l.iter().any(|x| x == lease),
                // an old history, or a marker without an enter: count it
                _ => true,
            })
            .collect();
        for m in markers.iter().filter(|m| !holders.contains(m)) {
            let lease = lease_of.get(m.as_str()).copied().unwrap_or_default();
            if !lost.contains(lease) && untold.insert(m.clone()) {
                r.violation(
                    format!(
                        "semaphore {sem}: marker {m} is listed without its lease {lease}, but \
                         that guard never reported itself lost"
                    ),
                    vec![o.id],
                    o.end_us(),
                );
            }
        }
        if holders.len() < markers.len() {
            stale_listings += 1;
            stale.extend(
                markers
                    .iter()
                    .filter(|m| !holders.contains(m))
                    .map(|m| format!("{sem}-in/{m}")),
            );
        }
        match worst.iter_mut().find(|(s, _, _)| s == sem) {
            Some(w) => w.2 = w.2.max(holders.len()),
            None => worst.push((sem.to_owned(), max, holders.len())),
        }
        if let Some(l) = leases.as_ref().filter(|l| l.len() as i64 > max) {
            r.violation(
                format!(
                    "semaphore {sem} (max {max}) had {} leases at once: {l:?}",
                    l.len()
                ),
                vec![o.id],
                o.end_us(),
            );
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
    if stale_listings > 0 {
        let shown: Vec<&String> = stale.iter().take(5).collect();
        r.notes.push(format!(
            "{stale_listings} listings showed markers whose lease was already gone (a lost \
             guard gave it up; not counted as holders): {} markers, e.g. {shown:?}",
            stale.len()
        ));
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

    /// An `enter` of `marker` fenced by lease node `lease`.
    fn enter(b: &mut Builder, marker: &str, lease: &str) {
        b.op(
            "semaphore",
            1,
            1,
            "enter",
            json!({"sem": "/s2", "guard": format!("/s2/{lease}"), "marker": format!("/s2-in/{marker}")}),
            1,
            Some(2),
            Outcome::Ok,
            json!(null),
        );
    }

    fn snapshot(b: &mut Builder, leases: &[&str], holders: &[&str]) {
        b.op(
            "semaphore",
            1,
            1,
            "observe",
            json!({"sem": "/s2", "max": 2}),
            10,
            Some(20),
            Outcome::Ok,
            json!({ "leases": leases, "holders": holders }),
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

    #[test]
    fn marker_whose_lease_is_gone_is_not_a_holder() {
        let mut b = Builder::default();
        for (m, l) in [("a", "la"), ("b", "lb"), ("c", "lc")] {
            enter(&mut b, m, l);
        }
        // a's lease was given up (its guard was lost); its marker is still there
        b.info(
            "semaphore",
            1,
            "lost",
            5,
            json!({"guard": "/s2/la", "reason": "Suspended"}),
        );
        snapshot(&mut b, &["lb", "lc"], &["a", "b", "c"]);
        let r = check(&b.build());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("1 listings showed markers whose lease was already gone")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn lease_vanished_from_under_a_guard_not_lost_is_flagged() {
        let mut b = Builder::default();
        enter(&mut b, "a", "la");
        snapshot(&mut b, &[], &["a"]);
        snapshot(&mut b, &[], &["a"]);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "once per marker: {:?}", r.violations);
        assert!(r.violations[0]
            .message
            .contains("marker a is listed without its lease la, but that guard never reported"));
    }

    #[test]
    fn more_than_max_holders_with_their_leases_is_flagged() {
        let mut b = Builder::default();
        for (m, l) in [("a", "la"), ("b", "lb"), ("c", "lc")] {
            enter(&mut b, m, l);
        }
        snapshot(&mut b, &["la", "lb", "lc"], &["a", "b", "c"]);
        let r = check(&b.build());
        let msgs: Vec<&str> = r.violations.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("had 3 leases at once"), "{msgs:?}");
        assert!(msgs[1].contains("3 fenced holders"), "{msgs:?}");
    }

    #[test]
    fn more_than_max_leases_is_flagged_without_markers() {
        let mut b = Builder::default();
        snapshot(&mut b, &["la", "lb", "lc"], &[]);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("had 3 leases at once"));
    }
}
