//! Streams of a node's data ([`DataWatch`]) or children ([`ChildrenWatch`]), like kazoo's
//! recipes of the same names, as `futures::Stream`s. Both are one generic watcher,
//! [`NodeWatch`], over what is read ([`Data`] or [`Children`]).
//!
//! ```no_run
//! use futures::StreamExt;
//! use zk_recipes::watchers::{ChildrenWatch, DataWatch};
//!
//! # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
//! let mut config = DataWatch::new(&client, "/app/config");
//! // the first item is the current state, then one item per change
//! while let Some(snapshot) = config.next().await {
//!     match snapshot? {
//!         Some((data, stat)) => println!("config v{}: {} bytes", stat.version, data.len()),
//!         None => println!("no config yet"),
//!     }
//! }
//!
//! let mut workers = ChildrenWatch::new(&client, "/app/workers").survive_session_loss(false);
//! while let Some(children) = workers.next().await {
//!     println!("workers: {:?}", children?); // None while /app/workers does not exist
//! }
//! # Ok(()) }
//! ```
//!
//! # How they work
//!
//! Each read leaves a one-shot watch (`getData` / `getChildren`, or `exists` while the node is
//! missing, so its creation is seen). On **any** wake-up the node is read again and the watch
//! re-armed: a watch event of any type, a reconnection (the client's state stream says
//! CONNECTED again after SUSPENDED: a change made while disconnected is reported), a new
//! session. A snapshot equal to the last one emitted is not emitted again (data: same `mzxid`
//! and version, or both missing; children: same sorted list, or both missing), so a stream
//! never yields the same state twice in a row.
//!
//! ZooKeeper watches are one-shot: changes that follow each other faster than a read and a
//! re-arm may be seen as one (the stream always converges to the latest state).
//!
//! **Session loss.** By default (as kazoo) a stream survives the loss of its session: after the
//! client has a new session ([`zk_core::ClientBuilder::reconnect_after_expiry`], on by default)
//! it reads again and goes on. With [`NodeWatch::survive_session_loss`]`(false)` it yields
//! `Err(`[`Error::SessionExpired`]`)` and ends.
//!
//! **End.** The stream ends (`None`) when the client is closed. Other errors it cannot recover
//! from (e.g. [`Error::NoAuth`]) are yielded once, then it ends. Transient errors (connection
//! loss, timeouts) are retried with kazoo's backoff and never yielded.
//!
//! # Cancel safety
//!
//! `next()` is cancel-safe: dropping it (e.g. in `tokio::select!`) loses no snapshot; the
//! read in progress stays inside the stream and resumes on the next poll. Dropping the stream
//! stops everything; it writes nothing, so nothing is left behind (the server-side one-shot
//! watch fires once into nothing).

use crate::plumbing::{terminal_keeper_error, with_retries, Wake, Wakeups};
use futures_util::stream::{BoxStream, StreamExt};
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use zk_core::{Client, Error, OneshotWatcher, Result, Stat, State, Status};

// ---------------------------------------------------------------------- what is watched

mod sealed {
    pub trait Sealed {}
}

/// What a [`NodeWatch`] reads: [`Data`] or [`Children`]. Sealed.
pub trait WatchKind: sealed::Sealed + 'static {
    /// What one item holds while the node exists.
    type Value: Send + Sync + 'static;
    /// What two snapshots are compared by (a snapshot equal to the last one is not emitted).
    #[doc(hidden)]
    type Key: PartialEq + Send + Sync + 'static;
    /// A read that leaves a watch on what is read; `Err(NoNode)` if the node is missing.
    #[doc(hidden)]
    fn read_watch(
        c: &Client,
        path: &str,
    ) -> impl Future<Output = Result<(Self::Value, OneshotWatcher)>> + Send;
    #[doc(hidden)]
    fn key(v: &Self::Value) -> Self::Key;
}

/// A node's data: items are `Some((data, stat))`, or `None` while the node does not exist.
/// Two snapshots are the same when their `mzxid` and version are.
#[derive(Debug)]
pub enum Data {}

/// A node's children: items are `Some(sorted names)`, or `None` while the node does not exist.
#[derive(Debug)]
pub enum Children {}

impl sealed::Sealed for Data {}
impl sealed::Sealed for Children {}

impl WatchKind for Data {
    type Value = (Vec<u8>, Stat);
    type Key = (i64, i32);
    async fn read_watch(c: &Client, path: &str) -> Result<(Self::Value, OneshotWatcher)> {
        c.get_data_watch(path).await.map(|(d, s, w)| ((d, s), w))
    }
    fn key(v: &Self::Value) -> Self::Key {
        (v.1.mzxid, v.1.version)
    }
}

impl WatchKind for Children {
    type Value = Vec<String>;
    type Key = Vec<String>;
    async fn read_watch(c: &Client, path: &str) -> Result<(Self::Value, OneshotWatcher)> {
        c.get_children_watch(path).await.map(|(mut ch, w)| {
            ch.sort();
            (ch, w)
        })
    }
    fn key(v: &Self::Value) -> Self::Key {
        v.clone()
    }
}

// ---------------------------------------------------------------------- the driver

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Read (and re-arm) now.
    Read,
    /// Wait for a wake-up.
    Wait,
    /// The session is gone; wait for a new one.
    NewSession,
    /// Finished.
    Done,
}

struct Driver<K: WatchKind> {
    client: Client,
    path: String,
    survive: bool,
    wake: Option<Wakeups>,
    watcher: Option<OneshotWatcher>,
    /// The key of the last snapshot emitted (`Some(None)`: "missing" was).
    last: Option<Option<K::Key>>,
    phase: Phase,
}

impl<K: WatchKind> Driver<K> {
    fn new(client: Client, path: String, survive: bool) -> Self {
        Driver {
            client,
            path,
            survive,
            wake: None,
            watcher: None,
            last: None,
            phase: Phase::Read,
        }
    }

    /// One read that leaves a watch: on what is read, or on creation if missing.
    async fn read_once(&self) -> Result<(Option<K::Value>, OneshotWatcher)> {
        let c = &self.client;
        let p = self.path.as_str();
        loop {
            match K::read_watch(c, p).await {
                Err(Error::NoNode) => {}
                other => return other.map(|(v, w)| (Some(v), w)),
            }
            match c.exists_watch(p).await? {
                (None, w) => return Ok((None, w)),
                // created between the two reads: read it
                (Some(_), _) => continue,
            }
        }
    }

    /// The error `e` of a read or a watch: what to do next. `Some(item)` to yield.
    fn on_error(&mut self, e: Error) -> Option<Result<Option<K::Value>>> {
        self.watcher = None;
        match e {
            Error::Closed => {
                self.phase = Phase::Done;
                None
            }
            Error::SessionExpired
                if self.survive && !self.wake.as_ref().is_some_and(Wakeups::ended) =>
            {
                tracing::debug!(path = %self.path, "session lost; waiting for a new one");
                self.phase = Phase::NewSession;
                None
            }
            e => {
                self.phase = Phase::Done;
                Some(Err(e))
            }
        }
    }

    /// A LOST status.
    fn on_lost(&mut self, s: &Status) -> Option<Result<Option<K::Value>>> {
        match terminal_keeper_error(s) {
            Some(e) => self.on_error(e),
            None => self.on_error(Error::SessionExpired),
        }
    }

    async fn next(&mut self) -> Option<Result<Option<K::Value>>> {
        if self.wake.is_none() {
            self.wake = Some(Wakeups::new(&self.client));
        }
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Read => {
                    let res = with_retries(None, || self.read_once()).await;
                    match res {
                        Ok(Some((snap, w))) => {
                            self.watcher = Some(w);
                            self.phase = Phase::Wait;
                            let key = snap.as_ref().map(K::key);
                            if self.last.as_ref() != Some(&key) {
                                self.last = Some(key);
                                return Some(Ok(snap));
                            }
                        }
                        Ok(None) => unreachable!("no deadline"),
                        Err(e) => {
                            if let Some(item) = self.on_error(e) {
                                return Some(item);
                            }
                        }
                    }
                }
                Phase::Wait => {
                    let wake = self.wake.as_mut().expect("subscribed");
                    match wake.next(&mut self.watcher, None).await {
                        Wake::Event(Ok(_)) => self.phase = Phase::Read,
                        Wake::Event(Err(e)) => {
                            if let Some(item) = self.on_error(e) {
                                return Some(item);
                            }
                        }
                        Wake::State(s) => match s.state {
                            State::Connected => self.phase = Phase::Read,
                            State::Lost => {
                                if let Some(item) = self.on_lost(&s) {
                                    return Some(item);
                                }
                            }
                            // Suspended, or a state added later: wait for the next one
                            _ => {}
                        },
                        // the next read returns the client's terminal error
                        Wake::StatesEnded => self.phase = Phase::Read,
                        Wake::Deadline => unreachable!("no deadline"),
                    }
                }
                Phase::NewSession => {
                    let wake = self.wake.as_mut().expect("subscribed");
                    match wake.wait_new_session(&self.client, None).await {
                        Ok(_) => self.phase = Phase::Read,
                        Err(e) => {
                            self.survive = false;
                            if let Some(item) = self.on_error(e) {
                                return Some(item);
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------- the stream

/// A stream of a node's data ([`DataWatch`]) or children ([`ChildrenWatch`]): `Some(value)`,
/// or `None` while the node does not exist. The first item is the current state, then one
/// item per change (see the [module docs](self) for the rules). kazoo's `ChildrenWatch`
/// stops when the node is missing; this one waits for the node to be created.
///
/// ```no_run
/// use futures::StreamExt;
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// let mut leader = zk_recipes::DataWatch::new(&client, "/app/leader");
/// while let Some(item) = leader.next().await {
///     if item?.is_none() {
///         println!("no leader");
///     }
/// }
/// let mut workers = zk_recipes::ChildrenWatch::new(&client, "/app/workers");
/// while let Some(item) = workers.next().await {
///     println!("{} workers", item?.map_or(0, |c| c.len()));
/// }
/// # Ok(()) }
/// ```
///
/// # Cancel safety
/// See the [module docs](self#cancel-safety): `next()` is cancel-safe.
#[must_use = "streams do nothing unless polled"]
pub struct NodeWatch<K: WatchKind> {
    path: String,
    client: Option<Client>,
    survive: bool,
    #[allow(clippy::type_complexity)]
    stream: Option<BoxStream<'static, Result<Option<K::Value>>>>,
}

/// A stream of a node's data (kazoo's `DataWatch`): see [`NodeWatch`].
pub type DataWatch = NodeWatch<Data>;

/// A stream of a node's children (kazoo's `ChildrenWatch`): see [`NodeWatch`].
pub type ChildrenWatch = NodeWatch<Children>;

impl<K: WatchKind> std::fmt::Debug for NodeWatch<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeWatch")
            .field("kind", &std::any::type_name::<K>())
            .field("path", &self.path)
            .field("survive_session_loss", &self.survive)
            .field("started", &self.stream.is_some())
            .finish()
    }
}

impl<K: WatchKind> NodeWatch<K> {
    /// Watches `path`. Nothing happens until the stream is polled.
    pub fn new(client: &Client, path: &str) -> Self {
        NodeWatch {
            path: path.to_owned(),
            client: Some(client.clone()),
            survive: true,
            stream: None,
        }
    }

    /// Whether to go on after the session is lost (default true, as kazoo); with `false` the
    /// stream yields `Err(`[`Error::SessionExpired`]`)` and ends. Only before the first poll.
    pub fn survive_session_loss(mut self, yes: bool) -> Self {
        self.survive = yes;
        self
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl<K: WatchKind> Stream for NodeWatch<K> {
    type Item = Result<Option<K::Value>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let stream = this.stream.get_or_insert_with(|| {
            let client = this.client.take().expect("client until started");
            let driver = Driver::<K>::new(client, this.path.clone(), this.survive);
            futures_util::stream::unfold(driver, |mut d| async move {
                let item = d.next().await?;
                Some((item, d))
            })
            .boxed()
        });
        stream.poll_next_unpin(cx)
    }
}
