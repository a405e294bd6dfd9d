//! Command line (clap): `zk-bench [--hosts H] [--threads T] [--server-pid P] [--label TEXT]
//! SCENARIO [--option value]...`. The common options may also follow the scenario.

use clap::{Args as ClapArgs, Parser, Subcommand};

/// Benchmarks of zk-core and zk-recipes against a real ZooKeeper.
///
/// Prints one JSON object per line. Without --hosts, starts a local ZooKeeper (zk-testkit).
#[derive(Debug, Parser)]
#[command(name = "zk-bench", version)]
pub struct Cli {
    /// Connect string of an existing server (default: start one).
    #[arg(
        long,
        global = true,
        help_heading = "Common options",
        value_name = "HOSTS"
    )]
    pub hosts: Option<String>,
    /// 1: a current-thread tokio runtime; T > 1: T worker threads.
    #[arg(
        long,
        global = true,
        help_heading = "Common options",
        value_name = "T",
        default_value_t = 1
    )]
    pub threads: usize,
    /// Also report the CPU time of process PID (the server) during the run.
    #[arg(
        long,
        global = true,
        help_heading = "Common options",
        value_name = "PID"
    )]
    pub server_pid: Option<u32>,
    /// Copied into the output.
    #[arg(
        long,
        global = true,
        help_heading = "Common options",
        value_name = "TEXT"
    )]
    pub label: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios, and the two server commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// getData: C requests in flight on each of S sessions, spread over K nodes of BYTES bytes.
    Get(OpsArgs),
    /// setData, as `get`.
    Set(OpsArgs),
    /// exists, as `get`.
    Exists(OpsArgs),
    /// Each op is one create or one delete (N ops = N/2 pairs), as `get` otherwise.
    CreateDelete(OpsArgs),
    /// N sessions queue on one lock; each acquires and releases it M times.
    LockHandoff {
        /// Sessions queueing on the lock (N >= 2).
        #[arg(long, value_name = "N", default_value_t = 100, value_parser = at_least::<2>)]
        contenders: usize,
        /// Acquisitions per session (M >= 1).
        #[arg(long, value_name = "M", default_value_t = 5, value_parser = at_least::<1>)]
        rounds: usize,
    },
    /// One session, N lock handles waiting on one lock: client heap per waiting contender.
    LockWaiters {
        /// Waiting lock handles (N >= 2).
        #[arg(long, value_name = "N", default_value_t = 1000, value_parser = at_least::<2>)]
        contenders: usize,
    },
    /// W one-shot watches through a fault proxy; the proxy resets the connection; time until
    /// the server holds all W again, and client memory.
    WatchReregister {
        /// One-shot watches to set.
        #[arg(long, value_name = "W", default_value_t = 100_000)]
        watches: usize,
        /// Watches set concurrently (at least 1).
        #[arg(long, value_name = "C", default_value_t = 1000, value_parser = at_least::<1>)]
        concurrency: usize,
    },
    /// Close the leader's session; time until the next candidate knows it leads.
    ElectionFailover {
        /// Candidates in the election (N >= 2).
        #[arg(long, value_name = "N", default_value_t = 10, value_parser = at_least::<2>)]
        candidates: usize,
        /// Failovers (R >= 1).
        #[arg(long, value_name = "R", default_value_t = 20, value_parser = at_least::<1>)]
        rounds: usize,
    },
    /// Start a local ZooKeeper, print {"serve":"127.0.0.1:PORT","server_pid":PID} and keep it
    /// up until SIGTERM / SIGINT.
    Serve,
    /// A stub server that answers every request at once with a canned reply, to measure a
    /// client where the server is not the bottleneck. Not a ZooKeeper: for get / set / exists /
    /// create-delete only.
    StubServe {
        /// Bytes in a getData reply.
        #[arg(long, value_name = "BYTES", default_value_t = 100)]
        size: usize,
    },
}

/// Options of `get`, `set`, `exists` and `create-delete`.
#[derive(Debug, Clone, ClapArgs)]
pub struct OpsArgs {
    /// Measured requests.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub ops: u64,
    /// Requests in flight on each session (at least 1).
    #[arg(long, value_name = "C", default_value_t = 64, value_parser = at_least::<1>)]
    pub concurrency: usize,
    /// Bytes of data in each node.
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    pub size: usize,
    /// Sessions (at least 1).
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = at_least::<1>)]
    pub sessions: usize,
    /// Requests before the measured ones (not measured).
    #[arg(long, value_name = "N", default_value_t = 2_000)]
    pub warmup: u64,
    /// Nodes the requests are spread over (at least 1).
    #[arg(long, value_name = "K", default_value_t = 16, value_parser = at_least::<1>)]
    pub nodes: usize,
}

/// A `usize` of at least `MIN`.
fn at_least<const MIN: usize>(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|e| format!("{s:?} is not a whole number: {e}"))?;
    if n < MIN {
        return Err(format!("must be at least {MIN}, got {n}"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(s: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("zk-bench").chain(s.split_whitespace()))
    }

    fn ops(c: &Cli) -> &OpsArgs {
        match &c.command {
            Command::Get(o) | Command::Set(o) | Command::Exists(o) | Command::CreateDelete(o) => o,
            other => panic!("not an ops scenario: {other:?}"),
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_before_and_after_the_scenario() {
        let a = parse("--hosts 127.0.0.1:2181 get --ops=10 --concurrency 4 --label x").unwrap();
        assert!(matches!(a.command, Command::Get(_)));
        assert_eq!(a.hosts.as_deref(), Some("127.0.0.1:2181"));
        assert_eq!(a.label.as_deref(), Some("x"));
        assert_eq!(a.threads, 1);
        let o = ops(&a);
        assert_eq!((o.ops, o.concurrency, o.size), (10, 4, 100));
        assert_eq!((o.sessions, o.warmup, o.nodes), (1, 2_000, 16));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = parse("set").unwrap();
        let o = ops(&a);
        assert_eq!((o.ops, o.concurrency, o.size), (20_000, 64, 100));
        assert!(matches!(
            parse("lock-handoff").unwrap().command,
            Command::LockHandoff {
                contenders: 100,
                rounds: 5
            }
        ));
        assert!(matches!(
            parse("lock-waiters").unwrap().command,
            Command::LockWaiters { contenders: 1000 }
        ));
        assert!(matches!(
            parse("watch-reregister").unwrap().command,
            Command::WatchReregister {
                watches: 100_000,
                concurrency: 1000
            }
        ));
        assert!(matches!(
            parse("election-failover").unwrap().command,
            Command::ElectionFailover {
                candidates: 10,
                rounds: 20
            }
        ));
        assert!(matches!(
            parse("stub-serve").unwrap().command,
            Command::StubServe { size: 100 }
        ));
    }

    #[test]
    fn mistakes_are_reported() {
        for bad in [
            "get --ops",                        // no value
            "get set",                          // two scenarios
            "--ops 3",                          // no scenario
            "get --ops 1 --ops 2",              // twice
            "get --ops x",                      // not a number
            "get --bogus 1",                    // unknown option
            "lock-handoff --ops 1",             // option of another scenario
            "get --concurrency 0",              // out of range
            "lock-handoff --contenders 1",      // out of range
            "election-failover --rounds 0",     // out of range
            "frobnicate",                       // unknown scenario
            "--threads two get",                // common option not a number
            "--server-pid -3 get",              // not a pid
            "serve --size 3",                   // serve takes no options
            "watch-reregister --concurrency 0", // out of range
        ] {
            let e = parse(bad).expect_err(bad);
            assert_ne!(e.exit_code(), 0, "{bad}: {e}");
        }
        let e = parse("get --concurrency 0").unwrap_err().to_string();
        assert!(
            e.contains("--concurrency") && e.contains("at least 1"),
            "{e}"
        );
    }

    #[test]
    fn help_is_not_an_error() {
        for h in ["--help", "-h", "get --help", "help lock-handoff"] {
            let e = parse(h).expect_err(h);
            assert_eq!(e.exit_code(), 0, "{h}");
        }
    }

    /// Every invocation of zk-bench in bench/compare.sh and docs/benchmarks.md, with the
    /// shell variables at their defaults.
    #[test]
    fn every_invocation_of_compare_sh_and_the_docs_parses() {
        let ops_args = "--ops 20000 --concurrency 64 --size 100 --sessions 1";
        let lock_args = "--contenders 100 --rounds 5";
        let ours = "--hosts 127.0.0.1:2181 --server-pid 4242";
        let stub_args = "--concurrency 64 --size 100 --sessions 1";
        let mut lines = vec!["serve".to_owned(), "stub-serve --size 100".to_owned()];
        for s in ["get", "set", "create-delete"] {
            lines.push(format!(
                "{ours} --label warmup {s} --ops 5000 --concurrency 64"
            ));
            lines.push(format!("{ours} --label rep1 {s} {ops_args}"));
        }
        lines.push(format!(
            "{ours} --label warmup lock-handoff --contenders 10 --rounds 5"
        ));
        lines.push(format!("{ours} --label rep1 lock-handoff {lock_args}"));
        lines.push(format!("{ours} --label rep1 exists {ops_args}"));
        lines.push(format!(
            "{ours} --label rep1 watch-reregister --watches 100000"
        ));
        lines.push(format!(
            "{ours} --label rep1 election-failover --candidates 10 --rounds 20"
        ));
        lines.push(format!(
            "{ours} --label rep1 lock-waiters --contenders 1000"
        ));
        for s in ["get", "set"] {
            lines.push(format!(
                "--hosts 127.0.0.1:3000 --label stub-rep1 {s} --ops 200000 --warmup 20000 {stub_args}"
            ));
        }
        // docs/benchmarks.md
        lines.extend(
            [
                "get",
                "--hosts 127.0.0.1:2181 set --ops 100000 --concurrency 256",
                "--hosts H lock-handoff --contenders 100 --rounds 5",
                "--hosts H watch-reregister --watches 100000",
                "--hosts H election-failover --candidates 10 --rounds 20",
                "--hosts H lock-waiters --contenders 1000",
                "lock-handoff --contenders 100",
                "--threads 2 get --ops 2000",
            ]
            .map(str::to_owned),
        );
        for l in &lines {
            if let Err(e) = parse(l) {
                panic!("{l}: {e}");
            }
        }
        let a = parse(&lines[lines.len() - 10]).unwrap(); // the first stub run
        assert_eq!(a.label.as_deref(), Some("stub-rep1"));
        assert_eq!((ops(&a).ops, ops(&a).warmup), (200_000, 20_000));
        let a = parse(&lines[2]).unwrap(); // the first warm-up
        assert_eq!(a.server_pid, Some(4242));
        assert_eq!(ops(&a).ops, 5000);
    }
}
