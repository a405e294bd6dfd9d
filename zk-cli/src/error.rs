//! How a command ends: an exit status, and a one-line reason on stderr for failures.

use zk_core::Error;

/// Exit status: other failures (cannot connect, server error).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status: usage errors.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: the lock / lease / leadership was lost while CMD ran.
pub const EXIT_LOST: i32 = 74;
/// Exit status: `--timeout` passed before it was obtained.
pub const EXIT_TIMEOUT: i32 = 75;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// A usage error found after parsing (exit 2).
    Usage(String),
    /// `--timeout` passed (exit 75).
    Timeout(String),
    /// What we held was lost (exit 74).
    Lost(String),
    /// Anything else (exit 1).
    Failed(String),
    /// Exit with this status, with this message if it is not empty (e.g. stdout was closed:
    /// 141, quietly).
    Status(i32, String),
}

impl Failure {
    /// The exit status.
    pub fn code(&self) -> i32 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Timeout(_) => EXIT_TIMEOUT,
            Failure::Lost(_) => EXIT_LOST,
            Failure::Failed(_) => EXIT_FAILURE,
            Failure::Status(c, _) => *c,
        }
    }

    /// The one-line reason.
    pub fn message(&self) -> &str {
        match self {
            Failure::Usage(m)
            | Failure::Timeout(m)
            | Failure::Lost(m)
            | Failure::Failed(m)
            | Failure::Status(_, m) => m,
        }
    }

    /// A ZooKeeper error while doing `what` (e.g. `get /app`): a readable reason, with a hint
    /// where one helps. Errors that are the caller's fault before anything was sent (a bad path)
    /// are usage errors.
    pub fn zk(what: &str, e: Error) -> Failure {
        let reason = match &e {
            Error::NoNode => "node does not exist".to_owned(),
            Error::NodeExists => "node already exists".to_owned(),
            Error::BadVersion => {
                "version mismatch (the node's version is not the one given with --version)"
                    .to_owned()
            }
            Error::NotEmpty => "node has children (use --recursive to delete them too)".to_owned(),
            Error::NoAuth => {
                "not authorized (add credentials with --auth scheme:credential)".to_owned()
            }
            Error::AuthFailed => "authentication failed (check --auth / --sasl)".to_owned(),
            Error::NoChildrenForEphemerals => "ephemeral nodes cannot have children".to_owned(),
            Error::Unimplemented => {
                "the server does not support this (TTL nodes need extendedTypesEnabled=true)"
                    .to_owned()
            }
            Error::ConnectFailed { message, .. } => format!("cannot connect: {message}"),
            Error::TransactionFailed { error, .. } => return Failure::zk(what, (**error).clone()),
            other => other.to_string(),
        };
        let msg = format!("{what}: {reason}");
        match e {
            Error::BadPath(_) | Error::InvalidArgument(_) => Failure::Usage(msg),
            _ => Failure::Failed(msg),
        }
    }
}

/// Adds what was being done to a ZooKeeper result.
pub trait Context<T> {
    /// `Err(e)` becomes [`Failure::zk`]`(what, e)`.
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T> Context<T> for Result<T, Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::zk(&what(), e))
    }
}

/// Writes to stdout and flushes. A closed stdout (`zk ls / | head -1`) ends the command quietly
/// with 141, as a SIGPIPE would.
pub fn out(bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    match o.write_all(bytes).and_then(|_| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Status(141, String::new()))
        }
        Err(e) => Err(Failure::Failed(format!("cannot write to stdout: {e}"))),
    }
}
