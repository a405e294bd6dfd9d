//! zk-core (being written).
