//! The channel a request's answer goes back on, with the one atomic that decides whether the
//! request was sent: a oneshot in one allocation per request (tokio's oneshot plus an
//! `Arc<AtomicU8>` beside it were two, and more work per request; docs/benchmarks.md, "One
//! allocation per request").
//!
//! The caller holds the [`Receiver`], the session task the [`Sender`]. The send state moves
//! exactly once, by compare-and-swap: `PENDING -> SENT` when the session task claims the
//! request right before copying its frame into the output buffer ([`Sender::claim`]), or
//! `PENDING -> ABANDONED` when the caller gives up (a deadline: [`Receiver::abandon`]; its
//! future dropped: the receiver's `Drop`). Exactly one side wins and both know the outcome: an
//! abandoned request is never written, and a caller that lost the race knows its request may
//! have been applied.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

const PENDING: u8 = 0;
const SENT: u8 = 1;
const ABANDONED: u8 = 2;

struct Shared<T> {
    /// `PENDING`, `SENT` or `ABANDONED`.
    state: AtomicU8,
    slot: Mutex<Slot<T>>,
}

struct Slot<T> {
    value: Option<T>,
    /// The receiver's task, while it waits.
    waker: Option<Waker>,
    /// The sender was dropped without sending.
    gone: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        // nothing that can panic runs under the lock; a poisoned lock still holds a valid slot
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A new channel: the session task's half and the caller's.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: AtomicU8::new(PENDING),
        slot: Mutex::new(Slot {
            value: None,
            waker: None,
            gone: false,
        }),
    });
    (Sender(Some(shared.clone())), Receiver(shared))
}

/// The session task's half: claims the request for sending, then sends its answer once.
/// Dropped without sending, it ends the receiver's wait with [`Gone`].
pub(crate) struct Sender<T>(Option<Arc<Shared<T>>>);

impl<T> Sender<T> {
    /// Claims the request for sending (`PENDING -> SENT`). `false`: the caller gave up first;
    /// the request must not be written.
    pub(crate) fn claim(&self) -> bool {
        self.0.as_ref().is_some_and(|s| {
            s.state
                .compare_exchange(PENDING, SENT, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// Whether the caller gave up before the request was claimed (it will never be sent).
    pub(crate) fn is_abandoned(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|s| s.state.load(Ordering::Acquire) == ABANDONED)
    }

    /// Hands the answer to the receiver and wakes it. An answer nobody waits for any more is
    /// dropped with the channel.
    pub(crate) fn send(mut self, value: T) {
        let Some(s) = self.0.take() else { return };
        let waker = {
            let mut slot = s.lock();
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            let waker = {
                let mut slot = s.lock();
                slot.gone = true;
                slot.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

/// The session task dropped the sender without an answer (it ended).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Gone;

/// The caller's half: a future of the answer. Dropping it before the request was claimed
/// abandons the request (it is never written).
pub(crate) struct Receiver<T>(Arc<Shared<T>>);

impl<T> Receiver<T> {
    /// Gives up on the request (`PENDING -> ABANDONED`). `true`: it was never sent and never
    /// will be; `false`: it was (or is being) sent, so it may have been applied.
    pub(crate) fn abandon(&self) -> bool {
        match self
            .0
            .state
            .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == ABANDONED,
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, Gone>;

    /// Ready once the answer is there (or the sender is gone); not to be polled again after.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.lock();
        if let Some(v) = slot.value.take() {
            return Poll::Ready(Ok(v));
        }
        if slot.gone {
            return Poll::Ready(Err(Gone));
        }
        match &mut slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // the common case, an answered request, needs no compare-and-swap
        if self.0.state.load(Ordering::Acquire) == PENDING {
            self.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct CountWakes(AtomicUsize);
    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll<T>(rx: &mut Receiver<T>, w: &Arc<CountWakes>) -> Poll<Result<T, Gone>> {
        let waker = Waker::from(w.clone());
        Pin::new(rx).poll(&mut Context::from_waker(&waker))
    }

    fn wakes() -> Arc<CountWakes> {
        Arc::new(CountWakes(AtomicUsize::new(0)))
    }

    #[test]
    fn exactly_one_side_wins() {
        let (tx, rx) = channel::<()>();
        assert!(tx.claim());
        assert!(
            !rx.abandon(),
            "sent: the caller must learn it may be applied"
        );
        assert!(!tx.is_abandoned());
        let (tx, rx) = channel::<()>();
        assert!(rx.abandon());
        assert!(tx.is_abandoned());
        assert!(!tx.claim(), "abandoned: never sent");
        assert!(rx.abandon(), "abandoning twice keeps the answer");
    }

    #[test]
    fn caller_dropped_before_claim_abandons() {
        let (tx, rx) = channel::<u32>();
        drop(rx);
        assert!(tx.is_abandoned());
        assert!(!tx.claim(), "a dropped caller's request is never written");
        tx.send(1); // nobody waits: dropped with the channel, no panic
    }

    #[test]
    fn caller_dropped_after_claim_keeps_sent() {
        let (tx, rx) = channel::<String>();
        assert!(tx.claim());
        drop(rx);
        assert!(!tx.is_abandoned(), "claimed stays claimed");
        tx.send("late".into());
    }

    #[test]
    fn answer_before_poll_is_ready_at_once() {
        let (tx, mut rx) = channel::<u32>();
        assert!(tx.claim());
        tx.send(7);
        let w = wakes();
        assert_eq!(poll(&mut rx, &w), Poll::Ready(Ok(7)));
        assert_eq!(w.0.load(Ordering::SeqCst), 0);
        drop(rx);
    }

    #[test]
    fn answer_after_poll_wakes_the_caller_once() {
        let (tx, mut rx) = channel::<u32>();
        let w = wakes();
        assert_eq!(poll(&mut rx, &w), Poll::Pending);
        assert_eq!(
            poll(&mut rx, &w),
            Poll::Pending,
            "polled again: one waker kept"
        );
        assert!(tx.claim());
        tx.send(9);
        assert_eq!(w.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&mut rx, &w), Poll::Ready(Ok(9)));
    }

    #[test]
    fn a_new_waker_replaces_the_old_one() {
        let (tx, mut rx) = channel::<u32>();
        let (w1, w2) = (wakes(), wakes());
        assert_eq!(poll(&mut rx, &w1), Poll::Pending);
        assert_eq!(poll(&mut rx, &w2), Poll::Pending);
        tx.send(1);
        assert_eq!(w1.0.load(Ordering::SeqCst), 0);
        assert_eq!(w2.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn sender_dropped_without_answer_ends_the_wait() {
        let (tx, mut rx) = channel::<u32>();
        let w = wakes();
        assert_eq!(poll(&mut rx, &w), Poll::Pending);
        drop(tx);
        assert_eq!(w.0.load(Ordering::SeqCst), 1, "the waiting caller is woken");
        assert_eq!(poll(&mut rx, &w), Poll::Ready(Err(Gone)));
        // and before any poll
        let (tx, mut rx) = channel::<u32>();
        assert!(tx.claim());
        drop(tx);
        assert_eq!(poll(&mut rx, &w), Poll::Ready(Err(Gone)));
        assert!(
            !rx.abandon(),
            "claimed before the task ended: may have been sent"
        );
    }

    #[test]
    fn threads_racing_claim_and_abandon_agree() {
        for _ in 0..5000 {
            let (tx, rx) = channel::<()>();
            let t = std::thread::spawn(move || {
                let claimed = tx.claim();
                (claimed, tx)
            });
            let abandoned = rx.abandon();
            let (claimed, tx) = t.join().unwrap();
            assert_ne!(abandoned, claimed);
            assert_eq!(tx.is_abandoned(), abandoned);
        }
    }

    #[test]
    fn threads_racing_drop_and_claim_agree() {
        for _ in 0..5000 {
            let (tx, rx) = channel::<()>();
            let t = std::thread::spawn(move || (tx.claim(), tx));
            drop(rx);
            let (claimed, tx) = t.join().unwrap();
            assert_eq!(
                tx.is_abandoned(),
                !claimed,
                "the drop abandoned it unless the claim came first"
            );
        }
        for _ in 0..5000 {
            let (tx, rx) = channel::<()>();
            let t = std::thread::spawn(move || drop(rx));
            let claimed = tx.claim();
            t.join().unwrap();
            assert_eq!(
                tx.is_abandoned(),
                !claimed,
                "either claimed or abandoned, never neither"
            );
        }
    }

    #[test]
    fn answer_from_another_thread_always_arrives() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for i in 0..3000u32 {
            let (tx, rx) = channel::<u32>();
            let t = std::thread::spawn(move || {
                if tx.claim() {
                    if i % 3 == 0 {
                        drop(tx);
                    } else {
                        tx.send(i);
                    }
                }
            });
            let got = rt.block_on(rx);
            t.join().unwrap();
            if i % 3 == 0 {
                assert_eq!(got, Err(Gone));
            } else {
                assert_eq!(got, Ok(i));
            }
        }
    }
}
