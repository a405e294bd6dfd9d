//! get, set, create, delete, ls, stat, tree.

use crate::error::{out, Context, Failure};
use crate::signals::Signals;
use futures::StreamExt;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;
use zk_core::{Client, CreateMode, Error, Stat, State};

/// The Stat fields, one `name: value` per line (the names zkCli uses).
pub fn format_stat(s: &Stat) -> String {
    format!(
        "cZxid: {:#x}\nctime: {}\nmZxid: {:#x}\nmtime: {}\npZxid: {:#x}\ncversion: {}\n\
         dataVersion: {}\naclVersion: {}\nephemeralOwner: {:#x}\ndataLength: {}\n\
         numChildren: {}\n",
        s.czxid,
        s.ctime,
        s.mzxid,
        s.mtime,
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

/// `zk get PATH [--stat]`.
pub async fn get(c: &Client, path: &str, with_stat: bool) -> Result<i32, Failure> {
    let (data, stat) = c.get_data(path).await.ctx(|| format!("get {path}"))?;
    let mut buf = data;
    if with_stat {
        if !buf.is_empty() && !buf.ends_with(b"\n") {
            buf.push(b'\n');
        }
        buf.extend_from_slice(format_stat(&stat).as_bytes());
    }
    out(&buf)?;
    Ok(0)
}

/// `zk set PATH DATA [--version N]`.
pub async fn set(
    c: &Client,
    path: &str,
    data: OsString,
    version: Option<i32>,
) -> Result<i32, Failure> {
    c.set_data(path, &data.into_vec(), version)
        .await
        .map_err(|e| match (e, version) {
            (Error::BadVersion, Some(v)) => Failure::Failed(format!(
                "set {path}: version mismatch (the node's data version is not {v})"
            )),
            (e, _) => Failure::zk(&format!("set {path}"), e),
        })?;
    Ok(0)
}

/// What `zk create` was asked for.
pub struct CreateArgs {
    /// The path (for sequential nodes, the prefix).
    pub path: String,
    /// The data.
    pub data: Vec<u8>,
    /// --ephemeral
    pub ephemeral: bool,
    /// --sequential
    pub sequential: bool,
    /// --container
    pub container: bool,
    /// --ttl
    pub ttl: Option<Duration>,
    /// --parents
    pub parents: bool,
}

/// The mode `zk create`'s flags ask for (clap has refused the conflicting combinations).
pub fn create_mode(a: &CreateArgs) -> CreateMode {
    match (a.ephemeral, a.sequential, a.container, a.ttl) {
        (_, _, true, _) => CreateMode::Container,
        (_, false, _, Some(t)) => CreateMode::PersistentWithTtl(t),
        (_, true, _, Some(t)) => CreateMode::PersistentSequentialWithTtl(t),
        (true, false, _, _) => CreateMode::Ephemeral,
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (false, true, _, _) => CreateMode::PersistentSequential,
        (false, false, _, _) => CreateMode::Persistent,
    }
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `zk create PATH [DATA] ...`. With --ephemeral it holds the node until SIGINT / SIGTERM.
pub async fn create(c: &Client, a: CreateArgs) -> Result<i32, Failure> {
    let mode = create_mode(&a);
    let path = &a.path;
    if path.ends_with('/') && path != "/" && !mode.is_sequential() {
        return Err(Failure::Usage(format!(
            "invalid path {path:?}: path must not end with '/' (unless --sequential)"
        )));
    }
    // catch signals before the node exists, so that none can end us holding it
    let mut signals = if a.ephemeral {
        Some(Signals::new()?)
    } else {
        None
    };
    let what = || format!("create {path}");
    if a.parents {
        let parent = parent_of(path);
        c.ensure_path(parent).await.ctx(what)?;
    }
    let created = c.create(path, &a.data, mode).await.ctx(what)?;
    out(format!("{created}\n").as_bytes())?;
    let Some(signals) = signals.as_mut() else {
        return Ok(0);
    };
    // hold the ephemeral node until told to stop, or until the session (and the node) is lost
    let mut states = c.state_stream();
    if c.state() == State::Lost {
        return Err(lost_ephemeral(&created));
    }
    loop {
        tokio::select! {
            _ = signals.recv() => break,
            s = states.next() => match s {
                Some(s) if s.state == State::Lost => return Err(lost_ephemeral(&created)),
                Some(_) => {}
                None => return Err(lost_ephemeral(&created)),
            },
        }
    }
    match tokio::time::timeout(Duration::from_secs(5), c.delete(&created, None)).await {
        Ok(Ok(())) | Ok(Err(Error::NoNode)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "deleting {created}; it goes with the session"),
        Err(_) => tracing::warn!("deleting {created} timed out; it goes with the session"),
    }
    Ok(0)
}

fn lost_ephemeral(node: &str) -> Failure {
    Failure::Lost(format!(
        "lost the ephemeral node {node}: the ZooKeeper session was lost"
    ))
}

/// `zk delete PATH [--version N] [--recursive]`.
pub async fn delete(
    c: &Client,
    path: &str,
    version: Option<i32>,
    recursive: bool,
) -> Result<i32, Failure> {
    let what = || format!("delete {path}");
    if recursive {
        if path == "/" {
            return Err(Failure::Usage(
                "delete /: refusing to delete the root".into(),
            ));
        }
        if c.exists(path).await.ctx(what)?.is_none() {
            return Err(Failure::zk(&what(), Error::NoNode));
        }
        c.delete_recursive(path).await.ctx(what)?;
    } else {
        c.delete(path, version)
            .await
            .map_err(|e| match (e, version) {
                (Error::BadVersion, Some(v)) => Failure::Failed(format!(
                    "delete {path}: version mismatch (the node's data version is not {v})"
                )),
                (e, _) => Failure::zk(&what(), e),
            })?;
    }
    Ok(0)
}

/// `zk ls PATH`.
pub async fn ls(c: &Client, path: &str) -> Result<i32, Failure> {
    let mut children = c.get_children(path).await.ctx(|| format!("ls {path}"))?;
    children.sort();
    let mut buf = String::new();
    for ch in children {
        buf.push_str(&ch);
        buf.push('\n');
    }
    out(buf.as_bytes())?;
    Ok(0)
}

/// `zk stat PATH`.
pub async fn stat(c: &Client, path: &str) -> Result<i32, Failure> {
    match c.exists(path).await.ctx(|| format!("stat {path}"))? {
        Some(s) => {
            out(format_stat(&s).as_bytes())?;
            Ok(0)
        }
        None => Err(Failure::zk(&format!("stat {path}"), Error::NoNode)),
    }
}

fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// `zk tree PATH`: PATH on the first line, then each descendant's name indented by two spaces
/// per level, children sorted.
pub async fn tree(c: &Client, path: &str) -> Result<i32, Failure> {
    let what = || format!("tree {path}");
    let root = c.get_children(path).await.ctx(what)?;
    out(format!("{path}\n").as_bytes())?;
    // depth-first, children in order: a stack of (path, name, depth), pushed in reverse
    let mut stack: Vec<(String, String, usize)> = Vec::new();
    let push =
        |stack: &mut Vec<(String, String, usize)>, parent: &str, mut names: Vec<String>, depth| {
            names.sort();
            for n in names.into_iter().rev() {
                stack.push((child_path(parent, &n), n, depth));
            }
        };
    push(&mut stack, path, root, 1);
    while let Some((p, name, depth)) = stack.pop() {
        let children = match c.get_children(&p).await {
            Ok(ch) => ch,
            Err(Error::NoNode) => continue, // deleted meanwhile
            Err(e) => return Err(Failure::zk(&what(), e)),
        };
        out(format!("{}{name}\n", "  ".repeat(depth)).as_bytes())?;
        push(&mut stack, &p, children, depth + 1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(e: bool, s: bool, c: bool, ttl: Option<u64>) -> CreateArgs {
        CreateArgs {
            path: "/x".into(),
            data: vec![],
            ephemeral: e,
            sequential: s,
            container: c,
            ttl: ttl.map(Duration::from_secs),
            parents: false,
        }
    }

    #[test]
    fn modes() {
        assert_eq!(
            create_mode(&args(false, false, false, None)),
            CreateMode::Persistent
        );
        assert_eq!(
            create_mode(&args(true, false, false, None)),
            CreateMode::Ephemeral
        );
        assert_eq!(
            create_mode(&args(true, true, false, None)),
            CreateMode::EphemeralSequential
        );
        assert_eq!(
            create_mode(&args(false, true, false, None)),
            CreateMode::PersistentSequential
        );
        assert_eq!(
            create_mode(&args(false, false, true, None)),
            CreateMode::Container
        );
        assert_eq!(
            create_mode(&args(false, false, false, Some(5))),
            CreateMode::PersistentWithTtl(Duration::from_secs(5))
        );
        assert_eq!(
            create_mode(&args(false, true, false, Some(5))),
            CreateMode::PersistentSequentialWithTtl(Duration::from_secs(5))
        );
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b/"), "/a/b");
    }
}
