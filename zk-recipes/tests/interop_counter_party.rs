//! Counter and Party against real kazoo 2.11 processes (`tests/interop/counter_party.py`):
//! kazoo and Rust add to the same counter (kazoo's ASCII int and float layouts, and Curator's
//! 4-byte layout), and each side's party sees the other's members.

mod common;

use common::{bounded, python, python_run, shared_client, unique};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use zk_recipes::Counter;
use zk_testkit::shared_server;

/// The `VALUE` and `RAW` lines of a kazoo counter run.
fn value_and_raw(out: &str) -> (String, String) {
    let field = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} line in:\n{out}"))
            .trim()
            .to_owned()
    };
    (field("VALUE "), field("RAW "))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Rust tasks and kazoo processes add to one counter at the same time.
async fn mixed_adds(layout: &str, p: &str) -> String {
    let hosts = shared_server().connect_string();
    let pys: Vec<_> = (0..2)
        .map(|_| {
            let (hosts, p, layout) = (hosts.clone(), p.to_owned(), layout.to_owned());
            tokio::spawn(async move {
                let delta = if layout == "float" { "0.25" } else { "1" };
                python_run(
                    "counter_party.py",
                    &[&hosts, "counter", &p, "100", delta, &layout],
                )
                .await
            })
        })
        .collect();
    let mut rust = Vec::new();
    for _ in 0..4 {
        let c = shared_client().await;
        let (p, layout) = (p.to_owned(), layout.to_owned());
        rust.push(tokio::spawn(async move {
            for _ in 0..50 {
                match layout.as_str() {
                    "float" => {
                        Counter::new(&c, &p, 0.0).add(0.5).await.unwrap();
                    }
                    "curator" => {
                        Counter::new(&c, &p, 0)
                            .curator_layout()
                            .add(1)
                            .await
                            .unwrap();
                    }
                    _ => {
                        Counter::new(&c, &p, 0).add(1).await.unwrap();
                    }
                }
            }
        }));
    }
    for t in rust {
        bounded("rust adds", t).await.unwrap();
    }
    let mut last = String::new();
    for t in pys {
        last = bounded("kazoo adds", t).await.unwrap();
    }
    last
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_counter_int_rust_and_kazoo_add_to_one_counter() {
    let p = unique("interop-counter-int");
    mixed_adds("int", &p).await;
    let c = shared_client().await;
    // 2 x 100 by kazoo + 4 x 50 by Rust, none lost
    assert_eq!(Counter::new(&c, &p, 0).value().await.unwrap(), 400);
    assert_eq!(c.get_data(&p).await.unwrap().0, b"400");
    // kazoo reads what Rust wrote
    let out = python_run(
        "counter_party.py",
        &[
            &shared_server().connect_string(),
            "counter",
            &p,
            "1",
            "1",
            "int",
        ],
    )
    .await;
    assert_eq!(value_and_raw(&out), ("401".into(), hex(b"401")));
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_counter_float_rust_and_kazoo_agree_on_the_text() {
    let p = unique("interop-counter-float");
    mixed_adds("float", &p).await;
    let c = shared_client().await;
    // 2 x 100 x 0.25 + 4 x 50 x 0.5: exact in binary
    assert_eq!(Counter::new(&c, &p, 0.0).value().await.unwrap(), 150.0);
    assert_eq!(c.get_data(&p).await.unwrap().0, b"150.0");
    // a value whose repr is not trivial, written by Rust, read back by kazoo
    let q = unique("interop-counter-repr");
    Counter::new(&c, &q, 0.1).add(0.2).await.unwrap();
    let out = python_run(
        "counter_party.py",
        &[
            &shared_server().connect_string(),
            "counter",
            &q,
            "1",
            "0.0",
            "float",
        ],
    )
    .await;
    assert_eq!(
        value_and_raw(&out),
        ("0.30000000000000004".into(), hex(b"0.30000000000000004"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_counter_curator_layout_matches_kazoo_support_curator() {
    let p = unique("interop-counter-curator");
    let out = mixed_adds("curator", &p).await;
    let c = shared_client().await;
    assert_eq!(
        Counter::new(&c, &p, 0)
            .curator_layout()
            .value()
            .await
            .unwrap(),
        400
    );
    assert_eq!(c.get_data(&p).await.unwrap().0, 400i32.to_be_bytes());
    let (_, raw) = value_and_raw(&out);
    assert_eq!(raw.len(), 8, "kazoo wrote 4 bytes: {raw}");
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_counter_float_text_is_pythons_repr() {
    // the encoder against CPython itself, on values around every formatting boundary
    let values = [
        0.0,
        -0.0,
        1.0,
        0.1,
        0.5,
        1e-4,
        9.999e-5,
        1e-5,
        123.456,
        1e15,
        9.999999999999998e15,
        1e16,
        1.5e16,
        1e22,
        1e-300,
        5e-324,
        2.5e-8,
        -3.75,
        1.7976931348623157e308,
    ];
    let args: Vec<String> = values.iter().map(|v| format!("{v:e}")).collect();
    let mut argv = vec!["repr"];
    argv.extend(args.iter().map(String::as_str));
    let out = python_run("counter_party.py", &argv).await;
    let python: Vec<&str> = out.lines().collect();
    assert_eq!(python.len(), values.len());
    let c = shared_client().await;
    for (v, want) in values.iter().zip(python) {
        let p = unique("interop-repr");
        // -0.0 + v is v exactly, -0.0 included
        Counter::new(&c, &p, -0.0).add(*v).await.unwrap();
        let got = c.get_data(&p).await.unwrap().0;
        assert_eq!(String::from_utf8(got).unwrap(), want, "repr({v:e})");
    }
}

/// A kazoo party member process: joined once it answers; `list` and `leave` on stdin.
struct PyMember {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl PyMember {
    async fn start(kind: &str, path: &str, id: &str) -> PyMember {
        let hosts = shared_server().connect_string();
        let mut child = python("counter_party.py", &[&hosts, "party", kind, path, id]);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = bounded("kazoo joins", lines.next_line()).await.unwrap();
        assert_eq!(first.as_deref(), Some("JOINED"));
        PyMember { child, lines }
    }

    async fn send(&mut self, cmd: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    async fn line(&mut self, prefix: &str) -> String {
        let l = bounded("a kazoo answer", self.lines.next_line())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("kazoo ended before {prefix}"));
        l.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix}, got {l}"))
            .trim()
            .to_owned()
    }

    /// kazoo's `sorted(party)` and `len(party)`.
    async fn list(&mut self) -> (Vec<String>, usize) {
        self.send("list").await;
        let members = self.line("MEMBERS ").await;
        let len = self.line("LEN ").await.parse().unwrap();
        (parse_json_strings(&members), len)
    }

    async fn leave(mut self) -> String {
        self.send("leave").await;
        let r = self.line("LEFT ").await;
        bounded("kazoo exits", self.child.wait()).await.unwrap();
        r
    }
}

/// A JSON list of plain strings (no escapes in our identifiers).
fn parse_json_strings(s: &str) -> Vec<String> {
    s.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|x| x.trim().trim_matches('"').to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

async fn party_interop(kind: &str) {
    use zk_recipes::{Party, ShallowParty};
    let p = unique(&format!("interop-{kind}"));
    let c = shared_client().await;
    let mut py = PyMember::start(kind, &p, "py-1").await;
    enum Rs {
        Deep(Party),
        Shallow(ShallowParty),
    }
    let rs = if kind == "party" {
        Rs::Deep(Party::new(&c, &p, "rs-1"))
    } else {
        Rs::Shallow(ShallowParty::new(&c, &p, "rs-1").unwrap())
    };
    let (members, len) = match &rs {
        Rs::Deep(x) => {
            x.join().await.unwrap();
            (x.members().await.unwrap(), x.len().await.unwrap())
        }
        Rs::Shallow(x) => {
            x.join().await.unwrap();
            (x.members().await.unwrap(), x.len().await.unwrap())
        }
    };
    let mut sorted = members.clone();
    sorted.sort();
    assert_eq!(sorted, ["py-1", "rs-1"], "Rust sees the kazoo member");
    assert_eq!(len, 2);
    assert_eq!(
        py.list().await,
        (vec!["py-1".to_owned(), "rs-1".to_owned()], 2),
        "kazoo sees the Rust member"
    );
    // Rust leaves: kazoo sees it go; kazoo leaves: Rust sees it go
    match &rs {
        Rs::Deep(x) => assert!(x.leave().await.unwrap()),
        Rs::Shallow(x) => assert!(x.leave().await.unwrap()),
    }
    assert_eq!(py.list().await, (vec!["py-1".to_owned()], 1));
    assert_eq!(py.leave().await, "True");
    let members = match &rs {
        Rs::Deep(x) => x.members().await.unwrap(),
        Rs::Shallow(x) => x.members().await.unwrap(),
    };
    assert!(members.is_empty(), "{members:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_party_rust_and_kazoo_see_each_other() {
    party_interop("party").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_shallow_party_rust_and_kazoo_see_each_other() {
    party_interop("shallow").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn interop_kazoo_counter_adds_twice_after_a_lost_reply_ours_does_not() {
    // the documented kazoo bug, shown on kazoo itself: its retry re-runs the whole add
    let server = shared_server();
    let proxy = zk_testkit::FaultProxy::start(server.addr()).await.unwrap();
    let c = shared_client().await;
    let p = unique("interop-counter-lost-reply");
    Counter::new(&c, &p, 0).add(10).await.unwrap();
    proxy.cut_after_request(5); // setData: applied, reply cut
    let out = python_run(
        "counter_party.py",
        &[&proxy.connect_string(), "counter", &p, "1", "1", "int"],
    )
    .await;
    assert_eq!(proxy.cuts_fired(), 1);
    assert_eq!(
        value_and_raw(&out).0,
        "12",
        "kazoo: one += 1, two increments"
    );

    // ours, same fault: applied once, reported as unknown
    let via_proxy = common::client(&proxy.connect_string()).await;
    proxy.cut_after_request(5);
    let r = Counter::new(&via_proxy, &p, 0).add(1).await;
    assert_eq!(proxy.cuts_fired(), 2);
    assert!(r.is_err_and(|e| e.may_have_been_applied()));
    assert_eq!(Counter::new(&c, &p, 0).value().await.unwrap(), 13);
}
