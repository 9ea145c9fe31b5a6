//! The server matrix: the suite runs on Debian's Redis 7.0; this set runs
//! the same scenarios (the tests of the other files, not copies) on Redis
//! 6.2 and Valkey 9.1, and Sentinel failover and Cluster slot migration on
//! Valkey (its binary as the Sentinels and as the Cluster nodes). One test
//! per server and scenario, named `matrix::<scenario>::<server>`. Any other
//! test runs on another server with `REDLOCK_TEST_SERVER=redis-6.2` (or
//! `valkey-9.1`); see `support::ServerKind`.

use crate::support::*;

/// `scenario!(name => path, kinds...)`: a module `name` with one test per
/// server kind, each running the test fn `path` with every server it
/// starts of that kind.
macro_rules! scenario {
    ($name:ident => $path:path, $($test:ident: $kind:ident),+ $(,)?) => {
        mod $name {
            use crate::support::{ServerKind, with_server};
            $(
                #[test]
                fn $test() {
                    with_server(ServerKind::$kind, $path);
                }
            )+
        }
    };
    ($name:ident => $path:path) => {
        scenario!($name => $path, redis_6_2: Redis62, valkey_9_1: Valkey91);
    };
}

// Run and exit codes.
scenario!(exit_code => crate::run::command_exit_code_passes_through_and_key_is_released);
scenario!(busy_is_75 => crate::run::busy_lock_is_skipped_quietly_with_75_or_the_chosen_code);
scenario!(env_and_fencing => crate::run::child_env_matches_the_lock_in_redis_and_fencing_increases);
// Waiting and hand-over.
scenario!(wait_then_run => crate::run::timeout_waits_for_the_holder_then_runs);
scenario!(contenders => crate::run::contenders_never_overlap);
scenario!(woken_waiter => crate::admin::release::release_force_wakes_a_waiter);
// --limit.
// (Not `at_most_n_sections_overlap_and_tokens_follow_real_time`: under
// the load of two contention tests at once, a command may start more than
// 50 ms after its grant, after a later-granted section ended, which its
// token-order check takes for a fault.)
scenario!(limit_renewals => crate::limit::hold::each_holder_renews_its_own_lease_and_a_lost_slot_stops_its_command);
scenario!(limit_mismatch => crate::limit::hold::instances_that_disagree_on_n_are_refused_from_what_redis_stores);
scenario!(limit_wait => crate::limit::hold::a_wait_for_a_full_key_times_out_with_75_and_leaves_the_queue);
// schedule, two instances.
scenario!(schedule_two => crate::schedule::runs_never_overlap_and_busy_ticks_are_logged_as_skipped);
// Quorum over three masters.
scenario!(quorum => crate::quorum::three_masters_run_with_one_down_and_refuse_with_two_down);
scenario!(quorum_status => crate::quorum::status_shows_each_master_and_release_clears_all);
// status, list, history.
scenario!(status => crate::admin::status::status_shows_holder_ttl_and_fencing_token);
scenario!(list => crate::list::list_finds_exactly_the_locks_among_thousands_of_keys);
scenario!(history => crate::history::ok_failed_and_signalled_runs_are_recorded_newest_first);
// doctor.
scenario!(doctor => crate::doctor::a_healthy_server_passes_every_check_one_line_each);
// Sentinel and Cluster on Valkey.
scenario!(sentinel_failover => crate::topology::sentinel_follows_a_failover_while_the_lock_is_held,
    valkey_9_1: Valkey91);
scenario!(cluster_migration => crate::topology::cluster_slot_migration_while_the_lock_is_held,
    valkey_9_1: Valkey91);
scenario!(cluster_waiter => crate::topology::cluster_lock_with_braces_and_a_woken_waiter,
    valkey_9_1: Valkey91);

/// The matrix runs what it says: each kind's server, and its Sentinel,
/// names itself as that server and version (`HELLO`), and
/// `REDLOCK_TEST_SERVER` picks it.
#[test]
fn each_kind_is_the_server_it_names() {
    for kind in ServerKind::ALL {
        let s = RedisServer::start_kind(kind, &[]);
        assert_eq!(s.kind, kind);
        let hello: std::collections::HashMap<String, redis::Value> = s.query(&["HELLO"]);
        let text = |f: &str| match &hello[f] {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            v => panic!("{f}: {v:?}"),
        };
        let named = format!(
            "{} {}.",
            if text("server") == "valkey" {
                "Valkey"
            } else {
                "Redis"
            },
            text("version")
        );
        assert!(named.starts_with(kind.product()), "{kind}: {named}");
    }
    let sentinel = with_server(ServerKind::Valkey91, topology::SentinelSetup::start);
    let info: String = sentinel.sentinels[0]
        .try_query(&["INFO", "server"])
        .expect("INFO from the Sentinel");
    assert!(
        info.contains("server_name:valkey") && info.contains("_mode:sentinel"),
        "{info}"
    );
    for (name, kind) in [
        ("redis-6.2", ServerKind::Redis62),
        ("valkey-9.1", ServerKind::Valkey91),
        ("redis-7.0", ServerKind::Redis70),
    ] {
        assert_eq!(ServerKind::from_name(name), Some(kind));
    }
}
