//! What a run measures about itself (CPU time, memory, latencies) and how it prints a result:
//! one JSON object per line, with the same field names as `bench/kazoo_bench.py`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A JSON value, as much of JSON as the results need.
#[derive(Debug, Clone)]
pub enum Value {
    Int(i64),
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    Obj(Obj),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v as i64)
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v as i64)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v as i64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Num(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Str(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Str(v)
    }
}
impl From<Obj> for Value {
    fn from(v: Obj) -> Value {
        Value::Obj(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// A JSON object that keeps its keys in insertion order.
#[derive(Debug, Clone, Default)]
pub struct Obj(Vec<(String, Value)>);

impl Obj {
    pub fn new() -> Obj {
        Obj::default()
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: &str, v: impl Into<Value>) -> &mut Obj {
        let v = v.into();
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

    pub fn to_json(&self) -> String {
        let mut s = String::new();
        write_obj(&mut s, self);
        s
    }
}

fn write_obj(s: &mut String, o: &Obj) {
    s.push('{');
    for (i, (k, v)) in o.0.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        write_str(s, k);
        s.push(':');
        write_value(s, v);
    }
    s.push('}');
}

fn write_value(s: &mut String, v: &Value) {
    match v {
        Value::Int(i) => {
            let _ = write!(s, "{i}");
        }
        Value::Num(f) if f.is_finite() => {
            // at most 3 decimals, no trailing zeros: easy to read, enough precision
            let t = format!("{f:.3}");
            let t = t.trim_end_matches('0').trim_end_matches('.');
            s.push_str(if t == "-0" { "0" } else { t });
        }
        Value::Num(_) | Value::Null => s.push_str("null"),
        Value::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
        Value::Str(t) => write_str(s, t),
        Value::Obj(o) => write_obj(s, o),
    }
}

fn write_str(s: &mut String, t: &str) {
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

/// Latency samples in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn with_capacity(n: usize) -> Latencies {
        Latencies(Vec::with_capacity(n))
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_micros().min(u32::MAX as u128) as u32);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// p50, p99 and max in microseconds (nearest rank), `None` without samples.
    pub fn summary(&mut self) -> Option<(u32, u32, u32)> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let rank = |q: f64| {
            let i = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
            self.0[i - 1]
        };
        Some((rank(0.50), rank(0.99), *self.0.last().unwrap()))
    }

    /// The `q` quantile in microseconds (nearest rank), `None` without samples.
    pub fn quantile(&mut self, q: f64) -> Option<u32> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let i = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        Some(self.0[i - 1])
    }

    /// Adds `p50_us`, `p99_us`, `max_us` (or nulls) to `o`, with `prefix` before each name.
    pub fn report(&mut self, o: &mut Obj, prefix: &str) {
        let s = self.summary();
        o.set(&format!("{prefix}p50_us"), s.map(|s| s.0));
        o.set(&format!("{prefix}p99_us"), s.map(|s| s.1));
        o.set(&format!("{prefix}max_us"), s.map(|s| s.2));
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
    fn json_is_compact_and_escaped() {
        let o = Obj::new()
            .with("client", "zk-rs")
            .with("n", 3u64)
            .with("x", 1.5)
            .with("y", 2.0)
            .with("s", "a\"b\\c\n")
            .with("none", Option::<u64>::None)
            .with("p", Obj::new().with("size", 100u64));
        assert_eq!(
            o.to_json(),
            r#"{"client":"zk-rs","n":3,"x":1.5,"y":2,"s":"a\"b\\c\n","none":null,"p":{"size":100}}"#
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut l = Latencies::default();
        for us in 1..=100u64 {
            l.push(Duration::from_micros(us));
        }
        assert_eq!(l.summary(), Some((50, 99, 100)));
        let mut one = Latencies::default();
        one.push(Duration::from_micros(7));
        assert_eq!(one.summary(), Some((7, 7, 7)));
        assert_eq!(Latencies::default().summary(), None);
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
