//! The public API's promises that are about types, not behaviour: what can cross threads, and
//! `Client::is_closed`.

mod common;

use std::time::Duration;
use zk_core::{Client, State};
use zk_recipes::{Barrier, DoubleBarrier, Election, Lock, ReadLock, Semaphore, WriteLock};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>(_: &T) {}

/// Compiled, never run: every future a user may `tokio::spawn` is `Send`.
#[allow(dead_code, clippy::let_underscore_future)]
fn futures_users_spawn_are_send(c: &Client, l: &Lock, s: &Semaphore, e: &Election) {
    send(&c.get_data("/a"));
    send(&c.create("/a", b"", zk_core::CreateMode::Persistent));
    send(&c.exists_watch("/a"));
    send(&c.add_watch("/a", zk_core::AddWatchMode::Persistent));
    send(&c.multi(vec![]));
    send(&c.close());
    send(&c.wait_for_state(State::Connected, None));
    send(&l.acquire());
    send(&l.acquire_timeout(Duration::from_secs(1)));
    send(&l.run(|_lost| async {}));
    send(&s.acquire());
    send(&e.acquire());
    send(&e.run(|_lost| async {}));
    send(&Barrier::new(c, "/b").wait());
    let patient = zk_recipes::PatientChildrenWatch::new(c, "/p", Duration::from_secs(1));
    send(&patient.wait());
    send(&patient.wait_timeout(Duration::from_secs(1)));
    let cache = zk_recipes::TreeCache::new(c, "/t");
    send(&cache.wait_initialized());
    send(&cache.events());
    send(&cache.close());
    let q = zk_recipes::Queue::new(c, "/q");
    send(&q.put(b"x", 100));
    send(&q.get());
    send(&q.get_timeout(Duration::from_secs(1)));
    let lq = zk_recipes::LockingQueue::new(c, "/lq");
    send(&lq.put_all(&[b"x".as_slice()], 100));
    send(&lq.get());
    send(&lq.get_timeout(Duration::from_secs(1)));
    send(&lq.try_get());
    let lease = zk_recipes::NonBlockingLease::new(c, "/le", Duration::from_secs(1), "me");
    send(&lease.try_acquire());
    send(&lease.holder());
    let multi = zk_recipes::MultiNonBlockingLease::new(c, 2, "/ml", Duration::from_secs(1), "me");
    send(&multi.try_acquire());
    let fenced = zk_recipes::FencedLease::new(c, "/fl", "me");
    send(&fenced.try_acquire());
    send(&fenced.hold_for(Duration::from_secs(1), async {}));
    let part = zk_recipes::SetPartitioner::new(c, "/sp", ["a", "b"], "me").unwrap();
    send(&part.wait_for_acquire());
    send(&part.wait_for_acquire_timeout(Duration::from_secs(1)));
    send(&part.wait_while_acquired());
    send(&part.release_set());
    send(&part.finish());
}

/// Compiled, never run: a locked entry's futures are `Send` too.
#[allow(dead_code, clippy::let_underscore_future)]
fn locked_entry_futures_are_send(e: zk_recipes::LockedEntry, f: zk_recipes::LockedEntry) {
    send(&e.holds_lock());
    send(&e.consume());
    send(&f.release());
}

#[test]
fn handles_guards_errors_and_streams_cross_threads() {
    send_sync::<Client>();
    send_sync::<zk_core::ClientBuilder>();
    send_sync::<zk_core::Error>();
    send_sync::<zk_core::Status>();
    send_sync::<zk_core::StateStream>();
    send_sync::<zk_core::OneshotWatcher>();
    send_sync::<zk_core::PersistentWatcher>();
    send_sync::<Lock>();
    send_sync::<ReadLock>();
    send_sync::<WriteLock>();
    send_sync::<Semaphore>();
    send_sync::<Election>();
    send_sync::<Barrier>();
    send_sync::<DoubleBarrier>();
    send_sync::<zk_recipes::Guard>();
    send_sync::<zk_recipes::LostSignal>();
    send_sync::<zk_recipes::GuardError>();
    send_sync::<zk_recipes::retry::RetryError>();
    send_sync::<zk_recipes::PatientChildrenWatch>();
    send_sync::<zk_recipes::ChildrenChanged>();
    send_sync::<zk_recipes::Queue>();
    send_sync::<zk_recipes::LockingQueue>();
    send_sync::<zk_recipes::LockedEntry>();
    send_sync::<zk_recipes::TreeCache>();
    send_sync::<zk_recipes::TreeCacheEvent>();
    send_sync::<zk_recipes::CachedNode>();
    send_sync::<zk_recipes::NonBlockingLease>();
    send_sync::<zk_recipes::MultiNonBlockingLease>();
    send_sync::<zk_recipes::FencedLease>();
    send_sync::<zk_recipes::LeaseHolder>();
    send_sync::<zk_recipes::SetPartitioner>();
    send_sync::<zk_recipes::PartitionState>();
}

#[tokio::test(flavor = "multi_thread")]
async fn is_closed_after_close_and_not_while_connected() {
    let server = zk_testkit::shared_server();
    let c = common::client(&server.connect_string()).await;
    assert!(!c.is_closed(), "a connected client reports closed");
    let other = c.clone();
    c.close().await.unwrap();
    assert!(
        other.is_closed(),
        "a clone of a closed client does not report closed"
    );
    assert!(matches!(
        other.exists("/").await,
        Err(zk_core::Error::Closed)
    ));
}
