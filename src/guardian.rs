//! The guardian: a small forked process that kills the command's whole
//! process group if redlock-run dies without cleaning up (SIGKILL, abort,
//! the OOM killer).
//!
//! `PR_SET_PDEATHSIG` kills only the command itself: processes it started
//! (a shell script's children) are re-parented and would run on unlocked
//! while the lease runs out. The guardian closes that gap. It is forked
//! first thing in `main`, holds the read end of a pipe whose write end
//! only redlock-run holds, and blocks on it. redlock-run writes the
//! command's process group into a page shared with it when the command
//! starts ("armed"), and clears it when the group is confirmed empty
//! ("disarmed": from then on the group's id may be reused by the system,
//! so it must never be signalled).
//! When the pipe reports end-of-file, redlock-run is gone, however it
//! ended; an armed guardian then SIGKILLs the group, and exits.
//!
//! The guardian runs in a process group of its own and ignores the signals
//! a terminal or a supervisor sends to a whole group, so that it outlives
//! redlock-run in exactly the cases it is for; and it points its standard
//! descriptors at /dev/null, so that it never holds the caller's pipes
//! open.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd as _, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
use nix::sys::signal::{SigHandler, Signal, killpg, signal};
use nix::sys::stat::Mode;
use nix::unistd::{
    ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe2, read, setpgid,
};

use crate::signals::FORWARDED;

/// redlock-run's side of a started guardian.
struct Guardian {
    /// The pipe's write end: never written, only held open until we die.
    _alive: OwnedFd,
    /// The command's process group while it may be alive, else 0: in a
    /// page shared with the guardian, so that arming and disarming cost a
    /// store, not a system call or a wake-up of the guardian.
    armed: &'static AtomicI32,
}

static GUARDIAN: OnceLock<Guardian> = OnceLock::new();

/// Why the guardian could not be started, logged once logging is set up.
static START_FAILED: OnceLock<nix::Error> = OnceLock::new();

/// Signals a terminal or a supervisor sends to a process group, which the
/// guardian must survive to do its job: the ones redlock-run forwards,
/// and the terminal's job-control stops.
fn ignored() -> impl Iterator<Item = Signal> {
    FORWARDED
        .into_iter()
        .chain([Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU])
}

/// Fork the guardian, unless the command line asks for a subcommand that
/// runs nothing. Called first thing in `main`: the fewer pages the process
/// has written when it forks, the fewer copy-on-write faults it takes
/// afterwards (measured: 0.06 ms per run less than forking after parsing).
/// A failure is reported by [`report`] and the run goes on with
/// `PR_SET_PDEATHSIG` alone.
pub fn start_unless_admin() {
    let first = std::env::args_os().nth(1);
    let admin = first.as_ref().and_then(|a| a.to_str()).is_some_and(|a| {
        matches!(
            a,
            "status" | "release" | "completions" | "help" | "-h" | "--help" | "-V" | "--version"
        )
    });
    if !admin {
        if let Err(e) = try_start() {
            let _ = START_FAILED.set(e);
        }
    }
}

/// Log a failure to start the guardian (once logging is set up).
pub fn report() {
    if let Some(e) = START_FAILED.get() {
        tracing::warn!(
            error = %e,
            "could not start the guardian; if redlock-run is killed, processes \
             the command started may outlive it"
        );
    }
}

fn try_start() -> nix::Result<()> {
    if GUARDIAN.get().is_some() {
        return Ok(());
    }
    let page = NonZeroUsize::new(4096).expect("non-zero");
    // SAFETY: a fresh anonymous mapping, placed by the kernel (no address
    // given), so it aliases nothing; it is zero-filled and never unmapped.
    let shared = unsafe {
        mmap_anonymous(
            None,
            page,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
    }?;
    // SAFETY: the page is aligned and zeroed (a valid AtomicI32 of 0) and
    // lives for the rest of the process, in both processes (MAP_SHARED
    // survives fork, and nothing unmaps it): a 'static shared reference to
    // an atomic in it is sound.
    let armed: &'static AtomicI32 = unsafe { shared.cast::<AtomicI32>().as_ref() };
    // Close-on-exec: the command must not inherit the write end, or the
    // pipe would stay open after our death and the guardian never wake.
    let (rx, tx) = pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: the child branch below calls only async-signal-safe
    // functions (setpgid, signal, open, dup2, close, read, kill, _exit) and atomic
    // loads, on data that is on its stack or was set up before the fork,
    // so the fork is sound whatever other threads exist.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(tx);
            guard(rx, armed)
        }
        ForkResult::Parent { .. } => {
            drop(rx);
            let _ = GUARDIAN.set(Guardian { _alive: tx, armed });
            Ok(())
        }
    }
}

/// The guardian's whole life. Never returns.
fn guard(rx: OwnedFd, armed: &AtomicI32) -> ! {
    // A group of its own: a SIGKILL sent to redlock-run's whole group (as
    // timeout(1) does) must not take the guardian with it.
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    for sig in ignored() {
        // SAFETY: SIG_IGN installs no handler code.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    if let Ok(null) = open(c"/dev/null", OFlag::O_RDWR, Mode::empty()) {
        let _ = dup2_stdin(&null);
        let _ = dup2_stdout(&null);
        let _ = dup2_stderr(&null);
    }
    // Nothing is ever written: the read returns at end-of-file, when the
    // last holder of the write end (redlock-run) is gone.
    let mut buf = [0u8; 1];
    while let Ok(1) | Err(Errno::EINTR) = read(rx.as_fd(), &mut buf) {}
    // redlock-run has exited, so its last store is visible here.
    let pgid = armed.load(Ordering::Acquire);
    if pgid > 0 {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    // SAFETY: _exit ends the process at once, without running atexit
    // handlers or flushing stdio that belong to redlock-run.
    unsafe { nix::libc::_exit(0) }
}

/// The command's process group `pgid` now exists: kill it if we die.
pub fn arm(pgid: Pid) {
    if let Some(g) = GUARDIAN.get() {
        g.armed.store(pgid.as_raw(), Ordering::Release);
    }
}

/// The command's group is confirmed empty: never signal it again.
pub fn disarm() {
    if let Some(g) = GUARDIAN.get() {
        g.armed.store(0, Ordering::Release);
    }
}
