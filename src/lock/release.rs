//! Giving the lock back: compare-and-delete (waking the next waiter),
//! `--min-hold`'s compare-and-PEXPIRE, a waiter leaving the queue, and
//! `release --force`.

use std::time::Duration;

use super::node::{Node, NodeError};
use super::scripts::Call;
use super::{Locker, scripts};

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
        let publish = self.publish_command();
        let call = scripts::release(&self.keys, self.lease.limit, token, entry, publish);
        on_all(&mut self.nodes, &call, timeout).await
    }

    /// Record a run that did not end with our own release (the lock was
    /// lost), replacing an entry with the same fencing token. Best effort.
    pub(crate) async fn record(&mut self, entry: &str, fencing: u64) {
        let timeout = self.lease.io_timeout().min(Duration::from_secs(2));
        let call = scripts::record(&self.keys, entry, fencing);
        let _ = on_all(&mut self.nodes, &call, timeout).await;
    }

    /// A waiter giving up: leave the queue on every master, undo an attempt
    /// that may have landed, and pass on a wake-up it may have swallowed.
    pub async fn leave(&mut self, token: &str, waiter: &str) {
        self.leave_within(token, waiter, super::acquire::UNDO_TIMEOUT)
            .await
    }

    /// [`leave`](Self::leave), waiting at most `timeout` for each master.
    pub(crate) async fn leave_within(&mut self, token: &str, waiter: &str, timeout: Duration) {
        let timeout = self.node_timeout().min(timeout);
        let publish = self.publish_command();
        let call = scripts::leave(&self.keys, self.lease.limit, token, waiter, publish);
        // Often sent after an attempt timed out: as EVAL, so that it runs
        // even if its reply is never heard.
        let _ = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.eval_unheard::<i64>(&call, timeout)),
        )
        .await;
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
        let ms = remaining.max(Duration::from_millis(1));
        let call = scripts::extend(&self.keys, self.lease.limit, token, ms, Some(entry));
        on_all(&mut self.nodes, &call, timeout).await
    }

    /// Delete the lock whoever holds it (every holder), on every master.
    pub async fn force_release(&mut self) -> Result<Count, String> {
        let timeout = self.lease.io_timeout();
        let call = scripts::force_release(&self.keys, self.publish_command());
        let call = &call;
        // Nothing is undone here: a too-old server is refused before the
        // delete is sent, not with its reply.
        let results =
            futures_util::future::join_all(self.nodes.iter_mut().map(|node| async move {
                node.check_first(timeout).await?;
                node.eval::<i64>(call, timeout).await
            }))
            .await;
        collect_count(results)
    }
}

/// Run `call` on every master at once; count the answers.
async fn on_all(nodes: &mut [Node], call: &Call<'_>, timeout: Duration) -> Result<Count, String> {
    let results = futures_util::future::join_all(
        nodes.iter_mut().map(|node| node.eval::<i64>(call, timeout)),
    )
    .await;
    collect_count(results)
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
