//! Attacks on `--limit N` (issue 13): each test makes one way the
//! guarantees could break happen against real processes and servers.

use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;

use super::{assert_idle, holders_key, limit_key, try_run};
use crate::support::topology::{ClusterSetup, SlotMove};
use crate::support::*;

/// A slot's lease end (ms, Redis's clock) on `server`, if it is there.
fn slot_end(server: &RedisServer, k: &str, token: &str) -> Option<u64> {
    redis::cmd("ZSCORE")
        .arg(k)
        .arg(token)
        .query::<Option<f64>>(&mut server.conn())
        .unwrap()
        .map(|s| s as u64)
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

/// A Cluster slot migrates while a `--limit 2` holder runs: its renewals
/// go on (on the old node, then the new one), as a one-holder lock's do
/// (topology::cluster_slot_migration_while_the_lock_is_held), and it
/// exits 0. A renewal naming a key it does not touch and that does not
/// exist (the run history, before any run ended) is refused with TRYAGAIN
/// for as long as the slot is MIGRATING.
#[test]
fn cluster_slot_migration_while_a_limit_holder_runs() {
    let c = ClusterSetup::start();
    let url = c.url();
    let k = key("attack-migrate");
    let SlotMove { slot, from, to } = c.slot_move(&k);
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn_at(
        &url,
        &k,
        dir.path(),
        &["--limit", "2", "--ttl", "3s", "--refresh", "200ms"],
    );
    let env = holder.wait_ready(Duration::from_secs(10));
    c.migrate_slot(slot, from, to, || {
        // The slot is MIGRATING with every key still on the old node:
        // renewals must land there.
        let before = slot_end(&c.nodes[from], &k, &env.token).expect("our slot");
        wait_until(
            "a renewal while the slot is MIGRATING",
            Duration::from_secs(2),
            || slot_end(&c.nodes[from], &k, &env.token).is_some_and(|e| e > before),
        );
    });
    assert_eq!(c.owner(slot), to);
    let moved = slot_end(&c.nodes[to], &k, &env.token).expect("our slot moved");
    wait_until("a renewal on the new node", Duration::from_secs(3), || {
        slot_end(&c.nodes[to], &k, &env.token).is_some_and(|e| e > moved)
    });
    holder.finish_ok();
    assert!(!c.nodes[to].exists(&k), "released on the new node");
}

/// A one-holder run whose lock was broken (`release --force`) and then
/// taken by a `--limit 2` instance finds a sorted set at KEY: the key is
/// taken by someone else, so its command is stopped at once (exit 70), as
/// when another holder's string is found, not left running beside the
/// new holder until its own lease runs out.
#[test]
fn a_one_holder_finding_a_limit_set_at_its_key_stops_at_once() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("attack-one-meets-set");
    let (one, _) = Holder::start(
        &server,
        &k,
        dir.path(),
        &["--ttl", "10s", "--refresh", "1s"],
    );
    Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .within(Duration::from_secs(10))
        .status(0)
        .run();
    let (two, _) = Holder::start(&server, &k, dir.path(), &["--limit", "2"]);
    let taken = std::time::Instant::now();
    let o = one.wait();
    let after = taken.elapsed();
    assert_exit(&o, 70);
    // One renewal (every 1s) finds the set; the lease would have run out
    // (SIGTERM) only about 6.5s after the last good renewal.
    assert!(
        after < Duration::from_secs(3),
        "the one-holder command ran {after:?} beside the --limit holder"
    );
    two.finish_ok();
}

/// A `--limit 2` attempt on an empty key whose reply is lost is undone
/// (exit 69, nothing ran). With no holder and no waiter left, nothing may
/// keep the key from being used with another N: a `--limit 1` run right
/// after must run, not be refused (exit 2) for a whole --ttl by the N the
/// undone attempt stored.
#[test]
fn an_undone_attempt_leaves_no_stored_n_behind() {
    use crate::support::proxy::{Mode, Proxy};
    let server = RedisServer::start();
    // A first run loads the scripts, so the attempt is one EVALSHA whose
    // reply is the next one after the mode is set.
    try_run(&server, &key("attack-warm"), &["--limit", "2"])
        .status(0)
        .run();
    let proxy = Proxy::start(server.port);
    let k = key("attack-undone");
    proxy.set_mode(Mode::LoseNextReply);
    let o = Rr::urls(&[proxy.url()])
        .args(["--key", &k, "--limit", "2", "--"])
        .args(["sh", "-c", "echo ran"])
        .within(Duration::from_secs(20))
        .run();
    assert_eq!(
        proxy.mode(),
        Mode::Pass,
        "no reply was lost: the test tested nothing"
    );
    assert_exit(&o, 69);
    assert!(stdout(&o).is_empty(), "it ran");
    assert!(!server.exists(&k), "the undo left the slot");
    assert!(!server.exists(&holders_key(&k)));
    try_run(&server, &k, &[]).status(0).run();
    assert!(!server.exists(&limit_key(&k)));
}

/// Instances with N = 1, 2 and 3 race on an empty key, all at once and
/// again while some wait: whoever stores its N first owns the key, the
/// others are refused (exit 2) or wait their turn; sections with
/// different N never overlap, and no N-group ever has more than N at once.
#[test]
fn instances_with_different_n_racing_on_an_empty_key_never_overlap() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("attack-race");
    let log = dir.path().join("sections");
    let script = r#"echo "start $1" >> "$2"; sleep 0.3; echo "end $1" >> "$2""#;
    let mut codes = Vec::new();
    for round in 0..3 {
        let children: Vec<_> = (0..9)
            .map(|i| {
                let n = (i % 3 + 1).to_string();
                spawn_piped(
                    rr(&server)
                        .args(["--key", &k, "--limit", &n, "--timeout", "5s"])
                        .args(["--", "sh", "-c", script, "sh", &n])
                        .arg(&log),
                )
            })
            .collect();
        for (i, c) in children.into_iter().enumerate() {
            let o = wait_output(c, Duration::from_secs(30));
            codes.push(o.status.code());
            assert!(
                matches!(o.status.code(), Some(0 | 2)),
                "round {round}, instance {i}: {}",
                stderr(&o)
            );
        }
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let mut open: Vec<u32> = Vec::new();
    for line in text.lines() {
        let (what, n) = line.split_once(' ').unwrap();
        let n: u32 = n.parse().unwrap();
        if what == "start" {
            assert!(
                open.iter().all(|&o| o == n),
                "--limit {n} ran beside {open:?}\n{text}"
            );
            open.push(n);
            assert!(open.len() <= n as usize, "{open:?} at once\n{text}");
        } else {
            let i = open.iter().position(|&o| o == n).unwrap();
            open.remove(i);
        }
    }
    // Each round had a winner and refused someone.
    assert!(
        codes.contains(&Some(2)) && codes.contains(&Some(0)),
        "{codes:?}"
    );
    assert_idle(&server, &k);
    assert!(!server.exists(&holders_key(&k)));
}

/// A `--limit 2` holder whose redlock-run is stopped (SIGSTOP) past its
/// lease: its command is killed (by the guardian) before its slot frees,
/// a waiter takes the slot only then, the other holder is untouched, and
/// the stopped one, resumed, exits 70.
#[test]
fn a_stopped_holders_command_dies_before_its_slot_is_taken() {
    use nix::sys::signal::Signal::{SIGCONT, SIGSTOP};
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("attack-stopped");
    let args = ["--limit", "2", "--ttl", "2s"];
    let pidfile = dir.path().join("a.pid");
    let a = spawn_piped(
        rr(&server)
            .args(["--key", &k])
            .args(args)
            .args(["--", "sh", "-c", "echo $$ > \"$0\"; exec sleep 60"])
            .arg(&pidfile),
    );
    let a_cmd = read_pid(&pidfile);
    let (b, _) = Holder::start(&server, &k, dir.path(), &args);
    send_signal(a.id(), SIGSTOP);
    let seen = dir.path().join("seen");
    Rr::on(&server)
        .args(["--key", &k, "--timeout", "10s"])
        .args(args)
        .args(["--", "sh", "-c"])
        // Gone, or a zombie its stopped parent cannot reap yet.
        .arg("case $(cut -d' ' -f3 /proc/$1/stat 2>/dev/null) in ''|Z) echo dead;; *) echo alive;; esac > \"$0\"")
        .arg(&seen)
        .arg(a_cmd.to_string())
        .within(Duration::from_secs(20))
        .status(0)
        .run();
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap().trim(),
        "dead",
        "the slot was taken while the stopped holder's command ran"
    );
    send_signal(a.id(), SIGCONT);
    let o = wait_output(a, Duration::from_secs(20));
    assert_exit(&o, 70);
    b.finish_ok();
    assert_idle(&server, &k);
}

/// SIGTERM while a `--limit 2` attempt is in flight (it landed on Redis,
/// the reply is held back): nothing runs, the exit is 143, and the slot,
/// the description and the stored N are all gone.
#[test]
fn sigterm_while_an_attempt_is_in_flight_leaves_nothing() {
    use crate::support::proxy::{Mode, Proxy};
    let server = RedisServer::start();
    // Load the scripts (the leave's too: a waiter that gives up), so
    // that the leave is one EVALSHA and not a NOSCRIPT whose reply the
    // proxy holds back as well.
    let dir = tempfile::tempdir().unwrap();
    let warm = key("attack-warm");
    let full = [
        Holder::start(&server, &warm, dir.path(), &["--limit", "2"]).0,
        Holder::start(&server, &warm, dir.path(), &["--limit", "2"]).0,
    ];
    try_run(&server, &warm, &["--limit", "2", "--timeout", "300ms"])
        .status(75)
        .run();
    for h in full {
        h.finish_ok();
    }
    let proxy = Proxy::start(server.port);
    let k = key("attack-inflight");
    proxy.set_mode(Mode::HoldReplies);
    for timeout in ["0s", "10s"] {
        let c = spawn_piped(
            rr_urls(&[proxy.url()])
                .args(["--key", &k, "--limit", "2", "--timeout", timeout])
                .args(["--", "sh", "-c", "echo ran"]),
        );
        wait_until("the attempt to land", Duration::from_secs(10), || {
            server.exists(&k)
        });
        send_signal(c.id(), nix::sys::signal::Signal::SIGTERM);
        let o = wait_output(c, Duration::from_secs(20));
        assert_status(&o, 143, timeout);
        assert!(stdout(&o).is_empty(), "{timeout}: it ran");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while server.exists(&k) {
            assert!(
                std::time::Instant::now() < deadline,
                "{timeout}: the slot was not given back: {}",
                stderr(&o)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!server.exists(&holders_key(&k)), "{timeout}");
        assert!(!server.exists(&limit_key(&k)), "{timeout}");
    }
}

/// KEY holds another application's sorted set (a leaderboard, say: small
/// scores). A `--limit 2` attempt must not take it for its own holders:
/// it is refused like any other foreign type (nothing runs), and the
/// other application's members stay, where pruning them as lapsed
/// leases would delete data that is not ours.
#[test]
fn a_foreign_sorted_set_at_key_is_neither_pruned_nor_joined() {
    let server = RedisServer::start();
    let k = key("attack-foreign-zset");
    let _: i64 = redis::cmd("ZADD")
        .arg(&k)
        .arg(10)
        .arg("alice")
        .arg(20)
        .arg("bob")
        .query(&mut server.conn())
        .unwrap();
    let o = try_run(&server, &k, &["--limit", "2"]).run();
    assert!(stdout(&o).is_empty(), "it ran: {}", stderr(&o));
    assert_exit(&o, 69);
    let members: Vec<(String, u64)> = redis::cmd("ZRANGE")
        .arg(&k)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(
        members,
        [("alice".to_string(), 10), ("bob".to_string(), 20)],
        "the other application's data was changed"
    );
    assert!(!server.exists(&limit_key(&k)));
}

/// The stored N lives while a one-holder waiter is woken and not yet
/// back, as it does for `--limit N` waiters (limit.rs): a release wakes
/// the first one-holder waiter (stopped: it cannot come back yet), the
/// second takes the lock on its own re-check and releases it with nobody
/// left in the queue. A `--limit 2` instance must still be refused
/// (exit 2) while the woken waiter is on its way.
#[test]
fn the_stored_one_lives_while_a_woken_one_holder_waiter_is_on_its_way() {
    use nix::sys::signal::Signal::{SIGCONT, SIGSTOP};
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("attack-woken-one");
    let wait_queued = |n: i64| {
        wait_until("the waiter to queue", Duration::from_secs(10), || {
            queued(&server, &k) == n
        })
    };
    let (h, _) = Holder::start(&server, &k, dir.path(), &[]);
    // First in the queue; stopped, so it stays woken and not back.
    let first = Holder::spawn(&server, &k, dir.path(), &["--timeout", "30s"]);
    wait_queued(1);
    send_signal(first.pid() as u32, SIGSTOP);
    let second = spawn_piped(
        rr(&server)
            .args(["--key", &k, "--timeout", "30s", "--"])
            .args(["sh", "-c", "echo second"]),
    );
    wait_queued(2);
    h.finish_ok();
    let o = wait_output(second, Duration::from_secs(20));
    assert_exit(&o, 0);
    assert_eq!(stdout(&o).trim(), "second");
    // Only the woken first waiter uses the key now.
    assert!(!server.exists(&k));
    let o = try_run(&server, &k, &["--limit", "2"]).run();
    assert!(
        stdout(&o).is_empty(),
        "--limit 2 ran beside a --limit 1 waiter"
    );
    assert_exit(&o, 2);
    send_signal(first.pid() as u32, SIGCONT);
    first.wait_ready(Duration::from_secs(10));
    first.finish_ok();
    assert!(!server.exists(&limit_key(&k)));
}

/// Redis restarts (AOF, `appendfsync always`) while two `--limit 2`
/// holders run and a third waits: the slots (scored by lease end on
/// Redis's clock) survive the restart, both holders go on and exit 0,
/// and the waiter gets a slot only when one of them ends, with a greater
/// token.
#[test]
fn a_redis_restart_with_persistence_keeps_every_slot() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let dir = tempfile::tempdir().unwrap();
    let k = key("attack-restart");
    let args = ["--limit", "2", "--ttl", "5s", "--refresh", "500ms"];
    let (a, a_env) = Holder::start(&server, &k, dir.path(), &args);
    let (b, b_env) = Holder::start(&server, &k, dir.path(), &args);
    let mut wargs = args.to_vec();
    wargs.extend(["--timeout", "30s"]);
    let waiter = Holder::spawn(&server, &k, dir.path(), &wargs);
    wait_until("the waiter to queue", Duration::from_secs(10), || {
        queued(&server, &k) == 1
    });
    server.restart();
    // Renewals land again after the restart: both leases move on.
    let now = |s: &RedisServer| {
        let (sec, us): (u64, u64) = redis::cmd("TIME").query(&mut s.conn()).unwrap();
        sec * 1000 + us / 1000
    };
    let t = now(&server);
    wait_until("both slots to be renewed", Duration::from_secs(5), || {
        [&a_env.token, &b_env.token]
            .iter()
            .all(|tok| slot_end(&server, &k, tok).is_some_and(|e| e > t + 4600))
    });
    assert!(!waiter.is_ready(), "a third ran beside two holders");
    a.finish_ok();
    let w_env = waiter.wait_ready(Duration::from_secs(10));
    assert!(w_env.fencing > a_env.fencing.max(b_env.fencing));
    for h in [b, waiter] {
        h.finish_ok();
    }
    assert_idle(&server, &k);
}

/// A `--limit 2` holder's release reply is lost (the connection reset
/// after Redis ran it) while a waiter waits: the retried release finds
/// its own earlier release and reports it (exit 0, not 70), the waiter
/// is woken and runs, and the run is recorded once.
#[test]
fn a_lost_release_reply_is_still_a_release() {
    use crate::support::proxy::{Mode, Proxy};
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Scripts loaded: the release is one EVALSHA.
    try_run(&server, &key("attack-warm"), &["--limit", "2"])
        .status(0)
        .run();
    let proxy = Proxy::start(server.port);
    let k = key("attack-lost-release");
    // A long lease: no renewal can be the reply that gets lost.
    let args = ["--limit", "2", "--ttl", "60s"];
    let a = Holder::spawn_at(&proxy.url(), &k, dir.path(), &args);
    let a_env = a.wait_ready(Duration::from_secs(10));
    let (b, _) = Holder::start(&server, &k, dir.path(), &args);
    let waiter = spawn_piped(
        rr(&server)
            .args(["--key", &k, "--timeout", "20s"])
            .args(args)
            .args(["--", "sh", "-c", "echo $REDLOCK_FENCING_TOKEN"]),
    );
    wait_until("the waiter to queue", Duration::from_secs(10), || {
        queued(&server, &k) == 1
    });
    proxy.set_mode(Mode::LoseNextReply);
    let o = a.finish();
    assert_eq!(
        proxy.mode(),
        Mode::Pass,
        "no reply was lost: the test tested nothing"
    );
    assert_exit(&o, 0);
    let o = wait_output(waiter, Duration::from_secs(20));
    assert_exit(&o, 0);
    let fence: u64 = stdout(&o).trim().parse().unwrap();
    assert!(fence > a_env.fencing);
    let history: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{{{k}}}:redlock-run:history"))
        .arg(0)
        .arg(-1)
        .query(&mut server.conn())
        .unwrap();
    let a_runs = history
        .iter()
        .filter(|e| e.contains(&format!("\"fencing_token\":{},", a_env.fencing)))
        .count();
    assert_eq!(a_runs, 1, "{history:?}");
    b.finish_ok();
}

/// Holders whose wall clocks are an hour ahead and an hour behind (the
/// CLOCK_REALTIME shim of lease.rs (WALLSTEP_C); libfaketime also moves timer
/// deadlines): a slot's lease end is Redis's clock plus the ttl, whatever
/// the holder's clock says, so neither slot is freed early nor kept late,
/// and each frees at its own lease end after a crash.
#[test]
fn skewed_holder_clocks_do_not_move_their_lease_ends() {
    let shim = compile_c(
        "wallstep",
        crate::lease::WALLSTEP_C,
        &["-shared", "-fPIC", "-ldl"],
    );
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("attack-skew");
    let redis_now = || {
        let (sec, us): (u64, u64) = redis::cmd("TIME").query(&mut server.conn()).unwrap();
        sec * 1000 + us / 1000
    };
    let mut holders = Vec::new();
    for skew in ["3600", "-3600"] {
        let step = dir.path().join(format!("step{skew}"));
        std::fs::write(&step, format!("{skew}\n")).unwrap();
        let ready = dir.path().join(format!("ready{skew}"));
        let c = spawn_piped(
            rr(&server)
                .env("LD_PRELOAD", &shim)
                .env("WALLSTEP_FILE", &step)
                .args(["--key", &k, "--limit", "2", "--ttl", "2s", "--"])
                .args(["sh", "-c", "echo $REDLOCK_TOKEN > \"$0\"; exec sleep 60"])
                .arg(&ready),
        );
        let token = wait_for_file(&ready, Duration::from_secs(10));
        let end = slot_end(&server, &k, token.trim()).expect("its slot");
        let now = redis_now();
        assert!(
            end > now + 1000 && end <= now + 2000,
            "clock {skew} s off: the slot ends {} ms from now on Redis's clock",
            end as i64 - now as i64
        );
        holders.push(c);
    }
    try_run(&server, &k, &["--limit", "2"]).status(75).run();
    // Both crash; both slots free within a lease.
    let crashed = redis_now();
    for c in &holders {
        send_signal(c.id(), nix::sys::signal::Signal::SIGKILL);
    }
    for c in holders {
        let _ = wait_output(c, Duration::from_secs(10));
    }
    Rr::on(&server)
        .args(["--key", &k, "--limit", "2", "--timeout", "10s", "--"])
        .args(["sh", "-c", "echo ran"])
        .within(Duration::from_secs(20))
        .status(0)
        .run();
    assert!(redis_now() < crashed + 3000, "the slots were kept late");
}

/// Two `--limit 2` holders through Sentinel with `--wait-replicas 1`; the
/// primary is killed and the replica promoted: both slots (acknowledged
/// by the replica) are there on the new primary, a third finds the key
/// full (75), not free, and once both holders ended (exit 0, or 70 when
/// renewals could not be acknowledged) the slots free again.
#[test]
fn sentinel_failover_keeps_acknowledged_slots() {
    use crate::support::topology::SentinelSetup;
    let mut setup = SentinelSetup::start();
    let url = setup.url();
    let k = key("attack-sentinel");
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--limit",
        "2",
        "--wait-replicas",
        "1",
        "--ttl",
        "6s",
        "--refresh",
        "500ms",
    ];
    let a = Holder::spawn_at(&url, &k, dir.path(), &args);
    let a_env = a.wait_ready(Duration::from_secs(10));
    let b = Holder::spawn_at(&url, &k, dir.path(), &args);
    let b_env = b.wait_ready(Duration::from_secs(10));
    let old = setup.primary();
    let new = 1 - old;
    setup.servers[old].kill();
    setup.wait_promoted(new);
    let server = &setup.servers[new];
    for t in [&a_env.token, &b_env.token] {
        assert!(slot_end(server, &k, t).is_some(), "a slot was lost");
    }
    Rr::urls(std::slice::from_ref(&url))
        .args(["--key", &k, "--limit", "2", "--", "true"])
        .within(Duration::from_secs(20))
        .status(75)
        .run();
    // With no replica left, renewals cannot be acknowledged: a holder may
    // be stopped in time (70), as a one-holder lock's is
    // (topology::sentinel_failover_keeps_an_acknowledged_lock).
    for h in [a, b] {
        let o = h.finish();
        let code = o.status.code();
        assert!(
            code == Some(0) || code == Some(70),
            "{code:?}: {}",
            stderr(&o)
        );
    }
    // A holder that could not reach the new primary in time (the
    // Sentinels name none for a while) leaves its slot to its lease end:
    // then the key is free again.
    Rr::urls(std::slice::from_ref(&url))
        .args(["--key", &k, "--limit", "2", "--timeout", "15s"])
        .args(["--", "true"])
        .within(Duration::from_secs(30))
        .status(0)
        .run();
}

/// `--min-hold` keeps a `--limit 2` slot after the command ended, and
/// records the run in the same step; that step's reply is lost (the
/// connection reset after Redis ran it) and the request is sent again:
/// the run is still recorded once.
#[test]
fn a_lost_min_hold_reply_records_the_run_once() {
    use crate::support::proxy::{Mode, Proxy};
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    try_run(
        &server,
        &key("attack-warm"),
        &["--limit", "2", "--min-hold", "1s"],
    )
    .status(0)
    .run();
    let proxy = Proxy::start(server.port);
    let k = key("attack-lost-min-hold");
    // A long lease: no renewal can be the reply that gets lost.
    let a = Holder::spawn_at(
        &proxy.url(),
        &k,
        dir.path(),
        &["--limit", "2", "--ttl", "60s", "--min-hold", "1h"],
    );
    let env = a.wait_ready(Duration::from_secs(10));
    proxy.set_mode(Mode::LoseNextReply);
    let o = a.finish();
    assert_eq!(
        proxy.mode(),
        Mode::Pass,
        "no reply was lost: the test tested nothing"
    );
    assert_exit(&o, 0);
    assert!(
        slot_end(&server, &k, &env.token).is_some(),
        "held for --min-hold"
    );
    let history: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{{{k}}}:redlock-run:history"))
        .arg(0)
        .arg(-1)
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(history.len(), 1, "{history:#?}");
}

/// `--limit 1` meeting another application's sorted set at KEY behaves
/// as before `--limit` existed: Redis refuses the key's type (exit 69,
/// WRONGTYPE), not a claim that the key is "in use with a --limit above
/// 1" (exit 2) when no instance of ours uses it.
#[test]
fn a_one_holder_meeting_a_foreign_sorted_set_is_refused_as_before() {
    let server = RedisServer::start();
    let k = key("attack-one-foreign-zset");
    let _: i64 = redis::cmd("ZADD")
        .arg(&k)
        .arg(10)
        .arg("alice")
        .query(&mut server.conn())
        .unwrap();
    for extra in [&[][..], &["--timeout", "2s"][..]] {
        let o = try_run(&server, &k, extra).run();
        assert!(stdout(&o).is_empty(), "it ran: {}", stderr(&o));
        assert_status(&o, 69, &format!("{extra:?}"));
        assert!(stderr(&o).contains("WRONGTYPE"), "{}", stderr(&o));
    }
    assert_eq!(server.query::<i64>(&["ZCARD", &k]), 1);
}

/// A Cluster, a key with braces, `--limit 2`: two holders and a waiter.
/// Every script touches the key's slot only (no CROSSSLOT); the waiter
/// subscribes with sharded pub/sub on the key's node, and a release wakes
/// it there (the release's SPUBLISH reaches it: it is noted as woken
/// while it is stopped), and it takes the freed slot with a greater token.
#[test]
fn cluster_limit_waiter_is_woken_on_the_keys_shard() {
    use nix::sys::signal::Signal::{SIGCONT, SIGSTOP};
    let c = ClusterSetup::start();
    let url = c.url();
    let k = format!("{}{{eu}}", key("attack-cluster"));
    let keys = redlock_run::Keys::new(&k);
    let owner = &c.nodes[c.owner(c.slot(&k))];
    let dir = tempfile::tempdir().unwrap();
    let args = ["--limit", "2", "--ttl", "5s"];
    let a = Holder::spawn_at(&url, &k, dir.path(), &args);
    let a_env = a.wait_ready(Duration::from_secs(10));
    let b = Holder::spawn_at(&url, &k, dir.path(), &args);
    let b_env = b.wait_ready(Duration::from_secs(10));
    assert_eq!(owner.query::<i64>(&["ZCARD", &k]), 2);
    let mut wargs = args.to_vec();
    wargs.extend(["--timeout", "20s"]);
    let waiter = Holder::spawn_at(&url, &k, dir.path(), &wargs);
    wait_until("the waiter to queue", Duration::from_secs(10), || {
        owner.query::<i64>(&["ZCARD", &keys.waiters]) == 1
    });
    assert!(owner.shard_subscribers(&keys.channel) > 0);
    send_signal(waiter.pid() as u32, SIGSTOP);
    a.finish_ok();
    assert_eq!(
        owner.query::<i64>(&["ZCARD", &keys.woken]),
        1,
        "the release woke nobody"
    );
    send_signal(waiter.pid() as u32, SIGCONT);
    let w_env = waiter.wait_ready(Duration::from_secs(10));
    assert!(w_env.fencing > a_env.fencing.max(b_env.fencing));
    for h in [b, waiter] {
        h.finish_ok();
    }
    assert!(!owner.exists(&k));
    assert!(!owner.exists(&keys.limit));
}

/// Another client overwrites KEY with a plain string (`SET` without NX)
/// while two `--limit 2` holders run: each one's next renewal finds the
/// key taken, its command is stopped at once (exit 70, long before the
/// lease would run out), and the other client's value stays.
#[test]
fn a_foreign_string_over_the_set_stops_every_holder_at_once() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("attack-foreign-set");
    let args = ["--limit", "2", "--ttl", "10s", "--refresh", "500ms"];
    let (a, _) = Holder::start(&server, &k, dir.path(), &args);
    let (b, _) = Holder::start(&server, &k, dir.path(), &args);
    let _: () = redis::cmd("SET")
        .arg(&k)
        .arg("someone-else")
        .query(&mut server.conn())
        .unwrap();
    let taken = std::time::Instant::now();
    for h in [a, b] {
        let o = h.wait();
        assert_exit(&o, 70);
    }
    assert!(
        taken.elapsed() < Duration::from_secs(3),
        "stopped only after {:?}",
        taken.elapsed()
    );
    assert_eq!(server.get(&k).as_deref(), Some("someone-else"));
}
