//! `release`: `--force` is needed, keeps the fencing counter, wakes a
//! waiter and says what it removed; `--forget` removes every trace of a
//! key, never of one in use or waited for, and the next fencing token is
//! still higher (on a Cluster too).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

#[test]
fn release_needs_force_and_keeps_the_fencing_counter() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("release");

    // Break glass on a lock nobody is waiting for.
    let (a, a_env) = Holder::start(&server, &k, dir.path(), &["--ttl", "2s"]);
    Rr::on(&server)
        .args(["release", "--key", &k])
        .status(2)
        .stderr_has("--force")
        .run();
    assert_eq!(server.get(&k).as_deref(), Some(a_env.token.as_str()));
    assert!(server.pttl(&k) > 0);

    let fence = server.get(&fence_key(&k));
    assert_eq!(fence, Some(a_env.fencing.to_string()));
    Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .status(0)
        .key_absent(&k)
        .run();
    assert_eq!(
        server.get(&fence_key(&k)),
        fence,
        "the fencing counter changed"
    );
    // The holder finds its lock gone and stops its command: exit 70.
    let o = a.wait();
    assert_exit(&o, 70);
    assert!(
        !std::fs::read_to_string(dir.path().join("order")).is_ok_and(|s| s.contains("end")),
        "the command was not stopped"
    );
    assert!(!server.exists(&k));
    assert_eq!(server.get(&fence_key(&k)), fence);

    // Nothing held: still 0.
    Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .status(0)
        .run();
    assert_eq!(server.get(&fence_key(&k)), fence);

    // Unreachable.
    let url = format!("redis://127.0.0.1:{}", free_port());
    Rr::urls(&[url])
        .args(["release", "--key", &k, "--force"])
        .status(69)
        .run();
}

#[test]
pub(crate) fn release_force_wakes_a_waiter() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("wake");
    let (a, a_env) = Holder::start(&server, &k, dir.path(), &["--ttl", "2s"]);
    let b = Holder::spawn(
        &server,
        &k,
        dir.path(),
        &["--timeout", "30s", "--ttl", "5s"],
    );
    wait_until("the waiter to subscribe", Duration::from_secs(10), || {
        server.subscribers(&released_channel(&k)) >= 1
    });
    assert!(!b.is_ready(), "the waiter ran while the lock was held");

    let mut conn = server.conn();
    let mut ps = conn.as_pubsub();
    ps.subscribe(released_channel(&k)).unwrap();
    ps.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .status(0)
        .run();
    let released = Instant::now();
    ps.get_message()
        .expect("release --force must publish on the release channel");

    let b_env = b.wait_ready(Duration::from_secs(10));
    eprintln!("hand-over after release --force: {:?}", released.elapsed());
    assert_eq!(server.get(&k).as_deref(), Some(b_env.token.as_str()));
    assert!(
        b_env.fencing > a_env.fencing,
        "the fencing token must go on rising"
    );

    // The old holder stops (lock lost) without touching the new lock.
    let o = a.wait();
    assert_exit(&o, 70);
    assert_eq!(server.get(&k).as_deref(), Some(b_env.token.as_str()));

    b.finish_ok();
    assert!(!server.exists(&k));
}

#[test]
fn release_force_says_what_it_removed() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("removed");
    Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .status(0)
        .stdout(format!("{k}: was not held; nothing removed\n"))
        .run();

    let (h, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "5s"]);
    let tick = tick_key(&k);
    let _: () = server.query(&["SET", &tick, "1764921600000 c sometoken -1"]);
    let o = Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .status(0)
        .run();
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("{k}: released: removed the lock (held by "))
            && out.contains(&format!("pid {}", h.pid()))
            && out.contains("the tick claim (2025-12-05T08:00:00Z)"),
        "{out}"
    );
    assert!(!server.exists(&k) && !server.exists(&tick));
    assert_exit(&h.wait(), 70);

    // Only a tick claim left.
    let _: () = server.query(&["SET", &tick, "1764921600000"]);
    let o = Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .run();
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
    Rr::on(&server)
        .args(["release", "--key", &k, "--forget"])
        .status(0)
        .stdout(format!("{k}: nothing to forget\n"))
        .run();

    // Runs, a schedule's tick claim, a --min-hold: every trace there is.
    for _ in 0..3 {
        Rr::on(&server)
            .args(["--key", &k, "--", "true"])
            .status(0)
            .run();
    }
    let _: () = server.query(&["SET", &tick_key(&k), "1764921600000 c tok -1"]);

    // Held: refused, nothing removed.
    let (h, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "5s"]);
    let before = traces(&server, &k);
    let o = Rr::on(&server)
        .args(["release", "--key", &k, "--forget"])
        .status(75)
        .run();
    let first = stderr(&o).lines().next().unwrap_or_default().to_string();
    assert!(
        first.starts_with(&format!("redlock-run: error: lock {k:?} is held by "))
            && first.contains("not forgetting a key in use"),
        "{first}"
    );
    assert_eq!(traces(&server, &k), before);

    h.finish_ok();

    let o = Rr::on(&server)
        .args(["release", "--key", &k, "--forget"])
        .status(0)
        .run();
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
        Rr::on(&server)
            .args(["--key", &k, "--", "true"])
            .status(0)
            .run();
    }
    let last: u64 = server.get(&fence_key(&k)).unwrap().parse().unwrap();
    Rr::on(&server)
        .args(["release", "--key", &k, "--forget"])
        .status(0)
        .run();
    assert!(!server.exists(&fence_key(&k)));
    let (h, env) = Holder::start(&server, &k, dir.path(), &["--ttl", "5s"]);
    assert!(env.fencing > last, "{} after {last}", env.fencing);
    h.finish_ok();
}

/// A waiter in the queue (no holder) is someone using the key too.
#[test]
fn release_forget_is_refused_while_someone_waits() {
    let server = RedisServer::start();
    let k = key("forget-wait");
    let _: () = server.query(&["ZADD", &waiters_key(&k), "1", "waiter-token"]);
    let o = Rr::on(&server)
        .args(["release", "--key", &k, "--forget"])
        .status(75)
        .run();
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
        let rr = || Rr::urls(std::slice::from_ref(&url));
        for _ in 0..2 {
            rr().args(["--key", &k, "--", "true"]).status(0).run();
        }
        let o = rr()
            .args(["release", "--key", &k, "--forget"])
            .status(0)
            .run();
        assert!(
            stdout(&o).starts_with(&format!("{k}: forgotten: removed "))
                && stdout(&o).contains("the fencing counter"),
            "{}",
            stdout(&o)
        );
        let (code, v) = status_json_at(std::slice::from_ref(&url), &k);
        assert_eq!((code, &v["never_used"]), (1, &Value::Bool(true)), "{v}");
        let node = &c.nodes[c.owner(c.slot(&k))];
        let left: Vec<String> = node.query(&["KEYS", "*redlock-run*"]);
        assert!(
            left.iter().all(|n| !n.contains(k.trim_end_matches("{eu}"))),
            "{left:?}"
        );
    }
}
