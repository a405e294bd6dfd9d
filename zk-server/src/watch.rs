//! Watches, per connection as in ZooKeeper (a watch belongs to the connection that set it and
//! goes with it; a reconnecting client re-registers with setWatches). Two tables, as
//! ZooKeeper's DataTree keeps them: data (getData, exists, and persistent / recursive
//! watches) and child (getChildren, and persistent / recursive watches).
//!
//! A table holds one mode per (connection, path), the last one set, as 3.8's WatchManager
//! does (before ZOOKEEPER-4466, 3.9): a one-shot read on a path with a persistent watch turns
//! that watch into a one-shot one in its table, and a recursive watch takes the place of a
//! one-shot child watch.

use std::collections::{BTreeMap, HashMap, HashSet};

/// A connection's id.
pub(crate) type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One-shot: removed when it fires.
    Standard,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE (in the child table it fires for NodeDeleted only).
    Recursive,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    by_path: BTreeMap<String, HashMap<ConnId, Mode>>,
    recursive: usize,
}

impl Table {
    /// Sets the connection's watch on `path` to `mode`, replacing the mode it had there
    /// (`WatcherModeManager.setWatcherMode`: a one-shot watch replaces a persistent one too).
    pub fn add(&mut self, path: &str, conn: ConnId, mode: Mode) {
        let m = self.by_path.entry(path.to_owned()).or_default();
        if m.insert(conn, mode) == Some(Mode::Recursive) {
            self.recursive -= 1;
        }
        if mode == Mode::Recursive {
            self.recursive += 1;
        }
    }

    pub fn contains(&self, path: &str, conn: ConnId) -> bool {
        self.by_path
            .get(path)
            .is_some_and(|m| m.contains_key(&conn))
    }

    /// Whether any connection has a watch on `path` (what 3.8's `WatchManager.containsWatcher`
    /// answers: it looks for a watcher set on the path, not for the asking connection in it).
    pub fn watched(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
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

    /// Connections with a watch here, and the number of paths watched (`wchs`).
    pub fn summary(&self) -> (usize, usize) {
        let conns: HashSet<ConnId> = self
            .by_path
            .values()
            .flat_map(|m| m.keys())
            .copied()
            .collect();
        (conns.len(), self.by_path.len())
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

    #[test]
    fn the_last_mode_set_on_a_path_is_the_one_it_has() {
        let mut t = Table::default();
        let none = HashSet::new();
        t.add("/a", 1, Mode::Persistent);
        t.add("/a", 1, Mode::Standard);
        assert_eq!(t.trigger("/a", false, &none), HashSet::from([1]));
        assert_eq!(t.trigger("/a", false, &none), HashSet::new());
        t.add("/b", 1, Mode::Standard);
        t.add("/b", 1, Mode::Recursive);
        assert_eq!(t.trigger("/b", true, &none), HashSet::new());
        assert_eq!(t.trigger("/b/c", false, &none), HashSet::from([1]));
        t.add("/b", 1, Mode::Standard);
        assert_eq!(t.trigger("/b/c", false, &none), HashSet::new());
        assert_eq!(t.recursive, 0);
    }
}
