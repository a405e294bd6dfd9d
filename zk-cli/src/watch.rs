//! `zk watch`: a persistent (recursive) watch, one line per event, kept across reconnects,
//! server restarts, failover and session loss.

use crate::error::{out, Context, Failure};
use crate::output::{json, Format};
use crate::signals::Signals;
use futures::StreamExt;
use serde::Serialize;
use std::time::Duration;
use zk_core::{AddWatchMode, Client, Error, EventType, PersistentWatcher, State, WatchedEvent};

/// What `zk watch` was asked for.
pub struct WatchArgs {
    /// The watched node.
    pub path: String,
    /// Print NodeChildrenChanged too.
    pub children: bool,
    /// Watch the subtree.
    pub recursive: bool,
    /// Exit after this many events.
    pub count: Option<u64>,
    /// Lines of text, or of JSON.
    pub format: Format,
}

/// One event of `zk watch -o json`.
#[derive(Serialize)]
struct EventJson<'a> {
    #[serde(rename = "type")]
    event_type: String,
    path: &'a str,
}

/// Whether an event is printed.
pub fn wanted(a: &WatchArgs, ev: &WatchedEvent) -> bool {
    match ev.event_type {
        EventType::NodeCreated | EventType::NodeDeleted | EventType::NodeDataChanged => true,
        EventType::NodeChildrenChanged => a.children,
        _ => false,
    }
}

/// Prints `state X` on stderr, once per change.
struct StateLine(Option<State>);

impl StateLine {
    fn say(&mut self, s: State) {
        if self.0 != Some(s) {
            self.0 = Some(s);
            eprintln!("state {s}");
        }
    }
}

/// `zk watch PATH [--children | --recursive] [--count N]`.
pub async fn watch(c: &Client, a: WatchArgs) -> Result<i32, Failure> {
    let mut signals = Signals::new()?;
    let mode = if a.recursive {
        AddWatchMode::PersistentRecursive
    } else {
        AddWatchMode::Persistent
    };
    let what = || format!("watch {}", a.path);
    // subscribe first: no transition after the watch is set is missed
    let mut states = c.state_stream();
    // every request below races SIGINT / SIGTERM: a request held up (a slow or stalled
    // server) must not hold up Ctrl-C until the connection is declared dead
    let Some(first) = or_signal(&mut signals, c.add_watch(&a.path, mode)).await else {
        return Ok(0);
    };
    let mut watcher: Option<PersistentWatcher> = Some(first.ctx(what)?);
    let mut watch_session = c.session_id();
    let mut line = StateLine(None);
    line.say(State::Connected);
    let mut printed = 0u64;
    // a round trip after each reconnect: once answered, the server has the watch again
    // (re-registration is sent before anything else on a new connection)
    let round_trip = Duration::from_secs(30);
    loop {
        if watcher.is_none() && c.state() == State::Connected {
            let bounded = c.with_timeout(round_trip);
            let Some(again) = or_signal(&mut signals, bounded.add_watch(&a.path, mode)).await
            else {
                return Ok(0);
            };
            match again {
                Ok(w) => {
                    watcher = Some(w);
                    watch_session = c.session_id();
                    line.say(State::Connected);
                }
                Err(e) if e.is_retryable() || matches!(e, Error::SessionExpired) => {
                    tracing::debug!(error = %e, "setting the watch again failed; retrying");
                }
                Err(e) => return Err(Failure::zk(&what(), e)),
            }
        }
        tokio::select! {
            ev = next_event(&mut watcher) => match ev {
                Some(Ok(ev)) => {
                    if wanted(&a, &ev) {
                        match a.format {
                            Format::Text => out(format!("{} {}\n", ev.event_type, ev.path).as_bytes())?,
                            Format::Json => json(&EventJson { event_type: ev.event_type.to_string(), path: &ev.path })?,
                        }
                        printed += 1;
                        if a.count.is_some_and(|n| printed >= n) {
                            return Ok(0);
                        }
                    }
                }
                Some(Err(Error::SessionExpired)) | None => {
                    // the session is gone: set the watch again once there is a new one
                    watcher = None;
                }
                Some(Err(e)) if e.is_session_dead() => {
                    return Err(Failure::zk(&what(), e));
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "watch stream ended; setting it again");
                    watcher = None;
                }
            },
            s = states.next() => {
                let Some(s) = s else {
                    return Err(Failure::Failed(format!("{}: the client stopped", what())));
                };
                match s.state {
                    State::Suspended => line.say(State::Suspended),
                    State::Lost => {
                        line.say(State::Lost);
                        match s.keeper_state {
                            zk_core::KeeperState::AuthFailed => return Err(Failure::zk(&what(), Error::AuthFailed)),
                            zk_core::KeeperState::Closed => return Err(Failure::zk(&what(), Error::Closed)),
                            _ => {} // expired: a new session follows
                        }
                    }
                    State::Connected => {
                        if watcher.is_some() && s.session_id == watch_session {
                            let bounded = c.with_timeout(round_trip);
                            match or_signal(&mut signals, bounded.exists(&a.path)).await {
                                None => return Ok(0),
                                Some(Ok(_)) => line.say(State::Connected),
                                Some(Err(e)) => tracing::debug!(error = %e, "round trip after reconnect failed"),
                            }
                        } else {
                            watcher = None;
                        }
                    }
                    other => line.say(other),
                }
            },
            // no watch on the current session: set it (again), and retry every second
            _ = tokio::time::sleep(Duration::from_secs(1)), if watcher.is_none() && c.state() == State::Connected => {}
            _ = signals.recv() => return Ok(0),
        }
    }
}

/// `f`'s output, or `None` if SIGINT / SIGTERM comes first (`zk watch` then exits 0).
async fn or_signal<T>(signals: &mut Signals, f: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        v = f => Some(v),
        _ = signals.recv() => None,
    }
}

async fn next_event(w: &mut Option<PersistentWatcher>) -> Option<zk_core::Result<WatchedEvent>> {
    match w.as_mut() {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}
