//! Leases (kazoo `NonBlockingLease`, `MultiNonBlockingLease`): a claim on a path for a
//! duration, judged by the clients' wall clocks; and [`FencedLease`], which trusts no clock.
//!
//! kazoo 2.11's layout, which this module reads and writes byte for byte:
//!
//! * `P` (created like `ensure_path`) holds the lease; `P/lease_holder` (PERSISTENT) says who
//!   holds it until when, as JSON in UTF-8, written by Python's `json.dumps`:
//!   `{"version": 1, "holder": "<identifier>", "end": "2026-11-30T10:15:00"}`. `end` is the
//!   writer's UTC wall clock plus the duration, formatted `%Y-%m-%dT%H:%M:%S` (seconds
//!   truncated, no zone).
//! * An attempt takes kazoo's lock on `P` itself (`P/<uuid>__lock__<seq>`, data = the
//!   identifier), reads `P/lease_holder`, and obtains the lease when the node is missing, or
//!   its holder is our identifier (a renewal), or `now >= end`; a node with another `version`
//!   is never taken over. It then replaces the node (kazoo: `delete` then `create`; here one
//!   `multi` fenced by the lock: `[check lock node, delete lease_holder @version, create
//!   lease_holder]`) and releases the lock.
//! * `MultiNonBlockingLease(count, P)` tries `P/0`, `P/1`, … `P/<count-1>` in order, each a
//!   `NonBlockingLease`, and stops at the first obtained.

use crate::guard::{Guard, GuardError};
use crate::lock::Lock;
use crate::plumbing::{child_path, deadline_after, passed, with_retries};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use zk_core::{Client, CreateMode, Error, Op, Result};

/// kazoo's `NonBlockingLease._version`.
const LEASE_VERSION: i64 = 1;
/// The node under the lease path that names the holder.
const HOLDER_NODE: &str = "lease_holder";
/// The first instant kazoo's `end` cannot say: 10000-01-01T00:00:00 UTC (Python's
/// `datetime.MAXYEAR` is 9999).
fn end_of_kazoo_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(253_402_300_800)
}

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Who holds a lease, and until when (by the writer's clock), as `P/lease_holder` says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseHolder {
    /// The holder's identifier.
    pub holder: String,
    /// The end of the lease, UTC, whole seconds (the writer's clock plus the duration).
    pub end: SystemTime,
    /// The layout version (1 for kazoo 2.11).
    pub version: i64,
}

impl LeaseHolder {
    /// The node's data exactly as kazoo writes it.
    fn encode(&self) -> Vec<u8> {
        format!(
            "{{\"version\": {}, \"holder\": {}, \"end\": \"{}\"}}",
            self.version,
            json_string(&self.holder),
            format_utc(self.end)
        )
        .into_bytes()
    }

    /// Parses the node's data; `Err(Protocol)` if it is not the layout.
    fn decode(data: &[u8]) -> Result<LeaseHolder> {
        let bad = |what: &str| {
            Error::Protocol(format!(
                "lease_holder: {what}: {:?}",
                String::from_utf8_lossy(data)
            ))
        };
        let v: serde_json::Value = serde_json::from_slice(data).map_err(|_| bad("not JSON"))?;
        let version = v["version"].as_i64().ok_or_else(|| bad("no version"))?;
        let holder = v["holder"].as_str().unwrap_or_default().to_owned();
        let end = v["end"].as_str().and_then(parse_utc).unwrap_or(UNIX_EPOCH);
        if version == LEASE_VERSION && v["holder"].as_str().is_none() {
            return Err(bad("no holder"));
        }
        if version == LEASE_VERSION && v["end"].as_str().and_then(parse_utc).is_none() {
            return Err(bad("no end"));
        }
        Ok(LeaseHolder {
            holder,
            end,
            version,
        })
    }
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii`: every non-ASCII character
/// as `\uXXXX`, surrogate pairs above U+FFFF).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of `days` since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `t` as kazoo's `strftime("%Y-%m-%dT%H:%M:%S")` of a UTC datetime (fraction truncated).
fn format_utc(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses kazoo's `%Y-%m-%dT%H:%M:%S` (UTC).
fn parse_utc(s: &str) -> Option<SystemTime> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 61 {
        return None;
    }
    let secs = days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// A lease for a duration, judged by wall clocks (kazoo
/// `NonBlockingLease(client, path, duration, identifier)`), in kazoo's layout (module docs).
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::NonBlockingLease;
///
/// let lease = NonBlockingLease::new(
///     &client,
///     "/db_leases/hourly_cleanup",
///     Duration::from_secs(70 * 60),
///     "cleanup on host-3",
/// );
/// if let Some(held) = lease.try_acquire().await? {
///     println!("ours until {:?}", held.end);
///     // do_hourly_database_cleanup()
/// }
/// # Ok(()) }
/// ```
///
/// # The clock assumption
/// The end of a lease is the writer's wall clock plus the duration, and whether it has passed
/// is decided by the *next* claimant's wall clock. Two hosts whose clocks disagree by `s`
/// seconds can therefore **both** believe they hold it: if the next claimant's clock runs `s`
/// ahead, it takes the lease over `s` seconds before the holder's own end. Nothing tells the
/// first holder (it holds no node, there is no lost signal and no fence). Use this recipe
/// only where hosts keep their clocks in sync (NTP) and a short overlap is harmless
/// ("run the hourly cleanup on one host, roughly"); the end is also only kept to the second.
/// Where an overlap is not acceptable, use [`FencedLease`].
///
/// A renewal is an attempt with the same identifier: it obtains the lease whatever its end,
/// and moves the end to now + duration.
#[derive(Clone)]
pub struct NonBlockingLease {
    client: Client,
    path: String,
    duration: Duration,
    identifier: String,
    clock: Clock,
}

impl std::fmt::Debug for NonBlockingLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonBlockingLease")
            .field("path", &self.path)
            .field("duration", &self.duration)
            .field("identifier", &self.identifier)
            .finish_non_exhaustive()
    }
}

impl NonBlockingLease {
    /// A lease at `path`, held for `duration` by `identifier` once obtained (kazoo defaults
    /// the identifier to the host name; here it is explicit). Nothing is sent until
    /// [`try_acquire`](Self::try_acquire).
    pub fn new(
        client: &Client,
        path: &str,
        duration: Duration,
        identifier: impl Into<String>,
    ) -> NonBlockingLease {
        NonBlockingLease {
            client: client.clone(),
            path: path.to_owned(),
            duration,
            identifier: identifier.into(),
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Uses `clock` instead of [`SystemTime::now`] as "now" (kazoo's `utcnow` argument): for
    /// tests, or to model a skewed host.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The lease's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// One attempt: obtains the lease if it is free, expired by our clock, or already ours
    /// (then renewed); `Ok(None)` if another holder's lease has not ended (or a different
    /// layout version is there). It never waits for the lease, only for the short-lived
    /// lock on the path that serialises attempts (kazoo's `Lock(P)`), however long that
    /// takes.
    ///
    /// # Errors
    /// `Err(Protocol)` if `lease_holder` is not kazoo's JSON; [`Error::InvalidArgument`] if
    /// the end (now + duration) is past 9999-12-31T23:59:59 UTC, which kazoo's layout cannot
    /// say (nothing is written); the record's own write error when it cannot be written
    /// (e.g. [`Error::DataTooLarge`]: an identifier whose JSON is over the client's data
    /// limit); [`Error::ConnectionLoss`] when the record's write may have applied (its reply
    /// was lost) and the deadline passed, or the session ended, before a read could tell:
    /// the record may name this holder (a renewal settles it); other server errors
    /// (connection loss is retried); [`Error::Closed`].
    ///
    /// # Cancel safety
    /// Dropping the future leaves no lock node behind (the lock's own guarantee); the lease
    /// node is written by one transaction, so it is either the old or the new holder's.
    pub async fn try_acquire(&self) -> Result<Option<LeaseHolder>> {
        self.attempt(None).await
    }

    /// [`try_acquire`](Self::try_acquire) with one total deadline: `Ok(None)` also when the
    /// deadline passes first (nothing written; a write whose outcome is unknown at the
    /// deadline is [`Error::ConnectionLoss`]).
    ///
    /// # Errors
    /// As [`try_acquire`](Self::try_acquire).
    pub async fn try_acquire_timeout(&self, timeout: Duration) -> Result<Option<LeaseHolder>> {
        self.attempt(Some(deadline_after(timeout))).await
    }

    /// [`try_acquire_timeout`](Self::try_acquire_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`try_acquire`](Self::try_acquire).
    pub async fn try_acquire_until(&self, deadline: Instant) -> Result<Option<LeaseHolder>> {
        self.attempt(Some(deadline)).await
    }

    /// What `P/lease_holder` says now (`None`: nobody ever held it). It may have ended.
    ///
    /// # Errors
    /// `Err(Protocol)` if it is not kazoo's JSON; server errors (connection loss is retried).
    pub async fn holder(&self) -> Result<Option<LeaseHolder>> {
        let node = child_path(&self.path, HOLDER_NODE);
        match read_holder(&self.client, &node, None).await? {
            Some(Some((h, _))) => Ok(Some(h)),
            _ => Ok(None),
        }
    }

    async fn attempt(&self, deadline: Option<Instant>) -> Result<Option<LeaseHolder>> {
        let c = &self.client;
        let node = child_path(&self.path, HOLDER_NODE);
        if with_retries(deadline, || c.ensure_path(&self.path))
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let lock = Lock::new(c, &self.path, self.identifier.clone());
        loop {
            let guard = match deadline {
                Some(d) => match lock.acquire_until(d).await? {
                    Some(g) => g,
                    None => return Ok(None),
                },
                None => lock.acquire().await?,
            };
            let step = self.decide_and_write(&guard, &node, deadline).await;
            guard.release().await?;
            match step? {
                Step::Done(r) => return Ok(r),
                Step::Again if passed(deadline) => return Ok(None),
                Step::Again => {}
            }
        }
    }

    /// Under the lock: read, decide, write.
    async fn decide_and_write(
        &self,
        guard: &Guard,
        node: &str,
        deadline: Option<Instant>,
    ) -> Result<Step> {
        let Some(current) = read_holder(&self.client, node, deadline).await? else {
            return Ok(Step::Done(None));
        };
        let now = (self.clock)();
        let mut ops = Vec::with_capacity(2);
        if let Some((h, version)) = current {
            if h.version != LEASE_VERSION || (h.holder != self.identifier && now < h.end) {
                return Ok(Step::Done(None));
            }
            ops.push(Op::delete(node, Some(version)));
        }
        // kazoo's `datetime` ends with year 9999: an end past it can be neither computed nor
        // parsed by a kazoo client of the lease (and may not fit a `SystemTime` at all)
        let Some(end) = now
            .checked_add(self.duration)
            .filter(|e| *e < end_of_kazoo_time())
        else {
            return Err(Error::InvalidArgument(format!(
                "lease {}: an end {:?} after now is past 9999-12-31T23:59:59 UTC, the last \
                 time kazoo's layout can say",
                self.path, self.duration
            )));
        };
        // whole seconds, as the node will say
        let end = parse_utc(&format_utc(end)).unwrap_or(end);
        let mine = LeaseHolder {
            holder: self.identifier.clone(),
            end,
            version: LEASE_VERSION,
        };
        let data = mine.encode();
        ops.push(Op::create(node, data.clone(), CreateMode::Persistent));
        match guard.fenced_multi(ops).await {
            Ok(_) => Ok(Step::Done(Some(mine))),
            Err(e) if e.may_have_been_applied() => {
                // the reply was lost: the node tells (nobody else writes it while our lock
                // node exists, and after that the data would not be ours byte for byte)
                match with_retries(deadline, || self.client.get_data(node)).await {
                    Ok(Some((d, _))) if d == data => Ok(Step::Done(Some(mine))),
                    Ok(Some(_)) | Err(Error::NoNode) => Ok(Step::Again),
                    // the deadline passed, or the session ended, before a read could tell:
                    // the record may name us, so "not obtained" would be a lie
                    Ok(None) => Err(Error::ConnectionLoss),
                    Err(e) if e.is_session_dead() => Err(Error::ConnectionLoss),
                    Err(e) => Err(e),
                }
            }
            // the lock was lost (before sending, or the fence failed), the record changed
            // under us, or the connection or session went: look again
            Err(GuardError::Lost(_)) => Ok(Step::Again),
            Err(GuardError::Zk(e))
                if matches!(e, Error::TransactionFailed { .. })
                    || e.is_retryable()
                    || e.is_session_dead() =>
            {
                Ok(Step::Again)
            }
            // anything else (a record over the data limit, NoAuth) would fail again
            Err(GuardError::Zk(e)) => Err(e),
        }
    }
}

enum Step {
    Done(Option<LeaseHolder>),
    Again,
}

/// Reads `P/lease_holder`: `None` when the deadline passed, `Some(None)` when it is missing.
async fn read_holder(
    c: &Client,
    node: &str,
    deadline: Option<Instant>,
) -> Result<Option<Option<(LeaseHolder, i32)>>> {
    match with_retries(deadline, || c.get_data(node)).await {
        Ok(Some((d, stat))) => Ok(Some(Some((LeaseHolder::decode(&d)?, stat.version)))),
        Ok(None) => Ok(None),
        Err(Error::NoNode) => Ok(Some(None)),
        Err(e) => Err(e),
    }
}

/// `count` leases, of which a client takes one (kazoo
/// `MultiNonBlockingLease(client, count, path, duration, identifier)`): slots `P/0` …
/// `P/<count-1>`, each a [`NonBlockingLease`] in kazoo's layout, tried in order. The same
/// clock assumption applies (see [`NonBlockingLease`]).
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use std::time::Duration;
/// let leases = zk_recipes::MultiNonBlockingLease::new(
///     &client, 3, "/leases/crawler", Duration::from_secs(600), "host-5",
/// );
/// if let Some((slot, _)) = leases.try_acquire().await? {
///     println!("crawler slot {slot} is ours for 10 minutes");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MultiNonBlockingLease {
    /// Every slot's settings, at the parent path (slots are made from it one at a time, as
    /// kazoo walks `range(count)`: a huge count allocates nothing).
    base: NonBlockingLease,
    count: usize,
}

impl MultiNonBlockingLease {
    /// `count` slots under `path` (a count of 0 never obtains anything, as in kazoo).
    pub fn new(
        client: &Client,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: impl Into<String>,
    ) -> MultiNonBlockingLease {
        MultiNonBlockingLease {
            base: NonBlockingLease::new(client, path, duration, identifier),
            count,
        }
    }

    /// As [`NonBlockingLease::clock`], for every slot.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.base.clock = Arc::new(clock);
        self
    }

    /// Tries the slots in order; the first obtained (its index and holder record), or
    /// `Ok(None)` if every slot is held by someone else.
    ///
    /// # Errors
    /// As [`NonBlockingLease::try_acquire`].
    ///
    /// # Cancel safety
    /// As [`NonBlockingLease::try_acquire`].
    pub async fn try_acquire(&self) -> Result<Option<(usize, LeaseHolder)>> {
        self.attempt(None).await
    }

    /// [`try_acquire`](Self::try_acquire) with one total deadline over all slots.
    ///
    /// # Errors
    /// As [`NonBlockingLease::try_acquire`].
    pub async fn try_acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<(usize, LeaseHolder)>> {
        self.attempt(Some(deadline_after(timeout))).await
    }

    /// [`try_acquire_timeout`](Self::try_acquire_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`NonBlockingLease::try_acquire`].
    pub async fn try_acquire_until(
        &self,
        deadline: Instant,
    ) -> Result<Option<(usize, LeaseHolder)>> {
        self.attempt(Some(deadline)).await
    }

    /// The number of slots.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Slot `i` (`P/<i>`) as a [`NonBlockingLease`], e.g. to read its holder; `None` past the
    /// count.
    pub fn slot(&self, i: usize) -> Option<NonBlockingLease> {
        (i < self.count).then(|| NonBlockingLease {
            path: child_path(&self.base.path, &i.to_string()),
            ..self.base.clone()
        })
    }

    async fn attempt(&self, deadline: Option<Instant>) -> Result<Option<(usize, LeaseHolder)>> {
        for i in 0..self.count {
            if passed(deadline) {
                return Ok(None);
            }
            let s = self.slot(i).expect("below the count");
            if let Some(h) = s.attempt(deadline).await? {
                return Ok(Some((i, h)));
            }
        }
        Ok(None)
    }
}

/// A lease that trusts no clock: held while an EPHEMERAL node of the holder's session exists,
/// as a [`Guard`] (lost signal, fence for `multi`). Not a kazoo layout: it is the lock layout
/// on its own path (`P/<uuid>__lock__<seq>`, data = identifier), taken only if nobody holds it
/// ([`Lock::try_acquire`]); kazoo's `Lock(P)` sees it held.
///
/// Why an ephemeral node and not a TTL node: a TTL node needs the servers started with
/// `zookeeper.extendedTypesEnabled=true`, and the server deletes an expired one only at its
/// container sweep (every 60 s by default), so its end is fuzzy and its holder is not told;
/// an ephemeral node needs no server option, its end is exact (the session's), and a holder
/// learns it from its session state (the guard's [`lost`](Guard::lost)), before the server can
/// let anyone else in (with the default [`LostPolicy`](crate::LostPolicy)). The price: the
/// lease ends when the holder's process or session ends, where kazoo's survives its holder
/// until the end time. To hold it for a duration, release it after that duration (a local,
/// monotonic timer: no clock is compared across hosts); [`hold_for`](Self::hold_for) does.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use zk_recipes::FencedLease;
/// let lease = FencedLease::new(&client, "/leases/compactor", "host-2");
/// if let Some(guard) = lease.try_acquire().await? {
///     // writes that only apply while the lease is held
///     guard
///         .fenced_multi(vec![zk_core::Op::set_data("/compactor/state", b"run".to_vec(), None)])
///         .await
///         .ok();
///     guard.release().await?;
/// }
/// # Ok(()) }
/// ```
///
/// For N holders, use [`Semaphore::try_acquire`](crate::Semaphore::try_acquire).
#[derive(Debug, Clone)]
pub struct FencedLease {
    lock: Lock,
}

impl FencedLease {
    /// A fenced lease at `path` for `identifier`. Nothing is sent until
    /// [`try_acquire`](Self::try_acquire).
    pub fn new(client: &Client, path: &str, identifier: impl Into<String>) -> FencedLease {
        FencedLease {
            lock: Lock::new(client, path, identifier),
        }
    }

    /// The lease's path.
    pub fn path(&self) -> &str {
        self.lock.path()
    }

    /// Obtains the lease if nobody holds it: `Ok(Some(guard))`, held until released, dropped,
    /// or lost (see [`Guard`]); `Ok(None)` if someone holds it.
    ///
    /// # Errors
    /// As [`Lock::try_acquire`].
    ///
    /// # Cancel safety
    /// As [`Lock::try_acquire`]: no node is left behind.
    pub async fn try_acquire(&self) -> Result<Option<Guard>> {
        self.lock.try_acquire().await
    }

    /// Obtains the lease if nobody holds it and runs `task` while it is held, for at most
    /// `duration`; then releases it. `Ok(None)`: someone holds it (the task did not run).
    /// `Ok(Some(Ok(out)))`: the task finished; `Ok(Some(Err(reason)))`: the lease was lost
    /// first, or `duration` passed first (then the reason is
    /// [`LostReason::Released`](crate::LostReason::Released)), and the task was dropped.
    ///
    /// # Errors
    /// As [`try_acquire`](Self::try_acquire), and errors of the release.
    ///
    /// # Cancel safety
    /// Dropping the future drops the guard, which releases the node in the background.
    pub async fn hold_for<T>(
        &self,
        duration: Duration,
        task: impl std::future::Future<Output = T>,
    ) -> Result<Option<std::result::Result<T, crate::LostReason>>> {
        let Some(guard) = self.try_acquire().await? else {
            return Ok(None);
        };
        let out = match tokio::time::timeout(duration, guard.run_while_held(task)).await {
            Ok(r) => r,
            Err(_) => Err(crate::LostReason::Released),
        };
        guard.release().await?;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kazoo_date_format_round_trips() {
        let t = UNIX_EPOCH + Duration::from_secs(1_796_034_300); // 2026-11-30T10:25:00
        assert_eq!(format_utc(t), "2026-11-30T10:25:00");
        assert_eq!(parse_utc("2026-11-30T10:25:00"), Some(t));
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01T00:00:00");
        assert_eq!(
            format_utc(UNIX_EPOCH + Duration::from_millis(951_782_400_999)),
            "2000-02-29T00:00:00"
        );
        assert_eq!(parse_utc("2026-11-30 10:25:00"), None);
    }

    #[test]
    fn holder_is_encoded_as_python_json_dumps() {
        let h = LeaseHolder {
            holder: "h\u{e9}\"1".into(),
            end: parse_utc("2026-11-30T10:25:00").unwrap(),
            version: 1,
        };
        let raw = h.encode();
        assert_eq!(
            String::from_utf8(raw.clone()).unwrap(),
            r#"{"version": 1, "holder": "h\u00e9\"1", "end": "2026-11-30T10:25:00"}"#
        );
        assert_eq!(LeaseHolder::decode(&raw).unwrap(), h);
        assert_eq!(json_string("\u{1f600}"), r#""\ud83d\ude00""#);
    }
}
