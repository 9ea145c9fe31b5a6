//! The examples and exit codes at the end of `--help` (a few examples
//! with `-h` too), one list per mode. The man pages' EXAMPLES and EXIT
//! STATUS sections are built from the same lists, and a test parses every
//! example as the binary would (tests/it/help.rs).

use crate::exit;

/// One example: what it does (a comment line in `--help`), and the command.
pub struct Example {
    pub what: &'static str,
    pub command: &'static str,
}

const fn ex(what: &'static str, command: &'static str) -> Example {
    Example { what, command }
}

/// Run mode. The first [`SHORT`] are shown with `-h` too.
pub(crate) const RUN: &[Example] = &[
    ex(
        "Run ./report.sh unless another host holds the lock (then exit 75 at once)",
        "redlock-run --key nightly-report -- ./report.sh",
    ),
    ex(
        "Wait up to 10 minutes for the lock",
        "redlock-run --key deploy-prod --timeout 10m -- ./deploy.sh",
    ),
    ex(
        "Who holds it, since when, the last fencing token and the last run",
        "redlock-run status --key deploy-prod",
    ),
    ex(
        "A shell command line; the lock kept 10 minutes, so that a late cron elsewhere skips",
        "redlock-run --key nightly --min-hold 10m --shell './report.sh > report.txt'",
    ),
    ex(
        "A Redlock quorum over 3 independent masters (a majority must answer: not failover)",
        "REDLOCK_REDIS=redis://r1:6379,redis://r2:6379,redis://r3:6379 redlock-run --key k -- ./job.sh",
    ),
    ex(
        "Failover: one primary, found and followed through its Sentinels",
        "redlock-run --redis redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster --key k -- ./job.sh",
    ),
];

pub(crate) const SCHEDULE: &[Example] = &[
    ex(
        "Every 10 s, each tick at most once across every host running this line",
        "redlock-run schedule --key sync --every 10s -- ./sync.sh",
    ),
    ex(
        "At 02:30 Paris time (6 fields: seconds first)",
        "redlock-run schedule --key report --cron '0 30 2 * * *' --tz Europe/Paris -- ./report.sh",
    ),
];

pub(crate) const STATUS: &[Example] = &[
    ex(
        "Who holds it, since when, the lease left, the last fencing token and the last run",
        "redlock-run status --key deploy-prod",
    ),
    ex(
        "The last run's outcome (ok, failed, ...); exit 1 (free) is no error, 69 is",
        "{ redlock-run status --key nightly-report --json || [ $? = 1 ]; } | jq -r '.last_runs[0].outcome'",
    ),
];

pub(crate) const RELEASE: &[Example] = &[
    ex(
        "Break glass after a crash (a live holder notices at its next renewal and exits 70)",
        "redlock-run release --key nightly-report --force",
    ),
    ex(
        "Retire a key no longer used: its fencing counter, history, tick claim, ...",
        "redlock-run release --key nightly-report-old --forget",
    ),
];

pub(crate) const DOCTOR: &[Example] = &[ex(
    "Check the server a key would use, before the first crontab line",
    "redlock-run doctor --key nightly-report --redis redis://redis.internal:6379",
)];

pub(crate) const LIST: &[Example] = &[
    ex("Every lock held now", "redlock-run list"),
    ex(
        "The deploy locks, as JSON",
        "redlock-run list 'deploy-*' --json",
    ),
];

pub(crate) const COMPLETIONS: &[Example] = &[ex(
    "Bash completions for your account",
    "redlock-run completions bash > ~/.local/share/bash-completion/completions/redlock-run",
)];

/// How many of [`RUN`] `-h` shows.
pub(crate) const SHORT: usize = 3;

/// The examples of a mode, by subcommand name (`None`: run mode).
pub fn examples(sub: Option<&str>) -> &'static [Example] {
    match sub {
        None => RUN,
        Some("schedule") => SCHEDULE,
        Some("status") => STATUS,
        Some("release") => RELEASE,
        Some("doctor") => DOCTOR,
        Some("list") => LIST,
        Some("completions") => COMPLETIONS,
        Some(_) => &[],
    }
}

/// The exit codes of a subcommand (run mode's are [`exit::HELP_TABLE`]).
pub(crate) fn exit_codes(sub: &str) -> &'static [(&'static str, &'static str)] {
    match sub {
        "schedule" => &[
            (
                "0",
                "stopped by SIGINT or SIGTERM (after the running command ended and the lock was released)",
            ),
            (
                "69",
                "at start: a password, permission (ACL) or database refused",
            ),
            ("2", "bad usage"),
        ],
        "status" => &[
            ("0", "held (with --limit: by at least one)"),
            ("1", "free"),
            (
                "69",
                "Redis unreachable (with several --redis: fewer than a quorum answered)",
            ),
            ("2", "bad usage"),
        ],
        "release" => &[
            (
                "0",
                "deleted, or not held (--forget: forgotten, or nothing to forget)",
            ),
            (
                "75",
                "--forget: the key is in use (held or waited for); nothing removed",
            ),
            (
                "69",
                "Redis unreachable, or fewer than a quorum of masters answered (deleted on those that did; --forget: fewer than all)",
            ),
            ("2", "bad usage (also: without --force)"),
        ],
        "doctor" => &[
            ("0", "no check failed"),
            ("1", "a check failed"),
            ("69", "no server reachable"),
            ("2", "bad usage"),
        ],
        "list" => &[
            ("0", "listed (also when no lock is held)"),
            (
                "69",
                "Redis unreachable (with several --redis: fewer than a quorum answered)",
            ),
            ("2", "bad usage"),
        ],
        "completions" => &[("0", "printed"), ("2", "bad usage (an unknown shell)")],
        _ => &[],
    }
}

/// `Examples:` and the first `n` commands, without comments (for `-h`).
fn short(examples: &[Example], n: usize) -> String {
    let mut out = String::from("Examples:\n");
    for e in examples.iter().take(n) {
        out += &format!("  {}\n", e.command);
    }
    out.trim_end().to_string()
}

/// `Examples:`, each command after its comment (for `--help`).
fn long(examples: &[Example]) -> String {
    let mut out = String::from("Examples:\n");
    for e in examples {
        out += &format!("  # {}\n  {}\n", e.what, e.command);
    }
    out
}

/// After run mode's `-h`.
pub(crate) fn run_short() -> String {
    format!(
        "{}\n\nMore examples and the exit codes: --help",
        short(RUN, SHORT)
    )
}

/// After run mode's `--help`: every example, then the exit codes.
pub(crate) fn run_long() -> String {
    format!("{}\n{}", long(RUN), exit::HELP_TABLE)
}

/// After a subcommand's `-h`.
pub(crate) fn sub_short(sub: &str) -> String {
    short(examples(Some(sub)), usize::MAX)
}

/// After a subcommand's `--help`: its examples, then its exit codes.
pub(crate) fn sub_long(sub: &str) -> String {
    let mut out = long(examples(Some(sub)));
    out += "\nExit status:\n";
    for (code, what) in exit_codes(sub) {
        out += &format!("  {code:<4} {what}\n");
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every subcommand has examples and exit codes.
    #[test]
    fn every_mode_has_examples_and_exit_codes() {
        let cmd = crate::cli::Cli::command();
        for sub in cmd.get_subcommands().map(|s| s.get_name()) {
            assert!(!examples(Some(sub)).is_empty(), "{sub}: no example");
            assert!(!exit_codes(sub).is_empty(), "{sub}: no exit code");
        }
    }
}
