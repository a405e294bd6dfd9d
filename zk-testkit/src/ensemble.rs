//! An N-node ZooKeeper ensemble on loopback.

use std::time::{Duration, Instant};

use tokio::time::sleep;

use crate::install::Installation;
use crate::links::Links;
use crate::server::{free_ports, ZkServer, MODE_PROBE_TIMEOUT, PORT_ATTEMPTS};
use crate::settings::{settings_setters, MemberPorts, Role, Settings};
use crate::tls::{TlsFiles, TlsOptions};
use crate::{Error, Result};

/// Pause between polls of the wait functions.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A ZooKeeper ensemble: N [`ZkServer`] members on `127.0.0.1`, each with its own client,
/// quorum and election port and its own temporary directory.
///
/// Members are addressed by index `0..n`; member `i` has server id (`myid`) `i + 1`.
/// Methods taking an index panic if it is out of range. Everything a [`ZkServer`] can do, a
/// member can do too ([`member`](Self::member)); the `Ensemble` methods are shortcuts.
/// Dropping the ensemble kills every member.
#[derive(Debug)]
pub struct Ensemble {
    members: Vec<ZkServer>,
    /// Member-to-member links, when built with [`EnsembleBuilder::partitionable`].
    links: Option<Links>,
    /// Every member's ports, in member order.
    peers: Vec<MemberPorts>,
}

/// Builder for an [`Ensemble`]; see [`Ensemble::builder`]. The knobs apply to every member.
#[derive(Clone, Debug)]
#[must_use]
pub struct EnsembleBuilder {
    size: usize,
    read_only: bool,
    partitionable: bool,
    settings: Settings,
    tls: Option<TlsOptions>,
}

impl Default for EnsembleBuilder {
    fn default() -> Self {
        EnsembleBuilder {
            size: 3,
            read_only: false,
            partitionable: false,
            settings: Settings::default(),
            tls: None,
        }
    }
}

impl EnsembleBuilder {
    settings_setters!();

    /// Number of members (default 3).
    pub fn size(mut self, n: usize) -> Self {
        self.size = n;
        self
    }

    /// Enables read-only mode (default off): `-Dreadonlymode.enabled=true` and
    /// `localSessionsEnabled=true` on every member. A member that loses quorum then serves reads
    /// as `Mode: read-only` (about 2 s later) and accepts new sessions from clients that allow
    /// read-only servers, instead of refusing service.
    pub fn read_only_mode(mut self, enabled: bool) -> Self {
        self.read_only = enabled;
        self
    }

    /// Routes every member-to-member connection through links the ensemble controls (default
    /// off), so that [`Ensemble::partition`] can cut members off from each other while their
    /// client ports stay reachable. Each member gets its own view of its peers: in member
    /// `i`'s `zoo.cfg`, peer `j`'s quorum and election ports are forwarders that lead to `j`'s
    /// real ports (plain threads, no runtime needed).
    pub fn partitionable(mut self, enabled: bool) -> Self {
        self.partitionable = enabled;
        self
    }

    /// Enables dynamic reconfiguration (default off): `reconfigEnabled=true`, and every
    /// member's server line written in the dynamic form
    /// `server.N=127.0.0.1:quorum:election:participant;127.0.0.1:client`
    /// ([`Ensemble::server_spec`]). ZooKeeper 3.5+ (Debian's 3.8 included) moves the server lines
    /// of such a `zoo.cfg` into a dynamic config file `zoo.cfg.dynamic.<version>` beside it at the
    /// first start and points `dynamicConfigFile` at it; every reconfig rewrites that file. A
    /// reconfig needs a superuser ([`super_user`](Self::super_user)) unless `skipACL=yes`.
    ///
    /// Not combined with [`partitionable`](Self::partitionable) (starting panics): members
    /// must agree on one config, and a partitionable ensemble gives each member its own view of
    /// its peers.
    pub fn reconfig_enabled(mut self, enabled: bool) -> Self {
        self.settings.reconfig = enabled;
        self
    }

    /// Every member also serves TLS on a port of its own (`secureClientPort`, Netty), with one
    /// set of certificates for the whole ensemble: see [`ZkServer::secure_connect_string`]
    /// and [`ZkServer::tls_files`] of each [`member`](Ensemble::member), and
    /// [`Ensemble::secure_connect_string`]. The members talk to each other in plain TCP, and
    /// the plain client ports stay (the config node names those: ZooKeeper 3.8's dynamic
    /// config has no place for the secure port).
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.tls = Some(options);
        self
    }

    /// Makes `super` with `password` the superuser of every member
    /// (`-Dzookeeper.DigestAuthenticationProvider.superDigest=super:<base64(sha1)>`): a client
    /// that sends `addAuth("digest", "super:<password>")` passes every ACL check, reconfig's
    /// included. See [`SUPER_USER`].
    pub fn super_user(self, password: &str) -> Self {
        self.jvm_prop(
            "zookeeper.DigestAuthenticationProvider.superDigest",
            super_digest(password),
        )
    }

    /// Starts every member and waits until each one is leader or follower. If a port turns out
    /// to be taken, starts over with fresh ports. Blocks the calling thread;
    /// [`start_async`](Self::start_async) does not.
    ///
    /// # Errors
    ///
    /// [`Error::MissingPackage`], or [`Error::Startup`] with the log of the first member that
    /// did not come up.
    ///
    /// # Panics
    ///
    /// If the size is 0, or the ensemble is both [`partitionable`](Self::partitionable) and
    /// [`reconfig_enabled`](Self::reconfig_enabled).
    pub fn start(self) -> Result<Ensemble> {
        crate::block_on(|| self.start_async())
    }

    /// [`start`](Self::start) without blocking the runtime: the waiting is async, so it works
    /// on a current-thread runtime (a plain `#[tokio::test]`) too.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future kills the members it may have launched.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub async fn start_async(self) -> Result<Ensemble> {
        assert!(self.size > 0, "an ensemble needs at least one member");
        assert!(
            !(self.partitionable && self.settings.reconfig),
            "a partitionable ensemble cannot be reconfig-enabled: its members see different peer ports"
        );
        // always real ZooKeeper (zk-server is single-node), but a misspelt variable is still
        // an error here, as for a `ZkServer`
        crate::Backend::from_env()?;
        let install = Installation::locate()?;
        let files = match &self.tls {
            Some(opts) => Some(std::sync::Arc::new(TlsFiles::generate(opts)?)),
            None => None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            // one call: ports of separate calls may coincide
            let extra = if files.is_some() { self.size } else { 0 };
            let mut ports = free_ports(3 * self.size + extra)?;
            let secure_ports = ports.split_off(3 * self.size);
            let peers: Vec<MemberPorts> = ports
                .chunks(3)
                .map(|p| MemberPorts {
                    client: p[0],
                    quorum: p[1],
                    election: p[2],
                })
                .collect();
            let links = if self.partitionable {
                let targets: Vec<(u16, u16)> =
                    peers.iter().map(|p| (p.quorum, p.election)).collect();
                Some(
                    Links::start(&targets)
                        .map_err(|e| Error::io("starting member-to-member links", e))?,
                )
            } else {
                None
            };
            let views: Vec<Vec<(u16, u16)>> = (0..self.size)
                .map(|i| {
                    (0..self.size)
                        .map(|j| {
                            links
                                .as_ref()
                                .and_then(|l| l.view(i, j))
                                .unwrap_or((peers[j].quorum, peers[j].election))
                        })
                        .collect()
                })
                .collect();
            let members = (0..self.size)
                .map(|i| {
                    let role = Role::Member {
                        myid: i as u32 + 1,
                        peers: &peers,
                        read_only: self.read_only,
                        view: links.as_ref().map(|_| views[i].as_slice()),
                    };
                    let (Some(opts), Some(files)) = (&self.tls, &files) else {
                        return ZkServer::prepare(&install, &self.settings, peers[i].client, role);
                    };
                    let mut settings = self.settings.clone();
                    settings
                        .cfg
                        .push(("secureClientPort".into(), secure_ports[i].to_string()));
                    settings
                        .cfg
                        .push(("secureClientPortAddress".into(), "127.0.0.1".into()));
                    for (k, v) in files.jvm_props(opts) {
                        crate::settings::upsert(&mut settings.jvm_props, &k, v);
                    }
                    let mut member = ZkServer::prepare(&install, &settings, peers[i].client, role)?;
                    member.tls = Some((secure_ports[i], files.clone()));
                    Ok(member)
                })
                .collect::<Result<Vec<_>>>()?;
            for member in &members {
                member.spawn()?;
            }
            let deadline = Instant::now() + self.settings.startup_timeout;
            let mut failure = None;
            for member in &members {
                let ready = match member.wait_ready(deadline, is_quorum_mode).await {
                    Ok(()) => member.wait_secure_port(deadline).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = ready {
                    failure = Some(e);
                    break;
                }
            }
            match failure {
                None => {
                    return Ok(Ensemble {
                        members,
                        links,
                        peers,
                    })
                }
                // The member that failed may only be a victim of another one's taken port.
                Some(failure)
                    if attempt < PORT_ATTEMPTS
                        && (failure.port_conflict
                            || members.iter().any(ZkServer::log_shows_port_conflict)) =>
                {
                    tracing::debug!("zk-testkit: ensemble port taken, trying other ports");
                }
                Some(failure) => return Err(failure.error),
            }
        }
    }
}

/// The superuser's name for [`EnsembleBuilder::super_user`]: authenticate with
/// `("digest", "super:<password>")`.
pub const SUPER_USER: &str = "super";

/// `super:base64(sha1("super:<password>"))`, the form the superDigest property takes.
fn super_digest(password: &str) -> String {
    use base64::Engine as _;
    use sha1::{Digest, Sha1};
    let hash = Sha1::digest(format!("{SUPER_USER}:{password}").as_bytes());
    format!(
        "{SUPER_USER}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

fn is_quorum_mode(mode: &str) -> bool {
    matches!(mode, "leader" | "follower" | "observer")
}

impl Ensemble {
    /// `"127.0.0.1:TLS1,127.0.0.1:TLS2,..."`: every member's TLS port, when built with
    /// [`EnsembleBuilder::tls`].
    pub fn secure_connect_string(&self) -> Option<String> {
        self.members
            .iter()
            .map(|m| m.secure_connect_string())
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(","))
    }

    /// Starts an ensemble of `n` members (3 is typical) with default settings.
    ///
    /// # Errors
    ///
    /// See [`EnsembleBuilder::start`].
    pub fn start(n: usize) -> Result<Ensemble> {
        Self::builder().size(n).start()
    }

    /// [`start`](Self::start) without blocking the runtime.
    ///
    /// # Errors
    ///
    /// See [`EnsembleBuilder::start`].
    pub async fn start_async(n: usize) -> Result<Ensemble> {
        Self::builder().size(n).start_async().await
    }

    /// A builder (size, read-only mode and the same knobs as [`ZkServer::builder`]).
    pub fn builder() -> EnsembleBuilder {
        EnsembleBuilder::default()
    }

    /// The connect string listing every member: `"127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"`.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(ZkServer::connect_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Member `i`'s server line value in the dynamic form,
    /// `127.0.0.1:quorum:election:participant;127.0.0.1:client`: what a reconfig that adds it
    /// (back) joins as `server.{i + 1}=<this>`, and what `/zookeeper/config` lists for it on an
    /// ensemble built with [`EnsembleBuilder::reconfig_enabled`].
    pub fn server_spec(&self, i: usize) -> String {
        let p = self.peers[i];
        crate::settings::server_spec(p.quorum, p.election, p.client)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always `false`: an ensemble has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `i` (server id `i + 1`).
    pub fn member(&self, i: usize) -> &ZkServer {
        &self.members[i]
    }

    /// All members, in index order.
    pub fn members(&self) -> &[ZkServer] {
        &self.members
    }

    /// The index of the member that currently reports `Mode: leader`, if any. Paused and
    /// stopped members are not asked.
    pub fn leader(&self) -> Option<usize> {
        crate::block_on(|| self.leader_async())
    }

    /// [`leader`](Self::leader) without blocking the runtime.
    pub async fn leader_async(&self) -> Option<usize> {
        for (i, member) in self.members.iter().enumerate() {
            if !member.is_paused()
                && member
                    .mode_within_async(MODE_PROBE_TIMEOUT)
                    .await
                    .is_ok_and(|mode| mode == "leader")
            {
                return Some(i);
            }
        }
        None
    }

    /// Cuts the network between the groups: a member can talk only to the members of its own
    /// group (members not listed form one more group). Client ports are not affected, so a
    /// client connected to a minority member sees it stop serving (within `syncLimit ×
    /// tickTime` for a follower cut off from its leader; a leader that loses its quorum steps
    /// down as fast). Replaces any earlier partition.
    ///
    /// # Panics
    ///
    /// If the ensemble was not built [`partitionable`](EnsembleBuilder::partitionable), or an
    /// index is out of range.
    pub fn partition(&self, groups: &[&[usize]]) {
        let links = self
            .links
            .as_ref()
            .expect("Ensemble::partition needs EnsembleBuilder::partitionable(true)");
        let n = self.members.len();
        let group_of = |m: usize| {
            groups
                .iter()
                .position(|g| g.contains(&m))
                .unwrap_or(groups.len())
        };
        for i in 0..n {
            for j in i + 1..n {
                links.set_pair(i, j, group_of(i) != group_of(j));
            }
        }
    }

    /// Cuts member `i` off from every other member ([`partition`](Self::partition)).
    ///
    /// # Panics
    ///
    /// As [`partition`](Self::partition).
    pub fn isolate(&self, i: usize) {
        self.partition(&[&[i]]);
    }

    /// Ends any partition: every member can reach every other again.
    ///
    /// # Panics
    ///
    /// As [`partition`](Self::partition).
    pub fn heal_partition(&self) {
        self.partition(&[]);
    }

    /// Whether members `i` and `j` are cut off from each other (false if not partitionable).
    pub fn is_cut(&self, i: usize, j: usize) -> bool {
        self.links.as_ref().is_some_and(|l| l.is_cut(i, j))
    }

    /// SIGKILLs member `i` ([`ZkServer::kill`]).
    ///
    /// # Errors
    ///
    /// As [`ZkServer::kill`].
    pub fn kill(&self, i: usize) -> Result<()> {
        self.members[i].kill()
    }

    /// [`kill`](Self::kill) without blocking the runtime ([`ZkServer::kill_async`]).
    ///
    /// # Errors
    ///
    /// As [`ZkServer::kill`].
    pub async fn kill_async(&self, i: usize) -> Result<()> {
        self.members[i].kill_async().await
    }

    /// Gracefully stops member `i` ([`ZkServer::stop`]).
    ///
    /// # Errors
    ///
    /// As [`ZkServer::stop`].
    pub fn stop(&self, i: usize) -> Result<()> {
        self.members[i].stop()
    }

    /// [`stop`](Self::stop) without blocking the runtime ([`ZkServer::stop_async`]).
    ///
    /// # Errors
    ///
    /// As [`ZkServer::stop`].
    pub async fn stop_async(&self, i: usize) -> Result<()> {
        self.members[i].stop_async().await
    }

    /// (Re)starts member `i` on the same ports with the same data directory and waits until it
    /// serves again ([`ZkServer::restart`]; it serves once it has joined a quorum).
    ///
    /// # Errors
    ///
    /// As [`ZkServer::restart`].
    pub fn restart(&self, i: usize) -> Result<()> {
        self.members[i].restart()
    }

    /// [`restart`](Self::restart) without blocking the runtime ([`ZkServer::restart_async`]).
    ///
    /// # Errors
    ///
    /// As [`ZkServer::restart`].
    pub async fn restart_async(&self, i: usize) -> Result<()> {
        self.members[i].restart_async().await
    }

    /// Freezes member `i` with SIGSTOP ([`ZkServer::pause`]). A paused leader is abandoned by
    /// the followers after `syncLimit × tickTime` (10 s with the defaults).
    ///
    /// # Errors
    ///
    /// As [`ZkServer::pause`].
    pub fn pause(&self, i: usize) -> Result<()> {
        self.members[i].pause()
    }

    /// Continues member `i` ([`ZkServer::resume`]).
    ///
    /// # Errors
    ///
    /// As [`ZkServer::resume`].
    pub fn resume(&self, i: usize) -> Result<()> {
        self.members[i].resume()
    }

    /// Waits until the members that run (and are not paused) form a quorum: at least a majority
    /// of the ensemble runs, each of them is leader or follower, and exactly one is leader.
    /// Returns the leader's index.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] listing each member's last state.
    pub fn wait_for_quorum(&self, timeout: Duration) -> Result<usize> {
        crate::block_on(|| self.wait_for_quorum_async(timeout))
    }

    /// [`wait_for_quorum`](Self::wait_for_quorum) without blocking the runtime.
    ///
    /// # Errors
    ///
    /// As [`wait_for_quorum`](Self::wait_for_quorum).
    pub async fn wait_for_quorum_async(&self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        let majority = self.members.len() / 2 + 1;
        loop {
            let mut states: Vec<Option<Result<String>>> = Vec::with_capacity(self.members.len());
            for m in &self.members {
                states.push(if m.is_running() && !m.is_paused() {
                    Some(m.mode_within_async(MODE_PROBE_TIMEOUT).await)
                } else {
                    None
                });
            }
            let live: Vec<&Result<String>> = states.iter().flatten().collect();
            let all_in_quorum = live
                .iter()
                .all(|state| state.as_ref().is_ok_and(|mode| is_quorum_mode(mode)));
            let leaders: Vec<usize> = states
                .iter()
                .enumerate()
                .filter(|(_, state)| matches!(state, Some(Ok(mode)) if mode == "leader"))
                .map(|(i, _)| i)
                .collect();
            if live.len() >= majority && all_in_quorum && leaders.len() == 1 {
                return Ok(leaders[0]);
            }
            if Instant::now() >= deadline {
                let summary: Vec<String> = states
                    .iter()
                    .enumerate()
                    .map(|(i, state)| match state {
                        None => format!("#{i}: not running or paused"),
                        Some(Ok(mode)) => format!("#{i}: {mode}"),
                        Some(Err(e)) => format!("#{i}: {e}"),
                    })
                    .collect();
                return Err(Error::Timeout(format!(
                    "no quorum within {timeout:?}: {}",
                    summary.join("; ")
                )));
            }
            sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until member `i` reports `mode` (e.g. `"read-only"`, `"follower"`); see
    /// [`ZkServer::wait_for_mode`].
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`].
    pub fn wait_for_mode(&self, i: usize, mode: &str, timeout: Duration) -> Result<()> {
        self.members[i].wait_for_mode(mode, timeout)
    }

    /// [`wait_for_mode`](Self::wait_for_mode) without blocking the runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`].
    pub async fn wait_for_mode_async(&self, i: usize, mode: &str, timeout: Duration) -> Result<()> {
        self.members[i].wait_for_mode_async(mode, timeout).await
    }
}
