//! Table 4: peak resident memory (VmHWM) of the locking process itself
//! while its command (`sleep 1`) runs, sampled from /proc every 20 ms
//! until it exits; interleaved runs.

use std::process::{Child, Command};
use std::time::Duration;

use anyhow::Result;

use super::report::Table;
use super::stats::{fmt_num, fmt_ratio, median, summarize, verdict};
use super::{Ctx, exit_code, quiet};

const TARGET_MIB: f64 = 8.0;

fn status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The highest VmHWM seen while the child lived, in KiB, and its exit code.
fn peak(child: &mut Child) -> (Option<u64>, Option<i32>) {
    let path = format!("/proc/{}/status", child.id());
    let mut best: Option<u64> = None;
    loop {
        // A zombie's status has no VmHWM: reading after exit just finds none.
        if let Some(kb) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| status_kb(&s, "VmHWM:"))
        {
            best = best.max(Some(kb));
        }
        match child.try_wait() {
            Ok(Some(st)) => return (best, Some(exit_code(st))),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return (best, None),
        }
    }
}

pub fn run(ctx: &Ctx) -> Result<Table> {
    let url = ctx.url(0);
    let key = ctx.unique("memory");
    let poll_key = ctx.unique("memory-poll");
    let port = ctx.servers[0].port.to_string();
    let lockfile = ctx.path(&format!("{key}.lock"));
    let builders: [Box<dyn Fn() -> Command + '_>; 3] = [
        Box::new(|| {
            let mut c = ctx.redlock();
            c.args(["--redis", &url, "--key", &key, "--", "sleep", "1"]);
            c
        }),
        Box::new(|| {
            let mut c = quiet("flock");
            c.arg(&lockfile).args(["sleep", "1"]);
            c
        }),
        Box::new(|| {
            let mut c = ctx.helper();
            c.args(["--poll-lock", &poll_key, &port, "--", "sleep", "1"]);
            c
        }),
    ];
    let mut peaks: [Vec<f64>; 3] = Default::default();
    let mut bad = [0usize; 3];
    for _ in 0..ctx.opts.mem_reps {
        for (i, b) in builders.iter().enumerate() {
            let (kb, code) = match b().spawn() {
                Ok(mut child) => peak(&mut child),
                Err(_) => (None, None),
            };
            match kb {
                Some(kb) if code == Some(0) => peaks[i].push(kb as f64 / 1024.0),
                _ => bad[i] += 1,
            }
        }
    }
    let sums = peaks.each_ref().map(|p| summarize(p));
    let mut t = Table::new(
        "4. Memory: peak RSS of the locking process while the command runs",
        &[
            "metric",
            "redlock-run",
            "flock",
            "polling (bench helper)",
            "redlock-run / flock",
            "target",
            "verdict",
        ],
    );
    t.row([
        "VmHWM, median (MiB)".to_string(),
        fmt_num(median(&peaks[0]), 2),
        fmt_num(median(&peaks[1]), 2),
        fmt_num(median(&peaks[2]), 2),
        fmt_ratio(sums[0].p50, sums[1].p50),
        "—".into(),
        "—".into(),
    ]);
    t.row([
        "VmHWM, max (MiB)".to_string(),
        fmt_num(sums[0].max, 2),
        fmt_num(sums[1].max, 2),
        fmt_num(sums[2].max, 2),
        fmt_ratio(sums[0].max, sums[1].max),
        format!("≤ {TARGET_MIB} MiB"),
        verdict(sums[0].max <= TARGET_MIB && bad[0] == 0).into(),
    ]);
    t.note(format!(
        "{} run(s) per tool of `… sleep 1`, interleaved; /proc/<pid>/status of the locking \
         process (not of `sleep`) read every 20 ms until it exits; the highest VmHWM seen. \
         The polling helper is this bench binary (sync redis client, no async runtime).",
        ctx.opts.mem_reps
    ));
    for (name, n) in ["redlock-run", "flock", "polling"].iter().zip(bad) {
        if n > 0 {
            t.note(format!("{n} {name} run(s) failed or could not be sampled"));
        }
    }
    Ok(t)
}
