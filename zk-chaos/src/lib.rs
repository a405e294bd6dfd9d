//! `zk-chaos`: a seeded, Jepsen-style fault campaign for the client and the recipes.
//!
//! Many clients, each with its own session through its own fault proxies, do real work
//! ([`workload`]) while a nemesis ([`nemesis`]) breaks the network and the servers on a
//! schedule drawn from the seed. Everything is recorded as a JSON-lines [`history`], and the
//! [`checker`]s, which read only the history, judge it. See `docs/chaos.md`.
#![deny(missing_docs)]

pub mod checker;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod report;
pub mod run;
pub mod timeline;
pub mod workload;

use std::time::Duration;

/// The longest run [`parse_duration`] accepts: a day (a run's phases add the duration to the
/// start `Instant`; longer runs also need more memory than a machine has: the history, about
/// 0.3 MB a second, is kept in memory and judged at the end).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Parses `90`, `90s`, `500ms`, `2m`, `1h` (at most [`MAX_DURATION`]).
///
/// # Errors
/// A message naming the accepted forms, or the limit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with an optional unit (ms, s, m, h)"))?;
    let too_long = || format!("{s:?}: longer than the limit of 24h");
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(too_long)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(too_long)?),
        u => return Err(format!("{s:?}: unknown unit {u:?} (ms, s, m, h)")),
    };
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("2x").is_err());
    }

    #[test]
    fn durations_that_overflow_or_outlast_a_day_are_refused_not_a_panic() {
        // 60 * n and 3600 * n overflowed a u64 (a panic in a debug build, a wrapped, wrong
        // duration in a release one); a run's phases add the duration to an Instant
        for s in [
            "307445734561825861m",
            "5124095576040431h",
            "18446744073709551615",
            "18446744073709551615ms",
            "25h",
        ] {
            let r = std::panic::catch_unwind(|| parse_duration(s));
            assert!(matches!(r, Ok(Err(_))), "{s}: {r:?}");
        }
        assert_eq!(
            parse_duration("24h").unwrap(),
            Duration::from_secs(24 * 3600)
        );
    }
}
