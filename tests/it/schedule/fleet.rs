//! `schedule` against a hostile fleet (spec, "Additions"): a failed attempt
//! never leaves its tick claimed (quorum split, an instance that reaches a
//! single master, a signal during the attempt), one fast clock cannot stop
//! the others, `release --force` clears the claim, and evidence of evicted
//! keys is reported with a pointer to `doctor`.

use super::*;
use crate::support::proxy::{Mode, Proxy};

/// One line per run: `WHO TICK`.
const RUN_LINE: &str = r#"printf '%s %s\n' "$1" "$REDLOCK_TICK" >> "$2""#;

/// The runs recorded in `out`, as (who, tick).
fn runs(out: &Path) -> Vec<(String, String)> {
    file_lines(out)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 2, "bad run line {l:?}");
            (f[0].to_string(), f[1].to_string())
        })
        .collect()
}

fn assert_each_tick_once(runs: &[(String, String)]) {
    let mut seen = std::collections::BTreeMap::<&str, Vec<&str>>::new();
    for (who, tick) in runs {
        seen.entry(tick).or_default().push(who);
    }
    let dups: Vec<_> = seen.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(dups.is_empty(), "ticks ran more than once: {dups:?}");
}

/// Every tick from the first run to the last ran (ticks `every_ms` apart).
fn assert_no_tick_lost(runs: &[(String, String)], every_ms: i64, instances: &[Instance]) {
    let ticks: Vec<i64> = runs.iter().map(|(_, t)| tick_ns(t) / 1_000_000).collect();
    let gaps: Vec<_> = ticks
        .windows(2)
        .filter(|w| w[1] - w[0] != every_ms)
        .collect();
    let logs: Vec<String> = instances.iter().map(Instance::log).collect();
    assert!(
        gaps.is_empty(),
        "ticks lost between runs: {gaps:?}\n{}",
        logs.join("\n")
    );
}

/// `schedule --every 1s` on KEY against SERVER, each run appending
/// `NAME TICK` to OUT.
fn every_second(server: &RedisServer, key: &str, name: &str, out: &str) -> Command {
    schedule_cmd(server, key, &["--every", "1s"], RUN_LINE, &[name, out])
}

/// Two running masters, and the URL of a third that is down.
fn two_up_one_down() -> (Vec<RedisServer>, String) {
    let up = (0..2).map(|_| RedisServer::start()).collect();
    let mut down = RedisServer::start();
    let url = down.url();
    down.kill();
    (up, url)
}

/// One `schedule --every 1s --ttl 10s` instance per (name, URLs) on key
/// `k`, each run appending `NAME TICK` to `out`.
fn spawn_fleet<const N: usize>(
    k: &str,
    out: &Path,
    who: [(&str, Vec<String>); N],
) -> Vec<Instance> {
    let out = out.to_str().unwrap();
    who.into_iter()
        .map(|(name, urls)| {
            let mut c = rr_urls(&urls);
            c.args(["schedule", "--key", k, "--every", "1s", "--ttl", "10s"])
                .args(["--", "sh", "-c", RUN_LINE, "sh", name, out]);
            Instance::spawn(name, &mut c)
        })
        .collect()
}

/// Three masters, one of them down. Instance "one" reaches only the first
/// master (the second is blackholed for it) and gets there first; instance
/// "quorum" reaches two. "one"'s attempts can never win, and must not
/// leave ticks claimed behind them: "quorum" runs the ticks.
#[test]
fn an_instance_that_reaches_one_master_does_not_poison_the_ticks() {
    let (m, down) = two_up_one_down();
    // "quorum" is a little further from the first master than "one".
    let far = Proxy::start(m[0].port);
    far.set_mode(Mode::Delay(Duration::from_millis(30)));
    let hole = Proxy::start(m[1].port);
    hole.set_mode(Mode::Blackhole);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let mut instances = spawn_fleet(
        &key("fleet-one-master"),
        &out,
        [
            ("one", vec![m[0].url(), hole.url(), down.clone()]),
            ("quorum", vec![far.url(), m[1].url(), down]),
        ],
    );
    wait_lines(&out, 4, EVENT);
    stop_all(&mut instances);
    let runs = runs(&out);
    assert_each_tick_once(&runs);
    assert!(
        runs.iter().all(|(who, _)| who == "quorum"),
        "an instance without a quorum ran: {runs:?}"
    );
    // Every tick from the first run to the last ran: none was lost to a
    // claim left behind by a failed attempt.
    assert_no_tick_lost(&runs, 1000, &instances);
}

/// Three masters, one down, two instances each a little closer to a
/// different master: every tick starts as a split vote. The losers undo
/// their claims and try again, so the ticks still run, each once.
#[test]
fn split_votes_do_not_lose_ticks() {
    let (m, down) = two_up_one_down();
    let far: Vec<Proxy> = m.iter().map(|s| Proxy::start(s.port)).collect();
    for p in &far {
        p.set_mode(Mode::Delay(Duration::from_millis(20)));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let mut instances = spawn_fleet(
        &key("fleet-split"),
        &out,
        [
            ("near0", vec![m[0].url(), far[1].url(), down.clone()]),
            ("near1", vec![far[0].url(), m[1].url(), down]),
        ],
    );
    wait_lines(&out, 5, EVENT);
    stop_all(&mut instances);
    let runs = runs(&out);
    assert_each_tick_once(&runs);
    assert_no_tick_lost(&runs, 1000, &instances);
}

/// An instance whose clock is a day ahead cannot claim ticks (it says by
/// how much it is ahead), so the instance with a correct clock goes on
/// running every tick.
#[test]
fn a_clock_a_day_ahead_cannot_stop_the_fleet() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let out_s = out.to_str().unwrap();
    let k = key("fleet-fast-clock");
    let mut fast = every_second(&server, &k, "fast", out_s);
    with_clock_offset(&mut fast, "+1d");
    let mut instances = vec![Instance::spawn("fast", &mut fast)];
    poll_until("the fast instance to try a tick", EVENT, || {
        instances[0].count("ahead") > 0 || !file_lines(&out).is_empty()
    });
    instances.push(Instance::spawn(
        "good",
        &mut every_second(&server, &k, "good", out_s),
    ));
    wait_lines(&out, 3, EVENT);
    stop_all(&mut instances);
    let runs = runs(&out);
    assert!(
        runs.iter().all(|(who, _)| who == "good"),
        "the instance a day ahead claimed a tick: {runs:?}"
    );
    let line = instances[0]
        .line_with("ahead of Redis")
        .unwrap_or_else(|| panic!("no skew error\n{}", instances[0].log()));
    assert!(line.contains(" error: "), "{line}");
    let skew_ms = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("skew_ms="))
        .map(num)
        .unwrap_or_else(|| panic!("no skew_ms in {line:?}"));
    assert!(
        (86_399_000..=86_401_000).contains(&skew_ms),
        "measured skew {skew_ms} ms for a clock one day ahead"
    );
}

/// A claim stored a day in Redis's future (left by an older version, or by
/// Redis's own clock going back) is not honoured, the instance says so and
/// points at `doctor`; `release --force` clears the claim.
#[test]
fn a_claim_in_redis_future_is_ignored_and_release_force_clears_it() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let out_s = out.to_str().unwrap();
    let k = key("fleet-future-claim");
    let day_ahead = (now_ns() / 1_000_000 + 86_400_000).to_string();
    let _: () = server.query(&["SET", &tick_key(&k), &day_ahead]);
    let mut instances = vec![Instance::spawn(
        "good",
        &mut every_second(&server, &k, "good", out_s),
    )];
    wait_lines(&out, 2, EVENT);
    stop_all(&mut instances);
    let warning = instances[0]
        .line_with("in the future")
        .unwrap_or_else(|| panic!("no warning about the future claim\n{}", instances[0].log()));
    assert!(warning.contains("doctor"), "{warning}");

    let _: () = server.query(&["SET", &tick_key(&k), &day_ahead]);
    let o = Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .run();
    assert!(o.status.code().is_some(), "{o:?}");
    assert!(
        !server.exists(&tick_key(&k)),
        "release --force left the tick claim: {:?}",
        server.get(&tick_key(&k))
    );
}

/// SIGTERM while a tick's attempt is in flight (its script ran on Redis,
/// the reply is still on its way): the attempt is undone with its claim,
/// and another instance, blocked by that attempt, runs the same tick.
#[test]
fn a_signal_during_an_attempt_does_not_lose_its_tick() {
    let server = RedisServer::start();
    let slow = Proxy::start(server.port);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let out_s = out.to_str().unwrap();
    let k = key("fleet-signal");
    let every = ["--every", "4s", "--ttl", "30s"];
    let mut first = rr_urls(&[slow.url()]);
    first
        .args(["schedule", "--key", &k])
        .args(every)
        .args(["--", "sh", "-c", RUN_LINE, "sh", "first", out_s]);
    // "second" sees each tick 300 ms after "first" does.
    let mut second = schedule_cmd(&server, &k, &every, RUN_LINE, &["second", out_s]);
    with_clock_offset(&mut second, "-0.3");
    let mut a = Instance::spawn("first", &mut first);
    let mut b = Instance::spawn("second", &mut second);
    // Once "first" has run a tick (connected, released, idle), replies to
    // it are held: its next attempt lands, and it waits for the answer.
    // (It may lose the very first tick while it connects through the proxy.)
    poll_until("the first instance to run a tick", 2 * EVENT, || {
        a.count("info: ran") > 0
    });
    let before = file_lines(&out).len();
    slow.set_mode(Mode::HoldReplies);
    let held_by_first = || {
        server
            .get(&format!("{{{k}}}:redlock-run:holder"))
            .is_some_and(|h| h.contains(&format!("\"pid\":{}", a.pid)))
    };
    poll_until("the first instance's attempt to land", EVENT, held_by_first);
    let tick: i64 = server
        .get(&tick_key(&k))
        .and_then(|v| v.split_whitespace().next().and_then(|t| t.parse().ok()))
        .expect("the attempt claimed its tick");
    a.signal(Signal::SIGTERM);
    // Once it gave up on the attempt, the partition heals and its undo
    // (and the late reply, which nobody reads any more) goes through.
    poll_until("the first instance to stop", EVENT, || {
        a.count("stopping the schedule") > 0
    });
    slow.set_mode(Mode::Pass);
    assert_eq!(a.wait(EVENT).code(), Some(0), "{}", a.log());
    let lines = wait_lines(&out, before + 1, EVENT);
    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait(EVENT).code(), Some(0), "{}", b.log());
    let (who, ran) = &runs(&out)[before];
    assert_eq!(who, "second", "{lines:?}");
    assert_eq!(
        tick_ns(ran) / 1_000_000,
        tick,
        "the interrupted attempt's tick was not run: {lines:?}\n{}",
        b.log()
    );
}

/// With `maxmemory-policy allkeys-lru`, unrelated writes evict the fencing
/// counter; the next token still rises (it is taken from the server's
/// clock). The run that sees a new counter on a server that has evicted
/// keys says so and names `doctor`.
#[test]
fn an_evicted_fencing_counter_is_reported() {
    let server =
        RedisServer::start_with(&["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]);
    let k = key("fleet-evicted");
    let o = Rr::on(&server)
        .args(["--key", &k, "--"])
        .args(["sh", "-c", "echo $REDLOCK_FENCING_TOKEN"])
        .status(0)
        .run();
    let first: u64 = stdout(&o).trim().parse().unwrap();
    assert!(server.exists(&fence_key(&k)));
    let filler = "x".repeat(10_000);
    let mut n = 0;
    while server.exists(&fence_key(&k)) {
        let _: () = server.query(&["SET", &format!("filler:{n}"), &filler]);
        n += 1;
        assert!(n < 100_000, "the fencing counter was never evicted");
    }
    let o = Rr::on(&server)
        .args(["--key", &k, "--"])
        .args(["sh", "-c", "echo $REDLOCK_FENCING_TOKEN"])
        .status(0)
        .run();
    // The counter was lost; the token still rose (the server's clock).
    let token: u64 = stdout(&o).trim().parse().unwrap();
    assert!(token > first, "{token} after {first}");
    let err = stderr(&o);
    assert!(
        err.contains("evicted") && err.contains("redlock-run doctor"),
        "no warning naming doctor: {err}"
    );
}
