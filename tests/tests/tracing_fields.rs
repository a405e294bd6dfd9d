//! Every log line of a client carries the session span's fields (its number in the process,
//! its hosts, its session id), so the lines of two clients can be told apart. Its own test
//! binary: it installs the process-wide subscriber.

mod common;

use zk_core::Client;

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_of_two_clients_carry_their_client_hosts_and_session_id() {
    let buf = common::LogBuf::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_env_filter("zk_core=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let server = zk_testkit::shared_server();
    let a = Client::connect(&server.connect_string()).await.unwrap();
    let b = Client::connect(&server.connect_string()).await.unwrap();
    let (ida, idb) = (a.session_id(), b.session_id());
    a.close().await.unwrap();
    b.close().await.unwrap();
    let log = buf.text();
    let port = server.addr().port();
    for id in [ida, idb] {
        let sid = format!("session_id={id:#x}");
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(&sid)).collect();
        assert!(!lines.is_empty(), "no line with {sid}:\n{log}");
        assert!(
            lines
                .iter()
                .all(|l| l.contains("zk_session{client=") && l.contains(&format!(":{port}"))),
            "a line of session {id:#x} without the client number or hosts:\n{log}"
        );
    }
    let client_of = |id: i64| {
        let sid = format!("session_id={id:#x}");
        let line = log.lines().find(|l| l.contains(&sid)).unwrap().to_owned();
        let from = line.find("client=").unwrap() + "client=".len();
        line[from..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    };
    assert_ne!(
        client_of(ida),
        client_of(idb),
        "two clients, one number:\n{log}"
    );
}
