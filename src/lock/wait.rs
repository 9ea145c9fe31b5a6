//! Waiting for a held lock: woken by the releaser's PUBLISH on any master
//! (hand-over within milliseconds), and re-checking on our own at least
//! once a second, because a notification can be lost and other clients
//! publish nothing. A waiter sends about one command per second.
//!
//! Waiters queue up in Redis (a sorted set by arrival); a release wakes
//! only the first live waiter, on its own channel, so hand-over is in
//! arrival order and a release does not set off a thundering herd.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Attempt, Grant, Locker, Mode};

/// The slowest re-check: the spec promises at least one per second.
const MAX_PAUSE: Duration = Duration::from_secs(1);
const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// Wake-ups from every master's release channel.
pub struct Waker {
    notify: Arc<Notify>,
    ready: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl Waker {
    /// Subscribe to the shared channel and to this waiter's own channel
    /// (for `token`) on every master, each in its own task that
    /// reconnects on failure.
    pub fn start(locker: &Locker, token: &str) -> Self {
        let notify = Arc::new(Notify::new());
        let ready = Arc::new(Notify::new());
        let timeout = locker.lease.io_timeout();
        let tasks = locker
            .nodes()
            .iter()
            .map(|node| {
                let source = node.source().clone();
                let channels = [
                    locker.keys.channel.clone(),
                    format!("{}{token}", locker.keys.wake_prefix),
                ];
                let notify = notify.clone();
                let ready = ready.clone();
                tokio::spawn(async move {
                    let mut pause = Duration::from_millis(100);
                    loop {
                        let sub = tokio::time::timeout(timeout, source.subscribe(&channels)).await;
                        if let Ok(Ok(mut stream)) = sub {
                            pause = Duration::from_millis(100);
                            ready.notify_one();
                            while stream.next().await.is_some() {
                                notify.notify_one();
                            }
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
        }
    }

    /// Wait (at most `limit`) until one subscription is in place.
    pub async fn ready(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.ready.notified()).await;
    }

    pub async fn notified(&self) {
        self.notify.notified().await
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
        // 75%..100% of the base, from the OS's random source.
        let r = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
        base * (750 + r / 4) / 1000
    }
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
        tokio::pin!(cancel);
        // A timeout too large for the clock is as good as none.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
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
        loop {
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
                a = self.try_acquire_as(&token, &holder, mode) => a,
                c = &mut cancel => {
                    // Our SET may have landed just before the signal.
                    self.leave(&token, &waiter).await;
                    return WaitOutcome::Cancelled(c);
                }
            };
            let pause = match &attempt {
                Attempt::Acquired(g) => return WaitOutcome::Acquired(g.clone()),
                Attempt::Held { pttl, .. } => {
                    ever_reachable = true;
                    let b = backoff.next();
                    // Wake just after the holder's lease would run out.
                    pttl.map_or(b, |p| b.min(p + Duration::from_millis(1)))
                }
                Attempt::Unavailable {
                    permanent: true, ..
                }
                | Attempt::AlreadyRan { .. } => {
                    if waker.is_some() {
                        self.leave(&token, &waiter).await;
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
                    self.leave(&token, &waiter).await;
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
            tokio::select! {
                // A holder released the lock.
                _ = async { match &waker { Some(w) => w.notified().await, None => std::future::pending().await } } => {}
                // Our own re-check, in case a wake-up was lost.
                _ = tokio::time::sleep_until(until) => {}
                c = &mut cancel => {
                    self.leave(&token, &waiter).await;
                    return WaitOutcome::Cancelled(c);
                }
            }
            token = Locker::new_token();
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
