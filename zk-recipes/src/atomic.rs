//! A distributed `long` (Curator's `DistributedAtomicLong`): an 8-byte big-endian value in
//! one node, changed by optimistic compare-and-set, optionally promoted to a mutex.

use crate::lock::Lock;
use crate::naming::Layout;
use crate::plumbing::{deadline_after, ensure_containers, parent_of, passed, wait_after_error};
use std::time::Duration;
use tokio::time::Instant;
use tracing::debug;
use zk_core::{Client, CreateMode, Error, Result};

/// How an atomic operation went (Curator's `AtomicValue<Long>` with its `AtomicStats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AtomicResult {
    /// Whether the operation was applied (for [`DistributedAtomicLong::get`] always).
    pub succeeded: bool,
    /// The value read just before the (last) attempt; 0 for a missing node.
    pub pre_value: i64,
    /// The value written, when it succeeded; otherwise `pre_value` (Curator says 0).
    pub post_value: i64,
    /// What it took.
    pub stats: AtomicStats,
}

/// What an atomic operation took (Curator's `AtomicStats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AtomicStats {
    /// Optimistic compare-and-set attempts.
    pub optimistic_tries: u32,
    /// Attempts made while holding the promotion lock.
    pub promoted_lock_tries: u32,
    /// Time spent on the optimistic attempts.
    pub optimistic_time: Duration,
    /// Time spent on the promotion (taking the lock included).
    pub promoted_time: Duration,
}

/// Promotion to a lock after the optimistic attempts failed (Curator's `PromotedToLock`).
#[derive(Debug, Clone)]
struct Promotion {
    lock: Lock,
    max_lock_time: Duration,
}

/// A `long` shared through one node in Curator's `DistributedAtomicLong` layout: the node `P`
/// holds the value as 8 bytes, big-endian two's complement (Java's `ByteBuffer.putLong`);
/// missing or empty data reads as 0. Rust and Java (Curator) processes share the value.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::DistributedAtomicLong;
///
/// let seq = DistributedAtomicLong::new(&client, "/ids/next")
///     .optimistic_tries(5)
///     .promote_to_lock("/ids/next-lock", Duration::from_secs(5));
/// let r = seq.increment().await?;
/// if r.succeeded {
///     println!("took id {}", r.post_value);
/// }
/// # Ok(()) }
/// ```
///
/// # Behavior
///
/// * **Algorithm (Curator 5.4's `DistributedAtomicValue`).** An update reads the value and
///   its version and writes the new value *conditional on that version* (a missing node is
///   created, parents as containers). Someone else wrote in between → the attempt fails and,
///   up to [`optimistic_tries`](Self::optimistic_tries), another is made after a short pause.
///   If all fail and a [promotion](Self::promote_to_lock) is set, it takes the mutex at the
///   lock path (Curator's `InterProcessMutex` layout, so Java users of the same
///   `PromotedToLock` path exclude us and we them), waiting at most `max_lock_time`, and makes
///   up to [`lock_tries`](Self::lock_tries) more attempts while holding it. Otherwise, or if
///   those fail too, the result says `succeeded: false` and nothing was written.
/// * **Arithmetic** is Java's: `add` wraps around on overflow, as Curator's does.
/// * **Lost replies.** A conditional write whose reply was lost is judged after the reconnect
///   (`sync`, read): still at the old version → not applied, tried again; moved one version on
///   with other data → someone else's write, tried again; moved one version on with our data
///   (or further, or gone) → it may have been ours: [`Error::ConnectionLoss`]
///   (`may_have_been_applied()`), never applied twice. A lost *create* (the node was
///   missing): still missing → not applied; created with other data and never changed →
///   someone else's, tried again; our data, or changed since → it may have been ours.
/// * **SUSPENDED / LOST.** Requests wait for the connection (a new session too: the node is
///   persistent). A promotion lock lost meanwhile is released; its attempts were fenced by the
///   version, so nothing is applied twice.
/// * **Deadline.** [`op_timeout`](Self::op_timeout) bounds every operation as a whole: when it
///   passes, the result says `succeeded: false` (nothing written), or the error is
///   `Timeout { sent: true }` if a write was in doubt at that moment. (One knob rather than a
///   `_timeout` twin of each of the eight operations.)
/// * **Cancel safety.** Dropping an operation before its write is sent changes nothing;
///   after, the write may apply (once). A promotion lock is released in the background.
#[derive(Debug, Clone)]
pub struct DistributedAtomicLong {
    client: Client,
    path: String,
    tries: u32,
    promotion: Option<Promotion>,
    /// Attempts under the promotion lock (kept here: set before or after the promotion).
    lock_tries: u32,
    timeout: Option<Duration>,
}

impl DistributedAtomicLong {
    /// The value at `path`. Ten optimistic attempts, no promotion, no deadline.
    pub fn new(client: &Client, path: &str) -> DistributedAtomicLong {
        DistributedAtomicLong {
            client: client.clone(),
            path: path.to_owned(),
            tries: 10,
            promotion: None,
            lock_tries: 10,
            timeout: None,
        }
    }

    /// How many optimistic attempts an update makes (at least 1; Curator's `RetryPolicy`).
    pub fn optimistic_tries(mut self, tries: u32) -> Self {
        self.tries = tries.max(1);
        self
    }

    /// After the optimistic attempts failed, take the mutex at `lock_path` (Curator's
    /// `InterProcessMutex` layout, `P/_c_<uuid>-lock-<seq>`), waiting at most `max_lock_time`,
    /// and try again while holding it (Curator's `PromotedToLock`).
    pub fn promote_to_lock(mut self, lock_path: &str, max_lock_time: Duration) -> Self {
        self.promotion = Some(Promotion {
            lock: Lock::new(&self.client, lock_path, "").layout(Layout::Curator),
            max_lock_time,
        });
        self
    }

    /// How many attempts to make while holding the promotion lock (default 10; at least 1),
    /// before or after [`promote_to_lock`](Self::promote_to_lock).
    pub fn lock_tries(mut self, tries: u32) -> Self {
        self.lock_tries = tries.max(1);
        self
    }

    /// One total deadline for every operation (default: none).
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The value's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value (`pre_value` = `post_value`; 0 if the node is missing or empty).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the node's data is not 8 bytes (Curator's corruption
    /// error); server errors; connection loss is waited out (until the deadline, if set:
    /// then [`Error::Timeout`]).
    pub async fn get(&self) -> Result<AtomicResult> {
        let c = self.client_for(self.deadline());
        let (v, _, _) = self.read(&c, self.deadline()).await?;
        Ok(AtomicResult {
            succeeded: true,
            pre_value: v,
            post_value: v,
            stats: AtomicStats::default(),
        })
    }

    /// Adds 1.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub async fn increment(&self) -> Result<AtomicResult> {
        self.add(1).await
    }

    /// Subtracts 1.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub async fn decrement(&self) -> Result<AtomicResult> {
        self.add(-1).await
    }

    /// Adds `delta` (wrapping, as Java's `long`).
    ///
    /// # Errors
    /// [`Error::ConnectionLoss`] when a write's outcome cannot be told (applied once or not at
    /// all), [`Error::Timeout`]` { sent: true }` when the deadline passed with a write in doubt,
    /// [`Error::InvalidArgument`] for data that is not 8 bytes, other server errors,
    /// [`Error::Closed`].
    pub async fn add(&self, delta: i64) -> Result<AtomicResult> {
        self.update(|v| Some(v.wrapping_add(delta))).await
    }

    /// Subtracts `delta` (wrapping).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub async fn subtract(&self, delta: i64) -> Result<AtomicResult> {
        self.update(|v| Some(v.wrapping_sub(delta))).await
    }

    /// Sets the value to `value` if it can be done atomically within the tries (Curator's
    /// `trySet`).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub async fn try_set(&self, value: i64) -> Result<AtomicResult> {
        self.update(|_| Some(value)).await
    }

    /// Sets the value to `new` if it is `expected` now: one attempt, no promotion (Curator's
    /// `compareAndSet`: the node's bytes must equal `expected`'s 8 bytes, so a missing or
    /// empty node never matches, not even 0).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub async fn compare_and_set(&self, expected: i64, new: i64) -> Result<AtomicResult> {
        let deadline = self.deadline();
        let c = self.client_for(deadline);
        let started = Instant::now();
        let r = self
            .attempt(&c, deadline, &|v| (v == expected).then_some(new), true)
            .await;
        let stats = AtomicStats {
            optimistic_tries: 1,
            optimistic_time: started.elapsed(),
            ..Default::default()
        };
        self.result_of(r, stats, deadline)
    }

    /// Sets the value to `value` whatever it is (Curator's `forceSet`).
    ///
    /// # Errors
    /// Server errors; connection loss is waited out (an unconditional write is safe to
    /// repeat).
    pub async fn force_set(&self, value: i64) -> Result<()> {
        let deadline = self.deadline();
        let c = self.client_for(deadline);
        let bytes = value.to_be_bytes();
        loop {
            let r = match c.set_data(&self.path, &bytes, None).await {
                Err(Error::NoNode) => match self.create(&c, &bytes).await {
                    Err(Error::NodeExists) => continue,
                    r => r,
                },
                r => r.map(|_| ()),
            };
            match r {
                Ok(()) => return Ok(()),
                Err(e) => wait_after_error(&c, e, deadline).await?,
            }
        }
    }

    /// Creates the node with `value` if it does not exist: `true` if this call created it
    /// (Curator's `initialize`).
    ///
    /// # Errors
    /// Server errors; a create whose reply was lost is judged by reading the node back
    /// ([`Error::ConnectionLoss`] if it holds exactly our value, or was changed since its
    /// create: either cannot be told apart from ours).
    pub async fn try_initialize(&self, value: i64) -> Result<bool> {
        let deadline = self.deadline();
        let c = self.client_for(deadline);
        let bytes = value.to_be_bytes();
        loop {
            match self.create(&c, &bytes).await {
                Ok(()) => return Ok(true),
                Err(Error::NodeExists) => return Ok(false),
                Err(e) if e.may_have_been_applied() => {
                    return match self.settle(&c, deadline).await? {
                        None => continue, // not applied
                        // ours, or ours changed since: cannot be told apart
                        Some((data, st)) if data == bytes || st.version != 0 => {
                            Err(Error::ConnectionLoss)
                        }
                        Some(_) => Ok(false),
                    };
                }
                Err(e) => wait_after_error(&c, e, deadline).await?,
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(deadline_after)
    }

    fn client_for(&self, deadline: Option<Instant>) -> Client {
        match deadline {
            Some(d) => self.client.with_deadline(d),
            None => self.client.clone(),
        }
    }

    /// The optimistic attempts, then the promotion.
    async fn update(
        &self,
        make: impl Fn(i64) -> Option<i64> + Send + Sync,
    ) -> Result<AtomicResult> {
        let deadline = self.deadline();
        let c = self.client_for(deadline);
        let mut stats = AtomicStats::default();
        let started = Instant::now();
        let mut last = Ok(Attempt::Conflict { pre: 0 });
        for i in 0..self.tries {
            if i > 0 {
                // a short pause between attempts (Curator sleeps per its retry policy)
                let pause = Duration::from_millis(5u64 << i.min(5));
                if deadline.is_some_and(|d| Instant::now() + pause >= d) {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
            stats.optimistic_tries += 1;
            last = self.attempt(&c, deadline, &make, false).await;
            if !matches!(last, Ok(Attempt::Conflict { .. })) {
                break;
            }
        }
        stats.optimistic_time = started.elapsed();
        if let (Ok(Attempt::Conflict { .. }), Some(p)) = (&last, &self.promotion) {
            let started = Instant::now();
            let wait = match deadline {
                Some(d) => p
                    .max_lock_time
                    .min(d.saturating_duration_since(Instant::now())),
                None => p.max_lock_time,
            };
            match p.lock.acquire_timeout(wait).await {
                Ok(Some(guard)) => {
                    for _ in 0..self.lock_tries {
                        if !guard.is_held() {
                            break;
                        }
                        stats.promoted_lock_tries += 1;
                        last = self.attempt(&c, deadline, &make, false).await;
                        if !matches!(last, Ok(Attempt::Conflict { .. })) {
                            break;
                        }
                    }
                    if guard.is_held() {
                        let _ = guard.release().await;
                    }
                }
                Ok(None) => debug!(path = %self.path, "promotion lock not taken in time"),
                Err(e) if matches!(e, Error::Timeout { .. }) && passed(deadline) => {}
                Err(e) => return Err(e),
            }
            stats.promoted_time = started.elapsed();
        }
        self.result_of(last, stats, deadline)
    }

    fn result_of(
        &self,
        r: Result<Attempt>,
        stats: AtomicStats,
        deadline: Option<Instant>,
    ) -> Result<AtomicResult> {
        let (succeeded, pre_value, post_value) = match r {
            Ok(Attempt::Applied { pre, post }) => (true, pre, post),
            Ok(Attempt::Conflict { pre }) => (false, pre, pre),
            Err(Error::Timeout { sent: false }) if passed(deadline) => (false, 0, 0),
            Err(e) => return Err(e),
        };
        Ok(AtomicResult {
            succeeded,
            pre_value,
            post_value,
            stats,
        })
    }

    /// Reads the value and its version (`None` for a missing node, or for empty data: either
    /// reads as 0, and neither holds a value's 8 bytes), waiting out connection loss.
    async fn read(
        &self,
        c: &Client,
        deadline: Option<Instant>,
    ) -> Result<(i64, Option<i32>, bool)> {
        loop {
            match c.get_data(&self.path).await {
                Ok((data, st)) => {
                    return Ok((self.decode(&data)?, Some(st.version), !data.is_empty()))
                }
                Err(Error::NoNode) => return Ok((0, None, false)),
                Err(e) => wait_after_error(c, e, deadline).await?,
            }
        }
    }

    /// One compare-and-set attempt: `make` turns the value read into the one to write
    /// (`None`: do not write; a failed compare). `exact` is `compare_and_set`'s rule: a
    /// missing node or empty data never matches.
    async fn attempt(
        &self,
        c: &Client,
        deadline: Option<Instant>,
        make: &(dyn Fn(i64) -> Option<i64> + Send + Sync),
        exact: bool,
    ) -> Result<Attempt> {
        let (pre, version, bytes_there) = self.read(c, deadline).await?;
        if exact && !bytes_there {
            return Ok(Attempt::Conflict { pre });
        }
        let Some(post) = make(pre) else {
            return Ok(Attempt::Conflict { pre });
        };
        let bytes = post.to_be_bytes();
        let r = match version {
            Some(v) => c.set_data(&self.path, &bytes, Some(v)).await.map(|_| ()),
            None => self.create(c, &bytes).await,
        };
        match r {
            Ok(()) => Ok(Attempt::Applied { pre, post }),
            // someone else wrote, deleted or created in between
            Err(Error::BadVersion) | Err(Error::NoNode) | Err(Error::NodeExists) => {
                Ok(Attempt::Conflict { pre })
            }
            Err(e) if e.may_have_been_applied() => {
                // judge the lost write by what the node shows after it
                let now = match self.settle(c, deadline).await {
                    Ok(now) => now,
                    Err(Error::Timeout { .. }) if passed(deadline) => {
                        return Err(Error::Timeout { sent: true })
                    }
                    Err(_) => return Err(Error::ConnectionLoss),
                };
                let applied_maybe = match (version, now) {
                    (Some(v), Some((_, st))) if st.version == v => false,
                    (Some(v), Some((d, st))) if st.version == v.wrapping_add(1) => d == bytes,
                    (None, None) => false,
                    // created by someone else: their data, never changed since; changed
                    // since, it may have been ours that was changed (by a writer who built
                    // on it)
                    (None, Some((d, st))) => st.version != 0 || d == bytes,
                    _ => true,
                };
                if applied_maybe {
                    debug!(path = %self.path, "atomic long: a lost write may have applied");
                    Err(Error::ConnectionLoss)
                } else {
                    Ok(Attempt::Conflict { pre })
                }
            }
            Err(e) => {
                wait_after_error(c, e, deadline).await?;
                Ok(Attempt::Conflict { pre })
            }
        }
    }

    /// Creates the node (parents as containers, as Curator's
    /// `creatingParentContainersIfNeeded`).
    async fn create(&self, c: &Client, bytes: &[u8]) -> Result<()> {
        match c.create(&self.path, bytes, CreateMode::Persistent).await {
            Err(Error::NoNode) => {
                ensure_containers(c, parent_of(&self.path)).await?;
                c.create(&self.path, bytes, CreateMode::Persistent)
                    .await
                    .map(|_| ())
            }
            r => r.map(|_| ()),
        }
    }

    /// After a write whose reply was lost: waits for the connection, `sync`s (ordered after
    /// the lost write) and reads the node.
    async fn settle(
        &self,
        c: &Client,
        deadline: Option<Instant>,
    ) -> Result<Option<(Vec<u8>, zk_core::Stat)>> {
        loop {
            let r = async {
                match c.sync(&self.path).await {
                    Ok(()) | Err(Error::NoNode) => {}
                    Err(e) => return Err(e),
                }
                match c.get_data(&self.path).await {
                    Ok(x) => Ok(Some(x)),
                    Err(Error::NoNode) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            .await;
            match r {
                Ok(x) => return Ok(x),
                Err(e) => wait_after_error(c, e, deadline).await?,
            }
        }
    }

    fn decode(&self, data: &[u8]) -> Result<i64> {
        if data.is_empty() {
            return Ok(0);
        }
        let bytes: [u8; 8] = data.try_into().map_err(|_| {
            Error::InvalidArgument(format!(
                "{}: {} bytes are not a DistributedAtomicLong (8 bytes)",
                self.path,
                data.len()
            ))
        })?;
        Ok(i64::from_be_bytes(bytes))
    }
}

/// What one attempt did.
enum Attempt {
    Applied { pre: i64, post: i64 },
    Conflict { pre: i64 },
}
