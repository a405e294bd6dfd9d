//! Comparing a [`TreeCache`]'s mirror with the server (tree_cache.rs, review12b.rs).

use std::collections::BTreeMap;
use zk_core::{Client, Error};
use zk_recipes::TreeCache;

/// What a mirror is compared by: path → (data, czxid, mzxid, version).
pub type View = BTreeMap<String, (Vec<u8>, i64, i64, i32)>;

/// A fresh walk of the server's subtree at `root`.
pub async fn server_view(c: &Client, root: &str) -> View {
    let mut out = View::new();
    let mut todo = vec![root.to_owned()];
    while let Some(p) = todo.pop() {
        let (data, stat) = match c.get_data(&p).await {
            Ok(r) => r,
            Err(Error::NoNode) => continue,
            Err(e) => panic!("get_data {p}: {e}"),
        };
        match c.get_children(&p).await {
            Ok(children) => todo.extend(children.iter().map(|ch| format!("{p}/{ch}"))),
            Err(Error::NoNode) => {}
            Err(e) => panic!("get_children {p}: {e}"),
        }
        out.insert(p, (data, stat.czxid, stat.mzxid, stat.version));
    }
    out
}

/// The cache's mirror, in the same shape.
pub fn cache_view(cache: &TreeCache) -> View {
    cache
        .snapshot()
        .into_iter()
        .map(|(p, n)| {
            let s = n.stat();
            (p, (n.data().to_vec(), s.czxid, s.mzxid, s.version))
        })
        .collect()
}
