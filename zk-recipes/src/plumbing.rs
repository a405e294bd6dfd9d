//! What every recipe leans on, said once: paths, deadlines, waiting for the connection,
//! retrying transient errors, the wake-up sources of a wait, deleting a node until it is gone,
//! and the cleanup guard that removes what a dropped or abandoned call may have created.
//!
//! A new recipe should need nothing else from here to be cancel-safe and deadline-exact:
//! arm a [`Cleanup`] before the first create, wait with [`Wakeups`], retry reads with
//! [`with_retries`], and [`Cleanup::finish`] (or drop) it on every way out.

use crate::retry::{retry, KazooRetry, RetryError};
use futures_util::StreamExt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;
use tracing::{debug, warn};
use zk_core::{
    Client, CreateMode, Error, KeeperState, OneshotWatcher, Result, State, StateStream, Status,
    WatchedEvent,
};

// ------------------------------------------------------------------------------ paths

/// `parent/child`, also under the root.
pub(crate) fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The parent of `path` (`/` for a top-level node).
pub(crate) fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Creates `path` and any missing ancestors as empty container nodes (Curator's
/// `creatingParentContainersIfNeeded`); existing nodes, of any kind, are fine. The server
/// deletes a container once its last child is gone: a create under it that fails with
/// `NoNode` calls this again.
pub(crate) async fn ensure_containers(c: &Client, path: &str) -> Result<()> {
    if path == "/" || c.exists(path).await?.is_some() {
        return Ok(());
    }
    let mut end = 0;
    let mut restarts = 0;
    while end < path.len() {
        end = path[end + 1..]
            .find('/')
            .map_or(path.len(), |i| end + 1 + i);
        match c.create(&path[..end], b"", CreateMode::Container).await {
            Ok(_) | Err(Error::NodeExists) => {}
            // an emptied container ancestor was reaped in between: from the top again
            Err(Error::NoNode) if restarts < 100 => {
                restarts += 1;
                end = 0;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------- deadlines

/// `now + timeout`, saturating at a far future instead of overflowing.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400 * 365 * 30))
}

/// Sleeps until `deadline`; forever without one.
pub(crate) async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Waits (bounded by `deadline`) until the client is connected.
pub(crate) async fn wait_connected(client: &Client, deadline: Option<Instant>) -> Result<()> {
    let within = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    client.wait_for_state(State::Connected, within).await
}

// --------------------------------------------------------------------- transient errors

/// Whether `deadline` (`None`: no deadline) has passed.
pub(crate) fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// An error worth trying again after waiting for the connection, in a call bounded by
/// `deadline` (`None`: none). A `Timeout` only while that deadline has not passed: zk-core
/// also times requests out on its own (a request that waited for a connection longer than the
/// client's queue timeout, twice the session timeout, during an outage; or the client's
/// `request_timeout`), and that is a slow or unreachable server, not the caller's deadline.
/// A `Timeout` past the deadline is the deadline: trying again would spin.
pub(crate) fn transient(e: &Error, deadline: Option<Instant>) -> bool {
    match e {
        Error::Timeout { .. } => !passed(deadline),
        e => e.is_retryable(),
    }
}

/// Runs `f` until it succeeds or fails with an error that `is_transient` does not accept
/// (usually `|e| transient(e, deadline)`), waiting for the connection between tries (a session
/// expiry too: the client starts a new session).
pub(crate) async fn retry_transient<T, F, Fut>(
    c: &Client,
    deadline: Option<Instant>,
    is_transient: impl Fn(&Error) -> bool,
    mut f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    loop {
        match f().await {
            Err(e) if is_transient(&e) || matches!(e, Error::SessionExpired) => {
                wait_connected(c, deadline).await?
            }
            other => return other,
        }
    }
}

/// After a failed read or idempotent write on a node that outlives sessions (a counter, an
/// atomic value): waits for the connection if `e` is worth another try (connection loss, a
/// zk-core timeout before `deadline`, a session expiry), otherwise returns `e`.
pub(crate) async fn wait_after_error(
    c: &Client,
    e: Error,
    deadline: Option<Instant>,
) -> Result<()> {
    let again = match &e {
        Error::Timeout { .. } => !passed(deadline),
        Error::SessionExpired => true,
        e => e.is_retryable(),
    };
    if !again {
        return Err(e);
    }
    wait_connected(c, deadline).await
}

/// The policy for transient failures inside recipes: kazoo's client default (unlimited
/// attempts, 0.1 s doubling with jitter) capped at 1 s between attempts, and session expiry
/// passed through to the caller, which decides.
fn transient_policy() -> KazooRetry {
    KazooRetry::client_default()
        .ignore_expire(false)
        .max_delay(Duration::from_secs(1))
}

/// Runs `f` until it succeeds or fails with a non-transient error (connection loss, timeouts
/// and `NotConnected` are retried, with backoff). `Ok(None)` when `deadline` passes first (the
/// attempt in flight is dropped; only use this for reads and idempotent writes, or clean up
/// after).
pub(crate) async fn with_retries<T, F, Fut>(deadline: Option<Instant>, f: F) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let policy = transient_policy();
    let run = retry(&policy, f);
    let res = match deadline {
        Some(d) => match tokio::time::timeout_at(d, run).await {
            Ok(r) => r,
            Err(_) => return Ok(None),
        },
        None => run.await,
    };
    res.map(Some).map_err(|e| match e {
        RetryError::Failed(e) => e,
        // unlimited attempts, no deadline, no interrupt, idempotent: cannot happen; keep the
        // last error anyway
        other => other.zk_error().cloned().unwrap_or(Error::Closed),
    })
}

/// [`with_retries`] for a write: if an attempt may have been applied (its reply was lost) and
/// the session then ended before a retry could tell (expired, auth failed, client closed), the
/// error is [`Error::ConnectionLoss`]: the outcome is unknown, and the session error alone would
/// claim nothing was applied.
pub(crate) async fn write_retrying<T, F, Fut>(
    what: &str,
    deadline: Option<Instant>,
    mut f: F,
) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let maybe_applied = AtomicBool::new(false);
    let r = with_retries(deadline, || {
        let attempt = f();
        let maybe_applied = &maybe_applied;
        async move {
            let r = attempt.await;
            if r.as_ref().is_err_and(Error::may_have_been_applied) {
                maybe_applied.store(true, Ordering::Relaxed);
            }
            r
        }
    })
    .await;
    match r {
        Err(e) if e.is_session_dead() && maybe_applied.load(Ordering::Relaxed) => {
            debug!(what, error = %e, "a write whose reply was lost may have applied");
            Err(Error::ConnectionLoss)
        }
        other => other,
    }
}

/// Deletes `path` (any version), retrying transient errors until `deadline`: `Some(true)` if
/// it deleted it, `Some(false)` if it was not there, `None` if the deadline passed. A dead
/// session after an attempt that may have deleted it is [`Error::ConnectionLoss`]
/// ([`write_retrying`]).
pub(crate) async fn delete_retrying(
    c: &Client,
    path: &str,
    deadline: Option<Instant>,
) -> Result<Option<bool>> {
    write_retrying(path, deadline, || async {
        match c.delete(path, None).await {
            Ok(()) => Ok(true),
            Err(Error::NoNode) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await
}

// ----------------------------------------------------------------------------- wake-ups

/// What ended a wait in [`Wakeups::next`].
#[derive(Debug)]
pub(crate) enum Wake {
    /// The one-shot watch resolved (an event, or the error that ended the session).
    Event(Result<WatchedEvent>),
    /// A session state transition.
    State(Status),
    /// The client's session task has ended: requests now fail with its terminal error.
    StatesEnded,
    /// The deadline passed.
    Deadline,
}

/// Every reason to look again: a one-shot watch, the client's state transitions, a deadline.
/// Subscribe (create it) before the first read, so no transition after it is missed.
pub(crate) struct Wakeups {
    states: StateStream,
    ended: bool,
}

impl Wakeups {
    pub(crate) fn new(client: &Client) -> Wakeups {
        Wakeups {
            states: client.state_stream(),
            ended: false,
        }
    }

    /// Whether the client's session task has ended.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Waits for the watch (taken out of `watcher` when it resolves), a state transition or
    /// the deadline, whichever comes first.
    pub(crate) async fn next(
        &mut self,
        watcher: &mut Option<OneshotWatcher>,
        deadline: Option<Instant>,
    ) -> Wake {
        if self.ended && watcher.is_none() {
            return Wake::StatesEnded;
        }
        enum Got {
            Event(Result<WatchedEvent>),
            State(Option<Status>),
            Deadline,
        }
        let got = {
            let watch = async {
                match watcher.as_mut() {
                    Some(w) => w.await,
                    None => std::future::pending().await,
                }
            };
            let ended = self.ended;
            tokio::select! {
                biased;
                ev = watch => Got::Event(ev),
                st = self.states.next(), if !ended => Got::State(st),
                _ = sleep_until_opt(deadline) => Got::Deadline,
            }
        };
        match got {
            Got::Event(ev) => {
                *watcher = None;
                Wake::Event(ev)
            }
            Got::State(Some(s)) => Wake::State(s),
            Got::State(None) => {
                self.ended = true;
                Wake::StatesEnded
            }
            Got::Deadline => Wake::Deadline,
        }
    }

    /// After a [`Error::SessionExpired`] from a request: waits until the client has a session
    /// again. `Ok(false)` at the deadline; the expiry error if the client will not reconnect.
    pub(crate) async fn wait_new_session(
        &mut self,
        client: &Client,
        deadline: Option<Instant>,
    ) -> Result<bool> {
        let mut none = None;
        loop {
            if self.ended {
                return Err(Error::SessionExpired);
            }
            match self.next(&mut none, deadline).await {
                Wake::Deadline => return Ok(false),
                Wake::State(s) if s.state == State::Connected => return Ok(true),
                Wake::State(s) if s.state == State::Lost => {
                    if let Some(e) = terminal_keeper_error(&s) {
                        return Err(e);
                    }
                }
                Wake::State(_) | Wake::Event(_) => {}
                Wake::StatesEnded => {
                    // the task ended: the next request says why
                    return client.exists("/").await.map(|_| true);
                }
            }
        }
    }
}

/// The error a LOST status means when the client will not go on by itself.
pub(crate) fn terminal_keeper_error(s: &Status) -> Option<Error> {
    match s.keeper_state {
        KeeperState::Closed => Some(Error::Closed),
        KeeperState::AuthFailed => Some(Error::AuthFailed),
        _ => None,
    }
}

// ------------------------------------------------------------------------------ cleanup

/// How long a call that gives up (deadline, try mode, error) waits for its own cleanup before
/// returning and leaving the rest to the background: the slack past the deadline that the
/// recipes promise.
pub(crate) const CLEANUP_SLACK: Duration = Duration::from_millis(500);

/// Runs `fut` on the current runtime, if there is one (a cleanup must not need the caller).
pub(crate) fn spawn_cleanup(
    why: &'static str,
    fut: impl Future<Output = ()> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => Some(h.spawn(fut)),
        Err(_) => {
            warn!(
                why,
                "no tokio runtime to clean up on; the node stays until the session ends"
            );
            None
        }
    }
}

/// Deletes `node` until it is gone, through connection loss, as long as session `sid` lives.
pub(crate) async fn delete_until_done(client: &Client, node: &str, sid: i64) -> Result<()> {
    until_done(client, sid, || async {
        match client.delete(node, None).await {
            Ok(()) | Err(Error::NoNode) => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await
}

/// Deletes every child of `parent` whose name starts with `prefix`, through connection loss,
/// as long as session `sid` lives: what an interrupted sequential create may have left.
pub(crate) async fn delete_by_prefix(
    client: &Client,
    parent: &str,
    prefix: &str,
    sid: i64,
) -> Result<()> {
    until_done(client, sid, || async {
        let children = match client.get_children(parent).await {
            Err(Error::NoNode) => return Ok(()),
            other => other?,
        };
        for c in children.iter().filter(|c| c.starts_with(prefix)) {
            match client.delete(&child_path(parent, c), None).await {
                Ok(()) | Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
    .await
}

/// The "until gone" loop of both deletes: done on success, once the session is dead, or once
/// the client is connected in another session (the old one's ephemeral nodes are gone).
async fn until_done<F, Fut>(client: &Client, sid: i64, mut attempt: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    loop {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_session_dead() => return Ok(()),
            Err(e) if e.is_retryable() => {
                if client.session_id() != sid && client.state() == State::Connected {
                    return Ok(());
                }
                let _ =
                    wait_connected(client, Some(Instant::now() + Duration::from_secs(60))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a call may have left on the server.
#[derive(Debug, Clone)]
pub(crate) enum Leftover<'a> {
    /// This node.
    Node(String),
    /// The node `parent/<prefix><seq>` (the sequence formatted as ZooKeeper does, `%010d`):
    /// a queued contender's node without a copy of its path (it waits, holding this, for as
    /// long as the queue ahead of it takes). Borrowed from the recipe handle.
    #[allow(clippy::borrowed_box)] // thin pointers: a `&str` each would double the size
    Seq {
        parent: &'a Box<str>,
        prefix: &'a Box<str>,
        seq: i32,
    },
    /// A child of a parent starting with a prefix (a sequential create whose reply was
    /// lost): `(parent, prefix)`, boxed: the rare case should not make every waiting
    /// contender's cleanup larger.
    Prefix(Box<(String, String)>),
}

impl Leftover<'_> {
    /// The node's path, if it is one node.
    pub(crate) fn node_path(&self) -> Option<String> {
        match self {
            Leftover::Node(n) => Some(n.clone()),
            Leftover::Seq {
                parent,
                prefix,
                seq,
            } => Some(seq_path(parent, prefix, *seq)),
            Leftover::Prefix(_) => None,
        }
    }

    /// The same, owning everything it names (for a cleanup task).
    fn into_owned(self) -> Leftover<'static> {
        match self {
            Leftover::Node(n) => Leftover::Node(n),
            Leftover::Seq {
                parent,
                prefix,
                seq,
            } => Leftover::Node(seq_path(parent, prefix, seq)),
            Leftover::Prefix(p) => Leftover::Prefix(p),
        }
    }
}

/// `parent/<prefix><seq>`, the sequence formatted as ZooKeeper formats it (`%010d`).
fn seq_path(parent: &str, prefix: &str, seq: i32) -> String {
    child_path(parent, &format!("{prefix}{seq:010}"))
}

/// Removes what an in-progress call may have left on the server, unless disarmed: with
/// [`finish`](Self::finish) when the call gives up, or in a spawned task when it is dropped
/// armed (a future dropped mid-way). Nothing is sent when nothing was (no leftover set).
/// A gate travelling with it (the handle's one-call-at-a-time lock) is held until the cleanup
/// is done, so the handle's next call starts after it.
pub(crate) struct Cleanup<'a> {
    /// Borrowed (cloned only when a cleanup is spawned): a waiting lock contender holds one.
    client: &'a Client,
    leftover: Option<Leftover<'a>>,
    sid: i64,
    gate: Option<OwnedMutexGuard<()>>,
}

impl<'a> Cleanup<'a> {
    /// Nothing to clean up yet; `sid` is the session the leftovers would belong to.
    pub(crate) fn new(client: &'a Client, gate: Option<OwnedMutexGuard<()>>) -> Cleanup<'a> {
        Cleanup {
            client,
            leftover: None,
            sid: client.session_id(),
            gate,
        }
    }

    /// What may be left now, in session `sid` (`None`: nothing).
    pub(crate) fn set(&mut self, leftover: Option<Leftover<'a>>, sid: i64) {
        self.leftover = leftover;
        self.sid = sid;
    }

    /// The create's outcome is known: only `node` (in the same session), a sequential child of
    /// `parent` named `<prefix><seq>`, may be left. Kept as its sequence number when the path
    /// is exactly what that rebuilds, else as the path.
    #[allow(clippy::borrowed_box)] // see `Leftover::Seq`
    pub(crate) fn narrow_to_seq(
        &mut self,
        parent: &'a Box<str>,
        prefix: &'a Box<str>,
        node: String,
    ) {
        let seq = node
            .rsplit('/')
            .next()
            .and_then(|name| name.strip_prefix(&**prefix))
            .and_then(|s| s.parse::<i32>().ok());
        self.leftover = Some(match seq {
            Some(seq) if seq_path(parent, prefix, seq) == node => Leftover::Seq {
                parent,
                prefix,
                seq,
            },
            _ => Leftover::Node(node),
        });
    }

    /// What may be left now.
    pub(crate) fn leftover(&self) -> Option<&Leftover<'a>> {
        self.leftover.as_ref()
    }

    /// Nothing to clean up any more (the call succeeded); hands the gate over.
    pub(crate) fn disarm(&mut self) -> Option<OwnedMutexGuard<()>> {
        self.leftover = None;
        self.gate.take()
    }

    /// The call gives up: starts the cleanup in a spawned task and waits for it at most
    /// [`CLEANUP_SLACK`]; if the client is cut off, the cleanup goes on in the background
    /// (retrying through connection loss while the session lives) and the caller returns.
    pub(crate) async fn finish(mut self, why: &'static str) {
        if let Some(task) = self.spawn(why) {
            let _ = tokio::time::timeout(CLEANUP_SLACK, task).await;
        }
    }

    fn spawn(&mut self, why: &'static str) -> Option<tokio::task::JoinHandle<()>> {
        // the gate (if any) is dropped with self when there is nothing to do
        let leftover = self.leftover.take()?.into_owned();
        let client = self.client.clone();
        let sid = self.sid;
        let gate = self.gate.take();
        debug!(?leftover, why, "cleaning up");
        spawn_cleanup(why, async move {
            let r = match &leftover {
                Leftover::Node(n) => delete_until_done(&client, n, sid).await,
                Leftover::Prefix(p) => {
                    let (parent, prefix) = &**p;
                    delete_by_prefix(&client, parent, prefix, sid).await
                }
                Leftover::Seq { .. } => unreachable!("owned leftovers name their node"),
            };
            if let Err(e) = r {
                warn!(error = %e, ?leftover, why, "cleanup failed");
            }
            drop(gate);
        })
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.spawn("call dropped");
    }
}
