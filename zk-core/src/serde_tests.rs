//! Feature `serde`: round trips through serde_json and the `Config` file format.

use crate::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::time::Duration;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T) -> String {
    let json = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(&back, v, "round trip of {json}");
    json
}

#[test]
fn data_types_round_trip_through_json() {
    let stat = Stat {
        czxid: 1,
        mzxid: 2,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        version: 3,
        cversion: 4,
        aversion: 5,
        ephemeral_owner: 0x1234_5678_9abc,
        data_length: 6,
        num_children: 7,
        pzxid: 8,
    };
    let json = round_trip(&stat);
    assert!(
        json.contains("\"ephemeral_owner\":20015998343868"),
        "{json}"
    );

    assert_eq!(
        round_trip(&Id::new("world", "anyone")),
        r#"{"scheme":"world","id":"anyone"}"#
    );
    for acl in [
        Acl::open_unsafe(),
        Acl::read_unsafe(),
        Acl::creator_all(),
        vec![Acl::digest(Perms::READ | Perms::WRITE, "u", "p")],
    ] {
        round_trip(&acl);
    }
    assert_eq!(
        round_trip(&Acl::open_unsafe()),
        r#"[{"perms":"cdrwa","id":{"scheme":"world","id":"anyone"}}]"#
    );

    for mode in [
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential,
        CreateMode::Container,
        CreateMode::PersistentWithTtl(Duration::from_secs(600)),
        CreateMode::PersistentSequentialWithTtl(Duration::from_millis(1500)),
    ] {
        round_trip(&mode);
    }
    assert_eq!(round_trip(&CreateMode::Ephemeral), r#""Ephemeral""#);
    assert_eq!(
        round_trip(&CreateMode::PersistentWithTtl(Duration::from_secs(600))),
        r#"{"PersistentWithTtl":"10m"}"#
    );

    for code in -1..=7 {
        if let Some(t) = EventType::from_code(code) {
            round_trip(&t);
        }
    }
    for code in -112..=7 {
        if let Some(k) = KeeperState::from_code(code) {
            round_trip(&k);
        }
    }
    for s in [State::Connected, State::Suspended, State::Lost] {
        round_trip(&s);
    }
    assert_eq!(round_trip(&State::Suspended), r#""Suspended""#);

    let ev = WatchedEvent {
        event_type: EventType::NodeDataChanged,
        path: "/a/b".into(),
    };
    assert_eq!(
        round_trip(&ev),
        r#"{"event_type":"NodeDataChanged","path":"/a/b"}"#
    );
    round_trip(&ClientInfo {
        auth_scheme: "ip".into(),
        user: "127.0.0.1".into(),
    });
}

#[test]
fn every_valid_perms_value_round_trips_as_zkcli_letters() {
    for bits in 0..=Perms::ALL.0 {
        round_trip(&Perms(bits));
    }
    assert_eq!(round_trip(&Perms::ALL), r#""cdrwa""#);
    assert_eq!(round_trip(&(Perms::READ | Perms::ADMIN)), r#""ra""#);
    assert_eq!(round_trip(&Perms(0)), r#""""#);
    // any order reads
    assert_eq!(
        serde_json::from_str::<Perms>(r#""awrdc""#).unwrap(),
        Perms::ALL
    );
    let e = serde_json::from_str::<Perms>(r#""rwx""#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'x' is not one of c, d, r, w, a"), "{e}");
    let e = serde_json::to_string(&Perms(64)).unwrap_err().to_string();
    assert!(e.contains("0x40"), "{e}");
}

#[test]
fn status_serializes_without_the_session_password() {
    let mut st = Status::initial(Duration::from_secs(10));
    st.password = b"SECRET-PASSWORD!".to_vec();
    st.session_id = 0x42;
    let json = serde_json::to_string(&st).unwrap();
    assert_eq!(
        json,
        r#"{"state":"Lost","keeper_state":"Disconnected","session_id":66,"session_timeout":"10s","generation":0,"server":null}"#
    );
    assert!(!json.contains("password") && !json.contains("SECRET"));
}

#[test]
fn config_round_trips_and_leaves_out_what_is_unset() {
    let mut c = Config::new("zk1:2181,zk2:2181/app");
    assert_eq!(
        round_trip(&c),
        r#"{"connect_string":"zk1:2181,zk2:2181/app","session_timeout":"10s","read_only":false,"reconnect_after_expiry":true,"close_timeout":"2s","max_data_len":1048575,"max_request_len":1048575,"max_frame_len":16777216}"#
    );
    // only connect_string is required
    let minimal: Config =
        serde_json::from_str(r#"{"connect_string":"zk1:2181,zk2:2181/app"}"#).unwrap();
    assert_eq!(minimal, c);

    c.session_timeout = Duration::from_secs(30);
    c.connect_timeout = Some(Duration::from_millis(2500));
    c.request_timeout = Some(Duration::from_secs(5));
    c.read_only = true;
    c.reconnect_after_expiry = false;
    c.max_data_len = 1000;
    c.auth.push(AuthConfig::new("digest", "svc:secret"));
    c.sasl_digest_md5 = Some(SaslDigestMd5::new("svc", "pw"));
    c.ensemble_tracker = true;
    c.server_version = crate::ServerVersion::V3_9;
    c.ensemble_tracker_secure_ports = vec![(2181, 2281)];
    #[cfg(feature = "tls")]
    {
        c.tls = Some(TlsFiles {
            ca_file: Some("/etc/zk/ca.pem".into()),
            client_cert: Some(ClientCertFiles {
                cert_file: "/etc/zk/c.pem".into(),
                key_file: "/etc/zk/c.key".into(),
            }),
        });
    }
    let json = round_trip(&c);
    assert!(json.contains(r#""connect_timeout":"2500ms""#), "{json}");
    assert!(json.contains(r#""ensemble_tracker":true"#), "{json}");
    assert!(json.contains(r#""server_version":"3.9""#), "{json}");
    assert!(
        json.contains(r#""ensemble_tracker_secure_ports":[[2181,2281]]"#),
        "{json}"
    );
    assert!(!round_trip(&minimal).contains("server_version"));
    assert!(
        serde_json::from_str::<Config>(r#"{"connect_string":"h:1","server_version":"3.10"}"#)
            .is_err()
    );
}

#[test]
fn config_durations_read_as_strings_with_units_or_as_milliseconds() {
    let c: Config = serde_json::from_str(
        r#"{"connect_string":"h:1","session_timeout":"15s","close_timeout":750,
            "connect_timeout":"1m","request_timeout":2000}"#,
    )
    .unwrap();
    assert_eq!(c.session_timeout, Duration::from_secs(15));
    assert_eq!(c.close_timeout, Duration::from_millis(750));
    assert_eq!(c.connect_timeout, Some(Duration::from_secs(60)));
    assert_eq!(c.request_timeout, Some(Duration::from_secs(2)));

    for (bad, says) in [
        (r#""15""#, "no unit"),
        (r#""15 fortnights""#, "unknown unit"),
        ("-5", "negative"),
        ("1.5", "a duration"),
    ] {
        let json = format!(r#"{{"connect_string":"h:1","session_timeout":{bad}}}"#);
        let e = serde_json::from_str::<Config>(&json)
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn config_with_an_unknown_field_fails_naming_it() {
    let e = serde_json::from_str::<Config>(r#"{"connect_string":"h:1","sesion_timeout":"10s"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `sesion_timeout`"), "{e}");
    // nested too
    let e = serde_json::from_str::<Config>(
        r#"{"connect_string":"h:1","auth":[{"scheme":"digest","credentials":"a:b"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown field `credentials`"), "{e}");
    let e = serde_json::from_str::<Config>(r#"{"session_timeout":"10s"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing field `connect_string`"), "{e}");
}

#[test]
fn debug_of_a_config_shows_no_secret() {
    let mut c = Config::new("h:1");
    c.auth.push(AuthConfig::new("digest", "svc:SECRET1"));
    c.sasl_digest_md5 = Some(SaslDigestMd5::new("svc", "SECRET2"));
    let d = format!("{c:?} {c:#?}");
    assert!(!d.contains("SECRET"), "{d}");
    assert!(
        d.contains("digest:<redacted>") && d.contains("\"svc\""),
        "{d}"
    );
    // the builder made from it redacts too
    let b = format!("{:?}", c.builder());
    assert!(
        !b.contains("SECRET") && b.contains("digest:<redacted>"),
        "{b}"
    );
}

#[test]
fn config_builder_carries_every_setting() {
    let mut c: Config = "h:1/app".parse().unwrap();
    c.session_timeout = Duration::from_secs(30);
    c.connect_timeout = Some(Duration::from_secs(3));
    c.request_timeout = Some(Duration::from_secs(4));
    c.close_timeout = Duration::from_secs(5);
    c.read_only = true;
    c.reconnect_after_expiry = false;
    c.max_data_len = 10;
    c.max_request_len = 20;
    c.max_frame_len = 4096;
    let b = c.builder();
    assert_eq!(b.connect_string, "h:1/app");
    assert_eq!(b.session_timeout, c.session_timeout);
    assert_eq!(b.connect_timeout, c.connect_timeout);
    assert_eq!(b.request_timeout, c.request_timeout);
    assert_eq!(b.close_timeout, c.close_timeout);
    assert!(b.can_be_read_only && !b.reconnect_after_expiry);
    assert_eq!(
        (b.max_data_len, b.max_request_len, b.max_frame_len),
        (10, 20, 4096)
    );
    assert!("h:notaport".parse::<Config>().is_err());
}

/// Binary formats (not human-readable) carry durations as exact `(seconds, nanoseconds)`.
#[test]
fn binary_formats_round_trip_exact_durations() {
    fn cbor<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T) {
        let mut bytes = Vec::new();
        ciborium::into_writer(v, &mut bytes).unwrap();
        let back: T = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(&back, v);
    }
    cbor(&CreateMode::PersistentWithTtl(Duration::new(
        5,
        123_456_789,
    )));
    cbor(&Acl::open_unsafe());
    cbor(&Stat::default());
    let mut c = Config::new("h:1");
    c.connect_timeout = Some(Duration::new(1, 1));
    c.auth.push(AuthConfig::new("digest", "a:b"));
    cbor(&c);
}
