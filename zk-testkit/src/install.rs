//! Locating `java` and the ZooKeeper jars.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::{Error, Result, INSTALL_JAVA, INSTALL_ZOOKEEPER};

/// Environment variable overriding the directory holding the jars.
pub(crate) const JAR_DIR_ENV: &str = "ZK_TESTKIT_JAR_DIR";
/// Environment variable overriding the `java` binary.
pub(crate) const JAVA_ENV: &str = "ZK_TESTKIT_JAVA";
/// Environment variable naming an unpacked ZooKeeper release (its `lib/` holds the jars).
pub(crate) const HOME_ENV: &str = "ZOOKEEPER_HOME";
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
    /// Finds java and the jars, or explains how to install them (listing where it looked).
    pub(crate) fn locate() -> Result<Installation> {
        Self::locate_in(&jar_dir_candidates(|k| env::var_os(k)))
    }

    fn locate_in(candidates: &[Candidate]) -> Result<Installation> {
        let mut looked = Vec::new();
        let mut found = None;
        for c in candidates {
            match find_jars(&c.dir) {
                Ok(jars) => {
                    found = Some((c, jars));
                    break;
                }
                Err(missing) => looked.push(format!("{} ({}): {missing}", c.dir.display(), c.why)),
            }
        }
        let Some((c, (jars, logging))) = found else {
            return Err(Error::MissingPackage(format!(
                "the ZooKeeper server is not installed; looked in:\n  {}\nInstall it with \
                 `{INSTALL_ZOOKEEPER}`, or point ${HOME_ENV} at an unpacked ZooKeeper release \
                 (its lib/ holds the jars), or ${JAR_DIR_ENV} at a directory of jars",
                looked.join("\n  ")
            )));
        };
        let java = find_java()?;
        let classpath = env::join_paths(&jars).map_err(|e| {
            Error::MissingPackage(format!(
                "the jar paths in {} cannot form a classpath ({e})",
                c.dir.display()
            ))
        })?;
        Ok(Installation {
            java,
            classpath,
            logging,
        })
    }
}

/// The `java` binary and the classpath of the installed ZooKeeper (its client is in the same
/// jars as its server), found as the kit finds them to start a server: for tests that run a
/// program on ZooKeeper's own Java client. `javac`, when a test compiles one, is the JDK's
/// (`scripts/setup.sh` installs it).
///
/// # Errors
/// [`Error::MissingPackage`] naming what is missing and the command that installs it.
pub fn java_classpath() -> Result<(PathBuf, OsString)> {
    let install = Installation::locate()?;
    Ok((install.java, install.classpath))
}

/// A directory that may hold ZooKeeper's jars, and why the kit looks there.
#[derive(Debug)]
struct Candidate {
    dir: PathBuf,
    why: &'static str,
}

/// Where to look, in order: `$ZK_TESTKIT_JAR_DIR` alone when set; else `$ZOOKEEPER_HOME/lib`
/// (an unpacked release), Debian's `/usr/share/java`, Homebrew's (Apple silicon, then Intel)
/// and `/opt/zookeeper/lib`.
fn jar_dir_candidates(var: impl Fn(&str) -> Option<OsString>) -> Vec<Candidate> {
    if let Some(dir) = var(JAR_DIR_ENV) {
        return vec![Candidate {
            dir: dir.into(),
            why: "$ZK_TESTKIT_JAR_DIR",
        }];
    }
    let mut out = Vec::new();
    if let Some(home) = var(HOME_ENV) {
        out.push(Candidate {
            dir: PathBuf::from(home).join("lib"),
            why: "$ZOOKEEPER_HOME/lib",
        });
    }
    for (dir, why) in [
        (DEFAULT_JAR_DIR, "Debian's zookeeper package"),
        ("/opt/homebrew/opt/zookeeper/libexec/lib", "Homebrew"),
        ("/usr/local/opt/zookeeper/libexec/lib", "Homebrew"),
        ("/opt/zookeeper/lib", "a release unpacked in /opt/zookeeper"),
    ] {
        out.push(Candidate {
            dir: dir.into(),
            why,
        });
    }
    out
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

/// The classpath and logging of the ZooKeeper in `dir`, or what is missing there.
///
/// Two layouts: Debian's (`zookeeper.jar`, whose manifest lists its dependencies elsewhere in
/// `/usr/share/java`; the slf4j binding and netty-codec are added here), and a release's
/// `lib/` (versioned `zookeeper-3.x.y.jar` beside every dependency: all its jars are used).
fn find_jars(dir: &Path) -> std::result::Result<(Vec<PathBuf>, Logging), String> {
    if !dir.is_dir() {
        return Err("no such directory".into());
    }
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
        return Err(format!("{} not found", missing.join(", ")));
    }
    if !dir.join("zookeeper.jar").is_file() {
        // a release's lib/: the server and all its dependencies side by side
        let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot list it: {e}"))?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.path())
            .filter(|p| p.extension().is_some_and(|e| e == "jar"))
            .collect();
        all.sort();
        let has = |name: &str| find_jar(dir, name).is_some();
        let logging = if has("slf4j-log4j12") && has("log4j-1.2") {
            Logging::Log4j
        } else if has("slf4j-simple") {
            Logging::Simple
        } else {
            // logback (3.8's releases) without its conf/logback.xml logs to stdout, which the
            // kit sends to the server log like any other output
            Logging::Silent
        };
        return Ok((all, logging));
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
    fn missing_jars_name_the_fix_and_every_place_looked() {
        let dir = tempfile::tempdir().unwrap();
        let candidates = [
            Candidate {
                dir: dir.path().into(),
                why: "first",
            },
            Candidate {
                dir: dir.path().join("absent"),
                why: "second",
            },
        ];
        let err = Installation::locate_in(&candidates).unwrap_err();
        assert!(matches!(err, Error::MissingPackage(_)));
        let msg = err.to_string();
        assert!(msg.contains(INSTALL_ZOOKEEPER), "{msg}");
        assert!(msg.contains("ZOOKEEPER_HOME"), "{msg}");
        assert!(
            msg.contains(&format!("{} (first): zookeeper.jar", dir.path().display())),
            "{msg}"
        );
        assert!(msg.contains("absent (second): no such directory"), "{msg}");
    }

    #[test]
    fn a_release_lib_dir_gives_all_its_jars() {
        let dir = tempfile::tempdir().unwrap();
        for j in [
            "zookeeper-3.8.4.jar",
            "zookeeper-jute-3.8.4.jar",
            "netty-handler-4.1.105.Final.jar",
            "logback-classic-1.2.13.jar",
        ] {
            std::fs::write(dir.path().join(j), b"").unwrap();
        }
        std::fs::write(dir.path().join("README.txt"), b"").unwrap();
        let (jars, logging) = find_jars(dir.path()).unwrap();
        assert_eq!(jars.len(), 4, "{jars:?}");
        assert!(jars.iter().all(|j| j.extension().unwrap() == "jar"));
        assert_eq!(logging, Logging::Silent);
    }

    #[test]
    fn candidates_in_order() {
        let env = |k: &str| match k {
            "ZOOKEEPER_HOME" => Some(OsString::from("/srv/zk")),
            _ => None,
        };
        let dirs: Vec<PathBuf> = jar_dir_candidates(env).into_iter().map(|c| c.dir).collect();
        assert_eq!(dirs[0], PathBuf::from("/srv/zk/lib"));
        assert_eq!(dirs[1], PathBuf::from("/usr/share/java"));
        assert!(dirs.contains(&PathBuf::from("/opt/homebrew/opt/zookeeper/libexec/lib")));
        let only = |k: &str| (k == JAR_DIR_ENV).then(|| OsString::from("/jars"));
        let dirs: Vec<PathBuf> = jar_dir_candidates(only)
            .into_iter()
            .map(|c| c.dir)
            .collect();
        assert_eq!(dirs, [PathBuf::from("/jars")]);
    }
}
