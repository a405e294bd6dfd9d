//! `zk`: a command-line tool to inspect ZooKeeper and to run any program under a lock, as
//! leader, or behind a barrier. See `zk --help` and `docs/cli.md`.

mod barrier;
mod cli;
#[cfg(feature = "demo")]
mod demo;
mod duration;
mod error;
mod inspect;
mod run;
mod session;
mod signals;
mod watch;

use clap::FromArgMatches;
use cli::{BarrierAction, Cli, Command, Global, LostOn};
use error::Failure;
use std::os::unix::ffi::OsStringExt;
use zk_recipes::LostPolicy;

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
        Command::Get { path, stat } => {
            with_client(g, |c| async move { inspect::get(&c, &path, stat).await }).await
        }
        Command::Set {
            path,
            data,
            version,
        } => {
            with_client(g, |c| async move {
                inspect::set(&c, &path, data, version).await
            })
            .await
        }
        Command::Create {
            path,
            data,
            ephemeral,
            sequential,
            container,
            ttl,
            parents,
        } => {
            let args = inspect::CreateArgs {
                path,
                data: data.map(|d| d.into_vec()).unwrap_or_default(),
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
        Command::Ls { path } => {
            with_client(g, |c| async move { inspect::ls(&c, &path).await }).await
        }
        Command::Stat { path } => {
            with_client(g, |c| async move { inspect::stat(&c, &path).await }).await
        }
        Command::Tree { path } => {
            with_client(g, |c| async move { inspect::tree(&c, &path).await }).await
        }
        Command::Watch {
            path,
            children,
            recursive,
            count,
        } => {
            let args = watch::WatchArgs {
                path,
                children,
                recursive,
                count,
            };
            with_client(g, |c| async move { watch::watch(&c, args).await }).await
        }
        Command::Lock {
            path,
            read,
            run,
            held,
            cmd,
        } => {
            run::run(
                g,
                run::RunSpec {
                    recipe: run::Recipe::Lock { read },
                    path,
                    timeout: run.timeout,
                    kill_after: held.kill_after,
                    lost_on: policy(held.lost_on),
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
                    kill_after: held.kill_after,
                    lost_on: policy(held.lost_on),
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
                    kill_after: held.kill_after,
                    lost_on: policy(held.lost_on),
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
                    kill_after: std::time::Duration::ZERO,
                    lost_on: LostPolicy::default(),
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
        Command::Demo { install } => demo::demo(g, install).await,
    }
}
