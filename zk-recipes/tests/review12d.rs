//! Review of issue 12's Counter, Party / ShallowParty and the plain Queue (helper rev12d): each
//! test is named after the defect or the guarantee it pins, against a real server.

mod common;

use common::{children, shared_client, unique};
use zk_core::{CreateMode, Error};
use zk_recipes::{Counter, Party};

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
