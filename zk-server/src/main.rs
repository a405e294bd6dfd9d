//! `zk-server --port 2181`: the in-process server as a program, for clients in other languages.

use clap::Parser;
use std::time::Duration;

/// A single-node ZooKeeper-compatible server for development and tests: in memory, or kept in
/// a data dir (snapshot + transaction log) with --data-dir.
#[derive(Parser, Debug)]
#[command(name = "zk-server", version)]
struct Args {
    /// Port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 2181)]
    port: u16,
    /// tickTime in milliseconds.
    #[arg(long, default_value_t = 2000)]
    tick_time: u64,
    /// minSessionTimeout in milliseconds (default 2 ticks).
    #[arg(long)]
    min_session_timeout: Option<u64>,
    /// maxSessionTimeout in milliseconds (default 20 ticks).
    #[arg(long)]
    max_session_timeout: Option<u64>,
    /// Keep the tree and the sessions in this directory (created if missing): a snapshot and an
    /// append-only transaction log, loaded again on the next start. Without it nothing is
    /// written.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// With --data-dir: do not fsync each change (a killed process still loses nothing; a
    /// machine crash may lose the last changes).
    #[arg(long, requires = "data_dir")]
    no_fsync: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    // logs on stderr: stdout's first line is the address, for whoever started the binary
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    let args = Args::parse();
    let mut b = zk_server::Server::builder()
        .port(args.port)
        .tick_time(Duration::from_millis(args.tick_time));
    if let Some(ms) = args.min_session_timeout {
        b = b.min_session_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = args.max_session_timeout {
        b = b.max_session_timeout(Duration::from_millis(ms));
    }
    if let Some(dir) = args.data_dir {
        b = b.data_dir(dir).fsync(!args.no_fsync);
    }
    let srv = b.start().await?;
    println!("zk-server listening on {}", srv.connect_string());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c().await?;
    srv.stop().await;
    Ok(())
}
