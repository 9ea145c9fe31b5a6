//! Table 1: taking and releasing an uncontended lock around a command that
//! does nothing, next to flock(1) and the bare command, interleaved.

use std::process::Command;

use anyhow::Result;

use super::report::Table;
use super::stats::{fmt_ms, fmt_ratio, summarize, verdict};
use super::{Ctx, quiet, timed};

struct Variant<'a> {
    label: &'static str,
    expect: i32,
    build: Box<dyn Fn() -> Command + 'a>,
}

const TARGET: f64 = 1.25;

pub fn run(ctx: &Ctx) -> Result<Table> {
    let url = ctx.url(0);
    let key = ctx.unique("overhead");
    let lockfile = ctx.path(&format!("{key}.lock"));
    let redlock = |args: Vec<String>| -> Box<dyn Fn() -> Command + '_> {
        Box::new(move || {
            let mut c = ctx.redlock();
            c.args(&args);
            c
        })
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let lf = lockfile.clone();
    let variants = [
        Variant {
            label: "`redlock-run --key K -- true`",
            expect: 0,
            build: redlock(s(&["--redis", &url, "--key", &key, "--", "true"])),
        },
        Variant {
            label: "`flock FILE true`",
            expect: 0,
            build: Box::new(move || {
                let mut c = quiet("flock");
                c.arg(&lf).arg("true");
                c
            }),
        },
        Variant {
            label: "`true`",
            expect: 0,
            build: Box::new(|| quiet("true")),
        },
        Variant {
            label: "↳ redlock-run refusing bad usage: start-up + parsing, no Redis (exit 2)",
            expect: 2,
            build: redlock(s(&[
                "--redis",
                &url,
                "--key",
                &key,
                "--ttl",
                "1s",
                "--refresh",
                "2s",
                "--",
                "true",
            ])),
        },
        Variant {
            label: "↳ `redlock-run status --key K`: connect + read the lock's state, no child (exit 1)",
            expect: 1,
            build: redlock(s(&["status", "--redis", &url, "--key", &key])),
        },
    ];

    for _ in 0..3 {
        for v in &variants {
            timed(&mut (v.build)());
        }
    }
    let runs = ctx.opts.runs;
    let mut samples = vec![Vec::with_capacity(runs); variants.len()];
    let mut unexpected = vec![0usize; variants.len()];
    for _ in 0..runs {
        for (i, v) in variants.iter().enumerate() {
            let (t, code) = timed(&mut (v.build)());
            samples[i].push(t);
            if code != Some(v.expect) {
                unexpected[i] += 1;
            }
        }
    }

    let sums: Vec<_> = samples.iter().map(|s| summarize(s)).collect();
    let flock = sums[1].p50;
    let mut t = Table::new(
        "1. Overhead: uncontended acquire + run + release",
        &[
            "command",
            "runs",
            "median",
            "p90",
            "× flock (median)",
            "target",
            "verdict",
        ],
    );
    for (i, v) in variants.iter().enumerate() {
        let (target, met) = match i {
            0 => (
                format!("≤ {TARGET}× flock"),
                verdict(sums[0].p50 <= TARGET * flock && unexpected[0] == 0).to_string(),
            ),
            _ => ("—".into(), "—".into()),
        };
        t.row([
            v.label.to_string(),
            sums[i].n.to_string(),
            fmt_ms(sums[i].p50),
            fmt_ms(sums[i].p90),
            fmt_ratio(sums[i].p50, flock),
            target,
            met,
        ]);
    }
    t.note(format!(
        "Wall time of spawn + wait from the harness, {runs} rounds of the five commands in turn \
         (after 3 warm-up rounds); redlock-run talks to one local redis-server over TCP."
    ));
    t.note(format!(
        "redlock-run above bare `true`: {} at the median; of which start-up + parsing ≈ {}, \
         connect + reading the state ≈ {} (the ↳ rows minus `true`).",
        fmt_ms(sums[0].p50 - sums[2].p50),
        fmt_ms(sums[3].p50 - sums[2].p50),
        fmt_ms(sums[4].p50 - sums[3].p50),
    ));
    for (i, v) in variants.iter().enumerate() {
        if unexpected[i] > 0 {
            t.note(format!(
                "{} runs of {} ended with an exit code other than {}",
                unexpected[i], v.label, v.expect
            ));
        }
    }
    Ok(t)
}
