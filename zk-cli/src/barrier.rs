//! `zk barrier create|remove|wait PATH [--timeout DURATION]` (kazoo's Barrier).

use crate::duration::human;
use crate::error::Failure;
use crate::signals::{self, Signals};
use std::time::Duration;
use zk_core::Client;
use zk_recipes::barrier::Barrier;

/// Which barrier action.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Put it up.
    Create,
    /// Take it down.
    Remove,
    /// Wait until it is down.
    Wait,
}

/// Runs one barrier action; 75 when `timeout` passes first. A zero `timeout` does what needs
/// no waiting: `create` and `remove` go through, `wait` passes only if the barrier is down.
pub async fn barrier(
    c: &Client,
    action: Action,
    path: &str,
    timeout: Option<Duration>,
) -> Result<i32, Failure> {
    let mut signals = Signals::new()?;
    let b = Barrier::new(c, path);
    let name = match action {
        Action::Create => "create",
        Action::Remove => "remove",
        Action::Wait => "wait",
    };
    let what = format!("barrier {name} {path}");
    let timed_out = || {
        Failure::Timeout(format!(
            "{what}: timed out after {}",
            human(timeout.unwrap_or_default())
        ))
    };
    let work = async {
        match action {
            Action::Create => b.create().await.map(|_| true),
            Action::Remove => {
                let removed = b.remove().await?;
                if !removed {
                    tracing::info!("{path} was already down");
                }
                Ok(true)
            }
            Action::Wait => b.wait().await.map(|()| true),
        }
    };
    let bounded = async {
        match timeout {
            // 0: what needs no waiting (as `lock --timeout 0`): create and remove are one
            // request each; wait passes only if the barrier is down now
            Some(t) if t.is_zero() => match action {
                Action::Wait => b.try_wait().await.map(|r| r.is_some()),
                Action::Create | Action::Remove => work.await,
            },
            Some(t) => tokio::time::timeout(t, work).await.unwrap_or(Ok(false)),
            None => work.await,
        }
    };
    tokio::select! {
        r = bounded => match r {
            Ok(true) => Ok(0),
            Ok(false) => Err(timed_out()),
            Err(e) => Err(Failure::zk(&what, e)),
        },
        sig = signals.recv() => Err(Failure::Status(128 + sig, format!("{what}: got {}; gave up", signals::name(sig)))),
    }
}
