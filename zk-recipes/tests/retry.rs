//! Retry policies: kazoo's arithmetic and Curator's, which errors are retried, deadlines,
//! interrupts, cancellation; all under paused time with injected randomness. One test runs
//! the runner through a real connection loss.

mod common;

use common::bounded;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use zk_core::{Client, Error};
use zk_recipes::retry::{
    retry, AttemptError, ExponentialBackoffRetry, KazooRetry, Retry, RetryError, RetryPolicy,
};

/// What one scripted run did.
struct Outcome {
    result: Result<u32, RetryError>,
    sleeps: Vec<Duration>,
    calls: u32,
}

/// Runs an operation that fails with `errors` (in order), then succeeds returning the number
/// of calls; sleeps are recorded (and really slept, on paused time).
async fn scripted<P: RetryPolicy>(policy: &P, errors: Vec<AttemptError>, seed: u64) -> Outcome {
    let errors = Arc::new(Mutex::new(VecDeque::from(errors)));
    let calls = Arc::new(AtomicU32::new(0));
    let sleeps = Arc::new(Mutex::new(Vec::new()));
    let rec = sleeps.clone();
    let result = Retry::new(policy)
        .seed(seed)
        .sleep_with(move |d| {
            rec.lock().unwrap().push(d);
            tokio::time::sleep(d)
        })
        .run(|| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let next = errors.lock().unwrap().pop_front();
            async move {
                match next {
                    Some(e) => Err(e),
                    None => Ok(n),
                }
            }
        })
        .await;
    let sleeps = sleeps.lock().unwrap().clone();
    Outcome {
        result,
        sleeps,
        calls: calls.load(Ordering::SeqCst),
    }
}

fn losses(n: usize) -> Vec<AttemptError> {
    vec![AttemptError::Zk(Error::ConnectionLoss); n]
}

fn secs(v: &[Duration]) -> Vec<f64> {
    v.iter().map(Duration::as_secs_f64).collect()
}

fn assert_close(got: &[Duration], want: &[f64]) {
    let g = secs(got);
    assert_eq!(g.len(), want.len(), "sleeps {g:?}, want {want:?}");
    for (a, b) in g.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "sleeps {g:?}, want {want:?}");
    }
}

// ------------------------------------------------------------------------------ kazoo

#[tokio::test(start_paused = true)]
async fn kazoo_without_jitter_doubles_from_100ms_and_caps_at_max_delay() {
    let p = KazooRetry::single_attempt()
        .max_tries(None)
        .max_jitter(0.0)
        .max_delay(Duration::from_secs(1));
    let out = scripted(&p, losses(8), 1).await;
    assert_eq!(out.result.unwrap(), 9);
    assert_close(&out.sleeps, &[0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]);

    // other delay / backoff
    let p = KazooRetry::single_attempt()
        .max_tries(None)
        .max_jitter(0.0)
        .delay(Duration::from_millis(50))
        .backoff(3.0);
    let out = scripted(&p, losses(4), 1).await;
    assert_close(&out.sleeps, &[0.05, 0.15, 0.45, 1.35]);
}

#[tokio::test(start_paused = true)]
async fn the_default_runner_really_sleeps_the_delays() {
    let p = KazooRetry::single_attempt().max_tries(None).max_jitter(0.0);
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let n = retry(&p, || async {
        if calls.fetch_add(1, Ordering::SeqCst) < 3 {
            Err(Error::ConnectionLoss)
        } else {
            Ok(7)
        }
    })
    .await
    .unwrap();
    assert_eq!(n, 7);
    // 0.1 + 0.2 + 0.4 of paused time (the timer rounds up to whole milliseconds)
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(710),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn kazoo_jitter_stays_in_bounds_and_compounds() {
    let p = KazooRetry::single_attempt().max_tries(Some(7)); // default jitter 0.4, delay 0.1, backoff 2
    let (mut lowest_first, mut highest_first) = (f64::MAX, 0.0f64);
    for seed in 0..300 {
        let out = scripted(&p, losses(10), seed).await;
        assert!(
            matches!(out.result, Err(RetryError::Exhausted { attempts: 7, .. })),
            "{:?}",
            out.result.err()
        );
        let s = secs(&out.sleeps);
        assert_eq!(s.len(), 6);
        assert!((0.06 - 1e-9..=0.14 + 1e-9).contains(&s[0]), "{s:?}");
        lowest_first = lowest_first.min(s[0]);
        highest_first = highest_first.max(s[0]);
        // each delay is the previous *sleep* (jitter included) times the backoff, jittered
        for w in s.windows(2) {
            let ratio = w[1] / (w[0] * 2.0);
            assert!((0.6 - 1e-9..=1.4 + 1e-9).contains(&ratio), "{s:?}");
        }
    }
    // the draws really spread over the range
    assert!(
        lowest_first < 0.07 && highest_first > 0.13,
        "{lowest_first} {highest_first}"
    );
}

#[tokio::test(start_paused = true)]
async fn kazoo_sleep_may_exceed_max_delay_by_the_jitter_only() {
    let p = KazooRetry::single_attempt()
        .max_tries(Some(30))
        .max_delay(Duration::from_secs(1));
    let mut above = false;
    for seed in 0..50 {
        let out = scripted(&p, losses(40), seed).await;
        for s in secs(&out.sleeps) {
            assert!(s <= 1.4 + 1e-9, "{s}");
            above |= s > 1.0;
        }
    }
    assert!(
        above,
        "a capped delay with jitter should sometimes exceed max_delay"
    );
}

#[tokio::test(start_paused = true)]
async fn kazoo_jitter_is_clamped_to_0_and_1() {
    // 5.0 → 1.0: the first sleep is anywhere in 0 ..= 0.2
    let p = KazooRetry::single_attempt()
        .max_tries(Some(2))
        .max_jitter(5.0);
    let mut beyond_default = false;
    for seed in 0..200 {
        let s = secs(&scripted(&p, losses(1), seed).await.sleeps)[0];
        assert!((0.0..=0.2 + 1e-9).contains(&s), "{s}");
        beyond_default |= !(0.06..=0.14).contains(&s);
    }
    assert!(beyond_default);
    // negative → 0: exact
    let p = KazooRetry::single_attempt()
        .max_tries(None)
        .max_jitter(-3.0);
    assert_close(&scripted(&p, losses(3), 9).await.sleeps, &[0.1, 0.2, 0.4]);
}

#[tokio::test(start_paused = true)]
async fn kazoo_max_tries_counts_total_attempts() {
    // the default is one attempt: no retry at all
    let out = scripted(&KazooRetry::single_attempt(), losses(5), 0).await;
    assert_eq!(out.calls, 1);
    assert!(out.sleeps.is_empty());
    match out.result {
        Err(RetryError::Exhausted {
            attempts: 1,
            last: AttemptError::Zk(Error::ConnectionLoss),
        }) => {}
        other => panic!("{other:?}"),
    }
    let out = scripted(
        &KazooRetry::single_attempt().max_tries(Some(3)),
        losses(5),
        0,
    )
    .await;
    assert_eq!((out.calls, out.sleeps.len()), (3, 2));
    assert!(matches!(
        out.result,
        Err(RetryError::Exhausted { attempts: 3, .. })
    ));
    // success on the last allowed attempt
    let out = scripted(
        &KazooRetry::single_attempt().max_tries(Some(3)),
        losses(2),
        0,
    )
    .await;
    assert_eq!(out.result.unwrap(), 3);
}

#[tokio::test(start_paused = true)]
async fn kazoo_unlimited_tries() {
    for p in [
        KazooRetry::single_attempt().max_tries(None),
        KazooRetry::single_attempt().max_tries(Some(0)),
        KazooRetry::client_default(),
    ] {
        let out = scripted(&p, losses(60), 3).await;
        assert_eq!(out.result.unwrap(), 61);
        assert_eq!(out.sleeps.len(), 60);
    }
    // client_default's cap is an hour: sleeps reach well beyond the 60 s default
    let out = scripted(&KazooRetry::client_default(), losses(20), 3).await;
    assert!(out.sleeps.iter().any(|s| *s > Duration::from_secs(600)));
    let out = scripted(&KazooRetry::single_attempt().max_tries(None), losses(20), 3).await;
    assert!(out.sleeps.iter().all(|s| *s <= Duration::from_secs(84)));
}

#[tokio::test(start_paused = true)]
async fn kazoo_deadline_stops_before_sleeping_past_it() {
    // sleeps 1, 2, then at t=3 a sleep of 4 would end at 7 >= 3.5: stop without sleeping
    let p = KazooRetry::single_attempt()
        .max_tries(None)
        .max_jitter(0.0)
        .delay(Duration::from_secs(1))
        .deadline(Some(Duration::from_millis(3500)));
    let start = Instant::now();
    let out = scripted(&p, losses(10), 0).await;
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_close(&out.sleeps, &[1.0, 2.0]);
    assert_eq!(out.calls, 3);
    assert!(matches!(
        out.result,
        Err(RetryError::DeadlineExceeded {
            attempts: 3,
            last: AttemptError::Zk(Error::ConnectionLoss)
        })
    ));

    // a sleep ending exactly at the deadline is refused too (>=)
    let p = p.deadline(Some(Duration::from_secs(3)));
    let out = scripted(&p, losses(10), 0).await;
    assert_close(&out.sleeps, &[1.0]);
    assert!(matches!(
        out.result,
        Err(RetryError::DeadlineExceeded { attempts: 2, .. })
    ));

    // time spent inside attempts counts too
    let p = KazooRetry::single_attempt()
        .max_tries(None)
        .max_jitter(0.0)
        .deadline(Some(Duration::from_secs(2)));
    let calls = AtomicU32::new(0);
    let res: Result<(), _> = retry(&p, || async {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(700)).await;
        Err(Error::ConnectionLoss)
    })
    .await;
    // attempts end at 0.7, 1.5 (after 0.1 sleep), 2.4 (after 0.2): 2.4 + 0.4 >= 2 stops
    assert!(matches!(res, Err(RetryError::DeadlineExceeded { .. })));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn kazoo_retries_only_what_kazoo_retries() {
    let retried = |p: &KazooRetry, e: AttemptError| {
        let p = p.clone();
        async move {
            let out = scripted(&p, vec![e], 0).await;
            match out.result {
                Ok(2) => true,
                Err(_) if out.calls == 1 => false,
                other => panic!("{:?}", other.err()),
            }
        }
    };
    let p = KazooRetry::single_attempt().max_tries(Some(2));
    use AttemptError::Zk;
    assert!(retried(&p, Zk(Error::ConnectionLoss)).await);
    assert!(retried(&p, Zk(Error::Timeout { sent: false })).await);
    assert!(retried(&p, Zk(Error::Timeout { sent: true })).await);
    assert!(retried(&p, Zk(Error::NotConnected)).await);
    assert!(retried(&p, AttemptError::force_retry("not yet")).await);
    assert!(retried(&p, Zk(Error::SessionExpired)).await);
    assert!(!retried(&p.clone().ignore_expire(false), Zk(Error::SessionExpired)).await);
    for e in [
        Error::Closed,
        Error::NoNode,
        Error::NodeExists,
        Error::BadVersion,
        Error::NoAuth,
        Error::AuthFailed,
        Error::ThrottledOp,
        Error::SessionMoved,
    ] {
        assert!(!retried(&p, Zk(e.clone())).await, "{e:?} retried");
    }
    // a closed client is never retried, even with ignore_expire
    let out = scripted(&p.clone().ignore_expire(true), vec![Zk(Error::Closed)], 0).await;
    assert!(matches!(out.result, Err(RetryError::Failed(Error::Closed))));
    // the non-retryable error comes back as it is
    let out = scripted(&p, vec![Zk(Error::NoNode)], 0).await;
    assert!(matches!(out.result, Err(RetryError::Failed(Error::NoNode))));
    // after some retryable ones too
    let errs = vec![Zk(Error::ConnectionLoss), Zk(Error::NodeExists)];
    let out = scripted(&KazooRetry::single_attempt().max_tries(None), errs, 0).await;
    assert!(matches!(
        out.result,
        Err(RetryError::Failed(Error::NodeExists))
    ));
    assert_eq!(out.calls, 2);
}

#[tokio::test(start_paused = true)]
async fn not_idempotent_stops_when_the_outcome_is_unknown() {
    use AttemptError::Zk;
    let p = KazooRetry::single_attempt()
        .max_tries(None)
        .idempotent(false);
    for e in [Error::ConnectionLoss, Error::Timeout { sent: true }] {
        let out = scripted(&p, vec![Zk(Error::NotConnected), Zk(e.clone())], 0).await;
        assert_eq!(out.calls, 2, "{e:?}");
        match out.result {
            Err(RetryError::OutcomeUnknown { attempts: 2, last }) => {
                assert_eq!(last.code(), e.code())
            }
            other => panic!("{e:?}: {other:?}"),
        }
    }
    // not sent, so not applied: retried
    for e in [
        Error::Timeout { sent: false },
        Error::NotConnected,
        Error::SessionExpired,
    ] {
        let out = scripted(&p, vec![Zk(e.clone())], 0).await;
        assert_eq!(out.result.unwrap(), 2, "{e:?}");
    }
    // the default (as kazoo) retries ambiguous errors
    let out = scripted(&KazooRetry::single_attempt().max_tries(None), losses(3), 0).await;
    assert_eq!(out.result.unwrap(), 4);
    // and so does Curator's unless told otherwise
    let c = ExponentialBackoffRetry::new(Duration::from_millis(10), 5, Duration::from_secs(1));
    assert_eq!(scripted(&c, losses(1), 0).await.result.unwrap(), 2);
    let out = scripted(&c.clone().idempotent(false), losses(1), 0).await;
    assert!(matches!(
        out.result,
        Err(RetryError::OutcomeUnknown { attempts: 1, .. })
    ));
    // Curator's retries every transient class of zk-core's classifier, and session expiry
    for e in [
        Error::ThrottledOp,
        Error::RequestTimeout,
        Error::SessionMoved,
        Error::NewConfigNoQuorum,
        Error::SessionExpired,
        Error::NotConnected,
    ] {
        assert_eq!(
            scripted(&c, vec![Zk(e.clone())], 0).await.result.unwrap(),
            2,
            "{e:?}"
        );
    }
    for e in [Error::Closed, Error::NoNode, Error::NoAuth] {
        let out = scripted(&c, vec![Zk(e.clone())], 0).await;
        assert!(
            matches!(out.result, Err(RetryError::Failed(_))),
            "{e:?} retried"
        );
    }
}

// ---------------------------------------------------------------------------- Curator

#[tokio::test(start_paused = true)]
async fn curator_sleeps_are_random_multiples_of_the_base_within_bounds() {
    let base = Duration::from_millis(100);
    let p = ExponentialBackoffRetry::new(base, 10, Duration::from_secs(3600));
    let mut max_seen = [Duration::ZERO; 10];
    for seed in 0..300 {
        let out = scripted(&p, losses(20), seed).await;
        assert!(matches!(
            out.result,
            Err(RetryError::Exhausted { attempts: 11, .. })
        ));
        assert_eq!(out.sleeps.len(), 10);
        for (n, s) in out.sleeps.iter().enumerate() {
            // base * max(1, r), r in 0 .. 2^(n+1)
            let upper = base * ((1u32 << (n + 1)) - 1);
            assert!(*s >= base && *s <= upper, "retry {n}: {s:?}");
            assert_eq!(s.as_nanos() % base.as_nanos(), 0, "{s:?}");
            max_seen[n] = max_seen[n].max(*s);
        }
    }
    // the range really grows with the retry count
    assert!(max_seen[9] > base * 200, "{max_seen:?}");
    assert_eq!(max_seen[0], base, "retry 0 draws 0 or 1: always the base");
}

#[tokio::test(start_paused = true)]
async fn curator_caps_at_max_sleep_and_counts_retries() {
    let base = Duration::from_millis(100);
    let p = ExponentialBackoffRetry::new(base, 12, Duration::from_millis(250));
    let mut capped = 0;
    for seed in 0..50 {
        for s in scripted(&p, losses(20), seed).await.sleeps {
            assert!(s <= Duration::from_millis(250));
            capped += (s == Duration::from_millis(250)) as u32;
        }
    }
    assert!(capped > 100, "{capped}");

    // max_retries counts retries: 0 means one attempt
    let p = ExponentialBackoffRetry::new(base, 0, Duration::from_secs(1));
    let out = scripted(&p, losses(3), 0).await;
    assert_eq!(out.calls, 1);
    assert!(matches!(
        out.result,
        Err(RetryError::Exhausted { attempts: 1, .. })
    ));
    let p = ExponentialBackoffRetry::new(base, 3, Duration::from_secs(1));
    let out = scripted(&p, losses(3), 0).await;
    assert_eq!(out.result.unwrap(), 4);
    // at most 29 retries
    let p = ExponentialBackoffRetry::new(Duration::from_millis(1), 1000, Duration::from_millis(5));
    assert_eq!(p.max_retries(), 29);
    let out = scripted(&p, losses(100), 0).await;
    assert_eq!(out.calls, 30);
}

#[tokio::test(start_paused = true)]
async fn curator_retries_what_curator_retries() {
    let p = ExponentialBackoffRetry::new(Duration::from_millis(1), 3, Duration::from_secs(1));
    for e in [
        Error::ConnectionLoss,
        Error::Timeout { sent: true },
        Error::SessionMoved,
        Error::SessionExpired,
        Error::NewConfigNoQuorum,
        Error::NotConnected,
    ] {
        let out = scripted(&p, vec![AttemptError::Zk(e.clone())], 0).await;
        assert_eq!(out.result.unwrap(), 2, "{e:?}");
    }
    for e in [Error::Closed, Error::NoNode, Error::BadVersion] {
        let out = scripted(&p, vec![AttemptError::Zk(e.clone())], 0).await;
        assert_eq!(out.calls, 1, "{e:?}");
        assert!(matches!(out.result, Err(RetryError::Failed(_))));
    }
}

// ------------------------------------------------------------------- cancellation

#[tokio::test(start_paused = true)]
async fn an_interrupt_cuts_a_sleep_short() {
    let p = KazooRetry::single_attempt()
        .max_tries(None)
        .max_jitter(0.0)
        .delay(Duration::from_secs(10));
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let res: Result<(), _> = Retry::new(&p)
        .interrupt(tokio::time::sleep(Duration::from_secs(25)))
        .run(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::ConnectionLoss)
        })
        .await;
    // attempts at 0 and 10; the sleep of 20 s from 10 s is interrupted at 25 s
    assert_eq!(start.elapsed(), Duration::from_secs(25));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    match res {
        Err(RetryError::Interrupted {
            attempts: 2,
            last: Some(AttemptError::Zk(Error::ConnectionLoss)),
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_is_checked_before_each_attempt_but_never_cuts_one_short() {
    let p = KazooRetry::single_attempt().max_tries(None);
    // already interrupted: no attempt at all
    let calls = AtomicU32::new(0);
    let res: Result<(), _> = Retry::new(&p)
        .interrupt(async {})
        .run(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::ConnectionLoss)
        })
        .await;
    assert!(matches!(
        res,
        Err(RetryError::Interrupted {
            attempts: 0,
            last: None
        })
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // an attempt in flight when the interrupt fires completes, and its success counts
    let res = Retry::new(&p)
        .interrupt(tokio::time::sleep(Duration::from_secs(1)))
        .run(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Error>("done")
        })
        .await;
    assert_eq!(res.unwrap(), "done");

    // a oneshot as interrupt: fired from outside while the runner sleeps
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let p2 = KazooRetry::single_attempt()
        .max_tries(None)
        .delay(Duration::from_secs(100));
    let runner = tokio::spawn(async move {
        Retry::new(&p2)
            .interrupt(async move {
                let _ = rx.await;
            })
            .run(|| async { Err::<(), _>(Error::ConnectionLoss) })
            .await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    tx.send(()).unwrap();
    let res = runner.await.unwrap();
    assert!(matches!(
        res,
        Err(RetryError::Interrupted { attempts: 1, .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_runner_stops_retrying() {
    let p = KazooRetry::single_attempt().max_tries(None).max_jitter(0.0);
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let res = tokio::time::timeout(
        Duration::from_millis(1000),
        retry(&p, move || {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::ConnectionLoss)
            }
        }),
    )
    .await;
    assert!(res.is_err(), "still retrying when dropped");
    // attempts at 0, 0.1, 0.3, 0.7 s; the next would have been at 1.5 s
    let seen = calls.load(Ordering::SeqCst);
    assert_eq!(seen, 4);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        seen,
        "an attempt after the drop"
    );
}

// ---------------------------------------------------------------------- real server

#[tokio::test(flavor = "multi_thread")]
async fn the_runner_retries_through_a_real_connection_loss_until_success() {
    let server = zk_testkit::shared_server();
    let root = common::unique("retry-real");
    let direct = common::shared_client().await;
    direct
        .create(&root, b"payload", zk_core::CreateMode::Persistent)
        .await
        .unwrap();
    let proxy = Arc::new(zk_testkit::FaultProxy::start(server.addr()).await.unwrap());
    let c = common::client(&proxy.connect_string()).await;
    let p = KazooRetry::single_attempt()
        .max_tries(None)
        .deadline(Some(Duration::from_secs(60)));

    // 1. the reply of the first getData (opcode 4) is lost: connection loss, then success
    proxy.cut_after_request(4);
    let errors = Mutex::new(Vec::new());
    let (data, _) = bounded(
        "retry through a cut",
        retry(&p, || async {
            let r = c.get_data(&root).await;
            if let Err(e) = &r {
                errors.lock().unwrap().push(e.clone());
            }
            r
        }),
    )
    .await
    .unwrap();
    assert_eq!(data, b"payload");
    assert_eq!(proxy.cuts_fired(), 1);
    let errs = errors.lock().unwrap().clone();
    assert!(
        matches!(errs.as_slice(), [Error::ConnectionLoss, ..]),
        "{errs:?}"
    );

    // 2. no server reachable for a while: every attempt times out unsent; the operation
    //    succeeds once the proxy lets connections through again
    common::wait_state(&c, zk_core::State::Connected).await;
    proxy.reject_new(true);
    proxy.reset();
    common::wait_state(&c, zk_core::State::Suspended).await;
    let attempts = AtomicU32::new(0);
    let timeouts = AtomicU32::new(0);
    let bounded_c: Client = c.with_timeout(Duration::from_millis(300));
    let (data, _) = bounded(
        "retry through an outage",
        retry(&p, || {
            let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 4 {
                proxy.reject_new(false);
            }
            let bc = bounded_c.clone();
            let root = root.clone();
            let timeouts = &timeouts;
            async move {
                let r = bc.get_data(&root).await;
                if matches!(r, Err(Error::Timeout { sent: false })) {
                    timeouts.fetch_add(1, Ordering::SeqCst);
                }
                r
            }
        }),
    )
    .await
    .unwrap();
    assert_eq!(data, b"payload");
    assert!(attempts.load(Ordering::SeqCst) >= 4);
    assert!(timeouts.load(Ordering::SeqCst) >= 3);
    direct.delete(&root, None).await.unwrap();
}
