//! The command line, as clap derive types. Every `///` here is the manual:
//! `--help`, the man page and the completions are generated from it, and
//! docs/reference.md is checked against it (tests/it/cli.rs).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{
    ArgAction, ArgGroup, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum,
};
use clap_complete::Shell;

use crate::{exit, help, urls};

/// Run a command under a distributed lock held in Redis.
///
/// Acquires KEY (`SET KEY token NX PX ttl`), runs the command while the lease
/// is renewed in the background, forwards signals, stops the command before
/// the lease could pass to someone else, releases the lock only if it still
/// holds it, and exits with the command's status. With two or more --redis
/// URLs the Redlock quorum algorithm runs over independent masters: a
/// majority of them must answer for every run, so they are not a failover
/// list (for failover, one redis+sentinel:// URL).
#[derive(Debug, Parser)]
#[command(
    name = "redlock-run",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = help::run_short(),
    after_long_help = help::run_long(),
    // One line per mode: a usage error shows only the mode that was used.
    override_usage = "redlock-run [OPTIONS] --key <KEY> <-- <COMMAND> [ARGS]...|--shell <CMDLINE>>"
)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Sub>,

    #[command(flatten)]
    pub run: RunArgs,
}

impl Cli {
    /// Parse a command line (`args[0]` is the program's name).
    ///
    /// `--redis` values are taken whole. REDLOCK_REDIS is still read by
    /// clap (so that --help names it and the default stays clap's), and the
    /// value it came from is then split where a new URL begins
    /// ([`urls::split_list`]); clap's `value_source` tells the two apart,
    /// so a `--redis` value is never split, whatever it holds.
    pub fn from_command_line<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let (sub, matches) = matches
            .subcommand()
            .map_or((None, &matches), |(name, m)| (Some(name), m));
        let servers = match &mut cli.subcommand {
            None => Some((&mut cli.run.target.redis, &mut cli.run.target.redis_file)),
            Some(Sub::Schedule(a)) => Some((&mut a.target.redis, &mut a.target.redis_file)),
            Some(Sub::Status(a)) => Some((&mut a.target.redis, &mut a.target.redis_file)),
            Some(Sub::Release(a)) => Some((&mut a.target.redis, &mut a.target.redis_file)),
            Some(Sub::Doctor(a)) => Some((&mut a.target.redis, &mut a.target.redis_file)),
            Some(Sub::List(a)) => Some((&mut a.redis, &mut a.redis_file)),
            Some(Sub::Completions { .. }) => None,
        };
        if let Some((redis, file)) = servers {
            let from_file = from_file(
                matches.value_source("redis"),
                matches.value_source("redis_file"),
            )
            .map_err(|why| {
                let mut top = Cli::command();
                let mut cmd = match sub.and_then(|name| top.find_subcommand_mut(name)) {
                    Some(s) => s.clone().bin_name(format!("redlock-run {}", s.get_name())),
                    None => top,
                };
                cmd.error(ErrorKind::ArgumentConflict, why)
            })?;
            if from_file {
                redis.clear();
            } else {
                *file = None;
                if matches.value_source("redis") == Some(ValueSource::EnvVariable) {
                    *redis = redis.iter().flat_map(|v| urls::split_list(v)).collect();
                }
            }
        }
        Ok(cli)
    }
}

/// Whether the servers come from `--redis-file` (or REDLOCK_REDIS_FILE)
/// rather than `--redis` (or REDLOCK_REDIS), given where each one's value
/// came from: the command line over the environment, and both from the
/// same place is an error.
fn from_file(redis: Option<ValueSource>, file: Option<ValueSource>) -> Result<bool, &'static str> {
    use ValueSource::{CommandLine, EnvVariable};
    match (redis, file) {
        (Some(CommandLine), Some(CommandLine)) => {
            Err("--redis and --redis-file both name the servers: give one of them")
        }
        (Some(EnvVariable), Some(EnvVariable)) => Err(
            "REDLOCK_REDIS and REDLOCK_REDIS_FILE are both set: unset one (--redis or \
             --redis-file on the command line overrides both)",
        ),
        (Some(CommandLine), _) | (_, None) => Ok(false),
        (_, Some(_)) => Ok(true),
    }
}

/// The subcommands that run no command (a usage slip names them without
/// building clap's definition: `usage.rs`). A test checks this list and
/// [`RUN_A_COMMAND`] against [`Sub`].
pub const RUN_NOTHING: &[&str] = &["status", "release", "doctor", "list", "completions", "help"];
/// The subcommands that run a command (under the guardian).
pub const RUN_A_COMMAND: &[&str] = &["schedule"];

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Run the command on a schedule, each tick at most once across hosts
    ///
    /// Run the same line on every host: ticks fall on wall-clock multiples
    /// of --every since the Unix epoch (or on --cron times), every instance
    /// tries each tick, and a per-tick claim in Redis lets exactly one run
    /// it, even with clocks apart by up to half an interval. A tick that
    /// comes while a run (anywhere) still holds the lock is skipped. One
    /// info line per tick. SIGINT/SIGTERM: the running command gets the
    /// signal and is waited for, the lock is released, exit 0 (SIGHUP,
    /// SIGQUIT, SIGUSR1 and SIGUSR2 go to a running command and do not stop
    /// the schedule; any other signal that would end redlock-run, such as
    /// SIGALRM, stops the command, releases the lock and exits 128+N).
    #[command(
        override_usage = "redlock-run schedule [OPTIONS] --key <KEY> <--every <DURATION>|--cron <EXPR>> <-- <COMMAND> [ARGS]...|--shell <CMDLINE>>",
        after_help = help::sub_short("schedule"),
        after_long_help = help::sub_long("schedule")
    )]
    Schedule(ScheduleArgs),
    /// Show whether KEY is held, by whom, for how long, and the last fencing token.
    #[command(
        override_usage = "redlock-run status --key <KEY> [--redis <URL>]... [--json]",
        after_help = help::sub_short("status"),
        after_long_help = help::sub_long("status")
    )]
    Status(StatusArgs),
    /// Delete the lock whoever holds it (break glass after a crash). Needs --force.
    ///
    /// Prints what it removed. With several --redis, the key is deleted on
    /// every master that answers. The fencing counter is never reset,
    /// except by --forget.
    #[command(
        override_usage = "redlock-run release --key <KEY> [--redis <URL>]... <--force|--forget>",
        after_help = help::sub_short("release"),
        after_long_help = help::sub_long("release")
    )]
    Release(ReleaseArgs),
    /// Check the Redis servers a key would use: one line per check.
    ///
    /// For each server: reachability and round trip, version, Lua, ACL
    /// permissions for every command the tool sends, maxmemory-policy
    /// (anything but noeviction fails), persistence, role, cluster mode and
    /// the clock offset; with several --redis, an even count and the same
    /// server listed twice. A check the server does not allow is "unknown".
    /// Run it once against the Redis you plan to use.
    #[command(
        override_usage = "redlock-run doctor --key <KEY> [--redis <URL>]... [--json]",
        after_help = help::sub_short("doctor"),
        after_long_help = help::sub_long("doctor")
    )]
    Doctor(StatusArgs),
    /// List the locks held through this tool whose key matches PATTERN.
    ///
    /// One line per lock: key, holder (host, pid, command), since, lease
    /// left, fencing token, waiters, last run. Found with SCAN over the holder
    /// descriptions (never KEYS), so a large keyspace is walked in small
    /// steps; at most --max locks are shown (a note says when there are
    /// more). With several --redis, the locks a quorum of masters agrees
    /// on.
    #[command(
        override_usage = "redlock-run list [PATTERN] [--redis <URL>]... [--json]",
        after_help = help::sub_short("list"),
        after_long_help = help::sub_long("list")
    )]
    List(ListArgs),
    /// Print a shell completion script to stdout.
    #[command(
        after_help = help::sub_short("completions"),
        after_long_help = help::sub_long("completions")
    )]
    Completions {
        /// The shell to generate completions for.
        shell: Shell,
    },
}

/// Where the lock lives: its key and the Redis servers that hold it.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The lock's name (the Redis key)
    ///
    /// The lock lives at exactly this Redis key.
    #[arg(short, long, env = "REDLOCK_KEY", value_name = "KEY")]
    pub(crate) key: Option<String>,

    /// Redis URL; repeat for a Redlock quorum, which is not failover
    ///
    /// redis://, rediss:// (TLS) or unix://, with user, password
    /// and db as usual (percent-encode special characters in the password,
    /// e.g. %40 for '@', %2F for '/');
    /// redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]]
    /// for the primary Sentinels name (?sentinel_password= for their own);
    /// redis+cluster://[[user]:password@]host:port[,host:port]... for a
    /// Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over
    /// independent masters, a majority of which must answer for every run:
    /// not a failover list (with two, one server down stops every run; for
    /// failover, give one redis+sentinel:// URL). In REDLOCK_REDIS, separate
    /// the URLs with commas (a comma splits the list only where a new URL
    /// begins, so one in a password is kept). For a password, prefer
    /// --redis-file: argv is visible in `ps`, and the command inherits
    /// REDLOCK_REDIS.
    // No `value_delimiter`: it would split --redis values too, and at every
    // comma. `Cli::from_command_line` splits a value from REDLOCK_REDIS.
    #[arg(
        short,
        long,
        env = "REDLOCK_REDIS",
        value_name = "URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub(crate) redis: Vec<String>,

    /// Read the Redis URLs from a private file: no password in argv or env
    ///
    /// One URL per line (blank lines and lines starting with # are
    /// ignored), instead of --redis, so that no password is in argv or in
    /// the command's environment. The file must be private, as an
    /// ssh key: owned by you or root, no access for group or others (else
    /// exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no
    /// REDLOCK_REDIS), so a redlock-run inside it finds the same servers.
    /// Not with --redis; overrides REDLOCK_REDIS.
    #[arg(long, env = "REDLOCK_REDIS_FILE", value_name = "PATH")]
    pub(crate) redis_file: Option<PathBuf>,
}

/// Logging on stderr.
#[derive(Debug, Clone, Args)]
pub(crate) struct LogArgs {
    /// More output on stderr (repeatable)
    ///
    /// Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it.
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub(crate) verbose: u8,

    /// Less output on stderr (repeatable).
    #[arg(short, long, action = ArgAction::Count)]
    pub(crate) quiet: u8,

    /// Log line format
    ///
    /// One line per event; json for log shippers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Lease options shared by run and schedule.
#[derive(Debug, Clone, Args)]
pub struct LeaseArgs {
    /// Lease length: how long the lock outlives a vanished holder
    ///
    /// Counted from the last renewal. At least 625ms with the default
    /// --refresh (a shorter --refresh allows down to about 210ms).
    #[arg(long, env = "REDLOCK_TTL", default_value = "30s", value_parser = duration, value_name = "DURATION")]
    pub ttl: Duration,

    /// How often the lease is renewed [default: ttl/3]
    ///
    /// Must be shorter than --ttl.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub refresh: Option<Duration>,

    /// Keep the lock at least this long after acquiring it
    ///
    /// Even if the command ends sooner (redlock-run itself exits at once):
    /// stops a late-firing cron on another host from running the same job
    /// again.
    #[arg(long, default_value = "0s", value_parser = duration, value_name = "DURATION")]
    pub min_hold: Duration,

    /// Grace between SIGTERM and SIGKILL when the command must be stopped
    ///
    /// [default: min(5s, ttl/3), clamped to fit]; 2 x refresh + 100ms +
    /// kill-after + 100ms + drift must not exceed ttl.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub kill_after: Option<Duration>,

    /// Let up to N hold the lock at once
    ///
    /// Each with its own lease and fencing token; every instance using KEY must give the same N (a
    /// mismatch exits 2). N > 1 needs a single --redis URL.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT as i64))]
    pub limit: u32,
}

/// The largest `--limit`.
pub(crate) const MAX_LIMIT: u32 = 10_000;

/// Replication options shared by run and schedule.
#[derive(Debug, Clone, Args)]
pub struct ReplicaArgs {
    /// Wait until N replicas acknowledged each acquisition and renewal
    ///
    /// WAIT after acquiring and after each renewal, at most ttl/10 clamped
    /// to 150ms..1s, taken from the renewal budget; an acquisition not acknowledged in
    /// time is undone, a renewal not acknowledged is a failed renewal.
    /// A failover to a replica that acknowledged keeps the lock.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub wait_replicas: u32,
}

/// How long an attempt to take the lock waits for each server.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectArgs {
    /// How long one request to take the lock may wait for a server
    ///
    /// Connecting included, at most ttl/2: a server that has not answered
    /// by then counts as unreachable for that attempt, so this is the
    /// longest --timeout 0 (one attempt) takes. Renewals keep their own
    /// bound, derived from --ttl.
    // In --help only: -h fits on one screen.
    #[arg(long, env = "REDLOCK_CONNECT_TIMEOUT", default_value = "2s", value_parser = positive_duration, value_name = "DURATION", hide_short_help = true)]
    pub(crate) connect_timeout: Duration,
}

/// The command to run: an argv after `--`, or a shell command line.
#[derive(Debug, Clone, Args)]
pub struct CommandArgs {
    /// Run CMDLINE with `/bin/sh -c` instead of a `--` argv.
    #[arg(short = 'c', long, value_name = "CMDLINE", conflicts_with = "command")]
    pub(crate) shell: Option<String>,

    /// The command and its arguments, passed to execvp untouched (no shell).
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<OsString>,

    /// A label stored with the lock and shown by `status` (not a secret)
    ///
    /// What this run is, for the operator.
    #[arg(long, value_name = "TEXT")]
    pub(crate) label: Option<String>,

    /// Store the whole command line with the lock, not only its program
    ///
    /// Shown by `status` on any host that can read this Redis. By default
    /// only the program's name is stored: arguments often carry tokens.
    #[arg(long)]
    pub(crate) record_args: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,

    /// How long to wait for the lock: 0s = one attempt; `inf` = forever
    ///
    /// 0s is cron's case: skip if another host holds it. The whole wait, a
    /// server that never answers included, ends within DURATION + 0.5s
    /// (0s: within --connect-timeout + 0.5s). A wait longer than a
    /// second shows its progress on stderr (who holds the lock, for how
    /// long we waited, our place in the queue); -q silences it.
    #[arg(short, long, env = "REDLOCK_TIMEOUT", default_value = "0s", value_parser = timeout, value_name = "DURATION")]
    pub(crate) timeout: Timeout,

    #[command(flatten)]
    pub(crate) connect: ConnectArgs,

    #[command(flatten)]
    pub lease: LeaseArgs,

    #[command(flatten)]
    pub replicas: ReplicaArgs,

    /// Exit code when the lock stayed busy for all of --timeout
    ///
    /// Pick one the command never exits with, to tell the two apart.
    #[arg(short = 'E', long, default_value_t = exit::CONFLICT, value_name = "N")]
    pub(crate) conflict_exit_code: u8,

    #[command(flatten)]
    pub command: CommandArgs,

    #[command(flatten)]
    pub(crate) log: LogArgs,
}

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("when").required(true).args(["every", "cron"])))]
pub struct ScheduleArgs {
    #[command(flatten)]
    pub target: Target,

    /// Interval between ticks
    ///
    /// Ticks fall on wall-clock multiples of it since the Unix epoch, so every host agrees which tick is which.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub(crate) every: Option<Duration>,

    /// Cron expression instead of --every
    ///
    /// 6 fields (with seconds, e.g.
    /// '*/10 * * * * *') or 5 (minute first); no year field.
    #[arg(long, value_name = "EXPR")]
    pub(crate) cron: Option<String>,

    /// Time zone for --cron, an IANA name such as Europe/Paris [default: UTC].
    #[arg(long, requires = "cron", value_name = "TZ")]
    pub(crate) tz: Option<String>,

    #[command(flatten)]
    pub lease: LeaseArgs,

    #[command(flatten)]
    pub(crate) connect: ConnectArgs,

    #[command(flatten)]
    pub replicas: ReplicaArgs,

    #[command(flatten)]
    pub command: CommandArgs,

    #[command(flatten)]
    pub(crate) log: LogArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) log: LogArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub target: Target,

    /// Really delete the lock, whoever holds it.
    #[arg(long)]
    pub(crate) force: bool,

    /// Retire KEY: remove everything kept for it (fencing counter, run
    /// history, tick claim, stored --limit, ...), never while it is held or
    /// waited for (exit 75). Fencing tokens issued later still rise.
    #[arg(long, conflicts_with = "force")]
    pub(crate) forget: bool,

    #[command(flatten)]
    pub(crate) log: LogArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Which lock keys to show: a Redis glob, e.g. 'deploy-*'
    ///
    /// `*`, `?`, `[abc]`, `\` escapes.
    #[arg(default_value = "*", value_name = "PATTERN")]
    pub(crate) pattern: String,

    /// Redis URL; repeat for a Redlock quorum, which is not failover
    ///
    /// As for the other commands (see `redlock-run --help`): a majority of
    /// the masters must answer.
    #[arg(
        short,
        long,
        env = "REDLOCK_REDIS",
        value_name = "URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis: Vec<String>,

    /// Read the Redis URLs from this file instead, as for the other
    /// commands (see `redlock-run --help`).
    #[arg(long, env = "REDLOCK_REDIS_FILE", value_name = "PATH")]
    pub(crate) redis_file: Option<PathBuf>,

    /// Print one JSON array of objects shaped like `status --json`.
    #[arg(long)]
    pub(crate) json: bool,

    /// Show at most this many locks.
    #[arg(long, default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max: u32,

    #[command(flatten)]
    pub(crate) log: LogArgs,
}

/// `--timeout`: a bounded wait, or forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    After(Duration),
    Never,
}

fn duration(s: &str) -> Result<Duration, String> {
    if s.trim().starts_with('-') {
        return Err(exit::NOT_NEGATIVE.into());
    }
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (try 500ms, 30s, 10m, 1h 30m)"))
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err("must be greater than 0 (try 500ms, 2s)".into()),
        d => Ok(d),
    }
}

fn timeout(s: &str) -> Result<Timeout, String> {
    match s.trim() {
        "inf" | "infinity" | "forever" => Ok(Timeout::Never),
        other => duration(other).map(Timeout::After),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// A new subcommand goes into exactly one of the two lists.
    #[test]
    fn every_subcommand_says_whether_it_runs_a_command() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut subs: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
        let mut listed = [RUN_NOTHING, RUN_A_COMMAND].concat();
        subs.sort_unstable();
        listed.sort_unstable();
        assert_eq!(subs, listed, "cli::RUN_NOTHING + cli::RUN_A_COMMAND");
    }

    #[test]
    fn redis_values_are_never_split() {
        let url = "redis://:a,redis://b@h:1";
        let cli =
            Cli::from_command_line(["redlock-run", "--redis", url, "--key", "k", "--", "true"])
                .unwrap();
        assert_eq!(cli.run.target.redis, [url]);
        let cli = Cli::from_command_line(["redlock-run", "status", "-r", url, "-k", "k"]).unwrap();
        let Some(Sub::Status(a)) = cli.subcommand else {
            panic!("not status")
        };
        assert_eq!(a.target.redis, [url]);
    }

    #[test]
    fn durations_are_not_negative() {
        assert_eq!(duration("-1"), Err(exit::NOT_NEGATIVE.to_string()));
    }

    #[test]
    fn timeout_parses_inf_and_durations() {
        assert_eq!(timeout("inf"), Ok(Timeout::Never));
        assert_eq!(
            timeout("1h 30m"),
            Ok(Timeout::After(Duration::from_secs(5400)))
        );
        assert!(timeout("soon").is_err());
    }
}
