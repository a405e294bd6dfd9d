//! `zk demo`: real `zk` processes contending for a lock, an election with leader hand-overs,
//! and a double barrier, printed as one timeline.

use crate::cli::Global;
use crate::error::Failure;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use zk_core::Client;
#[cfg(feature = "real-zookeeper")]
use zk_testkit::ZkServer;

/// The server the demo started itself, stopped at the end.
enum Local {
    /// zk-server, in this process (the default: no Java needed).
    Embedded(zk_server::Server),
    /// Debian's ZooKeeper 3.8 through zk-testkit (`--real-zookeeper`).
    #[cfg(feature = "real-zookeeper")]
    Real(Box<ZkServer>),
}

/// Prints lines with the time since the start.
struct Timeline(Instant);

impl Timeline {
    fn say(&self, what: impl std::fmt::Display) {
        println!("[{:>6.2}s] {what}", self.0.elapsed().as_secs_f64());
    }

    fn title(&self, what: &str) {
        println!();
        self.say(format!("== {what}"));
    }
}

/// One `zk` process of the demo, its output on the timeline under its name.
struct Actor {
    name: String,
    child: Child,
    pid: u32,
}

impl Actor {
    fn start(t: &Arc<Timeline>, hosts: &str, name: &str, args: &[&str]) -> Result<Actor, Failure> {
        let exe = std::env::current_exe()
            .map_err(|e| Failure::Failed(format!("demo: cannot find the zk binary: {e}")))?;
        // --id belongs to the recipe subcommand: after its name (args[0]), before `--`
        let (sub, rest) = args
            .split_first()
            .map_or((&[][..], args), |(s, r)| (std::slice::from_ref(s), r));
        let mut child = tokio::process::Command::new(exe)
            .arg("--hosts")
            .arg(hosts)
            .args(sub)
            .arg("--id")
            .arg(name)
            .args(rest)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::Failed(format!("demo: cannot start zk: {e}")))?;
        let pid = child.id().unwrap_or(0);
        for (stream, tag) in [
            (
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                "",
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                "(stderr) ",
            ),
        ] {
            let Some(stream) = stream else { continue };
            let t = t.clone();
            let name = name.to_owned();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    t.say(format!("  {name:<12}| {tag}{l}"));
                }
            });
        }
        Ok(Actor {
            name: name.to_owned(),
            child,
            pid,
        })
    }

    fn signal(&self, sig: i32) {
        if self.child.id().is_some() {
            // SAFETY: plain syscall on our own unreaped child.
            unsafe {
                libc::kill(self.pid as libc::pid_t, sig);
            }
        }
    }

    /// Waits (at most a minute) and says how it ended.
    async fn finish(mut self, t: &Timeline) -> i32 {
        let code = match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(Ok(st)) => crate::run::status_code(st),
            _ => {
                let _ = self.child.kill().await;
                -1
            }
        };
        let meaning = match code {
            0 => "",
            74 => " (lost what it held while CMD ran)",
            75 => " (timed out)",
            143 => " (SIGTERM: passed on to CMD, or gave up waiting)",
            -1 => " (did not end within a minute; killed)",
            _ => "",
        };
        t.say(format!(
            "  {:<12}| zk exited with status {code}{meaning}",
            self.name
        ));
        code
    }
}

/// Waits for all, each exit said when it happens.
async fn finish_all(t: &Timeline, actors: Vec<Actor>) {
    futures::future::join_all(actors.into_iter().map(|a| a.finish(t))).await;
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Waits until `path` has `n` children (at most 30 s).
async fn wait_children(c: &Client, path: &str, n: usize) {
    for _ in 0..300 {
        if c.get_children(path).await.map(|v| v.len()).unwrap_or(0) >= n {
            return;
        }
        sleep_ms(100).await;
    }
}

/// The identifiers of the contenders under `path`, in queue order.
async fn queue(c: &Client, path: &str) -> Vec<String> {
    let children = c.get_children(path).await.unwrap_or_default();
    let mut out = Vec::new();
    for n in zk_recipes::sorted_contenders(&children) {
        if let Ok((d, _)) = c.get_data(&format!("{path}/{}", n.name)).await {
            out.push(String::from_utf8_lossy(&d).into_owned());
        }
    }
    out
}

/// Runs the demo: on `--hosts`, else on a server it starts (zk-server in this process, or
/// with `real_zookeeper` Debian's ZooKeeper, installed first with `install`).
pub async fn demo(g: &Global, real_zookeeper: bool, install: bool) -> Result<i32, Failure> {
    let t = Arc::new(Timeline(Instant::now()));
    let mut local: Option<Local> = None;
    let hosts = match &g.hosts {
        Some(h) => {
            t.say(format!("using ZooKeeper at {h}"));
            h.clone()
        }
        None if real_zookeeper => {
            let (h, server) = start_real(&t, install).await?;
            local = Some(server);
            h
        }
        None => {
            t.say("no --hosts: starting a local server (zk-server, in this process; no Java needed)...");
            let server = zk_server::Server::start()
                .await
                .map_err(|e| Failure::Failed(format!("demo: cannot start zk-server: {e}")))?;
            let h = server.connect_string();
            t.say(format!("zk-server serving on {h}"));
            local = Some(Local::Embedded(server));
            h
        }
    };
    let admin = Client::builder(hosts.as_str())
        .session_timeout(g.session_timeout)
        .connect()
        .await
        .map_err(|e| Failure::zk(&format!("demo: connect to {hosts}"), e))?;
    let root = format!("/zk-demo-{}", std::process::id());
    admin
        .ensure_path(&root)
        .await
        .map_err(|e| Failure::zk(&format!("demo: create {root}"), e))?;
    t.say(format!(
        "working under {root}; every actor below is a separate `zk` process"
    ));

    let result = scenes(&t, &hosts, &root, &admin).await;

    let _ = admin.delete_recursive(&root).await;
    admin.close().await.ok();
    match local {
        Some(Local::Embedded(server)) => {
            t.say("stopping the local zk-server");
            server.stop().await;
        }
        #[cfg(feature = "real-zookeeper")]
        Some(Local::Real(server)) => {
            t.say("stopping the local ZooKeeper");
            let _ = tokio::task::spawn_blocking(move || drop(server)).await;
        }
        None => {}
    }
    result?;
    t.say("done");
    Ok(0)
}

async fn scenes(t: &Arc<Timeline>, hosts: &str, root: &str, admin: &Client) -> Result<(), Failure> {
    // ------------------------------------------------------------------ lock
    let lock = format!("{root}/lock");
    t.title("A lock: four workers, one critical section at a time");
    t.say(format!(
        "$ zk lock {lock} --id worker-N -- sh -c 'echo \"holds the lock...\"; sleep 0.5; echo done'"
    ));
    let cs = "echo \"holds the lock (node ...${ZK_NODE##*__}), working\"; sleep 0.5; echo \"done, releasing\"";
    let mut workers = Vec::new();
    for i in 1..=4 {
        let name = format!("worker-{i}");
        workers.push(Actor::start(
            t,
            hosts,
            &name,
            &["lock", &lock, "--", "sh", "-c", cs],
        )?);
    }
    wait_children(admin, &lock, 4).await;
    t.say(format!(
        "  queue on {lock}: {}",
        queue(admin, &lock).await.join(" <- ")
    ));
    finish_all(t, workers).await;

    // ------------------------------------------------------------------ election
    let election = format!("{root}/election");
    t.title("An election: the leader runs the service; hand-overs on SIGTERM and on loss");
    t.say(format!(
        "$ zk elect {election} --id candidate-N -- sh -c 'echo \"leading\"; exec sleep 30'"
    ));
    let lead = "echo \"I am the leader now, serving\"; exec sleep 30";
    let mut candidates = Vec::new();
    for i in 1..=3 {
        let name = format!("candidate-{i}");
        candidates.push(Actor::start(
            t,
            hosts,
            &name,
            &["elect", &election, "--", "sh", "-c", lead],
        )?);
        wait_children(admin, &election, i).await;
    }
    sleep_ms(800).await;
    t.say(format!(
        "  candidates in order: {}",
        queue(admin, &election).await.join(", ")
    ));
    let first = candidates.remove(0);
    t.say("  operator: SIGTERM to candidate-1's zk (it passes it to its service, then resigns)");
    first.signal(libc::SIGTERM);
    first.finish(t).await;
    sleep_ms(800).await;
    let children = admin.get_children(&election).await.unwrap_or_default();
    if let Some(leader) = zk_recipes::sorted_contenders(&children).first() {
        t.say("  operator: deletes the leader's node by hand (as a session expiry would)");
        let _ = admin
            .delete(&format!("{election}/{}", leader.name), None)
            .await;
    }
    let second = candidates.remove(0);
    second.finish(t).await;
    sleep_ms(800).await;
    t.say("  operator: SIGTERM to the last candidate");
    let last = candidates.remove(0);
    last.signal(libc::SIGTERM);
    last.finish(t).await;

    // ------------------------------------------------------------------ double barrier
    let batch = format!("{root}/batch");
    t.title("A double barrier: three stages start together and finish together");
    t.say(format!(
        "$ zk double-barrier {batch} --count 3 --id stage-N -- sh -c 'echo started; sleep S; echo finished'"
    ));
    let mut stages = Vec::new();
    for (i, secs) in [(1, "1.2"), (2, "0.2"), (3, "0.6")] {
        t.say(format!("  stage-{i} arrives (its work takes {secs}s)"));
        let body =
            format!("echo \"everyone is here: started\"; sleep {secs}; echo \"finished my part\"");
        stages.push(Actor::start(
            t,
            hosts,
            &format!("stage-{i}"),
            &[
                "double-barrier",
                &batch,
                "--count",
                "3",
                "--",
                "sh",
                "-c",
                &body,
            ],
        )?);
        if i < 3 {
            sleep_ms(700).await;
        }
    }
    finish_all(t, stages).await;
    println!();
    t.say(format!(
        "what is left under {root} (the demo deletes it next):"
    ));
    if let Ok(children) = admin.get_children(root).await {
        let mut children = children;
        children.sort();
        for c in children {
            let n = admin
                .get_children(&format!("{root}/{c}"))
                .await
                .map(|v| v.len())
                .unwrap_or(0);
            t.say(format!(
                "  {root}/{c} ({n} children: no contender node left behind)"
            ));
        }
    }
    Ok(())
}

/// `--real-zookeeper` in a zk built without the `real-zookeeper` feature: says how to get it.
#[cfg(not(feature = "real-zookeeper"))]
async fn start_real(_t: &Timeline, _install: bool) -> Result<(String, Local), Failure> {
    Err(Failure::Failed(
        "demo: --real-zookeeper needs zk built with the `real-zookeeper` feature \
         (cargo install zk-cli --features real-zookeeper); or start ZooKeeper yourself and \
         pass --hosts"
            .into(),
    ))
}

/// Starts Debian's ZooKeeper through zk-testkit (`--real-zookeeper`).
#[cfg(feature = "real-zookeeper")]
async fn start_real(t: &Timeline, install: bool) -> Result<(String, Local), Failure> {
    t.say("--real-zookeeper: starting a local ZooKeeper (Debian's 3.8, via zk-testkit)...");
    let server = start_local(t, install).await?;
    let h = server.connect_string();
    t.say(format!("ZooKeeper serving on {h}"));
    Ok((h, Local::Real(Box::new(server))))
}

/// Starts a local server. When ZooKeeper is missing: with `install`, installs Debian's
/// packages first; without, fails with the way to install it.
#[cfg(feature = "real-zookeeper")]
async fn start_local(t: &Timeline, install: bool) -> Result<ZkServer, Failure> {
    let start = || async {
        tokio::task::spawn_blocking(ZkServer::start)
            .await
            .map_err(|e| Failure::Failed(format!("demo: {e}")))
    };
    match start().await? {
        Ok(s) => Ok(s),
        Err(zk_testkit::Error::MissingPackage(m)) if install => {
            t.say(m.to_string());
            t.say("installing Debian's zookeeper and a Java runtime (asked for by --install)...");
            install_packages().await?;
            start()
                .await?
                .map_err(|e| Failure::Failed(format!("demo: cannot start ZooKeeper: {e}")))
        }
        Err(zk_testkit::Error::MissingPackage(m)) => Err(Failure::Failed(format!(
            "demo: {m} (or run `zk demo --real-zookeeper --install` to have the demo install it)"
        ))),
        Err(e) => Err(Failure::Failed(format!(
            "demo: cannot start ZooKeeper: {e}"
        ))),
    }
}

#[cfg(feature = "real-zookeeper")]
async fn install_packages() -> Result<(), Failure> {
    // SAFETY: plain syscall.
    let root = unsafe { libc::geteuid() } == 0;
    let run = |args: &[&str]| {
        let mut argv: Vec<String> = Vec::new();
        if !root {
            argv.push("sudo".into());
        }
        argv.extend(args.iter().map(|s| s.to_string()));
        async move {
            let st = tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .status()
                .await
                .map_err(|e| {
                    Failure::Failed(format!("demo: cannot run {}: {e}", argv.join(" ")))
                })?;
            if st.success() {
                Ok(())
            } else {
                Err(Failure::Failed(format!(
                    "demo: `{}` failed ({st}); install ZooKeeper yourself: {}",
                    argv.join(" "),
                    zk_testkit::INSTALL_ZOOKEEPER
                )))
            }
        }
    };
    run(&["apt-get", "update", "-qq"]).await?;
    run(&[
        "apt-get",
        "install",
        "-y",
        "-qq",
        "zookeeper",
        "default-jre-headless",
    ])
    .await
}
