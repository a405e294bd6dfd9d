//! SASL DIGEST-MD5 against a real ZooKeeper 3.8 with a JAAS `Server` section.

mod common;

use common::wait_state;
use std::time::Duration;
use zk_core::{Acl, Client, CreateMode, CreateOptions, Error, Id, Perms, State};
use zk_testkit::{FaultProxy, ZkServer};

fn server() -> ZkServer {
    common::init_tracing();
    ZkServer::builder()
        .sasl_digest_users(&[("bob", "bob-secret"), ("eve", "eve-secret")])
        .start()
        .expect("SASL server")
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_md5_identity_acls_and_reconnect() {
    let server = server();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let bob = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(10))
        .sasl_digest_md5("bob", "bob-secret")
        .connect()
        .await
        .expect("bob authenticates");
    let ids = bob.who_am_i().await.unwrap();
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == "bob"),
        "whoami: {ids:?}"
    );
    // a node only bob may read
    let acl = vec![Acl {
        perms: Perms::ALL,
        id: Id {
            scheme: "sasl".into(),
            id: "bob".into(),
        },
    }];
    bob.create_with(
        "/bob-only",
        b"secret",
        &CreateOptions::new(CreateMode::Persistent).with_acl(acl),
    )
    .await
    .unwrap();
    let eve = Client::builder(server.connect_string())
        .sasl_digest_md5("eve", "eve-secret")
        .connect()
        .await
        .expect("eve authenticates");
    assert!(matches!(
        eve.get_data("/bob-only").await,
        Err(Error::NoAuth)
    ));
    // after a reconnect bob authenticates again (the server forgets it with the connection)
    let sid = bob.session_id();
    proxy.reset();
    wait_state(&bob, State::Suspended, Duration::from_secs(10)).await;
    wait_state(&bob, State::Connected, Duration::from_secs(20)).await;
    assert_eq!(bob.session_id(), sid);
    assert_eq!(bob.get_data("/bob-only").await.unwrap().0, b"secret");
    let ids = bob.who_am_i().await.unwrap();
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == "bob"),
        "{ids:?}"
    );
}

/// With `enforce.auth.enabled` a failed exchange is answered -124 and the session closed: still
/// AuthFailed, not an endless reconnect.
#[tokio::test(flavor = "multi_thread")]
async fn enforced_sasl_wrong_password_is_auth_failed_and_the_right_one_works() {
    common::init_tracing();
    let server = ZkServer::builder()
        .sasl_digest_users(&[("bob", "bob-secret")])
        .cfg("enforce.auth.enabled", "true")
        .cfg("enforce.auth.schemes", "sasl")
        .start()
        .unwrap();
    let e = common::bounded(
        "connect with a wrong password",
        Client::builder(server.connect_string())
            // the verdict comes after a handshake and a SASL exchange, which a loaded machine
            // can take seconds over: bounds that do not turn it into a connect timeout
            .session_timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(30))
            .sasl_digest_md5("bob", "wrong")
            .connect(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::AuthFailed), "{e:?}");
    let bob = Client::builder(server.connect_string())
        .sasl_digest_md5("bob", "bob-secret")
        .connect()
        .await
        .expect("right password");
    bob.create("/enforced", b"", CreateMode::Persistent)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_auth_failed() {
    let server = server();
    let e = Client::builder(server.connect_string())
        // bounds that do not turn a slow handshake and SASL exchange into a connect timeout
        .session_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(30))
        .sasl_digest_md5("bob", "not-the-password")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AuthFailed), "{e:?}");
    let e = Client::builder(server.connect_string())
        // bounds that do not turn a slow handshake and SASL exchange into a connect timeout
        .session_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(30))
        .sasl_digest_md5("nobody", "x")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AuthFailed), "{e:?}");
}
