//! Reading a lock's state on every master, for `redlock-run status`.

use std::time::Duration;

use super::{Holder, Locker};

/// What one master says about the lock.
#[derive(Debug, Clone)]
pub struct MasterState {
    pub name: String,
    /// None when the master could not be asked.
    pub value: Result<Option<Snapshot>, String>,
    pub fencing_token: Option<u64>,
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

    pub fn fencing_token(&self) -> Option<u64> {
        self.masters.iter().filter_map(|m| m.fencing_token).max()
    }
}

impl Locker {
    pub async fn status(&mut self) -> Status {
        let timeout = self.lease.io_timeout();
        let mut pipe = redis::pipe();
        pipe.get(&self.keys.lock)
            .pttl(&self.keys.lock)
            .get(&self.keys.holder)
            .get(&self.keys.fence);
        let results = futures_util::future::join_all(self.nodes.iter_mut().map(|node| {
            let pipe = &pipe;
            async move {
                let name = node.name().to_string();
                let r = node
                    .query::<(Option<String>, i64, Option<String>, Option<u64>)>(pipe, timeout)
                    .await;
                (name, r)
            }
        }))
        .await;
        let masters = results
            .into_iter()
            .map(|(name, r)| match r {
                Ok((value, pttl, info, fence)) => MasterState {
                    name,
                    value: Ok(value.map(|token| Snapshot {
                        holder: Holder {
                            info: info
                                .and_then(|i| serde_json::from_str::<serde_json::Value>(&i).ok())
                                .filter(|v| v["token"].as_str() == Some(token.as_str())),
                            token,
                        },
                        ttl_ms: (pttl >= 0).then_some(pttl as u64),
                    })),
                    fencing_token: fence,
                },
                Err(e) => MasterState {
                    name,
                    value: Err(e.to_string()),
                    fencing_token: None,
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
