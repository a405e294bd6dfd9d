//! Set partitioning (kazoo `SetPartitioner`): the members of a party split a set of items
//! between them, each item held by one member's lock.

use crate::guard::{Guard, LostSignal};
use crate::lock::Lock;
use crate::party::ShallowParty;
use crate::patient::{ChildrenChanged, PatientChildrenWatch};
use crate::plumbing::{child_path, deadline_after, sleep_until_opt, with_retries};
use futures_util::future::select_all;
use futures_util::StreamExt;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, error, warn};
use zk_core::{Client, Error, Op, Result, State};

/// The partition function: `(identifier, members, items) -> this member's items`. `members`
/// are the party's identifiers as listed (unsorted), `items` the set as given.
pub type PartitionFn = Arc<dyn Fn(&str, &[String], &[String]) -> Vec<String> + Send + Sync>;

/// kazoo's default partition function: sort the items and the members; the member at sorted
/// position `i` of `n` gets the items at sorted positions `i`, `i + n`, `i + 2n`, … (Python's
/// `sorted(items)[i::n]`). A member not in the list gets nothing.
pub fn kazoo_partition(identifier: &str, members: &[String], items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    let mut workers = members.to_vec();
    workers.sort();
    let Some(i) = workers.iter().position(|w| w == identifier) else {
        return Vec::new();
    };
    items.into_iter().skip(i).step_by(workers.len()).collect()
}

/// The state of a [`SetPartitioner`] (kazoo's `PartitionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionState {
    /// Waiting for the party to be stable, then taking the locks of this member's items.
    Allocating,
    /// This member holds the lock of every item of its partition
    /// ([`partitions`](SetPartitioner::partitions)).
    Acquired,
    /// The party changed, the connection was suspended, or a lock was lost: stop working on
    /// the partition and call [`release_set`](SetPartitioner::release_set).
    Release,
    /// The session was lost, the client closed, [`finish`](SetPartitioner::finish) was
    /// called, or the partition function panicked: the partitioner is done (it left the
    /// party); create a new one.
    Failure,
}

#[derive(Debug, Clone)]
struct Snapshot {
    state: PartitionState,
    /// The acquired partition: each item with its lock node and lost signal.
    held: Arc<Vec<(String, String, LostSignal)>>,
}

enum Cmd {
    ReleaseSet(oneshot::Sender<()>),
    Finish(oneshot::Sender<()>),
}

#[derive(Debug)]
struct Driver {
    cmds: mpsc::UnboundedSender<Cmd>,
    state: watch::Receiver<Snapshot>,
}

impl Driver {
    /// The driver of a partitioner finished before it started: `Failure`, no task.
    fn finished() -> Driver {
        let (_, state) = watch::channel(Snapshot {
            state: PartitionState::Failure,
            held: Arc::new(Vec::new()),
        });
        Driver {
            cmds: mpsc::unbounded_channel().0,
            state,
        }
    }
}

/// Partitions a set of items among the members of a party (kazoo
/// `SetPartitioner(client, path, set, partition_func, identifier, time_boundary)`).
///
/// Layout (kazoo 2.11's `partitioner.py`): members join a [`ShallowParty`] at `P/party`
/// (`P/party/<uuid>-<identifier>`); each item has a [`Lock`] at `P/locks/<item>`
/// (`P/locks/<item>/<uuid>__lock__<seq>`, data = the identifier). The state machine:
///
/// * **Allocating**: wait until the party's membership has not changed for `time_boundary`
///   (a [`PatientChildrenWatch`]), compute this member's items with the partition function
///   (default [`kazoo_partition`]), take each item's lock. A party change meanwhile releases
///   what was taken and starts over; so does a suspended connection.
/// * **Acquired**: every lock is held. A party change, a suspended connection or a lost lock
///   moves to **Release**; the caller stops working on the items and calls
///   [`release_set`](Self::release_set), which releases the locks and allocates again.
/// * **Failure**: the session was lost (or the client closed, or [`finish`](Self::finish)):
///   the locks are gone or released, the member left the party; the partitioner is done.
///
/// An item is worked on only while its lock is held: [`owned`](Self::owned) lists the items
/// whose lock is held right now, and [`fence`](Self::fence) gives a `check` op on an item's
/// lock node for a [`Client::multi`], so a write applies only while the lock is really held.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::{PartitionState, SetPartitioner};
///
/// let p = SetPartitioner::new(&client, "/work_queues", ["q-1", "q-2", "q-3"], "worker-1")?
///     .time_boundary(Duration::from_secs(5));
/// loop {
///     match p.wait_for_acquire().await? {
///         PartitionState::Acquired => {
///             let items = p.partitions();
///             tokio::select! {
///                 _ = async { /* work on `items` */ std::future::pending::<()>().await } => {}
///                 _ = p.wait_while_acquired() => {} // the party changed: stop
///             }
///         }
///         PartitionState::Release => p.release_set().await?,
///         _ => break, // Failure: create a new partitioner
///     }
/// }
/// # Ok(()) }
/// ```
///
/// Nothing is sent until the first `wait_for_acquire*` (which starts the partitioner's
/// task). Dropping the handle releases the locks and leaves the party (in the background).
pub struct SetPartitioner {
    client: Client,
    path: String,
    items: Vec<String>,
    identifier: String,
    time_boundary: Duration,
    partition_fn: PartitionFn,
    driver: OnceLock<Driver>,
}

impl std::fmt::Debug for SetPartitioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPartitioner")
            .field("path", &self.path)
            .field("identifier", &self.identifier)
            .field("items", &self.items)
            .field("time_boundary", &self.time_boundary)
            .finish_non_exhaustive()
    }
}

impl SetPartitioner {
    /// A member `identifier` of the partitioner at `path` over `items` (kazoo's default
    /// `time_boundary` of 30 s; see [`time_boundary`](Self::time_boundary)).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if an item is not a node name ZooKeeper takes (empty, with
    /// `/`, `.` or `..`, or with a character ZooKeeper refuses in paths, such as a control
    /// character), or `identifier` cannot be part of one (it follows `<uuid>-` in the member
    /// node's name); [`Error::BadPath`] if `path` is not a valid path. Nothing is sent.
    pub fn new<I, S>(
        client: &Client,
        path: &str,
        items: I,
        identifier: impl Into<String>,
    ) -> Result<SetPartitioner>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let identifier = identifier.into();
        let mut items: Vec<String> = items.into_iter().map(Into::into).collect();
        items.sort();
        items.dedup();
        zk_core::validate_path(path, false)?;
        // a node name ZooKeeper takes: no '/', not empty, not "." or "..", no character it
        // refuses (checked as the path the name becomes)
        let node_name = |parent: &str, name: &str| {
            !name.contains('/')
                && zk_core::validate_path(&child_path(&child_path(path, parent), name), false)
                    .is_ok()
        };
        if let Some(bad) = items.iter().find(|i| !node_name("locks", i)) {
            return Err(Error::InvalidArgument(format!(
                "set partitioner {path}: item {bad:?} cannot be a node name"
            )));
        }
        if !node_name("party", &format!("0-{identifier}")) {
            return Err(Error::InvalidArgument(format!(
                "set partitioner {path}: identifier {identifier:?} cannot be in a node name"
            )));
        }
        Ok(SetPartitioner {
            client: client.clone(),
            path: path.to_owned(),
            items,
            identifier,
            time_boundary: Duration::from_secs(30),
            partition_fn: Arc::new(kazoo_partition),
            driver: OnceLock::new(),
        })
    }

    /// How long the party's membership must be unchanged before allocating (kazoo's
    /// `time_boundary`, default 30 s).
    pub fn time_boundary(mut self, d: Duration) -> Self {
        self.time_boundary = d;
        self
    }

    /// The partition function (kazoo's `partition_func`); default [`kazoo_partition`]. Every
    /// member must use the same one, or two members may want the same item (they then take
    /// turns on its lock: still never both at once). Of what it returns, only items of the
    /// set are taken, each once (an item named twice would otherwise wait for its own lock);
    /// if it panics, the partitioner moves to [`Failure`](PartitionState::Failure) (it leaves
    /// the party and takes nothing).
    pub fn partition_fn(
        mut self,
        f: impl Fn(&str, &[String], &[String]) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.partition_fn = Arc::new(f);
        self
    }

    /// The partitioner's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This member's identifier.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    fn driver(&self) -> &Driver {
        self.driver.get_or_init(|| {
            let (tx, rx) = watch::channel(Snapshot {
                state: PartitionState::Allocating,
                held: Arc::new(Vec::new()),
            });
            let (cmds, cmd_rx) = mpsc::unbounded_channel();
            let task = Task {
                client: self.client.clone(),
                path: self.path.clone(),
                items: self.items.clone(),
                identifier: self.identifier.clone(),
                time_boundary: self.time_boundary,
                partition_fn: self.partition_fn.clone(),
                state: tx,
                cmds: cmd_rx,
                guards: Vec::new(),
            };
            tokio::spawn(task.run());
            Driver { cmds, state: rx }
        })
    }

    fn snapshot(&self) -> Snapshot {
        match self.driver.get() {
            Some(d) => d.state.borrow().clone(),
            None => Snapshot {
                state: PartitionState::Allocating,
                held: Arc::new(Vec::new()),
            },
        }
    }

    /// The current state.
    pub fn state(&self) -> PartitionState {
        self.snapshot().state
    }

    /// This member's partition while [`Acquired`](PartitionState::Acquired) (sorted as the
    /// partition function returned it); empty in any other state.
    pub fn partitions(&self) -> Vec<String> {
        let s = self.snapshot();
        if s.state != PartitionState::Acquired {
            return Vec::new();
        }
        s.held.iter().map(|(item, _, _)| item.clone()).collect()
    }

    /// The items whose lock this member holds right now, while
    /// [`Acquired`](PartitionState::Acquired): [`partitions`](Self::partitions) minus the
    /// items whose lock was just lost (the state moves to Release right after).
    pub fn owned(&self) -> Vec<String> {
        let s = self.snapshot();
        if s.state != PartitionState::Acquired {
            return Vec::new();
        }
        s.held
            .iter()
            .filter(|(_, _, lost)| lost.reason().is_none())
            .map(|(item, _, _)| item.clone())
            .collect()
    }

    /// The lock node of `item` while it is [`owned`](Self::owned): the node whose existence is
    /// the server's truth about who holds the item.
    pub fn lock_node(&self, item: &str) -> Option<String> {
        let s = self.snapshot();
        if s.state != PartitionState::Acquired {
            return None;
        }
        s.held
            .iter()
            .find(|(i, _, lost)| i == item && lost.reason().is_none())
            .map(|(_, node, _)| node.clone())
    }

    /// A `check` op on the lock node of `item` while it is [`owned`](Self::owned): put it
    /// first in a [`Client::multi`] and the transaction applies only while this member really
    /// holds the item (its lock node exists). `None` if the item is not owned.
    pub fn fence(&self, item: &str) -> Option<Op> {
        self.lock_node(item).map(|node| Op::check(node, None))
    }

    /// Starts the partitioner if needed and waits however long it takes until it is not
    /// allocating: `Acquired`, `Release` or `Failure` (kazoo's `wait_for_acquire`, which
    /// returns after its timeout whatever the state).
    ///
    /// # Errors
    /// [`Error::Closed`] if the partitioner's task is gone (it does not end otherwise while
    /// the handle lives).
    ///
    /// # Cancel safety
    /// Cancel-safe: it only watches the state.
    pub async fn wait_for_acquire(&self) -> Result<PartitionState> {
        self.wait_for_acquire_until_opt(None)
            .await
            .map(|s| s.expect("no deadline"))
    }

    /// [`wait_for_acquire`](Self::wait_for_acquire) within `timeout`: `Ok(None)` if still
    /// allocating then.
    ///
    /// # Errors
    /// As [`wait_for_acquire`](Self::wait_for_acquire).
    pub async fn wait_for_acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<PartitionState>> {
        self.wait_for_acquire_until_opt(Some(deadline_after(timeout)))
            .await
    }

    /// [`wait_for_acquire`](Self::wait_for_acquire) until `deadline`.
    ///
    /// # Errors
    /// As [`wait_for_acquire`](Self::wait_for_acquire).
    pub async fn wait_for_acquire_until(
        &self,
        deadline: Instant,
    ) -> Result<Option<PartitionState>> {
        self.wait_for_acquire_until_opt(Some(deadline)).await
    }

    async fn wait_for_acquire_until_opt(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<PartitionState>> {
        let mut rx = self.driver().state.clone();
        let wait = rx.wait_for(|s| s.state != PartitionState::Allocating);
        tokio::select! {
            r = wait => r.map(|s| Some(s.state)).map_err(|_| Error::Closed),
            _ = sleep_until_opt(deadline) => Ok(None),
        }
    }

    /// Waits until the state is no longer [`Acquired`](PartitionState::Acquired) (at once if
    /// it is not) and returns the new state: the signal to stop working on the partition.
    /// Cancel-safe. A partitioner whose task is gone says `Failure`.
    pub async fn wait_while_acquired(&self) -> PartitionState {
        let Some(d) = self.driver.get() else {
            return PartitionState::Allocating;
        };
        let mut rx = d.state.clone();
        let r = rx
            .wait_for(|s| s.state != PartitionState::Acquired)
            .await
            .map(|s| s.state);
        r.unwrap_or(PartitionState::Failure)
    }

    /// Releases the partition's locks and allocates again (kazoo's `release_set`): call it
    /// in [`Release`](PartitionState::Release). Returns once the locks are released (their
    /// nodes deleted, or given up with a lost session). Does nothing in `Failure`.
    ///
    /// # Errors
    /// [`Error::Closed`] if the partitioner's task is gone.
    pub async fn release_set(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.driver().cmds.send(Cmd::ReleaseSet(tx)).is_err() {
            // no task: finished before it started (Failure), or gone
            return match self.state() {
                PartitionState::Failure => Ok(()),
                _ => Err(Error::Closed),
            };
        }
        let _ = rx.await;
        Ok(())
    }

    /// Releases the locks, leaves the party and moves to `Failure` for good (kazoo's
    /// `finish`). Before the partitioner started, it moves to `Failure` without sending
    /// anything (a later wait does not start it).
    ///
    /// # Errors
    /// None in practice; [`Error::Closed`] is never returned (a gone task has finished).
    pub async fn finish(&self) -> Result<()> {
        // never started: it never will be (a later wait says Failure, and sends nothing)
        let d = self.driver.get_or_init(Driver::finished);
        let (tx, rx) = oneshot::channel();
        if d.cmds.send(Cmd::Finish(tx)).is_ok() {
            let _ = rx.await;
        }
        Ok(())
    }
}

/// The partitioner's task.
struct Task {
    client: Client,
    path: String,
    items: Vec<String>,
    identifier: String,
    time_boundary: Duration,
    partition_fn: PartitionFn,
    state: watch::Sender<Snapshot>,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    guards: Vec<(String, Guard)>,
}

/// What ended a phase.
enum Next {
    Allocate,
    Release,
    Fail(Option<oneshot::Sender<()>>),
}

impl Task {
    fn set(&self, state: PartitionState) {
        let held = if state == PartitionState::Acquired {
            self.guards
                .iter()
                .map(|(i, g)| (i.clone(), g.path().to_owned(), g.lost_signal()))
                .collect()
        } else {
            Vec::new()
        };
        debug!(
            path = self.path,
            id = self.identifier,
            ?state,
            "set partitioner"
        );
        self.state.send_replace(Snapshot {
            state,
            held: Arc::new(held),
        });
    }

    async fn release_all(&mut self) {
        for (_, g) in self.guards.drain(..) {
            let _ = g.release().await;
        }
    }

    async fn run(mut self) {
        let mut states = self.client.state_stream();
        let party = match ShallowParty::new(
            &self.client,
            &child_path(&self.path, "party"),
            self.identifier.clone(),
        ) {
            Ok(p) => p,
            Err(_) => return self.set(PartitionState::Failure),
        };
        let locks = child_path(&self.path, "locks");
        if with_retries(None, || self.client.ensure_path(&locks))
            .await
            .is_err()
            || party.join().await.is_err()
        {
            return self.set(PartitionState::Failure);
        }
        let mut next = Next::Allocate;
        loop {
            next = match next {
                Next::Allocate => {
                    self.set(PartitionState::Allocating);
                    self.allocate(&mut states).await
                }
                Next::Release => {
                    self.set(PartitionState::Release);
                    self.await_release(&mut states).await
                }
                Next::Fail(ack) => {
                    self.release_all().await;
                    let _ = party.leave().await;
                    self.set(PartitionState::Failure);
                    if let Some(a) = ack {
                        let _ = a.send(());
                    }
                    // answer later commands at once; end when the handle is dropped
                    while let Some(cmd) = self.cmds.recv().await {
                        match cmd {
                            Cmd::ReleaseSet(a) | Cmd::Finish(a) => {
                                let _ = a.send(());
                            }
                        }
                    }
                    return;
                }
            };
        }
    }

    /// What a session state means outside of Failure: `Some(next)` to leave the phase.
    fn on_state(s: Option<zk_core::Status>) -> Option<Next> {
        match s {
            None => Some(Next::Fail(None)),
            Some(s) if s.state == State::Lost => Some(Next::Fail(None)),
            Some(s) if s.state == State::Suspended => Some(Next::Release),
            Some(_) => None,
        }
    }

    /// Allocating: a stable party, then this member's locks.
    async fn allocate(&mut self, states: &mut zk_core::StateStream) -> Next {
        let party_path = child_path(&self.path, "party");
        let watch = PatientChildrenWatch::new(&self.client, &party_path, self.time_boundary);
        'again: loop {
            self.release_all().await;
            let (children, mut changed): (Option<Vec<String>>, ChildrenChanged) = tokio::select! {
                r = watch.wait() => match r {
                    Ok(r) => r,
                    Err(_) => return Next::Fail(None),
                },
                s = states.next() => match Self::on_state(s) {
                    Some(Next::Release) => continue 'again,
                    Some(n) => return n,
                    None => continue 'again,
                },
                c = self.cmds.recv() => match c {
                    Some(Cmd::Finish(a)) => return Next::Fail(Some(a)),
                    Some(Cmd::ReleaseSet(a)) => { let _ = a.send(()); continue 'again }
                    None => return Next::Fail(None),
                },
            };
            let members: Vec<String> = children
                .unwrap_or_default()
                .iter()
                .map(|n| {
                    n.split_once('-')
                        .map_or(n.as_str(), |(_, id)| id)
                        .to_owned()
                })
                .collect();
            if !members.contains(&self.identifier) {
                // our member node is being re-created: wait for the party to change
                tokio::select! {
                    _ = &mut changed => {}
                    s = states.next() => if let Some(n @ Next::Fail(_)) = Self::on_state(s) { return n },
                }
                continue 'again;
            }
            let f = &self.partition_fn;
            let Ok(mine) = std::panic::catch_unwind(AssertUnwindSafe(|| {
                f(&self.identifier, &members, &self.items)
            })) else {
                error!(
                    path = self.path,
                    id = self.identifier,
                    "the partition function panicked"
                );
                return Next::Fail(None);
            };
            // each item of the set at most once: an item named twice would be locked twice
            // (the second acquisition waiting for the first for ever), one not in the set is
            // nobody's to take
            let mut seen = HashSet::new();
            let (mine, odd): (Vec<String>, Vec<String>) = mine
                .into_iter()
                .partition(|i| self.items.binary_search(i).is_ok() && seen.insert(i.clone()));
            if !odd.is_empty() {
                warn!(
                    path = self.path,
                    id = self.identifier,
                    ?odd,
                    "the partition function named items twice or outside the set; ignored"
                );
            }
            debug!(id = self.identifier, ?members, ?mine, "partition");
            for item in mine {
                let lock = Lock::new(
                    &self.client,
                    &child_path(&child_path(&self.path, "locks"), &item),
                    self.identifier.clone(),
                );
                // acquire is cancel-safe: a dropped attempt leaves no node
                let guard = tokio::select! {
                    g = lock.acquire() => match g {
                        Ok(g) => g,
                        Err(_) => return Next::Fail(None),
                    },
                    _ = &mut changed => continue 'again,
                    s = states.next() => match Self::on_state(s) {
                        Some(Next::Release) | None => continue 'again,
                        Some(n) => return n,
                    },
                    c = self.cmds.recv() => match c {
                        Some(Cmd::Finish(a)) => return Next::Fail(Some(a)),
                        Some(Cmd::ReleaseSet(a)) => { let _ = a.send(()); continue 'again }
                        None => return Next::Fail(None),
                    },
                };
                self.guards.push((item, guard));
            }
            self.set(PartitionState::Acquired);
            return self.hold(changed, states).await;
        }
    }

    /// Acquired: until the party changes, the connection is suspended or a lock is lost.
    async fn hold(&mut self, changed: ChildrenChanged, states: &mut zk_core::StateStream) -> Next {
        let lost: Vec<_> = self
            .guards
            .iter()
            .map(|(_, g)| {
                let s = g.lost_signal();
                Box::pin(async move { s.lost().await })
            })
            .collect();
        let any_lost = async {
            if lost.is_empty() {
                std::future::pending::<()>().await
            } else {
                select_all(lost).await;
            }
        };
        tokio::pin!(any_lost);
        let mut changed = changed;
        loop {
            tokio::select! {
                r = &mut changed => {
                    if matches!(r, Err(Error::SessionExpired) | Err(Error::Closed)) {
                        return Next::Fail(None);
                    }
                    return Next::Release;
                }
                _ = &mut any_lost => return Next::Release,
                s = states.next() => if let Some(n) = Self::on_state(s) { return n },
                c = self.cmds.recv() => return self.on_cmd(c).await,
            }
        }
    }

    /// A caller's command while acquired or releasing: finish, or release the set and
    /// allocate again.
    async fn on_cmd(&mut self, c: Option<Cmd>) -> Next {
        match c {
            Some(Cmd::Finish(a)) => Next::Fail(Some(a)),
            Some(Cmd::ReleaseSet(a)) => {
                self.release_all().await;
                let _ = a.send(());
                Next::Allocate
            }
            None => Next::Fail(None),
        }
    }

    /// Release: until the caller calls `release_set` (or the session is lost).
    async fn await_release(&mut self, states: &mut zk_core::StateStream) -> Next {
        loop {
            tokio::select! {
                s = states.next() => if let Some(n @ Next::Fail(_)) = Self::on_state(s) { return n },
                c = self.cmds.recv() => return self.on_cmd(c).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn kazoo_partition_deals_sorted_items_round_robin_over_sorted_members() {
        let items = v(&["e", "a", "d", "b", "c"]);
        let members = v(&["w2", "w1"]);
        assert_eq!(kazoo_partition("w1", &members, &items), v(&["a", "c", "e"]));
        assert_eq!(kazoo_partition("w2", &members, &items), v(&["b", "d"]));
        assert!(kazoo_partition("w3", &members, &items).is_empty());
    }
}
