//! A single-node server speaking Apache ZooKeeper's wire protocol, for development and tests:
//! in-process on tokio (`Server::start().await`) or as the `zk-server` binary, starting in
//! milliseconds, without Java. Production stays on real ZooKeeper; this server behaves like
//! ZooKeeper 3.8 wherever a client can tell, as far as `docs/zk-server.md` says, and is held
//! to it by a differential suite that runs the same cases against both.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use std::time::Duration;
//! let srv = zk_server::Server::builder()
//!     .tick_time(Duration::from_millis(500))
//!     .start()
//!     .await?;
//! let hosts = srv.connect_string(); // "127.0.0.1:PORT"
//! // ... connect a client to `hosts` ...
//! for s in srv.sessions() {
//!     srv.expire_session(s.id); // as if the client had gone silent
//! }
//! srv.restart().await?; // same port, same data and sessions
//! srv.stop().await;
//! # Ok(()) }
//! ```
//!
//! # Behavior
//! - **Ordering.** Every request is handled whole, in arrival order across all connections,
//!   and its reply and every watch event it causes are queued before the next request is
//!   looked at: a client sees a change's event before the reply of a read that observes it,
//!   and replies in request order.
//! - **Sessions.** The negotiated timeout is clamped to `[min, max]` (2 and 20 ticks by
//!   default). A session expires when nothing arrives for its timeout, rounded up to the next
//!   tick; its ephemerals are deleted (watchers notified) and its connection closed. A client
//!   may re-attach on a new connection with its id and password; a wrong password, or an
//!   expired or closed session, gets ZooKeeper's "expired" answer (timeout 0).
//! - **Watches** are one-shot (data, exist, child) or persistent / persistent-recursive
//!   (addWatch), belong to the connection that set them and are re-registered by the client
//!   with setWatches after a reconnect, firing at once for what changed meanwhile.
//! - **Limits.** A frame over 1,048,575 bytes (`jute.maxbuffer`) closes the connection; the
//!   session survives. A body that does not decode gets MARSHALLINGERROR, the connection
//!   stays.
//! - **Connections** are read while their replies wait to be written, so a client that reads
//!   slowly keeps its session with pings (what waits for it is not bounded, as on
//!   ZooKeeper); session expiry or a re-attach elsewhere closes the old socket at once.
//! - **Restart** keeps the tree and the sessions (in memory, or through the data dir when one
//!   is set); each session gets a full timeout to come back.
//! - **Persistence** is optional: [`ServerBuilder::data_dir`] keeps a snapshot and a
//!   transaction log there (fsynced per change unless [`ServerBuilder::fsync`] is off), so
//!   data, stats, ACLs, sequence counters, sessions and their ephemerals survive a restart
//!   of the process. Without one nothing is written.
#![deny(missing_docs)]

mod conn;
mod core;
mod fourlw;
mod persist;
mod tree;
mod watch;

use crate::core::Core;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The largest frame a client may send (`jute.maxbuffer`, 0xfffff).
pub const MAX_FRAME_LEN: usize = 0xfffff;

/// Server settings; see [`ServerBuilder`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Port to listen on, 0 for a free one.
    pub port: u16,
    /// `tickTime`.
    pub tick_time: Duration,
    /// `minSessionTimeout`; `None` = 2 ticks.
    pub min_session_timeout: Option<Duration>,
    /// `maxSessionTimeout`; `None` = 20 ticks.
    pub max_session_timeout: Option<Duration>,
    /// Largest frame accepted from a client.
    pub max_frame_len: usize,
    /// How often emptied containers and expired TTL nodes are deleted.
    pub container_check_interval: Duration,
    /// `extendedTypesEnabled` (TTL nodes).
    pub extended_types: bool,
    /// `dataDir`: where the snapshot and the transaction log live; `None` (the default) keeps
    /// everything in memory and writes nothing. See [`ServerBuilder::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// Whether each logged change is fsynced before its reply is queued (`forceSync`, default
    /// true); only meaningful with a data dir.
    pub fsync: bool,
    /// Changes logged between snapshots (`snapCount`, default 100,000).
    pub snapshot_every: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 0,
            tick_time: Duration::from_millis(2000),
            min_session_timeout: None,
            max_session_timeout: None,
            max_frame_len: MAX_FRAME_LEN,
            container_check_interval: Duration::from_secs(1),
            extended_types: true,
            data_dir: None,
            fsync: true,
            snapshot_every: 100_000,
        }
    }
}

impl Options {
    /// The effective minimum session timeout.
    pub fn min_session_timeout(&self) -> Duration {
        self.min_session_timeout.unwrap_or(self.tick_time * 2)
    }

    /// The effective maximum session timeout.
    pub fn max_session_timeout(&self) -> Duration {
        self.max_session_timeout.unwrap_or(self.tick_time * 20)
    }
}

/// Builds a [`Server`]: `Server::builder().port(2181).start().await`.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ServerBuilder {
    opts: Options,
}

impl ServerBuilder {
    /// Listen on this port (default: a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.opts.port = port;
        self
    }

    /// `tickTime` (default 2 s): the unit of session expiry and of the timeout bounds.
    pub fn tick_time(mut self, t: Duration) -> Self {
        self.opts.tick_time = t;
        self
    }

    /// Smallest negotiated session timeout (default 2 ticks).
    pub fn min_session_timeout(mut self, t: Duration) -> Self {
        self.opts.min_session_timeout = Some(t);
        self
    }

    /// Largest negotiated session timeout (default 20 ticks).
    pub fn max_session_timeout(mut self, t: Duration) -> Self {
        self.opts.max_session_timeout = Some(t);
        self
    }

    /// How often emptied containers and expired TTL nodes are deleted (default 1 s, what the
    /// project's ZooKeeper test servers use; ZooKeeper's own default is 60 s).
    pub fn container_check_interval(mut self, t: Duration) -> Self {
        self.opts.container_check_interval = t;
        self
    }

    /// Whether TTL nodes may be created (`extendedTypesEnabled`, default true here).
    pub fn extended_types(mut self, on: bool) -> Self {
        self.opts.extended_types = on;
        self
    }

    /// Keep the tree and the sessions in this directory (created if missing), so that they
    /// survive [`Server::restart`], a new `Server` on the same directory and a process exit:
    /// a snapshot plus an append-only log of every committed change, each record with a length
    /// and a CRC-32. On start the snapshot is loaded and the log replayed up to its last whole
    /// record (a torn tail is dropped with a warning); sessions come back with their ids,
    /// passwords and timeouts, each with a full timeout to re-attach before it expires and its
    /// ephemerals go. The format is in `docs/zk-server.md`.
    ///
    /// One server per directory: the dir is locked (`DIR/lock`, an OS file lock) from start
    /// until the `Server` is dropped or its process ends; another server on it fails to start
    /// with `ResourceBusy`.
    ///
    /// Without it (the default) nothing is written anywhere.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.opts.data_dir = Some(dir.into());
        self
    }

    /// With a data dir: fsync each change before its reply is queued (default true). `false`
    /// still writes every change before replying, so a killed process loses nothing, but a
    /// machine crash may lose the last changes.
    pub fn fsync(mut self, on: bool) -> Self {
        self.opts.fsync = on;
        self
    }

    /// With a data dir: how many changes are logged before a new snapshot replaces the log
    /// (ZooKeeper's `snapCount`; default 100,000). Every start also writes a snapshot.
    pub fn snapshot_every(mut self, changes: u64) -> Self {
        self.opts.snapshot_every = changes.max(1);
        self
    }

    /// Loads the data dir if one is set, binds 127.0.0.1 and starts serving on the current
    /// tokio runtime.
    ///
    /// # Errors
    /// The bind's error (e.g. the port is taken); with a data dir, its I/O errors, or
    /// `InvalidData` naming the file for a corrupt snapshot.
    pub async fn start(self) -> io::Result<Server> {
        let core = Arc::new(Mutex::new(Core::open(self.opts.clone())?));
        let (running, addr) = Running::start(&core, self.opts.port).await?;
        core.lock().expect("core lock").opts.port = addr.port();
        Ok(Server {
            core,
            addr,
            running: tokio::sync::Mutex::new(Some(running)),
        })
    }
}

/// A live session, as [`Server::sessions`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session id.
    pub id: i64,
    /// The negotiated timeout.
    pub timeout: Duration,
    /// Whether a connection is attached.
    pub connected: bool,
    /// The session's ephemeral nodes.
    pub ephemerals: Vec<String>,
}

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct Server {
    core: Arc<Mutex<Core>>,
    addr: SocketAddr,
    running: tokio::sync::Mutex<Option<Running>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("zxid", &self.zxid)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// The tasks of a started server: the accept loop (which owns the connections' tasks) and the
/// session / container timers.
#[derive(Debug)]
struct Running {
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    async fn start(core: &Arc<Mutex<Core>>, port: u16) -> io::Result<(Running, SocketAddr)> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (tick, reap) = {
            let c = core.lock().expect("core lock");
            (c.opts.tick_time, c.opts.container_check_interval)
        };
        let accept = {
            let core = core.clone();
            tokio::spawn(async move {
                let mut conns = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        a = listener.accept() => match a {
                            Ok((stream, peer)) => {
                                conns.spawn(conn::serve(core.clone(), stream, peer));
                            }
                            Err(e) => tracing::warn!(error = %e, "accept failed"),
                        },
                        Some(_) = conns.join_next() => {}
                    }
                }
            })
        };
        let expirer = {
            let core = core.clone();
            tokio::spawn(async move {
                loop {
                    // wake at the next tick boundary, as ZooKeeper's ExpiryQueue buckets do
                    let wait = {
                        let c = core.lock().expect("core lock");
                        let t = tick.as_millis().max(1) as i64;
                        let now = c.clock_ms();
                        Duration::from_millis(((now / t + 1) * t - now) as u64)
                    };
                    tokio::time::sleep(wait).await;
                    core.lock().expect("core lock").expire_due();
                }
            })
        };
        let reaper = {
            let core = core.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(reap);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    core.lock().expect("core lock").reap();
                }
            })
        };
        Ok((
            Running {
                tasks: vec![accept, expirer, reaper],
            },
            addr,
        ))
    }

    async fn stop(self, core: &Mutex<Core>) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        // the connections' tasks died with the accept loop's JoinSet: forget them
        let mut c = core.lock().expect("core lock");
        let ids: Vec<_> = c.conns.keys().copied().collect();
        for id in ids {
            c.conn_closed(id);
        }
    }
}

impl Server {
    /// Starts a server on 127.0.0.1, on a free port, with the default [`Options`].
    ///
    /// # Errors
    /// The bind's error.
    pub async fn start() -> io::Result<Server> {
        Server::builder().start().await
    }

    /// A builder for other settings.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// `127.0.0.1:PORT`, for a client.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port served.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops serving: the listener and every connection are closed. Data and sessions stay,
    /// for [`restart`](Self::restart); sessions do not expire while stopped.
    pub async fn stop(&self) {
        if let Some(r) = self.running.lock().await.take() {
            r.stop(&self.core).await;
        }
    }

    /// Stops (if running) and serves again on the same port, with the same data and sessions;
    /// every session gets a full timeout to re-attach. With a data dir the state is dropped
    /// and loaded again from the dir, as a new process would.
    ///
    /// # Errors
    /// The bind's error; with a data dir, loading it (see [`ServerBuilder::start`]).
    pub async fn restart(&self) -> io::Result<()> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.take() {
            r.stop(&self.core).await;
        }
        let reload = {
            let mut c = self.core.lock().expect("core lock");
            if c.opts.data_dir.is_some() {
                c.close_journal();
                Some(c.opts.clone())
            } else {
                c.touch_all();
                None
            }
        };
        if let Some(opts) = reload {
            let fresh = Core::open(opts)?;
            *self.core.lock().expect("core lock") = fresh;
        }
        let (r, _) = Running::start(&self.core, self.addr.port()).await?;
        *running = Some(r);
        Ok(())
    }

    /// Expires a session now, as if its client had gone silent: its ephemerals are deleted,
    /// watchers notified, its connection closed. False if there is no such session.
    pub fn expire_session(&self, id: i64) -> bool {
        self.core.lock().expect("core lock").end_session(id, None)
    }

    /// The live sessions.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let c = self.core.lock().expect("core lock");
        let mut v: Vec<SessionInfo> = c
            .sessions
            .values()
            .map(|s| SessionInfo {
                id: s.id,
                timeout: Duration::from_millis(s.timeout_ms as u64),
                connected: s.conn.is_some(),
                ephemerals: c
                    .tree
                    .ephemerals
                    .get(&s.id)
                    .map(|e| e.iter().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// Number of watches registered (one per path, connection and table).
    pub fn watch_count(&self) -> usize {
        let c = self.core.lock().expect("core lock");
        c.data_w.len() + c.child_w.len()
    }

    /// Why the data dir could not be written, if it could not: from that moment every
    /// connection was closed (the change being logged unacknowledged) and none is accepted
    /// until [`restart`](Self::restart) loads the dir again. `None` without a data dir.
    pub fn data_dir_failure(&self) -> Option<String> {
        self.core.lock().expect("core lock").failed.clone()
    }

    /// Closes every client connection (sessions stay), as a network blip would.
    pub fn drop_connections(&self) {
        let mut c = self.core.lock().expect("core lock");
        for conn in c.conns.keys().copied().collect::<Vec<_>>() {
            c.kill(conn);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // the data dir's log and lock go now, not when the last aborted task lets go of the
        // core (a stopped server's connections are forgotten already; see `Running::stop`)
        if let Ok(mut c) = self.core.lock() {
            c.close_journal();
        }
        if let Ok(mut r) = self.running.try_lock() {
            if let Some(r) = r.take() {
                for t in r.tasks {
                    t.abort();
                }
            }
        }
    }
}
