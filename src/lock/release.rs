//! Giving the lock back: compare-and-delete (waking the next waiter),
//! `--min-hold`'s compare-and-PEXPIRE, a waiter leaving the queue, and
//! `release --force`.

use std::time::Duration;

use super::node::NodeError;
use super::{HISTORY_LEN, Locker, QUEUE_TTL_MS, scripts};

impl Locker {
    /// Compare-and-delete on every master, waking waiters. Returns how many
    /// masters released it.
    pub async fn release(&mut self, token: &str) -> Result<Count, String> {
        self.release_recording(token, "").await
    }

    /// [`release`](Self::release), recording the finished run (`entry`,
    /// JSON; empty for none) in the run history in the same step.
    pub async fn release_recording(&mut self, token: &str, entry: &str) -> Result<Count, String> {
        let timeout = self.lease.io_timeout().min(Duration::from_secs(2));
        let script = self.script(&scripts::RELEASE, &scripts::RELEASE_N);
        self.on_all(script, token, "", entry, timeout).await
    }

    /// Record a run that did not end with our own release (the lock was
    /// lost), replacing an entry with the same fencing token. Best effort.
    pub async fn record(&mut self, entry: &str, fencing: u64) {
        let timeout = self.lease.io_timeout().min(Duration::from_secs(2));
        let keys = [self.keys.history.as_str()];
        let len = HISTORY_LEN.to_string();
        let fencing = fencing.to_string();
        let args = [entry, len.as_str(), fencing.as_str()];
        let _ = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.eval::<i64>(&scripts::RECORD, &keys, &args, timeout)),
        )
        .await;
    }

    /// A waiter giving up: leave the queue on every master, undo an attempt
    /// that may have landed, and pass on a wake-up it may have swallowed.
    pub async fn leave(&mut self, token: &str, waiter: &str) {
        self.leave_within(token, waiter, super::acquire::UNDO_TIMEOUT)
            .await
    }

    /// [`leave`](Self::leave), waiting at most `timeout` for each master.
    pub async fn leave_within(&mut self, token: &str, waiter: &str, timeout: Duration) {
        let timeout = self.node_timeout().min(timeout);
        let script = self.script(&scripts::LEAVE, &scripts::LEAVE_N);
        let _ = self.on_all(script, token, waiter, "", timeout).await;
    }

    /// Run a (lock, holder, waiters, released, history, limit, woken;
    /// token, channel, wake prefix, waiter, run entry, history length,
    /// publish command, limit, queue ttl) script on every master.
    async fn on_all(
        &mut self,
        script: &redis::Script,
        token: &str,
        waiter: &str,
        entry: &str,
        timeout: Duration,
    ) -> Result<Count, String> {
        let keys = [
            self.keys.lock.as_str(),
            self.keys.description(self.lease.limit > 1),
            self.keys.waiters.as_str(),
            self.keys.released.as_str(),
            self.keys.history.as_str(),
            self.keys.limit.as_str(),
            self.keys.woken.as_str(),
        ];
        let len = HISTORY_LEN.to_string();
        let limit = self.lease.limit.to_string();
        let args = [
            token,
            self.keys.channel.as_str(),
            self.keys.wake_prefix.as_str(),
            waiter,
            entry,
            len.as_str(),
            self.publish_command(),
            limit.as_str(),
            QUEUE_TTL_MS,
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
    /// The finished run (`entry`) is recorded in the same step.
    pub async fn hold_for(
        &mut self,
        token: &str,
        remaining: Duration,
        entry: &str,
    ) -> Result<Count, String> {
        let timeout = self.lease.io_timeout().min(Duration::from_secs(2));
        let ms = remaining.as_millis().max(1).to_string();
        let keys = self.keys.extend_keys(self.lease.limit > 1);
        let len = HISTORY_LEN.to_string();
        let args = [token, ms.as_str(), entry, len.as_str()];
        let script = self.script(&scripts::EXTEND, &scripts::EXTEND_N);
        let results = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.eval::<i64>(script, &keys, &args, timeout)),
        )
        .await;
        collect_count(results)
    }

    /// Delete the lock whoever holds it (every holder), on every master.
    pub async fn force_release(&mut self) -> Result<Count, String> {
        let timeout = self.lease.io_timeout();
        let keys = [
            self.keys.lock.as_str(),
            self.keys.holder.as_str(),
            self.keys.tick.as_str(),
            self.keys.holders.as_str(),
            self.keys.limit.as_str(),
        ];
        let args = [self.keys.channel.as_str(), self.publish_command()];
        let results = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.eval::<i64>(&scripts::FORCE_RELEASE, &keys, &args, timeout)),
        )
        .await;
        collect_count(results)
    }
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
        absent: answers.iter().filter(|&&v| v == 0).count(),
        taken: answers.iter().filter(|&&v| v < 0).count(),
    })
}

/// How many masters answered yes (released, extended, deleted), found no
/// key, or found another holder's value; masters that did not answer are
/// in none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub yes: usize,
    pub absent: usize,
    pub taken: usize,
}
