//! TreeCache against a real ZooKeeper: the initial load, every kind of change as an event,
//! the mirror equal to the server after every heal (random writes at several depths from
//! another client while the cache's connection is reset, blackholed and its session really
//! expired), and the server-side watch removed on close and drop.

mod common;

use common::tree_view::{cache_view, server_view, View};
use common::{bounded, eventually, unique, wait_state};
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use zk_core::{Client, CreateMode, Error, State};
use zk_recipes::{TreeCache, TreeCacheEvent, TreeCacheEvents};
use zk_testkit::{expire_session, shared_server, FaultProxy};

/// A replica built only from a cache's event stream, and counts of its event kinds.
#[derive(Default)]
struct Replica {
    view: View,
    added: u64,
    updated: u64,
    removed: u64,
    initialized: u64,
    suspended: u64,
    reconnected: u64,
    lost: u64,
    lagged: u64,
}

impl Replica {
    fn apply(&mut self, ev: TreeCacheEvent) {
        match ev {
            TreeCacheEvent::NodeAdded { path, node }
            | TreeCacheEvent::NodeUpdated { path, node } => {
                if self.view.contains_key(&path) {
                    self.updated += 1;
                } else {
                    self.added += 1;
                }
                let s = node.stat();
                self.view
                    .insert(path, (node.data().to_vec(), s.czxid, s.mzxid, s.version));
            }
            TreeCacheEvent::NodeRemoved { path, .. } => {
                self.removed += 1;
                assert!(
                    self.view.remove(&path).is_some(),
                    "removed {path}, which the events never added"
                );
            }
            TreeCacheEvent::Initialized => self.initialized += 1,
            TreeCacheEvent::ConnectionSuspended => self.suspended += 1,
            TreeCacheEvent::ConnectionReconnected => self.reconnected += 1,
            TreeCacheEvent::ConnectionLost => self.lost += 1,
            TreeCacheEvent::Lagged(n) => self.lagged += n,
            other => panic!("unexpected event {other:?}"),
        }
    }
}

/// Applies every event of `events` to a shared replica, in a task.
fn follow(events: TreeCacheEvents) -> Arc<Mutex<Replica>> {
    let replica = Arc::new(Mutex::new(Replica::default()));
    let r = replica.clone();
    tokio::spawn(async move {
        let mut events = events;
        while let Some(ev) = events.next().await {
            r.lock().unwrap().apply(ev);
        }
    });
    replica
}

/// Forwards every event to a channel, in a task.
fn forward(events: TreeCacheEvents) -> mpsc::UnboundedReceiver<TreeCacheEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut events = events;
        while let Some(ev) = events.next().await {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    rx
}

async fn next_event(
    rx: &mut mpsc::UnboundedReceiver<TreeCacheEvent>,
    what: &str,
) -> TreeCacheEvent {
    bounded(what, rx.recv())
        .await
        .unwrap_or_else(|| panic!("{what}: the event stream ended"))
}

/// The next node event (connection events skipped) as (kind, path, data).
async fn next_node_event(
    rx: &mut mpsc::UnboundedReceiver<TreeCacheEvent>,
    what: &str,
) -> (&'static str, String, Vec<u8>) {
    loop {
        match next_event(rx, what).await {
            TreeCacheEvent::NodeAdded { path, node } => {
                return ("added", path, node.data().to_vec())
            }
            TreeCacheEvent::NodeUpdated { path, node } => {
                return ("updated", path, node.data().to_vec())
            }
            TreeCacheEvent::NodeRemoved { path, node } => {
                return ("removed", path, node.data().to_vec())
            }
            _ => {}
        }
    }
}

/// Waits until the cache's mirror equals a fresh walk of the server (and the server is
/// quiet: the walk taken twice gives the same).
async fn wait_mirror_equals_server(cache: &TreeCache, direct: &Client, root: &str, what: &str) {
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let server = server_view(direct, root).await;
        let mirror = cache_view(cache);
        if mirror == server && cache.is_synced() {
            return;
        }
        if tokio::time::Instant::now() >= end {
            let only_mirror: Vec<_> = mirror
                .iter()
                .filter(|(k, v)| server.get(*k) != Some(v))
                .map(|(k, v)| (k, v.1, v.2, v.3))
                .collect();
            let only_server: Vec<_> = server
                .iter()
                .filter(|(k, v)| mirror.get(*k) != Some(v))
                .map(|(k, v)| (k, v.1, v.2, v.3))
                .collect();
            panic!(
                "{what}: the mirror is not the server's subtree after 60 s (synced: {}); \
                 mirror only/different: {only_mirror:?}; server only/different: {only_server:?}",
                cache.is_synced()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_cache_loads_a_subtree_and_reports_every_change() {
    let c = common::shared_client().await;
    let root = unique("tc-load");
    for (p, d) in [
        (root.clone(), "r"),
        (format!("{root}/a"), "a"),
        (format!("{root}/a/x"), "ax"),
        (format!("{root}/a/x/deep"), "deep"),
        (format!("{root}/b"), "b"),
    ] {
        c.create(&p, d.as_bytes(), CreateMode::Persistent)
            .await
            .unwrap();
    }
    let cache = TreeCache::new(&c, &root);
    let mut rx = forward(cache.events());
    bounded("initialized", cache.wait_initialized())
        .await
        .unwrap();
    // the initial load, in path order, then Initialized
    for want in [
        root.clone(),
        format!("{root}/a"),
        format!("{root}/a/x"),
        format!("{root}/a/x/deep"),
        format!("{root}/b"),
    ] {
        let (kind, path, _) = next_node_event(&mut rx, "initial load").await;
        assert_eq!((kind, path.as_str()), ("added", want.as_str()));
    }
    assert_eq!(
        next_event(&mut rx, "initialized").await,
        TreeCacheEvent::Initialized
    );
    assert_eq!(cache.len(), 5);
    assert_eq!(
        cache.get(&format!("{root}/a/x/deep")).unwrap().data(),
        b"deep"
    );
    assert_eq!(
        cache.children(&root).unwrap(),
        vec!["a".to_owned(), "b".to_owned()]
    );
    assert_eq!(
        cache.children(&format!("{root}/b")).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(cache.children(&format!("{root}/nope")), None);
    assert_eq!(cache_view(&cache), server_view(&c, &root).await);

    // every kind of change, at several depths
    c.create(
        &format!("{root}/a/x/deep/deeper"),
        b"d2",
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    assert_eq!(
        next_node_event(&mut rx, "create deeper").await,
        ("added", format!("{root}/a/x/deep/deeper"), b"d2".to_vec())
    );
    c.set_data(&format!("{root}/a"), b"a2", None).await.unwrap();
    assert_eq!(
        next_node_event(&mut rx, "set a").await,
        ("updated", format!("{root}/a"), b"a2".to_vec())
    );
    c.set_data(&root, b"r2", None).await.unwrap();
    assert_eq!(
        next_node_event(&mut rx, "set root").await,
        ("updated", root.clone(), b"r2".to_vec())
    );
    c.delete(&format!("{root}/b"), None).await.unwrap();
    assert_eq!(
        next_node_event(&mut rx, "delete b").await,
        ("removed", format!("{root}/b"), b"b".to_vec())
    );
    c.create(&format!("{root}/e"), b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    assert_eq!(
        next_node_event(&mut rx, "ephemeral").await,
        ("added", format!("{root}/e"), Vec::new())
    );
    assert_eq!(
        cache
            .get(&format!("{root}/e"))
            .unwrap()
            .stat()
            .ephemeral_owner,
        c.session_id()
    );
    assert_eq!(cache_view(&cache), server_view(&c, &root).await);

    // a subscriber that comes late sees the current mirror first, then the changes
    let mut late = forward(cache.events());
    let mut replayed = Vec::new();
    loop {
        match next_event(&mut late, "replay").await {
            TreeCacheEvent::NodeAdded { path, .. } => replayed.push(path),
            TreeCacheEvent::Initialized => break,
            other => panic!("unexpected in the replay: {other:?}"),
        }
    }
    assert_eq!(replayed, cache.snapshot().into_keys().collect::<Vec<_>>());

    // the whole subtree deleted: every node removed, children first; created again: seen
    c.delete_recursive(&root).await.unwrap();
    eventually("the mirror is empty", || async { cache.is_empty() }).await;
    c.create(&root, b"again", CreateMode::Persistent)
        .await
        .unwrap();
    eventually("the root is back", || async {
        cache.get(&root).is_some_and(|n| n.data() == b"again")
    })
    .await;
    assert_eq!(
        next_node_event(&mut late, "late subscriber").await.0,
        "removed",
        "the late subscriber gets the deletions"
    );
    let stats = cache.stats();
    assert_eq!(stats.syncs, 1, "no reconnect, so one sync: {stats:?}");
    assert!(stats.watch_events >= 8, "{stats:?}");
    c.delete(&root, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_cache_of_a_missing_path_waits_for_it() {
    let c = common::shared_client().await;
    let root = unique("tc-missing");
    let cache = TreeCache::new(&c, &root);
    bounded("initialized", cache.wait_initialized())
        .await
        .unwrap();
    assert!(cache.is_empty());
    assert_eq!(cache.get(&root), None);
    assert_eq!(cache.children(&root), None);
    let mut rx = forward(cache.events());
    assert_eq!(
        next_event(&mut rx, "initialized").await,
        TreeCacheEvent::Initialized
    );
    c.create(&format!("{root}/a/b"), b"", CreateMode::Persistent)
        .await
        .unwrap_err();
    c.ensure_path(&format!("{root}/a/b")).await.unwrap();
    for want in [root.clone(), format!("{root}/a"), format!("{root}/a/b")] {
        assert_eq!(next_node_event(&mut rx, "created").await.1, want);
    }
    assert_eq!(cache.children(&root).unwrap(), vec!["a".to_owned()]);
    c.delete_recursive(&root).await.unwrap();
    eventually("the mirror is empty again", || async { cache.is_empty() }).await;
}

/// Whether the server lists a watch of any session on `path` (`wchp`).
async fn server_watches(addr: std::net::SocketAddr, path: &str) -> bool {
    zk_testkit::four_letter_async(addr, "wchp", Duration::from_secs(5))
        .await
        .map(|out| out.lines().any(|l| l.trim() == path))
        .unwrap_or_else(|e| panic!("wchp: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_cache_close_and_drop_remove_its_server_watch() {
    let server = shared_server();
    let c = common::shared_client().await;
    for how in ["close", "drop"] {
        let root = unique(&format!("tc-{how}"));
        c.create(&root, b"", CreateMode::Persistent).await.unwrap();
        let cache = TreeCache::new(&c, &root);
        bounded("initialized", cache.wait_initialized())
            .await
            .unwrap();
        common::wait_watched(server.addr(), &root).await;
        let mut rx = forward(cache.events());
        if how == "close" {
            bounded("close", cache.close()).await;
        } else {
            drop(cache);
        }
        eventually(&format!("no watch on {root} after {how}"), || {
            let root = root.clone();
            async move { !server_watches(server.addr(), &root).await }
        })
        .await;
        // the event stream ends after what it had
        loop {
            match bounded("stream end", rx.recv()).await {
                None => break,
                Some(_) => continue,
            }
        }
        // the client forgets it once the removal's reply is read
        eventually("no watcher left in the client", || async {
            c.registered_watchers() == 0
        })
        .await;
        c.delete(&root, None).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_cache_ends_when_the_client_is_closed() {
    let c = common::shared_client().await;
    let root = unique("tc-client-closed");
    let c2 = common::shared_client().await;
    let cache = TreeCache::new(&c2, &root);
    bounded("initialized", cache.wait_initialized())
        .await
        .unwrap();
    let mut rx = forward(cache.events());
    c2.close().await.unwrap();
    loop {
        match bounded("stream end", rx.recv()).await {
            None => break,
            Some(_) => continue,
        }
    }
    assert!(!cache.is_synced());
    drop(c);
}

/// A small deterministic generator (xorshift64*), so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random writes under `root` until `stop`: creates (at depths 1 to 4), data changes and
/// deletes of leaves. `nodes` is the writer's view of the tree (it is the only writer, so it
/// stays exact). Returns how many writes succeeded, and the view.
async fn random_writes(
    c: Client,
    root: String,
    mut nodes: Vec<String>,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> (u64, Vec<String>) {
    let mut rng = Rng(seed | 1);
    let mut done = 0u64;
    let mut n = seed % 1000;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..10 {
            let i = rng.below(nodes.len());
            let pick = nodes[i].clone();
            let depth = pick.matches('/').count() - root.matches('/').count();
            n += 1;
            let r = match rng.below(10) {
                0..=3 if depth < 4 => {
                    let child = format!("{pick}/n{}", n % 23);
                    let r = c
                        .create(&child, format!("c{n}").as_bytes(), CreateMode::Persistent)
                        .await;
                    if r.is_ok() {
                        nodes.push(child);
                    }
                    r.map(|_| ())
                }
                0..=6 => c
                    .set_data(&pick, format!("s{n}").as_bytes(), None)
                    .await
                    .map(|_| ()),
                _ if pick != root => {
                    let r = c.delete(&pick, None).await;
                    if r.is_ok() {
                        nodes.swap_remove(i);
                    }
                    r
                }
                _ => Ok(()),
            };
            match r {
                Ok(()) => done += 1,
                Err(Error::NodeExists | Error::NotEmpty) => {}
                Err(e) => panic!("writer: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (done, nodes)
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_cache_mirror_equals_the_server_after_every_heal_under_random_writes_and_faults() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let root = unique("tc-chaos");
    direct
        .create(&root, b"root", CreateMode::Persistent)
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let c = common::client(&proxy.connect_string()).await;
    let cache = TreeCache::new(&c, &root);
    let replica = follow(cache.events());
    bounded("initialized", cache.wait_initialized())
        .await
        .unwrap();

    const ROUNDS: u64 = 20;
    let writes = Arc::new(AtomicU64::new(0));
    let mut nodes = vec![root.clone()];
    let mut expiries = 0;
    for round in 0..ROUNDS {
        // writes from another client all through the round
        let stop = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(random_writes(
            direct.clone(),
            root.clone(),
            std::mem::take(&mut nodes),
            0x9e37_79b9_7f4a_7c15 ^ round,
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let fault = match round % 4 {
            // the connection reset; it reconnects at once
            0 => {
                proxy.reset();
                tokio::time::sleep(Duration::from_millis(300)).await;
                "reset"
            }
            // cut off while the writes go on, then back in the same session
            1 => {
                proxy.reject_new(true);
                proxy.reset();
                wait_state(&c, State::Suspended).await;
                tokio::time::sleep(Duration::from_millis(400)).await;
                proxy.reject_new(false);
                "disconnect"
            }
            // silence (nothing forwarded, nothing closed): shorter than the client's read
            // timeout (two thirds of the 10 s session: events arrive late but intact), or
            // longer (it gives the connection up and reconnects in the same session)
            2 => {
                let long = (round / 4) % 2 == 1;
                proxy.blackhole();
                tokio::time::sleep(Duration::from_millis(if long { 7500 } else { 2500 })).await;
                proxy.heal();
                if long {
                    "blackhole 7.5 s"
                } else {
                    "blackhole 2.5 s"
                }
            }
            // a real expiry: the cache's session is gone, the client starts a new one
            _ => {
                expiries += 1;
                let old = c.session_id();
                proxy.reject_new(true);
                proxy.reset();
                wait_state(&c, State::Suspended).await;
                let (sid, pw) = c.session_credentials();
                expire_session(server.addr(), sid, &pw).await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                proxy.reject_new(false);
                eventually("a new session", || async {
                    c.session_id() != old && c.state() == State::Connected
                })
                .await;
                "expiry"
            }
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        let (n, view) = bounded("writer", writer).await.unwrap();
        nodes = view;
        writes.fetch_add(n, Ordering::Relaxed);
        wait_state(&c, State::Connected).await;
        wait_mirror_equals_server(&cache, &direct, &root, &format!("round {round} ({fault})"))
            .await;
        // the event stream tells the same story as the mirror
        let mirror = cache_view(&cache);
        eventually(
            &format!("round {round}: the events' replica equals the mirror"),
            || {
                let same = replica.lock().unwrap().view == mirror;
                async move { same }
            },
        )
        .await;
        let nodes = mirror.len();
        eprintln!(
            "round {round} ({fault}): {n} writes, {nodes} nodes, stats {:?}",
            cache.stats()
        );
    }
    let stats = cache.stats();
    let r = std::mem::take(&mut *replica.lock().unwrap());
    eprintln!(
        "{ROUNDS} rounds, {} writes, {expiries} expiries; cache {stats:?}; events: {} added, \
         {} updated, {} removed, {} suspended, {} reconnected, {} lost, {} lagged",
        writes.load(Ordering::Relaxed),
        r.added,
        r.updated,
        r.removed,
        r.suspended,
        r.reconnected,
        r.lost,
        r.lagged
    );
    assert_eq!(r.initialized, 1, "Initialized once");
    assert_eq!(r.lagged, 0, "a consumer that keeps up does not lag");
    assert!(r.suspended >= ROUNDS / 2, "every cut reported");
    assert!(r.reconnected >= ROUNDS / 2, "every reconnect reported");
    assert!(r.lost >= expiries, "every expiry reported as lost");
    assert!(
        stats.syncs > ROUNDS / 2,
        "a sync after every reconnect: {stats:?}"
    );
    bounded("close", cache.close()).await;
    direct.delete_recursive(&root).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_cache_event_stream_of_a_slow_consumer_lags_while_the_mirror_stays_exact() {
    let c = common::shared_client().await;
    let root = unique("tc-lag");
    c.create(&root, b"", CreateMode::Persistent).await.unwrap();
    let cache = TreeCache::new(&c, &root);
    bounded("initialized", cache.wait_initialized())
        .await
        .unwrap();
    // subscribed, but not read while more than EVENT_CAPACITY changes happen
    let mut events = cache.events();
    let n = zk_recipes::tree_cache::EVENT_CAPACITY + 500;
    let creates = (0..n).map(|i| {
        let (c, p) = (c.clone(), format!("{root}/n{i}"));
        async move { c.create(&p, b"x", CreateMode::Persistent).await.unwrap() }
    });
    bounded("creates", futures::future::join_all(creates)).await;
    eventually("every node mirrored", || async { cache.len() == n + 1 }).await;
    assert_eq!(cache_view(&cache), server_view(&c, &root).await);
    // the replay (root, Initialized), then the lag, then the newest events
    let mut replica = Replica::default();
    let mut lagged = 0;
    while replica.view.len() + lagged < n + 1 {
        let ev = bounded("events", events.next()).await.expect("stream open");
        if let TreeCacheEvent::Lagged(k) = ev {
            lagged += k as usize;
        } else {
            replica.apply(ev);
        }
    }
    assert!(
        lagged >= 500,
        "the stream lagged by at least 500 events: {lagged}"
    );
    assert_eq!(
        replica.view.len(),
        n + 1 - lagged,
        "the stream kept the newest EVENT_CAPACITY"
    );
    drop(events);
    bounded("close", cache.close()).await;
    c.delete_recursive(&root).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_cache_ends_when_the_client_will_not_start_a_new_session() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let root = unique("tc-no-new-session");
    direct
        .create(&root, b"", CreateMode::Persistent)
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    common::init_tracing();
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(10))
        .reconnect_after_expiry(false)
        .connect()
        .await
        .unwrap();
    let cache = TreeCache::new(&c, &root);
    bounded("initialized", cache.wait_initialized())
        .await
        .unwrap();
    let mut rx = forward(cache.events());
    proxy.reject_new(true);
    proxy.reset();
    wait_state(&c, State::Suspended).await;
    let (sid, pw) = c.session_credentials();
    expire_session(server.addr(), sid, &pw).await.unwrap();
    proxy.reject_new(false);
    let mut seen = Vec::new();
    while let Some(ev) = bounded("events until the end", rx.recv()).await {
        seen.push(ev);
    }
    assert!(
        seen.contains(&TreeCacheEvent::ConnectionLost),
        "the loss is reported before the end: {seen:?}"
    );
    assert!(!cache.is_synced());
    // the last mirror is still readable
    assert!(cache.get(&root).is_some());
    direct.delete(&root, None).await.unwrap();
}

/// A kazoo TreeCache process on a path: `dump` returns its view.
struct KazooCache {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl KazooCache {
    async fn start(hosts: &str, path: &str) -> KazooCache {
        use tokio::io::AsyncBufReadExt;
        let mut child = common::python("tree_cache.py", &[hosts, "cache", path]);
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = bounded("kazoo TreeCache initialized", lines.next_line())
            .await
            .unwrap();
        assert_eq!(first.as_deref(), Some("INITIALIZED"));
        KazooCache { child, lines }
    }

    async fn dump(&mut self) -> View {
        use tokio::io::AsyncWriteExt;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"dump\n").await.unwrap();
        stdin.flush().await.unwrap();
        let mut view = View::new();
        loop {
            let line = bounded("kazoo dump", self.lines.next_line())
                .await
                .unwrap()
                .expect("kazoo answers");
            if line == "END" {
                return view;
            }
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 6, "a NODE line: {line}");
            let data = if f[2] == "-" {
                Vec::new()
            } else {
                (0..f[2].len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&f[2][i..i + 2], 16).unwrap())
                    .collect()
            };
            view.insert(
                f[1].to_owned(),
                (
                    data,
                    f[3].parse().unwrap(),
                    f[4].parse().unwrap(),
                    f[5].parse().unwrap(),
                ),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_tree_cache_mirror_equals_kazoos_tree_cache_after_random_writes() {
    let server = shared_server();
    let direct = common::shared_client().await;
    let root = unique("tc-interop");
    direct
        .create(&root, b"root", CreateMode::Persistent)
        .await
        .unwrap();
    let cache = TreeCache::new(&direct, &root);
    bounded("initialized", cache.wait_initialized())
        .await
        .unwrap();
    let mut kazoo = KazooCache::start(&server.connect_string(), &root).await;
    let mut nodes = vec![root.clone()];
    let mut total = 0;
    for round in 0..5u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(random_writes(
            direct.clone(),
            root.clone(),
            std::mem::take(&mut nodes),
            0x5851_f42d_4c95_7f2d ^ round,
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(700)).await;
        stop.store(true, Ordering::Relaxed);
        let (n, view) = bounded("writer", writer).await.unwrap();
        nodes = view;
        total += n;
        wait_mirror_equals_server(&cache, &direct, &root, &format!("round {round}")).await;
        let server_now = server_view(&direct, &root).await;
        let end = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let k = kazoo.dump().await;
            if k == server_now {
                break;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "round {round}: kazoo's TreeCache differs from the server after 60 s \
                 ({} nodes against {})",
                k.len(),
                server_now.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(cache_view(&cache), server_now, "round {round}");
        eprintln!(
            "round {round}: {n} writes, {} nodes, the same in kazoo's cache and ours",
            server_now.len()
        );
    }
    assert!(total > 0);
    bounded("close", cache.close()).await;
    direct.delete_recursive(&root).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_cache_dropped_at_any_point_of_its_start_leaves_no_watch() {
    let server = shared_server();
    let c = common::shared_client().await;
    let root = unique("tc-drop-early");
    c.create(&root, b"", CreateMode::Persistent).await.unwrap();
    c.create(&format!("{root}/a"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    // dropped after 0, 0.25, 0.5, ... ms: before the addWatch is sent, while it is
    // unanswered, during the walk, after it
    let mut initialized_before_drop = 0;
    for i in 0..40 {
        let cache = TreeCache::new(&c, &root);
        if i > 0 {
            tokio::time::sleep(Duration::from_micros(250 * i)).await;
        }
        if cache.is_initialized() {
            initialized_before_drop += 1;
        }
        drop(cache);
    }
    eventually("no watch on the root on the server", || {
        let root = root.clone();
        async move { !server_watches(server.addr(), &root).await }
    })
    .await;
    eventually("no watcher left in the client", || async {
        c.registered_watchers() == 0
    })
    .await;
    eprintln!("{initialized_before_drop} of 40 caches were initialized when dropped");
    c.delete_recursive(&root).await.unwrap();
}
