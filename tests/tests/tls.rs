//! TLS against a real ZooKeeper 3.8 serving `secureClientPort` (Netty) with certificates the
//! test kit generates per run.

mod common;

use common::wait_state;
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, State, TlsConfig};
use zk_testkit::{ClientAuth, TlsOptions, ZkServer};

fn server(opts: TlsOptions) -> ZkServer {
    common::init_tracing();
    ZkServer::builder().tls(opts).start().expect("TLS server")
}

async fn connect(server: &ZkServer, tls: TlsConfig) -> zk_core::Result<Client> {
    Client::builder(server.secure_connect_string().unwrap())
        .session_timeout(Duration::from_secs(4))
        .tls(tls)
        .connect()
        .await
}

fn mutual(server: &ZkServer) -> TlsConfig {
    let f = server.tls_files().unwrap();
    TlsConfig::new()
        .ca_file(&f.ca)
        .client_cert_files(&f.client_cert, &f.client_key)
}

/// The error message, lower-cased, with its sources.
fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(" <- ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s.to_lowercase()
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_works_and_survives_a_restart() {
    let server = server(TlsOptions::new());
    // the longest session the server grants: a restart on a loaded machine can outlast 4 s
    let c = Client::builder(server.secure_connect_string().unwrap())
        .session_timeout(Duration::from_secs(40))
        .tls(mutual(&server))
        .connect()
        .await
        .expect("mutual TLS");
    let sid = c.session_id();
    c.create("/tls", b"over tls", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/tls-eph", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    server.restart().unwrap();
    wait_state(&c, State::Connected, Duration::from_secs(30)).await;
    assert_eq!(c.session_id(), sid, "same session after a TLS reconnect");
    assert_eq!(c.get_data("/tls").await.unwrap().0, b"over tls");
    assert!(c.exists("/tls-eph").await.unwrap().is_some());
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_host_in_the_connect_string() {
    let server = server(TlsOptions::new().client_auth(ClientAuth::None));
    let f = server.tls_files().unwrap();
    // tcp+tls:// alone: the system's CAs, which do not know the test CA
    let e = Client::builder(format!(
        "tcp+tls://{}",
        server.secure_connect_string().unwrap()
    ))
    .session_timeout(Duration::from_secs(2))
    .connect()
    .await
    .unwrap_err();
    let msg = chain(&e);
    assert!(
        msg.contains("tls") && msg.contains("unknownissuer"),
        "{msg}"
    );
    // with the test CA for TLS hosts
    let c = Client::builder(format!(
        "tcp+tls://{}",
        server.secure_connect_string().unwrap()
    ))
    .tls(TlsConfig::new().ca_file(&f.ca))
    .connect()
    .await
    .expect("one-way TLS");
    c.exists("/").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_failures_name_their_cause() {
    let server = server(TlsOptions::new());
    let f = server.tls_files().unwrap();

    // no client certificate for a server that requires one
    let e = connect(&server, TlsConfig::new().ca_file(&f.ca))
        .await
        .unwrap_err();
    let msg = chain(&e);
    eprintln!("no client certificate: {e}");
    assert!(matches!(e, Error::ConnectFailed { .. }), "{e:?}");
    assert!(
        msg.contains("tls") && msg.contains("certificate"),
        "no client certificate: {msg}"
    );

    // a client certificate from a CA the server does not trust
    let e = connect(
        &server,
        TlsConfig::new()
            .ca_file(&f.ca)
            .client_cert_files(&f.other_client_cert, &f.other_client_key),
    )
    .await
    .unwrap_err();
    let msg = chain(&e);
    eprintln!("untrusted client certificate: {e}");
    assert!(msg.contains("tls"), "untrusted client certificate: {msg}");

    // the wrong CA for the server
    let e = connect(
        &server,
        TlsConfig::new()
            .ca_file(&f.other_ca)
            .client_cert_files(&f.client_cert, &f.client_key),
    )
    .await
    .unwrap_err();
    let msg = chain(&e);
    assert!(
        msg.contains("tls") && msg.contains("unknownissuer"),
        "wrong CA: {msg}"
    );

    // an unreadable CA file is a bad argument, refused before connecting
    let e = connect(&server, TlsConfig::new().ca_file("/nonexistent/ca.pem"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert!(chain(&e).contains("ca file"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_name_is_verified_unless_told_otherwise() {
    let server = server(TlsOptions::new().server_names(&["zk.example.test"]));
    let e = connect(&server, mutual(&server)).await.unwrap_err();
    let msg = chain(&e);
    assert!(
        msg.contains("tls") && msg.contains("not valid for name"),
        "name mismatch: {msg}"
    );
    // the name the certificate carries
    let c = connect(&server, mutual(&server).server_name("zk.example.test"))
        .await
        .expect("explicit server name");
    c.exists("/").await.unwrap();
    // the loud opt-out
    let c = connect(&server, mutual(&server).danger_accept_any_server_name())
        .await
        .expect("name check disabled");
    c.exists("/").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_server_certificate_is_refused() {
    let server = server(TlsOptions::new().expired_server_certificate());
    let e = connect(&server, mutual(&server)).await.unwrap_err();
    let msg = chain(&e);
    assert!(msg.contains("tls") && msg.contains("expired"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_files_are_read_again_for_new_connections() {
    let server = server(TlsOptions::new());
    let f = server.tls_files().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    // start with the wrong CA on disk
    std::fs::copy(&f.other_ca, &ca).unwrap();
    let cfg = TlsConfig::new()
        .ca_file(&ca)
        .client_cert_files(&f.client_cert, &f.client_key);
    let connecting = tokio::spawn({
        let addr = server.secure_connect_string().unwrap();
        let cfg = cfg.clone();
        async move {
            Client::builder(addr)
                .session_timeout(Duration::from_secs(4))
                .connect_timeout(Duration::from_secs(60))
                .tls(cfg)
                .connect()
                .await
        }
    });
    // let it fail at least once, then put the right CA in place
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!connecting.is_finished(), "connect gave up early");
    std::fs::copy(&f.ca, &ca).unwrap();
    let c = common::bounded("connect after the CA file was replaced", connecting)
        .await
        .unwrap()
        .expect("the replaced CA file is used");
    c.exists("/").await.unwrap();
}
