//! The lease keeper: a background task that renews the lease every
//! `--refresh` and publishes how long it is certainly ours. It never kills
//! anything itself; the supervisor turns its state into deadlines.

use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Grant, Locker, Renewal};
use crate::clock::BootInstant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseState {
    /// Ours until `valid_until` (measured from the last successful renewal's send).
    Valid { valid_until: BootInstant },
    /// A renewal found our token gone: stop the command now.
    Lost(String),
}

pub(crate) struct Keeper {
    state: watch::Receiver<LeaseState>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Locker>,
}

impl Keeper {
    /// Take over `locker` and keep `grant`'s lease alive until `stop`.
    pub(crate) fn start(mut locker: Locker, grant: &Grant) -> Keeper {
        let (tx, rx) = watch::channel(LeaseState::Valid {
            valid_until: grant.valid_until,
        });
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let token = grant.token.clone();
        let mut valid_until = grant.valid_until;
        let acquired_at = grant.acquired_at;
        let task = tokio::spawn(async move {
            let lease = *locker.lease();
            let retry =
                (lease.refresh / 4).clamp(Duration::from_millis(10), Duration::from_millis(500));
            let per_try = lease
                .io_timeout()
                .min((lease.refresh / 2).max(Duration::from_millis(50)));
            // Timed from the grant, not from here: starting the command
            // took some of the first period.
            let mut next = Instant::now() + lease.refresh.saturating_sub(acquired_at.elapsed());
            loop {
                tokio::select! {
                    _ = &mut stop_rx => return locker,
                    _ = tokio::time::sleep_until(next) => {}
                }
                // Never wait on a request past the moment the lease ends.
                let left = valid_until.remaining();
                let timeout = per_try.min(left).max(Duration::from_millis(5));
                let renewal = tokio::select! {
                    _ = &mut stop_rx => return locker,
                    r = locker.renew(&token, timeout) => r,
                };
                match renewal {
                    Renewal::Extended { valid_until: v } => {
                        tracing::debug!(
                            valid_for_ms = v.remaining().as_millis() as u64,
                            "lease renewed"
                        );
                        valid_until = v;
                        let _ = tx.send(LeaseState::Valid { valid_until: v });
                        next = Instant::now() + lease.refresh;
                    }
                    Renewal::Lost(why) => {
                        let _ = tx.send(LeaseState::Lost(why));
                        let _ = stop_rx.await;
                        return locker;
                    }
                    Renewal::Failed(why) => {
                        tracing::warn!(
                            error = %why,
                            lease_left_ms = valid_until.remaining().as_millis() as u64,
                            "lease renewal failed; retrying"
                        );
                        next = Instant::now() + retry;
                    }
                }
            }
        });
        Keeper {
            state: rx,
            stop: stop_tx,
            task,
        }
    }

    pub(crate) fn state(&mut self) -> &mut watch::Receiver<LeaseState> {
        &mut self.state
    }

    /// Stop renewing and hand the locker back (for the release).
    pub(crate) async fn stop(self) -> Locker {
        let _ = self.stop.send(());
        self.task.await.expect("the lease keeper never panics")
    }
}
