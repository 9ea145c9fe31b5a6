//! Table 7: this build's one-holder path (the default `--limit 1`, each
//! run recorded in the run history) next to a baseline commit's, in the
//! same run — by default `a3c86db^`, the commit before run history and
//! `--limit` — to show what those features cost the path every run
//! takes: uncontended `-- true`, the contended hand-over, and the time
//! Redis spends in the two scripts of a run (the history write and the
//! limit check happen inside them). The baseline runs twice, as A and as
//! A′ (an A/A pair: what separates them is this run's noise); this build
//! also runs with `--limit 2`, for information.
//!
//! Each variant talks to its own redis-server, so that the server-side
//! figures (SLOWLOG, INFO commandstats) are its own; the variants' runs
//! are interleaved, in an order that rotates every round.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::baseline::baseline;
use super::contention::{Round, redlock_section, sections_round};
use super::report::Table;
use super::servers::{RedisServer, census, client_addr, commandstats, slowlog};
use super::stats::{Summary, fmt_ms, fmt_num, fmt_ratio, median, summarize};
use super::{Ctx, quiet, timed};

struct Variant {
    bin: PathBuf,
    extra: Vec<String>,
    limit: usize,
    server: RedisServer,
}

/// What one variant's uncontended runs cost.
struct Quiet {
    wall: Summary,
    /// Start-up and parsing alone: a usage error (exit 2), no Redis.
    startup: Summary,
    bad: usize,
    /// Per script, in the order a run sends them (acquire, release): the
    /// time each call ran inside Redis (µs, SLOWLOG).
    scripts: Vec<Vec<u64>>,
    /// Commands a run sends, by name (MONITOR, over `CENSUS` runs).
    sent: BTreeMap<String, u64>,
    /// Commands Redis executed, by name, the scripts' own calls included.
    executed: BTreeMap<String, u64>,
}

fn config_set(conn: &mut redis::Connection, name: &str, value: &str) -> Result<()> {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query::<()>(conn)
        .with_context(|| format!("CONFIG SET {name} {value}"))
}

/// The harness's own commands (and the subcommands Redis counts apart).
fn harness_command(name: &str) -> bool {
    let base = name.split('|').next().unwrap_or(name);
    matches!(base, "config" | "slowlog" | "info" | "client")
}

fn uncontended(ctx: &Ctx, variants: &[Variant]) -> Result<Vec<Quiet>> {
    let n = variants.len();
    let keys: Vec<String> = variants.iter().map(|_| ctx.unique("ab")).collect();
    // `usage`: the same options made invalid (a refresh above the TTL),
    // so that the binary starts, parses and exits 2 before any connection.
    let cmd = |i: usize, usage: bool| {
        let v = &variants[i];
        let mut c = quiet(&v.bin);
        c.args(["--redis", &v.server.url(), "--key", &keys[i]])
            .args(&v.extra);
        if usage {
            c.args(["--ttl", "1s", "--refresh", "2s"]);
        }
        c.args(["--", "true"]);
        c
    };
    let mut conns = variants
        .iter()
        .map(|v| v.server.conn())
        .collect::<Result<Vec<_>>>()?;
    let mut addrs = Vec::with_capacity(n);
    for c in &mut conns {
        addrs.push(client_addr(c)?);
        // Every command in the log, with the time it ran inside Redis.
        config_set(c, "slowlog-log-slower-than", "0")?;
        config_set(c, "slowlog-max-len", "1000000")?;
    }
    for _ in 0..3 {
        for i in 0..n {
            timed(&mut cmd(i, false));
            timed(&mut cmd(i, true));
        }
    }
    let sent = census(
        &variants.iter().map(|v| &v.server).collect::<Vec<_>>(),
        &mut conns,
        || {
            for _ in 0..CENSUS {
                for i in 0..n {
                    timed(&mut cmd(i, false));
                }
            }
        },
    )?;
    for c in &mut conns {
        redis::cmd("SLOWLOG").arg("RESET").query::<()>(c)?;
        redis::cmd("CONFIG").arg("RESETSTAT").query::<()>(c)?;
    }
    let runs = ctx.opts.runs;
    let mut wall = vec![Vec::with_capacity(runs); n];
    let mut startup = vec![Vec::with_capacity(runs); n];
    let mut bad = vec![0usize; n];
    for r in 0..runs {
        for k in 0..n {
            let i = (r + k) % n;
            let (ms, code) = timed(&mut cmd(i, false));
            wall[i].push(ms);
            bad[i] += usize::from(code != Some(0));
            let (ms, code) = timed(&mut cmd(i, true));
            startup[i].push(ms);
            bad[i] += usize::from(code != Some(2));
        }
    }
    let mut out = Vec::with_capacity(n);
    for ((i, c), sent) in conns.iter_mut().enumerate().zip(sent) {
        let executed = commandstats(c)?
            .into_iter()
            .filter(|(name, _)| !harness_command(name))
            .collect();
        // SLOWLOG logs the scripts' own calls too, after each its script.
        let mut scripts: Vec<(String, Vec<u64>)> = Vec::new();
        for e in slowlog(c)?.into_iter().filter(|e| e.client != addrs[i]) {
            let name = e.args.first().map_or(String::new(), |a| a.to_lowercase());
            if name == "evalsha" || name == "eval" {
                // The SHA (or the script's first bytes) tells scripts apart.
                let id = e.args.get(1).cloned().unwrap_or_default();
                match scripts.iter_mut().find(|(s, _)| *s == id) {
                    Some((_, times)) => times.push(e.micros),
                    None => scripts.push((id, vec![e.micros])),
                }
            }
        }
        config_set(c, "slowlog-log-slower-than", "10000")?;
        redis::cmd("SLOWLOG").arg("RESET").query::<()>(c)?;
        out.push(Quiet {
            wall: summarize(&wall[i]),
            startup: summarize(&startup[i]),
            bad: bad[i],
            scripts: scripts.into_iter().map(|(_, t)| t).collect(),
            sent,
            executed,
        });
    }
    Ok(out)
}

/// `contenders` running sections on one key, per variant, rounds
/// interleaved.
fn contended(ctx: &Ctx, variants: &[Variant], contenders: usize) -> Result<Vec<Vec<Round>>> {
    let n = variants.len();
    let mut rounds: Vec<Vec<Round>> = (0..n).map(|_| Vec::new()).collect();
    for rep in 0..ctx.opts.reps {
        for k in 0..n {
            let i = (rep + k) % n;
            let v = &variants[i];
            eprintln!(
                "bench:   round {}/{} C={contenders} variant {}",
                rep + 1,
                ctx.opts.reps,
                i + 1
            );
            let url = v.server.url();
            rounds[i].push(sections_round(ctx, contenders, v.limit, |key, rec, ms| {
                redlock_section(ctx, &v.bin, &url, &v.extra, key, rec, ms)
            })?);
        }
    }
    Ok(rounds)
}

fn mean(v: &[u64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<u64>() as f64 / v.len() as f64
}

fn fmt_us(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1} µs")
    } else {
        "—".into()
    }
}

/// `get 2, lpush 1, ...` per run.
fn per_run(counts: &BTreeMap<String, u64>, runs: usize) -> String {
    counts
        .iter()
        .map(|(name, n)| {
            let x = *n as f64 / runs as f64;
            if (x - x.round()).abs() < 0.005 {
                format!("{name} {x:.0}")
            } else {
                format!("{name} {x:.2}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row of the four columns' values and the two ratios.
fn row(t: &mut Table, name: String, v: [f64; 4], fmt: &dyn Fn(f64) -> String) {
    t.row([
        name,
        fmt(v[0]),
        fmt(v[1]),
        fmt(v[2]),
        fmt(v[3]),
        fmt_ratio(v[2], v[0]),
        fmt_ratio(v[1], v[0]),
    ]);
}

/// Runs per column during which MONITOR counts what a run sends.
const CENSUS: usize = 3;

const NAMES: [&str; 4] = ["A", "A′", "B", "B `--limit 2`"];

pub fn run(ctx: &Ctx) -> Result<Table> {
    let (base, base_label) = baseline(&ctx.opts.baseline)?;
    // Both run from fresh copies made alike: the same bytes ran 0.1–0.3 ms
    // slower from the file the linker wrote (target/release/redlock-run)
    // than from a copy of it (measured: 200 interleaved rounds, A/A
    // within 0.03 ms), which would have been charged to B.
    let copy = |from: &Path, name: &str| -> Result<PathBuf> {
        let to = ctx.path(name);
        std::fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
        Ok(to)
    };
    let (base, this) = (
        copy(&base, "redlock-run-a")?,
        copy(&ctx.redlock, "redlock-run-b")?,
    );
    let variant = |bin: &Path, extra: &[&str], limit: usize| -> Result<Variant> {
        Ok(Variant {
            bin: bin.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            limit,
            server: RedisServer::start(ctx.tmp.path())?,
        })
    };
    let variants = [
        variant(&base, &[], 1)?,
        variant(&base, &[], 1)?,
        variant(&this, &[], 1)?,
        variant(&this, &["--limit", "2"], 2)?,
    ];
    let runs = ctx.opts.runs;
    eprintln!("bench:   uncontended, {runs} rounds");
    let quiet = uncontended(ctx, &variants)?;
    let mut contention = Vec::new();
    for &c in &ctx.opts.ab_contenders {
        contention.push((c, contended(ctx, &variants, c)?));
    }

    let mut t = Table::new(
        "7. History and --limit on the one-holder path: this build (B) against a baseline (A)",
        &[
            "metric",
            &format!("A: {base_label}"),
            "A′: A again",
            "B: this build",
            "B `--limit 2`",
            "B / A",
            "A′ / A (noise)",
        ],
    );
    let each = |f: &dyn Fn(&Quiet) -> f64| [0, 1, 2, 3].map(|i| f(&quiet[i]));
    row(
        &mut t,
        "uncontended `--key K -- true`: median".into(),
        each(&|q| q.wall.p50),
        &fmt_ms,
    );
    row(
        &mut t,
        "uncontended: p90".into(),
        each(&|q| q.wall.p90),
        &fmt_ms,
    );
    row(
        &mut t,
        "↳ start-up + parsing alone (a usage error, exit 2, no Redis): median".into(),
        each(&|q| q.startup.p50),
        &fmt_ms,
    );
    row(
        &mut t,
        "↳ the rest (connect, acquire, run `true`, release): the medians' difference".into(),
        each(&|q| q.wall.p50 - q.startup.p50),
        &fmt_ms,
    );
    for (s, what) in ["1st script of a run (acquire)", "2nd script (release)"]
        .iter()
        .enumerate()
    {
        row(
            &mut t,
            format!("{what}: time inside Redis, mean"),
            each(&|q| q.scripts.get(s).map_or(f64::NAN, |t| mean(t))),
            &fmt_us,
        );
    }
    row(
        &mut t,
        "commands Redis ran per run, the scripts' own calls included".into(),
        each(&|q| q.executed.values().sum::<u64>() as f64 / runs as f64),
        &|x| fmt_num(x, 1),
    );
    row(
        &mut t,
        "commands sent per run (round trips)".into(),
        each(&|q| q.sent.values().sum::<u64>() as f64 / CENSUS as f64),
        &|x| fmt_num(x, 1),
    );
    for (c, rounds) in &contention {
        let pooled = |i: usize| {
            let all: Vec<f64> = rounds[i]
                .iter()
                .flat_map(|r| r.handovers_ms.clone())
                .collect();
            summarize(&all)
        };
        let hand = [0, 1, 2, 3].map(pooled);
        row(
            &mut t,
            format!("C={c}: hand-over p50"),
            hand.map(|s| s.p50),
            &fmt_ms,
        );
        row(
            &mut t,
            format!("C={c}: hand-over p90"),
            hand.map(|s| s.p90),
            &fmt_ms,
        );
        row(
            &mut t,
            format!("C={c}: sections/s (median of rounds)"),
            [0, 1, 2, 3].map(|i| {
                median(
                    &rounds[i]
                        .iter()
                        .map(|r| r.sections_per_s)
                        .collect::<Vec<_>>(),
                )
            }),
            &|x| fmt_num(x, 1),
        );
        let sum = |i: usize, f: fn(&Round) -> usize| rounds[i].iter().map(f).sum::<usize>();
        let done = [0, 1, 2, 3].map(|i| {
            let (rec, exp, fail) = (
                sum(i, |r| r.recorded),
                sum(i, |r| r.expected),
                sum(i, |r| r.failures),
            );
            let over = sum(i, |r| r.overlaps);
            let mut s = format!("{rec}/{exp}, {over} beyond the limit");
            if fail > 0 {
                s += &format!(", {fail} failed");
            }
            s
        });
        t.row(
            std::iter::once(format!("C={c}: sections done, at once beyond the limit"))
                .chain(done)
                .chain(["—".to_string(), "—".to_string()]),
        );
    }

    t.note(format!(
        "A is the baseline {base_label} twice (A and A′, two columns of one binary: how far apart \
         they land is this run's noise); B is the binary under test, with the default `--limit 1` \
         (run history recorded on every release) and with `--limit 2` (one holder of two slots; \
         the sorted-set scripts). Each column has its own local redis-server; A and B run from \
         copies made in this run (the linker's own output file starts slower than a copy of it)."
    ));
    t.note(format!(
        "Uncontended: wall time of spawn + wait of `redlock-run --redis URL --key K -- true`, \
         and of the same with `--ttl 1s --refresh 2s` (refused, exit 2, before connecting), \
         {runs} rounds over the four columns (the order rotating each round) after 3 warm-up \
         rounds. Time inside Redis: SLOWLOG (logging every command during these runs only) \
         gives each script call's execution time on the server, µs, the calls it makes \
         included, the network not; a run sends the acquisition script, then the release \
         script. Commands Redis ran: INFO commandstats, which counts a script's own calls too. \
         Commands sent: MONITOR, over {CENSUS} runs per column before the timed ones (it tells \
         clients' commands from the scripts' calls; its cost stays out of the times)."
    ));
    if !contention.is_empty() {
        t.note(format!(
            "Contended: as table 2 (C contenders, {} sections each of 5–20 ms, `--timeout 60s`), \
             {} round(s) per column, interleaved. Hand-over: a section's start minus the moment \
             its slot freed (for `--limit 2`, the second-latest end before that start: the \
             slot hand-over); \"beyond the limit\" counts sections that started while the limit \
             already ran (must be 0).",
            ctx.opts.sections, ctx.opts.reps
        ));
    }
    let diff = |i: usize, f: fn(&Summary) -> f64| {
        (
            f(&quiet[i].wall) - f(&quiet[0].wall),
            f(&quiet[i].startup) - f(&quiet[0].startup),
        )
    };
    let ((b, b_start), (a, a_start)) = (diff(2, |s| s.p50), diff(1, |s| s.p50));
    t.note(format!(
        "B − A at the uncontended median: {b:+.3} ms, start-up + parsing alone {b_start:+.3} ms; \
         A′ − A: {a:+.3} ms and {a_start:+.3} ms."
    ));
    for (i, q) in quiet.iter().enumerate() {
        if i == 1 {
            continue;
        }
        t.note(format!(
            "{} — sent per run: {}; ran per run: {}.",
            NAMES[i],
            per_run(&q.sent, CENSUS),
            per_run(&q.executed, runs)
        ));
    }
    for (i, q) in quiet.iter().enumerate() {
        if q.bad > 0 {
            t.note(format!(
                "{}: {} uncontended run(s) did not exit 0 (2 for the usage error)",
                NAMES[i], q.bad
            ));
        }
        let calls: Vec<usize> = q.scripts.iter().map(Vec::len).collect();
        if calls != [runs, runs] {
            t.note(format!(
                "{}: script calls seen per script {calls:?}, not one acquisition and one \
                 release per run: the script rows mix other calls",
                NAMES[i]
            ));
        }
    }
    Ok(t)
}
