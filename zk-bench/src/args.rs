//! Command line: `zk-bench [--hosts H] [--threads T] [--server-pid P] SCENARIO [--option value]...`.

use std::collections::BTreeMap;
use std::str::FromStr;

pub const USAGE: &str = "\
usage: zk-bench [--hosts HOSTS] [--threads T] [--server-pid PID] [--label TEXT] SCENARIO [options]
       zk-bench serve
       zk-bench stub-serve [--size BYTES]

Prints one JSON object per line. Without --hosts, starts a local ZooKeeper (zk-testkit).

scenarios and their options (defaults in brackets):
  get | set | exists | create-delete
      --ops N [20000] --concurrency C [64] --size BYTES [100] --sessions S [1]
      --warmup N [2000] --nodes K [16]
      C requests in flight on each of S sessions, spread over K nodes of BYTES bytes
      (create-delete: each op is one create or one delete; N ops = N/2 pairs).
  lock-handoff --contenders N [100] --rounds M [5]
      N sessions queue on one lock; each acquires and releases it M times.
  lock-waiters --contenders N [1000]
      one session, N lock handles waiting on one lock: client heap per waiting contender.
  watch-reregister --watches W [100000] --concurrency C [1000]
      W one-shot watches through a fault proxy; the proxy resets the connection; time until
      the server holds all W again, and client memory.
  election-failover --candidates N [10] --rounds R [20]
      close the leader's session; time until the next candidate knows it leads.
  serve
      start a local ZooKeeper, print {\"serve\":\"127.0.0.1:PORT\",\"server_pid\":PID} and
      keep it up until SIGTERM / SIGINT.
  stub-serve --size BYTES [100]
      a stub server that answers every request at once with a canned reply (getData:
      BYTES bytes), to measure a client where the server is not the bottleneck. Not a
      ZooKeeper: for get / set / exists / create-delete only.

common options:
  --hosts H        connect string of an existing server (default: start one)
  --threads T      1: a current-thread tokio runtime (default); T > 1: T worker threads
  --server-pid P   also report the CPU time of process P (the server) during the run
  --label TEXT     copied into the output";

/// Parsed arguments: the scenario name and its `--key value` options.
#[derive(Debug)]
pub struct Args {
    pub scenario: String,
    opts: BTreeMap<String, String>,
}

impl Args {
    pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut scenario = None;
        let mut opts = BTreeMap::new();
        let mut it = argv.into_iter();
        while let Some(a) = it.next() {
            if a == "-h" || a == "--help" {
                return Err(String::new());
            }
            if let Some(key) = a.strip_prefix("--") {
                let (key, value) = match key.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (
                        key.to_owned(),
                        it.next().ok_or_else(|| format!("--{key} needs a value"))?,
                    ),
                };
                if opts.insert(key.clone(), value).is_some() {
                    return Err(format!("--{key} given twice"));
                }
            } else if scenario.is_none() {
                scenario = Some(a);
            } else {
                return Err(format!("unexpected argument {a:?}"));
            }
        }
        Ok(Args {
            scenario: scenario.ok_or("no scenario given")?,
            opts,
        })
    }

    /// Takes option `key`, or `default` if absent.
    pub fn take<T: FromStr>(&mut self, key: &str, default: T) -> Result<T, String> {
        match self.opts.remove(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: cannot parse {v:?}")),
        }
    }

    /// Takes option `key` if present.
    pub fn take_opt<T: FromStr>(&mut self, key: &str) -> Result<Option<T>, String> {
        match self.opts.remove(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("--{key}: cannot parse {v:?}")),
        }
    }

    /// Fails if an option was not taken by anyone.
    pub fn finish(self) -> Result<(), String> {
        match self.opts.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!(
                "option --{k} does not apply to scenario {}",
                self.scenario
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        Args::parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn options_before_and_after_the_scenario() {
        let mut a = args("--hosts 127.0.0.1:2181 get --ops=10 --concurrency 4").unwrap();
        assert_eq!(a.scenario, "get");
        assert_eq!(
            a.take::<String>("hosts", String::new()).unwrap(),
            "127.0.0.1:2181"
        );
        assert_eq!(a.take("ops", 1u64).unwrap(), 10);
        assert_eq!(a.take("concurrency", 1usize).unwrap(), 4);
        assert_eq!(a.take("size", 100usize).unwrap(), 100);
        a.finish().unwrap();
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(args("get --ops").is_err());
        assert!(args("get set").is_err());
        assert!(args("--ops 3").is_err());
        assert!(args("get --ops 1 --ops 2").is_err());
        let mut a = args("get --ops x").unwrap();
        assert!(a.take("ops", 1u64).is_err());
        let a = args("get --bogus 1").unwrap();
        assert!(a.finish().is_err());
    }
}
