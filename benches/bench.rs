//! redlock-run's benchmark: redlock-run next to flock(1) and a
//! hand-written polling lock, measured in the same run with the tools'
//! runs interleaved, printed as a markdown report on stdout (progress on
//! stderr). Run it with `scripts/bench` (or `cargo bench --bench bench --
//! [--quick] [--only 1,2] ...`; `--help` lists the knobs). It prints
//! numbers and verdicts against the targets; it asserts nothing.
//!
//! It starts its own redis-server processes on free loopback ports (never
//! 6379), keeps nothing on disk, and stops them by PID. The same binary
//! also serves as the helper programs the measurements run
//! (`suite/helpers.rs`).

mod suite;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use suite::opts::{Opts, USAGE};
use suite::report::Table;
use suite::{Ctx, on_path, report};

type TableFn = fn(&Ctx) -> Result<Table>;

const TABLES: [(u8, &str, TableFn); 6] = [
    (1, "overhead", suite::overhead::run),
    (2, "contention", suite::contention::run),
    (3, "Redis load while waiting", suite::load::run),
    (4, "memory", suite::memory::run),
    (5, "schedule precision", suite::schedule::run),
    (6, "quorum cost", suite::quorum::run),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = suite::helpers::dispatch(&args) {
        std::process::exit(code);
    }
    if args.is_empty() {
        // `cargo test --all-targets` runs a harness = false bench with no
        // arguments (`cargo bench` always passes --bench): don't spend minutes.
        eprintln!(
            "bench: no arguments, nothing run; use scripts/bench or `cargo bench --bench bench`"
        );
        return;
    }
    let opts = match Opts::parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("bench: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    match run(opts) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::exit(1);
        }
    }
}

fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| manifest.join("target"), |d| manifest.join(d))
}

/// The release redlock-run: $REDLOCK_RUN_BIN, the one cargo built next to
/// this bench, or target/release/redlock-run (built if missing).
fn redlock_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REDLOCK_RUN_BIN") {
        return Ok(PathBuf::from(p));
    }
    let release = target_dir().join("release").join("redlock-run");
    let candidates = [
        option_env!("CARGO_BIN_EXE_redlock-run").map(PathBuf::from),
        Some(release.clone()),
    ];
    if let Some(found) = candidates.into_iter().flatten().find(|p| p.is_file()) {
        return Ok(found);
    }
    eprintln!("bench: {} is missing; building it", release.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--bin", "redlock-run"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .context("running cargo build --release")?;
    if !status.success() || !release.is_file() {
        bail!(
            "cargo build --release did not produce {}",
            release.display()
        );
    }
    Ok(release)
}

/// Runs the selected tables; false if one of them could not be measured.
fn run(opts: Opts) -> Result<bool> {
    for tool in ["redis-server", "flock", "sleep", "true"] {
        if !on_path(tool) {
            bail!("{tool} is not on PATH (scripts/bench installs redis-server and util-linux)");
        }
    }
    let redlock = redlock_binary()?;
    let masters = if opts.selected(6) { 5 } else { 1 };
    let started = Instant::now();
    let ctx = Ctx::new(opts, redlock, masters)?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "# redlock-run benchmark\n")?;
    writeln!(
        out,
        "{}, {}. Every comparison below was measured in this one run, the tools' runs \
         interleaved; times are medians/percentiles of many runs, compared as ratios.\n",
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC"),
        ctx.opts.describe()
    )?;
    writeln!(out, "{}", report::machine(&ctx.redlock))?;
    out.flush()?;

    let mut all_ok = true;
    for (n, name, table) in TABLES {
        if !ctx.opts.selected(n) {
            continue;
        }
        eprintln!("bench: table {n}: {name}");
        let t0 = Instant::now();
        match table(&ctx) {
            Ok(t) => writeln!(out, "{}", t.render())?,
            Err(e) => {
                all_ok = false;
                writeln!(out, "## {n}. {name}\n\n**could not be measured:** {e:#}\n")?;
            }
        }
        out.flush()?;
        eprintln!("bench: table {n} took {:.1} s", t0.elapsed().as_secs_f64());
    }
    writeln!(
        out,
        "Total {:.0} s; load average at the end: {}.",
        started.elapsed().as_secs_f64(),
        report::loadavg()
    )?;
    Ok(all_ok)
}
