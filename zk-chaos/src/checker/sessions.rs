//! Sessions checker: a closed session leaves nothing behind.
//!
//! Every client ends with `close` (recorded under the session it closes). Right after all
//! clients stopped, the harness lists every ephemeral node under the workloads' roots with its
//! owner (info `ephemerals` `{nodes: [{path, owner}]}`). `close` ends the session on the server
//! (closeSession), which deletes its ephemeral nodes at once; so a node owned by a session
//! whose `close` returned `ok` is a violation. Nodes of sessions that were not closed cleanly
//! (close failed, or a session the client gave up on and replaced) are only counted: the
//! server removes them when it expires the session.

use super::CheckResult;
use crate::history::{History, Outcome};
use std::collections::HashMap;

/// Checks what the sessions left behind.
pub fn check(h: &History) -> CheckResult {
    let mut r = CheckResult::new("sessions");
    let closes: HashMap<i64, (Outcome, u64, i64)> = h
        .ops
        .iter()
        .filter(|o| o.op == "close" && o.session != 0)
        .map(|o| (o.session, (o.outcome, o.id, o.client)))
        .collect();
    r.checked = closes.len();
    let Some(list) = h.infos_of("sessions").rfind(|e| e.op == "ephemerals") else {
        r.notes
            .push("no listing of ephemerals (the run was interrupted?)".into());
        return r;
    };
    let mut unclosed = 0;
    for n in list
        .args
        .get("nodes")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let path = n.get("path").and_then(|v| v.as_str()).unwrap_or("?");
        let owner = n.get("owner").and_then(|v| v.as_i64()).unwrap_or(0);
        match closes.get(&owner) {
            Some(&(Outcome::Ok, id, client)) => r.violation(
                format!(
                    "ephemeral {path} of session {owner:#x} still exists after client {client} closed that session successfully"
                ),
                vec![id],
                list.t_us,
            ),
            _ => unclosed += 1,
        }
    }
    r.notes.push(format!(
        "{} sessions closed; {unclosed} ephemerals of sessions not closed cleanly were left to expire",
        closes.len()
    ));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testutil::Builder;
    use serde_json::json;

    #[test]
    fn ephemeral_after_a_clean_close_is_flagged() {
        let mut b = Builder::default();
        b.op(
            "lock",
            1,
            0x11,
            "close",
            json!({}),
            10,
            Some(20),
            Outcome::Ok,
            json!(null),
        );
        b.op(
            "lock",
            2,
            0x22,
            "close",
            json!({}),
            10,
            Some(20),
            Outcome::Unknown,
            json!(null),
        );
        b.info(
            "sessions",
            -1,
            "ephemerals",
            30,
            json!({"nodes": [{"path": "/l/a", "owner": 0x11}, {"path": "/l/b", "owner": 0x22}]}),
        );
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("/l/a"));
    }
}
