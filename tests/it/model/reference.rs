//! The reference model: what each step of the lock protocol does to the
//! keys of one lock, in plain Rust over [`Store`]. Written from the
//! protocol's description (docs/design.md, the spec), one function per
//! request a client sends. A request the server refuses (another type at a
//! name it uses, out of memory, no permission) changes nothing: the model
//! runs each request on a copy and keeps it only when it succeeded.

use std::collections::BTreeSet;

use redlock_run::Keys;

use super::store::{Store, WrongType};

/// How long an abandoned waiters' queue (and a woken waiter) counts.
pub const QTTL: i64 = 60_000;
/// How many finished runs the history keeps.
pub const HISTORY: usize = 20;
/// How many released tokens are remembered, and for how long.
pub const RELEASED: usize = 16;
pub const RELEASED_TTL: i64 = 30_000;

/// What a script answered, as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Granted {
        fencing: u64,
    },
    Held {
        pttl: i64,
        token: String,
        same_tick: bool,
    },
    AlreadyRan {
        last_tick: i64,
    },
    ClockAhead,
    Mismatch {
        stored: u64,
    },
    /// An integer reply (renew, release, leave, undo, force release).
    Int(i64),
}

pub type R = Result<Reply, WrongType>;

/// An acquisition's mode (the product's `Mode`).
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Once,
    Tick { tick: i64, bound: i64 },
    Wait { score: u64, waiter: String },
}

#[derive(Debug, Clone)]
pub struct Model {
    pub s: Store,
    pub k: Keys,
    /// `--limit N` of every client of this sequence.
    pub limit: u32,
    /// Waiter ids with a live subscription on their wake-up channel.
    pub subscribed: BTreeSet<String>,
    /// Waiters woken (on their own channel) by the last request.
    pub woken: Vec<String>,
    /// Whether the requesting client may publish (pub/sub channels
    /// granted): without, a release leaves the queue as it is.
    pub publish: bool,
    /// The scripts check every name they write before their first write
    /// (another application's data: refused, nothing changed).
    pub checks: bool,
    /// A new fencing token is the greater of the counter plus one and the
    /// server's clock in microseconds (else the counter plus one).
    pub clock_fencing: bool,
}

fn prelude() -> &'static str {
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/lock/lua/prelude.lua"
    ))
}

/// Whether the scripts under test check the names they write (the
/// prelude has `foreign`); before, they failed half-way.
pub fn scripts_check_names() -> bool {
    prelude().contains("local function foreign(")
}

pub(super) fn claim_str(t: i64, s: &str, tok: &str, p: i64) -> String {
    format!("{t} {s} {tok} {p}")
}

/// `TICK STATE TOKEN PREV`, or a bare number (an older version's claim).
pub(super) fn read_claim(v: Option<&str>) -> (i64, String, String, i64) {
    let Some(v) = v else {
        return (-1, "c".into(), "-".into(), -1);
    };
    let f: Vec<&str> = v.split(' ').collect();
    if f.len() == 4
        && f[0].parse::<i64>().is_ok()
        && f[1].len() == 1
        && f[1].chars().all(|c| c.is_ascii_alphabetic())
        && !f[2].is_empty()
        && f[3].parse::<i64>().is_ok()
    {
        return (
            f[0].parse().unwrap(),
            f[1].into(),
            f[2].into(),
            f[3].parse().unwrap(),
        );
    }
    (v.trim().parse().unwrap_or(-1), "c".into(), "-".into(), -1)
}

impl Model {
    pub fn new(key: &str, limit: u32) -> Self {
        Model {
            s: Store::default(),
            k: Keys::new(key),
            limit,
            subscribed: BTreeSet::new(),
            woken: Vec::new(),
            publish: true,
            checks: scripts_check_names(),
            clock_fencing: prelude().contains("local function next_fence("),
        }
    }

    /// The next fencing token, stored as the counter. With the server's
    /// clock in it, the model's is a lower bound (its clock was read a
    /// moment before the script's): the reply is taken when it lies
    /// within the tolerance above ([`Model::took_fence`]).
    pub(super) fn next_fence(&mut self) -> Result<u64, WrongType> {
        let c = match self.s.get(&self.k.fence)? {
            None => 0,
            Some(v) => v.parse::<u64>().map_err(|_| WrongType)?,
        };
        let f = if self.clock_fencing {
            (c + 1).max(self.s.now as u64 * 1000)
        } else {
            c + 1
        };
        let fence = self.k.fence.clone();
        self.s.set(&fence, &f.to_string(), None);
        Ok(f)
    }

    /// The server granted `token` the fencing token `got` where the model
    /// computed `want` from the clock it read a moment earlier: keep the
    /// server's (counter, and with --limit the holder's description).
    pub fn took_fence(&mut self, token: &str, want: u64, got: u64) {
        let fence = self.k.fence.clone();
        self.s.set(&fence, &got.to_string(), None);
        let holders = self.k.holders.clone();
        if let Ok(h) = self.s.hash(&holders) {
            if let Some(d) = h.get(token) {
                let d = d.replacen(
                    &format!("{{\"fencing_token\":{want}"),
                    &format!("{{\"fencing_token\":{got}"),
                    1,
                );
                let _ = self.s.hset(&holders, token, &d);
            }
        }
    }

    /// Another type than the lock keeps at one of these names: refused.
    pub(super) fn foreign(&self, names: &[(&str, &str)]) -> Result<(), WrongType> {
        if self.checks {
            for (k, want) in names {
                let t = self.s.type_of(k);
                if t != "none" && t != *want {
                    return Err(WrongType);
                }
            }
        }
        Ok(())
    }

    /// The fencing counter holds something else than a counter.
    pub(super) fn foreign_counter(&self) -> Result<(), WrongType> {
        match self.s.get(&self.k.fence)? {
            Some(v) if self.checks && (v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit())) => {
                Err(WrongType)
            }
            _ => Ok(()),
        }
    }

    /// The tick claim holds something else than a claim.
    pub(super) fn foreign_claim(&self) -> Result<(), WrongType> {
        let Some(v) = self.s.get(&self.k.tick)? else {
            return Ok(());
        };
        let number = |x: &str| {
            let d = x.strip_prefix('-').unwrap_or(x);
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
        };
        let f: Vec<&str> = v.split(' ').collect();
        let claim = f.len() == 4
            && number(f[0])
            && f[1].len() == 1
            && f[1].bytes().all(|b| b.is_ascii_alphabetic())
            && !f[2].is_empty()
            && number(f[3]);
        if self.checks && !number(&v) && !claim {
            return Err(WrongType);
        }
        Ok(())
    }

    /// A sorted set at KEY without a stored N: another application's.
    pub(super) fn foreign_set(&self) -> bool {
        self.checks && self.s.type_of(&self.k.lock) == "zset" && !self.s.exists(&self.k.limit)
    }

    pub(super) fn shared(&self) -> bool {
        self.limit > 1
    }

    /// Run one request all-or-nothing.
    pub fn request(&mut self, f: impl FnOnce(&mut Model) -> R) -> R {
        let mut copy = self.clone();
        copy.woken.clear();
        let r = f(&mut copy);
        if r.is_ok() {
            *self = copy;
        } else {
            self.woken.clear();
        }
        r
    }

    /// Wake the first waiter that listens, in arrival order; the ones
    /// that do not are dropped from the queue on the way.
    pub(super) fn wake_next(&mut self) -> Result<Option<String>, WrongType> {
        for _ in 0..64 {
            let Some((w, _)) = self.s.zrange(&self.k.waiters)?.into_iter().next() else {
                break;
            };
            // A refused PUBLISH wakes no one and takes no one out of the
            // queue: the waiters poll.
            if !self.publish {
                return Ok(None);
            }
            self.s.zrem(&self.k.waiters, &[&w])?;
            if self.subscribed.contains(&w) {
                self.woken.push(w.clone());
                return Ok(Some(w));
            }
        }
        Ok(None)
    }

    pub(super) fn note_woken(&mut self, w: Option<&str>) -> Result<(), WrongType> {
        if let Some(w) = w {
            let now = self.s.now as f64;
            self.s.zadd(&self.k.woken, now, w)?;
            self.s.pexpire(&self.k.woken, QTTL);
        }
        Ok(())
    }

    pub(super) fn none_woken(&mut self) -> Result<bool, WrongType> {
        let upto = (self.s.now - QTTL) as f64;
        self.s.zrem_upto(&self.k.woken, upto)?;
        Ok(self.s.zcard(&self.k.woken)? == 0)
    }

    pub(super) fn set_limit(&mut self, n: &str, ms: i64) {
        if self.s.exists(&self.k.limit) {
            self.s.keep(&self.k.limit, ms);
        } else {
            self.s.set(&self.k.limit, n, Some(ms));
        }
    }

    pub(super) fn record(&mut self, entry: &str, once: bool) -> Result<(), WrongType> {
        if entry.is_empty() {
            return Ok(());
        }
        if once {
            let head = self.s.list(&self.k.history).unwrap_or_default();
            if head.iter().take(10).any(|e| e == entry) {
                return Ok(());
            }
        }
        // A history of another type is not written (never fails a release).
        let _ = self.s.lpush_trim(&self.k.history, entry, HISTORY);
        Ok(())
    }

    pub(super) fn note_released(&mut self, token: &str) -> Result<(), WrongType> {
        self.s.lpush_trim(&self.k.released, token, RELEASED)?;
        self.s.pexpire(&self.k.released, RELEASED_TTL);
        Ok(())
    }

    pub(super) fn released_before(&self, token: &str) -> Result<bool, WrongType> {
        Ok(self.s.list(&self.k.released)?.iter().any(|t| t == token))
    }

    /// `schedule`'s gate: Ok(Err(reply)) stops the attempt, Ok(Ok(prev))
    /// lets it claim `tick`, replacing claim `prev`.
    pub(super) fn tick_gate(
        &mut self,
        tick: i64,
        bound: i64,
        holds: impl Fn(&Model, &str) -> bool,
        reply4: impl Fn(&Model, &str) -> Reply,
    ) -> Result<Result<i64, Reply>, WrongType> {
        let now = self.s.now;
        if tick - now > bound {
            return Ok(Err(Reply::ClockAhead));
        }
        let v = self.s.get(&self.k.tick)?;
        let (mut ct, mut cs, mut ctok, cp) = read_claim(v.as_deref());
        if ct - now > bound {
            (ct, cs, ctok) = (cp, "c".into(), "-".into());
            if ct - now > bound {
                ct = -1;
            }
        }
        if cs == "p" && !holds(self, &ctok) {
            ct = cp;
        }
        if ct >= tick {
            if holds(self, &ctok) {
                return Ok(Err(reply4(self, &ctok)));
            }
            return Ok(Err(Reply::AlreadyRan { last_tick: ct }));
        }
        Ok(Ok(ct))
    }

    // ---- one holder ----

    pub fn acquire(&mut self, token: &str, ttl: i64, json: &str, mode: &Mode) -> R {
        if self.shared() {
            return self.acquire_n(token, ttl, json, mode);
        }
        let k = self.k.clone();
        let stored = self.s.get(&k.limit)?;
        if let Some(st) = stored.filter(|s| s != "1") {
            return Ok(Reply::Mismatch {
                stored: st.parse().unwrap_or(0),
            });
        }
        let holder = self.s.get(&k.lock)?;
        self.foreign(&[
            (&k.fence, "string"),
            (&k.holder, "string"),
            (&k.limit, "string"),
        ])?;
        self.foreign_counter()?;
        self.mode_names(mode)?;
        if let Mode::Wait { waiter, .. } = mode {
            self.s.zrem(&k.woken, &[waiter])?;
        }
        if holder.as_deref() == Some(token) {
            self.s.pexpire(&k.lock, ttl);
            self.s.set(&k.holder, json, Some(ttl));
            if let Mode::Wait { waiter, .. } = mode {
                self.s.zrem(&k.waiters, &[waiter])?;
            }
            let f = self
                .s
                .get(&k.fence)?
                .and_then(|f| f.parse().ok())
                .unwrap_or(0);
            return Ok(Reply::Granted { fencing: f });
        }
        let mut prev = -1;
        if let Mode::Tick { tick, bound } = mode {
            let gate = self.tick_gate(
                *tick,
                *bound,
                |m, t| m.s.get(&m.k.lock).ok().flatten().as_deref() == Some(t),
                |m, t| Reply::Held {
                    pttl: m.s.pttl(&m.k.lock),
                    token: t.into(),
                    same_tick: true,
                },
            )?;
            match gate {
                Err(r) => return Ok(r),
                Ok(p) => prev = p,
            }
        }
        if holder.is_none() {
            self.s.set(&k.lock, token, Some(ttl));
            let fence = self.next_fence()?;
            self.s.set(&k.holder, json, Some(ttl));
            if let Mode::Tick { tick, .. } = mode {
                self.s
                    .set(&k.tick, &claim_str(*tick, "c", token, prev), None);
            }
            if let Mode::Wait { waiter, .. } = mode {
                self.s.zrem(&k.waiters, &[waiter])?;
            }
            return Ok(Reply::Granted { fencing: fence });
        }
        if let Mode::Wait { score, waiter } = mode {
            self.s.zadd(&k.waiters, *score as f64, waiter)?;
            self.s.pexpire(&k.waiters, QTTL);
            self.set_limit("1", QTTL);
        }
        Ok(Reply::Held {
            pttl: self.s.pttl(&k.lock),
            token: holder.unwrap_or_default(),
            same_tick: false,
        })
    }

    /// The names an attempt's mode writes: the tick claim, or the queue
    /// and the woken set (a script checks only the names it may write).
    pub(super) fn mode_names(&self, mode: &Mode) -> Result<(), WrongType> {
        match mode {
            Mode::Tick { .. } => {
                self.foreign(&[(&self.k.tick, "string")])?;
                self.foreign_claim()
            }
            Mode::Wait { .. } => {
                self.foreign(&[(&self.k.waiters, "zset"), (&self.k.woken, "zset")])
            }
            Mode::Once => Ok(()),
        }
    }

    /// Renewal, or with a run entry `--min-hold`'s keep-for-`ms`.
    pub fn extend(&mut self, token: &str, ms: i64, entry: &str) -> R {
        if self.shared() {
            return self.extend_n(token, ms, entry);
        }
        let k = self.k.clone();
        let v = self.s.get(&k.lock);
        if v.as_ref().ok().and_then(|v| v.as_deref()) == Some(token) {
            self.foreign(&[(&k.holder, "string")])?;
            self.s.pexpire(&k.lock, ms);
            self.s.pexpire(&k.holder, ms);
            self.record(entry, true)?;
            return Ok(Reply::Int(1));
        }
        Ok(Reply::Int(match v {
            Ok(None) => 0,
            _ => -1,
        }))
    }

    pub fn release(&mut self, token: &str, entry: &str) -> R {
        if self.shared() {
            return self.release_n(token, entry);
        }
        let k = self.k.clone();
        let v = self.s.get(&k.lock);
        if v.as_ref().ok().and_then(|v| v.as_deref()) == Some(token) {
            // The woken set is written (and so checked) only while
            // one-holder waiters keep `1` stored at the limit.
            let limited = self.s.get(&k.limit)?.as_deref() == Some("1");
            self.foreign(&[
                (&k.holder, "string"),
                (&k.waiters, "zset"),
                (&k.released, "list"),
            ])?;
            if limited {
                self.foreign(&[(&k.woken, "zset")])?;
            }
            self.s.del(&k.lock);
            self.s.del(&k.holder);
            let w = self.wake_next()?;
            if self.s.get(&k.limit)?.as_deref() == Some("1") {
                if w.is_some() {
                    self.note_woken(w.as_deref())?;
                } else if self.none_woken()? {
                    self.s.del(&k.limit);
                }
            }
            self.record(entry, false)?;
            self.note_released(token)?;
            return Ok(Reply::Int(1));
        }
        if self.released_before(token)? {
            return Ok(Reply::Int(1));
        }
        Ok(Reply::Int(match v {
            Ok(None) => 0,
            _ => -1,
        }))
    }

    pub fn undo(&mut self, token: &str, waiter: Option<(u64, &str)>) -> R {
        if self.shared() {
            return self.undo_n(token, waiter);
        }
        let k = self.k.clone();
        self.foreign(&[(&k.tick, "string"), (&k.holder, "string")])?;
        self.put_back_claim(token)?;
        if self.s.get(&k.lock).ok().flatten().as_deref() == Some(token) {
            self.s.del(&k.lock);
            self.s.del(&k.holder);
            return Ok(Reply::Int(1));
        }
        Ok(Reply::Int(0))
    }

    pub(super) fn put_back_claim(&mut self, token: &str) -> Result<(), WrongType> {
        let v = self.s.get(&self.k.tick)?;
        let (_, _, ctok, cp) = read_claim(v.as_deref());
        if ctok == token {
            if cp < 0 {
                self.s.del(&self.k.tick);
            } else {
                let t = self.k.tick.clone();
                self.s.set(&t, &claim_str(cp, "c", "-", -1), None);
            }
        }
        Ok(())
    }

    pub fn leave(&mut self, token: &str, waiter: &str) -> R {
        if self.shared() {
            return self.leave_n(token, waiter);
        }
        let k = self.k.clone();
        self.foreign(&[
            (&k.holder, "string"),
            (&k.waiters, "zset"),
            (&k.limit, "string"),
            (&k.woken, "zset"),
        ])?;
        self.s.zrem(&k.waiters, &[waiter])?;
        self.s.zrem(&k.woken, &[waiter])?;
        let mut v = self.s.get(&k.lock).map_err(|_| ()).map(|v| v.is_some());
        if self.s.get(&k.lock).ok().flatten().as_deref() == Some(token) {
            self.s.del(&k.lock);
            self.s.del(&k.holder);
            v = Ok(false);
        }
        let mut w = None;
        if v == Ok(false) {
            w = self.wake_next()?;
        }
        if self.s.get(&k.limit)?.as_deref() == Some("1") {
            if w.is_some() {
                self.note_woken(w.as_deref())?;
            } else if self.s.zcard(&k.waiters)? == 0 && self.none_woken()? {
                self.s.del(&k.limit);
            }
        }
        Ok(Reply::Int(1))
    }

    /// Break glass: every holder, the stored limit and the tick claim go.
    pub fn force_release(&mut self) -> R {
        let k = self.k.clone();
        if self.foreign_set() {
            return Err(WrongType);
        }
        self.foreign(&[
            (&k.holder, "string"),
            (&k.tick, "string"),
            (&k.holders, "hash"),
            (&k.limit, "string"),
        ])?;
        if self.checks && !["none", "string", "zset"].contains(&self.s.type_of(&k.lock)) {
            return Err(WrongType);
        }
        let n = self.s.del(&k.lock);
        for x in [&k.holder, &k.tick, &k.holders, &k.limit] {
            self.s.del(x);
        }
        Ok(Reply::Int(i64::from(n)))
    }
}
