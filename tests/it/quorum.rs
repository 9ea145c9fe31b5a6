//! Redlock quorum mode against several real, independent `redis-server`
//! masters: a minority may be down, frozen (SIGSTOP), partitioned (the fault
//! proxy) or held by a foreign client without disturbing a run; a majority
//! down means no run at all (69), and a majority lost mid-run stops the
//! command before the quorum lease can expire (70). Mutual exclusion and
//! fencing are checked end to end with many contenders while a master is
//! frozen and thawed.
//!
//! Sections record their times with `date +%s%N` (CLOCK_REALTIME, cheap to
//! fork, and comparable with the test's own `SystemTime`); the test never
//! sleeps to wait for an event: it waits for a marker file or for state.

use std::path::Path;
use std::process::{Child, ChildStdin, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redlock_run::{CONFLICT, LOST, UNAVAILABLE};

use crate::support::proxy::{Mode, Proxy};
use crate::support::*;

const TTL: Duration = Duration::from_secs(2);

fn start_masters(n: usize) -> Vec<RedisServer> {
    (0..n).map(|_| RedisServer::start()).collect()
}

fn urls(servers: &[RedisServer]) -> Vec<String> {
    servers.iter().map(RedisServer::url).collect()
}

/// `redlock-run --key KEY --ttl 2s -- sh -c SCRIPT`, run in `dir`, over the
/// masters at `urls`: the lease every test here uses.
fn sh<'a>(urls: &'a [String], key: &'a str, dir: &'a Path, script: &'a str) -> Sh<'a> {
    Sh::new(urls, key, dir, script).opts(&["--ttl", "2s"])
}

/// A server SIGSTOPped until this guard is dropped, so that a failing
/// assertion never leaves it frozen.
struct Paused<'a>(&'a RedisServer);

impl<'a> Paused<'a> {
    fn new(server: &'a RedisServer) -> Self {
        server.pause();
        Paused(server)
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

/// A redlock-run in the background, killed (by PID) if the test fails
/// before it finished.
struct Bg(Option<Child>);

impl Bg {
    fn spawn(run: &Sh) -> Self {
        Bg(Some(run.start()))
    }

    fn wait(mut self) -> Output {
        wait_output(self.0.take().expect("running"), DONE)
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
pub(crate) fn three_masters_run_with_one_down_and_refuse_with_two_down() {
    let mut m = start_masters(3);
    let urls = urls(&m);
    let dir = tempfile::tempdir().unwrap();
    let key = key("q3-down");

    m[2].kill();
    sh(&urls, &key, dir.path(), "echo ran > one-down")
        .test()
        .note("2 of 3 masters are a quorum")
        .status(0)
        .run();
    assert!(
        dir.path().join("one-down").exists(),
        "the command did not run"
    );
    assert!(!m[0].exists(&key) && !m[1].exists(&key), "not released");

    m[1].kill();
    sh(&urls, &key, dir.path(), "echo ran > two-down")
        .test()
        .note("1 of 3 masters is no quorum")
        .status(UNAVAILABLE)
        .run();
    assert!(
        !dir.path().join("two-down").exists(),
        "the command ran without a quorum"
    );
    assert!(!m[0].exists(&key), "the failed attempt was not undone");
}

#[test]
fn five_masters_run_with_two_stopped_and_refuse_with_three_stopped() {
    let m = start_masters(5);
    let urls = urls(&m);
    let dir = tempfile::tempdir().unwrap();
    let key = key("q5-stopped");

    let p3 = Paused::new(&m[3]);
    let p4 = Paused::new(&m[4]);
    sh(&urls, &key, dir.path(), "echo ran > two")
        .test()
        .note("3 of 5 masters are a quorum")
        .status(0)
        .run();
    assert!(dir.path().join("two").exists(), "the command did not run");
    for s in &m[..3] {
        assert!(!s.exists(&key), "not released on :{}", s.port);
    }

    let p2 = Paused::new(&m[2]);
    sh(&urls, &key, dir.path(), "echo ran > three")
        .test()
        .note("2 of 5 masters are no quorum")
        .status(UNAVAILABLE)
        .run();
    assert!(
        !dir.path().join("three").exists(),
        "the command ran without a quorum"
    );
    for s in &m[..2] {
        assert!(!s.exists(&key), "attempt not undone on :{}", s.port);
    }
    drop((p2, p3, p4));
}

#[test]
fn one_master_stopped_during_a_run_does_not_disturb_it() {
    let m = start_masters(3);
    let urls = urls(&m);
    let dir = tempfile::tempdir().unwrap();
    let key = key("q3-stop-mid");
    let started = Instant::now();
    let run = Bg::spawn(&sh(
        &urls,
        &key,
        dir.path(),
        "echo \"$REDLOCK_TOKEN\" > ready; sleep 3",
    ));
    let token = read_token(&dir.path().join("ready"));
    let paused = Paused::new(&m[2]);
    // Over a lease length later, the two others still carry a live lease.
    let since = Instant::now();
    while since.elapsed() < TTL + Duration::from_millis(300) {
        for s in &m[..2] {
            assert_eq!(s.get(&key).as_deref(), Some(token.as_str()));
            assert!(s.pttl(&key) > 0);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = run.wait();
    let took = started.elapsed();
    assert_status(&out, 0, "a frozen minority must not stop the command");
    assert!(took >= Duration::from_secs(3), "ended after {took:?}");
    drop(paused);
    for s in &m {
        assert!(!s.exists(&key), "key left on :{}", s.port);
    }
}

#[test]
fn majority_partitioned_mid_run_stops_the_command_before_the_lease_expires() {
    let m = start_masters(3);
    let proxies = [Proxy::start(m[1].port), Proxy::start(m[2].port)];
    let via_proxies = vec![m[0].url(), proxies[0].url(), proxies[1].url()];
    let direct = urls(&m);
    let dir = tempfile::tempdir().unwrap();
    let key = key("q3-partition");

    let first = Bg::spawn(&sh(
        &via_proxies,
        &key,
        dir.path(),
        "echo \"$$ $REDLOCK_FENCING_TOKEN\" > ready; while :; do sleep 0.05; done",
    ));
    let ready = wait_for_file(&dir.path().join("ready"), READY);
    let mut f = ready.split_whitespace();
    let pid: i32 = f.next().unwrap().parse().unwrap();
    let first_fence: u64 = f.next().unwrap().parse().unwrap();
    let ready_at = Instant::now();
    for p in &proxies {
        p.set_mode(Mode::Blackhole);
    }
    let cut = Instant::now();
    // The lease in Redis, read directly on the two cut-off masters, now
    // and a moment later (a renewal a proxy was already forwarding lands by
    // then): each copy ends no earlier than its later bound. Master 0 stays
    // renewed while the first runs, so another client can take a quorum
    // only once both copies have ended: the later of the two.
    let mut conns: Vec<redis::Connection> = m[1..].iter().map(RedisServer::conn).collect();
    let early: Vec<Instant> = conns
        .iter_mut()
        .map(|c| expiry_lower_bound(c, &key))
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let expires = conns
        .iter_mut()
        .zip(early)
        .map(|(c, e)| expiry_lower_bound(c, &key).max(e))
        .max()
        .unwrap();

    let contender = Bg::spawn(
        &sh(
            &direct,
            &key,
            dir.path(),
            "echo \"$(date +%s%N) $REDLOCK_FENCING_TOKEN\" > contender",
        )
        .opts(&["--timeout", "10s"]),
    );
    let dead = wait_gone(pid, Duration::from_secs(5));
    let dead_ns = now_ns();
    let out = first.wait();
    assert_status(&out, LOST, "the lock was lost");
    let after = dead.duration_since(cut);
    eprintln!(
        "partition: command died {after:?} after the cut ({:?} after ready)",
        dead.duration_since(ready_at)
    );
    eprintln!(
        "partition: the command died {:?} before the quorum's expiry in Redis (lower bound)",
        expires.saturating_duration_since(dead)
    );
    assert!(
        dead < expires,
        "the command was still alive {:?} after its quorum lease expired in Redis",
        dead.duration_since(expires)
    );

    let out = contender.wait();
    assert_status(
        &out,
        0,
        "the contender gets the lock once the lease is gone",
    );
    let line = std::fs::read_to_string(dir.path().join("contender")).unwrap();
    let mut f = line.split_whitespace();
    let started_ns: i64 = f.next().unwrap().parse().unwrap();
    let fence: u64 = f.next().unwrap().parse().unwrap();
    assert!(
        started_ns > dead_ns,
        "the contender's command started {} ms before the first one died",
        (dead_ns - started_ns) / 1_000_000
    );
    assert!(fence > first_fence, "fencing {fence} after {first_fence}");
}

#[test]
pub(crate) fn status_shows_each_master_and_release_clears_all() {
    let mut m = start_masters(3);
    let urls = urls(&m);
    let dir = tempfile::tempdir().unwrap();
    let key = key("q3-status");

    let mut holder = sh(
        &urls,
        &key,
        dir.path(),
        "echo \"$REDLOCK_FENCING_TOKEN\" > ready; read -r _ || true",
    )
    .command();
    let mut child = holder
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin: ChildStdin = child.stdin.take().unwrap();
    let holder = Bg(Some(child));
    let fence: u64 = wait_for_file(&dir.path().join("ready"), READY)
        .trim()
        .parse()
        .unwrap();

    // The acquire asked every master, and all three answer: each carries
    // the lease, so losing any one of them later still leaves a quorum.
    for s in &m {
        assert!(s.exists(&key), "master :{} never got the lease", s.port);
    }
    let (code, v) = status_json_at(&urls, &key);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["held"], true, "{v}");
    assert_eq!(v["fencing_token"], fence, "{v}");
    let masters = v["masters"].as_array().expect("masters array");
    assert_eq!(masters.len(), 3, "{v}");
    for ms in masters {
        assert_eq!(ms["reachable"], true, "{v}");
        assert_eq!(ms["held"], true, "{v}");
    }

    m[2].kill();
    let (code, v) = status_json_at(&urls, &key);
    assert_eq!(code, 0, "2 of 3 masters still hold it: {v}");
    assert_eq!(v["held"], true, "{v}");
    let masters = v["masters"].as_array().expect("masters array");
    assert_eq!(masters[2]["reachable"], false, "{v}");
    assert_eq!(masters[0]["held"], true, "{v}");
    assert_eq!(masters[1]["held"], true, "{v}");

    m[2].restart();
    drop(stdin);
    let out = holder.wait();
    assert_status(&out, 0, "the holder ends normally");
    for s in &m {
        assert!(!s.exists(&key), "key left on :{}", s.port);
    }
    let (code, v) = status_json_at(&urls, &key);
    assert_eq!(code, 1, "free: {v}");
    assert_eq!(v["held"], false, "{v}");
    for ms in v["masters"].as_array().expect("masters array") {
        assert_eq!(ms["reachable"], true, "{v}");
        assert_eq!(ms["held"], false, "{v}");
    }
}

#[test]
fn a_foreign_holder_on_one_master_cannot_block_the_quorum() {
    let m = start_masters(3);
    let urls = urls(&m);
    let dir = tempfile::tempdir().unwrap();
    let key = key("q3-foreign");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("other")
        .arg("PX")
        .arg(10_000)
        .query(&mut m[0].conn())
        .unwrap();
    sh(&urls, &key, dir.path(), "echo ran > ran")
        .test()
        .note("2 of 3 masters are a quorum")
        .status(0)
        .run();
    assert!(dir.path().join("ran").exists(), "the command did not run");
    assert_eq!(
        m[0].get(&key).as_deref(),
        Some("other"),
        "foreign lock touched"
    );
    assert!(m[0].pttl(&key) > 0);
    assert!(!m[1].exists(&key) && !m[2].exists(&key), "not released");
}

/// One section: `start end fencing` appended to the contender's file, and
/// `mkdir` as an independent overlap detector.
const SECTION: &str = r#"s=$(date +%s%N)
mkdir inside 2>/dev/null || echo "$REDLOCK_FENCING_TOKEN" >> overlaps
sleep 0.02
rmdir inside 2>/dev/null
e=$(date +%s%N)
echo "$s $e $REDLOCK_FENCING_TOKEN" >> "$0""#;

#[test]
fn mutual_exclusion_and_fencing_with_contenders_while_a_master_freezes() {
    const CONTENDERS: usize = 8;
    const SECTIONS: usize = 10;
    let m = start_masters(3);
    let urls = urls(&m);
    let dir = tempfile::tempdir().unwrap();
    let key = key("q3-mutex");
    let done = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    let failed = AtomicBool::new(false);
    let failures = Mutex::new(Vec::<String>::new());
    let window = Mutex::new((None::<i64>, None::<i64>));
    let started = Instant::now();

    std::thread::scope(|scope| {
        // Freeze one master from about the 20th section to about the 50th.
        scope.spawn(|| {
            let wait_for = |n: usize| {
                while done.load(Ordering::SeqCst) < n
                    && !finished.load(Ordering::SeqCst)
                    && !failed.load(Ordering::SeqCst)
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
            };
            wait_for(20);
            let paused = Paused::new(&m[2]);
            window.lock().unwrap().0 = Some(now_ns());
            wait_for(50);
            drop(paused);
            window.lock().unwrap().1 = Some(now_ns());
        });
        let workers: Vec<_> = (0..CONTENDERS)
            .map(|c| {
                let (urls, key, dir) = (&urls, &key, dir.path());
                let (done, failures, failed) = (&done, &failures, &failed);
                scope.spawn(move || {
                    let file = dir.join(format!("sections-{c}"));
                    for _ in 0..SECTIONS {
                        // After a failure, end soon: one stuck wait is enough.
                        if failed.load(Ordering::SeqCst) {
                            break;
                        }
                        let out = sh(urls, key, dir, SECTION)
                            .opts(&["--timeout", "60s"])
                            .arg(&file)
                            .output();
                        if out.status.code() != Some(0) {
                            failed.store(true, Ordering::SeqCst);
                            failures.lock().unwrap().push(format!(
                                "{:?}: {}",
                                out.status,
                                stderr(&out)
                            ));
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for w in workers {
            if w.join().is_err() {
                failures.lock().unwrap().push("a contender panicked".into());
            }
        }
        finished.store(true, Ordering::SeqCst);
    });
    eprintln!(
        "mutual exclusion: {} sections in {:?}",
        CONTENDERS * SECTIONS,
        started.elapsed()
    );

    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "runs failed: {failures:#?}");
    let (paused_at, resumed_at) = window.into_inner().unwrap();
    assert!(paused_at.is_some() && resumed_at.is_some(), "never paused");
    let mut sections: Vec<(i64, i64, u64)> = Vec::new();
    for c in 0..CONTENDERS {
        let text = std::fs::read_to_string(dir.path().join(format!("sections-{c}"))).unwrap();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 3, "bad section line {line:?}");
            sections.push((
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            ));
        }
    }
    assert_eq!(sections.len(), CONTENDERS * SECTIONS);
    let (p, r) = (paused_at.unwrap(), resumed_at.unwrap());
    let during = sections.iter().filter(|s| s.0 > p && s.1 < r).count();
    eprintln!("mutual exclusion: {during} sections ran entirely while a master was frozen");
    assert!(
        !dir.path().join("overlaps").exists(),
        "mkdir saw two sections at once"
    );
    sections.sort();
    for w in sections.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert!(
            a.1 < b.0,
            "sections overlap: {a:?} and {b:?} ({} µs)",
            (a.1 - b.0) / 1000
        );
        assert!(
            a.2 < b.2,
            "fencing tokens do not increase: {} then {} ({a:?}, {b:?})",
            a.2,
            b.2
        );
    }
}

#[test]
fn fencing_tokens_increase_while_masters_stop_and_start_in_turn() {
    // A keeps its data across a kill -9 (AOF, fsync always); B and C are
    // only ever frozen and thawed. No master loses its counter.
    let mut m = vec![
        RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let urls = urls(&m);
    let dir = tempfile::tempdir().unwrap();
    let key = key("q3-fence");
    let mut tokens: Vec<(String, u64)> = Vec::new();
    let mut run = |what: &str| {
        let out = sh(&urls, &key, dir.path(), "echo \"$REDLOCK_FENCING_TOKEN\"").output();
        assert_status(&out, 0, what);
        let t: u64 = stdout(&out).trim().parse().unwrap();
        tokens.push((what.to_string(), t));
    };

    run("all up");
    {
        let _a = Paused::new(&m[0]);
        run("A frozen");
    }
    run("A thawed");
    {
        let _b = Paused::new(&m[1]);
        run("B frozen");
    }
    {
        let _c = Paused::new(&m[2]);
        run("C frozen");
    }
    {
        let _a = Paused::new(&m[0]);
        run("A frozen again");
    }
    run("all thawed");
    m[0].kill();
    run("A killed");
    m[0].restart();
    run("A restarted from its AOF");
    {
        let _b = Paused::new(&m[1]);
        run("A restarted, B frozen");
    }
    eprintln!("fencing tokens: {tokens:?}");
    for w in tokens.windows(2) {
        assert!(w[0].1 < w[1].1, "fencing token did not increase: {w:?}");
    }
}

#[test]
fn suspicious_master_lists_are_warned_about() {
    let m = start_masters(2);
    let dir = tempfile::tempdir().unwrap();

    let same = vec![
        m[0].url(),
        format!("redis://localhost:{}", m[0].port),
        m[1].url(),
    ];
    let out = sh(&same, &key("q-same"), dir.path(), "true").output();
    assert!(
        stderr(&out).contains("same Redis server"),
        "no warning about a master listed twice; stderr:\n{}",
        stderr(&out)
    );

    let out = sh(&urls(&m), &key("q-even"), dir.path(), "true")
        .test()
        .note("2 of 2 masters are a quorum")
        .status(0)
        .run();
    assert!(
        stderr(&out).contains("odd number"),
        "no warning about an even number of masters; stderr:\n{}",
        stderr(&out)
    );
}

#[test]
fn acquire_and_release_latency_on_loopback() {
    const RUNS: usize = 30;
    let mut report = Vec::new();
    for n in [1, 3, 5] {
        let m = start_masters(n);
        let urls = urls(&m);
        let key = key(&format!("q-latency-{n}"));
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let out = Rr::urls(&urls).args(["--key", &key, "--", "true"]).run();
                let took = t.elapsed();
                assert_status(&out, 0, "a plain run");
                took
            })
            .collect();
        times.sort();
        report.push(format!(
            "{n} master(s): median {:?} (min {:?}, max {:?})",
            times[RUNS / 2],
            times[0],
            times[RUNS - 1]
        ));
    }
    eprintln!(
        "redlock-run --key K -- true, {RUNS} runs each:\n  {}",
        report.join("\n  ")
    );
}

/// A failed attempt is undone on every master, also on one whose grant had
/// not been read when the outcome became certain. Two masters hold a foreign
/// value. First a few runs over direct links (the replies race), then runs
/// where the third master sits behind a slightly slower link than the two,
/// so its `SET` lands before the two "held" replies are read but its own
/// reply comes after them (two round trips per master once the scripts are
/// cached: the handshake, then the script). Whatever the timing, the third
/// master must hold nothing of ours once redlock-run has exited.
#[test]
fn a_failed_attempt_is_undone_on_a_master_whose_grant_was_not_read() {
    let m = start_masters(3);
    let key = key("q3-undo");
    // Load the acquire script on every master (a run on another key).
    Rr::urls(&urls(&m))
        .args(["--key", &format!("{key}-warm"), "--", "true"])
        .status(0)
        .run();
    for s in &m[..2] {
        let _: () = s.query(&["SET", &key, "foreign"]);
    }
    let proxies = [
        Proxy::start(m[0].port),
        Proxy::start(m[1].port),
        Proxy::start(m[2].port),
    ];
    proxies[0].set_mode(Mode::Delay(Duration::from_millis(100)));
    proxies[1].set_mode(Mode::Delay(Duration::from_millis(100)));
    proxies[2].set_mode(Mode::Delay(Duration::from_millis(120)));
    let direct = urls(&m);
    let slow: Vec<String> = proxies.iter().map(Proxy::url).collect();
    let grants = || {
        m[2].query::<Option<u64>>(&["GET", &fence_key(&key)])
            .unwrap_or(0)
    };
    let mut before_slow = 0;
    for (run, via) in [&direct; 5].into_iter().chain([&slow; 5]).enumerate() {
        if run == 5 {
            before_slow = grants();
        }
        Rr::urls(via)
            .args(["--key", &key, "--", "true"])
            .status(CONFLICT)
            .run();
        assert_eq!(
            m[2].get(&key),
            None,
            "run {run}: our token left on the third master (PTTL {})",
            m[2].pttl(&key)
        );
        assert!(
            !m[2].exists(&format!("{{{key}}}:redlock-run:holder")),
            "run {run}: holder description left on the third master"
        );
        for s in &m[..2] {
            assert_eq!(s.get(&key).as_deref(), Some("foreign"), "run {run}");
        }
    }
    // The race was exercised: the third master granted (and counted) some
    // of the attempts over the slow links.
    assert!(
        grants() > before_slow,
        "no attempt over the slow link landed on :{}",
        m[2].port
    );
}

/// `release --force` that reaches only a minority cannot say "released":
/// the others may still be a quorum holding the lock. It deletes what it
/// can reach and fails with 69 and one line saying where.
#[test]
fn release_force_reaching_a_minority_fails() {
    let m = start_masters(3);
    let urls = urls(&m);
    let key = key("q3-force");
    for s in &m {
        let _: () = s.query(&["SET", &key, "foreign", "PX", "60000"]);
    }
    {
        let _p1 = Paused::new(&m[1]);
        let _p2 = Paused::new(&m[2]);
        let o = Rr::urls(&urls)
            .args(["release", "--key", &key, "--force"])
            .status(UNAVAILABLE)
            .stdout("")
            .run();
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "one error line: {err}");
        assert!(err.contains("deleted on 1 of 3 masters"), "{err}");
    }
    assert!(!m[0].exists(&key), "not deleted where reachable");
    for s in &m[1..] {
        assert_eq!(s.get(&key).as_deref(), Some("foreign"), ":{}", s.port);
    }

    Rr::urls(&urls)
        .args(["release", "--key", &key, "--force"])
        .status(0)
        .stdout_has("released")
        .run();
    for s in &m {
        assert!(!s.exists(&key), "key left on :{}", s.port);
    }
}

/// `status` in quorum mode reports the fencing value a quorum of masters
/// reached, not the highest single counter: failed attempts granted on one
/// master push that master's counter past every token ever issued.
#[test]
fn status_fencing_token_is_not_inflated_by_failed_attempts() {
    let mut m = start_masters(3);
    let urls = urls(&m);
    let dir = tempfile::tempdir().unwrap();
    let key = key("q3-fence");
    let issued = |out: &Output| -> u64 {
        stdout(out)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no token printed: {}", stderr(out)))
    };
    let print = "echo \"$REDLOCK_FENCING_TOKEN\"";

    let out = sh(&urls, &key, dir.path(), print)
        .test()
        .note("first run")
        .status(0)
        .run();
    let first = issued(&out);

    // Two failed attempts: held on two masters, granted (and counted, then
    // undone) on the third.
    for s in &m[..2] {
        let _: () = s.query(&["SET", &key, "foreign"]);
    }
    for _ in 0..2 {
        sh(&urls, &key, dir.path(), print)
            .test()
            .note("held on 2 of 3")
            .status(CONFLICT)
            .run();
    }
    for s in &m[..2] {
        let _: () = s.query(&["DEL", &key]);
    }
    let third: u64 = m[2]
        .query::<Option<u64>>(&["GET", &fence_key(&key)])
        .unwrap();
    assert!(
        third > first,
        "the failed attempts did not count on :{}",
        m[2].port
    );

    let (code, v) = status_json_at(&urls, &key);
    assert_eq!(code, 1, "free: {v}");
    assert_eq!(v["fencing_token"], first, "{v}");
    assert_eq!(v["fencing_token_kind"], "quorum_bound", "{v}");
    let o = Rr::urls(&urls).args(["status", "--key", &key]).run();
    let text = stdout(&o);
    assert!(
        text.contains(&format!("fencing token: {first} (reached on a quorum")),
        "{text}"
    );

    // The next token is higher, and status then shows exactly it.
    let out = sh(&urls, &key, dir.path(), print)
        .test()
        .note("second run")
        .status(0)
        .run();
    let second = issued(&out);
    assert!(second > first, "{second} after {first}");
    let (_, v) = status_json_at(&urls, &key);
    assert_eq!(v["fencing_token"], second, "{v}");
    assert_eq!(v["fencing_token_kind"], "quorum_bound", "{v}");

    // With a master down, only a bound on what was issued is known.
    m[0].kill();
    let (code, v) = status_json_at(&urls, &key);
    assert_eq!(code, 1, "free: {v}");
    assert_eq!(v["fencing_token_kind"], "upper_bound", "{v}");
    let bound = v["fencing_token"].as_u64().expect("a bound");
    assert!(bound >= second, "{v}");
    let o = Rr::urls(&urls).args(["status", "--key", &key]).run();
    assert!(
        stdout(&o).contains(&format!("fencing token: at most {bound}")),
        "{}",
        stdout(&o)
    );
}

/// Two URLs are a 2-of-2 quorum: with one server down nothing runs, and
/// the warning says exactly that (and what to use for failover) before
/// the run fails.
#[test]
fn two_urls_warn_that_one_server_down_stops_every_run() {
    let up = RedisServer::start();
    let down = format!("redis://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let k = key("two-urls");
    let out = Rr::urls(&[up.url(), down])
        .args(["--key", &k, "--", "sh", "-c", "echo ran > ran"])
        .current_dir(dir.path())
        .status(69)
        .run();
    let err = stderr(&out);
    assert!(!dir.path().join("ran").exists(), "the command ran");
    let warning = err
        .lines()
        .find(|l| l.contains("warn"))
        .unwrap_or_else(|| panic!("no warning; stderr:\n{err}"));
    for needle in [
        "one server down stops every run",
        "not failover",
        "redis+sentinel://",
    ] {
        assert!(
            warning.contains(needle),
            "the warning should say {needle:?}: {warning}"
        );
    }
    assert!(!up.exists(&k), "a lock was left on the server that is up");
}
