//! The cloneable [`Client`] handle and its builder.

use crate::codec::DEFAULT_MAX_FRAME_LEN;
use crate::create::CreateOptions;
use crate::ensemble::{EnsembleConfig, ReconfigOptions};
use crate::error::{ChrootExt, DecodeExt, Error, Result};
use crate::multi::{check_count, read_results, write_results, Op, OpResult, ReadOp, ReadResult};
use crate::proto::{
    validate_path, Acl, AddWatchMode, Chroot, ClientInfo, Create2Response, CreateMode,
    CreateRequest, CreateTtlRequest, GetAclResponse, GetChildren2Response, GetDataResponse,
    IntRecord, MultiRequest, MultiResponse, OpCode, PathModeRequest, PathRecord,
    PathVersionRequest, Record, SetAclRequest, SetDataRequest, Stat, StatResponse, StringsResponse,
    WatcherType, WhoAmIResponse, CONFIG_NODE, MAX_TTL_MS,
};
use crate::session::hosts::parse as parse_connect_string;
use crate::session::transport::{Connector, TcpConnector};
use crate::session::{
    reply, request_frame, Body, Command, Config, PendingRequest, Reply, Session, SharedState,
};
use crate::state::{State, StateStream, Status};
use crate::watch::{OneshotWatcher, PersistentWatcher, WatchKind, WatchRequest};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// A [`PathWatchRequest`](crate::proto::PathWatchRequest) written straight from the caller's
/// path, the chroot prefixed as it is written: no server-path `String` per read.
struct PathWatchBody<'a> {
    chroot: &'a Chroot,
    path: &'a str,
    watch: bool,
}

impl Body for PathWatchBody<'_> {
    fn write_body(&self, w: &mut crate::proto::Writer<'_>) {
        let (root, rest) = self.chroot.server_parts(self.path);
        w.string2(root, rest).bool(self.watch);
    }
}

/// Default largest node data accepted for writes (1 MiB - 1). The whole encoded request must
/// also fit [`DEFAULT_MAX_REQUEST_LEN`], which is the limit a server enforces.
pub const DEFAULT_MAX_DATA_LEN: usize = 0xfffff;

/// Default largest encoded request (length prefix excluded): 1 MiB - 1, what a stock server
/// accepts (its `jute.maxbuffer` bounds the *whole frame*: path, data, ACL and headers). A
/// larger frame makes the server drop the connection.
pub const DEFAULT_MAX_REQUEST_LEN: usize = 0xfffff;

/// Configures and connects a [`Client`].
///
/// ```no_run
/// # async fn f() -> zk_core::Result<()> {
/// use std::time::Duration;
/// let client = zk_core::Client::builder("10.0.0.1:2181,10.0.0.2:2181/app")
///     .session_timeout(Duration::from_secs(10))
///     .auth("digest", "user:secret")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
///
/// A builder is the client's configuration: it is `Clone` (connect several clients with the
/// same settings), its `Debug` output never shows a credential or session password, and it
/// parses from a connect string (`"zk1:2181,zk2:2181/app".parse::<ClientBuilder>()`, which
/// checks the hosts and the chroot at once).
#[must_use]
#[derive(Clone)]
pub struct ClientBuilder {
    pub(crate) connect_string: String,
    pub(crate) session_timeout: Duration,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) can_be_read_only: bool,
    pub(crate) reconnect_after_expiry: bool,
    auth: Vec<(String, Vec<u8>)>,
    pub(crate) max_data_len: usize,
    pub(crate) max_request_len: usize,
    pub(crate) max_frame_len: usize,
    pub(crate) request_timeout: Option<Duration>,
    default_acl: Vec<Acl>,
    connector: Arc<dyn Connector>,
    /// Set with [`ClientBuilder::connector`]: used as it is, TLS hosts included.
    custom_connector: bool,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
    reconnect_jitter: Duration,
    pub(crate) close_timeout: Duration,
    sasl: Option<crate::session::sasl::SaslConfig>,
    resume: Option<(i64, Vec<u8>)>,
    pub(crate) ensemble_tracker: bool,
    pub(crate) ensemble_tracker_secure_ports: Vec<(u16, u16)>,
    pub(crate) server_version: crate::ServerVersion,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth: Vec<String> = self
            .auth
            .iter()
            .map(|(scheme, _)| format!("{scheme}:<redacted>"))
            .collect();
        let mut d = f.debug_struct("ClientBuilder");
        d.field("connect_string", &self.connect_string)
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("can_be_read_only", &self.can_be_read_only)
            .field("reconnect_after_expiry", &self.reconnect_after_expiry)
            .field("auth", &auth)
            .field("max_data_len", &self.max_data_len)
            .field("max_request_len", &self.max_request_len)
            .field("max_frame_len", &self.max_frame_len)
            .field("request_timeout", &self.request_timeout)
            .field("default_acl", &self.default_acl)
            .field("custom_connector", &self.custom_connector);
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls);
        d.field("reconnect_jitter", &self.reconnect_jitter)
            .field("close_timeout", &self.close_timeout)
            .field("sasl", &self.sasl)
            .field("ensemble_tracker", &self.ensemble_tracker)
            .field(
                "ensemble_tracker_secure_ports",
                &self.ensemble_tracker_secure_ports,
            )
            .field("server_version", &self.server_version)
            .field(
                "resume",
                &self
                    .resume
                    .as_ref()
                    .map(|(id, _)| format!("{id:#x} (password redacted)")),
            )
            .finish()
    }
}

impl std::str::FromStr for ClientBuilder {
    type Err = Error;

    /// A builder with the default settings for a connect string, checked at once
    /// (`Error::InvalidArgument` for a bad host, port or chroot).
    fn from_str(s: &str) -> Result<ClientBuilder> {
        crate::session::hosts::parse(s)?;
        Ok(Client::builder(s))
    }
}

impl ClientBuilder {
    /// Session timeout to ask for (the server clamps it to its min/max; default 10 s). Positive,
    /// at most `i32::MAX` milliseconds.
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = t;
        self
    }

    /// How long [`connect`](Self::connect) waits for the first session (default: the session
    /// timeout).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = Some(t);
        self
    }

    /// Accept read-only servers (an ensemble member that lost quorum and runs with
    /// `readonlymode.enabled`). While connected read-only the client keeps looking for a
    /// read-write server. Default false.
    pub fn read_only(mut self, allowed: bool) -> Self {
        self.can_be_read_only = allowed;
        self
    }

    /// After the session is LOST (expired), start a new session (the default, as kazoo does).
    /// With `false`, LOST is terminal: every later request fails with
    /// [`Error::SessionExpired`] at once.
    ///
    /// A session LOST because no server answered for a whole session timeout may still be alive
    /// on the servers (a restarted server restarts session timers). With `false` the client
    /// still closes it: it keeps reaching for a server in the background, and the first that
    /// answers gets a re-attach with the old id and password and `closeSession`. That goes on
    /// until it is done (or a server says the session is gone), or until [`Client::close`] (or
    /// dropping the last handle) runs out of the close timeout; `close()` then reports
    /// [`Error::Timeout`] rather than `Ok(())`.
    pub fn reconnect_after_expiry(mut self, yes: bool) -> Self {
        self.reconnect_after_expiry = yes;
        self
    }

    /// Authentication sent on every connection (e.g. `("digest", "user:password")`).
    pub fn auth(mut self, scheme: impl Into<String>, credential: impl Into<Vec<u8>>) -> Self {
        self.auth.push((scheme.into(), credential.into()));
        self
    }

    /// Largest node data accepted for writes; larger writes fail with
    /// [`Error::DataTooLarge`] before anything is sent (default 1 MiB - 1). The whole request
    /// must also fit [`max_request_len`](Self::max_request_len).
    pub fn max_data_len(mut self, n: usize) -> Self {
        self.max_data_len = n;
        self
    }

    /// Largest encoded request (length prefix excluded); a larger one fails with
    /// [`Error::RequestTooLarge`] before anything is sent, and nothing else on the connection
    /// notices. Default 1 MiB - 1 ([`DEFAULT_MAX_REQUEST_LEN`]): what a stock server accepts.
    /// Raise it only together with the servers' `jute.maxbuffer` system property; a frame
    /// above a server's limit makes it drop the connection.
    pub fn max_request_len(mut self, n: usize) -> Self {
        self.max_request_len = n;
        self
    }

    /// Largest reply accepted from a server (default 16 MiB). A larger reply is read past
    /// without buffering it and only its request fails ([`Error::ReplyTooLarge`]). It must be
    /// at least [`max_request_len`](Self::max_request_len) + 1 KiB: a notification or a create
    /// reply echoes a path as long as a request may carry, and those must always fit.
    pub fn max_frame_len(mut self, n: usize) -> Self {
        self.max_frame_len = n;
        self
    }

    /// Deadline applied to every request that has none of its own, from the moment it is
    /// issued (time spent waiting for a reconnect included): it then fails with
    /// [`Error::Timeout`].
    ///
    /// Without it (the default) a request is still bounded: one written to a connection is
    /// answered, or fails with [`Error::ConnectionLoss`] once the connection is declared dead
    /// (two thirds of the session timeout without a byte from the server); one waiting for a
    /// connection fails with `Timeout { sent: false }` after twice the session timeout (or with
    /// [`Error::SessionExpired`] when the session is lost first).
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = Some(t);
        self
    }

    /// Authenticate with SASL DIGEST-MD5 as `username` (a user of the servers' JAAS `Server`
    /// section, `DigestLoginModule`), as the Java client does: right after every handshake,
    /// before anything else is sent. The session's identity is then `sasl:<username>`
    /// ([`Client::who_am_i`]), which `sasl` ACLs name. Wrong credentials end the client with
    /// [`Error::AuthFailed`] (from [`connect`](Self::connect), or later as LOST).
    pub fn sasl_digest_md5(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.sasl = Some(crate::session::sasl::SaslConfig::DigestMd5 {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// Authenticate with SASL GSSAPI (Kerberos) as the Java client does: right after every
    /// handshake, before anything else is sent, with a ticket for `zookeeper/<host as written
    /// in the connect string>` (connecting to `127.0.0.1` asks for `zookeeper/127.0.0.1`; see
    /// [`SaslGssapi::service_host`](crate::SaslGssapi::service_host)). The session's identity
    /// is then `sasl:<principal>` (`alice@EXAMPLE.COM`). Credentials: the default credential
    /// cache, `KRB5_CLIENT_KTNAME`, or [`SaslGssapi::keytab`](crate::SaslGssapi::keytab); see
    /// the [`gssapi`](crate::gssapi) module. When the client cannot authenticate (no
    /// credentials, the KDC unreachable, the service principal unknown) [`connect`](Self::connect)
    /// fails with [`Error::SaslFailed`] naming the cause; a refusal by the server is
    /// [`Error::AuthFailed`]. Feature `gssapi`.
    #[cfg(feature = "gssapi")]
    pub fn sasl_gssapi(mut self, login: crate::SaslGssapi) -> Self {
        self.sasl = Some(crate::session::sasl::SaslConfig::Gssapi {
            login,
            creds: Default::default(),
        });
        self
    }

    /// Take over an existing session (say, one a restarted process persisted with
    /// [`Client::session_credentials`] or handed over with [`Client::detach`]) instead of
    /// starting one: the first handshake re-attaches with this id and password, so the
    /// session's ephemeral nodes stay. [`connect`](Self::connect) fails with
    /// [`Error::SessionExpired`] if the session is gone (no new session is made silently).
    /// Watches are not carried over: they belonged to the other client.
    pub fn session(mut self, session_id: i64, password: impl Into<Vec<u8>>) -> Self {
        self.resume = Some((session_id, password.into()));
        self
    }

    /// How long [`Client::close`] (or dropping the last handle) may take to reach a server and
    /// have the session closed (default 2 s).
    pub fn close_timeout(mut self, t: Duration) -> Self {
        self.close_timeout = t;
        self
    }

    /// ACL for nodes created without an explicit one (default: open to everyone, as kazoo).
    pub fn default_acl(mut self, acl: Vec<Acl>) -> Self {
        self.default_acl = acl;
        self
    }

    /// How the client opens connections (default: plain TCP, TLS for `tcp+tls://` hosts). A
    /// connector set here is used for every host as it is; it sees [`HostAddr::tls`](crate::HostAddr::tls).
    pub fn connector(mut self, c: impl Connector) -> Self {
        self.connector = Arc::new(c);
        self.custom_connector = true;
        self
    }

    /// Reach every host over TLS with these settings (feature `tls`): every host, those written
    /// `tcp://host:port` included (there is no mixing plain and TLS hosts with this setting; a
    /// plain host then fails its handshake, it is never reached in the clear). Without it, hosts
    /// written `tcp+tls://host:port` in the connect string use TLS with
    /// [`TlsConfig::new`](crate::TlsConfig::new) (the system's CAs) and the others plain TCP. A failed handshake (unknown CA, expired certificate, name mismatch,
    /// a client certificate the server requires) is reported by [`connect`](Self::connect)
    /// as [`Error::ConnectFailed`] naming TLS and the cause.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::tls::TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Keep the host list in step with the ensemble's config (default off; Curator's
    /// `EnsembleTracker`): the client reads `/zookeeper/config` with a watch after it connects
    /// and after every change of it, and hands the members' client addresses to
    /// [`Client::update_server_list`] (so a member removed by a reconfig is left, with the
    /// same session, and members added are used and get their share of clients). A client
    /// given one host of an ensemble so learns the others. Needs ZooKeeper 3.5+ servers whose
    /// config names client ports (the dynamic form `server.N=...;[host:]port`); a config
    /// listing none leaves the host list alone, and a server with no config node (before 3.5)
    /// or one whose config does not parse stops the tracker (logged), not the client.
    ///
    /// With TLS ([`tls`](Self::tls) or `tcp+tls://` hosts) it needs
    /// [`ensemble_tracker_secure_ports`](Self::ensemble_tracker_secure_ports): the config
    /// names each member's plain client port only (a 3.8 config line has no place for
    /// `secureClientPort`), and a tracker left to it would move the client to plaintext ports.
    /// [`connect`](Self::connect) refuses a TLS client's tracker without them
    /// ([`Error::InvalidArgument`], nothing started).
    pub fn ensemble_tracker(mut self, enabled: bool) -> Self {
        self.ensemble_tracker = enabled;
        self
    }

    /// The members' TLS ports for the [ensemble tracker](Self::ensemble_tracker) of a TLS
    /// client, by plain client port: `(clientPort, secureClientPort)` pairs. The tracker then
    /// reaches each member the config names at `tcp+tls://host:<its secure port>`, with this
    /// client's TLS settings (server names verified against the host as the config names it,
    /// except that a member the client was given by a name that resolves to the config's
    /// address keeps that name; see [`TlsConfig::server_name`](crate::TlsConfig::server_name)
    /// for a common name); a
    /// member whose client port has no pair is left out (logged). An ensemble whose members
    /// all use `clientPort=2181` and `secureClientPort=2281` needs one pair, `(2181, 2281)`.
    /// Ignored by a client without TLS.
    pub fn ensemble_tracker_secure_ports(
        mut self,
        ports: impl IntoIterator<Item = (u16, u16)>,
    ) -> Self {
        self.ensemble_tracker_secure_ports = ports.into_iter().collect();
        self
    }

    /// The ZooKeeper version the client may count on (default [`ServerVersion::V3_8`]: 3.5 to
    /// 3.8): declare the oldest version among the servers. With
    /// [`ServerVersion::V3_9`] the client sends one-shot and persistent watches on one path as
    /// they are (a 3.9 server keeps them side by side), allows
    /// [`WatcherType::Persistent`] and [`WatcherType::PersistentRecursive`] in
    /// [`Client::remove_watches`] and [`Client::check_watches`], and releases a dropped
    /// [`PersistentWatcher`] with a removal of its own kind. See [`ServerVersion`].
    ///
    /// [`ServerVersion`]: crate::ServerVersion
    /// [`ServerVersion::V3_8`]: crate::ServerVersion::V3_8
    /// [`ServerVersion::V3_9`]: crate::ServerVersion::V3_9
    pub fn server_version(mut self, version: crate::ServerVersion) -> Self {
        self.server_version = version;
        self
    }

    /// Upper bound of the random pause before each reconnect (default 100 ms), which spreads
    /// the reconnects of many clients after a server failure.
    pub fn reconnect_jitter(mut self, t: Duration) -> Self {
        self.reconnect_jitter = t;
        self
    }

    /// Connects, waiting for the first session.
    ///
    /// # Errors
    /// A bad connect string; [`Error::InvalidArgument`] for a setting out of range (nothing is
    /// started): a zero timeout, a session timeout over `i32::MAX` ms, any timeout or the
    /// jitter over 365 days, `max_frame_len` outside 1024..=`i32::MAX`, `max_data_len` over
    /// `i32::MAX`, an empty default ACL or auth scheme; [`Error::ConnectFailed`] if no server
    /// answered within the connect timeout; [`Error::AuthFailed`]; [`Error::SaslFailed`] (SASL
    /// could not be done on the client's side, say no Kerberos credentials).
    pub async fn connect(self) -> Result<Client> {
        let (hosts, chroot) = parse_connect_string(&self.connect_string)?;
        self.validate()?;
        // with TLS for every host, say so in the list too: the tracker's hosts are TLS hosts,
        // and one host written two ways would look like two (and move the client)
        #[cfg(feature = "tls")]
        let hosts: Vec<crate::HostAddr> = if self.tls.is_some() && !self.custom_connector {
            hosts
                .into_iter()
                .map(|h| crate::HostAddr { tls: true, ..h })
                .collect()
        } else {
            hosts
        };
        #[cfg(feature = "tls")]
        let tls_client = self.tls.is_some() || hosts.iter().any(|h| h.tls);
        #[cfg(not(feature = "tls"))]
        let tls_client = hosts.iter().any(|h| h.tls);
        // the TLS ports the tracker maps the config's plain ports to (None: plain TCP)
        let tracker_tls_ports = (self.ensemble_tracker && tls_client)
            .then(|| self.ensemble_tracker_secure_ports.clone());
        if tracker_tls_ports.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::InvalidArgument(
                "the ensemble tracker of a TLS client needs \
                 ClientBuilder::ensemble_tracker_secure_ports: ZooKeeper's config node names \
                 each member's plain client port only (not its secureClientPort), and the \
                 tracker would move the client to plaintext ports"
                    .into(),
            ));
        }
        let connector = self.pick_connector(&hosts)?;
        let cfg = Arc::new(Config {
            hosts,
            chroot: chroot.clone(),
            session_timeout: self.session_timeout,
            can_be_read_only: self.can_be_read_only,
            reconnect_after_expiry: self.reconnect_after_expiry,
            max_frame_len: self.max_frame_len,
            max_request_len: self.max_request_len,
            connector,
            reconnect_jitter: self.reconnect_jitter,
            cycle_pause: Duration::from_secs(1),
            close_timeout: self.close_timeout,
            sasl: self.sasl.clone(),
            resume: self.resume.clone(),
            server_version: self.server_version,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (status_tx, status_rx) = watch::channel(Status::initial(self.session_timeout));
        let shared = Arc::new(SharedState {
            subscribers: Mutex::new(Vec::new()),
            terminal: Mutex::new(None),
            last_connect_error: Mutex::new(None),
            auth_error: Mutex::new(None),
            close_result: Mutex::new(None),
            watchers: Default::default(),
            hosts: Mutex::new(cfg.hosts.clone()),
        });
        let mut session = Session::new(cfg, rx, status_tx, shared.clone());
        let mut auth_waiters = Vec::new();
        for (scheme, auth) in self.auth {
            let (atx, arx) = reply::channel();
            session_auth(&mut session, scheme, auth, atx);
            auth_waiters.push(arx);
        }
        tokio::spawn(session.run());
        let client = Client {
            inner: Arc::new(Inner {
                tx,
                status: status_rx,
                shared,
                chroot,
                max_data_len: self.max_data_len,
                max_request_len: self.max_request_len,
                default_acl: self.default_acl,
                request_timeout: self.request_timeout,
                queue_timeout: self.session_timeout.saturating_mul(2),
                server_version: self.server_version,
            }),
            deadline: None,
            fail_fast: false,
        };
        let wait = self.connect_timeout.unwrap_or(self.session_timeout);
        let give_up_at = tokio::time::Instant::now() + wait;
        let resuming = self.resume.is_some();
        let mut st = client.inner.status.clone();
        let ok = tokio::time::timeout(
            wait,
            st.wait_for(|s| {
                s.state == State::Connected
                    || s.keeper_state == crate::proto::KeeperState::AuthFailed
                    || (resuming && s.keeper_state == crate::proto::KeeperState::Expired)
            }),
        )
        .await
        .map(|r| r.map(|s| (s.state, s.keeper_state)));
        match ok {
            Ok(Ok((State::Connected, _))) => {}
            // the session to take over is gone: no silent new session instead
            Ok(Ok((_, crate::proto::KeeperState::Expired))) => return Err(Error::SessionExpired),
            Ok(Ok(_)) => {
                let why = client.inner.shared.auth_error.lock().unwrap().take();
                return Err(why.unwrap_or(Error::AuthFailed));
            }
            Ok(Err(_)) => {
                let why = client.inner.shared.auth_error.lock().unwrap().take();
                return Err(why.unwrap_or_else(|| client.terminal_error()));
            }
            Err(_) => {
                let last = client
                    .inner
                    .shared
                    .last_connect_error
                    .lock()
                    .unwrap()
                    .take();
                let message = format!(
                    "no server of {:?} established a session within {} ms{}",
                    self.connect_string,
                    wait.as_millis(),
                    match &last {
                        Some(Error::ConnectFailed { message, .. }) => {
                            format!(" (last attempt: {message})")
                        }
                        Some(e) => format!(" (last attempt: {e})"),
                        None => String::new(),
                    }
                );
                let source = last.map(|e| match e {
                    Error::ConnectFailed {
                        source: Some(inner),
                        ..
                    } => inner,
                    e => Box::new(e),
                });
                return Err(Error::ConnectFailed { message, source });
            }
        }
        // the answers to the builder's credentials, on whichever connection gets them (a
        // connection that breaks first hands the wait on to the next one's replay), within the
        // same connect timeout
        for w in auth_waiters {
            match tokio::time::timeout_at(give_up_at, w).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(_)) => return Err(client.terminal_error()),
                Err(_) => {
                    return Err(Error::ConnectFailed {
                        message: format!(
                            "no server of {:?} answered the credentials within {} ms",
                            self.connect_string,
                            wait.as_millis()
                        ),
                        source: None,
                    })
                }
            }
        }
        if self.ensemble_tracker {
            tokio::spawn(track_ensemble(
                Arc::downgrade(&client.inner),
                tracker_tls_ports,
            ));
        }
        Ok(client)
    }
}

/// The ensemble tracker ([`ClientBuilder::ensemble_tracker`]): reads the config with a watch,
/// hands its client addresses to `update_server_list`, and waits for the next change. It holds
/// the client only weakly, so it ends with the client. A TLS client's tracker maps the plain
/// client ports to `tls_ports` ([`ClientBuilder::ensemble_tracker_secure_ports`]).
async fn track_ensemble(inner: std::sync::Weak<Inner>, tls_ports: Option<Vec<(u16, u16)>>) {
    loop {
        let Some(inner) = inner.upgrade() else { return };
        let client = Client {
            inner,
            deadline: None,
            fail_fast: false,
        };
        if client.is_closed() {
            return;
        }
        let watch = match client.get_config_watch().await {
            Ok((cfg, _, watch)) => {
                let mut hosts = cfg.client_hosts();
                if let Some(ports) = &tls_ports {
                    hosts = tls_hosts(hosts, ports);
                }
                let hosts = keep_known_names(hosts, &client.server_list()).await;
                if !hosts.is_empty() {
                    client.apply_server_list(hosts).await;
                }
                Some(watch)
            }
            // a server without a config node (before 3.5), or a config that does not parse:
            // the same read fails the same way, so the tracker stops
            Err(e) if e.transience() == crate::Transience::Permanent => {
                tracing::warn!(error = %e, "ensemble tracker: cannot read the config; stopping");
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "ensemble tracker: reading the config failed");
                None
            }
        };
        match watch {
            Some(w) => {
                drop(client);
                // fires on a change; fails when the session ends (then read again, on the new
                // session, or stop with the client)
                let _ = w.await;
            }
            None => {
                // wait for a connection before reading again
                let mut st = client.inner.status.clone();
                drop(client);
                if st.wait_for(|s| s.state == State::Connected).await.is_err() {
                    return;
                }
                // not at once: a connection that breaks right away would make this a busy loop
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The config names the members as the servers were configured (often by address), the client
/// may know them by name, and TLS server-name checks and Kerberos service principals go by the
/// name: a config host that is an address of a host already in the list (same port, same
/// transport) keeps the listed name. Without it the client left a working connection (its host
/// no longer listed) for one whose certificate or service principal does not match.
async fn keep_known_names(
    hosts: Vec<crate::HostAddr>,
    known: &[crate::HostAddr],
) -> Vec<crate::HostAddr> {
    use std::net::IpAddr;
    let mut out = Vec::with_capacity(hosts.len());
    for h in hosts {
        let ip = match h.host.parse::<IpAddr>() {
            Ok(ip) if !known.contains(&h) => ip,
            _ => {
                out.push(h);
                continue;
            }
        };
        let mut named = None;
        let candidates = known
            .iter()
            .filter(|k| k.port == h.port && k.tls == h.tls && k.host.parse::<IpAddr>().is_err());
        for k in candidates {
            let lookup = tokio::net::lookup_host((k.host.as_str(), k.port));
            if let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(5), lookup).await {
                if addrs.into_iter().any(|a| a.ip() == ip) {
                    named = Some(k.clone());
                    break;
                }
            }
        }
        out.push(named.unwrap_or(h));
    }
    out
}

/// The config's client addresses as TLS hosts: each port mapped by `ports` (plain, secure);
/// a member without a pair is left out.
fn tls_hosts(hosts: Vec<crate::HostAddr>, ports: &[(u16, u16)]) -> Vec<crate::HostAddr> {
    hosts
        .into_iter()
        .filter_map(|h| match ports.iter().find(|(plain, _)| *plain == h.port) {
            Some(&(_, secure)) => Some(crate::HostAddr {
                port: secure,
                tls: true,
                ..h
            }),
            None => {
                tracing::warn!(
                    member = %h,
                    "ensemble tracker: no TLS port given for this member's client port \
                     (ClientBuilder::ensemble_tracker_secure_ports); left out"
                );
                None
            }
        })
        .collect()
}

/// The longest timeout or pause a builder accepts: far from any `Instant` overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 86400);
/// The smallest `max_frame_len` accepted: room for any handshake or reply header.
const MIN_FRAME_LEN: usize = 1024;

impl ClientBuilder {
    /// Checks every setting before anything starts.
    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(what));
        let timeout = |name: &str, t: Duration| {
            if t.is_zero() || t > MAX_TIMEOUT {
                bad(format!(
                    "{name} must be positive and at most {} days, not {t:?}",
                    MAX_TIMEOUT.as_secs() / 86400
                ))
            } else {
                Ok(())
            }
        };
        // sent as an int of milliseconds
        let max_session = Duration::from_millis(i32::MAX as u64);
        if self.session_timeout < Duration::from_millis(1) || self.session_timeout > max_session {
            return bad(format!(
                "session timeout must be at least 1 ms and at most {max_session:?} (an int of \
                 milliseconds on the wire), not {:?}",
                self.session_timeout
            ));
        }
        if let Some(t) = self.connect_timeout {
            timeout("connect timeout", t)?;
        }
        if let Some(t) = self.request_timeout {
            timeout("request timeout", t)?;
        }
        timeout("close timeout", self.close_timeout)?;
        if self.reconnect_jitter > MAX_TIMEOUT {
            return bad(format!(
                "reconnect jitter must be at most {} days, not {:?}",
                MAX_TIMEOUT.as_secs() / 86400,
                self.reconnect_jitter
            ));
        }
        // lengths are ints on the wire
        let max_len = i32::MAX as usize;
        if self.max_frame_len < MIN_FRAME_LEN || self.max_frame_len > max_len {
            return bad(format!(
                "max_frame_len must be between {MIN_FRAME_LEN} and {max_len}, not {}",
                self.max_frame_len
            ));
        }
        if self.max_frame_len < self.max_request_len.saturating_add(MIN_FRAME_LEN) {
            return bad(format!(
                "max_frame_len ({}) must be at least max_request_len ({}) + {MIN_FRAME_LEN}: a \
                 notification or reply echoes a path as long as a request may carry",
                self.max_frame_len, self.max_request_len
            ));
        }
        if self.max_request_len < MIN_FRAME_LEN || self.max_request_len > max_len {
            return bad(format!(
                "max_request_len must be between {MIN_FRAME_LEN} and {max_len}, not {}",
                self.max_request_len
            ));
        }
        if self.max_data_len > max_len {
            return bad(format!(
                "max_data_len must be at most {max_len}, not {}",
                self.max_data_len
            ));
        }
        if self.default_acl.is_empty() {
            return bad("the default ACL must not be empty".into());
        }
        if let Some((scheme, _)) = self.auth.iter().find(|(s, _)| s.is_empty()) {
            return bad(format!("auth scheme {scheme:?} must not be empty"));
        }
        Ok(())
    }

    /// The connector for these hosts: the user's, or plain TCP with TLS where asked for.
    fn pick_connector(&self, hosts: &[crate::HostAddr]) -> Result<Arc<dyn Connector>> {
        if self.custom_connector {
            return Ok(self.connector.clone());
        }
        let any_tls = hosts.iter().any(|h| h.tls);
        #[cfg(feature = "tls")]
        {
            if let Some(cfg) = &self.tls {
                // fail early on unreadable files or a bad bundle
                cfg.build()
                    .map_err(|e| Error::InvalidArgument(e.to_string()))?;
                return Ok(Arc::new(crate::tls::TlsConnector::new(cfg.clone())));
            }
            if any_tls {
                return Ok(Arc::new(crate::tls::TlsConnector::for_tls_hosts(
                    crate::tls::TlsConfig::new(),
                )));
            }
        }
        if any_tls {
            return Err(Error::InvalidArgument(
                "tcp+tls:// hosts need zk-core's `tls` feature".into(),
            ));
        }
        Ok(self.connector.clone())
    }
}

fn session_auth(
    session: &mut Session,
    scheme: String,
    auth: Vec<u8>,
    reply: reply::Sender<Result<()>>,
) {
    session.queue_auth(scheme, auth, reply);
}

struct Inner {
    tx: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<Status>,
    shared: Arc<SharedState>,
    chroot: Chroot,
    max_data_len: usize,
    max_request_len: usize,
    default_acl: Vec<Acl>,
    request_timeout: Option<Duration>,
    /// How long a request without a deadline may wait for a connection.
    queue_timeout: Duration,
    server_version: crate::ServerVersion,
}

#[derive(Clone, Copy, Debug)]
enum Deadline {
    In(Duration),
    At(Instant),
}

/// A handle to one ZooKeeper session. Cheap to clone; all clones share the session. The
/// session is closed (`closeSession`, so its ephemeral nodes vanish at once) by
/// [`close`](Client::close) or when the last clone is dropped.
///
/// Operations take paths relative to the chroot of the connect string, check them (and data
/// sizes) before sending, and may be issued concurrently from many tasks: they are pipelined on
/// one connection and answered in the order they were sent.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    deadline: Option<Deadline>,
    fail_fast: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.status.borrow();
        f.debug_struct("Client")
            .field("session_id", &format_args!("{:#x}", s.session_id))
            .field("state", &s.state)
            .field("chroot", &self.inner.chroot.as_str())
            .finish()
    }
}

impl Client {
    /// Connects with default settings. See [`Client::builder`] for more.
    ///
    /// ```no_run
    /// # async fn f() -> zk_core::Result<()> {
    /// let client = zk_core::Client::connect("127.0.0.1:2181").await?;
    /// let (data, stat) = client.get_data("/zookeeper/config").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// See [`ClientBuilder::connect`].
    pub async fn connect(connect_string: &str) -> Result<Client> {
        Client::builder(connect_string).connect().await
    }

    /// A builder for `connect_string` (`host1:port1,host2:port2/optional/chroot`).
    pub fn builder(connect_string: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            connect_string: connect_string.into(),
            session_timeout: Duration::from_secs(10),
            connect_timeout: None,
            can_be_read_only: false,
            reconnect_after_expiry: true,
            auth: Vec::new(),
            max_data_len: DEFAULT_MAX_DATA_LEN,
            max_request_len: DEFAULT_MAX_REQUEST_LEN,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            request_timeout: None,
            default_acl: Acl::open_unsafe(),
            connector: Arc::new(TcpConnector),
            custom_connector: false,
            #[cfg(feature = "tls")]
            tls: None,
            reconnect_jitter: Duration::from_millis(100),
            close_timeout: Duration::from_secs(2),
            sasl: None,
            resume: None,
            ensemble_tracker: false,
            ensemble_tracker_secure_ports: Vec::new(),
            server_version: crate::ServerVersion::V3_8,
        }
    }

    /// A handle to the same session whose requests each fail with [`Error::Timeout`] if not
    /// answered within `t` of being issued (including time spent waiting for a reconnect).
    pub fn with_timeout(&self, t: Duration) -> Client {
        Client {
            deadline: Some(Deadline::In(t)),
            ..self.clone()
        }
    }

    /// A handle to the same session whose requests fail with [`Error::Timeout`] at `deadline`.
    pub fn with_deadline(&self, deadline: Instant) -> Client {
        Client {
            deadline: Some(Deadline::At(deadline)),
            ..self.clone()
        }
    }

    /// A handle to the same session whose requests never wait for a reconnection: issued while
    /// the client is disconnected, they fail at once with [`Error::NotConnected`] (not sent,
    /// not applied). A success therefore always comes from a connection that was up when the
    /// request was issued, before any SUSPENDED was reported for it: what fenced writes under a
    /// lock need.
    pub fn fail_if_disconnected(&self) -> Client {
        Client {
            fail_fast: true,
            ..self.clone()
        }
    }

    // ----------------------------------------------------------------- state

    /// The current coarse state.
    pub fn state(&self) -> State {
        self.inner.status.borrow().state
    }

    /// The current detailed status.
    pub fn status(&self) -> Status {
        self.inner.status.borrow().clone()
    }

    /// Whether the client has stopped for good: its session task ended, after `close()`, or
    /// after a session that will not be replaced (LOST with `reconnect_after_expiry(false)`,
    /// AUTHFAILED) was cleaned up. Requests then fail at once (`Closed` or the terminal error).
    /// A client that is only disconnected, or waiting for a new session, is not closed.
    pub fn is_closed(&self) -> bool {
        self.inner.tx.is_closed() || self.inner.shared.terminal.lock().unwrap().is_some()
    }

    /// The current session id (0 if none).
    pub fn session_id(&self) -> i64 {
        self.inner.status.borrow().session_id
    }

    /// A `watch` channel of the latest status (intermediate states may be skipped; use
    /// [`state_stream`](Self::state_stream) to see every transition).
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.inner.status.clone()
    }

    /// Every state transition after the current [`status`](Self::status), none skipped.
    pub fn state_stream(&self) -> StateStream {
        let queue = Arc::new(crate::state::SubscriberQueue::default());
        let mut subs = self.inner.shared.subscribers.lock().unwrap();
        // a client that ended has no more transitions to give
        if self.inner.shared.terminal.lock().unwrap().is_some() {
            queue.close();
        } else {
            subs.push(queue.clone());
        }
        StateStream { queue }
    }

    /// Waits until the state is `state`, or fails with [`Error::Timeout`] after `timeout`,
    /// or with the terminal error if the client stops.
    pub async fn wait_for_state(&self, state: State, timeout: Option<Duration>) -> Result<()> {
        let mut rx = self.inner.status.clone();
        let fut = rx.wait_for(|s| s.state == state);
        let res = match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| Error::Timeout { sent: false })?,
            None => fut.await,
        };
        res.map(|_| ()).map_err(|_| self.terminal_error())
    }

    /// The session id and password, e.g. to hand to a test kit that expires sessions.
    pub fn session_credentials(&self) -> (i64, Vec<u8>) {
        let s = self.inner.status.borrow();
        (s.session_id, s.password.clone())
    }

    /// How many watchers (one-shot and persistent) the session keeps right now. A test and
    /// debugging hook, not a stable API.
    #[doc(hidden)]
    pub fn registered_watchers(&self) -> usize {
        self.inner
            .shared
            .watchers
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The largest node data this client sends ([`ClientBuilder::max_data_len`]): a create,
    /// `set_data` or `multi` with more is refused with [`Error::DataTooLarge`] before anything
    /// is sent. Recipes that keep data to write later check it against this when it is given.
    pub fn max_data_len(&self) -> usize {
        self.inner.max_data_len
    }

    /// The chroot of the connect string, if any.
    pub fn chroot(&self) -> Option<&str> {
        self.inner.chroot.as_str()
    }

    /// The hosts the client connects to, in the order it tries them: the connect string's,
    /// or the last list given to [`update_server_list`](Self::update_server_list) (or learned
    /// by the [ensemble tracker](ClientBuilder::ensemble_tracker)).
    pub fn server_list(&self) -> Vec<crate::HostAddr> {
        self.inner.shared.hosts.lock().unwrap().clone()
    }

    /// Replaces the hosts the client connects to (`host1:port1,host2:port2`, the connect
    /// string's form without a chroot), with the Java client's rebalancing rule, so that
    /// clients spread over a changed ensemble without all of them moving:
    ///
    /// - the client's server is not in the new list: it moves (same session) to one that is;
    /// - the list grew: it moves to one of the added servers with probability
    ///   `1 - old_len / new_len`, else stays;
    /// - the list shrank or kept its size and its server is in it: it stays.
    ///
    /// A move ends the connection (SUSPENDED, then CONNECTED on the new server, the session
    /// and its watches kept). Returns once the session task applied the list. Host names are
    /// resolved again on every connection attempt, so a name whose address changed is
    /// reached at the new address.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad list or one with a chroot; the terminal error if
    /// the client has stopped.
    pub async fn update_server_list(&self, hosts: &str) -> Result<()> {
        let (list, chroot) = parse_connect_string(hosts)?;
        if chroot.as_str().is_some() {
            return Err(Error::InvalidArgument(format!(
                "{hosts:?}: a server list has no chroot (the client keeps its own)"
            )));
        }
        if self.apply_server_list(list).await {
            Ok(())
        } else {
            Err(self.terminal_error())
        }
    }

    /// Hands a host list to the session task; false if it has stopped.
    async fn apply_server_list(&self, hosts: Vec<crate::HostAddr>) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .tx
            .send(Command::UpdateHosts { hosts, reply: tx })
            .is_err()
        {
            return false;
        }
        rx.await.is_ok()
    }

    // ----------------------------------------------------------------- plumbing

    /// What the close of an ended client came to (`Ok` if it ended otherwise: expiry, auth).
    fn ended_close_result(&self) -> Result<()> {
        self.inner
            .shared
            .close_result
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Ok(()))
    }

    fn terminal_error(&self) -> Error {
        self.inner
            .shared
            .terminal
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Error::Closed)
    }

    fn server_path(&self, path: &str, sequential: bool) -> Result<String> {
        validate_path(path, sequential)?;
        Ok(if sequential {
            self.inner.chroot.to_server_sequential(path)
        } else {
            self.inner.chroot.to_server(path)
        })
    }

    /// The body of `exists`, `getData`, `getChildren(2)` for `path` (checked).
    fn path_watch<'a>(&'a self, path: &'a str, watch: bool) -> Result<PathWatchBody<'a>> {
        validate_path(path, false)?;
        Ok(PathWatchBody {
            chroot: &self.inner.chroot,
            path,
            watch,
        })
    }

    fn check_data(&self, data: &[u8]) -> Result<()> {
        if data.len() > self.inner.max_data_len {
            return Err(Error::DataTooLarge {
                len: data.len(),
                max: self.inner.max_data_len,
            });
        }
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        match self.deadline {
            Some(Deadline::At(t)) => Some(t),
            // a deadline too far to represent is no deadline
            Some(Deadline::In(d)) => Instant::now().checked_add(d),
            None => self
                .inner
                .request_timeout
                .and_then(|d| Instant::now().checked_add(d)),
        }
    }

    /// Sends a request and waits for its reply (whatever its error code).
    async fn request(
        &self,
        op: OpCode,
        body: &impl Body,
        watch: Option<WatchRequest>,
    ) -> Result<Reply> {
        let frame = request_frame(op, body);
        let len = frame.len() - 4;
        if len > self.inner.max_request_len {
            return Err(Error::RequestTooLarge {
                len,
                max: self.inner.max_request_len,
            });
        }
        // a watch is re-registered after reconnects in a SetWatches packet, which must fit too
        if let Some(w) = &watch {
            let needed = crate::watch::SET_WATCHES_FRAME_OVERHEAD + 4 + w.path.len();
            if needed > self.inner.max_request_len {
                return Err(Error::RequestTooLarge {
                    len: needed,
                    max: self.inner.max_request_len,
                });
            }
        }
        let deadline = self.deadline();
        // without a deadline of its own, the session task bounds its wait for a connection
        let queue_timeout = match deadline {
            Some(_) => None,
            None => Some(self.inner.queue_timeout),
        };
        // dropping this future (and `rx` with it) before the session task claimed the request
        // means it is never sent
        let (tx, mut rx) = reply::channel();
        let pending = PendingRequest {
            frame,
            op,
            watch: watch.map(Box::new),
            reply: tx,
            fail_fast: self.fail_fast,
            queue_timeout,
            queue_expiry: None,
        };
        if self.inner.tx.send(Command::Request(pending)).is_err() {
            return Err(self.terminal_error());
        }
        let res = match deadline {
            None => rx.await,
            Some(d) => match tokio::time::timeout_at(d, &mut rx).await {
                Ok(r) => r,
                Err(_) => {
                    // one atomic decision: either it was never sent and never will be, or it
                    // was sent and may have been applied
                    let sent = !rx.abandon();
                    return Err(Error::Timeout { sent });
                }
            },
        };
        match res {
            Ok(r) => r,
            Err(_) => Err(self.terminal_error()),
        }
    }

    /// Sends a request; a non-zero error code becomes `Err`.
    async fn call(
        &self,
        op: OpCode,
        body: &impl Body,
        watch: Option<WatchRequest>,
    ) -> Result<Bytes> {
        let r = self.request(op, body, watch).await?;
        if r.header.err != 0 {
            return Err(Error::from_code(r.header.err));
        }
        Ok(r.body)
    }

    // ----------------------------------------------------------------- writes

    /// Creates a node with the default ACL; returns its actual path (with the sequence suffix
    /// for sequential modes). Containers and TTL nodes use their own opcodes; TTL nodes need
    /// `extendedTypesEnabled=true` on the server. A sequential path ending in `/` names the
    /// node by its digits alone; `"/"` itself makes `/0000000001` under the chroot (never a
    /// sibling of it). For another ACL, or the new node's Stat, see
    /// [`create_with`](Self::create_with).
    ///
    /// # Errors
    /// [`Error::NodeExists`], [`Error::NoNode`] (parent missing),
    /// [`Error::NoChildrenForEphemerals`], [`Error::NoAuth`], [`Error::BadPath`],
    /// [`Error::DataTooLarge`], [`Error::Unimplemented`] (TTL disabled), ...
    pub async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        self.create_node(path, data, mode, &self.inner.default_acl)
            .await
            .map(|(p, _)| p)
    }

    /// Creates a node as `options` say (its mode, and an ACL other than the client's default);
    /// returns its actual path and its Stat. Otherwise as [`create`](Self::create).
    ///
    /// ```no_run
    /// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
    /// use zk_core::{Acl, CreateMode, CreateOptions};
    /// // the Stat of the new node
    /// let (path, stat) = client
    ///     .create_with("/jobs/job-", b"", &CreateMode::PersistentSequential.into())
    ///     .await?;
    /// // an ACL of its own
    /// let opts = CreateOptions::new(CreateMode::Persistent).with_acl(Acl::creator_all());
    /// client.create_with("/private", b"secret", &opts).await?;
    /// # let _ = (path, stat); Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`create`](Self::create); [`Error::InvalidArgument`] for an ACL refused before
    /// sending (see [`CreateOptions::with_acl`]).
    pub async fn create_with(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
    ) -> Result<(String, Stat)> {
        let acl = options.acl().unwrap_or(&self.inner.default_acl);
        self.create_node(path, data, options.mode(), acl).await
    }

    async fn create_node(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
        acl: &[Acl],
    ) -> Result<(String, Stat)> {
        let spath = self.server_path(path, mode.is_sequential())?;
        self.check_data(data)?;
        if acl.is_empty() {
            return Err(Error::InvalidArgument("the ACL must not be empty".into()));
        }
        if let Some(e) = check_acl(acl) {
            return Err(e);
        }
        let body = match ttl_ms(mode)? {
            Some(ttl) => {
                let req = CreateTtlRequest {
                    path: spath,
                    data: data.to_vec(),
                    acl: acl.to_vec(),
                    flags: mode.flags(),
                    ttl,
                };
                self.call(OpCode::CreateTtl, &req, None).await?
            }
            None => {
                let req = CreateRequest {
                    path: spath,
                    data: data.to_vec(),
                    acl: acl.to_vec(),
                    flags: mode.flags(),
                };
                self.call(mode.opcode(), &req, None).await?
            }
        };
        let r = Create2Response::from_bytes(&body).or_protocol()?;
        Ok((self.inner.chroot.to_client_checked(&r.path)?, r.stat))
    }

    /// Creates `path` and any missing parents as empty persistent nodes; existing nodes are
    /// fine (kazoo's `ensure_path`).
    pub async fn ensure_path(&self, path: &str) -> Result<()> {
        validate_path(path, false)?;
        if path == "/" {
            return Ok(());
        }
        // fast path: it exists
        if self.exists(path).await?.is_some() {
            return Ok(());
        }
        let mut cur = String::new();
        for comp in path[1..].split('/') {
            cur.push('/');
            cur.push_str(comp);
            match self.create(&cur, b"", CreateMode::Persistent).await {
                Ok(_) | Err(Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes a node if its version matches (`None`: any version).
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::BadVersion`], [`Error::NotEmpty`], [`Error::NoAuth`], ...
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        let req = PathVersionRequest {
            path: self.server_path(path, false)?,
            version: version.unwrap_or(-1),
        };
        self.call(OpCode::Delete, &req, None).await.map(|_| ())
    }

    /// Deletes a node and everything below it (children first). Nodes that vanish meanwhile
    /// are fine.
    pub async fn delete_recursive(&self, path: &str) -> Result<()> {
        validate_path(path, false)?;
        let mut stack = vec![(path.to_owned(), false)];
        while let Some((p, expanded)) = stack.pop() {
            if !expanded {
                match self.get_children(&p).await {
                    Ok(children) if !children.is_empty() => {
                        stack.push((p.clone(), true));
                        for c in children {
                            let cp = if p == "/" {
                                format!("/{c}")
                            } else {
                                format!("{p}/{c}")
                            };
                            stack.push((cp, false));
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(Error::NoNode) => continue,
                    Err(e) => return Err(e),
                }
            }
            if p == "/" {
                continue;
            }
            match self.delete(&p, None).await {
                Ok(()) | Err(Error::NoNode) => {}
                Err(Error::NotEmpty) => stack.push((p, false)),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sets a node's data if its version matches (`None`: any); returns the new Stat.
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::BadVersion`], [`Error::NoAuth`], [`Error::DataTooLarge`], ...
    pub async fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        self.check_data(data)?;
        let req = SetDataRequest {
            path: self.server_path(path, false)?,
            data: data.to_vec(),
            version: version.unwrap_or(-1),
        };
        let body = self.call(OpCode::SetData, &req, None).await?;
        Ok(StatResponse::from_bytes(&body).or_protocol()?.stat)
    }

    /// Sets a node's ACL if its ACL version matches (`None`: any); returns the new Stat.
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: Option<i32>) -> Result<Stat> {
        if acl.is_empty() {
            return Err(Error::InvalidArgument("the ACL must not be empty".into()));
        }
        if let Some(e) = check_acl(acl) {
            return Err(e);
        }
        let req = SetAclRequest {
            path: self.server_path(path, false)?,
            acl: acl.to_vec(),
            version: version.unwrap_or(-1),
        };
        let body = self.call(OpCode::SetAcl, &req, None).await?;
        Ok(StatResponse::from_bytes(&body).or_protocol()?.stat)
    }

    /// Applies `ops` atomically. On failure nothing was applied and the error says which op
    /// failed: [`Error::TransactionFailed`] `{ index, error }`.
    ///
    /// ```no_run
    /// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
    /// use zk_core::{CreateMode, Op};
    /// // write only while our lock node still exists (fencing)
    /// client.multi(vec![
    ///     Op::check("/locks/job/_c_lock-0000000003", None),
    ///     Op::set_data("/job/state", b"done".to_vec(), None),
    /// ]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        let mut req = MultiRequest::default();
        for op in &ops {
            let seq = matches!(op, Op::Create { options, .. } if options.mode().is_sequential());
            validate_path(op.path(), seq)?;
            match op {
                Op::Create { data, options, .. } => {
                    self.check_data(data)?;
                    if options.acl().is_some_and(|a| a.is_empty()) {
                        return Err(Error::InvalidArgument("the ACL must not be empty".into()));
                    }
                    if let Some(e) = options.acl().and_then(check_acl) {
                        return Err(e);
                    }
                    ttl_ms(options.mode())?;
                }
                Op::SetData { data, .. } => self.check_data(data)?,
                _ => {}
            }
            req.ops
                .push(op.to_wire(&self.inner.chroot, &self.inner.default_acl));
        }
        if req.ops.is_empty() {
            return Ok(Vec::new());
        }
        let body = self.call(OpCode::Multi, &req, None).await?;
        let resp = MultiResponse::from_bytes(&body).or_protocol()?;
        check_count(&resp.results, ops.len())?;
        write_results(resp.results, &self.inner.chroot)
    }

    // ----------------------------------------------------------------- reads

    /// The node's Stat, or `None` if it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.exists_inner(path, None).await
    }

    /// Like [`exists`](Self::exists), leaving a one-shot watch: fires on creation if the node
    /// is missing, on data change or deletion if it exists.
    pub async fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, OneshotWatcher)> {
        let spath = self.server_path(path, false)?;
        let (w, rx) = WatchRequest::oneshot(WatchKind::Exists, spath);
        let stat = self.exists_inner(path, Some(w)).await?;
        Ok((stat, rx))
    }

    async fn exists_inner(&self, path: &str, watch: Option<WatchRequest>) -> Result<Option<Stat>> {
        let req = self.path_watch(path, watch.is_some())?;
        match self.call(OpCode::Exists, &req, watch).await {
            Ok(body) => Ok(Some(StatResponse::from_bytes(&body).or_protocol()?.stat)),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's data and Stat.
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::NoAuth`], ...
    pub async fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        self.get_data_inner(path, None).await
    }

    /// Like [`get_data`](Self::get_data), leaving a one-shot watch that fires on data change or
    /// deletion. No watch is left if the node does not exist.
    pub async fn get_data_watch(&self, path: &str) -> Result<(Vec<u8>, Stat, OneshotWatcher)> {
        let (w, rx) = WatchRequest::oneshot(WatchKind::Data, self.server_path(path, false)?);
        let (d, s) = self.get_data_inner(path, Some(w)).await?;
        Ok((d, s, rx))
    }

    async fn get_data_inner(
        &self,
        path: &str,
        watch: Option<WatchRequest>,
    ) -> Result<(Vec<u8>, Stat)> {
        let req = self.path_watch(path, watch.is_some())?;
        let body = self.call(OpCode::GetData, &req, watch).await?;
        let r = GetDataResponse::from_bytes(&body).or_protocol()?;
        Ok((r.data, r.stat))
    }

    /// The ensemble's dynamic config (ZooKeeper 3.5+): the data of `/zookeeper/config`, read
    /// as the Java client's `getConfig` does (a `getData` on that node, never under the
    /// chroot), and parsed; with the node's Stat. The config lists the members only on a
    /// server started with a dynamic config (`reconfigEnabled`, or server lines in the dynamic
    /// form); a standalone server's node is empty.
    ///
    /// # Errors
    /// [`Error::NoNode`] on a server older than 3.5; [`Error::Protocol`] if the text does not
    /// parse; connection errors as for any read.
    pub async fn get_config(&self) -> Result<(EnsembleConfig, Stat)> {
        self.get_config_inner(None).await
    }

    /// Like [`get_config`](Self::get_config), leaving a one-shot watch on the config node that
    /// fires (with path `/zookeeper/config`, chroot or not) when a reconfig changes it.
    pub async fn get_config_watch(&self) -> Result<(EnsembleConfig, Stat, OneshotWatcher)> {
        let (w, rx) = WatchRequest::oneshot(WatchKind::Data, CONFIG_NODE.to_owned());
        let (c, s) = self.get_config_inner(Some(w)).await?;
        Ok((c, s, rx))
    }

    async fn get_config_inner(
        &self,
        watch: Option<WatchRequest>,
    ) -> Result<(EnsembleConfig, Stat)> {
        let req = PathWatchBody {
            chroot: &Chroot::none(),
            path: CONFIG_NODE,
            watch: watch.is_some(),
        };
        let body = self.call(OpCode::GetData, &req, watch).await?;
        let r = GetDataResponse::from_bytes(&body).or_protocol()?;
        Ok((EnsembleConfig::parse(&r.data)?, r.stat))
    }

    /// Changes the ensemble's membership (opcode 16, ZooKeeper 3.5+): incremental (servers
    /// joining and leaving) or non-incremental (the whole new membership), as `options` say.
    /// Returns the new config and the config node's Stat. The servers must run with
    /// `reconfigEnabled=true`, and the session must be a superuser
    /// (`addAuth("digest", "super:...")` with the servers' `superDigest`) unless they skip
    /// ACLs.
    ///
    /// ```no_run
    /// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
    /// use zk_core::ReconfigOptions;
    /// let (config, _) = client.get_config().await?;
    /// let (config, _) = client
    ///     .reconfig(&ReconfigOptions::incremental().leaving(3).from_config_version(config.version()))
    ///     .await?;
    /// assert!(config.servers().iter().all(|s| s.id != 3));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::ReconfigDisabled`] (servers without `reconfigEnabled`), [`Error::NoAuth`]
    /// (not a superuser), [`Error::BadVersion`] (the config moved past
    /// [`from_config_version`](ReconfigOptions::from_config_version)),
    /// [`Error::NewConfigNoQuorum`] (the new config's quorum is not connected to the leader),
    /// [`Error::ReconfigInProgress`], [`Error::BadArguments`] (a malformed or impossible
    /// change), [`Error::InvalidArgument`] (an empty change, before sending); connection
    /// errors, after which the change may or may not have been applied.
    pub async fn reconfig(&self, options: &ReconfigOptions) -> Result<(EnsembleConfig, Stat)> {
        let req = options.to_request()?;
        let body = self.call(OpCode::Reconfig, &req, None).await?;
        let r = GetDataResponse::from_bytes(&body).or_protocol()?;
        Ok((EnsembleConfig::parse(&r.data)?, r.stat))
    }

    /// The node's ACL and Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        let req = PathRecord {
            path: self.server_path(path, false)?,
        };
        let body = self.call(OpCode::GetAcl, &req, None).await?;
        let r = GetAclResponse::from_bytes(&body).or_protocol()?;
        Ok((r.acl, r.stat))
    }

    /// The node's child names, unsorted.
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        self.children_inner(OpCode::GetChildren, path, None)
            .await
            .map(|(c, _)| c)
    }

    /// Like [`get_children`](Self::get_children), leaving a one-shot watch that fires when a
    /// child is created or deleted, or the node is deleted.
    pub async fn get_children_watch(&self, path: &str) -> Result<(Vec<String>, OneshotWatcher)> {
        let (w, rx) = WatchRequest::oneshot(WatchKind::Child, self.server_path(path, false)?);
        let (c, _) = self
            .children_inner(OpCode::GetChildren, path, Some(w))
            .await?;
        Ok((c, rx))
    }

    /// The node's child names and its own Stat.
    pub async fn get_children_with_stat(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        let (c, s) = self
            .children_inner(OpCode::GetChildren2, path, None)
            .await?;
        Ok((c, s.unwrap_or_default()))
    }

    /// Like [`get_children_with_stat`](Self::get_children_with_stat), with a one-shot child watch.
    pub async fn get_children_with_stat_watch(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, Stat, OneshotWatcher)> {
        let (w, rx) = WatchRequest::oneshot(WatchKind::Child, self.server_path(path, false)?);
        let (c, s) = self
            .children_inner(OpCode::GetChildren2, path, Some(w))
            .await?;
        Ok((c, s.unwrap_or_default(), rx))
    }

    async fn children_inner(
        &self,
        op: OpCode,
        path: &str,
        watch: Option<WatchRequest>,
    ) -> Result<(Vec<String>, Option<Stat>)> {
        let req = self.path_watch(path, watch.is_some())?;
        let body = self.call(op, &req, watch).await?;
        if op == OpCode::GetChildren2 {
            let r = GetChildren2Response::from_bytes(&body).or_protocol()?;
            Ok((r.children, Some(r.stat)))
        } else {
            Ok((
                StringsResponse::from_bytes(&body).or_protocol()?.items,
                None,
            ))
        }
    }

    /// Several reads in one round trip; each succeeds or fails on its own. An answer without
    /// exactly one result per op is [`Error::Protocol`].
    pub async fn multi_read(&self, ops: Vec<ReadOp>) -> Result<Vec<Result<ReadResult>>> {
        let mut req = MultiRequest::default();
        for op in &ops {
            validate_path(op.path(), false)?;
            req.ops.push(op.to_wire(&self.inner.chroot));
        }
        if req.ops.is_empty() {
            return Ok(Vec::new());
        }
        let body = self.call(OpCode::MultiRead, &req, None).await?;
        let resp = MultiResponse::from_bytes(&body).or_protocol()?;
        check_count(&resp.results, ops.len())?;
        read_results(resp.results)
    }

    /// Waits until the server this client is connected to has caught up with the leader on
    /// `path`.
    pub async fn sync(&self, path: &str) -> Result<()> {
        let req = PathRecord {
            path: self.server_path(path, false)?,
        };
        self.call(OpCode::Sync, &req, None).await.map(|_| ())
    }

    /// Paths of this session's ephemeral nodes under `prefix` (`"/"` for all).
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        validate_path(prefix, false)?;
        let req = PathRecord {
            path: self.inner.chroot.to_server(prefix),
        };
        let body = self.call(OpCode::GetEphemerals, &req, None).await?;
        // the server matches the prefix as a string: under the chroot /app, "/" also matches
        // /apple; what is outside the chroot is left out
        let mut v: Vec<String> = StringsResponse::from_bytes(&body)
            .or_protocol()?
            .items
            .into_iter()
            .filter_map(|p| self.inner.chroot.to_client(&p))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Number of all descendants of `path`.
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        let req = PathRecord {
            path: self.server_path(path, false)?,
        };
        let body = self.call(OpCode::GetAllChildrenNumber, &req, None).await?;
        Ok(IntRecord::from_bytes(&body).or_protocol()?.value)
    }

    /// The identities the server associates with this session.
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        let body = self.call(OpCode::WhoAmI, &Empty, None).await?;
        Ok(WhoAmIResponse::from_bytes(&body).or_protocol()?.client_info)
    }

    // ----------------------------------------------------------------- watches

    /// Adds a persistent watch (every data and child event on `path`) or a persistent
    /// recursive one (created / deleted / data-changed events on `path` and its whole
    /// subtree). The watch is re-registered after every reconnect on the same session.
    ///
    /// Dropping the returned [`PersistentWatcher`] (the last one on the path) removes the
    /// server-side watch, unless a one-shot watch of this client there still relies on it.
    ///
    /// # Cancel safety
    /// Dropped before the request was sent (or `Timeout { sent: false }`): nothing reaches the
    /// server. Dropped after (or `Timeout { sent: true }`): the server may still set the watch;
    /// when its reply is read, the client releases it (a `removeWatches(Any)`, written only if
    /// nothing else of this client on the path needs the watch), so no server-side watch is
    /// left that nobody holds. If the connection breaks first, the watch is simply not
    /// re-registered.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<PersistentWatcher> {
        let spath = self.server_path(path, false)?;
        let (w, stream) = WatchRequest::persistent(mode, spath.clone(), path.to_owned());
        let req = PathModeRequest {
            path: spath.clone(),
            mode: mode.code(),
        };
        // dropped (here, if the call fails or this future is dropped, or later by the caller):
        // release the server-side watch unless something here still needs it. A release that
        // reaches the session task while the addWatch is still unanswered is not written; the
        // session task then releases the watch itself when the reply comes (see
        // `Registry::on_reply`), so a watch the server set for a caller that gave up is not
        // left behind.
        let session = self.inner.tx.downgrade();
        let stream = stream.on_drop(move || {
            if let Some(tx) = session.upgrade() {
                let _ = tx.send(Command::Request(PendingRequest::release(spath, mode)));
            }
        });
        self.call(OpCode::AddWatch, &req, Some(w)).await?;
        Ok(stream)
    }

    /// Removes this session's watches of `kind` on `path`, on the server and here; the
    /// removed one-shot watchers resolve with a `DataWatchRemoved` / `ChildWatchRemoved` event,
    /// removed persistent streams yield a `PersistentWatchRemoved` event and end.
    ///
    /// What each kind takes depends on the servers' version ([`ClientBuilder::server_version`]):
    /// - **ZooKeeper 3.8 and before** (the default): only [`WatcherType::Any`] removes
    ///   persistent and recursive watches. Such a server keeps one watch per session and path
    ///   in each of its data and child tables, so removing one kind next to a persistent watch
    ///   would take that table's half of it away and leave the stream silently crippled
    ///   (ZOOKEEPER-4471): such a removal (`Data` on a path with a persistent or recursive
    ///   watch, `Children` on one with a persistent watch) is refused. The one-shot watches
    ///   there are the client's alone (see [`PersistentWatcher`]): drop them, or remove
    ///   everything with `Any`. [`WatcherType::Persistent`] and
    ///   [`WatcherType::PersistentRecursive`] are refused (a 3.8 server does not know them).
    /// - **ZooKeeper 3.9+** ([`ServerVersion::V3_9`](crate::ServerVersion::V3_9)): `Data` and
    ///   `Children` take the one-shot watches of that kind only, `Persistent` the persistent
    ///   watch only, `PersistentRecursive` the recursive one only, `Any` everything
    ///   (ZOOKEEPER-4472).
    ///
    /// `/zookeeper/config` is the ensemble's config node under a chroot too: where
    /// [`get_config_watch`](Self::get_config_watch) leaves its watch, whose event carries that
    /// path (a node of that name inside the chroot cannot be addressed here).
    ///
    /// # Errors
    /// [`Error::NoWatcher`] if the server has no such watch; [`Error::InvalidArgument`] for a
    /// refused removal (nothing sent).
    pub async fn remove_watches(&self, path: &str, kind: WatcherType) -> Result<()> {
        let spath = self.watched_server_path(path, kind, "remove_watches")?;
        let req = PathModeRequest {
            path: spath.clone(),
            mode: kind.code(),
        };
        let unwatch = WatchRequest::remove(kind, spath);
        self.call(OpCode::RemoveWatches, &req, Some(unwatch))
            .await
            .map(|_| ())
    }

    /// Whether the server holds a watch of `kind` on `path` (checkWatches, opcode 17): `Ok(())`
    /// if it does, [`Error::NoWatcher`] if not. Nothing changes.
    ///
    /// ZooKeeper 3.8.0 answers `Ok(())` when *any* session holds such a watch on the path, not
    /// only this one (checked against the real server: zk-server's differential case
    /// `diff_check_watches_of_every_mode_before_and_after_they_fire`); only
    /// [`remove_watches`](Self::remove_watches) is limited to this session's watches.
    ///
    /// It answers for the server's tables, which are not always this client's watchers: a
    /// dropped watcher's watch stays on the server until it fires (or, for a persistent
    /// watch, until the client releases it); and before ZooKeeper 3.9 a one-shot read on a
    /// path with a persistent watch leaves no watch of its own there (see
    /// [`PersistentWatcher`]), while `Data` and `Children` also find a persistent or recursive
    /// watch (it sits in both of a 3.8 server's tables). On 3.9 each kind finds its own mode:
    /// `Data` / `Children` one-shot watches, `Persistent`, `PersistentRecursive`; `Any`
    /// anything. [`WatcherType::Persistent`] and [`WatcherType::PersistentRecursive`] need
    /// [`ServerVersion::V3_9`](crate::ServerVersion::V3_9). `/zookeeper/config` is the
    /// ensemble's config node under a chroot too, as in [`remove_watches`](Self::remove_watches).
    ///
    /// # Errors
    /// [`Error::NoWatcher`] if there is no such watch; [`Error::InvalidArgument`] for a kind
    /// the declared server version does not know (nothing sent).
    pub async fn check_watches(&self, path: &str, kind: WatcherType) -> Result<()> {
        let spath = self.watched_server_path(path, kind, "check_watches")?;
        let req = PathModeRequest {
            path: spath,
            mode: kind.code(),
        };
        self.call(OpCode::CheckWatches, &req, None)
            .await
            .map(|_| ())
    }

    /// The server path of a checkWatches / removeWatches of `kind` on `path`: checked, the
    /// kind known to the declared server version, the config node outside the chroot.
    fn watched_server_path(&self, path: &str, kind: WatcherType, op: &str) -> Result<String> {
        let persistent_kind = matches!(
            kind,
            WatcherType::Persistent | WatcherType::PersistentRecursive
        );
        if persistent_kind && !self.inner.server_version.separate_watch_modes() {
            return Err(Error::InvalidArgument(format!(
                "{op}({kind:?}) needs ZooKeeper 3.9 (ZOOKEEPER-4472), and this client is set \
                 for servers of version {}: declare ClientBuilder::server_version(ServerVersion::V3_9) \
                 if every server runs 3.9 or later, else use WatcherType::Any",
                self.inner.server_version
            )));
        }
        if path == CONFIG_NODE {
            // where get_config_watch leaves its watch, chroot or not
            validate_path(path, false)?;
            return Ok(CONFIG_NODE.to_owned());
        }
        self.server_path(path, false)
    }

    // ----------------------------------------------------------------- session

    /// Adds authentication to the session (e.g. `("digest", "user:password")`); it is re-sent
    /// after every reconnect.
    ///
    /// # Errors
    /// [`Error::AuthFailed`]: the server drops the connection (only the connection: a server
    /// keeps the session). The client then closes the session itself, so that its ephemeral
    /// nodes do not live on until it times out: it re-attaches on a new connection without
    /// replaying the refused credential and sends `closeSession`, within the close timeout
    /// ([`ClientBuilder::close_timeout`]); then it stops. Everything else fails with
    /// `AuthFailed`, and [`Client::close`] reports how that close went (`Ok(())` once the
    /// session is closed, [`Error::Timeout`] if no server closed it in time).
    /// [`Error::RequestTooLarge`] for a credential over the request limit. With a deadline
    /// (or after twice the session timeout while disconnected) [`Error::Timeout`]: `sent: false`
    /// means the credential was never sent and will not be replayed.
    pub async fn add_auth(&self, scheme: &str, credential: &[u8]) -> Result<()> {
        if scheme.is_empty() {
            return Err(Error::InvalidArgument(
                "the auth scheme must not be empty".into(),
            ));
        }
        // the whole auth packet must fit what a server accepts, like any request
        let len = 4 + 4 + 4 + 4 + scheme.len() + 4 + credential.len();
        if len > self.inner.max_request_len {
            return Err(Error::RequestTooLarge {
                len,
                max: self.inner.max_request_len,
            });
        }
        let deadline = self
            .deadline()
            .or_else(|| Instant::now().checked_add(self.inner.queue_timeout));
        // like a request's: dropping `rx` before the session task claimed it abandons it
        let (tx, mut rx) = reply::channel();
        let cmd = Command::Auth {
            scheme: scheme.to_owned(),
            auth: credential.to_vec(),
            reply: tx,
        };
        if self.inner.tx.send(cmd).is_err() {
            return Err(self.terminal_error());
        }
        let res = match deadline {
            None => rx.await,
            Some(d) => match tokio::time::timeout_at(d, &mut rx).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Error::Timeout {
                        sent: !rx.abandon(),
                    })
                }
            },
        };
        res.unwrap_or_else(|_| Err(self.terminal_error()))
    }

    /// Stops the client **without** closing its session, and returns the session's id and
    /// password for another client (or process) to take over with [`ClientBuilder::session`]
    /// before the session times out. Requests issued before it are still written and answered
    /// (within the close timeout, [`ClientBuilder::close_timeout`]); what is then still in
    /// flight fails with [`Error::ConnectionLoss`] and what waits for a connection with
    /// [`Error::Closed`]. Every clone fails with [`Error::Closed`] afterwards, and so does a
    /// later [`close`](Self::close) (the session was not closed).
    pub async fn detach(self) -> (i64, Vec<u8>) {
        let creds = self.session_credentials();
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Command::Detach { reply: tx }).is_ok() {
            let _ = rx.await;
        }
        creds
    }

    /// Closes the session (its ephemeral nodes are deleted at once) and stops the client; every
    /// clone fails with [`Error::Closed`] afterwards. Requests already sent are answered first.
    ///
    /// If the client is disconnected, it keeps trying to reach a server, re-attach (with the
    /// SASL exchange first, if the client uses SASL) and send closeSession until the close
    /// timeout ([`ClientBuilder::close_timeout`], default 2 s). Requests and `add_auth` calls
    /// issued after `close()` fail with [`Error::Closed`] and are never sent.
    /// The same holds after a LOST that left a session possibly alive on the server (given up
    /// on the client's clock with [`ClientBuilder::reconnect_after_expiry`]`(false)`, or after
    /// an auth failure): that session is re-attached and closed.
    ///
    /// `Ok(())` means the session was closed, or a server said it was already gone (or there
    /// never was one).
    ///
    /// # Errors
    /// [`Error::Timeout`] when the session could not be closed in time: `sent: false` if no
    /// server was reached, `sent: true` if closeSession was sent but not acknowledged. The
    /// client is stopped either way; the session then ends on the server when it times out.
    pub async fn close(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Command::Close { reply: tx }).is_err() {
            return self.ended_close_result();
        }
        rx.await.unwrap_or_else(|_| self.ended_close_result())
    }
}

/// What a server would refuse in an ACL with InvalidAcl, checked before sending: permissions
/// outside `Perms::ALL` or none at all, `world` other than `anyone`, an empty scheme.
/// The TTL of `mode` as the wire has it, whole milliseconds (`None` without a TTL); one under
/// a millisecond (sent as 0) or over the server's maximum is refused before sending. The one
/// check of `create` and of a create inside `multi`.
pub(crate) fn ttl_ms(mode: CreateMode) -> Result<Option<i64>> {
    let Some(ttl) = mode.ttl() else {
        return Ok(None);
    };
    let ms = ttl.as_millis();
    if ms == 0 || ms > u128::from(MAX_TTL_MS) {
        return Err(Error::InvalidArgument(format!(
            "TTL must be between 1 ms and {MAX_TTL_MS} ms, not {ttl:?}"
        )));
    }
    Ok(Some(ms as i64))
}

fn check_acl(acl: &[Acl]) -> Option<Error> {
    for a in acl {
        let bad = |why: &str| {
            Some(Error::InvalidArgument(format!(
                "invalid ACL entry {}:{} (perms {}): {why}",
                a.id.scheme, a.id.id, a.perms.0
            )))
        };
        if a.perms.0 == 0 || a.perms.0 & !crate::proto::Perms::ALL.0 != 0 {
            return bad("permissions must be a non-empty subset of cdrwa");
        }
        if a.id.scheme.is_empty() {
            return bad("the scheme must not be empty");
        }
        if a.id.scheme == "world" && a.id.id != "anyone" {
            return bad("the world scheme has the one id `anyone`");
        }
    }
    None
}

/// An empty request body (`whoAmI`).
struct Empty;

impl Record for Empty {
    fn write(&self, _: &mut crate::proto::Writer<'_>) {}
    fn read(
        _: &mut crate::proto::Reader<'_>,
    ) -> std::result::Result<Self, crate::proto::DecodeError> {
        Ok(Empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{PathWatchRequest, Writer};
    use bytes::BytesMut;

    #[test]
    fn path_watch_body_encodes_like_the_record() {
        for root in ["", "/", "/app", "/a/b"] {
            let chroot = Chroot::new(root).unwrap();
            for path in ["/", "/x", "/x/y", "/é"] {
                for watch in [false, true] {
                    let mut ours = BytesMut::new();
                    PathWatchBody {
                        chroot: &chroot,
                        path,
                        watch,
                    }
                    .write_body(&mut Writer::new(&mut ours));
                    let record = PathWatchRequest {
                        path: chroot.to_server(path),
                        watch,
                    };
                    assert_eq!(ours, record.to_bytes(), "{root:?} {path:?} {watch}");
                }
            }
        }
    }
}

#[cfg(test)]
mod builder_tests {
    use super::*;

    #[test]
    fn the_tracker_maps_the_configs_plain_ports_to_tls_ports() {
        let h = |host: &str, port, tls| crate::HostAddr {
            host: host.into(),
            port,
            tls,
        };
        let config = vec![
            h("zk1.example", 2181, false),
            h("zk2.example", 2181, false),
            h("10.0.0.3", 3181, false),
            h("10.0.0.4", 4181, false),
        ];
        assert_eq!(
            tls_hosts(config, &[(2181, 2281), (3181, 3281)]),
            [
                h("zk1.example", 2281, true),
                h("zk2.example", 2281, true),
                h("10.0.0.3", 3281, true),
            ]
        );
    }

    #[test]
    fn builder_debug_redacts_credentials_and_parses_from_a_connect_string() {
        let b: ClientBuilder = "127.0.0.1:2181,127.0.0.2:2181/app".parse().unwrap();
        let b = b
            .auth("digest", "alice:s3cret-digest")
            .sasl_digest_md5("bob", "s3cret-sasl")
            .session(0x1234, vec![0xAB; 16]);
        let copy = b.clone();
        let shown = format!("{copy:?}");
        for secret in ["s3cret-digest", "s3cret-sasl", "abab", "171, 171"] {
            assert!(!shown.contains(secret), "{secret:?} shown in {shown}");
        }
        assert!(shown.contains("digest:<redacted>"), "{shown}");
        assert!(shown.contains("0x1234"), "{shown}");
        assert!(
            shown.contains("127.0.0.1:2181,127.0.0.2:2181/app"),
            "{shown}"
        );
        assert!("127.0.0.1:notaport".parse::<ClientBuilder>().is_err());
        assert!("127.0.0.1:2181/bad/".parse::<ClientBuilder>().is_err());
    }
}
