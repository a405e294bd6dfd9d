//! Contender node names and their queue order, in both layouts ([`Layout`]). Pure: no I/O.
//!
//! * kazoo: `<32 hex uuid><MARK><10-digit signed sequence>`, MARK `__lock__` (exclusive /
//!   writer) or `__rlock__` (reader), in wrap-aware sequence order.
//! * Curator: `_c_<uuid 8-4-4-4-12>-<lockName><10-digit sequence>`, ordered as Curator's
//!   `fixForSorting` orders them: by what follows the last occurrence of the lock name, or by
//!   the whole name when it does not occur; text order, stable (ties keep listing order).

/// Mark of exclusive (writer) contenders.
pub const LOCK_MARK: &str = "__lock__";
/// Mark of shared (reader) contenders.
pub const RLOCK_MARK: &str = "__rlock__";

/// Which client library's node layout a recipe uses, so that it shares its locks, leases and
/// elections with that library's processes. The default is kazoo's.
///
/// | recipe | [`Layout::Kazoo`] | [`Layout::Curator`] (Curator 5) |
/// |---|---|---|
/// | [`Lock`](crate::Lock) | `P/<uuid>__lock__<seq>` | `InterProcessMutex`: `P/_c_<uuid>-lock-<seq>` |
/// | [`WriteLock`](crate::WriteLock) | `P/<uuid>__lock__<seq>` | `InterProcessReadWriteLock` writer: `P/_c_<uuid>-__WRIT__<seq>` |
/// | [`ReadLock`](crate::ReadLock) | `P/<uuid>__rlock__<seq>` | `InterProcessReadWriteLock` reader: `P/_c_<uuid>-__READ__<seq>` |
/// | [`Semaphore`](crate::Semaphore) | `P` = max, leases `P/<uuid>` | `InterProcessSemaphoreV2`: mutex `P/locks`, leases `P/leases/_c_<uuid>-lease-<seq>` |
/// | [`Election`](crate::Election) | the lock layout on `P` | `LeaderLatch`: `P/_c_<uuid>-latch-<seq>` |
///
/// With the Curator layout, parents are created as container nodes (the server deletes them
/// once empty; a create that finds its parent gone creates it again), and the queue order is
/// Curator's (see the module docs and `docs/recipes.md`). All contenders on a path must agree
/// on the layout (and a semaphore's users on its maximum, which Curator does not store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Layout {
    /// kazoo 2.11's layout (the default).
    #[default]
    Kazoo,
    /// Apache Curator 5's layout.
    Curator,
}

/// The part a queue's contender plays: it decides the node name and the blockers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// An exclusive lock (Curator: `InterProcessMutex`, `lock-`).
    Mutex,
    /// The writer of a read/write lock (Curator: `__WRIT__`).
    Write,
    /// The reader of a read/write lock (Curator: `__READ__`).
    Read,
    /// An election candidate (Curator: `LeaderLatch`, `latch-`).
    Latch,
}

/// Curator's lock name of a mutex (`InterProcessMutex`; also `InterProcessSemaphoreV2`'s).
pub(crate) const CURATOR_MUTEX: &str = "lock-";
/// Curator's lock name of a read/write lock's writers.
pub(crate) const CURATOR_WRITE: &str = "__WRIT__";
/// Curator's lock name of a read/write lock's readers.
pub(crate) const CURATOR_READ: &str = "__READ__";
/// Curator's lock name of a `LeaderLatch` candidate.
pub(crate) const CURATOR_LATCH: &str = "latch-";
/// Curator's lock name of a `InterProcessSemaphoreV2` lease.
pub(crate) const CURATOR_LEASE: &str = "lease-";

impl Role {
    /// Whether every contender ahead blocks it (all but readers).
    pub(crate) fn exclusive(self) -> bool {
        self != Role::Read
    }

    /// The mark in its node name under `layout`.
    pub(crate) fn mark(self, layout: Layout) -> &'static str {
        match (layout, self) {
            (Layout::Kazoo, Role::Read) => RLOCK_MARK,
            (Layout::Kazoo, _) => LOCK_MARK,
            (Layout::Curator, Role::Mutex) => CURATOR_MUTEX,
            (Layout::Curator, Role::Write) => CURATOR_WRITE,
            (Layout::Curator, Role::Read) => CURATOR_READ,
            (Layout::Curator, Role::Latch) => CURATOR_LATCH,
        }
    }
}

/// Curator's `fixForSorting(name, lockName)`: what follows the last occurrence of `lock_name`
/// (the sequence), or the whole name when it does not occur.
pub(crate) fn curator_fix<'a>(name: &'a str, lock_name: &str) -> &'a str {
    match name.rfind(lock_name) {
        Some(i) => &name[i + lock_name.len()..],
        None => name,
    }
}

/// The sort key Curator uses for `role`'s queue: a read/write lock's two kinds share one
/// (`fix(fix(name, "__READ__"), "__WRIT__")`).
fn curator_key(role: Role, name: &str) -> &str {
    match role {
        Role::Read | Role::Write => curator_fix(curator_fix(name, CURATOR_READ), CURATOR_WRITE),
        Role::Mutex => curator_fix(name, CURATOR_MUTEX),
        Role::Latch => curator_fix(name, CURATOR_LATCH),
    }
}

/// Every child of a Curator queue in Curator's order for `role`: sorted by the key (Java's
/// `String.compareTo`, which compares UTF-16 code units), stable, so equal keys keep the
/// listing order. Every child is a contender (Curator ignores none), and after the parent's
/// counter wraps a negative sequence sorts first, as in Curator.
pub(crate) fn curator_sorted(role: Role, children: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = children.iter().map(String::as_str).collect();
    v.sort_by(|a, b| {
        curator_key(role, a)
            .encode_utf16()
            .cmp(curator_key(role, b).encode_utf16())
    });
    v
}

/// One contender node, parsed from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContenderNode {
    /// The child name.
    pub name: String,
    /// The sequence number, as the server's signed 32-bit counter.
    pub seq: i32,
    /// `__lock__` (true) or `__rlock__` (false).
    pub exclusive: bool,
}

/// Parses a child name into a contender, or `None` if it is not one (other children are ignored,
/// as kazoo does). The sequence is the text after the mark: 10 digits, or a minus sign and 9 or 10
/// digits (after the counter overflowed), read as a signed 32-bit number and ordered
/// wrap-aware (see [`sorted_contenders`]).
pub fn parse_contender(name: &str) -> Option<ContenderNode> {
    let (idx, mark, exclusive) = match name.rfind(LOCK_MARK) {
        Some(i) => (i, LOCK_MARK, true),
        None => (name.rfind(RLOCK_MARK)?, RLOCK_MARK, false),
    };
    let seq_text = &name[idx + mark.len()..];
    let digits = seq_text.strip_prefix('-').unwrap_or(seq_text);
    let ok_len = if seq_text.starts_with('-') {
        seq_text.len() == 10 || seq_text.len() == 11
    } else {
        seq_text.len() == 10
    };
    if !ok_len || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ContenderNode {
        name: name.to_owned(),
        seq: seq_text.parse().ok()?,
        exclusive,
    })
}

/// Contenders among `children`, in queue order.
///
/// The sequence is the parent's cversion, a signed 32-bit counter that wraps from `2147483647`
/// to `-2147483648` (after about 1.07 billion creates and deletes under the parent). The order
/// is wrap-aware: the queue starts after the largest gap between neighbouring sequences on the
/// 2^32 circle, so it is the creation order whenever the live queue spans less than 2^31
/// sequence numbers (always, in practice: the span grows only while old contenders stay).
///
/// kazoo compares the sequence suffixes *as text*: after the wrap a kazoo contender at
/// `-2147483648` sorts before one at `2147483646` (and `-000000001` before `-2147483648`), so a
/// kazoo peer may take a lock that a Rust holder (or another kazoo holder) still holds. Mixed
/// queues are only safe while the parent's counter has not wrapped.
pub fn sorted_contenders(children: &[String]) -> Vec<ContenderNode> {
    let mut v: Vec<ContenderNode> = children.iter().filter_map(|c| parse_contender(c)).collect();
    v.sort_by(|a, b| a.seq.cmp(&b.seq).then_with(|| a.name.cmp(&b.name)));
    // rotate so that the queue starts after the largest gap (the wrap point, if any)
    let n = v.len();
    let mut start = 0;
    let mut widest = 0u32;
    for i in 0..n {
        let next = (i + 1) % n;
        let gap = (v[next].seq as u32).wrapping_sub(v[i].seq as u32);
        if gap > widest {
            widest = gap;
            start = next;
        }
    }
    v.rotate_left(start);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Curator's order: by the text after the last lock name; names without it by the whole
    /// name (digits sort before `_`, so before them); ties (5.9's non-sequential read node
    /// shares its writer's sequence) keep listing order.
    #[test]
    fn curator_order_is_fix_for_sorting() {
        let u = "_c_0f6c2f7e-1111-4222-8333-444455556666-";
        let children = names(&[
            &format!("{u}lock-0000000003"),
            "abc__lock__0000000000",
            &format!("{u}lock-0000000001"),
            &format!("{u}xlock-lock-0000000002"),
        ]);
        assert_eq!(
            curator_sorted(Role::Mutex, &children),
            vec![
                children[2].as_str(),
                children[3].as_str(),
                children[0].as_str(),
                children[1].as_str(), // a kazoo node (no `lock-`): by its whole name, last
            ]
        );
        let rw = names(&[
            &format!("{u}__WRIT__0000000007"),
            &format!("{u}__READ__0000000005"),
            &format!("{u}lock-0000000001"),
            &format!("{u}__READ__0000000007"),
        ]);
        assert_eq!(
            curator_sorted(Role::Read, &rw),
            vec![
                rw[1].as_str(),
                rw[0].as_str(), // a tie with the reader after it: listing order
                rw[3].as_str(),
                rw[2].as_str(), // a mutex node under a r/w lock: by its whole name
            ]
        );
        // the wrap: Curator compares text, so "-…" comes first
        let wrapped = names(&[
            &format!("{u}latch-2147483647"),
            &format!("{u}latch--2147483648"),
        ]);
        assert_eq!(
            curator_sorted(Role::Latch, &wrapped),
            vec![wrapped[1].as_str(), wrapped[0].as_str()]
        );
    }

    #[test]
    fn sequence_numbers_parse_as_signed_32_bit() {
        let p = |s: &str| parse_contender(s).map(|c| (c.seq, c.exclusive));
        assert_eq!(p("abc__lock__0000000000"), Some((0, true)));
        assert_eq!(p("abc__lock__2147483647"), Some((i32::MAX, true)));
        assert_eq!(p("abc__rlock__-2147483648"), Some((i32::MIN, false)));
        assert_eq!(p("abc__lock__-000000005"), Some((-5, true)));
        assert_eq!(p("abc__lock__000000005"), None);
        assert_eq!(p("abc__lock__00000000055"), None);
        assert_eq!(p("abc__lock__00000x0005"), None);
        assert_eq!(p("abc__lease__0000000001"), None);
        assert_eq!(p("ready"), None);
        let names: Vec<String> = [
            "a__lock__0000000002",
            "b__rlock__-000000001",
            "x",
            "c__lock__0000000001",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let order: Vec<i32> = sorted_contenders(&names).iter().map(|c| c.seq).collect();
        assert_eq!(order, vec![-1, 1, 2]);
    }
}
