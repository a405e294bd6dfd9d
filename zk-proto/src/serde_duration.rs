//! How durations are written by the `serde` feature.
//!
//! In human-readable formats (JSON, TOML, YAML) a duration is a string: a whole number and a
//! unit, `ns`, `us`, `ms`, `s`, `m` or `h` (`"10s"`, `"500ms"`, `"2m"`). It is written in the
//! largest unit that is exact (`1500 ms` is `"1500ms"`, `60 s` is `"1m"`); an integer is read
//! as milliseconds (`10000` is 10 s). Other formats (bincode, postcard) get the exact
//! `(seconds, nanoseconds)` pair.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

const UNITS: [(u128, &str); 6] = [
    (3_600_000_000_000, "h"),
    (60_000_000_000, "m"),
    (1_000_000_000, "s"),
    (1_000_000, "ms"),
    (1_000, "us"),
    (1, "ns"),
];

/// `d` in the largest exact unit (`"0s"` for zero).
pub fn format(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_string();
    }
    let (f, unit) = UNITS
        .iter()
        .find(|(f, _)| n.is_multiple_of(*f))
        .expect("1 ns divides everything");
    format!("{}{unit}", n / f)
}

/// Parses `"<whole number><unit>"`.
pub fn parse(s: &str) -> Result<Duration, String> {
    let expected = "a whole number and a unit (ns, us, ms, s, m, h), e.g. \"10s\" or \"500ms\"";
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("invalid duration {s:?}: expected {expected}"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: too large"))?;
    let too_large = || format!("invalid duration {s:?}: too large");
    if unit.starts_with('.') {
        return Err(format!(
            "invalid duration {s:?}: a whole number is needed, in a smaller unit if need be \
             (\"1500ms\", not \"1.5s\")"
        ));
    }
    Ok(match unit.trim() {
        "ns" => Duration::from_nanos(n),
        "us" | "µs" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(too_large)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(too_large)?),
        "" => {
            return Err(format!(
                "invalid duration {s:?}: no unit; expected {expected}"
            ))
        }
        u => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {u:?}; expected {expected}"
            ))
        }
    })
}

/// Serializes a `Duration` as described in the module docs (`#[serde(with = ...)]`).
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&format(*d))
    } else {
        (d.as_secs(), d.subsec_nanos()).serialize(s)
    }
}

/// Deserializes a `Duration` as described in the module docs (`#[serde(with = ...)]`).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    if d.is_human_readable() {
        d.deserialize_any(DurationVisitor)
    } else {
        let (secs, nanos) = <(u64, u32)>::deserialize(d)?;
        if nanos >= 1_000_000_000 {
            return Err(de::Error::custom("duration nanoseconds must be below 10^9"));
        }
        Ok(Duration::new(secs, nanos))
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration: a string such as \"10s\" or \"500ms\", or milliseconds")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_millis(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_millis)
            .map_err(|_| E::custom(format!("invalid duration {v}: negative")))
    }
}

/// `Option<Duration>` with the same format (`#[serde(with = ...)]`, together with
/// `#[serde(default)]`).
pub mod option {
    use super::*;

    struct Wrap(Duration);

    impl Serialize for Wrap {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::serialize(&self.0, s)
        }
    }

    impl<'de> Deserialize<'de> for Wrap {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Wrap, D::Error> {
            super::deserialize(d).map(Wrap)
        }
    }

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(Wrap).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_the_largest_exact_unit_and_parses_back() {
        for (d, s) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_micros(3), "3us"),
            (Duration::new(1, 1), "1000000001ns"),
        ] {
            assert_eq!(format(d), s);
            assert_eq!(parse(s), Ok(d), "{s}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in [
            "",
            "s",
            "10",
            "10 parsecs",
            "-1s",
            "1.5s",
            "99999999999999999999s",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains("invalid duration"), "{bad}: {e}");
        }
        assert!(parse("10").unwrap_err().contains("no unit"));
        assert!(parse("10x").unwrap_err().contains("unknown unit \"x\""));
        // a fraction is not a unit: "1.5s" said `unknown unit ".5s"`
        let e = parse("1.5s").unwrap_err();
        assert!(
            e.contains("whole number") && !e.contains("unknown unit"),
            "{e}"
        );
    }
}
