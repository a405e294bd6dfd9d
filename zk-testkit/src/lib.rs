//! Real Apache ZooKeeper servers for tests: a standalone [`ZkServer`], an N-node [`Ensemble`],
//! a fault-injecting TCP [`FaultProxy`] and a few raw wire helpers ([`expire_session`],
//! [`four_letter`]).
//!
//! The kit runs the ZooKeeper installed by Debian's `zookeeper` package (3.8) on loopback, one
//! JVM per server, each in its own temporary directory on a random free port. Nothing is mocked:
//! what a test sees is what a client sees in production.
//!
//! # Requirements
//!
//! * a Java runtime (Debian 12 ships OpenJDK 17) — `apt-get update && apt-get install -y default-jre-headless`
//! * the ZooKeeper jars in `/usr/share/java` — `apt-get update && apt-get install -y zookeeper`
//! * for [`Kdc`] (Kerberos tests) only: MIT Kerberos' KDC and tools — [`INSTALL_KRB5`]
//!
//! If either is missing, starting a server fails with [`Error::MissingPackage`] whose message names
//! the command to run and every place the kit looked; tests never silently skip. The jars are
//! looked for in `$ZOOKEEPER_HOME/lib` (an unpacked Apache release), Debian's `/usr/share/java`,
//! Homebrew's `/opt/homebrew/opt/zookeeper/libexec/lib` and `/usr/local/opt/zookeeper/libexec/lib`,
//! and `/opt/zookeeper/lib`, in that order. Override the locations with the environment
//! variables `ZK_TESTKIT_JAVA` (path of the `java` binary) and `ZK_TESTKIT_JAR_DIR` (a directory
//! laid out like Debian's `/usr/share/java` or a release's `lib/`; then only it is searched).
//!
//! # Backends: real ZooKeeper or zk-server
//!
//! [`ZkServer`] (and [`shared_server`]) run real ZooKeeper by default. With the environment
//! variable [`BACKEND_ENV`] set to `zk-server` (`ZK_TESTKIT_BACKEND=zk-server cargo test`)
//! they run the workspace's `zk-server` instead: in this process, on a runtime thread of its
//! own, no Java, started in milliseconds, behind the same handle (connect string, stop, kill,
//! restart on the same port with the same data and sessions, pause / resume, four-letter words,
//! mode `standalone`, a data dir). `zookeeper` (or unset, or empty) is real ZooKeeper; any
//! other value is an error ([`Error::UnknownBackend`]), never a silent default.
//! [`ZkServerBuilder::backend`] picks one for a single server, [`ZkServer::backend`] says
//! which one runs, [`ZkServer::zk_server`] gives zk-server's own test hooks, and
//! [`shared_zookeeper`] is a shared real ZooKeeper whatever the variable says.
//!
//! **What only a real server can test** uses real ZooKeeper whatever the variable says:
//! TLS ([`ZkServerBuilder::tls`]), SASL ([`ZkServerBuilder::sasl_digest_users`]), Kerberos
//! ([`ZkServerBuilder::sasl_kerberos`]), a four-letter-word whitelist, extra `zoo.cfg` lines
//! and JVM properties ([`ZkServerBuilder::cfg`], [`ZkServerBuilder::jvm_prop`]), and every
//! [`Ensemble`]: quorums, leader election, partitions, reconfiguration, read-only mode. A test
//! that needs ZooKeeper for another reason says so with
//! [`ZkServerBuilder::real_zookeeper`]`("why, in a line")`. Differences a client can see:
//! zk-server has no pid ([`ZkServer::pid`] is `None`), a kill closes the sockets as a stop
//! does, its log goes to this process's `tracing` subscriber, and the rest is listed in the
//! workspace's `docs/zk-server.md` (known divergences).
//!
//! # Example
//!
//! In an async test (a plain `#[tokio::test]`, current-thread, works):
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_testkit::{Ensemble, FaultProxy, ZkServer};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // One standalone server with a fast tick (sessions may time out after 1 s).
//! let server = ZkServer::builder().tick_time(500).start_async().await?;
//! assert_eq!(server.mode()?, "standalone");
//! let connect_string = server.connect_string(); // "127.0.0.1:PORT"
//!
//! // Put a proxy in front of it and misbehave.
//! let proxy = FaultProxy::start(server.addr()).await?;
//! // ... connect your client to proxy.connect_string() ...
//! proxy.blackhole(); // silence, sockets stay open
//! proxy.heal();
//! proxy.reset(); // RST every current connection
//! // the next create is applied, but its reply never arrives; zk-core sends a create as
//! // create2 (opcode 15), not create (1), which it never uses
//! proxy.cut_after_request(15);
//!
//! // Restart on the same port and data directory; the client keeps running meanwhile.
//! server.restart_async().await?;
//!
//! // Three nodes; kill the leader and wait for a new one.
//! let ensemble = Ensemble::start_async(3).await?;
//! let leader = ensemble.leader().expect("a leader");
//! ensemble.kill_async(leader).await?;
//! let new_leader = ensemble.wait_for_quorum_async(Duration::from_secs(10)).await?;
//! assert_ne!(leader, new_leader);
//! ensemble.restart_async(leader).await?;
//! # let _ = connect_string;
//! # Ok(())
//! # }
//! ```
//!
//! The same without a runtime (a plain `#[test]`), with the blocking methods:
//!
//! ```no_run
//! use zk_testkit::ZkServer;
//!
//! let server = ZkServer::start()?;
//! server.restart()?;
//! assert_eq!(server.mode()?, "standalone");
//! # Ok::<(), zk_testkit::Error>(())
//! ```
//!
//! # Behavior
//!
//! * **Blocking.** The [`ZkServer`] and [`Ensemble`] methods that wait for the server (start,
//!   stop, kill, restart, modes, leader, quorum) have an `_async` twin —
//!   [`ZkServerBuilder::start_async`], [`ZkServer::start_async`], [`ZkServer::stop_async`],
//!   [`ZkServer::kill_async`], [`ZkServer::restart_async`], [`ZkServer::start_again_async`],
//!   [`ZkServer::mode_async`], [`ZkServer::wait_for_mode_async`], [`EnsembleBuilder::start_async`],
//!   [`Ensemble::start_async`], [`Ensemble::stop_async`], [`Ensemble::kill_async`],
//!   [`Ensemble::restart_async`], [`Ensemble::leader_async`], [`Ensemble::wait_for_mode_async`],
//!   [`Ensemble::wait_for_quorum_async`] — that never blocks a runtime thread: it polls with tokio timers and async TCP
//!   probes, so it works on a current-thread runtime (a plain `#[tokio::test]`), and a client on
//!   the same runtime keeps running (and reconnecting) while a server restarts. Use those from
//!   async tests; no `spawn_blocking` or `block_in_place` is needed. What they do on the calling
//!   thread without awaiting is brief: writing config files, forking the JVM, sending signals.
//!   [`ZkServer::pause`] (which waits a few milliseconds until every JVM thread is stopped),
//!   and [`ZkServer::four_letter`] have no async twin; [`four_letter_async`] sends a
//!   four-letter word without blocking.
//!   The blocking methods run the same async code on a private current-thread runtime in a
//!   thread of their own, so they work anywhere: outside a runtime, and inside one too — but
//!   there they block the calling thread (a start takes about 1 s, an ensemble 2–3 s), which
//!   on a current-thread runtime stalls every task of it, your client included.
//!   [`FaultProxy`] and [`expire_session`] are async and run on the current tokio runtime.
//! * **Cancellation.** Dropping an `_async` future midway never orphans a JVM: a JVM is stored
//!   in its [`ZkServer`] before the first await, so the server (or a dropped, unfinished start's
//!   server) still holds it and stops it by its pid when dropped or stopped. A dropped restart
//!   can leave the server stopped or starting; call [`ZkServer::restart_async`] again to bring it
//!   back.
//! * **Readiness.** A server is ready when the `srvr` four-letter word answers with a `Mode:` line
//!   (`ruok` answers before the server serves). An ensemble is ready when every member is leader or
//!   follower.
//! * **Cleanup.** Dropping a server SIGKILLs its JVM, reaps it and removes its temporary
//!   directory. The JVMs are also started with `PR_SET_PDEATHSIG = SIGKILL` from one dedicated,
//!   never-exiting thread, so they die with the test process even if it aborts.
//! * **Signals.** The kit only ever signals the processes it started (by their pid, while it still
//!   holds the unreaped child, so the pid cannot have been reused).
//! * **Sharing.** [`shared_server`] gives one lazily started server per test process, for tests
//!   that do not stop or kill it. Tests sharing it should each work below their own chroot or path
//!   prefix.
//! * **Faults.** [`FaultProxy::blackhole`] *holds* traffic (the proxy stops reading) rather than
//!   dropping it: the client sees silence, and after [`FaultProxy::heal`] held bytes are delivered
//!   late but intact. [`FaultProxy::reset`] and [`FaultProxy::cut_after_request`] abort
//!   connections with a TCP RST on both sides.
//! * **Partitions.** An ensemble built with [`EnsembleBuilder::partitionable`] routes every
//!   member-to-member connection through links it controls (each member has its own view of
//!   its peers' quorum and election ports); [`Ensemble::partition`] / [`Ensemble::isolate`] cut
//!   them (open connections are shut down, new ones closed at once) and
//!   [`Ensemble::heal_partition`] restores them. Client ports stay reachable, so a client of a
//!   minority member sees it stop serving.
//! * **Reconfiguration.** An ensemble built with [`EnsembleBuilder::reconfig_enabled`] runs with
//!   `reconfigEnabled=true` and server lines in the dynamic form (with client addresses), which
//!   ZooKeeper moves into a `zoo.cfg.dynamic.<version>` file; [`EnsembleBuilder::super_user`]
//!   adds a superuser ([`SUPER_USER`]) for reconfig's ACL check, and [`Ensemble::server_spec`]
//!   gives the line a member joins back with.
//! * **Defaults.** `tickTime=2000` (so session timeouts are clamped into 4 s..40 s),
//!   `4lw.commands.whitelist=*`, `extendedTypesEnabled=true` (TTL nodes), `admin.enableServer=false`,
//!   `forceSync=no`, `maxClientCnxns=0` (unlimited), and `-Dznode.container.checkIntervalMs=1000`
//!   (containers and TTL nodes are reaped within about a second).
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

mod embedded;
mod ensemble;
mod install;
mod kdc;
mod links;
mod proxy;
mod server;
mod settings;
mod spawner;
pub mod tls;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use embedded::{Backend, BACKEND_ENV};
pub use ensemble::{Ensemble, EnsembleBuilder, SUPER_USER};
pub use install::java_classpath;
pub use kdc::{Kdc, INSTALL_KRB5, REALM, SERVICE_PRINCIPAL};
pub use proxy::{CutTrap, FaultProxy};
pub use server::{shared_server, shared_zookeeper, ZkServer, ZkServerBuilder};
pub use tls::{ClientAuth, TlsFiles, TlsOptions};
pub use wire::{expire_session, four_letter, four_letter_async, four_letter_timeout};

/// The command that installs the ZooKeeper server on Debian/Ubuntu.
pub const INSTALL_ZOOKEEPER: &str = "apt-get update && apt-get install -y zookeeper";

/// The command that installs a Java runtime on Debian/Ubuntu.
pub const INSTALL_JAVA: &str = "apt-get update && apt-get install -y default-jre-headless";

/// Errors returned by the kit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Java or the ZooKeeper jars are not installed. The message names the command that fixes it
    /// ([`INSTALL_ZOOKEEPER`] or [`INSTALL_JAVA`]).
    #[error("{0}")]
    MissingPackage(String),

    /// An I/O operation of the kit itself failed (temporary directory, config files, spawning).
    #[error("{context}: {source}")]
    Io {
        /// What the kit was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// [`BACKEND_ENV`] names no backend: it must be `zookeeper` (the default) or `zk-server`.
    #[error(
        "{BACKEND_ENV}={0:?} names no backend: use `zookeeper` (real ZooKeeper, the default) or `zk-server`"
    )]
    UnknownBackend(String),

    /// A server did not become ready: its JVM exited or the startup timeout elapsed.
    #[error("{message}\n--- last lines of {} ---\n{log_tail}", log_path.display())]
    Startup {
        /// What went wrong.
        message: String,
        /// The server's log file.
        log_path: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },

    /// The server answered `srvr` without a `Mode:` line: it is up but not serving requests
    /// (for example an ensemble member without quorum).
    #[error("ZooKeeper at {0} is not currently serving requests")]
    NotServing(SocketAddr),

    /// The operation needs a running server, but it is stopped.
    #[error("ZooKeeper at {0} is not running")]
    NotRunning(SocketAddr),

    /// `start_again` was called on a server that is still running.
    #[error("ZooKeeper at {0} is already running")]
    AlreadyRunning(SocketAddr),

    /// Waiting for a condition (quorum, mode) timed out.
    #[error("timed out: {0}")]
    Timeout(String),

    /// [`expire_session`]: the server does not know the session (unknown, already expired, or
    /// the password is wrong): it answered the re-attach with a timeout of 0.
    #[error(
        "session {session_id:#x} is not known to {server} (expired, closed, or a wrong password)"
    )]
    SessionNotFound {
        /// The session id given.
        session_id: i64,
        /// The server asked.
        server: SocketAddr,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Runs the future that `make` builds to completion on a private current-thread runtime, in a
/// scoped thread of its own: the blocking methods are their async counterparts run this way, so
/// they work from anywhere, inside a runtime too (which they then block, as any blocking call).
pub(crate) fn block_on<F, Fut>(make: F) -> Fut::Output
where
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future,
    Fut::Output: Send,
{
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("zk-testkit-block-on".into())
            .spawn_scoped(scope, || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("zk-testkit: cannot build a current-thread tokio runtime")
                    .block_on(make())
            })
            .expect("zk-testkit: cannot start a thread");
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `Result` with the kit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
