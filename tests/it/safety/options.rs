//! Guarantee 9: every option combination that is accepted works. A
//! healthy Redis never leads to exit 70; what leaves no room for one
//! missed renewal, the kill grace and the safety margin is refused (2).

use std::process::Stdio;
use std::time::Duration;

use crate::support::{RedisServer, Rr, key, rr, stderr, wait_output};

/// The combinations an outside review found accepted, then stopped (70)
/// against a healthy Redis.
#[test]
fn combinations_that_would_stop_a_healthy_command_are_refused() {
    let server = RedisServer::start();
    let cases: &[&[&str]] = &[
        &["--ttl", "1s", "--refresh", "400ms", "--kill-after", "599ms"],
        &["--ttl", "1s", "--refresh", "990ms"],
        &["--ttl", "30s", "--refresh", "29s900ms"],
        // A tiny --refresh with the rest given to --kill-after: the SIGTERM
        // would come before the first renewal's round trip.
        &["--ttl", "1s", "--refresh", "1ms", "--kill-after", "886ms"],
        &["--ttl", "1s", "--refresh", "2ms", "--kill-after", "884ms"],
        &[
            "--ttl",
            "30s",
            "--refresh",
            "1ms",
            "--kill-after",
            "29596ms",
        ],
    ];
    for opts in cases {
        let k = key("opts");
        let out = Rr::on(&server)
            .args(["--key", &k])
            .args(*opts)
            .args(["--", "true"])
            .within(Duration::from_secs(60))
            .status(2)
            .run();
        let err = stderr(&out);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error:") && first.contains("--refresh"),
            "{opts:?}: the first line must name the options: {err}"
        );
    }
}

/// With the default --refresh and --kill-after every --ttl of at least
/// 1s is accepted.
#[test]
fn defaults_are_accepted_for_every_ttl_from_one_second() {
    let server = RedisServer::start();
    for ttl in ["1s", "1100ms", "1500ms", "7s", "30s", "1h", "3650days"] {
        let k = key("deflt");
        Rr::on(&server)
            .args(["--key", &k, "--ttl", ttl, "--", "true"])
            .within(Duration::from_secs(60))
            .status(0)
            .run();
    }
}

/// A small xorshift generator: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Property: random --ttl/--refresh/--kill-after combinations, each either
/// refused with 2 or, against a healthy Redis, running a command that
/// outlasts several renewals to its own exit 0. Never 70.
#[test]
fn accepted_combinations_never_stop_a_healthy_command() {
    let server = RedisServer::start();
    let mut rng = Rng(0x5eed_2026_1127);
    let mut accepted = 0;
    let mut refused = 0;
    let mut running = Vec::new();
    let mut tried = 0;
    while accepted < 12 && tried < 200 {
        tried += 1;
        let ttl = 1000 + rng.below(1500);
        // Small values (where latency matters most) as often as large ones.
        let refresh = if rng.below(2) == 0 {
            1 + rng.below(40)
        } else {
            1 + rng.below(ttl - 1)
        };
        let kill = 1 + rng.below(ttl - 1);
        let mut cmd = rr(&server);
        let k = key("prop");
        let mut opts = vec!["--ttl".to_string(), format!("{ttl}ms")];
        if rng.below(4) > 0 {
            opts.extend(["--refresh".into(), format!("{refresh}ms")]);
        }
        if rng.below(4) > 0 {
            opts.extend(["--kill-after".into(), format!("{kill}ms")]);
        }
        // Long enough for several renewals.
        let run_for = format!("{:.3}", (ttl as f64 * 2.2) / 1000.0);
        cmd.args(["--key", &k])
            .args(&opts)
            .args(["--", "sleep", &run_for])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        running.push((opts, child));
        // A few at a time on a 2-core machine.
        if running.len() >= 4 || tried == 200 {
            for (opts, child) in running.drain(..) {
                let out = wait_output(child, Duration::from_secs(30));
                match out.status.code() {
                    Some(2) => refused += 1,
                    Some(0) => accepted += 1,
                    other => panic!("{opts:?}: exit {other:?}: {}", stderr(&out)),
                }
            }
        }
    }
    for (opts, child) in running.drain(..) {
        let out = wait_output(child, Duration::from_secs(30));
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "{opts:?}: {}",
            stderr(&out)
        );
    }
    assert!(
        accepted >= 12,
        "only {accepted} accepted of {tried} ({refused} refused)"
    );
    assert!(
        refused > 0,
        "no combination was refused: the property tested only easy cases"
    );
}
