//! `zk srvr` and `zk status`: a server's four-letter words, asked over a plain TCP connection
//! to each host of --hosts.

use crate::cli::Global;
use crate::error::{out, Failure};
use crate::output::{json, Format};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zk_core::HostAddr;

/// Which word.
#[derive(Debug, Clone, Copy)]
pub enum Word {
    /// `srvr`: `Key: value` lines.
    Srvr,
    /// `mntr`: `key<TAB>value` lines.
    Mntr,
}

impl Word {
    fn text(self) -> &'static str {
        match self {
            Word::Srvr => "srvr",
            Word::Mntr => "mntr",
        }
    }

    fn command(self) -> &'static str {
        match self {
            Word::Srvr => "srvr",
            Word::Mntr => "status",
        }
    }
}

/// One host's answer in JSON.
#[derive(Serialize)]
struct HostJson {
    host: String,
    /// The answer's `key: value` pairs (numbers as numbers), or null when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<Map<String, Value>>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Sends `word` to `h` and reads the answer to the end, within `timeout`.
async fn ask(h: &HostAddr, word: Word, timeout: Duration) -> Result<String, String> {
    if h.tls {
        return Err(
            "a TLS port does not answer four-letter words; name the server's plain client port"
                .into(),
        );
    }
    let talk = async {
        let mut s = tokio::net::TcpStream::connect((h.host.as_str(), h.port)).await?;
        s.write_all(word.text().as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = match tokio::time::timeout(timeout, talk).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(format!("cannot ask: {e}")),
        Err(_) => {
            return Err(format!(
                "no answer within {}",
                crate::duration::human(timeout)
            ))
        }
    };
    let text = String::from_utf8_lossy(&buf).into_owned();
    if text.contains("not in the whitelist") {
        return Err(format!(
            "the server does not allow the four-letter word {w} (add {w} to its 4lw.commands.whitelist)",
            w = word.text()
        ));
    }
    // what a member without a quorum (or a server still starting) answers to every word but a
    // few: one line, no `Mode:`; a status, not an answer to print as if it were up
    if text.contains("not currently serving requests") {
        return Err(
            "not currently serving requests (an ensemble member without a quorum, or a server \
             still starting)"
                .into(),
        );
    }
    if text.trim().is_empty() {
        return Err(format!(
            "empty answer to {} (a TLS-only port, or not a ZooKeeper server?)",
            word.text()
        ));
    }
    Ok(text)
}

/// The answer's `key: value` (srvr) or `key<TAB>value` (mntr) pairs; integers as numbers.
fn pairs(word: Word, text: &str) -> Map<String, Value> {
    let sep = match word {
        Word::Srvr => ": ",
        Word::Mntr => "\t",
    };
    let mut m = Map::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(sep) {
            let v = v.trim();
            let value = match v.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::from(v),
            };
            m.insert(k.trim().to_owned(), value);
        }
    }
    m
}

/// `status`'s line for one host: `host  Mode: standalone  version: ...  znodes: ...`.
fn status_line(host: &str, m: &Map<String, Value>) -> String {
    let get = |k: &str| match m.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "?".into(),
    };
    let version = get("zk_version");
    let version = version.split(['-', ',']).next().unwrap_or("?");
    format!(
        "{host}  Mode: {}  version: {version}  znodes: {}  connections: {}  outstanding: {}\n",
        get("zk_server_state"),
        get("zk_znode_count"),
        get("zk_num_alive_connections"),
        get("zk_outstanding_requests"),
    )
}

/// `zk srvr` / `zk status`: every host in turn; exit 1 if any failed (after the others).
pub async fn four_letter(g: &Global, word: Word, format: Format) -> Result<i32, Failure> {
    let (hosts, _chroot) = zk_core::parse_connect_string(g.hosts())
        .map_err(|e| Failure::Usage(format!("--hosts: {e}")))?;
    let mut failed = 0;
    let mut docs = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let name = h.to_string();
        match ask(h, word, g.session_timeout).await {
            Ok(text) => match format {
                Format::Json => docs.push(HostJson {
                    host: name,
                    answer: Some(pairs(word, &text)),
                    error: None,
                }),
                Format::Text => match word {
                    Word::Srvr => {
                        let sep = if i > 0 { "\n" } else { "" };
                        let body = text.trim_end();
                        out(format!("{sep}{name}\n{body}\n").as_bytes())?;
                    }
                    Word::Mntr => out(status_line(&name, &pairs(word, &text)).as_bytes())?,
                },
            },
            Err(e) => {
                failed += 1;
                eprintln!("zk: {} {name}: {e}", word.command());
                if format == Format::Json {
                    docs.push(HostJson {
                        host: name,
                        answer: None,
                        error: Some(e),
                    });
                }
            }
        }
    }
    if format == Format::Json {
        json(&docs)?;
    }
    Ok(if failed > 0 {
        crate::error::EXIT_FAILURE
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed() {
        let srvr = "Zookeeper version: 3.8.4-abc, built on 2024\nLatency min/avg/max: 0/0.5/3\nMode: standalone\nNode count: 5\n";
        let m = pairs(Word::Srvr, srvr);
        assert_eq!(m["Mode"], "standalone");
        assert_eq!(m["Node count"], 5);
        let mntr =
            "zk_version\t3.8.4-abc, built on 2024\nzk_server_state\tleader\nzk_znode_count\t7\n";
        let m = pairs(Word::Mntr, mntr);
        assert_eq!(
            status_line("h:1", &m),
            "h:1  Mode: leader  version: 3.8.4  znodes: 7  connections: ?  outstanding: ?\n"
        );
    }
}
