//! Taking the lock: one attempt on every master in parallel (decided as
//! soon as the outcome is certain), the quorum fencing write-back, and the
//! undo of a failed attempt.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::node::NodeError;
use super::{Attempt, Grant, Holder, Locker, Mode, QUEUE_TTL_MS, scripts};
use crate::clock::BootInstant;

impl Locker {
    /// One attempt to take the lock with `token`, which must be fresh for
    /// every attempt: a delayed undo of an earlier attempt must never be
    /// able to match a later, successful one.
    pub async fn try_acquire(&mut self, token: &str, holder_json: &str) -> Attempt {
        self.try_acquire_as(token, holder_json, Mode::Once).await
    }

    /// One attempt in `mode` (see [`Mode`]).
    pub async fn try_acquire_as(
        &mut self,
        token: &str,
        holder_json: &str,
        mode: Mode<'_>,
    ) -> Attempt {
        let n = self.nodes.len();
        let quorum = self.quorum();
        let timeout = self.node_timeout();
        let ttl_ms = self.lease.ttl.as_millis().to_string();
        let (mode_name, aux, mode_arg) = match mode {
            Mode::Once => ("once", &self.keys.tick, String::new()),
            Mode::Tick(t) => ("tick", &self.keys.tick, t.to_string()),
            Mode::Wait { score, .. } => ("wait", &self.keys.waiters, score.to_string()),
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
            match mode {
                Mode::Wait { waiter, .. } => waiter,
                _ => "",
            },
        ];
        let start = BootInstant::now();

        let mut tally = Tally::default();
        // Masters that answered a definite "not granted": the only ones an
        // undo can skip (a request still in flight may yet land).
        let mut refused = vec![false; n];
        {
            let mut pending: FuturesUnordered<_> = self
                .nodes
                .iter_mut()
                .enumerate()
                .map(|(i, node)| async move {
                    // --wait-replicas: a grant counts once replicated.
                    let r = node
                        .eval_acked::<(i64, i64, String, String)>(
                            &scripts::ACQUIRE,
                            &keys,
                            &args,
                            timeout,
                            |r| r.0 == 1,
                        )
                        .await;
                    (i, r)
                })
                .collect();
            // Decide as soon as the outcome is certain...
            while let Some((i, r)) = pending.next().await {
                refused[i] = tally.record(r) == Reply::Refused;
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
                    while let Some((_, r)) = pending.next().await {
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
            // A command is only started with at least the kill grace and
            // the margin left: otherwise it would be stopped at once.
            let valid_until = (start + self.lease.ttl).saturating_sub(self.lease.drift());
            if self.lease.term_at(valid_until) <= BootInstant::now() {
                self.undo(token).await;
                return Attempt::Unavailable {
                    reason: format!(
                        "acquiring took {:?}: too little of the lease is left to start the command",
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

        // No quorum: undo everywhere the SET may have landed, including
        // masters whose reply was never read (dropped above while in
        // flight). The undo goes out on the same multiplexed connection as
        // the attempt, so it is served after it.
        if refused.contains(&false) {
            let targets: Vec<bool> = refused.iter().map(|r| !r).collect();
            self.undo_on(token, &targets).await;
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
        let all = vec![true; self.nodes.len()];
        self.undo_on(token, &all).await;
    }

    /// Quiet compare-and-delete of `token` (waking nobody) on the masters
    /// marked in `targets`.
    async fn undo_on(&mut self, token: &str, targets: &[bool]) {
        let timeout = self.node_timeout().min(Duration::from_millis(500));
        let keys = [self.keys.lock.as_str(), self.keys.holder.as_str()];
        let args = [token];
        let _ = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .zip(targets)
                .filter(|(_, t)| **t)
                .map(|(node, _)| node.eval::<i64>(&scripts::UNDO, &keys, &args, timeout)),
        )
        .await;
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

/// What one master's reply means for the undo of a failed attempt.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Granted,
    /// A definite "not granted" (held, or the tick already ran).
    Refused,
    Failed,
}

impl Tally {
    fn record(&mut self, r: Result<(i64, i64, String, String), NodeError>) -> Reply {
        match r {
            Ok((1, fence, _, _)) => {
                self.granted.push(fence.max(0) as u64);
                return Reply::Granted;
            }
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
            Err(e) => {
                self.errors.push(e);
                return Reply::Failed;
            }
        }
        Reply::Refused
    }
}

/// How long to wait for the remaining masters once a quorum answered:
/// a few times what the quorum took (healthy masters answer alike), at
/// least 10 ms, never past the per-master timeout.
pub(super) fn straggler_grace(quorum_took: Duration, per_master: Duration) -> Duration {
    (quorum_took * 3)
        .max(Duration::from_millis(10))
        .min(per_master)
}
