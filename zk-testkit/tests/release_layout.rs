//! `$ZOOKEEPER_HOME` pointing at a release-style installation (`lib/` with versioned jars side
//! by side) is found before Debian's `/usr/share/java`, and a real server starts from it.
//!
//! Environment variables are process-global: this file is its own test binary (own process),
//! with one test function.

use std::path::{Path, PathBuf};
use zk_testkit::ZkServer;

/// The versioned file behind Debian's `name.jar` (for example `zookeeper-3.8.0.jar`).
fn versioned(debian: &Path, name: &str) -> PathBuf {
    let prefix = format!("{name}-");
    std::fs::read_dir(debian)
        .expect("Debian's jar directory (scripts/setup.sh installs zookeeper)")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .unwrap_or_else(|| panic!("no versioned {name}-*.jar in {}", debian.display()))
}

#[test]
fn zookeeper_home_with_a_release_lib_dir_is_found_first_and_serves() {
    let debian = Path::new("/usr/share/java");
    let home = tempfile::tempdir().unwrap();
    let lib = home.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    // what a release's lib/ holds, as far as this server needs (Debian's jar finds the rest
    // through its manifest)
    for name in [
        "zookeeper",
        "zookeeper-jute",
        "slf4j-api",
        "slf4j-simple",
        "netty-codec",
    ] {
        let real = versioned(debian, name);
        std::os::unix::fs::symlink(&real, lib.join(real.file_name().unwrap())).unwrap();
    }
    assert!(!lib.join("zookeeper.jar").exists(), "not Debian's layout");
    std::env::remove_var("ZK_TESTKIT_JAR_DIR");
    std::env::set_var("ZOOKEEPER_HOME", home.path());

    let server = ZkServer::builder()
        .real_zookeeper("a release tarball's lib/ layout")
        .start()
        .expect("a server from $ZOOKEEPER_HOME/lib");
    assert_eq!(server.mode().unwrap(), "standalone");
    let pid = server.pid().expect("running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains(&lib.display().to_string()),
        "the JVM's classpath does not come from $ZOOKEEPER_HOME/lib: {cmdline}"
    );
    assert!(
        !cmdline.contains("/usr/share/java/zookeeper.jar"),
        "Debian's jars were used although $ZOOKEEPER_HOME was set: {cmdline}"
    );
}
