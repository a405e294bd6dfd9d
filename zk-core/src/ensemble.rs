//! Dynamic ensembles: the config node's text in typed form, and what a reconfig changes.

use crate::error::{Error, Result};
use crate::session::hosts::HostAddr;

/// A member's role in the ensemble config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerRole {
    /// A voting member (the default when the line names no role).
    Participant,
    /// A non-voting member that serves clients.
    Observer,
}

/// One `server.N=host:quorum_port:election_port[:role][;[client_host:]client_port]` line of
/// the ensemble config.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ServerEntry {
    /// The server id (`N`, the member's `myid`).
    pub id: u64,
    /// Host of the quorum and election ports.
    pub host: String,
    /// Port followers talk to the leader on.
    pub quorum_port: u16,
    /// Leader election port.
    pub election_port: u16,
    /// Participant or observer.
    pub role: ServerRole,
    /// Where clients connect (`None` if the line names no client port). A client host of
    /// `0.0.0.0` (or none) means "the member's host".
    pub client: Option<HostAddr>,
}

/// The ensemble's dynamic config as the `/zookeeper/config` node holds it: the text, and the
/// members and version parsed from it.
///
/// ```
/// let text = "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=100000000";
/// let cfg = zk_core::EnsembleConfig::parse(text.as_bytes()).unwrap();
/// assert_eq!(cfg.version(), 0x100000000);
/// assert_eq!(cfg.servers()[0].id, 1);
/// // the client address of each member, "0.0.0.0" replaced by the member's host
/// assert_eq!(cfg.client_hosts()[0].to_string(), "10.0.0.1:2181");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsembleConfig {
    text: String,
    servers: Vec<ServerEntry>,
    version: i64,
}

impl EnsembleConfig {
    /// Parses the config node's data. Lines other than `server.N=` and `version=` are kept in
    /// the text and otherwise ignored.
    ///
    /// # Errors
    /// [`Error::Protocol`] for a `server.N` or `version` line that does not parse.
    pub fn parse(data: &[u8]) -> Result<EnsembleConfig> {
        let text = String::from_utf8_lossy(data).into_owned();
        let mut servers = Vec::new();
        let mut version = -1;
        for line in text.lines() {
            let line = line.trim();
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let bad = || Error::Protocol(format!("bad ensemble config line {line:?}"));
            if key == "version" {
                version = i64::from_str_radix(value.trim(), 16).map_err(|_| bad())?;
            } else if let Some(id) = key.strip_prefix("server.") {
                let id: u64 = id.parse().map_err(|_| bad())?;
                servers.push(parse_server(id, value).ok_or_else(bad)?);
            }
        }
        Ok(EnsembleConfig {
            text,
            servers,
            version,
        })
    }

    /// The config node's text as the server returned it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The members, in the order the config lists them.
    pub fn servers(&self) -> &[ServerEntry] {
        &self.servers
    }

    /// The config version (the `version=` line, hexadecimal in the text; -1 if absent): what
    /// [`ReconfigOptions::from_config_version`] takes.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The client addresses of the members that name one, in config order: a host list to
    /// hand to [`Client::update_server_list`](crate::Client::update_server_list) (joined with `,`).
    pub fn client_hosts(&self) -> Vec<HostAddr> {
        self.servers
            .iter()
            .filter_map(|s| s.client.clone())
            .collect()
    }
}

/// `host:port` with the host in brackets if it is IPv6; `None` if malformed.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let port = rest[end + 1..].strip_prefix(':')?;
        Some((&rest[..end], port))
    } else {
        s.split_once(':')
    }
}

fn parse_server(id: u64, value: &str) -> Option<ServerEntry> {
    let (peer, client) = match value.split_once(';') {
        Some((p, c)) => (p.trim(), Some(c.trim())),
        None => (value.trim(), None),
    };
    let (host, rest) = split_host_port(peer)?;
    let mut parts = rest.split(':');
    let quorum_port = parts.next()?.parse().ok()?;
    let election_port = parts.next()?.parse().ok()?;
    let role = match parts.next() {
        None | Some("participant") => ServerRole::Participant,
        Some("observer") => ServerRole::Observer,
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    let client = match client {
        None | Some("") => None,
        Some(c) => {
            let (chost, port) = match c.rsplit_once(':') {
                Some(_) => split_host_port(c)?,
                None => ("", c),
            };
            // the wildcard in any spelling (`0.0.0.0`, `::`, `0:0:0:0:0:0:0:0`) is the member's
            // own host
            let wildcard = chost
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_unspecified());
            let chost = if chost.is_empty() || wildcard {
                host
            } else {
                chost
            };
            Some(HostAddr {
                host: chost.to_owned(),
                port: port.parse().ok()?,
                tls: false,
            })
        }
    };
    Some(ServerEntry {
        id,
        host: host.to_owned(),
        quorum_port,
        election_port,
        role,
        client,
    })
}

/// What a [`Client::reconfig`](crate::Client::reconfig) changes: incremental (servers
/// joining and leaving) or non-incremental (the whole new membership), optionally only if the
/// config is still at a given version.
///
/// ```
/// use zk_core::ReconfigOptions;
/// // remove server 3, add server 4
/// let opts = ReconfigOptions::incremental()
///     .leaving(3)
///     .joining("server.4=10.0.0.4:2888:3888:participant;2181")
///     .from_config_version(0x100000000);
/// // or name the whole membership
/// let opts = ReconfigOptions::new_members([
///     "server.1=10.0.0.1:2888:3888;2181",
///     "server.2=10.0.0.2:2888:3888;2181",
/// ]);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ReconfigOptions {
    joining: Vec<String>,
    leaving: Vec<u64>,
    new_members: Option<Vec<String>>,
    from_config_version: i64,
}

impl ReconfigOptions {
    /// An incremental change with nothing in it yet: add [`joining`](Self::joining) and
    /// [`leaving`](Self::leaving) servers.
    pub fn incremental() -> ReconfigOptions {
        ReconfigOptions {
            joining: Vec::new(),
            leaving: Vec::new(),
            new_members: None,
            from_config_version: -1,
        }
    }

    /// A non-incremental change: `members` (`server.N=...` specs) become the whole membership.
    pub fn new_members<S: Into<String>>(members: impl IntoIterator<Item = S>) -> ReconfigOptions {
        ReconfigOptions {
            new_members: Some(members.into_iter().map(Into::into).collect()),
            ..ReconfigOptions::incremental()
        }
    }

    /// Adds (or updates) a server: `server.N=host:quorum:election[:role][;[client_host:]port]`.
    /// Ignored by a non-incremental change.
    pub fn joining(mut self, spec: impl Into<String>) -> Self {
        self.joining.push(spec.into());
        self
    }

    /// Removes server `id`. Ignored by a non-incremental change.
    pub fn leaving(mut self, id: u64) -> Self {
        self.leaving.push(id);
        self
    }

    /// Applies the change only if the config is still at `version`
    /// ([`EnsembleConfig::version`]); otherwise the reconfig fails with
    /// [`Error::BadVersion`]. Default: any version.
    pub fn from_config_version(mut self, version: i64) -> Self {
        self.from_config_version = version;
        self
    }

    pub(crate) fn to_request(&self) -> Result<crate::proto::ReconfigRequest> {
        let join = |v: &[String]| (!v.is_empty()).then(|| v.join(","));
        let req = match &self.new_members {
            Some(m) if m.is_empty() => {
                return Err(Error::InvalidArgument(
                    "a non-incremental reconfig needs at least one member".into(),
                ))
            }
            Some(m) => crate::proto::ReconfigRequest {
                joining: None,
                leaving: None,
                new_members: join(m),
                cur_config_id: self.from_config_version,
            },
            None if self.joining.is_empty() && self.leaving.is_empty() => {
                return Err(Error::InvalidArgument(
                    "an incremental reconfig needs a joining or a leaving server".into(),
                ))
            }
            None => crate::proto::ReconfigRequest {
                joining: join(&self.joining),
                leaving: (!self.leaving.is_empty()).then(|| {
                    self.leaving
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                }),
                new_members: None,
                cur_config_id: self.from_config_version,
            },
        };
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ZooKeeper writes a member's client address with `getHostString()` in brackets when it
    /// holds a ':'; a client port bound to the wildcard on a JVM that prefers IPv6 is written
    /// `[0:0:0:0:0:0:0:0]:2181`. That is the member's own host, as `0.0.0.0` is: connecting
    /// to the unspecified address reaches the local machine instead.
    #[test]
    fn an_ipv6_wildcard_client_address_in_any_spelling_means_the_members_host() {
        for wildcard in ["[0:0:0:0:0:0:0:0]", "[::]", "[::0]", "0.0.0.0", "[0000::]"] {
            let text = format!("server.1=10.0.0.1:2888:3888:participant;{wildcard}:2181");
            let c = EnsembleConfig::parse(text.as_bytes()).unwrap();
            assert_eq!(
                c.client_hosts(),
                [HostAddr {
                    host: "10.0.0.1".into(),
                    port: 2181,
                    tls: false
                }],
                "{text}"
            );
        }
    }

    #[test]
    fn parses_a_3_8_config_node() {
        let text = "server.1=127.0.0.1:40001:40002:participant;127.0.0.1:40000\n\
                    server.2=[::1]:1:2:observer;2181\n\
                    server.3=h3:5:6\n\
                    version=10000000a";
        let c = EnsembleConfig::parse(text.as_bytes()).unwrap();
        assert_eq!(c.version(), 0x10000000a);
        assert_eq!(c.servers().len(), 3);
        let s1 = &c.servers()[0];
        assert_eq!(
            (s1.id, s1.host.as_str(), s1.quorum_port, s1.election_port),
            (1, "127.0.0.1", 40001, 40002)
        );
        assert_eq!(s1.role, ServerRole::Participant);
        assert_eq!(s1.client.as_ref().unwrap().to_string(), "127.0.0.1:40000");
        let s2 = &c.servers()[1];
        assert_eq!((s2.host.as_str(), s2.role), ("::1", ServerRole::Observer));
        assert_eq!(s2.client.as_ref().unwrap().to_string(), "[::1]:2181");
        assert_eq!(c.servers()[2].client, None);
        assert_eq!(c.client_hosts().len(), 2);
        assert!(EnsembleConfig::parse(b"server.x=a:1:2").is_err());
        assert!(EnsembleConfig::parse(b"server.1=a:1:2:boss").is_err());
        assert!(EnsembleConfig::parse(b"version=zz").is_err());
    }

    #[test]
    fn reconfig_options_become_requests() {
        let r = ReconfigOptions::incremental()
            .leaving(3)
            .leaving(4)
            .to_request()
            .unwrap();
        assert_eq!(
            (
                r.joining,
                r.leaving.as_deref(),
                r.new_members,
                r.cur_config_id
            ),
            (None, Some("3,4"), None, -1)
        );
        let r = ReconfigOptions::new_members(["server.1=a:1:2", "server.2=b:1:2"])
            .from_config_version(7)
            .to_request()
            .unwrap();
        assert_eq!(
            r.new_members.as_deref(),
            Some("server.1=a:1:2,server.2=b:1:2")
        );
        assert_eq!(r.cur_config_id, 7);
        assert!(ReconfigOptions::incremental().to_request().is_err());
        assert!(ReconfigOptions::new_members(Vec::<String>::new())
            .to_request()
            .is_err());
    }
}
