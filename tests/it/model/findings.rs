//! Small deterministic tests for what the model-based test found, one per
//! finding (FINDINGS.md / docs/model.md): each failed when it was written.

use std::time::Duration;

use redlock_run::{Attempt, Locker, Mode};
use redlock_run::{Endpoint, Lease};

use crate::support::{RedisServer, key, redis_now_ms, tick_key};

fn locker(server: &RedisServer, key: &str, limit: u32) -> Locker {
    let lease = Lease {
        ttl: Duration::from_secs(10),
        refresh: Duration::from_secs(3),
        kill_after: Duration::from_secs(1),
        min_hold: Duration::ZERO,
        wait_replicas: 0,
        limit,
    };
    Locker::new(&[Endpoint::parse(&server.url()).unwrap()], key, lease)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// F1: an undone tick attempt puts back the claim it replaced as far as
/// anything reads it: the replaced tick, committed, so that tick is not
/// run again and the next one can still be claimed. It does not put back
/// the replaced claim's token and predecessor (`T c - -1`, not
/// `T c TOKEN PREV`): keeping them would need every claim to carry the
/// whole chain before it, or a second key to restore in its turn. The
/// token is only read to tell "claimed by the run that holds the lock
/// now" (try again) from "claimed" (skip): both run nothing, and a
/// pending claim is only ever replaced once its attempt no longer holds
/// the lock (quorum mode, the only one with pending claims, is
/// one-holder). docs/model.md, "Findings".
#[test]
fn undo_puts_back_the_tick_of_the_claim_it_replaced() {
    let server = RedisServer::start();
    let k = key("undo-claim");
    let rt = rt();
    let mut a = locker(&server, &k, 1);
    let mut b = locker(&server, &k, 1);
    let every = 60_000;
    let now = redis_now_ms(&server);
    let tick = now / every * every - every;
    let bound_ms = every / 2;
    let first = Locker::new_token();
    let got = rt.block_on(a.try_acquire_as(&first, "{}", Mode::Tick { tick, bound_ms }));
    assert!(matches!(got, Attempt::Acquired(_)), "{got:?}");
    rt.block_on(a.release(&first)).unwrap();
    let claim: String = server.get(&tick_key(&k)).expect("the tick is claimed");
    // The next tick's attempt lands, then is undone (its quorum failed).
    let second = Locker::new_token();
    let next = Mode::Tick {
        tick: tick + every,
        bound_ms,
    };
    let got = rt.block_on(b.try_acquire_as(&second, "{}", next));
    assert!(matches!(got, Attempt::Acquired(_)), "{got:?}");
    rt.block_on(b.undo(&second));
    let back: String = server.get(&tick_key(&k)).expect("a claim is back");
    let fields = |c: &str| c.split(' ').take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(
        fields(&back),
        fields(&claim),
        "the undo puts back the replaced tick, committed ({claim} -> {back})"
    );
    // The replaced tick stays run; the next one can still be claimed.
    let third = Locker::new_token();
    let got = rt.block_on(a.try_acquire_as(&third, "{}", Mode::Tick { tick, bound_ms }));
    assert!(
        !matches!(got, Attempt::Acquired(_)),
        "tick run twice: {got:?}"
    );
    let fourth = Locker::new_token();
    let got = rt.block_on(a.try_acquire_as(&fourth, "{}", next));
    assert!(matches!(got, Attempt::Acquired(_)), "{got:?}");
}

/// F4: an undone `--limit` attempt leaves the keys as it found them even
/// with another application's data at the waiters' queue, a name the
/// attempt (not a waiter's) never touched. On 5935eff the undo failed
/// half-way (slot gone, stored N left); with the scripts refusing
/// another type at any name they might write, the undo is refused and
/// the attempt's slot stays taken until its lease ends.
#[test]
fn undo_of_a_limit_attempt_is_not_stopped_by_other_data_at_the_queue() {
    let server = RedisServer::start();
    let k = key("undo-foreign-queue");
    let keys = redlock_run::Keys::new(&k);
    let rt = rt();
    let mut a = locker(&server, &k, 3);
    let _: () = server.query(&["SET", &keys.waiters, "their-data"]);
    let token = Locker::new_token();
    let got = rt.block_on(a.try_acquire_as(&token, "{}", Mode::Once));
    assert!(matches!(got, Attempt::Acquired(_)), "{got:?}");
    rt.block_on(a.undo(&token));
    let slot: Option<f64> = server.query(&["ZSCORE", &k, &token]);
    assert_eq!(slot, None, "the undone attempt's slot is still taken");
    for name in [&keys.holders, &keys.limit] {
        assert!(!server.exists(name), "the undo left {name}");
    }
    assert_eq!(server.get(&keys.waiters).as_deref(), Some("their-data"));
}

/// F5: the same acquisition delivered twice (its reply lost, the request
/// sent again) is granted again with the same fencing token, as the
/// acquisition script promises. Found by the model on proto's e855d1a,
/// where the second delivery was answered "held" by its own token.
#[test]
fn an_acquisition_delivered_twice_is_granted_twice() {
    let server = RedisServer::start();
    let k = key("twice");
    let rt = rt();
    let mut a = locker(&server, &k, 1);
    let token = Locker::new_token();
    let json = format!(r#"{{"host":"h","pid":1,"command":"c","since_ms":1,"token":"{token}"}}"#);
    let first = rt.block_on(a.try_acquire_as(&token, &json, Mode::Once));
    let Attempt::Acquired(g) = first else {
        panic!("{first:?}")
    };
    let again = rt.block_on(a.try_acquire_as(&token, &json, Mode::Once));
    match again {
        Attempt::Acquired(h) => assert_eq!(h.fencing, g.fencing),
        other => panic!("the same request delivered again: {other:?}"),
    }
}
