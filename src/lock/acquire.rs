//! Taking the lock: one attempt on every master in parallel (decided as
//! soon as the outcome is certain), the quorum fencing write-back, and the
//! undo of a failed attempt.

use std::time::Duration;

use tokio::time::Instant;

use super::fanout::{self, Verdict, Votes};
use super::node::NodeError;
use super::{Attempt, Grant, Holder, HolderInfo, Locker, Mode, scripts};
use crate::clock::BootInstant;

/// How long the undo of a failed attempt may wait for a master: it only
/// needs to be sent (the lease frees the key anyway).
pub(super) const UNDO_TIMEOUT: Duration = Duration::from_millis(500);

/// Of an attempt that must be over by a given time, the part kept for its
/// undo (and a waiter's leaving the queue).
pub(super) const UNDO_SHARE: Duration = Duration::from_millis(150);

/// How long the look at a node in a slot migration may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The least a request is given, however close its end: a request with
/// no time at all could not even be sent.
pub(super) const MIN_REQUEST: Duration = Duration::from_millis(10);

impl Locker {
    /// One attempt in `mode` (see [`Mode`]) to take the lock with `token`,
    /// which must be fresh for every attempt: a delayed undo of an earlier
    /// attempt must never be able to match a later, successful one.
    pub async fn try_acquire_as(
        &mut self,
        token: &str,
        holder_json: &str,
        mode: Mode<'_>,
    ) -> Attempt {
        self.try_acquire_until(token, holder_json, mode, None).await
    }

    /// [`try_acquire_as`](Self::try_acquire_as), over by `end` at the
    /// latest, its undo included (a waiter's last attempt before its
    /// --timeout): the requests get until [`UNDO_SHARE`] before `end`,
    /// the undo of a failed attempt what is left.
    pub async fn try_acquire_until(
        &mut self,
        token: &str,
        holder_json: &str,
        mode: Mode<'_>,
        end: Option<Instant>,
    ) -> Attempt {
        let n = self.nodes.len();
        let quorum = self.quorum();
        let timeout = match end {
            Some(end) => self.node_timeout().min(
                end.saturating_duration_since(Instant::now())
                    .saturating_sub(UNDO_SHARE)
                    .max(MIN_REQUEST),
            ),
            None => self.node_timeout(),
        };
        let undo_timeout = |now: Instant| match end {
            Some(end) => UNDO_TIMEOUT.min(end.saturating_duration_since(now).max(MIN_REQUEST)),
            None => UNDO_TIMEOUT,
        };
        let call = scripts::acquire(
            &self.keys,
            &scripts::Acquire {
                token,
                ttl: self.lease.ttl,
                holder_json,
                mode,
                // With one master the grant is final; in quorum mode the
                // claim is pending until the second round confirms it on a
                // quorum.
                quorum: self.is_quorum(),
                limit: self.lease.limit,
            },
        );
        let call = &call;
        // A waiter's attempt that is undone goes back in the queue.
        let waiter = match mode {
            Mode::Wait { score, waiter } => Some((score, waiter)),
            _ => None,
        };
        let all = vec![true; n];
        let start = BootInstant::now();

        let mut tally = Tally::new(n, quorum);
        let requests = self
            .nodes
            .iter_mut()
            .enumerate()
            .map(|(i, node)| async move {
                // --wait-replicas: a grant counts once replicated.
                let r = node
                    .eval_acked::<(i64, i64, String, String)>(call, timeout, |r| r.0 == 1)
                    .await;
                (i, r)
            });
        fanout::gather(requests, &mut tally, timeout).await;
        let Tally {
            granted,
            claimed,
            ahead,
            mismatch,
            mut held,
            mut errors,
            notices,
            refused,
            moving,
            ..
        } = tally;

        // A `--limit` mismatch on any master refuses the attempt, however
        // many granted: the key is in use with another N there, and
        // holders of both kinds must never run side by side. Undone on
        // every master (grants were made), before grants are counted.
        if let Some(&stored) = mismatch.iter().max() {
            self.undo_on(token, &all, waiter, undo_timeout(Instant::now()))
                .await;
            return Attempt::Mismatch { stored };
        }
        if granted.len() >= quorum {
            report_notices(&self.keys.lock, &notices);
            let mut fencing = granted.iter().copied().max().unwrap_or(0);
            if self.is_quorum() {
                match self.commit(fencing, token, start, timeout).await {
                    Ok(f) => fencing = f,
                    Err(reason) => {
                        self.undo_on(token, &all, waiter, undo_timeout(Instant::now()))
                            .await;
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
                self.undo_on(token, &all, waiter, undo_timeout(Instant::now()))
                    .await;
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
            self.undo_on(token, &targets, waiter, undo_timeout(Instant::now()))
                .await;
        }
        if let Some(&last_tick) = claimed.iter().max() {
            return Attempt::AlreadyRan { last_tick };
        }
        if let Some(&skew_ms) = ahead.iter().min() {
            return Attempt::ClockAhead { skew_ms };
        }
        // A node in a slot migration ran nothing (TRYAGAIN); whether the
        // lock is held there is still plain to see with one-key reads.
        for (i, e) in moving {
            match self.probe(i, timeout.min(PROBE_TIMEOUT)).await {
                Some(h) => held.push(h),
                None => errors.push(e),
            }
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
            .filter(|(p, _, _)| *p > 0)
            .map(|(p, _, _)| Duration::from_millis(*p as u64))
            .min();
        // The attempt for the same tick first (schedule compares tokens
        // with it to settle a split vote), then one that describes itself.
        let holder = held
            .iter()
            .find(|(_, _, same)| *same)
            .or_else(|| held.iter().find(|(_, h, _)| h.info.is_some()))
            .or(held.first())
            .map(|(_, h, _)| h.clone())
            .unwrap_or_default();
        let same_tick = held.iter().any(|(_, _, same)| *same);
        Attempt::Held {
            pttl,
            holder,
            same_tick,
        }
    }

    /// The lock on node `i` as one-key reads show it (`PTTL` and `GET`, or
    /// the live holders of a `--limit` lock; the holder's description if it can be
    /// read), for an attempt the node answered with TRYAGAIN: during a
    /// Cluster slot migration (the ASK window) a script that names keys
    /// not all on the node is refused, but a key that is there is served.
    /// Held (as the attempt's `held` entries are) or None: free, or not
    /// known.
    async fn probe(&mut self, i: usize, timeout: Duration) -> Option<(i64, Holder, bool)> {
        let shared = self.lease.limit > 1;
        let limit = u64::from(self.lease.limit);
        let lock = self.keys.lock.clone();
        let description = self.keys.holder.clone();
        let node = &mut self.nodes[i];
        let mut pipe = redis::pipe();
        pipe.cmd("PTTL").arg(&lock);
        if shared {
            pipe.cmd("ZRANGE")
                .arg(&lock)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES");
            let (pttl, ends) = node
                .query::<(i64, Vec<(String, f64)>)>(&pipe, timeout)
                .await
                .ok()?;
            // Only the holders whose lease has not ended count (a holder
            // that died stays in the set until the next grant prunes it).
            // Redis's clock, at the latest: every grant and renewal keeps
            // the set at least until its lease end, so the latest end less
            // the set's PTTL is now or earlier.
            let latest = ends.iter().map(|(_, end)| *end).fold(f64::MIN, f64::max);
            let count = match pttl {
                0.. => ends
                    .iter()
                    .filter(|(_, end)| *end > latest - pttl as f64)
                    .count(),
                _ => ends.len(),
            };
            return (count as u64 >= limit && pttl != -2).then(|| (pttl, Holder::default(), false));
        }
        pipe.cmd("GET").arg(&lock);
        let (pttl, token) = node
            .query::<(i64, Option<String>)>(&pipe, timeout)
            .await
            .ok()?;
        let token = token?;
        let mut read = redis::pipe();
        read.cmd("GET").arg(&description);
        let info = match node.query::<(Option<String>,)>(&read, timeout).await {
            Ok((Some(json),)) => HolderInfo::parse_for(&json, &token),
            _ => None,
        };
        Some((pttl, Holder { info, token }, false))
    }

    /// The second round of a quorum acquisition. Quorum fencing: raise the
    /// counter to at least `t` on a quorum (a max-register write), so any
    /// later quorum sees a value >= t; and commit this attempt's tick
    /// claim (schedule), so it outlives the attempt only once a quorum
    /// confirmed it.
    async fn commit(
        &mut self,
        t: u64,
        token: &str,
        start: BootInstant,
        timeout: Duration,
    ) -> Result<u64, String> {
        let quorum = self.quorum();
        let budget =
            (self.lease.ttl.saturating_sub(self.lease.drift())).saturating_sub(start.elapsed());
        let timeout = timeout.min(budget);
        let call = scripts::commit(&self.keys, t, token);
        let call = &call;
        let mut acks = Acks {
            n: self.nodes.len(),
            quorum,
            yes: 0,
            failed: 0,
        };
        let requests = self
            .nodes
            .iter_mut()
            .enumerate()
            .map(|(i, node)| async move { (i, node.eval::<i64>(call, timeout).await) });
        fanout::gather(requests, &mut acks, timeout).await;
        if acks.verdict() == Verdict::Won {
            // Only `t` is known to be on a quorum; a higher value some
            // master reports (pushed up by others' failed attempts) may
            // exist on that master alone, and the next holder's quorum
            // could then issue a lower token.
            Ok(t)
        } else {
            Err(format!(
                "fencing counter reached only {} of {quorum} masters",
                acks.yes
            ))
        }
    }

    /// Best-effort compare-and-delete on every master, after a failed or
    /// abandoned attempt that was not a waiter's.
    pub async fn undo(&mut self, token: &str) {
        let all = vec![true; self.nodes.len()];
        self.undo_on(token, &all, None, UNDO_TIMEOUT).await;
    }

    /// [`undo`](Self::undo) of a waiter's attempt (`waiter`: its queue
    /// score and id), as a failed attempt gets it; for the model-based
    /// test of the protocol.
    #[doc(hidden)]
    pub async fn undo_attempt(&mut self, token: &str, waiter: Option<(u64, &str)>) {
        let all = vec![true; self.nodes.len()];
        self.undo_on(token, &all, waiter, UNDO_TIMEOUT).await;
    }

    /// Quiet compare-and-delete of `token` (waking nobody) on the masters
    /// marked in `targets`. With `--limit`, a waiter's attempt (`waiter`:
    /// its queue score and id) puts the waiter back in the queue it left
    /// if the attempt landed, and with no holder and no waiter left the
    /// stored N goes, as if the attempt had never been made. Each master
    /// gets at most `timeout` (and never more than an attempt would).
    async fn undo_on(
        &mut self,
        token: &str,
        targets: &[bool],
        waiter: Option<(u64, &str)>,
        timeout: Duration,
    ) {
        let timeout = self.node_timeout().min(timeout);
        let call = scripts::undo(&self.keys, self.lease.limit, token, waiter);
        let _ = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .zip(targets)
                .filter(|(_, t)| **t)
                .map(|(node, _)| node.eval_unheard::<i64>(&call, timeout)),
        )
        .await;
    }
}

/// Per-master outcomes of one acquisition attempt.
struct Tally {
    n: usize,
    quorum: usize,
    /// Masters that answered a definite "not granted": the only ones an
    /// undo can skip (a request still in flight may yet land).
    refused: Vec<bool>,
    granted: Vec<u64>,
    claimed: Vec<u64>,
    /// This host's clock minus Redis's (ms), where it was too far ahead.
    ahead: Vec<i64>,
    /// The `--limit` stored where it differs from ours.
    mismatch: Vec<u64>,
    /// pttl, holder, and whether it holds a claim of the same tick.
    held: Vec<(i64, Holder, bool)>,
    errors: Vec<NodeError>,
    /// Evidence of lost data a granting master reported.
    notices: Vec<String>,
    /// Masters that answered TRYAGAIN (a Cluster slot migration), and
    /// the error: they ran nothing, and are looked at with one-key reads.
    moving: Vec<(usize, NodeError)>,
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
    fn new(n: usize, quorum: usize) -> Self {
        Tally {
            n,
            quorum,
            refused: vec![false; n],
            granted: Vec::new(),
            claimed: Vec::new(),
            ahead: Vec::new(),
            mismatch: Vec::new(),
            held: Vec::new(),
            errors: Vec::new(),
            notices: Vec::new(),
            moving: Vec::new(),
        }
    }

    fn reply(&mut self, r: Result<(i64, i64, String, String), NodeError>) -> Reply {
        match r {
            Ok((1, fence, notices, _)) => {
                self.granted.push(fence.max(0) as u64);
                self.notices.extend(
                    notices
                        .split(';')
                        .filter(|n| !n.is_empty())
                        .map(String::from),
                );
                return Reply::Granted;
            }
            Ok((2, last, _, _)) => self.claimed.push(last.max(0) as u64),
            Ok((3, skew_ms, _, _)) => self.ahead.push(skew_ms),
            Ok((5, stored, _, _)) => self.mismatch.push(stored.max(0) as u64),
            Ok((code, pttl, token, info)) => self.held.push((
                pttl,
                Holder {
                    info: HolderInfo::parse_for(&info, &token),
                    token,
                },
                code == 4,
            )),
            Err(e) => {
                self.errors.push(e);
                return Reply::Failed;
            }
        }
        Reply::Refused
    }
}

impl Votes<Result<(i64, i64, String, String), NodeError>> for Tally {
    fn record(&mut self, i: usize, r: Result<(i64, i64, String, String), NodeError>) {
        if let Err(e) = &r {
            if e.is_slot_moving() {
                self.moving.push((i, e.clone()));
                // Refused before the script ran: nothing to undo.
                self.refused[i] = true;
                return;
            }
        }
        self.refused[i] = self.reply(r) == Reply::Refused;
    }

    fn verdict(&self) -> Verdict {
        if !self.mismatch.is_empty() {
            // Refused outright (see `try_acquire_as`).
            Verdict::Lost
        } else if self.granted.len() >= self.quorum {
            Verdict::Won
        } else if self.held.len() + self.claimed.len() + self.ahead.len() > self.n - self.quorum {
            Verdict::Lost
        } else {
            Verdict::Open
        }
    }
}

/// Replies to the quorum's second round.
struct Acks {
    n: usize,
    quorum: usize,
    yes: usize,
    failed: usize,
}

impl Votes<Result<i64, NodeError>> for Acks {
    fn record(&mut self, _: usize, r: Result<i64, NodeError>) {
        match r {
            Ok(_) => self.yes += 1,
            Err(_) => self.failed += 1,
        }
    }

    fn verdict(&self) -> Verdict {
        if self.yes >= self.quorum {
            Verdict::Won
        } else if self.failed > self.n - self.quorum {
            Verdict::Lost
        } else {
            Verdict::Open
        }
    }
}

/// Evidence of lost data seen while acquiring, as one error line that
/// points at `doctor` (the lock was still acquired: the run goes on).
fn report_notices(key: &str, notices: &[String]) {
    let key = crate::display::escape_controls(key);
    for n in notices {
        if let Some(evicted) = n.strip_prefix("evicted:") {
            tracing::error!(
                key = %key,
                evicted_keys = evicted,
                "the fencing counter was missing and this Redis has evicted keys: \
                 the token was taken from the server's clock (it still rises, unless \
                 that clock stepped back); a server that evicts (maxmemory-policy \
                 other than noeviction) can drop the lock itself and schedule's tick \
                 claims; check it with `redlock-run doctor`"
            );
        } else if let Some(ms) = n.strip_prefix("future:") {
            tracing::error!(
                key = %key,
                ahead_ms = ms,
                "ignored a tick claim lying in the future of Redis's clock (set by a \
                 host whose clock was ahead, or Redis's clock went back); check the \
                 clocks with `redlock-run doctor`"
            );
        }
    }
}
