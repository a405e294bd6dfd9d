//! An async [Apache ZooKeeper](https://zookeeper.apache.org) client speaking the real wire
//! protocol (tested against ZooKeeper 3.8).
#![deny(missing_docs)]

mod client;
pub mod codec;
pub mod error;
mod multi;
pub mod proto;
mod session;
mod state;
mod watch;

pub use client::{Client, ClientBuilder, DEFAULT_MAX_DATA_LEN};
pub use error::{Error, Result};
pub use multi::{Op, OpResult, ReadOp, ReadResult};
pub use proto::{
    digest_id, Acl, AddWatchMode, ClientInfo, CreateMode, EventType, Id, KeeperState, Perms, Stat,
    WatcherType,
};
pub use session::hosts::{parse_connect_string, HostAddr};
pub use session::transport::{ConnectFuture, Connector, TcpConnector, Transport};
pub use state::{State, StateStream, Status};
pub use watch::{OneshotWatcher, PersistentWatcher, WatchedEvent};
