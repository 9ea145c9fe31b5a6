//! What a person wonders on the first day: is this key (spelled this way)
//! used at all, why is a lock whose command ended still held (`--min-hold`),
//! and what did `release --force` remove.

use serde_json::Value;

use crate::support::*;

fn status_text(server: &RedisServer, k: &str) -> (i32, String) {
    let o = output(rr(server).args(["status", "--key", k]));
    (o.status.code().unwrap_or(-1), stdout(&o))
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
    let o = output(rr(&server).args(["--key", &k, "--", "true"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
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
    assert_eq!(h.finish().status.code(), Some(0));

    // --min-hold: the command ended at once, the lock stays.
    let o = output(rr(&server).args(["--key", &k, "--min-hold", "1m", "--", "true"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
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

#[test]
fn release_force_says_what_it_removed() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("removed");
    let o = output(rr(&server).args(["release", "--key", &k, "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{k}: was not held; nothing removed\n"));

    let (h, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "5s"]);
    let tick = tick_key(&k);
    let _: () = server.query(&["SET", &tick, "1764921600000 c sometoken -1"]);
    let o = output(rr(&server).args(["release", "--key", &k, "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("{k}: released: removed the lock (held by "))
            && out.contains(&format!("pid {}", h.pid()))
            && out.contains("the tick claim (2025-12-05T08:00:00Z)"),
        "{out}"
    );
    assert!(!server.exists(&k) && !server.exists(&tick));
    assert_eq!(h.wait().status.code(), Some(70));

    // Only a tick claim left.
    let _: () = server.query(&["SET", &tick, "1764921600000"]);
    let o = output(rr(&server).args(["release", "--key", &k, "--force"]));
    assert_eq!(
        stdout(&o),
        format!("{k}: was not held; removed the tick claim (2025-12-05T08:00:00Z)\n")
    );
}

/// Every name the tool keeps for `k` that exists now.
fn traces(server: &RedisServer, k: &str) -> Vec<String> {
    let mut names: Vec<String> = server.query(&["KEYS", &format!("{{{k}}}:redlock-run:*")]);
    if server.exists(k) {
        names.push(k.to_string());
    }
    names.sort();
    names
}

/// `release --forget` retires a key: everything the tool keeps for it goes,
/// at once, but never while it is held or waited on (exit 75, nothing
/// removed).
#[test]
fn release_forget_removes_every_trace_but_never_of_a_key_in_use() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("forget");
    let o = output(rr(&server).args(["release", "--key", &k, "--forget"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{k}: nothing to forget\n"));

    // Runs, a schedule's tick claim, a --min-hold: every trace there is.
    for _ in 0..3 {
        let o = output(rr(&server).args(["--key", &k, "--", "true"]));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let _: () = server.query(&["SET", &tick_key(&k), "1764921600000 c tok -1"]);

    // Held: refused, nothing removed.
    let (h, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "5s"]);
    let before = traces(&server, &k);
    let o = output(rr(&server).args(["release", "--key", &k, "--forget"]));
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    let first = stderr(&o).lines().next().unwrap_or_default().to_string();
    assert!(
        first.starts_with(&format!("redlock-run: error: lock {k:?} is held by "))
            && first.contains("not forgetting a key in use"),
        "{first}"
    );
    assert_eq!(traces(&server, &k), before);

    assert_eq!(h.finish().status.code(), Some(0));

    let o = output(rr(&server).args(["release", "--key", &k, "--forget"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("{k}: forgotten: removed "))
            && out.contains("the fencing counter")
            && out.contains("the run history")
            && out.contains("the tick claim"),
        "{out}"
    );
    assert_eq!(traces(&server, &k), Vec::<String>::new());
    let (code, v) = status_json(&server, &k);
    assert_eq!((code, &v["never_used"]), (1, &Value::Bool(true)), "{v}");
}

/// Fencing survives forgetting: tokens rise with the server's clock
/// (TIME in µs), so the next user of a forgotten key gets a higher token
/// than any issued before.
#[test]
fn after_forget_the_next_fencing_token_is_still_higher() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("forget-fence");
    for _ in 0..3 {
        let o = output(rr(&server).args(["--key", &k, "--", "true"]));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let last: u64 = server.get(&fence_key(&k)).unwrap().parse().unwrap();
    let o = output(rr(&server).args(["release", "--key", &k, "--forget"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!server.exists(&fence_key(&k)));
    let (h, env) = Holder::start(&server, &k, dir.path(), &["--ttl", "5s"]);
    assert!(env.fencing > last, "{} after {last}", env.fencing);
    assert_eq!(h.finish().status.code(), Some(0));
}

/// A waiter in the queue (no holder) is someone using the key too.
#[test]
fn release_forget_is_refused_while_someone_waits() {
    let server = RedisServer::start();
    let k = key("forget-wait");
    let _: () = server.query(&["ZADD", &waiters_key(&k), "1", "waiter-token"]);
    let o = output(rr(&server).args(["release", "--key", &k, "--forget"]));
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("redlock-run: error: lock {k:?} is waited for")),
        "{}",
        stderr(&o)
    );
    assert!(server.exists(&waiters_key(&k)));
}

/// On a Cluster too (every name in the key's slot, braces in the key).
#[test]
fn release_forget_on_a_cluster() {
    let c = crate::support::topology::ClusterSetup::start();
    let url = c.url();
    for k in [key("forget-cl"), format!("{}{{eu}}", key("jobs"))] {
        let rr = || rr_urls(std::slice::from_ref(&url));
        for _ in 0..2 {
            let o = output(rr().args(["--key", &k, "--", "true"]));
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        }
        let o = output(rr().args(["release", "--key", &k, "--forget"]));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stdout(&o).starts_with(&format!("{k}: forgotten: removed "))
                && stdout(&o).contains("the fencing counter"),
            "{}",
            stdout(&o)
        );
        let o = output(rr().args(["status", "--key", &k, "--json"]));
        let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(
            (o.status.code(), &v["never_used"]),
            (Some(1), &Value::Bool(true)),
            "{v}"
        );
        let node = &c.nodes[c.owner(c.slot(&k))];
        let left: Vec<String> = node.query(&["KEYS", "*redlock-run*"]);
        assert!(
            left.iter().all(|n| !n.contains(k.trim_end_matches("{eu}"))),
            "{left:?}"
        );
    }
}
