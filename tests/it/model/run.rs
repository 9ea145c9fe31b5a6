//! One sequence against the server: the clients, the steps, the
//! clients' state after each reply.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use redlock_run::Locker;
use redlock_run::{Endpoint, Lease};

use super::reference::{self, Model, Reply};
use super::server::{ClockServer, Dump, DumpEntry, Subscriber};
use super::*;

pub(super) struct Held {
    pub(super) token: String,
    pub(super) fencing: u64,
    pub(super) tick: Option<i64>,
}

pub(super) struct Client {
    pub(super) locker: Locker,
    /// Connected as a user without pub/sub channels: its releases wake
    /// no one, and it waits without a subscription (it polls).
    pub(super) acl: bool,
    pub(super) held: Option<Held>,
    /// The token of the last attempt (leave and undo name it).
    pub(super) attempt: Option<String>,
    /// Waiting: queue score and waiter id, and the subscription.
    pub(super) waiter: Option<(u64, String)>,
    pub(super) sub: Option<Subscriber>,
    pub(super) last: Option<Call>,
}

/// What one sequence explored.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) steps: u64,
    pub(super) skipped: u64,
    pub(super) forced_jumps: u64,
    pub(super) grants: u64,
    pub(super) wakeups: u64,
    /// Abstract states (and the step taken from them) reached.
    pub(super) states: HashSet<String>,
    /// (state, step, state after) triples taken.
    pub(super) transitions: HashSet<String>,
    /// Steps taken, by kind.
    pub(super) kinds: BTreeMap<String, u64>,
}

pub(super) struct Run<'a> {
    pub(super) srv: &'a mut ClockServer,
    pub(super) rt: &'a tokio::runtime::Runtime,
    pub(super) model: Model,
    pub(super) clients: Vec<Client>,
    pub(super) ttl: i64,
    pub(super) key: String,
    /// Leases the clients were granted and believe live: token -> end.
    pub(super) leases: BTreeMap<String, i64>,
    /// Every grant's fencing token, by token.
    pub(super) fencing: BTreeMap<String, u64>,
    pub(super) max_fencing: u64,
    /// Ticks granted (and not undone): tick -> token.
    pub(super) ticks: BTreeMap<i64, String>,
    /// Other applications' keys, as they must stay.
    pub(super) foreign: BTreeMap<String, DumpEntry>,
    pub(super) runs: u64,
    pub(super) last_dump: Dump,
    pub(super) stats: Stats,
    /// The requests of this step run out of memory (maxmemory reached).
    pub(super) refusing: bool,
    /// The server's clock at the last dump.
    pub(super) last_now: i64,
    /// The lock's own names where other data was put.
    pub(super) corrupted: BTreeSet<String>,
    pub(super) foreign_count: usize,
    /// The abstract state at the last check.
    pub(super) last_state: String,
}

pub(super) type Check = Result<(), String>;

pub(super) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Check {
    if cond { Ok(()) } else { Err(msg()) }
}

impl<'a> Run<'a> {
    pub(super) fn new(
        srv: &'a mut ClockServer,
        rt: &'a tokio::runtime::Runtime,
        key: &str,
        acl: &[bool],
        limit: u32,
        ttl: i64,
    ) -> Self {
        let _: () = srv.cmd(&["FLUSHALL"]).unwrap();
        let endpoint = Endpoint::parse(&srv.url()).unwrap();
        let no_channels = Endpoint::parse(&srv.url_no_channels()).unwrap();
        let lease = Lease {
            ttl: Duration::from_millis(ttl as u64),
            refresh: Duration::from_millis(ttl as u64 / 3),
            kill_after: Duration::from_secs(1),
            min_hold: Duration::ZERO,
            wait_replicas: 0,
            limit,
        };
        let clients = acl
            .iter()
            .map(|&acl| Client {
                locker: Locker::new(
                    std::slice::from_ref(if acl { &no_channels } else { &endpoint }),
                    key,
                    lease,
                ),
                acl,
                held: None,
                attempt: None,
                waiter: None,
                sub: None,
                last: None,
            })
            .collect();
        Run {
            srv,
            rt,
            model: Model::new(key, limit),
            clients,
            ttl,
            key: key.into(),
            leases: BTreeMap::new(),
            fencing: BTreeMap::new(),
            max_fencing: 0,
            ticks: BTreeMap::new(),
            foreign: BTreeMap::new(),
            runs: 0,
            last_dump: Dump::new(),
            stats: Stats::default(),
            refusing: false,
            last_now: 0,
            corrupted: BTreeSet::new(),
            foreign_count: 0,
            last_state: String::new(),
        }
    }

    /// Every moment at which something in the model changes by itself.
    pub(super) fn deadlines(&self) -> Vec<i64> {
        let mut d: Vec<i64> = self.model.s.keys.values().filter_map(|e| e.exp).collect();
        for (name, e) in &self.model.s.keys {
            if let store::Val::ZSet(z) = &e.val {
                if *name == self.model.k.lock {
                    d.extend(z.values().map(|s| *s as i64));
                } else if *name == self.model.k.woken {
                    d.extend(z.values().map(|s| *s as i64 + reference::QTTL));
                }
            }
        }
        d.extend(self.leases.values().copied());
        d
    }

    /// The server's clock now, moved past any deadline too close to call.
    pub(super) fn now(&mut self) -> i64 {
        let now = self.srv.now_ms();
        let deadlines = self.deadlines();
        let mut t = now;
        while let Some(d) = deadlines
            .iter()
            .copied()
            .filter(|d| (t - TOL..=t + MARGIN).contains(d))
            .max()
        {
            t = d + TOL + 1;
        }
        if t > now {
            self.stats.forced_jumps += 1;
            self.srv.advance(t - now);
            return self.srv.now_ms();
        }
        now
    }

    /// A clock jump of about `ms`, landing clear of every deadline.
    pub(super) fn jump(&mut self, ms: i64) {
        let now = self.srv.now_ms();
        let deadlines = self.deadlines();
        let mut t = now + ms;
        while let Some(d) = deadlines
            .iter()
            .copied()
            .filter(|d| (t - TOL..=t + MARGIN).contains(d))
            .max()
        {
            t = d + TOL + 1;
        }
        self.srv.advance(t - now);
    }

    pub(super) fn holder_json(&self, c: usize, token: &str, now: i64) -> String {
        redlock_run::HolderInfo {
            host: format!("client-{c}"),
            pid: 1000 + c as u32,
            command: "job".into(),
            since_ms: now as u64,
            token: token.into(),
            label: None,
        }
        .to_json()
    }

    pub(super) fn run_entry(&mut self, c: usize, fencing: u64, tick: Option<i64>) -> String {
        self.runs += 1;
        redlock_run::RunEntry {
            host: format!("client-{c}"),
            pid: 1000 + c as u32,
            command: "job".into(),
            label: None,
            started: format!("run-{}", self.runs),
            ended: "end".into(),
            duration_ms: 1,
            exit_code: 0,
            outcome: "ok".into(),
            fencing_token: fencing,
            tick: tick.map(|t| t.to_string()),
        }
        .to_json()
    }

    pub(super) fn drop_sub(&mut self, c: usize) {
        if let (Some(sub), Some((_, w))) = (self.clients[c].sub.take(), &self.clients[c].waiter) {
            drop(sub);
            let ch = format!("{}{w}", self.model.k.wake_prefix);
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.srv.numsub(&ch) > 0 {
                assert!(Instant::now() < deadline, "unsubscribe not seen");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// Run one step; Ok(false) when it did not apply.
    pub(super) fn step(&mut self, op: &Op) -> Result<bool, String> {
        let now = self.now();
        let before = self.last_dump.clone();
        let applied = match *op {
            Op::OutOfMemory(ref inner) => {
                self.refusing = true;
                let r = self.step(inner);
                self.refusing = false;
                return r;
            }
            Op::Jump { ms } => {
                self.jump(ms);
                true
            }
            Op::Foreign { at } => {
                let name = match at {
                    ForeignAt::Lock => self.key.clone(),
                    ForeignAt::Other => format!("other-app:{}", self.foreign_count),
                    ForeignAt::Aux(i) => {
                        let names = aux_names(&self.model.k);
                        names[i % names.len()].clone()
                    }
                };
                self.model.s.at(now);
                if self.model.s.exists(&name) {
                    return Ok(false);
                }
                let v = format!("their-data-{}", self.foreign_count);
                // In turn a string, a type the lock never uses (a set),
                // and where the scripts check for it a sorted set.
                let kinds = if self.model.checks { 3 } else { 2 };
                let ty = if self.foreign_count % kinds == 2 {
                    let _: i64 = self.srv.cmd(&["ZADD", &name, "1", &v]).unwrap();
                    self.model.s.zadd(&name, 1.0, &v).unwrap();
                    "zset"
                } else if self.foreign_count % kinds == 1 {
                    let _: i64 = self.srv.cmd(&["SADD", &name, &v]).unwrap();
                    self.model.s.keys.insert(
                        name.clone(),
                        store::Entry {
                            val: store::Val::Set(vec![v.clone()]),
                            exp: None,
                        },
                    );
                    "set"
                } else {
                    let _: () = self.srv.cmd(&["SET", &name, &v]).unwrap();
                    self.model.s.set(&name, &v, None);
                    "string"
                };
                self.foreign_count += 1;
                if let ForeignAt::Aux(_) = at {
                    self.corrupted.insert(name);
                    return self.after_step(true);
                }
                self.foreign.insert(
                    name,
                    DumpEntry {
                        ty: ty.into(),
                        pttl: -1,
                        items: if ty == "zset" {
                            vec![v, "1".into()]
                        } else {
                            vec![v]
                        },
                    },
                );
                true
            }
            Op::Force => {
                let r = self.rt.block_on(self.clients[0].locker.force_release());
                self.model.s.at(now);
                let want = self.model.request(|m| m.force_release()).ok();
                let got = count_reply(r.map(|mut c| {
                    c.absent = 0;
                    c
                }));
                let got = got.map(|r| if r == Reply::Int(1) { r } else { Reply::Int(0) });
                ensure(got == want, || {
                    format!("force release: server {got:?}, model {want:?}")
                })?;
                if got.is_none() {
                    // Refused (another application's data): nothing changed.
                    return self.after_step(true);
                }
                // Break glass: whoever held it no longer counts, a tick
                // may run again, another application's data at the names
                // of the lock is gone (the operator asked for it).
                self.leases.clear();
                self.ticks.clear();
                let k = self.model.k.clone();
                for n in [&k.lock, &k.holder, &k.tick, &k.holders, &k.limit] {
                    self.foreign.remove(n);
                }
                true
            }
            Op::Crash { c } => {
                self.drop_sub(c);
                let cl = &mut self.clients[c];
                cl.held = None;
                cl.attempt = None;
                cl.waiter = None;
                cl.last = None;
                true
            }
            Op::Again { c } => {
                let Some(call) = self.clients[c].last.clone() else {
                    return Ok(false);
                };
                let r = self.send(c, &call, now)?;
                self.after(c, &call, r, now)?;
                true
            }
            Op::Attempt { c, kind, undo } => return self.attempt_step(c, kind, undo, now, before),
            Op::Renew { c } => {
                let Some(h) = &self.clients[c].held else {
                    return Ok(false);
                };
                let call = Call::Renew {
                    token: h.token.clone(),
                };
                let r = self.send(c, &call, now)?;
                self.after(c, &call, r, now)?;
                true
            }
            Op::Release { c } => {
                let Some(h) = &self.clients[c].held else {
                    return Ok(false);
                };
                let (token, fencing, tick) = (h.token.clone(), h.fencing, h.tick);
                let entry = self.run_entry(c, fencing, tick);
                let call = Call::Release { token, entry };
                let r = self.send(c, &call, now)?;
                self.after(c, &call, r, now)?;
                true
            }
            Op::HoldFor { c, ms } => {
                let Some(h) = &self.clients[c].held else {
                    return Ok(false);
                };
                let (token, fencing, tick) = (h.token.clone(), h.fencing, h.tick);
                let entry = self.run_entry(c, fencing, tick);
                let call = Call::HoldFor { token, ms, entry };
                let r = self.send(c, &call, now)?;
                self.after(c, &call, r, now)?;
                true
            }
            Op::Leave { c } => {
                let (Some((_, waiter)), Some(token)) = (
                    self.clients[c].waiter.clone(),
                    self.clients[c].attempt.clone(),
                ) else {
                    return Ok(false);
                };
                let call = Call::Leave { token, waiter };
                self.send(c, &call, now)?;
                self.after(c, &call, None, now)?;
                true
            }
        };
        self.after_step(applied)
    }

    pub(super) fn after_step(&mut self, applied: bool) -> Result<bool, String> {
        if applied {
            self.check_wakeups()?;
            self.check()?;
        }
        Ok(applied)
    }

    /// One acquisition attempt of client `c` with a fresh token.
    pub(super) fn attempt(
        &mut self,
        c: usize,
        mode: reference::Mode,
        now: i64,
    ) -> Result<(Call, Option<Reply>), String> {
        let token = Locker::new_token();
        let json = self.holder_json(c, &token, now);
        let call = Call::Acquire { token, json, mode };
        self.clients[c].attempt = None;
        let r = self.send(c, &call, now)?;
        self.after(c, &call, r.clone(), now)?;
        Ok((call, r))
    }

    /// The client's state after the reply `r` to `call`.
    pub(super) fn after(&mut self, c: usize, call: &Call, r: Option<Reply>, now: i64) -> Check {
        self.clients[c].last = Some(call.clone());
        match call {
            Call::Acquire { token, mode, .. } => {
                self.clients[c].attempt = Some(token.clone());
                let tick = match mode {
                    reference::Mode::Tick { tick, .. } => Some(*tick),
                    _ => None,
                };
                match r {
                    Some(Reply::Granted { fencing }) => {
                        self.granted(c, token, fencing, tick, now)?;
                        // A wait ends with the grant.
                        self.drop_sub(c);
                        self.clients[c].waiter = None;
                    }
                    Some(Reply::AlreadyRan { .. } | Reply::ClockAhead | Reply::Mismatch { .. })
                        if self.clients[c].waiter.is_some() =>
                    {
                        // A wait that cannot succeed leaves the queue.
                        let waiter = self.clients[c].waiter.clone().unwrap().1;
                        let leave = Call::Leave {
                            token: token.clone(),
                            waiter,
                        };
                        self.send(c, &leave, now)?;
                        self.drop_sub(c);
                        self.clients[c].waiter = None;
                    }
                    _ => {}
                }
                // An attempt the client undid (a refusal, or a --limit
                // mismatch) holds nothing, an earlier delivery's grant
                // included.
                let undone = match r {
                    None => true,
                    Some(Reply::Mismatch { .. }) => wire::locker_undoes_mismatches(),
                    _ => false,
                };
                if undone {
                    self.leases.remove(token);
                    self.ticks.retain(|_, t| t != token);
                    if self.clients[c]
                        .held
                        .as_ref()
                        .is_some_and(|h| h.token == *token)
                    {
                        self.clients[c].held = None;
                    }
                }
            }
            Call::Renew { token } => match r {
                Some(Reply::Int(1)) => {
                    if let Some(end) = self.leases.get_mut(token) {
                        *end = now + self.ttl;
                    }
                }
                Some(_) => {
                    self.leases.remove(token);
                    self.clients[c].held = None;
                }
                None => {}
            },
            Call::Release { token, .. } => {
                self.leases.remove(token);
                self.clients[c].held = None;
            }
            Call::HoldFor { token, ms, .. } => {
                if r == Some(Reply::Int(1)) {
                    if let Some(end) = self.leases.get_mut(token) {
                        *end = now + ms;
                    }
                } else {
                    self.leases.remove(token);
                }
                self.clients[c].held = None;
            }
            Call::Leave { .. } => {
                self.drop_sub(c);
                self.clients[c].waiter = None;
                self.clients[c].attempt = None;
            }
            Call::Undo { token, .. } => {
                self.leases.remove(token);
                self.ticks.retain(|_, t| t != token);
                self.clients[c].held = None;
            }
        }
        Ok(())
    }
}
