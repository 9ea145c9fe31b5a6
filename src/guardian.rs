//! The guardian: a small forked process that enforces the command's
//! deadline independently of redlock-run, and kills the command's whole
//! process group if redlock-run dies without cleaning up (SIGKILL, abort,
//! the OOM killer).
//!
//! Why a second process: redlock-run itself can stall at the worst moment
//! (SIGSTOP, a blocked write to a terminal or a full pipe, starvation).
//! A stalled redlock-run renews nothing and kills nothing, so without the
//! guardian its command would run on after the lease expired in Redis and
//! another host took the lock. And `PR_SET_PDEATHSIG` kills only the
//! command itself: processes it started (a shell script's children) are
//! re-parented and would run on unlocked.
//!
//! How: redlock-run and the guardian share one page (MAP_SHARED, set up
//! before the fork). It holds the command's process group while it may be
//! alive ("armed"; the command stores its own pid there before it execs,
//! so no instant of its life is uncovered) and the moment the group must
//! be SIGKILLed unless the lease was renewed (`kill_at`, CLOCK_BOOTTIME).
//! A renewal only stores a later `kill_at`: no system call, no wake-up.
//! The guardian sleeps on a CLOCK_BOOTTIME timer until the `kill_at` it
//! last read; when it wakes and the stored `kill_at` has not moved past
//! now, it SIGKILLs the group and notes that it did (`fired`), so that
//! redlock-run reports the run as lost. A new `kill_at` before a command
//! starts comes with one byte on a pipe, which wakes it to set its timer.
//! When the pipe reports end-of-file, redlock-run is gone, however it
//! ended; an armed guardian then SIGKILLs the group, and exits. A disarmed
//! group (confirmed empty; its id may be reused) is never signalled.
//!
//! The guardian runs in a process group of its own and ignores the signals
//! a terminal or a supervisor sends to a whole group, so that it outlives
//! redlock-run in exactly the cases it is for; it points its standard
//! descriptors at /dev/null and closes every other descriptor it
//! inherited, so that it never holds the caller's pipes open.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
use nix::sys::signal::{Signal, killpg};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{
    ClockId as TimerClock, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags,
};
use nix::unistd::{
    ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe2, read, setpgid,
};

use crate::clock::BootInstant;

/// The page shared with the guardian.
#[repr(C)]
struct Shared {
    /// The command's process group while it may be alive, else 0.
    pgid: AtomicI32,
    /// The group the guardian SIGKILLed at its deadline, else 0.
    fired: AtomicI32,
    /// When to SIGKILL the armed group unless this moves later: ns on
    /// CLOCK_BOOTTIME.
    kill_at: AtomicU64,
}

/// redlock-run's side of a started guardian.
struct Guardian {
    /// The pipe's write end (non-blocking): held open until we die; a byte
    /// written wakes the guardian to read a new deadline.
    tx: OwnedFd,
    shared: &'static Shared,
}

static GUARDIAN: OnceLock<Guardian> = OnceLock::new();

/// Signals the guardian must survive to do its job: the ones a terminal
/// or a supervisor sends to a process group, and every other one that
/// redlock-run catches (`pkill -ALRM redlock-run` reaches the guardian
/// too, whose command line is redlock-run's): all that would end it, and
/// the terminal's job-control stops.
fn ignored() -> impl Iterator<Item = i32> {
    crate::signals::caught().chain([
        Signal::SIGTSTP as i32,
        Signal::SIGTTIN as i32,
        Signal::SIGTTOU as i32,
    ])
}

/// Fork the guardian, once; a second call returns the first one's result
/// (a failure is final: the run ends, it does not fork again later). The
/// entry calls it before parsing a command line that may run a command,
/// where the fork is cheapest, and the modes that run one call it again
/// before anything else. Without a guardian nothing would enforce the
/// deadline while redlock-run is stalled, so a failure to start one is an
/// internal error and nothing is run (exit 70).
pub(crate) fn start() -> Result<(), crate::exit::Failure> {
    static STARTED: OnceLock<Result<(), nix::Error>> = OnceLock::new();
    STARTED.get_or_init(try_start).map_err(|e| {
        crate::exit::Failure::Internal(format!(
            "could not start the guardian ({e}): without it a stalled redlock-run could let \
             the command outlive its lease, so nothing was run"
        ))
    })
}

fn try_start() -> nix::Result<()> {
    let page = NonZeroUsize::new(4096).expect("non-zero");
    // SAFETY: a fresh anonymous mapping, placed by the kernel (no address
    // given), so it aliases nothing; it is zero-filled and never unmapped.
    let mapped = unsafe {
        mmap_anonymous(
            None,
            page,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
    }?;
    // SAFETY: the page is aligned and zeroed (a valid `Shared` of zeros:
    // atomics only) and lives for the rest of the process, in both
    // processes (MAP_SHARED survives fork, and nothing unmaps it): a
    // 'static shared reference to it is sound.
    let shared: &'static Shared = unsafe { mapped.cast::<Shared>().as_ref() };
    // Close-on-exec: the command must not inherit the write end, or the
    // pipe would stay open after our death and the guardian never wake.
    let (rx, tx) = pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: the child branch below calls only async-signal-safe
    // functions (setpgid, signal, open, dup2, close, poll, read,
    // timerfd_*, clock_gettime, kill, _exit) and atomic loads, on data
    // that is on its stack or was set up before the fork, so the fork is
    // sound whatever other threads exist.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(tx);
            guard(rx, shared)
        }
        ForkResult::Parent { .. } => {
            drop(rx);
            // Never block on a wake-up byte: a full pipe already wakes it.
            let _ = fcntl(&tx, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
            let _ = GUARDIAN.set(Guardian { tx, shared });
            Ok(())
        }
    }
}

/// Nanoseconds on CLOCK_BOOTTIME (the lease clock).
fn boot_ns() -> u64 {
    BootInstant::now().as_nanos()
}

/// Close every descriptor from `from` up (the caller's, inherited).
fn close_from(from: i32) {
    // SAFETY: close_range(2) takes plain integers and only closes
    // descriptors, none of which this process uses from here on.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            from as nix::libc::c_uint,
            nix::libc::c_uint::MAX,
            0 as nix::libc::c_uint,
        )
    };
    if r != 0 {
        // Kernels before 5.9: close them one by one.
        for fd in from..4096 {
            // SAFETY: as above, closing a descriptor number, used or not.
            unsafe { nix::libc::close(fd) };
        }
    }
}

/// The guardian's whole life. Never returns. (After the fork: only
/// async-signal-safe calls, no allocation.)
fn guard(rx: OwnedFd, shared: &Shared) -> ! {
    let rx = detach(rx);
    // A CLOCK_BOOTTIME timer keeps counting through a suspend. Without
    // one, poll's own timeout (which does not) is the fallback.
    let timer = TimerFd::new(TimerClock::CLOCK_BOOTTIME, TimerFlags::TFD_CLOEXEC).ok();
    watch(&rx, timer.as_ref(), shared);
    // redlock-run has exited, so its last store is visible here.
    let pgid = shared.pgid.load(Ordering::Acquire);
    if pgid > 0 {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    // SAFETY: _exit ends the process at once, without running atexit
    // handlers or flushing stdio that belong to redlock-run.
    unsafe { nix::libc::_exit(0) }
}

/// Set the guardian apart from redlock-run: a process group of its own,
/// the group-wide signals ignored, the standard descriptors on /dev/null,
/// the pipe's read end (returned) at descriptor 3 and every other
/// inherited descriptor closed.
fn detach(rx: OwnedFd) -> OwnedFd {
    // A group of its own: a SIGKILL sent to redlock-run's whole group (as
    // timeout(1) does) must not take the guardian with it.
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    for sig in ignored() {
        // SAFETY: SIG_IGN installs no handler code; signal(2) on a plain
        // number (the real-time ones have no `Signal`).
        unsafe { nix::libc::signal(sig, nix::libc::SIG_IGN) };
    }
    if let Ok(null) = open(c"/dev/null", OFlag::O_RDWR, Mode::empty()) {
        let _ = dup2_stdin(&null);
        let _ = dup2_stdout(&null);
        let _ = dup2_stderr(&null);
    }
    // The pipe becomes descriptor 3; everything above it is closed.
    // SAFETY: dup2(2) on plain descriptor numbers; if it succeeds,
    // descriptor 3 is a copy of the pipe that nothing else owns.
    let rx = if rx.as_raw_fd() != 3 && unsafe { nix::libc::dup2(rx.as_raw_fd(), 3) } == 3 {
        drop(rx);
        // SAFETY: see above: 3 is open and owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(3) }
    } else {
        rx
    };
    close_from(rx.as_raw_fd() + 1);
    rx
}

/// Enforce the deadline the shared page holds, until the pipe reports
/// end-of-file (redlock-run is gone).
fn watch(rx: &OwnedFd, timer: Option<&TimerFd>, shared: &Shared) {
    let mut killed = 0;
    loop {
        // Act on what the page says now.
        let pgid = shared.pgid.load(Ordering::Acquire);
        let kill_at = shared.kill_at.load(Ordering::Acquire);
        let now = boot_ns();
        if pgid == 0 {
            killed = 0;
        }
        if pgid > 0 && pgid != killed && now >= kill_at {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            shared.fired.store(pgid, Ordering::Release);
            killed = pgid;
        }
        // Sleep until the deadline (if one is ahead), or a wake-up byte,
        // or end-of-file.
        let ahead = kill_at > now && (pgid == 0 || pgid != killed);
        let mut timeout = PollTimeout::NONE;
        if ahead {
            let set = timer.map(|t| {
                t.set(
                    Expiration::OneShot(TimeSpec::from(Duration::from_nanos(kill_at))),
                    TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                )
            });
            if !matches!(set, Some(Ok(()))) {
                let ms = (kill_at - now).div_ceil(1_000_000).min(i32::MAX as u64) as i32;
                timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            }
        } else if let Some(t) = timer {
            let _ = t.unset();
        }
        if !sleep(rx, timer, timeout) {
            return;
        }
    }
}

/// Wait for a wake-up byte on the pipe, the timer, or `timeout`; false
/// when the pipe reports end-of-file.
fn sleep(rx: &OwnedFd, timer: Option<&TimerFd>, timeout: PollTimeout) -> bool {
    // (No allocation in this process: without a timer, the pipe twice.)
    let second = timer.map_or(rx.as_fd(), |t| t.as_fd());
    let mut fds = [
        PollFd::new(rx.as_fd(), PollFlags::POLLIN),
        PollFd::new(second, PollFlags::POLLIN),
    ];
    match poll(&mut fds, timeout) {
        Ok(_) | Err(Errno::EINTR) => {}
        // Cannot wait: look again shortly rather than spin or give up.
        Err(_) => std::thread::sleep(Duration::from_millis(1)),
    }
    let rx_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
    if let Some(t) = timer {
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            let mut buf = [0u8; 8];
            let _ = read(t.as_fd(), &mut buf);
        }
    }
    if rx_ready {
        let mut buf = [0u8; 64];
        if let Ok(0) = read(rx.as_fd(), &mut buf) {
            return false;
        }
    }
    true
}

/// A command is about to start: SIGKILL its group at `kill_at` unless
/// [`extend`] moves that later. Wakes the guardian to set its timer. An
/// error means the guardian is gone (it was killed): then the command
/// must not start.
pub(crate) fn prepare(kill_at: BootInstant) -> Result<(), Errno> {
    let Some(g) = GUARDIAN.get() else {
        return Err(Errno::ESRCH);
    };
    g.shared.fired.store(0, Ordering::Release);
    g.shared
        .kill_at
        .store(kill_at.as_nanos(), Ordering::Release);
    match nix::unistd::write(&g.tx, &[1]) {
        // A full pipe already has a wake-up in it.
        Ok(_) | Err(Errno::EAGAIN) => Ok(()),
        Err(e) => Err(e),
    }
}

/// In the command's process, between fork and exec (async-signal-safe: an
/// atomic store, clock_gettime, write): the group it is about to lead is
/// armed, and the guardian woken to look at it, before it runs any code of
/// its own. Refuses (ETIMEDOUT) if the deadline has passed already
/// (redlock-run stalled between taking the lock and starting it): the
/// command must not start without its lease.
pub(crate) fn arm_self() -> Result<(), Errno> {
    let Some(g) = GUARDIAN.get() else {
        return Err(Errno::ESRCH);
    };
    g.shared
        .pgid
        .store(nix::unistd::getpid().as_raw(), Ordering::Release);
    let _ = nix::unistd::write(&g.tx, &[1]);
    if boot_ns() >= g.shared.kill_at.load(Ordering::Acquire) {
        return Err(Errno::ETIMEDOUT);
    }
    Ok(())
}

/// The command's process group `pgid` now exists: kill it if we die.
pub(crate) fn arm(pgid: Pid) {
    if let Some(g) = GUARDIAN.get() {
        g.shared.pgid.store(pgid.as_raw(), Ordering::Release);
    }
}

/// The lease was renewed: the deadline moves to `kill_at`.
pub(crate) fn extend(kill_at: BootInstant) {
    if let Some(g) = GUARDIAN.get() {
        g.shared
            .kill_at
            .store(kill_at.as_nanos(), Ordering::Release);
    }
}

/// Whether the guardian SIGKILLed the group `pgid` at its deadline.
pub(crate) fn fired(pgid: Pid) -> bool {
    GUARDIAN
        .get()
        .is_some_and(|g| g.shared.fired.load(Ordering::Acquire) == pgid.as_raw())
}

/// The command's group is confirmed empty: never signal it again.
pub(crate) fn disarm() {
    if let Some(g) = GUARDIAN.get() {
        g.shared.pgid.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};

    use super::*;

    /// A page as `try_start` maps it: nothing armed.
    fn page() -> Shared {
        Shared {
            pgid: AtomicI32::new(0),
            fired: AtomicI32::new(0),
            kill_at: AtomicU64::new(0),
        }
    }

    /// A process group of our own to guard: `sleep 60`, its leader.
    fn group() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn timer() -> Option<TimerFd> {
        TimerFd::new(TimerClock::CLOCK_BOOTTIME, TimerFlags::TFD_CLOEXEC).ok()
    }

    #[test]
    fn a_wake_up_byte_wakes_it_and_end_of_file_ends_it() {
        let (rx, tx) = pipe2(OFlag::O_CLOEXEC).unwrap();
        nix::unistd::write(&tx, &[1]).unwrap();
        assert!(sleep(&rx, None, PollTimeout::NONE), "a wake-up byte");
        drop(tx);
        assert!(!sleep(&rx, None, PollTimeout::NONE), "end-of-file");
    }

    #[test]
    fn the_armed_group_is_killed_at_its_deadline_and_that_is_noted() {
        let mut child = group();
        let pgid = child.id() as i32;
        let shared = page();
        shared.pgid.store(pgid, Ordering::Release);
        shared
            .kill_at
            .store(boot_ns() + 20_000_000, Ordering::Release);
        let (rx, tx) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let status = std::thread::scope(|s| {
            s.spawn(|| watch(&rx, timer().as_ref(), &shared));
            let status = child.wait().unwrap();
            // redlock-run "exits": the watch ends.
            drop(tx);
            status
        });
        assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
        assert_eq!(shared.fired.load(Ordering::Acquire), pgid);
    }

    #[test]
    fn a_deadline_ahead_or_a_disarmed_group_is_left_alone() {
        let mut child = group();
        let pgid = child.id() as i32;
        let hour_ahead = boot_ns() + 3_600_000_000_000;
        // The page holds still while it watches: armed with a deadline an
        // hour ahead; then disarmed, with a deadline long past.
        for (armed, kill_at) in [(pgid, hour_ahead), (0, 0)] {
            let shared = page();
            shared.pgid.store(armed, Ordering::Release);
            shared.kill_at.store(kill_at, Ordering::Release);
            let (rx, tx) = pipe2(OFlag::O_CLOEXEC).unwrap();
            drop(tx);
            watch(&rx, timer().as_ref(), &shared);
            assert_eq!(shared.fired.load(Ordering::Acquire), 0, "{armed} {kill_at}");
        }
        assert_eq!(child.try_wait().unwrap(), None, "the group was signalled");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
