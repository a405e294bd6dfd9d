//! Coordination recipes on top of `zk-core`, wire-compatible with kazoo.
#![deny(missing_docs)]

pub mod barrier;
mod contender;
mod election;
mod lock;
pub mod retry;
mod semaphore;
pub mod watchers;

pub use contender::{
    parse_contender, sorted_contenders, ContenderNode, Guard, LostPolicy, LostReason, LostSignal,
    LOCK_MARK, RLOCK_MARK,
};
pub use election::{Election, RunOutcome};
pub use lock::{Lock, ReadLock, WriteLock};
pub use semaphore::Semaphore;
