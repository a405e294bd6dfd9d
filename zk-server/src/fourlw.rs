//! Four-letter words: a connection whose first four bytes spell one gets a text answer and is
//! closed.

use crate::core::Core;

/// The version `srvr` and `envi` report.
pub(crate) const VERSION: &str = "3.8.0-zk-server, built on 1970-01-01 00:00 UTC";

pub(crate) fn answer(c: &Core, word: &[u8]) -> Option<String> {
    let word = std::str::from_utf8(word).ok()?;
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
            for conn in c.conns.values() {
                s.push_str(&format!(
                    " /{}[1](queued=0,recved={},sent={})\n",
                    conn.peer, conn.received, conn.sent
                ));
            }
            s.push('\n');
            s.push_str(srvr().split_once('\n').map_or("", |(_, rest)| rest));
            s
        }
        "cons" => {
            let mut s = String::new();
            for conn in c.conns.values() {
                s.push_str(&format!(
                    " /{}[1](queued=0,recved={},sent={},sid={:#x})\n",
                    conn.peer, conn.received, conn.sent, conn.session
                ));
            }
            s.push('\n');
            s
        }
        "isro" => "rw".to_owned(),
        "envi" => format!(
            "Environment:\nzookeeper.version={VERSION}\nhost.name=localhost\njava.version=none\n"
        ),
        "conf" => format!(
            "clientPort={}\ntickTime={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nserverId=0\n",
            c.opts.port,
            c.opts.tick_time.as_millis(),
            c.opts.min_session_timeout().as_millis(),
            c.opts.max_session_timeout().as_millis()
        ),
        "wchs" => format!(
            "{} connections watching {} paths\nTotal watches:{}\n",
            c.conns.len(),
            c.data_w.len() + c.child_w.len(),
            c.data_w.len() + c.child_w.len()
        ),
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
    s
}
