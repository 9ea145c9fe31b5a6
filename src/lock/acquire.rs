//! Taking the lock: one attempt on every master in parallel (decided as
//! soon as the outcome is certain), the quorum fencing write-back, and the
//! undo of a failed attempt.

use std::time::Duration;

use tokio::time::Instant;

use super::fanout::{self, Verdict, Votes};
use super::node::{Node, NodeError};
use super::{Attempt, Grant, Holder, HolderInfo, Locker, Mode, scripts};
use crate::clock::BootInstant;
use crate::config::Lease;

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
    ///
    /// The I/O of an attempt; what the replies mean is decided by
    /// `Tally::decide`, what is left of a granted lease by
    /// `usable_until`, who holds a refused one by `Refusal::settle`.
    pub(crate) async fn try_acquire_until(
        &mut self,
        token: &str,
        holder_json: &str,
        mode: Mode<'_>,
        end: Option<Instant>,
    ) -> Attempt {
        let timeout = request_timeout(self.node_timeout(), end, Instant::now());
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
        // A waiter's attempt that is undone goes back in the queue.
        let waiter = mode.waiter();
        let start = BootInstant::now();
        let quorum = self.quorum();
        let tally = ask_all(&mut self.nodes, quorum, &call, timeout).await;
        match tally.decide() {
            Decision::Granted { fencing, notices } => {
                report_notices(&self.keys.lock, &notices);
                self.confirm(token, fencing, start, timeout, waiter, end)
                    .await
            }
            Decision::Refused { undo, answer } => {
                // Undone everywhere the SET may have landed, including
                // masters whose reply was never read (dropped while in
                // flight). The undo goes out on the same multiplexed
                // connection as the attempt, so it is served after it.
                if undo.contains(&true) {
                    self.undo_on(token, &undo, waiter, undo_timeout(end, Instant::now()))
                        .await;
                }
                match answer {
                    Answer::Now(attempt) => attempt,
                    Answer::Settle(mut refusal) => {
                        self.look_at_moving(&mut refusal, timeout).await;
                        refusal.settle()
                    }
                }
            }
        }
    }

    /// A quorum granted with `fencing`: in quorum mode the second round
    /// ([`commit`](Self::commit)), then the check that enough of the
    /// lease is left to start the command. Undone on every master if
    /// either fails.
    async fn confirm(
        &mut self,
        token: &str,
        mut fencing: u64,
        start: BootInstant,
        timeout: Duration,
        waiter: Option<(u64, &str)>,
        end: Option<Instant>,
    ) -> Attempt {
        let all = vec![true; self.nodes.len()];
        if self.is_quorum() {
            match self.commit(fencing, token, start, timeout).await {
                Ok(f) => fencing = f,
                Err(reason) => {
                    self.undo_on(token, &all, waiter, undo_timeout(end, Instant::now()))
                        .await;
                    return Attempt::Unavailable {
                        reason,
                        permanent: false,
                    };
                }
            }
        }
        match usable_until(&self.lease, start, BootInstant::now()) {
            Some(valid_until) => Attempt::Acquired(Grant {
                token: token.to_string(),
                fencing,
                acquired_at: start,
                valid_until,
            }),
            None => {
                self.undo_on(token, &all, waiter, undo_timeout(end, Instant::now()))
                    .await;
                Attempt::Unavailable {
                    reason: format!(
                        "acquiring took {:?}: too little of the lease is left to start the command",
                        start.elapsed()
                    ),
                    permanent: false,
                }
            }
        }
    }

    /// A node in a slot migration ran nothing (TRYAGAIN); whether the
    /// lock is held there is still plain to see with one-key reads: each
    /// such master of `refusal` becomes a holder or stays an error.
    async fn look_at_moving(&mut self, refusal: &mut Refusal, timeout: Duration) {
        for (i, e) in std::mem::take(&mut refusal.moving) {
            match self.probe(i, timeout.min(PROBE_TIMEOUT)).await {
                Some(h) => refusal.held.push(h),
                None => refusal.errors.push(e),
            }
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

/// Send the attempt `call` to every master (`nodes`) at once and count
/// the replies until the outcome is certain.
async fn ask_all(
    nodes: &mut [Node],
    quorum: usize,
    call: &scripts::Call<'_>,
    timeout: Duration,
) -> Tally {
    let mut tally = Tally::new(nodes.len(), quorum);
    let requests = nodes.iter_mut().enumerate().map(|(i, node)| async move {
        // --wait-replicas: a grant counts once replicated.
        let r = node
            .eval_acked::<(i64, i64, String, String)>(call, timeout, |r| r.0 == 1)
            .await;
        (i, r)
    });
    fanout::gather(requests, &mut tally, timeout).await;
    tally
}

/// Each master's time to answer an attempt that must be over by `end`
/// (its undo included): `node` (see `Locker::node_timeout`), and never
/// past [`UNDO_SHARE`] before `end`, though at least [`MIN_REQUEST`].
pub(super) fn request_timeout(node: Duration, end: Option<Instant>, now: Instant) -> Duration {
    match end {
        Some(end) => node.min(
            end.saturating_duration_since(now)
                .saturating_sub(UNDO_SHARE)
                .max(MIN_REQUEST),
        ),
        None => node,
    }
}

/// The time an undo (or a waiter's leaving the queue) started at `now`
/// gets, when everything must be over by `end`: [`UNDO_TIMEOUT`], and
/// never past `end`, though at least [`MIN_REQUEST`].
pub(super) fn undo_timeout(end: Option<Instant>, now: Instant) -> Duration {
    match end {
        Some(end) => UNDO_TIMEOUT.min(end.saturating_duration_since(now).max(MIN_REQUEST)),
        None => UNDO_TIMEOUT,
    }
}

/// Until when a lease granted on requests sent at `start` is certainly
/// ours (the TTL less the drift allowance), if at `now` the command could
/// still be started: with at least the kill grace and the margin left
/// (`Lease::term_at` still ahead), or it would be stopped at once.
fn usable_until(lease: &Lease, start: BootInstant, now: BootInstant) -> Option<BootInstant> {
    let valid_until = lease.valid_until(start);
    (lease.term_at(valid_until) > now).then_some(valid_until)
}

impl Mode<'_> {
    /// A waiter's queue score and id (see [`Mode::Wait`]).
    fn waiter(&self) -> Option<(u64, &str)> {
        match *self {
            Mode::Wait { score, waiter } => Some((score, waiter)),
            _ => None,
        }
    }
}

/// What the replies to an attempt call for: the pure step between
/// [`ask_all`] and the rest of the I/O.
#[derive(Debug)]
enum Decision {
    /// A quorum granted: confirm (a quorum's second round) with `fencing`,
    /// the highest token granted, and report `notices`.
    Granted { fencing: u64, notices: Vec<String> },
    /// Not acquired: undo on the masters marked in `undo` (if any), then
    /// answer.
    Refused { undo: Vec<bool>, answer: Answer },
}

#[derive(Debug)]
enum Answer {
    /// The replies settle it.
    Now(Attempt),
    /// Held or unavailable, once the masters in a slot migration have
    /// been looked at (`Refusal::settle`).
    Settle(Refusal),
}

/// The replies of a refused attempt that decide between held and
/// unavailable.
#[derive(Debug)]
struct Refusal {
    n: usize,
    quorum: usize,
    held: Vec<(i64, Holder, bool)>,
    errors: Vec<NodeError>,
    /// Masters in a slot migration, still to be looked at.
    moving: Vec<(usize, NodeError)>,
}

impl Tally {
    /// What the replies so far call for.
    fn decide(self) -> Decision {
        let all = vec![true; self.n];
        // A `--limit` mismatch on any master refuses the attempt, however
        // many granted: the key is in use with another N there, and
        // holders of both kinds must never run side by side. Undone on
        // every master (grants were made), before grants are counted.
        if let Some(&stored) = self.mismatch.iter().max() {
            return Decision::Refused {
                undo: all,
                answer: Answer::Now(Attempt::Mismatch { stored }),
            };
        }
        if self.granted.len() >= self.quorum {
            return Decision::Granted {
                fencing: self.granted.iter().copied().max().unwrap_or(0),
                notices: self.notices,
            };
        }
        // Undone wherever the SET may have landed: every master but those
        // that said a definite no.
        let undo = self.refused.iter().map(|r| !r).collect();
        let answer = if let Some(&last_tick) = self.claimed.iter().max() {
            Answer::Now(Attempt::AlreadyRan { last_tick })
        } else if let Some(&skew_ms) = self.ahead.iter().min() {
            Answer::Now(Attempt::ClockAhead { skew_ms })
        } else {
            Answer::Settle(Refusal {
                n: self.n,
                quorum: self.quorum,
                held: self.held,
                errors: self.errors,
                moving: self.moving,
            })
        };
        Decision::Refused { undo, answer }
    }
}

impl Refusal {
    /// Held (by whom, for how long at most), or unavailable: when no
    /// master said held, or too few answered for a quorum.
    fn settle(self) -> Attempt {
        let Refusal {
            n,
            quorum,
            held,
            errors,
            ..
        } = self;
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
            // Refused outright (see `Tally::decide`).
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

#[cfg(test)]
mod tests {
    use super::*;

    type Reply = Result<(i64, i64, String, String), NodeError>;

    const SECOND: Duration = Duration::from_secs(1);

    fn granted(fence: i64) -> Reply {
        Ok((1, fence, String::new(), String::new()))
    }

    /// Held by `token` for `pttl` ms; `code` 4: by an attempt for the
    /// same tick.
    fn held(code: i64, pttl: i64, token: &str, info: &str) -> Reply {
        Ok((code, pttl, token.into(), info.into()))
    }

    fn timeout(name: &str) -> Reply {
        Err(NodeError::Timeout(name.into(), Duration::from_millis(50)))
    }

    /// The tally of `replies` (master index, reply) on `n` masters.
    fn tally(n: usize, replies: Vec<(usize, Reply)>) -> Tally {
        let mut t = Tally::new(n, n / 2 + 1);
        for (i, r) in replies {
            t.record(i, r);
        }
        t
    }

    fn refused(d: Decision) -> (Vec<bool>, Answer) {
        match d {
            Decision::Refused { undo, answer } => (undo, answer),
            d => panic!("not refused: {d:?}"),
        }
    }

    fn settled(d: Decision) -> (Vec<bool>, Attempt) {
        match refused(d) {
            (undo, Answer::Settle(r)) => {
                assert!(r.moving.is_empty(), "nothing to look at: {r:?}");
                (undo, r.settle())
            }
            (_, a) => panic!("settled from the replies alone: {a:?}"),
        }
    }

    fn held_by(a: Attempt) -> (Option<Duration>, Holder, bool) {
        match a {
            Attempt::Held {
                pttl,
                holder,
                same_tick,
            } => (pttl, holder, same_tick),
            a => panic!("not held: {a:?}"),
        }
    }

    #[test]
    fn a_quorum_of_grants_is_granted_with_the_highest_token() {
        let mut notice = granted(9);
        if let Ok(r) = &mut notice {
            r.2 = "evicted:3;".into();
        }
        let t = tally(3, vec![(0, granted(7)), (2, notice)]);
        assert_eq!(t.verdict(), Verdict::Won);
        match t.decide() {
            Decision::Granted { fencing, notices } => {
                assert_eq!(fencing, 9);
                assert_eq!(notices, ["evicted:3"]);
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn a_limit_mismatch_anywhere_refuses_and_undoes_everywhere() {
        let t = tally(
            3,
            vec![
                (0, granted(1)),
                (1, granted(2)),
                (2, Ok((5, 4, String::new(), String::new()))),
            ],
        );
        let (undo, answer) = refused(t.decide());
        assert_eq!(undo, [true, true, true]);
        assert!(matches!(
            answer,
            Answer::Now(Attempt::Mismatch { stored: 4 })
        ));
    }

    #[test]
    fn a_refused_attempt_is_undone_wherever_it_may_have_landed() {
        // Master 0 granted, 1 said held, 2 never answered (dropped in
        // flight): undone on 0 and 2 only.
        let info = HolderInfo {
            host: "h".into(),
            pid: 7,
            command: "c".into(),
            since_ms: 0,
            token: "theirs".into(),
            label: None,
        }
        .to_json();
        let t = tally(
            3,
            vec![(0, granted(1)), (1, held(0, 4_000, "theirs", &info))],
        );
        let (undo, attempt) = settled(t.decide());
        assert_eq!(undo, [true, false, true]);
        let (pttl, holder, same_tick) = held_by(attempt);
        assert_eq!(pttl, Some(Duration::from_millis(4_000)));
        assert_eq!(holder.info.map(|i| i.pid), Some(7));
        assert!(!same_tick);
    }

    #[test]
    fn the_same_ticks_attempt_is_named_first_and_the_shortest_lease_counts() {
        let t = tally(
            3,
            vec![
                (0, held(0, 9_000, "a", "")),
                (1, held(4, 3_000, "b", "")),
                (2, held(0, -1, "c", "")),
            ],
        );
        let (undo, attempt) = settled(t.decide());
        assert_eq!(undo, [false, false, false], "nothing landed");
        let (pttl, holder, same_tick) = held_by(attempt);
        // A key with no expiry (-1) says nothing of when it ends.
        assert_eq!(pttl, Some(Duration::from_millis(3_000)));
        assert_eq!(holder.token, "b");
        assert!(same_tick);
    }

    #[test]
    fn a_tick_that_ran_outranks_a_clock_ahead() {
        let claimed = |last| Ok((2, last, String::new(), String::new()));
        let ahead = |ms| Ok((3, ms, String::new(), String::new()));
        let t = tally(3, vec![(0, ahead(900)), (1, claimed(5)), (2, claimed(8))]);
        assert!(matches!(
            refused(t.decide()).1,
            Answer::Now(Attempt::AlreadyRan { last_tick: 8 })
        ));
        let t = tally(
            3,
            vec![(0, ahead(900)), (1, ahead(700)), (2, timeout("m2"))],
        );
        assert!(matches!(
            refused(t.decide()).1,
            Answer::Now(Attempt::ClockAhead { skew_ms: 700 })
        ));
    }

    #[test]
    fn too_few_answers_are_unavailable_and_refusals_by_the_server_permanent() {
        // Held on one master, the others timed out: no quorum could say.
        let t = tally(
            3,
            vec![
                (0, held(0, 1_000, "x", "")),
                (1, timeout("m1")),
                (2, timeout("m2")),
            ],
        );
        match settled(t.decide()).1 {
            Attempt::Unavailable { reason, permanent } => {
                assert!(!permanent);
                assert!(
                    reason.contains("m1: timed out") && reason.contains("; m2"),
                    "{reason}"
                );
            }
            a => panic!("{a:?}"),
        }
        let auth = Err(NodeError::Auth("m0".into(), "WRONGPASS".into()));
        match settled(tally(1, vec![(0, auth)]).decide()).1 {
            Attempt::Unavailable { permanent, .. } => assert!(permanent),
            a => panic!("{a:?}"),
        }
        // No reply at all (every request dropped): no quorum.
        let t = Tally::new(3, 2);
        let (undo, attempt) = settled(t.decide());
        assert_eq!(undo, [true, true, true]);
        assert!(matches!(attempt, Attempt::Unavailable { reason, .. } if reason == "no quorum"));
    }

    #[test]
    fn a_master_in_a_slot_migration_is_looked_at_not_undone() {
        let moving = Err(NodeError::Refused {
            name: "m1".into(),
            code: "TRYAGAIN".into(),
            why: "slot moving",
            detail: String::new(),
        });
        let t = tally(3, vec![(0, held(0, 500, "x", "")), (1, moving)]);
        match refused(t.decide()) {
            (undo, Answer::Settle(r)) => {
                assert_eq!(undo, [false, false, true]);
                assert_eq!(r.moving.len(), 1);
                assert_eq!(r.moving[0].0, 1);
            }
            (_, a) => panic!("{a:?}"),
        }
    }

    #[test]
    fn a_grant_is_usable_only_with_the_grace_and_margin_still_ahead() {
        // --ttl 10s, --kill-after 1s.
        let lease = super::super::READER_LEASE;
        assert_eq!((lease.ttl, lease.kill_after), (10 * SECOND, SECOND));
        let start = BootInstant::now();
        // Valid for the TTL less the drift (10s/100 + 2ms); SIGTERM is due
        // 100 ms + --kill-after before that, at start + 8.798 s.
        let valid = start + Duration::from_millis(9_898);
        assert_eq!(usable_until(&lease, start, start), Some(valid));
        let term = start + Duration::from_millis(8_798);
        assert_eq!(
            usable_until(&lease, start, term.saturating_sub(Duration::from_millis(1))),
            Some(valid)
        );
        assert_eq!(usable_until(&lease, start, term), None);
    }

    #[test]
    fn an_attempt_with_an_end_keeps_the_undo_share_and_at_least_a_request() {
        let now = Instant::now();
        let node = Duration::from_secs(2);
        assert_eq!(request_timeout(node, None, now), node);
        let end = now + Duration::from_millis(400);
        assert_eq!(
            request_timeout(node, Some(end), now),
            Duration::from_millis(250)
        );
        assert_eq!(request_timeout(node, Some(now), now), MIN_REQUEST);
        assert_eq!(undo_timeout(None, now), UNDO_TIMEOUT);
        assert_eq!(undo_timeout(Some(end), now), Duration::from_millis(400));
        assert_eq!(
            undo_timeout(Some(now + Duration::from_secs(9)), now),
            UNDO_TIMEOUT
        );
        assert_eq!(
            undo_timeout(Some(now), now + Duration::from_secs(1)),
            MIN_REQUEST
        );
    }
}
