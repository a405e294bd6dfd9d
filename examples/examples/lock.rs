//! Four workers, each with its own session, take turns in a critical section guarded by a
//! distributed lock; every write inside it is fenced.
//!
//! `cargo run -p zk-examples --example lock [-- --hosts H]`

use std::time::Duration;
use zk_core::{Client, CreateMode, Op};
use zk_examples::{hosts, Timeline};
use zk_recipes::Lock;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Timeline::start();
    let (hosts, _server) = hosts().await?;
    let root = format!("/example-lock-{}", std::process::id());
    let admin = Client::connect(&hosts).await?;
    admin.ensure_path(&root).await?;
    admin
        .create(&format!("{root}/counter"), b"0", CreateMode::Persistent)
        .await?;

    let mut workers = Vec::new();
    for w in 0..4 {
        let client = Client::connect(&format!("{hosts}{root}")).await?;
        workers.push(tokio::spawn(async move {
            let lock = Lock::new(&client, "/lock", format!("worker-{w}"));
            for _ in 0..3 {
                let guard = lock.acquire().await?;
                let queue = lock.contenders().await?;
                let (d, _) = client.get_data("/counter").await?;
                let n: u32 = String::from_utf8_lossy(&d).parse().unwrap_or(0) + 1;
                // applied only while our lock node exists
                let write = Op::set_data("/counter", n.to_string().into_bytes(), None);
                if let Err(e) = guard.fenced_multi(vec![write]).await {
                    // e.g. GuardError::Lost(reason): the lock was lost, nothing was written
                    t.say(format!("worker-{w}: fenced write refused: {e}"));
                    continue;
                }
                t.say(format!(
                    "worker-{w} holds {} -> counter {n}; queue {queue:?}",
                    guard.path()
                ));
                tokio::time::sleep(Duration::from_millis(50)).await;
                guard.release().await?;
            }
            Ok::<_, zk_core::Error>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let (d, _) = admin.get_data(&format!("{root}/counter")).await?;
    t.say(format!(
        "final counter {} (4 workers x 3 turns)",
        String::from_utf8_lossy(&d)
    ));
    admin.delete_recursive(&root).await?;
    Ok(())
}
