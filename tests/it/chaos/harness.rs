//! The world one scenario runs in: `masters` real `redis-server`s, a fault
//! proxy per (master, contender) so that any contender can be cut off on
//! its own, `contenders` threads that each run `redlock-run` on one key in
//! a loop (a section of 5–50 ms under a long `--timeout`), and a sampler
//! per master that reads the key's value and PTTL every ~2 ms over a
//! direct connection. Everything it starts is stopped by PID on drop,
//! including when a scenario panics.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::checker::{self, Report};
use super::faults::Event;
use super::section::{Section, helper};
use super::threads::{contender, sampler};
use super::{Rng, mono_ns};
use crate::support::proxy::{Mode, Proxy};
use crate::support::{RedisServer, key};

/// What a scenario is made of.
#[derive(Debug, Clone)]
pub struct Params {
    pub contenders: usize,
    pub masters: usize,
    pub ttl: Duration,
    pub refresh: Option<Duration>,
    pub kill_after: Option<Duration>,
    /// Section length, uniform in this range (ms).
    pub section_ms: (u64, u64),
    /// Probability that a section is long (1.2–2.5 s, several lease
    /// renewals): only those can lose their lease to a fault.
    pub long: f64,
    /// Probability that a section ignores SIGTERM.
    pub term_ignoring: f64,
    /// `--appendonly yes --appendfsync always`: a restart keeps the lock.
    pub persistence: bool,
    pub timeout: Duration,
    pub seed: u64,
}

impl Params {
    pub fn new(contenders: usize, masters: usize, seed: u64) -> Self {
        Params {
            contenders,
            masters,
            ttl: Duration::from_secs(1),
            refresh: None,
            kill_after: None,
            section_ms: (5, 50),
            long: 0.0,
            term_ignoring: 0.0,
            persistence: false,
            timeout: Duration::from_secs(60),
            seed,
        }
    }

    /// The tool's effective --refresh (default ttl/3).
    pub fn refresh(&self) -> Duration {
        self.refresh.unwrap_or(self.ttl / 3)
    }

    /// The tool's effective --kill-after, from the tool's own rule.
    pub fn kill_after(&self) -> Duration {
        redlock_run::Lease::from_args(&redlock_run::LeaseArgs {
            ttl: self.ttl,
            refresh: self.refresh,
            min_hold: Duration::ZERO,
            kill_after: self.kill_after,
            limit: 1,
        })
        .expect("the scenario's lease options are valid")
        .kill_after
    }

    pub fn quorum(&self) -> usize {
        self.masters / 2 + 1
    }
}

/// One sample of the key on one master.
#[derive(Debug, Clone)]
pub struct Sample {
    pub t_send: u64,
    pub t_recv: u64,
    pub value: Option<String>,
    pub pttl: i64,
}

/// One finished `redlock-run`.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: u64,
    pub contender: usize,
    pub spawned: u64,
    pub exited: u64,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub section: Option<Section>,
    /// When the section's process died (its FIFO reached EOF).
    pub death: Option<u64>,
    /// Set when the command was still alive after redlock-run exited.
    pub outlived: Option<String>,
    pub term_ignoring: bool,
    pub stderr: PathBuf,
}

/// A `redlock-run` in flight.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    pub contender: usize,
    pub rr_pid: i32,
    pub long: bool,
    pub term_ignoring: bool,
    /// How long its section sleeps once started (it can only take longer).
    pub section_us: u64,
}

/// State the contender and sampler threads share with the scenario.
pub struct Shared {
    pub dir: PathBuf,
    pub key: String,
    pub stop: AtomicBool,
    pub stop_sampling: AtomicBool,
    pub next_run: AtomicU64,
    pub runs: Mutex<Vec<Run>>,
    pub live: Mutex<BTreeMap<u64, Live>>,
    pub events: Mutex<Vec<Event>>,
    pub samples: Vec<Mutex<Vec<Sample>>>,
    /// Runs the test itself signalled (SIGKILL faults, SIGTERM at the end).
    pub signalled: Mutex<HashSet<u64>>,
    pub epoch: AtomicU64,
}

pub struct World {
    pub p: Params,
    pub sh: Arc<Shared>,
    /// proxies[master][contender]
    pub proxies: Vec<Vec<Proxy>>,
    pub masters: Vec<RedisServer>,
    pub rng: Rng,
    started: u64,
    contenders: Vec<JoinHandle<()>>,
    samplers: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl World {
    pub fn start(p: Params) -> World {
        let extra: &[&str] = if p.persistence {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &[]
        };
        let masters: Vec<RedisServer> = (0..p.masters)
            .map(|_| RedisServer::start_with(extra))
            .collect();
        let proxies: Vec<Vec<Proxy>> = masters
            .iter()
            .map(|m| (0..p.contenders).map(|_| Proxy::start(m.port)).collect())
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let sh = Arc::new(Shared {
            dir: dir.path().to_path_buf(),
            key: key("chaos"),
            stop: AtomicBool::new(false),
            stop_sampling: AtomicBool::new(false),
            next_run: AtomicU64::new(0),
            runs: Mutex::new(Vec::new()),
            live: Mutex::new(BTreeMap::new()),
            events: Mutex::new(Vec::new()),
            samples: (0..p.masters).map(|_| Mutex::new(Vec::new())).collect(),
            signalled: Mutex::new(HashSet::new()),
            epoch: AtomicU64::new(0),
        });
        let _ = helper();
        let samplers = masters
            .iter()
            .enumerate()
            .map(|(m, server)| {
                let (sh, port) = (sh.clone(), server.port);
                std::thread::Builder::new()
                    .name(format!("sampler-{m}"))
                    .spawn(move || sampler(&sh, m, port))
                    .unwrap()
            })
            .collect();
        let mut rng = Rng::new(p.seed);
        let mut base: Vec<OsString> = Vec::new();
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        for (k, v) in [
            ("--key", sh.key.clone()),
            ("--ttl", ms(p.ttl)),
            ("--timeout", ms(p.timeout)),
        ] {
            base.push(k.into());
            base.push(v.into());
        }
        if let Some(r) = p.refresh {
            base.extend(["--refresh".into(), ms(r).into()]);
        }
        if let Some(k) = p.kill_after {
            base.extend(["--kill-after".into(), ms(k).into()]);
        }
        let contenders = (0..p.contenders)
            .map(|c| {
                let urls: Vec<String> = proxies.iter().map(|row| row[c].url()).collect();
                let (sh, base, rng, p) = (sh.clone(), base.clone(), rng.fork(), p.clone());
                std::thread::Builder::new()
                    .name(format!("contender-{c}"))
                    .spawn(move || contender(&sh, c, &urls, &base, rng, &p))
                    .unwrap()
            })
            .collect();
        World {
            p,
            sh,
            proxies,
            masters,
            rng,
            started: mono_ns(),
            contenders,
            samplers,
            _dir: dir,
        }
    }

    /// Let the contenders run undisturbed for `d` (the gap between faults).
    pub fn idle(&self, d: Duration) {
        std::thread::sleep(d);
    }

    /// Heal everything, let the contenders finish their current run (the
    /// stragglers get SIGTERM), then check everything that was recorded.
    pub fn finish(&mut self) -> Report {
        for row in &self.proxies {
            for proxy in row {
                proxy.set_mode(Mode::Pass);
            }
        }
        self.sh.stop.store(true, Ordering::SeqCst);
        let stopping = mono_ns();
        let mut late = Vec::new();
        // Runs still waiting for the lock get SIGTERM, which ends a wait
        // with 128+N and nothing run; running sections finish.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !wait_finished(&self.contenders, Duration::from_millis(100))
            && Instant::now() < deadline
        {
            for (id, l) in self.sh.live.lock().unwrap().iter() {
                let mut signalled = self.sh.signalled.lock().unwrap();
                if !signalled.contains(id) && Section::read(&self.sh.dir, *id).is_none() {
                    signalled.insert(*id);
                    let _ = kill(Pid::from_raw(l.rr_pid), Signal::SIGTERM);
                }
            }
        }
        if !wait_finished(&self.contenders, Duration::ZERO) {
            for (id, l) in self.sh.live.lock().unwrap().iter() {
                late.push(format!(
                    "run {id} (contender {}) did not finish within 20 s of the end",
                    l.contender
                ));
            }
            self.kill_all();
        }
        for (c, t) in self.contenders.drain(..).enumerate() {
            if t.join().is_err() {
                late.push(format!("contender thread {c} panicked"));
            }
        }
        self.sh.stop_sampling.store(true, Ordering::SeqCst);
        for t in self.samplers.drain(..) {
            let _ = t.join();
        }
        let runs = std::mem::take(&mut *self.sh.runs.lock().unwrap());
        let samples: Vec<Vec<Sample>> = self
            .sh
            .samples
            .iter()
            .map(|s| std::mem::take(&mut *s.lock().unwrap()))
            .collect();
        let events = std::mem::take(&mut *self.sh.events.lock().unwrap());
        let signalled = std::mem::take(&mut *self.sh.signalled.lock().unwrap());
        let mut report = checker::check(&checker::Input {
            p: &self.p,
            runs: &runs,
            samples: &samples,
            events: &events,
            signalled: &signalled,
            duration_ns: mono_ns() - self.started,
            stopping_ns: stopping,
        });
        report.violations.extend(late);
        report
    }

    /// SIGCONT and SIGKILL every redlock-run in flight (their commands die
    /// with them through PDEATHSIG).
    fn kill_all(&self) {
        for l in self.sh.live.lock().unwrap().values() {
            let pid = Pid::from_raw(l.rr_pid);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = kill(pid, Signal::SIGKILL);
        }
        // A frozen command must be thawed too, or it could not die.
        for id in self.sh.live.lock().unwrap().keys() {
            if let Some(s) = Section::read(&self.sh.dir, *id) {
                let _ = kill(Pid::from_raw(s.pid), Signal::SIGCONT);
            }
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.sh.stop.store(true, Ordering::SeqCst);
        for row in &self.proxies {
            for proxy in row {
                proxy.set_mode(Mode::Pass);
            }
        }
        if !self.contenders.is_empty() {
            self.kill_all();
            for t in self.contenders.drain(..) {
                let _ = t.join();
            }
        }
        self.sh.stop_sampling.store(true, Ordering::SeqCst);
        for t in self.samplers.drain(..) {
            let _ = t.join();
        }
    }
}

fn wait_finished(threads: &[JoinHandle<()>], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if threads.iter().all(JoinHandle::is_finished) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
