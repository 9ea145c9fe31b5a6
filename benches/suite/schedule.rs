//! Table 5: how close to the tick a scheduled run starts. Several
//! `redlock-run schedule --every 1s` instances share a key; the command
//! records its wall-clock start and REDLOCK_TICK. For scale, a harness
//! thread sleeps to each tick itself and spawns the same recorder (the
//! floor: timer wake-up plus fork/exec).

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::helpers::wall_ns;
use super::report::Table;
use super::stats::{fmt_ms, fmt_ratio, summarize, verdict};
use super::{Ctx, wait_until};

const SECOND: i128 = 1_000_000_000;

fn sleep_until_wall(ns: i128) {
    let now = wall_ns();
    if ns > now {
        std::thread::sleep(Duration::from_nanos((ns - now) as u64));
    }
}

/// (start ns, tick s) per recorded run.
fn read_record(path: &std::path::Path) -> Vec<(i128, i64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().skip(1);
            let ns: i128 = f.next()?.parse().ok()?;
            let tick = f
                .next()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map_or((ns / SECOND) as i64, |t| t.as_second());
            Some((ns, tick))
        })
        .collect()
}

struct Outcome {
    delays_ms: Vec<f64>,
    ran: usize,
    duplicates: usize,
}

fn analyse(runs: &[(i128, i64)], expected: &[i64]) -> Outcome {
    let mut per_tick: BTreeMap<i64, usize> = BTreeMap::new();
    for &(_, tick) in runs {
        *per_tick.entry(tick).or_default() += 1;
    }
    Outcome {
        delays_ms: runs
            .iter()
            .filter(|(_, tick)| expected.contains(tick))
            .map(|&(ns, tick)| (ns - tick as i128 * SECOND) as f64 / 1e6)
            .collect(),
        ran: expected.iter().filter(|t| per_tick.contains_key(t)).count(),
        duplicates: per_tick.values().map(|n| n - 1).sum(),
    }
}

pub fn run(ctx: &Ctx) -> Result<Table> {
    let key = ctx.unique("schedule");
    let record = ctx.path(&format!("{key}.ticks"));
    let floor_record = ctx.path(&format!("{key}.floor"));
    let ticks = ctx.opts.ticks;
    // Give the instances most of a second to start before the first tick.
    let first = ((wall_ns() + 700_000_000) / SECOND + 1) as i64;
    let expected: Vec<i64> = (first..first + ticks as i64).collect();

    let mut instances: Vec<Child> = Vec::new();
    for _ in 0..ctx.opts.instances {
        let child = ctx
            .redlock()
            .args(["schedule", "--redis", &ctx.url(0), "--key", &key])
            .args(["--every", "1s", "--"])
            .arg(&ctx.me)
            .arg("--tick-record")
            .arg(&record)
            .spawn();
        match child {
            Ok(c) => instances.push(c),
            Err(e) => {
                for c in &mut instances {
                    super::servers::stop_child(c, Duration::from_secs(1));
                }
                anyhow::bail!("spawning redlock-run schedule: {e}");
            }
        }
    }

    std::thread::scope(|s| {
        s.spawn(|| {
            for &tick in &expected {
                sleep_until_wall(tick as i128 * SECOND);
                let stamp = jiff::Timestamp::from_second(tick).map(|t| t.to_string());
                let mut c = ctx.helper();
                c.arg("--tick-record").arg(&floor_record);
                if let Ok(stamp) = stamp {
                    c.env("REDLOCK_TICK", stamp);
                }
                let _ = c.status();
            }
        });
        // The last tick's run has had 700 ms to start when we stop.
        sleep_until_wall((first as i128 + ticks as i128 - 1) * SECOND + 700_000_000);
    });
    for c in &instances {
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let clean_exits = instances
        .iter_mut()
        .map(|c| wait_until(c, deadline))
        .filter(|code| *code == Some(0))
        .count();

    let r = analyse(&read_record(&record), &expected);
    let f = analyse(&read_record(&floor_record), &expected);
    let (rs, fs) = (summarize(&r.delays_ms), summarize(&f.delays_ms));
    let mut t = Table::new(
        &format!(
            "5. Schedule precision: {} instances of `schedule --every 1s`, {ticks} ticks",
            ctx.opts.instances
        ),
        &[
            "metric",
            "redlock-run schedule",
            "floor (harness spawns at the tick)",
            "redlock-run / floor",
            "target",
            "verdict",
        ],
    );
    for (name, a, b) in [
        ("start delay after the tick, median", rs.p50, fs.p50),
        ("start delay, p90", rs.p90, fs.p90),
        ("start delay, p99", rs.p99, fs.p99),
        ("start delay, max", rs.max, fs.max),
    ] {
        t.row([
            name.to_string(),
            fmt_ms(a),
            fmt_ms(b),
            fmt_ratio(a, b),
            "—".into(),
            "—".into(),
        ]);
    }
    t.row([
        "ticks that ran".to_string(),
        format!("{}/{ticks}", r.ran),
        format!("{}/{ticks}", f.ran),
        "—".into(),
        "all".into(),
        verdict(r.ran == ticks).into(),
    ]);
    t.row([
        "extra runs of a tick already run".to_string(),
        r.duplicates.to_string(),
        f.duplicates.to_string(),
        "—".into(),
        "0".into(),
        verdict(r.duplicates == 0).into(),
    ]);
    t.row([
        "instances that exited 0 on SIGTERM".to_string(),
        format!("{clean_exits}/{}", ctx.opts.instances),
        "—".into(),
        "—".into(),
        "all".into(),
        verdict(clean_exits == ctx.opts.instances).into(),
    ]);
    t.note(
        "Delay: the command's own wall-clock start (it is this bench binary, `--tick-record`) \
         minus the tick in REDLOCK_TICK; it includes the instances' race for the tick in Redis, \
         fork/exec and the recorder's start-up. The floor column spawns the same recorder from \
         a harness thread that sleeps to each tick.",
    );
    Ok(t)
}
