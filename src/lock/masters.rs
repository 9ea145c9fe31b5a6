//! Sanity checks of a quorum's masters, warned about once at start: an
//! even count buys no extra fault tolerance (and two, the count people
//! give expecting failover, stop every run when one is down), and the same server listed
//! twice (under two names) silently breaks the independence Redlock needs.

use std::collections::HashMap;
use std::time::Duration;

use super::Locker;

impl Locker {
    /// Warn (once, on stderr) about an even number of masters or two URLs
    /// that reach the same server (same `run_id`). Nothing to do (and no
    /// request) with one master.
    pub(crate) async fn check_masters(&mut self) {
        let n = self.nodes.len();
        if n < 2 {
            return;
        }
        if n == 2 {
            // People list two URLs expecting failover: say what it is.
            tracing::warn!(
                "2 masters: the quorum needs both, so one server down stops every run; \
                 several --redis URLs are a Redlock quorum, not failover (for failover, \
                 give one redis+sentinel:// URL); use an odd number, 3 or more"
            );
        } else if n % 2 == 0 {
            tracing::warn!(
                "{n} masters tolerate no more failures than {} (the quorum needs {}): \
                 use an odd number",
                n - 1,
                n / 2 + 1
            );
        }
        // Short: it only informs, and it comes out of --timeout (and adds
        // to --timeout 0's one attempt).
        let timeout = self.node_timeout().min(Duration::from_millis(250));
        let mut pipe = redis::pipe();
        pipe.cmd("INFO").arg("server");
        let infos = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.query::<(String,)>(&pipe, timeout)),
        )
        .await;
        let mut seen: HashMap<String, &str> = HashMap::new();
        for (node, info) in self.nodes.iter().zip(&infos) {
            let Ok((info,)) = info else { continue };
            let Some(run_id) = info
                .lines()
                .find_map(|l| l.strip_prefix("run_id:"))
                .map(str::trim)
            else {
                continue;
            };
            if let Some(first) = seen.insert(run_id.to_string(), node.name()) {
                self.distinct = false;
                tracing::warn!(
                    "{first} and {} are the same Redis server (run_id {run_id}): \
                     quorum masters must be independent",
                    node.name()
                );
            }
        }
    }
}
