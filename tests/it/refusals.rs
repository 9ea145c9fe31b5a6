//! A master that refuses writes for now (`OOM`, `MISCONF`, `READONLY`, ...)
//! is an outage: the wait goes on until --timeout and ends with 69 if
//! Redis never granted, or runs the command once the master accepts
//! writes again. Real refusals from a real redis-server.

use std::time::{Duration, Instant};

use crate::support::*;

/// Error replies the server has sent so far (INFO stats).
fn error_replies(server: &RedisServer) -> u64 {
    let info: String = server.query(&["INFO", "stats"]);
    info.lines()
        .find_map(|l| l.strip_prefix("total_error_replies:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no total_error_replies in INFO stats:\n{info}"))
}

/// With `server` refusing writes: `--timeout 1s` waits out the timeout and
/// exits 69, naming `code`; then a waiter that sees a refusal runs its
/// command (exit 0) once `accept` made the server take writes again.
fn refused_until_accepted(server: &RedisServer, code: &str, accept: impl FnOnce()) {
    let k = key("refused");
    let start = Instant::now();
    let o = Rr::on(server)
        .args(["--timeout", "1s", "--key", &k, "--", "true"])
        .run();
    let took = start.elapsed();
    assert_status(&o, 69, code);
    assert!(
        took >= Duration::from_secs(1),
        "{code}: gave up after {took:?}, before --timeout: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(code), "{code}: {}", stderr(&o));
    assert!(!server.exists(&k));

    let before = error_replies(server);
    let waiter = spawn_piped(rr(server).args(["--timeout", "20s", "--key", &k, "--", "true"]));
    wait_until(
        &format!("a {code} refusal"),
        Duration::from_secs(10),
        || error_replies(server) > before,
    );
    accept();
    let o = wait_output(waiter, Duration::from_secs(30));
    assert_status(&o, 0, code);
}

#[test]
fn out_of_memory_is_waited_out() {
    let server = RedisServer::start();
    let filler = "x".repeat(1000);
    for i in 0..100 {
        server.query::<()>(&["SET", &format!("filler-{i}"), &filler]);
    }
    server.query::<()>(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    server.query::<()>(&["CONFIG", "SET", "maxmemory", "1"]);
    refused_until_accepted(&server, "OOM", || {
        server.query::<()>(&["CONFIG", "SET", "maxmemory", "0"]);
    });
}

/// MISCONF: save points are set, a background save failed (its directory
/// is gone: root ignores permissions, so an unwritable one would not do),
/// and stop-writes-on-bgsave-error is on.
#[test]
fn a_failed_save_is_waited_out() {
    let server = RedisServer::start_with(&["--enable-protected-configs", "yes"]);
    let gone = tempfile::tempdir().unwrap();
    let dir = gone.path().to_str().unwrap().to_string();
    server.query::<()>(&["CONFIG", "SET", "dir", &dir]);
    server.query::<()>(&["CONFIG", "SET", "save", "3600 1"]);
    server.query::<()>(&["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"]);
    drop(gone);
    server.query::<String>(&["BGSAVE"]);
    wait_until(
        "the background save to fail",
        Duration::from_secs(10),
        || {
            let info: String = server.query(&["INFO", "persistence"]);
            info.contains("rdb_last_bgsave_status:err") && info.contains("rdb_bgsave_in_progress:0")
        },
    );
    refused_until_accepted(&server, "MISCONF", || {
        server.query::<()>(&["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"]);
    });
}

/// READONLY: pointed at a replica; it accepts writes once promoted.
#[test]
fn a_replica_is_waited_out() {
    let master = RedisServer::start();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    refused_until_accepted(&replica, "READONLY", || {
        replica.query::<()>(&["REPLICAOF", "NO", "ONE"]);
    });
}
