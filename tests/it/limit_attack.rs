//! Attacks on `--limit N` (issue 13): each test makes one way the
//! guarantees could break happen against real processes and servers.

use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;

use crate::support::*;

fn holders_key(k: &str) -> String {
    format!("{{{k}}}:redlock-run:holders")
}

fn limit_key(k: &str) -> String {
    format!("{{{k}}}:redlock-run:limit")
}

/// The first holder of an empty key crashes before its first renewal
/// (SIGKILL of redlock-run; the guardian ends the command). Its slot
/// frees itself at its lease end, and with it every key it wrote but the
/// fencing counter: nothing of ours stays in Redis for good.
#[test]
fn a_first_holder_that_crashes_leaves_no_key_behind() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("attack-crash-first");
    // A long refresh: the crash comes before any renewal.
    let (h, _) = Holder::start(
        &server,
        &k,
        dir.path(),
        &["--limit", "2", "--ttl", "3s", "--refresh", "1s"],
    );
    let guardian = guardian_of(h.pid());
    send_signal(h.pid() as u32, nix::sys::signal::Signal::SIGKILL);
    assert_eq!(h.wait().status.signal(), Some(9));
    if let Some(g) = guardian {
        wait_gone(g, Duration::from_secs(10));
    }
    // Every key but the counter lives no longer than the lease.
    for name in [k.clone(), holders_key(&k), limit_key(&k)] {
        let pttl = server.pttl(&name);
        assert!(
            (0..=3000).contains(&pttl),
            "{name} has PTTL {pttl} after the holder crashed"
        );
    }
    wait_until(
        "the crashed slot's key to expire",
        Duration::from_secs(5),
        || !server.exists(&k),
    );
    wait_until("its description to go too", Duration::from_secs(1), || {
        !server.exists(&holders_key(&k))
    });
    assert!(!server.exists(&limit_key(&k)));
}
