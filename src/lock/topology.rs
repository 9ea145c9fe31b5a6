//! Where one [`Node`](super::Node)'s connections come from: a plain
//! master, the primary a set of Sentinels names (found again after a
//! failover), or a Redis Cluster (the redis crate's cluster client follows
//! MOVED and ASK for the key's slot). The redis crate does the discovery
//! and the routing; this file only chooses, checks the role, and forgets a
//! primary that stopped being one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ErrorKind, Pipeline, PushKind, RedisError,
    RedisFuture, RedisResult, Role, TlsMode, Value,
};

use crate::config::{Endpoint, Topology};

/// How to reach the server(s) behind one endpoint. Cheap to clone: the
/// wake-up tasks hold their own copy.
#[derive(Clone)]
pub(crate) enum Source {
    Single(Box<Client>),
    Sentinel(Arc<SentinelSource>),
    Cluster(Arc<ClusterSource>),
}

pub(crate) struct ClusterSource {
    client: ClusterClient,
    nodes: Vec<redis::ConnectionInfo>,
}

pub(crate) struct SentinelSource {
    sentinel: tokio::sync::Mutex<Sentinel>,
    service: String,
    node: SentinelNodeConnectionInfo,
    /// The primary found last; None until found, and again once it failed
    /// or answered as a replica.
    primary: Mutex<Option<Client>>,
    /// When the Sentinels were last asked (see [`Source::recheck`]).
    checked: Mutex<Option<std::time::Instant>>,
}

/// How often, at most, the Sentinels are asked again whether the primary
/// we talk to is still the one they name.
const RECHECK: Duration = Duration::from_millis(100);

/// The error a primary that answers as a replica is reported with (the
/// same code a write to a replica gets).
pub(super) fn replica_error() -> RedisError {
    RedisError::from((
        ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
        "READONLY",
        "the node the Sentinels named answers as a replica".to_string(),
    ))
}

impl Source {
    pub(crate) fn new(endpoint: &Endpoint) -> Self {
        // No I/O here: clients only store the connection info.
        match &endpoint.topology {
            Topology::Single => Source::Single(Box::new(
                Client::open(endpoint.info.clone()).expect("endpoint was validated"),
            )),
            Topology::Sentinel { sentinels, service } => {
                let sentinel = Sentinel::build(sentinels.clone()).expect("endpoint was validated");
                let mut node = SentinelNodeConnectionInfo::default().set_redis_connection_info(
                    endpoint
                        .info
                        .redis_settings()
                        .clone()
                        .set_skip_set_lib_name(),
                );
                if endpoint.is_tls() {
                    node = node.set_tls_mode(TlsMode::Secure);
                }
                Source::Sentinel(Arc::new(SentinelSource {
                    sentinel: tokio::sync::Mutex::new(sentinel),
                    service: service.clone(),
                    node,
                    primary: Mutex::new(None),
                    checked: Mutex::new(None),
                }))
            }
            Topology::Cluster { nodes } => Source::Cluster(Arc::new(ClusterSource {
                client: cluster_builder(nodes)
                    .build()
                    .expect("endpoint was validated"),
                nodes: nodes.clone(),
            })),
        }
    }

    pub(crate) fn is_sentinel(&self) -> bool {
        matches!(self, Source::Sentinel(_))
    }

    /// A connection for requests, within `timeout`. For Sentinel: to the
    /// primary the Sentinels name (the redis crate checks it with ROLE),
    /// checked once more with ROLE on this very connection, so a failover
    /// between the two checks cannot hand us a replica.
    pub(crate) async fn connect(&self, timeout: Duration) -> RedisResult<Conn> {
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None);
        match self {
            Source::Single(client) => Ok(Conn::Plain(
                client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await?,
            )),
            Source::Sentinel(s) => {
                let client = s.primary().await?;
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await;
                if let Ok(c) = &mut conn {
                    match redis::cmd("ROLE").query_async::<Role>(c).await {
                        Ok(Role::Primary { .. }) => {}
                        Ok(_) => {
                            s.forget();
                            return Err(replica_error());
                        }
                        Err(e) => conn = Err(e),
                    }
                }
                conn.inspect_err(|_| s.forget()).map(Conn::Plain)
            }
            Source::Cluster(c) => Ok(Conn::Cluster(c.client.get_async_connection().await?)),
        }
    }

    /// Sentinel: before a request, ask the Sentinels (at most every
    /// 100 ms) whether they still name the primary we are connected to. A
    /// failed-over primary keeps taking writes until the Sentinels turn it
    /// into a replica (seconds later: they look at it every few seconds),
    /// so waiting for it to refuse a write would renew a lease on a server
    /// nobody else uses any more. True when the primary changed: the
    /// caller drops its connection. If no Sentinel answers, the primary we
    /// know is kept (its ROLE is checked on every new connection).
    pub(crate) async fn recheck(&self) -> bool {
        let Source::Sentinel(s) = self else {
            return false;
        };
        {
            let mut checked = s.checked.lock().expect("not poisoned");
            if checked.is_some_and(|t| t.elapsed() < RECHECK) {
                return false;
            }
            *checked = Some(std::time::Instant::now());
        }
        let Some(known) = s.primary.lock().expect("not poisoned").clone() else {
            return false;
        };
        let named = s
            .sentinel
            .lock()
            .await
            .async_master_for(&s.service, Some(&s.node))
            .await;
        match named {
            Ok(c) if c.get_connection_info().addr() != known.get_connection_info().addr() => {
                tracing::info!(
                    "the Sentinels name a new primary for {}: {}",
                    s.service,
                    c.get_connection_info().addr()
                );
                *s.primary.lock().expect("not poisoned") = Some(c);
                true
            }
            _ => false,
        }
    }

    /// After a failure that may mean a failover (connection lost, a
    /// replica's READONLY, MASTERDOWN): ask the Sentinels again next time.
    pub(crate) fn forget(&self) {
        if let Source::Sentinel(s) = self {
            s.forget();
        }
    }

    /// Subscribe to `channels` (all in one slot) and yield once per
    /// message. Cluster: through a RESP3 cluster connection, which sends
    /// SSUBSCRIBE (SUBSCRIBE before Redis 7) to the master of the channels' slot (the key's: the
    /// release script counts its own node's receivers to pick the waiter
    /// to wake) and subscribes again after a reconnect;
    /// elsewhere SUBSCRIBE on the master.
    pub(crate) async fn subscribe(
        &self,
        channels: &[String],
    ) -> RedisResult<BoxStream<'static, ()>> {
        let client = match self {
            Source::Single(client) => (**client).clone(),
            Source::Sentinel(s) => s.primary().await?,
            Source::Cluster(c) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let client = cluster_builder(&c.nodes)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(tx)
                    .build()?;
                let mut conn = client.get_async_connection().await?;
                // Sharded pub/sub where the server has it (Redis 7), as the
                // release scripts publish (`Locker::publish_command`).
                if conn.ssubscribe(channels).await.is_err() {
                    conn.subscribe(channels).await?;
                }
                // The connection lives as long as the stream.
                let stream = futures_util::stream::unfold((rx, conn), |(mut rx, conn)| async {
                    loop {
                        let push = rx.recv().await?;
                        if matches!(push.kind, PushKind::SMessage | PushKind::Message) {
                            return Some(((), (rx, conn)));
                        }
                    }
                });
                return Ok(stream.boxed());
            }
        };
        let mut ps = client.get_async_pubsub().await?;
        ps.subscribe(channels).await?;
        Ok(ps.into_on_message().map(|_| ()).boxed())
    }
}

/// The cluster client's own retries (MOVED, ASK, TRYAGAIN, a dropped
/// connection) are kept short: each request has its own deadline and the
/// lock's callers retry on their own, so a TRYAGAIN during a slot
/// migration must come back as such within a request's time (the crate's
/// default waits at least 1.28 s before each of 16 retries).
fn cluster_builder(nodes: &[redis::ConnectionInfo]) -> ClusterClientBuilder {
    let mut b = ClusterClientBuilder::new(nodes.to_vec())
        .retries(5)
        .min_retry_wait(10)
        .max_retry_wait(100);
    if matches!(nodes[0].addr(), ConnectionAddr::TcpTls { .. }) {
        b = b.tls(TlsMode::Secure);
    }
    b
}

impl SentinelSource {
    async fn primary(&self) -> RedisResult<Client> {
        if let Some(c) = self.primary.lock().expect("not poisoned").clone() {
            return Ok(c);
        }
        let client = self
            .sentinel
            .lock()
            .await
            .async_master_for(&self.service, Some(&self.node))
            .await?;
        *self.primary.lock().expect("not poisoned") = Some(client.clone());
        Ok(client)
    }

    fn forget(&self) {
        *self.primary.lock().expect("not poisoned") = None;
    }
}

/// A connection to a master, or to a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Plain(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Conn {
    /// `WAIT n timeout` on the master that holds `key` (in a cluster, the
    /// primary that serves its slot): how many replicas acknowledged every
    /// write sent so far on this connection.
    pub(crate) async fn wait_replicas(
        &mut self,
        key: &str,
        n: u32,
        timeout: Duration,
    ) -> RedisResult<u32> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(n).arg(timeout.as_millis().max(1) as u64);
        match self {
            Conn::Plain(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let slot = super::slot::key_slot(key.as_bytes());
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::new(slot, SlotAddr::Master),
                ));
                Ok(redis::from_redis_value(c.route_command(cmd, route).await?)?)
            }
        }
    }
}

impl Conn {
    /// `HELLO` (no arguments: the protocol stays as it is), which names
    /// the server and its version; in a cluster, on any node.
    pub(crate) async fn hello(&mut self) -> RedisResult<Value> {
        self.any_node(redis::cmd("HELLO")).await
    }

    /// `INFO server`; in a cluster, on any node.
    pub(crate) async fn info_server(&mut self) -> RedisResult<String> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("server");
        Ok(redis::from_redis_value(self.any_node(cmd).await?)?)
    }

    async fn any_node(&mut self, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Conn::Plain(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
                c.route_command(cmd, route).await
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Plain(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Plain(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Plain(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
