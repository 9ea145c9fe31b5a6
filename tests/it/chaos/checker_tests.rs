//! The checker on synthetic histories, built by hand: no servers. For every
//! category the checker excuses, one history it must excuse and one, as
//! close to it as possible, that it must flag: a checker that excuses too
//! much passes a broken tool.
//!
//! Times are in milliseconds from an arbitrary origin; one master unless
//! said otherwise, `--ttl 1s` (refresh 333 ms).

use std::collections::HashSet;
use std::path::PathBuf;

use super::checker::{Input, Report, check};
use super::faults::{Event, Kind};
use super::harness::{Params, Run, Sample};
use super::section::Section;

const MS: u64 = 1_000_000;

struct History {
    p: Params,
    runs: Vec<Run>,
    samples: Vec<Vec<Sample>>,
    events: Vec<Event>,
}

impl History {
    fn new(masters: usize) -> Self {
        History {
            p: Params::new(4, masters, 1),
            runs: Vec::new(),
            samples: vec![Vec::new(); masters],
            events: Vec::new(),
        }
    }

    /// A run whose section (`sec`) started; `code` its exit code, `exited`
    /// when redlock-run exited, `death` when the section's process died.
    fn run(&mut self, contender: usize, sec: Section, code: i32, exited: u64) {
        let death = sec.t1.unwrap_or(exited * MS - MS);
        self.runs.push(Run {
            id: self.runs.len() as u64,
            contender,
            spawned: sec.t0.saturating_sub(50 * MS),
            exited: exited * MS,
            code: Some(code),
            signal: None,
            death: Some(death),
            section: Some(sec),
            outlived: None,
            term_ignoring: false,
            stderr: PathBuf::from("/nonexistent/stderr"),
        });
    }

    /// Samples of master `m` every 2 ms in `from..to` seeing `value` (with
    /// a PTTL counting down from `pttl` at `from`; a fresh renewal every
    /// 300 ms) or no key.
    fn see(&mut self, m: usize, from: u64, to: u64, value: Option<&str>, pttl: i64) {
        let mut t = from;
        while t < to {
            let left = pttl - ((t - from) % 300) as i64;
            self.samples[m].push(Sample {
                t_send: t * MS,
                t_recv: t * MS + MS / 4,
                value: value.map(String::from),
                pttl: if value.is_some() { left } else { -2 },
            });
            t += 2;
        }
    }

    fn event(&mut self, kind: Kind, from: u64, to: u64, f: impl FnOnce(&mut Event)) {
        let mut e = Event::between(kind, from * MS, to * MS);
        f(&mut e);
        self.events.push(e);
    }

    fn check(&self) -> Report {
        let signalled = HashSet::new();
        let r = check(&Input {
            p: &self.p,
            runs: &self.runs,
            samples: &self.samples,
            events: &self.events,
            signalled: &signalled,
            duration_ns: 10_000 * MS,
            stopping_ns: 10_000 * MS,
        });
        eprintln!("{}", r.summary("synthetic"));
        r
    }
}

/// A section: start and end (None: cut short) in ms, fencing token, the
/// epoch file it read, its lock token, and the resource's verdicts.
fn sec(t0: u64, t1: Option<u64>, fencing: u64, epoch: u64, token: &str) -> Section {
    Section {
        t0: t0 * MS,
        pid: 1,
        fencing,
        epoch,
        token: token.into(),
        begin_ok: Some(true),
        begin_seen: fencing.saturating_sub(1),
        t1: t1.map(|t| t * MS),
        commit_ok: t1.map(|_| true),
        commit_seen: fencing,
    }
}

fn has(r: &Report, what: &str) -> bool {
    r.violations.iter().any(|v| v.contains(what))
}

/// The escape of issue 17: after an empty restart, waiter U acquires token
/// 1 and starts 20 ms later; a stale undo deletes its key; S acquires
/// token 2 and overlaps U. U's token is not the one the old incarnation
/// held at the kill, so U is of the new epoch: the overlap is flagged.
#[test]
fn checker_flags_an_overlap_right_after_an_empty_restart() {
    let mut h = History::new(1);
    h.event(Kind::RestartEmpty, 1000, 1010, |e| {
        e.epoch = Some(1);
        e.master = Some(0);
        e.at_kill = Some(None);
    });
    h.see(0, 1012, 1060, Some("u"), 1000);
    h.see(0, 1060, 1100, None, 0);
    h.see(0, 1100, 1150, Some("s"), 1000);
    h.see(0, 1152, 1500, None, 0);
    h.run(1, sec(1020, None, 1, 1, "u"), 70, 1410);
    let mut s = sec(1100, Some(1150), 2, 1, "s");
    s.begin_seen = 1;
    h.run(2, s, 0, 1152);
    let r = h.check();
    assert_eq!(r.overlaps_promised, 1, "{:?}", r.violations);
    assert!(has(&r, "overlap of"), "{:?}", r.violations);
    assert_eq!(r.epoch_ambiguous, 0);
}

/// The same shape, but U holds the token the key had at the kill: its lock
/// came from the old incarnation (its command started after the epoch file
/// changed), and its overlap with a new-epoch section, and the refusal of
/// that section's writes by U's higher old token, are the data loss the
/// contract excludes.
#[test]
fn checker_excuses_the_old_incarnations_holder_after_an_empty_restart() {
    let mut h = History::new(1);
    h.see(0, 900, 1000, Some("u"), 900);
    h.event(Kind::RestartEmpty, 1000, 1010, |e| {
        e.epoch = Some(1);
        e.master = Some(0);
        e.at_kill = Some(Some("u".into()));
    });
    h.see(0, 1012, 1100, None, 0);
    h.see(0, 1100, 1150, Some("s"), 1000);
    h.see(0, 1152, 1500, None, 0);
    h.run(1, sec(1005, None, 57, 1, "u"), 70, 1410);
    let mut s = sec(1100, Some(1150), 1, 1, "s");
    s.begin_ok = Some(false);
    s.begin_seen = 57;
    s.commit_ok = Some(false);
    s.commit_seen = 57;
    h.run(2, s, 0, 1152);
    let r = h.check();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.overlaps_data_loss, 1);
    assert_eq!(r.refused_data_loss, 2);
}

/// A restart whose holder was not observed falls back to the wide rule:
/// counted, so that a scenario can require none.
#[test]
fn checker_counts_sections_of_an_unobserved_restart_as_ambiguous() {
    let mut h = History::new(1);
    h.event(Kind::RestartEmpty, 1000, 1010, |e| {
        e.epoch = Some(1);
        e.master = Some(0);
    });
    h.see(0, 1012, 1100, Some("u"), 1000);
    h.see(0, 1100, 1300, None, 0);
    h.run(1, sec(1020, Some(1090), 1, 1, "u"), 0, 1092);
    let r = h.check();
    assert_eq!(r.epoch_ambiguous, 1);
}

/// A frozen holder's lease passes on while it is stopped: the overlap with
/// a section that began after the freeze, and the refusal of its late
/// write, are excused.
#[test]
fn checker_excuses_an_overlap_that_began_after_a_freeze() {
    let mut h = History::new(1);
    h.see(0, 100, 498, Some("a"), 1000);
    h.see(0, 500, 1598, None, 0);
    h.see(0, 1600, 1700, Some("b"), 1000);
    h.see(0, 1702, 2500, None, 0);
    let mut a = sec(100, Some(2000), 1, 0, "a");
    a.commit_ok = Some(false);
    a.commit_seen = 2;
    h.run(0, a, 70, 2010);
    h.run(1, sec(1600, Some(1700), 2, 0, "b"), 0, 1702);
    h.event(Kind::HolderFreeze, 500, 1650, |e| {
        e.run = Some(0);
        e.contender = Some(0);
    });
    let r = h.check();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.overlaps_frozen, 1);
    assert_eq!(r.stale_rejections, 1);
}

/// The same freeze, but the other section began before it: the overlap was
/// there already, and the freeze cannot explain it (nor the refused write).
#[test]
fn checker_flags_an_overlap_that_began_before_a_freeze() {
    let mut h = History::new(1);
    h.see(0, 100, 298, Some("a"), 1000);
    h.see(0, 300, 400, Some("b"), 1000);
    h.see(0, 402, 2500, None, 0);
    let mut a = sec(100, Some(2000), 1, 0, "a");
    a.commit_ok = Some(false);
    a.commit_seen = 2;
    h.run(0, a, 70, 2010);
    h.run(1, sec(300, Some(400), 2, 0, "b"), 0, 402);
    h.event(Kind::HolderFreeze, 500, 1650, |e| {
        e.run = Some(0);
        e.contender = Some(0);
    });
    let r = h.check();
    assert_eq!(r.overlaps_promised, 1, "{:?}", r.violations);
    assert_eq!(r.overlaps_frozen, 0);
    assert!(has(&r, "refused the last write"), "{:?}", r.violations);
}

/// A frozen section that began after the other: the freeze came after the
/// overlap began, so it is flagged.
#[test]
fn checker_flags_an_overlap_where_only_the_later_section_was_frozen() {
    let mut h = History::new(1);
    h.see(0, 100, 2500, Some("a"), 1000);
    h.run(0, sec(100, Some(2000), 1, 0, "a"), 0, 2002);
    h.run(1, sec(300, Some(1900), 2, 0, "b"), 70, 1910);
    h.event(Kind::HolderFreeze, 400, 1650, |e| {
        e.run = Some(1);
        e.contender = Some(1);
    });
    let r = h.check();
    assert_eq!(r.overlaps_promised, 1, "{:?}", r.violations);
}

/// Two holders with one fencing token in one epoch: flagged (the order
/// check, and the resource's refusal of the second's first write).
#[test]
fn checker_flags_an_equal_fencing_token() {
    let mut h = History::new(1);
    h.see(0, 100, 200, Some("a"), 1000);
    h.see(0, 202, 300, None, 0);
    h.see(0, 300, 400, Some("b"), 1000);
    h.see(0, 402, 600, None, 0);
    h.run(0, sec(100, Some(200), 5, 0, "a"), 0, 202);
    let mut b = sec(300, Some(400), 5, 0, "b");
    b.begin_ok = Some(false);
    b.begin_seen = 5;
    b.commit_ok = Some(false);
    b.commit_seen = 5;
    h.run(1, b, 0, 402);
    let r = h.check();
    assert!(
        has(&r, "fencing token did not increase"),
        "{:?}",
        r.violations
    );
    assert!(has(&r, "refused the first write"), "{:?}", r.violations);
}

/// The same token across an empty restart (the counter restarted): the
/// epochs differ, nothing to flag.
#[test]
fn checker_excuses_an_equal_fencing_token_across_an_empty_restart() {
    let mut h = History::new(1);
    h.see(0, 100, 200, Some("a"), 1000);
    h.see(0, 202, 300, None, 0);
    h.event(Kind::RestartEmpty, 240, 250, |e| {
        e.epoch = Some(1);
        e.master = Some(0);
        e.at_kill = Some(None);
    });
    h.see(0, 300, 400, Some("b"), 1000);
    h.see(0, 402, 600, None, 0);
    h.run(0, sec(100, Some(200), 5, 0, "a"), 0, 202);
    let mut b = sec(300, Some(400), 5, 1, "b");
    b.begin_seen = 0;
    h.run(1, b, 0, 402);
    let r = h.check();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

/// Quorum of 3: master 0 goes down holding the token, master 1 loses it,
/// master 2 keeps it. Once master 0's copy could have expired (its last
/// sample's PTTL ran out), only one master holds it: the lease is lost,
/// and a run that goes on and exits 0 is flagged. The down master's last
/// "holding" sample does not keep the quorum alive.
#[test]
fn checker_flags_a_quorum_loss_while_a_master_is_down() {
    let mut h = History::new(3);
    h.see(0, 90, 110, Some("x"), 1000);
    h.event(Kind::MasterDown, 112, 3100, |e| e.master = Some(0));
    h.see(1, 90, 200, Some("x"), 1000);
    h.see(1, 200, 3100, None, 0);
    h.see(2, 90, 3000, Some("x"), 1000);
    h.see(2, 3002, 3100, None, 0);
    h.run(0, sec(100, Some(3000), 1, 0, "x"), 0, 3002);
    let r = h.check();
    assert!(has(&r, "lease lost"), "{:?}", r.violations);
}

/// The same, but master 0 is back (still holding, renewed) before its copy
/// could have expired: never fewer than a quorum, nothing to flag.
#[test]
fn checker_excuses_a_master_down_for_less_than_its_copy_lives() {
    let mut h = History::new(3);
    h.see(0, 90, 110, Some("x"), 1000);
    h.event(Kind::MasterDown, 112, 900, |e| e.master = Some(0));
    h.see(0, 900, 3000, Some("x"), 1000);
    h.see(0, 3002, 3100, None, 0);
    h.see(1, 90, 200, Some("x"), 1000);
    h.see(1, 200, 3100, None, 0);
    h.see(2, 90, 3000, Some("x"), 1000);
    h.see(2, 3002, 3100, None, 0);
    h.run(0, sec(100, Some(3000), 1, 0, "x"), 0, 3002);
    let r = h.check();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

/// A lock left on master 1 after the run exited 0, while master 0 (not 1)
/// was down: that fault cannot have kept the release from master 1.
fn left_behind(fault_master: usize, fault: (u64, u64), kind: Kind) -> Report {
    let mut h = History::new(3);
    h.see(0, 100, 205, Some("y"), 1000);
    h.see(0, 206, 500, None, 0);
    h.see(1, 100, 400, Some("y"), 1000);
    h.see(2, 100, 205, Some("y"), 1000);
    h.see(2, 206, 500, None, 0);
    h.run(0, sec(100, Some(200), 1, 0, "y"), 0, 210);
    h.event(kind, fault.0, fault.1, |e| e.master = Some(fault_master));
    h.check()
}

#[test]
fn checker_excuses_a_lock_left_on_the_master_a_fault_hit_during_the_release() {
    let r = left_behind(1, (190, 300), Kind::RedisPause);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.left_behind_excused, 1);
}

#[test]
fn checker_flags_a_lock_left_on_another_master_than_the_faults() {
    let r = left_behind(0, (190, 300), Kind::MasterDown);
    assert!(
        has(&r, "lock left behind on master 1"),
        "{:?}",
        r.violations
    );
}

#[test]
fn checker_flags_a_lock_left_after_the_fault_had_healed() {
    let r = left_behind(1, (50, 150), Kind::RedisPause);
    assert!(
        has(&r, "lock left behind on master 1"),
        "{:?}",
        r.violations
    );
}

#[test]
fn checker_flags_a_lock_left_behind_a_lost_reply_or_an_empty_restart() {
    for kind in [Kind::LostReply, Kind::RestartEmpty] {
        let r = left_behind(1, (190, 300), kind);
        assert!(
            has(&r, "lock left behind on master 1"),
            "{kind:?}: {:?}",
            r.violations
        );
    }
}
