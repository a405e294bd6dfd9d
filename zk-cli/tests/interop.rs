//! `zk lock` processes and kazoo (Python) `Lock` processes interleaved on one path: one queue,
//! never two in the critical section at once.

mod common;

use common::*;
use std::process::Stdio;

const ROUNDS: usize = 8;

#[tokio::test(flavor = "multi_thread")]
async fn zk_lock_and_kazoo_lock_exclude_each_other() {
    let check = std::process::Command::new("python3")
        .args(["-c", "import kazoo"])
        .status();
    assert!(
        matches!(check, Ok(s) if s.success()),
        "python3 with kazoo is required for the interop test: run scripts/setup.sh"
    );
    let h = hosts();
    let c = client(&h).await;
    let p = unique("interop");
    let dir = TempDir::new();
    let w = dir.file("w");
    // the same check as the Python side, in sh
    let cs_open =
        format!("mkdir '{w}' 2>/dev/null || {{ echo VIOLATION two exclusive holders; exit 9; }}");
    let cs_close = format!("rmdir '{w}'");
    let cs = format!("{cs_open}; sleep 0.02; {cs_close}");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/kazoo_lock.py");
    let kazoo = |i: usize| {
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg(script)
            .args([
                &h,
                &p,
                &format!("py-{i}"),
                &ROUNDS.to_string(),
                dir.path().to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Proc::spawn(cmd)
    };

    // a zk holder first: kazoo contenders queue behind it and wait
    let go = dir.file("go");
    let hold = format!("{cs_open}; echo held; {}; {cs_close}", sh_wait_file(&go));
    let mut holder = Proc::start(
        &h,
        &["lock", &p, "--id", "zk-holder", "--", "sh", "-c", &hold],
    );
    holder.wait_stdout("held").await;
    let mut py: Vec<Proc> = (0..3).map(kazoo).collect();
    eventually("the kazoo contenders queue", || async {
        children(&c, &p).await.len() == 4
    })
    .await;
    // then zk contenders, behind them
    let mut zk_loops = Vec::new();
    for i in 0..3 {
        let (h, p, cs) = (h.clone(), p.clone(), cs.clone());
        zk_loops.push(tokio::spawn(async move {
            let id = format!("zk-{i}");
            let mut outputs = Vec::new();
            for _ in 0..ROUNDS {
                outputs.push(run(&h, &["lock", &p, "--id", &id, "--", "sh", "-c", &cs]).await);
            }
            outputs
        }));
    }
    eventually("the zk contenders queue", || async {
        children(&c, &p).await.len() == 7
    })
    .await;

    // one queue: kazoo's nodes and ours side by side, kazoo's layout, one sequence
    let names = children(&c, &p).await;
    let mut ids = Vec::new();
    for n in zk_recipes::sorted_contenders(&names) {
        ids.push(
            String::from_utf8(c.get_data(&format!("{p}/{}", n.name)).await.unwrap().0).unwrap(),
        );
    }
    assert_eq!(ids.len(), 7, "every child is a contender: {names:?}");
    assert_eq!(ids[0], "zk-holder");
    assert!(ids[1..4].iter().all(|i| i.starts_with("py-")), "{ids:?}");
    assert!(ids[4..].iter().all(|i| i.starts_with("zk-")), "{ids:?}");
    for k in &py {
        assert!(
            k.stdout().is_empty(),
            "kazoo got in while zk held the lock: {:?}",
            k.stdout()
        );
    }

    dir.touch("go");
    assert_eq!(holder.exit().await, 0);
    let mut lines = Vec::new();
    for k in py.iter_mut() {
        assert_eq!(
            k.exit().await,
            0,
            "kazoo worker: {:?} {:?}",
            k.stdout(),
            k.stderr()
        );
        lines.extend(k.stdout());
    }
    for l in zk_loops {
        for o in l.await.unwrap() {
            assert_eq!(o.code, 0, "zk lock round: {o:?}");
            assert!(!o.out().contains("VIOLATION"), "{o:?}");
        }
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("VIOLATION")),
        "{lines:?}"
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with("DONE")).count(), 3);
    // the first kazoo holder listed the zk contenders queued behind it
    let first = lines.iter().find(|l| l.starts_with("CONTENDERS")).unwrap();
    assert!(
        first.contains("\"zk-0\"") && first.contains("\"zk-2\""),
        "{first}"
    );
    assert_eq!(children(&c, &p).await, Vec::<String>::new(), "no node left");
}
