//! A 3-node ensemble against the real ZooKeeper.

mod common;

use std::time::Duration;

use common::*;
use zk_testkit::{four_letter_timeout, Ensemble, Error};

#[tokio::test(flavor = "multi_thread")]
async fn leader_failover_rejoin_and_quorum_loss() {
    let ensemble = Ensemble::start(3).unwrap();
    assert_eq!(ensemble.len(), 3);
    let hosts: Vec<String> = ensemble
        .connect_string()
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(hosts.len(), 3);
    for (i, host) in hosts.iter().enumerate() {
        let member = ensemble.member(i);
        assert_eq!(host, &format!("127.0.0.1:{}", member.port()));
        assert_eq!(member.myid(), Some(i as u32 + 1));
    }
    let leader = ensemble.leader().expect("a leader");
    assert_eq!(
        ensemble.wait_for_quorum(Duration::from_secs(10)).unwrap(),
        leader
    );
    let modes: Vec<String> = ensemble
        .members()
        .iter()
        .map(|m| m.mode().unwrap())
        .collect();
    assert_eq!(
        modes.iter().filter(|m| *m == "leader").count(),
        1,
        "{modes:?}"
    );
    assert_eq!(
        modes.iter().filter(|m| *m == "follower").count(),
        2,
        "{modes:?}"
    );

    // Writes through one member are seen through another.
    let path = unique_path("ensemble");
    let follower = (leader + 1) % 3;
    let (mut session, _) = connect(ensemble.member(follower).addr()).await.unwrap();
    assert_eq!(
        call(&mut session, &create_request(1, &path, b"x", 0))
            .await
            .unwrap(),
        OK
    );
    drop(session);

    // A paused follower does not answer; resumed, it serves again.
    ensemble.pause(follower).unwrap();
    let addr = ensemble.member(follower).addr();
    assert!(four_letter_timeout(addr, "srvr", Duration::from_millis(400)).is_err());
    assert_eq!(ensemble.leader(), Some(leader)); // does not ask the paused member
    ensemble.resume(follower).unwrap();
    assert_eq!(
        ensemble.wait_for_quorum(Duration::from_secs(10)).unwrap(),
        leader
    );

    // Kill the leader: the other two elect a new one.
    ensemble.kill(leader).unwrap();
    let new_leader = ensemble.wait_for_quorum(Duration::from_secs(20)).unwrap();
    assert_ne!(new_leader, leader);
    assert_eq!(ensemble.leader(), Some(new_leader));

    // Restart the old leader: it rejoins as a follower and has the data.
    ensemble.restart(leader).unwrap();
    assert_eq!(ensemble.member(leader).mode().unwrap(), "follower");
    assert_eq!(
        ensemble.wait_for_quorum(Duration::from_secs(10)).unwrap(),
        new_leader
    );
    assert_eq!(
        exists(ensemble.member(leader).addr(), &path).await.unwrap(),
        OK
    );

    // Without read-only mode, a member that loses quorum stops serving.
    let survivor = 3 - leader - new_leader;
    ensemble.stop(leader).unwrap();
    ensemble.kill(new_leader).unwrap();
    let last = ensemble.member(survivor);
    // a hang detector, not a speed limit: a loaded machine can take a while to notice
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match last.mode() {
            Err(Error::NotServing(_)) => break,
            other => assert!(std::time::Instant::now() < deadline, "{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ensemble
        .wait_for_quorum(Duration::from_millis(300))
        .is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn partitioned_member_turns_read_only() {
    let ensemble = Ensemble::builder()
        .size(3)
        .read_only_mode(true)
        .tick_time(500)
        .start()
        .unwrap();
    let leader = ensemble.wait_for_quorum(Duration::from_secs(10)).unwrap();
    let survivor = (leader + 1) % 3;
    for i in (0..3).filter(|&i| i != survivor) {
        ensemble.kill(i).unwrap();
    }
    ensemble
        .wait_for_mode(survivor, "read-only", Duration::from_secs(20))
        .unwrap();
    // A client that allows read-only servers gets a read-only session.
    let mut stream = tokio::net::TcpStream::connect(ensemble.member(survivor).addr())
        .await
        .unwrap();
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(&connect_request(0, &[0; 16], 10_000, true))
        .await
        .unwrap();
    let response = parse_connect_response(&read_frame(&mut stream).await.unwrap());
    assert!(response.timeout > 0, "{response:?}");
    assert_eq!(response.read_only, Some(true));
}
