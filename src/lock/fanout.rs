//! The step every request of the lock protocol shares: ask every master at
//! once, decide as soon as the outcome is certain, and once it is won give
//! the other masters a short grace to answer too (a lock left on a bare
//! quorum would be lost with any one of its masters). Acquiring, the
//! quorum's second round and renewing each count their own kind of reply
//! ([`Votes`]); the sending and the deciding are written once, here.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

/// Where a vote stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not decided: wait for more replies.
    Open,
    /// A quorum said yes.
    Won,
    /// Too many said no (or failed) for a quorum to say yes.
    Lost,
}

/// Replies counted toward a quorum.
pub(super) trait Votes<R> {
    /// Count master `i`'s reply.
    fn record(&mut self, i: usize, reply: R);
    fn verdict(&self) -> Verdict;
}

/// Send `requests` (one per master, each yielding the master's index and
/// its reply) at once and count the replies until the verdict is certain.
/// Once won, the other masters get [`straggler_grace`] to answer too;
/// replies still in flight after that (or after a lost vote) are dropped.
pub(super) async fn gather<R, F, V>(
    requests: impl IntoIterator<Item = F>,
    votes: &mut V,
    per_master: Duration,
) where
    F: Future<Output = (usize, R)>,
    V: Votes<R>,
{
    // tokio's clock: the grace is a short timer, and tests pause it.
    let start = tokio::time::Instant::now();
    let mut pending: FuturesUnordered<F> = requests.into_iter().collect();
    while let Some((i, r)) = pending.next().await {
        votes.record(i, r);
        if votes.verdict() != Verdict::Open {
            break;
        }
    }
    if votes.verdict() == Verdict::Won && !pending.is_empty() {
        let grace = straggler_grace(start.elapsed(), per_master);
        let _ = tokio::time::timeout(grace, async {
            while let Some((i, r)) = pending.next().await {
                votes.record(i, r);
            }
        })
        .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Yes/no/failed replies; won at `quorum` yeses, lost when the noes
    /// and failures leave too few masters.
    struct Count {
        n: usize,
        quorum: usize,
        yes: Vec<usize>,
        no: usize,
    }

    impl Votes<Option<bool>> for Count {
        fn record(&mut self, i: usize, reply: Option<bool>) {
            match reply {
                Some(true) => self.yes.push(i),
                _ => self.no += 1,
            }
        }
        fn verdict(&self) -> Verdict {
            if self.yes.len() >= self.quorum {
                Verdict::Won
            } else if self.no > self.n - self.quorum {
                Verdict::Lost
            } else {
                Verdict::Open
            }
        }
    }

    fn count(n: usize) -> Count {
        Count {
            n,
            quorum: n / 2 + 1,
            yes: Vec::new(),
            no: 0,
        }
    }

    /// Master `i` answers `reply` after `ms`.
    async fn answer(i: usize, ms: u64, reply: Option<bool>) -> (usize, Option<bool>) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        (i, reply)
    }

    #[tokio::test(start_paused = true)]
    async fn a_won_vote_waits_briefly_for_stragglers_then_drops_them() {
        let mut c = count(5);
        let t = tokio::time::Instant::now();
        let replies = [
            answer(0, 10, Some(true)),
            answer(1, 10, Some(true)),
            answer(2, 20, Some(true)),
            // Within the grace (3x the 20 ms the quorum took).
            answer(3, 50, Some(true)),
            // Past it: dropped, never waited for.
            answer(4, 5_000, Some(true)),
        ];
        gather(replies, &mut c, Duration::from_secs(10)).await;
        assert_eq!(c.verdict(), Verdict::Won);
        assert_eq!(c.yes, [0, 1, 2, 3]);
        assert!(
            t.elapsed() <= Duration::from_millis(80),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_vote_stops_at_once() {
        let mut c = count(3);
        let t = tokio::time::Instant::now();
        let replies = [
            answer(0, 10, Some(false)),
            answer(1, 20, None),
            answer(2, 5_000, Some(true)),
        ];
        gather(replies, &mut c, Duration::from_secs(10)).await;
        assert_eq!(c.verdict(), Verdict::Lost);
        assert!(c.yes.is_empty());
        assert_eq!(t.elapsed(), Duration::from_millis(20));
    }

    #[test]
    fn the_grace_is_three_times_the_quorum_at_least_10ms_at_most_the_timeout() {
        let s = Duration::from_secs(1);
        assert_eq!(
            straggler_grace(Duration::from_millis(1), s),
            Duration::from_millis(10)
        );
        assert_eq!(
            straggler_grace(Duration::from_millis(20), s),
            Duration::from_millis(60)
        );
        assert_eq!(straggler_grace(Duration::from_millis(900), s), s);
    }
}
