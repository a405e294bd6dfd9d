//! Rust and Python (kazoo 2.11) contenders mixed on the same paths. An independent checker —
//! marker files only created inside the critical section (protocol in
//! `tests/interop/recipe_worker.py`) — shows no exclusion violation, and each side sees the
//! other in its contenders listing.

mod common;

use common::critical::{collect, contender, critical, saw, CsDir, RustContender};
use common::{bounded, python, shared_client, unique};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zk_recipes::{Election, Lock, ReadLock, RunOutcome, Semaphore, WriteLock};

const ROUNDS: usize = 12;

/// Runs Rust contenders (closures producing one round each) and Python workers together.
async fn mixed(
    py: Vec<(&'static str, String)>,
    hosts: &str,
    path: &str,
    dir: &CsDir,
    max: Option<usize>,
    rust: Vec<RustContender>,
    py_done: Arc<AtomicBool>,
) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let mut py_tasks = Vec::new();
    for (kind, id) in &py {
        let mut args = vec![hosts, *kind, path, id.as_str(), "12", dir.path()];
        let m;
        if let Some(x) = max {
            m = x.to_string();
            args.push(&m);
            py_tasks.push(tokio::spawn(collect(
                "python worker",
                python("recipe_worker.py", &args),
            )));
        } else {
            py_tasks.push(tokio::spawn(collect(
                "python worker",
                python("recipe_worker.py", &args),
            )));
        }
    }
    let mut py_seen = Vec::new();
    for t in py_tasks {
        let (seen, violations, done) = bounded("python contender", t).await.unwrap();
        assert!(violations.is_empty(), "{violations:?}");
        assert!(done);
        py_seen.extend(seen);
    }
    // the Rust contenders keep contending until the kazoo ones are done, so the two overlap
    py_done.store(true, Ordering::SeqCst);
    let mut rust_seen = Vec::new();
    for t in rust {
        let (seen, violations) = bounded("rust contender", t).await.unwrap();
        assert!(violations.is_empty(), "{violations:?}");
        rust_seen.extend(seen);
    }
    (rust_seen, py_seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_with_kazoo() {
    let hosts = zk_testkit::shared_server().connect_string();
    let path = unique("ilock");
    let dir = CsDir::new();
    let py_done = Arc::new(AtomicBool::new(false));
    let mut rust = Vec::new();
    for i in 0..2 {
        let c = shared_client().await;
        let lock = Lock::new(&c, &path, format!("rs-{i}"));
        let d = dir.0.clone();
        rust.push(contender(ROUNDS, py_done.clone(), move || {
            let (lock, d) = (lock.clone(), d.clone());
            async move {
                let g = lock.acquire().await.unwrap();
                let seen = lock.contenders().await.unwrap();
                let v = critical(&d, "exclusive", &format!("rs-{i}"), 1);
                g.release().await.unwrap();
                (seen, v)
            }
        }));
    }
    let py = vec![("lock", "py-0".to_string()), ("lock", "py-1".to_string())];
    let (rust_seen, py_seen) = mixed(py, &hosts, &path, &dir, None, rust, py_done).await;
    assert!(saw(&rust_seen, "py-"), "Rust never saw a kazoo contender");
    assert!(saw(&py_seen, "rs-"), "kazoo never saw a Rust contender");
    eprintln!("lock interop: 2 Rust + 2 kazoo contenders x {ROUNDS} rounds, no violation");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_write_lock_with_kazoo() {
    let hosts = zk_testkit::shared_server().connect_string();
    let path = unique("irw");
    let dir = CsDir::new();
    let py_done = Arc::new(AtomicBool::new(false));
    let mut rust = Vec::new();
    for (i, write) in [(0, true), (1, false)] {
        let c = shared_client().await;
        let d = dir.0.clone();
        let id = format!("rs-{i}");
        let lock: Lock = if write {
            (*WriteLock::new(&c, &path, id.clone())).clone()
        } else {
            (*ReadLock::new(&c, &path, id.clone())).clone()
        };
        rust.push(contender(ROUNDS, py_done.clone(), move || {
            let (lock, d, id) = (lock.clone(), d.clone(), id.clone());
            async move {
                let g = lock.acquire().await.unwrap();
                let seen = lock.contenders().await.unwrap();
                let mode = if write { "exclusive" } else { "reader" };
                let v = critical(&d, mode, &id, 1);
                g.release().await.unwrap();
                (seen, v)
            }
        }));
    }
    let py = vec![
        ("write", "py-w".to_string()),
        ("read", "py-r0".to_string()),
        ("read", "py-r1".to_string()),
    ];
    let (rust_seen, py_seen) = mixed(py, &hosts, &path, &dir, None, rust, py_done).await;
    assert!(saw(&rust_seen, "py-"));
    assert!(saw(&py_seen, "rs-"));
}

#[tokio::test(flavor = "multi_thread")]
async fn semaphore_with_kazoo() {
    let hosts = zk_testkit::shared_server().connect_string();
    let path = unique("isem");
    let dir = CsDir::new();
    let py_done = Arc::new(AtomicBool::new(false));
    let mut rust = Vec::new();
    for i in 0..2 {
        let c = shared_client().await;
        let sem = Semaphore::new(&c, &path, format!("rs-{i}"), 2).unwrap();
        let d = dir.0.clone();
        rust.push(contender(ROUNDS, py_done.clone(), move || {
            let (sem, d) = (sem.clone(), d.clone());
            async move {
                let g = sem.acquire().await.unwrap();
                let seen = sem.lease_holders().await.unwrap();
                let v = critical(&d, "semaphore", &format!("rs-{i}"), 2);
                g.release().await.unwrap();
                (seen, v)
            }
        }));
    }
    let py = vec![
        ("semaphore", "py-0".to_string()),
        ("semaphore", "py-1".to_string()),
    ];
    let (rust_seen, py_seen) = mixed(py, &hosts, &path, &dir, Some(2), rust, py_done).await;
    assert!(saw(&rust_seen, "py-"));
    assert!(saw(&py_seen, "rs-"));
    // a foreign child of the semaphore counts as a lease
    let c = shared_client().await;
    c.create(
        &format!("{path}/foreign"),
        b"x",
        zk_core::CreateMode::Persistent,
    )
    .await
    .unwrap();
    let sem = Semaphore::new(&c, &path, "rs-x", 2).unwrap();
    let g = sem.acquire().await.unwrap();
    let sem2 = Semaphore::new(&c, &path, "rs-y", 2).unwrap();
    assert!(sem2
        .acquire_timeout(Duration::from_millis(500))
        .await
        .unwrap()
        .is_none());
    g.release().await.unwrap();
    // and a different maximum is refused
    let wrong = Semaphore::new(&c, &path, "rs-z", 3).unwrap();
    assert!(matches!(
        wrong.acquire_timeout(Duration::from_secs(1)).await,
        Err(zk_core::Error::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn election_with_kazoo() {
    let hosts = zk_testkit::shared_server().connect_string();
    let path = unique("ielect");
    let dir = CsDir::new();
    let py_done = Arc::new(AtomicBool::new(false));
    let mut rust = Vec::new();
    for i in 0..2 {
        let c = shared_client().await;
        let election = Election::new(&c, &path, format!("rs-{i}"));
        let d = dir.0.clone();
        rust.push(contender(ROUNDS, py_done.clone(), move || {
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
    let py = vec![
        ("election", "py-0".to_string()),
        ("election", "py-1".to_string()),
    ];
    let (rust_seen, py_seen) = mixed(py, &hosts, &path, &dir, None, rust, py_done).await;
    assert!(saw(&rust_seen, "py-"));
    assert!(saw(&py_seen, "rs-"));
    let _ = hosts;
}
