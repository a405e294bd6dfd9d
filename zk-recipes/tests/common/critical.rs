//! The critical-section checker shared by the Rust side and the worker processes (kazoo's
//! `tests/interop/recipe_worker.py`, Curator's `tests/java/CuratorWorker.java`): marker files
//! in a directory, created only inside the critical section; and the Rust contender loop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

pub struct CsDir(pub PathBuf);

impl CsDir {
    pub fn new() -> CsDir {
        let d = std::env::temp_dir().join(format!("zk-interop-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).unwrap();
        CsDir(d)
    }
    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for CsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The same exclusion checks as the Python side. Returns violations.
pub fn critical(dir: &Path, mode: &str, id: &str, max: usize) -> Vec<String> {
    let mut v = Vec::new();
    let list = || -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    match mode {
        "exclusive" => {
            let marker = dir.join("w");
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&marker)
            {
                Ok(_) => {}
                Err(_) => {
                    v.push(format!("two exclusive holders ({id})"));
                    return v;
                }
            }
            if list().iter().any(|n| n.starts_with("r.")) {
                v.push(format!("reader inside while writer {id} holds"));
            }
            std::thread::sleep(Duration::from_millis(3));
            std::fs::remove_file(marker).unwrap();
        }
        "reader" => {
            let marker = dir.join(format!("r.{id}"));
            std::fs::write(&marker, b"").unwrap();
            if dir.join("w").exists() {
                v.push(format!("writer inside while reader {id} holds"));
            }
            std::thread::sleep(Duration::from_millis(3));
            std::fs::remove_file(marker).unwrap();
        }
        _ => {
            let marker = dir.join(format!("s.{id}"));
            std::fs::write(&marker, b"").unwrap();
            let n = list().iter().filter(|n| n.starts_with("s.")).count();
            if n > max {
                v.push(format!("{n} semaphore holders ({id})"));
            }
            std::thread::sleep(Duration::from_millis(3));
            std::fs::remove_file(marker).unwrap();
        }
    }
    v
}

/// Collects a worker process's output (Python or Java, the same lines): (contenders lists, violations, done).
pub async fn collect(
    what: &str,
    mut child: tokio::process::Child,
) -> (Vec<Vec<String>>, Vec<String>, bool) {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut seen, mut violations, mut done) = (Vec::new(), Vec::new(), false);
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(j) = line.strip_prefix("CONTENDERS ") {
            seen.push(parse_json_list(j));
        } else if line.starts_with("VIOLATION") {
            violations.push(line);
        } else if line.starts_with("DONE") {
            done = true;
        }
    }
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{what} failed: {status}");
    (seen, violations, done)
}

/// `["a", "b"]` → [a, b] (identifiers here are plain ASCII).
pub fn parse_json_list(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|x| x.trim().trim_matches('"').to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

/// A Rust contender's task: the contenders lists it saw, and violations.
pub type RustContender = tokio::task::JoinHandle<(Vec<Vec<String>>, Vec<String>)>;

pub fn saw(lists: &[Vec<String>], prefix: &str) -> bool {
    lists.iter().flatten().any(|id| id.starts_with(prefix))
}

/// Spawns a Rust contender: runs `round` (one acquisition; returns the contenders it saw and
/// any exclusion violations) at least `rounds` times, and on until the other side's workers
/// are done.
pub fn contender<F, Fut>(rounds: usize, done: Arc<AtomicBool>, mut round: F) -> RustContender
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = (Vec<String>, Vec<String>)> + Send + 'static,
{
    tokio::spawn(async move {
        let (mut seen, mut violations) = (Vec::new(), Vec::new());
        let mut n = 0;
        while n < rounds || !done.load(Ordering::SeqCst) {
            n += 1;
            let (s, v) = round().await;
            seen.push(s);
            violations.extend(v);
        }
        (seen, violations)
    })
}
