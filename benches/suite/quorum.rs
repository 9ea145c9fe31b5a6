//! Table 6: what a Redlock quorum costs: `redlock-run --key K -- true`
//! against 1, 3 and 5 local masters, interleaved, with flock for scale.

use std::process::Command;

use anyhow::Result;

use super::report::Table;
use super::stats::{fmt_ms, fmt_ratio, summarize};
use super::{Ctx, quiet, timed};

pub fn run(ctx: &Ctx) -> Result<Table> {
    let counts: Vec<usize> = [1, 3, 5]
        .into_iter()
        .filter(|&n| n <= ctx.servers.len())
        .collect();
    let lockfile = ctx.path(&ctx.unique("quorum.lock"));
    let mut labels: Vec<String> = Vec::new();
    let mut builders: Vec<Box<dyn Fn() -> Command + '_>> = Vec::new();
    for &n in &counts {
        let key = ctx.unique("quorum");
        let urls: Vec<String> = (0..n).map(|i| ctx.url(i)).collect();
        labels.push(format!("{n} master{}", if n == 1 { "" } else { "s" }));
        builders.push(Box::new(move || {
            let mut c = ctx.redlock();
            for u in &urls {
                c.args(["--redis", u]);
            }
            c.args(["--key", &key, "--", "true"]);
            c
        }));
    }
    labels.push("`flock FILE true` (for scale)".into());
    builders.push(Box::new(|| {
        let mut c = quiet("flock");
        c.arg(&lockfile).arg("true");
        c
    }));

    for _ in 0..3 {
        for b in &builders {
            timed(&mut b());
        }
    }
    let runs = ctx.opts.quorum_runs;
    let mut samples = vec![Vec::with_capacity(runs); builders.len()];
    let mut bad = vec![0usize; builders.len()];
    for _ in 0..runs {
        for (i, b) in builders.iter().enumerate() {
            let (ms, code) = timed(&mut b());
            samples[i].push(ms);
            bad[i] += usize::from(code != Some(0));
        }
    }
    let sums: Vec<_> = samples.iter().map(|s| summarize(s)).collect();
    let mut t = Table::new(
        "6. Quorum cost: acquire + run `true` + release",
        &[
            "setup",
            "runs",
            "median",
            "p90",
            "× 1 master (median)",
            "target",
            "verdict",
        ],
    );
    for (i, label) in labels.iter().enumerate() {
        t.row([
            label.clone(),
            sums[i].n.to_string(),
            fmt_ms(sums[i].p50),
            fmt_ms(sums[i].p90),
            fmt_ratio(sums[i].p50, sums[0].p50),
            "— (informational)".into(),
            "—".into(),
        ]);
    }
    t.note(format!(
        "Wall time of `redlock-run --redis URL… --key K -- true`, {runs} rounds over the setups \
         in turn after 3 warm-up rounds; every master is a separate local redis-server."
    ));
    for (i, label) in labels.iter().enumerate() {
        if bad[i] > 0 {
            t.note(format!("{} run(s) with {label} did not exit 0", bad[i]));
        }
    }
    Ok(t)
}
