//! An async [Apache ZooKeeper](https://zookeeper.apache.org) client speaking the real wire
//! protocol (tested against ZooKeeper 3.8).
//!
//! ```no_run
//! use futures::StreamExt;
//! use std::time::Duration;
//! use zk_core::{AddWatchMode, Client, CreateMode, Error, Op, State};
//!
//! # async fn example() -> zk_core::Result<()> {
//! // hosts are tried in random order; "/app" is a chroot applied to every path
//! let client = Client::builder("10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181/app")
//!     .session_timeout(Duration::from_secs(10))
//!     .connect()
//!     .await?;
//!
//! client.ensure_path("/workers").await?;
//! let me = client
//!     .create("/workers/w-", b"host-1", CreateMode::EphemeralSequential)
//!     .await?;
//!
//! match client.create("/config", b"{}", CreateMode::Persistent).await {
//!     Ok(_) | Err(Error::NodeExists) => {}
//!     Err(e) => return Err(e),
//! }
//! let (data, stat, changed) = client.get_data_watch("/config").await?;
//!
//! // fenced write: applied only while our ephemeral node exists
//! client
//!     .multi(vec![
//!         Op::check(&me, None),
//!         Op::set_data("/config", b"{\"v\":2}".to_vec(), Some(stat.version)),
//!     ])
//!     .await?;
//! let event = changed.await?; // NodeDataChanged on /config
//!
//! // every event below /workers, surviving reconnects
//! let mut workers = client
//!     .add_watch("/workers", AddWatchMode::PersistentRecursive)
//!     .await?;
//! let mut states = client.state_stream();
//! tokio::spawn(async move {
//!     while let Some(s) = states.next().await {
//!         if s.state != State::Connected {
//!             eprintln!("session {:#x} is {}", s.session_id, s.state);
//!         }
//!     }
//! });
//! while let Some(ev) = workers.next().await {
//!     println!("{:?}", ev?);
//! }
//! # let _ = (data, event);
//! # Ok(()) }
//! ```
//!
//! # Behavior
//!
//! **Ordering.** Requests from all clones of a [`Client`] are pipelined on one connection and
//! answered in the order they were sent. A watch event is delivered before the reply to any
//! request sent after the change it reports, so a client never reads new data without having
//! seen the event for it first.
//!
//! **Reconnect.** When a connection breaks (server down, network fault, two thirds of the
//! session timeout without a byte from the server), the client moves to the next host and
//! re-attaches to the *same* session with its id and password: ephemeral nodes stay. It re-sends
//! its authentication and re-registers every watch, one-shot and persistent, with the last zxid
//! it saw, so one-shot watches whose node changed meanwhile fire right away. Requests that were
//! in flight fail with [`Error::ConnectionLoss`] (their outcome is unknown:
//! [`Error::may_have_been_applied`]); requests issued while disconnected wait for the next
//! connection, up to their deadline ([`Client::with_timeout`], [`ClientBuilder::request_timeout`]).
//! The state is [`State::Suspended`] meanwhile.
//!
//! **Every request resolves within a bound.** With default settings, whatever the servers do: a
//! request written to a connection is answered, or fails with [`Error::ConnectionLoss`] when the
//! connection is declared dead (two thirds of the session timeout without a byte from the
//! server); a request waiting for a connection fails with [`Error::SessionExpired`] when the
//! session is lost, or with `Timeout { sent: false }` after twice the session timeout (say,
//! while a new session cannot be established). A deadline of its own ([`Client::with_timeout`],
//! [`Client::with_deadline`], [`ClientBuilder::request_timeout`]) bounds it further, sent or
//! not; `Timeout { sent: false }` always means it never reached a socket (so it was not
//! applied), `sent: true` that its outcome is unknown.
//!
//! **Session expiry.** When a server says the session expired, the state becomes
//! [`State::Lost`]: queued requests, one-shot watches and persistent watch streams all end with
//! [`Error::SessionExpired`]. The same happens when no server was reachable for a whole session
//! timeout (Curator's rule: it gives lock holders a timely loss signal). The ensemble has then
//! usually expired the session already, but not always (a restarted server restarts session
//! timers), so the client gives the session up *and* closes it: the first server that answers
//! gets a re-attach with the old id and password followed by `closeSession`, before any new
//! session starts; its ephemeral nodes never outlive the LOST into the next session. By default
//! the client then starts a new session (as kazoo does; [`Status::generation`] counts
//! sessions); with [`ClientBuilder::reconnect_after_expiry`]`(false)` LOST is final: requests
//! fail with [`Error::SessionExpired`] at once, and the client keeps trying to close the given-up
//! session in the background (the same re-attach and `closeSession` at the first server that
//! answers) until that is done, the server says the session is gone, or [`Client::close`] (or
//! dropping the last handle) runs out of its close timeout.
//!
//! **Auth failure.** A server answering a credential ([`Client::add_auth`], SASL) with
//! AUTHFAILED closes the connection only: the session and its ephemeral nodes would live until
//! it times out. The client publishes [`State::Lost`] (`KeeperState::AuthFailed`), fails
//! everything with [`Error::AuthFailed`], and closes the session itself: a re-attach on a new
//! connection (without replaying the refused credential) and `closeSession`, within the close
//! timeout; then it stops. SASL that cannot be done on the client's side (GSSAPI, feature
//! `gssapi`: no Kerberos credentials, no KDC, an unknown service principal) ends the client the
//! same way; [`ClientBuilder::connect`] then fails with [`Error::SaslFailed`], which names the
//! cause.
//!
//! **Watches.** One-shot watches ([`Client::get_data_watch`], [`Client::exists_watch`],
//! [`Client::get_children_watch`]) are futures that resolve once. Persistent and persistent
//! recursive watches ([`Client::add_watch`]) are streams. A watch is only registered if its
//! request succeeded (`exists` on a missing node leaves a creation watch). Dropping a watcher
//! stops delivery to it; dropped one-shot watchers are forgotten as the client's registry
//! grows, so their number stays bounded. One-shot and persistent watches on the same path
//! coexist: on servers before 3.9, where the last watch request on a path sets the kind of
//! the session's only watch there (ZOOKEEPER-4466), the client sends such one-shot reads
//! without a server-side watch and completes them from the persistent watch's events (see
//! [`PersistentWatcher`]); declared 3.9 servers ([`ClientBuilder::server_version`]) keep both
//! themselves, and also remove one kind alone ([`WatcherType::Persistent`],
//! [`WatcherType::PersistentRecursive`]). Dropping the last persistent watcher on a path removes the
//! server-side watch too, unless a one-shot watch of the client there still relies on it
//! (then it lasts until the next reconnect).
//!
//! **Input checks.** Paths (as the server's rules), data sizes (default at most 1 MiB - 1), the
//! size of the whole encoded request (default at most 1 MiB - 1, what a stock server's
//! `jute.maxbuffer` accepts: [`ClientBuilder::max_request_len`]; a watched path must also fit
//! the SetWatches packet that re-registers it) and ACLs (empty, no or unknown permissions,
//! `world` other than `anyone`) are checked before
//! anything is sent, with [`Error::BadPath`], [`Error::DataTooLarge`],
//! [`Error::RequestTooLarge`] or [`Error::InvalidArgument`]; nothing else on the connection
//! notices. Every [`ClientBuilder`] setting is checked by [`ClientBuilder::connect`] before
//! anything starts. Under a chroot, no path outside it is ever shown as inside it, and a
//! sequential create of `"/"` makes a node inside it. A reply larger than
//! [`ClientBuilder::max_frame_len`] (default 16 MiB) is read past and discarded without
//! buffering it, and only its own request fails ([`Error::ReplyTooLarge`]). A malformed frame
//! from a server (a negative length, an undecodable record, a reply to no request) is a
//! protocol error on that connection, never a panic or an allocation of the claimed size.
//!
//! **Closing.** [`Client::close`], or dropping the last clone, sends `closeSession`: the
//! session's ephemeral nodes vanish at once. When disconnected, the client first reaches a
//! server and re-attaches, within the close timeout ([`ClientBuilder::close_timeout`], default
//! 2 s); `close()` returns [`Error::Timeout`] if it could not. `close()` says `Ok(())` only when
//! the session was closed, or a server said it was already gone (or there never was one).
//!
//! # Cancel safety
//!
//! A request is *issued* when its future is first polled: it is then handed to the session
//! task, which writes it to the connection in order. Dropping the future (or its deadline
//! passing) **before** the session task took it for a socket means it is never sent, so it is
//! not applied: one atomic hand-off decides it, and a timeout says which side won
//! (`Timeout { sent: false }`). Dropping it **after** that point cancels nothing: the server
//! applies it or not, and the reply is thrown away. Watches are registered only when the reply
//! is read, so a dropped `get_data_watch` leaves at most a server-side watch that fires into
//! nothing. An [`Client::add_watch`] given up after it was sent (dropped, or
//! `Timeout { sent: true }`) leaves nothing behind: when its reply is read, the persistent watch
//! the server set is released at once, as if its stream had been dropped then.
//! [`Client::close`] is not cancel-safe in that sense: once called, the client
//! closes, whether or not its future is awaited.
//!
//! **Logging.** Connects, handshakes, reconnects, state changes and expiry are `tracing` events
//! under the `zk_session` span; nothing is printed.
//!
//! **The wire layer** (jute records, constants, framing) is the
//! [`zk-proto`](https://docs.rs/zk-proto) crate, with no I/O; the data types a user names
//! ([`Stat`], [`Acl`], [`CreateMode`], [`EventType`], ...) are re-exported here, so an
//! application needs only zk-core.
//!
//! # Features
//!
//! - `tls` (default): `tcp+tls://` hosts, [`ClientBuilder::tls`], [`TlsConfig`] (rustls).
//! - `serde` (off by default): `Serialize` and `Deserialize` for [`Config`] (a service's
//!   ZooKeeper settings in its own JSON or TOML file; the format is on [`Config`]) and for the
//!   data types [`Stat`], [`Acl`], [`Id`], [`Perms`], [`CreateMode`], [`EventType`],
//!   [`KeeperState`], [`WatchedEvent`], [`State`] and [`ClientInfo`]. Enums are their variant
//!   names (`"NodeCreated"`, `"Connected"`), [`Perms`] are zkCli's letters (`"cdrwa"`),
//!   durations are strings with a unit (`"10s"`, `"500ms"`; an integer is read as
//!   milliseconds). [`Status`] is `Serialize` only and never includes the session password.
#![deny(missing_docs)]

mod client;
mod codec;
mod config;
mod create;
mod ensemble;
pub mod error;
mod multi;
// The wire layer, the `zk-proto` crate, under its old module name inside zk-core.
use zk_proto as proto;
#[cfg(feature = "serde")]
use zk_proto::serde_duration;
#[cfg(feature = "gssapi")]
pub mod gssapi;
#[cfg(all(test, feature = "serde"))]
mod serde_tests;
mod session;
mod state;
#[cfg(feature = "tls")]
pub mod tls;
mod watch;

pub use client::{Client, ClientBuilder, DEFAULT_MAX_DATA_LEN, DEFAULT_MAX_REQUEST_LEN};
pub use config::{AuthConfig, Config, SaslDigestMd5, ServerVersion};
#[cfg(feature = "tls")]
pub use config::{ClientCertFiles, TlsFiles};
pub use create::CreateOptions;
pub use ensemble::{EnsembleConfig, ReconfigOptions, ServerEntry, ServerRole};
pub use error::{Error, Result, Transience};
#[cfg(feature = "gssapi")]
pub use gssapi::SaslGssapi;
pub use multi::{Op, OpResult, ReadOp, ReadResult};
pub use proto::{
    digest_id, validate_path, Acl, AddWatchMode, ClientInfo, CreateMode, EventType, Id,
    KeeperState, PathError, Perms, Stat, WatcherType,
};
pub use session::hosts::{parse_connect_string, HostAddr};
pub use session::transport::{ConnectFuture, Connector, TcpConnector, Transport};
pub use state::{State, StateStream, Status};
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsConnector};
pub use watch::{OneshotWatcher, PersistentWatcher, WatchedEvent};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
