//! Distributed locks: exclusive [`Lock`], and [`ReadLock`] / [`WriteLock`] sharing one queue.
//!
//! The algorithm is the ZooKeeper recipe, with kazoo's node layout so Rust and Python processes
//! contend for the same lock:
//!
//! 1. Create `P/<uuid>__lock__` (exclusive / writer) or `P/<uuid>__rlock__` (reader),
//!    EPHEMERAL_SEQUENTIAL, data = the identifier. The uuid is fresh for every acquisition
//!    (its first half is the handle's, see [`Lock::prefix`]): the sequence counter of `P`
//!    starts again at 0 when `P` is deleted and created again, and a node path must never come
//!    back, or the fence of a lost guard would pass again on the path of a new one.
//! 2. List the children of `P`. The blockers of a writer are all contenders with a lower
//!    sequence number; those of a reader are the writers with a lower one.
//! 3. No blocker: held. Otherwise leave a watch (`getData`) on the nearest blocker only (so a
//!    release wakes one waiter: no herd) and, on any wake-up (its event, a disconnect, a
//!    reconnect), go back to 2.
//!
//! An interrupted create is recovered by listing the children and adopting the node with the
//! acquisition's prefix *only if its ephemeral owner is our session*; a node with that prefix
//! from a dead session is deleted (kazoo adopts by prefix alone, and keeps one uuid per
//! handle for all its acquisitions).
//!
//! With [`Layout::Curator`] the same algorithm runs on Curator 5's names and order, so Rust
//! and Java (Curator) processes contend for the same lock: nodes
//! `P/_c_<uuid 8-4-4-4-12>-<lockName><seq>` (`lock-` for [`Lock`], `InterProcessMutex`;
//! `__WRIT__` / `__READ__` for [`WriteLock`] / [`ReadLock`], `InterProcessReadWriteLock`),
//! `P` created as a container; every child of `P` is in the queue, ordered by the text after
//! the last occurrence of the lock name (a read/write lock's two names share one key); a
//! writer or mutex waits on its immediate predecessor, a reader on the *first* `__WRIT__`
//! node of the queue, if that is ahead of it.

use crate::guard::{run_held, Guard, LostPolicy, LostSignal, RunOutcome};
use crate::naming::{Layout, Role};
use crate::plumbing::deadline_after;
use crate::queue::{contenders, Mode, QueueSpec};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use zk_core::{Client, Error, Result};

/// A distributed lock on a ZooKeeper path.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use zk_recipes::Lock;
/// let lock = Lock::new(&client, "/locks/nightly-report", "worker-7");
/// let guard = lock.acquire().await?;
/// // critical section: make writes conditional on still holding the lock
/// client
///     .multi(vec![guard.fence(), zk_core::Op::set_data("/report/state", b"running".to_vec(), None)])
///     .await?;
/// guard.release().await?;
/// # Ok(()) }
/// ```
///
/// One handle is one contender: tasks sharing a handle take turns (a second `acquire` on the
/// same handle waits, locally, until the first guard is released, or lost: a lost guard gives
/// its node up in the background and frees the handle). Create several handles for several
/// contenders.
///
/// # Cancel safety
/// Dropping an `acquire*` future at any point leaves no node behind: a spawned task deletes
/// whatever the interrupted acquisition created (retrying through connection loss while the
/// session lives). The next acquisition on the same handle waits for that cleanup.
#[derive(Debug, Clone)]
pub struct Lock {
    pub(crate) spec: QueueSpec,
}

impl Lock {
    /// An exclusive lock: blocks on every earlier contender, readers included (kazoo's
    /// `WriteLock`; kazoo's plain `Lock` ignores readers, this one does not). `identifier` is
    /// stored as the node's data and shown by [`contenders`](Self::contenders).
    pub fn new(client: &Client, path: &str, identifier: impl Into<String>) -> Lock {
        Lock::with_role(client, path, identifier.into(), Role::Mutex)
    }

    pub(crate) fn with_role(client: &Client, path: &str, identifier: String, role: Role) -> Lock {
        Lock {
            spec: QueueSpec {
                client: client.clone(),
                parent: path.into(),
                prefix: handle_prefix(Layout::Kazoo),
                pinned: false,
                role,
                layout: Layout::Kazoo,
                data: identifier.into_bytes().into_boxed_slice(),
                policy: LostPolicy::default(),
                gate: Arc::new(Mutex::new(())),
                parent_ready: Default::default(),
            },
        }
    }

    /// When a held guard counts as lost (default: as soon as the connection is suspended).
    pub fn lost_policy(mut self, policy: LostPolicy) -> Self {
        self.spec.policy = policy;
        self
    }

    /// Whose node layout and queue order to use (default [`Layout::Kazoo`]); with
    /// [`Layout::Curator`] this is Curator's `InterProcessMutex` (see the module docs). Every
    /// contender on the path must use the same layout.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.spec.layout = layout;
        self.spec.prefix = handle_prefix(layout);
        self.spec.pinned = false;
        self
    }

    /// Uses this uuid for the node prefix of every acquisition instead of a fresh one each
    /// time (kazoo keeps one per handle). Meant for tests that stage leftover nodes: nodes of
    /// such a handle may come back on the same path (see the module docs). Set the
    /// [`layout`](Self::layout) first.
    #[doc(hidden)]
    pub fn with_uuid(mut self, uuid: uuid::Uuid) -> Self {
        self.spec.prefix = node_prefix(uuid, self.spec.layout, self.spec.role);
        self.spec.pinned = true;
        self
    }

    /// The node layout of this handle.
    pub(crate) fn layout_of(&self) -> Layout {
        self.spec.layout
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.spec.parent
    }

    /// What the name of every node of this handle starts with: the first 16 hex digits of the
    /// uuid in `<uuid>__lock__` / `<uuid>__rlock__`; with [`Layout::Curator`], `_c_` and the
    /// uuid's first three groups (`_c_xxxxxxxx-xxxx-4xxx-`). The rest of the uuid is drawn
    /// afresh for each acquisition, so no two acquisitions of a handle share a node path.
    pub fn prefix(&self) -> &str {
        &self.spec.prefix
    }

    /// Waits until the lock is held, however long it takes (through reconnects; after a
    /// session loss it queues again in the new session). Requests that zk-core times out on
    /// its own (queued for a connection longer than the client's queue timeout, twice the
    /// session timeout, during a long outage; or the client's `request_timeout`) are waited
    /// out and tried again: only a call's own deadline ends it with a timeout answer.
    ///
    /// # Errors
    /// Server errors other than connection loss and timeouts, and the client being closed or
    /// its session lost for good.
    pub async fn acquire(&self) -> Result<Guard> {
        self.spec
            .acquire(Mode::Blocking(None))
            .await?
            .ok_or(Error::Timeout { sent: false })
    }

    /// Like [`acquire`](Self::acquire) with one total deadline across everything (predecessor
    /// changes, reconnects). `Ok(None)` when it passed (the crate-wide timeout answer). It returns at the deadline, also while
    /// disconnected, at most 500 ms later: it waits that long for its node to be deleted and
    /// leaves the rest of the cleanup to a background task (this handle's next acquisition
    /// waits for it). No node is left behind. A timeout too long to represent as an instant
    /// (say `Duration::MAX`) is a deadline in the far future.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<Guard>> {
        self.acquire_until(deadline_after(timeout)).await
    }

    /// Like [`acquire_timeout`](Self::acquire_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire); a passed deadline is `Ok(None)`, not an error (a zk-core
    /// timeout before it is waited out).
    pub async fn acquire_until(&self, deadline: Instant) -> Result<Option<Guard>> {
        self.spec.acquire(Mode::Blocking(Some(deadline))).await
    }

    /// Takes the lock if nobody is ahead; `Ok(None)` otherwise (and no node is left behind).
    /// This handle's own guard counts as ahead: while it is held (or the cleanup of the
    /// handle's last call is still under way) the answer is `Ok(None)` at once, without
    /// waiting for it.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire), and [`Error::Timeout`] when zk-core times a request out
    /// (the server could not be reached, or answer, in time): never `Ok(None)` for that, the
    /// lock may well be free.
    pub async fn try_acquire(&self) -> Result<Option<Guard>> {
        self.spec.acquire(Mode::Try).await
    }

    /// Acquires, runs `task` while the lock is held, then releases: "do X while holding, stop
    /// when lost". If the lock is lost first the task is dropped at its current await point and
    /// [`RunOutcome::Lost`] says why (the node goes in the background; `run` returns at once).
    /// The task gets the [`LostSignal`] to check before irreversible steps. The same as
    /// [`Semaphore::run`](crate::Semaphore::run) and [`Election::run`](crate::Election::run).
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
        run_held(self.acquire().await?, task).await
    }

    /// The identifiers of every contender (readers and writers), in queue order: the holder(s)
    /// first. Python (kazoo) contenders appear too.
    pub async fn contenders(&self) -> Result<Vec<String>> {
        contenders(
            &self.spec.client,
            &self.spec.parent,
            self.spec.layout,
            self.spec.role,
        )
        .await
    }
}

/// A handle's half of its node names (see [`Lock::prefix`]), from a fresh uuid: 16 hex digits
/// (kazoo), or `_c_` and the first three groups of the hyphenated uuid (Curator).
fn handle_prefix(layout: Layout) -> Box<str> {
    let u = uuid::Uuid::new_v4();
    match layout {
        Layout::Kazoo => u.simple().to_string()[..16].into(),
        Layout::Curator => format!("_c_{}", &u.hyphenated().to_string()[..19]).into(),
    }
}

/// `<uuid hex><mark>` (kazoo) or `_c_<uuid>-<lockName>` (Curator), allocated to size (every
/// waiting contender keeps one).
fn node_prefix(uuid: uuid::Uuid, layout: Layout, role: Role) -> Box<str> {
    let mark = role.mark(layout);
    match layout {
        Layout::Kazoo => format!("{}{mark}", uuid.simple()),
        Layout::Curator => format!("_c_{}-{mark}", uuid.hyphenated()),
    }
    .into_boxed_str()
}

macro_rules! lock_kind {
    ($(#[$m:meta])* $name:ident, $role:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        pub struct $name(Lock);

        impl $name {
            /// A handle on the lock at `path`; `identifier` is stored as node data.
            pub fn new(client: &Client, path: &str, identifier: impl Into<String>) -> Self {
                $name(Lock::with_role(client, path, identifier.into(), $role))
            }

            /// When a held guard counts as lost.
            pub fn lost_policy(self, policy: LostPolicy) -> Self {
                $name(self.0.lost_policy(policy))
            }

            /// Whose node layout and queue order to use (default [`Layout::Kazoo`]); with
            /// [`Layout::Curator`] this is a side of Curator's `InterProcessReadWriteLock`.
            pub fn layout(self, layout: Layout) -> Self {
                $name(self.0.layout(layout))
            }
        }

        impl From<$name> for Lock {
            /// The lock handle behind it, keeping its side (to hand to a
            /// [`MultiLock`](crate::MultiLock)).
            fn from(l: $name) -> Lock {
                l.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = Lock;
            fn deref(&self) -> &Lock {
                &self.0
            }
        }
    };
}

lock_kind!(
    /// The shared side of a read/write lock (kazoo `ReadLock`, node mark `__rlock__`; Curator
    /// `InterProcessReadWriteLock.readLock()`, `__READ__`): held together with other readers,
    /// blocked only by writers queued before it.
    ReadLock,
    Role::Read
);
lock_kind!(
    /// The exclusive side of a read/write lock (kazoo `WriteLock`, node mark `__lock__`; Curator
    /// `InterProcessReadWriteLock.writeLock()`, `__WRIT__`). With kazoo's layout the same as
    /// [`Lock`]; with Curator's it is not: Curator's readers treat only `__WRIT__` nodes as
    /// writers, not a mutex's `lock-` nodes.
    WriteLock,
    Role::Write
);
