//! Path rules, as the server enforces them (`PathUtils.validatePath`), checked before anything
//! is sent, and chroot prefixing.

use std::fmt;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathError {
    /// The offending path.
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid path {:?}: {}", self.path, self.reason)
    }
}

impl std::error::Error for PathError {}

fn bad(path: &str, reason: &'static str) -> PathError {
    PathError {
        path: path.to_owned(),
        reason,
    }
}

/// Whether the server refuses this character in a path. Java works in UTF-16, so every
/// character outside the BMP (a surrogate pair there) is refused too.
fn forbidden_char(c: char) -> bool {
    let u = c as u32;
    u == 0
        || (0x01..=0x1f).contains(&u)
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        || u > 0xffff
}

/// Checks a path by the server's rules (`PathUtils.validatePath`): absolute, no empty, `.` or
/// `..` segment, no trailing `/`, none of the characters the server refuses. `sequential`
/// allows a trailing `/` (the server then names the node with just the sequence digits).
/// The client runs it on every path before sending; a tool can run it on user input first.
///
/// ```
/// # use zk_proto::validate_path;
/// assert!(validate_path("/app/config", false).is_ok());
/// assert!(validate_path("/app/", false).is_err());
/// assert!(validate_path("/app/", true).is_ok());
/// ```
pub fn validate_path(path: &str, sequential: bool) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(bad(path, "path must not be empty"));
    }
    if !path.starts_with('/') {
        return Err(bad(path, "path must start with '/'"));
    }
    if path.len() == 1 {
        // "/" itself; for a sequential create the name is just the sequence digits
        return Ok(());
    }
    if path.ends_with('/') && !sequential {
        return Err(bad(path, "path must not end with '/'"));
    }
    // The last component may be empty for a sequential path ending in '/'.
    let body = if sequential && path.ends_with('/') {
        &path[1..path.len() - 1]
    } else {
        &path[1..]
    };
    if sequential && path.ends_with('/') && body.is_empty() {
        return Ok(());
    }
    // printable ASCII (the common case) holds no forbidden character: no per-character check
    let printable = body.bytes().all(|b| (0x20..0x7f).contains(&b));
    for comp in body.split('/') {
        match comp {
            "" => return Err(bad(path, "empty node name (\"//\")")),
            "." => return Err(bad(path, "relative paths (\".\") are not allowed")),
            ".." => return Err(bad(path, "relative paths (\"..\") are not allowed")),
            _ => {}
        }
        if !printable && comp.chars().any(forbidden_char) {
            return Err(bad(path, "contains a character ZooKeeper refuses"));
        }
    }
    Ok(())
}

/// A chroot: a path prefix applied to every path the client sends and stripped from every path
/// it receives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chroot(Option<String>);

impl Chroot {
    /// No chroot.
    pub fn none() -> Self {
        Chroot(None)
    }

    /// Parses a chroot (`"/app"`); `"/"` or `""` means none.
    pub fn new(root: &str) -> Result<Self, PathError> {
        if root.is_empty() || root == "/" {
            return Ok(Chroot(None));
        }
        validate_path(root, false)?;
        Ok(Chroot(Some(root.to_owned())))
    }

    /// The prefix, if any.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Client path to server path.
    pub fn to_server(&self, path: &str) -> String {
        let (root, rest) = self.server_parts(path);
        let mut s = String::with_capacity(root.len() + rest.len());
        s.push_str(root);
        s.push_str(rest);
        s
    }

    /// [`to_server`](Self::to_server) in two parts, prefix and rest, to be written one after
    /// the other without joining them.
    pub fn server_parts<'a>(&'a self, path: &'a str) -> (&'a str, &'a str) {
        match &self.0 {
            None => ("", path),
            Some(root) if path == "/" => (root, ""),
            Some(root) => (root, path),
        }
    }

    /// Client path to server path for a sequential create, where the server appends the
    /// sequence digits to the path itself: `"/"` under the chroot `/app` is `"/app/"` (a node
    /// named by its digits alone, inside the chroot), not `"/app"` (which would make the
    /// sibling `/app0000000001`).
    pub fn to_server_sequential(&self, path: &str) -> String {
        match &self.0 {
            Some(root) if path == "/" => format!("{root}/"),
            _ => self.to_server(path),
        }
    }

    /// Server path to client path; `None` for a path outside the chroot (which must never be
    /// shown as if it were inside: `/apple` is not `/app` + `le`).
    pub fn to_client(&self, path: &str) -> Option<String> {
        match &self.0 {
            None => Some(path.to_owned()),
            Some(root) => match path.strip_prefix(root.as_str()) {
                Some("") => Some("/".to_owned()),
                Some(rest) if rest.starts_with('/') => Some(rest.to_owned()),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_zookeeper_accepts() {
        for p in ["/", "/a", "/a/b", "/a.b/..c/...", "/é/ü", "/a b", "/a-1_2"] {
            validate_path(p, false).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        for p in ["/", "/a/", "/a/b-"] {
            validate_path(p, true).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    #[test]
    fn refuses_what_zookeeper_refuses() {
        for p in [
            "",
            "a",
            "a/b",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/a/..",
            "/a/./b",
            "/a\0",
            "/a\u{1}",
            "/a\u{7f}",
            "/a\u{9f}",
            "/a\u{e000}",
            "/a\u{fff0}",
            "/a\u{1f600}",
        ] {
            assert!(validate_path(p, false).is_err(), "{p:?} accepted");
        }
        assert!(validate_path("/a//", true).is_err());
        assert!(validate_path("a/", true).is_err());
    }

    #[test]
    fn ascii_paths_checked_like_any_other() {
        // printable ASCII skips the per-character check: every ASCII character is judged the
        // same as through it, alone and beside a non-ASCII one
        for c in (0u8..0x80).map(char::from) {
            for p in [format!("/a{c}b"), format!("/é{c}b")] {
                assert_eq!(
                    validate_path(&p, false).is_ok(),
                    !forbidden_char(c),
                    "{p:?}"
                );
            }
        }
    }

    #[test]
    fn chroot_maps_both_ways() {
        let c = Chroot::new("/app").unwrap();
        assert_eq!(c.to_server("/"), "/app");
        assert_eq!(c.to_server("/x/y"), "/app/x/y");
        assert_eq!(c.to_client("/app").as_deref(), Some("/"));
        assert_eq!(c.to_client("/app/x").as_deref(), Some("/x"));
        // outside the chroot: never shown as if inside
        assert_eq!(c.to_client("/apple"), None);
        assert_eq!(c.to_client("/app0000000001"), None);
        assert_eq!(c.to_client("/"), None);
        assert_eq!(c.to_client("/other/app"), None);
        assert_eq!(c.to_server_sequential("/"), "/app/");
        assert_eq!(c.to_server_sequential("/x-"), "/app/x-");
        assert_eq!(Chroot::none().to_server_sequential("/"), "/");
        assert_eq!(
            Chroot::none().to_client("/apple").as_deref(),
            Some("/apple")
        );
        assert_eq!(Chroot::new("/").unwrap(), Chroot::none());
        assert!(Chroot::new("/app/").is_err());
    }
}
