//! Helpers shared by the integration tests. Every test works below its own chroot on the
//! process-wide shared server, or on a server of its own when it restarts or kills it.
#![allow(dead_code)]

use std::time::Duration;
use zk_core::{Client, State};

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Captures the process-wide log in memory, for tests that read what was logged. Install it
/// once per test binary (`tracing_subscriber::fmt().with_writer(move || buf.clone())`).
#[derive(Clone, Default)]
pub struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuf {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A fresh, unique chroot path for one test.
pub fn unique_root(name: &str) -> String {
    format!("/t-{name}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates `root` on `connect_string` and returns a client chrooted into it.
pub async fn chroot_client(connect_string: &str, root: &str) -> Client {
    init_tracing();
    let admin = Client::connect(connect_string).await.expect("connect");
    admin.ensure_path(root).await.expect("create chroot");
    admin.close().await.unwrap();
    Client::builder(format!("{connect_string}{root}"))
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect with chroot")
}

/// A client on the shared server, chrooted into a fresh root for test `name`.
pub async fn shared(name: &str) -> Client {
    let server = zk_testkit::shared_server();
    chroot_client(&server.connect_string(), &unique_root(name)).await
}

/// Waits (bounded) for the client to reach `state`.
pub async fn wait_state(client: &Client, state: State, within: Duration) {
    client
        .wait_for_state(state, Some(within))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "state {state} not reached within {within:?}: {e}; now {:?}",
                client.status()
            )
        });
}

/// Awaits a future with a generous bound, so a bug shows as a failure rather than a hang.
pub async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still pending after 60 s"))
}

/// A fresh chroot on the shared server for test `name`, a direct client in it, and a fault
/// proxy in front of the server: `(proxy, direct, connect string through the proxy, chroot
/// included)`, for a client under test built with its own settings.
pub async fn behind_proxy(name: &str) -> (zk_testkit::FaultProxy, Client, String) {
    init_tracing();
    let server = zk_testkit::shared_server();
    let root = unique_root(name);
    let direct = chroot_client(&server.connect_string(), &root).await;
    let proxy = zk_testkit::FaultProxy::start(server.addr())
        .await
        .expect("start a fault proxy");
    let via = format!("{}{root}", proxy.connect_string());
    (proxy, direct, via)
}
