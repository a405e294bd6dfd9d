//! A tour of zk-core, printed as a timeline.
//!
//! ```text
//! cargo run -p zk-examples --example demo                 # starts a local zk-server itself
//! cargo run -p zk-examples --example demo -- --hosts H:P  # or uses yours (writes under /zk-demo-*)
//! cargo run -p zk-examples --example demo -- --real-zookeeper  # Debian's ZooKeeper (Java)
//! ```

use futures::StreamExt;
use std::time::{Duration, Instant};
use zk_core::{AddWatchMode, Client, CreateMode, Error, Op, State};
use zk_examples::LocalServer;
use zk_testkit::FaultProxy;

struct Timeline(Instant);

impl Timeline {
    fn say(&self, what: impl std::fmt::Display) {
        println!("[{:>7.3}s] {what}", self.0.elapsed().as_secs_f64());
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    let hosts = args
        .iter()
        .position(|a| a == "--hosts")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("ZK_HOSTS").ok());
    let t = Timeline(Instant::now());

    let local;
    let (hosts, server_addr) = match hosts {
        Some(h) => {
            t.say(format!("using ZooKeeper at {h}"));
            (h, None)
        }
        None => {
            local = LocalServer::start(args.iter().any(|a| a == "--real-zookeeper")).await?;
            t.say(format!(
                "started a local server: {}, serving on {}",
                local.describe(),
                local.connect_string()
            ));
            (local.connect_string(), Some(local.addr()))
        }
    };
    let root = format!("/zk-demo-{}", std::process::id());

    // 1. connect, chrooted
    let admin = Client::connect(&hosts).await?;
    admin.ensure_path(&root).await?;
    let c = Client::builder(format!("{hosts}{root}"))
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    t.say(format!(
        "connected: session {:#x}, timeout {:?}, chroot {root}",
        c.session_id(),
        c.status().session_timeout
    ));

    // 2. data with versions
    c.create("/config", b"v1", CreateMode::Persistent).await?;
    let (data, stat) = c.get_data("/config").await?;
    t.say(format!(
        "created /config = {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    ));
    match c.set_data("/config", b"v2", Some(7)).await {
        Err(Error::BadVersion) => {
            t.say("set_data with a stale version 7 -> BadVersion, as it should")
        }
        other => t.say(format!("unexpected: {other:?}")),
    }

    // 3. a one-shot watch and a recursive persistent watch
    let (_, _, once) = c.get_data_watch("/config").await?;
    let mut subtree = c.add_watch("/", AddWatchMode::PersistentRecursive).await?;
    c.set_data("/config", b"v2", Some(0)).await?;
    t.say(format!("one-shot watch fired: {:?}", once.await?));
    c.create("/jobs", b"", CreateMode::Persistent).await?;
    c.create("/jobs/job-", b"", CreateMode::PersistentSequential)
        .await?;
    for _ in 0..3 {
        if let Some(Ok(ev)) = subtree.next().await {
            t.say(format!("recursive watch: {} {}", ev.event_type, ev.path));
        }
    }

    // 4. a transaction: all or nothing, the failing op named
    let lock = c
        .create("/lock-", b"", CreateMode::EphemeralSequential)
        .await?;
    c.multi(vec![
        Op::check(&lock, None),
        Op::set_data("/config", b"v3".to_vec(), None),
    ])
    .await?;
    t.say(format!(
        "fenced write: multi(check {lock}, set /config) applied"
    ));
    match c
        .multi(vec![
            Op::create("/a", b"".to_vec(), CreateMode::Persistent),
            Op::delete("/does-not-exist", None),
        ])
        .await
    {
        Err(Error::TransactionFailed { index, error }) => t.say(format!(
            "transaction refused at op {index} ({error}); /a exists? {}",
            c.exists("/a").await?.is_some()
        )),
        other => t.say(format!("unexpected: {other:?}")),
    }

    // 5. pipelining: many requests in flight on one connection
    let n = 20_000;
    let start = Instant::now();
    let futs: Vec<_> = (0..n).map(|_| c.get_data("/config")).collect();
    for r in futures::future::join_all(futs).await {
        r?;
    }
    let secs = start.elapsed().as_secs_f64();
    t.say(format!(
        "{n} pipelined reads on one session in {:.0} ms ({:.0}/s)",
        secs * 1e3,
        n as f64 / secs
    ));

    // 6. a network fault: the session and its watches survive a reconnect
    if let Some(addr) = server_addr {
        let proxy = FaultProxy::start(addr).await?;
        let p = Client::builder(format!("{}{root}", proxy.connect_string()))
            .session_timeout(Duration::from_secs(6))
            .connect()
            .await?;
        let mut states = p.state_stream();
        let (_, _, w) = p.get_data_watch("/config").await?;
        let sid = p.session_id();
        t.say("proxy: silent partition (blackhole) of a second client...");
        proxy.blackhole();
        let s = states.next().await.ok_or("state stream ended")?;
        t.say(format!(
            "  state {} (no reply for 2/3 of the session timeout)",
            s.state
        ));
        proxy.heal();
        let s = states.next().await.ok_or("state stream ended")?;
        t.say(format!(
            "  healed: state {}, same session: {}",
            s.state,
            s.session_id == sid
        ));
        c.set_data("/config", b"v4", None).await?;
        t.say(format!(
            "  its watch set before the partition fired: {:?}",
            w.await?.event_type
        ));

        // 7. session expiry
        p.create("/worker", b"", CreateMode::Ephemeral).await?;
        let (id, pw) = p.session_credentials();
        zk_testkit::expire_session(addr, id, &pw).await?;
        loop {
            let s = states.next().await.ok_or("state stream ended")?;
            t.say(format!("  state {} ({:?})", s.state, s.keeper_state));
            if s.state == State::Connected {
                break;
            }
        }
        t.say(format!(
            "after expiry: ephemeral /worker exists? {}; new session {:#x}",
            c.exists("/worker").await?.is_some(),
            p.session_id()
        ));
        p.close().await?;
    }

    // clean up
    c.close().await?;
    admin.delete_recursive(&root).await?;
    admin.close().await?;
    t.say("done; closed the sessions (ephemeral nodes vanished at once)");
    Ok(())
}
