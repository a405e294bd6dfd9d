//! The data tree: nodes, their Stats and ACLs, and every operation's checks in the order
//! ZooKeeper 3.8 makes them (`PrepRequestProcessor` for writes, `FinalRequestProcessor` for
//! reads), so that a request failing several ways gets the error ZooKeeper would give.
//!
//! Writes go through a [`Txn`], which records what it changed so a failed `multi` can be
//! rolled back, and which watch triggers to fire once it commits.

use std::collections::{BTreeSet, HashMap};
use zk_proto::{Acl, Id, Perms, Stat};

/// Error codes the tree returns (`KeeperException.Code`).
pub(crate) mod err {
    pub const RUNTIME_INCONSISTENCY: i32 = -2;
    pub const MARSHALLING: i32 = -5;
    pub const UNIMPLEMENTED: i32 = -6;
    pub const BAD_ARGUMENTS: i32 = -8;
    pub const NO_NODE: i32 = -101;
    pub const NO_AUTH: i32 = -102;
    pub const BAD_VERSION: i32 = -103;
    pub const NO_CHILDREN_FOR_EPHEMERALS: i32 = -108;
    pub const NODE_EXISTS: i32 = -110;
    pub const NOT_EMPTY: i32 = -111;
    pub const INVALID_ACL: i32 = -114;
    pub const AUTH_FAILED: i32 = -115;
    pub const NO_WATCHER: i32 = -121;
    pub const RECONFIG_DISABLED: i32 = -123;
}

/// What a node is, beyond its Stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Persistent,
    /// Owned by this session.
    Ephemeral(i64),
    Container,
    /// Time to live, ms.
    Ttl(i64),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// `None` when the client sent a null buffer.
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub aversion: i32,
    /// Child *creations*, as ZooKeeper stores it; the Stat reports `2 × this − numChildren`.
    pub cversion: i32,
    pub pzxid: i64,
    pub kind: Kind,
    pub children: BTreeSet<String>,
}

impl Node {
    fn new(data: Option<Vec<u8>>, acl: Vec<Acl>, zxid: i64, now: i64, kind: Kind) -> Node {
        Node {
            data,
            acl,
            czxid: zxid,
            mzxid: zxid,
            ctime: now,
            mtime: now,
            version: 0,
            aversion: 0,
            cversion: 0,
            pzxid: zxid,
            kind,
            children: BTreeSet::new(),
        }
    }

    /// A copy without the children list (which the data dir does not store).
    pub fn without_children(&self) -> Node {
        Node {
            data: self.data.clone(),
            acl: self.acl.clone(),
            children: BTreeSet::new(),
            ..*self
        }
    }

    /// The Stat a client sees (`DataNode.copyStat`): cversion translated from creations to
    /// changes, ephemeralOwner masked for containers and TTL nodes.
    pub fn stat(&self) -> Stat {
        let n = self.children.len() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(n),
            aversion: self.aversion,
            ephemeral_owner: match self.kind {
                Kind::Ephemeral(s) => s,
                _ => 0,
            },
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children: n,
            pzxid: self.pzxid,
        }
    }
}

/// A change that may fire watches, in the order the tree made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trigger {
    Created(String),
    Deleted(String),
    DataChanged(String),
    ChildrenChanged(String),
}

/// What one write changed: enough to undo it (a failed multi) and the triggers to fire when it
/// commits.
#[derive(Debug, Default)]
pub(crate) struct Txn {
    /// Node states before each change, oldest first (`None`: the node did not exist).
    saved: Vec<(String, Option<Node>)>,
    /// Ephemerals added to (true) or removed from (false) a session's set.
    ephemerals: Vec<(i64, String, bool)>,
    pub triggers: Vec<Trigger>,
}

impl Txn {
    /// Every path the write changed, each once, in first-change order (what the data dir logs).
    pub fn paths(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.saved
            .iter()
            .map(|(p, _)| p.as_str())
            .filter(|p| seen.insert(*p))
            .collect()
    }
}

/// A create, whichever opcode carried it.
#[derive(Debug, Clone)]
pub(crate) struct CreateArgs {
    pub op: i32,
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    /// `None` for create/create2/createContainer (Java's -1).
    pub ttl: Option<i64>,
}

pub(crate) const ROOT: &str = "/";
const SPECIAL: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

pub(crate) struct Tree {
    nodes: HashMap<String, Node>,
    /// Session id -> its ephemeral paths.
    pub ephemerals: HashMap<i64, BTreeSet<String>>,
}

/// The parent of an absolute path (`/` for a top-level node); `None` for `/` itself.
pub(crate) fn parent_of(path: &str) -> Option<&str> {
    let i = path.rfind('/')?;
    if path == ROOT {
        return None;
    }
    Some(if i == 0 { ROOT } else { &path[..i] })
}

fn child_name(path: &str) -> &str {
    &path[path.rfind('/').map_or(0, |i| i + 1)..]
}

/// Java's `String.format("%010d", v)`: the sign counts in the width.
pub(crate) fn seq_suffix(v: i32) -> String {
    if v < 0 {
        format!("-{:09}", -(v as i64))
    } else {
        format!("{v:010}")
    }
}

/// Whether the session's identities grant `perm` under `acl` (`ZooKeeperServer.checkACL`).
pub(crate) fn check_acl(acl: &[Acl], perm: i32, ids: &[Id]) -> Result<(), i32> {
    if acl.is_empty() {
        return Ok(());
    }
    for a in acl {
        if a.perms.0 & perm == 0 {
            continue;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return Ok(());
        }
        for id in ids.iter().filter(|i| i.scheme == a.id.scheme) {
            let ok = match id.scheme.as_str() {
                "ip" => ip_matches(&id.id, &a.id.id),
                _ => id.id == a.id.id,
            };
            if ok {
                return Ok(());
            }
        }
    }
    Err(err::NO_AUTH)
}

/// Java's `Integer.parseInt` of ASCII text: an optional sign, then digits (`-0` is 0).
fn java_int(s: &str) -> Option<i32> {
    s.parse::<i32>().ok()
}

/// `IPAuthenticationProvider.v4addr2Bytes`: four `Integer.parseInt` numbers in 0..=255
/// (leading zeros and a sign allowed, unlike `Ipv4Addr`'s parser).
fn parse_v4(s: &str) -> Option<u32> {
    let mut parts = s.split('.');
    let mut v = 0u32;
    for _ in 0..4 {
        let n = u8::try_from(java_int(parts.next()?)?).ok()?;
        v = (v << 8) | u32::from(n);
    }
    parts.next().is_none().then_some(v)
}

/// A mask length as `IPAuthenticationProvider` reads it: `Integer.parseInt`, 0..=32.
fn mask_bits(s: &str) -> Option<u32> {
    java_int(s)
        .and_then(|b| u32::try_from(b).ok())
        .filter(|b| *b <= 32)
}

/// `IPAuthenticationProvider.matches`: `addr` against `a.b.c.d[/bits]`.
fn ip_matches(addr: &str, acl: &str) -> bool {
    let (net, bits) = match acl.split_once('/') {
        Some((n, b)) => match mask_bits(b) {
            Some(b) => (n, b),
            None => return false,
        },
        None => (acl, 32),
    };
    match (parse_v4(addr), parse_v4(net)) {
        (Some(a), Some(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            a & mask == n & mask
        }
        _ => addr == acl,
    }
}

/// `DigestAuthenticationProvider.isValid`: two parts in Java's `id.split(":")`, which drops
/// trailing empty parts (`a:b:` is valid, `u:` and `:` are not).
fn valid_digest_id(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

fn valid_ip_acl(id: &str) -> bool {
    let (net, bits) = match id.split_once('/') {
        Some((n, b)) => (n, mask_bits(b)),
        None => (id, Some(32)),
    };
    // IPv4 only, as 3.8's IPAuthenticationProvider.addr2Bytes ("TODO: v6")
    bits.is_some() && parse_v4(net).is_some()
}

/// `PrepRequestProcessor.fixupACL`: an empty list, an unknown scheme, a malformed id or an
/// `auth` entry without an authenticated identity is INVALIDACL; `auth` entries become the
/// session's authenticated ids.
pub(crate) fn fixup_acl(acl: &[Acl], ids: &[Id]) -> Result<Vec<Acl>, i32> {
    if acl.is_empty() {
        return Err(err::INVALID_ACL);
    }
    // `removeDuplicates` runs on the list as sent, before `auth` entries are expanded: what
    // the expansion duplicates stays duplicated
    let mut uniq: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    let mut out: Vec<Acl> = Vec::new();
    for a in uniq {
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => out.push(a.clone()),
            "auth" => {
                let mut any = false;
                // ip identities are not "authenticated" (IPAuthenticationProvider.isAuthenticated)
                for id in ids.iter().filter(|i| i.scheme != "ip") {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        id: id.clone(),
                    });
                }
                if !any {
                    return Err(err::INVALID_ACL);
                }
            }
            "digest" if valid_digest_id(&a.id.id) => out.push(a.clone()),
            "ip" if valid_ip_acl(&a.id.id) => out.push(a.clone()),
            _ => return Err(err::INVALID_ACL),
        }
    }
    Ok(out)
}

fn check_version(current: i32, expected: i32) -> Result<(), i32> {
    if expected != -1 && expected != current {
        return Err(err::BAD_VERSION);
    }
    Ok(())
}

fn validate(path: &str, sequential: bool) -> Result<(), i32> {
    zk_proto::validate_path(path, sequential).map_err(|_| err::BAD_ARGUMENTS)
}

impl Tree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`, made the way
    /// ZooKeeper's DataTree constructor makes them (children added without counting as
    /// creations, hence `/zookeeper`'s cversion -2).
    pub fn new(now: i64) -> Tree {
        let mut nodes = HashMap::new();
        let mk = |children: &[&str], acl: Vec<Acl>| {
            let mut n = Node::new(Some(Vec::new()), acl, 0, 0, Kind::Persistent);
            n.children = children.iter().map(|c| c.to_string()).collect();
            n
        };
        let _ = now;
        nodes.insert(ROOT.to_owned(), mk(&["zookeeper"], Acl::open_unsafe()));
        nodes.insert(
            "/zookeeper".to_owned(),
            mk(&["quota", "config"], Acl::open_unsafe()),
        );
        nodes.insert("/zookeeper/quota".to_owned(), mk(&[], Acl::open_unsafe()));
        // ZooKeeper makes the config node with aversion -1 (DataTree.addConfigNode)
        let mut config = mk(&[], Acl::read_unsafe());
        config.aversion = -1;
        nodes.insert("/zookeeper/config".to_owned(), config);
        Tree {
            nodes,
            ephemerals: HashMap::new(),
        }
    }

    /// A tree from stored nodes (the data dir's), their children lists and the sessions'
    /// ephemeral sets rebuilt from the paths and kinds. A node whose parent is missing is an
    /// error.
    pub fn from_nodes(mut nodes: HashMap<String, Node>) -> Result<Tree, String> {
        if !nodes.contains_key(ROOT) {
            return Err("no root node".into());
        }
        let mut links: Vec<(String, String, String)> = Vec::new();
        let mut ephemerals: HashMap<i64, BTreeSet<String>> = HashMap::new();
        for (p, n) in nodes.iter_mut() {
            n.children.clear();
            if let Kind::Ephemeral(s) = n.kind {
                ephemerals.entry(s).or_default().insert(p.clone());
            }
            if let Some(parent) = parent_of(p) {
                links.push((parent.to_owned(), child_name(p).to_owned(), p.clone()));
            }
        }
        for (parent, child, path) in links {
            match nodes.get_mut(&parent) {
                Some(n) => {
                    n.children.insert(child);
                }
                None => return Err(format!("{path} without its parent")),
            }
        }
        Ok(Tree { nodes, ephemerals })
    }

    /// The node at `path`; `""` is the root, as in ZooKeeper's node map (which holds the root
    /// under `""` and `/`), so reads of `""` answer for the root.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(if path.is_empty() { ROOT } else { path })
    }

    /// Number of nodes as `srvr`/`mntr` count them (the root twice, as ZooKeeper's map holds
    /// it under `""` and `"/"`).
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn paths(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    fn save(&self, txn: &mut Txn, path: &str) {
        txn.saved
            .push((path.to_owned(), self.nodes.get(path).cloned()));
    }

    /// Undoes everything `txn` changed (a failed multi).
    pub fn rollback(&mut self, txn: Txn) {
        for (path, node) in txn.saved.into_iter().rev() {
            match node {
                Some(n) => {
                    self.nodes.insert(path, n);
                }
                None => {
                    self.nodes.remove(&path);
                }
            }
        }
        for (sid, path, added) in txn.ephemerals.into_iter().rev() {
            let set = self.ephemerals.entry(sid).or_default();
            if added {
                set.remove(&path);
            } else {
                set.insert(path);
            }
        }
    }

    fn node(&self, path: &str) -> Result<&Node, i32> {
        self.get(path).ok_or(err::NO_NODE)
    }

    /// create / create2 / createContainer / createTTL (`pRequest2TxnCreate`). Returns the
    /// created path.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        a: &CreateArgs,
        session: i64,
        ids: &[Id],
        zxid: i64,
        now: i64,
        ttl_enabled: bool,
        txn: &mut Txn,
    ) -> Result<String, i32> {
        // validateCreateRequest: the mode, then the TTL
        let kind_of = |flags: i32| -> Result<(Kind, bool), i32> {
            Ok(match flags {
                0 => (Kind::Persistent, false),
                1 => (Kind::Ephemeral(session), false),
                2 => (Kind::Persistent, true),
                3 => (Kind::Ephemeral(session), true),
                4 => (Kind::Container, false),
                5 => (Kind::Ttl(a.ttl.unwrap_or(-1)), false),
                6 => (Kind::Ttl(a.ttl.unwrap_or(-1)), true),
                _ => return Err(err::BAD_ARGUMENTS),
            })
        };
        let (mut kind, sequential) = kind_of(a.flags)?;
        // the opcode decides what is applied: createContainer makes a container whatever the
        // (non-TTL) flags, create / create2 a persistent node for the container flag
        if a.op == 19 && !matches!(kind, Kind::Ttl(_)) {
            kind = Kind::Container;
        } else if a.op != 19 && kind == Kind::Container {
            kind = Kind::Persistent;
        }
        if let Kind::Ttl(ttl) = kind {
            if !ttl_enabled {
                return Err(err::UNIMPLEMENTED);
            }
            if a.op != 21 || ttl <= 0 || ttl as u64 > zk_proto::MAX_TTL_MS {
                return Err(err::BAD_ARGUMENTS);
            }
        } else if a.op == 21 {
            return Err(err::BAD_ARGUMENTS);
        }
        // validatePathForCreate
        let Some(slash) = a.path.rfind('/') else {
            return Err(err::BAD_ARGUMENTS);
        };
        if a.path.contains('\0') {
            return Err(err::BAD_ARGUMENTS);
        }
        let parent_path = if slash == 0 {
            ROOT.to_owned()
        } else {
            a.path[..slash].to_owned()
        };
        let acl = fixup_acl(&a.acl, ids)?;
        let parent = self.node(&parent_path)?;
        check_acl(&parent.acl, Perms::CREATE.0, ids)?;
        let mut path = a.path.clone();
        if sequential {
            path.push_str(&seq_suffix(parent.cversion));
        }
        validate(&path, false)?;
        if self.nodes.contains_key(&path) {
            return Err(err::NODE_EXISTS);
        }
        if matches!(parent.kind, Kind::Ephemeral(_)) {
            return Err(err::NO_CHILDREN_FOR_EPHEMERALS);
        }
        // apply
        self.save(txn, &parent_path);
        self.save(txn, &path);
        let parent = self.nodes.get_mut(&parent_path).expect("checked");
        parent.cversion = parent.cversion.wrapping_add(1);
        parent.pzxid = zxid;
        parent.children.insert(child_name(&path).to_owned());
        self.nodes.insert(
            path.clone(),
            Node::new(a.data.clone(), acl, zxid, now, kind),
        );
        if let Kind::Ephemeral(s) = kind {
            self.ephemerals.entry(s).or_default().insert(path.clone());
            txn.ephemerals.push((s, path.clone(), true));
        }
        txn.triggers.push(Trigger::Created(path.clone()));
        txn.triggers.push(Trigger::ChildrenChanged(parent_path));
        Ok(path)
    }

    /// delete (`pRequest2Txn`, OpCode.delete).
    pub fn delete(
        &mut self,
        path: &str,
        version: i32,
        ids: &[Id],
        zxid: i64,
        txn: &mut Txn,
    ) -> Result<(), i32> {
        // getParentPathAndValidate
        if !path.contains('/') || path.contains('\0') || SPECIAL.contains(&path) {
            return Err(err::BAD_ARGUMENTS);
        }
        let parent_path = parent_of(path).ok_or(err::BAD_ARGUMENTS)?.to_owned();
        let parent = self.node(&parent_path)?;
        check_acl(&parent.acl, Perms::DELETE.0, ids)?;
        let node = self.node(path)?;
        check_version(node.version, version)?;
        if !node.children.is_empty() {
            return Err(err::NOT_EMPTY);
        }
        self.remove(path, &parent_path, zxid, txn);
        Ok(())
    }

    /// Removes a checked, childless node (delete, session close, reaper).
    fn remove(&mut self, path: &str, parent_path: &str, zxid: i64, txn: &mut Txn) {
        self.save(txn, parent_path);
        self.save(txn, path);
        let node = self.nodes.remove(path).expect("checked");
        let parent = self.nodes.get_mut(parent_path).expect("checked");
        parent.children.remove(child_name(path));
        if zxid > parent.pzxid {
            parent.pzxid = zxid;
        }
        if let Kind::Ephemeral(s) = node.kind {
            if let Some(set) = self.ephemerals.get_mut(&s) {
                set.remove(path);
            }
            txn.ephemerals.push((s, path.to_owned(), false));
        }
        txn.triggers.push(Trigger::Deleted(path.to_owned()));
        txn.triggers
            .push(Trigger::ChildrenChanged(parent_path.to_owned()));
    }

    /// Deletes a node whatever its version (session close and expiry, the reaper); a node with
    /// children or already gone is left alone.
    pub fn delete_internal(&mut self, path: &str, zxid: i64, txn: &mut Txn) -> bool {
        match (self.nodes.get(path), parent_of(path)) {
            (Some(n), Some(parent)) if n.children.is_empty() => {
                let parent = parent.to_owned();
                self.remove(path, &parent, zxid, txn);
                true
            }
            _ => false,
        }
    }

    /// setData.
    #[allow(clippy::too_many_arguments)]
    pub fn set_data(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        version: i32,
        ids: &[Id],
        zxid: i64,
        now: i64,
        txn: &mut Txn,
    ) -> Result<Stat, i32> {
        validate(path, false)?;
        let node = self.node(path)?;
        check_acl(&node.acl, Perms::WRITE.0, ids)?;
        check_version(node.version, version)?;
        self.save(txn, path);
        let node = self.nodes.get_mut(path).expect("checked");
        node.data = data;
        node.version = node.version.wrapping_add(1);
        node.mzxid = zxid;
        node.mtime = now;
        txn.triggers.push(Trigger::DataChanged(path.to_owned()));
        Ok(node.stat())
    }

    /// setACL.
    pub fn set_acl(
        &mut self,
        path: &str,
        acl: &[Acl],
        version: i32,
        ids: &[Id],
        txn: &mut Txn,
    ) -> Result<Stat, i32> {
        validate(path, false)?;
        let acl = fixup_acl(acl, ids)?;
        let node = self.node(path)?;
        check_acl(&node.acl, Perms::ADMIN.0, ids)?;
        check_version(node.aversion, version)?;
        self.save(txn, path);
        let node = self.nodes.get_mut(path).expect("checked");
        node.acl = acl;
        node.aversion = node.aversion.wrapping_add(1);
        Ok(node.stat())
    }

    /// check (inside multi).
    pub fn check(&self, path: &str, version: i32, ids: &[Id]) -> Result<(), i32> {
        validate(path, false)?;
        let node = self.node(path)?;
        check_acl(&node.acl, Perms::READ.0, ids)?;
        check_version(node.version, version)
    }

    /// A read needing `perm` on an existing node.
    pub fn read(&self, path: &str, perm: i32, ids: &[Id]) -> Result<&Node, i32> {
        let node = self.node(path)?;
        check_acl(&node.acl, perm, ids)?;
        Ok(node)
    }

    /// getAllChildrenNumber: every descendant (for `/`, every node but the root).
    pub fn all_children_number(&self, path: &str) -> i32 {
        if path == ROOT {
            return self.nodes.len() as i32 - 1;
        }
        let prefix = format!("{path}/");
        self.nodes.keys().filter(|k| k.starts_with(&prefix)).count() as i32
    }

    /// Containers emptied after having had a child, and TTL nodes without children unmodified
    /// for longer than their TTL (`ContainerManager.getCandidates`).
    pub fn reap_candidates(&self, now: i64) -> Vec<String> {
        let mut v: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| {
                n.children.is_empty()
                    && match n.kind {
                        Kind::Container => n.cversion > 0,
                        Kind::Ttl(ttl) => now - n.mtime > ttl,
                        _ => false,
                    }
            })
            .map(|(p, _)| p.clone())
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(path: &str, flags: i32) -> CreateArgs {
        CreateArgs {
            op: 1,
            path: path.into(),
            data: Some(b"d".to_vec()),
            acl: Acl::open_unsafe(),
            flags,
            ttl: None,
        }
    }

    #[test]
    fn cversion_is_reported_as_3_8_does() {
        let mut t = Tree::new(0);
        assert_eq!(t.get("/zookeeper").unwrap().stat().cversion, -2);
        let mut txn = Txn::default();
        t.create(&args("/p", 0), 1, &[], 1, 0, true, &mut txn)
            .unwrap();
        let mut names = vec![];
        for i in 0..3 {
            names.push(
                t.create(&args("/p/s-", 2), 1, &[], 2 + i, 0, true, &mut txn)
                    .unwrap(),
            );
        }
        assert_eq!(names[2], "/p/s-0000000002");
        t.delete(&names[0], -1, &[], 9, &mut txn).unwrap();
        let s = t.get("/p").unwrap().stat();
        assert_eq!((s.cversion, s.num_children), (4, 2));
        let next = t
            .create(&args("/p/s-", 2), 1, &[], 10, 0, true, &mut txn)
            .unwrap();
        assert_eq!(next, "/p/s-0000000003");
    }

    #[test]
    fn sequence_suffix_formats_like_java() {
        assert_eq!(seq_suffix(0), "0000000000");
        assert_eq!(seq_suffix(2_147_483_647), "2147483647");
        assert_eq!(seq_suffix(-1), "-000000001");
        assert_eq!(seq_suffix(i32::MIN), "-2147483648");
    }

    #[test]
    fn error_precedence() {
        let mut t = Tree::new(0);
        let mut txn = Txn::default();
        // InvalidACL before NoNode
        let mut a = args("/missing/x", 0);
        a.acl.clear();
        assert_eq!(
            t.create(&a, 1, &[], 1, 0, true, &mut txn),
            Err(err::INVALID_ACL)
        );
        // NoAuth before NodeExists
        let mut a = args("/locked", 0);
        a.acl = Acl::read_unsafe();
        t.create(&a, 1, &[], 1, 0, true, &mut txn).unwrap();
        t.create(&args("/locked2", 0), 1, &[], 2, 0, true, &mut txn)
            .unwrap();
        let mut b = args("/locked/c", 0);
        b.path = "/locked/c".into();
        assert_eq!(
            t.create(&b, 1, &[], 3, 0, true, &mut txn),
            Err(err::NO_AUTH)
        );
        // BadVersion before NotEmpty
        t.create(&args("/locked2/c", 0), 1, &[], 4, 0, true, &mut txn)
            .unwrap();
        assert_eq!(
            t.delete("/locked2", 7, &[], 5, &mut txn),
            Err(err::BAD_VERSION)
        );
        assert_eq!(
            t.delete("/locked2", -1, &[], 5, &mut txn),
            Err(err::NOT_EMPTY)
        );
    }

    #[test]
    fn rollback_restores_nodes_and_ephemerals() {
        let mut t = Tree::new(0);
        let mut txn = Txn::default();
        t.create(&args("/a", 1), 7, &[], 1, 0, true, &mut txn)
            .unwrap();
        t.set_data("/zookeeper/quota", Some(vec![1]), -1, &[], 1, 0, &mut txn)
            .unwrap();
        t.rollback(txn);
        assert!(t.get("/a").is_none());
        assert!(t.ephemerals[&7].is_empty());
        assert_eq!(t.get("/").unwrap().stat().cversion, -1);
        assert_eq!(t.get("/zookeeper/quota").unwrap().version, 0);
    }

    #[test]
    fn ip_acls_match_by_prefix() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("127.0.0.1", "127.0.0.0/8"));
        assert!(!ip_matches("10.0.0.1", "127.0.0.0/8"));
        assert!(valid_ip_acl("10.0.0.0/8") && !valid_ip_acl("nonsense"));
    }
}
