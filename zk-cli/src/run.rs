//! Running a program under coordination: `zk lock`, `zk semaphore`, `zk elect`,
//! `zk double-barrier`.
//!
//! One flow for all: catch SIGINT / SIGTERM, connect, obtain (bounded by `--timeout`; a signal
//! gives up), spawn CMD with `ZK_NODE`, then wait for whichever comes first: CMD exits, a signal
//! (passed on to CMD), or the loss of what we hold (CMD gets SIGTERM, then SIGKILL after
//! `--kill-after`). Finally release (or leave the barrier) and close the session: closing
//! deletes every ephemeral node of ours, whatever was interrupted.

use crate::cli::Global;
use crate::duration::human;
use crate::error::{Failure, EXIT_FAILURE, EXIT_LOST};
use crate::session::{close, connect};
use crate::signals::{self, Signals};
use std::ffi::OsString;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::Child;
use tracing::info;
use zk_core::{Client, Error};
use zk_recipes::barrier::DoubleBarrier;
use zk_recipes::{
    Election, Guard, Layout, Lock, LostPolicy, LostSignal, ReadLock, Semaphore, WriteLock,
};

/// Which coordination.
#[derive(Debug, Clone, Copy)]
pub enum Recipe {
    /// `zk lock` (`--read`, `--write`).
    Lock {
        /// Which side.
        side: LockSide,
    },
    /// `zk semaphore --max N`.
    Semaphore {
        /// --max
        max: u32,
    },
    /// `zk elect`.
    Elect,
    /// `zk double-barrier --count N`.
    DoubleBarrier {
        /// --count
        count: u32,
    },
}

/// Which lock `zk lock` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockSide {
    /// A plain lock (Curator: an `InterProcessMutex`).
    Exclusive,
    /// `--read`: the reader side of a read/write lock.
    Read,
    /// `--write`: the writer side of a read/write lock (kazoo: the same as a plain lock).
    Write,
}

/// Everything a run needs.
#[derive(Debug)]
pub struct RunSpec {
    /// Which coordination.
    pub recipe: Recipe,
    /// Its path.
    pub path: String,
    /// --timeout
    pub timeout: Option<Duration>,
    /// --id, or its default.
    pub id: String,
    /// --kill-after
    pub kill_after: Duration,
    /// --lost-on
    pub lost_on: LostPolicy,
    /// --layout
    pub layout: Layout,
    /// CMD and its arguments.
    pub cmd: Vec<OsString>,
}

impl RunSpec {
    /// What we obtain, for messages: "the lock on /p".
    fn thing(&self) -> String {
        let p = &self.path;
        match self.recipe {
            Recipe::Lock {
                side: LockSide::Exclusive,
            } => format!("the lock on {p}"),
            Recipe::Lock {
                side: LockSide::Read,
            } => format!("the read lock on {p}"),
            Recipe::Lock {
                side: LockSide::Write,
            } => format!("the write lock on {p}"),
            Recipe::Semaphore { max } => format!("a lease of the semaphore {p} (max {max})"),
            Recipe::Elect => format!("leadership of {p}"),
            Recipe::DoubleBarrier { count } => {
                format!("{count} participants in the double barrier {p}")
            }
        }
    }

    /// The command name, for messages.
    fn verb(&self) -> &'static str {
        match self.recipe {
            Recipe::Lock { .. } => "lock",
            Recipe::Semaphore { .. } => "semaphore",
            Recipe::Elect => "elect",
            Recipe::DoubleBarrier { .. } => "double-barrier",
        }
    }
}

/// What we hold while CMD runs.
enum Held {
    Guard(Guard),
    Barrier(DoubleBarrier),
}

impl Held {
    fn node(&self) -> String {
        match self {
            Held::Guard(g) => g.path().to_owned(),
            Held::Barrier(b) => b.node_path().unwrap_or_default(),
        }
    }

    fn lost_signal(&self) -> Option<LostSignal> {
        match self {
            Held::Guard(g) => Some(g.lost_signal()),
            Held::Barrier(_) => None,
        }
    }
}

/// Runs CMD under `spec`; the exit status (or why not).
pub async fn run(g: &Global, spec: RunSpec) -> Result<i32, Failure> {
    // from here on, SIGINT / SIGTERM no longer end zk by themselves
    let mut signals = Signals::new()?;
    let client = tokio::select! {
        c = connect(g) => c?,
        sig = signals.recv() => return Err(Failure::Status(128 + sig, format!(
            "{}: got {} while connecting; CMD was not started", spec.verb(), signals::name(sig)
        ))),
    };
    let res = run_connected(&client, spec.id.clone(), &spec, &mut signals).await;
    close(&client).await;
    res
}

async fn run_connected(
    client: &Client,
    id: String,
    spec: &RunSpec,
    signals: &mut Signals,
) -> Result<i32, Failure> {
    let held = tokio::select! {
        h = obtain(client, id, spec) => h?,
        sig = signals.recv() => {
            // dropping the acquisition cleans up; closing the session makes sure
            return Err(Failure::Status(128 + sig, format!(
                "{}: got {} while waiting for {}; gave up, CMD was not started",
                spec.verb(), signals::name(sig), spec.thing()
            )));
        }
    };
    let Some(held) = held else {
        let t = spec.timeout.map(human).unwrap_or_default();
        return Err(Failure::Timeout(format!(
            "{}: timed out after {t} waiting for {}; CMD was not started",
            spec.verb(),
            spec.thing()
        )));
    };
    let node = held.node();
    info!("obtained {} (node {node}); starting CMD", spec.thing());
    let lost_already = held.lost_signal().and_then(|l| l.reason());
    let outcome = match lost_already {
        // lost between obtaining and now: do not start CMD without it
        Some(reason) => Err(Failure::Lost(format!(
            "lost {} before CMD started: {reason}; CMD was not started",
            spec.thing()
        ))),
        None => match spawn(&spec.cmd, &node) {
            Ok(child) => supervise(child, held.lost_signal(), signals, spec).await,
            Err(f) => Err(f),
        },
    };
    let session_timeout = client.status().session_timeout;
    let done = match held {
        Held::Guard(guard) => {
            // bounded: after a suspension the session may come back (then the delete works), or
            // expire (then the node is gone anyway)
            let bound = session_timeout + Duration::from_secs(2);
            match tokio::time::timeout(bound, guard.release()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "releasing {node}");
                    Ok(())
                }
                Err(_) => {
                    tracing::warn!("releasing {node} timed out; it goes when the session does");
                    Ok(())
                }
            }
        }
        Held::Barrier(mut barrier) => {
            if outcome.is_err() {
                // CMD could not run: nothing to finish together; our node goes with the session
                Ok(())
            } else {
                leave(&mut barrier, signals, spec).await
            }
        }
    };
    let status = outcome?;
    match done {
        Ok(()) => Ok(status),
        // CMD failed: its status says more than our failure to leave
        Err(f) if status != 0 => {
            eprintln!("zk: {}", f.message());
            Ok(status)
        }
        Err(f) => Err(f),
    }
}

async fn leave(
    barrier: &mut DoubleBarrier,
    signals: &mut Signals,
    spec: &RunSpec,
) -> Result<(), Failure> {
    info!("leaving the double barrier {}", spec.path);
    tokio::select! {
        r = barrier.leave() => match r {
            Ok(_) => Ok(()),
            Err(e) => Err(Failure::zk(&format!("double-barrier {}: leave", spec.path), e)),
        },
        sig = signals.recv() => Err(Failure::Status(128 + sig, format!(
            "double-barrier {}: got {} while waiting for the others to leave; left without them",
            spec.path, signals::name(sig)
        ))),
    }
}

/// Obtains what `spec` asks for; `None` when `--timeout` passed first. A lock, lease or
/// leadership with `--timeout 0` is taken only if it is free now (flock's `-w 0`): a zero
/// deadline would pass before the first round trip and never obtain anything.
async fn obtain(client: &Client, id: String, spec: &RunSpec) -> Result<Option<Held>, Failure> {
    let p = &spec.path;
    let t = spec.timeout;
    let what = || format!("{} {p}", spec.verb());
    let guard = |r: zk_core::Result<Option<Guard>>| match r {
        Ok(g) => Ok(g.map(Held::Guard)),
        Err(Error::InvalidArgument(m)) => Err(Failure::Failed(format!("{}: {m}", what()))),
        Err(e) => Err(Failure::zk(&what(), e)),
    };
    match spec.recipe {
        Recipe::Lock { side } => {
            let lock = match side {
                LockSide::Exclusive => Lock::new(client, p, id),
                LockSide::Read => (*ReadLock::new(client, p, id)).clone(),
                LockSide::Write => (*WriteLock::new(client, p, id)).clone(),
            }
            .layout(spec.layout)
            .lost_policy(spec.lost_on);
            guard(match t {
                Some(t) if t.is_zero() => lock.try_acquire().await,
                Some(t) => lock.acquire_timeout(t).await,
                None => lock.acquire().await.map(Some),
            })
        }
        Recipe::Semaphore { max } => {
            let sem = Semaphore::new(client, p, id, max)
                .map_err(|e| Failure::zk(&what(), e))?
                .layout(spec.layout)
                .lost_policy(spec.lost_on);
            guard(match t {
                Some(t) if t.is_zero() => sem.try_acquire().await,
                Some(t) => sem.acquire_timeout(t).await,
                None => sem.acquire().await.map(Some),
            })
        }
        Recipe::Elect => {
            let election = Election::new(client, p, id)
                .layout(spec.layout)
                .lost_policy(spec.lost_on);
            guard(match t {
                Some(t) if t.is_zero() => election.try_acquire().await,
                Some(t) => election.acquire_timeout(t).await,
                None => election.acquire().await.map(Some),
            })
        }
        Recipe::DoubleBarrier { count } => {
            let mut b = DoubleBarrier::new(client, p, count as usize, id)
                .map_err(|e| Failure::zk(&what(), e))?;
            let entered = match t {
                Some(t) => b.enter_timeout(t).await,
                None => b.enter().await.map(Some),
            };
            match entered {
                Ok(Some(())) => Ok(Some(Held::Barrier(b))),
                Ok(None) => Ok(None),
                Err(e) => Err(Failure::zk(&what(), e)),
            }
        }
    }
}

/// CMD, running.
///
/// When none of zk's stdin, stdout and stderr is a terminal (cron, systemd, scripts), CMD gets a
/// process group of its own and signals go to the whole group: `sh -c 'a; b'` is stopped with
/// its children. With a terminal CMD stays in zk's process group (so that it can read the
/// terminal); signals then reach CMD itself only.
struct Cmd {
    child: Child,
    pid: u32,
    group: bool,
}

impl Cmd {
    /// Sends `sig` to CMD (its group, if it has one).
    fn signal(&self, sig: i32) {
        if self.group {
            // SAFETY: plain syscall. The group id is CMD's pid, which cannot be reused while
            // the group has members (or while we have not reaped CMD).
            unsafe {
                libc::kill(-(self.pid as libc::pid_t), sig);
            }
        } else if self.child.id().is_some() {
            // SAFETY: plain syscall on our own child, not yet reaped.
            unsafe {
                libc::kill(self.pid as libc::pid_t, sig);
            }
        }
    }

    /// Whether a process of CMD's group is still there (after CMD itself exited).
    fn group_alive(&self) -> bool {
        // SAFETY: signal 0 only checks.
        self.group && unsafe { libc::kill(-(self.pid as libc::pid_t), 0) } == 0
    }
}

fn any_terminal() -> bool {
    // SAFETY: plain syscalls on our standard descriptors.
    unsafe { libc::isatty(0) == 1 || libc::isatty(1) == 1 || libc::isatty(2) == 1 }
}

/// Starts CMD with inherited stdio and `ZK_NODE`. On Linux CMD gets SIGTERM if zk dies without
/// a chance to stop it (SIGKILL), since what zk held is gone then.
fn spawn(cmd: &[OsString], node: &str) -> Result<Cmd, Failure> {
    let mut c = tokio::process::Command::new(&cmd[0]);
    c.args(&cmd[1..]).env("ZK_NODE", node).kill_on_drop(false);
    let group = !any_terminal();
    // SAFETY: getpid is a plain syscall.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure only makes async-signal-safe calls (setpgid, prctl, getppid, kill,
    // getpid) between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if group && libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // zk died between fork and prctl: do not run without it
                if libc::getppid() != parent {
                    libc::kill(libc::getpid(), libc::SIGTERM);
                }
            }
            let _ = parent;
            Ok(())
        });
    }
    let child = c.spawn().map_err(|e| {
        let name = cmd[0].to_string_lossy();
        let code = match e.kind() {
            std::io::ErrorKind::NotFound => 127,
            _ => 126,
        };
        Failure::Status(code, format!("cannot run {name}: {e}"))
    })?;
    let pid = child.id().unwrap_or(0);
    if group {
        // also from this side, so that no signal can reach the group before it exists (fails
        // harmlessly once CMD has exec'd: it did it itself then)
        // SAFETY: plain syscall on our child.
        unsafe {
            libc::setpgid(pid as libc::pid_t, pid as libc::pid_t);
        }
    }
    Ok(Cmd { child, pid, group })
}

/// The exit status as a shell reports it: the code, or 128 + the signal that killed it.
pub fn status_code(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => EXIT_FAILURE,
    }
}

async fn lost_of(l: &Option<LostSignal>) -> zk_recipes::LostReason {
    match l {
        Some(l) => l.lost().await,
        None => std::future::pending().await,
    }
}

/// Waits for CMD, passing signals on and stopping it if what we hold is lost.
async fn supervise(
    mut cmd: Cmd,
    lost: Option<LostSignal>,
    signals: &mut Signals,
    spec: &RunSpec,
) -> Result<i32, Failure> {
    let pid = cmd.pid;
    info!(pid, group = cmd.group, "CMD started");
    loop {
        tokio::select! {
            biased;
            reason = lost_of(&lost) => {
                eprintln!(
                    "zk: lost {}: {reason}; stopping CMD (pid {pid}): SIGTERM now, SIGKILL after {}",
                    spec.thing(),
                    human(spec.kill_after)
                );
                stop_after_loss(&mut cmd, spec.kill_after).await;
                return Err(Failure::Status(EXIT_LOST, String::new()));
            }
            st = cmd.child.wait() => {
                let st = st.map_err(|e| Failure::Failed(format!("waiting for CMD: {e}")))?;
                info!(status = status_code(st), "CMD exited");
                return Ok(status_code(st));
            }
            sig = signals.recv() => {
                info!("passing {} on to CMD (pid {pid})", signals::name(sig));
                cmd.signal(sig);
            }
        }
    }
}

/// SIGTERM to CMD (and its group) now; SIGKILL to whatever of it is left after `kill_after`.
async fn stop_after_loss(cmd: &mut Cmd, kill_after: Duration) {
    let pid = cmd.pid;
    let deadline = tokio::time::Instant::now() + kill_after;
    cmd.signal(libc::SIGTERM);
    let exited = tokio::time::timeout_at(deadline, cmd.child.wait()).await;
    if let Ok(Ok(st)) = &exited {
        info!(status = status_code(*st), "CMD ended after the loss");
        // the rest of its group gets the same time
        while cmd.group_alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !cmd.group_alive() {
            return;
        }
    }
    eprintln!(
        "zk: CMD (pid {pid}) still running {} after SIGTERM; sending SIGKILL",
        human(kill_after)
    );
    cmd.signal(libc::SIGKILL);
    if exited.is_err() {
        let _ = cmd.child.wait().await;
    }
}
