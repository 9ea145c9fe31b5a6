//! The guarantees, checked over what a scenario recorded: every run's exit
//! status and section (start/end on CLOCK_MONOTONIC, fencing token, the
//! resource's verdicts, the moment its process died), the key's value and
//! PTTL sampled on every master, and the faults injected.
//!
//! - Mutual exclusion: no two sections overlap, except where the contract
//!   does not promise it: an overlap that began after the earlier section
//!   had been frozen by the test (SIGSTOP seen to take effect) past its TTL
//!   (the fencing token is what exposes that one), or sections on either
//!   side of a data loss (a master restarted without persistence), where
//!   each section's data epoch is exact: the only section of the old
//!   incarnation that can start after the restart is the one whose token
//!   the key held at the kill (read with every write paused).
//! - Fencing: tokens strictly increase in section start order within a
//!   data epoch (equal is a violation; the resource refuses it too); the
//!   resource never refuses a section's write unless a section that began
//!   after it was frozen wrote a higher token first (counted, expected), or
//!   the old incarnation's holder wrote into the new epoch (data loss).
//! - A lost lease means exit 70: if the samples show the key no longer
//!   holding a run's token (on enough masters that no quorum is left)
//!   while its command still ran, redlock-run must exit 70; a command cut
//!   short means 70 too, unless the test itself signalled that run.
//! - Stopped in time: for every exit 70, the command died before the lease
//!   could expire. The expiry is approximated from below by the samples:
//!   max(send time + PTTL) over samples showing the token (the q-th largest
//!   over masters in quorum mode). When the key was removed early (data
//!   loss) the command must instead die "at once": within 1.25 × refresh +
//!   kill-after + 100 ms of the first sample that saw it gone. A sampler
//!   blinded by a fault on the master (SIGSTOP, restart) may have missed
//!   the last renewal, which makes the bound too early by up to one
//!   refresh: such cases are counted as unverifiable, not as violations.
//! - No command outlives its redlock-run (checked by the contender thread
//!   the moment redlock-run is reaped), no panic, only documented codes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::faults::{Event, Kind};
use super::harness::{Params, Run, Sample};
use super::lease_checks;
use super::ms;
pub use super::report::Report;
use super::section::Section;

pub struct Input<'a> {
    pub p: &'a Params,
    pub runs: &'a [Run],
    pub samples: &'a [Vec<Sample>],
    pub events: &'a [Event],
    pub signalled: &'a HashSet<u64>,
    pub duration_ns: u64,
    /// When the scenario stopped starting runs (waiters then get SIGTERM).
    pub stopping_ns: u64,
}

/// Only when the key's value at an empty restart was not observed: how
/// long after it a section's data epoch is uncertain (the time from a
/// grant to its command's first stamp). Such sections are compared with
/// nobody and counted (`epoch_ambiguous`); the scenarios require none.
const AMBIGUOUS_NS: u64 = 50_000_000;

pub struct Sec<'a> {
    pub run: &'a Run,
    pub s: &'a Section,
    pub start: u64,
    pub end: u64,
    /// The data epoch of the incarnation that granted the lock (the epoch
    /// file the section read may already name the next one).
    pub epoch: u64,
    /// When the test froze it (every process seen stopped), if it did.
    pub frozen: Option<u64>,
}

impl Sec<'_> {
    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }
}

pub fn check(inp: &Input) -> Report {
    let p = inp.p;
    let mut r = Report {
        runs: inp.runs.len(),
        duration_ns: inp.duration_ns,
        ..Report::default()
    };
    for e in inp.events {
        *r.faults.entry(e.kind).or_default() += 1;
        if e.survived == Some(true) {
            r.restarts_survived += 1;
        }
    }
    let mut frozen: HashMap<u64, u64> = HashMap::new();
    for e in inp.events.iter().filter(|e| e.kind == Kind::HolderFreeze) {
        if let Some(run) = e.run {
            let t = frozen.entry(run).or_insert(e.start);
            *t = (*t).min(e.start);
        }
    }
    let killed: HashSet<u64> = runs_hit(inp.events, Kind::HolderKill);
    // Empty restarts: (when, the epoch that began, the key's value at the kill).
    let losses: Vec<(u64, u64, Option<Option<String>>)> = inp
        .events
        .iter()
        .filter_map(|e| Some((e.start, e.epoch?, e.at_kill.clone())))
        .collect();

    for run in inp.runs {
        check_run(&mut r, run, inp.signalled, &killed);
        // 69 and 75 mean the whole --timeout went by without the lock.
        let waited = Duration::from_nanos(run.exited - run.spawned);
        if matches!(run.code, Some(69 | 75)) && waited < p.timeout {
            r.violations.push(format!(
                "run {}: gave up with {} after {:.1} s of a {} s --timeout (stderr: {})",
                run.id,
                exit_label(run),
                waited.as_secs_f64(),
                p.timeout.as_secs(),
                tail(run)
            ));
        }
    }

    let mut ambiguous_sections = 0;
    let mut secs: Vec<Sec> = inp
        .runs
        .iter()
        .filter_map(|run| {
            let s = run.section.as_ref()?;
            let end = s.t1.or(run.death).unwrap_or(run.exited);
            let mut epoch = s.epoch;
            for (k, e, at_kill) in &losses {
                if s.epoch != *e {
                    continue;
                }
                match at_kill {
                    // The old incarnation's holder, whose command started
                    // after the epoch file changed: its lock is of the
                    // epoch before. Any other section reading epoch `e`
                    // was granted by the new incarnation (the file changed
                    // before the restart).
                    Some(held) if held.as_deref() == Some(s.token.as_str()) => epoch = e - 1,
                    Some(_) => {}
                    // Not observed: uncertain near the restart, compared
                    // with nobody (counted; the scenarios require none).
                    None if k + AMBIGUOUS_NS > s.t0 => {
                        ambiguous_sections += 1;
                        epoch = u64::MAX - run.id;
                    }
                    None => {}
                }
            }
            Some(Sec {
                run,
                s,
                start: s.t0,
                end,
                epoch,
                frozen: frozen.get(&run.id).copied(),
            })
        })
        .collect();
    r.epoch_ambiguous = ambiguous_sections;
    secs.sort_by_key(|x| x.start);
    r.sections = secs.len();

    check_overlaps(&mut r, &secs, inp, p);
    check_fencing(&mut r, &secs);
    for sec in &secs {
        lease_checks::check_lease(&mut r, sec, inp, &killed);
        if !sec.is_frozen() && !killed.contains(&sec.run.id) {
            lease_checks::check_released(&mut r, sec, inp);
        }
    }
    r
}

fn runs_hit(events: &[Event], kind: Kind) -> HashSet<u64> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .filter_map(|e| e.run)
        .collect()
}

pub fn exit_label(run: &Run) -> String {
    match (run.code, run.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "?".into(),
    }
}

/// Exit status, stderr and orphan checks of one run.
fn check_run(r: &mut Report, run: &Run, signalled: &HashSet<u64>, killed: &HashSet<u64>) {
    *r.exits.entry(exit_label(run)).or_default() += 1;
    let by_us = signalled.contains(&run.id);
    match (run.code, run.signal) {
        (Some(0 | 69 | 75), _) => {}
        (Some(70), _) => r.lost += 1,
        // SIGTERM at the end ends a wait, or is forwarded to a command that
        // just started (kills a redlock-run that had no handlers yet).
        (Some(143), _) | (None, Some(15)) if by_us => {}
        (None, Some(9)) if killed.contains(&run.id) => {}
        _ => r.violations.push(format!(
            "run {}: undocumented outcome {} (stderr: {})",
            run.id,
            exit_label(run),
            tail(run)
        )),
    }
    let err = std::fs::read_to_string(&run.stderr).unwrap_or_default();
    if err.contains("panicked") {
        r.violations.push(format!(
            "run {}: redlock-run panicked: {}",
            run.id,
            tail(run)
        ));
    }
    if let Some(o) = &run.outlived {
        r.violations.push(o.clone());
    }
    let cut_short = run.section.as_ref().is_some_and(|s| !s.ended());
    if cut_short && run.term_ignoring && run.code == Some(70) {
        r.term_ignoring_killed += 1;
    }
}

/// The last lines of a run's stderr, for violation messages.
pub fn tail(run: &Run) -> String {
    let err = std::fs::read_to_string(&run.stderr).unwrap_or_default();
    let lines: Vec<&str> = err.lines().collect();
    lines[lines.len().saturating_sub(6)..].join(" | ")
}

pub fn describe(sec: &Sec) -> String {
    format!(
        "run {} (contender {}, fencing {}, {}, section {:.1}..{:.1} ms{})",
        sec.run.id,
        sec.run.contender,
        sec.s.fencing,
        exit_label(sec.run),
        ms(sec.start),
        ms(sec.end),
        if sec.s.ended() { "" } else { ", cut short" }
    )
}

/// Mutual exclusion, separations and hand-over latencies.
fn check_overlaps(r: &mut Report, secs: &[Sec], inp: &Input, p: &Params) {
    let events = inp.events;
    let mut active: Vec<usize> = Vec::new();
    // The earlier section that ended last.
    let mut latest: Option<usize> = None;
    for j in 0..secs.len() {
        let b = &secs[j];
        active.retain(|&i| secs[i].end > b.start);
        for &i in &active {
            let a = &secs[i];
            // Excused only when the earlier one was frozen before the later
            // one began: the freeze let its lease expire and the lock pass
            // on. An overlap that was already there when the freeze came,
            // or a frozen later section, is not explained by it.
            if a.frozen.is_some_and(|f| f < b.start) {
                r.overlaps_frozen += 1;
            } else if a.epoch != b.epoch {
                r.overlaps_data_loss += 1;
            } else {
                r.overlaps_promised += 1;
                let sep = b.start as i64 - a.end as i64;
                r.min_separation_ns = Some(r.min_separation_ns.map_or(sep, |m| m.min(sep)));
                r.violations.push(format!(
                    "overlap of {:.2} ms: {} and {}",
                    ms(a.end.min(b.end) - b.start),
                    describe(a),
                    describe(b)
                ));
            }
        }
        // Separation from the section just before (by end) in the same
        // epoch, when neither was frozen.
        if let Some(prev) = latest.filter(|&i| secs[i].end <= b.start) {
            let a = &secs[prev];
            let gap = b.start - a.end;
            r.max_gap_ns = r.max_gap_ns.max(gap);
            if !a.is_frozen() && !b.is_frozen() && a.epoch == b.epoch {
                let sep = gap as i64;
                r.min_separation_ns = Some(r.min_separation_ns.map_or(sep, |m| m.min(sep)));
            }
            // A clean hand-over: a release to a run that was already
            // waiting, with no fault anywhere near, before the end (when
            // waiters are sent SIGTERM, one may take a wake-up with it).
            let quiet = events
                .iter()
                .all(|e| e.end + nanos(p.ttl) < a.end || e.start > b.start);
            if quiet
                && a.run.code == Some(0)
                && a.s.ended()
                && b.run.spawned < a.end
                && b.start < inp.stopping_ns
                && active.is_empty()
            {
                r.handovers.push(gap);
                if r.worst_handover.as_ref().is_none_or(|(g, _)| *g < gap) {
                    r.worst_handover = Some((gap, format!("{} -> {}", describe(a), describe(b))));
                }
            }
        }
        if latest.is_none_or(|i| secs[i].end < b.end) {
            latest = Some(j);
        }
        active.push(j);
    }
}

pub fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// Fencing order and the resource's verdicts.
///
/// The resource keeps one file per data epoch, chosen by what the epoch
/// file said when the section began. The old incarnation's holder, if its
/// command started after an empty restart, writes its old (higher) token
/// into the new epoch's file, and genuine new-epoch sections are then
/// refused: that is the data loss the contract excludes, counted apart
/// (only with that holder's token as the one seen). So is a refusal of
/// that holder itself.
///
/// A refusal because of a frozen holder is fencing doing its job only if
/// the token seen belongs to a section of the same epoch that began after
/// the freeze (the lock passed on while it was stopped); a holder frozen
/// between its start stamp and its first write may see that write refused
/// too.
fn check_fencing(r: &mut Report, secs: &[Sec]) {
    let misplaced: HashSet<(u64, u64)> = secs
        .iter()
        .filter(|x| x.epoch != x.s.epoch)
        .map(|x| (x.s.epoch, x.s.fencing))
        .collect();
    let data_loss =
        |sec: &Sec, seen: u64| sec.epoch != sec.s.epoch || misplaced.contains(&(sec.s.epoch, seen));
    let passed_on = |sec: &Sec, seen: u64| {
        sec.frozen.is_some_and(|f| {
            secs.iter().any(|y| {
                y.run.id != sec.run.id
                    && y.s.epoch == sec.s.epoch
                    && y.s.fencing == seen
                    && y.start > f
            })
        })
    };
    let mut last: HashMap<u64, &Sec> = HashMap::new();
    for sec in secs {
        if let Some(prev) = last.get(&sec.epoch) {
            if sec.s.fencing <= prev.s.fencing {
                r.violations.push(format!(
                    "fencing token did not increase: {} started after {}",
                    describe(sec),
                    describe(prev)
                ));
            }
        }
        if last
            .get(&sec.epoch)
            .is_none_or(|prev| sec.s.fencing > prev.s.fencing)
        {
            last.insert(sec.epoch, sec);
        }
        for (what, ok, seen) in [
            ("first", sec.s.begin_ok, sec.s.begin_seen),
            ("last", sec.s.commit_ok, sec.s.commit_seen),
        ] {
            if ok != Some(false) {
                continue;
            }
            if data_loss(sec, seen) {
                r.refused_data_loss += 1;
            } else if passed_on(sec, seen) {
                r.stale_rejections += 1;
            } else {
                r.violations.push(format!(
                    "the resource refused the {what} write of {}: it had seen token {seen}, \
                     not from a section that began after this one was frozen",
                    describe(sec)
                ));
            }
        }
    }
}
