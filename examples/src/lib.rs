//! Shared helpers for the examples: where to find ZooKeeper, and a timeline printer.

use std::time::Instant;
use zk_testkit::ZkServer;

/// The connect string to use: `--hosts H` or `ZK_HOSTS` if given, else a local ZooKeeper that
/// this function starts (returned too: it is stopped when dropped).
pub async fn hosts() -> Result<(String, Option<ZkServer>), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--hosts")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("ZK_HOSTS").ok());
    if let Some(h) = given {
        return Ok((h, None));
    }
    let server = tokio::task::spawn_blocking(ZkServer::start).await??;
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
