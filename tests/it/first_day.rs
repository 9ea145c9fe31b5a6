//! What a first-day user meets before reading the docs (issue 26.2,
//! 26.6): two `--redis` URLs are not failover, and the tool says so.

use crate::support::*;

/// Two URLs are a 2-of-2 quorum: with one server down nothing runs, and
/// the warning says exactly that (and what to use for failover) before
/// the run fails.
#[test]
fn two_urls_warn_that_one_server_down_stops_every_run() {
    let up = RedisServer::start();
    let down = format!("redis://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let k = key("two-urls");
    let out = output(
        rr_urls(&[up.url(), down])
            .args(["--key", &k, "--", "sh", "-c", "echo ran > ran"])
            .current_dir(dir.path()),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(69), "stderr:\n{err}");
    assert!(!dir.path().join("ran").exists(), "the command ran");
    let warning = err
        .lines()
        .find(|l| l.contains("warn"))
        .unwrap_or_else(|| panic!("no warning; stderr:\n{err}"));
    for needle in [
        "one server down stops every run",
        "not failover",
        "redis+sentinel://",
    ] {
        assert!(
            warning.contains(needle),
            "the warning should say {needle:?}: {warning}"
        );
    }
    assert!(!up.exists(&k), "a lock was left on the server that is up");
}
