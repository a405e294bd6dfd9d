//! The zk-server backend behind the kit's handle, picked by the builder (the variable itself is
//! tested in `backend_env.rs`, alone in its process).

mod common;

use std::time::{Duration, Instant};

use common::*;
use zk_testkit::{four_letter_timeout, Backend, Error, TlsOptions, ZkServer};

fn zk_server() -> zk_testkit::ZkServerBuilder {
    ZkServer::builder().backend(Backend::ZkServer)
}

#[tokio::test(flavor = "multi_thread")]
async fn zk_server_backend_stops_kills_and_restarts_keeping_port_and_data() {
    let server = zk_server().tick_time(500).start_async().await.unwrap();
    assert_eq!(server.backend(), Backend::ZkServer);
    assert_eq!(server.pid(), None);
    assert_eq!(server.mode_async().await.unwrap(), "standalone");
    assert_eq!(
        server.connect_string(),
        format!("127.0.0.1:{}", server.port())
    );
    assert!(server.four_letter("ruok").unwrap().starts_with("imok"));
    let port = server.port();
    let data_dir = server.data_dir().to_owned();

    let path = unique_path("restart");
    let (mut session, _) = connect(server.addr()).await.unwrap();
    assert_eq!(
        call(&mut session, &create_request(1, &path, b"v", 0))
            .await
            .unwrap(),
        OK
    );
    server.stop_async().await.unwrap();
    assert!(
        is_closed(&mut session).await,
        "a stop closes the connection"
    );
    assert!(!server.is_running());
    assert!(matches!(
        server.mode_async().await,
        Err(Error::NotRunning(_))
    ));
    assert!(four_letter_timeout(server.addr(), "srvr", Duration::from_secs(5)).is_err());
    server.stop_async().await.unwrap(); // idempotent

    server.start_again_async().await.unwrap();
    assert!(matches!(
        server.start_again_async().await,
        Err(Error::AlreadyRunning(_))
    ));
    assert_eq!(server.port(), port);
    assert_eq!(exists(server.addr(), &path).await.unwrap(), OK);

    server.kill_async().await.unwrap();
    assert!(!server.is_running());
    server.restart_async().await.unwrap();
    assert_eq!(server.mode_async().await.unwrap(), "standalone");
    assert_eq!(exists(server.addr(), &path).await.unwrap(), OK);
    server.restart_async().await.unwrap(); // of a running server
    assert_eq!(exists(server.addr(), &path).await.unwrap(), OK);

    assert_eq!(server.data_dir(), data_dir);
    assert!(
        std::fs::read_dir(&data_dir).unwrap().next().is_some(),
        "the data dir {} holds the snapshot and log",
        data_dir.display()
    );
    assert!(server.log_tail(5).contains("zk-server"));
    assert!(server.zk_server().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn zk_server_backend_keeps_sessions_and_ephemerals_across_a_restart() {
    let server = zk_server().start_async().await.unwrap();
    let path = unique_path("ephemeral");
    let (mut session, first) = connect(server.addr()).await.unwrap();
    // flags 1: ephemeral
    assert_eq!(
        call(&mut session, &create_request(1, &path, b"", 1))
            .await
            .unwrap(),
        OK
    );
    drop(session);
    server.restart_async().await.unwrap();
    let mut again = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let reattached = handshake(&mut again, first.session_id, &first.password, 30_000)
        .await
        .unwrap();
    assert!(
        reattached.timeout > 0,
        "the session re-attaches after a restart: {reattached:?}"
    );
    assert_eq!(reattached.session_id, first.session_id);
    assert_eq!(exists(server.addr(), &path).await.unwrap(), OK);
    let sessions = server.zk_server().unwrap().sessions();
    assert!(
        sessions
            .iter()
            .any(|s| s.id == first.session_id && s.ephemerals == vec![path.clone()]),
        "{sessions:?}"
    );
}

#[test]
fn zk_server_backend_pause_freezes_and_resume_thaws() {
    let server = zk_server().start().unwrap();
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

    // stopping a paused server works too, and so does dropping one
    server.pause().unwrap();
    server.stop().unwrap();
    assert!(!server.is_running());
    assert!(matches!(server.pause(), Err(Error::NotRunning(_))));
    server.start_again().unwrap();
    server.pause().unwrap();
    drop(server);
}

#[test]
fn what_only_zookeeper_can_do_gets_zookeeper_whatever_the_backend() {
    let cases: Vec<(zk_testkit::ZkServerBuilder, &str)> = vec![
        (zk_server().tls(TlsOptions::new()), "TLS"),
        (zk_server().sasl_digest_users(&[("u", "p")]), "SASL"),
        (zk_server().four_letter_whitelist("srvr"), "whitelist"),
        (zk_server().cfg("snapCount", 10), "snapCount"),
        (zk_server().jvm_prop("jute.maxbuffer", 10), "jute.maxbuffer"),
        (
            zk_server().real_zookeeper("the test reads the JVM's log"),
            "the JVM's log",
        ),
    ];
    for (builder, why) in cases {
        let (backend, reason) = builder.resolve_backend().unwrap();
        assert_eq!(backend, Backend::ZooKeeper, "{why}");
        assert!(reason.contains(why), "{reason:?} should name {why:?}");
    }
    // the knobs zk-server has stay on zk-server
    let (backend, _) = zk_server()
        .tick_time(500)
        .min_session_timeout(1000)
        .max_session_timeout(9000)
        .extended_types(false)
        .jvm_prop("znode.container.checkIntervalMs", 200)
        .resolve_backend()
        .unwrap();
    assert_eq!(backend, Backend::ZkServer);
}
