//! A work queue: a producer puts jobs with priorities into a `LockingQueue` (kazoo's layout),
//! two workers take them, each job locked by one worker at a time and deleted only once done.
//! When running on the local server the example starts, worker A reaches it through a fault
//! proxy and loses its session while holding a job: its `consume` says the job is no longer
//! its own, worker B does that job, and every job is done exactly once. Then a plain `Queue`
//! (kazoo's `Queue`: a job is deleted as it is taken) shows priorities.
//!
//! `cargo run -p zk-examples --example queue [-- --hosts H]`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zk_core::{Client, State};
use zk_examples::{hosts, Timeline};
use zk_recipes::{LockingQueue, Queue, DEFAULT_PRIORITY};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Timeline::start();
    let (hosts, server) = hosts().await?;
    let root = format!("/example-queue-{}", std::process::id());
    let jobs = format!("{root}/jobs");

    let producer = Client::connect(&hosts).await?;
    let q = LockingQueue::new(&producer, &jobs);
    let names: Vec<String> = (1..=10).map(|i| format!("job-{i:02}")).collect();
    let refs: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    q.put_all(&refs, DEFAULT_PRIORITY).await?;
    q.put(b"job-urgent", 0).await?;
    t.say(format!("producer: {} jobs queued", q.len().await?));

    // worker A: through a fault proxy when the server is ours
    let proxy = match &server {
        Some(s) => Some(Arc::new(zk_testkit::FaultProxy::start(s.addr()).await?)),
        None => None,
    };
    let via = proxy.as_ref().map_or(hosts.clone(), |p| p.connect_string());
    let done: Arc<Mutex<BTreeMap<String, &'static str>>> = Arc::default();
    let mut workers = Vec::new();
    for (name, hosts) in [("A", via), ("B", hosts.clone())] {
        let client = Client::connect(&hosts).await?;
        let (jobs, done, proxy) = (jobs.clone(), done.clone(), proxy.clone());
        let server = server.as_ref().map(|s| s.addr());
        workers.push(tokio::spawn(async move {
            let q = LockingQueue::new(&client, &jobs);
            let mut n = 0;
            while let Some(job) = q.get_timeout(Duration::from_secs(2)).await? {
                let what = String::from_utf8_lossy(job.data()).into_owned();
                t.say(format!("worker {name}: working on {what}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                n += 1;
                if let (Some(proxy), Some(server), "A", 3) = (&proxy, server, name, n) {
                    t.say("worker A: cut off, and its session expires");
                    proxy.reject_new(true);
                    proxy.reset();
                    client
                        .wait_for_state(State::Suspended, Some(Duration::from_secs(30)))
                        .await?;
                    let (sid, pw) = client.session_credentials();
                    zk_testkit::expire_session(server, sid, &pw)
                        .await
                        .expect("expire the session");
                    proxy.reject_new(false);
                    while client.session_id() == sid || client.state() != State::Connected {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                if job.consume().await? {
                    t.say(format!("worker {name}: {what} done"));
                    let prev = done.lock().unwrap().insert(what, name);
                    assert!(prev.is_none(), "a job done twice");
                } else {
                    t.say(format!(
                        "worker {name}: {what} is no longer mine (session lost): someone else does it"
                    ));
                }
            }
            Ok::<_, zk_core::Error>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let done = done.lock().unwrap().clone();
    t.say(format!(
        "all {} jobs done exactly once: {:?}",
        done.len(),
        done.values()
    ));
    assert_eq!(done.len(), 11);

    // a plain queue: taken by deleting, best priority first
    let plain = Queue::new(&producer, &format!("{root}/plain"));
    plain.put(b"low", 900).await?;
    plain.put(b"normal", DEFAULT_PRIORITY).await?;
    plain.put(b"high", 0).await?;
    while let Some(v) = plain.try_get().await? {
        t.say(format!("plain queue: {}", String::from_utf8_lossy(&v)));
    }

    producer.delete_recursive(&root).await?;
    producer.close().await?;
    Ok(())
}
