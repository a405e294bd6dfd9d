//! Coordination recipes on top of `zk-core` (work in progress: see issue 3).
