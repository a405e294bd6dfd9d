//! Requests after the handshake: decoding, the checks and effects of each operation (writes as
//! transactions, reads setting their watches), multi, setWatches, auth, and the reply bodies.

use super::{epoch_ms, ev, Core, Out};
use crate::tree::{check_acl, err, CreateArgs, Tree, Txn};
use crate::watch::{ConnId, Mode};
use zk_proto::{
    reply_frame, ClientInfo, Create2Response, GetAclResponse, GetChildren2Response, Id, IntRecord,
    MultiHeader, MultiOp, MultiResponse, MultiResult, PathRecord, Perms, Record, ReplyHeader,
    Request, RequestHeader, SetWatches, StatResponse, StringsResponse, WhoAmIResponse, Writer,
};

/// A reply body.
pub(crate) enum Body {
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
    MultiRead(Vec<ReadResult>),
    WhoAmI(Vec<ClientInfo>),
}

/// One multiRead result: data keeps its null (MultiResult's buffer cannot).
pub(crate) enum ReadResult {
    Data(Option<Vec<u8>>, zk_proto::Stat),
    Children(Vec<String>),
    Error(i32),
}

impl Body {
    pub(crate) fn write(&self, w: &mut Writer<'_>) {
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

            Body::MultiRead(results) => {
                for r in results {
                    let (op, err) = match r {
                        ReadResult::Data(..) => (4, 0),
                        ReadResult::Children(_) => (8, 0),
                        ReadResult::Error(e) => (-1, *e),
                    };
                    MultiHeader {
                        op,
                        done: false,
                        err,
                    }
                    .write(w);
                    match r {
                        ReadResult::Data(d, s) => {
                            w.opt_buffer(d.as_deref());
                            s.write(w);
                        }
                        ReadResult::Children(c) => {
                            w.strings(c);
                        }
                        ReadResult::Error(e) => {
                            w.i32(*e);
                        }
                    }
                }
                MultiHeader::END.write(w);
            }
            Body::WhoAmI(c) => WhoAmIResponse {
                client_info: c.clone(),
            }
            .write(w),
        }
    }
}

impl Core {
    /// Handles one request frame of an attached connection.
    pub(crate) fn request(&mut self, conn: ConnId, frame: &[u8]) {
        self.packets_received += 1;
        let sid = match self.conns.get_mut(&conn) {
            Some(c) if !c.closing => {
                c.received += 1;
                c.session
            }
            _ => return, // gone, or a close is queued: nothing more is handled
        };
        if sid == 0 || !self.sessions.contains_key(&sid) || self.failed.is_some() {
            return; // expired, never attached, or the data dir failed: the Close is queued
        }
        self.touch(sid);
        let Ok(h) = RequestHeader::from_bytes(frame) else {
            self.send(conn, Out::Close);
            return;
        };
        let body = &frame[8.min(frame.len())..];
        if h.op == -10 {
            // createSession is the server's own txn: a client's does not decode
            self.failed_write(conn, h.xid, h.op, err::MARSHALLING);
            return;
        }
        if h.op == 20 {
            // deleteContainer, ContainerManager's own request: ZooKeeper reads its path from
            // the whole packet, header included, so a client's always has a NUL in it
            self.failed_write(conn, h.xid, h.op, err::BAD_ARGUMENTS);
            return;
        }
        let req = match Request::decode(h.op, body) {
            Ok(Some(r)) => r,
            Ok(None) => {
                // unknown opcode: UNIMPLEMENTED, then the connection is closed; what the
                // client sent behind it is still handled (ZooKeeper's UnimplementedRequest-
                // Processor queues the close without disabling reads), unanswered
                self.reply(conn, h.xid, -1, err::UNIMPLEMENTED, &Body::None);
                self.send(conn, Out::Close);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.closing = false;
                }
                return;
            }
            Err(_) if h.op == 100 => {
                // an auth packet is read by the connection: one that does not decode ends it
                self.send(conn, Out::Close);
                return;
            }
            Err(_) => {
                // a body that does not decode: MARSHALLINGERROR, the connection stays; a write
                // takes a zxid (ZooKeeper's error txn)
                if matches!(h.op, 1 | 2 | 5 | 7 | 14 | 15 | 16 | 19 | 21) {
                    self.failed_write(conn, h.xid, h.op, err::MARSHALLING);
                } else {
                    self.note_request(conn, h.xid, h.op);
                    self.reply(conn, h.xid, self.zxid, err::MARSHALLING, &Body::None);
                }
                return;
            }
        };
        let ids = self.conns[&conn].ids.clone();
        // null data buffers, which the records decode as empty: one flag, or one per multi op
        let nulls = if h.op == 14 {
            Request::multi_data_is_null(body)
        } else {
            vec![Request::data_is_null(h.op, body)]
        };
        self.note_request(conn, h.xid, h.op);
        let result: Result<Body, i32> = match req {
            Request::Ping => {
                self.reply(conn, -2, self.zxid, 0, &Body::None);
                return;
            }
            Request::CloseSession => {
                // a transaction: end_session takes its zxid, answers, then closes
                self.end_session(sid, Some(h.xid));
                return;
            }
            Request::Sasl(_) => {
                // answered by the connection (zxid 0), not the pipeline: a server without
                // SASL sends a null token and keeps the connection
                let f = reply_frame(
                    ReplyHeader {
                        xid: h.xid,
                        zxid: 0,
                        err: 0,
                    },
                    Some(&|w| {
                        w.opt_buffer(None);
                    }),
                );
                self.send(conn, Out::Frame(f));
                return;
            }
            Request::Auth(a) => {
                self.auth(conn, h.xid, &a.scheme, &a.auth);
                return;
            }
            Request::SetWatches(sw) => {
                self.set_watches(conn, &sw);
                self.reply(conn, h.xid, self.zxid, 0, &Body::None);
                return;
            }
            Request::Reconfig(_) => {
                // refused as a transaction: it takes a zxid (ZooKeeper's error txn)
                self.zxid += 1;
                Err(err::RECONFIG_DISABLED)
            }
            req if req.is_write() => self.write(sid, &ids, req, &nulls),
            req => self.read(conn, sid, &ids, h.op, req),
        };
        // a failed write took a zxid too: the data dir keeps it before the client sees it
        self.log_zxid();
        let zxid = self.zxid;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.last_zxid = zxid;
        }
        match result {
            Ok(body) => self.reply(conn, h.xid, zxid, 0, &body),
            Err(code) => self.reply(conn, h.xid, zxid, code, &Body::None),
        }
    }

    /// A write refused before it was decoded: it takes a zxid, as ZooKeeper's error txn.
    fn failed_write(&mut self, conn: ConnId, xid: i32, op: i32, code: i32) {
        self.zxid += 1;
        self.log_zxid();
        self.note_request(conn, xid, op);
        self.reply(conn, xid, self.zxid, code, &Body::None);
    }

    /// What `cons` shows of a connection's last request (ServerCnxn.updateStatsForResponse).
    fn note_request(&mut self, conn: ConnId, xid: i32, op: i32) {
        if op == 100 || op == 102 {
            return; // auth and sasl packets are answered by the connection, not the pipeline
        }
        let (zxid, now) = (self.zxid, self.clock_ms());
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.last_op = op_name(op);
            c.stats.last_cxid = i64::from(xid);
            c.stats.last_zxid = zxid;
            c.stats.last_resp_ms = now;
        }
    }

    /// A write: a transaction of its own (a zxid, failed ones too, as ZooKeeper's ErrorTxn),
    /// applied whole or not at all, its watches fired on success.
    fn write(&mut self, sid: i64, ids: &[Id], req: Request, nulls: &[bool]) -> Result<Body, i32> {
        if !matches!(req, Request::Check(_)) {
            self.zxid += 1;
        }
        let zxid = self.zxid;
        let now = epoch_ms();
        let ttl_ok = self.opts.extended_types;
        let null = nulls.first().copied().unwrap_or(false);
        let data = |d: Vec<u8>| if null { None } else { Some(d) };
        match req {
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
                    let p = t.create(&a, sid, ids, zxid, now, ttl_ok, txn)?;
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
                    let p = t.create(&a, sid, ids, zxid, now, ttl_ok, txn)?;
                    let stat = t.get(&p).expect("created").stat();
                    Ok(Body::Create2(p, stat))
                })
            }
            Request::Delete(d) => self.write_one(|t, txn| {
                t.delete(&d.path, d.version, ids, zxid, txn)
                    .map(|_| Body::None)
            }),
            Request::SetData(s) => self.write_one(|t, txn| {
                t.set_data(&s.path, data(s.data), s.version, ids, zxid, now, txn)
                    .map(Body::Stat)
            }),
            Request::SetAcl(s) => self.write_one(|t, txn| {
                t.set_acl(&s.path, &s.acl, s.version, ids, txn)
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
                    Ok(Body::Multi(self.multi(sid, ids, &m.ops, nulls, zxid, now)))
                }
            }
            _ => Err(err::UNIMPLEMENTED),
        }
    }

    /// A read (or a watch request): no transaction; watches are set after the checks pass.
    fn read(
        &mut self,
        conn: ConnId,
        sid: i64,
        ids: &[Id],
        op: i32,
        req: Request,
    ) -> Result<Body, i32> {
        match req {
            Request::MultiRead(m) => {
                if m.ops
                    .iter()
                    .any(|o| !matches!(o, MultiOp::GetData(_) | MultiOp::GetChildren(_)))
                {
                    Err(err::MARSHALLING)
                } else {
                    Ok(Body::MultiRead(self.multi_read(ids, &m.ops)))
                }
            }
            Request::Exists(r) => {
                if r.path.contains('\0') {
                    return Err(err::BAD_ARGUMENTS);
                }
                if r.watch {
                    self.data_w.add(&r.path, conn, Mode::Standard);
                }
                match self.tree.get(&r.path) {
                    Some(n) => Ok(Body::Stat(n.stat())),
                    None => Err(err::NO_NODE),
                }
            }
            Request::GetData(r) => match self.tree.read(&r.path, Perms::READ.0, ids) {
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
                let two = op == 12;
                match self.tree.read(&r.path, Perms::READ.0, ids) {
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
            Request::GetAcl(r) => self.get_acl(&r.path, ids),
            Request::Sync(r) => Ok(Body::Path(r.path)),
            Request::GetEphemerals(r) => {
                let prefix = r.path;
                let mut v: Vec<String> = self
                    .tree
                    .ephemerals
                    .get(&sid)
                    .map(|s| {
                        s.iter()
                            // StringUtils.isBlank(prefix) || "/".equals(prefix.trim())
                            .filter(|p| matches!(prefix.trim(), "" | "/") || p.starts_with(&prefix))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                v.sort();
                Ok(Body::Strings(v))
            }
            Request::GetAllChildrenNumber(r) => self
                .tree
                .read(&r.path, Perms::READ.0, ids)
                .map(|_| Body::Int(self.tree.all_children_number(&r.path))),
            Request::AddWatch(r) => match r.mode {
                0 => {
                    self.data_w.add(&r.path, conn, Mode::Persistent);
                    self.child_w.add(&r.path, conn, Mode::Persistent);
                    Ok(Body::Int(0))
                }
                1 => {
                    // both tables, as 3.8's DataTree.addWatch does: in the child table it
                    // takes the place of a one-shot child watch and never fires for
                    // NodeChildrenChanged
                    self.data_w.add(&r.path, conn, Mode::Recursive);
                    self.child_w.add(&r.path, conn, Mode::Recursive);
                    Ok(Body::Int(0))
                }
                // WatcherMode.fromZooDef's IllegalArgumentException
                _ => Err(err::MARSHALLING),
            },
            Request::CheckWatches(r) | Request::RemoveWatches(r) => {
                let remove = op == 18;
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
            _ => Err(err::UNIMPLEMENTED),
        }
    }

    /// One write: applied, then its watches fired; a failure changed nothing.
    fn write_one(
        &mut self,
        f: impl FnOnce(&mut Tree, &mut Txn) -> Result<Body, i32>,
    ) -> Result<Body, i32> {
        let mut txn = Txn::default();
        match f(&mut self.tree, &mut txn) {
            Ok(b) => {
                self.log_txn(&txn, Vec::new());
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
        nulls: &[bool],
        zxid: i64,
        now: i64,
    ) -> MultiResponse {
        let mut txn = Txn::default();
        let mut results = Vec::with_capacity(ops.len());
        let mut failed = None;
        let ttl_ok = self.opts.extended_types;
        let data = |i: usize, d: &[u8]| {
            if nulls.get(i).copied().unwrap_or(false) {
                None
            } else {
                Some(d.to_vec())
            }
        };
        for (i, op) in ops.iter().enumerate() {
            let t = &mut self.tree;
            let r = match op {
                MultiOp::Create(code, c) => {
                    let a = CreateArgs {
                        op: *code,
                        path: c.path.clone(),
                        data: data(i, &c.data),
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
                        data: data(i, &c.data),
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
                        data(i, &s.data),
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
        self.log_txn(&txn, Vec::new());
        self.dispatch(txn.triggers);
        MultiResponse { results }
    }

    /// multiRead: each op answered on its own (no watches).
    fn multi_read(&self, ids: &[Id], ops: &[MultiOp]) -> Vec<ReadResult> {
        ops.iter()
            .map(|op| match op {
                MultiOp::GetData(g) => match self.tree.read(&g.path, Perms::READ.0, ids) {
                    Ok(n) => ReadResult::Data(n.data.clone(), n.stat()),
                    Err(e) => ReadResult::Error(e),
                },
                MultiOp::GetChildren(g) => match self.tree.read(&g.path, Perms::READ.0, ids) {
                    Ok(n) => ReadResult::Children(n.children.iter().cloned().collect()),
                    Err(e) => ReadResult::Error(e),
                },
                _ => ReadResult::Error(err::MARSHALLING),
            })
            .collect()
    }

    /// getACL: READ or ADMIN needed; without ADMIN digest ids are masked `user:x`.
    fn get_acl(&self, path: &str, ids: &[Id]) -> Result<Body, i32> {
        let n = self.tree.read(path, Perms::READ.0 | Perms::ADMIN.0, ids)?;
        let admin = check_acl(&n.acl, Perms::ADMIN.0, ids).is_ok();
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
            // 3.8 cannot decode any other watcher type (3.9's Persistent 4 and
            // PersistentRecursive 5 included): MARSHALLINGERROR, the session stays
            _ => return Err(err::MARSHALLING),
        };
        if !remove {
            // checkWatches, as 3.8.0 answers it: a watch of that kind on the path, whichever
            // connection set it (fixed in 3.9 by ZOOKEEPER-4466); it walks the path and its
            // parents, and "" has none, so a watch on "" is never found
            if path.is_empty() {
                return Err(err::NO_WATCHER);
            }
            let found =
                (data && self.data_w.watched(path)) || (child && self.child_w.watched(path));
            return if found {
                Ok(Body::None)
            } else {
                Err(err::NO_WATCHER)
            };
        }
        // removeWatches: this connection's watches only
        let has_data = data && self.data_w.contains(path, conn);
        let has_child = child && self.child_w.contains(path, conn);
        if !has_data && !has_child {
            return Err(err::NO_WATCHER);
        }
        if has_data {
            self.data_w.remove(path, conn);
        }
        if has_child {
            self.child_w.remove(path, conn);
        }
        Ok(Body::None)
    }

    /// auth (xid -4): digest adds `user:base64(sha1(user:password))`; an unknown scheme fails
    /// with AUTHFAILED and the connection is closed.
    fn auth(&mut self, conn: ConnId, xid: i32, scheme: &str, cred: &[u8]) {
        let id = match scheme {
            // DigestAuthenticationProvider.generateDigest: the name is what precedes the
            // first colon, the hash is of the whole credential (a colon is not required)
            "digest" => Some(Id::new(
                "digest",
                zk_proto::digest_of_credential(&String::from_utf8_lossy(cred)),
            )),
            "ip" => self
                .conns
                .get(&conn)
                .map(|c| Id::new("ip", c.peer.ip().to_string())),
            _ => None,
        };
        // the reply carries the request's xid (-4 from every client library)
        let hdr = |err| ReplyHeader { xid, zxid: 0, err };
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
            self.child_w.add(p, conn, Mode::Recursive);
        }
    }
}

/// `FinalRequestProcessor`'s short name of an opcode (`cons`' `lop`).
fn op_name(op: i32) -> &'static str {
    match op {
        -11 => "CLOS",
        11 => "PING",
        1 | 15 | 19 | 21 => "CREA",
        2 | 20 => "DELE",
        5 => "SETD",
        16 => "RECO",
        7 => "SETA",
        14 => "MULT",
        22 => "MLTR",
        9 => "SYNC",
        13 => "CHEC",
        3 => "EXIS",
        4 => "GETD",
        101 => "SETW",
        105 => "STW2",
        106 => "ADDW",
        6 => "GETA",
        8 | 12 => "GETC",
        104 => "GETACN",
        17 => "CHKW",
        18 => "REMW",
        103 => "GETE",
        107 => "HOMI",
        _ => "NA",
    }
}
