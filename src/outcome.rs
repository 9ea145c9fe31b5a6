//! How a mode ended, as types. Modes return these; the entry (`lib.rs`)
//! turns them into the exit code, with the table in `exit`.

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use crate::exit::{self, Failure};
use crate::signals::Caught;

/// Whether redlock-run was asked to stop while the command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
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
pub enum RunEnd {
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
    pub fn from_parts(
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
    pub fn lost_at_release(self, why: String) -> RunEnd {
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
    pub fn failure(&self) -> Option<Failure> {
        match self {
            RunEnd::Internal { why, .. } => Some(Failure::Internal(why.clone())),
            RunEnd::Lost { why, .. } => Some(Failure::Lost(why.clone())),
            RunEnd::Signalled { .. } | RunEnd::Exited { .. } => None,
        }
    }

    /// The run's exit code: the failure's, 128+N for a signal that stopped
    /// the run, else the command's own.
    pub fn code(&self) -> i32 {
        match self {
            RunEnd::Internal { .. } => exit::INTERNAL.into(),
            RunEnd::Lost { .. } => exit::LOST.into(),
            RunEnd::Signalled { by, .. } => exit::SIGNAL_BASE + by.signo(),
            RunEnd::Exited { status, .. } => exit::from_status(*status),
        }
    }

    /// The command's own wait status, if it was seen.
    pub fn status(&self) -> Option<ExitStatus> {
        match self {
            RunEnd::Internal { status, .. } | RunEnd::Lost { status, .. } => *status,
            RunEnd::Signalled { status, .. } | RunEnd::Exited { status, .. } => Some(*status),
        }
    }

    /// The command's own exit code (128+N for its death by signal N), if
    /// its status was seen.
    pub fn command_code(&self) -> Option<i32> {
        self.status().map(exit::from_status)
    }

    /// Whether the lock was lost while it ran (whatever else happened).
    pub fn lock_lost(&self) -> bool {
        matches!(
            self,
            RunEnd::Lost { .. } | RunEnd::Internal { lost: true, .. }
        )
    }

    /// Whether we were asked to stop while it ran.
    pub fn asked(&self) -> Asked {
        match self {
            RunEnd::Internal { asked, .. }
            | RunEnd::Lost { asked, .. }
            | RunEnd::Exited { asked, .. } => *asked,
            RunEnd::Signalled { by, .. } => Asked::Stop(*by),
        }
    }

    /// The run history's word for it: `lost`, `signalled` (ended by a
    /// signal, whoever sent it), `ok` (exit 0) or `failed`.
    pub fn history_kind(&self) -> &'static str {
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
