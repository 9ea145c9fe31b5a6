//! A terminal with `stty tostop`: once the command's group has the
//! foreground, a write by redlock-run to the terminal would stop it with
//! SIGTTOU, and a stopped redlock-run stops nothing. It must ignore the
//! job-control stops (its command keeps the default dispositions), and the
//! deadline must not depend on it anyway.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    RedisServer, assert_status, attach_pty, bin, key, read_pid, wait_gone, wait_output,
};

/// Start `redlock-run ARGS` as the session leader and foreground job of a
/// new pseudo-terminal on which `stty tostop` is set; returns the child and
/// the master side (kept open and drained by a thread).
fn in_tostop_terminal(
    server: &RedisServer,
    args: &[String],
) -> (std::process::Child, std::thread::JoinHandle<Vec<u8>>) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("stty tostop && exec \"$0\" \"$@\"")
        .arg(bin())
        .args(args)
        .env("REDLOCK_REDIS", server.url())
        .env_remove("REDLOCK_LOG");
    let mut master = attach_pty(&mut cmd, None);
    let child = cmd.spawn().expect("spawn in a pty");
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        let _ = master.as_raw_fd();
        all
    });
    (child, reader)
}

/// Redis stops answering while the command (in the foreground) runs: the
/// "could not renew" line goes to a tostop terminal. The command must die
/// before the lease can expire and redlock-run must exit 70 on its own.
#[test]
fn tostop_terminal_does_not_stop_redlock_run() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("tostop");
    let pidfile = dir.path().join("pid");
    let args: Vec<String> = [
        "--key",
        &k,
        "--ttl",
        "1s",
        "--",
        "sh",
        "-c",
        "echo $$ > \"$0\"; while :; do sleep 0.05; done",
        pidfile.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (child, reader) = in_tostop_terminal(&server, &args);
    let pid = read_pid(&pidfile);
    let t = Instant::now();
    let expires = t + Duration::from_millis(server.pttl(&k) as u64);
    server.pause();
    let dead = wait_gone(pid, Duration::from_secs(5));
    server.resume();
    assert!(
        dead < expires,
        "the command died {:?} after the lease could expire",
        dead - expires
    );
    let out = wait_output(child, Duration::from_secs(10));
    let screen = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    assert_status(&out, 70, &format!("terminal:\n{screen}"));
    assert!(
        screen.contains("renew"),
        "the error line reached the terminal:\n{screen}"
    );
}
