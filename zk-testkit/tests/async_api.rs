//! The async API on a current-thread runtime (the default `#[tokio::test]`), the blocking API
//! from inside and outside a runtime, and cancellation of the async methods.

use std::path::Path;
use std::time::Duration;

use zk_core::{Client, CreateMode, State};
use zk_testkit::{Ensemble, ZkServer};

/// Generous bound for anything awaited here.
const BOUND: Duration = Duration::from_secs(90);

async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still pending after {BOUND:?}"))
}

/// A client whose session should outlive restarts, and a node it created.
struct Session {
    client: Client,
    session_id: i64,
    path: String,
}

impl Session {
    /// Connects with a session that outlives a restart (the server clamps the timeout to its
    /// maximum) and creates a node.
    async fn open(hosts: &str, name: &str) -> Session {
        let client = Client::builder(hosts)
            .session_timeout(Duration::from_secs(120))
            .connect()
            .await
            .expect("connect");
        let path = unique(name);
        client
            .create(&path, b"v", CreateMode::Persistent)
            .await
            .unwrap();
        Session {
            session_id: client.session_id(),
            client,
            path,
        }
    }

    /// The client is connected again, with the same session, and reads its node.
    async fn assert_survived(&self, what: &str) {
        self.client
            .wait_for_state(State::Connected, Some(BOUND))
            .await
            .unwrap_or_else(|e| panic!("connected again after {what}: {e}"));
        let (data, _) = bounded(what, self.client.get_data(&self.path))
            .await
            .unwrap();
        assert_eq!(data, b"v");
        assert_eq!(
            self.client.session_id(),
            self.session_id,
            "the session survived {what}"
        );
    }
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("/{name}-{}-{nanos}", std::process::id())
}

#[test]
fn async_methods_return_send_futures() {
    fn send<T: Send>(_: &T) {}
    let builder = ZkServer::builder();
    send(&builder.clone().start_async());
    send(&Ensemble::builder().start_async());
    // the `&self` methods, on a server that is never started
    fn by_ref(server: &ZkServer, ensemble: &Ensemble) {
        send(&server.restart_async());
        send(&server.stop_async());
        send(&server.kill_async());
        send(&server.start_again_async());
        send(&ensemble.restart_async(0));
        send(&ensemble.wait_for_quorum_async(Duration::ZERO));
    }
    let _ = by_ref;
}

#[tokio::test]
async fn server_restarts_async_on_a_current_thread_runtime_and_the_session_survives() {
    let server = bounded(
        "start",
        ZkServer::builder()
            .real_zookeeper("the JVM: a restart gets a new process id")
            .max_session_timeout(120_000)
            .start_async(),
    )
    .await
    .unwrap();
    let session = Session::open(&server.connect_string(), "async-restart").await;
    let first_pid = server.pid().unwrap();

    bounded("restart_async", server.restart_async())
        .await
        .unwrap();
    assert_ne!(server.pid(), Some(first_pid));
    assert_eq!(server.mode_async().await.unwrap(), "standalone");
    session.assert_survived("restart_async").await;

    bounded("kill_async", server.kill_async()).await.unwrap();
    assert!(!server.is_running());
    bounded("start_again_async", server.start_again_async())
        .await
        .unwrap();
    session
        .assert_survived("kill_async and start_again_async")
        .await;

    bounded("stop_async", server.stop_async()).await.unwrap();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    server.stop_async().await.unwrap(); // idempotent
}

#[tokio::test]
async fn ensemble_restarts_a_member_async_on_a_current_thread_runtime() {
    let ensemble = bounded(
        "start",
        Ensemble::builder()
            .max_session_timeout(120_000)
            .start_async(),
    )
    .await
    .unwrap();
    let session = Session::open(&ensemble.connect_string(), "async-ensemble").await;

    let leader = bounded("quorum", ensemble.wait_for_quorum_async(BOUND))
        .await
        .unwrap();
    bounded("restart the leader", ensemble.restart_async(leader))
        .await
        .unwrap();
    bounded("quorum again", ensemble.wait_for_quorum_async(BOUND))
        .await
        .unwrap();
    assert!(ensemble.member(leader).is_running());
    assert!(bounded("leader", ensemble.leader_async()).await.is_some());
    session.assert_survived("restarting the leader").await;
}

/// The blocking methods used from a multi-thread runtime's worker.
#[tokio::test(flavor = "multi_thread")]
async fn blocking_api_works_inside_a_multi_thread_runtime() {
    let server = ZkServer::start().unwrap();
    assert_eq!(server.mode().unwrap(), "standalone");
    server.restart().unwrap();
    server.wait_for_mode("standalone", BOUND).unwrap();
    server.stop().unwrap();
    assert!(!server.is_running());
}

/// The blocking methods from a current-thread runtime (they block it, but work).
#[tokio::test]
async fn blocking_api_works_inside_a_current_thread_runtime() {
    let server = ZkServer::start().unwrap();
    server.kill().unwrap();
    server.start_again().unwrap();
    assert_eq!(server.mode().unwrap(), "standalone");
}

#[test]
fn blocking_api_works_outside_any_runtime() {
    let server = ZkServer::start().unwrap();
    assert_eq!(server.mode().unwrap(), "standalone");
    server.restart().unwrap();
    server.kill().unwrap();
    server.start_again().unwrap();
    server.stop().unwrap();
    assert!(!server.is_running());
}

/// Processes whose parent is this test process and whose command line names `config`.
fn jvms_of(config: &Path) -> Vec<u32> {
    let me = std::process::id();
    let config = config.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) S ppid ...": the parent follows the state after the last ')'
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(me) && String::from_utf8_lossy(&cmdline).contains(config)
        })
        .collect()
}

#[tokio::test]
async fn dropping_restart_async_midway_leaves_no_orphan_jvm() {
    let server = ZkServer::builder()
        .real_zookeeper("the JVM: no orphan process after a dropped restart")
        .start_async()
        .await
        .unwrap();
    let config = server.config_path().to_owned();
    let mut seen = vec![server.pid().unwrap()];
    // drop the restart at ever later points: while stopping, right after the launch, while
    // waiting for the new JVM to serve
    for ms in [0, 5, 20, 50, 100, 200, 400, 800, 1600] {
        let outcome = tokio::time::timeout(Duration::from_millis(ms), server.restart_async()).await;
        // the server's pid first: the JVM a dropped stop signalled may exit (and then no
        // longer shows its command line) right after, never the other way round
        let pid = server.pid();
        seen.extend(pid);
        let strays: Vec<u32> = jvms_of(&config)
            .into_iter()
            .filter(|jvm| Some(*jvm) != pid)
            .collect();
        assert!(
            strays.is_empty(),
            "after dropping restart_async at {ms} ms ({outcome:?}): JVMs {strays:?} of this \
             server are not the one it holds ({pid:?})"
        );
        // whatever was left, the server can be brought back
        bounded("restart after a drop", server.restart_async())
            .await
            .unwrap();
        seen.extend(server.pid());
    }
    drop(server);
    assert_eq!(
        jvms_of(&config),
        Vec::<u32>::new(),
        "JVMs left after the drop"
    );
    for pid in seen {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists (orphan or unreaped) after the server was dropped"
        );
    }
}
