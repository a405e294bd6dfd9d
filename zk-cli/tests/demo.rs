//! `zk demo`: the three scenes, on a server it starts itself when none answers at the default
//! address.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn demo_shows_lock_election_and_double_barrier() {
    // what the demo is expected to do depends on whether something answers at the default
    let default_taken = std::net::TcpStream::connect("127.0.0.1:2181").is_ok();
    let o = run_cmd(zk(&["demo"])).await;
    assert_eq!(o.code, 0, "{o:?}");
    let out = o.out();
    if default_taken {
        assert!(
            out.contains("using the ZooKeeper answering at 127.0.0.1:2181")
                || out.contains("starting a local one"),
            "{out}"
        );
    } else {
        assert!(out.contains("starting a local one"), "{out}");
        assert!(out.contains("stopping the local ZooKeeper"), "{out}");
    }
    for s in [
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
async fn demo_without_zookeeper_says_how_to_install_it_and_installs_nothing() {
    // with a server at the default address the demo uses it and never looks for ZooKeeper
    let default_taken = std::net::TcpStream::connect("127.0.0.1:2181").is_ok();
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = zk(&["demo"]);
    // the kit looks for the ZooKeeper jars here and finds none: "ZooKeeper is missing"
    cmd.env("ZK_TESTKIT_JAR_DIR", empty.path());
    let o = run_cmd(cmd).await;
    let all = format!("{}{}", o.out(), o.stderr);
    assert!(
        !all.contains("installing Debian's zookeeper"),
        "installed without being asked:\n{all}"
    );
    if default_taken {
        assert!(all.contains("using the ZooKeeper answering at"), "{all}");
        return;
    }
    assert_eq!(o.code, 1, "{o:?}");
    assert!(all.contains("apt-get"), "no install command named:\n{all}");
    assert!(
        all.contains("zk demo --install"),
        "no --install hint:\n{all}"
    );
}
