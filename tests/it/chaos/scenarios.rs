//! The seeded CI set: each scenario runs 4–16 contenders on one key under a
//! fixed fault schedule (the seed fixes which faults, where and how long;
//! the machine's timing does the rest) and then checks every guarantee.
//! One chaos test runs at a time (`serial`); together they take about two
//! minutes.

use std::time::{Duration, Instant};

use super::faults::Kind;
use super::harness::{Params, World};
use super::serial;
use crate::support::proxy::Mode;

const SEED: u64 = 0x5eed_0001;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Run `step` (one fault, then a pause) until `length` has passed.
fn schedule(w: &mut World, length: Duration, mut step: impl FnMut(&mut World)) {
    let until = Instant::now() + length;
    while Instant::now() < until {
        step(w);
        let pause = ms(w.rng.range(150, 600));
        w.idle(pause);
    }
}

#[test]
fn chaos_sixteen_contenders_hand_over_without_faults() {
    let _one = serial();
    let mut w = World::start(Params::new(16, 1, SEED));
    w.idle(Duration::from_secs(8));
    let r = w.finish();
    r.assert_clean("16 contenders, no faults");
    r.assert_effective("16 contenders, no faults", 50, false);
    assert_eq!(r.lost, 0, "a lease was lost with no fault at all");
    assert!(!r.handovers.is_empty(), "no clean hand-over measured");
}

#[test]
fn chaos_one_sided_partitions_and_commands_that_ignore_sigterm() {
    let _one = serial();
    let p = Params {
        long: 0.12,
        term_ignoring: 0.5,
        ..Params::new(8, 1, SEED + 1)
    };
    let mut w = World::start(p);
    // A lease certainly lost (see the quorum scenario), by a command that
    // ignores SIGTERM: it cannot end before its lease would, so it must
    // be SIGKILLed (cut short, exit 70: counted below). The holder faults
    // below only may cost one.
    assert!(
        w.cut_off_a_holder_past_its_lease(Duration::from_secs(20), |h| h.term_ignoring),
        "no SIGTERM-ignoring holder came with more than a lease of its section left to run"
    );
    schedule(&mut w, Duration::from_secs(24), |w| {
        let c = w.rng.below(w.p.contenders as u64) as usize;
        match w.rng.below(5) {
            // The holder cut off for longer than its lease: stopped in time.
            0 | 1 => {
                let d = ms(w.rng.range(900, 1500));
                w.proxy_fault_on_holder(Mode::Blackhole, d, true);
            }
            2 => {
                let delay = ms(w.rng.range(20, 250));
                let d = ms(w.rng.range(500, 1200));
                w.proxy_fault(c, Mode::Delay(delay), d, None);
            }
            3 => {
                let d = ms(w.rng.range(100, 400));
                w.proxy_fault(c, Mode::Reset, d, None);
            }
            _ => {
                let d = ms(w.rng.range(300, 1500));
                w.proxy_fault(c, Mode::Blackhole, d, None);
            }
        }
    });
    let r = w.finish();
    r.assert_clean("one-sided partitions");
    r.assert_effective("one-sided partitions", 50, true);
    assert!(
        r.term_ignoring_killed > 0,
        "no SIGTERM-ignoring command had to be SIGKILLed"
    );
}

#[test]
fn chaos_redis_frozen_and_restarted_with_persistence() {
    let _one = serial();
    let p = Params {
        long: 0.12,
        term_ignoring: 0.3,
        persistence: true,
        ..Params::new(6, 1, SEED + 2)
    };
    let mut w = World::start(p);
    // A lease certainly lost to a frozen Redis, its stop checked against
    // the samples, and a restart certainly under a held lock (see both
    // faults): the schedule's freezes and restarts below only may.
    assert!(
        w.freeze_redis_past_a_holders_lease(Duration::from_secs(20)),
        "no holder came with more than a lease of its section left, just renewed"
    );
    assert!(
        w.restart_under_a_holder(Duration::from_secs(20)),
        "no restart came with a lock held and enough of its lease left"
    );
    schedule(&mut w, Duration::from_secs(24), |w| match w.rng.below(3) {
        // Shorter than what the lease leaves after a renewal: survived.
        0 => {
            let d = ms(w.rng.range(50, 250));
            w.pause_redis(0, d);
        }
        // Longer than the lease: the holder is stopped before it expires.
        1 => {
            w.long_holder(false);
            let d = ms(w.rng.range(900, 1600));
            w.pause_redis(0, d);
        }
        // AOF with fsync always: the lock survives the restart, and is
        // released afterwards (a long holder renews across it, a short one
        // only releases).
        _ => {
            if w.rng.chance(0.5) {
                w.long_holder(false);
            } else {
                w.holder(ms(500), |_| true);
            }
            w.restart_redis(0);
        }
    });
    let r = w.finish();
    r.assert_clean("redis frozen and restarted (AOF)");
    r.assert_effective("redis frozen and restarted (AOF)", 30, true);
    assert!(
        r.restarts_survived > 0,
        "no held lock was seen to survive a restart with persistence"
    );
}

#[test]
fn chaos_redis_restarted_empty_stops_the_holder() {
    let _one = serial();
    let p = Params {
        long: 0.25,
        ..Params::new(6, 1, SEED + 3)
    };
    let mut w = World::start(p);
    // A lease certainly lost: the restart comes under a holder seen to
    // hold the lock at the kill, whose section cannot end within a lease
    // (see the fault). The schedule's restarts below only may cost one.
    assert!(
        w.restart_under_a_holder(Duration::from_secs(20)),
        "no restart came with a lock held and more than a lease of its section left"
    );
    schedule(&mut w, Duration::from_secs(14), |w| {
        // The lock and the fencing counter are gone: the holder's next
        // renewal finds the key missing and its command is stopped (70).
        w.long_holder(false);
        w.restart_redis(0);
        let settle = ms(w.rng.range(500, 1500));
        w.idle(settle);
    });
    let r = w.finish();
    r.assert_clean("redis restarted without persistence");
    r.assert_effective("redis restarted without persistence", 20, true);
    assert!(
        r.faults.get(&Kind::RestartEmpty).copied().unwrap_or(0) > 0,
        "no empty restart"
    );
}

#[test]
fn chaos_holders_killed_and_frozen_past_their_ttl() {
    let _one = serial();
    let p = Params {
        term_ignoring: 0.3,
        ..Params::new(8, 1, SEED + 4)
    };
    let mut w = World::start(p);
    // A late write certainly refused by the fencing token (see the fault):
    // the schedule's freezes below only may have one (a holder frozen
    // after its last write has none to refuse).
    assert!(
        w.freeze_holder_until_passed_on(Duration::from_secs(20)),
        "no holder was frozen before its last write while the lock passed on"
    );
    schedule(&mut w, Duration::from_secs(22), |w| {
        if w.rng.chance(0.5) {
            w.kill_holder();
        } else {
            w.freeze_holder();
        }
    });
    let r = w.finish();
    r.assert_clean("holders killed and frozen");
    r.assert_effective("holders killed and frozen", 50, false);
    for k in [Kind::HolderKill, Kind::HolderFreeze] {
        assert!(
            r.faults.get(&k).copied().unwrap_or(0) > 0,
            "no {k:?} took effect"
        );
    }
    assert!(
        r.stale_rejections > 0,
        "no frozen holder's late write was refused by the fencing token"
    );
}

/// Faults aimed at redlock-run itself and at the replies it gets: its
/// process stalled alone past the lease (the guardian must kill the
/// command in time), the release's (or any) reply lost after Redis ran the
/// request, Redis answering OOM. Nothing here is excused by the checker.
#[test]
fn chaos_redlock_run_stalled_alone_lost_replies_and_oom() {
    let _one = serial();
    let p = Params {
        long: 0.15,
        term_ignoring: 0.5,
        ..Params::new(6, 1, SEED + 6)
    };
    let mut w = World::start(p);
    // A lease certainly lost by a stalled redlock-run (see the fault): the
    // schedule's stalls below only may cost one.
    assert!(
        w.stall_redlock_run_past_its_lease(Duration::from_secs(20)),
        "no holder came with more than a lease of its section left to run"
    );
    let mut stalls = 1;
    schedule(&mut w, Duration::from_secs(24), |w| match w.rng.below(3) {
        0 => {
            let d = ms(w.rng.range(1200, 2500));
            if w.stall_redlock_run(d) {
                stalls += 1;
            }
        }
        1 => {
            let c = w.rng.below(w.p.contenders as u64) as usize;
            let d = ms(w.rng.range(200, 800));
            w.proxy_fault(c, Mode::LoseNextReply, d, None);
        }
        _ => {
            let d = ms(w.rng.range(200, 1500));
            w.oom_redis(0, d);
        }
    });
    let r = w.finish();
    r.assert_clean("redlock-run stalled alone, lost replies, OOM");
    r.assert_effective("redlock-run stalled alone, lost replies, OOM", 20, true);
    assert!(stalls > 0, "no redlock-run was stalled");
    assert!(
        r.lost > 0 && r.lease_checked > 0,
        "no stalled run was checked against its lease: lost {} checked {}",
        r.lost,
        r.lease_checked
    );
}

#[test]
fn chaos_quorum_of_three_with_a_minority_down_partitioned_or_restarted() {
    let _one = serial();
    let p = Params {
        long: 0.1,
        term_ignoring: 0.3,
        persistence: true,
        ..Params::new(8, 3, SEED + 5)
    };
    let mut w = World::start(p);
    // One lease certainly lost, whatever the timing: the faults below only
    // may cost one (a holder cut off may have finished its section first).
    assert!(
        w.cut_off_a_holder_past_its_lease(Duration::from_secs(20), |_| true),
        "no holder came with more than a lease of its section left to run"
    );
    schedule(&mut w, Duration::from_secs(28), |w| {
        let m = w.rng.below(3) as usize;
        let c = w.rng.below(w.p.contenders as u64) as usize;
        match w.rng.below(6) {
            0 => {
                let d = ms(w.rng.range(500, 2000));
                w.master_down(m, d);
            }
            1 => {
                let d = ms(w.rng.range(500, 2000));
                w.partition_master(m, d);
            }
            2 => {
                let d = ms(w.rng.range(100, 1500));
                w.pause_redis(m, d);
            }
            3 => w.rolling_restart(ms(300)),
            // One contender cut off from every master.
            4 => {
                let d = ms(w.rng.range(900, 1500));
                w.proxy_fault_on_holder(Mode::Blackhole, d, true);
            }
            _ => {
                let d = ms(w.rng.range(300, 1000));
                let delay = ms(w.rng.range(10, 100));
                w.proxy_fault(c, Mode::Delay(delay), d, None);
            }
        }
    });
    let r = w.finish();
    r.assert_clean("quorum of 3");
    // Quorum mode acquired, and a holder cut off from every master lost
    // its lease and was stopped in time.
    r.assert_effective("quorum of 3", 30, true);
}
