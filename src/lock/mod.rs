//! Acquire, renew and release one named lock on one Redis master or on a
//! Redlock quorum of independent masters, behind one type: with a single
//! master the quorum is simply 1 of 1. Algorithm:
//! <https://redis.io/docs/latest/develop/use/patterns/distributed-locks/>.
//!
//! Every step is one atomic Lua script per master, every request has a
//! deadline, and lease validity is measured on CLOCK_BOOTTIME from just
//! before the request was sent, less the allowance for clock drift.

mod keeper;
mod masters;
mod node;
mod scripts;
mod status;
mod wait;

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::clock::BootInstant;
use crate::config::{Endpoint, Lease};
pub use keeper::{Keeper, LeaseState};
pub use node::{Node, NodeError};
pub use status::{MasterState, Status, format_ttl};
pub use wait::{WaitOutcome, Waker};

/// The Redis names that belong to one lock. The auxiliary keys carry the
/// lock key as a `{hash tag}`, so they live in the lock key's cluster slot.
#[derive(Debug, Clone)]
pub struct Keys {
    pub lock: String,
    pub fence: String,
    /// schedule: the last tick (ms since the epoch) that ran.
    pub tick: String,
    /// The waiters' queue (sorted set of tokens by arrival).
    pub waiters: String,
    /// A waiter is woken on this prefix followed by its token.
    pub wake_prefix: String,
    pub holder: String,
    pub channel: String,
}

impl Keys {
    pub fn new(key: &str) -> Self {
        Keys {
            lock: key.to_string(),
            fence: format!("{{{key}}}:redlock-run:fence"),
            tick: format!("{{{key}}}:redlock-run:tick"),
            waiters: format!("{{{key}}}:redlock-run:waiters"),
            wake_prefix: format!("{{{key}}}:redlock-run:wake:"),
            holder: format!("{{{key}}}:redlock-run:holder"),
            channel: format!("{{{key}}}:redlock-run:released"),
        }
    }
}

/// A lock we hold.
#[derive(Debug, Clone)]
pub struct Grant {
    pub token: String,
    pub fencing: u64,
    pub acquired_at: BootInstant,
    /// Until when the lease is certainly ours (drift already subtracted).
    pub valid_until: BootInstant,
}

/// Who holds a lock we could not take.
#[derive(Debug, Clone, Default)]
pub struct Holder {
    /// The holder's description, when the holder is a redlock-run.
    pub info: Option<serde_json::Value>,
    /// The value stored at the key.
    pub token: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.info {
            Some(i) => write!(
                f,
                "{} pid {} ({})",
                i["host"].as_str().unwrap_or("?"),
                i["pid"],
                i["command"].as_str().unwrap_or("?")
            ),
            None if self.token.is_empty() => write!(f, "another client"),
            None => write!(f, "another client (value {:?})", truncate(&self.token, 40)),
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// How long an abandoned waiters' queue outlives its last registration.
const QUEUE_TTL_MS: &str = "60000";

/// What an acquisition attempt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One plain attempt.
    Once,
    /// schedule: only if this tick (ms since the epoch) has not run yet.
    Tick(u64),
    /// A waiter's attempt: on failure, (re-)queue with this score (its
    /// arrival time, so the queue is served in order).
    Wait { score: u64 },
}

/// The result of one acquisition attempt.
#[derive(Debug)]
pub enum Attempt {
    Acquired(Grant),
    /// Held by someone else; `pttl` is the shortest remaining lease seen.
    Held {
        pttl: Option<Duration>,
        holder: Holder,
    },
    /// schedule: this tick (or a later one) already ran.
    AlreadyRan {
        last_tick: u64,
    },
    /// Too few masters could be asked for a quorum to be possible.
    /// `permanent`: retrying cannot help (auth refused, or the server
    /// rejects the request, e.g. KEY holds another type).
    Unavailable {
        reason: String,
        permanent: bool,
    },
}

/// The result of one renewal.
#[derive(Debug)]
pub enum Renewal {
    Extended {
        valid_until: BootInstant,
    },
    /// A quorum says our token is gone: the lock is lost for certain.
    Lost(String),
    /// Could not renew this time (timeouts, errors, no quorum either way).
    Failed(String),
}

pub struct Locker {
    nodes: Vec<Node>,
    pub keys: Keys,
    pub lease: Lease,
}

impl Locker {
    pub fn new(endpoints: &[Endpoint], key: &str, lease: Lease) -> Self {
        Locker {
            nodes: endpoints.iter().cloned().map(Node::new).collect(),
            keys: Keys::new(key),
            lease,
        }
    }

    pub fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// Whether enough masters said "not ours" at release that the lock
    /// was certainly not held to the end.
    pub fn lost_by(&self, c: Count) -> bool {
        c.no > self.nodes.len() - self.quorum()
    }

    pub fn is_quorum(&self) -> bool {
        self.nodes.len() > 1
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// How long one master may take to answer within an acquisition: with
    /// one master, as long as sensible; with several, small next to the TTL
    /// so that a dead master does not eat the lease.
    fn node_timeout(&self) -> Duration {
        let io = self.lease.io_timeout();
        if self.is_quorum() {
            (self.lease.ttl / 20).max(Duration::from_millis(50)).min(io)
        } else {
            io
        }
    }

    /// A fresh, unguessable token for one acquisition.
    pub fn new_token() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// One attempt to take the lock with `token` (re-using a token across
    /// the retries of one wait keeps a retry after a lost reply harmless).
    pub async fn try_acquire(&mut self, token: &str, holder_json: &str) -> Attempt {
        self.try_acquire_as(token, holder_json, Mode::Once).await
    }

    /// One attempt in `mode` (see [`Mode`]).
    pub async fn try_acquire_as(&mut self, token: &str, holder_json: &str, mode: Mode) -> Attempt {
        let n = self.nodes.len();
        let quorum = self.quorum();
        let timeout = self.node_timeout();
        let ttl_ms = self.lease.ttl.as_millis().to_string();
        let (mode_name, aux, mode_arg) = match mode {
            Mode::Once => ("once", &self.keys.tick, String::new()),
            Mode::Tick(t) => ("tick", &self.keys.tick, t.to_string()),
            Mode::Wait { score } => ("wait", &self.keys.waiters, score.to_string()),
        };
        let keys = [
            self.keys.lock.as_str(),
            self.keys.fence.as_str(),
            self.keys.holder.as_str(),
            aux.as_str(),
        ];
        let args = [
            token,
            ttl_ms.as_str(),
            holder_json,
            mode_name,
            mode_arg.as_str(),
            QUEUE_TTL_MS,
        ];
        let start = BootInstant::now();

        let mut tally = Tally::default();
        {
            let mut pending: FuturesUnordered<_> = self
                .nodes
                .iter_mut()
                .map(|node| {
                    node.eval::<(i64, i64, String, String)>(
                        &scripts::ACQUIRE,
                        &keys,
                        &args,
                        timeout,
                    )
                })
                .collect();
            // Decide as soon as the outcome is certain...
            while let Some(r) = pending.next().await {
                tally.record(r);
                if tally.granted.len() >= quorum
                    || tally.held.len() + tally.claimed.len() > n - quorum
                {
                    break;
                }
            }
            // ...but once it is ours, let the other masters' replies land
            // too (briefly): a lock left on a bare quorum would be lost
            // with any one of its masters.
            if tally.granted.len() >= quorum && !pending.is_empty() {
                let grace = straggler_grace(start.elapsed(), timeout);
                let _ = tokio::time::timeout(grace, async {
                    while let Some(r) = pending.next().await {
                        tally.record(r);
                    }
                })
                .await;
            }
        }
        let Tally {
            granted,
            claimed,
            held,
            errors,
        } = tally;

        if granted.len() >= quorum {
            let mut fencing = granted.iter().copied().max().unwrap_or(0);
            if self.is_quorum() {
                match self.raise_fence(fencing, start).await {
                    Ok(f) => fencing = f,
                    Err(reason) => {
                        self.undo(token).await;
                        return Attempt::Unavailable {
                            reason,
                            permanent: false,
                        };
                    }
                }
            }
            let valid_until = (start + self.lease.ttl).saturating_sub(self.lease.drift());
            if valid_until <= BootInstant::now() {
                self.undo(token).await;
                return Attempt::Unavailable {
                    reason: format!(
                        "acquiring took {:?}, longer than the lease allows",
                        start.elapsed()
                    ),
                    permanent: false,
                };
            }
            return Attempt::Acquired(Grant {
                token: token.to_string(),
                fencing,
                acquired_at: start,
                valid_until,
            });
        }

        // No quorum: undo everywhere the SET may have landed.
        if !granted.is_empty() || !errors.is_empty() {
            self.undo(token).await;
        }
        if let Some(&last_tick) = claimed.iter().max() {
            return Attempt::AlreadyRan { last_tick };
        }
        let reachable = n - errors.iter().filter(|e| e.is_unreachable()).count();
        if held.is_empty() || reachable < quorum {
            let permanent = errors
                .iter()
                .any(|e| matches!(e, NodeError::Auth(..) | NodeError::Server(..)));
            let reason = if errors.is_empty() {
                "no quorum".to_string()
            } else {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            return Attempt::Unavailable { reason, permanent };
        }
        let pttl = held
            .iter()
            .filter(|(p, _)| *p > 0)
            .map(|(p, _)| Duration::from_millis(*p as u64))
            .min();
        let holder = held
            .iter()
            .find(|(_, h)| h.info.is_some())
            .or(held.first())
            .map(|(_, h)| h.clone())
            .unwrap_or_default();
        Attempt::Held { pttl, holder }
    }

    /// Quorum fencing: raise the counter to at least `t` on a quorum (a
    /// max-register write), so any later quorum sees a value >= t.
    async fn raise_fence(&mut self, t: u64, start: BootInstant) -> Result<u64, String> {
        let quorum = self.quorum();
        let budget =
            (self.lease.ttl.saturating_sub(self.lease.drift())).saturating_sub(start.elapsed());
        let timeout = self.node_timeout().min(budget);
        let fence_key = [self.keys.fence.as_str()];
        let t_arg = t.to_string();
        let args = [t_arg.as_str()];
        let started = BootInstant::now();
        let mut acks = 0;
        let mut pending: FuturesUnordered<_> = self
            .nodes
            .iter_mut()
            .map(|node| node.eval::<i64>(&scripts::FENCE_RAISE, &fence_key, &args, timeout))
            .collect();
        while let Some(r) = pending.next().await {
            if r.is_ok() {
                acks += 1;
                if acks >= quorum {
                    let grace = straggler_grace(started.elapsed(), timeout);
                    let _ = tokio::time::timeout(grace, async {
                        while pending.next().await.is_some() {}
                    })
                    .await;
                    // Only `t` is known to be on a quorum; a higher value
                    // some master reports (pushed up by others' failed
                    // attempts) may exist on that master alone, and the
                    // next holder's quorum could then issue a lower token.
                    return Ok(t);
                }
            }
        }
        Err(format!(
            "fencing counter reached only {acks} of {quorum} masters"
        ))
    }

    /// Best-effort compare-and-delete on every master, after a failed or
    /// abandoned attempt.
    pub async fn undo(&mut self, token: &str) {
        let timeout = self.node_timeout().min(Duration::from_millis(500));
        let keys = [self.keys.lock.as_str(), self.keys.holder.as_str()];
        let args = [token];
        let _ = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.eval::<i64>(&scripts::UNDO, &keys, &args, timeout)),
        )
        .await;
    }

    /// Renew the lease (compare-and-PEXPIRE on every master), each request
    /// bounded by `timeout`.
    pub async fn renew(&mut self, token: &str, timeout: Duration) -> Renewal {
        let n = self.nodes.len();
        let quorum = self.quorum();
        let ttl_ms = self.lease.ttl.as_millis().to_string();
        let keys = [
            self.keys.lock.as_str(),
            self.keys.fence.as_str(),
            self.keys.holder.as_str(),
        ];
        let args = [token, ttl_ms.as_str()];
        let start = BootInstant::now();
        let (yes, deleted, replaced);
        let mut errors = Vec::new();
        {
            let mut pending: FuturesUnordered<_> = self
                .nodes
                .iter_mut()
                .map(|node| node.eval::<i64>(&scripts::EXTEND, &keys, &args, timeout))
                .collect();
            let record =
                |r: Result<i64, NodeError>, c: &mut [usize; 3], e: &mut Vec<String>| match r {
                    Ok(1) => c[0] += 1,
                    Ok(0) => c[1] += 1,
                    Ok(_) => c[2] += 1,
                    Err(err) => e.push(err.to_string()),
                };
            let mut c = [0usize; 3];
            while let Some(r) = pending.next().await {
                record(r, &mut c, &mut errors);
                if c[0] >= quorum || c[1] + c[2] > n - quorum {
                    break;
                }
            }
            // Renewed: let the other masters' renewals land too (briefly),
            // so the lease does not shrink to a bare quorum.
            if c[0] >= quorum && !pending.is_empty() {
                let grace = straggler_grace(start.elapsed(), timeout);
                let _ = tokio::time::timeout(grace, async {
                    while let Some(r) = pending.next().await {
                        record(r, &mut c, &mut errors);
                    }
                })
                .await;
            }
            (yes, deleted, replaced) = (c[0], c[1], c[2]);
        }
        if deleted + replaced > n - quorum {
            let why = if replaced > 0 {
                "the key now holds another holder's value"
            } else {
                "the key was deleted or expired"
            };
            return Renewal::Lost(if self.is_quorum() {
                format!("{why} on {} of {n} masters", deleted + replaced)
            } else {
                why.to_string()
            });
        }
        let valid_until = (start + self.lease.ttl).saturating_sub(self.lease.drift());
        if yes >= quorum && valid_until > BootInstant::now() {
            return Renewal::Extended { valid_until };
        }
        if errors.is_empty() {
            Renewal::Failed(format!("renewed on {yes} of {quorum} masters needed"))
        } else {
            Renewal::Failed(errors.join("; "))
        }
    }

    /// Compare-and-delete on every master, waking waiters. Returns how many
    /// masters released it.
    pub async fn release(&mut self, token: &str) -> Result<Count, String> {
        let timeout = self.lease.io_timeout().min(Duration::from_secs(2));
        self.release_within(token, timeout).await
    }

    async fn release_within(&mut self, token: &str, timeout: Duration) -> Result<Count, String> {
        self.on_all(&scripts::RELEASE, token, timeout).await
    }

    /// A waiter giving up: leave the queue on every master, undo an attempt
    /// that may have landed, and pass on a wake-up it may have swallowed.
    pub async fn leave(&mut self, token: &str) {
        let timeout = self.node_timeout().min(Duration::from_millis(500));
        let _ = self.on_all(&scripts::LEAVE, token, timeout).await;
    }

    /// Run a (lock, holder, waiters; token, channel, wake prefix) script on
    /// every master.
    async fn on_all(
        &mut self,
        script: &redis::Script,
        token: &str,
        timeout: Duration,
    ) -> Result<Count, String> {
        let keys = [
            self.keys.lock.as_str(),
            self.keys.holder.as_str(),
            self.keys.waiters.as_str(),
        ];
        let args = [
            token,
            self.keys.channel.as_str(),
            self.keys.wake_prefix.as_str(),
        ];
        let results = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.eval::<i64>(script, &keys, &args, timeout)),
        )
        .await;
        collect_count(results)
    }

    /// `--min-hold`: keep the lock for `remaining` more (token-checked),
    /// instead of deleting it.
    pub async fn hold_for(&mut self, token: &str, remaining: Duration) -> Result<Count, String> {
        let timeout = self.lease.io_timeout().min(Duration::from_secs(2));
        let ms = remaining.as_millis().max(1).to_string();
        let keys = [
            self.keys.lock.as_str(),
            self.keys.fence.as_str(),
            self.keys.holder.as_str(),
        ];
        let args = [token, ms.as_str()];
        let results = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.eval::<i64>(&scripts::EXTEND, &keys, &args, timeout)),
        )
        .await;
        collect_count(results)
    }

    /// Delete the lock whoever holds it, on every master.
    pub async fn force_release(&mut self) -> Result<Count, String> {
        let timeout = self.lease.io_timeout();
        let keys = [self.keys.lock.as_str(), self.keys.holder.as_str()];
        let args = [self.keys.channel.as_str()];
        let results = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.eval::<i64>(&scripts::FORCE_RELEASE, &keys, &args, timeout)),
        )
        .await;
        collect_count(results)
    }
}

/// Per-master outcomes of one acquisition attempt.
#[derive(Default)]
struct Tally {
    granted: Vec<u64>,
    claimed: Vec<u64>,
    held: Vec<(i64, Holder)>,
    errors: Vec<NodeError>,
}

impl Tally {
    fn record(&mut self, r: Result<(i64, i64, String, String), NodeError>) {
        match r {
            Ok((1, fence, _, _)) => self.granted.push(fence.max(0) as u64),
            Ok((2, last, _, _)) => self.claimed.push(last.max(0) as u64),
            Ok((_, pttl, token, info)) => self.held.push((
                pttl,
                Holder {
                    info: serde_json::from_str::<serde_json::Value>(&info)
                        .ok()
                        .filter(|v| v["token"].as_str() == Some(token.as_str())),
                    token,
                },
            )),
            Err(e) => self.errors.push(e),
        }
    }
}

/// How long to wait for the remaining masters once a quorum answered:
/// a few times what the quorum took (healthy masters answer alike), at
/// least 10 ms, never past the per-master timeout.
fn straggler_grace(quorum_took: Duration, per_master: Duration) -> Duration {
    (quorum_took * 3)
        .max(Duration::from_millis(10))
        .min(per_master)
}

/// Count successes (1s); an error only if no master could be asked at all.
fn collect_count(results: Vec<Result<i64, NodeError>>) -> Result<Count, String> {
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    let answers: Vec<i64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    if answers.is_empty() {
        return Err(errors.join("; "));
    }
    if !errors.is_empty() {
        tracing::warn!(errors = %errors.join("; "), "some masters did not answer");
    }
    Ok(Count {
        yes: answers.iter().filter(|&&v| v > 0).count(),
        no: answers.iter().filter(|&&v| v <= 0).count(),
    })
}

/// How many masters answered yes (released, extended, deleted) and no
/// (not ours, not there); masters that did not answer are in neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub yes: usize,
    pub no: usize,
}
