//! The nemesis does what its schedule and docs/chaos.md promise, against one real server:
//!
//! * server faults never overlap as executed: a server fault's slot ends when its member serves
//!   again (a restarted JVM takes seconds), and the next one waits for it;
//! * a `cut` fault cuts one reply, not one per armed proxy (a client has a proxy in front of
//!   every member, and reconnects through the next one after the cut).

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use zk_chaos::cluster::{ClientNet, Servers};
use zk_chaos::history::{Event, History, Recorder};
use zk_chaos::nemesis::{self, Fault, FaultKind, Target};
use zk_core::{Client, CreateMode};

async fn standalone() -> Arc<Servers> {
    let servers = tokio::task::spawn_blocking(|| Servers::start(true))
        .await
        .expect("start task")
        .expect("start ZooKeeper");
    Arc::new(servers)
}

fn nemesis_event<'a>(h: &'a History, op: &str, kind: &str) -> &'a Event {
    h.infos_of("nemesis")
        .find(|e| e.op == op && e.args.get("kind").and_then(|v| v.as_str()) == Some(kind))
        .unwrap_or_else(|| panic!("no {op} event of a {kind} fault in {:?}", h.infos))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_faults_overlap_when_a_restart_outlasts_the_gap() {
    let servers = standalone().await;
    let rec = Arc::new(Recorder::new(None).expect("in-memory history"));
    // the member is down 0.2 s, but a JVM takes far longer than that to serve again: the
    // pause, scheduled 0.1 s after the kill's nominal end, must wait for it
    let schedule = vec![
        Fault {
            at_ms: 100,
            kind: FaultKind::Kill,
            target: Target::Member(0),
            dur_ms: 200,
            param: 0,
        },
        Fault {
            at_ms: 400,
            kind: FaultKind::Pause,
            target: Target::Member(0),
            dur_ms: 300,
            param: 0,
        },
    ];
    let start = Instant::now();
    nemesis::play(
        schedule,
        start,
        start + Duration::from_secs(600),
        Arc::clone(&servers),
        Vec::new(),
        Arc::clone(&rec),
        StdRng::seed_from_u64(1),
    )
    .await;
    let h = rec.history();
    let kill_end = nemesis_event(&h, "fault-end", "kill");
    let pause = nemesis_event(&h, "fault", "pause");
    assert!(
        kill_end.args.get("error").is_none(),
        "the restart failed: {kill_end:?}"
    );
    assert!(
        pause.t_us >= kill_end.t_us,
        "the pause started at {} ms, before the killed member served again at {} ms: server faults overlapped",
        pause.t_us / 1000,
        kill_end.t_us / 1000
    );
    assert!(
        pause.args["delayed_ms"].as_u64().is_some_and(|d| d > 0),
        "the pause waited, but its event does not say it was delayed: {pause:?}"
    );
    let kill_end_serving = kill_end.args["serving"].as_bool();
    assert_eq!(kill_end_serving, Some(true), "{kill_end:?}");
    servers
        .member(0)
        .mode()
        .expect("the member serves after the faults");
    // the printed summary says so too (it reads the schedule from the meta line)
    rec.meta(serde_json::json!({"schedule": ["kill line", "pause line"]}));
    let lines = zk_chaos::report::executed(&rec.history());
    assert!(
        lines[1].starts_with("pause line  ran ") && lines[1].contains("DELAYED"),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_fault_that_would_outlast_the_heal_is_skipped_and_recorded() {
    let servers = standalone().await;
    let rec = Arc::new(Recorder::new(None).expect("in-memory history"));
    let kill = Fault {
        at_ms: 0,
        kind: FaultKind::Kill,
        target: Target::Member(0),
        dur_ms: 100,
        param: 0,
    };
    // scheduled to end before the heal (at 1.5 s), but it can start only once the killed
    // member serves again, which a restarted JVM does not do within 0.1 s
    let pause = Fault {
        at_ms: 200,
        dur_ms: 1200,
        kind: FaultKind::Pause,
        ..kill.clone()
    };
    let start = Instant::now();
    nemesis::play(
        vec![kill, pause],
        start,
        start + Duration::from_millis(1500),
        Arc::clone(&servers),
        Vec::new(),
        Arc::clone(&rec),
        StdRng::seed_from_u64(1),
    )
    .await;
    let h = rec.history();
    let kill_end = nemesis_event(&h, "fault-end", "kill");
    let skipped = nemesis_event(&h, "fault-skipped", "pause");
    assert!(
        kill_end.t_us > 300_000,
        "the member served again {} ms after the start: the skip below is not tested",
        kill_end.t_us / 1000
    );
    assert!(
        !h.infos_of("nemesis").any(
            |e| e.op == "fault" && e.args.get("kind").and_then(|v| v.as_str()) == Some("pause")
        ),
        "a skipped fault ran: {:?}",
        h.infos
    );
    assert!(
        skipped.args["reason"]
            .as_str()
            .is_some_and(|r| r.contains("before the heal")),
        "{skipped:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_fires_once_per_armed_proxy_instead_of_once() {
    let servers = standalone().await;
    let addr = servers.member(0).addr();
    // three proxies in front of the one server: a client of a 3-member ensemble
    let net = ClientNet::start(0, "register", &[addr, addr, addr])
        .await
        .expect("start the proxies");
    let zk = Client::builder(net.connect_string())
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect through the proxies");
    zk.create("/cut", b"0", CreateMode::Persistent)
        .await
        .expect("create /cut");
    let rec = Arc::new(Recorder::new(None).expect("in-memory history"));
    let start = Instant::now();
    let cut = Fault {
        at_ms: 0,
        kind: FaultKind::Cut,
        target: Target::Client(0),
        dur_ms: 3000,
        param: 5, // setData
    };
    let nemesis = tokio::spawn(nemesis::play(
        vec![cut],
        start,
        start + Duration::from_secs(600),
        Arc::clone(&servers),
        vec![Arc::clone(&net)],
        Arc::clone(&rec),
        StdRng::seed_from_u64(1),
    ));
    // setData for the whole armed window and a second beyond it
    let mut writes = 0u32;
    while start.elapsed() < Duration::from_secs(4) {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            zk.set_data("/cut", writes.to_string().as_bytes(), None),
        )
        .await;
        writes += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nemesis.await.expect("the nemesis task");
    let fired: u64 = net.proxies.iter().map(|p| p.cuts_fired()).sum();
    assert_eq!(
        fired, 1,
        "one cut fault (armed 3 s, 'the next request of one opcode') cut {fired} replies of {writes} setData: once per armed proxy"
    );
}
