//! TLS connections (feature `tls`, on by default): rustls with the ring provider.
//!
//! A host is reached over TLS when the connect string names it `tcp+tls://host:port`, or for
//! every host when [`ClientBuilder::tls`](crate::ClientBuilder::tls) is set. Certificates and
//! keys given as files are read again for every new connection, so certificates replaced on
//! disk are picked up at the next reconnect without restarting the client.
//!
//! ```no_run
//! # async fn f() -> zk_core::Result<()> {
//! use zk_core::{Client, TlsConfig};
//! let tls = TlsConfig::new()
//!     .ca_file("/etc/zookeeper/ca.pem")
//!     .client_cert_files("/etc/zookeeper/client.pem", "/etc/zookeeper/client-key.pem");
//! let client = Client::builder("zk1:2281,zk2:2281").tls(tls).connect().await?;
//! # Ok(()) }
//! ```

use crate::session::hosts::HostAddr;
use crate::session::transport::{ConnectFuture, Connector, TcpConnector, Transport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where trusted CA certificates come from.
#[derive(Clone)]
enum Roots {
    /// The operating system's store (rustls-native-certs).
    System,
    /// A PEM bundle on disk, read for every new connection.
    PemFile(PathBuf),
    /// A PEM bundle in memory.
    Pem(Vec<u8>),
    /// A ready store.
    Store(Arc<RootCertStore>),
}

/// The client's own certificate (mutual TLS).
#[derive(Clone)]
enum Identity {
    PemFiles { cert: PathBuf, key: PathBuf },
    Pem { cert: Vec<u8>, key: Vec<u8> },
}

/// TLS settings: which CAs to trust, an optional client certificate, server-name checks.
///
/// Defaults: the system's CA store, no client certificate, the server's certificate must name
/// the host as written in the connect string.
#[derive(Clone)]
#[must_use]
pub struct TlsConfig {
    roots: Roots,
    identity: Option<Identity>,
    server_name: Option<String>,
    verify_hostname: bool,
    custom: Option<Arc<ClientConfig>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // key material is never printed
        let roots = match &self.roots {
            Roots::System => "system".to_owned(),
            Roots::PemFile(p) => p.display().to_string(),
            Roots::Pem(_) => "PEM in memory".to_owned(),
            Roots::Store(s) => format!("{} certificates", s.len()),
        };
        f.debug_struct("TlsConfig")
            .field("roots", &roots)
            .field("client_certificate", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .field("verify_hostname", &self.verify_hostname)
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::new()
    }
}

impl TlsConfig {
    /// The system's CA store, no client certificate, server names verified.
    pub fn new() -> Self {
        TlsConfig {
            roots: Roots::System,
            identity: None,
            server_name: None,
            verify_hostname: true,
            custom: None,
        }
    }

    /// Trust the CA certificates of a PEM file (instead of the system's store). The file is read
    /// for every new connection.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.roots = Roots::PemFile(path.into());
        self
    }

    /// Trust the CA certificates of a PEM bundle in memory.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots = Roots::Pem(pem.into());
        self
    }

    /// Trust exactly this rustls root store.
    pub fn root_store(mut self, store: RootCertStore) -> Self {
        self.roots = Roots::Store(Arc::new(store));
        self
    }

    /// Present a client certificate (mutual TLS): a PEM file with the certificate chain and one
    /// with its private key. Both are read for every new connection.
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some(Identity::PemFiles {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Present a client certificate given as PEM in memory.
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.identity = Some(Identity::Pem {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Verify (and send as SNI) this name instead of each host's name from the connect string.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// **Dangerous**: accept a server certificate that does not name the host. The chain is still
    /// verified against the trusted CAs, but any server holding *any* certificate from those
    /// CAs can then impersonate any ZooKeeper server. Logged as a warning on every connection.
    pub fn danger_accept_any_server_name(mut self) -> Self {
        self.verify_hostname = false;
        self
    }

    /// Use this rustls configuration as it is (every other setting here is then ignored).
    pub fn rustls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.custom = Some(config);
        self
    }

    /// Builds the rustls configuration, reading files now.
    pub fn build(&self) -> io::Result<Arc<ClientConfig>> {
        if let Some(c) = &self.custom {
            return Ok(c.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(self.root_store_now()?);
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_io)?;
        let builder = if self.verify_hostname {
            builder.with_root_certificates(roots)
        } else {
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("TLS: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerName { inner }))
        };
        let config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => {
                let (chain, key) = read_identity(id)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("TLS: the client certificate and key do not fit together: {e}"),
                    )
                })?
            }
        };
        Ok(Arc::new(config))
    }

    fn root_store_now(&self) -> io::Result<RootCertStore> {
        let mut store = RootCertStore::empty();
        let certs: Vec<CertificateDer<'static>> = match &self.roots {
            Roots::Store(s) => return Ok((**s).clone()),
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "TLS: no CA certificates found in the system store ({} errors); give a CA file",
                            found.errors.len()
                        ),
                    ));
                }
                found.certs
            }
            Roots::PemFile(p) => CertificateDer::pem_file_iter(p)
                .map_err(|e| pem_err("CA file", &p.display().to_string(), e))?
                .collect::<Result<_, _>>()
                .map_err(|e| pem_err("CA file", &p.display().to_string(), e))?,
            Roots::Pem(b) => CertificateDer::pem_slice_iter(b)
                .collect::<Result<_, _>>()
                .map_err(|e| pem_err("CA bundle", "memory", e))?,
        };
        let (added, _ignored) = store.add_parsable_certificates(certs);
        if added == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS: the CA bundle holds no usable certificate",
            ));
        }
        Ok(store)
    }
}

fn read_identity(
    id: &Identity,
) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (chain, key) = match id {
        Identity::PemFiles { cert, key } => {
            let c = cert.display().to_string();
            let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| pem_err("client certificate", &c, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| pem_err("client certificate", &c, e))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| pem_err("client key", &key.display().to_string(), e))?;
            (chain, key)
        }
        Identity::Pem { cert, key } => {
            let chain: Vec<_> = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<_, _>>()
                .map_err(|e| pem_err("client certificate", "memory", e))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| pem_err("client key", "memory", e))?;
            (chain, key)
        }
    };
    if chain.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TLS: the client certificate file holds no certificate",
        ));
    }
    Ok((chain, key))
}

fn pem_err(what: &str, source: &str, e: rustls::pki_types::pem::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("TLS: cannot read the {what} ({source}): {e}"),
    )
}

fn tls_io(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("TLS: {e}"))
}

/// Verifies the chain but not the name (see [`TlsConfig::danger_accept_any_server_name`]).
#[derive(Debug)]
struct AnyServerName {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyServerName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TLS handshake that failed, naming the server and the cause (kept as `source()`).
#[derive(Debug)]
pub struct TlsHandshakeError {
    host: String,
    source: io::Error,
}

impl fmt::Display for TlsHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TLS handshake with {} failed: {}",
            self.host, self.source
        )
    }
}

impl std::error::Error for TlsHandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Opens TCP connections and, for TLS hosts (or all hosts), runs a TLS handshake on them.
#[derive(Debug, Clone)]
pub struct TlsConnector {
    config: TlsConfig,
    all_hosts: bool,
}

impl TlsConnector {
    /// TLS to every host.
    pub fn new(config: TlsConfig) -> Self {
        TlsConnector {
            config,
            all_hosts: true,
        }
    }

    /// TLS only to hosts written `tcp+tls://` in the connect string.
    pub fn for_tls_hosts(config: TlsConfig) -> Self {
        TlsConnector {
            config,
            all_hosts: false,
        }
    }
}

impl Connector for TlsConnector {
    fn connect<'a>(&'a self, addr: &'a HostAddr) -> ConnectFuture<'a> {
        Box::pin(async move {
            if !(self.all_hosts || addr.tls) {
                return TcpConnector.connect(addr).await;
            }
            let config = self.config.build()?;
            let name = self
                .config
                .server_name
                .clone()
                .unwrap_or_else(|| addr.host.clone());
            let server_name = ServerName::try_from(name.clone()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("TLS: {name:?} is not a valid server name: {e}"),
                )
            })?;
            if !self.config.verify_hostname && self.config.custom.is_none() {
                tracing::warn!(server = %addr, "TLS server-name verification is disabled");
            }
            let tcp = tokio::net::TcpStream::connect((addr.host.as_str(), addr.port)).await?;
            tcp.set_nodelay(true)?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await
                .map_err(|source| {
                    io::Error::new(
                        source.kind(),
                        TlsHandshakeError {
                            host: addr.to_string(),
                            source,
                        },
                    )
                })?;
            Ok(Box::new(Labeled(stream)) as Box<dyn Transport>)
        })
    }
}

/// A TLS stream whose TLS failures after the handshake (an alert from a server that refused our
/// certificate, a bad record) say "TLS" in their message.
struct Labeled<S>(S);

fn label(e: io::Error) -> io::Error {
    let is_tls = e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
    if is_tls {
        io::Error::new(e.kind(), format!("TLS: {e}"))
    } else {
        e
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Labeled<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf).map_err(label)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Labeled<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf).map_err(label)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx).map_err(label)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx).map_err(label)
    }
}

/// The provider rustls uses here, for callers building their own [`ClientConfig`].
pub fn crypto_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}
