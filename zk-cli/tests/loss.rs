//! Losing the lock while CMD runs: a real session expiry, a server restart under both
//! `--lost-on` policies.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_exits_74_stops_cmd_and_the_next_waiter_takes_the_lock() {
    let server = zk_testkit::shared_server();
    let h = server.connect_string();
    let c = client(&h).await;
    let p = unique("expiry");
    let dir = TempDir::new();
    let session_file = dir.join("session");

    let mut cmd = zk(&["--hosts", &h, "-v", "lock", &p, "--", "sleep", "60"]);
    cmd.env("ZK_DEBUG_SESSION_FILE", &session_file);
    let mut holder = Proc::spawn(cmd);
    eventually("the holder has the lock", || async {
        children(&c, &p).await.len() == 1
    })
    .await;
    let (sid, password) = debug_session(&session_file).await;
    // -v logs the same session id
    holder.wait_stderr(&format!("session=0x{sid:x}")).await;
    let sleep_pid = eventually_child(holder.pid(), "sleep").await;

    let got = dir.file("got");
    let mut next = Proc::start(
        &h,
        &[
            "lock",
            &p,
            "--",
            "sh",
            "-c",
            &format!("touch '{got}'; echo next-has-it"),
        ],
    );
    eventually("the next waiter queues", || async {
        children(&c, &p).await.len() == 2
    })
    .await;
    assert!(!dir.has("got"));

    zk_testkit::expire_session(server.addr(), sid, &password)
        .await
        .expect("expire the holder's session");

    assert_eq!(holder.exit().await, 74);
    let err = holder.stderr().join("\n");
    assert!(
        err.contains(&format!("zk: lost the lock on {p}: ")),
        "{err}"
    );
    assert!(
        err.contains("the connection to ZooKeeper was suspended")
            || err.contains("the ZooKeeper session was lost"),
        "says why: {err}"
    );
    assert!(!alive(sleep_pid), "CMD (sleep) is gone");

    assert_eq!(next.exit().await, 0);
    assert!(next.stdout().contains(&"next-has-it".to_owned()));
    assert!(dir.has("got"));
    assert_eq!(children(&c, &p).await, Vec::<String>::new(), "no node left");
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_a_suspended_connection_is_a_loss() {
    let server = tokio::task::spawn_blocking(zk_testkit::ZkServer::start)
        .await
        .unwrap()
        .expect("start a server");
    let h = server.connect_string();
    let p = unique("suspended");
    let mut z = Proc::start(
        &h,
        &["lock", &p, "--", "sh", "-c", "echo $$; exec sleep 60"],
    );
    let pid: u32 = z.wait_stdout("").await.trim().parse().unwrap();

    let server = std::sync::Arc::new(server);
    let s = server.clone();
    tokio::task::spawn_blocking(move || s.restart())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(z.exit().await, 74);
    let err = z.stderr().join("\n");
    assert!(
        err.contains(&format!(
            "zk: lost the lock on {p}: the connection to ZooKeeper was suspended"
        )),
        "{err}"
    );
    assert!(!alive(pid), "CMD is gone");
    let c = client(&h).await;
    eventually("the node is gone", || async {
        children(&c, &p).await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_lost_on_lost_cmd_runs_through_a_server_restart() {
    let server = tokio::task::spawn_blocking(|| {
        zk_testkit::ZkServer::builder()
            .max_session_timeout(120_000)
            .start()
    })
    .await
    .unwrap()
    .expect("start a server");
    let h = server.connect_string();
    let p = unique("lost-on-lost");
    let dir = TempDir::new();
    let cmd = format!(
        "echo ready; {}; echo finished",
        sh_wait_file(&dir.file("go"))
    );
    let mut z = Proc::start(
        &h,
        &[
            "-v",
            "--session-timeout",
            "120s", // what this server grants: a loaded restart was seen to outlast 40 s
            "lock",
            &p,
            "--lost-on",
            "lost",
            "--",
            "sh",
            "-c",
            &cmd,
        ],
    );
    z.wait_stdout("ready").await;
    z.wait_stderr("state CONNECTED").await;

    let server = std::sync::Arc::new(server);
    let s = server.clone();
    tokio::task::spawn_blocking(move || s.restart())
        .await
        .unwrap()
        .unwrap();
    z.wait_stderr("state SUSPENDED").await;
    z.wait_stderr_n("state CONNECTED", 2).await;

    let c = client(&h).await;
    assert_eq!(
        children(&c, &p).await.len(),
        1,
        "the session (and our node) survived"
    );
    dir.touch("go");
    assert_eq!(z.exit().await, 0, "{:?}", z.stderr());
    assert!(z.stdout().contains(&"finished".to_owned()));
    assert_eq!(children(&c, &p).await, Vec::<String>::new());
}
