//! The lease checks: a lease seen lost while the command ran means exit
//! 70; an exit 70 means the command died before the lease could expire
//! in Redis (or "at once" when the key was removed); a run that exited
//! left no lock behind. The expiry is approximated from the samples (see
//! `checker`).

use std::collections::HashSet;

use super::checker::{Input, Sec, describe, exit_label, nanos, tail};
use super::faults::{Event, Kind};
use super::harness::{Params, Sample};
use super::ms;
use super::report::Report;

/// When the samples first show the token held by fewer than a quorum of
/// masters (None: never, while it ran), and the sample that showed it.
///
/// Each master's state is its latest sample: a master can gain the token
/// after the section started (a straggling acquire that was held back by a
/// partition lands when it heals, with this run's token and a fresh TTL,
/// and renewals keep it), so a master is not counted as lost for good at
/// its first sample without the token. A master not sampled yet counts as
/// holding it. A "holding" sample is evidence only until the key it saw
/// could have expired (its receive time + its PTTL): a master the sampler
/// cannot reach any more (frozen, down, restarting) does not keep the
/// lease alive on its last word; when that moment passes with no newer
/// sample, the master counts as without the token.
fn lost_at<'a>(
    samples: &'a [Vec<Sample>],
    token: &str,
    after: u64,
    p: &Params,
) -> Option<(u64, &'a Sample)> {
    // (time, master, sample, is the expiry of that sample's evidence)
    let mut timeline: Vec<(u64, usize, usize, bool)> = Vec::new();
    for (m, ms) in samples.iter().enumerate() {
        for (i, x) in ms.iter().enumerate().filter(|(_, x)| x.t_send > after) {
            timeline.push((x.t_recv, m, i, false));
            if x.value.as_deref() == Some(token) && x.pttl > 0 {
                timeline.push((x.t_recv + x.pttl as u64 * 1_000_000, m, i, true));
            }
        }
    }
    timeline.sort_unstable_by_key(|&(t, _, _, expiry)| (t, expiry));
    let k = p.masters - p.quorum() + 1;
    let mut without = vec![false; samples.len()];
    let mut latest: Vec<Option<usize>> = vec![None; samples.len()];
    for (t, m, i, expiry) in timeline {
        if expiry {
            // Only if no newer sample of this master came since.
            if latest[m] != Some(i) {
                continue;
            }
            without[m] = true;
        } else {
            latest[m] = Some(i);
            without[m] = samples[m][i].value.as_deref() != Some(token);
        }
        if without.iter().filter(|w| **w).count() >= k {
            return Some((t, &samples[m][i]));
        }
    }
    None
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
fn quorum_expiry_from_samples(samples: &[Vec<Sample>], token: &str, p: &Params) -> (u64, u64) {
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
pub fn check_lease(r: &mut Report, sec: &Sec, inp: &Input, killed: &HashSet<u64>) {
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
        if !sec.s.ended() && !sec.is_frozen() {
            r.violations.push(format!(
                "command cut short without a lost lock: {} (stderr: {})",
                describe(sec),
                tail(run)
            ));
        }
    }
    if run.code != Some(70) || sec.is_frozen() {
        return;
    }
    let Some(death) = run.death else { return };
    let (expiry, last_seen) = quorum_expiry_from_samples(inp.samples, &sec.s.token, p);
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

/// Whether a fault can keep a release from landing on a master: the
/// contender's own link cut, slowed or reset (on every master), or that
/// master frozen, down, restarting with its data, cut off from every
/// contender, or refusing writes (OOM refuses the release script). Not a
/// lost reply (Redis ran the request: the key is gone), not an empty
/// restart (the key is gone with it), not a fault aimed at a run.
fn blocks_release(e: &Event, contender: usize, master: usize) -> bool {
    match e.kind {
        Kind::Blackhole | Kind::Delay | Kind::Reset => e.contender == Some(contender),
        Kind::RedisPause
        | Kind::RestartPersistent
        | Kind::MasterDown
        | Kind::MinorityPartition
        | Kind::RollingRestart
        | Kind::Oom => e.master.is_none_or(|m| m == master),
        Kind::LostReply
        | Kind::RestartEmpty
        | Kind::HolderKill
        | Kind::HolderFreeze
        | Kind::RrStall => false,
    }
}

/// A run that exited must not leave its lock behind (release is a
/// compare-and-delete before exit), on any master, unless a fault that can
/// keep the release from landing on that master (`blocks_release`) was
/// under way while it released: between its command's end and its exit.
pub fn check_released(r: &mut Report, sec: &Sec, inp: &Input) {
    let run = sec.run;
    for (m, xs) in inp.samples.iter().enumerate() {
        let seen_after = xs.iter().find(|x| {
            x.t_send > run.exited + 1_000_000 && x.value.as_deref() == Some(sec.s.token.as_str())
        });
        let Some(x) = seen_after else { continue };
        let excused = inp.events.iter().any(|e| {
            blocks_release(e, run.contender, m) && e.start <= run.exited && e.end >= sec.end
        });
        if excused {
            r.left_behind_excused += 1;
        } else {
            r.violations.push(format!(
                "lock left behind on master {m}: still held {:.1} ms after redlock-run exited \
                 (PTTL {} ms), with no fault under way that could keep its release from \
                 landing there: {}; faults: {}; stderr: {}",
                ms(x.t_send - run.exited),
                x.pttl,
                describe(sec),
                faults_near(sec, inp.events, inp.p),
                tail(run)
            ));
        }
    }
}
