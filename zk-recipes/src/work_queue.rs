//! Distributed queues in kazoo's layouts: [`Queue`] (kazoo `Queue`: an entry is taken by
//! deleting it) and [`LockingQueue`] (kazoo `LockingQueue`: an entry is taken by locking it
//! with an ephemeral node, and deleted only once consumed).
//!
//! Both keep entries as `entry-PPP-<seq>` PERSISTENT_SEQUENTIAL nodes, `PPP` the priority
//! (`000` first, `999` last, `100` by default) and `<seq>` the server's sequence; entries are
//! taken by priority, then in creation order.

use crate::plumbing::{
    child_path, deadline_after, passed, sleep_until_opt, spawn_cleanup, transient, wait_connected,
};
use futures_util::StreamExt;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tracing::debug;
use zk_core::{Client, CreateMode, Error, OneshotWatcher, Op, ReadOp, ReadResult, Result, State};

/// kazoo's default priority (`put(value, priority=100)`).
pub const DEFAULT_PRIORITY: u16 = 100;

/// The largest priority kazoo accepts (and the last to be taken).
pub const MAX_PRIORITY: u16 = 999;

/// What every entry's name starts with.
const ENTRY: &str = "entry-";

// ------------------------------------------------------------------------------ entries

/// `entry-PPP-`, the prefix a sequential create completes; a priority above 999 is refused.
fn entry_prefix(priority: u16) -> Result<String> {
    if priority > MAX_PRIORITY {
        return Err(Error::InvalidArgument(format!(
            "queue priority {priority} is out of range (0 to {MAX_PRIORITY}, as kazoo)"
        )));
    }
    Ok(format!("{ENTRY}{priority:03}-"))
}

/// `(priority, sequence)` of an entry name `entry-PPP-<seq>` (the sequence as ZooKeeper
/// prints its signed 32-bit counter), or `None` for any other child.
fn parse_entry(name: &str) -> Option<(u16, i32)> {
    let (prio, seq) = name.strip_prefix(ENTRY)?.split_once('-')?;
    if prio.len() != 3 || !prio.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = seq.strip_prefix('-').unwrap_or(seq);
    let ok_len = if seq.starts_with('-') {
        seq.len() == 10 || seq.len() == 11
    } else {
        seq.len() == 10
    };
    if !ok_len || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((prio.parse().ok()?, seq.parse().ok()?))
}

/// The entries among `names` in the order they are taken: by priority, then by sequence,
/// wrap-aware (the order starts after the largest gap between sequences on the 2^32 circle,
/// which is the creation order while the live entries span fewer than 2^31 sequence numbers).
/// Other children are left out.
fn sorted_entries<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<(u16, i32, &String)> = names
        .into_iter()
        .filter_map(|n| parse_entry(n).map(|(p, s)| (p, s, n)))
        .collect();
    let mut seqs: Vec<i32> = v.iter().map(|e| e.1).collect();
    seqs.sort_unstable();
    // the sequence just after the widest gap: where the creation order starts
    let mut origin = seqs.first().copied().unwrap_or(0);
    let mut widest = 0u32;
    for (i, s) in seqs.iter().enumerate() {
        let next = seqs[(i + 1) % seqs.len()];
        let gap = (next as u32).wrapping_sub(*s as u32);
        if gap > widest {
            widest = gap;
            origin = next;
        }
    }
    v.sort_by_key(|(p, s, n)| (*p, (*s as u32).wrapping_sub(origin as u32), (*n).clone()));
    v.into_iter().map(|(_, _, n)| n.clone()).collect()
}

/// Creates one entry under `parent` (created like `ensure_path` first if missing, with
/// `also`): `Ok(path)`. A create whose reply was lost is not tried again (it may have applied,
/// and a sequential create cannot be recognised): its error says `may_have_been_applied()`.
async fn put_entry(
    client: &Client,
    parent: &str,
    also: Option<&str>,
    value: &[u8],
    priority: u16,
) -> Result<String> {
    let path = child_path(parent, &entry_prefix(priority)?);
    loop {
        match client
            .create(&path, value, CreateMode::PersistentSequential)
            .await
        {
            Err(Error::NoNode) => ensure(client, parent, also, None).await?,
            Err(e) if !e.may_have_been_applied() && transient(&e, None) => {
                wait_connected(client, None).await?
            }
            other => return other,
        }
    }
}

/// Creates every value as an entry under `parent` in one transaction (all or none).
async fn put_entries(
    client: &Client,
    parent: &str,
    also: Option<&str>,
    values: &[&[u8]],
    priority: u16,
) -> Result<Vec<String>> {
    let path = child_path(parent, &entry_prefix(priority)?);
    let ops = || -> Vec<Op> {
        values
            .iter()
            .map(|v| Op::create(path.clone(), v.to_vec(), CreateMode::PersistentSequential))
            .collect()
    };
    loop {
        match client.multi(ops()).await {
            Ok(results) => {
                return Ok(results
                    .into_iter()
                    .filter_map(|r| match r {
                        zk_core::OpResult::Create { path, .. } => Some(path),
                        _ => None,
                    })
                    .collect())
            }
            Err(Error::TransactionFailed { error, .. }) if matches!(*error, Error::NoNode) => {
                ensure(client, parent, also, None).await?
            }
            Err(e) if !e.may_have_been_applied() && transient(&e, None) => {
                wait_connected(client, None).await?
            }
            Err(e) => return Err(e),
        }
    }
}

/// `ensure_path` of `a` and `b`, through connection loss, until `deadline` (that of the
/// call whose deadline-bounded client this is: past it, its requests fail at once, and
/// retrying them would spin): then its `Timeout`.
async fn ensure(
    client: &Client,
    a: &str,
    b: Option<&str>,
    deadline: Option<Instant>,
) -> Result<()> {
    for p in std::iter::once(a).chain(b) {
        loop {
            match client.ensure_path(p).await {
                Ok(()) => break,
                Err(e) if transient(&e, deadline) => wait_connected(client, deadline).await?,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// How many children `path` has (kazoo's `len`: its `numChildren`); 0 if it is missing.
async fn count_children(client: &Client, path: &str) -> Result<usize> {
    loop {
        match client.exists(path).await {
            Ok(s) => return Ok(s.map_or(0, |s| s.num_children.max(0) as usize)),
            Err(e) if transient(&e, None) || matches!(e, Error::SessionExpired) => {
                wait_connected(client, None).await?
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits until one of `watchers` fires, the client's state changes, or `deadline` passes
/// (`false`).
async fn wait_change(
    states: &mut zk_core::StateStream,
    watchers: Vec<OneshotWatcher>,
    deadline: Option<Instant>,
) -> bool {
    let any = async {
        if watchers.is_empty() {
            std::future::pending::<()>().await
        } else {
            let _ = futures_util::future::select_all(watchers).await;
        }
    };
    tokio::select! {
        _ = any => true,
        _ = states.next() => true,
        _ = sleep_until_opt(deadline) => false,
    }
}

/// The take loop of both queues: `once` (given the call's deadline-bounded client) until it
/// takes something, finds the queue empty while not `wait`ing, or `deadline` passes
/// (`Ok(None)`); a transient error or a new session waits for a connection and tries again, an
/// empty queue waits for its watches or a state change.
async fn take_loop<T, F, Fut>(
    client: &Client,
    deadline: Option<Instant>,
    wait: bool,
    mut once: F,
) -> Result<Option<T>>
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = Result<Step<T>>>,
{
    let c = bounded_client(client, deadline);
    let mut states = client.state_stream();
    loop {
        if passed(deadline) {
            return Ok(None);
        }
        let step = match once(c.clone()).await {
            Ok(s) => s,
            Err(Error::Timeout { .. }) if passed(deadline) => return Ok(None),
            Err(e) if transient(&e, deadline) || matches!(e, Error::SessionExpired) => {
                match wait_connected(&c, deadline).await {
                    Err(Error::Timeout { .. }) => return Ok(None),
                    r => r?,
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        match step {
            Step::Got(t) => return Ok(Some(t)),
            Step::InDoubt(e) => return Err(e),
            Step::Again => {}
            Step::Empty(_) if !wait => return Ok(None),
            Step::Empty(w) => {
                if !wait_change(&mut states, w, deadline).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// The client a call bounded by `deadline` sends through: its requests fail at the deadline.
fn bounded_client(client: &Client, deadline: Option<Instant>) -> Client {
    match deadline {
        Some(d) => client.with_deadline(d),
        None => client.clone(),
    }
}

// -------------------------------------------------------------------------------- Queue

/// The names of one listing of the queue, in the order they are taken, and the parent's
/// `cversion` they are current for, in the incarnation of the parent created at `czxid` (a
/// node deleted and created again starts its `cversion` and its sequence numbers at 0 again).
#[derive(Debug)]
struct Listing {
    names: VecDeque<String>,
    cversion: i32,
    czxid: i64,
}

/// A distributed priority queue in kazoo's `Queue(client, path)` layout: an entry is
/// `path/entry-PPP-<seq>` (PERSISTENT_SEQUENTIAL, data = the value), `PPP` the priority as
/// three digits (`000` is taken first, kazoo's default is `100`). A consumer takes the first
/// entry (by priority, then creation order) by **deleting** it; a delete that fails because
/// someone else took the entry first moves on to the next one.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::{Queue, DEFAULT_PRIORITY};
/// let jobs = Queue::new(&client, "/jobs");
/// jobs.put(b"resize img-1", DEFAULT_PRIORITY).await?;
/// jobs.put(b"urgent: refund 42", 0).await?; // taken before every priority-100 entry
/// jobs.put_all(&[b"a".as_slice(), b"b".as_slice()], 500).await?;
/// assert_eq!(jobs.get().await?, b"urgent: refund 42");
/// while let Some(job) = jobs.get_timeout(Duration::from_secs(1)).await? {
///     println!("{}", String::from_utf8_lossy(&job));
/// }
/// # Ok(()) }
/// ```
///
/// # Delivery: at most once
/// An entry is deleted *before* it is handed out: if the consumer dies after the delete and
/// before it has used the value, the entry is lost. That is inherent to this recipe (kazoo's
/// too); use [`LockingQueue`] when every entry must be processed. What this one adds over
/// kazoo: when the reply to the delete is lost, the call waits for the connection and looks:
/// the entry still there means the delete did not apply (it is tried again); the entry gone
/// means it was taken by this call or by another consumer, which no read can tell apart, and the
/// call fails with [`Error::ConnectionLoss`] (`may_have_been_applied()`): the entry may be lost,
/// it is never handed out twice. kazoo retries and silently moves to the next entry.
///
/// # The listing cache (kazoo's traps)
/// kazoo lists the children once and takes from that list until it is empty: entries put
/// meanwhile with a better priority wait until the whole old list is drained, and every
/// collision with another consumer throws the list away. This queue keeps one listing too (so
/// draining `n` entries does not list `n` times), but checks it on every take: the entry's data
/// and the parent's `cversion` (which every create and delete under it moves) are read in one
/// round trip (a `multiRead`: ZooKeeper 3.6 or later), and a `cversion` other than the
/// listing's plus our own deletes means the children changed: list again; so does another
/// `czxid` (the queue node created anew: its `cversion` and sequence numbers start at 0 again).
/// A take therefore always gets the best entry present when it read. The listing is the only memory a handle keeps (its names), and it is dropped as soon as
/// it is found stale; a waiting `get` holds one children watch, dropped when it returns.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    path: String,
    listing: Arc<Mutex<Option<Listing>>>,
}

/// One step of a take.
enum Step<T> {
    Got(T),
    /// List again, at once.
    Again,
    /// Nothing to take; wait for these watches (if waiting at all).
    Empty(Vec<OneshotWatcher>),
    /// A take whose outcome is unknown: this error ends the call.
    InDoubt(Error),
}

impl Queue {
    /// The queue at `path`.
    pub fn new(client: &Client, path: &str) -> Queue {
        Queue {
            client: client.clone(),
            path: path.to_owned(),
            listing: Arc::new(Mutex::new(None)),
        }
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Puts `value` in the queue with `priority` (0 to 999, lower first; kazoo's default is
    /// [`DEFAULT_PRIORITY`]); returns the entry's path. The queue's node is created like
    /// `ensure_path` if missing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a priority above 999, [`Error::BadPath`] for a queue path
    /// ZooKeeper does not take (an empty one would put the entries at the root; every call
    /// checks it; nothing sent); an error with
    /// `may_have_been_applied()` when the create's reply was lost: the entry may be in the queue
    /// (it is not tried again, which could put it twice); server errors; [`Error::Closed`].
    ///
    /// # Cancel safety
    /// Dropped after the create was sent, the entry may or may not be put (once).
    pub async fn put(&self, value: &[u8], priority: u16) -> Result<String> {
        zk_core::validate_path(&self.path, false)?;
        put_entry(&self.client, &self.path, None, value, priority).await
    }

    /// Puts every value with `priority`, in one transaction: all or none (kazoo has this on
    /// `LockingQueue` only). Returns the entries' paths, in order.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    ///
    /// # Cancel safety
    /// As [`put`](Self::put).
    pub async fn put_all(&self, values: &[&[u8]], priority: u16) -> Result<Vec<String>> {
        zk_core::validate_path(&self.path, false)?;
        put_entries(&self.client, &self.path, None, values, priority).await
    }

    /// How many children the queue's node has (kazoo's `len`); 0 if it does not exist (kazoo
    /// creates it).
    ///
    /// # Errors
    /// Server errors; [`Error::Closed`].
    pub async fn len(&self) -> Result<usize> {
        zk_core::validate_path(&self.path, false)?;
        count_children(&self.client, &self.path).await
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Errors
    /// As [`len`](Self::len).
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Takes the first entry (deleting it), waiting for one however long it takes.
    ///
    /// # Errors
    /// [`Error::ConnectionLoss`] when the delete's reply was lost and the entry is gone: it was
    /// taken by this call or by another consumer (see the type's docs); server errors;
    /// [`Error::Closed`].
    ///
    /// # Cancel safety
    /// Dropped before its delete is sent, nothing is taken; after it, the entry may have been
    /// taken and is then lost.
    pub async fn get(&self) -> Result<Vec<u8>> {
        self.take(None, true)
            .await?
            .ok_or(Error::Timeout { sent: false })
    }

    /// Takes the first entry, waiting at most `timeout` (one deadline for the whole call,
    /// across wake-ups and reconnects): `Ok(None)` if none came.
    ///
    /// # Errors
    /// As [`get`](Self::get), and [`Error::Timeout`]` { sent: true }` when the deadline passed
    /// while a delete's outcome was unknown.
    ///
    /// # Cancel safety
    /// As [`get`](Self::get).
    pub async fn get_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        self.get_until(deadline_after(timeout)).await
    }

    /// Like [`get_timeout`](Self::get_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    ///
    /// # Cancel safety
    /// As [`get`](Self::get).
    pub async fn get_until(&self, deadline: Instant) -> Result<Option<Vec<u8>>> {
        self.take(Some(deadline), true).await
    }

    /// Takes the first entry if there is one, without waiting (kazoo's `get()`): `Ok(None)`
    /// when the queue is empty. Connection loss is still waited out.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// # Cancel safety
    /// As [`get`](Self::get).
    pub async fn try_get(&self) -> Result<Option<Vec<u8>>> {
        self.take(None, false).await
    }

    async fn take(&self, deadline: Option<Instant>, wait: bool) -> Result<Option<Vec<u8>>> {
        zk_core::validate_path(&self.path, false)?;
        take_loop(&self.client, deadline, wait, |c| async move {
            self.take_once(&c, wait, deadline).await
        })
        .await
    }

    fn forget_listing(&self) {
        *self.listing.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// One attempt: list if there is no listing, then take its first entry.
    async fn take_once(
        &self,
        c: &Client,
        wait: bool,
        deadline: Option<Instant>,
    ) -> Result<Step<Vec<u8>>> {
        let front = {
            let l = self.listing.lock().unwrap_or_else(|p| p.into_inner());
            l.as_ref()
                .and_then(|l| l.names.front().map(|n| (n.clone(), l.cversion, l.czxid)))
        };
        let Some((name, cversion, czxid)) = front else {
            let (names, stat) = match c.get_children_with_stat(&self.path).await {
                Err(Error::NoNode) => {
                    ensure(c, &self.path, None, deadline).await?;
                    return Ok(Step::Again);
                }
                other => other?,
            };
            let sorted = sorted_entries(&names);
            if sorted.is_empty() {
                if !wait {
                    return Ok(Step::Empty(Vec::new()));
                }
                // list again with a watch: a put between the two listings is seen either way
                // (and the node deleted between them is re-created by the next listing)
                let (names, _, w) = match c.get_children_with_stat_watch(&self.path).await {
                    Err(Error::NoNode) => return Ok(Step::Again),
                    other => other?,
                };
                if sorted_entries(&names).is_empty() {
                    return Ok(Step::Empty(vec![w]));
                }
                return Ok(Step::Again);
            }
            *self.listing.lock().unwrap_or_else(|p| p.into_inner()) = Some(Listing {
                names: sorted.into(),
                cversion: stat.cversion,
                czxid: stat.czxid,
            });
            return Ok(Step::Again);
        };
        let entry = child_path(&self.path, &name);
        let reads = c
            .multi_read(vec![
                ReadOp::GetData(entry.clone()),
                ReadOp::GetData(self.path.clone()),
            ])
            .await?;
        let mut reads = reads.into_iter();
        let (Some(entry_read), Some(parent_read)) = (reads.next(), reads.next()) else {
            return Err(Error::Protocol("multi_read: missing results".into()));
        };
        let fresh = matches!(&parent_read,
            Ok(ReadResult::Data(_, s)) if s.cversion == cversion && s.czxid == czxid);
        let (data, version) = match entry_read {
            Ok(ReadResult::Data(d, s)) if fresh => (d, s.version),
            Ok(_) | Err(Error::NoNode) => {
                // the children changed since the listing (someone put or took): list again
                self.forget_listing();
                return Ok(Step::Again);
            }
            Err(e) => return Err(e),
        };
        match c.delete(&entry, Some(version)).await {
            Ok(()) => {
                let mut l = self.listing.lock().unwrap_or_else(|p| p.into_inner());
                let keep = match l.as_mut() {
                    Some(l) if l.cversion == cversion && l.names.front() == Some(&name) => {
                        l.names.pop_front();
                        // our own delete moved it
                        l.cversion = cversion.wrapping_add(1);
                        !l.names.is_empty()
                    }
                    _ => false,
                };
                if !keep {
                    *l = None;
                }
                Ok(Step::Got(data))
            }
            // taken by someone else first (or rewritten): the next one
            Err(Error::NoNode) | Err(Error::BadVersion) => {
                self.forget_listing();
                Ok(Step::Again)
            }
            Err(e) if e.may_have_been_applied() || matches!(e, Error::SessionExpired) => {
                self.forget_listing();
                self.settle_delete(c, &entry, deadline).await
            }
            Err(e) => Err(e),
        }
    }

    /// The reply to our delete of `entry` was lost: after the connection is back, the entry
    /// still there means the delete did not apply (take again); gone means taken by us or by
    /// someone else: unknown.
    async fn settle_delete(
        &self,
        c: &Client,
        entry: &str,
        deadline: Option<Instant>,
    ) -> Result<Step<Vec<u8>>> {
        let unknown = |why: &str| {
            debug!(
                entry,
                why, "queue get: a lost delete may have taken the entry"
            );
            Ok(Step::InDoubt(if passed(deadline) {
                Error::Timeout { sent: true }
            } else {
                Error::ConnectionLoss
            }))
        };
        loop {
            if wait_connected(c, deadline).await.is_err() {
                return unknown("no connection to tell");
            }
            // `sync` is ordered after the lost delete: settled once it answers
            let r = match c.sync(entry).await {
                Ok(()) | Err(Error::NoNode) => c.exists(entry).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(Some(_)) => return Ok(Step::Again),
                Ok(None) => return unknown("the entry is gone"),
                Err(e) if transient(&e, deadline) || matches!(e, Error::SessionExpired) => {}
                Err(_) => return unknown("the read failed"),
            }
        }
    }
}

// ------------------------------------------------------------------------- LockingQueue

/// A distributed priority queue in kazoo's `LockingQueue(client, path)` layout, where an entry
/// is taken by *locking* it and deleted only when the consumer is done with it: at least once,
/// and never held by two consumers at the same time.
///
/// Layout (kazoo 2.11): entries are `P/entries/entry-PPP-<seq>` (PERSISTENT_SEQUENTIAL, data =
/// the value, `PPP` the priority); an entry is taken while `P/taken/<entry name>` exists
/// (EPHEMERAL, data = a uuid4 as 32 hex digits, as kazoo's id: a fresh one per take, so a take
/// tells its own taken node from one of another consumer sharing its client, and so its
/// session). [`get`](Self::get) takes the
/// first entry not taken and hands out a [`LockedEntry`]: [`consume`](LockedEntry::consume)
/// deletes the entry and the taken node in one transaction, [`release`](LockedEntry::release)
/// deletes only the taken node (someone else may take the entry). If the consumer's session
/// ends, the taken node goes with it and the entry is free again.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::{LockingQueue, DEFAULT_PRIORITY};
/// let q = LockingQueue::new(&client, "/work");
/// q.put(b"job-1", DEFAULT_PRIORITY).await?;
/// if let Some(entry) = q.get_timeout(Duration::from_secs(5)).await? {
///     println!("working on {}", String::from_utf8_lossy(entry.data()));
///     // ... do the work; then remove it for good (only if still ours):
///     if !entry.consume().await? {
///         println!("lost it (session expired): someone else will do it");
///     }
/// }
/// # Ok(()) }
/// ```
///
/// # Guarantees
/// * **Never two holders.** The taken node is the lock: creating it fails while someone
///   (kazoo or Rust) holds the entry. Our take is one transaction: create the taken node *and*
///   rewrite the entry's data unchanged, conditional on the version we read it at. So the
///   value handed out is the entry's value at the moment of the take, and the entry's version
///   marks the take: [`consume`](LockedEntry::consume) deletes the entry only at that version
///   (and only while the client is in the session that took it), so a consumer whose take was
///   lost (its session expired, and another consumer took the entry) cannot consume it.
/// * **Never lost.** An entry is deleted only by a successful `consume`. A consumer that dies
///   or loses its session before consuming leaves the entry to the others.
/// * **Consumed once.** Every `consume` that returns `Ok(true)` deleted the entry; at most one
///   does per entry. When the reply to the consume's transaction is lost, the consume waits
///   for the connection and looks: in the same session, the entry gone means ours applied
///   (nobody else could take it while our taken node lived); still there, it tries again. If
///   the session ended meanwhile and the entry is gone, no read can tell whether our
///   transaction or another consumer's took it: the consume fails with
///   [`Error::ConnectionLoss`] (consumed exactly once, by us or by the other one).
///
/// # SUSPENDED and LOST
/// While the client is disconnected a [`LockedEntry`] may or may not still be held (the server
/// may expire the session); [`holds_lock`](LockedEntry::holds_lock) asks the server once the
/// connection is back. After a session loss it is not held: `consume` returns `Ok(false)` and
/// another consumer gets the entry. Work done for an entry whose consume says `false` may be
/// done twice: the queue is at-least-once, exactly-once only for the consume itself.
///
/// # kazoo differences
/// `get` returns a [`LockedEntry`] per entry (kazoo keeps one "processing element" per handle
/// and hands it out again until it is consumed); one total deadline per call (kazoo's
/// `get(timeout)` waits with callbacks that stay registered: its watcher leak, kazoo issue
/// 175; ours are one-shot watches dropped when the call returns); the take's conditional
/// rewrite of the entry (kazoo only creates the taken node, then reads the entry); consume and
/// release are fenced by the session and the entry's version, not by a read of the taken node
/// before an unconditional delete.
#[derive(Debug, Clone)]
pub struct LockingQueue {
    client: Client,
    path: String,
    entries: String,
    taken: String,
}

impl LockingQueue {
    /// The queue at `path` (entries under `path/entries`, takes under `path/taken`). Unlike
    /// kazoo's handle it has no `id`: kazoo writes its handle's id into every taken node, this
    /// queue writes a fresh uuid4 per take (see the type's docs), so a handle id would name
    /// nothing on the server.
    pub fn new(client: &Client, path: &str) -> LockingQueue {
        LockingQueue {
            client: client.clone(),
            path: path.to_owned(),
            entries: child_path(path, "entries"),
            taken: child_path(path, "taken"),
        }
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Puts `value` with `priority` (0 to 999, lower first); returns the entry's path.
    /// `P/entries` and `P/taken` are created like `ensure_path` if missing.
    ///
    /// # Errors
    /// As [`Queue::put`].
    ///
    /// # Cancel safety
    /// As [`Queue::put`].
    pub async fn put(&self, value: &[u8], priority: u16) -> Result<String> {
        zk_core::validate_path(&self.path, false)?;
        put_entry(
            &self.client,
            &self.entries,
            Some(&self.taken),
            value,
            priority,
        )
        .await
    }

    /// Puts every value with `priority` in one transaction (kazoo's `put_all`): all or none.
    ///
    /// # Errors
    /// As [`Queue::put`].
    ///
    /// # Cancel safety
    /// As [`Queue::put`].
    pub async fn put_all(&self, values: &[&[u8]], priority: u16) -> Result<Vec<String>> {
        zk_core::validate_path(&self.path, false)?;
        put_entries(
            &self.client,
            &self.entries,
            Some(&self.taken),
            values,
            priority,
        )
        .await
    }

    /// How many entries there are, taken ones included (kazoo's `len`).
    ///
    /// # Errors
    /// Server errors; [`Error::Closed`].
    pub async fn len(&self) -> Result<usize> {
        zk_core::validate_path(&self.path, false)?;
        count_children(&self.client, &self.entries).await
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Errors
    /// As [`len`](Self::len).
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Takes the first entry nobody holds, waiting however long it takes.
    ///
    /// # Errors
    /// Server errors; [`Error::Closed`].
    ///
    /// # Cancel safety
    /// Dropped while its take's transaction is in flight, the take may apply: the taken node
    /// then stays until the session ends (the entry is not lost, only held that long).
    pub async fn get(&self) -> Result<LockedEntry> {
        self.take(None, true)
            .await?
            .ok_or(Error::Timeout { sent: false })
    }

    /// Takes the first entry nobody holds, waiting at most `timeout` (one deadline for the
    /// whole call): `Ok(None)` if none could be taken in time.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// # Cancel safety
    /// As [`get`](Self::get).
    pub async fn get_timeout(&self, timeout: Duration) -> Result<Option<LockedEntry>> {
        self.get_until(deadline_after(timeout)).await
    }

    /// Like [`get_timeout`](Self::get_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// # Cancel safety
    /// As [`get`](Self::get).
    pub async fn get_until(&self, deadline: Instant) -> Result<Option<LockedEntry>> {
        self.take(Some(deadline), true).await
    }

    /// Takes the first entry nobody holds if there is one, without waiting for one.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// # Cancel safety
    /// As [`get`](Self::get).
    pub async fn try_get(&self) -> Result<Option<LockedEntry>> {
        self.take(None, false).await
    }

    async fn take(&self, deadline: Option<Instant>, wait: bool) -> Result<Option<LockedEntry>> {
        zk_core::validate_path(&self.path, false)?;
        take_loop(&self.client, deadline, wait, |c| async move {
            self.take_once(&c, wait, deadline).await
        })
        .await
    }

    /// One pass: list entries and takes, try the free entries in order.
    async fn take_once(
        &self,
        c: &Client,
        wait: bool,
        deadline: Option<Instant>,
    ) -> Result<Step<LockedEntry>> {
        let mut watchers = Vec::new();
        let listed = if wait {
            match c.get_children_watch(&self.entries).await {
                Ok((e, w1)) => {
                    watchers.push(w1);
                    match c.get_children_watch(&self.taken).await {
                        Ok((t, w2)) => {
                            watchers.push(w2);
                            Ok((e, t))
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            }
        } else {
            match c.get_children(&self.entries).await {
                Ok(e) => c.get_children(&self.taken).await.map(|t| (e, t)),
                Err(e) => Err(e),
            }
        };
        let (entries, taken) = match listed {
            Err(Error::NoNode) => {
                ensure(c, &self.entries, Some(&self.taken), deadline).await?;
                return Ok(Step::Again);
            }
            other => other?,
        };
        let taken: HashSet<String> = taken.into_iter().collect();
        let free = sorted_entries(entries.iter().filter(|e| !taken.contains(*e)));
        for name in free {
            match self.try_take(c, &name, deadline).await? {
                Some(Step::Got(e)) => return Ok(Step::Got(e)),
                Some(_) => return Ok(Step::Again),
                None => {} // taken or consumed by someone else: the next one
            }
        }
        Ok(Step::Empty(watchers))
    }

    /// Tries to take entry `name`: `None` if someone else holds or consumed it,
    /// `Some(Again)` to list again.
    async fn try_take(
        &self,
        c: &Client,
        name: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<Step<LockedEntry>>> {
        let entry = child_path(&self.entries, name);
        let taken = child_path(&self.taken, name);
        let (data, stat) = match c.get_data(&entry).await {
            Err(Error::NoNode) => return Ok(None),
            other => other?,
        };
        // this take's own mark: one client (one session) may serve several consumers, and
        // a taken node of the session is ours only if it carries our mark
        let token = uuid::Uuid::new_v4().simple().to_string();
        let ops = vec![
            Op::create(
                taken.clone(),
                token.as_bytes().to_vec(),
                CreateMode::Ephemeral,
            ),
            Op::set_data(entry.clone(), data.clone(), Some(stat.version)),
        ];
        let locked = |sid| LockedEntry {
            client: self.client.clone(),
            entry: entry.clone(),
            taken: taken.clone(),
            token: token.clone(),
            name: name.to_owned(),
            data: data.clone(),
            version: stat.version.wrapping_add(1),
            sid,
            done: false,
        };
        // dropped while the take is in flight (or being settled): a take that applied would hold
        // the entry until the session ends; release it in the background if it is ours
        let mut armed = TakeInFlight(Some((self.client.clone(), taken.clone(), token.clone())));
        let r = self.send_take(c, ops, &taken, &token, deadline).await;
        armed.0 = None;
        match r? {
            Took::Ours(sid) => Ok(Some(Step::Got(locked(sid)))),
            Took::Others => Ok(None),
            Took::Again => Ok(Some(Step::Again)),
        }
    }

    /// Sends the take transaction and tells whose the entry is now.
    async fn send_take(
        &self,
        c: &Client,
        ops: Vec<Op>,
        taken: &str,
        token: &str,
        deadline: Option<Instant>,
    ) -> Result<Took> {
        let before = c.session_id();
        match c.multi(ops).await {
            // the session it applied in: ours, unless the client changed sessions around it
            // (then the owner of the taken node tells)
            Ok(_) if c.session_id() == before => Ok(Took::Ours(before)),
            Ok(_) => self.settle_take(c, taken, token, deadline).await,
            Err(Error::TransactionFailed { index, error }) => match (index, *error) {
                // held by someone (kazoo or us) / consumed meanwhile
                (0, Error::NodeExists) | (1, Error::NoNode) => Ok(Took::Others),
                // `taken` is missing (deleted), or the entry moved since we read it
                (0, Error::NoNode) => {
                    ensure(c, &self.entries, Some(&self.taken), deadline).await?;
                    Ok(Took::Again)
                }
                (1, Error::BadVersion) => Ok(Took::Again),
                (_, e) => Err(e),
            },
            Err(e) if e.may_have_been_applied() || e.is_session_dead() => {
                self.settle_take(c, taken, token, deadline).await
            }
            Err(e) => Err(e),
        }
    }

    /// Whether a take whose reply was lost (or that raced a change of session) applied: only
    /// if the taken node is an ephemeral of the client's current session (an old session's
    /// node goes with it) carrying this take's `token` (another consumer sharing the client
    /// shares its session too).
    async fn settle_take(
        &self,
        c: &Client,
        taken: &str,
        token: &str,
        deadline: Option<Instant>,
    ) -> Result<Took> {
        loop {
            match wait_connected(c, deadline).await {
                Err(Error::Timeout { .. }) if passed(deadline) => {
                    // a take that applied would hold the entry until its session ends:
                    // released in the background if it is ours
                    spawn_release(
                        self.client.clone(),
                        taken.to_owned(),
                        token.to_owned(),
                        None,
                    );
                    return Err(Error::Timeout { sent: true });
                }
                r => r?,
            }
            let sid = c.session_id();
            let r = match c.sync(taken).await {
                Ok(()) | Err(Error::NoNode) => read_taken(c, taken).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(Some((d, s)))
                    if s.ephemeral_owner == sid
                        && d == token.as_bytes()
                        && c.session_id() == sid =>
                {
                    return Ok(Took::Ours(sid))
                }
                Ok(_) => return Ok(Took::Again),
                Err(e) if transient(&e, deadline) || matches!(e, Error::SessionExpired) => {}
                Err(e) => {
                    // unsettled (the deadline passed while connected, so the read failed at
                    // once): a take that applied would hold the entry until its session
                    // ends; released in the background if it is ours
                    spawn_release(
                        self.client.clone(),
                        taken.to_owned(),
                        token.to_owned(),
                        None,
                    );
                    return Err(if passed(deadline) {
                        Error::Timeout { sent: true }
                    } else {
                        e
                    });
                }
            }
        }
    }
}

/// Whose an entry is after our take transaction.
enum Took {
    /// Ours, taken in this session.
    Ours(i64),
    /// Held or consumed by someone else: try the next entry.
    Others,
    /// List again.
    Again,
}

/// Armed while a take is in flight: dropped armed (the call was dropped), it releases the
/// taken node in the background if it turns out to be ours.
struct TakeInFlight(Option<(Client, String, String)>);

impl Drop for TakeInFlight {
    fn drop(&mut self) {
        if let Some((client, taken, token)) = self.0.take() {
            spawn_release(client, taken, token, None);
        }
    }
}

/// Deletes our taken node `taken` (marked `token`) in the background while session `sid`
/// lives (an entry dropped without consume or release), or (`None`) if it is an ephemeral of
/// the client's session once connected (a take whose outcome its dropped or timed-out call
/// never learnt).
fn spawn_release(client: Client, taken: String, token: String, sid: Option<i64>) {
    spawn_cleanup("queue entry dropped", async move {
        let _ = release_taken(&client, &taken, &token, None, sid).await;
    });
}

/// The data and stat of a taken node, `None` if it is missing.
async fn read_taken(c: &Client, taken: &str) -> Result<Option<(Vec<u8>, zk_core::Stat)>> {
    match c.get_data(taken).await {
        Ok((d, s)) => Ok(Some((d, s))),
        Err(Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes `taken` if it is ours: only while the client is connected in session `sid` (`None`:
/// the session it is in when it looks), the node's ephemeral owner is that session and its data
/// is our take's `token` (other consumers may share the session; at the version read, so a
/// node of theirs created meanwhile is not deleted), and, with `entry`, only while the entry
/// is at the version our take left. `Ok(true)` if it deleted it.
async fn release_taken(
    client: &Client,
    taken: &str,
    token: &str,
    entry: Option<(&str, i32)>,
    sid: Option<i64>,
) -> Result<bool> {
    let c = client.fail_if_disconnected();
    let mut sent = false;
    if sid.is_none() {
        wait_connected(client, None).await?;
    }
    let sid = sid.unwrap_or_else(|| client.session_id());
    loop {
        if client.session_id() != sid {
            return Ok(false);
        }
        let stat = match read_taken(&c, taken).await {
            Ok(Some((d, s))) if s.ephemeral_owner == sid && d == token.as_bytes() => s,
            // gone: released by a reply we lost (`sent`), or not ours any more
            Ok(_) => return Ok(sent),
            Err(e) if e.is_session_dead() && !matches!(e, Error::Closed) => return Ok(false),
            Err(e) if e.is_retryable() => {
                wait_connected(client, None).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut ops = Vec::new();
        if let Some((e, v)) = entry {
            ops.push(Op::check(e, Some(v)));
        }
        ops.push(Op::delete(taken, Some(stat.version)));
        match c.multi(ops).await {
            Ok(_) => return Ok(true),
            Err(Error::TransactionFailed { .. }) => return Ok(false),
            Err(e) if e.is_session_dead() && !matches!(e, Error::Closed) => return Ok(false),
            Err(e) if e.may_have_been_applied() => {
                sent = true;
                wait_connected(client, None).await?;
            }
            Err(e) if e.is_retryable() => wait_connected(client, None).await?,
            Err(e) => return Err(e),
        }
    }
}

/// An entry of a [`LockingQueue`] taken by this client: its value, and the right to
/// [`consume`](Self::consume) or [`release`](Self::release) it. Dropping it without either
/// releases it in the background.
#[derive(Debug)]
pub struct LockedEntry {
    client: Client,
    entry: String,
    taken: String,
    /// What our take wrote into the taken node.
    token: String,
    name: String,
    data: Vec<u8>,
    /// The entry's version after our take.
    version: i32,
    /// The session that took it.
    sid: i64,
    done: bool,
}

impl LockedEntry {
    /// The entry's value.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The entry's name (`entry-PPP-<seq>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entry's path.
    pub fn path(&self) -> &str {
        &self.entry
    }

    /// Whether the take still holds, asked of the server (kazoo's `holds_lock`): the client is
    /// in the session that took it, and our taken node (with our take's data) exists (after a
    /// `sync`). `false` while
    /// a disconnect is not settled yet only if the request fails: it waits for the connection.
    ///
    /// # Errors
    /// Server errors; [`Error::Closed`].
    pub async fn holds_lock(&self) -> Result<bool> {
        loop {
            if self.client.session_id() != self.sid {
                return Ok(false);
            }
            let r = match self.client.sync(&self.taken).await {
                Ok(()) | Err(Error::NoNode) => read_taken(&self.client, &self.taken).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(s) => {
                    return Ok(self.client.session_id() == self.sid
                        && s.is_some_and(|(d, s)| {
                            s.ephemeral_owner == self.sid && d == self.token.as_bytes()
                        }))
                }
                Err(e) if e.is_session_dead() && !matches!(e, Error::Closed) => return Ok(false),
                Err(e) if e.is_retryable() => wait_connected(&self.client, None).await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes the entry from the queue for good: deletes the entry (at the version our take
    /// left) and our taken node in one transaction, sent only while the client is connected in
    /// the session that took it. `Ok(true)`: consumed, by us, once. `Ok(false)`: not ours any
    /// more (our session ended, or the taken node was deleted): nothing changed, and the entry
    /// is someone else's to take.
    ///
    /// # Errors
    /// [`Error::ConnectionLoss`] when the transaction's reply was lost, the session then ended
    /// and the entry is gone: consumed once, by us or by the consumer that took it after our
    /// session ended (see [`LockingQueue`]); [`Error::Closed`].
    ///
    /// # Cancel safety
    /// Dropped while the transaction is in flight, the entry may or may not be consumed; if
    /// not, it is released in the background.
    pub async fn consume(mut self) -> Result<bool> {
        let c = self.client.fail_if_disconnected();
        let ops = || {
            vec![
                Op::delete(self.entry.clone(), Some(self.version)),
                Op::delete(self.taken.clone(), None),
            ]
        };
        loop {
            if self.client.session_id() != self.sid {
                self.done = true;
                return Ok(false);
            }
            match c.multi(ops()).await {
                Ok(_) => {
                    self.done = true;
                    return Ok(true);
                }
                Err(Error::TransactionFailed { .. }) => {
                    // the entry moved on (someone else's take) or our taken node is gone
                    return Ok(false);
                }
                Err(e) if e.is_session_dead() && !matches!(e, Error::Closed) => {
                    self.done = true;
                    return Ok(false);
                }
                Err(e) if e.may_have_been_applied() => {
                    if let Some(r) = self.settle_consume().await? {
                        self.done = true;
                        return r;
                    }
                }
                Err(e) if e.is_retryable() => {
                    if self.client.state() != State::Connected {
                        wait_connected(&self.client, None).await?;
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// After a lost reply to the consume: `Some(outcome)`, or `None` to send it again.
    async fn settle_consume(&self) -> Result<Option<Result<bool>>> {
        loop {
            wait_connected(&self.client, None).await?;
            let r = match self.client.sync(&self.entry).await {
                Ok(()) | Err(Error::NoNode) => self.client.exists(&self.entry).await,
                Err(e) => Err(e),
            };
            let same = self.client.session_id() == self.sid;
            match r {
                Ok(None) if same => return Ok(Some(Ok(true))),
                Ok(None) => {
                    debug!(entry = %self.entry, "consume: outcome unknown after a session loss");
                    return Ok(Some(Err(Error::ConnectionLoss)));
                }
                // still there: ours did not apply (a transaction applies whole)
                Ok(Some(s)) if same && s.version == self.version => return Ok(None),
                Ok(Some(_)) => return Ok(Some(Ok(false))),
                Err(e) if e.is_retryable() || matches!(e, Error::SessionExpired) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Gives the entry back without consuming it (kazoo's `release`): deletes our taken node,
    /// only while the client is connected in the session that took it and the entry is at the
    /// version our take left. `Ok(true)` if this call released it; `Ok(false)` if it was no
    /// longer ours (then it is free already, or someone else's).
    ///
    /// # Errors
    /// [`Error::Closed`]; server errors.
    ///
    /// # Cancel safety
    /// Dropped midway, the release goes on in the background.
    pub async fn release(mut self) -> Result<bool> {
        let r = release_taken(
            &self.client,
            &self.taken,
            &self.token,
            Some((&self.entry, self.version)),
            Some(self.sid),
        )
        .await;
        if r.is_ok() {
            self.done = true;
        }
        r
    }
}

impl Drop for LockedEntry {
    fn drop(&mut self) {
        if !self.done && !self.client.is_closed() && self.client.session_id() == self.sid {
            spawn_release(
                self.client.clone(),
                self.taken.clone(),
                self.token.clone(),
                Some(self.sid),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_kazoos() {
        assert_eq!(entry_prefix(0).unwrap(), "entry-000-");
        assert_eq!(entry_prefix(100).unwrap(), "entry-100-");
        assert_eq!(entry_prefix(999).unwrap(), "entry-999-");
        assert!(entry_prefix(1000).is_err());
        assert_eq!(parse_entry("entry-100-0000000007"), Some((100, 7)));
        assert_eq!(parse_entry("entry-005--000000003"), Some((5, -3)));
        assert_eq!(parse_entry("entry-005--2147483648"), Some((5, i32::MIN)));
        assert_eq!(parse_entry("entry-5-0000000007"), None);
        assert_eq!(parse_entry("entry-100-000000007"), None);
        assert_eq!(parse_entry("other"), None);
    }

    #[test]
    fn entries_go_by_priority_then_creation_order_across_the_wrap() {
        let names: Vec<String> = [
            "entry-100-2147483646",
            "entry-100--2147483648",
            "entry-000-2147483647",
            "junk",
            "entry-100--2147483647",
            "entry-999-2147483645",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            sorted_entries(&names),
            vec![
                "entry-000-2147483647",
                "entry-100-2147483646",
                "entry-100--2147483648",
                "entry-100--2147483647",
                "entry-999-2147483645",
            ]
        );
        let plain: Vec<String> = ["entry-100-0000000002", "entry-100-0000000001"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            sorted_entries(&plain),
            vec!["entry-100-0000000001", "entry-100-0000000002"]
        );
    }
}
