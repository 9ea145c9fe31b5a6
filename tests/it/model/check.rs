//! After every step: the server's keys against the model's, the
//! wake-ups, and the protocol's invariants.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::reference::{self, Model};
use super::server::{Dump, DumpEntry};
use super::*;

impl Run<'_> {
    /// After a step: the server's keys against the model's, then the
    /// invariants.
    pub(super) fn check(&mut self) -> Check {
        let (now, dump) = self.srv.dump();
        self.model.s.at(now);
        self.leases.retain(|_, end| *end > now);
        let want = model_dump(&self.model);
        compare_dumps(&want, &dump).map_err(|e| format!("keys differ from the model: {e}"))?;
        // At most N live holders, on the server's clock.
        ensure(self.leases.len() <= self.model.limit as usize, || {
            format!(
                "{} clients hold a live lease at once (limit {}): {:?}",
                self.leases.len(),
                self.model.limit,
                self.leases
            )
        })?;
        // Other applications' keys are never changed or deleted.
        for (k, e) in &self.foreign {
            ensure(dump.get(k) == Some(e), || {
                format!("another application's key {k} changed: {:?}", dump.get(k))
            })?;
        }
        // Nothing leaks: every key but the counter, the history and the
        // tick claim (schedule's record of the last tick run) expires.
        let k = &self.model.k;
        for (name, e) in &dump {
            let lasting = [&k.fence, &k.history, &k.tick].contains(&name);
            let theirs = self.foreign.contains_key(name) || self.corrupted.contains(name);
            ensure(lasting || theirs || e.pttl >= 0, || {
                format!("{name} has no expiry")
            })?;
        }
        // Each run is recorded once.
        if let Some(h) = dump.get(&k.history) {
            let distinct: BTreeSet<&String> = h.items.iter().collect();
            ensure(distinct.len() == h.items.len(), || {
                format!("a run is recorded twice: {:?}", h.items)
            })?;
        }
        self.last_state = self.abstract_state(&dump);
        self.stats.states.insert(self.last_state.clone());
        self.last_dump = dump;
        self.last_now = now;
        Ok(())
    }

    /// A coarse picture of the lock's state, to count the states reached.
    pub(super) fn abstract_state(&self, dump: &Dump) -> String {
        let k = &self.model.k;
        let len = |n: &str| dump.get(n).map_or(0, |e| e.items.len());
        format!(
            "n{} l{} q{} w{} lim{} tick{} hist{} rel{} f{}",
            self.model.limit,
            self.leases.len(),
            len(&k.waiters) / 2,
            len(&k.woken) / 2,
            dump.get(&k.limit).map_or("-", |e| e.items[0].as_str()),
            dump.contains_key(&k.tick),
            len(&k.history).min(3),
            dump.contains_key(&k.released),
            dump.contains_key(&self.key) && self.foreign.contains_key(&self.key),
        )
    }

    /// A grant to client `c`: fencing rises, at most N hold, a tick once.
    pub(super) fn granted(
        &mut self,
        c: usize,
        token: &str,
        fencing: u64,
        tick: Option<i64>,
        now: i64,
    ) -> Check {
        self.stats.grants += 1;
        // The same request delivered again may be answered with its own
        // grant's token; any other grant gets a higher one.
        if self.fencing.get(token) != Some(&fencing) {
            ensure(fencing > self.max_fencing, || {
                format!(
                    "fencing token {fencing} after {}: tokens must strictly increase",
                    self.max_fencing
                )
            })?;
            self.fencing.insert(token.into(), fencing);
            self.max_fencing = fencing;
        }
        if let Some(t) = tick {
            if let Some(other) = self.ticks.get(&t) {
                ensure(other == token, || {
                    format!("tick {t} granted twice: to {other} and to {token}")
                })?;
            }
            self.ticks.insert(t, token.into());
        }
        self.leases.insert(token.into(), now + self.ttl);
        self.clients[c].held = Some(Held {
            token: token.into(),
            fencing,
            tick,
        });
        Ok(())
    }

    /// The waiters the model says were woken got their message, and no
    /// one else did.
    pub(super) fn check_wakeups(&mut self) -> Check {
        let woken: Vec<String> = std::mem::take(&mut self.model.woken);
        for cl in self.clients.iter_mut() {
            let (Some(sub), Some((_, w))) = (cl.sub.as_mut(), cl.waiter.as_ref()) else {
                continue;
            };
            let expected = woken.contains(w);
            let got = sub.take(if expected {
                Duration::from_secs(2)
            } else {
                Duration::ZERO
            });
            ensure(got == usize::from(expected), || {
                format!(
                    "waiter {w}: {got} wake-ups, the model expects {}",
                    usize::from(expected)
                )
            })?;
            self.stats.wakeups += got as u64;
        }
        Ok(())
    }
}

/// Drop from a dump what has ended at `now`: `--limit` slots whose lease
/// ended (and their descriptions), woken waiters no longer counted.
pub(super) fn forget_ended(d: &mut Dump, k: &redlock_run::Keys, now: i64) {
    let mut ended = Vec::new();
    if let Some(e) = d.get_mut(&k.lock).filter(|e| e.ty == "zset") {
        let pairs: Vec<(String, String)> = e
            .items
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        e.items.clear();
        for (m, sc) in pairs {
            if sc.parse::<f64>().unwrap_or(0.0) <= now as f64 {
                ended.push(m);
            } else {
                e.items.extend([m, sc]);
            }
        }
    }
    if let Some(h) = d.get_mut(&k.holders).filter(|e| e.ty == "hash") {
        let pairs: Vec<(String, String)> = h
            .items
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .filter(|(f, _)| !ended.contains(f))
            .collect();
        h.items = pairs.into_iter().flat_map(|(a, b)| [a, b]).collect();
    }
    if let Some(w) = d.get_mut(&k.woken).filter(|e| e.ty == "zset") {
        let pairs: Vec<(String, String)> = w
            .items
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .filter(|(_, sc)| sc.parse::<f64>().unwrap_or(0.0) > (now - reference::QTTL) as f64)
            .collect();
        w.items = pairs.into_iter().flat_map(|(a, b)| [a, b]).collect();
    }
    d.retain(|_, e| !e.items.is_empty());
}

/// The model's keys as the server's dump shows them.
pub(super) fn model_dump(m: &Model) -> Dump {
    let mut out = Dump::new();
    for (k, e) in &m.s.keys {
        let items = match &e.val {
            store::Val::Str(s) => vec![s.clone()],
            store::Val::List(l) => l.clone(),
            store::Val::ZSet(_) => {
                m.s.zrange(k)
                    .unwrap()
                    .into_iter()
                    .flat_map(|(x, s)| [x, format!("{s}")])
                    .collect()
            }
            store::Val::Hash(h) => h.iter().flat_map(|(a, b)| [a.clone(), b.clone()]).collect(),
            store::Val::Set(s) => s.clone(),
        };
        out.insert(
            k.clone(),
            DumpEntry {
                ty: e.val.type_name().into(),
                pttl: e.exp.map_or(-1, |x| x - m.s.now),
                items,
            },
        );
    }
    out
}

/// Equal up to TOL in time-based values, in any order where Redis keeps
/// none (hash fields, set members, sorted-set members).
pub(super) fn compare_dumps(want: &Dump, got: &Dump) -> Check {
    let wk: Vec<&String> = want.keys().collect();
    let gk: Vec<&String> = got.keys().collect();
    ensure(wk == gk, || format!("keys: model {wk:?}, server {gk:?}"))?;
    for (k, w) in want {
        let g = &got[k];
        ensure(w.ty == g.ty, || format!("{k}: type {} vs {}", w.ty, g.ty))?;
        ensure(
            (w.pttl < 0 && w.pttl == g.pttl)
                || (w.pttl >= 0 && g.pttl >= 0 && (w.pttl - g.pttl).abs() <= TOL),
            || format!("{k}: pttl model {} server {}", w.pttl, g.pttl),
        )?;
        let same = match w.ty.as_str() {
            "zset" => {
                let pairs = |e: &DumpEntry| -> BTreeMap<String, f64> {
                    e.items
                        .chunks(2)
                        .map(|p| (p[0].clone(), p[1].parse().unwrap_or(f64::NAN)))
                        .collect()
                };
                let (a, b) = (pairs(w), pairs(g));
                a.len() == b.len()
                    && a.iter()
                        .zip(&b)
                        .all(|((ma, sa), (mb, sb))| ma == mb && (sa - sb).abs() <= TOL as f64)
            }
            "hash" => {
                let pairs = |e: &DumpEntry| -> BTreeMap<String, String> {
                    e.items
                        .chunks(2)
                        .map(|p| (p[0].clone(), p[1].clone()))
                        .collect()
                };
                pairs(w) == pairs(g)
            }
            "set" => {
                let mut a = w.items.clone();
                let mut b = g.items.clone();
                a.sort();
                b.sort();
                a == b
            }
            _ => w.items == g.items,
        };
        ensure(same, || {
            format!("{k}: model {:?}, server {:?}", w.items, g.items)
        })?;
    }
    Ok(())
}
