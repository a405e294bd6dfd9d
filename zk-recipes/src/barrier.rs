//! Barriers: [`Barrier`] (wait until a node is removed) and [`DoubleBarrier`] (start and finish
//! a computation together), on kazoo's node layout so Rust and Python processes can share one.
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_recipes::barrier::{Barrier, DoubleBarrier};
//!
//! # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
//! // a gate: workers wait until the coordinator removes it
//! let gate = Barrier::new(&client, "/app/gate");
//! gate.create().await?;
//! if gate.wait_timeout(Duration::from_secs(30)).await?.is_none() {
//!     println!("still closed after 30 s");
//! }
//!
//! // four workers start together and finish together
//! let mut b = DoubleBarrier::new(&client, "/app/round-7", 4, "worker-1")?;
//! b.enter().await?;
//! // ... the work ...
//! b.leave().await?;
//! # Ok(()) }
//! ```
//!
//! # Layout (shared with kazoo; the double barrier's also with Curator)
//!
//! * `Barrier(P)`: up while the persistent node `P` exists; down once it is deleted.
//! * `DoubleBarrier(P, n)`: each participant is an ephemeral child `P/<32 hex digits of a
//!   random uuid>` holding the identifier; `P/ready` (persistent) is created by the participant
//!   that sees `n` or more children of `P` (counting `ready` itself), and deleted by the first
//!   to leave.
//!
//! # Reconnects, restarts, wake-ups
//!
//! Every wait re-checks the state on **any** wake-up: a watch event of any type, a
//! reconnection, a new session. kazoo's `Barrier.wait` only reacts to a deletion event and
//! its `DoubleBarrier.enter` hangs after a disconnect; these do not. A wake-up never releases
//! a waiter by itself: only the re-read state does (or, for `enter`, the creation event of
//! `ready`, which proves the barrier opened).

use crate::plumbing::{
    child_path, deadline_after, delete_retrying, terminal_keeper_error, with_retries,
    write_retrying, Cleanup, Leftover, Wake, Wakeups,
};
use std::time::Duration;
use tokio::time::Instant;
use zk_core::{Client, CreateMode, CreateOptions, Error, EventType, OneshotWatcher, Result, State};

/// The name of the double barrier's "everyone is here" node.
pub const READY_NODE: &str = "ready";

/// `true` (done) / `false` (the deadline passed) as the crate-wide answer: `Some(())` / `None`.
fn done(ok: bool) -> Option<()> {
    ok.then_some(())
}

/// What to do after a wake-up while waiting for a state to change.
enum Next {
    /// Look again.
    Recheck,
    /// Keep waiting.
    Wait,
    /// The deadline passed.
    Deadline,
}

/// The common reading of a wake-up: a watch event or a non-SUSPENDED transition means "look
/// again" (the look itself reports a dead session).
fn classify(w: &Wake) -> Next {
    match w {
        Wake::Deadline => Next::Deadline,
        Wake::Event(_) | Wake::StatesEnded => Next::Recheck,
        Wake::State(s) if s.state == State::Suspended => Next::Wait,
        Wake::State(_) => Next::Recheck,
    }
}

// ---------------------------------------------------------------------------- Barrier

/// kazoo's `Barrier(P)`: the barrier is up while the node `P` exists. [`create`](Self::create)
/// puts it up, [`remove`](Self::remove) takes it down, [`wait`](Self::wait) blocks until it is
/// down.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// A barrier on `path`.
    pub fn new(client: &Client, path: &str) -> Barrier {
        Barrier {
            client: client.clone(),
            path: path.to_owned(),
        }
    }

    /// The barrier node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Puts the barrier up: creates the node (and its parents) as empty persistent nodes, like
    /// kazoo's `ensure_path`. An existing node is fine. Connection loss is retried.
    ///
    /// # Cancel safety
    /// Dropping it may leave the node created (it is meant to stay anyway).
    ///
    /// # Errors
    /// [`Error::SessionExpired`], [`Error::Closed`], [`Error::NoAuth`], [`Error::BadPath`], ...
    /// A session that ends after an attempt whose reply was lost gives
    /// [`Error::ConnectionLoss`] instead: the barrier may or may not be up
    /// ([`Error::may_have_been_applied`]).
    pub async fn create(&self) -> Result<()> {
        write_retrying(&self.path, None, || self.client.ensure_path(&self.path))
            .await
            .map(|_| ())
    }

    /// Takes the barrier down: deletes the node. Returns whether a node was deleted (`false`
    /// if it was already gone). Connection loss is retried; if a lost reply hid that the first
    /// attempt worked, the retry finds no node and this returns `false` (as kazoo).
    ///
    /// # Cancel safety
    /// Dropping it may or may not have removed the barrier.
    ///
    /// # Errors
    /// [`Error::NotEmpty`] if the node has children, [`Error::SessionExpired`],
    /// [`Error::Closed`], ... A session that ends after an attempt whose reply was lost gives
    /// [`Error::ConnectionLoss`] instead: the barrier may or may not be down
    /// ([`Error::may_have_been_applied`]).
    pub async fn remove(&self) -> Result<bool> {
        let r = delete_retrying(&self.client, &self.path, None).await?;
        Ok(r.unwrap_or(false))
    }

    /// Waits until the barrier is down (its node does not exist), however long it takes.
    ///
    /// Checks with `exists(P, watch)` and checks again on any wake-up: any watch event,
    /// reconnection or new session. A removal that happened while this client was
    /// disconnected is seen after the reconnection. Session loss is waited through (the
    /// barrier node is persistent: a new session sees it as well).
    ///
    /// # Cancel safety
    /// Cancel-safe: it only reads.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::NoAuth`], [`Error::BadPath`], [`Error::SessionExpired`]
    /// when the client will not start a new session, ...
    pub async fn wait(&self) -> Result<()> {
        self.wait_inner(None).await.map(|_| ())
    }

    /// [`wait`](Self::wait), at most `timeout`: `Ok(Some(()))` when the barrier is down,
    /// `Ok(None)` when the timeout passed first.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only reads.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<Option<()>> {
        self.wait_until(deadline_after(timeout)).await
    }

    /// [`wait_timeout`](Self::wait_timeout) with an absolute deadline.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only reads.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub async fn wait_until(&self, deadline: Instant) -> Result<Option<()>> {
        self.wait_inner(Some(deadline)).await.map(done)
    }

    /// Whether the barrier is down now: `Ok(Some(()))` if so, `Ok(None)` if it is up (one
    /// read, connection loss retried).
    ///
    /// # Cancel safety
    /// Cancel-safe: it only reads.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub async fn try_wait(&self) -> Result<Option<()>> {
        let c = &self.client;
        match with_retries(None, || c.exists(&self.path)).await? {
            Some(None) => Ok(Some(())),
            _ => Ok(None),
        }
    }

    async fn wait_inner(&self, deadline: Option<Instant>) -> Result<bool> {
        let c = &self.client;
        let mut wake = Wakeups::new(c);
        loop {
            let mut watcher = match with_retries(deadline, || c.exists_watch(&self.path)).await {
                Ok(None) => return Ok(false),
                Ok(Some((None, _))) => return Ok(true),
                Ok(Some((Some(_), w))) => Some(w),
                Err(Error::SessionExpired) => {
                    if !wake.wait_new_session(c, deadline).await? {
                        return Ok(false);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            loop {
                match classify(&wake.next(&mut watcher, deadline).await) {
                    Next::Deadline => return Ok(false),
                    Next::Recheck => break,
                    Next::Wait => {}
                }
            }
        }
    }
}

// ---------------------------------------------------------------------- DoubleBarrier

/// kazoo's `DoubleBarrier(P, n, identifier)` (the same layout as Curator's
/// `DistributedDoubleBarrier`): [`enter`](Self::enter) blocks until `n` participants have
/// entered, [`leave`](Self::leave) until all have left.
///
/// Each call of `enter` joins with a fresh node name (`P/<uuid>`), so what a dropped or
/// timed-out call leaves to clean up in the background can never touch a later membership;
/// only `enter` on a handle that is already in (entered, not left) re-uses its node (and, like
/// any `enter`, deletes it if it times out, fails or is dropped). The
/// methods take `&mut self`: one enter or leave at a time per handle. A future that is
/// dropped without ever being polled has done nothing (an unpolled `leave` has not left).
///
/// **Session loss.** A participant is an ephemeral node: if the session is lost while waiting,
/// the membership is gone and `enter` / `leave` fail with [`Error::SessionExpired`] (kazoo
/// silently re-joins in the new session). Call `enter` again to re-join.
///
/// **Limitation of the layout.** `ready` is deleted by the first participant to leave. If it
/// is created *and* deleted while a participant is disconnected, that participant cannot see
/// that the barrier opened: it waits until its deadline (and, its node still being there, the
/// others wait in `leave` until it is gone). kazoo and Curator have the same window.
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    n: usize,
    identifier: String,
    /// The node name of the current membership (set by a successful `enter`).
    member: Option<String>,
}

impl DoubleBarrier {
    /// A double barrier on `path` for `n` participants; `identifier` is stored in our node
    /// (kazoo's default is `hostname-pid`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `n` is 0: the barrier would be "full" before anyone
    /// entered (nothing is sent).
    pub fn new(
        client: &Client,
        path: &str,
        n: usize,
        identifier: impl Into<String>,
    ) -> Result<DoubleBarrier> {
        if n == 0 {
            return Err(Error::InvalidArgument(format!(
                "double barrier {path}: the number of participants must be at least 1"
            )));
        }
        Ok(DoubleBarrier {
            client: client.clone(),
            path: path.to_owned(),
            n,
            identifier: identifier.into(),
            member: None,
        })
    }

    /// The barrier's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// How many participants `enter` waits for.
    pub fn participants(&self) -> usize {
        self.n
    }

    /// The path of our node while we are in the barrier (after a successful
    /// [`enter`](Self::enter), until [`leave`](Self::leave)).
    pub fn node_path(&self) -> Option<String> {
        self.member.as_deref().map(|m| child_path(&self.path, m))
    }

    /// Enters the barrier and waits until `n` participants have entered. On return everyone
    /// is here; our node stays until [`leave`](Self::leave).
    ///
    /// Steps: ensure `P`; create `P/<uuid>` (ephemeral, data = identifier; after an ambiguous
    /// create, a node of that name is adopted only if this session owns it); then until done:
    /// `exists(P/ready, watch)` → present: done; count the children of `P` (`ready` included);
    /// `>= n`: create `P/ready` (persistent; existing is fine), done; else wait for any
    /// wake-up and look again. The creation event of `ready` ends the wait even if `ready` is
    /// gone again by the time we could look (a fast participant already left).
    ///
    /// # Cancel safety
    /// Dropping the future at any await point leaves no node of ours behind: a drop guard
    /// spawns (on the current tokio runtime) a task that deletes our node, retrying through
    /// connection loss until it is gone or the session is. Without a runtime (or if the runtime
    /// shuts down first) the node goes when the session ends.
    ///
    /// # Errors
    /// [`Error::SessionExpired`] if the session was lost after we joined (our node is gone),
    /// [`Error::Closed`], [`Error::NoAuth`], [`Error::BadPath`],
    /// [`Error::NoChildrenForEphemerals`] if `P` is ephemeral, ... Our node is deleted on every
    /// error.
    pub async fn enter(&mut self) -> Result<()> {
        self.enter_opt(None).await.map(|_| ())
    }

    /// [`enter`](Self::enter), at most `timeout`: `Ok(Some(()))` when everyone is here,
    /// `Ok(None)` when the timeout passed first (our node has been deleted).
    ///
    /// # Cancel safety
    /// As [`enter`](Self::enter).
    ///
    /// # Errors
    /// As [`enter`](Self::enter).
    pub async fn enter_timeout(&mut self, timeout: Duration) -> Result<Option<()>> {
        self.enter_until(deadline_after(timeout)).await
    }

    /// [`enter_timeout`](Self::enter_timeout) with an absolute deadline.
    ///
    /// # Cancel safety
    /// As [`enter`](Self::enter).
    ///
    /// # Errors
    /// As [`enter`](Self::enter).
    pub async fn enter_until(&mut self, deadline: Instant) -> Result<Option<()>> {
        self.enter_opt(Some(deadline)).await.map(done)
    }

    async fn enter_opt(&mut self, deadline: Option<Instant>) -> Result<bool> {
        // already in (a previous enter succeeded and no leave ran): keep that node
        let name = self
            .member
            .take()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let node = child_path(&self.path, &name);
        // armed before the create: a drop at any point removes what it may have made
        let mut cleanup = Cleanup::new(&self.client, None);
        cleanup.set(Some(Leftover::Node(node.clone())), self.client.session_id());
        match self.enter_inner(&node, deadline).await {
            Ok(true) => {
                cleanup.disarm();
                self.member = Some(name);
                tracing::debug!(node = %node, "entered double barrier");
                Ok(true)
            }
            Ok(false) => {
                cleanup.finish("enter timed out").await;
                Ok(false)
            }
            Err(e) => {
                cleanup.finish("enter failed").await;
                Err(e)
            }
        }
    }

    async fn enter_inner(&self, node: &str, deadline: Option<Instant>) -> Result<bool> {
        let c = &self.client;
        let mut wake = Wakeups::new(c);
        if with_retries(deadline, || c.ensure_path(&self.path))
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let Some(sid) = self.join_as(node, deadline, &mut wake).await? else {
            return Ok(false);
        };
        let ready = child_path(&self.path, READY_NODE);
        loop {
            if c.session_id() != sid {
                return Err(Error::SessionExpired);
            }
            let mut watcher = match with_retries(deadline, || c.exists_watch(&ready)).await? {
                None => return Ok(false),
                Some((Some(_), _)) => return Ok(true),
                Some((None, w)) => Some(w),
            };
            let Some(children) = with_retries(deadline, || c.get_children(&self.path)).await?
            else {
                return Ok(false);
            };
            if children.len() >= self.n {
                let created = with_retries(deadline, || async {
                    match c.create(&ready, b"", CreateMode::Persistent).await {
                        Ok(_) | Err(Error::NodeExists) => Ok(()),
                        Err(e) => Err(e),
                    }
                })
                .await?;
                return Ok(created.is_some());
            }
            loop {
                let w = wake.next(&mut watcher, deadline).await;
                match &w {
                    Wake::Event(Ok(ev)) if ev.event_type == EventType::NodeCreated => {
                        return Ok(true)
                    }
                    Wake::Event(Err(e)) => return Err(e.clone()),
                    Wake::State(s) if s.state == State::Lost => {
                        return Err(terminal_keeper_error(s).unwrap_or(Error::SessionExpired));
                    }
                    _ => {}
                }
                match classify(&w) {
                    Next::Deadline => return Ok(false),
                    Next::Recheck => break,
                    Next::Wait => {}
                }
            }
        }
    }

    /// Creates our node; returns the session that owns it (`None` at the deadline).
    async fn join_as(
        &self,
        node: &str,
        deadline: Option<Instant>,
        wake: &mut Wakeups,
    ) -> Result<Option<i64>> {
        let c = &self.client;
        let data = self.identifier.as_bytes();
        loop {
            let created = match deadline {
                Some(d) => match tokio::time::timeout_at(
                    d,
                    c.create_with(node, data, &CreateOptions::new(CreateMode::Ephemeral)),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => return Ok(None),
                },
                None => {
                    c.create_with(node, data, &CreateOptions::new(CreateMode::Ephemeral))
                        .await
                }
            };
            match created {
                Ok((_, stat)) => return Ok(Some(stat.ephemeral_owner)),
                Err(Error::SessionExpired) => {
                    // nothing of ours survives an expiry: join again in the new session
                    if !wake.wait_new_session(c, deadline).await? {
                        return Ok(None);
                    }
                    continue;
                }
                Err(e) if matches!(e, Error::NodeExists) || e.is_retryable() => {
                    // ambiguous (or not sent): is a node of that name there, and whose?
                    if e.is_retryable() {
                        tracing::debug!(node, error = %e, "create of our node failed; checking");
                    }
                    let Some(stat) = with_retries(deadline, || c.exists(node)).await? else {
                        return Ok(None);
                    };
                    match stat {
                        None => continue,
                        Some(s) if s.ephemeral_owner == c.session_id() => {
                            return Ok(Some(s.ephemeral_owner))
                        }
                        Some(s) => {
                            // a node of another session under our fresh name: cannot be
                            // ours now; take it away and create ours
                            tracing::warn!(
                                node,
                                owner = s.ephemeral_owner,
                                "replacing a stale node"
                            );
                            let gone = with_retries(deadline, || async {
                                match c.delete(node, Some(s.version)).await {
                                    Ok(()) | Err(Error::NoNode) | Err(Error::BadVersion) => Ok(()),
                                    Err(e) => Err(e),
                                }
                            })
                            .await?;
                            if gone.is_none() {
                                return Ok(None);
                            }
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Leaves the barrier and waits until every participant has left.
    ///
    /// Steps: delete `P/ready` (missing is fine); then until done: `L` = sorted children of `P`
    /// other than `ready`; empty: done; `L == [me]`: delete me, done; me first: wait for the
    /// last of `L` to go (`exists(P/L[last], watch)`); otherwise delete me (once) and wait for
    /// the first of `L` to go; on any wake-up look again.
    ///
    /// Unlike kazoo, `ready` is not counted as a participant here: a `ready` re-created by a
    /// late participant can never keep the lowest waiting. Without a previous successful
    /// `enter` (or after a session loss) this just waits for the others to leave.
    ///
    /// # Cancel safety
    /// Dropping the future at any await point leaves no node of ours behind, as for
    /// [`enter`](Self::enter).
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::SessionExpired`] when the client will not start a new
    /// session, [`Error::NoAuth`], ... Our node is deleted on every error.
    pub async fn leave(&mut self) -> Result<()> {
        self.leave_opt(None).await.map(|_| ())
    }

    /// [`leave`](Self::leave), at most `timeout`: `Ok(Some(()))` when all have left,
    /// `Ok(None)` when the timeout passed first (our node has been deleted anyway: we are
    /// out; the others keep waiting for the rest).
    ///
    /// # Cancel safety
    /// As [`leave`](Self::leave).
    ///
    /// # Errors
    /// As [`leave`](Self::leave).
    pub async fn leave_timeout(&mut self, timeout: Duration) -> Result<Option<()>> {
        self.leave_until(deadline_after(timeout)).await
    }

    /// [`leave_timeout`](Self::leave_timeout) with an absolute deadline.
    ///
    /// # Cancel safety
    /// As [`leave`](Self::leave).
    ///
    /// # Errors
    /// As [`leave`](Self::leave).
    pub async fn leave_until(&mut self, deadline: Instant) -> Result<Option<()>> {
        self.leave_opt(Some(deadline)).await.map(done)
    }

    async fn leave_opt(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let me = self.member.take();
        let mut cleanup = Cleanup::new(&self.client, None);
        if let Some(m) = &me {
            let sid = self.client.session_id();
            cleanup.set(Some(Leftover::Node(child_path(&self.path, m))), sid);
        }
        let res = self.leave_inner(me.as_deref(), deadline).await;
        match res {
            Ok(true) => {
                cleanup.disarm();
            }
            _ => cleanup.finish("leave gave up").await,
        }
        res
    }

    async fn leave_inner(&self, me: Option<&str>, deadline: Option<Instant>) -> Result<bool> {
        let c = &self.client;
        let mut wake = Wakeups::new(c);
        let ready = child_path(&self.path, READY_NODE);
        if delete_retrying(c, &ready, deadline).await?.is_none() {
            return Ok(false);
        }
        let my_node = me.map(|m| child_path(&self.path, m));
        let mut deleted_me = false;
        loop {
            let listed = with_retries(deadline, || async {
                match c.get_children(&self.path).await {
                    Ok(v) => Ok(v),
                    Err(Error::NoNode) => Ok(Vec::new()),
                    Err(e) => Err(e),
                }
            })
            .await?;
            let Some(mut l) = listed else {
                return Ok(false);
            };
            l.retain(|n| n != READY_NODE);
            l.sort();
            let present = me.is_some_and(|m| l.iter().any(|n| n == m));
            if l.is_empty() {
                return Ok(true);
            }
            let delete_me = || async {
                let p = my_node.as_deref().expect("present implies a name");
                delete_retrying(c, p, deadline).await
            };
            if present && l.len() == 1 {
                return Ok(delete_me().await?.is_some());
            }
            let watch_on = if present && me == Some(l[0].as_str()) {
                // lowest: the last to go; wait for the highest
                l.last().expect("non-empty").clone()
            } else {
                if present && !deleted_me {
                    if delete_me().await?.is_none() {
                        return Ok(false);
                    }
                    deleted_me = true;
                }
                l[0].clone()
            };
            let target = child_path(&self.path, &watch_on);
            let mut watcher: Option<OneshotWatcher> =
                match with_retries(deadline, || c.exists_watch(&target)).await? {
                    None => return Ok(false),
                    Some((None, _)) => continue,
                    Some((Some(_), w)) => Some(w),
                };
            loop {
                match classify(&wake.next(&mut watcher, deadline).await) {
                    Next::Deadline => return Ok(false),
                    Next::Recheck => break,
                    Next::Wait => {}
                }
            }
        }
    }
}
