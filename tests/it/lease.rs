//! The lease: kept alive while the command runs, and when it cannot be
//! (key deleted or overwritten, Redis frozen, partitioned or restarted
//! empty) the command is stopped before the lease can run out in Redis,
//! so that no two commands ever run under one key at the same time. A
//! key found gone or taken at release is 70 even after the command
//! exited 0; wall-clock steps do not move the lease (CLOCK_BOOTTIME).
//!
//! Faults are real: SIGSTOP/SIGCONT of `redis-server`, a kill and restart,
//! or the fault proxy between redlock-run and Redis. Sleeps in here are
//! only ever the length of a fault or of an observation window.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

use redlock_run::LOST;

use crate::support::proxy::{Mode, Proxy};
use crate::support::*;

/// A command that writes its PID to `ready` and runs until stopped.
const FOREVER: &str = "echo $$ > ready; while :; do sleep 0.05; done";

fn set(server: &RedisServer, key: &str, value: &str) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query(&mut server.conn())
        .unwrap();
}

#[test]
fn short_ttl_is_kept_alive_over_a_longer_command() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("keepalive");
    let child = Sh::new(
        &[server.url()],
        &key,
        dir.path(),
        "echo \"$REDLOCK_TOKEN\" > ready; sleep 3",
    )
    .opts(&["--ttl", "1s"])
    .start();
    let token = read_token(&dir.path().join("ready"));
    let since = Instant::now();
    // Three lease lengths: without renewals the key would be long gone.
    while since.elapsed() < Duration::from_millis(2500) {
        assert_eq!(server.get(&key).as_deref(), Some(token.as_str()));
        let pttl = server.pttl(&key);
        assert!(
            pttl > 0 && pttl <= 1000,
            "PTTL {pttl} after {:?}",
            since.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = wait_output(child, DONE);
    assert_exit(&out, 0);
    assert!(!server.exists(&key));
}

/// The run ends with LOST: its command (PID `pid`) is gone and stderr
/// reports the loss.
#[track_caller]
fn assert_lost(child: Child, pid: i32) {
    let out = wait_output(child, DONE);
    let err = stderr(&out);
    assert_exit(&out, LOST);
    assert!(!alive(pid), "the command outlived the lock");
    assert!(
        err.contains("lost"),
        "stderr should report the loss:\n{err}"
    );
}

#[test]
fn lease_lost_by_del_stops_the_command() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("lost-del");
    let (child, pid) = Sh::new(&[server.url()], &key, dir.path(), FOREVER)
        .opts(&["--ttl", "2s"])
        .start_ready();
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query(&mut server.conn())
        .unwrap();
    assert_lost(child, pid);
    assert!(!server.exists(&key));
}

#[test]
fn lease_lost_by_overwrite_stops_the_command_and_leaves_the_new_holder() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("lost-set");
    let (child, pid) = Sh::new(&[server.url()], &key, dir.path(), FOREVER)
        .opts(&["--ttl", "2s"])
        .start_ready();
    set(&server, &key, "other");
    assert_lost(child, pid);
    // We never delete a lock we do not hold.
    assert_eq!(server.get(&key).as_deref(), Some("other"));
}

#[test]
fn redis_paused_shorter_than_the_lease_does_not_disturb_the_run() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("pause-short");
    // The pause must fit in what the lease leaves after the last renewal and
    // the SIGTERM grace (ttl - refresh - kill-after); the default refresh
    // (ttl/3) would leave only ~0.1 s of slack around a 500 ms pause.
    let child = Sh::new(
        &[server.url()],
        &key,
        dir.path(),
        "echo \"$REDLOCK_TOKEN\" > ready; sleep 1.5; exit 7",
    )
    .opts(&["--ttl", "2s", "--refresh", "500ms"])
    .start();
    let token = read_token(&dir.path().join("ready"));
    server.pause();
    std::thread::sleep(Duration::from_millis(500));
    server.resume();
    assert_eq!(server.get(&key).as_deref(), Some(token.as_str()));
    let out = wait_output(child, DONE);
    assert_status(&out, 7, "the command's own status");
    assert!(!server.exists(&key));
}

#[test]
fn redis_paused_longer_than_the_lease_kills_the_command_before_it_expires() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("pause-long");
    // Ignores SIGTERM, so only the SIGKILL before the lease ends stops it.
    let (child, pid) = Sh::new(
        &[server.url()],
        &key,
        dir.path(),
        "trap '' TERM; echo $$ > ready; while :; do sleep 0.05; done",
    )
    .opts(&["--ttl", "1s", "--refresh", "300ms", "--kill-after", "150ms"])
    .start_ready();
    // Freeze Redis once the current term is 150 ms old (renewals come every
    // 300 ms): the test's bound below then has ~150 ms of slack over the
    // tool's own deadline (last renewal + ttl - drift), whatever the load.
    let mut c = server.conn();
    wait_until_pttl_at_most(&mut c, &key, 850);
    // Measured on Redis's side: the lease there ends no earlier than this
    // (the next renewal was not due for another ~150 ms, so none lands
    // between this read and the freeze).
    let expires = expiry_lower_bound(&mut c, &key);
    server.pause();
    let dead = wait_gone(pid, Duration::from_secs(5));
    let out = wait_output(child, DONE);
    server.resume();
    assert_exit(&out, LOST);
    // The promise: dead before the lease could expire in Redis. The tool
    // aims at KILL_MARGIN (100 ms) before its own, earlier, deadline.
    eprintln!(
        "pause: the command died {:?} before the lease's expiry in Redis (lower bound; \
         aimed at >= {:?})",
        expires.saturating_duration_since(dead),
        redlock_run::KILL_MARGIN
    );
    assert!(
        dead < expires,
        "the command was still alive {:?} after its lease expired in Redis",
        dead.duration_since(expires)
    );
    // Redis' own clock ran on: the lease has expired there.
    assert!(!server.exists(&key));
}

/// Poll the key's PTTL (every millisecond, on one connection) until it is at most
/// `ms`, i.e. until the current lease term is old enough.
fn wait_until_pttl_at_most(c: &mut redis::Connection, key: &str, ms: i64) {
    let deadline = Instant::now() + READY;
    loop {
        let pttl: i64 = redis::cmd("PTTL").arg(key).query(c).unwrap();
        assert!(pttl > 0, "the lock vanished (PTTL {pttl})");
        if pttl <= ms {
            return;
        }
        assert!(Instant::now() < deadline, "PTTL stayed above {ms} ms");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn blackholed_connection_stops_the_command_before_a_contender_can_start() {
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port);
    let dir = tempfile::tempdir().unwrap();
    let key = key("blackhole");
    let (first, pid) = Sh::new(&[proxy.url()], &key, dir.path(), FOREVER)
        .opts(&["--ttl", "1s", "--refresh", "300ms", "--kill-after", "150ms"])
        .start_ready();
    let mut c = server.conn();
    proxy.set_mode(Mode::Blackhole);
    // The lease in Redis, read directly (not through the proxy), now and a
    // moment later (a renewal the proxy was already forwarding lands by
    // then): it ends no earlier than the later bound.
    let early = expiry_lower_bound(&mut c, &key);
    std::thread::sleep(Duration::from_millis(20));
    let expires = expiry_lower_bound(&mut c, &key).max(early);
    // Connected directly, waiting for the lock. Its command records, the
    // moment it starts, whether the first command is still running.
    let contender = Sh::new(
        &[server.url()],
        &key,
        dir.path(),
        &format!("(cat /proc/{pid}/stat 2>/dev/null || echo gone) > seen"),
    )
    .opts(&["--timeout", "10s", "--ttl", "1s"])
    .start();
    let dead = wait_gone(pid, Duration::from_secs(5));
    let out = wait_output(first, DONE);
    assert_exit(&out, LOST);
    eprintln!(
        "partition: the command died {:?} before the lease's expiry in Redis (lower bound)",
        expires.saturating_duration_since(dead)
    );
    assert!(
        dead < expires,
        "the command was still alive {:?} after its lease expired in Redis",
        dead.duration_since(expires)
    );
    let out = wait_output(contender, DONE);
    assert_status(
        &out,
        0,
        "the contender should get the lock once the lease expired",
    );
    let seen = std::fs::read_to_string(dir.path().join("seen")).unwrap();
    let overlap = seen.trim() != "gone" && stat_state(&seen) != Some('Z');
    assert!(
        !overlap,
        "the contender started while the first command still ran: {seen:?}"
    );
}

#[test]
fn redis_restarted_empty_mid_run_stops_the_command() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("restart");
    let (child, pid) = Sh::new(&[server.url()], &key, dir.path(), FOREVER)
        .opts(&["--ttl", "2s"])
        .start_ready();
    server.restart();
    assert_lost(child, pid);
    assert!(!server.exists(&key));
}

#[test]
fn redis_unreachable_briefly_is_survived() {
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port);
    let dir = tempfile::tempdir().unwrap();
    let key = key("reset");
    // --refresh 200ms: at least one renewal falls inside the outage.
    let child = Sh::new(
        &[proxy.url()],
        &key,
        dir.path(),
        "echo \"$REDLOCK_TOKEN\" > ready; sleep 1.5; exit 0",
    )
    .opts(&["--ttl", "3s", "--refresh", "200ms"])
    .start();
    let token = read_token(&dir.path().join("ready"));
    let accepted = proxy.accepted();
    proxy.set_mode(Mode::Reset);
    std::thread::sleep(Duration::from_millis(300));
    proxy.set_mode(Mode::Pass);
    assert_eq!(server.get(&key).as_deref(), Some(token.as_str()));
    let out = wait_output(child, DONE);
    assert_exit(&out, 0);
    assert!(
        proxy.accepted() > accepted,
        "redlock-run never reconnected: the outage was not exercised"
    );
    assert!(!server.exists(&key));
}

/// One `PING` over a raw connection: the reply, or the I/O error.
fn ping(s: &mut TcpStream, wait: Duration) -> std::io::Result<Vec<u8>> {
    s.set_read_timeout(Some(wait))?;
    s.write_all(b"PING\r\n")?;
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf)?;
    Ok(buf.to_vec())
}

fn read_reply(s: &mut TcpStream, wait: Duration) -> std::io::Result<Vec<u8>> {
    s.set_read_timeout(Some(wait))?;
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf)?;
    Ok(buf.to_vec())
}

#[test]
fn proxy_passes_holds_delays_and_resets() {
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port);
    let connect = || TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    let pong = b"+PONG\r\n".to_vec();
    let long = Duration::from_secs(5);

    let mut a = connect();
    assert_eq!(ping(&mut a, long).unwrap(), pong);

    // Blackhole: nothing comes back, the connection stays open; the held
    // request is answered once traffic flows again.
    proxy.set_mode(Mode::Blackhole);
    let e = ping(&mut a, Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    let mut b = connect();
    let e = ping(&mut b, Duration::from_millis(100)).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    proxy.set_mode(Mode::Pass);
    assert_eq!(read_reply(&mut a, long).unwrap(), pong);
    assert_eq!(read_reply(&mut b, long).unwrap(), pong);

    // Delay: each direction waits.
    proxy.set_mode(Mode::Delay(Duration::from_millis(100)));
    let t = Instant::now();
    assert_eq!(ping(&mut a, long).unwrap(), pong);
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    proxy.set_mode(Mode::Pass);

    // Reset: open connections get an RST, new ones too.
    proxy.set_mode(Mode::Reset);
    let e = read_reply(&mut a, long).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    let mut c = connect();
    let e = read_reply(&mut c, long).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");

    proxy.set_mode(Mode::Pass);
    assert_eq!(ping(&mut connect(), long).unwrap(), pong);
    assert_eq!(proxy.accepted(), 4);
}

/// "70 ... when at release the key was found gone or taken, even if the
/// command had exited on its own": the command removes (or replaces) the
/// lock itself and exits 0 before any renewal (--ttl 30s: the first one is
/// 10 s away); the release finds it so and the run exits 70.
#[test]
fn a_key_gone_or_taken_at_release_is_70_after_a_command_that_exited_0() {
    let server = RedisServer::start();
    for (what, redis_cmd) in [
        ("gone", "DEL \"$REDLOCK_KEY\""),
        ("taken", "SET \"$REDLOCK_KEY\" someone-else"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let k = key("gone-at-release");
        let script = format!(
            "redis-cli -p {} {redis_cmd} > /dev/null && echo done > done; exit 0",
            server.port
        );
        let t = Instant::now();
        let out = Rr::on(&server)
            .args(["--key", &k, "--ttl", "30s", "--"])
            .args(["sh", "-c", &script])
            .current_dir(dir.path())
            .within(Duration::from_secs(30))
            .run();
        assert!(
            dir.path().join("done").exists(),
            "{what}: the command did not change the key: {}",
            stderr(&out)
        );
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: a renewal may have seen it first"
        );
        assert_status(&out, 70, what);
        if what == "taken" {
            assert_eq!(
                server.get(&k).as_deref(),
                Some("someone-else"),
                "the release deleted another holder's lock"
            );
        }
    }
}

/// An LD_PRELOAD shim that steps CLOCK_REALTIME (and only it) by the
/// number of seconds in the file named by `WALLSTEP_FILE`, re-read on
/// every call: an NTP step or a manual `date`, for one process tree.
/// (libfaketime cannot stand in: it also rewrites the absolute deadlines
/// given to timerfd_settime, whatever the timer's clock, so a CLOCK_BOOTTIME
/// timer fires an hour early under "+1h"; checked with a 10-line program.)
pub(crate) const WALLSTEP_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long offset(void) {
    const char *path = getenv("WALLSTEP_FILE");
    char buf[32] = {0};
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

int clock_gettime(clockid_t clk, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int r = real(clk, ts);
    if (r == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) ts->tv_sec += offset();
    return r;
}
"#;

/// "Locally, leases are measured on CLOCK_BOOTTIME, which wall clock
/// changes (NTP steps, manual `date`) do not affect": redlock-run's wall
/// clock (the shim above) jumps an hour ahead, then two hours back, while
/// its command runs over several lease terms (--ttl 1s). The lease must be
/// kept (exit 0, the command runs to its end); its JSON log's wall-clock
/// stamps show that both steps reached it. (A suspend, the other half of
/// that sentence, cannot be made in a test.)
#[test]
fn wall_clock_steps_do_not_move_the_lease() {
    let shim = compile_c("wallstep", WALLSTEP_C, &["-shared", "-fPIC", "-ldl"]);
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("clock-step");
    let step = dir.path().join("step");
    std::fs::write(&step, "0\n").unwrap();
    let child = spawn_piped(
        rr(&server)
            .env("REDLOCK_LOG", "debug")
            .env("LD_PRELOAD", &shim)
            .env("WALLSTEP_FILE", &step)
            .args(["--log-format", "json", "--key", &k, "--ttl", "1s", "--"])
            .args(["sh", "-c", "echo $$ > pid; sleep 3; echo done > done"])
            .current_dir(dir.path()),
    );
    let pid = read_pid(&dir.path().join("pid"));
    // Into the first term, then an hour ahead (a wall-clock deadline would
    // have passed long ago), then, a few renewals later, an hour behind.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&step, "3600\n").unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::write(&step, "-3600\n").unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    let err = stderr(&out);
    wait_gone(pid, Duration::from_secs(5));
    assert_exit(&out, 0);
    assert!(dir.path().join("done").exists(), "the command was stopped");
    let now = std::time::SystemTime::now();
    let offsets: Vec<i64> = err
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let t = humantime::parse_rfc3339(v["timestamp"].as_str()?).ok()?;
            Some(match t.duration_since(now) {
                Ok(d) => d.as_secs() as i64,
                Err(e) => -(e.duration().as_secs() as i64),
            })
        })
        .collect();
    assert!(
        offsets.iter().any(|&o| o > 50 * 60) && offsets.iter().any(|&o| o < -50 * 60),
        "the steps did not both reach redlock-run (log stamps {offsets:?} s from now):\n{err}"
    );
}
