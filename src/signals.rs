//! The signals redlock-run catches: every catchable signal whose default
//! action would end the process. While waiting, any of them ends the
//! wait; while the command runs, the six of [`FORWARDED`] go to its
//! process group, and every other one is handled like an outside request
//! to stop ([`Caught::stops`]): the command is stopped (SIGTERM, the
//! grace, SIGKILL), the lock released, the run recorded `signalled`, and
//! redlock-run exits 128+N, as the signal's default action would have
//! ended it, but with nothing left behind.
//!
//! Not caught: SIGKILL and SIGSTOP (they cannot be; the guardian cleans up
//! after a SIGKILL); the synchronous faults SIGSEGV, SIGBUS, SIGFPE, SIGILL
//! and SIGSYS (a handler that returns would run the faulting instruction
//! again, or go on past a system call the kernel refused); SIGPIPE (the
//! Rust runtime ignores it: a closed pipe is an EPIPE error); the
//! job-control stops and the signals ignored by default.
//!
//! The handlers write the signal's number, one byte, to a pipe that the
//! runtime reads ([`Signals`]): one stream, in arrival order, for every
//! signal, the real-time ones included (tokio's own streams stop short of
//! SIGRTMAX).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Forwarded to the command's group (the spec's list).
pub(crate) const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The standard signals that would end redlock-run, are not forwarded,
/// and can be handled: they stop the run (with the real-time signals,
/// [`stopping`]).
const STOPPING: [Signal; 10] = [
    Signal::SIGALRM,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGTRAP,
    Signal::SIGABRT,
    Signal::SIGIO,
    Signal::SIGPWR,
    Signal::SIGSTKFLT,
];

/// Every signal that stops a run: [`STOPPING`] and SIGRTMIN..=SIGRTMAX
/// (as the C library counts them: it keeps the first few for itself).
pub(crate) fn stopping() -> impl Iterator<Item = i32> {
    STOPPING
        .into_iter()
        .map(|s| s as i32)
        .chain(nix::libc::SIGRTMIN()..=nix::libc::SIGRTMAX())
}

/// Every signal redlock-run catches (and the guardian ignores).
pub(crate) fn caught() -> impl Iterator<Item = i32> {
    FORWARDED.into_iter().map(|s| s as i32).chain(stopping())
}

/// A signal redlock-run received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caught(pub i32);

impl Caught {
    pub(crate) fn signo(self) -> i32 {
        self.0
    }

    /// The signal to pass on to the command, if it is one of [`FORWARDED`].
    pub(crate) fn forwarded(self) -> Option<Signal> {
        FORWARDED.into_iter().find(|s| *s as i32 == self.0)
    }

    /// SIGINT or SIGTERM: forwarded, and a second one kills the command.
    pub(crate) fn is_interrupt(self) -> bool {
        self.0 == Signal::SIGINT as i32 || self.0 == Signal::SIGTERM as i32
    }

    /// Not forwarded: stops the command and ends the run (exit 128+N).
    pub(crate) fn stops(self) -> bool {
        self.forwarded().is_none()
    }
}

/// `SIGALRM`, `SIGRTMIN+3`, `SIGRTMAX-1`, as `kill -l` names them.
impl fmt::Display for Caught {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = (nix::libc::SIGRTMIN(), nix::libc::SIGRTMAX());
        match Signal::try_from(self.0) {
            Ok(s) => f.write_str(s.as_str()),
            Err(_) if self.0 == min => f.write_str("SIGRTMIN"),
            Err(_) if self.0 == max => f.write_str("SIGRTMAX"),
            Err(_) if (min..=(min + max) / 2).contains(&self.0) => {
                write!(f, "SIGRTMIN+{}", self.0 - min)
            }
            Err(_) if (min..max).contains(&self.0) => write!(f, "SIGRTMAX-{}", max - self.0),
            Err(_) => write!(f, "signal {}", self.0),
        }
    }
}

/// The stream of [`caught`] signals received by this process, in order.
/// Installing it replaces their default action (death) for the rest of
/// the process's life.
pub(crate) struct Signals {
    rx: AsyncFd<OwnedFd>,
    /// The pipe's write end, which the handlers write to.
    _tx: OwnedFd,
    ids: Vec<signal_hook_registry::SigId>,
    pending: VecDeque<Caught>,
}

impl Signals {
    pub(crate) fn install() -> io::Result<Self> {
        let (rx, tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let fd = tx.as_raw_fd();
        let mut ids = Vec::new();
        for signo in caught() {
            let byte = signo as u8;
            // SAFETY: the action only calls write(2) (async-signal-safe;
            // the registry saves and restores errno around it) on a
            // non-blocking pipe that outlives the registration: `Drop`
            // unregisters before the pipe is closed. A full pipe drops the
            // byte, and then the reader has bytes to read anyway.
            let id = unsafe {
                signal_hook_registry::register(signo, move || {
                    let _ = nix::libc::write(fd, (&raw const byte).cast(), 1);
                })
            }?;
            ids.push(id);
        }
        // SAFETY: an OwnedFd names the same open descriptor for as long as
        // it lives, and the AsyncFd owns it.
        let rx = unsafe { AsyncFd::register_with_interest(rx, Interest::READABLE) }?;
        Ok(Signals {
            rx,
            _tx: tx,
            ids,
            pending: VecDeque::new(),
        })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}

impl Stream for Signals {
    type Item = Caught;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Caught>> {
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Poll::Ready(Some(c));
            }
            let mut guard = match self.rx.poll_read_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            let mut buf = [0u8; 64];
            match guard
                .try_io(|fd| nix::unistd::read(fd.get_ref(), &mut buf).map_err(io::Error::from))
            {
                Ok(Ok(0)) => return Poll::Ready(None),
                Ok(Ok(n)) => {
                    let got: Vec<Caught> = buf[..n].iter().map(|b| Caught(i32::from(*b))).collect();
                    self.pending.extend(got);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(_)) => return Poll::Ready(None),
                // Not readable after all: readiness was cleared, poll again.
                Err(_would_block) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kill_l() {
        let min = nix::libc::SIGRTMIN();
        let max = nix::libc::SIGRTMAX();
        assert_eq!(Caught(Signal::SIGALRM as i32).to_string(), "SIGALRM");
        assert_eq!(Caught(min).to_string(), "SIGRTMIN");
        assert_eq!(Caught(min + 3).to_string(), "SIGRTMIN+3");
        assert_eq!(Caught(max - 1).to_string(), "SIGRTMAX-1");
        assert_eq!(Caught(max).to_string(), "SIGRTMAX");
    }

    /// The faults stay fatal; the forwarded and stopping sets are apart.
    #[test]
    fn faults_are_not_caught_and_the_sets_do_not_overlap() {
        let all: Vec<i32> = caught().collect();
        for s in [
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGFPE,
            Signal::SIGILL,
            Signal::SIGSYS,
            Signal::SIGKILL,
            Signal::SIGSTOP,
            Signal::SIGPIPE,
        ] {
            assert!(!all.contains(&(s as i32)), "{s}");
        }
        let mut dedup = all.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), all.len());
        assert!(stopping().all(|s| Caught(s).stops()));
        assert!(FORWARDED.iter().all(|s| !Caught(*s as i32).stops()));
    }
}
