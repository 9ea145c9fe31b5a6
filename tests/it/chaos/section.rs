//! The critical section every contender runs (`section.c`), and what the
//! test reads back from it.
//!
//! Why a compiled helper: a section must stamp CLOCK_MONOTONIC (immune to
//! clock steps, and the clock of the test's own stamps) cheaply and
//! precisely, update the fenced resource atomically (flock), and keep a
//! FIFO open so that its death is observed by the kernel's EOF rather than
//! by polling. `date +%s%N` would add a fork per stamp and use the wall
//! clock; python3 takes ~20 ms to start; `/proc/uptime` has 10 ms steps.
//! The C compiler is the one Rust already needs as its linker; the binary
//! is built once per source version into CARGO_TARGET_TMPDIR.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::Duration;

use super::mono_ns;

const SOURCE: &str = include_str!("section.c");

/// The helper's path, compiled on first use.
pub fn helper() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| crate::support::compile_c("chaos-section", SOURCE, &[]))
}

/// What one section recorded in `run-ID`.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub t0: u64,
    pub pid: i32,
    pub fencing: u64,
    pub epoch: u64,
    pub token: String,
    /// The resource accepted the token at the start (None: killed before).
    pub begin_ok: Option<bool>,
    pub begin_seen: u64,
    /// The end stamp, when the section ran to its end.
    pub t1: Option<u64>,
    pub commit_ok: Option<bool>,
    pub commit_seen: u64,
}

impl Section {
    /// Read `dir/run-ID`; None if the section never started.
    pub fn read(dir: &Path, run: u64) -> Option<Section> {
        let text = std::fs::read_to_string(run_file(dir, run)).ok()?;
        let mut s = Section::default();
        let mut started = false;
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["start", t0, pid, fencing, epoch, token] => {
                    s.t0 = t0.parse().ok()?;
                    s.pid = pid.parse().ok()?;
                    s.fencing = fencing.parse().ok()?;
                    s.epoch = epoch.parse().ok()?;
                    s.token = token.to_string();
                    started = true;
                }
                ["begin", ok, seen] => {
                    s.begin_ok = Some(*ok == "1");
                    s.begin_seen = seen.parse().unwrap_or(0);
                }
                ["end", t1, ok, seen] => {
                    s.t1 = t1.parse().ok();
                    s.commit_ok = Some(*ok == "1");
                    s.commit_seen = seen.parse().unwrap_or(0);
                }
                _ => {}
            }
        }
        started.then_some(s)
    }

    pub fn ended(&self) -> bool {
        self.t1.is_some()
    }
}

pub fn run_file(dir: &Path, run: u64) -> PathBuf {
    dir.join(format!("run-{run}"))
}

fn fifo(dir: &Path, run: u64) -> PathBuf {
    dir.join(format!("fifo-{run}"))
}

/// Watches one run's FIFO: resolves to the moment its writer (the section)
/// died, or to the moment it was released because no section started.
pub struct DeathWatch {
    path: PathBuf,
    thread: Option<JoinHandle<u64>>,
}

impl DeathWatch {
    /// Create the FIFO and start reading it (before redlock-run starts).
    pub fn start(dir: &Path, run: u64) -> DeathWatch {
        let path = fifo(dir, run);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let p = path.clone();
        let thread = std::thread::Builder::new()
            .name(format!("death-{run}"))
            .spawn(move || {
                // Blocks until a writer opens it, then until every writer
                // has closed it: the section's exit, however it happens.
                if let Ok(mut f) = File::open(&p) {
                    let mut buf = [0u8; 64];
                    while matches!(f.read(&mut buf), Ok(n) if n > 0) {}
                }
                mono_ns()
            })
            .expect("spawn a death watcher");
        DeathWatch {
            path,
            thread: Some(thread),
        }
    }

    /// No section will ever open the FIFO: unblock the reader.
    pub fn release(&self) {
        use std::os::unix::fs::OpenOptionsExt;
        let thread = self.thread.as_ref().expect("not joined");
        while !thread.is_finished() {
            // Succeeds once the reader is in open(); ENXIO before that.
            if std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(&self.path)
                .is_ok()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// When the section died (its FIFO reached EOF).
    pub fn join(mut self) -> u64 {
        let t = self.thread.take().expect("joined once").join().unwrap();
        let _ = std::fs::remove_file(&self.path);
        t
    }
}

impl Drop for DeathWatch {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.release();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
