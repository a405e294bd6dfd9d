//! Durability of acknowledged writes across leader crashes (issue 10: the zk-chaos campaign
//! saw a ChildrenWatch go back, and with the lost-write check, acknowledged creates missing
//! after the heal).
//!
//! The shape the campaign found: a member rejoins (after a crash) and syncs with the leader;
//! the other follower is unavailable, so the writes acknowledged next are on the leader and the
//! member that just rejoined only; then the leader crashes and the unavailable follower comes
//! back. ZooKeeper promises that an acknowledged write survives any crash of a minority.

mod common;

use std::time::Duration;
use zk_core::{Client, CreateMode};
use zk_testkit::Ensemble;

const QUORUM_WAIT: Duration = Duration::from_secs(60);

/// Creates `/d/<tag>-<i>` for `i` in `0..n` through `c`; every create must be acknowledged.
async fn write(c: &Client, tag: &str, n: usize) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0..n {
        let p = format!("/d/{tag}-{i:03}");
        common::bounded(
            &format!("the create of {p}"),
            c.create(&p, b"", CreateMode::Persistent),
        )
        .await
        .unwrap_or_else(|e| panic!("create {p}: {e}"));
        acked.push(p);
    }
    acked
}

/// Every member but `keep` by index, in order.
fn others(keep: usize) -> (usize, usize) {
    match keep {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    }
}

/// The children of `/d` read through a fresh client on the quorum's leader after a `sync`,
/// and the acknowledged paths missing from them.
async fn lost_writes(ens: &Ensemble, acked: &[String]) -> (usize, Vec<String>) {
    let leader = ens.wait_for_quorum(QUORUM_WAIT).unwrap();
    let r = Client::connect(&ens.member(leader).connect_string())
        .await
        .unwrap();
    r.sync("/d").await.unwrap();
    let present = r.get_children("/d").await.unwrap();
    let lost = acked
        .iter()
        .filter(|p| !present.iter().any(|c| p.ends_with(&format!("/{c}"))))
        .cloned()
        .collect();
    (leader, lost)
}

fn logs(ens: &Ensemble) -> String {
    (0..ens.len())
        .map(|i| format!("--- member {i}\n{}\n", ens.member(i).log_tail(30)))
        .collect()
}

fn start_ensemble() -> Ensemble {
    // as zk-chaos runs it: a 500 ms tick, member-to-member links through forwarders
    Ensemble::builder()
        .size(3)
        .tick_time(500)
        .partitionable(true)
        .start()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_a_leader_crash_after_a_member_rejoined() {
    common::init_tracing();
    let ens = start_ensemble();
    let leader = ens.wait_for_quorum(QUORUM_WAIT).unwrap();
    let (a, b) = others(leader);
    // the writer talks to the leader only
    let w = Client::connect(&ens.member(leader).connect_string())
        .await
        .unwrap();
    w.create("/d", b"", CreateMode::Persistent).await.unwrap();
    let mut acked = write(&w, "before", 20).await;

    // member a crashes, misses writes, rejoins (a DIFF sync)
    ens.kill(a).unwrap();
    acked.extend(write(&w, "while-a-down", 20).await);
    ens.member(a).start_again().unwrap();
    // b is unavailable: the next writes are acknowledged by the leader and a only
    ens.pause(b).unwrap();
    acked.extend(write(&w, "leader-and-a", 20).await);

    // the leader crashes; b comes back: {a, b} must carry on with every acknowledged write
    ens.kill(leader).unwrap();
    ens.resume(b).unwrap();
    let (new_leader, lost) = lost_writes(&ens, &acked).await;
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost after the leader (member {leader}) crashed; \
         member {a} had rejoined, member {b} was paused; new leader member {new_leader}: {lost:?}\n{}",
        lost.len(),
        acked.len(),
        logs(&ens)
    );
}

/// The campaign's seed-2026 run with leader kills and partitions (run15 in the report): a
/// member restarts while the ensemble has no quorum and forms a new one with the survivor;
/// writes are acknowledged by that pair; the new leader is lost and the third member (stale)
/// comes back.
#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_when_a_restarted_member_formed_the_quorum_and_its_leader_is_lost(
) {
    common::init_tracing();
    let ens = start_ensemble();
    let first = ens.wait_for_quorum(QUORUM_WAIT).unwrap();
    let (a, b) = others(first);
    let w = Client::connect(&ens.connect_string()).await.unwrap();
    w.create("/d", b"", CreateMode::Persistent).await.unwrap();
    let mut acked = write(&w, "before", 20).await;
    drop(w);

    // a crashes, then the leader: only b runs (no quorum); a restarts and forms one with b
    ens.kill(a).unwrap();
    {
        let w = Client::connect(&ens.member(first).connect_string())
            .await
            .unwrap();
        acked.extend(write(&w, "while-a-down", 20).await);
    }
    ens.kill(first).unwrap();
    ens.member(a).start_again().unwrap();
    let second = ens.wait_for_quorum(QUORUM_WAIT).unwrap();
    assert!(second == a || second == b, "leader {second}");
    let w = Client::connect(&ens.member(second).connect_string())
        .await
        .unwrap();
    acked.extend(write(&w, "a-and-b", 20).await);
    drop(w);

    // that leader is lost; the stale first leader comes back
    ens.kill(second).unwrap();
    ens.member(first).start_again().unwrap();
    let (third, lost) = lost_writes(&ens, &acked).await;
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost: member {a} restarted and formed a quorum with \
         member {b} (leader {second}); leader {second} crashed and member {first} (stale) came \
         back; new leader member {third}: {lost:?}\n{}",
        lost.len(),
        acked.len(),
        logs(&ens)
    );
}

/// The pattern both campaign losses share: writes go on *while* a member rejoins (its sync
/// with the leader overlaps new proposals), the other follower is unavailable so the member
/// that just rejoined is the only one acknowledging, then the leader crashes.
#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_a_leader_crash_right_after_a_member_rejoined_under_load() {
    common::init_tracing();
    let ens = std::sync::Arc::new(start_ensemble());
    let leader = ens.wait_for_quorum(QUORUM_WAIT).unwrap();
    let (a, b) = others(leader);
    let w = Client::connect(&ens.member(leader).connect_string())
        .await
        .unwrap();
    w.create("/d", b"", CreateMode::Persistent).await.unwrap();
    let mut acked = write(&w, "before", 50).await;
    ens.kill(a).unwrap();
    acked.extend(write(&w, "while-a-down", 200).await);

    // a writer that never stops: a's sync overlaps new proposals
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (w, stop) = (w.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let p = format!("/d/load-{i:05}");
                i += 1;
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    w.create(&p, b"", CreateMode::Persistent),
                )
                .await
                {
                    Ok(Ok(_)) => acked.push(p),
                    _ => break,
                }
            }
            acked
        })
    };
    let ens2 = ens.clone();
    tokio::task::spawn_blocking(move || ens2.member(a).start_again().unwrap())
        .await
        .unwrap();
    // b is unavailable: from now on a alone acknowledges with the leader
    ens.pause(b).unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    ens.kill(leader).unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    acked.extend(writer.await.unwrap());
    ens.resume(b).unwrap();
    let (new_leader, lost) = lost_writes(&ens, &acked).await;
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost after the leader (member {leader}) crashed right \
         after member {a} rejoined under load (member {b} paused); new leader member \
         {new_leader}: {lost:?}\n{}",
        lost.len(),
        acked.len(),
        logs(&ens)
    );
}
