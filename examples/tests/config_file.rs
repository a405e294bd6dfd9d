//! zk-core's `Config` read from a file connects to a real server with the file's settings
//! (digest auth included), and the sample file shipped with the examples stays valid.

use std::time::Duration;
use zk_core::{digest_id, Acl, Client, Config, CreateMode, CreateOptions, Error, Id, Perms};
use zk_testkit::ZkServer;

const SAMPLE: &str = include_str!("../zk-config.json");

#[test]
fn the_sample_config_file_parses() {
    let c: Config = serde_json::from_str(SAMPLE).expect("examples/zk-config.json");
    assert_eq!(c.session_timeout, Duration::from_secs(15));
    assert_eq!(c.close_timeout, Duration::from_secs(2));
    assert_eq!(c.auth.len(), 1);
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[tokio::test]
async fn a_client_connected_from_a_config_file_authenticates_and_creates() {
    let server = tokio::task::spawn_blocking(ZkServer::start)
        .await
        .unwrap()
        .expect("start ZooKeeper");
    let json = format!(
        r#"{{
            "connect_string": "{}",
            "session_timeout": "12s",
            "connect_timeout": 30000,
            "request_timeout": "30s",
            "auth": [{{ "scheme": "digest", "credential": "svc:pw1" }}]
        }}"#,
        server.connect_string()
    );
    let config: Config = serde_json::from_str(&json).unwrap();
    let client = config.connect().await.expect("connect from the Config");

    let path = client
        .create_with(
            "/from-config",
            b"x",
            &CreateOptions::new(CreateMode::Persistent).with_acl(Acl::creator_all()),
        )
        .await
        .expect("create")
        .0;
    assert_eq!(path, "/from-config");
    // creator_all names the session's authenticated identity: the file's digest credential
    let (acl, _) = client.get_acl("/from-config").await.unwrap();
    assert_eq!(
        acl,
        vec![Acl {
            perms: Perms::ALL,
            id: Id::new("digest", digest_id("svc", "pw1")),
        }]
    );
    assert_eq!(client.get_data("/from-config").await.unwrap().0, b"x");

    let stranger = Client::connect(&server.connect_string()).await.unwrap();
    assert!(
        matches!(stranger.get_data("/from-config").await, Err(Error::NoAuth)),
        "a client without the file's credential must be refused"
    );
    stranger.close().await.unwrap();
    client.close().await.unwrap();
}

/// The `tls` section (CA file and client certificate files) reaches the TLS connector: a
/// server requiring mutual TLS accepts a client connected from the Config.
#[tokio::test]
async fn a_config_file_with_tls_files_connects_with_mutual_tls() {
    let server = tokio::task::spawn_blocking(|| {
        ZkServer::builder()
            .tls(zk_testkit::TlsOptions::new()) // mutual TLS, signed by the kit's CA
            .start()
    })
    .await
    .unwrap()
    .expect("start a TLS ZooKeeper");
    let f = server.tls_files().unwrap();
    let config = serde_json::json!({
        "connect_string": server.secure_connect_string().unwrap(),
        "session_timeout": "20s",
        // a JVM's first TLS handshakes may be slow on a loaded machine
        "connect_timeout": "60s",
        "tls": {
            "ca_file": f.ca,
            "client_cert": { "cert_file": f.client_cert, "key_file": f.client_key }
        }
    });
    let config: Config = serde_json::from_value(config).unwrap();
    let client = config
        .connect()
        .await
        .expect("mutual TLS connect from the Config");
    client
        .create("/tls-from-config", b"x", CreateMode::Ephemeral)
        .await
        .expect("create over TLS");
    client.close().await.unwrap();
}

/// The `sasl_digest_md5` section logs in: the session's identity is `sasl:<username>`.
#[tokio::test]
async fn a_config_file_with_a_sasl_login_authenticates() {
    let server = tokio::task::spawn_blocking(|| {
        ZkServer::builder()
            .sasl_digest_users(&[("bob", "bob-secret")])
            .start()
    })
    .await
    .unwrap()
    .expect("start a SASL ZooKeeper");
    let config: Config = serde_json::from_value(serde_json::json!({
        "connect_string": server.connect_string(),
        "connect_timeout": "60s",
        "sasl_digest_md5": { "username": "bob", "password": "bob-secret" }
    }))
    .unwrap();
    assert!(!format!("{config:?}").contains("bob-secret"));
    let client = config.connect().await.expect("SASL login from the Config");
    let ids = client.who_am_i().await.unwrap();
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == "bob"),
        "whoami: {ids:?}"
    );
    client.close().await.unwrap();
}
