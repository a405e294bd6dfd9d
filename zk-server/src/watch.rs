//! Watches, per connection as in ZooKeeper (a watch belongs to the connection that set it and
//! goes with it; a reconnecting client re-registers with setWatches). Two tables, as
//! ZooKeeper's DataTree keeps them: data (getData, exists, and persistent / recursive
//! watches) and child (getChildren, and persistent watches).

use std::collections::{BTreeMap, HashMap, HashSet};

/// A connection's id.
pub(crate) type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One-shot: removed when it fires.
    Standard,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE (data table only).
    Recursive,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    by_path: BTreeMap<String, HashMap<ConnId, Mode>>,
    recursive: usize,
}

impl Table {
    /// Adds a watch; a persistent watch is not downgraded by a one-shot one on the same path.
    pub fn add(&mut self, path: &str, conn: ConnId, mode: Mode) {
        let m = self.by_path.entry(path.to_owned()).or_default();
        match m.get(&conn) {
            Some(Mode::Persistent | Mode::Recursive) if mode == Mode::Standard => {}
            old => {
                if old == Some(&Mode::Recursive) {
                    self.recursive -= 1;
                }
                if mode == Mode::Recursive {
                    self.recursive += 1;
                }
                m.insert(conn, mode);
            }
        }
    }

    pub fn contains(&self, path: &str, conn: ConnId) -> bool {
        self.by_path
            .get(path)
            .is_some_and(|m| m.contains_key(&conn))
    }

    pub fn remove(&mut self, path: &str, conn: ConnId) -> bool {
        let Some(m) = self.by_path.get_mut(path) else {
            return false;
        };
        let old = m.remove(&conn);
        if old == Some(Mode::Recursive) {
            self.recursive -= 1;
        }
        if m.is_empty() {
            self.by_path.remove(path);
        }
        old.is_some()
    }

    /// Forgets every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        let mut gone = 0;
        self.by_path.retain(|_, m| {
            if m.remove(&conn) == Some(Mode::Recursive) {
                gone += 1;
            }
            !m.is_empty()
        });
        self.recursive -= gone;
    }

    /// Every watched path (in path order) with the connections watching it.
    pub fn watchers_by_path(&self) -> impl Iterator<Item = (&str, Vec<ConnId>)> + '_ {
        self.by_path.iter().map(|(path, m)| {
            let mut conns: Vec<ConnId> = m.keys().copied().collect();
            conns.sort_unstable();
            (path.as_str(), conns)
        })
    }

    /// Number of watches (path, connection) in the table.
    pub fn len(&self) -> usize {
        self.by_path.values().map(HashMap::len).sum()
    }

    /// `WatchManager.triggerWatch`: the connections to notify of `path` changing, minus
    /// `suppress`; one-shot watches on `path` are consumed. Recursive watches on `path` and its
    /// ancestors see every event but NodeChildrenChanged.
    pub fn trigger(
        &mut self,
        path: &str,
        children_changed: bool,
        suppress: &HashSet<ConnId>,
    ) -> HashSet<ConnId> {
        let mut out = HashSet::new();
        if let Some(m) = self.by_path.get_mut(path) {
            m.retain(|conn, mode| {
                match mode {
                    Mode::Recursive => {
                        if !children_changed {
                            out.insert(*conn);
                        }
                        return true;
                    }
                    Mode::Persistent => {
                        out.insert(*conn);
                        return true;
                    }
                    Mode::Standard => {
                        out.insert(*conn);
                    }
                }
                false
            });
            if m.is_empty() {
                self.by_path.remove(path);
            }
        }
        if self.recursive > 0 && !children_changed {
            let mut p = path;
            while let Some(parent) = crate::tree::parent_of(p) {
                if let Some(m) = self.by_path.get(parent) {
                    out.extend(
                        m.iter()
                            .filter(|(_, mode)| **mode == Mode::Recursive)
                            .map(|(c, _)| *c),
                    );
                }
                p = parent;
            }
        }
        out.retain(|c| !suppress.contains(c));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_fires_once_persistent_stays_recursive_sees_descendants() {
        let mut t = Table::default();
        t.add("/a", 1, Mode::Standard);
        t.add("/a", 2, Mode::Persistent);
        t.add("/", 3, Mode::Recursive);
        let none = HashSet::new();
        let got = t.trigger("/a", false, &none);
        assert_eq!(got, HashSet::from([1, 2, 3]));
        let got = t.trigger("/a", false, &none);
        assert_eq!(got, HashSet::from([2, 3]));
        assert_eq!(t.trigger("/a", true, &none), HashSet::from([2]));
        t.remove_conn(3);
        assert_eq!(t.trigger("/a/b", false, &none), HashSet::new());
    }
}
