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
//! The forwarders are plain threads (one accept thread per port, two copy threads per
//! connection), so they work with or without a tokio runtime.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
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
}

impl Forwarder {
    fn start(target: SocketAddr) -> io::Result<Forwarder> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (c, s, k) = (Arc::clone(&cut), Arc::clone(&stop), Arc::clone(&conns));
        thread::Builder::new()
            .name(format!("zk-testkit-link-{port}"))
            .spawn(move || accept_loop(listener, target, c, s, k))?;
        Ok(Forwarder {
            port,
            cut,
            stop,
            conns,
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

fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
) {
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
        let _ = thread::Builder::new().spawn(move || pipe(inbound, out2));
        let _ = thread::Builder::new().spawn(move || pipe(outbound, in2));
    }
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
