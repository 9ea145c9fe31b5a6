//! Fencing that survives a lost counter (spec, "Additions (2026-12-05)",
//! "Fencing survives a lost counter"; issue 24.7): each new token is the
//! greater of the stored counter plus one and the server's clock in
//! microseconds, so tokens keep rising after `FLUSHALL` or a restart
//! without persistence, for one holder and `--limit` alike, and stay below
//! 2^53. And quorum mode meets `--limit` (issue 24.5): a `--limit`
//! mismatch on any master refuses the attempt (exit 2) and undoes the
//! grants on the others.

use crate::support::*;

/// One run under `k` with `extra` options: the fencing token its command
/// saw.
fn token_of_a_run(urls: &[String], k: &str, extra: &[&str]) -> u64 {
    let o = Rr::urls(urls)
        .args(["--key", k])
        .args(extra)
        .args(["--", "sh", "-c", "echo $REDLOCK_FENCING_TOKEN"])
        .status(0)
        .run();
    stdout(&o)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no token in {:?}", stdout(&o)))
}

/// Tokens after the data is gone (`FLUSHALL`, then a restart of a server
/// without persistence) are greater than every token issued before, and
/// below 2^53.
fn tokens_keep_rising_after_the_counter_is_lost(extra: &[&str]) {
    let mut server = RedisServer::start_with(&["--appendonly", "no"]);
    let urls = [server.url()];
    let k = key("fencing-lost");
    let mut before: Vec<u64> = (0..3).map(|_| token_of_a_run(&urls, &k, extra)).collect();
    assert!(before.windows(2).all(|w| w[0] < w[1]), "{before:?}");
    let _: () = server.query(&["FLUSHALL"]);
    let after_flush = token_of_a_run(&urls, &k, extra);
    let most = *before.iter().max().unwrap();
    assert!(
        after_flush > most,
        "{extra:?}: {after_flush} after FLUSHALL, {before:?} before"
    );
    before.push(after_flush);
    server.restart();
    assert!(!server.exists(&fence_key(&k)), "the restart kept the data");
    let after_restart = token_of_a_run(&urls, &k, extra);
    assert!(
        after_restart > after_flush,
        "{extra:?}: {after_restart} after an empty restart, {before:?} before"
    );
    assert!(after_restart < 1 << 53);
}

#[test]
fn one_holder_tokens_keep_rising_after_flushall_and_an_empty_restart() {
    tokens_keep_rising_after_the_counter_is_lost(&[]);
}

#[test]
fn limit_tokens_keep_rising_after_flushall_and_an_empty_restart() {
    tokens_keep_rising_after_the_counter_is_lost(&["--limit", "2"]);
}

/// Three masters; the third is also the one master of `--limit 2`
/// holders of the same key. A one-holder run over all three gets grants
/// from the first two (a quorum) and the third's `--limit 2`: it is
/// refused with exit 2, its command does not run, and nothing of the
/// attempt is left on the first two. The `--limit` holder is untouched.
#[test]
fn a_limit_mismatch_on_any_master_refuses_a_quorum_attempt_and_undoes_its_grants() {
    let masters: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let urls: Vec<String> = masters.iter().map(RedisServer::url).collect();
    let dir = tempfile::tempdir().unwrap();
    let k = key("quorum-limit");
    let (holder, env) = Holder::start(&masters[2], &k, dir.path(), &["--limit", "2"]);
    for attempt in 0..5 {
        let ran = dir.path().join(format!("ran-{attempt}"));
        Rr::urls(&urls)
            .args(["--key", &k, "--", "touch"])
            .arg(&ran)
            .status(2)
            .stderr_has("--limit 2")
            .run();
        assert!(!ran.exists(), "the command ran beside a --limit holder");
        for m in &masters[..2] {
            assert!(!m.exists(&k), "the attempt's grant was left on {}", m.url());
        }
    }
    assert!(
        masters[2]
            .query::<Option<f64>>(&["ZSCORE", &k, &env.token])
            .is_some(),
        "the --limit holder lost its slot"
    );
    holder.finish_ok();
}
