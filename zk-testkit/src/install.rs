//! Locating `java` and the ZooKeeper jars.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::{Error, Result, INSTALL_JAVA, INSTALL_ZOOKEEPER};

/// Environment variable overriding the directory holding the jars.
pub(crate) const JAR_DIR_ENV: &str = "ZK_TESTKIT_JAR_DIR";
/// Environment variable overriding the `java` binary.
pub(crate) const JAVA_ENV: &str = "ZK_TESTKIT_JAVA";
/// Where Debian installs its jars.
const DEFAULT_JAR_DIR: &str = "/usr/share/java";

/// How the server logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Logging {
    /// slf4j-log4j12 + log4j 1.2: configured by the `log4j.properties` the kit writes.
    Log4j,
    /// slf4j-simple: INFO and above to stderr.
    Simple,
    /// No slf4j binding found: the server runs silently.
    Silent,
}

/// A usable ZooKeeper installation.
#[derive(Clone, Debug)]
pub(crate) struct Installation {
    /// The `java` binary.
    pub(crate) java: PathBuf,
    /// The `-cp` value.
    pub(crate) classpath: OsString,
    /// Which logging backend is on the classpath.
    pub(crate) logging: Logging,
}

impl Installation {
    /// Finds java and the jars, or explains how to install them.
    pub(crate) fn locate() -> Result<Installation> {
        let jar_dir = env::var_os(JAR_DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_JAR_DIR));
        let (jars, logging) = find_jars(&jar_dir)?;
        let java = find_java()?;
        let classpath = env::join_paths(&jars).map_err(|e| {
            Error::MissingPackage(format!(
                "the jar paths in {} cannot form a classpath ({e})",
                jar_dir.display()
            ))
        })?;
        Ok(Installation {
            java,
            classpath,
            logging,
        })
    }
}

/// Finds `name.jar`, or failing that a versioned `name-<digit>….jar`, in `dir`.
fn find_jar(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = dir.join(format!("{name}.jar"));
    if plain.is_file() {
        return Some(plain);
    }
    let prefix = format!("{name}-");
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(|rest| {
                    rest.starts_with(|c: char| c.is_ascii_digit()) && rest.ends_with(".jar")
                })
        })
        .collect();
    versioned.sort();
    versioned.pop()
}

fn find_jars(dir: &Path) -> Result<(Vec<PathBuf>, Logging)> {
    let required = ["zookeeper", "zookeeper-jute"];
    let mut jars = Vec::new();
    let mut missing = Vec::new();
    for name in required {
        match find_jar(dir, name) {
            Some(path) => jars.push(path),
            None => missing.push(format!("{name}.jar")),
        }
    }
    if !missing.is_empty() {
        let hint = if env::var_os(JAR_DIR_ENV).is_some() {
            format!(" (directory taken from ${JAR_DIR_ENV})")
        } else {
            format!(" (or set ${JAR_DIR_ENV} to a directory that holds them)")
        };
        return Err(Error::MissingPackage(format!(
            "the ZooKeeper server is not installed: {} not found in {}{hint}. \
             Install it with `{INSTALL_ZOOKEEPER}`",
            missing.join(", "),
            dir.display(),
        )));
    }
    // Debian's zookeeper.jar lists its dependencies (netty, jackson, slf4j-api, ...) in its
    // manifest Class-Path. It has no slf4j binding: add log4j 1.2 if present, else slf4j-simple.
    if let Some(api) = find_jar(dir, "slf4j-api") {
        jars.push(api);
    }
    // ...but not netty-codec, which the Netty connection factory (TLS, `secureClientPort`)
    // needs: the manifest's netty-handler depends on it.
    if let Some(codec) = find_jar(dir, "netty-codec") {
        jars.push(codec);
    }
    let logging = match (find_jar(dir, "slf4j-log4j12"), find_jar(dir, "log4j-1.2")) {
        (Some(binding), Some(log4j)) => {
            jars.push(binding);
            jars.push(log4j);
            Logging::Log4j
        }
        _ => match find_jar(dir, "slf4j-simple") {
            Some(simple) => {
                jars.push(simple);
                Logging::Simple
            }
            None => Logging::Silent,
        },
    };
    Ok((jars, logging))
}

fn find_java() -> Result<PathBuf> {
    if let Some(java) = env::var_os(JAVA_ENV) {
        let java = PathBuf::from(java);
        return if is_executable(&java) {
            Ok(java)
        } else {
            Err(Error::MissingPackage(format!(
                "${JAVA_ENV} is {}, which is not an executable file. \
                 Unset it or install Java with `{INSTALL_JAVA}`",
                java.display()
            )))
        };
    }
    let mut candidates = Vec::new();
    if let Some(home) = env::var_os("JAVA_HOME") {
        candidates.push(PathBuf::from(home).join("bin").join("java"));
    }
    if let Some(path) = env::var_os("PATH") {
        candidates.extend(env::split_paths(&path).map(|dir| dir.join("java")));
    }
    candidates.push(PathBuf::from("/usr/bin/java"));
    candidates
        .into_iter()
        .find(|c| is_executable(c))
        .ok_or_else(|| {
            Error::MissingPackage(format!(
                "no `java` found ($JAVA_HOME, $PATH, /usr/bin/java). Install a Java runtime with \
                 `{INSTALL_JAVA}` (the `zookeeper` package pulls one in: `{INSTALL_ZOOKEEPER}`), \
                 or set ${JAVA_ENV}"
            ))
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plain_and_versioned_jars() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zookeeper-jute-3.8.0.jar"), b"").unwrap();
        std::fs::write(dir.path().join("zookeeper-jute-3.9.1.jar"), b"").unwrap();
        std::fs::write(dir.path().join("zookeeper.jar"), b"").unwrap();
        std::fs::write(dir.path().join("zookeeper-recipes-lock.jar"), b"").unwrap();
        assert_eq!(
            find_jar(dir.path(), "zookeeper").unwrap(),
            dir.path().join("zookeeper.jar")
        );
        assert_eq!(
            find_jar(dir.path(), "zookeeper-jute").unwrap(),
            dir.path().join("zookeeper-jute-3.9.1.jar")
        );
        assert!(find_jar(dir.path(), "log4j-1.2").is_none());
        let (jars, logging) = find_jars(dir.path()).unwrap();
        assert_eq!(jars.len(), 2);
        assert_eq!(logging, Logging::Silent);
    }

    #[test]
    fn missing_jars_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_jars(dir.path()).unwrap_err();
        assert!(matches!(err, Error::MissingPackage(_)));
        assert!(err.to_string().contains(INSTALL_ZOOKEEPER), "{err}");
    }
}
