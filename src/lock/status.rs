//! Reading a lock's state on every master, for `redlock-run status` and
//! `list`: one pipeline per master, whichever shape the lock has (a plain
//! string with one holder, or with `--limit N` a sorted set of holders
//! scored by lease end on Redis's clock, read with Redis's `TIME` in the
//! same round trip).

use std::collections::HashMap;

use redis::Value;

use super::{Holder, HolderInfo, Locker, RunEntry};

/// What one master says about the lock.
#[derive(Debug, Clone)]
pub(crate) struct MasterState {
    pub(crate) name: String,
    /// The holder (with `--limit`, the one whose lease ends first); None
    /// when free; Err when the master could not be asked or read.
    pub(crate) value: Result<Option<Snapshot>, String>,
    /// Every live holder: with `--limit`, the members of the sorted set
    /// whose lease has not ended by Redis's clock; else the one holder.
    pub(crate) holders: Vec<Snapshot>,
    /// KEY is a `--limit` sorted set here.
    pub(crate) shared: bool,
    /// The N of `--limit` stored for the key's holders and waiters.
    pub(crate) limit: Option<u64>,
    pub(crate) fencing_token: Option<u64>,
    /// Its run history (JSON entries, newest first).
    pub(crate) history: Vec<String>,
}

impl MasterState {
    /// A master that could not be asked or read.
    pub(crate) fn failed(name: String, why: String) -> Self {
        MasterState {
            name,
            value: Err(why),
            holders: Vec::new(),
            shared: false,
            limit: None,
            fencing_token: None,
            history: Vec::new(),
        }
    }
}

/// One holder as one master holds it.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) holder: Holder,
    /// Remaining lease in ms; None when the key has no expiry.
    pub(crate) ttl_ms: Option<u64>,
    /// This holder's fencing token, where it is known: with `--limit`
    /// from its description; with one holder, [`Status::holders`] fills
    /// in the counter.
    pub(crate) fencing_token: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub(crate) key: String,
    pub(crate) masters: Vec<MasterState>,
    pub(crate) quorum: usize,
}

impl Status {
    pub(crate) fn reachable(&self) -> usize {
        self.masters.iter().filter(|m| m.value.is_ok()).count()
    }

    /// The snapshot held (same token) on a quorum of masters, if any.
    pub(crate) fn held(&self) -> Option<&Snapshot> {
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

    /// No trace of the key on any master (all of them answered): no lock,
    /// no fencing counter, no run history, no stored `--limit` (a typo in a
    /// key's name looks like this).
    pub(crate) fn never_used(&self) -> bool {
        self.reachable() == self.masters.len()
            && self.answered().all(|m| {
                matches!(m.value, Ok(None))
                    && !m.shared
                    && m.fencing_token.is_none()
                    && m.history.is_empty()
                    && m.limit.is_none()
            })
    }

    /// KEY is a `--limit` lock (a sorted set of holders) on some master.
    pub(crate) fn is_shared(&self) -> bool {
        self.answered().any(|m| m.shared)
    }

    /// The N of `--limit` the key is used with: what is stored for its
    /// holders and waiters; for a one-holder lock or an unused key without
    /// a stored N, 1; None for a `--limit` lock whose N is not stored.
    pub(crate) fn limit(&self) -> Option<u64> {
        let stored = self.answered().filter_map(|m| m.limit).max();
        if self.is_shared() {
            stored
        } else {
            Some(stored.unwrap_or(1))
        }
    }

    /// Every live holder a quorum of masters agrees on (same token), in
    /// the order they acquired (by fencing token). With one holder: the
    /// one [`Status::held`] names, with the counter as its fencing token
    /// (exact unless some master did not answer).
    pub(crate) fn holders(&self) -> Vec<Snapshot> {
        if !self.is_shared() {
            let exact = self
                .fencing()
                .filter(|(_, k)| *k != FenceKind::UpperBound)
                .map(|(t, _)| t);
            return self
                .held()
                .map(|s| Snapshot {
                    fencing_token: exact,
                    ..s.clone()
                })
                .into_iter()
                .collect();
        }
        let mut on: HashMap<&str, (usize, &Snapshot)> = HashMap::new();
        for s in self.answered().flat_map(|m| &m.holders) {
            on.entry(&s.holder.token).or_insert((0, s)).0 += 1;
        }
        let mut agreed: Vec<Snapshot> = on
            .into_values()
            .filter(|(n, _)| *n >= self.quorum)
            .map(|(_, s)| s.clone())
            .collect();
        agreed.sort_by(|a, b| {
            (a.fencing_token, &a.holder.token).cmp(&(b.fencing_token, &b.holder.token))
        });
        agreed
    }

    /// The masters that answered.
    fn answered(&self) -> impl Iterator<Item = &MasterState> {
        self.masters.iter().filter(|m| m.value.is_ok())
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
    pub(crate) fn fencing(&self) -> Option<(u64, FenceKind)> {
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
    pub(crate) fn last_runs(&self) -> Vec<RunEntry> {
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
pub(crate) enum FenceKind {
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
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FenceKind::LastIssued => "last_issued",
            FenceKind::QuorumBound => "quorum_bound",
            FenceKind::UpperBound => "upper_bound",
        }
    }
}

impl Locker {
    pub(crate) async fn status(&mut self) -> Status {
        let timeout = self.lease.io_timeout();
        let k = &self.keys;
        // Replies in the order [`read`] takes them. Per-command errors
        // come back as values: GET fails on a `--limit` sorted set, ZRANGE
        // on a one-holder string, and only the reads the shape needs count.
        let mut pipe = redis::pipe();
        pipe.ignore_errors()
            .get(&k.lock)
            .pttl(&k.lock)
            .get(&k.holder)
            .get(&k.fence)
            .lrange(&k.history, 0, super::HISTORY_LEN as isize - 1)
            .get(&k.limit)
            .cmd("TIME")
            .zrange_withscores(&k.lock, 0, -1)
            .hgetall(&k.holders);
        let results = futures_util::future::join_all(self.nodes.iter_mut().map(|node| {
            let pipe = &pipe;
            async move {
                let name = node.name().to_string();
                let r = node.query::<Vec<Value>>(pipe, timeout).await;
                (name, r)
            }
        }))
        .await;
        let masters = results
            .into_iter()
            .map(|(name, r)| {
                match r
                    .map_err(|e| e.to_string())
                    .and_then(|v| read(v).map_err(|e| format!("{name}: {e}")))
                {
                    Ok(m) => MasterState { name, ..m },
                    Err(e) => MasterState::failed(name, e),
                }
            })
            .collect();
        Status {
            key: self.keys.lock.clone(),
            masters,
            quorum: self.quorum(),
        }
    }
}

/// One reply as `T`, or the server's error.
fn reply<T: redis::FromRedisValue>(v: Value) -> Result<T, String> {
    match v {
        Value::ServerError(e) => Err(redis::RedisError::from(e).to_string()),
        v => redis::from_redis_value(v).map_err(|e| e.to_string()),
    }
}

/// A master's state from the replies to [`Locker::status`]'s pipeline.
fn read(replies: Vec<Value>) -> Result<MasterState, String> {
    let n = replies.len();
    let [
        value,
        pttl,
        info,
        fence,
        history,
        limit,
        time,
        members,
        descriptions,
    ]: [Value; 9] = replies
        .try_into()
        .map_err(|_| format!("{n} replies to 9 requests"))?;
    let mut m = MasterState::failed(String::new(), String::new());
    m.fencing_token = reply(fence)?;
    m.history = reply(history)?;
    match value {
        Value::ServerError(e) if e.code() == "WRONGTYPE" => {
            // Not a string: a `--limit` lock, or not a lock (then ZRANGE
            // fails too, and so does the read).
            let members: Vec<(String, f64)> = reply(members)?;
            let (secs, micros): (u64, u64) = reply(time)?;
            let now = secs * 1000 + micros / 1000;
            let descriptions: HashMap<String, String> = reply(descriptions)?;
            m.limit = reply::<Option<String>>(limit)?.and_then(|l| l.parse().ok());
            m.shared = true;
            m.holders = members
                .into_iter()
                // Lease ended by Redis's clock: gone, pruned or not.
                .filter(|(_, end)| *end > now as f64)
                .map(|(token, end)| {
                    let d = descriptions.get(&token).map(String::as_str);
                    Snapshot {
                        fencing_token: d.and_then(own_fencing_token),
                        holder: Holder {
                            info: d.and_then(|d| HolderInfo::parse_for(d, &token)),
                            token,
                        },
                        ttl_ms: Some((end - now as f64) as u64),
                    }
                })
                .collect();
            m.value = Ok(m.holders.iter().min_by_key(|s| s.ttl_ms).cloned());
        }
        value => {
            let value: Option<String> = reply(value)?;
            let pttl: i64 = reply(pttl)?;
            let info: Option<String> = reply(info)?;
            // Only waiters store N beside a one-holder lock: a read the
            // server refuses (an ACL without it) is not the lock's.
            m.limit = reply::<Option<String>>(limit)
                .ok()
                .flatten()
                .and_then(|l| l.parse().ok());
            let snap = value.map(|token| Snapshot {
                holder: Holder {
                    info: info.and_then(|i| HolderInfo::parse_for(&i, &token)),
                    token,
                },
                ttl_ms: (pttl >= 0).then_some(pttl as u64),
                fencing_token: None,
            });
            m.holders = snap.iter().cloned().collect();
            m.value = Ok(snap);
        }
    }
    Ok(m)
}

/// The fencing token a `--limit` holder's description carries.
fn own_fencing_token(description: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Own {
        fencing_token: u64,
    }
    serde_json::from_str::<Own>(description)
        .ok()
        .map(|o| o.fencing_token)
}
