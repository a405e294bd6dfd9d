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

/// Bounds for a connect whose TLS verdict the test reads. One attempt (TCP, TLS handshake,
/// ConnectRequest) may take a session timeout; a JVM's first TLS handshakes on a loaded
/// machine (several servers starting at once) can take many seconds, and an attempt cut off
/// by that bound reports "no handshake within ..." instead of the TLS error. So: 20 s per
/// attempt, and a connect wait of 25 s for a connect that must fail (a refused handshake is
/// retried until the wait runs out, so the wait is the test's cost), long enough for one
/// whole attempt to end before connect reports the last attempt's error; 60 s for one that
/// must succeed (it returns as soon as it does).
const ATTEMPT: Duration = Duration::from_secs(20);
const REFUSED_WAIT: Duration = Duration::from_secs(25);
const CONNECT_WAIT: Duration = Duration::from_secs(60);

/// A connect expected to succeed.
async fn connect(server: &ZkServer, tls: TlsConfig) -> zk_core::Result<Client> {
    connect_within(server, tls, CONNECT_WAIT).await
}

/// A connect expected to fail with a TLS error.
async fn refused(server: &ZkServer, tls: TlsConfig) -> Error {
    connect_within(server, tls, REFUSED_WAIT)
        .await
        .expect_err("a connect that TLS must refuse")
}

async fn connect_within(
    server: &ZkServer,
    tls: TlsConfig,
    wait: Duration,
) -> zk_core::Result<Client> {
    Client::builder(server.secure_connect_string().unwrap())
        .session_timeout(ATTEMPT)
        .connect_timeout(wait)
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
    common::init_tracing();
    // a restart of a TLS server on a loaded machine was seen to outlast a 40 s session (the
    // default maximum): the client then gives the session up, and the test proves nothing
    // about a TLS reconnect. The server grants 120 s here.
    let server = ZkServer::builder()
        .tls(TlsOptions::new())
        .max_session_timeout(120_000)
        .start()
        .expect("TLS server");
    let c = Client::builder(server.secure_connect_string().unwrap())
        .session_timeout(Duration::from_secs(120))
        .connect_timeout(CONNECT_WAIT)
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
    wait_state(&c, State::Connected, Duration::from_secs(120)).await;
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
    .session_timeout(ATTEMPT)
    .connect_timeout(REFUSED_WAIT)
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
    .session_timeout(ATTEMPT)
    .connect_timeout(CONNECT_WAIT)
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
    let e = refused(&server, TlsConfig::new().ca_file(&f.ca)).await;
    let msg = chain(&e);
    eprintln!("no client certificate: {e}");
    assert!(matches!(e, Error::ConnectFailed { .. }), "{e:?}");
    assert!(
        msg.contains("tls") && msg.contains("certificate"),
        "no client certificate: {msg}"
    );

    // a client certificate from a CA the server does not trust
    let e = refused(
        &server,
        TlsConfig::new()
            .ca_file(&f.ca)
            .client_cert_files(&f.other_client_cert, &f.other_client_key),
    )
    .await;
    let msg = chain(&e);
    eprintln!("untrusted client certificate: {e}");
    assert!(msg.contains("tls"), "untrusted client certificate: {msg}");

    // the wrong CA for the server
    let e = refused(
        &server,
        TlsConfig::new()
            .ca_file(&f.other_ca)
            .client_cert_files(&f.client_cert, &f.client_key),
    )
    .await;
    let msg = chain(&e);
    assert!(
        msg.contains("tls") && msg.contains("unknownissuer"),
        "wrong CA: {msg}"
    );

    // an unreadable CA file is a bad argument, refused before connecting
    let e = refused(&server, TlsConfig::new().ca_file("/nonexistent/ca.pem")).await;
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert!(chain(&e).contains("ca file"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_name_is_verified_unless_told_otherwise() {
    let server = server(TlsOptions::new().server_names(&["zk.example.test"]));
    let e = refused(&server, mutual(&server)).await;
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
    let e = refused(&server, mutual(&server)).await;
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
    // through a proxy that counts connections: a second one means the first attempt is over
    let proxy = zk_testkit::FaultProxy::start(server.secure_addr().unwrap())
        .await
        .unwrap();
    let connecting = tokio::spawn({
        let addr = proxy.connect_string();
        let cfg = cfg.clone();
        async move {
            Client::builder(addr)
                .session_timeout(ATTEMPT)
                .connect_timeout(Duration::from_secs(60))
                .tls(cfg)
                .connect()
                .await
        }
    });
    // let it fail at least once, then put the right CA in place
    common::bounded(
        "a second connection attempt (the first one failed)",
        async {
            while proxy.connections_accepted() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        },
    )
    .await;
    assert!(!connecting.is_finished(), "connect gave up early");
    std::fs::copy(&f.ca, &ca).unwrap();
    let c = common::bounded("connect after the CA file was replaced", connecting)
        .await
        .unwrap()
        .expect("the replaced CA file is used");
    c.exists("/").await.unwrap();
}

/// The identities of a TLS session: with a client certificate the server adds
/// `x509: <the certificate's subject>` (ZooKeeper's X509AuthenticationProvider, the subject's
/// RFC 2253 name) next to `ip`; without one (`ssl.clientAuth=want`), no `x509` entry.
#[tokio::test(flavor = "multi_thread")]
async fn who_am_i_shows_the_client_certificate_subject_as_x509() {
    // zk-testkit's client certificates carry the subject `CN=zk-testkit client`
    const SUBJECT: &str = "CN=zk-testkit client";
    let x509 = |ids: &[zk_core::ClientInfo]| -> Vec<String> {
        ids.iter()
            .filter(|i| i.auth_scheme == "x509")
            .map(|i| i.user.clone())
            .collect()
    };

    let server = server(TlsOptions::new().client_auth(ClientAuth::Want));
    let c = connect(&server, mutual(&server)).await.expect("mutual TLS");
    let ids = c.who_am_i().await.unwrap();
    assert_eq!(x509(&ids), [SUBJECT], "{ids:?}");
    assert!(ids.iter().any(|i| i.auth_scheme == "ip"), "{ids:?}");
    // a node whose ACL names the certificate is this client's
    let acl = vec![zk_core::Acl::new(zk_core::Perms::ALL, "x509", SUBJECT)];
    c.create_with(
        "/x509-only",
        b"mine",
        &zk_core::CreateOptions::new(CreateMode::Persistent).with_acl(acl),
    )
    .await
    .unwrap();
    assert_eq!(c.get_data("/x509-only").await.unwrap().0, b"mine");
    c.close().await.unwrap();

    // the same server without a client certificate: no x509 identity, and that node is closed
    let f = server.tls_files().unwrap();
    let c = connect(&server, TlsConfig::new().ca_file(&f.ca))
        .await
        .expect("TLS without a client certificate");
    let ids = c.who_am_i().await.unwrap();
    assert!(x509(&ids).is_empty(), "{ids:?}");
    assert!(matches!(c.get_data("/x509-only").await, Err(Error::NoAuth)));
    c.close().await.unwrap();
}

/// The ensemble tracker on a TLS client: ZooKeeper 3.8's config node names each member's plain
/// client port only (no `secureClientPort`), so without being told the TLS ports a tracker
/// would move the client to plaintext ports. It is refused before anything starts.
#[tokio::test(flavor = "multi_thread")]
async fn the_ensemble_tracker_on_a_tls_client_needs_the_secure_ports() {
    common::init_tracing();
    for (hosts, tls) in [
        ("127.0.0.1:1", Some(TlsConfig::new())),
        ("tcp+tls://127.0.0.1:1", None),
    ] {
        let mut b = Client::builder(hosts)
            .ensemble_tracker(true)
            .connect_timeout(Duration::from_secs(1));
        if let Some(t) = tls {
            b = b.tls(t);
        }
        match b.connect().await {
            Err(Error::InvalidArgument(m)) => assert!(
                m.contains("ensemble_tracker_secure_ports") && m.contains("TLS"),
                "{hosts}: {m}"
            ),
            r => panic!("{hosts}: {r:?}"),
        }
    }
}

/// With the TLS ports given (by each member's plain client port), a TLS client's tracker
/// learns the members as TLS hosts and follows a reconfig over TLS, with its session.
#[tokio::test(flavor = "multi_thread")]
async fn the_ensemble_tracker_keeps_a_tls_client_on_the_members_tls_ports() {
    use zk_core::{HostAddr, ReconfigOptions};
    common::init_tracing();
    const PASSWORD: &str = "super-secret";
    let ens = zk_testkit::Ensemble::builder()
        .size(3)
        .reconfig_enabled(true)
        .super_user(PASSWORD)
        .tls(TlsOptions::new())
        .start_async()
        .await
        .expect("a TLS ensemble");
    let plain = |i: usize| ens.member(i).addr().port();
    let secure = |i: usize| ens.member(i).secure_addr().unwrap().port();
    let ports: Vec<(u16, u16)> = (0..3).map(|i| (plain(i), secure(i))).collect();
    let tls = mutual(ens.member(0));
    // the client is given one member's TLS port
    let c = Client::builder(ens.member(0).secure_connect_string().unwrap())
        .session_timeout(ATTEMPT)
        .connect_timeout(CONNECT_WAIT)
        .tls(tls.clone())
        .ensemble_tracker(true)
        .ensemble_tracker_secure_ports(ports.clone())
        .connect()
        .await
        .expect("TLS client with a tracker");
    let tls_hosts: Vec<HostAddr> = (0..3)
        .map(|i| HostAddr {
            host: "127.0.0.1".into(),
            port: secure(i),
            tls: true,
        })
        .collect();
    let on_port = |c: &Client| -> Option<u16> {
        let s = c.status();
        (s.state == State::Connected)
            .then_some(s.server)
            .flatten()
            .and_then(|a| a.rsplit(':').next().and_then(|p| p.parse().ok()))
    };
    let wait_until = |what: &'static str, cond: Box<dyn Fn(&Client) -> bool + Send>| {
        let c = c.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while !cond(&c) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what}: not within 60 s; status {:?}, server list {:?}",
                    c.status(),
                    c.server_list()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let want = tls_hosts.clone();
    wait_until(
        "the tracker learned the 3 members' TLS ports",
        Box::new(move |c| {
            let mut l = c.server_list();
            l.sort_by_key(|h| h.port);
            let mut w = want.clone();
            w.sort_by_key(|h| h.port);
            l == w
        }),
    )
    .await;
    let sid = c.session_id();
    // remove the member the client is on: it moves to another member's TLS port
    wait_until("connected", Box::new(move |c| on_port(c).is_some())).await;
    let current = on_port(&c).unwrap();
    let gone = (0..3).find(|&i| secure(i) == current).unwrap();
    let kept: Vec<usize> = (0..3).filter(|&i| i != gone).collect();
    let was_leader = ens.leader_async().await == Some(gone);
    let admin = Client::builder(format!(
        "{},{}",
        ens.member(kept[0]).secure_connect_string().unwrap(),
        ens.member(kept[1]).secure_connect_string().unwrap()
    ))
    .session_timeout(ATTEMPT)
    .connect_timeout(CONNECT_WAIT)
    .tls(tls)
    .auth("digest", format!("{}:{PASSWORD}", zk_testkit::SUPER_USER))
    .connect()
    .await
    .expect("admin over TLS");
    match admin
        .reconfig(&ReconfigOptions::incremental().leaving(gone as u64 + 1))
        .await
    {
        Ok(_) => {}
        Err(Error::ConnectionLoss) if was_leader => {}
        Err(e) => panic!("reconfig: {e}"),
    }
    let kept_secure: Vec<u16> = kept.iter().map(|&i| secure(i)).collect();
    let k = kept_secure.clone();
    wait_until(
        "the client left the removed member for another TLS port",
        Box::new(move |c| {
            let list: Vec<u16> = c.server_list().iter().map(|h| h.port).collect();
            c.server_list().iter().all(|h| h.tls)
                && list.len() == 2
                && list.iter().all(|p| k.contains(p))
                && on_port(c).is_some_and(|p| k.contains(&p))
        }),
    )
    .await;
    assert_eq!(c.session_id(), sid, "the move changed the session");
    assert!(c.exists("/zookeeper").await.unwrap().is_some());
    c.close().await.unwrap();
    admin.close().await.unwrap();
}
