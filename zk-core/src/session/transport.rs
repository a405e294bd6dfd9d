//! How the session task reaches a server. The session logic only sees a byte stream, so TLS,
//! proxies or in-memory pipes plug in here without touching it.

use super::hosts::HostAddr;
use std::future::Future;
use std::io;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional byte stream to a server.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {}

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
