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
    Rr::urls(&[url.to_string()])
        .args(args)
        .within(Duration::from_secs(10))
        .run()
}

fn assert_named(o: &Output, args: &[String], want: &str) {
    let (out, err) = (stdout(o), stderr(o));
    assert_status(o, 69, &format!("{args:?}: {out}{err}"));
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
        assert_exit(&o, 69);
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

/// A command line refused before anything touches Redis: exit 2, nothing on
/// stdout, at most four non-empty lines; returns the first one.
fn refused(args: &[&str]) -> String {
    // Nothing listens on port 1: a connection attempt would be an error
    // of another kind.
    let o = Rr::urls(&["redis://127.0.0.1:1".into()])
        .args(args)
        .within(Duration::from_secs(10))
        .status(2)
        .stdout("")
        .run();
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() <= 4, "{args:?}: {err}");
    lines[0].to_string()
}

#[test]
fn a_command_without_dashes_is_told_to_put_them() {
    for (args, arg) in [
        (&["--key", "k", "./report.sh"][..], "./report.sh"),
        (&["--key", "k", "echo", "hi"][..], "echo"),
    ] {
        let first = refused(args);
        assert!(
            first.starts_with(&format!(
                "error: unexpected argument '{arg}': put `--` before the command"
            )),
            "{args:?}: {first}"
        );
        assert!(first.contains(&format!("-- {arg}")), "{first}");
    }
}

#[test]
fn a_negative_duration_is_told_durations_are_not_negative() {
    for args in [
        &["--key", "k", "--timeout", "-1", "--", "true"][..],
        &["--key", "k", "--timeout=-1", "--", "true"][..],
        &["--key", "k", "--ttl", "-5s", "--", "true"][..],
        &["schedule", "--key", "k", "--every", "-10s", "--", "true"][..],
    ] {
        let first = refused(args);
        assert!(
            first.starts_with("error: ") && first.contains("durations are not negative"),
            "{args:?}: {first}"
        );
        assert!(!first.contains("use '--"), "{args:?}: {first}");
    }
    // A number too: not clap's tip to write `-- -1`.
    let first = refused(&["--key", "k", "-E", "-1", "--", "true"]);
    assert!(
        first.starts_with("error: invalid value '-1' for '-E <N>': N is never negative"),
        "{first}"
    );
}

#[test]
fn an_option_before_the_subcommand_is_told_where_options_go() {
    for (args, sub) in [
        (
            &[
                "-v", "schedule", "--key", "k", "--every", "1s", "--", "true",
            ][..],
            "schedule",
        ),
        (&["--key", "k", "status"][..], "status"),
    ] {
        let first = refused(args);
        assert!(
            first.starts_with(&format!(
                "error: options go after the subcommand: redlock-run {sub} [OPTIONS]"
            )),
            "{args:?}: {first}"
        );
    }
}

/// The TTL rule's error names what was given (or the defaults by name),
/// in durations a person reads, and states the real minimum.
#[test]
fn a_ttl_too_short_names_what_was_given_in_milliseconds() {
    for ttl in ["0", "500ms", "624ms"] {
        let first = refused(&["--key", "k", "--ttl", ttl, "--", "true"]);
        assert!(
            first.starts_with(&format!(
                "error: --ttl {} is too short",
                if ttl == "0" { "0s" } else { ttl }
            )) && first
                .contains("with the default --refresh (a third of --ttl) the minimum is 625ms"),
            "--ttl {ttl}: {first}"
        );
        assert!(!first.contains("--kill-after"), "--ttl {ttl}: {first}");
    }
    Rr::urls(&["redis://127.0.0.1:1".into()])
        .args(["--key", "k", "--ttl", "625ms", "--", "true"])
        .within(Duration::from_secs(10))
        .status(69)
        .run();

    let first = refused(&[
        "--key",
        "k",
        "--ttl",
        "1s",
        "--kill-after",
        "900ms",
        "--",
        "true",
    ]);
    assert!(
        first.starts_with("error: --kill-after 900ms does not fit in --ttl 1s with the default --refresh (333ms): at most 121ms does"),
        "{first}"
    );
    let first = refused(&[
        "--key",
        "k",
        "--ttl",
        "700ms",
        "--refresh",
        "300ms",
        "--",
        "true",
    ]);
    assert!(
        first.starts_with(
            "error: --ttl 700ms and --refresh 300ms leave no room for one missed renewal"
        ),
        "{first}"
    );
    for first in [
        refused(&["--key", "k", "--ttl", "500ms", "--", "true"]),
        refused(&[
            "--key",
            "k",
            "--ttl",
            "1s",
            "--kill-after",
            "900ms",
            "--",
            "true",
        ]),
    ] {
        assert!(!first.contains("us ") && !first.contains("ns"), "{first}");
    }
}

/// docs/reference.md states the minimum --ttl for the defaults that the
/// binary enforces.
#[test]
fn the_reference_states_the_real_minimum_ttl() {
    let reference =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md")).unwrap();
    let min = redlock_run::min_ttl(0).unwrap();
    let min = format!("{}ms", min.as_millis());
    assert!(
        reference.contains(&format!(
            "The shortest `--ttl` is {min} with the default `--refresh`"
        )) && reference.contains(&format!("the minimum is {min}\n")),
        "docs/reference.md does not state the minimum --ttl, {min}"
    );
}
