//! A batch job in three stages run by four workers: nobody starts a stage before all four have
//! arrived, and nobody moves on before all four have finished it (a double barrier per stage).
//! Workers are started at different times and work for different durations.
//!
//! `cargo run -p zk-examples --example double_barrier [-- --hosts H]`

use std::time::Duration;
use zk_core::Client;
use zk_examples::{hosts, Timeline};
use zk_recipes::DoubleBarrier;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Timeline::start();
    let (hosts, _server) = hosts().await?;
    let root = format!("/example-batch-{}", std::process::id());
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let client = Client::connect(&hosts).await?;
        let root = root.clone();
        workers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150 * w)).await; // late arrivals
            for stage in ["extract", "transform", "load"] {
                let mut barrier = DoubleBarrier::new(
                    &client,
                    &format!("{root}/{stage}"),
                    4,
                    format!("worker-{w}"),
                )?;
                if barrier
                    .enter_timeout(Duration::from_secs(30))
                    .await?
                    .is_none()
                {
                    t.say(format!("worker-{w}: the others did not come for {stage}"));
                    return Ok(());
                }
                t.say(format!("worker-{w} starts {stage}"));
                tokio::time::sleep(Duration::from_millis(100 + 120 * ((w + 1) % 4))).await;
                t.say(format!(
                    "worker-{w} done with {stage}, waiting for the others"
                ));
                if barrier
                    .leave_timeout(Duration::from_secs(30))
                    .await?
                    .is_none()
                {
                    t.say(format!("worker-{w}: the others did not finish {stage}"));
                    return Ok(());
                }
            }
            Ok::<_, zk_core::Error>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    t.say("all stages complete");
    let admin = Client::connect(&hosts).await?;
    admin.delete_recursive(&root).await?;
    Ok(())
}
