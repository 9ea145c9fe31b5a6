//! `status`, `list` and `release` on `--limit N` locks (a sorted set of
//! holders scored by lease end on Redis's clock), against real
//! redis-server processes and real `redlock-run --limit` holders.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use super::holders_key;
use crate::list::list_rows;
use crate::support::*;

/// `holders` of a `status --json` object.
fn holders(v: &Value) -> &Vec<Value> {
    v["holders"]
        .as_array()
        .unwrap_or_else(|| panic!("no holders list: {v}"))
}

/// Two, then three `--limit 3` holders: `status` lists every one (host,
/// pid, command, lease left, its own fencing token), says how many of N
/// hold it, and `--json` has `limit` and `holders`; `list` shows the lock
/// with its holders, the soonest lease end and the highest fencing token,
/// and its JSON is status-shaped.
#[test]
fn status_and_list_show_every_holder_of_a_limit_lock() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("limit-status");
    let opts = ["--limit", "3", "--ttl", "20s"];
    let (a, env_a) = Holder::start(&server, &k, dir.path(), &opts);
    let (b, env_b) = Holder::start(&server, &k, dir.path(), &opts);

    let (code, text) = status_text(&server, &k);
    assert_eq!(code, 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("{k}: held by 2 of 3 (--limit 3)"),
        "{text}"
    );
    let holder_lines: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("  holder:"))
        .collect();
    assert_eq!(holder_lines.len(), 2, "{text}");
    // In the order they acquired, each with its own fencing token.
    for (line, (h, env)) in holder_lines.iter().zip([(&a, &env_a), (&b, &env_b)]) {
        assert!(line.contains(&format!("pid {} (sh)", h.pid())), "{line}");
        assert!(line.contains(", since 20"), "{line}");
        assert!(line.contains(", ttl "), "{line}");
        assert!(
            line.ends_with(&format!(", fencing token {}", env.fencing)),
            "{line}"
        );
    }
    assert!(
        lines.contains(&format!("  fencing token: {}", env_b.fencing).as_str()),
        "{text}"
    );

    let (c, env_c) = Holder::start(&server, &k, dir.path(), &opts);
    let (code, text) = status_text(&server, &k);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with(&format!("{k}: held by 3 of 3 (--limit 3, full)\n")),
        "{text}"
    );

    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["held"], true, "{v}");
    assert_eq!(v["limit"], 3, "{v}");
    assert_eq!(v["fencing_token"].as_u64(), Some(env_c.fencing), "{v}");
    let all = holders(&v);
    assert_eq!(all.len(), 3, "{v}");
    let host = nix::unistd::gethostname().unwrap();
    let mut tokens = Vec::new();
    for (h, (holder, env)) in all.iter().zip([(&a, &env_a), (&b, &env_b), (&c, &env_c)]) {
        assert_eq!(h["pid"].as_i64(), Some(i64::from(holder.pid())), "{v}");
        assert_eq!(h["host"].as_str(), host.to_str(), "{v}");
        assert_eq!(h["command"], "sh", "{v}");
        assert!(
            h["since"].as_str().is_some_and(|s| s.starts_with("20")),
            "{v}"
        );
        let ttl = h["ttl_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("ttl_ms: {v}"));
        assert!(ttl > 0 && ttl <= 20_000, "{v}");
        assert_eq!(h["fencing_token"].as_u64(), Some(env.fencing), "{v}");
        tokens.push(env.fencing);
    }
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
    // `holder` and `ttl_ms`: the holder whose lease ends first.
    let soonest = all.iter().filter_map(|h| h["ttl_ms"].as_u64()).min();
    assert_eq!(v["ttl_ms"].as_u64(), soonest, "{v}");
    assert!(all.iter().any(|h| h["pid"] == v["holder"]["pid"]), "{v}");
    // What Redis holds: three live members, three descriptions.
    assert_eq!(server.query::<i64>(&["ZCARD", &k]), 3);
    assert_eq!(server.query::<i64>(&["HLEN", &holders_key(&k)]), 3);

    // list: the row, then the JSON.
    let o = Rr::on(&server).arg("list").status(0).run();
    let rows = list_rows(&stdout(&o));
    assert_eq!(rows.len(), 1, "{}", stdout(&o));
    let row = &rows[0];
    assert_eq!(row[0], k, "{row:?}");
    assert!(row[1].starts_with("3/3: "), "{row:?}");
    for h in [&a, &b, &c] {
        assert!(row[1].contains(&format!("pid {} (sh)", h.pid())), "{row:?}");
    }
    assert!(humantime::parse_rfc3339(&row[2]).is_ok(), "since: {row:?}");
    assert!(row[3].ends_with('s'), "ttl: {row:?}");
    assert_eq!(row[4], env_c.fencing.to_string(), "{row:?}");
    assert_eq!(row[5], "0", "no waiter: {row:?}");

    let o = Rr::on(&server).args(["list", "--json"]).status(0).run();
    let listed: Vec<Value> = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let mut fields: Vec<&String> = listed[0].as_object().unwrap().keys().collect();
    fields.retain(|f| *f != "waiters");
    let want: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(fields, want, "{} vs {v}", listed[0]);
    assert_eq!(listed[0]["limit"], 3);
    let pids = |v: &Value| -> BTreeSet<i64> {
        holders(v)
            .iter()
            .filter_map(|h| h["pid"].as_i64())
            .collect()
    };
    assert_eq!(pids(&listed[0]), pids(&v));
    drop((a, b, c));
}

/// A holder's redlock-run dies (SIGKILL): nobody releases its slot, so
/// `status` lists it until its lease ends by Redis's clock, then no more,
/// although the expired member is still in the sorted set (nobody pruned
/// it): an ended lease is never shown as a holder.
#[test]
fn a_killed_holder_is_listed_until_its_lease_ends() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("limit-killed");
    let opts = ["--limit", "3", "--ttl", "2s"];
    let (gone, env_gone) = Holder::start(&server, &k, dir.path(), &opts);
    let (stays, env_stays) = Holder::start(&server, &k, dir.path(), &opts);

    let pid = gone.pid();
    send_signal(pid as u32, Signal::SIGKILL);
    wait_gone(pid, Duration::from_secs(10));
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 0, "{v}");
    let listed: Vec<u64> = holders(&v)
        .iter()
        .filter_map(|h| h["fencing_token"].as_u64())
        .collect();
    assert_eq!(
        listed,
        [env_gone.fencing, env_stays.fencing],
        "the dead holder's slot stays until its lease ends: {v}"
    );

    // Poll until it is dropped (at most its 2 s lease, plus slack).
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = loop {
        let (code, v) = status_json(&server, &k);
        assert_eq!(code, 0, "the other holder still holds: {v}");
        if holders(&v).len() == 1 {
            break v;
        }
        assert!(Instant::now() < deadline, "still listed: {v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(holders(&v)[0]["pid"].as_i64(), Some(i64::from(stays.pid())));
    assert_eq!(
        holders(&v)[0]["fencing_token"].as_u64(),
        Some(env_stays.fencing)
    );
    // Dropped at its lease end, not before: the member is still in the
    // set, its score (lease end) in Redis's past.
    let score: Option<f64> = server.query(&["ZSCORE", &k, &env_gone.token]);
    let end = score.expect("nobody pruned the dead holder's member") as u64;
    assert!(
        end <= redis_now_ms(&server),
        "lease end {end} not yet reached"
    );

    let (code, text) = status_text(&server, &k);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with(&format!("{k}: held by 1 of 3 (--limit 3)\n")),
        "{text}"
    );
    assert!(
        !text.contains(&format!("pid {pid} ")),
        "the dead holder is gone:\n{text}"
    );
    drop(stays);
}

/// Written by hand: a member whose lease ended and that nobody pruned
/// reads as free (exit 1), with the stored N; `list` leaves the key out.
/// A live member without a description is another client's holder.
#[test]
fn an_ended_member_nobody_pruned_is_free() {
    let server = RedisServer::start();
    let k = key("limit-ended");
    let now = redis_now_ms(&server);
    let past = (now - 1000).to_string();
    let info = serde_json::json!({
        "fencing_token": 4, "host": "elsewhere", "pid": 77, "command": "job",
        "since_ms": now - 5000, "token": "tok-old",
    })
    .to_string();
    let _: () = server.query(&["ZADD", &k, &past, "tok-old"]);
    let _: () = server.query(&["HSET", &holders_key(&k), "tok-old", &info]);
    let limit_key = format!("{{{k}}}:redlock-run:limit");
    let _: () = server.query(&["SET", &limit_key, "3", "PX", "60000"]);
    let _: () = server.query(&["SET", &fence_key(&k), "4"]);

    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["held"], false, "{v}");
    assert_eq!(v["holder"], Value::Null, "{v}");
    assert_eq!(v["ttl_ms"], Value::Null, "{v}");
    assert_eq!(v["limit"], 3, "{v}");
    assert!(holders(&v).is_empty(), "{v}");
    assert_eq!(v["fencing_token"], 4, "{v}");
    let (code, text) = status_text(&server, &k);
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with(&format!("{k}: free\n")), "{text}");
    assert!(text.contains("\n  limit:         3\n"), "{text}");
    assert!(!text.contains("elsewhere"), "{text}");
    let o = Rr::on(&server).args(["list", "--json"]).status(0).run();
    assert_eq!(stdout(&o).trim(), "[]", "an ended lease is not held");
    // Untouched: status only reads.
    assert_eq!(server.query::<i64>(&["ZCARD", &k]), 1);

    let future = (now + 60_000).to_string();
    let _: () = server.query(&["ZADD", &k, &future, "foreign"]);
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 0, "{v}");
    let all = holders(&v);
    assert_eq!(all.len(), 1, "{v}");
    assert_eq!(all[0]["host"], Value::Null, "not a redlock-run: {v}");
    assert_eq!(all[0]["fencing_token"], Value::Null, "{v}");
    assert!(all[0]["ttl_ms"].as_u64().is_some_and(|t| t > 50_000), "{v}");
    let (_, text) = status_text(&server, &k);
    assert!(text.contains("  holder:        another client"), "{text}");
}

/// A one-holder lock has the same JSON shape: `limit` 1 and `holders`
/// with the one holder (its fencing token the counter), or empty when
/// free; the text form is as before.
#[test]
fn a_one_holder_lock_has_limit_one_and_one_holder() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("limit-one");
    let (h, env) = Holder::start(&server, &k, dir.path(), &["--ttl", "20s"]);
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["limit"], 1, "{v}");
    let all = holders(&v);
    assert_eq!(all.len(), 1, "{v}");
    assert_eq!(all[0]["pid"].as_i64(), Some(i64::from(h.pid())), "{v}");
    assert_eq!(all[0]["fencing_token"].as_u64(), Some(env.fencing), "{v}");
    assert_eq!(all[0]["ttl_ms"], v["ttl_ms"], "{v}");
    for f in ["host", "pid", "command", "label", "since"] {
        assert_eq!(all[0][f], v["holder"][f], "{f}: {v}");
    }
    let (_, text) = status_text(&server, &k);
    let host = nix::unistd::gethostname().unwrap();
    assert!(
        text.starts_with(&format!(
            "{k}: held by {} pid {} (sh)\n  since:         20",
            host.to_str().unwrap(),
            h.pid()
        )),
        "{text}"
    );
    assert!(
        !text.contains("  holder:") && !text.contains("  limit:"),
        "{text}"
    );
    h.finish_ok();
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["limit"], 1, "{v}");
    assert!(holders(&v).is_empty(), "{v}");
}

/// `release` without `--force` refuses (exit 2) and leaves every slot;
/// with it, every slot is freed at once, a queued waiter gets one, and
/// the holders it broke notice at their next renewal (exit 70).
#[test]
fn release_force_frees_every_slot_and_wakes_a_waiter() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("limit-release");
    let opts = ["--limit", "2", "--ttl", "3s"];
    let (a, _) = Holder::start(&server, &k, dir.path(), &opts);
    let (b, _) = Holder::start(&server, &k, dir.path(), &opts);
    let waiter = Holder::spawn(
        &server,
        &k,
        dir.path(),
        &["--limit", "2", "--ttl", "3s", "--timeout", "30s"],
    );
    wait_until("the waiter queued", Duration::from_secs(10), || {
        queued(&server, &k) == 1
    });
    assert!(!waiter.is_ready(), "a third holder under --limit 2");

    Rr::on(&server)
        .args(["release", "--key", &k])
        .status(2)
        .stderr_has("--force")
        .run();
    assert_eq!(server.query::<i64>(&["ZCARD", &k]), 2, "nothing freed");

    Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .status(0)
        .stdout_has("released")
        .run();
    // The waiter is woken and takes a slot, the only one.
    let env = waiter.wait_ready(Duration::from_secs(10));
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 0, "{v}");
    let all = holders(&v);
    assert_eq!(all.len(), 1, "only the waiter holds: {v}");
    assert_eq!(all[0]["pid"].as_i64(), Some(i64::from(waiter.pid())), "{v}");
    assert_eq!(all[0]["fencing_token"].as_u64(), Some(env.fencing), "{v}");
    for h in [a, b] {
        let o = h.wait();
        assert_exit(&o, 70);
    }
    waiter.finish_ok();
    let (code, v) = status_json(&server, &k);
    assert_eq!(code, 1, "{v}");
}

/// A `--limit` lock whose key has a hash tag of its own (its holders'
/// hash is `{TAG}:KEY:redlock-run:holders`) is found by `list`, also
/// through a glob, beside a one-holder lock.
#[test]
fn list_finds_limit_locks_of_both_name_shapes() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let p = key("limit-shapes");
    let tagged = format!("{p}-jobs{{eu}}");
    let plain = format!("{p}-plain");
    let one = format!("{p}-one");
    let (t, _) = Holder::start(&server, &tagged, dir.path(), &["--limit", "2"]);
    let (l, _) = Holder::start(&server, &plain, dir.path(), &["--limit", "2"]);
    let (o1, _) = Holder::start(&server, &one, dir.path(), &[]);
    assert!(
        server.exists(&format!("{{eu}}:{tagged}:redlock-run:holders")),
        "the tagged shape of the holders' name"
    );
    let o = Rr::on(&server)
        .args(["list", &format!("{p}-*")])
        .status(0)
        .run();
    let rows = list_rows(&stdout(&o));
    let keys: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(keys, [&tagged, &one, &plain], "{}", stdout(&o));
    assert!(rows[0][1].starts_with("1/2: "), "{rows:?}");
    assert!(
        rows[0][1].contains(&format!("pid {} (sh)", t.pid())),
        "{rows:?}"
    );
    assert!(
        rows[1][1].starts_with(&format!(
            "{} pid {} (sh)",
            nix::unistd::gethostname().unwrap().to_str().unwrap(),
            o1.pid()
        )),
        "{rows:?}"
    );
    assert!(
        rows[2][1].contains(&format!("pid {} (sh)", l.pid())),
        "{rows:?}"
    );
    let o = Rr::on(&server).args(["list", "--json", "*{eu}"]).run();
    let listed: Vec<Value> = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["key"].as_str(), Some(tagged.as_str()));
    assert_eq!(listed[0]["limit"], 2);
}
