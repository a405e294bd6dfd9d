//! Group membership (kazoo `Party`, `ShallowParty`): one ephemeral node per member under the
//! party node, kept present while the member has joined.

use crate::plumbing::{
    child_path, deadline_after, delete_retrying, delete_until_done, sleep_until_opt, spawn_cleanup,
    with_retries, Wake, Wakeups, CLEANUP_SLACK,
};
use crate::watchers::ChildrenWatch;
use futures_util::stream::{BoxStream, StreamExt};
use futures_util::Stream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;
use tracing::{debug, warn};
use zk_core::{Client, CreateMode, Error, OneshotWatcher, Result, State};

/// kazoo's mark in a `Party` member's node name.
const PARTY_MARK: &str = "__party__";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `P/<uuid>__party__`, data = identifier.
    Deep,
    /// `P/<uuid>-<identifier>`, data = identifier.
    Shallow,
}

/// What both party kinds share.
#[derive(Debug)]
struct Core {
    client: Client,
    path: String,
    identifier: String,
    kind: Kind,
    member: Mutex<Option<Keeper>>,
    /// What the sync getters read, without waiting for `member`: the joined member's node and
    /// its presence flag (set once a join completed, cleared by leave).
    view: std::sync::Mutex<Option<(String, Arc<AtomicBool>)>>,
}

/// A joined member: the task that keeps its node present.
#[derive(Debug)]
struct Keeper {
    node: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    present: Arc<AtomicBool>,
}

impl Keeper {
    /// Stops the task; it finishes the request it is in, so nothing it sends lands after this.
    async fn stop(self) -> String {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.node
    }
}

impl Core {
    fn new(client: &Client, path: &str, identifier: String, kind: Kind) -> Core {
        Core {
            client: client.clone(),
            path: path.to_owned(),
            identifier,
            kind,
            member: Mutex::new(None),
            view: std::sync::Mutex::new(None),
        }
    }

    fn node_name(&self) -> String {
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        match self.kind {
            Kind::Deep => format!("{uuid}{PARTY_MARK}"),
            Kind::Shallow => format!("{uuid}-{}", self.identifier),
        }
    }

    fn is_member_node(&self, name: &str) -> bool {
        match self.kind {
            Kind::Deep => name.contains(PARTY_MARK),
            Kind::Shallow => true,
        }
    }

    async fn join(&self, deadline: Option<Instant>) -> Result<Option<()>> {
        let mut member = match deadline {
            Some(d) => match tokio::time::timeout_at(d, self.member.lock()).await {
                Ok(m) => m,
                Err(_) => return Ok(None),
            },
            None => self.member.lock().await,
        };
        if member.as_ref().is_some_and(|k| !k.task.is_finished()) {
            return Ok(Some(()));
        }
        *self.view() = None;
        if let Some(old) = member.take() {
            // a keeper that ended (client closed): its node is gone with the session
            old.stop().await;
        }
        let node = child_path(&self.path, &self.node_name());
        let (stop, stop_rx) = watch::channel(false);
        let (joined_tx, mut joined) = watch::channel(None::<Result<()>>);
        let present = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(keep(
            self.client.clone(),
            self.path.clone(),
            node.clone(),
            self.identifier.clone().into_bytes(),
            stop_rx,
            joined_tx,
            present.clone(),
        ));
        let keeper = Keeper {
            node,
            stop,
            task,
            present,
        };
        // from here a drop (of this future) or a timeout stops the keeper and removes the node
        let mut pending = PendingJoin {
            keeper: Some(keeper),
            client: self.client.clone(),
        };
        let first = async {
            loop {
                if let Some(r) = joined.borrow_and_update().as_ref() {
                    return r.clone();
                }
                if joined.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        };
        let outcome = tokio::select! {
            r = first => Some(r),
            _ = sleep_until_opt(deadline) => None,
        };
        match outcome {
            Some(Ok(())) => {
                let keeper = pending.keeper.take().expect("taken only here");
                *self.view() = Some((keeper.node.clone(), keeper.present.clone()));
                *member = Some(keeper);
                Ok(Some(()))
            }
            Some(Err(e)) => Err(e), // the keeper gave up; `pending` cleans up
            None => {
                // wait a little for our own cleanup, leave the rest to the background
                if let Some(k) = pending.keeper.take() {
                    let client = self.client.clone();
                    let cleanup = spawn_cleanup("party join timed out", async move {
                        remove_member(&client, k).await;
                    });
                    if let Some(h) = cleanup {
                        let _ = tokio::time::timeout(CLEANUP_SLACK, h).await;
                    }
                }
                Ok(None)
            }
        }
    }

    async fn leave(&self) -> Result<bool> {
        let mut member = self.member.lock().await;
        *self.view() = None;
        let keeper = member.take();
        drop(member);
        let Some(keeper) = keeper else {
            return Ok(false);
        };
        // in a task of its own: a leave dropped half-way (after the keeper left the handle)
        // still stops it and deletes the node
        let client = self.client.clone();
        let task = tokio::spawn(async move {
            let node = keeper.stop().await;
            delete_retrying(&client, &node, None)
                .await
                .map(|r| r.unwrap_or(false))
        });
        task.await.unwrap_or(Err(Error::Closed))
    }

    fn view(&self) -> std::sync::MutexGuard<'_, Option<(String, Arc<AtomicBool>)>> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_joined(&self) -> bool {
        self.view().is_some()
    }

    fn is_present(&self) -> bool {
        self.view()
            .as_ref()
            .is_some_and(|(_, present)| present.load(Ordering::SeqCst))
    }

    fn node(&self) -> Option<String> {
        self.view().as_ref().map(|(node, _)| node.clone())
    }

    async fn children(&self) -> Result<Vec<String>> {
        let mut c = match with_retries(None, || self.client.get_children(&self.path)).await {
            Ok(c) => c.unwrap_or_default(),
            Err(Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        c.retain(|n| self.is_member_node(n));
        c.sort();
        Ok(c)
    }

    async fn members(&self) -> Result<Vec<String>> {
        let names = self.children().await?;
        members_of(&self.client, &self.path, self.kind, names).await
    }

    fn stream(&self) -> Members {
        let client = self.client.clone();
        let path = self.path.clone();
        let kind = self.kind;
        let mut last: Option<Vec<String>> = None;
        let inner = ChildrenWatch::new(&self.client, &self.path)
            .then(move |children| {
                let (client, path) = (client.clone(), path.clone());
                async move {
                    let mut names = children?.unwrap_or_default();
                    if kind == Kind::Deep {
                        names.retain(|n| n.contains(PARTY_MARK));
                    }
                    members_of(&client, &path, kind, names).await
                }
            })
            .filter(move |item| {
                // the same members twice in a row (a non-member child came or went) once
                let keep = match item {
                    Ok(m) if last.as_ref() == Some(m) => false,
                    Ok(m) => {
                        last = Some(m.clone());
                        true
                    }
                    Err(_) => true,
                };
                std::future::ready(keep)
            })
            .boxed();
        Members { inner }
    }
}

/// The identifiers of the member nodes `names` (sorted) of the party at `path`.
async fn members_of(
    client: &Client,
    path: &str,
    kind: Kind,
    names: Vec<String>,
) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        match kind {
            Kind::Shallow => {
                // kazoo: everything after the first '-'
                let id = name.split_once('-').map_or(name.as_str(), |(_, id)| id);
                out.push(id.to_owned());
            }
            Kind::Deep => {
                let p = child_path(path, &name);
                match with_retries(None, || client.get_data(&p)).await {
                    Ok(Some((d, _))) => out.push(String::from_utf8_lossy(&d).into_owned()),
                    Ok(None) | Err(Error::NoNode) => {} // left meanwhile
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(out)
}

/// Stops `keeper` and deletes its node until it is gone (while the session lives).
async fn remove_member(client: &Client, keeper: Keeper) {
    let node = keeper.stop().await;
    let sid = client.session_id();
    if let Err(e) = delete_until_done(client, &node, sid).await {
        warn!(node, error = %e, "party member node not removed; it goes with the session");
    }
}

/// A join in progress: dropped before it completes, it stops its keeper and removes the node
/// in the background.
struct PendingJoin {
    keeper: Option<Keeper>,
    client: Client,
}

impl Drop for PendingJoin {
    fn drop(&mut self) {
        if let Some(k) = self.keeper.take() {
            let client = self.client.clone();
            spawn_cleanup("party join dropped", async move {
                remove_member(&client, k).await;
            });
        }
    }
}

/// The keeper task: makes sure `node` exists, owned by the current session, until stopped.
/// Reports the first success (or a fatal error before it) on `joined`.
async fn keep(
    client: Client,
    parent: String,
    node: String,
    data: Vec<u8>,
    mut stop: watch::Receiver<bool>,
    joined: watch::Sender<Option<Result<()>>>,
    present: Arc<AtomicBool>,
) {
    let mut wake = Wakeups::new(&client);
    let mut reported = false;
    loop {
        if *stop.borrow() {
            return;
        }
        // what to wait on before looking again: the node's watch, or a short pause. A stop
        // ends it at once, also while its requests wait for a connection: a create still
        // queued is abandoned (never sent), one already sent is answered before the delete
        // that follows the stop (one session, requests in order), so no member node appears
        // after the join that started this keeper timed out or was dropped.
        let step = tokio::select! {
            biased;
            _ = stop.changed() => return,
            r = ensure_member_node(&client, &parent, &node, &data) => r,
        };
        let (mut watcher, pause) = match step {
            Ok(Step::Present(w)) => {
                present.store(true, Ordering::SeqCst);
                if !reported {
                    reported = true;
                    let _ = joined.send(Some(Ok(())));
                }
                (Some(w), None)
            }
            Ok(Step::WaitGone(w)) => (Some(w), None),
            Ok(Step::Again) => continue,
            Err(e) if matches!(e, Error::Closed | Error::AuthFailed) => {
                present.store(false, Ordering::SeqCst);
                if !reported {
                    let _ = joined.send(Some(Err(e)));
                }
                return;
            }
            Err(e) if e.is_retryable() || e.is_session_dead() => {
                present.store(false, Ordering::SeqCst);
                (None, Some(Duration::from_millis(100)))
            }
            Err(e) => {
                present.store(false, Ordering::SeqCst);
                if !reported {
                    let _ = joined.send(Some(Err(e)));
                    return;
                }
                warn!(node, error = %e, "party member node could not be re-created; retrying");
                (None, Some(Duration::from_secs(1)))
            }
        };
        let until = pause.map(|p| Instant::now() + p);
        loop {
            let w = tokio::select! {
                _ = stop.changed() => return,
                w = wake.next(&mut watcher, until) => w,
            };
            match w {
                Wake::Event(_) | Wake::Deadline => break,
                Wake::State(s) if s.state == State::Connected => break,
                Wake::State(_) => present.store(false, Ordering::SeqCst),
                Wake::StatesEnded => {
                    present.store(false, Ordering::SeqCst);
                    if !reported {
                        let _ = joined.send(Some(Err(Error::Closed)));
                    }
                    return;
                }
            }
        }
    }
}

/// What one look at the member node found.
enum Step {
    /// Our node exists in the current session; a watch on it.
    Present(OneshotWatcher),
    /// A node of an older session of ours is still there (its expiry is being processed): a
    /// watch for it to go.
    WaitGone(OneshotWatcher),
    /// Created (or the parent was): look again at once.
    Again,
}

/// One step of the keeper.
async fn ensure_member_node(
    client: &Client,
    parent: &str,
    node: &str,
    data: &[u8],
) -> Result<Step> {
    let sid = client.session_id();
    let (stat, w) = client.exists_watch(node).await?;
    match stat {
        Some(s) if s.ephemeral_owner == sid => return Ok(Step::Present(w)),
        Some(s) => {
            debug!(
                node,
                owner = s.ephemeral_owner,
                "member node of an old session"
            );
            return Ok(Step::WaitGone(w));
        }
        None => drop(w),
    }
    match client.create(node, data, CreateMode::Ephemeral).await {
        Ok(_) | Err(Error::NodeExists) => Ok(Step::Again),
        Err(Error::NoNode) => client.ensure_path(parent).await.map(|()| Step::Again),
        Err(e) => Err(e),
    }
}

/// A stream of a party's members (their identifiers, sorted by node name), one list per
/// change: the current members first. Built on [`ChildrenWatch`]: the same wake-ups
/// (reconnects, a new session), the same end (the client closed), transient errors retried.
/// A missing party node is an empty party. Cancel-safe like [`ChildrenWatch`].
#[must_use = "streams do nothing unless polled"]
pub struct Members {
    inner: BoxStream<'static, Result<Vec<String>>>,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members").finish_non_exhaustive()
    }
}

impl Stream for Members {
    type Item = Result<Vec<String>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if let Some(k) = self.member.get_mut().take() {
            let client = self.client.clone();
            spawn_cleanup("party handle dropped", async move {
                remove_member(&client, k).await;
            });
        }
    }
}

macro_rules! party_methods {
    () => {
        /// Joins the party, however long it takes: creates this member's node (EPHEMERAL)
        /// and keeps it present until [`leave`](Self::leave) or the handle is dropped. Unlike
        /// kazoo, a member **re-joins by itself**: when its session is lost (its node goes
        /// with it) the node is created again in the client's new session, and so it is when
        /// someone deletes it. Joining again while joined does nothing.
        ///
        /// # Errors
        /// Server errors of the first create (e.g. `NoAuth`); [`Error::Closed`].
        ///
        /// # Cancel safety
        /// Dropping the future before it completes leaves no member node behind (removed in
        /// the background).
        pub async fn join(&self) -> Result<()> {
            self.core
                .join(None)
                .await?
                .ok_or(Error::Timeout { sent: false })
        }

        /// Joins within `timeout` (one deadline); `Ok(None)` if the node could not be
        /// created in time (and none is left behind).
        ///
        /// # Errors
        /// As [`join`](Self::join).
        pub async fn join_timeout(&self, timeout: Duration) -> Result<Option<()>> {
            self.core.join(Some(deadline_after(timeout))).await
        }

        /// Like [`join_timeout`](Self::join_timeout) with an absolute deadline.
        ///
        /// # Errors
        /// As [`join`](Self::join).
        pub async fn join_until(&self, deadline: Instant) -> Result<Option<()>> {
            self.core.join(Some(deadline)).await
        }

        /// Leaves the party: stops keeping the node and deletes it (retried through
        /// connection loss). `Ok(true)` if it deleted the node, `Ok(false)` if it was not
        /// joined or the node was already gone (kazoo's return value).
        ///
        /// # Errors
        /// A dead session after a delete whose reply was lost is [`Error::ConnectionLoss`];
        /// other server errors.
        ///
        /// # Cancel safety
        /// Dropped once it has started, the leave still completes in the background (the
        /// node is deleted).
        pub async fn leave(&self) -> Result<bool> {
            self.core.leave().await
        }

        /// Whether this handle has joined and not left (the node is being kept present;
        /// it may be missing for a while after a session loss, until the new session).
        pub fn is_joined(&self) -> bool {
            self.core.is_joined()
        }

        /// Whether this member's node was last seen present in the current connection
        /// (false while disconnected or re-joining).
        pub fn is_present(&self) -> bool {
            self.core.is_present()
        }

        /// The path of this member's node, while joined.
        pub fn node_path(&self) -> Option<String> {
            self.core.node()
        }

        /// The party's path.
        pub fn path(&self) -> &str {
            &self.core.path
        }

        /// The number of members (kazoo's `len(party)`); 0 if the party node is missing.
        ///
        /// # Errors
        /// Server errors (connection loss is retried).
        pub async fn len(&self) -> Result<usize> {
            Ok(self.core.children().await?.len())
        }

        /// Whether the party has no members.
        ///
        /// # Errors
        /// As [`len`](Self::len).
        pub async fn is_empty(&self) -> Result<bool> {
            Ok(self.len().await? == 0)
        }

        /// The members' identifiers, sorted by node name (kazoo's `list(party)`): a snapshot.
        ///
        /// # Errors
        /// Server errors (connection loss is retried).
        pub async fn members(&self) -> Result<Vec<String>> {
            self.core.members().await
        }

        /// A stream of the members' identifiers, one list per change (see [`Members`]).
        pub fn members_stream(&self) -> Members {
            self.core.stream()
        }
    };
}

/// A party (kazoo `Party(client, path, identifier)`): members are
/// `P/<uuid4 hex>__party__` nodes, EPHEMERAL, with the identifier as data (UTF-8).
/// Listing the members reads each node's data; children without `__party__` are ignored.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use futures::StreamExt;
/// use zk_recipes::Party;
///
/// let party = Party::new(&client, "/services/api", "host-1:8080");
/// party.join().await?;
/// println!("{} members: {:?}", party.len().await?, party.members().await?);
///
/// let mut changes = party.members_stream();
/// while let Some(members) = changes.next().await {
///     println!("now: {:?}", members?);
///     # break;
/// }
/// party.leave().await?;
/// # Ok(()) }
/// ```
///
/// One handle is one member. Dropping the handle leaves (in the background).
#[derive(Debug)]
pub struct Party {
    core: Core,
}

impl Party {
    /// A party member handle at `path` with `identifier` (what [`members`](Self::members)
    /// shows for it). Nothing is sent until [`join`](Self::join).
    pub fn new(client: &Client, path: &str, identifier: impl Into<String>) -> Party {
        Party {
            core: Core::new(client, path, identifier.into(), Kind::Deep),
        }
    }

    party_methods!();
}

/// A shallow party (kazoo `ShallowParty(client, path, identifier)`): members are
/// `P/<uuid4 hex>-<identifier>` nodes, EPHEMERAL, with the identifier as data too; listing
/// the members is one `getChildren` (the identifier is what follows the first `-`).
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// let party = zk_recipes::ShallowParty::new(&client, "/services/workers", "worker-7")?;
/// party.join().await?;
/// assert!(party.members().await?.contains(&"worker-7".to_string()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ShallowParty {
    core: Core,
}

impl ShallowParty {
    /// A shallow party member handle at `path` with `identifier`, which becomes part of the
    /// node's name. Nothing is sent until [`join`](Self::join).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `identifier` contains `/` (it could not be part of a
    /// node name; kazoo fails on the create).
    pub fn new(client: &Client, path: &str, identifier: impl Into<String>) -> Result<Self> {
        let identifier = identifier.into();
        if identifier.contains('/') {
            return Err(Error::InvalidArgument(format!(
                "shallow party {path}: identifier {identifier:?} contains '/'"
            )));
        }
        Ok(ShallowParty {
            core: Core::new(client, path, identifier, Kind::Shallow),
        })
    }

    party_methods!();
}
