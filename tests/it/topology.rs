//! Beyond one Redis: a real Sentinel set-up (failover while a lock is
//! held), `--wait-replicas` against real replicas, and a real three-master
//! Cluster (a key with braces, a slot migrated while a lock is held).

use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::topology::{ClusterSetup, SentinelSetup, SlotMove};
use crate::support::{
    Holder, RedisServer, Rr, assert_exit, assert_status, key, output, rr_urls, stderr, stdout,
    wait_until,
};

/// A waiter for `k` through `url` (`--timeout TIMEOUT`) whose command
/// prints its fencing token: read it with [`printed_fencing`].
fn fencing_waiter(url: &str, k: &str, timeout: &str) -> Child {
    crate::support::spawn_piped(rr_urls(&[url.to_string()]).args([
        "--key",
        k,
        "--timeout",
        timeout,
        "--",
        "sh",
        "-c",
        "echo $REDLOCK_FENCING_TOKEN",
    ]))
}

/// The fencing token a [`fencing_waiter`] printed, once it exited 0
/// (within `limit`).
#[track_caller]
fn printed_fencing(waiter: Child, limit: Duration) -> u64 {
    let out = crate::support::wait_output(waiter, limit);
    assert_exit(&out, 0);
    stdout(&out).trim().parse().unwrap()
}

/// Through a `redis+sentinel://` URL the lock lands on the primary; when
/// the primary fails over while the command runs, the lease is renewed on
/// the new primary (the command is not stopped), the release deletes the
/// key there, and the fencing counter carries on.
#[test]
pub(crate) fn sentinel_follows_a_failover_while_the_lock_is_held() {
    let setup = SentinelSetup::start();
    let url = setup.url();
    let k = key("sentinel");
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn_at(
        &url,
        &k,
        dir.path(),
        &["--ttl", "3s", "--refresh", "200ms", "-vv"],
    );
    let env = holder.wait_ready(Duration::from_secs(10));
    let first = setup.primary();
    assert_eq!(
        setup.servers[first].get(&k).as_deref(),
        Some(env.token.as_str())
    );

    let t = std::time::Instant::now();
    let new = setup.failover();
    eprintln!("failover took {:?}", t.elapsed());
    assert_ne!(new, first);
    // A PTTL close to the full 3 s on the new primary can only come from
    // a renewal sent to it after the failover.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while setup.servers[new].pttl(&k) <= 2_850 {
        if std::time::Instant::now() > deadline {
            let out = holder.finish();
            panic!("no renewal on the new primary: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        setup.servers[new].get(&k).as_deref(),
        Some(env.token.as_str())
    );

    holder.finish_ok();
    assert!(
        !setup.servers[new].exists(&k),
        "released on the new primary"
    );

    let out = Rr::urls(&[url])
        .args(["--key", &k, "--", "sh", "-c", "echo $REDLOCK_FENCING_TOKEN"])
        .status(0)
        .run();
    let next: u64 = stdout(&out).trim().parse().unwrap();
    assert!(next > env.fencing, "{next} after {}", env.fencing);
}

/// `status` and `release --force` go through the Sentinels to the primary.
#[test]
fn sentinel_status_and_release() {
    let setup = SentinelSetup::start();
    let url = setup.url();
    let k = key("sentinel-status");
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn_at(&url, &k, dir.path(), &[]);
    let env = holder.wait_ready(Duration::from_secs(10));
    let out = Rr::urls(std::slice::from_ref(&url))
        .args(["status", "--key", &k, "--json"])
        .status(0)
        .run();
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["held"], true);
    assert_eq!(v["fencing_token"], env.fencing);
    Rr::urls(&[url])
        .args(["release", "--key", &k, "--force"])
        .status(0)
        .run();
    assert!(!setup.servers[setup.primary()].exists(&k));
    let out = holder.wait();
    assert_status(&out, 70, "the holder finds its lock gone");
}

/// Passwords for the data nodes (in the URL's user info) and for the
/// Sentinels (`sentinel_password`) both work, and neither is ever printed,
/// even at trace level or when one is wrong.
#[test]
fn sentinel_with_passwords_never_prints_them() {
    let setup = SentinelSetup::start_with_auth("data-pw-9f3", "sentinel-pw-7c1");
    let hosts = setup.url();
    let hosts = hosts
        .trim_start_matches("redis+sentinel://")
        .trim_end_matches("/mymaster");
    let k = key("sentinel-auth");
    for (data, own, code) in [
        ("data-pw-9f3", "sentinel-pw-7c1", 0),
        ("data-pw-9f3", "wrong-sentinel-pw", 69),
        ("wrong-data-pw", "sentinel-pw-7c1", 69),
    ] {
        let url = format!("redis+sentinel://:{data}@{hosts}/mymaster?sentinel_password={own}");
        let out = Rr::urls(&[url])
            .args(["--key", &k, "-vvv", "--", "sh", "-c", "echo ran"])
            .status(code)
            .run();
        for secret in [data, own] {
            assert!(
                !stderr(&out).contains(secret) && !stdout(&out).contains(secret),
                "{}",
                stderr(&out)
            );
        }
        assert_eq!(stdout(&out).trim() == "ran", code == 0);
    }
}

/// `--wait-replicas`: with no replica to acknowledge it, a grant is undone
/// and the command never runs (exit 69, the key not left behind); with a
/// replica it runs; and when the replica stops acknowledging, renewals
/// fail and the command is stopped before the lease could run out (70).
#[test]
fn wait_replicas_needs_acknowledged_grants_and_renewals() {
    let lone = RedisServer::start();
    let k = key("wait-none");
    let out = Rr::on(&lone)
        .args([
            "--key",
            &k,
            "--wait-replicas",
            "1",
            "--timeout",
            "500ms",
            "--",
            "true",
        ])
        .status(69)
        .run();
    assert!(
        stderr(&out).contains("replicas acknowledged"),
        "{}",
        stderr(&out)
    );
    assert!(!lone.exists(&k), "an unacknowledged grant is undone");

    let primary = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    crate::support::topology::wait_replica_online(&primary);
    let k = key("wait-one");
    let out = Rr::on(&primary)
        .args([
            "--key",
            &k,
            "--wait-replicas",
            "1",
            "--",
            "sh",
            "-c",
            "echo ran",
        ])
        .status(0)
        .run();
    assert_eq!(stdout(&out).trim(), "ran");

    let dir = tempfile::tempdir().unwrap();
    let (holder, _) = Holder::start(
        &primary,
        &k,
        dir.path(),
        &[
            "--wait-replicas",
            "1",
            "--ttl",
            "1500ms",
            "--refresh",
            "300ms",
            "-v",
        ],
    );
    replica.pause();
    let out = holder.wait();
    replica.resume();
    assert_exit(&out, 70);
    assert!(
        stderr(&out).contains("replicas acknowledged"),
        "{}",
        stderr(&out)
    );
}

/// A three-master Cluster: a lock on a key with braces (every script
/// touches one slot: no CROSSSLOT), its fencing counter in the key's slot
/// by the server's own account, and a waiter, subscribed on the key's node,
/// woken by the release.
#[test]
pub(crate) fn cluster_lock_with_braces_and_a_woken_waiter() {
    let c = ClusterSetup::start();
    let url = c.url();
    let k = format!("{}{{eu}}", key("cluster"));
    let fence = redlock_run::Keys::new(&k).fence;
    assert_eq!(c.slot(&fence), c.slot(&k), "CLUSTER KEYSLOT agrees");
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn_at(&url, &k, dir.path(), &["--ttl", "5s"]);
    let env = holder.wait_ready(Duration::from_secs(10));
    let owner = &c.nodes[c.owner(c.slot(&k))];
    assert_eq!(owner.get(&k).as_deref(), Some(env.token.as_str()));
    assert_eq!(
        owner.get(&fence).as_deref(),
        Some(env.fencing.to_string().as_str())
    );

    let waiter = fencing_waiter(&url, &k, "20s");
    let channel = redlock_run::Keys::new(&k).channel;
    // On the key's node, with sharded pub/sub (SSUBSCRIBE: the release's
    // SPUBLISH stays on the key's shard instead of reaching every node);
    // the release script counts its own node's receivers to pick the
    // waiter to wake.
    wait_until(
        "the waiter to subscribe on the key's node",
        Duration::from_secs(10),
        || owner.shard_subscribers(&channel) > 0,
    );
    assert_eq!(owner.subscribers(&channel), 0, "a plain SUBSCRIBE");
    let released = std::time::Instant::now();
    holder.finish_ok();
    let next = printed_fencing(waiter, Duration::from_secs(20));
    assert!(next > env.fencing, "{next} after {}", env.fencing);
    eprintln!("hand-over took {:?}", released.elapsed());

    Rr::urls(&[url])
        .args(["status", "--key", &k, "--json"])
        .status(1)
        .run();
}

/// A slot migrated (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE) while the
/// lock is held: renewals follow ASK and then MOVED, and the release
/// deletes the key on its new node.
#[test]
pub(crate) fn cluster_slot_migration_while_the_lock_is_held() {
    let c = ClusterSetup::start();
    let url = c.url();
    let k = key("migrate");
    let SlotMove { slot, from, to } = c.slot_move(&k);
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn_at(&url, &k, dir.path(), &["--ttl", "3s", "--refresh", "200ms"]);
    let env = holder.wait_ready(Duration::from_secs(10));
    c.migrate_slot(slot, from, to, || {
        // Half-way: renewals still land on the old node (the keys are there).
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            c.nodes[from].pttl(&k) > 2_500,
            "renewed during the migration"
        );
    });
    assert_eq!(c.owner(slot), to);
    wait_until("a renewal on the new node", Duration::from_secs(3), || {
        c.nodes[to].pttl(&k) > 2_850
    });
    assert_eq!(c.nodes[to].get(&k).as_deref(), Some(env.token.as_str()));
    holder.finish_ok();
    assert!(!c.nodes[to].exists(&k), "released on the new node");
}

/// A contender during a slot migration (MIGRATING on the old node,
/// IMPORTING on the new one, no key moved yet: the ASK window) for a key
/// that is visibly held: the acquire script names auxiliary keys that are
/// not there, which the node answers with TRYAGAIN; the contender still
/// exits 75 (held) within its timeout, never 69. A waiter keeps waiting
/// through the migration and gets the lock once it is released.
#[test]
fn a_contender_during_a_slot_migration_gets_75() {
    let c = ClusterSetup::start();
    let url = c.url();
    let k = key("migrate-contend");
    let SlotMove { slot, from, to } = c.slot_move(&k);
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn_at(&url, &k, dir.path(), &["--ttl", "10s"]);
    let env = holder.wait_ready(Duration::from_secs(10));
    let contend = |timeout: &str| {
        let start = Instant::now();
        let o = Rr::urls(std::slice::from_ref(&url))
            .args(["--key", &k, "--timeout", timeout, "--", "true"])
            .run();
        (o, start.elapsed())
    };
    let mut waiter = None;
    c.migrate_slot(slot, from, to, || {
        let (o, took) = contend("0");
        eprintln!("--timeout 0 during the migration: {took:?}");
        assert_exit(&o, 75);
        assert!(took < Duration::from_millis(2500), "took {took:?}");
        let (o, took) = contend("2s");
        eprintln!("--timeout 2s during the migration: {took:?}");
        assert_exit(&o, 75);
        assert!(took < Duration::from_millis(2500), "took {took:?}");
        waiter = Some(fencing_waiter(&url, &k, "30s"));
        // It subscribes for the release once an attempt saw the lock held.
        let channel = redlock_run::Keys::new(&k).channel;
        wait_until(
            "the waiter to see the lock held and subscribe",
            Duration::from_secs(10),
            || c.nodes.iter().any(|n| n.shard_subscribers(&channel) > 0),
        );
        assert_eq!(c.nodes[from].get(&k).as_deref(), Some(env.token.as_str()));
    });
    holder.finish_ok();
    let next = printed_fencing(waiter.unwrap(), Duration::from_secs(30));
    assert!(next > env.fencing, "{next} after {}", env.fencing);
}

/// What `--wait-replicas` buys, measured (REDLOCK_FAILOVER_ROUNDS=N runs
/// N rounds with and N without it; skipped otherwise). Each round: the
/// replication link is held (a fault proxy between replica and primary:
/// nothing moves, no RST), holder A takes the lock through the Sentinels,
/// the primary is killed (SIGKILL), the Sentinels promote the replica,
/// and run B starts as soon as they name it. An overlap is B's command
/// starting while A's still runs (A stops once a renewal finds its key
/// gone on the new primary). Without
/// `--wait-replicas` A's grant was never replicated and B gets the lock
/// while A runs; with `--wait-replicas 1` A is never granted a lock its
/// replica did not acknowledge.
#[test]
fn failover_overlaps_with_and_without_wait_replicas() {
    let Some(rounds) = std::env::var("REDLOCK_FAILOVER_ROUNDS")
        .ok()
        .and_then(|r| r.parse::<u32>().ok())
    else {
        return;
    };
    for wait in [false, true] {
        let (mut overlaps, mut a_ran, mut b_ran) = (0, 0, 0);
        for round in 0..rounds {
            let mut proxy = None;
            let mut setup = SentinelSetup::start_linked(|port| {
                let p = crate::support::proxy::Proxy::start(port);
                let port = p.port();
                proxy = Some(p);
                port
            });
            let proxy = proxy.unwrap();
            let url = setup.url();
            let k = key("overlap");
            let dir = tempfile::tempdir().unwrap();
            let a_pid = dir.path().join("a.pid");
            let mut a_args = vec!["--key", &k, "--ttl", "6s", "--timeout", "1s"];
            if wait {
                a_args.extend(["--wait-replicas", "1"]);
            }
            proxy.set_mode(crate::support::proxy::Mode::Blackhole);
            let a = crate::support::spawn_piped(
                rr_urls(std::slice::from_ref(&url))
                    .args(&a_args)
                    .args(["--", "sh", "-c", "echo $$ > \"$1\"; exec sleep 30", "sh"])
                    .arg(&a_pid),
            );
            // A runs, or gave up (69: never acknowledged).
            wait_until("A to run or give up", Duration::from_secs(10), || {
                std::fs::read_to_string(&a_pid).is_ok_and(|s| s.ends_with('\n'))
                    || !crate::support::alive(a.id() as i32)
            });
            let a_running = std::fs::read_to_string(&a_pid).is_ok_and(|s| s.ends_with('\n'));
            let old = setup.primary();
            setup.servers[old].kill();
            // B is a run that starts as soon as the Sentinels name the new
            // primary (a cron on another host, say); it takes the lock if
            // the new primary does not have A's.
            wait_until(
                "the Sentinels to promote the replica",
                Duration::from_secs(20),
                || {
                    setup.sentinels[0]
                        .try_query::<(String, String)>(&[
                            "SENTINEL",
                            "GET-MASTER-ADDR-BY-NAME",
                            "mymaster",
                        ])
                        .is_ok_and(|(_, p)| p != setup.servers[old].port.to_string())
                },
            );
            let b = crate::support::spawn_piped(
                rr_urls(std::slice::from_ref(&url))
                    .args(["--key", &k, "--timeout", "20s", "--ttl", "6s"])
                    .args([
                        "--",
                        "sh",
                        "-c",
                        "if [ -s \"$1\" ] && kill -0 \"$(cat \"$1\")\" 2>/dev/null; \
                         then echo overlap; else echo alone; fi",
                        "sh",
                    ])
                    .arg(&a_pid),
            );
            let out = crate::support::wait_output(b, Duration::from_secs(30));
            let a_out = crate::support::wait_output(a, Duration::from_secs(30));
            a_ran += u32::from(a_running);
            b_ran += u32::from(out.status.code() == Some(0));
            if stdout(&out).trim() == "overlap" {
                overlaps += 1;
            }
            eprintln!(
                "round {round} wait={wait}: A ran {a_running} (exit {:?}), B exit {:?} {}",
                a_out.status.code(),
                out.status.code(),
                stdout(&out).trim()
            );
            drop(proxy);
        }
        println!(
            "failover overlaps, --wait-replicas {}: {overlaps} of {rounds} rounds \
             (A ran {a_ran}, B ran {b_ran})",
            u32::from(wait)
        );
        if wait {
            assert_eq!(overlaps, 0, "--wait-replicas 1 must prevent this overlap");
        }
    }
}

/// `schedule` on a Cluster, two instances, a key with braces: each tick
/// runs once, and the tick claim lives in the key's slot on its node.
#[test]
fn cluster_schedule_runs_each_tick_once() {
    let c = ClusterSetup::start();
    let url = c.url();
    let k = format!("{}{{sched}}", key("cluster-schedule"));
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks");
    let spawn = || {
        crate::support::spawn_piped(
            rr_urls(std::slice::from_ref(&url))
                .args(["schedule", "--key", &k, "--every", "1s", "--ttl", "2s"])
                .args(["--", "sh", "-c", "echo \"$REDLOCK_TICK\" >> \"$1\"", "sh"])
                .arg(&ticks),
        )
    };
    let (a, b) = (spawn(), spawn());
    wait_until("three ticks", Duration::from_secs(15), || {
        std::fs::read_to_string(&ticks).is_ok_and(|s| s.lines().count() >= 3)
    });
    for p in [&a, &b] {
        crate::support::send_signal(p.id(), nix::sys::signal::Signal::SIGTERM);
    }
    let outs = [a, b].map(|p| crate::support::wait_output(p, Duration::from_secs(10)));
    for out in &outs {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    }
    let seen = std::fs::read_to_string(&ticks).unwrap();
    let mut lines: Vec<&str> = seen.lines().collect();
    let n = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), n, "a tick ran twice: {seen}");
    let tick = redlock_run::Keys::new(&k).tick;
    assert_eq!(c.slot(&tick), c.slot(&k));
    assert!(
        c.nodes[c.owner(c.slot(&k))].exists(&tick),
        "the tick claim is on the key's node"
    );
}

/// With `--wait-replicas 1`, a failover to the replica that acknowledged
/// keeps the lock: the primary is killed (no SENTINEL FAILOVER: the
/// Sentinels must notice), the replica is promoted with the lock on it, the
/// holder renews there and finishes normally, and a run that starts after
/// the promotion finds the lock held (75), not free.
#[test]
fn sentinel_failover_keeps_an_acknowledged_lock() {
    let mut setup = SentinelSetup::start();
    let url = setup.url();
    let k = key("sentinel-acked");
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn_at(
        &url,
        &k,
        dir.path(),
        &[
            "--wait-replicas",
            "1",
            "--ttl",
            "6s",
            "--refresh",
            "500ms",
            "-v",
        ],
    );
    let t = std::time::Instant::now();
    while !holder.is_ready() {
        if t.elapsed() > Duration::from_secs(10) {
            let out = holder.finish();
            let p = setup.primary();
            panic!(
                "the holder did not start: {}\nprimary (server {}):\n{}\nreplica log:\n{}",
                stderr(&out),
                p,
                crate::support::topology::replication(&setup.servers[p]),
                setup.servers[1 - p].log()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let env = holder.wait_ready(Duration::from_secs(1));
    let old = setup.primary();
    let new = 1 - old;
    setup.servers[old].kill();
    setup.wait_promoted(new);
    assert_eq!(
        setup.servers[new].get(&k).as_deref(),
        Some(env.token.as_str())
    );
    Rr::urls(std::slice::from_ref(&url))
        .args(["--key", &k, "--", "true"])
        .status(75)
        .run();
    // With no replica left, renewals cannot be acknowledged: the holder
    // is stopped in time (70), never left running unacknowledged.
    let out = holder.finish();
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(70),
        "{code:?}: {}",
        stderr(&out)
    );
    eprintln!("holder after the failover: exit {code:?}");
}

/// The one-key look at a `--limit` lock during a slot migration counts
/// every member of the holders' set, the expired ones too: with one live
/// holder of 2 and one that died (SIGKILL: its member stays, its lease
/// over), a slot is free, yet a contender during the migration is told
/// the lock is busy (75). Outside the migration it runs (0).
#[test]
fn a_limit_slot_freed_by_an_expired_holder_is_not_busy_during_a_migration() {
    let c = ClusterSetup::start();
    let url = c.url();
    let k = key("migrate-limit");
    let SlotMove { slot, from, to } = c.slot_move(&k);
    let dir = tempfile::tempdir().unwrap();
    let dead = Holder::spawn_at(&url, &k, dir.path(), &["--limit", "2", "--ttl", "1s"]);
    dead.wait_ready(Duration::from_secs(10));
    let live = Holder::spawn_at(&url, &k, dir.path(), &["--limit", "2", "--ttl", "10s"]);
    live.wait_ready(Duration::from_secs(10));
    crate::support::send_signal(dead.pid() as u32, nix::sys::signal::Signal::SIGKILL);
    let node = &c.nodes[from];
    wait_until(
        "the dead holder's lease to end",
        Duration::from_secs(10),
        || {
            let (s, us): (String, String) = node.query(&["TIME"]);
            let now_ms = s.parse::<u64>().unwrap() * 1000 + us.parse::<u64>().unwrap() / 1000;
            let live: i64 = node.query(&["ZCOUNT", &k, &format!("({now_ms}"), "+inf"]);
            let all: i64 = node.query(&["ZCARD", &k]);
            live == 1 && all == 2
        },
    );
    let contend = || {
        output(rr_urls(std::slice::from_ref(&url)).args([
            "--key",
            &k,
            "--limit",
            "2",
            "--timeout",
            "0",
            "--",
            "true",
        ]))
    };
    c.migrate_slot(slot, from, to, || {
        let o = contend();
        assert_ne!(
            o.status.code(),
            Some(75),
            "a slot is free (1 live holder of 2), yet busy: {}",
            stderr(&o)
        );
    });
    let o = contend();
    assert_exit(&o, 0);
    // Both slots live: during a migration back, busy (75), never 69.
    let second = Holder::spawn_at(&url, &k, dir.path(), &["--limit", "2", "--ttl", "10s"]);
    second.wait_ready(Duration::from_secs(10));
    c.migrate_slot(slot, to, from, || {
        let o = contend();
        assert_exit(&o, 75);
    });
    drop(second.finish());
    drop(live.finish());
}
