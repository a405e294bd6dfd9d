//! `--layout kazoo|curator` on lock, `lock --read`, `lock --write`, semaphore and elect,
//! against a real server: ZK_NODE is the contender's node (the lease node for a semaphore) in
//! the chosen layout, its data is `--id`; with Curator's layout `--write` is the writer of a
//! read/write lock (Curator's readers wait for it) while a plain lock is a mutex (they do not).

mod common;

use common::*;
use zk_recipes::{Layout, ReadLock};

/// Runs `zk <sub> P <extra> -- sh -c 'print ZK_NODE and its data'`; the node's name relative
/// to `P` and its data.
async fn node_of(h: &str, sub: &str, p: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec![sub, p];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--id",
        "cli-7",
        "--",
        "sh",
        "-c",
        r#"echo "$ZK_NODE"; "$ZK" --hosts "$1" get "$ZK_NODE""#,
        "sh",
        h,
    ]);
    let o = run(h, &args).await;
    assert_eq!(o.code, 0, "zk {args:?}: {o:?}");
    let out = o.out();
    let mut lines = out.lines();
    let node = lines.next().expect("ZK_NODE").to_owned();
    let data = lines.next().unwrap_or_default().to_owned();
    let rel = node
        .strip_prefix(&format!("{p}/"))
        .unwrap_or_else(|| panic!("{node} is not under {p}"))
        .to_owned();
    (rel, data)
}

/// `_c_<uuid 8-4-4-4-12>-<lock_name><10 digits>`.
fn curator_name(name: &str, lock_name: &str) -> bool {
    let Some(rest) = name.strip_prefix("_c_") else {
        return false;
    };
    if rest.len() < 37 {
        return false;
    }
    let (uuid, tail) = rest.split_at(36);
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12]
        && uuid.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
        && tail
            .strip_prefix('-')
            .and_then(|t| t.strip_prefix(lock_name))
            .is_some_and(|s| s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test(flavor = "multi_thread")]
async fn layout_curator_names_every_recipes_node_as_curator_does() {
    let h = hosts();
    let p = unique("layout");
    for (sub, extra, sub_path, lock_name) in [
        ("lock", vec![], "", "lock-"),
        ("lock", vec!["--read"], "", "__READ__"),
        ("lock", vec!["--write"], "", "__WRIT__"),
        ("semaphore", vec!["--max", "2"], "leases/", "lease-"),
        ("elect", vec![], "", "latch-"),
    ] {
        let path = format!("{p}-{sub}{}", extra.first().copied().unwrap_or(""));
        let mut args = extra.clone();
        args.extend_from_slice(&["--layout", "curator"]);
        let (name, data) = node_of(&h, sub, &path, &args).await;
        let name = name
            .strip_prefix(sub_path)
            .unwrap_or_else(|| panic!("{sub} {extra:?}: {name} not under {sub_path}"));
        assert!(
            curator_name(name, lock_name),
            "{sub} {extra:?} --layout curator: {name} is not a Curator `{lock_name}` node"
        );
        assert_eq!(data, "cli-7", "{sub} {extra:?}: the node holds --id");
    }
    // kazoo's layout (the default, and explicitly): --write is a plain lock, `__lock__`
    for args in [vec!["--write"], vec!["--write", "--layout", "kazoo"]] {
        let (name, data) = node_of(&h, "lock", &format!("{p}-kw"), &args).await;
        let (uuid, seq) = name.split_once("__lock__").expect("kazoo's __lock__ node");
        assert!(uuid.len() == 32 && seq.len() == 10, "{name}");
        assert_eq!(data, "cli-7");
    }
    // --read and --write together make no sense
    let o = run(&h, &["lock", &p, "--read", "--write", "--", "true"]).await;
    assert_eq!(o.code, 2, "a usage error: {o:?}");
}

/// Curator's readers wait for a `--write` holder, not for a plain `lock` (an
/// InterProcessMutex `lock-` node is no writer to them): the reason `--write` exists.
#[tokio::test(flavor = "multi_thread")]
async fn curator_readers_wait_for_write_but_not_for_a_plain_lock() {
    let h = hosts();
    let c = client(&h).await;
    let dir = TempDir::new();
    for (flag, blocks) in [(Some("--write"), true), (None, false)] {
        let p = unique("rw-curator");
        let go = dir.file(&format!("go-{blocks}"));
        let hold = format!("echo inside; {}", sh_wait_file(&go));
        let mut args = vec!["lock", p.as_str()];
        args.extend(flag);
        args.extend_from_slice(&["--layout", "curator", "--", "sh", "-c", &hold]);
        let mut holder = Proc::start(&h, &args);
        holder.wait_stdout("inside").await;
        let reader = ReadLock::new(&c, &p, "rs-reader").layout(Layout::Curator);
        let got = reader.try_acquire().await.unwrap();
        assert_eq!(
            got.is_none(),
            blocks,
            "a Curator reader while `zk lock {flag:?} --layout curator` holds"
        );
        if let Some(g) = got {
            g.release().await.unwrap();
        }
        // and a --read --layout curator CLI reader agrees with the Rust one
        let o = run(
            &h,
            &[
                "lock",
                &p,
                "--read",
                "--layout",
                "curator",
                "--timeout",
                "1s",
                "--",
                "true",
            ],
        )
        .await;
        assert_eq!(o.code, if blocks { 75 } else { 0 }, "{o:?}");
        dir.touch(&format!("go-{blocks}"));
        assert_eq!(holder.exit().await, 0);
    }
}
