//! redlock-run: run a command under a distributed lock held in Redis.
//! This file only lists the modules and dispatches the subcommands.

pub mod admin;
pub mod child;
pub mod cli;
pub mod clock;
pub mod completions;
pub mod config;
pub mod exit;
pub mod guardian;
pub mod lock;
pub mod logging;
pub mod run;
pub mod schedule;
pub mod signals;
pub mod startup;
pub mod supervise;
pub mod urls;

use clap::CommandFactory;
use clap::error::ErrorKind;

use cli::{Cli, Sub};
use config::{Lease, Place, Program};
use exit::Failure;

/// Refuse bad input the way clap does: one line saying what is wrong, a
/// usage hint, exit 2. Nothing has touched Redis yet.
/// `sub` names the subcommand whose usage to show.
fn usage_error(sub: Option<&str>, f: Failure) -> ! {
    let mut top = Cli::command();
    let mut cmd = match sub.and_then(|name| top.find_subcommand_mut(name)) {
        Some(s) => s.clone().bin_name(format!("redlock-run {}", s.get_name())),
        None => top,
    };
    let code = print_clap(&cmd.error(ErrorKind::ValueValidation, f.to_string()));
    std::process::exit(code)
}

/// Print what clap has to say (an error, or --help/--version) as clap
/// would: errors on stderr, help on stdout, in colour only where clap
/// would use it; but with every URL's password hidden, since clap quotes
/// arguments whole (`unexpected argument 'redis://:pw@h'`). Returns
/// clap's exit code (2 for bad usage, 0 for help).
pub fn print_clap(err: &clap::Error) -> i32 {
    use std::io::Write;
    let mut text = err.render().ansi().to_string();
    // Whole arguments first: a URL with a blank in it is one argument but
    // two words for `redact_text`.
    for arg in std::env::args_os().skip(1) {
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
    err.exit_code()
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

/// Parse, validate, run; returns the exit code.
pub fn main(cli: Cli) -> i32 {
    match cli.subcommand {
        Some(Sub::Completions { shell }) => completions::print(shell),
        Some(Sub::Schedule(a)) => {
            let plan = (|| {
                Ok::<_, Failure>(schedule::SchedulePlan {
                    place: Place::from_args(&a.target)?,
                    lease: Lease::new(&a.lease, a.replicas.wait_replicas)?,
                    program: Program::from_args(&a.command)?,
                    when: schedule::When::from_args(&a)?,
                })
            })()
            .unwrap_or_else(|f| usage_error(Some("schedule"), f));
            logging::init(&a.log, logging::Default::Info, true)
                .unwrap_or_else(|f| usage_error(Some("schedule"), f));
            let result = guardian::check()
                .map_err(anyhow::Error::from)
                .and_then(|()| block_on(schedule::schedule(plan)));
            if let Err(e) = &result {
                tracing::error!("{e:#}");
            }
            exit::code(&result, exit::CONFLICT)
        }
        Some(Sub::Status(a)) => {
            let place =
                Place::from_args(&a.target).unwrap_or_else(|f| usage_error(Some("status"), f));
            logging::init(&a.log, logging::Default::Errors, false)
                .unwrap_or_else(|f| usage_error(Some("status"), f));
            let result = block_on(async { Ok(admin::status(&place, a.json).await) });
            if let Err(e) = &result {
                tracing::error!("{e:#}");
            }
            exit::code(&result, exit::CONFLICT)
        }
        Some(Sub::Release(a)) => {
            let place =
                Place::from_args(&a.target).unwrap_or_else(|f| usage_error(Some("release"), f));
            logging::init(&a.log, logging::Default::Errors, false)
                .unwrap_or_else(|f| usage_error(Some("release"), f));
            let result = block_on(async { Ok(admin::release(&place, a.force).await) });
            match result {
                Ok(Ok(code)) => code,
                Ok(Err(f @ Failure::Usage(_))) => usage_error(Some("release"), f),
                Ok(Err(f)) => {
                    tracing::error!("{f}");
                    f.code(exit::CONFLICT)
                }
                Err(e) => {
                    tracing::error!("{e:#}");
                    exit::code(&Err(e), exit::CONFLICT)
                }
            }
        }
        None => {
            let a = cli.run;
            let plan = (|| {
                Ok::<_, Failure>(run::RunPlan {
                    place: Place::from_args(&a.target)?,
                    lease: Lease::new(&a.lease, a.replicas.wait_replicas)?,
                    program: Program::from_args(&a.command)?,
                    timeout: a.timeout,
                    conflict_exit_code: a.conflict_exit_code,
                })
            })()
            .unwrap_or_else(|f| usage_error(None, f));
            logging::init(&a.log, logging::Default::Errors, false)
                .unwrap_or_else(|f| usage_error(None, f));
            let conflict = plan.conflict_exit_code;
            let quiet_conflict = plan.timeout == cli::Timeout::After(std::time::Duration::ZERO);
            let result = guardian::check()
                .map_err(anyhow::Error::from)
                .and_then(|()| block_on(run::run(plan)));
            if let Err(e) = &result {
                report(e, quiet_conflict);
            }
            exit::code(&result, conflict)
        }
    }
}

/// One line for a failure. A busy lock with the default `--timeout 0s` is
/// the normal cron case ("another host runs it"): info, not an error.
fn report(e: &anyhow::Error, quiet_conflict: bool) {
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
