//! The ZooKeeper wire protocol with no I/O: jute encoding, records, constants and path rules.
//! Bytes in, values out; everything here encodes *and* decodes.

mod jute;
mod path;
mod records;
mod types;

pub use jute::{DecodeError, Reader, Record, Writer};
pub use path::{validate_path, Chroot, PathError};
pub use records::*;
pub use types::*;
