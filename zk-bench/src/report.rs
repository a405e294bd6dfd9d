//! What a run measures about itself (CPU time, memory, latencies) and how it prints a result:
//! one JSON object per line, with the same field names as `bench/kazoo_bench.py`.

use hdrhistogram::Histogram;
use serde::ser::{Serialize, SerializeMap, Serializer};
pub use serde_json::Value;
use std::time::{Duration, Instant};

/// A JSON object that keeps its keys in insertion order (the common fields first, as a reader
/// expects), encoded by serde_json. Floats are rounded to 3 decimals (easy to read, enough
/// precision); NaN and infinities become `null`.
#[derive(Debug, Clone, Default)]
pub struct Obj(Vec<(String, Value)>);

impl Obj {
    pub fn new() -> Obj {
        Obj::default()
    }

    /// Sets `key` (replacing an earlier value in its place).
    pub fn set(&mut self, key: &str, v: impl Into<Value>) -> &mut Obj {
        let v = rounded(v.into());
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.0.push((key.to_owned(), v)),
        }
        self
    }

    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Obj {
        self.set(key, v);
        self
    }

    /// Sets every key of `other`.
    pub fn merge(&mut self, other: Obj) {
        for (k, v) in other.0 {
            self.set(&k, v);
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// One line of compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("string keys and JSON values always serialize")
    }
}

impl Serialize for Obj {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A nested object (such as `params`); its keys come out sorted.
impl From<Obj> for Value {
    fn from(o: Obj) -> Value {
        Value::Object(o.0.into_iter().collect())
    }
}

/// `v` with its floats rounded to 3 decimals.
fn rounded(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            Value::from((f * 1000.0).round() / 1000.0 + 0.0) // + 0.0: no "-0.0"
        }
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(rounded).collect()),
        v => v,
    }
}

/// Latency samples in microseconds, in an HDR histogram (3 significant digits: values up to
/// 2048 µs exact, above that within 0.1 %; constant memory however many samples).
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

/// Percentiles of [`Latencies`] in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

impl Default for Latencies {
    fn default() -> Latencies {
        Latencies::new()
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies(Histogram::new(3).expect("3 significant digits are supported"))
    }

    pub fn push(&mut self, d: Duration) {
        self.record(d.as_micros().min(u64::MAX as u128) as u64);
    }

    /// A histogram of samples in microseconds.
    pub fn from_micros(samples: &[u32]) -> Latencies {
        let mut l = Latencies::new();
        for &us in samples {
            l.record(u64::from(us));
        }
        l
    }

    fn record(&mut self, us: u64) {
        // `record` grows the histogram as needed (`saturating_record` would clamp to its
        // current top instead); it fails only beyond u64 range.
        if self.0.record(us).is_err() {
            self.0.saturating_record(us);
        }
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// p50, p90, p99, p99.9 and max in microseconds, `None` without samples.
    pub fn summary(&self) -> Option<Summary> {
        if self.0.is_empty() {
            return None;
        }
        Some(Summary {
            p50: self.quantile(0.50)?,
            p90: self.quantile(0.90)?,
            p99: self.quantile(0.99)?,
            p99_9: self.quantile(0.999)?,
            max: self.0.max(),
        })
    }

    /// The `q` quantile in microseconds, `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(q))
    }

    /// Adds `p50_us`, `p90_us`, `p99_us`, `p999_us` and `max_us` (or nulls) to `o`, with
    /// `prefix` before each name.
    pub fn report(&self, o: &mut Obj, prefix: &str) {
        let s = self.summary();
        o.set(&format!("{prefix}p50_us"), s.map(|s| s.p50));
        o.set(&format!("{prefix}p90_us"), s.map(|s| s.p90));
        o.set(&format!("{prefix}p99_us"), s.map(|s| s.p99));
        o.set(&format!("{prefix}p999_us"), s.map(|s| s.p99_9));
        o.set(&format!("{prefix}max_us"), s.map(|s| s.max));
    }
}

/// CPU usage of this process so far (all threads; not child processes such as a ZooKeeper
/// started by the test kit), from getrusage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub user: Duration,
    pub sys: Duration,
    /// Voluntary + involuntary context switches.
    pub switches: u64,
}

impl Usage {
    pub fn now() -> Usage {
        // SAFETY: getrusage only writes into the struct we pass.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        if rc != 0 {
            return Usage::default();
        }
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        Usage {
            user: tv(ru.ru_utime),
            sys: tv(ru.ru_stime),
            switches: (ru.ru_nvcsw + ru.ru_nivcsw) as u64,
        }
    }

    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
            switches: self.switches.saturating_sub(earlier.switches),
        }
    }

    pub fn total_secs(&self) -> f64 {
        (self.user + self.sys).as_secs_f64()
    }
}

/// `(VmRSS, VmHWM)` of this process in KiB, from /proc/self/status (zeros if unreadable).
pub fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Wall clock and CPU usage started together.
pub struct Clock {
    wall: Instant,
    usage: Usage,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            usage: Usage::now(),
        }
    }

    /// `(wall seconds, cpu seconds)` since the start.
    pub fn elapsed(&self) -> (f64, f64) {
        let (w, u) = self.elapsed_usage();
        (w, u.total_secs())
    }

    /// Wall seconds and CPU usage since the start.
    pub fn elapsed_usage(&self) -> (f64, Usage) {
        (
            self.wall.elapsed().as_secs_f64(),
            Usage::now().since(self.usage),
        )
    }
}

/// Adds the common fields: `ops`, `seconds`, `ops_per_sec`, `cpu_seconds`, `cpu_us_per_op`,
/// and the split of the CPU time: `cpu_user_us_per_op`, `cpu_sys_us_per_op`,
/// `ctx_switches_per_op`.
pub fn throughput(o: &mut Obj, ops: u64, seconds: f64, u: Usage) {
    let per_op = |x: f64| if ops > 0 { x / ops as f64 } else { 0.0 };
    o.set("ops", ops);
    o.set("seconds", seconds);
    o.set(
        "ops_per_sec",
        if seconds > 0.0 {
            ops as f64 / seconds
        } else {
            0.0
        },
    );
    o.set("cpu_seconds", u.total_secs());
    o.set("cpu_us_per_op", per_op(u.total_secs() * 1e6));
    o.set("cpu_user_us_per_op", per_op(u.user.as_secs_f64() * 1e6));
    o.set("cpu_sys_us_per_op", per_op(u.sys.as_secs_f64() * 1e6));
    o.set("ctx_switches_per_op", per_op(u.switches as f64));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_compact_escaped_and_in_insertion_order() {
        let o = Obj::new()
            .with("client", "zk-rs")
            .with("n", 3u64)
            .with("x", 1.5)
            .with("r", 2.0 / 3.0)
            .with("s", "a\"b\\c\n")
            .with("none", Option::<u64>::None)
            .with("nan", f64::NAN)
            .with("p", Obj::new().with("size", 100u64));
        assert_eq!(
            o.to_json(),
            r#"{"client":"zk-rs","n":3,"x":1.5,"r":0.667,"s":"a\"b\\c\n","none":null,"nan":null,"p":{"size":100}}"#
        );
        let mut o = o;
        o.set("n", 4u64);
        let back: serde_json::Value = serde_json::from_str(&o.to_json()).unwrap();
        assert_eq!(back["n"], 4);
        assert!(o.to_json().starts_with(r#"{"client":"zk-rs","n":4,"#));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut l = Latencies::default();
        for us in 1..=1000u64 {
            l.push(Duration::from_micros(us));
        }
        let s = l.summary().unwrap();
        assert_eq!(
            (s.p50, s.p90, s.p99, s.p99_9, s.max),
            (500, 900, 990, 999, 1000)
        );
        let mut one = Latencies::default();
        one.push(Duration::from_micros(7));
        let s = one.summary().unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.p99_9, s.max), (7, 7, 7, 7, 7));
        assert_eq!(Latencies::default().summary(), None);
    }

    #[test]
    fn large_latencies_are_within_a_tenth_of_a_percent() {
        let mut l = Latencies::default();
        for ms in 1..=100u64 {
            l.push(Duration::from_millis(ms));
        }
        let s = l.summary().unwrap();
        let near = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
        assert!(near(s.p50, 50_000), "{s:?}");
        assert!(near(s.p99, 99_000), "{s:?}");
        assert!(near(s.max, 100_000), "{s:?}");
    }

    #[test]
    fn samples_taken_as_micros_count_like_pushed_ones() {
        let samples: Vec<u32> = (1..=100).rev().collect();
        let a = Latencies::from_micros(&samples);
        assert_eq!(a.len(), 100);
        let s = a.summary().unwrap();
        assert_eq!((s.p50, s.p99, s.max), (50, 99, 100));
        let mut o = Obj::new();
        a.report(&mut o, "close_");
        assert_eq!(
            o.to_json(),
            r#"{"close_p50_us":50,"close_p90_us":90,"close_p99_us":99,"close_p999_us":100,"close_max_us":100}"#
        );
    }

    #[test]
    fn cpu_and_rss_are_readable() {
        let c = Clock::start();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let (_, cpu) = c.elapsed();
        assert!(cpu >= 0.0);
        let (rss, hwm) = rss_kib();
        assert!(rss > 0 && hwm >= rss);
    }
}
