//! The one error type of the client.

use crate::proto::{DecodeError, PathError};
use std::sync::Arc;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! server_codes {
    ( $( $(#[$m:meta])* $v:ident = $n:expr, $msg:expr; )+ ) => {
        /// Everything that can go wrong. Server error codes each have their own variant
        /// ([`Error::code`] / [`Error::from_code`] map them both ways); the rest are client-side.
        #[derive(Debug, Clone, thiserror::Error)]
        #[non_exhaustive]
        pub enum Error {
            $( $(#[$m])* #[error($msg)] $v, )+
            /// A server error code this client does not know.
            #[error("unknown ZooKeeper error code {0}")]
            Unknown(i32),

            /// The connection broke while the request was in flight: the server may or may not
            /// have applied it. The session may still be alive; the client is reconnecting.
            #[error("connection lost while the request was in flight; it may or may not have been applied")]
            ConnectionLoss,
            /// The session expired (or was closed by someone else): its ephemeral nodes are gone
            /// and its watches will not fire.
            #[error("session expired")]
            SessionExpired,
            /// The request's deadline passed. If `sent` is true its outcome is unknown;
            /// if false it never left the client.
            #[error("request timed out ({})", if *sent { "after it was sent; it may or may not have been applied" } else { "before it was sent; it was not applied" })]
            Timeout {
                /// Whether the request had been written to a server.
                sent: bool,
            },
            /// The client is not connected, and the request was made with
            /// [`Client::fail_if_disconnected`](crate::Client::fail_if_disconnected): it was not
            /// sent, so it was not applied.
            #[error("not connected; the request was not sent")]
            NotConnected,
            /// The client was closed (or its session task is gone).
            #[error("client is closed")]
            Closed,
            /// Authentication was refused by the server; the client cannot be used any more.
            #[error("authentication failed")]
            AuthFailed,
            /// SASL authentication could not be done on the client's side, and the message says
            /// why: with GSSAPI (feature `gssapi`), no Kerberos credentials, no KDC answering,
            /// a service principal the KDC does not know; with DIGEST-MD5, a server answer the
            /// mechanism cannot take (an empty challenge: a server without SASL set up).
            /// [`ClientBuilder::connect`](crate::ClientBuilder::connect) returns it; the client ends as with
            /// [`AuthFailed`](Error::AuthFailed) (its code is -115 too), and a client that was
            /// connected before fails its requests with `AuthFailed`.
            #[error("SASL authentication failed: {message}")]
            SaslFailed {
                /// What failed, naming the cause.
                message: String,
            },
            /// An I/O error on the connection.
            #[error("I/O error: {0}")]
            Io(#[source] Arc<std::io::Error>),
            /// The server sent something that is not valid ZooKeeper protocol (a bad frame
            /// length, an undecodable record, an out-of-order reply).
            #[error("protocol error: {0}")]
            Protocol(String),
            /// A path was refused before anything was sent.
            #[error(transparent)]
            BadPath(#[from] PathError),
            /// Data larger than the configured maximum was refused before anything was sent.
            #[error("data of {len} bytes exceeds the maximum of {max} bytes")]
            DataTooLarge {
                /// Length of the data.
                len: usize,
                /// Configured maximum.
                max: usize,
            },
            /// The encoded request is larger than the request-size limit (by default what a
            /// stock server accepts: its `jute.maxbuffer`, 1 MiB - 1 for the whole frame); it was
            /// refused before sending, nothing else on the connection noticed. To send larger
            /// requests raise the servers' `jute.maxbuffer` *and*
            /// [`ClientBuilder::max_request_len`](crate::ClientBuilder::max_request_len).
            #[error("request of {len} bytes exceeds the limit of {max} bytes (the server's jute.maxbuffer; raise it on every server and with ClientBuilder::max_request_len); it was not sent")]
            RequestTooLarge {
                /// Length of the encoded request (length prefix excluded).
                len: usize,
                /// The limit in force.
                max: usize,
            },
            /// The server's reply was larger than
            /// [`ClientBuilder::max_frame_len`](crate::ClientBuilder::max_frame_len): it was read
            /// and discarded, and only this request failed. The server answered it with success
            /// (an error reply is a bare header), so a write *was* applied:
            /// [`may_have_been_applied`](Error::may_have_been_applied) is true.
            #[error("reply of {len} bytes exceeds max_frame_len of {max} bytes; it was discarded")]
            ReplyTooLarge {
                /// Length the server announced.
                len: usize,
                /// The limit in force.
                max: usize,
            },
            /// An argument was refused before anything was sent.
            #[error("invalid argument: {0}")]
            InvalidArgument(String),
            /// A `multi` transaction was not applied: op `index` failed with `error`. Nothing in
            /// the transaction took effect.
            #[error("transaction failed at op {index}: {error}")]
            TransactionFailed {
                /// Position of the first failing op.
                index: usize,
                /// Its error.
                error: Box<Error>,
            },
            /// Could not connect to any server within the time allowed. The message names the
            /// last attempt's failure; `source()` is that failure when it was an I/O error.
            #[error("could not connect: {message}")]
            ConnectFailed {
                /// What happened, including the last attempt's error.
                message: String,
                /// The last attempt's error, when there was one.
                #[source]
                source: Option<Box<Error>>,
            },
        }

        impl Error {
            /// The ZooKeeper error code this error corresponds to, for server codes and the
            /// client-side codes ZooKeeper defines (connection loss -4, operation timeout -7,
            /// session expired -112, auth failed -115). `None` for purely client-side errors.
            pub fn code(&self) -> Option<i32> {
                match self {
                    $( Error::$v => Some($n), )+
                    Error::Unknown(c) => Some(*c),
                    Error::ConnectionLoss => Some(-4),
                    Error::Timeout { .. } => Some(-7),
                    Error::SessionExpired => Some(-112),
                    Error::AuthFailed | Error::SaslFailed { .. } => Some(-115),
                    Error::TransactionFailed { error, .. } => error.code(),
                    _ => None,
                }
            }

            /// The error for a server code. `0` is not an error; it maps to
            /// `Unknown(0)`.
            pub fn from_code(code: i32) -> Error {
                match code {
                    $( $n => Error::$v, )+
                    -4 => Error::ConnectionLoss,
                    -7 => Error::Timeout { sent: true },
                    -112 => Error::SessionExpired,
                    -115 => Error::AuthFailed,
                    c => Error::Unknown(c),
                }
            }
        }
    };
}

server_codes! {
    /// -1: a server-side system error.
    SystemError = -1, "system error";
    /// -2: a runtime inconsistency; inside a failed multi, the ops after the failing one.
    RuntimeInconsistency = -2, "runtime inconsistency (op not executed because another op in the transaction failed)";
    /// -3: a data inconsistency.
    DataInconsistency = -3, "data inconsistency";
    /// -5: the server could not (un)marshal the request.
    MarshallingError = -5, "marshalling error";
    /// -6: the server does not implement this operation (or the feature is disabled).
    Unimplemented = -6, "operation is unimplemented or disabled on the server";
    /// -8: the server refused the arguments.
    BadArguments = -8, "bad arguments";
    /// -12: unknown session.
    UnknownSession = -12, "unknown session";
    /// -13: a reconfig would leave no quorum.
    NewConfigNoQuorum = -13, "new configuration has no quorum";
    /// -14: another reconfig is in progress.
    ReconfigInProgress = -14, "reconfiguration in progress";
    /// -100: generic API error.
    ApiError = -100, "API error";
    /// -101: the node does not exist.
    NoNode = -101, "node does not exist";
    /// -102: not authorized.
    NoAuth = -102, "not authorized";
    /// -103: version mismatch.
    BadVersion = -103, "version mismatch";
    /// -108: ephemeral nodes cannot have children.
    NoChildrenForEphemerals = -108, "ephemeral nodes cannot have children";
    /// -110: the node already exists.
    NodeExists = -110, "node already exists";
    /// -111: the node has children.
    NotEmpty = -111, "node has children";
    /// -113: invalid callback.
    InvalidCallback = -113, "invalid callback";
    /// -114: invalid ACL.
    InvalidAcl = -114, "invalid ACL";
    /// -118: the session moved to another server.
    SessionMoved = -118, "session moved to another server";
    /// -119: a write was sent to a read-only server.
    NotReadOnly = -119, "server is read-only";
    /// -120: ephemeral created on a local session.
    EphemeralOnLocalSession = -120, "cannot create an ephemeral node on a local session";
    /// -121: no such watch.
    NoWatcher = -121, "no such watcher";
    /// -122: request timed out on the server.
    RequestTimeout = -122, "request timed out on the server";
    /// -123: reconfig is disabled.
    ReconfigDisabled = -123, "reconfiguration is disabled";
    /// -124: the session was closed because SASL auth is required.
    SessionClosedRequireSaslAuth = -124, "session closed: SASL authentication required";
    /// -125: a quota was exceeded.
    QuotaExceeded = -125, "quota exceeded";
    /// -127: the server throttled the request.
    ThrottledOp = -127, "operation throttled by the server";
}

/// What [`Error::transience`] says of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transience {
    /// The connection failed or a deadline passed (`ConnectionLoss`, `Timeout`, `NotConnected`,
    /// `Io`): the same request may succeed once connected again. Kazoo retries these.
    Connection,
    /// The server refused it for now (`ThrottledOp`, `RequestTimeout`, `SessionMoved`,
    /// `NewConfigNoQuorum`): it may succeed later in the same session.
    Server,
    /// The session expired: only a new session helps.
    SessionExpired,
    /// Trying the same request again fails the same way (or the client is closed).
    Permanent,
}

impl Error {
    /// How retrying the same request may fare: the one classification of transient errors,
    /// used by [`is_retryable`](Self::is_retryable), zk-recipes' retry policies (each retries
    /// the classes its model retries: kazoo's `KazooRetry` [`Transience::Connection`], and
    /// session expiry if asked; Curator's all but [`Transience::Permanent`]) and the recipes.
    pub fn transience(&self) -> Transience {
        match self {
            Error::ConnectionLoss | Error::Timeout { .. } | Error::NotConnected | Error::Io(_) => {
                Transience::Connection
            }
            Error::ThrottledOp
            | Error::RequestTimeout
            | Error::SessionMoved
            | Error::NewConfigNoQuorum => Transience::Server,
            Error::SessionExpired => Transience::SessionExpired,
            _ => Transience::Permanent,
        }
    }

    /// Whether retrying the same operation in the same session may succeed: a
    /// [`Transience::Connection`] or [`Transience::Server`] error. Session expiry is *not*
    /// included: a new session is needed, which a caller decides about (zk-recipes'
    /// `KazooRetry::ignore_expire`; Curator-style `ExponentialBackoffRetry` retries it).
    /// Whether a failed write may have been applied is a separate question:
    /// [`may_have_been_applied`](Self::may_have_been_applied).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.transience(),
            Transience::Connection | Transience::Server
        )
    }

    /// Whether the operation may have been applied although it failed: its reply was lost
    /// (connection loss, or a timeout after it was sent). A caller of a non-idempotent write must
    /// check before trying again.
    pub fn may_have_been_applied(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss | Error::Timeout { sent: true } | Error::ReplyTooLarge { .. }
        )
    }

    /// Whether the session is over for this client (expired, auth failed, or the client
    /// closed): its watches are gone, and so are its ephemeral nodes once the session is closed
    /// (after an auth failure the client closes it itself, within the close timeout; see
    /// [`Client::add_auth`](crate::Client::add_auth)).
    pub fn is_session_dead(&self) -> bool {
        matches!(
            self,
            Error::SessionExpired | Error::AuthFailed | Error::SaslFailed { .. } | Error::Closed
        )
    }

    pub(crate) fn connect_failed(message: String) -> Error {
        Error::ConnectFailed {
            message,
            source: None,
        }
    }

    pub(crate) fn io(e: std::io::Error) -> Error {
        Error::Io(Arc::new(e))
    }
}

/// A record from a server that does not decode: a protocol error. Crate-private (not a `From`
/// impl): the wire layer's types are not part of zk-core's API (docs/stability.md).
pub(crate) trait DecodeExt<T> {
    /// `Err(DecodeError)` becomes [`Error::Protocol`].
    fn or_protocol(self) -> Result<T>;
}

impl<T> DecodeExt<T> for std::result::Result<T, DecodeError> {
    fn or_protocol(self) -> Result<T> {
        self.map_err(|e| Error::Protocol(e.to_string()))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io(e)
    }
}

/// The server-to-client path mapping for a path a server returned in answer to a request inside
/// the chroot: one outside is a protocol error.
pub(crate) trait ChrootExt {
    /// [`Chroot::to_client`](crate::proto::Chroot::to_client), or [`Error::Protocol`].
    fn to_client_checked(&self, path: &str) -> Result<String>;
}

impl ChrootExt for crate::proto::Chroot {
    fn to_client_checked(&self, path: &str) -> Result<String> {
        self.to_client(path).ok_or_else(|| {
            Error::Protocol(format!(
                "the server returned {path:?}, outside the chroot {:?}",
                self.as_str().unwrap_or("/")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_both_ways() {
        let known = [
            -1, -2, -3, -4, -5, -6, -7, -8, -12, -13, -14, -100, -101, -102, -103, -108, -110,
            -111, -112, -113, -114, -115, -118, -119, -120, -121, -122, -123, -124, -125, -127,
        ];
        for c in known {
            let e = Error::from_code(c);
            assert!(!matches!(e, Error::Unknown(_)), "{c} unknown");
            assert_eq!(e.code(), Some(c), "{c}");
        }
        assert!(matches!(Error::from_code(-9), Error::Unknown(-9)));
        assert_eq!(Error::from_code(-9).code(), Some(-9));
    }

    #[test]
    fn a_server_path_outside_the_chroot_is_a_protocol_error() {
        let c = crate::proto::Chroot::new("/app").unwrap();
        assert_eq!(c.to_client_checked("/app/x").unwrap(), "/x");
        assert!(matches!(
            c.to_client_checked("/apple"),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn helpers() {
        assert!(Error::ConnectionLoss.is_retryable());
        assert!(Error::ConnectionLoss.may_have_been_applied());
        assert!(!Error::Timeout { sent: false }.may_have_been_applied());
        assert!(!Error::NoNode.is_retryable());
        assert!(Error::SessionExpired.is_session_dead());
        assert!(!Error::SessionExpired.is_retryable());
        let io = Error::io(std::io::Error::other("x"));
        assert!(std::error::Error::source(&io).is_some());
        assert!(Error::ConnectionLoss.to_string().contains("may or may not"));
    }

    #[test]
    fn one_classifier_of_transient_errors() {
        use Transience::*;
        for (e, t) in [
            (Error::ConnectionLoss, Connection),
            (Error::Timeout { sent: true }, Connection),
            (Error::NotConnected, Connection),
            (Error::ThrottledOp, Server),
            (Error::RequestTimeout, Server),
            (Error::SessionMoved, Server),
            (Error::NewConfigNoQuorum, Server),
            (Error::SessionExpired, SessionExpired),
            (Error::Closed, Permanent),
            (Error::AuthFailed, Permanent),
            (Error::NoNode, Permanent),
            (Error::BadVersion, Permanent),
        ] {
            assert_eq!(e.transience(), t, "{e:?}");
            assert_eq!(e.is_retryable(), matches!(t, Connection | Server), "{e:?}");
        }
    }
}
