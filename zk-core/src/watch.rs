//! Watches: the registry the session task keeps (which paths are watched, by whom, how) and the
//! futures / streams users hold.
//!
//! The registry is only touched by the session task, in the order frames arrive, which is what
//! gives ZooKeeper's ordering guarantee: a watch event is delivered before the reply to any
//! request that was answered after the change.

use crate::error::{Error, Result};
use crate::proto::{code, AddWatchMode, Chroot, EventType, SetWatches, WatcherType};
use bytes::BytesMut;
use futures_util::Stream;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};

/// A node event delivered to a watcher.
///
/// `#[non_exhaustive]`: newer servers may tell more about an event (say, the zxid of the
/// change), which would become a new field; build one with [`WatchedEvent::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The node it happened to (relative to the client's chroot).
    pub path: String,
}

impl WatchedEvent {
    /// An event of this type on this path (for tests and fakes: the client makes the real ones).
    pub fn new(event_type: EventType, path: impl Into<String>) -> Self {
        WatchedEvent {
            event_type,
            path: path.into(),
        }
    }
}

/// A one-shot watch: a future resolving with the first event on the watched node, or with an
/// error if the session ends first ([`Error::SessionExpired`], [`Error::Closed`],
/// [`Error::AuthFailed`]).
///
/// One-shot watches survive reconnects to the same session: they are re-registered with the
/// last zxid seen, so a change made while the client was disconnected still fires them.
/// Dropping the watcher stops delivery (the server-side watch is left to fire into nothing).
/// The client forgets dropped watchers as its registry grows (an amortized sweep once the
/// registrations since the last sweep outnumber the watchers it kept, at least 1024 apart), so
/// a loop that reads with a watch and drops it holds a bounded number of them.
#[derive(Debug)]
#[must_use = "a watch does nothing unless awaited"]
pub struct OneshotWatcher {
    rx: oneshot::Receiver<Result<WatchedEvent>>,
}

impl Future for OneshotWatcher {
    type Output = Result<WatchedEvent>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

/// A persistent (or persistent recursive) watch: a stream of every event on the path (or its
/// subtree). Re-registered after every reconnect on the same session. The stream yields
/// `Err(..)` once and ends when the session ends; after
/// [`Client::remove_watches`](crate::Client::remove_watches) with [`WatcherType::Any`] on its
/// path (or, on ZooKeeper 3.9+, with its own kind, [`WatcherType::Persistent`] or
/// [`WatcherType::PersistentRecursive`]) it yields a `PersistentWatchRemoved` event and ends
/// (`None`).
///
/// One-shot watches and other persistent watches of the same client on the same path never
/// break it. A 3.9 server keeps them side by side
/// ([`ClientBuilder::server_version`](crate::ClientBuilder::server_version)); a server before
/// 3.9 (the default assumption) keeps only one watch per session and path
/// and lets the last request set its kind (ZOOKEEPER-4466): a one-shot read on a path that
/// has a persistent or recursive watch is sent without a server-side watch and completed by
/// the client from this watch's events (a children one-shot under a recursive watch from the
/// creation or deletion of a direct child); a persistent watch added next to a recursive one
/// on the same path is registered as the recursive one on the server, and gets its
/// `NodeChildrenChanged` events derived the same way.
///
/// **Dropping** the stream stops delivery to it at once, and the client then removes the
/// server-side watch (a `removeWatches(Any)` it sends itself; on 3.9, a `removeWatches` of this
/// stream's kind alone) unless something of this client on that path still needs it: another
/// stream, a one-shot watch (which the client may be completing from this watch's events), or
/// a request not answered yet (on 3.9: another stream or pending `add_watch` of the same kind). Such a watch, or one
/// dropped while disconnected, stays until the next reconnect (a watch nobody listens to is
/// not re-registered), [`Client::remove_watches`](crate::Client::remove_watches) with
/// [`WatcherType::Any`], or the end of the session; its events are discarded meanwhile.
///
/// The stream buffers without bound: a consumer that stops polling while events keep coming
/// holds them all in memory; poll it, or drop it.
///
/// Events on the server while the client is disconnected are not replayed by ZooKeeper for
/// persistent watches (unlike one-shot watches). A notification is per path, though: when a
/// one-shot watch on a path this stream covers fires as a catch-up during re-registration, the
/// stream sees that event too (as with the Java client). Re-read the state after a
/// [`State::Suspended`](crate::State) → [`State::Connected`](crate::State) transition if that
/// matters.
pub struct PersistentWatcher {
    rx: mpsc::UnboundedReceiver<Result<WatchedEvent>>,
    path: String,
    mode: AddWatchMode,
    ended: bool,
    /// Asks the session task to release the server-side watch (see [`WatchKind::Release`]).
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl std::fmt::Debug for PersistentWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentWatcher")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("ended", &self.ended)
            .finish()
    }
}

impl Drop for PersistentWatcher {
    fn drop(&mut self) {
        // closed first, so the session task sees this stream gone when the release arrives
        self.rx.close();
        if let Some(release) = self.release.take() {
            if !self.ended {
                release();
            }
        }
    }
}

impl PersistentWatcher {
    /// Sets what dropping the watcher does (a release request to the session task).
    pub(crate) fn on_drop(mut self, release: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.release = Some(Box::new(release));
        self
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Persistent or persistent recursive.
    pub fn mode(&self) -> AddWatchMode {
        self.mode
    }
}

impl Stream for PersistentWatcher {
    type Item = Result<WatchedEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Err(e))) => {
                self.ended = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(ev))) if ev.event_type == EventType::PersistentWatchRemoved => {
                // removed by remove_watches: the last item, then the stream ends cleanly
                self.ended = true;
                Poll::Ready(Some(Ok(ev)))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(Some(Err(Error::Closed)))
            }
            other => other,
        }
    }
}

/// Which server-side watch a request leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchKind {
    /// getData: data watch.
    Data,
    /// exists: data watch if the node exists, exist watch if not.
    Exists,
    /// getChildren: child watch.
    Child,
    /// addWatch persistent.
    Persistent,
    /// addWatch persistent recursive.
    Recursive,
    /// removeWatches: on success, drop local registrations of this type.
    Remove(WatcherType),
    /// The release of a dropped persistent watcher's server-side watch (of this mode): written
    /// only if nothing of this client on the path needs it any more, as `Remove(Any)` to a
    /// server before 3.9, as a removal of this mode alone to 3.9+.
    Release(AddWatchMode),
}

pub(crate) enum WatchSender {
    Oneshot(oneshot::Sender<Result<WatchedEvent>>),
    Stream(mpsc::UnboundedSender<Result<WatchedEvent>>),
    None,
}

/// A watch to register when (and only if) the request succeeds.
pub(crate) struct WatchRequest {
    pub kind: WatchKind,
    /// Server-side path (chroot applied).
    pub path: String,
    pub sender: WatchSender,
    /// Alive while an addWatch or removeWatches(Any) is written and not answered: the registry
    /// holds a `Weak` to it (see [`Registry::on_send`]), so a request lost with its connection
    /// stops counting by itself.
    token: Option<Arc<()>>,
    /// Keeps the receiving end of a request nobody awaits (a release) open until it is sent.
    _keep: Option<Box<dyn std::any::Any + Send>>,
}

impl WatchRequest {
    pub(crate) fn oneshot(kind: WatchKind, path: String) -> (WatchRequest, OneshotWatcher) {
        let (tx, rx) = oneshot::channel();
        (
            WatchRequest {
                kind,
                path,
                sender: WatchSender::Oneshot(tx),
                token: None,
                _keep: None,
            },
            OneshotWatcher { rx },
        )
    }

    pub(crate) fn remove(kind: WatcherType, path: String) -> WatchRequest {
        WatchRequest {
            kind: WatchKind::Remove(kind),
            path,
            sender: WatchSender::None,
            token: None,
            _keep: None,
        }
    }

    /// The release of a dropped persistent watcher's server-side watch (`mode`) on `path`;
    /// `keep` is the receiver of its reply, which nobody awaits.
    pub(crate) fn release(
        path: String,
        mode: AddWatchMode,
        keep: Box<dyn std::any::Any + Send>,
    ) -> WatchRequest {
        WatchRequest {
            kind: WatchKind::Release(mode),
            path,
            sender: WatchSender::None,
            token: None,
            _keep: Some(keep),
        }
    }

    pub(crate) fn persistent(
        mode: AddWatchMode,
        server_path: String,
        client_path: String,
    ) -> (WatchRequest, PersistentWatcher) {
        let (tx, rx) = mpsc::unbounded_channel();
        let kind = match mode {
            AddWatchMode::PersistentRecursive => WatchKind::Recursive,
            _ => WatchKind::Persistent,
        };
        (
            WatchRequest {
                kind,
                path: server_path,
                sender: WatchSender::Stream(tx),
                token: None,
                _keep: None,
            },
            PersistentWatcher {
                rx,
                path: client_path,
                mode,
                ended: false,
                release: None,
            },
        )
    }
}

type Oneshots = HashMap<String, Vec<oneshot::Sender<Result<WatchedEvent>>>>;

/// Adds a one-shot watcher on `path`: a new path's list starts with room for one (most paths
/// have one watcher; a waiting lock contender costs one such entry).
fn push_one(map: &mut Oneshots, path: String, tx: oneshot::Sender<Result<WatchedEvent>>) {
    map.entry(path)
        .or_insert_with(|| Vec::with_capacity(1))
        .push(tx)
}
type Streams = HashMap<String, Vec<mpsc::UnboundedSender<Result<WatchedEvent>>>>;

/// All watches registered on the session, keyed by server path.
#[derive(Default)]
pub(crate) struct Registry {
    data: Oneshots,
    exist: Oneshots,
    child: Oneshots,
    persistent: Streams,
    recursive: Streams,
    /// addWatch requests written and not answered yet: server path, recursive, when written,
    /// token.
    adding: Vec<(String, bool, u64, Weak<()>)>,
    /// removeWatches requests that take persistent watches, written and not answered yet:
    /// server path, which kinds ([`PERSISTENT`] / [`RECURSIVE`] bits), when written, token.
    removing: Vec<(String, u8, u64, Weak<()>)>,
    /// One-shot reads written and not answered yet, by server path: their tokens.
    reading: HashMap<String, Vec<Weak<()>>>,
    /// Tokens pushed to `reading` since it was last swept.
    reading_pushed: usize,
    /// Counts the requests above, to tell which was written first.
    written: u64,
    /// Watchers held (one-shot senders and stream senders).
    held: usize,
    /// One-shot registrations since the last prune, and watchers left by that prune.
    since_prune: usize,
    live_at_prune: usize,
    /// `held`, published for `Client::registered_watchers`.
    gauge: Arc<AtomicUsize>,
    /// The servers keep one-shot, persistent and recursive watches of a session on one path
    /// side by side, and remove each kind alone (ZooKeeper 3.9+:
    /// [`ServerVersion::separate_watch_modes`](crate::ServerVersion::separate_watch_modes)).
    separate_modes: bool,
}

/// A removal that takes persistent watches ([`Registry::removing`]).
const PERSISTENT: u8 = 1;
/// A removal that takes recursive watches.
const RECURSIVE: u8 = 2;

/// The persistent kinds a removeWatches of `kind` takes.
fn removes(kind: WatcherType) -> u8 {
    match kind {
        WatcherType::Any => PERSISTENT | RECURSIVE,
        WatcherType::Persistent => PERSISTENT,
        WatcherType::PersistentRecursive => RECURSIVE,
        _ => 0,
    }
}

/// Dropped one-shot watchers are forgotten once this many registrations (or as many as were
/// alive after the last pruning, if more) happened since the last pruning: the registry holds
/// at most about twice its live watchers plus this, at an amortized constant cost.
pub(crate) const PRUNE_EVERY: usize = 1024;

/// Largest sum of path lengths in one SetWatches packet (the Java client's
/// `SET_WATCHES_MAX_LENGTH`).
pub(crate) const SET_WATCHES_MAX_LEN: usize = 128 * 1024;

/// A SetWatches frame without its paths: xid, opcode, relative zxid, five list counts (length
/// prefix excluded). A watched path must leave this much room under the request limit.
pub(crate) const SET_WATCHES_FRAME_OVERHEAD: usize = 4 + 4 + 8 + 5 * 4;

impl Registry {
    pub(crate) fn new(gauge: Arc<AtomicUsize>, version: crate::ServerVersion) -> Registry {
        Registry {
            gauge,
            separate_modes: version.separate_watch_modes(),
            ..Default::default()
        }
    }

    fn publish(&self) {
        self.gauge.store(self.held, AtomicOrdering::Relaxed);
    }

    fn recount(&mut self) {
        let one: usize = [&self.data, &self.exist, &self.child]
            .iter()
            .flat_map(|m| m.values())
            .map(Vec::len)
            .sum();
        let streams: usize = [&self.persistent, &self.recursive]
            .iter()
            .flat_map(|m| m.values())
            .map(Vec::len)
            .sum();
        self.held = one + streams;
        self.publish();
    }

    /// Called as a request is written to the socket, in order: keeps one-shot watches and
    /// removals from breaking persistent watches on servers before 3.9.
    ///
    /// A 3.8 server keeps, per session, one watch per path in each of its two tables (data,
    /// child) with one mode, and the last request sets it: addWatch puts a persistent or
    /// recursive watch in both tables (a recursive one never delivers `NodeChildrenChanged`),
    /// a one-shot read with `watch=true` turns the entry into a one-shot (ZOOKEEPER-4466),
    /// removeWatches of one kind empties one table (ZOOKEEPER-4471). So, on a path where the
    /// server holds (or is about to hold) this session's persistent or recursive watch:
    /// - a one-shot read is sent with `watch=false` and completed here from the events of that
    ///   watch: data and exists one-shots from its node events, children one-shots from its
    ///   `NodeChildrenChanged` or, under a recursive watch, from the `NodeCreated` /
    ///   `NodeDeleted` of a direct child ([`Registry::dispatch`] derives the
    ///   `NodeChildrenChanged` the server does not send);
    /// - an addWatch(Persistent) next to a recursive watch is sent as a recursive one (which
    ///   leaves the server as it is; the persistent stream gets its events here);
    /// - removeWatches(Data), and removeWatches(Children) next to a persistent watch, are
    ///   refused;
    /// - a removeWatches(Any) pending on a path uncovers what was written before it;
    /// - the release of a dropped persistent watcher is written as removeWatches(Any) only
    ///   when nothing here needs the server-side watch any more ([`Registry::releasable`]).
    ///
    /// A 3.9 server ([`Registry::separate_modes`]) keeps a mode set per session and path: the
    /// one-shot (standard), persistent and recursive modes side by side, a trigger takes the
    /// one-shot mode only, a recursive watch sits in the data table alone (so a children
    /// one-shot or a persistent watch on its path gets the server's own
    /// `NodeChildrenChanged`), removeWatches(Data) / (Children) take the one-shot mode of
    /// their table, (Persistent) / (PersistentRecursive) that mode alone (DataTree.addWatch /
    /// removeWatch, WatchManager, 3.9.0). There every request is written as it is, and the
    /// release of a dropped persistent watcher is a removal of its own mode, written when no
    /// stream or pending addWatch of that mode on the path is left.
    ///
    /// Re-registration after a reconnect sends one-shots, then persistent, then recursive
    /// watches ([`Registry::set_watches_batches`]), which the server applies in that order:
    /// the same end state, and the one-shots still get their catch-up events.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a refused removeWatches, [`Error::NoWatcher`] for a
    /// release not needed or not possible now: the request must not be sent.
    pub(crate) fn on_send(
        &mut self,
        frame: &mut BytesMut,
        watch: &mut Option<WatchRequest>,
    ) -> Result<()> {
        let Some(w) = watch else {
            return Ok(());
        };
        self.adding.retain(|(.., t)| t.strong_count() > 0);
        self.removing.retain(|(.., t)| t.strong_count() > 0);
        self.written += 1;
        let now = self.written;
        match w.kind {
            WatchKind::Data | WatchKind::Exists | WatchKind::Child => {
                if !self.separate_modes
                    && (self.server_has(&w.path, false) || self.server_has(&w.path, true))
                {
                    // getData / exists / getChildren(2): the body ends with the watch flag
                    if let Some(flag) = frame.last_mut() {
                        debug_assert_eq!(*flag, 1, "a watching read ends with watch=true");
                        *flag = 0;
                    }
                }
                self.note_read(w);
            }
            WatchKind::Release(mode) => {
                let recursive = mode == AddWatchMode::PersistentRecursive;
                let kind = if !self.separate_modes {
                    if !self.releasable(&w.path) {
                        // still needed (or already gone): kept until the next reconnect
                        return Err(Error::NoWatcher);
                    }
                    WatcherType::Any
                } else {
                    if !self.releasable_mode(&w.path, recursive) {
                        return Err(Error::NoWatcher);
                    }
                    // removeWatches: the body ends with the watcher type (an int)
                    let kind = if recursive {
                        WatcherType::PersistentRecursive
                    } else {
                        WatcherType::Persistent
                    };
                    put_last_int(frame, kind.code());
                    kind
                };
                w.kind = WatchKind::Remove(kind);
                self.note_removal(w, kind, now);
            }
            WatchKind::Persistent | WatchKind::Recursive => {
                let recursive = w.kind == WatchKind::Recursive;
                if !self.separate_modes && !recursive && self.server_has(&w.path, true) {
                    // addWatch: the body ends with the mode (an int)
                    put_last_int(frame, AddWatchMode::PersistentRecursive.code());
                }
                let token = Arc::new(());
                self.adding
                    .push((w.path.clone(), recursive, now, Arc::downgrade(&token)));
                w.token = Some(token);
            }
            WatchKind::Remove(kind) if removes(kind) != 0 => {
                if !self.separate_modes && kind != WatcherType::Any {
                    // (the client refuses these before they get here)
                    return Err(Error::InvalidArgument(format!(
                        "remove_watches({kind:?}) needs ZooKeeper 3.9 (ZOOKEEPER-4472)"
                    )));
                }
                self.note_removal(w, kind, now);
            }
            WatchKind::Remove(kind) => {
                if self.separate_modes {
                    // 3.9 takes the one-shot mode of that table only
                    return Ok(());
                }
                let persistent = self.server_has(&w.path, false);
                let recursive = self.server_has(&w.path, true);
                let cripples = match kind {
                    WatcherType::Data => persistent || recursive,
                    _ => persistent,
                };
                if cripples {
                    return Err(Error::InvalidArgument(format!(
                        "remove_watches({kind:?}) on a path with a persistent watch would leave \
                         that watch half removed on ZooKeeper before 3.9 (ZOOKEEPER-4471); the \
                         one-shot watches there are kept by this client alone: drop them, or \
                         remove every watch on the path with WatcherType::Any"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Tracks a written removeWatches that takes persistent watches of `kind` until it is
    /// answered.
    fn note_removal(&mut self, w: &mut WatchRequest, kind: WatcherType, now: u64) {
        let token = Arc::new(());
        self.removing
            .push((w.path.clone(), removes(kind), now, Arc::downgrade(&token)));
        w.token = Some(token);
    }

    /// Tracks a one-shot read until it is answered.
    fn note_read(&mut self, w: &mut WatchRequest) {
        let token = Arc::new(());
        self.reading
            .entry(w.path.clone())
            .or_default()
            .push(Arc::downgrade(&token));
        w.token = Some(token);
        self.reading_pushed += 1;
        if self.reading_pushed > PRUNE_EVERY.max(self.reading.len()) {
            self.reading_pushed = 0;
            self.reading.retain(|_, l| {
                l.retain(|t| t.strong_count() > 0);
                !l.is_empty()
            });
        }
    }

    /// Whether a dropped persistent watcher's server-side watch on `path` can go: the server
    /// holds one, and no stream, one-shot watcher, pending addWatch or unanswered one-shot
    /// read of this client on the path needs it (removeWatches(Any) takes all of them).
    fn releasable(&mut self, path: &str) -> bool {
        fn live<T>(m: &HashMap<String, Vec<T>>, path: &str, open: impl Fn(&T) -> bool) -> bool {
            m.get(path).is_some_and(|l| l.iter().any(open))
        }
        let reading = match self.reading.get_mut(path) {
            Some(l) => {
                l.retain(|t| t.strong_count() > 0);
                !l.is_empty()
            }
            None => false,
        };
        let held = self.server_has(path, false) || self.server_has(path, true);
        let pending_add = self
            .adding
            .iter()
            .any(|(p, .., t)| p == path && t.strong_count() > 0);
        held && !reading
            && !pending_add
            && !live(&self.persistent, path, |tx| !tx.is_closed())
            && !live(&self.recursive, path, |tx| !tx.is_closed())
            && !live(&self.data, path, |tx| !tx.is_closed())
            && !live(&self.exist, path, |tx| !tx.is_closed())
            && !live(&self.child, path, |tx| !tx.is_closed())
    }

    /// On a 3.9 server: whether a dropped persistent (`recursive`: recursive) watcher's watch
    /// on `path` can go: the server holds one of that mode, and no stream or pending addWatch
    /// of that mode here needs it (one-shot watches have their own mode there).
    fn releasable_mode(&mut self, path: &str, recursive: bool) -> bool {
        let map = if recursive {
            &self.recursive
        } else {
            &self.persistent
        };
        let live = map
            .get(path)
            .is_some_and(|l| l.iter().any(|tx| !tx.is_closed()));
        let pending_add = self
            .adding
            .iter()
            .any(|(p, r, _, t)| p == path && *r == recursive && t.strong_count() > 0);
        self.server_has(path, recursive) && !live && !pending_add
    }

    /// Whether the server holds this session's persistent (`recursive`: recursive) watch on
    /// exactly `path` when the next request gets there: registered (a dropped stream's watch
    /// stays on the server until the next reconnect, and its entry here with it), or its
    /// addWatch written, and no removeWatches taking it written after either.
    fn server_has(&self, path: &str, recursive: bool) -> bool {
        let bit = if recursive { RECURSIVE } else { PERSISTENT };
        let removed_at = self
            .removing
            .iter()
            .filter(|(p, kinds, _, token)| {
                p == path && kinds & bit != 0 && token.strong_count() > 0
            })
            .map(|(_, _, at, _)| *at)
            .max();
        let map = if recursive {
            &self.recursive
        } else {
            &self.persistent
        };
        // a registered watch was written before any removal still pending
        (removed_at.is_none() && map.contains_key(path))
            || self.adding.iter().any(|(p, r, at, token)| {
                // (outside on_send, entries of answered requests may not be swept yet)
                p == path
                    && *r == recursive
                    && removed_at.is_none_or(|rm| *at > rm)
                    && token.strong_count() > 0
            })
    }

    /// Registers a watch after its request succeeded. `node_exists` tells an `exists` whether
    /// the node was there (data watch) or not (exist watch).
    pub(crate) fn register(&mut self, w: WatchRequest, node_exists: bool) {
        match (w.kind, w.sender) {
            (WatchKind::Data, WatchSender::Oneshot(tx)) => push_one(&mut self.data, w.path, tx),
            (WatchKind::Exists, WatchSender::Oneshot(tx)) => {
                let map = if node_exists {
                    &mut self.data
                } else {
                    &mut self.exist
                };
                push_one(map, w.path, tx)
            }
            (WatchKind::Child, WatchSender::Oneshot(tx)) => push_one(&mut self.child, w.path, tx),
            (WatchKind::Persistent, WatchSender::Stream(tx)) => {
                self.persistent.entry(w.path).or_default().push(tx)
            }
            (WatchKind::Recursive, WatchSender::Stream(tx)) => {
                self.recursive.entry(w.path).or_default().push(tx)
            }
            _ => {
                debug_assert!(false, "watch kind and sender do not match");
                return;
            }
        }
        self.held += 1;
        self.since_prune += 1;
        // Dropped one-shot watchers stay in their lists until their path fires; a caller
        // that drops watchers on a path that never changes would grow the registry forever.
        if self.since_prune > PRUNE_EVERY.max(self.live_at_prune) {
            self.prune();
        } else {
            self.publish();
        }
    }

    /// Applies the watch part of a request once its reply arrived with error code `err`: a
    /// successful read leaves its watch (an `exists` on a missing node too), a successful
    /// removeWatches drops the local registrations.
    ///
    /// Returns the server path and mode of a persistent watch the server just set for a stream
    /// nobody holds any more (its `add_watch` caller gave up after the request was sent): the
    /// caller must release it
    /// ([`PendingRequest::release`](crate::session::PendingRequest::release)), as if that
    /// stream had been dropped now.
    #[must_use]
    pub(crate) fn on_reply(
        &mut self,
        mut w: WatchRequest,
        err: i32,
        chroot: &Chroot,
    ) -> Option<(String, AddWatchMode)> {
        if let WatchKind::Remove(t) = w.kind {
            if err == code::OK {
                self.remove(t, &w.path, chroot);
            }
            return None;
        }
        let exists_miss = w.kind == WatchKind::Exists && err == code::NO_NODE;
        let read = matches!(
            w.kind,
            WatchKind::Data | WatchKind::Exists | WatchKind::Child
        );
        if read && w.token.take().is_some() {
            // this read is answered: forget it now rather than at the next sweep (a waiting
            // lock contender would otherwise keep a second copy of its watched path)
            self.forget_answered_read(&w.path);
        }
        if err != code::OK && !exists_miss {
            return None;
        }
        let unheld = match &w.sender {
            WatchSender::Stream(tx) if tx.is_closed() => {
                let mode = if w.kind == WatchKind::Recursive {
                    AddWatchMode::PersistentRecursive
                } else {
                    AddWatchMode::Persistent
                };
                Some((w.path.clone(), mode))
            }
            _ => None,
        };
        self.register(w, err == code::OK);
        unheld
    }

    /// Drops the tokens of answered reads on `path` (and the entry, once none is left).
    fn forget_answered_read(&mut self, path: &str) {
        if let Some(l) = self.reading.get_mut(path) {
            l.retain(|t| t.strong_count() > 0);
            if l.is_empty() {
                self.reading.remove(path);
                // a burst of reads in flight grew the table; give the memory back once it is
                // mostly empty (amortized: only after as many removals as it has slots)
                let cap = self.reading.capacity();
                if cap > 64 && self.reading.len() * 8 < cap {
                    self.reading.shrink_to(self.reading.len() * 2);
                }
            }
        }
    }

    /// Delivers a server notification to every watcher it concerns (the rules of the Java
    /// client's `ZKWatchManager.materialize`). Returns how many watchers received it.
    pub(crate) fn dispatch(&mut self, ev: EventType, server_path: &str, chroot: &Chroot) -> usize {
        // every watch is inside the chroot but the config node's (`get_config_watch`, whose
        // path is the same with or without one): a notification outside concerns none
        let Some(path) = chroot
            .to_client(server_path)
            .or_else(|| (server_path == crate::proto::CONFIG_NODE).then(|| server_path.to_owned()))
        else {
            return 0;
        };
        let event = WatchedEvent {
            event_type: ev,
            path,
        };
        let mut n = 0;
        let mut gone = 0;
        let mut fire = |map: &mut Oneshots| {
            if let Some(list) = map.remove(server_path) {
                gone += list.len();
                for tx in list {
                    if tx.send(Ok(event.clone())).is_ok() {
                        n += 1;
                    }
                }
            }
        };
        match ev {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                fire(&mut self.data);
                fire(&mut self.exist);
            }
            EventType::NodeChildrenChanged => fire(&mut self.child),
            EventType::NodeDeleted => {
                fire(&mut self.data);
                fire(&mut self.exist);
                fire(&mut self.child);
            }
            _ => {}
        }
        let (sent, closed) = send_streams(&mut self.persistent, server_path, &event);
        n += sent;
        gone += closed;
        self.held -= gone;
        gone = 0;
        if !self.separate_modes && matches!(ev, EventType::NodeCreated | EventType::NodeDeleted) {
            // Before 3.9, a recursive watch on the parent holds the parent's child-table entry
            // on the server, which then never sends NodeChildrenChanged for it: derive it here
            // for the parent's children one-shots and persistent streams. (A 3.9 server keeps
            // recursive watches out of its child table and sends it itself.)
            if let Some(parent) = parent_of(server_path) {
                if self.server_has(parent, true) {
                    n += self.dispatch(EventType::NodeChildrenChanged, parent, chroot);
                }
            }
        }
        if ev != EventType::NodeChildrenChanged && !self.recursive.is_empty() {
            // the path itself and every ancestor
            let mut p = server_path;
            loop {
                let (sent, closed) = send_streams(&mut self.recursive, p, &event);
                n += sent;
                gone += closed;
                match parent_of(p) {
                    Some(parent) => p = parent,
                    None => break,
                }
            }
        }
        self.held -= gone;
        self.publish();
        n
    }

    /// Drops the registrations `kind` on `path` after a successful removeWatches; one-shot
    /// watchers get the client-side "removed" event, streams end.
    pub(crate) fn remove(&mut self, kind: WatcherType, path: &str, chroot: &Chroot) {
        // the removed path is one this client sent: inside the chroot
        let client_path = chroot.to_client(path).unwrap_or_else(|| path.to_owned());
        let ev = |t| {
            Ok(WatchedEvent {
                event_type: t,
                path: client_path.clone(),
            })
        };
        let (data, child, persistent, recursive) = match kind {
            WatcherType::Data => (true, false, false, false),
            WatcherType::Children => (false, true, false, false),
            WatcherType::Persistent => (false, false, true, false),
            WatcherType::PersistentRecursive => (false, false, false, true),
            _ => (true, true, true, true),
        };
        let mut gone = 0;
        if data {
            for map in [&mut self.data, &mut self.exist] {
                for tx in map.remove(path).unwrap_or_default() {
                    gone += 1;
                    let _ = tx.send(ev(EventType::DataWatchRemoved));
                }
            }
        }
        if child {
            for tx in self.child.remove(path).unwrap_or_default() {
                gone += 1;
                let _ = tx.send(ev(EventType::ChildWatchRemoved));
            }
        }
        for (take, map) in [
            (persistent, &mut self.persistent),
            (recursive, &mut self.recursive),
        ] {
            if take {
                for tx in map.remove(path).unwrap_or_default() {
                    gone += 1;
                    let _ = tx.send(ev(EventType::PersistentWatchRemoved));
                }
            }
        }
        self.held -= gone;
        self.publish();
    }

    /// Ends every watcher with `err` (session expired, closed, auth failed).
    pub(crate) fn fail_all(&mut self, err: &Error) {
        for map in [&mut self.data, &mut self.exist, &mut self.child] {
            for (_, list) in map.drain() {
                for tx in list {
                    let _ = tx.send(Err(err.clone()));
                }
            }
        }
        for map in [&mut self.persistent, &mut self.recursive] {
            for (_, list) in map.drain() {
                for tx in list {
                    let _ = tx.send(Err(err.clone()));
                }
            }
        }
        self.held = 0;
        self.since_prune = 0;
        self.live_at_prune = 0;
        self.publish();
    }

    /// Forgets watchers whose receiving side was dropped. The entry of a persistent or
    /// recursive watch stays (maybe with no stream) while the server holds it: until
    /// [`Registry::set_watches_batches`] leaves it out of a new connection.
    pub(crate) fn prune(&mut self) {
        for map in [&mut self.data, &mut self.exist, &mut self.child] {
            map.retain(|_, list| {
                list.retain(|tx| !tx.is_closed());
                !list.is_empty()
            });
        }
        for map in [&mut self.persistent, &mut self.recursive] {
            for list in map.values_mut() {
                list.retain(|tx| !tx.is_closed());
            }
        }
        self.recount();
        self.since_prune = 0;
        self.live_at_prune = self.held;
    }

    /// Number of distinct (kind, path) registrations.
    pub(crate) fn len(&self) -> usize {
        self.data.len()
            + self.exist.len()
            + self.child.len()
            + self.persistent.len()
            + self.recursive.len()
    }

    /// The SetWatches packets that re-register everything, in the Java client's order (data,
    /// exist, child, persistent, recursive), each holding paths while the running sum of path
    /// lengths is below 128 KiB. A packet with persistent paths is a SetWatches2.
    #[cfg(test)]
    pub(crate) fn set_watches_batches(&mut self, relative_zxid: i64) -> Vec<SetWatches> {
        self.set_watches_batches_within(relative_zxid, usize::MAX)
    }

    /// Like [`set_watches_batches`](Self::set_watches_batches), also keeping every packet's
    /// frame within `max_frame` bytes (a server drops a connection on a frame over its
    /// `jute.maxbuffer`, and a reconnect would send it again).
    pub(crate) fn set_watches_batches_within(
        &mut self,
        relative_zxid: i64,
        max_frame: usize,
    ) -> Vec<SetWatches> {
        self.prune();
        // a watch nobody listens to any more is not re-registered: the new connection is
        // where the server forgets it
        for map in [&mut self.persistent, &mut self.recursive] {
            map.retain(|_, list| !list.is_empty());
        }
        let mut out = Vec::new();
        let mut cur = SetWatches {
            relative_zxid,
            ..Default::default()
        };
        let mut len = 0usize;
        // xid, opcode, relative zxid, five list counts
        let mut bytes = SET_WATCHES_FRAME_OVERHEAD;
        let lists: [(&HashMap<String, _>, u8); 3] =
            [(&self.data, 0), (&self.exist, 1), (&self.child, 2)];
        let persistent: [(&Streams, u8); 2] = [(&self.persistent, 3), (&self.recursive, 4)];
        let mut push = |path: &String, which: u8, out: &mut Vec<SetWatches>| {
            let over_bytes =
                bytes + 4 + path.len() > max_frame && bytes > SET_WATCHES_FRAME_OVERHEAD;
            if len >= SET_WATCHES_MAX_LEN || over_bytes {
                bytes = SET_WATCHES_FRAME_OVERHEAD;
                out.push(std::mem::replace(
                    &mut cur,
                    SetWatches {
                        relative_zxid,
                        ..Default::default()
                    },
                ));
                len = 0;
            }
            len += path.encode_utf16().count();
            bytes += 4 + path.len();
            let list = match which {
                0 => &mut cur.data,
                1 => &mut cur.exist,
                2 => &mut cur.child,
                3 => &mut cur.persistent,
                _ => &mut cur.persistent_recursive,
            };
            list.push(path.clone());
            if which >= 3 {
                cur.v2 = true;
            }
        };
        for (map, which) in lists {
            for path in map.keys() {
                push(path, which, &mut out);
            }
        }
        for (map, which) in persistent {
            for path in map.keys() {
                push(path, which, &mut out);
            }
        }
        if !(cur.data.is_empty()
            && cur.exist.is_empty()
            && cur.child.is_empty()
            && cur.persistent.is_empty()
            && cur.persistent_recursive.is_empty())
        {
            out.push(cur);
        }
        out
    }
}

/// Overwrites the last 4 bytes of a request frame (a body ending with an int: addWatch's mode,
/// removeWatches' watcher type).
fn put_last_int(frame: &mut BytesMut, value: i32) {
    let n = frame.len();
    if n >= 4 {
        frame[n - 4..].copy_from_slice(&value.to_be_bytes());
    }
}

/// The parent of a server path (`None` for `/`).
fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        _ if path == "/" => None,
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// Sends `event` to the streams on `path`; returns how many got it and how many were found
/// closed (and dropped).
fn send_streams(map: &mut Streams, path: &str, event: &WatchedEvent) -> (usize, usize) {
    let mut n = 0;
    let mut closed = 0;
    if let Some(list) = map.get_mut(path) {
        // the entry stays even if empty: the server still holds the watch
        list.retain(|tx| {
            let ok = tx.send(Ok(event.clone())).is_ok();
            n += ok as usize;
            closed += !ok as usize;
            ok
        });
    }
    (n, closed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{FutureExt, StreamExt};

    fn reg(r: &mut Registry, kind: WatchKind, path: &str, exists: bool) -> OneshotWatcher {
        let (w, rx) = WatchRequest::oneshot(kind, path.to_owned());
        r.register(w, exists);
        rx
    }

    #[tokio::test]
    async fn dispatch_follows_the_java_rules() {
        let mut r = Registry::default();
        let chroot = Chroot::none();
        let data = reg(&mut r, WatchKind::Data, "/a", true);
        let exist = reg(&mut r, WatchKind::Exists, "/b", false);
        let child = reg(&mut r, WatchKind::Child, "/a", true);
        // a child event does not fire the data watch
        assert_eq!(r.dispatch(EventType::NodeChildrenChanged, "/a", &chroot), 1);
        assert_eq!(
            child.await.unwrap().event_type,
            EventType::NodeChildrenChanged
        );
        assert_eq!(r.dispatch(EventType::NodeCreated, "/b", &chroot), 1);
        assert_eq!(exist.await.unwrap().path, "/b");
        assert_eq!(r.dispatch(EventType::NodeDeleted, "/a", &chroot), 1);
        assert_eq!(data.await.unwrap().event_type, EventType::NodeDeleted);
        // one-shot: gone after firing
        assert_eq!(r.dispatch(EventType::NodeDeleted, "/a", &chroot), 0);
        assert_eq!(r.len(), 0);
    }

    #[tokio::test]
    async fn the_config_node_watch_fires_outside_the_chroot() {
        let mut r = Registry::default();
        let chroot = Chroot::new("/app").unwrap();
        // get_config_watch: the server path is the config node itself, not under the chroot
        let (w, rx) = WatchRequest::oneshot(WatchKind::Data, crate::proto::CONFIG_NODE.into());
        r.register(w, true);
        // another path outside the chroot concerns no watcher
        assert_eq!(
            r.dispatch(EventType::NodeDataChanged, "/zookeeper", &chroot),
            0
        );
        assert_eq!(
            r.dispatch(EventType::NodeDataChanged, "/zookeeper/config", &chroot),
            1
        );
        let ev = rx.await.unwrap();
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDataChanged, "/zookeeper/config")
        );
    }

    #[tokio::test]
    async fn recursive_watches_see_descendants_but_not_child_events() {
        let mut r = Registry::default();
        let chroot = Chroot::new("/root").unwrap();
        let (w, mut s) = WatchRequest::persistent(
            AddWatchMode::PersistentRecursive,
            "/root".into(),
            "/".into(),
        );
        r.register(w, true);
        assert_eq!(r.dispatch(EventType::NodeCreated, "/root/x/y", &chroot), 1);
        assert_eq!(
            r.dispatch(EventType::NodeChildrenChanged, "/root/x", &chroot),
            0
        );
        assert_eq!(r.dispatch(EventType::NodeDataChanged, "/other", &chroot), 0);
        let ev = s.next().await.unwrap().unwrap();
        assert_eq!(ev.path, "/x/y");
        r.fail_all(&Error::SessionExpired);
        assert!(matches!(s.next().await, Some(Err(Error::SessionExpired))));
        assert!(s.next().await.is_none());
    }

    #[test]
    fn set_watches_split_under_128k() {
        let mut r = Registry::default();
        let mut keep = Vec::new();
        for i in 0..3000 {
            let p = format!("/{}/{i:06}", "p".repeat(100));
            keep.push(reg(&mut r, WatchKind::Data, &p, true));
        }
        let (w, _s) =
            WatchRequest::persistent(AddWatchMode::Persistent, "/pers".into(), "/pers".into());
        r.register(w, true);
        let batches = r.set_watches_batches(42);
        let total: usize = batches
            .iter()
            .map(|b| b.data.len() + b.persistent.len())
            .sum();
        assert_eq!(total, 3001);
        assert!(batches.len() >= 3);
        for b in &batches {
            let len: usize = b.data.iter().map(|p| p.len()).sum();
            // a batch closes once it reaches the limit; the last path may overshoot
            assert!(len < SET_WATCHES_MAX_LEN + 200, "{len}");
            assert_eq!(b.relative_zxid, 42);
            assert_eq!(b.v2, !b.persistent.is_empty());
        }
        assert!(batches.last().unwrap().v2);
        assert!(!batches[0].v2);
    }

    #[tokio::test]
    async fn dropped_one_shot_watchers_are_pruned_as_the_registry_grows() {
        let gauge = Arc::new(AtomicUsize::new(0));
        let mut r = Registry::new(gauge.clone(), Default::default());
        let chroot = Chroot::none();
        let live: Vec<_> = (0..3000)
            .map(|i| reg(&mut r, WatchKind::Data, &format!("/live{}", i % 7), true))
            .collect();
        for i in 0..100_000 {
            drop(reg(&mut r, WatchKind::Data, "/same", true));
            let held = gauge.load(AtomicOrdering::Relaxed);
            assert!(held <= 2 * 3000 + PRUNE_EVERY + 1, "{held} held after {i}");
        }
        // the live ones were kept and still fire
        for i in 0..7 {
            r.dispatch(EventType::NodeDataChanged, &format!("/live{i}"), &chroot);
        }
        for w in live {
            assert_eq!(w.await.unwrap().event_type, EventType::NodeDataChanged);
        }
        r.prune();
        assert_eq!(gauge.load(AtomicOrdering::Relaxed), 0);
    }

    /// A read frame as the client builds it: ends with the watch flag.
    fn read_frame() -> BytesMut {
        BytesMut::from(&b"....xid.op..path\x01"[..])
    }

    fn add(r: &mut Registry, mode: AddWatchMode, path: &str) -> PersistentWatcher {
        let (w, s) = WatchRequest::persistent(mode, path.into(), path.into());
        r.register(w, true);
        s
    }

    #[test]
    fn one_shots_next_to_persistent_watches_are_kept_here() {
        let mut r = Registry::default();
        let _p = add(&mut r, AddWatchMode::Persistent, "/p");
        for kind in [WatchKind::Data, WatchKind::Exists, WatchKind::Child] {
            let (w, _rx) = WatchRequest::oneshot(kind, "/p".into());
            let mut f = read_frame();
            r.on_send(&mut f, &mut Some(w)).unwrap();
            assert_eq!(f.last(), Some(&0), "{kind:?} on /p");
            let (w, _rx) = WatchRequest::oneshot(kind, "/q".into());
            let mut f = read_frame();
            r.on_send(&mut f, &mut Some(w)).unwrap();
            assert_eq!(f.last(), Some(&1), "{kind:?} on /q");
        }
        // refused: a removal that would half-remove the persistent watch
        for kind in [WatcherType::Data, WatcherType::Children] {
            let mut w = Some(WatchRequest::remove(kind, "/p".into()));
            let res = r.on_send(&mut read_frame(), &mut w);
            assert!(matches!(res, Err(Error::InvalidArgument(_))), "{kind:?}");
        }
        // a pending removeWatches(Any) uncovers the path; an addWatch written after it covers
        // it again
        let mut rm = Some(WatchRequest::remove(WatcherType::Any, "/p".into()));
        r.on_send(&mut read_frame(), &mut rm).unwrap();
        let (w, _rx) = WatchRequest::oneshot(WatchKind::Data, "/p".into());
        let mut f = read_frame();
        r.on_send(&mut f, &mut Some(w)).unwrap();
        assert_eq!(f.last(), Some(&1));
        let (w, _s) =
            WatchRequest::persistent(AddWatchMode::PersistentRecursive, "/p".into(), "/p".into());
        let mut add = Some(w);
        r.on_send(&mut read_frame(), &mut add).unwrap();
        let (w, _rx) = WatchRequest::oneshot(WatchKind::Child, "/p".into());
        let mut f = read_frame();
        r.on_send(&mut f, &mut Some(w)).unwrap();
        assert_eq!(f.last(), Some(&0));
        // once both are answered (dropped), only what is registered counts
        drop((rm, add));
        r.remove(WatcherType::Any, "/p", &Chroot::none());
        let (w, _rx) = WatchRequest::oneshot(WatchKind::Data, "/p".into());
        let mut f = read_frame();
        r.on_send(&mut f, &mut Some(w)).unwrap();
        assert_eq!(f.last(), Some(&1));
    }

    #[test]
    fn persistent_add_next_to_a_recursive_watch_is_sent_as_recursive() {
        let mut r = Registry::default();
        let _rec = add(&mut r, AddWatchMode::PersistentRecursive, "/p");
        let (w, _s) = WatchRequest::persistent(AddWatchMode::Persistent, "/p".into(), "/p".into());
        let mut f = BytesMut::from(&b"....xid.op..path\0\0\0\0"[..]);
        r.on_send(&mut f, &mut Some(w)).unwrap();
        assert_eq!(&f[f.len() - 4..], &1i32.to_be_bytes());
    }

    #[tokio::test]
    async fn a_recursive_watch_stands_in_for_the_parents_child_events() {
        let mut r = Registry::default();
        let chroot = Chroot::none();
        let mut rec = add(&mut r, AddWatchMode::PersistentRecursive, "/p");
        let mut pers = add(&mut r, AddWatchMode::Persistent, "/p");
        let child = reg(&mut r, WatchKind::Child, "/p", true);
        // recursive, persistent, child one-shot
        assert_eq!(r.dispatch(EventType::NodeCreated, "/p/c", &chroot), 3);
        assert_eq!(
            child.await.unwrap(),
            WatchedEvent {
                event_type: EventType::NodeChildrenChanged,
                path: "/p".into(),
            }
        );
        assert_eq!(
            rec.next().await.unwrap().unwrap().event_type,
            EventType::NodeCreated
        );
        assert_eq!(
            pers.next().await.unwrap().unwrap().event_type,
            EventType::NodeChildrenChanged
        );
        // a grandchild is no child event of /p
        assert_eq!(r.dispatch(EventType::NodeCreated, "/p/c/g", &chroot), 1);
        // a dropped recursive stream's watch stays on the server until a reconnect: still
        // standing in
        drop(rec);
        assert_eq!(r.dispatch(EventType::NodeDeleted, "/p/d", &chroot), 1);
        let _ = r.set_watches_batches(0);
        assert_eq!(r.dispatch(EventType::NodeDeleted, "/p/e", &chroot), 0);
    }

    #[tokio::test]
    async fn a_failed_add_watch_stops_counting_once_answered() {
        let mut r = Registry::default();
        let chroot = Chroot::none();
        let child = reg(&mut r, WatchKind::Child, "/p", true);
        let (w, _s) =
            WatchRequest::persistent(AddWatchMode::PersistentRecursive, "/p".into(), "/p".into());
        let mut pending = Some(w);
        r.on_send(&mut read_frame(), &mut pending).unwrap();
        // answered with an error: the request (and its token) is gone, nothing registered
        drop(pending);
        assert_eq!(r.dispatch(EventType::NodeCreated, "/p/c", &chroot), 0);
        let (w, _rx) = WatchRequest::oneshot(WatchKind::Data, "/p".into());
        let mut f = read_frame();
        r.on_send(&mut f, &mut Some(w)).unwrap();
        assert_eq!(f.last(), Some(&1), "not covered by a failed addWatch");
        assert_eq!(r.dispatch(EventType::NodeChildrenChanged, "/p", &chroot), 1);
        assert_eq!(
            child.await.unwrap().event_type,
            EventType::NodeChildrenChanged
        );
    }

    #[test]
    fn set_watches_sends_one_shots_then_persistent_then_recursive_across_packets() {
        // The server applies SetWatches in order and the last entry on a path sets its mode:
        // for every path, its one-shots must come before its persistent watch, and that before
        // its recursive watch, also when the packets split.
        let mut r = Registry::default();
        let mut keep = Vec::new();
        let mut streams = Vec::new();
        for i in 0..4000 {
            let p = format!("/{}/{i:05}", "q".repeat(60));
            keep.push(reg(&mut r, WatchKind::Data, &p, true));
            keep.push(reg(&mut r, WatchKind::Exists, &p, false));
            keep.push(reg(&mut r, WatchKind::Child, &p, true));
            if i % 3 == 0 {
                streams.push(add(&mut r, AddWatchMode::Persistent, &p));
            }
            if i % 5 == 0 {
                streams.push(add(&mut r, AddWatchMode::PersistentRecursive, &p));
            }
        }
        let batches = r.set_watches_batches(7);
        assert!(batches.len() > 3);
        // (packet, rank within the packet) of each entry
        let mut seen: HashMap<(String, u8), (usize, u8)> = HashMap::new();
        for (i, b) in batches.iter().enumerate() {
            let fields = [
                &b.data,
                &b.exist,
                &b.child,
                &b.persistent,
                &b.persistent_recursive,
            ];
            for (rank, list) in fields.into_iter().enumerate() {
                for p in list {
                    seen.insert((p.clone(), rank as u8), (i, rank as u8));
                }
            }
        }
        for ((path, rank), at) in &seen {
            for later in rank + 1..5 {
                if let Some(after) = seen.get(&(path.clone(), later)) {
                    assert!(
                        at < after,
                        "{path}: kind {rank} at {at:?}, kind {later} at {after:?}"
                    );
                }
            }
        }
        assert_eq!(seen.len(), 3 * 4000 + 1334 + 800);
    }

    #[test]
    fn a_release_waits_for_what_still_needs_the_watch() {
        let mut r = Registry::default();
        let s = add(&mut r, AddWatchMode::Persistent, "/p");
        let release = || {
            Some(WatchRequest::release(
                "/p".into(),
                AddWatchMode::Persistent,
                Box::new(()),
            ))
        };
        // a live stream
        assert!(matches!(
            r.on_send(&mut read_frame(), &mut release()),
            Err(Error::NoWatcher)
        ));
        drop(s);
        // an unanswered one-shot read (completed here from the persistent watch)
        let (w, _rx) = WatchRequest::oneshot(WatchKind::Data, "/p".into());
        let mut read = Some(w);
        r.on_send(&mut read_frame(), &mut read).unwrap();
        assert!(matches!(
            r.on_send(&mut read_frame(), &mut release()),
            Err(Error::NoWatcher)
        ));
        // answered and registered: a live one-shot watcher
        let rx = {
            let w = read.take().unwrap();
            let (w2, rx) = WatchRequest::oneshot(WatchKind::Data, "/p".into());
            drop(w);
            r.register(w2, true);
            rx
        };
        assert!(matches!(
            r.on_send(&mut read_frame(), &mut release()),
            Err(Error::NoWatcher)
        ));
        drop(rx);
        // nothing left: written as removeWatches(Any)
        let mut rel = release();
        r.on_send(&mut read_frame(), &mut rel).unwrap();
        assert_eq!(
            rel.as_ref().unwrap().kind,
            WatchKind::Remove(WatcherType::Any)
        );
        // a second release while the first is pending: nothing to release
        assert!(matches!(
            r.on_send(&mut read_frame(), &mut release()),
            Err(Error::NoWatcher)
        ));
    }

    // ------------------------------------------------------------ ZooKeeper 3.9 servers

    fn v39() -> Registry {
        Registry::new(Default::default(), crate::ServerVersion::V3_9)
    }

    /// A request frame as the client writes it: `op` with a `{path, int}` body (addWatch,
    /// removeWatches, checkWatches).
    fn path_mode_frame(op: crate::proto::OpCode, path: &str, mode: i32) -> BytesMut {
        crate::session::request::request_frame(
            op,
            &crate::proto::PathModeRequest {
                path: path.into(),
                mode,
            },
        )
    }

    fn last_int(f: &BytesMut) -> i32 {
        i32::from_be_bytes(f[f.len() - 4..].try_into().unwrap())
    }

    #[test]
    fn v39_one_shots_and_persistent_watches_are_written_as_asked() {
        use crate::proto::OpCode;
        let mut r = v39();
        let _p = add(&mut r, AddWatchMode::Persistent, "/p");
        let _q = add(&mut r, AddWatchMode::PersistentRecursive, "/q");
        // one-shot reads keep watch=true next to a persistent or recursive watch
        for path in ["/p", "/q"] {
            for kind in [WatchKind::Data, WatchKind::Exists, WatchKind::Child] {
                let (w, _rx) = WatchRequest::oneshot(kind, path.into());
                let mut f = read_frame();
                r.on_send(&mut f, &mut Some(w)).unwrap();
                assert_eq!(f.last(), Some(&1), "{kind:?} on {path}");
            }
        }
        // a persistent addWatch next to a recursive watch stays persistent (mode 0)
        let (w, _s) = WatchRequest::persistent(AddWatchMode::Persistent, "/q".into(), "/q".into());
        let mut f = path_mode_frame(OpCode::AddWatch, "/q", AddWatchMode::Persistent.code());
        let before = f.clone();
        r.on_send(&mut f, &mut Some(w)).unwrap();
        assert_eq!(f, before);
        assert_eq!(last_int(&f), 0);
        // removals of one kind are written as they are, persistent types included
        for kind in [
            WatcherType::Data,
            WatcherType::Children,
            WatcherType::Persistent,
            WatcherType::PersistentRecursive,
        ] {
            let mut f = path_mode_frame(OpCode::RemoveWatches, "/p", kind.code());
            let before = f.clone();
            r.on_send(&mut f, &mut Some(WatchRequest::remove(kind, "/p".into())))
                .unwrap();
            assert_eq!(f, before, "{kind:?}");
            assert_eq!(last_int(&f), kind.code());
        }
    }

    #[test]
    fn the_3_9_watcher_types_are_refused_for_a_3_8_server() {
        let mut r = Registry::default();
        let _p = add(&mut r, AddWatchMode::Persistent, "/p");
        for kind in [WatcherType::Persistent, WatcherType::PersistentRecursive] {
            let mut w = Some(WatchRequest::remove(kind, "/p".into()));
            let res = r.on_send(&mut read_frame(), &mut w);
            assert!(
                matches!(&res, Err(Error::InvalidArgument(m)) if m.contains("3.9")),
                "{kind:?}: {res:?}"
            );
        }
    }

    #[tokio::test]
    async fn v39_removing_one_kind_leaves_the_others_here() {
        let mut r = v39();
        let chroot = Chroot::none();
        let mut pers = add(&mut r, AddWatchMode::Persistent, "/p");
        let mut rec = add(&mut r, AddWatchMode::PersistentRecursive, "/p");
        let data = reg(&mut r, WatchKind::Data, "/p", true);
        let mut child = reg(&mut r, WatchKind::Child, "/p", true);
        assert_eq!(r.len(), 4);
        let answered = |r: &mut Registry, kind| {
            let mut w = Some(WatchRequest::remove(kind, "/p".into()));
            r.on_send(&mut read_frame(), &mut w).unwrap();
            assert!(r.on_reply(w.unwrap(), code::OK, &chroot).is_none());
        };
        // Persistent: the persistent stream ends, nothing else changes
        answered(&mut r, WatcherType::Persistent);
        assert_eq!(
            pers.next().await.unwrap().unwrap().event_type,
            EventType::PersistentWatchRemoved
        );
        assert!(pers.next().await.is_none());
        assert_eq!(r.len(), 3);
        // Data: the data one-shot resolves as removed; the recursive stream stays
        answered(&mut r, WatcherType::Data);
        assert_eq!(data.await.unwrap().event_type, EventType::DataWatchRemoved);
        assert_eq!(r.len(), 2);
        // the child one-shot and the recursive stream still get their events
        assert_eq!(r.dispatch(EventType::NodeDataChanged, "/p", &chroot), 1);
        assert_eq!(
            rec.next().await.unwrap().unwrap().event_type,
            EventType::NodeDataChanged
        );
        assert!((&mut child).now_or_never().is_none());
        // PersistentRecursive: the recursive stream ends; the child one-shot stays
        answered(&mut r, WatcherType::PersistentRecursive);
        assert_eq!(
            rec.next().await.unwrap().unwrap().event_type,
            EventType::PersistentWatchRemoved
        );
        assert!(rec.next().await.is_none());
        assert_eq!(r.len(), 1);
        assert_eq!(r.dispatch(EventType::NodeChildrenChanged, "/p", &chroot), 1);
        assert_eq!(
            child.await.unwrap().event_type,
            EventType::NodeChildrenChanged
        );
        assert_eq!(r.len(), 0);
    }

    #[tokio::test]
    async fn v39_a_recursive_watch_does_not_stand_in_for_child_events() {
        // a 3.9 server keeps recursive watches out of its child table: a children one-shot
        // (sent with watch=true) or a persistent watch on the path gets the server's own
        // NodeChildrenChanged, so none is derived here (it would come twice)
        let mut r = v39();
        let chroot = Chroot::none();
        let mut rec = add(&mut r, AddWatchMode::PersistentRecursive, "/p");
        let mut pers = add(&mut r, AddWatchMode::Persistent, "/p");
        let mut child = reg(&mut r, WatchKind::Child, "/p", true);
        assert_eq!(r.dispatch(EventType::NodeCreated, "/p/c", &chroot), 1);
        assert_eq!(
            rec.next().await.unwrap().unwrap().event_type,
            EventType::NodeCreated
        );
        assert!((&mut child).now_or_never().is_none());
        assert!(pers.next().now_or_never().is_none());
        // the server's own child event: the one-shot and the persistent stream
        assert_eq!(r.dispatch(EventType::NodeChildrenChanged, "/p", &chroot), 2);
        assert_eq!(
            child.await.unwrap().event_type,
            EventType::NodeChildrenChanged
        );
        assert_eq!(
            pers.next().await.unwrap().unwrap().event_type,
            EventType::NodeChildrenChanged
        );
    }

    #[test]
    fn v39_a_release_removes_its_own_mode_only() {
        use crate::proto::OpCode;
        let mut r = v39();
        let chroot = Chroot::none();
        let pers = add(&mut r, AddWatchMode::Persistent, "/p");
        let rec = add(&mut r, AddWatchMode::PersistentRecursive, "/p");
        let one_shot = reg(&mut r, WatchKind::Data, "/p", true);
        let release = |mode| {
            let f = path_mode_frame(OpCode::RemoveWatches, "/p", WatcherType::Any.code());
            (
                f,
                Some(WatchRequest::release("/p".into(), mode, Box::new(()))),
            )
        };
        // a live stream of that mode keeps it
        let (mut f, mut w) = release(AddWatchMode::Persistent);
        assert!(matches!(r.on_send(&mut f, &mut w), Err(Error::NoWatcher)));
        drop(pers);
        // dropped: released although a recursive stream and a one-shot watch are live on the
        // path (3.9 keeps each mode apart): removeWatches(Persistent = 4), not Any
        let (mut f, mut w) = release(AddWatchMode::Persistent);
        r.on_send(&mut f, &mut w).unwrap();
        assert_eq!(last_int(&f), 4);
        let w = w.unwrap();
        assert_eq!(w.kind, WatchKind::Remove(WatcherType::Persistent));
        // while it is pending, a second release finds nothing to release
        let (mut f2, mut w2) = release(AddWatchMode::Persistent);
        assert!(matches!(r.on_send(&mut f2, &mut w2), Err(Error::NoWatcher)));
        // answered: the persistent entry is gone, the recursive stream and the one-shot stay
        assert!(r.on_reply(w, code::OK, &chroot).is_none());
        assert!(!r.persistent.contains_key("/p"));
        assert_eq!(r.recursive["/p"].len(), 1);
        assert_eq!(r.data["/p"].len(), 1);
        // the recursive one in turn: removeWatches(PersistentRecursive = 5)
        let (mut f, mut w) = release(AddWatchMode::PersistentRecursive);
        assert!(matches!(r.on_send(&mut f, &mut w), Err(Error::NoWatcher)));
        drop(rec);
        r.on_send(&mut f, &mut w).unwrap();
        assert_eq!(last_int(&f), 5);
        assert!(r.on_reply(w.unwrap(), code::OK, &chroot).is_none());
        assert!(!r.recursive.contains_key("/p"));
        assert_eq!(r.data["/p"].len(), 1);
        drop(one_shot);
    }

    #[test]
    fn v39_an_add_watch_whose_caller_gave_up_is_released_with_its_mode() {
        let mut r = v39();
        let chroot = Chroot::none();
        let (w, s) =
            WatchRequest::persistent(AddWatchMode::PersistentRecursive, "/p".into(), "/p".into());
        let mut w = Some(w);
        r.on_send(
            &mut path_mode_frame(crate::proto::OpCode::AddWatch, "/p", 1),
            &mut w,
        )
        .unwrap();
        drop(s);
        assert_eq!(
            r.on_reply(w.unwrap(), code::OK, &chroot),
            Some(("/p".to_owned(), AddWatchMode::PersistentRecursive))
        );
    }
}
