//! Adversarial review of zk-core (round 8c: the "cost per request" work of issue 8: write
//! coalescing, read batching, ready replies handled in one pass, fixed-size decoders, the
//! chroot written straight into the frame) against a real ZooKeeper 3.8. A test that pins down
//! a finding (a documented promise that does not hold) fails on the code it was written
//! against and says so in its doc; the others are regression coverage for angles that held.

mod common;

use common::bounded;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zk_core::{Client, CreateMode, Error};

/// Changes one server frame (its body, without the length prefix) on its way to the client.
type Edit = Box<dyn FnMut(Vec<u8>) -> Vec<u8> + Send>;

/// A frame-aware proxy in front of a real server, for one client connection at a time: the
/// client's bytes go through untouched; every server frame goes through the edit installed
/// (if any), and while flooding the proxy writes watch notifications (for a path nobody
/// watches) between the server's frames as fast as the client takes them, as a server does
/// for a busy tree under a recursive watch.
struct FrameProxy {
    addr: SocketAddr,
    flood: Arc<AtomicBool>,
    /// Every server frame is written in two parts with a pause between (split across reads).
    split: Arc<AtomicBool>,
    /// Server frames are held back in the proxy (the server hears the client, the client hears
    /// nothing).
    stall: Arc<AtomicBool>,
    /// Pings (opcode 11) the client sent through the proxy.
    pings: Arc<AtomicU64>,
    /// Notification chunks written while flooding.
    chunks: Arc<AtomicU64>,
    edit: Arc<Mutex<Option<Edit>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for FrameProxy {
    fn drop(&mut self) {
        self.flood.store(false, Ordering::SeqCst);
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// Notification frames per flood chunk (about 140 KB).
const FLOOD_CHUNK: usize = 2000;

/// Tests that load the machine (the floods) run one at a time, and none of this file's other
/// tests beside them: a flood starves the client only while the proxy outpaces it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `count` notification frames (NodeDataChanged for `path`), back to back.
fn notifications(path: &str, count: usize) -> Vec<u8> {
    let mut one = Vec::new();
    let body_len = 4 + 8 + 4 + 4 + 4 + 4 + path.len();
    one.extend_from_slice(&(body_len as i32).to_be_bytes());
    one.extend_from_slice(&(-1i32).to_be_bytes()); // xid: notification
    one.extend_from_slice(&(-1i64).to_be_bytes()); // zxid
    one.extend_from_slice(&0i32.to_be_bytes()); // err
    one.extend_from_slice(&3i32.to_be_bytes()); // NodeDataChanged
    one.extend_from_slice(&3i32.to_be_bytes()); // SyncConnected
    one.extend_from_slice(&(path.len() as i32).to_be_bytes());
    one.extend_from_slice(path.as_bytes());
    one.repeat(count)
}

impl FrameProxy {
    async fn start(upstream: SocketAddr) -> FrameProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let p = FrameProxy {
            addr,
            flood: Arc::new(AtomicBool::new(false)),
            split: Arc::new(AtomicBool::new(false)),
            stall: Arc::new(AtomicBool::new(false)),
            pings: Arc::new(AtomicU64::new(0)),
            chunks: Arc::new(AtomicU64::new(0)),
            edit: Arc::new(Mutex::new(None)),
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        let (flood, split, stall, pings, chunks, edit, tasks) = (
            p.flood.clone(),
            p.split.clone(),
            p.stall.clone(),
            p.pings.clone(),
            p.chunks.clone(),
            p.edit.clone(),
            p.tasks.clone(),
        );
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let pings = pings.clone();
                let up = tokio::spawn(async move {
                    // whole frames, the first (the ConnectRequest) unparsed; pings counted
                    let mut first = true;
                    loop {
                        let mut len = [0u8; 4];
                        if cr.read_exact(&mut len).await.is_err() {
                            break;
                        }
                        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                        if cr.read_exact(&mut body).await.is_err() {
                            break;
                        }
                        if !first && body.len() >= 8 && body[4..8] == 11i32.to_be_bytes() {
                            pings.fetch_add(1, Ordering::SeqCst);
                        }
                        first = false;
                        if sw.write_all(&len).await.is_err() || sw.write_all(&body).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                });
                let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
                let read = tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 4];
                        if sr.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                        if sr.read_exact(&mut body).await.is_err() || tx.send(body).is_err() {
                            return;
                        }
                    }
                });
                let (flood, split, stall, chunks, edit) = (
                    flood.clone(),
                    split.clone(),
                    stall.clone(),
                    chunks.clone(),
                    edit.clone(),
                );
                let down = tokio::spawn(async move {
                    let chunk = notifications("/zk-review8c-nobody-watches-this", FLOOD_CHUNK);
                    let forward = |f: Vec<u8>| {
                        let f = match edit.lock().unwrap().as_mut() {
                            Some(e) => e(f),
                            None => f,
                        };
                        let mut out = (f.len() as i32).to_be_bytes().to_vec();
                        out.extend_from_slice(&f);
                        out
                    };
                    loop {
                        if flood.load(Ordering::SeqCst) {
                            loop {
                                match rx.try_recv() {
                                    Ok(f) => {
                                        if cw.write_all(&forward(f)).await.is_err() {
                                            return;
                                        }
                                    }
                                    Err(mpsc::error::TryRecvError::Empty) => break,
                                    Err(mpsc::error::TryRecvError::Disconnected) => {
                                        let _ = cw.shutdown().await;
                                        return;
                                    }
                                }
                            }
                            if cw.write_all(&chunk).await.is_err() {
                                return;
                            }
                            chunks.fetch_add(1, Ordering::SeqCst);
                        } else if stall.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        } else {
                            match tokio::time::timeout(Duration::from_millis(10), rx.recv()).await {
                                Ok(Some(f)) => {
                                    // a frame taken just as the stall began waits for its end
                                    while stall.load(Ordering::SeqCst) {
                                        tokio::time::sleep(Duration::from_millis(10)).await;
                                    }
                                    let out = forward(f);
                                    if split.load(Ordering::SeqCst) {
                                        // cut inside the frame: the length and part of the
                                        // header first, the rest 2 ms later
                                        let at = 3 + out.len() % 17;
                                        if cw.write_all(&out[..at]).await.is_err() {
                                            return;
                                        }
                                        tokio::time::sleep(Duration::from_millis(2)).await;
                                        if cw.write_all(&out[at..]).await.is_err() {
                                            return;
                                        }
                                    } else if cw.write_all(&out).await.is_err() {
                                        return;
                                    }
                                }
                                Ok(None) => {
                                    let _ = cw.shutdown().await;
                                    return;
                                }
                                Err(_) => {}
                            }
                        }
                    }
                });
                tasks.lock().unwrap().extend([up, read, down]);
            }
        });
        p.tasks.lock().unwrap().push(accept);
        p
    }

    fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    fn set_flood(&self, on: bool) {
        self.flood.store(on, Ordering::SeqCst);
    }

    /// Changes the next server reply to a request (xid > 0) with `f` (once).
    fn edit_next_reply(&self, f: impl FnOnce(Vec<u8>) -> Vec<u8> + Send + 'static) {
        let mut f = Some(f);
        *self.edit.lock().unwrap() = Some(Box::new(move |frame: Vec<u8>| {
            let xid = i32::from_be_bytes(frame[0..4].try_into().unwrap());
            match (xid > 0).then(|| f.take()).flatten() {
                Some(f) => f(frame),
                None => frame,
            }
        }));
    }

    /// Waits (bounded) until the flood has written `n` more chunks: the client is busy
    /// reading them.
    async fn flooded(&self, n: u64) {
        let from = self.chunks.load(Ordering::SeqCst);
        bounded("the notification flood to get going", async {
            while self.chunks.load(Ordering::SeqCst) < from + n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

/// `Client::close`: it tries "until the close timeout ([`ClientBuilder::close_timeout`],
/// default 2 s)" and then returns `Timeout`; and the serve loop's `FRAMES_PER_PASS`
/// (session/conn.rs): "Frames handled in one pass of the serve loop when they are ready one
/// after another (then the loop goes round: writes, commands and timers get their turn)".
/// They do not: the loop's `select!` is `biased` with the reader first, so while frames keep
/// arriving (a steady stream of notifications, as a busy tree under a recursive watch gives)
/// the reader is ready on every pass and the command channel, the writer and every timer
/// (close deadline included) are never polled: `close()` is not even taken, let alone bounded
/// by its close timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_starved_while_notifications_keep_arriving() {
    let _serial = SERIAL.lock().await;
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let proxy = FrameProxy::start(server.addr()).await;
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(30))
        .close_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect through the frame proxy");
    c.exists("/").await.expect("a request before the flood");
    proxy.set_flood(true);
    proxy.flooded(300).await;
    let started = tokio::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(20), c.close()).await;
    let chunks = proxy.chunks.load(Ordering::SeqCst);
    proxy.set_flood(false);
    assert!(
        closed.is_ok(),
        "close() with a 2 s close timeout still pending after {:?} while the server kept \
         sending notifications ({chunks} chunks of {FLOOD_CHUNK} written): the close command, the \
         writer and the close deadline never got a turn",
        started.elapsed()
    );
}

/// The session is kept alive by pings (docs/architecture.md: a ping after a third of the
/// session timeout without a send). While notifications keep arriving, the ping timer is
/// never polled (the same `biased` select as above): the client sends nothing, the server
/// expires a session whose client was connected and reading all along, and its ephemeral
/// node is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expires_while_notifications_keep_arriving() {
    let _serial = SERIAL.lock().await;
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("flood-ping");
    let admin = Client::connect(&server.connect_string()).await.unwrap();
    admin.ensure_path(&root).await.unwrap();
    let proxy = FrameProxy::start(server.addr()).await;
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await
        .expect("connect through the frame proxy");
    let negotiated = c.status().session_timeout;
    let eph = format!("{root}/eph");
    c.create(&eph, b"", CreateMode::Ephemeral).await.unwrap();
    let owner = c.session_id();
    proxy.set_flood(true);
    proxy.flooded(300).await;
    // three session timeouts of notifications
    tokio::time::sleep(negotiated * 3).await;
    let chunks = proxy.chunks.load(Ordering::SeqCst);
    proxy.set_flood(false);
    let stat = admin.exists(&eph).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
    assert!(
        stat.is_some_and(|s| s.ephemeral_owner == owner),
        "after {:?} of notifications ({chunks} chunks of {FLOOD_CHUNK}) to a connected client, its \
         ephemeral {eph} is {stat:?}: the session ({owner:#x}, timeout {negotiated:?}) \
         expired on the server, no ping was sent",
        negotiated * 3
    );
    admin.close().await.unwrap();
}

/// A server frame (body after the length prefix) with its reply header kept and the rest cut
/// to `keep` bytes.
fn cut_body(frame: Vec<u8>, keep: usize) -> Vec<u8> {
    frame[..16 + keep.min(frame.len() - 16)].to_vec()
}

/// Regression coverage (held): replies cut short or lying about lengths, through the
/// fixed-size decoders (`Reader::array` for a Stat, `i32_at`/`i64_at`): each fails its own
/// request with a protocol error (never a panic, never a hang), and the connection and session
/// go on serving. A frame shorter than a reply header ends the connection: its request fails
/// with ConnectionLoss and the same session is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_replies_through_the_fixed_size_decoders_fail_only_their_request() {
    let _serial = SERIAL.lock().await;
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("malformed");
    let admin = Client::connect(&server.connect_string()).await.unwrap();
    admin.ensure_path(&format!("{root}/n/kid")).await.unwrap();
    admin
        .set_data(&format!("{root}/n"), b"hello", None)
        .await
        .unwrap();
    let proxy = FrameProxy::start(server.addr()).await;
    let c = Client::builder(format!("{}{root}", proxy.connect_string()))
        .session_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    type Case = (&'static str, fn(Vec<u8>) -> Vec<u8>);
    let cases: [Case; 5] = [
        // data "hello" (4 + 5 bytes), then 40 of the Stat's 68 bytes
        ("getData with a short Stat", |f| cut_body(f, 9 + 40)),
        ("getData with a data length of -5", |mut f| {
            f[16..20].copy_from_slice(&(-5i32).to_be_bytes());
            f
        }),
        ("getData with a data length past the frame", |mut f| {
            f[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
            f
        }),
        ("getData with nothing after the header", |f| cut_body(f, 0)),
        ("getData with a Stat one byte short", |f| {
            let n = f.len();
            f[..n - 1].to_vec()
        }),
    ];
    for (what, edit) in cases {
        proxy.edit_next_reply(edit);
        let r = bounded(what, c.get_data("/n")).await;
        assert!(
            matches!(r, Err(Error::Protocol(_))),
            "{what}: get_data gave {r:?} (expected a protocol error)"
        );
        let ok = bounded("a get_data after it", c.get_data("/n")).await;
        assert!(
            matches!(&ok, Ok((d, _)) if d == b"hello") && c.session_id() == sid,
            "after {what}: get_data gave {ok:?}"
        );
    }
    let cases: [Case; 3] = [
        ("exists with a short Stat", |f| cut_body(f, 67)),
        ("getChildren2 with a child count of 2^31-1", |mut f| {
            f[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
            f
        }),
        ("getChildren2 with a negative child name length", |mut f| {
            f[20..24].copy_from_slice(&(-7i32).to_be_bytes());
            f
        }),
    ];
    for (i, (what, edit)) in cases.into_iter().enumerate() {
        proxy.edit_next_reply(edit);
        let r = if i == 0 {
            bounded(what, c.exists("/n")).await.map(|_| ())
        } else {
            bounded(what, c.get_children_with_stat("/n"))
                .await
                .map(|_| ())
        };
        assert!(
            matches!(r, Err(Error::Protocol(_))),
            "{what}: gave {r:?} (expected a protocol error)"
        );
    }
    // shorter than a reply header: the stream cannot be trusted any more
    proxy.edit_next_reply(|f| f[..10].to_vec());
    let r = bounded("a reply of 10 bytes", c.get_data("/n")).await;
    assert!(
        matches!(r, Err(Error::ConnectionLoss)),
        "a 10-byte reply: {r:?}"
    );
    let ok = bounded("a get_data after the reconnect", c.get_data("/n")).await;
    assert!(
        ok.is_ok() && c.session_id() == sid,
        "after a 10-byte reply: {ok:?}, session {:#x} (was {sid:#x})",
        c.session_id()
    );
    c.close().await.unwrap();
    admin.close().await.unwrap();
}

/// Regression coverage (held): exists / getData / getChildren write the chroot and the path
/// straight into the frame; the request-size check must count exactly those bytes. Under a
/// chroot, with a non-ASCII path, a read whose whole request is exactly `max_request_len`
/// (the default, 1 MiB - 1: what a stock server accepts) reaches the server and is answered
/// (NoNode), with the connection unaffected; one byte more is refused before sending with
/// `RequestTooLarge` naming the real length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_under_a_chroot_exactly_at_the_request_limit_reach_the_server() {
    let _serial = SERIAL.lock().await;
    let server = zk_testkit::shared_server();
    let root = common::unique_root("limit-chroot");
    let c = common::chroot_client(&server.connect_string(), &root).await;
    let sid = c.session_id();
    let mut states = c.state_stream();
    let chroot_len = root.len();
    let max = zk_core::DEFAULT_MAX_REQUEST_LEN;
    // xid, opcode, string length, chroot, path, watch flag
    let path_len = max - (4 + 4 + 4 + chroot_len + 1);
    // "/é" is three bytes
    let at_limit = format!("/é{}", "x".repeat(path_len - 3));
    assert_eq!(at_limit.len(), path_len);
    let over = format!("{at_limit}y");
    for op in ["exists", "getData", "getChildren"] {
        let r = match op {
            "exists" => bounded(op, c.exists(&at_limit)).await.map(|s| s.is_some()),
            "getData" => bounded(op, c.get_data(&at_limit)).await.map(|_| true),
            _ => bounded(op, c.get_children(&at_limit)).await.map(|_| true),
        };
        assert!(
            matches!(r, Ok(false) | Err(Error::NoNode)),
            "{op} of a request exactly {max} bytes under a chroot: {r:?} (expected NoNode)"
        );
        let r = match op {
            "exists" => bounded(op, c.exists(&over)).await.map(|s| s.is_some()),
            "getData" => bounded(op, c.get_data(&over)).await.map(|_| true),
            _ => bounded(op, c.get_children(&over)).await.map(|_| true),
        };
        assert!(
            matches!(r, Err(Error::RequestTooLarge { len, max: m }) if len == max + 1 && m == max),
            "{op} of a request one byte over {max} under a chroot: {r:?}"
        );
    }
    assert_eq!(
        c.session_id(),
        sid,
        "the same session throughout (no reconnect)"
    );
    let changed = futures::FutureExt::now_or_never(futures::StreamExt::next(&mut states));
    assert!(
        changed.is_none(),
        "no state change (no reconnect) throughout: {changed:?}"
    );
    c.close().await.unwrap();
}

/// Bursts of pipelined requests of six kinds on nodes `/n0`..`/n9` (data `v0`..`v9`, no
/// children) of `c`'s root, which has just those ten children: a third answered by a bare
/// error header (NoNode, BadVersion), a sixth setting data (notifications for watchers);
/// every request must get its own answer.
async fn mixed_bursts(c: &Client, bursts: &[usize]) {
    for &burst in bursts {
        let calls = (0..burst).map(|i| {
            let c = c.clone();
            async move {
                let n = format!("/n{}", i % 10);
                let got = match i % 6 {
                    0 => c
                        .get_data(&n)
                        .await
                        .map(|(d, _)| String::from_utf8(d).unwrap()),
                    1 => c.get_data("/missing").await.map(|_| "data".into()),
                    2 => c
                        .exists("/missing")
                        .await
                        .map(|s| format!("{}", s.is_some())),
                    3 => c
                        .set_data(&n, b"x", Some(1_000_000))
                        .await
                        .map(|_| "set".into()),
                    4 => c.get_children("/").await.map(|k| k.len().to_string()),
                    // every node in turn, its data unchanged (a notification all the same)
                    _ => {
                        let k = (i / 6) % 10;
                        c.set_data(&format!("/n{k}"), format!("v{k}").as_bytes(), None)
                            .await
                            .map(|_| "set".into())
                    }
                };
                (i, got)
            }
        });
        let results = bounded("a split-read burst", futures::future::join_all(calls)).await;
        for (i, got) in results {
            let ok = match (i % 6, &got) {
                (0, Ok(d)) => *d == format!("v{}", i % 10),
                (1, Err(Error::NoNode)) => true,
                (2, Ok(s)) => s == "false",
                (3, Err(Error::BadVersion)) => true,
                (4, Ok(k)) => k == "10",
                (5, Ok(s)) => s == "set",
                _ => false,
            };
            assert!(
                ok,
                "burst of {burst}: request {i} (kind {}) got {got:?}",
                i % 6
            );
        }
    }
}

/// Regression coverage (held): read batching with every reply split across reads. Through a
/// proxy that writes each server frame in two parts 2 ms apart (the cut inside the length or
/// the header), bursts of up to 300 pipelined requests, a third of them answered by a bare
/// error header (NoNode, BadVersion), with notifications between the replies: every request
/// gets its own answer and the connection is never dropped (a low-water mark waiting for bytes
/// that do not come would leave the burst's tail to the read timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_with_every_reply_split_across_reads_all_resolve() {
    let _serial = SERIAL.lock().await;
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("split-reads");
    let admin = Client::connect(&server.connect_string()).await.unwrap();
    admin.ensure_path(&root).await.unwrap();
    for i in 0..10 {
        admin
            .create(
                &format!("{root}/n{i}"),
                format!("v{i}").as_bytes(),
                CreateMode::Persistent,
            )
            .await
            .unwrap();
    }
    let proxy = FrameProxy::start(server.addr()).await;
    proxy.split.store(true, Ordering::SeqCst);
    let c = Client::builder(format!("{}{root}", proxy.connect_string()))
        .session_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    let mut states = c.state_stream();
    // one-shot data watches on every node: the sets below turn into notifications
    let mut watchers = Vec::new();
    for i in 0..10 {
        watchers.push(c.get_data_watch(&format!("/n{i}")).await.unwrap().2);
    }
    mixed_bursts(&c, &[9, 10, 17, 64, 65, 300]).await;
    same_session_and_watches_fired(&c, sid, &mut states, watchers, "throughout").await;
    c.close().await.unwrap();
    admin.close().await.unwrap();
}

/// docs/architecture.md, "Writes": "Pings, auth, closeSession, the priming packets and a
/// partly written buffer go at once, and the ping timer flushes whatever is held". A ping the
/// timer adds to an *empty* output buffer is not marked urgent (`conn.urgent |=
/// !conn.out.is_empty()` is computed before the ping is added), so with 8 or more requests
/// written and unanswered `should_flush` holds it like a request: it goes out only when the
/// timer fires again, a whole ping interval later. With the server's answers held up (here by
/// the proxy; a slow server does the same), the connection's read timeout (2/3 of the
/// session timeout after the last reply) comes first: the client gives the connection up
/// without ever having sent the ping it was due at 1/3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_due_while_many_requests_are_unanswered_is_held_instead_of_sent() {
    let _serial = SERIAL.lock().await;
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let proxy = FrameProxy::start(server.addr()).await;
    let c = Client::builder(proxy.connect_string())
        .session_timeout(Duration::from_secs(12))
        .connect()
        .await
        .expect("connect through the frame proxy");
    let t = c.status().session_timeout;
    assert_eq!(t, Duration::from_secs(12), "precondition: negotiated 12 s");
    c.exists("/").await.unwrap();
    // the last reply: the read timeout runs out 8 s from here; the burst goes 2 s later, so a
    // ping due 4 s after it (6 s from here) has 2 s to spare
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.stall.store(true, Ordering::SeqCst);
    let pings_before = proxy.pings.load(Ordering::SeqCst);
    let burst: Vec<_> = (0..10)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.exists("/").await })
        })
        .collect();
    common::wait_state(&c, zk_core::State::Suspended, Duration::from_secs(60)).await;
    let pings = proxy.pings.load(Ordering::SeqCst) - pings_before;
    proxy.stall.store(false, Ordering::SeqCst);
    for b in burst {
        let _ = bounded("a request of the burst", b).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
    assert!(
        pings > 0,
        "no ping reached the server while 10 requests were unanswered for a whole read \
         timeout ({:?}; ping interval {:?}): the ping was held in the output buffer",
        t * 2 / 3,
        t / 3
    );
}

/// Regression coverage (held): TLS connections never use the receive low-water mark, and the
/// replies rustls already holds decrypted (with the reader's own buffer empty) are not left
/// waiting: the same mixed bursts over TLS, with a 300 KiB reply among them (spread over
/// many TLS records), all resolve with no connection dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_over_tls_with_large_and_bare_error_replies_all_resolve() {
    let _serial = SERIAL.lock().await;
    common::init_tracing();
    let server = zk_testkit::ZkServer::builder()
        .tls(zk_testkit::TlsOptions::new().client_auth(zk_testkit::ClientAuth::None))
        .start()
        .expect("TLS server");
    let root = "/tls-bursts";
    let admin = Client::connect(&server.connect_string()).await.unwrap();
    admin.ensure_path(root).await.unwrap();
    for i in 0..10 {
        admin
            .create(
                &format!("{root}/n{i}"),
                format!("v{i}").as_bytes(),
                CreateMode::Persistent,
            )
            .await
            .unwrap();
    }
    // a child of n0: the root still has just the ten children the bursts count
    admin
        .create(
            &format!("{root}/n0/big"),
            &vec![7u8; 300 << 10],
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    let c = Client::builder(format!("{}{root}", server.secure_connect_string().unwrap()))
        .tls(zk_core::TlsConfig::new().ca_file(&server.tls_files().unwrap().ca))
        .session_timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(60))
        .connect()
        .await
        .expect("connect over TLS");
    let sid = c.session_id();
    let mut states = c.state_stream();
    let mut watchers = Vec::new();
    for i in 0..10 {
        watchers.push(c.get_data_watch(&format!("/n{i}")).await.unwrap().2);
    }
    // large replies pipelined between the small ones on the same connection
    let c2 = c.clone();
    let (_, bigs) = tokio::join!(mixed_bursts(&c, &[9, 65, 300]), async move {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(c2.get_data("/n0/big").await.map(|(d, _)| d.len()));
        }
        v
    });
    assert!(
        bigs.iter().all(|r| matches!(r, Ok(n) if *n == 300 << 10)),
        "the large reads: {bigs:?}"
    );
    same_session_and_watches_fired(&c, sid, &mut states, watchers, "over TLS").await;
    c.close().await.unwrap();
    admin.close().await.unwrap();
}

/// Regression coverage (held): docs/architecture.md, "Writes": "A held request is claimed as
/// sent (its timeout says `sent: true` ...)", and `close()`: "Requests already sent are answered
/// first". With 10 requests written and their replies held up, a create is held in the output
/// buffer: its deadline passes with `Timeout { sent: true }` (and it is applied once the
/// server hears it: the flag was right); a second held create and then `close()`: the
/// closeSession goes at once and takes the held create with it, which is answered before the
/// close completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_requests_time_out_as_sent_and_go_before_close_session() {
    let _serial = SERIAL.lock().await;
    common::init_tracing();
    let server = zk_testkit::shared_server();
    let root = common::unique_root("held-close");
    let admin = Client::connect(&server.connect_string()).await.unwrap();
    admin.ensure_path(&root).await.unwrap();
    let proxy = FrameProxy::start(server.addr()).await;
    let c = Client::builder(format!("{}{root}", proxy.connect_string()))
        .session_timeout(Duration::from_secs(30))
        .close_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    c.exists("/").await.unwrap();
    proxy.stall.store(true, Ordering::SeqCst);
    let burst: Vec<_> = (0..10)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.exists("/").await })
        })
        .collect();
    // the ten are written (fewer than 8 unanswered when they were taken)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = c
        .with_timeout(Duration::from_millis(500))
        .create("/held", b"", CreateMode::Persistent)
        .await;
    assert!(
        matches!(r, Err(Error::Timeout { sent: true })),
        "a held create whose deadline passed: {r:?} (expected Timeout {{ sent: true }})"
    );
    let c2 = c.clone();
    let held2 = tokio::spawn(async move { c2.create("/held2", b"", CreateMode::Persistent).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c3 = c.clone();
    let close = tokio::spawn(async move { c3.close().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.stall.store(false, Ordering::SeqCst);
    let closed = bounded("close()", close).await.unwrap();
    let h2 = bounded("the second held create", held2).await.unwrap();
    for b in burst {
        let r = bounded("a request of the burst", b).await.unwrap();
        assert!(r.is_ok(), "a request written before close(): {r:?}");
    }
    assert!(closed.is_ok(), "close(): {closed:?}");
    assert!(
        h2.is_ok(),
        "a create held when close() was called: {h2:?} (expected it answered first)"
    );
    for p in ["held", "held2"] {
        assert!(
            admin
                .exists(&format!("{root}/{p}"))
                .await
                .unwrap()
                .is_some(),
            "/{p} was applied"
        );
    }
    admin.close().await.unwrap();
}

/// Regression coverage (held): ZooKeeper's ordering promise (a client sees the watch event for
/// a change before it sees the change) with replies handled 64 to a pass: 20 nodes watched,
/// each set by the same client in one pipelined batch with 300 reads beside; when a set's
/// reply is in, the event of its own change is already delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_are_delivered_before_the_replies_that_follow_them_in_a_pass() {
    let _serial = SERIAL.lock().await;
    let c = common::shared("event-order").await;
    for round in 0..5 {
        let mut watchers = Vec::new();
        for i in 0..20 {
            let p = format!("/n{i}");
            if round == 0 {
                c.create(&p, b"", CreateMode::Persistent).await.unwrap();
            }
            watchers.push(c.get_data_watch(&p).await.unwrap().2);
        }
        let sets = (0..20).map(|i| {
            let c = c.clone();
            async move { c.set_data(&format!("/n{i}"), b"x", None).await }
        });
        let reads = (0..300).map(|i| {
            let c = c.clone();
            async move { c.exists(&format!("/n{}", i % 20)).await }
        });
        let mut watchers = watchers.into_iter().map(Some).collect::<Vec<_>>();
        let mut sets: futures::stream::FuturesOrdered<_> = sets.collect();
        let reads = futures::future::join_all(reads);
        let check = async {
            let mut i = 0;
            while let Some(r) = futures::StreamExt::next(&mut sets).await {
                r.unwrap();
                let w = watchers[i].take().unwrap();
                let ev = futures::FutureExt::now_or_never(w);
                assert!(
                    matches!(ev, Some(Ok(_))),
                    "round {round}: set_data(/n{i}) answered before its own watch event was \
                     delivered: {ev:?}"
                );
                i += 1;
            }
        };
        let (_, reads) = bounded("a batch of sets and reads", async {
            tokio::join!(check, reads)
        })
        .await;
        assert!(reads.iter().all(|r| r.is_ok()));
    }
    c.close().await.unwrap();
}

/// A custom `Connector` that hands over a socket whose receive low-water mark is already above
/// the kernel's default (30 bytes: the 41-byte connect reply still wakes the reader).
struct PresetLowat;

impl zk_core::Connector for PresetLowat {
    fn connect<'a>(&'a self, addr: &'a zk_core::HostAddr) -> zk_core::ConnectFuture<'a> {
        Box::pin(async move {
            use std::os::fd::AsRawFd;
            let s = TcpStream::connect((addr.host.as_str(), addr.port)).await?;
            let v: libc::c_int = 30;
            // SAFETY: a valid socket and a c_int option value of the size passed.
            let rc = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVLOWAT,
                    (&v as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0, "setsockopt SO_RCVLOWAT");
            Ok(Box::new(s) as Box<dyn zk_core::Transport>)
        })
    }
}

/// Read batching assumed that a plain TCP socket starts with the kernel's default mark of 1,
/// so with few replies owed it never set the mark, and a socket from a custom `Connector`
/// with a higher one kept it: a 20-byte reply (a bare error header) then never woke the
/// client, and the request waited for the read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_handed_over_with_a_raised_low_water_mark_still_reads_small_replies() {
    let _serial = SERIAL.lock().await;
    let server = zk_testkit::shared_server();
    let c = Client::builder(server.connect_string())
        .connector(PresetLowat)
        .session_timeout(Duration::from_secs(30))
        .connect()
        .await
        .expect("connect through a socket with SO_RCVLOWAT 30");
    for i in 0..20 {
        // a missing node: the reply is a 16-byte header in a 20-byte frame
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            c.exists(&format!("/no-such-node-{i}")),
        )
        .await;
        assert!(
            matches!(r, Ok(Ok(None))),
            "exists #{i} of a missing node through a socket handed over with SO_RCVLOWAT 30: \
             {r:?} (the 20-byte reply did not wake the client; read timeout 20 s)"
        );
    }
    c.close().await.ok();
}

/// After a burst: still session `sid`, no state change on `states` (no connection dropped,
/// `ctx` says when), and every data watch in `watchers` fired.
async fn same_session_and_watches_fired(
    c: &Client,
    sid: i64,
    states: &mut zk_core::StateStream,
    watchers: Vec<zk_core::OneshotWatcher>,
    ctx: &str,
) {
    assert_eq!(c.session_id(), sid);
    let changed = futures::FutureExt::now_or_never(futures::StreamExt::next(states));
    assert!(
        changed.is_none(),
        "no state change (no connection dropped) {ctx}: {changed:?}"
    );
    for w in watchers {
        let ev = bounded("a data watch fired by the sets", w).await;
        assert!(ev.is_ok(), "{ev:?}");
    }
}
