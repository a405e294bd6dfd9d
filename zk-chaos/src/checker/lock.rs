//! Lock / WriteLock / ReadLock checker.
//!
//! History the workload writes (workload `lock`):
//! * `read` `{guard}` → `{value}`: the counter, read while holding `guard`;
//! * `fenced-write` `{guard, value}`: `multi([check(guard node), set_data(counter, value)])`
//!   where `value` = the value read + 1 (unversioned on purpose: an overlap shows as a lost
//!   update instead of being hidden by a version check);
//! * `fenced-check` `{guard, r1, r2}`: a reader read `r1`, later `r2`, then ran a fenced empty
//!   transaction;
//! * info `lost` `{guard}`: the guard's lost signal fired;
//! * info `final` `{counter}`: the counter read after the heal.
//!
//! Checks:
//! 1. no two acknowledged fenced writes wrote the same value (both holders read the same
//!    counter: their exclusive sections overlapped);
//! 2. the final counter lies in `[acked, acked + unknown]` fenced writes;
//! 3. no fenced write invoked after its guard reported lost succeeded;
//! 4. a reader whose fenced check succeeded saw the same counter at both ends of its hold
//!    (no writer overlapped it);
//! 5. a guard is not lost at birth (see the code);
//! 6. **tenure overlap** (exclusive holders, and readers against writers), judged from the
//!    guards' sequence numbers and successful fenced operations ([`super::guards`]): a guard
//!    handed out while a conflicting lower guard still existed (a fenced write or check of
//!    the lower one, invoked after the hand-out, succeeded) is two holders at once, whether
//!    or not their read-modify-writes interleaved or wrote the same value (checks 1 and 4
//!    see only those narrower forms). A reader's and a writer's guards conflict; two
//!    readers' do not.

use super::CheckResult;
use crate::history::{History, Op, Outcome};
use std::collections::HashMap;

/// How long before an acquisition completed a recorded transition may still have happened
/// after the acquisition's final ownership check.
pub const BIRTH_SLACK_US: u64 = 200_000;

/// Checks the `lock` workload.
pub fn check(h: &History) -> CheckResult {
    let mut r = CheckResult::new("lock");
    let ops: Vec<&Op> = h.ops_of("lock").collect();
    r.checked = ops.len();

    // 1. exclusive fenced writes never share a value
    let mut by_value: HashMap<i64, Vec<&Op>> = HashMap::new();
    let (mut acked, mut unknown) = (0i64, 0i64);
    for o in ops.iter().filter(|o| o.op == "fenced-write") {
        match o.outcome {
            Outcome::Ok => {
                acked += 1;
                if let Some(v) = o.arg_i64("value") {
                    by_value.entry(v).or_default().push(o);
                }
            }
            Outcome::Unknown => unknown += 1,
            Outcome::Fail => {}
        }
    }
    let mut dup: Vec<_> = by_value.into_iter().filter(|(_, v)| v.len() > 1).collect();
    dup.sort_by_key(|(v, _)| *v);
    for (value, writers) in dup {
        let guards: Vec<&str> = writers
            .iter()
            .map(|o| o.arg_str("guard").unwrap_or("?"))
            .collect();
        r.violation(
            format!(
                "{} acknowledged fenced writes all wrote {value} (each read {}): exclusive holders {guards:?} overlapped",
                writers.len(),
                value - 1
            ),
            writers.iter().map(|o| o.id).collect(),
            writers.iter().map(|o| o.end_us()).min().unwrap_or(0),
        );
    }

    // 2. final counter within [acked, acked + unknown]
    let final_counter = h
        .infos_of("lock")
        .filter(|e| e.op == "final")
        .filter_map(|e| e.args.get("counter").and_then(|v| v.as_i64()))
        .next_back();
    match final_counter {
        Some(c) if c < acked => r.violation(
            format!("final counter {c} < {acked} acknowledged fenced increments: lost updates"),
            vec![],
            u64::MAX,
        ),
        Some(c) if c > acked + unknown => r.violation(
            format!(
                "final counter {c} > {acked} acknowledged + {unknown} unknown fenced increments: writes applied that were reported not applied"
            ),
            vec![],
            u64::MAX,
        ),
        Some(c) => r.notes.push(format!(
            "counter {c}: {acked} acknowledged, {} of {unknown} unknown increments applied",
            c - acked
        )),
        None => r
            .notes
            .push("no final counter read (the run was interrupted?)".into()),
    }

    // 3. no success after the guard reported lost
    let mut lost_at: HashMap<&str, u64> = HashMap::new();
    for e in h.infos_of("lock").filter(|e| e.op == "lost") {
        if let Some(g) = e.args.get("guard").and_then(|v| v.as_str()) {
            lost_at.entry(g).or_insert(e.t_us);
        }
    }
    for o in ops
        .iter()
        .filter(|o| matches!(o.op.as_str(), "fenced-write" | "fenced-check"))
        .filter(|o| o.outcome == Outcome::Ok)
    {
        let Some(g) = o.arg_str("guard") else {
            continue;
        };
        if let Some(&t) = lost_at.get(g) {
            if o.invoke_us > t {
                r.violation(
                    format!(
                        "{} through guard {g} succeeded although it was invoked {} ms after the guard reported lost",
                        o.op,
                        (o.invoke_us - t) / 1000
                    ),
                    vec![o.id],
                    o.end_us(),
                );
            }
        }
    }

    // 5. a guard is not lost at birth: a Suspended / SessionLost signal needs a transition of
    //    its client after the guard was handed out, i.e. after the acquisition's final
    //    ownership check (state lines are recorded by another task: a transition recorded up
    //    to BIRTH_SLACK_US before the acquisition completed, or up to 1 s after the signal,
    //    counts too)
    let mut acquired: HashMap<&str, &Op> = HashMap::new();
    for o in ops
        .iter()
        .filter(|o| o.op == "acquire" && o.outcome == Outcome::Ok)
    {
        if let Some(g) = o.result.get("guard").and_then(|v| v.as_str()) {
            acquired.insert(g, o);
        }
    }
    for e in h.infos_of("lock").filter(|e| e.op == "lost") {
        let reason = e.args.get("reason").and_then(|v| v.as_str()).unwrap_or("");
        if !matches!(reason, "Suspended" | "SessionLost") {
            continue;
        }
        let Some(g) = e.args.get("guard").and_then(|v| v.as_str()) else {
            continue;
        };
        let Some(acq) = acquired.get(g) else { continue };
        let transition = h.infos_of("lock").any(|s| {
            s.op == "state"
                && s.client == e.client
                && s.args.get("state").and_then(|v| v.as_str()) != Some("CONNECTED")
                && s.t_us + BIRTH_SLACK_US >= acq.end_us()
                && s.t_us <= e.t_us + 1_000_000
        });
        if !transition {
            r.violation(
                format!(
                    "guard {g} reported lost ({reason}) {} ms after it was acquired, but its client reported no SUSPENDED/LOST since then: lost at birth (a transition from before its ownership was checked)",
                    e.t_us.saturating_sub(acq.end_us()) / 1000
                ),
                vec![acq.id],
                e.t_us,
            );
        }
    }

    // 6. tenure overlap by guard order: a conflicting lower guard proven to exist after a
    //    higher one was handed out
    for o in super::guards::overlaps(h, "lock", "acquire", &["fenced-write", "fenced-check"]) {
        let kind = |g: &str| match super::guards::parse(g) {
            Some(n) if !n.exclusive => "reader",
            _ => "exclusive holder",
        };
        let released = ops
            .iter()
            .find(|r| r.op == "release" && r.arg_str("guard") == Some(o.low))
            .map_or("never released".to_owned(), |r| {
                format!("released at {:.3} s", r.invoke_us as f64 / 1e6)
            });
        r.violation(
            format!(
                "{} {} was handed out at {:.3} s while the lower {} {} still existed (its {} invoked at {:.3} s succeeded; {released}): two holders at once",
                kind(o.high),
                o.high,
                o.acquired.end_us() as f64 / 1e6,
                kind(o.low),
                o.low,
                o.fenced.op,
                o.fenced.invoke_us as f64 / 1e6,
            ),
            vec![o.acquired.id, o.fenced.id],
            o.fenced.invoke_us,
        );
    }

    // 4. readers never overlap a writer
    for o in ops
        .iter()
        .filter(|o| o.op == "fenced-check" && o.outcome == Outcome::Ok)
    {
        let (r1, r2) = (o.arg_i64("r1"), o.arg_i64("r2"));
        if let (Some(r1), Some(r2)) = (r1, r2) {
            if r1 != r2 {
                r.violation(
                    format!(
                        "reader {} saw the counter move from {r1} to {r2} while it held the read lock (its fenced check succeeded afterwards): a writer overlapped it",
                        o.arg_str("guard").unwrap_or("?")
                    ),
                    vec![o.id],
                    o.end_us(),
                );
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testutil::Builder;
    use serde_json::json;

    fn write(b: &mut Builder, guard: &str, value: i64, t0: u64, t1: u64, outcome: Outcome) -> u64 {
        b.op(
            "lock",
            1,
            1,
            "fenced-write",
            json!({"guard": guard, "value": value}),
            t0,
            Some(t1),
            outcome,
            json!(null),
        )
    }

    #[test]
    fn clean_history_passes() {
        let mut b = Builder::default();
        write(&mut b, "/l/a", 1, 10, 20, Outcome::Ok);
        write(&mut b, "/l/b", 2, 30, 40, Outcome::Unknown);
        write(&mut b, "/l/c", 3, 50, 60, Outcome::Ok);
        b.info("lock", -1, "final", 100, json!({"counter": 3}));
        let r = check(&b.build());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn overlapping_exclusive_writes_are_flagged() {
        let mut b = Builder::default();
        write(&mut b, "/l/a", 1, 10, 20, Outcome::Ok);
        write(&mut b, "/l/b", 1, 12, 22, Outcome::Ok);
        b.info("lock", -1, "final", 100, json!({"counter": 1}));
        let r = check(&b.build());
        assert!(r
            .violations
            .iter()
            .any(|v| v.message.contains("overlapped")));
        assert!(r
            .violations
            .iter()
            .any(|v| v.message.contains("lost updates")));
    }

    #[test]
    fn counter_above_acked_plus_unknown_is_flagged() {
        let mut b = Builder::default();
        write(&mut b, "/l/a", 1, 10, 20, Outcome::Ok);
        write(&mut b, "/l/b", 2, 30, 40, Outcome::Fail);
        b.info("lock", -1, "final", 100, json!({"counter": 2}));
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("reported not applied"));
    }

    #[test]
    fn success_after_lost_is_flagged() {
        let mut b = Builder::default();
        b.info("lock", 1, "lost", 15, json!({"guard": "/l/a"}));
        write(&mut b, "/l/a", 1, 20, 30, Outcome::Ok);
        b.info("lock", -1, "final", 100, json!({"counter": 1}));
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("reported lost"));
    }

    #[test]
    fn guard_lost_without_a_transition_is_flagged() {
        let mut b = Builder::default();
        // a: a blip during the acquisition, well before it completed, then "lost" at once
        acquire(&mut b, 1, "/l/a", 1_000_000, 2_000_000);
        b.info("lock", 1, "state", 1_200_000, json!({"state": "SUSPENDED"}));
        b.info(
            "lock",
            1,
            "lost",
            2_000_100,
            json!({"guard": "/l/a", "reason": "Suspended"}),
        );
        // b: a real suspension after it was acquired
        acquire(&mut b, 2, "/l/b", 3_000_000, 3_100_000);
        b.info("lock", 2, "state", 3_500_000, json!({"state": "SUSPENDED"}));
        b.info(
            "lock",
            2,
            "lost",
            3_500_100,
            json!({"guard": "/l/b", "reason": "Suspended"}),
        );
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("/l/a"));
    }

    #[test]
    fn writer_overlapping_reader_is_flagged() {
        let mut b = Builder::default();
        b.op(
            "lock",
            2,
            2,
            "fenced-check",
            json!({"guard": "/l/r", "r1": 4, "r2": 5}),
            10,
            Some(20),
            Outcome::Ok,
            json!(null),
        );
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("writer overlapped"));
    }

    fn acquire(b: &mut Builder, client: i64, guard: &str, t0: u64, t1: u64) {
        b.op(
            "lock",
            client,
            client,
            "acquire",
            json!({"kind": "lock"}),
            t0,
            Some(t1),
            Outcome::Ok,
            json!({ "guard": guard }),
        );
    }

    fn fenced(b: &mut Builder, client: i64, op: &str, guard: &str, t0: u64, t1: u64) {
        b.op(
            "lock",
            client,
            client,
            op,
            json!({"guard": guard, "value": t0 as i64, "r1": 0, "r2": 0}),
            t0,
            Some(t1),
            Outcome::Ok,
            json!(null),
        );
    }

    const A: &str = "/l/p/aa__lock__0000000003";
    const B: &str = "/l/p/bb__lock__0000000005";
    const RA: &str = "/l/p/aa__rlock__0000000003";
    const RB: &str = "/l/p/bb__rlock__0000000005";

    #[test]
    fn a_lower_guard_writing_after_a_higher_one_was_handed_out_is_two_holders() {
        let mut b = Builder::default();
        acquire(&mut b, 1, A, 100, 200);
        acquire(&mut b, 2, B, 150, 300);
        fenced(&mut b, 2, "fenced-write", B, 330, 400);
        fenced(&mut b, 1, "fenced-write", A, 520, 600);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("two holders at once"));
    }

    #[test]
    fn a_lower_guard_that_wrote_before_the_hand_out_passes() {
        let mut b = Builder::default();
        acquire(&mut b, 1, A, 100, 200);
        fenced(&mut b, 1, "fenced-write", A, 210, 250);
        acquire(&mut b, 2, B, 150, 300);
        fenced(&mut b, 2, "fenced-write", B, 330, 400);
        // the lower guard's write was invoked before the hand-out, even if it completed after
        fenced(&mut b, 1, "fenced-write", A, 290, 350);
        let r = check(&b.build());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn readers_share_but_never_overlap_a_writer() {
        // two readers: fine
        let mut b = Builder::default();
        acquire(&mut b, 1, RA, 100, 200);
        acquire(&mut b, 2, RB, 150, 300);
        fenced(&mut b, 1, "fenced-check", RA, 400, 500);
        assert!(check(&b.build()).violations.is_empty());
        // a writer handed out while a lower reader still held
        let mut b = Builder::default();
        acquire(&mut b, 1, RA, 100, 200);
        acquire(&mut b, 2, B, 150, 300);
        fenced(&mut b, 1, "fenced-check", RA, 400, 500);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("reader"));
        // a reader handed out while a lower writer still held
        let mut b = Builder::default();
        acquire(&mut b, 1, A, 100, 200);
        acquire(&mut b, 2, RB, 150, 300);
        fenced(&mut b, 1, "fenced-write", A, 400, 500);
        assert_eq!(check(&b.build()).violations.len(), 1);
    }
}
