//! The servers under test and each client's fault proxies.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zk_core::Client;
use zk_testkit::{Ensemble, FaultProxy, ZkServer};

/// ZooKeeper tick for the run: sessions may time out between 1 s and 10 s.
pub const TICK_MS: u32 = 500;

/// One standalone server or an ensemble, behind one interface.
#[derive(Debug)]
pub enum Servers {
    /// `--standalone`.
    Standalone(Box<ZkServer>),
    /// The default: three members.
    Ensemble(Ensemble),
}

impl Servers {
    /// Starts the servers (blocking).
    ///
    /// # Errors
    /// As zk-testkit's start.
    pub fn start(standalone: bool) -> zk_testkit::Result<Servers> {
        if standalone {
            Ok(Servers::Standalone(Box::new(
                ZkServer::builder().tick_time(TICK_MS).start()?,
            )))
        } else {
            Ok(Servers::Ensemble(
                Ensemble::builder()
                    .size(3)
                    .tick_time(TICK_MS)
                    .partitionable(true)
                    .start()?,
            ))
        }
    }

    /// How many members.
    pub fn len(&self) -> usize {
        match self {
            Servers::Standalone(_) => 1,
            Servers::Ensemble(e) => e.len(),
        }
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Member `i`.
    pub fn member(&self, i: usize) -> &ZkServer {
        match self {
            Servers::Standalone(s) => s,
            Servers::Ensemble(e) => e.member(i),
        }
    }

    /// Every member's client address.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        (0..self.len()).map(|i| self.member(i).addr()).collect()
    }

    /// The direct connect string (no proxies), for the harness's own client.
    pub fn connect_string(&self) -> String {
        match self {
            Servers::Standalone(s) => s.connect_string(),
            Servers::Ensemble(e) => e.connect_string(),
        }
    }

    /// The leader's index (standalone: 0).
    pub fn leader(&self) -> Option<usize> {
        match self {
            Servers::Standalone(_) => Some(0),
            Servers::Ensemble(e) => e.leader(),
        }
    }

    /// The `k`-th (modulo their number) member that does not lead, once a leader is known
    /// (standalone: none).
    pub fn follower(&self, k: usize) -> Option<usize> {
        let leader = match self {
            Servers::Standalone(_) => return None,
            Servers::Ensemble(e) => e.leader()?,
        };
        let others: Vec<usize> = (0..self.len()).filter(|&i| i != leader).collect();
        others.get(k % others.len().max(1)).copied()
    }

    /// Kills member `i` (SIGKILL), then starts it again after `down`. Blocking.
    ///
    /// # Errors
    /// As zk-testkit.
    pub fn kill_restart(&self, i: usize, down: Duration) -> zk_testkit::Result<()> {
        self.member(i).kill()?;
        std::thread::sleep(down);
        self.member(i).start_again()
    }

    /// Pauses member `i` (SIGSTOP) for `d`, then resumes it. Blocking.
    ///
    /// # Errors
    /// As zk-testkit.
    pub fn pause_for(&self, i: usize, d: Duration) -> zk_testkit::Result<()> {
        self.member(i).pause()?;
        std::thread::sleep(d);
        self.member(i).resume()
    }

    /// Waits until member `i` serves again (`srvr` shows a mode: in an ensemble, it is part of a
    /// quorum), at most `timeout`. Blocking.
    ///
    /// # Errors
    /// A message with the last thing `srvr` said (or why it could not be asked).
    pub fn wait_serving(&self, i: usize, timeout: Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let last = match self.member(i).mode() {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "member {i} did not serve again within {timeout:?} (last: {last})"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Cuts member `i` off from the other members (ensemble only; standalone: nothing).
    pub fn isolate(&self, i: usize) {
        if let Servers::Ensemble(e) = self {
            e.isolate(i);
        }
    }

    /// Ends any partition.
    pub fn heal_partition(&self) {
        if let Servers::Ensemble(e) = self {
            e.heal_partition();
        }
    }

    /// Undoes any server fault left over: resumes paused members, starts stopped ones, and
    /// waits (bounded) for a quorum. Blocking.
    pub fn heal(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for i in 0..self.len() {
            let m = self.member(i);
            if m.is_paused() {
                if let Err(e) = m.resume() {
                    problems.push(format!("resume member {i}: {e}"));
                }
            }
            if !m.is_running() {
                if let Err(e) = m.start_again() {
                    problems.push(format!("restart member {i}: {e}"));
                }
            }
        }
        if let Servers::Ensemble(e) = self {
            e.heal_partition();
            if let Err(err) = e.wait_for_quorum(Duration::from_secs(60)) {
                problems.push(format!("no quorum after the heal: {err}"));
            }
        }
        problems
    }
}

/// One client's network: a fault proxy in front of every member.
#[derive(Debug)]
pub struct ClientNet {
    /// The client's id in the history.
    pub id: i64,
    /// Its workload.
    pub workload: &'static str,
    /// One proxy per member, in member order.
    pub proxies: Vec<FaultProxy>,
    /// The client's current [`Client`], once connected (the nemesis expires its session).
    pub client: Mutex<Option<Client>>,
}

impl ClientNet {
    /// Starts one proxy per member. The proxies share one cut trap: a `cut` cuts the client's
    /// next request of its opcode through whichever member it goes to, once.
    ///
    /// # Errors
    /// If a proxy cannot bind.
    pub async fn start(
        id: i64,
        workload: &'static str,
        members: &[SocketAddr],
    ) -> std::io::Result<Arc<ClientNet>> {
        let mut proxies = Vec::new();
        for &m in members {
            proxies.push(FaultProxy::start(m).await?);
        }
        if let Some((first, rest)) = proxies.split_first() {
            let trap = first.cut_trap();
            rest.iter().for_each(|p| p.share_cut_trap(&trap));
        }
        Ok(Arc::new(ClientNet {
            id,
            workload,
            proxies,
            client: Mutex::new(None),
        }))
    }

    /// The connect string through the proxies.
    pub fn connect_string(&self) -> String {
        self.proxies
            .iter()
            .map(FaultProxy::connect_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Arms the client's (shared) cut trap for `opcode`: its next request of that opcode, through
    /// whichever member, is applied and its reply cut.
    pub fn arm_cut(&self, opcode: i32) {
        if let Some(p) = self.proxies.first() {
            p.cut_after_request(opcode);
        }
    }

    /// How many cuts the client's proxies have made so far.
    pub fn cuts_fired(&self) -> u64 {
        self.proxies.iter().map(FaultProxy::cuts_fired).sum()
    }

    /// Undoes every proxy fault.
    pub fn heal(&self) {
        for p in &self.proxies {
            p.heal();
            p.set_delay(Duration::ZERO);
            p.disarm_cut();
            p.hold_request(&[]);
            p.release_held();
        }
    }

    /// The registered client, if any.
    pub fn current(&self) -> Option<Client> {
        self.client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
