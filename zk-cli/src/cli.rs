//! The command line: global options, subcommands, their help texts.
//!
//! The examples in the help texts are also in `docs/cli.md` (a test checks it).

use crate::duration::{parse_duration, parse_positive_duration};
use crate::output::Format;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The default connect string.
pub const DEFAULT_HOSTS: &str = "127.0.0.1:2181";

const EXIT_STATUS_HELD: &str = "\
Exit status:
  CMD's own status   CMD ran and the coordination held throughout
                     (CMD killed by a signal: 128 + the signal number)
  75                 --timeout passed before it was obtained; CMD never started
  74                 it was lost while CMD ran: CMD got SIGTERM at once and
                     SIGKILL after --kill-after; zk says on stderr what was lost
                     and why. By default a suspended connection counts as lost
                     (--lost-on lost: only an expired session or a deleted node)
  1                  other failures (cannot connect, server error)
  2                  usage errors
  126, 127           CMD could not be run (not executable, not found)
SIGINT and SIGTERM sent to zk are passed on to CMD (zk exits with CMD's status);
while still waiting, zk gives up and exits 128 + the signal number. Our node is
deleted before zk exits, whatever happens. CMD's stdin, stdout and stderr are
zk's; its environment has ZK_NODE, the path of our node.";

const EXIT_STATUS_BARRIER: &str = "\
Exit status:
  CMD's own status   CMD ran, and entering and leaving worked
                     (CMD killed by a signal: 128 + the signal number)
  75                 --timeout passed before everyone entered; CMD never started
  1                  other failures (cannot connect, server error, leaving failed
                     after CMD succeeded)
  2                  usage errors
  126, 127           CMD could not be run (not executable, not found)
SIGINT and SIGTERM sent to zk are passed on to CMD (zk exits with CMD's status);
while still waiting, zk gives up and exits 128 + the signal number. Our node is
deleted before zk exits, whatever happens. CMD's stdin, stdout and stderr are
zk's; its environment has ZK_NODE, the path of our node.";

const TOP_HELP: &str = "\
Inspect and edit:
  zk get /app/config
  zk create /app/config '{\"v\":1}' --parents
  zk watch /app --recursive
Run a program under coordination:
  zk lock /locks/nightly-report --timeout 10s -- ./report.sh
  zk elect /election/scheduler -- ./scheduler --serve
  zk double-barrier /batch/2024-06-01 --count 4 -- ./stage.sh
Exit status of the commands that inspect and edit: 0 on success, 1 on failure
(missing node, bad version, cannot connect...), 2 for usage errors.
Read commands print JSON with -o json; `zk completions bash|zsh|fish`.
`zk <command> --help` tells more; docs/cli.md has the full guide.";

/// zk: inspect ZooKeeper, and run any program under a lock, as leader, or behind a barrier.
///
/// Coordination interoperates with kazoo (Python) on the same paths. Global options may come
/// before or after the subcommand.
#[derive(Debug, Parser)]
#[command(name = "zk", version, after_long_help = TOP_HELP, after_help = TOP_HELP)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// ZooKeeper servers, `host:port,host:port`, optionally with a chroot (`h1:p1,h2:p2/app`)
    /// [default: 127.0.0.1:2181]
    #[arg(long, env = "ZK_HOSTS", global = true, value_name = "CONNECT STRING", value_parser = parse_hosts)]
    pub hosts: Option<String>,

    /// Session timeout to ask for (the server clamps it); also how long to wait for a
    /// connection
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub session_timeout: Duration,

    /// Authentication to add to the session, `scheme:credential` (e.g. `digest:user:pass`);
    /// repeatable
    #[arg(long, global = true, value_name = "SCHEME:CREDENTIAL", value_parser = parse_auth)]
    pub auth: Vec<AuthArg>,

    /// SASL authentication before anything else on every connection:
    /// `digest-md5:USER:PASSWORD` (a user of the servers' JAAS `Server` section), or, in a zk
    /// built with the `gssapi` feature, `gssapi[:PRINCIPAL]` (Kerberos: the ticket cache or
    /// the keytab in KRB5_CLIENT_KTNAME, KRB5_CONFIG honoured; the servers' principal is
    /// zookeeper/<host as written in --hosts>)
    #[arg(long, env = "ZK_SASL", hide_env_values = true, global = true, value_name = "MECHANISM:...", value_parser = parse_sasl)]
    pub sasl: Option<SaslArg>,

    /// CA certificates (PEM) to trust: connect to every host over TLS (`tcp+tls://host:port`
    /// in --hosts turns TLS on for that host alone, trusting the system's CAs)
    #[arg(long, env = "ZK_TLS_CA", global = true, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Client certificate (PEM) for mutual TLS; with --tls-key
    #[arg(
        long,
        env = "ZK_TLS_CERT",
        global = true,
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,

    /// Private key (PEM) of --tls-cert
    #[arg(
        long,
        env = "ZK_TLS_KEY",
        global = true,
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<std::path::PathBuf>,

    /// Log (tracing) on stderr, including the session id once connected; -vv for more
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    /// The connect string to use.
    pub fn hosts(&self) -> &str {
        self.hosts.as_deref().unwrap_or(DEFAULT_HOSTS)
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and we stop at the first NUL or at the end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// One `--auth` value. Its Debug output leaves the credential out.
#[derive(Clone)]
pub enum AuthArg {
    /// `scheme:credential`.
    Valid {
        /// E.g. `digest`.
        scheme: String,
        /// E.g. `user:pass`.
        credential: String,
    },
    /// A value that does not parse, with the reason: reported as a usage error when zk
    /// connects, not by clap, whose message would repeat the value and so the credential.
    Invalid(String),
}

impl std::fmt::Debug for AuthArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthArg::Valid { scheme, .. } => write!(f, "{scheme}:<redacted>"),
            AuthArg::Invalid(why) => f.debug_tuple("Invalid").field(why).finish(),
        }
    }
}

/// Never fails: a bad value becomes [`AuthArg::Invalid`] (clap's error would print it).
fn parse_auth(s: &str) -> Result<AuthArg, String> {
    Ok(match s.split_once(':') {
        Some((scheme, credential)) if !scheme.is_empty() => AuthArg::Valid {
            scheme: scheme.to_owned(),
            credential: credential.to_owned(),
        },
        // the value alone may be the credential: not repeated
        Some(_) => AuthArg::Invalid(
            "--auth: empty scheme before the first ':'; expected scheme:credential, e.g. \
             digest:user:pass"
                .into(),
        ),
        None => AuthArg::Invalid(
            "--auth: no ':' in the value; expected scheme:credential, e.g. digest:user:pass".into(),
        ),
    })
}

fn parse_hosts(s: &str) -> Result<String, String> {
    zk_core::parse_connect_string(s).map_err(|e| match e {
        zk_core::Error::InvalidArgument(m) => m,
        other => other.to_string(),
    })?;
    Ok(s.to_owned())
}

/// One `--sasl` value. Its Debug output leaves the password out.
#[derive(Clone)]
pub enum SaslArg {
    /// DIGEST-MD5 with a user name and password.
    DigestMd5 {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// GSSAPI (Kerberos), as this principal or the default one.
    #[cfg(feature = "gssapi")]
    Gssapi {
        /// `alice` or `alice@REALM`; `None`: the ticket cache's (or the client keytab's).
        principal: Option<String>,
    },
    /// A value that does not parse, with the reason: reported as a usage error when zk
    /// connects, not by clap, whose message would repeat the value and so the password.
    Invalid(String),
}

impl std::fmt::Debug for SaslArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslArg::DigestMd5 { user, .. } => f
                .debug_struct("DigestMd5")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            #[cfg(feature = "gssapi")]
            SaslArg::Gssapi { principal } => f
                .debug_struct("Gssapi")
                .field("principal", principal)
                .finish(),
            SaslArg::Invalid(why) => f.debug_tuple("Invalid").field(why).finish(),
        }
    }
}

/// Never fails: a bad value becomes [`SaslArg::Invalid`] (clap's error would print it).
fn parse_sasl(s: &str) -> Result<SaslArg, String> {
    Ok(sasl_arg(s).unwrap_or_else(|why| SaslArg::Invalid(format!("--sasl: {why}"))))
}

fn sasl_arg(s: &str) -> Result<SaslArg, String> {
    match s.split_once(':') {
        Some((m, rest)) if m.eq_ignore_ascii_case("digest-md5") => match rest.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(SaslArg::DigestMd5 {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err("expected digest-md5:USER:PASSWORD".into()),
        },
        _ if s.eq_ignore_ascii_case("gssapi") => gssapi(None),
        Some((m, p)) if m.eq_ignore_ascii_case("gssapi") && !p.is_empty() => gssapi(Some(p)),
        // the mechanism alone: the rest may hold a password
        _ => Err(format!(
            "unknown SASL mechanism {:?}: expected digest-md5:USER:PASSWORD or gssapi[:PRINCIPAL]",
            s.split(':').next().unwrap_or_default()
        )),
    }
}

#[cfg(feature = "gssapi")]
fn gssapi(principal: Option<&str>) -> Result<SaslArg, String> {
    Ok(SaslArg::Gssapi {
        principal: principal.map(str::to_owned),
    })
}

#[cfg(not(feature = "gssapi"))]
fn gssapi(_: Option<&str>) -> Result<SaslArg, String> {
    Err("this zk was built without SASL GSSAPI (Kerberos): build it with --features gssapi (needs libkrb5-dev and libclang-dev)".into())
}

/// A ZooKeeper path, checked as the server would.
pub fn parse_path(s: &str) -> Result<String, String> {
    zk_core::validate_path(s, false).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

fn parse_create_path(s: &str) -> Result<String, String> {
    // a trailing '/' is fine for a sequential node: checked again once the mode is known
    zk_core::validate_path(s, true).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

fn parse_session_id(s: &str) -> Result<i64, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).map(|v| v as i64),
        None => s.parse::<i64>(),
    };
    parsed.map_err(|_| format!("invalid session id {s:?}: expected 0x<hex> or a decimal number"))
}

/// A parsed `setacl` ACL.
#[derive(Debug, Clone)]
pub struct AclArg(pub Vec<zk_core::Acl>);

fn parse_acl_arg(s: &str) -> Result<AclArg, String> {
    crate::output::parse_acl(s).map(AclArg)
}

/// `-o/--output` of the read commands.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArg {
    /// Output format: `text` for people, `json` for programs (docs/cli.md has the shapes)
    #[arg(short, long = "output", value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// When a held lock, lease or leadership counts as lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LostOn {
    /// As soon as the connection is suspended (the session may live, but we cannot know)
    Suspended,
    /// Only when the session is lost (expired), or our node is deleted
    Lost,
}

/// Whose node layout `lock`, `semaphore` and `elect` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// kazoo's (kazoo's Lock / ReadLock / WriteLock, Semaphore, Election)
    Kazoo,
    /// Apache Curator 5's (InterProcessMutex, InterProcessReadWriteLock,
    /// InterProcessSemaphoreV2, LeaderLatch)
    Curator,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a node's data (a newline added unless it ends with one; --raw: the bytes alone)
    #[command(
        after_long_help = "Examples:\n  zk get /app/config\n  zk get /app/config --stat\n  zk get /app/logo.png --raw > logo.png\n  zk get /app/config -o json"
    )]
    Get {
        /// The node
        #[arg(value_parser = parse_path)]
        path: String,
        /// Also print the Stat fields, one `name: value` per line, after the data
        #[arg(long, conflicts_with = "raw")]
        stat: bool,
        /// Write the data's bytes unchanged, nothing added (for binary data and files)
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        output: OutputArg,
    },

    /// Set a node's data (from the argument, stdin with `-`, or a file with --file)
    #[command(
        after_long_help = "Examples:\n  zk set /app/config '{\"v\":2}'\n  zk set /app/config '{\"v\":3}' --version 1\n  zk set /app/config - < config.json\n  zk set /app/logo.png --file logo.png"
    )]
    Set {
        /// The node
        #[arg(value_parser = parse_path)]
        path: String,
        /// The new data (bytes of the argument); `-` reads it from stdin
        #[arg(required_unless_present = "file")]
        data: Option<OsString>,
        /// Read the new data from FILE (bytes unchanged)
        #[arg(long, value_name = "FILE", conflicts_with = "data")]
        file: Option<PathBuf>,
        /// Only if the node's data version is N (else: version mismatch, exit 1)
        #[arg(long, value_name = "N")]
        version: Option<i32>,
    },

    /// Create a node and print its path
    ///
    /// An ephemeral node lives as long as the session of the command that created it: with
    /// --ephemeral, zk prints the path and then keeps running (holding the node) until it gets
    /// SIGINT or SIGTERM, then deletes the node and exits 0. So --ephemeral is for scripts
    /// that start it in the background and kill it when done (exit 74 if the session is lost
    /// meanwhile: the node is gone).
    #[command(
        after_long_help = "Examples:\n  zk create /app/config '{\"v\":1}' --parents\n  zk create /app/jobs/job- --sequential\n  zk create /app/tmp/scratch --ttl 1h\n  zk create /services/web/host-1 --ephemeral &"
    )]
    Create {
        /// The node (with --sequential, a 10-digit sequence number is appended)
        #[arg(value_parser = parse_create_path)]
        path: String,
        /// Its data (default: empty); `-` reads it from stdin
        data: Option<OsString>,
        /// Read its data from FILE (bytes unchanged)
        #[arg(long, value_name = "FILE", conflicts_with = "data")]
        file: Option<PathBuf>,
        /// Ephemeral: zk holds the node until SIGINT / SIGTERM, then deletes it and exits 0
        #[arg(long, conflicts_with_all = ["container", "ttl"])]
        ephemeral: bool,
        /// Append a sequence number to the name
        #[arg(long, conflicts_with = "container")]
        sequential: bool,
        /// A container node: the server deletes it once its last child is gone
        #[arg(long, conflicts_with = "ttl")]
        container: bool,
        /// A node the server deletes once unmodified and childless for DURATION (needs
        /// extendedTypesEnabled=true on the server)
        #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
        ttl: Option<Duration>,
        /// Create missing parents (as empty persistent nodes)
        #[arg(long)]
        parents: bool,
    },

    /// Delete a node
    #[command(
        after_long_help = "Examples:\n  zk delete /app/config\n  zk delete /app/config --version 4\n  zk delete /app --recursive"
    )]
    Delete {
        /// The node
        #[arg(value_parser = parse_path)]
        path: String,
        /// Only if the node's data version is N (else: version mismatch, exit 1)
        #[arg(long, value_name = "N", conflicts_with = "recursive")]
        version: Option<i32>,
        /// Delete its children, and theirs, first
        #[arg(long)]
        recursive: bool,
    },

    /// List a node's children, one name per line, sorted
    #[command(after_long_help = "Examples:\n  zk ls /app")]
    Ls {
        /// The node
        #[arg(value_parser = parse_path)]
        path: String,
        #[command(flatten)]
        output: OutputArg,
    },

    /// Print a node's Stat fields, one `name: value` per line
    #[command(after_long_help = "Examples:\n  zk stat /app/config")]
    Stat {
        /// The node
        #[arg(value_parser = parse_path)]
        path: String,
        #[command(flatten)]
        output: OutputArg,
    },

    /// Print a node and everything below it as an indented tree
    #[command(after_long_help = "Examples:\n  zk tree /app")]
    Tree {
        /// The node
        #[arg(value_parser = parse_path)]
        path: String,
        #[command(flatten)]
        output: OutputArg,
    },

    /// Print one line per change of a node (or its subtree), as it happens
    ///
    /// Keeps a persistent watch on PATH and prints `<EventType> <path>` per event on stdout,
    /// flushed at once; EventType is NodeCreated, NodeDeleted, NodeDataChanged or
    /// NodeChildrenChanged. The path need not exist yet. Connection state changes go to stderr
    /// as `state CONNECTED|SUSPENDED|LOST` (`state CONNECTED` is printed once the watch is
    /// armed, at start and after each reconnect). The watch survives reconnects, server
    /// restarts, failover to another server and session loss (it is set again on the new
    /// session). Exits 0 after --count events, or on SIGINT / SIGTERM.
    #[command(
        after_long_help = "Examples:\n  zk watch /app/config\n  zk watch /services --children\n  zk watch /app --recursive --count 1"
    )]
    Watch {
        /// The node to watch
        #[arg(value_parser = parse_path)]
        path: String,
        /// Also print NodeChildrenChanged events (a child of PATH created or deleted)
        #[arg(long, conflicts_with = "recursive")]
        children: bool,
        /// Watch PATH and its whole subtree (created, deleted, data changed)
        #[arg(long)]
        recursive: bool,
        /// Exit 0 after N events
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        #[command(flatten)]
        output: OutputArg,
    },

    /// Print a node's ACL, one `scheme:id:perms` per line (zkCli's notation)
    #[command(
        after_long_help = "Examples:\n  zk getacl /app/config\n  zk getacl /app/config -o json"
    )]
    Getacl {
        /// The node
        #[arg(value_parser = parse_path)]
        path: String,
        #[command(flatten)]
        output: OutputArg,
    },

    /// Set a node's ACL: entries `scheme:id:perms` separated by commas
    ///
    /// Schemes as ZooKeeper has them: `world:anyone:PERMS`, `digest:USER:HASH:PERMS` (HASH is
    /// base64(sha1(USER:PASSWORD))), `ip:ADDRESS[/BITS]:PERMS`, `auth::PERMS` (every identity the
    /// session has added with --auth). PERMS is a subset of `cdrwa`: create, delete, read,
    /// write, admin.
    #[command(
        after_long_help = "Examples:\n  zk setacl /app/config world:anyone:r,digest:alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=:cdrwa\n  zk --auth digest:alice:secret setacl /app/config auth::cdrwa\n  zk setacl /app/config ip:10.0.0.0/8:cdrwa --version 0"
    )]
    Setacl {
        /// The node
        #[arg(value_parser = parse_path)]
        path: String,
        /// The ACL, `scheme:id:perms[,scheme:id:perms...]`
        #[arg(value_parser = parse_acl_arg, value_name = "ACL")]
        acl: AclArg,
        /// Only if the node's ACL version is N (else: version mismatch, exit 1)
        #[arg(long, value_name = "N")]
        version: Option<i32>,
    },

    /// Print the identities the server gives this session (`scheme: user` per line)
    #[command(
        after_long_help = "Examples:\n  zk whoami\n  zk --auth digest:alice:secret whoami -o json"
    )]
    Whoami {
        #[command(flatten)]
        output: OutputArg,
    },

    /// Wait until the connected server has caught up with the leader on PATH
    #[command(after_long_help = "Examples:\n  zk sync /app && zk get /app/config")]
    Sync {
        /// The node
        #[arg(value_parser = parse_path)]
        path: String,
    },

    /// List the ephemeral nodes at and below PATH (default `/`) with their owner session
    ///
    /// One `path 0xSESSION` per line, sorted; --owner keeps one session's. Unlike zkCli's
    /// getEphemerals (the calling session's own nodes: a zk command's session owns none), it
    /// walks the subtree, one request or two per node.
    #[command(
        after_long_help = "Examples:\n  zk ephemerals /services\n  zk ephemerals / --owner 0x1000a2b3c4d0000"
    )]
    Ephemerals {
        /// Where to look
        #[arg(value_parser = parse_path, default_value = "/")]
        path: String,
        /// Only the nodes of this session (hex with 0x, as `zk stat` prints ephemeralOwner, or
        /// decimal)
        #[arg(long, value_name = "SESSION", value_parser = parse_session_id)]
        owner: Option<i64>,
        #[command(flatten)]
        output: OutputArg,
    },

    /// Print how many nodes there are below PATH (all descendants, not only children)
    #[command(after_long_help = "Examples:\n  zk count /app")]
    Count {
        /// The node
        #[arg(value_parser = parse_path)]
        path: String,
        #[command(flatten)]
        output: OutputArg,
    },

    /// Print each server's `srvr` four-letter word answer (version, mode, counts)
    ///
    /// Asks every host of --hosts over a plain TCP connection; the word must be on the
    /// servers' `4lw.commands.whitelist`. Exit 1 if any host did not answer.
    #[command(after_long_help = "Examples:\n  zk srvr --hosts zk1:2181,zk2:2181,zk3:2181")]
    Srvr {
        #[command(flatten)]
        output: OutputArg,
    },

    /// Print each server's state from the `mntr` four-letter word: mode, version, counts
    ///
    /// One line per host of --hosts, `host:port mode ...`; with -o json every `mntr` value.
    /// Asks over a plain TCP connection; `mntr` must be on the servers'
    /// `4lw.commands.whitelist`. Exit 1 if any host did not answer.
    #[command(after_long_help = "Examples:\n  zk status --hosts zk1:2181,zk2:2181,zk3:2181")]
    Status {
        #[command(flatten)]
        output: OutputArg,
    },

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(
        after_long_help = "Examples:\n  zk completions bash > /etc/bash_completion.d/zk\n  zk completions zsh > \"${fpath[1]}/_zk\"\n  zk completions fish > ~/.config/fish/completions/zk.fish"
    )]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Run CMD while holding a lock (exclusive; shared with --read)
    ///
    /// Exclusive holders exclude each other and readers; readers (--read) only exclude
    /// exclusive holders. With --layout kazoo (the default) the lock is kazoo's: kazoo's Lock /
    /// WriteLock / ReadLock on the same path take part in the same queue, and --write is the
    /// same as a plain lock. With --layout curator it is Curator's: a plain lock is an
    /// InterProcessMutex, --read and --write the two sides of an InterProcessReadWriteLock
    /// (Curator's readers are blocked by --write holders only, not by a plain lock).
    #[command(
        after_long_help = "Examples:\n  zk lock /locks/nightly-report --timeout 10s -- ./report.sh\n  zk lock /locks/db --read -- pg_dump mydb\n  zk lock /locks/db --write --layout curator -- ./migrate.sh"
    )]
    Lock {
        /// The lock's path
        #[arg(value_parser = parse_path)]
        path: String,
        /// Take the lock shared (a read lock)
        #[arg(long, conflicts_with = "write")]
        read: bool,
        /// Take the writer side of a read/write lock (with --layout kazoo, a plain lock)
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        held: HeldArgs,
        /// The program and its arguments (after --)
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<OsString>,
    },

    /// Run CMD while holding one of N leases of a semaphore
    ///
    /// kazoo's Semaphore layout: kazoo processes with the same path and --max share it. With
    /// --layout curator, Curator's InterProcessSemaphoreV2 (PATH/locks, PATH/leases; the
    /// maximum is not stored, every user must pass the same --max); ZK_NODE is the lease node.
    #[command(
        after_long_help = "Examples:\n  zk semaphore /limits/db-migrations --max 2 -- ./migrate.sh"
    )]
    Semaphore {
        /// The semaphore's path (with --layout kazoo, its data is the maximum)
        #[arg(value_parser = parse_path)]
        path: String,
        /// How many holders at once (all users of PATH must agree)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        max: u32,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        held: HeldArgs,
        /// The program and its arguments (after --)
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<OsString>,
    },

    /// Run CMD while leader of an election
    ///
    /// Waits until this candidate leads (kazoo's Election layout; with --layout curator,
    /// Curator's LeaderLatch), runs CMD, and resigns when CMD exits. If leadership is lost while CMD runs, CMD is stopped (exit 74), so two
    /// leaders never run at once as far as a client can know.
    #[command(
        after_long_help = "Examples:\n  zk elect /election/scheduler -- ./scheduler --serve\n  while true; do zk elect /election/scheduler -- ./scheduler --serve; sleep 1; done"
    )]
    Elect {
        /// The election's path
        #[arg(value_parser = parse_path)]
        path: String,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        held: HeldArgs,
        /// The program and its arguments (after --)
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<OsString>,
    },

    /// Enter a double barrier, run CMD, leave it
    ///
    /// Waits until --count participants have entered PATH (kazoo's DoubleBarrier layout), runs
    /// CMD, then leaves and waits until every participant has left. --timeout bounds the
    /// entering only. If leaving fails after CMD succeeded, the exit status is 1.
    #[command(
        after_long_help = "Examples:\n  zk double-barrier /batch/2024-06-01 --count 4 -- ./stage.sh"
    )]
    DoubleBarrier {
        /// The barrier's path
        #[arg(value_parser = parse_path)]
        path: String,
        /// How many participants to wait for
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
        #[command(flatten)]
        run: RunArgs,
        /// The program and its arguments (after --)
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<OsString>,
    },

    /// Put a barrier up, take it down, or wait until it is down
    ///
    /// kazoo's Barrier: the barrier is up while the node PATH exists.
    #[command(
        after_long_help = "Examples:\n  zk barrier create /deploy/gate\n  zk barrier wait /deploy/gate --timeout 5m && ./start.sh\n  zk barrier remove /deploy/gate\n\nExit status: 0 on success, 75 when --timeout passed, 1 on failure, 2 for usage errors."
    )]
    Barrier {
        /// create, remove or wait
        #[command(subcommand)]
        action: BarrierAction,
    },

    /// Show what zk does, in under a minute, as a timeline
    ///
    /// Several workers contending for a lock, an election with a leader hand-over, and a
    /// double barrier, each a real `zk` process. With no --hosts (nor ZK_HOSTS) it starts an
    /// in-process zk-server (a ZooKeeper-compatible server; no Java needed) and stops it at the
    /// end; --real-zookeeper starts Debian's ZooKeeper 3.8 instead (when zk is built with the
    /// `real-zookeeper` feature). Works under `/zk-demo-<pid>`, deleted at the end. Needs the
    /// `demo` feature (on by default).
    #[cfg(feature = "demo")]
    #[command(
        after_long_help = "Examples:\n  zk demo\n  zk demo --hosts 10.0.0.1:2181\n  zk demo --real-zookeeper --install"
    )]
    Demo {
        /// Start Debian's ZooKeeper 3.8 (needs Java and zk's `real-zookeeper` feature) instead
        /// of the in-process zk-server; says how to install ZooKeeper when it is missing
        #[arg(long)]
        real_zookeeper: bool,
        /// With --real-zookeeper: install missing packages (Debian's zookeeper and a Java
        /// runtime, with apt-get, through sudo when not root) instead of only saying how
        #[arg(long, requires = "real_zookeeper")]
        install: bool,
    },
}

/// The options of `zk barrier`.
#[derive(Debug, Subcommand)]
pub enum BarrierAction {
    /// Put the barrier up: create PATH (and its parents); fine if it exists
    Create {
        /// The barrier's path
        #[arg(value_parser = parse_path)]
        path: String,
        /// Give up after DURATION (exit 75)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
    /// Take the barrier down: delete PATH; fine if it is already down
    Remove {
        /// The barrier's path
        #[arg(value_parser = parse_path)]
        path: String,
        /// Give up after DURATION (exit 75)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
    /// Wait until the barrier is down (PATH does not exist)
    Wait {
        /// The barrier's path
        #[arg(value_parser = parse_path)]
        path: String,
        /// Give up after DURATION (exit 75)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
}

/// Options of every command that runs a program.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Give up (exit 75, CMD never started) if not obtained within DURATION; with 0, a lock,
    /// lease or leadership is taken only if it is free now
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Identifier stored as our node's data (others see it as the holder, candidate or
    /// participant); default: `<hostname>-<pid>`
    #[arg(long, value_name = "IDENTIFIER")]
    pub id: Option<String>,
}

impl RunArgs {
    /// `--id`, or `<hostname>-<pid>`.
    pub fn identifier(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!("{}-{}", hostname(), std::process::id()),
        }
    }
}

/// Options of the commands whose hold can be lost while CMD runs.
#[derive(Debug, Clone, Args)]
pub struct HeldArgs {
    /// When lost, CMD gets SIGTERM at once and SIGKILL after DURATION
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub kill_after: Duration,
    /// What counts as lost: a suspended connection (the safe default) or only a lost session
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = LostOn::Suspended)]
    pub lost_on: LostOn,
    /// Whose node layout to use, to share PATH with kazoo or with Apache Curator processes
    #[arg(long, value_name = "LAYOUT", value_enum, default_value_t = LayoutArg::Kazoo)]
    pub layout: LayoutArg,
}

/// The clap command: the derived one, with the exit-status text appended to the long help of
/// the commands that run a program.
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    for (name, footer) in [
        ("lock", EXIT_STATUS_HELD),
        ("semaphore", EXIT_STATUS_HELD),
        ("elect", EXIT_STATUS_HELD),
        ("double-barrier", EXIT_STATUS_BARRIER),
    ] {
        cmd = cmd.mut_subcommand(name, |sc| {
            let examples = sc
                .get_after_long_help()
                .map(|s| s.to_string())
                .unwrap_or_default();
            sc.after_long_help(format!("{examples}\n\n{footer}"))
        });
    }
    cmd
}
