//! A distributed counting semaphore, kazoo's layout:
//!
//! * `P` holds the maximum number of leases as ASCII decimal (written by whoever creates it; a
//!   different number there is an error).
//! * A lease is a child `P/<32 hex uuid>`, EPHEMERAL, data = the identifier. Every child of `P`
//!   counts as a lease (a foreign child too).
//! * Admission is serialized by an exclusive lock on the sibling path `P-__lock__`: while holding
//!   it, list `P` with a child watch; if there is room, create our lease in a transaction fenced
//!   by our admission node (`multi([check admission, create lease])`); if our lease exists (in
//!   our session) we hold one; otherwise wait for the watch (or any wake-up) and look again.
//!   Losing admission (its node gone, or a new session) sends the waiter back to the admission
//!   queue; the fence makes sure a waiter that lost admission without knowing it creates
//!   nothing. The admission lock is always released before returning (in the background if
//!   the deadline has passed).
//!   An admission node's path never comes back (a fresh uuid per acquisition, see
//!   [`Lock::prefix`]): even after `P-__lock__` was deleted and re-created, the fence of a
//!   waiter that lost admission cannot pass on the node of a later admission.
//!
//! With [`Layout::Curator`], Curator 5's `InterProcessSemaphoreV2` layout and algorithm:
//!
//! * `P/locks` is an `InterProcessMutex` (the [`Lock`] with Curator's layout), `P/leases`
//!   holds the leases `_c_<uuid>-lease-<seq>` (EPHEMERAL_SEQUENTIAL, data = the identifier);
//!   `P`, `P/locks` and `P/leases` are containers. The maximum is not stored: every user must
//!   agree on it.
//! * While holding the mutex: create our lease, fenced by our mutex node as above
//!   (`multi([check mutex node, create lease])`), then list `P/leases` with a child watch:
//!   every child counts, ours included; at most `max_leases` of them means we hold one,
//!   otherwise wait for the watch and count again. The mutex is released in any case. A
//!   lease lost from the listing is created again; a waiter that loses the mutex deletes its
//!   lease and queues again. An interrupted create is recovered by finding the child with
//!   the acquisition's `_c_<uuid>-` prefix owned by our session.

use crate::guard::{guard_for_node, run_held, Guard, LostPolicy, LostSignal, RunOutcome};
use crate::lock::Lock;
use crate::naming::{Layout, CURATOR_LEASE};
use crate::plumbing::{
    child_path, deadline_after, delete_retrying, ensure_containers, parent_of, passed,
    retry_transient, sleep_until_opt, transient, wait_connected, Cleanup, Leftover,
};
use futures_util::StreamExt;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tracing::debug;
use zk_core::{Client, CreateMode, Error, Op, OpResult, Result, State};

/// A semaphore allowing `max_leases` concurrent holders.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// let sem = zk_recipes::Semaphore::new(&client, "/limits/db-migrations", "host-3", 2)?;
/// if let Some(lease) = sem.acquire_timeout(std::time::Duration::from_secs(30)).await? {
///     // at most two holders here
///     lease.release().await?;
/// }
/// # Ok(()) }
/// ```
///
/// # Cancel safety
/// Dropping an acquire future leaves no lease and no admission-lock node behind.
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    path: String,
    identifier: Vec<u8>,
    max_leases: u32,
    admission: Lock,
    policy: LostPolicy,
    layout: Layout,
}

impl Semaphore {
    /// A handle on the semaphore at `path` with `max_leases` leases; `identifier` is stored in
    /// the lease node and shown by [`lease_holders`](Self::lease_holders).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `max_leases` is 0: such a semaphore could never be
    /// acquired; [`Error::BadPath`] if `path` is not one ZooKeeper takes (with Curator's
    /// layout an empty one would put `locks` and `leases` at the root). Nothing is sent.
    pub fn new(
        client: &Client,
        path: &str,
        identifier: impl Into<String>,
        max_leases: u32,
    ) -> Result<Semaphore> {
        zk_core::validate_path(path, false)?;
        if max_leases == 0 {
            return Err(Error::InvalidArgument(format!(
                "semaphore {path}: max_leases must be at least 1"
            )));
        }
        let identifier: String = identifier.into();
        Ok(Semaphore {
            client: client.clone(),
            path: path.to_owned(),
            // lost only with the session: every lease create is fenced by the admission node,
            // so a suspension alone need not send the waiter back to the queue
            admission: Lock::new(client, &format!("{path}-__lock__"), identifier.clone())
                .lost_policy(LostPolicy::SessionLost),
            identifier: identifier.into_bytes(),
            max_leases,
            policy: LostPolicy::default(),
            layout: Layout::Kazoo,
        })
    }

    /// Whose node layout to use (default [`Layout::Kazoo`]); with [`Layout::Curator`] this is
    /// Curator's `InterProcessSemaphoreV2` (see the module docs). Every user of the semaphore
    /// must use the same layout, and (Curator does not store it) the same maximum.
    pub fn layout(mut self, layout: Layout) -> Self {
        let identifier = String::from_utf8_lossy(&self.identifier).into_owned();
        let admission = match layout {
            Layout::Curator => child_path(&self.path, "locks"),
            _ => format!("{}-__lock__", self.path),
        };
        self.admission = Lock::new(&self.client, &admission, identifier)
            .layout(layout)
            .lost_policy(LostPolicy::SessionLost);
        self.layout = layout;
        self
    }

    /// Where the leases are: `P` (kazoo), `P/leases` (Curator).
    fn leases_path(&self) -> String {
        match self.layout {
            Layout::Curator => child_path(&self.path, "leases"),
            _ => self.path.clone(),
        }
    }

    /// When a held lease counts as lost.
    pub fn lost_policy(mut self, policy: LostPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Waits for a lease, however long it takes; requests that zk-core times out on its own
    /// (a long outage, a slow server) are waited out, as in [`Lock::acquire`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the semaphore exists with a different maximum; server
    /// errors; the session lost for good.
    pub async fn acquire(&self) -> Result<Guard> {
        self.acquire_inner(None, false)
            .await?
            .ok_or(Error::Timeout { sent: false })
    }

    /// Waits for a lease until `timeout` (one deadline for everything); `Ok(None)` if none came.
    /// It returns at the deadline, also while disconnected; the admission lock and any lease
    /// create whose outcome is unknown are cleaned up in the background. A timeout too long to
    /// represent as an instant (say `Duration::MAX`) is a deadline in the far future.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire); a passed deadline is `Ok(None)`, not an error.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<Guard>> {
        self.acquire_until(deadline_after(timeout)).await
    }

    /// Like [`acquire_timeout`](Self::acquire_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_until(&self, deadline: Instant) -> Result<Option<Guard>> {
        self.acquire_inner(Some(deadline), false).await
    }

    /// Takes a lease only if one is free now; `Ok(None)` (and nothing left behind) otherwise.
    /// It still queues for the admission lock, which other acquirers hold only briefly (or while
    /// the semaphore is full, and then there is no free lease either), for at most 30 s.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire), and [`Error::Timeout`] if the server could not be
    /// reached in time (never `Ok(None)` for that: a lease may well be free).
    pub async fn try_acquire(&self) -> Result<Option<Guard>> {
        match self.client.get_children(&self.leases_path()).await {
            Ok(c) if c.len() as u64 >= u64::from(self.max_leases) => return Ok(None),
            Ok(_) | Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
        let bound = Instant::now() + Duration::from_secs(30);
        match self.acquire_inner(Some(bound), true).await? {
            // the bound passed while cut off from the server: no answer, an error
            None if Instant::now() >= bound && self.client.state() != State::Connected => {
                Err(Error::Timeout { sent: false })
            }
            other => Ok(other),
        }
    }

    /// Takes a lease, runs `task` while it is held, then releases it; the same as
    /// [`Lock::run`](crate::Lock::run).
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

    /// The identifiers of the current lease holders, sorted by node name.
    ///
    /// # Errors
    /// Server and connection errors of listing them.
    pub async fn lease_holders(&self) -> Result<Vec<String>> {
        let leases = self.leases_path();
        let mut children = match self.client.get_children(&leases).await {
            Ok(c) => c,
            Err(Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        children.sort();
        let mut out = Vec::new();
        for c in children {
            match self.client.get_data(&child_path(&leases, &c)).await {
                Ok((d, _)) => out.push(String::from_utf8_lossy(&d).into_owned()),
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn ensure(&self, c: &Client, deadline: Option<Instant>) -> Result<()> {
        if self.layout == Layout::Curator {
            let leases = self.leases_path();
            return retry_transient(
                c,
                deadline,
                |e| transient(e, deadline),
                || ensure_containers(c, &leases),
            )
            .await;
        }
        retry_transient(
            c,
            deadline,
            |e| transient(e, deadline),
            || async {
                match c
                    .create(
                        &self.path,
                        self.max_leases.to_string().as_bytes(),
                        CreateMode::Persistent,
                    )
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(Error::NodeExists) => {
                        let (d, _) = c.get_data(&self.path).await?;
                        match std::str::from_utf8(&d)
                            .ok()
                            .and_then(|s| s.trim().parse::<u32>().ok())
                        {
                            Some(n) if n != self.max_leases => {
                                Err(Error::InvalidArgument(format!(
                                    "semaphore {} has {n} leases, this handle expects {}",
                                    self.path, self.max_leases
                                )))
                            }
                            // same number, or not a number (kazoo ignores that too)
                            _ => Ok(()),
                        }
                    }
                    Err(Error::NoNode) => c.ensure_path(parent_of(&self.path)).await,
                    Err(e) => Err(e),
                }
            },
        )
        .await
    }

    async fn acquire_inner(
        &self,
        deadline: Option<Instant>,
        try_only: bool,
    ) -> Result<Option<Guard>> {
        let c = match deadline {
            Some(d) => self.client.with_deadline(d),
            None => self.client.clone(),
        };
        match self.ensure(&c, deadline).await {
            Err(Error::Timeout { .. }) if passed(deadline) => return Ok(None),
            other => other?,
        }
        // kazoo: the lease's name; Curator: its protected prefix `_c_<uuid>-lease-`
        let lease_name = match self.layout {
            Layout::Curator => format!("_c_{}-{CURATOR_LEASE}", uuid::Uuid::new_v4().hyphenated()),
            _ => uuid::Uuid::new_v4().simple().to_string(),
        };
        // armed once a lease create was sent: a drop, a timeout or an error removes the lease in
        // the background (nothing when no create was sent)
        let mut cleanup = Cleanup::new(&self.client, None);
        loop {
            let admission = match deadline {
                Some(d) => match self.admission.acquire_until(d).await? {
                    Some(g) => g,
                    None => return Ok(None),
                },
                None => self.admission.acquire().await?,
            };
            let step = self
                .while_admitted(
                    &c,
                    &admission,
                    &lease_name,
                    deadline,
                    try_only,
                    &mut cleanup,
                )
                .await;
            match step {
                Ok(Admitted::Held(guard)) => {
                    cleanup.disarm();
                    // the admission lock is always released before returning; past the deadline
                    // (or if the release is slow) it goes on in the background
                    let release = admission.release();
                    match deadline {
                        Some(d) => {
                            if let Ok(r) = tokio::time::timeout_at(d, release).await {
                                r?;
                            }
                        }
                        None => release.await?,
                    }
                    return Ok(Some(guard));
                }
                Ok(Admitted::Restart) => {
                    debug!(path = %self.path, "admission lost; queueing for admission again");
                    drop(admission); // released in the background
                }
                Ok(Admitted::NoRoom) => return Ok(None),
                // a zk-core timeout before the deadline (or without one) was waited out; one
                // after it is the deadline
                Err(Error::Timeout { .. }) if passed(deadline) => {
                    // the admission node and any lease are removed in the background
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A guard for our lease node `node` (only if it belongs to our current session), within
    /// `deadline`: the outer `Err` is the deadline passing (`Timeout { sent: true }`).
    async fn guard_within(&self, node: String, deadline: Option<Instant>) -> Result<Result<Guard>> {
        match deadline {
            Some(d) => tokio::time::timeout_at(d, guard_for_node(&self.client, node, self.policy))
                .await
                .map_err(|_| Error::Timeout { sent: true }),
            None => Ok(guard_for_node(&self.client, node, self.policy).await),
        }
    }

    /// The admitted part: while `admission` is held in the session it was taken in, list the
    /// leases and, if there is room, create ours *fenced by the admission node*
    /// (`multi([check admission, create lease])`): a waiter that lost admission (its session
    /// expired, its node was deleted) can never create a lease, even when it does not know yet.
    async fn while_admitted(
        &self,
        c: &Client,
        admission: &Guard,
        lease_name: &str,
        deadline: Option<Instant>,
        try_only: bool,
        cleanup: &mut Cleanup<'_>,
    ) -> Result<Admitted> {
        if self.layout == Layout::Curator {
            return self
                .while_admitted_curator(c, admission, lease_name, deadline, try_only, cleanup)
                .await;
        }
        let lease = child_path(&self.path, lease_name);
        let sid = admission.session_id();
        loop {
            if !admission.is_held() || c.session_id() != sid {
                return Ok(Admitted::Restart);
            }
            // a fresh subscription: only a wake-up source while we wait for room
            let mut states = self.client.state_stream();
            let (children, w) = match c.get_children_watch(&self.path).await {
                Ok(x) => x,
                Err(e) if transient(&e, deadline) => {
                    wait_connected(c, deadline).await?;
                    continue;
                }
                Err(Error::SessionExpired) => return Ok(Admitted::Restart),
                Err(Error::NoNode) => {
                    // the semaphore node was removed meanwhile
                    self.ensure(c, deadline).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if children.iter().any(|n| n == lease_name) {
                // ours, created fenced; a guard only if it belongs to our current session
                let guard = self.guard_within(lease.clone(), deadline).await?;
                match guard {
                    Ok(g) => return Ok(Admitted::Held(g)),
                    Err(Error::SessionExpired) => return Ok(Admitted::Restart),
                    Err(e) if transient(&e, deadline) => {
                        wait_connected(c, deadline).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if (children.len() as u64) < u64::from(self.max_leases) {
                cleanup.set(Some(Leftover::Node(lease.clone())), sid);
                let create = Op::create(
                    lease.clone(),
                    self.identifier.clone(),
                    CreateMode::Ephemeral,
                );
                match c.multi(vec![admission.fence(), create]).await {
                    Ok(_) => {} // look again: it shows up as one of at most max
                    Err(Error::TransactionFailed { index: 0, .. }) => {
                        // the admission node is gone: not admitted any more
                        return Ok(Admitted::Restart);
                    }
                    Err(Error::TransactionFailed { index: 1, error })
                        if matches!(*error, Error::NodeExists) => {}
                    Err(e) if transient(&e, deadline) => wait_connected(c, deadline).await?,
                    Err(Error::SessionExpired) => return Ok(Admitted::Restart),
                    Err(e) => return Err(e),
                }
                continue;
            }
            if try_only {
                return Ok(Admitted::NoRoom);
            }
            debug!(holders = children.len(), "semaphore full; waiting");
            tokio::select! {
                _ = w => {}
                s = states.next() => if s.is_none() { return Err(Error::Closed) },
                _ = admission.lost() => {} // judged at the top of the loop
                _ = sleep_until_opt(deadline) => return Ok(Admitted::NoRoom),
            }
        }
    }
}

impl Semaphore {
    /// [`while_admitted`](Self::while_admitted) with Curator's layout and order of steps
    /// (`InterProcessSemaphoreV2.internalAcquire1Lease`): create our lease (fenced by the
    /// admission node), then count every lease, ours included, against the maximum.
    async fn while_admitted_curator(
        &self,
        c: &Client,
        admission: &Guard,
        prefix: &str,
        deadline: Option<Instant>,
        try_only: bool,
        cleanup: &mut Cleanup<'_>,
    ) -> Result<Admitted> {
        let leases = self.leases_path();
        let sid = admission.session_id();
        // our lease, once created in `sid` (the cleanup names it too)
        let mut lease: Option<String> = None;
        loop {
            if !admission.is_held() || c.session_id() != sid {
                if let Some(node) = lease.take() {
                    // not admitted any more: give the lease back before queueing again
                    if c.session_id() == sid {
                        delete_retrying(c, &node, deadline)
                            .await?
                            .ok_or(Error::Timeout { sent: true })?;
                    }
                    cleanup.set(None, sid);
                }
                return Ok(Admitted::Restart);
            }
            // a fresh subscription: only a wake-up source while we wait for room
            let mut states = self.client.state_stream();
            let Some(node) = lease.clone() else {
                cleanup.set(
                    Some(Leftover::Prefix(Box::new((
                        leases.clone(),
                        prefix.to_owned(),
                    )))),
                    sid,
                );
                let create = Op::create(
                    child_path(&leases, prefix),
                    self.identifier.clone(),
                    CreateMode::EphemeralSequential,
                );
                match c.multi(vec![admission.fence(), create]).await {
                    Ok(results) => match results.into_iter().nth(1) {
                        Some(OpResult::Create { path, .. }) => {
                            cleanup.set(Some(Leftover::Node(path.clone())), sid);
                            lease = Some(path);
                        }
                        other => {
                            return Err(Error::Protocol(format!(
                                "a lease create answered {other:?}"
                            )))
                        }
                    },
                    // the admission node is gone: not admitted any more (nothing created)
                    Err(Error::TransactionFailed { index: 0, .. }) => {
                        cleanup.set(None, sid);
                        return Ok(Admitted::Restart);
                    }
                    // `P/leases`, a container, was deleted once empty
                    Err(Error::TransactionFailed { index: 1, error })
                        if matches!(*error, Error::NoNode) =>
                    {
                        self.ensure(c, deadline).await?;
                    }
                    Err(e) if transient(&e, deadline) => {
                        // it may have applied: find it (the prefix is this acquisition's)
                        lease = loop {
                            wait_connected(c, deadline).await?;
                            match find_own_child(c, &leases, prefix, sid).await {
                                Ok(found) => break found,
                                Err(e) if transient(&e, deadline) => {}
                                Err(Error::SessionExpired) => return Ok(Admitted::Restart),
                                Err(e) => return Err(e),
                            }
                        };
                        if let Some(n) = &lease {
                            cleanup.set(Some(Leftover::Node(n.clone())), sid);
                        }
                    }
                    Err(Error::SessionExpired) => return Ok(Admitted::Restart),
                    Err(e) => return Err(e),
                }
                continue;
            };
            let (children, w) = match c.get_children_watch(&leases).await {
                Ok(x) => x,
                Err(e) if transient(&e, deadline) => {
                    wait_connected(c, deadline).await?;
                    continue;
                }
                Err(Error::SessionExpired) => return Ok(Admitted::Restart),
                Err(Error::NoNode) => {
                    // the container went, and our lease with it
                    lease = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let name = node.rsplit('/').next().unwrap_or_default();
            if !children.iter().any(|n| n == name) {
                debug!(lease = %node, "our lease is gone; creating another");
                lease = None;
                continue;
            }
            if children.len() as u64 <= u64::from(self.max_leases) {
                let guard = self.guard_within(node.clone(), deadline).await?;
                match guard {
                    Ok(g) => return Ok(Admitted::Held(g)),
                    Err(Error::SessionExpired) => return Ok(Admitted::Restart),
                    Err(e) if transient(&e, deadline) => {
                        wait_connected(c, deadline).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if try_only {
                return Ok(Admitted::NoRoom);
            }
            debug!(holders = children.len(), "semaphore full; waiting");
            tokio::select! {
                _ = w => {}
                s = states.next() => if s.is_none() { return Err(Error::Closed) },
                _ = admission.lost() => {} // judged at the top of the loop
                _ = sleep_until_opt(deadline) => return Ok(Admitted::NoRoom),
            }
        }
    }
}

/// The child of `parent` whose name starts with `prefix` and that session `sid` owns, if any
/// (an interrupted sequential create's node).
async fn find_own_child(
    c: &Client,
    parent: &str,
    prefix: &str,
    sid: i64,
) -> Result<Option<String>> {
    let children = match c.get_children(parent).await {
        Err(Error::NoNode) => return Ok(None),
        other => other?,
    };
    for name in children.iter().filter(|n| n.starts_with(prefix)) {
        let p = child_path(parent, name);
        if let Some(st) = c.exists(&p).await? {
            if st.ephemeral_owner == sid {
                return Ok(Some(p));
            }
        }
    }
    Ok(None)
}

/// What became of one admitted round.
enum Admitted {
    Held(Guard),
    /// Admission was lost (session change, node deleted): queue for admission again.
    Restart,
    /// No room now (try mode) or the deadline passed.
    NoRoom,
}
