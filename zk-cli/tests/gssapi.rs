//! `zk --sasl gssapi[:PRINCIPAL]` (feature `gssapi`) against a real KDC and a Kerberos-enabled
//! ZooKeeper from the test kit. Every zk gets its Kerberos environment (KRB5_CONFIG,
//! KRB5CCNAME) as a user's shell would give it: alice's ticket from `kinit -k`.

mod common;

use common::*;
use std::path::Path;
use zk_testkit::{Kdc, ZkServer};

/// Runs `zk args...` with the KDC's krb5.conf and the ticket cache `ccache`.
async fn zk_krb(kdc: &Kdc, ccache: &Path, args: &[&str]) -> Output {
    let mut c = zk(args);
    c.env("KRB5_CONFIG", kdc.krb5_conf())
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .env_remove("KRB5_CLIENT_KTNAME");
    run_cmd(c).await
}

#[tokio::test(flavor = "multi_thread")]
async fn zk_sasl_gssapi_authenticates_and_names_what_is_missing() {
    let kdc = Kdc::start().expect("KDC");
    let keytab = kdc.add_principal("alice").unwrap();
    let alice = kdc.principal("alice");
    let ccache = kdc.krb5_conf().with_file_name("alice.ccache");
    let kinit = std::process::Command::new("kinit")
        .arg("-k")
        .arg("-t")
        .arg(&keytab)
        .arg(&alice)
        .env("KRB5_CONFIG", kdc.krb5_conf())
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .status()
        .expect("kinit (krb5-user)");
    assert!(kinit.success(), "kinit: {kinit}");
    let server = ZkServer::builder().sasl_kerberos(&kdc).start().unwrap();
    // the server's principal is zookeeper/localhost: name the host so
    let hosts = format!("localhost:{}", server.port());
    let p = unique("gssapi");

    let o = zk_krb(
        &kdc,
        &ccache,
        &["--hosts", &hosts, "--sasl", "gssapi", "whoami"],
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.out().lines().any(|l| l == format!("sasl: {alice}")),
        "{o:?}"
    );
    let acl = format!("sasl:{alice}:cdrwa");
    let with_alice = ["--hosts", &hosts, "--sasl", "gssapi:alice"];
    let o = zk_krb(
        &kdc,
        &ccache,
        &[&with_alice[..], &["create", &p, "k"]].concat(),
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = zk_krb(
        &kdc,
        &ccache,
        &[&with_alice[..], &["setacl", &p, &acl]].concat(),
    )
    .await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = zk_krb(&kdc, &ccache, &[&with_alice[..], &["get", &p]].concat()).await;
    assert_eq!((o.code, o.out().trim()), (0, "k"), "{o:?}");
    // without --sasl: not authorized
    let o = zk_krb(&kdc, &ccache, &["--hosts", &hosts, "get", &p]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("not authorized"), "{o:?}");

    // a principal without a ticket or key: exit 1, naming the missing credentials
    let o = zk_krb(
        &kdc,
        &ccache,
        &["--hosts", &hosts, "--sasl", "gssapi:nobody", "get", &p],
    )
    .await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .contains("cannot get Kerberos credentials for principal nobody"),
        "{o:?}"
    );
    // the host as written: 127.0.0.1 asks for zookeeper/127.0.0.1, which the KDC lacks
    let o = zk_krb(
        &kdc,
        &ccache,
        &[
            "--hosts",
            &server.connect_string(),
            "--sasl",
            "gssapi",
            "get",
            &p,
        ],
    )
    .await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("zookeeper/127.0.0.1")
            && o.stderr.contains("not found in Kerberos database"),
        "{o:?}"
    );
}
