//! Connect strings and the host rotation.

use crate::error::{Error, Result};
use crate::proto::Chroot;
use rand::seq::SliceRandom;
use std::fmt;

/// One server address from a connect string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostAddr {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Written `tcp+tls://host:port`: reached over TLS.
    pub tls: bool,
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tls {
            f.write_str("tcp+tls://")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Default client port.
pub const DEFAULT_PORT: u16 = 2181;

/// Parses `host1:port1,host2:port2/optional/chroot` into its hosts and its chroot (`None`
/// without one, or for `/`), checked as [`ClientBuilder::connect`](crate::ClientBuilder::connect)
/// checks them. A host without a port gets 2181; IPv6 addresses go in brackets
/// (`[::1]:2181`); a host written `tcp+tls://host:port` is reached over TLS (`tcp://` is plain
/// TCP, the default, unless the client is built with `ClientBuilder::tls`, which puts every
/// host on TLS).
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad host or port or no host at all, [`Error::BadPath`] for
/// a bad chroot.
pub fn parse_connect_string(s: &str) -> Result<(Vec<HostAddr>, Option<String>)> {
    let (hosts, chroot) = parse(s)?;
    Ok((hosts, chroot.as_str().map(str::to_owned)))
}

/// [`parse_connect_string`] with the chroot as the client keeps it.
pub(crate) fn parse(s: &str) -> Result<(Vec<HostAddr>, Chroot)> {
    let s = s.trim();
    // the chroot starts at the first '/' that is not part of a scheme's "://"
    let mut from = 0;
    let chroot_at = loop {
        match s[from..].find('/') {
            None => break None,
            Some(j) => {
                let k = from + j;
                if s[..k].ends_with(':') && s[k..].starts_with("//") {
                    from = k + 2;
                } else {
                    break Some(k);
                }
            }
        }
    };
    let (hosts_part, chroot) = match chroot_at {
        Some(i) => (&s[..i], Chroot::new(&s[i..])?),
        None => (s, Chroot::none()),
    };
    let mut hosts = Vec::new();
    for item in hosts_part.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let bad = || Error::InvalidArgument(format!("bad host {item:?} in connect string {s:?}"));
        let (item, tls) = if let Some(rest) = item.strip_prefix("tcp+tls://") {
            (rest, true)
        } else if let Some(rest) = item.strip_prefix("tcp://") {
            (rest, false)
        } else if item.contains("://") {
            return Err(Error::InvalidArgument(format!(
                "unknown scheme in {item:?} (connect string {s:?}): use tcp:// or tcp+tls://"
            )));
        } else {
            (item, false)
        };
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let end = rest.find(']').ok_or_else(bad)?;
            let host = &rest[..end];
            let port = match &rest[end + 1..] {
                "" => DEFAULT_PORT,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?,
            };
            (host.to_owned(), port)
        } else {
            match item.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad())?),
                None => (item.to_owned(), DEFAULT_PORT),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        // unbracketed, a host with a ':' left is an IPv6 address split at its last ':' (the
        // Java client's reading): fine if what is left is an address ("fe80::1:2181"), not if
        // the split cut one apart ("::1" is not host ":" port 1)
        if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(Error::InvalidArgument(format!(
                "bad host {item:?} in connect string {s:?}: write an IPv6 address in brackets, \
                 [::1]:2181"
            )));
        }
        hosts.push(HostAddr { host, port, tls });
    }
    if hosts.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "connect string {s:?} names no host"
        )));
    }
    Ok((hosts, chroot))
}

/// Round-robin over a shuffled host list (the Java client's `StaticHostProvider`).
#[derive(Debug)]
pub(crate) struct HostRing {
    hosts: Vec<HostAddr>,
    next: usize,
    /// Attempts since the last successful connection.
    failed_in_row: usize,
}

impl HostRing {
    pub(crate) fn new(mut hosts: Vec<HostAddr>) -> Self {
        hosts.shuffle(&mut rand::thread_rng());
        HostRing {
            hosts,
            next: 0,
            failed_in_row: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.hosts.len()
    }

    /// The next host, and whether a whole cycle has failed since the last success (the caller
    /// then pauses before trying again).
    pub(crate) fn next_host(&mut self) -> (HostAddr, bool) {
        let h = self.hosts[self.next % self.hosts.len()].clone();
        self.next = (self.next + 1) % self.hosts.len();
        let cycle_done =
            self.failed_in_row > 0 && self.failed_in_row.is_multiple_of(self.hosts.len());
        self.failed_in_row += 1;
        (h, cycle_done)
    }

    /// The last host given out works: the connection is established for the session (the
    /// handshake and SASL done, the client CONNECTED), or the server's answer was final. A
    /// handshake answered alone is no success: a host that fails every connection after it
    /// must still end a cycle, so the pause applies.
    pub(crate) fn connected(&mut self) {
        self.failed_in_row = 0;
    }

    /// Moves `host` to be tried next.
    pub(crate) fn prefer(&mut self, host: &HostAddr) {
        if let Some(i) = self.hosts.iter().position(|h| h == host) {
            self.next = i;
        }
    }

    /// The hosts, in the order they are tried.
    pub(crate) fn hosts(&self) -> &[HostAddr] {
        &self.hosts
    }

    /// Replaces the host list (deduplicated, shuffled) with the Java client's rebalancing rule
    /// (`StaticHostProvider.updateServerList`). Returns whether a client connected to
    /// `current` should move: then the host to try next is already chosen.
    ///
    /// - The list grew: a client whose server stays moves to one of the added servers with
    ///   probability `1 - old_len / new_len` (so the added servers get their share of the
    ///   clients); one whose server is gone moves to an added server.
    /// - It shrank or kept its size: a client whose server stays does not move; one whose
    ///   server is gone moves, to a server of both lists with probability
    ///   `p_old = kept * (old_len - new_len) / (new_len * (old_len - kept))`, else to an added
    ///   server.
    pub(crate) fn update(&mut self, new: Vec<HostAddr>, current: Option<&HostAddr>) -> bool {
        let mut rng = rand::thread_rng();
        let coin = rand::Rng::gen::<f64>(&mut rng);
        let mut new = new;
        new.shuffle(&mut rng);
        self.update_with(new, current, coin)
    }

    /// [`update`](Self::update) with the list already shuffled and the random draw in
    /// `coin` (0..1), for tests.
    pub(crate) fn update_with(
        &mut self,
        new: Vec<HostAddr>,
        current: Option<&HostAddr>,
        coin: f64,
    ) -> bool {
        let mut hosts: Vec<HostAddr> = Vec::with_capacity(new.len());
        for h in new {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        let old_len = self.hosts.len();
        let new_len = hosts.len();
        let (kept, added): (Vec<&HostAddr>, Vec<&HostAddr>) =
            hosts.iter().partition(|h| self.hosts.contains(h));
        let stays = current.is_some_and(|c| hosts.contains(c));
        // where a moving client goes: a host of both lists (old) or an added one (new)
        let to_old = if current.is_none() {
            None
        } else if new_len > old_len {
            if stays && coin > 1.0 - old_len as f64 / new_len as f64 {
                None
            } else {
                Some(false)
            }
        } else if stays {
            None
        } else {
            let denominator = (new_len * old_len.saturating_sub(kept.len())) as f64;
            let p_old = if denominator == 0.0 {
                1.0
            } else {
                (kept.len() * (old_len - new_len)) as f64 / denominator
            };
            Some(coin < p_old)
        };
        let target = match to_old {
            None => None,
            Some(true) => kept.first().or(added.first()).map(|h| (*h).clone()),
            Some(false) => added.first().or(kept.first()).map(|h| (*h).clone()),
        };
        self.hosts = hosts;
        self.next = 0;
        self.failed_in_row = 0;
        match target {
            Some(t) => {
                self.prefer(&t);
                true
            }
            None => {
                // staying: the current host's successor is tried next after it
                if let Some(i) = current.and_then(|c| self.hosts.iter().position(|h| h == c)) {
                    self.next = (i + 1) % self.hosts.len();
                }
                false
            }
        }
    }

    pub(crate) fn others(&self, current: &HostAddr) -> Vec<HostAddr> {
        self.hosts
            .iter()
            .filter(|h| *h != current)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect_strings() {
        let (h, c) = parse("a:1,b:2/app/x").unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[1],
            HostAddr {
                host: "b".into(),
                port: 2,
                tls: false
            }
        );
        assert_eq!(c.as_str(), Some("/app/x"));
        let (h, c) = parse("[::1]:2182,localhost").unwrap();
        assert_eq!(h[0].host, "::1");
        assert_eq!(h[0].to_string(), "[::1]:2182");
        assert_eq!(h[1].port, 2181);
        assert_eq!(c, Chroot::none());
        assert!(parse("").is_err());
        assert!(parse("a:x").is_err());
        assert!(parse("a:1/bad/").is_err());
        assert!(parse("/app").is_err());
    }

    #[test]
    fn an_ipv6_address_without_brackets_is_refused_unless_it_splits_into_address_and_port() {
        // "::1" split at its last ':' was host ":" port 1, "fe80::1" host "fe80:" port 1: a
        // connect string that named no real host, found out only by the connect attempts
        for s in ["::1", "fe80::1", "a:1,::1", "tcp+tls://::1"] {
            let e = parse(s).expect_err(s).to_string();
            assert!(e.contains("in brackets"), "{s}: {e}");
        }
        // the Java client's reading (split at the last ':') where it names an address
        let (h, _) = parse("fe80::1:2181,::1:2182").unwrap();
        assert_eq!((h[0].host.as_str(), h[0].port), ("fe80::1", 2181));
        assert_eq!((h[1].host.as_str(), h[1].port), ("::1", 2182));
        assert_eq!(h[0].to_string(), "[fe80::1]:2181");
    }

    #[test]
    fn tls_hosts_and_schemes() {
        let (h, c) = parse("tcp+tls://a:2281,tcp://b:2181,c,tcp+tls://[::1]:1/app").unwrap();
        assert_eq!(
            h.iter()
                .map(|h| (h.host.as_str(), h.port, h.tls))
                .collect::<Vec<_>>(),
            [
                ("a", 2281, true),
                ("b", 2181, false),
                ("c", 2181, false),
                ("::1", 1, true)
            ]
        );
        assert_eq!(c.as_str(), Some("/app"));
        assert_eq!(h[0].to_string(), "tcp+tls://a:2281");
        assert_eq!(h[3].to_string(), "tcp+tls://[::1]:1");
        let (h, c) = parse("tcp+tls://a:1").unwrap();
        assert!(h[0].tls);
        assert_eq!(c, Chroot::none());
        assert!(parse("http://a:1").is_err());
    }

    fn hosts(s: &str) -> Vec<HostAddr> {
        parse(s).unwrap().0
    }

    #[test]
    fn update_rebalances_as_the_java_client_does() {
        let a = &hosts("a:1")[0];
        let c = &hosts("c:1")[0];
        // shrinking, current server gone: p_old = 2 * (3 - 2) / (2 * (3 - 2)) = 1
        let mut r = HostRing::new(hosts("a:1,b:1,c:1"));
        assert!(r.update_with(hosts("a:1,b:1"), Some(c), 0.99));
        let next = r.next_host().0;
        assert!(next.host == "a" || next.host == "b", "{next}");
        assert_eq!(r.hosts().len(), 2);
        // shrinking, current server stays: no move
        let mut r = HostRing::new(hosts("a:1,b:1,c:1"));
        assert!(!r.update_with(hosts("a:1,b:1"), Some(a), 0.0));
        // growing 1 -> 3, current stays: moves with probability 1 - 1/3 to an added server
        let mut r = HostRing::new(hosts("a:1"));
        assert!(r.update_with(hosts("a:1,b:1,c:1"), Some(a), 0.5));
        assert_ne!(r.next_host().0.host, "a");
        let mut r = HostRing::new(hosts("a:1"));
        assert!(!r.update_with(hosts("a:1,b:1,c:1"), Some(a), 0.9));
        // growing, current gone: always to an added server
        let mut r = HostRing::new(hosts("a:1,b:1"));
        assert!(r.update_with(hosts("b:1,c:1,d:1"), Some(a), 0.99));
        let next = r.next_host().0;
        assert!(next.host == "c" || next.host == "d", "{next}");
        // same size, current replaced: p_old = 1 * 0 / .. = 0, to the added one
        let mut r = HostRing::new(hosts("a:1,b:1"));
        assert!(r.update_with(hosts("b:1,c:1"), Some(a), 0.0));
        assert_eq!(r.next_host().0.host, "c");
        // not connected: nothing to move, the list is replaced (deduplicated)
        let mut r = HostRing::new(hosts("a:1"));
        assert!(!r.update_with(hosts("b:1,b:1"), None, 0.0));
        assert_eq!(r.hosts().len(), 1);
    }

    #[test]
    fn ring_cycles_and_reports_full_cycles() {
        let (h, _) = parse("a:1,b:2,c:3").unwrap();
        let mut r = HostRing::new(h);
        let mut seen = std::collections::HashSet::new();
        let mut cycles = 0;
        for _ in 0..6 {
            let (h, c) = r.next_host();
            seen.insert(h);
            cycles += c as usize;
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(cycles, 1); // the 4th attempt starts the second cycle
        r.connected();
        assert!(!r.next_host().1);
    }
}
