//! Waiting in the open: while a wait lasts, a progress line on stderr says
//! who holds the lock (redrawn in place on a terminal, at most once a
//! minute off one); short waits, cron and `--quiet` show none; JSON logs
//! carry the same events; a broken stderr changes nothing.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// The progress lines (text format) in `err`.
fn progress_lines(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.contains("waiting for the lock"))
        .collect()
}

/// A wait of two seconds behind a holder: one line after about a second
/// naming the key, the holder (host, pid, command, since), the timeout and
/// our place in the queue; one line when the wait ends. The exit code is
/// still the conflict's.
#[test]
fn a_wait_over_a_second_says_who_holds_the_lock() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("progress");
    let (holder, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "10s"]);
    let o = Rr::on(&server)
        .args(["--key", &k, "--timeout", "2s", "--", "true"])
        .status(75)
        .run();
    let err = stderr(&o);
    let lines = progress_lines(&err);
    assert_eq!(
        lines.len(),
        2,
        "one line at the start, one at the end:\n{err}"
    );
    let first = lines[0];
    let host = nix::unistd::gethostname().unwrap();
    for want in [
        "redlock-run: info: waiting for the lock".to_string(),
        format!("key={k} "),
        format!("host={:?}", host.to_str().unwrap()),
        format!("pid={} ", holder.pid()),
        "command=\"sh\"".to_string(),
        "since=\"20".to_string(),
        "waited_s=1 ".to_string(),
        "timeout_s=2 ".to_string(),
        "position=1".to_string(),
    ] {
        assert!(first.contains(&want), "no {want:?} in {first:?}");
    }
    assert!(
        lines[1].contains("stopped waiting for the lock") && lines[1].contains("timed out"),
        "{err}"
    );
    // The usual error line still follows.
    assert!(err.contains("gave up waiting"), "{err}");
    drop(holder);
}

/// Off a terminal, a line at most once a minute: the waiter's clocks run
/// 30 times fast (libfaketime, monotonic time included), so its 150 s
/// wait takes 5 s: lines at 1 s, 61 s and 121 s, then the end.
#[test]
fn off_a_terminal_a_line_at_most_once_a_minute() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("progress-minute");
    let (_holder, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "30s"]);
    let o = Rr::on(&server)
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", "+0 x30")
        .env_remove("FAKETIME_DONT_FAKE_MONOTONIC")
        .args(["--key", &k, "--timeout", "150s", "--", "true"])
        .status(75)
        .run();
    let err = stderr(&o);
    let waited: Vec<u64> = progress_lines(&err)
        .iter()
        .filter(|l| !l.contains("stopped waiting"))
        .map(|l| {
            l.split("waited_s=")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no waited_s in {l:?}"))
        })
        .collect();
    assert_eq!(waited.len(), 3, "{err}");
    assert!(waited[0] >= 1, "{err}");
    assert!(waited.windows(2).all(|w| w[1] - w[0] >= 60), "{err}");
    assert!(err.contains("still waiting for the lock"), "{err}");
}

/// Redis does not answer for the whole wait: the progress line says so
/// (with the error), and the exit code is still 69.
#[test]
fn a_wait_for_an_unreachable_redis_says_so() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let o = Rr::urls(&[url])
        .args(["--key", "k", "--timeout", "2s", "--", "true"])
        .status(69)
        .run();
    let err = stderr(&o);
    let lines = progress_lines(&err);
    assert!(
        lines[0].contains("waiting for the lock (Redis does not answer)")
            && lines[0].contains("error=")
            && lines[0].contains("timeout_s=2"),
        "{err}"
    );
}

/// Silence where it is asked for: a wait shorter than a second, the cron
/// case (`--timeout 0`), and `-q`.
#[test]
fn short_waits_cron_and_quiet_show_no_progress() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("silent");
    let (_holder, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "10s"]);
    for (args, code) in [
        (&["--timeout", "500ms"][..], 75),
        (&["--timeout", "0"][..], 75),
        (&["--timeout", "2s", "-q"][..], 75),
        (&["--timeout", "2s", "-q", "--log-format", "json"][..], 75),
    ] {
        let o = Rr::on(&server)
            .args(["--key", &k])
            .args(args)
            .args(["--", "true"])
            .status(code)
            .run();
        let err = stderr(&o);
        assert!(
            progress_lines(&err).is_empty(),
            "{args:?} printed progress:\n{err}"
        );
        if args.contains(&"-q") || args == ["--timeout", "0"] {
            assert_eq!(err, "", "{args:?}: stderr not silent");
        }
    }
}

/// `--log-format json`: the same events as JSON lines, with the holder's
/// fields as JSON values.
#[test]
fn json_log_format_emits_the_same_events() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("progress-json");
    let (holder, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "10s"]);
    let o = Rr::on(&server)
        .args([
            "--key",
            &k,
            "--timeout",
            "2s",
            "--log-format",
            "json",
            "--",
            "true",
        ])
        .status(75)
        .run();
    let err = stderr(&o);
    let events: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let start = events
        .iter()
        .find(|v| v["message"] == "waiting for the lock")
        .unwrap_or_else(|| panic!("no start event in:\n{err}"));
    assert_eq!(start["level"], "INFO", "{start}");
    assert_eq!(start["key"].as_str(), Some(k.as_str()), "{start}");
    assert_eq!(
        start["pid"].as_i64(),
        Some(i64::from(holder.pid())),
        "{start}"
    );
    assert_eq!(start["command"], "sh", "{start}");
    assert_eq!(start["timeout_s"], 2, "{start}");
    assert_eq!(start["position"], 1, "{start}");
    assert!(
        start["since"]
            .as_str()
            .is_some_and(|s| humantime::parse_rfc3339(s).is_ok()),
        "{start}"
    );
    let end = events
        .iter()
        .find(|v| v["message"] == "stopped waiting for the lock")
        .unwrap_or_else(|| panic!("no end event in:\n{err}"));
    assert_eq!(end["outcome"], "timed out", "{end}");
}

/// stderr breaks during the wait (the reader goes away after the first
/// progress line): the next progress write fails with EPIPE, which is
/// ignored; the lock is still taken, the command runs, its code is ours,
/// and the lock is released.
#[test]
fn a_broken_stderr_during_the_wait_changes_nothing() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("progress-epipe");
    let (holder, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "10s"]);
    let ran = dir.path().join("ran");
    let mut child = rr(&server)
        .args([
            "--key",
            &k,
            "--timeout",
            "20s",
            "--",
            "sh",
            "-c",
            "echo ran > \"$0\"; exit 3",
        ])
        .arg(&ran)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains("waiting for the lock") {
        let n = err.read(&mut buf).unwrap();
        assert!(n > 0, "stderr closed before any progress");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(err);
    holder.finish();
    let o = wait_output(child, Duration::from_secs(20));
    assert_status(&o, 3, "the command's own code");
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "ran\n");
    assert!(!server.exists(&k), "lock left behind");
}

/// A process in a new pseudo-terminal (it is the session leader, the
/// terminal its controlling one, 200 columns wide); everything written to
/// the terminal is collected as it comes.
struct Pty {
    child: Option<Child>,
    screen: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    fn spawn(mut cmd: Command) -> Self {
        let mut master = attach_pty(&mut cmd, Some(200));
        let child = cmd.spawn().expect("spawn in a pty");
        // The parent's copies of the slave side are gone with `cmd`.
        drop(cmd);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the last slave descriptor is closed.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            child: Some(child),
            screen,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Wait (up to `limit`) until what was written contains `what`.
    fn wait_for(&self, what: &str, limit: Duration) {
        wait_until(&format!("{what:?} on the terminal"), limit, || {
            self.text().contains(what)
        });
    }

    /// Wait for the process to exit; returns its code and everything
    /// written to the terminal.
    fn finish(mut self) -> (Option<i32>, String) {
        let child = self.child.take().expect("running");
        let out = wait_output(child, Duration::from_secs(20));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (out.status.code(), self.text())
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// On a terminal: one line, redrawn in place (never a new line), with the
/// current holder: when the holder changes during the wait (the waiter
/// queued ahead of us takes over), the line shows the new one. The line
/// is cleared before the command's output.
#[test]
fn on_a_terminal_one_line_follows_the_current_holder() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("pty");
    let (first, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "10s"]);
    // Queued ahead of the waiter under test.
    let second = Holder::spawn(
        &server,
        &k,
        dir.path(),
        &["--ttl", "10s", "--timeout", "30s"],
    );
    wait_until("the second holder queued", Duration::from_secs(10), || {
        queued(&server, &k) == 1
    });
    let mut cmd = rr(&server);
    cmd.args(["--key", &k, "--timeout", "30s", "--", "echo", "RAN"]);
    let pty = Pty::spawn(cmd);
    let first_shown = format!("pid {} (sh)", first.pid());
    pty.wait_for(&first_shown, Duration::from_secs(10));
    pty.wait_for("#2 in queue", Duration::from_secs(10));
    let text = pty.text();
    assert!(
        text.contains(&format!("waiting for lock \"{k}\": ")),
        "{text:?}"
    );
    assert!(text.contains(" of 30s; held by "), "{text:?}");
    assert!(text.contains(" since 20"), "{text:?}");

    // Hand-over to the second in line: the line follows.
    let second_pid = second.pid();
    first.finish();
    second.wait_ready(Duration::from_secs(10));
    pty.wait_for(&format!("pid {second_pid} (sh)"), Duration::from_secs(5));
    second.finish();

    let (code, text) = pty.finish();
    assert_eq!(code, Some(0), "{text:?}");
    let ran = text
        .find("RAN")
        .unwrap_or_else(|| panic!("no RAN in {text:?}"));
    let before = &text[..ran];
    assert!(
        !before.contains('\n'),
        "the progress line scrolled: {before:?}"
    );
    let last_draw = before.rfind("waiting for lock").expect("a draw");
    assert!(
        before[last_draw..].contains("\r\x1b[2K"),
        "the line was not cleared before the command ran: {before:?}"
    );
    assert!(!text[ran..].contains("waiting"), "{text:?}");
}

/// On a terminal too: `-q` shows nothing, and `--log-format json` writes
/// JSON lines, never the redrawn line.
#[test]
fn on_a_terminal_quiet_is_silent_and_json_stays_json() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("pty-quiet");
    let (_holder, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "10s"]);
    let run = |extra: &[&str]| {
        let mut cmd = rr(&server);
        cmd.args(["--key", &k, "--timeout", "2s"])
            .args(extra)
            .args(["--", "true"]);
        Pty::spawn(cmd).finish()
    };
    let (code, text) = run(&["-q"]);
    assert_eq!(code, Some(75), "{text:?}");
    assert_eq!(text, "", "-q on a terminal");

    let (code, text) = run(&["--log-format", "json"]);
    assert_eq!(code, Some(75), "{text:?}");
    assert!(
        !text.contains('\x1b'),
        "a redrawn line in JSON mode: {text:?}"
    );
    let start = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l.trim_end()).unwrap_or_else(|e| panic!("{e}: {l:?}"))
        })
        .find(|v| v["message"] == "waiting for the lock");
    assert!(start.is_some_and(|v| v["key"] == k.as_str()), "{text:?}");
}
