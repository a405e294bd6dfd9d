//! Coordination recipes on top of `zk-core`, wire-compatible with kazoo: a Rust service and a
//! Python (kazoo) service can contend for the same lock, election or barrier.
//!
//! | recipe | kazoo equivalent | node layout |
//! |---|---|---|
//! | [`Lock`], [`WriteLock`] | `Lock`, `WriteLock` | `P/<uuid>__lock__<seq>` |
//! | [`ReadLock`] | `ReadLock` | `P/<uuid>__rlock__<seq>` |
//! | [`Semaphore`] | `Semaphore` | `P` = max, `P/<uuid>` leases, admission lock `P-__lock__` |
//! | [`Election`] | `Election` | the lock layout on `P` |
//! | [`MultiLock`] | — (Curator's `InterProcessMultiLock`) | its member locks' layouts, taken in sorted path order |
//! | [`PersistentNode`], [`PersistentTtlNode`] | — (Curator's `PersistentNode`, `PersistentTtlNode`) | the path given (protected: `_c_<uuid>-<name>`); TTL: container `P` + TTL child `P/touch` |
//! | [`GroupMember`] | — (Curator's `GroupMember`) | `P/<id>` EPHEMERAL, data = payload |
//! | [`ServiceDiscovery`] | — (curator-x-discovery's `ServiceDiscovery`) | `base/<service>/<id>`, data = Curator's JSON instance |
//! | [`Barrier`], [`DoubleBarrier`] | `Barrier`, `DoubleBarrier` | `P`; `P/<uuid>` + `P/ready` |
//! | [`Counter`] | `Counter` (`support_curator`: Curator `SharedCount`) | `P`, data = `repr(value)` ASCII, or a 4-byte big-endian int |
//! | [`DistributedAtomicLong`] | — (Curator's `DistributedAtomicLong`) | `P`, data = an 8-byte big-endian long; promotion mutex in `InterProcessMutex` layout |
//! | [`Party`], [`ShallowParty`] | `Party`, `ShallowParty` | `P/<uuid>__party__` (data = id); `P/<uuid>-<id>` |
//! | [`Queue`] | `Queue` | `P/entry-PPP-<seq>` (persistent sequential, `PPP` = priority) |
//! | [`LockingQueue`] | `LockingQueue` | `P/entries/entry-PPP-<seq>`, taken: `P/taken/<entry>` (ephemeral, data = a uuid per take) |
//! | [`SetPartitioner`] | `SetPartitioner` (`PartitionState`) | party `P/party/<uuid>-<id>`; a lock per item `P/locks/<item>/<uuid>__lock__<seq>` |
//! | [`NonBlockingLease`], [`MultiNonBlockingLease`] | `NonBlockingLease`, `MultiNonBlockingLease` | `P/lease_holder` (JSON: version, holder, end); lock `P/<uuid>__lock__<seq>`; Multi: `P/0` … `P/<n-1>` |
//! | [`FencedLease`] | — (kazoo's `Lock(P)` sees it held) | `P/<uuid>__lock__<seq>` EPHEMERAL, taken only when free |
//! | [`DataWatch`], [`ChildrenWatch`] | `DataWatch`, `ChildrenWatch` | — |
//! | [`PatientChildrenWatch`] | `PatientChildrenWatch` | — |
//! | [`TreeCache`] | `TreeCache` (Curator's `TreeCache` event types) | — (one persistent recursive watch on `P`) |
//! | [`KazooRetry`], [`ExponentialBackoffRetry`] | `KazooRetry`, Curator's | — |
//!
//! [`Lock`], [`ReadLock`] / [`WriteLock`], [`Semaphore`] and [`Election`] also speak Apache
//! Curator 5's layout with `.layout(`[`Layout::Curator`]`)`, so Rust and Java (Curator) services
//! share them: `InterProcessMutex` (`P/_c_<uuid>-lock-<seq>`), `InterProcessReadWriteLock`
//! (`__WRIT__` / `__READ__`), `InterProcessSemaphoreV2` (`P/locks`, `P/leases`) and
//! `LeaderLatch` (`P/_c_<uuid>-latch-<seq>`), in Curator's queue order.
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_core::{Client, Op};
//! use zk_recipes::{Election, Lock};
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181").await?;
//!
//! // a lock with one total deadline; the guard knows when it is lost
//! let lock = Lock::new(&client, "/locks/billing", "worker-3");
//! if let Some(guard) = lock.acquire_timeout(Duration::from_secs(10)).await? {
//!     // a write that only applies while we still hold the lock
//!     guard
//!         .fenced_multi(vec![Op::set_data("/billing/last-run", b"now".to_vec(), None)])
//!         .await?;
//!     guard.release().await?;
//! }
//!
//! // leader election: the task is cancelled if leadership is lost
//! let election = Election::new(&client, "/election/scheduler", "node-a");
//! let outcome = election.run(|lost| async move {
//!     while lost.reason().is_none() {
//!         // ... lead ...
//!         # break;
//!     }
//! }).await?;
//! # let _ = outcome;
//! # Ok(()) }
//! ```
//!
//! # One convention
//!
//! Every recipe is built from `&Client`, a `&str` path and (where it has one) an
//! `impl Into<String>` identifier; knobs are consuming setters (`lost_policy`, `auto_requeue`,
//! `survive_session_loss`); only a zero-sized [`Semaphore`] or [`DoubleBarrier`], or a
//! [`MultiLock`] over no path or one path twice, makes `new` fail. Waiting comes in the same forms everywhere: `acquire()` / `acquire_timeout(d)` /
//! `acquire_until(t)` / `try_acquire()` (and `wait*`, `enter*`, `leave*` for the barriers),
//! and a passed deadline is always `Ok(None)`, never an error. Whatever is held is a [`Guard`];
//! each recipe that hands one out has `run(task)` (hold, run, release) and the guard has
//! [`Guard::run_while_held`]. `docs/recipes.md` has the full table.
//!
//! # Behavior
//!
//! * **Loss.** A [`Guard`] (lock, lease, leadership) is lost when the session is lost, when its
//!   node is deleted, and, with the default [`LostPolicy::Suspended`], as soon as the connection
//!   is suspended: before the server can expire the session and let a peer in. Once lost it
//!   stays lost (the reason may be refined from `Suspended` to `SessionLost` when the client
//!   learns the session expired), and it gives its node up in the background, freeing its
//!   handle. [`Guard::fence`] / [`Guard::fenced_multi`] make writes conditional on the node
//!   still existing; a fenced write on a lost guard fails with [`GuardError::Lost`].
//! * **Herd-free.** A waiter watches only its nearest blocker; a release wakes one waiter.
//! * **Deadlines.** One total deadline per call, across predecessor changes and reconnects; on
//!   timeout nothing of ours is left on the server.
//! * **Cancel safety.** Dropping any acquire / enter future at any await point leaves no node
//!   behind: a spawned task removes what the interrupted call may have created.
//! * **Recovery.** An ambiguous create (reply lost) is recovered by listing the children and
//!   adopting the node with our prefix only if its ephemeral owner is our session.
//!
//! See `docs/recipes.md` for each algorithm, its layout and its failure semantics.
#![deny(missing_docs)]

mod atomic;
pub mod barrier;
mod counter;
mod discovery;
mod election;
mod guard;
mod lease;
mod lock;
mod multi_lock;
mod naming;
mod partitioner;
mod party;
mod patient;
mod persistent;
mod plumbing;
mod queue;
pub mod retry;
mod semaphore;
pub mod tree_cache;
pub mod watchers;
mod work_queue;

pub use atomic::{AtomicResult, AtomicStats, DistributedAtomicLong};
pub use barrier::{Barrier, DoubleBarrier};
pub use counter::{Change, Counter, CounterValue};
pub use discovery::{Registration, ServiceDiscovery, ServiceInstance, ServiceType};
pub use election::{Election, Participant};
pub use guard::{Guard, GuardError, LostPolicy, LostReason, LostSignal, RunOutcome};
pub use lease::{FencedLease, LeaseHolder, MultiNonBlockingLease, NonBlockingLease};
pub use lock::{Lock, ReadLock, WriteLock};
pub use multi_lock::{MultiGuard, MultiLock};
pub use naming::{
    parse_contender, sorted_contenders, ContenderNode, Layout, LOCK_MARK, RLOCK_MARK,
};
pub use partitioner::{kazoo_partition, PartitionFn, PartitionState, SetPartitioner};
pub use party::{Members, Party, ShallowParty};
pub use patient::{ChildrenChanged, PatientChildrenWatch};
pub use persistent::{GroupMember, PersistentNode, PersistentTtlNode, TTL_TOUCH_CHILD};
pub use retry::{ExponentialBackoffRetry, KazooRetry};
pub use semaphore::Semaphore;
pub use tree_cache::{CachedNode, TreeCache, TreeCacheEvent, TreeCacheEvents, TreeCacheStats};
pub use watchers::{Children, ChildrenWatch, Data, DataWatch, NodeWatch, WatchKind};
pub use work_queue::{LockedEntry, LockingQueue, Queue, DEFAULT_PRIORITY, MAX_PRIORITY};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
