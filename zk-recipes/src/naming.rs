//! Contender node names, as kazoo writes them: `<32 hex uuid><MARK><10-digit signed
//! sequence>`, MARK `__lock__` (exclusive / writer) or `__rlock__` (reader); parsing them and
//! putting them in (wrap-aware) queue order. Pure: no I/O.

/// Mark of exclusive (writer) contenders.
pub const LOCK_MARK: &str = "__lock__";
/// Mark of shared (reader) contenders.
pub const RLOCK_MARK: &str = "__rlock__";

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
