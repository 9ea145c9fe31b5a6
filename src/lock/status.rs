//! Reading a lock's state on every master, for `redlock-run status`.

use std::time::Duration;

use super::{Holder, HolderInfo, Locker, RunEntry};

/// What one master says about the lock.
#[derive(Debug, Clone)]
pub struct MasterState {
    pub name: String,
    /// None when the master could not be asked.
    pub value: Result<Option<Snapshot>, String>,
    pub fencing_token: Option<u64>,
    /// Its run history (JSON entries, newest first).
    pub history: Vec<String>,
}

/// The lock as one master holds it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub holder: Holder,
    /// Remaining lease in ms; None when the key has no expiry.
    pub ttl_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Status {
    pub key: String,
    pub masters: Vec<MasterState>,
    pub quorum: usize,
}

impl Status {
    pub fn reachable(&self) -> usize {
        self.masters.iter().filter(|m| m.value.is_ok()).count()
    }

    /// The snapshot held (same token) on a quorum of masters, if any.
    pub fn held(&self) -> Option<&Snapshot> {
        let snaps: Vec<&Snapshot> = self
            .masters
            .iter()
            .filter_map(|m| m.value.as_ref().ok().and_then(Option::as_ref))
            .collect();
        snaps.iter().copied().find(|s| {
            snaps
                .iter()
                .filter(|o| o.holder.token == s.holder.token)
                .count()
                >= self.quorum
        })
    }

    /// The fencing counter as far as it can be known, and what it means;
    /// None while no token was issued (or too few masters answered).
    ///
    /// With one master the counter is the last token issued. With several,
    /// a granting master `INCR`s its own counter, so a failed attempt
    /// pushes single counters up and the highest one can exceed every token
    /// ever issued; but each issued token is written back to a quorum (a
    /// max-register), and any two quorums overlap. So the highest value
    /// that a quorum of masters has reached is at least every token issued
    /// so far and below the next one (while the lock is held, exactly the
    /// holder's token). When some masters did not answer, only an upper
    /// bound is known: among the `r` that answered, at least `r - (n -
    /// quorum)` are in the quorum that carries the last token.
    pub fn fencing(&self) -> Option<(u64, FenceKind)> {
        let n = self.masters.len();
        let mut counters: Vec<u64> = self
            .masters
            .iter()
            .filter(|m| m.value.is_ok())
            .map(|m| m.fencing_token.unwrap_or(0))
            .collect();
        counters.sort_unstable_by(|a, b| b.cmp(a));
        let kind = if n == 1 {
            FenceKind::LastIssued
        } else if counters.len() == n {
            FenceKind::QuorumBound
        } else {
            FenceKind::UpperBound
        };
        let rank = (counters.len() + self.quorum).checked_sub(n + 1)?;
        counters
            .get(rank)
            .copied()
            .filter(|&t| t > 0)
            .map(|t| (t, kind))
    }

    /// The run history as the masters tell it, newest first: one entry per
    /// run (fencing token); where masters disagree about a run, `lost`
    /// wins (the release that recorded it did not reach a quorum).
    pub fn last_runs(&self) -> Vec<RunEntry> {
        let mut runs: Vec<RunEntry> = Vec::new();
        for m in self.masters.iter().filter(|m| m.value.is_ok()) {
            for e in &m.history {
                let Ok(run) = serde_json::from_str::<RunEntry>(e) else {
                    continue;
                };
                let same = runs
                    .iter_mut()
                    .find(|r| r.fencing_token == run.fencing_token && r.pid == run.pid);
                match same {
                    Some(r) if run.outcome == "lost" => *r = run,
                    Some(_) => {}
                    None => runs.push(run),
                }
            }
        }
        runs.sort_by(|a, b| b.ended.cmp(&a.ended));
        runs.truncate(super::HISTORY_LEN);
        runs
    }
}

/// What [`Status::fencing`]'s value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceKind {
    /// One master: the last token issued.
    LastIssued,
    /// Every master answered: the highest value a quorum of them reached;
    /// every token issued so far is at most this, the next will be higher.
    QuorumBound,
    /// Some masters did not answer: every token issued so far is at most this.
    UpperBound,
}

impl FenceKind {
    /// The name `status --json` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            FenceKind::LastIssued => "last_issued",
            FenceKind::QuorumBound => "quorum_bound",
            FenceKind::UpperBound => "upper_bound",
        }
    }
}

impl Locker {
    pub async fn status(&mut self) -> Status {
        let timeout = self.lease.io_timeout();
        let mut pipe = redis::pipe();
        pipe.get(&self.keys.lock)
            .pttl(&self.keys.lock)
            .get(&self.keys.holder)
            .get(&self.keys.fence)
            .lrange(&self.keys.history, 0, super::HISTORY_LEN as isize - 1);
        let results = futures_util::future::join_all(self.nodes.iter_mut().map(|node| {
            let pipe = &pipe;
            async move {
                let name = node.name().to_string();
                let r = node
                    .query::<(
                        Option<String>,
                        i64,
                        Option<String>,
                        Option<u64>,
                        Vec<String>,
                    )>(pipe, timeout)
                    .await;
                (name, r)
            }
        }))
        .await;
        let masters = results
            .into_iter()
            .map(|(name, r)| match r {
                Ok((value, pttl, info, fence, history)) => MasterState {
                    name,
                    value: Ok(value.map(|token| Snapshot {
                        holder: Holder {
                            info: info.and_then(|i| HolderInfo::parse_for(&i, &token)),
                            token,
                        },
                        ttl_ms: (pttl >= 0).then_some(pttl as u64),
                    })),
                    fencing_token: fence,
                    history,
                },
                Err(e) => MasterState {
                    name,
                    value: Err(e.to_string()),
                    fencing_token: None,
                    history: Vec::new(),
                },
            })
            .collect();
        Status {
            key: self.keys.lock.clone(),
            masters,
            quorum: self.quorum(),
        }
    }
}

/// Human form of a remaining lease.
pub fn format_ttl(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => humantime::format_duration(Duration::from_millis(ms)).to_string(),
        None => "no expiry".to_string(),
    }
}
