//! A throwaway MIT Kerberos KDC for GSSAPI tests: [`Kdc`].

use crate::server::free_ports;
use crate::{spawner, Error, Result};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The command that installs the KDC and the Kerberos tools on Debian/Ubuntu.
pub const INSTALL_KRB5: &str =
    "apt-get update && apt-get install -y krb5-kdc krb5-admin-server krb5-user";

/// The realm of every test KDC.
pub const REALM: &str = "ZK-TESTKIT.LOCAL";

/// The service principal (without realm) a [`Kdc`] makes for ZooKeeper servers: clients that
/// connect to `localhost` ask for it.
pub const SERVICE_PRINCIPAL: &str = "zookeeper/localhost";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A real MIT KDC (Debian's `krb5-kdc`: `krb5kdc`, `kdb5_util`; `kadmin.local` from `krb5-admin-server`) on a free
/// loopback port, with its database, configuration and keytabs in a temporary directory.
///
/// [`start`](Kdc::start) creates the realm [`REALM`] and the principal [`SERVICE_PRINCIPAL`]
/// with a keytab for the server ([`service_keytab`](Kdc::service_keytab); see
/// [`ZkServerBuilder::sasl_kerberos`](crate::ZkServerBuilder::sasl_kerberos)); add client
/// principals with [`add_principal`](Kdc::add_principal). Clients find the KDC through
/// [`krb5_conf`](Kdc::krb5_conf) (set `KRB5_CONFIG` to it: the Kerberos library reads it from
/// the environment). The KDC is a child of this process, stopped by its pid on
/// [`stop`](Kdc::stop) and on drop.
#[derive(Debug)]
pub struct Kdc {
    port: u16,
    krb5_conf: PathBuf,
    kdc_conf: PathBuf,
    kdc_bin: PathBuf,
    kadmin_bin: PathBuf,
    process: Mutex<Option<Child>>,
    /// Declared last: removed after the KDC is dead.
    dir: TempDir,
}

fn find(tool: &str) -> Result<PathBuf> {
    let mut places: Vec<PathBuf> = ["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        places.extend(std::env::split_paths(&path).map(|d| d.join(tool)));
    }
    places.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        Error::MissingPackage(format!(
            "{tool} not found (looked in {}); install it with: {INSTALL_KRB5}",
            places
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

impl Kdc {
    /// Creates the realm and starts the KDC, waiting until it accepts TCP connections.
    ///
    /// # Errors
    ///
    /// [`Error::MissingPackage`] without the KDC's programs ([`INSTALL_KRB5`]);
    /// [`Error::Startup`] when a tool fails or the KDC does not come up.
    pub fn start() -> Result<Kdc> {
        let kdc_bin = find("krb5kdc")?;
        let util_bin = find("kdb5_util")?;
        let kadmin_bin = find("kadmin.local")?;
        let dir = tempfile::Builder::new()
            .prefix("zk-testkit-kdc-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory", e))?;
        let port = free_ports(1)?[0];
        let d = dir.path();
        let krb5_conf = d.join("krb5.conf");
        let kdc_conf = d.join("kdc.conf");
        // no DNS anywhere: the realm is the default one, its KDC is ours
        let krb5 = format!(
            "[libdefaults]\n  default_realm = {REALM}\n  dns_lookup_kdc = false\n  \
             dns_lookup_realm = false\n  dns_canonicalize_hostname = false\n  rdns = false\n  \
             udp_preference_limit = 1\n  forwardable = true\n\
             [realms]\n  {REALM} = {{\n    kdc = 127.0.0.1:{port}\n  }}\n\
             [domain_realm]\n  localhost = {REALM}\n"
        );
        let kdc = format!(
            "[kdcdefaults]\n  kdc_listen = 127.0.0.1:{port}\n  kdc_tcp_listen = 127.0.0.1:{port}\n\
             [realms]\n  {REALM} = {{\n    database_name = {db}\n    key_stash_file = {stash}\n    \
             acl_file = {acl}\n    kdc_listen = 127.0.0.1:{port}\n    \
             kdc_tcp_listen = 127.0.0.1:{port}\n  }}\n\
             [logging]\n  kdc = FILE:{log}\n",
            db = d.join("principal").display(),
            stash = d.join("stash").display(),
            acl = d.join("kadm5.acl").display(),
            log = d.join("kdc.log").display(),
        );
        fs::write(&krb5_conf, krb5).map_err(|e| Error::io("writing krb5.conf", e))?;
        fs::write(&kdc_conf, kdc).map_err(|e| Error::io("writing kdc.conf", e))?;
        fs::write(d.join("kadm5.acl"), "").map_err(|e| Error::io("writing kadm5.acl", e))?;
        let kdc = Kdc {
            port,
            krb5_conf,
            kdc_conf,
            kdc_bin,
            kadmin_bin,
            process: Mutex::new(None),
            dir,
        };
        // the master key's password only guards this throwaway database
        kdc.run(
            Command::new(&util_bin).args(["create", "-s", "-r", REALM, "-P", "zk-testkit-master"]),
            "kdb5_util create",
        )?;
        kdc.add_principal(SERVICE_PRINCIPAL)?;
        kdc.start_again()?;
        Ok(kdc)
    }

    /// The realm ([`REALM`]).
    pub fn realm(&self) -> &str {
        REALM
    }

    /// `name@REALM`.
    pub fn principal(&self, name: &str) -> String {
        format!("{name}@{REALM}")
    }

    /// The krb5.conf clients (and the server's JVM) use: this realm, this KDC, no DNS.
    pub fn krb5_conf(&self) -> &Path {
        &self.krb5_conf
    }

    /// Where the KDC listens (TCP and UDP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The keytab of [`SERVICE_PRINCIPAL`].
    pub fn service_keytab(&self) -> PathBuf {
        self.keytab_path(SERVICE_PRINCIPAL)
    }

    fn keytab_path(&self, name: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.keytab", name.replace(['/', '@'], "_")))
    }

    /// Creates the principal `name` (in [`REALM`]) with a random key and writes that key to a
    /// keytab of its own, whose path is returned.
    ///
    /// # Errors
    ///
    /// [`Error::Startup`] when `kadmin.local` fails (say the principal exists).
    pub fn add_principal(&self, name: &str) -> Result<PathBuf> {
        let keytab = self.keytab_path(name);
        self.run(
            Command::new(&self.kadmin_bin).args([
                "-r",
                REALM,
                "-q",
                &format!("addprinc -randkey {name}"),
            ]),
            "kadmin.local addprinc",
        )?;
        self.run(
            Command::new(&self.kadmin_bin).args([
                "-r",
                REALM,
                "-q",
                &format!("ktadd -k {} {name}", keytab.display()),
            ]),
            "kadmin.local ktadd",
        )?;
        Ok(keytab)
    }

    /// Runs a KDC tool with this realm's configuration; an error carries its output.
    fn run(&self, cmd: &mut Command, what: &str) -> Result<()> {
        let out = cmd
            .env("KRB5_CONFIG", &self.krb5_conf)
            .env("KRB5_KDC_PROFILE", &self.kdc_conf)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("running {what}"), e))?;
        // kadmin.local reports a failed query on stderr and still exits 0
        let stderr = String::from_utf8_lossy(&out.stderr);
        let failed = !out.status.success()
            || stderr.lines().any(|l| {
                !l.is_empty()
                    && !l.starts_with("Authenticating as")
                    && !l.contains("No policy specified")
            });
        if failed {
            return Err(self.failure(format!(
                "{what} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                stderr
            )));
        }
        Ok(())
    }

    fn failure(&self, message: String) -> Error {
        let log_path = self.dir.path().join("kdc.log");
        let log_tail = fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Error::Startup {
            message,
            log_path,
            log_tail,
        }
    }

    fn process(&self) -> MutexGuard<'_, Option<Child>> {
        self.process.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The KDC's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process().as_ref().map(Child::id)
    }

    /// Whether the KDC process is running.
    pub fn is_running(&self) -> bool {
        let mut p = self.process();
        match p.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                *p = None;
                false
            }
            None => false,
        }
    }

    /// Stops the KDC (SIGKILL to its pid, then reaped); the database stays, so
    /// [`start_again`](Self::start_again) brings the same realm back.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the signal cannot be sent.
    pub fn stop(&self) -> Result<()> {
        if let Some(mut child) = self.process().take() {
            child
                .kill()
                .map_err(|e| Error::io(format!("killing the KDC (pid {})", child.id()), e))?;
            let _ = child.wait();
        }
        Ok(())
    }

    /// Starts the KDC (again), waiting until it accepts TCP connections on its port.
    ///
    /// # Errors
    ///
    /// [`Error::Startup`] if it exits or does not listen within 20 s.
    pub fn start_again(&self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let log = fs::File::create(self.dir.path().join("krb5kdc.out"))
            .map_err(|e| Error::io("creating krb5kdc.out", e))?;
        let err = log
            .try_clone()
            .map_err(|e| Error::io("creating krb5kdc.out", e))?;
        let mut cmd = Command::new(&self.kdc_bin);
        // -n: stay in the foreground, so the child's pid is the KDC's
        cmd.args(["-n", "-r", REALM])
            .env("KRB5_CONFIG", &self.krb5_conf)
            .env("KRB5_KDC_PROFILE", &self.kdc_conf)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        let child = spawner::spawn(cmd).map_err(|e| Error::io("starting krb5kdc", e))?;
        tracing::debug!(
            pid = child.id(),
            port = self.port,
            "zk-testkit: started the KDC"
        );
        *self.process() = Some(child);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if !self.is_running() {
                let out =
                    fs::read_to_string(self.dir.path().join("krb5kdc.out")).unwrap_or_default();
                return Err(self.failure(format!("krb5kdc exited during startup: {out}")));
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failure(format!(
                    "krb5kdc does not listen on {} within {STARTUP_TIMEOUT:?}",
                    self.addr()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
