//! Waiting for a held lock: woken by the releaser's PUBLISH on any master
//! (hand-over within milliseconds), and re-checking on our own at least
//! once a second, because a notification can be lost and other clients
//! publish nothing. A waiter sends about one command per second.
//!
//! Waiters queue up in Redis (a sorted set by arrival); a release wakes
//! only the first live waiter, on its own channel, so hand-over is in
//! arrival order and a release does not set off a thundering herd.
//!
//! A [`WaitObserver`] (the progress line, `crate::progress`) watches from
//! the side: it is shown what each attempt saw and given ticks during the
//! pauses, and never holds up an attempt.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::acquire::{UNDO_SHARE, undo_timeout};
use super::{Attempt, CONFIG_WARNINGS, Grant, Locker, Mode};

/// How long past --timeout the reply to an attempt in flight may come.
const ANSWER_GRACE: Duration = Duration::from_millis(50);

/// A side channel on a wait, for progress output. Its calls run on the
/// waiting task, so they must return at once (no blocking I/O).
pub(crate) trait WaitObserver {
    /// What one attempt saw (the current holder, or why Redis failed).
    fn attempted(&mut self, _attempt: &Attempt) {}
    /// When to be given the next [`tick`](Self::tick) (None: never).
    fn next_tick(&self) -> Option<Instant> {
        None
    }
    /// Whether the next tick should come with our place in the queue
    /// (one `ZRANK` on the first master).
    fn wants_position(&self) -> bool {
        false
    }
    /// Our place in the queue (1 = next), None when not known.
    fn position(&mut self, _position: Option<u64>) {}
    /// A tick during a pause between attempts.
    fn tick(&mut self) {}
}

/// No observer.
impl WaitObserver for () {}

/// How long a queue-position look-up may take before it is given up.
const POSITION_TIMEOUT: Duration = Duration::from_millis(250);

/// The slowest re-check: the spec promises at least one per second.
const MAX_PAUSE: Duration = Duration::from_secs(1);
const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// A waiter that cannot subscribe (its user has no pub/sub channels)
/// re-checks this often (less 0-25% jitter): at most 2 commands a second,
/// and a free lock is found within a second of its release.
const POLL_PAUSE: Duration = Duration::from_millis(800);

/// Wake-ups from every master's release channel.
pub(super) struct Waker {
    notify: Arc<Notify>,
    ready: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
    /// Masters that refused the subscription for good (the user may not
    /// use pub/sub channels, or SUBSCRIBE is disabled): what each said,
    /// and the ACL rule that would grant it.
    refused: Arc<Mutex<Vec<Refusal>>>,
    masters: usize,
}

/// One master's refusal of the subscription.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    pub(crate) master: String,
    pub(crate) error: String,
    /// The ACL user the URL names (`default` when none).
    pub(crate) user: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: SUBSCRIBE refused ({}): this Redis user may not use pub/sub channels, so a \
             release cannot wake this waiter; it re-checks the lock about every {:?} instead; \
             grant the channels with `ACL SETUSER {} &*` (or `allchannels`)",
            self.master,
            crate::display::escape_controls(&self.error),
            POLL_PAUSE,
            self.user
        )
    }
}

/// Whether a subscription was refused for good: no permission (ACL
/// channels, or the command), or no such command.
fn refused_for_good(e: &redis::RedisError) -> bool {
    e.code() == Some("NOPERM")
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
        )
        || e.to_string().contains("unknown command")
}

impl Waker {
    /// Subscribe to the shared channel and to this waiter's own channel
    /// (for `token`) on every master, each in its own task that
    /// reconnects on failure; a master that refuses the subscription for
    /// good is not asked again.
    pub(super) fn start(locker: &Locker, token: &str) -> Self {
        let notify = Arc::new(Notify::new());
        let ready = Arc::new(Notify::new());
        let refused = Arc::new(Mutex::new(Vec::new()));
        let timeout = locker.io_timeout();
        let tasks = locker
            .nodes()
            .iter()
            .map(|node| {
                let source = node.source().clone();
                let channels = [
                    locker.keys().channel.clone(),
                    format!("{}{token}", locker.keys().wake_prefix),
                ];
                let notify = notify.clone();
                let ready = ready.clone();
                let refused = refused.clone();
                let master = node.name().to_string();
                let user = node
                    .endpoint
                    .info
                    .redis_settings()
                    .username()
                    .unwrap_or("default")
                    .to_string();
                tokio::spawn(async move {
                    let mut pause = Duration::from_millis(100);
                    loop {
                        let sub = tokio::time::timeout(timeout, source.subscribe(&channels)).await;
                        match sub {
                            Ok(Ok(mut stream)) => {
                                pause = Duration::from_millis(100);
                                ready.notify_one();
                                while stream.next().await.is_some() {
                                    notify.notify_one();
                                }
                            }
                            Ok(Err(e)) if refused_for_good(&e) => {
                                refused.lock().expect("not poisoned").push(Refusal {
                                    master,
                                    error: e.to_string(),
                                    user,
                                });
                                ready.notify_one();
                                return;
                            }
                            _ => {}
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                })
            })
            .collect();
        Waker {
            notify,
            ready,
            tasks,
            refused,
            masters: locker.nodes().len(),
        }
    }

    /// Wait (at most `limit`) until one subscription is in place, or one
    /// master refused it for good.
    pub(super) async fn ready(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.ready.notified()).await;
    }

    pub(super) async fn notified(&self) {
        self.notify.notified().await
    }

    /// The first refusal, if any master refused the subscription.
    pub(super) fn refusal(&self) -> Option<Refusal> {
        self.refused.lock().expect("not poisoned").first().cloned()
    }

    /// Whether every master refused: no release can wake us, so we poll.
    pub(super) fn polling(&self) -> bool {
        self.refused.lock().expect("not poisoned").len() >= self.masters
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How a wait ended.
#[derive(Debug)]
pub(crate) enum WaitOutcome<C> {
    Acquired(Grant),
    /// Not acquired within the timeout. `ever_reachable` tells a busy lock
    /// (exit 75) from Redis that never answered (exit 69).
    TimedOut {
        last: Attempt,
        ever_reachable: bool,
    },
    /// The cancel future (a signal) fired first; nothing is held.
    Cancelled(C),
}

/// A pause in [FIRST_PAUSE, MAX_PAUSE], doubling, with jitter so that
/// waiters do not move in lockstep.
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    fn next(&mut self) -> Duration {
        let base = self.0;
        self.0 = (self.0 * 2).min(MAX_PAUSE);
        jitter(base)
    }
}

/// 75%..100% of `base`, from the OS's random source.
fn jitter(base: Duration) -> Duration {
    let r = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
    base * (750 + r / 4) / 1000
}

impl Locker {
    /// Try to take the lock until `timeout` (None = forever) or until
    /// `cancel` resolves, watched by `observer`. A cancelled or failed wait
    /// leaves nothing held. `holder_json` describes us, given the
    /// attempt's token.
    ///
    /// Every attempt has a fresh token: an undo or a reply delayed in the
    /// network can then only ever touch its own attempt, never a later
    /// attempt that succeeded (with one token per wait, a late undo of a
    /// timed-out attempt deleted the lock the retry had just taken).
    ///
    /// The I/O of a wait: attempts, the subscription, the pauses. What
    /// to do after each attempt is decided by `Wait::after`.
    pub(crate) async fn acquire_waiting_observed<C>(
        &mut self,
        holder_json: impl Fn(&str) -> String,
        timeout: Option<Duration>,
        cancel: impl Future<Output = C>,
        observer: &mut dyn WaitObserver,
    ) -> WaitOutcome<C> {
        tokio::pin!(cancel);
        let mut wait = Wait::new(timeout, Instant::now(), self.node_timeout());
        let mut waker: Option<Waker> = None;
        // Our place in the queue: the time we started waiting, and an id
        // that names us in the queue and on our wake-up channel.
        let score = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let waiter = Locker::new_token();
        let mut token = Locker::new_token();
        // Said once: a master refused our subscription.
        let mut warned = false;
        loop {
            warn_of_refusal(waker.as_ref(), &mut warned);
            let polling = waker.as_ref().is_some_and(Waker::polling);
            // Queued only once subscribed: a queued waiter must be wakeable.
            let mode = if waker.is_some() {
                Mode::Wait {
                    score,
                    waiter: &waiter,
                }
            } else {
                Mode::Once
            };
            // The description is rebuilt per attempt: it says since when.
            let holder = holder_json(&token);
            let attempt = tokio::select! {
                a = self.try_acquire_until(&token, &holder, mode, wait.end) => a,
                c = &mut cancel => {
                    // Our SET may have landed just before the signal.
                    self.leave(&token, &waiter).await;
                    return WaitOutcome::Cancelled(c);
                }
            };
            observer.attempted(&attempt);
            let io = self.lease.io_timeout();
            match wait.after(attempt, waker.is_some(), polling, io, Instant::now()) {
                Step::Acquired(grant) => return WaitOutcome::Acquired(grant),
                Step::GiveUp(last) => {
                    if waker.is_some() {
                        let cleanup = undo_timeout(wait.end, Instant::now());
                        self.leave_within(&token, &waiter, cleanup).await;
                    }
                    return WaitOutcome::TimedOut {
                        last,
                        ever_reachable: wait.ever_reachable,
                    };
                }
                // Subscribe, then look again at once: a release between our
                // attempt and the subscription would otherwise go unseen.
                Step::Subscribe { limit } => {
                    let w = Waker::start(self, &waiter);
                    tokio::select! {
                        _ = w.ready(limit) => {}
                        c = &mut cancel => return WaitOutcome::Cancelled(c),
                    }
                    waker = Some(w);
                }
                Step::Pause { until } => {
                    let paused = self.pause(until, waker.as_ref(), &waiter, observer);
                    if let Some(c) = or_cancelled(paused, cancel.as_mut()).await {
                        self.leave(&token, &waiter).await;
                        return WaitOutcome::Cancelled(c);
                    }
                }
            }
            token = Locker::new_token();
        }
    }

    /// The pause between two attempts, until `until` or a wake-up from a
    /// release (`waker`), giving `observer` its ticks. The next attempt is
    /// never held up by a tick (or its queue look-up), which is dropped
    /// instead.
    async fn pause(
        &mut self,
        until: Instant,
        waker: Option<&Waker>,
        waiter: &str,
        observer: &mut dyn WaitObserver,
    ) {
        loop {
            let tick_at = observer.next_tick();
            let ask = observer.wants_position();
            tokio::select! {
                // A holder released the lock.
                _ = async { match waker { Some(w) => w.notified().await, None => std::future::pending().await } } => return,
                // Our own re-check, in case a wake-up was lost.
                _ = tokio::time::sleep_until(until) => return,
                // Progress output is due (it never ends the pause).
                p = async {
                    if let Some(at) = tick_at {
                        tokio::time::sleep_until(at).await;
                    }
                    match ask {
                        true => Some(self.queue_position(waiter).await),
                        false => None,
                    }
                }, if tick_at.is_some() => {
                    if let Some(p) = p {
                        observer.position(p);
                    }
                    observer.tick();
                }
            }
        }
    }

    /// Our place in the waiters' queue on the first master (1 = next), if
    /// it can be known quickly.
    async fn queue_position(&mut self, waiter: &str) -> Option<u64> {
        let timeout = self.lease.io_timeout().min(POSITION_TIMEOUT);
        let mut pipe = redis::pipe();
        pipe.zrank(&self.keys.waiters, waiter);
        let node = self.nodes.first_mut()?;
        match node.query::<(Option<u64>,)>(&pipe, timeout).await {
            Ok((rank,)) => rank.map(|r| r + 1),
            Err(_) => None,
        }
    }
}

/// `work`, unless `cancel` resolves first (then its output).
async fn or_cancelled<C>(
    work: impl Future<Output = ()>,
    cancel: Pin<&mut impl Future<Output = C>>,
) -> Option<C> {
    tokio::select! {
        () = work => None,
        c = cancel => Some(c),
    }
}

/// Say once (`warned`) that a master refused the subscription. A
/// configuration warning: shown even when only errors are
/// (src/logging.rs).
fn warn_of_refusal(waker: Option<&Waker>, warned: &mut bool) {
    if *warned {
        return;
    }
    if let Some(r) = waker.and_then(Waker::refusal) {
        tracing::warn!(target: CONFIG_WARNINGS, "{r}");
        *warned = true;
    }
}

/// A wait between its attempts: when it must be over, how long to pause,
/// whether Redis ever answered. The pure part of
/// [`Locker::acquire_waiting_observed`].
#[derive(Debug)]
struct Wait {
    /// --timeout, from the start (None: forever).
    deadline: Option<Instant>,
    /// When the whole wait must be over, its last undo and leaving the
    /// queue included.
    end: Option<Instant>,
    backoff: Backoff,
    /// A master said the lock is held (tells a busy lock from Redis that
    /// never answered).
    ever_reachable: bool,
}

/// What a wait does after an attempt.
#[derive(Debug)]
enum Step {
    Acquired(Grant),
    /// Over: leave the queue (if in it), report the last attempt.
    GiveUp(Attempt),
    /// Subscribe to the release channels (waiting at most `limit` for a
    /// subscription to be in place), then try again at once.
    Subscribe {
        limit: Duration,
    },
    /// Try again at `until`, or on a wake-up.
    Pause {
        until: Instant,
    },
}

impl Wait {
    /// A wait with `timeout` (None: forever), started at `now`; `node` is
    /// one request's time (`Locker::node_timeout`).
    fn new(timeout: Option<Duration>, now: Instant, node: Duration) -> Self {
        // A timeout too large for the clock is as good as none.
        let deadline = timeout.and_then(|t| now.checked_add(t));
        // --timeout plus [`ANSWER_GRACE`] for the last reply and
        // [`UNDO_SHARE`] for the clean-up; with --timeout 0 (one attempt),
        // one request's time and the share.
        let end = deadline.map(|d| {
            if timeout.is_some_and(|t| t.is_zero()) {
                d + node + UNDO_SHARE
            } else {
                d + ANSWER_GRACE + UNDO_SHARE
            }
        });
        Wait {
            deadline,
            end,
            backoff: Backoff(FIRST_PAUSE),
            ever_reachable: false,
        }
    }

    /// What to do at `now` after `attempt`; `subscribed`: a waker is
    /// started, `polling`: every master refused it; `io`: the I/O timeout.
    fn after(
        &mut self,
        attempt: Attempt,
        subscribed: bool,
        polling: bool,
        io: Duration,
        now: Instant,
    ) -> Step {
        let pause = match attempt {
            Attempt::Acquired(grant) => return Step::Acquired(grant),
            Attempt::Held { pttl, .. } => {
                self.ever_reachable = true;
                let b = if polling {
                    jitter(POLL_PAUSE)
                } else {
                    self.backoff.next()
                };
                // Wake just after the holder's lease would run out.
                pttl.map_or(b, |p| b.min(p + Duration::from_millis(1)))
            }
            Attempt::Unavailable {
                permanent: true, ..
            }
            | Attempt::AlreadyRan { .. }
            | Attempt::Mismatch { .. }
            | Attempt::ClockAhead { .. } => return Step::GiveUp(attempt),
            Attempt::Unavailable { .. } => self.backoff.next(),
        };
        if self.deadline.is_some_and(|d| now >= d) {
            return Step::GiveUp(attempt);
        }
        if !subscribed && matches!(attempt, Attempt::Held { .. }) {
            // Never past the deadline: a SUBSCRIBE that hangs must not
            // stretch --timeout by the I/O timeout.
            let limit = self
                .deadline
                .map_or(io, |d| io.min(d.saturating_duration_since(now)));
            return Step::Subscribe { limit };
        }
        Step::Pause {
            until: self.deadline.map_or(now + pause, |d| d.min(now + pause)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_one_second_and_never_past_it() {
        let mut b = Backoff(FIRST_PAUSE);
        let pauses: Vec<_> = (0..6).map(|_| b.next()).collect();
        assert!(pauses[0] >= FIRST_PAUSE * 3 / 4 && pauses[0] <= FIRST_PAUSE);
        assert!(pauses.iter().all(|p| *p <= MAX_PAUSE));
        assert!(pauses[5] >= MAX_PAUSE * 3 / 4);
    }

    const IO: Duration = Duration::from_secs(5);
    const MS: Duration = Duration::from_millis(1);

    fn held(pttl_ms: Option<u64>) -> Attempt {
        Attempt::Held {
            pttl: pttl_ms.map(Duration::from_millis),
            holder: Default::default(),
            same_tick: false,
        }
    }

    fn unavailable(permanent: bool) -> Attempt {
        Attempt::Unavailable {
            reason: "m0: timed out".into(),
            permanent,
        }
    }

    fn pause_of(step: Step, now: Instant) -> Duration {
        match step {
            Step::Pause { until } => until - now,
            s => panic!("no pause: {s:?}"),
        }
    }

    #[test]
    fn a_wait_ends_its_clean_up_a_grace_and_share_past_the_timeout() {
        let now = Instant::now();
        let node = Duration::from_millis(700);
        let w = Wait::new(Some(Duration::from_secs(3)), now, node);
        assert_eq!(w.deadline, Some(now + Duration::from_secs(3)));
        assert_eq!(
            w.end,
            Some(now + Duration::from_secs(3) + ANSWER_GRACE + UNDO_SHARE)
        );
        // --timeout 0: one attempt, which gets one request's time.
        let w = Wait::new(Some(Duration::ZERO), now, node);
        assert_eq!(w.end, Some(now + node + UNDO_SHARE));
        // None, or too large for the clock: forever.
        assert!(Wait::new(None, now, node).end.is_none());
        assert!(Wait::new(Some(Duration::MAX), now, node).deadline.is_none());
    }

    #[test]
    fn a_held_lock_is_subscribed_to_first_then_paused_on() {
        let now = Instant::now();
        let mut w = Wait::new(Some(Duration::from_secs(2)), now, IO);
        assert!(!w.ever_reachable);
        // Not subscribed yet: subscribe, never past the deadline.
        match w.after(held(Some(9_000)), false, false, IO, now) {
            Step::Subscribe { limit } => assert_eq!(limit, Duration::from_secs(2)),
            s => panic!("{s:?}"),
        }
        assert!(w.ever_reachable);
        let mut w = Wait::new(None, now, IO);
        match w.after(held(None), false, false, IO, now) {
            Step::Subscribe { limit } => assert_eq!(limit, IO),
            s => panic!("{s:?}"),
        }
        // Subscribed: the backoff's next pause (the first went above),
        // 500 ms less 0-25%.
        let p = pause_of(w.after(held(None), true, false, IO, now), now);
        assert!(
            p >= Duration::from_millis(375) && p <= Duration::from_millis(500),
            "{p:?}"
        );
        // Just past the holder's lease, when that comes first.
        let p = pause_of(w.after(held(Some(40)), true, false, IO, now), now);
        assert_eq!(p, Duration::from_millis(41));
    }

    #[test]
    fn a_waiter_no_release_can_wake_polls_and_no_pause_passes_the_deadline() {
        let now = Instant::now();
        let mut w = Wait::new(None, now, IO);
        let p = pause_of(w.after(held(None), true, true, IO, now), now);
        assert!(p >= POLL_PAUSE * 3 / 4 && p <= POLL_PAUSE, "{p:?}");
        let mut w = Wait::new(Some(Duration::from_millis(100)), now, IO);
        let later = now + Duration::from_millis(30);
        let p = pause_of(w.after(held(Some(5_000)), true, false, IO, later), later);
        assert_eq!(p, Duration::from_millis(70));
    }

    #[test]
    fn redis_down_is_retried_and_a_permanent_refusal_gives_up_at_once() {
        let now = Instant::now();
        let mut w = Wait::new(Some(Duration::from_secs(60)), now, IO);
        // Not subscribed, but nothing is held: no subscription, a pause.
        let p = pause_of(w.after(unavailable(false), false, false, IO, now), now);
        assert!(p <= FIRST_PAUSE && p >= FIRST_PAUSE * 3 / 4, "{p:?}");
        assert!(!w.ever_reachable);
        for a in [
            unavailable(true),
            Attempt::AlreadyRan { last_tick: 1 },
            Attempt::Mismatch { stored: 2 },
            Attempt::ClockAhead { skew_ms: 900 },
        ] {
            match w.after(a, true, false, IO, now) {
                Step::GiveUp(_) => {}
                s => panic!("{s:?}"),
            }
        }
    }

    #[test]
    fn the_deadline_gives_up_with_the_last_attempt_and_an_acquired_lock_is_kept() {
        let now = Instant::now();
        let mut w = Wait::new(Some(Duration::from_secs(1)), now, IO);
        let at = now + Duration::from_secs(1);
        match w.after(held(Some(5)), true, false, IO, at) {
            Step::GiveUp(Attempt::Held { pttl, .. }) => {
                assert_eq!(pttl, Some(5 * MS))
            }
            s => panic!("{s:?}"),
        }
        assert!(w.ever_reachable, "a busy lock, not Redis down");
        let grant = Grant {
            token: "t".into(),
            fencing: 3,
            acquired_at: crate::clock::BootInstant::now(),
            valid_until: crate::clock::BootInstant::now(),
        };
        // Even past the deadline: the lock is ours.
        match w.after(Attempt::Acquired(grant), true, false, IO, at) {
            Step::Acquired(g) => assert_eq!((g.token.as_str(), g.fencing), ("t", 3)),
            s => panic!("{s:?}"),
        }
    }
}
