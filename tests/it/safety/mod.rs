//! Attacks on the promise the tool exists for: the command never outlives
//! its lease and nothing runs unlocked, whatever happens to redlock-run
//! itself. Each test makes the fault happen for real: redlock-run
//! SIGSTOPped alone, a terminal with `stty tostop`, stderr that cannot be
//! written, a lost reply to the release, system calls that fail inside
//! supervision (an LD_PRELOAD shim, `fault.c`), option combinations at the
//! edge of what is accepted.

mod options;
mod terminal;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::proxy::{Mode, Proxy};
use crate::support::{
    RedisServer, alive, assert_exit, assert_status, compile_c, expiry_lower_bound, key, read_pid,
    rr, rr_urls, send_signal, spawn_piped, status_within, stderr, wait_for_file, wait_gone,
    wait_output, wait_until,
};

/// The fault-injection library (see `fault.c`).
fn fault_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        compile_c(
            "rr-fault",
            include_str!("fault.c"),
            &["-shared", "-fPIC", "-ldl"],
        )
    })
}

/// `sh -c SCRIPT` as the command: it writes its PID to `pidfile` first.
fn sh_cmd(cmd: &mut Command, pidfile: &Path, body: &str) {
    cmd.arg("--")
        .args(["sh", "-c"])
        .arg(format!("echo $$ > \"$0\"; {body}"))
        .arg(pidfile);
}

/// `redlock-run [PRE] --key KEY OPTS -- sh -c BODY` on `server`, with the
/// fault shim preloaded and its `faults` set. Returns the command, its key,
/// and the file (in `dir`) the shell writes its PID to before BODY.
fn faulty(
    server: &RedisServer,
    dir: &Path,
    pre: &[&str],
    opts: &[&str],
    faults: &[(&str, &str)],
    body: &str,
) -> (Command, String, PathBuf) {
    let k = key("fault");
    let pidfile = dir.join("pid");
    let mut cmd = rr(server);
    cmd.args(pre)
        .args(["--key", &k])
        .args(opts)
        .env("LD_PRELOAD", fault_lib())
        .envs(faults.iter().copied());
    sh_cmd(&mut cmd, &pidfile, body);
    (cmd, k, pidfile)
}

/// redlock-run SIGSTOPped while its command runs (Redis healthy: only our
/// own process stalls, so the lease runs out in Redis). The command, which
/// ignores SIGTERM, and everything in its group must be dead before the
/// key can expire, however long the stall; on SIGCONT, exit 70.
#[test]
fn a_stalled_redlock_run_cannot_let_its_command_outlive_the_lease() {
    let server = RedisServer::start();
    // At once after the command starts, and late in the lease (after one
    // renewal, close to where the SIGTERM would be sent).
    for stall_after in [Duration::ZERO, Duration::from_millis(650)] {
        let dir = tempfile::tempdir().unwrap();
        let k = key("stall");
        let pidfile = dir.path().join("pid");
        let kidfile = dir.path().join("kid");
        let mut cmd = rr(&server);
        cmd.args(["--key", &k, "--ttl", "1s"]);
        sh_cmd(
            &mut cmd,
            &pidfile,
            &format!(
                "trap '' TERM; sleep 1000 & echo $! > {}; while :; do sleep 0.05; done",
                kidfile.display()
            ),
        );
        let child = spawn_piped(&mut cmd);
        let pid = read_pid(&pidfile);
        let kid = read_pid(&kidfile);
        std::thread::sleep(stall_after);
        send_signal(child.id(), Signal::SIGSTOP);
        let expires = expiry_lower_bound(&mut server.conn(), &k);
        let dead = wait_gone(pid, Duration::from_secs(5));
        let kid_dead = wait_gone(kid, Duration::from_secs(1));
        assert!(
            dead < expires && kid_dead < expires,
            "stall after {stall_after:?}: the command died {:?} after the lease could expire",
            dead.max(kid_dead) - expires
        );
        // Still stopped: it was not redlock-run that killed the command.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        assert!(
            stat.rsplit(')')
                .next()
                .unwrap()
                .trim_start()
                .starts_with('T'),
            "redlock-run was not stopped: {stat}"
        );
        send_signal(child.id(), Signal::SIGCONT);
        let out = wait_output(child, Duration::from_secs(10));
        assert_exit(&out, 70);
    }
}

/// stderr that fails every write (ENOSPC, EPIPE) is ignored: never an
/// abort, the exit code stays the command's, and the lock is released.
#[test]
fn failing_writes_to_stderr_or_stdout_never_abort() {
    let server = RedisServer::start();
    for target in ["full", "closed-pipe"] {
        let k = key("stderr");
        let mut cmd = rr(&server);
        cmd.args(["--key", &k, "-vvv", "--", "true"]);
        match target {
            "full" => {
                cmd.stderr(
                    std::fs::File::options()
                        .write(true)
                        .open("/dev/full")
                        .unwrap(),
                );
            }
            _ => {
                let (r, w) = nix::unistd::pipe().unwrap();
                drop(r);
                cmd.stderr(Stdio::from(w));
            }
        }
        let st = status_within(
            cmd.stdin(Stdio::null()).stdout(Stdio::null()),
            Duration::from_secs(60),
        );
        assert_eq!(st.code(), Some(0), "stderr {target}: {st:?}");
        assert!(!server.exists(&k), "stderr {target}: lock left behind");
        // Unreachable Redis: the error line cannot be written either.
        let mut cmd = rr_urls(&[format!("redis://127.0.0.1:{}", crate::support::free_port())]);
        cmd.args(["--key", &k, "--", "true"]);
        cmd.stderr(
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        );
        let st = status_within(cmd.stdin(Stdio::null()), Duration::from_secs(60));
        assert_eq!(st.code(), Some(69), "stderr {target}, Redis down: {st:?}");
    }
    // status printing into a full disk.
    let k = key("stdout");
    let st = status_within(
        rr(&server)
            .args(["status", "--key", &k])
            .stdin(Stdio::null())
            .stdout(
                std::fs::File::options()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            ),
        Duration::from_secs(60),
    );
    assert_eq!(st.code(), Some(1), "status into /dev/full: {st:?}");
}

/// The reply to the release is lost (the connection is reset after Redis
/// deleted the key): the retry must recognise its own release, not report
/// a lost lock.
#[test]
fn a_lost_reply_to_the_release_is_still_a_release() {
    lost_release_reply(false);
}

/// The same, and before the retry a waiter (woken by the release) takes
/// the lock: the retry must still recognise its own release, not report
/// the waiter's lock as a loss.
#[test]
fn a_lost_release_reply_then_a_waiter_is_still_a_release() {
    lost_release_reply(true);
}

/// A holder behind a proxy whose release reply is lost; with `waiter`, a
/// second redlock-run (talking to Redis directly) waits for the lock.
fn lost_release_reply(waiter: bool) {
    let server = RedisServer::start();
    // A first run loads the scripts into the server, so that the release
    // is one EVALSHA (not NOSCRIPT, then SCRIPT LOAD): its reply is the
    // next one after the mode is set.
    let warm = status_within(
        rr(&server).args(["--key", &key("warm"), "--", "true"]),
        Duration::from_secs(60),
    );
    assert!(warm.success());
    let proxy = Proxy::start(server.port);
    let dir = tempfile::tempdir().unwrap();
    let k = key("lostreply");
    let ready = dir.path().join("ready");
    let mut cmd = rr_urls(&[proxy.url()]);
    // A long lease: no renewal can be the reply that gets lost.
    cmd.args(["--key", &k, "--ttl", "60s", "--"])
        .args(["sh", "-c", "echo go > \"$0\"; read -r _; exit 0"])
        .arg(&ready);
    let mut holder = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&ready, Duration::from_secs(10));
    let waiting = waiter.then(|| {
        let mut w = rr(&server);
        w.args(["--key", &k, "--timeout", "20s", "--", "sleep", "1"]);
        let child = spawn_piped(&mut w);
        wait_until("the waiter to subscribe", Duration::from_secs(10), || {
            server.subscribers(&crate::support::released_channel(&k)) > 0
        });
        child
    });
    proxy.set_mode(Mode::LoseNextReply);
    drop(holder.stdin.take());
    let out = wait_output(holder, Duration::from_secs(20));
    assert_eq!(
        proxy.mode(),
        Mode::Pass,
        "no reply was lost: the test tested nothing"
    );
    assert_exit(&out, 0);
    if let Some(w) = waiting {
        let out = wait_output(w, Duration::from_secs(20));
        assert_status(&out, 0, "waiter");
    }
    assert!(!server.exists(&k));
}

/// A real failure inside supervision (timerfd_settime fails at the first
/// renewal): the command's group is stopped before the lock is released,
/// and the exit code is 70, in run mode and in schedule.
#[test]
fn an_internal_error_while_the_command_runs_stops_it_before_the_release() {
    let server = RedisServer::start();
    for schedule in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let pre: &[&str] = if schedule {
            &["schedule", "--every", "1s"]
        } else {
            &[]
        };
        let (mut cmd, k, pidfile) = faulty(
            &server,
            dir.path(),
            pre,
            &["--ttl", "1s"],
            &[("RR_FAULT_TIMERFD_SETTIME", "2")],
            "trap '' TERM; sleep 30",
        );
        let child = spawn_piped(&mut cmd);
        let pid = read_pid(&pidfile);
        // The moment the lock goes away, the command must be gone already.
        let mut seen_alive_unlocked = false;
        wait_until("the lock to go", Duration::from_secs(15), || {
            if server.exists(&k) {
                return false;
            }
            seen_alive_unlocked = alive(pid);
            true
        });
        assert!(
            !seen_alive_unlocked,
            "schedule={schedule}: the lock was released while the command still ran"
        );
        let out = wait_output(child, Duration::from_secs(15));
        assert_status(&out, 70, &format!("schedule={schedule}"));
    }
}

/// killpg refused (EPERM, as with a setuid program in the group): the
/// command could not be stopped as asked, which is a lost lock (70).
#[test]
fn a_refused_killpg_is_a_lost_lock() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut cmd, _, pidfile) = faulty(
        &server,
        dir.path(),
        &[],
        &["--ttl", "2s"],
        &[("RR_FAULT_KILLPG", "EPERM")],
        "sleep 0.5",
    );
    let child = spawn_piped(&mut cmd);
    read_pid(&pidfile);
    send_signal(child.id(), Signal::SIGINT);
    let started = Instant::now();
    let out = wait_output(child, Duration::from_secs(10));
    assert_exit(&out, 70);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(stderr(&out).contains("EPERM"), "{}", stderr(&out));
}

/// redlock-run stalls between setting the guardian's deadline and starting
/// the command, past the lease, and again right after the fork (an
/// LD_PRELOAD stall around the command's fork). The command must never
/// start after its lease could expire: exit 70, nothing run.
#[test]
fn a_stall_before_the_command_starts_never_runs_it_unlocked() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut cmd, _, pidfile) = faulty(
        &server,
        dir.path(),
        &[],
        &["--ttl", "1s"],
        &[("RR_FAULT_FORK_STALL_MS", "1500")],
        "sleep 5",
    );
    let child = spawn_piped(&mut cmd);
    let out = wait_output(child, Duration::from_secs(20));
    assert!(
        !pidfile.exists(),
        "the command started 1.5 s after a 1 s lease was granted"
    );
    assert_exit(&out, 70);
}

/// The guardian cannot be started (fork fails): nothing is run, exit 70,
/// and the reason is printed at the default level.
#[test]
fn no_guardian_no_run() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut cmd, k, pidfile) = faulty(
        &server,
        dir.path(),
        &[],
        &[],
        &[("RR_FAULT_FORK", "fail")],
        "true",
    );
    let out = wait_output(spawn_piped(&mut cmd), Duration::from_secs(20));
    assert_exit(&out, 70);
    assert!(!pidfile.exists(), "the command ran without a guardian");
    assert!(stderr(&out).contains("guardian"), "{}", stderr(&out));
    assert!(!server.exists(&k), "lock left behind");
}

/// The guardian holds none of the caller's descriptors: a pipe the caller
/// passes down (inherited, not close-on-exec) is not kept open by it.
#[test]
fn the_guardian_keeps_none_of_the_callers_descriptors() {
    use std::os::fd::AsRawFd;
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("fds");
    let pidfile = dir.path().join("pid");
    let (r, w) = nix::unistd::pipe().unwrap();
    // Inherited across exec: clear close-on-exec on the write end.
    nix::fcntl::fcntl(
        &w,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();
    let inode = std::fs::read_link(format!("/proc/self/fd/{}", w.as_raw_fd())).unwrap();
    let mut cmd = rr(&server);
    cmd.args(["--key", &k]);
    sh_cmd(&mut cmd, &pidfile, "sleep 30");
    let mut child = spawn_piped(&mut cmd);
    read_pid(&pidfile);
    let g = crate::support::guardian_of(child.id() as i32).expect("a guardian");
    let held: Vec<_> = std::fs::read_dir(format!("/proc/{g}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    drop((r, w));
    assert!(
        !held.contains(&inode),
        "the guardian holds the caller's pipe {inode:?}: {held:?}"
    );
    assert!(held.len() <= 5, "the guardian holds {held:?}");
}
