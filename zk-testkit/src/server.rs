//! One ZooKeeper JVM: a standalone server, or (with a different config) an ensemble member.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::time::sleep;

use crate::embedded::{self, Backend, Choice, Embedded};
use crate::install::{Installation, Logging};
use crate::settings::{settings_setters, Role, Settings, LOG4J_PROPERTIES};
use crate::tls::{TlsFiles, TlsOptions};
use crate::wire::{four_letter_async, four_letter_timeout, FOUR_LETTER_TIMEOUT};
use crate::{spawner, Error, Result};

/// Read timeout of one readiness probe: a probe that connects before the server's worker
/// threads exist can sit unanswered, so give up quickly and probe again.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// Answer timeout of the `srvr` probes of [`ZkServer::wait_for_mode`] and friends.
pub(crate) const MODE_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// How long [`ZkServer::stop`] waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Pause between checks whether a signalled JVM has exited.
const REAP_INTERVAL: Duration = Duration::from_millis(10);
/// How many fresh ports a start tries when the chosen one turns out to be taken.
pub(crate) const PORT_ATTEMPTS: usize = 5;
/// Lines of the log included in startup errors.
const LOG_TAIL_LINES: usize = 40;
/// Written to the log before every launch; the bind-failure check only looks after the last one.
const LAUNCH_MARKER: &str = "==== zk-testkit: launching ZooKeeper ====";
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// A real ZooKeeper server (one JVM) on `127.0.0.1`, in its own temporary directory.
///
/// Start one with [`ZkServer::start`] or [`ZkServer::builder`]; share one per test process with
/// [`shared_server`]. Ensemble members ([`Ensemble::member`](crate::Ensemble::member)) are
/// `ZkServer`s too.
///
/// All methods take `&self`. Those that wait (start, stop, kill, restart, modes) come in two
/// forms: a blocking one that works from anywhere (also inside a runtime, which it then blocks)
/// and an `_async` one that never blocks a runtime thread (see the crate docs, "Blocking").
/// The port and the data directory stay the same across [`stop`](Self::stop),
/// [`kill`](Self::kill) and [`restart`](Self::restart). Dropping the server SIGKILLs the JVM,
/// reaps it and deletes the temporary directory.
#[derive(Debug)]
pub struct ZkServer {
    addr: SocketAddr,
    myid: Option<u32>,
    data_dir: PathBuf,
    log_path: PathBuf,
    config_path: PathBuf,
    java: PathBuf,
    args: Vec<OsString>,
    startup_timeout: Duration,
    process: Mutex<Process>,
    /// The TLS port and certificate files, when started with TLS (an ensemble's members share
    /// one set).
    pub(crate) tls: Option<(u16, std::sync::Arc<TlsFiles>)>,
    /// The JAAS file's directory, when started with SASL users.
    sasl: Option<TempDir>,
    /// The in-process zk-server, when that is the backend (then there is never a JVM).
    embedded: Option<Embedded>,
    /// Why this backend (see [`ZkServerBuilder::resolve_backend`]).
    backend_reason: String,
    /// Declared last: removed after the JVM is dead (Drop kills it first anyway).
    dir: TempDir,
}

#[derive(Debug, Default)]
struct Process {
    /// The JVM, never reaped while stored here: its pid cannot be reused while we hold it.
    child: Option<Child>,
    paused: bool,
}

impl Process {
    /// The running child, reaping it (and forgetting it) if it has exited.
    fn running(&mut self) -> Option<&mut Child> {
        let exited = match self.child.as_mut() {
            None => return None,
            Some(child) => !matches!(child.try_wait(), Ok(None)),
        };
        if exited {
            self.child = None;
            self.paused = false;
            return None;
        }
        self.child.as_mut()
    }
}

/// Why a start failed; `port_conflict` means "try again with other ports".
#[derive(Debug)]
pub(crate) struct StartFailure {
    pub(crate) error: Error,
    pub(crate) port_conflict: bool,
}

/// Builder for a standalone [`ZkServer`]; see [`ZkServer::builder`].
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ZkServerBuilder {
    settings: Settings,
    tls: Option<TlsOptions>,
    sasl_users: Vec<(String, String)>,
    kerberos: Option<Kerberos>,
    choice: Choice,
}

/// The server side of GSSAPI: the KDC's krb5.conf, the service keytab and principal.
#[derive(Clone, Debug)]
struct Kerberos {
    krb5_conf: PathBuf,
    keytab: PathBuf,
    principal: String,
}

impl ZkServerBuilder {
    settings_setters!();

    /// Also serve TLS on a second port (`secureClientPort`, Netty) with certificates generated
    /// for this server: see [`ZkServer::secure_connect_string`] and [`ZkServer::tls_files`].
    /// The plain port stays (the kit's readiness probes use it).
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.tls = Some(options);
        self
    }

    /// Enable SASL with these DIGEST-MD5 users (name, password): a JAAS `Server` section of
    /// `DigestLoginModule` users and the `SASLAuthenticationProvider`. Clients that do not
    /// authenticate are still served (as ZooKeeper does by default).
    pub fn sasl_digest_users(mut self, users: &[(&str, &str)]) -> Self {
        self.sasl_users = users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect();
        self
    }

    /// Enable SASL GSSAPI (Kerberos) with this KDC: a JAAS `Server` section with
    /// `com.sun.security.auth.module.Krb5LoginModule` (`useKeyTab`, the KDC's
    /// [`service_keytab`](crate::Kdc::service_keytab), `storeKey=true`, `isInitiator=false`,
    /// `principal="zookeeper/localhost@REALM"`), the `SASLAuthenticationProvider`, and
    /// `-Djava.security.krb5.conf` pointing at the KDC's [`krb5_conf`](crate::Kdc::krb5_conf).
    /// Clients ask for `zookeeper/localhost`: connect to `localhost`, or name that host
    /// (zk-core: `SaslGssapi::service_host("localhost")`). Combines with
    /// [`sasl_digest_users`](Self::sasl_digest_users) (both modules in the section).
    pub fn sasl_kerberos(mut self, kdc: &crate::Kdc) -> Self {
        self.kerberos = Some(Kerberos {
            krb5_conf: kdc.krb5_conf().to_owned(),
            keytab: kdc.service_keytab(),
            principal: kdc.principal(crate::kdc::SERVICE_PRINCIPAL),
        });
        self
    }

    /// Run real ZooKeeper whatever [`BACKEND_ENV`](crate::BACKEND_ENV) says, for a test that
    /// needs something zk-server does not do the same way; `reason` says what, in a line (it
    /// is logged, and kept for [`ZkServer::backend_reason`]).
    pub fn real_zookeeper(mut self, reason: &'static str) -> Self {
        self.choice.real_reason = Some(reason);
        self
    }

    /// Run this backend whatever [`BACKEND_ENV`](crate::BACKEND_ENV) says. What only a real
    /// server can do (TLS, SASL, Kerberos, a four-letter-word whitelist, extra `zoo.cfg` lines
    /// or JVM properties) still gets real ZooKeeper; see the crate docs.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.choice.explicit = Some(backend);
        self
    }

    /// What these settings ask for that only real ZooKeeper does, if anything.
    fn needs_real_zookeeper(&self) -> Option<String> {
        if self.tls.is_some() {
            return Some("TLS".into());
        }
        if !self.sasl_users.is_empty() {
            return Some("SASL".into());
        }
        if self.kerberos.is_some() {
            return Some("Kerberos (SASL GSSAPI)".into());
        }
        embedded::unmodelled(&self.settings)
    }

    /// The backend [`start`](Self::start) will run, and why: [`Backend::ZooKeeper`] for what
    /// only a real server can do (TLS, SASL, ...) and after
    /// [`real_zookeeper`](Self::real_zookeeper), else the builder's
    /// [`backend`](Self::backend), else [`BACKEND_ENV`](crate::BACKEND_ENV).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownBackend`] if the variable names no backend (whatever the builder says).
    pub fn resolve_backend(&self) -> Result<(Backend, String)> {
        let env = Backend::from_env()?;
        Ok(self.choice.resolve(env, self.needs_real_zookeeper()))
    }

    /// Starts the server on a random free port and waits until it serves (`srvr` shows `Mode:`).
    /// If the chosen port turns out to be taken, retries with another one. Blocks the calling
    /// thread; [`start_async`](Self::start_async) does not.
    ///
    /// The server is real ZooKeeper unless [`BACKEND_ENV`](crate::BACKEND_ENV) or
    /// [`backend`](Self::backend) asks for zk-server (see
    /// [`resolve_backend`](Self::resolve_backend)).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownBackend`] if the variable names no backend,
    /// [`Error::MissingPackage`] if java or the jars are missing, [`Error::Startup`] (with the
    /// end of the server log) if the server does not come up within the startup timeout.
    pub fn start(self) -> Result<ZkServer> {
        crate::block_on(|| self.start_async())
    }

    /// [`start`](Self::start) without blocking the runtime: the waiting is async, so it works
    /// on a current-thread runtime (a plain `#[tokio::test]`) too.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future kills the JVM it may have launched (it belongs to the dropped,
    /// unfinished `ZkServer`).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn start_async(self) -> Result<ZkServer> {
        let (backend, why) = self.resolve_backend()?;
        tracing::debug!(%backend, why, "zk-testkit: starting a server");
        if backend == Backend::ZkServer {
            return ZkServer::start_embedded(&self.settings, why).await;
        }
        let install = Installation::locate()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = free_ports(2)?;
            let port = ports[0];
            let mut settings = self.settings.clone();
            let tls = match &self.tls {
                None => None,
                Some(opts) => {
                    let files = TlsFiles::generate(opts)?;
                    settings
                        .cfg
                        .push(("secureClientPort".into(), ports[1].to_string()));
                    settings
                        .cfg
                        .push(("secureClientPortAddress".into(), "127.0.0.1".into()));
                    for (k, v) in files.jvm_props(opts) {
                        crate::settings::upsert(&mut settings.jvm_props, &k, v);
                    }
                    Some((ports[1], std::sync::Arc::new(files)))
                }
            };
            let sasl = if self.sasl_users.is_empty() && self.kerberos.is_none() {
                None
            } else {
                let dir = tempfile::Builder::new()
                    .prefix("zk-testkit-sasl-")
                    .tempdir()
                    .map_err(|e| Error::io("creating a temporary directory", e))?;
                let mut jaas = String::from("Server {");
                if !self.sasl_users.is_empty() {
                    jaas.push_str(
                        "\n  org.apache.zookeeper.server.auth.DigestLoginModule required",
                    );
                    for (u, p) in &self.sasl_users {
                        jaas.push_str(&format!("\n  user_{u}=\"{p}\""));
                    }
                    jaas.push(';');
                }
                if let Some(k) = &self.kerberos {
                    jaas.push_str(&format!(
                        "\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
                         useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  \
                         useTicketCache=false\n  isInitiator=false\n  principal=\"{}\";",
                        k.keytab.display(),
                        k.principal
                    ));
                    crate::settings::upsert(
                        &mut settings.jvm_props,
                        "java.security.krb5.conf",
                        k.krb5_conf.display().to_string(),
                    );
                }
                jaas.push_str("\n};\n");
                let path = dir.path().join("jaas.conf");
                fs::write(&path, jaas).map_err(|e| Error::io("writing jaas.conf", e))?;
                crate::settings::upsert(
                    &mut settings.jvm_props,
                    "java.security.auth.login.config",
                    path.display().to_string(),
                );
                crate::settings::upsert(
                    &mut settings.jvm_props,
                    "zookeeper.authProvider.sasl",
                    "org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into(),
                );
                Some(dir)
            };
            let mut server = ZkServer::prepare(&install, &settings, port, Role::Standalone)?;
            server.backend_reason = why.clone();
            server.tls = tls;
            server.sasl = sasl;
            server.spawn()?;
            let deadline = Instant::now() + self.settings.startup_timeout;
            let ready = match server.wait_ready(deadline, |_| true).await {
                Ok(()) => server.wait_secure_port(deadline).await,
                Err(failure) => Err(failure),
            };
            match ready {
                Ok(()) => return Ok(server),
                Err(failure) if failure.port_conflict && attempt < PORT_ATTEMPTS => {
                    tracing::debug!(port, "zk-testkit: port taken, trying another one");
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }
}

impl ZkServer {
    /// Starts a standalone server with the default settings. Same as
    /// `ZkServer::builder().start()`.
    ///
    /// # Errors
    ///
    /// See [`ZkServerBuilder::start`].
    pub fn start() -> Result<ZkServer> {
        Self::builder().start()
    }

    /// [`start`](Self::start) without blocking the runtime. Same as
    /// `ZkServer::builder().start_async()`.
    ///
    /// # Errors
    ///
    /// See [`ZkServerBuilder::start`].
    pub async fn start_async() -> Result<ZkServer> {
        Self::builder().start_async().await
    }

    /// A builder to change `tickTime`, session timeout bounds, extra `zoo.cfg` lines, JVM
    /// properties and so on.
    pub fn builder() -> ZkServerBuilder {
        ZkServerBuilder::default()
    }

    /// Creates the directory and config files; does not start the JVM.
    pub(crate) fn prepare(
        install: &Installation,
        settings: &Settings,
        client_port: u16,
        role: Role<'_>,
    ) -> Result<ZkServer> {
        let dir = tempfile::Builder::new()
            .prefix("zk-testkit-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory", e))?;
        let base = dir.path();
        let data_dir = base.join("data");
        fs::create_dir(&data_dir).map_err(|e| Error::io("creating the data directory", e))?;
        let write = |name: &str, text: &str| {
            let path = base.join(name);
            fs::write(&path, text)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            Ok::<_, Error>(path)
        };
        let myid = match role {
            Role::Standalone => None,
            Role::Member { myid, .. } => {
                fs::write(data_dir.join("myid"), format!("{myid}\n"))
                    .map_err(|e| Error::io("writing myid", e))?;
                Some(myid)
            }
        };
        let config_path = write("zoo.cfg", &settings.zoo_cfg(&data_dir, client_port, role))?;
        let log4j_path = write("log4j.properties", LOG4J_PROPERTIES)?;

        let mut args: Vec<OsString> = [
            "-Xms64m",
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Xss512k",
            "-XX:-UsePerfData",
            "-Djava.net.preferIPv4Stack=true",
            "-Dzookeeper.jmx.log4j.disable=true",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        match install.logging {
            Logging::Log4j => {
                let mut arg = OsString::from("-Dlog4j.configuration=file:");
                arg.push(&log4j_path);
                args.push(arg);
            }
            Logging::Simple => args.push("-Dorg.slf4j.simpleLogger.showDateTime=true".into()),
            Logging::Silent => {}
        }
        for (key, value) in settings.jvm_props(role) {
            args.push(format!("-D{key}={value}").into());
        }
        args.push("-cp".into());
        args.push(install.classpath.clone());
        args.push(MAIN_CLASS.into());
        args.push(config_path.clone().into());

        Ok(ZkServer {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, client_port)),
            myid,
            log_path: base.join("zookeeper.log"),
            config_path,
            data_dir,
            java: install.java.clone(),
            args,
            startup_timeout: settings.startup_timeout,
            process: Mutex::new(Process::default()),
            tls: None,
            sasl: None,
            embedded: None,
            backend_reason: match role {
                Role::Standalone => String::new(),
                Role::Member { .. } => "an ensemble member (zk-server is single-node)".into(),
            },
            dir,
        })
    }

    /// Starts an in-process zk-server ([`Backend::ZkServer`]) with `settings`, keeping its
    /// tree and sessions in a temporary data dir (so that a stop, kill or restart keeps them,
    /// as ZooKeeper's dataDir does).
    async fn start_embedded(settings: &Settings, why: String) -> Result<ZkServer> {
        let dir = tempfile::Builder::new()
            .prefix("zk-testkit-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory", e))?;
        let base = dir.path();
        let data_dir = base.join("data");
        let log_path = base.join("zk-server.log");
        let config_path = base.join("zk-server.cfg");
        let embedded =
            Embedded::start(embedded::server_builder(settings, data_dir.clone())).await?;
        let addr = embedded.server().addr();
        let write = |path: &Path, text: String| {
            fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
        };
        write(
            &config_path,
            format!(
                "# zk-server in this process (zk-testkit backend `zk-server`: {why})\n\
                 tickTime={}\nminSessionTimeout={}\nmaxSessionTimeout={}\n\
                 extendedTypesEnabled={}\ndataDir={}\nclientPort={}\n",
                settings.tick_time,
                settings
                    .min_session_timeout
                    .unwrap_or(2 * settings.tick_time),
                settings
                    .max_session_timeout
                    .unwrap_or(20 * settings.tick_time),
                settings.extended_types,
                data_dir.display(),
                addr.port(),
            ),
        )?;
        write(
            &log_path,
            format!(
                "zk-server serves {addr} in this process; its log goes to this process's \
                 `tracing` subscriber (target `zk_server`)\n"
            ),
        )?;
        Ok(ZkServer {
            addr,
            myid: None,
            data_dir,
            log_path,
            config_path,
            java: PathBuf::new(),
            args: Vec::new(),
            startup_timeout: settings.startup_timeout,
            process: Mutex::new(Process::default()),
            tls: None,
            sasl: None,
            embedded: Some(embedded),
            backend_reason: why,
            dir,
        })
    }

    /// The server's backend: [`Backend::ZooKeeper`] (a JVM) or [`Backend::ZkServer`] (in this
    /// process).
    pub fn backend(&self) -> Backend {
        if self.embedded.is_some() {
            Backend::ZkServer
        } else {
            Backend::ZooKeeper
        }
    }

    /// Why it runs that backend: what only ZooKeeper can do, the reason given to
    /// [`ZkServerBuilder::real_zookeeper`], or the variable's value.
    pub fn backend_reason(&self) -> &str {
        &self.backend_reason
    }

    /// The in-process zk-server, with its test hooks
    /// ([`expire_session`](zk_server::Server::expire_session),
    /// [`sessions`](zk_server::Server::sessions), ...), when that is the backend.
    pub fn zk_server(&self) -> Option<&zk_server::Server> {
        self.embedded.as_ref().map(Embedded::server)
    }

    /// With TLS: waits until the secure port accepts connections (it opens after the plain one).
    pub(crate) async fn wait_secure_port(&self, deadline: Instant) -> Result<(), StartFailure> {
        let Some((port, _)) = &self.tls else {
            return Ok(());
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
        loop {
            let connect = tokio::net::TcpStream::connect(addr);
            if matches!(
                tokio::time::timeout(PROBE_TIMEOUT, connect).await,
                Ok(Ok(_))
            ) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self
                    .start_failure(format!(
                        "ZooKeeper's TLS port {addr} did not open within {:?}",
                        self.startup_timeout
                    ))
                    .await);
            }
            sleep(PROBE_INTERVAL).await;
        }
    }

    /// The TLS address (`secureClientPort`), when started with [`ZkServerBuilder::tls`].
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.tls
            .as_ref()
            .map(|(port, _)| SocketAddr::from((Ipv4Addr::LOCALHOST, *port)))
    }

    /// `"127.0.0.1:TLSPORT"`, when started with TLS.
    pub fn secure_connect_string(&self) -> Option<String> {
        self.secure_addr().map(|a| a.to_string())
    }

    /// The generated CA, client certificates and keys, when started with TLS.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref().map(|(_, f)| &**f)
    }

    /// Launches the JVM (without waiting for it to serve).
    pub(crate) fn spawn(&self) -> Result<()> {
        let mut process = self.process();
        if process.running().is_some() {
            return Err(Error::AlreadyRunning(self.addr));
        }
        let log_error = |e| Error::io(format!("opening {}", self.log_path.display()), e);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(log_error)?;
        writeln!(log, "{LAUNCH_MARKER}").map_err(log_error)?;
        let stderr = log.try_clone().map_err(log_error)?;
        let mut command = Command::new(&self.java);
        command
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        let child = spawner::spawn(command)
            .map_err(|e| Error::io(format!("starting {}", self.java.display()), e))?;
        tracing::debug!(pid = child.id(), addr = %self.addr, "zk-testkit: started ZooKeeper");
        *process = Process {
            child: Some(child),
            paused: false,
        };
        Ok(())
    }

    /// Polls `srvr` until it shows a mode accepted by `accept`, the JVM exits, or `deadline`.
    pub(crate) async fn wait_ready(
        &self,
        deadline: Instant,
        accept: fn(&str) -> bool,
    ) -> Result<(), StartFailure> {
        loop {
            if let Some(status) = self.exit_status() {
                return Err(self
                    .start_failure(format!(
                        "ZooKeeper on {} exited during startup ({status})",
                        self.addr
                    ))
                    .await);
            }
            let last = match four_letter_async(self.addr, "srvr", PROBE_TIMEOUT).await {
                Ok(answer) => match parse_mode(&answer) {
                    Some(mode) if accept(mode) => match self.answers_as_itself().await {
                        Some(true) => return Ok(()),
                        Some(false) => {
                            return Err(StartFailure {
                                port_conflict: true,
                                ..self
                                    .start_failure(format!(
                                        "another ZooKeeper answers on {}",
                                        self.addr
                                    ))
                                    .await
                            })
                        }
                        None => "`conf` did not answer".to_owned(),
                    },
                    Some(mode) => format!("Mode: {mode}"),
                    None => answer.trim().to_owned(),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(self
                    .start_failure(format!(
                        "ZooKeeper on {} not ready within {:?} (last `srvr` probe: {last})",
                        self.addr, self.startup_timeout
                    ))
                    .await);
            }
            sleep(PROBE_INTERVAL).await;
        }
    }

    /// Whether the server answering on our port is ours (its `conf` names our data dir);
    /// `None` if it did not answer.
    async fn answers_as_itself(&self) -> Option<bool> {
        let conf = four_letter_async(self.addr, "conf", FOUR_LETTER_TIMEOUT)
            .await
            .ok()?;
        Some(conf.contains(self.data_dir.to_str()?))
    }

    /// If the JVM is not running (any more): why.
    fn exit_status(&self) -> Option<String> {
        let mut process = self.process();
        let child = process.child.as_mut()?;
        match child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => {
                process.child = None;
                Some(status.to_string())
            }
            Err(e) => Some(format!("cannot wait for it: {e}")),
        }
    }

    /// Whether the log of the latest launch reports a port that was already taken.
    pub(crate) fn log_shows_port_conflict(&self) -> bool {
        let log = read_log_end(&self.log_path);
        let this_launch = log.rsplit(LAUNCH_MARKER).next().unwrap_or_default();
        this_launch.contains("Address already in use")
    }

    async fn start_failure(&self, message: String) -> StartFailure {
        let port_conflict = self.log_shows_port_conflict();
        let log = read_log_end(&self.log_path);
        // Kill what is left of a failed start: a half-started server is of no use.
        let _ = self.kill_async().await;
        StartFailure {
            error: Error::Startup {
                message,
                log_path: self.log_path.clone(),
                log_tail: tail(&log, LOG_TAIL_LINES),
            },
            port_conflict,
        }
    }

    fn process(&self) -> MutexGuard<'_, Process> {
        self.process
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The connect string: `"127.0.0.1:PORT"`.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// The client address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The server id of an ensemble member (`server.N` / `myid`), `None` for a standalone server.
    pub fn myid(&self) -> Option<u32> {
        self.myid
    }

    /// The JVM's pid while it runs; always `None` for zk-server (it runs in this process).
    pub fn pid(&self) -> Option<u32> {
        self.process().running().map(|child| child.id())
    }

    /// Whether the server is running (a paused one counts as running).
    pub fn is_running(&self) -> bool {
        if let Some(e) = &self.embedded {
            return e.is_running();
        }
        self.process().running().is_some()
    }

    /// Whether the server is frozen by [`pause`](Self::pause).
    pub fn is_paused(&self) -> bool {
        if let Some(e) = &self.embedded {
            return e.is_paused();
        }
        let mut process = self.process();
        process.running().is_some() && process.paused
    }

    /// The data directory (`dataDir`), kept across restarts.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The generated `zoo.cfg`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The server log (stdout and stderr of the JVM, appended to across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&read_log_end(&self.log_path), lines)
    }

    /// Gracefully stops the server: SIGTERM, wait for the JVM to exit, SIGKILL if it has not
    /// exited after 5 s. Resumes a paused JVM so it can handle the SIGTERM. Does nothing if the
    /// server is not running. Blocks; [`stop_async`](Self::stop_async) does not. zk-server
    /// closes its listener and every connection (a paused one is resumed first).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the process cannot be signalled or waited for.
    pub fn stop(&self) -> Result<()> {
        crate::block_on(|| self.stop_async())
    }

    /// [`stop`](Self::stop) without blocking the runtime.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the JVM signalled but possibly not yet exited; the server
    /// still holds it (a later stop, kill or drop finishes the job).
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop).
    pub async fn stop_async(&self) -> Result<()> {
        if let Some(e) = &self.embedded {
            return e.stop().await;
        }
        {
            let mut process = self.process();
            let paused = process.paused;
            let Some(child) = process.running() else {
                return Ok(());
            };
            signal(child, libc::SIGTERM)?;
            if paused {
                signal(child, libc::SIGCONT)?;
            }
        }
        if self.reap(Some(Instant::now() + STOP_GRACE)).await? {
            return Ok(());
        }
        tracing::warn!(addr = %self.addr, "zk-testkit: ZooKeeper ignored SIGTERM; killing it");
        self.kill_async().await
    }

    /// Kills the server with SIGKILL and reaps it (a crash: no goodbye to clients or peers).
    /// Does nothing if the server is not running. Blocks (briefly);
    /// [`kill_async`](Self::kill_async) does not. zk-server, in this process, is stopped as
    /// by [`stop`](Self::stop): every socket closes and the data dir keeps every acknowledged
    /// change, which is what a client sees of a killed ZooKeeper too.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the process cannot be waited for.
    pub fn kill(&self) -> Result<()> {
        crate::block_on(|| self.kill_async())
    }

    /// [`kill`](Self::kill) without blocking the runtime (it awaits the reaping).
    ///
    /// # Cancel safety
    ///
    /// The SIGKILL is sent before the first await; a dropped future leaves the dying JVM to the
    /// server (a later call or the drop reaps it).
    ///
    /// # Errors
    ///
    /// As [`kill`](Self::kill).
    pub async fn kill_async(&self) -> Result<()> {
        if let Some(e) = &self.embedded {
            // in-process there is no crash to simulate: every socket closes, the data dir holds
            // every acknowledged change (as ZooKeeper's log does after a SIGKILL)
            return e.stop().await;
        }
        if let Some(child) = self.process().child.as_mut() {
            // Fails only if the child was already reaped, which `Process` never lets happen.
            let _ = child.kill();
        }
        self.reap(None).await.map(drop)
    }

    /// Waits without blocking until the JVM has exited (or `deadline` passes), then reaps and
    /// forgets it. `Ok(true)` when no JVM is left.
    async fn reap(&self, deadline: Option<Instant>) -> Result<bool> {
        loop {
            {
                let mut process = self.process();
                match process.child.as_mut().map(Child::try_wait) {
                    None => return Ok(true),
                    Some(Ok(Some(_))) => {
                        *process = Process::default();
                        return Ok(true);
                    }
                    Some(Ok(None)) => {}
                    Some(Err(e)) => return Err(Error::io("waiting for ZooKeeper to exit", e)),
                }
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(false);
            }
            sleep(REAP_INTERVAL).await;
        }
    }

    /// Stops the server if it runs ([`stop`](Self::stop)), then starts it again on the same port
    /// with the same data directory and waits until it serves. Blocks;
    /// [`restart_async`](Self::restart_async) does not.
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop) and [`start_again`](Self::start_again).
    pub fn restart(&self) -> Result<()> {
        crate::block_on(|| self.restart_async())
    }

    /// [`restart`](Self::restart) without blocking the runtime: a client on the same
    /// current-thread runtime keeps running (and reconnecting) meanwhile.
    ///
    /// # Cancel safety
    ///
    /// A JVM launched before the future was dropped belongs to the server: it keeps running
    /// until the server is stopped, killed or dropped (never orphaned).
    ///
    /// # Errors
    ///
    /// As [`restart`](Self::restart).
    pub async fn restart_async(&self) -> Result<()> {
        self.stop_async().await?;
        self.start_again_async().await
    }

    /// Starts a stopped (or killed) server again on the same port with the same data directory,
    /// and waits until `srvr` shows a `Mode:` line. An ensemble member serves only once it is
    /// part of a quorum (or read-only, if enabled). Blocks;
    /// [`start_again_async`](Self::start_again_async) does not.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyRunning`] if it runs, [`Error::Startup`] if it does not come up within
    /// the startup timeout (for example because another process took the port meanwhile).
    pub fn start_again(&self) -> Result<()> {
        crate::block_on(|| self.start_again_async())
    }

    /// [`start_again`](Self::start_again) without blocking the runtime.
    ///
    /// # Cancel safety
    ///
    /// As [`restart_async`](Self::restart_async).
    ///
    /// # Errors
    ///
    /// As [`start_again`](Self::start_again).
    pub async fn start_again_async(&self) -> Result<()> {
        if let Some(e) = &self.embedded {
            return e.start_again().await;
        }
        self.spawn()?;
        self.wait_ready(Instant::now() + self.startup_timeout, |_| true)
            .await
            .map_err(|failure| failure.error)
    }

    /// Freezes the JVM with SIGSTOP: sockets stay open, but nothing is answered (like a long GC
    /// pause or a hung machine). Undo with [`resume`](Self::resume). zk-server is frozen the
    /// same way by blocking the one thread its runtime runs on (its timers stand still too).
    ///
    /// # Errors
    ///
    /// [`Error::NotRunning`] if the server is not running.
    pub fn pause(&self) -> Result<()> {
        if let Some(e) = &self.embedded {
            return e.pause();
        }
        let mut process = self.process();
        let child = process.running().ok_or(Error::NotRunning(self.addr))?;
        signal(child, libc::SIGSTOP)?;
        let pid = child.id();
        process.paused = true;
        // kill() only queues the signal: wait until every thread is really stopped, or a
        // request sent right after could still be served
        wait_all_threads_stopped(pid);
        Ok(())
    }

    /// Continues a JVM frozen by [`pause`](Self::pause) (SIGCONT).
    ///
    /// # Errors
    ///
    /// [`Error::NotRunning`] if the server is not running.
    pub fn resume(&self) -> Result<()> {
        if let Some(e) = &self.embedded {
            return e.resume();
        }
        let mut process = self.process();
        let child = process.running().ok_or(Error::NotRunning(self.addr))?;
        signal(child, libc::SIGCONT)?;
        process.paused = false;
        Ok(())
    }

    /// Sends a four-letter word (`srvr`, `stat`, `mntr`, `cons`, `wchc`, `wchp`, `dump`, ...) and
    /// returns the answer. Waits at most 5 s for it; see
    /// [`four_letter_timeout`](crate::four_letter_timeout) for another limit.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the server cannot be reached or does not answer in time.
    pub fn four_letter(&self, cmd: &str) -> Result<String> {
        four_letter_timeout(self.addr, cmd, FOUR_LETTER_TIMEOUT)
            .map_err(|e| Error::io(format!("four-letter word `{cmd}` to {}", self.addr), e))
    }

    /// The server's mode from `srvr`: `"standalone"`, `"leader"`, `"follower"`, `"observer"` or
    /// `"read-only"`.
    ///
    /// # Errors
    ///
    /// [`Error::NotRunning`] if stopped, [`Error::NotServing`] if it runs but does not serve
    /// (no quorum), [`Error::Io`] if it does not answer (for example while paused: after 5 s).
    pub fn mode(&self) -> Result<String> {
        self.mode_within(FOUR_LETTER_TIMEOUT)
    }

    /// [`mode`](Self::mode) without blocking the runtime.
    ///
    /// # Errors
    ///
    /// As [`mode`](Self::mode).
    pub async fn mode_async(&self) -> Result<String> {
        self.mode_within_async(FOUR_LETTER_TIMEOUT).await
    }

    pub(crate) fn mode_within(&self, timeout: Duration) -> Result<String> {
        crate::block_on(|| self.mode_within_async(timeout))
    }

    pub(crate) async fn mode_within_async(&self, timeout: Duration) -> Result<String> {
        if !self.is_running() {
            return Err(Error::NotRunning(self.addr));
        }
        let answer = four_letter_async(self.addr, "srvr", timeout)
            .await
            .map_err(|e| Error::io(format!("four-letter word `srvr` to {}", self.addr), e))?;
        parse_mode(&answer)
            .map(str::to_owned)
            .ok_or(Error::NotServing(self.addr))
    }

    /// Waits until [`mode`](Self::mode) equals `mode` (e.g. `"read-only"`, `"leader"`).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] naming the last observed mode.
    pub fn wait_for_mode(&self, mode: &str, timeout: Duration) -> Result<()> {
        crate::block_on(|| self.wait_for_mode_async(mode, timeout))
    }

    /// [`wait_for_mode`](Self::wait_for_mode) without blocking the runtime.
    ///
    /// # Errors
    ///
    /// As [`wait_for_mode`](Self::wait_for_mode).
    pub async fn wait_for_mode_async(&self, mode: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.mode_within_async(MODE_PROBE_TIMEOUT).await {
                Ok(current) if current == mode => return Ok(()),
                Ok(current) => format!("mode {current}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "{} did not reach mode {mode} within {timeout:?} (last: {last})",
                    self.addr
                )));
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// Cleanup at process exit for the shared server: kill, reap, remove the directory.
    fn cleanup_at_exit(&self) {
        if let Ok(mut process) = self.process.try_lock() {
            if let Some(child) = process.child.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
            process.child = None;
            let _ = fs::remove_dir_all(self.dir.path());
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        let process = self
            .process
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(child) = process.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `sig` to our own child (never to anything else).
/// Waits (at most 5 s) until every thread of `pid` is in the stopped state (`T`), as read from
/// `/proc/<pid>/task/*/stat`.
fn wait_all_threads_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let all_stopped = || -> bool {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return true; // gone, or no /proc: nothing to wait for
        };
        tasks.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    // "tid (comm) S ...": the state follows the last ')'
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.trim_start().chars().next()
                })
                .is_none_or(|state| state == 'T' || state == 't')
        })
    };
    while !all_stopped() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, sig: libc::c_int) -> Result<()> {
    let pid = libc::pid_t::try_from(child.id()).map_err(|_| {
        Error::io(
            "signalling ZooKeeper",
            std::io::ErrorKind::InvalidData.into(),
        )
    })?;
    // SAFETY: plain syscall; `pid` is our unreaped child, so it cannot name another process.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(Error::io(
            format!("sending signal {sig} to ZooKeeper (pid {pid})"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The value of the `Mode:` line of a `srvr`/`stat` answer.
pub(crate) fn parse_mode(answer: &str) -> Option<&str> {
    answer
        .lines()
        .find_map(|line| line.strip_prefix("Mode:"))
        .map(str::trim)
}

/// `n` distinct free ports on 127.0.0.1 (all bound at once, then released).
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io("picking a free port on 127.0.0.1", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io("picking a free port on 127.0.0.1", e))
}

/// The last 256 KiB of the log (lossily decoded), or a note why it cannot be read.
fn read_log_end(path: &Path) -> String {
    const MAX: u64 = 256 * 1024;
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

static SHARED: OnceLock<ZkServer> = OnceLock::new();
static SHARED_ZOOKEEPER: OnceLock<ZkServer> = OnceLock::new();

/// A standalone server shared by every test of this process, started on first use (default
/// settings), of the backend [`BACKEND_ENV`](crate::BACKEND_ENV) names.
///
/// Use it for tests that do not stop, kill, pause or restart the server — those need their own
/// [`ZkServer`]. Tests run in parallel against it, so each test should work below its own
/// chroot or path prefix (e.g. `/test-name-<random>`). The server lives until the process
/// exits; then it is killed and its directory removed. With the variable unset (or
/// `zookeeper`) it is the same server as [`shared_zookeeper`].
///
/// # Panics
///
/// If the server cannot be started (for example [`Error::MissingPackage`], or
/// [`Error::UnknownBackend`]); the panic message carries the error.
pub fn shared_server() -> &'static ZkServer {
    let backend = Backend::from_env()
        .unwrap_or_else(|e| panic!("zk-testkit: cannot start the shared server: {e}"));
    if backend == Backend::ZooKeeper {
        return shared_zookeeper();
    }
    shared_in(&SHARED, ZkServer::builder().backend(backend))
}

/// A real ZooKeeper shared by every test of this process whatever
/// [`BACKEND_ENV`](crate::BACKEND_ENV) says, for tests that need ZooKeeper itself (a test that
/// compares zk-server with it, for one); otherwise as [`shared_server`].
///
/// # Panics
///
/// As [`shared_server`].
pub fn shared_zookeeper() -> &'static ZkServer {
    shared_in(
        &SHARED_ZOOKEEPER,
        ZkServer::builder().backend(Backend::ZooKeeper),
    )
}

fn shared_in(cell: &'static OnceLock<ZkServer>, builder: ZkServerBuilder) -> &'static ZkServer {
    cell.get_or_init(|| {
        let server = builder
            .start()
            .unwrap_or_else(|e| panic!("zk-testkit: cannot start the shared server: {e}"));
        // SAFETY: registers a plain `extern "C" fn` without arguments (once per cell).
        unsafe { libc::atexit(cleanup_shared_server) };
        server
    })
}

extern "C" fn cleanup_shared_server() {
    // The JVM would die anyway (PR_SET_PDEATHSIG); this also removes its temporary directory.
    let _ = std::panic::catch_unwind(|| {
        for cell in [&SHARED, &SHARED_ZOOKEEPER] {
            if let Some(server) = cell.get() {
                server.cleanup_at_exit();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mode() {
        let srvr =
            "Zookeeper version: 3.8.0-x, built on 2024-12-29\nLatency min/avg/max: 0/0.0/0\n\
                    Received: 1\nSent: 0\nConnections: 1\nOutstanding: 0\nZxid: 0x0\n\
                    Mode: standalone\nNode count: 5\n";
        assert_eq!(parse_mode(srvr), Some("standalone"));
        assert_eq!(
            parse_mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }

    #[test]
    fn tails() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }

    #[test]
    fn free_ports_are_distinct() {
        let mut ports = free_ports(9).unwrap();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 9);
    }
}
