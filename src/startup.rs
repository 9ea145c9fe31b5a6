//! What std's own start-up would do for us, done here because the binary
//! enters through a C `main` (see `src/main.rs`), minus the main thread's
//! stack-guard lookup that made std's start-up slow.

use std::fs::File;
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
            eprintln!("redlock-run: warning: /dev/null as a standard descriptor: {e}");
        }
        // Kept open for the life of the process, as that descriptor.
        let _ = f.into_raw_fd();
    }
    // SAFETY: SIG_IGN installs no handler code, so nothing can run in
    // signal context; this runs on the only thread, before any other.
    if let Err(e) = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) } {
        eprintln!("redlock-run: warning: could not ignore SIGPIPE: {e}");
    }
}
