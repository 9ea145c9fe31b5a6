//! Which servers the tool accepts, and how it finds out: `HELLO` with the
//! first request on each new connection, in the same round trip; `INFO
//! server` when HELLO is not there.

use std::time::Duration;

use crate::support::*;

/// `INFO commandstats` as command → calls (on the test's connection:
/// a new one would count the test's own connecting).
fn calls(conn: &mut redis::Connection) -> std::collections::HashMap<String, u64> {
    let text: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let n = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), n))
        })
        .collect()
}

/// One run on a fresh server sends one HELLO (with its first request, in
/// the same round trip) and no CLIENT command. On each server of the
/// matrix. (That the check adds no round trip shows in
/// `schedule::fleet::an_instance_that_reaches_one_master_does_not_poison_the_ticks`,
/// whose 30 ms proxy and 100 ms budget leave room for no extra one.)
#[test]
fn the_server_check_is_one_hello_and_no_client_command() {
    for kind in ServerKind::ALL {
        let server = RedisServer::start_kind(kind, &[]);
        let mut conn = server.conn();
        let _: String = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut conn)
            .unwrap();
        Rr::on(&server)
            .args(["--key", &key("hello"), "--", "true"])
            .status(0)
            .run();
        let c = calls(&mut conn);
        assert_eq!(c.get("hello"), Some(&1), "{kind}: {c:?}");
        assert!(
            !c.keys().any(|k| k.starts_with("client")),
            "{kind}: CLIENT sent: {c:?}"
        );
    }
}

/// With HELLO renamed away, `INFO server` names the server: runs, status
/// and list work on each kind.
#[test]
fn without_hello_info_names_the_server() {
    for kind in ServerKind::ALL {
        let server = RedisServer::start_kind(kind, &["--rename-command", "HELLO", ""]);
        let k = key("no-hello");
        Rr::on(&server)
            .args(["--key", &k, "--", "sh", "-c", "exit 3"])
            .status(3)
            .run();
        Rr::on(&server)
            .args(["status", "--key", &k])
            .status(1)
            .run();
        Rr::on(&server).arg("list").status(0).run();
    }
}

/// A real Redis 5.0.6 (built by scripts/servers) is refused before the
/// command runs, in every mode, with exit 69 and its version named; no
/// lock is left. `doctor` still talks to it and fails its version check.
#[test]
fn an_older_server_is_refused_before_anything_runs() {
    let server = RedisServer::start_kind(ServerKind::Redis50, &[]);
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let k = key("old");
    let first_line = |o: &std::process::Output| stderr(o).lines().next().unwrap_or("").to_string();
    let o = Rr::on(&server)
        .args(["--key", &k, "--timeout", "5s", "--"])
        .args(["sh", "-c", "touch \"$1\"", "sh"])
        .arg(&ran)
        .status(69)
        .run();
    let l = first_line(&o);
    assert!(
        l.contains("Redis 5.0.6") && l.contains("older than") && l.contains("Redis 6.2"),
        "{l}"
    );
    assert!(!ran.exists(), "the command ran");
    let modes: [&[&str]; 3] = [
        &["status", "--key", &k],
        &["release", "--key", &k, "--force"],
        &["list"],
    ];
    for args in modes {
        let o = Rr::on(&server)
            .args(args)
            .within(Duration::from_secs(10))
            .status(69)
            .run();
        assert!(
            stderr(&o).contains("Redis 5.0.6"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    // schedule: every tick is refused, naming the version; the command
    // never runs. (Exiting 69 at start on a permanent refusal is issue
    // 26's; until then it is stopped here.)
    let log = dir.path().join("schedule.log");
    let mut child = rr(&server)
        .args(["schedule", "--key", &k, "--every", "1s", "--"])
        .args(["sh", "-c", "touch \"$1\"", "sh"])
        .arg(&ran)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until(
        "schedule to name the version",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log).is_ok_and(|s| s.contains("Redis 5.0.6 is older"))
                || child.try_wait().unwrap().is_some()
        },
    );
    if child.try_wait().unwrap().is_none() {
        send_signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(
        matches!(status.code(), Some(0 | 69)),
        "{status:?}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(!ran.exists(), "schedule ran the command");
    // The check travels with the first request (no round trip of its
    // own), so that request may have run; a grant is given back at once:
    // no lock and no holder left, at most the fencing counter the
    // attempts raised (none when Redis 5.0 refused the scripts' flags
    // line, `#!lua`, before running them).
    let keys: Vec<String> = server.query(&["KEYS", "*"]);
    assert!(
        keys.iter().all(|n| *n == fence_key(&k)),
        "left behind: {keys:?}"
    );

    let o = Rr::on(&server)
        .args(["doctor", "--key", &k])
        .status(1)
        .run();
    let out = stdout(&o);
    let l = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("version"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        l.trim_start().starts_with("fail") && l.contains("Redis 5.0.6 is older"),
        "{l}"
    );
}

/// doctor through a Sentinel and a Cluster URL of Valkey nodes names the
/// server as Valkey, and each feature check gets an answer (none
/// "unknown").
#[test]
fn doctor_through_valkey_sentinel_and_cluster() {
    with_server(ServerKind::Valkey91, || {
        let sentinel = topology::SentinelSetup::start();
        let cluster = topology::ClusterSetup::start();
        for url in [sentinel.url(), cluster.url()] {
            let o = Rr::urls(std::slice::from_ref(&url))
                .args(["doctor", "--key", "doc"])
                .run();
            let out = stdout(&o);
            let line = |name: &str| {
                out.lines()
                    .find(|l| l.split_whitespace().nth(1) == Some(name))
                    .unwrap_or_else(|| panic!("{url}: no {name} line in\n{out}"))
                    .to_string()
            };
            assert!(line("version").contains("Valkey 9.1."), "{url}: {out}");
            for name in ["acl", "pubsub", "scan", "wait"] {
                assert!(
                    line(name).trim_start().starts_with("ok"),
                    "{url}: {name}: {out}"
                );
            }
        }
    });
}

/// In a quorum, an older master counts as a master that failed: two
/// supported masters of three still make a quorum, and the older one is
/// named at -v; with two older masters of three there is no quorum (69).
#[test]
fn an_older_master_in_a_quorum_counts_as_failed() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    let old = RedisServer::start_kind(ServerKind::Redis50, &[]);
    let old2 = RedisServer::start_kind(ServerKind::Redis50, &[]);
    let k = key("old-quorum");
    let o = Rr::urls(&[a.url(), b.url(), old.url()])
        .args(["-v", "--key", &k, "--", "true"])
        .status(0)
        .run();
    assert!(
        stderr(&o).contains("Redis 5.0.6 is older"),
        "{}",
        stderr(&o)
    );
    assert!(!old.exists(&k), "a lock left on the older master");
    let o = Rr::urls(&[a.url(), old.url(), old2.url()])
        .args(["--key", &k, "--", "true"])
        .status(69)
        .run();
    assert!(
        stderr(&o).contains("Redis 5.0.6 is older"),
        "{}",
        stderr(&o)
    );
    for s in [&a, &old, &old2] {
        assert!(!s.exists(&k), "a lock left on :{}", s.port);
    }
}

/// `release --force` against a too-old server: the refusal (69, "cannot
/// reach Redis to release") must be true, the lock that is there kept. The
/// server check answers with the first request on a new connection, so
/// the forced delete had already run when the refusal came.
#[test]
fn an_older_server_keeps_the_lock_a_refused_release_names() {
    let server = RedisServer::start_kind(ServerKind::Redis50, &[]);
    let k = key("old-release");
    let _: () = redis::cmd("SET")
        .arg(&k)
        .arg("someone")
        .query(&mut server.conn())
        .unwrap();
    let o = Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .within(Duration::from_secs(10))
        .status(69)
        .stderr_has("Redis 5.0.6")
        .run();
    assert_eq!(
        server.get(&k).as_deref(),
        Some("someone"),
        "refused (69), yet the lock was deleted: {}",
        stderr(&o)
    );
}
