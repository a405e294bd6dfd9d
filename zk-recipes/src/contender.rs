//! What locks, read/write locks, semaphores and elections share: a queue of sequential
//! ephemeral nodes under a parent, the guard a holder gets, and cleanup that leaves no node
//! behind.
//!
//! Node names follow kazoo: `<32 hex uuid><MARK><10-digit signed sequence>`, MARK `__lock__`
//! (exclusive / writer) or `__rlock__` (reader).

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex, OwnedMutexGuard};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zk_core::{Client, CreateMode, Error, EventType, Op, Result, State, StateStream, Status};

/// Mark of exclusive (writer) contenders.
pub const LOCK_MARK: &str = "__lock__";
/// Mark of shared (reader) contenders.
pub const RLOCK_MARK: &str = "__rlock__";

/// One contender node, parsed from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContenderNode {
    /// The child name.
    pub name: String,
    /// The sequence number, as the server's signed 32-bit counter.
    pub seq: i32,
    /// `__lock__` (true) or `__rlock__` (false).
    pub exclusive: bool,
}

/// Parses a child name into a contender, or `None` if it is not one (other children are ignored,
/// as kazoo does). The sequence is the text after the mark: 10 digits, or a minus sign and 9 or 10
/// digits (after the counter overflowed), read as a signed 32-bit number and ordered
/// wrap-aware (see [`sorted_contenders`]).
pub fn parse_contender(name: &str) -> Option<ContenderNode> {
    let (idx, mark, exclusive) = match name.rfind(LOCK_MARK) {
        Some(i) => (i, LOCK_MARK, true),
        None => (name.rfind(RLOCK_MARK)?, RLOCK_MARK, false),
    };
    let seq_text = &name[idx + mark.len()..];
    let digits = seq_text.strip_prefix('-').unwrap_or(seq_text);
    let ok_len = if seq_text.starts_with('-') {
        seq_text.len() == 10 || seq_text.len() == 11
    } else {
        seq_text.len() == 10
    };
    if !ok_len || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ContenderNode {
        name: name.to_owned(),
        seq: seq_text.parse().ok()?,
        exclusive,
    })
}

/// Contenders among `children`, in queue order.
///
/// The sequence is the parent's cversion, a signed 32-bit counter that wraps from `2147483647`
/// to `-2147483648` (after about 1.07 billion creates and deletes under the parent). The order
/// is wrap-aware: the queue starts after the largest gap between neighbouring sequences on the
/// 2^32 circle, so it is the creation order whenever the live queue spans less than 2^31
/// sequence numbers (always, in practice: the span grows only while old contenders stay).
///
/// kazoo compares the sequence suffixes *as text*: after the wrap a kazoo contender at
/// `-2147483648` sorts before one at `2147483646` (and `-000000001` before `-2147483648`), so a
/// kazoo peer may take a lock that a Rust holder (or another kazoo holder) still holds. Mixed
/// queues are only safe while the parent's counter has not wrapped.
pub fn sorted_contenders(children: &[String]) -> Vec<ContenderNode> {
    let mut v: Vec<ContenderNode> = children.iter().filter_map(|c| parse_contender(c)).collect();
    v.sort_by(|a, b| a.seq.cmp(&b.seq).then_with(|| a.name.cmp(&b.name)));
    // rotate so that the queue starts after the largest gap (the wrap point, if any)
    let n = v.len();
    let mut start = 0;
    let mut widest = 0u32;
    for i in 0..n {
        let next = (i + 1) % n;
        let gap = (v[next].seq as u32).wrapping_sub(v[i].seq as u32);
        if gap > widest {
            widest = gap;
            start = next;
        }
    }
    v.rotate_left(start);
    v
}

/// When a holder should consider what it holds lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LostPolicy {
    /// As soon as the connection is SUSPENDED (the session may still live, but the holder can
    /// no longer know whether it does). The safe default: a peer can only take over after the
    /// session expires on the server, which is later than the client notices the suspension.
    #[default]
    Suspended,
    /// Only when the session is LOST (expired or closed), or the node is deleted.
    SessionLost,
}

/// Why a guard was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// The connection was suspended (with [`LostPolicy::Suspended`]). Refined to
    /// [`SessionLost`](Self::SessionLost) if the client later learns that the session expired.
    Suspended,
    /// The session expired or the client was closed (also when it was first seen as a
    /// suspension).
    SessionLost,
    /// The holder's node was deleted by someone else.
    NodeDeleted,
    /// The guard was released.
    Released,
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LostReason::Suspended => "the connection to ZooKeeper was suspended",
            LostReason::SessionLost => "the ZooKeeper session was lost",
            LostReason::NodeDeleted => "the holder's node was deleted",
            LostReason::Released => "released",
        })
    }
}

/// A cloneable signal that resolves when a guard is lost.
#[derive(Debug, Clone)]
pub struct LostSignal {
    rx: watch::Receiver<Option<LostReason>>,
}

impl LostSignal {
    /// Whether it was lost, and why.
    pub fn reason(&self) -> Option<LostReason> {
        *self.rx.borrow()
    }

    /// Resolves when the guard is lost (at once if it already is).
    pub async fn lost(&self) -> LostReason {
        let mut rx = self.rx.clone();
        let res = rx.wait_for(|r| r.is_some()).await.map(|r| *r);
        match res {
            Ok(r) => r.unwrap_or(LostReason::SessionLost),
            // the monitor is gone: the guard was dropped
            Err(_) => self.reason().unwrap_or(LostReason::Released),
        }
    }
}

/// Why a fenced write under a [`Guard`] failed: the guard was already lost (nothing was
/// sent), or ZooKeeper's own error.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GuardError {
    /// The guard was already lost, for this reason; nothing was sent. The session may well be
    /// alive (after [`LostReason::Suspended`] or [`LostReason::NodeDeleted`]).
    Lost(LostReason),
    /// The transaction failed on the way or on the server. [`Error::TransactionFailed`] with
    /// `index` 0 means the fence failed: the node is gone.
    Zk(Error),
}

impl GuardError {
    /// The reason, if the guard was already lost.
    pub fn lost_reason(&self) -> Option<LostReason> {
        match self {
            GuardError::Lost(r) => Some(*r),
            GuardError::Zk(_) => None,
        }
    }

    /// Whether the session is known to be gone: a guard lost with
    /// [`LostReason::SessionLost`], or a ZooKeeper error saying so.
    pub fn is_session_dead(&self) -> bool {
        match self {
            GuardError::Lost(r) => *r == LostReason::SessionLost,
            GuardError::Zk(e) => e.is_session_dead(),
        }
    }

    /// Whether the transaction may have been applied although this error came back (its
    /// reply was lost). Never for a guard already lost: nothing was sent.
    pub fn may_have_been_applied(&self) -> bool {
        match self {
            GuardError::Lost(_) => false,
            GuardError::Zk(e) => e.may_have_been_applied(),
        }
    }

    /// Whether the fence failed on the server: the guard's node no longer exists.
    pub fn is_fence_failure(&self) -> bool {
        matches!(
            self,
            GuardError::Zk(Error::TransactionFailed { index: 0, .. })
        )
    }
}

impl std::fmt::Display for GuardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuardError::Lost(r) => write!(f, "the guard was lost ({r}); nothing was sent"),
            GuardError::Zk(e) => write!(f, "fenced transaction failed: {e}"),
        }
    }
}

impl std::error::Error for GuardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GuardError::Lost(_) => None,
            GuardError::Zk(e) => Some(e),
        }
    }
}

impl From<Error> for GuardError {
    fn from(e: Error) -> Self {
        GuardError::Zk(e)
    }
}

/// What a guard shares with its monitor and its cleanup tasks.
#[derive(Debug)]
struct GuardShared {
    lost_tx: watch::Sender<Option<LostReason>>,
    /// The handle's gate: held until the node is gone (released, or given up after a loss).
    gate: std::sync::Mutex<Option<OwnedMutexGuard<()>>>,
}

impl GuardShared {
    /// Marks the guard lost (the first reason sticks; see [`refine`](Self::refine)).
    fn lose(&self, reason: LostReason) -> bool {
        self.lost_tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        })
    }

    /// A loss to a suspension turns out to be the session's end.
    fn refine_to_session_lost(&self) {
        self.lost_tx.send_if_modified(|r| {
            if *r == Some(LostReason::Suspended) {
                *r = Some(LostReason::SessionLost);
                true
            } else {
                false
            }
        });
    }

    fn free_gate(&self) {
        let gate = self.gate.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(gate);
    }
}

/// Proof of holding a lock, a semaphore lease or leadership.
///
/// * [`path`](Self::path): the holder's node.
/// * [`is_held`](Self::is_held) / [`lost`](Self::lost): turns false / resolves when the
///   session is lost, when the node is deleted, and (with the default [`LostPolicy`]) when the
///   connection is suspended. Once lost, it stays lost; only the reason may be refined, from
///   [`LostReason::Suspended`] to [`LostReason::SessionLost`], when the client learns that the
///   session expired meanwhile.
/// * A lost guard gives up: its node is deleted in the background (once the client is back,
///   if the session still lives) and its handle is free for a new acquisition, even while
///   the lost guard itself is still alive.
/// * [`fence`](Self::fence): an [`Op`] for [`Client::multi`] that makes a write conditional on
///   the node still existing, the server-side truth a lost signal only approximates.
/// * [`release`](Self::release): deletes the node. Dropping the guard releases too (in a
///   spawned task).
#[derive(Debug)]
#[must_use = "dropping the guard releases it"]
pub struct Guard {
    client: Client,
    node: String,
    session_id: i64,
    lost: LostSignal,
    shared: Arc<GuardShared>,
    monitor: Option<tokio::task::JoinHandle<()>>,
    released: bool,
}

impl Guard {
    /// The holder's node (relative to the client's chroot).
    pub fn path(&self) -> &str {
        &self.node
    }

    /// The session the node belongs to.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// Whether it is still held, as far as this client can know.
    pub fn is_held(&self) -> bool {
        self.lost.reason().is_none()
    }

    /// The same as [`is_held`](Self::is_held), under the name an election's latch API uses.
    pub fn has_leadership(&self) -> bool {
        self.is_held()
    }

    /// Resolves when the guard is lost.
    pub async fn lost(&self) -> LostReason {
        self.lost.lost().await
    }

    /// A cloneable handle on the lost signal, to hand to the task doing the work.
    pub fn lost_signal(&self) -> LostSignal {
        self.lost.clone()
    }

    /// Runs `work` while the guard is held: its output, or `Err(reason)` if the guard is lost
    /// first (then `work` is dropped at its current await point; at once if the guard is
    /// already lost, without polling `work`). The guard stays as it is: release it after.
    ///
    /// "Do X while holding, stop when lost": pair it with [`fenced_multi`](Self::fenced_multi)
    /// for the writes, since the loss is only noticed at `work`'s next await point.
    ///
    /// # Cancel safety
    /// Dropping the returned future drops `work`; the guard is untouched.
    pub async fn run_while_held<F: std::future::Future>(
        &self,
        work: F,
    ) -> std::result::Result<F::Output, LostReason> {
        if let Some(reason) = self.lost.reason() {
            return Err(reason);
        }
        tokio::select! {
            biased;
            reason = self.lost() => Err(reason),
            out = work => Ok(out),
        }
    }

    /// A `check` op on the holder's node: put it first in a [`Client::multi`] and the
    /// transaction only applies while the node exists (our session is alive and nobody
    /// deleted it).
    pub fn fence(&self) -> Op {
        Op::check(self.node.clone(), None)
    }

    /// Runs `ops` as one transaction, fenced: prefixed with [`fence`](Self::fence), refused
    /// if the guard is already lost, and never queued while the client is disconnected. So a
    /// success means the node existed when the transaction applied, and it came back before any
    /// loss of this guard was signalled.
    ///
    /// # Errors
    /// [`GuardError::Lost`] with the reason if the guard is already lost (nothing was sent;
    /// [`GuardError::is_session_dead`] is true only for [`LostReason::SessionLost`]);
    /// [`GuardError::Zk`] with [`Error::TransactionFailed`] `index` 0 if the fence failed (the
    /// node is gone; op `i` of `ops` is index `i + 1`), [`Error::NotConnected`] if
    /// disconnected, or any other error of [`Client::multi`].
    pub async fn fenced_multi(
        &self,
        ops: Vec<Op>,
    ) -> std::result::Result<Vec<zk_core::OpResult>, GuardError> {
        if let Some(reason) = self.lost.reason() {
            return Err(GuardError::Lost(reason));
        }
        let mut all = Vec::with_capacity(ops.len() + 1);
        all.push(self.fence());
        all.extend(ops);
        let mut res = self.client.fail_if_disconnected().multi(all).await?;
        res.remove(0);
        Ok(res)
    }

    /// Releases: deletes the node (retried through connection loss until it succeeds or the
    /// session is known dead).
    ///
    /// # Errors
    /// Only unexpected server errors; a node already gone (session expired) is fine.
    pub async fn release(mut self) -> Result<()> {
        self.stop_monitor(LostReason::Released);
        let r = delete_until_done(&self.client, &self.node, self.session_id).await;
        // only now: if this future is dropped before the delete finished, Drop cleans up
        self.released = true;
        self.shared.free_gate();
        r
    }

    fn stop_monitor(&mut self, reason: LostReason) {
        if let Some(m) = self.monitor.take() {
            m.abort();
        }
        self.shared.lose(reason);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.stop_monitor(LostReason::Released);
        let client = self.client.clone();
        let node = std::mem::take(&mut self.node);
        let sid = self.session_id;
        let shared = self.shared.clone();
        spawn_cleanup("guard dropped", async move {
            if let Err(e) = delete_until_done(&client, &node, sid).await {
                warn!(node = %node, error = %e, "release after drop failed");
            }
            shared.free_gate();
        });
    }
}

/// What became of a `run` ([`Lock::run`](crate::Lock::run),
/// [`Semaphore::run`](crate::Semaphore::run), [`Election::run`](crate::Election::run)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome<T> {
    /// The task finished while held; the guard was then released.
    Finished(T),
    /// The guard was lost first; the task was cancelled (dropped).
    Lost(LostReason),
}

/// Runs `task` while `guard` is held, then releases it (if still held) or leaves its node to
/// the background (if lost): the body of every recipe's `run`.
pub(crate) async fn run_held<T, F, Fut>(guard: Guard, task: F) -> Result<RunOutcome<T>>
where
    F: FnOnce(LostSignal) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let signal = guard.lost_signal();
    let outcome = match guard.run_while_held(task(signal)).await {
        Ok(out) => RunOutcome::Finished(out),
        Err(reason) => RunOutcome::Lost(reason),
    };
    if guard.is_held() {
        guard.release().await?;
    } else {
        // lost: giving the node up may need a reconnect; the guard's drop does it in the
        // background, so the caller hears of the loss at once
        drop(guard);
    }
    Ok(outcome)
}

fn spawn_cleanup(why: &'static str, fut: impl std::future::Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn(fut);
        }
        Err(_) => warn!(
            why,
            "no tokio runtime to clean up on; the node stays until the session ends"
        ),
    }
}

/// Waits (bounded by `deadline`) until the client is connected.
async fn wait_connected(client: &Client, deadline: Option<Instant>) -> Result<()> {
    let within = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    client.wait_for_state(State::Connected, within).await
}

/// Deletes `node` until it is gone, through connection loss, as long as session `sid` lives.
pub(crate) async fn delete_until_done(client: &Client, node: &str, sid: i64) -> Result<()> {
    loop {
        match client.delete(node, None).await {
            Ok(()) | Err(Error::NoNode) => return Ok(()),
            Err(e) if e.is_session_dead() => return Ok(()),
            Err(e) if e.is_retryable() => {
                if client.session_id() != sid && client.state() == State::Connected {
                    // a new session: the old one's ephemeral nodes are gone
                    return Ok(());
                }
                let _ =
                    wait_connected(client, Some(Instant::now() + Duration::from_secs(60))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Deletes every child of `parent` whose name starts with `prefix` and that belongs to session
/// `sid` (or to no live session of ours): what an interrupted create may have left.
pub(crate) async fn delete_by_prefix(
    client: &Client,
    parent: &str,
    prefix: &str,
    sid: i64,
) -> Result<()> {
    loop {
        let res = async {
            let children = client.get_children(parent).await?;
            for c in children.iter().filter(|c| c.starts_with(prefix)) {
                let p = child_path(parent, c);
                match client.delete(&p, None).await {
                    Ok(()) | Err(Error::NoNode) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        .await;
        match res {
            Ok(()) | Err(Error::NoNode) => return Ok(()),
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

pub(crate) fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Settings of one queue (one recipe handle).
#[derive(Debug, Clone)]
pub(crate) struct QueueSpec {
    pub client: Client,
    pub parent: String,
    /// `<uuid hex><MARK>`.
    pub prefix: String,
    pub exclusive: bool,
    pub data: Vec<u8>,
    pub policy: LostPolicy,
    /// Local gate: one acquisition at a time per handle.
    pub gate: Arc<Mutex<()>>,
}

/// How long an acquisition that gives up (deadline, try mode, error) waits for its own cleanup
/// before returning and leaving the rest to the background: the slack past the deadline that
/// the recipes promise.
pub(crate) const CLEANUP_SLACK: Duration = Duration::from_millis(500);

/// Tracks what an in-progress acquisition may have left on the server, and removes it if the
/// acquisition is dropped or gives up. The handle's gate travels with the cleanup, so the
/// handle's next acquisition starts only once it is done.
struct Pending {
    client: Client,
    parent: String,
    prefix: String,
    node: Option<String>,
    sid: i64,
    /// Whether a create may have reached the server: nothing to clean up otherwise.
    sent: bool,
    armed: bool,
    gate: Option<OwnedMutexGuard<()>>,
}

impl Pending {
    /// Starts the cleanup in a spawned task (nothing if no create was sent) and waits for it at
    /// most [`CLEANUP_SLACK`]; if the client is cut off, the cleanup goes on in the background
    /// (retrying through connection loss while the session lives) and the caller returns.
    async fn give_up(mut self) {
        if let Some(task) = self.spawn_cleanup("acquisition gave up") {
            let _ = tokio::time::timeout(CLEANUP_SLACK, task).await;
        }
    }

    fn spawn_cleanup(&mut self, why: &'static str) -> Option<tokio::task::JoinHandle<()>> {
        if !std::mem::take(&mut self.armed) || !self.sent {
            return None; // the gate (if any) is dropped with self
        }
        let client = self.client.clone();
        let parent = std::mem::take(&mut self.parent);
        let prefix = std::mem::take(&mut self.prefix);
        let node = self.node.take();
        let sid = self.sid;
        let gate = self.gate.take();
        debug!(?node, why, "cleaning up an acquisition");
        let h = tokio::runtime::Handle::try_current().ok()?;
        Some(h.spawn(async move {
            let r = match node {
                Some(n) => delete_until_done(&client, &n, sid).await,
                None => delete_by_prefix(&client, &parent, &prefix, sid).await,
            };
            if let Err(e) = r {
                warn!(error = %e, why, "cleanup of an acquisition failed");
            }
            drop(gate);
        }))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.armed && self.sent && tokio::runtime::Handle::try_current().is_err() {
            warn!("no tokio runtime to clean up on; the node stays until the session ends");
        }
        let _ = self.spawn_cleanup("acquisition dropped");
    }
}

/// What to do at one point of the queue.
enum Next {
    Acquired,
    /// Wait on this node (the nearest blocker).
    Wait(String),
    /// Our node is gone (session lost, or deleted): create a new one.
    Recreate,
}

/// How an acquisition attempt is bounded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    Blocking(Option<Instant>),
    Try,
}

/// Where node `ours` stands: an exclusive contender is blocked by every contender before it, a
/// shared one only by exclusive ones; it waits on the nearest blocker (one watcher per node:
/// no herd).
fn decide(exclusive: bool, children: &[String], ours: &str) -> Next {
    let all = sorted_contenders(children);
    let Some(me) = all.iter().position(|c| c.name == ours) else {
        return Next::Recreate;
    };
    // the nearest contender ahead of us (in wrap-aware queue order) that blocks us
    let blocker = all[..me].iter().rev().find(|c| exclusive || c.exclusive);
    match blocker {
        None => Next::Acquired,
        Some(b) => Next::Wait(b.name.clone()),
    }
}

impl QueueSpec {
    /// Creates our contender node, recovering from an ambiguous create by finding the node
    /// with our prefix that belongs to our session (and deleting any with our prefix that does
    /// not: a leftover of an earlier session of ours).
    async fn create_node(
        &self,
        c: &Client,
        pending: &mut Pending,
        deadline: Option<Instant>,
    ) -> Result<String> {
        let create_path = child_path(&self.parent, &self.prefix);
        loop {
            pending.sid = c.session_id();
            let sent_before = pending.sent;
            pending.sent = true;
            let r = c
                .create(&create_path, &self.data, CreateMode::EphemeralSequential)
                .await;
            if matches!(
                r,
                Err(Error::Timeout { sent: false }) | Err(Error::NotConnected)
            ) {
                // this create never left the client
                pending.sent = sent_before;
            }
            match r {
                Ok(p) => return Ok(p),
                Err(e) if transient(&e) || matches!(e, Error::ConnectionLoss) => {
                    debug!(error = %e, "contender create interrupted; looking for our node");
                    wait_connected(c, deadline).await?;
                    if let Some(p) = self.find_ours(c).await? {
                        return Ok(p);
                    }
                }
                Err(Error::SessionExpired) => {
                    // a new session may follow; try again in it
                    wait_connected(c, deadline).await?;
                }
                Err(Error::NoNode) => {
                    // the parent vanished meanwhile
                    c.ensure_path(&self.parent).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn find_ours(&self, c: &Client) -> Result<Option<String>> {
        let sid = c.session_id();
        let children = c.get_children(&self.parent).await?;
        let mut found = None;
        for name in children.iter().filter(|n| n.starts_with(&self.prefix)) {
            let p = child_path(&self.parent, name);
            match c.exists(&p).await? {
                Some(st) if st.ephemeral_owner == sid && found.is_none() => found = Some(p),
                Some(st) => {
                    // kazoo adopts by prefix alone; a node of a dead session is not ours
                    info!(node = %p, owner = format_args!("{:#x}", st.ephemeral_owner), "deleting a stale contender node with our prefix");
                    match c.delete(&p, None).await {
                        Ok(()) | Err(Error::NoNode) => {}
                        Err(e) => return Err(e),
                    }
                }
                None => {}
            }
        }
        Ok(found)
    }

    /// Joins the queue and waits for our turn. `Ok(None)`: the deadline passed (or, in try mode,
    /// it was not free); nothing of ours is left on the server in that case.
    pub(crate) async fn acquire(&self, mode: Mode) -> Result<Option<Guard>> {
        let deadline = match mode {
            Mode::Blocking(d) => d,
            Mode::Try => None,
        };
        // one acquisition per handle at a time
        let gate = match deadline {
            None => self.gate.clone().lock_owned().await,
            Some(d) => match tokio::time::timeout_at(d, self.gate.clone().lock_owned()).await {
                Ok(g) => g,
                Err(_) => return Ok(None),
            },
        };
        let c = match deadline {
            Some(d) => self.client.with_deadline(d),
            None => self.client.clone(),
        };
        // a wake-up source while waiting; the guard's monitor gets its own subscription,
        // taken after the final ownership check
        let states = self.client.state_stream();
        let mut pending = Pending {
            client: self.client.clone(),
            parent: self.parent.clone(),
            prefix: self.prefix.clone(),
            node: None,
            sid: self.client.session_id(),
            sent: false,
            armed: true,
            gate: Some(gate),
        };
        let r = self
            .acquire_inner(&c, &mut pending, mode, deadline, states)
            .await;
        match r {
            Ok(Some(g)) => Ok(Some(g)),
            Ok(None) | Err(Error::Timeout { .. }) => {
                pending.give_up().await;
                Ok(None)
            }
            Err(e) => {
                pending.give_up().await;
                Err(e)
            }
        }
    }

    async fn acquire_inner(
        &self,
        c: &Client,
        pending: &mut Pending,
        mode: Mode,
        deadline: Option<Instant>,
        mut states: StateStream,
    ) -> Result<Option<Guard>> {
        retry_transient(c, deadline, || c.ensure_path(&self.parent)).await?;
        'session: loop {
            pending.node = None;
            let node = self.create_node(c, pending, deadline).await?;
            pending.node = Some(node.clone());
            let name = node.rsplit('/').next().unwrap_or_default().to_owned();
            debug!(node = %node, "joined the queue");
            loop {
                let children = match c.get_children(&self.parent).await {
                    Ok(ch) => ch,
                    Err(e) if transient(&e) => {
                        wait_connected(c, deadline).await?;
                        continue;
                    }
                    Err(Error::SessionExpired) => continue 'session,
                    Err(e) => return Err(e),
                };
                let next = decide(self.exclusive, &children, &name);
                // a waiter must not keep the whole list while it waits (N waiters x N names)
                drop(children);
                match next {
                    Next::Recreate => {
                        debug!(node = %node, "our node is gone; joining again");
                        continue 'session;
                    }
                    Next::Acquired => {
                        // it must be ours, in the current session
                        let sid = c.session_id();
                        match c.exists(&node).await {
                            Ok(Some(st)) if st.ephemeral_owner == sid => {
                                let guard = new_guard(
                                    &self.client,
                                    node.clone(),
                                    sid,
                                    self.policy,
                                    pending.gate.take(),
                                );
                                pending.armed = false;
                                return Ok(Some(guard));
                            }
                            Ok(_) | Err(Error::SessionExpired) => continue 'session,
                            Err(e) if transient(&e) => {
                                wait_connected(c, deadline).await?;
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Next::Wait(blocker) => {
                        if let Mode::Try = mode {
                            return Ok(None);
                        }
                        let bp = child_path(&self.parent, &blocker);
                        match c.get_data_watch(&bp).await {
                            Ok((_, _, w)) => {
                                // any wake-up means: look again
                                tokio::select! {
                                    _ = w => {}
                                    s = states.next() => {
                                        if s.is_none() {
                                            return Err(Error::Closed);
                                        }
                                    }
                                    _ = sleep_until_opt(deadline) => return Ok(None),
                                }
                            }
                            Err(Error::NoNode) => {}
                            Err(e) if transient(&e) => wait_connected(c, deadline).await?,
                            Err(Error::SessionExpired) => continue 'session,
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
    }
}

/// A guard on `node`, which must exist and belong to the client's current session.
pub(crate) async fn guard_for_node(
    client: &Client,
    node: String,
    policy: LostPolicy,
) -> Result<Guard> {
    let sid = client.session_id();
    match client.exists(&node).await? {
        Some(st) if st.ephemeral_owner == sid => Ok(new_guard(client, node, sid, policy, None)),
        _ => Err(Error::SessionExpired),
    }
}

/// A guard on `node`, just found to belong to session `sid`. Its monitor judges only what
/// happens from now on: the state stream is subscribed here, after the ownership check, and
/// the monitor starts from the current status. (A stream subscribed earlier would hold
/// transitions from before the check, e.g. a blip or the old session's expiry while the
/// acquisition was under way, and the guard would be "lost at birth".) A blip between the
/// check and this subscription that ended in the same session is not seen, and need not be:
/// the node outlived it.
fn new_guard(
    client: &Client,
    node: String,
    sid: i64,
    policy: LostPolicy,
    gate: Option<OwnedMutexGuard<()>>,
) -> Guard {
    let states = client.state_stream();
    let (tx, rx) = watch::channel(None);
    let shared = Arc::new(GuardShared {
        lost_tx: tx,
        gate: std::sync::Mutex::new(gate),
    });
    let monitor = tokio::spawn(monitor(
        client.clone(),
        node.clone(),
        sid,
        policy,
        states,
        shared.clone(),
    ));
    debug!(node = %node, "acquired");
    Guard {
        client: client.clone(),
        node,
        session_id: sid,
        lost: LostSignal { rx },
        shared,
        monitor: Some(monitor),
        released: false,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Runs `f` until it succeeds or fails with a non-transient error, waiting for the connection
/// between tries.
pub(crate) async fn retry_transient<T, F, Fut>(
    c: &Client,
    deadline: Option<Instant>,
    mut f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    loop {
        match f().await {
            Err(e) if transient(&e) || matches!(e, Error::SessionExpired) => {
                wait_connected(c, deadline).await?
            }
            other => return other,
        }
    }
}

/// An error worth trying again after waiting for the connection. Not `Timeout`: inside a
/// deadline-bounded acquisition it means the deadline passed, and waiting for a connection
/// that is already up would spin.
pub(crate) fn transient(e: &Error) -> bool {
    e.is_retryable() && !matches!(e, Error::Timeout { .. })
}

/// Watches what can take a guard away (session state and the node itself), signals the loss,
/// then gives the guard up: refines a suspension into a session loss if that is what it was,
/// deletes the node (if the session still lives) and frees the handle's gate. Aborted when the
/// guard is released or dropped.
async fn monitor(
    client: Client,
    node: String,
    sid: i64,
    policy: LostPolicy,
    mut states: StateStream,
    shared: Arc<GuardShared>,
) {
    let reason = watch_until_lost(&client, &node, sid, policy, &mut states).await;
    warn!(node = %node, %reason, "lost");
    shared.lose(reason);
    if reason == LostReason::Suspended {
        // judged before the session's fate was known: wait for it
        loop {
            let st = client.status();
            if st.session_id != sid || st.state == State::Lost {
                shared.refine_to_session_lost();
                break;
            }
            if st.state == State::Connected {
                break;
            }
            match states.next().await {
                None => {
                    shared.refine_to_session_lost();
                    break;
                }
                Some(s) if s.session_id != sid || s.state == State::Lost => {
                    shared.refine_to_session_lost();
                    break;
                }
                Some(s) if s.state == State::Connected => break,
                Some(_) => {}
            }
        }
    }
    drop(states);
    // a lost guard is given up: its node must not keep others (or its own handle) waiting
    if let Err(e) = delete_until_done(&client, &node, sid).await {
        warn!(node = %node, error = %e, "deleting the node of a lost guard failed");
    }
    shared.free_gate();
}

/// How the monitor judges one state transition.
fn judge(s: Option<&Status>, sid: i64, policy: LostPolicy) -> Option<LostReason> {
    let Some(s) = s else {
        return Some(LostReason::SessionLost); // the client is gone
    };
    if s.session_id != sid || s.state == State::Lost {
        return Some(LostReason::SessionLost);
    }
    if s.state == State::Suspended && policy == LostPolicy::Suspended {
        return Some(LostReason::Suspended);
    }
    None
}

/// Waits until the guard is lost, and says why.
async fn watch_until_lost(
    client: &Client,
    node: &str,
    sid: i64,
    policy: LostPolicy,
    states: &mut StateStream,
) -> LostReason {
    // the state may have moved on between the ownership check and the subscription
    if let Some(r) = judge(Some(&client.status()), sid, policy) {
        return r;
    }
    // never queued while disconnected: a disconnect shows in the state stream instead
    let fc = client.fail_if_disconnected();
    let mut backoff = Duration::from_millis(100);
    loop {
        let watch = match fc.exists_watch(node).await {
            Ok((Some(_), w)) => {
                backoff = Duration::from_millis(100);
                Some(w)
            }
            Ok((None, _)) => return LostReason::NodeDeleted,
            Err(Error::SessionExpired) | Err(Error::Closed) | Err(Error::AuthFailed) => {
                return LostReason::SessionLost
            }
            Err(e) => {
                // disconnected, a request timeout, NoAuth...: try again (after a state change
                // or a pause), or the node's deletion would go unnoticed
                debug!(node = %node, error = %e, "watching our node failed; trying again");
                None
            }
        };
        let wait = async {
            match watch {
                Some(w) => Some(w.await),
                None => {
                    tokio::time::sleep(backoff).await;
                    None
                }
            }
        };
        tokio::select! {
            ev = wait => match ev {
                Some(Ok(e)) if e.event_type == EventType::NodeDeleted => {
                    return LostReason::NodeDeleted
                }
                Some(Ok(_)) => {} // data change on our node: re-arm
                Some(Err(_)) => return LostReason::SessionLost,
                None => backoff = (backoff * 2).min(Duration::from_secs(2)),
            },
            s = states.next() => {
                if let Some(r) = judge(s.as_ref(), sid, policy) {
                    return r;
                }
                // otherwise look again: a pending watch survives a reconnect in the session,
                // and one that failed is re-armed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_parse_as_signed_32_bit() {
        let p = |s: &str| parse_contender(s).map(|c| (c.seq, c.exclusive));
        assert_eq!(p("abc__lock__0000000000"), Some((0, true)));
        assert_eq!(p("abc__lock__2147483647"), Some((i32::MAX, true)));
        assert_eq!(p("abc__rlock__-2147483648"), Some((i32::MIN, false)));
        assert_eq!(p("abc__lock__-000000005"), Some((-5, true)));
        assert_eq!(p("abc__lock__000000005"), None);
        assert_eq!(p("abc__lock__00000000055"), None);
        assert_eq!(p("abc__lock__00000x0005"), None);
        assert_eq!(p("abc__lease__0000000001"), None);
        assert_eq!(p("ready"), None);
        let names: Vec<String> = [
            "a__lock__0000000002",
            "b__rlock__-000000001",
            "x",
            "c__lock__0000000001",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let order: Vec<i32> = sorted_contenders(&names).iter().map(|c| c.seq).collect();
        assert_eq!(order, vec![-1, 1, 2]);
    }

    /// Issue 9, defect 5: sequences are the parent's cversion, a signed 32-bit counter that
    /// wraps from 2147483647 to -2147483648. A contender created after the wrap must queue
    /// behind those created before it.
    #[test]
    fn sequence_wrap_keeps_the_queue_order() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        let children = names(&[
            "w__lock__-2147483648",
            "h__lock__2147483646",
            "x__rlock__-2147483647",
            "n__lock__2147483647",
        ]);
        let order: Vec<i32> = sorted_contenders(&children).iter().map(|c| c.seq).collect();
        assert_eq!(
            order,
            vec![2147483646, 2147483647, -2147483648, -2147483647]
        );
        let w = |n: Next| match n {
            Next::Wait(b) => b,
            Next::Acquired => "acquired".into(),
            Next::Recreate => "recreate".into(),
        };
        assert_eq!(
            w(decide(true, &children, "h__lock__2147483646")),
            "acquired"
        );
        assert_eq!(
            w(decide(true, &children, "w__lock__-2147483648")),
            "n__lock__2147483647"
        );
        assert_eq!(
            w(decide(false, &children, "x__rlock__-2147483647")),
            "w__lock__-2147483648"
        );
        // negative to positive without a wrap (-1 then 0), and a queue entirely past the wrap
        let order = |v: &[&str]| -> Vec<i32> {
            sorted_contenders(&names(v)).iter().map(|c| c.seq).collect()
        };
        assert_eq!(
            order(&["b__lock__0000000000", "a__lock__-000000001"]),
            vec![-1, 0]
        );
        assert_eq!(
            order(&["b__lock__-2147483647", "a__lock__-2147483648"]),
            vec![-2147483648, -2147483647]
        );
        // a queue spanning just under 2^31 still orders by creation
        assert_eq!(
            order(&["a__lock__1000000000", "b__lock__-1147483649"]),
            vec![1000000000, -1147483649]
        );
    }

    #[test]
    fn readers_and_writers_block_as_kazoo_orders_them() {
        // W1(0) R1(1) W2(2) R2(3): R1 waits on W1, W2 on R1, R2 on W2
        let children: Vec<String> = [
            "w1__lock__0000000000",
            "r1__rlock__0000000001",
            "w2__lock__0000000002",
            "r2__rlock__0000000003",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let w = |n: Next| match n {
            Next::Wait(b) => b,
            Next::Acquired => "acquired".into(),
            Next::Recreate => "recreate".into(),
        };
        assert_eq!(
            w(decide(true, &children, "w1__lock__0000000000")),
            "acquired"
        );
        assert_eq!(
            w(decide(false, &children, "r1__rlock__0000000001")),
            "w1__lock__0000000000"
        );
        assert_eq!(
            w(decide(true, &children, "w2__lock__0000000002")),
            "r1__rlock__0000000001"
        );
        assert_eq!(
            w(decide(false, &children, "r2__rlock__0000000003")),
            "w2__lock__0000000002"
        );
        assert_eq!(
            w(decide(false, &children, "gone__rlock__0000000009")),
            "recreate"
        );
        // a second reader right after a reader is not blocked by it
        assert_eq!(
            w(decide(false, &children[..2], "r1__rlock__0000000001")),
            "w1__lock__0000000000"
        );
    }
}
