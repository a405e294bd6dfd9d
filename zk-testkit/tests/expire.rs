//! Forced session expiry against the real server.

mod common;

use std::time::Duration;

use common::*;
use tokio::net::TcpStream;
use tokio::time::timeout;
use zk_testkit::{expire_session, shared_server};

const EPHEMERAL: i32 = 1;

#[tokio::test(flavor = "multi_thread")]
async fn expire_session_kills_the_session_and_its_ephemerals() {
    let addr = tokio::task::spawn_blocking(|| shared_server().addr())
        .await
        .unwrap();
    let (mut victim, session) = connect(addr).await.unwrap();
    assert!(session.timeout >= 4000, "{session:?}");
    let path = unique_path("expire-eph");
    let create = create_request(1, &path, b"", EPHEMERAL);
    assert_eq!(call(&mut victim, &create).await.unwrap(), OK);

    expire_session(addr, session.session_id, &session.password)
        .await
        .unwrap();

    // The server dropped the victim's connection ...
    assert!(timeout(Duration::from_secs(20), is_closed(&mut victim))
        .await
        .unwrap());
    // ... re-attaching says "expired" (timeOut 0) ...
    let mut again = TcpStream::connect(addr).await.unwrap();
    let response = handshake(&mut again, session.session_id, &session.password, 30_000)
        .await
        .unwrap();
    assert_eq!(response.timeout, 0, "{response:?}");
    assert_eq!(response.session_id, 0);
    // ... and the ephemeral node is gone.
    assert_eq!(exists(addr, &path).await.unwrap(), NONODE);

    // Expiring it again reports that the session is unknown.
    let err = expire_session(addr, session.session_id, &session.password)
        .await
        .unwrap_err();
    assert!(
        matches!(err, zk_testkit::Error::SessionNotFound { .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expire_session_of_an_unknown_session_fails() {
    let addr = tokio::task::spawn_blocking(|| shared_server().addr())
        .await
        .unwrap();
    let err = expire_session(addr, 0x0123_4567_89ab_cdef, &[7; 16])
        .await
        .unwrap_err();
    assert!(
        matches!(err, zk_testkit::Error::SessionNotFound { .. }),
        "{err}"
    );
}
