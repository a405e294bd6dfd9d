//! Regression tests for the chroot and input defects of issue 8, against the real server.
//! Each test name starts with the defect number (d8: a sequential create of "/" escapes the
//! chroot, d11: builder inputs are not validated).

mod common;

use common::bounded;
use std::time::Duration;
use zk_core::{Client, CreateMode, Error};

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

#[tokio::test(flavor = "multi_thread")]
async fn d11_builder_inputs_are_validated() {
    let cs = zk_testkit::shared_server().connect_string();
    let year = Duration::from_secs(366 * 86400);
    type Bad = Box<dyn Fn(zk_core::ClientBuilder) -> zk_core::ClientBuilder>;
    let cases: Vec<(&str, Bad)> = vec![
        (
            "session_timeout MAX",
            Box::new(|b| b.session_timeout(Duration::MAX)),
        ),
        (
            "session_timeout 0",
            Box::new(|b| b.session_timeout(Duration::ZERO)),
        ),
        (
            "session_timeout > i32 ms",
            Box::new(move |b| b.session_timeout(year * 100)),
        ),
        (
            "connect_timeout 0",
            Box::new(|b| b.connect_timeout(Duration::ZERO)),
        ),
        (
            "connect_timeout MAX",
            Box::new(|b| b.connect_timeout(Duration::MAX)),
        ),
        (
            "request_timeout 0",
            Box::new(|b| b.request_timeout(Duration::ZERO)),
        ),
        (
            "request_timeout MAX",
            Box::new(|b| b.request_timeout(Duration::MAX)),
        ),
        (
            "reconnect_jitter MAX",
            Box::new(|b| b.reconnect_jitter(Duration::MAX)),
        ),
        ("max_frame_len 0", Box::new(|b| b.max_frame_len(0))),
        (
            "max_frame_len huge",
            Box::new(|b| b.max_frame_len(usize::MAX)),
        ),
        (
            "max_data_len huge",
            Box::new(|b| b.max_data_len(usize::MAX)),
        ),
        ("default_acl empty", Box::new(|b| b.default_acl(Vec::new()))),
    ];
    for (what, f) in cases {
        let r = bounded(what, f(Client::builder(cs.clone())).connect()).await;
        match r {
            Err(Error::InvalidArgument(msg)) => assert!(!msg.is_empty(), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // a huge per-request timeout is no deadline, not a panic
    let c = Client::connect(&cs).await.unwrap();
    c.with_timeout(Duration::MAX).exists("/").await.unwrap();
    c.close().await.unwrap();
}
