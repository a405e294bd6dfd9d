//! `zk demo --real-zookeeper`: the demo on Debian's ZooKeeper 3.8 through zk-testkit (feature
//! `real-zookeeper`).

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn demo_real_zookeeper_runs_on_zookeeper() {
    let o = run_cmd(zk(&["demo", "--real-zookeeper"])).await;
    assert_eq!(o.code, 0, "{o:?}");
    let out = o.out();
    for s in [
        "starting a local ZooKeeper (Debian's 3.8, via zk-testkit)",
        "stopping the local ZooKeeper",
        "== A double barrier",
        "0 children: no contender node left behind",
        "done",
    ] {
        assert!(out.contains(s), "{s:?} missing:\n{out}");
    }
    assert!(!out.contains("zk-server"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_without_zookeeper_says_how_to_install_it_and_installs_nothing() {
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = zk(&["demo", "--real-zookeeper"]);
    // the kit looks for the ZooKeeper jars here and finds none: "ZooKeeper is missing"
    cmd.env("ZK_TESTKIT_JAR_DIR", empty.path());
    let o = run_cmd(cmd).await;
    let all = format!("{}{}", o.out(), o.stderr);
    assert!(
        !all.contains("installing Debian's zookeeper"),
        "installed without being asked:\n{all}"
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(all.contains("apt-get"), "no install command named:\n{all}");
    assert!(
        all.contains("zk demo --real-zookeeper --install"),
        "no --install hint:\n{all}"
    );
}
