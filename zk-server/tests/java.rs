//! ZooKeeper's own Java client against zk-server and against real ZooKeeper 3.8: the program
//! `tests/java/ZkSmoke.java` (create modes, one-shot / default / recursive watches and the
//! events they fire, multi with per-op results, session re-attach with id and password,
//! ephemerals gone after close) is compiled with `javac` against the jars zk-testkit finds,
//! run against both servers, and must print the same lines. ZooKeeper's output is the
//! expected one.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The `java` binary, and the classpath with the compiled `ZkSmoke` first (compiled once per
/// test process into a fresh directory).
fn java_and_classpath() -> &'static (PathBuf, String) {
    static ONCE: OnceLock<(PathBuf, String)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let (java, jars) = zk_testkit::java_classpath().unwrap_or_else(|e| panic!("{e}"));
        let jars = jars.into_string().expect("a UTF-8 classpath");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("zk-smoke-java-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let src = format!("{}/tests/java/ZkSmoke.java", env!("CARGO_MANIFEST_DIR"));
        // the JDK's javac beside java, else the one on PATH
        let javac = java
            .canonicalize()
            .ok()
            .map(|j| j.with_file_name("javac"))
            .filter(|j| j.is_file())
            .unwrap_or_else(|| PathBuf::from("javac"));
        let status = std::process::Command::new(&javac)
            .arg("-d")
            .arg(&out)
            .args(["-cp", &jars, &src])
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "{} does not run ({e}): a JDK is needed (scripts/setup.sh)",
                    javac.display()
                )
            });
        assert!(status.success(), "javac {src} failed: {status}");
        (java, format!("{}:{jars}", out.display()))
    })
}

/// Runs the Java program against `hosts` in the chroot `root` (created first) and returns
/// its output.
async fn run_java(hosts: &str, root: &str) -> String {
    let admin = zk_core::Client::connect(hosts).await.expect("connect");
    admin.ensure_path(root).await.expect("chroot");
    admin.close().await.unwrap();
    let (java, cp) = java_and_classpath();
    let child = tokio::process::Command::new(java)
        .args(["-cp", cp, "ZkSmoke", &format!("{hosts}{root}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start java");
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the Java smoke program still running after 180 s")
        .expect("java runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the Java smoke program failed against {hosts}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn java_client_sees_the_same_on_zk_server_as_on_zookeeper() {
    let zk = zk_testkit::shared_zookeeper();
    let ours = zk_server::Server::start().await.unwrap();
    let root = format!("/java-{}", std::process::id());
    let a = run_java(&zk.connect_string(), &root).await;
    let b = run_java(&ours.connect_string(), &root).await;
    if std::env::var_os("ZK_DIFF_DUMP").is_some() {
        eprintln!("zookeeper:\n{a}");
    }
    assert!(a.ends_with("done\n"), "{a}");
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        assert_eq!(x, y, "line {i}\n  zookeeper: {x}\n  zk-server: {y}");
    }
    assert_eq!(
        a.lines().count(),
        b.lines().count(),
        "zookeeper:\n{a}\nzk-server:\n{b}"
    );
}
