//! zk-server's data dir through zk-core: data, stats, ACLs, sequence counters and sessions
//! survive `restart()` and a new `Server` on the same dir; a torn log tail loads what came
//! before it; a corrupt snapshot is a startup error naming it; without a data dir nothing is
//! written.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zk_core::{Acl, Client, CreateMode, CreateOptions, Op, Perms, Stat, State};
use zk_server::Server;

async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still pending after 30 s"))
}

/// Waits until the client lost its connection and got it back on the same session.
async fn reconnected(states: &mut zk_core::StateStream) {
    let mut saw_suspended = false;
    loop {
        let st = bounded("the client's next state", futures::StreamExt::next(states))
            .await
            .expect("state stream ended");
        match st.state {
            State::Suspended => saw_suspended = true,
            State::Connected if saw_suspended => return,
            State::Lost => panic!("session lost across a restart: {st:?}"),
            _ => {}
        }
    }
}

/// Everything a client can read of these nodes: data, Stat, ACL (stats compared whole, zxids
/// and times included: they must survive too).
async fn read_all(c: &Client, paths: &[&str]) -> Vec<(String, Vec<u8>, Stat, Vec<Acl>)> {
    let mut v = Vec::new();
    for p in paths {
        let (d, s) = c.get_data(p).await.unwrap_or_else(|e| panic!("{p}: {e}"));
        let (acl, _) = c.get_acl(p).await.unwrap();
        v.push((p.to_string(), d, s, acl));
    }
    v
}

fn log_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("log."))
        })
        .expect("a log file in the data dir")
}

#[tokio::test(flavor = "multi_thread")]
async fn data_stats_acls_and_sequence_counters_survive_restart_and_a_new_server() {
    let dir = tempfile::tempdir().unwrap();
    // a snapshot every 5 changes: both the rotation and the replay are on the way
    let srv = Server::builder()
        .data_dir(dir.path())
        .snapshot_every(5)
        .start()
        .await
        .unwrap();
    let c = Client::connect(&srv.connect_string()).await.unwrap();
    c.create("/app", b"v0", CreateMode::Persistent)
        .await
        .unwrap();
    c.set_data("/app", b"v1", Some(0)).await.unwrap();
    let mut seq = Vec::new();
    for _ in 0..3 {
        seq.push(
            c.create("/app/s-", b"", CreateMode::PersistentSequential)
                .await
                .unwrap(),
        );
    }
    c.delete(&seq[0], None).await.unwrap();
    c.set_acl("/app", &Acl::open_unsafe(), Some(0))
        .await
        .unwrap();
    // a digest ACL, readable by anyone
    let digest = vec![
        Acl::new(Perms::ALL, "digest", zk_core::digest_id("u", "p")),
        Acl::new(Perms::READ, "world", "anyone"),
    ];
    c.create_with(
        "/acl",
        b"secret",
        &CreateOptions::new(CreateMode::Persistent).with_acl(digest),
    )
    .await
    .unwrap();
    c.multi(vec![
        Op::create("/m", b"in-multi".to_vec(), CreateMode::Persistent),
        Op::set_data("/app", b"v2".to_vec(), Some(1)),
    ])
    .await
    .unwrap();
    c.create("/ctr", b"", CreateMode::Container).await.unwrap();
    c.create("/ctr/child", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.create(
        "/ttl",
        b"t",
        CreateMode::PersistentWithTtl(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    // a failed write takes a zxid too; the client has seen it, and must still be let back in
    assert!(c.create("/app", b"", CreateMode::Persistent).await.is_err());
    let paths = [
        "/",
        "/app",
        &seq[1],
        &seq[2],
        "/acl",
        "/m",
        "/ctr",
        "/ctr/child",
        "/ttl",
        "/zookeeper",
    ];
    let before = read_all(&c, &paths).await;
    let sid = c.session_id();

    let mut states = c.state_stream();
    srv.restart().await.unwrap();
    reconnected(&mut states).await;
    assert_eq!(c.session_id(), sid, "same session after restart");
    assert_eq!(
        read_all(&c, &paths).await,
        before,
        "state after restart() differs"
    );
    assert!(c.exists(&seq[0]).await.unwrap().is_none());
    // the sequence counter went on from where it was: three created, the next is 3
    let next = c
        .create("/app/s-", b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(next, "/app/s-0000000003");
    let before = read_all(&c, &paths).await;
    let (.., app_stat, _) = before[1].clone();
    assert_eq!(
        (app_stat.version, app_stat.aversion, app_stat.num_children),
        (2, 1, 3)
    );

    // a new server (another port) on the same dir
    srv.stop().await;
    drop(srv);
    let srv2 = Server::builder()
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    assert!(
        srv2.sessions().iter().any(|s| s.id == sid),
        "the session is back: {:?}",
        srv2.sessions()
    );
    let c2 = Client::connect(&srv2.connect_string()).await.unwrap();
    assert_eq!(
        read_all(&c2, &paths).await,
        before,
        "state in a new Server differs"
    );
    // the digest ACL still guards the node
    assert!(c2.set_data("/acl", b"x", None).await.is_err());
    c2.add_auth("digest", b"u:p").await.unwrap();
    c2.set_data("/acl", b"x", None).await.unwrap();
    c2.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_reattaches_after_restart_and_keeps_its_ephemerals() {
    let dir = tempfile::tempdir().unwrap();
    // without fsync: every change is still written before the reply
    let srv = Server::builder()
        .data_dir(dir.path())
        .fsync(false)
        .start()
        .await
        .unwrap();
    let c = Client::connect(&srv.connect_string()).await.unwrap();
    c.create("/mine", b"", CreateMode::Ephemeral).await.unwrap();
    let seq = c
        .create("/q-", b"", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    let sid = c.session_id();
    let mut states = c.state_stream();
    srv.restart().await.unwrap();
    reconnected(&mut states).await;
    assert_eq!(c.session_id(), sid, "same session after restart");
    for p in ["/mine", seq.as_str()] {
        let st = c
            .exists(p)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{p} gone"));
        assert_eq!(st.ephemeral_owner, sid, "{p} owned by the session");
    }
    let info = srv.sessions();
    let me = info.iter().find(|s| s.id == sid).expect("session listed");
    assert_eq!(me.ephemerals, vec!["/mine".to_owned(), seq.clone()]);
    // closing it now removes them, and that too is on disk
    c.close().await.unwrap();
    srv.restart().await.unwrap();
    let c2 = Client::connect(&srv.connect_string()).await.unwrap();
    assert!(c2.exists("/mine").await.unwrap().is_none());
    assert!(srv.sessions().iter().all(|s| s.id != sid));
    c2.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_that_expire_while_down_expire_after_start() {
    let dir = tempfile::tempdir().unwrap();
    let tick = Duration::from_millis(100);
    let srv = Server::builder()
        .data_dir(dir.path())
        .tick_time(tick)
        .start()
        .await
        .unwrap();
    let gone = Client::builder(srv.connect_string())
        .session_timeout(Duration::from_millis(400))
        .connect()
        .await
        .unwrap();
    gone.create("/eph", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let sid = gone.session_id();
    srv.stop().await;
    drop(srv);
    // down for longer than the session's timeout; the client cannot find the new port
    tokio::time::sleep(Duration::from_millis(800)).await;
    let srv2 = Server::builder()
        .data_dir(dir.path())
        .tick_time(tick)
        .start()
        .await
        .unwrap();
    assert!(
        srv2.sessions().iter().any(|s| s.id == sid),
        "loaded with a fresh timeout"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while srv2.sessions().iter().any(|s| s.id == sid) {
        assert!(
            Instant::now() < deadline,
            "session {sid:#x} never expired after start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = Client::connect(&srv2.connect_string()).await.unwrap();
    assert!(c.exists("/eph").await.unwrap().is_none(), "ephemeral gone");
    // and its expiry is on disk
    srv2.restart().await.unwrap();
    assert!(srv2.sessions().iter().all(|s| s.id != sid));
    drop(gone);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_log_tail_loads_everything_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::builder()
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    let c = Client::connect(&srv.connect_string()).await.unwrap();
    for p in ["/a", "/b", "/c"] {
        c.create(p, p.as_bytes(), CreateMode::Persistent)
            .await
            .unwrap();
    }
    srv.stop().await;
    drop(srv);
    drop(c);
    // cut the last record (the create of /c) in the middle, as a crash mid-write would
    let log = log_file(dir.path());
    let len = std::fs::metadata(&log).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);

    let srv = Server::builder()
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    let c = Client::connect(&srv.connect_string()).await.unwrap();
    assert_eq!(c.get_data("/a").await.unwrap().0, b"/a");
    assert_eq!(c.get_data("/b").await.unwrap().0, b"/b");
    assert!(c.exists("/c").await.unwrap().is_none(), "/c was torn");
    // later changes are not lost behind the torn bytes
    c.create("/d", b"", CreateMode::Persistent).await.unwrap();
    srv.restart().await.unwrap();
    let c2 = Client::connect(&srv.connect_string()).await.unwrap();
    assert!(
        c2.exists("/d").await.unwrap().is_some(),
        "/d after the torn tail"
    );
    assert!(c2.exists("/b").await.unwrap().is_some());
    c2.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_snapshot_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::builder()
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    let c = Client::connect(&srv.connect_string()).await.unwrap();
    c.create("/a", b"x", CreateMode::Persistent).await.unwrap();
    c.close().await.unwrap();
    let snap = dir.path().join("snapshot");
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&snap, &bytes).unwrap();
    // restart() goes through the dir: it finds the damage too
    let err = srv
        .restart()
        .await
        .expect_err("restart() on a corrupt snapshot");
    assert!(
        err.to_string().contains(&snap.display().to_string()),
        "restart() names the file: {err}"
    );
    drop(srv);
    let err = Server::builder()
        .data_dir(dir.path())
        .start()
        .await
        .expect_err("a corrupt snapshot must not start");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let msg = err.to_string();
    assert!(
        msg.contains(&snap.display().to_string()) && msg.contains("corrupt"),
        "names the file and says why: {msg}"
    );
    // not a snapshot at all
    std::fs::write(&snap, b"hello").unwrap();
    let msg = Server::builder()
        .data_dir(dir.path())
        .start()
        .await
        .expect_err("garbage must not start")
        .to_string();
    assert!(
        msg.contains(&snap.display().to_string()) && msg.contains("not a zk-server snapshot"),
        "{msg}"
    );
}

/// Spawns the binary in `cwd`, returns it and the address it prints.
async fn spawn_binary(cwd: &Path, extra: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .args(["--port", "0"])
        .args(extra)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn zk-server");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = bounded("the binary's first line", lines.next_line())
        .await
        .unwrap()
        .expect("a line on stdout");
    let addr = line.rsplit(' ').next().expect("an address").to_owned();
    (child, addr)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_keeps_data_in_its_data_dir_and_writes_nothing_without_one() {
    // without --data-dir: nothing appears in its working directory
    let cwd = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_binary(cwd.path(), &[]).await;
    let c = Client::connect(&addr).await.unwrap();
    c.create("/mem", b"", CreateMode::Persistent).await.unwrap();
    c.close().await.unwrap();
    child.kill().await.unwrap();
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "files written without a data dir: {left:?}"
    );

    // with --data-dir (relative to its cwd) and --no-fsync: killed, started again, all there
    let (mut child, addr) = spawn_binary(cwd.path(), &["--data-dir", "d", "--no-fsync"]).await;
    let c = Client::connect(&addr).await.unwrap();
    c.create("/kept", b"k", CreateMode::Persistent)
        .await
        .unwrap();
    child.kill().await.unwrap();
    drop(c);
    let (mut child, addr) = spawn_binary(cwd.path(), &["--data-dir", "d"]).await;
    let c = Client::connect(&addr).await.unwrap();
    assert_eq!(c.get_data("/kept").await.unwrap().0, b"k");
    c.close().await.unwrap();
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_dir_is_refused_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::builder()
        .data_dir(dir.path())
        .start()
        .await
        .unwrap();
    let c = Client::connect(&srv.connect_string()).await.unwrap();
    c.create("/first", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let err = Server::builder()
        .data_dir(dir.path())
        .start()
        .await
        .expect_err("a second server on a locked dir");
    assert_eq!(err.kind(), std::io::ErrorKind::ResourceBusy, "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "names the dir: {err}"
    );
    // the refused start changed nothing: restart() still finds everything
    srv.restart().await.unwrap();
    assert_eq!(srv.port(), srv.addr().port());
    drop(c);
    drop(srv);
    let srv2 = Server::builder()
        .data_dir(dir.path())
        .start()
        .await
        .expect("the dir is free once the first server is dropped");
    let c2 = Client::connect(&srv2.connect_string()).await.unwrap();
    assert!(c2.exists("/first").await.unwrap().is_some());
    c2.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_that_cannot_be_written_stops_serving_until_restart() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::builder()
        .data_dir(dir.path())
        .snapshot_every(3)
        .start()
        .await
        .unwrap();
    let c = Client::connect(&srv.connect_string()).await.unwrap(); // record 1
    c.create("/a", b"", CreateMode::Persistent).await.unwrap(); // record 2
                                                                // the next record makes a snapshot due; a directory where its temp file goes fails it
    std::fs::create_dir(dir.path().join("snapshot.tmp")).unwrap();
    let r = bounded(
        "the create whose snapshot fails",
        c.create("/b", b"", CreateMode::Persistent),
    )
    .await;
    assert!(r.is_err(), "acknowledged although the dir failed: {r:?}");
    let why = srv.data_dir_failure().expect("the failure is reported");
    assert!(why.contains("snapshot"), "{why}");
    // no new connection is served
    let mut s = tokio::net::TcpStream::connect(srv.addr()).await.unwrap();
    let req = zk_proto::ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    s.write_all(&zk_proto::record_frame(&req)).await.unwrap();
    let mut b = [0u8; 4];
    assert_eq!(
        bounded("the refused connection's close", s.read(&mut b))
            .await
            .unwrap_or(0),
        0,
        "a failed data dir answered a handshake"
    );
    drop(c);
    // once the dir is writable again, a restart loads it: /b was logged before the snapshot
    // failed (its client saw a lost connection: "may have been applied")
    std::fs::remove_dir(dir.path().join("snapshot.tmp")).unwrap();
    srv.restart().await.unwrap();
    assert_eq!(srv.data_dir_failure(), None);
    let c2 = Client::connect(&srv.connect_string()).await.unwrap();
    assert!(c2.exists("/a").await.unwrap().is_some());
    assert!(c2.exists("/b").await.unwrap().is_some());
    c2.close().await.unwrap();
}
