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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::acquire::{MIN_REQUEST, UNDO_SHARE, UNDO_TIMEOUT};
use super::{Attempt, CONFIG_WARNINGS, Grant, Locker, Mode};

/// How long past --timeout the reply to an attempt in flight may come.
const ANSWER_GRACE: Duration = Duration::from_millis(50);

/// A side channel on a wait, for progress output. Its calls run on the
/// waiting task, so they must return at once (no blocking I/O).
pub trait WaitObserver {
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
pub struct Waker {
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
pub struct Refusal {
    pub master: String,
    pub error: String,
    /// The ACL user the URL names (`default` when none).
    pub user: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: SUBSCRIBE refused ({}): this Redis user may not use pub/sub channels, so a \
             release cannot wake this waiter; it re-checks the lock about every {:?} instead; \
             grant the channels with `ACL SETUSER {} &*` (or `allchannels`)",
            self.master,
            super::escape_controls(&self.error),
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
    pub fn start(locker: &Locker, token: &str) -> Self {
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
    pub async fn ready(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.ready.notified()).await;
    }

    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// The first refusal, if any master refused the subscription.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refused.lock().expect("not poisoned").first().cloned()
    }

    /// Whether every master refused: no release can wake us, so we poll.
    pub fn polling(&self) -> bool {
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
pub enum WaitOutcome<C> {
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
    /// `cancel` resolves. A cancelled or failed wait leaves nothing held.
    /// `holder_json` describes us, given the attempt's token.
    ///
    /// Every attempt has a fresh token: an undo or a reply delayed in the
    /// network can then only ever touch its own attempt, never a later
    /// attempt that succeeded (with one token per wait, a late undo of a
    /// timed-out attempt deleted the lock the retry had just taken).
    pub async fn acquire_waiting<C>(
        &mut self,
        holder_json: impl Fn(&str) -> String,
        timeout: Option<Duration>,
        cancel: impl Future<Output = C>,
    ) -> WaitOutcome<C> {
        self.acquire_waiting_observed(holder_json, timeout, cancel, &mut ())
            .await
    }

    /// [`acquire_waiting`](Self::acquire_waiting), watched by `observer`.
    pub async fn acquire_waiting_observed<C>(
        &mut self,
        holder_json: impl Fn(&str) -> String,
        timeout: Option<Duration>,
        cancel: impl Future<Output = C>,
        observer: &mut dyn WaitObserver,
    ) -> WaitOutcome<C> {
        tokio::pin!(cancel);
        // A timeout too large for the clock is as good as none.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // When the whole wait must be over, its last undo and leaving the
        // queue included: --timeout plus [`ANSWER_GRACE`] for the last
        // reply and [`UNDO_SHARE`] for the clean-up; with --timeout 0 (one
        // attempt), one request's time (--connect-timeout) and the share.
        let end = deadline.map(|d| {
            if timeout.is_some_and(|t| t.is_zero()) {
                d + self.node_timeout() + UNDO_SHARE
            } else {
                d + ANSWER_GRACE + UNDO_SHARE
            }
        });
        // What is left for the clean-up after a last attempt.
        let cleanup = || {
            end.map_or(UNDO_TIMEOUT, |e| {
                UNDO_TIMEOUT.min(e.saturating_duration_since(Instant::now()).max(MIN_REQUEST))
            })
        };
        let mut backoff = Backoff(FIRST_PAUSE);
        let mut waker: Option<Waker> = None;
        let mut ever_reachable = false;
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
            if let Some(w) = waker.as_ref().filter(|_| !warned) {
                if let Some(r) = w.refusal() {
                    // A configuration warning: shown even when only
                    // errors are (src/logging.rs).
                    tracing::warn!(target: CONFIG_WARNINGS, "{r}");
                    warned = true;
                }
            }
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
                a = self.try_acquire_until(&token, &holder, mode, end) => a,
                c = &mut cancel => {
                    // Our SET may have landed just before the signal.
                    self.leave(&token, &waiter).await;
                    return WaitOutcome::Cancelled(c);
                }
            };
            observer.attempted(&attempt);
            let pause = match &attempt {
                Attempt::Acquired(g) => return WaitOutcome::Acquired(g.clone()),
                Attempt::Held { pttl, .. } => {
                    ever_reachable = true;
                    let b = if polling {
                        jitter(POLL_PAUSE)
                    } else {
                        backoff.next()
                    };
                    // Wake just after the holder's lease would run out.
                    pttl.map_or(b, |p| b.min(p + Duration::from_millis(1)))
                }
                Attempt::Unavailable {
                    permanent: true, ..
                }
                | Attempt::AlreadyRan { .. }
                | Attempt::Mismatch { .. }
                | Attempt::ClockAhead { .. } => {
                    if waker.is_some() {
                        self.leave_within(&token, &waiter, cleanup()).await;
                    }
                    return WaitOutcome::TimedOut {
                        last: attempt,
                        ever_reachable,
                    };
                }
                Attempt::Unavailable { .. } => backoff.next(),
            };
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                if waker.is_some() {
                    self.leave_within(&token, &waiter, cleanup()).await;
                }
                return WaitOutcome::TimedOut {
                    last: attempt,
                    ever_reachable,
                };
            }
            if waker.is_none() && matches!(attempt, Attempt::Held { .. }) {
                // Subscribe, then look again at once: a release between our
                // attempt and the subscription would otherwise go unseen.
                let w = Waker::start(self, &waiter);
                // Never past the deadline: a SUBSCRIBE that hangs must
                // not stretch --timeout by the I/O timeout.
                let io = self.lease.io_timeout();
                let limit = deadline.map_or(io, |d| io.min(d.saturating_duration_since(now)));
                tokio::select! {
                    _ = w.ready(limit) => {}
                    c = &mut cancel => return WaitOutcome::Cancelled(c),
                }
                waker = Some(w);
                token = Locker::new_token();
                continue;
            }
            let until = deadline.map_or(now + pause, |d| d.min(now + pause));
            // One pass per observer tick; the next attempt is never held up
            // by a tick (or its queue look-up), which is dropped instead.
            let cancelled = loop {
                let tick_at = observer.next_tick();
                let ask = observer.wants_position();
                tokio::select! {
                    // A holder released the lock.
                    _ = async { match &waker { Some(w) => w.notified().await, None => std::future::pending().await } } => break None,
                    // Our own re-check, in case a wake-up was lost.
                    _ = tokio::time::sleep_until(until) => break None,
                    c = &mut cancel => break Some(c),
                    // Progress output is due (it never ends the pause).
                    p = async {
                        if let Some(at) = tick_at {
                            tokio::time::sleep_until(at).await;
                        }
                        match ask {
                            true => Some(self.queue_position(&waiter).await),
                            false => None,
                        }
                    }, if tick_at.is_some() => {
                        if let Some(p) = p {
                            observer.position(p);
                        }
                        observer.tick();
                    }
                }
            };
            if let Some(c) = cancelled {
                self.leave(&token, &waiter).await;
                return WaitOutcome::Cancelled(c);
            }
            token = Locker::new_token();
        }
    }
}

impl Locker {
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
}
