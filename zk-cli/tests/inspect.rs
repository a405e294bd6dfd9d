//! get, set, create, delete, ls, stat, tree against a real server, with their errors; global
//! options, usage errors, an unreachable server; help texts against docs/cli.md.

mod common;

use common::*;
use std::time::Duration;
use zk_core::{Acl, CreateMode, CreateOptions, Perms};

#[tokio::test(flavor = "multi_thread")]
async fn get_adds_a_newline_raw_adds_nothing_and_with_stat_the_stat_fields() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("get");
    let data = [0xffu8, 0x00, b'a', 0x80];
    c.create(&p, &data, CreateMode::Persistent).await.unwrap();
    c.set_data(&p, &data, None).await.unwrap(); // version 1

    let o = run(&h, &["get", &p, "--raw"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, data, "raw bytes, nothing added");
    let o = run(&h, &["get", &p]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, [&data[..], b"\n"].concat(), "a newline added");

    let o = run(&h, &["get", &p, "--stat"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.starts_with(&data), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout[data.len()..]).into_owned();
    let (_, stat) = c.get_data(&p).await.unwrap();
    for line in [
        "dataVersion: 1".to_owned(),
        "dataLength: 4".to_owned(),
        "numChildren: 0".to_owned(),
        "ephemeralOwner: 0x0".to_owned(),
        format!("cZxid: {:#x}", stat.czxid),
        "mtime: 20".to_owned(), // RFC 3339: the line starts so until 2100
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&line)),
            "{line:?} missing in {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn set_writes_data_and_checks_the_version() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("set");
    c.create(&p, b"v0", CreateMode::Persistent).await.unwrap();

    let o = run(&h, &["set", &p, "v1"]).await;
    assert_eq!((o.code, o.out()), (0, String::new()), "{o:?}");
    assert_eq!(c.get_data(&p).await.unwrap().0, b"v1");

    let o = run(&h, &["set", &p, "v2", "--version", "0"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("version mismatch"), "{o:?}");
    assert!(o.stderr.contains(&p), "names the path: {o:?}");
    assert_eq!(c.get_data(&p).await.unwrap().0, b"v1", "not written");

    let o = run(&h, &["set", &p, "v2", "--version", "1"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(c.get_data(&p).await.unwrap().0, b"v2");
}

#[tokio::test(flavor = "multi_thread")]
async fn create_persistent_parents_sequential_and_existing() {
    let h = hosts();
    let c = client(&h).await;
    let base = unique("create");

    let o = run(&h, &["create", &format!("{base}/a/b"), "hello"]).await;
    assert_eq!(o.code, 1, "parent missing: {o:?}");
    assert!(o.stderr.contains("does not exist"), "{o:?}");

    let p = format!("{base}/a/b");
    let o = run(&h, &["create", &p, "hello", "--parents"]).await;
    assert_eq!((o.code, o.out()), (0, format!("{p}\n")), "{o:?}");
    assert_eq!(c.get_data(&p).await.unwrap().0, b"hello");

    let o = run(&h, &["create", &p]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("already exists"), "{o:?}");

    let o = run(&h, &["create", &format!("{base}/job-"), "--sequential"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    let created = o.out().trim_end().to_owned();
    let suffix = created
        .strip_prefix(&format!("{base}/job-"))
        .expect("prefix");
    assert!(
        suffix.len() == 10 && suffix.bytes().all(|b| b.is_ascii_digit()),
        "{created}"
    );
    let st = c.exists(&created).await.unwrap().expect("created");
    assert_eq!(st.ephemeral_owner, 0, "persistent");

    // a trailing '/' only with --sequential
    let o = run(&h, &["create", &format!("{base}/")]).await;
    assert_eq!(o.code, 2, "{o:?}");
    let o = run(&h, &["create", &format!("{base}/"), "--sequential"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.out().starts_with(&format!("{base}/00")), "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn create_container_and_ttl_nodes_are_reaped_by_the_server() {
    let h = hosts();
    let c = client(&h).await;
    let base = unique("reaped");
    c.create(&base, b"", CreateMode::Persistent).await.unwrap();

    let cont = format!("{base}/container");
    let o = run(&h, &["create", &cont, "--container"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    c.create(&format!("{cont}/child"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.delete(&format!("{cont}/child"), None).await.unwrap();

    let ttl = format!("{base}/ttl");
    let o = run(&h, &["create", &ttl, "x", "--ttl", "500ms"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    let plain = format!("{base}/plain");
    let o = run(&h, &["create", &plain]).await;
    assert_eq!(o.code, 0, "{o:?}");

    eventually(
        "the empty container and the expired TTL node are deleted",
        || async {
            c.exists(&cont).await.unwrap().is_none() && c.exists(&ttl).await.unwrap().is_none()
        },
    )
    .await;
    assert!(
        c.exists(&plain).await.unwrap().is_some(),
        "a plain node stays"
    );

    for bad in [
        vec!["--container", "--ephemeral"],
        vec!["--container", "--sequential"],
        vec!["--ttl", "1s", "--ephemeral"],
        vec!["--ttl", "0s"],
    ] {
        let mut args = vec!["create", "/cli-never"];
        args.extend(bad.iter());
        let o = run(&h, &args).await;
        assert_eq!(o.code, 2, "{bad:?}: {o:?}");
    }
    assert!(c.exists("/cli-never").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn create_ephemeral_holds_the_node_until_signalled() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("eph");
    let mut z = Proc::start(&h, &["-v", "create", &p, "data", "--ephemeral"]);
    assert_eq!(z.wait_stdout(&p).await, p);
    let st = c
        .exists(&p)
        .await
        .unwrap()
        .expect("the node exists while zk runs");
    // -v logs the session id: it owns the node
    let line = z.wait_stderr("state CONNECTED session=0x").await;
    let sid = line
        .split("session=0x")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert_eq!(format!("{:x}", st.ephemeral_owner), sid, "{line}");
    assert!(!z.has_exited());

    z.signal(libc::SIGTERM);
    assert_eq!(z.exit().await, 0);
    assert!(
        c.exists(&p).await.unwrap().is_none(),
        "deleted before zk exited"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_with_version_recursive_and_errors() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("delete");
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    c.create(&format!("{p}/a"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.create(&format!("{p}/a/b"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    let leaf = format!("{p}/a/b");

    let o = run(&h, &["delete", &leaf, "--version", "3"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("version mismatch"), "{o:?}");
    assert!(c.exists(&leaf).await.unwrap().is_some());

    let o = run(&h, &["delete", &p]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("has children"), "{o:?}");

    let o = run(&h, &["delete", &leaf, "--version", "0"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(c.exists(&leaf).await.unwrap().is_none());

    c.create(&format!("{p}/a/c"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    let o = run(&h, &["delete", &p, "--recursive"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(c.exists(&p).await.unwrap().is_none());

    for args in [vec!["delete", &p], vec!["delete", &p, "--recursive"]] {
        let o = run(&h, &args).await;
        assert_eq!(o.code, 1, "{o:?}");
        assert!(o.stderr.contains("node does not exist"), "{o:?}");
    }
    let o = run(&h, &["delete", &p, "--recursive", "--version", "1"]).await;
    assert_eq!(o.code, 2, "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ls_stat_and_tree() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("tree");
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    for n in ["b", "a", "c", "a/y", "a/x", "a/x/deep"] {
        c.create(&format!("{p}/{n}"), b"12345", CreateMode::Persistent)
            .await
            .unwrap();
    }
    let o = run(&h, &["ls", &p]).await;
    assert_eq!((o.code, o.out()), (0, "a\nb\nc\n".to_owned()), "{o:?}");

    let o = run(&h, &["tree", &p]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.out(),
        format!("{p}\n  a\n    x\n      deep\n    y\n  b\n  c\n")
    );

    let o = run(&h, &["stat", &format!("{p}/a")]).await;
    assert_eq!(o.code, 0, "{o:?}");
    let text = o.out();
    assert!(text.lines().any(|l| l == "numChildren: 2"), "{text}");
    assert!(text.lines().any(|l| l == "dataLength: 5"), "{text}");
    assert_eq!(text.lines().count(), 11, "{text}");
    assert!(text.lines().all(|l| l.split_once(": ").is_some()), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_node_is_exit_1_with_a_readable_reason() {
    let h = hosts();
    let p = unique("missing");
    for args in [
        vec!["get", &p],
        vec!["set", &p, "x"],
        vec!["ls", &p],
        vec!["stat", &p],
        vec!["tree", &p],
        vec!["delete", &p],
    ] {
        let o = run(&h, &args).await;
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert_eq!(
            o.stderr.trim_end(),
            format!("zk: {} {p}: node does not exist", args[0]),
            "{args:?}"
        );
        assert!(o.stdout.is_empty(), "{args:?}: {o:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_paths_and_bad_options_are_usage_errors() {
    let h = hosts();
    for (args, says) in [
        (vec!["get", "relative"], "invalid path"),
        (vec!["ls", "/a//b"], "invalid path"),
        (vec!["stat", "/a/"], "invalid path"),
        (vec!["lock", "nope", "--", "true"], "invalid path"),
        (vec!["set", "x", "d"], "invalid path"),
        (vec!["create", "x"], "invalid path"),
        (vec!["delete", "/x/"], "invalid path"),
        (vec!["tree", "/x/./y"], "invalid path"),
        (vec!["watch", "w"], "invalid path"),
        (
            vec!["semaphore", "s", "--max", "1", "--", "true"],
            "invalid path",
        ),
        (vec!["elect", "/e/../f", "--", "true"], "invalid path"),
        (
            vec!["double-barrier", "d", "--count", "1", "--", "true"],
            "invalid path",
        ),
        (vec!["barrier", "create", "b"], "invalid path"),
        (vec!["barrier", "remove", "b"], "invalid path"),
        (vec!["barrier", "wait", "b"], "invalid path"),
        (vec!["nosuchcommand"], "unrecognized subcommand"),
        (
            vec!["--session-timeout", "10x", "get", "/"],
            "invalid duration",
        ),
        (
            vec!["lock", "/l", "--timeout", "soon", "--", "true"],
            "invalid duration",
        ),
        (vec!["lock", "/l"], "required"),
        (vec!["lock", "/l", "true"], "unexpected argument"),
        (vec!["watch", "/w", "--count", "0"], "--count"),
        (
            vec!["watch", "/w", "--children", "--recursive"],
            "cannot be used with",
        ),
        (vec!["semaphore", "/s", "--", "true"], "--max"),
        (vec!["semaphore", "/s", "--max", "0", "--", "true"], "--max"),
        (vec!["double-barrier", "/b", "--", "true"], "--count"),
        (vec!["--auth", "nocolon", "get", "/"], "scheme:credential"),
        (vec!["--hosts", "", "get", "/"], "names no host"),
        (vec!["--hosts", "h:notaport", "get", "/"], "bad host"),
        (
            vec!["lock", "/l", "--lost-on", "never", "--", "true"],
            "--lost-on",
        ),
        (vec!["barrier", "open", "/b"], "unrecognized subcommand"),
        // a container has no TTL: the TTL was silently dropped (issue 13 review)
        (
            vec!["create", "/c", "--container", "--ttl", "1h"],
            "cannot be used with",
        ),
        (
            vec!["create", "/c", "--ttl", "1h", "--container"],
            "cannot be used with",
        ),
    ] {
        let mut all = vec!["--hosts", h.as_str()];
        if args.first() == Some(&"--hosts") {
            all.clear();
        }
        all.extend(args.iter());
        let o = run_cmd(zk(&all)).await;
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
        assert!(
            o.stderr.contains(says),
            "{args:?} should say {says:?}: {}",
            o.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_is_exit_1_and_cmd_never_runs() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // free now, nothing listens
    let hosts = format!("127.0.0.1:{port}");
    let dir = TempDir::new();
    let marker = dir.file("ran");
    let all_subcommands: Vec<Vec<&str>> = vec![
        vec!["get", "/"],
        vec!["set", "/x", "y"],
        vec!["create", "/x"],
        vec!["delete", "/x"],
        vec!["ls", "/"],
        vec!["stat", "/"],
        vec!["tree", "/"],
        vec!["watch", "/"],
        vec!["lock", "/l", "--", "touch", &marker],
        vec!["semaphore", "/s", "--max", "1", "--", "touch", &marker],
        vec!["elect", "/e", "--", "touch", &marker],
        vec![
            "double-barrier",
            "/d",
            "--count",
            "1",
            "--",
            "touch",
            &marker,
        ],
        vec!["barrier", "create", "/b"],
        vec!["barrier", "remove", "/b"],
        vec!["barrier", "wait", "/b"],
    ];
    let runs = all_subcommands.iter().map(|args| {
        let mut all: Vec<String> = vec!["--session-timeout".into(), "1s".into()];
        all.extend(args.iter().map(|s| s.to_string()));
        let hosts = hosts.clone();
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let o = run(&hosts, &refs).await;
            (all, o)
        }
    });
    for (args, o) in futures_join_all(runs).await {
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert!(
            o.stderr.contains(&format!("cannot connect to {hosts}")),
            "{args:?}: {o:?}"
        );
        assert_eq!(o.stderr.lines().count(), 1, "one line: {o:?}");
    }
    assert!(!dir.has("ran"), "CMD must not run without the lock");
}

/// Runs futures concurrently on this runtime, results in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn global_options_go_before_or_after_and_zk_hosts_is_read() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("global");
    c.create(&p, b"here", CreateMode::Persistent).await.unwrap();

    let o = run_cmd(zk(&["get", &p, "--hosts", &h])).await;
    assert_eq!((o.code, o.out()), (0, "here\n".to_owned()), "{o:?}");

    let mut cmd = zk(&["get", &p]);
    cmd.env("ZK_HOSTS", &h);
    let o = run_cmd(cmd).await;
    assert_eq!((o.code, o.out()), (0, "here\n".to_owned()), "{o:?}");

    // a chroot in the connect string
    let o = run(&format!("{h}{p}"), &["create", "/inside", "x"]).await;
    assert_eq!((o.code, o.out()), (0, "/inside\n".to_owned()), "{o:?}");
    assert_eq!(c.get_data(&format!("{p}/inside")).await.unwrap().0, b"x");
    let o = run(&format!("{h}{p}"), &["ls", "/"]).await;
    assert_eq!(o.out(), "inside\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_is_sent_with_the_session() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("acl");
    let acl = vec![Acl::new(
        Perms::ALL,
        "digest",
        zk_core::digest_id("alice", "secret"),
    )];
    c.create_with(
        &p,
        b"private",
        &CreateOptions::new(CreateMode::Persistent).with_acl(acl),
    )
    .await
    .unwrap();

    let o = run(&h, &["get", &p]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("not authorized"), "{o:?}");

    let o = run(&h, &["get", &p, "--auth", "digest:alice:wrong"]).await;
    assert_eq!(o.code, 1, "{o:?}");

    let o = run(&h, &["--auth", "digest:alice:secret", "get", &p]).await;
    assert_eq!((o.code, o.out()), (0, "private\n".to_owned()), "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn help_texts_and_docs_give_the_same_examples() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md"))
        .expect("docs/cli.md exists");
    let subs = [
        vec!["get"],
        vec!["set"],
        vec!["create"],
        vec!["delete"],
        vec!["ls"],
        vec!["stat"],
        vec!["tree"],
        vec!["watch"],
        vec!["lock"],
        vec!["semaphore"],
        vec!["elect"],
        vec!["double-barrier"],
        vec!["barrier"],
        vec!["getacl"],
        vec!["setacl"],
        vec!["whoami"],
        vec!["sync"],
        vec!["ephemerals"],
        vec!["count"],
        vec!["srvr"],
        vec!["status"],
        vec!["completions"],
        vec!["demo"],
        vec![],
    ];
    for sub in subs {
        let mut args = sub.clone();
        args.push("--help");
        let o = run_cmd(zk(&args)).await;
        assert_eq!(o.code, 0, "{args:?}: {o:?}");
        let help = o.out();
        let examples: Vec<&str> = help
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("zk ") || l.starts_with("while true; do zk "))
            .collect();
        assert!(!examples.is_empty(), "{sub:?} --help has examples:\n{help}");
        for e in examples {
            assert!(
                docs.contains(e),
                "docs/cli.md lacks the example of `zk {sub:?} --help`: {e}"
            );
        }
        if ["lock", "semaphore", "elect"].contains(&sub.first().copied().unwrap_or("")) {
            for code in ["75", "74", "--kill-after", "ZK_NODE", "SIGTERM"] {
                assert!(help.contains(code), "{sub:?} --help mentions {code}");
            }
        }
    }
    // the documented exit statuses
    for s in [
        "`75`",
        "`74`",
        "`2`",
        "`1`",
        "ZK_NODE",
        "--lost-on lost",
        "ZK_DEBUG_SESSION_FILE",
    ] {
        assert!(docs.contains(s), "docs/cli.md mentions {s}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_stdout_ends_quietly() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("pipe");
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    for i in 0..50 {
        c.create(&format!("{p}/n{i:03}"), b"", CreateMode::Persistent)
            .await
            .unwrap();
    }
    let mut cmd = zk(&["--hosts", &h, "ls", &p]);
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take()); // the reader is gone
    let st = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&st.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "quiet: {stderr}");
    assert_eq!(st.status.code(), Some(141), "as a SIGPIPE would");
}

/// TLS: `--tls-ca/--tls-cert/--tls-key` against a mutual-TLS server; without the client
/// certificate, or with the wrong CA, exit 1 with one line naming TLS and the certificate.
#[tokio::test(flavor = "multi_thread")]
async fn tls_options_against_a_mutual_tls_server() {
    let server = zk_testkit::ZkServer::builder()
        .tls(zk_testkit::TlsOptions::new())
        .start()
        .expect("TLS server");
    let f = server.tls_files().unwrap();
    let hosts = server.secure_connect_string().unwrap();
    let p = |p: &std::path::Path| p.display().to_string();
    let (ca, cert, key, other_ca) = (
        p(&f.ca),
        p(&f.client_cert),
        p(&f.client_key),
        p(&f.other_ca),
    );
    let o = run(
        &hosts,
        &[
            "--tls-ca",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "ls",
            "/",
        ],
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.out().contains("zookeeper"), "{o:?}");
    // the same through the environment
    let mut c = zk(&["--hosts", &hosts, "ls", "/"]);
    c.env("ZK_TLS_CA", &ca)
        .env("ZK_TLS_CERT", &cert)
        .env("ZK_TLS_KEY", &key);
    let o = run_cmd(c).await;
    assert_eq!(o.code, 0, "{o:?}");

    for (what, args) in [
        ("no client certificate", vec!["--tls-ca", &ca]),
        (
            "wrong CA",
            vec![
                "--tls-ca",
                &other_ca,
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
            ],
        ),
    ] {
        let mut all = vec!["--session-timeout", "2s"];
        all.extend(args);
        all.extend(["ls", "/"]);
        let o = run(&hosts, &all).await;
        assert_eq!(o.code, 1, "{what}: {o:?}");
        assert_eq!(o.stderr.lines().count(), 1, "{what}: one line: {o:?}");
        let e = o.stderr.to_lowercase();
        assert!(
            e.contains("tls") && e.contains("certificate"),
            "{what}: {o:?}"
        );
    }
    // --tls-cert without --tls-key is a usage error
    let o = run(&hosts, &["--tls-cert", &cert, "ls", "/"]).await;
    assert_eq!(o.code, 2, "{o:?}");
}

/// SASL: `--sasl digest-md5:USER:PASSWORD` reads a node only that user may read; a wrong
/// password exits 1 with an authentication error; without `--sasl`, 1 with NoAuth.
#[tokio::test(flavor = "multi_thread")]
async fn sasl_digest_md5_option() {
    let server = zk_testkit::ZkServer::builder()
        .sasl_digest_users(&[("alice", "secret")])
        .start()
        .expect("SASL server");
    let hosts = server.connect_string();
    let alice = zk_core::Client::builder(&hosts)
        .sasl_digest_md5("alice", "secret")
        .connect()
        .await
        .unwrap();
    let acl = [zk_core::Acl {
        perms: zk_core::Perms::ALL,
        id: zk_core::Id {
            scheme: "sasl".into(),
            id: "alice".into(),
        },
    }];
    alice
        .create_with(
            "/sasl-only",
            b"for alice",
            &CreateOptions::new(zk_core::CreateMode::Persistent).with_acl(acl.to_vec()),
        )
        .await
        .unwrap();
    let o = run(
        &hosts,
        &["--sasl", "digest-md5:alice:secret", "get", "/sasl-only"],
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.out().trim(), "for alice");
    let o = run(
        &hosts,
        &["--sasl", "digest-md5:alice:wrong", "get", "/sasl-only"],
    )
    .await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("authentication failed"), "{o:?}");
    let o = run(&hosts, &["get", "/sasl-only"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.to_lowercase().contains("not authorized"), "{o:?}");
    let o = run(&hosts, &["--sasl", "kerberos", "get", "/"]).await;
    assert_eq!(o.code, 2, "{o:?}");
}

/// The SASL password is printed nowhere: `zk --help` with `ZK_SASL` set showed it
/// (`[env: ZK_SASL=digest-md5:alice:...]`), and a mistyped mechanism echoed the whole value
/// in its usage error.
#[tokio::test(flavor = "multi_thread")]
async fn the_sasl_password_is_never_printed() {
    let mut c = zk(&["--help"]);
    c.env("ZK_SASL", "digest-md5:alice:TOPSECRET-1");
    let o = run_cmd(c).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.out().contains("ZK_SASL"), "{o:?}");
    assert!(
        !o.out().contains("TOPSECRET") && !o.stderr.contains("TOPSECRET"),
        "the password in --help: {}",
        o.out()
    );
    for bad in ["digest_md5:alice:TOPSECRET-2", "digest-md5::TOPSECRET-3"] {
        let o = run("127.0.0.1:1", &["--sasl", bad, "ls", "/"]).await;
        assert_eq!(o.code, 2, "{bad}: a usage error: {o:?}");
        assert!(
            o.stderr.contains("SASL") || o.stderr.contains("sasl"),
            "{o:?}"
        );
        assert!(
            !o.out().contains("TOPSECRET") && !o.stderr.contains("TOPSECRET"),
            "the password in a usage error: {o:?}"
        );
    }
}

/// A mistyped --auth is a usage error that does not print the value: with an empty scheme or
/// no ':' at all, what was typed may well be the credential (clap's own message repeated it,
/// twice, as --sasl's would have).
#[tokio::test(flavor = "multi_thread")]
async fn a_mistyped_auth_credential_is_never_printed() {
    for bad in [":alice:TOPSECRET-4", "TOPSECRET-5"] {
        for args in [
            vec!["--auth", bad, "ls", "/"],
            vec!["ls", "/", "--auth", bad],
        ] {
            let o = run("127.0.0.1:1", &args).await;
            assert_eq!(o.code, 2, "{args:?}: a usage error: {o:?}");
            assert!(o.stderr.contains("scheme:credential"), "{o:?}");
            assert!(
                !o.out().contains("TOPSECRET") && !o.stderr.contains("TOPSECRET"),
                "the credential in a usage error: {o:?}"
            );
        }
    }
}

/// docs/cli.md: a file that cannot be read, and a TLS failure, exit 1 with one line naming it.
/// A missing or certificate-less --tls-ca was a usage error (exit 2, with clap's usage block):
/// zk-core refuses it as an invalid argument at connect.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_or_empty_tls_file_is_exit_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let empty = empty.to_str().unwrap();
    for (args, names) in [
        (
            vec!["--tls-ca", "/nonexistent/ca.pem", "ls", "/"],
            "/nonexistent/ca.pem",
        ),
        (vec!["--tls-ca", empty, "ls", "/"], "certificate"),
        (
            vec![
                "--tls-cert",
                "/nonexistent/c.pem",
                "--tls-key",
                "/nonexistent/k.pem",
                "ls",
                "/",
            ],
            "/nonexistent/c.pem",
        ),
    ] {
        let o = run(&hosts(), &args).await;
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert_eq!(o.stderr.lines().count(), 1, "{args:?}: one line: {o:?}");
        assert!(
            o.stderr.starts_with("zk: ") && o.stderr.contains(names),
            "{args:?}: {o:?}"
        );
    }
}
