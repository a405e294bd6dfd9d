//! Micro-benchmarks of the protocol layer, no server needed: encoding the common requests as
//! the client frames them, decoding the common replies, and splitting a read buffer into
//! frames. `cargo bench -p zk-proto --bench codec`; see docs/benchmarks.md.

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use zk_proto::frame::FrameCodec;
use zk_proto::{
    validate_path, Acl, Create2Response, CreateRequest, GetDataResponse, OpCode,
    PathVersionRequest, PathWatchRequest, Record, ReplyHeader, SetDataRequest, Stat, StatResponse,
    WatcherEvent, Writer,
};

const PATH: &str = "/zk-bench/get-1234-5678/n7";

/// A request frame as the client builds it: `len | xid | opcode | body`.
fn frame(op: OpCode, body: &impl Record) -> BytesMut {
    let mut b = BytesMut::with_capacity(64);
    b.put_i32(0);
    b.put_i32(1);
    b.put_i32(op.code());
    body.write(&mut Writer::new(&mut b));
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b
}

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0042,
        mzxid: 0x1_0000_0977,
        ctime: 1_732_000_000_000,
        mtime: 1_732_000_012_345,
        version: 17,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 100,
        num_children: 0,
        pzxid: 0x1_0000_0042,
    }
}

/// A reply payload as the session task receives it (without the length prefix).
fn reply(body: &impl Record) -> Vec<u8> {
    let mut b = BytesMut::new();
    let header = ReplyHeader {
        xid: 5,
        zxid: 0x1_0000_0977,
        err: 0,
    };
    header.write(&mut Writer::new(&mut b));
    body.write(&mut Writer::new(&mut b));
    b.to_vec()
}

fn encode(c: &mut Criterion) {
    let data = vec![b'x'; 100];
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_data", |b| {
        b.iter(|| {
            let req = PathWatchRequest {
                path: black_box(PATH).to_owned(),
                watch: false,
            };
            black_box(frame(OpCode::GetData, &req))
        })
    });
    g.bench_function("exists", |b| {
        b.iter(|| {
            let req = PathWatchRequest {
                path: black_box(PATH).to_owned(),
                watch: true,
            };
            black_box(frame(OpCode::Exists, &req))
        })
    });
    g.bench_function("set_data_100B", |b| {
        b.iter(|| {
            let req = SetDataRequest {
                path: black_box(PATH).to_owned(),
                data: black_box(&data).clone(),
                version: -1,
            };
            black_box(frame(OpCode::SetData, &req))
        })
    });
    let acl = Acl::open_unsafe();
    g.bench_function("create_100B", |b| {
        b.iter(|| {
            let req = CreateRequest {
                path: black_box(PATH).to_owned(),
                data: black_box(&data).clone(),
                acl: acl.clone(),
                flags: 0,
            };
            black_box(frame(OpCode::Create2, &req))
        })
    });
    g.bench_function("delete", |b| {
        b.iter(|| {
            let req = PathVersionRequest {
                path: black_box(PATH).to_owned(),
                version: -1,
            };
            black_box(frame(OpCode::Delete, &req))
        })
    });
    g.bench_function("validate_path", |b| {
        b.iter(|| validate_path(black_box(PATH), false).unwrap())
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    let get = reply(&GetDataResponse {
        data: vec![b'x'; 100],
        stat: stat(),
    });
    g.bench_function("get_data_reply_100B", |b| {
        b.iter(|| {
            let buf = black_box(&get[..]);
            let h = ReplyHeader::from_bytes(buf).unwrap();
            let r = GetDataResponse::from_bytes(&buf[16..]).unwrap();
            black_box((h, r))
        })
    });
    let st = reply(&StatResponse { stat: stat() });
    g.bench_function("stat_reply", |b| {
        b.iter(|| {
            let buf = black_box(&st[..]);
            let h = ReplyHeader::from_bytes(buf).unwrap();
            let r = StatResponse::from_bytes(&buf[16..]).unwrap();
            black_box((h, r))
        })
    });
    let cr = reply(&Create2Response {
        path: format!("{PATH}0000000042"),
        stat: stat(),
    });
    g.bench_function("create2_reply", |b| {
        b.iter(|| {
            let buf = black_box(&cr[..]);
            let h = ReplyHeader::from_bytes(buf).unwrap();
            let r = Create2Response::from_bytes(&buf[16..]).unwrap();
            black_box((h, r))
        })
    });
    let mut ev = BytesMut::new();
    ReplyHeader {
        xid: -1,
        zxid: -1,
        err: 0,
    }
    .write(&mut Writer::new(&mut ev));
    WatcherEvent {
        event_type: 2,
        state: 3,
        path: PATH.to_owned(),
    }
    .write(&mut Writer::new(&mut ev));
    g.bench_function("notification", |b| {
        b.iter(|| {
            let buf = black_box(&ev[..]);
            let h = ReplyHeader::from_bytes(buf).unwrap();
            let r = WatcherEvent::from_bytes(&buf[16..]).unwrap();
            black_box((h, r))
        })
    });
    g.finish();
}

fn framing(c: &mut Criterion) {
    // 64 get_data replies back to back, as one read from the socket might hold them
    let one = reply(&GetDataResponse {
        data: vec![b'x'; 100],
        stat: stat(),
    });
    let mut stream = BytesMut::new();
    for _ in 0..64 {
        stream.put_i32(one.len() as i32);
        stream.put_slice(&one);
    }
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Elements(64));
    g.bench_function("split_64_replies", |b| {
        b.iter_batched_ref(
            || stream.clone(),
            |buf| {
                let mut codec = FrameCodec::default();
                let mut n = 0;
                while let Some(f) = codec.decode(buf).unwrap() {
                    black_box(&f);
                    n += 1;
                }
                assert_eq!(n, 64);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, encode, decode, framing);
criterion_main!(benches);
