//! The reference model's `--limit N` (N > 1) requests: the lock is a
//! sorted set of holder tokens scored by lease end (the server's clock),
//! the holders' descriptions a hash by token.

use super::reference::{Mode, Model, QTTL, R, Reply, claim_str};
use super::store::WrongType;

impl Model {
    pub(super) fn prune(&mut self) -> Result<usize, WrongType> {
        let k = self.k.clone();
        let gone = self.s.zrem_upto(&k.lock, self.s.now as f64)?;
        if !gone.is_empty() {
            let refs: Vec<&str> = gone.iter().map(String::as_str).collect();
            self.s.hdel(&k.holders, &refs)?;
        }
        Ok(gone.len())
    }

    pub(super) fn live(&self, tok: &str) -> Result<bool, WrongType> {
        Ok(self
            .s
            .zscore(&self.k.lock, tok)?
            .is_some_and(|s| s > self.s.now as f64))
    }

    /// No holder, no queued and no woken waiter; another application's
    /// data at the queue's name counts as no waiter of ours.
    pub(super) fn idle(&mut self) -> Result<bool, WrongType> {
        Ok(self.none_woken()?
            && self.s.zcard(&self.k.lock)? == 0
            && self.s.zcard(&self.k.waiters).unwrap_or(0) == 0)
    }

    pub(super) fn acquire_n(&mut self, token: &str, ttl: i64, json: &str, mode: &Mode) -> R {
        let k = self.k.clone();
        let n = self.limit as usize;
        let stored = self.s.get(&k.limit)?;
        if let Some(st) = &stored {
            if st.parse::<u64>().ok() != Some(u64::from(self.limit)) {
                return Ok(Reply::Mismatch {
                    stored: st.parse().unwrap_or(0),
                });
            }
        }
        match self.s.type_of(&k.lock) {
            "string" => return Ok(Reply::Mismatch { stored: 1 }),
            "none" => {}
            "zset" if stored.is_some() => {}
            _ => return Err(WrongType),
        }
        self.foreign(&[
            (&k.fence, "string"),
            (&k.holders, "hash"),
            (&k.limit, "string"),
        ])?;
        self.foreign_counter()?;
        self.mode_names(mode)?;
        let now = self.s.now;
        if let Mode::Wait { waiter, .. } = mode {
            self.s.zrem(&k.woken, &[waiter])?;
        }
        self.prune()?;
        let hold = |m: &mut Model| -> Result<(), WrongType> {
            m.s.zadd(&k.lock, (now + ttl) as f64, token)?;
            m.s.keep(&k.lock, ttl);
            m.s.keep(&k.holders, ttl);
            m.set_limit(&m.limit.to_string(), ttl);
            if let Mode::Wait { waiter, .. } = mode {
                m.s.zrem(&k.waiters, &[waiter])?;
            }
            Ok(())
        };
        if self.live(token)? {
            hold(self)?;
            let d = self
                .s
                .hash(&k.holders)?
                .get(token)
                .cloned()
                .unwrap_or_default();
            let f = d
                .strip_prefix("{\"fencing_token\":")
                .map(|r| {
                    r.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return Ok(Reply::Granted { fencing: f });
        }
        let mut prev = -1;
        if let Mode::Tick { tick, bound } = mode {
            let gate = self.tick_gate(
                *tick,
                *bound,
                |m, t| m.live(t).unwrap_or(false),
                |m, t| Reply::Held {
                    pttl: m.s.zscore(&m.k.lock, t).ok().flatten().unwrap_or(0.0) as i64 - now,
                    token: t.into(),
                    same_tick: true,
                },
            )?;
            match gate {
                Err(r) => return Ok(r),
                Ok(p) => prev = p,
            }
        }
        if self.s.zcard(&k.lock)? < n {
            hold(self)?;
            let fence = self.next_fence()?;
            let rest = &json[1..];
            let rest = if rest == "}" {
                rest.to_string()
            } else {
                format!(",{rest}")
            };
            self.s.hset(
                &k.holders,
                token,
                &format!("{{\"fencing_token\":{fence}{rest}"),
            )?;
            self.s.keep(&k.holders, ttl);
            if let Mode::Tick { tick, .. } = mode {
                self.s
                    .set(&k.tick, &claim_str(*tick, "c", token, prev), None);
            }
            return Ok(Reply::Granted { fencing: fence });
        }
        if let Mode::Wait { score, waiter } = mode {
            self.s.zadd(&k.waiters, *score as f64, waiter)?;
            self.s.pexpire(&k.waiters, QTTL);
            self.set_limit(&self.limit.to_string(), QTTL);
        }
        let first = self
            .s
            .zrange(&k.lock)?
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(Reply::Held {
            pttl: first.1 as i64 - now,
            token: first.0,
            same_tick: false,
        })
    }

    pub(super) fn extend_n(&mut self, token: &str, ms: i64, entry: &str) -> R {
        let k = self.k.clone();
        match self.s.type_of(&k.lock) {
            "none" => return Ok(Reply::Int(0)),
            "zset" => {}
            _ => return Ok(Reply::Int(-1)),
        }
        if self.foreign_set() {
            return Ok(Reply::Int(-1));
        }
        self.foreign(&[(&k.holders, "hash"), (&k.limit, "string")])?;
        if self.live(token)? {
            let now = self.s.now;
            self.s.zadd(&k.lock, (now + ms) as f64, token)?;
            self.s.keep(&k.lock, ms);
            self.s.keep(&k.holders, ms);
            self.s.keep(&k.limit, ms);
            self.record(entry, true)?;
            return Ok(Reply::Int(1));
        }
        if self.s.zrem(&k.lock, &[token])? == 1 {
            self.s.hdel(&k.holders, &[token])?;
        }
        Ok(Reply::Int(0))
    }

    pub(super) fn release_n(&mut self, token: &str, entry: &str) -> R {
        let k = self.k.clone();
        let mut kind = self.s.type_of(&k.lock);
        if self.foreign_set() {
            kind = "foreign";
        }
        if kind == "zset" {
            let now = self.s.now;
            if let Some(score) = self.s.zscore(&k.lock, token)? {
                self.foreign(&[
                    (&k.holders, "hash"),
                    (&k.waiters, "zset"),
                    (&k.released, "list"),
                    (&k.limit, "string"),
                    (&k.woken, "zset"),
                ])?;
                self.s.zrem(&k.lock, &[token])?;
                self.s.hdel(&k.holders, &[token])?;
                let pruned = self.prune()?;
                for _ in 0..=pruned {
                    let w = self.wake_next()?;
                    self.note_woken(w.as_deref())?;
                }
                if self.idle()? {
                    self.s.del(&k.holders);
                    self.s.del(&k.limit);
                }
                self.record(entry, false)?;
                self.note_released(token)?;
                return Ok(Reply::Int(if score > now as f64 { 1 } else { 0 }));
            }
        }
        if self.released_before(token)? {
            return Ok(Reply::Int(1));
        }
        let other = if self.checks {
            kind != "none" && kind != "zset"
        } else {
            kind == "string"
        };
        Ok(Reply::Int(if other { -1 } else { 0 }))
    }

    pub(super) fn undo_n(&mut self, token: &str, waiter: Option<(u64, &str)>) -> R {
        let k = self.k.clone();
        if self.foreign_set() {
            return Err(WrongType);
        }
        self.foreign(&[
            (&k.tick, "string"),
            (&k.holders, "hash"),
            (&k.limit, "string"),
            (&k.woken, "zset"),
        ])?;
        // The queue is written, and so checked, only to put a waiter back.
        if waiter.is_some() {
            self.foreign(&[(&k.waiters, "zset")])?;
        }
        self.put_back_claim(token)?;
        if self.s.type_of(&k.lock) != "zset" || self.s.zrem(&k.lock, &[token])? == 0 {
            return Ok(Reply::Int(0));
        }
        self.s.hdel(&k.holders, &[token])?;
        if let Some((score, w)) = waiter {
            self.s.zadd(&k.waiters, score as f64, w)?;
            self.s.pexpire(&k.waiters, QTTL);
        }
        if self.idle()? {
            self.s.del(&k.holders);
            self.s.del(&k.limit);
        }
        Ok(Reply::Int(1))
    }

    pub(super) fn leave_n(&mut self, token: &str, waiter: &str) -> R {
        let k = self.k.clone();
        if self.foreign_set() {
            return Err(WrongType);
        }
        self.foreign(&[
            (&k.holders, "hash"),
            (&k.waiters, "zset"),
            (&k.limit, "string"),
            (&k.woken, "zset"),
        ])?;
        self.s.zrem(&k.waiters, &[waiter])?;
        let kind = self.s.type_of(&k.lock);
        if kind == "zset" || kind == "none" {
            if self.s.zrem(&k.lock, &[token])? == 1 {
                self.s.hdel(&k.holders, &[token])?;
            }
            self.s.zrem(&k.woken, &[waiter])?;
            self.prune()?;
            if self.s.zcard(&k.lock)? < self.limit as usize {
                let w = self.wake_next()?;
                self.note_woken(w.as_deref())?;
            }
            if self.idle()? {
                self.s.del(&k.holders);
                self.s.del(&k.limit);
            }
        }
        Ok(Reply::Int(1))
    }
}
