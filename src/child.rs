//! The command: spawned in its own process group with PR_SET_PDEATHSIG, so
//! that it dies with redlock-run, signalled as a group, and reaped as a
//! group (redlock-run is a child subreaper, so the command's orphaned
//! descendants are re-parented to it and their exit can be observed). The
//! guardian (`guardian.rs`) is armed with the group while it may be alive,
//! so that it is killed even if redlock-run is.
//!
//! When redlock-run runs in the terminal's foreground, the command's group
//! is made the foreground group (as a shell does for a job), so that an
//! interactive command can read the terminal instead of being stopped by
//! SIGTTIN; the terminal is handed back before the lock is released.

use std::io;
use std::os::unix::process::CommandExt as _;
use std::process::ExitStatus;

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, killpg, pthread_sigmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpgrp, getpid, getppid, isatty, tcgetpgrp, tcsetpgrp};

use crate::config::Program;
use crate::exit::Failure;
use crate::guardian;

pub(crate) struct Child {
    inner: tokio::process::Child,
    pgid: Pid,
    leader_reaped: bool,
    /// The command's group was given the terminal's foreground.
    took_terminal: bool,
}

/// Whether we are the terminal's foreground job (stdin is that terminal).
fn in_terminal_foreground() -> bool {
    let stdin = std::io::stdin();
    isatty(&stdin).unwrap_or(false) && tcgetpgrp(&stdin).is_ok_and(|pg| pg == getpgrp())
}

/// tcsetpgrp with SIGTTOU blocked: a background group may only take the
/// terminal when it neither receives nor lets through SIGTTOU.
fn set_foreground(pgrp: Pid) -> nix::Result<()> {
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), Some(&mut old))?;
    let r = tcsetpgrp(std::io::stdin(), pgrp);
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None)?;
    r
}

/// Make orphaned descendants of our command our children, so that the
/// group can be reaped and its emptiness observed even where PID 1 does
/// not reap (containers).
pub(crate) fn become_subreaper() {
    if let Err(e) = prctl::set_child_subreaper(true) {
        tracing::debug!(error = %e, "PR_SET_CHILD_SUBREAPER failed");
    }
}

/// Start `program` with `env` added, in a new process group.
pub(crate) fn spawn(program: &Program, env: &[(&str, &str)]) -> Result<Child, Failure> {
    let mut cmd = tokio::process::Command::new(&program.argv[0]);
    cmd.args(&program.argv[1..]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(file) = &program.redis_file {
        // The servers came from a file: the command is told where it is
        // (for a redlock-run inside it), never the URLs or their passwords.
        cmd.env_remove("REDLOCK_REDIS");
        cmd.env("REDLOCK_REDIS_FILE", file);
    }
    cmd.process_group(0);
    let parent = getpid();
    let take_terminal = in_terminal_foreground();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: an atomic store in the page
    // shared with the guardian, getpid(2), prctl(2), getppid(2),
    // sigprocmask(2), tcsetpgrp(3) and signal(2) are plain syscalls on
    // stack data, and errors become an io::Error from a raw errno without
    // allocating. std has already called setpgid(0, 0) at this point.
    unsafe {
        cmd.as_std_mut().pre_exec(move || {
            let errno = |e: Errno| io::Error::from_raw_os_error(e as i32);
            // Covered by the guardian before any code of the command runs,
            // and never started past its deadline.
            guardian::arm_self().map_err(errno)?;
            prctl::set_pdeathsig(Signal::SIGKILL).map_err(errno)?;
            // We may have died between fork and prctl: then nobody would
            // kill the command, and it must not run unlocked.
            if getppid() != parent {
                return Err(errno(Errno::ESRCH));
            }
            // redlock-run ignores the terminal's job-control stops; the
            // command gets the default dispositions back.
            for sig in [Signal::SIGTTOU, Signal::SIGTTIN] {
                nix::sys::signal::signal(sig, SigHandler::SigDfl).map_err(errno)?;
            }
            if take_terminal {
                set_foreground(getpid()).map_err(errno)?;
                // Ctrl-Z would stop the job behind redlock-run's back, with
                // the terminal still its own: ignore it, like a supervisor.
                nix::sys::signal::signal(Signal::SIGTSTP, SigHandler::SigIgn).map_err(errno)?;
            }
            Ok(())
        });
    }
    let inner = cmd.spawn().map_err(|e| {
        // The child armed the guardian with its pid before failing.
        guardian::disarm();
        if e.raw_os_error() == Some(Errno::ETIMEDOUT as i32) {
            return Failure::Lost(
                "the lease ran out before the command could start (was redlock-run stalled?); \
                 it was not run"
                    .into(),
            );
        }
        Failure::Spawn {
            program: program.argv[0].to_string_lossy().into_owned(),
            reason: e.to_string(),
            not_found: e.kind() == io::ErrorKind::NotFound,
        }
    })?;
    let pid = inner.id().expect("a just-spawned child has a pid") as i32;
    guardian::arm(Pid::from_raw(pid));
    Ok(Child {
        inner,
        pgid: Pid::from_raw(pid),
        leader_reaped: false,
        took_terminal: take_terminal,
    })
}

impl Child {
    pub(crate) fn pid(&self) -> i32 {
        self.pgid.as_raw()
    }

    /// Send `sig` to the whole process group. A gone group is not an
    /// error; any other failure (EPERM: a setuid program in the group) is
    /// returned, and means the command could not be stopped as asked.
    pub(crate) fn signal_group(&self, sig: Signal) -> Result<(), Errno> {
        match killpg(self.pgid, sig) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn pgid(&self) -> Pid {
        self.pgid
    }

    /// Wait for the group leader (the command itself). Cancel-safe.
    /// After an error the leader counts as gone: the group's drain reaps
    /// it with the rest.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        let st = self.inner.wait().await;
        self.leader_reaped = true;
        st
    }

    /// Take the terminal's foreground back, if the command had it.
    pub(crate) fn restore_terminal(&mut self) {
        if std::mem::take(&mut self.took_terminal) {
            if let Err(e) = set_foreground(getpgrp()) {
                tracing::debug!(error = %e, "could not take the terminal back");
            }
        }
    }

    /// After the leader exited: reap any of the group's processes that were
    /// re-parented to us, then tell whether any member is still alive.
    pub(crate) fn group_alive(&self) -> bool {
        debug_assert!(
            self.leader_reaped,
            "reaping the group would steal the leader's status"
        );
        loop {
            match waitpid(
                Pid::from_raw(-self.pgid.as_raw()),
                Some(WaitPidFlag::WNOHANG),
            ) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let alive = !matches!(killpg(self.pgid, None), Err(Errno::ESRCH));
        if !alive {
            // From now on the group's id may be reused: never signal it.
            guardian::disarm();
        }
        alive
    }
}
