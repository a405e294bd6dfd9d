//! Review of issue 12's Counter, Party / ShallowParty and the plain Queue (helper rev12d): each
//! test is named after the defect or the guarantee it pins, against a real server.

mod common;

use common::{children, shared_client, unique};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zk_core::{CreateMode, Error};
use zk_recipes::{Counter, Party, Queue};

// ------------------------------------------------------------------------------- party

/// `leave` took the keeper out of the handle, then stopped it and deleted the node across
/// await points: dropped in between, the keeper stopped but the node stayed (for the whole
/// session) while the handle said "not joined", and a second `leave` had nothing to delete.
#[tokio::test(flavor = "multi_thread")]
async fn party_leave_dropped_at_every_await_point_still_removes_the_node() {
    let c = shared_client().await;
    let p = unique("r12d-party-leave-drop");
    c.ensure_path(&p).await.unwrap();
    let mut i = 1;
    loop {
        let member = Party::new(&c, &p, format!("m{i}"));
        member.join().await.unwrap();
        assert_eq!(children(&c, &p).await.len(), 1);
        let mut fut = Box::pin(member.leave());
        let mut done = false;
        for _ in 0..i {
            if futures::poll!(fut.as_mut()).is_ready() {
                done = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(fut);
        if done {
            break;
        }
        // the member's node goes, although the leave was dropped half-way (the handle is
        // kept alive: its own drop would clean up and hide the defect)
        common::wait_no_child_with_prefix(&c, &p, "").await;
        drop(member);
        i += 1;
        assert!(i < 10_000, "leave never completed");
    }
    eprintln!("leave completed after {i} drops at successive await points");
    assert!(i > 1, "the leave never was dropped half-way");
    assert!(children(&c, &p).await.is_empty());
}

// ----------------------------------------------------------------------------- counter

/// The integer decoding stripped one leading '+' and then let Rust's parser take a sign of
/// its own: "+-3" read as -3 and "++3" as 3, where Python's `int()` (kazoo's
/// `default_type(data)`) refuses both; an add then wrote over the garbage.
#[tokio::test(flavor = "multi_thread")]
async fn counter_int_refuses_two_signs_as_python_does() {
    let c = shared_client().await;
    for text in ["+-3", "++3", "-+3", "--3"] {
        let p = unique("r12d-counter-signs");
        c.create(&p, text.as_bytes(), CreateMode::Persistent)
            .await
            .unwrap();
        let counter = Counter::new(&c, &p, 0i64);
        let v = counter.value().await;
        assert!(
            matches!(v, Err(Error::InvalidArgument(_))),
            "{text:?} is not a Python int: {v:?}"
        );
        let r = counter.add(1).await;
        assert!(
            matches!(r, Err(Error::InvalidArgument(_))),
            "no add over {text:?}: {r:?}"
        );
        assert_eq!(
            c.get_data(&p).await.unwrap().0,
            text.as_bytes(),
            "untouched"
        );
    }
}

/// In Curator's layout the counter created a missing node with *empty* data (kazoo's
/// `ensure_path`), which is not a `SharedCount` value: Curator's `SharedCount` reads it with
/// `ByteBuffer.getInt()` and throws until a write lands, and nothing lands when the add fails
/// after the create (here an overflow of the 4-byte range; a deadline, `NoAuth` on the write).
/// Curator creates the node with its seed value; so does the counter now (its default).
#[tokio::test(flavor = "multi_thread")]
async fn counter_curator_layout_creates_its_node_with_the_4_byte_default_not_empty_data() {
    let c = shared_client().await;
    let p = unique("r12d-counter-curator-seed");
    let counter = Counter::new(&c, &p, 7i64).curator_layout();
    let r = counter.add(i64::from(i32::MAX)).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let (data, _) = c.get_data(&p).await.expect("the add created the node");
    assert_eq!(
        data,
        7i32.to_be_bytes(),
        "a SharedCount value (the default), not empty"
    );
    assert_eq!(counter.add(1).await.unwrap().post_value, 8);
    assert_eq!(c.get_data(&p).await.unwrap().0, 8i32.to_be_bytes());
}

// ------------------------------------------------------------------------------- queue

/// A waiting `get` lists the empty queue, then lists it again with a watch; the queue's node
/// deleted between the two (someone cleaning up, a kazoo `Queue` on a fresh path) made the
/// second listing's `NoNode` the caller's error instead of "the queue is empty": the first
/// listing re-creates a missing node, the second did not.
#[tokio::test(flavor = "multi_thread")]
async fn queue_get_while_the_queue_node_is_deleted_is_not_a_nonode_error() {
    let c = shared_client().await;
    let other = shared_client().await;
    let p = unique("r12d-queue-node-churn");
    c.ensure_path(&p).await.unwrap();
    let q = Queue::new(&c, &p);
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (other, p, stop) = (other.clone(), p.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let _ = other.delete(&p, None).await;
                let _ = other.create(&p, b"", CreateMode::Persistent).await;
                n += 1;
            }
            n
        })
    };
    let mut errors = Vec::new();
    for _ in 0..300 {
        match q.get_timeout(Duration::from_millis(20)).await {
            Ok(None) => {}
            other => errors.push(format!("{other:?}")),
        }
    }
    stop.store(true, Ordering::SeqCst);
    let cycles = churn.await.unwrap();
    eprintln!("{cycles} delete/create cycles of the queue node");
    assert!(
        errors.is_empty(),
        "an empty queue whose node comes and goes is empty, not an error: {errors:?}"
    );
}
