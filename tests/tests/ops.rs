//! Every operation against a real ZooKeeper: success and each documented error.

mod common;

use common::{bounded, shared};
use std::time::Duration;
use zk_core::{
    Acl, Client, CreateMode, CreateOptions, Error, EventType, Op, OpResult, Perms, ReadOp,
    ReadResult, WatcherType,
};

#[tokio::test(flavor = "multi_thread")]
async fn create_in_every_mode() {
    let c = shared("create").await;
    let (p, s) = c
        .create_with("/p", b"d", &CreateOptions::new(CreateMode::Persistent))
        .await
        .unwrap();
    assert_eq!(p, "/p");
    assert_eq!((s.version, s.data_length, s.ephemeral_owner), (0, 1, 0));

    let (_, s) = c
        .create_with("/e", b"", &CreateOptions::new(CreateMode::Ephemeral))
        .await
        .unwrap();
    assert_eq!(s.ephemeral_owner, c.session_id());

    let s1 = c
        .create("/p/s-", b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    let s2 = c
        .create("/p/s-", b"", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    for s in [&s1, &s2] {
        let digits = s.strip_prefix("/p/s-").unwrap();
        assert_eq!(digits.len(), 10, "{s}");
        assert!(digits.parse::<i32>().is_ok(), "{s}");
    }
    assert!(s2 > s1);
    // a sequential path may end in '/': the name is just the digits
    let s3 = c
        .create("/p/", b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(s3.len(), "/p/".len() + 10);

    let (_, s) = c
        .create_with("/cont", b"", &CreateOptions::new(CreateMode::Container))
        .await
        .unwrap();
    assert_eq!(s.ephemeral_owner, 0);
    let (_, s) = c
        .create_with(
            "/ttl",
            b"",
            &CreateOptions::new(CreateMode::PersistentWithTtl(Duration::from_secs(3600))),
        )
        .await
        .unwrap();
    assert_eq!(s.ephemeral_owner, 0);
    let t = c
        .create(
            "/ttl-",
            b"",
            CreateMode::PersistentSequentialWithTtl(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert!(t.starts_with("/ttl-"));

    // errors
    assert!(matches!(
        c.create("/p", b"", CreateMode::Persistent).await,
        Err(Error::NodeExists)
    ));
    assert!(matches!(
        c.create("/missing/child", b"", CreateMode::Persistent)
            .await,
        Err(Error::NoNode)
    ));
    assert!(matches!(
        c.create("/e/child", b"", CreateMode::Persistent).await,
        Err(Error::NoChildrenForEphemerals)
    ));
    // a digest id that is not user:hash is refused by the server
    let bad_acl = [Acl::new(Perms::ALL, "digest", "nocolon")];
    assert!(matches!(
        c.create_with(
            "/badacl",
            b"",
            &CreateOptions::new(CreateMode::Persistent).with_acl(bad_acl.to_vec())
        )
        .await,
        Err(Error::InvalidAcl)
    ));
}

/// A TTL is sent in whole milliseconds: one under a millisecond would go out as 0, which the
/// server refuses. `create` refused it before sending; `multi` checked `is_zero()` and sent it.
#[tokio::test(flavor = "multi_thread")]
async fn a_ttl_under_a_millisecond_is_refused_before_sending_in_multi_as_in_create() {
    let c = shared("ttl-sub-ms").await;
    for mode in [
        CreateMode::PersistentWithTtl(Duration::from_micros(500)),
        CreateMode::PersistentSequentialWithTtl(Duration::from_nanos(1)),
    ] {
        let r = c.create("/t", b"", mode).await;
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "create: {r:?}");
        let r = c.multi(vec![Op::create("/t", b"".to_vec(), mode)]).await;
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "multi: {r:?}");
    }
    assert_eq!(c.get_children("/").await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_without_extended_types_is_unimplemented() {
    let server = zk_testkit::ZkServer::builder()
        .extended_types(false)
        .start()
        .unwrap();
    let c = Client::connect(&server.connect_string()).await.unwrap();
    let r = c
        .create(
            "/ttl",
            b"",
            CreateMode::PersistentWithTtl(Duration::from_secs(5)),
        )
        .await;
    assert!(matches!(r, Err(Error::Unimplemented)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_write_delete_and_their_errors() {
    let c = shared("rwd").await;
    c.create("/n", b"v0", CreateMode::Persistent).await.unwrap();
    assert_eq!(c.exists("/n").await.unwrap().unwrap().version, 0);
    assert_eq!(c.exists("/none").await.unwrap(), None);

    let (d, s) = c.get_data("/n").await.unwrap();
    assert_eq!((d.as_slice(), s.version), (&b"v0"[..], 0));
    let s = c.set_data("/n", b"v1", Some(0)).await.unwrap();
    assert_eq!(s.version, 1);
    assert!(matches!(
        c.set_data("/n", b"x", Some(0)).await,
        Err(Error::BadVersion)
    ));
    assert!(matches!(
        c.set_data("/none", b"x", None).await,
        Err(Error::NoNode)
    ));
    assert!(matches!(c.get_data("/none").await, Err(Error::NoNode)));
    let s = c.set_data("/n", b"", None).await.unwrap();
    assert_eq!((s.version, s.data_length), (2, 0));

    c.create("/n/a", b"", CreateMode::Persistent).await.unwrap();
    c.create("/n/b", b"", CreateMode::Persistent).await.unwrap();
    let mut ch = c.get_children("/n").await.unwrap();
    ch.sort();
    assert_eq!(ch, vec!["a", "b"]);
    let (_, st) = c.get_children_with_stat("/n").await.unwrap();
    assert_eq!(st.num_children, 2);
    assert!(matches!(c.get_children("/none").await, Err(Error::NoNode)));
    assert_eq!(c.get_all_children_number("/n").await.unwrap(), 2);

    assert!(matches!(c.delete("/n", None).await, Err(Error::NotEmpty)));
    assert!(matches!(
        c.delete("/n/a", Some(5)).await,
        Err(Error::BadVersion)
    ));
    c.delete("/n/a", Some(0)).await.unwrap();
    assert!(matches!(c.delete("/n/a", None).await, Err(Error::NoNode)));
    c.delete_recursive("/n").await.unwrap();
    assert_eq!(c.exists("/n").await.unwrap(), None);

    c.ensure_path("/x/y/z").await.unwrap();
    c.ensure_path("/x/y/z").await.unwrap();
    assert!(c.exists("/x/y/z").await.unwrap().is_some());
    c.sync("/x").await.unwrap();
    assert!(matches!(
        c.sync("/nonexistent-is-fine-for-sync").await,
        Ok(()) | Err(Error::NoNode)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn acls_and_digest_auth() {
    let server = zk_testkit::shared_server();
    let root = common::unique_root("acl");
    let owner = common::chroot_client(&server.connect_string(), &root).await;
    owner.add_auth("digest", b"alice:secret").await.unwrap();
    let acl = vec![
        Acl::digest(Perms::ALL, "alice", "secret"),
        Acl::new(Perms::READ, "world", "anyone"),
    ];
    owner
        .create_with(
            "/guarded",
            b"data",
            &CreateOptions::new(CreateMode::Persistent).with_acl(acl.clone()),
        )
        .await
        .unwrap();
    let (got, stat) = owner.get_acl("/guarded").await.unwrap();
    assert_eq!(got, acl);
    assert_eq!(stat.aversion, 0);

    // someone else: may read, may not write
    let other = Client::connect(&format!("{}{root}", server.connect_string()))
        .await
        .unwrap();
    assert_eq!(other.get_data("/guarded").await.unwrap().0, b"data");
    assert!(matches!(
        other.set_data("/guarded", b"x", None).await,
        Err(Error::NoAuth)
    ));
    other.add_auth("digest", b"alice:wrong").await.unwrap();
    assert!(matches!(
        other.set_data("/guarded", b"x", None).await,
        Err(Error::NoAuth)
    ));
    assert!(other
        .who_am_i()
        .await
        .unwrap()
        .iter()
        .any(|i| i.auth_scheme == "digest" && i.user == "alice"));

    // the owner may; then lock reading down too
    owner.set_data("/guarded", b"y", None).await.unwrap();
    assert!(matches!(
        owner.set_acl("/guarded", &acl[..1], Some(7)).await,
        Err(Error::BadVersion)
    ));
    let s = owner.set_acl("/guarded", &acl[..1], Some(0)).await.unwrap();
    assert_eq!(s.aversion, 1);
    assert!(matches!(
        other.get_data("/guarded").await,
        Err(Error::NoAuth)
    ));

    // CREATOR_ALL: the creator's identity
    owner
        .create_with(
            "/mine",
            b"",
            &CreateOptions::new(CreateMode::Persistent).with_acl(Acl::creator_all()),
        )
        .await
        .unwrap();
    let (got, _) = owner.get_acl("/mine").await.unwrap();
    assert_eq!(got[0].id.scheme, "digest");
    assert!(got[0].id.id.starts_with("alice:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_applies_all_or_nothing_and_names_the_failing_op() {
    let c = shared("multi").await;
    c.create("/a", b"", CreateMode::Persistent).await.unwrap();
    let res = c
        .multi(vec![
            Op::create("/a/x", b"1".to_vec(), CreateMode::Persistent),
            Op::create("/a/s-", b"".to_vec(), CreateMode::PersistentSequential),
            Op::set_data("/a", b"v".to_vec(), Some(0)),
            Op::check("/a", Some(1)),
            Op::delete("/a/x", None),
        ])
        .await
        .unwrap();
    assert_eq!(res.len(), 5);
    assert!(matches!(&res[0], OpResult::Create { path, .. } if path == "/a/x"));
    assert!(
        matches!(&res[1], OpResult::Create { path, .. } if path.starts_with("/a/s-") && path.len() == 15)
    );
    assert!(matches!(&res[2], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(res[3], OpResult::Check);
    assert_eq!(res[4], OpResult::Delete);

    // second op fails: nothing is applied, the error names op 1
    let err = c
        .multi(vec![
            Op::create("/a/y", b"".to_vec(), CreateMode::Persistent),
            Op::check("/a", Some(0)),
            Op::delete("/a", None),
        ])
        .await
        .unwrap_err();
    match err {
        Error::TransactionFailed { index, error } => {
            assert_eq!(index, 1);
            assert!(matches!(*error, Error::BadVersion));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(c.exists("/a/y").await.unwrap(), None);
    assert!(matches!(
        c.multi(vec![Op::create("/a", b"".to_vec(), CreateMode::Persistent)])
            .await,
        Err(Error::TransactionFailed { index: 0, .. })
    ));
    assert_eq!(c.multi(vec![]).await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_create_with_options_sets_the_acl_and_checks_it_before_sending() {
    let c = shared("multi-opts").await;
    let acl = vec![Acl::new(Perms::READ | Perms::ADMIN, "world", "anyone")];
    let opts = CreateOptions::new(CreateMode::PersistentSequential).with_acl(acl.clone());
    let res = c
        .multi(vec![Op::create_with("/o-", b"x".to_vec(), &opts)])
        .await
        .unwrap();
    let path = match &res[0] {
        OpResult::Create { path, .. } => path.clone(),
        r => panic!("{r:?}"),
    };
    assert!(path.starts_with("/o-") && path.len() == 13, "{path}");
    assert_eq!(c.get_acl(&path).await.unwrap().0, acl);
    // an empty ACL is refused by the client, as for create_with
    let empty = CreateOptions::new(CreateMode::Persistent).with_acl(vec![]);
    let r = c
        .multi(vec![Op::create_with("/e", b"".to_vec(), &empty)])
        .await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_read_answers_each_read_on_its_own() {
    let c = shared("multiread").await;
    c.create("/r", b"hello", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/r/k", b"", CreateMode::Persistent).await.unwrap();
    let res = c
        .multi_read(vec![
            ReadOp::GetData("/r".into()),
            ReadOp::GetChildren("/r".into()),
            ReadOp::GetData("/missing".into()),
        ])
        .await
        .unwrap();
    assert!(matches!(&res[0], Ok(ReadResult::Data(d, s)) if d == b"hello" && s.num_children == 1));
    assert!(matches!(&res[1], Ok(ReadResult::Children(c)) if c == &vec!["k".to_string()]));
    assert!(matches!(&res[2], Err(Error::NoNode)));
}

#[tokio::test(flavor = "multi_thread")]
async fn ephemerals_and_close() {
    let server = zk_testkit::shared_server();
    let root = common::unique_root("eph");
    let c = common::chroot_client(&server.connect_string(), &root).await;
    let watcher = Client::connect(&format!("{}{root}", server.connect_string()))
        .await
        .unwrap();
    c.create("/e1", b"", CreateMode::Ephemeral).await.unwrap();
    c.create("/d", b"", CreateMode::Persistent).await.unwrap();
    c.create("/d/e2", b"", CreateMode::Ephemeral).await.unwrap();
    assert_eq!(c.get_ephemerals("/").await.unwrap(), vec!["/d/e2", "/e1"]);
    assert_eq!(c.get_ephemerals("/d").await.unwrap(), vec!["/d/e2"]);

    // close: the ephemeral is gone as soon as close returns
    c.close().await.unwrap();
    assert_eq!(watcher.exists("/e1").await.unwrap(), None);
    assert!(matches!(c.exists("/d").await, Err(Error::Closed)));

    // dropping the last handle closes the session too (long before its 10 s timeout)
    let c2 = common::chroot_client(&server.connect_string(), &root).await;
    c2.create("/e3", b"", CreateMode::Ephemeral).await.unwrap();
    let (_, w) = watcher.exists_watch("/e3").await.unwrap();
    let clone = c2.clone();
    drop(c2);
    assert!(
        clone.exists("/e3").await.unwrap().is_some(),
        "a clone keeps the session"
    );
    drop(clone);
    let ev = tokio::time::timeout(Duration::from_secs(30), w)
        .await
        .expect("ephemeral not deleted after the last handle was dropped")
        .unwrap();
    assert_eq!(ev.event_type, EventType::NodeDeleted);
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_watches() {
    let c = shared("rmw").await;
    c.create("/w", b"", CreateMode::Persistent).await.unwrap();
    assert!(matches!(
        c.remove_watches("/w", WatcherType::Data).await,
        Err(Error::NoWatcher)
    ));
    let (_, _, w) = c.get_data_watch("/w").await.unwrap();
    c.remove_watches("/w", WatcherType::Data).await.unwrap();
    let ev = bounded("removed watch", w).await.unwrap();
    assert_eq!(ev.event_type, EventType::DataWatchRemoved);
    // the server no longer has it either
    assert!(matches!(
        c.remove_watches("/w", WatcherType::Data).await,
        Err(Error::NoWatcher)
    ));
}

async fn quick<F: std::future::Future>(f: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(2), f).await
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_before_anything_is_sent() {
    let server = zk_testkit::shared_server();
    let proxy = zk_testkit::FaultProxy::start(server.addr()).await.unwrap();
    let c = Client::builder(proxy.connect_string())
        .max_data_len(1000)
        .connect()
        .await
        .unwrap();
    // with the proxy silent, anything sent would hang: these must come back at once
    proxy.blackhole();
    for p in [
        "",
        "x",
        "/a/",
        "//",
        "/a//b",
        "/.",
        "/a/..",
        "/a\0b",
        "/a\u{1}",
        "/\u{fff0}",
    ] {
        let r = quick(c.exists(p)).await.expect("refused path was sent");
        assert!(matches!(r, Err(Error::BadPath(_))), "{p:?}: {r:?}");
        let r = quick(c.create(p, b"", CreateMode::Persistent))
            .await
            .unwrap();
        assert!(matches!(r, Err(Error::BadPath(_))), "{p:?}: {r:?}");
    }
    let r = quick(c.set_data("/a", &[0; 1001], None)).await.unwrap();
    assert!(
        matches!(
            r,
            Err(Error::DataTooLarge {
                len: 1001,
                max: 1000
            })
        ),
        "{r:?}"
    );
    let r = quick(c.create("/a", &[0; 1001], CreateMode::Persistent))
        .await
        .unwrap();
    assert!(matches!(r, Err(Error::DataTooLarge { .. })), "{r:?}");
    let r = quick(c.create_with(
        "/a",
        b"",
        &CreateOptions::new(CreateMode::Persistent).with_acl(vec![]),
    ))
    .await
    .unwrap();
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let r = quick(c.create("/a", b"", CreateMode::PersistentWithTtl(Duration::ZERO)))
        .await
        .unwrap();
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let r = quick(c.multi(vec![Op::check("bad", None)])).await.unwrap();
    assert!(matches!(r, Err(Error::BadPath(_))), "{r:?}");
    // and a valid request does wait for the silent proxy
    assert!(quick(c.exists("/fine")).await.is_err());
    proxy.heal();
    assert!(matches!(
        Client::connect("127.0.0.1:1,/bad/").await,
        Err(Error::BadPath(_) | Error::InvalidArgument(_))
    ));
    let e = Client::builder("127.0.0.1:1")
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ConnectFailed { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_failure_is_terminal_and_reported() {
    let server = zk_testkit::shared_server();
    // at connect: an unknown scheme makes the server answer AUTHFAILED and close the session
    let r = Client::builder(server.connect_string())
        .auth("no-such-scheme", "x")
        .connect()
        .await;
    assert!(matches!(r, Err(Error::AuthFailed)), "{r:?}");

    // later: the same, on a live client
    let c = Client::connect(&server.connect_string()).await.unwrap();
    let mut states = c.state_stream();
    let r = c.add_auth("no-such-scheme", b"x").await;
    assert!(matches!(r, Err(Error::AuthFailed)), "{r:?}");
    let st = loop {
        let s = bounded("auth failed state", futures::StreamExt::next(&mut states))
            .await
            .unwrap();
        if s.state == zk_core::State::Lost {
            break s;
        }
    };
    assert_eq!(st.keeper_state, zk_core::KeeperState::AuthFailed);
    assert!(matches!(c.exists("/").await, Err(Error::AuthFailed)));
}

/// A builder and a `Config` are settings, not a one-shot: a clone of a builder and the same
/// `Config` connect again, each time a session of its own with the same credentials.
#[tokio::test(flavor = "multi_thread")]
async fn a_builder_clone_and_a_config_connect_twice_with_the_same_settings() {
    let server = zk_testkit::shared_server();
    let b = Client::builder(server.connect_string()).auth("digest", "rev13:pw");
    let mut config = zk_core::Config::new(server.connect_string());
    config
        .auth
        .push(zk_core::AuthConfig::new("digest", "rev13:pw"));
    let clients = [
        bounded("connect", b.clone().connect()).await.unwrap(),
        bounded("connect", b.connect()).await.unwrap(),
        bounded("connect", config.connect()).await.unwrap(),
        bounded("connect", config.connect()).await.unwrap(),
    ];
    let mut sessions: Vec<i64> = clients.iter().map(Client::session_id).collect();
    sessions.sort();
    sessions.dedup();
    assert_eq!(sessions.len(), 4, "one session each");
    for c in &clients {
        let ids = bounded("whoami", c.who_am_i()).await.unwrap();
        assert!(
            ids.iter()
                .any(|i| i.auth_scheme == "digest" && i.user == "rev13"),
            "{ids:?}"
        );
        bounded("close", c.close()).await.unwrap();
    }
}
