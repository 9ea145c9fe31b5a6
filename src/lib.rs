//! redlock-run: run a command under a distributed lock held in Redis.
//!
//! The layers, from the command line down:
//!
//! - `cli` (the clap definition, which is the manual) → `config` (checked
//!   values: where the lock lives, the lease, the program) → a mode:
//!   `run`, `schedule`, or `admin` (status, list, release); `doctor`.
//! - `lock/`: acquire, wait, renew, release, on one master or a Redlock
//!   quorum, behind one type.
//! - `supervise`: the one `select!` over the command (`child`, in its own
//!   process group), `signals` and the lease; `guardian`, a forked process,
//!   enforces the deadline even when this one stalls.
//! - `exit` (the code table, the typed failures), `logging`, `urls`
//!   (passwords hidden), `display` (escaped text, durations, stdout),
//!   `clock`, `startup`, `completions`.
//!
//! No module imports one that imports it back, and every module is
//! private: what the binary and the tests use is re-exported below
//! (`layers` checks both, and that no function runs over 80 lines).
//!
//! This file holds the entry and the dispatch only: the command line is
//! parsed once into a [`Command`] (bad input refused the way clap refuses
//! it: `usage`), then executed, one arm per mode. Each mode returns how it
//! ended (`outcome`); `outcome::exit_code` is the one place an exit code
//! is picked.
//!
//! For contributors, ARCHITECTURE.md walks one run from `main` to the exit
//! code, says where each decision lives, and how to add a test.

// Every module is private: what is public is re-exported below. A `pub`
// item no one outside the crate can reach is `pub(crate)`.
#![warn(unreachable_pub)]
// The docs are for contributors (`cargo doc --document-private-items`):
// public items may link to private ones.
#![allow(rustdoc::private_intra_doc_links)]

mod admin;
mod child;
mod cli;
mod clock;
mod completions;
mod config;
mod display;
mod doctor;
mod exit;
mod guardian;
mod help;
#[cfg(test)]
mod layers;
mod lock;
mod logging;
mod outcome;
mod progress;
mod redis_file;
mod run;
mod schedule;
mod signals;
mod startup;
mod supervise;
mod urls;
mod usage;

// The binary's start (src/main.rs) and what the integration tests
// (tests/it) use below the command line: the lock's names and scripts
// (the model checks), the lease's rules, the exit codes, the help's
// examples. Nothing else is public.
pub use cli::{Cli, LeaseArgs, RUN_A_COMMAND, RUN_NOTHING, Sub};
pub use config::{Endpoint, KILL_MARGIN, Lease, Place, Program, endpoints, min_ttl};
pub use exit::{CONFLICT, LOST, UNAVAILABLE, help_rows};
pub use help::examples;
pub use lock::{Attempt, Count, HolderInfo, Keys, Locker, Mode, Renewal, RunEntry, scripts};
pub use schedule::When;
pub use startup::prepare_process;

use std::ffi::OsString;
use std::time::Duration;

use clap_complete::Shell;

use cli::{LogArgs, Timeout};
use exit::{Failure, Reported};
use outcome::Outcome;
use usage::UsageOf;

/// The whole program, from the command line (`args[0]` is the program's
/// name) to the exit code: parse once, then run the mode, and pick the
/// code ([`outcome::exit_code`], the only place one is picked).
pub fn main(args: Vec<OsString>) -> i32 {
    // The guardian is forked before parsing, by any command line that may
    // run a command: the fewer pages written, the cheaper the fork and
    // the fewer copy-on-write faults after it. Forked after parsing, the
    // one-holder path took 0.11 ms longer (scripts/bench --only 7, B = a
    // late fork, A = this: +0.112 ms at the median against an A'/A gap of
    // 0.006 ms, 2026-12-05), more than the 0.05 ms issue 25 allows. The
    // mode that runs a command checks it started ([`guarded`]).
    if may_run_a_command(&args) {
        let _ = guardian::start();
    }
    let (ended, conflict) = match Command::parse(&args) {
        Ok(command) => {
            let conflict = command.conflict_exit_code();
            (command.execute(), conflict)
        }
        Err(refused) => (Err(refused.into()), exit::CONFLICT),
    };
    outcome::exit_code(&ended, conflict)
}

/// The command line, checked: one mode and everything it needs.
enum Command {
    /// clap showed help or the version.
    Shown,
    Completions(Shell),
    Run(run::RunPlan),
    Schedule(schedule::SchedulePlan),
    Status {
        place: Place,
        json: bool,
    },
    Doctor {
        place: Place,
        json: bool,
    },
    List {
        endpoints: Vec<Endpoint>,
        pattern: String,
        max: usize,
        json: bool,
    },
    /// `release --force`, or `release --forget`.
    Release {
        place: Place,
        forget: bool,
    },
}

/// Log levels and timestamps: errors only for one-shot modes, a line per
/// tick (with its time) for schedule.
const ERRORS: (logging::Default, bool) = (logging::Default::Errors, false);
const TICKS: (logging::Default, bool) = (logging::Default::Info, true);

impl Command {
    /// Parse and check the command line, and set up logging; help, the
    /// version and bad input are shown the way clap shows them. Nothing
    /// has touched Redis yet.
    fn parse(args: &[OsString]) -> Result<Command, Reported> {
        match Cli::from_command_line(args) {
            Ok(cli) => Command::from_cli(cli, args),
            Err(e) => usage::print_clap(e, args).map(|()| Command::Shown),
        }
    }

    /// The mode `cli` asks for, checked. One arm per mode.
    fn from_cli(cli: Cli, args: &[OsString]) -> Result<Command, Reported> {
        Ok(match cli.subcommand {
            Some(Sub::Completions { shell }) => Command::Completions(shell),
            Some(Sub::Schedule(a)) => {
                let usage = UsageOf::sub("schedule");
                Command::Schedule(prepare(usage, args, &a.log, TICKS, || {
                    let (place, lease) = place_and_lease(&a.target, &a.lease, &a.replicas)?;
                    let program = Program::from_args(&a.command)?.for_place(&place);
                    Ok(schedule::SchedulePlan {
                        place,
                        lease,
                        program,
                        when: schedule::When::from_args(&a)?,
                        connect_timeout: a.connect.connect_timeout,
                    })
                })?)
            }
            Some(Sub::Status(a)) => Command::Status {
                place: prepare(UsageOf::sub("status"), args, &a.log, ERRORS, || {
                    Place::from_args(&a.target)
                })?,
                json: a.json,
            },
            Some(Sub::Doctor(a)) => Command::Doctor {
                place: prepare(UsageOf::sub("doctor"), args, &a.log, ERRORS, || {
                    Place::from_args(&a.target)
                })?,
                json: a.json,
            },
            Some(Sub::List(a)) => Command::List {
                endpoints: prepare(UsageOf::sub("list"), args, &a.log, ERRORS, || {
                    if a.pattern.is_empty() {
                        return Err(Failure::Usage(
                            "the pattern must not be empty (* lists every lock)".into(),
                        ));
                    }
                    config::servers(&a.redis, a.redis_file.as_deref())
                })?,
                max: a.max as usize,
                pattern: a.pattern,
                json: a.json,
            },
            Some(Sub::Release(a)) => {
                let usage = UsageOf::sub("release");
                let place = prepare(usage, args, &a.log, ERRORS, || Place::from_args(&a.target))?;
                if !a.force && !a.forget {
                    return Err(usage.refuse(Failure::unforced(&place.key), args));
                }
                Command::Release {
                    place,
                    forget: a.forget,
                }
            }
            None => {
                let a = cli.run;
                Command::Run(prepare(UsageOf::RUN, args, &a.log, ERRORS, || {
                    let (place, lease) = place_and_lease(&a.target, &a.lease, &a.replicas)?;
                    let program = Program::from_args(&a.command)?.for_place(&place);
                    Ok(run::RunPlan {
                        place,
                        lease,
                        program,
                        timeout: a.timeout,
                        connect_timeout: a.connect.connect_timeout,
                        conflict_exit_code: a.conflict_exit_code,
                    })
                })?)
            }
        })
    }

    /// `--conflict-exit-code`: run mode's; the table's 75 elsewhere.
    fn conflict_exit_code(&self) -> u8 {
        match self {
            Command::Run(plan) => plan.conflict_exit_code,
            _ => exit::CONFLICT,
        }
    }

    /// Run the mode, and log how it failed, if it did.
    fn execute(self) -> anyhow::Result<Outcome> {
        // A busy lock with the default `--timeout 0s` is the normal cron
        // case ("another host runs it").
        let quiet_conflict =
            matches!(&self, Command::Run(plan) if plan.timeout == Timeout::After(Duration::ZERO));
        let ended = self.dispatch();
        report(&ended, quiet_conflict);
        ended
    }

    /// Run the mode: how it ended.
    fn dispatch(self) -> anyhow::Result<Outcome> {
        match self {
            Command::Shown => Ok(Outcome::Done),
            Command::Completions(shell) => Ok(match completions::print(shell) {
                Ok(()) => Outcome::Done,
                Err(_) => Outcome::NotWritten,
            }),
            Command::Run(plan) => guarded(run::run(plan)).map(Outcome::Run),
            Command::Schedule(plan) => guarded(schedule::schedule(plan)).map(Outcome::Schedule),
            Command::Status { place, json } => {
                let held = block_on(async { Ok(admin::status(&place, json).await) })?;
                Ok(Outcome::Status(held?))
            }
            Command::Doctor { place, json } => {
                let code_of = |d| outcome::exit_code(&Ok(Outcome::Doctor(d)), exit::CONFLICT);
                block_on(async { Ok(doctor::doctor(&place, json, code_of).await) })
                    .map(Outcome::Doctor)
            }
            Command::List {
                endpoints,
                pattern,
                max,
                json,
            } => {
                block_on(async { Ok(admin::list(&endpoints, &pattern, max, json).await) })??;
                Ok(Outcome::Done)
            }
            Command::Release { place, forget } => {
                block_on(async {
                    Ok(if forget {
                        admin::forget(&place).await
                    } else {
                        admin::release(&place).await
                    })
                })??;
                Ok(Outcome::Done)
            }
        }
    }
}

/// What a mode needs, built from its arguments, then logging set up; bad
/// input in either is refused with `usage`.
fn prepare<T>(
    usage: UsageOf,
    args: &[OsString],
    log: &LogArgs,
    (default, timestamps): (logging::Default, bool),
    build: impl FnOnce() -> Result<T, Failure>,
) -> Result<T, Reported> {
    let built = build().map_err(|f| usage.refuse(f, args))?;
    logging::init(log, default, timestamps).map_err(|f| usage.refuse(f, args))?;
    Ok(built)
}

/// Run `fut` on a current_thread runtime: the command is spawned from the
/// main thread, which PR_SET_PDEATHSIG ties its life to. A runtime that
/// cannot be built (out of descriptors) is an internal error, not a panic.
fn block_on<T>(fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("building the async runtime: {e}")))?;
    rt.block_on(fut)
}

/// Whether `args` may run a command: not when its first argument names a
/// subcommand that runs none (status, list, ...). A guess made before
/// parsing, to fork the guardian early; [`guarded`] makes sure.
fn may_run_a_command(args: &[OsString]) -> bool {
    args.get(1)
        .and_then(|a| a.to_str())
        .is_none_or(|a| !RUN_NOTHING.contains(&a))
}

/// [`block_on`] for a mode that runs a command: only with a guardian
/// (forked by `main` already, or started here if that failed).
fn guarded<T>(fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    guardian::start()?;
    block_on(fut)
}

/// The key, servers and lease of run and schedule, checked together.
fn place_and_lease(
    target: &cli::Target,
    lease: &cli::LeaseArgs,
    replicas: &cli::ReplicaArgs,
) -> Result<(Place, Lease), Failure> {
    let place = Place::from_args(target)?;
    let lease = Lease::new(lease, replicas.wait_replicas)?;
    place.check_limit(lease.limit)?;
    Ok((place, lease))
}

/// One line for how a mode ended, if it failed (a failure the mode has
/// shown already is not said again). A busy lock with the default
/// `--timeout 0s` is the normal cron case ("another host runs it"): info,
/// not an error.
fn report(ended: &anyhow::Result<Outcome>, quiet_conflict: bool) {
    let e = match ended {
        Ok(Outcome::Run(end)) => {
            if let Some(f) = end.failure() {
                tracing::error!("{f}");
            }
            return;
        }
        Ok(_) => return,
        Err(e) => e,
    };
    if e.chain().any(|c| c.is::<Reported>()) {
        return;
    }
    let conflict = e
        .chain()
        .any(|c| matches!(c.downcast_ref::<Failure>(), Some(Failure::Conflict { .. })));
    let interrupted = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<Failure>(),
            Some(Failure::Interrupted { .. })
        )
    });
    if (conflict && quiet_conflict) || interrupted {
        tracing::info!("{e:#}; not running the command");
    } else if conflict {
        tracing::error!("{e:#}: gave up waiting; not running the command");
    } else {
        tracing::error!("{e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, Reported> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        Command::parse(&args)
    }

    #[test]
    fn the_command_line_is_checked_before_anything_runs() {
        assert!(matches!(
            parse(&["redlock-run", "--version"]),
            Ok(Command::Shown)
        ));
        assert!(matches!(
            parse(&["redlock-run", "--no-such-option"]),
            Err(Reported(Failure::Usage(_)))
        ));
        // A check that needs no Redis: refused at parse time.
        let unforced = parse(&[
            "redlock-run",
            "release",
            "--key",
            "k",
            "--redis",
            "redis://h:1",
        ]);
        match unforced {
            Err(Reported(Failure::Usage(why))) => assert!(why.contains("--force"), "{why}"),
            _ => panic!("release without --force was not refused"),
        }
    }

    #[test]
    fn only_run_mode_has_its_own_conflict_code() {
        let run = parse(&[
            "redlock-run",
            "-E",
            "9",
            "--key",
            "k",
            "--redis",
            "redis://h:1",
            "--",
            "true",
        ]);
        assert_eq!(run.ok().map(|c| c.conflict_exit_code()), Some(9));
        let status = parse(&[
            "redlock-run",
            "status",
            "--key",
            "k",
            "--redis",
            "redis://h:1",
        ]);
        assert!(matches!(status, Ok(Command::Status { json: false, .. })));
        assert_eq!(
            status.ok().map(|c| c.conflict_exit_code()),
            Some(exit::CONFLICT)
        );
    }
}
