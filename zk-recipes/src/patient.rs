//! kazoo's `PatientChildrenWatch`: the children of a node, reported once they have not changed
//! for a while.

use crate::plumbing::{deadline_after, with_retries, Wake, Wakeups};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tracing::debug;
use zk_core::{Client, Error, OneshotWatcher, Result, State};

/// Waits until the children of a node have been stable (no child created or deleted, the
/// node neither created nor deleted) for `time_boundary`, then reports them once, with a
/// future that resolves when they change after that: kazoo's `PatientChildrenWatch`.
///
/// ```no_run
/// use std::time::Duration;
/// use zk_recipes::PatientChildrenWatch;
///
/// # async fn f(client: zk_core::Client) -> zk_core::Result<()> {
/// // wait for the worker group to settle: 5 s without a join or a departure, at most 60 s
/// let watch = PatientChildrenWatch::new(&client, "/app/workers", Duration::from_secs(5));
/// if let Some((workers, changed)) = watch.wait_timeout(Duration::from_secs(60)).await? {
///     println!("stable: {workers:?}"); // None if /app/workers does not exist
///     changed.await?; // resolves at the next change
///     println!("the workers changed");
/// }
/// # Ok(()) }
/// ```
///
/// # How it works
///
/// `getChildren(P)` with a watch (`exists(P)` with a watch while `P` is missing), then wait.
/// A watch event before `time_boundary` has passed since the read means a change: read again
/// and start the wait over. Only time spent connected in one session counts: a disconnect
/// (SUSPENDED) or a new session starts the wait over after the next read, since changes made
/// meanwhile may not have been seen yet. Once `time_boundary` passes without an event, the
/// last read is the answer.
///
/// **kazoo differences.** kazoo sleeps `time_boundary` after each read and only then looks
/// whether anything changed (so it answers between one and two boundaries after the last
/// change); here the wait starts over at the change itself, so the answer comes exactly one
/// boundary after the last change seen. A missing node is `None` (stable when it stays
/// missing) where kazoo fails with `NoNodeError`. Disconnects restart the wait (kazoo does
/// not notice them). The change future resolves with `Err(SessionExpired)` if the session
/// is lost before a change (the watch is gone; kazoo's async result would never be set).
#[derive(Debug, Clone)]
pub struct PatientChildrenWatch {
    client: Client,
    path: String,
    time_boundary: Duration,
}

/// What one read found: the sorted children, or `None` if the node is missing; and the watch.
type Read = (Option<Vec<String>>, OneshotWatcher);

impl PatientChildrenWatch {
    /// A watch on the children of `path` that reports them once they are stable for
    /// `time_boundary` (kazoo's default is 30 s). Nothing is sent until a `wait`.
    pub fn new(client: &Client, path: &str, time_boundary: Duration) -> PatientChildrenWatch {
        PatientChildrenWatch {
            client: client.clone(),
            path: path.to_owned(),
            time_boundary,
        }
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The quiet time required.
    pub fn time_boundary(&self) -> Duration {
        self.time_boundary
    }

    /// Waits however long it takes for the children to be stable for `time_boundary`; then
    /// the children (sorted; `None` if the node does not exist) and a [`ChildrenChanged`]
    /// future for the next change.
    ///
    /// # Errors
    /// [`Error::Closed`] if the client is closed, [`Error::SessionExpired`] if the session is
    /// lost and the client will not start a new one, or a read's non-transient error
    /// ([`Error::NoAuth`], [`Error::BadPath`]). Connection loss is waited out.
    ///
    /// # Cancel safety
    /// Cancel-safe: it writes nothing (a pending one-shot watch fires into nothing).
    pub async fn wait(&self) -> Result<(Option<Vec<String>>, ChildrenChanged)> {
        self.wait_until_opt(None)
            .await
            .map(|r| r.expect("no deadline"))
    }

    /// [`wait`](Self::wait) within one total `timeout`: `Ok(None)` when it passes first.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// # Cancel safety
    /// As [`wait`](Self::wait).
    pub async fn wait_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<(Option<Vec<String>>, ChildrenChanged)>> {
        self.wait_until_opt(Some(deadline_after(timeout))).await
    }

    /// [`wait`](Self::wait) until `deadline`: `Ok(None)` when it passes first.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// # Cancel safety
    /// As [`wait`](Self::wait).
    pub async fn wait_until(
        &self,
        deadline: Instant,
    ) -> Result<Option<(Option<Vec<String>>, ChildrenChanged)>> {
        self.wait_until_opt(Some(deadline)).await
    }

    /// One read that leaves a watch: on the children, or on the creation if missing.
    async fn read_once(&self) -> Result<Read> {
        let (c, p) = (&self.client, self.path.as_str());
        loop {
            match c.get_children_watch(p).await {
                Ok((mut children, w)) => {
                    children.sort();
                    return Ok((Some(children), w));
                }
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
            match c.exists_watch(p).await? {
                (None, w) => return Ok((None, w)),
                // created between the two reads: read it
                (Some(_), _) => continue,
            }
        }
    }

    async fn wait_until_opt(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<(Option<Vec<String>>, ChildrenChanged)>> {
        // subscribed before the first read: no transition after it is missed
        let mut wake = Wakeups::new(&self.client);
        'read: loop {
            let (children, w) = match with_retries(deadline, || self.read_once()).await {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(None),
                Err(Error::SessionExpired) => {
                    if !wake.wait_new_session(&self.client, deadline).await? {
                        return Ok(None);
                    }
                    continue 'read;
                }
                Err(e) => return Err(e),
            };
            // saturating: a boundary of "for ever" is a wait that never ends, not a panic
            let quiet_until = deadline_after(self.time_boundary);
            let until = match deadline {
                Some(d) if d < quiet_until => d,
                _ => quiet_until,
            };
            let mut watcher = Some(w);
            loop {
                match wake.next(&mut watcher, Some(until)).await {
                    Wake::Deadline if Instant::now() >= quiet_until => {
                        let w = watcher.take().expect("not fired");
                        return Ok(Some((children, ChildrenChanged { watcher: w })));
                    }
                    // the caller's deadline, before the quiet time was over
                    Wake::Deadline => return Ok(None),
                    Wake::Event(Ok(ev)) => {
                        debug!(path = %self.path, ?ev, "changed; waiting again");
                        continue 'read;
                    }
                    // the watch died with the session: read again in the new one
                    Wake::Event(Err(Error::SessionExpired)) => {
                        if !wake.wait_new_session(&self.client, deadline).await? {
                            return Ok(None);
                        }
                        continue 'read;
                    }
                    Wake::Event(Err(e)) => return Err(e),
                    // unseen changes are possible: wait for the connection, read again
                    Wake::State(s) if s.state == State::Suspended => {
                        if !wake.wait_new_session(&self.client, deadline).await? {
                            return Ok(None);
                        }
                        continue 'read;
                    }
                    // CONNECTED; LOST (an expiry: the watch's error follows)
                    Wake::State(_) => {}
                    Wake::StatesEnded => {
                        // the session task ended: the next read says why
                        continue 'read;
                    }
                }
            }
        }
    }
}

/// Resolves when the children reported by [`PatientChildrenWatch`] change (a child created
/// or deleted, the node created or deleted): `Ok(())`. `Err(`[`Error::SessionExpired`]`)`
/// if the session is lost first (the watch is gone: they may have changed), `Err(Closed)`
/// if the client is closed. Like any one-shot watch it survives reconnects in the same
/// session: a change made while disconnected resolves it on reconnect.
#[derive(Debug)]
#[must_use = "a watch does nothing unless awaited"]
pub struct ChildrenChanged {
    watcher: OneshotWatcher,
}

impl Future for ChildrenChanged {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.watcher).poll(cx).map(|r| r.map(|_| ()))
    }
}
