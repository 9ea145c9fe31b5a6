//! Renewing the lease: compare-and-PEXPIRE on every master; renewed only
//! when a quorum said yes within the validity, lost when a quorum says the
//! token is gone.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::acquire::straggler_grace;
use super::node::NodeError;
use super::{Locker, Renewal, scripts};
use crate::clock::BootInstant;

impl Locker {
    /// Renew the lease (compare-and-PEXPIRE on every master), each request
    /// bounded by `timeout`.
    pub async fn renew(&mut self, token: &str, timeout: Duration) -> Renewal {
        let n = self.nodes.len();
        let quorum = self.quorum();
        let ttl_ms = self.lease.ttl.as_millis().to_string();
        let keys = [
            self.keys.lock.as_str(),
            self.keys.fence.as_str(),
            self.keys.holder.as_str(),
        ];
        let args = [token, ttl_ms.as_str()];
        let start = BootInstant::now();
        let (yes, deleted, replaced);
        let mut errors = Vec::new();
        {
            let mut pending: FuturesUnordered<_> = self
                .nodes
                .iter_mut()
                .map(|node| {
                    // --wait-replicas: a renewal counts once replicated.
                    node.eval_acked::<i64>(&scripts::EXTEND, &keys, &args, timeout, |r| *r == 1)
                })
                .collect();
            let record =
                |r: Result<i64, NodeError>, c: &mut [usize; 3], e: &mut Vec<String>| match r {
                    Ok(1) => c[0] += 1,
                    Ok(0) => c[1] += 1,
                    Ok(_) => c[2] += 1,
                    Err(err) => e.push(err.to_string()),
                };
            let mut c = [0usize; 3];
            while let Some(r) = pending.next().await {
                record(r, &mut c, &mut errors);
                if c[0] >= quorum || c[1] + c[2] > n - quorum {
                    break;
                }
            }
            // Renewed: let the other masters' renewals land too (briefly),
            // so the lease does not shrink to a bare quorum.
            if c[0] >= quorum && !pending.is_empty() {
                let grace = straggler_grace(start.elapsed(), timeout);
                let _ = tokio::time::timeout(grace, async {
                    while let Some(r) = pending.next().await {
                        record(r, &mut c, &mut errors);
                    }
                })
                .await;
            }
            (yes, deleted, replaced) = (c[0], c[1], c[2]);
        }
        if deleted + replaced > n - quorum {
            let why = if replaced > 0 {
                "the key now holds another holder's value"
            } else {
                "the key was deleted or expired"
            };
            return Renewal::Lost(if self.is_quorum() {
                format!("{why} on {} of {n} masters", deleted + replaced)
            } else {
                why.to_string()
            });
        }
        let valid_until = (start + self.lease.ttl).saturating_sub(self.lease.drift());
        if yes >= quorum && valid_until > BootInstant::now() {
            return Renewal::Extended { valid_until };
        }
        if errors.is_empty() {
            Renewal::Failed(format!("renewed on {yes} of {quorum} masters needed"))
        } else {
            Renewal::Failed(errors.join("; "))
        }
    }
}
