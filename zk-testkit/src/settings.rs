//! Server settings shared by [`ZkServerBuilder`](crate::ZkServerBuilder) and
//! [`EnsembleBuilder`](crate::EnsembleBuilder), and the files generated from them.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Knobs common to a standalone server and every ensemble member.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) tick_time: u32,
    pub(crate) min_session_timeout: Option<u32>,
    pub(crate) max_session_timeout: Option<u32>,
    pub(crate) four_letter_whitelist: String,
    pub(crate) extended_types: bool,
    /// Extra `zoo.cfg` lines, in order; a key set twice keeps its last value.
    pub(crate) cfg: Vec<(String, String)>,
    /// Extra `-Dkey=value` JVM options, in order; a key set twice keeps its last value.
    pub(crate) jvm_props: Vec<(String, String)>,
    pub(crate) startup_timeout: Duration,
    /// `reconfigEnabled=true` and server lines in the dynamic form (ensembles only).
    pub(crate) reconfig: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tick_time: 2000,
            min_session_timeout: None,
            max_session_timeout: None,
            four_letter_whitelist: "*".to_owned(),
            extended_types: true,
            cfg: Vec::new(),
            jvm_props: vec![(
                "znode.container.checkIntervalMs".to_owned(),
                "1000".to_owned(),
            )],
            // a hang detector, not a speed limit: a JVM starts in 1-2 s, but a loaded 2-core
            // machine (a CI run beside other builds) has taken over 30 s
            startup_timeout: Duration::from_secs(120),
            reconfig: false,
        }
    }
}

/// Sets `key` to `value` in an ordered key/value list, replacing an earlier value.
pub(crate) fn upsert(list: &mut Vec<(String, String)>, key: &str, value: String) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => list.push((key.to_owned(), value)),
    }
}

/// A member's server line value in the dynamic form,
/// `127.0.0.1:quorum:election:participant;127.0.0.1:client`.
pub(crate) fn server_spec(quorum: u16, election: u16, client: u16) -> String {
    format!("127.0.0.1:{quorum}:{election}:participant;127.0.0.1:{client}")
}

/// Client, quorum and election ports of one ensemble member.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemberPorts {
    pub(crate) client: u16,
    pub(crate) quorum: u16,
    pub(crate) election: u16,
}

/// What a server is: standalone, or member `myid` of an ensemble.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Role<'a> {
    Standalone,
    Member {
        myid: u32,
        peers: &'a [MemberPorts],
        read_only: bool,
        /// This member's own view of every member's (quorum, election) ports, when it differs
        /// from `peers` (a partitionable ensemble routes peers through links).
        view: Option<&'a [(u16, u16)]>,
    },
}

impl Settings {
    /// The four-letter-word whitelist, always including the words the kit itself uses.
    fn whitelist(&self) -> String {
        let list = self.four_letter_whitelist.trim();
        if list == "*" {
            return list.to_owned();
        }
        let mut words: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect();
        for needed in ["srvr", "conf"] {
            if !words.contains(&needed) {
                words.push(needed);
            }
        }
        words.join(",")
    }

    /// The text of `zoo.cfg`.
    pub(crate) fn zoo_cfg(&self, data_dir: &Path, client_port: u16, role: Role<'_>) -> String {
        let mut cfg = String::new();
        let mut line = |key: &str, value: &dyn std::fmt::Display| {
            let _ = writeln!(cfg, "{key}={value}");
        };
        line("tickTime", &self.tick_time);
        line("dataDir", &data_dir.display());
        line("clientPort", &client_port);
        line("clientPortAddress", &"127.0.0.1");
        line("maxClientCnxns", &0);
        line("admin.enableServer", &false);
        line("4lw.commands.whitelist", &self.whitelist());
        line("extendedTypesEnabled", &self.extended_types);
        line("forceSync", &"no");
        if let Some(ms) = self.min_session_timeout {
            line("minSessionTimeout", &ms);
        }
        if let Some(ms) = self.max_session_timeout {
            line("maxSessionTimeout", &ms);
        }
        if let Role::Member {
            peers,
            read_only,
            view,
            ..
        } = role
        {
            line("initLimit", &10);
            line("syncLimit", &5);
            line("standaloneEnabled", &false);
            if read_only {
                line("localSessionsEnabled", &true);
            }
            if self.reconfig {
                line("reconfigEnabled", &true);
            }
            for (i, p) in peers.iter().enumerate() {
                let key = format!("server.{}", i + 1);
                let (quorum, election) = view.map_or((p.quorum, p.election), |v| v[i]);
                if self.reconfig {
                    // the dynamic form (role and client address): ZooKeeper 3.5+ moves these
                    // lines into `zoo.cfg.dynamic.<version>` at the first start, and clients
                    // read them from /zookeeper/config
                    line(&key, &server_spec(quorum, election, p.client));
                } else {
                    line(&key, &format_args!("127.0.0.1:{quorum}:{election}"));
                }
            }
        }
        for (key, value) in &self.cfg {
            line(key, value);
        }
        cfg
    }

    /// The `-D` options, defaults first, then the user's.
    pub(crate) fn jvm_props(&self, role: Role<'_>) -> Vec<(String, String)> {
        let mut props = Vec::new();
        if let Role::Member {
            read_only: true, ..
        } = role
        {
            props.push(("readonlymode.enabled".to_owned(), "true".to_owned()));
        }
        for (key, value) in &self.jvm_props {
            upsert(&mut props, key, value.clone());
        }
        props
    }
}

/// `log4j.properties`: everything at INFO to stdout, which the kit redirects to the log file.
pub(crate) const LOG4J_PROPERTIES: &str = "\
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.Threshold=INFO
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
";

/// Generates the builder methods for the knobs in [`Settings`]. The builder type needs a
/// `settings: Settings` field.
macro_rules! settings_setters {
    () => {
        /// `tickTime` in milliseconds (default 2000). Unless overridden, the server clamps session
        /// timeouts into `[2 × tick, 20 × tick]`; a silent session expires within one tick after
        /// its timeout. Use e.g. 500 for fast expiry tests (sessions of 1 s..10 s).
        pub fn tick_time(mut self, ms: u32) -> Self {
            self.settings.tick_time = ms;
            self
        }

        /// `minSessionTimeout` in milliseconds (default `2 × tick_time`).
        pub fn min_session_timeout(mut self, ms: u32) -> Self {
            self.settings.min_session_timeout = Some(ms);
            self
        }

        /// `maxSessionTimeout` in milliseconds (default `20 × tick_time`).
        pub fn max_session_timeout(mut self, ms: u32) -> Self {
            self.settings.max_session_timeout = Some(ms);
            self
        }

        /// Adds a `key=value` line to `zoo.cfg` (after the kit's own lines, so it overrides them;
        /// do not override `dataDir`, `clientPort`, `clientPortAddress` or `server.N`). Keys
        /// ZooKeeper does not know become the system property `zookeeper.<key>`.
        pub fn cfg(mut self, key: impl Into<String>, value: impl ToString) -> Self {
            let key = key.into();
            $crate::settings::upsert(&mut self.settings.cfg, &key, value.to_string());
            self
        }

        /// Adds a `-Dkey=value` JVM option (for properties ZooKeeper reads without the
        /// `zookeeper.` prefix, e.g. `znode.container.checkIntervalMs`, default 1000 here, or
        /// `jute.maxbuffer`).
        pub fn jvm_prop(mut self, key: impl Into<String>, value: impl ToString) -> Self {
            let key = key.into();
            $crate::settings::upsert(&mut self.settings.jvm_props, &key, value.to_string());
            self
        }

        /// `4lw.commands.whitelist` (default `*`, all words). `srvr` and `conf` are always
        /// added: the kit needs them for readiness.
        pub fn four_letter_whitelist(mut self, words: impl Into<String>) -> Self {
            self.settings.four_letter_whitelist = words.into();
            self
        }

        /// `extendedTypesEnabled` (default `true`): allows TTL nodes.
        pub fn extended_types(mut self, enabled: bool) -> Self {
            self.settings.extended_types = enabled;
            self
        }

        /// How long a start (or restart) may take before it fails (default 120 s: a generous
        /// bound for loaded machines; a JVM that exits fails at once, whatever this says).
        pub fn startup_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.startup_timeout = timeout;
            self
        }
    };
}
pub(crate) use settings_setters;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_cfg_lists_every_peer() {
        let settings = Settings {
            four_letter_whitelist: "ruok, mntr".into(),
            min_session_timeout: Some(1000),
            cfg: vec![("snapCount".into(), "10".into())],
            ..Settings::default()
        };
        let peers = [
            MemberPorts {
                client: 1,
                quorum: 2,
                election: 3,
            },
            MemberPorts {
                client: 4,
                quorum: 5,
                election: 6,
            },
        ];
        let role = Role::Member {
            myid: 2,
            peers: &peers,
            read_only: true,
            view: None,
        };
        let cfg = settings.zoo_cfg(Path::new("/d"), 4, role);
        for expected in [
            "tickTime=2000\n",
            "dataDir=/d\n",
            "clientPort=4\n",
            "clientPortAddress=127.0.0.1\n",
            "4lw.commands.whitelist=ruok,mntr,srvr,conf\n",
            "minSessionTimeout=1000\n",
            "localSessionsEnabled=true\n",
            "server.1=127.0.0.1:2:3\n",
            "server.2=127.0.0.1:5:6\n",
            "snapCount=10\n",
        ] {
            assert!(cfg.contains(expected), "{expected:?} missing from\n{cfg}");
        }
        assert!(!cfg.contains("maxSessionTimeout"));
        let props = settings.jvm_props(role);
        assert_eq!(props[0], ("readonlymode.enabled".into(), "true".into()));
        assert_eq!(
            props[1],
            ("znode.container.checkIntervalMs".into(), "1000".into())
        );
    }

    #[test]
    fn upsert_replaces() {
        let mut list = Vec::new();
        upsert(&mut list, "a", "1".into());
        upsert(&mut list, "b", "2".into());
        upsert(&mut list, "a", "3".into());
        assert_eq!(
            list,
            vec![("a".into(), "3".into()), ("b".into(), "2".into())]
        );
    }
}
