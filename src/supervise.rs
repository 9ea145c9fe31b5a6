//! The one `select!`: the command exited | a signal arrived | the lease
//! keeper reported | a lease deadline passed | the grace after SIGTERM ran
//! out. It returns once the command *and everything left in its process
//! group* are gone, so that the lock covers the whole job: every way out,
//! an internal error included, goes through the one stop sequence
//! (`Stop`) and then waits for the group to be empty.
//!
//! Two halves, as nextest's dispatcher has them: [`supervise`] is the thin
//! I/O loop (the `select!` turns what happened into an `Event`, and
//! `perform` carries out the `Action`s), and `Supervisor::on` is the
//! decision, a pure step from an event (and the time) to actions, which
//! the unit tests below drive with no command, no signals and no Redis.
//!
//! The lease's deadlines come from one rule (`Lease::term_at`/`kill_at`),
//! also used to check the options. The SIGKILL deadline is enforced twice:
//! here, and by the guardian (`guardian.rs`), a separate process that does
//! not depend on redlock-run being scheduled on time.

use std::collections::VecDeque;
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

/// How often to look whether the group has emptied after the leader exited.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// Supervise `child` until its whole group is gone. `lease` is a stream of
/// lease states (the keeper's), `signals` the signals sent to us. The
/// guardian's deadline was set (`guardian::prepare`) before the spawn.
pub(crate) async fn supervise(
    child: &mut Child,
    lease_cfg: &Lease,
    lease: &mut tokio::sync::watch::Receiver<LeaseState>,
    signals: &mut (impl Stream<Item = Caught> + Unpin),
) -> RunEnd {
    let first = lease.borrow().clone();
    let mut sup = Supervisor::new(*lease_cfg, &first, BootInstant::now());
    let (mut timer, start) = match BootTimer::new() {
        Ok(t) => (Some(t), sup.start()),
        Err(e) => (
            None,
            sup.on(timer_failed("creating the lease timer", e), Clocks::read()),
        ),
    };
    if let Some(end) = perform(&mut sup, child, &mut timer, start) {
        return end;
    }
    let mut lease_open = true;
    let mut signals_open = true;
    loop {
        let event = if sup.exited() && !child.group_alive() {
            Event::GroupEmpty
        } else {
            tokio::select! {
                // The command itself exited. Whatever it left in its group
                // is stopped before the lock is released.
                st = child.wait(), if !sup.exited() => Event::Exited {
                    status: st.map_err(|e| e.to_string()),
                    guardian_fired: guardian::fired(child.pgid()),
                    group_alive: child.group_alive(),
                },
                sig = signals.next(), if signals_open => match sig {
                    Some(sig) => Event::Signal(sig),
                    None => {
                        signals_open = false;
                        continue;
                    }
                },
                // The keeper renewed the lease, or found our token gone.
                changed = lease.changed(), if lease_open => {
                    if changed.is_err() {
                        lease_open = false;
                        continue;
                    }
                    Event::Lease(lease.borrow_and_update().clone())
                }
                fired = async { match timer.as_mut() { Some(t) => t.fired().await, None => std::future::pending().await } } => match fired {
                    Ok(()) => Event::LeaseDeadline,
                    Err(e) => timer_failed("reading the lease timer", e),
                },
                _ = sleep_until_opt(sup.stop.kill_due) => Event::GraceOver,
                // Poll the group while it drains after the leader exited.
                _ = tokio::time::sleep(DRAIN_POLL), if sup.exited() => continue,
            }
        };
        let actions = sup.on(event, Clocks::read());
        if let Some(end) = perform(&mut sup, child, &mut timer, actions) {
            return end;
        }
    }
}

/// Carry out `actions` in order. A signal that cannot be delivered, or a
/// timer that cannot be set, is an event of its own, whose actions come
/// next. Returns how the run ended once it has.
fn perform(
    sup: &mut Supervisor,
    child: &Child,
    timer: &mut Option<BootTimer>,
    actions: Vec<Action>,
) -> Option<RunEnd> {
    let mut queue = VecDeque::from(actions);
    while let Some(action) = queue.pop_front() {
        let failed = match action {
            Action::Signal(sig) => child
                .signal_group(sig)
                .err()
                .map(|e| Event::SignalFailed(sig, e)),
            Action::SetTimer(at) => match timer.as_mut().map(|t| t.set(at)) {
                Some(Err(e)) => Some(timer_failed("setting the lease timer", e)),
                _ => None,
            },
            Action::ExtendGuardian(kill_at) => {
                guardian::extend(kill_at);
                None
            }
            Action::Say(note) => {
                note.log();
                None
            }
            Action::Finish(end) => return Some(end),
        };
        if let Some(event) = failed {
            for a in sup.on(event, Clocks::read()).into_iter().rev() {
                queue.push_front(a);
            }
        }
    }
    None
}

fn timer_failed(what: &'static str, e: impl std::fmt::Display) -> Event {
    Event::TimerFailed(what, e.to_string())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the loop saw: the input of the decision step.
#[derive(Debug)]
enum Event {
    /// The command (the group's leader) exited, or waiting for it failed;
    /// `guardian_fired`: the guardian killed the group; `group_alive`:
    /// something is left in it.
    Exited {
        status: Result<ExitStatus, String>,
        guardian_fired: bool,
        group_alive: bool,
    },
    /// A signal sent to redlock-run.
    Signal(Caught),
    /// The keeper renewed the lease, or found our token gone.
    Lease(LeaseState),
    /// The lease timer went off: SIGTERM is due, then SIGKILL.
    LeaseDeadline,
    /// The grace after a SIGTERM is over.
    GraceOver,
    /// The group is empty, after the leader exited.
    GroupEmpty,
    /// A signal could not be delivered to the group.
    SignalFailed(Signal, Errno),
    /// The lease timer could not be created, set or read (what, why).
    TimerFailed(&'static str, String),
}

/// What the loop is to do, in order.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// Send a signal to the command's process group.
    Signal(Signal),
    /// Set the lease timer to go off at this time.
    SetTimer(BootInstant),
    /// Move the guardian's SIGKILL deadline.
    ExtendGuardian(BootInstant),
    /// Log a line.
    Say(Note),
    /// The group is gone: the run ended so.
    Finish(RunEnd),
}

/// A log line, said in its turn among the actions (a signal is sent
/// before the line that tells of it: a log line may block).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Note {
    Exited(ExitStatus),
    /// The lock was lost (or may have been), and why.
    Lost(String),
    /// The keeper found our token gone.
    LockLost(String),
    Leftovers,
    SecondInterrupt(Caught),
    Forwarding(Caught),
    StopAgain(Caught),
    Stopping(Caught),
    KilledAtExpiry,
    GraceOver,
    SignalFailed(Signal, Errno),
    Internal(String),
}

impl Note {
    fn log(&self) {
        match self {
            Note::Exited(st) => tracing::debug!(status = ?st, "command exited"),
            Note::Lost(why) => tracing::error!("{why}"),
            Note::LockLost(why) => {
                tracing::error!(reason = %why, "lock lost: stopping the command")
            }
            Note::Leftovers => {
                tracing::info!("stopping processes the command left in its group")
            }
            Note::SecondInterrupt(sig) => {
                tracing::info!(signal = %sig, "second interrupt: killing the command")
            }
            Note::Forwarding(sig) => tracing::debug!(signal = %sig, "forwarding signal"),
            Note::StopAgain(sig) => {
                tracing::info!(signal = %sig, "asked to stop again: killing the command")
            }
            Note::Stopping(sig) => {
                tracing::info!(signal = %sig, "stopping the command and releasing the lock")
            }
            Note::KilledAtExpiry => tracing::error!("lease about to expire: killed the command"),
            Note::GraceOver => {
                tracing::warn!("grace period over: killed the command's process group")
            }
            Note::SignalFailed(sig, e) => tracing::error!(
                signal = %sig,
                error = %e,
                "could not signal the command's process group"
            ),
            Note::Internal(why) => {
                tracing::error!("internal error while the command ran: {why}; stopping it")
            }
        }
    }
}

/// The time on both clocks: tokio's (the grace, which tests can pause)
/// and CLOCK_BOOTTIME (the lease, which counts a suspend).
#[derive(Debug, Clone, Copy)]
struct Clocks {
    mono: Instant,
    boot: BootInstant,
}

impl Clocks {
    fn read() -> Self {
        Clocks {
            mono: Instant::now(),
            boot: BootInstant::now(),
        }
    }
}

/// Where the lease-driven stop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseStop {
    /// SIGTERM at the lease's `term_at`.
    Armed,
    /// SIGTERM sent; SIGKILL at `kill_at`.
    Terminating,
    Done,
}

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
    fn term(&mut self, grace: Duration, now: Instant, out: &mut Vec<Action>) {
        if self.killed {
            return;
        }
        if !self.termed {
            self.termed = true;
            out.push(Action::Signal(Signal::SIGTERM));
        }
        let due = now + grace;
        self.kill_due = Some(self.kill_due.map_or(due, |d| d.min(due)));
    }

    /// SIGKILL now.
    fn kill(&mut self, out: &mut Vec<Action>) {
        self.killed = true;
        self.kill_due = None;
        out.push(Action::Signal(Signal::SIGKILL));
    }

    /// `sig` could not be sent.
    fn failed(&mut self, sig: Signal, e: Errno, out: &mut Vec<Action>) {
        out.push(Action::Say(Note::SignalFailed(sig, e)));
        if e == Errno::EPERM && self.refused.is_none() {
            self.refused = Some(format!(
                "could not send {sig} to the command's process group: EPERM (a setuid \
                 program in it?); it may have outlived the lease"
            ));
        }
    }
}

/// What supervising a run has seen so far, and the decisions it makes.
#[derive(Debug)]
struct Supervisor {
    lease: Lease,
    /// Until when the lease is certainly ours (as last renewed).
    valid_until: BootInstant,
    lease_stop: LeaseStop,
    stop: Stop,
    internal: Option<String>,
    lost: Option<String>,
    /// The leader's status once it exited (None inside: not seen).
    leader: Option<Option<ExitStatus>>,
    interrupts: u32,
    signalled: Option<Caught>,
}

impl Supervisor {
    /// Supervising a lease in state `first` (as the keeper published it
    /// last), at `boot`.
    fn new(lease: Lease, first: &LeaseState, boot: BootInstant) -> Self {
        let valid_until = match first {
            LeaseState::Valid { valid_until } => *valid_until,
            LeaseState::Lost(_) => boot,
        };
        Supervisor {
            lease,
            valid_until,
            lease_stop: LeaseStop::Armed,
            stop: Stop::default(),
            internal: None,
            lost: None,
            leader: None,
            interrupts: 0,
            signalled: None,
        }
    }

    /// The first actions: the lease timer, for SIGTERM.
    fn start(&self) -> Vec<Action> {
        vec![Action::SetTimer(self.lease.term_at(self.valid_until))]
    }

    /// Whether the leader exited (the group is draining).
    fn exited(&self) -> bool {
        self.leader.is_some()
    }

    /// The decision step: what to do about `event`, seen at `now`.
    fn on(&mut self, event: Event, now: Clocks) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Exited {
                status,
                guardian_fired,
                group_alive,
            } => self.exited_with(status, guardian_fired, group_alive, now, &mut out),
            Event::Signal(sig) => self.signal(sig, now, &mut out),
            Event::Lease(state) => self.lease_state(state, now, &mut out),
            Event::LeaseDeadline => self.lease_deadline(now, &mut out),
            Event::GraceOver => {
                self.stop.kill(&mut out);
                out.push(Action::Say(Note::GraceOver));
            }
            Event::GroupEmpty => out.push(Action::Finish(self.end())),
            Event::SignalFailed(sig, e) => self.stop.failed(sig, e, &mut out),
            Event::TimerFailed(what, e) => self.internal_error(what, &e, now, &mut out),
        }
        out
    }

    /// The grace of a stop begun at `now`: --kill-after, never past the
    /// lease's SIGKILL deadline.
    fn grace(&self, now: Clocks) -> Duration {
        let to_kill = self.lease.kill_at(self.valid_until) - now.boot;
        self.lease.kill_after.min(to_kill)
    }

    /// Begin the stop sequence (or tighten its SIGKILL deadline).
    fn term(&mut self, now: Clocks, out: &mut Vec<Action>) {
        let grace = self.grace(now);
        self.stop.term(grace, now.mono, out);
    }

    /// An internal error: stop the command (the lock must not outlive our
    /// ability to supervise it), and report it.
    fn internal_error(&mut self, what: &str, e: &str, now: Clocks, out: &mut Vec<Action>) {
        let why = format!("{what}: {e}");
        out.push(Action::Say(Note::Internal(why.clone())));
        self.internal.get_or_insert(why);
        self.term(now, out);
        self.lease_stop = LeaseStop::Done;
    }

    /// The lock was (or may have been) lost: say why; the first reason is
    /// the one reported.
    fn lose(&mut self, why: String, out: &mut Vec<Action>) {
        out.push(Action::Say(Note::Lost(why.clone())));
        self.lost.get_or_insert(why);
    }

    fn exited_with(
        &mut self,
        status: Result<ExitStatus, String>,
        guardian_fired: bool,
        group_alive: bool,
        now: Clocks,
        out: &mut Vec<Action>,
    ) {
        match status {
            Ok(st) => {
                out.push(Action::Say(Note::Exited(st)));
                self.leader = Some(Some(st));
            }
            Err(e) => {
                // Reaped with the rest of the group.
                self.leader = Some(None);
                self.internal_error("waiting for the command", &e, now, out);
            }
        }
        if self.lost.is_none() && guardian_fired {
            let why = "the lease was about to run out while redlock-run was stalled; \
                       the guardian killed the command";
            self.lose(why.into(), out);
        }
        // Seen only after the kill deadline (we, or the whole machine,
        // were paused): it may have run unlocked.
        if self.lost.is_none()
            && self.lease_stop == LeaseStop::Armed
            && now.boot >= self.lease.kill_at(self.valid_until)
        {
            let why = "the lease ran out before the command's exit was seen \
                       (was redlock-run or the machine paused?)";
            self.lose(why.into(), out);
        }
        if group_alive && !self.stop.termed {
            out.push(Action::Say(Note::Leftovers));
            self.term(now, out);
        }
    }

    /// A forwarded signal goes to the command's group; a second
    /// SIGINT/SIGTERM escalates to SIGKILL. Any other signal stops the
    /// command (the one stop sequence); one more kills it.
    fn signal(&mut self, sig: Caught, now: Clocks, out: &mut Vec<Action>) {
        match sig.forwarded() {
            Some(fwd) => {
                let interrupt = sig.is_interrupt();
                if interrupt {
                    self.interrupts += 1;
                }
                if interrupt && (self.interrupts >= 2 || self.signalled.is_some()) {
                    out.push(Action::Say(Note::SecondInterrupt(sig)));
                    self.stop.kill(out);
                } else {
                    out.push(Action::Say(Note::Forwarding(sig)));
                    out.push(Action::Signal(fwd));
                }
            }
            None => {
                let again = self.interrupts > 0 || self.signalled.is_some();
                self.signalled.get_or_insert(sig);
                if again {
                    out.push(Action::Say(Note::StopAgain(sig)));
                    self.stop.kill(out);
                } else {
                    out.push(Action::Say(Note::Stopping(sig)));
                    self.term(now, out);
                }
            }
        }
    }

    /// A renewal moves the deadlines (until a stop has begun); a lost
    /// token stops the command.
    fn lease_state(&mut self, state: LeaseState, now: Clocks, out: &mut Vec<Action>) {
        match state {
            LeaseState::Valid { valid_until } => {
                if self.lease_stop == LeaseStop::Armed {
                    self.valid_until = valid_until;
                    out.push(Action::ExtendGuardian(self.lease.kill_at(valid_until)));
                    out.push(Action::SetTimer(self.lease.term_at(valid_until)));
                }
            }
            LeaseState::Lost(why) => {
                out.push(Action::Say(Note::LockLost(why.clone())));
                self.lost.get_or_insert(why);
                self.term(now, out);
                self.lease_stop = LeaseStop::Done;
            }
        }
    }

    /// Renewals kept failing: SIGTERM now leaves --kill-after for a
    /// graceful exit, then SIGKILL lands before the lease can expire.
    fn lease_deadline(&mut self, now: Clocks, out: &mut Vec<Action>) {
        match self.lease_stop {
            LeaseStop::Armed => {
                // Signal first, then log: a log line may block.
                let left = self.valid_until - now.boot;
                self.term(now, out);
                self.lease_stop = LeaseStop::Terminating;
                let why = format!(
                    "could not renew the lease; stopping the command {} before it expires",
                    humantime::format_duration(Duration::from_millis(left.as_millis() as u64))
                );
                self.lose(why, out);
                out.push(Action::SetTimer(self.lease.kill_at(self.valid_until)));
            }
            LeaseStop::Terminating => {
                self.stop.kill(out);
                self.lease_stop = LeaseStop::Done;
                out.push(Action::Say(Note::KilledAtExpiry));
            }
            LeaseStop::Done => {}
        }
    }

    /// How the run ended, once the group is gone.
    fn end(&mut self) -> RunEnd {
        if let Some(why) = self.stop.refused.take() {
            self.lost.get_or_insert(why);
        }
        let asked = match self.signalled {
            Some(sig) => Asked::Stop(sig),
            None if self.interrupts > 0 => Asked::Interrupt,
            None => Asked::Nothing,
        };
        RunEnd::from_parts(
            self.internal.take(),
            self.lost.take(),
            asked,
            self.leader.flatten(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// --ttl 10s: valid for 9.898 s after a renewal (drift 102 ms),
    /// SIGKILL 100 ms before that, SIGTERM --kill-after (2 s) earlier.
    fn lease() -> Lease {
        Lease {
            ttl: Duration::from_secs(10),
            refresh: Duration::from_secs(3),
            kill_after: 2 * SECOND,
            min_hold: Duration::ZERO,
            wait_replicas: 0,
            limit: 1,
        }
    }

    /// A supervisor of a lease valid for `valid` from `t0`, and `t0`.
    fn supervisor(valid: Duration) -> (Supervisor, Clocks) {
        let t0 = Clocks::read();
        let first = LeaseState::Valid {
            valid_until: t0.boot + valid,
        };
        (Supervisor::new(lease(), &first, t0.boot), t0)
    }

    /// `t` plus `d` on both clocks.
    fn after(t: Clocks, d: Duration) -> Clocks {
        Clocks {
            mono: t.mono + d,
            boot: t.boot + d,
        }
    }

    fn signals(actions: &[Action]) -> Vec<Signal> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Signal(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    fn exited(code: i32, group_alive: bool) -> Event {
        Event::Exited {
            status: Ok(ExitStatus::from_raw(code << 8)),
            guardian_fired: false,
            group_alive,
        }
    }

    fn finish(sup: &mut Supervisor, now: Clocks) -> RunEnd {
        match sup.on(Event::GroupEmpty, now).as_slice() {
            [Action::Finish(end)] => end.clone(),
            a => panic!("not finished: {a:?}"),
        }
    }

    const SIGHUP: Caught = Caught(Signal::SIGHUP as i32);
    const SIGINT: Caught = Caught(Signal::SIGINT as i32);
    const SIGALRM: Caught = Caught(Signal::SIGALRM as i32);

    #[test]
    fn the_first_action_sets_the_timer_for_sigterm() {
        let (sup, t0) = supervisor(10 * SECOND);
        let term_at = t0.boot + Duration::from_millis(10_000 - 100 - 2_000);
        assert_eq!(sup.start(), [Action::SetTimer(term_at)]);
    }

    #[test]
    fn a_forwarded_signal_goes_to_the_group_and_a_second_interrupt_kills() {
        let (mut sup, t0) = supervisor(10 * SECOND);
        let a = sup.on(Event::Signal(SIGHUP), t0);
        assert_eq!(
            a,
            [
                Action::Say(Note::Forwarding(SIGHUP)),
                Action::Signal(Signal::SIGHUP)
            ]
        );
        assert_eq!(
            signals(&sup.on(Event::Signal(SIGINT), t0)),
            [Signal::SIGINT]
        );
        assert!(sup.stop.kill_due.is_none(), "forwarding starts no stop");
        assert_eq!(
            signals(&sup.on(Event::Signal(SIGINT), t0)),
            [Signal::SIGKILL]
        );
        assert!(signals(&sup.on(exited(130, false), t0)).is_empty());
        let end = finish(&mut sup, t0);
        assert_eq!(
            end,
            RunEnd::Exited {
                status: ExitStatus::from_raw(130 << 8),
                asked: Asked::Interrupt
            }
        );
    }

    #[test]
    fn a_lost_lease_terms_then_kills_after_the_grace() {
        let (mut sup, t0) = supervisor(10 * SECOND);
        let a = sup.on(Event::Lease(LeaseState::Lost("token gone".into())), t0);
        assert_eq!(
            a,
            [
                Action::Say(Note::LockLost("token gone".into())),
                Action::Signal(Signal::SIGTERM)
            ]
        );
        assert_eq!(sup.stop.kill_due, Some(t0.mono + 2 * SECOND));
        // A renewal that was in flight changes nothing any more.
        let later = LeaseState::Valid {
            valid_until: t0.boot + 20 * SECOND,
        };
        assert!(sup.on(Event::Lease(later), t0).is_empty());
        assert!(sup.on(Event::LeaseDeadline, t0).is_empty());
        let t1 = after(t0, 2 * SECOND);
        assert_eq!(signals(&sup.on(Event::GraceOver, t1)), [Signal::SIGKILL]);
        assert!(sup.stop.kill_due.is_none());
        sup.on(exited(0, false), t1);
        match finish(&mut sup, t1) {
            RunEnd::Lost { why, status, .. } => {
                assert_eq!(why, "token gone");
                assert!(status.is_some());
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_renewal_moves_the_deadlines_and_the_guardians() {
        let (mut sup, t0) = supervisor(10 * SECOND);
        let v = t0.boot + 15 * SECOND;
        let a = sup.on(Event::Lease(LeaseState::Valid { valid_until: v }), t0);
        let kill_at = v.saturating_sub(Duration::from_millis(100));
        assert_eq!(
            a,
            [
                Action::ExtendGuardian(kill_at),
                Action::SetTimer(kill_at.saturating_sub(2 * SECOND))
            ]
        );
    }

    #[test]
    fn renewals_that_keep_failing_term_at_the_deadline_then_kill() {
        let (mut sup, t0) = supervisor(10 * SECOND);
        let term_at = after(t0, Duration::from_millis(7_900));
        let a = sup.on(Event::LeaseDeadline, term_at);
        assert_eq!(a[0], Action::Signal(Signal::SIGTERM), "signal first: {a:?}");
        assert!(
            matches!(&a[1], Action::Say(Note::Lost(why)) if why.contains("could not renew the lease; stopping the command 2s 100ms before")),
            "{a:?}"
        );
        let kill_at = t0.boot + Duration::from_millis(9_900);
        assert_eq!(a[2], Action::SetTimer(kill_at));
        // The grace ends at the lease's SIGKILL deadline.
        assert_eq!(sup.stop.kill_due, Some(term_at.mono + 2 * SECOND));
        // A late renewal does not undo a stop under way.
        let v = LeaseState::Valid {
            valid_until: t0.boot + 30 * SECOND,
        };
        assert!(sup.on(Event::Lease(v), term_at).is_empty());
        let a = sup.on(
            Event::LeaseDeadline,
            after(t0, Duration::from_millis(9_900)),
        );
        assert_eq!(
            a,
            [
                Action::Signal(Signal::SIGKILL),
                Action::Say(Note::KilledAtExpiry)
            ]
        );
        assert!(sup.on(Event::LeaseDeadline, term_at).is_empty());
        sup.on(exited(0, false), term_at);
        assert!(matches!(finish(&mut sup, term_at), RunEnd::Lost { .. }));
    }

    #[test]
    fn the_grace_never_reaches_past_the_leases_kill_deadline() {
        // 1.1 s of lease left: SIGKILL is due at 1 s, not at --kill-after.
        let (mut sup, t0) = supervisor(Duration::from_millis(1_100));
        sup.on(Event::Signal(SIGALRM), t0);
        assert_eq!(sup.stop.kill_due, Some(t0.mono + SECOND));
    }

    #[test]
    fn a_command_that_exits_leaving_its_group_is_stopped_then_drained() {
        let (mut sup, t0) = supervisor(10 * SECOND);
        assert!(!sup.exited());
        let a = sup.on(exited(3, true), t0);
        assert_eq!(
            a,
            [
                Action::Say(Note::Exited(ExitStatus::from_raw(3 << 8))),
                Action::Say(Note::Leftovers),
                Action::Signal(Signal::SIGTERM)
            ]
        );
        assert!(sup.exited());
        assert_eq!(sup.stop.kill_due, Some(t0.mono + 2 * SECOND));
        let end = finish(&mut sup, t0);
        assert_eq!(end.code(), 3);
        assert!(matches!(
            end,
            RunEnd::Exited {
                asked: Asked::Nothing,
                ..
            }
        ));
        // With nothing left, nothing is signalled.
        let (mut sup, t0) = supervisor(10 * SECOND);
        assert!(signals(&sup.on(exited(0, false), t0)).is_empty());
    }

    #[test]
    fn a_stopping_signal_ends_the_run_signalled_and_a_second_kills() {
        let (mut sup, t0) = supervisor(10 * SECOND);
        let a = sup.on(Event::Signal(SIGALRM), t0);
        assert_eq!(
            a,
            [
                Action::Say(Note::Stopping(SIGALRM)),
                Action::Signal(Signal::SIGTERM)
            ]
        );
        // An interrupt after it kills at once.
        assert_eq!(
            sup.on(Event::Signal(SIGINT), t0),
            [
                Action::Say(Note::SecondInterrupt(SIGINT)),
                Action::Signal(Signal::SIGKILL)
            ]
        );
        // After SIGKILL, no SIGTERM any more.
        assert!(
            signals(&sup.on(Event::Signal(Caught(Signal::SIGXCPU as i32)), t0))
                == [Signal::SIGKILL]
        );
        sup.on(exited(0, false), t0);
        let end = finish(&mut sup, t0);
        assert_eq!(end.code(), 128 + Signal::SIGALRM as i32);
        assert!(matches!(end, RunEnd::Signalled { by, .. } if by == SIGALRM));
    }

    #[test]
    fn an_internal_error_stops_the_command_and_disarms_the_lease_stop() {
        let (mut sup, t0) = supervisor(10 * SECOND);
        let a = sup.on(
            Event::TimerFailed("setting the lease timer", "EINVAL".into()),
            t0,
        );
        assert_eq!(
            a,
            [
                Action::Say(Note::Internal("setting the lease timer: EINVAL".into())),
                Action::Signal(Signal::SIGTERM)
            ]
        );
        // The lease no longer drives anything: the stop is under way.
        assert!(sup.on(Event::LeaseDeadline, t0).is_empty());
        let v = LeaseState::Valid {
            valid_until: t0.boot + 30 * SECOND,
        };
        assert!(sup.on(Event::Lease(v), t0).is_empty());
        sup.on(exited(0, false), t0);
        match finish(&mut sup, t0) {
            RunEnd::Internal {
                why, lost, status, ..
            } => {
                assert_eq!(why, "setting the lease timer: EINVAL");
                assert!(!lost);
                assert_eq!(status, Some(ExitStatus::from_raw(0)));
            }
            e => panic!("{e:?}"),
        }
        // A wait that failed: an internal error, no status.
        let (mut sup, t0) = supervisor(10 * SECOND);
        let ev = Event::Exited {
            status: Err("ECHILD".into()),
            guardian_fired: false,
            group_alive: true,
        };
        assert_eq!(signals(&sup.on(ev, t0)), [Signal::SIGTERM]);
        match finish(&mut sup, t0) {
            RunEnd::Internal { why, status, .. } => {
                assert_eq!(why, "waiting for the command: ECHILD");
                assert_eq!(status, None);
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_signal_refused_with_eperm_means_the_lock_is_lost() {
        let (mut sup, t0) = supervisor(10 * SECOND);
        sup.on(Event::Signal(SIGALRM), t0);
        let a = sup.on(Event::SignalFailed(Signal::SIGTERM, Errno::EPERM), t0);
        assert_eq!(
            a,
            [Action::Say(Note::SignalFailed(
                Signal::SIGTERM,
                Errno::EPERM
            ))]
        );
        sup.on(exited(0, false), t0);
        match finish(&mut sup, t0) {
            RunEnd::Lost { why, .. } => {
                assert!(why.contains("SIGTERM") && why.contains("EPERM"), "{why}")
            }
            e => panic!("{e:?}"),
        }
        // Any other failure is said, but loses nothing.
        let (mut sup, t0) = supervisor(10 * SECOND);
        sup.on(Event::SignalFailed(Signal::SIGHUP, Errno::EINVAL), t0);
        sup.on(exited(0, false), t0);
        assert!(matches!(finish(&mut sup, t0), RunEnd::Exited { .. }));
    }

    #[test]
    fn an_exit_seen_after_the_kill_deadline_or_the_guardians_kill_is_lost() {
        let (mut sup, t0) = supervisor(10 * SECOND);
        let late = after(t0, Duration::from_millis(9_900));
        sup.on(exited(0, false), late);
        match finish(&mut sup, late) {
            RunEnd::Lost { why, .. } => assert!(why.contains("ran out before"), "{why}"),
            e => panic!("{e:?}"),
        }
        // Just before it: the run is fine.
        let (mut sup, t0) = supervisor(10 * SECOND);
        let t = after(t0, Duration::from_millis(9_899));
        sup.on(exited(0, false), t);
        assert!(matches!(finish(&mut sup, t), RunEnd::Exited { .. }));
        let (mut sup, t0) = supervisor(10 * SECOND);
        let ev = Event::Exited {
            status: Ok(ExitStatus::from_raw(9)),
            guardian_fired: true,
            group_alive: false,
        };
        sup.on(ev, t0);
        match finish(&mut sup, t0) {
            RunEnd::Lost { why, .. } => assert!(why.contains("the guardian killed"), "{why}"),
            e => panic!("{e:?}"),
        }
    }

    /// The loop's timing, on tokio's paused clock: the grace's SIGKILL
    /// comes when the decision set it, not a poll later.
    #[tokio::test(start_paused = true)]
    async fn the_grace_timer_fires_at_the_kill_deadline() {
        let (mut sup, _) = supervisor(10 * SECOND);
        let t0 = Clocks::read();
        sup.on(Event::Signal(SIGALRM), t0);
        let due = sup.stop.kill_due.expect("a stop began");
        sleep_until_opt(sup.stop.kill_due).await;
        assert_eq!(Instant::now(), due);
        assert_eq!(due - t0.mono, 2 * SECOND);
        assert_eq!(
            signals(&sup.on(Event::GraceOver, Clocks::read())),
            [Signal::SIGKILL]
        );
        // No stop, no deadline: the grace never fires.
        let idle = tokio::time::timeout(60 * SECOND, sleep_until_opt(None)).await;
        assert!(idle.is_err());
    }
}
