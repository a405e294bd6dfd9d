//! The public API's promises about types rather than behaviour (issue 13): every public type of
//! zk-core can cross threads, and every future a user may `tokio::spawn` is `Send`. Compiled,
//! not run against a server: a type or future that loses `Send` / `Sync` fails the build.
//! (zk-recipes/tests/api.rs does the same for the recipes.)

use std::time::Duration;
use zk_core::*;

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>(_: &T) {}

#[test]
fn public_types_cross_threads() {
    send_sync::<Client>();
    send_sync::<ClientBuilder>();
    send_sync::<Config>();
    send_sync::<AuthConfig>();
    send_sync::<SaslDigestMd5>();
    send_sync::<ServerVersion>();
    send_sync::<Error>();
    send_sync::<Transience>();
    send_sync::<Status>();
    send_sync::<State>();
    send_sync::<StateStream>();
    send_sync::<OneshotWatcher>();
    send_sync::<PersistentWatcher>();
    send_sync::<WatchedEvent>();
    send_sync::<Op>();
    send_sync::<OpResult>();
    send_sync::<ReadOp>();
    send_sync::<ReadResult>();
    send_sync::<CreateOptions>();
    send_sync::<CreateMode>();
    send_sync::<EnsembleConfig>();
    send_sync::<ServerEntry>();
    send_sync::<ReconfigOptions>();
    send_sync::<HostAddr>();
    send_sync::<TcpConnector>();
    send_sync::<Stat>();
    send_sync::<Acl>();
    send_sync::<Id>();
    send_sync::<ClientInfo>();
    send_sync::<PathError>();
    send_sync::<Box<dyn Connector>>();
    send::<Box<dyn Transport>>(&(Box::new(tokio::io::empty()) as Box<dyn Transport>));
    #[cfg(feature = "tls")]
    {
        send_sync::<TlsConfig>();
        send_sync::<TlsConnector>();
        send_sync::<TlsFiles>();
        send_sync::<ClientCertFiles>();
    }
}

/// Compiled, never run: the futures of every async fn of `Client`, `ClientBuilder` and `Config`
/// are `Send`.
#[allow(dead_code, clippy::let_underscore_future)]
fn client_futures_are_send(c: &Client, b: ClientBuilder, config: &Config) {
    send(&b.connect());
    send(&config.connect());
    send(&Client::connect("127.0.0.1:2181"));
    send(&c.create("/a", b"", CreateMode::Persistent));
    send(&c.create_with("/a", b"", &CreateOptions::new(CreateMode::Persistent)));
    send(&c.ensure_path("/a"));
    send(&c.delete("/a", None));
    send(&c.delete_recursive("/a"));
    send(&c.set_data("/a", b"", None));
    send(&c.set_acl("/a", &[], None));
    send(&c.multi(vec![]));
    send(&c.multi_read(vec![]));
    send(&c.exists("/a"));
    send(&c.exists_watch("/a"));
    send(&c.get_data("/a"));
    send(&c.get_data_watch("/a"));
    send(&c.get_acl("/a"));
    send(&c.get_children("/a"));
    send(&c.get_children_watch("/a"));
    send(&c.get_children_with_stat("/a"));
    send(&c.get_children_with_stat_watch("/a"));
    send(&c.get_config());
    send(&c.get_config_watch());
    send(&c.reconfig(&ReconfigOptions::incremental()));
    send(&c.update_server_list("127.0.0.1:2181"));
    send(&c.sync("/a"));
    send(&c.get_ephemerals("/"));
    send(&c.get_all_children_number("/"));
    send(&c.who_am_i());
    send(&c.add_watch("/a", AddWatchMode::Persistent));
    send(&c.remove_watches("/a", WatcherType::Any));
    send(&c.check_watches("/a", WatcherType::Any));
    send(&c.add_auth("digest", b"u:p"));
    send(&c.wait_for_state(State::Connected, Some(Duration::from_secs(1))));
    send(&c.close());
    send(&c.clone().detach());
}

/// `T: From<zk_proto::DecodeError>`, answered at compile time (an inherent const where the bound
/// holds shadows the trait's `false`).
struct FromDecode<T>(std::marker::PhantomData<T>);
trait NotFromDecode {
    const IMPLS: bool = false;
}
impl<T> NotFromDecode for FromDecode<T> {}
impl<T: From<zk_proto::DecodeError>> FromDecode<T> {
    const IMPLS: bool = true;
}

/// docs/stability.md: the wire layer (zk-proto) is not part of zk-core's API, which reaches it
/// only through the re-exported data types. A public `impl From<zk_proto::DecodeError> for
/// Error` put a zk-proto type that zk-core does not re-export on `Error`'s page.
#[test]
#[allow(clippy::assertions_on_constants)] // the constants are the answers of the probe
fn error_does_not_convert_from_a_wire_type() {
    assert!(
        FromDecode::<zk_proto::DecodeError>::IMPLS,
        "the probe sees an impl"
    );
    assert!(
        !FromDecode::<Error>::IMPLS,
        "zk_core::Error implements From<zk_proto::DecodeError>"
    );
}

/// `parse_connect_string` returned the chroot as `zk_proto::Chroot`, a wire-layer type zk-core
/// does not re-export (a user could hold it but not name it); it is the chroot path.
#[test]
fn parse_connect_string_speaks_in_types_zk_core_exports() {
    let (hosts, chroot): (Vec<HostAddr>, Option<String>) =
        parse_connect_string("a:1,[::1]:2/app").unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(chroot.as_deref(), Some("/app"));
    let (_, chroot) = parse_connect_string("a:1/").unwrap();
    assert_eq!(chroot, None);
}
