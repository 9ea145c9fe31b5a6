//! `status`: who holds a key (holder, TTL, fencing token, in text and
//! JSON), a key never used said so (spelled as given), a `--min-hold`
//! holder shown as ended with the lock kept, text from other hosts
//! escaped, and an unreachable Redis never taken for a free lock (69).

use serde_json::Value;

use crate::support::*;

#[test]
pub(crate) fn status_shows_holder_ttl_and_fencing_token() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("status");

    // Never used: free, no fencing token yet.
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["held"], Value::Bool(false), "{v}");
    assert_eq!(v["holder"], Value::Null, "{v}");
    assert_eq!(v["fencing_token"], Value::Null, "{v}");

    let (holder, env) = Holder::start(&server, &k, dir.path(), &["--ttl", "5s"]);
    let o = Rr::on(&server)
        .args(["status", "--key", &k])
        .status(0)
        .run();
    let text = stdout(&o);
    assert!(text.contains(&k), "{text}");
    assert!(
        text.contains(&holder.pid().to_string()),
        "no holder pid in:\n{text}"
    );
    // Only the program's name is stored, not its arguments
    // (docs/guarantees.md, guarantee 9).
    assert!(text.contains("(sh)"), "no holder command in:\n{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("fencing") && l.contains(&env.fencing.to_string())),
        "no fencing token in:\n{text}"
    );

    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["held"], Value::Bool(true), "{v}");
    assert_eq!(v["key"].as_str(), Some(k.as_str()), "{v}");
    let ttl = v["ttl_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("ttl_ms: {v}"));
    assert!(ttl > 0 && ttl <= 5000, "{v}");
    assert_eq!(v["fencing_token"].as_u64(), Some(env.fencing), "{v}");
    let h = &v["holder"];
    assert_eq!(h["pid"].as_i64(), Some(i64::from(holder.pid())), "{v}");
    assert_eq!(h["command"].as_str(), Some("sh"), "{v}");
    let host = nix::unistd::gethostname().unwrap();
    assert_eq!(h["host"].as_str(), host.to_str(), "{v}");
    assert!(
        h["since"]
            .as_str()
            .is_some_and(|s| humantime::parse_rfc3339(s).is_ok()),
        "since is RFC 3339: {v}"
    );
    // Looking does not touch the lock.
    assert_eq!(server.get(&k).as_deref(), Some(env.token.as_str()));

    holder.finish_ok();
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["held"], Value::Bool(false), "{v}");
    assert_eq!(v["holder"], Value::Null, "{v}");
    assert_eq!(v["fencing_token"].as_u64(), Some(env.fencing), "{v}");
    Rr::on(&server)
        .args(["status", "--key", &k])
        .status(1)
        .stdout_has("free")
        .run();

    // A lock taken by another client: held, holder unknown.
    let _: Option<String> = server.query(&["SET", &k, "other", "NX", "PX", "5000"]);
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["held"], Value::Bool(true), "{v}");
    assert_eq!(v["holder"], Value::Null, "{v}");
    assert!(
        v["ttl_ms"].as_u64().is_some_and(|t| t > 0 && t <= 5000),
        "{v}"
    );
    assert_eq!(server.get(&k).as_deref(), Some("other"));
}

#[test]
fn status_of_unreachable_redis_is_69() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    for args in [
        &["status", "--key", "k"][..],
        &["status", "--key", "k", "--json"][..],
    ] {
        let o = Rr::urls(std::slice::from_ref(&url))
            .args(args)
            .status(69)
            .run();
        assert!(!stderr(&o).is_empty(), "{args:?}: say why");
    }
}

/// The JSON of an unreadable lock says so: `held` is null (unknown, not
/// free) and `error` says why, with one master and with a quorum out of
/// reach.
#[test]
fn status_json_of_unreachable_redis_does_not_claim_free() {
    let dead = || format!("redis://127.0.0.1:{}", free_port());
    let server = RedisServer::start();
    let k = key("status-unreachable");
    let _: () = server.query(&["SET", &k, "other", "PX", "60000"]);
    for urls in [vec![dead()], vec![server.url(), dead(), dead()]] {
        let o = Rr::urls(&urls)
            .args(["status", "--key", &k, "--json"])
            .status(69)
            .run();
        let v: Value = serde_json::from_str(stdout(&o).trim())
            .unwrap_or_else(|e| panic!("{urls:?}: {e}: {:?}", stdout(&o)));
        assert_eq!(v["held"], Value::Null, "{urls:?}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{urls:?}: no error in {v}"
        );
        assert_eq!(v["key"].as_str(), Some(k.as_str()), "{v}");
    }
    // Readable: no error field.
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["held"], Value::Bool(true), "{v}");
    assert!(v.get("error").is_none(), "{v}");
}

/// Text another host wrote (its host name, its command) is shown with
/// control characters escaped: a newline in it cannot forge a line of
/// `status` or of a waiter's conflict message, an escape sequence cannot
/// drive the terminal. Ordinary non-ASCII letters stay as they are.
#[test]
fn holder_text_from_other_hosts_is_escaped() {
    let server = RedisServer::start();
    let k = key("escape");
    let token = "tok-escape";
    let info = serde_json::json!({
        "host": "evil\nk: free\r",
        "pid": 7,
        "command": "rm\u{1b}[2J\u{7}\u{85} -rf café",
        "since_ms": 1_700_000_000_000u64,
        "token": token,
    })
    .to_string();
    let holder_key = format!("{{{k}}}:redlock-run:holder");
    server.query::<()>(&["SET", &k, token, "PX", "30000"]);
    server.query::<()>(&["SET", &holder_key, &info, "PX", "30000"]);
    let raw_controls = |s: &str| s.chars().any(|c| c.is_control() && c != '\n');

    let o = Rr::on(&server)
        .args(["status", "--key", &k])
        .status(0)
        .run();
    let text = stdout(&o);
    assert!(!raw_controls(&text), "raw control characters in {text:?}");
    // held by, since, ttl, fencing token.
    assert_eq!(text.lines().count(), 4, "{text:?}");
    for shown in ["evil\\nk: free\\r", "rm\\x1b[2J\\x07\\u{85} -rf café"] {
        assert!(text.contains(shown), "{shown:?} not in {text:?}");
    }

    let o = Rr::on(&server)
        .args(["--timeout", "100ms", "--key", &k, "--", "true"])
        .status(75)
        .run();
    let err = stderr(&o);
    assert!(!raw_controls(&err), "raw control characters in {err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains("evil\\nk: free\\r"), "{err:?}");
}

#[test]
fn status_of_a_key_never_used_says_so() {
    let server = RedisServer::start();
    let k = key("never");
    let (code, text) = status_text(&server, &k);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.starts_with(&format!("{k}: never used"))),
        "{text}"
    );
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["held"], Value::Bool(false), "{v}");
    assert_eq!(v["never_used"], Value::Bool(true), "{v}");

    // Once it ran, it is free, not never used.
    Rr::on(&server)
        .args(["--key", &k, "--", "true"])
        .status(0)
        .run();
    let (code, text) = status_text(&server, &k);
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with(&format!("{k}: free")), "{text}");
    let (_, v) = status_json(&server, &k);
    assert_eq!(v["never_used"], Value::Bool(false), "{v}");
}

#[test]
fn a_min_hold_holder_is_shown_as_ended_with_the_lock_kept() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("minhold");
    // A running holder: its command has not ended.
    let (h, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "5s"]);
    let (_, v) = status_json(&server, &k);
    assert_eq!(v["holder"]["command_ended"], Value::Null, "{v}");
    let (_, text) = status_text(&server, &k);
    assert!(!text.contains("command ended"), "{text}");
    h.finish_ok();

    // --min-hold: the command ended at once, the lock stays.
    Rr::on(&server)
        .args(["--key", &k, "--min-hold", "1m", "--", "true"])
        .status(0)
        .run();
    let (code, text) = status_text(&server, &k);
    assert_eq!(code, 0, "{text}");
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{k}: held by "))
            && first.contains(": command ended at ")
            && first.contains(", lock kept until ")
            && first.contains("(--min-hold)"),
        "{text}"
    );
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 0, "{v}");
    let ended = v["holder"]["command_ended"].as_str().unwrap_or_default();
    assert!(humantime::parse_rfc3339(ended).is_ok(), "{v}");
    assert_eq!(v["last_runs"][0]["ended"].as_str(), Some(ended), "{v}");
}
