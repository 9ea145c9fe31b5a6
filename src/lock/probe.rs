//! A look before the first use: can this user run the lock's scripts on
//! every master? `schedule` asks it at start, so that a refused password
//! or an ACL denial ends it at once (exit 69) instead of skipping every
//! tick for ever, while a server that is merely down is waited for.

use std::time::Duration;

use super::{Locker, NodeError, scripts};

/// What the masters said to [`Locker::check_access`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A quorum of masters answered, and too few refused us to matter.
    Ready,
    /// Too many masters refused us for a quorum ever to be possible (a
    /// password, an ACL, a bad database number): retrying cannot help.
    Refused(String),
    /// Too few masters answered for now.
    Unreachable(String),
}

impl Locker {
    /// Run `lua/probe.lua` on every master (each within `timeout`). A
    /// master that refuses while a quorum remains is warned about.
    pub(crate) async fn check_access(&mut self, timeout: Duration) -> Probe {
        // One EVAL with the text (not a cached script): it runs once per
        // start.
        let mut pipe = redis::pipe();
        pipe.add_command(scripts::probe(&self.keys).eval_cmd());
        let results = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.query::<(i64,)>(&pipe, timeout)),
        )
        .await;
        let (n, quorum) = (self.nodes.len(), self.quorum());
        let mut refused = Vec::new();
        let mut unreachable = Vec::new();
        for r in results {
            match r {
                Ok(_) => {}
                Err(e @ (NodeError::Auth(..) | NodeError::Server(..))) => {
                    refused.push(e.to_string())
                }
                Err(e) => unreachable.push(e.to_string()),
            }
        }
        if refused.len() > n - quorum {
            return Probe::Refused(refused.join("; "));
        }
        for why in &refused {
            tracing::warn!("{}", crate::exit::advised(why));
        }
        if refused.len() + unreachable.len() > n - quorum {
            return Probe::Unreachable(unreachable.join("; "));
        }
        Probe::Ready
    }
}
