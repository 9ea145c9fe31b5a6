//! The exit-code table, the typed failures that choose a code, and the
//! mapping from a child's wait status to ours.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Bad usage: refused before anything touched Redis.
pub(crate) const USAGE: u8 = 2;
/// `status`: the key is free.
pub(crate) const FREE: u8 = 1;
/// `doctor`: a check failed; `completions`: the script could not be written.
pub(crate) const FAILED: u8 = 1;
/// Redis unreachable, auth refused, or no quorum possible (EX_UNAVAILABLE).
pub const UNAVAILABLE: u8 = 69;
/// The lock was lost while the command ran (EX_SOFTWARE).
pub const LOST: u8 = 70;
/// An internal error (EX_SOFTWARE, as a lost lock: after the command's
/// group was stopped, if it ran).
pub(crate) const INTERNAL: u8 = 70;
/// Default `--conflict-exit-code`: the lock stayed held by someone else (EX_TEMPFAIL).
pub const CONFLICT: u8 = 75;
/// The command exists but cannot be executed.
pub(crate) const NOT_EXECUTABLE: u8 = 126;
/// The command was not found.
pub(crate) const NOT_FOUND: u8 = 127;
/// Added to a signal number when the command died of that signal.
pub(crate) const SIGNAL_BASE: i32 = 128;

/// Shown at the end of `--help`; the README carries the same table (a test
/// in tests/it/cli.rs compares them).
pub(crate) const HELP_TABLE: &str = "\
Exit status:
  <n>      the command's own exit code
  128+N    the command was killed by signal N, or signal N ended the wait or
           stopped the run (SIGALRM, SIGXCPU, ...)
  75       the lock stayed held by someone else for all of --timeout (-E changes it)
  69       Redis unreachable, auth refused, no quorum of masters reachable, or
           Redis refused writes (OOM, MISCONF, READONLY, ...) for all of --timeout
  70       the lock was lost while the command ran; the command was stopped
           (also an internal error: the command's group is stopped first)
  126/127  the command cannot be executed / was not found
  2        bad usage (also: KEY is in use with another --limit)

Environment given to the command:
  REDLOCK_KEY, REDLOCK_TOKEN (this holder's value in Redis),
  REDLOCK_FENCING_TOKEN (strictly increases with every acquisition of KEY),
  REDLOCK_TICK (schedule only: the tick's scheduled time, RFC 3339 UTC),
  REDLOCK_REDIS_FILE (with --redis-file: its path; REDLOCK_REDIS is not passed on)";

/// The rows of [`HELP_TABLE`]'s exit-code table: (code, what it means),
/// a row's continuation lines joined. The man page is built from them, and
/// a test holds the README's table to them.
pub fn help_rows() -> Vec<(&'static str, String)> {
    let table = HELP_TABLE
        .split_once("Exit status:\n")
        .map_or("", |(_, t)| t);
    let mut rows: Vec<(&'static str, String)> = Vec::new();
    for line in table.lines().take_while(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        match rows.last_mut() {
            // A continuation is indented past the code column.
            Some((_, text)) if line.starts_with("   ") => {
                for w in words {
                    text.push(' ');
                    text.push_str(w);
                }
            }
            _ => {
                let code = words.next().unwrap_or_default();
                rows.push((code, words.collect::<Vec<_>>().join(" ")));
            }
        }
    }
    rows
}

/// Failures that decide the exit code. The entry finds them in an
/// `anyhow::Error` chain with `downcast_ref` (`outcome::exit_code`).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("lock {key:?} is held by {holder}")]
    Conflict { key: String, holder: String },
    /// Redis could not be used; an auth refusal in the text is named
    /// first, with what to do ([`advised`]).
    #[error("{}", advised(.0))]
    Unavailable(String),
    #[error("lock lost: {0}")]
    Lost(String),
    /// The command could not be started: 127 if it was not found, else 126.
    #[error("cannot execute {program:?}: {reason}")]
    Spawn {
        program: String,
        reason: String,
        not_found: bool,
    },
    #[error("{0}")]
    Usage(String),
    /// The key is in use (held or waited for) for something that needs it
    /// idle: the conflict code, 75 by default.
    #[error("{0}")]
    InUse(String),
    #[error("interrupted by {name} while waiting for the lock; nothing was run")]
    Interrupted { name: String, signo: i32 },
    /// Something failed inside redlock-run itself (a system call, the
    /// runtime); if the command was running, its group was stopped first.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Failure {
    /// Instances disagree on `--limit` for `key`: ours is `asked`, its
    /// holders or waiters use `stored` (0: some N above 1).
    pub(crate) fn limit_mismatch(key: &str, asked: u32, stored: u64) -> Failure {
        let theirs = match stored {
            0 => "a --limit above 1".to_string(),
            n => format!("--limit {n}"),
        };
        Failure::Usage(format!(
            "lock {key:?} is in use with {theirs} but this instance has --limit {asked}: \
             every instance using a key must give the same --limit"
        ))
    }

    /// `release` of `key` without `--force` (a usage error).
    pub(crate) fn unforced(key: &str) -> Failure {
        Failure::Usage(format!(
            "refusing to release {key:?} without --force: this deletes the lock whoever holds it \
             (every holder of a --limit lock)"
        ))
    }

    /// `release --forget` of a key in use: `why` is "held by ..." or
    /// "waited for".
    pub(crate) fn not_forgetting(key: &str, why: &str) -> Failure {
        Failure::InUse(format!(
            "lock {key:?} is {why}: not forgetting a key in use; stop what uses it (or \
             release --force it) first"
        ))
    }

    /// The exit code for this failure; `conflict` is `--conflict-exit-code`.
    /// Only the entry asks (`outcome::exit_code`).
    pub(crate) fn code(&self, conflict: u8) -> i32 {
        match self {
            Failure::Conflict { .. } | Failure::InUse(_) => conflict.into(),
            Failure::Unavailable(_) => UNAVAILABLE.into(),
            Failure::Lost(_) => LOST.into(),
            Failure::Spawn { not_found, .. } => {
                if *not_found {
                    NOT_FOUND.into()
                } else {
                    NOT_EXECUTABLE.into()
                }
            }
            Failure::Usage(_) => USAGE.into(),
            Failure::Interrupted { signo, .. } => SIGNAL_BASE + signo,
            Failure::Internal(_) => INTERNAL.into(),
        }
    }
}

/// A failure its mode has already shown (logged in its own words, or
/// printed as a usage error the way clap prints one): the entry picks its
/// code and says nothing more.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Reported(#[source] pub Failure);

/// A refusal no retry can fix: the server wants a password, refused the
/// one given, or its ACL denies a command or key. The wording users read
/// for each lives here, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthRefusal {
    PasswordNeeded,
    PasswordRefused,
    Denied,
}

impl AuthRefusal {
    /// Recognise one in an error's text: a server's reply as redis-rs
    /// renders it (`NOAUTH`, `WRONGPASS`, `NOPERM`, or Redis's
    /// `Protocol error: unauthenticated multibulk length`, its answer to an
    /// unauthenticated client's long request), alone or inside a pipeline's.
    pub(crate) fn find(text: &str) -> Option<Self> {
        let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
        if has(&[
            "NOAUTH",
            "unauthenticated multibulk",
            "unauthenticated bulk",
        ]) {
            Some(AuthRefusal::PasswordNeeded)
        } else if has(&[
            "WRONGPASS",
            "invalid username-password",
            "Password authentication failed",
        ]) {
            Some(AuthRefusal::PasswordRefused)
        } else if has(&[
            "NOPERM",
            "NoPerm",
            "no permissions",
            "can't run this",
            // Our own words for a denial we found (e.g. list's SCAN).
            "this user may not run",
        ]) {
            Some(AuthRefusal::Denied)
        } else {
            None
        }
    }

    /// What is wrong and what to do, for the start of an error's first line.
    pub(crate) fn what_to_do(self) -> &'static str {
        match self {
            AuthRefusal::PasswordNeeded => {
                "Redis requires a password: add it to the URL (redis://:PASSWORD@HOST:PORT) \
                 or use --redis-file"
            }
            AuthRefusal::PasswordRefused => {
                "Redis refused the user name or password: check the ones in the URL (or in \
                 --redis-file)"
            }
            AuthRefusal::Denied => {
                "the Redis user lacks a permission redlock-run needs (ACL): grant it with ACL \
                 SETUSER (`redlock-run doctor` lists what is missing)"
            }
        }
    }
}

/// `text` (an error about Redis), led by what to do when an auth refusal
/// is its cause: `<what to do>; <text>`.
pub(crate) fn advised(text: &str) -> String {
    match AuthRefusal::find(text) {
        Some(r) => format!("{}; {text}", r.what_to_do()),
        None => text.to_string(),
    }
}

/// The usage slips of a first day, and what to say about each (the
/// clap errors they cause are replaced by these: `lib.rs`, `print_clap`).
pub(crate) const NOT_NEGATIVE: &str = "durations are not negative";

/// A command given without `--` before it.
pub(crate) fn put_dashes(arg: &str) -> String {
    format!(
        "unexpected argument '{arg}': put `--` before the command and its arguments \
         (redlock-run [OPTIONS] --key <KEY> -- {arg} ...)"
    )
}

/// An option given before the subcommand `sub`.
pub(crate) fn options_after(sub: &str) -> String {
    format!("options go after the subcommand: redlock-run {sub} [OPTIONS] ...")
}

/// A negative value given to an option whose value is a `value_name`
/// (a DURATION, or a number N).
pub(crate) fn negative(arg: &str, option: &str, value_name: &str) -> String {
    let why = match value_name {
        "DURATION" => NOT_NEGATIVE.to_string(),
        other => format!("{other} is never negative"),
    };
    format!("invalid value '{arg}' for '{option} <{value_name}>': {why}")
}

/// Our exit code for a child that ended with `status`: its own code, or
/// 128+N for death by signal N (never 0 for a signal death).
pub(crate) fn from_status(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => SIGNAL_BASE + sig,
        // Stopped/continued are not terminal states and never reach here.
        (None, None) => LOST.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_death_is_128_plus_n() {
        assert_eq!(from_status(ExitStatus::from_raw(9)), 137);
        assert_eq!(from_status(ExitStatus::from_raw(3 << 8)), 3);
    }

    #[test]
    fn help_rows_cover_every_code() {
        let rows = help_rows();
        let codes: Vec<&str> = rows.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, ["<n>", "128+N", "75", "69", "70", "126/127", "2"]);
        assert!(
            rows[3].1.ends_with("READONLY, ...) for all of --timeout"),
            "{rows:?}"
        );
    }

    #[test]
    fn auth_refusals_lead_the_message() {
        let e = Failure::Unavailable(
            "cannot take lock \"k\": redis://h:1: ResponseError: Protocol error: \
             unauthenticated multibulk length"
                .into(),
        );
        assert!(
            e.to_string()
                .starts_with("Redis requires a password: add it to the URL"),
            "{e}"
        );
        assert_eq!(e.code(75), 69);
        for (text, want) in [
            (
                "Pipeline failure: [(Index 0, error: \"NOAUTH\": Authentication required.)]",
                Some(AuthRefusal::PasswordNeeded),
            ),
            (
                "WRONGPASS invalid username-password pair or user is disabled.",
                Some(AuthRefusal::PasswordRefused),
            ),
            (
                "NoPerm: this user has no permissions to run the 'evalsha' command",
                Some(AuthRefusal::Denied),
            ),
            ("Connection refused (os error 111)", None),
        ] {
            assert_eq!(AuthRefusal::find(text), want, "{text}");
        }
        assert_eq!(advised("timed out"), "timed out");
    }
}
