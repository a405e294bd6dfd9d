//! `-o text|json`: the shapes of the JSON documents, Stat in both formats, RFC 3339 times.
//!
//! The JSON shapes are the CLI's own (documented in docs/cli.md), not the library's types: a
//! script's contract with `zk` does not change when zk-core's structs do.

use crate::error::{out, Failure};
use clap::ValueEnum;
use serde::Serialize;
use zk_core::{Acl, Perms, Stat};

/// `-o/--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Lines for people (and `grep`)
    #[default]
    Text,
    /// One JSON document (for `watch`: one JSON object per line)
    Json,
}

/// Writes `v` as one line of JSON.
pub fn json(v: &impl Serialize) -> Result<(), Failure> {
    let mut s = serde_json::to_string(v)
        .map_err(|e| Failure::Failed(format!("cannot encode JSON: {e}")))?;
    s.push('\n');
    out(s.as_bytes())
}

/// A Stat, with zkCli's field names; times in ms since the epoch.
#[derive(Debug, Serialize)]
pub struct StatJson {
    #[serde(rename = "cZxid")]
    czxid: i64,
    ctime: i64,
    #[serde(rename = "mZxid")]
    mzxid: i64,
    mtime: i64,
    #[serde(rename = "pZxid")]
    pzxid: i64,
    cversion: i32,
    #[serde(rename = "dataVersion")]
    data_version: i32,
    #[serde(rename = "aclVersion")]
    acl_version: i32,
    #[serde(rename = "ephemeralOwner")]
    ephemeral_owner: i64,
    #[serde(rename = "dataLength")]
    data_length: i32,
    #[serde(rename = "numChildren")]
    num_children: i32,
}

impl From<&Stat> for StatJson {
    fn from(s: &Stat) -> Self {
        StatJson {
            czxid: s.czxid,
            ctime: s.ctime,
            mzxid: s.mzxid,
            mtime: s.mtime,
            pzxid: s.pzxid,
            cversion: s.cversion,
            data_version: s.version,
            acl_version: s.aversion,
            ephemeral_owner: s.ephemeral_owner,
            data_length: s.data_length,
            num_children: s.num_children,
        }
    }
}

/// The Stat fields, one `name: value` per line (the names zkCli uses); zxids and the owner in
/// hex, times as RFC 3339 (UTC, milliseconds).
pub fn format_stat(s: &Stat) -> String {
    format!(
        "cZxid: {:#x}\nctime: {}\nmZxid: {:#x}\nmtime: {}\npZxid: {:#x}\ncversion: {}\n\
         dataVersion: {}\naclVersion: {}\nephemeralOwner: {:#x}\ndataLength: {}\n\
         numChildren: {}\n",
        s.czxid,
        rfc3339_millis(s.ctime),
        s.mzxid,
        rfc3339_millis(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

/// Milliseconds since the Unix epoch as RFC 3339 in UTC, `2024-06-01T12:34:56.789Z`.
///
/// By hand (days to a civil date, Howard Hinnant's `civil_from_days`) rather than a date
/// crate: twenty lines against a dependency for one format.
pub fn rfc3339_millis(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    // civil_from_days: era of 400 years, day of era, year of era, day of year, month
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// Permissions as zkCli writes them: a subset of `cdrwa`, in that order.
pub fn perms_text(p: Perms) -> String {
    [
        (Perms::CREATE, 'c'),
        (Perms::DELETE, 'd'),
        (Perms::READ, 'r'),
        (Perms::WRITE, 'w'),
        (Perms::ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| p.contains(*bit))
    .map(|(_, c)| *c)
    .collect()
}

/// One ACL entry as zkCli writes it: `scheme:id:perms`.
pub fn acl_text(a: &Acl) -> String {
    format!("{}:{}:{}", a.id.scheme, a.id.id, perms_text(a.perms))
}

/// One ACL entry in JSON.
#[derive(Debug, Serialize)]
pub struct AclJson {
    scheme: String,
    id: String,
    /// `cdrwa` letters.
    perms: String,
}

impl From<&Acl> for AclJson {
    fn from(a: &Acl) -> Self {
        AclJson {
            scheme: a.id.scheme.clone(),
            id: a.id.id.clone(),
            perms: perms_text(a.perms),
        }
    }
}

/// Parses an ACL as zkCli accepts it: entries `scheme:id:perms` separated by commas, e.g.
/// `world:anyone:r,digest:alice:HASH:cdrwa,ip:10.0.0.0/8:r,auth::cdrwa`. The id is what lies
/// between the first and the last colon (a digest id has a colon of its own).
pub fn parse_acl(s: &str) -> Result<Vec<Acl>, String> {
    let mut acl = Vec::new();
    for entry in s.split(',') {
        let bad = |why: &str| {
            format!(
                "invalid ACL entry {entry:?}: {why} (expected scheme:id:perms, e.g. \
                 world:anyone:cdrwa, digest:user:HASH:cdrwa, ip:10.0.0.1:r, auth::cdrwa)"
            )
        };
        let (scheme, rest) = entry.split_once(':').ok_or_else(|| bad("no ':'"))?;
        let (id, perms) = rest.rsplit_once(':').ok_or_else(|| bad("no permissions"))?;
        if scheme.is_empty() {
            return Err(bad("empty scheme"));
        }
        if perms.is_empty() {
            return Err(bad("empty permissions"));
        }
        let mut p = Perms(0);
        for c in perms.chars() {
            p = p | match c {
                'c' => Perms::CREATE,
                'd' => Perms::DELETE,
                'r' => Perms::READ,
                'w' => Perms::WRITE,
                'a' => Perms::ADMIN,
                _ => return Err(bad(&format!("unknown permission {c:?} (one of cdrwa)"))),
            };
        }
        acl.push(Acl::new(p, scheme, id));
    }
    Ok(acl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_717_245_296_789),
            "2024-06-01T12:34:56.789Z"
        );
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339_millis(4_102_444_799_999),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn acl_text_round_trips() {
        let text = "world:anyone:r,digest:alice:X/+y=:cdrwa,ip:10.0.0.0/8:rw,auth::a";
        let acl = parse_acl(text).unwrap();
        assert_eq!(acl.len(), 4);
        assert_eq!(acl[1].id.id, "alice:X/+y=");
        assert_eq!(acl[3].id.scheme, "auth");
        assert_eq!(acl[3].id.id, "");
        let back: Vec<String> = acl.iter().map(acl_text).collect();
        assert_eq!(back.join(","), text);
        for bad in [
            "world",
            "world:anyone",
            "world:anyone:",
            ":x:r",
            "world:anyone:rx",
            "",
        ] {
            assert!(parse_acl(bad).is_err(), "{bad:?}");
        }
    }
}
