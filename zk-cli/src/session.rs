//! Connecting, logging the session, closing.

use crate::cli::Global;
use crate::error::Failure;
use futures::StreamExt;
use std::time::Duration;
use tracing::info;
use zk_core::{Client, Status};

/// For tests only, and only in debug builds: when set, zk writes `<session id hex> <password hex>`
/// to this file each time it has a new session (so a test can expire the session with the test
/// kit). A release build ignores it: the session password never leaves the process.
#[cfg(debug_assertions)]
pub const DEBUG_SESSION_FILE_ENV: &str = "ZK_DEBUG_SESSION_FILE";

/// Connects with the global options. Logs (with `-v`) the session id, and every state change
/// with the server it refers to.
pub async fn connect(g: &Global) -> Result<Client, Failure> {
    let hosts = g.hosts();
    let mut b = Client::builder(hosts)
        .session_timeout(g.session_timeout)
        .connect_timeout(g.session_timeout);
    for a in &g.auth {
        match a {
            crate::cli::AuthArg::Valid { scheme, credential } => {
                b = b.auth(scheme.clone(), credential.clone().into_bytes());
            }
            crate::cli::AuthArg::Invalid(why) => return Err(Failure::Usage(why.clone())),
        }
    }
    match &g.sasl {
        Some(crate::cli::SaslArg::DigestMd5 { user, password }) => {
            b = b.sasl_digest_md5(user.clone(), password.clone());
        }
        #[cfg(feature = "gssapi")]
        Some(crate::cli::SaslArg::Gssapi { principal }) => {
            let mut login = zk_core::SaslGssapi::new();
            if let Some(p) = principal {
                login = login.principal(p);
            }
            b = b.sasl_gssapi(login);
        }
        Some(crate::cli::SaslArg::Invalid(why)) => return Err(Failure::Usage(why.clone())),
        None => {}
    }
    if g.tls_ca.is_some() || g.tls_cert.is_some() {
        let mut tls = zk_core::TlsConfig::new();
        if let Some(ca) = &g.tls_ca {
            tls = tls.ca_file(ca);
        }
        if let (Some(cert), Some(key)) = (&g.tls_cert, &g.tls_key) {
            tls = tls.client_cert_files(cert, key);
        }
        // the files are read now: one that cannot be read or holds no certificate (key) is a
        // failure naming it (exit 1, as a --file), not an invalid argument to connect()
        if let Err(e) = tls.build() {
            return Err(Failure::Failed(format!("cannot connect to {hosts}: {e}")));
        }
        b = b.tls(tls);
    }
    let client = b.connect().await.map_err(|e| match e {
        zk_core::Error::ConnectFailed {
            source: Some(e), ..
        } => Failure::Failed(format!(
            "cannot connect to {hosts}: no session within {}; last attempt: {}",
            crate::duration::human(g.session_timeout),
            e.to_string().trim_start_matches("I/O error: ")
        )),
        zk_core::Error::ConnectFailed { .. } => Failure::Failed(format!(
            "cannot connect to {hosts}: no server answered within {} (is ZooKeeper running there? see --hosts / ZK_HOSTS)",
            crate::duration::human(g.session_timeout)
        )),
        e => Failure::zk(&format!("connect to {hosts}"), e),
    })?;
    let status = client.status();
    log_status(&status);
    write_debug_file(&client);
    let watcher = client.clone();
    let mut states = client.state_stream();
    tokio::spawn(async move {
        let mut generation = status.generation;
        while let Some(s) = states.next().await {
            log_status(&s);
            if s.generation != generation && s.state == zk_core::State::Connected {
                generation = s.generation;
                write_debug_file(&watcher);
            }
        }
    });
    Ok(client)
}

fn log_status(s: &Status) {
    info!(
        "state {} session=0x{:x} server={} timeout={}ms ({:?})",
        s.state,
        s.session_id,
        s.server.as_deref().unwrap_or("-"),
        s.session_timeout.as_millis(),
        s.keeper_state
    );
}

#[cfg(not(debug_assertions))]
fn write_debug_file(_: &Client) {}

#[cfg(debug_assertions)]
fn write_debug_file(client: &Client) {
    let Some(path) = std::env::var_os(DEBUG_SESSION_FILE_ENV) else {
        return;
    };
    let (sid, password) = client.session_credentials();
    let hex: String = password.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = {
        let mut p = path.clone();
        p.push(".tmp");
        p
    };
    let res =
        std::fs::write(&tmp, format!("{sid:x} {hex}\n")).and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = res {
        tracing::warn!(error = %e, "cannot write {DEBUG_SESSION_FILE_ENV}");
    }
}

/// Closes the session (its ephemeral nodes go at once), waiting a bounded time.
pub async fn close(client: &Client) {
    if tokio::time::timeout(Duration::from_secs(5), client.close())
        .await
        .is_err()
    {
        tracing::warn!("closing the session timed out; its nodes go when it expires");
    }
}
