//! Review of production connectivity (issue 11): TLS, SASL and cancellation of a connect,
//! each against a real ZooKeeper 3.8 the test kit configured for it.

mod common;

use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, State, TlsConfig};
use zk_testkit::{FaultProxy, TlsOptions, ZkServer};

/// The error message with its sources, lower-cased.
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

fn tls_server(opts: TlsOptions) -> ZkServer {
    common::init_tracing();
    ZkServer::builder().tls(opts).start().expect("TLS server")
}

/// Certificate and key files that are not what they claim (garbage, empty, a certificate
/// where the key belongs, a key of another certificate): each refused by `connect()` before
/// any connection, as a bad argument naming the file's role.
#[tokio::test(flavor = "multi_thread")]
async fn tls_files_that_are_not_certificates_are_refused_before_connecting() {
    let server = tls_server(TlsOptions::new());
    let f = server.tls_files().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, b"this is not PEM\n\x00\x01\x02").unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, b"").unwrap();
    let cases: Vec<(&str, TlsConfig, &str)> = vec![
        ("garbage CA", TlsConfig::new().ca_file(&garbage), "ca"),
        ("empty CA", TlsConfig::new().ca_file(&empty), "ca"),
        (
            "empty client certificate",
            TlsConfig::new()
                .ca_file(&f.ca)
                .client_cert_files(&empty, &f.client_key),
            "client certificate",
        ),
        (
            "empty client key",
            TlsConfig::new()
                .ca_file(&f.ca)
                .client_cert_files(&f.client_cert, &empty),
            "client key",
        ),
        (
            "a certificate as the key",
            TlsConfig::new()
                .ca_file(&f.ca)
                .client_cert_files(&f.client_cert, &f.client_cert),
            "client key",
        ),
        (
            "the key of another certificate",
            TlsConfig::new()
                .ca_file(&f.ca)
                .client_cert_files(&f.client_cert, &f.other_client_key),
            "do not fit",
        ),
    ];
    for (what, tls, says) in cases {
        let r = common::bounded(
            what,
            Client::builder(server.secure_connect_string().unwrap())
                .connect_timeout(Duration::from_secs(20))
                .tls(tls)
                .connect(),
        )
        .await;
        let e = r.err().unwrap_or_else(|| panic!("{what}: connected"));
        eprintln!("{what}: {e}");
        assert!(matches!(e, Error::InvalidArgument(_)), "{what}: {e:?}");
        let msg = chain(&e);
        assert!(msg.contains("tls") && msg.contains(says), "{what}: {msg}");
    }
}

/// A plain client on a TLS port and a TLS client on a plain port: connect ends within its
/// bound with `ConnectFailed`, never hangs.
#[tokio::test(flavor = "multi_thread")]
async fn plain_client_on_a_tls_port_and_tls_client_on_a_plain_port_fail_within_the_bound() {
    let server = tls_server(TlsOptions::new());
    let f = server.tls_files().unwrap();
    let e = common::bounded(
        "a plain client on the TLS port",
        Client::builder(server.secure_connect_string().unwrap())
            .session_timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(15))
            .connect(),
    )
    .await
    .expect_err("plain client on a TLS port");
    eprintln!("plain on TLS: {}", chain(&e));
    assert!(matches!(e, Error::ConnectFailed { .. }), "{e:?}");

    let e = common::bounded(
        "a TLS client on the plain port",
        Client::builder(server.connect_string())
            .session_timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(15))
            .tls(
                TlsConfig::new()
                    .ca_file(&f.ca)
                    .client_cert_files(&f.client_cert, &f.client_key),
            )
            .connect(),
    )
    .await
    .expect_err("TLS client on a plain port");
    let msg = chain(&e);
    eprintln!("TLS on plain: {msg}");
    assert!(matches!(e, Error::ConnectFailed { .. }), "{e:?}");
    assert!(msg.contains("tls"), "{msg}");
}

/// Hosts whose TLS handshake stalls (a silent partition after the TCP connect) hold the
/// client for one attempt's bound each only: it then reaches the host that answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_tls_handshake_does_not_keep_the_client_from_the_next_host() {
    let server = tls_server(TlsOptions::new());
    let f = server.tls_files().unwrap();
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let p = FaultProxy::start(server.secure_addr().unwrap())
            .await
            .unwrap();
        p.blackhole();
        stalled.push(p);
    }
    let hosts: Vec<String> = stalled
        .iter()
        .map(|p| p.connect_string())
        .chain([server.secure_connect_string().unwrap()])
        .collect();
    let tls = TlsConfig::new()
        .ca_file(&f.ca)
        .client_cert_files(&f.client_cert, &f.client_key);
    let tried_stalled = || -> u64 { stalled.iter().map(|p| p.connections_accepted()).sum() };
    // the host order is shuffled (3 stalled hosts of 4): connect until a client met at least
    // one stalled host before the one that answers
    let mut met_stalled = false;
    for _ in 0..8 {
        let before = tried_stalled();
        let c = Client::builder(hosts.join(","))
            // 7.5 s per host and attempt
            .session_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(120))
            .tls(tls.clone())
            .connect()
            .await
            .expect("the answering host is reached");
        c.exists("/").await.unwrap();
        c.close().await.unwrap();
        if tried_stalled() > before {
            met_stalled = true;
            break;
        }
    }
    assert!(met_stalled, "no client tried a stalled host first");
}

/// DIGEST-MD5 to a server without SASL set up (no JAAS `Server` section): ZooKeeper 3.8
/// answers the first SASL packet with an empty token. That is no challenge the mechanism can
/// answer, on any reconnect: `connect()` fails at once with `SaslFailed` naming the cause, and
/// the client does not reconnect over and over (it did, every few tens of milliseconds, until
/// the connect timeout, which then said only "no server established a session").
#[tokio::test(flavor = "multi_thread")]
async fn digest_md5_to_a_server_without_sasl_is_a_final_sasl_error_not_a_reconnect_loop() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let e = common::bounded(
        "SASL to a server without SASL",
        Client::builder(proxy.connect_string())
            .session_timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(15))
            .sasl_digest_md5("bob", "bob-secret")
            .connect(),
    )
    .await
    .expect_err("no SASL on the server");
    let msg = chain(&e);
    assert!(matches!(e, Error::SaslFailed { .. }), "{e:?}");
    assert!(
        msg.contains("digest-md5") && msg.contains("empty") && msg.contains("jaas"),
        "{msg}"
    );
    // the connection that failed, and at most one to close the session it made
    assert!(
        proxy.connections_accepted() <= 2,
        "{} connections: the client kept reconnecting",
        proxy.connections_accepted()
    );
}

/// A SASL exchange that does not end (the server's answer held in a proxy): the handshake
/// succeeded, so no attempt failed, and `connect()` at its timeout said only "no server ...
/// established a session", with nothing about SASL. It names the stalled SASL exchange.
#[tokio::test(flavor = "multi_thread")]
async fn connect_timing_out_in_a_stalled_sasl_exchange_names_sasl() {
    common::init_tracing();
    let server = ZkServer::builder()
        .sasl_digest_users(&[("bob", "bob-secret")])
        .start()
        .expect("SASL server");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    // the first SASL packet (opcode 102) stops in the proxy
    proxy.hold_request(&[102]);
    let e = common::bounded(
        "connect through a stalled SASL exchange",
        Client::builder(proxy.connect_string())
            // the exchange's own bound (2/3 of it) is longer than the connect wait
            .session_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(8))
            .sasl_digest_md5("bob", "bob-secret")
            .connect(),
    )
    .await
    .expect_err("SASL never answered");
    assert_eq!(proxy.held_requests(), 1, "the SASL packet was held");
    let msg = chain(&e);
    assert!(matches!(e, Error::ConnectFailed { .. }), "{e:?}");
    assert!(msg.contains("sasl"), "{msg}");
    proxy.release_held();
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// SASL passwords and `add_auth` credentials appear in no log line of zk-core, even at trace
/// level, nor in a builder's Debug output or an error's text; through a connect, a reconnect
/// with re-authentication, and a refused password.
#[tokio::test(flavor = "current_thread")]
async fn sasl_and_auth_secrets_never_reach_the_logs() {
    const SASL_PW: &str = "pw-XYZZY-sasl";
    const DIGEST_PW: &str = "pw-PLUGH-digest";
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("zk_core=trace"))
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = ZkServer::builder()
        .sasl_digest_users(&[("bob", SASL_PW)])
        .start()
        .expect("SASL server");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let builder = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(20))
        .sasl_digest_md5("bob", SASL_PW)
        .auth("digest", format!("carol:{DIGEST_PW}"));
    let debug = format!("{builder:?}");
    let c = builder.connect().await.expect("SASL client");
    c.add_auth("digest", format!("dave:{DIGEST_PW}").as_bytes())
        .await
        .unwrap();
    c.create("/secrets", b"", CreateMode::Persistent)
        .await
        .unwrap();
    proxy.reset();
    common::wait_state(&c, State::Suspended, Duration::from_secs(30)).await;
    common::wait_state(&c, State::Connected, Duration::from_secs(30)).await;
    c.exists("/secrets").await.unwrap();
    let wrong = Client::builder(server.connect_string())
        .connect_timeout(Duration::from_secs(20))
        .sasl_digest_md5("bob", format!("{SASL_PW}-wrong"))
        .connect()
        .await
        .expect_err("wrong password");
    let err = format!("{wrong} {wrong:?}");
    c.close().await.unwrap();
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("SASL authentication done"),
        "the capture saw the SASL exchange: {text}"
    );
    for (what, s) in [("logs", &text), ("builder Debug", &debug), ("error", &err)] {
        assert!(!s.contains("XYZZY"), "the SASL password in the {what}: {s}");
        assert!(
            !s.contains("PLUGH"),
            "an add_auth password in the {what}: {s}"
        );
    }
}

/// The number of client connections a server holds, by `cons` (its own connection included).
fn connections(server: &ZkServer) -> usize {
    server
        .four_letter("cons")
        .unwrap()
        .lines()
        .filter(|l| l.contains("queued="))
        .count()
}

/// `connect()` dropped at every point before it completes (SASL server: TCP connect,
/// handshake, SASL exchange): the client's connection ends and no task keeps reconnecting.
#[tokio::test(flavor = "multi_thread")]
async fn dropping_connect_at_every_point_leaves_no_connection_behind() {
    common::init_tracing();
    let server = ZkServer::builder()
        .sasl_digest_users(&[("bob", "bob-secret")])
        .start()
        .expect("SASL server");
    let baseline = connections(&server);
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let tasks_before = tasks();
    for i in 0.. {
        let mut fut = Box::pin(
            Client::builder(server.connect_string())
                .session_timeout(Duration::from_secs(10))
                .sasl_digest_md5("bob", "bob-secret")
                .connect(),
        );
        let mut done = None;
        for _ in 0..=i {
            if let Poll::Ready(r) = futures::poll!(&mut fut) {
                done = Some(r.expect("connect"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(fut);
        let completed = done.is_some();
        if let Some(c) = done {
            c.close().await.unwrap();
        }
        common::bounded(
            &format!("the connection of a connect dropped after {i} polls ends"),
            async {
                while connections(&server) > baseline || tasks() > tasks_before {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        )
        .await;
        if completed {
            break;
        }
    }
}

/// The production set-up: mutual TLS and SASL (enforced) on one server. The client shows both
/// identities, reads a `sasl:` node, and authenticates again after a server restart and in a
/// new session after its session really expired (taken over and closed by another client).
#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_with_enforced_sasl_survives_a_restart_and_an_expiry() {
    use zk_core::{Acl, CreateOptions, Id, Perms};
    common::init_tracing();
    let server = ZkServer::builder()
        .tls(TlsOptions::new())
        .sasl_digest_users(&[("bob", "bob-secret")])
        .cfg("enforce.auth.enabled", "true")
        .cfg("enforce.auth.schemes", "sasl")
        .max_session_timeout(120_000)
        .start()
        .expect("TLS + SASL server");
    let f = server.tls_files().unwrap();
    let tls = TlsConfig::new()
        .ca_file(&f.ca)
        .client_cert_files(&f.client_cert, &f.client_key);
    let builder = || {
        Client::builder(server.secure_connect_string().unwrap())
            .session_timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(60))
            .tls(tls.clone())
            .sasl_digest_md5("bob", "bob-secret")
    };
    let c = builder()
        .reconnect_after_expiry(true)
        .connect()
        .await
        .expect("TLS + SASL");
    let identities = |ids: &[zk_core::ClientInfo]| -> Vec<String> {
        let mut v: Vec<String> = ids
            .iter()
            .filter(|i| i.auth_scheme != "ip")
            .map(|i| format!("{}:{}", i.auth_scheme, i.user))
            .collect();
        v.sort();
        v
    };
    let want = ["sasl:bob", "x509:CN=zk-testkit client"];
    assert_eq!(identities(&c.who_am_i().await.unwrap()), want);
    let acl = vec![Acl {
        perms: Perms::ALL,
        id: Id {
            scheme: "sasl".into(),
            id: "bob".into(),
        },
    }];
    c.create_with(
        "/bob-only",
        b"bank",
        &CreateOptions::new(CreateMode::Persistent).with_acl(acl),
    )
    .await
    .unwrap();
    // a restart: the same session, authenticated again
    let sid = c.session_id();
    server.restart().unwrap();
    common::wait_state(&c, State::Connected, Duration::from_secs(120)).await;
    assert_eq!(c.session_id(), sid);
    assert_eq!(c.get_data("/bob-only").await.unwrap().0, b"bank");
    assert_eq!(identities(&c.who_am_i().await.unwrap()), want);
    // the session ends for real: another client takes it over and closes it
    let (id, pw) = c.session_credentials();
    let thief = builder()
        .session(id, pw)
        .connect()
        .await
        .expect("take the session over");
    thief.close().await.unwrap();
    common::bounded("a new session after the expiry", async {
        while !(c.state() == State::Connected && c.session_id() != sid) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(c.get_data("/bob-only").await.unwrap().0, b"bank");
    assert_eq!(identities(&c.who_am_i().await.unwrap()), want);
    c.close().await.unwrap();
}

/// DIGEST-MD5 hashes the user name and password in ISO 8859-1 when every character fits in
/// it, even with `charset=utf-8` (RFC 2831 2.1.2.1; the Java server does so): a password with
/// `ä` or `£` was hashed as UTF-8 by the client, and the right password was refused.
#[tokio::test(flavor = "multi_thread")]
async fn digest_md5_password_with_latin_1_characters_is_accepted() {
    common::init_tracing();
    const PASSWORD: &str = "p\u{e4}ss-\u{a3}-w\u{f6}rd";
    let server = ZkServer::builder()
        .sasl_digest_users(&[
            ("bob", PASSWORD),
            ("z\u{f6}e", "plain-secret"),
            ("eve", "\u{e4}-\u{20ac}"),
        ])
        .start()
        .expect("SASL server");
    // the last password has a character beyond ISO 8859-1 (the euro sign): hashed in UTF-8
    for (user, password) in [
        ("bob", PASSWORD),
        ("z\u{f6}e", "plain-secret"),
        ("eve", "\u{e4}-\u{20ac}"),
    ] {
        let c = common::bounded(
            "connect with a Latin-1 credential",
            Client::builder(server.connect_string())
                .session_timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(30))
                .sasl_digest_md5(user, password)
                .connect(),
        )
        .await
        .unwrap_or_else(|e| panic!("{user}: {e:?}"));
        let ids = c.who_am_i().await.unwrap();
        assert!(
            ids.iter()
                .any(|i| i.auth_scheme == "sasl" && i.user == user),
            "{user}: {ids:?}"
        );
        c.close().await.unwrap();
    }
}

/// The loud opt-out skips the name check only: a certificate from a CA the client does not
/// trust, or an expired one, is still refused with it.
#[tokio::test(flavor = "multi_thread")]
async fn accepting_any_server_name_still_checks_the_ca_and_the_dates() {
    let wrong_name = tls_server(TlsOptions::new().server_names(&["zk.example.test"]));
    let expired = tls_server(
        TlsOptions::new()
            .server_names(&["zk.example.test"])
            .expired_server_certificate(),
    );
    let cases = [
        (&wrong_name, true, "unknownissuer"),
        (&expired, false, "expired"),
    ];
    for (server, other_ca, says) in cases {
        let f = server.tls_files().unwrap();
        let ca = if other_ca { &f.other_ca } else { &f.ca };
        let e = common::bounded(
            says,
            Client::builder(server.secure_connect_string().unwrap())
                .session_timeout(Duration::from_secs(20))
                .connect_timeout(Duration::from_secs(25))
                .tls(
                    TlsConfig::new()
                        .ca_file(ca)
                        .client_cert_files(&f.client_cert, &f.client_key)
                        .danger_accept_any_server_name(),
                )
                .connect(),
        )
        .await
        .expect_err("refused despite the opt-out");
        let msg = chain(&e);
        assert!(msg.contains("tls") && msg.contains(says), "{says}: {msg}");
    }
}

/// Under enforced SASL the server closes the session at the first packet that is not SASL
/// (-124): after a reconnect, the watches to re-register, the `add_auth` replay and the
/// requests queued while disconnected all wait for the SASL exchange, and all succeed.
#[tokio::test(flavor = "multi_thread")]
async fn nothing_goes_out_before_sasl_after_a_reconnect_under_enforcement() {
    use zk_core::AddWatchMode;
    common::init_tracing();
    let server = ZkServer::builder()
        .sasl_digest_users(&[("bob", "bob-secret")])
        .cfg("enforce.auth.enabled", "true")
        .cfg("enforce.auth.schemes", "sasl")
        .start()
        .expect("enforced SASL server");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30))
        .sasl_digest_md5("bob", "bob-secret")
        .auth("digest", "carol:carol-secret")
        .connect()
        .await
        .expect("SASL client");
    c.create("/w", b"", CreateMode::Persistent).await.unwrap();
    let mut persistent = c.add_watch("/w", AddWatchMode::Persistent).await.unwrap();
    let (_, _, oneshot) = c.get_data_watch("/w").await.unwrap();
    let sid = c.session_id();
    // the next connection's SASL packet waits in the proxy while requests queue up
    proxy.hold_request(&[102]);
    proxy.reset();
    common::wait_state(&c, State::Suspended, Duration::from_secs(30)).await;
    common::bounded("the SASL packet of the new connection is held", async {
        while proxy.held_requests() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let queued: Vec<_> = (0..5)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.create(&format!("/w/q{i}"), b"", CreateMode::Persistent)
                    .await
            })
        })
        .collect();
    let auth = tokio::spawn({
        let c = c.clone();
        async move { c.add_auth("digest", b"dave:dave-secret").await }
    });
    // time for the spawned calls to reach the session task (nothing is judged by it: a call
    // that arrives after the release is sent after SASL all the same)
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.release_held();
    common::wait_state(&c, State::Connected, Duration::from_secs(30)).await;
    for q in queued {
        common::bounded("a queued create", q)
            .await
            .unwrap()
            .unwrap();
    }
    common::bounded("add_auth", auth).await.unwrap().unwrap();
    assert_eq!(c.session_id(), sid, "the same session");
    // the watches were re-registered on the new connection
    c.set_data("/w", b"1", None).await.unwrap();
    common::bounded("the one-shot watch fires", oneshot)
        .await
        .unwrap();
    common::bounded("the persistent watch fires", async {
        loop {
            let ev = futures::StreamExt::next(&mut persistent)
                .await
                .expect("stream")
                .expect("event");
            if ev.event_type == zk_core::EventType::NodeDataChanged {
                break;
            }
        }
    })
    .await;
    let ids = c.who_am_i().await.unwrap();
    for who in ["bob", "carol", "dave"] {
        assert!(ids.iter().any(|i| i.user == who), "{who}: {ids:?}");
    }
    c.close().await.unwrap();
}

/// A client given the members by name (`localhost:PORT`, certificates naming `localhost`
/// only) while the config node writes them by address (`127.0.0.1`): the tracker replaced the
/// names with the addresses, the client left its working connection at once (its host was no
/// longer in the list) for `127.0.0.1`, where the server-name check fails, and never
/// connected again. A member the client already knows keeps the name the client knows it by.
#[tokio::test(flavor = "multi_thread")]
async fn the_tracker_keeps_the_host_names_the_client_was_given_for_known_members() {
    common::init_tracing();
    let ens = zk_testkit::Ensemble::builder()
        .size(3)
        .reconfig_enabled(true)
        .tls(TlsOptions::new().server_names(&["localhost"]))
        .start_async()
        .await
        .expect("a TLS ensemble");
    let plain = |i: usize| ens.member(i).addr().port();
    let secure = |i: usize| ens.member(i).secure_addr().unwrap().port();
    let ports: Vec<(u16, u16)> = (0..3).map(|i| (plain(i), secure(i))).collect();
    let f = ens.member(0).tls_files().unwrap();
    let hosts: Vec<String> = (0..3).map(|i| format!("localhost:{}", secure(i))).collect();
    let c = Client::builder(hosts.join(","))
        .session_timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(60))
        .tls(
            TlsConfig::new()
                .ca_file(&f.ca)
                .client_cert_files(&f.client_cert, &f.client_key),
        )
        .ensemble_tracker(true)
        .ensemble_tracker_secure_ports(ports)
        .connect()
        .await
        .expect("TLS client by host name");
    let sid = c.session_id();
    // the tracker has read the config (its first update logs and sets the list; a list of
    // names stays a list of names): give it the time of a few reads, judged by a request
    // that must succeed on a connection of the same session
    for _ in 0..3 {
        c.get_config().await.expect("config");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list: Vec<String> = c.server_list().iter().map(|h| h.to_string()).collect();
    let mut want: Vec<String> = hosts.iter().map(|h| format!("tcp+tls://{h}")).collect();
    let mut got = list.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the host list after the tracker ran");
    common::wait_state(&c, State::Connected, Duration::from_secs(30)).await;
    assert!(c.exists("/zookeeper").await.unwrap().is_some());
    assert_eq!(c.session_id(), sid);
    c.close().await.unwrap();
}

/// A member that fails every connection after the handshake (here: every SASL exchange cut by
/// the network) was hammered: the server's ConnectResponse reset the host ring's failure count,
/// so the "a whole cycle failed: pause ~1 s" rule never applied and the client reconnected
/// after the 0-100 ms jitter only, some tens of times in 3 s. A host now counts as working only
/// once the connection is CONNECTED (handshake and SASL done), so after each such failure of
/// the one host the cycle pause applies.
///
/// No assertion on speed: an upper bound on attempts from the documented pause. With one host
/// every failed attempt ends a cycle, so at most one attempt per second follows the first; the
/// bound allows 4 per second of the measured window (it grows if the machine is slow).
#[tokio::test(flavor = "multi_thread")]
async fn a_member_failing_after_the_handshake_is_not_hammered_by_reconnects() {
    common::init_tracing();
    let server = ZkServer::builder()
        .sasl_digest_users(&[("bob", "bob-secret")])
        .start()
        .expect("SASL server");
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30))
        .sasl_digest_md5("bob", "bob-secret")
        .connect()
        .await
        .expect("SASL client");
    let sid = c.session_id();
    // every SASL packet (102) from now on reaches the server, then the connection is cut
    proxy.cut_after_every_request(102);
    let before = proxy.connections_accepted();
    let start = tokio::time::Instant::now();
    proxy.reset();
    common::wait_state(&c, State::Suspended, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = proxy.connections_accepted() - before;
    let window = start.elapsed();
    let cuts = proxy.cuts_fired();
    proxy.disarm_cut();
    assert!(cuts >= 1, "no SASL exchange was cut ({attempts} attempts)");
    let bound = 4 * window.as_secs_f64().ceil() as u64;
    assert!(
        attempts <= bound,
        "{attempts} connection attempts ({cuts} SASL exchanges cut) in {window:?}: the client \
         reconnected without the cycle pause (at most {bound})"
    );
    // the member works again: the client gets back to its session there
    common::wait_state(&c, State::Connected, Duration::from_secs(30)).await;
    assert_eq!(c.session_id(), sid, "the same session");
    c.close().await.unwrap();
}
