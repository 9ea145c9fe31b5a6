//! The one `select!`: the command exited | a signal arrived | the lease
//! keeper reported | a lease deadline passed | the grace after SIGTERM ran
//! out. It returns once the command *and everything left in its process
//! group* are gone, so that the lock covers the whole job.

use std::process::ExitStatus;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use nix::sys::signal::Signal;
use tokio::time::Instant;

use crate::child::Child;
use crate::clock::{BootInstant, BootTimer};
use crate::config::{KILL_MARGIN, Lease};
use crate::lock::LeaseState;

/// How the supervised run ended.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    /// Why the lock was lost, if it was: the exit code is then 70.
    pub lost: Option<String>,
    /// We were asked to stop (SIGINT or SIGTERM) while the command ran.
    pub interrupted: bool,
}

/// Where the lease-driven stop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseStop {
    /// SIGTERM when the lease deadline minus --kill-after is reached.
    Armed,
    /// SIGTERM sent; SIGKILL just before the lease ends.
    Terminating {
        valid_until: BootInstant,
    },
    Done,
}

/// How often to look whether the group has emptied after the leader exited.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// Supervise `child` until its whole group is gone. `lease` is a stream of
/// lease states (the keeper's), `signals` the signals sent to us.
pub async fn supervise(
    child: &mut Child,
    lease_cfg: &Lease,
    lease: &mut tokio::sync::watch::Receiver<LeaseState>,
    signals: &mut (impl Stream<Item = Signal> + Unpin),
) -> std::io::Result<Outcome> {
    let mut timer = BootTimer::new()?;
    let mut valid_until = match &*lease.borrow() {
        LeaseState::Valid { valid_until } => *valid_until,
        LeaseState::Lost(_) => BootInstant::now(),
    };
    let term_at = |v: BootInstant| v.saturating_sub(lease_cfg.kill_after + KILL_MARGIN);
    timer.set(term_at(valid_until))?;
    let mut lease_stop = LeaseStop::Armed;

    let mut lost: Option<String> = None;
    let mut leader: Option<ExitStatus> = None;
    let mut grace_until: Option<Instant> = None;
    let mut interrupts = 0u32;
    let mut lease_open = true;
    let mut signals_open = true;

    loop {
        if leader.is_some() && !child.group_alive() {
            break;
        }
        tokio::select! {
            // The command itself exited. Whatever it left in its group is
            // stopped before the lock is released.
            st = child.wait(), if leader.is_none() => {
                let st = st?;
                tracing::debug!(status = ?st, "command exited");
                leader = Some(st);
                // Seen only after the lease ran out (we, or the whole
                // machine, were paused): it may have run unlocked.
                if lost.is_none() && lease_stop == LeaseStop::Armed && BootInstant::now() >= valid_until {
                    let why = "the lease ran out before the command's exit was seen \
                               (was redlock-run or the machine paused?)";
                    tracing::error!("{why}");
                    lost = Some(why.to_string());
                }
                if child.group_alive() && grace_until.is_none() {
                    tracing::info!("stopping processes the command left in its group");
                    child.signal_group(Signal::SIGTERM);
                    grace_until = Some(Instant::now() + lease_cfg.kill_after);
                }
            }
            // A signal for us goes to the command's group; a second
            // SIGINT/SIGTERM escalates to SIGKILL.
            sig = signals.next(), if signals_open => match sig {
                Some(sig) => {
                    if matches!(sig, Signal::SIGINT | Signal::SIGTERM) {
                        interrupts += 1;
                    }
                    if interrupts >= 2 && matches!(sig, Signal::SIGINT | Signal::SIGTERM) {
                        tracing::info!(signal = %sig, "second interrupt: killing the command");
                        child.signal_group(Signal::SIGKILL);
                    } else {
                        tracing::debug!(signal = %sig, "forwarding signal");
                        child.signal_group(sig);
                    }
                }
                None => signals_open = false,
            },
            // The keeper renewed the lease, or found our token gone.
            changed = lease.changed(), if lease_open => {
                if changed.is_err() {
                    lease_open = false;
                    continue;
                }
                let state = lease.borrow_and_update().clone();
                match state {
                    LeaseState::Valid { valid_until: v } => {
                        valid_until = v;
                        if lease_stop == LeaseStop::Armed {
                            timer.set(term_at(v))?;
                        }
                    }
                    LeaseState::Lost(why) => {
                        tracing::error!(reason = %why, "lock lost: stopping the command");
                        if lost.is_none() {
                            lost = Some(why);
                        }
                        child.signal_group(Signal::SIGTERM);
                        let g = Instant::now() + lease_cfg.kill_after;
                        grace_until = Some(grace_until.map_or(g, |x| x.min(g)));
                        lease_stop = LeaseStop::Done;
                        timer.unset()?;
                    }
                }
            }
            // Renewals kept failing: SIGTERM now leaves --kill-after for a
            // graceful exit, then SIGKILL lands before the lease can expire.
            fired = timer.fired() => {
                fired?;
                match lease_stop {
                    LeaseStop::Armed => {
                        let why = format!(
                            "could not renew the lease; stopping the command {} before it expires",
                            humantime::format_duration(Duration::from_millis(valid_until.remaining().as_millis() as u64))
                        );
                        tracing::error!("{why}");
                        lost.get_or_insert(why);
                        child.signal_group(Signal::SIGTERM);
                        lease_stop = LeaseStop::Terminating { valid_until };
                        timer.set(valid_until.saturating_sub(KILL_MARGIN))?;
                    }
                    LeaseStop::Terminating { .. } => {
                        tracing::error!("lease about to expire: killing the command");
                        child.signal_group(Signal::SIGKILL);
                        lease_stop = LeaseStop::Done;
                    }
                    LeaseStop::Done => {}
                }
            }
            // The grace after a SIGTERM is over.
            _ = sleep_until_opt(grace_until) => {
                tracing::warn!("grace period over: killing the command's process group");
                child.signal_group(Signal::SIGKILL);
                grace_until = None;
            }
            // Poll the group while it drains after the leader exited.
            _ = tokio::time::sleep(DRAIN_POLL), if leader.is_some() => {}
        }
    }
    Ok(Outcome {
        status: leader.expect("loop ends only after the leader exited"),
        lost,
        interrupted: interrupts > 0,
    })
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
