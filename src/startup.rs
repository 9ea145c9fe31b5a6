//! What std's own start-up would do for us, done here because the binary
//! enters through a C `main` (see `src/main.rs`), minus the main thread's
//! stack-guard lookup that made std's start-up slow.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsRawFd as _, IntoRawFd as _};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::{SigHandler, Signal, signal};

/// Make the process safe to run before anything else happens:
///
/// - Standard descriptors that were closed by whoever started us are
///   opened on `/dev/null`, so that the first socket we open (to Redis)
///   can never become "stderr" and receive our log lines.
/// - SIGPIPE is ignored, so a write to a closed pipe or socket is an error
///   we handle, never a silent death with the lock held. The command does
///   not inherit this: std resets SIGPIPE to its default in the child.
/// - SIGTTOU and SIGTTIN are ignored (see below).
pub fn prepare_process() {
    // An open returns the lowest free descriptor: while it is 0, 1 or 2,
    // that standard descriptor was closed and now points at /dev/null.
    // std opens with O_CLOEXEC; a standard descriptor must survive exec,
    // so that the command inherits it too.
    while let Ok(f) = File::options().read(true).write(true).open("/dev/null") {
        if f.as_raw_fd() > 2 {
            break;
        }
        if let Err(e) = fcntl(&f, FcntlArg::F_SETFD(FdFlag::empty())) {
            let _ = writeln!(
                std::io::stderr(),
                "redlock-run: warning: /dev/null as a standard descriptor: {e}"
            );
        }
        // Kept open for the life of the process, as that descriptor.
        let _ = f.into_raw_fd();
    }
    // SIGTTOU/SIGTTIN: once the command's group has the terminal, a log
    // line from us to a `stty tostop` terminal would stop redlock-run, and
    // a stopped redlock-run stops nothing. Ignored, the write goes through.
    // The command gets the default dispositions back (child.rs).
    for sig in [Signal::SIGPIPE, Signal::SIGTTOU, Signal::SIGTTIN] {
        // SAFETY: SIG_IGN installs no handler code, so nothing can run in
        // signal context; this runs on the only thread, before any other.
        if let Err(e) = unsafe { signal(sig, SigHandler::SigIgn) } {
            let _ = writeln!(
                std::io::stderr(),
                "redlock-run: warning: could not ignore {sig}: {e}"
            );
        }
    }
}
