//! Helpers shared by the zk-recipes integration tests.
#![allow(dead_code)]

pub mod critical;
pub mod tree_view;

use std::future::Future;
use std::time::Duration;
use zk_core::{Client, Error, State};

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A path prefix no other test (or earlier run) uses.
pub fn unique(name: &str) -> String {
    format!("/t-{name}-{}", uuid::Uuid::new_v4().simple())
}

/// A client on `hosts` with a 10 s session timeout.
pub async fn client(hosts: &str) -> Client {
    init_tracing();
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

/// A client with the longest session the test kit's servers grant (40 s: 20 ticks), for tests
/// whose client must keep its session through a server restart: a restart on a loaded machine
/// can take longer than [`client`]'s 10 s.
pub async fn long_session_client(hosts: &str) -> Client {
    init_tracing();
    Client::builder(hosts)
        // the server clamps it to its maximum: 40 s by default, 120 s on `restartable_server`
        .session_timeout(Duration::from_secs(120))
        .connect()
        .await
        .expect("connect")
}

/// A server for tests whose sessions must outlive a restart of it: it grants sessions of up to
/// 120 s, since a restart on a loaded machine was seen to take longer than the default 40 s
/// maximum (the client then gives its session up).
pub async fn restartable_server() -> zk_testkit::ZkServer {
    zk_testkit::ZkServer::builder()
        .max_session_timeout(120_000)
        .start_async()
        .await
        .expect("start a server")
}

/// A client on the process-wide shared server.
pub async fn shared_client() -> Client {
    client(&zk_testkit::shared_server().connect_string()).await
}

/// Awaits `f`, failing the test after 60 s instead of hanging.
pub async fn bounded<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still pending after 60 s"))
}

/// Waits (bounded) until `c` is in `state`.
pub async fn wait_state(c: &Client, state: State) {
    c.wait_for_state(state, Some(Duration::from_secs(60)))
        .await
        .unwrap_or_else(|e| panic!("state {state} not reached: {e}; now {:?}", c.status()));
}

/// Polls `cond` every 20 ms until it holds; panics after 30 s.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < end,
            "{what}: not true after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sorted children of `path` (empty if it does not exist).
pub async fn children(c: &Client, path: &str) -> Vec<String> {
    let mut v = match c.get_children(path).await {
        Ok(v) => v,
        Err(Error::NoNode) => Vec::new(),
        Err(e) => panic!("get_children {path}: {e}"),
    };
    v.sort();
    v
}

/// Waits (bounded) until the server lists a watch on `path` (four-letter word `wchp`), i.e.
/// a waiter has really armed its watch.
pub async fn wait_watched(addr: std::net::SocketAddr, path: &str) {
    let p = path.to_owned();
    eventually(&format!("a watch on {path}"), || {
        let p = p.clone();
        async move {
            zk_testkit::four_letter_async(addr, "wchp", Duration::from_secs(5))
                .await
                .map(|out| out.lines().any(|l| l.trim() == p))
                .unwrap_or(false)
        }
    })
    .await;
}

/// The `tests/interop/` script `name`, checking first that python3 can import kazoo.
pub fn interop_script(name: &str) -> String {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import kazoo"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 with kazoo is required for the interop tests: run scripts/setup.sh"
    );
    format!("{}/tests/interop/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Starts `python3 <script> <args>` with piped stdin/stdout; killed when dropped.
pub fn python(script: &str, args: &[&str]) -> tokio::process::Child {
    let path = interop_script(script);
    tokio::process::Command::new("python3")
        .arg(path)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3")
}

/// Runs `python3 <script> <args>` to completion (bounded); returns its stdout, failing the
/// test if it exits non-zero.
pub async fn python_run(script: &str, args: &[&str]) -> String {
    let child = python(script, args);
    let out = bounded(script, child.wait_with_output())
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}); stdout:\n{stdout}",
        out.status
    );
    stdout
}

/// Waits (bounded) until `path` has no child starting with `prefix`.
pub async fn wait_no_child_with_prefix(c: &Client, path: &str, prefix: &str) {
    let (c2, p2, pre) = (c.clone(), path.to_owned(), prefix.to_owned());
    eventually(
        &format!("no child of {path} starting with {prefix:?}"),
        || {
            let (c, p, pre) = (c2.clone(), p2.clone(), pre.clone());
            async move { !children(&c, &p).await.iter().any(|n| n.starts_with(&pre)) }
        },
    )
    .await;
}
