//! Spawning JVMs that die with the test process.
//!
//! Children are started with `prctl(PR_SET_PDEATHSIG, SIGKILL)`. Linux delivers that signal when
//! the *thread* that forked the child exits, not the process — and the test harness runs every
//! test in its own short-lived thread. So all children are forked by one dedicated thread that
//! never exits: it receives `Command`s over a channel and sends back the `Child`. The signal then
//! fires exactly when the whole test process goes away (normal exit, panic, abort, SIGKILL).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::OnceLock;

type Job = (Command, mpsc::Sender<io::Result<Child>>);

static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

fn spawner() -> io::Result<&'static mpsc::Sender<Job>> {
    if let Some(tx) = SPAWNER.get() {
        return Ok(tx);
    }
    let (tx, rx) = mpsc::channel::<Job>();
    let mut started = false;
    let tx = SPAWNER.get_or_init(|| {
        started = true;
        tx
    });
    if started {
        std::thread::Builder::new()
            .name("zk-testkit-spawner".into())
            .spawn(move || {
                // The sender lives in a static and is never dropped: this loop never ends, and
                // the thread lives as long as the process.
                while let Ok((mut command, reply)) = rx.recv() {
                    let _ = reply.send(command.spawn());
                }
            })?;
    }
    Ok(tx)
}

/// Spawns `command` from the spawner thread, with `PR_SET_PDEATHSIG = SIGKILL`.
pub(crate) fn spawn(mut command: Command) -> io::Result<Child> {
    // SAFETY: getpid is async-signal-safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (prctl, getppid); it does not allocate.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()?
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("the zk-testkit spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the zk-testkit spawner thread is gone"))?
}
