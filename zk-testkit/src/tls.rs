//! TLS for test servers: a certificate authority, server and client certificates generated per
//! run (rcgen), and the server settings that make ZooKeeper listen on a `secureClientPort`
//! (Netty, with PEM key and trust stores).
//!
//! ```no_run
//! use zk_testkit::{ClientAuth, TlsOptions, ZkServer};
//! let server = ZkServer::builder().tls(TlsOptions::new().client_auth(ClientAuth::Need)).start()?;
//! let files = server.tls_files().unwrap();
//! println!("{} with CA {}", server.secure_connect_string().unwrap(), files.ca.display());
//! # Ok::<(), zk_testkit::Error>(())
//! ```

use crate::{Error, Result};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
};
use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Whether the server asks for a client certificate (`ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// A client certificate signed by the test CA is required (mutual TLS).
    #[default]
    Need,
    /// Asked for, not required.
    Want,
    /// Not asked for.
    None,
}

impl ClientAuth {
    fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Need => "need",
            ClientAuth::Want => "want",
            ClientAuth::None => "none",
        }
    }
}

/// How a test server's TLS is set up.
#[derive(Debug, Clone)]
#[must_use]
pub struct TlsOptions {
    pub(crate) client_auth: ClientAuth,
    pub(crate) server_names: Vec<String>,
    pub(crate) server_expired: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions::new()
    }
}

impl TlsOptions {
    /// Mutual TLS; the server certificate names `localhost` and `127.0.0.1`; valid dates.
    pub fn new() -> Self {
        TlsOptions {
            client_auth: ClientAuth::Need,
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            server_expired: false,
        }
    }

    /// `ssl.clientAuth`.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// The names (DNS names or IP addresses) in the server certificate, to test name checks.
    pub fn server_names(mut self, names: &[&str]) -> Self {
        self.server_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Give the server a certificate that expired in 2001.
    pub fn expired_server_certificate(mut self) -> Self {
        self.server_expired = true;
        self
    }
}

/// The files of one test server's TLS set-up, all PEM.
#[derive(Debug)]
pub struct TlsFiles {
    /// The test CA's certificate: what clients trust.
    pub ca: PathBuf,
    /// A client certificate signed by the CA, and its key.
    pub client_cert: PathBuf,
    /// The client certificate's private key (PKCS#8).
    pub client_key: PathBuf,
    /// A second CA, unrelated: a wrong CA to trust.
    pub other_ca: PathBuf,
    /// A client certificate signed by the other CA, and its key: a certificate the server
    /// does not trust.
    pub other_client_cert: PathBuf,
    /// Key of [`other_client_cert`](Self::other_client_cert).
    pub other_client_key: PathBuf,
    /// The server's key and certificate in one file (its key store).
    pub(crate) server_keystore: PathBuf,
    _dir: TempDir,
}

impl TlsFiles {
    /// Generates the CAs and certificates into a new temporary directory.
    pub(crate) fn generate(opts: &TlsOptions) -> Result<TlsFiles> {
        let dir = tempfile::Builder::new()
            .prefix("zk-testkit-tls-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory", e))?;
        let gen =
            |e: rcgen::Error| Error::io("generating test certificates", std::io::Error::other(e));
        let ca = new_ca("zk-testkit CA").map_err(gen)?;
        let other = new_ca("zk-testkit other CA").map_err(gen)?;

        let mut server = CertificateParams::new(opts.server_names.clone()).map_err(gen)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "zk-testkit server");
        if opts.server_expired {
            server.not_before = date_time_ymd(2000, 1, 1);
            server.not_after = date_time_ymd(2001, 1, 1);
        }
        let server_key = KeyPair::generate().map_err(gen)?;
        let server_cert = server.signed_by(&server_key, &ca).map_err(gen)?;

        let client = |issuer: &CertifiedIssuer<'static, KeyPair>| {
            let mut p = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
            p.distinguished_name
                .push(DnType::CommonName, "zk-testkit client");
            let key = KeyPair::generate()?;
            let cert = p.signed_by(&key, issuer)?;
            Ok::<_, rcgen::Error>((cert.pem(), key.serialize_pem()))
        };
        let (client_cert, client_key) = client(&ca).map_err(gen)?;
        let (other_cert, other_key) = client(&other).map_err(gen)?;

        let base = dir.path();
        let write = |name: &str, text: &str| -> Result<PathBuf> {
            let p = base.join(name);
            fs::write(&p, text).map_err(|e| Error::io(format!("writing {}", p.display()), e))?;
            Ok(p)
        };
        Ok(TlsFiles {
            ca: write("ca.pem", &ca.pem())?,
            client_cert: write("client.pem", &client_cert)?,
            client_key: write("client-key.pem", &client_key)?,
            other_ca: write("other-ca.pem", &other.pem())?,
            other_client_cert: write("other-client.pem", &other_cert)?,
            other_client_key: write("other-client-key.pem", &other_key)?,
            server_keystore: write(
                "server-keystore.pem",
                &format!("{}{}", server_key.serialize_pem(), server_cert.pem()),
            )?,
            _dir: dir,
        })
    }

    /// The JVM properties that configure the server's TLS (Netty connection factory, PEM
    /// stores, client authentication).
    pub(crate) fn jvm_props(&self, opts: &TlsOptions) -> Vec<(String, String)> {
        let p = |path: &Path| path.display().to_string();
        vec![
            (
                "zookeeper.serverCnxnFactory".into(),
                "org.apache.zookeeper.server.NettyServerCnxnFactory".into(),
            ),
            (
                "zookeeper.ssl.keyStore.location".into(),
                p(&self.server_keystore),
            ),
            ("zookeeper.ssl.keyStore.type".into(), "PEM".into()),
            ("zookeeper.ssl.trustStore.location".into(), p(&self.ca)),
            ("zookeeper.ssl.trustStore.type".into(), "PEM".into()),
            (
                "zookeeper.ssl.clientAuth".into(),
                opts.client_auth.as_str().into(),
            ),
            // the client connects from 127.0.0.1, which its certificate names; a server that
            // checked it would still accept it, but keep the tests about the server's side
            (
                "zookeeper.ssl.clientHostnameVerification".into(),
                "false".into(),
            ),
        ]
    }
}

fn new_ca(name: &str) -> std::result::Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate()?)
}
