//! Leader election: the lock recipe on the election path (kazoo's `Election` layout), so Rust
//! and Python candidates take part in the same election. The leader is the contender with the
//! lowest sequence number; the others wait in sequence order, each watching the one before it.
//!
//! Leadership is reported as a [`Guard`]: `has_leadership()` turns false, and `lost()`
//! resolves, when the session is lost, when the leader's node is deleted, and (default policy)
//! as soon as the connection is suspended. A new leader can only be elected once the old
//! leader's node is gone, which for a partitioned leader means once its session expired on the
//! server: later than the old leader, which notices the suspension after two thirds of the
//! session timeout, steps down. So two candidates never both believe they lead, as far as a
//! client can know.

use crate::contender::{Guard, LostPolicy, LostReason};
use crate::lock::{contenders, Lock};
use std::future::Future;
use std::time::Duration;
use zk_core::{Client, Result};

/// A candidate in the election at a path.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use zk_recipes::Election;
/// let election = Election::new(&client, "/election/scheduler", "node-a");
/// // latch style: wait to lead, work while leading, step down
/// let leadership = election.campaign().await?;
/// while leadership.is_held() {
///     // ... schedule jobs, each write fenced with leadership.fence() ...
///     # break;
/// }
/// leadership.release().await?; // resign
///
/// // or run a task only while leader; it is cancelled if leadership is lost
/// let outcome = election.run(|_lost| async { /* lead */ 42 }).await?;
/// # let _ = outcome;
/// # Ok(()) }
/// ```
///
/// # Cancel safety
/// Dropping a `campaign*` or `run` future leaves no node behind.
#[derive(Debug, Clone)]
pub struct Election {
    lock: Lock,
    client: Client,
    path: String,
}

/// What became of [`Election::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome<T> {
    /// The task finished while we led; leadership was then given up.
    Finished(T),
    /// Leadership was lost first; the task was cancelled (dropped).
    Lost(LostReason),
}

impl Election {
    /// A candidate at `path`; `identifier` is how other candidates see it.
    pub fn new(client: &Client, path: &str, identifier: impl Into<Vec<u8>>) -> Election {
        Election {
            lock: Lock::new(client, path, identifier),
            client: client.clone(),
            path: path.to_owned(),
        }
    }

    /// When leadership counts as lost (default: as soon as the connection is suspended).
    pub fn lost_policy(mut self, policy: LostPolicy) -> Self {
        self.lock = self.lock.lost_policy(policy);
        self
    }

    /// Waits until this candidate leads.
    ///
    /// # Errors
    /// Server errors; the session lost for good.
    pub async fn campaign(&self) -> Result<Guard> {
        self.lock.acquire().await
    }

    /// Waits until this candidate leads, at most `timeout`; `Ok(None)` if it did not (and it is
    /// no longer a candidate).
    pub async fn campaign_timeout(&self, timeout: Duration) -> Result<Option<Guard>> {
        self.lock.acquire_timeout(timeout).await
    }

    /// Becomes leader, runs `task` while leading, then resigns. If leadership is lost first the
    /// task is dropped and [`RunOutcome::Lost`] says why. The task gets the lost signal too, to
    /// check before irreversible steps.
    ///
    /// After a loss `run` returns at once: the node is deleted in the background (once the
    /// client is back, if the session still lives), not while the caller waits. After the task
    /// finished it resigns before returning, as long as leadership is still held.
    ///
    /// # Errors
    /// Those of [`campaign`](Self::campaign), and of the resignation after the task finished.
    ///
    /// # Cancel safety
    /// Dropping the future drops the task and resigns in the background.
    pub async fn run<T, F, Fut>(&self, task: F) -> Result<RunOutcome<T>>
    where
        F: FnOnce(crate::contender::LostSignal) -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.campaign().await?;
        let signal = guard.lost_signal();
        let outcome = tokio::select! {
            out = task(signal.clone()) => RunOutcome::Finished(out),
            reason = signal.lost() => RunOutcome::Lost(reason),
        };
        if guard.is_held() {
            guard.release().await?;
        } else {
            // lost: resigning may need a reconnect; the guard's drop does it in the background
            drop(guard);
        }
        Ok(outcome)
    }

    /// Identifiers of the candidates (the participants) in sequence order; the first is the
    /// leader.
    pub async fn contenders(&self) -> Result<Vec<String>> {
        contenders(&self.client, &self.path, true).await
    }

    /// The identifier of the current leader, `None` if there is no candidate. A snapshot: it may
    /// change as soon as it is returned (only a [`Guard`] says whether *we* lead).
    ///
    /// # Errors
    /// Server and connection errors of listing the candidates.
    pub async fn leader(&self) -> Result<Option<String>> {
        Ok(self.contenders().await?.into_iter().next())
    }

    /// The election path.
    pub fn path(&self) -> &str {
        &self.path
    }
}
