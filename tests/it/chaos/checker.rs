//! The guarantees, checked over what a scenario recorded: every run's exit
//! status and section (start/end on CLOCK_MONOTONIC, fencing token, the
//! resource's verdicts, the moment its process died), the key's value and
//! PTTL sampled on every master, and the faults injected.
//!
//! - Mutual exclusion: no two sections overlap, except where the contract
//!   does not promise it: a holder frozen by the test past its TTL (the
//!   fencing token is what exposes that one), or sections on either side
//!   of a data loss (a master restarted without persistence).
//! - Fencing: tokens strictly increase in section start order within a
//!   data epoch; the resource never refuses a section's first write, and
//!   refuses the late write of a frozen holder (counted, expected).
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use super::faults::{Event, Kind};
use super::harness::{Params, Run, Sample};
use super::ms;
use super::section::Section;

pub struct Input<'a> {
    pub p: &'a Params,
    pub runs: &'a [Run],
    pub samples: &'a [Vec<Sample>],
    pub events: &'a [Event],
    pub signalled: &'a HashSet<u64>,
    pub duration_ns: u64,
}

/// Counts, worst cases and violations of one scenario (or many, merged).
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub runs: usize,
    pub sections: usize,
    pub exits: BTreeMap<String, usize>,
    pub lost: usize,
    pub term_ignoring_killed: usize,
    pub stale_rejections: usize,
    pub overlaps_promised: usize,
    pub overlaps_frozen: usize,
    pub overlaps_data_loss: usize,
    /// Sections that began within AMBIGUOUS_NS of a data loss.
    pub epoch_ambiguous: usize,
    pub lease_checked: usize,
    pub lease_unverifiable: usize,
    /// Smallest margin between a stopped command's death and the lower
    /// bound of its lease's expiry (leases that ran out, not removed ones).
    pub min_lease_slack_ns: Option<i64>,
    /// Locks still in Redis after their run exited, while a fault excused it.
    pub left_behind_excused: usize,
    pub handovers: Vec<u64>,
    pub max_gap_ns: u64,
    pub min_separation_ns: Option<i64>,
    pub faults: BTreeMap<Kind, usize>,
    pub restarts_survived: usize,
    pub duration_ns: u64,
    pub violations: Vec<String>,
}

/// How long after a restart without persistence a section's data epoch
/// is uncertain (the time from a grant to its command's first stamp).
const AMBIGUOUS_NS: u64 = 50_000_000;

struct Sec<'a> {
    run: &'a Run,
    s: &'a Section,
    start: u64,
    end: u64,
    epoch: u64,
    frozen: bool,
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
    let frozen: HashSet<u64> = runs_hit(inp.events, Kind::HolderFreeze);
    let killed: HashSet<u64> = runs_hit(inp.events, Kind::HolderKill);
    let losses: Vec<(u64, u64)> = inp
        .events
        .iter()
        .filter_map(|e| Some((e.start, e.epoch?)))
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
            // A section that starts just after a data loss may hold a lock
            // the old incarnation granted (its command started after the
            // epoch file changed): compare it with nobody.
            let ambiguous = losses
                .iter()
                .any(|&(k, e)| s.epoch == e && k + AMBIGUOUS_NS > s.t0);
            let epoch = if ambiguous {
                ambiguous_sections += 1;
                u64::MAX - run.id
            } else {
                s.epoch
            };
            Some(Sec {
                run,
                s,
                start: s.t0,
                end,
                epoch,
                frozen: frozen.contains(&run.id),
            })
        })
        .collect();
    r.epoch_ambiguous = ambiguous_sections;
    secs.sort_by_key(|x| x.start);
    r.sections = secs.len();

    check_overlaps(&mut r, &secs, inp.events, p);
    check_fencing(&mut r, &secs);
    for sec in &secs {
        check_lease(&mut r, sec, inp, &killed);
        if !sec.frozen && !killed.contains(&sec.run.id) {
            check_released(&mut r, sec, inp);
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

fn exit_label(run: &Run) -> String {
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

fn describe(sec: &Sec) -> String {
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
fn check_overlaps(r: &mut Report, secs: &[Sec], events: &[Event], p: &Params) {
    let mut active: Vec<usize> = Vec::new();
    // The earlier section that ended last.
    let mut latest: Option<usize> = None;
    for j in 0..secs.len() {
        let b = &secs[j];
        active.retain(|&i| secs[i].end > b.start);
        for &i in &active {
            let a = &secs[i];
            if a.frozen || b.frozen {
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
            if !a.frozen && !b.frozen && a.epoch == b.epoch {
                let sep = gap as i64;
                r.min_separation_ns = Some(r.min_separation_ns.map_or(sep, |m| m.min(sep)));
            }
            // A clean hand-over: a release to a run that was already
            // waiting, with no fault anywhere near.
            let quiet = events
                .iter()
                .all(|e| e.end + nanos(p.ttl) < a.end || e.start > b.start);
            if quiet
                && a.run.code == Some(0)
                && a.s.ended()
                && b.run.spawned < a.end
                && active.is_empty()
            {
                r.handovers.push(gap);
            }
        }
        if latest.is_none_or(|i| secs[i].end < b.end) {
            latest = Some(j);
        }
        active.push(j);
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// Fencing order and the resource's verdicts.
fn check_fencing(r: &mut Report, secs: &[Sec]) {
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
        if sec.s.begin_ok == Some(false) {
            r.violations.push(format!(
                "the resource refused the first write of {}: it had seen token {}",
                describe(sec),
                sec.s.begin_seen
            ));
        }
        if sec.s.commit_ok == Some(false) {
            r.stale_rejections += 1;
            if !sec.frozen {
                r.violations.push(format!(
                    "the resource refused the last write of {} (it had seen token {}), \
                     but that holder was never frozen",
                    describe(sec),
                    sec.s.commit_seen
                ));
            }
        }
    }
}

/// When the samples show the token gone from enough masters that no
/// quorum holds it any more (None: never seen lost while it ran), and
/// what the key held then.
fn lost_at<'a>(
    samples: &'a [Vec<Sample>],
    token: &str,
    after: u64,
    p: &Params,
) -> Option<(u64, &'a Sample)> {
    let mut firsts: Vec<&Sample> = samples
        .iter()
        .filter_map(|ms| {
            ms.iter()
                .find(|x| x.t_send > after && x.value.as_deref() != Some(token))
        })
        .collect();
    firsts.sort_unstable_by_key(|x| x.t_recv);
    let k = p.masters - p.quorum() + 1;
    firsts.get(k - 1).map(|x| (x.t_recv, *x))
}

/// The faults around a section, for violation messages.
fn faults_near(sec: &Sec, events: &[Event], p: &Params) -> String {
    let near: Vec<String> = events
        .iter()
        .filter(|e| e.end + nanos(p.ttl) >= sec.start && e.start <= sec.end)
        .map(|e| {
            let rel = e.start as i64 - sec.start as i64;
            format!(
                "{:?}{} at {:+.1} ms for {:.1} ms",
                e.kind,
                e.contender
                    .map(|c| format!("(contender {c})"))
                    .unwrap_or_default(),
                rel as f64 / 1e6,
                ms(e.end - e.start)
            )
        })
        .collect();
    if near.is_empty() {
        "no fault nearby".into()
    } else {
        near.join(", ")
    }
}

/// A lower bound of when the lease (a quorum of it) expires in Redis.
fn expiry_lower_bound(samples: &[Vec<Sample>], token: &str, p: &Params) -> (u64, u64) {
    let mut per_master: Vec<u64> = Vec::new();
    let mut last_seen = 0;
    for ms in samples {
        let mut e = 0;
        for x in ms.iter().filter(|x| x.value.as_deref() == Some(token)) {
            if x.pttl > 0 {
                e = e.max(x.t_send + x.pttl as u64 * 1_000_000);
            }
            last_seen = last_seen.max(x.t_send);
        }
        per_master.push(e);
    }
    per_master.sort_unstable_by(|a, b| b.cmp(a));
    (per_master[p.quorum() - 1], last_seen)
}

/// Lost => 70, and 70 => stopped before the lease could expire.
fn check_lease(r: &mut Report, sec: &Sec, inp: &Input, killed: &HashSet<u64>) {
    let p = inp.p;
    let run = sec.run;
    let by_us = killed.contains(&run.id) || inp.signalled.contains(&run.id);
    let lost_sample = lost_at(inp.samples, &sec.s.token, sec.start, p);
    let lost = lost_sample.map(|(l, _)| l);
    if !by_us && run.code != Some(70) {
        if let (Some((l, x)), Some(t1)) = (lost_sample, sec.s.t1) {
            if l < t1 {
                r.violations.push(format!(
                    "lease lost {:.1} ms into the section (a sample sent at {:+.1} ms saw \
                     {:?} with PTTL {}), the command ran on for {:.1} ms, yet {}: {}; \
                     faults: {}; stderr: {}",
                    ms(l - sec.start),
                    (x.t_send as i64 - sec.start as i64) as f64 / 1e6,
                    x.value,
                    x.pttl,
                    ms(t1 - l),
                    exit_label(run),
                    describe(sec),
                    faults_near(sec, inp.events, p),
                    tail(run)
                ));
            }
        }
        if !sec.s.ended() && !sec.frozen {
            r.violations.push(format!(
                "command cut short without a lost lock: {} (stderr: {})",
                describe(sec),
                tail(run)
            ));
        }
    }
    if run.code != Some(70) || sec.frozen {
        return;
    }
    let Some(death) = run.death else { return };
    let (expiry, last_seen) = expiry_lower_bound(inp.samples, &sec.s.token, p);
    let early = lost.filter(|&l| l < expiry);
    let (bound, what) = match early {
        Some(l) => (
            l + nanos(p.refresh() * 5 / 4 + p.kill_after()) + 100_000_000,
            "the key was gone; 'at once' bound",
        ),
        None => (expiry + 5_000_000, "lease expiry (lower bound)"),
    };
    if death <= bound {
        r.lease_checked += 1;
        if early.is_none() {
            let slack = expiry as i64 - death as i64;
            r.min_lease_slack_ns = Some(r.min_lease_slack_ns.map_or(slack, |m| m.min(slack)));
        }
        return;
    }
    let blind = inp
        .events
        .iter()
        .any(|e| e.kind.blinds_sampler() && e.end >= last_seen && e.start <= death);
    if blind {
        r.lease_unverifiable += 1;
    } else {
        r.violations.push(format!(
            "command died {:.1} ms after the {what} at {:.1} ms: {}; faults: {}; stderr: {}",
            ms(death - bound),
            ms(bound),
            describe(sec),
            faults_near(sec, inp.events, p),
            tail(run)
        ));
    }
}

/// A run that exited must not leave its lock behind (release is a
/// compare-and-delete before exit), unless a fault on its link or on a
/// master was under way when it exited and kept the release from landing.
fn check_released(r: &mut Report, sec: &Sec, inp: &Input) {
    let run = sec.run;
    let seen_after = inp.samples.iter().flatten().find(|x| {
        x.t_send > run.exited + 1_000_000 && x.value.as_deref() == Some(sec.s.token.as_str())
    });
    let Some(x) = seen_after else { return };
    let excused = inp.events.iter().any(|e| {
        e.contender.is_none_or(|c| c == run.contender) && e.start <= run.exited && e.end >= sec.end
    });
    if excused {
        r.left_behind_excused += 1;
    } else {
        r.violations.push(format!(
            "lock left behind: still held {:.1} ms after redlock-run exited (PTTL {} ms), \
             with no fault under way: {} (stderr: {})",
            ms(x.t_send - run.exited),
            x.pttl,
            describe(sec),
            tail(run)
        ));
    }
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

impl Report {
    pub fn merge(&mut self, o: Report) {
        self.runs += o.runs;
        self.sections += o.sections;
        for (k, v) in o.exits {
            *self.exits.entry(k).or_default() += v;
        }
        self.lost += o.lost;
        self.term_ignoring_killed += o.term_ignoring_killed;
        self.stale_rejections += o.stale_rejections;
        self.overlaps_promised += o.overlaps_promised;
        self.overlaps_frozen += o.overlaps_frozen;
        self.overlaps_data_loss += o.overlaps_data_loss;
        self.epoch_ambiguous += o.epoch_ambiguous;
        self.lease_checked += o.lease_checked;
        self.lease_unverifiable += o.lease_unverifiable;
        self.left_behind_excused += o.left_behind_excused;
        self.min_lease_slack_ns = match (self.min_lease_slack_ns, o.min_lease_slack_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.handovers.extend(o.handovers);
        self.max_gap_ns = self.max_gap_ns.max(o.max_gap_ns);
        self.min_separation_ns = match (self.min_separation_ns, o.min_separation_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (k, v) in o.faults {
            *self.faults.entry(k).or_default() += v;
        }
        self.restarts_survived += o.restarts_survived;
        self.duration_ns += o.duration_ns;
        self.violations.extend(o.violations);
    }

    pub fn handover_ms(&self, q: f64) -> f64 {
        let mut h = self.handovers.clone();
        h.sort_unstable();
        ms(percentile(&h, q))
    }

    /// One paragraph for a scenario's output.
    pub fn summary(&self, name: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "chaos {name}: {} runs, {} sections in {:.1} s; exits {:?}",
            self.runs,
            self.sections,
            self.duration_ns as f64 / 1e9,
            self.exits
        );
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k:?} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "  faults: {}; term-ignoring commands SIGKILLed: {}",
            faults.join(", "),
            self.term_ignoring_killed
        );
        let _ = writeln!(
            s,
            "  lost leases (70): {}; lease deadline checks: {} ok (min slack {}), \
             {} unverifiable; stale-token rejections: {}; locks left behind during a fault: {}",
            self.lost,
            self.lease_checked,
            self.min_lease_slack_ns
                .map_or("–".into(), |s| format!("{:.1} ms", s as f64 / 1e6)),
            self.lease_unverifiable,
            self.stale_rejections,
            self.left_behind_excused
        );
        let _ = writeln!(
            s,
            "  overlaps: {} where promised, {} with a frozen holder, {} across a data loss \
             ({} sections of uncertain epoch)",
            self.overlaps_promised,
            self.overlaps_frozen,
            self.overlaps_data_loss,
            self.epoch_ambiguous
        );
        let _ = writeln!(
            s,
            "  hand-over (release -> next start): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
             over {}; max gap {:.1} ms; min separation {:.2} ms",
            self.handover_ms(0.5),
            self.handover_ms(0.99),
            self.handover_ms(1.0),
            self.handovers.len(),
            ms(self.max_gap_ns),
            self.min_separation_ns.unwrap_or(0) as f64 / 1e6
        );
        if !self.violations.is_empty() {
            let _ = writeln!(s, "  VIOLATIONS ({}):", self.violations.len());
            for v in self.violations.iter().take(20) {
                let _ = writeln!(s, "   - {v}");
            }
        }
        s
    }

    /// Print the summary; fail with it if any guarantee was broken.
    pub fn assert_clean(&self, name: &str) {
        let s = self.summary(name);
        eprintln!("{s}");
        assert!(self.violations.is_empty(), "{s}");
    }
}
