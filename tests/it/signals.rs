//! Signals: what is sent to redlock-run reaches the command's process
//! group, a second interrupt escalates, and the command (with anything it
//! left in its group) never outlives redlock-run or the lock. Ctrl-Z in
//! the foreground of a terminal does not stop the command.
//!
//! Every command writes a ready marker once it has set its traps; the test
//! waits for that file instead of sleeping.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use redlock_run::LOST;

use crate::support::*;

#[test]
fn forwarded_signals_reach_the_command_and_its_status_is_ours() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let signals = [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ];
    // All six at once, each under its own key, each exiting with its own code.
    let runs: Vec<_> = signals
        .iter()
        .enumerate()
        .map(|(i, &sig)| {
            let name = sig.as_str().trim_start_matches("SIG");
            let code = 10 + i as i32;
            let key = key(&format!("fwd-{name}"));
            // No core files from a SIGQUIT'd `sleep`.
            let script = format!(
                "ulimit -c 0; trap 'echo {name} > {name}.got; exit {code}' {name}; \
                 echo ready > {name}.ready; while :; do sleep 0.05; done"
            );
            let child = Sh::new(&[server.url()], &key, dir.path(), &script).start();
            (sig, name, code, key, child)
        })
        .collect();
    for (sig, name, _, _, child) in &runs {
        wait_for_file(&dir.path().join(format!("{name}.ready")), READY);
        send_signal(child.id(), *sig);
    }
    for (sig, name, code, key, child) in runs {
        let out = wait_output(child, DONE);
        assert_status(
            &out,
            code,
            &format!("{sig}: redlock-run should exit with the command's status"),
        );
        let got = std::fs::read_to_string(dir.path().join(format!("{name}.got")))
            .unwrap_or_else(|_| panic!("{sig} never reached the command"));
        assert_eq!(got.trim(), name);
        assert!(!server.exists(&key), "{sig}: the lock was not released");
    }
}

#[test]
fn command_killed_by_untrapped_sigterm_exits_143() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("term");
    let (child, pid) = Sh::new(
        &[server.url()],
        &key,
        dir.path(),
        "echo $$ > ready; while :; do sleep 0.05; done",
    )
    .start_ready();
    send_signal(child.id(), Signal::SIGTERM);
    let out = wait_output(child, DONE);
    assert_exit(&out, 143);
    assert!(!alive(pid));
    assert!(!server.exists(&key));
}

#[test]
fn second_sigint_kills_a_command_that_survives_the_first() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("int2");
    // The trap handles INT and carries on: the command survives it.
    let (mut child, pid) = Sh::new(
        &[server.url()],
        &key,
        dir.path(),
        "trap 'echo int >> got' INT; echo $$ > ready; while :; do sleep 0.05; done",
    )
    .start_ready();

    send_signal(child.id(), Signal::SIGINT);
    // The trap ran, so redlock-run has handled the first SIGINT (signals
    // sent before it did could be merged into one).
    wait_for_file(&dir.path().join("got"), READY);
    assert!(alive(pid), "the command should survive the first SIGINT");
    assert!(child.try_wait().unwrap().is_none());
    assert!(
        server.exists(&key),
        "the lock is held while the command runs"
    );

    send_signal(child.id(), Signal::SIGINT);
    let out = wait_output(child, DONE);
    assert_status(&out, 137, "a second SIGINT should SIGKILL the command");
    assert!(!alive(pid));
    assert!(!server.exists(&key));
}

#[test]
fn sigkill_of_redlock_run_kills_the_command() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("pdeath");
    let (mut child, pid) = Sh::new(
        &[server.url()],
        &key,
        dir.path(),
        "echo $$ > ready; exec sleep 1000",
    )
    .start_ready();
    assert!(alive(pid));
    send_signal(child.id(), Signal::SIGKILL);
    child.wait().unwrap();
    wait_gone(pid, Duration::from_secs(5));
}

/// PR_SET_PDEATHSIG reaches only the command itself; what it started
/// (here a background sleep of a shell script) is killed by the guardian
/// when redlock-run dies, so that nothing runs on without the lock. The
/// guardian leaves with it.
#[test]
fn sigkill_of_redlock_run_kills_what_the_command_started() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("guardian");
    let (mut child, sh) = Sh::new(
        &[server.url()],
        &key,
        dir.path(),
        "sleep 1000 & echo $! > bg; echo $$ > ready; wait",
    )
    .start_ready();
    let bg = read_pid(&dir.path().join("bg"));
    assert!(alive(sh) && alive(bg));
    let ours = processes_with_arg(&key);
    assert_eq!(
        ours.len(),
        2,
        "redlock-run and its guardian, by the key on their command line: {ours:?}"
    );
    send_signal(child.id(), Signal::SIGKILL);
    child.wait().unwrap();
    wait_gone(sh, Duration::from_secs(5));
    wait_gone(bg, Duration::from_secs(5));
    wait_guardian_gone(&key);
}

/// `timeout -s KILL` and some supervisors SIGKILL the whole process group
/// redlock-run runs in: the guardian has a group of its own, survives that,
/// and still kills what the command started.
#[test]
fn sigkill_of_redlock_runs_whole_group_still_kills_what_the_command_started() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("guardian-group");
    let mut cmd = Sh::new(
        &[server.url()],
        &key,
        dir.path(),
        "sleep 1000 & echo $! > bg; echo $$ > ready; wait",
    )
    .command();
    cmd.process_group(0);
    let mut child = spawn_piped(&mut cmd);
    let sh = read_pid(&dir.path().join("ready"));
    let bg = read_pid(&dir.path().join("bg"));
    assert!(alive(sh) && alive(bg));
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    wait_gone(sh, Duration::from_secs(5));
    wait_gone(bg, Duration::from_secs(5));
    wait_guardian_gone(&key);
}

/// The guardian (a fork of redlock-run, so with the same command line)
/// leaves once redlock-run is gone.
fn wait_guardian_gone(key: &str) {
    wait_until("the guardian to leave", Duration::from_secs(5), || {
        processes_with_arg(key).is_empty()
    });
}

/// Live processes whose command line has `arg` as one of its arguments.
fn processes_with_arg(arg: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn leftover_group_members_are_stopped_before_release() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("leftover");
    let out = wait_output(
        Sh::new(
            &[server.url()],
            &key,
            dir.path(),
            "sleep 1000 & echo $! > bg; exit 0",
        )
        .start(),
        DONE,
    );
    assert_exit(&out, 0);
    let bg = read_pid(&dir.path().join("bg"));
    assert!(!alive(bg), "the background sleep outlived redlock-run");
    assert!(!server.exists(&key));
    // The guardian (a fork of redlock-run) leaves with it, signalling
    // nothing: the group it guarded is gone and its id may be reused.
    wait_guardian_gone(&key);
}

#[test]
fn leftover_still_holds_the_lock_while_it_is_being_stopped() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("leftover-order");
    // The command leaves a member behind whose SIGTERM trap reports, then
    // lingers until the test says `go`: the job is not over (and the lock
    // not released) while it is alive.
    let script = "echo \"$REDLOCK_TOKEN\" > token; \
        sh -c 'trap \"echo term > seen; while [ ! -e go ]; do sleep 0.01; done; exit 0\" TERM; \
        echo $$ > bg; while :; do sleep 0.05; done' & \
        while [ ! -s bg ]; do sleep 0.01; done; exit 0";
    let mut child = Sh::new(&[server.url()], &key, dir.path(), script).start();
    let bg = read_pid(&dir.path().join("bg"));
    wait_for_file(&dir.path().join("seen"), READY);
    let token = std::fs::read_to_string(dir.path().join("token")).unwrap();
    assert_eq!(
        server.get(&key).as_deref(),
        Some(token.trim()),
        "the lock should still be ours while the leftover is being stopped"
    );
    assert!(child.try_wait().unwrap().is_none());
    std::fs::write(dir.path().join("go"), "").unwrap();
    let out = wait_output(child, DONE);
    assert_exit(&out, 0);
    assert!(!alive(bg));
    assert!(!server.exists(&key));
}

#[test]
fn command_ignoring_sigterm_is_killed_after_kill_after_on_lost_lock() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = key("kill-after");
    // Handles SIGTERM and carries on, so only SIGKILL can stop it.
    let (child, pid) = Sh::new(
        &[server.url()],
        &key,
        dir.path(),
        "trap 'echo term >> got' TERM; echo $$ > ready; while :; do sleep 0.05; done",
    )
    .opts(&["--ttl", "2s", "--kill-after", "300ms"])
    .start_ready();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("other")
        .query(&mut server.conn())
        .unwrap();
    let taken = Instant::now();
    let out = wait_output(child, DONE);
    let took = taken.elapsed();
    assert_exit(&out, LOST);
    assert!(
        std::fs::read_to_string(dir.path().join("got")).is_ok_and(|s| s.contains("term")),
        "SIGTERM should come first"
    );
    assert!(!alive(pid), "SIGKILL should follow the ignored SIGTERM");
    assert!(
        took >= Duration::from_millis(300),
        "SIGKILL came before --kill-after ran out ({took:?})"
    );
    // Found at the next renewal (--refresh ttl/3), then 300 ms of grace:
    // well inside one lease.
    assert!(
        took < Duration::from_secs(2),
        "stopping took {took:?}, longer than the lease"
    );
    assert_eq!(server.get(&key).as_deref(), Some("other"));
}

/// The signals whose default action would end redlock-run and that are
/// not forwarded (the spec's "handled like SIGTERM"), as numbers: the
/// real-time ones have no `nix` name.
fn stopping_signals() -> Vec<(i32, String)> {
    let mut all: Vec<(i32, String)> = [
        Signal::SIGALRM,
        Signal::SIGVTALRM,
        Signal::SIGPROF,
        Signal::SIGXCPU,
        Signal::SIGXFSZ,
        Signal::SIGTRAP,
        Signal::SIGIO,
        Signal::SIGPWR,
        Signal::SIGSTKFLT,
        Signal::SIGABRT,
    ]
    .iter()
    .map(|s| (*s as i32, s.as_str().to_string()))
    .collect();
    let (min, max) = (nix::libc::SIGRTMIN(), nix::libc::SIGRTMAX());
    all.push((min, "SIGRTMIN".into()));
    all.push((min + 3, "SIGRTMIN+3".into()));
    all.push((max, "SIGRTMAX".into()));
    all
}

/// `kill(pid, signo)` for any signal number (real-time ones included).
fn send_raw(pid: u32, signo: i32) {
    // SAFETY: kill(2) on plain integers, to a process this test started.
    nix::errno::Errno::result(unsafe { nix::libc::kill(pid as i32, signo) })
        .unwrap_or_else(|e| panic!("kill -{signo} {pid}: {e}"));
}

/// SIGALRM, SIGXCPU, the real-time signals ... sent to a holder: the
/// command is stopped, the lock released within a second, the run
/// recorded as `signalled`, and redlock-run exits 128+N.
#[test]
fn terminating_signals_stop_the_command_release_and_record() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<_> = stopping_signals()
        .into_iter()
        .map(|(signo, name)| {
            let k = key(&format!("stop-{signo}"));
            // The command: a shell with a background job.
            let script = format!("echo $$ > {signo}.ready; sleep 30 & sleep 30");
            let child = Sh::new(&[server.url()], &k, dir.path(), &script).start();
            (signo, name, k, child)
        })
        .collect();
    let mut sent = Vec::new();
    for (signo, _, _, child) in &runs {
        read_pid(&dir.path().join(format!("{signo}.ready")));
        send_raw(child.id(), *signo);
        sent.push(Instant::now());
    }
    for ((signo, name, k, child), at) in runs.into_iter().zip(sent) {
        wait_until(&format!("{name}: the lock to go"), DONE, || {
            !server.exists(&k)
        });
        let took = at.elapsed();
        eprintln!("{name}: lock gone {took:?} after the signal");
        let out = wait_output(child, DONE);
        assert_status(&out, 128 + signo, &name.to_string());
        assert!(
            took < Duration::from_secs(1),
            "{name}: the lock went {took:?} after the signal"
        );
        let (_, v) = status_json(&server, &k);
        let last = &v["last_runs"][0];
        assert_eq!(last["outcome"], "signalled", "{name}: {v}");
        assert_eq!(last["exit_code"], 128 + signo, "{name}: {v}");
    }
}

/// A waiter sent one of them leaves the queue and exits 128+N; the holder
/// keeps the lock.
#[test]
fn terminating_signals_end_a_wait_and_leave_the_queue() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("stop-wait");
    let (holder, env) = Holder::start(&server, &k, dir.path(), &[]);
    let signals = stopping_signals();
    let waiters: Vec<_> = signals
        .iter()
        .map(|_| {
            spawn_piped(rr(&server).args(["--key", &k, "--timeout", "60s", "-q", "--", "true"]))
        })
        .collect();
    wait_until("every waiter in the queue", DONE, || {
        queued(&server, &k) == waiters.len() as i64
    });
    for ((signo, _), w) in signals.iter().zip(&waiters) {
        send_raw(w.id(), *signo);
    }
    for ((signo, name), w) in signals.iter().zip(waiters) {
        let out = wait_output(w, DONE);
        assert_status(&out, 128 + signo, &name.to_string());
    }
    assert_eq!(queued(&server, &k), 0);
    assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));
    holder.finish_ok();
}

/// In `schedule`, one of them stops the running command, releases the
/// lock, records the run and ends the schedule with 128+N.
#[test]
fn a_terminating_signal_stops_a_schedule_and_its_running_command() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("stop-schedule");
    let child = spawn_piped(
        rr(&server)
            .args(["schedule", "--key", &k, "--every", "1s", "--"])
            .args(["sh", "-c", "echo $$ > ready; sleep 30 & sleep 30"])
            .current_dir(dir.path()),
    );
    read_pid(&dir.path().join("ready"));
    send_signal(child.id(), Signal::SIGALRM);
    let at = Instant::now();
    wait_until("the lock to go", DONE, || !server.exists(&k));
    let took = at.elapsed();
    let out = wait_output(child, DONE);
    assert_exit(&out, 128 + 14);
    assert!(
        took < Duration::from_secs(1),
        "the lock went {took:?} after SIGALRM"
    );
    let (_, v) = status_json(&server, &k);
    assert_eq!(v["last_runs"][0]["outcome"], "signalled", "{v}");
    assert!(v["last_runs"][0]["tick"].is_string(), "{v}");
}

/// The guardian ignores them too (`pkill -ALRM redlock-run` reaches it):
/// it survives, and still kills what the command started when
/// redlock-run is SIGKILLed.
#[test]
fn the_guardian_survives_terminating_signals() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("stop-guardian");
    let mut child = Sh::new(
        &[server.url()],
        &k,
        dir.path(),
        "sleep 60 & echo $! > bg; echo $$ > ready; wait",
    )
    .start();
    read_pid(&dir.path().join("ready"));
    let bg = read_pid(&dir.path().join("bg"));
    let guardian = guardian_of(child.id() as i32).expect("a guardian");
    for (signo, _) in stopping_signals() {
        send_raw(guardian as u32, signo);
    }
    send_signal(child.id(), Signal::SIGKILL);
    child.wait().unwrap();
    let gone = std::panic::catch_unwind(|| wait_gone(bg, Duration::from_secs(5)));
    if gone.is_err() {
        let _ = nix::sys::signal::kill(Pid::from_raw(bg), Signal::SIGKILL);
        panic!("the guardian died of a signal: the command's background job outlived redlock-run");
    }
}

/// The state letter and the terminal's foreground group, from
/// /proc/PID/stat.
fn stat(pid: i32) -> (char, i32, i32) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    // state ppid pgrp session tty_nr tpgid
    (
        f[0].chars().next().unwrap(),
        f[2].parse().unwrap(),
        f[5].parse().unwrap(),
    )
}

/// "The command ignores Ctrl-Z (SIGTSTP)": redlock-run as the foreground
/// job of a terminal; once the command's group has the terminal, Ctrl-Z
/// typed on it must not stop the command (nor redlock-run), which runs to
/// its end, and the run exits 0.
#[test]
fn ctrl_z_in_the_foreground_does_not_stop_the_command() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("ctrl-z");
    let mut cmd = rr(&server);
    cmd.args(["--key", &k, "--", "sh", "-c"])
        .arg("echo $$ > pid; sleep 1; echo done > done")
        .current_dir(dir.path());
    let mut master = attach_pty(&mut cmd, None);
    let child = cmd.spawn().expect("spawn in a pty");
    // The Command keeps its copies of the slave side open: close them, or
    // the master never reads end-of-file.
    drop(cmd);
    let drain = {
        let mut m = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while matches!(std::io::Read::read(&mut m, &mut buf), Ok(n) if n > 0) {}
        })
    };
    // If an assertion fails with the command stopped, nothing would ever
    // end the run: kill redlock-run by PID (the guardian kills the group).
    struct KillOnPanic(i32);
    impl Drop for KillOnPanic {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), Signal::SIGKILL);
            }
        }
    }
    let _guard = KillOnPanic(child.id() as i32);
    let pid = read_pid(&dir.path().join("pid"));
    // The command's group has the terminal (it is what Ctrl-Z reaches).
    wait_until(
        "the command's group to be the foreground",
        Duration::from_secs(30),
        || {
            let (_, pgrp, tpgid) = stat(pid);
            pgrp == pid && tpgid == pid
        },
    );
    master.write_all(&[0x1a]).unwrap(); // ^Z, VSUSP
    // It would be stopped within milliseconds; look for a while.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        let (state, _, _) = stat(pid);
        assert_ne!(state, 'T', "Ctrl-Z stopped the command");
        assert_ne!(stat(child.id() as i32).0, 'T', "Ctrl-Z stopped redlock-run");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = wait_output(child, Duration::from_secs(30));
    drop(master);
    let _ = drain.join();
    assert_exit(&out, 0);
    assert!(
        dir.path().join("done").exists(),
        "the command did not finish"
    );
    assert!(!server.exists(&k), "lock left behind");
}
