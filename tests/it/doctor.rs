//! `redlock-run doctor` against real servers set up the ways operators get
//! them wrong: an evicting server, CONFIG renamed away (managed Redis), an
//! ACL user missing commands, a replica, one server listed twice, an even
//! number of masters, a host clock an hour off (libfaketime), nothing
//! reachable.

use serde_json::Value;

use crate::support::*;

/// `doctor` on `urls`, as (exit code, stdout, stderr).
fn doctor(urls: &[String], extra: &[&str]) -> (i32, String, String) {
    let mut c = rr_urls(urls);
    c.env_remove("LD_PRELOAD").env_remove("FAKETIME");
    doctor_with(c, extra)
}

fn doctor_with(mut c: std::process::Command, extra: &[&str]) -> (i32, String, String) {
    let o = output(c.args(["doctor", "--key", "doc"]).args(extra));
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

/// The line of check `name` (text form), e.g. "  fail  maxmemory-policy ...".
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} line in\n{out}"))
}

fn status(out: &str, name: &str) -> String {
    line(out, name)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
pub(crate) fn a_healthy_server_passes_every_check_one_line_each() {
    let server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    let (code, out, err) = doctor(&[server.url()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    for name in [
        "reachable",
        "version",
        "lua",
        "acl",
        "pubsub",
        "scan",
        "wait",
        "maxmemory-policy",
        "persistence",
        "role",
        "cluster",
        "clock",
    ] {
        assert_eq!(status(&out, name), "ok", "{name}: {out}");
    }
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("0 failed, 0 warned, 0 unknown, 12 ok"),
        "{out}"
    );

    let (code, out, _) = doctor(&[server.url()], &["--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit_code"], 0);
    let checks = v["servers"][0]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 12, "{v}");
    assert!(
        checks
            .iter()
            .all(|c| c["status"] == "ok" && c["fix"].is_null()),
        "{v}"
    );
}

#[test]
fn an_evicting_server_fails() {
    let server =
        RedisServer::start_with(&["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]);
    let (code, out, _) = doctor(&[server.url()], &[]);
    assert_eq!(code, 1, "{out}");
    let l = line(&out, "maxmemory-policy");
    assert!(
        l.trim_start().starts_with("fail") && l.contains("allkeys-lru"),
        "{l}"
    );
    assert!(l.contains("noeviction"), "says what to do: {l}");
    let (code, out, _) = doctor(&[server.url()], &["--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    let c = v["servers"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "maxmemory-policy")
        .cloned()
        .unwrap();
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["fix"].as_str().unwrap().contains("noeviction"), "{c}");
}

/// Managed Redis renames CONFIG away: what only CONFIG shows is
/// "unknown", not a failure; with INFO gone too, so is the rest.
#[test]
fn checks_the_server_does_not_allow_are_unknown() {
    let server =
        RedisServer::start_with(&["--appendonly", "yes", "--rename-command", "CONFIG", ""]);
    let (code, out, _) = doctor(&[server.url()], &[]);
    assert_eq!(code, 0, "unknown is not a failure: {out}");
    assert_eq!(status(&out, "persistence"), "unknown", "{out}");
    assert_eq!(
        status(&out, "maxmemory-policy"),
        "ok",
        "INFO still shows it: {out}"
    );

    let server = RedisServer::start_with(&[
        "--rename-command",
        "CONFIG",
        "",
        "--rename-command",
        "INFO",
        "",
    ]);
    let (code, out, _) = doctor(&[server.url()], &[]);
    assert_eq!(code, 0, "{out}");
    // HELLO still names the server.
    assert_eq!(status(&out, "version"), "ok", "{out}");
    assert!(
        line(&out, "version").contains(ServerKind::current().product()),
        "{out}"
    );
    for name in ["maxmemory-policy", "persistence", "role", "cluster"] {
        assert_eq!(status(&out, name), "unknown", "{name}: {out}");
    }
}

#[test]
fn an_acl_user_missing_commands_fails_without_showing_its_password() {
    let server = RedisServer::start();
    let _: () = server.query(&[
        "ACL",
        "SETUSER",
        "locker",
        "on",
        ">s3cret-pw",
        "~*",
        "&*",
        "+@all",
        "-publish",
        "-evalsha",
        // Called only by --limit's scripts.
        "-hset",
        "-zremrangebyscore",
        // Sent by status and list on --limit locks.
        "-hgetall",
    ]);
    let port = server.port;
    let url = format!("redis://locker:s3cret-pw@127.0.0.1:{port}");
    let (code, out, err) = doctor(std::slice::from_ref(&url), &[]);
    assert_eq!(code, 1, "{out}{err}");
    let l = line(&out, "acl");
    assert!(l.trim_start().starts_with("fail"), "{l}");
    // Exactly the missing ones.
    let mut named: Vec<&str> = l
        .split_once("not allowed: ")
        .and_then(|(_, rest)| rest.split_once(" ->"))
        .map(|(list, _)| list.split(", ").collect())
        .unwrap_or_default();
    named.sort_unstable();
    assert_eq!(
        named,
        ["EVALSHA", "HGETALL", "HSET", "ZREMRANGEBYSCORE"],
        "{l}"
    );
    // PUBLISH turns off the wake-ups only: a warning of its own.
    let l = line(&out, "pubsub");
    assert!(
        l.trim_start().starts_with("warn") && l.contains("PUBLISH") && !l.contains("SUBSCRIBE"),
        "{l}"
    );
    let (_, json, _) = doctor(&[url], &["--json"]);
    for text in [&out, &err, &json] {
        assert!(!text.contains("s3cret-pw"), "password printed: {text}");
    }
}

#[test]
fn a_replica_fails() {
    let primary = RedisServer::start();
    let port = primary.port.to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    let (code, out, _) = doctor(&[replica.url()], &[]);
    assert_eq!(code, 1, "{out}");
    let l = line(&out, "role");
    assert!(
        l.trim_start().starts_with("fail") && l.contains("slave"),
        "{l}"
    );
}

#[test]
fn one_server_listed_twice_fails_and_an_even_count_warns() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    let twice = [a.url(), format!("redis://localhost:{}", a.port), b.url()];
    let (code, out, _) = doctor(&twice, &[]);
    assert_eq!(code, 1, "{out}");
    let l = line(&out, "independent");
    assert!(l.trim_start().starts_with("fail"), "{l}");
    assert!(
        l.contains(&a.url()) && l.contains(&format!("localhost:{}", a.port)),
        "{l}"
    );

    let (code, out, _) = doctor(&[a.url(), b.url()], &[]);
    assert_eq!(status(&out, "masters"), "warn", "{out}");
    assert_eq!(status(&out, "independent"), "ok", "{out}");
    assert_eq!(code, 0, "a warning is not a failure: {out}");
}

#[test]
fn a_host_clock_an_hour_ahead_fails() {
    let server = RedisServer::start();
    let mut c = rr_urls(&[server.url()]);
    c.env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", "+1h")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    let (code, out, _) = doctor_with(c, &[]);
    assert_eq!(code, 1, "{out}");
    let l = line(&out, "clock");
    assert!(l.trim_start().starts_with("fail"), "{l}");
    let ms: f64 = l
        .split_whitespace()
        .skip_while(|w| *w != "by")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {l}"));
    assert!(l.contains("ahead of"), "{l}");
    assert!(
        (3_599_000.0..3_601_000.0).contains(&ms),
        "measured {ms} ms for +1h: {l}"
    );
}

#[test]
fn nothing_reachable_is_69() {
    let mut s = RedisServer::start();
    let url = s.url();
    s.kill();
    let (code, out, _) = doctor(&[url], &[]);
    assert_eq!(code, 69, "{out}");
    assert_eq!(status(&out, "reachable"), "fail", "{out}");
}

/// `doctor` names the server as it is, from `INFO server`: Valkey by its
/// own version (not the `redis_version:7.2.4` it reports for
/// compatibility), on each server of the matrix; and from `HELLO` when
/// INFO is renamed away.
#[test]
fn names_the_server_as_it_is_on_each_kind() {
    for kind in ServerKind::ALL {
        let server = RedisServer::start_kind(kind, &[]);
        let (code, out, _) = doctor(&[server.url()], &[]);
        assert_eq!(code, 0, "{kind}: {out}");
        let l = line(&out, "version");
        let shown = l.split_whitespace().skip(2).collect::<Vec<_>>().join(" ");
        assert!(
            shown.starts_with(kind.product()),
            "{kind}: {l} (expected {}x)",
            kind.product()
        );
        assert_eq!(status(&out, "version"), "ok", "{kind}: {out}");
    }
    let server = RedisServer::start_kind(ServerKind::Valkey91, &["--rename-command", "INFO", ""]);
    let (_, out, _) = doctor(&[server.url()], &[]);
    let l = line(&out, "version");
    assert!(l.contains("Valkey 9.1."), "{l}");
}
