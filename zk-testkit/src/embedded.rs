//! The zk-server backend: which server a [`ZkServer`](crate::ZkServer) runs, and the in-process
//! zk-server behind one.
//!
//! The server runs in this process, on a current-thread tokio runtime in a thread of its own,
//! not as a child process: zk-server is a library, so nothing has to be found on disk (a test
//! of another crate has no `CARGO_BIN_EXE_zk-server`), and the thread gives what the kit's API
//! promises: the server keeps serving while the test's own runtime is busy or blocked, a stop
//! or kill closes every socket, and [`pause`](Embedded::pause) blocks that thread, which
//! freezes the whole server at once (sockets open, nothing answered), as SIGSTOP does to a JVM.

use std::io;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::settings::Settings;
use crate::{Error, Result};

/// The environment variable that picks the backend of [`ZkServer`](crate::ZkServer) and
/// [`shared_server`](crate::shared_server): `zookeeper` (the default) or `zk-server`.
pub const BACKEND_ENV: &str = "ZK_TESTKIT_BACKEND";

/// Which server a [`ZkServer`](crate::ZkServer) runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Apache ZooKeeper 3.8 (Debian's jars), one JVM per server: the default.
    ZooKeeper,
    /// The workspace's `zk-server`, in this process: no Java, starts in milliseconds.
    ZkServer,
}

impl Backend {
    /// The backend [`BACKEND_ENV`] names: unset or empty is [`Backend::ZooKeeper`].
    ///
    /// # Errors
    ///
    /// [`Error::UnknownBackend`] for any other value than `zookeeper` and `zk-server`, and for
    /// a value that is not Unicode.
    pub fn from_env() -> Result<Backend> {
        match std::env::var(BACKEND_ENV) {
            Ok(value) => Backend::parse(&value),
            Err(std::env::VarError::NotPresent) => Ok(Backend::ZooKeeper),
            Err(std::env::VarError::NotUnicode(value)) => {
                Err(Error::UnknownBackend(value.to_string_lossy().into_owned()))
            }
        }
    }

    /// `zookeeper` or `zk-server` (surrounding blanks ignored; empty is `zookeeper`).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownBackend`] for anything else.
    pub fn parse(value: &str) -> Result<Backend> {
        match value.trim() {
            "" | "zookeeper" => Ok(Backend::ZooKeeper),
            "zk-server" => Ok(Backend::ZkServer),
            other => Err(Error::UnknownBackend(other.to_owned())),
        }
    }

    /// The name [`parse`](Self::parse) takes: `"zookeeper"` or `"zk-server"`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::ZooKeeper => "zookeeper",
            Backend::ZkServer => "zk-server",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a builder asked for: the backend it gets, and why when it is real ZooKeeper whatever
/// the variable says.
#[derive(Clone, Debug, Default)]
pub(crate) struct Choice {
    /// [`Backend::ZkServer`] asked for by the builder (overrides the variable).
    pub(crate) explicit: Option<Backend>,
    /// `real_zookeeper(reason)`.
    pub(crate) real_reason: Option<&'static str>,
}

impl Choice {
    /// The backend for these settings. `needs_real` names what only ZooKeeper can do (TLS,
    /// SASL, ...), if the builder asked for any of it. The variable is read (and an unknown value
    /// refused) whatever the builder says.
    pub(crate) fn resolve(&self, env: Backend, needs_real: Option<String>) -> (Backend, String) {
        if let Some(what) = needs_real {
            return (Backend::ZooKeeper, what);
        }
        if let Some(reason) = self.real_reason {
            return (Backend::ZooKeeper, reason.to_owned());
        }
        if let Some(b) = self.explicit {
            return (b, "asked for by the builder".to_owned());
        }
        (env, format!("{BACKEND_ENV}={env}"))
    }
}

/// What in `settings` zk-server does not model, if anything: such a server is a real ZooKeeper.
pub(crate) fn unmodelled(settings: &Settings) -> Option<String> {
    if settings.four_letter_whitelist.trim() != "*" {
        return Some("a four-letter-word whitelist (zk-server answers every word)".into());
    }
    if let Some((key, _)) = settings.cfg.first() {
        return Some(format!("the zoo.cfg line `{key}`"));
    }
    settings
        .jvm_props
        .iter()
        .find(|(key, _)| key != CONTAINER_CHECK_PROP)
        .map(|(key, _)| format!("the JVM property `{key}`"))
}

const CONTAINER_CHECK_PROP: &str = "znode.container.checkIntervalMs";

/// zk-server's builder for `settings`, in memory when `data_dir` is `None`.
pub(crate) fn server_builder(settings: &Settings, data_dir: PathBuf) -> zk_server::ServerBuilder {
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    let mut b = zk_server::Server::builder()
        .tick_time(ms(settings.tick_time))
        .extended_types(settings.extended_types)
        // forceSync=no, as the kit's ZooKeeper: every change is written before its reply
        .data_dir(data_dir)
        .fsync(false);
    if let Some(v) = settings.min_session_timeout {
        b = b.min_session_timeout(ms(v));
    }
    if let Some(v) = settings.max_session_timeout {
        b = b.max_session_timeout(ms(v));
    }
    if let Some(v) = settings
        .jvm_props
        .iter()
        .rev()
        .find(|(key, _)| key == CONTAINER_CHECK_PROP)
        .and_then(|(_, v)| v.parse::<u64>().ok())
    {
        b = b.container_check_interval(Duration::from_millis(v.max(1)));
    }
    b
}

/// A zk-server serving on a runtime thread of its own.
#[derive(Debug)]
pub(crate) struct Embedded {
    /// Declared before the runtime: dropped while the runtime still exists.
    server: Arc<zk_server::Server>,
    state: Mutex<State>,
    rt: RuntimeThread,
}

#[derive(Debug)]
struct State {
    running: bool,
    /// While paused: dropping it lets the blocked runtime thread go on.
    paused: Option<mpsc::Sender<()>>,
}

/// A current-thread runtime driven by a thread of its own until dropped.
#[derive(Debug)]
struct RuntimeThread {
    handle: tokio::runtime::Handle,
    /// Ends the thread's `block_on`; the runtime's drop then ends every task and closes every
    /// socket.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeThread {
    async fn start() -> Result<RuntimeThread> {
        let (handle_tx, handle_rx) = tokio::sync::oneshot::channel();
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("zk-testkit-zk-server".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                let _ = rt.block_on(shutdown_rx);
            })
            .map_err(|e| Error::io("starting zk-server's thread", e))?;
        // if this future is dropped here, `shutdown` goes with it and the thread ends
        let handle = match handle_rx.await {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => return Err(Error::io("building zk-server's runtime", e)),
            Err(_) => {
                return Err(Error::io(
                    "building zk-server's runtime",
                    io::Error::other("its thread ended"),
                ))
            }
        };
        let rt = RuntimeThread {
            handle,
            shutdown: Some(shutdown),
            thread: Some(thread),
        };
        Ok(rt)
    }

    /// Runs `f` on the server's runtime and awaits it from the caller's.
    async fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        self.handle.spawn(f).await.map_err(|e| {
            Error::io(
                "running on zk-server's runtime",
                io::Error::other(e.to_string()),
            )
        })
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // never join ourselves (a drop on the server's own runtime): the thread ends anyway
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// How long [`Embedded::pause`] waits for the runtime thread to block.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(30);

impl Embedded {
    /// Starts the runtime thread and the server on it.
    pub(crate) async fn start(builder: zk_server::ServerBuilder) -> Result<Embedded> {
        let rt = RuntimeThread::start().await?;
        let server = rt
            .run(builder.start())
            .await?
            .map_err(|e| Error::io("starting zk-server", e))?;
        Ok(Embedded {
            server: Arc::new(server),
            state: Mutex::new(State {
                running: true,
                paused: None,
            }),
            rt,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The server itself (its test hooks: sessions, expiry, ...).
    pub(crate) fn server(&self) -> &zk_server::Server {
        &self.server
    }

    pub(crate) fn is_running(&self) -> bool {
        self.state().running
    }

    pub(crate) fn is_paused(&self) -> bool {
        let state = self.state();
        state.running && state.paused.is_some()
    }

    /// Stops serving (a paused server is resumed first): the listener and every connection
    /// are closed; the tree and the sessions stay in the data dir.
    pub(crate) async fn stop(&self) -> Result<()> {
        {
            let mut state = self.state();
            if !state.running {
                return Ok(());
            }
            state.paused = None;
        }
        let server = self.server.clone();
        self.rt.run(async move { server.stop().await }).await?;
        self.state().running = false;
        Ok(())
    }

    /// Serves again on the same port, loading the data dir.
    pub(crate) async fn start_again(&self) -> Result<()> {
        if self.state().running {
            return Err(Error::AlreadyRunning(self.server.addr()));
        }
        let server = self.server.clone();
        let addr = server.addr();
        self.rt
            .run(async move { server.restart().await })
            .await?
            .map_err(|e| Error::io(format!("starting zk-server again on {addr}"), e))?;
        self.state().running = true;
        Ok(())
    }

    /// Blocks the server's runtime thread until [`resume`](Self::resume): every task of the
    /// server (accept loop, connections, session and container timers) stands still.
    pub(crate) fn pause(&self) -> Result<()> {
        let mut state = self.state();
        if !state.running {
            return Err(Error::NotRunning(self.server.addr()));
        }
        if state.paused.is_some() {
            return Ok(());
        }
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let (resume_tx, resume_rx) = mpsc::channel::<()>();
        self.rt.handle.spawn(async move {
            let _ = entered_tx.send(());
            // blocks the runtime's only thread: nothing else of the server runs meanwhile
            let _ = resume_rx.recv();
        });
        entered_rx.recv_timeout(PAUSE_TIMEOUT).map_err(|_| {
            Error::Timeout(format!(
                "zk-server's runtime thread did not stop within {PAUSE_TIMEOUT:?}"
            ))
        })?;
        state.paused = Some(resume_tx);
        Ok(())
    }

    pub(crate) fn resume(&self) -> Result<()> {
        let mut state = self.state();
        if !state.running {
            return Err(Error::NotRunning(self.server.addr()));
        }
        state.paused = None;
        Ok(())
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        // a paused runtime thread could not end
        self.state().paused = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse_and_anything_else_is_an_error() {
        assert_eq!(Backend::parse("zk-server").unwrap(), Backend::ZkServer);
        assert_eq!(Backend::parse(" zookeeper ").unwrap(), Backend::ZooKeeper);
        assert_eq!(Backend::parse("").unwrap(), Backend::ZooKeeper);
        for bad in ["zkserver", "ZooKeeper", "zk_server", "1"] {
            let err = Backend::parse(bad).unwrap_err();
            assert!(
                matches!(&err, Error::UnknownBackend(v) if v == bad),
                "{err}"
            );
            let text = err.to_string();
            assert!(
                text.contains(BACKEND_ENV) && text.contains("zk-server") && text.contains(bad),
                "{text}"
            );
        }
        for b in [Backend::ZooKeeper, Backend::ZkServer] {
            assert_eq!(Backend::parse(b.name()).unwrap(), b);
        }
    }

    #[test]
    fn what_zk_server_does_not_model_is_named() {
        assert_eq!(unmodelled(&Settings::default()), None);
        let whitelist = Settings {
            four_letter_whitelist: "srvr".into(),
            ..Settings::default()
        };
        assert!(unmodelled(&whitelist).unwrap().contains("whitelist"));
        let cfg = Settings {
            cfg: vec![("snapCount".into(), "10".into())],
            ..Settings::default()
        };
        assert!(unmodelled(&cfg).unwrap().contains("snapCount"));
        let mut prop = Settings::default();
        prop.jvm_props.push(("jute.maxbuffer".into(), "10".into()));
        assert!(unmodelled(&prop).unwrap().contains("jute.maxbuffer"));
    }

    #[test]
    fn real_zookeeper_wins_over_the_variable_and_the_builder() {
        let env = Backend::ZkServer;
        let plain = Choice::default();
        assert_eq!(plain.resolve(env, None).0, Backend::ZkServer);
        assert_eq!(
            plain.resolve(Backend::ZooKeeper, None).0,
            Backend::ZooKeeper
        );
        let explicit = Choice {
            explicit: Some(Backend::ZkServer),
            real_reason: None,
        };
        assert_eq!(
            explicit.resolve(Backend::ZooKeeper, None).0,
            Backend::ZkServer
        );
        assert_eq!(
            explicit.resolve(env, Some("TLS".into())),
            (Backend::ZooKeeper, "TLS".to_owned())
        );
        let real = Choice {
            explicit: Some(Backend::ZkServer),
            real_reason: Some("needs the JVM's log"),
        };
        assert_eq!(
            real.resolve(env, None),
            (Backend::ZooKeeper, "needs the JVM's log".to_owned())
        );
    }
}
