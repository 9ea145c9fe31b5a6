//! Waiting in the open (progress on stderr while a wait lasts) and every
//! lock at a glance (`list`), against real redis-server processes.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// The waiters' queue of a key (a sorted set).
fn waiters_key(k: &str) -> String {
    format!("{{{k}}}:redlock-run:waiters")
}

fn queued(server: &RedisServer, k: &str) -> i64 {
    server.query(&["ZCARD", &waiters_key(k)])
}

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
    let o = output(rr(&server).args(["--key", &k, "--timeout", "2s", "--", "true"]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(75), "{err}");
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
    let o = output(
        rr(&server)
            .env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", "+0 x30")
            .env_remove("FAKETIME_DONT_FAKE_MONOTONIC")
            .args(["--key", &k, "--timeout", "150s", "--", "true"]),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(75), "{err}");
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
    let o = output(rr_urls(&[url]).args(["--key", "k", "--timeout", "2s", "--", "true"]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(69), "{err}");
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
        let o = output(
            rr(&server)
                .args(["--key", &k])
                .args(args)
                .args(["--", "true"]),
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
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
    let o = output(rr(&server).args([
        "--key",
        &k,
        "--timeout",
        "2s",
        "--log-format",
        "json",
        "--",
        "true",
    ]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(75), "{err}");
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
    assert_eq!(o.status.code(), Some(3), "the command's own code");
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

/// `list` in text form: the rows (header left out), each split on runs of
/// two or more blanks.
pub(crate) fn list_rows(text: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with("KEY "), "no header in {text:?}");
    lines
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

fn list_json(urls: &[String], args: &[&str]) -> Vec<Value> {
    let o = output(rr_urls(urls).arg("list").args(args).arg("--json"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    match serde_json::from_str(stdout(&o).trim()) {
        Ok(Value::Array(a)) => a,
        other => panic!("list --json: {other:?}: {:?}", stdout(&o)),
    }
}

/// `redis-cli`-free bulk fill: `n` plain keys named `prefix:i`.
fn fill(server: &RedisServer, prefix: &str, n: usize) {
    let script = "for i = 1, tonumber(ARGV[2]) do redis.call('SET', ARGV[1] .. ':' .. i, i) end";
    let _: redis::Value = server.query(&["EVAL", script, "0", prefix, &n.to_string()]);
}

/// A lock held through the tool (its description beside it) written
/// straight into Redis, as a holder on another host would leave it.
fn fake_lock(server: &RedisServer, k: &str, pid: u32) {
    let token = format!("tok-{pid}");
    let info = serde_json::json!({
        "host": "elsewhere", "pid": pid, "command": "job",
        "since_ms": 1_700_000_000_000u64, "token": token,
    })
    .to_string();
    let _: () = server.query(&["SET", k, &token, "PX", "60000"]);
    let holder = format!("{{{k}}}:redlock-run:holder");
    let _: () = server.query(&["SET", &holder, &info, "PX", "60000"]);
}

/// A keyspace of 5,000 unrelated keys, three locks held through the tool,
/// one released lock (its fencing counter stays) and one lock taken by
/// another client: `list` shows exactly the three, or those matching the
/// glob; it walks the keyspace with SCAN and never sends KEYS.
#[test]
pub(crate) fn list_finds_exactly_the_locks_among_thousands_of_keys() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let p = key("list");
    let [a, b, c] = ["deploy-a", "deploy-b", "backup"].map(|n| format!("{p}-{n}"));
    fill(&server, &format!("{p}-junk"), 5000);
    // A run of a before its holder: its last run.
    let o = output(rr(&server).args(["--key", &a, "--", "true"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (ha, env_a) = Holder::start(&server, &a, dir.path(), &["--ttl", "20s"]);
    let (hb, _) = Holder::start(&server, &b, dir.path(), &["--ttl", "20s"]);
    let (hc, _) = Holder::start(&server, &c, dir.path(), &["--ttl", "20s"]);
    let o = output(rr(&server).args(["--key", &format!("{p}-done"), "--", "true"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let _: () = server.query(&["SET", &format!("{p}-other"), "x", "PX", "60000"]);
    // A waiter on a, queued.
    let waiter = spawn_piped(rr(&server).args(["--key", &a, "--timeout", "30s", "--", "true"]));
    wait_until("the waiter queued", Duration::from_secs(10), || {
        queued(&server, &a) == 1
    });
    let _: () = server.query(&["CONFIG", "RESETSTAT"]);

    let o = output(rr(&server).arg("list"));
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no note without the cap");
    let rows = list_rows(&text);
    let listed: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(listed, [&c, &a, &b], "{text}");
    for (row, h) in rows.iter().zip([&hc, &ha, &hb]) {
        assert!(row[1].contains(&format!("pid {} (sh)", h.pid())), "{row:?}");
        assert!(humantime::parse_rfc3339(&row[2]).is_ok(), "since: {row:?}");
        assert!(row[3].ends_with('s'), "ttl: {row:?}");
    }
    assert_eq!(rows[1][4], env_a.fencing.to_string(), "{text}");
    assert_eq!(rows[1][5], "1", "one waiter on {a}: {text}");
    assert_eq!(rows[0][5], "0", "{text}");
    assert!(rows[1][6].starts_with("ok 20"), "a's last run: {text}");
    assert_eq!(rows[0][6], "-", "no run of c ended yet: {text}");

    let stats: String = server.query(&["INFO", "commandstats"]);
    assert!(!stats.contains("cmdstat_keys:"), "KEYS was sent:\n{stats}");
    let scans: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_scan:calls="))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no SCAN in:\n{stats}"));
    assert!(scans >= 5, "5,000 keys walked in {scans} SCAN call(s)");

    // The glob, and the JSON form: one array of status-shaped objects.
    let urls = [server.url()];
    let all = list_json(&urls, &[&format!("{p}-deploy-*")]);
    let keys: Vec<&str> = all.iter().map(|v| v["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [&a, &b]);
    let o = output(rr(&server).args(["status", "--key", &a, "--json"]));
    let status: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let mut fields: Vec<&String> = all[0].as_object().unwrap().keys().collect();
    fields.retain(|f| *f != "waiters");
    let want: Vec<&String> = status.as_object().unwrap().keys().collect();
    assert_eq!(fields, want, "{} vs {status}", all[0]);
    assert_eq!(all[0]["holder"], status["holder"]);
    assert_eq!(all[0]["fencing_token"], status["fencing_token"]);
    assert_eq!(all[0]["waiters"], 1, "{}", all[0]);
    assert!(all.iter().all(|v| v["held"] == true));

    // Nothing matches: exit 0, an empty array.
    assert!(list_json(&urls, &["no-such-*"]).is_empty());
    let o = output(rr(&server).args(["list", "no-such-*"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("no lock"), "{}", stdout(&o));

    // Released: gone from the list.
    hb.finish();
    let keys: Vec<String> = list_json(&urls, &[])
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, [c.clone(), a.clone()]);
    drop(waiter);
}

/// The cap: `--max` locks at most, and a note on stderr (never in the
/// JSON) when there were more; 1,000 by default.
#[test]
fn list_stops_at_the_cap_with_a_note() {
    let server = RedisServer::start();
    let p = key("cap");
    for i in 0..1001 {
        fake_lock(&server, &format!("{p}-{i:04}"), 1000 + i);
    }
    fill(&server, &format!("{p}-junk"), 2000);
    let o = output(rr(&server).args(["list", "--max", "3"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = list_rows(&stdout(&o));
    let listed: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    // Three of the locks (which three is up to SCAN's order), sorted.
    assert!(listed.is_sorted(), "{listed:?}");
    for (l, row) in listed.iter().zip(&rows) {
        let i: u32 = l
            .strip_prefix(&format!("{p}-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a lock: {l}"));
        assert!(i < 1001, "{l}");
        assert!(
            row[1].contains(&format!("elsewhere pid {} (job)", 1000 + i)),
            "{row:?}"
        );
    }
    assert!(
        stderr(&o).contains("note: showing 3 locks"),
        "{}",
        stderr(&o)
    );

    // Large outputs: read while the process runs.
    let big = |args: &[&str]| {
        output_with_input(
            rr(&server).arg("list").args(args),
            Vec::new(),
            Duration::from_secs(60),
        )
    };
    let o = big(&["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let all: Vec<Value> = serde_json::from_str(stdout(&o).trim()).expect("stdout is JSON alone");
    assert_eq!(all.len(), 1000, "the default cap");
    assert!(stderr(&o).contains("(--max 1000)"), "{}", stderr(&o));

    let o = big(&["--max", "1001"]);
    assert_eq!(list_rows(&stdout(&o)).len(), 1001);
    assert_eq!(stderr(&o), "", "not capped");

    let o = output(rr(&server).args(["list", "--max", "0"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Three masters: a lock held on a quorum is listed (with how many masters
/// agree), one held on a single master is not; with one master down the
/// quorum still answers; with two down, 69.
#[test]
fn list_over_a_quorum_shows_what_a_quorum_agrees_on() {
    let mut servers = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let dir = tempfile::tempdir().unwrap();
    let k = key("list-quorum");
    let minority = key("list-minority");
    fake_lock(&servers[0], &minority, 7);
    let ready = dir.path().join("ready");
    let mut holder = rr_urls(&urls)
        .args([
            "--key",
            &k,
            "--",
            "sh",
            "-c",
            "echo $REDLOCK_FENCING_TOKEN > \"$0\"; read x",
        ])
        .arg(&ready)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let fencing: u64 = wait_for_file(&ready, Duration::from_secs(10))
        .trim()
        .parse()
        .unwrap();

    let o = output(rr_urls(&urls).arg("list"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = list_rows(&stdout(&o));
    assert_eq!(rows.len(), 1, "{}", stdout(&o));
    assert_eq!(rows[0][0], k);
    assert!(
        rows[0][1].contains(&format!("pid {}", holder.id())),
        "{rows:?}"
    );
    assert_eq!(rows[0][4], fencing.to_string());
    assert_eq!(rows[0][7], "3/3", "{rows:?}");
    let all = list_json(&urls, &[]);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["quorum"], 2);
    assert_eq!(all[0]["masters"].as_array().map(Vec::len), Some(3));

    servers[2].kill();
    let o = output(rr_urls(&urls).arg("list"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = list_rows(&stdout(&o));
    assert_eq!(rows.len(), 1, "{}", stdout(&o));
    assert_eq!(rows[0][7], "2/3", "{rows:?}");

    servers[1].kill();
    let o = output(rr_urls(&urls).args(["list", "--json"]));
    assert_eq!(o.status.code(), Some(69), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "no JSON that could read as 'nothing held'");
    assert!(stderr(&o).contains("cannot list locks"), "{}", stderr(&o));
    drop(holder.stdin.take());
    let _ = wait_output(holder, Duration::from_secs(20));
}

/// One of three masters hangs (SIGSTOP): its scan times out once, and
/// the locks are then read from the masters that answered, not each after
/// a timeout of its own (4 locks took 5 s + 4 x 5 s that way).
#[test]
fn list_with_a_hung_master_waits_for_it_once() {
    let servers = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let p = key("list-hung");
    for i in 0..4 {
        for s in &servers {
            fake_lock(s, &format!("{p}-{i}"), 100 + i);
        }
    }
    servers[2].pause();
    let start = std::time::Instant::now();
    let o = output(rr_urls(&urls).arg("list"));
    let took = start.elapsed();
    servers[2].resume();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = list_rows(&stdout(&o));
    assert_eq!(rows.len(), 4, "{}", stdout(&o));
    assert!(rows.iter().all(|r| r[7] == "2/3"), "{rows:?}");
    // One I/O timeout (5 s) for the hung master, plus slack.
    assert!(took < Duration::from_secs(12), "list took {took:?}");
}

/// Redis down: exit 69 and one error line, for text and JSON.
#[test]
fn list_of_unreachable_redis_is_69() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    for json in [false, true] {
        let mut cmd = rr_urls(std::slice::from_ref(&url));
        cmd.arg("list");
        if json {
            cmd.arg("--json");
        }
        let o = output(&mut cmd);
        assert_eq!(o.status.code(), Some(69), "{}", stderr(&o));
        assert_eq!(stdout(&o), "");
        assert!(
            stderr(&o).starts_with("redlock-run: error: cannot list locks"),
            "{}",
            stderr(&o)
        );
    }
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
