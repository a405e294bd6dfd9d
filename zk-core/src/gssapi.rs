//! SASL GSSAPI (Kerberos V5) logins, feature `gssapi`: [`SaslGssapi`] and
//! [`ClientBuilder::sasl_gssapi`](crate::ClientBuilder::sasl_gssapi).
//!
//! The client side of RFC 4752 over the system's GSS-API library (MIT Kerberos, through the
//! `libgssapi` crate), as the Java client does it:
//!
//! 1. the service principal is `zookeeper/<host>`, the host **as written in the connect
//!    string** (no DNS canonicalisation: connecting to `127.0.0.1` asks the KDC for
//!    `zookeeper/127.0.0.1`, connecting to `zk1.example.com` for `zookeeper/zk1.example.com`),
//!    in krb5.conf's default realm; [`SaslGssapi::service`] changes `zookeeper`,
//!    [`SaslGssapi::service_host`] the host part, and a realm can be named there
//!    (`zk1.example.com@EXAMPLE.COM`);
//! 2. the client's credentials come from the default credential cache (`kinit`, `KRB5CCNAME`),
//!    or MIT's client keytab (`KRB5_CLIENT_KTNAME`), or a keytab given with
//!    [`SaslGssapi::keytab`]; [`SaslGssapi::principal`] picks the principal;
//! 3. the initial token, then tokens until the context is established (mutual
//!    authentication), then the security-layer step: the server's 4 bytes are unwrapped and the
//!    client answers with the wrapped "no security layer", a maximum size of 0 and the
//!    authorisation id (the client principal, as the Java client sends it).
//!
//! The session's identity is then `sasl:<principal>` (`alice@EXAMPLE.COM` with the server's
//! default `kerberos.removeHostFromPrincipal` / `kerberos.removeRealmFromPrincipal`).
//!
//! GSS-API calls may talk to the KDC and block: they run on tokio's blocking pool.
//! `KRB5_CONFIG` (the krb5.conf to use) is read by the Kerberos library from the process
//! environment.

use crate::error::{Error, Result};
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL};
use std::path::PathBuf;

/// The service name ZooKeeper servers use (`zookeeper.sasl.client.username` in Java).
const DEFAULT_SERVICE: &str = "zookeeper";

/// RFC 4752: the security-layer bit for "no security layer".
const NO_SECURITY_LAYER: u8 = 1;

/// A SASL GSSAPI (Kerberos) login for [`ClientBuilder::sasl_gssapi`](crate::ClientBuilder::sasl_gssapi).
///
/// ```no_run
/// # async fn f() -> zk_core::Result<()> {
/// use zk_core::{Client, SaslGssapi};
/// // a ticket from `kinit alice`, or KRB5_CLIENT_KTNAME=/etc/alice.keytab
/// let client = Client::builder("zk1.example.com:2181")
///     .sasl_gssapi(SaslGssapi::new().principal("alice@EXAMPLE.COM"))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaslGssapi {
    principal: Option<String>,
    keytab: Option<PathBuf>,
    service: Option<String>,
    service_host: Option<String>,
}

impl SaslGssapi {
    /// The default principal (the credential cache's, or the client keytab's first), service
    /// `zookeeper`, the host as written in the connect string.
    pub fn new() -> SaslGssapi {
        SaslGssapi::default()
    }

    /// Log in as this principal (`alice` in the default realm, or `alice@EXAMPLE.COM`): its
    /// ticket is looked for in the credential cache collection, or got with its key from the
    /// keytab ([`keytab`](Self::keytab) or `KRB5_CLIENT_KTNAME`).
    pub fn principal(mut self, principal: impl Into<String>) -> SaslGssapi {
        self.principal = Some(principal.into());
        self
    }

    /// Get the initial ticket with a key from this keytab (instead of `KRB5_CLIENT_KTNAME`);
    /// the tickets are then kept in memory, for this client only (the default credential
    /// cache is neither read nor written).
    pub fn keytab(mut self, path: impl Into<PathBuf>) -> SaslGssapi {
        self.keytab = Some(path.into());
        self
    }

    /// The service part of the servers' principal (default `zookeeper`, as the servers' JAAS
    /// `Server` section's `principal="zookeeper/host@REALM"`; Java: `zookeeper.sasl.client.username`).
    pub fn service(mut self, service: impl Into<String>) -> SaslGssapi {
        self.service = Some(service.into());
        self
    }

    /// The host part of the servers' principal, for every server, instead of the host as
    /// written in the connect string (say `localhost` when connecting to `127.0.0.1`). It may
    /// name the realm too: `zk.example.com@EXAMPLE.COM`.
    pub fn service_host(mut self, host: impl Into<String>) -> SaslGssapi {
        self.service_host = Some(host.into());
        self
    }

    /// The principal this client asks a ticket for when connecting to `host` (as written in
    /// the connect string): `zookeeper/host`, see the [module docs](self).
    pub fn service_principal(&self, host: &str) -> String {
        format!(
            "{}/{}",
            self.service.as_deref().unwrap_or(DEFAULT_SERVICE),
            self.service_host.as_deref().unwrap_or(host)
        )
    }
}

/// One GSSAPI exchange (RFC 4752) on one connection. Each step may block (KDC traffic).
pub(crate) struct GssapiMech {
    ctx: ClientCtx,
    service: String,
    /// The client principal's name, sent as the authorisation id.
    authz: Vec<u8>,
    state: MechState,
}

enum MechState {
    /// Establishing the context.
    Context,
    /// Established: the next server token is the wrapped security-layer offer.
    Layers,
    /// Our security-layer answer was sent; the server's last (empty) reply ends it.
    Done,
}

fn sasl_error(message: String) -> Error {
    Error::SaslFailed { message }
}

impl GssapiMech {
    /// Acquires the credentials and makes the initial token (blocking: may ask the KDC for a
    /// service ticket).
    pub(crate) fn start(
        cfg: &SaslGssapi,
        cache: &CredCache,
        host: &str,
    ) -> Result<(GssapiMech, Vec<u8>)> {
        let cred = cache.get(cfg)?;
        let authz = cred
            .name()
            .and_then(|n| n.display_name())
            .map(|b| b.to_vec())
            .unwrap_or_default();
        let service = cfg.service_principal(host);
        let target = Name::new(service.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).map_err(|e| {
            sasl_error(format!(
                "GSSAPI: {service:?} is not a Kerberos principal name: {e}"
            ))
        })?;
        let mut ctx = ClientCtx::new(
            Some(cred),
            target,
            CtxFlags::GSS_C_MUTUAL_FLAG,
            Some(GSS_MECH_KRB5),
        );
        let first = ctx
            .step(None, None)
            .map_err(|e| ticket_error(&service, e))?;
        let mech = GssapiMech {
            ctx,
            service,
            authz,
            state: MechState::Context,
        };
        Ok((mech, first.map(|b| b.to_vec()).unwrap_or_default()))
    }

    /// Answers a server token; `None` when authentication is complete.
    pub(crate) fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.state {
            MechState::Context => {
                // Kerberos context tokens carry RFC 2743's framing (RFC 1964 / 4121): a server
                // without a Kerberos login answers with its own mechanism's (DIGEST-MD5's
                // challenge) instead
                if server.first() != Some(&0x60) {
                    let digest = std::str::from_utf8(server).is_ok_and(|t| t.contains("nonce="));
                    return Err(sasl_error(format!(
                        "GSSAPI: the server's answer is not a Kerberos token{}: it does not do \
                         Kerberos for {} (its JAAS Server section needs \
                         com.sun.security.auth.module.Krb5LoginModule with that principal's \
                         keytab)",
                        if digest {
                            " but a DIGEST-MD5 challenge"
                        } else {
                            ""
                        },
                        self.service
                    )));
                }
                let out = self
                    .ctx
                    .step(Some(server), None)
                    .map_err(|e| context_error(&self.service, e))?;
                if self.ctx.is_complete() {
                    self.state = MechState::Layers;
                }
                // RFC 4752 3.1: an established context without a token answers empty
                Ok(Some(out.map(|b| b.to_vec()).unwrap_or_default()))
            }
            MechState::Layers => {
                let offer = self.ctx.unwrap(server).map_err(|e| {
                    sasl_error(format!(
                        "GSSAPI: cannot unwrap the server's security-layer offer: {e}"
                    ))
                })?;
                let answer = layer_answer(&offer, &self.authz)?;
                let wrapped = self.ctx.wrap(false, &answer).map_err(|e| {
                    sasl_error(format!(
                        "GSSAPI: cannot wrap the security-layer answer: {e}"
                    ))
                })?;
                self.state = MechState::Done;
                Ok(Some(wrapped.to_vec()))
            }
            MechState::Done => Ok(None),
        }
    }
}

/// The client's answer to a server's security-layer offer (RFC 4752 3.1): "no security layer",
/// a maximum message size of 0, the authorisation id.
fn layer_answer(offer: &[u8], authz: &[u8]) -> Result<Vec<u8>> {
    if offer.len() != 4 {
        return Err(Error::Protocol(format!(
            "SASL GSSAPI: a {}-byte security-layer offer (expected 4)",
            offer.len()
        )));
    }
    if offer[0] & NO_SECURITY_LAYER == 0 {
        return Err(sasl_error(format!(
            "GSSAPI: the server requires a security layer (offer {:#04x}); this client \
             supports only \"no security layer\" (the ZooKeeper server's default, qop auth)",
            offer[0]
        )));
    }
    let mut answer = vec![NO_SECURITY_LAYER, 0, 0, 0];
    answer.extend_from_slice(authz);
    Ok(answer)
}

/// A client's credential from [`SaslGssapi::keytab`], kept across its connections: its private
/// memory cache holds the initial ticket and the service tickets, so a reconnect does not need
/// the KDC while they are valid (as the Java client keeps them in its login `Subject`). Without
/// a keytab the credential is acquired for each connection: the credential cache, which the
/// library keeps the service tickets in too, may have been renewed meanwhile (`kinit`).
#[derive(Default)]
pub(crate) struct CredCache(std::sync::Mutex<Option<Cred>>);

impl std::fmt::Debug for CredCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredCache")
    }
}

impl CredCache {
    fn get(&self, cfg: &SaslGssapi) -> Result<Cred> {
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cred) = cached.as_ref() {
            // a credential past its lifetime is acquired again (from the keytab)
            if cred.lifetime().is_ok_and(|t| !t.is_zero()) {
                return Ok(cred.clone());
            }
        }
        let cred = acquire(cfg).map_err(|(e, minor)| {
            let who = cfg
                .principal
                .as_deref()
                .map(|p| format!("principal {p}"))
                .unwrap_or_else(|| "the default principal".to_owned());
            let hint = match hint(minor) {
                "" => {
                    " (no ticket in the credential cache and no key in a keytab: kinit, \
                     KRB5CCNAME, KRB5_CLIENT_KTNAME or SaslGssapi::keytab)"
                }
                h => h,
            };
            sasl_error(format!(
                "GSSAPI: cannot get Kerberos credentials for {who}: {e}{hint}"
            ))
        })?;
        if cfg.keytab.is_some() {
            *cached = Some(cred.clone());
        }
        Ok(cred)
    }
}

/// The initiator credential: from the cache / `KRB5_CLIENT_KTNAME`, or from `cfg.keytab`
/// through a credential store (MIT's `gss_acquire_cred_from`) with a private memory cache.
/// The error's text and its minor (mechanism) code, 0 when it is not a GSS-API error.
fn acquire(cfg: &SaslGssapi) -> std::result::Result<Cred, (String, u32)> {
    let gss = |e: libgssapi::error::Error| (e.to_string(), e.minor);
    if let Some(keytab) = &cfg.keytab {
        return store::acquire_from_keytab(cfg.principal.as_deref(), keytab);
    }
    let name = match &cfg.principal {
        None => None,
        Some(p) => Some(
            Name::new(p.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
                .map_err(|e| (format!("{p:?} is not a principal name: {e}"), 0))?,
        ),
    };
    let mut mechs = OidSet::new();
    mechs.add(GSS_MECH_KRB5).map_err(gss)?;
    Cred::acquire(name.as_ref(), None, CredUsage::Initiate, Some(&mechs)).map_err(gss)
}

/// `gss_init_sec_context` failed before anything was sent: the service ticket could not be
/// had (the KDC unreachable, the service principal unknown to it, no TGT).
fn ticket_error(service: &str, e: libgssapi::error::Error) -> Error {
    sasl_error(format!(
        "GSSAPI: cannot get a Kerberos ticket for the service {service}: {e}{}",
        hint(e.minor)
    ))
}

/// `gss_init_sec_context` refused the server's token.
fn context_error(service: &str, e: libgssapi::error::Error) -> Error {
    sasl_error(format!(
        "GSSAPI: the server's token for {service} was refused: {e}"
    ))
}

/// A hint for the commonest failures, by the Kerberos error code (krb5's error table).
fn hint(minor: u32) -> &'static str {
    // com_err codes: KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN, KRB5_KDC_UNREACH
    const S_PRINCIPAL_UNKNOWN: i32 = -1765328377;
    const KDC_UNREACH: i32 = -1765328228;
    match minor as i32 {
        S_PRINCIPAL_UNKNOWN => {
            " (the KDC does not know the service principal: it is zookeeper/<host as written in \
             the connect string>; set SaslGssapi::service_host / service for another)"
        }
        KDC_UNREACH => {
            " (no KDC of the realm answered: is it running? krb5.conf's [realms] names it; \
             KRB5_CONFIG picks the krb5.conf)"
        }
        _ => "",
    }
}

/// Credentials from a keytab through a credential store: MIT Kerberos'
/// `gss_acquire_cred_from` (gssapi_ext.h), which the `libgssapi` crate binds (libgssapi-sys)
/// but does not wrap, and whose name and credential handles it does not hand out: the name is
/// imported here too.
mod store {
    use libgssapi::credential::Cred;
    use libgssapi_sys as sys;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::ptr;

    fn gss_error(major: u32, minor: u32) -> (String, u32) {
        let e = libgssapi::error::Error {
            major: libgssapi::error::MajorFlags::from_bits_retain(major),
            minor,
        };
        (e.to_string(), minor)
    }

    /// An imported name, released on drop.
    struct RawName(sys::gss_name_t);

    impl RawName {
        fn import(principal: &str) -> Result<RawName, (String, u32)> {
            let mut minor: sys::OM_uint32 = 0;
            let mut name: sys::gss_name_t = ptr::null_mut();
            // GSS_KRB5_NT_PRINCIPAL_NAME (gssapi_krb5.h, which the bindings leave out)
            const KRB5_NT_PRINCIPAL_NAME: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";
            let mut oid = sys::gss_OID_desc {
                length: KRB5_NT_PRINCIPAL_NAME.len() as _,
                elements: KRB5_NT_PRINCIPAL_NAME.as_ptr() as *mut _,
            };
            let mut buf = sys::gss_buffer_desc {
                length: principal.len(),
                value: principal.as_ptr() as *mut _,
            };
            // SAFETY: `buf` points at `principal` and `oid` at a static, both outliving the
            // call (the library copies what it keeps); `name` is written on success only.
            let major = unsafe { sys::gss_import_name(&mut minor, &mut buf, &mut oid, &mut name) };
            if major == sys::GSS_S_COMPLETE {
                Ok(RawName(name))
            } else {
                let (e, minor) = gss_error(major, minor);
                Err((format!("{principal:?} is not a principal name: {e}"), minor))
            }
        }
    }

    impl Drop for RawName {
        fn drop(&mut self) {
            let mut minor: sys::OM_uint32 = 0;
            // SAFETY: a name this value owns, released once
            unsafe { sys::gss_release_name(&mut minor, &mut self.0) };
        }
    }

    pub(super) fn acquire_from_keytab(
        principal: Option<&str>,
        keytab: &Path,
    ) -> Result<Cred, (String, u32)> {
        let name = principal.map(RawName::import).transpose()?;
        let keytab = CString::new(keytab.as_os_str().as_bytes())
            .map_err(|_| (format!("keytab path {keytab:?} contains a NUL byte"), 0))?;
        // a memory cache of this client's own: the default cache is left alone
        let ccache = CString::new(format!("MEMORY:zk-core-{}", unique()))
            .expect("no NUL in a generated cache name");
        let mut elements = [
            sys::gss_key_value_element_desc {
                key: c"client_keytab".as_ptr(),
                value: keytab.as_ptr(),
            },
            sys::gss_key_value_element_desc {
                key: c"ccache".as_ptr(),
                value: ccache.as_ptr(),
            },
        ];
        let store = sys::gss_key_value_set_desc {
            count: elements.len() as _,
            elements: elements.as_mut_ptr(),
        };
        let mut minor: sys::OM_uint32 = 0;
        let mut cred: sys::gss_cred_id_t = ptr::null_mut();
        // SAFETY: every pointer is valid for the call (the strings and the element array
        // outlive it; `name` is a live handle, borrowed); no OID set means the default
        // mechanisms; `cred` is written on success only and then owned by the returned `Cred`.
        let major = unsafe {
            sys::gss_acquire_cred_from(
                &mut minor,
                name.as_ref().map_or(ptr::null_mut(), |n| n.0),
                sys::_GSS_C_INDEFINITE,
                ptr::null_mut(),
                sys::GSS_C_INITIATE as sys::gss_cred_usage_t,
                &store,
                &mut cred,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if major == sys::GSS_S_COMPLETE {
            // SAFETY: a fresh credential handle that nothing else owns
            Ok(unsafe { Cred::from_c(cred) })
        } else {
            Err(gss_error(major, minor))
        }
    }

    /// A cache name no other client of this process uses.
    fn unique() -> String {
        use rand::Rng;
        format!("{:032x}", rand::thread_rng().gen::<u128>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_principal_is_the_host_as_written() {
        let g = SaslGssapi::new();
        assert_eq!(g.service_principal("127.0.0.1"), "zookeeper/127.0.0.1");
        assert_eq!(
            g.service_principal("zk1.example.com"),
            "zookeeper/zk1.example.com"
        );
        let g = SaslGssapi::new()
            .service("zk")
            .service_host("localhost@EXAMPLE.COM");
        assert_eq!(g.service_principal("127.0.0.1"), "zk/localhost@EXAMPLE.COM");
    }

    #[test]
    fn layer_answer_is_no_layer_size_zero_and_the_authz_id() {
        assert_eq!(
            layer_answer(&[0x07, 0x00, 0x10, 0x00], b"alice@R").unwrap(),
            b"\x01\x00\x00\x00alice@R"
        );
        assert!(matches!(
            layer_answer(&[0x04, 0, 0, 0], b""),
            Err(Error::SaslFailed { .. })
        ));
        assert!(matches!(
            layer_answer(&[1, 0, 0], b""),
            Err(Error::Protocol(_))
        ));
    }
}
