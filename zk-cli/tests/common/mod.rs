//! Helpers for running the `zk` binary against real ZooKeeper servers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;
use zk_core::{Client, Error};

/// Every wait of these tests is bounded by this: a bug fails, it does not hang.
pub const BOUND: Duration = Duration::from_secs(60);

/// The binary under test.
pub const ZK: &str = env!("CARGO_BIN_EXE_zk");

/// The shared server's connect string.
pub fn hosts() -> String {
    zk_testkit::shared_server().connect_string()
}

/// A fresh path for one test.
pub fn unique(name: &str) -> String {
    format!("/cli-{name}-{}", uuid::Uuid::new_v4().simple())
}

/// A client for checking what zk did.
pub async fn client(hosts: &str) -> Client {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("test client connects")
}

/// `zk` with `args`, not inheriting the caller's ZK_HOSTS or RUST_LOG; `ZK` in its environment
/// (and so in CMD's) is the binary, for CMDs that call zk themselves.
pub fn zk(args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(ZK);
    c.args(args)
        .env_remove("ZK_HOSTS")
        .env_remove("RUST_LOG")
        .env("ZK", ZK)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// What a finished zk said.
#[derive(Debug)]
pub struct Output {
    /// Exit status (128 + signal if killed).
    pub code: i32,
    /// Raw stdout.
    pub stdout: Vec<u8>,
    /// Stderr.
    pub stderr: String,
}

impl Output {
    /// Stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

fn code_of(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// Runs zk to completion (bounded).
pub async fn run_cmd(mut c: tokio::process::Command) -> Output {
    let child = c.spawn().expect("spawn zk");
    let out = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .expect("zk still running after 60 s")
        .expect("wait for zk");
    Output {
        code: code_of(out.status),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `zk --hosts <hosts> args...` to completion (bounded).
pub async fn run(hosts: &str, args: &[&str]) -> Output {
    let mut all = vec!["--hosts", hosts];
    all.extend_from_slice(args);
    run_cmd(zk(&all)).await
}

/// A zk process still running, its output collected line by line.
pub struct Proc {
    child: tokio::process::Child,
    pid: u32,
    out: watch::Receiver<Vec<String>>,
    err: watch::Receiver<Vec<String>>,
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static) -> watch::Receiver<Vec<String>> {
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            tx.send_modify(|v| v.push(l));
        }
    });
    rx
}

impl Proc {
    /// Starts `c` (built with [`zk`]).
    pub fn spawn(mut c: tokio::process::Command) -> Proc {
        let mut child = c.spawn().expect("spawn zk");
        let pid = child.id().expect("pid");
        let out = collect(child.stdout.take().expect("piped stdout"));
        let err = collect(child.stderr.take().expect("piped stderr"));
        Proc {
            child,
            pid,
            out,
            err,
        }
    }

    /// Starts `zk --hosts <hosts> args...`.
    pub fn start(hosts: &str, args: &[&str]) -> Proc {
        let mut all = vec!["--hosts", hosts];
        all.extend_from_slice(args);
        Proc::spawn(zk(&all))
    }

    /// zk's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stdout lines so far.
    pub fn stdout(&self) -> Vec<String> {
        self.out.borrow().clone()
    }

    /// Stderr lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.err.borrow().clone()
    }

    fn dump(&self) -> String {
        format!("stdout: {:?}\nstderr: {:?}", self.stdout(), self.stderr())
    }

    async fn wait_in(
        &self,
        err: bool,
        what: &str,
        n: usize,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let mut rx = if err {
            self.err.clone()
        } else {
            self.out.clone()
        };
        let found = tokio::time::timeout(
            BOUND,
            rx.wait_for(|v| v.iter().filter(|l| pred(l)).count() >= n),
        )
        .await;
        match found {
            Ok(Ok(v)) => v
                .iter()
                .filter(|l| pred(l))
                .nth(n - 1)
                .cloned()
                .unwrap_or_default(),
            _ => panic!("no {what} (x{n}) within 60 s\n{}", self.dump()),
        }
    }

    /// Waits for a stdout line containing `s`.
    pub async fn wait_stdout(&self, s: &str) -> String {
        self.wait_in(false, &format!("stdout line with {s:?}"), 1, |l| {
            l.contains(s)
        })
        .await
    }

    /// Waits for the `n`th stderr line containing `s`.
    pub async fn wait_stderr_n(&self, s: &str, n: usize) -> String {
        self.wait_in(true, &format!("stderr line with {s:?}"), n, |l| {
            l.contains(s)
        })
        .await
    }

    /// Waits for the `n`th stderr line equal to `s`.
    pub async fn wait_stderr_line_n(&self, s: &str, n: usize) -> String {
        self.wait_in(true, &format!("stderr line {s:?}"), n, |l| l == s)
            .await
    }

    /// Waits for a stderr line containing `s`.
    pub async fn wait_stderr(&self, s: &str) -> String {
        self.wait_stderr_n(s, 1).await
    }

    /// Sends a signal to zk.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain syscall on our unreaped child.
        unsafe {
            libc::kill(self.pid as libc::pid_t, sig);
        }
    }

    /// Waits (bounded) for zk to exit; its status.
    pub async fn exit(&mut self) -> i32 {
        let st = tokio::time::timeout(BOUND, self.child.wait()).await;
        match st {
            Ok(Ok(st)) => {
                // let the readers drain (a CMD that outlived zk may hold the pipes: bounded)
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while self.out.has_changed().is_ok() || self.err.has_changed().is_ok() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
                .await;
                code_of(st)
            }
            _ => panic!("zk did not exit within 60 s\n{}", self.dump()),
        }
    }

    /// Whether zk has exited (without waiting).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

/// Children of `path`, sorted (empty if it does not exist).
pub async fn children(c: &Client, path: &str) -> Vec<String> {
    let mut v = match c.get_children(path).await {
        Ok(v) => v,
        Err(Error::NoNode) => Vec::new(),
        Err(e) => panic!("get_children {path}: {e}"),
    };
    v.sort();
    v
}

/// Polls `cond` until true, at most 60 s.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + BOUND;
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not true within 60 s");
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the field after the ")" of the command name
            let state = s
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .chars()
                .next();
            state != Some('Z')
        }
        Err(_) => false,
    }
}

/// A temporary directory for marker files.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// A new one.
    pub fn new() -> TempDir {
        TempDir(tempfile::tempdir().expect("tempdir"))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// A path inside, as a string.
    pub fn file(&self, name: &str) -> String {
        self.0.path().join(name).to_string_lossy().into_owned()
    }

    /// Whether `name` exists inside.
    pub fn has(&self, name: &str) -> bool {
        self.0.path().join(name).exists()
    }

    /// Creates `name` inside.
    pub fn touch(&self, name: &str) {
        std::fs::write(self.0.path().join(name), b"").expect("touch");
    }

    /// Path buffer.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// A shell snippet that waits (at most 60 s) until file `f` exists, then goes on; exits 1 if it
/// never does.
pub fn sh_wait_file(f: &str) -> String {
    format!("i=0; while [ ! -e '{f}' ]; do i=$((i+1)); [ $i -gt 600 ] && exit 1; sleep 0.1; done")
}

/// The session id and password zk wrote to its debug file (waits for the file, bounded).
pub async fn debug_session(file: &Path) -> (i64, Vec<u8>) {
    let mut text = String::new();
    eventually("the debug session file is written", || {
        let r = std::fs::read_to_string(file);
        let ok = matches!(&r, Ok(t) if t.ends_with('\n'));
        if let Ok(t) = r {
            text = t;
        }
        async move { ok }
    })
    .await;
    parse_session(&text)
}

/// Parses `<sid hex> <password hex>`.
pub fn parse_session(text: &str) -> (i64, Vec<u8>) {
    let mut parts = text.split_whitespace();
    let sid = u64::from_str_radix(parts.next().expect("sid"), 16).expect("hex sid") as i64;
    let pw_hex = parts.next().expect("password");
    let pw = (0..pw_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&pw_hex[i..i + 2], 16).expect("hex password"))
        .collect();
    (sid, pw)
}

/// The pid of zk's child running `comm` (bounded wait).
pub async fn eventually_child(parent: u32, comm: &str) -> u32 {
    let mut found = None;
    eventually(&format!("zk runs {comm}"), || {
        found = find_child(parent, comm);
        let ok = found.is_some();
        async move { ok }
    })
    .await;
    found.unwrap()
}

pub fn find_child(parent: u32, comm: &str) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map(|(_, n)| n).unwrap_or("");
        let ppid: Option<u32> = tail.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(parent) && name == comm {
            return Some(pid);
        }
    }
    None
}
