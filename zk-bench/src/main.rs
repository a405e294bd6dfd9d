//! `zk-bench`: throughput, latency, CPU and memory of `zk-core` and `zk-recipes` against a real
//! ZooKeeper. See `docs/benchmarks.md` and `zk-bench --help`.

mod alloc;
mod args;
mod notify;
mod report;
mod scenarios;
mod stub;
mod target;

use args::{Args, USAGE};
use report::Obj;
use std::io::Write as _;
use target::Target;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match Args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("zk-bench: {e}\n");
            }
            eprintln!("{USAGE}");
            std::process::exit(if e.is_empty() { 0 } else { 2 });
        }
    };
    match run(args) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("zk-bench: {e}");
            std::process::exit(1);
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn run(mut args: Args) -> Result<(), BoxError> {
    let hosts: Option<String> = args.take_opt("hosts")?;
    let threads: usize = args.take("threads", 1)?;
    let server_pid: Option<u32> = args.take_opt("server-pid")?;
    let label: Option<String> = args.take_opt("label")?;

    if args.scenario == "serve" {
        args.finish()?;
        return serve();
    }
    if args.scenario == "stub-serve" {
        let size: usize = args.take("size", 100)?;
        args.finish()?;
        return stub_serve(size);
    }
    let scenario = scenarios::Scenario::from_args(&mut args)?;
    args.finish()?;
    if scenario.counts_memory() {
        alloc::enable();
    }

    // A local server starts (blocking) before the runtime exists.
    let target = Target::new(hosts, server_pid)?;
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let server_cpu0 = target.server_cpu();
    let mut out = rt.block_on(scenario.run(&target))?;
    let server_cpu = match (server_cpu0, target.server_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    // Server CPU over the whole run (set-up included) unless the scenario measured its own
    // window.
    if out.get("server_cpu_seconds").is_none() {
        out.set(
            "server_cpu_seconds_whole_run",
            server_cpu.map(|d| d.as_secs_f64()),
        );
    }
    let mut line = Obj::new().with("client", "zk-rs");
    line.set("threads", threads);
    if let Some(l) = label {
        line.set("label", l);
    }
    line.merge(out);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", line.to_json())?;
    stdout.flush()?;
    // Close sessions before the server goes (the runtime drops the clients first).
    drop(rt);
    drop(target);
    Ok(())
}

/// `zk-bench serve`: one local server for `bench/compare.sh`, up until SIGTERM / SIGINT.
fn serve() -> Result<(), BoxError> {
    let server = zk_testkit::ZkServer::start()?;
    let line = Obj::new()
        .with("serve", server.connect_string())
        .with("server_pid", server.pid());
    println!("{}", line.to_json());
    std::io::stdout().flush()?;
    wait_for_signal()?;
    drop(server); // kills the JVM and removes its directory
    Ok(())
}

/// `zk-bench stub-serve`: the stub server of [`stub`] on a free port, until SIGTERM / SIGINT.
fn stub_serve(size: usize) -> Result<(), BoxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || stub::serve(listener, size));
    let line = Obj::new()
        .with("serve", addr.to_string())
        .with("server_pid", std::process::id());
    println!("{}", line.to_json());
    std::io::stdout().flush()?;
    wait_for_signal()
}

fn wait_for_signal() -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
        Ok::<_, std::io::Error>(())
    })?;
    Ok(())
}
