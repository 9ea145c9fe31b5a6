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
//!   (passwords hidden), `clock`, `startup`, `completions`.
//!
//! This file holds the entry and the dispatch only: one arm per mode. Each
//! mode returns how it ended (`outcome`); `outcome::exit_code` is the one
//! place an exit code is picked.

pub mod admin;
pub mod child;
pub mod cli;
pub mod clock;
pub mod completions;
pub mod config;
pub mod doctor;
pub mod exit;
pub mod guardian;
pub mod help;
pub mod lock;
pub mod logging;
pub mod outcome;
pub mod progress;
pub mod redis_file;
pub mod run;
pub mod schedule;
pub mod signals;
pub mod startup;
pub mod supervise;
pub mod urls;

use std::ffi::OsString;
use std::sync::OnceLock;

use clap::CommandFactory;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use cli::{Cli, LogArgs, Sub};
use config::{Lease, Place, Program};
use exit::{Failure, Reported};
use outcome::Outcome;

/// The command line as `main` received it: clap quotes its arguments in
/// errors, and [`print_clap`] hides the passwords of the URLs among them.
static ARGS: OnceLock<Vec<OsString>> = OnceLock::new();

/// The whole program, from the command line (`args[0]` is the program's
/// name) to the exit code: parse, run the mode, log its failure, and pick
/// the code ([`outcome::exit_code`], the only place one is picked).
pub fn main(args: Vec<OsString>) -> i32 {
    // First thing: the fewer pages written, the cheaper the fork.
    guardian::start_unless_admin(args.get(1));
    let args = ARGS.get_or_init(|| args);
    let (ended, conflict) = match Cli::from_command_line(args) {
        Ok(cli) => {
            // -E and the quiet conflict of --timeout 0 are run mode's.
            let (conflict, quiet_conflict) = match &cli.subcommand {
                None => (
                    cli.run.conflict_exit_code,
                    cli.run.timeout == cli::Timeout::After(std::time::Duration::ZERO),
                ),
                Some(_) => (exit::CONFLICT, false),
            };
            let ended = dispatch(cli);
            report(&ended, quiet_conflict);
            (ended, conflict)
        }
        Err(e) => (print_clap(e), exit::CONFLICT),
    };
    outcome::exit_code(&ended, conflict)
}

/// Which usage a refused command line is shown: run mode's, or a
/// subcommand's (by its name).
#[derive(Debug, Clone, Copy)]
struct Mode(Option<&'static str>);

const RUN: Mode = Mode(None);

impl Mode {
    /// Refuse bad input the way clap does: one line saying what is wrong,
    /// this mode's usage (exit 2). Nothing has touched Redis yet.
    fn usage_error(self, f: Failure) -> anyhow::Error {
        match print_clap(self.error(ErrorKind::ValueValidation, f.to_string())) {
            Err(shown) => shown,
            Ok(_) => Reported(f).into(),
        }
    }

    /// A clap error saying `msg`, with this mode's usage.
    fn error(self, kind: ErrorKind, msg: String) -> clap::Error {
        let mut top = Cli::command();
        let mut cmd = match self.0.and_then(|name| top.find_subcommand_mut(name)) {
            Some(s) => s.clone().bin_name(format!("redlock-run {}", s.get_name())),
            None => top,
        };
        cmd.error(kind, msg)
    }

    /// The subcommand named `name`, if there is one.
    fn named(name: &str) -> Option<Mode> {
        cli::RUN_NOTHING
            .iter()
            .chain(cli::RUN_A_COMMAND)
            .find(|s| **s == name && name != "help")
            .map(|s| Mode(Some(s)))
    }

    /// What the mode needs, built from its arguments, then logging set up;
    /// bad input in either is a usage error.
    fn prepare<T>(
        self,
        log: &LogArgs,
        (default, timestamps): (logging::Default, bool),
        build: impl FnOnce() -> Result<T, Failure>,
    ) -> anyhow::Result<T> {
        let built = build().map_err(|f| self.usage_error(f))?;
        logging::init(log, default, timestamps).map_err(|f| self.usage_error(f))?;
        Ok(built)
    }
}

/// Print what clap has to say (an error, or --help/--version) as clap
/// would: errors on stderr, help on stdout, in colour only where clap
/// would use it; but with every URL's password hidden, since clap quotes
/// arguments whole (`unexpected argument 'redis://:pw@h'`), and with one
/// tip at most. Help and version are done; an error is a usage failure,
/// shown.
pub fn print_clap(mut err: clap::Error) -> anyhow::Result<Outcome> {
    use std::io::Write;
    if let Some(e) = first_day_slip(&err) {
        err = e;
    }
    one_tip(&mut err);
    let mut text = err.render().ansi().to_string();
    // Whole arguments first: a URL with a blank in it is one argument but
    // two words for `redact_text`.
    for arg in ARGS.get().into_iter().flatten().skip(1) {
        if let Some(arg) = arg
            .to_str()
            .filter(|a| a.contains('@') || a.contains("://"))
        {
            let shown = urls::redact(arg);
            if shown != arg {
                text = text.replace(arg, &shown);
            }
        }
    }
    let text = urls::redact_text(&text);
    // anstream strips the colours when the stream is not a terminal (or
    // NO_COLOR is set), as clap's own printing does.
    let _ = if err.use_stderr() {
        let mut out = anstream::AutoStream::auto(std::io::stderr().lock());
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    } else {
        let mut out = anstream::AutoStream::auto(std::io::stdout().lock());
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
    if err.use_stderr() {
        Err(Reported(Failure::Usage(text)).into())
    } else {
        Ok(Outcome::Done)
    }
}

/// clap's answer to a usage slip of the first day, replaced by one that
/// says what to do (the wording is in `exit`): a command without `--`
/// before it, an option before the subcommand, a negative duration
/// (clap takes `-1` for an option, and its tip, `-- -1`, would fail too).
fn first_day_slip(err: &clap::Error) -> Option<clap::Error> {
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let args = ARGS.get()?;
    // clap names a short-option cluster by its first letter: `-5` of `-5s`.
    let at = args
        .iter()
        .skip(1)
        .position(|a| a.to_str() == Some(arg))
        .or_else(|| {
            let arg = arg.as_str();
            args.iter()
                .skip(1)
                .position(|a| a.to_str().is_some_and(|a| a.starts_with(arg)))
        })?
        + 1;
    // The mode in use: the first subcommand name before the argument.
    let mode = args[1..at]
        .iter()
        .find_map(|a| a.to_str().and_then(Mode::named))
        .unwrap_or(RUN);
    if let Some(sub) = Mode::named(arg).filter(|_| mode.0.is_none()) {
        return Some(sub.error(ErrorKind::UnknownArgument, exit::options_after(arg)));
    }
    if !arg.starts_with('-') {
        let runs_a_command = mode.0.is_none_or(|m| cli::RUN_A_COMMAND.contains(&m));
        return runs_a_command
            .then(|| mode.error(ErrorKind::UnknownArgument, exit::put_dashes(arg)));
    }
    // `--timeout -1`: the option before it takes a value (a duration, a
    // number), which clap took for an option.
    let (arg, option) = (args[at].to_str()?, args[at - 1].to_str()?);
    let mut top = Cli::command();
    let cmd = match mode.0 {
        Some(name) => top.find_subcommand_mut(name)?,
        None => &mut top,
    };
    let value_name = cmd.get_arguments().find_map(|a| {
        let named = a.get_long().is_some() && option.strip_prefix("--") == a.get_long()
            || a.get_short().is_some()
                && option
                    .strip_prefix('-')
                    .is_some_and(|s| s.len() == 1 && s.chars().next() == a.get_short());
        a.get_value_names()
            .filter(|_| !a.is_positional() && a.get_action().takes_values())
            .and_then(|v| v.first())
            .filter(|_| named)
            .map(|v| v.to_string())
    })?;
    Some(mode.error(
        ErrorKind::ValueValidation,
        exit::negative(arg, option, &value_name),
    ))
}

/// A mistyped option can earn two tips from clap ("a similar argument
/// exists" and "to pass it as a value, use `--`"): keep the most specific
/// one, so that an error stays within four lines.
fn one_tip(err: &mut clap::Error) {
    let specific = [
        ContextKind::SuggestedArg,
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedValue,
    ]
    .into_iter()
    .any(|k| err.get(k).is_some());
    if let Some(ContextValue::StyledStrs(mut tips)) = err.remove(ContextKind::Suggested) {
        // clap lists the generic tip (pass it after `--`) first.
        let keep = usize::from(!specific);
        tips.drain(..tips.len().saturating_sub(keep));
        if !tips.is_empty() {
            err.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
        }
    }
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

/// [`block_on`] for a mode that runs a command: only with a guardian.
fn guarded<T>(fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    guardian::check()?;
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

/// Validate, run; returns how the mode ended. One arm per mode.
fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    // Log levels and timestamps: errors only for one-shot modes, a line
    // per tick (with its time) for schedule.
    const ERRORS: (logging::Default, bool) = (logging::Default::Errors, false);
    const TICKS: (logging::Default, bool) = (logging::Default::Info, true);
    match cli.subcommand {
        Some(Sub::Completions { shell }) => Ok(match completions::print(shell) {
            Ok(()) => Outcome::Done,
            Err(_) => Outcome::NotWritten,
        }),
        Some(Sub::Schedule(a)) => {
            let plan = Mode(Some("schedule")).prepare(&a.log, TICKS, || {
                let (place, lease) = place_and_lease(&a.target, &a.lease, &a.replicas)?;
                let program = Program::from_args(&a.command)?.for_place(&place);
                Ok(schedule::SchedulePlan {
                    place,
                    lease,
                    program,
                    when: schedule::When::from_args(&a)?,
                    connect_timeout: a.connect.connect_timeout,
                })
            })?;
            guarded(schedule::schedule(plan)).map(Outcome::Schedule)
        }
        Some(Sub::Status(a)) => {
            let place =
                Mode(Some("status")).prepare(&a.log, ERRORS, || Place::from_args(&a.target))?;
            let held = block_on(async { Ok(admin::status(&place, a.json).await) })?;
            Ok(Outcome::Status(held?))
        }
        Some(Sub::Doctor(a)) => {
            let place =
                Mode(Some("doctor")).prepare(&a.log, ERRORS, || Place::from_args(&a.target))?;
            let code_of = |d| outcome::exit_code(&Ok(Outcome::Doctor(d)), exit::CONFLICT);
            block_on(async { Ok(doctor::doctor(&place, a.json, code_of).await) })
                .map(Outcome::Doctor)
        }
        Some(Sub::List(a)) => {
            let endpoints = Mode(Some("list")).prepare(&a.log, ERRORS, || {
                if a.pattern.is_empty() {
                    return Err(Failure::Usage(
                        "the pattern must not be empty (* lists every lock)".into(),
                    ));
                }
                config::servers(&a.redis, a.redis_file.as_deref())
            })?;
            let max = a.max as usize;
            block_on(async { Ok(admin::list(&endpoints, &a.pattern, max, a.json).await) })??;
            Ok(Outcome::Done)
        }
        Some(Sub::Release(a)) => {
            let mode = Mode(Some("release"));
            let place = mode.prepare(&a.log, ERRORS, || Place::from_args(&a.target))?;
            let released = block_on(async {
                Ok(if a.forget {
                    admin::forget(&place).await
                } else {
                    admin::release(&place, a.force).await
                })
            })?;
            match released {
                Ok(()) => Ok(Outcome::Done),
                Err(f @ Failure::Usage(_)) => Err(mode.usage_error(f)),
                Err(f) => Err(f.into()),
            }
        }
        None => {
            let a = cli.run;
            let plan = RUN.prepare(&a.log, ERRORS, || {
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
            })?;
            guarded(run::run(plan)).map(Outcome::Run)
        }
    }
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
