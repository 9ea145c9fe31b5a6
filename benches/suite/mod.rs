//! The benchmark's parts: one file per table, plus the Redis servers, the
//! helper modes and the statistics they share.

pub mod baseline;
pub mod contention;
pub mod features;
pub mod helpers;
pub mod load;
pub mod memory;
pub mod opts;
pub mod overhead;
pub mod quorum;
pub mod report;
pub mod schedule;
pub mod servers;
pub mod stats;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use opts::Opts;
use servers::RedisServer;

/// Everything a table needs. Servers are declared first so they stop
/// before their directory goes away.
pub struct Ctx {
    pub servers: Vec<RedisServer>,
    pub tmp: tempfile::TempDir,
    pub opts: Opts,
    /// The redlock-run binary under test.
    pub redlock: PathBuf,
    /// This binary, for the helper modes.
    pub me: PathBuf,
    seq: AtomicU64,
}

impl Ctx {
    pub fn new(opts: Opts, redlock: PathBuf, masters: usize) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("redlock-bench.")
            .tempdir()
            .context("creating a temp dir")?;
        let servers = (0..masters)
            .map(|_| RedisServer::start(tmp.path()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Ctx {
            servers,
            tmp,
            opts,
            redlock,
            me: std::env::current_exe().context("locating the bench binary")?,
            seq: AtomicU64::new(0),
        })
    }

    /// A name no other run of this invocation uses.
    pub fn unique(&self, what: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("bench-{what}-{}-{n}", std::process::id())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn url(&self, master: usize) -> String {
        self.servers[master].url()
    }

    /// redlock-run with silent stdio and none of the caller's REDLOCK_*
    /// settings.
    pub fn redlock(&self) -> Command {
        quiet(&self.redlock)
    }

    /// This binary in a helper mode.
    pub fn helper(&self) -> Command {
        quiet(&self.me)
    }
}

/// A command with stdio on /dev/null and no REDLOCK_* variables from the
/// caller's environment.
pub fn quiet(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REDLOCK_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// An exit status as a shell reports it (128 + N for signal N).
pub fn exit_code(st: ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// Wall time of one run, in ms, and its exit code (None: did not start).
pub fn timed(cmd: &mut Command) -> (f64, Option<i32>) {
    let start = Instant::now();
    let code = cmd.status().ok().map(exit_code);
    (stats::ms(start.elapsed()), code)
}

/// Wait for a child until `deadline`, then stop it (by PID).
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<i32> {
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(exit_code(st)),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                servers::stop_child(child, Duration::from_secs(1));
                return None;
            }
        }
    }
}

/// Sleep until `t` (no-op if it has passed).
pub fn sleep_until(t: Instant) {
    if let Some(d) = t.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

/// Cargo's target directory for this checkout.
pub fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| manifest.join("target"), |d| manifest.join(d))
}

/// `cargo build --release --locked` of the redlock-run binary in the
/// checkout at `dir`, into the target directory `target`; cargo's output
/// goes to stderr (stdout is the report). Returns the binary.
pub fn build_release(dir: &Path, target: &Path) -> Result<PathBuf> {
    let out = target.join("release").join("redlock-run");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    // What cargo sets for the bench it runs is not ours to pass on: a
    // build script that watches CARGO_MANIFEST_DIR (ring's) would be rerun
    // and everything above it rebuilt, here and in the next plain build.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*k)
        {
            build.env_remove(&*k);
        }
    }
    let status = build
        .args(["build", "--release", "--locked", "--bin", "redlock-run"])
        .arg("--target-dir")
        .arg(target)
        .current_dir(dir)
        .stdout(std::io::stderr())
        .status()
        .context("running cargo build --release")?;
    if !status.success() || !out.is_file() {
        bail!("cargo build --release did not produce {}", out.display());
    }
    Ok(out)
}

/// Is `program` on PATH?
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| Path::new(&d).join(program).is_file()))
}
