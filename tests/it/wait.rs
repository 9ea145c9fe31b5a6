//! Bounds of a wait: --timeout is kept even when Redis hangs part way.

use std::time::{Duration, Instant};

use crate::support::proxy::Proxy;
use crate::support::*;

/// A Redis that answers the connection the lock requests use but hangs
/// every new one, so SUBSCRIBE never completes: the wait for the
/// subscription must end with --timeout, not after the I/O timeout
/// (5 s with --ttl 30s).
#[test]
fn a_hanging_subscription_does_not_stretch_the_timeout() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key("sub-hang");
    let (_holder, _) = Holder::start(&server, &k, dir.path(), &["--ttl", "30s"]);
    let timeout = Duration::from_millis(300);
    let wait = |url: String| {
        let start = Instant::now();
        let o = output(rr_urls(&[url]).args([
            "--timeout",
            "300ms",
            "--ttl",
            "30s",
            "-vvv",
            "--key",
            &k,
            "--",
            "true",
        ]));
        let took = start.elapsed();
        assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
        took
    };
    // The same wait where subscribing works, for scale.
    let baseline = wait(server.url());

    let proxy = Proxy::start(server.port);
    proxy.hold_connections_after(1);
    let hung = wait(proxy.url());
    assert!(
        proxy.accepted() >= 2,
        "the subscription never connected: {} connection(s)",
        proxy.accepted()
    );
    // Past the timeout by no more than the baseline's overshoot plus a
    // second of slack: far below the 5 s I/O timeout it used to add.
    let bound = timeout + baseline.saturating_sub(timeout) + Duration::from_secs(1);
    eprintln!("baseline {baseline:?}, hung subscription {hung:?}, bound {bound:?}");
    assert!(
        hung < bound,
        "a hanging SUBSCRIBE kept the waiter {hung:?} (baseline {baseline:?})"
    );
}
