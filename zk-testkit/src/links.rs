//! Member-to-member links of a partitionable [`Ensemble`](crate::Ensemble).
//!
//! Each member gets its own view of its peers: in member `i`'s `zoo.cfg`, peer `j`'s quorum
//! and election addresses are two small TCP forwarders (one per port) that lead to `j`'s real
//! ports. Every member-to-member connection opened by `i` therefore passes through a link
//! `i → j`, and one opened by `j` through `j → i`. Cutting the pair closes every connection of
//! both links (shutdown both ways) and makes them close new connections at once, which is what
//! a partition looks like to ZooKeeper: its peers time out or see the connection drop, and
//! reconnecting fails until the heal. Client ports are not touched.
//!
//! One detail makes this more than a byte copier. When a member with a lower id connects to the
//! election port of a higher one, ZooKeeper's initial message carries the lower member's own
//! election address, and the higher member closes that connection and connects back to the
//! address it was given: straight to the real port, past every link, so election messages
//! would cross a partition made later while the quorum port's traffic does not (elections
//! then take minutes). The election link `i → j` therefore rewrites that address to `j`'s
//! view of `i` (the link `j → i`), so the connection back is cut with the pair as well.
//!
//! The forwarders are plain threads (one accept thread per port, two copy threads per
//! connection), so they work with or without a tokio runtime.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One forwarder: listens on loopback, forwards to `target` unless cut.
#[derive(Debug)]
struct Forwarder {
    port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    /// For an election link: the port to advertise in the initial message instead of the
    /// connecting member's own (0: forward the message unchanged).
    advertise: Arc<AtomicU16>,
}

impl Forwarder {
    fn start(target: SocketAddr) -> io::Result<Forwarder> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let advertise = Arc::new(AtomicU16::new(0));
        let link = Link {
            target,
            cut: Arc::clone(&cut),
            stop: Arc::clone(&stop),
            conns: Arc::clone(&conns),
            advertise: Arc::clone(&advertise),
        };
        thread::Builder::new()
            .name(format!("zk-testkit-link-{port}"))
            .spawn(move || accept_loop(listener, link))?;
        Ok(Forwarder {
            port,
            cut,
            stop,
            conns,
            advertise,
        })
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
        if cut {
            let conns: Vec<TcpStream> = self
                .conns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain(..)
                .collect();
            for c in conns {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.set_cut(true);
    }
}

/// What the accept thread of one [`Forwarder`] shares with it.
struct Link {
    target: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    advertise: Arc<AtomicU16>,
}

fn accept_loop(listener: TcpListener, link: Link) {
    let Link {
        target,
        cut,
        stop,
        conns,
        advertise,
    } = link;
    while !stop.load(Ordering::SeqCst) {
        let inbound = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(_) => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if cut.load(Ordering::SeqCst) {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        }
        let _ = inbound.set_nonblocking(false);
        let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let (Ok(in2), Ok(out2)) = (inbound.try_clone(), outbound.try_clone()) else {
            continue;
        };
        {
            let mut list = conns.lock().unwrap_or_else(|p| p.into_inner());
            // forget connections that are already closed
            list.retain(|c| c.peer_addr().is_ok());
            if let (Ok(a), Ok(b)) = (inbound.try_clone(), outbound.try_clone()) {
                list.push(a);
                list.push(b);
            }
        }
        // a cut that drained the list between the check above and the push must still end
        // this connection
        if cut.load(Ordering::SeqCst) {
            let _ = inbound.shutdown(Shutdown::Both);
            let _ = outbound.shutdown(Shutdown::Both);
            continue;
        }
        let advertise = advertise.load(Ordering::SeqCst);
        let _ = thread::Builder::new().spawn(move || {
            if advertise != 0 && rewrite_initial_message(&inbound, &out2, advertise).is_err() {
                let _ = inbound.shutdown(Shutdown::Both);
                let _ = out2.shutdown(Shutdown::Both);
                return;
            }
            pipe(inbound, out2)
        });
        let _ = thread::Builder::new().spawn(move || pipe(outbound, in2));
    }
}

/// Largest election address list a member sends (ZooKeeper itself refuses more than 4 KiB).
const MAX_ADDRESS_LEN: usize = 4096;

/// Copies the initial message of an election connection from `from` to `to`, with the
/// connecting member's election address replaced by `127.0.0.1:{port}`.
///
/// The message (ZooKeeper 3.5+): protocol version (i64, negative), server id (i64), the
/// length of the address list (i32) and the list (`host:port`, `|`-separated). Anything else
/// (an old-protocol peer sends only its id) is forwarded unchanged.
fn rewrite_initial_message(mut from: &TcpStream, mut to: &TcpStream, port: u16) -> io::Result<()> {
    let mut head = [0u8; 20];
    from.read_exact(&mut head)?;
    let version = i64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
    let len = i32::from_be_bytes(head[16..].try_into().expect("4 bytes"));
    let len = match usize::try_from(len) {
        Ok(len) if version < 0 && len <= MAX_ADDRESS_LEN => len,
        _ => return to.write_all(&head),
    };
    let mut addresses = vec![0u8; len];
    from.read_exact(&mut addresses)?;
    let advertised = format!("127.0.0.1:{port}");
    let mut out = Vec::with_capacity(20 + advertised.len());
    out.extend_from_slice(&head[..16]);
    let advertised_len = i32::try_from(advertised.len()).expect("a short address");
    out.extend_from_slice(&advertised_len.to_be_bytes());
    out.extend_from_slice(advertised.as_bytes());
    to.write_all(&out)
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// The links of one ensemble: `links[i][j]` carries member `i`'s connections to member `j`
/// (quorum and election port), `None` on the diagonal.
#[derive(Debug)]
pub(crate) struct Links {
    links: Vec<Vec<Option<[Forwarder; 2]>>>,
}

impl Links {
    /// Forwarders for every ordered pair; `targets[j]` = member `j`'s (quorum, election) ports.
    pub(crate) fn start(targets: &[(u16, u16)]) -> io::Result<Links> {
        let n = targets.len();
        let mut links = Vec::with_capacity(n);
        for i in 0..n {
            let mut row = Vec::with_capacity(n);
            for (j, &(q, e)) in targets.iter().enumerate() {
                if i == j {
                    row.push(None);
                    continue;
                }
                let at = |p| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
                row.push(Some([Forwarder::start(at(q))?, Forwarder::start(at(e))?]));
            }
            links.push(row);
        }
        // the election link i → j advertises j's view of i (see the module docs)
        for (i, row) in links.iter().enumerate() {
            for (j, fw) in row.iter().enumerate() {
                if let (Some([_, election]), Some([_, back])) = (fw, &links[j][i]) {
                    election.advertise.store(back.port, Ordering::SeqCst);
                }
            }
        }
        Ok(Links { links })
    }

    /// Member `i`'s view of peer `j`: (quorum, election) ports to write in its `zoo.cfg`.
    pub(crate) fn view(&self, i: usize, j: usize) -> Option<(u16, u16)> {
        self.links[i][j].as_ref().map(|[q, e]| (q.port, e.port))
    }

    /// Cuts (or restores) both directions between `i` and `j`.
    pub(crate) fn set_pair(&self, i: usize, j: usize, cut: bool) {
        for (a, b) in [(i, j), (j, i)] {
            if let Some(fw) = &self.links[a][b] {
                fw.iter().for_each(|f| f.set_cut(cut));
            }
        }
    }

    /// Whether the link between `i` and `j` is cut.
    pub(crate) fn is_cut(&self, i: usize, j: usize) -> bool {
        self.links[i][j]
            .as_ref()
            .is_some_and(|[q, _]| q.cut.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (TcpListener, u16) {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        (l, port)
    }

    fn initial_message(sid: i64, address: &str) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&(-65536i64).to_be_bytes());
        m.extend_from_slice(&sid.to_be_bytes());
        m.extend_from_slice(&(address.len() as i32).to_be_bytes());
        m.extend_from_slice(address.as_bytes());
        m
    }

    /// Plays ZooKeeper's election handshake between a lower member 0 and a higher member 1:
    /// 0 connects to 1 and sends its address, 1 connects back to that address. Cutting the
    /// pair must end the connection back too, or election messages cross the partition.
    #[test]
    fn the_connection_back_after_an_election_handshake_is_cut_with_the_pair() {
        let (election0, e0) = listener();
        let (election1, e1) = listener();
        let (_quorum0, q0) = listener();
        let (_quorum1, q1) = listener();
        let links = Links::start(&[(q0, e0), (q1, e1)]).unwrap();
        let (_, via) = links.view(0, 1).unwrap();

        let mut hello = TcpStream::connect((Ipv4Addr::LOCALHOST, via)).unwrap();
        hello
            .write_all(&initial_message(1, &format!("127.0.0.1:{e0}")))
            .unwrap();
        let (mut at1, _) = election1.accept().unwrap();
        let mut head = [0u8; 20];
        at1.read_exact(&mut head).unwrap();
        assert_eq!(
            head[8..16],
            1i64.to_be_bytes(),
            "the id is forwarded unchanged"
        );
        let len = i32::from_be_bytes(head[16..].try_into().unwrap()) as usize;
        let mut address = vec![0u8; len];
        at1.read_exact(&mut address).unwrap();
        let address = String::from_utf8(address).unwrap();
        let back_port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();

        // member 1 connects back to the address it was given
        let _back = TcpStream::connect((Ipv4Addr::LOCALHOST, back_port)).unwrap();
        let (mut at0, _) = election0.accept().unwrap();

        links.set_pair(0, 1, true);
        at0.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut byte = [0u8; 1];
        match at0.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("the connection back survived the cut: {other:?}"),
        }
        assert_eq!(Some(back_port), links.view(1, 0).map(|(_, e)| e));
    }

    #[test]
    fn a_message_that_is_not_an_initial_message_is_forwarded_unchanged() {
        let (election1, e1) = listener();
        let (_election0, e0) = listener();
        let (_q, q) = listener();
        let links = Links::start(&[(q, e0), (q, e1)]).unwrap();
        let (_, via) = links.view(0, 1).unwrap();
        // an old-protocol peer: a non-negative id first
        let mut bytes = 7i64.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[1u8; 40]);
        let mut hello = TcpStream::connect((Ipv4Addr::LOCALHOST, via)).unwrap();
        hello.write_all(&bytes).unwrap();
        let (mut at1, _) = election1.accept().unwrap();
        let mut got = vec![0u8; bytes.len()];
        at1.read_exact(&mut got).unwrap();
        assert_eq!(got, bytes);
    }
}
