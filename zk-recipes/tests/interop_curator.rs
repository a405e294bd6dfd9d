//! Rust contenders and real Apache Curator 5.4 contenders (Java, Debian's
//! `libcurator-recipes-java`, installed by `scripts/setup.sh`) on the same paths, with
//! [`Layout::Curator`]: `InterProcessMutex`, `InterProcessReadWriteLock`,
//! `InterProcessSemaphoreV2` and `LeaderLatch`. The worker is `tests/java/CuratorWorker.java`,
//! compiled once per test run. The critical-section checker (marker files, `common::critical`)
//! is shared by both sides: no exclusion violation on either side, and each side sees the
//! other's contenders in its own participant listing. Curator's own recipes too, against our
//! reimplementations: `InterProcessMultiLock`, `DistributedAtomicLong` (with `PromotedToLock`),
//! `GroupMember`, `PersistentTtlNode` / `PersistentNode`, and curator-x-discovery's
//! `ServiceDiscovery` (Debian's `libcurator-discovery-java`).

mod common;

use common::critical::{collect, contender, critical, saw, CsDir, RustContender};
use common::{bounded, shared_client, unique};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use zk_recipes::{
    DistributedAtomicLong, Election, GroupMember, Layout, Lock, MultiLock, PersistentNode,
    PersistentTtlNode, ReadLock, RunOutcome, Semaphore, ServiceDiscovery, ServiceInstance,
    WriteLock,
};

/// Rounds of every Java worker; the Rust contenders go on until the Java workers are done.
const JAVA_ROUNDS: usize = 12;
/// The least number of rounds of every Rust contender.
const RUST_ROUNDS: usize = 12;

/// The jars of Curator 5.4 and what it needs (Debian's `/usr/share/java`; Debian's
/// `zookeeper.jar` names its own dependencies in its manifest).
fn classpath() -> String {
    let dir = "/usr/share/java";
    let jars = [
        "curator-recipes",
        "curator-framework",
        "curator-client",
        "curator-x-discovery",
        "jackson-annotations",
        "jackson-core",
        "jackson-databind",
        "zookeeper",
        "zookeeper-jute",
        "guava",
        "slf4j-api",
        "slf4j-nop",
    ];
    let paths: Vec<String> = jars.iter().map(|j| format!("{dir}/{j}.jar")).collect();
    for p in &paths {
        assert!(
            std::path::Path::new(p).is_file(),
            "{p} is missing: the Curator interop tests need Debian's libcurator-recipes-java \
             and libcurator-discovery-java (run scripts/setup.sh)"
        );
    }
    paths.join(":")
}

/// The directory with the compiled `CuratorWorker` (compiled once per test process).
fn worker_classes() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("curator-worker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let src = format!(
            "{}/tests/java/CuratorWorker.java",
            env!("CARGO_MANIFEST_DIR")
        );
        let status = std::process::Command::new("javac")
            .arg("-d")
            .arg(&out)
            .args(["-cp", &classpath(), &src])
            .status()
            .expect("javac runs (a JDK is needed: run scripts/setup.sh)");
        assert!(status.success(), "javac {src} failed: {status}");
        out
    })
}

/// Starts `java CuratorWorker <args>` with piped stdout; killed when dropped.
fn java(args: &[&str]) -> tokio::process::Child {
    let cp = format!("{}:{}", worker_classes().display(), classpath());
    tokio::process::Command::new("java")
        .args(["-cp", &cp, "CuratorWorker"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start java")
}

/// What a mixed run saw: every Rust round's contenders list, every Java round's.
struct Seen {
    rust: Vec<Vec<String>>,
    java: Vec<Vec<String>>,
}

impl Seen {
    /// Both sides saw the other's contenders; prints the figures.
    fn check(&self, what: &str, rust_contenders: usize, java_contenders: usize) {
        assert!(
            saw(&self.rust, "java-"),
            "{what}: Rust never saw a Curator contender"
        );
        assert!(
            saw(&self.java, "rs-"),
            "{what}: Curator never saw a Rust contender"
        );
        eprintln!(
            "{what} interop: {rust_contenders} Rust contenders ({} rounds) + {java_contenders} \
             Curator contenders ({} rounds), 0 violations",
            self.rust.len(),
            self.java.len()
        );
    }
}

/// Runs the Rust contenders and Java workers `java` (kind, id) on `path` together, until the
/// Java workers are done; fails on any violation either side reports.
async fn mixed(
    java_workers: Vec<(&'static str, String)>,
    path: &str,
    dir: &CsDir,
    max: Option<usize>,
    rust: Vec<RustContender>,
    java_done: Arc<AtomicBool>,
) -> Seen {
    let hosts = zk_testkit::shared_server().connect_string();
    let rounds = JAVA_ROUNDS.to_string();
    let max = max.map(|m| m.to_string());
    let mut tasks = Vec::new();
    for (kind, id) in &java_workers {
        let mut args = vec![
            hosts.as_str(),
            *kind,
            path,
            id.as_str(),
            &rounds,
            dir.path(),
        ];
        if let Some(m) = &max {
            args.push(m);
        }
        tasks.push(tokio::spawn(collect("Curator worker", java(&args))));
    }
    let mut java_seen = Vec::new();
    for t in tasks {
        let (seen, violations, done) = bounded("Curator worker", t).await.unwrap();
        assert!(violations.is_empty(), "Curator side: {violations:?}");
        assert!(done, "a Curator worker did not finish");
        java_seen.extend(seen);
    }
    java_done.store(true, Ordering::SeqCst);
    let mut rust_seen = Vec::new();
    for t in rust {
        let (seen, violations) = bounded("Rust contender", t).await.unwrap();
        assert!(violations.is_empty(), "Rust side: {violations:?}");
        rust_seen.extend(seen);
    }
    Seen {
        rust: rust_seen,
        java: java_seen,
    }
}

/// Whether `name` is a protected Curator name `_c_<uuid 8-4-4-4-12>-<lock_name><10 digits>`.
fn is_curator_name(name: &str, lock_name: &str) -> bool {
    let Some(rest) = name.strip_prefix("_c_") else {
        return false;
    };
    let (uuid, tail) = rest.split_at(36.min(rest.len()));
    uuid::Uuid::parse_str(uuid).is_ok()
        && uuid.chars().filter(|c| *c == '-').count() == 4
        && tail
            .strip_prefix('-')
            .and_then(|t| t.strip_prefix(lock_name))
            .is_some_and(|seq| seq.len() == 10 && seq.bytes().all(|b| b.is_ascii_digit()))
}

/// The name of a Rust contender's node, checked while it is held: the protected name.
fn assert_curator_node(node: &str, lock_name: &str) {
    let name = node.rsplit('/').next().unwrap();
    assert!(
        is_curator_name(name, lock_name),
        "{node} is not a Curator `{lock_name}` node"
    );
}

/// Waits (bounded) until `path` is gone: the server reaps an emptied container (the test
/// servers check every second; clients see a container's ephemeral owner as 0, so this is how
/// a test tells one).
async fn wait_reaped(c: &zk_core::Client, path: &str) {
    let (c, p) = (c.clone(), path.to_owned());
    common::eventually(&format!("{path} reaped as an empty container"), || {
        let (c, p) = (c.clone(), p.clone());
        async move { c.exists(&p).await.unwrap().is_none() }
    })
    .await;
}

/// Parents are containers: once the last contender is gone the server deletes them; and a
/// handle whose parent was reaped meanwhile creates it again (its create finds `NoNode`).
#[tokio::test(flavor = "multi_thread")]
async fn curator_parents_are_containers_and_come_back() {
    let c = shared_client().await;
    let base = unique("ccont");
    let lock = Lock::new(&c, &format!("{base}/a/lock"), "rs").layout(Layout::Curator);
    let read = ReadLock::new(&c, &format!("{base}/b/rw"), "rs").layout(Layout::Curator);
    let sem = Semaphore::new(&c, &format!("{base}/c/sem"), "rs", 1)
        .unwrap()
        .layout(Layout::Curator);
    let elect = Election::new(&c, &format!("{base}/d/latch"), "rs").layout(Layout::Curator);
    for round in 0..2 {
        let g = bounded("lock", lock.acquire()).await.unwrap();
        assert_curator_node(g.path(), "lock-");
        g.release().await.unwrap();
        let g = bounded("read lock", read.acquire()).await.unwrap();
        assert_curator_node(g.path(), "__READ__");
        g.release().await.unwrap();
        let g = bounded("semaphore", sem.acquire()).await.unwrap();
        assert!(g.path().starts_with(&format!("{base}/c/sem/leases/")));
        assert_curator_node(g.path(), "lease-");
        g.release().await.unwrap();
        let g = bounded("leadership", elect.acquire()).await.unwrap();
        assert_curator_node(g.path(), "latch-");
        assert_eq!(c.get_data(g.path()).await.unwrap().0, b"rs".to_vec());
        g.release().await.unwrap();
        // every parent, `base` itself included, is a container: all of them go
        wait_reaped(&c, &base).await;
        eprintln!("round {round}: every parent reaped");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mutex_with_curator() {
    let path = unique("cmutex");
    let dir = CsDir::new();
    let done = Arc::new(AtomicBool::new(false));
    let mut rust = Vec::new();
    for i in 0..2 {
        let c = shared_client().await;
        let lock = Lock::new(&c, &path, format!("rs-{i}")).layout(Layout::Curator);
        let d = dir.0.clone();
        rust.push(contender(RUST_ROUNDS, done.clone(), move || {
            let (lock, d) = (lock.clone(), d.clone());
            async move {
                let g = lock.acquire().await.unwrap();
                let seen = lock.contenders().await.unwrap();
                let v = critical(&d, "exclusive", &format!("rs-{i}"), 1);
                assert_curator_node(g.path(), "lock-");
                g.release().await.unwrap();
                (seen, v)
            }
        }));
    }
    let java = vec![("mutex", "java-0".into()), ("mutex", "java-1".into())];
    let seen = mixed(java, &path, &dir, None, rust, done).await;
    seen.check("InterProcessMutex", 2, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_write_lock_with_curator() {
    let path = unique("crw");
    let dir = CsDir::new();
    let done = Arc::new(AtomicBool::new(false));
    let mut rust = Vec::new();
    for (i, write) in [(0, true), (1, false), (2, false)] {
        let c = shared_client().await;
        let d = dir.0.clone();
        let id = format!("rs-{i}");
        let lock: Lock = if write {
            (*WriteLock::new(&c, &path, id.clone()).layout(Layout::Curator)).clone()
        } else {
            (*ReadLock::new(&c, &path, id.clone()).layout(Layout::Curator)).clone()
        };
        rust.push(contender(RUST_ROUNDS, done.clone(), move || {
            let (lock, d, id) = (lock.clone(), d.clone(), id.clone());
            async move {
                let g = lock.acquire().await.unwrap();
                let seen = lock.contenders().await.unwrap();
                let mode = if write { "exclusive" } else { "reader" };
                let v = critical(&d, mode, &id, 1);
                let mark = if write { "__WRIT__" } else { "__READ__" };
                assert_curator_node(g.path(), mark);
                g.release().await.unwrap();
                (seen, v)
            }
        }));
    }
    let java = vec![
        ("write", "java-w".into()),
        ("read", "java-r0".into()),
        ("read", "java-r1".into()),
    ];
    let seen = mixed(java, &path, &dir, None, rust, done).await;
    seen.check("InterProcessReadWriteLock", 3, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn semaphore_v2_with_curator() {
    let path = unique("csem");
    let dir = CsDir::new();
    let done = Arc::new(AtomicBool::new(false));
    let mut rust = Vec::new();
    for i in 0..3 {
        let c = shared_client().await;
        let sem = Semaphore::new(&c, &path, format!("rs-{i}"), 2)
            .unwrap()
            .layout(Layout::Curator);
        let d = dir.0.clone();
        rust.push(contender(RUST_ROUNDS, done.clone(), move || {
            let (sem, d) = (sem.clone(), d.clone());
            async move {
                let g = sem.acquire().await.unwrap();
                let seen = sem.lease_holders().await.unwrap();
                let v = critical(&d, "semaphore", &format!("rs-{i}"), 2);
                assert_curator_node(g.path(), "lease-");
                g.release().await.unwrap();
                (seen, v)
            }
        }));
    }
    let java = vec![
        ("semaphore", "java-0".into()),
        ("semaphore", "java-1".into()),
    ];
    let seen = mixed(java, &path, &dir, Some(2), rust, done).await;
    seen.check("InterProcessSemaphoreV2 (max 2)", 3, 2);
    // the layout: P has `locks` and `leases` only, and nothing of ours is left
    let c = shared_client().await;
    let mut kids = c.get_children(&path).await.unwrap_or_default();
    kids.sort();
    assert!(
        kids.iter().all(|k| k == "locks" || k == "leases"),
        "{path} has {kids:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_latch_with_curator() {
    let path = unique("clatch");
    let dir = CsDir::new();
    let done = Arc::new(AtomicBool::new(false));
    let mut rust = Vec::new();
    for i in 0..2 {
        let c = shared_client().await;
        let election = Election::new(&c, &path, format!("rs-{i}")).layout(Layout::Curator);
        let d = dir.0.clone();
        rust.push(contender(RUST_ROUNDS, done.clone(), move || {
            let (election, d) = (election.clone(), d.clone());
            async move {
                let e2 = election.clone();
                let out = election
                    .run(|_lost| {
                        let (e2, d) = (e2.clone(), d.clone());
                        async move {
                            let s: Vec<String> = e2
                                .participants()
                                .await
                                .unwrap()
                                .into_iter()
                                .map(|p| p.id)
                                .collect();
                            (s, critical(&d, "exclusive", &format!("rs-{i}"), 1))
                        }
                    })
                    .await
                    .unwrap();
                match out {
                    RunOutcome::Finished(round) => round,
                    RunOutcome::Lost(r) => panic!("leadership lost: {r}"),
                    other => panic!("unexpected outcome {other:?}"),
                }
            }
        }));
    }
    let java = vec![("latch", "java-0".into()), ("latch", "java-1".into())];
    let seen = mixed(java, &path, &dir, None, rust, done).await;
    seen.check("LeaderLatch", 2, 2);
    // a Rust candidate's node, while it leads, has the LeaderLatch layout
    let c = shared_client().await;
    let e = Election::new(&c, &path, "rs-layout").layout(Layout::Curator);
    let g = bounded("leadership", e.acquire()).await.unwrap();
    assert_curator_node(g.path(), "latch-");
    assert_eq!(c.get_data(g.path()).await.unwrap().0, b"rs-layout".to_vec());
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn distributed_atomic_long_with_curator() {
    // Rust and Java increment one DistributedAtomicLong, both with one optimistic retry and a
    // promotion to the same Curator mutex: every increment lands exactly once, each side reads
    // the other's 8-byte values, and both sides' promotion locks are one queue
    let base = unique("catomic");
    let (path, lock) = (format!("{base}/n"), format!("{base}/n-lock"));
    let dir = CsDir::new();
    const JAVA_WORKERS: i64 = 2;
    const RUST_WORKERS: i64 = 2;
    let hosts = zk_testkit::shared_server().connect_string();
    let rounds = JAVA_ROUNDS.to_string();
    let mut java_tasks = Vec::new();
    for i in 0..JAVA_WORKERS {
        let id = format!("java-{i}");
        let args = [
            hosts.as_str(),
            "atomic",
            path.as_str(),
            id.as_str(),
            rounds.as_str(),
            dir.path(),
        ];
        java_tasks.push(tokio::spawn(collect("Curator worker", java(&args))));
    }
    let java_done = Arc::new(AtomicBool::new(false));
    let mut rust_tasks = Vec::new();
    for _ in 0..RUST_WORKERS {
        let c = shared_client().await;
        let n = DistributedAtomicLong::new(&c, &path)
            .optimistic_tries(1)
            .promote_to_lock(&lock, std::time::Duration::from_secs(30));
        let java_done = java_done.clone();
        rust_tasks.push(tokio::spawn(async move {
            // at least RUST_ROUNDS, and on until the Java workers are done: they overlap
            let (mut done, mut promoted) = (0i64, 0);
            while done < RUST_ROUNDS as i64 || !java_done.load(Ordering::SeqCst) {
                let r = n.increment().await.expect("increment");
                promoted += r.stats.promoted_lock_tries;
                if r.succeeded {
                    assert_eq!(r.post_value, r.pre_value + 1);
                    done += 1;
                }
            }
            (done, promoted)
        }));
    }
    for t in java_tasks {
        let (_, violations, done) = bounded("Curator worker", t).await.unwrap();
        assert!(violations.is_empty(), "Curator side: {violations:?}");
        assert!(done, "a Curator worker did not finish");
    }
    java_done.store(true, Ordering::SeqCst);
    let (mut rust_total, mut promoted) = (0, 0);
    for t in rust_tasks {
        let (d, p) = bounded("Rust incrementer", t).await.unwrap();
        rust_total += d;
        promoted += p;
    }
    let c = shared_client().await;
    let total = JAVA_WORKERS * JAVA_ROUNDS as i64 + rust_total;
    let (data, _) = c.get_data(&path).await.unwrap();
    assert_eq!(
        data,
        total.to_be_bytes(),
        "8-byte big-endian, every increment once"
    );
    assert_eq!(
        DistributedAtomicLong::new(&c, &path)
            .get()
            .await
            .unwrap()
            .pre_value,
        total
    );
    eprintln!(
        "DistributedAtomicLong interop: {total} increments ({JAVA_WORKERS} Curator workers: \
         {}, {RUST_WORKERS} Rust workers: {rust_total}), {promoted} Rust attempts under the \
         promotion lock",
        JAVA_WORKERS * JAVA_ROUNDS as i64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn service_discovery_with_curator() {
    // a Curator ServiceDiscovery (JsonInstanceSerializer<String>) and ours on one base path:
    // each finds the other's instance with its fields
    let base = unique("cdiscovery");
    let dir = CsDir::new();
    let hosts = zk_testkit::shared_server().connect_string();
    let args = [
        hosts.as_str(),
        "discover",
        base.as_str(),
        "java-0",
        "1",
        dir.path(),
    ];
    let worker = tokio::spawn(collect("Curator worker", java(&args)));
    let c = shared_client().await;
    let discovery = ServiceDiscovery::new(&c, &base);
    let mut me = ServiceInstance::new("svc", "rs-0");
    me.address = Some("rust-host".into());
    me.port = Some(2000);
    me.payload = "from-rust".into();
    let reg = discovery.register(me).await.unwrap();
    let java = bounded("the Curator instance", async {
        loop {
            if let Some(i) = discovery.query_for_instance("svc", "java-0").await.unwrap() {
                return i;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(java.address.as_deref(), Some("java-host"));
    assert_eq!(java.port, Some(1000));
    assert_eq!(java.payload, "from-java");
    assert_eq!(java.service_type, zk_recipes::ServiceType::Dynamic);
    assert!(java.registration_time_utc > 0);
    assert_eq!(discovery.query_for_names().await.unwrap(), vec!["svc"]);
    // stay registered until the Curator side has seen us
    let seen_file = dir.0.join("seen");
    common::eventually("the Curator side saw our instance", || {
        let f = seen_file.clone();
        async move { f.exists() }
    })
    .await;
    reg.unregister().await.unwrap();
    let (seen, violations, done) = bounded("Curator worker", worker).await.unwrap();
    assert!(violations.is_empty(), "Curator side: {violations:?}");
    assert!(done, "the Curator worker did not finish");
    assert!(saw(&seen, "rs-"), "Curator never saw the Rust instance");
    eprintln!("curator-x-discovery interop: each side found the other's instance: {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_lock_with_curator() {
    // Rust MultiLocks (Curator-layout members) and Curator InterProcessMultiLocks over the same
    // two mutexes: one critical section between all of them. (Curator takes its locks in the
    // order given; it is given the sorted order here, the order ours always takes.)
    let path = unique("cmulti");
    let dir = CsDir::new();
    let done = Arc::new(AtomicBool::new(false));
    let (a, b) = (format!("{path}/a"), format!("{path}/b"));
    let mut rust = Vec::new();
    for i in 0..2 {
        let c = shared_client().await;
        let id = format!("rs-{i}");
        let m = MultiLock::from_locks([
            Lock::new(&c, &b, id.clone()).layout(Layout::Curator),
            Lock::new(&c, &a, id.clone()).layout(Layout::Curator),
        ])
        .unwrap();
        let listing = Lock::new(&c, &a, "").layout(Layout::Curator);
        let d = dir.0.clone();
        rust.push(contender(RUST_ROUNDS, done.clone(), move || {
            let (m, listing, d, id) = (m.clone(), listing.clone(), d.clone(), id.clone());
            async move {
                let g = m.acquire().await.unwrap();
                let seen = listing.contenders().await.unwrap();
                let v = critical(&d, "exclusive", &id, 1);
                for member in g.members() {
                    assert_curator_node(member.path(), "lock-");
                }
                g.release().await.unwrap();
                (seen, v)
            }
        }));
    }
    let java = vec![("multi", "java-0".into()), ("multi", "java-1".into())];
    let seen = mixed(java, &path, &dir, None, rust, done).await;
    seen.check("InterProcessMultiLock", 2, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn group_member_with_curator() {
    // a Curator GroupMember and ours in one group: each sees the other with its data, and
    // sees it leave
    let path = unique("cgroup");
    let dir = CsDir::new();
    let hosts = zk_testkit::shared_server().connect_string();
    let args = [
        hosts.as_str(),
        "group",
        path.as_str(),
        "java-0",
        "1",
        dir.path(),
    ];
    let worker = tokio::spawn(collect("Curator worker", java(&args)));
    let c = shared_client().await;
    let me = GroupMember::new(&c, &path, "rs-0")
        .unwrap()
        .data("rust-data");
    me.join().await.unwrap();
    bounded("the Curator member", async {
        loop {
            let m = me.members().await.unwrap();
            if let Some(d) = m.get("java-0") {
                assert_eq!(d, b"java-data");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    let seen_file = dir.0.join("seen");
    common::eventually("the Curator side saw our member", || {
        let f = seen_file.clone();
        async move { f.exists() }
    })
    .await;
    me.leave().await.unwrap();
    let (seen, violations, done) = bounded("Curator worker", worker).await.unwrap();
    assert!(violations.is_empty(), "Curator side: {violations:?}");
    assert!(done, "the Curator worker did not finish");
    assert!(saw(&seen, "rs-"), "Curator never saw the Rust member");
    let c2 = shared_client().await;
    let left = GroupMember::new(&c2, &path, "probe").unwrap();
    common::eventually("the Curator member left", || async {
        !left.members().await.unwrap().contains_key("java-0")
    })
    .await;
    eprintln!("GroupMember interop: each side saw the other: {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_and_ttl_nodes_match_curators_layout() {
    // Curator's PersistentTtlNode and protected PersistentNode next to ours: the same names and
    // the same life (the TTL child touched while running, everything gone after close)
    let path = unique("cnodes");
    let dir = CsDir::new();
    let hosts = zk_testkit::shared_server().connect_string();
    let args = [
        hosts.as_str(),
        "nodes",
        path.as_str(),
        "java-0",
        "1",
        dir.path(),
    ];
    let worker = tokio::spawn(collect("Curator worker", java(&args)));
    let c = shared_client().await;
    let ours_ttl = PersistentTtlNode::new(
        &c,
        &format!("{path}/ttl-rs"),
        std::time::Duration::from_millis(1500),
        "rs-0",
    );
    ours_ttl.wait_for_initial_create().await.unwrap();
    let ours = PersistentNode::new(
        &c,
        &format!("{path}/p/member-"),
        zk_core::CreateMode::EphemeralSequential,
        "rs-0",
    )
    .protected(true);
    ours.wait_for_initial_create().await.unwrap();

    let (java_ttl, java_touch) = (format!("{path}/ttl"), format!("{path}/ttl/touch"));
    common::eventually("Curator's TTL node and its touch child", || async {
        c.exists(&java_touch).await.unwrap().is_some()
    })
    .await;
    assert_eq!(c.get_data(&java_ttl).await.unwrap().0, b"java-0");
    assert_eq!(
        common::children(&c, &java_ttl).await,
        common::children(&c, &format!("{path}/ttl-rs")).await,
        "the same child name (`touch`)"
    );
    // both touched past their TTL
    let (j0, r0) = (
        c.exists(&java_touch).await.unwrap().unwrap().version,
        c.exists(&ours_ttl.touch_path())
            .await
            .unwrap()
            .unwrap()
            .version,
    );
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    assert!(c.exists(&java_touch).await.unwrap().unwrap().version > j0);
    assert!(
        c.exists(&ours_ttl.touch_path())
            .await
            .unwrap()
            .unwrap()
            .version
            > r0
    );

    // the protected names have one shape: _c_<uuid>-member-<seq>
    let names = common::children(&c, &format!("{path}/p")).await;
    assert_eq!(names.len(), 2, "{names:?}");
    for n in &names {
        assert_curator_node(&format!("{path}/p/{n}"), "member-");
    }

    std::fs::write(dir.0.join("stop"), b"").unwrap();
    let (_, violations, done) = bounded("Curator worker", worker).await.unwrap();
    assert!(violations.is_empty(), "Curator side: {violations:?}");
    assert!(done, "the Curator worker did not finish");
    ours_ttl.close().await;
    ours.close().await.unwrap();
    // Curator's close and ours leave the TTL nodes to expire alike
    common::eventually(
        "both TTL nodes expired and their containers reaped",
        || async {
            c.exists(&java_ttl).await.unwrap().is_none()
                && c.exists(&format!("{path}/ttl-rs")).await.unwrap().is_none()
        },
    )
    .await;
    eprintln!("PersistentTtlNode / PersistentNode interop: same layout, same life");
}
