//! `schedule` end to end: each tick runs once across instances whose wall
//! clocks disagree (libfaketime shifts two of them), runs never overlap,
//! a Redis restart is ridden out, a killed holder's tick is taken over only
//! once its lease expired, cron ticks land on time, failures (a failing
//! command, a lost lease) don't stop the schedule, and bad usage is
//! refused.
//!
//! Each instance's stderr is read line by line as it comes, so the tests
//! wait for log lines and output files instead of sleeping for events.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::*;

/// `schedule` against a hostile fleet.
mod fleet;

/// How long any single expected event may take before the test fails.
const EVENT: Duration = Duration::from_secs(10);

/// One `redlock-run schedule` process we started, with its stderr lines
/// (and the wall-clock time each arrived). SIGKILLed by PID on drop if it
/// is still running, so a failed assertion leaves nothing behind.
struct Instance {
    name: String,
    child: Option<Child>,
    pid: i32,
    lines: Arc<Mutex<Vec<(SystemTime, String)>>>,
}

impl Instance {
    fn spawn(name: &str, cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn redlock-run schedule");
        let pid = child.id() as i32;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let err = child.stderr.take().unwrap();
        // Not joined: a command that outlives us could hold the pipe open.
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push((SystemTime::now(), line));
            }
        });
        Instance {
            name: name.to_string(),
            child: Some(child),
            pid,
            lines,
        }
    }

    fn lines(&self) -> Vec<String> {
        let l = self.lines.lock().unwrap();
        l.iter().map(|(_, s)| s.clone()).collect()
    }

    fn timed_lines(&self) -> Vec<(SystemTime, String)> {
        self.lines.lock().unwrap().clone()
    }

    fn log(&self) -> String {
        format!(
            "---- {} (pid {}) ----\n{}",
            self.name,
            self.pid,
            self.lines().join("\n")
        )
    }

    /// The first line of its log that contains `pat`.
    fn line_with(&self, pat: &str) -> Option<String> {
        self.lines().into_iter().find(|l| l.contains(pat))
    }

    /// SIGTERM it, then expect it to exit 0 within a few seconds (as
    /// [`stop_all`]).
    fn stop(&mut self) {
        stop_all(std::slice::from_mut(self));
    }

    fn count(&self, pat: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(pat)).count()
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid), sig).unwrap_or_else(|e| panic!("kill {}: {e}", self.pid));
    }

    /// Wait (up to `limit`) for it to exit and return how.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("not yet reaped");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL and reap.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log());
        }
        self.kill9();
    }
}

/// SIGTERM all, then expect each to exit 0 within a few seconds.
fn stop_all(instances: &mut [Instance]) {
    for i in instances.iter() {
        i.signal(Signal::SIGTERM);
    }
    for i in instances.iter_mut() {
        let st = i.wait(Duration::from_secs(5));
        assert_eq!(
            st.code(),
            Some(0),
            "{}: {st:?} after SIGTERM\n{}",
            i.name,
            i.log()
        );
    }
}

/// Poll a cheap look at some state (not a sleep for an event) until it
/// holds, up to `limit`.
fn poll_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Complete lines of a file the commands append to (a partial last line,
/// still being written, is left out).
fn file_lines(path: &Path) -> Vec<String> {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match s.rfind('\n') {
        Some(i) => &s[..=i],
        None => "",
    };
    complete.lines().map(str::to_string).collect()
}

fn wait_lines(path: &Path, n: usize, limit: Duration) -> Vec<String> {
    poll_until(&format!("{n} lines in {}", path.display()), limit, || {
        file_lines(path).len() >= n
    });
    file_lines(path)
}

fn system_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

/// REDLOCK_TICK (RFC 3339 UTC) as ns since the epoch.
fn tick_ns(tick: &str) -> i64 {
    let t = humantime::parse_rfc3339(tick).unwrap_or_else(|e| panic!("REDLOCK_TICK {tick:?}: {e}"));
    system_ns(t)
}

fn num(s: &str) -> i64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// `tick=T` as a whole field of a log line.
fn mentions_tick(line: &str, tick: &str) -> bool {
    let field = format!("tick={tick}");
    line.split_whitespace().any(|w| w == field)
}

/// The leading timestamp of a text log line, as ns since the epoch.
fn log_ts_ns(line: &str) -> Option<i64> {
    let first = line.split_whitespace().next()?;
    humantime::parse_rfc3339(first).ok().map(system_ns)
}

/// `redlock-run schedule --key KEY OPTS -- sh -c SCRIPT sh ARGS...`.
fn schedule_cmd(
    server: &RedisServer,
    key: &str,
    opts: &[&str],
    script: &str,
    args: &[&str],
) -> Command {
    let mut c = rr(server);
    c.env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .arg("schedule")
        .args(["--key", key])
        .args(opts)
        .args(["--", "sh", "-c", script, "sh"])
        .args(args);
    c
}

/// Only this instance's wall clock is shifted by `offset` (e.g. "+0.6"):
/// monotonic time, and so tokio's timers, stay real.
fn with_clock_offset(cmd: &mut Command, offset: &str) {
    cmd.env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
}

/// An instance NAME of `schedule --every 1s` on KEY whose runs each append
/// their REDLOCK_TICK, one a line, to the file OUT.
fn tick_appender(name: &str, server: &RedisServer, key: &str, out: &Path) -> Instance {
    Instance::spawn(
        name,
        &mut schedule_cmd(
            server,
            key,
            &["--every", "1s"],
            r#"echo "$REDLOCK_TICK" >> "$1""#,
            &[out.to_str().unwrap()],
        ),
    )
}

#[test]
fn skewed_instances_run_each_tick_exactly_once() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let out_s = out.to_str().unwrap();
    let k = key("sched-skew");
    // Per run: the tick, who ran it, the child's own wall clock (faked like
    // its instance's) and the real wall clock (libfaketime unloaded).
    let script = r#"printf '%s %s %s %s\n' "$REDLOCK_TICK" "$1" "$(date +%s%N)" "$(env -u LD_PRELOAD -u FAKETIME date +%s%N)" >> "$2"; sleep 0.2"#;
    let offsets: [(&str, Option<&str>, i64); 3] = [
        ("ahead", Some("+0.6"), 600),
        ("real", None, 0),
        ("behind", Some("-0.4"), -400),
    ];
    let mut instances: Vec<Instance> = offsets
        .iter()
        .map(|(name, off, _)| {
            let mut c = schedule_cmd(&server, &k, &["--every", "2s"], script, &[name, out_s]);
            if let Some(off) = off {
                with_clock_offset(&mut c, off);
            }
            Instance::spawn(name, &mut c)
        })
        .collect();

    // 7 runs = at least 6 tick intervals; then stop while the last runs.
    wait_lines(&out, 7, Duration::from_secs(20));
    stop_all(&mut instances);
    assert!(!server.exists(&k), "lock left held after SIGTERM");
    let mut seen = std::collections::BTreeMap::<i64, Vec<String>>::new();
    let mut parsed = Vec::new();
    for line in file_lines(&out) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 4, "bad run line {line:?}");
        let t = tick_ns(f[0]);
        seen.entry(t).or_default().push(f[1].to_string());
        parsed.push((f[0].to_string(), t, f[1].to_string(), num(f[2]), num(f[3])));
    }
    let dups: Vec<_> = seen.iter().filter(|(_, who)| who.len() > 1).collect();
    assert!(dups.is_empty(), "ticks ran more than once: {dups:?}");
    let ticks: Vec<i64> = seen.keys().copied().collect();
    assert!(
        ticks.len() >= 7,
        "only {} ticks ran: {ticks:?}",
        ticks.len()
    );
    for w in ticks.windows(2) {
        assert_eq!(
            w[1] - w[0],
            2_000_000_000,
            "gap or irregular spacing between ticks {w:?}"
        );
    }
    assert!(
        ticks.iter().all(|t| t % 2_000_000_000 == 0),
        "ticks are not multiples of 2 s since the epoch: {ticks:?}"
    );

    // The skew really applied: each instance's log timestamps are off the
    // test's clock by its offset, and so is each run's own clock.
    for (inst, (name, _, off_ms)) in instances.iter().zip(offsets.iter()) {
        let mut d: Vec<i64> = inst
            .timed_lines()
            .iter()
            .filter_map(|(at, l)| Some(log_ts_ns(l)? - system_ns(*at)))
            .collect();
        assert!(
            !d.is_empty(),
            "{name}: no time-stamped log lines\n{}",
            inst.log()
        );
        d.sort_unstable();
        let median_ms = d[d.len() / 2] / 1_000_000;
        assert!(
            (median_ms - off_ms).abs() <= 150,
            "{name}: log clock is off by {median_ms} ms, expected {off_ms} ms"
        );
    }
    for (tick, _, who, own, real) in &parsed {
        let off_ms = offsets.iter().find(|o| o.0 == who).unwrap().2;
        let skew_ms = (own - real) / 1_000_000;
        assert!(
            (skew_ms - off_ms).abs() <= 100,
            "run of {tick} by {who}: clock off by {skew_ms} ms, expected {off_ms} ms"
        );
    }

    // One info line per tick on every instance (ran or skipped); the first
    // and last ticks are left out as instances start and stop unevenly.
    let inner: Vec<&String> = parsed
        .iter()
        .map(|p| &p.0)
        .filter(|t| {
            let t = tick_ns(t);
            t != ticks[0] && t != *ticks.last().unwrap()
        })
        .collect();
    for inst in &instances {
        let lines = inst.lines();
        for t in &inner {
            let about: Vec<&String> = lines.iter().filter(|l| mentions_tick(l, t)).collect();
            assert_eq!(
                about.len(),
                1,
                "{}: lines about tick {t}: {about:?}",
                inst.name
            );
            assert!(
                about[0].contains(" ran ") || about[0].contains("skipped"),
                "{}: {:?}",
                inst.name,
                about[0]
            );
        }
    }

    // Tick-start delay, on the clock of the instance that ran the tick.
    let mut delays: Vec<i64> = parsed.iter().map(|p| p.3 - p.1).collect();
    delays.sort_unstable();
    let (median, p99) = (delays[delays.len() / 2], percentile(&delays, 0.99));
    let by: Vec<&str> = parsed.iter().map(|p| p.2.as_str()).collect();
    eprintln!(
        "schedule --every 2s, 3 skewed instances: {} runs (by {by:?}); tick-start delay \
         on the runner's clock: median {:.1} ms, p99 {:.1} ms",
        delays.len(),
        median as f64 / 1e6,
        p99 as f64 / 1e6
    );
    assert!(
        delays.iter().all(|&d| (0..1_000_000_000).contains(&d)),
        "tick-start delays out of [0, 1 s): {delays:?}"
    );
}

/// With `--limit 2`, a tick may start while an earlier tick's run still
/// holds a slot: two runs at once, never three, and still each tick once.
#[test]
fn with_a_limit_runs_of_different_ticks_overlap_up_to_n_and_each_tick_runs_once() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let out_s = out.to_str().unwrap();
    let k = key("sched-limit");
    let script = r#"echo "start $REDLOCK_TICK $REDLOCK_FENCING_TOKEN" >> "$1"; sleep 1.5; echo "end $REDLOCK_TICK $REDLOCK_FENCING_TOKEN" >> "$1""#;
    let mut instances: Vec<Instance> = ["one", "two", "three"]
        .iter()
        .map(|name| {
            let opts = ["--every", "1s", "--limit", "2"];
            Instance::spawn(
                name,
                &mut schedule_cmd(&server, &k, &opts, script, &[out_s]),
            )
        })
        .collect();
    poll_until("four runs to end", Duration::from_secs(20), || {
        file_lines(&out)
            .iter()
            .filter(|l| l.starts_with("end "))
            .count()
            >= 4
    });
    stop_all(&mut instances);
    assert!(!server.exists(&k), "a slot left held after SIGTERM");

    let lines = file_lines(&out);
    let mut open: Vec<String> = Vec::new();
    let mut ticks = std::collections::HashSet::new();
    let (mut most, mut last_fence) = (0, 0);
    for l in &lines {
        let f: Vec<&str> = l.split(' ').collect();
        let (tick, fence) = (f[1].to_string(), num(f[2]));
        if f[0] == "start" {
            assert!(
                ticks.insert(tick.clone()),
                "tick {tick} ran twice: {lines:#?}"
            );
            assert!(
                fence > last_fence,
                "fencing token went {last_fence} -> {fence}"
            );
            last_fence = fence;
            open.push(tick);
            most = most.max(open.len());
        } else {
            open.retain(|t| *t != tick);
        }
    }
    assert_eq!(most, 2, "runs at once (limit 2): {lines:#?}");
}

#[test]
pub(crate) fn runs_never_overlap_and_busy_ticks_are_logged_as_skipped() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let out_s = out.to_str().unwrap();
    let k = key("sched-overlap");
    let script = r#"printf 'start %s %s %s\n' "$1" "$REDLOCK_TICK" "$(date +%s%N)" >> "$2"; sleep 2.5; printf 'end %s %s %s\n' "$1" "$REDLOCK_TICK" "$(date +%s%N)" >> "$2""#;
    let mut instances: Vec<Instance> = ["one", "two"]
        .iter()
        .map(|name| {
            Instance::spawn(
                name,
                &mut schedule_cmd(&server, &k, &["--every", "1s"], script, &[name, out_s]),
            )
        })
        .collect();

    // Two whole runs and the start of a third.
    poll_until(
        "two runs and a third start",
        Duration::from_secs(15),
        || {
            let l = file_lines(&out);
            l.iter().filter(|l| l.starts_with("end ")).count() >= 2
                && l.iter().filter(|l| l.starts_with("start ")).count() >= 3
        },
    );
    stop_all(&mut instances);
    assert!(!server.exists(&k), "lock left held after SIGTERM");

    let lines = file_lines(&out);
    let events: Vec<(String, String, String, i64)> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "bad line {l:?}");
            (f[0].into(), f[1].into(), f[2].into(), num(f[3]))
        })
        .collect();
    // The file is appended in time order: start/end must alternate (the
    // last start may have been stopped by SIGTERM before its end).
    for (i, e) in events.iter().enumerate() {
        let want = if i % 2 == 0 { "start" } else { "end" };
        assert_eq!(e.0, want, "runs overlapped: {lines:#?}");
        if i % 2 == 1 {
            let s = &events[i - 1];
            assert_eq!((&s.1, &s.2), (&e.1, &e.2), "run interleaved: {lines:#?}");
            assert!(e.3 - s.3 >= 2_400_000_000, "run too short: {lines:#?}");
        }
        if i > 0 {
            assert!(e.3 >= events[i - 1].3, "time went back: {lines:#?}");
        }
    }

    // Ticks that fell during a run were skipped, and said so, by both.
    let starts: Vec<i64> = events
        .iter()
        .filter(|e| e.0 == "start")
        .map(|e| tick_ns(&e.2) / 1_000_000_000)
        .collect();
    for w in starts.windows(2) {
        // Not before the run ended (2.5 s), and at the first tick after.
        assert_eq!(w[1] - w[0], 3, "tick spacing of runs: {lines:#?}");
        for s in w[0] + 1..w[1] {
            let t = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s as u64))
                .to_string();
            for inst in &instances {
                let about: Vec<String> = inst
                    .lines()
                    .into_iter()
                    .filter(|l| mentions_tick(l, &t))
                    .collect();
                assert!(
                    about.len() == 1 && about[0].contains("skipped"),
                    "{}: tick {t} came during a run; its lines: {about:?}",
                    inst.name
                );
            }
        }
    }
}

#[test]
fn redis_restart_is_ridden_out() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let k = key("sched-restart");
    let mut inst = tick_appender("solo", &server, &k, &out);
    wait_lines(&out, 2, EVENT);

    server.kill();
    // Ticks while Redis is down are skipped, each with an error line. Runs
    // are sequential, so once the first one shows, no run is in flight.
    let errors = |inst: &Instance| {
        inst.lines()
            .iter()
            .filter(|l| l.contains("error") && l.contains("tick="))
            .count()
    };
    poll_until("an error line while Redis is down", EVENT, || {
        errors(&inst) >= 1
    });
    let before = file_lines(&out).len();
    poll_until("a second error line", EVENT, || errors(&inst) >= 2);
    assert!(
        inst.count("skipped: Redis unavailable") >= 2,
        "{}",
        inst.log()
    );
    assert_eq!(
        file_lines(&out).len(),
        before,
        "the command ran while Redis was down"
    );
    assert!(inst.running(), "schedule exited while Redis was down");

    server.restart();
    wait_lines(&out, before + 2, EVENT);
    assert!(inst.running());
    inst.stop();
    assert!(!server.exists(&k));
}

#[test]
fn killed_holder_tick_is_taken_over_only_after_its_lease_expired() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let out_s = out.to_str().unwrap();
    let k = key("sched-kill9");
    // `exec`: the sleeping command is the direct child, so PDEATHSIG hits it.
    let script = r#"printf '%s %s %s %s\n' "$1" "$$" "$REDLOCK_TICK" "$(date +%s%N)" >> "$2"; exec sleep 30"#;
    let mut instances: Vec<Instance> = ["one", "two"]
        .iter()
        .map(|name| {
            Instance::spawn(
                name,
                &mut schedule_cmd(
                    &server,
                    &k,
                    &["--every", "1s", "--ttl", "2s"],
                    script,
                    &[name, out_s],
                ),
            )
        })
        .collect();

    let first = wait_lines(&out, 1, EVENT)[0].clone();
    let f: Vec<&str> = first.split_whitespace().collect();
    let (victim, cmd_pid, tick1) = (f[0].to_string(), num(f[1]) as i32, tick_ns(f[2]));
    let vi = instances.iter().position(|i| i.name == victim).unwrap();
    let token = server.get(&k).expect("the running tick holds the lock");

    instances[vi].kill9();
    let killed_at = now_ns();
    let pttl = server.pttl(&k);
    assert_eq!(
        server.get(&k),
        Some(token),
        "the lease must outlive its holder"
    );
    assert!(pttl > 0, "PTTL {pttl}");
    let expires_at = killed_at + pttl * 1_000_000;

    // The command died with its redlock-run (PDEATHSIG).
    poll_until(
        "the killed holder's command to die",
        Duration::from_secs(2),
        || !alive(cmd_pid),
    );
    let cmd_gone_at = now_ns();

    let second = wait_lines(&out, 2, Duration::from_secs(6))[1].clone();
    let f: Vec<&str> = second.split_whitespace().collect();
    let (who, tick2, started) = (f[0], tick_ns(f[2]), num(f[3]));
    assert_ne!(who, victim);
    assert!(
        tick2 > tick1,
        "took over an old tick: {first:?} then {second:?}"
    );
    assert!(
        started >= expires_at - 20_000_000,
        "ran {} ms before the killed holder's lease expired",
        (expires_at - started) / 1_000_000
    );
    assert!(
        started >= cmd_gone_at,
        "ran while the killed holder's command was still alive"
    );
    assert!(
        started - killed_at <= 4_000_000_000,
        "took {} ms after the kill (ttl 2s)",
        (started - killed_at) / 1_000_000
    );
    let other = &instances[1 - vi];
    assert!(
        other.count("skipped: lock held") >= 1,
        "the survivor never saw the lease held\n{}",
        other.log()
    );

    let other = &mut instances[1 - vi];
    other.stop();
    assert!(!server.exists(&k), "lock left held after SIGTERM");
}

#[test]
fn cron_with_seconds_ticks_on_even_seconds() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let k = key("sched-cron");
    let mut inst = Instance::spawn(
        "cron",
        &mut schedule_cmd(
            &server,
            &k,
            &["--cron", "*/2 * * * * *"],
            r#"printf '%s %s\n' "$REDLOCK_TICK" "$(date +%s%N)" >> "$1""#,
            &[out.to_str().unwrap()],
        ),
    );
    let lines = wait_lines(&out, 3, EVENT);
    inst.stop();
    assert!(!server.exists(&k));

    let mut delays = Vec::new();
    let mut prev = None;
    for l in &lines {
        let (tick, started) = l.split_once(' ').unwrap();
        let t = tick_ns(tick);
        assert!(tick.ends_with('Z') && !tick.contains('.'), "{tick:?}");
        assert_eq!(t % 2_000_000_000, 0, "tick {tick} is not on an even second");
        if let Some(p) = prev {
            assert_eq!(t - p, 2_000_000_000, "ticks not 2 s apart: {lines:?}");
        }
        prev = Some(t);
        let d = num(started) - t;
        assert!(
            (0..500_000_000).contains(&d),
            "tick {tick} started {} ms after its time",
            d / 1_000_000
        );
        delays.push(d);
    }
    delays.sort_unstable();
    eprintln!(
        "schedule --cron '*/2 * * * * *': tick-start delays (ms): {:?}",
        delays.iter().map(|d| d / 1_000_000).collect::<Vec<_>>()
    );
}

/// `redlock-run schedule ARGS -- true` against a listener that stands in
/// for Redis: refused with exit 2 (within a few seconds), a message on
/// stderr, nothing on stdout, and no connection made. Returns stderr's
/// first line.
fn assert_refused(args: &[&str]) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("redis://127.0.0.1:{}", l.local_addr().unwrap().port());
    let o = Rr::urls(&[url])
        .arg("schedule")
        .args(args)
        .args(["--", "true"])
        .within(Duration::from_secs(5))
        .status(2)
        .stdout("")
        .run();
    assert!(
        !stderr(&o).lines().next().unwrap_or("").trim().is_empty(),
        "{args:?}: no message"
    );
    assert!(
        l.accept()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "{args:?}: a refused invocation connected to Redis"
    );
    stderr(&o).lines().next().unwrap_or("").to_string()
}

#[test]
fn bad_schedule_usage_is_refused_before_touching_redis() {
    assert_refused(&["--key", "k"]);
    assert_refused(&["--key", "k", "--every", "1s", "--cron", "* * * * *"]);
    assert_refused(&["--key", "k", "--cron", "* * * * *", "--tz", "Nowhere/City"]);
    assert_refused(&["--key", "k", "--every", "10ms"]);
    assert_refused(&["--key", "k", "--cron", "not a cron"]);
}

/// A cron expression that never fires is bad usage (2), not a Redis
/// problem (69); and cron takes 5 or 6 fields, not a 7th (a year).
#[test]
fn cron_that_never_fires_or_has_a_year_is_refused() {
    for (expr, says) in [
        ("0 0 0 30 2 *", "never fires"),
        ("0 0 31 4 *", "never fires"),
        ("0 0 0 1 1 * 2020", "5 or 6 fields"),
        ("0 0 0 1 1 * 2099", "5 or 6 fields"),
    ] {
        let first = assert_refused(&["--key", "k", "--cron", expr]);
        assert!(first.contains(says), "--cron {expr:?}: {first}");
        assert!(first.contains(expr), "--cron {expr:?}: {first}");
    }
}

/// --tz only means something for --cron (the CLI declares it
/// `requires = "cron"`); with --every it must not be silently ignored.
#[test]
fn tz_without_cron_is_refused() {
    assert_refused(&["--key", "k", "--every", "1s", "--tz", "UTC"]);
}

/// Only SIGINT and SIGTERM stop a schedule. The other forwarded signals go
/// to the command while one runs and the schedule goes on; between runs
/// they are logged and ignored, for the same result.
#[test]
fn only_sigint_and_sigterm_stop_an_idle_schedule() {
    let server = RedisServer::start();
    let k = key("sched-signals");
    // A tick an hour apart: the schedule stays idle for the whole test.
    let mut s = Instance::spawn(
        "idle",
        &mut schedule_cmd(&server, &k, &["--every", "1h"], "true", &[]),
    );
    poll_until("the schedule to start", Duration::from_secs(10), || {
        s.count("schedule started") == 1
    });
    for (n, sig) in [
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ]
    .into_iter()
    .enumerate()
    {
        s.signal(sig);
        poll_until("the signal to be logged", Duration::from_secs(10), || {
            s.count("signal ignored") == n + 1
        });
        assert!(s.running(), "{sig} stopped an idle schedule\n{}", s.log());
    }
    s.signal(Signal::SIGTERM);
    let st = s.wait(Duration::from_secs(5));
    assert_eq!(st.code(), Some(0), "{st:?}\n{}", s.log());
    assert_eq!(s.count("stopping the schedule"), 1, "{}", s.log());
    assert!(!server.exists(&k));
}

/// Any other signal that would end redlock-run (SIGALRM, a real-time
/// one) stops an idle schedule too, exit 128+N.
#[test]
fn a_terminating_signal_stops_an_idle_schedule_with_128_plus_n() {
    let server = RedisServer::start();
    for (signo, name) in [
        (Signal::SIGALRM as i32, "SIGALRM"),
        (nix::libc::SIGRTMIN() + 1, "SIGRTMIN+1"),
    ] {
        let k = key("sched-stop");
        let mut s = Instance::spawn(
            name,
            &mut schedule_cmd(&server, &k, &["--every", "1h"], "true", &[]),
        );
        poll_until("the schedule to start", Duration::from_secs(10), || {
            s.count("schedule started") == 1
        });
        // SAFETY: kill(2) on plain integers, to a process this test started.
        nix::errno::Errno::result(unsafe { nix::libc::kill(s.pid, signo) }).unwrap();
        let st = s.wait(Duration::from_secs(5));
        assert_eq!(st.code(), Some(128 + signo), "{name}: {st:?}\n{}", s.log());
        assert_eq!(s.count("stopping the schedule"), 1, "{}", s.log());
        assert!(s.lines().iter().any(|l| l.contains(name)), "{}", s.log());
    }
}

/// A tick's attempt waits for a server at most --connect-timeout (and a
/// tenth of the interval): against a server that never answers, each
/// tick is skipped after that long.
#[test]
fn a_ticks_attempt_is_bounded_by_the_connect_timeout() {
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", mute.local_addr().unwrap().port());
    let k = key("sched-mute");
    let mut s = Instance::spawn(
        "mute",
        rr_urls(&[url])
            .args([
                "schedule",
                "--key",
                &k,
                "--every",
                "2s",
                "--connect-timeout",
                "50ms",
            ])
            .args(["--", "true"]),
    );
    poll_until("a tick to be skipped", Duration::from_secs(10), || {
        s.count("skipped: Redis unavailable") >= 1
    });
    assert!(
        s.lines()
            .iter()
            .any(|l| l.contains("skipped: Redis unavailable") && l.contains("timed out after 50ms")),
        "{}",
        s.log()
    );
    s.signal(Signal::SIGTERM);
    assert_eq!(
        s.wait(Duration::from_secs(5)).code(),
        Some(0),
        "{}",
        s.log()
    );
}

/// A misconfiguration no retry can fix ends `schedule` at start with 69,
/// so that a service manager shows it: here a database the server does not
/// have (a password or an ACL: tests/it/advice.rs).
#[test]
fn a_refused_database_ends_the_schedule_at_start_with_69() {
    let server = RedisServer::start();
    let k = key("sched-baddb");
    let o = Rr::urls(&[format!("redis://127.0.0.1:{}/99", server.port)])
        .args(["schedule", "--key", &k, "--every", "1s", "--", "true"])
        .within(EVENT)
        .status(69)
        .run();
    let err = stderr(&o);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("redlock-run: error: cannot schedule under lock")
            && first.contains("DB index is out of range"),
        "{err}"
    );
}

/// While no master answers at start, `schedule` keeps trying at each
/// tick, with one line a minute rather than one per tick, and runs as soon
/// as Redis is there.
#[test]
fn an_unreachable_redis_at_start_is_waited_for_with_a_line_a_minute() {
    let port = free_port();
    let proxy = crate::support::proxy::Proxy::start(port);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let k = key("sched-unreach");
    let mut c = rr_urls(&[proxy.url()]);
    c.args(["schedule", "--key", &k, "--every", "200ms"])
        .args(["--", "sh", "-c", r#"echo "$REDLOCK_TICK" >> "$1""#, "sh"])
        .arg(&out);
    let mut inst = Instance::spawn("unreachable", &mut c);
    // Each attempt to connect goes through the proxy: a dozen of them,
    // over several ticks, while nothing listens behind it.
    poll_until("a dozen attempts to connect", EVENT, || {
        proxy.accepted() >= 12
    });
    assert!(inst.running(), "{}", inst.log());
    // One line at start, one for the first tick skipped; the other ticks
    // of the minute say nothing.
    assert_eq!(inst.count("does not answer yet"), 1, "{}", inst.log());
    assert_eq!(inst.count("skipped"), 1, "{}", inst.log());
    assert_eq!(
        inst.count("skipped: Redis unavailable (a line a minute until it answers)"),
        1,
        "{}",
        inst.log()
    );

    let _server = RedisServer::start_on(port, &[]);
    wait_lines(&out, 1, EVENT);
    assert_eq!(inst.count("skipped"), 1, "{}", inst.log());
    assert_eq!(inst.count("schedule started"), 1, "{}", inst.log());
    inst.signal(Signal::SIGTERM);
    assert_eq!(inst.wait(EVENT).code(), Some(0), "{}", inst.log());
}

/// The value of `field=` in a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
}

/// `schedule` says when the next tick is, at start and after each tick:
/// a daily --cron is not silent for hours.
#[test]
fn schedule_logs_the_next_tick_at_start_and_after_each_tick() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let k = key("sched-next");
    let mut every = tick_appender("every", &server, &k, &out);
    let ticks = wait_lines(&out, 1, EVENT);
    poll_until("the tick's line", EVENT, || every.count(": ran ") >= 1);
    let lines = every.lines();
    let started = lines
        .iter()
        .find(|l| l.contains("schedule started"))
        .unwrap();
    let next = field(started, "next_tick").unwrap_or_else(|| panic!("{started}"));
    assert_eq!(next, ticks[0], "{}", every.log());
    let ran = lines.iter().find(|l| l.contains(": ran ")).unwrap();
    assert_eq!(field(ran, "tick"), Some(ticks[0].as_str()), "{ran}");
    let after = field(ran, "next_tick").unwrap_or_else(|| panic!("{ran}"));
    assert_eq!(tick_ns(after) - tick_ns(&ticks[0]), 1_000_000_000, "{ran}");
    every.stop();

    // A daily cron: the next tick is the coming midnight (UTC).
    let mut daily = Instance::spawn(
        "daily",
        &mut schedule_cmd(&server, &k, &["--cron", "0 0 * * *"], "true", &[]),
    );
    poll_until("the start line", EVENT, || {
        daily.count("schedule started") == 1
    });
    let started = daily.line_with("schedule started").unwrap();
    let next = field(&started, "next_tick").unwrap_or_else(|| panic!("{started}"));
    let day_ns = 86_400_000_000_000;
    assert_eq!(tick_ns(next) % day_ns, 0, "{started}");
    assert!(
        tick_ns(next) > now_ns() && tick_ns(next) - now_ns() <= day_ns,
        "{started}"
    );
    daily.stop();
}

/// A schedule that started while Redis did not answer is refused, with 69,
/// by the first answer that refuses it (here: a password it lacks).
#[test]
fn a_password_refused_when_redis_first_answers_ends_the_schedule_with_69() {
    use crate::support::proxy::{Mode, Proxy};
    let server = RedisServer::start_with_password("s3cret-pw");
    let proxy = Proxy::start(server.port);
    proxy.set_mode(Mode::Reset);
    let k = key("sched-late-auth");
    let mut c = rr_urls(&[proxy.url()]);
    c.args(["schedule", "--key", &k, "--every", "200ms", "--", "true"]);
    let mut inst = Instance::spawn("late-auth", &mut c);
    poll_until("a tick skipped", EVENT, || inst.count("skipped") >= 1);
    assert!(inst.running(), "{}", inst.log());
    proxy.set_mode(Mode::Pass);
    assert_eq!(inst.wait(EVENT).code(), Some(69), "{}", inst.log());
    let lines = inst.lines();
    let last = lines.last().unwrap();
    assert!(
        last.contains("redlock-run: error: Redis requires a password"),
        "{}",
        inst.log()
    );
    assert!(!inst.log().contains("s3cret-pw"), "{}", inst.log());
}

/// "Failures don't stop the schedule": the first tick's command fails
/// (exit 3), the second's loses its lock (it deletes the key and keeps
/// running: the next renewal finds it gone, exit 70 in the log), and the
/// schedule runs the third tick all the same; SIGTERM then ends it with 0.
#[test]
fn a_schedule_goes_on_after_a_failing_command_and_a_lost_lease() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("schedule-goes-on");
    let ticks = dir.path().join("ticks");
    let script = format!(
        "echo \"$REDLOCK_TICK\" >> {t}; n=$(wc -l < {t}); \
         [ \"$n\" -eq 1 ] && exit 3; \
         if [ \"$n\" -eq 2 ]; then redis-cli -p {p} DEL \"$REDLOCK_KEY\" > /dev/null; sleep 3; fi; \
         echo ok > {t}.third; exit 0",
        t = ticks.display(),
        p = server.port
    );
    let child = spawn_piped(
        rr(&server)
            .env("REDLOCK_LOG", "info")
            .args([
                "schedule", "--key", &k, "--every", "1s", "--ttl", "1s", "--",
            ])
            .args(["sh", "-c", &script]),
    );
    let third = dir.path().join("ticks.third");
    wait_until("a third tick to run", Duration::from_secs(15), || {
        third.exists()
    });
    send_signal(child.id(), Signal::SIGTERM);
    let out = wait_output(child, Duration::from_secs(30));
    let err = stderr(&out);
    assert_exit(&out, 0);
    assert!(
        err.contains("exit_status=3"),
        "no failed run logged:\n{err}"
    );
    // "lost-lease enforcement (exit status 70 in the log line, the
    // schedule goes on)".
    let lost = err
        .lines()
        .find(|l| l.contains("lock lost") && l.contains("ran;"))
        .unwrap_or_else(|| panic!("no lost lease logged:\n{err}"));
    assert!(
        lost.contains("exit_status=70"),
        "the lost lease's line does not say exit status 70: {lost}"
    );
}
