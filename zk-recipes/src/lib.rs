//! Coordination recipes on top of `zk-core`, wire-compatible with kazoo.
#![deny(missing_docs)]

mod contender;
mod election;
mod lock;
mod semaphore;

pub use contender::{
    parse_contender, sorted_contenders, ContenderNode, Guard, LostPolicy, LostReason, LostSignal,
    LOCK_MARK, RLOCK_MARK,
};
pub use election::{Election, RunOutcome};
pub use lock::{Lock, ReadLock, WriteLock};
pub use semaphore::Semaphore;
