//! Nodes kept present (Curator's `PersistentNode`, `PersistentTtlNode`) and group membership
//! on top of them (Curator's `GroupMember`).
//!
//! A [`PersistentNode`] is a node that a background task keeps present for as long as the
//! handle is started and not closed: created at start, created again after someone deletes
//! it, after the session is lost (an ephemeral node goes with its session; it comes back in
//! the client's new session), and checked again after every reconnect. With
//! [`protected`](PersistentNode::protected) its name is Curator's protected name
//! `_c_<uuid>-<name>` (a fresh uuid per create), so a create whose reply was lost is found
//! again by listing the parent instead of being created twice.

use crate::plumbing::{
    child_path, deadline_after, delete_by_prefix, delete_retrying, ensure_containers, parent_of,
    sleep_until_opt, spawn_cleanup, wait_connected, Wake, Wakeups,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tracing::{debug, warn};
use zk_core::{Client, CreateMode, Error, OneshotWatcher, Result, State};

/// What the keeper publishes.
#[derive(Debug, Clone, Default)]
struct View {
    /// The node's path, once created (it changes when a sequential or protected node is
    /// created again).
    actual: Option<String>,
    /// Whether the node was seen present, owned by the current session if ephemeral, at the
    /// keeper's last look.
    present: bool,
    /// Whether the node has been created (or found) once.
    created: bool,
    /// An error that ends the keeper (the client closed), or that stopped the first create.
    fatal: Option<Error>,
    /// A create whose outcome is not known yet (in flight, or its reply lost): what `close`
    /// must look for besides `actual`.
    creating: Option<Creating>,
}

/// What an unsettled create may have made.
#[derive(Debug, Clone)]
enum Creating {
    /// This path (a fixed path).
    Exact(String),
    /// A child of `parent` starting with the protected prefix `_c_<uuid>-`.
    Protected { parent: String, prefix: String },
}

/// What the handle shares with its keeper task.
#[derive(Debug)]
struct Shared {
    client: Client,
    base: String,
    mode: CreateMode,
    protected: bool,
    /// Whether `close` / drop deletes the node (not a TTL node's container, as Curator).
    delete_on_close: bool,
    /// Whether an ephemeral node of another session at our fixed path is deleted and ours
    /// created (curator-x-discovery's registration) rather than waited out.
    replace_foreign: bool,
    /// The data to write, and whether it still has to be written on the present node.
    data: std::sync::Mutex<(Vec<u8>, bool)>,
    poke: Notify,
    view: watch::Sender<View>,
}

impl Shared {
    fn data(&self) -> std::sync::MutexGuard<'_, (Vec<u8>, bool)> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut View)) {
        self.view.send_modify(f);
    }
}

#[derive(Debug)]
struct Keeper {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Keeper {
    /// Stops the task and waits for it (it finishes the request it is in).
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A node kept present through connection loss, session loss and deletion (Curator's
/// `PersistentNode`; `PersistentEphemeralNode` is the ephemeral mode).
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use zk_core::CreateMode;
/// use zk_recipes::PersistentNode;
///
/// let node = PersistentNode::new(&client, "/services/api/host-7", CreateMode::Ephemeral, "10.0.0.7:8080")
///     .protected(true);
/// node.start();
/// node.wait_for_initial_create_timeout(Duration::from_secs(10)).await?;
/// println!("registered at {:?}", node.actual_path());
/// node.set_data("10.0.0.7:8081")?; // kept across re-creations too
/// node.close().await?;
/// # Ok(()) }
/// ```
///
/// # Behavior
///
/// * **Kept present.** A background task (started by [`start`](Self::start)) creates the node
///   with the current data, leaves a watch on it and looks again on every wake-up: the node
///   deleted (by anyone) → created again; a reconnect → looked at again; the session lost (an
///   ephemeral node goes with it) → created again in the client's new session. An ephemeral
///   node still owned by an old session (its expiry not processed yet) is waited out when the
///   path is fixed, deleted at once when it is protected (its uuid is ours).
/// * **SUSPENDED / LOST.** While the connection is suspended [`is_present`](Self::is_present)
///   is false (the client cannot know); nothing is reported as an error. After a session loss
///   the node comes back in the new session; the task ends only when the client is closed or
///   will not start a new session (then the node is gone with the session).
/// * **Protected create.** With [`protected`](Self::protected) the name is
///   `<parent>/_c_<uuid>-<name>` with a fresh uuid per create. A create whose reply was lost
///   is settled by listing the parent for that uuid: found and ours → adopted (no duplicate);
///   found but of another session → deleted; not found → created again. Without protection
///   a fixed path settles itself (`NodeExists` → looked at); a **sequential** node without
///   protection may be created twice when a reply is lost (as in Curator): use protection.
/// * **Sequential modes.** The first create appends the sequence; a re-creation without
///   protection uses the same path, non-sequential (Curator's rule); with protection it gets a
///   new protected sequential name. [`actual_path`](Self::actual_path) says where it is now.
/// * **Existing node.** A persistent node already at a fixed path is adopted and given our
///   data (as Curator does); an ephemeral node at our fixed path owned by another live session
///   is waited out (Curator adopts it, and two owners believe they hold it).
/// * **Parents** are created as containers when missing (Curator's
///   `creatingParentContainersIfNeeded`).
/// * **Deadlines and cancel safety.** `wait_for_initial_create_timeout` / `_until` return
///   `Ok(None)` when the deadline passes first (the task goes on); dropping the future
///   cancels only the wait. [`close`](Self::close) stops the task and deletes the node;
///   dropping the handle does the same in the background.
#[derive(Debug)]
pub struct PersistentNode {
    shared: Arc<Shared>,
    keeper: std::sync::Mutex<Option<Keeper>>,
    closed: std::sync::atomic::AtomicBool,
}

impl PersistentNode {
    /// A node at `path` in `mode` with `data`; not started (see [`start`](Self::start)). TTL
    /// modes need `extendedTypesEnabled=true` on the server.
    pub fn new(client: &Client, path: &str, mode: CreateMode, data: impl Into<Vec<u8>>) -> Self {
        PersistentNode::build(client, path, mode, data.into(), true)
    }

    fn build(client: &Client, path: &str, mode: CreateMode, data: Vec<u8>, delete: bool) -> Self {
        PersistentNode {
            shared: Arc::new(Shared {
                client: client.clone(),
                base: path.to_owned(),
                mode,
                protected: false,
                delete_on_close: delete,
                replace_foreign: false,
                data: std::sync::Mutex::new((data, false)),
                poke: Notify::new(),
                view: watch::channel(View::default()).0,
            }),
            keeper: std::sync::Mutex::new(None),
            closed: Default::default(),
        }
    }

    /// Whether to use Curator's protected names (`_c_<uuid>-<name>`; default: no). Set before
    /// [`start`](Self::start): once started it has no effect.
    pub fn protected(mut self, protected: bool) -> Self {
        if let Some(s) = Arc::get_mut(&mut self.shared) {
            s.protected = protected;
        }
        self
    }

    /// Deletes an ephemeral node of another session found at our fixed path instead of
    /// waiting for it to go (curator-x-discovery's rule: an instance id is unique, so such a
    /// node is an earlier registration of the same instance), unless our node was present in
    /// the current session before it: then it is a later registration that replaced ours
    /// (Curator's last registrant wins), and it is waited out. Set before `start`.
    pub(crate) fn replace_foreign(mut self) -> Self {
        if let Some(s) = Arc::get_mut(&mut self.shared) {
            s.replace_foreign = true;
        }
        self
    }

    /// The path given (for a protected or sequential node the actual name differs: see
    /// [`actual_path`](Self::actual_path)).
    pub fn path(&self) -> &str {
        &self.shared.base
    }

    /// Starts the task that keeps the node present (idempotent; nothing after
    /// [`close`](Self::close)). Needs a tokio runtime.
    pub fn start(&self) {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let mut k = self.keeper.lock().unwrap_or_else(|p| p.into_inner());
        if k.is_none() {
            let (stop, stop_rx) = watch::channel(false);
            let task = tokio::spawn(keep(self.shared.clone(), stop_rx));
            *k = Some(Keeper { stop, task });
        }
    }

    /// Waits until the node has been created (or found) once, starting the task if it was
    /// not.
    ///
    /// # Errors
    /// An error that stopped the first create for good (e.g. `NoAuth`, or a TTL mode refused
    /// by the server), or [`Error::Closed`].
    pub async fn wait_for_initial_create(&self) -> Result<()> {
        self.wait_created(None)
            .await?
            .ok_or(Error::Timeout { sent: false })
    }

    /// [`wait_for_initial_create`](Self::wait_for_initial_create) with a deadline: `Ok(None)`
    /// if it passed first (the task goes on).
    ///
    /// # Errors
    /// As [`wait_for_initial_create`](Self::wait_for_initial_create).
    pub async fn wait_for_initial_create_timeout(&self, timeout: Duration) -> Result<Option<()>> {
        self.wait_created(Some(deadline_after(timeout))).await
    }

    /// [`wait_for_initial_create_timeout`](Self::wait_for_initial_create_timeout) with an
    /// absolute deadline.
    ///
    /// # Errors
    /// As [`wait_for_initial_create`](Self::wait_for_initial_create).
    pub async fn wait_for_initial_create_until(&self, deadline: Instant) -> Result<Option<()>> {
        self.wait_created(Some(deadline)).await
    }

    async fn wait_created(&self, deadline: Option<Instant>) -> Result<Option<()>> {
        self.start();
        let mut rx = self.shared.view.subscribe();
        let wait = rx.wait_for(|v| v.created || v.fatal.is_some());
        tokio::select! {
            r = wait => match r {
                Ok(v) if v.created => Ok(Some(())),
                Ok(v) => Err(v.fatal.clone().unwrap_or(Error::Closed)),
                Err(_) => Err(Error::Closed),
            },
            _ = sleep_until_opt(deadline) => Ok(None),
        }
    }

    /// Where the node is now (`None` before the first create).
    pub fn actual_path(&self) -> Option<String> {
        self.shared.view.borrow().actual.clone()
    }

    /// Whether the node was present (and, if ephemeral, ours) at the task's last look, and
    /// the client has not been disconnected since.
    pub fn is_present(&self) -> bool {
        self.shared.view.borrow().present
    }

    /// The data the node is kept with.
    pub fn data(&self) -> Vec<u8> {
        self.shared.data().0.clone()
    }

    /// Sets the node's data: written now if the node is present (in the background), and used
    /// by every later re-creation. (Curator refuses it before the first create; here it just
    /// becomes the data of the first create.)
    ///
    /// # Errors
    /// [`Error::DataTooLarge`] if `data` is over the client's
    /// [`max_data_len`](Client::max_data_len), as the client's own writes refuse it: nothing
    /// changes (the node keeps its data, and so does [`data`](Self::data)).
    pub fn set_data(&self, data: impl Into<Vec<u8>>) -> Result<()> {
        let data = data.into();
        let max = self.shared.client.max_data_len();
        if data.len() > max {
            return Err(Error::DataTooLarge {
                len: data.len(),
                max,
            });
        }
        self.put_data(data);
        Ok(())
    }

    /// Sets the data without the size check: for a builder before the first create, whose
    /// error ([`Error::DataTooLarge`]) the first create reports.
    fn put_data(&self, data: Vec<u8>) {
        *self.shared.data() = (data, true);
        self.shared.poke.notify_one();
    }

    /// Stops keeping the node and deletes it (retried through connection loss while the
    /// session lives; a TTL node's container is left to expire, as Curator does). A create
    /// still unanswered when the task stops is looked for too (its fixed path, or its
    /// protected prefix; an unprotected *sequential* name cannot be known: use protection).
    /// An ephemeral node is deleted only if it is of the current session: a node of another
    /// session that the task was waiting out is left alone.
    ///
    /// # Errors
    /// Unexpected server errors of the delete.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the rest of the close (the delete included) to the
    /// background.
    pub async fn close(self) -> Result<()> {
        self.shutdown().await
    }

    async fn shutdown(&self) -> Result<()> {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner()).take();
        let shared = self.shared.clone();
        // a task of its own: a dropped `close` leaves it to finish in the background (the
        // keeper is out of the handle by now, so the handle's drop would not clean up)
        let work = tokio::spawn(async move {
            if let Some(k) = keeper {
                k.stop().await;
            }
            remove_node(&shared).await
        });
        match work.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::Closed), // the runtime is shutting down
        }
    }
}

impl Drop for PersistentNode {
    fn drop(&mut self) {
        let keeper = self
            .keeper
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(k) = keeper {
            let shared = self.shared.clone();
            spawn_cleanup("persistent node dropped", async move {
                k.stop().await;
                if let Err(e) = remove_node(&shared).await {
                    warn!(error = %e, "persistent node not deleted after drop");
                }
            });
        }
    }
}

/// Deletes the node the keeper made (if the handle deletes on close), and whatever a create
/// in flight when the keeper stopped may have made (it is answered before these requests:
/// one session, requests in order). An ephemeral node is deleted only if it is of the current
/// session (a node at our fixed path that we were waiting out is not ours).
async fn remove_node(shared: &Shared) -> Result<()> {
    if !shared.delete_on_close {
        return Ok(());
    }
    let (actual, creating) = {
        let v = shared.view.borrow();
        (v.actual.clone(), v.creating.clone())
    };
    shared.update(|v| v.present = false);
    let client = &shared.client;
    let sid = client.session_id();
    let mut first_err = None;
    let mut exact: Vec<String> = actual.into_iter().collect();
    match creating {
        Some(Creating::Exact(p)) if !exact.contains(&p) => exact.push(p),
        Some(Creating::Protected { parent, prefix }) => {
            if let Err(e) = delete_by_prefix(client, &parent, &prefix, sid).await {
                first_err.get_or_insert(e);
            }
        }
        _ => {}
    }
    for node in exact {
        let r = if shared.mode.is_ephemeral() {
            delete_if_owned(client, &node, sid).await
        } else {
            delete_retrying(client, &node, None).await.map(|_| ())
        };
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Deletes `node` if it is an ephemeral node of session `sid`, through connection loss while
/// that session lives.
async fn delete_if_owned(client: &Client, node: &str, sid: i64) -> Result<()> {
    loop {
        let r = match client.exists(node).await {
            Ok(Some(st)) if st.ephemeral_owner == sid => match client.delete(node, None).await {
                Ok(()) | Err(Error::NoNode) => return Ok(()),
                Err(e) => Err(e),
            },
            Ok(_) => return Ok(()),
            Err(e) => Err(e),
        };
        match r {
            Err(e) if e.is_session_dead() => return Ok(()),
            Err(e) if e.is_retryable() => {
                if client.session_id() != sid && client.state() == State::Connected {
                    return Ok(()); // that session's nodes are gone
                }
                let _ =
                    wait_connected(client, Some(Instant::now() + Duration::from_secs(60))).await;
            }
            Err(e) => return Err(e),
            Ok(()) => return Ok(()),
        }
    }
}

/// What one look found.
enum Look {
    /// Present (ours); a watch on it.
    Present(OneshotWatcher),
    /// Someone else's ephemeral node holds our fixed path: wait for it to go.
    WaitGone(OneshotWatcher),
    /// Something changed (created, adopted, recovered): look again at once.
    Again,
}

/// The keeper's memory between looks.
#[derive(Default)]
struct KeepState {
    /// A protected create whose outcome is unknown: the protected prefix `_c_<uuid>-`.
    pending: Option<String>,
    /// The session in which our node was last seen present: a foreign node found at our
    /// path after that, in the same session, is a later registration that replaced ours,
    /// not an earlier one (see [`Shared::replace_foreign`]).
    present_in: Option<i64>,
}

/// The keeper task.
async fn keep(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let client = shared.client.clone();
    let mut wake = Wakeups::new(&client);
    let mut st = KeepState::default();
    loop {
        if *stop.borrow() {
            return;
        }
        let step = tokio::select! {
            biased;
            _ = stop.changed() => return,
            r = look(&shared, &mut st) => r,
        };
        let (mut watcher, pause) = match step {
            Ok(Look::Present(w)) => {
                shared.update(|v| {
                    v.present = true;
                    v.created = true;
                });
                (Some(w), None)
            }
            Ok(Look::WaitGone(w)) => {
                shared.update(|v| v.present = false);
                (Some(w), None)
            }
            Ok(Look::Again) => continue,
            Err(e) if matches!(e, Error::Closed | Error::AuthFailed) => {
                shared.update(|v| {
                    v.present = false;
                    v.fatal = Some(e);
                });
                return;
            }
            Err(e) if e.is_retryable() || e.is_session_dead() => {
                shared.update(|v| v.present = false);
                (None, Some(Duration::from_millis(100)))
            }
            Err(e) => {
                warn!(node = %shared.base, error = %e, "persistent node: could not create it; retrying");
                shared.update(|v| {
                    v.present = false;
                    if !v.created {
                        v.fatal = Some(e);
                    }
                });
                (None, Some(Duration::from_secs(1)))
            }
        };
        let until = pause.map(|p| Instant::now() + p);
        loop {
            let w = tokio::select! {
                _ = stop.changed() => return,
                _ = shared.poke.notified() => break,
                w = wake.next(&mut watcher, until) => w,
            };
            match w {
                Wake::Event(_) | Wake::Deadline => break,
                Wake::State(s) if s.state == State::Connected => break,
                Wake::State(_) => shared.update(|v| v.present = false),
                Wake::StatesEnded => {
                    shared.update(|v| {
                        v.present = false;
                        v.fatal = Some(Error::Closed);
                    });
                    return;
                }
            }
        }
    }
}

/// The mode of a re-creation at a path already set (Curator's rule: no second sequence).
fn without_sequence(mode: CreateMode) -> CreateMode {
    match mode {
        CreateMode::EphemeralSequential => CreateMode::Ephemeral,
        CreateMode::PersistentSequential => CreateMode::Persistent,
        CreateMode::PersistentSequentialWithTtl(t) => CreateMode::PersistentWithTtl(t),
        m => m,
    }
}

/// `<parent>/_c_<uuid>-<name>` for `base`, and the prefix that finds it again.
fn protected_name(base: &str) -> (String, String) {
    let parent = parent_of(base);
    let name = &base[base.rfind('/').map_or(0, |i| i + 1)..];
    let prefix = format!("_c_{}-", uuid::Uuid::new_v4().hyphenated());
    (child_path(parent, &format!("{prefix}{name}")), prefix)
}

/// One look: check the node we made, or create it.
async fn look(shared: &Shared, st: &mut KeepState) -> Result<Look> {
    let client = &shared.client;
    let sid = client.session_id();
    let parent = parent_of(&shared.base);
    if let Some(prefix) = st.pending.clone() {
        // a protected create whose reply was lost: find it before creating anything
        // (the create stays in doubt, for `close` to find, until it is settled: the keeper
        // may be stopped at any of these requests)
        let children = match client.get_children(parent).await {
            Ok(c) => c,
            Err(Error::NoNode) => Vec::new(),
            Err(e) => return Err(e),
        };
        if let Some(name) = children.iter().find(|c| c.starts_with(&prefix)) {
            let node = child_path(parent, name);
            match client.exists(&node).await? {
                Some(s) if !shared.mode.is_ephemeral() || s.ephemeral_owner == sid => {
                    debug!(node, "protected create recovered");
                    shared.update(|v| v.actual = Some(node));
                }
                Some(_) => {
                    // of an older session of ours: an orphan, not to be kept
                    match client.delete(&node, None).await {
                        Ok(()) | Err(Error::NoNode) => {}
                        Err(e) => return Err(e),
                    }
                }
                None => {}
            }
        }
        st.pending = None;
        shared.update(|v| v.creating = None);
        return Ok(Look::Again);
    }
    let actual = shared.view.borrow().actual.clone();
    if let Some(path) = &actual {
        let (stat, w) = client.exists_watch(path).await?;
        match stat {
            Some(s) if !shared.mode.is_ephemeral() || s.ephemeral_owner == sid => {
                let (data, dirty) = shared.data().clone();
                if dirty {
                    match client.set_data(path, &data, None).await {
                        Ok(_) => {
                            let mut d = shared.data();
                            if d.0 == data {
                                d.1 = false;
                            }
                        }
                        Err(Error::NoNode) => return Ok(Look::Again),
                        Err(e) => return Err(e),
                    }
                }
                st.present_in = Some(sid);
                return Ok(Look::Present(w));
            }
            Some(_)
                if shared.protected || (shared.replace_foreign && st.present_in != Some(sid)) =>
            {
                // an old session's node of ours (protected: its uuid is ours; a registration:
                // its id is ours): it goes with that session anyway. (A registration that
                // replaced ours while ours was present in this session is a later one: it is
                // waited out below, or the two would replace each other for ever.)
                match client.delete(path, None).await {
                    Ok(()) | Err(Error::NoNode) => {}
                    Err(e) => return Err(e),
                }
                shared.update(|v| v.actual = None);
                return Ok(Look::Again);
            }
            Some(s) => {
                debug!(node = %path, owner = s.ephemeral_owner, "waiting for another session's node to go");
                return Ok(Look::WaitGone(w));
            }
            None => drop(w),
        }
    }
    // create it, with the data as it is now
    let data = {
        let mut d = shared.data();
        d.1 = false;
        d.0.clone()
    };
    let (path, mode, prefix) = match (&actual, shared.protected) {
        (_, true) => {
            // the path given must be one ZooKeeper takes, as it would be unprotected (the
            // protected name is made from its parts)
            zk_core::validate_path(&shared.base, shared.mode.is_sequential())?;
            let (p, prefix) = protected_name(&shared.base);
            (p, shared.mode, Some(prefix))
        }
        (Some(p), false) => (p.clone(), without_sequence(shared.mode), None),
        (None, false) => (shared.base.clone(), shared.mode, None),
    };
    // what `close` must look for if this create is interrupted or its reply lost
    let creating = match &prefix {
        Some(p) => Some(Creating::Protected {
            parent: parent.to_owned(),
            prefix: p.clone(),
        }),
        None if !mode.is_sequential() => Some(Creating::Exact(path.clone())),
        // a sequential name we cannot know: use protection (see the type's docs)
        None => None,
    };
    shared.update(|v| v.creating = creating);
    let r = client.create(&path, &data, mode).await;
    if !r.as_ref().is_err_and(Error::may_have_been_applied) {
        shared.update(|v| v.creating = None); // settled
    }
    match r {
        Ok(created) => {
            shared.update(|v| v.actual = Some(created));
            Ok(Look::Again)
        }
        Err(Error::NodeExists) if prefix.is_none() => {
            // a fixed path: look at what is there (ours after a lost reply, a persistent
            // node to adopt, or another session's ephemeral to wait out)
            if !shared.mode.is_ephemeral() {
                shared.data().1 = true; // Curator gives an adopted node our data
            }
            shared.update(|v| v.actual = Some(path));
            Ok(Look::Again)
        }
        Err(Error::NodeExists) => Ok(Look::Again),
        Err(Error::NoNode) => {
            ensure_containers(client, parent).await?;
            Ok(Look::Again)
        }
        Err(e) if e.may_have_been_applied() => {
            if prefix.is_some() {
                st.pending = prefix;
            } else if !mode.is_sequential() {
                shared.update(|v| v.actual = Some(path));
            }
            shared.data().1 = true; // it may not have been written
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// The name of a [`PersistentTtlNode`]'s child (Curator's `DEFAULT_CHILD_NODE_NAME`).
pub const TTL_TOUCH_CHILD: &str = "touch";

/// A node that lives while its owner does, and a while longer, without an ephemeral node
/// (Curator's `PersistentTtlNode`): a container node at `P` (kept present, with the data) and
/// a TTL child `P/touch` (`PersistentWithTtl(ttl)`) written every `ttl / 2`. When the owner
/// stops (closed, crashed, cut off), the child is no longer touched and expires after `ttl`;
/// the container, now empty, is then deleted by the server. Needs `extendedTypesEnabled=true`
/// on the server.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use zk_recipes::PersistentTtlNode;
///
/// let node = PersistentTtlNode::new(&client, "/workers/w-7", Duration::from_secs(30), "busy");
/// node.start();
/// node.wait_for_initial_create_timeout(Duration::from_secs(10)).await?;
/// // ... work; the node outlives a crash by up to 30 s plus the server's container sweep
/// node.close().await; // stops touching: the nodes expire
/// # Ok(()) }
/// ```
///
/// # Behavior
///
/// * **Layout (Curator 5.4).** `P`: CONTAINER, data = ours, kept present as a
///   [`PersistentNode`] (not protected). `P/touch`: PERSISTENT_WITH_TTL, `ttl` in ms; touched
///   every `ttl / 2` (Curator's `touchScheduleFactor` 2) by a `setData`, or created when
///   missing. Curator writes the client's default data (its local address) into `touch`;
///   this writes nothing (empty): nobody reads it.
/// * **SUSPENDED / LOST.** The touches fail while disconnected and go on after the reconnect;
///   the node is persistent, so a session loss changes nothing by itself. A disconnect longer
///   than about `ttl / 2` can let the child expire and the container go: the container is then
///   created again (the [`PersistentNode`] rule) and the next touch creates the child.
/// * **Close.** [`close`](Self::close) (or dropping the handle) stops the touches and deletes
///   nothing, as Curator: the child expires after `ttl`, the container after that (the
///   server checks TTL and container nodes every `znode.container.checkIntervalMs`, 60 s by
///   default: the end is fuzzy).
/// * **Cancel safety.** The waits only wait; dropping them changes nothing.
#[derive(Debug)]
pub struct PersistentTtlNode {
    node: PersistentNode,
    ttl: Duration,
    toucher: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl PersistentTtlNode {
    /// A TTL node at `path` (see the type's docs); not started. `ttl` must be between 1 ms and
    /// about 34 years (the server's limit); with an invalid one nothing is started or created
    /// and the `wait_for_initial_create*` calls answer [`Error::InvalidArgument`].
    pub fn new(client: &Client, path: &str, ttl: Duration, data: impl Into<Vec<u8>>) -> Self {
        PersistentTtlNode {
            node: PersistentNode::build(client, path, CreateMode::Container, data.into(), false),
            ttl,
            toucher: Default::default(),
        }
    }

    /// Starts keeping the container and touching the child (idempotent; nothing with an
    /// invalid TTL).
    pub fn start(&self) {
        if let Err(e) = check_ttl(self.ttl) {
            // nothing to keep: the waits answer the error
            self.node
                .closed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            self.node.shared.update(|v| v.fatal = Some(e));
            return;
        }
        self.node.start();
        let mut t = self.toucher.lock().unwrap_or_else(|p| p.into_inner());
        if t.is_none() && !self.node.closed.load(std::sync::atomic::Ordering::SeqCst) {
            let client = self.node.shared.client.clone();
            let child = child_path(&self.node.shared.base, TTL_TOUCH_CHILD);
            let mut view = self.node.shared.view.subscribe();
            let (ttl, period) = (self.ttl, (self.ttl / 2).max(Duration::from_millis(1)));
            *t = Some(tokio::spawn(async move {
                // the first touch once the container exists
                if view.wait_for(|v| v.created).await.is_err() {
                    return;
                }
                let mut tick = tokio::time::interval(period);
                loop {
                    tick.tick().await;
                    if let Err(e) = touch(&client, &child, ttl).await {
                        debug!(node = %child, error = %e, "could not touch the TTL child");
                    }
                }
            }));
        }
    }

    /// As [`PersistentNode::wait_for_initial_create`] (the container); starts if needed.
    ///
    /// # Errors
    /// As [`PersistentNode::wait_for_initial_create`].
    pub async fn wait_for_initial_create(&self) -> Result<()> {
        self.start();
        self.node.wait_for_initial_create().await
    }

    /// As [`PersistentNode::wait_for_initial_create_timeout`].
    ///
    /// # Errors
    /// As [`PersistentNode::wait_for_initial_create`].
    pub async fn wait_for_initial_create_timeout(&self, timeout: Duration) -> Result<Option<()>> {
        self.start();
        self.node.wait_for_initial_create_timeout(timeout).await
    }

    /// As [`PersistentNode::wait_for_initial_create_until`].
    ///
    /// # Errors
    /// As [`PersistentNode::wait_for_initial_create`].
    pub async fn wait_for_initial_create_until(&self, deadline: Instant) -> Result<Option<()>> {
        self.start();
        self.node.wait_for_initial_create_until(deadline).await
    }

    /// The container's path.
    pub fn path(&self) -> &str {
        self.node.path()
    }

    /// The TTL child's path (`P/touch`).
    pub fn touch_path(&self) -> String {
        child_path(self.node.path(), TTL_TOUCH_CHILD)
    }

    /// Whether the container was present at the keeper's last look.
    pub fn is_present(&self) -> bool {
        self.node.is_present()
    }

    /// The container's data.
    pub fn data(&self) -> Vec<u8> {
        self.node.data()
    }

    /// Sets the container's data (as [`PersistentNode::set_data`]).
    ///
    /// # Errors
    /// As [`PersistentNode::set_data`].
    pub fn set_data(&self, data: impl Into<Vec<u8>>) -> Result<()> {
        self.node.set_data(data)
    }

    /// Stops keeping and touching; deletes nothing (the child expires, then the container).
    pub async fn close(self) {
        if let Some(t) = self
            .toucher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
        let _ = self.node.shutdown().await; // deletes nothing for a TTL node
    }
}

impl Drop for PersistentTtlNode {
    fn drop(&mut self) {
        if let Some(t) = self
            .toucher
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
    }
}

/// The server's TTL range: 1 ms to 2^40 - 1 ms (`EphemeralType.TTL`'s limit).
fn check_ttl(ttl: Duration) -> Result<()> {
    const MAX_TTL_MS: u128 = (1 << 40) - 1;
    match ttl.as_millis() {
        1..=MAX_TTL_MS => Ok(()),
        _ => Err(Error::InvalidArgument(format!(
            "a TTL must be between 1 ms and {MAX_TTL_MS} ms, not {ttl:?}"
        ))),
    }
}

/// One touch of a TTL child: `setData`, or a create when it is missing (Curator's order).
async fn touch(client: &Client, child: &str, ttl: Duration) -> Result<()> {
    match client.set_data(child, b"", None).await {
        Ok(_) => Ok(()),
        Err(Error::NoNode) => {
            match client
                .create(child, b"", CreateMode::PersistentWithTtl(ttl))
                .await
            {
                // a racing touch, or the container is being re-created: the next one does it
                Ok(_) | Err(Error::NodeExists) | Err(Error::NoNode) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Group membership on a [`PersistentNode`] (Curator's `GroupMember`): this member is the
/// EPHEMERAL node `P/<id>` (data = its payload), kept present through reconnects, session
/// loss and deletion; [`members`](Self::members) maps every member id to its data.
///
/// ```no_run
/// # async fn f(client: zk_core::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use zk_recipes::GroupMember;
///
/// let me = GroupMember::new(&client, "/groups/indexers", "host-7")?.data("10.0.0.7");
/// me.join_timeout(Duration::from_secs(10)).await?;
/// for (id, data) in me.members().await? {
///     println!("{id}: {}", String::from_utf8_lossy(&data));
/// }
/// me.leave().await?;
/// # Ok(()) }
/// ```
///
/// # Behavior
///
/// * **Layout (Curator 5.4).** `P/<id>`, EPHEMERAL, not protected, data = the payload; the
///   parent made as containers. A Curator `GroupMember` with the same path sees us and we see
///   it. Member ids are the child names of `P`.
/// * **SUSPENDED / LOST.** As [`PersistentNode`]: the node comes back after a session loss or a
///   deletion; while another session's node holds `P/<id>` (our old session's, until the
///   server processes its expiry; or another process using the same id) this member waits for
///   it to go. Curator adopts such a node instead.
/// * **Deadlines and cancel safety.** `join_timeout` / `join_until` return `Ok(None)` when the
///   deadline passes first; the member stays started (call [`leave`](Self::leave)). Dropping
///   the handle leaves in the background.
#[derive(Debug)]
pub struct GroupMember {
    node: PersistentNode,
    path: String,
    id: String,
}

impl GroupMember {
    /// The member `id` of the group at `path` (empty data; see [`data`](Self::data)).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `id` is empty or contains `/` (it is a node name);
    /// [`Error::BadPath`] if `path` is not one ZooKeeper takes (an empty one would put the
    /// member at the root).
    pub fn new(client: &Client, path: &str, id: impl Into<String>) -> Result<GroupMember> {
        zk_core::validate_path(path, false)?;
        let id = id.into();
        if id.is_empty() || id.contains('/') {
            return Err(Error::InvalidArgument(format!(
                "a group member id is a node name: {id:?}"
            )));
        }
        Ok(GroupMember {
            node: PersistentNode::new(client, &child_path(path, &id), CreateMode::Ephemeral, ""),
            path: path.to_owned(),
            id,
        })
    }

    /// This member's data (its payload), set before joining. Data over the client's
    /// [`max_data_len`](Client::max_data_len) makes [`join`](Self::join) fail with
    /// [`Error::DataTooLarge`] (the first create's error).
    pub fn data(self, data: impl Into<Vec<u8>>) -> Self {
        self.node.put_data(data.into());
        self
    }

    /// This member's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Joins (starts keeping `P/<id>`) and waits until the node exists.
    ///
    /// # Errors
    /// As [`PersistentNode::wait_for_initial_create`].
    pub async fn join(&self) -> Result<()> {
        self.node.wait_for_initial_create().await
    }

    /// [`join`](Self::join) with a deadline: `Ok(None)` if it passed first.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub async fn join_timeout(&self, timeout: Duration) -> Result<Option<()>> {
        self.node.wait_for_initial_create_timeout(timeout).await
    }

    /// [`join_timeout`](Self::join_timeout) with an absolute deadline.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub async fn join_until(&self, deadline: Instant) -> Result<Option<()>> {
        self.node.wait_for_initial_create_until(deadline).await
    }

    /// Whether this member's node was present at the keeper's last look.
    pub fn is_present(&self) -> bool {
        self.node.is_present()
    }

    /// Changes this member's data (Curator's `setThisData`).
    ///
    /// # Errors
    /// As [`PersistentNode::set_data`].
    pub fn set_data(&self, data: impl Into<Vec<u8>>) -> Result<()> {
        self.node.set_data(data)
    }

    /// Every member id and its data, read from the server now (Curator's
    /// `getCurrentMembers`, which reads its cache). A missing group is empty.
    ///
    /// # Errors
    /// Server errors; connection loss is retried.
    pub async fn members(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        let client = &self.node.shared.client;
        let names =
            match crate::plumbing::with_retries(None, || client.get_children(&self.path)).await {
                Ok(n) => n.unwrap_or_default(),
                Err(Error::NoNode) => return Ok(BTreeMap::new()),
                Err(e) => return Err(e),
            };
        let mut out = BTreeMap::new();
        for name in names {
            let p = child_path(&self.path, &name);
            match crate::plumbing::with_retries(None, || client.get_data(&p)).await {
                Ok(Some((d, _))) => {
                    out.insert(name, d);
                }
                Ok(None) | Err(Error::NoNode) => {} // left meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Leaves: stops keeping the node and deletes it.
    ///
    /// # Errors
    /// As [`PersistentNode::close`].
    pub async fn leave(self) -> Result<()> {
        self.node.close().await
    }
}
