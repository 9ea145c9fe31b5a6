//! A request sent to the server and to the model, and the replies
//! compared.

use std::time::Duration;

use redlock_run::{Attempt, Mode, Renewal};

use super::reference::{self, Reply};
use super::*;

impl Run<'_> {
    /// The request as the client sends it; its reply (None: an error, or
    /// a request whose reply the client does not read).
    pub(super) fn server_call(&mut self, c: usize, call: &Call) -> Option<Reply> {
        let locker = &mut self.clients[c].locker;
        match call {
            Call::Acquire { token, json, mode } => {
                let m = match mode {
                    reference::Mode::Once => Mode::Once,
                    reference::Mode::Tick { tick, bound } => Mode::Tick {
                        tick: *tick as u64,
                        bound_ms: *bound as u64,
                    },
                    reference::Mode::Wait { score, waiter } => Mode::Wait {
                        score: *score,
                        waiter,
                    },
                };
                match self.rt.block_on(locker.try_acquire_as(token, json, m)) {
                    Attempt::Acquired(g) => Some(Reply::Granted { fencing: g.fencing }),
                    Attempt::Held {
                        pttl,
                        holder,
                        same_tick,
                    } => Some(Reply::Held {
                        pttl: pttl.map_or(-1, |p| p.as_millis() as i64),
                        token: holder.token,
                        same_tick,
                    }),
                    Attempt::AlreadyRan { last_tick } => Some(Reply::AlreadyRan {
                        last_tick: last_tick as i64,
                    }),
                    Attempt::ClockAhead { .. } => Some(Reply::ClockAhead),
                    Attempt::Mismatch { stored } => Some(Reply::Mismatch { stored }),
                    Attempt::Unavailable { .. } => None,
                }
            }
            Call::Renew { token } => {
                match self
                    .rt
                    .block_on(locker.renew(token, Duration::from_secs(5)))
                {
                    Renewal::Extended { .. } => Some(Reply::Int(1)),
                    Renewal::Lost(why) if why.contains("another") => Some(Reply::Int(-1)),
                    Renewal::Lost(_) => Some(Reply::Int(0)),
                    Renewal::Failed(_) => None,
                }
            }
            Call::Release { token, entry } => {
                count_reply(self.rt.block_on(locker.release_recording(token, entry)))
            }
            Call::HoldFor { token, ms, entry } => count_reply(self.rt.block_on(locker.hold_for(
                token,
                Duration::from_millis(*ms as u64),
                entry,
            ))),
            Call::Leave { token, waiter } => {
                self.rt.block_on(locker.leave(token, waiter));
                None
            }
            Call::Undo { token, waiter } => {
                let w = waiter.as_ref().map(|(s, w)| (*s, w.as_str()));
                self.rt.block_on(locker.undo_attempt(token, w));
                None
            }
        }
    }

    /// The same request applied to the model; its reply.
    pub(super) fn model_call(&mut self, call: &Call) -> Option<Reply> {
        let ttl = self.ttl;
        match call {
            Call::Acquire { token, json, mode } => {
                match self.model.request(|m| m.acquire(token, ttl, json, mode)) {
                    Ok(Reply::Held {
                        pttl,
                        token,
                        same_tick,
                    }) => Some(Reply::Held {
                        pttl: if pttl > 0 { pttl } else { -1 },
                        token,
                        same_tick,
                    }),
                    // The client undoes an attempt refused for a --limit
                    // mismatch (its grants elsewhere, or an earlier
                    // delivery's, must not stay).
                    Ok(r @ Reply::Mismatch { .. }) if locker_undoes_mismatches() => {
                        let w = match mode {
                            reference::Mode::Wait { score, waiter } => {
                                Some((*score, waiter.as_str()))
                            }
                            _ => None,
                        };
                        let _ = self.model.request(|m| m.undo(token, w));
                        Some(r)
                    }
                    Ok(r) => Some(r),
                    Err(_) => {
                        // The client undoes an attempt that failed.
                        let w = match mode {
                            reference::Mode::Wait { score, waiter } => {
                                Some((*score, waiter.as_str()))
                            }
                            _ => None,
                        };
                        let _ = self.model.request(|m| m.undo(token, w));
                        None
                    }
                }
            }
            Call::Renew { token } => self.model.request(|m| m.extend(token, ttl, "")).ok(),
            Call::Release { token, entry } => self.model.request(|m| m.release(token, entry)).ok(),
            Call::HoldFor { token, ms, entry } => {
                self.model.request(|m| m.extend(token, *ms, entry)).ok()
            }
            Call::Leave { token, waiter } => {
                let _ = self.model.request(|m| m.leave(token, waiter));
                None
            }
            Call::Undo { token, waiter } => {
                let w = waiter.as_ref().map(|(s, w)| (*s, w.as_str()));
                let _ = self.model.request(|m| m.undo(token, w));
                None
            }
        }
    }

    /// Send `call` for client `c` to the server and to the model; compare
    /// the replies. Returns the server's reply (None: an error).
    pub(super) fn send(
        &mut self,
        c: usize,
        call: &Call,
        now: i64,
    ) -> Result<Option<Reply>, String> {
        self.model.s.at(now);
        self.model.publish = !self.clients[c].acl;
        self.model.subscribed = self
            .clients
            .iter()
            .filter(|c| c.sub.is_some())
            .filter_map(|c| c.waiter.as_ref().map(|w| w.1.clone()))
            .collect();
        // Out of memory while the request runs only; the client's own
        // follow-ups (undo, leave: replies it does not read) run after.
        let refusing = self.refusing && !matches!(call, Call::Undo { .. } | Call::Leave { .. });
        if refusing {
            let _: () = self.srv.cmd(&["CONFIG", "SET", "maxmemory", "1"]).unwrap();
        }
        let got = self.server_call(c, call);
        if trace() {
            eprintln!("  {call:?} -> {got:?}");
        }
        if refusing {
            let _: () = self.srv.cmd(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
        }
        // All or nothing: a request the server refused changed nothing.
        let want = if refusing && got.is_none() {
            None
        } else {
            self.model_call(call)
        };
        // A fencing token from the server's clock: the script read it a
        // moment after the model did.
        let want = match (&got, want) {
            (Some(Reply::Granted { fencing: g }), Some(Reply::Granted { fencing: w }))
                if self.model.clock_fencing
                    && *g > w
                    && *g - w <= TOL as u64 * 1000
                    && self.model.s.get(&self.model.k.fence).ok().flatten()
                        == Some(w.to_string()) =>
            {
                if let Call::Acquire { token, .. } = call {
                    self.model.took_fence(token, w, *g);
                }
                Some(Reply::Granted { fencing: *g })
            }
            (_, w) => w,
        };
        // Holders whose leases end within TOL of each other: which one
        // ends first is a matter of milliseconds the model cannot know.
        let near = |tok: &str, other: &str| {
            let z = |t: &str| self.model.s.zscore(&self.model.k.lock, t).ok().flatten();
            matches!((z(tok), z(other)), (Some(a), Some(b)) if (a - b).abs() <= TOL as f64)
        };
        let got = match (got, &want) {
            (
                Some(Reply::Held {
                    pttl,
                    token,
                    same_tick: false,
                }),
                Some(Reply::Held {
                    token: wt,
                    same_tick: false,
                    ..
                }),
            ) if token != *wt && near(&token, wt) => Some(Reply::Held {
                pttl,
                token: wt.clone(),
                same_tick: false,
            }),
            (g, _) => g,
        };
        ensure(same_reply(&got, &want), || {
            format!("reply to {call:?}: server {got:?}, model {want:?}")
        })?;
        Ok(got)
    }
}

pub(super) fn count_reply(r: Result<redlock_run::Count, String>) -> Option<Reply> {
    let c = r.ok()?;
    Some(Reply::Int(if c.yes > 0 {
        1
    } else if c.taken > 0 {
        -1
    } else {
        0
    }))
}

pub(super) fn same_reply(got: &Option<Reply>, want: &Option<Reply>) -> bool {
    match (got, want) {
        (
            Some(Reply::Held {
                pttl: a,
                token: ta,
                same_tick: sa,
            }),
            Some(Reply::Held {
                pttl: b,
                token: tb,
                same_tick: sb,
            }),
        ) => ta == tb && sa == sb && ((*a < 0 && *b < 0) || (a - b).abs() <= TOL),
        _ => got == want,
    }
}

/// Whether the client undoes an attempt refused for a `--limit` mismatch
/// (issue 24 item 5); before, it left it as it was.
pub(super) fn locker_undoes_mismatches() -> bool {
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lock/acquire.rs"))
        .contains("mismatch on any master refuses the attempt")
}
