//! SASL GSSAPI while the KDC is down: a binary of its own, because it stops its KDC (the
//! Kerberos library takes the KDC from `KRB5_CONFIG`, process-wide; sasl_gssapi.rs shares one
//! KDC among its tests).

mod common;

use common::wait_state;
use std::time::Duration;
use zk_core::{Client, Error, SaslGssapi, State};
use zk_testkit::{Kdc, ZkServer};

/// A client that got its tickets re-authenticates after the server restarts although the KDC
/// is gone meanwhile (the tickets are kept, as the Java client keeps them); a new client cannot
/// get any, and says that no KDC answered.
#[tokio::test(flavor = "multi_thread")]
async fn gssapi_reauthenticates_after_a_server_restart_and_a_stopped_kdc_is_a_clear_error() {
    common::init_tracing();
    let kdc = Kdc::start().expect("KDC");
    let keytab = kdc.add_principal("alice").unwrap();
    std::env::set_var("KRB5_CONFIG", kdc.krb5_conf());
    std::env::set_var(
        "KRB5CCNAME",
        format!(
            "FILE:{}",
            kdc.krb5_conf().with_file_name("none.ccache").display()
        ),
    );
    let server = ZkServer::builder().sasl_kerberos(&kdc).start().unwrap();
    let login = SaslGssapi::new()
        .principal(kdc.principal("alice"))
        .keytab(&keytab)
        .service_host("localhost");
    let alice = Client::builder(server.connect_string())
        .session_timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(30))
        .sasl_gssapi(login.clone())
        .connect()
        .await
        .expect("alice authenticates");
    let sid = alice.session_id();

    kdc.stop().unwrap();
    server.restart().unwrap();
    wait_state(&alice, State::Connected, Duration::from_secs(40)).await;
    assert_eq!(alice.session_id(), sid);
    let ids = alice.who_am_i().await.unwrap();
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == kdc.principal("alice")),
        "after the restart: {ids:?}"
    );

    let e = Client::builder(server.connect_string())
        .connect_timeout(Duration::from_secs(30))
        .sasl_gssapi(login)
        .connect()
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::SaslFailed { .. }), "{e:?}");
    assert!(
        msg.contains("Cannot contact any KDC") && msg.contains("no KDC of the realm answered"),
        "{msg}"
    );
}
