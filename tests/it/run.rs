//! Run mode end to end: exit codes, what the command sees, passthrough,
//! busy locks, waiting, mutual exclusion under contention, --min-hold and
//! interoperation with plain `SET NX PX` clients.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::*;

#[test]
pub(crate) fn command_exit_code_passes_through_and_key_is_released() {
    let server = RedisServer::start();
    let k = key("exit");
    Rr::on(&server)
        .args(["--key", &k, "--", "sh", "-c", "exit 7"])
        .status(7)
        .key_absent(&k)
        .run();

    // Death by signal N is 128+N, never success.
    Rr::on(&server)
        .args(["--key", &k, "--", "sh", "-c", "kill -9 $$"])
        .status(137)
        .key_absent(&k)
        .run();

    Rr::on(&server)
        .args(["--key", &k, "--", "true"])
        .status(0)
        .key_absent(&k)
        .run();
}

#[test]
pub(crate) fn child_env_matches_the_lock_in_redis_and_fencing_increases() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("env");
    let mut fencing = Vec::new();
    for _ in 0..3 {
        let (h, env) = Holder::start(&server, &k, dir.path(), &["--ttl", "2s"]);
        assert_eq!(env.key, k);
        // While the command runs, the key holds exactly its REDLOCK_TOKEN.
        assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));
        let pttl = server.pttl(&k);
        assert!(0 < pttl && pttl <= 2000, "PTTL {pttl}");
        assert_eq!(
            server.get(&fence_key(&k)),
            Some(env.fencing.to_string()),
            "REDLOCK_FENCING_TOKEN is the counter's value"
        );
        h.finish_ok();
        assert!(!server.exists(&k));
        fencing.push(env);
    }
    assert!(
        fencing.windows(2).all(|w| w[0].fencing < w[1].fencing),
        "fencing tokens must strictly increase: {fencing:?}"
    );
    assert!(
        fencing[0].token != fencing[1].token && fencing[1].token != fencing[2].token,
        "tokens must be unique: {fencing:?}"
    );
}

/// Pseudo-random bytes covering every byte value (NULs, invalid UTF-8, …).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i < 256 { i as u8 } else { (x >> 24) as u8 }
        })
        .collect()
}

#[test]
fn stdout_and_stdin_pass_through_byte_for_byte() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = noise(1 << 20);
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &data).unwrap();

    let k = key("stdout");
    let o = Rr::on(&server)
        .args(["--key", &k, "--", "cat"])
        .arg(&file)
        .stdin(Vec::new())
        .within(Duration::from_secs(30))
        .status(0)
        .run();
    assert_eq!(o.stdout.len(), data.len());
    assert!(o.stdout == data, "stdout differs from the file");

    let o = Rr::on(&server)
        .args(["--key", &k, "--", "cat"])
        .stdin(data.clone())
        .within(Duration::from_secs(30))
        .status(0)
        .run();
    assert_eq!(o.stdout.len(), data.len());
    assert!(
        o.stdout == data,
        "stdout differs from what went in on stdin"
    );
    assert!(!server.exists(&k));
}

#[test]
pub(crate) fn busy_lock_is_skipped_quietly_with_75_or_the_chosen_code() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("busy");
    let (holder, env) = Holder::start(&server, &k, dir.path(), &[]);
    let marker = dir.path().join("second-ran");

    let started = Instant::now();
    // The cron case ("another host runs it") is not an error: quiet.
    Rr::on(&server)
        .args(["--key", &k, "--", "touch"])
        .arg(&marker)
        .status(75)
        .stderr("")
        .stdout("")
        .run();
    let took = started.elapsed();
    assert!(!marker.exists(), "the command ran without the lock");
    assert!(took < Duration::from_secs(5), "--timeout 0s took {took:?}");
    assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));

    Rr::on(&server)
        .args(["-E", "3", "--key", &k, "--", "touch"])
        .arg(&marker)
        .status(3)
        .run();
    assert!(!marker.exists(), "the command ran without the lock");
    assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));
    assert!(server.pttl(&k) > 0);

    holder.finish_ok();
    assert!(!server.exists(&k));
}

#[test]
pub(crate) fn timeout_waits_for_the_holder_then_runs() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("wait");
    let (holder, env) = Holder::start(&server, &k, dir.path(), &[]);
    let order = holder.order.clone();
    let seen = dir.path().join("waiter-token");

    let waiter = Rr::on(&server)
        .args(["--timeout", "10s", "--key", &k, "--"])
        .args([
            "sh",
            "-c",
            r#"echo "$REDLOCK_TOKEN" > "$1"; echo waiter-ran >> "$2""#,
            "sh",
        ])
        .arg(&seen)
        .arg(&order)
        .within(Duration::from_secs(15))
        .status(0)
        .spawn();
    // The waiter is waiting once it listens for the release.
    wait_until("the waiter to subscribe", Duration::from_secs(10), || {
        server.subscribers(&released_channel(&k)) >= 1
    });
    assert!(!seen.exists(), "the waiter ran while the lock was held");
    assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));

    holder.finish_ok();
    waiter.wait();

    let log = std::fs::read_to_string(&order).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "holder end, then waiter run; got {lines:?}");
    assert!(lines[0].starts_with("end "), "{lines:?}");
    assert_eq!(lines[1], "waiter-ran", "{lines:?}");
    let waiter_token = std::fs::read_to_string(&seen).unwrap();
    assert_ne!(
        waiter_token.trim(),
        env.token,
        "the waiter needs its own token"
    );
    assert!(!server.exists(&k));
}

#[test]
fn signal_while_waiting_ends_the_wait_with_128_plus_n() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("sigwait");
    let (holder, env) = Holder::start(&server, &k, dir.path(), &[]);
    let marker = dir.path().join("waiter-ran");
    for (sig, expected) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        let waiter = Rr::on(&server)
            .args(["--timeout", "30s", "--key", &k, "--", "touch"])
            .arg(&marker)
            .within(Duration::from_secs(10))
            .status(expected)
            .spawn();
        let waiter_pid = waiter.pid() as i32;
        // It is waiting once it listens for the release.
        wait_until("the waiter to subscribe", Duration::from_secs(10), || {
            server.subscribers(&released_channel(&k)) >= 1
        });
        kill(Pid::from_raw(waiter_pid), sig).unwrap();
        waiter.wait();
        assert!(
            !marker.exists(),
            "{sig} while waiting must not run the command"
        );
        // The holder's lock is untouched and the holder is still running.
        assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));
        assert!(server.pttl(&k) > 0);
        assert!(alive(holder.pid()));
        wait_until(
            "the waiter's subscription to go",
            Duration::from_secs(10),
            || server.subscribers(&released_channel(&k)) == 0,
        );
    }
    holder.finish_ok();
    assert!(!server.exists(&k));
}

#[test]
pub(crate) fn contenders_never_overlap() {
    const CONTENDERS: usize = 8;
    const SECTIONS: usize = 15;
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("contend");
    let log = dir.path().join("sections");
    // Appends with O_APPEND are ordered, so the file's line order is the
    // real order of the writes; the timestamps are a second check.
    let script = r#"echo "start $1 $REDLOCK_FENCING_TOKEN $(date +%s%N)" >> "$2"
echo "end $1 $REDLOCK_FENCING_TOKEN $(date +%s%N)" >> "$2""#;
    let started = Instant::now();
    std::thread::scope(|s| {
        for c in 0..CONTENDERS {
            let (server, k, log) = (&server, &k, &log);
            s.spawn(move || {
                for i in 0..SECTIONS {
                    let id = format!("{c}.{i}");
                    Rr::on(server)
                        .args(["--timeout", "60s", "--ttl", "5s", "--key", k, "--"])
                        .args(["sh", "-c", script, "sh", &id])
                        .arg(log)
                        .status(0)
                        .run();
                }
            });
        }
    });
    eprintln!(
        "{} sections by {CONTENDERS} contenders in {:?}",
        CONTENDERS * SECTIONS,
        started.elapsed()
    );

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 2 * CONTENDERS * SECTIONS, "{text}");
    let mut last_end: u128 = 0;
    let mut last_fence: u64 = 0;
    for pair in lines.chunks(2) {
        let (start, end) = (&pair[0], &pair[1]);
        assert!(
            start[0] == "start" && end[0] == "end" && start[1] == end[1],
            "sections interleave: {start:?} then {end:?}\n{text}"
        );
        let t0: u128 = start[3].parse().unwrap();
        let t1: u128 = end[3].parse().unwrap();
        assert!(
            t0 >= last_end,
            "section {} began before the last ended",
            start[1]
        );
        assert!(t1 >= t0);
        last_end = t1;
        let fence: u64 = start[2].parse().unwrap();
        assert!(
            fence > last_fence,
            "fencing token went {last_fence} -> {fence}"
        );
        last_fence = fence;
    }
    assert!(!server.exists(&k));
}

#[test]
fn missing_or_unexecutable_command_is_127_or_126_and_leaves_no_lock() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("spawn");

    // Even --min-hold does not keep a lock for a command that never ran.
    Rr::on(&server)
        .args(["--min-hold", "10s", "--key", &k, "--"])
        .arg("redlock-run-test-no-such-command")
        .status(127)
        .stderr_has("redlock-run-test-no-such-command")
        .key_absent(&k)
        .run();

    let missing = dir.path().join("missing");
    Rr::on(&server)
        .args(["--key", &k, "--"])
        .arg(&missing)
        .status(127)
        .key_absent(&k)
        .run();

    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    Rr::on(&server)
        .args(["--min-hold", "10s", "--key", &k, "--"])
        .arg(&script)
        .status(126)
        .key_absent(&k)
        .run();
}

#[test]
fn shell_option_runs_via_sh() {
    let server = RedisServer::start();
    let k = key("shell");
    Rr::on(&server)
        .args(["--key", &k, "--shell", "echo hi; exit 4"])
        .status(4)
        .stdout("hi\n")
        .key_absent(&k)
        .run();

    Rr::on(&server)
        .args(["--key", &k, "-c", r#"echo "$REDLOCK_KEY""#])
        .status(0)
        .stdout(format!("{k}\n"))
        .run();
}

#[test]
fn unreachable_redis_is_69_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let url = format!("redis://127.0.0.1:{}", free_port());
    let k = key("down");

    let o = Rr::urls(std::slice::from_ref(&url))
        .args(["--key", &k, "--", "touch"])
        .arg(&marker)
        .status(69)
        .run();
    assert!(!marker.exists(), "the command ran without a lock");
    assert!(!stderr(&o).is_empty(), "say why on stderr");

    let started = Instant::now();
    Rr::urls(std::slice::from_ref(&url))
        .args(["--timeout", "1s", "--key", &k, "--", "touch"])
        .arg(&marker)
        .status(69)
        .run();
    let took = started.elapsed();
    assert!(!marker.exists(), "the command ran without a lock");
    assert!(
        took >= Duration::from_millis(900),
        "--timeout 1s gave up after {took:?} instead of retrying"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn min_hold_keeps_the_lock_after_a_quick_command() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("minhold");
    let seen = dir.path().join("token");

    let started = Instant::now();
    Rr::on(&server)
        .args(["--min-hold", "3s", "--key", &k, "--"])
        .args(["sh", "-c", r#"echo "$REDLOCK_TOKEN" > "$1""#, "sh"])
        .arg(&seen)
        .status(0)
        .run();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "redlock-run must exit at once, not sit out --min-hold ({took:?})"
    );
    let token = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(server.get(&k).as_deref(), Some(token.trim()));
    let pttl = server.pttl(&k);
    assert!((1000..=3000).contains(&pttl), "PTTL {pttl}");

    let marker = dir.path().join("second-ran");
    Rr::on(&server)
        .args(["--key", &k, "--", "touch"])
        .arg(&marker)
        .status(75)
        .run();
    assert!(!marker.exists());
    assert_eq!(server.get(&k).as_deref(), Some(token.trim()));
}

#[test]
fn interoperates_with_plain_set_nx_px_clients() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("interop");
    let marker = dir.path().join("ran");

    // Another client's lock excludes us ...
    let ok: Option<String> = server.query(&["SET", &k, "other", "NX", "PX", "5000"]);
    assert_eq!(ok.as_deref(), Some("OK"));
    Rr::on(&server)
        .args(["--key", &k, "--", "touch"])
        .arg(&marker)
        .status(75)
        .run();
    assert!(!marker.exists());
    assert_eq!(server.get(&k).as_deref(), Some("other"));
    let _: i64 = server.query(&["DEL", &k]);

    // ... and ours excludes it.
    let (holder, env) = Holder::start(&server, &k, dir.path(), &[]);
    let got: Option<String> = server.query(&["SET", &k, "x", "NX", "PX", "5000"]);
    assert_eq!(
        got, None,
        "SET NX must fail while redlock-run holds the key"
    );
    assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));
    holder.finish_ok();
    assert!(!server.exists(&k));

    // A waiter notices a foreign lock expiring (nobody publishes for it).
    let ok: Option<String> = server.query(&["SET", &k, "other", "NX", "PX", "300"]);
    assert_eq!(ok.as_deref(), Some("OK"));
    Rr::on(&server)
        .args(["--timeout", "10s", "--key", &k, "--", "touch"])
        .arg(&marker)
        .status(0)
        .key_absent(&k)
        .run();
    assert!(marker.exists());
}

/// The binary enters through a C `main` (src/main.rs), so what std's own
/// start-up did is ours: standard descriptors that were closed must not
/// become our Redis socket (our log lines would go to Redis), and the
/// command must start with SIGPIPE at its default although we ignore it.
#[test]
fn closed_standard_descriptors_and_sigpipe_are_handled() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("stdfds");
    let report = dir.path().join("report");
    let probe = format!(
        "grep SigIgn /proc/self/status > {r}; readlink /proc/self/fd/2 >> {r}",
        r = report.display()
    );
    // sh closes 0, 1 and 2, then execs redlock-run at debug level (so it
    // does write log lines) with the probe as its command.
    Rr::command(std::process::Command::new("sh"))
        .env("REDLOCK_REDIS", server.url())
        .env_remove("REDLOCK_KEY")
        .env_remove("REDLOCK_LOG")
        .args(["-c", "exec 0<&- 1>&- 2>&- \"$0\" \"$@\""])
        .arg(bin())
        .args(["-vv", "--key", &k, "--", "sh", "-c", &probe])
        .status(0)
        .run();
    let text = std::fs::read_to_string(&report).expect("the command ran");
    let mut lines = text.lines();
    let sigign = lines.next().expect("SigIgn line");
    let mask = u64::from_str_radix(sigign.trim_start_matches("SigIgn:").trim(), 16).unwrap();
    assert_eq!(
        mask & (1 << (Signal::SIGPIPE as u32 - 1)),
        0,
        "the command inherited an ignored SIGPIPE: {sigign}"
    );
    assert_eq!(
        lines.next(),
        Some("/dev/null"),
        "the command's stderr: {text}"
    );
    assert!(!server.exists(&k), "lock left behind");
}
