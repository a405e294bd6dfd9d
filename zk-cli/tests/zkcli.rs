//! What zkCli and etcdctl users reach for (issue 13): `-o json` on the read commands, getacl /
//! setacl, whoami, sync, ephemerals, count, srvr / status, data from stdin or a file, `get
//! --raw`, shell completions; against a real server.

mod common;

use common::*;
use serde_json::Value;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use zk_core::{Acl, CreateMode, Perms};

/// Runs `zk --hosts <hosts> args...` with `input` on its stdin.
async fn run_with_stdin(hosts: &str, args: &[&str], input: &[u8]) -> Output {
    let mut all = vec!["--hosts", hosts];
    all.extend_from_slice(args);
    let mut cmd = zk(&all);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn zk");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input).await.expect("write stdin");
    drop(stdin);
    let out = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .expect("zk still running after 60 s")
        .expect("wait for zk");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Stdout parsed as one JSON document (a test failure naming the output otherwise).
fn parse(o: &Output) -> Value {
    assert_eq!(o.code, 0, "{o:?}");
    serde_json::from_str(&o.out()).unwrap_or_else(|e| panic!("not JSON ({e}): {o:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn read_commands_print_json_with_raw_numbers_and_text_times_as_rfc3339() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("json");
    c.create(&p, b"top", CreateMode::Persistent).await.unwrap();
    for n in ["b", "a", "a/x"] {
        c.create(&format!("{p}/{n}"), b"", CreateMode::Persistent)
            .await
            .unwrap();
    }
    c.create(&format!("{p}/bin"), &[0xff, 0x00], CreateMode::Persistent)
        .await
        .unwrap();
    let (_, stat) = c.get_data(&p).await.unwrap();

    // get: path, data (UTF-8) and base64, the Stat with raw numbers
    let v = parse(&run(&h, &["get", &p, "-o", "json"]).await);
    assert_eq!(v["path"], p.as_str());
    assert_eq!(v["data"], "top");
    assert_eq!(v["dataBase64"], "dG9w");
    assert_eq!(v["stat"]["ctime"], stat.ctime, "ms since the epoch: {v}");
    assert_eq!(v["stat"]["mtime"], stat.mtime);
    assert_eq!(v["stat"]["cZxid"], stat.czxid);
    assert_eq!(v["stat"]["numChildren"], 3);
    assert_eq!(v["stat"]["dataLength"], 3);
    assert_eq!(v["stat"]["ephemeralOwner"], 0);
    // binary data: no string, the base64 only
    let v = parse(&run(&h, &["get", &format!("{p}/bin"), "--output", "json"]).await);
    assert_eq!(v["data"], Value::Null, "{v}");
    assert_eq!(v["dataBase64"], "/wA=");

    // stat: the Stat object; the text form has RFC 3339 times
    let v = parse(&run(&h, &["stat", &p, "-o", "json"]).await);
    assert_eq!(v["mtime"], stat.mtime, "{v}");
    assert_eq!(v["dataVersion"], 0);
    assert_eq!(v.as_object().unwrap().len(), 11, "{v}");
    let o = run(&h, &["stat", &p]).await;
    let ctime = o
        .out()
        .lines()
        .find_map(|l| l.strip_prefix("ctime: ").map(str::to_owned))
        .expect("a ctime line");
    // 2024-06-01T12:34:56.789Z
    let b = ctime.as_bytes();
    assert!(
        ctime.len() == 24 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && ctime.ends_with('Z'),
        "RFC 3339: {ctime}"
    );
    let secs = stat.ctime.div_euclid(1000);
    assert_eq!(
        &ctime[20..23],
        format!("{:03}", stat.ctime.rem_euclid(1000)),
        "{ctime}"
    );
    assert_eq!(
        ctime[17..19].parse::<i64>().unwrap(),
        secs % 60,
        "seconds of {ctime}"
    );

    // ls: the sorted children
    let v = parse(&run(&h, &["ls", &p, "-o", "json"]).await);
    assert_eq!(v["path"], p.as_str());
    assert_eq!(v["children"], serde_json::json!(["a", "b", "bin"]));

    // tree: nested nodes with their full paths
    let v = parse(&run(&h, &["tree", &p, "-o", "json"]).await);
    assert_eq!(v["path"], p.as_str());
    let kids = v["children"].as_array().unwrap();
    assert_eq!(kids.len(), 3, "{v}");
    assert_eq!(kids[0]["path"], format!("{p}/a"));
    assert_eq!(kids[0]["children"][0]["path"], format!("{p}/a/x"));
    assert_eq!(kids[0]["children"][0]["children"], serde_json::json!([]));
    assert_eq!(kids[2]["path"], format!("{p}/bin"));

    // count: all descendants
    let v = parse(&run(&h, &["count", &p, "-o", "json"]).await);
    assert_eq!(
        (v["path"].as_str(), v["count"].as_i64()),
        (Some(&*p), Some(4))
    );

    // getacl
    let v = parse(&run(&h, &["getacl", &p, "-o", "json"]).await);
    assert_eq!(
        v["acl"],
        serde_json::json!([{"scheme": "world", "id": "anyone", "perms": "cdrwa"}])
    );
    assert_eq!(v["aclVersion"], 0);

    // whoami: at least the ip identity
    let v = parse(&run(&h, &["whoami", "-o", "json"]).await);
    let ids = v["identities"].as_array().unwrap();
    assert!(ids.iter().any(|i| i["scheme"] == "ip"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_json_prints_one_object_per_event_and_line() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("watch-json");
    let mut w = Proc::start(&h, &["watch", &p, "--count", "2", "-o", "json"]);
    w.wait_stderr("state CONNECTED").await;
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    c.set_data(&p, b"x", None).await.unwrap();
    assert_eq!(w.exit().await, 0, "{:?}", w.stderr());
    let lines = w.stdout();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let evs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(evs[0]["type"], "NodeCreated");
    assert_eq!(evs[0]["path"], p.as_str());
    assert_eq!(evs[1]["type"], "NodeDataChanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_byte_value_round_trips_through_set_stdin_and_get_raw() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("stdin");
    let all: Vec<u8> = (0..=255u8).collect();

    // create PATH - and set PATH - read stdin; get --raw writes it back unchanged
    let o = run_with_stdin(&h, &["create", &p, "-"], &all).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(c.get_data(&p).await.unwrap().0, all);
    let rev: Vec<u8> = all.iter().rev().copied().collect();
    let o = run_with_stdin(&h, &["set", &p, "-"], &rev).await;
    assert_eq!((o.code, o.out()), (0, String::new()), "{o:?}");
    assert_eq!(c.get_data(&p).await.unwrap().0, rev);
    let o = run(&h, &["get", &p, "--raw"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, rev, "bytes unchanged, nothing added");

    // --file, for set and create
    let dir = TempDir::new();
    std::fs::write(dir.join("data"), &all).unwrap();
    let f = dir.file("data");
    let o = run(&h, &["set", &p, "--file", &f]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(run(&h, &["get", &p, "--raw"]).await.stdout, all);
    let p2 = format!("{p}-file");
    let o = run(&h, &["create", &p2, "--file", &f]).await;
    assert_eq!((o.code, o.out()), (0, format!("{p2}\n")), "{o:?}");
    assert_eq!(c.get_data(&p2).await.unwrap().0, all);

    // an empty stdin sets empty data
    let o = run_with_stdin(&h, &["set", &p, "-"], b"").await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(c.get_data(&p).await.unwrap().0, b"");
}

#[tokio::test(flavor = "multi_thread")]
async fn getacl_setacl_round_trip_with_a_digest_acl_then_noauth() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("acl");
    c.create(&p, b"secret data", CreateMode::Persistent)
        .await
        .unwrap();
    let digest = zk_core::digest_id("alice", "secret"); // alice:HASH
    let acl = format!("world:anyone:r,digest:{digest}:cdrwa,ip:10.0.0.0/8:rw");

    let o = run(&h, &["setacl", &p, &acl]).await;
    assert_eq!((o.code, o.out()), (0, String::new()), "{o:?}");
    let alice = client(&h).await;
    alice.add_auth("digest", b"alice:secret").await.unwrap();
    let (got, stat) = alice.get_acl(&p).await.unwrap();
    assert_eq!(stat.aversion, 1);
    assert!(
        got.contains(&Acl::new(Perms::READ, "world", "anyone")),
        "{got:?}"
    );
    assert!(
        got.contains(&Acl::new(Perms::ALL, "digest", digest.clone())),
        "{got:?}"
    );
    assert!(
        got.contains(&Acl::new(Perms::READ | Perms::WRITE, "ip", "10.0.0.0/8")),
        "{got:?}"
    );

    // getacl prints it back in the same notation, one entry per line; the server shows a
    // digest's hash only to a session with ADMIN on the node (others see `x`)
    let lines = |o: &Output| {
        let mut v: Vec<String> = o.out().lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    let mut want: Vec<String> = acl.split(',').map(str::to_owned).collect();
    want.sort();
    let o = run(&h, &["--auth", "digest:alice:secret", "getacl", &p]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(lines(&o), want);
    let o = run(&h, &["getacl", &p]).await;
    assert_eq!(o.code, 0, "{o:?}");
    let hidden: Vec<String> = want.iter().map(|l| l.replace(&digest, "alice:x")).collect();
    assert_eq!(lines(&o), hidden);

    // world may only read now: writing is NoAuth (exit 1, one line), alice may
    let o = run(&h, &["set", &p, "nope"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(
        o.stderr.trim_end(),
        format!("zk: set {p}: not authorized (add credentials with --auth scheme:credential)")
    );
    let o = run(&h, &["setacl", &p, "world:anyone:cdrwa"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("not authorized"), "{o:?}");
    let o = run(&h, &["--auth", "digest:alice:secret", "set", &p, "mine"]).await;
    assert_eq!(o.code, 0, "{o:?}");

    // --version of setacl is the ACL version
    let o = run(
        &h,
        &[
            "--auth",
            "digest:alice:secret",
            "setacl",
            &p,
            "auth::cdrwa",
            "--version",
            "0",
        ],
    )
    .await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("version mismatch"), "{o:?}");
    let o = run(
        &h,
        &[
            "--auth",
            "digest:alice:secret",
            "setacl",
            &p,
            "auth::cdrwa",
            "--version",
            "1",
        ],
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    // auth:: became alice's digest identity: world cannot even read
    let o = run(&h, &["get", &p]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("not authorized"), "{o:?}");
    let o = run(&h, &["--auth", "digest:alice:secret", "getacl", &p]).await;
    assert_eq!(o.out(), format!("digest:{digest}:cdrwa\n"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn whoami_shows_the_digest_identity_after_auth() {
    let h = hosts();
    let o = run(&h, &["whoami"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.out().lines().any(|l| l.starts_with("ip: ")), "{o:?}");
    assert!(!o.out().contains("digest"), "{o:?}");

    let o = run(&h, &["--auth", "digest:bob:pw", "whoami"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.out().lines().any(|l| l == "digest: bob"), "{o:?}");
    let v = parse(&run(&h, &["--auth", "digest:bob:pw", "whoami", "-o", "json"]).await);
    let ids = v["identities"].as_array().unwrap();
    assert!(
        ids.iter()
            .any(|i| i["scheme"] == "digest" && i["user"] == "bob"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ephemerals_lists_each_sessions_ephemerals_with_their_owner() {
    let h = hosts();
    let c = client(&h).await;
    let other = client(&h).await;
    let p = unique("ephemerals");
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    c.create(&format!("{p}/dir"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    let mine = [format!("{p}/dir/e1"), format!("{p}/e0")];
    for e in &mine {
        c.create(e, b"", CreateMode::Ephemeral).await.unwrap();
    }
    let theirs = format!("{p}/dir/t");
    other
        .create(&theirs, b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let (me, them) = (c.session_id(), other.session_id());

    let o = run(&h, &["ephemerals", &p]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.out(),
        format!(
            "{} {me:#x}\n{theirs} {them:#x}\n{} {me:#x}\n",
            mine[0], mine[1]
        )
    );
    // the session's own, by its id as `stat` prints it
    let o = run(&h, &["ephemerals", &p, "--owner", &format!("{me:#x}")]).await;
    assert_eq!(
        o.out(),
        format!("{} {me:#x}\n{} {me:#x}\n", mine[0], mine[1]),
        "{o:?}"
    );
    let v = parse(
        &run(
            &h,
            &["ephemerals", &p, "--owner", &them.to_string(), "-o", "json"],
        )
        .await,
    );
    assert_eq!(
        v["ephemerals"],
        serde_json::json!([{"path": theirs, "owner": them}])
    );
    // once the session is closed, its nodes are gone
    c.close().await.unwrap();
    let o = run(&h, &["ephemerals", &p]).await;
    assert_eq!(o.out(), format!("{theirs} {them:#x}\n"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn count_counts_a_subtree_and_sync_succeeds() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("count");
    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    let o = run(&h, &["count", &p]).await;
    assert_eq!((o.code, o.out()), (0, "0\n".to_owned()), "{o:?}");
    for n in ["a", "a/b", "a/b/c", "d", "d/e"] {
        c.create(&format!("{p}/{n}"), b"", CreateMode::Persistent)
            .await
            .unwrap();
    }
    let o = run(&h, &["count", &p]).await;
    assert_eq!((o.code, o.out()), (0, "5\n".to_owned()), "{o:?}");
    let o = run(&h, &["count", &format!("{p}/a")]).await;
    assert_eq!(o.out(), "2\n", "{o:?}");

    let o = run(&h, &["sync", &p]).await;
    assert_eq!((o.code, o.out()), (0, String::new()), "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn srvr_and_status_print_the_mode_of_a_standalone_server() {
    let h = hosts();
    let o = run(&h, &["srvr"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.out().lines().any(|l| l == "Mode: standalone"), "{o:?}");
    assert!(o.out().starts_with(&h), "the host first: {o:?}");
    let v = parse(&run(&h, &["srvr", "-o", "json"]).await);
    assert_eq!(v[0]["host"], h.as_str());
    assert_eq!(v[0]["answer"]["Mode"], "standalone", "{v}");

    let o = run(&h, &["status"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    let line = o.out();
    assert!(
        line.starts_with(&h) && line.contains("Mode: standalone"),
        "{o:?}"
    );
    let v = parse(&run(&h, &["status", "-o", "json"]).await);
    assert_eq!(v[0]["answer"]["zk_server_state"], "standalone", "{v}");
    assert!(v[0]["answer"]["zk_znode_count"].is_i64(), "{v}");

    // a host that does not answer: its own line on stderr, exit 1, the others still asked
    let dead = "127.0.0.1:1";
    let o = run(&format!("{dead},{h}"), &["srvr"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.starts_with(&format!("zk: srvr {dead}: ")), "{o:?}");
    assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    assert!(o.out().contains("Mode: standalone"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_says_so_when_mntr_is_not_whitelisted() {
    let server = zk_testkit::ZkServer::builder()
        .four_letter_whitelist("srvr")
        .start()
        .expect("server");
    let h = server.connect_string();
    let o = run(&h, &["status"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(
        o.stderr.trim_end(),
        format!(
            "zk: status {h}: the server does not allow the four-letter word mntr (add mntr to its 4lw.commands.whitelist)"
        )
    );
    let o = run(&h, &["srvr"]).await;
    assert_eq!(o.code, 0, "srvr is allowed: {o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_for_bash_zsh_and_fish_mention_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run_cmd(zk(&["completions", shell])).await;
        assert_eq!(o.code, 0, "{shell}: {o:?}");
        let script = o.out();
        assert!(script.len() > 1000, "{shell}: {script}");
        for word in ["getacl", "double-barrier", "output"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let o = run_cmd(zk(&["completions", "tcsh"])).await;
    assert_eq!(o.code, 2, "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn help_groups_global_options_and_id_is_only_on_recipe_commands() {
    let o = run_cmd(zk(&["get", "--help"])).await;
    let help = o.out();
    let at = help
        .find("Global options:")
        .expect("a Global options heading");
    assert!(help[at..].contains("--hosts"), "{help}");
    assert!(!help[..at].contains("--hosts"), "{help}");
    assert!(!help.contains("--id"), "get has no --id: {help}");
    for sub in ["lock", "semaphore", "elect", "double-barrier"] {
        let o = run_cmd(zk(&[sub, "--help"])).await;
        assert!(o.out().contains("--id <IDENTIFIER>"), "{sub} has --id");
    }
    let o = run_cmd(zk(&["ls", "/", "--id", "x"])).await;
    assert_eq!(o.code, 2, "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_acl_missing_file_and_unknown_format_are_one_line_errors() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("errors");
    c.create(&p, b"kept", CreateMode::Persistent).await.unwrap();
    // usage errors: exit 2, nothing sent
    for (args, says) in [
        (vec!["setacl", &p, "world:anyone"], "invalid ACL entry"),
        (
            vec!["setacl", &p, "world:anyone:rwx"],
            "unknown permission 'x'",
        ),
        (vec!["setacl", &p, "nocolons"], "invalid ACL entry"),
        (vec!["get", &p, "-o", "yaml"], "invalid value 'yaml'"),
        (vec!["ls", &p, "--output", "xml"], "invalid value 'xml'"),
        (vec!["get", &p, "--raw", "-o", "json"], "--raw"),
        (vec!["get", &p, "--raw", "--stat"], "cannot be used with"),
        (vec!["set", &p], "required"),
        (
            vec!["set", &p, "x", "--file", "/etc/hostname"],
            "cannot be used with",
        ),
        (
            vec!["ephemerals", &p, "--owner", "zz"],
            "invalid session id",
        ),
    ] {
        let o = run(&h, &args).await;
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
        assert!(
            o.stderr.contains(says),
            "{args:?} should say {says:?}: {}",
            o.stderr
        );
    }
    // failures: exit 1, one line
    let o = run(&h, &["set", &p, "--file", "/nonexistent/data"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    assert!(
        o.stderr
            .starts_with(&format!("zk: set {p}: cannot read /nonexistent/data: ")),
        "{o:?}"
    );
    let o = run(
        &h,
        &["create", &format!("{p}/x"), "--file", "/nonexistent/data"],
    )
    .await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(c.exists(&format!("{p}/x")).await.unwrap().is_none());
    assert_eq!(c.get_data(&p).await.unwrap().0, b"kept");
    // an ACL the server refuses: digest without a hash
    let o = run(&h, &["setacl", &p, "digest:alice:cdrwa"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.stderr.lines().count(), 1, "{o:?}");
    assert!(o.stderr.contains("invalid"), "{o:?}");
    let o = run(&h, &["getacl", &format!("{p}/missing")]).await;
    assert_eq!(
        (o.code, o.stderr.trim_end()),
        (
            1,
            format!("zk: getacl {p}/missing: node does not exist").as_str()
        )
    );
}

/// A scripted four-letter-word server that answers every word as a ZooKeeper ensemble member
/// without a quorum does (`srvr`, `mntr`: one line, nothing else). Returns its address.
async fn not_serving_server() -> String {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut word = [0u8; 4];
                if s.read_exact(&mut word).await.is_ok() {
                    let _ = s
                        .write_all(b"This ZooKeeper instance is not currently serving requests\n")
                        .await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn srvr_and_status_fail_for_a_server_that_is_not_serving() {
    let h = not_serving_server().await;
    for word in ["srvr", "status"] {
        let o = run(&h, &[word]).await;
        assert_eq!(
            o.code, 1,
            "{word}: a member without quorum is not up: {o:?}"
        );
        assert!(
            o.stderr
                .starts_with(&format!("zk: {word} {h}: not currently serving requests")),
            "{word}: {o:?}"
        );
        let o = run(&h, &[word, "-o", "json"]).await;
        assert_eq!(o.code, 1, "{word} -o json: {o:?}");
        let v: Value = serde_json::from_str(&o.out()).unwrap_or_else(|e| panic!("{e}: {o:?}"));
        assert_eq!(v[0]["host"], h.as_str(), "{v}");
        assert!(v[0]["answer"].is_null(), "{v}");
        assert!(
            v[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("not currently serving requests")),
            "{v}"
        );
    }
}
