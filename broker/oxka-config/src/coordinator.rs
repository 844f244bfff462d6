//! `CoordinatorConfig`: a coordinator's validated settings, built once from ZooKeeper's
//! `zookeeper.properties` keys and `KAFKA_HEAP_OPTS`.
//!
//! The seed's file (`dataDir`, `clientPort`, `maxClientCnxns`, `admin.enableServer`) starts a single
//! coordinator as it is. An ensemble adds ZooKeeper's `server.N=host:peerPort[:electionPort][;[clientHost:]clientPort]`
//! lines: the first port carries Raft between coordinators, the election port is accepted and unused
//! (Raft elects over the peer port), and the optional `;clientPort` suffix (ZooKeeper 3.5's dynamic
//! config form) says where that member serves the Kafka protocol; without it every member is assumed to
//! use this file's `clientPort`. The member's own id comes from `coordinator.id` / `myid` or from
//! `dataDir/myid`, as in ZooKeeper.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::leader_balance::LeaderBalanceConfig;
use super::raw::{heap_from_opts, ConfigError, RawConfig};
use crate::join_host_port;

/// 512 MiB, the seed's `zookeeper-server-start.sh` default heap.
pub const DEFAULT_COORDINATOR_HEAP: u64 = 512 << 20;

/// A coordinator's id (`server.N`, `myid`). Raft node ids are these numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoordinatorId(pub u64);

impl std::fmt::Display for CoordinatorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One member of the ensemble, from a `server.N` line (or the implicit single voter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: CoordinatorId,
    pub host: String,
    /// Raft traffic between coordinators; `None` only for the implicit single voter.
    pub peer_port: Option<u16>,
    /// Where this member serves the Kafka protocol (brokers, DescribeQuorum).
    pub client_host: String,
    pub client_port: u16,
}

impl Voter {
    pub fn peer_address(&self) -> Option<String> {
        self.peer_port.map(|p| join_host_port(&self.host, p))
    }

    pub fn client_address(&self) -> String {
        join_host_port(&self.client_host, self.client_port)
    }
}

/// A coordinator's validated configuration.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub id: CoordinatorId,
    /// Raft log, vote, snapshots and `myid` live here.
    pub data_dir: PathBuf,
    /// Address the Kafka-protocol listener binds (`clientPortAddress`, default every interface).
    pub client_bind_host: String,
    pub client_port: u16,
    /// Every voter, this member included, by id.
    pub voters: BTreeMap<CoordinatorId, Voter>,
    /// `maxClientCnxns`; 0 means unlimited, as in ZooKeeper.
    pub max_client_connections: usize,
    /// Raft heartbeat interval (`raft.heartbeat.interval.ms`, default 150 ms).
    pub heartbeat_interval_ms: u64,
    /// Raft election timeout lower bound (`raft.election.timeout.ms`, default 1000 ms; the upper bound
    /// is twice this). ZooKeeper's `tickTime`/`initLimit`/`syncLimit` are accepted but not used: their
    /// products (seconds) would make fail-over needlessly slow.
    pub election_timeout_ms: u64,
    /// Take a snapshot and compact the Raft log after this many entries (`snapCount`, default 10000).
    pub snapshot_every_entries: u64,
    /// How long a metadata write waits for the quorum before failing (`request.timeout.ms`, default 5000).
    pub write_timeout_ms: u64,
    /// A broker whose heartbeats stop for this long is fenced by the controller
    /// (`broker.session.timeout.ms`, Kafka's default 9000).
    pub broker_session_timeout_ms: u64,
    /// `auto.leader.rebalance.enable`, `leader.imbalance.check.interval.seconds`,
    /// `leader.imbalance.per.broker.percentage`: the controller's preferred-leader rebalancing.
    pub leader_balance: LeaderBalanceConfig,
    /// Prometheus and health HTTP port (`metrics.port`, default 9405); `None` disables it, 0 picks one.
    pub metrics_port: Option<u16>,
    /// Memory budget from `KAFKA_HEAP_OPTS` `-Xmx` (default 512 MiB).
    pub heap_bytes: u64,
    /// `sslQuorum=true` and `ssl.quorum.*` (ZooKeeper's keys): TLS on the Raft peer port.
    pub quorum_tls: Option<crate::quorum_tls::QuorumTls>,
    /// `secureClientPort` and ZooKeeper's `ssl.*` keys: a second, TLS-only client port.
    pub secure_client_port: Option<crate::ensemble_tls::SecureClientPort>,
    pub unknown_keys: Vec<String>,
}

impl CoordinatorConfig {
    /// Parses and validates `zookeeper.properties` text; `origin` labels errors (usually the path).
    pub fn from_properties_text(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw = RawConfig::from_text(text, origin)?;
        Self::from_raw(&raw, None)
    }

    /// Reads a file and `KAFKA_HEAP_OPTS` from the environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let raw = RawConfig::from_file(path)?;
        let heap_opts = std::env::var("KAFKA_HEAP_OPTS").ok();
        Self::from_raw(&raw, heap_opts.as_deref())
    }

    /// Validates a raw config; reads `dataDir/myid` when the id is not set by a key.
    pub fn from_raw(raw: &RawConfig, heap_opts: Option<&str>) -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(raw.string("dataDir").unwrap_or_else(|| "/tmp/zookeeper".into()));
        if data_dir.as_os_str().is_empty() {
            return Err(raw.invalid("dataDir", "is empty".into()));
        }
        let client_port = raw.ranged::<u16>("clientPort", 0, u16::MAX)?.unwrap_or(2181);
        let client_bind_host = raw.string("clientPortAddress").unwrap_or_default();
        let servers = server_lines(raw, client_port)?;
        let key_id = match raw.ranged::<u64>("coordinator.id", 0, i32::MAX as u64)? {
            Some(id) => Some(id),
            None => raw.ranged::<u64>("myid", 0, i32::MAX as u64)?,
        };
        let id = match key_id {
            Some(id) => id,
            None => match read_myid(&data_dir)? {
                Some(id) => id,
                None if servers.is_empty() => 1,
                None => {
                    return Err(ConfigError::Missing {
                        key: "coordinator.id".into(),
                        what: format!(
                            "an ensemble (server.N lines) needs each member's id: write it to {} as ZooKeeper \
                             does, or set coordinator.id",
                            data_dir.join("myid").display()
                        ),
                    })
                }
            },
        };
        let id = CoordinatorId(id);
        let voters = if servers.is_empty() {
            let host = if client_bind_host.is_empty() || client_bind_host == "0.0.0.0" {
                "localhost".to_string()
            } else {
                client_bind_host.clone()
            };
            BTreeMap::from([(
                id,
                Voter {
                    id,
                    host: host.clone(),
                    peer_port: None,
                    client_host: host,
                    client_port,
                },
            )])
        } else {
            if !servers.contains_key(&id) {
                let ids: Vec<String> = servers.keys().map(|k| format!("server.{k}")).collect();
                return Err(ConfigError::Missing {
                    key: format!("server.{id}"),
                    what: format!(
                        "this coordinator's id is {id} but the ensemble lists only {}; fix myid or add the line",
                        ids.join(", ")
                    ),
                });
            }
            servers
        };
        for key in ["tickTime", "initLimit", "syncLimit"] {
            raw.ranged::<u64>(key, 1, i32::MAX as u64)?;
        }
        raw.boolean("admin.enableServer")?;
        for key in [
            "admin.serverPort",
            "autopurge.snapRetainCount",
            "autopurge.purgeInterval",
            "4lw.commands.whitelist",
            "dataLogDir",
            "electionPortBindRetry",
        ] {
            raw.accept(key);
        }
        let max_client_connections = match raw.ranged::<usize>("maxClientCnxns", 0, i32::MAX as usize)? {
            None | Some(0) => 65_536,
            Some(n) => n,
        };
        let heartbeat_interval_ms = raw
            .ranged::<u64>("raft.heartbeat.interval.ms", 10, 60_000)?
            .unwrap_or(150);
        let election_timeout_ms = raw
            .ranged::<u64>("raft.election.timeout.ms", 50, 600_000)?
            .unwrap_or(1000);
        if election_timeout_ms <= heartbeat_interval_ms {
            return Err(raw.invalid(
                "raft.election.timeout.ms",
                format!("must be larger than raft.heartbeat.interval.ms={heartbeat_interval_ms}"),
            ));
        }
        let snapshot_every_entries = raw.ranged::<u64>("snapCount", 10, i32::MAX as u64)?.unwrap_or(10_000);
        let write_timeout_ms = raw.ranged::<u64>("request.timeout.ms", 100, 600_000)?.unwrap_or(5000);
        let broker_session_timeout_ms = raw
            .ranged::<u64>("broker.session.timeout.ms", 100, 3_600_000)?
            .unwrap_or(9000);
        let leader_balance = LeaderBalanceConfig::from_raw(raw)?;
        let metrics_port = match raw.ranged::<i32>("metrics.port", -1, 65535)? {
            Some(-1) => None,
            Some(p) => Some(p as u16),
            None => Some(9405),
        };
        let heap_bytes = match heap_opts {
            None => DEFAULT_COORDINATOR_HEAP,
            Some(opts) => heap_from_opts(opts)
                .map_err(|reason| ConfigError::Invalid {
                    key: "-Xmx".into(),
                    value: opts.to_string(),
                    origin: super::properties::Origin::Environment("KAFKA_HEAP_OPTS"),
                    reason,
                    hint: None,
                })?
                .unwrap_or(DEFAULT_COORDINATOR_HEAP),
        };
        Ok(CoordinatorConfig {
            id,
            data_dir,
            client_bind_host,
            client_port,
            voters,
            max_client_connections,
            heartbeat_interval_ms,
            election_timeout_ms,
            snapshot_every_entries,
            write_timeout_ms,
            broker_session_timeout_ms,
            leader_balance,
            metrics_port,
            heap_bytes,
            quorum_tls: crate::quorum_tls::from_raw(raw)?,
            secure_client_port: crate::ensemble_tls::secure_client_port(raw)?,
            unknown_keys: raw.unknown_keys(),
        })
    }

    /// This member's own entry in `voters`.
    pub fn me(&self) -> &Voter {
        &self.voters[&self.id]
    }

    /// Address the Kafka-protocol listener binds.
    pub fn client_bind_address(&self) -> String {
        let host = if self.client_bind_host.is_empty() {
            "0.0.0.0"
        } else {
            &self.client_bind_host
        };
        join_host_port(host, self.client_port)
    }
}

/// The `server.N` lines, by id.
fn server_lines(raw: &RawConfig, default_client_port: u16) -> Result<BTreeMap<CoordinatorId, Voter>, ConfigError> {
    let keys: Vec<String> = raw
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| k.starts_with("server."))
        .collect();
    let mut out = BTreeMap::new();
    for key in keys {
        let value = raw.string(&key).unwrap_or_default();
        let bad = |reason: &str| raw.invalid(&key, reason.to_string());
        let id: u64 = key["server.".len()..]
            .parse()
            .map_err(|_| bad("the key must be server.<id> with a numeric id"))?;
        let (peers, client) = match value.split_once(';') {
            Some((p, c)) => (p.trim(), Some(c.trim())),
            None => (value.as_str(), None),
        };
        let (host, ports) = split_host(peers).ok_or_else(|| bad("expected host:peerPort[:electionPort]"))?;
        let mut ports = ports.split(':');
        let peer_port: u16 = ports
            .next()
            .and_then(|p| p.trim().parse().ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("expected host:peerPort[:electionPort] with a peer port between 1 and 65535"))?;
        // The election port and ZooKeeper's `:participant`/`:observer` role suffixes are accepted.
        let (client_host, client_port) = match client {
            None => (host.clone(), default_client_port),
            Some(c) => match c.rsplit_once(':') {
                Some((h, p)) => (
                    if h.is_empty() || h == "0.0.0.0" {
                        host.clone()
                    } else {
                        h.to_string()
                    },
                    p.parse()
                        .map_err(|_| bad("the client address after ';' must be [host:]port"))?,
                ),
                None => (
                    host.clone(),
                    c.parse()
                        .map_err(|_| bad("the client address after ';' must be [host:]port"))?,
                ),
            },
        };
        let id = CoordinatorId(id);
        out.insert(
            id,
            Voter {
                id,
                host,
                peer_port: Some(peer_port),
                client_host,
                client_port,
            },
        );
    }
    Ok(out)
}

/// Splits `host:rest` where host may be a bracketed IPv6 address.
fn split_host(text: &str) -> Option<(String, &str)> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host.to_string(), after.strip_prefix(':')?));
    }
    let (host, ports) = text.split_once(':')?;
    (!host.is_empty()).then(|| (host.to_string(), ports))
}

fn read_myid(data_dir: &Path) -> Result<Option<u64>, ConfigError> {
    let path = data_dir.join("myid");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| ConfigError::Invalid {
            key: "myid".into(),
            value: text.trim().to_string(),
            origin: super::properties::Origin::File {
                path: path.display().to_string(),
                line: 1,
            },
            reason: "expected the coordinator's numeric id".into(),
            hint: None,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CoordinatorConfig, ConfigError> {
        CoordinatorConfig::from_properties_text(text, "zookeeper.properties")
    }

    #[test]
    fn leader_rebalance_keys_configure_the_controller() {
        let c = parse("auto.leader.rebalance.enable=true\nleader.imbalance.check.interval.seconds=2\n").unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(c.leader_balance.check_interval, std::time::Duration::from_secs(2));
        assert_eq!(c.leader_balance.imbalance_per_broker_percentage, 10);
        assert!(parse("leader.imbalance.check.interval.seconds=soon\n").is_err());
    }

    #[test]
    fn seed_file_starts_a_single_coordinator() {
        // The seed's zookeeper.properties, verbatim.
        let seed = "# The coordinator configuration that the seed starts first (Kafka 2.8's config/zookeeper.properties defaults).\n\
                    dataDir=/tmp/zookeeper\nclientPort=2181\nmaxClientCnxns=0\nadmin.enableServer=false\n";
        let c = parse(seed).unwrap();
        assert_eq!(c.client_port, 2181);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/zookeeper"));
        assert_eq!(c.id, CoordinatorId(1));
        assert_eq!(c.voters.len(), 1);
        assert_eq!(c.me().peer_port, None);
        assert_eq!(c.heap_bytes, DEFAULT_COORDINATOR_HEAP);
        assert_eq!(c.metrics_port, Some(9405));
        assert_eq!(c.max_client_connections, 65_536);
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(c.client_bind_address(), "0.0.0.0:2181");
    }

    #[test]
    fn shipped_config_parses_with_no_unknown_keys() {
        let c = parse(include_str!("../../../config/zookeeper.properties")).unwrap();
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert_eq!(c.voters.len(), 1);
    }

    #[test]
    fn ensemble_lines_and_myid_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        let text = format!(
            "dataDir={}\nclientPort=2181\ntickTime=2000\ninitLimit=5\nsyncLimit=2\n\
             server.1=zk1:2888:3888\nserver.2=zk2:2888:3888;2182\nserver.3=[::1]:2890;127.0.0.1:2183\n",
            dir.path().display()
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.id, CoordinatorId(2));
        assert_eq!(c.voters.len(), 3);
        let v1 = &c.voters[&CoordinatorId(1)];
        assert_eq!(v1.peer_address().unwrap(), "zk1:2888");
        assert_eq!(v1.client_address(), "zk1:2181");
        assert_eq!(c.me().client_address(), "zk2:2182");
        let v3 = &c.voters[&CoordinatorId(3)];
        assert_eq!(v3.peer_address().unwrap(), "[::1]:2890");
        assert_eq!(v3.client_address(), "127.0.0.1:2183");
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
    }

    #[test]
    fn id_key_wins_and_must_be_listed() {
        let c = parse("dataDir=/nonexistent\nmyid=3\nserver.3=h:1\nserver.1=h:2\n").unwrap();
        assert_eq!(c.id, CoordinatorId(3));
        let err = parse("dataDir=/nonexistent\ncoordinator.id=7\nserver.1=h:1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.7"), "{err}");
        let err = parse("dataDir=/nonexistent\nserver.1=h:1\n").unwrap_err().to_string();
        assert!(err.contains("myid"), "{err}");
    }

    #[test]
    fn bad_values_name_their_line() {
        let err = parse("clientPort=2181\nserver.1=nohostport\n").unwrap_err().to_string();
        assert!(err.contains("zookeeper.properties:2"), "{err}");
        let err = parse("server.x=h:1\n").unwrap_err().to_string();
        assert!(err.contains("numeric id"), "{err}");
        let err = parse("clientPort=99999\n").unwrap_err().to_string();
        assert!(err.contains("clientPort"), "{err}");
        let err = parse("raft.heartbeat.interval.ms=500\nraft.election.timeout.ms=400\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger"), "{err}");
    }

    #[test]
    fn heap_and_metrics_port() {
        let raw = RawConfig::from_text("metrics.port=-1\n", "f").unwrap();
        let c = CoordinatorConfig::from_raw(&raw, Some("-Xms64m -Xmx256m")).unwrap();
        assert_eq!(c.heap_bytes, 256 << 20);
        assert_eq!(c.metrics_port, None);
        assert!(CoordinatorConfig::from_raw(&raw, Some("-Xmxbig")).is_err());
    }
}
