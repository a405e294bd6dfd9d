//! Four-letter words: a connection whose first four bytes spell one gets a text answer and is
//! closed.

use crate::core::{Conn, Core};
use crate::watch::ConnId;
use std::fmt::Write as _;

/// The version `srvr` and `envi` report.
pub(crate) const VERSION: &str = "3.8.0-zk-server, built on 1970-01-01 00:00 UTC";

/// The words answered.
pub(crate) const WORDS: [&str; 17] = [
    "ruok", "srvr", "stat", "cons", "isro", "envi", "conf", "wchs", "wchp", "mntr", "wchc", "crst",
    "srst", "gtmk", "stmk", "dirs", "dump",
];

/// One connection as `cons` (`full`) and `stat` list it (`ServerCnxn.dumpConnectionInfo`):
/// the interest flag is 0 for the connection asking (it is being answered), 1 for the
/// others; session fields only for a connection with a session.
fn conn_line(c: &Core, id: ConnId, conn: &Conn, asking: ConnId, full: bool) -> String {
    let mut s = format!(
        " /{}[{}](queued=0,recved={},sent={}",
        conn.peer,
        u8::from(id != asking),
        conn.received,
        conn.sent
    );
    if full && conn.session != 0 {
        let st = &conn.stats;
        let timeout = c.sessions.get(&conn.session).map_or(0, |s| s.timeout_ms);
        let _ = write!(
            s,
            ",sid={:#x},lop={},est={},to={timeout}",
            conn.session, st.last_op, st.established_ms
        );
        if st.last_cxid >= 0 {
            let _ = write!(s, ",lcxid={:#x}", st.last_cxid);
        }
        let _ = write!(
            s,
            ",lzxid={:#x},lresp={},llat=0,minlat=0,avglat=0,maxlat=0",
            st.last_zxid, st.last_resp_ms
        );
    }
    s.push_str(")\n");
    s
}

/// The answer to `word` asked on connection `asking`, if it is a four-letter word.
pub(crate) fn answer(c: &mut Core, word: &[u8], asking: ConnId) -> Option<String> {
    let word = std::str::from_utf8(word).ok()?;
    match word {
        "crst" => {
            // ServerCnxn.resetStats on every connection
            for conn in c.conns.values_mut() {
                conn.received = 0;
                conn.sent = 0;
                conn.stats = crate::core::ConnStats {
                    established_ms: conn.stats.established_ms,
                    ..Default::default()
                };
            }
            return Some("Connection stats reset.\n".to_owned());
        }
        "srst" => {
            c.packets_received = 0;
            c.packets_sent = 0;
            return Some("Server stats reset.\n".to_owned());
        }
        _ => {}
    }
    let c = &*c;
    let srvr = || {
        format!(
            "Zookeeper version: {VERSION}\nLatency min/avg/max: 0/0.0/0\nReceived: {}\nSent: {}\n\
             Connections: {}\nOutstanding: 0\nZxid: {:#x}\nMode: standalone\nNode count: {}\n",
            c.packets_received,
            c.packets_sent,
            c.conns.len(),
            c.zxid,
            c.tree.node_count()
        )
    };
    Some(match word {
        "ruok" => "imok".to_owned(),
        "srvr" => srvr(),
        "stat" => {
            let mut s = format!("Zookeeper version: {VERSION}\nClients:\n");
            for (id, conn) in &c.conns {
                s.push_str(&conn_line(c, *id, conn, asking, false));
            }
            s.push('\n');
            s.push_str(srvr().split_once('\n').map_or("", |(_, rest)| rest));
            s
        }
        "cons" => {
            let mut s = String::new();
            for (id, conn) in &c.conns {
                s.push_str(&conn_line(c, *id, conn, asking, true));
            }
            s.push('\n');
            s
        }
        "isro" => "rw".to_owned(),
        "envi" => format!(
            "Environment:\nzookeeper.version={VERSION}\nhost.name=localhost\njava.version=none\n"
        ),
        // ZooKeeper's keys in its order (ZooKeeperServer.dumpConf); in memory the dirs are
        // empty, and maxClientCnxns is 0: no limit
        "conf" => {
            let (dir, size) = match c.opts.data_dir.as_deref() {
                Some(d) => (d.display().to_string(), dir_size(d)),
                None => (String::new(), 0),
            };
            format!(
                "clientPort={}\nsecureClientPort=-1\ndataDir={dir}\ndataDirSize={size}\n\
                 dataLogDir={dir}\ndataLogSize={size}\ntickTime={}\nmaxClientCnxns=0\n\
                 minSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\n\
                 serverId=0\n",
                c.opts.port,
                c.opts.tick_time.as_millis(),
                c.opts.min_session_timeout().as_millis(),
                c.opts.max_session_timeout().as_millis()
            )
        }
        // wchs and wchp show the data table only, as 3.8's DataTree.getWatchesSummary /
        // getWatchesByPath do (mntr's zk_watch_count counts both tables)
        "wchs" => {
            let (conns, paths) = c.data_w.summary();
            format!(
                "{conns} connections watching {paths} paths\nTotal watches:{}\n",
                c.data_w.len()
            )
        }
        "mntr" => format!(
            "zk_version\t{VERSION}\nzk_server_state\tstandalone\nzk_num_alive_connections\t{}\n\
             zk_outstanding_requests\t0\nzk_znode_count\t{}\nzk_watch_count\t{}\n\
             zk_ephemerals_count\t{}\nzk_packets_received\t{}\nzk_packets_sent\t{}\n",
            c.conns.len(),
            c.tree.node_count(),
            c.data_w.len() + c.child_w.len(),
            c.ephemeral_count(),
            c.packets_received,
            c.packets_sent
        ),
        "wchp" => wchp(c),
        "wchc" => wchc(c),
        "dump" => dump(c),
        // the trace mask (ZooTrace's; 306 at start); stmk sets it (see conn.rs) and answers it
        "gtmk" | "stmk" => c.trace_mask.to_string(),
        "dirs" => {
            let size = c.opts.data_dir.as_deref().map_or(0, dir_size);
            format!("datadir_size: {size}\nlogdir_size: {size}\n")
        }
        _ => return None,
    })
}

/// `wchp`: as ZooKeeper's `WatchManager.dumpWatches(pw, true)` over the data-watch table only
/// (getData / exists and persistent / recursive watches; getChildren watches are not listed):
/// each path on a line, then `\t0x<session id in hex>` for each connection watching it.
fn wchp(c: &Core) -> String {
    let mut s = String::new();
    for (path, conns) in c.data_w.watchers_by_path() {
        s.push_str(path);
        s.push('\n');
        for conn in conns {
            let session = c.conns.get(&conn).map_or(0, |x| x.session);
            s.push_str(&format!("\t0x{session:x}\n"));
        }
    }
    s.push('\n');
    s
}

/// `wchc`: `WatchManager.dumpWatches(pw, false)` over the data-watch table: each watching
/// connection's `0x<session id>` on a line, then `\t<path>` for each path it watches.
fn wchc(c: &Core) -> String {
    let mut by_conn: std::collections::BTreeMap<ConnId, Vec<&str>> = Default::default();
    for (path, conns) in c.data_w.watchers_by_path() {
        for conn in conns {
            by_conn.entry(conn).or_default().push(path);
        }
    }
    let mut s = String::new();
    for (conn, paths) in by_conn {
        let session = c.conns.get(&conn).map_or(0, |x| x.session);
        s.push_str(&format!("0x{session:x}\n"));
        for p in paths {
            s.push_str(&format!("\t{p}\n"));
        }
    }
    s.push('\n');
    s
}

/// Bytes in the data dir's files (`dirs`).
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// `dump` in standalone mode (`SessionTrackerImpl.dumpSessions`, `DataTree.dumpEphemerals`,
/// the connection expiry queue): sessions by expiry time, each session's ephemerals, and the
/// connections (in one set, expiring with their session; zk-server has no other timer).
fn dump(c: &Core) -> String {
    let to_wall = |expires_ms: i64| crate::core::epoch_ms() - c.clock_ms() + expires_ms;
    let mut buckets: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for s in c.sessions.values() {
        buckets.entry(s.expires_ms).or_default().push(s.id);
    }
    let mut out = format!(
        "SessionTracker dump:\nSession Sets ({})/({}):\n",
        buckets.len(),
        c.sessions.len()
    );
    for (at, mut ids) in buckets {
        ids.sort_unstable();
        out.push_str(&format!(
            "{} expire at {}:\n",
            ids.len(),
            java_date(to_wall(at))
        ));
        for id in ids {
            out.push_str(&format!("\t0x{id:x}\n"));
        }
    }
    let mut owners: Vec<(&i64, &std::collections::BTreeSet<String>)> = c
        .tree
        .ephemerals
        .iter()
        .filter(|(_, paths)| !paths.is_empty())
        .collect();
    owners.sort();
    out.push_str(&format!(
        "ephemeral nodes dump:\nSessions with Ephemerals ({}):\n",
        owners.len()
    ));
    for (id, paths) in owners {
        out.push_str(&format!("0x{id:x}:\n"));
        for p in paths {
            out.push_str(&format!("\t{p}\n"));
        }
    }
    let mut conns: Vec<(&ConnId, &Conn)> = c.conns.iter().collect();
    conns.sort_by_key(|(id, _)| **id);
    let at = c
        .sessions
        .values()
        .map(|s| s.expires_ms)
        .max()
        .unwrap_or_else(|| c.clock_ms());
    out.push_str(&format!(
        "Connections dump:\nConnections Sets (1)/({}):\n{} expire at {}:\n",
        conns.len(),
        conns.len(),
        java_date(to_wall(at))
    ));
    for (_, conn) in conns {
        out.push_str(&format!(
            "\tip: /{} sessionId: 0x{:x}\n",
            conn.peer, conn.session
        ));
    }
    out
}

/// Java's `Date.toString()` in UTC: `Mon Nov 30 22:06:33 UTC 2026`.
fn java_date(epoch_ms: i64) -> String {
    let secs = epoch_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {day:02} {:02}:{:02}:{:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn java_date_formats_like_date_to_string() {
        assert_eq!(super::java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // 2026-11-30 22:06:33 UTC, as ZooKeeper's dump printed it
        assert_eq!(
            super::java_date(1_796_076_393_000),
            "Mon Nov 30 22:06:33 UTC 2026"
        );
        assert_eq!(
            super::java_date(951_782_400_000),
            "Tue Feb 29 00:00:00 UTC 2000"
        );
    }
}
