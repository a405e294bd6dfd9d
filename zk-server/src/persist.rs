//! The data dir: a snapshot and a transaction log of what each committed write left behind.
//!
//! Files (see `docs/zk-server.md`, "Persistence"):
//! - `snapshot`: `ZKSRVSNP`, format version (u32), then one frame holding the log
//!   generation `G` it goes with, the zxid, every session and every node.
//! - `log.G`: `ZKSRVLOG`, format version (u32), `G` (u64), then one frame per committed change.
//!
//! A frame is `len: u32 | crc32(payload): u32 | payload` (big-endian; CRC-32/IEEE). A change
//! is redo-only and physical: the zxid after it, the sessions it created, re-timed or ended,
//! and for each node it touched the node's whole state after it (or its absence). Replaying
//! changes in order over the snapshot gives the state the last one left, so a snapshot taken
//! while a log still holds older changes loses nothing. Children lists are not stored: they
//! follow from the paths, and ephemeral ownership from each node's kind.
//!
//! Every start compacts: load `snapshot`, replay `log.G` up to the last whole frame whose CRC
//! checks (a torn tail is dropped, with a warning), write `snapshot` for `G+1` (to
//! `snapshot.tmp`, fsynced, renamed), start `log.G+1`, delete `log.G`. The same rotation runs
//! after `snapshot_every` changes.

use crate::tree::{Kind, Node, Tree};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use zk_proto::{Acl, Perms};

const SNAP_MAGIC: &[u8; 8] = b"ZKSRVSNP";
const LOG_MAGIC: &[u8; 8] = b"ZKSRVLOG";
const VERSION: u32 = 1;
/// Magic and version: what precedes the snapshot's frame.
const SNAP_HEADER: usize = 12;
/// Magic, version and generation: what precedes the log's frames.
const LOG_HEADER: usize = 20;
const SNAP_FILE: &str = "snapshot";
const SNAP_TMP: &str = "snapshot.tmp";
const LOCK_FILE: &str = "lock";

/// Takes the data dir's lock (an OS file lock on `DIR/lock`, released when the returned file
/// is dropped or the process dies): one server per dir.
pub(crate) fn lock(dir: &Path) -> io::Result<File> {
    fs::create_dir_all(dir)?;
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!(
                "zk-server data dir {}: in use by another server (locked)",
                dir.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// A session as the data dir keeps it (no connection, no deadline: a loaded session gets a
/// full timeout from the start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SavedSession {
    pub id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
}

/// A session fact a change records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionChange {
    /// Created, or re-attached with another timeout.
    Put(SavedSession),
    /// Closed or expired.
    Remove(i64),
}

/// One committed change: the zxid after it, its session facts, and the touched nodes' states
/// after it (`None`: deleted).
#[derive(Debug, Clone, Default)]
pub(crate) struct Change {
    pub zxid: i64,
    pub sessions: Vec<SessionChange>,
    pub nodes: Vec<(String, Option<Node>)>,
}

/// What a data dir held.
pub(crate) struct Loaded {
    pub gen: u64,
    pub zxid: i64,
    pub sessions: Vec<SavedSession>,
    pub tree: Tree,
}

/// The open log of a data dir.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    fsync: bool,
    gen: u64,
    log: File,
    /// Held while the journal is open: the dir's lock.
    _lock: File,
    /// Changes appended since the last snapshot.
    since_snapshot: u64,
    snapshot_every: u64,
    /// The zxid of the last change written (or of the snapshot).
    pub last_zxid: i64,
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected, as zlib's crc32)

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

// ---------------------------------------------------------------------------------------------
// Encoding

#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
            None => self.u8(0),
        }
    }
    fn session(&mut self, s: &SavedSession) {
        self.i64(s.id);
        self.bytes(&s.passwd);
        self.i32(s.timeout_ms);
    }
    fn node(&mut self, n: &Node) {
        self.opt_bytes(n.data.as_deref());
        self.u32(n.acl.len() as u32);
        for a in &n.acl {
            self.i32(a.perms.0);
            self.str(&a.id.scheme);
            self.str(&a.id.id);
        }
        for v in [n.czxid, n.mzxid, n.ctime, n.mtime] {
            self.i64(v);
        }
        self.i32(n.version);
        self.i32(n.aversion);
        self.i32(n.cversion);
        self.i64(n.pzxid);
        match n.kind {
            Kind::Persistent => self.u8(0),
            Kind::Ephemeral(s) => {
                self.u8(1);
                self.i64(s);
            }
            Kind::Container => self.u8(2),
            Kind::Ttl(t) => {
                self.u8(3);
                self.i64(t);
            }
        }
    }
    /// `len | crc | payload`.
    fn framed(self) -> Vec<u8> {
        let mut f = Vec::with_capacity(self.0.len() + 8);
        f.extend_from_slice(&(self.0.len() as u32).to_be_bytes());
        f.extend_from_slice(&crc32(&self.0).to_be_bytes());
        f.extend_from_slice(&self.0);
        f
    }
}

struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4")))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4")))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .map(|b| i64::from_be_bytes(b.try_into().expect("8")))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn str(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
    fn opt_bytes(&mut self) -> Option<Option<Vec<u8>>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.bytes()?)),
            _ => None,
        }
    }
    fn session(&mut self) -> Option<SavedSession> {
        Some(SavedSession {
            id: self.i64()?,
            passwd: self.bytes()?,
            timeout_ms: self.i32()?,
        })
    }
    fn node(&mut self) -> Option<Node> {
        let data = self.opt_bytes()?;
        let n_acl = self.u32()?;
        let mut acl = Vec::new();
        for _ in 0..n_acl {
            let perms = self.i32()?;
            let scheme = self.str()?;
            let id = self.str()?;
            acl.push(Acl::new(Perms(perms), scheme, id));
        }
        let (czxid, mzxid, ctime, mtime) = (self.i64()?, self.i64()?, self.i64()?, self.i64()?);
        let (version, aversion, cversion) = (self.i32()?, self.i32()?, self.i32()?);
        let pzxid = self.i64()?;
        let kind = match self.u8()? {
            0 => Kind::Persistent,
            1 => Kind::Ephemeral(self.i64()?),
            2 => Kind::Container,
            3 => Kind::Ttl(self.i64()?),
            _ => return None,
        };
        Some(Node {
            data,
            acl,
            czxid,
            mzxid,
            ctime,
            mtime,
            version,
            aversion,
            cversion,
            pzxid,
            kind,
            children: Default::default(),
        })
    }
    /// The next frame's payload: `Ok(None)` at a clean end, `Err(why)` for a torn or corrupt
    /// frame.
    fn frame(&mut self) -> Result<Option<&'a [u8]>, &'static str> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let len = self.u32().ok_or("a partial frame header")? as usize;
        let crc = self.u32().ok_or("a partial frame header")?;
        let payload = self.take(len).ok_or("a partial frame")?;
        if crc32(payload) != crc {
            return Err("a frame whose CRC does not match");
        }
        Ok(Some(payload))
    }
}

fn encode_change(c: &Change) -> Vec<u8> {
    let mut e = Enc::default();
    e.i64(c.zxid);
    e.u32(c.sessions.len() as u32);
    for s in &c.sessions {
        match s {
            SessionChange::Put(s) => {
                e.u8(1);
                e.session(s);
            }
            SessionChange::Remove(id) => {
                e.u8(0);
                e.i64(*id);
            }
        }
    }
    e.u32(c.nodes.len() as u32);
    for (p, n) in &c.nodes {
        e.str(p);
        match n {
            Some(n) => {
                e.u8(1);
                e.node(n);
            }
            None => e.u8(0),
        }
    }
    e.framed()
}

fn decode_change(payload: &[u8]) -> Option<Change> {
    let mut d = Dec(payload);
    let zxid = d.i64()?;
    let mut sessions = Vec::new();
    for _ in 0..d.u32()? {
        sessions.push(match d.u8()? {
            1 => SessionChange::Put(d.session()?),
            0 => SessionChange::Remove(d.i64()?),
            _ => return None,
        });
    }
    let mut nodes = Vec::new();
    for _ in 0..d.u32()? {
        let p = d.str()?;
        let n = match d.u8()? {
            1 => Some(d.node()?),
            0 => None,
            _ => return None,
        };
        nodes.push((p, n));
    }
    d.0.is_empty().then_some(Change {
        zxid,
        sessions,
        nodes,
    })
}

// ---------------------------------------------------------------------------------------------
// Files

fn log_name(gen: u64) -> String {
    format!("log.{gen}")
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("zk-server data dir: {}: {why}", path.display()),
    )
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads a data dir: the snapshot (a missing one is a fresh dir; a corrupt one an error naming
/// it), then the log of its generation up to a torn or corrupt tail.
pub(crate) fn load(dir: &Path) -> io::Result<Loaded> {
    fs::create_dir_all(dir)?;
    let snap_path = dir.join(SNAP_FILE);
    let bytes = match fs::read(&snap_path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // a fresh dir; a log without its snapshot means files went missing
            if let Some(orphan) = fs::read_dir(dir)?
                .filter_map(Result::ok)
                .find(|e| e.file_name().to_string_lossy().starts_with("log."))
            {
                return Err(invalid(
                    &orphan.path(),
                    "a log without the snapshot it follows (no `snapshot` in the dir)",
                ));
            }
            return Ok(Loaded {
                gen: 0,
                zxid: 0,
                sessions: Vec::new(),
                tree: Tree::new(crate::core::epoch_ms()),
            });
        }
        Err(e) => return Err(e),
    };
    let (gen, mut zxid, sessions, mut nodes) =
        decode_snapshot(&bytes).map_err(|why| invalid(&snap_path, why))?;
    let mut sessions: HashMap<i64, SavedSession> =
        sessions.into_iter().map(|s| (s.id, s)).collect();
    let log_path = dir.join(log_name(gen));
    match fs::read(&log_path) {
        Ok(b) => {
            if b.len() < LOG_HEADER
                || &b[..8] != LOG_MAGIC
                || u32::from_be_bytes(b[8..12].try_into().expect("4")) != VERSION
                || u64::from_be_bytes(b[12..20].try_into().expect("8")) != gen
            {
                // a header is written and synced before any change: only a crash while
                // creating the log leaves it short, and then it holds no change
                tracing::warn!(file = %log_path.display(), "log header missing or wrong: ignored");
            } else {
                let mut d = Dec(&b[LOG_HEADER..]);
                let mut applied = 0u64;
                loop {
                    let at = b.len() - d.0.len();
                    let payload = match d.frame() {
                        Ok(Some(p)) => p,
                        Ok(None) => break,
                        Err(why) => {
                            tracing::warn!(
                                file = %log_path.display(),
                                offset = at,
                                dropped_bytes = b.len() - at,
                                "torn log tail dropped ({why}); {applied} changes replayed"
                            );
                            break;
                        }
                    };
                    let Some(c) = decode_change(payload) else {
                        tracing::warn!(
                            file = %log_path.display(),
                            offset = at,
                            "undecodable change (CRC matched): it and the rest dropped"
                        );
                        break;
                    };
                    zxid = c.zxid;
                    for s in c.sessions {
                        match s {
                            SessionChange::Put(s) => {
                                sessions.insert(s.id, s);
                            }
                            SessionChange::Remove(id) => {
                                sessions.remove(&id);
                            }
                        }
                    }
                    for (p, n) in c.nodes {
                        match n {
                            Some(n) => {
                                nodes.insert(p, n);
                            }
                            None => {
                                nodes.remove(&p);
                            }
                        }
                    }
                    applied += 1;
                }
                tracing::info!(file = %log_path.display(), changes = applied, zxid, "log replayed");
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let tree = Tree::from_nodes(nodes).map_err(|why| {
        invalid(
            dir,
            format_args!("the snapshot and log give an inconsistent tree: {why}"),
        )
    })?;
    let mut sessions: Vec<SavedSession> = sessions.into_values().collect();
    sessions.sort_by_key(|s| s.id);
    Ok(Loaded {
        gen,
        zxid,
        sessions,
        tree,
    })
}

type SnapshotParts = (u64, i64, Vec<SavedSession>, HashMap<String, Node>);

fn decode_snapshot(b: &[u8]) -> Result<SnapshotParts, String> {
    if b.len() < SNAP_HEADER || &b[..8] != SNAP_MAGIC {
        return Err("not a zk-server snapshot (bad magic)".into());
    }
    let version = u32::from_be_bytes(b[8..12].try_into().expect("4"));
    if version != VERSION {
        return Err(format!(
            "snapshot format {version}, this build reads {VERSION}"
        ));
    }
    let mut d = Dec(&b[SNAP_HEADER..]);
    let payload = match d.frame() {
        Ok(Some(p)) => p,
        Ok(None) => return Err("empty snapshot".into()),
        Err(why) => return Err(format!("corrupt snapshot: {why}")),
    };
    if !d.0.is_empty() {
        return Err("corrupt snapshot: bytes after its frame".into());
    }
    let bad = || "corrupt snapshot: undecodable content".to_string();
    let mut d = Dec(payload);
    let gen = d.i64().ok_or_else(bad)? as u64;
    let zxid = d.i64().ok_or_else(bad)?;
    let mut sessions = Vec::new();
    for _ in 0..d.u32().ok_or_else(bad)? {
        sessions.push(d.session().ok_or_else(bad)?);
    }
    let mut nodes = HashMap::new();
    for _ in 0..d.u32().ok_or_else(bad)? {
        let p = d.str().ok_or_else(bad)?;
        nodes.insert(p, d.node().ok_or_else(bad)?);
    }
    if !d.0.is_empty() {
        return Err(bad());
    }
    Ok((gen, zxid, sessions, nodes))
}

fn write_synced(path: &Path, bytes: &[u8], fsync: bool) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(bytes)?;
    if fsync {
        f.sync_all()?;
    }
    Ok(f)
}

impl Journal {
    /// Writes generation `gen`'s snapshot of this state, starts its log and deletes older logs.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        dir: &Path,
        lock: File,
        fsync: bool,
        snapshot_every: u64,
        gen: u64,
        zxid: i64,
        sessions: &[SavedSession],
        tree: &Tree,
    ) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let log = Journal::rotate(dir, fsync, gen, zxid, sessions, tree)?;
        Ok(Journal {
            dir: dir.to_owned(),
            fsync,
            gen,
            log,
            _lock: lock,
            since_snapshot: 0,
            snapshot_every: snapshot_every.max(1),
            last_zxid: zxid,
        })
    }

    fn rotate(
        dir: &Path,
        fsync: bool,
        gen: u64,
        zxid: i64,
        sessions: &[SavedSession],
        tree: &Tree,
    ) -> io::Result<File> {
        let mut e = Enc::default();
        e.i64(gen as i64);
        e.i64(zxid);
        e.u32(sessions.len() as u32);
        for s in sessions {
            e.session(s);
        }
        let mut paths: Vec<(&String, &Node)> = tree.paths().collect();
        paths.sort_by(|a, b| a.0.cmp(b.0));
        e.u32(paths.len() as u32);
        for (p, n) in paths {
            e.str(p);
            e.node(n);
        }
        let mut snap = Vec::with_capacity(e.0.len() + 20);
        snap.extend_from_slice(SNAP_MAGIC);
        snap.extend_from_slice(&VERSION.to_be_bytes());
        snap.extend_from_slice(&e.framed());
        let tmp = dir.join(SNAP_TMP);
        drop(write_synced(&tmp, &snap, fsync)?);
        fs::rename(&tmp, dir.join(SNAP_FILE))?;
        if fsync {
            sync_dir(dir)?;
        }
        // the snapshot now names `log.gen`: start it, then forget the older ones
        let mut header = Vec::with_capacity(LOG_HEADER);
        header.extend_from_slice(LOG_MAGIC);
        header.extend_from_slice(&VERSION.to_be_bytes());
        header.extend_from_slice(&gen.to_be_bytes());
        let log = write_synced(&dir.join(log_name(gen)), &header, fsync)?;
        if fsync {
            sync_dir(dir)?;
        }
        for entry in fs::read_dir(dir)?.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(g) = name
                .strip_prefix("log.")
                .and_then(|g| g.parse::<u64>().ok())
            {
                if g != gen {
                    fs::remove_file(entry.path())?;
                }
            }
        }
        Ok(log)
    }

    /// Appends a change (synced when `fsync`); true when a snapshot is due.
    pub fn append(&mut self, c: &Change) -> io::Result<bool> {
        self.log.write_all(&encode_change(c))?;
        if self.fsync {
            self.log.sync_data()?;
        }
        self.last_zxid = c.zxid;
        self.since_snapshot += 1;
        Ok(self.since_snapshot >= self.snapshot_every)
    }

    /// Snapshot of the current state for the next generation; its log replaces this one.
    pub fn snapshot(
        &mut self,
        zxid: i64,
        sessions: &[SavedSession],
        tree: &Tree,
    ) -> io::Result<()> {
        let gen = self.gen + 1;
        self.log = Journal::rotate(&self.dir, self.fsync, gen, zxid, sessions, tree)?;
        self.gen = gen;
        self.since_snapshot = 0;
        self.last_zxid = zxid;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_ieee() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_change_round_trips() {
        let t = Tree::new(0);
        let mut n = t.get("/zookeeper/config").unwrap().clone();
        n.kind = Kind::Ttl(5000);
        n.data = None;
        let c = Change {
            zxid: 42,
            sessions: vec![
                SessionChange::Put(SavedSession {
                    id: 7,
                    passwd: vec![1, 2, 3],
                    timeout_ms: 4000,
                }),
                SessionChange::Remove(9),
            ],
            nodes: vec![("/a".into(), Some(n.clone())), ("/b".into(), None)],
        };
        let f = encode_change(&c);
        let mut d = Dec(&f);
        let back = decode_change(d.frame().unwrap().unwrap()).unwrap();
        assert_eq!(back.zxid, 42);
        assert_eq!(back.sessions, c.sessions);
        let got = back.nodes[0].1.as_ref().unwrap();
        assert_eq!(
            (got.kind, got.data.clone(), got.acl.clone()),
            (n.kind, None, n.acl)
        );
        assert!(back.nodes[1].1.is_none());
        // a flipped bit fails the CRC; a cut frame is partial
        let mut bad = f.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(Dec(&bad).frame().is_err());
        assert!(Dec(&f[..f.len() - 1]).frame().is_err());
    }

    /// A crash after the new snapshot's rename, before its log exists: the older log is still
    /// there and must not be replayed over the newer snapshot; without any snapshot a log is
    /// an error naming it.
    #[test]
    fn a_stale_log_is_ignored_and_an_orphan_log_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let tree = Tree::new(0);
        let mut j = Journal::start(d, lock(d).unwrap(), true, 100, 1, 0, &[], &tree).unwrap();
        let node = tree.get("/zookeeper/quota").unwrap().without_children();
        j.append(&Change {
            zxid: 1,
            sessions: Vec::new(),
            nodes: vec![("/a".into(), Some(node))],
        })
        .unwrap();
        let old = std::fs::read(d.join("log.1")).unwrap();
        // the snapshot of generation 2 (a state without /a, at zxid 5)
        j.snapshot(5, &[], &tree).unwrap();
        drop(j);
        std::fs::remove_file(d.join("log.2")).unwrap();
        std::fs::write(d.join("log.1"), old).unwrap();
        let l = load(d).unwrap();
        assert_eq!((l.gen, l.zxid), (2, 5));
        assert!(l.tree.get("/a").is_none(), "the stale log was replayed");
        std::fs::remove_file(d.join(SNAP_FILE)).unwrap();
        let e = load(d).err().expect("a log without a snapshot");
        assert!(e.to_string().contains("log.1"), "{e}");
    }
}
