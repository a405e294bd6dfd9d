//! `ZK_TESTKIT_BACKEND` itself. One test in its own process: it sets the variable.

use zk_testkit::{shared_server, Backend, Ensemble, Error, ZkServer, BACKEND_ENV};

#[tokio::test(flavor = "multi_thread")]
async fn the_backend_variable_picks_zk_server_and_refuses_unknown_values() {
    std::env::set_var(BACKEND_ENV, "zk_server");
    let err = ZkServer::start_async().await.unwrap_err();
    assert!(
        matches!(&err, Error::UnknownBackend(v) if v == "zk_server"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("ZK_TESTKIT_BACKEND") && text.contains("`zk-server`"),
        "{text}"
    );
    // an ensemble is always ZooKeeper, but a misspelt variable is refused there too
    assert!(matches!(
        Ensemble::start_async(1).await,
        Err(Error::UnknownBackend(_))
    ));
    // and the builder's own choice does not hide it
    assert!(matches!(
        ZkServer::builder().real_zookeeper("any").resolve_backend(),
        Err(Error::UnknownBackend(_))
    ));

    std::env::set_var(BACKEND_ENV, "zk-server");
    let server = ZkServer::start_async().await.unwrap();
    assert_eq!(server.backend(), Backend::ZkServer);
    assert!(server
        .backend_reason()
        .contains("ZK_TESTKIT_BACKEND=zk-server"));
    assert_eq!(server.mode_async().await.unwrap(), "standalone");
    let shared = tokio::task::spawn_blocking(|| shared_server().backend())
        .await
        .unwrap();
    assert_eq!(shared, Backend::ZkServer);
    let (backend, why) = ZkServer::builder()
        .sasl_digest_users(&[("u", "p")])
        .resolve_backend()
        .unwrap();
    assert_eq!((backend, why.as_str()), (Backend::ZooKeeper, "SASL"));

    std::env::set_var(BACKEND_ENV, "zookeeper");
    assert_eq!(
        ZkServer::builder().resolve_backend().unwrap().0,
        Backend::ZooKeeper
    );
    std::env::remove_var(BACKEND_ENV);
    assert_eq!(Backend::from_env().unwrap(), Backend::ZooKeeper);
}
