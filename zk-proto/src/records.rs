//! Every record the client sends or receives, each with both an encoder and a decoder.

use super::jute::{i32_at, i64_at, DecodeError, Reader, Record, Writer};
use super::types::{read_acls, write_acls, Acl, ClientInfo, Stat};

/// Special xids (`ClientCnxn`).
pub mod xid {
    /// Watch notification, server to client.
    pub const NOTIFICATION: i32 = -1;
    /// Ping.
    pub const PING: i32 = -2;
    /// Authentication packet.
    pub const AUTH: i32 = -4;
    /// SetWatches / SetWatches2 after a reconnect.
    pub const SET_WATCHES: i32 = -8;
}

/// Reply error codes a client acts on (zk-core's `Error` maps the full list to its variants).
pub mod code {
    /// Success.
    pub const OK: i32 = 0;
    /// The node does not exist (an `exists` watch is still left).
    pub const NO_NODE: i32 = -101;
    /// The session is gone (a closeSession for an abandoned session counts it as closed).
    pub const SESSION_EXPIRED: i32 = -112;
    /// Authentication failed: the server closes the connection (a 3.8 server keeps the
    /// session; the client then closes it).
    pub const AUTH_FAILED: i32 = -115;
    /// The server requires SASL and it did not succeed: it closes the session.
    pub const SESSION_CLOSED_REQUIRE_SASL_AUTH: i32 = -124;
}

/// First frame from the client on a new connection (45 bytes with the `read_only` byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// Highest zxid the client has seen; a server behind it refuses the connection.
    pub last_zxid_seen: i64,
    /// Requested session timeout, ms.
    pub timeout_ms: i32,
    /// 0 for a new session, else the session to re-attach to.
    pub session_id: i64,
    /// Session password (16 zero bytes for a new session).
    pub passwd: Vec<u8>,
    /// Whether the client accepts a read-only server. `None` omits the trailing byte.
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.protocol_version)
            .i64(self.last_zxid_seen)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.bool(ro);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?.to_vec(),
            read_only: if r.remaining() > 0 {
                Some(r.bool()?)
            } else {
                None
            },
        })
    }
}

/// The server's answer to a [`ConnectRequest`] (37 bytes, 36 without the trailing byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated timeout, ms; 0 or less means the session has expired.
    pub timeout_ms: i32,
    /// The session id.
    pub session_id: i64,
    /// The session password.
    pub passwd: Vec<u8>,
    /// Whether the server is read-only.
    pub read_only: bool,
}

/// Smallest valid ConnectResponse (without the read-only byte). A shorter frame is something else:
/// a read-only server refusing a new session answers with a bare 16-byte ReplyHeader.
pub const CONNECT_RESPONSE_MIN_LEN: usize = 36;

impl Record for ConnectResponse {
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.protocol_version)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(&self.passwd)
            .bool(self.read_only);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.i32()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?.to_vec(),
            read_only: if r.remaining() > 0 { r.bool()? } else { false },
        })
    }
}

/// Header of every request after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// Request id; replies carry it back.
    pub xid: i32,
    /// [`OpCode`](super::OpCode) value.
    pub op: i32,
}

impl Record for RequestHeader {
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.xid).i32(self.op);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RequestHeader {
            xid: r.i32()?,
            op: r.i32()?,
        })
    }
}

/// Header of every server frame after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The request's xid, or a special xid.
    pub xid: i32,
    /// Last zxid (of the write for writes, of the server for reads).
    pub zxid: i64,
    /// Error code; the body is omitted when non-zero (except for multi).
    pub err: i32,
}

/// Encoded size of a [`ReplyHeader`].
pub const REPLY_HEADER_LEN: usize = 16;

impl Record for ReplyHeader {
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.xid).i64(self.zxid).i32(self.err);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let b = r.array::<REPLY_HEADER_LEN>("reply header")?;
        Ok(ReplyHeader {
            xid: i32_at(b, 0),
            zxid: i64_at(b, 4),
            err: i32_at(b, 12),
        })
    }
}

/// `create`, `create2`, `createContainer` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// Node path.
    pub path: String,
    /// Initial data.
    pub data: Vec<u8>,
    /// ACL; must not be empty.
    pub acl: Vec<Acl>,
    /// [`CreateMode`](super::CreateMode) flags.
    pub flags: i32,
}

impl Record for CreateRequest {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.path).buffer(&self.data);
        write_acls(w, &self.acl);
        w.i32(self.flags);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CreateRequest {
            path: r.string()?,
            data: r.buffer()?.to_vec(),
            acl: read_acls(r)?,
            flags: r.i32()?,
        })
    }
}

/// `createTTL` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTtlRequest {
    /// Node path.
    pub path: String,
    /// Initial data.
    pub data: Vec<u8>,
    /// ACL.
    pub acl: Vec<Acl>,
    /// 5 or 6.
    pub flags: i32,
    /// Time to live, ms.
    pub ttl: i64,
}

impl Record for CreateTtlRequest {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.path).buffer(&self.data);
        write_acls(w, &self.acl);
        w.i32(self.flags).i64(self.ttl);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CreateTtlRequest {
            path: r.string()?,
            data: r.buffer()?.to_vec(),
            acl: read_acls(r)?,
            flags: r.i32()?,
            ttl: r.i64()?,
        })
    }
}

/// A path and a version: `delete` and `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathVersionRequest {
    /// Node path.
    pub path: String,
    /// Expected version, -1 for any.
    pub version: i32,
}

impl Record for PathVersionRequest {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.path).i32(self.version);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PathVersionRequest {
            path: r.string()?,
            version: r.i32()?,
        })
    }
}

/// A path and a watch flag: `exists`, `getData`, `getChildren`, `getChildren2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathWatchRequest {
    /// Node path.
    pub path: String,
    /// Leave a one-shot watch.
    pub watch: bool,
}

impl Record for PathWatchRequest {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.path).bool(self.watch);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PathWatchRequest {
            path: r.string()?,
            watch: r.bool()?,
        })
    }
}

/// A bare path: `getACL`, `sync`, `getEphemerals`, `getAllChildrenNumber`; also the
/// `create` and `sync` responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRecord {
    /// The path.
    pub path: String,
}

impl Record for PathRecord {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.path);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PathRecord { path: r.string()? })
    }
}

/// `setData` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDataRequest {
    /// Node path.
    pub path: String,
    /// New data.
    pub data: Vec<u8>,
    /// Expected version, -1 for any.
    pub version: i32,
}

impl Record for SetDataRequest {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.path).buffer(&self.data).i32(self.version);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SetDataRequest {
            path: r.string()?,
            data: r.buffer()?.to_vec(),
            version: r.i32()?,
        })
    }
}

/// `setACL` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAclRequest {
    /// Node path.
    pub path: String,
    /// New ACL.
    pub acl: Vec<Acl>,
    /// Expected ACL version (aversion), -1 for any.
    pub version: i32,
}

impl Record for SetAclRequest {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.path);
        write_acls(w, &self.acl);
        w.i32(self.version);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SetAclRequest {
            path: r.string()?,
            acl: read_acls(r)?,
            version: r.i32()?,
        })
    }
}

/// A path and an int: `addWatch` (mode), `checkWatches` / `removeWatches` (watcher type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathModeRequest {
    /// Node path.
    pub path: String,
    /// Mode or watcher type.
    pub mode: i32,
}

impl Record for PathModeRequest {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.path).i32(self.mode);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PathModeRequest {
            path: r.string()?,
            mode: r.i32()?,
        })
    }
}

/// The node that holds the ensemble's dynamic config (`getData` on it is how a client reads the
/// config; it is never under a chroot).
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// `reconfig` (opcode 16) request. Incremental: `joining` (comma-separated
/// `server.N=host:quorum:election[:role];[client_host:]client_port` specs) and/or `leaving`
/// (comma-separated server ids); non-incremental: `new_members` (the whole new membership, same
/// spec form). An absent part is written null: the server splits a present one on commas and
/// would reject an empty string. `cur_config_id` -1 means any config version. The reply is a
/// [`GetDataResponse`] (the new config and the config node's Stat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconfigRequest {
    /// Servers to add (or to update), comma-separated.
    pub joining: Option<String>,
    /// Server ids to remove, comma-separated.
    pub leaving: Option<String>,
    /// The whole new membership (non-incremental), comma-separated.
    pub new_members: Option<String>,
    /// The config version the change applies to; -1 for any.
    pub cur_config_id: i64,
}

impl Record for ReconfigRequest {
    fn write(&self, w: &mut Writer<'_>) {
        w.opt_buffer(self.joining.as_deref().map(str::as_bytes))
            .opt_buffer(self.leaving.as_deref().map(str::as_bytes))
            .opt_buffer(self.new_members.as_deref().map(str::as_bytes))
            .i64(self.cur_config_id);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut opt = || -> Result<Option<String>, DecodeError> {
            Ok(r.opt_buffer()?
                .map(|b| String::from_utf8_lossy(b).into_owned()))
        };
        Ok(ReconfigRequest {
            joining: opt()?,
            leaving: opt()?,
            new_members: opt()?,
            cur_config_id: r.i64()?,
        })
    }
}

/// `auth` packet (xid -4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPacket {
    /// Always 0.
    pub auth_type: i32,
    /// Scheme, e.g. `digest`.
    pub scheme: String,
    /// Credential, e.g. `user:password`.
    pub auth: Vec<u8>,
}

impl Record for AuthPacket {
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.auth_type)
            .string(&self.scheme)
            .buffer(&self.auth);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AuthPacket {
            auth_type: r.i32()?,
            scheme: r.string()?,
            auth: r.buffer()?.to_vec(),
        })
    }
}

/// `sasl` (102) request (`GetSASLRequest`) and response (`SetSASLResponse`): one token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslToken {
    /// The mechanism's bytes.
    pub token: Vec<u8>,
}

impl Record for SaslToken {
    fn write(&self, w: &mut Writer<'_>) {
        w.buffer(&self.token);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SaslToken {
            token: r.buffer()?.to_vec(),
        })
    }
}

/// `setWatches` (101) when `persistent` and `persistent_recursive` are both empty and
/// `with_persistent` is false, else `setWatches2` (105).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetWatches {
    /// Last zxid seen; the server fires what changed after it.
    pub relative_zxid: i64,
    /// Data watches (getData, exists on an existing node).
    pub data: Vec<String>,
    /// Exist watches (exists on a missing node).
    pub exist: Vec<String>,
    /// Child watches.
    pub child: Vec<String>,
    /// Persistent watches (SetWatches2 only).
    pub persistent: Vec<String>,
    /// Persistent recursive watches (SetWatches2 only).
    pub persistent_recursive: Vec<String>,
    /// Whether this is a SetWatches2 record (has the two persistent lists).
    pub v2: bool,
}

impl Record for SetWatches {
    fn write(&self, w: &mut Writer<'_>) {
        w.i64(self.relative_zxid)
            .strings(&self.data)
            .strings(&self.exist)
            .strings(&self.child);
        if self.v2 {
            w.strings(&self.persistent)
                .strings(&self.persistent_recursive);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut s = SetWatches {
            relative_zxid: r.i64()?,
            data: r.strings()?,
            exist: r.strings()?,
            child: r.strings()?,
            ..Default::default()
        };
        if r.remaining() > 0 {
            s.v2 = true;
            s.persistent = r.strings()?;
            s.persistent_recursive = r.strings()?;
        }
        Ok(s)
    }
}

/// A watch notification body (xid -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent {
    /// [`EventType`](super::EventType) value.
    pub event_type: i32,
    /// [`KeeperState`](super::KeeperState) value (always SyncConnected from the server).
    pub state: i32,
    /// Server-side path.
    pub path: String,
}

impl Record for WatcherEvent {
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.event_type).i32(self.state).string(&self.path);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(WatcherEvent {
            event_type: r.i32()?,
            state: r.i32()?,
            path: r.string()?,
        })
    }
}

/// `create2` / `createContainer` / `createTTL` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create2Response {
    /// Actual path (with the sequence suffix).
    pub path: String,
    /// The new node's Stat.
    pub stat: Stat,
}

impl Record for Create2Response {
    fn write(&self, w: &mut Writer<'_>) {
        w.string(&self.path);
        self.stat.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Create2Response {
            path: r.string()?,
            stat: Stat::read(r)?,
        })
    }
}

/// `getData` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetDataResponse {
    /// The data (null reads as empty).
    pub data: Vec<u8>,
    /// The Stat.
    pub stat: Stat,
}

impl Record for GetDataResponse {
    fn write(&self, w: &mut Writer<'_>) {
        w.buffer(&self.data);
        self.stat.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GetDataResponse {
            data: r.buffer()?.to_vec(),
            stat: Stat::read(r)?,
        })
    }
}

/// `getACL` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetAclResponse {
    /// The ACL.
    pub acl: Vec<Acl>,
    /// The Stat.
    pub stat: Stat,
}

impl Record for GetAclResponse {
    fn write(&self, w: &mut Writer<'_>) {
        write_acls(w, &self.acl);
        self.stat.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GetAclResponse {
            acl: read_acls(r)?,
            stat: Stat::read(r)?,
        })
    }
}

/// `getChildren` / `getEphemerals` response: a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringsResponse {
    /// Child names (unsorted) or ephemeral paths.
    pub items: Vec<String>,
}

impl Record for StringsResponse {
    fn write(&self, w: &mut Writer<'_>) {
        w.strings(&self.items);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StringsResponse {
            items: r.strings()?,
        })
    }
}

/// `getChildren2` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetChildren2Response {
    /// Child names, unsorted.
    pub children: Vec<String>,
    /// The parent's Stat.
    pub stat: Stat,
}

impl Record for GetChildren2Response {
    fn write(&self, w: &mut Writer<'_>) {
        w.strings(&self.children);
        self.stat.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GetChildren2Response {
            children: r.strings()?,
            stat: Stat::read(r)?,
        })
    }
}

/// `whoAmI` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoAmIResponse {
    /// The session's identities.
    pub client_info: Vec<ClientInfo>,
}

impl Record for WhoAmIResponse {
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.client_info.len() as i32);
        for c in &self.client_info {
            c.write(w);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count("vector<ClientInfo>", 8)?.unwrap_or(0);
        let mut client_info = Vec::with_capacity(n);
        for _ in 0..n {
            client_info.push(ClientInfo::read(r)?);
        }
        Ok(WhoAmIResponse { client_info })
    }
}

/// A bare int: `getAllChildrenNumber` response, `ErrorResponse`, `addWatch` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRecord {
    /// The value.
    pub value: i32,
}

impl Record for IntRecord {
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.value);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(IntRecord { value: r.i32()? })
    }
}

/// A Stat alone: `exists`, `setData`, `setACL` responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatResponse {
    /// The Stat.
    pub stat: Stat,
}

impl Record for StatResponse {
    fn write(&self, w: &mut Writer<'_>) {
        self.stat.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StatResponse {
            stat: Stat::read(r)?,
        })
    }
}

/// Header before each op in a multi request or result in a multi response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiHeader {
    /// Opcode of the op (request) or result type (response; -1 = error).
    pub op: i32,
    /// True on the terminating header.
    pub done: bool,
    /// Error code (response) or -1 (request).
    pub err: i32,
}

impl MultiHeader {
    /// The `{-1, true, -1}` header that ends a multi request or response.
    pub const END: MultiHeader = MultiHeader {
        op: -1,
        done: true,
        err: -1,
    };
}

impl Record for MultiHeader {
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.op).bool(self.done).i32(self.err);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MultiHeader {
            op: r.i32()?,
            done: r.bool()?,
            err: r.i32()?,
        })
    }
}

/// One operation inside a `multi` (writes) or `multiRead` (reads) request, in wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultiOp {
    /// create (1), create2 (15) or createContainer (19).
    Create(i32, CreateRequest),
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(PathVersionRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// check (13).
    Check(PathVersionRequest),
    /// getData (4), multiRead only.
    GetData(PathWatchRequest),
    /// getChildren (8), multiRead only.
    GetChildren(PathWatchRequest),
}

impl MultiOp {
    /// The opcode written in this op's header.
    pub fn opcode(&self) -> i32 {
        match self {
            MultiOp::Create(op, _) => *op,
            MultiOp::CreateTtl(_) => 21,
            MultiOp::Delete(_) => 2,
            MultiOp::SetData(_) => 5,
            MultiOp::Check(_) => 13,
            MultiOp::GetData(_) => 4,
            MultiOp::GetChildren(_) => 8,
        }
    }

    /// The path this op acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(_, c) => &c.path,
            MultiOp::CreateTtl(c) => &c.path,
            MultiOp::Delete(d) | MultiOp::Check(d) => &d.path,
            MultiOp::SetData(s) => &s.path,
            MultiOp::GetData(g) | MultiOp::GetChildren(g) => &g.path,
        }
    }
}

/// A `multi` / `multiRead` request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    /// The operations, in order.
    pub ops: Vec<MultiOp>,
}

impl Record for MultiRequest {
    fn write(&self, w: &mut Writer<'_>) {
        for op in &self.ops {
            MultiHeader {
                op: op.opcode(),
                done: false,
                err: -1,
            }
            .write(w);
            match op {
                MultiOp::Create(_, c) => c.write(w),
                MultiOp::CreateTtl(c) => c.write(w),
                MultiOp::Delete(d) | MultiOp::Check(d) => d.write(w),
                MultiOp::SetData(s) => s.write(w),
                MultiOp::GetData(g) | MultiOp::GetChildren(g) => g.write(w),
            }
        }
        MultiHeader::END.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let h = MultiHeader::read(r)?;
            if h.done {
                break;
            }
            ops.push(match h.op {
                1 | 15 | 19 => MultiOp::Create(h.op, CreateRequest::read(r)?),
                21 => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
                2 => MultiOp::Delete(PathVersionRequest::read(r)?),
                5 => MultiOp::SetData(SetDataRequest::read(r)?),
                13 => MultiOp::Check(PathVersionRequest::read(r)?),
                4 => MultiOp::GetData(PathWatchRequest::read(r)?),
                8 => MultiOp::GetChildren(PathWatchRequest::read(r)?),
                other => return Err(r.err("multi op", format!("unknown op type {other}"))),
            });
        }
        Ok(MultiRequest { ops })
    }
}

/// One result in a multi response, in wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultiResult {
    /// create (type 1): path only (also what 3.8.0/3.8.1 send for create2 sub-ops).
    Create(String),
    /// create2 (type 15): path and Stat.
    Create2(String, Stat),
    /// delete (type 2).
    Delete,
    /// setData (type 5).
    SetData(Stat),
    /// check (type 13).
    Check,
    /// getData (type 4).
    GetData(Vec<u8>, Stat),
    /// getChildren (type 8).
    GetChildren(Vec<String>),
    /// error (type -1) with its code.
    Error(i32),
}

/// A `multi` / `multiRead` response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    /// Results in op order.
    pub results: Vec<MultiResult>,
}

impl Record for MultiResponse {
    fn write(&self, w: &mut Writer<'_>) {
        for res in &self.results {
            let (op, err) = match res {
                MultiResult::Create(_) => (1, 0),
                MultiResult::Create2(..) => (15, 0),
                MultiResult::Delete => (2, 0),
                MultiResult::SetData(_) => (5, 0),
                MultiResult::Check => (13, 0),
                MultiResult::GetData(..) => (4, 0),
                MultiResult::GetChildren(_) => (8, 0),
                MultiResult::Error(e) => (-1, *e),
            };
            MultiHeader {
                op,
                done: false,
                err,
            }
            .write(w);
            match res {
                MultiResult::Create(p) => {
                    w.string(p);
                }
                MultiResult::Create2(p, s) => {
                    w.string(p);
                    s.write(w);
                }
                MultiResult::SetData(s) => s.write(w),
                MultiResult::GetData(d, s) => {
                    w.buffer(d);
                    s.write(w);
                }
                MultiResult::GetChildren(c) => {
                    w.strings(c);
                }
                MultiResult::Error(e) => {
                    w.i32(*e);
                }
                MultiResult::Delete | MultiResult::Check => {}
            }
        }
        MultiHeader::END.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let h = MultiHeader::read(r)?;
            if h.done {
                break;
            }
            results.push(match h.op {
                1 => MultiResult::Create(r.string()?),
                15 | 19 | 21 => MultiResult::Create2(r.string()?, Stat::read(r)?),
                2 => MultiResult::Delete,
                5 => MultiResult::SetData(Stat::read(r)?),
                13 => MultiResult::Check,
                4 => {
                    let d = r.buffer()?.to_vec();
                    MultiResult::GetData(d, Stat::read(r)?)
                }
                8 => MultiResult::GetChildren(r.strings()?),
                -1 => {
                    // ErrorResponse repeats the code; prefer the header's when they differ.
                    let body = r.i32()?;
                    MultiResult::Error(if h.err != 0 { h.err } else { body })
                }
                other => return Err(r.err("multi result", format!("unknown result type {other}"))),
            });
        }
        Ok(MultiResponse { results })
    }
}

/// Checks that a frame is long enough to be a ConnectResponse (see
/// [`CONNECT_RESPONSE_MIN_LEN`]); if it is a bare ReplyHeader instead, returns its error code.
pub fn classify_connect_frame(frame: &[u8]) -> Result<ConnectResponse, Option<i32>> {
    if frame.len() >= CONNECT_RESPONSE_MIN_LEN {
        return ConnectResponse::from_bytes(frame).map_err(|_| None);
    }
    if frame.len() == REPLY_HEADER_LEN {
        if let Ok(h) = ReplyHeader::from_bytes(frame) {
            return Err(Some(h.err));
        }
    }
    Err(None)
}

#[cfg(test)]
mod reconfig_tests {
    use super::*;

    #[test]
    fn reconfig_request_writes_absent_parts_null() {
        let req = ReconfigRequest {
            joining: None,
            leaving: Some("3".into()),
            new_members: None,
            cur_config_id: -1,
        };
        let b = req.to_bytes();
        assert_eq!(
            &b[..],
            &[
                0xff, 0xff, 0xff, 0xff, // joining: null
                0, 0, 0, 1, b'3', // leaving: "3"
                0xff, 0xff, 0xff, 0xff, // newMembers: null
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // curConfigId -1
            ][..]
        );
        assert_eq!(ReconfigRequest::from_bytes(&b).unwrap(), req);
    }
}
