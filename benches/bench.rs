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
use std::time::Instant;

use anyhow::{Result, bail};

use suite::opts::{Opts, USAGE};
use suite::report::Table;
use suite::{Ctx, build_release, on_path, report, target_dir};

type TableFn = fn(&Ctx) -> Result<Table>;

const TABLES: [(u8, &str, TableFn); 7] = [
    (1, "overhead", suite::overhead::run),
    (2, "contention", suite::contention::run),
    (3, "Redis load while waiting", suite::load::run),
    (4, "memory", suite::memory::run),
    (5, "schedule precision", suite::schedule::run),
    (6, "quorum cost", suite::quorum::run),
    (
        7,
        "the one-holder path against a baseline commit",
        suite::features::run,
    ),
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

/// The release redlock-run: $REDLOCK_RUN_BIN, else the binary
/// `cargo build --release` makes (built now, or only put back in place
/// when it is fresh). Not the one cargo built for this bench
/// (CARGO_BIN_EXE_redlock-run, uplifted to the same path): that one is
/// built with the dev-dependencies' features (tokio's test-util), so it
/// is not quite the binary users get.
fn redlock_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REDLOCK_RUN_BIN") {
        return Ok(PathBuf::from(p));
    }
    build_release(Path::new(env!("CARGO_MANIFEST_DIR")), &target_dir())
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
