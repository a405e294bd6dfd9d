//! [`Config`]: a client's settings as plain data, for a service's own configuration file.

use crate::{Client, ClientBuilder, Result};
use std::fmt;
use std::time::Duration;

/// A client's settings as plain data: what a service puts in its configuration file.
///
/// [`Config::new`] gives the defaults for a connect string (those of [`Client::builder`]);
/// change the public fields, then [`connect`](Config::connect), or take a
/// [`builder`](Config::builder) to set what a file cannot hold (a custom connector, a default
/// ACL, a session to take over). `Debug` never shows a credential or a password.
///
/// # File format (feature `serde`)
///
/// Field names are the ones below; only `connect_string` is required, every other field
/// defaults as in [`Config::new`], and an unknown field is an error that names it (a typo is
/// caught, not ignored). Durations are strings with a unit, `"10s"`, `"500ms"`, `"2m"`
/// (units `ns`, `us`, `ms`, `s`, `m`, `h`; written back in the largest exact unit); a bare
/// integer is read as milliseconds. In TOML:
///
/// ```toml
/// connect_string = "zk1:2181,zk2:2181,zk3:2181/my-service"
/// session_timeout = "15s"
/// request_timeout = "5s"
/// auth = [{ scheme = "digest", credential = "svc:secret" }]
/// sasl_digest_md5 = { username = "svc", password = "secret" }
///
/// [tls]                       # feature `tls`; system CAs when ca_file is left out
/// ca_file = "/etc/zk/ca.pem"
/// client_cert = { cert_file = "/etc/zk/client.pem", key_file = "/etc/zk/client.key" }
/// ```
///
/// Serializing a `Config` writes its credentials in the clear (it is the file format); keep
/// such files as private as the secrets in them.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = zk_core::Config::new("127.0.0.1:2181/app");
/// config.session_timeout = std::time::Duration::from_secs(30);
/// config.auth.push(zk_core::AuthConfig::new("digest", "svc:secret"));
/// println!("{config:?}"); // credentials redacted
/// let client = config.connect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
#[non_exhaustive]
pub struct Config {
    /// `host1:port1,host2:port2/optional/chroot` ([`Client::builder`]).
    pub connect_string: String,
    /// [`ClientBuilder::session_timeout`] (default 10 s).
    #[cfg_attr(
        feature = "serde",
        serde(default = "defaults::session_timeout", with = "crate::serde_duration")
    )]
    pub session_timeout: Duration,
    /// [`ClientBuilder::connect_timeout`] (default: none, the session timeout).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            with = "crate::serde_duration::option",
            skip_serializing_if = "Option::is_none"
        )
    )]
    pub connect_timeout: Option<Duration>,
    /// [`ClientBuilder::read_only`] (default false).
    #[cfg_attr(feature = "serde", serde(default))]
    pub read_only: bool,
    /// [`ClientBuilder::reconnect_after_expiry`] (default true).
    #[cfg_attr(feature = "serde", serde(default = "defaults::reconnect_after_expiry"))]
    pub reconnect_after_expiry: bool,
    /// [`ClientBuilder::request_timeout`] (default: none).
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            with = "crate::serde_duration::option",
            skip_serializing_if = "Option::is_none"
        )
    )]
    pub request_timeout: Option<Duration>,
    /// [`ClientBuilder::close_timeout`] (default 2 s).
    #[cfg_attr(
        feature = "serde",
        serde(default = "defaults::close_timeout", with = "crate::serde_duration")
    )]
    pub close_timeout: Duration,
    /// [`ClientBuilder::max_data_len`] (default 1 MiB - 1).
    #[cfg_attr(feature = "serde", serde(default = "defaults::max_data_len"))]
    pub max_data_len: usize,
    /// [`ClientBuilder::max_request_len`] (default 1 MiB - 1).
    #[cfg_attr(feature = "serde", serde(default = "defaults::max_request_len"))]
    pub max_request_len: usize,
    /// [`ClientBuilder::max_frame_len`] (default 16 MiB).
    #[cfg_attr(feature = "serde", serde(default = "defaults::max_frame_len"))]
    pub max_frame_len: usize,
    /// Credentials sent on every connection ([`ClientBuilder::auth`]), in order.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub auth: Vec<AuthConfig>,
    /// SASL DIGEST-MD5 login ([`ClientBuilder::sasl_digest_md5`]).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub sasl_digest_md5: Option<SaslDigestMd5>,
    /// [`ClientBuilder::ensemble_tracker`] (default false): keep the host list in step with
    /// the ensemble's config node.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "std::ops::Not::not")
    )]
    pub ensemble_tracker: bool,
    /// [`ClientBuilder::ensemble_tracker_secure_ports`]: `(clientPort, secureClientPort)`
    /// pairs for a TLS client's tracker; in a file `[[2181, 2281]]`.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub ensemble_tracker_secure_ports: Vec<(u16, u16)>,
    /// [`ClientBuilder::server_version`] (default [`ServerVersion::V3_8`]): the oldest
    /// ZooKeeper version among the servers, where watch behaviour differs. In a file: `"3.8"`
    /// or `"3.9"`.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "ServerVersion::is_default")
    )]
    pub server_version: ServerVersion,
    /// TLS for every host ([`ClientBuilder::tls`], feature `tls`).
    #[cfg(feature = "tls")]
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub tls: Option<TlsFiles>,
}

/// The ZooKeeper version the client may count on, where behaviour differs
/// ([`ClientBuilder::server_version`]): declare the oldest version among the ensemble's
/// servers (during a rolling upgrade, the version being left).
///
/// What differs is how a server keeps a session's watches on one path:
/// - **3.8 and before** (3.6 to 3.8 have persistent watches; the default): one watch per session
///   and path in each of the server's data and child tables, whose kind the last request sets
///   (ZOOKEEPER-4466); `removeWatches` of one kind takes that table's entry whatever its kind
///   (ZOOKEEPER-4471); no [`WatcherType`](crate::WatcherType) for persistent watches. The
///   client keeps one-shot and persistent watches on a path from breaking each other (see
///   [`PersistentWatcher`](crate::PersistentWatcher)), refuses removals that would cripple a
///   persistent watch, and refuses [`WatcherType::Persistent`](crate::WatcherType::Persistent)
///   and [`WatcherType::PersistentRecursive`](crate::WatcherType::PersistentRecursive)
///   (`Error::InvalidArgument`, nothing sent).
/// - **3.9 and later**: a server keeps one-shot, persistent and recursive watches of a session
///   on one path side by side (ZOOKEEPER-4466), `removeWatches(Data)` / `(Children)` take the
///   one-shot watches only, and `Persistent` / `PersistentRecursive` remove one kind of
///   persistent watch alone (ZOOKEEPER-4472). The client sends every watch as asked, and a
///   dropped [`PersistentWatcher`](crate::PersistentWatcher) is released with
///   `removeWatches` of its own kind, leaving the path's other watches alone.
///
/// Declaring 3.9 to a 3.8 server is wrong: a one-shot read next to a persistent watch then
/// replaces that watch on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ServerVersion {
    /// ZooKeeper 3.5 to 3.8 (the default).
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "3.8"))]
    V3_8,
    /// ZooKeeper 3.9 or later.
    #[cfg_attr(feature = "serde", serde(rename = "3.9"))]
    V3_9,
}

impl ServerVersion {
    /// Whether servers keep one-shot and persistent watches of a session on one path side by
    /// side, and know [`WatcherType::Persistent`](crate::WatcherType::Persistent) /
    /// [`WatcherType::PersistentRecursive`](crate::WatcherType::PersistentRecursive)
    /// (ZOOKEEPER-4466, ZOOKEEPER-4472: 3.9+).
    pub fn separate_watch_modes(self) -> bool {
        self >= ServerVersion::V3_9
    }

    #[cfg(feature = "serde")]
    fn is_default(&self) -> bool {
        *self == ServerVersion::default()
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerVersion::V3_8 => "3.8",
            ServerVersion::V3_9 => "3.9",
        })
    }
}

/// One credential sent with `addAuth` on every connection, e.g. scheme `digest` with
/// credential `user:password`.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct AuthConfig {
    /// The auth scheme (`digest`, `ip`, ...).
    pub scheme: String,
    /// The credential, as the scheme reads it (`user:password` for `digest`).
    pub credential: String,
}

impl AuthConfig {
    /// A credential for `scheme`.
    pub fn new(scheme: impl Into<String>, credential: impl Into<String>) -> AuthConfig {
        AuthConfig {
            scheme: scheme.into(),
            credential: credential.into(),
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:<redacted>", self.scheme)
    }
}

/// A SASL DIGEST-MD5 login ([`ClientBuilder::sasl_digest_md5`]).
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct SaslDigestMd5 {
    /// A user of the servers' JAAS `Server` section.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl SaslDigestMd5 {
    /// A login as `username`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> SaslDigestMd5 {
        SaslDigestMd5 {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for SaslDigestMd5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslDigestMd5")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TLS settings as files (feature `tls`), read when the client connects
/// ([`TlsConfig`](crate::TlsConfig) builds from them).
#[cfg(feature = "tls")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
#[non_exhaustive]
pub struct TlsFiles {
    /// PEM file of the CAs that sign the servers' certificates; the system's CAs if `None`.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub ca_file: Option<std::path::PathBuf>,
    /// A client certificate, for servers that require one.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub client_cert: Option<ClientCertFiles>,
}

/// A client certificate chain and its private key, as PEM files (feature `tls`). The key file
/// is named, never read, by `Debug`.
#[cfg(feature = "tls")]
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct ClientCertFiles {
    /// PEM certificate chain.
    pub cert_file: std::path::PathBuf,
    /// PEM private key.
    pub key_file: std::path::PathBuf,
}

impl Config {
    /// The defaults of [`Client::builder`] for `connect_string` (not checked here:
    /// [`connect`](Config::connect) checks it, or parse a `Config` from the string).
    pub fn new(connect_string: impl Into<String>) -> Config {
        let b = Client::builder(connect_string);
        Config {
            connect_string: b.connect_string.clone(),
            session_timeout: b.session_timeout,
            connect_timeout: b.connect_timeout,
            read_only: b.can_be_read_only,
            reconnect_after_expiry: b.reconnect_after_expiry,
            request_timeout: b.request_timeout,
            close_timeout: b.close_timeout,
            max_data_len: b.max_data_len,
            max_request_len: b.max_request_len,
            max_frame_len: b.max_frame_len,
            auth: Vec::new(),
            sasl_digest_md5: None,
            ensemble_tracker: b.ensemble_tracker,
            ensemble_tracker_secure_ports: b.ensemble_tracker_secure_ports.clone(),
            server_version: b.server_version,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// A [`ClientBuilder`] with these settings, to add what a file cannot hold.
    pub fn builder(&self) -> ClientBuilder {
        let mut b = Client::builder(self.connect_string.clone())
            .session_timeout(self.session_timeout)
            .read_only(self.read_only)
            .reconnect_after_expiry(self.reconnect_after_expiry)
            .close_timeout(self.close_timeout)
            .max_data_len(self.max_data_len)
            .max_request_len(self.max_request_len)
            .max_frame_len(self.max_frame_len)
            .ensemble_tracker(self.ensemble_tracker)
            .ensemble_tracker_secure_ports(self.ensemble_tracker_secure_ports.iter().copied())
            .server_version(self.server_version);
        if let Some(t) = self.connect_timeout {
            b = b.connect_timeout(t);
        }
        if let Some(t) = self.request_timeout {
            b = b.request_timeout(t);
        }
        for a in &self.auth {
            b = b.auth(a.scheme.clone(), a.credential.clone());
        }
        if let Some(s) = &self.sasl_digest_md5 {
            b = b.sasl_digest_md5(s.username.clone(), s.password.clone());
        }
        #[cfg(feature = "tls")]
        if let Some(t) = &self.tls {
            let mut tls = crate::TlsConfig::new();
            if let Some(ca) = &t.ca_file {
                tls = tls.ca_file(ca);
            }
            if let Some(c) = &t.client_cert {
                tls = tls.client_cert_files(&c.cert_file, &c.key_file);
            }
            b = b.tls(tls);
        }
        b
    }

    /// Connects with these settings ([`ClientBuilder::connect`]).
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`]: a bad connect string or setting, no server answering
    /// within the connect timeout, refused credentials, unreadable TLS files.
    pub async fn connect(&self) -> Result<Client> {
        self.builder().connect().await
    }
}

impl std::str::FromStr for Config {
    type Err = crate::Error;

    /// The defaults for a connect string, checked at once (`Error::InvalidArgument` for a bad
    /// host, port or chroot).
    fn from_str(s: &str) -> Result<Config> {
        crate::session::hosts::parse(s)?;
        Ok(Config::new(s))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Config");
        d.field("connect_string", &self.connect_string)
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_only", &self.read_only)
            .field("reconnect_after_expiry", &self.reconnect_after_expiry)
            .field("request_timeout", &self.request_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("max_data_len", &self.max_data_len)
            .field("max_request_len", &self.max_request_len)
            .field("max_frame_len", &self.max_frame_len)
            // AuthConfig and SaslDigestMd5 redact themselves
            .field("auth", &self.auth)
            .field("sasl_digest_md5", &self.sasl_digest_md5)
            .field("ensemble_tracker", &self.ensemble_tracker)
            .field(
                "ensemble_tracker_secure_ports",
                &self.ensemble_tracker_secure_ports,
            )
            .field("server_version", &self.server_version);
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls);
        d.finish()
    }
}

/// Defaults of the fields a file may leave out: those of [`Config::new`].
#[cfg(feature = "serde")]
mod defaults {
    use super::Config;
    use std::time::Duration;

    fn base() -> Config {
        Config::new("")
    }
    pub(super) fn session_timeout() -> Duration {
        base().session_timeout
    }
    pub(super) fn reconnect_after_expiry() -> bool {
        base().reconnect_after_expiry
    }
    pub(super) fn close_timeout() -> Duration {
        base().close_timeout
    }
    pub(super) fn max_data_len() -> usize {
        base().max_data_len
    }
    pub(super) fn max_request_len() -> usize {
        base().max_request_len
    }
    pub(super) fn max_frame_len() -> usize {
        base().max_frame_len
    }
}
