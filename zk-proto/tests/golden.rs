//! Golden frames for every record: exact bytes for the layouts PROTOCOL.md checked against a
//! live server, round trips for all, truncation and split-point behaviour, and random input.

use bytes::{Bytes, BytesMut};
use rand::{Rng, SeedableRng};
use zk_proto::frame::FrameCodec;
use zk_proto::*;

fn stat() -> Stat {
    Stat {
        czxid: 0x0102030405060708,
        mzxid: 2,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        version: 3,
        cversion: -1,
        aversion: 5,
        ephemeral_owner: 0x0100_0000_0000_0001,
        data_length: 7,
        num_children: 8,
        pzxid: 9,
    }
}

fn acl() -> Vec<Acl> {
    vec![
        Acl::new(Perms::ALL, "world", "anyone"),
        Acl::digest(Perms::READ | Perms::WRITE, "u", "p"),
    ]
}

/// Round trip, every strict prefix is an error (never a panic), trailing bytes are ignored.
fn check<R: Record + PartialEq + std::fmt::Debug>(v: R) -> Vec<u8> {
    let b = v.to_bytes().to_vec();
    assert_eq!(R::from_bytes(&b).unwrap(), v);
    let mut longer = b.clone();
    longer.extend_from_slice(&[0xAA; 3]);
    if !matches!(
        std::any::type_name::<R>(),
        n if n.ends_with("ConnectRequest") || n.ends_with("ConnectResponse") || n.ends_with("SetWatches")
    ) {
        // records with optional trailing fields read the extra bytes as those fields
        assert_eq!(R::from_bytes(&longer).unwrap(), v);
    }
    for cut in 0..b.len() {
        let _ = R::from_bytes(&b[..cut]); // must not panic
    }
    b
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn connect_request_is_45_bytes() {
    let b = check(ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0x10,
        timeout_ms: 30000,
        session_id: 0x0100_0000_0000_0002,
        passwd: vec![0xab; 16],
        read_only: Some(false),
    });
    assert_eq!(b.len(), 45);
    assert_eq!(
        hex(&b),
        "00000000\
         0000000000000010\
         00007530\
         0100000000000002\
         00000010abababababababababababababababab\
         00"
    );
    // without the trailing readOnly byte (an "old client")
    let old = ConnectRequest {
        read_only: None,
        ..ConnectRequest::from_bytes(&b).unwrap()
    };
    assert_eq!(old.to_bytes().len(), 44);
    assert_eq!(ConnectRequest::from_bytes(&old.to_bytes()).unwrap(), old);
}

#[test]
fn connect_response_is_37_bytes_and_short_frames_are_not_responses() {
    let b = check(ConnectResponse {
        protocol_version: 0,
        timeout_ms: 4000,
        session_id: 0x0100_0000_0000_0002,
        passwd: vec![1; 16],
        read_only: true,
    });
    assert_eq!(b.len(), 37);
    assert!(classify_connect_frame(&b).unwrap().read_only);
    assert_eq!(classify_connect_frame(&b[..36]).unwrap().timeout_ms, 4000);
    // what a read-only server sends a new session it refuses: a bare ReplyHeader, err -119
    let refusal = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x89];
    assert_eq!(classify_connect_frame(&refusal).unwrap_err(), Some(-119));
    assert_eq!(classify_connect_frame(&[0; 20]).unwrap_err(), None);
}

#[test]
fn headers() {
    assert_eq!(
        hex(&check(RequestHeader { xid: -2, op: 11 })),
        "fffffffe0000000b"
    );
    let b = check(ReplyHeader {
        xid: -1,
        zxid: -1,
        err: 0,
    });
    assert_eq!(hex(&b), "ffffffffffffffffffffffff00000000");
    assert_eq!(b.len(), REPLY_HEADER_LEN);
}

#[test]
fn every_request_record() {
    let create = CreateRequest {
        path: "/a".into(),
        data: b"xy".to_vec(),
        acl: vec![Acl::new(Perms::ALL, "world", "anyone")],
        flags: 3,
    };
    assert_eq!(
        hex(&check(create.clone())),
        "000000022f61\
         000000027879\
         00000001 0000001f 00000005776f726c64 00000006616e796f6e65\
         00000003"
            .replace(' ', "")
    );
    check(CreateTtlRequest {
        path: "/t".into(),
        data: vec![],
        acl: acl(),
        flags: 5,
        ttl: 1000,
    });
    check(PathVersionRequest {
        path: "/d".into(),
        version: -1,
    });
    assert_eq!(
        hex(&check(PathWatchRequest {
            path: "/w".into(),
            watch: true
        })),
        "000000022f7701"
    );
    check(PathRecord { path: "/".into() });
    check(SetDataRequest {
        path: "/s".into(),
        data: vec![0; 100],
        version: 4,
    });
    check(SetAclRequest {
        path: "/s".into(),
        acl: acl(),
        version: 0,
    });
    check(PathModeRequest {
        path: "/m".into(),
        mode: 1,
    });
    check(AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: b"u:p".to_vec(),
    });
    let sw = SetWatches {
        relative_zxid: 77,
        data: vec!["/a".into()],
        exist: vec![],
        child: vec!["/b".into(), "/c".into()],
        persistent: vec![],
        persistent_recursive: vec![],
        v2: false,
    };
    check(sw.clone());
    check(SetWatches {
        persistent: vec!["/p".into()],
        persistent_recursive: vec!["/r".into()],
        v2: true,
        ..sw
    });
    let multi = MultiRequest {
        ops: vec![
            MultiOp::Create(15, create),
            MultiOp::CreateTtl(CreateTtlRequest {
                path: "/t".into(),
                data: vec![],
                acl: acl(),
                flags: 6,
                ttl: 5,
            }),
            MultiOp::Delete(PathVersionRequest {
                path: "/d".into(),
                version: 1,
            }),
            MultiOp::SetData(SetDataRequest {
                path: "/s".into(),
                data: b"z".to_vec(),
                version: -1,
            }),
            MultiOp::Check(PathVersionRequest {
                path: "/c".into(),
                version: 2,
            }),
        ],
    };
    let b = check(multi);
    // ends with the {-1, true, -1} header
    assert_eq!(hex(&b[b.len() - 9..]), "ffffffff01ffffffff");
    check(MultiRequest {
        ops: vec![
            MultiOp::GetData(PathWatchRequest {
                path: "/a".into(),
                watch: false,
            }),
            MultiOp::GetChildren(PathWatchRequest {
                path: "/b".into(),
                watch: false,
            }),
        ],
    });
    check(WatcherEvent {
        event_type: 3,
        state: 3,
        path: "/x".into(),
    });
}

#[test]
fn every_response_record() {
    assert_eq!(stat().to_bytes().len(), STAT_LEN);
    check(stat());
    check(Create2Response {
        path: "/a0000000001".into(),
        stat: stat(),
    });
    check(StatResponse { stat: stat() });
    check(GetDataResponse {
        data: b"hello".to_vec(),
        stat: stat(),
    });
    check(GetAclResponse {
        acl: acl(),
        stat: stat(),
    });
    check(StringsResponse {
        items: vec!["a".into(), "bb".into()],
    });
    check(GetChildren2Response {
        children: vec!["c".into()],
        stat: stat(),
    });
    check(WhoAmIResponse {
        client_info: vec![ClientInfo {
            auth_scheme: "ip".into(),
            user: "127.0.0.1".into(),
        }],
    });
    check(IntRecord { value: 42 });
    check(MultiResponse {
        results: vec![
            MultiResult::Create("/a".into()),
            MultiResult::Create2("/b".into(), stat()),
            MultiResult::Delete,
            MultiResult::SetData(stat()),
            MultiResult::Check,
        ],
    });
    check(MultiResponse {
        results: vec![
            MultiResult::GetData(b"d".to_vec(), stat()),
            MultiResult::GetChildren(vec!["x".into()]),
            MultiResult::Error(-101),
        ],
    });
    // a failed transaction as 3.8.0 sends it: [(-1,0),(-1,-103),(-1,-2)]
    let failed = MultiResponse {
        results: vec![
            MultiResult::Error(0),
            MultiResult::Error(-103),
            MultiResult::Error(-2),
        ],
    };
    let b = check(failed);
    assert_eq!(
        hex(&b[..13]),
        "ffffffff00 00000000 00000000".replace(' ', "")
    );
    // null data (-1) reads as empty
    let mut null_data = vec![0xff, 0xff, 0xff, 0xff];
    null_data.extend_from_slice(&stat().to_bytes());
    assert_eq!(GetDataResponse::from_bytes(&null_data).unwrap().data, b"");
}

#[test]
fn a_stream_of_frames_split_at_every_byte_decodes_the_same() {
    let mut codec = FrameCodec::default();
    let payloads: Vec<Bytes> = vec![
        ReplyHeader {
            xid: 1,
            zxid: 5,
            err: 0,
        }
        .to_bytes()
        .freeze(),
        GetDataResponse {
            data: vec![7; 300],
            stat: stat(),
        }
        .to_bytes()
        .freeze(),
        Bytes::new(),
        WatcherEvent {
            event_type: 1,
            state: 3,
            path: "/p".into(),
        }
        .to_bytes()
        .freeze(),
    ];
    let mut stream = BytesMut::new();
    for p in &payloads {
        codec.encode(p.clone(), &mut stream).unwrap();
    }
    for a in 0..=stream.len() {
        for b in [a, (a + 7).min(stream.len()), stream.len()] {
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for chunk in [&stream[..a], &stream[a..b], &stream[b..]] {
                buf.extend_from_slice(chunk);
                while let Some(f) = codec.decode(&mut buf).unwrap() {
                    out.push(f.freeze());
                }
            }
            assert_eq!(out, payloads, "split at {a}/{b}");
        }
    }
}

#[test]
fn random_bytes_never_panic_any_decoder() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for _ in 0..20_000 {
        let len = rng.gen_range(0..200);
        let mut b: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // bias towards small, plausible lengths and counts
        if len >= 4 && rng.gen_bool(0.5) {
            b[0] = 0;
            b[1] = 0;
            b[2] = 0;
        }
        let _ = ConnectResponse::from_bytes(&b);
        let _ = ReplyHeader::from_bytes(&b);
        let _ = WatcherEvent::from_bytes(&b);
        let _ = GetDataResponse::from_bytes(&b);
        let _ = GetAclResponse::from_bytes(&b);
        let _ = GetChildren2Response::from_bytes(&b);
        let _ = Create2Response::from_bytes(&b);
        let _ = MultiResponse::from_bytes(&b);
        let _ = MultiRequest::from_bytes(&b);
        let _ = WhoAmIResponse::from_bytes(&b);
        let _ = SetWatches::from_bytes(&b);
        let _ = CreateRequest::from_bytes(&b);
        let _ = classify_connect_frame(&b);
        let mut buf = BytesMut::from(&b[..]);
        let mut c = FrameCodec::new(1 << 20);
        while let Ok(Some(_)) = c.decode(&mut buf) {}
    }
}
