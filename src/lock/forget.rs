//! Retiring a key (`release --forget`): everything the tool keeps for it
//! removed in one script per master (`lua/forget.lua`), never while the
//! lock is held or waited for. And what `release --force` finds to remove
//! besides the lock (schedule's tick claim), read just before, so that it
//! can say what it removed.

use std::time::Duration;

use super::{Locker, NodeError, scripts};

/// What `forget.lua` removes, in the order of its KEYS[2..].
const FORGOTTEN: [&str; 9] = [
    "the holder's description",
    "the holders' descriptions",
    "the waiters' queue",
    "the woken waiters",
    "the stored --limit",
    "the tick claim",
    "the fencing counter",
    "the run history",
    "the released tokens",
];

/// What one master did with `forget.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Forgot {
    /// Removed these (none: there was nothing to remove).
    Removed(Vec<&'static str>),
    /// The lock is held: nothing removed.
    Held,
    /// Someone waits for the lock: nothing removed.
    Waited,
}

impl Locker {
    /// Run `forget.lua` on every master (each within `timeout`).
    pub(crate) async fn forget(&mut self, timeout: Duration) -> Vec<Result<Forgot, NodeError>> {
        // One EVAL with the text (not a cached script): it runs once in a
        // key's life.
        let mut pipe = redis::pipe();
        pipe.add_command(scripts::forget(&self.keys).eval_cmd());
        let results = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.query::<(Vec<i64>,)>(&pipe, timeout)),
        )
        .await;
        results
            .into_iter()
            .map(|r| r.map(|(reply,)| forgot(&reply)))
            .collect()
    }

    /// schedule's tick claim on each master that answered: the tick's time
    /// (ms since the epoch) when there is one.
    pub(crate) async fn tick_claims(&mut self, timeout: Duration) -> Vec<Option<u64>> {
        let mut pipe = redis::pipe();
        pipe.get(&self.keys.tick);
        let results = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.query::<(Option<String>,)>(&pipe, timeout)),
        )
        .await;
        results
            .into_iter()
            .filter_map(Result::ok)
            .map(|(v,)| v.as_deref().and_then(claimed_tick))
            .collect()
    }
}

/// `forget.lua`'s reply.
fn forgot(reply: &[i64]) -> Forgot {
    match reply.first() {
        Some(1) => Forgot::Held,
        Some(2) => Forgot::Waited,
        _ => Forgot::Removed(
            FORGOTTEN
                .iter()
                .zip(reply.iter().skip(1))
                .filter(|(_, n)| **n > 0)
                .map(|(what, _)| *what)
                .collect(),
        ),
    }
}

/// The tick of a stored claim: `TICK STATE TOKEN PREV`, or a bare number
/// (older versions).
fn claimed_tick(v: &str) -> Option<u64> {
    v.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_names_what_was_removed() {
        assert_eq!(forgot(&[1]), Forgot::Held);
        assert_eq!(forgot(&[2]), Forgot::Waited);
        assert_eq!(
            forgot(&[0, 0, 0, 0, 0, 0, 1, 1, 1, 0]),
            Forgot::Removed(vec![
                "the tick claim",
                "the fencing counter",
                "the run history"
            ])
        );
        // The script's KEYS, after the lock, are FORGOTTEN's.
        let header: Vec<&str> = scripts::FORGET
            .body
            .lines()
            .filter(|l| l.starts_with("-- KEYS["))
            .collect();
        assert_eq!(header.len(), 1 + FORGOTTEN.len(), "{header:?}");
    }

    #[test]
    fn claims_old_and_new() {
        assert_eq!(
            claimed_tick("1764921600000 c tok -1"),
            Some(1_764_921_600_000)
        );
        assert_eq!(claimed_tick("1764921600000"), Some(1_764_921_600_000));
        assert_eq!(claimed_tick("-1 c tok -1"), None);
    }
}
