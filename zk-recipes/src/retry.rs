//! Retry policies and a runner that applies them to an async operation.
//!
//! Two policies share one trait, [`RetryPolicy`]:
//!
//! * [`KazooRetry`]: kazoo's `KazooRetry`, with the same parameters, defaults and arithmetic
//!   (exponential backoff with compounding jitter, a cap, an optional overall deadline).
//! * [`ExponentialBackoffRetry`]: Apache Curator's policy of the same name (a random multiple
//!   of a base sleep that grows with the retry count).
//!
//! [`retry`] runs a closure until it succeeds, fails with an error the policy does not retry,
//! or the policy gives up. [`Retry`] is the same runner with its sleep, randomness and an
//! interrupt replaceable (for tests, or to stop retrying from outside).
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_core::Client;
//! use zk_recipes::retry::{retry, KazooRetry, RetryError};
//!
//! # async fn f(client: Client) -> Result<(), RetryError> {
//! // unlimited attempts, but never sleep past 30 s after the first attempt started
//! let policy = KazooRetry::single_attempt()
//!     .max_tries(None)
//!     .deadline(Some(Duration::from_secs(30)));
//!
//! // reads are idempotent: retrying them is always fine
//! let (data, _stat) = retry(&policy, || client.get_data("/config")).await?;
//!
//! // a write whose reply was lost may have been applied: stop instead of repeating it
//! let careful = policy.clone().idempotent(false);
//! match retry(&careful, || client.set_data("/config", b"v2", Some(3))).await {
//!     Ok(_) => {}
//!     Err(RetryError::OutcomeUnknown { .. }) => { /* read back and decide */ }
//!     Err(e) => return Err(e),
//! }
//! # let _ = data;
//! # Ok(()) }
//! ```
//!
//! # What is retried
//!
//! The runner retries whatever closure it is given, each attempt being a fresh call of the
//! closure. A write whose reply was lost ([`Error::ConnectionLoss`], or
//! [`Error::Timeout`]` { sent: true }`: [`Error::may_have_been_applied`]) may already have been
//! applied, and repeating it blindly can apply it twice (a sequential create makes a second
//! node; a versioned `set_data` fails with `BadVersion`, ...). The default follows kazoo and
//! retries those errors; for a write that is not idempotent either make the closure check
//! first, or set [`KazooRetry::idempotent`]`(false)` (or the same on
//! [`ExponentialBackoffRetry`]) to stop with [`RetryError::OutcomeUnknown`] instead.
//!
//! [`Error::Closed`] is never retried by either policy.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Instant;
use zk_core::{Error, Transience};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why one attempt failed: a ZooKeeper error, or the operation asking for another attempt.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AttemptError {
    /// The operation failed with this error.
    Zk(Error),
    /// The operation asks to be tried again (kazoo's `ForceRetryError`): recipe logic that found
    /// a state it cannot act on yet. Counted like any retryable error.
    ForceRetry(String),
}

impl AttemptError {
    /// An [`AttemptError::ForceRetry`] with a reason, for logs.
    pub fn force_retry(reason: impl Into<String>) -> AttemptError {
        AttemptError::ForceRetry(reason.into())
    }

    /// The ZooKeeper error, if this is one.
    pub fn zk(&self) -> Option<&Error> {
        match self {
            AttemptError::Zk(e) => Some(e),
            AttemptError::ForceRetry(_) => None,
        }
    }
}

impl From<Error> for AttemptError {
    fn from(e: Error) -> Self {
        AttemptError::Zk(e)
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Zk(e) => e.fmt(f),
            AttemptError::ForceRetry(why) => write!(f, "retry forced: {why}"),
        }
    }
}

impl std::error::Error for AttemptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AttemptError::Zk(e) => Some(e),
            AttemptError::ForceRetry(_) => None,
        }
    }
}

/// Why the runner stopped without a result.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RetryError {
    /// The operation failed with an error the policy does not retry (e.g. [`Error::NoNode`],
    /// [`Error::Closed`]); the error is returned as it came.
    Failed(Error),
    /// The policy's attempt budget is spent (kazoo's "Too many retry attempts").
    Exhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt.
        last: AttemptError,
    },
    /// The next sleep would have ended past the policy's deadline (kazoo's "Exceeded retry
    /// deadline"); checked before sleeping, so the runner never sleeps past it.
    DeadlineExceeded {
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt.
        last: AttemptError,
    },
    /// The policy is not allowed to repeat an operation whose outcome is unknown
    /// ([`KazooRetry::idempotent`]`(false)`), and the last attempt failed in a way that may
    /// have applied it ([`Error::may_have_been_applied`]). Check the state before going on.
    OutcomeUnknown {
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt.
        last: Error,
    },
    /// The interrupt given to [`Retry::interrupt`] completed.
    Interrupted {
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt, if any was made.
        last: Option<AttemptError>,
    },
}

impl RetryError {
    /// The ZooKeeper error behind this one: the non-retryable error, or the last attempt's.
    pub fn zk_error(&self) -> Option<&Error> {
        match self {
            RetryError::Failed(e) | RetryError::OutcomeUnknown { last: e, .. } => Some(e),
            RetryError::Exhausted { last, .. } | RetryError::DeadlineExceeded { last, .. } => {
                last.zk()
            }
            RetryError::Interrupted { last, .. } => last.as_ref().and_then(AttemptError::zk),
        }
    }

    /// How many failed attempts the policy counted. Only retryable errors are counted (as in
    /// kazoo), so [`RetryError::Failed`] reports 0.
    pub fn attempts(&self) -> u32 {
        match self {
            RetryError::Failed(_) => 0,
            RetryError::Exhausted { attempts, .. }
            | RetryError::DeadlineExceeded { attempts, .. }
            | RetryError::OutcomeUnknown { attempts, .. }
            | RetryError::Interrupted { attempts, .. } => *attempts,
        }
    }
}

impl fmt::Display for RetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryError::Failed(e) => e.fmt(f),
            RetryError::Exhausted { attempts, last } => {
                write!(f, "gave up after {attempts} attempts; last error: {last}")
            }
            RetryError::DeadlineExceeded { attempts, last } => write!(
                f,
                "retry deadline exceeded after {attempts} attempts; last error: {last}"
            ),
            RetryError::OutcomeUnknown { attempts, last } => write!(
                f,
                "attempt {attempts} may or may not have been applied ({last}); not retried"
            ),
            RetryError::Interrupted { attempts, .. } => {
                write!(f, "retrying interrupted after {attempts} attempts")
            }
        }
    }
}

impl std::error::Error for RetryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RetryError::Failed(e) | RetryError::OutcomeUnknown { last: e, .. } => Some(e),
            RetryError::Exhausted { last, .. } | RetryError::DeadlineExceeded { last, .. } => {
                Some(last)
            }
            RetryError::Interrupted { last, .. } => last
                .as_ref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
        }
    }
}

/// What a policy decides after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sleep this long, then try again.
    RetryAfter(Duration),
    /// Give up.
    Stop(StopReason),
}

/// Why a policy gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The error is not one the policy retries.
    NotRetryable,
    /// The attempt budget is spent.
    Exhausted,
    /// The next sleep would end at or past the deadline.
    DeadlineExceeded,
    /// The outcome of the attempt is unknown and the policy may not repeat it.
    OutcomeUnknown,
}

/// A retry policy: hands out one [`RetryState`] per call of the operation.
pub trait RetryPolicy {
    /// The per-call bookkeeping (attempts so far, current delay, start time).
    type State: RetryState;

    /// Starts a call; called right before its first attempt (a deadline counts from here).
    fn begin(&self) -> Self::State;
}

/// The state of one call under a [`RetryPolicy`].
pub trait RetryState: Send {
    /// Called after each failed attempt with its error: how long to sleep before the next
    /// attempt, or why to stop. `jitter` is the runner's source of randomness.
    fn on_failure(&mut self, err: &AttemptError, jitter: &mut Jitter) -> Decision;

    /// Failed attempts counted so far.
    fn attempts(&self) -> u32;
}

/// The randomness a [`RetryState`] draws its jitter from: seeded from the OS by default,
/// from a fixed seed with [`Retry::seed`] (a test that wants the same sleeps every run).
pub struct Jitter {
    rng: StdRng,
}

impl Jitter {
    /// Seeded from the operating system.
    pub fn from_entropy() -> Jitter {
        Jitter {
            rng: StdRng::from_entropy(),
        }
    }

    /// The same draws for the same seed.
    pub fn from_seed(seed: u64) -> Jitter {
        Jitter {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A number drawn uniformly from `lo..=hi` (`lo` if `hi <= lo`).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        if hi <= lo {
            return lo;
        }
        self.rng.gen_range(lo..=hi)
    }

    /// A number drawn uniformly from `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        self.rng.gen_range(0..n)
    }
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jitter").finish_non_exhaustive()
    }
}

// ------------------------------------------------------------------------------------ kazoo

/// kazoo's `KazooRetry`, exactly: same parameters, defaults and arithmetic.
///
/// Per call: run an attempt; if it fails with a retryable error, count it; stop once
/// `max_tries` attempts were made; otherwise draw `sleep = cur_delay * uniform(1 - j, 1 + j)`
/// (`j` = `max_jitter`); with a deadline, stop if `now + sleep >= start + deadline` (checked
/// before sleeping); sleep; then `cur_delay = min(sleep * backoff, max_delay)`. The jitter
/// compounds, and a single sleep may exceed `max_delay` by up to `(1 + j)` times.
///
/// Retryable: zk-core's [`Transience::Connection`] errors ([`Error::ConnectionLoss`],
/// [`Error::Timeout`] (kazoo's operation timeout), and [`Error::NotConnected`] (a request
/// refused unsent by a [`fail_if_disconnected`](zk_core::Client::fail_if_disconnected)
/// handle: the connection-loss case with a known, empty outcome, which kazoo has no
/// counterpart for)), [`AttemptError::ForceRetry`], and [`Error::SessionExpired`] when
/// `ignore_expire` is on. Not the server-side [`Transience::Server`] ones, which kazoo does not
/// retry either.
/// [`Error::Closed`] never.
///
/// | parameter | default |
/// |---|---|
/// | [`max_tries`](Self::max_tries) | `Some(1)` total attempt, i.e. no retry (kazoo's default); `None` or `Some(0)` = unlimited |
/// | [`delay`](Self::delay) | 100 ms |
/// | [`backoff`](Self::backoff) | 2 |
/// | [`max_jitter`](Self::max_jitter) | 0.4, clamped to `0.0..=1.0` |
/// | [`max_delay`](Self::max_delay) | 60 s |
/// | [`ignore_expire`](Self::ignore_expire) | true |
/// | [`deadline`](Self::deadline) | none |
/// | [`idempotent`](Self::idempotent) | true (not in kazoo: see the [module docs](self)) |
///
/// There is no `new()` or `Default`: the two constructors say what they start from.
/// [`KazooRetry::single_attempt`] is kazoo's `KazooRetry()` (one attempt);
/// [`KazooRetry::client_default`] is what a kazoo client uses for its commands (unlimited).
#[derive(Debug, Clone, PartialEq)]
pub struct KazooRetry {
    max_tries: Option<u32>,
    delay: f64,
    backoff: f64,
    max_jitter: f64,
    max_delay: f64,
    ignore_expire: bool,
    deadline: Option<Duration>,
    idempotent: bool,
}

impl KazooRetry {
    /// kazoo's `KazooRetry()` defaults (see the table above): **one attempt, no retry**. Raise
    /// [`max_tries`](Self::max_tries) to retry, or start from
    /// [`client_default`](Self::client_default) for unlimited attempts.
    pub fn single_attempt() -> Self {
        KazooRetry {
            max_tries: Some(1),
            delay: 0.1,
            backoff: 2.0,
            max_jitter: 0.4,
            max_delay: 60.0,
            ignore_expire: true,
            deadline: None,
            idempotent: true,
        }
    }

    /// What `KazooClient` retries its commands with: **unlimited attempts**, `max_delay`
    /// 3600 s, everything else as [`single_attempt`](Self::single_attempt).
    pub fn client_default() -> Self {
        Self::single_attempt()
            .max_tries(None)
            .max_delay(Duration::from_secs(3600))
    }

    /// Total attempts allowed, the first included. `None`, or `Some(0)` (kazoo's 0 and -1),
    /// means unlimited.
    pub fn max_tries(mut self, n: Option<u32>) -> Self {
        self.max_tries = n.filter(|&n| n > 0);
        self
    }

    /// The first sleep before jitter.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d.as_secs_f64();
        self
    }

    /// Multiplier applied to each sleep to get the next delay (negative values count as 0).
    pub fn backoff(mut self, factor: f64) -> Self {
        self.backoff = if factor.is_nan() {
            0.0
        } else {
            factor.max(0.0)
        };
        self
    }

    /// Relative jitter: each sleep is the current delay times a uniform draw from
    /// `1 - j ..= 1 + j`. Clamped to `0.0..=1.0` (NaN counts as 0).
    pub fn max_jitter(mut self, j: f64) -> Self {
        self.max_jitter = if j.is_nan() { 0.0 } else { j.clamp(0.0, 1.0) };
        self
    }

    /// Cap of the delay the backoff grows to.
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d.as_secs_f64();
        self
    }

    /// Whether [`Error::SessionExpired`] is retried (default true, as kazoo). zk-core starts a
    /// new session after an expiry by default, so a retried operation runs in the new session;
    /// with `reconnect_after_expiry(false)` every retry fails the same way until the budget or
    /// the deadline is spent.
    pub fn ignore_expire(mut self, yes: bool) -> Self {
        self.ignore_expire = yes;
        self
    }

    /// Overall time limit, counted from the start of the first attempt. The runner stops with
    /// [`RetryError::DeadlineExceeded`] instead of starting a sleep that would end at or past it
    /// (an attempt itself is not cut short: bound it with [`zk_core::Client::with_timeout`]).
    /// A limit too far away to represent (say `Duration::MAX`) is no limit.
    pub fn deadline(mut self, d: Option<Duration>) -> Self {
        self.deadline = d;
        self
    }

    /// With `false`, an attempt that failed in a way that may have applied it
    /// ([`Error::may_have_been_applied`]: connection loss, timeout after sending) is not
    /// repeated: the runner stops with [`RetryError::OutcomeUnknown`]. Default `true`, as kazoo
    /// (which retries connection loss for everything).
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    fn retryable(&self, err: &AttemptError) -> bool {
        match err {
            AttemptError::ForceRetry(_) => true,
            AttemptError::Zk(e) => match e.transience() {
                Transience::Connection => true,
                Transience::SessionExpired => self.ignore_expire,
                _ => false,
            },
        }
    }
}

/// The per-call state of [`KazooRetry`].
#[derive(Debug, Clone)]
pub struct KazooRetryState {
    policy: KazooRetry,
    attempts: u32,
    cur_delay: f64,
    stop_at: Option<Instant>,
}

impl RetryPolicy for KazooRetry {
    type State = KazooRetryState;

    fn begin(&self) -> KazooRetryState {
        KazooRetryState {
            policy: self.clone(),
            attempts: 0,
            cur_delay: self.delay,
            // a limit too far away to represent is no limit
            stop_at: self.deadline.and_then(|d| Instant::now().checked_add(d)),
        }
    }
}

impl RetryState for KazooRetryState {
    fn on_failure(&mut self, err: &AttemptError, jitter: &mut Jitter) -> Decision {
        let p = &self.policy;
        if !p.retryable(err) {
            return Decision::Stop(StopReason::NotRetryable);
        }
        self.attempts = self.attempts.saturating_add(1);
        if !p.idempotent && err.zk().is_some_and(Error::may_have_been_applied) {
            return Decision::Stop(StopReason::OutcomeUnknown);
        }
        if p.max_tries == Some(self.attempts) {
            return Decision::Stop(StopReason::Exhausted);
        }
        let j = p.max_jitter;
        let factor = if j > 0.0 {
            jitter.uniform(1.0 - j, 1.0 + j)
        } else {
            1.0
        };
        let sleep = self.cur_delay * factor;
        let sleep_d = secs(sleep);
        if let Some(stop) = self.stop_at {
            match Instant::now().checked_add(sleep_d) {
                Some(end) if end < stop => {}
                _ => return Decision::Stop(StopReason::DeadlineExceeded),
            }
        }
        self.cur_delay = (sleep * p.backoff).min(p.max_delay);
        Decision::RetryAfter(sleep_d)
    }

    fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// Seconds as a Duration, saturating (negative and NaN are zero).
fn secs(s: f64) -> Duration {
    if s.is_nan() || s <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
    }
}

// ----------------------------------------------------------------------------------- curator

/// Apache Curator's `ExponentialBackoffRetry`: before retry number `n` (0 for the first retry)
/// sleep `base_sleep * max(1, r)` with `r` uniform in `0 .. 2^(n + 1)`, capped at `max_sleep`;
/// at most `max_retries` retries (so `max_retries + 1` attempts; at most 29 retries, as Curator
/// clamps it).
///
/// Retryable as in Curator ([`Error::ConnectionLoss`], [`Error::Timeout`],
/// [`Error::SessionMoved`], [`Error::SessionExpired`], [`Error::NewConfigNoQuorum`],
/// [`AttemptError::ForceRetry`]): every zk-core [`Transience`] but `Permanent`, which also
/// takes in server-side throttling and request timeouts (newer than Curator's list).
/// [`Error::Closed`] never.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExponentialBackoffRetry {
    base_sleep: Duration,
    max_retries: u32,
    max_sleep: Duration,
    idempotent: bool,
}

impl ExponentialBackoffRetry {
    /// Most retries Curator allows (beyond it `2^(n + 1)` overflows a Java int).
    pub const MAX_RETRIES_LIMIT: u32 = 29;

    /// `max_retries` above [`Self::MAX_RETRIES_LIMIT`] is clamped to it.
    pub fn new(base_sleep: Duration, max_retries: u32, max_sleep: Duration) -> Self {
        ExponentialBackoffRetry {
            base_sleep,
            max_retries: max_retries.min(Self::MAX_RETRIES_LIMIT),
            max_sleep,
            idempotent: true,
        }
    }

    /// The retry budget after clamping.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// As [`KazooRetry::idempotent`].
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    /// The sleep before retry number `retry` (0-based) for a random draw `r` in
    /// `0 .. 2^(retry + 1)`.
    fn sleep_for(&self, r: u32) -> Duration {
        self.base_sleep.saturating_mul(r.max(1)).min(self.max_sleep)
    }
}

/// The per-call state of [`ExponentialBackoffRetry`].
#[derive(Debug, Clone)]
pub struct ExponentialBackoffState {
    policy: ExponentialBackoffRetry,
    retries: u32,
    attempts: u32,
}

impl RetryPolicy for ExponentialBackoffRetry {
    type State = ExponentialBackoffState;

    fn begin(&self) -> ExponentialBackoffState {
        ExponentialBackoffState {
            policy: self.clone(),
            retries: 0,
            attempts: 0,
        }
    }
}

impl RetryState for ExponentialBackoffState {
    fn on_failure(&mut self, err: &AttemptError, jitter: &mut Jitter) -> Decision {
        // Curator's RetryLoop: what is transient in the same session, and session expiry
        let retryable = match err {
            AttemptError::ForceRetry(_) => true,
            AttemptError::Zk(e) => e.transience() != Transience::Permanent,
        };
        if !retryable {
            return Decision::Stop(StopReason::NotRetryable);
        }
        self.attempts = self.attempts.saturating_add(1);
        if !self.policy.idempotent && err.zk().is_some_and(Error::may_have_been_applied) {
            return Decision::Stop(StopReason::OutcomeUnknown);
        }
        if self.retries >= self.policy.max_retries {
            return Decision::Stop(StopReason::Exhausted);
        }
        let r = jitter.below(1u32 << (self.retries + 1));
        self.retries += 1;
        Decision::RetryAfter(self.policy.sleep_for(r))
    }

    fn attempts(&self) -> u32 {
        self.attempts
    }
}

// ------------------------------------------------------------------------------------ runner

/// Runs `f` under `policy` with tokio's sleep and an entropy-seeded random generator. See
/// [`Retry`] for the details and for replacing those.
///
/// # Cancel safety
/// Dropping the returned future stops retrying at once; an attempt in flight is dropped with
/// it (a ZooKeeper request already sent may still be applied).
///
/// # Errors
/// See [`RetryError`].
pub async fn retry<P, T, E, F, Fut>(policy: &P, f: F) -> Result<T, RetryError>
where
    P: RetryPolicy + ?Sized,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<AttemptError>,
{
    Retry::new(policy).run(f).await
}

/// The retry runner, with replaceable sleep, randomness and an optional interrupt.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> Result<(), zk_recipes::retry::RetryError> {
/// use zk_recipes::retry::{KazooRetry, Retry};
/// let policy = KazooRetry::client_default();
/// let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
/// let stat = Retry::new(&policy)
///     // stops the retrying (not an attempt in flight) when `stop_tx` is used or dropped
///     .interrupt(async move {
///         let _ = stop_rx.await;
///     })
///     .run(|| client.exists("/ready"))
///     .await?;
/// # drop(stop_tx); let _ = stat;
/// # Ok(()) }
/// ```
#[must_use = "a runner does nothing until `run` is awaited"]
pub struct Retry<'a, P: ?Sized> {
    policy: &'a P,
    sleep: Box<dyn FnMut(Duration) -> BoxFuture<'static, ()> + Send + 'a>,
    jitter: Jitter,
    interrupt: Option<BoxFuture<'a, ()>>,
}

impl<P: ?Sized> fmt::Debug for Retry<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("interrupt", &self.interrupt.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, P: RetryPolicy + ?Sized> Retry<'a, P> {
    /// A runner for `policy` sleeping with `tokio::time::sleep` (so paused test time works)
    /// and drawing jitter seeded from the OS (see [`Retry::seed`]).
    pub fn new(policy: &'a P) -> Self {
        Retry {
            policy,
            sleep: Box::new(|d| Box::pin(tokio::time::sleep(d))),
            jitter: Jitter::from_entropy(),
            interrupt: None,
        }
    }

    /// Replaces the sleep between attempts (e.g. to record the sleeps in a test). Deadlines
    /// are still measured with `tokio::time::Instant`.
    pub fn sleep_with<S, Fut>(mut self, mut sleep: S) -> Self
    where
        S: FnMut(Duration) -> Fut + Send + 'a,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.sleep = Box::new(move |d| Box::pin(sleep(d)));
        self
    }

    /// Draws the jitter from a fixed seed instead of the OS (a test that wants the same
    /// sleeps every run).
    pub fn seed(mut self, seed: u64) -> Self {
        self.jitter = Jitter::from_seed(seed);
        self
    }

    /// Stops retrying once `interrupt` completes: it is checked before every attempt and
    /// raced with every sleep, and the runner then returns [`RetryError::Interrupted`]. It
    /// never cuts an attempt short, so an interrupt cannot make the outcome of an operation
    /// unknown; to abandon an attempt as well, drop the runner's future instead.
    ///
    /// Any future works: a `oneshot::Receiver`, `Notify::notified()`, a `watch` change, a
    /// `tokio::time::sleep` as an overall limit, ...
    pub fn interrupt(mut self, interrupt: impl Future<Output = ()> + Send + 'a) -> Self {
        self.interrupt = Some(Box::pin(interrupt));
        self
    }

    /// Calls `f` until it succeeds, fails with an error the policy does not retry, or the
    /// policy (or the interrupt) stops it.
    ///
    /// # Cancel safety
    /// Dropping the future stops retrying at once; an attempt in flight is dropped with it (a
    /// ZooKeeper request already sent may still be applied).
    ///
    /// # Errors
    /// See [`RetryError`].
    pub async fn run<T, E, F, Fut>(mut self, mut f: F) -> Result<T, RetryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<AttemptError>,
    {
        use futures_util::FutureExt;

        let mut state = self.policy.begin();
        let mut last: Option<AttemptError> = None;
        loop {
            if let Some(i) = self.interrupt.as_mut() {
                if i.as_mut().now_or_never().is_some() {
                    return Err(RetryError::Interrupted {
                        attempts: state.attempts(),
                        last,
                    });
                }
            }
            let err = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e.into(),
            };
            let decision = state.on_failure(&err, &mut self.jitter);
            let attempts = state.attempts();
            let delay = match decision {
                Decision::RetryAfter(d) => d,
                Decision::Stop(reason) => {
                    return Err(match (reason, err) {
                        (StopReason::NotRetryable, AttemptError::Zk(e)) => RetryError::Failed(e),
                        (StopReason::OutcomeUnknown, AttemptError::Zk(e)) => {
                            RetryError::OutcomeUnknown { attempts, last: e }
                        }
                        (StopReason::DeadlineExceeded, last) => {
                            RetryError::DeadlineExceeded { attempts, last }
                        }
                        (_, last) => RetryError::Exhausted { attempts, last },
                    })
                }
            };
            tracing::debug!(
                attempt = attempts,
                error = %err,
                sleep_ms = delay.as_millis() as u64,
                "retrying"
            );
            let sleep = (self.sleep)(delay);
            match self.interrupt.as_mut() {
                None => sleep.await,
                Some(i) => {
                    tokio::select! {
                        biased;
                        _ = i.as_mut() => {
                            return Err(RetryError::Interrupted { attempts, last: Some(err) });
                        }
                        _ = sleep => {}
                    }
                }
            }
            last = Some(err);
        }
    }
}
