//! The server a run talks to: given with `--hosts`, or started locally through `zk-testkit`.

use crate::BoxError;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use zk_core::{parse_connect_string, Client};
use zk_testkit::ZkServer;

pub struct Target {
    /// Connect string for clients.
    pub connect: String,
    /// The first server, for four-letter words and the fault proxy.
    pub addr: SocketAddr,
    server_pid: Option<u32>,
    _local: Option<ZkServer>,
}

impl Target {
    pub fn new(hosts: Option<String>, server_pid: Option<u32>) -> Result<Target, BoxError> {
        match hosts {
            Some(h) => {
                let (list, _) = parse_connect_string(&h)?;
                let first = list.first().ok_or("--hosts names no server")?;
                let addr = (first.host.as_str(), first.port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| format!("cannot resolve {first}"))?;
                Ok(Target {
                    connect: h,
                    addr,
                    server_pid,
                    _local: None,
                })
            }
            None => {
                eprintln!("zk-bench: starting a local ZooKeeper (zk-testkit)");
                let server = ZkServer::start()?;
                Ok(Target {
                    connect: server.connect_string(),
                    addr: server.addr(),
                    server_pid: server_pid.or(server.pid()),
                    _local: Some(server),
                })
            }
        }
    }

    /// CPU time (user + system) the server process has used so far, if its pid is known.
    pub fn server_cpu(&self) -> Option<Duration> {
        process_cpu(self.server_pid?)
    }

    /// A client with the bench's settings on `connect`.
    pub async fn client(&self) -> zk_core::Result<Client> {
        Client::builder(self.connect.as_str())
            .session_timeout(Duration::from_secs(20))
            .connect()
            .await
    }

    /// Sends a four-letter word without blocking the runtime.
    pub async fn four_letter(&self, word: &'static str) -> std::io::Result<String> {
        let addr = self.addr;
        tokio::task::spawn_blocking(move || zk_testkit::four_letter(addr, word))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Total watches on the server (`wchs`: "Total watches:N").
    pub async fn total_watches(&self) -> std::io::Result<u64> {
        let out = self.four_letter("wchs").await?;
        parse_total_watches(&out).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected wchs answer {out:?}"),
            )
        })
    }
}

pub fn parse_total_watches(wchs: &str) -> Option<u64> {
    wchs.lines()
        .find_map(|l| l.trim().strip_prefix("Total watches:"))
        .and_then(|v| v.trim().parse().ok())
}

/// utime + stime of a process, from /proc/PID/stat.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces: fields after the last ')'
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // after ')': state is field 3, so utime (14) and stime (15) are at 11 and 12
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

/// A fresh base path for one run: `/zk-bench/<what>-<pid>-<nanos>`.
pub fn base_path(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    format!("/zk-bench/{what}-{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wchs_is_parsed() {
        let s = "3 connections watching 10 paths\nTotal watches:12\n";
        assert_eq!(parse_total_watches(s), Some(12));
        assert_eq!(parse_total_watches("nope"), None);
    }

    #[test]
    fn own_cpu_is_readable() {
        assert!(process_cpu(std::process::id()).is_some());
    }
}
