//! One Redis master (a plain one, the primary Sentinels name, or the
//! Cluster node that serves the key's slot): a lazily (re)connected
//! connection where every request carries a deadline. A request that
//! times out or fails on the wire drops the connection, so the next one
//! starts clean; under Sentinel it also forgets the primary, so the next
//! one asks the Sentinels again (a failover).

use std::time::Duration;

use redis::{FromRedisValue, RedisError};

use super::scripts::{self, Call};
use super::server::{self, Server};
use super::topology::{Conn, Source};
use crate::config::Endpoint;

/// Server errors that say "not now" about the whole master rather than
/// "no" about our request: it cannot take writes at the moment. They are
/// outages, retried until --timeout (exit 69 if Redis never granted), not
/// permanent failures. Code, and what it means for us.
pub(super) const TRANSIENT: [(&str, &str); 9] = [
    ("OOM", "out of memory: maxmemory reached under noeviction"),
    (
        "MISCONF",
        "writes stopped after a failed save (stop-writes-on-bgsave-error)",
    ),
    ("READONLY", "a read-only replica, not a master"),
    ("MASTERDOWN", "a replica that lost its master"),
    ("TRYAGAIN", "the key's slot is being migrated"),
    ("BUSY", "a script or function is still running"),
    ("LOADING", "still loading its data set"),
    ("CLUSTERDOWN", "the cluster is down"),
    (
        "NOREPLICAS",
        "too few replicas in reach (min-replicas-to-write)",
    ),
];

/// What [`TRANSIENT`] says about a server error code, if it lists it.
pub(super) fn transient(code: &str) -> Option<&'static str> {
    TRANSIENT
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, why)| *why)
}

/// Why a request to one master failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum NodeError {
    #[error("{name}: timed out after {after}", name = .0, after = humantime::format_duration(whole_ms(*.1)))]
    Timeout(String, Duration),
    /// A password missing or refused, or an ACL denial
    /// ([`crate::exit::AuthRefusal`]): no retry can fix it.
    #[error("{0}: {1}")]
    Auth(String, String),
    #[error("{0}: {1}")]
    Io(String, String),
    /// A [`TRANSIENT`] refusal: the master is there but cannot take the
    /// lock now.
    #[error("{name}: {code} ({why}): {detail}")]
    Refused {
        name: String,
        code: String,
        why: &'static str,
        detail: String,
    },
    #[error("{0}: {1}")]
    Server(String, String),
}

impl NodeError {
    /// True for failures that say nothing about the lock itself: the
    /// master could not be asked, or cannot answer for the lock now.
    pub(crate) fn is_unreachable(&self) -> bool {
        !matches!(self, NodeError::Server(..))
    }

    /// TRYAGAIN: the key's slot is being migrated and the keys a script
    /// names are not all on this node; the node ran nothing.
    pub(crate) fn is_slot_moving(&self) -> bool {
        matches!(self, NodeError::Refused { code, .. } if code == "TRYAGAIN")
    }

    /// True for an ACL refusal (NOPERM): the user may not send the
    /// command, or not on these keys or channels.
    pub(crate) fn is_denied(&self) -> bool {
        let msg = match self {
            NodeError::Auth(_, m) | NodeError::Server(_, m) => m,
            _ => return false,
        };
        let msg = msg.to_ascii_lowercase();
        msg.contains("noperm") || msg.contains("no permissions")
    }

    /// True when the connection cannot be trusted any more.
    fn breaks_connection(&self) -> bool {
        !matches!(self, NodeError::Server(..) | NodeError::Refused { .. })
    }

    /// True when the node may no longer be the primary (Sentinel): it
    /// could not be reached, or answers as a replica.
    fn may_mean_failover(&self) -> bool {
        match self {
            NodeError::Refused { code, .. } => matches!(code.as_str(), "READONLY" | "MASTERDOWN"),
            NodeError::Io(..) | NodeError::Timeout(..) => true,
            _ => false,
        }
    }
}

/// `d` to the nearest millisecond, for messages ("timed out after 1s",
/// not "999.877495ms").
fn whole_ms(d: Duration) -> Duration {
    Duration::from_millis(((d.as_micros() + 500) / 1000) as u64)
}

/// How late a server may answer a timed-out `WAIT` (its timer period).
const WAIT_LATENESS: Duration = Duration::from_millis(100);

pub(crate) struct Node {
    pub(crate) endpoint: Endpoint,
    source: Source,
    conn: Option<Conn>,
    /// The connection a request timed out on, kept (until the next
    /// request that is answered) for [`Node::eval_unheard`]: what is sent
    /// on it reaches the server after that request, with no handshake to
    /// wait for.
    timed_out: Option<Conn>,
    /// `--wait-replicas`: how many replicas must acknowledge a write that
    /// [`Node::eval_acked`] sends, and how long to wait for them.
    replicas: (u32, Duration),
    /// Refuse a server older than the oldest supported (every mode but
    /// `doctor`, which reports it): see [`Node::check_server`].
    check_version: bool,
    /// Whether the server takes script flags (`#!lua`): false once it
    /// refused them (Redis 6.2).
    flags: bool,
}

impl Node {
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        let source = Source::new(&endpoint);
        Node {
            endpoint,
            source,
            conn: None,
            timed_out: None,
            replicas: (0, Duration::ZERO),
            check_version: true,
            flags: true,
        }
    }

    /// Talk to any server, however old (`doctor`, which reports it).
    pub(crate) fn any_version(mut self) -> Self {
        self.check_version = false;
        self
    }

    /// With `--wait-replicas n`: see [`Node::eval_acked`].
    pub(crate) fn waiting_for_replicas(mut self, n: u32, timeout: Duration) -> Self {
        self.replicas = (n, timeout);
        self
    }

    pub(crate) fn name(&self) -> &str {
        &self.endpoint.display
    }

    /// Where this node's connections come from (for the wake-up tasks).
    pub(crate) fn source(&self) -> &Source {
        &self.source
    }

    fn classify(&self, e: RedisError) -> NodeError {
        let name = self.endpoint.display.clone();
        let msg = e.to_string();
        let code = e.code().unwrap_or_default();
        if let Some(why) = transient(code) {
            return NodeError::Refused {
                name,
                code: code.to_string(),
                why,
                detail: e.detail().unwrap_or_default().to_string(),
            };
        }
        match e.kind() {
            redis::ErrorKind::AuthenticationFailed => NodeError::Auth(name, msg),
            redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) => NodeError::Auth(name, msg),
            _ if matches!(code, "NOAUTH" | "WRONGPASS") => NodeError::Auth(name, msg),
            // Also Redis's `Protocol error: unauthenticated multibulk
            // length` (a long request before AUTH), and a pipeline's NOAUTH.
            _ if crate::exit::AuthRefusal::find(&msg).is_some() => NodeError::Auth(name, msg),
            _ if e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_timeout()
                || e.is_unrecoverable_error() =>
            {
                NodeError::Io(name, msg)
            }
            _ => NodeError::Server(name, msg),
        }
    }

    async fn connection(&mut self, timeout: Duration) -> Result<Conn, NodeError> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let this = &*self;
        let connect = async move {
            this.source
                .connect(timeout)
                .await
                .map_err(|e| this.connect_error(e))
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(c)) => {
                self.conn = Some(c.clone());
                Ok(c)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                self.source.forget();
                Err(NodeError::Timeout(self.endpoint.display.clone(), timeout))
            }
        }
    }

    /// Connect and check the server (see [`Node::check_server`]) before
    /// any request, for a write that cannot be undone (`release
    /// --force`): [`Node::request`] sends the check with the first
    /// request, which a too-old server has then already run.
    pub(crate) async fn check_first(&mut self, timeout: Duration) -> Result<(), NodeError> {
        if self.conn.is_some() || !self.check_version {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut conn = self.connection(timeout).await?;
        match tokio::time::timeout_at(deadline, self.check_server(&mut conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(refused)) => {
                self.conn = None;
                Err(refused)
            }
            Err(_) => {
                self.conn = None;
                self.source.forget();
                Err(NodeError::Timeout(self.endpoint.display.clone(), timeout))
            }
        }
    }

    fn connect_error(&self, e: RedisError) -> NodeError {
        let err = self.classify(e);
        // Sentinel could not name a primary (yet): an outage, not a
        // refusal of our request.
        match err {
            NodeError::Server(name, msg) if self.source.is_sentinel() => NodeError::Io(name, msg),
            err => err,
        }
    }

    /// Refuse a server older than the oldest supported (Redis 6.2, Valkey
    /// 7.2): a permanent refusal (exit 69) that names the version.
    /// `HELLO` without arguments, which exists from Redis 6.2 on, names
    /// the server; when it fails (an older server, or HELLO renamed away)
    /// `INFO server` does. A server that lets us ask neither is let
    /// through. [`Node::request`] sends HELLO with the first request on
    /// each new connection, in the same round trip.
    async fn check_server(&self, conn: &mut Conn) -> Result<(), NodeError> {
        let lost = |e: &RedisError| {
            e.is_io_error()
                || e.is_connection_dropped()
                || e.is_timeout()
                || e.is_unrecoverable_error()
        };
        let denied = |e: &RedisError| {
            matches!(
                e.kind(),
                redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
            ) || e.code() == Some("NOPERM")
        };
        let found = match conn.hello().await {
            Ok(reply) => server::from_hello(&reply),
            Err(e) if lost(&e) => return Err(self.classify(e)),
            Err(e) if denied(&e) => None,
            // No password (NOAUTH) or a refused one: nothing can be
            // checked, and the request's own answer says so (asking INFO
            // now would find the connection closed by the server).
            Err(e) if crate::exit::AuthRefusal::find(&e.to_string()).is_some() => None,
            Err(_) => match conn.info_server().await {
                Ok(text) => Server::from_info(&server::parse_info(&text)),
                Err(e) if lost(&e) => return Err(self.classify(e)),
                Err(_) => None,
            },
        };
        match found.and_then(|s| s.refusal()) {
            Some(why) => Err(NodeError::Server(self.name().to_string(), why)),
            None => Ok(()),
        }
    }

    /// `--wait-replicas`: after a write that landed, `WAIT` (at most
    /// `timeout`) until `n` replicas acknowledged it; fewer is an error
    /// (a refusal for now: the write is not safe against a failover).
    /// Sent on the connection that carried the write, as WAIT requires;
    /// a connection lost meanwhile is an error, never a reconnect.
    async fn ack(&mut self, key: &str, n: u32, timeout: Duration) -> Result<(), NodeError> {
        let Some(mut conn) = self.conn.clone() else {
            return Err(NodeError::Io(
                self.name().to_string(),
                "connection lost before WAIT".into(),
            ));
        };
        // The server times WAIT out late by up to its timer period (100 ms
        // at the default hz 10): ask for that much less than our budget.
        let server_timeout = timeout
            .saturating_sub(WAIT_LATENESS)
            .max(Duration::from_millis(10));
        let name = self.name().to_string();
        let refused = |detail: String| NodeError::Refused {
            name: name.clone(),
            code: "WAIT".into(),
            why: "too few replicas acknowledged the write (--wait-replicas)",
            detail,
        };
        let slack = timeout + Duration::from_millis(50);
        match tokio::time::timeout(slack, conn.wait_replicas(key, n, server_timeout)).await {
            Ok(Ok(k)) if k >= n => Ok(()),
            Ok(Ok(k)) => Err(refused(format!("{k} of {n} within {timeout:?}"))),
            Ok(Err(e)) => {
                let err = self.classify(e);
                if err.is_denied() {
                    // Permanent: the grant is undone and nothing runs.
                    return Err(NodeError::Server(
                        name.clone(),
                        "this user may not run WAIT, which --wait-replicas needs: grant it \
                         (ACL SETUSER <user> +wait) or run without --wait-replicas"
                            .into(),
                    ));
                }
                if err.breaks_connection() {
                    self.conn = None;
                }
                Err(err)
            }
            Err(_) => {
                self.conn = None;
                Err(refused(format!("no answer to WAIT within {slack:?}")))
            }
        }
    }

    /// Run a script `call` (EVALSHA, falling back to EVAL after a
    /// NOSCRIPT, as after a restart or failover) within `timeout`,
    /// connecting first if needed.
    /// A server without script flags (Redis 6.2) refuses the first one
    /// sent; from then on, scripts go without.
    pub(crate) async fn eval<T: FromRedisValue>(
        &mut self,
        call: &Call<'_>,
        timeout: Duration,
    ) -> Result<T, NodeError> {
        let start = tokio::time::Instant::now();
        match self.eval_as(call, self.flags, timeout).await {
            Err(NodeError::Server(_, msg)) if self.flags && scripts::refused_flags(&msg) => {
                self.flags = false;
                let left = timeout.saturating_sub(start.elapsed());
                self.eval_as(call, false, left).await
            }
            r => r,
        }
    }

    async fn eval_as<T: FromRedisValue>(
        &mut self,
        call: &Call<'_>,
        flags: bool,
        timeout: Duration,
    ) -> Result<T, NodeError> {
        let mut inv = call.lua.script(flags).prepare_invoke();
        for k in call.keys() {
            inv.key(k);
        }
        for a in call.args() {
            inv.arg(a);
        }
        let inv = &inv;
        self.request(timeout, move |mut c| async move {
            inv.invoke_async::<T>(&mut c).await
        })
        .await
    }

    /// Run a script `call` whose reply may go unheard (the undo of an
    /// attempt, a waiter leaving the queue: sent when a request before it
    /// timed out) as EVAL with the script's whole text. Sent as EVALSHA,
    /// a server that never ran the script answers NOSCRIPT, and once the
    /// client has given up nobody is left to send the text: a grant that
    /// landed late would then stay for its whole --ttl. As EVAL it runs
    /// whenever the server gets to it, heard or not. After a timeout it
    /// goes on the timed-out connection too (see `timed_out`).
    pub(crate) async fn eval_unheard<T: FromRedisValue>(
        &mut self,
        call: &Call<'_>,
        timeout: Duration,
    ) -> Result<T, NodeError> {
        // Without its flags line: every server runs that text (Redis 6.2
        // compiles `#!lua` as Lua), and nothing here needs a flag.
        let cmd = &call.eval_cmd();
        // Also on the connection a request just timed out on, behind that
        // request: on a new one it could run before a late request, or
        // never be sent at all while its handshake (AUTH) goes unanswered.
        let behind = self.timed_out.take().map(|mut c| async move {
            tokio::time::timeout(timeout, cmd.query_async::<T>(&mut c)).await
        });
        let fresh = self.request(timeout, move |mut c| async move {
            cmd.query_async::<T>(&mut c).await
        });
        match behind {
            None => fresh.await,
            Some(behind) => match futures_util::future::join(fresh, behind).await {
                (Err(_), Ok(Ok(v))) => Ok(v),
                (r, _) => r,
            },
        }
    }

    /// [`Node::eval`] a write, and when `landed` says it took effect, wait
    /// for `--wait-replicas` replicas to acknowledge it ([`Node::ack`]):
    /// without enough acknowledgements it fails like an outage, so a grant
    /// is undone and a renewal counts as failed.
    pub(crate) async fn eval_acked<T: FromRedisValue>(
        &mut self,
        call: &Call<'_>,
        timeout: Duration,
        landed: impl Fn(&T) -> bool,
    ) -> Result<T, NodeError> {
        let v = self.eval::<T>(call, timeout).await?;
        let (n, wait) = self.replicas;
        if n > 0 && landed(&v) {
            self.ack(call.first_key(), n, wait).await?;
        }
        Ok(v)
    }

    /// Run a plain command (or pipeline) within `timeout`.
    pub(crate) async fn query<T: FromRedisValue>(
        &mut self,
        pipe: &redis::Pipeline,
        timeout: Duration,
    ) -> Result<T, NodeError> {
        self.request(timeout, move |mut c| async move {
            pipe.query_async::<T>(&mut c).await
        })
        .await
    }

    /// One request within `timeout`. A connection that turns out to have
    /// broken while idle (the server restarted, a proxy dropped it) is
    /// replaced and the request sent once more: every request we make is
    /// idempotent (compare-and-set scripts, a per-acquisition token, reads).
    async fn request<T, F, Fut>(&mut self, timeout: Duration, send: F) -> Result<T, NodeError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut retried = false;
        // Sentinels that do not answer in half the time keep the primary
        // we know (as Sentinels that refuse do): the request gets the rest.
        if self.source.is_sentinel()
            && tokio::time::timeout(timeout / 2, self.source.recheck())
                .await
                .unwrap_or(false)
        {
            self.conn = None;
        }
        loop {
            let reused = self.conn.is_some();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let conn = self.connection(left).await?;
            // The server check goes out with the first request on a new
            // connection (HELLO first on the wire, answered in the same
            // round trip), so it costs no round trip of its own. That
            // request has run by the time the answer says the server is
            // too old: its result is replaced by the refusal, and the
            // callers undo a failed attempt as after any error (a grant
            // is given back; the command never runs). The connection is
            // dropped, so the next request is checked again.
            let check = !reused && self.check_version;
            let this = &*self;
            let send = &send;
            let sent = async move {
                if check {
                    let mut probe = conn.clone();
                    let (verdict, reply) =
                        futures_util::future::join(this.check_server(&mut probe), send(conn)).await;
                    verdict.map(|()| reply)
                } else {
                    Ok(send(conn).await)
                }
            };
            match tokio::time::timeout_at(deadline, sent).await {
                Ok(Err(refused)) => {
                    self.conn = None;
                    return Err(refused);
                }
                Ok(Ok(Ok(v))) => {
                    self.timed_out = None;
                    return Ok(v);
                }
                Ok(Ok(Err(e))) => {
                    let (err, again) = self.failed(e, reused);
                    if again && !retried && tokio::time::Instant::now() < deadline {
                        retried = true;
                        continue;
                    }
                    return Err(err);
                }
                Err(_) => {
                    self.timed_out = self.conn.take();
                    self.source.forget();
                    return Err(NodeError::Timeout(self.endpoint.display.clone(), timeout));
                }
            }
        }
    }

    /// A request on a connection (`reused`: one that had served before)
    /// failed with `e`: forget what the failure showed broken, and say
    /// whether sending the request once more may help.
    fn failed(&mut self, e: redis::RedisError, reused: bool) -> (NodeError, bool) {
        let err = self.classify(e);
        if err.breaks_connection() {
            self.conn = None;
        }
        // Under Sentinel, a replica's answer or a lost connection may mean
        // a failover: ask the Sentinels again, and send the request once
        // more to the primary they name now.
        let failover = self.source.is_sentinel() && err.may_mean_failover();
        if failover {
            self.conn = None;
            self.source.forget();
        }
        // A connection that broke while idle (the server restarted, a
        // proxy dropped it) is replaced.
        let broken_idle = reused && matches!(err, NodeError::Io(..));
        (err, broken_idle || failover)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text [`Node::eval_unheard`] sends is the script EVALSHA names.
    #[test]
    fn the_unheard_text_is_the_script_itself() {
        for lua in super::super::scripts::ALL {
            for flags in [false, true] {
                let hash = redis::Script::new(&lua.source(flags))
                    .get_hash()
                    .to_string();
                assert_eq!(hash, lua.script(flags).get_hash(), "{}", lua.name);
            }
        }
    }

    fn node() -> Node {
        Node::new(Endpoint::parse("redis://127.0.0.1:1").unwrap())
    }

    /// The error redis-rs makes of a server's `-{line}` reply.
    fn reply(line: &str) -> RedisError {
        redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
            .unwrap()
            .extract_error()
            .unwrap_err()
    }

    /// A master that refuses writes for now (out of memory, a failed
    /// save, a replica, a failover, a busy script, still loading) is an
    /// outage, retried until --timeout, not a permanent failure.
    #[test]
    fn transient_refusals_are_retried_like_outages() {
        let codes = [
            "OOM",
            "MISCONF",
            "READONLY",
            "MASTERDOWN",
            "TRYAGAIN",
            "BUSY",
            "LOADING",
            "CLUSTERDOWN",
            "NOREPLICAS",
        ];
        assert_eq!(TRANSIENT.map(|(c, _)| c).to_vec(), codes);
        for (code, why) in TRANSIENT {
            let e = node().classify(reply(&format!("{code} refused for now")));
            assert!(
                e.is_unreachable() && !matches!(e, NodeError::Server(..) | NodeError::Auth(..)),
                "{code}: {e:?}"
            );
            assert!(!e.breaks_connection(), "{code}: {e:?}");
            assert_eq!(
                e.to_string(),
                format!("redis://127.0.0.1:1: {code} ({why}): refused for now")
            );
        }
        for code in ["ERR", "WRONGTYPE", "NOSCRIPT"] {
            let e = node().classify(reply(&format!("{code} no")));
            assert!(matches!(e, NodeError::Server(..)), "{code}: {e:?}");
        }
        let e = node().classify(reply("WRONGPASS invalid username-password pair"));
        assert!(matches!(e, NodeError::Auth(..)), "{e:?}");
        let e = node().classify(reply(
            "ERR Protocol error: unauthenticated multibulk length",
        ));
        assert!(matches!(e, NodeError::Auth(..)), "{e:?}");
    }
}
