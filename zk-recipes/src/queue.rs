//! The queue algorithm of locks, read/write locks and elections (and the semaphore's admission
//! lock): join with a sequential ephemeral node, wait on the nearest blocker, hand out a
//! [`Guard`], and leave nothing behind on a timeout, an error or a drop.

use crate::guard::{new_guard, Guard, LostPolicy};
use crate::naming::{curator_sorted, sorted_contenders, Layout, Role, CURATOR_WRITE};
use crate::plumbing::{
    child_path, ensure_containers, passed, retry_transient, transient, wait_connected, Cleanup,
    Leftover,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::time::Instant;
use tracing::{debug, info};
use zk_core::{Client, CreateMode, Error, OneshotWatcher, Result};

/// Settings of one queue (one recipe handle).
#[derive(Debug, Clone)]
pub(crate) struct QueueSpec {
    pub client: Client,
    /// (Boxed strings: every waiting contender holds a handle; no spare capacity, no
    /// capacity field.)
    pub parent: Box<str>,
    /// What every node name of this handle starts with: the first 16 hex digits of its uuid
    /// (each acquisition draws the rest: [`node_prefix`](Self::node_prefix)), or, when
    /// `pinned`, the whole `<uuid hex><MARK>`.
    pub prefix: Box<str>,
    /// Whether `prefix` is the whole node prefix of every acquisition (tests only).
    pub pinned: bool,
    /// The part its contenders play (their node name and their blockers).
    pub role: Role,
    /// Whose node layout and queue order.
    pub layout: Layout,
    pub data: Box<[u8]>,
    pub policy: LostPolicy,
    /// Local gate: one acquisition at a time per handle.
    pub gate: Arc<Mutex<()>>,
    /// Whether the parent is known to exist (kazoo's `assured_path`): `ensure_path` once per
    /// handle, not once per acquisition. A parent deleted later is re-created when a create
    /// fails with `NoNode`.
    pub parent_ready: Assured,
}

/// A "known to exist" flag kept in the handle itself (a clone starts from the original's
/// value and learns on its own: at worst one `ensure_path` more per clone).
#[derive(Debug, Default)]
pub(crate) struct Assured(AtomicBool);

impl Assured {
    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Relaxed)
    }
}

impl Clone for Assured {
    fn clone(&self) -> Self {
        Assured(AtomicBool::new(self.get()))
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

/// Where node `ours` stands in a queue of `layout`.
fn decide(layout: Layout, role: Role, children: &[String], ours: &str) -> Next {
    match layout {
        Layout::Kazoo => decide_kazoo(role.exclusive(), children, ours),
        Layout::Curator => decide_curator(role, children, ours),
    }
}

/// Curator's rules (`LockInternals` with `StandardLockInternalsDriver`, and the read/write
/// lock's reader driver): every child is in the queue, in Curator's order. A reader holds
/// when no `__WRIT__` node is ahead of it and otherwise watches the *first* writer in the
/// queue; everyone else holds at the head and otherwise watches its immediate predecessor.
fn decide_curator(role: Role, children: &[String], ours: &str) -> Next {
    let all = curator_sorted(role, children);
    let Some(me) = all.iter().position(|c| *c == ours) else {
        return Next::Recreate;
    };
    let blocker = match role {
        Role::Read => all[..me].iter().find(|c| c.contains(CURATOR_WRITE)),
        _ => me.checked_sub(1).map(|i| &all[i]),
    };
    match blocker {
        None => Next::Acquired,
        Some(b) => Next::Wait(b.to_string()),
    }
}

/// kazoo's rules: an exclusive contender is blocked by every contender before it, a shared
/// one only by exclusive ones; it waits on the nearest blocker (one watcher per node: no
/// herd). Children that are not contenders are ignored.
fn decide_kazoo(exclusive: bool, children: &[String], ours: &str) -> Next {
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
    /// The node prefix of one acquisition, `<uuid hex><MARK>`: the handle's half of the uuid
    /// and a fresh half. A node path never comes back (the parent's sequence counter restarts
    /// when it is deleted and created again; the uuid does not), so the fence of a lost guard
    /// can never pass on the node of a later one, nor can its cleanup delete it.
    fn node_prefix(&self) -> Box<str> {
        if self.pinned {
            return self.prefix.clone();
        }
        let mark = self.role.mark(self.layout);
        let fresh = uuid::Uuid::new_v4().hyphenated().to_string();
        // the handle's half carries the uuid's version digit, the fresh half its variant digit
        match self.layout {
            Layout::Kazoo => {
                let fresh: String = fresh[19..].chars().filter(|c| *c != '-').collect();
                format!("{}{fresh}{mark}", self.prefix)
            }
            // Curator's protected name, `_c_<uuid 8-4-4-4-12>-<lockName>`: the handle's
            // prefix is `_c_` and the uuid's first three groups
            Layout::Curator => format!("{}{}-{mark}", self.prefix, &fresh[19..]),
        }
        .into_boxed_str()
    }

    /// Creates the parent (and its missing ancestors): persistent nodes with kazoo's layout,
    /// container nodes with Curator's (`creatingParentContainersIfNeeded`).
    async fn ensure_parent(&self, c: &Client) -> Result<()> {
        match self.layout {
            Layout::Kazoo => c.ensure_path(&self.parent).await,
            Layout::Curator => ensure_containers(c, &self.parent).await,
        }
    }

    /// Creates our contender node, recovering from an ambiguous create by finding the node
    /// with our prefix that belongs to our session (and deleting any with our prefix that does
    /// not: a leftover of an earlier session of ours).
    async fn create_node(
        &self,
        c: &Client,
        prefix: &str,
        cleanup: &mut Cleanup<'_>,
        mode: Mode,
    ) -> Result<(String, i64)> {
        let deadline = mode.deadline();
        let create_path = child_path(&self.parent, prefix);
        let by_prefix = Leftover::Prefix(Box::new((self.parent.to_string(), prefix.to_string())));
        loop {
            // from the moment a create may reach the server, its node may be there
            let before = cleanup.leftover().cloned();
            let sid = c.session_id();
            cleanup.set(Some(by_prefix.clone()), sid);
            let r = c
                .create(&create_path, &self.data, CreateMode::EphemeralSequential)
                .await;
            if matches!(
                r,
                Err(Error::Timeout { sent: false }) | Err(Error::NotConnected)
            ) {
                // this create never left the client
                cleanup.set(before, c.session_id());
            }
            match r {
                // created in `sid` (if the session changed meanwhile, the owner is checked
                // before the node is trusted: see `acquire_inner`)
                Ok(p) => return Ok((p, sid)),
                Err(e) if mode.transient(&e) || matches!(e, Error::ConnectionLoss) => {
                    debug!(error = %e, "contender create interrupted; looking for our node");
                    // it may have applied: look until the answer is known, never create again
                    // before (a second node of ours behind the first would wait on it forever)
                    loop {
                        wait_connected(c, deadline).await?;
                        match Box::pin(self.find_ours(c, prefix)).await {
                            Ok(Some(found)) => return Ok(found),
                            Ok(None) => break,
                            // a node of the old session goes with it
                            Err(Error::SessionExpired) => break,
                            Err(e) if mode.transient(&e) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(Error::SessionExpired) => {
                    // a new session may follow; try again in it
                    wait_connected(c, deadline).await?;
                }
                Err(Error::NoNode) => {
                    // the parent vanished meanwhile (a container is deleted once empty)
                    self.ensure_parent(c).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Our node (and the session that owns it), if an interrupted create made one.
    async fn find_ours(&self, c: &Client, prefix: &str) -> Result<Option<(String, i64)>> {
        let sid = c.session_id();
        let children = match c.get_children(&self.parent).await {
            // an emptied container parent was deleted: nothing of ours there
            Err(Error::NoNode) => return Ok(None),
            other => other?,
        };
        let mut found = None;
        for name in children.iter().filter(|n| n.starts_with(prefix)) {
            let p = child_path(&self.parent, name);
            match c.exists(&p).await? {
                Some(st) if st.ephemeral_owner == sid && found.is_none() => found = Some((p, sid)),
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
    ///
    /// A waiting contender is what this future is while it waits, so it is kept small: the
    /// work between waits (create, list, watch, ownership check) runs in a boxed [`step`]
    /// that is freed before the wait, and the wait itself holds only the predecessor's
    /// one-shot watch (plus a boxed timer with a deadline). Our node's path lives once, in
    /// the cleanup that would delete it. No state subscription either: the watch itself ends
    /// with an error when the session does (expiry, close), and a reconnect to the same
    /// session re-registers it, so it fires for a predecessor deleted meanwhile.
    ///
    /// [`step`]: Self::step
    pub(crate) async fn acquire(&self, mode: Mode) -> Result<Option<Guard>> {
        // one acquisition per handle at a time (boxed: its timer is not needed while waiting)
        let Some(gate) = Box::pin(self.lock_gate(mode)).await else {
            return Ok(None);
        };
        // this acquisition's node prefix (our node's path is rebuilt from it while we wait);
        // boxed once more so that a waiting contender holds a thin pointer: 8 bytes more
        // would take its task from tokio's 384-byte cells to 512-byte ones
        let prefix: Box<Box<str>> = Box::new(self.node_prefix());
        // what an interrupted or abandoned acquisition leaves is removed, and the handle's
        // gate travels with that cleanup
        let mut cleanup = Cleanup::new(&self.client, Some(gate));
        // the session our node was created in, once it is (the node is in `cleanup`)
        let mut ours = None;
        let r = loop {
            // (the step's result is taken apart before the wait, so the wait does not keep
            // the space of a finished step's result)
            let w = match Box::pin(self.step(&prefix, &mut cleanup, &mut ours, mode)).await {
                Ok(Step::Done(g)) => break Ok(g),
                Ok(Step::Wait(w)) => w,
                Err(e) => break Err(e),
            };
            if !WatchOrDeadline::new(w, mode.deadline()).await {
                break Ok(None);
            }
        };
        match r {
            Ok(Some(g)) => Ok(Some(g)),
            other => Box::pin(give_up(cleanup, other, mode)).await,
        }
    }

    /// The handle's gate, waited for until the deadline; a try does not wait for it (the
    /// handle's own guard, or the cleanup of its last call, is ahead: not free).
    async fn lock_gate(&self, mode: Mode) -> Option<OwnedMutexGuard<()>> {
        match mode {
            Mode::Try => self.gate.clone().try_lock_owned().ok(),
            Mode::Blocking(None) => Some(self.gate.clone().lock_owned().await),
            Mode::Blocking(Some(d)) => tokio::time::timeout_at(d, self.gate.clone().lock_owned())
                .await
                .ok(),
        }
    }

    /// One pass of the queue algorithm, up to the next wait: joins the queue if we have no
    /// node (`ours`: the session our node was created in, if we have one), lists the
    /// children and either hands out the guard, gives up (try mode), or sets the watch on the
    /// nearest blocker and returns it.
    #[allow(clippy::borrowed_box)] // the cleanup keeps the thin pointer (see `Leftover::Seq`)
    async fn step<'a>(
        &'a self,
        prefix: &'a Box<str>,
        cleanup: &mut Cleanup<'a>,
        ours: &mut Option<i64>,
        mode: Mode,
    ) -> Result<Step> {
        let deadline = mode.deadline();
        let c = match deadline {
            Some(d) => self.client.with_deadline(d),
            None => self.client.clone(),
        };
        if !self.parent_ready.get() {
            retry_transient(
                &c,
                deadline,
                |e| mode.transient(e),
                || self.ensure_parent(&c),
            )
            .await?;
            self.parent_ready.set();
        }
        loop {
            let node_sid = match *ours {
                None => {
                    let (node, sid) = self.create_node(&c, prefix, cleanup, mode).await?;
                    debug!(node = %node, "joined the queue");
                    // the create's outcome is known: only this node can be ours
                    cleanup.narrow_to_seq(&self.parent, prefix, node);
                    *ours = Some(sid);
                    sid
                }
                Some(sid) => sid,
            };
            let Some(node) = cleanup.leftover().and_then(Leftover::node_path) else {
                unreachable!("the cleanup is narrowed to our node once it is created")
            };
            let name = node.rsplit('/').next().unwrap_or_default();
            let children = match c.get_children(&self.parent).await {
                Ok(ch) => ch,
                Err(e) if mode.transient(&e) => {
                    wait_connected(&c, deadline).await?;
                    continue;
                }
                // the parent is gone, so is our node (a container parent is deleted once
                // empty): join again
                Err(Error::SessionExpired) | Err(Error::NoNode) => {
                    *ours = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let next = decide(self.layout, self.role, &children, name);
            drop(children);
            match next {
                Next::Recreate => {
                    debug!(node = %node, "our node is gone; joining again");
                    *ours = None;
                }
                Next::Acquired => {
                    // it must be ours, in the current session. If the session is the one
                    // the node was created in, the listing that just showed it (a reply in
                    // that session: it was alive) is that proof; session ids are never
                    // reused, so an unchanged id means no expiry came between. Otherwise
                    // ask the server who owns it.
                    let sid = c.session_id();
                    if sid != node_sid {
                        match c.exists(&node).await {
                            Ok(Some(st)) if st.ephemeral_owner == sid => {}
                            Ok(_) | Err(Error::SessionExpired) => {
                                *ours = None;
                                continue;
                            }
                            Err(e) if mode.transient(&e) => {
                                wait_connected(&c, deadline).await?;
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    let gate = cleanup.disarm();
                    let guard = new_guard(&self.client, node, sid, self.policy, gate);
                    return Ok(Step::Done(Some(guard)));
                }
                Next::Wait(blocker) => {
                    if let Mode::Try = mode {
                        return Ok(Step::Done(None));
                    }
                    match c.get_data_watch(&child_path(&self.parent, &blocker)).await {
                        // any wake-up means: look again
                        Ok((_, _, w)) => return Ok(Step::Wait(w)),
                        // gone already: look again
                        Err(Error::NoNode) => {}
                        Err(e) if mode.transient(&e) => wait_connected(&c, deadline).await?,
                        Err(Error::SessionExpired) => *ours = None,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

/// Where a [`QueueSpec::step`] left the acquisition.
enum Step {
    /// Finished: the guard, or `None` (not free in try mode).
    Done(Option<Guard>),
    /// Wait for this watch on the nearest blocker (an event, or the session's end), then step
    /// again.
    Wait(OneshotWatcher),
}

impl Mode {
    /// The call's deadline, if any.
    fn deadline(self) -> Option<Instant> {
        match self {
            Mode::Blocking(d) => d,
            Mode::Try => None,
        }
    }

    /// Whether `e` is worth waiting for the connection and trying again: [`transient`] for a
    /// blocking call (a zk-core `Timeout` before the deadline is an outage or a slow server,
    /// to be waited out); a try does not wait out a `Timeout`: it says so, as an error (never
    /// `Ok(None)`: the lock may well be free).
    fn transient(self, e: &Error) -> bool {
        match self {
            Mode::Blocking(d) => transient(e, d),
            Mode::Try => !matches!(e, Error::Timeout { .. }) && transient(e, None),
        }
    }
}

/// An acquisition that did not get the guard: removes what it left (waiting at most the
/// cleanup slack), and says so. A zk-core timeout is the call's answer (`Ok(None)`) only once
/// its deadline passed; one before it (or without one) was waited out, or is a try's error
/// (see [`Mode::transient`]).
async fn give_up(
    cleanup: Cleanup<'_>,
    r: Result<Option<Guard>>,
    mode: Mode,
) -> Result<Option<Guard>> {
    match r {
        Ok(None) => {
            cleanup.finish("acquisition gave up").await;
            Ok(None)
        }
        Err(Error::Timeout { .. }) if passed(mode.deadline()) => {
            cleanup.finish("acquisition gave up").await;
            Ok(None)
        }
        Err(e) => {
            cleanup.finish("acquisition failed").await;
            Err(e)
        }
        Ok(Some(g)) => Ok(Some(g)),
    }
}

/// Waits for a one-shot watch (whatever it resolves with) or a deadline: `true` for the watch,
/// `false` if the deadline came first. Written out rather than a `select!` so a waiting
/// contender carries two pointers, not a timer and the macro's state; the timer is only
/// allocated with a deadline.
struct WatchOrDeadline {
    watch: OneshotWatcher,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WatchOrDeadline {
    fn new(watch: OneshotWatcher, deadline: Option<Instant>) -> WatchOrDeadline {
        WatchOrDeadline {
            watch,
            timer: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
        }
    }
}

impl Future for WatchOrDeadline {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        if Pin::new(&mut self.watch).poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        match self.timer.as_mut().map(|t| t.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(false),
            _ => Poll::Pending,
        }
    }
}

/// The identifiers (node data) of the contenders under `path`, in the queue order of `layout`
/// (for Curator's, of `role`): with kazoo's, every `__lock__` / `__rlock__` node; with
/// Curator's, every child (Curator's `getParticipantNodes`).
pub(crate) async fn contenders(
    client: &Client,
    path: &str,
    layout: Layout,
    role: Role,
) -> Result<Vec<String>> {
    let children = match client.get_children(path).await {
        Ok(c) => c,
        Err(Error::NoNode) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let names: Vec<String> = match layout {
        Layout::Kazoo => sorted_contenders(&children)
            .into_iter()
            .map(|c| c.name)
            .collect(),
        Layout::Curator => curator_sorted(role, &children)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    let mut out = Vec::new();
    for name in names {
        match client.get_data(&child_path(path, &name)).await {
            Ok((d, _)) => out.push(String::from_utf8_lossy(&d).into_owned()),
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::sorted_contenders;

    /// What `decide` says, as text: the blocker's name, "acquired" or "recreate".
    fn blocker(exclusive: bool, children: &[String], ours: &str) -> String {
        match decide_kazoo(exclusive, children, ours) {
            Next::Wait(b) => b,
            Next::Acquired => "acquired".into(),
            Next::Recreate => "recreate".into(),
        }
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
        assert_eq!(blocker(true, &children, "h__lock__2147483646"), "acquired");
        assert_eq!(
            blocker(true, &children, "w__lock__-2147483648"),
            "n__lock__2147483647"
        );
        assert_eq!(
            blocker(false, &children, "x__rlock__-2147483647"),
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

    /// Curator's rules: a writer (or mutex, or latch) watches its immediate predecessor,
    /// whatever its kind; a reader holds unless a `__WRIT__` node is ahead, and then watches
    /// the *first* writer of the queue (kazoo watches the last one ahead).
    #[test]
    fn curator_blockers_are_the_predecessor_or_the_first_writer() {
        let u = "_c_0f6c2f7e-1111-4222-8333-444455556666-";
        let n = |mark: &str, seq: u32| format!("{u}{mark}{seq:010}");
        // listed out of order on purpose: W1(1) R1(2) W2(3) R2(4) R3(5)
        let children = vec![
            n("__READ__", 5),
            n("__WRIT__", 3),
            n("__READ__", 2),
            n("__WRIT__", 1),
            n("__READ__", 4),
        ];
        let wait_on = |role, ours: &str| match decide(Layout::Curator, role, &children, ours) {
            Next::Wait(b) => b,
            Next::Acquired => "acquired".into(),
            Next::Recreate => "recreate".into(),
        };
        assert_eq!(wait_on(Role::Write, &children[3]), "acquired");
        assert_eq!(wait_on(Role::Read, &children[2]), children[3]);
        assert_eq!(wait_on(Role::Write, &children[1]), children[2]);
        // R2 and R3 watch W1, the first writer, not W2
        assert_eq!(wait_on(Role::Read, &children[4]), children[3]);
        assert_eq!(wait_on(Role::Read, &children[0]), children[3]);
        assert_eq!(wait_on(Role::Read, &n("__READ__", 9)), "recreate");
        // readers at the head hold together
        let readers = vec![n("__READ__", 7), n("__READ__", 6), n("__WRIT__", 8)];
        let d = |ours: &str| {
            matches!(
                decide(Layout::Curator, Role::Read, &readers, ours),
                Next::Acquired
            )
        };
        assert!(d(&readers[0]) && d(&readers[1]));
        // a mutex: the immediate predecessor in sequence order
        let m = vec![n("lock-", 12), n("lock-", 10), n("lock-", 11)];
        assert!(matches!(
            decide(Layout::Curator, Role::Mutex, &m, &m[1]),
            Next::Acquired
        ));
        assert!(
            matches!(decide(Layout::Curator, Role::Mutex, &m, &m[0]), Next::Wait(b) if b == m[2])
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
        assert_eq!(blocker(true, &children, "w1__lock__0000000000"), "acquired");
        assert_eq!(
            blocker(false, &children, "r1__rlock__0000000001"),
            "w1__lock__0000000000"
        );
        assert_eq!(
            blocker(true, &children, "w2__lock__0000000002"),
            "r1__rlock__0000000001"
        );
        assert_eq!(
            blocker(false, &children, "r2__rlock__0000000003"),
            "w2__lock__0000000002"
        );
        assert_eq!(
            blocker(false, &children, "gone__rlock__0000000009"),
            "recreate"
        );
        // a second reader right after a reader is not blocked by it
        assert_eq!(
            blocker(false, &children[..2], "r1__rlock__0000000001"),
            "w1__lock__0000000000"
        );
    }
}
