//! The server's state and its request processing: the tree, the sessions, the connections and
//! their watches, behind one lock. Every request is handled whole under the lock and its reply
//! (and every event it causes, to any connection) is queued before the lock is released, so
//! each connection sees events and replies in the order ZooKeeper's single pipeline gives:
//! a change's events are queued before the reply of any read that observes the change.

use crate::tree::{err, CreateArgs, Kind, Tree, Trigger, Txn};
use crate::watch::{ConnId, Mode, Table};
use crate::Options;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use zk_proto::{
    record_frame, reply_frame, ClientInfo, ConnectRequest, ConnectResponse, Create2Response,
    GetAclResponse, GetChildren2Response, Id, IntRecord, MultiOp, MultiResponse, MultiResult,
    PathRecord, Perms, Record, ReplyHeader, Request, RequestHeader, SetWatches, StatResponse,
    StringsResponse, WatcherEvent, WhoAmIResponse, Writer,
};

/// What a connection's task is told to do.
#[derive(Debug)]
pub(crate) enum Out {
    /// Write this frame.
    Frame(Bytes),
    /// Close the socket (after the frames queued before).
    Close,
}

pub(crate) struct Conn {
    tx: UnboundedSender<Out>,
    /// 0 until the handshake attached a session.
    pub session: i64,
    /// Identities (ip first, then what auth packets added).
    pub ids: Vec<Id>,
    pub peer: SocketAddr,
    pub received: u64,
    pub sent: u64,
}

/// A live session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    /// Server clock (ms since start) at which the session expires unless touched.
    pub expires_ms: i64,
    pub conn: Option<ConnId>,
}

/// Event types on the wire.
mod ev {
    pub const CREATED: i32 = 1;
    pub const DELETED: i32 = 2;
    pub const DATA_CHANGED: i32 = 3;
    pub const CHILDREN_CHANGED: i32 = 4;
}

/// A reply body.
enum Body {
    None,
    Path(String),
    Create2(String, zk_proto::Stat),
    Stat(zk_proto::Stat),
    Data(Option<Vec<u8>>, zk_proto::Stat),
    Acl(Vec<zk_proto::Acl>, zk_proto::Stat),
    Strings(Vec<String>),
    Children2(Vec<String>, zk_proto::Stat),
    Int(i32),
    Multi(MultiResponse),
    WhoAmI(Vec<ClientInfo>),
}

impl Body {
    fn write(&self, w: &mut Writer<'_>) {
        match self {
            Body::None => {}
            Body::Path(p) => PathRecord { path: p.clone() }.write(w),
            Body::Create2(p, s) => Create2Response {
                path: p.clone(),
                stat: *s,
            }
            .write(w),
            Body::Stat(s) => StatResponse { stat: *s }.write(w),
            Body::Data(d, s) => {
                // null data comes back null, as ZooKeeper sends it
                w.opt_buffer(d.as_deref());
                s.write(w);
            }
            Body::Acl(a, s) => GetAclResponse {
                acl: a.clone(),
                stat: *s,
            }
            .write(w),
            Body::Strings(v) => StringsResponse { items: v.clone() }.write(w),
            Body::Children2(v, s) => GetChildren2Response {
                children: v.clone(),
                stat: *s,
            }
            .write(w),
            Body::Int(v) => IntRecord { value: *v }.write(w),
            Body::Multi(m) => m.write(w),
            Body::WhoAmI(c) => WhoAmIResponse {
                client_info: c.clone(),
            }
            .write(w),
        }
    }
}

pub(crate) struct Core {
    pub opts: Options,
    pub tree: Tree,
    pub zxid: i64,
    pub data_w: Table,
    pub child_w: Table,
    pub sessions: HashMap<i64, Session>,
    pub conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
    next_session: i64,
    started: Instant,
    pub packets_received: u64,
    pub packets_sent: u64,
}

/// Wall-clock ms since the epoch (ctime / mtime).
pub(crate) fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Core {
    pub fn new(opts: Options) -> Core {
        // SessionTrackerImpl.initializeNextSessionId, server id 1
        let next_session = (1i64 << 56) | (((epoch_ms() << 24) as u64 >> 8) as i64);
        Core {
            opts,
            tree: Tree::new(epoch_ms()),
            zxid: 0,
            data_w: Table::default(),
            child_w: Table::default(),
            sessions: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 1,
            next_session,
            started: Instant::now(),
            packets_received: 0,
            packets_sent: 0,
        }
    }

    /// Server clock, ms since start (expiry).
    pub fn clock_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    fn tick_ms(&self) -> i64 {
        self.opts.tick_time.as_millis().max(1) as i64
    }

    /// `ExpiryQueue.roundToNextInterval`.
    fn expiry_for(&self, timeout_ms: i32) -> i64 {
        let t = self.clock_ms() + timeout_ms as i64;
        let tick = self.tick_ms();
        (t / tick + 1) * tick
    }

    fn touch(&mut self, sid: i64) {
        if let Some(timeout) = self.sessions.get(&sid).map(|s| s.timeout_ms) {
            let e = self.expiry_for(timeout);
            self.sessions.get_mut(&sid).expect("present").expires_ms = e;
        }
    }

    /// Every session gets a full timeout again (after a restart).
    pub fn touch_all(&mut self) {
        let ids: Vec<i64> = self.sessions.keys().copied().collect();
        for id in ids {
            self.touch(id);
        }
    }

    pub fn register(&mut self, tx: UnboundedSender<Out>, peer: SocketAddr) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        let ip = match peer.ip() {
            std::net::IpAddr::V4(a) => a.to_string(),
            std::net::IpAddr::V6(a) => a.to_string(),
        };
        self.conns.insert(
            id,
            Conn {
                tx,
                session: 0,
                ids: vec![Id::new("ip", ip)],
                peer,
                received: 0,
                sent: 0,
            },
        );
        id
    }

    /// A connection's socket is gone: its watches go with it, its session stays.
    pub fn conn_closed(&mut self, conn: ConnId) {
        self.data_w.remove_conn(conn);
        self.child_w.remove_conn(conn);
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(s) = self.sessions.get_mut(&c.session) {
                if s.conn == Some(conn) {
                    s.conn = None;
                }
            }
        }
    }

    fn send(&mut self, conn: ConnId, out: Out) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if matches!(out, Out::Frame(_)) {
                c.sent += 1;
                self.packets_sent += 1;
            }
            let _ = c.tx.send(out);
        }
    }

    /// Queues `out` for a connection without counting it (control messages).
    pub fn send_to(&self, conn: ConnId, out: Out) {
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.tx.send(out);
        }
    }

    fn reply(&mut self, conn: ConnId, xid: i32, zxid: i64, err: i32, body: &Body) {
        let f = if err == 0 || matches!(body, Body::Multi(_)) {
            reply_frame(ReplyHeader { xid, zxid, err }, Some(&|w| body.write(w)))
        } else {
            reply_frame(ReplyHeader { xid, zxid, err }, None)
        };
        self.send(conn, Out::Frame(f));
    }

    fn notify(&mut self, conn: ConnId, event_type: i32, path: &str) {
        let ev = WatcherEvent {
            event_type,
            state: 3,
            path: path.to_owned(),
        };
        let f = reply_frame(
            ReplyHeader {
                xid: -1,
                zxid: -1,
                err: 0,
            },
            Some(&|w| ev.write(w)),
        );
        self.send(conn, Out::Frame(f));
    }

    /// Fires the watches a committed change triggers (`DataTree.createNode` / `deleteNode` /
    /// `setData`).
    fn dispatch(&mut self, triggers: Vec<Trigger>) {
        let none = HashSet::new();
        for t in triggers {
            let (path, kind, conns) = match t {
                Trigger::Created(p) => {
                    let c = self.data_w.trigger(&p, false, &none);
                    (p, ev::CREATED, c)
                }
                Trigger::DataChanged(p) => {
                    let c = self.data_w.trigger(&p, false, &none);
                    (p, ev::DATA_CHANGED, c)
                }
                Trigger::Deleted(p) => {
                    let mut c = self.data_w.trigger(&p, false, &none);
                    let more = self.child_w.trigger(&p, false, &c);
                    c.extend(more);
                    (p, ev::DELETED, c)
                }
                Trigger::ChildrenChanged(p) => {
                    let c = self.child_w.trigger(&p, true, &none);
                    (p, ev::CHILDREN_CHANGED, c)
                }
            };
            let mut conns: Vec<ConnId> = conns.into_iter().collect();
            conns.sort_unstable();
            for c in conns {
                self.notify(c, kind, &path);
            }
        }
    }

    /// Handles a ConnectRequest (`ZooKeeperServer.processConnectRequest`).
    pub fn connect(&mut self, conn: ConnId, frame: &[u8]) {
        let Ok(req) = ConnectRequest::from_bytes(frame) else {
            self.send(conn, Out::Close);
            return;
        };
        self.packets_received += 1;
        if req.last_zxid_seen > self.zxid {
            // "client must try another server": closed without a response
            self.send(conn, Out::Close);
            return;
        }
        let min = self.opts.min_session_timeout().as_millis() as i32;
        let max = self.opts.max_session_timeout().as_millis() as i32;
        let timeout = req.timeout_ms.clamp(min, max);
        let with_ro = req.read_only.is_some();
        let respond = |core: &mut Core, timeout_ms: i32, session_id: i64, passwd: Vec<u8>| {
            let resp = ConnectResponse {
                protocol_version: 0,
                timeout_ms,
                session_id,
                passwd,
                read_only: false,
            };
            let mut f = record_frame(&resp);
            if !with_ro {
                // an old client's request had no readOnly byte: neither has the answer
                let mut v = f[..f.len() - 1].to_vec();
                let len = (v.len() - 4) as i32;
                v[..4].copy_from_slice(&len.to_be_bytes());
                f = Bytes::from(v);
            }
            core.send(conn, Out::Frame(f));
        };
        if req.session_id == 0 {
            let id = self.next_session;
            self.next_session += 1;
            let passwd: Vec<u8> = (0..16).map(|_| rand::random::<u8>()).collect();
            self.zxid += 1; // createSession is a transaction
            let expires_ms = self.expiry_for(timeout);
            self.sessions.insert(
                id,
                Session {
                    id,
                    passwd: passwd.clone(),
                    timeout_ms: timeout,
                    expires_ms,
                    conn: Some(conn),
                },
            );
            if let Some(c) = self.conns.get_mut(&conn) {
                c.session = id;
            }
            respond(self, timeout, id, passwd);
            return;
        }
        // re-attach: whoever holds the session is closed first, even if the password is wrong
        if let Some(old) = self.sessions.get(&req.session_id).and_then(|s| s.conn) {
            if old != conn {
                self.send(old, Out::Close);
                self.conn_closed(old);
            }
        }
        match self.sessions.get_mut(&req.session_id) {
            Some(s) if s.passwd == req.passwd => {
                s.conn = Some(conn);
                s.timeout_ms = timeout;
                let (id, passwd) = (s.id, s.passwd.clone());
                self.touch(id);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = id;
                }
                respond(self, timeout, id, passwd);
            }
            _ => {
                respond(self, 0, 0, vec![0; 16]);
                self.send(conn, Out::Close);
            }
        }
    }

    /// Ends a session: its ephemerals are deleted (watchers notified) and its connection is
    /// closed. `reply_xid`: the closeSession request to answer first.
    pub fn end_session(&mut self, sid: i64, reply_xid: Option<i32>) -> bool {
        let Some(s) = self.sessions.remove(&sid) else {
            return false;
        };
        self.zxid += 1;
        let zxid = self.zxid;
        let paths: Vec<String> = self
            .tree
            .ephemerals
            .remove(&sid)
            .map(|set| set.into_iter().collect())
            .unwrap_or_default();
        let mut txn = Txn::default();
        for p in &paths {
            self.tree.delete_internal(p, zxid, &mut txn);
        }
        self.tree.ephemerals.remove(&sid);
        self.dispatch(txn.triggers);
        if let Some(c) = s.conn {
            if let Some(xid) = reply_xid {
                self.reply(c, xid, zxid, 0, &Body::None);
            }
            self.send(c, Out::Close);
            if let Some(conn) = self.conns.get_mut(&c) {
                conn.session = 0;
            }
        }
        true
    }

    /// Expires sessions whose time is up (the session tracker's tick).
    pub fn expire_due(&mut self) {
        let now = self.clock_ms();
        let due: Vec<i64> = self
            .sessions
            .values()
            .filter(|s| s.expires_ms <= now)
            .map(|s| s.id)
            .collect();
        for sid in due {
            tracing::debug!(session = format_args!("{sid:#x}"), "session expired");
            self.end_session(sid, None);
        }
    }

    /// Deletes emptied containers and expired TTL nodes (`ContainerManager`).
    pub fn reap(&mut self) {
        for path in self.tree.reap_candidates(epoch_ms()) {
            self.zxid += 1;
            let mut txn = Txn::default();
            if self.tree.delete_internal(&path, self.zxid, &mut txn) {
                self.dispatch(txn.triggers);
            }
        }
    }

    /// Handles one request frame of an attached connection.
    pub fn request(&mut self, conn: ConnId, frame: &[u8]) {
        self.packets_received += 1;
        let sid = match self.conns.get_mut(&conn) {
            Some(c) => {
                c.received += 1;
                c.session
            }
            None => return,
        };
        if sid == 0 || !self.sessions.contains_key(&sid) {
            return; // expired or never attached: the Close is already queued
        }
        self.touch(sid);
        let Ok(h) = RequestHeader::from_bytes(frame) else {
            self.send(conn, Out::Close);
            return;
        };
        let body = &frame[8.min(frame.len())..];
        let req = match Request::decode(h.op, body) {
            Ok(Some(r)) => r,
            Ok(None) => {
                // unknown opcode: UNIMPLEMENTED, then the connection is closed
                self.reply(conn, h.xid, -1, err::UNIMPLEMENTED, &Body::None);
                self.send(conn, Out::Close);
                return;
            }
            Err(_) => {
                self.reply(conn, h.xid, self.zxid, -5, &Body::None);
                self.send(conn, Out::Close);
                return;
            }
        };
        let ids = self.conns[&conn].ids.clone();
        let null = Request::data_is_null(h.op, body);
        let data = |d: Vec<u8>| if null { None } else { Some(d) };
        if req.is_write() && !matches!(req, Request::Check(_)) {
            self.zxid += 1; // every write is a transaction, failed ones too (ErrorTxn)
        }
        let zxid = self.zxid;
        let now = epoch_ms();
        let ttl_ok = self.opts.extended_types;
        let result: Result<Body, i32> = match req {
            Request::Ping => {
                self.reply(conn, -2, self.zxid, 0, &Body::None);
                return;
            }
            Request::CloseSession => {
                self.end_session_closing(sid, h.xid);
                return;
            }
            Request::Auth(a) => {
                self.auth(conn, &a.scheme, &a.auth);
                return;
            }
            Request::SetWatches(sw) => {
                self.set_watches(conn, &sw);
                self.reply(conn, h.xid, self.zxid, 0, &Body::None);
                return;
            }
            Request::Create(op, c) => {
                let a = CreateArgs {
                    op,
                    path: c.path,
                    data: data(c.data),
                    acl: c.acl,
                    flags: c.flags,
                    ttl: None,
                };
                self.write_one(|t, txn| {
                    let p = t.create(&a, sid, &ids, zxid, now, ttl_ok, txn)?;
                    let stat = t.get(&p).expect("created").stat();
                    Ok(if op == 1 {
                        Body::Path(p)
                    } else {
                        Body::Create2(p, stat)
                    })
                })
            }
            Request::CreateTtl(c) => {
                let a = CreateArgs {
                    op: 21,
                    path: c.path,
                    data: data(c.data),
                    acl: c.acl,
                    flags: c.flags,
                    ttl: Some(c.ttl),
                };
                self.write_one(|t, txn| {
                    let p = t.create(&a, sid, &ids, zxid, now, ttl_ok, txn)?;
                    let stat = t.get(&p).expect("created").stat();
                    Ok(Body::Create2(p, stat))
                })
            }
            Request::Delete(d) => self.write_one(|t, txn| {
                t.delete(&d.path, d.version, &ids, zxid, txn)
                    .map(|_| Body::None)
            }),
            Request::SetData(s) => self.write_one(|t, txn| {
                t.set_data(&s.path, data(s.data), s.version, &ids, zxid, now, txn)
                    .map(Body::Stat)
            }),
            Request::SetAcl(s) => self.write_one(|t, txn| {
                t.set_acl(&s.path, &s.acl, s.version, &ids, txn)
                    .map(Body::Stat)
            }),
            Request::Check(_) => {
                // 3.8.5+ answers a top-level check so (3.8.0 corrupted its log instead)
                Err(err::UNIMPLEMENTED)
            }
            Request::Multi(m) => {
                if m.ops
                    .iter()
                    .any(|o| matches!(o, MultiOp::GetData(_) | MultiOp::GetChildren(_)))
                {
                    Err(err::MARSHALLING)
                } else {
                    Ok(Body::Multi(self.multi(sid, &ids, &m.ops, zxid, now)))
                }
            }
            Request::MultiRead(m) => {
                if m.ops
                    .iter()
                    .any(|o| !matches!(o, MultiOp::GetData(_) | MultiOp::GetChildren(_)))
                {
                    Err(err::MARSHALLING)
                } else {
                    Ok(Body::Multi(self.multi_read(&ids, &m.ops)))
                }
            }
            Request::Exists(r) => {
                if r.watch {
                    self.data_w.add(&r.path, conn, Mode::Standard);
                }
                match self.tree.get(&r.path) {
                    Some(n) => Ok(Body::Stat(n.stat())),
                    None => Err(err::NO_NODE),
                }
            }
            Request::GetData(r) => match self.tree.read(&r.path, Perms::READ.0, &ids) {
                Ok(n) => {
                    let body = Body::Data(n.data.clone(), n.stat());
                    if r.watch {
                        self.data_w.add(&r.path, conn, Mode::Standard);
                    }
                    Ok(body)
                }
                Err(e) => Err(e),
            },
            Request::GetChildren(r) | Request::GetChildren2(r) => {
                let two = h.op == 12;
                match self.tree.read(&r.path, Perms::READ.0, &ids) {
                    Ok(n) => {
                        let names: Vec<String> = n.children.iter().cloned().collect();
                        let body = if two {
                            Body::Children2(names, n.stat())
                        } else {
                            Body::Strings(names)
                        };
                        if r.watch {
                            self.child_w.add(&r.path, conn, Mode::Standard);
                        }
                        Ok(body)
                    }
                    Err(e) => Err(e),
                }
            }
            Request::GetAcl(r) => self.get_acl(&r.path, &ids),
            Request::Sync(r) => Ok(Body::Path(r.path)),
            Request::GetEphemerals(r) => {
                let prefix = r.path;
                let mut v: Vec<String> = self
                    .tree
                    .ephemerals
                    .get(&sid)
                    .map(|s| {
                        s.iter()
                            .filter(|p| prefix == "/" || p.starts_with(&prefix))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                v.sort();
                Ok(Body::Strings(v))
            }
            Request::GetAllChildrenNumber(r) => self
                .tree
                .read(&r.path, Perms::READ.0, &ids)
                .map(|_| Body::Int(self.tree.all_children_number(&r.path))),
            Request::AddWatch(r) => match r.mode {
                0 => {
                    self.data_w.add(&r.path, conn, Mode::Persistent);
                    self.child_w.add(&r.path, conn, Mode::Persistent);
                    Ok(Body::Int(0))
                }
                1 => {
                    self.data_w.add(&r.path, conn, Mode::Recursive);
                    Ok(Body::Int(0))
                }
                _ => Err(err::BAD_ARGUMENTS),
            },
            Request::CheckWatches(r) | Request::RemoveWatches(r) => {
                let remove = h.op == 18;
                self.check_watches(conn, &r.path, r.mode, remove)
            }
            Request::WhoAmI => Ok(Body::WhoAmI(
                ids.iter()
                    .map(|i| ClientInfo {
                        auth_scheme: i.scheme.clone(),
                        user: if i.scheme == "digest" {
                            i.id.split(':').next().unwrap_or("").to_owned()
                        } else {
                            i.id.clone()
                        },
                    })
                    .collect(),
            )),
            Request::Reconfig(_) => Err(err::RECONFIG_DISABLED),
            _ => Err(err::UNIMPLEMENTED),
        };
        let zxid = self.zxid;
        match result {
            Ok(body) => self.reply(conn, h.xid, zxid, 0, &body),
            Err(code) => self.reply(conn, h.xid, zxid, code, &Body::None),
        }
    }

    fn end_session_closing(&mut self, sid: i64, xid: i32) {
        // closeSession is a transaction (end_session takes its zxid)
        self.end_session(sid, Some(xid));
    }

    /// One write: applied, then its watches fired; a failure changed nothing.
    fn write_one(
        &mut self,
        f: impl FnOnce(&mut Tree, &mut Txn) -> Result<Body, i32>,
    ) -> Result<Body, i32> {
        let mut txn = Txn::default();
        match f(&mut self.tree, &mut txn) {
            Ok(b) => {
                self.dispatch(txn.triggers);
                Ok(b)
            }
            Err(e) => {
                self.tree.rollback(txn);
                Err(e)
            }
        }
    }

    /// multi: all or nothing; on failure every result is an error: 0 before the failing op,
    /// its code, then RUNTIMEINCONSISTENCY.
    fn multi(
        &mut self,
        sid: i64,
        ids: &[Id],
        ops: &[MultiOp],
        zxid: i64,
        now: i64,
    ) -> MultiResponse {
        let mut txn = Txn::default();
        let mut results = Vec::with_capacity(ops.len());
        let mut failed = None;
        let ttl_ok = self.opts.extended_types;
        for (i, op) in ops.iter().enumerate() {
            let t = &mut self.tree;
            let r = match op {
                MultiOp::Create(code, c) => {
                    let a = CreateArgs {
                        op: *code,
                        path: c.path.clone(),
                        data: Some(c.data.clone()),
                        acl: c.acl.clone(),
                        flags: c.flags,
                        ttl: None,
                    };
                    t.create(&a, sid, ids, zxid, now, ttl_ok, &mut txn)
                        .map(|p| {
                            if *code == 19 {
                                let s = t.get(&p).expect("created").stat();
                                MultiResult::Create2(p, s)
                            } else {
                                // 3.8.0/3.8.1 answer a create2 sub-op as a create: path only
                                MultiResult::Create(p)
                            }
                        })
                }
                MultiOp::CreateTtl(c) => {
                    let a = CreateArgs {
                        op: 21,
                        path: c.path.clone(),
                        data: Some(c.data.clone()),
                        acl: c.acl.clone(),
                        flags: c.flags,
                        ttl: Some(c.ttl),
                    };
                    t.create(&a, sid, ids, zxid, now, ttl_ok, &mut txn)
                        .map(|p| {
                            let s = t.get(&p).expect("created").stat();
                            MultiResult::Create2(p, s)
                        })
                }
                MultiOp::Delete(d) => t
                    .delete(&d.path, d.version, ids, zxid, &mut txn)
                    .map(|_| MultiResult::Delete),
                MultiOp::SetData(s) => t
                    .set_data(
                        &s.path,
                        Some(s.data.clone()),
                        s.version,
                        ids,
                        zxid,
                        now,
                        &mut txn,
                    )
                    .map(MultiResult::SetData),
                MultiOp::Check(c) => t.check(&c.path, c.version, ids).map(|_| MultiResult::Check),
                _ => Err(err::MARSHALLING),
            };
            match r {
                Ok(res) => results.push(res),
                Err(code) => {
                    failed = Some((i, code));
                    break;
                }
            }
        }
        if let Some((at, code)) = failed {
            self.tree.rollback(txn);
            let results = (0..ops.len())
                .map(|j| {
                    MultiResult::Error(match j.cmp(&at) {
                        std::cmp::Ordering::Less => 0,
                        std::cmp::Ordering::Equal => code,
                        std::cmp::Ordering::Greater => err::RUNTIME_INCONSISTENCY,
                    })
                })
                .collect();
            return MultiResponse { results };
        }
        self.dispatch(txn.triggers);
        MultiResponse { results }
    }

    /// multiRead: each op answered on its own (no watches).
    fn multi_read(&self, ids: &[Id], ops: &[MultiOp]) -> MultiResponse {
        let results = ops
            .iter()
            .map(|op| match op {
                MultiOp::GetData(g) => match self.tree.read(&g.path, Perms::READ.0, ids) {
                    Ok(n) => MultiResult::GetData(n.data.clone().unwrap_or_default(), n.stat()),
                    Err(e) => MultiResult::Error(e),
                },
                MultiOp::GetChildren(g) => match self.tree.read(&g.path, Perms::READ.0, ids) {
                    Ok(n) => MultiResult::GetChildren(n.children.iter().cloned().collect()),
                    Err(e) => MultiResult::Error(e),
                },
                _ => MultiResult::Error(err::MARSHALLING),
            })
            .collect();
        MultiResponse { results }
    }

    /// getACL: READ or ADMIN needed; without ADMIN digest ids are masked `user:x`.
    fn get_acl(&self, path: &str, ids: &[Id]) -> Result<Body, i32> {
        let n = self.tree.read(path, Perms::READ.0 | Perms::ADMIN.0, ids)?;
        let admin = crate::tree::check_acl(&n.acl, Perms::ADMIN.0, ids).is_ok();
        let acl = n
            .acl
            .iter()
            .map(|a| {
                if !admin && a.id.scheme == "digest" {
                    let user = a.id.id.split(':').next().unwrap_or("");
                    zk_proto::Acl::new(a.perms, "digest", format!("{user}:x"))
                } else {
                    a.clone()
                }
            })
            .collect();
        Ok(Body::Acl(acl, n.stat()))
    }

    fn check_watches(
        &mut self,
        conn: ConnId,
        path: &str,
        kind: i32,
        remove: bool,
    ) -> Result<Body, i32> {
        let (data, child) = match kind {
            1 => (false, true),
            2 => (true, false),
            3 => (true, true),
            _ => return Err(err::BAD_ARGUMENTS),
        };
        let has_data = data && self.data_w.contains(path, conn);
        let has_child = child && self.child_w.contains(path, conn);
        if !has_data && !has_child {
            return Err(err::NO_WATCHER);
        }
        if remove {
            if has_data {
                self.data_w.remove(path, conn);
            }
            if has_child {
                self.child_w.remove(path, conn);
            }
        }
        Ok(Body::None)
    }

    /// auth (xid -4): digest adds `user:base64(sha1(user:password))`; an unknown scheme fails
    /// with AUTHFAILED and the connection is closed.
    fn auth(&mut self, conn: ConnId, scheme: &str, cred: &[u8]) {
        let id = match scheme {
            "digest" => {
                let s = String::from_utf8_lossy(cred);
                s.split_once(':')
                    .map(|(u, p)| Id::new("digest", zk_proto::digest_id(u, p)))
            }
            "ip" => self
                .conns
                .get(&conn)
                .map(|c| Id::new("ip", c.peer.ip().to_string())),
            _ => None,
        };
        let hdr = |err| ReplyHeader {
            xid: -4,
            zxid: 0,
            err,
        };
        match id {
            Some(id) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    if !c.ids.contains(&id) {
                        c.ids.push(id);
                    }
                }
                self.send(conn, Out::Frame(reply_frame(hdr(0), None)));
            }
            None => {
                self.send(conn, Out::Frame(reply_frame(hdr(err::AUTH_FAILED), None)));
                self.send(conn, Out::Close);
            }
        }
    }

    /// setWatches / setWatches2 (`DataTree.setWatches`): each watch is re-registered, or fires
    /// at once if what it watches changed after `relative_zxid`.
    fn set_watches(&mut self, conn: ConnId, sw: &SetWatches) {
        let rel = sw.relative_zxid;
        for p in &sw.data {
            match self.tree.get(p).map(|n| n.mzxid) {
                None => self.notify(conn, ev::DELETED, p),
                Some(m) if m > rel => self.notify(conn, ev::DATA_CHANGED, p),
                Some(_) => self.data_w.add(p, conn, Mode::Standard),
            }
        }
        for p in &sw.exist {
            if self.tree.get(p).is_some() {
                self.notify(conn, ev::CREATED, p);
            } else {
                self.data_w.add(p, conn, Mode::Standard);
            }
        }
        for p in &sw.child {
            match self.tree.get(p).map(|n| n.pzxid) {
                None => self.notify(conn, ev::DELETED, p),
                Some(z) if z > rel => self.notify(conn, ev::CHILDREN_CHANGED, p),
                Some(_) => self.child_w.add(p, conn, Mode::Standard),
            }
        }
        for p in &sw.persistent {
            self.data_w.add(p, conn, Mode::Persistent);
            self.child_w.add(p, conn, Mode::Persistent);
        }
        for p in &sw.persistent_recursive {
            self.data_w.add(p, conn, Mode::Recursive);
        }
    }

    /// Count of ephemeral nodes (mntr).
    pub fn ephemeral_count(&self) -> usize {
        self.tree
            .paths()
            .filter(|(_, n)| matches!(n.kind, Kind::Ephemeral(_)))
            .count()
    }
}
