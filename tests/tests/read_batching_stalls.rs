//! Read batching must not stall a pipeline of small replies. While many replies are owed,
//! zk-core raises the socket's receive low-water mark (`SO_RCVLOWAT`) so the kernel wakes it
//! once per several replies. But the server's TCP sends each small reply as its own segment,
//! and only so many segments may be unacknowledged at once (its congestion window, counted in
//! segments); the client's kernel holds back its acknowledgements while the mark is not
//! reached. So a mark that needs more segments than the window allows is reached only when
//! zk-core's 5 ms fallback drops it: with 64 creates and deletes in flight (replies of 20 to
//! ~60 bytes) that happened for most bursts, and the pipeline ran at a quarter of its speed
//! (docs/benchmarks.md, "Read batching and small replies").
//!
//! The fallback logs each stall at debug level; this counts them. Its own test binary: it
//! installs the process-wide subscriber.

mod common;

use futures::future::join_all;
use zk_core::{Client, CreateMode};

const TASKS: usize = 64;
const PAIRS_PER_TASK: usize = 160;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_creates_and_deletes_in_flight_do_not_keep_stalling_read_batching() {
    let buf = common::LogBuf::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_env_filter("zk_core=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let server = zk_testkit::shared_server();
    let c = Client::connect(&server.connect_string()).await.unwrap();
    let base = format!("/stalls-{}", uuid::Uuid::new_v4().simple());
    c.create(&base, b"", CreateMode::Persistent).await.unwrap();
    let data = [7u8; 16];
    let run = |round: usize| {
        let c = c.clone();
        let base = base.clone();
        async move {
            join_all((0..TASKS).map(|t| {
                let c = c.clone();
                let base = base.clone();
                async move {
                    for i in 0..PAIRS_PER_TASK {
                        let p = format!("{base}/r{round}-t{t}-{i}");
                        c.create(&p, &data, CreateMode::Persistent).await.unwrap();
                        c.delete(&p, None).await.unwrap();
                    }
                }
            }))
            .await;
        }
    };
    run(0).await;
    let stalls = |log: &str| {
        log.lines()
            .filter(|l| l.contains("read batching stalled"))
            .count()
    };
    let log = buf.text();
    let n = stalls(&log);
    let replies = 2 * TASKS * PAIRS_PER_TASK;
    // A stall is legitimate when the server (or this process) really pauses for 5 ms mid-burst,
    // which a loaded machine does now and then; one per burst is the defect. A burst here is
    // at most 64 replies, so the run has at least replies / 64 of them.
    let bursts = replies / TASKS;
    eprintln!("read batching stalled {n} times in {replies} replies");
    assert!(
        n * 10 <= bursts,
        "read batching stalled {n} times in {replies} replies (about {bursts} bursts of {TASKS}): \
         the low-water mark keeps asking for more bytes than the server's TCP can send \
         before the client acknowledges\n{}",
        log.lines()
            .filter(|l| l.contains("read batching stalled"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    c.delete(&base, None).await.unwrap();
    c.close().await.unwrap();
}
