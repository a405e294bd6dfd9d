//! Shared helpers for the examples: where to find a server, and a timeline printer.

use std::net::SocketAddr;
use std::time::Instant;

/// The server an example started itself; stopped when dropped.
#[derive(Debug)]
pub enum LocalServer {
    /// zk-server in the example's process (the default: no Java needed).
    Embedded(zk_server::Server),
    /// Debian's ZooKeeper 3.8 through zk-testkit (`--real-zookeeper`; needs Java).
    Real(Box<zk_testkit::ZkServer>),
}

impl LocalServer {
    /// Starts one: zk-server, or with `real` Debian's ZooKeeper.
    pub async fn start(real: bool) -> Result<LocalServer, Box<dyn std::error::Error>> {
        Ok(if real {
            LocalServer::Real(Box::new(
                tokio::task::spawn_blocking(zk_testkit::ZkServer::start).await??,
            ))
        } else {
            LocalServer::Embedded(zk_server::Server::start().await?)
        })
    }

    /// Its client address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            LocalServer::Embedded(s) => s.addr(),
            LocalServer::Real(s) => s.addr(),
        }
    }

    /// Its connect string.
    pub fn connect_string(&self) -> String {
        match self {
            LocalServer::Embedded(s) => s.connect_string(),
            LocalServer::Real(s) => s.connect_string(),
        }
    }

    /// What it is, for the examples' first line.
    pub fn describe(&self) -> &'static str {
        match self {
            LocalServer::Embedded(_) => "zk-server, in this process (no Java needed)",
            LocalServer::Real(_) => "Debian's ZooKeeper 3.8 via zk-testkit",
        }
    }
}

/// The connect string to use: `--hosts H` or `ZK_HOSTS` if given, else a local server that
/// this function starts (returned too: it is stopped when dropped): zk-server in this
/// process, or with `--real-zookeeper` Debian's ZooKeeper 3.8 (needs Java).
pub async fn hosts() -> Result<(String, Option<LocalServer>), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--hosts")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("ZK_HOSTS").ok());
    if let Some(h) = given {
        return Ok((h, None));
    }
    let server = LocalServer::start(args.iter().any(|a| a == "--real-zookeeper")).await?;
    Ok((server.connect_string(), Some(server)))
}

/// Prints lines prefixed with the time since it was made.
#[derive(Debug, Clone, Copy)]
pub struct Timeline(Instant);

impl Timeline {
    /// Starts the clock.
    pub fn start() -> Timeline {
        Timeline(Instant::now())
    }

    /// Prints one line.
    pub fn say(&self, what: impl std::fmt::Display) {
        println!("[{:>7.3}s] {what}", self.0.elapsed().as_secs_f64());
    }
}
