//! How a mode ended, as types, and the one choice of an exit code. Modes
//! return an [`Outcome`] or a failure (`exit::Failure`, found in an
//! `anyhow::Error`'s chain); the entry (`lib.rs`) hands that to
//! [`exit_code`], the only place a code is picked (with the table in
//! `exit`). No module below the entry uses the table: a test here says so.

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use crate::exit::{self, Failure};
use crate::signals::Caught;

/// How a mode that did not fail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Run mode: the command was started under the lock.
    Run(RunEnd),
    Schedule(ScheduleEnd),
    Status(StatusEnd),
    Doctor(DoctorEnd),
    /// `completions`: the script could not be written to stdout.
    NotWritten,
    /// Done: help or version shown, `list`, `release`, `completions`.
    Done,
}

/// How a schedule ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScheduleEnd {
    /// A signal stopped it (`None`: SIGINT or SIGTERM while the command
    /// ran, or the stream of signals ended): 0 for
    /// SIGINT and SIGTERM, the way to stop it; 128+N for a signal that
    /// would have ended the process (SIGALRM, ...).
    Stopped(Option<Caught>),
    /// The cron expression has no future time (only a clock far in the
    /// future gets here: it was checked before starting): bad usage.
    NoFutureTick,
}

/// What `status` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusEnd {
    /// Held (with `--limit`: by at least one holder): 0.
    Held,
    /// Free: 1.
    Free,
}

/// What `doctor` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DoctorEnd {
    /// Nothing failed: 0.
    Clean,
    /// A check failed: 1.
    Failed,
    /// No server could be reached: 69.
    Unreachable,
}

impl Outcome {
    fn code(&self) -> i32 {
        match self {
            Outcome::Run(end) => end.code(),
            Outcome::Schedule(ScheduleEnd::Stopped(Some(sig))) if sig.stops() => {
                exit::SIGNAL_BASE + sig.signo()
            }
            Outcome::Schedule(ScheduleEnd::Stopped(_)) => 0,
            Outcome::Schedule(ScheduleEnd::NoFutureTick) => exit::USAGE.into(),
            Outcome::Status(StatusEnd::Held) => 0,
            Outcome::Status(StatusEnd::Free) => exit::FREE.into(),
            Outcome::Doctor(DoctorEnd::Clean) => 0,
            Outcome::Doctor(DoctorEnd::Failed) => exit::FAILED.into(),
            Outcome::Doctor(DoctorEnd::Unreachable) => exit::UNAVAILABLE.into(),
            Outcome::NotWritten => exit::FAILED.into(),
            Outcome::Done => 0,
        }
    }
}

/// The one choice of an exit code: the outcome's, or the code of the typed
/// failure in the error's chain (`conflict` is `--conflict-exit-code`);
/// any other error is an internal one (70), never a bare 1.
pub(crate) fn exit_code(ended: &anyhow::Result<Outcome>, conflict: u8) -> i32 {
    match ended {
        Ok(outcome) => outcome.code(),
        Err(err) => err
            .chain()
            .find_map(|c| c.downcast_ref::<Failure>())
            .map_or(exit::INTERNAL.into(), |f| f.code(conflict)),
    }
}

/// Whether redlock-run was asked to stop while the command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    Nothing,
    /// SIGINT or SIGTERM, forwarded to the command.
    Interrupt,
    /// A signal that is not forwarded but stops the run (SIGALRM,
    /// SIGXCPU, ...): the first one that came.
    Stop(Caught),
}

/// How a run whose command was started ended. The variants are in order
/// of precedence: the first that applies decides the exit code
/// ([`RunEnd::from_parts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunEnd {
    /// An internal error while the command ran (its group was stopped
    /// first): exit 70. `lost`: the lock was lost too; else the run
    /// history's word comes from `asked` and `status` (the command's own,
    /// if it was seen).
    Internal {
        why: String,
        lost: bool,
        status: Option<ExitStatus>,
        asked: Asked,
    },
    /// The lock was lost while the command ran: exit 70. `status`: the
    /// command's own, if seen (logged beside it by schedule).
    Lost {
        why: String,
        status: Option<ExitStatus>,
        asked: Asked,
    },
    /// A signal that stops the run ended it: exit 128+N, whatever the
    /// command's own status; recorded `signalled`.
    Signalled { by: Caught, status: ExitStatus },
    /// The command's own status decides (`asked` is `Nothing` or
    /// `Interrupt`: a stopping signal makes it [`RunEnd::Signalled`]).
    Exited { status: ExitStatus, asked: Asked },
}

impl RunEnd {
    /// The end of a run, from what supervising it saw: an internal error,
    /// then a lost lock, then a signal that stopped the run, then the
    /// command's own status (never seen without an internal error).
    pub(crate) fn from_parts(
        internal: Option<String>,
        lost: Option<String>,
        asked: Asked,
        status: Option<ExitStatus>,
    ) -> RunEnd {
        if let Some(why) = internal {
            let lost = lost.is_some();
            return RunEnd::Internal {
                why,
                lost,
                status,
                asked,
            };
        }
        if let Some(why) = lost {
            return RunEnd::Lost { why, status, asked };
        }
        match (asked, status) {
            (Asked::Stop(by), Some(status)) => RunEnd::Signalled { by, status },
            (asked, Some(status)) => RunEnd::Exited { status, asked },
            (asked, None) => RunEnd::Internal {
                why: "the command's exit status was not seen".into(),
                lost: false,
                status: None,
                asked,
            },
        }
    }

    /// The same end, with the lock found lost at the release (it was not
    /// ours to the end): a run that was not lost or failed becomes lost.
    pub(crate) fn lost_at_release(self, why: String) -> RunEnd {
        match self {
            RunEnd::Exited { status, asked } => RunEnd::Lost {
                why,
                status: Some(status),
                asked,
            },
            RunEnd::Signalled { by, status } => RunEnd::Lost {
                why,
                status: Some(status),
                asked: Asked::Stop(by),
            },
            end => end,
        }
    }

    /// The failure that overrides the command's status, if there is one.
    pub(crate) fn failure(&self) -> Option<Failure> {
        match self {
            RunEnd::Internal { why, .. } => Some(Failure::Internal(why.clone())),
            RunEnd::Lost { why, .. } => Some(Failure::Lost(why.clone())),
            RunEnd::Signalled { .. } | RunEnd::Exited { .. } => None,
        }
    }

    /// The run's exit code: the failure's, 128+N for a signal that stopped
    /// the run, else the command's own.
    pub(crate) fn code(&self) -> i32 {
        match self {
            RunEnd::Internal { .. } => exit::INTERNAL.into(),
            RunEnd::Lost { .. } => exit::LOST.into(),
            RunEnd::Signalled { by, .. } => exit::SIGNAL_BASE + by.signo(),
            RunEnd::Exited { status, .. } => exit::from_status(*status),
        }
    }

    /// The command's own wait status, if it was seen.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        match self {
            RunEnd::Internal { status, .. } | RunEnd::Lost { status, .. } => *status,
            RunEnd::Signalled { status, .. } | RunEnd::Exited { status, .. } => Some(*status),
        }
    }

    /// The command's own exit code (128+N for its death by signal N), if
    /// its status was seen.
    pub(crate) fn command_code(&self) -> Option<i32> {
        self.status().map(exit::from_status)
    }

    /// Whether the lock was lost while it ran (whatever else happened).
    pub(crate) fn lock_lost(&self) -> bool {
        matches!(
            self,
            RunEnd::Lost { .. } | RunEnd::Internal { lost: true, .. }
        )
    }

    /// Whether we were asked to stop while it ran.
    pub(crate) fn asked(&self) -> Asked {
        match self {
            RunEnd::Internal { asked, .. }
            | RunEnd::Lost { asked, .. }
            | RunEnd::Exited { asked, .. } => *asked,
            RunEnd::Signalled { by, .. } => Asked::Stop(*by),
        }
    }

    /// The run history's word for it: `lost`, `signalled` (ended by a
    /// signal, whoever sent it), `ok` (exit 0) or `failed`.
    pub(crate) fn history_kind(&self) -> &'static str {
        match self {
            RunEnd::Lost { .. } | RunEnd::Internal { lost: true, .. } => "lost",
            RunEnd::Signalled { .. }
            | RunEnd::Internal {
                asked: Asked::Stop(_),
                ..
            } => "signalled",
            RunEnd::Internal { status, .. } => status.map_or("failed", by_status),
            RunEnd::Exited { status, .. } => by_status(*status),
        }
    }
}

fn by_status(st: ExitStatus) -> &'static str {
    if st.signal().is_some() {
        "signalled"
    } else if st.code() == Some(0) {
        "ok"
    } else {
        "failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_documented_codes() {
        let e = anyhow::Error::new(Failure::Lost("gone".into())).context("supervising");
        assert_eq!(exit_code(&Err(e), 75), 70);
        let e = anyhow::anyhow!("timerfd_settime: ENOMEM");
        assert_eq!(
            exit_code(&Err(e), 75),
            70,
            "an internal error is never a bare 1"
        );
        let c = Failure::Conflict {
            key: "k".into(),
            holder: "x".into(),
        };
        assert_eq!(exit_code(&Err(c.into()), 9), 9);
        let shown = exit::Reported(Failure::Unavailable("down".into()));
        assert_eq!(exit_code(&Err(shown.into()), 75), 69);
        let spawn = |not_found| Failure::Spawn {
            program: "x".into(),
            reason: "r".into(),
            not_found,
        };
        assert_eq!((spawn(true).code(75), spawn(false).code(75)), (127, 126));
    }

    #[test]
    fn every_mode_outcome_has_its_documented_code() {
        let code = |o: Outcome| exit_code(&Ok(o), 75);
        let ok = RunEnd::from_parts(None, None, Asked::Nothing, exited(3));
        assert_eq!(code(Outcome::Run(ok)), 3);
        assert_eq!(code(Outcome::Status(StatusEnd::Held)), 0);
        assert_eq!(code(Outcome::Status(StatusEnd::Free)), 1);
        assert_eq!(code(Outcome::Doctor(DoctorEnd::Clean)), 0);
        assert_eq!(code(Outcome::Doctor(DoctorEnd::Failed)), 1);
        assert_eq!(code(Outcome::Doctor(DoctorEnd::Unreachable)), 69);
        let stopped = |s| code(Outcome::Schedule(ScheduleEnd::Stopped(s)));
        assert_eq!(stopped(None), 0);
        assert_eq!(
            stopped(Some(Caught(15))),
            0,
            "SIGTERM is the way to stop it"
        );
        assert_eq!(stopped(Some(Caught(14))), 142);
        assert_eq!(code(Outcome::Schedule(ScheduleEnd::NoFutureTick)), 2);
        assert_eq!((code(Outcome::Done), code(Outcome::NotWritten)), (0, 1));
    }

    /// clap's code for a refused command line is the table's: the entry
    /// maps a usage failure, not clap, to the code.
    #[test]
    fn clap_refusals_are_the_usage_code() {
        use clap::CommandFactory as _;
        let err = crate::cli::Cli::command()
            .try_get_matches_from(["redlock-run", "--no-such-option"])
            .unwrap_err();
        assert!(err.use_stderr());
        assert_eq!(err.exit_code(), i32::from(exit::USAGE));
    }

    /// The names of the exit-code table (and the child-status mapping)
    /// that `text` uses through a path (`exit::LOST`,
    /// `use crate::exit::{self, LOST}`).
    fn table_uses(text: &str) -> Vec<String> {
        const TABLE: [&str; 12] = [
            "USAGE",
            "FREE",
            "FAILED",
            "UNAVAILABLE",
            "LOST",
            "INTERNAL",
            "CONFLICT",
            "NOT_EXECUTABLE",
            "NOT_FOUND",
            "SIGNAL_BASE",
            "from_status",
            "*",
        ];
        let mut found = Vec::new();
        for (at, _) in text.match_indices("exit::") {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &text[at + "exit::".len()..];
            let names = match rest.strip_prefix('{') {
                Some(list) => &list[..list.find('}').unwrap_or(list.len())],
                None => {
                    let end = rest
                        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '*'))
                        .unwrap_or(rest.len());
                    &rest[..end]
                }
            };
            found.extend(
                names
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|n| TABLE.contains(n))
                    .map(String::from),
            );
        }
        found
    }

    /// Only the entry picks an exit code: no module below it uses the
    /// table or ends the process.
    #[test]
    fn no_module_below_the_entry_picks_an_exit_code() {
        // The entry: main and lib (dispatch), this file (the one mapping),
        // the table itself, and cli (which shows -E's default, 75).
        const ENTRY: [&str; 5] = ["main.rs", "lib.rs", "outcome.rs", "exit.rs", "cli.rs"];
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut dirs = vec![src.clone()];
        let mut checked = 0;
        let mut offences = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let name = path
                    .strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let text = std::fs::read_to_string(&path).unwrap();
                let mut uses = table_uses(&text);
                if name != "main.rs" && text.contains("process::exit") {
                    uses.push("process::exit".into());
                }
                if ENTRY.contains(&name.as_str()) {
                    continue;
                }
                checked += 1;
                if !uses.is_empty() {
                    offences.push(format!("{name}: {}", uses.join(", ")));
                }
            }
        }
        assert!(checked >= 30, "only {checked} files below the entry found");
        assert!(
            offences.is_empty(),
            "exit codes picked below the entry: {offences:?}"
        );
        // The scan sees what it looks for.
        let this = include_str!("outcome.rs");
        assert!(table_uses(this).contains(&"SIGNAL_BASE".to_string()));
        assert_eq!(
            table_uses("use crate::exit::{self, Failure, LOST};\nlet c = exit::NOT_FOUND;"),
            ["LOST", "NOT_FOUND"]
        );
    }

    fn exited(code: i32) -> Option<ExitStatus> {
        Some(ExitStatus::from_raw(code << 8))
    }

    #[test]
    fn precedence_internal_then_lost_then_signal_then_status() {
        let alrm = Caught(14);
        let all = RunEnd::from_parts(
            Some("timer".into()),
            Some("gone".into()),
            Asked::Stop(alrm),
            exited(0),
        );
        assert_eq!((all.code(), all.history_kind()), (70, "lost"));
        assert!(matches!(all.failure(), Some(Failure::Internal(_))));
        let internal = RunEnd::from_parts(Some("timer".into()), None, Asked::Stop(alrm), exited(0));
        assert_eq!(internal.history_kind(), "signalled");
        let internal = RunEnd::from_parts(Some("timer".into()), None, Asked::Nothing, exited(0));
        assert_eq!((internal.code(), internal.history_kind()), (70, "ok"));
        let lost = RunEnd::from_parts(None, Some("gone".into()), Asked::Stop(alrm), exited(3));
        assert_eq!((lost.code(), lost.history_kind()), (70, "lost"));
        assert_eq!(
            (lost.command_code(), lost.asked()),
            (Some(3), Asked::Stop(alrm))
        );
        let sig = RunEnd::from_parts(None, None, Asked::Stop(alrm), exited(0));
        assert_eq!((sig.code(), sig.history_kind()), (142, "signalled"));
        let own = RunEnd::from_parts(None, None, Asked::Interrupt, exited(3));
        assert_eq!((own.code(), own.history_kind()), (3, "failed"));
        assert_eq!(own.asked(), Asked::Interrupt);
        let unseen = RunEnd::from_parts(None, None, Asked::Nothing, None);
        assert_eq!((unseen.code(), unseen.history_kind()), (70, "failed"));
    }

    #[test]
    fn a_lock_lost_at_release_keeps_what_was_seen() {
        let end = RunEnd::from_parts(None, None, Asked::Stop(Caught(14)), exited(0));
        let lost = end.lost_at_release("taken".into());
        assert_eq!(lost.code(), 70);
        assert_eq!(lost.command_code(), Some(0));
        assert_eq!(lost.asked(), Asked::Stop(Caught(14)));
        let killed = RunEnd::from_parts(None, None, Asked::Nothing, Some(ExitStatus::from_raw(9)));
        assert_eq!((killed.code(), killed.history_kind()), (137, "signalled"));
    }
}
