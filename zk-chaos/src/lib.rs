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

/// Parses `90`, `90s`, `500ms`, `2m`, `1h`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with an optional unit (ms, s, m, h)"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(60 * n),
        "h" => Duration::from_secs(3600 * n),
        u => return Err(format!("{s:?}: unknown unit {u:?} (ms, s, m, h)")),
    })
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
}
