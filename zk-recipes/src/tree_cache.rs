//! An in-memory mirror of a subtree ([`TreeCache`]), kept current by one persistent recursive
//! watch (ZooKeeper 3.6+), with a stream of its changes ([`TreeCacheEvent`]) in the manner of
//! Curator's `TreeCache`.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use std::time::Duration;
//! use zk_recipes::{TreeCache, TreeCacheEvent};
//!
//! # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
//! let cache = TreeCache::new(&client, "/app/config");
//! let mut events = cache.events();
//! cache.wait_initialized_timeout(Duration::from_secs(10)).await?;
//! if let Some(node) = cache.get("/app/config/db") {
//!     println!("db: {} bytes, version {}", node.data().len(), node.stat().version);
//! }
//! println!("services: {:?}", cache.children("/app/config/services"));
//! while let Some(event) = events.next().await {
//!     match event {
//!         TreeCacheEvent::NodeAdded { path, .. } => println!("+ {path}"),
//!         TreeCacheEvent::NodeUpdated { path, node } => {
//!             println!("~ {path} v{}", node.stat().version)
//!         }
//!         TreeCacheEvent::NodeRemoved { path, .. } => println!("- {path}"),
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! 1. Subscribe to the client's state transitions, then `addWatch(P, PERSISTENT_RECURSIVE)`.
//! 2. **Sync**: walk the subtree (`getData` and `getChildren` of every node, without watches)
//!    and replace the mirror with what was read; the difference to the old mirror is emitted
//!    as node events. The first sync is followed by [`TreeCacheEvent::Initialized`].
//! 3. A recursive watch event carries only a path and a type, no data: for each event the
//!    node is read again (`getData`) and the mirror updated from the read (a missing node is
//!    removed with everything under it). Events that arrive together are read once per path.
//!
//! Why the mirror converges: the watch is set before the walk starts, and every read is
//! answered after the change that triggered it (one session, requests in order), so the last
//! read of each path is later than the last change to it.
//!
//! **Reconnects.** ZooKeeper does not replay a persistent watch's events for the time a
//! client was disconnected (zk-core re-registers the watch, but the gap is lost). After every
//! reconnect (SUSPENDED then CONNECTED) the cache syncs again: what changed meanwhile comes
//! out as ordinary node events after [`TreeCacheEvent::ConnectionReconnected`].
//!
//! **Session loss.** The watch dies with the session. When the client has a new session
//! ([`zk_core::ClientBuilder::reconnect_after_expiry`], on by default) the cache adds the
//! watch again and syncs. While SUSPENDED or LOST the mirror keeps its last state, which
//! may be stale: [`TreeCache::is_synced`] says false until the next sync is done.
//!
//! **Stat.** A node's [`Stat`] is from its last read. A recursive watch reports no child
//! events, so a parent's `cversion`, `num_children` and `pzxid` are as of its last read
//! (its data fields and `mzxid` / `version` are current); ask [`TreeCache::children`].
//!
//! **Memory.** The mirror holds the subtree (data shared by reference with the events); each
//! event stream buffers at most [`EVENT_CAPACITY`] events and says
//! [`TreeCacheEvent::Lagged`] when a slow consumer missed some (the mirror itself is never
//! behind because of a slow consumer). The cache drains its watch as it goes; events that
//! arrive during a sync wait in zk-core's buffer until the walk is done.
//!
//! **End.** Dropping the [`TreeCache`] (or [`TreeCache::close`]) stops it and removes its
//! server-side watch (zk-core sends `removeWatches` when the watch stream is dropped); its
//! event streams end. So does a closed client, or a client that will not start a new session.
//! Nodes the session may not read (`NoAuth`) are left out of the mirror, and so is everything
//! under them (a walk cannot list their children; a watch event for a readable node below
//! one is not taken in either, so the mirror does not depend on which way a node was read).

use crate::plumbing::{
    child_path, deadline_after, parent_of, sleep_until_opt, terminal_keeper_error,
};
use futures_util::stream::{self, BoxStream, FuturesOrdered, StreamExt};
use futures_util::{FutureExt, Stream};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tracing::{debug, warn};
use zk_core::{
    AddWatchMode, Client, Error, EventType, PersistentWatcher, Result, Stat, State, Status,
};

/// How many events one [`TreeCacheEvents`] stream buffers for a consumer that does not keep
/// up; past it the oldest are dropped and the stream yields [`TreeCacheEvent::Lagged`].
pub const EVENT_CAPACITY: usize = 4096;

/// How many reads a sync keeps in flight at once.
const WALK_PARALLELISM: usize = 32;

/// How many watch events are read as one batch (each path once).
const BATCH: usize = 1024;

/// One mirrored node: its data and its [`Stat`] as of its last read. Cheap to clone (the
/// data is shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedNode {
    data: Arc<[u8]>,
    stat: Stat,
}

impl CachedNode {
    /// The node's data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The node's data, shared.
    pub fn data_arc(&self) -> Arc<[u8]> {
        self.data.clone()
    }

    /// The node's [`Stat`] as of its last read (see the module docs for its child fields).
    pub fn stat(&self) -> &Stat {
        &self.stat
    }

    /// What a change is judged by: the same node (`czxid`) with the same data version.
    fn key(&self) -> (i64, i64, i32) {
        (self.stat.czxid, self.stat.mzxid, self.stat.version)
    }
}

/// A change of a [`TreeCache`], or of its connection: the event types of Curator's
/// `TreeCacheEvent.Type`, plus [`Lagged`](Self::Lagged).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeCacheEvent {
    /// A node entered the mirror.
    NodeAdded {
        /// Its path.
        path: String,
        /// What was read.
        node: CachedNode,
    },
    /// A mirrored node's data changed (a new `mzxid` / version), or it was deleted and created
    /// again between two reads (a new `czxid`).
    NodeUpdated {
        /// Its path.
        path: String,
        /// What was read.
        node: CachedNode,
    },
    /// A node left the mirror (deleted on the server).
    NodeRemoved {
        /// Its path.
        path: String,
        /// Its last mirrored state.
        node: CachedNode,
    },
    /// The first sync is done: the mirror equals the server as of then. Once per cache.
    Initialized,
    /// The connection broke; the mirror keeps its last state.
    ConnectionSuspended,
    /// Connected again (same session or a new one); a sync follows and its differences come
    /// out as node events.
    ConnectionReconnected,
    /// The session was lost (expired or closed); the mirror keeps its last state. If the
    /// client starts a new session, [`ConnectionReconnected`](Self::ConnectionReconnected)
    /// follows.
    ConnectionLost,
    /// This stream fell more than [`EVENT_CAPACITY`] events behind and missed this many;
    /// [`TreeCache::snapshot`] has the current state.
    Lagged(u64),
}

/// Counters of a cache's work, for monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeCacheStats {
    /// Completed syncs (full walks of the subtree): the first one, then one per reconnect and
    /// per new session.
    pub syncs: u64,
    /// Watch events received.
    pub watch_events: u64,
    /// Nodes read because of watch events.
    pub reads: u64,
}

/// What the handle and the task share.
#[derive(Debug)]
struct Shared {
    root: String,
    mirror: std::sync::Mutex<Mirror>,
    /// `initialized` / `ended` for the waiters.
    status: watch::Sender<Lifecycle>,
}

#[derive(Debug, Clone, Default)]
struct Lifecycle {
    initialized: bool,
    /// Set when the task ended: why.
    ended: Option<Error>,
}

#[derive(Debug)]
struct Mirror {
    nodes: BTreeMap<String, CachedNode>,
    /// `None` once the task ended (every stream then ends).
    events: Option<broadcast::Sender<TreeCacheEvent>>,
    initialized: bool,
    synced: bool,
    stats: TreeCacheStats,
}

impl Mirror {
    fn emit(&self, ev: TreeCacheEvent) {
        if let Some(tx) = &self.events {
            // no subscriber: nobody to tell
            let _ = tx.send(ev);
        }
    }

    /// The mirror's paths under `path` (not `path` itself), in order.
    fn descendants(&self, path: &str) -> Vec<String> {
        let prefix = descendant_prefix(path);
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Applies one read of `path`: present (`Some`) or missing.
    fn apply(&mut self, path: &str, read: Option<CachedNode>) {
        match read {
            Some(node) => match self.nodes.get(path) {
                None => {
                    self.nodes.insert(path.to_owned(), node.clone());
                    self.emit(TreeCacheEvent::NodeAdded {
                        path: path.to_owned(),
                        node,
                    });
                }
                Some(old) if old.key() != node.key() => {
                    self.nodes.insert(path.to_owned(), node.clone());
                    self.emit(TreeCacheEvent::NodeUpdated {
                        path: path.to_owned(),
                        node,
                    });
                }
                // the same state (or only child fields moved): keep the fresher stat quietly
                Some(_) => {
                    self.nodes.insert(path.to_owned(), node);
                }
            },
            None => {
                // a node with children cannot be deleted: they are gone too
                let mut gone = self.descendants(path);
                gone.reverse();
                gone.push(path.to_owned());
                for p in gone {
                    if let Some(node) = self.nodes.remove(&p) {
                        self.emit(TreeCacheEvent::NodeRemoved { path: p, node });
                    }
                }
            }
        }
    }

    /// Replaces the mirror by a full walk's result; emits the difference.
    fn replace(&mut self, fresh: BTreeMap<String, CachedNode>) {
        let removed: Vec<String> = self
            .nodes
            .keys()
            .rev()
            .filter(|k| !fresh.contains_key(*k))
            .cloned()
            .collect();
        for p in removed {
            if let Some(node) = self.nodes.remove(&p) {
                self.emit(TreeCacheEvent::NodeRemoved { path: p, node });
            }
        }
        for (p, node) in fresh {
            self.apply(&p, Some(node));
        }
    }
}

/// `path/`, or `/` for the root: what every descendant's path starts with.
fn descendant_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    }
}

/// An in-memory mirror of the subtree at a path: every node's data and [`Stat`], kept current
/// by a persistent recursive watch, re-synced after every reconnect and every new session.
/// See the [module docs](self) for how, and `docs/recipes.md` for what it promises.
///
/// Reads ([`get`](Self::get), [`children`](Self::children), [`snapshot`](Self::snapshot))
/// are local and never wait. Created with [`new`](Self::new) (it starts at once);
/// dropping it stops it and removes its watch.
#[derive(Debug)]
pub struct TreeCache {
    shared: Arc<Shared>,
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TreeCache {
    /// Starts mirroring the subtree at `path` (which need not exist yet: its creation is
    /// seen). Nothing is written to the server.
    ///
    /// # Panics
    /// Outside a Tokio runtime (the cache runs in a spawned task).
    pub fn new(client: &Client, path: &str) -> TreeCache {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let shared = Arc::new(Shared {
            root: path.to_owned(),
            mirror: std::sync::Mutex::new(Mirror {
                nodes: BTreeMap::new(),
                events: Some(events),
                initialized: false,
                synced: false,
                stats: TreeCacheStats::default(),
            }),
            status: watch::channel(Lifecycle::default()).0,
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(client.clone(), shared.clone(), stop_rx));
        TreeCache {
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The mirrored path.
    pub fn path(&self) -> &str {
        &self.shared.root
    }

    fn mirror(&self) -> std::sync::MutexGuard<'_, Mirror> {
        lock(&self.shared.mirror)
    }

    /// The mirrored node at `path` (its data and [`Stat`]), `None` if it is not in the mirror.
    pub fn get(&self, path: &str) -> Option<CachedNode> {
        self.mirror().nodes.get(path).cloned()
    }

    /// The names of the mirrored children of `path`, sorted; `None` if `path` is not in the
    /// mirror.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        let m = self.mirror();
        m.nodes.get(path)?;
        let prefix = descendant_prefix(path);
        Some(
            m.nodes
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(k, _)| {
                    let name = &k[prefix.len()..];
                    (!name.contains('/')).then(|| name.to_owned())
                })
                .collect(),
        )
    }

    /// The whole mirror: path → node, in path order.
    pub fn snapshot(&self) -> BTreeMap<String, CachedNode> {
        self.mirror().nodes.clone()
    }

    /// How many nodes are mirrored.
    pub fn len(&self) -> usize {
        self.mirror().nodes.len()
    }

    /// Whether the mirror is empty (the path does not exist, or the first sync is not done).
    pub fn is_empty(&self) -> bool {
        self.mirror().nodes.is_empty()
    }

    /// Whether the first sync is done.
    pub fn is_initialized(&self) -> bool {
        self.mirror().initialized
    }

    /// Whether the mirror is in step with the server: connected, and synced since the last
    /// reconnect (watch events may still be in flight).
    pub fn is_synced(&self) -> bool {
        self.mirror().synced
    }

    /// The cache's counters.
    pub fn stats(&self) -> TreeCacheStats {
        self.mirror().stats
    }

    /// A stream of changes. It starts with the current mirror, as one
    /// [`NodeAdded`](TreeCacheEvent::NodeAdded) per node (in path order) and
    /// [`Initialized`](TreeCacheEvent::Initialized) if the first sync is done, then goes on
    /// with every change after that, none skipped (unless it lags, see
    /// [`TreeCacheEvent::Lagged`]). So a subscriber sees the same state as the mirror
    /// whenever it subscribes. It ends when the cache stops. Any number of streams may be
    /// open; each buffers at most [`EVENT_CAPACITY`] events.
    ///
    /// # Cancel safety
    /// `next()` is cancel-safe: dropping it loses no event.
    pub fn events(&self) -> TreeCacheEvents {
        let m = self.mirror();
        let mut replay: Vec<TreeCacheEvent> = m
            .nodes
            .iter()
            .map(|(p, n)| TreeCacheEvent::NodeAdded {
                path: p.clone(),
                node: n.clone(),
            })
            .collect();
        if m.initialized {
            replay.push(TreeCacheEvent::Initialized);
        }
        let rx = m.events.as_ref().map(|tx| tx.subscribe());
        drop(m);
        let live = stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(n)) => TreeCacheEvent::Lagged(n),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((ev, Some(rx)))
        });
        TreeCacheEvents {
            inner: stream::iter(replay).chain(live).boxed(),
        }
    }

    /// Waits until the first sync is done.
    ///
    /// # Errors
    /// The error that stopped the cache before it was initialized: [`Error::Closed`] (the
    /// client was closed), [`Error::SessionExpired`] (it will not start a new session),
    /// [`Error::AuthFailed`].
    ///
    /// # Cancel safety
    /// Cancel-safe: it only waits.
    pub async fn wait_initialized(&self) -> Result<()> {
        self.wait_initialized_until_opt(None)
            .await
            .map(|r| r.expect("no deadline"))
    }

    /// [`wait_initialized`](Self::wait_initialized), `Ok(None)` once `timeout` passes.
    ///
    /// # Errors
    /// As [`wait_initialized`](Self::wait_initialized).
    ///
    /// # Cancel safety
    /// Cancel-safe: it only waits.
    pub async fn wait_initialized_timeout(&self, timeout: Duration) -> Result<Option<()>> {
        self.wait_initialized_until_opt(Some(deadline_after(timeout)))
            .await
    }

    /// [`wait_initialized`](Self::wait_initialized), `Ok(None)` once `deadline` passes.
    ///
    /// # Errors
    /// As [`wait_initialized`](Self::wait_initialized).
    ///
    /// # Cancel safety
    /// Cancel-safe: it only waits.
    pub async fn wait_initialized_until(&self, deadline: Instant) -> Result<Option<()>> {
        self.wait_initialized_until_opt(Some(deadline)).await
    }

    async fn wait_initialized_until_opt(&self, deadline: Option<Instant>) -> Result<Option<()>> {
        let mut rx = self.shared.status.subscribe();
        let wait = rx.wait_for(|l| l.initialized || l.ended.is_some());
        let got = tokio::select! {
            r = wait => r.map(|l| l.clone()).ok(),
            _ = sleep_until_opt(deadline) => return Ok(None),
        };
        match got {
            Some(l) if l.initialized => Ok(Some(())),
            Some(l) => Err(l.ended.unwrap_or(Error::Closed)),
            None => Err(Error::Closed),
        }
    }

    /// Stops the cache and waits until its task is gone: its watch stream is dropped, so
    /// zk-core removes the server-side watch (a `removeWatches` sent right after). The mirror
    /// keeps its last state; event streams end.
    ///
    /// # Cancel safety
    /// Cancel-safe: the stop is sent at once; dropping the future only skips the wait.
    pub async fn close(mut self) {
        drop(self.stop.take());
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        // the task sees the stop channel closed and ends, dropping its watch
        drop(self.stop.take());
    }
}

fn lock(m: &std::sync::Mutex<Mirror>) -> std::sync::MutexGuard<'_, Mirror> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The stream of a [`TreeCache`]'s changes: see [`TreeCache::events`].
#[must_use = "streams do nothing unless polled"]
pub struct TreeCacheEvents {
    inner: BoxStream<'static, TreeCacheEvent>,
}

impl std::fmt::Debug for TreeCacheEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeCacheEvents").finish_non_exhaustive()
    }
}

impl Stream for TreeCacheEvents {
    type Item = TreeCacheEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

// ---------------------------------------------------------------------------- the task

/// The task: runs the driver until stopped (the handle dropped or closed).
async fn run(client: Client, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut driver = Driver {
        client,
        shared: shared.clone(),
        states: None,
        watch: None,
        need_sync: true,
        disconnected: false,
        unreadable: HashSet::new(),
    };
    let ended = tokio::select! {
        // the sender is dropped by the handle: stop
        _ = stop.changed() => None,
        e = driver.drive() => Some(e),
    };
    // the watch stream is dropped with the driver: zk-core removes the server-side watch
    drop(driver);
    {
        let mut m = lock(&shared.mirror);
        m.synced = false;
        m.events = None;
    }
    if let Some(e) = &ended {
        debug!(path = %shared.root, error = %e, "tree cache ended");
    }
    shared.status.send_modify(|l| {
        l.ended = Some(ended.unwrap_or(Error::Closed));
    });
}

/// What to do after a failed request.
enum Next {
    /// Wait for the connection (or a short pause), then go on.
    Retry,
    /// Stop with this error.
    End(Error),
}

struct Driver {
    client: Client,
    shared: Arc<Shared>,
    states: Option<zk_core::StateStream>,
    /// The recursive watch and the session it was added in.
    watch: Option<(PersistentWatcher, i64)>,
    need_sync: bool,
    /// A SUSPENDED or LOST was reported and no CONNECTED since.
    disconnected: bool,
    /// The nodes the session may not read (`NoAuth`), as of their last read: what is under
    /// them is left out of the mirror (a walk cannot list it), whatever way it is read.
    unreadable: HashSet<String>,
}

impl Driver {
    fn mirror(&self) -> std::sync::MutexGuard<'_, Mirror> {
        lock(&self.shared.mirror)
    }

    /// Runs until the cache cannot go on; returns why.
    async fn drive(&mut self) -> Error {
        // subscribed before the first request: no transition after it is missed
        self.states = Some(self.client.state_stream());
        loop {
            if let Err(e) = self.step().await {
                match self.classify(e) {
                    Next::End(e) => return e,
                    Next::Retry => {
                        if let Some(e) = self.wait_for_connection().await {
                            return e;
                        }
                    }
                }
            }
        }
    }

    /// One round: (re-)arm the watch, sync if needed, then handle what comes next (a batch of
    /// watch events or a state transition).
    async fn step(&mut self) -> Result<()> {
        let sid = self.client.session_id();
        if self.watch.as_ref().is_some_and(|(_, s)| *s != sid) {
            // a watch of an older session: dead on the server
            self.watch = None;
        }
        if self.watch.is_none() {
            let w = self
                .client
                .add_watch(&self.shared.root, AddWatchMode::PersistentRecursive)
                .await?;
            self.watch = Some((w, sid));
            self.need_sync = true;
        }
        if self.need_sync {
            // transitions already queued (the CONNECTED of a new session whose watch error
            // came first) are taken now: this walk covers them, no second walk for them
            loop {
                let states = self.states.as_mut().expect("subscribed");
                match states.next().now_or_never() {
                    Some(Some(s)) => self.on_state(&s)?,
                    _ => break,
                }
            }
            let (fresh, unreadable) = walk(&self.client, &self.shared.root).await?;
            self.unreadable = unreadable;
            self.need_sync = false;
            let first = {
                let mut m = self.mirror();
                m.replace(fresh);
                m.stats.syncs += 1;
                m.synced = self.client.state() == State::Connected && !self.disconnected;
                let first = !m.initialized;
                if first {
                    m.initialized = true;
                    m.emit(TreeCacheEvent::Initialized);
                }
                first
            };
            if first {
                self.shared.status.send_modify(|l| l.initialized = true);
            }
            debug!(path = %self.shared.root, "tree cache synced");
        }
        enum Got {
            Event(Option<Result<zk_core::WatchedEvent>>),
            State(Option<Status>),
        }
        let got = {
            let (w, _) = self.watch.as_mut().expect("armed above");
            let states = self.states.as_mut().expect("subscribed");
            tokio::select! {
                biased;
                s = states.next() => Got::State(s),
                e = w.next() => Got::Event(e),
            }
        };
        match got {
            Got::State(Some(s)) => self.on_state(&s),
            Got::State(None) => {
                // the session task ended: the next request says why
                self.client.exists("/").await?;
                Ok(())
            }
            Got::Event(Some(Ok(ev))) => self.on_events(ev).await,
            Got::Event(Some(Err(e))) => {
                self.watch = None;
                match e {
                    // re-added in the new session
                    Error::SessionExpired => Ok(()),
                    e => Err(e),
                }
            }
            Got::Event(None) => {
                self.watch = None;
                Ok(())
            }
        }
    }

    /// A state transition: report it; a CONNECTED after a disconnect means a sync.
    fn on_state(&mut self, s: &Status) -> Result<()> {
        match s.state {
            State::Suspended => {
                self.disconnected = true;
                let mut m = self.mirror();
                m.synced = false;
                m.emit(TreeCacheEvent::ConnectionSuspended);
            }
            State::Lost => {
                self.disconnected = true;
                {
                    let mut m = self.mirror();
                    m.synced = false;
                    m.emit(TreeCacheEvent::ConnectionLost);
                }
                if let Some(e) = terminal_keeper_error(s) {
                    return Err(e);
                }
            }
            State::Connected => {
                // events in the gap were lost: sync again (and re-add the watch if the
                // session is new; `step` sees that by the session id)
                self.need_sync = true;
                if self.disconnected {
                    self.disconnected = false;
                    self.mirror().emit(TreeCacheEvent::ConnectionReconnected);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A watch event and whatever else is ready at once: read each path once, apply.
    async fn on_events(&mut self, first: zk_core::WatchedEvent) -> Result<()> {
        let mut paths = vec![first.path.clone()];
        let mut seen: HashSet<String> = HashSet::from([first.path.clone()]);
        let mut removed = first.event_type == EventType::PersistentWatchRemoved;
        let mut ended = None;
        let (w, _) = self.watch.as_mut().expect("armed");
        while paths.len() < BATCH && !removed {
            match w.next().now_or_never() {
                Some(Some(Ok(ev))) => {
                    removed = ev.event_type == EventType::PersistentWatchRemoved;
                    if seen.insert(ev.path.clone()) {
                        paths.push(ev.path);
                    }
                }
                Some(Some(Err(e))) => {
                    ended = Some(e);
                    break;
                }
                Some(None) => {
                    removed = true;
                    break;
                }
                None => break,
            }
        }
        let n = paths.len() as u64;
        self.mirror().stats.watch_events += n;
        if removed {
            // someone removed our watch (removeWatches): add it again and sync
            warn!(path = %self.shared.root, "tree cache watch removed; adding it again");
            self.watch = None;
        }
        if let Some(e) = ended {
            self.watch = None;
            if !matches!(e, Error::SessionExpired) {
                return Err(e);
            }
        }
        if self.watch.is_none() {
            // a sync follows anyway
            return Ok(());
        }
        // read with up to WALK_PARALLELISM in flight, applied in event order
        let client = &self.client;
        let mut pending = paths.into_iter();
        let mut reads = FuturesOrdered::new();
        loop {
            while reads.len() < WALK_PARALLELISM {
                let Some(p) = pending.next() else { break };
                reads.push_back(async move {
                    let r = read_found(client, &p).await;
                    (p, r)
                });
            }
            let Some((p, read)) = reads.next().await else {
                break;
            };
            let read = match read {
                Ok(r) => r,
                Err(e) => {
                    // the rest is covered by the sync after the reconnect
                    self.need_sync = true;
                    return Err(e);
                }
            };
            let read = match read {
                Found::Node(n) => {
                    self.unreadable.remove(&p);
                    (!under(&self.unreadable, &self.shared.root, &p)).then_some(n)
                }
                Found::Missing => {
                    self.unreadable.remove(&p);
                    None
                }
                Found::Unreadable => {
                    self.unreadable.insert(p.clone());
                    None
                }
            };
            let mut m = lock(&self.shared.mirror);
            m.stats.reads += 1;
            m.apply(&p, read);
        }
        Ok(())
    }

    fn classify(&mut self, e: Error) -> Next {
        match e {
            Error::Closed | Error::AuthFailed => Next::End(e),
            Error::SessionExpired => {
                self.watch = None;
                if self.client.is_closed() {
                    Next::End(e)
                } else {
                    Next::Retry
                }
            }
            e if e.is_retryable() || matches!(e, Error::Timeout { .. }) => {
                self.need_sync = true;
                Next::Retry
            }
            e => {
                warn!(path = %self.shared.root, error = %e, "tree cache stopped");
                Next::End(e)
            }
        }
    }

    /// After a transient failure: waits for a CONNECTED transition (reporting every
    /// transition on the way) or a short pause (a request timeout while connected), so
    /// nothing spins. `Some(e)` when the client will not go on.
    async fn wait_for_connection(&mut self) -> Option<Error> {
        let pause = Instant::now() + Duration::from_millis(200);
        loop {
            if self.client.state() == State::Connected && Instant::now() >= pause {
                return None;
            }
            let states = self.states.as_mut().expect("subscribed");
            let s = tokio::select! {
                s = states.next() => s,
                _ = tokio::time::sleep_until(pause) => continue,
            };
            match s {
                Some(s) => {
                    let connected = s.state == State::Connected;
                    if let Err(e) = self.on_state(&s) {
                        return Some(e);
                    }
                    if connected {
                        return None;
                    }
                }
                None => {
                    // the session task ended: the next request says why
                    return self.client.exists("/").await.err();
                }
            }
        }
    }
}

/// What one read of a node found.
enum Found {
    Node(CachedNode),
    Missing,
    /// The session may not read it (`NoAuth`).
    Unreadable,
}

/// Reads one node.
async fn read_found(client: &Client, path: &str) -> Result<Found> {
    match client.get_data(path).await {
        Ok((data, stat)) => Ok(Found::Node(CachedNode {
            data: data.into(),
            stat,
        })),
        Err(Error::NoNode) => Ok(Found::Missing),
        Err(Error::NoAuth) => {
            debug!(path, "not readable; left out of the tree cache");
            Ok(Found::Unreadable)
        }
        Err(e) => Err(e),
    }
}

/// Whether `path` is below one of the `unreadable` nodes of the subtree at `root`.
fn under(unreadable: &HashSet<String>, root: &str, path: &str) -> bool {
    let mut p = path;
    while p != root && p != "/" && p.len() > root.len() {
        p = parent_of(p);
        if unreadable.contains(p) {
            return true;
        }
    }
    false
}

/// Reads the whole subtree at `root`: every node's data and stat, level by level, with up to
/// [`WALK_PARALLELISM`] reads in flight; and the nodes it may not read (nothing under them
/// can be listed).
async fn walk(
    client: &Client,
    root: &str,
) -> Result<(BTreeMap<String, CachedNode>, HashSet<String>)> {
    let mut out = BTreeMap::new();
    let mut unreadable = HashSet::new();
    let mut level: VecDeque<String> = VecDeque::from([root.to_owned()]);
    while !level.is_empty() {
        let mut next = VecDeque::new();
        let mut reads = FuturesOrdered::new();
        let mut pending = level.into_iter();
        loop {
            while reads.len() < WALK_PARALLELISM {
                let Some(p) = pending.next() else { break };
                reads.push_back(async move {
                    let (node, children) =
                        tokio::join!(read_found(client, &p), client.get_children(&p));
                    (p, node, children)
                });
            }
            let Some((p, node, children)) = reads.next().await else {
                break;
            };
            let node = match node? {
                Found::Node(n) => n,
                Found::Missing => continue,
                Found::Unreadable => {
                    unreadable.insert(p);
                    continue;
                }
            };
            let children = match children {
                Ok(c) => c,
                Err(Error::NoNode) | Err(Error::NoAuth) => Vec::new(),
                Err(e) => return Err(e),
            };
            next.extend(children.iter().map(|c| child_path(&p, c)));
            out.insert(p, node);
        }
        level = next;
    }
    Ok((out, unreadable))
}
