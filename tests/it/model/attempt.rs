//! An acquisition attempt as a step: once, a wait (a plain attempt,
//! then subscribed and queued), or a tick; and an attempt undone at once,
//! which must leave the keys as it found them.

use redlock_run::Locker;

use super::reference::{self, Reply};
use super::server::{Dump, Subscriber};
use super::*;

impl Run<'_> {
    /// Client `c` attempts (unless it holds the lock); a waiter always
    /// attempts as a waiter. With `undo`, a grant is undone at once, as
    /// after a quorum that failed elsewhere.
    pub(super) fn attempt_step(
        &mut self,
        c: usize,
        kind: Kind,
        undo: bool,
        now: i64,
        mut before: Dump,
    ) -> Result<bool, String> {
        if self.clients[c].held.is_some() {
            return Ok(false);
        }
        let kind = if self.clients[c].waiter.is_some() {
            Kind::Wait
        } else {
            kind
        };
        let mode = match kind {
            Kind::Once => reference::Mode::Once,
            Kind::Tick(at) => {
                let cur = now / EVERY * EVERY;
                let tick = match at {
                    TickAt::Current => cur,
                    TickAt::Previous => cur - EVERY,
                    TickAt::Ahead => now + BOUND + 2 * MARGIN,
                };
                reference::Mode::Tick { tick, bound: BOUND }
            }
            Kind::Wait => match self.clients[c].waiter.clone() {
                Some((score, waiter)) => reference::Mode::Wait { score, waiter },
                None => reference::Mode::Once,
            },
        };
        let (mut call, mut r) = self.attempt(c, mode, now)?;
        // A wait starts as the product's does: a plain attempt; when held,
        // subscribe, then queue with the next attempt.
        if kind == Kind::Wait
            && self.clients[c].waiter.is_none()
            && matches!(r, Some(Reply::Held { .. }))
        {
            self.check_wakeups()?;
            self.check()?;
            before = self.last_dump.clone();
            let id = Locker::new_token();
            let ch = format!("{}{id}", self.model.k.wake_prefix);
            if !self.clients[c].acl {
                self.clients[c].sub = Some(Subscriber::new(self.srv.port, &ch));
            }
            self.clients[c].waiter = Some((now as u64, id.clone()));
            let mode = reference::Mode::Wait {
                score: now as u64,
                waiter: id,
            };
            (call, r) = self.attempt(c, mode, now)?;
        }
        if !(undo && matches!(r, Some(Reply::Granted { .. }))) {
            return self.after_step(true);
        }
        self.check()?;
        let Call::Acquire { token, mode, .. } = &call else {
            unreachable!("an attempt's call")
        };
        let waiter = match mode {
            reference::Mode::Wait { score, waiter } => Some((*score, waiter.clone())),
            _ => None,
        };
        let undo = Call::Undo {
            token: token.clone(),
            waiter,
        };
        let now = self.srv.now_ms();
        // An undo the scripts refuse (other data at a name it writes)
        // changes nothing, and is not held to the as-found comparison.
        // (F4 in docs/model.md: it used to be refused for a name it did
        // not write.)
        let refused = {
            let mut m = self.model.clone();
            m.s.at(now);
            let w = match &undo {
                Call::Undo { waiter, .. } => waiter.clone(),
                _ => None,
            };
            m.undo(token, w.as_ref().map(|(s, w)| (*s, w.as_str())))
                .is_err()
        };
        self.send(c, &undo, now)?;
        self.after(c, &undo, None, now)?;
        self.check_wakeups()?;
        self.check()?;
        if !refused {
            self.found_as_before(before, &call)?;
        }
        self.stats.steps += 1;
        Ok(true)
    }

    /// An undone attempt leaves the keys as it found them: `before`
    /// against the keys now, less what the protocol may change.
    fn found_as_before(&self, mut a: Dump, call: &Call) -> Check {
        let k = &self.model.k;
        let mut b = self.last_dump.clone();
        // The fencing counter may have risen.
        a.remove(&k.fence);
        b.remove(&k.fence);
        // Other data of the type the lock keeps at one of its own names
        // cannot be told from the lock's: it is overwritten, and the undo
        // deletes what it wrote there.
        for n in &self.corrupted {
            a.remove(n);
            b.remove(n);
        }
        // F1 in docs/model.md (model::findings::
        // undo_puts_back_the_tick_of_the_claim_it_replaced): the undo puts
        // back the replaced claim's tick and state, not its token and
        // predecessor, which nothing reads once its run is gone.
        for d in [&mut a, &mut b] {
            if let Some(e) = d.get_mut(&k.tick) {
                let t: Vec<&str> = e.items[0].split(' ').take(2).collect();
                let t = t.join(" ");
                e.items = vec![t];
            }
        }
        // A waiter's own place: the attempt took it out of the queue (or
        // the woken), the undo may put it back in the queue: it is waiting
        // either way, and the stored N lives as long as it does.
        if let Call::Acquire {
            mode: reference::Mode::Wait { waiter: w, .. },
            ..
        } = call
        {
            for d in [&mut a, &mut b] {
                d.remove(&k.limit);
                for n in [&k.waiters, &k.woken] {
                    if let Some(e) = d.get_mut(n).filter(|e| e.ty == "zset") {
                        if let Some(i) = e.items.iter().position(|x| x == w) {
                            e.items.drain(i..i + 2);
                        }
                        if e.items.is_empty() {
                            d.remove(n);
                        }
                    }
                }
            }
        }
        // What has ended by now counts as gone in both: slots whose lease
        // ended (the attempt pruned them), woken waiters no longer counted.
        for d in [&mut a, &mut b] {
            forget_ended(d, k, self.last_now);
        }
        let counted = |d: &Dump| d.contains_key(&k.waiters) || d.contains_key(&k.woken);
        // A stored N that had expired while a waiter still counted comes
        // back with the undone attempt's grant (FINDINGS.md F3).
        if !a.contains_key(&k.limit) && counted(&a) {
            b.remove(&k.limit);
        }
        if self.model.limit > 1 {
            // A stored N that outlived every holder and waiter may go with
            // the undo (FINDINGS.md F2).
            if !counted(&a) && !a.contains_key(&k.lock) {
                a.remove(&k.limit);
            }
            // The set, the descriptions, the stored N and the queue live
            // as long as the longest lease or wait (F2): an undo may
            // leave them longer.
            for n in [&k.lock, &k.holders, &k.limit, &k.waiters] {
                if let (Some(x), Some(y)) = (a.get(n), b.get_mut(n)) {
                    if x.pttl >= 0 && y.pttl > x.pttl {
                        y.pttl = x.pttl;
                    }
                }
            }
        }
        compare_dumps(&a, &b).map_err(|e| format!("an undone attempt changed the keys: {e}"))
    }
}
