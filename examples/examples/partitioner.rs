//! A set partitioner: workers split 9 work queues between them (kazoo's `SetPartitioner`
//! layout and partition function). Two workers start, a third joins and the set is split
//! three ways, then the first leaves and the other two take its queues over. Each worker
//! prints what it owns whenever its partition is acquired; no queue is ever owned twice (each
//! is held through its lock at `P/locks/<queue>`).
//!
//! `cargo run -p zk-examples --example partitioner [-- --hosts H]`

use std::sync::Arc;
use std::time::Duration;
use zk_core::Client;
use zk_examples::{hosts, Timeline};
use zk_recipes::{PartitionState, SetPartitioner};

/// Runs kazoo's documented loop for one worker until it is finished.
async fn worker(t: Arc<Timeline>, p: Arc<SetPartitioner>) {
    loop {
        match p.wait_for_acquire().await {
            Ok(PartitionState::Acquired) => {
                t.say(format!("{}: owns {:?}", p.identifier(), p.partitions()));
                // work on the queues until the party changes
                let next = p.wait_while_acquired().await;
                t.say(format!("{}: {next:?}, stops working", p.identifier()));
            }
            Ok(PartitionState::Release) => {
                if p.release_set().await.is_err() {
                    return;
                }
            }
            _ => return, // Failure: finished (or the session was lost)
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Arc::new(Timeline::start());
    let (hosts, _server) = hosts().await?;
    let path = format!("/example-partitioner-{}", std::process::id());
    let queues: Vec<String> = (1..=9).map(|i| format!("queue-{i}")).collect();

    let client = Client::connect(&hosts).await?;
    let start = |id: &str| -> Result<Arc<SetPartitioner>, zk_core::Error> {
        let p = SetPartitioner::new(&client, &path, queues.clone(), id)?
            .time_boundary(Duration::from_millis(500));
        Ok(Arc::new(p))
    };
    let mut ps = Vec::new();
    let mut tasks = Vec::new();
    for id in ["worker-a", "worker-b"] {
        let p = start(id)?;
        tasks.push(tokio::spawn(worker(t.clone(), p.clone())));
        ps.push(p);
    }
    wait_all_acquired(&ps).await;

    t.say("worker-c joins");
    let c = start("worker-c")?;
    tasks.push(tokio::spawn(worker(t.clone(), c.clone())));
    ps.push(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_all_acquired(&ps).await;

    t.say("worker-a leaves");
    let a = ps.remove(0);
    a.finish().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_all_acquired(&ps).await;
    let mut owned: Vec<String> = ps.iter().flat_map(|p| p.partitions()).collect();
    owned.sort();
    owned.dedup();
    assert_eq!(owned.len(), queues.len(), "every queue owned, none twice");
    t.say(format!("b and c own all {} queues, each once", owned.len()));

    for p in &ps {
        p.finish().await?;
    }
    for task in tasks {
        task.await?;
    }
    client.delete_recursive(&path).await.ok();
    Ok(())
}

/// Waits until every partitioner in `ps` has acquired its partition.
async fn wait_all_acquired(ps: &[Arc<SetPartitioner>]) {
    while !ps.iter().all(|p| p.state() == PartitionState::Acquired) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
