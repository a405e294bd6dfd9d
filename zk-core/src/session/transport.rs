//! How the session task reaches a server. The session logic only sees a byte stream, so TLS,
//! proxies or in-memory pipes plug in here without touching it.

use super::hosts::HostAddr;
use std::any::Any;
use std::future::Future;
use std::io;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional byte stream to a server.
///
/// Implemented for every suitable stream. When the stream is a plain
/// [`tokio::net::TcpStream`] (what [`TcpConnector`] opens), the session task may also tune its
/// socket (the receive low-water mark, see docs/architecture.md "Reads"); any other stream
/// (TLS, a wrapper, a pipe) is only read and written.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// The socket when this is a plain [`tokio::net::TcpStream`], `None` otherwise.
    #[doc(hidden)]
    fn plain_tcp(&self) -> Option<&tokio::net::TcpStream>;
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {
    fn plain_tcp(&self) -> Option<&tokio::net::TcpStream> {
        (self as &dyn Any).downcast_ref::<tokio::net::TcpStream>()
    }
}

/// The future a [`Connector`] returns.
pub type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = io::Result<Box<dyn Transport>>> + Send + 'a>>;

/// Opens streams to servers. The default is [`TcpConnector`].
pub trait Connector: Send + Sync + 'static {
    /// Opens a stream to `addr`. The session task applies its own connect timeout around it.
    fn connect<'a>(&'a self, addr: &'a HostAddr) -> ConnectFuture<'a>;
}

/// Plain TCP with `TCP_NODELAY` (requests are small and latency-bound).
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect<'a>(&'a self, addr: &'a HostAddr) -> ConnectFuture<'a> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect((addr.host.as_str(), addr.port)).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Box<dyn Transport>)
        })
    }
}

/// The receive low-water mark (`SO_RCVLOWAT`) of a plain TCP connection: the kernel reports
/// the socket readable (and wakes the session task) only once this many bytes are buffered, or
/// at end of stream or an error. Only Linux; elsewhere (and for any other transport) there is
/// none and every arriving byte wakes the task, as without it.
///
/// Only plain TCP: there every byte the server still owes must come through the kernel. A TLS
/// stream may already hold, decrypted or as part of an unfinished record, bytes that the
/// kernel then no longer has to deliver, so no bound on the kernel's bytes follows from the
/// replies owed.
pub(crate) struct RecvLowat {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::RawFd,
    /// The value last set; 0 (never a valid mark) until the first `set`, so that one always
    /// reaches the socket: a custom `Connector` may hand over a socket whose mark is not the
    /// kernel's default of 1.
    current: usize,
}

impl RecvLowat {
    /// The low-water mark of `t`'s socket, if `t` is plain TCP on Linux. Call it on the
    /// stream itself (`&*boxed`), not on a `Box` holding it. The socket must outlive the
    /// returned value: the connection keeps both.
    pub(crate) fn of(t: &dyn Transport) -> Option<RecvLowat> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            t.plain_tcp().map(|s| RecvLowat {
                fd: s.as_raw_fd(),
                current: 0,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = t;
            None
        }
    }

    /// The value in force.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// Sets the low-water mark to `bytes` (at least 1) unless it already is. Lowering it wakes
    /// a reader whose buffered bytes now reach it (Linux re-checks readiness on the change).
    pub(crate) fn set(&mut self, bytes: usize) -> io::Result<()> {
        let bytes = bytes.max(1);
        if bytes == self.current {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            // SAFETY: `fd` is the connection's open socket (the connection owns the stream
            // and this value together), and the option value is a c_int of the size passed.
            let rc = unsafe {
                libc::setsockopt(
                    self.fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVLOWAT,
                    (&v as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        self.current = bytes;
        Ok(())
    }
}
