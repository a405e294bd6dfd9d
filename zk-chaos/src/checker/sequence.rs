//! Sequence checker: non-idempotent creates through the retry policies.
//!
//! Each `create` `{token}` makes a `PERSISTENT_SEQUENTIAL` node `item-<token>-<seq>` with a
//! token unique to the operation, retried by a policy with `idempotent(false)`. After the heal
//! the harness lists every node (info `final` `{items: [{name, token}]}`). Then per token:
//! * `ok`: exactly one node;
//! * `fail` (the client said "not applied"): no node;
//! * `unknown`: zero or one node (each one is accounted for in the notes);
//! * no node carries a token nobody created.

use super::CheckResult;
use crate::history::{History, Outcome};
use std::collections::HashMap;

/// Checks the `sequence` workload.
pub fn check(h: &History) -> CheckResult {
    let mut r = CheckResult::new("sequence");
    let Some(fin) = h.infos_of("sequence").rfind(|e| e.op == "final") else {
        r.notes
            .push("no final listing (the run was interrupted?)".into());
        return r;
    };
    let mut nodes: HashMap<String, Vec<String>> = HashMap::new();
    for item in fin
        .args
        .get("items")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let token = item.get("token").and_then(|v| v.as_str()).unwrap_or("");
        let name = item.get("name").and_then(|v| v.as_str()).unwrap_or("");
        nodes
            .entry(token.to_owned())
            .or_default()
            .push(name.to_owned());
    }
    let (mut unknown, mut unknown_applied) = (0, 0);
    let mut known = std::collections::HashSet::new();
    for o in h.ops_of("sequence").filter(|o| o.op == "create") {
        r.checked += 1;
        let Some(token) = o.arg_str("token") else {
            continue;
        };
        known.insert(token.to_owned());
        let found = nodes.get(token).map(Vec::as_slice).unwrap_or(&[]);
        let t = o.end_us();
        match (o.outcome, found.len()) {
            (Outcome::Ok, 1) | (Outcome::Fail, 0) | (Outcome::Unknown, 0) => {}
            (Outcome::Unknown, 1) => unknown_applied += 1,
            (Outcome::Ok, 0) => r.violation(
                format!("acknowledged create {token} left no node"),
                vec![o.id],
                t,
            ),
            (Outcome::Fail, n) => r.violation(
                format!(
                    "create {token} was reported not applied ({}) but made {n} node(s): {found:?}",
                    o.error.as_deref().unwrap_or("failed")
                ),
                vec![o.id],
                t,
            ),
            (_, n) => r.violation(
                format!("create {token} made {n} nodes (a retry duplicated it): {found:?}"),
                vec![o.id],
                t,
            ),
        }
        if o.outcome == Outcome::Unknown {
            unknown += 1;
        }
    }
    let mut stray: Vec<&String> = nodes.keys().filter(|t| !known.contains(*t)).collect();
    stray.sort();
    for t in stray {
        r.violation(
            format!(
                "nodes {:?} carry token {t:?} that no operation created",
                nodes[t]
            ),
            vec![],
            u64::MAX,
        );
    }
    r.notes.push(format!(
        "{unknown} unknown creates: {unknown_applied} applied, {} not",
        unknown - unknown_applied
    ));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testutil::Builder;
    use serde_json::json;

    fn create(b: &mut Builder, token: &str, outcome: Outcome) {
        b.op(
            "sequence",
            1,
            1,
            "create",
            json!({ "token": token }),
            10,
            Some(20),
            outcome,
            json!(null),
        );
    }

    fn fin(b: &mut Builder, items: &[(&str, &str)]) {
        let items: Vec<_> = items
            .iter()
            .map(|(n, t)| json!({"name": n, "token": t}))
            .collect();
        b.info("sequence", -1, "final", 100, json!({ "items": items }));
    }

    #[test]
    fn accounted_history_passes() {
        let mut b = Builder::default();
        create(&mut b, "a", Outcome::Ok);
        create(&mut b, "b", Outcome::Unknown);
        create(&mut b, "c", Outcome::Unknown);
        create(&mut b, "d", Outcome::Fail);
        fin(&mut b, &[("i-1", "a"), ("i-2", "b")]);
        let r = check(&b.build());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert!(r.notes[0].contains("2 unknown creates: 1 applied"));
    }

    #[test]
    fn applied_although_reported_not_applied_is_flagged() {
        let mut b = Builder::default();
        create(&mut b, "d", Outcome::Fail);
        fin(&mut b, &[("i-1", "d")]);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1);
        assert!(r.violations[0].message.contains("reported not applied"));
    }

    #[test]
    fn duplicate_is_flagged() {
        let mut b = Builder::default();
        create(&mut b, "a", Outcome::Ok);
        fin(&mut b, &[("i-1", "a"), ("i-2", "a")]);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1);
        assert!(r.violations[0].message.contains("duplicated"));
    }

    #[test]
    fn lost_ack_and_stray_are_flagged() {
        let mut b = Builder::default();
        create(&mut b, "a", Outcome::Ok);
        fin(&mut b, &[("i-1", "zzz")]);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 2, "{:?}", r.violations);
    }
}
