//! Apache ZooKeeper's wire protocol with no I/O: jute encoding, the request and reply records,
//! the numeric constants as enums, path rules and framing. Bytes in, values out; everything
//! here encodes *and* decodes, so a test (or a fake server) can speak both sides.
//!
//! This is the layer under [`zk-core`](https://docs.rs/zk-core), kept in a crate of its own
//! as tokio-postgres keeps its protocol in `postgres-protocol`: the golden-frame tests, the
//! decoder's fuzz target and the codec benchmark use it directly, without a client or a
//! socket. Applications use zk-core, which re-exports the data types they see (`Stat`, `Acl`,
//! `Id`, `Perms`, `CreateMode`, `EventType`, `KeeperState`, `AddWatchMode`, `WatcherType`,
//! `ClientInfo`, `digest_id`, `validate_path`); the records (`CreateRequest`,
//! `ReplyHeader`, ...) are public here, with public fields, and follow the wire format
//! rather than semver promises about their shape: they change when the protocol does.
//!
//! ```
//! use zk_proto::{Record, ReplyHeader, Stat, StatResponse};
//! let reply = StatResponse { stat: Stat { version: 3, ..Stat::default() } };
//! let bytes = reply.to_bytes();
//! assert_eq!(bytes.len(), 68);
//! assert_eq!(StatResponse::from_bytes(&bytes).unwrap().stat.version, 3);
//! # let _ = ReplyHeader { xid: 1, zxid: 2, err: 0 };
//! ```
#![deny(missing_docs)]

pub mod frame;
mod jute;
mod path;
mod records;
mod request;
#[cfg(feature = "serde")]
#[doc(hidden)]
pub mod serde_duration;
mod types;

pub use jute::{DecodeError, Reader, Record, Writer};
pub use path::{validate_path, Chroot, PathError};
pub use records::*;
pub use request::{record_frame, reply_frame, Request};
pub use types::*;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
