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
//!
//! With [`Layout::Curator`] a candidate is a Curator 5 `LeaderLatch` participant: node
//! `P/_c_<uuid>-latch-<seq>` (data = the identifier), `P` a container, every child of `P` a
//! candidate ordered by the text after the last `latch-`; the first leads, the others watch
//! their immediate predecessor, and a candidate whose node is gone creates a new one.

use crate::guard::{run_held, Guard, LostPolicy, LostSignal, RunOutcome};
use crate::lock::Lock;
use crate::naming::{Layout, Role};
use crate::queue::contenders;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tracing::debug;
use zk_core::{Client, Result};

/// A candidate in the election at a path.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use zk_recipes::Election;
/// let election = Election::new(&client, "/election/scheduler", "node-a");
/// // latch style: wait to lead, work while leading, step down
/// let leadership = election.acquire().await?;
/// while leadership.is_held() {
///     // ... schedule jobs, each write fenced with leadership.fence() ...
///     # break;
/// }
/// leadership.release().await?; // resign
///
/// // or run a task only while leader; it is cancelled if leadership is lost, and with
/// // auto_requeue the candidate queues again after a loss and runs the task again
/// let outcome = election.auto_requeue(true).run(|_lost| async { /* lead */ 42 }).await?;
/// # let _ = outcome;
/// # Ok(()) }
/// ```
///
/// # Cancel safety
/// Dropping an `acquire*` or `run` future leaves no node behind.
#[derive(Debug, Clone)]
pub struct Election {
    lock: Lock,
    client: Client,
    path: String,
    auto_requeue: bool,
}

/// One candidate of an election, as [`Election::participants`] lists it (Curator's
/// `Participant`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Participant {
    /// The identifier the candidate registered with (its node's data).
    pub id: String,
    /// Whether it is the leader (the first in sequence order) at the time of listing.
    pub is_leader: bool,
}

impl Election {
    /// A candidate at `path`; `identifier` is how other candidates see it.
    pub fn new(client: &Client, path: &str, identifier: impl Into<String>) -> Election {
        Election {
            lock: Lock::with_role(client, path, identifier.into(), Role::Latch),
            client: client.clone(),
            path: path.to_owned(),
            auto_requeue: false,
        }
    }

    /// When leadership counts as lost (default: as soon as the connection is suspended).
    pub fn lost_policy(mut self, policy: LostPolicy) -> Self {
        self.lock = self.lock.lost_policy(policy);
        self
    }

    /// Whose node layout and queue order to use (default [`Layout::Kazoo`]); with
    /// [`Layout::Curator`] the candidate is a Curator `LeaderLatch` participant (see the
    /// module docs). Every candidate on the path must use the same layout.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.lock = self.lock.layout(layout);
        self
    }

    /// With `true`, [`run`](Self::run) queues again after losing leadership and runs the task
    /// again once it leads (Curator's `autoRequeue`); it returns only when a task finishes
    /// or on an error. Default `false`: `run` returns [`RunOutcome::Lost`].
    pub fn auto_requeue(mut self, yes: bool) -> Self {
        self.auto_requeue = yes;
        self
    }

    /// Waits until this candidate leads, however long it takes (as [`Lock::acquire`]:
    /// reconnects, a new session and zk-core's own request timeouts are waited out).
    ///
    /// # Errors
    /// Server errors; the session lost for good.
    #[doc(alias = "campaign")]
    pub async fn acquire(&self) -> Result<Guard> {
        self.lock.acquire().await
    }

    /// Waits until this candidate leads, at most `timeout`; `Ok(None)` if it did not (and it is
    /// no longer a candidate). A timeout too long to represent as an instant (say
    /// `Duration::MAX`) is a deadline in the far future.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<Guard>> {
        self.lock.acquire_timeout(timeout).await
    }

    /// Like [`acquire_timeout`](Self::acquire_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_until(&self, deadline: Instant) -> Result<Option<Guard>> {
        self.lock.acquire_until(deadline).await
    }

    /// Leads if no other candidate is queued; `Ok(None)` otherwise (and it is no candidate).
    /// `Ok(None)` at once too while this candidate already leads (its guard is held).
    ///
    /// # Errors
    /// As [`Lock::try_acquire`].
    pub async fn try_acquire(&self) -> Result<Option<Guard>> {
        self.lock.try_acquire().await
    }

    /// Becomes leader, runs `task` while leading, then resigns. If leadership is lost first the
    /// task is dropped and, without [`auto_requeue`](Self::auto_requeue),
    /// [`RunOutcome::Lost`] says why; with it, the candidate queues again and `task` is called
    /// again once it leads. The task gets the lost signal too, to check before irreversible
    /// steps.
    ///
    /// After a loss `run` returns (or queues again) at once: the node is deleted in the
    /// background (once the client is back, if the session still lives), not while the caller
    /// waits. After the task finished it resigns before returning, as long as leadership is
    /// still held.
    ///
    /// # Errors
    /// Those of [`acquire`](Self::acquire), and of the resignation after the task finished.
    ///
    /// # Cancel safety
    /// Dropping the future drops the task and resigns in the background.
    pub async fn run<T, F, Fut>(&self, mut task: F) -> Result<RunOutcome<T>>
    where
        F: FnMut(LostSignal) -> Fut,
        Fut: Future<Output = T>,
    {
        loop {
            let guard = self.acquire().await?;
            match run_held(guard, &mut task).await? {
                RunOutcome::Lost(reason) if self.auto_requeue => {
                    debug!(path = %self.path, %reason, "leadership lost; queueing again");
                }
                outcome => return Ok(outcome),
            }
        }
    }

    /// The candidates in sequence order; the first is the leader. A snapshot. Python (kazoo)
    /// candidates appear too.
    ///
    /// # Errors
    /// Server and connection errors of listing the candidates.
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        Ok(
            contenders(&self.client, &self.path, self.lock.layout_of(), Role::Latch)
                .await?
                .into_iter()
                .enumerate()
                .map(|(i, id)| Participant {
                    id,
                    is_leader: i == 0,
                })
                .collect(),
        )
    }

    /// The identifier of the current leader, `None` if there is no candidate. A snapshot: it may
    /// change as soon as it is returned (only a [`Guard`] says whether *we* lead).
    ///
    /// # Errors
    /// Server and connection errors of listing the candidates.
    pub async fn leader(&self) -> Result<Option<String>> {
        Ok(
            contenders(&self.client, &self.path, self.lock.layout_of(), Role::Latch)
                .await?
                .into_iter()
                .next(),
        )
    }

    /// The election path.
    pub fn path(&self) -> &str {
        &self.path
    }
}
