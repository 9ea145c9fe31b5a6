//! `--limit N` (spec, "`--limit <N>`: up to N holders"): `hold`, what N
//! holders get and keep; `status`, what `status`, `list` and `release`
//! show and do on such a lock; `attacks`, each way the guarantees could
//! break (issue 13) made to happen. The names of a `--limit` lock's keys
//! and the checks the three share are here.

mod attacks;
pub(crate) mod hold;
mod status;

use std::time::Duration;

use crate::support::*;

/// The `--limit` holders' descriptions (a hash by token).
pub fn holders_key(k: &str) -> String {
    format!("{{{k}}}:redlock-run:holders")
}

/// The stored N.
pub fn limit_key(k: &str) -> String {
    format!("{{{k}}}:redlock-run:limit")
}

/// Nothing of a `--limit` lock is left: no slot, description, stored N
/// or woken waiter (the fencing counter and the history stay, by design).
pub fn assert_idle(server: &RedisServer, k: &str) {
    let woken = format!("{{{k}}}:redlock-run:woken");
    for name in [k.to_string(), holders_key(k), limit_key(k), woken] {
        assert!(!server.exists(&name), "{name} left behind");
    }
}

/// `redlock-run --key K EXTRA -- sh -c 'echo ran'`, within 20 s: say
/// what it must give, then `run`.
pub fn try_run<'a>(server: &'a RedisServer, k: &str, extra: &[&str]) -> Rr<'a> {
    Rr::on(server)
        .args(["--key", k])
        .args(extra)
        .args(["--", "sh", "-c", "echo ran"])
        .within(Duration::from_secs(20))
}
