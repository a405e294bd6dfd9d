//! SASL GSSAPI (Kerberos) against a real ZooKeeper 3.8 whose JAAS `Server` section uses
//! `Krb5LoginModule`, with a real MIT KDC from the test kit. One KDC and one server for this
//! test binary: the Kerberos library reads `KRB5_CONFIG` / `KRB5CCNAME` from the process
//! environment, which is set once, before any client runs. (The KDC-stopped case has a binary
//! of its own: sasl_gssapi_kdc.rs.)

mod common;

use common::wait_state;
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use zk_core::{Acl, Client, CreateMode, CreateOptions, Error, Id, Perms, SaslGssapi, State};
use zk_testkit::{FaultProxy, Kdc, ZkServer};

struct Realm {
    kdc: Kdc,
    server: ZkServer,
    alice: PathBuf,
    bob: PathBuf,
}

/// The KDC (principals alice, bob; carol's ticket in the default credential cache) and a
/// Kerberos-enabled server, made once.
fn realm() -> &'static Realm {
    static REALM: OnceLock<Realm> = OnceLock::new();
    REALM.get_or_init(|| {
        common::init_tracing();
        let kdc = Kdc::start().expect("KDC");
        let alice = kdc.add_principal("alice").unwrap();
        let bob = kdc.add_principal("bob").unwrap();
        let carol = kdc.add_principal("carol").unwrap();
        let ccache = kdc.krb5_conf().with_file_name("default.ccache");
        // the only environment the Kerberos library reads; set before any client exists
        std::env::set_var("KRB5_CONFIG", kdc.krb5_conf());
        std::env::set_var("KRB5CCNAME", format!("FILE:{}", ccache.display()));
        std::env::remove_var("KRB5_CLIENT_KTNAME");
        let kinit = std::process::Command::new("kinit")
            .arg("-k")
            .arg("-t")
            .arg(&carol)
            .arg(kdc.principal("carol"))
            .status()
            .expect("kinit (krb5-user)");
        assert!(kinit.success(), "kinit carol: {kinit}");
        let server = ZkServer::builder()
            .sasl_kerberos(&kdc)
            .start()
            .expect("Kerberos server");
        Realm {
            kdc,
            server,
            alice,
            bob,
        }
    })
}

/// A login with `principal`'s keytab, asking for `zookeeper/localhost` (the server's principal)
/// although the connect string says 127.0.0.1.
fn login(realm: &Realm, principal: &str, keytab: &PathBuf) -> SaslGssapi {
    SaslGssapi::new()
        .principal(realm.kdc.principal(principal))
        .keytab(keytab)
        .service_host("localhost")
}

fn has_sasl_identity(ids: &[zk_core::ClientInfo], who: &str) -> bool {
    ids.iter().any(|i| i.auth_scheme == "sasl" && i.user == who)
}

#[tokio::test(flavor = "multi_thread")]
async fn gssapi_identity_acls_and_reauthentication_after_a_reconnect() {
    let realm = realm();
    let alice_name = realm.kdc.principal("alice");
    let proxy = FaultProxy::start(realm.server.addr()).await.unwrap();
    let alice = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(30))
        .sasl_gssapi(login(realm, "alice", &realm.alice))
        .connect()
        .await
        .expect("alice authenticates");
    let ids = alice.who_am_i().await.unwrap();
    assert!(has_sasl_identity(&ids, &alice_name), "whoami: {ids:?}");
    // a node only alice may use
    let acl = vec![Acl {
        perms: Perms::ALL,
        id: Id {
            scheme: "sasl".into(),
            id: alice_name.clone(),
        },
    }];
    let path = format!("/alice-only-{}", uuid::Uuid::new_v4().simple());
    alice
        .create_with(
            &path,
            b"kerberos",
            &CreateOptions::new(CreateMode::Persistent).with_acl(acl),
        )
        .await
        .unwrap();
    let bob = Client::builder(realm.server.connect_string())
        .connect_timeout(Duration::from_secs(30))
        .sasl_gssapi(login(realm, "bob", &realm.bob))
        .connect()
        .await
        .expect("bob authenticates");
    let ids = bob.who_am_i().await.unwrap();
    assert!(
        has_sasl_identity(&ids, &realm.kdc.principal("bob")),
        "{ids:?}"
    );
    let refused = bob.get_data(&path).await;
    assert!(
        matches!(refused, Err(Error::NoAuth)),
        "bob reads: {refused:?}"
    );
    // the server forgets the identity with the connection: after a reconnect alice
    // authenticates again, in the same session
    let sid = alice.session_id();
    proxy.reset();
    wait_state(&alice, State::Suspended, Duration::from_secs(10)).await;
    wait_state(&alice, State::Connected, Duration::from_secs(30)).await;
    assert_eq!(alice.session_id(), sid);
    assert_eq!(alice.get_data(&path).await.unwrap().0, b"kerberos");
    let ids = alice.who_am_i().await.unwrap();
    assert!(
        has_sasl_identity(&ids, &alice_name),
        "after reconnect: {ids:?}"
    );
}

/// Without a principal or keytab the ticket in the default credential cache (`KRB5CCNAME`,
/// here carol's from `kinit -k`) is used.
#[tokio::test(flavor = "multi_thread")]
async fn gssapi_uses_the_default_credential_cache() {
    let realm = realm();
    let carol = Client::builder(realm.server.connect_string())
        .connect_timeout(Duration::from_secs(30))
        .sasl_gssapi(SaslGssapi::new().service_host("localhost"))
        .connect()
        .await
        .expect("carol authenticates with the cached ticket");
    let ids = carol.who_am_i().await.unwrap();
    assert!(
        has_sasl_identity(&ids, &realm.kdc.principal("carol")),
        "{ids:?}"
    );
}

/// The service principal is `zookeeper/<host as written>`: a connect string of `127.0.0.1`
/// asks for `zookeeper/127.0.0.1`, which this KDC does not know. The error says so.
#[tokio::test(flavor = "multi_thread")]
async fn gssapi_unknown_service_principal_is_a_clear_error() {
    let realm = realm();
    let e = Client::builder(realm.server.connect_string())
        .connect_timeout(Duration::from_secs(30))
        .sasl_gssapi(
            SaslGssapi::new()
                .principal(realm.kdc.principal("alice"))
                .keytab(&realm.alice),
        )
        .connect()
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::SaslFailed { .. }), "{e:?}");
    assert!(
        msg.contains("zookeeper/127.0.0.1") && msg.contains("not found in Kerberos database"),
        "{msg}"
    );
    assert_eq!(e.code(), Some(-115));
}

/// A principal with neither a ticket nor a key: the error names the missing credentials.
#[tokio::test(flavor = "multi_thread")]
async fn gssapi_without_credentials_is_a_clear_error() {
    let realm = realm();
    let e = Client::builder(realm.server.connect_string())
        .connect_timeout(Duration::from_secs(30))
        .sasl_gssapi(
            SaslGssapi::new()
                .principal(realm.kdc.principal("dave"))
                .service_host("localhost"),
        )
        .connect()
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::SaslFailed { .. }), "{e:?}");
    assert!(
        msg.contains("cannot get Kerberos credentials for principal dave@")
            && msg.contains("no ticket in the credential cache"),
        "{msg}"
    );
}

/// A new session (the old one expired while the client was cut off) authenticates too.
#[tokio::test(flavor = "multi_thread")]
async fn gssapi_reauthenticates_in_a_new_session_after_expiry() {
    let realm = realm();
    let alice_name = realm.kdc.principal("alice");
    let proxy = FaultProxy::start(realm.server.addr()).await.unwrap();
    let alice = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(30))
        .sasl_gssapi(login(realm, "alice", &realm.alice))
        .connect()
        .await
        .expect("alice authenticates");
    let (sid, passwd) = alice.session_credentials();
    let generation = alice.status().generation;
    let mut states = alice.state_stream();
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&alice, State::Suspended, Duration::from_secs(10)).await;
    zk_testkit::expire_session(realm.server.addr(), sid, &passwd)
        .await
        .unwrap();
    proxy.reject_new(false);
    common::bounded("CONNECTED in a new session", async {
        while let Some(s) = states.next().await {
            if s.state == State::Connected && s.generation > generation {
                return;
            }
        }
        panic!("the state stream ended: {:?}", alice.status());
    })
    .await;
    assert_ne!(alice.session_id(), sid);
    let ids = alice.who_am_i().await.unwrap();
    assert!(has_sasl_identity(&ids, &alice_name), "new session: {ids:?}");
}

/// A server whose JAAS `Server` section has no Kerberos login (here DIGEST-MD5 users only)
/// answers the initial token with a DIGEST-MD5 challenge: the error says the server does not do
/// Kerberos, not that a token was invalid.
#[tokio::test(flavor = "multi_thread")]
async fn gssapi_to_a_server_without_kerberos_is_a_clear_error() {
    let realm = realm();
    let digest_only = ZkServer::builder()
        .sasl_digest_users(&[("bob", "bob-secret")])
        .start()
        .unwrap();
    let e = Client::builder(digest_only.connect_string())
        .connect_timeout(Duration::from_secs(30))
        .sasl_gssapi(login(realm, "alice", &realm.alice))
        .connect()
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::SaslFailed { .. }), "{e:?}");
    assert!(
        msg.contains("not a Kerberos token but a DIGEST-MD5 challenge")
            && msg.contains("Krb5LoginModule"),
        "{msg}"
    );
}
