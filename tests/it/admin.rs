//! `status`, `release --force` and `completions` against real locks.

use std::time::{Duration, Instant};

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
    let o = output(rr(&server).args(["status", "--key", &k]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains(&k), "{text}");
    assert!(
        text.contains(&holder.pid().to_string()),
        "no holder pid in:\n{text}"
    );
    // Only the program's name is stored (guarantee 8), not its arguments.
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

    let o = holder.finish();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["held"], Value::Bool(false), "{v}");
    assert_eq!(v["holder"], Value::Null, "{v}");
    assert_eq!(v["fencing_token"].as_u64(), Some(env.fencing), "{v}");
    let o = output(rr(&server).args(["status", "--key", &k]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("free"), "{}", stdout(&o));

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
        let o = output(rr_urls(std::slice::from_ref(&url)).args(args));
        assert_eq!(o.status.code(), Some(69), "{args:?}: {}", stderr(&o));
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
        let o = output(rr_urls(&urls).args(["status", "--key", &k, "--json"]));
        assert_eq!(o.status.code(), Some(69), "{urls:?}: {}", stderr(&o));
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

#[test]
fn release_needs_force_and_keeps_the_fencing_counter() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("release");

    // Break glass on a lock nobody is waiting for.
    let (a, a_env) = Holder::start(&server, &k, dir.path(), &["--ttl", "2s"]);
    let o = output(rr(&server).args(["release", "--key", &k]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(server.get(&k).as_deref(), Some(a_env.token.as_str()));
    assert!(server.pttl(&k) > 0);

    let fence = server.get(&fence_key(&k));
    assert_eq!(fence, Some(a_env.fencing.to_string()));
    let o = output(rr(&server).args(["release", "--key", &k, "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!server.exists(&k), "release --force left the key");
    assert_eq!(
        server.get(&fence_key(&k)),
        fence,
        "the fencing counter changed"
    );
    // The holder finds its lock gone and stops its command: exit 70.
    let o = a.wait();
    assert_eq!(o.status.code(), Some(70), "{}", stderr(&o));
    assert!(
        !std::fs::read_to_string(dir.path().join("order")).is_ok_and(|s| s.contains("end")),
        "the command was not stopped"
    );
    assert!(!server.exists(&k));
    assert_eq!(server.get(&fence_key(&k)), fence);

    // Nothing held: still 0.
    let o = output(rr(&server).args(["release", "--key", &k, "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(server.get(&fence_key(&k)), fence);

    // Unreachable.
    let url = format!("redis://127.0.0.1:{}", free_port());
    let o = output(rr_urls(&[url]).args(["release", "--key", &k, "--force"]));
    assert_eq!(o.status.code(), Some(69), "{}", stderr(&o));
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

    let o = output(rr(&server).args(["release", "--key", &k, "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
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
    assert_eq!(o.status.code(), Some(70), "{}", stderr(&o));
    assert_eq!(server.get(&k).as_deref(), Some(b_env.token.as_str()));

    let o = b.finish();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!server.exists(&k));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = output(rr_urls(&[]).args(["completions", shell]));
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        // fish spells long options `-l key`.
        for opt in ["key", "timeout"] {
            assert!(
                script.contains(&format!("--{opt}")) || script.contains(&format!("-l {opt}")),
                "{shell}: no --{opt} in\n{script}"
            );
        }
    }
    let o = output(rr_urls(&[]).args(["completions", "tcsh"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
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

    let o = output(rr(&server).args(["status", "--key", &k]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(!raw_controls(&text), "raw control characters in {text:?}");
    // held by, since, ttl, fencing token.
    assert_eq!(text.lines().count(), 4, "{text:?}");
    for shown in ["evil\\nk: free\\r", "rm\\x1b[2J\\x07\\u{85} -rf café"] {
        assert!(text.contains(shown), "{shown:?} not in {text:?}");
    }

    let o = output(rr(&server).args(["--timeout", "100ms", "--key", &k, "--", "true"]));
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!raw_controls(&err), "raw control characters in {err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains("evil\\nk: free\\r"), "{err:?}");
}

/// A key holding a newline and ESC (a forged second line in red) is
/// printed escaped by every command that shows it, free or held, on
/// stdout and stderr: nothing can forge a line or drive the terminal.
#[test]
fn every_command_escapes_the_key_it_prints() {
    let server = RedisServer::start();
    let k = format!("{}x\n\x1b[31mFORGED", key("escape"));
    let clean = |what: &str, o: &std::process::Output| {
        for text in [stdout(o), stderr(o)] {
            assert!(!text.contains('\x1b'), "{what}: raw ESC in {text:?}");
            for line in text.lines().filter(|l| l.contains("FORGED")) {
                assert!(line.contains("x\\n"), "{what}: a forged line in {text:?}");
            }
        }
    };
    let status = output(rr(&server).args(["status", "--key", &k]));
    assert_eq!(status.status.code(), Some(1), "{}", stderr(&status));
    assert!(stdout(&status).contains("FORGED"), "{}", stdout(&status));
    clean("status (free)", &status);
    let _: () = redis::cmd("SET")
        .arg(&k)
        .arg("other")
        .query(&mut server.conn())
        .unwrap();
    let status = output(rr(&server).args(["status", "--key", &k]));
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    clean("status (held)", &status);
    let list = output(rr(&server).args(["list"]));
    clean("list", &list);
    let doctor = output(rr(&server).args(["doctor", "--key", &k]));
    clean("doctor", &doctor);
    let release = output(rr(&server).args(["release", "--key", &k, "--force"]));
    assert_eq!(release.status.code(), Some(0), "{}", stderr(&release));
    assert!(stdout(&release).contains("FORGED"), "{}", stdout(&release));
    clean("release", &release);
    let release = output(rr(&server).args(["release", "--key", &k, "--force"]));
    clean("release (not held)", &release);
    let run = output(rr(&server).args(["--key", &k, "-vv", "--", "true"]));
    assert!(stderr(&run).contains("lock acquired"), "{}", stderr(&run));
    clean("run", &run);
    // schedule's first line names the key.
    let mut sched =
        spawn_piped(rr(&server).args(["schedule", "--key", &k, "--every", "1h", "--", "true"]));
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut err = std::io::BufReader::new(sched.stderr.as_mut().unwrap());
        while !first.contains("schedule started") {
            first.clear();
            assert!(err.read_line(&mut first).unwrap() > 0, "no start line");
        }
        // The line after it, if the key broke the line.
        let mut next = String::new();
        if !first.contains("FORGED") {
            err.read_line(&mut next).unwrap();
        }
        first.push_str(&next);
    }
    send_signal(sched.id(), nix::sys::signal::Signal::SIGTERM);
    let rest = wait_output(sched, DONE);
    assert!(!first.contains('\x1b'), "schedule: raw ESC in {first:?}");
    assert!(
        first.lines().count() == 1,
        "schedule: a forged line in {first:?}"
    );
    clean("schedule", &rest);
}
