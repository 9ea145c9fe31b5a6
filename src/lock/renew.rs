//! Renewing the lease: compare-and-PEXPIRE on every master; renewed only
//! when a quorum said yes within the validity, lost when a quorum says the
//! token is gone.

use std::time::Duration;

use super::fanout::{self, Verdict, Votes};
use super::node::NodeError;
use super::{Count, Locker, Renewal, scripts};
use crate::clock::BootInstant;

impl Locker {
    /// Renew the lease (compare-and-PEXPIRE on every master), each request
    /// bounded by `timeout`.
    pub async fn renew(&mut self, token: &str, timeout: Duration) -> Renewal {
        let n = self.nodes.len();
        let quorum = self.quorum();
        let call = scripts::extend(&self.keys, self.lease.limit, token, self.lease.ttl, None);
        let call = &call;
        let start = BootInstant::now();
        let mut votes = Renewals {
            n,
            quorum,
            count: Count::default(),
            errors: Vec::new(),
        };
        let requests = self
            .nodes
            .iter_mut()
            .enumerate()
            .map(|(i, node)| async move {
                // --wait-replicas: an unacknowledged renewal is a failed one.
                let r = node.eval_acked::<i64>(call, timeout, |r| *r == 1).await;
                (i, r)
            });
        fanout::gather(requests, &mut votes, timeout).await;
        let Renewals { count, errors, .. } = votes;
        let (yes, deleted, replaced) = (count.yes, count.absent, count.taken);
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
        let valid_until = self.lease.valid_until(start);
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

/// Replies to a renewal: extended, key gone, another holder's value.
struct Renewals {
    n: usize,
    quorum: usize,
    count: Count,
    errors: Vec<String>,
}

impl Votes<Result<i64, NodeError>> for Renewals {
    fn record(&mut self, _: usize, r: Result<i64, NodeError>) {
        match r {
            Ok(1) => self.count.yes += 1,
            Ok(0) => self.count.absent += 1,
            Ok(_) => self.count.taken += 1,
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    fn verdict(&self) -> Verdict {
        if self.count.yes >= self.quorum {
            Verdict::Won
        } else if self.count.absent + self.count.taken > self.n - self.quorum {
            Verdict::Lost
        } else {
            Verdict::Open
        }
    }
}
