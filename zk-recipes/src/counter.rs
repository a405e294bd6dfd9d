//! A shared counter (kazoo `Counter`, Curator `SharedCount`): an optimistic compare-and-set
//! add on one node.

use crate::plumbing::{deadline_after, parent_of, passed, wait_after_error, wait_connected};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tracing::debug;
use zk_core::{Client, CreateMode, Error, Result};

mod sealed {
    pub trait Sealed {}
    impl Sealed for i64 {}
    impl Sealed for f64 {}
}

/// A value a [`Counter`] holds: `i64` (kazoo's `int`) or `f64` (kazoo's `float`, a counter
/// whose `default` is a float). Sealed.
pub trait CounterValue:
    sealed::Sealed + Copy + PartialEq + fmt::Debug + fmt::Display + Send + Sync + 'static
{
    /// kazoo's text: Python's `repr(value)`, ASCII.
    #[doc(hidden)]
    fn encode_ascii(self) -> String;
    /// kazoo's `type(default)(text)`.
    #[doc(hidden)]
    fn decode_ascii(text: &str) -> Option<Self>;
    /// `self + delta`, `None` on overflow.
    #[doc(hidden)]
    fn checked_plus(self, delta: Self) -> Option<Self>;
    /// From Curator's 4-byte layout (integers only).
    #[doc(hidden)]
    fn from_i32(i: i32) -> Option<Self>;
    /// To Curator's 4-byte layout, `None` if it does not fit (or for a float).
    #[doc(hidden)]
    fn to_i32(self) -> Option<i32>;
}

impl CounterValue for i64 {
    fn encode_ascii(self) -> String {
        self.to_string()
    }
    fn decode_ascii(text: &str) -> Option<i64> {
        // Python's int() also takes surrounding whitespace and a leading '+', and so does
        // Rust's parser (one sign, as Python: not "+-3")
        text.trim().parse().ok()
    }
    fn checked_plus(self, delta: i64) -> Option<i64> {
        self.checked_add(delta)
    }
    fn from_i32(i: i32) -> Option<i64> {
        Some(i64::from(i))
    }
    fn to_i32(self) -> Option<i32> {
        i32::try_from(self).ok()
    }
}

impl CounterValue for f64 {
    fn encode_ascii(self) -> String {
        python_float_repr(self)
    }
    fn decode_ascii(text: &str) -> Option<f64> {
        // Rust's parser takes what Python's float() writes: "1e+16", "inf", "-inf", "nan"
        text.trim().parse().ok()
    }
    fn checked_plus(self, delta: f64) -> Option<f64> {
        Some(self + delta)
    }
    fn from_i32(_: i32) -> Option<f64> {
        None // only `Counter<i64>` can select the layout
    }
    fn to_i32(self) -> Option<i32> {
        None
    }
}

/// Python's `repr(float)`: the shortest text that reads back as the same value, in fixed
/// notation for decimal exponents -4..16 (always with a fraction, `3.0`) and scientific
/// otherwise with a signed exponent of at least two digits (`1e+16`, `1.5e-05`).
pub(crate) fn python_float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` is the same shortest round-trip digits: "-1.2345e3", "0e0", "1e-5"
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    if (-4..16).contains(&exp) {
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            let zeros = "0".repeat(point.unsigned_abs() as usize);
            format!("{sign}0.{zeros}{digits}")
        } else {
            let point = point as usize;
            if digits.len() <= point {
                let zeros = "0".repeat(point - digits.len());
                format!("{sign}{digits}{zeros}.0")
            } else {
                format!("{sign}{}.{}", &digits[..point], &digits[point..])
            }
        }
    } else {
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{esign}{:02}", exp.unsigned_abs())
    }
}

/// How the value is stored in the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// kazoo: `repr(value)` as ASCII; empty data is the default.
    Ascii,
    /// Curator `SharedCount` (kazoo `support_curator=True`): a 4-byte big-endian signed int.
    Curator,
}

/// The result of one add: the value it read and the value it wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Change<T> {
    /// The counter's value just before this add (kazoo's `pre_value`).
    pub pre_value: T,
    /// The value this add wrote (kazoo's `post_value`).
    pub post_value: T,
}

/// A counter shared through one node, in kazoo's layout (`Counter(client, path, default)`):
/// the node's data is the value as ASCII text (Python's `repr`), empty data is `default`.
/// With [`curator_layout`](Counter::curator_layout) (integers only) it is Curator's
/// `SharedCount` layout instead, a 4-byte big-endian signed integer (kazoo's
/// `support_curator=True`).
///
/// An add reads the value and its version, then writes the sum *conditional on that
/// version* (`setData(path, v + delta, version)`); if someone else wrote in between, the write
/// fails with `BadVersion` and the add reads again. A missing node is created (persistent,
/// parents like `ensure_path`; empty data as kazoo's, or in Curator's layout the default as
/// Curator's seed value) and the add goes on.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use zk_recipes::Counter;
/// let hits = Counter::new(&client, "/stats/hits", 0);
/// let change = hits.add(5).await?;
/// println!("{} -> {}", change.pre_value, change.post_value);
/// assert_eq!(hits.post_value(), Some(change.post_value));
///
/// let load = Counter::new(&client, "/stats/load", 0.0); // a float counter, as kazoo's default=0.0
/// load.add(0.25).await?;
///
/// // shared with Java services using Curator's SharedCount
/// let shared = Counter::new(&client, "/stats/shared", 0).curator_layout();
/// if shared.add_timeout(1, std::time::Duration::from_secs(5)).await?.is_none() {
///     println!("not added: the deadline passed first");
/// }
/// # Ok(()) }
/// ```
///
/// # Lost replies: never twice where it can tell, an error where it cannot
///
/// When the reply to the conditional write is lost (connection loss, a timeout after it was
/// sent), the write may or may not have happened. kazoo retries the whole add and so **can add
/// twice**. This counter waits for the connection, `sync`s and reads again, and judges by the
/// version the lost write was conditional on (`v`):
///
/// * the version is still `v`: the lost write did not happen (nor can it any more: it could
///   only have applied at `v`); the add goes on as usual;
/// * the version is `v + 1` but the data is not what we wrote: someone else's write took `v`,
///   so ours failed; the add goes on;
/// * the version is `v + 1` and the data is what we wrote, or the version moved further, or the
///   node is gone: the write may have been ours, or another client's identical add from the
///   same value. No read can tell them apart in this layout, so the add returns
///   [`Error::ConnectionLoss`] (`may_have_been_applied()`): **applied once or not at all**,
///   never twice; the caller decides.
///
/// Every `Ok` add was applied exactly once; every error other than one with
/// `may_have_been_applied()` was not applied.
///
/// # Cancel safety
/// Dropping an add future before its write is sent changes nothing; after it, the write may
/// or may not apply (once).
#[derive(Debug, Clone)]
pub struct Counter<T: CounterValue> {
    client: Client,
    path: String,
    default: T,
    layout: Layout,
    last: Arc<Mutex<Option<Change<T>>>>,
}

impl<T: CounterValue> Counter<T> {
    /// A counter at `path` whose missing or empty node counts as `default`; its type (`i64`
    /// or `f64`) is the counter's, as kazoo's `default` decides its `default_type`.
    pub fn new(client: &Client, path: &str, default: T) -> Counter<T> {
        Counter {
            client: client.clone(),
            path: path.to_owned(),
            default,
            layout: Layout::Ascii,
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// The counter's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value: `default` if the node is missing or empty (kazoo creates the node
    /// on a read; this does not write).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the node's data is not a value of this counter's type
    /// and layout (e.g. `3.5` for an integer counter); server and connection errors.
    pub async fn value(&self) -> Result<T> {
        match self.client.get_data(&self.path).await {
            Ok((data, _)) => self.decode(&data),
            Err(Error::NoNode) => Ok(self.default),
            Err(e) => Err(e),
        }
    }

    /// Adds `delta` (negative to subtract, as kazoo's `counter -= n`), however long it takes:
    /// connection loss is waited out.
    ///
    /// # Errors
    /// [`Error::ConnectionLoss`] when a write's reply was lost and the outcome cannot be told
    /// (applied once or not at all: see the type's docs); [`Error::InvalidArgument`] if the
    /// node holds something that is not a value of this counter, or the sum overflows (`i64`;
    /// `i32` in Curator's layout); other server errors (e.g. `NoAuth`); [`Error::Closed`].
    ///
    /// # Cancel safety
    /// See the type's docs.
    pub async fn add(&self, delta: T) -> Result<Change<T>> {
        self.add_inner(delta, None)
            .await?
            .ok_or(Error::Timeout { sent: false })
    }

    /// Adds `delta` within `timeout` (one deadline for the whole add, across retries and
    /// reconnects). `Ok(None)` when the deadline passed and nothing was applied.
    ///
    /// # Errors
    /// As [`add`](Self::add), and [`Error::Timeout`]` { sent: true }` when the deadline passed
    /// while a write's outcome was unknown (applied once or not at all).
    pub async fn add_timeout(&self, delta: T, timeout: Duration) -> Result<Option<Change<T>>> {
        self.add_until(delta, deadline_after(timeout)).await
    }

    /// Like [`add_timeout`](Self::add_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`add_timeout`](Self::add_timeout).
    pub async fn add_until(&self, delta: T, deadline: Instant) -> Result<Option<Change<T>>> {
        self.add_inner(delta, Some(deadline)).await
    }

    /// The value read by the last successful add through this handle (or a clone of it):
    /// kazoo's `pre_value`.
    pub fn pre_value(&self) -> Option<T> {
        self.last_change().map(|c| c.pre_value)
    }

    /// The value written by the last successful add through this handle (or a clone of it):
    /// kazoo's `post_value`.
    pub fn post_value(&self) -> Option<T> {
        self.last_change().map(|c| c.post_value)
    }

    fn last_change(&self) -> Option<Change<T>> {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn decode(&self, data: &[u8]) -> Result<T> {
        if data.is_empty() {
            return Ok(self.default);
        }
        let bad = || {
            Error::InvalidArgument(format!(
                "counter {}: data {:?} is not a {} counter value",
                self.path,
                String::from_utf8_lossy(data),
                self.describe()
            ))
        };
        match self.layout {
            Layout::Ascii => std::str::from_utf8(data)
                .ok()
                .filter(|s| s.is_ascii())
                .and_then(T::decode_ascii)
                .ok_or_else(bad),
            Layout::Curator => {
                let bytes: [u8; 4] = data.try_into().map_err(|_| bad())?;
                T::from_i32(i32::from_be_bytes(bytes)).ok_or_else(bad)
            }
        }
    }

    fn encode(&self, v: T) -> Result<Vec<u8>> {
        match self.layout {
            Layout::Ascii => Ok(v.encode_ascii().into_bytes()),
            Layout::Curator => v.to_i32().map(|i| i.to_be_bytes().to_vec()).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "counter {}: {v} does not fit Curator's 4-byte layout",
                    self.path
                ))
            }),
        }
    }

    /// A missing node's first data: empty in kazoo's layout (its `ensure_path`), the
    /// default's 4 bytes in Curator's (its seed value: Curator cannot read empty data).
    fn seed(&self) -> Vec<u8> {
        match self.layout {
            Layout::Ascii => Vec::new(),
            Layout::Curator => self.encode(self.default).unwrap_or_default(),
        }
    }

    fn describe(&self) -> &'static str {
        match self.layout {
            Layout::Curator => "Curator SharedCount (4-byte int)",
            Layout::Ascii if T::from_i32(0).is_none() => "float",
            Layout::Ascii => "int",
        }
    }

    async fn add_inner(&self, delta: T, deadline: Option<Instant>) -> Result<Option<Change<T>>> {
        // a conditional write whose reply was lost: (the version it was conditional on, the
        // data it wrote)
        let mut unknown: Option<(i32, Vec<u8>)> = None;
        match self.add_loop(delta, deadline, &mut unknown).await {
            // the deadline, wherever it struck (a request, waiting for the connection):
            // "not applied" only if nothing is in doubt
            Err(Error::Timeout { .. }) if passed(deadline) => match unknown {
                Some(_) => Err(Error::Timeout { sent: true }),
                None => Ok(None),
            },
            other => other,
        }
    }

    async fn add_loop(
        &self,
        delta: T,
        deadline: Option<Instant>,
        unknown: &mut Option<(i32, Vec<u8>)>,
    ) -> Result<Option<Change<T>>> {
        let c = match deadline {
            Some(d) => self.client.with_deadline(d),
            None => self.client.clone(),
        };
        let ambiguous = |path: &str, why: &str| {
            debug!(path, why, "counter add: a lost write may have applied");
            Err(Error::ConnectionLoss)
        };
        // the deadline (mapped by `add_inner`)
        let out_of_time = || Err(Error::Timeout { sent: false });
        loop {
            if passed(deadline) {
                return out_of_time();
            }
            if unknown.is_some() {
                // settle the lost write before reading: `sync` is ordered after it
                if let Err(e) = self.settle(&c, deadline).await {
                    return match e {
                        Error::Timeout { .. } if passed(deadline) => out_of_time(),
                        _ => ambiguous(&self.path, "sync failed"),
                    };
                }
            }
            let (data, stat) = match c.get_data(&self.path).await {
                Ok(x) => x,
                Err(Error::NoNode) => {
                    if unknown.is_some() {
                        return ambiguous(&self.path, "the node was deleted");
                    }
                    match c
                        .create(&self.path, &self.seed(), CreateMode::Persistent)
                        .await
                    {
                        Ok(_) | Err(Error::NodeExists) => {}
                        Err(Error::NoNode) => {
                            if let Err(e) = c.ensure_path(parent_of(&self.path)).await {
                                wait_after_error(&c, e, deadline).await?;
                            }
                        }
                        Err(e) => wait_after_error(&c, e, deadline).await?,
                    }
                    continue;
                }
                Err(Error::Timeout { .. }) if passed(deadline) => return out_of_time(),
                Err(e) => match wait_after_error(&c, e, deadline).await {
                    Ok(()) => continue,
                    Err(Error::Timeout { .. }) if passed(deadline) => return out_of_time(),
                    Err(e) if unknown.is_some() && !e.may_have_been_applied() => {
                        return ambiguous(&self.path, "the read failed")
                    }
                    Err(e) => return Err(e),
                },
            };
            if let Some((v, ours)) = unknown.as_ref() {
                if stat.version == *v {
                    // the lost write did not apply (and cannot any more: settled by `sync`)
                    *unknown = None;
                } else if stat.version == v.wrapping_add(1) && data != *ours {
                    // someone else's write took version v: ours failed
                    *unknown = None;
                } else {
                    return ambiguous(&self.path, "the version moved to what we may have written");
                }
            }
            let pre = self.decode(&data)?;
            let post = pre.checked_plus(delta).ok_or_else(|| {
                Error::InvalidArgument(format!("counter {}: {pre} + {delta} overflows", self.path))
            })?;
            let enc = self.encode(post)?;
            match c.set_data(&self.path, &enc, Some(stat.version)).await {
                Ok(_) => {
                    let change = Change {
                        pre_value: pre,
                        post_value: post,
                    };
                    *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(change);
                    return Ok(Some(change));
                }
                // someone else wrote (or deleted) in between: read again
                Err(Error::BadVersion) | Err(Error::NoNode) => {}
                Err(e) if e.may_have_been_applied() || e.is_session_dead() => {
                    if matches!(e, Error::Closed | Error::AuthFailed) {
                        return ambiguous(&self.path, "the client is closed");
                    }
                    *unknown = Some((stat.version, enc));
                    if let Err(e) = wait_connected(&c, deadline).await {
                        return match e {
                            Error::Timeout { .. } => out_of_time(),
                            _ => ambiguous(&self.path, "no connection to tell"),
                        };
                    }
                }
                Err(Error::Timeout { .. }) if passed(deadline) => return out_of_time(),
                Err(e) => wait_after_error(&c, e, deadline).await?,
            }
        }
    }

    /// `sync`, retried through connection loss until `deadline`.
    async fn settle(&self, c: &Client, deadline: Option<Instant>) -> Result<()> {
        loop {
            match c.sync(&self.path).await {
                Ok(()) | Err(Error::NoNode) => return Ok(()),
                Err(e) => wait_after_error(c, e, deadline).await?,
            }
        }
    }
}

impl Counter<i64> {
    /// Stores the value in Curator's `SharedCount` layout, a 4-byte big-endian signed
    /// integer (kazoo's `support_curator=True`), instead of kazoo's ASCII text: Java services
    /// using Curator's `SharedCount` and kazoo clients with `support_curator=True` share the
    /// counter. Values must fit an `i32`; an add that would leave that range fails with
    /// [`Error::InvalidArgument`] (nothing written).
    pub fn curator_layout(mut self) -> Self {
        self.layout = Layout::Curator;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr_matches_python() {
        // pairs checked against CPython 3.11's repr()
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (3.5, "3.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-4, "0.0001"),
            (1.5e-5, "1.5e-05"),
            (1e-5, "1e-05"),
            (123456789012345.6, "123456789012345.6"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (100.0, "100.0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (v, want) in cases {
            assert_eq!(python_float_repr(v), want, "repr of {v:?}");
        }
    }

    #[test]
    fn ascii_decoding_takes_what_python_writes() {
        assert_eq!(i64::decode_ascii("42"), Some(42));
        assert_eq!(i64::decode_ascii(" -7\n"), Some(-7));
        assert_eq!(i64::decode_ascii("+3"), Some(3));
        assert_eq!(i64::decode_ascii("3.0"), None);
        assert_eq!(i64::decode_ascii("+-3"), None);
        assert_eq!(i64::decode_ascii("++3"), None);
        assert_eq!(f64::decode_ascii("1e+16"), Some(1e16));
        assert_eq!(f64::decode_ascii("42"), Some(42.0));
        assert_eq!(f64::decode_ascii("-inf"), Some(f64::NEG_INFINITY));
        assert!(f64::decode_ascii("nan").unwrap().is_nan());
    }

    #[test]
    fn curator_conversions_are_for_integers_only() {
        assert_eq!(i64::from_i32(-5), Some(-5));
        assert_eq!(f64::from_i32(-5), None);
        assert_eq!((1i64 << 40).to_i32(), None);
        assert_eq!((-1i64).to_i32(), Some(-1));
    }
}
