//! Holding under `--limit N`: at most N commands under KEY at once, each
//! with its own lease, renewal, release and fencing token; a crashed
//! holder's slot frees itself at its lease end and not before; instances
//! that disagree on N are refused (exit 2) from what Redis stores; several
//! masters are refused before any request.

use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;

use super::*;
use crate::support::*;

/// Slots held now (live or not yet pruned): token -> lease end (ms).
fn slots(server: &RedisServer, k: &str) -> Vec<(String, u64)> {
    redis::cmd("ZRANGE")
        .arg(k)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut server.conn())
        .unwrap()
}

/// One line of a section log: `start|end ID FENCE`.
fn parse(line: &str) -> (&str, &str, u64) {
    let f: Vec<&str> = line.split(' ').collect();
    (f[0], f[1], f[2].parse().unwrap())
}

/// Check a section log written with O_APPEND (its line order is the real
/// order of the writes): never more than `n` sections at once, every
/// section's token unique, and a section that starts after another ended
/// has a greater token. Returns the most sections seen at once.
fn check_sections(text: &str, n: usize) -> usize {
    let mut open: Vec<(&str, u64)> = Vec::new();
    // The greatest token of the sections that have ended so far.
    let mut ended_max = 0;
    let mut seen = std::collections::HashSet::new();
    let mut most = 0;
    for line in text.lines() {
        match parse(line) {
            ("start", id, fence) => {
                assert!(seen.insert(fence), "token {fence} issued twice\n{text}");
                assert!(
                    fence > ended_max,
                    "section {id} got token {fence} after a section with {ended_max} ended\n{text}"
                );
                open.push((id, fence));
                most = most.max(open.len());
                assert!(open.len() <= n, "{} sections at once\n{text}", open.len());
            }
            ("end", id, fence) => {
                let i = open
                    .iter()
                    .position(|&(o, f)| o == id && f == fence)
                    .unwrap_or_else(|| panic!("section {id} ended without starting\n{text}"));
                open.remove(i);
                ended_max = ended_max.max(fence);
            }
            other => panic!("bad line {other:?}"),
        }
    }
    assert!(open.is_empty(), "sections never ended: {open:?}");
    most
}

#[test]
fn the_checker_catches_too_many_sections_and_reused_tokens() {
    let ok = "start a 1\nstart b 2\nend a 1\nstart c 3\nend b 2\nend c 3\n";
    assert_eq!(check_sections(ok, 2), 2);
    for bad in [
        // three at once with N = 2
        "start a 1\nstart b 2\nstart c 3\nend a 1\nend b 2\nend c 3\n",
        // a token issued twice
        "start a 1\nend a 1\nstart b 1\nend b 1\n",
        // a later section with a smaller token
        "start a 2\nend a 2\nstart b 1\nend b 1\n",
    ] {
        let r = std::panic::catch_unwind(|| check_sections(bad, 2));
        assert!(r.is_err(), "not caught: {bad:?}");
    }
}

#[test]
fn at_most_n_sections_overlap_and_tokens_follow_real_time() {
    const N: usize = 3;
    const CONTENDERS: usize = 7;
    const SECTIONS: usize = 6;
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("limit-contend");
    let log = dir.path().join("sections");
    let script = r#"echo "start $1 $REDLOCK_FENCING_TOKEN" >> "$2"
sleep 0.05
echo "end $1 $REDLOCK_FENCING_TOKEN" >> "$2""#;
    let limit = N.to_string();
    std::thread::scope(|s| {
        for c in 0..CONTENDERS {
            let (server, k, log, limit) = (&server, &k, &log, &limit);
            s.spawn(move || {
                for i in 0..SECTIONS {
                    let id = format!("{c}.{i}");
                    Rr::on(server)
                        .args(["--key", k, "--limit", limit, "--timeout", "60s"])
                        .args(["--ttl", "5s", "--"])
                        .args(["sh", "-c", script, "sh", &id])
                        .arg(log)
                        .within(Duration::from_secs(90))
                        .status(0)
                        .run();
                }
            });
        }
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 2 * CONTENDERS * SECTIONS, "{text}");
    let most = check_sections(&text, N);
    // The limit is used, not just respected: a lock that let one at a
    // time would pass the checks above.
    assert_eq!(most, N, "never {N} sections at once\n{text}");
    assert_idle(&server, &k);
    // The history has the last 20 runs, each with its own token, all ok.
    let (_, v) = status_json(&server, &k);
    let runs = v["last_runs"].as_array().expect("last_runs");
    assert_eq!(runs.len(), 20, "{v}");
    let tokens: std::collections::HashSet<u64> = runs
        .iter()
        .map(|r| r["fencing_token"].as_u64().unwrap())
        .collect();
    assert_eq!(tokens.len(), 20, "a token recorded twice: {v}");
    assert!(runs.iter().all(|r| r["outcome"] == "ok"), "{v}");
}

/// A waiter that finds every slot taken for all of --timeout exits 75
/// (or -E's code), runs nothing, and leaves the queue.
#[test]
pub(crate) fn a_wait_for_a_full_key_times_out_with_75_and_leaves_the_queue() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("limit-timeout");
    let (a, _) = Holder::start(&server, &k, dir.path(), &["--limit", "2"]);
    let (b, _) = Holder::start(&server, &k, dir.path(), &["--limit", "2"]);
    let o = try_run(&server, &k, &["--limit", "2", "--timeout", "1500ms"])
        .status(75)
        .run();
    assert!(stdout(&o).is_empty(), "it ran");
    try_run(
        &server,
        &k,
        &["--limit", "2", "--timeout", "300ms", "-E", "9"],
    )
    .status(9)
    .run();
    assert_eq!(queued(&server, &k), 0);
    for h in [a, b] {
        h.finish_ok();
    }
}

#[test]
fn a_crashed_holders_slot_frees_at_its_lease_end_not_before() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("limit-crash");
    let args = ["--limit", "2", "--ttl", "2s"];
    let (crashed, crashed_env) = Holder::start(&server, &k, dir.path(), &args);
    let (live, live_env) = Holder::start(&server, &k, dir.path(), &args);
    assert!(live_env.fencing > crashed_env.fencing);

    // redlock-run dies without a release; its guardian ends the command.
    let guardian = guardian_of(crashed.pid());
    send_signal(crashed.pid() as u32, nix::sys::signal::Signal::SIGKILL);
    let o = crashed.wait();
    assert_eq!(o.status.signal(), Some(9));
    if let Some(g) = guardian {
        wait_gone(g, Duration::from_secs(10));
    }
    // The slot's lease end (ms since the epoch, Redis's clock: the same
    // machine's as ours), read after the kill: no renewal moves it now.
    let (_, end_ms) = slots(&server, &k)
        .into_iter()
        .find(|(t, _)| *t == crashed_env.token)
        .expect("the crashed holder's slot is still there");
    assert!(
        end_ms > redis_now_ms(&server),
        "the slot's lease had ended before the test could look"
    );

    // A newcomer waits for that slot (the live holder keeps the other)
    // and gets it once the lease has ended, not before.
    let ready = dir.path().join("third");
    Rr::on(&server)
        .args([
            "--key",
            &k,
            "--limit",
            "2",
            "--ttl",
            "2s",
            "--timeout",
            "10s",
        ])
        .args(["--", "sh", "-c"])
        .arg("echo $REDLOCK_FENCING_TOKEN $(date +%s%N) > \"$0\"")
        .arg(&ready)
        .within(Duration::from_secs(20))
        .status(0)
        .run();
    let line = std::fs::read_to_string(&ready).unwrap();
    let (fence, started_ns) = line.trim().split_once(' ').unwrap();
    let fence: u64 = fence.parse().unwrap();
    let started_ms = started_ns.parse::<u64>().unwrap() / 1_000_000;
    assert!(
        started_ms >= end_ms,
        "the slot was taken over {} ms before the crashed holder's lease ended",
        end_ms - started_ms
    );
    // Taken over soon after (the waiter retries when the first lease in
    // the set ends), not at the end of --timeout.
    assert!(
        started_ms < end_ms + 3000,
        "taken over {} ms after the lease ended",
        started_ms - end_ms
    );
    assert!(
        fence > live_env.fencing,
        "token {fence} after {}",
        live_env.fencing
    );
    // The live holder was never disturbed.
    assert!(alive(live.pid()));
    let o = live.finish();
    assert_exit(&o, 0);
}

/// A refusal (exit 2) whose error line names both limits.
fn assert_mismatch(o: &std::process::Output, theirs: &str, ours: &str) {
    assert_exit(o, 2);
    let err = stderr(o);
    let line = err
        .lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.contains(&format!("in use with {theirs}"))
            && line.contains(&format!("this instance has --limit {ours}")),
        "{line:?}"
    );
}

#[test]
pub(crate) fn instances_that_disagree_on_n_are_refused_from_what_redis_stores() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("limit-mismatch");

    // Held with --limit 3: another N, --limit 1 included, is refused,
    // also while waiting, and nothing runs.
    let (three, _) = Holder::start(&server, &k, dir.path(), &["--limit", "3"]);
    for (extra, ours) in [
        (&["--limit", "2"][..], "2"),
        (&[][..], "1"),
        (&["--limit", "1", "--timeout", "5s"][..], "1"),
        (&["--limit", "4", "--timeout", "5s"][..], "4"),
    ] {
        let o = try_run(&server, &k, extra).run();
        assert_mismatch(&o, "--limit 3", ours);
        assert!(stdout(&o).is_empty(), "it ran: {extra:?}");
    }
    // schedule is refused the same way, and stops.
    let o = Rr::on(&server)
        .args(["schedule", "--every", "1s", "--key", &k, "--limit", "2"])
        .args(["--", "echo", "ran"])
        .within(Duration::from_secs(20))
        .run();
    assert_mismatch(&o, "--limit 3", "2");
    assert!(stdout(&o).is_empty());
    // The same N shares the key.
    try_run(&server, &k, &["--limit", "3"]).status(0).run();
    three.finish_ok();

    // Idle again: the stored N is gone with its last holder, so the key
    // can be used with another N (no stale refusal).
    assert!(!server.exists(&limit_key(&k)));
    try_run(&server, &k, &["--limit", "2"]).status(0).run();

    // Held by a one-holder instance, or by any client with a plain
    // string at KEY: --limit N is refused.
    let (one, _) = Holder::start(&server, &k, dir.path(), &[]);
    let o = try_run(&server, &k, &["--limit", "3", "--timeout", "5s"]).run();
    assert_mismatch(&o, "--limit 1", "3");
    one.finish_ok();
    let _: () = redis::cmd("SET")
        .arg(&k)
        .arg("someone-else")
        .arg("PX")
        .arg(10_000)
        .query(&mut server.conn())
        .unwrap();
    let o = try_run(&server, &k, &["--limit", "3"]).run();
    assert_mismatch(&o, "--limit 1", "3");
    assert_eq!(server.get(&k).as_deref(), Some("someone-else"));
}

#[test]
fn the_stored_n_lives_while_a_waiter_waits_with_no_holder_left() {
    use nix::sys::signal::Signal::{SIGCONT, SIGSTOP};
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("limit-waiter");
    // Two --limit 2 holders fill the key; a third waits in the queue.
    let (a, _) = Holder::start(&server, &k, dir.path(), &["--limit", "2"]);
    let (b, _) = Holder::start(&server, &k, dir.path(), &["--limit", "2"]);
    let waiter = Holder::spawn(
        &server,
        &k,
        dir.path(),
        &["--limit", "2", "--timeout", "30s"],
    );
    wait_until("the waiter to queue", Duration::from_secs(10), || {
        queued(&server, &k) == 1
    });
    // The waiter is stopped while both holders leave: KEY is gone, and
    // only the stored N still tells of the --limit 2 waiter.
    send_signal(waiter.pid() as u32, SIGSTOP);
    a.finish_ok();
    b.finish_ok();
    assert!(!server.exists(&k));
    let o = try_run(&server, &k, &[]).run();
    assert_mismatch(&o, "--limit 2", "1");
    let o = try_run(&server, &k, &["--limit", "3"]).run();
    assert_mismatch(&o, "--limit 2", "3");
    // The waiter goes on and gets its slot.
    send_signal(waiter.pid() as u32, SIGCONT);
    waiter.wait_ready(Duration::from_secs(10));
    waiter.finish_ok();
    assert_idle(&server, &k);
}

#[test]
fn several_masters_with_a_limit_are_refused_before_any_request() {
    let servers = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let k = key("limit-quorum");
    for pre in [&[][..], &["schedule", "--every", "1s"][..]] {
        let o = Rr::urls(&urls)
            .args(pre)
            .args(["--key", &k, "--limit", "2", "--", "echo", "ran"])
            .within(Duration::from_secs(20))
            .status(2)
            .run();
        let first = stderr(&o).lines().next().unwrap_or_default().to_string();
        assert!(
            first.contains("--limit 2 needs a single --redis URL"),
            "{first:?}"
        );
        assert!(stdout(&o).is_empty());
    }
    for s in &servers {
        assert_eq!(
            s.query::<i64>(&["DBSIZE"]),
            0,
            "a request reached {}",
            s.url()
        );
    }
    // --limit 1 is the one-holder lock: fine over a quorum.
    Rr::urls(&urls)
        .args(["--key", &k, "--limit", "1", "--", "echo", "ran"])
        .within(Duration::from_secs(20))
        .status(0)
        .run();
}

#[test]
pub(crate) fn each_holder_renews_its_own_lease_and_a_lost_slot_stops_its_command() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("limit-renew");
    let args = ["--limit", "2", "--ttl", "1s"];
    let (a, a_env) = Holder::start(&server, &k, dir.path(), &args);
    let (b, b_env) = Holder::start(&server, &k, dir.path(), &args);
    // Both outlive several leases: each slot's end keeps moving.
    let end = |token: &str| {
        slots(&server, &k)
            .into_iter()
            .find(|(t, _)| t == token)
            .map(|(_, e)| e)
    };
    let (a0, b0) = (end(&a_env.token).unwrap(), end(&b_env.token).unwrap());
    wait_until(
        "both leases to be renewed past their first end",
        Duration::from_secs(10),
        || {
            let now = redis_now_ms(&server);
            now > a0.max(b0) + 1000
        },
    );
    assert!(end(&a_env.token).unwrap() > a0 && end(&b_env.token).unwrap() > b0);
    assert!(alive(a.pid()) && alive(b.pid()));

    // B's slot is taken away (as by `release --force` of one holder):
    // B's command is stopped and B exits 70; A runs on untouched.
    let _: i64 = redis::cmd("ZREM")
        .arg(&k)
        .arg(&b_env.token)
        .query(&mut server.conn())
        .unwrap();
    let o = b.wait();
    assert_exit(&o, 70);
    assert!(end(&a_env.token).is_some());
    a.finish_ok();
}

#[test]
fn min_hold_keeps_the_slot_after_the_command_ends() {
    let server = RedisServer::start();
    let k = key("limit-minhold");
    let t0 = redis_now_ms(&server);
    for _ in 0..2 {
        try_run(&server, &k, &["--limit", "2", "--min-hold", "3s"])
            .status(0)
            .run();
    }
    // Both slots are kept to the end of --min-hold: a third is refused.
    let held = slots(&server, &k);
    assert_eq!(held.len(), 2, "{held:?}");
    for (_, end) in &held {
        assert!(
            *end >= t0 + 3000 - 50 && *end <= t0 + 3000 + 2000,
            "{held:?}"
        );
    }
    let o = try_run(&server, &k, &["--limit", "2"]).status(75).run();
    assert!(stdout(&o).is_empty());
}
