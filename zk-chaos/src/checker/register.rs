//! Register checker: linearizable writes, sequentially consistent reads per session.
//!
//! ZooKeeper orders every write (and conditional write) in one total order that respects real
//! time: writes are linearizable. Reads are served by whichever server the session is connected
//! to and may be stale, but that server's state is always a prefix of the one write order, and a
//! session never goes back in time (a reconnect only goes to a server at least as new as what
//! the session saw) and always sees its own writes: reads are sequentially consistent. The
//! workload writes a fresh value every time (`c<client>-<n>`), and a node's data version grows
//! by exactly one per applied write, so a `(value, version)` pair names one write and its place
//! in its key's order. Rules, each sound on its own (a violation is a proof, not a suspicion),
//! rather than a full Knossos search over reads:
//!
//! 1. **Writes linearizable, per key.** Writes (`write` `{key, value}` → `{version}`, `cas`
//!    `{key, expect, value}` → `{version}` or a definite `{bad_version: true}` failure) and the
//!    final `sync`ed read the harness makes after the heal are searched for a linearization
//!    with the Wing & Gong / Lowe algorithm (as Knossos and Porcupine do), against a register
//!    of `(version, value)`. An operation whose outcome is unknown (connection loss, timeout
//!    after sending, never completed) may take effect at any point after its invocation, or
//!    never. A `fail` other than a version mismatch is a promise that nothing was applied, and
//!    is left out.
//! 2. **A read returns a written value**: one some `write`/`cas` wrote (acknowledged or
//!    unknown) or the initial value; a value only a failed write wrote is named as such.
//! 3. **One value per version, one version per value.** Every `(value, version)` pair learnt
//!    from an acknowledgement, a read or the final read must agree with the others: a read of
//!    `"c"` at version 2 when `"c"`'s write was acknowledged at version 3 (or version 2 holds
//!    `"b"`, learnt from an unknown write's value read there) is a read no state of the node
//!    ever had.
//! 4. **Reads are bounded by real time.** A read that returns version `v` completed after
//!    every write that made a version up to `v` (as far as rule 3 names them) was invoked: a
//!    follower can be stale, never ahead of the leader.
//! 5. **A session never goes back on one key**: the versions a session reads (and its own
//!    acknowledged writes return) never decrease.
//! 6. **A session never goes back across keys, and 7. one global order explains every
//!    session.** The checker builds a precedence graph over the writes rule 3 names (key,
//!    version): a lower version of a key comes first; a write acknowledged before another was
//!    invoked comes first (real time, through a chain of time points, so no quadratic edge
//!    list); and when a session has seen version `n` of key `a` (by a read or its own write)
//!    and later reads key `b` at version `m`, every write it saw comes before `b`'s write at
//!    the next version above `m` (the session's state, a prefix of the order, held the one and
//!    not yet the other). A cycle is a violation: no single write order is consistent with
//!    real time and with what the sessions saw. A session that read key `b` (written after key
//!    `a`'s write was acknowledged) and then an older `a` makes a two-write cycle through a
//!    real-time edge (rule 6); two sessions that saw two writes in opposite orders make one
//!    through two session edges (rule 7). The first cycle found is reported with each edge's
//!    reason. (A cycle of one key's writes through version and time alone is the write order
//!    against real time that rule 1 reports, and is only noted here.)
//!
//! Rules 5-7 use only operations that began and ended in one session.

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
    let mut versions = BTreeMap::new();
    for key in keys {
        let key_ops: Vec<&Op> = ops
            .iter()
            .copied()
            .filter(|o| o.arg_str("key") == Some(key))
            .collect();
        check_writes(&mut r, key, &key_ops, &init, finals.get(key));
        versions.insert(
            key,
            check_reads(&mut r, key, &key_ops, &init, finals.get(key)),
        );
    }
    check_order(&mut r, &ops, &versions);
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

/// What the history proves about one key: which value, and which write, made each version.
#[derive(Debug, Default)]
struct Versions<'a> {
    /// version -> (value, the write that wrote it; `None` for the initial value)
    by_version: BTreeMap<i64, (&'a str, Option<&'a Op>)>,
}

/// Where a `(value, version)` pair was learnt.
#[derive(Debug, Clone, Copy)]
enum Source {
    Init,
    Ack(u64),
    Read(u64),
    Final,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Init => write!(f, "the initial value"),
            Source::Ack(id) => write!(f, "write {id}'s acknowledgement"),
            Source::Read(id) => write!(f, "read {id}"),
            Source::Final => write!(f, "the final read"),
        }
    }
}

/// Rules 3-5 of the module docs, for one key; returns the versions it learnt.
fn check_reads<'a>(
    r: &mut CheckResult,
    key: &str,
    ops: &[&'a Op],
    init: &'a str,
    fin: Option<&'a (i64, String)>,
) -> Versions<'a> {
    // every value names one write (the workload never writes a value twice)
    let mut writer: HashMap<&str, &Op> = HashMap::new();
    let mut refused: HashMap<&str, &Op> = HashMap::new();
    for o in ops {
        if !matches!(o.op.as_str(), "write" | "cas") {
            continue;
        }
        if let Some(v) = o.arg_str("value") {
            if o.outcome == Outcome::Fail {
                refused.insert(v, o);
            } else {
                writer.insert(v, o);
            }
        }
    }
    // 3. one value per version and one version per value, whoever told it
    let mut facts: Vec<(u64, i64, &str, Source, &Op)> = Vec::new();
    for o in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        let Some(version) = o.res_i64("version") else {
            continue;
        };
        match o.op.as_str() {
            "write" | "cas" => {
                if let Some(v) = o.arg_str("value") {
                    facts.push((o.end_us(), version, v, Source::Ack(o.id), o));
                }
            }
            "read" => {
                let v = o.result.get("value").and_then(|v| v.as_str()).unwrap_or("");
                facts.push((o.end_us(), version, v, Source::Read(o.id), o));
            }
            _ => {}
        }
    }
    facts.sort_by_key(|f| (f.0, f.4.id));
    let mut at_version: BTreeMap<i64, (&str, Source)> = BTreeMap::new();
    let mut version_of: HashMap<&str, (i64, Source)> = HashMap::new();
    at_version.insert(0, (init, Source::Init));
    version_of.insert(init, (0, Source::Init));
    let mut reused = 0usize;
    let mut learn = |r: &mut CheckResult,
                     version: i64,
                     value: &'a str,
                     src: Source,
                     ids: Vec<u64>,
                     t: u64| {
        if value != init && !writer.contains_key(value) {
            let why = match refused.get(value) {
                Some(w) => format!(" (write {} wrote it and was told it failed)", w.id),
                None => String::new(),
            };
            r.violation(
                format!("{key}: {src} returned {value:?} that no write wrote{why}"),
                ids,
                t,
            );
            return;
        }
        if let Some(&(expected, by)) = at_version.get(&version) {
            if expected != value {
                if matches!((src, by), (Source::Ack(_), Source::Ack(_))) {
                    reused += 1;
                }
                r.violation(
                    format!("{key}: {src} returned {value:?} at version {version}, but {by} put {expected:?} there"),
                    ids,
                    t,
                );
            }
            return;
        }
        if let Some(&(other, by)) = version_of.get(value) {
            if other != version {
                r.violation(
                    format!("{key}: {src} returned {value:?} at version {version}, but {by} had it at version {other} (one write makes one version)"),
                    ids,
                    t,
                );
            }
            return;
        }
        at_version.insert(version, (value, src));
        version_of.insert(value, (version, src));
    };
    for &(t, version, value, src, o) in &facts {
        learn(r, version, value, src, vec![o.id], t);
    }
    if let Some((version, value)) = fin {
        learn(r, *version, value, Source::Final, vec![], u64::MAX);
    }
    if reused > 0 {
        r.notes.push(format!(
            "{key}: {reused} versions acknowledged to two writes: the server lost acknowledged writes (the node's version went back), so from there a version names two writes and rules 3-7 cascade; read the first violation"
        ));
    }
    let versions = Versions {
        by_version: at_version
            .iter()
            .map(|(&n, &(v, _))| (n, (v, writer.get(v).copied())))
            .collect(),
    };

    // 4. a read cannot return a version before every write up to it was invoked
    let mut latest: Vec<(i64, u64, u64)> = Vec::new(); // (version, latest invoke up to it, op)
    for (&n, &(_, w)) in &versions.by_version {
        let prev = latest.last().map_or((0, 0), |l| (l.1, l.2));
        let here = w.map_or(prev, |w| {
            if w.invoke_us > prev.0 {
                (w.invoke_us, w.id)
            } else {
                prev
            }
        });
        latest.push((n, here.0, here.1));
    }
    for o in ops
        .iter()
        .filter(|o| o.op == "read" && o.outcome == Outcome::Ok)
    {
        let Some(version) = o.res_i64("version") else {
            continue;
        };
        let i = latest.partition_point(|l| l.0 <= version);
        if i == 0 {
            continue;
        }
        let (_, invoked, by) = latest[i - 1];
        if invoked > o.end_us() {
            r.violation(
                format!(
                    "{key}: read {} completed at {:.6} s returning version {version}, but write {by} (a version up to it) was invoked only at {:.6} s: a read from the future",
                    o.id,
                    o.end_us() as f64 / 1e6,
                    invoked as f64 / 1e6
                ),
                vec![o.id, by],
                // it shows when that write is invoked
                invoked,
            );
        }
    }

    // 5. per session, versions of this key never go backwards (counting the versions the
    //    session's own writes returned)
    let mut seen: HashMap<i64, (i64, u64)> = HashMap::new();
    for o in ops {
        if !in_one_session(o) {
            continue;
        }
        let Some(version) = o.res_i64("version") else {
            continue;
        };
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
    versions
}

/// An answered operation that began and ended in one session.
fn in_one_session(o: &Op) -> bool {
    o.outcome == Outcome::Ok && o.session != 0 && o.session == o.session_after
}

/// Why one write comes before another in the global order.
#[derive(Debug, Clone, Copy)]
enum Why {
    /// Lower version of the same key.
    Version,
    /// The first write was acknowledged before the second was invoked (through time points).
    Time,
    /// A session saw the first (op `saw`) and later read the key of the second at a version
    /// below it (op `read`).
    Session { session: i64, saw: u64, read: u64 },
}

/// Rules 6-7 of the module docs: one global order of every key's writes explains every
/// session's observations and real time. Finds one cycle in the precedence graph.
fn check_order(r: &mut CheckResult, ops: &[&Op], keys: &BTreeMap<&str, Versions<'_>>) {
    // nodes: every known version of every key, then time points
    let mut nodes: Vec<(&str, i64, &str, Option<&Op>)> = Vec::new();
    let mut index: HashMap<(&str, i64), usize> = HashMap::new();
    for (&k, vs) in keys {
        for (&n, &(v, w)) in &vs.by_version {
            index.insert((k, n), nodes.len());
            nodes.push((k, n, v, w));
        }
    }
    let writes = nodes.len();
    let mut edges: Vec<Vec<(usize, Why)>> = vec![Vec::new(); writes];
    // version order
    for (&k, vs) in keys {
        let ns: Vec<i64> = vs.by_version.keys().copied().collect();
        for w in ns.windows(2) {
            edges[index[&(k, w[0])]].push((index[&(k, w[1])], Why::Version));
        }
    }
    // real time: invoke(w) -> w, and an acknowledged w -> complete(w), along a chain of points
    let mut points: Vec<((u64, u8), usize, bool)> = Vec::new(); // ((t, 0 invoke | 1 complete), node, into node)
    for (i, &(_, _, _, w)) in nodes.iter().enumerate() {
        let Some(w) = w else { continue };
        points.push(((w.invoke_us, 0), i, true));
        if w.outcome == Outcome::Ok {
            points.push(((w.end_us(), 1), i, false));
        }
    }
    points.sort_by_key(|p| p.0);
    for (j, &(_, i, into)) in points.iter().enumerate() {
        let p = writes + j;
        edges.push(Vec::new());
        if into {
            edges[p].push((i, Why::Time));
        } else {
            edges[i].push((p, Why::Time));
        }
        if j > 0 {
            edges[p - 1].push((p, Why::Time));
        }
    }
    // sessions: what a session saw comes before what it later read as not yet there
    let mut by_session: BTreeMap<i64, Vec<&Op>> = BTreeMap::new();
    for o in ops.iter().filter(|o| in_one_session(o)) {
        by_session.entry(o.session).or_default().push(o);
    }
    let mut added: HashSet<(usize, usize)> = HashSet::new();
    for (&session, sops) in &by_session {
        let mut seen: BTreeMap<&str, (i64, u64)> = BTreeMap::new();
        for o in sops {
            let (Some(k), Some(n)) = (o.arg_str("key"), o.res_i64("version")) else {
                continue;
            };
            let Some(vs) = keys.get(k) else { continue };
            if o.op == "read" {
                // the first known version above the one read was not there yet
                if let Some((&next, _)) = vs.by_version.range(n + 1..).next() {
                    let x = index[&(k, next)];
                    for (&k2, &(n2, saw)) in seen.iter().filter(|(k2, _)| **k2 != k) {
                        let Some((&m, _)) = keys[k2].by_version.range(..=n2).next_back() else {
                            continue;
                        };
                        let y = index[&(k2, m)];
                        if added.insert((y, x)) {
                            edges[y].push((
                                x,
                                Why::Session {
                                    session,
                                    saw,
                                    read: o.id,
                                },
                            ));
                        }
                    }
                }
            }
            let e = seen.entry(k).or_insert((n, o.id));
            if n > e.0 {
                *e = (n, o.id);
            }
        }
    }
    let Some(cycle) = find_cycle(&edges) else {
        r.notes.push(format!(
            "{writes} known versions: one global write order explains every session's reads"
        ));
        return;
    };
    // a cycle of one key's writes through version and time alone is a write order against real
    // time: the linearizability search (rule 1) reports that one
    let one_key = cycle
        .iter()
        .filter(|&&(i, _)| i < writes)
        .map(|&(i, _)| nodes[i].0)
        .collect::<HashSet<_>>()
        .len()
        == 1;
    if one_key && !cycle.iter().any(|(_, w)| matches!(w, Why::Session { .. })) {
        r.notes.push(format!(
            "{}: its writes' versions contradict real time (see the linearizability result)",
            nodes[cycle.iter().find(|&&(i, _)| i < writes).map_or(0, |c| c.0)].0
        ));
        return;
    }
    // describe the cycle by its writes (time points folded into "acknowledged before invoked")
    let name = |i: usize| {
        let (k, n, v, w) = nodes[i];
        match w {
            Some(w) => format!("{k}@{n} {v:?} (write {})", w.id),
            None => format!("{k}@{n} {v:?}"),
        }
    };
    let mut steps = Vec::new();
    let mut ids = Vec::new();
    let mut t = 0;
    let at = cycle.iter().position(|&(i, _)| i < writes).unwrap_or(0);
    let cyc: Vec<(usize, Why)> = cycle[at..].iter().chain(&cycle[..at]).copied().collect();
    let mut from = cyc[0].0;
    for (j, &(_, why)) in cyc.iter().enumerate() {
        let to = cyc[(j + 1) % cyc.len()].0;
        if to >= writes {
            continue;
        }
        let reason = match why {
            Why::Version => "lower version".to_owned(),
            Why::Time => "acknowledged before the next was invoked".to_owned(),
            Why::Session { session, saw, read } => {
                ids.extend([saw, read]);
                if let Some(o) = ops.iter().find(|o| o.id == read) {
                    t = t.max(o.end_us());
                }
                format!("session {session:#x} saw this (op {saw}), later read without the next (op {read})")
            }
        };
        steps.push(format!("{} -[{reason}]-> ", name(from)));
        from = to;
    }
    steps.push(name(cyc[0].0));
    for &(i, _) in &cyc {
        if let Some(&(_, _, _, Some(w))) = nodes.get(i) {
            ids.push(w.id);
        }
    }
    ids.dedup();
    r.violation(
        format!(
            "no single order of the writes explains what the sessions saw: {}",
            steps.concat()
        ),
        ids,
        t,
    );
}

/// One cycle of a directed graph, as (node, why its edge to the next), if any.
fn find_cycle(edges: &[Vec<(usize, Why)>]) -> Option<Vec<(usize, Why)>> {
    // 0 white, 1 on the stack, 2 done
    let mut color = vec![0u8; edges.len()];
    let mut pos = vec![0usize; edges.len()];
    for start in 0..edges.len() {
        if color[start] != 0 {
            continue;
        }
        let mut stack: Vec<usize> = vec![start];
        color[start] = 1;
        while let Some(&u) = stack.last() {
            if pos[u] < edges[u].len() {
                let (v, _) = edges[u][pos[u]];
                pos[u] += 1;
                match color[v] {
                    0 => {
                        color[v] = 1;
                        stack.push(v);
                    }
                    1 => {
                        let from = stack.iter().position(|&x| x == v).unwrap_or(0);
                        return Some(
                            stack[from..]
                                .iter()
                                .map(|&x| (x, edges[x][pos[x] - 1].1))
                                .collect(),
                        );
                    }
                    _ => {}
                }
            } else {
                color[u] = 2;
                stack.pop();
            }
        }
    }
    None
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

    fn rd(b: &mut Builder, session: i64, key: &str, t: u64, value: &str, version: i64) {
        op(
            b,
            session,
            "read",
            json!({ "key": key }),
            t,
            Some(t + 10),
            Outcome::Ok,
            json!({"value": value, "version": version}),
        );
    }

    fn wr(b: &mut Builder, session: i64, key: &str, t0: u64, t1: u64, value: &str, version: i64) {
        op(
            b,
            session,
            "write",
            json!({ "key": key, "value": value }),
            t0,
            Some(t1),
            Outcome::Ok,
            json!({ "version": version }),
        );
    }

    #[test]
    fn stale_but_consistent_reads_across_keys_pass() {
        let mut b = Builder::default();
        wr(&mut b, 1, "k0", 100, 200, "a", 1);
        wr(&mut b, 2, "k1", 100, 200, "b", 1);
        // session 3 is behind on both, then sees a before b; session 4 sees both
        rd(&mut b, 3, "k1", 300, "init", 0);
        rd(&mut b, 3, "k0", 320, "a", 1);
        rd(&mut b, 3, "k1", 340, "init", 0);
        rd(&mut b, 3, "k1", 360, "b", 1);
        rd(&mut b, 4, "k1", 300, "b", 1);
        rd(&mut b, 4, "k0", 320, "a", 1);
        let r = check(&b.build());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn a_read_from_the_future_is_flagged() {
        let mut b = Builder::default();
        rd(&mut b, 3, "k", 100, "x", 1);
        wr(&mut b, 1, "k", 300, 400, "x", 1);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("from the future"));
    }

    #[test]
    fn a_value_read_at_another_writes_version_is_flagged() {
        let mut b = Builder::default();
        wr(&mut b, 1, "k", 100, 200, "a", 1);
        wr(&mut b, 2, "k", 300, 400, "c", 2);
        rd(&mut b, 3, "k", 500, "c", 1);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("put \"a\" there"));
    }

    #[test]
    fn sessions_seeing_writes_in_opposite_orders_are_flagged() {
        let mut b = Builder::default();
        wr(&mut b, 1, "k0", 100, 200, "a", 1);
        wr(&mut b, 2, "k1", 100, 200, "b", 1);
        rd(&mut b, 3, "k0", 300, "a", 1);
        rd(&mut b, 3, "k1", 320, "init", 0);
        rd(&mut b, 4, "k1", 300, "b", 1);
        rd(&mut b, 4, "k0", 320, "init", 0);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("no single order"));
    }

    #[test]
    fn a_session_going_back_across_keys_is_flagged() {
        let mut b = Builder::default();
        wr(&mut b, 1, "k0", 100, 200, "a", 1);
        wr(&mut b, 2, "k1", 250, 350, "b", 1);
        rd(&mut b, 3, "k1", 400, "b", 1);
        rd(&mut b, 3, "k0", 420, "init", 0);
        let r = check(&b.build());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].message.contains("acknowledged before"));
    }
}
