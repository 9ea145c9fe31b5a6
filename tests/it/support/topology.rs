//! Real Sentinel and Cluster set-ups on free loopback ports, started and
//! stopped (by PID) by the test: a primary, a replica and three
//! `redis-sentinel` processes; or three `redis-server --cluster-enabled`
//! masters joined with `redis-cli --cluster create`. On the test's
//! [`ServerKind`](super::ServerKind): the Sentinels are its server binary
//! with `--sentinel` (Debian's `redis-sentinel` for Redis 7.0), the nodes
//! its `--cluster-enabled` servers (Debian's redis-cli 7 joins Valkey's too).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{RedisServer, ServerKind, free_port, wait_until};

/// One `redis-sentinel` process, killed (by PID) on drop.
pub struct SentinelProc {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    /// Its `requirepass`, if any.
    password: Option<String>,
}

impl SentinelProc {
    fn start(primary_port: u16, auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel.log\n\
                 sentinel monitor mymaster 127.0.0.1 {primary_port} 2\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 4000\n\
                 sentinel parallel-syncs mymaster 1\n{auth}",
                dir = dir.path().display(),
                auth = auth.map_or(String::new(), |(data, own)| format!(
                    "sentinel auth-pass mymaster {data}\nrequirepass {own}\n"
                )),
            ),
        )
        .unwrap();
        let password = auth.map(|(_, own)| own.to_string());
        let kind = ServerKind::current();
        let mut cmd = match kind {
            ServerKind::Redis70 => Command::new("redis-sentinel"),
            _ => Command::new(kind.binary()),
        };
        cmd.arg(&conf);
        if kind != ServerKind::Redis70 {
            cmd.arg("--sentinel");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{kind} as a Sentinel: {e} ({})", kind.install_hint()));
        let s = SentinelProc {
            port,
            child,
            dir,
            password,
        };
        wait_until("redis-sentinel to answer", Duration::from_secs(10), || {
            s.try_query::<String>(&["PING"]).is_ok()
        });
        s
    }

    pub fn try_query<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let auth = self
            .password
            .as_ref()
            .map_or(String::new(), |p| format!(":{p}@"));
        let client = redis::Client::open(format!("redis://{auth}127.0.0.1:{}", self.port))?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(&mut conn)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }
}

impl Drop for SentinelProc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- redis-sentinel :{} log ----\n{}",
                self.port,
                self.log()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A primary, one replica and three Sentinels that watch them as
/// `mymaster`, ready (the replica in sync, every Sentinel aware of it).
pub struct SentinelSetup {
    /// `servers[0]` starts as the primary, `servers[1]` as its replica.
    pub servers: Vec<RedisServer>,
    pub sentinels: Vec<SentinelProc>,
}

impl SentinelSetup {
    pub fn start() -> Self {
        Self::start_linked(|port| port)
    }

    /// Like [`SentinelSetup::start`], but the replica replicates from
    /// the port `link` returns for the primary's (a fault proxy).
    pub fn start_linked(link: impl FnOnce(u16) -> u16) -> Self {
        Self::start_full(link, None)
    }

    /// With passwords: `data` for the primary and the replica, `own` for
    /// the Sentinels.
    pub fn start_with_auth(data: &str, own: &str) -> Self {
        Self::start_full(|port| port, Some((data, own)))
    }

    fn start_full(link: impl FnOnce(u16) -> u16, auth: Option<(&str, &str)>) -> Self {
        // No 5 s wait before a full sync (the default for diskless sync).
        let fast = ["--repl-diskless-sync-delay", "0"];
        let start = |extra: &[&str]| match auth {
            Some((data, _)) => {
                let mut all = vec!["--masterauth", data];
                all.extend(extra);
                RedisServer::start_with_password_and(data, &all)
            }
            None => RedisServer::start_with(extra),
        };
        let primary = start(&fast);
        let port = link(primary.port).to_string();
        let replica = start(&[fast[0], fast[1], "--replicaof", "127.0.0.1", &port]);
        let servers = vec![primary, replica];
        let sentinels: Vec<_> = (0..3)
            .map(|_| SentinelProc::start(servers[0].port, auth))
            .collect();
        let replica_port = servers[1].port.to_string();
        for s in &sentinels {
            wait_until(
                "the Sentinels to see the replica",
                Duration::from_secs(15),
                || {
                    s.try_query::<Vec<std::collections::HashMap<String, String>>>(&[
                        "SENTINEL", "REPLICAS", "mymaster",
                    ])
                    .is_ok_and(|r| {
                        r.iter().any(|m| {
                            m.get("port") == Some(&replica_port)
                                && m.get("flags").is_some_and(|f| !f.contains("disconnected"))
                        })
                    })
                },
            );
        }
        wait_replica_online(&servers[0]);
        SentinelSetup { servers, sentinels }
    }

    /// `redis+sentinel://` URL over the three Sentinels.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/mymaster", hosts.join(","))
    }

    /// The index in `servers` of the primary the Sentinels name.
    pub fn primary(&self) -> usize {
        let (_, port): (String, String) = self.sentinels[0]
            .try_query(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"])
            .expect("the Sentinel answers");
        self.servers
            .iter()
            .position(|s| s.port.to_string() == port)
            .expect("a known server")
    }

    /// Fail over (SENTINEL FAILOVER) and wait until the other server is
    /// the primary, by its own ROLE and by every Sentinel's account. (The
    /// old primary still takes writes for seconds, until the Sentinels
    /// turn it into a replica: clients must ask the Sentinels.)
    pub fn failover(&self) -> usize {
        let old = self.primary();
        let new = 1 - old;
        let _: String = self.sentinels[0]
            .try_query(&["SENTINEL", "FAILOVER", "mymaster"])
            .expect("SENTINEL FAILOVER");
        wait_until("the failover", Duration::from_secs(20), || {
            role(&self.servers[new]) == "master" && self.all_sentinels_name(new)
        });
        new
    }

    /// Whether every Sentinel names `servers[idx]` as the primary.
    pub fn all_sentinels_name(&self, idx: usize) -> bool {
        let port = self.servers[idx].port.to_string();
        self.sentinels.iter().all(|s| {
            s.try_query::<(String, String)>(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"])
                .is_ok_and(|(_, p)| p == port)
        })
    }

    /// After the primary was killed: wait (up to 20 s) until every
    /// Sentinel names `servers[idx]`, the replica, as the primary.
    pub fn wait_promoted(&self, idx: usize) {
        wait_until(
            "the Sentinels to promote the replica",
            Duration::from_secs(20),
            || self.all_sentinels_name(idx),
        );
    }
}

/// Wait until a replica acknowledges `primary`'s writes: a write and a
/// `WAIT 1` on one connection, until the WAIT counts the replica. After a
/// diskless full sync the primary streams to the replica, and WAIT counts
/// it, only from the replica's first REPLCONF ACK, up to a second after
/// the replica reports `master_link_status:up` (measured: WAIT 1 answered
/// 0 for the first ~900 ms).
pub fn wait_replica_online(primary: &RedisServer) {
    let mut conn = primary.conn();
    wait_until(
        "a replica to acknowledge writes",
        Duration::from_secs(15),
        || {
            redis::pipe()
                .cmd("SET")
                .arg("redlock-run-test:probe")
                .arg(1)
                .ignore()
                .cmd("WAIT")
                .arg(1)
                .arg(100)
                .query::<(i64,)>(&mut conn)
                .is_ok_and(|(n,)| n >= 1)
        },
    );
    let _: i64 = primary.query(&["DEL", "redlock-run-test:probe"]);
}

/// `INFO replication` of a server.
pub fn replication(s: &RedisServer) -> String {
    s.query::<String>(&["INFO", "replication"])
}

/// `master` or `slave`, from INFO.
pub fn role(s: &RedisServer) -> String {
    replication(s)
        .lines()
        .find_map(|l| l.strip_prefix("role:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A free port for a cluster node: at most 55535, with its cluster bus
/// port (10000 higher) free too.
fn cluster_port() -> u16 {
    loop {
        let p = free_port();
        if p <= 55_535 && std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return p;
        }
    }
}

/// Three cluster-enabled masters holding all 16384 slots.
pub struct ClusterSetup {
    pub nodes: Vec<RedisServer>,
    _dir: tempfile::TempDir,
}

/// A slot to migrate and the nodes (indices into `ClusterSetup::nodes`)
/// it moves between; see [`ClusterSetup::slot_move`].
pub struct SlotMove {
    pub slot: u16,
    pub from: usize,
    pub to: usize,
}

impl ClusterSetup {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes: Vec<RedisServer> = (0..3)
            .map(|i| {
                let conf: PathBuf = dir.path().join(format!("nodes-{i}.conf"));
                RedisServer::start_on(
                    cluster_port(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        conf.to_str().unwrap(),
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        for n in &nodes {
            while !n
                .query::<String>(&["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
            {
                assert!(Instant::now() < deadline, "the cluster did not come up");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        ClusterSetup { nodes, _dir: dir }
    }

    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The slot of `key`, by the server (CLUSTER KEYSLOT).
    pub fn slot(&self, key: &str) -> u16 {
        self.nodes[0].query(&["CLUSTER", "KEYSLOT", key])
    }

    /// The index of the node that serves `slot`.
    pub fn owner(&self, slot: u16) -> usize {
        let ids: Vec<String> = self
            .nodes
            .iter()
            .map(|n| n.query(&["CLUSTER", "MYID"]))
            .collect();
        let nodes: String = self.nodes[0].query(&["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            for range in &f[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    if (a..=b).contains(&slot) {
                        return ids.iter().position(|id| id == f[0]).expect("a known node");
                    }
                }
            }
        }
        panic!("slot {slot} has no owner");
    }

    /// Where a migration of `key`'s slot goes: the slot, the index of the
    /// node that serves it now, and the next node, to move it to.
    pub fn slot_move(&self, key: &str) -> SlotMove {
        let slot = self.slot(key);
        let from = self.owner(slot);
        SlotMove {
            slot,
            from,
            to: (from + 1) % self.nodes.len(),
        }
    }

    /// Move `slot` (and its keys) from node `from` to node `to`, the way
    /// `redis-cli --cluster reshard` does: IMPORTING / MIGRATING, MIGRATE
    /// key by key, then SETSLOT NODE on both. `between` runs while the
    /// slot is half-way (MIGRATING on `from`, IMPORTING on `to`, no key
    /// moved yet).
    pub fn migrate_slot(&self, slot: u16, from: usize, to: usize, between: impl FnOnce()) {
        let (src, dst) = (&self.nodes[from], &self.nodes[to]);
        let src_id: String = src.query(&["CLUSTER", "MYID"]);
        let dst_id: String = dst.query(&["CLUSTER", "MYID"]);
        let s = slot.to_string();
        let _: String = dst.query(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id]);
        let _: String = src.query(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id]);
        between();
        loop {
            let keys: Vec<String> = src.query(&["CLUSTER", "GETKEYSINSLOT", &s, "100"]);
            if keys.is_empty() {
                break;
            }
            let port = dst.port.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys.iter().map(String::as_str));
            let _: String = src.query(&args);
        }
        for n in [dst, src] {
            let _: String = n.query(&["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]);
        }
        let third = 3 - from - to;
        let _: String = self.nodes[third].query(&["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]);
    }
}
