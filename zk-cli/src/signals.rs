//! SIGINT and SIGTERM, caught (once a command asks) so that zk can pass them on and clean up.

use crate::error::Failure;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGINT and SIGTERM as a stream. From its creation on, neither ends the process by itself.
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    /// Starts catching SIGINT and SIGTERM.
    pub fn new() -> Result<Signals, Failure> {
        let catch = |k: SignalKind| {
            signal(k).map_err(|e| Failure::Failed(format!("cannot catch signals: {e}")))
        };
        Ok(Signals {
            int: catch(SignalKind::interrupt())?,
            term: catch(SignalKind::terminate())?,
        })
    }

    /// The next signal's number.
    pub async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
        }
    }
}

/// The name of a signal, for messages.
pub fn name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        n => format!("signal {n}"),
    }
}
