//! A missing installation is a clear error, never a skipped test.
//!
//! Environment variables are process-global: this file is its own test binary (own process),
//! and everything runs in one test function.

use zk_testkit::{Ensemble, Error, ZkServer, INSTALL_JAVA, INSTALL_ZOOKEEPER};

#[test]
fn missing_jars_or_java_name_the_install_command() {
    let empty = tempfile::tempdir().unwrap();
    std::env::set_var("ZK_TESTKIT_JAR_DIR", empty.path());

    let err = ZkServer::builder()
        .real_zookeeper("the jar and java lookup")
        .start()
        .unwrap_err();
    assert!(matches!(err, Error::MissingPackage(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("apt-get install -y zookeeper"),
        "{message}"
    );
    assert!(message.contains(INSTALL_ZOOKEEPER), "{message}");
    assert!(message.contains("zookeeper.jar"), "{message}");
    assert!(
        message.contains(&empty.path().display().to_string()),
        "{message}"
    );

    let err = Ensemble::start(3).unwrap_err();
    assert!(matches!(err, Error::MissingPackage(_)), "{err:?}");

    std::env::remove_var("ZK_TESTKIT_JAR_DIR");
    std::env::set_var("ZK_TESTKIT_JAVA", empty.path().join("no-such-java"));
    let err = ZkServer::builder()
        .real_zookeeper("the jar and java lookup")
        .start()
        .unwrap_err();
    assert!(matches!(err, Error::MissingPackage(_)), "{err:?}");
    assert!(err.to_string().contains(INSTALL_JAVA), "{err}");
    assert!(err.to_string().contains("default-jre-headless"), "{err}");
}
