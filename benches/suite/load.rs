//! Table 3: how hard waiters lean on Redis. One holder keeps the lock for
//! `--hold`; N waiters queue behind it; MONITOR counts the commands they
//! send (calls made inside Lua scripts apart), INFO commandstats the calls
//! Redis executes. Only the steady part of the wait is measured: from a
//! short warm-up after the waiters start to shortly before the holder
//! lets go.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::report::Table;
use super::servers::{Monitor, Tally, client_addr, commandstats, stop_child};
use super::stats::{fmt_num, fmt_ratio, median, verdict};
use super::{Ctx, sleep_until, wait_until};

const TARGET: f64 = 2.0;

type Metric = fn(&LoadRound) -> f64;
/// Leave the holder's release out of the window.
const TAIL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tool {
    Redlock,
    Poll,
}

struct LoadRound {
    /// Commands sent per waiter per second, steady window.
    steady: f64,
    /// The same from the moment the waiters were spawned (connecting,
    /// subscribing, first attempts included).
    whole: f64,
    /// commandstats calls per waiter per second, steady window (Lua-internal
    /// calls included).
    executed: f64,
    by_command: BTreeMap<String, u64>,
    window: Duration,
    failed: usize,
}

fn per_waiter_s(n: u64, waiters: usize, d: Duration) -> f64 {
    n as f64 / waiters as f64 / d.as_secs_f64()
}

fn round(
    ctx: &Ctx,
    ctrl: &mut redis::Connection,
    monitor: &Monitor,
    tool: Tool,
) -> Result<LoadRound> {
    let waiters = ctx.opts.waiters;
    let hold = ctx.opts.hold;
    let url = ctx.url(0);
    let key = ctx.unique("load");
    let port = ctx.servers[0].port.to_string();

    // --ttl 60s: the holder renews every 20 s, so it sends nothing while we count.
    let mut holder = ctx
        .redlock()
        .args([
            "--redis", &url, "--key", &key, "--ttl", "60s", "--", "sleep",
        ])
        .arg(format!("{:.3}", hold.as_secs_f64()))
        .spawn()?;
    let held_from = Instant::now();
    loop {
        let exists: i64 = redis::cmd("EXISTS").arg(&key).query(ctrl)?;
        if exists == 1 {
            break;
        }
        if held_from.elapsed() > Duration::from_secs(5) {
            stop_child(&mut holder, Duration::from_secs(1));
            bail!("the holder never took the lock");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let held_until = held_from + hold;

    let spawned_at = Instant::now();
    let at_spawn = monitor.tally();
    let mut children: Vec<Child> = Vec::with_capacity(waiters);
    for _ in 0..waiters {
        let child = match tool {
            Tool::Redlock => ctx
                .redlock()
                .args([
                    "--redis",
                    &url,
                    "--key",
                    &key,
                    "--timeout",
                    "60s",
                    "--",
                    "true",
                ])
                .spawn(),
            Tool::Poll => ctx
                .helper()
                .args(["--poll-lock", &key, &port, "--", "true"])
                .spawn(),
        };
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                for c in &mut children {
                    stop_child(c, Duration::from_secs(1));
                }
                stop_child(&mut holder, Duration::from_secs(1));
                bail!("spawning a waiter: {e}");
            }
        }
    }
    // Past the start-up ramp (redlock-run's back-off reaches 1 s after ~1.75 s).
    let warm = Duration::from_secs(2).min(hold / 3);
    sleep_until(spawned_at + warm);
    let (t0, tally0, stats0) = (Instant::now(), monitor.tally(), commandstats(ctrl)?);
    let end = (held_until - TAIL).max(t0 + Duration::from_millis(500));
    sleep_until(end);
    let (t1, tally1, stats1) = (Instant::now(), monitor.tally(), commandstats(ctrl)?);

    let deadline = held_until + Duration::from_secs(75);
    let mut failed = usize::from(wait_until(&mut holder, deadline) != Some(0));
    for c in &mut children {
        failed += usize::from(wait_until(c, deadline) != Some(0));
    }

    let steady: Tally = tally1.since(&tally0);
    let whole = tally1.since(&at_spawn);
    let executed: u64 = stats1
        .iter()
        .filter(|(name, _)| !name.starts_with("info"))
        .map(|(name, n)| n - stats0.get(name).unwrap_or(&0))
        .sum();
    let window = t1 - t0;
    Ok(LoadRound {
        steady: per_waiter_s(steady.client, waiters, window),
        whole: per_waiter_s(whole.client, waiters, t1 - spawned_at),
        executed: per_waiter_s(executed, waiters, window),
        by_command: steady.by_command,
        window,
        failed,
    })
}

fn breakdown(rounds: &[LoadRound]) -> String {
    let mut total: BTreeMap<&str, u64> = BTreeMap::new();
    for r in rounds {
        for (k, v) in &r.by_command {
            *total.entry(k).or_default() += v;
        }
    }
    let mut v: Vec<_> = total.into_iter().collect();
    v.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    if v.is_empty() {
        return "nothing".into();
    }
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(ctx: &Ctx) -> Result<Table> {
    let mut ctrl = ctx.servers[0].conn()?;
    let me = client_addr(&mut ctrl)?;
    let monitor = Monitor::start(ctx.servers[0].port, &me)?;
    let mut redlock = Vec::new();
    let mut poll = Vec::new();
    for rep in 0..ctx.opts.load_reps {
        for tool in [Tool::Redlock, Tool::Poll] {
            eprintln!(
                "bench:   round {}/{} {}",
                rep + 1,
                ctx.opts.load_reps,
                if tool == Tool::Redlock {
                    "redlock-run"
                } else {
                    "polling"
                }
            );
            let r = round(ctx, &mut ctrl, &monitor, tool)?;
            match tool {
                Tool::Redlock => redlock.push(r),
                Tool::Poll => poll.push(r),
            }
        }
    }
    drop(monitor);

    let med =
        |rs: &[LoadRound], f: fn(&LoadRound) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
    let mut t = Table::new(
        &format!(
            "3. Redis load while waiting: {} waiters behind one holder",
            ctx.opts.waiters
        ),
        &[
            "per waiting client",
            "redlock-run",
            "polling",
            "redlock-run / polling",
            "target",
            "verdict",
        ],
    );
    let rows: [(&str, Metric, bool); 3] = [
        (
            "commands sent / s, steady wait (MONITOR)",
            |r| r.steady,
            true,
        ),
        (
            "commands sent / s, whole wait from spawn",
            |r| r.whole,
            false,
        ),
        (
            "calls executed / s incl. inside Lua, steady (commandstats)",
            |r| r.executed,
            false,
        ),
    ];
    for (label, f, targeted) in rows {
        let (a, b) = (med(&redlock, f), med(&poll, f));
        t.row([
            label.to_string(),
            fmt_num(a, 2),
            fmt_num(b, 2),
            fmt_ratio(a, b),
            if targeted {
                format!("≤ {TARGET}")
            } else {
                "—".into()
            },
            if targeted {
                verdict(a <= TARGET).into()
            } else {
                "—".into()
            },
        ]);
    }
    let failed = |rs: &[LoadRound]| rs.iter().map(|r| r.failed).sum::<usize>();
    t.row([
        "runs that did not exit 0 (holder + waiters)".to_string(),
        failed(&redlock).to_string(),
        failed(&poll).to_string(),
        "—".into(),
        "0".into(),
        verdict(failed(&redlock) == 0).into(),
    ]);
    t.note(format!(
        "Steady window: {:.1} s per round (from {:.1} s after the waiters start to {:.1} s before \
         the holder's release), {} round(s) per tool, interleaved.",
        med(&redlock, |r| r.window.as_secs_f64()),
        Duration::from_secs(2).min(ctx.opts.hold / 3).as_secs_f64(),
        TAIL.as_secs_f64(),
        ctx.opts.load_reps
    ));
    t.note(
        "The holder is a redlock-run with `--ttl 60s` (renewal every 20 s): it sends nothing in \
         the window, so the totals are the waiters' alone, divided by the number of waiters. \
         The harness's own INFO calls are left out. The polling baseline sends one SET NX PX \
         per 100 ms: 10/s by construction.",
    );
    t.note(format!(
        "What the waiters sent in the steady window — redlock-run: {}; polling: {}.",
        breakdown(&redlock),
        breakdown(&poll)
    ));
    Ok(t)
}
