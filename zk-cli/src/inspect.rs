//! get, set, create, delete, ls, stat, tree.

use crate::error::{out, Context, Failure};
use crate::output::{acl_text, format_stat, json, AclJson, Format, StatJson};
use crate::signals::Signals;
use futures::StreamExt;
use serde::Serialize;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;
use zk_core::{Acl, Client, CreateMode, Error, State};

/// `zk get -o json`.
#[derive(Serialize)]
struct GetJson<'a> {
    path: &'a str,
    /// The data as a string when it is UTF-8, else null.
    data: Option<&'a str>,
    /// The data, base64 (standard alphabet, padded): always there, binary-safe.
    #[serde(rename = "dataBase64")]
    data_base64: String,
    stat: StatJson,
}

/// `zk get PATH [--stat | --raw] [-o json]` (`--raw` with `-o json` is refused before: see
/// [`check_get`]).
pub async fn get(
    c: &Client,
    path: &str,
    with_stat: bool,
    raw: bool,
    format: Format,
) -> Result<i32, Failure> {
    let (data, stat) = c.get_data(path).await.ctx(|| format!("get {path}"))?;
    if format == Format::Json {
        use base64::Engine;
        json(&GetJson {
            path,
            data: std::str::from_utf8(&data).ok(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(&data),
            stat: StatJson::from(&stat),
        })?;
        return Ok(0);
    }
    let mut buf = data;
    if !raw && !buf.is_empty() && !buf.ends_with(b"\n") {
        buf.push(b'\n');
    }
    if with_stat {
        buf.extend_from_slice(format_stat(&stat).as_bytes());
    }
    out(&buf)?;
    Ok(0)
}

/// `get`'s options that clap cannot refuse itself (`-o text` is the default, so a conflict with
/// `--output` would refuse `-o text --raw` too): `--raw` with `-o json`.
pub fn check_get(raw: bool, format: Format) -> Result<(), Failure> {
    if raw && format == Format::Json {
        return Err(Failure::Usage(
            "get: --raw writes the bytes alone; it cannot be used with -o json".into(),
        ));
    }
    Ok(())
}

/// The data of `set` / `create`: the argument's bytes, stdin's with `-`, or FILE's with
/// `--file FILE`; read before connecting. A file or stdin that cannot be read fails (exit 1).
pub fn read_data(
    what: &str,
    data: Option<OsString>,
    file: Option<PathBuf>,
) -> Result<Vec<u8>, Failure> {
    if let Some(f) = file {
        return std::fs::read(&f)
            .map_err(|e| Failure::Failed(format!("{what}: cannot read {}: {e}", f.display())));
    }
    match data {
        Some(d) if d == "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| Failure::Failed(format!("{what}: cannot read stdin: {e}")))?;
            Ok(buf)
        }
        Some(d) => Ok(d.into_vec()),
        None => Ok(Vec::new()),
    }
}

/// `zk set PATH DATA|-|--file FILE [--version N]`.
pub async fn set(
    c: &Client,
    path: &str,
    data: Vec<u8>,
    version: Option<i32>,
) -> Result<i32, Failure> {
    c.set_data(path, &data, version)
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

/// `zk ls -o json`.
#[derive(Serialize)]
struct LsJson<'a> {
    path: &'a str,
    children: Vec<String>,
}

/// `zk ls PATH [-o json]`.
pub async fn ls(c: &Client, path: &str, format: Format) -> Result<i32, Failure> {
    let mut children = c.get_children(path).await.ctx(|| format!("ls {path}"))?;
    children.sort();
    if format == Format::Json {
        json(&LsJson { path, children })?;
        return Ok(0);
    }
    let mut buf = String::new();
    for ch in children {
        buf.push_str(&ch);
        buf.push('\n');
    }
    out(buf.as_bytes())?;
    Ok(0)
}

/// `zk stat PATH [-o json]`.
pub async fn stat(c: &Client, path: &str, format: Format) -> Result<i32, Failure> {
    match c.exists(path).await.ctx(|| format!("stat {path}"))? {
        Some(s) => {
            match format {
                Format::Text => out(format_stat(&s).as_bytes())?,
                Format::Json => json(&StatJson::from(&s))?,
            }
            Ok(0)
        }
        None => Err(Failure::zk(&format!("stat {path}"), Error::NoNode)),
    }
}

/// `zk getacl -o json`.
#[derive(Serialize)]
struct GetAclJson<'a> {
    path: &'a str,
    acl: Vec<AclJson>,
    #[serde(rename = "aclVersion")]
    acl_version: i32,
}

/// `zk getacl PATH [-o json]`.
pub async fn getacl(c: &Client, path: &str, format: Format) -> Result<i32, Failure> {
    let (acl, stat) = c.get_acl(path).await.ctx(|| format!("getacl {path}"))?;
    match format {
        Format::Text => {
            let text: String = acl.iter().map(|a| acl_text(a) + "\n").collect();
            out(text.as_bytes())?;
        }
        Format::Json => json(&GetAclJson {
            path,
            acl: acl.iter().map(AclJson::from).collect(),
            acl_version: stat.aversion,
        })?,
    }
    Ok(0)
}

/// `zk setacl PATH ACL [--version N]`.
pub async fn setacl(
    c: &Client,
    path: &str,
    acl: &[Acl],
    version: Option<i32>,
) -> Result<i32, Failure> {
    c.set_acl(path, acl, version)
        .await
        .map_err(|e| match (e, version) {
            (Error::BadVersion, Some(v)) => Failure::Failed(format!(
                "setacl {path}: version mismatch (the node's ACL version is not {v})"
            )),
            (Error::InvalidAcl, _) => Failure::Failed(format!(
                "setacl {path}: the server refused the ACL as invalid (auth:: needs --auth; \
                 a digest id is USER:HASH)"
            )),
            (e, _) => Failure::zk(&format!("setacl {path}"), e),
        })?;
    Ok(0)
}

/// One identity of `zk whoami -o json`.
#[derive(Serialize)]
struct IdentityJson {
    scheme: String,
    user: String,
}

/// `zk whoami -o json`.
#[derive(Serialize)]
struct WhoAmIJson {
    identities: Vec<IdentityJson>,
}

/// `zk whoami [-o json]`.
pub async fn whoami(c: &Client, format: Format) -> Result<i32, Failure> {
    let ids = c.who_am_i().await.ctx(|| "whoami".to_owned())?;
    match format {
        Format::Text => {
            let text: String = ids
                .iter()
                .map(|i| format!("{}: {}\n", i.auth_scheme, i.user))
                .collect();
            out(text.as_bytes())?;
        }
        Format::Json => json(&WhoAmIJson {
            identities: ids
                .into_iter()
                .map(|i| IdentityJson {
                    scheme: i.auth_scheme,
                    user: i.user,
                })
                .collect(),
        })?,
    }
    Ok(0)
}

/// `zk sync PATH`.
pub async fn sync(c: &Client, path: &str) -> Result<i32, Failure> {
    c.sync(path).await.ctx(|| format!("sync {path}"))?;
    Ok(0)
}

/// One node of `zk ephemerals -o json`.
#[derive(Serialize)]
struct EphemeralJson {
    path: String,
    /// The owning session's id.
    owner: i64,
}

/// `zk ephemerals -o json`.
#[derive(Serialize)]
struct EphemeralsJson<'a> {
    path: &'a str,
    ephemerals: Vec<EphemeralJson>,
}

/// `zk ephemerals [PATH] [--owner SESSION] [-o json]`: the ephemeral nodes at and below PATH
/// with their owning session, sorted by path; only `owner`'s with --owner.
///
/// Not zkCli's `getEphemerals`, which lists the caller's own session's nodes: every `zk`
/// command has a session of its own that owns none, so zk walks the subtree instead (one
/// `exists` per node, `getChildren` per non-ephemeral one) and names each node's owner.
pub async fn ephemerals(
    c: &Client,
    path: &str,
    owner: Option<i64>,
    format: Format,
) -> Result<i32, Failure> {
    let what = || format!("ephemerals {path}");
    if c.exists(path).await.ctx(what)?.is_none() {
        return Err(Failure::zk(&what(), Error::NoNode));
    }
    let mut found = Vec::new();
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let stat = match c.exists(&p).await.ctx(what)? {
            Some(s) => s,
            None => continue, // deleted meanwhile
        };
        if stat.ephemeral_owner != 0 {
            if owner.is_none_or(|o| o == stat.ephemeral_owner) {
                found.push(EphemeralJson {
                    path: p,
                    owner: stat.ephemeral_owner,
                });
            }
            continue; // ephemeral nodes have no children
        }
        let children = match c.get_children(&p).await {
            Ok(ch) => ch,
            Err(Error::NoNode) => continue,
            Err(e) => return Err(Failure::zk(&what(), e)),
        };
        stack.extend(children.iter().map(|ch| child_path(&p, ch)));
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    match format {
        Format::Text => {
            let text: String = found
                .iter()
                .map(|e| format!("{} {:#x}\n", e.path, e.owner))
                .collect();
            out(text.as_bytes())?;
        }
        Format::Json => json(&EphemeralsJson {
            path,
            ephemerals: found,
        })?,
    }
    Ok(0)
}

/// `zk count -o json`.
#[derive(Serialize)]
struct CountJson<'a> {
    path: &'a str,
    count: i32,
}

/// `zk count PATH [-o json]`: the number of all descendants.
pub async fn count(c: &Client, path: &str, format: Format) -> Result<i32, Failure> {
    let count = c
        .get_all_children_number(path)
        .await
        .ctx(|| format!("count {path}"))?;
    match format {
        Format::Text => out(format!("{count}\n").as_bytes())?,
        Format::Json => json(&CountJson { path, count })?,
    }
    Ok(0)
}

fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// One node of `zk tree -o json`.
#[derive(Serialize)]
struct TreeJson {
    path: String,
    children: Vec<TreeJson>,
}

/// Nests `(path, depth)` in depth-first order, from `items[*i]`.
fn nest(items: &[(String, usize)], i: &mut usize) -> TreeJson {
    let (path, depth) = &items[*i];
    *i += 1;
    let mut node = TreeJson {
        path: path.clone(),
        children: Vec::new(),
    };
    while *i < items.len() && items[*i].1 == depth + 1 {
        node.children.push(nest(items, i));
    }
    node
}

/// `zk tree PATH [-o json]`: PATH on the first line, then each descendant's name indented by
/// two spaces per level, children sorted. In JSON, one document of nested
/// `{"path": ..., "children": [...]}`.
pub async fn tree(c: &Client, path: &str, format: Format) -> Result<i32, Failure> {
    let what = || format!("tree {path}");
    let root = c.get_children(path).await.ctx(what)?;
    // JSON: the nodes in depth-first order, nested at the end
    let mut nodes: Vec<(String, usize)> = Vec::new();
    match format {
        Format::Text => out(format!("{path}\n").as_bytes())?,
        Format::Json => nodes.push((path.to_owned(), 0)),
    }
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
        match format {
            Format::Text => out(format!("{}{name}\n", "  ".repeat(depth)).as_bytes())?,
            Format::Json => nodes.push((p.clone(), depth)),
        }
        push(&mut stack, &p, children, depth + 1);
    }
    if format == Format::Json {
        json(&nest(&nodes, &mut 0))?;
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
