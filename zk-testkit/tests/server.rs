//! A standalone server against the real ZooKeeper.

mod common;

use std::time::{Duration, Instant};

use common::*;
use zk_testkit::{four_letter, four_letter_timeout, shared_server, Error, ZkServer};

#[tokio::test(flavor = "multi_thread")]
async fn stop_kill_and_restart_keep_port_and_data() {
    let server = ZkServer::builder()
        .real_zookeeper("the JVM: stop, kill and restart of its process")
        .start()
        .unwrap();
    assert_eq!(server.mode().unwrap(), "standalone");
    assert_eq!(
        server.connect_string(),
        format!("127.0.0.1:{}", server.port())
    );
    assert_eq!(server.addr().port(), server.port());
    assert_eq!(server.myid(), None);
    assert!(server
        .four_letter("srvr")
        .unwrap()
        .contains("Zookeeper version: 3."));
    let port = server.port();
    let data_dir = server.data_dir().to_owned();
    let first_pid = server.pid().unwrap();

    let path = unique_path("restart");
    let (mut session, _) = connect(server.addr()).await.unwrap();
    assert_eq!(
        call(&mut session, &create_request(1, &path, b"v", 0))
            .await
            .unwrap(),
        OK
    );
    drop(session);

    server.stop().unwrap();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    assert!(matches!(server.mode(), Err(Error::NotRunning(_))));
    assert!(four_letter(server.addr(), "srvr").is_err());
    server.stop().unwrap(); // idempotent

    server.start_again().unwrap();
    assert!(matches!(
        server.start_again(),
        Err(Error::AlreadyRunning(_))
    ));
    assert_eq!(server.port(), port);
    assert_eq!(server.data_dir(), data_dir);
    assert_ne!(server.pid().unwrap(), first_pid);
    assert_eq!(exists(server.addr(), &path).await.unwrap(), OK);

    server.kill().unwrap();
    assert!(!server.is_running());
    server.restart().unwrap();
    assert_eq!(server.mode().unwrap(), "standalone");
    assert_eq!(exists(server.addr(), &path).await.unwrap(), OK);

    // restart() of a running server: graceful stop, then start.
    let pid = server.pid().unwrap();
    server.restart().unwrap();
    assert_ne!(server.pid().unwrap(), pid);
    assert_eq!(exists(server.addr(), &path).await.unwrap(), OK);

    let log = std::fs::read_to_string(server.log_path()).unwrap();
    assert!(log.contains("binding to port"), "{log}");
    assert!(!server.log_tail(5).is_empty());
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let server = ZkServer::start().unwrap();
    server.pause().unwrap();
    assert!(server.is_paused());
    assert!(server.is_running());
    let started = Instant::now();
    let err = four_letter_timeout(server.addr(), "srvr", Duration::from_millis(500)).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(450));
    server.resume().unwrap();
    assert!(!server.is_paused());
    assert_eq!(server.mode().unwrap(), "standalone");

    // Stopping a paused server works too (SIGTERM + SIGCONT).
    server.pause().unwrap();
    server.stop().unwrap();
    assert!(!server.is_running());
    assert!(matches!(server.pause(), Err(Error::NotRunning(_))));
}

#[test]
fn outlives_the_thread_that_started_it() {
    // PR_SET_PDEATHSIG fires when the forking *thread* exits; the kit forks from a thread that
    // never exits, so a server started from a short-lived thread must survive it.
    let server = std::thread::spawn(|| ZkServer::start().unwrap())
        .join()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.is_running());
    assert_eq!(server.mode().unwrap(), "standalone");
}

#[tokio::test(flavor = "multi_thread")]
async fn builder_knobs_reach_the_server() {
    let server = ZkServer::builder()
        .tick_time(500)
        .max_session_timeout(7000)
        .four_letter_whitelist("ruok")
        .cfg("snapCount", 1000)
        .jvm_prop("zookeeper.testkit.marker", "yes")
        .start()
        .unwrap();
    let conf = server.four_letter("conf").unwrap();
    for expected in [
        "tickTime=500",
        "minSessionTimeout=1000",
        "maxSessionTimeout=7000",
    ] {
        assert!(conf.contains(expected), "{expected} missing from {conf}");
    }
    assert_eq!(server.four_letter("ruok").unwrap(), "imok");
    assert!(server
        .four_letter("mntr")
        .unwrap()
        .contains("not in the whitelist"));
    // The server clamps the requested session timeout into [min, max].
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let response = handshake(&mut stream, 0, &[0; 16], 100_000).await.unwrap();
    assert_eq!(response.timeout, 7000);
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let response = handshake(&mut stream, 0, &[0; 16], 1).await.unwrap();
    assert_eq!(response.timeout, 1000);
    let envi = server.four_letter("envi");
    // envi is not whitelisted either; the JVM property is visible in the command line instead.
    assert!(envi.unwrap().contains("not in the whitelist"));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.pid().unwrap())).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("-Dzookeeper.testkit.marker=yes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_enable_ttl_nodes_and_all_four_letter_words() {
    let server = shared_server();
    assert!(std::ptr::eq(server, shared_server()));
    assert_eq!(server.mode().unwrap(), "standalone");
    for (word, expected) in [
        ("srvr", "Mode: standalone"),
        ("mntr", "zk_server_state\tstandalone"),
        ("cons", "queued="),
        ("wchc", ""),
        ("wchp", ""),
        ("dump", "Session"),
        ("ruok", "imok"),
        ("conf", "maxClientCnxns=0"),
    ] {
        let answer = server.four_letter(word).unwrap();
        assert!(answer.contains(expected), "{word}: {answer}");
        assert!(!answer.contains("not in the whitelist"), "{word}: {answer}");
    }
    // createTTL (21) with PERSISTENT_WITH_TTL works only with extendedTypesEnabled.
    let path = unique_path("ttl");
    let (mut stream, _) = connect(server.addr()).await.unwrap();
    let mut body = create_request(1, &path, b"", 5)[12..].to_vec();
    body.extend_from_slice(&60_000i64.to_be_bytes());
    assert_eq!(call(&mut stream, &request(1, 21, &body)).await.unwrap(), OK);
}

#[test]
fn startup_failure_carries_the_log() {
    let started = Instant::now();
    let err = ZkServer::builder()
        .cfg("tickTime", "not-a-number")
        .start()
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20));
    let Error::Startup {
        log_tail, log_path, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(log_tail.contains("not-a-number"), "{log_tail}");
    assert!(log_path.ends_with("zookeeper.log"));
    assert!(err.to_string().contains("exited during startup"), "{err}");
}

/// Set in the child process of [`jvm_dies_with_an_aborting_test_process`].
const ABORT_CHILD_ENV: &str = "ZK_TESTKIT_TEST_ABORT_CHILD";

#[test]
fn jvm_dies_with_an_aborting_test_process() {
    use std::io::Write;
    if std::env::var_os(ABORT_CHILD_ENV).is_some() {
        // Child: start a server, report it, and die without running any destructor.
        let server = ZkServer::builder()
            .real_zookeeper("the JVM: it dies with an aborting test process")
            .start()
            .unwrap();
        let dir = server.data_dir().parent().unwrap().to_owned();
        println!("JVM_PID={} DIR={}", server.pid().unwrap(), dir.display());
        std::io::stdout().flush().unwrap();
        std::process::abort();
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "jvm_dies_with_an_aborting_test_process",
            "--nocapture",
        ])
        .env(ABORT_CHILD_ENV, "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("JVM_PID="))
        .unwrap_or_else(|| panic!("no pid in {stdout}"));
    let (pid, dir) = line.split_once(" DIR=").unwrap();
    let _ = std::fs::remove_dir_all(dir); // the aborted child could not clean up
                                          // PR_SET_PDEATHSIG killed the JVM; it may linger briefly as a zombie until init reaps it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let alive = !stat.is_empty()
            && !stat.contains(") Z ")
            && String::from_utf8_lossy(&cmdline).contains(dir);
        if !alive {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "JVM {pid} survived its test process"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
