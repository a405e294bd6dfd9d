//! Transactions (`multi`) and batched reads (`multiRead`).

use crate::create::CreateOptions;
use crate::error::{ChrootExt, Error, Result};
use crate::proto::{
    Acl, Chroot, CreateMode, CreateRequest, CreateTtlRequest, MultiOp, MultiResult,
    PathVersionRequest, PathWatchRequest, SetDataRequest, Stat,
};

/// One operation of a [`Client::multi`](crate::Client::multi) transaction. All ops are applied
/// atomically, or none is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Create a node.
    Create {
        /// Path.
        path: String,
        /// Data.
        data: Vec<u8>,
        /// Mode and ACL.
        options: CreateOptions,
    },
    /// Delete a node.
    Delete {
        /// Path.
        path: String,
        /// Expected version; `None` for any.
        version: Option<i32>,
    },
    /// Set a node's data.
    SetData {
        /// Path.
        path: String,
        /// Data.
        data: Vec<u8>,
        /// Expected version; `None` for any.
        version: Option<i32>,
    },
    /// Fail the transaction unless the node exists with this data version: the fencing
    /// primitive (e.g. "only write if I still own my lock node"). Only valid inside a multi.
    Check {
        /// Path.
        path: String,
        /// Expected version; `None` only checks that the node exists.
        version: Option<i32>,
    },
}

impl Op {
    /// Create with the client's default ACL.
    pub fn create(path: impl Into<String>, data: impl Into<Vec<u8>>, mode: CreateMode) -> Op {
        Op::Create {
            path: path.into(),
            data: data.into(),
            options: CreateOptions::new(mode),
        }
    }

    /// Create as `options` say (mode and ACL), as [`Client::create_with`](crate::Client::create_with).
    pub fn create_with(
        path: impl Into<String>,
        data: impl Into<Vec<u8>>,
        options: &CreateOptions,
    ) -> Op {
        Op::Create {
            path: path.into(),
            data: data.into(),
            options: options.clone(),
        }
    }

    /// Delete.
    pub fn delete(path: impl Into<String>, version: Option<i32>) -> Op {
        Op::Delete {
            path: path.into(),
            version,
        }
    }

    /// Set data.
    pub fn set_data(path: impl Into<String>, data: impl Into<Vec<u8>>, version: Option<i32>) -> Op {
        Op::SetData {
            path: path.into(),
            data: data.into(),
            version,
        }
    }

    /// Version check.
    pub fn check(path: impl Into<String>, version: Option<i32>) -> Op {
        Op::Check {
            path: path.into(),
            version,
        }
    }

    pub(crate) fn path(&self) -> &str {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::Check { path, .. } => path,
        }
    }

    pub(crate) fn to_wire(&self, chroot: &Chroot, default_acl: &[Acl]) -> MultiOp {
        let p = |path: &str| chroot.to_server(path);
        match self {
            Op::Create {
                path,
                data,
                options,
            } => {
                let mode = options.mode();
                let acl = options.acl().unwrap_or(default_acl).to_vec();
                let p = |path: &str| {
                    if mode.is_sequential() {
                        chroot.to_server_sequential(path)
                    } else {
                        chroot.to_server(path)
                    }
                };
                match mode.ttl() {
                    Some(ttl) => MultiOp::CreateTtl(CreateTtlRequest {
                        path: p(path),
                        data: data.clone(),
                        acl,
                        flags: mode.flags(),
                        ttl: ttl.as_millis() as i64,
                    }),
                    None => MultiOp::Create(
                        mode.opcode().code(),
                        CreateRequest {
                            path: p(path),
                            data: data.clone(),
                            acl,
                            flags: mode.flags(),
                        },
                    ),
                }
            }
            Op::Delete { path, version } => MultiOp::Delete(PathVersionRequest {
                path: p(path),
                version: version.unwrap_or(-1),
            }),
            Op::SetData {
                path,
                data,
                version,
            } => MultiOp::SetData(SetDataRequest {
                path: p(path),
                data: data.clone(),
                version: version.unwrap_or(-1),
            }),
            Op::Check { path, version } => MultiOp::Check(PathVersionRequest {
                path: p(path),
                version: version.unwrap_or(-1),
            }),
        }
    }
}

/// The result of one op of a successful transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpResult {
    /// The node was created at `path`. `stat` is `None` on servers older than 3.8.2, which
    /// answer a create inside a multi without it.
    Create {
        /// Actual path (with a sequence suffix for sequential modes).
        path: String,
        /// The new node's Stat, when the server sends it.
        stat: Option<Stat>,
    },
    /// Deleted.
    Delete,
    /// Data set; the new Stat.
    SetData {
        /// The node's Stat after the write.
        stat: Stat,
    },
    /// The check passed.
    Check,
}

/// One read of a [`Client::multi_read`](crate::Client::multi_read) batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOp {
    /// Read data.
    GetData(String),
    /// List children.
    GetChildren(String),
}

impl ReadOp {
    pub(crate) fn path(&self) -> &str {
        match self {
            ReadOp::GetData(p) | ReadOp::GetChildren(p) => p,
        }
    }

    pub(crate) fn to_wire(&self, chroot: &Chroot) -> MultiOp {
        let req = PathWatchRequest {
            path: chroot.to_server(self.path()),
            watch: false,
        };
        match self {
            ReadOp::GetData(_) => MultiOp::GetData(req),
            ReadOp::GetChildren(_) => MultiOp::GetChildren(req),
        }
    }
}

/// The result of one read of a batch (each read succeeds or fails on its own).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadResult {
    /// Data and Stat.
    Data(Vec<u8>, Stat),
    /// Child names (unsorted).
    Children(Vec<String>),
}

/// Turns the wire results of a write transaction into ours, or the error of the failing op.
pub(crate) fn write_results(results: Vec<MultiResult>, chroot: &Chroot) -> Result<Vec<OpResult>> {
    // A failed transaction: every result is an error; ops before the failing one carry 0,
    // the failing one its code, later ones RUNTIMEINCONSISTENCY.
    if results.iter().any(|r| matches!(r, MultiResult::Error(_))) {
        let first = results
            .iter()
            .position(|r| matches!(r, MultiResult::Error(c) if *c != 0 && *c != -2))
            .or_else(|| {
                results
                    .iter()
                    .position(|r| matches!(r, MultiResult::Error(c) if *c != 0))
            })
            .unwrap_or(0);
        let code = match results[first] {
            MultiResult::Error(c) => c,
            _ => -2,
        };
        return Err(Error::TransactionFailed {
            index: first,
            error: Box::new(Error::from_code(code)),
        });
    }
    results
        .into_iter()
        .map(|r| {
            Ok(match r {
                MultiResult::Create(p) => OpResult::Create {
                    path: chroot.to_client_checked(&p)?,
                    stat: None,
                },
                MultiResult::Create2(p, s) => OpResult::Create {
                    path: chroot.to_client_checked(&p)?,
                    stat: Some(s),
                },
                MultiResult::Delete => OpResult::Delete,
                MultiResult::SetData(stat) => OpResult::SetData { stat },
                MultiResult::Check => OpResult::Check,
                other => {
                    return Err(Error::Protocol(format!(
                        "unexpected result in a write transaction: {other:?}"
                    )))
                }
            })
        })
        .collect()
}

/// A transaction's answer must hold one result per op: anything else is a protocol error.
pub(crate) fn check_count(results: &[MultiResult], ops: usize) -> Result<()> {
    if results.len() != ops {
        return Err(Error::Protocol(format!(
            "{} results for {ops} ops",
            results.len()
        )));
    }
    Ok(())
}

pub(crate) fn read_results(results: Vec<MultiResult>) -> Result<Vec<Result<ReadResult>>> {
    results
        .into_iter()
        .map(|r| {
            Ok(match r {
                MultiResult::GetData(d, s) => Ok(ReadResult::Data(d, s)),
                MultiResult::GetChildren(c) => Ok(ReadResult::Children(c)),
                MultiResult::Error(c) => Err(Error::from_code(c)),
                other => {
                    return Err(Error::Protocol(format!(
                        "unexpected result in a read batch: {other:?}"
                    )))
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_op_is_identified() {
        let r = vec![
            MultiResult::Error(0),
            MultiResult::Error(-103),
            MultiResult::Error(-2),
        ];
        match write_results(r, &Chroot::none()) {
            Err(Error::TransactionFailed { index, error }) => {
                assert_eq!(index, 1);
                assert!(matches!(*error, Error::BadVersion));
            }
            other => panic!("{other:?}"),
        }
    }
}
