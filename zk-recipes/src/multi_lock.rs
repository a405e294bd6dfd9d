//! All or nothing over several locks (Curator's `InterProcessMultiLock`).
//!
//! A [`MultiLock`] holds a set of [`Lock`]s (any side, any layout) and takes all of them or
//! none:
//!
//! 1. The members are taken **one at a time in one global order, their paths sorted** (as
//!    text). Two multi-locks over overlapping sets, whichever order they were given in, queue
//!    for the shared members in the same order, so neither can hold one while waiting for
//!    another the other holds: no deadlock. (Curator takes its locks in the order given and
//!    relies on the caller for that; here the order is the recipe's. With Curator peers on the
//!    same locks, give their `InterProcessMultiLock` the paths sorted too.)
//! 2. Each member is an ordinary acquisition of its lock (its own queue, node, watch and
//!    ownership check), with what is left of the **one total deadline**.
//! 3. If a member cannot be had (the deadline passed, or a `try_acquire` found one taken),
//!    every member taken so far is released, and the answer is `Ok(None)`. If a member taken
//!    earlier is lost while a later one is awaited (say, at a disconnect), everything taken is
//!    released and the acquisition starts over (within the deadline).
//!
//! The [`MultiGuard`] is lost when any member guard is; its [`fences`](MultiGuard::fences) are
//! one `check` op per member node, so a fenced transaction applies only while every member
//! node exists.

use crate::guard::{Guard, GuardError, LostPolicy, LostReason, LostSignal, RunOutcome};
use crate::lock::Lock;
use crate::naming::Layout;
use crate::plumbing::{deadline_after, CLEANUP_SLACK};
use crate::queue::Mode;
use futures_util::future::select_all;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use zk_core::{Client, Error, Op, OpResult, Result};

/// Several locks taken together: all of them or none (Curator's `InterProcessMultiLock`).
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use zk_core::Op;
/// use zk_recipes::MultiLock;
///
/// // a transfer between two accounts holds both accounts' locks
/// let both = MultiLock::new(&client, ["/locks/acct-17", "/locks/acct-4"], "teller-2")?;
/// if let Some(guard) = both.acquire_timeout(Duration::from_secs(5)).await? {
///     // applies only while every member lock is still held
///     guard
///         .fenced_multi(vec![
///             Op::set_data("/accounts/17", b"90".to_vec(), None),
///             Op::set_data("/accounts/4", b"110".to_vec(), None),
///         ])
///         .await?;
///     guard.release().await?;
/// }
/// # Ok(()) }
/// ```
///
/// # Behavior
///
/// * **Order.** Members are taken in sorted path order, whatever order they were given in, so
///   multi-locks over overlapping sets never deadlock (each member is a plain lock: a
///   [`Lock`] elsewhere on a member path takes part in that member's queue as usual).
/// * **Deadlines.** `acquire_timeout` / `acquire_until` bound the whole call, every member
///   included; when the deadline passes, the members already taken are released (within
///   500 ms, the rest in the background) and the answer is `Ok(None)`. `try_acquire` does
///   not wait for anyone: a member that is taken makes it `Ok(None)`, the others released.
/// * **SUSPENDED / LOST.** The guard is lost when any member guard is: with the default
///   [`LostPolicy::Suspended`] at the first disconnect, with the session, or when a member
///   node is deleted. A lost member is given up at once, as any lost guard; the others stay
///   held until the multi-guard is released or dropped. A member lost while the acquisition
///   waits for a later one makes it release everything and start over.
/// * **Cancel safety.** Dropping an `acquire*` future at any point leaves no node behind: the
///   members taken so far are released in the background, and the member being acquired
///   cleans up as [`Lock`]'s acquisitions do.
/// * **Nested paths** (one member's path under another's, `/a` and `/a/b`). With kazoo's
///   layout they are fine: a lock's queue is the children named as contenders, and the inner
///   lock's node `b` under `/a` is not one (kazoo ignores it too). With Curator's layout every
///   child of a lock path is in its queue, in Curator's order (a name without the lock name
///   sorts by itself), so `b` is a contender of the outer lock: a name sorting before the
///   sequence numbers (`0`, `-x`, ...) blocks the outer lock for as long as the node exists
///   (an emptied container until the server's next container sweep), and Curator peers see
///   the same. A multi-lock whose Curator-layout member has another member below it is
///   refused ([`Error::InvalidArgument`]); use sibling paths.
#[derive(Debug, Clone)]
pub struct MultiLock {
    /// Sorted by path, no two on one path.
    locks: Vec<Lock>,
}

/// Whether `path` is strictly below `ancestor`.
fn is_under(path: &str, ancestor: &str) -> bool {
    ancestor == "/" && path != "/"
        || path
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl MultiLock {
    /// Exclusive locks (as [`Lock::new`], kazoo's layout) on each of `paths`, with
    /// `identifier` as every node's data.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `paths` is empty or names a path twice (the second
    /// member would wait for the first for ever), or if a member in Curator's
    /// [`Layout`](crate::Layout) has another member below its path (see the type's
    /// "Nested paths"); nothing is sent.
    pub fn new<I, S>(client: &Client, paths: I, identifier: impl Into<String>) -> Result<MultiLock>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let identifier = identifier.into();
        MultiLock::from_locks(
            paths
                .into_iter()
                .map(|p| Lock::new(client, p.as_ref(), identifier.clone())),
        )
    }

    /// A multi-lock over the given lock handles: any side ([`Lock`], or a
    /// [`ReadLock`](crate::ReadLock) / [`WriteLock`](crate::WriteLock) turned into one with
    /// `.into()`), any [`Layout`](crate::Layout), any [`LostPolicy`]. Build them from one
    /// client: fenced transactions go through the first member's (in path order).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_locks(locks: impl IntoIterator<Item = Lock>) -> Result<MultiLock> {
        let mut locks: Vec<Lock> = locks.into_iter().collect();
        if locks.is_empty() {
            return Err(Error::InvalidArgument(
                "a multi-lock needs at least one lock".into(),
            ));
        }
        locks.sort_by(|a, b| a.path().cmp(b.path()));
        if let Some(w) = locks.windows(2).find(|w| w[0].path() == w[1].path()) {
            return Err(Error::InvalidArgument(format!(
                "a multi-lock cannot hold {} twice",
                w[0].path()
            )));
        }
        // sorted: a member's descendants follow it
        for (i, outer) in locks.iter().enumerate() {
            if outer.layout_of() != Layout::Curator {
                continue;
            }
            if let Some(inner) = locks[i + 1..]
                .iter()
                .find(|l| is_under(l.path(), outer.path()))
            {
                return Err(Error::InvalidArgument(format!(
                    "a multi-lock cannot hold {} under {}, a lock in Curator's layout: every \
                     child of a Curator lock's path is in its queue, and the inner lock's node \
                     there can block it",
                    inner.path(),
                    outer.path()
                )));
            }
        }
        Ok(MultiLock { locks })
    }

    /// Sets every member's [`LostPolicy`] (default: lost as soon as the connection is
    /// suspended).
    pub fn lost_policy(self, policy: LostPolicy) -> Self {
        MultiLock {
            locks: self
                .locks
                .into_iter()
                .map(|l| l.lost_policy(policy))
                .collect(),
        }
    }

    /// The member paths, in the order they are taken (sorted).
    pub fn paths(&self) -> Vec<&str> {
        self.locks.iter().map(Lock::path).collect()
    }

    /// Waits until every member is held, however long it takes (through reconnects and
    /// session losses, as [`Lock::acquire`]).
    ///
    /// # Errors
    /// As [`Lock::acquire`]; the members taken so far are released in the background.
    ///
    /// # Cancel safety
    /// See the type's docs: no node is left behind.
    pub async fn acquire(&self) -> Result<MultiGuard> {
        self.acquire_all(Mode::Blocking(None))
            .await?
            .ok_or(Error::Timeout { sent: false })
    }

    /// Like [`acquire`](Self::acquire) with one total deadline for all members; `Ok(None)`
    /// when it passed, every member taken so far released.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<MultiGuard>> {
        self.acquire_until(deadline_after(timeout)).await
    }

    /// Like [`acquire_timeout`](Self::acquire_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_until(&self, deadline: Instant) -> Result<Option<MultiGuard>> {
        self.acquire_all(Mode::Blocking(Some(deadline))).await
    }

    /// Takes every member if none is taken by anyone else; `Ok(None)` otherwise (the members
    /// taken meanwhile released).
    ///
    /// # Errors
    /// As [`Lock::try_acquire`].
    pub async fn try_acquire(&self) -> Result<Option<MultiGuard>> {
        self.acquire_all(Mode::Try).await
    }

    /// Acquires, runs `task` while every member is held, then releases; the task is dropped
    /// and [`RunOutcome::Lost`] returned if any member is lost first (as [`Lock::run`]).
    ///
    /// # Errors
    /// Those of [`acquire`](Self::acquire), and of the release after the task finished.
    ///
    /// # Cancel safety
    /// Dropping the future drops the task and releases in the background.
    pub async fn run<T, F, Fut>(&self, task: F) -> Result<RunOutcome<T>>
    where
        F: FnOnce(LostSignal) -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.acquire().await?;
        let outcome = match guard.run_while_held(task(guard.lost_signal())).await {
            Ok(out) => RunOutcome::Finished(out),
            Err(reason) => RunOutcome::Lost(reason),
        };
        if guard.is_held() {
            guard.release().await?;
        } else {
            drop(guard); // members give themselves up in the background
        }
        Ok(outcome)
    }

    async fn acquire_all(&self, mode: Mode) -> Result<Option<MultiGuard>> {
        'attempt: loop {
            let mut held: Vec<Guard> = Vec::with_capacity(self.locks.len());
            for lock in &self.locks {
                let next = {
                    let member = lock.spec.acquire(mode);
                    let earlier_lost = any_lost(&held);
                    tokio::select! {
                        r = member => Some(r),
                        _ = earlier_lost => None,
                    }
                };
                match next {
                    Some(Ok(Some(g))) => held.push(g),
                    Some(Ok(None)) => {
                        give_back(held).await;
                        return Ok(None);
                    }
                    // dropped guards release in the background
                    Some(Err(e)) => return Err(e),
                    None => {
                        give_back(held).await;
                        continue 'attempt;
                    }
                }
            }
            if held.iter().all(Guard::is_held) {
                let client = self.locks[0].spec.client.clone();
                return Ok(Some(MultiGuard::new(client, held)));
            }
            give_back(held).await;
        }
    }
}

/// Resolves when any of `held` is lost; never if `held` is empty.
async fn any_lost(held: &[Guard]) -> LostReason {
    if held.is_empty() {
        return std::future::pending().await;
    }
    select_all(held.iter().map(|g| Box::pin(g.lost()))).await.0
}

/// Releases `held` (last taken first), waiting at most [`CLEANUP_SLACK`]: guards not
/// released by then are dropped, which releases them in the background.
async fn give_back(held: Vec<Guard>) {
    let release = async {
        for g in held.into_iter().rev() {
            let _ = g.release().await;
        }
    };
    let _ = tokio::time::timeout(CLEANUP_SLACK, release).await;
}

/// Proof of holding every member of a [`MultiLock`].
///
/// * [`members`](Self::members): the member [`Guard`]s, in path order (each with its node,
///   its own lost signal and fence).
/// * [`is_held`](Self::is_held) / [`lost`](Self::lost): false / resolves as soon as any
///   member is lost (the first member's reason; a suspension refined to a session loss).
/// * [`fences`](Self::fences) / [`fenced_multi`](Self::fenced_multi): a `check` op per member
///   node, so a transaction applies only while every member node exists.
/// * [`release`](Self::release): releases every member. Dropping the guard releases too (in
///   the background).
#[derive(Debug)]
#[must_use = "dropping the guard releases it"]
pub struct MultiGuard {
    client: Client,
    members: Vec<Guard>,
    lost: LostSignal,
}

impl MultiGuard {
    fn new(client: Client, members: Vec<Guard>) -> MultiGuard {
        let signals: Vec<LostSignal> = members.iter().map(Guard::lost_signal).collect();
        MultiGuard {
            client,
            lost: LostSignal::any_of(&signals),
            members,
        }
    }

    /// The member guards, in path order.
    pub fn members(&self) -> &[Guard] {
        &self.members
    }

    /// The member nodes, in path order.
    pub fn paths(&self) -> Vec<&str> {
        self.members.iter().map(Guard::path).collect()
    }

    /// Whether every member is still held, as far as this client can know.
    pub fn is_held(&self) -> bool {
        self.members.iter().all(Guard::is_held)
    }

    /// Why it was lost (the first member lost, refined), if it was.
    pub fn lost_reason(&self) -> Option<LostReason> {
        if self.is_held() {
            return None;
        }
        self.lost.reason().or_else(|| {
            // a member just lost, before the combined signal caught up
            self.members.iter().find_map(|g| g.lost_signal().reason())
        })
    }

    /// Resolves when any member is lost.
    pub async fn lost(&self) -> LostReason {
        self.lost.lost().await
    }

    /// A cloneable lost signal for the whole set: lost when any member is.
    pub fn lost_signal(&self) -> LostSignal {
        self.lost.clone()
    }

    /// Runs `work` while every member is held: its output, or `Err(reason)` with `work`
    /// dropped when any member is lost first (at once if one already is).
    ///
    /// # Cancel safety
    /// Dropping the returned future drops `work`; the guard is untouched.
    pub async fn run_while_held<F: Future>(
        &self,
        work: F,
    ) -> std::result::Result<F::Output, LostReason> {
        if let Some(reason) = self.lost_reason() {
            return Err(reason);
        }
        tokio::select! {
            biased;
            reason = self.lost() => Err(reason),
            out = work => Ok(out),
        }
    }

    /// One `check` op per member node, in path order: put them first in a
    /// [`Client::multi`] and the transaction applies only while every member node exists.
    pub fn fences(&self) -> Vec<Op> {
        self.members.iter().map(Guard::fence).collect()
    }

    /// Runs `ops` as one transaction behind [`fences`](Self::fences): refused if any member is
    /// already lost, never queued while disconnected. The results are those of `ops`.
    ///
    /// # Errors
    /// [`GuardError::Lost`] if a member is already lost (nothing sent); [`GuardError::Zk`]
    /// with [`Error::TransactionFailed`] whose `index` is below the number of members if a
    /// member's fence failed (`index` `i`: member `i` in path order; op `j` of `ops` is index
    /// `members + j`), or any other error of [`Client::multi`].
    pub async fn fenced_multi(
        &self,
        ops: Vec<Op>,
    ) -> std::result::Result<Vec<OpResult>, GuardError> {
        if let Some(reason) = self.lost_reason() {
            return Err(GuardError::Lost(reason));
        }
        let n = self.members.len();
        let mut all = self.fences();
        all.extend(ops);
        let mut res = self.client.fail_if_disconnected().multi(all).await?;
        res.drain(..n.min(res.len()));
        Ok(res)
    }

    /// Releases every member (last taken first), each as [`Guard::release`].
    ///
    /// # Errors
    /// The first member's error, after trying every member.
    pub async fn release(self) -> Result<()> {
        let mut first = Ok(());
        for g in self.members.into_iter().rev() {
            if let Err(e) = g.release().await {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}
