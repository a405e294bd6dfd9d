//! SetPartitioner against a real server: kazoo's layout and partition, and membership churn
//! (joins, leaves, a connection reset, a real session expiry) with a fenced checker: no item
//! is ever owned by two members at once, and every item is owned once the party is stable.

mod common;

use common::{bounded, children, eventually, shared_client, unique, wait_state};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zk_core::{Client, State};
use zk_recipes::{kazoo_partition, PartitionState, SetPartitioner};
use zk_testkit::{shared_server, FaultProxy};

const BOUNDARY: Duration = Duration::from_millis(300);

fn items(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("item-{i:02}")).collect()
}

/// Drives a partitioner like kazoo's documented loop until it fails or `stop` is set.
async fn drive(p: Arc<SetPartitioner>, stop: Arc<AtomicBool>) -> PartitionState {
    while !stop.load(Ordering::SeqCst) {
        match p
            .wait_for_acquire_timeout(Duration::from_millis(200))
            .await
            .unwrap()
        {
            None => {}
            Some(PartitionState::Acquired) => {
                tokio::select! {
                    _ = p.wait_while_acquired() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            Some(PartitionState::Release) => p.release_set().await.unwrap(),
            Some(s) => return s,
        }
    }
    p.state()
}

#[tokio::test(flavor = "multi_thread")]
async fn partitioner_splits_the_set_as_kazoo_does_in_kazoos_layout() {
    let c = shared_client().await;
    let path = unique("partitioner-layout");
    let set = items(5);
    let stop = Arc::new(AtomicBool::new(false));
    let ps: Vec<Arc<SetPartitioner>> = ["w1", "w2"]
        .iter()
        .map(|id| {
            Arc::new(
                SetPartitioner::new(&c, &path, set.clone(), *id)
                    .unwrap()
                    .time_boundary(BOUNDARY),
            )
        })
        .collect();
    let tasks: Vec<_> = ps
        .iter()
        .map(|p| tokio::spawn(drive(p.clone(), stop.clone())))
        .collect();
    let members = vec!["w1".to_string(), "w2".to_string()];
    eventually("both members acquired kazoo's partition", || async {
        ps.iter().all(|p| {
            p.state() == PartitionState::Acquired
                && p.partitions() == kazoo_partition(p.identifier(), &members, &set)
        })
    })
    .await;
    assert_eq!(ps[0].partitions(), vec!["item-00", "item-02", "item-04"]);
    assert_eq!(ps[1].partitions(), vec!["item-01", "item-03"]);
    assert_eq!(children(&c, &path).await, vec!["locks", "party"]);
    let party = children(&c, &format!("{path}/party")).await;
    assert_eq!(party.len(), 2);
    assert!(
        party
            .iter()
            .all(|n| n.ends_with("-w1") || n.ends_with("-w2")),
        "{party:?}"
    );
    for (i, item) in set.iter().enumerate() {
        let lp = format!("{path}/locks/{item}");
        let nodes = children(&c, &lp).await;
        assert_eq!(nodes.len(), 1, "{lp}: {nodes:?}");
        assert!(nodes[0].contains("__lock__"), "{nodes:?}");
        let (data, _) = c.get_data(&format!("{lp}/{}", nodes[0])).await.unwrap();
        assert_eq!(data, if i % 2 == 0 { b"w1" } else { b"w2" });
    }
    // a fenced write applies for the owner's item, and the fence is refused for another's
    let fence = ps[0].fence("item-00").expect("owned");
    c.multi(vec![fence]).await.unwrap();
    assert!(ps[0].fence("item-01").is_none());
    // finish: locks released, party left, Failure for good
    ps[1].finish().await.unwrap();
    assert_eq!(ps[1].state(), PartitionState::Failure);
    eventually("w1 takes the whole set after w2 left", || async {
        ps[0].partitions() == set
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        bounded("driver", t).await.unwrap();
    }
}

/// One member of the churn test: its own client behind a fault proxy.
struct Member {
    client: Client,
    proxy: FaultProxy,
    /// The member's current partitioner (a new one after a Failure).
    current: Arc<Mutex<Option<Arc<SetPartitioner>>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

async fn member(path: &str, id: &str, set: &[String]) -> Member {
    let proxy = FaultProxy::start(shared_server().addr()).await.unwrap();
    let client = common::client(&proxy.connect_string()).await;
    let current = Arc::new(Mutex::new(None::<Arc<SetPartitioner>>));
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let (client, path, id, set) =
            (client.clone(), path.to_owned(), id.to_owned(), set.to_vec());
        let (current, stop) = (current.clone(), stop.clone());
        tokio::spawn(async move {
            // after a Failure (a lost session) the member starts a new partitioner
            let mut failures = 0;
            while !stop.load(Ordering::SeqCst) {
                let p = Arc::new(
                    SetPartitioner::new(&client, &path, set.clone(), id.clone())
                        .unwrap()
                        .time_boundary(BOUNDARY),
                );
                *current.lock().unwrap() = Some(p.clone());
                if drive(p.clone(), stop.clone()).await == PartitionState::Failure {
                    failures += 1;
                }
                p.finish().await.unwrap();
            }
            *current.lock().unwrap() = None;
            failures
        })
    };
    Member {
        client,
        proxy,
        current,
        stop,
        task,
    }
}

type Registry = Arc<Mutex<Vec<(String, Arc<Mutex<Option<Arc<SetPartitioner>>>>)>>>;

/// Every registered member runs a partitioner that acquired exactly kazoo's partition over
/// the party's members as the server lists them (which must be the registered ones), and
/// together they own the whole set.
async fn stable(reg: &Registry, set: &[String], direct: &Client, path: &str) -> bool {
    let ps: Option<Vec<Arc<SetPartitioner>>> = reg
        .lock()
        .unwrap()
        .iter()
        .map(|(_, cur)| cur.lock().unwrap().clone())
        .collect();
    let Some(ps) = ps else {
        return false; // a member is between partitioners
    };
    let mut ids: Vec<String> = ps.iter().map(|p| p.identifier().to_owned()).collect();
    ids.sort();
    let mut party: Vec<String> = children(direct, &format!("{path}/party"))
        .await
        .iter()
        .map(|n| n.split_once('-').unwrap().1.to_owned())
        .collect();
    party.sort();
    if party != ids {
        return false;
    }
    let mut all = BTreeSet::new();
    for p in &ps {
        if p.state() != PartitionState::Acquired {
            return false;
        }
        let owned = p.owned();
        if owned != kazoo_partition(p.identifier(), &ids, set) {
            return false;
        }
        all.extend(owned);
    }
    all.len() == set.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn partitioner_churn_never_gives_an_item_to_two_live_owners_and_covers_the_set_when_stable() {
    let direct = shared_client().await;
    let path = unique("partitioner-churn");
    let set = items(12);
    let reg: Registry = Arc::new(Mutex::new(Vec::new()));
    let mut members: HashMap<String, Member> = HashMap::new();
    for id in ["m0", "m1", "m2"] {
        let m = member(&path, id, &set).await;
        reg.lock().unwrap().push((id.to_owned(), m.current.clone()));
        members.insert(id.to_owned(), m);
    }

    // the checker: samples every member's owned items with their lock nodes; two members
    // owning one item in a sample is a violation if the server still has both lock nodes
    let samples = Arc::new(AtomicU64::new(0));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let double_beliefs = Arc::new(AtomicU64::new(0));
    let checking = Arc::new(AtomicBool::new(true));
    let checker = {
        let (reg, samples, violations, double_beliefs, checking) = (
            reg.clone(),
            samples.clone(),
            violations.clone(),
            double_beliefs.clone(),
            checking.clone(),
        );
        let direct = direct.clone();
        tokio::spawn(async move {
            while checking.load(Ordering::SeqCst) {
                let mut owners: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
                {
                    let reg = reg.lock().unwrap();
                    for (id, cur) in reg.iter() {
                        if let Some(p) = cur.lock().unwrap().clone() {
                            for item in p.owned() {
                                if let Some(node) = p.lock_node(&item) {
                                    owners.entry(item).or_default().push((id.clone(), node));
                                }
                            }
                        }
                    }
                }
                samples.fetch_add(1, Ordering::SeqCst);
                for (item, who) in owners.into_iter().filter(|(_, w)| w.len() > 1) {
                    double_beliefs.fetch_add(1, Ordering::SeqCst);
                    let mut live = Vec::new();
                    for (id, node) in &who {
                        if direct.exists(node).await.unwrap().is_some() {
                            live.push(id.clone());
                        }
                    }
                    if live.len() > 1 {
                        violations.lock().unwrap().push(format!("{item}: {live:?}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let wait_stable = |what: &'static str| {
        let (reg, set, direct, path) = (reg.clone(), set.clone(), direct.clone(), path.clone());
        async move {
            eventually(what, || {
                let (reg, set, direct, path) =
                    (reg.clone(), set.clone(), direct.clone(), path.clone());
                async move { stable(&reg, &set, &direct, &path).await }
            })
            .await
        }
    };
    wait_stable("3 members own the set").await;

    // a member joins while m2 hears everything 0.5 s late (longer than the time boundary):
    // the newcomer's partition is settled before m2 learns it must give items up, and only
    // the item locks keep the newcomer off m2's items until m2 released them
    members["m2"].proxy.set_delay(Duration::from_millis(500));
    let m = member(&path, "m3", &set).await;
    reg.lock().unwrap().push(("m3".into(), m.current.clone()));
    members.insert("m3".into(), m);
    wait_stable("4 members own the set after m3 joined").await;
    members["m2"].proxy.set_delay(Duration::ZERO);

    // a member leaves
    let m1 = members.remove("m1").unwrap();
    reg.lock().unwrap().retain(|(id, _)| id != "m1");
    m1.stop.store(true, Ordering::SeqCst);
    assert_eq!(bounded("m1 stops", m1.task).await.unwrap(), 0);
    wait_stable("3 members own the set after m1 left").await;

    // a connection reset: m2 is suspended, releases, allocates again in the same session
    let m2 = &members["m2"];
    let sid = m2.client.session_id();
    let p2 = m2.current.lock().unwrap().clone().unwrap();
    assert_eq!(p2.state(), PartitionState::Acquired);
    m2.proxy.reset();
    // RELEASE (or already ALLOCATING again: the driver answers RELEASE at once), not FAILURE
    let after = bounded("m2 leaves ACQUIRED", p2.wait_while_acquired()).await;
    assert!(
        matches!(after, PartitionState::Release | PartitionState::Allocating),
        "a suspended connection moves ACQUIRED to RELEASE, not {after:?}"
    );
    wait_stable("the set is owned again after m2's reset").await;
    assert_eq!(m2.client.session_id(), sid, "m2 kept its session");

    // a real session expiry of m0: its partitioner fails, it starts a new one in a new session
    let m0 = &members["m0"];
    m0.proxy.reject_new(true);
    m0.proxy.reset();
    wait_state(&m0.client, State::Suspended).await;
    let (sid, pw) = m0.client.session_credentials();
    zk_testkit::expire_session(shared_server().addr(), sid, &pw)
        .await
        .unwrap();
    m0.proxy.reject_new(false);
    wait_state(&m0.client, State::Connected).await;
    assert_ne!(m0.client.session_id(), sid, "a new session");
    wait_stable("the set is owned again after m0's session expired").await;

    checking.store(false, Ordering::SeqCst);
    bounded("checker", checker).await.unwrap();
    let n = samples.load(Ordering::SeqCst);
    let v = violations.lock().unwrap().clone();
    eprintln!(
        "partitioner churn: {n} samples, {} items believed owned by two members, {} of them with both lock nodes live (violations)",
        double_beliefs.load(Ordering::SeqCst),
        v.len()
    );
    assert!(v.is_empty(), "items owned by two live members: {v:?}");
    assert!(n > 50, "the checker ran ({n} samples)");
    let mut failures = 0;
    for (_, m) in members {
        m.stop.store(true, Ordering::SeqCst);
        failures += bounded("member stops", m.task).await.unwrap();
    }
    assert_eq!(
        failures, 1,
        "exactly m0's partitioner failed (its session expired)"
    );
    eventually("every member left the party", || async {
        children(&direct, &format!("{path}/party")).await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_partitioner_kazoo_and_rust_split_one_set_between_them() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let c = shared_client().await;
    let path = unique("interop-partitioner");
    let set = items(6);
    let hosts = shared_server().connect_string();
    let mut args: Vec<&str> = vec![&hosts, &path, "py", "0.3"];
    args.extend(set.iter().map(String::as_str));
    let mut py = common::python("partitioner.py", &args);
    let mut lines = BufReader::new(py.stdout.take().unwrap()).lines();

    let rust = Arc::new(
        SetPartitioner::new(&c, &path, set.clone(), "rust")
            .unwrap()
            .time_boundary(BOUNDARY),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(drive(rust.clone(), stop.clone()));
    let both = vec!["py".to_string(), "rust".to_string()];
    let py_share = kazoo_partition("py", &both, &set);
    // kazoo reports ACQUIRED with its share of the two-member split (earlier lines may be a
    // one-member split, before the Rust member joined)
    let want = serde_json_list(&py_share);
    bounded("kazoo acquires its share", async {
        loop {
            let l = lines.next_line().await.unwrap().expect("kazoo exited");
            if l == format!("ACQUIRED {want}") {
                break;
            }
        }
    })
    .await;
    eventually("rust acquires the other share", || async {
        rust.state() == PartitionState::Acquired
            && rust.partitions() == kazoo_partition("rust", &both, &set)
    })
    .await;
    let mut union: BTreeSet<String> = rust.partitions().into_iter().collect();
    assert!(py_share.iter().all(|i| !union.contains(i)), "disjoint");
    union.extend(py_share.iter().cloned());
    assert_eq!(union.len(), set.len(), "together they own the set");
    // kazoo holds its items' locks: the lock nodes of its share are kazoo's
    for item in &py_share {
        let nodes = children(&c, &format!("{path}/locks/{item}")).await;
        assert_eq!(nodes.len(), 1, "{item}: {nodes:?}");
    }

    // kazoo leaves: Rust takes the whole set
    let stdin = py.stdin.as_mut().unwrap();
    stdin.write_all(b"stop\n").await.unwrap();
    stdin.flush().await.unwrap();
    bounded("kazoo stops", async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l == "STOPPED" {
                break;
            }
        }
    })
    .await;
    eventually("rust owns the whole set after kazoo left", || async {
        rust.state() == PartitionState::Acquired && rust.partitions() == set
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    bounded("driver", task).await.unwrap();
}

/// `json.dumps(list)` of strings without escapes.
fn serde_json_list(v: &[String]) -> String {
    let quoted: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

#[tokio::test(flavor = "multi_thread")]
async fn partitioner_dropped_while_acquired_releases_its_locks_and_leaves_the_party() {
    let c = shared_client().await;
    let path = unique("partitioner-drop");
    let set = items(3);
    let p = SetPartitioner::new(&c, &path, set.clone(), "solo")
        .unwrap()
        .time_boundary(BOUNDARY);
    assert_eq!(p.state(), PartitionState::Allocating);
    assert!(
        children(&c, &path).await.is_empty(),
        "nothing sent before the first wait"
    );
    assert_eq!(
        bounded("acquire", p.wait_for_acquire()).await.unwrap(),
        PartitionState::Acquired
    );
    assert_eq!(p.partitions(), set);
    drop(p);
    eventually("party left and every lock released", || async {
        let mut empty = children(&c, &format!("{path}/party")).await.is_empty();
        for item in &set {
            empty &= children(&c, &format!("{path}/locks/{item}"))
                .await
                .is_empty();
        }
        empty
    })
    .await;
}
