//! Table 2: C contenders each running critical sections of 5–20 ms
//! (same fixed-seed lengths for every tool) under redlock-run, flock(1)
//! and the polling baseline, rounds interleaved. The sections timestamp
//! themselves on CLOCK_MONOTONIC, so hand-over is measured from the end of
//! one section to the start of the next, whoever ran them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;

use super::report::Table;
use super::stats::{SplitMix, fmt_ms, fmt_num, fmt_ratio, median, summarize, verdict};
use super::{Ctx, quiet, timed};

const SEED: u64 = 0x5EED_1234;
const THROUGHPUT_TARGET: f64 = 0.95;
const HANDOVER_TARGET: f64 = 1.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    Redlock,
    Flock,
    Poll,
}

const TOOLS: [Tool; 3] = [Tool::Redlock, Tool::Flock, Tool::Poll];

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Redlock => "redlock-run",
            Tool::Flock => "flock",
            Tool::Poll => "polling",
        }
    }
}

/// One round's outcome.
#[derive(Default)]
pub struct Round {
    pub sections_per_s: f64,
    pub handovers_ms: Vec<f64>,
    /// Sections that started while the limit (1 for a lock) already ran.
    pub overlaps: usize,
    pub recorded: usize,
    pub expected: usize,
    pub failures: usize,
}

fn section_ms(contender: usize, i: usize) -> u64 {
    let mut r = SplitMix(SEED ^ ((contender as u64) << 32) ^ i as u64);
    5 + r.next_u64() % 16
}

/// The bench binary's `--section` mode: one critical section of `ms`.
fn section_args(ctx: &Ctx, record: &str, ms: u64) -> [String; 4] {
    let me = ctx.me.to_string_lossy().into_owned();
    [me.as_str(), "--section", record, &ms.to_string()].map(str::to_string)
}

/// One section under the redlock-run at `bin` on `url`, with `extra`
/// options (e.g. `--limit 2`) before the command.
pub fn redlock_section(
    ctx: &Ctx,
    bin: &Path,
    url: &str,
    extra: &[String],
    key: &str,
    record: &str,
    ms: u64,
) -> Command {
    let mut c = quiet(bin);
    c.args(["--redis", url, "--key", key, "--timeout", "60s"])
        .args(extra)
        .arg("--")
        .args(section_args(ctx, record, ms));
    c
}

fn section_cmd(ctx: &Ctx, tool: Tool, key: &str, record: &str, ms: u64) -> Command {
    let section = section_args(ctx, record, ms);
    match tool {
        Tool::Redlock => redlock_section(ctx, &ctx.redlock, &ctx.url(0), &[], key, record, ms),
        Tool::Flock => {
            let mut c = quiet("flock");
            c.args(["-w", "60"])
                .arg(ctx.path(&format!("{key}.lock")))
                .args(&section);
            c
        }
        Tool::Poll => {
            let mut c = ctx.helper();
            let port = ctx.servers[0].port.to_string();
            c.args(["--poll-lock", key, &port, "--"]).args(&section);
            c
        }
    }
}

fn round(ctx: &Ctx, tool: Tool, contenders: usize) -> Result<Round> {
    sections_round(ctx, contenders, 1, |key, record, ms| {
        section_cmd(ctx, tool, key, record, ms)
    })
}

/// One round: `contenders` threads each run `--sections` sections in a
/// row, `cmd(key, record file, ms)` for each, all on one fresh key; at
/// most `limit` of them may run at once. Hand-over is measured from the
/// moment a slot freed (the `limit`-th latest end before a section's
/// start; with a limit of 1, the latest) to that section's start.
pub fn sections_round(
    ctx: &Ctx,
    contenders: usize,
    limit: usize,
    cmd: impl Fn(&str, &str, u64) -> Command + Sync,
) -> Result<Round> {
    let sections = ctx.opts.sections;
    let key = ctx.unique("contention");
    let record = ctx.path(&format!("{key}.sections"));
    let record_s = record.to_string_lossy().into_owned();
    let barrier = Barrier::new(contenders);
    let failures = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for ci in 0..contenders {
            let (barrier, failures, key, record_s, cmd) =
                (&barrier, &failures, &key, &record_s, &cmd);
            s.spawn(move || {
                barrier.wait();
                for i in 0..sections {
                    if timed(&mut cmd(key, record_s, section_ms(ci, i))).1 != Some(0) {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });

    // No file at all: every run failed; the counts below say so.
    let text = std::fs::read_to_string(&record).unwrap_or_default();
    let mut open: HashMap<&str, u64> = HashMap::new();
    let mut intervals: Vec<(u64, u64)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(&kind), Some(ns), Some(&pid)) =
            (f.first(), f.get(1).and_then(|n| n.parse().ok()), f.get(2))
        else {
            continue;
        };
        match kind {
            "start" => {
                open.insert(pid, ns);
            }
            "end" => {
                if let Some(start) = open.remove(pid) {
                    intervals.push((start, ns));
                }
            }
            _ => {}
        }
    }
    intervals.sort_unstable();
    let mut r = Round {
        recorded: intervals.len(),
        expected: contenders * sections,
        failures: failures.into_inner(),
        ..Round::default()
    };
    // The `limit` latest ends so far (a min-heap: its top is the moment
    // the slot a new section takes was freed).
    let mut latest: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    let mut max_end = 0u64;
    for &(start, end) in &intervals {
        if let (true, Some(&Reverse(freed))) = (latest.len() == limit, latest.peek()) {
            if start < freed {
                r.overlaps += 1;
            } else {
                r.handovers_ms.push((start - freed) as f64 / 1e6);
            }
        }
        latest.push(Reverse(end));
        if latest.len() > limit {
            latest.pop();
        }
        max_end = max_end.max(end);
    }
    if let Some(&(first, _)) = intervals.first() {
        r.sections_per_s = intervals.len() as f64 / ((max_end - first) as f64 / 1e9);
    }
    Ok(r)
}

pub fn run(ctx: &Ctx) -> Result<Table> {
    let mut rounds: BTreeMap<(usize, Tool), Vec<Round>> = BTreeMap::new();
    for rep in 0..ctx.opts.reps {
        for &c in &ctx.opts.contenders {
            for tool in TOOLS {
                eprintln!(
                    "bench:   round {}/{} C={c} {}",
                    rep + 1,
                    ctx.opts.reps,
                    tool.name()
                );
                rounds
                    .entry((c, tool))
                    .or_default()
                    .push(round(ctx, tool, c)?);
            }
        }
    }

    let mut t = Table::new(
        "2. Contention: C contenders taking turns",
        &[
            "metric",
            "redlock-run",
            "flock",
            "polling",
            "redlock-run / flock",
            "target",
            "verdict",
        ],
    );
    for &c in &ctx.opts.contenders {
        let get = |tool: Tool| &rounds[&(c, tool)];
        let tput = |tool: Tool| {
            median(
                &get(tool)
                    .iter()
                    .map(|r| r.sections_per_s)
                    .collect::<Vec<_>>(),
            )
        };
        let hand = |tool: Tool| {
            let all: Vec<f64> = get(tool)
                .iter()
                .flat_map(|r| r.handovers_ms.clone())
                .collect();
            summarize(&all)
        };
        let sum = |tool: Tool, f: fn(&Round) -> usize| get(tool).iter().map(f).sum::<usize>();
        let [tr, tf, tp] = TOOLS.map(tput);
        let [hr, hf, hp] = TOOLS.map(hand);
        t.row([
            format!("C={c}: sections/s (median of rounds)"),
            fmt_num(tr, 1),
            fmt_num(tf, 1),
            fmt_num(tp, 1),
            fmt_ratio(tr, tf),
            format!("≥ {THROUGHPUT_TARGET}× flock"),
            verdict(tr >= THROUGHPUT_TARGET * tf).into(),
        ]);
        t.row([
            format!("C={c}: hand-over p50"),
            fmt_ms(hr.p50),
            fmt_ms(hf.p50),
            fmt_ms(hp.p50),
            fmt_ratio(hr.p50, hf.p50),
            format!("≤ {HANDOVER_TARGET}× flock"),
            verdict(hr.p50 <= HANDOVER_TARGET * hf.p50).into(),
        ]);
        for (name, pick) in [
            ("p90", (|s: &super::stats::Summary| s.p90) as fn(&_) -> f64),
            ("p99", |s| s.p99),
        ] {
            t.row([
                format!("C={c}: hand-over {name}"),
                fmt_ms(pick(&hr)),
                fmt_ms(pick(&hf)),
                fmt_ms(pick(&hp)),
                fmt_ratio(pick(&hr), pick(&hf)),
                "—".into(),
                "—".into(),
            ]);
        }
        let [or, of, op] = TOOLS.map(|tool| sum(tool, |r| r.overlaps));
        t.row([
            format!("C={c}: overlapping sections"),
            or.to_string(),
            of.to_string(),
            op.to_string(),
            "—".into(),
            "0".into(),
            verdict(or == 0).into(),
        ]);
        let done = |tool: Tool| {
            let (rec, exp, fail) = (
                sum(tool, |r| r.recorded),
                sum(tool, |r| r.expected),
                sum(tool, |r| r.failures),
            );
            let mut s = format!("{rec}/{exp}");
            if fail > 0 {
                s += &format!(" ({fail} failed)");
            }
            (s, rec == exp && fail == 0)
        };
        let [dr, df, dp] = TOOLS.map(done);
        t.row([
            format!("C={c}: sections completed"),
            dr.0,
            df.0,
            dp.0,
            "—".into(),
            "all".into(),
            verdict(dr.1).into(),
        ]);
    }
    t.note(format!(
        "Each contender runs {} sections in a row, each section sleeping 5–20 ms (fixed seed, \
         the same lengths for every tool); {} round(s) per tool and C, interleaved \
         (redlock-run, flock, polling, ...). redlock-run waits with `--timeout 60s`; flock with \
         `-w 60`; polling is `SET NX PX` every {} ms (see `--poll-lock`).",
        ctx.opts.sections,
        ctx.opts.reps,
        super::helpers::POLL_EVERY.as_millis()
    ));
    t.note(
        "Hand-over: start of a section minus the end of the one before it (CLOCK_MONOTONIC, \
         written by the sections themselves), pooled over rounds. It includes the section \
         process's exit, the releaser's cleanup, the wake-up, the next acquire and the next \
         section's start.",
    );
    Ok(t)
}
