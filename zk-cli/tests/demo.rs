//! `zk demo`: the three scenes, on the in-process zk-server it starts when no --hosts is given,
//! also on a machine without Java. (`--real-zookeeper`: tests/demo_real_zookeeper.rs.)

mod common;

use common::*;

/// Checks the output of a whole demo run on the server it started itself.
fn assert_full_demo(out: &str) {
    for s in [
        "starting a local server (zk-server, in this process; no Java needed)",
        "zk-server serving on 127.0.0.1:",
        "stopping the local zk-server",
        "== A lock",
        "== An election",
        "== A double barrier",
        "zk exited with status 74",
        "done",
    ] {
        assert!(out.contains(s), "{s:?} missing:\n{out}");
    }
    // the lock scene: four workers each held it once (exclusion itself: tests/run.rs)
    assert_eq!(out.matches("holds the lock (node").count(), 4, "{out}");
    assert_eq!(out.matches("done, releasing").count(), 4, "{out}");
    // the election: three leaders in turn, one of them lost it (74)
    assert_eq!(out.matches("I am the leader now").count(), 3, "{out}");
    assert!(out.contains("lost leadership of"), "{out}");
    // the double barrier: three stages started and finished
    assert_eq!(out.matches("everyone is here: started").count(), 3, "{out}");
    assert_eq!(out.matches("finished my part").count(), 3, "{out}");
    assert!(
        out.contains("0 children: no contender node left behind"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_shows_lock_election_and_double_barrier() {
    let o = run_cmd(zk(&["demo"])).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_full_demo(&o.out());
}

/// Issue 14: a newcomer's machine without Java. The demo runs with a PATH holding only what
/// its actors' shell commands use (`sh`, `sleep`), no `java` anywhere on it, JAVA_HOME unset,
/// and zk-testkit's own lookups pointed at nothing (`ZK_TESTKIT_JAVA` at a missing file, since
/// the kit also tries /usr/bin/java; `ZK_TESTKIT_JAR_DIR` at an empty directory): the demo as
/// it was, on Debian's ZooKeeper (today `--real-zookeeper`), fails in this environment.
#[tokio::test(flavor = "multi_thread")]
async fn demo_runs_without_java() {
    let bin = tempfile::tempdir().unwrap();
    for tool in ["sh", "sleep"] {
        let found = std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(tool))
                    .find(|f| f.is_file())
            })
            .unwrap_or_else(|| panic!("no {tool} on this machine's PATH"));
        std::os::unix::fs::symlink(&found, bin.path().join(tool)).unwrap();
    }
    assert!(
        !bin.path().join("java").exists(),
        "the test's PATH must not hold java"
    );
    let no_jars = tempfile::tempdir().unwrap();
    let mut cmd = zk(&["demo"]);
    cmd.env("PATH", bin.path())
        .env_remove("JAVA_HOME")
        .env("ZK_TESTKIT_JAVA", bin.path().join("java"))
        .env("ZK_TESTKIT_JAR_DIR", no_jars.path());
    let o = run_cmd(cmd).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert_full_demo(&o.out());
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_uses_the_given_hosts_and_starts_no_server() {
    let srv = zk_server::Server::start().await.unwrap();
    let h = srv.connect_string();
    let o = run_cmd(zk(&["demo", "--hosts", &h])).await;
    assert_eq!(o.code, 0, "{o:?}");
    let out = o.out();
    assert!(out.contains(&format!("using ZooKeeper at {h}")), "{out}");
    assert!(!out.contains("starting a local"), "{out}");
    assert!(
        out.contains("0 children: no contender node left behind"),
        "{out}"
    );
    srv.stop().await;
}

#[cfg(not(feature = "real-zookeeper"))]
#[tokio::test(flavor = "multi_thread")]
async fn demo_real_zookeeper_without_the_feature_says_how_to_get_it() {
    let o = run_cmd(zk(&["demo", "--real-zookeeper"])).await;
    let all = format!("{}{}", o.out(), o.stderr);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(all.contains("--features real-zookeeper"), "{all}");
}
