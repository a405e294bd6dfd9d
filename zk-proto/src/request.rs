//! The server's side of a request: decoding a request body by its opcode, and encoding a reply
//! frame (header and body, length-prefixed). The client's side is the records themselves; this
//! is what a server (zk-server) or a scripted test server needs on top of them.

use super::jute::{DecodeError, Reader, Record, Writer};
use super::records::{
    AuthPacket, CreateRequest, CreateTtlRequest, MultiHeader, MultiRequest, PathModeRequest,
    PathRecord, PathVersionRequest, PathWatchRequest, ReconfigRequest, ReplyHeader, SaslToken,
    SetAclRequest, SetDataRequest, SetWatches,
};
use bytes::{BufMut, Bytes, BytesMut};

/// A decoded request body, one variant per opcode a client sends after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// create (1), create2 (15), createContainer (19): the opcode and the record.
    Create(i32, CreateRequest),
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(PathVersionRequest),
    /// exists (3).
    Exists(PathWatchRequest),
    /// getData (4).
    GetData(PathWatchRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// getACL (6).
    GetAcl(PathRecord),
    /// setACL (7).
    SetAcl(SetAclRequest),
    /// getChildren (8).
    GetChildren(PathWatchRequest),
    /// sync (9).
    Sync(PathRecord),
    /// ping (11), no body.
    Ping,
    /// getChildren2 (12).
    GetChildren2(PathWatchRequest),
    /// check (13).
    Check(PathVersionRequest),
    /// multi (14).
    Multi(MultiRequest),
    /// reconfig (16).
    Reconfig(ReconfigRequest),
    /// checkWatches (17).
    CheckWatches(PathModeRequest),
    /// removeWatches (18).
    RemoveWatches(PathModeRequest),
    /// multiRead (22).
    MultiRead(MultiRequest),
    /// auth (100).
    Auth(AuthPacket),
    /// setWatches (101) or setWatches2 (105, `v2` set).
    SetWatches(SetWatches),
    /// sasl (102).
    Sasl(SaslToken),
    /// getEphemerals (103).
    GetEphemerals(PathRecord),
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber(PathRecord),
    /// addWatch (106).
    AddWatch(PathModeRequest),
    /// whoAmI (107), no body.
    WhoAmI,
    /// closeSession (-11), no body.
    CloseSession,
}

impl Request {
    /// Decodes the body that followed a [`RequestHeader`](super::RequestHeader) with opcode `op`.
    /// `Ok(None)` for an opcode no client sends (the server answers UNIMPLEMENTED).
    pub fn decode(op: i32, body: &[u8]) -> Result<Option<Request>, DecodeError> {
        let r = &mut Reader::new(body);
        Ok(Some(match op {
            1 | 15 | 19 => Request::Create(op, CreateRequest::read(r)?),
            21 => Request::CreateTtl(CreateTtlRequest::read(r)?),
            2 => Request::Delete(PathVersionRequest::read(r)?),
            3 => Request::Exists(PathWatchRequest::read(r)?),
            4 => Request::GetData(PathWatchRequest::read(r)?),
            5 => Request::SetData(SetDataRequest::read(r)?),
            6 => Request::GetAcl(PathRecord::read(r)?),
            7 => Request::SetAcl(SetAclRequest::read(r)?),
            8 => Request::GetChildren(PathWatchRequest::read(r)?),
            9 => Request::Sync(PathRecord::read(r)?),
            11 => Request::Ping,
            12 => Request::GetChildren2(PathWatchRequest::read(r)?),
            13 => Request::Check(PathVersionRequest::read(r)?),
            14 => Request::Multi(MultiRequest::read(r)?),
            16 => Request::Reconfig(ReconfigRequest::read(r)?),
            17 => Request::CheckWatches(PathModeRequest::read(r)?),
            18 => Request::RemoveWatches(PathModeRequest::read(r)?),
            22 => Request::MultiRead(MultiRequest::read(r)?),
            100 => Request::Auth(AuthPacket::read(r)?),
            101 => {
                let mut s = SetWatches::read(r)?;
                s.v2 = false;
                Request::SetWatches(s)
            }
            105 => {
                let mut s = SetWatches::read(r)?;
                s.v2 = true;
                Request::SetWatches(s)
            }
            102 => Request::Sasl(SaslToken::read(r)?),
            103 => Request::GetEphemerals(PathRecord::read(r)?),
            104 => Request::GetAllChildrenNumber(PathRecord::read(r)?),
            106 => Request::AddWatch(PathModeRequest::read(r)?),
            107 => Request::WhoAmI,
            -11 => Request::CloseSession,
            _ => return Ok(None),
        }))
    }

    /// Whether the data buffer of a create (1, 15, 19, 21) or setData (5) body is null
    /// (length -1), which the records decode as empty: a server keeps the difference, as
    /// ZooKeeper answers a null write with null data.
    pub fn data_is_null(op: i32, body: &[u8]) -> bool {
        let r = &mut Reader::new(body);
        matches!(op, 1 | 5 | 15 | 19 | 21)
            && r.string().is_ok()
            && matches!(r.opt_buffer(), Ok(None))
    }

    /// For each op of a multi body, whether its data buffer (create or setData) is null;
    /// false for ops without data. Empty if the body does not decode.
    pub fn multi_data_is_null(body: &[u8]) -> Vec<bool> {
        let r = &mut Reader::new(body);
        let mut out = Vec::new();
        loop {
            let Ok(h) = MultiHeader::read(r) else {
                return Vec::new();
            };
            if h.done {
                return out;
            }
            let rest = r.rest();
            out.push(Request::data_is_null(h.op, rest));
            let skipped = match h.op {
                1 | 15 | 19 => CreateRequest::read(r).map(drop),
                21 => CreateTtlRequest::read(r).map(drop),
                2 | 13 => PathVersionRequest::read(r).map(drop),
                5 => SetDataRequest::read(r).map(drop),
                4 | 8 => PathWatchRequest::read(r).map(drop),
                _ => return Vec::new(),
            };
            if skipped.is_err() {
                return Vec::new();
            }
        }
    }

    /// Whether the request changes the tree (or the session), i.e. is a transaction a real
    /// server gives a zxid of its own.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(..)
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::CloseSession
        )
    }
}

/// A whole reply frame: length prefix, [`ReplyHeader`] and, when given, the body (a real
/// server omits the body when `err != 0`, except for multi).
pub fn reply_frame(header: ReplyHeader, body: Option<&dyn Fn(&mut Writer<'_>)>) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i32(0);
    {
        let mut w = Writer::new(&mut b);
        header.write(&mut w);
        if let Some(f) = body {
            f(&mut w);
        }
    }
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

/// A whole frame (length prefix and payload) holding one record, e.g. a ConnectResponse.
pub fn record_frame<R: Record>(record: &R) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i32(0);
    record.write(&mut Writer::new(&mut b));
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Acl, MultiOp, RequestHeader, Stat, StatResponse};

    #[test]
    fn every_client_request_decodes_to_what_was_encoded() {
        let create = CreateRequest {
            path: "/a".into(),
            data: b"x".to_vec(),
            acl: Acl::open_unsafe(),
            flags: 3,
        };
        let cases: Vec<(i32, BytesMut, Request)> = vec![
            (15, create.to_bytes(), Request::Create(15, create.clone())),
            (
                2,
                PathVersionRequest {
                    path: "/a".into(),
                    version: 4,
                }
                .to_bytes(),
                Request::Delete(PathVersionRequest {
                    path: "/a".into(),
                    version: 4,
                }),
            ),
            (
                3,
                PathWatchRequest {
                    path: "/b".into(),
                    watch: true,
                }
                .to_bytes(),
                Request::Exists(PathWatchRequest {
                    path: "/b".into(),
                    watch: true,
                }),
            ),
            (11, BytesMut::new(), Request::Ping),
            (107, BytesMut::new(), Request::WhoAmI),
            (-11, BytesMut::new(), Request::CloseSession),
            (
                14,
                MultiRequest {
                    ops: vec![MultiOp::Create(1, create.clone())],
                }
                .to_bytes(),
                Request::Multi(MultiRequest {
                    ops: vec![MultiOp::Create(1, create.clone())],
                }),
            ),
        ];
        for (op, bytes, want) in cases {
            assert_eq!(Request::decode(op, &bytes).unwrap(), Some(want), "op {op}");
        }
        assert_eq!(Request::decode(99, &[]).unwrap(), None);
        let mut null = BytesMut::new();
        Writer::new(&mut null).string("/n").opt_buffer(None).i32(0);
        assert!(Request::data_is_null(1, &null));
        assert!(Request::data_is_null(5, &null));
        assert!(!Request::data_is_null(4, &null));
        assert!(!Request::data_is_null(1, &create.to_bytes()));
        let mut multi = BytesMut::new();
        {
            let w = &mut Writer::new(&mut multi);
            MultiHeader {
                op: 1,
                done: false,
                err: -1,
            }
            .write(w);
            create.write(w);
            MultiHeader {
                op: 5,
                done: false,
                err: -1,
            }
            .write(w);
            w.string("/n").opt_buffer(None).i32(-1);
            MultiHeader {
                op: 2,
                done: false,
                err: -1,
            }
            .write(w);
            w.string("/d").i32(-1);
            MultiHeader::END.write(w);
        }
        assert_eq!(
            Request::multi_data_is_null(&multi),
            vec![false, true, false]
        );
        assert!(Request::multi_data_is_null(&multi[..10]).is_empty());
        assert!(Request::decode(4, &[0, 0]).is_err());
    }

    #[test]
    fn set_watches_version_follows_the_opcode() {
        let sw = SetWatches {
            relative_zxid: 7,
            data: vec!["/d".into()],
            v2: true,
            persistent: vec!["/p".into()],
            ..Default::default()
        };
        let b = sw.to_bytes();
        match Request::decode(105, &b).unwrap() {
            Some(Request::SetWatches(s)) => assert_eq!(s, sw),
            other => panic!("{other:?}"),
        }
        let v1 = SetWatches {
            v2: false,
            persistent: vec![],
            ..sw
        };
        match Request::decode(101, &v1.to_bytes()).unwrap() {
            Some(Request::SetWatches(s)) => assert_eq!(s, v1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reply_frame_is_length_header_body() {
        let stat = Stat {
            version: 2,
            ..Stat::default()
        };
        let f = reply_frame(
            ReplyHeader {
                xid: 5,
                zxid: 9,
                err: 0,
            },
            Some(&|w: &mut Writer<'_>| StatResponse { stat }.write(w)),
        );
        assert_eq!(f.len(), 4 + 16 + 68);
        assert_eq!(&f[..4], &(84i32).to_be_bytes());
        let h = ReplyHeader::from_bytes(&f[4..]).unwrap();
        assert_eq!((h.xid, h.zxid, h.err), (5, 9, 0));
        assert_eq!(StatResponse::from_bytes(&f[20..]).unwrap().stat, stat);
        let bare = reply_frame(
            ReplyHeader {
                xid: -2,
                zxid: 1,
                err: 0,
            },
            None,
        );
        assert_eq!(bare.len(), 20);
        let _ = RequestHeader { xid: 1, op: 1 };
    }
}
