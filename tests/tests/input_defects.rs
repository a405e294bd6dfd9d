//! Regression tests for the chroot and input defects of issue 8, against the real server.
//! Each test name starts with the defect number (d8: a sequential create of "/" escapes the
//! chroot).

mod common;

use zk_core::{Client, CreateMode};

#[tokio::test(flavor = "multi_thread")]
async fn d8_sequential_create_of_root_stays_inside_the_chroot() {
    let server = zk_testkit::shared_server();
    let root = common::unique_root("d8");
    let c = common::chroot_client(&server.connect_string(), &root).await;
    let raw = Client::connect(&server.connect_string()).await.unwrap();
    for mode in [
        CreateMode::EphemeralSequential,
        CreateMode::PersistentSequential,
    ] {
        let p = c.create("/", b"", mode).await.unwrap();
        assert!(
            c.exists(&p).await.unwrap().is_some(),
            "{mode:?}: create returned {p:?}, which the same client cannot see"
        );
        assert!(
            raw.exists(&format!("{root}{p}")).await.unwrap().is_some(),
            "{mode:?}: {p:?} is not inside the chroot {root}"
        );
    }
    let res = c
        .multi(vec![zk_core::Op::create(
            "/",
            b"".to_vec(),
            CreateMode::PersistentSequential,
        )])
        .await
        .unwrap();
    let zk_core::OpResult::Create { path, .. } = &res[0] else {
        panic!("{res:?}")
    };
    assert!(c.exists(path).await.unwrap().is_some(), "multi: {path:?}");
    for p in c.get_ephemerals("/").await.unwrap() {
        assert!(c.exists(&p).await.unwrap().is_some(), "ephemeral {p:?}");
    }
    c.close().await.unwrap();
    raw.close().await.unwrap();
}
