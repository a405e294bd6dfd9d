//! Helpers for the lock / semaphore / election tests.
#![allow(dead_code)]

use std::time::Duration;
use zk_core::{Client, State};

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
}

pub fn unique(name: &str) -> String {
    format!("/t-{name}-{}", uuid::Uuid::new_v4().simple())
}

/// A client on `hosts` (the shared server if `None`).
pub async fn client(hosts: Option<&str>) -> Client {
    init_tracing();
    let hosts = hosts
        .map(str::to_owned)
        .unwrap_or_else(|| zk_testkit::shared_server().connect_string());
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

pub async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still pending after 60 s"))
}

pub async fn wait_state(c: &Client, s: State) {
    c.wait_for_state(s, Some(Duration::from_secs(60)))
        .await
        .unwrap_or_else(|e| panic!("state {s} not reached: {e}"));
}

/// Children of `path` (empty if it does not exist), sorted.
pub async fn children(c: &Client, path: &str) -> Vec<String> {
    let mut v = match c.get_children(path).await {
        Ok(v) => v,
        Err(zk_core::Error::NoNode) => Vec::new(),
        Err(e) => panic!("{e}"),
    };
    v.sort();
    v
}

/// Waits (bounded) until `path` has no child starting with `prefix`.
pub async fn wait_no_child_with_prefix(c: &Client, path: &str, prefix: &str) {
    for _ in 0..600 {
        if !children(c, path)
            .await
            .iter()
            .any(|n| n.starts_with(prefix))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "a node with prefix {prefix} is still under {path}: {:?}",
        children(c, path).await
    );
}

/// Runs a Python (kazoo) helper script from `tests/interop/`, returning its child process.
pub fn python(script: &str, args: &[&str]) -> tokio::process::Child {
    let path = format!("{}/tests/interop/{script}", env!("CARGO_MANIFEST_DIR"));
    let check = std::process::Command::new("python3")
        .args(["-c", "import kazoo"])
        .status();
    assert!(
        matches!(check, Ok(s) if s.success()),
        "python3 with kazoo is required for the interop tests: run scripts/setup.sh"
    );
    tokio::process::Command::new("python3")
        .arg(path)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3")
}
