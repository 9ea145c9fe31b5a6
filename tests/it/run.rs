//! Run mode end to end: exit codes, what the command sees, passthrough,
//! busy locks, waiting, mutual exclusion under contention, --min-hold and
//! interoperation with plain `SET NX PX` clients.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::*;

fn code(o: &std::process::Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {o:?}"))
}

#[test]
pub(crate) fn command_exit_code_passes_through_and_key_is_released() {
    let server = RedisServer::start();
    let k = key("exit");
    let o = output(rr(&server).args(["--key", &k, "--", "sh", "-c", "exit 7"]));
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert!(!server.exists(&k), "lock left behind after the command");

    // Death by signal N is 128+N, never success.
    let o = output(rr(&server).args(["--key", &k, "--", "sh", "-c", "kill -9 $$"]));
    assert_eq!(code(&o), 137, "{}", stderr(&o));
    assert!(!server.exists(&k));

    let o = output(rr(&server).args(["--key", &k, "--", "true"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!server.exists(&k));
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
        let o = h.finish();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
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
    let o = output_with_input(
        rr(&server).args(["--key", &k, "--", "cat"]).arg(&file),
        Vec::new(),
        Duration::from_secs(30),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(o.stdout.len(), data.len());
    assert!(o.stdout == data, "stdout differs from the file");

    let o = output_with_input(
        rr(&server).args(["--key", &k, "--", "cat"]),
        data.clone(),
        Duration::from_secs(30),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
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
    let o = output(rr(&server).args(["--key", &k, "--", "touch"]).arg(&marker));
    let took = started.elapsed();
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert!(!marker.exists(), "the command ran without the lock");
    assert!(took < Duration::from_secs(5), "--timeout 0s took {took:?}");
    // The cron case ("another host runs it") is not an error.
    assert_eq!(stderr(&o), "", "a skipped run should be quiet");
    assert!(o.stdout.is_empty());
    assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));

    let o = output(
        rr(&server)
            .args(["-E", "3", "--key", &k, "--", "touch"])
            .arg(&marker),
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(!marker.exists(), "the command ran without the lock");
    assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));
    assert!(server.pttl(&k) > 0);

    let o = holder.finish();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
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

    let waiter = rr(&server)
        .args(["--timeout", "10s", "--key", &k, "--"])
        .args([
            "sh",
            "-c",
            r#"echo "$REDLOCK_TOKEN" > "$1"; echo waiter-ran >> "$2""#,
            "sh",
        ])
        .arg(&seen)
        .arg(&order)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The waiter is waiting once it listens for the release.
    wait_until("the waiter to subscribe", Duration::from_secs(10), || {
        server.subscribers(&released_channel(&k)) >= 1
    });
    assert!(!seen.exists(), "the waiter ran while the lock was held");
    assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));

    let o = holder.finish();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = wait_output(waiter, Duration::from_secs(15));
    assert_eq!(code(&o), 0, "{}", stderr(&o));

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
        let waiter = rr(&server)
            .args(["--timeout", "30s", "--key", &k, "--", "touch"])
            .arg(&marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let waiter_pid = waiter.id() as i32;
        // It is waiting once it listens for the release.
        wait_until("the waiter to subscribe", Duration::from_secs(10), || {
            server.subscribers(&released_channel(&k)) >= 1
        });
        kill(Pid::from_raw(waiter_pid), sig).unwrap();
        let o = wait_output(waiter, Duration::from_secs(10));
        assert_eq!(code(&o), expected, "{sig}: {}", stderr(&o));
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
    let o = holder.finish();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
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
                    let o = output(
                        rr(server)
                            .args(["--timeout", "60s", "--ttl", "5s", "--key", k, "--"])
                            .args(["sh", "-c", script, "sh", &id])
                            .arg(log),
                    );
                    assert_eq!(code(&o), 0, "section {id}: {}", stderr(&o));
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
    let o = output(rr(&server).args([
        "--min-hold",
        "10s",
        "--key",
        &k,
        "--",
        "redlock-run-test-no-such-command",
    ]));
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    assert!(stderr(&o).contains("redlock-run-test-no-such-command"));
    assert!(!server.exists(&k), "lock left behind for a missing command");

    let missing = dir.path().join("missing");
    let o = output(rr(&server).args(["--key", &k, "--"]).arg(&missing));
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    assert!(!server.exists(&k));

    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = output(
        rr(&server)
            .args(["--min-hold", "10s", "--key", &k, "--"])
            .arg(&script),
    );
    assert_eq!(code(&o), 126, "{}", stderr(&o));
    assert!(
        !server.exists(&k),
        "lock left behind for an unexecutable command"
    );
}

#[test]
fn shell_option_runs_via_sh() {
    let server = RedisServer::start();
    let k = key("shell");
    let o = output(rr(&server).args(["--key", &k, "--shell", "echo hi; exit 4"]));
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert_eq!(stdout(&o), "hi\n");
    assert!(!server.exists(&k));

    let o = output(rr(&server).args(["--key", &k, "-c", r#"echo "$REDLOCK_KEY""#]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{k}\n"));
}

#[test]
fn unreachable_redis_is_69_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let url = format!("redis://127.0.0.1:{}", free_port());
    let k = key("down");

    let o = output(
        rr_urls(std::slice::from_ref(&url))
            .args(["--key", &k, "--", "touch"])
            .arg(&marker),
    );
    assert_eq!(code(&o), 69, "{}", stderr(&o));
    assert!(!marker.exists(), "the command ran without a lock");
    assert!(!stderr(&o).is_empty(), "say why on stderr");

    let started = Instant::now();
    let o = output(
        rr_urls(std::slice::from_ref(&url))
            .args(["--timeout", "1s", "--key", &k, "--", "touch"])
            .arg(&marker),
    );
    let took = started.elapsed();
    assert_eq!(code(&o), 69, "{}", stderr(&o));
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
    let o = output(
        rr(&server)
            .args(["--min-hold", "3s", "--key", &k, "--"])
            .args(["sh", "-c", r#"echo "$REDLOCK_TOKEN" > "$1""#, "sh"])
            .arg(&seen),
    );
    let took = started.elapsed();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        took < Duration::from_secs(2),
        "redlock-run must exit at once, not sit out --min-hold ({took:?})"
    );
    let token = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(server.get(&k).as_deref(), Some(token.trim()));
    let pttl = server.pttl(&k);
    assert!((1000..=3000).contains(&pttl), "PTTL {pttl}");

    let marker = dir.path().join("second-ran");
    let o = output(rr(&server).args(["--key", &k, "--", "touch"]).arg(&marker));
    assert_eq!(code(&o), 75, "{}", stderr(&o));
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
    let o = output(rr(&server).args(["--key", &k, "--", "touch"]).arg(&marker));
    assert_eq!(code(&o), 75, "{}", stderr(&o));
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
    let o = holder.finish();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!server.exists(&k));

    // A waiter notices a foreign lock expiring (nobody publishes for it).
    let ok: Option<String> = server.query(&["SET", &k, "other", "NX", "PX", "300"]);
    assert_eq!(ok.as_deref(), Some("OK"));
    let o = output(
        rr(&server)
            .args(["--timeout", "10s", "--key", &k, "--", "touch"])
            .arg(&marker),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(marker.exists());
    assert!(!server.exists(&k));
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
    let status = output_within(
        std::process::Command::new("sh")
            .env("REDLOCK_REDIS", server.url())
            .env_remove("REDLOCK_KEY")
            .env_remove("REDLOCK_LOG")
            .args(["-c", "exec 0<&- 1>&- 2>&- \"$0\" \"$@\""])
            .arg(bin())
            .args(["-vv", "--key", &k, "--", "sh", "-c", &probe]),
        Duration::from_secs(60),
    )
    .status;
    assert_eq!(status.code(), Some(0), "{status:?}");
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
