//! A service reads its ZooKeeper settings from its own configuration file (JSON, through
//! zk-core's `serde` feature), prints them (credentials redacted) and connects with them.
//!
//! `cargo run -p zk-examples --example config_file [-- --config FILE] [--hosts H]`
//!
//! Without `--config` it reads the sample `examples/zk-config.json`, and its connect string is
//! replaced by a local zk-server this example starts (or by `--hosts H`). With `--config FILE`
//! the file's connect string is used as it is, unless `--hosts` is given.

use zk_core::{Acl, Client, Config, CreateMode, CreateOptions, Error};
use zk_examples::{hosts, Timeline};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Timeline::start();
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1).cloned());
    let path = given
        .clone()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/zk-config.json").to_string());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // a typo in a field name fails here, naming the field
    let mut config: Config = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;

    let mut _server = None;
    if given.is_none() || args.iter().any(|a| a == "--hosts") {
        let (h, server) = hosts().await?;
        config.connect_string = h;
        _server = server;
    }
    t.say(format!("settings from {path}:\n{config:#?}"));

    let client = config.connect().await?;
    t.say(format!("connected, session {:#x}", client.session_id()));

    // readable and writable only by the identity of the file's digest credential
    let node = format!("/config-example-{}", std::process::id());
    client
        .create_with(
            &node,
            b"hello",
            &CreateOptions::new(CreateMode::Ephemeral).with_acl(Acl::creator_all()),
        )
        .await?;
    let (acl, _) = client.get_acl(&node).await?;
    t.say(format!("created {node} with ACL {acl:?}"));

    let stranger = Client::connect(&config.connect_string).await?;
    match stranger.get_data(&node).await {
        Err(Error::NoAuth) => t.say("a client without the credential: NoAuth"),
        other => t.say(format!("a client without the credential: {other:?}")),
    }
    stranger.close().await?;
    client.close().await?;
    Ok(())
}
