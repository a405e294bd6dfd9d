//! Regression tests for the chroot and input defects of issue 8, against the real server.
//! Each test name starts with the defect number (d8: a sequential create of "/" escapes the
//! chroot, d11: builder inputs are not validated), and the suspected multi_read result count.

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

/// A "server" that completes the handshake, then answers every request with a multi response
/// holding one result, however many ops it had.
async fn one_result_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use zk_proto::{MultiResponse, MultiResult, Record, ReplyHeader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut req = [0u8; 49];
                if s.read_exact(&mut req).await.is_err() {
                    return;
                }
                let mut resp = vec![0, 0, 0, 37, 0, 0, 0, 0, 0, 0, 0x27, 0x10];
                resp.extend_from_slice(&0x78i64.to_be_bytes());
                resp.extend_from_slice(&[0, 0, 0, 16]);
                resp.extend_from_slice(&[1; 16]);
                resp.push(0);
                s.write_all(&resp).await.unwrap();
                loop {
                    let mut len = [0u8; 4];
                    if s.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                    if s.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let xid = i32::from_be_bytes(body[..4].try_into().unwrap());
                    if xid < 0 {
                        continue; // pings, auth, set watches: no answer needed here
                    }
                    let mut frame = ReplyHeader {
                        xid,
                        zxid: 1,
                        err: 0,
                    }
                    .to_bytes()
                    .to_vec();
                    let multi = MultiResponse {
                        results: vec![MultiResult::Error(-101)],
                    };
                    frame.extend_from_slice(&multi.to_bytes());
                    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
                    out.extend_from_slice(&frame);
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_read_checks_the_result_count() {
    let addr = one_result_server().await;
    let c = Client::connect(&addr.to_string()).await.unwrap();
    let r = bounded(
        "multi_read",
        c.multi_read(vec![
            zk_core::ReadOp::GetData("/a".into()),
            zk_core::ReadOp::GetData("/b".into()),
        ]),
    )
    .await;
    assert!(
        matches!(&r, Err(Error::Protocol(m)) if m.contains("1 results for 2 ops")),
        "{r:?}"
    );
    let r = bounded(
        "multi",
        c.multi(vec![
            zk_core::Op::check("/a", None),
            zk_core::Op::check("/b", None),
        ]),
    )
    .await;
    assert!(matches!(&r, Err(Error::Protocol(_))), "{r:?}");
}
