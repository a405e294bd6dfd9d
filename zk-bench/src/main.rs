//! `zk-bench`: throughput, latency, CPU and memory of `zk-core` and `zk-recipes` against a real
//! ZooKeeper. See `docs/benchmarks.md` and `zk-bench --help`.

mod alloc;
mod args;
mod notify;
mod report;
mod scenarios;
mod stub;
mod target;

use args::{Cli, Command};
use clap::Parser as _;
use report::Obj;
use std::io::Write as _;
use target::Target;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

fn main() {
    // Errors in the arguments: a message naming the option, the usage, exit code 2;
    // --help: exit code 0.
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("zk-bench: {e}");
        std::process::exit(1);
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn run(cli: Cli) -> Result<(), BoxError> {
    let Cli {
        hosts,
        threads,
        server_pid,
        label,
        command,
    } = cli;
    let scenario = match command {
        Command::Serve => return serve(),
        Command::StubServe { size } => return stub_serve(size),
        c => scenarios::Scenario::from_command(c).expect("a scenario"),
    };
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
