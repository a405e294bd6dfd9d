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
//! Another detail: a link accepts a connection before it knows whether its target will. Where
//! the target's port does not listen yet (a just-elected leader's quorum port), connecting
//! straight to it would be refused, and ZooKeeper retries a refused connect to its leader; a
//! connection that is accepted and then closed makes the follower give up instead. So a link
//! whose target refuses keeps trying for a while ([`TARGET_PATIENCE`]) and only then closes:
//! to the member, a slow connect.
//!
//! The forwarders are plain threads (one accept thread per port, two copy threads per
//! connection), so they work with or without a tokio runtime.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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

impl Link {
    /// Remembers `stream` for a cut to shut down; `false` (and `stream` shut down) if the pair
    /// is cut already. A cut that drained the list between an earlier check and this push sees
    /// its flag read here, so no connection escapes it.
    fn track(&self, stream: &TcpStream) -> bool {
        {
            let mut list = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            // forget connections that are already closed
            list.retain(|c| c.peer_addr().is_ok());
            if let Ok(clone) = stream.try_clone() {
                list.push(clone);
            }
        }
        if self.cut.load(Ordering::SeqCst) {
            let _ = stream.shutdown(Shutdown::Both);
            return false;
        }
        true
    }
}

fn accept_loop(listener: TcpListener, link: Link) {
    let link = Arc::new(link);
    while !link.stop.load(Ordering::SeqCst) {
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
        if link.cut.load(Ordering::SeqCst) {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        }
        let _ = inbound.set_nonblocking(false);
        let _ = inbound.set_nodelay(true);
        // tracked before the target is reached, so that a cut while the link waits for the
        // target ends the connection too
        if !link.track(&inbound) {
            continue;
        }
        let link = Arc::clone(&link);
        let _ = thread::Builder::new().spawn(move || forward(inbound, &link));
    }
}

/// How long a link keeps trying a target that refuses connections (its port does not listen
/// yet) before it gives up and closes the connection it accepted.
///
/// The link accepts a connection before it knows whether the target will: a member that
/// connects through it sees its connect succeed at once, even where connecting straight to the
/// port would be refused. ZooKeeper treats those two differently. A follower retries a refused
/// connect to its leader (5 tries, 100 ms apart, within `initLimit × tickTime`), but a
/// connection that opens and then closes makes it give up and go back to the election, while
/// the leader waits `initLimit × tickTime` for it. A just-elected leader opens its quorum port a
/// moment after it decides, and a follower that decides first connects before that: issue 10,
/// where an isolated leader's successor waited 5 s per lost race (alone 1 race in 2, and
/// round after round on a loaded machine). So the link answers a refusal by trying again, for
/// up to 5 s (what a follower waits for its leader's first answer, `initLimit × tickTime`, at
/// the 500 ms tick of the partition tests; more with longer ticks): to the member, a slow
/// connect.
const TARGET_PATIENCE: Duration = Duration::from_secs(5);
/// Pause between two connects to a target that refused.
const TARGET_RETRY: Duration = Duration::from_millis(20);

/// Connects `inbound` to the link's target (retrying a refusal, see [`TARGET_PATIENCE`]) and
/// copies both ways until either side closes or the pair is cut.
fn forward(inbound: TcpStream, link: &Link) {
    let Some(outbound) = connect_target(link) else {
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    };
    let _ = outbound.set_nodelay(true);
    let (Ok(in2), Ok(out2)) = (inbound.try_clone(), outbound.try_clone()) else {
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    };
    if !link.track(&outbound) {
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    }
    let advertise = link.advertise.load(Ordering::SeqCst);
    let _ = thread::Builder::new().spawn(move || pipe(outbound, in2));
    if advertise != 0 && rewrite_initial_message(&inbound, &out2, advertise).is_err() {
        let _ = inbound.shutdown(Shutdown::Both);
        let _ = out2.shutdown(Shutdown::Both);
        return;
    }
    pipe(inbound, out2);
}

/// A connection to the link's target, retrying while it refuses, for at most
/// [`TARGET_PATIENCE`]; `None` if it cannot be reached, or the link is cut or stopped meanwhile.
fn connect_target(link: &Link) -> Option<TcpStream> {
    let deadline = Instant::now() + TARGET_PATIENCE;
    loop {
        if link.cut.load(Ordering::SeqCst) || link.stop.load(Ordering::SeqCst) {
            return None;
        }
        match TcpStream::connect_timeout(&link.target, Duration::from_secs(2)) {
            Ok(outbound) => return Some(outbound),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && Instant::now() < deadline => {
                thread::sleep(TARGET_RETRY);
            }
            Err(_) => return None,
        }
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

    /// A port that is bound but does not listen yet, as a just-elected leader's quorum port
    /// before it binds: connecting straight to it is refused. `listen` makes it accept.
    fn not_listening_yet() -> (tokio::net::TcpSocket, u16) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        (socket, port)
    }

    fn listen(socket: tokio::net::TcpSocket) -> TcpListener {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let _in = runtime.enter();
        let listener = socket.listen(16).unwrap().into_std().unwrap();
        listener.set_nonblocking(false).unwrap();
        listener
    }

    /// Accepts one connection within 10 s, or `None`.
    fn accept_within_10s(listener: &TcpListener) -> Option<TcpStream> {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    return Some(s);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        None
    }

    /// ZooKeeper's follower retries a refused connect to its new leader (whose quorum port
    /// may not listen yet), but through a link the connect itself succeeds at once: a link that
    /// then meets a refusal must not close the connection (the follower would give up and the
    /// leader wait `initLimit` for it, issue 10); it keeps trying the target for a while.
    #[test]
    fn a_connection_made_before_the_target_listens_goes_through_once_it_does() {
        let (target, port) = not_listening_yet();
        let (_q0, q0) = listener();
        let (_e0, e0) = listener();
        let (_e1, e1) = listener();
        let links = Links::start(&[(q0, e0), (port, e1)]).unwrap();
        let (via, _) = links.view(0, 1).unwrap();

        let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, via)).unwrap();
        client.write_all(b"FOLLOWERINFO").unwrap();
        thread::sleep(Duration::from_millis(300));
        let target = listen(target);
        let Some(mut at_target) = accept_within_10s(&target) else {
            client
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            let mut byte = [0u8; 1];
            panic!(
                "nothing reached the target, which listened 300 ms after the connect; \
                 the client's connection: {:?}",
                client.read(&mut byte)
            );
        };
        let mut got = [0u8; 12];
        at_target.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"FOLLOWERINFO");
        at_target.write_all(b"LEADERINFO").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reply = [0u8; 10];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"LEADERINFO");
    }

    /// A cut while a link waits for its target ends the waiting: the connection is closed, and
    /// nothing reaches the target when it listens (well within the link's patience) after the
    /// cut.
    #[test]
    fn a_cut_ends_a_connection_that_waits_for_its_target() {
        let (target, port) = not_listening_yet();
        let (_q0, q0) = listener();
        let (_e0, e0) = listener();
        let (_e1, e1) = listener();
        let links = Links::start(&[(q0, e0), (port, e1)]).unwrap();
        let (via, _) = links.view(0, 1).unwrap();

        let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, via)).unwrap();
        client.write_all(b"FOLLOWERINFO").unwrap();
        thread::sleep(Duration::from_millis(100));
        links.set_pair(0, 1, true);
        thread::sleep(Duration::from_millis(100));
        let target = listen(target);
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut byte = [0u8; 1];
        match client.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("the waiting connection survived the cut: {other:?}"),
        }
        target.set_nonblocking(true).unwrap();
        assert!(
            matches!(target.accept(), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "a connection reached the target after the cut"
        );
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
