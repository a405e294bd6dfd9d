//! zk-core (being written).
pub mod error;
pub mod proto;
pub use error::{Error, Result};
