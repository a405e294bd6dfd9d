//! The guard a holder gets (lock, read/write lock, semaphore lease, leadership): its lost
//! signal and the monitor that drives it, fenced writes, release, and `run`.

use crate::plumbing::{delete_until_done, spawn_cleanup};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, OwnedMutexGuard};
use tracing::{debug, warn};
use zk_core::{Client, Error, EventType, Op, Result, State, StateStream, Status};

/// When a holder should consider what it holds lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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
#[non_exhaustive]
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

/// A cloneable signal that resolves when a guard is lost. A clone outlives its guard: a
/// [`Suspended`](LostReason::Suspended) reason is still refined to
/// [`SessionLost`](LostReason::SessionLost) after the guard is dropped or released, as long
/// as the guard is giving its node up.
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

impl LostSignal {
    /// A signal lost as soon as any of `signals` is (a multi-lock's): the first member's
    /// reason, refined to [`SessionLost`](LostReason::SessionLost) when a member says so. Its
    /// state is computed at once (a member already lost makes it lost at birth), then a task
    /// follows the members until every one of them ended or every clone of this one is gone.
    pub(crate) fn any_of(signals: &[LostSignal]) -> LostSignal {
        let mut rxs: Vec<_> = signals.iter().map(|s| s.rx.clone()).collect();
        let (tx, rx) = watch::channel(None);
        combine_into(&tx, &rxs);
        if rxs.is_empty() {
            return LostSignal { rx };
        }
        let task = async move {
            while !rxs.is_empty() {
                let changed =
                    futures_util::future::select_all(rxs.iter_mut().map(|r| Box::pin(r.changed())));
                let (res, i, _) = tokio::select! {
                    c = changed => c,
                    _ = tx.closed() => return,
                };
                if res.is_err() {
                    // that member's guard and monitor are gone: its last word was seen
                    let gone = rxs.swap_remove(i);
                    combine_into(&tx, std::slice::from_ref(&gone));
                }
                combine_into(&tx, &rxs);
            }
        };
        if spawn_cleanup("combined lost signal", task).is_none() {
            warn!("no runtime: a combined lost signal does not follow its members");
        }
        LostSignal { rx }
    }
}

/// Folds the members' reasons into `tx`: the first one sticks, a suspension is refined.
fn combine_into(
    tx: &watch::Sender<Option<LostReason>>,
    members: &[watch::Receiver<Option<LostReason>>],
) {
    for m in members {
        let r = *m.borrow();
        let Some(r) = r else { continue };
        tx.send_if_modified(|cur| match *cur {
            None => {
                *cur = Some(r);
                true
            }
            Some(LostReason::Suspended) if r == LostReason::SessionLost => {
                *cur = Some(r);
                true
            }
            _ => false,
        });
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

    /// The reason so far.
    fn reason(&self) -> Option<LostReason> {
        *self.lost_tx.borrow()
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
///   the lost guard itself is still alive. A guard lost because its node was deleted
///   ([`LostReason::NodeDeleted`]) or with its session ([`LostReason::SessionLost`]) deletes
///   nothing, then or later (on release or drop): the node is gone, or goes with the
///   session.
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
    /// session is known dead). A guard already lost is given up as after any loss (see the
    /// type's docs): this waits until that is done, and deletes nothing after a
    /// [`NodeDeleted`](LostReason::NodeDeleted) or [`SessionLost`](LostReason::SessionLost).
    ///
    /// # Errors
    /// Only unexpected server errors; a node already gone (session expired) is fine.
    pub async fn release(mut self) -> Result<()> {
        if self.giving_up() {
            if let Some(m) = self.monitor.take() {
                // dropping this future here leaves the monitor running: it finishes the job
                let _ = m.await;
            }
            self.released = true;
            self.shared.free_gate();
            return Ok(());
        }
        self.stop_monitor(LostReason::Released);
        let r = if node_may_be_ours(self.shared.reason()) {
            delete_until_done(&self.client, &self.node, self.session_id).await
        } else {
            Ok(())
        };
        // only now: if this future is dropped before the delete finished, Drop cleans up
        self.released = true;
        self.shared.free_gate();
        r
    }

    /// Whether the monitor has signalled a loss and is giving the guard up (or has).
    fn giving_up(&self) -> bool {
        !matches!(self.shared.reason(), None | Some(LostReason::Released))
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
        if self.giving_up() {
            // the monitor finishes giving the guard up: it refines the reason for the lost
            // signals still out there, deletes the node only if it may still be ours, and
            // frees the gate (a detached task)
            self.monitor.take();
            return;
        }
        self.stop_monitor(LostReason::Released);
        if !node_may_be_ours(self.shared.reason()) {
            // lost in the meantime, to a deletion or with the session: nothing to delete
            self.shared.free_gate();
            return;
        }
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
#[non_exhaustive]
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
pub(crate) fn new_guard(
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
    if node_may_be_ours(shared.reason()) {
        if let Err(e) = delete_until_done(&client, &node, sid).await {
            warn!(node = %node, error = %e, "deleting the node of a lost guard failed");
        }
    }
    shared.free_gate();
}

/// Whether a guard lost (or not) for `reason` may still own a node at its path, so that
/// deleting the path is giving it up. Not after its deletion was seen (whatever is at the path
/// now is someone else's) nor once its session is gone (its node goes with it; zk-core closes
/// a session it gave up).
fn node_may_be_ours(reason: Option<LostReason>) -> bool {
    !matches!(
        reason,
        Some(LostReason::NodeDeleted) | Some(LostReason::SessionLost)
    )
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
