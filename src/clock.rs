//! The lease clock: CLOCK_BOOTTIME, which keeps counting while the machine
//! is suspended (CLOCK_MONOTONIC, behind `std::time::Instant` and tokio's
//! timers, does not). A lease measured on it can only look shorter than it
//! is in Redis, never longer: after a suspend, the deadline has already
//! passed and the command is stopped at once.

use std::io;
use std::ops::{Add, Sub};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{
    ClockId as TimerClock, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags,
};
use nix::time::{ClockId, clock_gettime};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A point on CLOCK_BOOTTIME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BootInstant(Duration);

impl BootInstant {
    pub(crate) fn now() -> Self {
        let ts =
            clock_gettime(ClockId::CLOCK_BOOTTIME).expect("CLOCK_BOOTTIME is always available");
        BootInstant(Duration::from(ts))
    }

    /// Time from now until `self`, zero if it has passed.
    pub(crate) fn remaining(self) -> Duration {
        self.0.saturating_sub(Self::now().0)
    }

    pub(crate) fn elapsed(self) -> Duration {
        Self::now().0.saturating_sub(self.0)
    }

    /// Nanoseconds since boot (for the page shared with the guardian).
    pub(crate) fn as_nanos(self) -> u64 {
        self.0.as_nanos().min(u128::from(u64::MAX)) as u64
    }

    pub(crate) fn saturating_sub(self, d: Duration) -> Self {
        BootInstant(self.0.saturating_sub(d))
    }
}

impl Add<Duration> for BootInstant {
    type Output = BootInstant;
    fn add(self, d: Duration) -> BootInstant {
        BootInstant(self.0 + d)
    }
}

impl Sub<BootInstant> for BootInstant {
    type Output = Duration;
    fn sub(self, other: BootInstant) -> Duration {
        self.0.saturating_sub(other.0)
    }
}

/// A timerfd, owned, exposing its raw fd to tokio's reactor.
struct Tfd(TimerFd);

impl AsRawFd for Tfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A one-shot alarm at an absolute BootInstant, awaitable from tokio.
pub(crate) struct BootTimer {
    fd: AsyncFd<Tfd>,
    armed: bool,
}

impl BootTimer {
    pub(crate) fn new() -> io::Result<Self> {
        let tfd = TimerFd::new(
            TimerClock::CLOCK_BOOTTIME,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: `Tfd` owns the timerfd, which stays open and unchanged
        // until the AsyncFd (its only owner) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(Tfd(tfd), Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(BootTimer { fd, armed: false })
    }

    /// Fire at `at` (at once if it has passed).
    pub(crate) fn set(&mut self, at: BootInstant) -> io::Result<()> {
        // A zero it_value disarms a timerfd; clamp to 1ns past the epoch.
        let at = at.0.max(Duration::from_nanos(1));
        self.fd.get_ref().0.set(
            Expiration::OneShot(TimeSpec::from(at)),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME,
        )?;
        self.armed = true;
        Ok(())
    }

    /// Resolves when the alarm fires; pends forever while disarmed.
    /// Cancel-safe: dropping the future leaves the alarm armed.
    pub(crate) async fn fired(&mut self) -> io::Result<()> {
        if !self.armed {
            return std::future::pending().await;
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            match nix::unistd::read(guard.get_inner().0.as_fd(), &mut buf) {
                Ok(_) => {
                    self.armed = false;
                    return Ok(());
                }
                Err(nix::errno::Errno::EAGAIN) => guard.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn timer_fires_at_deadline_and_past_deadlines_fire_at_once() {
        let mut t = BootTimer::new().unwrap();
        let start = BootInstant::now();
        t.set(start + Duration::from_millis(30)).unwrap();
        t.fired().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(30));

        t.set(start).unwrap();
        tokio::time::timeout(Duration::from_secs(1), t.fired())
            .await
            .expect("a past deadline fires at once")
            .unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_timer_never_set_never_fires() {
        let mut t = BootTimer::new().unwrap();
        let r = tokio::time::timeout(Duration::from_millis(50), t.fired()).await;
        assert!(r.is_err());
    }
}
