//! The differential suite: the same scripts run against real ZooKeeper 3.8 (zk-testkit) and
//! zk-server, through zk-core, and their transcripts must be equal line for line: every reply
//! (data, children, paths with sequence suffixes), every Stat (version, cversion, aversion,
//! dataLength, numChildren, ephemeralOwner as "which of our sessions", whether mzxid / pzxid
//! equal czxid; zxids and times themselves are masked), every error, and every watch event
//! each session received after each step. A seeded random run is compared op by op the same
//! way. Raw-socket cases compare what zk-core does not show (multi's per-op error list,
//! create2 inside multi, null data).

use futures::FutureExt;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_core::{
    Acl, AddWatchMode, Client, CreateMode, CreateOptions, OneshotWatcher, Op, Perms,
    PersistentWatcher, ReadOp, Stat,
};
use zk_proto::{
    ConnectRequest, ConnectResponse, CreateRequest, MultiOp, MultiRequest, MultiResponse,
    PathVersionRequest, Record, ReplyHeader, RequestHeader, SetDataRequest,
};

/// Which server a transcript comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Zk,
    Ours,
}

/// A node path in a script: fixed, or the n-th path a create returned (sequential names).
#[derive(Clone, Debug)]
enum P {
    Fixed(String),
    Created(usize),
}

fn p(s: &str) -> P {
    P::Fixed(s.to_owned())
}

/// One scripted step, run by session `s`.
#[derive(Clone, Debug)]
enum Step {
    Create(usize, P, &'static [u8], CreateMode),
    CreateAcl(usize, P, Vec<Acl>),
    Delete(usize, P, Option<i32>),
    Set(usize, P, &'static [u8], Option<i32>),
    Exists(usize, P, bool),
    Get(usize, P, bool),
    Children(usize, P, bool),
    GetAcl(usize, P),
    SetAcl(usize, P, Vec<Acl>, Option<i32>),
    Multi(usize, Vec<MOp>),
    MultiRead(usize, Vec<P>),
    AddWatch(usize, P, AddWatchMode),
    Auth(usize, &'static str),
    Sync(usize, P),
    Ephemerals(usize),
    AllChildren(usize, P),
    WhoAmI(usize),
    /// Close session s and open a new one in its place.
    Reopen(usize),
    /// removeWatches.
    RemoveWatches(usize, P, zk_core::WatcherType),
    /// checkWatches.
    CheckWatches(usize, P, zk_core::WatcherType),
    /// Wait (bounded) until the node is gone: the reaper's work.
    WaitGone(usize, P),
    /// Cut session s's connection and keep it from reconnecting.
    Cut(usize),
    /// Let session s reconnect (it re-registers its watches with setWatches) and wait for it.
    Heal(usize),
}

#[derive(Clone, Debug)]
enum MOp {
    Create(P, CreateMode),
    Delete(P, Option<i32>),
    Set(P, &'static [u8], Option<i32>),
    Check(P, Option<i32>),
}

struct Env {
    backend: Backend,
    /// host:port of the server.
    hosts: String,
    /// The chroot every session works in.
    root: String,
    /// One fault proxy per session, in front of the server.
    proxies: Vec<zk_testkit::FaultProxy>,
    clients: Vec<Client>,
    sids: Vec<i64>,
    created: Vec<String>,
    session_timeout: Duration,
    oneshots: Vec<(usize, String, OneshotWatcher)>,
    streams: Vec<(usize, String, PersistentWatcher)>,
    log: Vec<String>,
}

impl Env {
    async fn new(
        backend: Backend,
        hosts: String,
        root: String,
        sessions: usize,
        session_timeout: Duration,
    ) -> Env {
        let mut e = Env {
            backend,
            hosts,
            root,
            proxies: Vec::new(),
            clients: Vec::new(),
            sids: Vec::new(),
            created: Vec::new(),
            session_timeout,
            oneshots: Vec::new(),
            streams: Vec::new(),
            log: Vec::new(),
        };
        for i in 0..sessions {
            let proxy = zk_testkit::FaultProxy::start(e.hosts.parse().expect("host:port"))
                .await
                .expect("start a fault proxy");
            e.proxies.push(proxy);
            let c = e.connect_one(i).await;
            e.sids.push(c.session_id());
            e.clients.push(c);
        }
        e
    }

    async fn connect_one(&self, i: usize) -> Client {
        Client::builder(format!("{}{}", self.proxies[i].connect_string(), self.root))
            .session_timeout(self.session_timeout)
            .connect()
            .await
            .expect("connect")
    }

    fn path(&self, p: &P) -> String {
        match p {
            P::Fixed(s) => s.clone(),
            P::Created(i) => self
                .created
                .get(*i % self.created.len().max(1))
                .cloned()
                .unwrap_or_else(|| "/none".to_owned()),
        }
    }

    fn stat(&self, s: &Stat) -> String {
        let owner = if s.ephemeral_owner == 0 {
            "0".to_owned()
        } else {
            match self.sids.iter().position(|x| *x == s.ephemeral_owner) {
                Some(i) => format!("s{i}"),
                None => "other".to_owned(),
            }
        };
        format!(
            "[v{} cv{} av{} dl{} nc{} eo{} m=c:{} p=c:{}]",
            s.version,
            s.cversion,
            s.aversion,
            s.data_length,
            s.num_children,
            owner,
            s.mzxid == s.czxid,
            s.pzxid == s.czxid
        )
    }

    fn mode_acl(mode: CreateMode) -> CreateOptions {
        CreateOptions::new(mode)
    }

    fn to_op(&self, m: &MOp) -> Op {
        match m {
            MOp::Create(p, mode) => Op::create(self.path(p), b"m".to_vec(), *mode),
            MOp::Delete(p, v) => Op::delete(self.path(p), *v),
            MOp::Set(p, d, v) => Op::set_data(self.path(p), d.to_vec(), *v),
            MOp::Check(p, v) => Op::check(self.path(p), *v),
        }
    }

    async fn step(&mut self, n: usize, step: &Step) {
        let out: String = match step {
            Step::Create(s, p, d, mode) => {
                let path = self.path(p);
                match self.clients[*s]
                    .create_with(&path, d, &Self::mode_acl(*mode))
                    .await
                {
                    Ok((got, stat)) => {
                        self.created.push(got.clone());
                        format!("created {got} {}", self.stat(&stat))
                    }
                    Err(e) => format!("err {e:?}"),
                }
            }
            Step::CreateAcl(s, p, acl) => {
                let path = self.path(p);
                let o = CreateOptions::new(CreateMode::Persistent).with_acl(acl.clone());
                match self.clients[*s].create_with(&path, b"", &o).await {
                    Ok((got, stat)) => format!("created {got} {}", self.stat(&stat)),
                    Err(e) => format!("err {e:?}"),
                }
            }
            Step::Delete(s, p, v) => {
                let r = self.clients[*s].delete(&self.path(p), *v).await;
                format!("{r:?}")
            }
            Step::Set(s, p, d, v) => match self.clients[*s].set_data(&self.path(p), d, *v).await {
                Ok(st) => format!("set {}", self.stat(&st)),
                Err(e) => format!("err {e:?}"),
            },
            Step::Exists(s, p, watch) => {
                let path = self.path(p);
                let r = if *watch {
                    match self.clients[*s].exists_watch(&path).await {
                        Ok((st, w)) => {
                            self.oneshots.push((*s, format!("exists {path}"), w));
                            Ok(st)
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    self.clients[*s].exists(&path).await
                };
                match r {
                    Ok(Some(st)) => format!("exists {}", self.stat(&st)),
                    Ok(None) => "exists none".to_owned(),
                    Err(e) => format!("err {e:?}"),
                }
            }
            Step::Get(s, p, watch) => {
                let path = self.path(p);
                let r = if *watch {
                    match self.clients[*s].get_data_watch(&path).await {
                        Ok((d, st, w)) => {
                            self.oneshots.push((*s, format!("data {path}"), w));
                            Ok((d, st))
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    self.clients[*s].get_data(&path).await
                };
                match r {
                    Ok((d, st)) => {
                        format!("data {:?} {}", String::from_utf8_lossy(&d), self.stat(&st))
                    }
                    Err(e) => format!("err {e:?}"),
                }
            }
            Step::Children(s, p, watch) => {
                let path = self.path(p);
                let r = if *watch {
                    match self.clients[*s].get_children_with_stat_watch(&path).await {
                        Ok((c, st, w)) => {
                            self.oneshots.push((*s, format!("children {path}"), w));
                            Ok((c, st))
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    self.clients[*s].get_children_with_stat(&path).await
                };
                match r {
                    Ok((mut c, st)) => {
                        c.sort();
                        format!("children {c:?} {}", self.stat(&st))
                    }
                    Err(e) => format!("err {e:?}"),
                }
            }
            Step::GetAcl(s, p) => match self.clients[*s].get_acl(&self.path(p)).await {
                Ok((a, st)) => format!("acl {a:?} {}", self.stat(&st)),
                Err(e) => format!("err {e:?}"),
            },
            Step::SetAcl(s, p, acl, v) => {
                match self.clients[*s].set_acl(&self.path(p), acl, *v).await {
                    Ok(st) => format!("setacl {}", self.stat(&st)),
                    Err(e) => format!("err {e:?}"),
                }
            }
            Step::Multi(s, ops) => {
                let ops: Vec<Op> = ops.iter().map(|m| self.to_op(m)).collect();
                match self.clients[*s].multi(ops).await {
                    Ok(rs) => {
                        let mut o = "multi ok".to_owned();
                        for r in rs {
                            match r {
                                zk_core::OpResult::Create { path, stat } => {
                                    self.created.push(path.clone());
                                    let st = stat.map(|s| self.stat(&s));
                                    write!(o, " create {path} {st:?};").unwrap();
                                }
                                zk_core::OpResult::SetData { stat } => {
                                    write!(o, " set {};", self.stat(&stat)).unwrap();
                                }
                                other => write!(o, " {other:?};").unwrap(),
                            }
                        }
                        o
                    }
                    Err(e) => format!("err {e:?}"),
                }
            }
            Step::MultiRead(s, paths) => {
                let mut ops = Vec::new();
                for p in paths {
                    ops.push(ReadOp::GetData(self.path(p)));
                    ops.push(ReadOp::GetChildren(self.path(p)));
                }
                match self.clients[*s].multi_read(ops).await {
                    Ok(rs) => rs
                        .into_iter()
                        .map(|r| match r {
                            Ok(zk_core::ReadResult::Data(data, stat)) => format!(
                                "data {:?} {}",
                                String::from_utf8_lossy(&data),
                                self.stat(&stat)
                            ),
                            Ok(zk_core::ReadResult::Children(mut children)) => {
                                children.sort();
                                format!("children {children:?}")
                            }
                            other => format!("{other:?}"),
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                    Err(e) => format!("err {e:?}"),
                }
            }
            Step::AddWatch(s, p, mode) => {
                let path = self.path(p);
                match self.clients[*s].add_watch(&path, *mode).await {
                    Ok(w) => {
                        self.streams.push((*s, format!("{mode:?} {path}"), w));
                        "watching".to_owned()
                    }
                    Err(e) => format!("err {e:?}"),
                }
            }
            Step::Auth(s, cred) => {
                let r = self.clients[*s].add_auth("digest", cred.as_bytes()).await;
                format!("{r:?}")
            }
            Step::Sync(s, p) => format!("{:?}", self.clients[*s].sync(&self.path(p)).await),
            Step::Ephemerals(s) => {
                let r = self.clients[*s].get_ephemerals("/").await.map(|mut v| {
                    v.sort();
                    v
                });
                format!("{r:?}")
            }
            Step::AllChildren(s, p) => {
                format!(
                    "{:?}",
                    self.clients[*s]
                        .get_all_children_number(&self.path(p))
                        .await
                )
            }
            Step::WhoAmI(s) => {
                let r = self.clients[*s].who_am_i().await.map(|v| {
                    v.into_iter()
                        .map(|c| format!("{}:{}", c.auth_scheme, c.user))
                        .collect::<Vec<_>>()
                });
                format!("{r:?}")
            }
            Step::Reopen(s) => {
                self.proxies[*s].reject_new(false);
                let r = tokio::time::timeout(Duration::from_secs(30), self.clients[*s].close())
                    .await
                    .map(|r| r.map_err(|e| format!("{e:?}")))
                    .unwrap_or_else(|_| Err("close still pending after 30 s".into()));
                let c = self.connect_one(*s).await;
                self.sids[*s] = c.session_id();
                self.clients[*s] = c;
                format!("reopened {r:?}")
            }
            Step::RemoveWatches(s, p, kind) => {
                format!(
                    "{:?}",
                    self.clients[*s].remove_watches(&self.path(p), *kind).await
                )
            }
            Step::CheckWatches(s, p, kind) => {
                format!(
                    "{:?}",
                    self.clients[*s].check_watches(&self.path(p), *kind).await
                )
            }
            Step::WaitGone(s, p) => {
                let path = self.path(p);
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                loop {
                    match self.clients[*s].exists(&path).await {
                        Ok(None) => break "gone".to_owned(),
                        Ok(Some(_)) if std::time::Instant::now() < deadline => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        other => break format!("still there after 30 s: {other:?}"),
                    }
                }
            }
            Step::Cut(s) => {
                self.proxies[*s].reject_new(true);
                self.proxies[*s].reset();
                let c = &self.clients[*s];
                wait_state(c, zk_core::State::Suspended).await;
                "cut".to_owned()
            }
            Step::Heal(s) => {
                self.proxies[*s].reject_new(false);
                wait_state(&self.clients[*s], zk_core::State::Connected).await;
                "healed".to_owned()
            }
        };
        let s = match step {
            Step::Create(s, ..)
            | Step::CreateAcl(s, ..)
            | Step::Delete(s, ..)
            | Step::Set(s, ..)
            | Step::Exists(s, ..)
            | Step::Get(s, ..)
            | Step::Children(s, ..)
            | Step::GetAcl(s, ..)
            | Step::SetAcl(s, ..)
            | Step::Multi(s, ..)
            | Step::MultiRead(s, ..)
            | Step::AddWatch(s, ..)
            | Step::Auth(s, ..)
            | Step::Sync(s, ..)
            | Step::Ephemerals(s)
            | Step::AllChildren(s, ..)
            | Step::WhoAmI(s)
            | Step::Reopen(s)
            | Step::WaitGone(s, _)
            | Step::RemoveWatches(s, ..)
            | Step::CheckWatches(s, ..)
            | Step::Cut(s)
            | Step::Heal(s) => *s,
        };
        self.log.push(format!("#{n} s{s} {step:?} -> {out}"));
        // a closing session's ephemerals go in an unspecified order (ZooKeeper: hash-set
        // order), so that step's events are compared as a set
        self.collect_events(n, matches!(step, Step::Reopen(_)))
            .await;
    }

    /// A round trip on every session (the server answers in order, so every event caused by
    /// the step is in by then), then what each watch received, in registration order for
    /// one-shot watches and in arrival order for each persistent stream.
    async fn collect_events(&mut self, n: usize, unordered: bool) {
        for (c, p) in self.clients.iter().zip(&self.proxies) {
            if !p.is_blackholed() && c.state() == zk_core::State::Connected {
                let _ = c.exists("/").await;
            }
        }
        let mut still = Vec::new();
        for (s, what, mut w) in std::mem::take(&mut self.oneshots) {
            match (&mut w).now_or_never() {
                Some(r) => {
                    let r = r.map(|e| format!("{:?} {}", e.event_type, e.path));
                    self.log.push(format!("#{n} event s{s} ({what}): {r:?}"));
                }
                None => still.push((s, what, w)),
            }
        }
        self.oneshots = still;
        let mut lines = Vec::new();
        for (s, what, w) in &mut self.streams {
            while let Some(Some(r)) = w.next().now_or_never() {
                let r = r.map(|e| format!("{:?} {}", e.event_type, e.path));
                lines.push(format!("#{n} stream s{s} ({what}): {r:?}"));
            }
        }
        if unordered {
            lines.sort();
        }
        self.log.extend(lines);
    }
}

async fn wait_state(c: &Client, state: zk_core::State) {
    c.wait_for_state(state, Some(Duration::from_secs(30)))
        .await
        .unwrap_or_else(|e| panic!("state {state:?} not reached in 30 s: {e}"));
}

fn unique(name: &str) -> String {
    format!("/diff-{name}-{}", rand::thread_rng().gen_range(0..u64::MAX))
}

/// Runs `script` with `sessions` sessions on both servers and returns the two transcripts.
async fn run_both(name: &str, sessions: usize, script: &[Step]) -> (Vec<String>, Vec<String>) {
    let zk = zk_testkit::shared_zookeeper(); // the reference, whatever ZK_TESTKIT_BACKEND says
    let ours = zk_server::Server::start().await.expect("start zk-server");
    let r = run_on(
        name,
        sessions,
        script,
        &zk.connect_string(),
        &ours.connect_string(),
        Duration::from_secs(20),
    )
    .await;
    ours.stop().await;
    r
}

/// Runs `script` on the two servers given.
async fn run_on(
    name: &str,
    sessions: usize,
    script: &[Step],
    zk_hosts: &str,
    our_hosts: &str,
    session_timeout: Duration,
) -> (Vec<String>, Vec<String>) {
    let mut logs = Vec::new();
    for (backend, hosts) in [(Backend::Zk, zk_hosts), (Backend::Ours, our_hosts)] {
        let root = unique(name);
        let admin = Client::connect(hosts).await.expect("connect");
        admin.ensure_path(&root).await.expect("chroot");
        admin.close().await.unwrap();
        let mut env = Env::new(backend, hosts.to_owned(), root, sessions, session_timeout).await;
        for (i, s) in script.iter().enumerate() {
            env.step(i, s).await;
        }
        for c in &env.clients {
            let _ = tokio::time::timeout(Duration::from_secs(30), c.close()).await;
        }
        assert_eq!(env.backend, backend);
        logs.push(env.log);
    }
    let ours_log = logs.pop().unwrap();
    let zk_log = logs.pop().unwrap();
    (zk_log, ours_log)
}

/// Asserts the transcripts are equal, showing the first line that differs; with
/// `ZK_DIFF_DUMP` set, prints ZooKeeper's transcript first (and ours, when they differ).
fn assert_same(name: &str, zk: &[String], ours: &[String]) {
    if std::env::var_os("ZK_DIFF_DUMP").is_some() {
        eprintln!("{name}:\n{}", zk.join("\n"));
        if zk != ours {
            eprintln!("{name} (zk-server):\n{}", ours.join("\n"));
        }
    }
    for (i, (a, b)) in zk.iter().zip(ours).enumerate() {
        assert_eq!(
            a, b,
            "{name}: line {i} differs\n  zookeeper: {a}\n  zk-server: {b}"
        );
    }
    assert_eq!(
        zk.len(),
        ours.len(),
        "{name}: transcripts differ in length\nzookeeper: {zk:#?}\nzk-server: {ours:#?}"
    );
}

/// Runs `transcript` (address, root) on the shared ZooKeeper and on a fresh zk-server, and
/// compares the two.
async fn diff_on_shared(name: &str, transcript: impl AsyncFn(&str, &str) -> Vec<String>) {
    let zk = zk_testkit::shared_zookeeper(); // the reference, whatever ZK_TESTKIT_BACKEND says
    let ours = zk_server::Server::start().await.expect("start zk-server");
    let root = unique(name);
    let a = transcript(&zk.connect_string(), &root).await;
    let b = transcript(&ours.connect_string(), &root).await;
    assert_same(name, &a, &b);
}

async fn differential(name: &str, sessions: usize, script: Vec<Step>) -> usize {
    let (zk, ours) = run_both(name, sessions, &script).await;
    assert_same(name, &zk, &ours);
    script.len()
}

use CreateMode::{Ephemeral, EphemeralSequential, Persistent, PersistentSequential};

#[tokio::test(flavor = "multi_thread")]
async fn diff_create_modes_sequence_numbers_and_cversion() {
    use Step::*;
    differential(
        "create",
        2,
        vec![
            Children(0, p("/"), false),
            Create(0, p("/p"), b"d", Persistent),
            Create(0, p("/p/s-"), b"", PersistentSequential),
            Create(0, p("/p/s-"), b"", PersistentSequential),
            Create(1, p("/p/s-"), b"", EphemeralSequential),
            Delete(0, P::Created(1), None),
            Children(1, p("/p"), false),
            Create(0, p("/p/s-"), b"", PersistentSequential),
            Create(0, p("/p/"), b"", PersistentSequential),
            Create(1, p("/p/e"), b"x", Ephemeral),
            Create(0, p("/p/e/child"), b"", Persistent),
            Create(0, p("/p"), b"", Persistent),
            Create(0, p("/missing/x"), b"", Persistent),
            Create(0, p("/c"), b"", CreateMode::Container),
            Create(
                0,
                p("/t"),
                b"",
                CreateMode::PersistentWithTtl(Duration::from_secs(3600)),
            ),
            Create(
                0,
                p("/ts-"),
                b"",
                CreateMode::PersistentSequentialWithTtl(Duration::from_secs(3600)),
            ),
            Create(0, p("/t/child"), b"", Ephemeral),
            Exists(0, p("/c"), false),
            Exists(0, p("/t"), false),
            Get(0, p("/p"), false),
            Get(1, p("/p/e"), false),
            Children(0, p("/p"), false),
            Ephemerals(1),
            Ephemerals(0),
            AllChildren(0, p("/")),
            AllChildren(0, p("/p")),
            AllChildren(0, p("/nope")),
            Sync(0, p("/p")),
            Reopen(1),
            Children(0, p("/p"), false),
            Get(0, p("/p"), false),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_versions_and_error_precedence() {
    use Step::*;
    differential(
        "errors",
        1,
        vec![
            Create(0, p("/a"), b"1", Persistent),
            Create(0, p("/a/b"), b"", Persistent),
            Set(0, p("/a"), b"2", Some(0)),
            Set(0, p("/a"), b"3", Some(0)),
            Set(0, p("/a"), b"3", None),
            Set(0, p("/zz"), b"3", None),
            Delete(0, p("/a"), Some(7)),
            Delete(0, p("/a"), None),
            Delete(0, p("/a/b"), Some(3)),
            Delete(0, p("/a/b"), Some(0)),
            Delete(0, p("/a/b"), None),
            Get(0, p("/a"), false),
            Delete(0, p("/a"), Some(2)),
            Exists(0, p("/a"), false),
            // NoAuth before NodeExists: a read-only parent
            CreateAcl(0, p("/ro"), Acl::read_unsafe()),
            Create(0, p("/ro/x"), b"", Persistent),
            SetAcl(0, p("/ro"), Acl::open_unsafe(), Some(0)),
            SetAcl(0, p("/ro"), Acl::open_unsafe(), Some(0)),
            Create(0, p("/ro/x"), b"", Persistent),
            Create(0, p("/ro/x"), b"", Persistent),
            GetAcl(0, p("/ro")),
            // invalid ACLs
            CreateAcl(0, p("/bad"), vec![Acl::new(Perms::ALL, "world", "someone")]),
            CreateAcl(
                0,
                p("/missing/bad"),
                vec![Acl::new(Perms::ALL, "nosuch", "x")],
            ),
            CreateAcl(0, p("/auth"), Acl::creator_all()),
            Auth(0, "user:secret"),
            WhoAmI(0),
            CreateAcl(0, p("/auth"), Acl::creator_all()),
            GetAcl(0, p("/auth")),
            Get(0, p("/auth"), false),
            CreateAcl(
                0,
                p("/digest"),
                vec![Acl::digest(Perms::ALL, "other", "pw")],
            ),
            Get(0, p("/digest"), false),
            GetAcl(0, p("/digest")),
            Set(0, p("/digest"), b"x", None),
            Delete(0, p("/digest"), None),
            Exists(0, p("/digest"), false),
            // READ without ADMIN: digest ids come back masked
            CreateAcl(
                0,
                p("/masked"),
                vec![
                    Acl::digest(Perms::ALL, "other", "pw"),
                    Acl::new(Perms::READ, "world", "anyone"),
                ],
            ),
            GetAcl(0, p("/masked")),
            SetAcl(0, p("/masked"), Acl::open_unsafe(), None),
            Delete(0, p("/masked"), None),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_multi_results_and_failures() {
    use MOp as M;
    use Step::*;
    differential(
        "multi",
        1,
        vec![
            Create(0, p("/m"), b"", Persistent),
            Multi(
                0,
                vec![
                    M::Create(p("/m/a"), Persistent),
                    M::Create(p("/m/a/b"), Persistent),
                    M::Set(p("/m/a"), b"x", Some(0)),
                    M::Check(p("/m/a"), Some(1)),
                    M::Create(p("/m/s-"), PersistentSequential),
                ],
            ),
            Children(0, p("/m"), false),
            Multi(
                0,
                vec![
                    M::Create(p("/m/c"), Persistent),
                    M::Set(p("/m/a"), b"y", Some(0)),
                    M::Delete(p("/m/a/b"), None),
                ],
            ),
            Exists(0, p("/m/c"), false),
            Get(0, p("/m/a"), false),
            Multi(
                0,
                vec![M::Delete(p("/m/a"), None), M::Create(p("/m/d"), Persistent)],
            ),
            Multi(
                0,
                vec![
                    M::Delete(p("/m/a/b"), None),
                    M::Delete(p("/m/a"), None),
                    M::Create(p("/m/a"), Ephemeral),
                    M::Check(p("/m/a"), Some(0)),
                ],
            ),
            Children(0, p("/m"), false),
            Get(0, p("/m"), false),
            Multi(0, vec![M::Check(p("/nope"), None)]),
            Multi(0, vec![M::Create(p("/m/a/x"), Persistent)]),
            MultiRead(0, vec![p("/m"), p("/nope"), p("/m/a")]),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_watch_events_and_their_order() {
    use Step::*;
    differential(
        "watches",
        3,
        vec![
            AddWatch(2, p("/"), AddWatchMode::PersistentRecursive),
            AddWatch(1, p("/w"), AddWatchMode::Persistent),
            Exists(0, p("/w"), true),
            Exists(1, p("/w"), true),
            Create(1, p("/w"), b"", Persistent),
            Get(0, p("/w"), true),
            Children(0, p("/w"), true),
            Children(1, p("/w"), true),
            Create(1, p("/w/k"), b"", Persistent),
            Set(1, p("/w"), b"x", None),
            Get(0, p("/w/k"), true),
            Exists(1, p("/w/k"), true),
            Children(1, p("/w/k"), true),
            AddWatch(0, p("/w"), AddWatchMode::Persistent),
            Delete(1, p("/w/k"), None),
            Set(1, p("/w"), b"y", None),
            Create(1, p("/w/e"), b"", Ephemeral),
            Exists(0, p("/w/e"), true),
            Children(0, p("/w"), true),
            Reopen(1),
            Get(0, p("/w"), true),
            Delete(0, p("/w"), None),
            Create(0, p("/w"), b"", Persistent),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_containers_and_ttl_nodes_are_reaped() {
    use Step::*;
    let ttl = CreateMode::PersistentWithTtl(Duration::from_millis(300));
    differential(
        "reaper",
        1,
        vec![
            Create(0, p("/c"), b"", CreateMode::Container),
            Create(0, p("/never-used"), b"", CreateMode::Container),
            Create(0, p("/c/x"), b"", Persistent),
            Exists(0, p("/c"), true),
            Children(0, p("/"), true),
            Delete(0, p("/c/x"), None),
            WaitGone(0, p("/c")),
            Create(0, p("/t"), b"", ttl),
            Create(0, p("/t2"), b"", ttl),
            Create(0, p("/t2/child"), b"", Persistent),
            Exists(0, p("/t"), true),
            WaitGone(0, p("/t")),
            Exists(0, p("/never-used"), false),
            Exists(0, p("/t2"), false),
            Children(0, p("/"), false),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_set_watches_after_a_reconnect() {
    use Step::*;
    differential(
        "setwatches",
        2,
        vec![
            Create(1, p("/w"), b"", Persistent),
            Create(1, p("/gone"), b"", Persistent),
            Create(1, p("/same"), b"", Persistent),
            Get(0, p("/w"), true),
            Children(0, p("/w"), true),
            Exists(0, p("/gone"), true),
            Children(0, p("/gone"), true),
            Exists(0, p("/new"), true),
            Get(0, p("/same"), true),
            Children(0, p("/same"), true),
            AddWatch(0, p("/w"), AddWatchMode::Persistent),
            AddWatch(0, p("/same"), AddWatchMode::PersistentRecursive),
            Cut(0),
            Set(1, p("/w"), b"x", None),
            Create(1, p("/w/c"), b"", Persistent),
            Create(1, p("/new"), b"", Persistent),
            Delete(1, p("/gone"), None),
            Heal(0),
            Set(1, p("/same"), b"y", None),
            Create(1, p("/same/k"), b"", Persistent),
            Set(1, p("/w"), b"z", None),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_remove_and_check_watches() {
    use zk_core::WatcherType as W;
    use Step::*;
    differential(
        "rmwatch",
        2,
        vec![
            Create(1, p("/r"), b"", Persistent),
            RemoveWatches(0, p("/r"), W::Any),
            Get(0, p("/r"), true),
            Children(0, p("/r"), true),
            RemoveWatches(0, p("/r"), W::Children),
            RemoveWatches(0, p("/r"), W::Children),
            Create(1, p("/r/c"), b"", Persistent),
            Set(1, p("/r"), b"x", None),
            Get(0, p("/r"), true),
            RemoveWatches(0, p("/r"), W::Data),
            Set(1, p("/r"), b"y", None),
            Exists(0, p("/q"), true),
            RemoveWatches(0, p("/q"), W::Any),
            Create(1, p("/q"), b"", Persistent),
        ],
    )
    .await;
}

/// checkWatches beyond the raw case: which kinds find a one-shot data / exist / child watch,
/// a persistent and a recursive one (3.8 puts both in the data and the child table), before
/// and after they fired, another session's (3.8.0 finds it), and after removeWatches.
#[tokio::test(flavor = "multi_thread")]
async fn diff_check_watches_of_every_mode_before_and_after_they_fire() {
    use zk_core::WatcherType as W;
    use Step::*;
    let all = |s: usize, path: &str| -> Vec<Step> {
        [W::Data, W::Children, W::Any]
            .into_iter()
            .map(|k| CheckWatches(s, p(path), k))
            .collect()
    };
    let mut script = vec![
        Create(1, p("/c"), b"", Persistent),
        Create(1, p("/r"), b"", Persistent),
        Create(1, p("/pw"), b"", Persistent),
    ];
    script.extend(all(0, "/c"));
    script.push(Get(0, p("/c"), true));
    script.extend(all(0, "/c"));
    script.push(Children(0, p("/c"), true));
    script.extend(all(0, "/c"));
    // 3.8.0 answers for any connection's watch on the path (ZOOKEEPER-4466); removeWatches
    // only removes the caller's
    script.extend(all(1, "/c"));
    script.push(RemoveWatches(1, p("/c"), W::Any));
    script.push(Set(1, p("/c"), b"x", None));
    script.extend(all(0, "/c"));
    script.push(Create(1, p("/c/k"), b"", Persistent));
    script.extend(all(0, "/c"));
    script.push(Exists(0, p("/nx"), true));
    script.extend(all(0, "/nx"));
    script.push(Create(1, p("/nx"), b"", Persistent));
    script.extend(all(0, "/nx"));
    script.push(AddWatch(0, p("/pw"), AddWatchMode::Persistent));
    script.extend(all(0, "/pw"));
    script.push(Set(1, p("/pw"), b"x", None));
    script.push(Create(1, p("/pw/k"), b"", Persistent));
    script.extend(all(0, "/pw"));
    script.extend(all(0, "/pw/k"));
    script.push(AddWatch(0, p("/r"), AddWatchMode::PersistentRecursive));
    script.extend(all(0, "/r"));
    script.push(Create(1, p("/r/x"), b"", Persistent));
    script.push(Set(1, p("/r/x"), b"y", None));
    script.extend(all(0, "/r"));
    script.extend(all(0, "/r/x"));
    script.push(RemoveWatches(0, p("/pw"), W::Data));
    script.extend(all(0, "/pw"));
    script.push(RemoveWatches(0, p("/r"), W::Any));
    script.extend(all(0, "/r"));
    script.push(Set(1, p("/r"), b"z", None));
    differential("checkwatch", 2, script).await;
}

/// Session expiry by ticks on both servers (tick 500 ms): a silenced session's ephemeral is
/// deleted and watchers notified, and the session is then gone for good.
#[tokio::test(flavor = "multi_thread")]
async fn diff_session_expiry_by_ticks() {
    use Step::*;
    let zk = zk_testkit::ZkServer::builder()
        .real_zookeeper("the differential suite's reference")
        .tick_time(500)
        .start_async()
        .await
        .expect("start ZooKeeper");
    let ours = zk_server::Server::builder()
        .tick_time(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    let script = vec![
        Create(1, p("/e"), b"", Ephemeral),
        Exists(0, p("/e"), true),
        Children(0, p("/"), true),
        Ephemerals(1),
        Cut(1),
        WaitGone(0, p("/e")),
        Ephemerals(0),
    ];
    let (a, b) = run_on(
        "expiry",
        2,
        &script,
        &zk.connect_string(),
        &ours.connect_string(),
        Duration::from_millis(2000),
    )
    .await;
    assert_same("expiry", &a, &b);
    // negotiated timeouts clamp to [2, 20] ticks; a re-attach after expiry gets the expired
    // answer
    let mut logs = Vec::new();
    for hosts in [zk.connect_string(), ours.connect_string()] {
        let mut log = Vec::new();
        for want in [1, 1500, 10_000_000] {
            let (_, resp) = Raw::connect_with(&hosts, 0, &[0; 16], want).await;
            log.push(format!("requested {want}: {}", resp.timeout_ms));
        }
        let (raw, resp) = Raw::connect_with(&hosts, 0, &[0; 16], 1000).await;
        drop(raw);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let expired = loop {
            let (_, again) = Raw::connect_with(&hosts, resp.session_id, &resp.passwd, 1000).await;
            if again.timeout_ms == 0 {
                break again;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "session never expired"
            );
            // re-attaching touched it: wait longer than its timeout before the next try
            tokio::time::sleep(Duration::from_millis(2500)).await;
        };
        log.push(format!(
            "expired answer: timeout {} id {} passwd {:?}",
            expired.timeout_ms, expired.session_id, expired.passwd
        ));
        logs.push(log);
    }
    assert_same("expiry raw", &logs[0], &logs[1]);
}

/// The seeded random run: small tree, three sessions, watches, multi; compared op by op.
#[tokio::test(flavor = "multi_thread")]
async fn diff_seeded_random_operations() {
    let mut total = 0;
    for seed in [1u64, 2, 3, 4, 5] {
        let script = random_script(seed, 200);
        total += differential(&format!("random{seed}"), 3, script).await;
    }
    eprintln!("random differential: {total} operations compared");
}

fn random_script(seed: u64, n: usize) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    const PATHS: [&str; 7] = ["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q", "/a/s-"];
    const DATA: [&[u8]; 3] = [b"", b"d1", b"data-2"];
    // a base the random steps work on (they may delete it again)
    let mut out = vec![
        Step::Create(0, p("/a"), b"", Persistent),
        Step::Create(1, p("/b"), b"", Persistent),
        Step::Create(2, p("/a/x"), b"", Persistent),
        // every event of the run in arrival order, and a persistent watch
        Step::AddWatch(2, p("/"), AddWatchMode::PersistentRecursive),
        Step::AddWatch(0, p("/a"), AddWatchMode::Persistent),
    ];
    for _ in 0..n {
        let s = rng.gen_range(0..3);
        let path = |rng: &mut StdRng| -> P {
            if rng.gen_bool(0.15) {
                P::Created(rng.gen_range(0..64))
            } else {
                p(PATHS[rng.gen_range(0..PATHS.len() - 1)])
            }
        };
        let version = |rng: &mut StdRng| -> Option<i32> {
            if rng.gen_bool(0.7) {
                None
            } else {
                Some(rng.gen_range(0..3))
            }
        };
        let step = match rng.gen_range(0..99) {
            0..=24 => {
                let mode = [
                    Persistent,
                    Ephemeral,
                    PersistentSequential,
                    EphemeralSequential,
                ][rng.gen_range(0..4)];
                let target = match mode {
                    PersistentSequential | EphemeralSequential => p("/a/s-"),
                    // ephemerals on leaves, so that the tree keeps some depth
                    Ephemeral => p(["/a/y", "/b/z", "/a/x/q"][rng.gen_range(0..3)]),
                    _ => path(&mut rng),
                };
                Step::Create(s, target, DATA[rng.gen_range(0..3)], mode)
            }
            25..=39 => Step::Delete(s, path(&mut rng), version(&mut rng)),
            40..=52 => Step::Set(
                s,
                path(&mut rng),
                DATA[rng.gen_range(0..3)],
                version(&mut rng),
            ),
            53..=62 => Step::Exists(s, path(&mut rng), rng.gen_bool(0.6)),
            63..=72 => Step::Get(s, path(&mut rng), rng.gen_bool(0.6)),
            73..=82 => Step::Children(s, path(&mut rng), rng.gen_bool(0.6)),
            83..=92 => {
                let k = rng.gen_range(1..4);
                let ops = (0..k)
                    .map(|_| match rng.gen_range(0..4) {
                        0 => MOp::Create(path(&mut rng), Persistent),
                        1 => MOp::Delete(path(&mut rng), version(&mut rng)),
                        2 => MOp::Set(path(&mut rng), b"m", version(&mut rng)),
                        _ => MOp::Check(path(&mut rng), version(&mut rng)),
                    })
                    .collect();
                Step::Multi(s, ops)
            }
            93..=94 => Step::MultiRead(s, vec![path(&mut rng), path(&mut rng)]),
            95 => Step::Ephemerals(s),
            96 => Step::AllChildren(s, path(&mut rng)),
            97 => Step::RemoveWatches(
                s,
                path(&mut rng),
                [
                    zk_core::WatcherType::Any,
                    zk_core::WatcherType::Data,
                    zk_core::WatcherType::Children,
                ][rng.gen_range(0..3)],
            ),
            // session 2 keeps its recursive watch for the whole run
            _ => Step::Reopen(rng.gen_range(0..2)),
        };
        out.push(step);
    }
    out
}

// ---------------------------------------------------------------------------- raw wire

/// A raw session: the connect handshake and numbered requests, replies read back whole.
struct Raw {
    s: TcpStream,
    xid: i32,
}

impl Raw {
    async fn connect(addr: &str) -> (Raw, ConnectResponse) {
        Raw::connect_with(addr, 0, &[0; 16], 10_000).await
    }

    async fn connect_with(
        addr: &str,
        session_id: i64,
        passwd: &[u8],
        timeout_ms: i32,
    ) -> (Raw, ConnectResponse) {
        let s = TcpStream::connect(addr).await.unwrap();
        Raw::handshake(s, session_id, passwd, timeout_ms).await
    }

    /// A new session on a socket whose receive buffer is 4 KiB: a client that does not read
    /// soon stops the server's writes to it.
    async fn connect_small_buffer(addr: &str, timeout_ms: i32) -> (Raw, ConnectResponse) {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let s = sock.connect(addr.parse().unwrap()).await.unwrap();
        Raw::handshake(s, 0, &[0; 16], timeout_ms).await
    }

    async fn handshake(
        mut s: TcpStream,
        session_id: i64,
        passwd: &[u8],
        timeout_ms: i32,
    ) -> (Raw, ConnectResponse) {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id,
            passwd: passwd.to_vec(),
            read_only: Some(false),
        };
        s.write_all(&zk_proto::record_frame(&req)).await.unwrap();
        let mut raw = Raw { s, xid: 0 };
        let b = raw.frame().await.expect("connect response");
        (raw, ConnectResponse::from_bytes(&b).unwrap())
    }

    async fn frame(&mut self) -> Option<Vec<u8>> {
        let len = self.s.read_i32().await.ok()?;
        let mut b = vec![0; len as usize];
        self.s.read_exact(&mut b).await.ok()?;
        Some(b)
    }

    /// Sends `op` with `body` under the next xid without reading anything; false if the
    /// connection was closed.
    async fn push(&mut self, op: i32, body: &[u8]) -> bool {
        self.xid += 1;
        self.send_xid(self.xid, op, body).await
    }

    async fn send_xid(&mut self, xid: i32, op: i32, body: &[u8]) -> bool {
        let mut f = RequestHeader { xid, op }.to_bytes().to_vec();
        f.extend_from_slice(body);
        let mut out = (f.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&f);
        self.s.write_all(&out).await.is_ok()
    }

    /// Sends `op` with `body`; returns (err, body bytes after the header) or None if the
    /// connection was closed.
    async fn call(&mut self, op: i32, body: &[u8]) -> Option<(i32, Vec<u8>)> {
        if !self.push(op, body).await {
            return None;
        }
        let b = self.frame().await?;
        let h = ReplyHeader::from_bytes(&b).unwrap();
        assert_eq!(h.xid, self.xid);
        Some((h.err, b[16..].to_vec()))
    }
}

fn create_body(path: &str, data: Option<&[u8]>, flags: i32) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    let mut w = zk_proto::Writer::new(&mut b);
    w.string(path).opt_buffer(data);
    w.i32(1);
    Acl::open_unsafe()[0].write(&mut w);
    w.i32(flags);
    b.to_vec()
}

/// Masks the zxid/time fields of every Stat at the given offsets of a body.
fn mask_stat(b: &mut [u8], at: usize) {
    for (off, len) in [(0, 32), (60, 8)] {
        for x in &mut b[at + off..at + off + len] {
            *x = 0;
        }
    }
}

async fn raw_transcript(addr: &str, root: &str) -> Vec<String> {
    let (mut r, resp) = Raw::connect(addr).await;
    let mut log = vec![format!("connect timeout {}", resp.timeout_ms)];
    // null data stays null; a created empty buffer stays empty
    let (e, _) = r.call(1, &create_body(root, None, 0)).await.unwrap();
    log.push(format!("create null {e}"));
    let (e, mut b) = r
        .call(
            4,
            &zk_proto::PathWatchRequest {
                path: root.into(),
                watch: false,
            }
            .to_bytes(),
        )
        .await
        .unwrap();
    mask_stat(&mut b, 4);
    log.push(format!("getData null {e} {b:?}"));
    // checkWatches / removeWatches with a watcher type 3.8 does not know (3.9's Persistent 4
    // and PersistentRecursive 5, and out of range): 3.8 cannot decode it (MARSHALLINGERROR)
    for op in [17, 18] {
        for mode in [0, 4, 5, 6] {
            let body = zk_proto::PathModeRequest {
                path: root.into(),
                mode,
            }
            .to_bytes();
            let (e, _) = r.call(op, &body).await.unwrap();
            log.push(format!("op {op} watcher type {mode}: {e}"));
        }
    }
    for probe in ["/", "/zookeeper", "/zookeeper/quota"] {
        let (e, mut b) = r
            .call(
                3,
                &zk_proto::PathWatchRequest {
                    path: probe.into(),
                    watch: false,
                }
                .to_bytes(),
            )
            .await
            .unwrap();
        if e == 0 {
            mask_stat(&mut b, 0);
        }
        log.push(format!("exists {probe} {e} {b:?}"));
    }
    // a failing multi: per-op error list
    let sub = format!("{root}/a");
    let multi = MultiRequest {
        ops: vec![
            MultiOp::Create(
                1,
                CreateRequest {
                    path: sub.clone(),
                    data: vec![],
                    acl: Acl::open_unsafe(),
                    flags: 0,
                },
            ),
            MultiOp::SetData(SetDataRequest {
                path: sub.clone(),
                data: vec![1],
                version: 5,
            }),
            MultiOp::Delete(PathVersionRequest {
                path: root.into(),
                version: -1,
            }),
        ],
    };
    let (e, b) = r.call(14, &multi.to_bytes()).await.unwrap();
    log.push(format!(
        "multi failing {e} {:?}",
        MultiResponse::from_bytes(&b).unwrap()
    ));
    // create2 inside a multi (3.8.0 answers it as a create)
    let multi = MultiRequest {
        ops: vec![MultiOp::Create(
            15,
            CreateRequest {
                path: sub.clone(),
                data: vec![],
                acl: Acl::open_unsafe(),
                flags: 0,
            },
        )],
    };
    let (e, b) = r.call(14, &multi.to_bytes()).await.unwrap();
    log.push(format!(
        "multi create2 {e} {:?}",
        MultiResponse::from_bytes(&b).unwrap()
    ));
    // null data inside a multi stays null too
    let mut m = bytes::BytesMut::new();
    {
        let mut w = zk_proto::Writer::new(&mut m);
        zk_proto::MultiHeader {
            op: 1,
            done: false,
            err: -1,
        }
        .write(&mut w);
        w.raw(&create_body(&format!("{root}/null-in-multi"), None, 0));
        zk_proto::MultiHeader {
            op: 5,
            done: false,
            err: -1,
        }
        .write(&mut w);
        w.string(root).opt_buffer(None).i32(-1);
        zk_proto::MultiHeader::END.write(&mut w);
    }
    let (e, _) = r.call(14, &m).await.unwrap();
    log.push(format!("multi with null data {e}"));
    for path in [format!("{root}/null-in-multi"), root.to_owned()] {
        let (e, mut b) = r
            .call(
                4,
                &zk_proto::PathWatchRequest { path, watch: false }.to_bytes(),
            )
            .await
            .unwrap();
        mask_stat(&mut b, 4);
        log.push(format!(
            "getData after a null write in a multi {e} {:?}",
            &b[..8]
        ));
    }
    // empty ACL, bad flags, TTL flag on create
    let mut empty_acl = create_body(&format!("{root}/x"), Some(b""), 0);
    let n = empty_acl.len();
    // rewrite the ACL vector as empty: path(4+len) data(4) count(4) acl(4+... ) -> rebuild
    empty_acl.truncate(0);
    {
        let mut b = bytes::BytesMut::new();
        let mut w = zk_proto::Writer::new(&mut b);
        w.string(&format!("{root}/x")).buffer(b"").i32(0).i32(0);
        empty_acl.extend_from_slice(&b);
    }
    let _ = n;
    for (what, body) in [
        ("empty acl", empty_acl),
        ("flags 7", create_body(&format!("{root}/x"), Some(b""), 7)),
        (
            "ttl flag on create",
            create_body(&format!("{root}/x"), Some(b""), 5),
        ),
        (
            "container flag on create2",
            create_body(&format!("{root}/x"), Some(b""), 4),
        ),
    ] {
        let (e, _) = r.call(15, &body).await.unwrap();
        log.push(format!("{what} {e}"));
    }
    // auth: a reply with xid -4 and zxid 0; an unknown scheme fails and closes the connection
    let auth = |scheme: &str, cred: &[u8]| {
        let mut b = RequestHeader { xid: -4, op: 100 }.to_bytes().to_vec();
        b.extend_from_slice(
            &zk_proto::AuthPacket {
                auth_type: 0,
                scheme: scheme.into(),
                auth: cred.to_vec(),
            }
            .to_bytes(),
        );
        let mut f = (b.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&b);
        f
    };
    r.s.write_all(&auth("digest", b"u:p")).await.unwrap();
    let h = ReplyHeader::from_bytes(&r.frame().await.unwrap()).unwrap();
    log.push(format!("auth digest: {h:?}"));
    // an unknown opcode: UNIMPLEMENTED, then the connection is closed
    let (e, _) = r.call(99, &[]).await.unwrap();
    log.push(format!("op 99 {e}"));
    log.push(format!("closed after op 99: {}", r.frame().await.is_none()));
    // the frame limit: exactly 1,048,575 bytes is served, one more closes the connection and
    // the session survives
    let (mut r, again) = Raw::connect_with(addr, resp.session_id, &resp.passwd, 10_000).await;
    log.push(format!(
        "re-attach after op 99: timeout {}",
        again.timeout_ms
    ));
    let n = 0xfffff - 20 - root.len();
    let body = SetDataRequest {
        path: root.into(),
        data: vec![b'x'; n],
        version: -1,
    }
    .to_bytes();
    assert_eq!(8 + body.len(), 0xfffff);
    let (e, _) = r.call(5, &body).await.unwrap();
    log.push(format!("setData in a 1048575-byte frame: {e}"));
    let mut over = (0x10_0000i32).to_be_bytes().to_vec();
    over.extend_from_slice(&RequestHeader { xid: 99, op: 5 }.to_bytes());
    over.extend_from_slice(&body);
    over.push(0);
    let _ = r.s.write_all(&over).await;
    log.push(format!(
        "closed after a 1048576-byte frame: {}",
        r.frame().await.is_none()
    ));
    let (_, again) = Raw::connect_with(addr, resp.session_id, &resp.passwd, 10_000).await;
    log.push(format!("re-attach after it: timeout {}", again.timeout_ms));
    let (mut r, _) = Raw::connect_with(addr, resp.session_id, &resp.passwd, 10_000).await;
    r.s.write_all(&auth("nosuch", b"x")).await.unwrap();
    let h = r
        .frame()
        .await
        .map(|b| ReplyHeader::from_bytes(&b).unwrap());
    log.push(format!("auth nosuch: {h:?}"));
    log.push(format!("closed after it: {}", r.frame().await.is_none()));
    let (_, again) = Raw::connect_with(addr, resp.session_id, &resp.passwd, 10_000).await;
    log.push(format!(
        "re-attach after a failed auth: timeout {}",
        again.timeout_ms
    ));
    log
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_raw_wire_replies() {
    let zk = zk_testkit::shared_zookeeper(); // the reference, whatever ZK_TESTKIT_BACKEND says
    let ours = zk_server::Server::start().await.unwrap();
    let root = unique("raw");
    let a = raw_transcript(&zk.connect_string(), &root).await;
    let b = raw_transcript(&ours.connect_string(), &root).await;
    // the root's and /zookeeper's Stats differ legitimately in what was created there by
    // other tests on the shared server: compare them on a fresh tree only (below)
    let strip = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|l| !l.starts_with("exists / "))
            .cloned()
            .collect()
    };
    assert_same("raw", &strip(&a), &strip(&b));
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_fresh_tree_and_four_letter_words() {
    let zk = zk_testkit::ZkServer::builder()
        .real_zookeeper("the differential suite's reference")
        .start_async()
        .await
        .unwrap();
    let ours = zk_server::Server::start().await.unwrap();
    let mut logs = Vec::new();
    for addr in [zk.connect_string(), ours.connect_string()] {
        let c = Client::connect(&addr).await.unwrap();
        let mut log = Vec::new();
        for path in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            let r = c.get_children_with_stat(path).await;
            let r = r.map(|(mut ch, st)| {
                ch.sort();
                (
                    ch,
                    st.version,
                    st.cversion,
                    st.aversion,
                    st.num_children,
                    st.ephemeral_owner,
                )
            });
            log.push(format!("{path} {r:?}"));
            log.push(format!(
                "{path} acl {:?}",
                c.get_acl(path).await.map(|x| x.0)
            ));
        }
        c.close().await.unwrap();
        let sa: std::net::SocketAddr = addr.parse().unwrap();
        let srvr = tokio::task::spawn_blocking(move || zk_testkit::four_letter(sa, "srvr"))
            .await
            .unwrap()
            .unwrap();
        let node_count = srvr
            .lines()
            .find(|l| l.starts_with("Node count"))
            .map(str::to_owned);
        log.push(format!(
            "srvr {node_count:?} mode {}",
            srvr.contains("Mode: standalone")
        ));
        let ruok = tokio::task::spawn_blocking(move || zk_testkit::four_letter(sa, "ruok"))
            .await
            .unwrap()
            .unwrap();
        log.push(format!("ruok {ruok}"));
        logs.push(log);
    }
    assert_same("fresh", &logs[0], &logs[1]);
}

/// ip ACLs: an exact address, a /32 and a /8 that match the client (127.0.0.1 through the
/// fault proxy), addresses and a mask that do not (NoAuth for every permission), READ only,
/// and malformed ip ids (InvalidACL).
#[tokio::test(flavor = "multi_thread")]
async fn diff_ip_acls() {
    use Step::*;
    let ip = |perms: Perms, id: &str| vec![Acl::new(perms, "ip", id)];
    let mut script = Vec::new();
    for (node, id) in [
        ("/exact", "127.0.0.1"),
        ("/m32", "127.0.0.1/32"),
        ("/m8", "127.0.0.0/8"),
        ("/m8-host-bits", "127.9.9.9/8"),
        ("/m0", "0.0.0.0/0"),
        ("/other", "10.0.0.1"),
        ("/other32", "127.0.0.2/32"),
        ("/other24", "10.1.2.0/24"),
        ("/bad-addr", "300.1.1.1"),
        ("/bad-mask", "127.0.0.1/33"),
        ("/not-ip", "localhost"),
        ("/v6", "::1"),
        ("/leading-zeros", "127.000.0.01/08"),
    ] {
        script.push(CreateAcl(0, p(node), ip(Perms::ALL, id)));
        script.push(Get(0, p(node), false));
        script.push(Set(0, p(node), b"x", None));
        script.push(Children(0, p(node), false));
        script.push(Create(0, P::Fixed(format!("{node}/k")), b"", Persistent));
        script.push(GetAcl(0, p(node)));
        script.push(SetAcl(0, p(node), Acl::open_unsafe(), None));
        script.push(Get(0, p(node), false));
    }
    script.push(CreateAcl(0, p("/ro"), ip(Perms::READ, "127.0.0.1")));
    script.push(Get(0, p("/ro"), false));
    script.push(Set(0, p("/ro"), b"x", None));
    script.push(Delete(0, p("/ro"), None));
    script.push(GetAcl(0, p("/ro")));
    script.push(CreateAcl(
        0,
        p("/mixed"),
        vec![
            Acl::new(Perms::READ, "ip", "127.0.0.0/8"),
            Acl::new(Perms::WRITE, "ip", "10.0.0.0/8"),
        ],
    ));
    script.push(Get(0, p("/mixed"), false));
    script.push(Set(0, p("/mixed"), b"x", None));
    differential("ipacl", 1, script).await;
}

/// What a four-letter word shows, with what legitimately differs masked: `cons` as one
/// line per connection (its interest flag, its session as "which of ours", its field names,
/// its timeout); `wchs` whole; `wchp` with session ids as "which of ours"; `mntr` the values
/// a client can predict.
fn fourlw_digest(word: &str, text: &str, sids: &[i64]) -> Vec<String> {
    let who = |hex: &str| -> String {
        let v = i64::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap_or(-1);
        match sids.iter().position(|s| *s == v) {
            Some(i) => format!("s{i}"),
            None => format!("other({hex})"),
        }
    };
    let mut out = Vec::new();
    match word {
        "cons" => {
            let mut lines: Vec<String> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let flag = l.split_once('[').map_or("", |(_, r)| &r[..1]).to_owned();
                    let fields = l
                        .split_once('(')
                        .map_or("", |(_, r)| r.trim_end_matches(')'));
                    let mut keys = Vec::new();
                    let mut sid = String::new();
                    let mut to = String::new();
                    for kv in fields.split(',') {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        keys.push(k.to_owned());
                        match k {
                            "sid" => sid = who(v),
                            "to" => to = v.to_owned(),
                            _ => {}
                        }
                    }
                    format!("cons [{flag}] sid={sid} to={to} keys={}", keys.join(","))
                })
                .collect();
            lines.sort();
            out.extend(lines);
        }
        "wchs" => out.extend(text.lines().map(|l| format!("wchs {l}"))),
        "wchp" => {
            let mut cur = String::new();
            let mut entries: Vec<String> = Vec::new();
            let mut ids: Vec<String> = Vec::new();
            let flush = |cur: &str, ids: &mut Vec<String>, entries: &mut Vec<String>| {
                if !cur.is_empty() {
                    ids.sort();
                    entries.push(format!("wchp {cur} {ids:?}"));
                    ids.clear();
                }
            };
            for l in text.lines() {
                if l.trim().is_empty() {
                    continue;
                }
                if l.starts_with('\t') || l.starts_with(' ') {
                    ids.push(who(l.trim()));
                } else {
                    flush(&cur, &mut ids, &mut entries);
                    cur = l.to_owned();
                }
            }
            flush(&cur, &mut ids, &mut entries);
            entries.sort();
            out.extend(entries);
        }
        "mntr" => {
            for l in text.lines() {
                let Some((k, v)) = l.split_once('\t') else {
                    out.push(format!("mntr line without a tab: {l:?}"));
                    continue;
                };
                if [
                    "zk_server_state",
                    "zk_znode_count",
                    "zk_watch_count",
                    "zk_ephemerals_count",
                    "zk_num_alive_connections",
                    "zk_outstanding_requests",
                ]
                .contains(&k)
                {
                    out.push(format!("mntr {k} {v}"));
                }
            }
            out.sort();
        }
        _ => unreachable!(),
    }
    out
}

/// The four-letter words `cons`, `wchs`, `wchp`, `mntr` on a fresh server of each kind with
/// the same sessions, nodes and watches.
#[tokio::test(flavor = "multi_thread")]
async fn diff_four_letter_words_cons_wchs_wchp_mntr() {
    let zk = zk_testkit::ZkServer::builder()
        .real_zookeeper("the differential suite's reference")
        .start_async()
        .await
        .unwrap();
    let ours = zk_server::Server::start().await.unwrap();
    let mut logs = Vec::new();
    for addr in [zk.connect_string(), ours.connect_string()] {
        // long enough that no ping comes between the requests and the words (a ping is a
        // request of its own in `cons`: lop=PING, no lcxid)
        let timeout = Duration::from_secs(30);
        let mut cs = Vec::new();
        for _ in 0..3 {
            cs.push(
                Client::builder(&addr)
                    .session_timeout(timeout)
                    .connect()
                    .await
                    .unwrap(),
            );
        }
        let sids: Vec<i64> = cs.iter().map(Client::session_id).collect();
        let (c0, c1, c2) = (&cs[0], &cs[1], &cs[2]);
        c0.create("/a", b"data", CreateMode::Persistent)
            .await
            .unwrap();
        c0.create("/a/b", b"", CreateMode::Persistent)
            .await
            .unwrap();
        c1.create("/e1", b"", CreateMode::Ephemeral).await.unwrap();
        c1.create("/e2", b"", CreateMode::Ephemeral).await.unwrap();
        c2.create("/e3", b"", CreateMode::Ephemeral).await.unwrap();
        let mut keep = Vec::new();
        keep.push(c0.get_data_watch("/a").await.unwrap().2);
        keep.push(c0.get_children_with_stat_watch("/a").await.unwrap().2);
        keep.push(c0.exists_watch("/nx").await.unwrap().1);
        keep.push(c1.get_data_watch("/a").await.unwrap().2);
        keep.push(c1.exists_watch("/a/b").await.unwrap().1);
        let p1 = c2.add_watch("/a", AddWatchMode::Persistent).await.unwrap();
        let p2 = c2
            .add_watch("/e1", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        let mut log = Vec::new();
        let sa: std::net::SocketAddr = addr.parse().unwrap();
        for word in ["cons", "wchs", "wchp", "mntr"] {
            let text = tokio::task::spawn_blocking(move || zk_testkit::four_letter(sa, word))
                .await
                .unwrap()
                .unwrap();
            if std::env::var_os("ZK_DIFF_DUMP").is_some() {
                eprintln!("{addr} {word}:\n{text}");
            }
            log.extend(fourlw_digest(word, &text, &sids));
        }
        drop((keep, p1, p2));
        for c in cs {
            c.close().await.unwrap();
        }
        logs.push(log);
    }
    assert_same("4lw", &logs[0], &logs[1]);
}

impl Raw {
    /// Sends `op` with `body` without reading anything back.
    async fn send(&mut self, op: i32, body: &[u8]) -> i32 {
        self.xid += 1;
        let mut f = RequestHeader { xid: self.xid, op }.to_bytes().to_vec();
        f.extend_from_slice(body);
        let mut out = (f.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&f);
        self.s.write_all(&out).await.unwrap();
        self.xid
    }

    /// Reads frames until the reply to `xid` (or until the connection closes): the events
    /// before it as "event Type path" (paths relative to `root`), then "reply err" or
    /// "closed".
    async fn until_reply(&mut self, xid: i32, root: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let Some(b) = self.frame().await else {
                out.push("closed".to_owned());
                return out;
            };
            let h = ReplyHeader::from_bytes(&b).unwrap();
            if h.xid == -1 {
                let e = zk_proto::WatcherEvent::from_bytes(&b[16..]).unwrap();
                let path = e.path.strip_prefix(root).unwrap_or(&e.path);
                let kind = match e.event_type {
                    1 => "NodeCreated",
                    2 => "NodeDeleted",
                    3 => "NodeDataChanged",
                    4 => "NodeChildrenChanged",
                    _ => "other",
                };
                out.push(format!("event {kind} {path:?} state {}", e.state));
            } else if h.xid == xid {
                out.push(format!("reply {}", h.err));
                return out;
            } else {
                out.push(format!("unexpected xid {} err {}", h.xid, h.err));
            }
        }
    }
}

/// Events sorted inside each run of events (ephemerals go in ZooKeeper's hash-set order),
/// the replies and the close where they came.
fn events_sorted_in_runs(v: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for l in v {
        if l.starts_with("event ") {
            run.push(l);
        } else {
            run.sort();
            out.append(&mut run);
            out.push(l);
        }
    }
    run.sort();
    out.append(&mut run);
    out
}

async fn close_session_transcript(addr: &str, root: &str) -> Vec<String> {
    let path_watch =
        |path: String, watch: bool| zk_proto::PathWatchRequest { path, watch }.to_bytes();
    let mut log = Vec::new();
    let (mut a, resp) = Raw::connect(addr).await;
    let (mut b, _) = Raw::connect(addr).await;
    let (e, _) = a.call(1, &create_body(root, Some(b""), 0)).await.unwrap();
    log.push(format!("create root {e}"));
    for (name, flags) in [("e1", 1), ("e2", 1), ("p", 0), ("e3", 1)] {
        let (e, _) = a
            .call(1, &create_body(&format!("{root}/{name}"), Some(b""), flags))
            .await
            .unwrap();
        log.push(format!("create {name} flags {flags}: {e}"));
    }
    // the closing session's own watches: on its ephemerals, on the parent, on a node that
    // stays, on one that does not exist
    for (what, op, path) in [
        ("exists e1", 3, format!("{root}/e1")),
        ("getData e2", 4, format!("{root}/e2")),
        ("getChildren root", 8, root.to_owned()),
        ("getData p", 4, format!("{root}/p")),
        ("exists nx", 3, format!("{root}/nx")),
    ] {
        let (e, _) = a.call(op, &path_watch(path, true)).await.unwrap();
        log.push(format!("a {what} watch: {e}"));
    }
    // another session's watches on the ephemerals and their parent
    for (what, op, path) in [
        ("exists e1", 3, format!("{root}/e1")),
        ("getData e3", 4, format!("{root}/e3")),
        ("getChildren root", 8, root.to_owned()),
        ("getData p", 4, format!("{root}/p")),
    ] {
        let (e, _) = b.call(op, &path_watch(path, true)).await.unwrap();
        log.push(format!("b {what} watch: {e}"));
    }
    // closeSession: what the closing connection receives, up to its reply and the close
    let xid = a.send(-11, &[]).await;
    for l in events_sorted_in_runs(a.until_reply(xid, root).await) {
        log.push(format!("a at close: {l}"));
    }
    log.push(format!(
        "a closed after the reply: {}",
        a.frame().await.is_none()
    ));
    // what the other session received by its next reply
    let xid = b.send(8, &path_watch(root.to_owned(), false)).await;
    for l in events_sorted_in_runs(b.until_reply(xid, root).await) {
        log.push(format!("b: {l}"));
    }
    let (_, again) = Raw::connect_with(addr, resp.session_id, &resp.passwd, 10_000).await;
    log.push(format!(
        "a re-attach after close: timeout {}",
        again.timeout_ms
    ));
    log
}

/// closeSession: the events its own connection receives (its watches on its ephemerals fire
/// before the reply, then the connection closes) and those other sessions' watches on its
/// ephemerals and their parent receive.
#[tokio::test(flavor = "multi_thread")]
async fn diff_close_session_events_to_itself_and_others() {
    diff_on_shared("close", close_session_transcript).await;
}

/// `wchp` (the recipes' tests wait for a watch with it): the same paths with the same watching
/// sessions: getData / exists (also on a missing node) and persistent / recursive watches are
/// listed, getChildren watches are not (ZooKeeper dumps its data-watch table only).
#[tokio::test(flavor = "multi_thread")]
async fn diff_wchp_lists_data_watches_by_path() {
    let zk = zk_testkit::shared_zookeeper();
    let ours = zk_server::Server::start().await.unwrap();
    let mut logs = Vec::new();
    for addr in [zk.connect_string(), ours.connect_string()] {
        let prefix = format!("/wchp-{}", rand::random::<u64>());
        let a = Client::connect(&addr).await.unwrap();
        let b = Client::connect(&addr).await.unwrap();
        let label = |sid: i64| {
            if sid == a.session_id() {
                "A"
            } else if sid == b.session_id() {
                "B"
            } else {
                "other"
            }
        };
        a.create(&prefix, b"", CreateMode::Persistent)
            .await
            .unwrap();
        for child in ["b", "c", "d"] {
            a.create(&format!("{prefix}/{child}"), b"", CreateMode::Persistent)
                .await
                .unwrap();
        }
        let _w1 = a.exists_watch(&format!("{prefix}/missing")).await.unwrap();
        let _w2 = a.get_data_watch(&format!("{prefix}/b")).await.unwrap();
        let _w3 = b.get_data_watch(&format!("{prefix}/b")).await.unwrap();
        let _w4 = b.get_children_watch(&prefix).await.unwrap();
        let _w5 = a
            .add_watch(&format!("{prefix}/c"), AddWatchMode::Persistent)
            .await
            .unwrap();
        let _w6 = b
            .add_watch(&format!("{prefix}/d"), AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        let sa: std::net::SocketAddr = addr.parse().unwrap();
        let wchp = tokio::task::spawn_blocking(move || zk_testkit::four_letter(sa, "wchp"))
            .await
            .unwrap()
            .unwrap();
        // path -> sorted watchers, for our prefix only (the shared ZooKeeper serves others)
        let mut by_path: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
        let mut current: Option<String> = None;
        for line in wchp.lines() {
            if let Some(sid) = line.strip_prefix("\t0x") {
                let sid = i64::from_str_radix(sid, 16)
                    .unwrap_or_else(|_| u64::from_str_radix(sid, 16).map(|v| v as i64).unwrap());
                if let Some(p) = current.as_ref().filter(|p| p.starts_with(&prefix)) {
                    by_path.entry(p.clone()).or_default().push(label(sid));
                }
            } else {
                current = Some(line.to_owned());
            }
        }
        let mut log = Vec::new();
        for (path, mut who) in by_path {
            who.sort_unstable();
            log.push(format!("{} {who:?}", &path[prefix.len()..]));
        }
        a.close().await.unwrap();
        b.close().await.unwrap();
        logs.push(log);
    }
    ours.stop().await;
    assert_same("wchp", &logs[0], &logs[1]);
}

// ------------------------------------------------------------------- review 14: raw edges

fn path_body(path: &str) -> Vec<u8> {
    zk_proto::PathRecord { path: path.into() }
        .to_bytes()
        .to_vec()
}

fn path_watch_body(path: &str, watch: bool) -> Vec<u8> {
    zk_proto::PathWatchRequest {
        path: path.into(),
        watch,
    }
    .to_bytes()
    .to_vec()
}

fn create_acl_body(path: &str, perms: i32, scheme: &str, id: &str) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    let mut w = zk_proto::Writer::new(&mut b);
    w.string(path).buffer(b"").i32(1).i32(perms);
    w.string(scheme).string(id).i32(0);
    b.to_vec()
}

fn auth_frame(xid: i32, scheme: &str, cred: &[u8]) -> Vec<u8> {
    let mut b = RequestHeader { xid, op: 100 }.to_bytes().to_vec();
    b.extend_from_slice(
        &zk_proto::AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: cred.to_vec(),
        }
        .to_bytes(),
    );
    let mut f = (b.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&b);
    f
}

/// `lop` of session `sid` in `cons`.
async fn last_op(addr: &str, sid: i64) -> String {
    let cons =
        zk_testkit::four_letter_async(addr.parse().unwrap(), "cons", Duration::from_secs(10))
            .await
            .unwrap();
    let line = cons
        .lines()
        .find(|l| l.contains(&format!("sid={sid:#x},")))
        .unwrap_or_default()
        .to_owned();
    line.split(',')
        .find_map(|kv| kv.strip_prefix("lop="))
        .unwrap_or("?")
        .to_owned()
}

async fn edges_transcript(addr: &str, root: &str) -> Vec<String> {
    let (mut r, _) = Raw::connect(addr).await;
    let mut log = Vec::new();
    let e = |x: Option<(i32, Vec<u8>)>| x.map_or("closed".to_owned(), |(e, _)| e.to_string());
    log.push(format!(
        "create root {}",
        e(r.call(1, &create_body(root, None, 0)).await)
    ));
    // a request body that does not decode: MARSHALLINGERROR, and the connection stays
    let cut_create = {
        let mut b = path_body(&format!("{root}/cut"));
        b.extend_from_slice(&[0, 0]);
        b
    };
    for (what, op, body) in [
        ("getData", 4, vec![0u8, 0]),
        ("create", 1, cut_create),
        ("multi", 14, vec![0, 0, 0, 1, 0]),
    ] {
        let got = e(r.call(op, &body).await);
        let open = e(r.call(3, &path_watch_body(root, false)).await);
        log.push(format!("truncated {what}: {got}, then exists: {open}"));
        if open == "closed" {
            r = Raw::connect(addr).await.0;
        }
    }
    // paths a client library would refuse
    log.push(format!(
        "exists with a NUL: {}",
        e(r.call(3, &path_watch_body(&format!("{root}/a\0b"), false))
            .await)
    ));
    for (what, op) in [
        ("exists", 3),
        ("getData", 4),
        ("getChildren", 8),
        ("getChildren2", 12),
    ] {
        log.push(format!(
            "{what} \"\": {}",
            e(r.call(op, &path_watch_body("", false)).await)
        ));
    }
    for (what, op) in [("getACL", 6), ("getAllChildrenNumber", 104)] {
        log.push(format!(
            "{what} \"\": {}",
            e(r.call(op, &path_body("")).await)
        ));
    }
    // a watch on "" is set and can be removed, but checkWatches never finds it (3.8.0's
    // containsWatcher walks the path's parents from the path itself, and "" has none)
    let (mut w, _) = Raw::connect(addr).await;
    w.call(4, &path_watch_body("", true)).await.unwrap();
    let pm = |mode| {
        zk_proto::PathModeRequest {
            path: String::new(),
            mode,
        }
        .to_bytes()
    };
    log.push(format!(
        "checkWatches \"\" after getData \"\" with a watch: {}, removeWatches: {}",
        e(w.call(17, &pm(2)).await),
        e(w.call(18, &pm(2)).await)
    ));
    // getEphemerals: a blank prefix, or "/" with blanks around it, lists them all
    let (mut g, _) = Raw::connect(addr).await;
    g.call(1, &create_body(&format!("{root}/eph"), Some(b""), 1))
        .await
        .unwrap();
    for prefix in ["  ", " / ", "\t", "", "/"] {
        let got = g.call(103, &path_body(prefix)).await.map(|(e, b)| {
            let names = zk_proto::StringsResponse::from_bytes(&b).map(|r| r.items.len());
            (e, names)
        });
        log.push(format!("getEphemerals {prefix:?}: {got:?}"));
    }
    drop(g);
    // addWatch with a mode 3.8 does not know
    for mode in [2, -1] {
        let body = zk_proto::PathModeRequest {
            path: root.into(),
            mode,
        }
        .to_bytes();
        log.push(format!(
            "addWatch mode {mode}: {}",
            e(r.call(106, &body).await)
        ));
    }
    // digest ACL ids: `user:digest`, as Java's split(":") counts the parts
    for (i, id) in ["u:", "a:b:", ":", ":p", "a:b::", "a:b:c", "u"]
        .iter()
        .enumerate()
    {
        let body = create_acl_body(&format!("{root}/digest{i}"), 31, "digest", id);
        log.push(format!(
            "digest ACL id {id:?}: {}",
            e(r.call(1, &body).await)
        ));
    }
    // ip ids are read with Java's Integer.parseInt: a sign is allowed ("-0" is 0)
    for (i, id) in ["127.0.0.-0", "127.0.0.1/-0", "+127.0.0.1", "127.0.0.1/+32"]
        .iter()
        .enumerate()
    {
        let p = format!("{root}/ip{i}");
        let made = e(r.call(1, &create_acl_body(&p, 31, "ip", id)).await);
        let read = e(r.call(4, &path_watch_body(&p, false)).await);
        log.push(format!("ip ACL id {id:?}: create {made}, getData {read}"));
    }
    // perms outside 0..31 are kept as given
    for perms in [0, 32, -1, 95] {
        let p = format!("{root}/perms{}", perms & 0xff);
        let made = e(r
            .call(1, &create_acl_body(&p, perms, "world", "anyone"))
            .await);
        let acl = r.call(6, &path_body(&p)).await;
        let read = e(r.call(4, &path_watch_body(&p, false)).await);
        log.push(format!(
            "perms {perms}: create {made}, getACL {:?}, getData {read}",
            acl.map(|(e, b)| (e, b.get(..8).map(<[u8]>::to_vec)))
        ));
    }
    // multiRead of a node with null data: null, as getData answers
    let null = format!("{root}/null");
    r.call(1, &create_body(&null, None, 0)).await.unwrap();
    let mut m = bytes::BytesMut::new();
    {
        let mut w = zk_proto::Writer::new(&mut m);
        zk_proto::MultiHeader {
            op: 4,
            done: false,
            err: -1,
        }
        .write(&mut w);
        w.string(&null).bool(false);
        zk_proto::MultiHeader::END.write(&mut w);
    }
    let got = r.call(22, &m).await.map(|(e, b)| (e, b[..13].to_vec()));
    log.push(format!("multiRead of null data: {got:?}"));
    // a container flag on create / create2 makes a persistent node (only createContainer
    // makes a container): emptied, it outlives an emptied container
    // and createContainer makes a container whatever the (non-TTL) flags say
    async fn emptied(r: &mut Raw, op: i32, c: &str, flags: i32) -> Option<(i32, Vec<u8>)> {
        let made = r.call(op, &create_body(c, Some(b""), flags)).await;
        r.call(1, &create_body(&format!("{c}/x"), Some(b""), 0))
            .await
            .unwrap();
        let body = PathVersionRequest {
            path: format!("{c}/x"),
            version: -1,
        }
        .to_bytes();
        r.call(2, &body).await.unwrap();
        made
    }
    async fn wait_gone(r: &mut Raw, c: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while r.call(3, &path_watch_body(c, false)).await.unwrap().0 == 0 {
            assert!(std::time::Instant::now() < deadline, "{c} never reaped");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for (op, name, flags) in [
        (1, "c1", 4),
        (15, "c15", 4),
        (19, "c19f0", 0),
        (19, "c19f1", 1),
        (19, "c19", 4),
    ] {
        let made = e(emptied(&mut r, op, &format!("{root}/{name}"), flags).await);
        log.push(format!("op {op} with flags {flags}: {made}"));
    }
    for name in ["c19f0", "c19f1", "c19"] {
        wait_gone(&mut r, &format!("{root}/{name}")).await;
    }
    // a container emptied now is reaped by a later pass than the one that took those: once
    // it is gone, c1 and c15 would be too, were they containers
    let late = format!("{root}/c19-late");
    emptied(&mut r, 19, &late, 4).await.unwrap();
    wait_gone(&mut r, &late).await;
    for name in ["c1", "c15"] {
        let got = e(r
            .call(3, &path_watch_body(&format!("{root}/{name}"), false))
            .await);
        log.push(format!("{name} once later containers are reaped: {got}"));
    }
    // deleteContainer (20) from a client: refused (ZooKeeper reads its path from the whole
    // packet, header included), the connection stays
    let dc = format!("{root}/dc");
    r.call(1, &create_body(&dc, Some(b""), 0)).await.unwrap();
    let got = e(r.call(20, dc.as_bytes()).await);
    let still = e(r.call(3, &path_watch_body(&dc, false)).await);
    log.push(format!("deleteContainer: {got}, then exists: {still}"));
    // which requests take a zxid of their own: the reply's zxid after a read's
    {
        let mut zxid_of = Vec::new();
        for (what, op, body) in [
            ("getData", 4, path_watch_body(root, false)),
            ("reconfig", 16, {
                let mut b = bytes::BytesMut::new();
                zk_proto::Writer::new(&mut b)
                    .string("")
                    .string("")
                    .string("")
                    .i64(-1);
                b.to_vec()
            }),
            ("getData", 4, path_watch_body(root, false)),
        ] {
            assert!(r.push(op, &body).await);
            let h = ReplyHeader::from_bytes(&r.frame().await.unwrap()).unwrap();
            zxid_of.push((what, h.err, h.zxid));
        }
        let base = zxid_of[0].2;
        let rel: Vec<_> = zxid_of.iter().map(|(w, e, z)| (*w, *e, z - base)).collect();
        log.push(format!("reply zxids after a read: {rel:?}"));
    }
    // createSession (-10) from a client: MARSHALLINGERROR, the connection stays; sasl (102)
    // on a server without SASL: OK with a null token
    let got = r.call(-10, &[]).await;
    log.push(format!("createSession from a client: {got:?}"));
    if got.is_none() {
        r = Raw::connect(addr).await.0;
    }
    let token = zk_proto::SaslToken {
        token: b"abc".to_vec(),
    }
    .to_bytes();
    assert!(r.push(102, &token).await);
    let got = r.frame().await.map(|b| {
        let h = ReplyHeader::from_bytes(&b).unwrap();
        (h.xid == r.xid, h.zxid, h.err, b[16..].to_vec())
    });
    log.push(format!(
        "sasl without SASL (its xid, zxid, err, body): {got:?}"
    ));
    if got.is_none() {
        r = Raw::connect(addr).await.0;
    }
    // requests sent right behind one that closes the connection: applied after an unknown
    // opcode, not after a failed auth or a closeSession
    for (what, first) in [
        (
            "op 99",
            RequestHeader { xid: 1, op: 99 }.to_bytes().to_vec(),
        ),
        (
            "closeSession",
            RequestHeader { xid: 1, op: -11 }.to_bytes().to_vec(),
        ),
        (
            "a failed auth",
            auth_frame(-4, "nosuch", b"x")[4..].to_vec(),
        ),
    ] {
        let (mut p, _) = Raw::connect(addr).await;
        let name = format!("{root}/after-{}", what.replace(' ', "-"));
        let mut next = RequestHeader { xid: 2, op: 1 }.to_bytes().to_vec();
        next.extend_from_slice(&create_body(&name, Some(b""), 0));
        let mut out = Vec::new();
        for f in [first, next] {
            out.extend_from_slice(&(f.len() as i32).to_be_bytes());
            out.extend_from_slice(&f);
        }
        p.s.write_all(&out).await.unwrap();
        let mut got = Vec::new();
        while let Some(b) = p.frame().await {
            let h = ReplyHeader::from_bytes(&b).unwrap();
            got.push((h.xid, h.err));
        }
        // (whether the create is answered before the close is a race on ZooKeeper)
        let made = e(r.call(3, &path_watch_body(&name, false)).await);
        log.push(format!(
            "a create right behind {what}: first reply {:?}, exists {made}",
            got.first()
        ));
    }
    // cons' lop for each request kind
    let (mut s, resp) = Raw::connect(addr).await;
    let sw2 = {
        let mut b = bytes::BytesMut::new();
        let mut w = zk_proto::Writer::new(&mut b);
        w.i64(0).i32(0).i32(0).i32(0).i32(0).i32(0);
        b.to_vec()
    };
    for (what, op, body) in [
        ("getACL", 6, path_body(root)),
        ("setWatches2", 105, sw2),
        ("getEphemerals", 103, path_body("/")),
    ] {
        s.call(op, &body).await.unwrap();
        log.push(format!(
            "lop after {what}: {}",
            last_op(addr, resp.session_id).await
        ));
    }
    // auth: digest credentials without a colon are a user of that name; the reply carries the
    // request's xid
    let (mut a, _) = Raw::connect(addr).await;
    let _ = a.s.write_all(&auth_frame(-4, "digest", b"nocolon")).await;
    let h = a
        .frame()
        .await
        .map(|b| ReplyHeader::from_bytes(&b).unwrap());
    log.push(format!("auth digest without a colon: {h:?}"));
    // (identities in hash-set order on ZooKeeper: compared sorted)
    let who = a.call(107, &[]).await.map(|(e, b)| {
        let mut ids: Vec<String> = zk_proto::WhoAmIResponse::from_bytes(&b)
            .unwrap()
            .client_info
            .into_iter()
            .map(|c| format!("{}:{}", c.auth_scheme, c.user))
            .collect();
        ids.sort();
        (e, ids)
    });
    log.push(format!("whoAmI after it: {who:?}"));
    let p = format!("{root}/authacl");
    let made = e(a.call(1, &create_acl_body(&p, 31, "auth", "")).await);
    let acl = a.call(6, &path_body(&p)).await.map(|(e, b)| {
        let acl = zk_proto::GetAclResponse::from_bytes(&b).map(|r| r.acl);
        (e, acl)
    });
    log.push(format!("auth ACL: {made} {acl:?}"));
    // ZooKeeper removes duplicate entries before it expands `auth` ones, not after
    let dup = {
        let mut b = bytes::BytesMut::new();
        let mut w = zk_proto::Writer::new(&mut b);
        w.string(&format!("{root}/dup-acl")).buffer(b"").i32(3);
        for (scheme, id) in [
            ("auth", ""),
            ("auth", "any"),
            ("digest", zk_proto::digest_of_credential("nocolon").as_str()),
        ] {
            w.i32(31).string(scheme).string(id);
        }
        w.i32(0);
        b.to_vec()
    };
    let made = e(a.call(1, &dup).await);
    let acl = a
        .call(6, &path_body(&format!("{root}/dup-acl")))
        .await
        .map(|(e, b)| {
            (
                e,
                zk_proto::GetAclResponse::from_bytes(&b).map(|r| r.acl.len()),
            )
        });
    log.push(format!(
        "auth, auth and the same digest id: {made}, entries {acl:?}"
    ));
    let _ = a.s.write_all(&auth_frame(7, "digest", b"u:p")).await;
    let h = a
        .frame()
        .await
        .map(|b| ReplyHeader::from_bytes(&b).unwrap());
    log.push(format!("auth with xid 7: {h:?}"));
    log
}

/// Raw-wire edges found by review 14, compared with ZooKeeper: undecodable bodies, paths a
/// client library refuses, addWatch modes, digest ACL ids, perms, multiRead of null data, the
/// container flag on create / create2, deleteContainer, `cons`' lop names, auth details.
#[tokio::test(flavor = "multi_thread")]
async fn diff_raw_wire_edges() {
    diff_on_shared("edges", edges_transcript).await;
}

async fn alive_connections(addr: &str) -> String {
    let mntr =
        zk_testkit::four_letter_async(addr.parse().unwrap(), "mntr", Duration::from_secs(10))
            .await
            .unwrap();
    mntr.lines()
        .find_map(|l| l.strip_prefix("zk_num_alive_connections\t"))
        .unwrap_or("?")
        .to_owned()
}

async fn not_reading_transcript(addr: &str, root: &str) -> Vec<String> {
    let mut log = Vec::new();
    let (mut admin, _) = Raw::connect(addr).await;
    admin.call(1, &create_body(root, None, 0)).await.unwrap();
    let big = format!("{root}/big");
    admin
        .call(1, &create_body(&big, Some(&vec![b'x'; 1_000_000]), 0))
        .await
        .unwrap();
    let baseline = alive_connections(addr).await;
    // a session (timeout 1 s) that sets a watch and asks for 30 MB of replies, never reading
    let (mut slow, resp) = Raw::connect_small_buffer(addr, 1000).await;
    log.push(format!("slow session timeout {}", resp.timeout_ms));
    let eph = format!("{root}/eph");
    slow.call(1, &create_body(&eph, Some(b""), 1))
        .await
        .unwrap();
    let watch = zk_proto::PathModeRequest {
        path: root.into(),
        mode: 1,
    }
    .to_bytes();
    assert!(slow.push(106, &watch).await);
    for _ in 0..30 {
        assert!(slow.push(4, &path_watch_body(&big, false)).await);
    }
    // it keeps pinging (without reading) for four timeouts: its session lives on
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < until {
        slow.send_xid(-2, 11, &[]).await;
        admin.call(3, &path_watch_body(root, false)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let alive = admin
        .call(3, &path_watch_body(&eph, false))
        .await
        .unwrap()
        .0;
    log.push(format!("its ephemeral after 4 s of pings: {alive}"));
    // then it goes silent: its session expires, and its connection is closed although
    // replies are still waiting for it
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while admin
        .call(3, &path_watch_body(&eph, false))
        .await
        .unwrap()
        .0
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the silent session never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    log.push("its ephemeral is gone".into());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let closed = loop {
        if alive_connections(addr).await == baseline {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        admin.call(3, &path_watch_body(root, false)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    log.push(format!("its connection closed after expiry: {closed}"));
    drop(slow);
    log
}

/// A client that does not read its replies (a full socket): ZooKeeper keeps reading its
/// requests (pings keep the session), and closes its connection when the session expires,
/// whatever is still queued for it.
#[tokio::test(flavor = "multi_thread")]
async fn diff_a_client_that_does_not_read() {
    let zk = zk_testkit::ZkServer::builder()
        .real_zookeeper("the differential suite's reference")
        .tick_time(500)
        .start_async()
        .await
        .expect("start ZooKeeper");
    let ours = zk_server::Server::builder()
        .tick_time(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    let root = unique("noread");
    let a = not_reading_transcript(&zk.connect_string(), &root).await;
    let b = not_reading_transcript(&ours.connect_string(), &root).await;
    assert_same("noread", &a, &b);
}

async fn four(addr: &str, word: &str) -> String {
    zk_testkit::four_letter_async(addr.parse().unwrap(), word, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| format!("<{e}>"))
}

async fn more_words_transcript(addr: &str) -> Vec<String> {
    let mut log = vec![format!("wchp, no watches: {:?}", four(addr, "wchp").await)];
    let (mut r, resp) = Raw::connect(addr).await;
    r.call(4, &path_watch_body("/zookeeper", true))
        .await
        .unwrap();
    r.call(3, &path_watch_body("/nope", true)).await.unwrap();
    r.call(8, &path_watch_body("/", true)).await.unwrap();
    for word in ["crst", "srst", "gtmk"] {
        log.push(format!("{word}: {:?}", four(addr, word).await));
    }
    // dump: sessions by expiry bucket, then each session's ephemerals, then connections
    let (mut e2, resp2) = Raw::connect(addr).await;
    for name in ["/dump-b", "/dump-a"] {
        e2.call(1, &create_body(name, Some(b""), 1)).await.unwrap();
    }
    let dump = four(addr, "dump").await;
    let mut shape = Vec::new();
    let mut eph_section = false;
    for line in dump.lines() {
        let who = |hex: &str| match i64::from_str_radix(hex.trim_end_matches(':'), 16) {
            Ok(v) if v == resp.session_id => "s0",
            Ok(v) if v == resp2.session_id => "s1",
            _ => "other",
        };
        if line.starts_with("ephemeral nodes dump") {
            eph_section = true;
        }
        if line.starts_with("Connections dump") {
            eph_section = false;
        }
        if let Some(hex) = line.strip_prefix("\t0x") {
            shape.push(format!("  session {}", who(hex)));
        } else if let Some(hex) = line.strip_prefix("0x") {
            shape.push(format!("  ephemerals of {}", who(hex)));
        } else if eph_section && line.starts_with('\t') {
            shape.push(format!("    {}", line.trim()));
        } else if line.contains(" expire at ") {
            shape.push("  bucket".into());
        } else if !line.starts_with('\t') {
            shape.push(line.split(" (").next().unwrap_or("").to_owned());
        }
    }
    // (bucket counts follow the clock, and sessions and paths come in hash-set order on
    // ZooKeeper: buckets are left out, runs of sessions and of paths sorted)
    shape.retain(|l| l != "  bucket");
    let mut i = 0;
    while i < shape.len() {
        let kind = |l: &str| l.starts_with("  session ") || l.starts_with("    /");
        let start = i;
        while i < shape.len() && kind(&shape[i]) && shape[i][..6] == shape[start][..6] {
            i += 1;
        }
        shape[start..i].sort();
        i = i.max(start + 1);
    }
    log.push(format!("dump: {shape:?}"));
    drop(e2);
    // srvr's Received / Sent count packets, a four-letter word as one each way
    let counts = |t: String| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("Received") || l.starts_with("Sent"))
            .map(str::to_owned)
            .collect()
    };
    four(addr, "srst").await;
    log.push(format!(
        "srvr after srst: {:?}",
        counts(four(addr, "srvr").await)
    ));
    let (mut x, _) = Raw::connect(addr).await;
    x.call(3, &path_watch_body("/", false)).await.unwrap();
    drop(x);
    log.push(format!(
        "srvr after a session's exists: {:?}",
        counts(four(addr, "srvr").await)
    ));
    // stmk: the word and a long, the new trace mask; answered with it, gtmk then gives it
    for mask in [1i64, 306] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut req = b"stmk".to_vec();
        req.extend_from_slice(&mask.to_be_bytes());
        s.write_all(&req).await.unwrap();
        let mut answer = String::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer));
        let _ = read.await;
        log.push(format!(
            "stmk {mask}: {answer:?}, then gtmk: {:?}",
            four(addr, "gtmk").await
        ));
    }
    let conf = four(addr, "conf").await;
    let keys: Vec<&str> = conf
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    log.push(format!("conf keys: {keys:?}"));
    let dirs = four(addr, "dirs").await;
    let keys: Vec<&str> = dirs
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, _)| k)
        .collect();
    log.push(format!("dirs: {keys:?}"));
    // wchc: per session its data-table paths (hash-set order on ZooKeeper: sorted here)
    let wchc = four(addr, "wchc").await;
    let mut blocks: Vec<String> = Vec::new();
    for line in wchc.lines() {
        if let Some(p) = line.strip_prefix('\t') {
            let last = blocks.last_mut().expect("a session line first");
            last.push(' ');
            last.push_str(p);
        } else if let Some(hex) = line.strip_prefix("0x") {
            let sid = i64::from_str_radix(hex, 16).unwrap();
            blocks.push(if sid == resp.session_id {
                "s0".into()
            } else {
                "other".into()
            });
        }
    }
    let blocks: Vec<String> = blocks
        .into_iter()
        .map(|b| {
            let mut parts: Vec<&str> = b.split(' ').collect();
            parts[1..].sort();
            parts.join(" ")
        })
        .collect();
    log.push(format!(
        "wchc: {blocks:?}, ends with a blank line: {}",
        wchc.ends_with("\n\n")
    ));
    log
}

/// The four-letter words ZooKeeper 3.8 knows beyond those `diff_four_letter_words_*`
/// compare: `crst`, `srst`, `gtmk`, `dirs`, `wchc` (and `wchp` with no watches).
#[tokio::test(flavor = "multi_thread")]
async fn diff_more_four_letter_words() {
    let zk = zk_testkit::ZkServer::builder()
        .real_zookeeper("the differential suite's reference")
        .start_async()
        .await
        .unwrap();
    let ours = zk_server::Server::start().await.unwrap();
    let a = more_words_transcript(&zk.connect_string()).await;
    let b = more_words_transcript(&ours.connect_string()).await;
    assert_same("4lw more", &a, &b);
}
