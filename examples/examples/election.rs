//! Three candidates elect a leader. When running on the local server the example starts, each
//! candidate reaches it through a fault proxy, and the first leader is cut off (a silent
//! partition): it steps down when its connection is suspended, before the server expires its
//! session and the next in line takes over. Later leaders finish their work and resign.
//!
//! `cargo run -p zk-examples --example election [-- --hosts H]`

use std::sync::{Arc, Mutex};
use std::time::Duration;
use zk_core::Client;
use zk_examples::{hosts, Timeline};
use zk_recipes::{Election, RunOutcome};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Timeline::start();
    let (hosts, server) = hosts().await?;
    let path = format!("/example-election-{}", std::process::id());
    // who leads now
    let leading: Arc<Mutex<Option<usize>>> = Arc::default();
    let mut proxies = Vec::new();
    let mut tasks = Vec::new();
    for (i, name) in ["alpha", "bravo", "charlie"].into_iter().enumerate() {
        let via = match &server {
            Some(s) => {
                let p = zk_testkit::FaultProxy::start(s.addr()).await?;
                let cs = p.connect_string();
                proxies.push(p);
                cs
            }
            None => hosts.clone(),
        };
        let client = Client::builder(&via)
            .session_timeout(Duration::from_secs(4))
            .connect()
            .await?;
        let (path, leading) = (path.clone(), leading.clone());
        tasks.push(tokio::spawn(async move {
            let election = Election::new(&client, &path, name);
            let c = client.clone();
            let outcome = election
                .run(|lost| {
                    let (c, leading) = (c.clone(), leading.clone());
                    async move {
                        t.say(format!("{name} leads (session {:#x})", c.session_id()));
                        // say the moment leadership is lost (run() then cancels this task)
                        let watch = lost.clone();
                        tokio::spawn(async move {
                            let why = watch.lost().await;
                            if why != zk_recipes::LostReason::Released {
                                t.say(format!("{name} steps down: {why}"));
                            }
                        });
                        *leading.lock().unwrap() = Some(i);
                        for step in 0..20 {
                            if lost.reason().is_some() {
                                return step;
                            }
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        20
                    }
                })
                .await?;
            match outcome {
                RunOutcome::Finished(steps) => {
                    t.say(format!("{name} finished its {steps} steps and resigned"))
                }
                // RunOutcome::Lost, or an outcome added in a later version
                _ => t.say(format!("{name} is no longer a candidate")),
            }
            let _ = client.close().await;
            Ok::<_, zk_core::Error>(())
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let partitioned = if server.is_some() {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let current = *leading.lock().unwrap();
        current.inspect(|&i| {
            t.say(format!(
                "partitioning candidate {i} (the leader) from ZooKeeper"
            ));
            proxies[i].blackhole();
        })
    } else {
        None
    };
    // the partitioned leader's task ends once its session is gone; heal so it can close
    tokio::time::sleep(Duration::from_secs(7)).await;
    if let Some(i) = partitioned {
        proxies[i].heal();
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
