//! The soak: rounds of 30–90 s, each a fresh world (single master without
//! persistence, single master with AOF, or a quorum of three, in turn)
//! with 4–16 contenders and a randomized schedule of every fault that
//! applies to it, checked like the CI scenarios; at the end one markdown
//! table for all rounds. Bounded: no round starts past the deadline, and a
//! round's own end (heal, drain, check) takes seconds.
//!
//! ```text
//! REDLOCK_SOAK=30 cargo test --test it --release soak -- --ignored --nocapture
//! ```
//!
//! `REDLOCK_SOAK_SEED` replays a schedule (the seed is printed);
//! `REDLOCK_SOAK_ROUNDS=single,aof,quorum` picks the kinds of round.
//! The summary (the commit it ran on, the seed, every round's paragraph,
//! the table, the violations) is written to `REDLOCK_SOAK_OUT`, by default
//! `target/soak-<commit>-<unix time>.md`, after every round (a soak cut
//! short leaves what it did), and its path printed. Without `REDLOCK_SOAK`
//! it says it skipped and tests nothing.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::checker::Report;
use super::faults::Kind;
use super::harness::{Params, World};
use super::{Rng, ms, serial};
use crate::support::proxy::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    Single,
    SingleAof,
    Quorum,
}

fn d(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One randomly chosen fault that applies to this round.
fn fault(w: &mut World, round: Round) {
    let c = w.rng.below(w.p.contenders as u64) as usize;
    let m = w.rng.below(w.p.masters as u64) as usize;
    let pick = w.rng.below(11);
    match (pick, round) {
        // Several contenders' links slowed down, then healed at once.
        (10, _) => {
            let n = w.rng.range(2, 4) as usize;
            let cs: Vec<usize> = (0..n)
                .map(|_| w.rng.below(w.p.contenders as u64) as usize)
                .collect();
            let delay = d(w.rng.range(20, 300));
            let len = d(w.rng.range(100, 800));
            w.delay_flap(&cs, delay, len);
        }
        (0, _) => {
            let len = d(w.rng.range(900, 1600));
            w.proxy_fault_on_holder(Mode::Blackhole, len, true);
        }
        (1, _) => {
            let len = d(w.rng.range(300, 1500));
            w.proxy_fault(c, Mode::Blackhole, len, None);
        }
        (2, _) => {
            let delay = d(w.rng.range(10, 250));
            let len = d(w.rng.range(300, 1200));
            w.proxy_fault(c, Mode::Delay(delay), len, None);
        }
        (3, _) => {
            let len = d(w.rng.range(100, 400));
            if w.rng.chance(0.5) {
                w.proxy_fault(c, Mode::Reset, len, None);
            } else {
                w.proxy_fault(c, Mode::LoseNextReply, len, None);
            }
        }
        (4, _) => {
            if w.rng.chance(0.5) {
                w.long_holder(false);
            }
            let len = d(w.rng.range(50, 1600));
            w.pause_redis(m, len);
        }
        (5, _) => {
            if w.rng.chance(0.7) {
                w.kill_holder();
            } else {
                let len = d(w.rng.range(100, 1500));
                w.oom_redis(m, len);
            }
        }
        (6, _) => {
            if w.rng.chance(0.5) {
                w.freeze_holder();
            } else {
                let len = d(w.rng.range(1200, 2500));
                w.stall_redlock_run(len);
            }
        }
        (7, Round::Quorum) => {
            let len = d(w.rng.range(500, 2000));
            w.master_down(m, len);
        }
        (8, Round::Quorum) => {
            let len = d(w.rng.range(500, 2000));
            w.partition_master(m, len);
        }
        (9, Round::Quorum) => {
            let gap = d(w.rng.range(100, 600));
            w.rolling_restart(gap);
        }
        // Single master: a restart (empty or from the AOF), aimed at a
        // long section or at whatever runs.
        _ => {
            if w.rng.chance(0.5) {
                w.long_holder(false);
            } else {
                w.holder(d(500), |_| true);
            }
            w.restart_redis(0);
        }
    }
}

#[test]
#[ignore = "soak: REDLOCK_SOAK=<minutes> cargo test --test it --release soak -- --ignored --nocapture"]
fn soak() {
    let Some(minutes) = std::env::var("REDLOCK_SOAK")
        .ok()
        .and_then(|m| m.trim().parse::<f64>().ok())
        .filter(|m| *m > 0.0)
    else {
        let msg = "soak: SKIPPED, nothing tested: set REDLOCK_SOAK=<minutes> to run it";
        eprintln!("{msg}");
        println!("{msg}");
        return;
    };
    let seed = std::env::var("REDLOCK_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    let _one = serial();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(minutes * 60.0);
    eprintln!("soak: {minutes} min, REDLOCK_SOAK_SEED={seed}");
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = std::env::var_os("REDLOCK_SOAK_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join(format!("soak-{}-{now}.md", &commit[..commit.len().min(12)]))
        });
    let mut header = String::new();
    let _ = writeln!(
        header,
        "# redlock-run soak\n\n- commit: {commit}{}\n- started: unix {now}\n\
         - asked: {minutes} min; REDLOCK_SOAK_SEED={seed}; REDLOCK_SOAK_ROUNDS={}\n\
         - reproduce: `REDLOCK_SOAK={minutes} REDLOCK_SOAK_SEED={seed} cargo test --test it \
         --release soak -- --ignored --nocapture`\n",
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        },
        std::env::var("REDLOCK_SOAK_ROUNDS").unwrap_or_else(|_| "single,aof,quorum".into())
    );
    let mut log = String::from("## Rounds\n\n```text\n");
    let write = |body: &str| {
        if let Some(dir) = out.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(&out, body)
            .unwrap_or_else(|e| panic!("soak: writing {}: {e}", out.display()));
    };
    write(&header);
    eprintln!("soak: summary goes to {}", out.display());
    let mut rng = Rng::new(seed);
    let mut total = Report::default();
    let mut rounds = [0usize; 3];
    let kinds = std::env::var("REDLOCK_SOAK_ROUNDS").unwrap_or_default();
    let order: Vec<Round> = [
        ("single", Round::Single),
        ("aof", Round::SingleAof),
        ("quorum", Round::Quorum),
    ]
    .into_iter()
    .filter(|(name, _)| kinds.is_empty() || kinds.split(',').any(|k| k.trim() == *name))
    .map(|(_, r)| r)
    .collect();
    assert!(
        !order.is_empty(),
        "REDLOCK_SOAK_ROUNDS: single, aof or quorum"
    );
    let mut n = 0;
    // A round's tail (heal, drain, check) takes seconds; keep a margin.
    while Instant::now() + Duration::from_secs(20) < deadline {
        let round = order[n % order.len()];
        let left = deadline.saturating_duration_since(Instant::now()) - Duration::from_secs(15);
        let length = Duration::from_secs(rng.range(30, 90)).min(left);
        let p = Params {
            long: rng.range(5, 15) as f64 / 100.0,
            term_ignoring: rng.range(0, 50) as f64 / 100.0,
            persistence: round != Round::Single,
            ..Params::new(
                rng.range(4, 16) as usize,
                if round == Round::Quorum { 3 } else { 1 },
                rng.next_u64(),
            )
        };
        let what = format!(
            "round {n} ({round:?}, {} contenders, {:.0} s)",
            p.contenders,
            length.as_secs_f64()
        );
        let mut w = World::start(p);
        let until = Instant::now() + length;
        while Instant::now() < until {
            fault(&mut w, round);
            let pause = d(w.rng.range(100, 800));
            w.idle(pause);
        }
        let r = w.finish();
        drop(w);
        let line = format!(
            "[{:6.1} min] {}",
            started.elapsed().as_secs_f64() / 60.0,
            r.summary(&what).trim_end()
        );
        eprintln!("{line}");
        let _ = writeln!(log, "{line}");
        total.merge(r);
        rounds[round as usize] += 1;
        n += 1;
        let so_far = table(&total, started.elapsed(), rounds);
        write(&format!("{header}\n(in progress)\n\n{so_far}\n{log}```\n"));
    }
    let elapsed = started.elapsed();
    let table = table(&total, elapsed, rounds);
    println!("\n{table}");
    let mut violations = String::new();
    for v in &total.violations {
        let _ = writeln!(violations, "- {v}");
    }
    write(&format!(
        "{header}\n## Summary\n\n{table}\n{log}```\n\n## Violations ({})\n\n{violations}",
        total.violations.len()
    ));
    eprintln!("soak: summary written to {}", out.display());
    assert!(
        total.violations.is_empty(),
        "{} violations:\n{}",
        total.violations.len(),
        total.violations.join("\n")
    );
}

/// `git ARGS` in the crate's directory, trimmed; None without git.
fn git(args: &[&str]) -> Option<String> {
    use std::process::{Command, Stdio};
    let child = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let out = crate::support::wait_output(child, Duration::from_secs(30));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The markdown summary of a soak.
fn table(r: &Report, elapsed: Duration, rounds: [usize; 3]) -> String {
    let mut t = String::from("| metric | value |\n|---|---|\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(t, "| {k} | {v} |");
    };
    row(
        "duration",
        format!(
            "{:.1} min; {} rounds: {} single master, {} single master with AOF, {} quorum of 3",
            elapsed.as_secs_f64() / 60.0,
            rounds.iter().sum::<usize>(),
            rounds[0],
            rounds[1],
            rounds[2]
        ),
    );
    row("redlock-run processes", r.runs.to_string());
    row("critical sections", r.sections.to_string());
    for k in Kind::ALL {
        row(
            &format!("faults: {}", k.name()),
            r.faults.get(&k).copied().unwrap_or(0).to_string(),
        );
    }
    row(
        "commands ignoring SIGTERM, SIGKILLed before the lease ended",
        r.term_ignoring_killed.to_string(),
    );
    row("lost leases (exit 70)", r.lost.to_string());
    row(
        "exit 70 runs whose command died before the lease could expire",
        format!(
            "{} checked (closest: {} before the expiry), {} unverifiable \
             (sampler blinded by the fault)",
            r.lease_checked,
            r.min_lease_slack_ns
                .map_or("– (no lease ran out)".into(), |s| format!(
                    "{:.1} ms",
                    s as f64 / 1e6
                )),
            r.lease_unverifiable
        ),
    );
    row(
        "**overlapping sections where mutual exclusion is promised**",
        format!("**{}**", r.overlaps_promised),
    );
    row(
        "overlaps with a holder frozen past its TTL (not promised)",
        r.overlaps_frozen.to_string(),
    );
    row(
        "overlaps across a restart without persistence (not promised)",
        format!(
            "{} ({} sections of uncertain epoch, the key at the restart not observed: \
             not compared; {} writes refused because of the old holder's token)",
            r.overlaps_data_loss, r.epoch_ambiguous, r.refused_data_loss
        ),
    );
    row(
        "stale-token writes refused by the fenced resource",
        r.stale_rejections.to_string(),
    );
    row(
        "locks still in Redis after exit, during a fault",
        r.left_behind_excused.to_string(),
    );
    row(
        "restarts with AOF where the held lock survived",
        r.restarts_survived.to_string(),
    );
    row(
        "hand-over latency, release to next start (p50 / p99 / max)",
        format!(
            "{:.2} / {:.2} / {:.2} ms over {} clean hand-overs",
            r.handover_ms(0.5),
            r.handover_ms(0.99),
            r.handover_ms(1.0),
            r.handovers.len()
        ),
    );
    row(
        "longest gap between sections",
        format!("{:.1} ms", ms(r.max_gap_ns)),
    );
    row(
        "smallest separation between sections (promised pairs)",
        format!("{:.2} ms", r.min_separation_ns.unwrap_or(0) as f64 / 1e6),
    );
    row(
        "exit statuses",
        r.exits
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    row("violations", r.violations.len().to_string());
    t
}
