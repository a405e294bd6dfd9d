//! SASL authentication, as the Java client does it: right after the handshake and before
//! anything else on the connection (the server answers `sasl` packets out of band, so nothing
//! may be pipelined with them), again on every reconnect. Mechanisms: DIGEST-MD5 (RFC 2831),
//! which ZooKeeper servers offer with a JAAS `Server` section of `DigestLoginModule` users, and
//! with the feature `gssapi` GSSAPI (Kerberos, RFC 4752: the mechanism is in `crate::gssapi`).

use super::conn::Conn;
use super::request::put_frame;
use crate::codec::InFrame;
use crate::error::{DecodeExt, Error, Result};
use crate::proto::{code, OpCode, Reader, Record, ReplyHeader, SaslToken, REPLY_HEADER_LEN};
use futures_util::StreamExt;
use md5::{Digest, Md5};
use std::fmt;
use tokio::io::AsyncWriteExt;

/// The protocol and server name the Java client and server use in the DIGEST-MD5 digest-uri.
const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// SASL credentials.
#[derive(Clone)]
pub(crate) enum SaslConfig {
    DigestMd5 {
        username: String,
        password: String,
    },
    #[cfg(feature = "gssapi")]
    Gssapi {
        login: crate::gssapi::SaslGssapi,
        /// Shared by the client's connections (the config is cloned into each).
        creds: std::sync::Arc<crate::gssapi::CredCache>,
    },
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslConfig::DigestMd5 { username, .. } => f
                .debug_struct("DigestMd5")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            #[cfg(feature = "gssapi")]
            SaslConfig::Gssapi { login, .. } => f.debug_tuple("Gssapi").field(login).finish(),
        }
    }
}

/// Runs the whole exchange on a fresh connection. `Err(Error::AuthFailed)`: the server refused
/// the credentials; `Err(Error::SaslFailed)`: the client could not authenticate (GSSAPI: no
/// credentials, no service ticket); any other error: the connection failed meanwhile.
pub(crate) async fn authenticate(conn: &mut Conn, cfg: &SaslConfig) -> Result<()> {
    match cfg {
        SaslConfig::DigestMd5 { username, password } => {
            let mut mech = DigestMd5::new(username, password);
            // DIGEST-MD5 has no initial response: an empty token asks for the challenge
            let mut token = Vec::new();
            loop {
                let reply = exchange(conn, &token).await?;
                match mech.step(&reply)? {
                    Some(next) => token = next,
                    None => return Ok(()),
                }
            }
        }
        #[cfg(feature = "gssapi")]
        SaslConfig::Gssapi { login, creds } => gssapi(conn, login, creds).await,
    }
}

/// GSSAPI: every step runs on the blocking pool (the library may talk to the KDC).
#[cfg(feature = "gssapi")]
async fn gssapi(
    conn: &mut Conn,
    cfg: &crate::gssapi::SaslGssapi,
    creds: &std::sync::Arc<crate::gssapi::CredCache>,
) -> Result<()> {
    use crate::gssapi::GssapiMech;
    let (cfg, creds, host) = (cfg.clone(), creds.clone(), conn.host.host.clone());
    let (mut mech, mut token) = blocking(move || GssapiMech::start(&cfg, &creds, &host)).await?;
    loop {
        let reply = exchange(conn, &token).await?;
        let (m, next) = blocking(move || {
            let next = mech.step(&reply);
            next.map(|n| (mech, n))
        })
        .await?;
        mech = m;
        match next {
            Some(next) => token = next,
            None => return Ok(()),
        }
    }
}

#[cfg(feature = "gssapi")]
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::SaslFailed {
            message: format!("GSSAPI: the library call did not finish: {e}"),
        })?
}

/// Sends one token and reads the server's.
async fn exchange(conn: &mut Conn, token: &[u8]) -> Result<Vec<u8>> {
    let xid = conn.take_xid();
    let mut out = bytes::BytesMut::new();
    let req = SaslToken {
        token: token.to_vec(),
    };
    put_frame(&mut out, Some((xid, OpCode::Sasl)), |w| req.write(w));
    conn.writer.write_all(&out).await.map_err(Error::io)?;
    conn.writer.flush().await.map_err(Error::io)?;
    loop {
        let frame = match conn.reader.next().await {
            Some(Ok(InFrame::Frame(f))) => f,
            Some(Ok(InFrame::Oversized { len, .. })) => {
                return Err(Error::Protocol(format!("a {len}-byte SASL reply")))
            }
            Some(Err(e)) => return Err(Error::Protocol(e.to_string())),
            None => return Err(Error::ConnectionLoss),
        };
        let header = ReplyHeader::read(&mut Reader::new(&frame)).or_protocol()?;
        if header.xid != xid {
            // nothing else is in flight; a ping or notification cannot come yet
            continue;
        }
        // a server that enforces SASL answers a failed exchange with -124 and closes the session
        if header.err == code::AUTH_FAILED || header.err == code::SESSION_CLOSED_REQUIRE_SASL_AUTH {
            return Err(Error::AuthFailed);
        }
        if header.err != code::OK {
            return Err(Error::from_code(header.err));
        }
        return Ok(
            SaslToken::read(&mut Reader::new(&frame[REPLY_HEADER_LEN..]))
                .or_protocol()?
                .token,
        );
    }
}

/// The client side of DIGEST-MD5 (RFC 2831), `auth` quality of protection.
struct DigestMd5 {
    username: String,
    password: String,
    cnonce: String,
    /// The `rspauth` the server must send back once it accepted our response.
    expected_rspauth: Option<String>,
}

impl DigestMd5 {
    fn new(username: &str, password: &str) -> Self {
        use base64::Engine;
        use rand::RngCore;
        let mut raw = [0u8; 18];
        rand::thread_rng().fill_bytes(&mut raw);
        DigestMd5 {
            username: username.to_owned(),
            password: password.to_owned(),
            cnonce: base64::engine::general_purpose::STANDARD.encode(raw),
            expected_rspauth: None,
        }
    }

    /// Answers a server token; `None` when authentication is complete. A token the mechanism
    /// cannot answer is [`Error::SaslFailed`]: the same server answers the same way on every
    /// connection, so the client stops (as the Java client does) instead of reconnecting.
    fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>> {
        let failed = |message: String| Error::SaslFailed {
            message: format!("DIGEST-MD5: {message}"),
        };
        let text = std::str::from_utf8(server)
            .map_err(|_| failed("a challenge that is not UTF-8".into()))?;
        let fields = parse_directives(text);
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if let Some(expected) = &self.expected_rspauth {
            // the server's proof that it knows the password too
            return match get("rspauth") {
                Some(r) if r == expected => Ok(None),
                Some(_) => Err(failed("the server's rspauth does not match".into())),
                None if server.is_empty() => Ok(None),
                None => Err(failed("expected rspauth from the server".into())),
            };
        }
        if server.is_empty() {
            // what ZooKeeper answers when it has no SASL login of its own
            return Err(failed(
                "the server sent an empty challenge: SASL is not set up on it (a JAAS `Server` \
                 section and authProvider SASLAuthenticationProvider)"
                    .into(),
            ));
        }
        let nonce =
            get("nonce").ok_or_else(|| failed(format!("no nonce in the challenge {text:?}")))?;
        let realm = get("realm").unwrap_or("");
        if let Some(q) = get("qop") {
            if !q.split(',').any(|q| q.trim() == "auth") {
                return Err(failed(format!("the server offers no qop=auth ({q})")));
            }
        }
        let nc = "00000001";
        let response = digest(
            &self.username,
            realm,
            &self.password,
            nonce,
            &self.cnonce,
            nc,
            "AUTHENTICATE:",
        );
        self.expected_rspauth = Some(digest(
            &self.username,
            realm,
            &self.password,
            nonce,
            &self.cnonce,
            nc,
            ":",
        ));
        let mut out = String::new();
        if get("charset") == Some("utf-8") {
            out.push_str("charset=utf-8,");
        }
        out.push_str(&format!(
            "username=\"{}\",realm=\"{}\",nonce=\"{}\",nc={nc},cnonce=\"{}\",digest-uri=\"{DIGEST_URI}\",maxbuf=65536,response={response},qop=auth",
            quote(&self.username),
            quote(realm),
            quote(nonce),
            self.cnonce
        ));
        Ok(Some(out.into_bytes()))
    }
}

/// `response` (a2_prefix `"AUTHENTICATE:"`) or `rspauth` (`":"`) of RFC 2831 section 2.1.2.1.
fn digest(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    nc: &str,
    a2_prefix: &str,
) -> String {
    let mut secret = hash_text(user);
    secret.push(b':');
    secret.extend(hash_text(realm));
    secret.push(b':');
    secret.extend(hash_text(password));
    let inner = Md5::digest(&secret);
    let mut a1 = inner.to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    let ha1 = hex(&Md5::digest(&a1));
    let ha2 = hex(&Md5::digest(format!("{a2_prefix}{DIGEST_URI}").as_bytes()));
    hex(&Md5::digest(
        format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes(),
    ))
}

/// How the user name, realm and password enter the hash (RFC 2831 2.1.2.1): in ISO 8859-1
/// when every character fits in it, even when the exchange is in UTF-8; otherwise in UTF-8.
/// (The Java server does so: a password with `ä` hashed as UTF-8 is refused.)
fn hash_text(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_else(|| s.as_bytes().to_vec())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `name=value` pairs separated by commas; values may be quoted (with backslash escapes).
fn parse_directives(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n)
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name.trim().to_ascii_lowercase(), value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_challenge() {
        let d = parse_directives(
            r#"realm="zk-sasl-md5",nonce="a\"b,c",qop="auth",charset=utf-8,algorithm=md5-sess"#,
        );
        assert_eq!(
            d,
            [
                ("realm".into(), "zk-sasl-md5".into()),
                ("nonce".into(), "a\"b,c".into()),
                ("qop".into(), "auth".into()),
                ("charset".into(), "utf-8".into()),
                ("algorithm".into(), "md5-sess".into()),
            ]
        );
    }

    /// RFC 2831 section 4's example (its digest-uri is "imap/elwood.innosoft.com", so the
    /// arithmetic is checked with the uri as a parameter).
    #[test]
    fn rfc_2831_example() {
        fn digest_uri(uri: &str, a2_prefix: &str) -> String {
            let inner = Md5::digest(b"chris:elwood.innosoft.com:secret");
            let mut a1 = inner.to_vec();
            a1.extend_from_slice(b":OA6MG9tEQGm2hh:OA6MHXh6VqTrRk");
            let ha1 = hex(&Md5::digest(&a1));
            let ha2 = hex(&Md5::digest(format!("{a2_prefix}{uri}").as_bytes()));
            hex(&Md5::digest(
                format!("{ha1}:OA6MG9tEQGm2hh:00000001:OA6MHXh6VqTrRk:auth:{ha2}").as_bytes(),
            ))
        }
        assert_eq!(
            digest_uri("imap/elwood.innosoft.com", "AUTHENTICATE:"),
            "d388dad90d4bbd760a152321f2143af7"
        );
        assert_eq!(
            digest_uri("imap/elwood.innosoft.com", ":"),
            "ea40f60335c427b5527b84dbabcdfffd"
        );
    }

    #[test]
    fn credentials_are_hashed_in_latin_1_when_they_fit() {
        assert_eq!(hash_text("p\u{e4}ss\u{a3}"), b"p\xe4ss\xa3");
        assert_eq!(hash_text("plain"), b"plain");
        // a character beyond ISO 8859-1: the whole text in UTF-8
        assert_eq!(hash_text("\u{e4}\u{20ac}"), "\u{e4}\u{20ac}".as_bytes());
    }

    #[test]
    fn a_wrong_rspauth_is_refused() {
        let mut m = DigestMd5::new("bob", "pw");
        let resp = m
            .step(br#"realm="zk-sasl-md5",nonce="n",qop="auth",charset=utf-8"#)
            .unwrap()
            .unwrap();
        let text = String::from_utf8(resp).unwrap();
        assert!(
            text.contains(r#"digest-uri="zookeeper/zk-sasl-md5""#),
            "{text}"
        );
        assert!(m.step(b"rspauth=00").is_err());
        let ok = format!("rspauth={}", m.expected_rspauth.clone().unwrap());
        assert_eq!(m.step(ok.as_bytes()).unwrap(), None);
    }
}
