//! Without pub/sub the lock still works (spec, "Additions (2026-12-05)",
//! "Servers"; issue 22.3). Redis 7 gives a user created with
//! `ACL SETUSER job on >pw ~* +@all` no channels (`acl-pubsub-default`
//! is `resetchannels`): its releases cannot PUBLISH and its waiters cannot
//! SUBSCRIBE. The release still completes, reports truthfully and records
//! the run; a waiter polls, gets the free lock within a second of its
//! release, sends at most 2 commands per second while it waits, and says
//! once which permission is missing and which ACL rule grants it.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::*;

/// The commands clients send to `server` during `window` (seen with
/// `MONITOR`; the commands scripts run inside are not counted), and the
/// lines themselves.
fn monitor(server: &RedisServer, window: Duration) -> Vec<String> {
    let mut c = server.conn();
    c.send_packed_command(&redis::cmd("MONITOR").get_packed_command())
        .unwrap();
    let _: redis::Value = c.recv_response().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let end = Instant::now() + window;
    let mut lines = Vec::new();
    while Instant::now() < end {
        match c.recv_response() {
            Ok(redis::Value::SimpleString(line)) => {
                if !line.contains(" lua] ") {
                    lines.push(line);
                }
            }
            Ok(_) => {}
            Err(e) if e.is_timeout() => {}
            Err(e) => panic!("MONITOR: {e}"),
        }
    }
    lines
}

/// A holder of `k` through `url`, ready, and a waiter for it (`--timeout
/// 40s`) whose command writes `got` to the file returned.
fn holder_and_waiter(url: &str, k: &str, dir: &Path) -> (Holder, Child, PathBuf) {
    let holder = Holder::spawn_at(url, k, dir, &[]);
    holder.wait_ready(Duration::from_secs(10));
    let started = dir.join("waiter-started");
    let waiter = spawn_piped(
        rr_urls(&[url.to_string()])
            .args(["--key", k, "--timeout", "40s", "--", "sh", "-c"])
            .arg(format!("echo got > {}", started.display())),
    );
    (holder, waiter, started)
}

/// The two commands: one holds the lock, the other waits for it
/// with `--timeout 40s`. The waiter's command starts within a second of
/// the release; neither prints "could not release"; the waiter sends at
/// most 2 commands a second while waiting, and warns once, naming the
/// missing permission and the ACL rule that grants it; both runs are in
/// `status --json`'s `last_runs`.
#[test]
fn without_channels_a_waiter_polls_and_gets_the_lock_within_a_second_of_its_release() {
    let (server, url) = server_without_channels();
    let dir = tempfile::tempdir().unwrap();
    let k = key("nopubsub");
    let (holder, waiter, started) = holder_and_waiter(&url, &k, dir.path());
    wait_until("the waiter to queue", Duration::from_secs(10), || {
        queued(&server, &k) == 1
    });
    // What the waiter sends while it waits (the holder renews every
    // 10 s: not within these 5 s).
    let window = Duration::from_secs(5);
    let sent = monitor(&server, window);
    assert!(
        sent.len() as f64 / window.as_secs_f64() <= 2.0,
        "the waiter sent {} commands in {window:?}: {sent:#?}",
        sent.len()
    );
    let released = Instant::now();
    let h = holder.finish();
    wait_until("the waiter's command", Duration::from_secs(5), || {
        std::fs::read_to_string(&started).is_ok_and(|s| s == "got\n")
    });
    let after = released.elapsed();
    let w = wait_output(waiter, Duration::from_secs(10));
    let (h_err, w_err) = (stderr(&h), stderr(&w));
    assert_status(&h, 0, &h_err.to_string());
    assert_status(&w, 0, &w_err.to_string());
    assert!(
        after < Duration::from_secs(1),
        "the waiter started {after:?} after the release"
    );
    for err in [&h_err, &w_err] {
        assert!(!err.contains("could not release"), "{err}");
    }
    let warnings: Vec<&str> = w_err
        .lines()
        .filter(|l| l.contains("ACL SETUSER job &*"))
        .collect();
    assert_eq!(warnings.len(), 1, "{w_err}");
    assert!(warnings[0].contains("channel"), "{}", warnings[0]);
    let (_, v) = status_json_at(&[url], &k);
    let runs = v["last_runs"].as_array().expect("last_runs");
    assert_eq!(runs.len(), 2, "{v}");
    assert!(runs.iter().all(|r| r["outcome"] == "ok"), "{v}");
}

/// With `&*` granted (the rule the warning names), the same user's
/// waiter subscribes and does not warn.
#[test]
fn with_channels_granted_the_waiter_is_woken_and_does_not_warn() {
    let (server, url) = server_without_channels();
    let _: () = server.query(&["ACL", "SETUSER", "job", "&*"]);
    let dir = tempfile::tempdir().unwrap();
    let k = key("withpubsub");
    let (holder, waiter, _) = holder_and_waiter(&url, &k, dir.path());
    let channel = format!("{{{k}}}:redlock-run:released");
    wait_until("the waiter to subscribe", Duration::from_secs(10), || {
        server.subscribers(&channel) == 1
    });
    holder.finish_ok();
    let w = wait_output(waiter, Duration::from_secs(10));
    assert_exit(&w, 0);
    assert!(!stderr(&w).contains("ACL SETUSER"), "{}", stderr(&w));
}
