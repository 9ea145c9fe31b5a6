//! Every script is all-or-nothing (spec, "Additions (2026-12-05)",
//! issue 22.2): a script call that is refused (another application's data
//! at one of its keys, a user without pub/sub channels, a server out of
//! memory) either fails before its first write, leaving every key as it
//! was, or cannot fail after it; and no script changes another
//! application's data at the lock key or at an auxiliary name (issue
//! 24.6). The scripts are called here directly, through the same builders
//! the lock uses, against a real server.

use std::collections::BTreeMap;
use std::time::Duration;

use redlock_run::scripts::{self, Acquire, Call};
use redlock_run::{Keys, Mode};

use crate::support::*;

/// Run `call` as the lock sends it: with its flags where the server
/// takes them.
fn eval(c: &mut redis::Connection, call: &Call<'_>) -> redis::RedisResult<redis::Value> {
    let flags = redis::cmd("EVAL")
        .arg("#!lua\nreturn 1")
        .arg(0)
        .query::<i64>(c)
        .is_ok();
    let mut inv = call.lua.script(flags).prepare_invoke();
    for k in call.keys() {
        inv.key(k);
    }
    for a in call.args() {
        inv.arg(a);
    }
    inv.invoke(c)
}

/// Every key of the database: its DUMP and whether it has an expiry.
fn snapshot(c: &mut redis::Connection) -> BTreeMap<String, (Vec<u8>, bool)> {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(c).unwrap();
    keys.into_iter()
        .map(|k| {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query(c).unwrap();
            let pttl: i64 = redis::cmd("PTTL").arg(&k).query(c).unwrap();
            (k, (dump, pttl >= 0))
        })
        .collect()
}

const TOKEN: &str = "tok-ours";
const WAITER: &str = "waiter-1";
const TTL: Duration = Duration::from_secs(30);

fn acquire_as<'a>(keys: &'a Keys, limit: u32, mode: Mode<'a>, quorum: bool) -> Call<'a> {
    scripts::acquire(
        keys,
        &Acquire {
            token: TOKEN,
            ttl: TTL,
            holder_json: r#"{"host":"h","pid":1,"command":"c","since_ms":1,"token":"tok-ours"}"#,
            mode,
            quorum,
            limit,
        },
    )
}

/// A state the scripts write in: another holder's run recorded in the
/// history, our lock held (one holder, or one of three `--limit 3`
/// slots, the other two held by others) by a tick's attempt in quorum
/// mode (its claim pending), and another waiter queued behind it.
fn setup(c: &mut redis::Connection, keys: &Keys, limit: u32) {
    let other = |token: &'static str, mode: Mode<'static>| {
        scripts::acquire(
            keys,
            &Acquire {
                token,
                ttl: TTL,
                holder_json: "{}",
                mode,
                quorum: false,
                limit,
            },
        )
    };
    eval(c, &other("tok-other", Mode::Once)).unwrap();
    if limit > 1 {
        eval(c, &other("tok-o2", Mode::Once)).unwrap();
        eval(c, &other("tok-o3", Mode::Once)).unwrap();
    }
    eval(
        c,
        &scripts::release(keys, limit, "tok-other", "{\"run\":0}", "PUBLISH"),
    )
    .unwrap();
    let tick = Mode::Tick {
        tick: 1000,
        bound_ms: 5000,
    };
    let r: (i64, i64, String, String) =
        redis::from_redis_value(eval(c, &acquire_as(keys, limit, tick, true)).unwrap()).unwrap();
    assert_eq!(r.0, 1, "setup: we hold the lock");
    let wait = Mode::Wait {
        score: 1,
        waiter: WAITER,
    };
    let r: (i64, i64, String, String) =
        redis::from_redis_value(eval(c, &other("tok-waiter", wait)).unwrap()).unwrap();
    assert_eq!(r.0, 0, "setup: the waiter queues");
}

/// Whether our token holds the lock (or a slot of it).
fn ours(server: &RedisServer, keys: &Keys) -> bool {
    match server.query::<String>(&["TYPE", &keys.lock]).as_str() {
        "string" => server.get(&keys.lock).as_deref() == Some(TOKEN),
        "zset" => server
            .query::<Option<f64>>(&["ZSCORE", &keys.lock, TOKEN])
            .is_some(),
        _ => false,
    }
}

/// Every call the lock makes, in the state of [`setup`].
fn calls(keys: &Keys, limit: u32) -> Vec<(String, Call<'_>)> {
    let mut out: Vec<(String, Call<'_>)> = Vec::new();
    let modes = [
        Mode::Once,
        Mode::Tick {
            tick: 2000,
            bound_ms: 5000,
        },
        Mode::Wait {
            score: 2,
            waiter: WAITER,
        },
    ];
    for mode in modes {
        out.push((
            format!("acquire {mode:?}"),
            acquire_as(keys, limit, mode, false),
        ));
    }
    let run = "{\"run\":1}";
    out.push((
        "renew".into(),
        scripts::extend(keys, limit, TOKEN, TTL, None),
    ));
    out.push((
        "min-hold".into(),
        scripts::extend(keys, limit, TOKEN, TTL, Some(run)),
    ));
    out.push((
        "release".into(),
        scripts::release(keys, limit, TOKEN, run, "PUBLISH"),
    ));
    out.push((
        "leave".into(),
        scripts::leave(keys, limit, TOKEN, WAITER, "PUBLISH"),
    ));
    out.push(("undo".into(), scripts::undo(keys, limit, TOKEN, None)));
    out.push((
        "undo waiter".into(),
        scripts::undo(keys, limit, TOKEN, Some((2, WAITER))),
    ));
    out.push(("commit".into(), scripts::commit(keys, 99, TOKEN)));
    out.push(("record".into(), scripts::record(keys, run, 5)));
    out.push((
        "force release".into(),
        scripts::force_release(keys, "PUBLISH"),
    ));
    out
}

/// Another application's data (a set: a type the lock never uses) at
/// each name a script call touches, the lock's own included, one at a
/// time: the call either fails and leaves every key as it was, or
/// succeeds and leaves that data as it was.
#[test]
fn another_applications_data_at_any_name_is_never_changed_and_a_refusal_changes_nothing() {
    let server = RedisServer::start();
    let mut c = server.conn();
    for limit in [1, 3] {
        let keys = Keys::new(&key("atomic-foreign"));
        let names: Vec<(String, Vec<String>)> = calls(&keys, limit)
            .iter()
            .map(|(what, call)| (what.clone(), call.keys().map(String::from).collect()))
            .collect();
        for (i, (what, names)) in names.iter().enumerate() {
            for name in names {
                let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
                setup(&mut c, &keys, limit);
                let _: () = redis::cmd("DEL").arg(name).query(&mut c).unwrap();
                let _: () = redis::cmd("SADD")
                    .arg(name)
                    .arg("foreign")
                    .query(&mut c)
                    .unwrap();
                let before = snapshot(&mut c);
                let all = calls(&keys, limit);
                let r = eval(&mut c, &all[i].1);
                let after = snapshot(&mut c);
                match r {
                    Err(e) => assert!(
                        before == after,
                        "--limit {limit}, {what}, a set at {name}: refused ({e}) after writing: \
                         {:?}",
                        changed(&before, &after)
                    ),
                    Ok(v) => assert_eq!(
                        before.get(name),
                        after.get(name),
                        "--limit {limit}, {what}: changed the set at {name} (replied {v:?})"
                    ),
                }
            }
        }
    }
}

/// The names whose content or expiry differ.
fn changed(
    a: &BTreeMap<String, (Vec<u8>, bool)>,
    b: &BTreeMap<String, (Vec<u8>, bool)>,
) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// A sorted set at KEY that is not a `--limit` lock (no N stored with
/// it), its members' scores in the past: a waiter leaving (`leave_n`),
/// and every other `--limit` script, leave it as it is (issue 24.6).
#[test]
fn a_foreign_sorted_set_at_the_key_is_left_intact_by_every_limit_script() {
    let server = RedisServer::start();
    let mut c = server.conn();
    let keys = Keys::new(&key("atomic-zset"));
    for (what, call) in calls(&keys, 3) {
        let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
        let _: () = redis::cmd("ZADD")
            .arg(&keys.lock)
            .arg(1)
            .arg("a")
            .arg(2)
            .arg(TOKEN)
            .query(&mut c)
            .unwrap();
        let before = snapshot(&mut c);
        let r = eval(&mut c, &call);
        let after = snapshot(&mut c);
        assert_eq!(
            before.get(&keys.lock),
            after.get(&keys.lock),
            "{what} changed another application's sorted set at KEY (replied {r:?})"
        );
    }
}

/// A user without pub/sub channels (`ACL SETUSER job on >pw ~* +@all`
/// on Redis 7, where `acl-pubsub-default` is `resetchannels`): release,
/// leave and force release complete (PUBLISH refused is no failure: the
/// waiters poll), the release records its run, and the queued waiter
/// stays queued (it was not woken).
#[test]
fn without_channels_release_leave_and_force_release_complete() {
    let (server, url) = server_without_channels();
    let client = redis::Client::open(url).unwrap();
    let mut job = client.get_connection().unwrap();
    let mut c = server.conn();
    for limit in [1, 3] {
        let keys = Keys::new(&key("atomic-acl"));
        for what in ["release", "leave", "force release"] {
            let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
            setup(&mut c, &keys, limit);
            let runs = server.query::<i64>(&["LLEN", &keys.history]);
            let call = calls(&keys, limit)
                .into_iter()
                .find(|(w, _)| w == what)
                .unwrap()
                .1;
            let r = eval(&mut job, &call);
            assert!(r.is_ok(), "--limit {limit}, {what}: {r:?}");
            assert!(
                !ours(&server, &keys),
                "--limit {limit}, {what}: the lock is still held"
            );
            if what == "release" {
                assert_eq!(
                    server.query::<i64>(&["LLEN", &keys.history]),
                    runs + 1,
                    "--limit {limit}: the run was not recorded"
                );
                assert_eq!(
                    server.query::<Option<i64>>(&["ZRANK", &keys.waiters, WAITER]),
                    Some(0),
                    "--limit {limit}: the waiter left the queue without being woken"
                );
            }
        }
    }
}

/// A server out of memory (`maxmemory` far below what it uses, under
/// `noeviction`): a script that is refused has changed nothing, and
/// release, leave and undo still free the lock.
#[test]
fn out_of_memory_a_refused_script_changed_nothing_and_release_still_works() {
    let server = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
    let mut c = server.conn();
    for limit in [1, 3] {
        let keys = Keys::new(&key("atomic-oom"));
        let n = calls(&keys, limit).len();
        for i in 0..n {
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory")
                .arg(0)
                .query(&mut c)
                .unwrap();
            let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
            setup(&mut c, &keys, limit);
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory")
                .arg(1)
                .query(&mut c)
                .unwrap();
            let before = snapshot(&mut c);
            let all = calls(&keys, limit);
            let (what, call) = &all[i];
            let r = eval(&mut c, call);
            let after = snapshot(&mut c);
            if let Err(e) = &r {
                assert!(
                    before == after,
                    "--limit {limit}, {what}: refused ({e}) after writing: {:?}",
                    changed(&before, &after)
                );
                assert!(
                    !["release", "leave", "undo", "undo waiter", "force release"]
                        .contains(&what.as_str()),
                    "--limit {limit}, {what} refused out of memory: {e}"
                );
            }
            if ["release", "leave", "undo", "force release"].contains(&what.as_str()) {
                assert!(
                    !ours(&server, &keys),
                    "--limit {limit}, {what} out of memory left the lock: {r:?}"
                );
            }
        }
    }
}
