//! The server's state and its request processing: the tree, the sessions, the connections and
//! their watches, behind one lock. Every request is handled whole under the lock and its reply
//! (and every event it causes, to any connection) is queued before the lock is released, so
//! each connection sees events and replies in the order ZooKeeper's single pipeline gives:
//! a change's events are queued before the reply of any read that observes the change.

use crate::persist::{Change, Journal, SavedSession, SessionChange};
use crate::tree::{Kind, Tree, Trigger, Txn};
use crate::watch::{ConnId, Table};
use crate::Options;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;
use tokio::time::Instant;
use zk_proto::{
    record_frame, reply_frame, ConnectRequest, ConnectResponse, Id, Record, ReplyHeader,
    WatcherEvent,
};

mod request;
pub(crate) use request::Body;

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
    /// Ends the connection's task at once, whatever is still queued or half written.
    kill: Arc<Notify>,
    /// A close is queued: nothing more this connection sends is handled (ZooKeeper stops
    /// reading it, or drops what it answers after the close).
    closing: bool,
    /// 0 until the handshake attached a session.
    pub session: i64,
    /// Identities (ip first, then what auth packets added).
    pub ids: Vec<Id>,
    pub peer: SocketAddr,
    pub received: u64,
    pub sent: u64,
    /// What `cons` shows of the last request answered (ServerCnxn's stats).
    pub stats: ConnStats,
}

/// A connection's figures in `cons`, as ZooKeeper's ServerCnxn keeps them.
#[derive(Debug, Clone)]
pub(crate) struct ConnStats {
    /// Wall-clock ms when a session attached.
    pub established_ms: i64,
    /// The last request's short name (`FinalRequestProcessor`'s lastOp), "NA" before one.
    pub last_op: &'static str,
    /// The last request's xid (-1 before one; pings are -2).
    pub last_cxid: i64,
    /// The zxid of the last reply (-1 before one).
    pub last_zxid: i64,
    /// Server clock (ms) of the last reply.
    pub last_resp_ms: i64,
}

impl Default for ConnStats {
    fn default() -> Self {
        ConnStats {
            established_ms: 0,
            last_op: "NA",
            last_cxid: -1,
            last_zxid: -1,
            last_resp_ms: 0,
        }
    }
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
    /// `gtmk` / `stmk`: ZooTrace's mask, 306 at start (it changes nothing here).
    pub trace_mask: i64,
    /// The data dir's open log, when there is one.
    journal: Option<Journal>,
    /// Why the data dir failed, if it did: from then on no client is served (until a
    /// restart loads the dir again), as ZooKeeper stops when it cannot log.
    pub failed: Option<String>,
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
            trace_mask: 306,
            journal: None,
            failed: None,
        }
    }

    /// A core for these options: fresh without a data dir; with one, what it holds (snapshot
    /// plus log), after which the dir is compacted into a new snapshot and an empty log.
    ///
    /// # Errors
    /// A corrupt snapshot (the error names the file), or the dir's I/O errors.
    pub fn open(opts: Options) -> std::io::Result<Core> {
        let mut core = Core::new(opts);
        let Some(dir) = core.opts.data_dir.clone() else {
            return Ok(core);
        };
        // I/O errors name the dir (format errors name their file already)
        let in_dir = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                e
            } else {
                std::io::Error::new(
                    e.kind(),
                    format!("zk-server data dir {}: {e}", dir.display()),
                )
            }
        };
        let lock = crate::persist::lock(&dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::ResourceBusy {
                e
            } else {
                in_dir(e)
            }
        })?;
        let loaded = crate::persist::load(&dir).map_err(in_dir)?;
        core.tree = loaded.tree;
        core.zxid = loaded.zxid;
        for s in loaded.sessions {
            core.next_session = core.next_session.max(s.id.wrapping_add(1));
            core.sessions.insert(
                s.id,
                Session {
                    id: s.id,
                    passwd: s.passwd,
                    timeout_ms: s.timeout_ms,
                    expires_ms: 0,
                    conn: None,
                },
            );
        }
        // every loaded session gets a full timeout from now, as ZooKeeper's do after a restart
        core.touch_all();
        let sessions = core.saved_sessions();
        core.journal = Some(
            Journal::start(
                &dir,
                lock,
                core.opts.fsync,
                core.opts.snapshot_every,
                loaded.gen + 1,
                core.zxid,
                &sessions,
                &core.tree,
            )
            .map_err(in_dir)?,
        );
        tracing::info!(
            dir = %dir.display(),
            zxid = format_args!("{:#x}", core.zxid),
            sessions = sessions.len(),
            nodes = core.tree.node_count() - 1,
            "data dir loaded"
        );
        Ok(core)
    }

    /// Closes the data dir's log (before the dir is loaded again).
    pub fn close_journal(&mut self) {
        self.journal = None;
    }

    fn saved_sessions(&self) -> Vec<SavedSession> {
        let mut v: Vec<SavedSession> = self
            .sessions
            .values()
            .map(|s| SavedSession {
                id: s.id,
                passwd: s.passwd.clone(),
                timeout_ms: s.timeout_ms,
            })
            .collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// Logs a committed write: the nodes it touched as they are now, and its session facts.
    fn log_txn(&mut self, txn: &Txn, sessions: Vec<SessionChange>) {
        if self.journal.is_none() {
            return;
        }
        let nodes = txn
            .paths()
            .into_iter()
            .map(|p| (p.to_owned(), self.tree.get(p).map(|n| n.without_children())))
            .collect();
        self.append(Change {
            zxid: self.zxid,
            sessions,
            nodes,
        });
    }

    /// Logs the zxid if a transaction took one without changing anything (a failed write).
    fn log_zxid(&mut self) {
        if self
            .journal
            .as_ref()
            .is_some_and(|j| j.last_zxid < self.zxid)
        {
            self.append(Change {
                zxid: self.zxid,
                ..Change::default()
            });
        }
    }

    fn append(&mut self, c: Change) {
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        let res = match j.append(&c) {
            Ok(false) => Ok(()),
            Ok(true) => {
                let sessions = self.saved_sessions();
                let j = self.journal.as_mut().expect("checked");
                j.snapshot(self.zxid, &sessions, &self.tree)
                    .map_err(|e| format!("snapshot failed: {e}"))
            }
            Err(e) => Err(format!("log append failed (zxid {:#x}): {e}", c.zxid)),
        };
        if let Err(why) = res {
            self.fail(why);
        }
    }

    /// The data dir cannot be written: every connection is closed before anything else queued
    /// for it (so the change being logged is never acknowledged: the client sees a lost
    /// connection), and nothing is served until a restart loads the dir again.
    fn fail(&mut self, why: String) {
        tracing::error!(error = %why, "data dir failed: no longer serving (restart to reload)");
        self.journal = None;
        self.failed = Some(why);
        for c in self.conns.keys().copied().collect::<Vec<_>>() {
            self.kill(c);
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

    pub fn register(
        &mut self,
        tx: UnboundedSender<Out>,
        kill: Arc<Notify>,
        peer: SocketAddr,
    ) -> ConnId {
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
                kill,
                closing: false,
                session: 0,
                ids: vec![Id::new("ip", ip)],
                peer,
                received: 0,
                sent: 0,
                stats: ConnStats::default(),
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
            match out {
                Out::Frame(_) => {
                    c.sent += 1;
                    self.packets_sent += 1;
                }
                Out::Close => c.closing = true,
            }
            let _ = c.tx.send(out);
        }
    }

    /// Queues `out` for a connection without counting it (four-letter words).
    pub fn send_to(&mut self, conn: ConnId, out: Out) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if matches!(out, Out::Close) {
                c.closing = true;
            }
            let _ = c.tx.send(out);
        }
    }

    /// Closes a connection now, as ZooKeeper closes a socket (session expiry, a re-attach
    /// elsewhere, a network blip): what is still queued for it is dropped, and it is gone
    /// with its watches at once, even while its client is not reading.
    pub fn kill(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            c.kill.notify_one();
        }
        self.conn_closed(conn);
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
        if self.failed.is_some() {
            self.send(conn, Out::Close);
            return;
        }
        let Ok(req) = ConnectRequest::from_bytes(frame) else {
            self.send(conn, Out::Close);
            return;
        };
        self.packets_received += 1;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.received += 1;
        }
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
            let now = self.clock_ms();
            if let Some(c) = self.conns.get_mut(&conn) {
                c.session = id;
                c.stats.established_ms = epoch_ms();
                // createSession is answered by FinalRequestProcessor like any request
                c.stats.last_op = "SESS";
                c.stats.last_cxid = 0;
                c.stats.last_zxid = self.zxid;
                c.stats.last_resp_ms = now;
            }
            self.append(Change {
                zxid: self.zxid,
                sessions: vec![SessionChange::Put(SavedSession {
                    id,
                    passwd: passwd.clone(),
                    timeout_ms: timeout,
                })],
                nodes: Vec::new(),
            });
            respond(self, timeout, id, passwd);
            return;
        }
        // re-attach: whoever holds the session is closed first, even if the password is wrong
        if let Some(old) = self.sessions.get(&req.session_id).and_then(|s| s.conn) {
            if old != conn {
                self.kill(old);
            }
        }
        match self.sessions.get_mut(&req.session_id) {
            Some(s) if s.passwd == req.passwd => {
                s.conn = Some(conn);
                let retimed = s.timeout_ms != timeout;
                s.timeout_ms = timeout;
                let (id, passwd) = (s.id, s.passwd.clone());
                self.touch(id);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = id;
                    c.stats.established_ms = epoch_ms();
                }
                if retimed {
                    self.append(Change {
                        zxid: self.zxid,
                        sessions: vec![SessionChange::Put(SavedSession {
                            id,
                            passwd: passwd.clone(),
                            timeout_ms: timeout,
                        })],
                        nodes: Vec::new(),
                    });
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
        self.log_txn(&txn, vec![SessionChange::Remove(sid)]);
        self.dispatch(txn.triggers);
        if let Some(c) = s.conn {
            if let Some(xid) = reply_xid {
                // closeSession: answered, then closed after what was queued before
                self.reply(c, xid, zxid, 0, &Body::None);
                self.send(c, Out::Close);
                if let Some(conn) = self.conns.get_mut(&c) {
                    conn.session = 0;
                }
            } else {
                // expiry: ZooKeeper closes the socket at once, whatever is queued for it
                self.kill(c);
            }
        }
        true
    }

    /// Expires sessions whose time is up (the session tracker's tick).
    pub fn expire_due(&mut self) {
        if self.failed.is_some() {
            return;
        }
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
        if self.failed.is_some() {
            return;
        }
        for path in self.tree.reap_candidates(epoch_ms()) {
            self.zxid += 1;
            let mut txn = Txn::default();
            if self.tree.delete_internal(&path, self.zxid, &mut txn) {
                self.log_txn(&txn, Vec::new());
                self.dispatch(txn.triggers);
            }
        }
        self.log_zxid();
    }

    /// Count of ephemeral nodes (mntr).
    pub fn ephemeral_count(&self) -> usize {
        self.tree
            .paths()
            .filter(|(_, n)| matches!(n.kind, Kind::Ephemeral(_)))
            .count()
    }
}
