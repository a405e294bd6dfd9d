//! `zk`: a command-line tool to inspect ZooKeeper and to run any program under a lock, as
//! leader, or behind a barrier. See `zk --help` and `docs/cli.md`.

mod barrier;
mod cli;
#[cfg(feature = "demo")]
mod demo;
mod duration;
mod error;
mod fourlw;
mod inspect;
mod output;
mod run;
mod session;
mod signals;
mod watch;

use clap::FromArgMatches;
use cli::{BarrierAction, Cli, Command, Global, LayoutArg, LostOn};
use error::Failure;
use zk_recipes::{Layout, LostPolicy};

fn main() {
    let matches = cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_tracing(cli.global.verbose);
    // one thread: CMD is spawned from the main thread, which lives as long as zk (what
    // PR_SET_PDEATHSIG needs), and a CLI needs no more
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zk: cannot start the runtime: {e}");
            std::process::exit(error::EXIT_FAILURE);
        }
    };
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(Failure::Usage(m)) => {
            // same shape as clap's own usage errors
            let e = cli::command().error(clap::error::ErrorKind::ValueValidation, m);
            let _ = e.print();
            error::EXIT_USAGE
        }
        Err(f) => {
            if !f.message().is_empty() {
                eprintln!("zk: {}", f.message());
            }
            f.code()
        }
    };
    std::process::exit(code);
}

fn init_tracing(verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => EnvFilter::new(f),
        _ => EnvFilter::new(match verbose {
            0 => "off",
            1 => "info",
            _ => "debug",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn layout(l: LayoutArg) -> Layout {
    match l {
        LayoutArg::Kazoo => Layout::Kazoo,
        LayoutArg::Curator => Layout::Curator,
    }
}

fn policy(l: LostOn) -> LostPolicy {
    match l {
        LostOn::Suspended => LostPolicy::Suspended,
        LostOn::Lost => LostPolicy::SessionLost,
    }
}

async fn with_client<F, Fut>(g: &Global, f: F) -> Result<i32, Failure>
where
    F: FnOnce(zk_core::Client) -> Fut,
    Fut: std::future::Future<Output = Result<i32, Failure>>,
{
    let client = session::connect(g).await?;
    let res = f(client.clone()).await;
    session::close(&client).await;
    res
}

async fn dispatch(cli: Cli) -> Result<i32, Failure> {
    let g = &cli.global;
    match cli.command {
        Command::Get {
            path,
            stat,
            raw,
            output,
        } => {
            inspect::check_get(raw, output.output)?;
            with_client(g, |c| async move {
                inspect::get(&c, &path, stat, raw, output.output).await
            })
            .await
        }
        Command::Set {
            path,
            data,
            file,
            version,
        } => {
            let data = inspect::read_data(&format!("set {path}"), data, file)?;
            with_client(g, |c| async move {
                inspect::set(&c, &path, data, version).await
            })
            .await
        }
        Command::Create {
            path,
            data,
            file,
            ephemeral,
            sequential,
            container,
            ttl,
            parents,
        } => {
            let args = inspect::CreateArgs {
                data: inspect::read_data(&format!("create {path}"), data, file)?,
                path,
                ephemeral,
                sequential,
                container,
                ttl,
                parents,
            };
            with_client(g, |c| async move { inspect::create(&c, args).await }).await
        }
        Command::Delete {
            path,
            version,
            recursive,
        } => {
            with_client(g, |c| async move {
                inspect::delete(&c, &path, version, recursive).await
            })
            .await
        }
        Command::Ls { path, output } => {
            with_client(
                g,
                |c| async move { inspect::ls(&c, &path, output.output).await },
            )
            .await
        }
        Command::Stat { path, output } => {
            with_client(g, |c| async move {
                inspect::stat(&c, &path, output.output).await
            })
            .await
        }
        Command::Tree { path, output } => {
            with_client(g, |c| async move {
                inspect::tree(&c, &path, output.output).await
            })
            .await
        }
        Command::Watch {
            path,
            children,
            recursive,
            count,
            output,
        } => {
            let args = watch::WatchArgs {
                path,
                children,
                recursive,
                count,
                format: output.output,
            };
            with_client(g, |c| async move { watch::watch(&c, args).await }).await
        }
        Command::Getacl { path, output } => {
            with_client(g, |c| async move {
                inspect::getacl(&c, &path, output.output).await
            })
            .await
        }
        Command::Setacl { path, acl, version } => {
            with_client(g, |c| async move {
                inspect::setacl(&c, &path, &acl.0, version).await
            })
            .await
        }
        Command::Whoami { output } => {
            with_client(
                g,
                |c| async move { inspect::whoami(&c, output.output).await },
            )
            .await
        }
        Command::Sync { path } => {
            with_client(g, |c| async move { inspect::sync(&c, &path).await }).await
        }
        Command::Ephemerals {
            path,
            owner,
            output,
        } => {
            with_client(g, |c| async move {
                inspect::ephemerals(&c, &path, owner, output.output).await
            })
            .await
        }
        Command::Count { path, output } => {
            with_client(g, |c| async move {
                inspect::count(&c, &path, output.output).await
            })
            .await
        }
        Command::Srvr { output } => fourlw::four_letter(g, fourlw::Word::Srvr, output.output).await,
        Command::Status { output } => {
            fourlw::four_letter(g, fourlw::Word::Mntr, output.output).await
        }
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cli::command(), "zk", &mut buf);
            error::out(&buf)?;
            Ok(0)
        }
        Command::Lock {
            path,
            read,
            write,
            run,
            held,
            cmd,
        } => {
            let side = match (read, write) {
                (true, _) => run::LockSide::Read,
                (false, true) => run::LockSide::Write,
                (false, false) => run::LockSide::Exclusive,
            };
            run::run(
                g,
                run::RunSpec {
                    recipe: run::Recipe::Lock { side },
                    path,
                    timeout: run.timeout,
                    id: run.identifier(),
                    kill_after: held.kill_after,
                    lost_on: policy(held.lost_on),
                    layout: layout(held.layout),
                    cmd,
                },
            )
            .await
        }
        Command::Semaphore {
            path,
            max,
            run,
            held,
            cmd,
        } => {
            run::run(
                g,
                run::RunSpec {
                    recipe: run::Recipe::Semaphore { max },
                    path,
                    timeout: run.timeout,
                    id: run.identifier(),
                    kill_after: held.kill_after,
                    lost_on: policy(held.lost_on),
                    layout: layout(held.layout),
                    cmd,
                },
            )
            .await
        }
        Command::Elect {
            path,
            run,
            held,
            cmd,
        } => {
            run::run(
                g,
                run::RunSpec {
                    recipe: run::Recipe::Elect,
                    path,
                    timeout: run.timeout,
                    id: run.identifier(),
                    kill_after: held.kill_after,
                    lost_on: policy(held.lost_on),
                    layout: layout(held.layout),
                    cmd,
                },
            )
            .await
        }
        Command::DoubleBarrier {
            path,
            count,
            run,
            cmd,
        } => {
            run::run(
                g,
                run::RunSpec {
                    recipe: run::Recipe::DoubleBarrier { count },
                    path,
                    timeout: run.timeout,
                    id: run.identifier(),
                    kill_after: std::time::Duration::ZERO,
                    lost_on: LostPolicy::default(),
                    layout: Layout::default(),
                    cmd,
                },
            )
            .await
        }
        Command::Barrier { action } => {
            let (a, path, timeout) = match action {
                BarrierAction::Create { path, timeout } => (barrier::Action::Create, path, timeout),
                BarrierAction::Remove { path, timeout } => (barrier::Action::Remove, path, timeout),
                BarrierAction::Wait { path, timeout } => (barrier::Action::Wait, path, timeout),
            };
            with_client(g, |c| async move {
                barrier::barrier(&c, a, &path, timeout).await
            })
            .await
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            real_zookeeper,
            install,
        } => demo::demo(g, real_zookeeper, install).await,
    }
}
