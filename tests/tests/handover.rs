//! Session hand-over: a client detaches without closing its session, another takes it over by
//! id and password (issue 11).

mod common;

use std::time::Duration;
use zk_core::{Client, CreateMode, Error};

#[tokio::test(flavor = "multi_thread")]
async fn a_detached_session_is_taken_over_with_its_ephemerals() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("handover");
    let direct = common::chroot_client(&server.connect_string(), &root).await;
    let a = Client::builder(format!("{}{root}", server.connect_string()))
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    a.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let clone = a.clone();
    let (id, passwd) = a.detach().await;
    assert!(matches!(clone.exists("/").await, Err(Error::Closed)));
    // the session lives on: its ephemeral is still there
    let stat = direct
        .exists("/eph")
        .await
        .unwrap()
        .expect("ephemeral kept");
    assert_eq!(stat.ephemeral_owner, id);

    let b = Client::builder(format!("{}{root}", server.connect_string()))
        .session_timeout(Duration::from_secs(20))
        .session(id, passwd)
        .connect()
        .await
        .expect("take over");
    assert_eq!(b.session_id(), id);
    assert_eq!(
        b.get_ephemerals("/").await.unwrap(),
        vec!["/eph".to_owned()]
    );
    b.close().await.unwrap();
    assert!(direct.exists("/eph").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn taking_over_an_expired_session_fails_instead_of_making_a_new_one() {
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let a = Client::connect(&server.connect_string()).await.unwrap();
    let (id, passwd) = a.detach().await;
    zk_testkit::expire_session(server.addr(), id, &passwd)
        .await
        .unwrap();
    let e = Client::builder(server.connect_string())
        .session(id, passwd)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::SessionExpired), "{e:?}");
}
