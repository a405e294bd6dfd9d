//! [`CreateOptions`]: how [`Client::create_with`](crate::Client::create_with) and
//! [`Op::create_with`](crate::Op::create_with) make a node.

use crate::proto::{Acl, CreateMode};

/// How a node is created, beyond its path and data: its [`CreateMode`] (which carries a TTL
/// for TTL nodes) and its ACL (by default the client's,
/// [`ClientBuilder::default_acl`](crate::ClientBuilder::default_acl)).
///
/// New settings arrive as new builder methods, never as new arguments of `create_with`; the
/// fields are private so that adding one is not a breaking change.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// use zk_core::{Acl, CreateMode, CreateOptions};
/// let opts = CreateOptions::new(CreateMode::Ephemeral).with_acl(Acl::creator_all());
/// let (path, stat) = client.create_with("/mine", b"data", &opts).await?;
/// assert_eq!(stat.ephemeral_owner, client.session_id());
/// # let _ = path; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreateOptions {
    mode: CreateMode,
    acl: Option<Vec<Acl>>,
}

impl CreateOptions {
    /// Options for a node of this mode, with the client's default ACL.
    pub fn new(mode: CreateMode) -> Self {
        CreateOptions { mode, acl: None }
    }

    /// The node gets this ACL instead of the client's default. It is checked before anything
    /// is sent: an empty ACL, one without permissions or with unknown permission bits, or a
    /// `world` id other than `anyone` fail with [`Error::InvalidArgument`](crate::Error).
    pub fn with_acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = Some(acl);
        self
    }

    /// The mode.
    pub fn mode(&self) -> CreateMode {
        self.mode
    }

    /// The ACL given with [`with_acl`](Self::with_acl); `None` means the client's default.
    pub fn acl(&self) -> Option<&[Acl]> {
        self.acl.as_deref()
    }
}

impl From<CreateMode> for CreateOptions {
    fn from(mode: CreateMode) -> Self {
        CreateOptions::new(mode)
    }
}
