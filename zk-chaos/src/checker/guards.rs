//! Tenure overlap of lock-style guards, judged from their sequence numbers and fenced operations.
//!
//! Lock, WriteLock, ReadLock and Election all queue their contenders as EPHEMERAL_SEQUENTIAL
//! children of one parent `P` (kazoo's names `<uuid>__lock__<seq>` for exclusive contenders and
//! writers, `<uuid>__rlock__<seq>` for readers; Curator's `-lock-`, `-latch-`, `__WRIT__`,
//! `__READ__`). The guard's path is in the history (the acquisition's result and every fenced
//! operation's arguments), so the checker knows each guard's place in the queue without asking
//! the recipe. The facts it builds on:
//!
//! * **Sequence order is creation order.** The server numbers the children of one parent from
//!   one counter, so a lower number was created earlier. (The workloads' parents are persistent
//!   nodes made once before the run and never deleted, so the counter never starts again; a
//!   pair whose order contradicts the history (the lower one's acquisition began after the
//!   higher one was handed out) is skipped rather than judged.)
//! * **A node never comes back.** Once deleted, a sequential node's path is never created
//!   again, so a node that existed at two moments existed at every moment between them.
//! * **A successful fenced operation proves existence.** `multi([check(guard), ...])`
//!   acknowledged `ok` applied while the guard node existed: at some moment inside the
//!   operation's `[invoke, complete]`, so at some moment at or after its invoke.
//! * **Holding is being first.** A writer (or exclusive holder) holds only when no contender
//!   with a lower number exists; a reader, when no *writer* with a lower number exists.
//!   Contenders are never added below an existing node (see the first point), so once a guard
//!   holds it stays first until it is deleted.
//!
//! Hence the rule: guard `H` was handed out (its acquisition returned it) at `T`; a
//! conflicting guard `L` with a lower number (either of the two exclusive) had a fenced
//! operation succeed that was invoked at or after `T`. Then `L`'s node existed after `T`, so it
//! existed at `T` (it was created before `H`'s node, which existed by `T`), and `H` was handed
//! out while a blocker existed: two holders at once. It does not matter whether the two
//! holders' writes interleaved or what values they wrote, and no clock is compared across
//! clients beyond the one recorder clock that orders `T` and the invoke.

use crate::history::{History, Op, Outcome};
use std::collections::HashMap;

/// A guard's place in its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardName<'a> {
    /// The queue's parent path.
    pub parent: &'a str,
    /// The sequence number the server gave the node.
    pub seq: i64,
    /// An exclusive contender or writer (`false`: a reader).
    pub exclusive: bool,
}

/// Parses a guard path into its parent, sequence number and kind; `None` for a path that is
/// not a lock-style contender.
pub fn parse(path: &str) -> Option<GuardName<'_>> {
    let (parent, name) = path.rsplit_once('/')?;
    // the last mark wins: a uuid never contains one, an identifier might
    const MARKS: &[(&str, bool)] = &[
        ("__rlock__", false),
        ("__lock__", true),
        ("__READ__", false),
        ("__WRIT__", true),
        ("-lock-", true),
        ("-latch-", true),
    ];
    let (at, mark, exclusive) = MARKS
        .iter()
        .filter_map(|&(m, x)| name.rfind(m).map(|i| (i, m, x)))
        .max_by_key(|&(i, _, _)| i)?;
    let seq = name[at + mark.len()..].parse().ok()?;
    Some(GuardName {
        parent,
        seq,
        exclusive,
    })
}

/// Two guards of one queue held at once.
#[derive(Debug, Clone)]
pub struct Overlap<'a> {
    /// The higher guard's acquisition (it returned the guard while the lower one existed).
    pub acquired: &'a Op,
    /// The lower guard's first successful fenced operation invoked after that.
    pub fenced: &'a Op,
    /// The higher guard's path.
    pub high: &'a str,
    /// The lower guard's path.
    pub low: &'a str,
}

/// Finds, for every guard handed out by an `acquire_op` of `workload`, a conflicting lower
/// guard proven (by a successful `fenced_ops` operation invoked at or after the hand-out) to
/// still exist: see the module docs. At most one overlap per higher guard (the lower guard
/// proven to exist the latest).
pub fn overlaps<'a>(
    h: &'a History,
    workload: &'a str,
    acquire_op: &str,
    fenced_ops: &[&str],
) -> Vec<Overlap<'a>> {
    // every guard's acquisition (ok) and the invoke of its last successful fenced operation
    let mut acquired: HashMap<&str, &Op> = HashMap::new();
    let mut fenced: HashMap<&str, Vec<&Op>> = HashMap::new();
    for o in h.ops_of(workload) {
        if o.outcome != Outcome::Ok {
            continue;
        }
        if o.op == acquire_op {
            if let Some(g) = o.result.get("guard").and_then(|v| v.as_str()) {
                acquired.insert(g, o);
            }
        } else if fenced_ops.contains(&o.op.as_str()) {
            if let Some(g) = o.arg_str("guard") {
                fenced.entry(g).or_default().push(o);
            }
        }
    }
    // per parent, every guard known either way, in sequence order
    let mut queues: HashMap<&str, Vec<(GuardName<'a>, &'a str)>> = HashMap::new();
    let mut known: Vec<&str> = acquired.keys().chain(fenced.keys()).copied().collect();
    known.sort_unstable();
    known.dedup();
    for g in known {
        if let Some(n) = parse(g) {
            queues.entry(n.parent).or_default().push((n, g));
        }
    }
    let last_fenced = |g: &str| -> Option<u64> {
        fenced
            .get(g)
            .and_then(|v| v.iter().map(|o| o.invoke_us).max())
    };
    let mut out = Vec::new();
    let mut parents: Vec<_> = queues.into_iter().collect();
    parents.sort_by(|a, b| a.0.cmp(b.0));
    for (_, mut queue) in parents {
        queue.sort_by_key(|(n, _)| n.seq);
        // the lower guard proven to exist the latest: among all (blocks a writer) and among
        // writers only (blocks a reader)
        let mut latest_any: Option<(u64, &str)> = None;
        let mut latest_writer: Option<(u64, &str)> = None;
        for (name, g) in &queue {
            if let Some(acq) = acquired.get(g) {
                let t = acq.end_us();
                let blocker = if name.exclusive {
                    latest_any
                } else {
                    latest_writer
                };
                if let Some((last, low)) = blocker {
                    // the lower node was created before this one, so its acquisition began
                    // before this one was handed out; otherwise the numbers are not one
                    // counter's and the pair is not judged
                    let ordered = acquired.get(low).is_none_or(|l| l.invoke_us < t);
                    if last >= t && ordered {
                        let first_after = fenced[low]
                            .iter()
                            .filter(|o| o.invoke_us >= t)
                            .min_by_key(|o| o.invoke_us)
                            .copied();
                        if let Some(f) = first_after {
                            out.push(Overlap {
                                acquired: acq,
                                fenced: f,
                                high: g,
                                low,
                            });
                        }
                    }
                }
            }
            if let Some(last) = last_fenced(g) {
                if latest_any.is_none_or(|(l, _)| last > l) {
                    latest_any = Some((last, g));
                }
                if name.exclusive && latest_writer.is_none_or(|(l, _)| last > l) {
                    latest_writer = Some((last, g));
                }
            }
        }
    }
    out.sort_by_key(|o| o.acquired.end_us());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        let p = parse("/chaos/lock/lock/ab12__lock__0000000005").unwrap();
        assert_eq!(
            (p.parent, p.seq, p.exclusive),
            ("/chaos/lock/lock", 5, true)
        );
        let p = parse("/l/ab12__rlock__-000000003").unwrap();
        assert_eq!((p.seq, p.exclusive), (-3, false));
        let p = parse("/l/_c_0a-1b-2c-__READ__0000000007").unwrap();
        assert_eq!((p.seq, p.exclusive), (7, false));
        let p = parse("/l/_c_0a-latch-0000000002").unwrap();
        assert_eq!((p.seq, p.exclusive), (2, true));
        assert_eq!(parse("/sem/leases/L1"), None);
        assert_eq!(parse("/l/ab__lock__x"), None);
    }
}
