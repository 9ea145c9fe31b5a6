//! The steps of a sequence, and how the next one is picked.

use super::reference::{self};
use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum TickAt {
    /// The tick now due (the same for every client until the clock moves
    /// past the interval).
    Current,
    Previous,
    /// Beyond the skew bound in the server's future (a clock ahead).
    Ahead,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Once,
    Wait,
    Tick(TickAt),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ForeignAt {
    /// Another application's string at KEY (only while it is free).
    Lock,
    /// An unrelated key of another application.
    Other,
    /// Some other data at one of the lock's own auxiliary names (index
    /// into [`aux_names`]): the scripts must refuse it, or overwrite it,
    /// all or nothing.
    Aux(usize),
}

/// One step of a sequence. Client numbers index the sequence's clients;
/// a step that does not apply to the client's state when it runs (after
/// shrinking dropped what led to it) is skipped.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Op {
    /// An acquisition attempt; `undo`: then undone at once, as after a
    /// quorum that failed elsewhere.
    Attempt {
        c: usize,
        kind: Kind,
        undo: bool,
    },
    Renew {
        c: usize,
    },
    /// Release, recording the run.
    Release {
        c: usize,
    },
    /// `--min-hold`: the command ended, keep the lock `ms` more.
    HoldFor {
        c: usize,
        ms: i64,
    },
    /// A waiter gives up.
    Leave {
        c: usize,
    },
    /// `release --force` by an operator.
    Force,
    /// The client stops calling (its process died or froze).
    Crash {
        c: usize,
    },
    /// The client's last request delivered again (its reply was lost).
    Again {
        c: usize,
    },
    Foreign {
        at: ForeignAt,
    },
    /// The server's clock moves forward.
    Jump {
        ms: i64,
    },
    /// A step whose requests the server refuses: out of memory
    /// (`maxmemory` reached, nothing to evict).
    OutOfMemory(Box<Op>),
}

/// A request as sent, so that it can be delivered again.
#[derive(Debug, Clone)]
pub(super) enum Call {
    Acquire {
        token: String,
        json: String,
        mode: reference::Mode,
    },
    Renew {
        token: String,
    },
    Release {
        token: String,
        entry: String,
    },
    HoldFor {
        token: String,
        ms: i64,
        entry: String,
    },
    Leave {
        token: String,
        waiter: String,
    },
    Undo {
        token: String,
        waiter: Option<(u64, String)>,
    },
}

impl Run<'_> {
    /// Pick the next step from the clients' states.
    pub(super) fn generate(&self, rng: &mut Rng) -> Op {
        let n = self.clients.len();
        let holders: Vec<usize> = (0..n).filter(|&c| self.clients[c].held.is_some()).collect();
        let free: Vec<usize> = (0..n).filter(|&c| self.clients[c].held.is_none()).collect();
        let waiting: Vec<usize> = (0..n)
            .filter(|&c| self.clients[c].waiter.is_some() && self.clients[c].attempt.is_some())
            .collect();
        let called: Vec<usize> = (0..n).filter(|&c| self.clients[c].last.is_some()).collect();
        loop {
            let r = rng.below(100);
            let op = match r {
                0..=34 if !free.is_empty() => {
                    let kind = match rng.below(10) {
                        0..=3 => Kind::Once,
                        4..=6 => Kind::Wait,
                        _ => Kind::Tick(rng.pick(&[
                            TickAt::Current,
                            TickAt::Current,
                            TickAt::Previous,
                            TickAt::Ahead,
                        ])),
                    };
                    Op::Attempt {
                        c: rng.pick(&free),
                        kind,
                        undo: rng.chance(15),
                    }
                }
                35..=46 if !holders.is_empty() => Op::Renew {
                    c: rng.pick(&holders),
                },
                47..=61 if !holders.is_empty() => Op::Release {
                    c: rng.pick(&holders),
                },
                62..=64 if !holders.is_empty() => Op::HoldFor {
                    c: rng.pick(&holders),
                    ms: rng.pick(&[2 * self.ttl, self.ttl / 2 + 1700]),
                },
                65..=69 if !waiting.is_empty() => Op::Leave {
                    c: rng.pick(&waiting),
                },
                70..=71 => Op::Force,
                72..=75 => Op::Crash {
                    c: rng.below(n as u64) as usize,
                },
                76..=85 if !called.is_empty() => Op::Again {
                    c: rng.pick(&called),
                },
                86..=88 if faults() && rng.chance(50) => {
                    let inner = self.generate(rng);
                    if matches!(
                        inner,
                        Op::Attempt { .. }
                            | Op::Renew { .. }
                            | Op::Release { .. }
                            | Op::HoldFor { .. }
                            | Op::Force
                    ) {
                        Op::OutOfMemory(Box::new(inner))
                    } else {
                        continue;
                    }
                }
                86..=88 => Op::Foreign {
                    at: match rng.below(10) {
                        _ if aux_faults() && rng.chance(40) => {
                            ForeignAt::Aux(rng.below(9) as usize)
                        }
                        0..=6 => ForeignAt::Lock,
                        _ => ForeignAt::Other,
                    },
                },
                89..=99 => Op::Jump {
                    ms: rng.pick(&[1_000, 4_000, 9_000, 25_000, 31_000, 61_000, 120_000]),
                },
                _ => continue,
            };
            return op;
        }
    }
}

/// A step's kind, for the figures.
pub(super) fn op_name(op: &Op) -> String {
    match op {
        Op::Attempt { kind, undo, .. } => {
            let k = match kind {
                Kind::Once => "once".to_string(),
                Kind::Wait => "wait".to_string(),
                Kind::Tick(at) => format!("tick-{at:?}").to_lowercase(),
            };
            format!("attempt-{k}{}", if *undo { "+undo" } else { "" })
        }
        Op::Renew { .. } => "renew".into(),
        Op::Release { .. } => "release".into(),
        Op::HoldFor { .. } => "min-hold".into(),
        Op::Leave { .. } => "leave".into(),
        Op::Force => "force-release".into(),
        Op::Crash { .. } => "crash".into(),
        Op::Again { .. } => "again".into(),
        Op::Foreign { at } => format!("foreign-{at:?}").to_lowercase(),
        Op::Jump { .. } => "clock".into(),
        Op::OutOfMemory(inner) => format!("oom:{}", op_name(inner)),
    }
}
