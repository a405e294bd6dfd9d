//! Typed versions of ZooKeeper's numeric constants and its small data records.

use super::jute::{i32_at, i64_at, DecodeError, Reader, Record, Writer};
use std::fmt;
use std::time::Duration;

macro_rules! int_enum {
    (
        $(#[$m:meta])*
        pub enum $name:ident { $( $(#[$vm:meta])* $v:ident = $n:expr ),+ $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name { $( $(#[$vm])* $v ),+ }

        impl $name {
            /// The wire value.
            pub fn code(self) -> i32 {
                match self { $( $name::$v => $n ),+ }
            }
            /// The variant for a wire value, if there is one.
            pub fn from_code(code: i32) -> Option<Self> {
                match code { $( $n => Some($name::$v), )+ _ => None }
            }
        }
    };
}

int_enum! {
    /// Request types (`ZooDefs.OpCode`); identical in 3.8 and 3.9.
    pub enum OpCode {
        /// Internal (server).
        Notification = 0,
        /// Create a node.
        Create = 1,
        /// Delete a node.
        Delete = 2,
        /// Stat a node, optionally leaving a watch.
        Exists = 3,
        /// Read a node's data.
        GetData = 4,
        /// Write a node's data.
        SetData = 5,
        /// Read a node's ACL.
        GetAcl = 6,
        /// Write a node's ACL.
        SetAcl = 7,
        /// List children.
        GetChildren = 8,
        /// Sync the server with the leader.
        Sync = 9,
        /// Keep-alive.
        Ping = 11,
        /// List children with the parent's Stat.
        GetChildren2 = 12,
        /// Version check; only valid inside a multi.
        Check = 13,
        /// Atomic transaction.
        Multi = 14,
        /// Create returning the Stat.
        Create2 = 15,
        /// Dynamic reconfiguration.
        Reconfig = 16,
        /// Check that a watch exists.
        CheckWatches = 17,
        /// Remove watches.
        RemoveWatches = 18,
        /// Create a container node.
        CreateContainer = 19,
        /// Internal (server).
        DeleteContainer = 20,
        /// Create a node with a time to live.
        CreateTtl = 21,
        /// Several reads in one round trip.
        MultiRead = 22,
        /// Add authentication.
        Auth = 100,
        /// Re-register watches after reconnecting.
        SetWatches = 101,
        /// SASL token exchange.
        Sasl = 102,
        /// List the session's ephemeral nodes.
        GetEphemerals = 103,
        /// Count all descendants.
        GetAllChildrenNumber = 104,
        /// Re-register watches, including persistent ones.
        SetWatches2 = 105,
        /// Add a persistent watch.
        AddWatch = 106,
        /// Who the server thinks we are.
        WhoAmI = 107,
        /// Internal (server).
        CreateSession = -10,
        /// Close the session.
        CloseSession = -11,
        /// Error result inside a multi response.
        Error = -1,
    }
}

int_enum! {
    /// Watch event types (`Watcher.Event.EventType`).
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub enum EventType {
        /// A session state change, not a node event (client-generated).
        None = -1,
        /// The watched node was created.
        NodeCreated = 1,
        /// The watched node was deleted.
        NodeDeleted = 2,
        /// The watched node's data changed.
        NodeDataChanged = 3,
        /// The watched node's children changed.
        NodeChildrenChanged = 4,
        /// A data watch was removed (client-generated).
        DataWatchRemoved = 5,
        /// A child watch was removed (client-generated).
        ChildWatchRemoved = 6,
        /// A persistent watch was removed (client-generated).
        PersistentWatchRemoved = 7,
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

int_enum! {
    /// Keeper states (`Watcher.Event.KeeperState`): the detailed connection state.
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub enum KeeperState {
        /// Deprecated, never sent.
        Unknown = -1,
        /// Not connected; the session may still be alive.
        Disconnected = 0,
        /// Deprecated, never sent.
        NoSyncConnected = 1,
        /// Connected to a read-write server.
        SyncConnected = 3,
        /// Authentication failed; the client is unusable.
        AuthFailed = 4,
        /// Connected to a read-only server.
        ConnectedReadOnly = 5,
        /// SASL authentication succeeded.
        SaslAuthenticated = 6,
        /// The client was closed.
        Closed = 7,
        /// The session expired.
        Expired = -112,
    }
}

int_enum! {
    /// Modes of `addWatch`.
    pub enum AddWatchMode {
        /// Data and child events on the path; not removed when fired.
        Persistent = 0,
        /// Created, deleted and data-changed events on the path and every descendant.
        PersistentRecursive = 1,
    }
}

int_enum! {
    /// Watch kinds for `checkWatches` / `removeWatches`.
    pub enum WatcherType {
        /// Child watches (one-shot `getChildren` watches; before ZooKeeper 3.9, also the
        /// child half of a persistent watch).
        Children = 1,
        /// Data (and exist) watches (one-shot `getData` / `exists` watches; before 3.9, also
        /// the data half of a persistent or recursive watch).
        Data = 2,
        /// Every kind.
        Any = 3,
        /// Persistent watches (`addWatch` mode `PERSISTENT`) alone: ZooKeeper 3.9+
        /// (ZOOKEEPER-4472).
        Persistent = 4,
        /// Persistent recursive watches (`addWatch` mode `PERSISTENT_RECURSIVE`) alone:
        /// ZooKeeper 3.9+ (ZOOKEEPER-4472).
        PersistentRecursive = 5,
    }
}

/// How a node is created (`CreateMode`); TTL modes carry their time to live.
///
/// With the `serde` feature: `"Persistent"`, `"EphemeralSequential"`, ... and
/// `{"PersistentWithTtl": "10m"}` (durations as in zk-core's `Config`: `"10s"`, `"500ms"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum CreateMode {
    /// Lives until deleted.
    Persistent,
    /// Deleted when the creating session ends.
    Ephemeral,
    /// Persistent, with a 10-digit sequence number appended to the name.
    PersistentSequential,
    /// Ephemeral, with a sequence number appended.
    EphemeralSequential,
    /// Deleted by the server some time after its last child is deleted.
    Container,
    /// Persistent, deleted by the server once unmodified and childless for the TTL.
    /// Needs `extendedTypesEnabled=true` on the server.
    PersistentWithTtl(
        #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))] Duration,
    ),
    /// Like [`CreateMode::PersistentWithTtl`], sequential.
    PersistentSequentialWithTtl(
        #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))] Duration,
    ),
}

/// The largest TTL the server accepts (2^40 - 1 ms).
pub const MAX_TTL_MS: u64 = (1 << 40) - 1;

impl CreateMode {
    /// The `flags` value on the wire.
    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl(_) => 5,
            CreateMode::PersistentSequentialWithTtl(_) => 6,
        }
    }

    /// Decodes wire flags; TTL modes get the `ttl` given (from a CreateTTLRequest).
    pub fn from_flags(flags: i32, ttl_ms: i64) -> Option<Self> {
        let ttl = Duration::from_millis(ttl_ms.max(0) as u64);
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl(ttl),
            6 => CreateMode::PersistentSequentialWithTtl(ttl),
            _ => return None,
        })
    }

    /// Whether the server appends a sequence number.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl(_)
        )
    }

    /// Whether the node dies with the session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// The TTL, for TTL modes.
    pub fn ttl(self) -> Option<Duration> {
        match self {
            CreateMode::PersistentWithTtl(t) | CreateMode::PersistentSequentialWithTtl(t) => {
                Some(t)
            }
            _ => None,
        }
    }

    /// The opcode this mode is created with: containers use `createContainer`, TTL modes
    /// `createTTL`, the rest `create2`.
    pub fn opcode(self) -> OpCode {
        match self {
            CreateMode::Container => OpCode::CreateContainer,
            CreateMode::PersistentWithTtl(_) | CreateMode::PersistentSequentialWithTtl(_) => {
                OpCode::CreateTtl
            }
            _ => OpCode::Create2,
        }
    }
}

/// Permission bits of an ACL entry.
///
/// With the `serde` feature a `Perms` is written as zkCli's letters, in zkCli's order:
/// `c`reate, `d`elete, `r`ead, `w`rite, `a`dmin (`"cdrwa"` for [`Perms::ALL`], `"r"` for
/// [`Perms::READ`], `""` for none). Reading accepts the letters in any order; any other
/// character is an error. A value with bits outside [`Perms::ALL`] cannot be written.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(pub i32);

impl Perms {
    /// Read data and list children.
    pub const READ: Perms = Perms(1);
    /// Set data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set the ACL.
    pub const ADMIN: Perms = Perms(16);
    /// Everything.
    pub const ALL: Perms = Perms(31);

    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

/// zkCli's permission letters, in zkCli's order.
#[cfg(feature = "serde")]
const PERM_LETTERS: [(char, Perms); 5] = [
    ('c', Perms::CREATE),
    ('d', Perms::DELETE),
    ('r', Perms::READ),
    ('w', Perms::WRITE),
    ('a', Perms::ADMIN),
];

#[cfg(feature = "serde")]
impl serde::Serialize for Perms {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 & !Perms::ALL.0 != 0 {
            return Err(serde::ser::Error::custom(format!(
                "permission bits {:#x} have no zkCli letter",
                self.0 & !Perms::ALL.0
            )));
        }
        let letters: String = PERM_LETTERS
            .iter()
            .filter(|(_, p)| self.contains(*p))
            .map(|(c, _)| *c)
            .collect();
        s.serialize_str(&letters)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Perms {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Perms, D::Error> {
        let letters = String::deserialize(d)?;
        letters.chars().try_fold(Perms(0), |acc, c| {
            PERM_LETTERS
                .iter()
                .find(|(l, _)| *l == c)
                .map(|(_, p)| acc | *p)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "invalid permissions {letters:?}: {c:?} is not one of c, d, r, w, a"
                    ))
                })
        })
    }
}

impl fmt::Debug for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        for (bit, c) in [(1, 'r'), (2, 'w'), (4, 'c'), (8, 'd'), (16, 'a')] {
            if self.0 & bit != 0 {
                s.push(c);
            }
        }
        write!(f, "Perms({s})")
    }
}

/// An identity: `scheme` and `id` (e.g. `world`/`anyone`, `digest`/`user:hash`, `ip`/`10.0.0.1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Id {
    /// The authentication scheme.
    pub scheme: String,
    /// The identity within the scheme.
    pub id: String,
}

impl Id {
    /// Builds an id.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }
}

impl Record for Id {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.scheme).string(&self.id);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Id {
            scheme: r.string()?,
            id: r.string()?,
        })
    }
}

/// One ACL entry: who may do what.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Acl {
    /// What is allowed.
    pub perms: Perms,
    /// To whom.
    pub id: Id,
}

impl Acl {
    /// Builds an entry.
    pub fn new(perms: Perms, scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    /// `OPEN_ACL_UNSAFE`: everything for everyone (the default for new nodes).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "world", "anyone")]
    }

    /// `READ_ACL_UNSAFE`: read for everyone.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, "world", "anyone")]
    }

    /// `CREATOR_ALL_ACL`: everything for the identities the session authenticated with.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "auth", "")]
    }

    /// A `digest` entry for `user` with `password`: the id is `user:base64(sha1("user:password"))`,
    /// matching what the server computes when a session authenticates with `digest`
    /// `user:password`.
    pub fn digest(perms: Perms, user: &str, password: &str) -> Acl {
        Acl::new(perms, "digest", digest_id(user, password))
    }
}

/// `user:base64(sha1("user:password"))`, the id the `digest` scheme stores.
pub fn digest_id(user: &str, password: &str) -> String {
    digest_of_credential(&format!("{user}:{password}"))
}

/// The digest id a server derives from the credential of a `digest` auth packet
/// (`DigestAuthenticationProvider.generateDigest`): the text before the first `:` (all of it
/// when there is none), `:`, then the base64 SHA-1 of the whole credential. For `user:password`
/// this is [`digest_id`]`(user, password)`.
pub fn digest_of_credential(credential: &str) -> String {
    use base64::Engine as _;
    use sha1::{Digest, Sha1};
    let hash = Sha1::digest(credential.as_bytes());
    let user = credential.split_once(':').map_or(credential, |(u, _)| u);
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

impl Record for Acl {
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.perms.0);
        self.id.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Acl {
            perms: Perms(r.i32()?),
            id: Id::read(r)?,
        })
    }
}

pub(crate) fn write_acls(w: &mut Writer<'_>, acls: &[Acl]) {
    w.i32(acls.len() as i32);
    for a in acls {
        a.write(w);
    }
}

pub(crate) fn read_acls(r: &mut Reader<'_>) -> Result<Vec<Acl>, DecodeError> {
    // perms + two empty strings = 12 bytes at least
    let n = r.count("vector<ACL>", 12)?.unwrap_or(0);
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(Acl::read(r)?);
    }
    Ok(v)
}

/// A node's metadata (68 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Stat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Creation time, ms since the epoch.
    pub ctime: i64,
    /// Last modification time, ms since the epoch.
    pub mtime: i64,
    /// Data version (number of data changes).
    pub version: i32,
    /// Child version (number of child creates and deletes).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Owning session for ephemeral nodes, 0 otherwise.
    pub ephemeral_owner: i64,
    /// Data length in bytes.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last child change.
    pub pzxid: i64,
}

/// Encoded size of a [`Stat`].
pub const STAT_LEN: usize = 68;

impl Record for Stat {
    fn write(&self, w: &mut Writer<'_>) {
        w.i64(self.czxid)
            .i64(self.mzxid)
            .i64(self.ctime)
            .i64(self.mtime)
            .i32(self.version)
            .i32(self.cversion)
            .i32(self.aversion)
            .i64(self.ephemeral_owner)
            .i32(self.data_length)
            .i32(self.num_children)
            .i64(self.pzxid);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // fixed size: taken at once (one bounds check, not eleven), fields at their offsets
        let b = r.array::<STAT_LEN>("Stat")?;
        Ok(Stat {
            czxid: i64_at(b, 0),
            mzxid: i64_at(b, 8),
            ctime: i64_at(b, 16),
            mtime: i64_at(b, 24),
            version: i32_at(b, 32),
            cversion: i32_at(b, 36),
            aversion: i32_at(b, 40),
            ephemeral_owner: i64_at(b, 44),
            data_length: i32_at(b, 52),
            num_children: i32_at(b, 56),
            pzxid: i64_at(b, 60),
        })
    }
}

/// An identity the server associates with this session (`whoAmI`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClientInfo {
    /// The scheme (`ip`, `digest`, ...).
    pub auth_scheme: String,
    /// The user within the scheme.
    pub user: String,
}

impl Record for ClientInfo {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.auth_scheme).string(&self.user);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ClientInfo {
            auth_scheme: r.string()?,
            user: r.string()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_map_both_ways() {
        for c in -20..200 {
            if let Some(op) = OpCode::from_code(c) {
                assert_eq!(op.code(), c);
            }
            if let Some(s) = KeeperState::from_code(c) {
                assert_eq!(s.code(), c);
            }
        }
        assert_eq!(KeeperState::from_code(-112), Some(KeeperState::Expired));
        assert_eq!(OpCode::from_code(107), Some(OpCode::WhoAmI));
        assert_eq!(
            EventType::from_code(4),
            Some(EventType::NodeChildrenChanged)
        );
        assert_eq!(OpCode::from_code(10), None);
    }

    #[test]
    fn create_mode_flags() {
        for f in 0..=6 {
            assert_eq!(CreateMode::from_flags(f, 5).unwrap().flags(), f);
        }
        assert!(CreateMode::from_flags(7, 0).is_none());
        assert_eq!(CreateMode::Container.opcode(), OpCode::CreateContainer);
        assert_eq!(
            CreateMode::PersistentWithTtl(Duration::from_secs(1)).opcode(),
            OpCode::CreateTtl
        );
        assert!(CreateMode::EphemeralSequential.is_sequential());
        assert!(CreateMode::EphemeralSequential.is_ephemeral());
    }

    #[test]
    fn digest_matches_zookeeper() {
        // DigestAuthenticationProvider.generateDigest("super:test")
        assert_eq!(
            digest_id("super", "test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        assert_eq!(
            digest_of_credential("super:test"),
            digest_id("super", "test")
        );
        // a credential without a colon: ZooKeeper 3.8's whoAmI / getACL for `nocolon`
        assert_eq!(
            digest_of_credential("nocolon"),
            "nocolon:Ra+cHr2ZoHvBjtNArFGNGlVie4g="
        );
        // only the first colon splits: the rest is the password
        assert_eq!(digest_of_credential("a:b:c"), digest_id("a", "b:c"));
    }

    #[test]
    fn stat_is_68_bytes_and_round_trips() {
        let s = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let b = s.to_bytes();
        assert_eq!(b.len(), STAT_LEN);
        assert_eq!(Stat::from_bytes(&b).unwrap(), s);
        assert!(Stat::from_bytes(&b[..67]).is_err());
    }
}
