//! A refused command line, said the way clap says it: what is wrong in one
//! line, the mode's usage, no password shown; and the usage slips of a
//! first day answered with what to do.

use std::ffi::OsString;

use clap::CommandFactory;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::cli::{self, Cli};
use crate::exit::{self, Failure, Reported};
use crate::urls;

/// Which usage a refused command line is shown: run mode's, or a
/// subcommand's (by its name).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UsageOf(Option<&'static str>);

impl UsageOf {
    /// Run mode's usage.
    pub(crate) const RUN: UsageOf = UsageOf(None);

    /// The usage of the subcommand `name`.
    pub(crate) fn sub(name: &'static str) -> UsageOf {
        UsageOf(Some(name))
    }

    /// Refuse bad input the way clap does: one line saying what is wrong,
    /// this mode's usage (exit 2). Nothing has touched Redis yet. `args`:
    /// the command line, whose passwords are hidden in what is shown.
    pub(crate) fn refuse(self, f: Failure, args: &[OsString]) -> Reported {
        let _ = print_clap(self.error(ErrorKind::ValueValidation, f.to_string()), args);
        Reported(f)
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
    fn named(name: &str) -> Option<UsageOf> {
        cli::RUN_NOTHING
            .iter()
            .chain(cli::RUN_A_COMMAND)
            .find(|s| **s == name && name != "help")
            .map(|s| UsageOf(Some(s)))
    }
}

/// Print what clap has to say (an error, or --help/--version) as clap
/// would: errors on stderr, help on stdout, in colour only where clap
/// would use it; but with every URL's password hidden, since clap quotes
/// arguments whole (`unexpected argument 'redis://:pw@h'`), and with one
/// tip at most. `args`: the command line (`args[0]` is the program's
/// name). Ok: help or the version was shown; Err: a usage error was.
pub(crate) fn print_clap(mut err: clap::Error, args: &[OsString]) -> Result<(), Reported> {
    use std::io::Write;
    if let Some(e) = first_day_slip(&err, args) {
        err = e;
    }
    one_tip(&mut err);
    let mut text = err.render().ansi().to_string();
    // Whole arguments first: a URL with a blank in it is one argument but
    // two words for `redact_text`.
    for arg in args.iter().skip(1) {
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
        Err(Reported(Failure::Usage(text)))
    } else {
        Ok(())
    }
}

/// clap's answer to a usage slip of the first day, replaced by one that
/// says what to do (the wording is in `exit`): a command without `--`
/// before it, an option before the subcommand, a negative duration
/// (clap takes `-1` for an option, and its tip, `-- -1`, would fail too).
fn first_day_slip(err: &clap::Error, args: &[OsString]) -> Option<clap::Error> {
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
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
        .find_map(|a| a.to_str().and_then(UsageOf::named))
        .unwrap_or(UsageOf::RUN);
    if let Some(sub) = UsageOf::named(arg).filter(|_| mode.0.is_none()) {
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
