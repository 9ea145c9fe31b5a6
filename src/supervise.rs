//! The one `select!`: the command exited | a signal arrived | the lease
//! keeper reported | a lease deadline passed | the grace after SIGTERM ran
//! out. It returns once the command *and everything left in its process
//! group* are gone, so that the lock covers the whole job: every way out,
//! an internal error included, goes through the one stop sequence
//! ([`Stop`]) and then waits for the group to be empty.
//!
//! The lease's deadlines come from one rule (`Lease::term_at`/`kill_at`),
//! also used to check the options. The SIGKILL deadline is enforced twice:
//! here, and by the guardian (`guardian.rs`), a separate process that does
//! not depend on redlock-run being scheduled on time.

use std::process::ExitStatus;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use tokio::time::Instant;

use crate::child::Child;
use crate::clock::{BootInstant, BootTimer};
use crate::config::Lease;
use crate::guardian;
use crate::lock::LeaseState;
use crate::outcome::{Asked, RunEnd};
use crate::signals::Caught;

/// Where the lease-driven stop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseStop {
    /// SIGTERM at the lease's `term_at`.
    Armed,
    /// SIGTERM sent; SIGKILL at `kill_at`.
    Terminating,
    Done,
}

/// How often to look whether the group has emptied after the leader exited.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// The one stop sequence: SIGTERM, a grace, SIGKILL; the supervisor's loop
/// then waits until the group is empty. Every stop path goes through it,
/// none signals the group on its own. A signal that cannot be delivered
/// (EPERM) means the command could not be stopped: the run is lost.
#[derive(Debug, Default)]
struct Stop {
    /// When SIGKILL is due, once a stop has begun.
    kill_due: Option<Instant>,
    termed: bool,
    killed: bool,
    /// Why a signal could not be delivered.
    refused: Option<String>,
}

impl Stop {
    /// Begin (or tighten) a stop: SIGTERM now unless sent already, SIGKILL
    /// after `grace` at the latest.
    fn term(&mut self, child: &Child, grace: Duration) {
        if self.killed {
            return;
        }
        if !self.termed {
            self.termed = true;
            self.send(child, Signal::SIGTERM);
        }
        let due = Instant::now() + grace;
        self.kill_due = Some(self.kill_due.map_or(due, |d| d.min(due)));
    }

    /// SIGKILL now.
    fn kill(&mut self, child: &Child) {
        self.killed = true;
        self.kill_due = None;
        self.send(child, Signal::SIGKILL);
    }

    /// Forward a signal that is not a stop (SIGHUP, SIGUSR1, ...).
    fn send(&mut self, child: &Child, sig: Signal) {
        if let Err(e) = child.signal_group(sig) {
            tracing::error!(signal = %sig, error = %e, "could not signal the command's process group");
            if e == Errno::EPERM && self.refused.is_none() {
                self.refused = Some(format!(
                    "could not send {sig} to the command's process group: EPERM (a setuid \
                     program in it?); it may have outlived the lease"
                ));
            }
        }
    }
}

/// Supervise `child` until its whole group is gone. `lease` is a stream of
/// lease states (the keeper's), `signals` the signals sent to us. The
/// guardian's deadline was set (`guardian::prepare`) before the spawn.
pub async fn supervise(
    child: &mut Child,
    lease_cfg: &Lease,
    lease: &mut tokio::sync::watch::Receiver<LeaseState>,
    signals: &mut (impl Stream<Item = Caught> + Unpin),
) -> RunEnd {
    let mut valid_until = match &*lease.borrow() {
        LeaseState::Valid { valid_until } => *valid_until,
        LeaseState::Lost(_) => BootInstant::now(),
    };
    let mut stop = Stop::default();
    let mut internal: Option<String> = None;
    let mut lost: Option<String> = None;
    let mut leader: Option<Option<ExitStatus>> = None;
    let mut interrupts = 0u32;
    let mut signalled: Option<Caught> = None;
    let mut lease_open = true;
    let mut signals_open = true;
    let mut lease_stop = LeaseStop::Armed;

    // The grace of a stop never reaches past the lease's SIGKILL deadline.
    let grace = |valid_until: BootInstant| {
        lease_cfg
            .kill_after
            .min(lease_cfg.kill_at(valid_until).remaining())
    };
    // An internal error: stop the command (the lock must not outlive our
    // ability to supervise it), and report it.
    macro_rules! internal_error {
        ($what:expr, $e:expr) => {{
            let why = format!("{}: {}", $what, $e);
            tracing::error!("internal error while the command ran: {why}; stopping it");
            internal.get_or_insert(why);
            stop.term(child, grace(valid_until));
            lease_stop = LeaseStop::Done;
        }};
    }

    let mut timer = match BootTimer::new() {
        Ok(t) => Some(t),
        Err(e) => {
            internal_error!("creating the lease timer", e);
            None
        }
    };
    if let Some(t) = &mut timer {
        if let Err(e) = t.set(lease_cfg.term_at(valid_until)) {
            internal_error!("setting the lease timer", e);
        }
    }

    loop {
        if leader.is_some() && !child.group_alive() {
            break;
        }
        tokio::select! {
            // The command itself exited. Whatever it left in its group is
            // stopped before the lock is released.
            st = child.wait(), if leader.is_none() => {
                match st {
                    Ok(st) => {
                        tracing::debug!(status = ?st, "command exited");
                        leader = Some(Some(st));
                    }
                    Err(e) => {
                        // Reaped with the rest of the group below.
                        leader = Some(None);
                        internal_error!("waiting for the command", e);
                    }
                }
                if lost.is_none() && guardian::fired(child.pgid()) {
                    let why = "the lease was about to run out while redlock-run was stalled; \
                               the guardian killed the command";
                    tracing::error!("{why}");
                    lost = Some(why.to_string());
                }
                // Seen only after the kill deadline (we, or the whole
                // machine, were paused): it may have run unlocked.
                if lost.is_none()
                    && lease_stop == LeaseStop::Armed
                    && BootInstant::now() >= lease_cfg.kill_at(valid_until)
                {
                    let why = "the lease ran out before the command's exit was seen \
                               (was redlock-run or the machine paused?)";
                    tracing::error!("{why}");
                    lost = Some(why.to_string());
                }
                if child.group_alive() && !stop.termed {
                    tracing::info!("stopping processes the command left in its group");
                    stop.term(child, grace(valid_until));
                }
            }
            // A forwarded signal goes to the command's group; a second
            // SIGINT/SIGTERM escalates to SIGKILL. Any other signal stops
            // the command (the one stop sequence); one more kills it.
            sig = signals.next(), if signals_open => match sig {
                Some(sig) => match sig.forwarded() {
                    Some(fwd) => {
                        let interrupt = sig.is_interrupt();
                        if interrupt {
                            interrupts += 1;
                        }
                        if interrupt && (interrupts >= 2 || signalled.is_some()) {
                            tracing::info!(signal = %sig, "second interrupt: killing the command");
                            stop.kill(child);
                        } else {
                            tracing::debug!(signal = %sig, "forwarding signal");
                            stop.send(child, fwd);
                        }
                    }
                    None => {
                        let again = interrupts > 0 || signalled.is_some();
                        signalled.get_or_insert(sig);
                        if again {
                            tracing::info!(signal = %sig, "asked to stop again: killing the command");
                            stop.kill(child);
                        } else {
                            tracing::info!(signal = %sig, "stopping the command and releasing the lock");
                            stop.term(child, grace(valid_until));
                        }
                    }
                },
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
                        if lease_stop == LeaseStop::Armed {
                            valid_until = v;
                            guardian::extend(lease_cfg.kill_at(v));
                            if let Some(Err(e)) = timer.as_mut().map(|t| t.set(lease_cfg.term_at(v))) {
                                internal_error!("setting the lease timer", e);
                            }
                        }
                    }
                    LeaseState::Lost(why) => {
                        tracing::error!(reason = %why, "lock lost: stopping the command");
                        lost.get_or_insert(why);
                        stop.term(child, grace(valid_until));
                        lease_stop = LeaseStop::Done;
                    }
                }
            }
            // Renewals kept failing: SIGTERM now leaves --kill-after for a
            // graceful exit, then SIGKILL lands before the lease can expire.
            fired = async { match timer.as_mut() { Some(t) => t.fired().await, None => std::future::pending().await } } => {
                if let Err(e) = fired {
                    internal_error!("reading the lease timer", e);
                    continue;
                }
                match lease_stop {
                    LeaseStop::Armed => {
                        // Signal first, then log: a log line may block.
                        let left = valid_until.remaining();
                        stop.term(child, grace(valid_until));
                        lease_stop = LeaseStop::Terminating;
                        let why = format!(
                            "could not renew the lease; stopping the command {} before it expires",
                            humantime::format_duration(Duration::from_millis(left.as_millis() as u64))
                        );
                        tracing::error!("{why}");
                        lost.get_or_insert(why);
                        if let Some(Err(e)) = timer.as_mut().map(|t| t.set(lease_cfg.kill_at(valid_until))) {
                            internal_error!("setting the lease timer", e);
                        }
                    }
                    LeaseStop::Terminating => {
                        stop.kill(child);
                        lease_stop = LeaseStop::Done;
                        tracing::error!("lease about to expire: killed the command");
                    }
                    LeaseStop::Done => {}
                }
            }
            // The grace after a SIGTERM is over.
            _ = sleep_until_opt(stop.kill_due) => {
                stop.kill(child);
                tracing::warn!("grace period over: killed the command's process group");
            }
            // Poll the group while it drains after the leader exited.
            _ = tokio::time::sleep(DRAIN_POLL), if leader.is_some() => {}
        }
    }
    if let Some(why) = stop.refused {
        lost.get_or_insert(why);
    }
    let asked = match signalled {
        Some(sig) => Asked::Stop(sig),
        None if interrupts > 0 => Asked::Interrupt,
        None => Asked::Nothing,
    };
    RunEnd::from_parts(internal, lost, asked, leader.flatten())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
