//! Run history (spec, "Run history in `status`"): each finished run is
//! recorded next to the lock in the release's own round trip, capped, and
//! shown by `status` (last run in text, `last_runs` in JSON), for runs that
//! succeed, fail, are signalled or lose the lock, for `schedule` ticks,
//! and never at the cost of the run's exit code.

use std::time::Duration;

use crate::support::*;

/// `redlock-run --key K EXTRA -- sh -c SCRIPT`, to say what it must give.
fn run<'a>(server: &'a RedisServer, k: &str, extra: &[&str], script: &str) -> Rr<'a> {
    Rr::on(server)
        .args(["--key", k])
        .args(extra)
        .args(["--", "sh", "-c", script])
}

#[test]
pub(crate) fn ok_failed_and_signalled_runs_are_recorded_newest_first() {
    let server = RedisServer::start();
    let k = key("history-outcomes");
    run(&server, &k, &["--label", "nightly"], "exit 0")
        .status(0)
        .run();
    run(&server, &k, &[], "exit 3").status(3).run();
    run(&server, &k, &[], "kill -TERM $$")
        .status(128 + 15)
        .run();

    let (_, v) = status_json(&server, &k);
    let runs = v["last_runs"].as_array().expect("last_runs");
    assert_eq!(runs.len(), 3, "{v}");
    let got: Vec<(&str, i64, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap(),
                r["exit_code"].as_i64().unwrap(),
                r["fencing_token"].as_u64().unwrap(),
            )
        })
        .collect();
    let outcomes: Vec<(&str, i64)> = got.iter().map(|(o, c, _)| (*o, *c)).collect();
    assert_eq!(
        outcomes,
        [("signalled", 143), ("failed", 3), ("ok", 0)],
        "{v}"
    );
    assert!(
        got.windows(2).all(|w| w[0].2 > w[1].2),
        "newest first, each with a greater token: {v}"
    );
    let first = &runs[2];
    for field in [
        "host",
        "pid",
        "command",
        "started",
        "ended",
        "duration_ms",
        "tick",
        "label",
    ] {
        assert!(first.get(field).is_some(), "no {field} in {first}");
    }
    assert_eq!(first["label"], "nightly");
    assert_eq!(first["command"], "sh");
    assert!(first["tick"].is_null());
    assert!(runs[1]["label"].is_null());
    let started = humantime::parse_rfc3339(first["started"].as_str().unwrap()).unwrap();
    let ended = humantime::parse_rfc3339(first["ended"].as_str().unwrap()).unwrap();
    assert!(ended >= started, "{first}");

    let o = Rr::on(&server)
        .args(["status", "--key", &k])
        .status(1)
        .run();
    let text = stdout(&o);
    let last = text
        .lines()
        .find(|l| l.trim_start().starts_with("last run:"))
        .unwrap_or_else(|| panic!("no last run line: {text}"));
    assert!(
        last.contains("signalled (exit 143)")
            && last.ends_with(&format!("fencing token {}", got[0].2)),
        "{last}"
    );
}

/// The lock is taken away while the command runs: the run exits 70 and is
/// recorded as lost.
#[test]
fn a_lost_run_is_recorded_as_lost() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("history-lost");
    let (h, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "1s"]);
    let _: () = server.query(&["DEL", &k]);
    let o = h.wait();
    assert_exit(&o, 70);
    let (_, v) = status_json(&server, &k);
    let r = &v["last_runs"][0];
    assert_eq!(r["outcome"], "lost", "{v}");
    assert_eq!(r["exit_code"], 70, "{v}");
    assert_eq!(
        v["last_runs"].as_array().unwrap().len(),
        1,
        "recorded once: {v}"
    );
}

#[test]
fn the_history_keeps_the_last_twenty_runs() {
    let server = RedisServer::start();
    let k = key("history-cap");
    // The tokens issued, as the counter shows each after its run.
    let mut issued: Vec<u64> = Vec::new();
    for _ in 0..23 {
        run(&server, &k, &[], "true").status(0).run();
        issued.push(server.get(&fence_key(&k)).unwrap().parse().unwrap());
    }
    let len: i64 = server.query(&["LLEN", &history_key(&k)]);
    assert_eq!(len, 20);
    let (_, v) = status_json(&server, &k);
    let tokens: Vec<u64> = v["last_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fencing_token"].as_u64().unwrap())
        .collect();
    assert_eq!(
        tokens,
        issued[3..].iter().rev().copied().collect::<Vec<u64>>()
    );
}

/// A history that cannot be written (its name holds another type) never
/// changes the exit code, and the lock is still released.
#[test]
fn recording_never_fails_a_run() {
    let server = RedisServer::start();
    let k = key("history-broken");
    let _: () = server.query(&["SET", &history_key(&k), "not a list"]);
    let o = run(&server, &k, &["-v"], "exit 0").status(0).run();
    assert!(!server.exists(&k), "lock left behind");
    assert!(!stderr(&o).contains("could not release"), "{}", stderr(&o));
}

/// `--min-hold` keeps the lock after the command ended; the run is
/// recorded at once, not when the hold ends.
#[test]
fn a_run_under_min_hold_is_recorded_when_the_command_ends() {
    let server = RedisServer::start();
    let k = key("history-min-hold");
    run(&server, &k, &["--min-hold", "1h"], "exit 0")
        .status(0)
        .run();
    assert!(server.exists(&k), "held for --min-hold");
    let (_, v) = status_json(&server, &k);
    assert_eq!(v["last_runs"][0]["outcome"], "ok", "{v}");
}

#[test]
fn schedule_records_the_tick() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ticks");
    let k = key("history-schedule");
    let mut child = spawn_piped(
        rr(&server)
            .args(["schedule", "--key", &k, "--every", "1s", "--"])
            .args(["sh", "-c", r#"echo "$REDLOCK_TICK" >> "$1""#, "sh"])
            .arg(&out),
    );
    let ticks = wait_for_file(&out, Duration::from_secs(10));
    let tick = ticks.lines().next().unwrap().to_string();
    wait_until("the tick to be recorded", Duration::from_secs(10), || {
        let n: i64 = server.query(&["LLEN", &history_key(&k)]);
        n >= 1
    });
    send_signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    let (_, v) = status_json(&server, &k);
    let runs = v["last_runs"].as_array().unwrap();
    let last = runs.last().unwrap();
    assert_eq!(last["tick"], tick.as_str(), "{v}");
    assert_eq!(last["outcome"], "ok", "{v}");
}

/// The README's "Did last night's job run?" recipe, run as written (its
/// shell block, with `redlock-run` on PATH and REDLOCK_REDIS set): the
/// line names the last run, and the monitoring check passes after an ok
/// run and fails after a failed one.
#[test]
fn the_readmes_status_jq_recipe_answers_from_real_runs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### Did last night's job run?")
        .nth(1)
        .expect("the recipe's section");
    // The commands of the section's two console transcripts (`$ ` and
    // `> ` lines), the line first, then the monitoring check.
    let block = section
        .split("```console\n")
        .skip(1)
        .take(2)
        .map(|b| {
            b.split("```")
                .next()
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.strip_prefix("$ ").or_else(|| l.strip_prefix("> ")))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(block.matches("redlock-run status").count(), 2, "{block}");
    let server = RedisServer::start();
    let path = format!(
        "{}:{}",
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let recipe = |k: &str| {
        output(
            std::process::Command::new("sh")
                .args(["-c", &block.replace("nightly-report", k)])
                .env("PATH", &path)
                .env("REDLOCK_REDIS", server.url()),
        )
    };
    let k = key("readme-jq");
    run(&server, &k, &["--label", "nightly"], "exit 0")
        .status(0)
        .run();
    let o = recipe(&k);
    let out = stdout(&o);
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.ends_with(&format!(" {host} ok exit 0")),
        "{out}\n{}",
        stderr(&o)
    );
    assert_status(&o, 0, &format!("the check after an ok run: {out}"));

    run(&server, &k, &[], "exit 4").status(4).run();
    let o = recipe(&k);
    assert!(
        stdout(&o).contains(&format!(" {host} failed exit 4")),
        "{}",
        stdout(&o)
    );
    assert_status(&o, 1, "the check after a failed run");
}
