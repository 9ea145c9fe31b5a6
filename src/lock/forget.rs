//! What `release --force` finds to remove besides the lock (schedule's
//! tick claim), read just before it removes them, so that it can say what
//! it removed.

use std::time::Duration;

use super::Locker;

impl Locker {
    /// schedule's tick claim on each master that answered: the tick's time
    /// (ms since the epoch) when there is one.
    pub async fn tick_claims(&mut self, timeout: Duration) -> Vec<Option<u64>> {
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

/// The tick of a stored claim: `TICK STATE TOKEN PREV`, or a bare number
/// (older versions).
fn claimed_tick(v: &str) -> Option<u64> {
    v.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
