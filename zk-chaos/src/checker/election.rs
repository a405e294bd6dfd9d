//! Election checker.
//!
//! A leader writes its guard's path to a log node with `multi([check(its node), set_data])`
//! (`fenced-write` `{guard}` → `{version}`). The server orders those writes by version, so the
//! acknowledged writes sorted by version give the sequence of terms as the server saw them:
//! 1. terms never overlap: once another leader's fenced write is applied, no fenced write of an
//!    earlier leader is applied (a guard never reappears after another one);
//! 2. **leaders by campaign result**: the election is the lock recipe on the election path, so
//!    a candidate whose campaign returned its guard at `T` while a lower candidate's fenced
//!    write invoked at or after `T` succeeded led at the same time as that one (see
//!    [`super::guards`]): caught even when the two leaders' writes do not alternate by
//!    version (a new leader that writes only after the old one's last write);
//! 3. after the heal, some candidate leads (is elected or writes fenced) within
//!    [`LEADER_BOUND_US`] (when the run lasted that long after the heal).
//!
//! A version acknowledged to two fenced writes is noted: the server lost the first (the log's
//! version went back), which is what makes check 1 fail without any fault of the recipe.
//!
//! A campaign that waited in vain is followed by a listing of the candidates' nodes (`sync`,
//! then `list` → `{children}`). Check 3's violation is never excused, but it is *explained by
//! lost writes* when a listing taken in the window names, as the lowest candidate, a node that
//! the listing client had resigned earlier in the same session, with the resign acknowledged
//! and its guard still held when it began (a lost guard's release may delete nothing): a
//! session sees its own writes, so only a server that lost the delete lists it again, and an
//! ephemeral node of a live session stays until the session ends, blocking every candidate
//! behind it.

use super::CheckResult;
use crate::history::{History, Outcome};

/// How soon after the heal a leader must show: two session timeouts (3 s each: the old
/// leader's session may have to expire) plus 9 s for reconnects, a restarted server and the
/// campaign itself.
pub const LEADER_BOUND_US: u64 = 15_000_000;

/// Checks the `election` workload.
pub fn check(h: &History) -> CheckResult {
    let mut r = CheckResult::new("election");
    let ops: Vec<_> = h.ops_of("election").collect();
    r.checked = ops.len();
    let mut writes: Vec<(i64, &str, u64, u64)> = ops
        .iter()
        .filter(|o| o.op == "fenced-write" && o.outcome == Outcome::Ok)
        .filter_map(|o| Some((o.res_i64("version")?, o.arg_str("guard")?, o.id, o.end_us())))
        .collect();
    writes.sort_unstable();
    let mut ended: Vec<&str> = Vec::new();
    let mut terms = 0;
    for w in writes.windows(2) {
        let ((_, a, _, _), (v, b, id, t)) = (w[0], w[1]);
        if a == b {
            continue;
        }
        terms += 1;
        ended.push(a);
        if ended.contains(&b) {
            r.violation(
                format!("leader {b} wrote (version {v}) after its term had been followed by another leader's ({a}): terms overlapped"),
                vec![id],
                t,
            );
        }
    }
    for o in super::guards::overlaps(h, "election", "campaign", &["fenced-write"]) {
        r.violation(
            format!(
                "candidate {} was elected at {:.3} s while the lower candidate {} still led (its fenced write invoked at {:.3} s succeeded): two leaders at once",
                o.high,
                o.acquired.end_us() as f64 / 1e6,
                o.low,
                o.fenced.invoke_us as f64 / 1e6,
            ),
            vec![o.acquired.id, o.fenced.id],
            o.fenced.invoke_us,
        );
    }
    r.notes.push(format!(
        "{} fenced writes in {} terms",
        writes.len(),
        terms + usize::from(!writes.is_empty())
    ));
    // two acknowledged writes that made the same version of the log node: the server lost the
    // first one (the node's version went back), and every term after it is out of order
    let reused: Vec<i64> = writes
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[0].0)
        .collect();
    if !reused.is_empty() {
        r.notes.push(format!(
            "{} versions of the log acknowledged to two fenced writes (the server lost acknowledged writes), first {:?}",
            reused.len(),
            &reused[..reused.len().min(5)]
        ));
    }

    let healed = h
        .infos_of("nemesis")
        .find(|e| e.op == "healed")
        .map(|e| e.t_us);
    let last = h.events.iter().map(|e| e.t_us).max().unwrap_or(0);
    if let Some(healed) = healed {
        if last > healed + LEADER_BOUND_US {
            let led = ops.iter().any(|o| {
                matches!(o.op.as_str(), "campaign" | "fenced-write")
                    && o.outcome == Outcome::Ok
                    && (o.op != "campaign" || o.result.get("guard").is_some_and(|g| !g.is_null()))
                    && o.complete_us
                        .is_some_and(|t| t >= healed && t <= healed + LEADER_BOUND_US)
            });
            if !led {
                let why = blocked_by_lost_delete(&ops, healed, healed + LEADER_BOUND_US);
                r.violation(
                    format!(
                        "no leader within {} s after the heal{why}",
                        LEADER_BOUND_US / 1_000_000
                    ),
                    vec![],
                    healed + LEADER_BOUND_US,
                );
            }
        }
    }
    r
}

/// The sequence number that ends a candidate node's name.
fn sequence(name: &str) -> Option<u64> {
    let digits = name.len() - name.bytes().rev().take_while(u8::is_ascii_digit).count();
    name[digits..].parse().ok()
}

/// Why no candidate led in `from..=to`, when a listing shows it: the lowest candidate node is
/// one its own client resigned (acknowledged) earlier in the listing's session.
fn blocked_by_lost_delete(ops: &[&crate::history::Op], from: u64, to: u64) -> String {
    let name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
    for list in ops.iter().rev().filter(|o| {
        o.op == "list"
            && o.outcome == Outcome::Ok
            && o.complete_us.is_some_and(|t| t >= from && t <= to)
    }) {
        let children = list.result.get("children").and_then(|c| c.as_array());
        let Some((_, lowest)) = children
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str())
            .filter_map(|c| Some((sequence(c)?, c)))
            .min()
        else {
            continue;
        };
        if list.session == 0 || list.session_after != list.session {
            continue;
        }
        // a resign that deleted the node: its guard still held it (a lost guard's release
        // may delete nothing), in the listing's session from end to end
        let resign = ops.iter().find(|o| {
            o.op == "resign"
                && o.outcome == Outcome::Ok
                && o.args.get("held").and_then(|v| v.as_bool()) == Some(true)
                && o.client == list.client
                && o.session == list.session
                && o.session_after == list.session
                && o.end_us() < list.invoke_us
                && o.arg_str("guard").is_some_and(|g| name(g) == lowest)
        });
        if let Some(resign) = resign {
            return format!(
                "; explained by lost writes: client {}'s listing at {:.3} s has as its lowest \
                 candidate {lowest}, which that client had resigned in the same session \
                 (acknowledged at {:.3} s)",
                list.client,
                list.end_us() as f64 / 1e6,
                resign.end_us() as f64 / 1e6,
            );
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testutil::Builder;
    use serde_json::json;

    fn write(b: &mut Builder, guard: &str, version: i64, t: u64) {
        b.op(
            "election",
            1,
            1,
            "fenced-write",
            json!({"guard": guard}),
            t,
            Some(t + 5),
            Outcome::Ok,
            json!({"version": version}),
        );
    }

    #[test]
    fn successive_terms_pass() {
        let mut b = Builder::default();
        write(&mut b, "/e/a", 1, 10);
        write(&mut b, "/e/a", 2, 20);
        write(&mut b, "/e/b", 3, 30);
        write(&mut b, "/e/c", 4, 40);
        assert!(check(&b.build()).violations.is_empty());
    }

    #[test]
    fn overlapping_terms_are_flagged() {
        let mut b = Builder::default();
        write(&mut b, "/e/a", 1, 10);
        write(&mut b, "/e/b", 2, 20);
        write(&mut b, "/e/a", 3, 30);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("overlapped"));
    }

    #[test]
    fn a_version_acknowledged_twice_is_noted_as_a_lost_write() {
        let mut b = Builder::default();
        write(&mut b, "/e/a", 1, 10);
        write(&mut b, "/e/a", 2, 20);
        write(&mut b, "/e/b", 2, 30);
        let r = check(&b.build());
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("1 versions of the log acknowledged to two")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn no_leader_after_the_heal_is_flagged() {
        let mut b = Builder::default();
        write(&mut b, "/e/a", 1, 10);
        b.info("nemesis", -1, "healed", 1_000_000, json!({}));
        b.info("election", -1, "final", 30_000_000, json!({}));
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("no leader"));
    }

    /// A leaderless window whose listing (client 1, session `list_session`) has as its lowest
    /// node one that client 1 resigned in session 1.
    fn leaderless_with_a_listed_resigned_node(list_session: i64, held: bool) -> CheckResult {
        let mut b = Builder::default();
        let a = "/e/p/c1__lock__0000000007";
        write(&mut b, a, 1, 10);
        b.op(
            "election",
            1,
            1,
            "resign",
            json!({ "guard": a, "held": held }),
            20,
            Some(30),
            Outcome::Ok,
            json!(null),
        );
        b.info("nemesis", -1, "healed", 1_000_000, json!({}));
        b.op(
            "election",
            1,
            list_session,
            "list",
            json!({}),
            5_000_000,
            Some(5_000_100),
            Outcome::Ok,
            json!({ "children": ["c2__lock__0000000009", "leftover", "c1__lock__0000000007"] }),
        );
        b.info("election", -1, "final", 30_000_000, json!({}));
        check(&b.build())
    }

    #[test]
    fn no_leader_behind_a_resigned_node_is_explained_by_lost_writes() {
        let r = leaderless_with_a_listed_resigned_node(1, true);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        let m = &r.violations[0].message;
        assert!(m.contains("no leader"), "{m}");
        assert!(
            m.contains("explained by lost writes: client 1's listing at 5.000 s has as its lowest candidate c1__lock__0000000007"),
            "{m}"
        );
    }

    #[test]
    fn a_resigned_node_explains_nothing_from_another_session_or_a_lost_guard() {
        // the resign was in session 1: a listing in session 2 may come from a server behind;
        // a lost guard's release may delete nothing, so its node listed again is no lost write
        for (list_session, held) in [(2, true), (1, false)] {
            let r = leaderless_with_a_listed_resigned_node(list_session, held);
            assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
            let m = &r.violations[0].message;
            assert!(!m.contains("explained"), "{list_session} {held}: {m}");
        }
    }

    #[test]
    fn a_candidate_elected_while_a_lower_one_still_writes_is_flagged() {
        let mut b = Builder::default();
        let campaign = |b: &mut Builder, guard: &str, t0, t1| {
            b.op(
                "election",
                2,
                2,
                "campaign",
                json!({}),
                t0,
                Some(t1),
                Outcome::Ok,
                json!({ "guard": guard }),
            );
        };
        let (a, bb) = ("/e/p/a__lock__0000000001", "/e/p/b__lock__0000000002");
        campaign(&mut b, a, 100, 200);
        write(&mut b, a, 1, 210);
        campaign(&mut b, bb, 150, 400);
        write(&mut b, a, 2, 410);
        write(&mut b, bb, 3, 420);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("two leaders at once"));
    }
}
