//! Managed services restrict commands: each restriction turns one feature
//! off and breaks nothing else, and `doctor` says which. Real servers
//! configured that way (a config file with `rename-command`, ACL users),
//! on each server of the matrix.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// An ACL user `locker` (password `pw-locker`) with `rules` after
/// `on ~*`; its URL.
fn user(server: &RedisServer, rules: &[&str]) -> String {
    let mut args = vec![
        "ACL",
        "SETUSER",
        "locker",
        "reset",
        "on",
        ">pw-locker",
        "~*",
    ];
    args.extend(rules);
    let _: () = server.query(&args);
    format!("redis://locker:pw-locker@127.0.0.1:{}", server.port)
}

/// `redlock-run ARGS` against `url`: (exit code, stdout, stderr).
fn run(url: &str, args: &[&str]) -> (i32, String, String) {
    let o = Rr::urls(&[url.to_string()])
        .args(args)
        .within(Duration::from_secs(20))
        .run();
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

/// The line of doctor's check `name`.
fn check_line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} line in\n{out}"))
}

fn check_status(out: &str, name: &str) -> String {
    check_line(out, name)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Runs, a hand-over to a waiter, `--limit`, status and list all work
/// for the user of `url` (a holder and a waiter that is woken, not one
/// that polls: the hand-over is within a second of the release).
fn everything_works(url: &str, kind: ServerKind) {
    let k = key("managed");
    let (code, _, err) = run(url, &["--key", &k, "--", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "{kind}: {err}");
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn_at(url, &k, dir.path(), &[]);
    holder.wait_ready(Duration::from_secs(10));
    let waiter = spawn_piped(rr_urls(&[url.to_string()]).args([
        "--key",
        &k,
        "--timeout",
        "20s",
        "--",
        "true",
    ]));
    let (code, out, err) = run(url, &["status", "--key", &k]);
    assert_eq!(code, 0, "{kind}: held: {out}{err}");
    let (code, out, err) = run(url, &["list"]);
    assert_eq!(code, 0, "{kind}: {err}");
    assert!(out.contains(&k), "{kind}: {out}");
    let out = holder.finish();
    assert_status(&out, 0, &kind.to_string());
    let o = wait_output(waiter, Duration::from_secs(20));
    assert_status(&o, 0, &kind.to_string());
    let (code, _, err) = run(
        url,
        &["--key", &key("managed-limit"), "--limit", "2", "--", "true"],
    );
    assert_eq!(code, 0, "{kind}: {err}");
    let (code, _, err) = run(url, &["release", "--key", &k, "--force"]);
    assert_eq!(code, 0, "{kind}: {err}");
}

/// `rename-command CONFIG ""` in the server's config file, as managed
/// services do: runs work; doctor answers from INFO (eviction policy,
/// appendonly) and says "unknown" for what only CONFIG shows (appendfsync).
#[test]
fn config_renamed_away_runs_work_and_doctor_answers_from_info() {
    for kind in ServerKind::ALL {
        let server = with_server(kind, || {
            RedisServer::start_with_config("rename-command CONFIG \"\"\nappendonly yes\n")
        });
        let err: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query(&mut server.conn());
        assert!(err.is_err(), "{kind}: CONFIG still there");
        everything_works(&server.url(), kind);
        let (code, out, _) = run(&server.url(), &["doctor", "--key", "managed"]);
        assert_eq!(code, 0, "{kind}: {out}");
        assert_eq!(
            check_status(&out, "maxmemory-policy"),
            "ok",
            "{kind}: {out}"
        );
        let l = check_line(&out, "persistence");
        assert!(
            l.trim_start().starts_with("unknown") && l.contains("appendonly yes"),
            "{kind}: {l}"
        );
    }
}

/// An ACL user without SCAN: `list` exits 69 and its first line names
/// the permission it needs; runs and status work; doctor warns that
/// `list` is off.
#[test]
fn without_scan_list_names_the_permission_and_exits_69() {
    for kind in ServerKind::ALL {
        let server = RedisServer::start_kind(kind, &[]);
        let url = user(&server, &["&*", "+@all", "-scan"]);
        let (code, out, err) = run(&url, &["list"]);
        assert_eq!(code, 69, "{kind}: {out}{err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.contains("SCAN") && first.contains("+scan"),
            "{kind}: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("pw-locker"),
            "{kind}: {err}"
        );
        let (code, _, err) = run(&url, &["--key", &key("noscan"), "--", "true"]);
        assert_eq!(code, 0, "{kind}: {err}");
        let (code, out, _) = run(&url, &["doctor", "--key", "noscan"]);
        assert_eq!(code, 0, "a turned-off feature is a warning: {kind}: {out}");
        let l = check_line(&out, "scan");
        assert!(
            l.trim_start().starts_with("warn") && l.contains("list"),
            "{kind}: {l}"
        );
    }
}

/// An ACL user without WAIT: `--wait-replicas` is refused before the
/// command runs (exit 69, naming WAIT and the option), no lock is left
/// behind; runs without it work; doctor warns that it is off.
#[test]
fn without_wait_wait_replicas_is_refused_before_the_command_runs() {
    for kind in ServerKind::ALL {
        let server = RedisServer::start_kind(kind, &[]);
        let url = user(&server, &["&*", "+@all", "-wait"]);
        let dir = tempfile::tempdir().unwrap();
        let ran = dir.path().join("ran");
        let k = key("nowait");
        let o = Rr::urls(std::slice::from_ref(&url))
            .args(["--key", &k, "--wait-replicas", "1", "--timeout", "5s", "--"])
            .args(["sh", "-c", "touch \"$1\"", "sh"])
            .arg(&ran)
            .within(Duration::from_secs(20))
            .status(69)
            .run();
        let err = stderr(&o);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.contains("WAIT") && first.contains("--wait-replicas") && first.contains("+wait"),
            "{kind}: {err}"
        );
        assert!(
            !err.contains("authentication"),
            "not a password problem: {err}"
        );
        assert!(!ran.exists(), "{kind}: the command ran");
        assert!(!server.exists(&k), "{kind}: lock left behind");
        let (code, _, err) = run(&url, &["--key", &k, "--", "true"]);
        assert_eq!(code, 0, "{kind}: {err}");
        let (code, out, _) = run(&url, &["doctor", "--key", "nowait"]);
        assert_eq!(code, 0, "{kind}: {out}");
        let l = check_line(&out, "wait");
        assert!(
            l.trim_start().starts_with("warn") && l.contains("--wait-replicas"),
            "{kind}: {l}"
        );
    }
}

/// An ACL user without CLIENT: the tool sends none, so nothing breaks,
/// and doctor finds nothing missing.
#[test]
fn without_client_nothing_breaks() {
    for kind in ServerKind::ALL {
        let server = RedisServer::start_kind(kind, &[]);
        let url = user(&server, &["&*", "+@all", "-client"]);
        everything_works(&url, kind);
        let (code, out, _) = run(&url, &["doctor", "--key", "noclient"]);
        assert_eq!(code, 0, "{kind}: {out}");
        for name in ["acl", "pubsub", "scan", "wait"] {
            assert_eq!(check_status(&out, name), "ok", "{kind}: {name}: {out}");
        }
    }
}

/// No pub/sub channels granted (`resetchannels`): doctor warns (not a
/// failure) that waiters poll instead of being woken, names PUBLISH and
/// SUBSCRIBE and the ACL rule that fixes it; `--json` says the same.
/// (What the lock does without channels is tested with the protocol.)
#[test]
fn without_channels_doctor_warns_that_waiters_poll() {
    for kind in ServerKind::ALL {
        let server = RedisServer::start_kind(kind, &[]);
        let url = user(&server, &["resetchannels", "+@all"]);
        let (code, out, _) = run(&url, &["doctor", "--key", "nochan"]);
        assert_eq!(code, 0, "{kind}: {out}");
        assert_eq!(check_status(&out, "acl"), "ok", "{kind}: {out}");
        let l = check_line(&out, "pubsub");
        assert!(l.trim_start().starts_with("warn"), "{kind}: {l}");
        for part in [
            "PUBLISH",
            "SUBSCRIBE",
            "waiters poll instead of being woken",
            "&{nochan}:redlock-run:*",
        ] {
            assert!(l.contains(part), "{kind}: {part}: {l}");
        }
        let (_, json, _) = run(&url, &["doctor", "--key", "nochan", "--json"]);
        let v: Value = serde_json::from_str(&json).expect("one JSON object");
        let c = v["servers"][0]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "pubsub")
            .cloned()
            .unwrap_or_else(|| panic!("{v}"));
        assert_eq!(c["status"], "warn", "{c}");
        assert!(
            c["fix"]
                .as_str()
                .unwrap()
                .contains("&{nochan}:redlock-run:*"),
            "{c}"
        );
    }
}

/// Each missing permission turns off its own feature, listed by doctor
/// on a line of its own: channels (woken waiters), SCAN (`list`), WAIT
/// (`--wait-replicas`); the lock's own commands still pass.
#[test]
fn doctor_lists_the_feature_each_missing_permission_turns_off() {
    let server = RedisServer::start();
    let url = user(&server, &["resetchannels", "+@all", "-scan", "-wait"]);
    let (code, out, _) = run(&url, &["doctor", "--key", "restricted"]);
    assert_eq!(code, 0, "warnings only: {out}");
    assert_eq!(check_status(&out, "acl"), "ok", "{out}");
    for (name, feature) in [
        ("pubsub", "waiters poll"),
        ("scan", "list"),
        ("wait", "--wait-replicas"),
    ] {
        let l = check_line(&out, name);
        assert!(
            l.trim_start().starts_with("warn") && l.contains(feature),
            "{name}: {l}"
        );
    }
    // And persistence (appendonly no).
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("0 failed, 4 warned"),
        "{out}"
    );
}

/// The least-privilege user docs/servers.md shows (one key, its
/// auxiliary keys and channels, no dangerous commands but INFO) passes
/// every permission check of doctor and runs, waits, lists, on each
/// server of the matrix.
#[test]
fn the_documented_least_privilege_user_works() {
    let doc = include_str!("../../docs/servers.md");
    let rule = doc
        .lines()
        .find(|l| l.starts_with("ACL SETUSER locker "))
        .expect("docs/servers.md shows an ACL SETUSER locker line");
    for kind in ServerKind::ALL {
        let server = RedisServer::start_kind(kind, &[]);
        let k = "nightly-report";
        let words: Vec<&str> = rule.split_whitespace().collect();
        let _: () = server.query(&words);
        let url = format!("redis://locker:PASSWORD@127.0.0.1:{}", server.port);
        let (code, out, _) = run(&url, &["doctor", "--key", k]);
        for name in ["version", "lua", "acl", "pubsub", "scan", "wait"] {
            assert_eq!(check_status(&out, name), "ok", "{kind}: {name}: {out}");
        }
        assert_eq!(code, 0, "{kind}: {out}");
        let (code, _, err) = run(&url, &["--key", k, "--", "sh", "-c", "exit 4"]);
        assert_eq!(code, 4, "{kind}: {err}");
        let dir = tempfile::tempdir().unwrap();
        let holder = Holder::spawn_at(&url, k, dir.path(), &[]);
        holder.wait_ready(Duration::from_secs(10));
        let (code, out, err) = run(&url, &["list"]);
        assert_eq!(code, 0, "{kind}: {err}");
        assert!(out.contains(k), "{kind}: {out}");
        assert_eq!(holder.finish().status.code(), Some(0), "{kind}");
        let (code, _, err) = run(&url, &["--key", "other", "--", "true"]);
        assert_eq!(code, 69, "{kind}: another key is refused: {err}");
    }
}
