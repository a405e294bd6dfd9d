//! Feeds arbitrary bytes to the frame decoders (zk-core's socket reader is `ReplyDecoder`)
//! and to every record decoder a client uses on server input. Nothing may panic, hang or allocate the sizes a frame merely claims.
//!
//! ```text
//! cargo install cargo-fuzz
//! cd zk-proto/fuzz && cargo fuzz run decode      # nightly, or RUSTC_BOOTSTRAP=1 on stable
//! ```
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use zk_proto::frame::{FrameCodec, InFrame, ReplyDecoder};
use zk_proto::*;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let mut codec = FrameCodec::new(1 << 20);
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        let _ = classify_connect_frame(&frame);
        if let Ok(h) = ReplyHeader::from_bytes(&frame) {
            let body = &frame[REPLY_HEADER_LEN.min(frame.len())..];
            match h.xid {
                -1 => {
                    let _ = WatcherEvent::from_bytes(body);
                }
                _ => {
                    let _ = GetDataResponse::from_bytes(body);
                    let _ = GetAclResponse::from_bytes(body);
                    let _ = GetChildren2Response::from_bytes(body);
                    let _ = StringsResponse::from_bytes(body);
                    let _ = Create2Response::from_bytes(body);
                    let _ = StatResponse::from_bytes(body);
                    let _ = MultiResponse::from_bytes(body);
                    let _ = WhoAmIResponse::from_bytes(body);
                    let _ = IntRecord::from_bytes(body);
                }
            }
        }
    }
    // the client's reader: frames over its limit are skipped as they arrive
    let mut buf = BytesMut::from(data);
    let mut reader = ReplyDecoder::new(64);
    while let Ok(Some(f)) = reader.decode(&mut buf) {
        if let InFrame::Oversized { head, .. } = f {
            let _ = ReplyHeader::from_bytes(&head);
        }
    }
    // and the request side, which a future in-process server will decode
    let _ = ConnectRequest::from_bytes(data);
    let _ = MultiRequest::from_bytes(data);
    let _ = SetWatches::from_bytes(data);
    let _ = CreateRequest::from_bytes(data);
    let _ = CreateTtlRequest::from_bytes(data);
});
