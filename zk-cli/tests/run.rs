//! lock, semaphore, elect, double-barrier and barrier against a real server: CMD's status,
//! ZK_NODE, exclusion, timeouts (75), signals, loss (74), and no node left behind.

mod common;

use common::*;
use zk_core::{CreateMode, CreateOptions};

/// The exclusive critical-section check (the marker protocol of the kazoo interop test: an
/// exclusive holder creates `w` exclusively; `mkdir` is atomic), exit 9 on a violation.
fn exclusive_cs(dir: &TempDir) -> String {
    let w = dir.file("w");
    format!("mkdir '{w}' 2>/dev/null || {{ echo VIOLATION; exit 9; }}; sleep 0.05; rmdir '{w}'")
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_runs_cmd_with_zk_node_and_exits_with_its_status() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("lock-status");
    // CMD reads its own node with zk: it exists while CMD runs and holds our --id
    let o = run(
        &h,
        &[
            "lock",
            &p,
            "--id",
            "holder-7",
            "--",
            "sh",
            "-c",
            r#"echo "$ZK_NODE"; "$ZK" --hosts "$1" get "$ZK_NODE"; echo; exit 7"#,
            "sh",
            &h,
        ],
    )
    .await;
    assert_eq!(o.code, 7, "CMD's status: {o:?}");
    let out = o.out();
    let mut lines = out.lines();
    let node = lines.next().unwrap();
    let name = node
        .strip_prefix(&format!("{p}/"))
        .expect("under the lock path");
    let c_node = zk_recipes_like(name);
    assert!(c_node, "kazoo's layout <uuid>__lock__<seq>: {name}");
    assert_eq!(lines.next(), Some("holder-7"), "the node holds --id: {o:?}");
    assert_eq!(children(&c, &p).await, Vec::<String>::new(), "released");

    // CMD killed by a signal: 128 + signal; CMD not found: 127
    let o = run(&h, &["lock", &p, "--", "sh", "-c", "kill -KILL $$"]).await;
    assert_eq!(o.code, 137, "{o:?}");
    let o = run(&h, &["lock", &p, "--", "/nonexistent/cmd"]).await;
    assert_eq!(o.code, 127, "{o:?}");
    assert!(o.stderr.contains("cannot run /nonexistent/cmd"), "{o:?}");
    let o = run(&h, &["lock", &p, "--", "true"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(children(&c, &p).await, Vec::<String>::new(), "nothing left");
}

fn zk_recipes_like(name: &str) -> bool {
    let Some((uuid, seq)) = name.split_once("__lock__") else {
        return false;
    };
    uuid.len() == 32
        && uuid.bytes().all(|b| b.is_ascii_hexdigit())
        && seq.len() == 10
        && seq.bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_holders_never_overlap() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("lock-excl");
    let dir = TempDir::new();
    let cs = exclusive_cs(&dir);
    let mut procs = Vec::new();
    for i in 0..6 {
        let id = format!("w{i}");
        procs.push(Proc::start(
            &h,
            &["lock", &p, "--id", &id, "--", "sh", "-c", &cs],
        ));
    }
    for mut z in procs {
        assert_eq!(z.exit().await, 0, "{:?}", z.stdout());
    }
    assert_eq!(children(&c, &p).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_timeout_is_75_cmd_never_starts_and_no_node_is_left() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("lock-timeout");
    let dir = TempDir::new();
    let release = dir.file("release");
    let hold = format!("echo held; {}", sh_wait_file(&release));
    let mut holder = Proc::start(&h, &["lock", &p, "--", "sh", "-c", &hold]);
    holder.wait_stdout("held").await;

    let marker = dir.file("waiter-ran");
    let o = run(&h, &["lock", &p, "--timeout", "1s", "--", "touch", &marker]).await;
    assert_eq!(o.code, 75, "{o:?}");
    assert!(
        o.stderr
            .contains("timed out after 1s waiting for the lock on"),
        "{o:?}"
    );
    assert!(!dir.has("waiter-ran"), "CMD never started");
    assert_eq!(children(&c, &p).await.len(), 1, "only the holder's node");

    dir.touch("release");
    assert_eq!(holder.exit().await, 0);
    assert_eq!(children(&c, &p).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_share_the_lock_and_exclude_writers() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("rwlock");
    let dir = TempDir::new();
    // each reader waits until both are inside: only possible if they hold it together
    let both = |me: &str| {
        format!(
            "touch '{}'; {}; {}",
            dir.file(me),
            sh_wait_file(&dir.file("r1")),
            sh_wait_file(&dir.file("r2"))
        )
    };
    let hold = format!(
        "{}; echo inside; {}",
        both("r1"),
        sh_wait_file(&dir.file("go"))
    );
    let mut r1 = Proc::start(&h, &["lock", &p, "--read", "--", "sh", "-c", &hold]);
    let mut r2 = Proc::start(&h, &["lock", &p, "--read", "--", "sh", "-c", &both("r2")]);
    assert_eq!(
        r2.exit().await,
        0,
        "two readers hold it at once: {:?}",
        r2.stderr()
    );
    r1.wait_stdout("inside").await;

    // a writer cannot get in while a reader holds
    let o = run(&h, &["lock", &p, "--timeout", "1s", "--", "true"]).await;
    assert_eq!(o.code, 75, "{o:?}");

    dir.touch("go");
    assert_eq!(r1.exit().await, 0);
    let o = run(&h, &["lock", &p, "--timeout", "30s", "--", "true"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(children(&c, &p).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sigint_are_passed_to_cmd_and_the_node_is_deleted() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("signals");

    // CMD traps SIGTERM and exits 3: zk exits 3
    let cmd = r#"trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done"#;
    let mut z = Proc::start(&h, &["lock", &p, "--", "sh", "-c", cmd]);
    z.wait_stdout("ready").await;
    assert_eq!(children(&c, &p).await.len(), 1);
    z.signal(libc::SIGTERM);
    assert_eq!(z.exit().await, 3, "CMD's status");
    assert!(
        z.stdout().contains(&"got-term".to_owned()),
        "{:?}",
        z.stdout()
    );
    assert_eq!(
        children(&c, &p).await,
        Vec::<String>::new(),
        "deleted before exit"
    );

    // CMD dies of SIGINT: 130
    let mut z = Proc::start(
        &h,
        &["lock", &p, "--", "sh", "-c", "echo ready; exec sleep 60"],
    );
    z.wait_stdout("ready").await;
    z.signal(libc::SIGINT);
    assert_eq!(z.exit().await, 130);
    assert_eq!(
        children(&c, &p).await,
        Vec::<String>::new(),
        "deleted before exit"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_while_waiting_gives_up_without_running_cmd_or_leaving_a_node() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("signal-wait");
    let dir = TempDir::new();
    let hold = format!("echo held; {}", sh_wait_file(&dir.file("release")));
    let mut holder = Proc::start(&h, &["lock", &p, "--", "sh", "-c", &hold]);
    holder.wait_stdout("held").await;

    let marker = dir.file("ran");
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let mut waiter = Proc::start(&h, &["lock", &p, "--", "touch", &marker]);
        eventually("the waiter queues", || async {
            children(&c, &p).await.len() == 2
        })
        .await;
        waiter.signal(sig);
        assert_eq!(waiter.exit().await, code);
        assert!(
            waiter.stderr().concat().contains("gave up"),
            "{:?}",
            waiter.stderr()
        );
        assert_eq!(children(&c, &p).await.len(), 1, "the waiter's node is gone");
        assert!(!dir.has("ran"));
    }
    dir.touch("release");
    assert_eq!(holder.exit().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_node_is_a_loss_74_and_cmd_is_stopped() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("loss-delete");
    // a shell with a child of its own: without a terminal, CMD has its own process group and
    // the whole group is stopped
    let mut z = Proc::start(
        &h,
        &[
            "lock",
            &p,
            "--",
            "sh",
            "-c",
            "echo $$; sleep 300; echo after",
        ],
    );
    let sh: u32 = z.wait_stdout("").await.trim().parse().unwrap();
    let sleep = eventually_child(sh, "sleep").await;
    let node = children(&c, &p).await.remove(0);
    c.delete(&format!("{p}/{node}"), None).await.unwrap();
    assert_eq!(z.exit().await, 74);
    let err = z.stderr().join("\n");
    assert!(
        err.contains(&format!(
            "zk: lost the lock on {p}: the holder's node was deleted"
        )),
        "{err}"
    );
    assert!(!alive(sh), "CMD is gone");
    eventually("CMD's child is gone too", || async { !alive(sleep) }).await;
    assert!(!z.stdout().contains(&"after".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn cmd_ignoring_sigterm_gets_sigkill_after_kill_after() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("kill-after");
    let cmd = "trap '' TERM; echo $$; while :; do sleep 0.1; done";
    let mut z = Proc::start(
        &h,
        &["lock", &p, "--kill-after", "1s", "--", "sh", "-c", cmd],
    );
    let pid: u32 = z.wait_stdout("").await.trim().parse().unwrap();
    let node = children(&c, &p).await.remove(0);
    c.delete(&format!("{p}/{node}"), None).await.unwrap();
    assert_eq!(z.exit().await, 74);
    let err = z.stderr().join("\n");
    assert!(err.contains("SIGTERM now, SIGKILL after 1s"), "{err}");
    assert!(err.contains("sending SIGKILL"), "{err}");
    assert!(!alive(pid), "CMD is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn semaphore_admits_max_holders() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("sem");
    let dir = TempDir::new();
    let d = dir.path().to_string_lossy().into_owned();
    // each holder: marker s.<pid>; never more than 2; stay until `go`
    let cs = format!(
        r#"touch '{d}/s.'$$; n=$(ls '{d}' | grep -c '^s\.'); [ "$n" -le 2 ] || {{ echo VIOLATION; exit 9; }}; echo inside; {}; rm '{d}/s.'$$"#,
        sh_wait_file(&dir.file("go"))
    );
    let mut procs: Vec<Proc> = (0..3)
        .map(|_| Proc::start(&h, &["semaphore", &p, "--max", "2", "--", "sh", "-c", &cs]))
        .collect();
    eventually("two holders inside at once", || async {
        std::fs::read_dir(dir.path()).unwrap().count() == 2
    })
    .await;
    let o = run(
        &h,
        &[
            "semaphore",
            &p,
            "--max",
            "2",
            "--timeout",
            "1s",
            "--",
            "true",
        ],
    )
    .await;
    assert_eq!(o.code, 75, "full: {o:?}");
    assert!(o.stderr.contains("a lease of the semaphore"), "{o:?}");
    assert_eq!(
        children(&c, &p).await.len(),
        2,
        "two leases, none of the timed-out one"
    );
    let admission = format!("{p}-__lock__");
    assert_eq!(
        children(&c, &admission).await.len(),
        1,
        "only the third holder waits"
    );

    let o = run(
        &h,
        &[
            "semaphore",
            &p,
            "--max",
            "3",
            "--timeout",
            "5s",
            "--",
            "true",
        ],
    )
    .await;
    assert_eq!(o.code, 1, "a different maximum: {o:?}");
    assert!(o.stderr.contains("2 leases"), "{o:?}");

    dir.touch("go");
    for z in procs.iter_mut() {
        assert_eq!(z.exit().await, 0, "{:?}", z.stdout());
    }
    assert_eq!(
        children(&c, &p).await,
        Vec::<String>::new(),
        "no lease left"
    );
    assert_eq!(
        c.get_data(&p).await.unwrap().0,
        b"2",
        "kazoo's layout: the max as data"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn elect_runs_cmd_only_while_leader_and_hands_over() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("elect");
    let dir = TempDir::new();
    let lead1 = format!("echo leading-1; {}", sh_wait_file(&dir.file("resign")));
    let mut first = Proc::start(&h, &["elect", &p, "--id", "c1", "--", "sh", "-c", &lead1]);
    first.wait_stdout("leading-1").await;
    let lead2 = format!("touch '{}'; echo leading-2", dir.file("second-led"));
    let mut second = Proc::start(&h, &["elect", &p, "--id", "c2", "--", "sh", "-c", &lead2]);
    eventually("the second candidate queues", || async {
        children(&c, &p).await.len() == 2
    })
    .await;

    let o = run(&h, &["elect", &p, "--timeout", "1s", "--", "true"]).await;
    assert_eq!(o.code, 75, "{o:?}");
    assert!(o.stderr.contains("waiting for leadership of"), "{o:?}");
    assert_eq!(
        children(&c, &p).await.len(),
        2,
        "the timed-out candidate left no node"
    );
    assert!(!dir.has("second-led"), "only one leader at a time");

    dir.touch("resign");
    assert_eq!(first.exit().await, 0);
    assert_eq!(second.exit().await, 0);
    assert!(dir.has("second-led"));
    assert_eq!(children(&c, &p).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn double_barrier_starts_together_and_finishes_together() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("dbarrier");
    let dir = TempDir::new();
    let stage = |i: u32, wait_for: Option<&str>| {
        let mut s = format!(
            "touch '{}'; echo \"$ZK_NODE\"",
            dir.file(&format!("started-{i}"))
        );
        if let Some(f) = wait_for {
            s.push_str(&format!("; {}", sh_wait_file(&dir.file(f))));
        }
        s.push_str(&format!("; touch '{}'", dir.file(&format!("done-{i}"))));
        s
    };
    let mut p1 = Proc::start(
        &h,
        &[
            "double-barrier",
            &p,
            "--count",
            "3",
            "--",
            "sh",
            "-c",
            &stage(1, None),
        ],
    );
    let mut p2 = Proc::start(
        &h,
        &[
            "double-barrier",
            &p,
            "--count",
            "3",
            "--",
            "sh",
            "-c",
            &stage(2, None),
        ],
    );
    eventually("two participants entered", || async {
        children(&c, &p).await.len() == 2
    })
    .await;
    assert!(
        !dir.has("started-1") && !dir.has("started-2"),
        "nobody starts before the third"
    );

    let mut p3 = Proc::start(
        &h,
        &[
            "double-barrier",
            &p,
            "--count",
            "3",
            "--",
            "sh",
            "-c",
            &stage(3, Some("finish-3")),
        ],
    );
    eventually("all three started", || async {
        dir.has("started-1") && dir.has("started-2") && dir.has("started-3")
    })
    .await;
    let node = p3.wait_stdout(&p).await;
    assert!(
        node.starts_with(&format!("{p}/")) && node.len() == p.len() + 33,
        "{node}"
    );
    // stage 3 still works: the others wait for it to leave
    assert!(!p1.has_exited() && !p2.has_exited());
    dir.touch("finish-3");
    for z in [&mut p1, &mut p2, &mut p3] {
        assert_eq!(z.exit().await, 0);
    }
    assert!(dir.has("done-3"), "nobody left before stage 3 finished");
    assert_eq!(children(&c, &p).await, Vec::<String>::new());

    // alone in a barrier for two: 75, CMD never started, no node left
    let o = run(
        &h,
        &[
            "double-barrier",
            &p,
            "--count",
            "2",
            "--timeout",
            "1s",
            "--",
            "touch",
            &dir.file("alone"),
        ],
    )
    .await;
    assert_eq!(o.code, 75, "{o:?}");
    assert!(!dir.has("alone"));
    assert_eq!(children(&c, &p).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn barrier_create_wait_remove() {
    let h = hosts();
    let c = client(&h).await;
    let p = format!("{}/gate", unique("barrier"));

    let o = run(&h, &["barrier", "wait", &p]).await;
    assert_eq!(o.code, 0, "down when missing: {o:?}");

    let o = run(&h, &["barrier", "create", &p]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        c.exists(&p).await.unwrap().is_some(),
        "created with its parents"
    );
    let o = run(&h, &["barrier", "create", &p]).await;
    assert_eq!(o.code, 0, "existing is fine: {o:?}");

    let o = run(&h, &["barrier", "wait", &p, "--timeout", "1s"]).await;
    assert_eq!(o.code, 75, "{o:?}");
    assert!(o.stderr.contains("timed out"), "{o:?}");

    let mut waiter = Proc::start(&h, &["barrier", "wait", &p]);
    let o = run(&h, &["barrier", "remove", &p]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(waiter.exit().await, 0, "released by the removal");
    assert!(c.exists(&p).await.unwrap().is_none());

    let o = run(&h, &["barrier", "remove", &p]).await;
    assert_eq!(o.code, 0, "already down is fine: {o:?}");

    c.create(&p, b"", CreateMode::Persistent).await.unwrap();
    c.create(&format!("{p}/child"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    let o = run(&h, &["barrier", "remove", &p]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("has children"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cmd_is_stopped_when_zk_is_killed_outright() {
    let h = hosts();
    let c = client(&h).await;
    let p = unique("pdeathsig");
    let mut z = Proc::start(
        &h,
        &["lock", &p, "--", "sh", "-c", "echo $$; exec sleep 60"],
    );
    let pid: u32 = z.wait_stdout("").await.trim().parse().unwrap();
    assert!(alive(pid));
    z.signal(libc::SIGKILL);
    assert_eq!(z.exit().await, 137);
    eventually("CMD is stopped once zk is gone", || async { !alive(pid) }).await;
    // nobody deleted the node: it goes when the session expires on the server
    eventually("the node goes with the session", || async {
        children(&c, &p).await.is_empty()
    })
    .await;
}

/// The recipes that queue behind a holder, as zk arguments after the path.
const QUEUED: [(&str, &[&str]); 4] = [
    ("lock", &[]),
    ("lock", &["--read"]),
    ("semaphore", &["--max", "1"]),
    ("elect", &[]),
];

fn args<'a>(sub: &'a str, p: &'a str, extra: &[&'a str], cmd: &'a str) -> Vec<&'a str> {
    let mut v = vec![sub, p];
    v.extend_from_slice(extra);
    v.extend_from_slice(&["--", "sh", "-c", cmd]);
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn every_recipe_gives_up_on_a_signal_while_waiting_and_leaves_no_node() {
    let h = hosts();
    let c = client(&h).await;
    let dir = TempDir::new();
    let ran = format!("touch '{}'", dir.file("ran"));
    for (i, (sub, extra)) in QUEUED.iter().enumerate() {
        let p = unique(&format!("wait-signal-{i}"));
        let release = dir.file(&format!("release-{i}"));
        // the holder is exclusive, so that a reader waits too
        let holder_sub = if *sub == "lock" { "lock" } else { sub };
        let holder_extra: &[&str] = if *sub == "lock" { &[] } else { extra };
        let hold = format!("echo held; {}", sh_wait_file(&release));
        let mut holder = Proc::start(&h, &args(holder_sub, &p, holder_extra, &hold));
        holder.wait_stdout("held").await;
        let before = children(&c, &p).await;
        let mut waiter = Proc::start(&h, &args(sub, &p, extra, &ran));
        let admission = format!("{p}-__lock__");
        eventually("the waiter queues", || async {
            if *sub == "semaphore" {
                !children(&c, &admission).await.is_empty()
            } else {
                children(&c, &p).await.len() == before.len() + 1
            }
        })
        .await;
        waiter.signal(libc::SIGTERM);
        assert_eq!(
            waiter.exit().await,
            143,
            "{sub} {extra:?}: {:?}",
            waiter.stderr()
        );
        assert_eq!(
            children(&c, &p).await,
            before,
            "{sub} {extra:?}: the waiter's node is gone"
        );
        assert!(
            children(&c, &admission).await.is_empty(),
            "{sub}: no admission node left"
        );
        assert!(!dir.has("ran"), "{sub} {extra:?}: CMD never ran");
        dir.touch(&format!("release-{i}"));
        assert_eq!(holder.exit().await, 0);
        assert!(children(&c, &p).await.is_empty());
    }
    // the double barrier: waiting for the others to enter
    let p = unique("wait-signal-barrier");
    let mut alone = Proc::start(
        &h,
        &["double-barrier", &p, "--count", "2", "--", "sh", "-c", &ran],
    );
    eventually("entered", || async { children(&c, &p).await.len() == 1 }).await;
    alone.signal(libc::SIGINT);
    assert_eq!(alone.exit().await, 130);
    assert!(children(&c, &p).await.is_empty());
    assert!(!dir.has("ran"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_recipe_passes_sigterm_to_cmd_and_leaves_no_node() {
    let h = hosts();
    let c = client(&h).await;
    let cmd = "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done";
    let mut cases: Vec<(&str, Vec<&str>)> = QUEUED.iter().map(|(s, e)| (*s, e.to_vec())).collect();
    cases.push(("double-barrier", vec!["--count", "1"]));
    for (i, (sub, extra)) in cases.iter().enumerate() {
        let p = unique(&format!("fwd-{i}"));
        let mut z = Proc::start(&h, &args(sub, &p, extra, cmd));
        z.wait_stdout("ready").await;
        z.signal(libc::SIGTERM);
        assert_eq!(z.exit().await, 3, "{sub} {extra:?}: CMD's status");
        assert!(
            z.stdout().contains(&"got-term".to_owned()),
            "{sub}: {:?}",
            z.stdout()
        );
        assert!(
            children(&c, &p).await.is_empty(),
            "{sub} {extra:?}: no node left"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_exit_1_and_cmd_never_runs() {
    let h = hosts();
    let c = client(&h).await;
    let base = unique("server-errors");
    // a read-only node: nobody may create contenders under it
    c.create_with(
        &base,
        b"",
        &CreateOptions::new(CreateMode::Persistent).with_acl(zk_core::Acl::read_unsafe()),
    )
    .await
    .unwrap();
    let dir = TempDir::new();
    let ran = format!("touch '{}'", dir.file("ran"));
    let p = format!("{base}/x");
    for (sub, extra) in [
        ("lock", vec![]),
        ("semaphore", vec!["--max", "2"]),
        ("elect", vec![]),
        ("double-barrier", vec!["--count", "1"]),
    ] {
        let o = run(&h, &args(sub, &p, &extra, &ran)).await;
        assert_eq!(o.code, 1, "{sub}: {o:?}");
        assert!(
            o.stderr.starts_with(&format!("zk: {sub} {p}")),
            "{sub}: {o:?}"
        );
        assert!(o.stderr.contains("not authorized"), "{sub}: {o:?}");
        assert_eq!(o.stderr.lines().count(), 1, "one line: {o:?}");
    }
    let o = run(&h, &["barrier", "create", &p]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("not authorized"), "{o:?}");
    assert!(!dir.has("ran"));
}

/// `--timeout 0` is flock's `-w 0`: take it if it is free now, else exit 75 at once. It gave up
/// before the first round trip, exit 75 with the lock free and CMD never run.
#[tokio::test(flavor = "multi_thread")]
async fn timeout_0_takes_what_is_free_now_and_gives_up_on_what_is_held() {
    let h = hosts();
    let c = client(&h).await;
    let base = unique("timeout-0");
    let lock = format!("{base}/lock");
    let sem = format!("{base}/sem");
    let elect = format!("{base}/elect");
    let cases: [Vec<&str>; 3] = [
        vec!["lock", &lock],
        vec!["semaphore", &sem, "--max", "1"],
        vec!["elect", &elect],
    ];
    for args in &cases {
        let mut all = args.clone();
        all.extend(["--timeout", "0", "--", "true"]);
        let o = run(&h, &all).await;
        assert_eq!(o.code, 0, "{args:?}, free: {o:?}");
    }
    let held = [
        zk_recipes::Lock::new(&c, &lock, "holder")
            .acquire()
            .await
            .unwrap(),
        zk_recipes::Semaphore::new(&c, &sem, "holder", 1)
            .unwrap()
            .acquire()
            .await
            .unwrap(),
        zk_recipes::Election::new(&c, &elect, "holder")
            .acquire()
            .await
            .unwrap(),
    ];
    for args in &cases {
        let mut all = args.clone();
        all.extend(["--timeout", "0", "--", "true"]);
        let o = run(&h, &all).await;
        assert_eq!(o.code, 75, "{args:?}, held: {o:?}");
    }
    for g in held {
        g.release().await.unwrap();
    }
}

/// `zk barrier ... --timeout 0` does what it can without waiting, as `lock --timeout 0` does:
/// `create` and `remove` (one request each, nothing to wait for) go through, `wait` passes
/// when the barrier is down now and exits 75 at once when it is up. A zero deadline used to
/// pass before the first round trip, so every one of them exited 75 and did nothing.
#[tokio::test(flavor = "multi_thread")]
async fn barrier_timeout_0_does_what_needs_no_waiting() {
    let h = hosts();
    let c = client(&h).await;
    let p = format!("{}/gate", unique("barrier-0"));
    let o = run(&h, &["barrier", "wait", &p, "--timeout", "0"]).await;
    assert_eq!(o.code, 0, "down now: {o:?}");
    let o = run(&h, &["barrier", "create", &p, "--timeout", "0"]).await;
    assert_eq!(o.code, 0, "create: {o:?}");
    assert!(c.exists(&p).await.unwrap().is_some(), "created");
    let o = run(&h, &["barrier", "wait", &p, "--timeout", "0"]).await;
    assert_eq!(o.code, 75, "up now: {o:?}");
    assert!(o.stderr.contains("timed out"), "{o:?}");
    let o = run(&h, &["barrier", "remove", &p, "--timeout", "0"]).await;
    assert_eq!(o.code, 0, "remove: {o:?}");
    assert!(c.exists(&p).await.unwrap().is_none(), "removed");
}
