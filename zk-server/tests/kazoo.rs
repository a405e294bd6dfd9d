//! kazoo (the Python client) against zk-server and against real ZooKeeper 3.8: the same script,
//! the same output.

use std::time::Duration;

async fn run_script(hosts: &str, root: &str) -> String {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import kazoo"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "python3 with kazoo is required: run scripts/setup.sh");
    let admin = zk_core::Client::connect(hosts).await.expect("connect");
    admin.ensure_path(root).await.expect("chroot");
    admin.close().await.unwrap();
    let script = format!(
        "{}/tests/interop/kazoo_smoke.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let child = tokio::process::Command::new("python3")
        .args([script.as_str(), hosts, root])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("kazoo script still running after 120 s")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "kazoo script failed: {stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn kazoo_sees_the_same_on_zk_server_as_on_zookeeper() {
    let zk = zk_testkit::shared_zookeeper(); // the reference, whatever ZK_TESTKIT_BACKEND says
    let ours = zk_server::Server::start().await.unwrap();
    let root = format!("/kazoo-{}", std::process::id());
    let a = run_script(&zk.connect_string(), &root).await;
    let b = run_script(&ours.connect_string(), &root).await;
    eprintln!("{b}");
    assert!(b.contains("lock contenders ['me']"), "{b}");
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        assert_eq!(x, y, "line {i}\n  zookeeper: {x}\n  zk-server: {y}");
    }
    assert_eq!(
        a.lines().count(),
        b.lines().count(),
        "zookeeper:\n{a}\nzk-server:\n{b}"
    );
}
