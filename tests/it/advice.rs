//! Errors that say what to do, first line first: a missing or refused
//! password and an ACL denial named as such in every mode (exit 69, the
//! password never shown), and the common first-day slips on the command
//! line (no `--`, a negative duration, an option before the subcommand,
//! a TTL too short for the defaults).

use std::process::Output;
use std::time::Duration;

use crate::support::*;

const PASSWORD: &str = "s3cret-pw";
const WRONG: &str = "wr0ng-pw";

/// The first line of stderr, without `schedule`'s timestamp.
fn first_line(o: &Output) -> String {
    let err = stderr(o);
    let line = err.lines().next().unwrap_or_default();
    match line.find("redlock-run") {
        Some(i) => line[i..].to_string(),
        None => line.to_string(),
    }
}

/// Every mode that talks to Redis, as the arguments after the URL.
fn modes(k: &str) -> Vec<Vec<String>> {
    let k = k.to_string();
    [
        vec!["--key", &k, "--", "true"],
        vec!["--key", &k, "--timeout", "3s", "--", "true"],
        vec!["schedule", "--key", &k, "--every", "1s", "--", "true"],
        vec!["status", "--key", &k],
        vec!["status", "--key", &k, "--json"],
        vec!["list"],
        vec!["release", "--key", &k, "--force"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect()
}

/// Run `args` against `url` (given in REDLOCK_REDIS), within 10 s.
fn run_at(url: &str, args: &[String]) -> Output {
    let mut c = rr_urls(&[url.to_string()]);
    output_within(c.args(args), Duration::from_secs(10))
}

fn assert_named(o: &Output, args: &[String], want: &str) {
    let (out, err) = (stdout(o), stderr(o));
    assert_eq!(o.status.code(), Some(69), "{args:?}: {out}{err}");
    let line = first_line(o);
    assert!(
        line.starts_with(&format!("redlock-run: error: {want}")),
        "{args:?}: first line {line:?}, all:\n{err}"
    );
    for secret in [PASSWORD, WRONG] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{args:?} shows a password:\n{out}{err}"
        );
    }
}

#[test]
fn a_missing_or_refused_password_is_named_in_every_mode() {
    let server = RedisServer::start_with_password(PASSWORD);
    let k = key("auth");
    let none = format!("redis://127.0.0.1:{}", server.port);
    let wrong = format!("redis://:{WRONG}@127.0.0.1:{}", server.port);
    for args in modes(&k) {
        let o = run_at(&none, &args);
        assert_named(
            &o,
            &args,
            "Redis requires a password: add it to the URL (redis://:PASSWORD@HOST:PORT) or use --redis-file",
        );
        let o = run_at(&wrong, &args);
        assert_named(&o, &args, "Redis refused the user name or password");
    }
    // doctor: its reachability check names it, with what to do; exit 69.
    for (url, want) in [
        (&none, "Redis requires a password"),
        (&wrong, "Redis refused the user name or password"),
    ] {
        let o = run_at(url, &["doctor".into(), "--key".into(), k.clone()]);
        assert_eq!(o.status.code(), Some(69), "{}", stdout(&o));
        let text = stdout(&o);
        let reachable = text
            .lines()
            .find(|l| l.contains("reachable"))
            .unwrap_or_default();
        assert!(
            reachable.starts_with("  fail") && reachable.contains(want),
            "{reachable:?} in\n{text}"
        );
        assert!(!text.contains(PASSWORD) && !text.contains(WRONG), "{text}");
    }
}

#[test]
fn an_acl_denial_is_named_in_every_mode() {
    let server = RedisServer::start();
    // A user that may connect and read nothing else: no script, no GET,
    // no SCAN.
    let _: String = server.query(&[
        "ACL",
        "SETUSER",
        "watcher",
        "on",
        &format!(">{PASSWORD}"),
        "~*",
        "&*",
        "+@connection",
        "+info",
    ]);
    let k = key("acl");
    let url = format!("redis://watcher:{PASSWORD}@127.0.0.1:{}", server.port);
    for args in modes(&k) {
        let o = run_at(&url, &args);
        assert_named(
            &o,
            &args,
            "the Redis user lacks a permission redlock-run needs (ACL)",
        );
    }
}
