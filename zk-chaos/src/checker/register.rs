//! Register checker: linearizable writes, sequentially consistent reads per session.
//!
//! ZooKeeper orders every write (and conditional write) in one total order that respects real
//! time: writes are linearizable. Reads are served by whichever server the session is connected
//! to and may be stale, but a session never goes back in time and always sees its own writes:
//! reads are sequentially consistent per session. This checker tests both, per key:
//!
//! * **Writes** (`write` `{key, value}` → `{version}`, `cas` `{key, expect, value}` →
//!   `{version}` or a definite `{bad_version: true}` failure) and the final `sync`ed read the
//!   harness makes after the heal are searched for a linearization with the Wing & Gong /
//!   Lowe algorithm (as Knossos and Porcupine do), against a register of `(version, value)`.
//!   An operation whose outcome is unknown (connection loss, timeout after sending, never
//!   completed) may take effect at any point after its invocation, or never. A `fail` other
//!   than a version mismatch is a promise that nothing was applied, and is left out.
//! * **Reads** (`read` `{key}` → `{value, version}`) per session: versions never go backwards
//!   (counting the versions the session's own writes returned), and the value read at a version
//!   is the value some write wrote there.

use super::CheckResult;
use crate::history::{History, Op, Outcome};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Search budget per key; beyond it the key is reported as inconclusive (not a violation).
pub const STEP_BUDGET: u64 = 5_000_000;

/// Checks the `register` workload.
pub fn check(h: &History) -> CheckResult {
    let mut r = CheckResult::new("register");
    let ops: Vec<&Op> = h.ops_of("register").collect();
    r.checked = ops.len();
    let finals: BTreeMap<String, (i64, String)> = h
        .infos_of("register")
        .rfind(|e| e.op == "final")
        .and_then(|e| e.args.get("keys"))
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    Some((
                        k.clone(),
                        (
                            v.get("version")?.as_i64()?,
                            v.get("value")?.as_str()?.to_owned(),
                        ),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let init = h
        .infos_of("register")
        .find(|e| e.op == "init")
        .and_then(|e| {
            e.args
                .get("value")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "init".to_owned());

    let mut keys: Vec<&str> = ops.iter().filter_map(|o| o.arg_str("key")).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let key_ops: Vec<&Op> = ops
            .iter()
            .copied()
            .filter(|o| o.arg_str("key") == Some(key))
            .collect();
        check_writes(&mut r, key, &key_ops, &init, finals.get(key));
        check_reads(&mut r, key, &key_ops, &init);
    }
    r
}

#[derive(Debug, Clone)]
enum LinKind {
    Write {
        value: u32,
        ret: Option<i64>,
    },
    Cas {
        expect: i64,
        value: u32,
        ret: Option<i64>,
    },
    CasFailed {
        expect: i64,
    },
    Read {
        version: i64,
        value: u32,
    },
}

#[derive(Debug, Clone)]
struct LinOp {
    id: u64,
    kind: LinKind,
    call: u64,
    ret: u64,
}

type State = (i64, u32);

fn step(s: State, k: &LinKind, optional: bool) -> Option<State> {
    match *k {
        LinKind::Write { value, ret } => match ret {
            Some(n) if n != s.0 + 1 => None,
            _ => Some((s.0 + 1, value)),
        },
        LinKind::Cas { expect, value, ret } => {
            if s.0 == expect && ret.is_none_or(|n| n == expect + 1) {
                Some((expect + 1, value))
            } else if optional {
                // an unknown cas reaching a server with another version is refused there
                Some(s)
            } else {
                None
            }
        }
        LinKind::CasFailed { expect } => (s.0 != expect).then_some(s),
        LinKind::Read { version, value } => (s == (version, value)).then_some(s),
    }
}

/// Outcome of the linearizability search.
#[derive(Debug, PartialEq, Eq)]
enum Lin {
    Ok,
    /// No linearization: the op whose completion could not be reached.
    Violation(usize),
    Inconclusive,
}

fn linearizable(ops: &[LinOp], init: State) -> Lin {
    let n = ops.len();
    if n == 0 {
        return Lin::Ok;
    }
    // entries: (time, is_return, op index); calls sort before returns at equal times
    let mut entries: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        entries.push((o.call, false, i));
        entries.push((o.ret, true, i));
    }
    entries.sort();
    let m = entries.len();
    let (head, tail) = (m, m + 1);
    let mut next: Vec<usize> = (0..m + 2).map(|i| i + 1).collect();
    let mut prev: Vec<usize> = (0..m + 2).map(|i| i.wrapping_sub(1)).collect();
    next[head] = 0;
    prev[0] = head;
    next[m - 1] = tail;
    prev[tail] = m - 1;
    let mut ret_of = vec![0usize; n];
    for (e, &(_, is_ret, i)) in entries.iter().enumerate() {
        if is_ret {
            ret_of[i] = e;
        }
    }
    let optional: Vec<bool> = ops.iter().map(|o| o.ret == u64::MAX).collect();
    let words = n.div_ceil(64);
    let mut bits = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = init;
    let mut cur = next[head];
    let mut steps = 0u64;
    loop {
        if next[head] == tail {
            return Lin::Ok;
        }
        steps += 1;
        if steps > STEP_BUDGET {
            return Lin::Inconclusive;
        }
        let (_, is_ret, i) = entries[cur];
        if !is_ret {
            if let Some(ns) = step(state, &ops[i].kind, optional[i]) {
                bits[i / 64] |= 1 << (i % 64);
                if cache.insert((bits.clone(), ns)) {
                    stack.push((cur, state));
                    state = ns;
                    // lift the call and its return out of the list
                    let r = ret_of[i];
                    next[prev[cur]] = next[cur];
                    prev[next[cur]] = prev[cur];
                    next[prev[r]] = next[r];
                    prev[next[r]] = prev[r];
                    cur = next[head];
                    continue;
                }
                bits[i / 64] &= !(1 << (i % 64));
            }
            cur = next[cur];
        } else {
            let Some((e, s)) = stack.pop() else {
                return Lin::Violation(i);
            };
            let j = entries[e].2;
            bits[j / 64] &= !(1 << (j % 64));
            state = s;
            let r = ret_of[j];
            next[prev[r]] = r;
            prev[next[r]] = r;
            next[prev[e]] = e;
            prev[next[e]] = e;
            cur = next[e];
        }
    }
}

fn check_writes(
    r: &mut CheckResult,
    key: &str,
    ops: &[&Op],
    init: &str,
    fin: Option<&(i64, String)>,
) {
    let mut values: HashMap<String, u32> = HashMap::new();
    let mut intern = |v: &str| {
        let n = values.len() as u32;
        *values.entry(v.to_owned()).or_insert(n)
    };
    let init_id = intern(init);
    let mut lin = Vec::new();
    let mut last = 0;
    for o in ops {
        last = last.max(o.invoke_us).max(o.complete_us.unwrap_or(0));
        let ret = if o.outcome == Outcome::Unknown {
            u64::MAX
        } else {
            o.end_us()
        };
        let value = o.arg_str("value").map(&mut intern);
        let kind = match (o.op.as_str(), o.outcome, value) {
            ("write", Outcome::Ok | Outcome::Unknown, Some(value)) => LinKind::Write {
                value,
                ret: o.res_i64("version"),
            },
            ("cas", Outcome::Ok | Outcome::Unknown, Some(value)) => LinKind::Cas {
                expect: o.arg_i64("expect").unwrap_or(-1),
                value,
                ret: o.res_i64("version"),
            },
            ("cas", Outcome::Fail, _)
                if o.result.get("bad_version").and_then(|v| v.as_bool()) == Some(true) =>
            {
                LinKind::CasFailed {
                    expect: o.arg_i64("expect").unwrap_or(-1),
                }
            }
            _ => continue,
        };
        lin.push(LinOp {
            id: o.id,
            kind,
            call: o.invoke_us,
            ret,
        });
    }
    if let Some((version, value)) = fin {
        lin.push(LinOp {
            id: 0,
            kind: LinKind::Read {
                version: *version,
                value: intern(value),
            },
            call: last + 1,
            ret: last + 2,
        });
    }
    match linearizable(&lin, (0, init_id)) {
        Lin::Ok => r.notes.push(format!(
            "{key}: {} writes linearizable{}",
            lin.len(),
            fin.map(|f| format!(" (final version {})", f.0))
                .unwrap_or_default()
        )),
        Lin::Inconclusive => r.notes.push(format!(
            "{key}: linearizability search gave up after {STEP_BUDGET} steps (inconclusive)"
        )),
        Lin::Violation(mut i) => {
            // if the writes alone are fine, the final state is what nothing explains
            if fin.is_some() && linearizable(&lin[..lin.len() - 1], (0, init_id)) == Lin::Ok {
                i = lin.len() - 1;
            }
            let op = &lin[i];
            let what = if op.id == 0 {
                format!("the final read {fin:?} after the heal")
            } else {
                format!("operation {} ({:?})", op.id, op.kind)
            };
            // the operations concurrent with or just before it, for the report
            let mut near: Vec<u64> = lin
                .iter()
                .filter(|o| {
                    o.id != 0 && o.call <= op.ret && o.ret >= op.call.saturating_sub(2_000_000)
                })
                .map(|o| o.id)
                .take(20)
                .collect();
            if op.id != 0 && !near.contains(&op.id) {
                near.insert(0, op.id);
            }
            r.violation(
                format!(
                    "{key}: writes are not linearizable: no order of the writes explains {what}"
                ),
                near,
                if op.ret == u64::MAX { op.call } else { op.ret },
            );
        }
    }
}

fn check_reads(r: &mut CheckResult, key: &str, ops: &[&Op], init: &str) {
    // the value each acknowledged write put at its version
    let mut at_version: HashMap<i64, (&str, u64)> = HashMap::new();
    let mut written: HashSet<&str> = HashSet::new();
    written.insert(init);
    for o in ops {
        if matches!(o.op.as_str(), "write" | "cas") && o.outcome != Outcome::Fail {
            if let Some(v) = o.arg_str("value") {
                written.insert(v);
                if let (Outcome::Ok, Some(n)) = (o.outcome, o.res_i64("version")) {
                    at_version.insert(n, (v, o.id));
                }
            }
        }
    }
    at_version.insert(0, (init, 0));
    // per session, in invoke order (a client's operations are sequential)
    let mut seen: HashMap<i64, (i64, u64)> = HashMap::new();
    for o in ops {
        if o.outcome != Outcome::Ok || o.session == 0 || o.session != o.session_after {
            continue;
        }
        let version = o.res_i64("version");
        let Some(version) = version else { continue };
        if o.op == "read" {
            let value = o.result.get("value").and_then(|v| v.as_str()).unwrap_or("");
            if let Some(&(expected, by)) = at_version.get(&version) {
                if expected != value {
                    r.violation(
                        format!("{key}: read {value:?} at version {version}, but write {by} put {expected:?} there"),
                        vec![o.id, by],
                        o.end_us(),
                    );
                }
            } else if !written.contains(value) {
                r.violation(
                    format!("{key}: read {value:?} that no write wrote"),
                    vec![o.id],
                    o.end_us(),
                );
            }
        }
        let entry = seen.entry(o.session).or_insert((i64::MIN, 0));
        if version < entry.0 {
            r.violation(
                format!(
                    "{key}: session {:#x} went back in time: {} saw version {version} after op {} had seen {}",
                    o.session, o.op, entry.1, entry.0
                ),
                vec![entry.1, o.id],
                o.end_us(),
            );
        }
        if version >= entry.0 {
            *entry = (version, o.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testutil::Builder;
    use serde_json::{json, Value};

    #[allow(clippy::too_many_arguments)]
    fn op(
        b: &mut Builder,
        session: i64,
        name: &str,
        args: Value,
        t0: u64,
        t1: Option<u64>,
        outcome: Outcome,
        result: Value,
    ) -> u64 {
        b.op(
            "register", session, session, name, args, t0, t1, outcome, result,
        )
    }

    fn fin(b: &mut Builder, version: i64, value: &str) {
        b.info(
            "register",
            -1,
            "final",
            1000,
            json!({"keys": {"k": {"version": version, "value": value}}}),
        );
    }

    #[test]
    fn concurrent_writes_and_unknowns_pass() {
        let mut b = Builder::default();
        op(
            &mut b,
            1,
            "write",
            json!({"key": "k", "value": "a"}),
            10,
            Some(50),
            Outcome::Ok,
            json!({"version": 2}),
        );
        op(
            &mut b,
            2,
            "write",
            json!({"key": "k", "value": "b"}),
            20,
            Some(40),
            Outcome::Ok,
            json!({"version": 1}),
        );
        op(
            &mut b,
            3,
            "write",
            json!({"key": "k", "value": "c"}),
            60,
            None,
            Outcome::Unknown,
            json!(null),
        );
        op(
            &mut b,
            2,
            "cas",
            json!({"key": "k", "expect": 2, "value": "d"}),
            70,
            Some(80),
            Outcome::Fail,
            json!({"bad_version": true}),
        );
        op(
            &mut b,
            1,
            "read",
            json!({"key": "k"}),
            90,
            Some(95),
            Outcome::Ok,
            json!({"version": 2, "value": "a"}),
        );
        fin(&mut b, 3, "c");
        let r = check(&b.build());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn write_order_against_real_time_is_flagged() {
        let mut b = Builder::default();
        // a finished before b started, yet a got the later version
        op(
            &mut b,
            1,
            "write",
            json!({"key": "k", "value": "a"}),
            10,
            Some(20),
            Outcome::Ok,
            json!({"version": 2}),
        );
        op(
            &mut b,
            2,
            "write",
            json!({"key": "k", "value": "b"}),
            30,
            Some(40),
            Outcome::Ok,
            json!({"version": 1}),
        );
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("not linearizable"));
    }

    #[test]
    fn failed_write_that_applied_is_flagged() {
        let mut b = Builder::default();
        op(
            &mut b,
            1,
            "write",
            json!({"key": "k", "value": "a"}),
            10,
            Some(20),
            Outcome::Ok,
            json!({"version": 1}),
        );
        op(
            &mut b,
            1,
            "write",
            json!({"key": "k", "value": "x"}),
            30,
            Some(40),
            Outcome::Fail,
            json!(null),
        );
        fin(&mut b, 2, "x");
        let r = check(&b.build());
        assert!(
            r.violations
                .iter()
                .any(|v| v.message.contains("final read")),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn bad_version_when_version_matched_is_flagged() {
        let mut b = Builder::default();
        op(
            &mut b,
            1,
            "write",
            json!({"key": "k", "value": "a"}),
            10,
            Some(20),
            Outcome::Ok,
            json!({"version": 1}),
        );
        op(
            &mut b,
            1,
            "cas",
            json!({"key": "k", "expect": 1, "value": "b"}),
            30,
            Some(40),
            Outcome::Fail,
            json!({"bad_version": true}),
        );
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    }

    #[test]
    fn stale_read_within_a_session_is_flagged() {
        let mut b = Builder::default();
        op(
            &mut b,
            1,
            "write",
            json!({"key": "k", "value": "a"}),
            10,
            Some(20),
            Outcome::Ok,
            json!({"version": 1}),
        );
        op(
            &mut b,
            1,
            "read",
            json!({"key": "k"}),
            30,
            Some(40),
            Outcome::Ok,
            json!({"version": 0, "value": "init"}),
        );
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("back in time"));
    }

    #[test]
    fn read_of_wrong_value_is_flagged() {
        let mut b = Builder::default();
        op(
            &mut b,
            1,
            "write",
            json!({"key": "k", "value": "a"}),
            10,
            Some(20),
            Outcome::Ok,
            json!({"version": 1}),
        );
        op(
            &mut b,
            2,
            "read",
            json!({"key": "k"}),
            30,
            Some(40),
            Outcome::Ok,
            json!({"version": 1, "value": "zz"}),
        );
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    }
}
